//! A pre-initialised app ([`AppImage`]): a module made by
//! [`Runtime::build`] (or `elmbox build`), compiled once, from which any
//! number of instances start with the app already evaluated and running.
//! Instantiating one evaluates no JavaScript: its memory is the snapshot.

use elmbox_abi::{AppSettings, ModuleSettings, StdioConfig};
use serde_json::Value;
use wasmtime::{InstancePre, Module};

use crate::app::App;
use crate::config::{host_random, wall_clock_ms, AppConfig};
use crate::console::Console;
use crate::error::{Error, Result};
use crate::limits::SandboxLimits;
use crate::runtime::Runtime;
use crate::snapshot::BuildOptions;
use crate::store::{run_to_completion, StoreState};

/// A compiled, pre-initialised app. Cheap to clone; `Send + Sync`. Its
/// instances get the sandbox limits of the runtime it was made with.
#[derive(Clone)]
pub struct AppImage {
    runtime: Runtime,
    pre: InstancePre<StoreState>,
    /// What the build recorded in the module, read from its first instance.
    settings: ModuleSettings,
    /// Learnt from the first instance; see `GuestExports::bind`.
    reply_at: usize,
    /// What the app sent while it started, at build time.
    startup_outputs: Vec<Value>,
    console: Console,
}

impl Runtime {
    /// Compiles a module made by [`Runtime::build`] or `elmbox build`.
    /// Anything else is refused with [`Error::BadModule`], saying why.
    pub fn image(&self, wasm: &[u8]) -> Result<AppImage> {
        if !wasm.starts_with(b"\0asm") {
            return Err(Error::bad_module("it is not a WebAssembly module"));
        }
        let module = Module::new(self.engine(), wasm)
            .map_err(|e| Error::bad_module(format!("it is not valid WebAssembly: {e:#}")))?;
        if module.get_export("elmbox_abi_version").is_none() {
            return Err(Error::bad_module(
                "it is not an elmbox module (it has no `elmbox_abi_version` export)",
            ));
        }
        let pre = self
            .linker()
            .instantiate_pre(&module)
            .map_err(|e| Error::bad_module(format!("it cannot be linked: {e:#}")))?;
        // One instance, to read what the build recorded.
        let mut store = self.new_store();
        let instance = run_to_completion(pre.instantiate_async(&mut store))
            .map_err(|e| Error::bad_module(format!("it does not start: {e:#}")))?;
        let mut probe = App::attach(
            store,
            instance,
            self.guest_id(),
            "app.wasm".into(),
            self.limits().clone(),
            Console::default(),
            None,
        )
        .map_err(|e| Error::bad_module(format!("it does not start: {e}")))?;
        let settings = probe.module_settings()?.ok_or_else(Error::bare_guest)?;
        let startup_outputs = probe.kept_startup_outputs()?;
        Ok(AppImage {
            runtime: self.clone(),
            pre,
            startup_outputs,
            reply_at: probe.reply_at(),
            settings,
            console: Console::default(),
        })
    }

    /// [`Runtime::build`] followed by [`Runtime::image`]: the app evaluated
    /// once here, then instantiated from its snapshot as often as needed.
    /// The image keeps `config`'s console.
    pub fn snapshot(&self, source: impl AsRef<[u8]>, config: AppConfig) -> Result<AppImage> {
        let console = config.console.clone();
        let wasm = self.build(source, config, &BuildOptions::default())?;
        Ok(self.image(&wasm)?.console(console))
    }
}

impl AppImage {
    /// A new instance of the app, in the state the build left it: no
    /// JavaScript is evaluated. Unless the build fixed the clock's epoch,
    /// `Date.now()` starts from the wall-clock time now.
    pub fn instantiate(&self) -> Result<App> {
        let mut store = self.runtime.new_store();
        let instance = run_to_completion(self.pre.instantiate_async(&mut store))?;
        let mut app = App::attach(
            store,
            instance,
            self.runtime.guest_id(),
            self.settings.app.name.clone(),
            self.runtime.limits().clone(),
            self.console.clone(),
            Some(self.reply_at),
        )?;
        if !self.settings.app.fixed_epoch {
            app.set_clock(wall_clock_ms())?;
        }
        // Unless the build fixed the seed, each instance draws its own
        // numbers, not the ones every instance of the snapshot would.
        if self.settings.app.random_seed.is_none() {
            app.reseed(host_random())?;
        }
        app.set_startup_outputs(self.startup_outputs.clone());
        Ok(app)
    }

    /// The same app, whose instances get `limits`; refused as
    /// [`Runtime::with_limits`] refuses them.
    pub fn with_limits(&self, limits: SandboxLimits) -> Result<AppImage> {
        Ok(AppImage {
            runtime: self.runtime.with_limits(limits)?,
            ..self.clone()
        })
    }

    /// Where the console lines of instances made from now on go.
    pub fn console(mut self, console: Console) -> Self {
        self.console = console;
        self
    }

    /// Whether `runtime` (its engine) compiled this image.
    pub fn made_by(&self, runtime: &Runtime) -> bool {
        wasmtime::Engine::same(self.runtime.engine(), runtime.engine())
    }

    /// The sandbox limits of the instances made from now on.
    pub fn limits(&self) -> &SandboxLimits {
        self.runtime.limits()
    }

    /// The app's settings, as fixed when it was built (read from the module).
    pub fn settings(&self) -> &AppSettings {
        &self.settings.app
    }

    /// The app's name, as given at build time.
    pub fn name(&self) -> &str {
        &self.settings.app.name
    }

    /// How the module serves stdio on its own (on the wasmtime CLI), as
    /// fixed at build time: the clock's advance per event and its event and
    /// output size limits.
    pub fn stdio(&self) -> &StdioConfig {
        &self.settings.stdio
    }
}
