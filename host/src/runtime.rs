//! The runtime: one wasmtime `Engine`, the guest module compiled once, a
//! linker with WASI preview 1 pre-resolved into an `InstancePre`, and the
//! sandbox limits its apps run under. Loading an app is then only
//! instantiation plus evaluating its JavaScript once.
//!
//! The guest is compiled as Wizer instruments it: the same code, with its
//! memory and mutable globals exported (`__wizer_*`), so that any app's
//! sandbox can be snapshotted, as a built module (`snapshot.rs`) or as
//! state to restore.

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::{Config, Engine, InstancePre, Linker, Module, Store};
use wasmtime_wizer::Wizer;

use crate::app::App;
use elmbox_abi::AppSettings;

use crate::code_cache;
use crate::config::AppConfig;
use crate::console::Console;
use crate::error::{Error, Result};
use crate::guest::GuestId;
use crate::limits::SandboxLimits;
use crate::store::{self, run_to_completion, StoreState, WASM_STACK_BYTES};

/// The guest module, built by `make guest` and embedded at compile time.
#[cfg(feature = "embedded-guest")]
pub static GUEST_WASM: &[u8] = include_bytes!(env!("ELMBOX_GUEST_WASM_PATH"));

/// A compiled guest plus the sandbox limits its apps get. Create one per
/// process and keep it; it is `Send + Sync` and cheap to clone.
/// [`Runtime::with_limits`] makes another that shares the compiled guest.
#[derive(Clone)]
pub struct Runtime {
    compiled: Arc<CompiledGuest>,
    limits: SandboxLimits,
}

/// What every runtime made from one guest shares.
struct CompiledGuest {
    engine: Engine,
    linker: Linker<StoreState>,
    pre: InstancePre<StoreState>,
    /// The guest's bytes, as given (before instrumenting): snapshots parse
    /// them again for Wizer (`snapshot.rs`).
    wasm: Box<[u8]>,
    /// Whether the engine has epoch interruption, so apps can have deadlines.
    deadlines: bool,
    /// Which guest build this is.
    guest_id: GuestId,
    /// The guest's linear memory at instantiation, the floor of any cap.
    initial_memory_bytes: usize,
}

/// Wizer as elmbox uses it: the guest's `elmbox_main` becomes a built
/// module's `_start`. Instrumenting and snapshotting must agree on it.
pub(crate) fn wizer() -> Wizer {
    let mut wizer = Wizer::new();
    wizer.func_rename("_start", "elmbox_main");
    wizer
}

/// How to make a [`Runtime`]: which guest, which engine settings, whether
/// apps can have CPU deadlines, and the sandbox limits of its apps.
pub struct RuntimeBuilder {
    guest: Option<Vec<u8>>,
    engine: Config,
    deadlines: bool,
    limits: SandboxLimits,
    code_cache: Option<PathBuf>,
}

impl RuntimeBuilder {
    /// The guest module to run apps in (`elmbox_guest.wasm`, as `make guest`
    /// builds it). Without it the runtime takes the embedded guest (the
    /// default `embedded-guest` feature).
    pub fn guest(mut self, wasm: impl Into<Vec<u8>>) -> Self {
        self.guest = Some(wasm.into());
        self
    }

    /// Your own wasmtime settings. The stack settings are elmbox's own (see
    /// [`WASM_STACK_BYTES`]), and epoch interruption stays off (deadlines
    /// are kept inside the sandbox).
    pub fn engine_config(mut self, config: &Config) -> Self {
        self.engine = config.clone();
        self
    }

    /// Whether apps on this runtime may have CPU deadlines. They are kept
    /// inside the sandbox, by QuickJS's interrupt handler polled every
    /// 10,000 interpreter ticks against the time since the call began, so
    /// they cost nothing in compiled code (epoch checks cost a fifth of a
    /// busy app's throughput: docs/PERFORMANCE.md); limits with a deadline
    /// turn this on.
    pub fn deadlines(mut self, on: bool) -> Self {
        self.deadlines = on;
        self
    }

    /// The sandbox limits of every app this runtime starts.
    pub fn limits(mut self, limits: SandboxLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Keep the compiled guest in `dir` and take it from there next time:
    /// a runtime then starts in milliseconds instead of compiling the guest
    /// (~0.8 s on two cores). One file per guest build and engine setting;
    /// a file that does not load is compiled again, and a directory that
    /// cannot be written only costs the time. The files are native code,
    /// loaded as they are: `dir` must be writable by its owner alone.
    pub fn code_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.code_cache = Some(dir.into());
        self
    }

