//! The engine: one wasmtime `Engine`, the guest module compiled once, and a
//! linker with WASI preview 1, pre-resolved into an `InstancePre` so that
//! loading an app is only instantiation plus evaluating its JavaScript once.
//!
//! Guest code runs on wasmtime's own fiber stacks (its async API, driven to
//! completion at once), never on the caller's thread stack. QuickJS on WASI
//! has no stack limit of its own, so JavaScript recursion is bounded only by
//! the wasm stack: it must be deep enough for real Elm code (`List.foldr`
//! recurses 500 levels before switching strategy) whatever thread calls us.

use wasmtime::{
    Config, Engine, InstancePre, Linker, Module, Store, StoreLimits, StoreLimitsBuilder,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::WasiCtxBuilder;

use crate::app::App;
use crate::config::AppConfig;
use crate::error::Result;

/// The guest module, built by `make guest` and embedded at compile time.
pub static GUEST_WASM: &[u8] = include_bytes!(env!("ELMBOX_GUEST_WASM_PATH"));

/// Bytes of the guest's stderr kept per app: only a crashing guest writes
/// there (Rust panic messages), and the message goes into the error.
const GUEST_STDERR_CAPACITY: usize = 64 << 10;

/// Native stack for guest code: about 17,000 nested JavaScript calls (each
/// QuickJS call level takes ~500 bytes of it). The guest's own C stack is
/// sized to outlast it (guest/build.rs).
pub const WASM_STACK_BYTES: usize = 8 << 20;

/// Per-store data: WASI state, the guest's captured stderr, and limits.
pub(crate) struct StoreState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) limits: StoreLimits,
}

/// Compiled guest plus engine, shared by every app it loads. Create one per
/// process and keep it; it is `Send + Sync` and cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    pre: InstancePre<StoreState>,
}

impl Runtime {
    /// Compiles the embedded guest with default engine settings.
    pub fn new() -> Result<Runtime> {
        Runtime::with_engine_config(&Config::new())
    }

    /// Like [`Runtime::new`], with your own wasmtime settings. The stack
    /// settings are elmbox's own (see [`WASM_STACK_BYTES`]).
    pub fn with_engine_config(config: &Config) -> Result<Runtime> {
        let mut config = config.clone();
        config
            .max_wasm_stack(WASM_STACK_BYTES)
            .async_stack_size(WASM_STACK_BYTES + (1 << 20));
        let engine = Engine::new(&config)?;
        let module = Module::new(&engine, GUEST_WASM)?;
        let mut linker: Linker<StoreState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut StoreState| &mut s.wasi)?;
        let pre = linker.instantiate_pre(&module)?;
        Ok(Runtime { engine, pre })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Starts one app from its JavaScript (the output of `elm make`): a fresh
    /// sandbox, the script evaluated once, `init` called, ports connected.
    pub fn load(&self, source: impl AsRef<[u8]>, config: AppConfig) -> Result<App> {
        let stderr = MemoryOutputPipe::new(GUEST_STDERR_CAPACITY);
        // No arguments, environment, files or sockets: the app sees nothing
        // of the host but the clock and random numbers.
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build_p1();
        let state = StoreState {
            wasi,
            stderr,
            limits: StoreLimitsBuilder::new()
                .trap_on_grow_failure(false)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let instance = crate::guest::run_to_completion(self.pre.instantiate_async(&mut store))?;
        App::start(store, instance, source.as_ref(), config)
    }
}
