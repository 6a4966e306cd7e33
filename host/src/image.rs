//! A pre-initialised app ([`AppImage`]): a module made by
//! [`Runtime::build`] (or `elmbox build`), compiled once, from which any
//! number of instances start with the app already evaluated and running.
//! Instantiating one evaluates no JavaScript: its memory is the snapshot.

use elmbox_abi::{StdioConfig, EVENT_JSON};
use wasmtime::{InstancePre, Module};

use crate::app::{wall_clock_ms, App, AppSettings};
use crate::config::{AppConfig, EventFormat};
use crate::console::Console;
use crate::error::{Error, Result};
use crate::guest::run_to_completion;
use crate::limits::Limits;
use crate::runtime::{Runtime, StoreState};
use crate::snapshot::BuildOptions;

/// A compiled, pre-initialised app. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct AppImage {
    runtime: Runtime,
    pre: InstancePre<StoreState>,
    stdio: StdioConfig,
    /// Learnt from the first instance; see `GuestExports::bind`.
    reply_at: Option<usize>,
    limits: Limits,
    console: Console,
}

impl Runtime {
    /// Compiles a module made by [`Runtime::build`] or `elmbox build`.
    /// Anything else is refused with [`Error::BadModule`], saying why.
    pub fn image(&self, wasm: &[u8]) -> Result<AppImage> {
        if !wasm.starts_with(b"\0asm") {
            return Err(bad_module("it is not a WebAssembly module"));
        }
        let module = Module::new(self.engine(), wasm)
            .map_err(|e| bad_module(format!("it is not valid WebAssembly: {e:#}")))?;
        if module.get_export("elmbox_abi_version").is_none() {
            return Err(bad_module(
                "it is not an elmbox module (it has no `elmbox_abi_version` export)",
            ));
        }
        let pre = self
            .linker()
            .instantiate_pre(&module)
            .map_err(|e| bad_module(format!("it cannot be linked: {e:#}")))?;
        let mut image = AppImage {
            runtime: self.clone(),
            pre,
            // Until the first instance tells what the build recorded.
            stdio: StdioConfig {
                name: "app.wasm".into(),
                ..StdioConfig::default()
            },
            reply_at: None,
            limits: Limits::default(),
            console: Console::default(),
        };
        // One instance, to read the settings the build recorded.
        let mut probe = image
            .start()
            .map_err(|e| bad_module(format!("it does not start: {e}")))?;
        image.reply_at = Some(probe.reply_at());
        image.stdio = probe.stdio()?.ok_or_else(|| {
            bad_module("it holds no app: it is the bare guest, not the output of `elmbox build`")
        })?;
        image.limits.max_event_bytes = clamp(image.stdio.max_event_bytes);
        image.limits.max_output_bytes = clamp(image.stdio.max_output_bytes);
        Ok(image)
    }

    /// [`Runtime::build`] followed by [`Runtime::image`]: the app evaluated
    /// once here, then instantiated from its snapshot as often as needed.
    /// The image keeps `config`'s limits and console.
    pub fn snapshot(&self, source: impl AsRef<[u8]>, config: AppConfig) -> Result<AppImage> {
        let (limits, console) = (config.limits.clone(), config.console.clone());
        let wasm = self.build(source, config, &BuildOptions::default())?;
        Ok(self.image(&wasm)?.limits(limits).console(console))
    }
}

impl AppImage {
    /// A new instance of the app, in the state the build left it: no
    /// JavaScript is evaluated. Unless the build fixed the clock's epoch,
    /// `Date.now()` starts from the wall-clock time now.
    pub fn instantiate(&self) -> Result<App> {
        let mut app = self.start()?;
        if !self.stdio.fixed_epoch {
            app.set_clock(wall_clock_ms())?;
        }
        Ok(app)
    }

    fn start(&self) -> Result<App> {
        let mut store = self.runtime.new_store(&self.limits)?;
        let instance = run_to_completion(self.pre.instantiate_async(&mut store))?;
        let settings = AppSettings {
            name: self.stdio.name.clone(),
            // The module's `init` ran at build time; no later error names it.
            module: String::new(),
            event_format: self.event_format(),
            limits: self.limits.clone(),
            console: self.console.clone(),
        };
        App::attach(store, instance, settings, self.reply_at)
    }

    /// The limits of every instance made from now on. The event and output
    /// size limits start as the build set them.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
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

    /// The current limits for new instances.
    pub fn current_limits(&self) -> &Limits {
        &self.limits
    }

    /// The app's name, as given at build time.
    pub fn name(&self) -> &str {
        &self.stdio.name
    }

    /// How events reach the app, as fixed at build time.
    pub fn event_format(&self) -> EventFormat {
        if self.stdio.event_kind == EVENT_JSON {
            EventFormat::Json
        } else {
            EventFormat::Text
        }
    }

    /// Virtual milliseconds the module's own stdio loop advances per event.
    pub fn advance_ms(&self) -> u64 {
        self.stdio.advance_ms
    }
}

fn bad_module(reason: impl Into<String>) -> Error {
    Error::BadModule {
        reason: reason.into(),
    }
}

fn clamp(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}
