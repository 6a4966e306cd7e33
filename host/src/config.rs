//! How to start one app: which module and ports, flags, clock, QuickJS
//! settings, limits, and where console output goes.

use serde_json::Value;

use crate::console::Console;
use crate::limits::Limits;

/// How an event's bytes reach the app's incoming port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventFormat {
    /// As a JavaScript string (the port's type decides what it accepts).
    #[default]
    Text,
    /// Parsed as JSON first.
    Json,
}

pub use elmbox_abi::DispatchMode;

/// Settings for one app. Start from [`AppConfig::default`] and change what
/// you need.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Name used in errors, stack traces and console output.
    pub name: String,
    /// The Elm module whose `init` starts the app (`Main`, or dotted `Foo.Bar`).
    pub module: String,
    pub in_port: String,
    pub out_port: String,
    /// Passed as `init({ flags })`; `None` calls `init()`.
    pub flags: Option<Value>,
    pub event_format: EventFormat,
    pub dispatch_mode: DispatchMode,
    /// What `Date.now()` returns at load, in ms since the Unix epoch. `None`
    /// takes the host's wall clock. Virtual time then only moves through
    /// [`App::advance_time`](crate::App::advance_time).
    pub epoch_ms: Option<f64>,
    /// Bytes QuickJS allocates before its cycle collector runs. javy's default
    /// is never, which lets Elm's cyclic garbage accumulate.
    pub gc_threshold: usize,
    /// QuickJS's JavaScript stack limit, in bytes. Only the native engine
    /// (benchmarks) honours it: QuickJS-ng turns its stack limit off on
    /// WASI, so in the sandbox recursion is bounded by the wasm stack
    /// instead, and runaway recursion traps (`Error::Crashed`, "stack
    /// overflow"); see [`crate::runtime::WASM_STACK_BYTES`].
    pub max_stack_size: usize,
    pub limits: Limits,
    pub console: Console,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            name: "app.js".to_string(),
            module: "Main".to_string(),
            in_port: "onEvent".to_string(),
            out_port: "respond".to_string(),
            flags: None,
            event_format: EventFormat::Text,
            dispatch_mode: DispatchMode::Call,
            epoch_ms: None,
            gc_threshold: 1 << 20,
            max_stack_size: 256 << 10,
            limits: Limits::default(),
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
    pub fn flags(mut self, flags: Value) -> Self {
        self.flags = Some(flags);
        self
    }
    pub fn event_format(mut self, format: EventFormat) -> Self {
        self.event_format = format;
        self
    }
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
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    pub fn console(mut self, console: Console) -> Self {
        self.console = console;
        self
    }
}
