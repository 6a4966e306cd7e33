//! The guest's engine as a plain Rust library, without Wasm: the same
//! QuickJS, timer queue and Elm glue, compiled for the host. Used by the
//! benchmarks to measure what the sandbox costs.

use elmbox_abi::{AppError, AppSettings};

use crate::reply;
use crate::session::Session;

/// One app, run natively in the calling thread.
pub struct NativeApp {
    session: Session,
}

impl NativeApp {
    /// Loads the app's JavaScript with `settings`, as `elmbox_load` does.
    pub fn load(settings: AppSettings, source: &[u8]) -> Result<NativeApp, AppError> {
        reply::begin();
        Session::load(settings, source).map(|session| NativeApp { session })
    }

    /// Dispatches one event; returns the outputs as a JSON array.
    pub fn dispatch(&mut self, event: &[u8]) -> Result<Vec<u8>, AppError> {
        reply::begin();
        let result = self.session.dispatch(event);
        reply::finish::<AppError>(Ok(()));
        result.map(|()| reply::last(|outputs, _| outputs.to_vec()))
    }

    /// QuickJS's allocated bytes.
    pub fn heap_bytes(&self) -> i64 {
        self.session.memory().malloc_size
    }
}