    /// Compiles the guest (about a second, unless the code cache holds it)
    /// and checks the limits against it.
    pub fn build(self) -> Result<Runtime> {
        let deadlines = self.deadlines || self.limits.deadline.is_some();
        let wasm = match self.guest {
            Some(wasm) => wasm.into_boxed_slice(),
            #[cfg(feature = "embedded-guest")]
            None => GUEST_WASM.into(),
            #[cfg(not(feature = "embedded-guest"))]
            None => {
                return Err(Error::Config(
                    "no guest module: give one with RuntimeBuilder::guest (or \
                     Runtime::from_guest), or enable elmbox's `embedded-guest` feature"
                        .into(),
                ))
            }
        };
        let mut config = self.engine;
        config
            .max_wasm_stack(WASM_STACK_BYTES)
            .async_stack_size(WASM_STACK_BYTES + (1 << 20))
            // Deadlines are kept inside the sandbox, by QuickJS's interrupt
            // handler (the guest's `deadline`): epoch checks in the compiled
            // guest cost ~22% of a busy app's time.
            .epoch_interruption(false);
        let engine = Engine::new(&config)?;
        let not_a_guest = |e: wasmtime::Error| Error::BadModule {
            reason: format!("the guest module does not compile: {e:#}"),
        };
        let guest_id = GuestId::of(&wasm);
        let compile = || -> Result<Module> {
            let (_, instrumented) = wizer().instrument(&wasm).map_err(not_a_guest)?;
            Module::new(&engine, &instrumented).map_err(not_a_guest)
        };
        let module = match &self.code_cache {
            Some(dir) => code_cache::load_or_compile(dir, &engine, guest_id, compile)?,
            None => compile()?,
        };
        let initial_memory_bytes = module
            .exports()
            .find_map(|e| e.ty().memory().map(|m| m.minimum() as usize * 65536))
            .unwrap_or(0);
        self.limits.check(initial_memory_bytes, deadlines)?;
        let mut linker: Linker<StoreState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut StoreState| &mut s.wasi)?;
        let pre = linker.instantiate_pre(&module)?;
        Ok(Runtime {
            compiled: Arc::new(CompiledGuest {
                engine,
                linker,
                pre,
                wasm,
                deadlines,
                initial_memory_bytes,
                guest_id,
            }),
            limits: self.limits,
        })
    }
}

impl Runtime {
    /// How to make a runtime with other settings than [`Runtime::new`]'s.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            guest: None,
            engine: Config::new(),
            deadlines: false,
            limits: SandboxLimits::default(),
            code_cache: None,
        }
    }

    /// Compiles the embedded guest with default settings and limits. Apps on
    /// it cannot have CPU deadlines; see [`Runtime::with_deadlines`].
    #[cfg(feature = "embedded-guest")]
    pub fn new() -> Result<Runtime> {
        Runtime::builder().build()
    }

    /// A runtime whose apps may have CPU deadlines
    /// ([`SandboxLimits::deadline`]); see [`RuntimeBuilder::deadlines`].
    #[cfg(feature = "embedded-guest")]
    pub fn with_deadlines() -> Result<Runtime> {
        Runtime::builder().deadlines(true).build()
    }

    /// Compiles the guest module given (`elmbox_guest.wasm`, as `make guest`
    /// builds it), for builds of elmbox without the embedded guest.
    pub fn from_guest(wasm: impl Into<Vec<u8>>) -> Result<Runtime> {
        Runtime::builder().guest(wasm).build()
    }

    /// A runtime that shares this one's compiled guest, whose apps get
    /// `limits`. Refused when the engine cannot keep them: a deadline on a
    /// runtime without deadlines, a memory cap below the guest's initial
    /// memory.
    pub fn with_limits(&self, limits: SandboxLimits) -> Result<Runtime> {
        limits.check(self.compiled.initial_memory_bytes, self.compiled.deadlines)?;
        Ok(Runtime {
            compiled: self.compiled.clone(),
            limits,
        })
    }

    /// The sandbox limits of the apps this runtime starts.
    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// Whether apps on this runtime can have CPU deadlines.
    pub fn has_deadlines(&self) -> bool {
        self.compiled.deadlines
    }

    pub fn engine(&self) -> &Engine {
        &self.compiled.engine
    }

    /// Starts one app from its JavaScript (the output of `elm make`): a fresh
    /// sandbox, the script evaluated once, `init` called, ports connected.
    pub fn load(&self, source: impl AsRef<[u8]>, config: AppConfig) -> Result<App> {
        let settings = config.settings()?;
        self.load_settings(source.as_ref(), &settings, config.name, config.console)
    }

    /// [`Runtime::load`] with the settings as the guest takes them (a
    /// durable app's recorded ones, its clock's epoch included).
    pub(crate) fn load_settings(
        &self,
        source: &[u8],
        settings: &AppSettings,
        name: String,
        console: Console,
    ) -> Result<App> {
        let mut store = self.new_store();
        let instance = run_to_completion(self.compiled.pre.instantiate_async(&mut store))?;
        let mut app = App::attach(
            store,
            instance,
            self.guest_id(),
            name,
            self.limits.clone(),
            console,
            None,
        )?;
        app.load(settings, source)?;
        Ok(app)
    }

    /// Which guest build this runtime runs.
    pub fn guest_id(&self) -> GuestId {
        self.compiled.guest_id
    }

    /// The compiled guest, ready to instantiate.
    pub(crate) fn guest_pre(&self) -> &InstancePre<StoreState> {
        &self.compiled.pre
    }

    /// The guest module's bytes.
    pub(crate) fn guest_wasm(&self) -> &[u8] {
        &self.compiled.wasm
    }

    pub(crate) fn linker(&self) -> &Linker<StoreState> {
        &self.compiled.linker
    }

    /// A store for one app under this runtime's limits.
    pub(crate) fn new_store(&self) -> Store<StoreState> {
        store::new_store(&self.compiled.engine, &self.limits)
    }
}
