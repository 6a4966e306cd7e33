//! The ground floor of the host: what one app's wasmtime store holds and
//! how guest code runs in it. Store state (WASI, the guest's stderr, the
//! memory limiter, the CPU deadline), the sandbox's stack size, the epoch
//! ticker behind deadlines, and driving a guest call to its end.
//!
//! Guest code runs on wasmtime's own fiber stacks (its async API, driven to
//! completion at once), never on the caller's thread stack. QuickJS on WASI
//! has no stack limit of its own, so JavaScript recursion is bounded only by
//! the wasm stack: it must be deep enough for real Elm code (`List.foldr`
//! recurses 500 levels before switching strategy) whatever thread calls us.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use wasmtime::{Engine, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::WasiCtxBuilder;

use crate::limits::SandboxLimits;

/// Native stack for guest code: about 17,000 nested JavaScript calls (each
/// QuickJS call level takes ~500 bytes of it). The guest's own C stack is
/// sized to outlast it (guest/build.rs).
pub const WASM_STACK_BYTES: usize = 8 << 20;

/// Bytes of the guest's stderr kept per app: only a crashing guest writes
/// there (Rust panic messages), and the message goes into the error.
const GUEST_STDERR_CAPACITY: usize = 64 << 10;

/// Per-store data: WASI state, the guest's captured stderr, and limits.
pub(crate) struct StoreState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) limiter: CapLimiter,
}

/// A store for one app: WASI with nothing of the host visible, the app's
/// memory cap and CPU deadline. `limits` were checked against the engine
/// when its runtime was made (`SandboxLimits::check`).
pub(crate) fn new_store(engine: &Engine, limits: &SandboxLimits) -> Store<StoreState> {
    let stderr = MemoryOutputPipe::new(GUEST_STDERR_CAPACITY);
    // No arguments, environment, files or sockets: the app sees nothing of
    // the host but the clock and random numbers.
    let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build_p1();
    let mut store_limits = StoreLimitsBuilder::new().trap_on_grow_failure(false);
    if let Some(bytes) = limits.max_memory_bytes {
        store_limits = store_limits.memory_size(bytes);
    }
    let state = StoreState {
        wasi,
        stderr,
        limiter: CapLimiter {
            inner: store_limits.build(),
            memory_refused: None,
        },
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store
}

/// Drives a wasmtime async call to its end. Nothing in elmbox's guest ever
/// yields (no async host calls, no epoch yields: a deadline traps), so the
/// first poll finishes it; async is used only to run guest code on
/// wasmtime's fiber stacks. A call that did yield would be a bug in elmbox:
/// it fails loudly, as an error that names it, rather than spin.
pub(crate) fn run_to_completion<T>(
    future: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => Err(wasmtime::format_err!(
            "elmbox bug: a guest call yielded, but nothing elmbox sets up ever yields"
        )),
    }
}

/// wasmtime's [`StoreLimits`], plus a note of the last memory growth it
/// refused, so an error can name the cap instead of the symptom.
pub(crate) struct CapLimiter {
    inner: StoreLimits,
    /// Taken (and cleared) after each call.
    pub(crate) memory_refused: Option<usize>,
}

impl ResourceLimiter for CapLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.memory_refused = Some(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
