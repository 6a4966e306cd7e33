//! How to start one app ([`AppConfig`]): which module and ports, flags,
//! clock, the QuickJS settings fixed inside it, and where its console output
//! goes. The sandbox's bounds are the runtime's
//! ([`SandboxLimits`](crate::SandboxLimits)).

use std::time::{SystemTime, UNIX_EPOCH};

use elmbox_abi::AppSettings;
#[cfg(feature = "measure")]
pub use elmbox_abi::DispatchMode;
pub use elmbox_abi::EventFormat;
use serde_json::Value;

use crate::console::Console;
use crate::error::{Error, Result};

/// Settings for one app. Start from [`AppConfig::default`] and change what
/// you need. Everything here but the console is fixed inside the app when
/// it is loaded, and so in any snapshot of it ([`AppImage::settings`]
/// reports them back).
///
/// [`AppImage::settings`]: crate::AppImage::settings
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Name used in errors, stack traces and console output.
    pub name: String,
    /// The Elm module whose `init` starts the app (`Main`, or dotted `Foo.Bar`).
    pub module: String,
    /// The incoming port events go to.
    pub in_port: String,
    /// The outgoing port whose values answer them.
    pub out_port: String,
    /// Every port at once, instead of `in_port` and `out_port`: each event
    /// is `{"port": NAME, "value": VALUE}` for any incoming port
    /// ([`App::send`](crate::App::send)), and every value sent on any
    /// outgoing port comes back as `{"port": NAME, "value": VALUE}`, in the
    /// order sent. `event_format` is then unused.
    pub all_ports: bool,
    /// Passed as `init({ flags })`, as JSON text; `None` calls `init()`.
    /// Text, so that objects keep the key order they were written in (an
    /// Elm decoder may depend on it; a `serde_json::Value` keeps it only
    /// with serde_json's `preserve_order` feature).
    pub flags: Option<String>,
    pub event_format: EventFormat,
    /// How events reach the app: elmbox's way, or one of the anti-patterns
    /// it replaces, for measuring them (`elmbox soak --mode`, `make bench`).
    #[cfg(feature = "measure")]
    pub dispatch_mode: DispatchMode,
    /// What `Date.now()` returns at load, in ms since the Unix epoch. `None`
    /// takes the host's wall clock (and an instance started from a snapshot
    /// takes the wall clock when it starts). Virtual time then only moves
    /// through [`App::advance_time`](crate::App::advance_time).
    pub epoch_ms: Option<f64>,
    /// Bytes QuickJS allocates before its cycle collector runs; `usize::MAX`
    /// is never, which lets Elm's cyclic garbage accumulate.
    pub gc_threshold: usize,
    /// QuickJS heap limit in bytes (`None`: no limit). Past it, allocations
    /// throw a JavaScript out-of-memory error inside the app, which goes on.
    pub js_memory_limit: Option<usize>,
    /// Timer callbacks allowed at one virtual instant before the app is
    /// declared runaway (a `setTimeout(f, 0)` that re-arms itself forever).
    pub same_instant_timer_limit: u32,
    /// `Math.random`'s seed (`None`: from the host's randomness). Its state
    /// lives in the sandbox's memory from load on, so snapshots and
    /// replays draw the same numbers either way.
    pub random_seed: Option<u64>,
    /// QuickJS's JavaScript stack limit, in bytes. Only the native engine
    /// (benchmarks) honours it: QuickJS-ng turns its stack limit off on
    /// WASI, so in the sandbox recursion is bounded by the wasm stack
    /// instead, and runaway recursion traps (`Error::Crashed`, "stack
    /// overflow"); see [`WASM_STACK_BYTES`](crate::WASM_STACK_BYTES).
    pub max_stack_size: usize,
    /// Rewrite the app's JavaScript before it is evaluated
    /// (`elmbox-optimize`): Elm's calls through `A2`…`A9` made without them,
    /// and an app's one outgoing port taking each batch without a timer in
    /// between; less work per event with the same behaviour. On by default;
    /// off runs the text exactly as given.
    pub optimize: bool,
    pub console: Console,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            name: "app.js".to_string(),
            module: "Main".to_string(),
            in_port: "onEvent".to_string(),
            out_port: "respond".to_string(),
            all_ports: false,
            flags: None,
            event_format: EventFormat::Text,
            #[cfg(feature = "measure")]
            dispatch_mode: DispatchMode::Call,
            epoch_ms: None,
            gc_threshold: 1 << 20,
            js_memory_limit: None,
            same_instant_timer_limit: 100_000,
            random_seed: None,
            max_stack_size: 256 << 10,
            optimize: true,
            console: Console::default(),
        }
    }
}

