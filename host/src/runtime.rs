//! The engine: one wasmtime `Engine`, the guest module compiled once, and a
//! linker with WASI preview 1, pre-resolved into an `InstancePre` so that
//! loading an app is only instantiation plus evaluating its JavaScript once.
//!
//! Guest code runs on wasmtime's own fiber stacks (its async API, driven to
//! completion at once), never on the caller's thread stack. QuickJS on WASI
//! has no stack limit of its own, so JavaScript recursion is bounded only by
//! the wasm stack: it must be deep enough for real Elm code (`List.foldr`
//! recurses 500 levels before switching strategy) whatever thread calls us.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::{Config, Engine, InstancePre, Linker, Module, Store, StoreLimitsBuilder};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::WasiCtxBuilder;

use crate::app::App;
use crate::config::AppConfig;
use crate::error::{Error, Result};
use crate::limits::{CapLimiter, Limits};
use crate::snapshot::Instrumented;

/// The guest module, built by `make guest` and embedded at compile time.
pub static GUEST_WASM: &[u8] = include_bytes!(env!("ELMBOX_GUEST_WASM_PATH"));

/// Bytes of the guest's stderr kept per app: only a crashing guest writes
/// there (Rust panic messages), and the message goes into the error.
const GUEST_STDERR_CAPACITY: usize = 64 << 10;

/// Native stack for guest code: about 17,000 nested JavaScript calls (each
/// QuickJS call level takes ~500 bytes of it). The guest's own C stack is
/// sized to outlast it (guest/build.rs).
pub const WASM_STACK_BYTES: usize = 8 << 20;

/// How often the engine's epoch advances: the granularity of CPU deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Per-store data: WASI state, the guest's captured stderr, and limits.
pub(crate) struct StoreState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) limits: CapLimiter,
    /// Epoch ticks each guest call may run (see [`EPOCH_TICK`]), on a
    /// runtime with deadlines.
    pub(crate) deadline_ticks: Option<u64>,
}

/// Compiled guest plus engine, shared by every app it loads. Create one per
/// process and keep it; it is `Send + Sync` and cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    /// Shared: every image (and so every pool tenant) holds a `Runtime`.
    linker: Arc<Linker<StoreState>>,
    pre: InstancePre<StoreState>,
    deadlines: bool,
    /// The guest's linear memory at instantiation, the floor of any cap.
    initial_memory_bytes: usize,
    /// The guest instrumented for snapshots, compiled on first use
    /// (`elmbox build`, [`Runtime::snapshot`]).
    instrumented: Arc<OnceLock<Arc<Instrumented>>>,
}

impl Runtime {
    /// Compiles the embedded guest with default engine settings. Apps on it
    /// cannot have CPU deadlines; see [`Runtime::with_deadlines`].
    pub fn new() -> Result<Runtime> {
        Runtime::with_engine_config(&Config::new(), false)
    }

    /// A runtime whose apps may have CPU deadlines
    /// ([`Limits::deadline`](crate::Limits::deadline)): guest code is compiled
    /// with epoch checks and one thread ticks the epoch every [`EPOCH_TICK`].
    /// The checks cost about a fifth of the throughput of a busy app
    /// (docs/PERFORMANCE.md), which is why they are not the default.
    pub fn with_deadlines() -> Result<Runtime> {
        Runtime::with_engine_config(&Config::new(), true)
    }

    /// Like [`Runtime::new`], with your own wasmtime settings. The stack and
    /// epoch settings are elmbox's own (see [`WASM_STACK_BYTES`], [`EPOCH_TICK`]).
    pub fn with_engine_config(config: &Config, deadlines: bool) -> Result<Runtime> {
        let mut config = config.clone();
        config
            .max_wasm_stack(WASM_STACK_BYTES)
            .async_stack_size(WASM_STACK_BYTES + (1 << 20))
            .epoch_interruption(deadlines);
        let engine = Engine::new(&config)?;
        if deadlines {
            start_epoch_ticker(&engine);
        }
        let module = Module::new(&engine, GUEST_WASM)?;
        let mut linker: Linker<StoreState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut StoreState| &mut s.wasi)?;
        let initial_memory_bytes = module
            .exports()
            .find_map(|e| e.ty().memory().map(|m| m.minimum() as usize * 65536))
            .unwrap_or(0);
        let pre = linker.instantiate_pre(&module)?;
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            pre,
            deadlines,
            initial_memory_bytes,
            instrumented: Arc::default(),
        })
    }

    /// The guest instrumented for Wizer snapshots, compiled once per runtime.
    pub(crate) fn instrumented(&self) -> Result<Arc<Instrumented>> {
        if let Some(done) = self.instrumented.get() {
            return Ok(done.clone());
        }
        let made = Arc::new(Instrumented::new(&self.engine, &self.linker)?);
        Ok(self.instrumented.get_or_init(|| made).clone())
    }

    pub(crate) fn linker(&self) -> &Linker<StoreState> {
        &self.linker
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Starts one app from its JavaScript (the output of `elm make`): a fresh
    /// sandbox, the script evaluated once, `init` called, ports connected.
    pub fn load(&self, source: impl AsRef<[u8]>, config: AppConfig) -> Result<App> {
        let mut store = self.new_store(&config.limits)?;
        let instance = crate::guest::run_to_completion(self.pre.instantiate_async(&mut store))?;
        App::start(store, instance, source.as_ref(), config)
    }

    /// A store for one app: WASI with nothing of the host visible, the
    /// app's memory cap and CPU deadline.
    pub(crate) fn new_store(&self, limits: &Limits) -> Result<Store<StoreState>> {
        let stderr = MemoryOutputPipe::new(GUEST_STDERR_CAPACITY);
        // No arguments, environment, files or sockets: the app sees nothing
        // of the host but the clock and random numbers.
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build_p1();
        let mut store_limits = StoreLimitsBuilder::new().trap_on_grow_failure(false);
        if let Some(bytes) = limits.max_memory_bytes {
            if bytes < self.initial_memory_bytes {
                return Err(Error::Config(format!(
                    "a linear memory cap of {bytes} bytes is below the guest's initial {} bytes",
                    self.initial_memory_bytes
                )));
            }
            store_limits = store_limits.memory_size(bytes);
        }
        let deadline_ticks = match (limits.deadline, self.deadlines) {
            // One extra tick: the deadline may start just before a tick.
            (Some(d), true) => Some((d.as_nanos() / EPOCH_TICK.as_nanos()) as u64 + 1),
            (Some(_), false) => {
                return Err(Error::Config(
                    "CPU deadlines need a runtime made with Runtime::with_deadlines()".into(),
                ))
            }
            // "Never", without overflowing the engine's current epoch + this.
            (None, true) => Some(u64::MAX / 2),
            (None, false) => None,
        };
        let state = StoreState {
            wasi,
            stderr,
            limits: CapLimiter {
                inner: store_limits.build(),
                memory_refused: None,
            },
            deadline_ticks,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        if let Some(ticks) = deadline_ticks {
            store.epoch_deadline_trap();
            store.set_epoch_deadline(ticks);
        }
        Ok(store)
    }
}

/// One thread per engine advances its epoch every [`EPOCH_TICK`], so that a
/// call past its deadline traps; it ends when the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("elmbox-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}
