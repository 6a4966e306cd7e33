//! The guest's engine as a plain Rust library, without Wasm: the same
//! QuickJS, timer queue and Elm glue, compiled for the host. Used by the
//! benchmarks to measure what the sandbox costs.

use crate::error::GuestError;
use crate::reply;
use elmbox_abi::LoadConfig;

use crate::session::{EventKind, Session};

/// One app, run natively in the calling thread.
pub struct NativeApp {
    session: Session,
}

impl NativeApp {
    /// `config` is the guest's load configuration as JSON (see `LoadConfig`).
    pub fn load(config: &str, source: &[u8]) -> Result<NativeApp, String> {
        let config: LoadConfig = serde_json::from_str(config).map_err(|e| e.to_string())?;
        reply::begin();
        Session::load(config, source)
            .map(|session| NativeApp { session })
            .map_err(describe)
    }

    /// Dispatches one event; returns the outputs as a JSON array.
    pub fn dispatch(&mut self, event: &[u8], json: bool) -> Result<Vec<u8>, String> {
        reply::begin();
        let kind = if json {
            EventKind::Json
        } else {
            EventKind::Text
        };
        let result = self.session.dispatch(event, kind).map_err(describe);
        reply::finish::<GuestError>(Ok(()));
        result.map(|()| reply::last(|outputs, _| outputs.to_vec()))
    }

    /// QuickJS's allocated bytes.
    pub fn heap_bytes(&self) -> i64 {
        self.session.memory().malloc_size
    }
}

fn describe(error: GuestError) -> String {
    serde_json::to_string(&error).unwrap_or_default()
}