impl AppConfig {
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    pub fn module(mut self, module: impl Into<String>) -> Self {
        self.module = module.into();
        self
    }
    pub fn in_port(mut self, port: impl Into<String>) -> Self {
        self.in_port = port.into();
        self
    }
    pub fn out_port(mut self, port: impl Into<String>) -> Self {
        self.out_port = port.into();
        self
    }
    pub fn all_ports(mut self, all: bool) -> Self {
        self.all_ports = all;
        self
    }
    pub fn optimize(mut self, optimize: bool) -> Self {
        self.optimize = optimize;
        self
    }
    pub fn flags(mut self, flags: Value) -> Self {
        self.flags = Some(flags.to_string());
        self
    }
    /// Flags as JSON text, passed on as written (checked when the app loads).
    pub fn flags_json(mut self, json: impl Into<String>) -> Self {
        self.flags = Some(json.into());
        self
    }
    pub fn event_format(mut self, format: EventFormat) -> Self {
        self.event_format = format;
        self
    }
    #[cfg(feature = "measure")]
    pub fn dispatch_mode(mut self, mode: DispatchMode) -> Self {
        self.dispatch_mode = mode;
        self
    }
    pub fn epoch_ms(mut self, epoch_ms: f64) -> Self {
        self.epoch_ms = Some(epoch_ms);
        self
    }
    pub fn gc_threshold(mut self, bytes: usize) -> Self {
        self.gc_threshold = bytes;
        self
    }
    pub fn js_memory_limit(mut self, bytes: usize) -> Self {
        self.js_memory_limit = Some(bytes);
        self
    }
    pub fn same_instant_timer_limit(mut self, callbacks: u32) -> Self {
        self.same_instant_timer_limit = callbacks;
        self
    }
    pub fn random_seed(mut self, seed: u64) -> Self {
        self.random_seed = Some(seed);
        self
    }
    pub fn console(mut self, console: Console) -> Self {
        self.console = console;
        self
    }

    /// The settings the guest loads the app with: these, with the clock's
    /// epoch taken from the wall clock now unless [`AppConfig::epoch_ms`]
    /// fixes it.
    pub fn settings(&self) -> Result<AppSettings> {
        let epoch_ms = self.epoch_ms.unwrap_or_else(wall_clock_ms);
        if !epoch_ms.is_finite() {
            return Err(Error::Config(format!(
                "epoch_ms must be finite, got {epoch_ms}"
            )));
        }
        if let Some(flags) = &self.flags {
            serde_json::from_str::<Value>(flags)
                .map_err(|e| Error::Config(format!("the flags are not JSON: {e}")))?;
        }
        // The guest is wasm32: its usize::MAX ("never", "no limit") is u32::MAX.
        let clamp = |bytes: usize| u32::try_from(bytes).unwrap_or(u32::MAX);
        Ok(AppSettings {
            name: self.name.clone(),
            module: self.module.clone(),
            in_port: self.in_port.clone(),
            out_port: self.out_port.clone(),
            all_ports: self.all_ports,
            flags: self.flags.clone(),
            event_format: self.event_format,
            epoch_ms,
            fixed_epoch: self.epoch_ms.is_some(),
            gc_threshold: clamp(self.gc_threshold),
            js_memory_limit: self.js_memory_limit.map(clamp),
            max_stack_size: clamp(self.max_stack_size),
            same_instant_timer_limit: self.same_instant_timer_limit,
            random_seed: self.random_seed,
            #[cfg(feature = "measure")]
            mode: self.dispatch_mode,
            #[cfg(not(feature = "measure"))]
            mode: elmbox_abi::DispatchMode::Call,
            optimize: self.optimize,
            migrated: None,
        })
    }
}

/// A seed from the host's randomness.
pub(crate) fn host_random() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(SystemTime::now())
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn wall_clock_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64)
}
