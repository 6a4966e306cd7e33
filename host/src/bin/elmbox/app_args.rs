//! Options shared by every subcommand that loads an app.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use elmbox::{AppConfig, EventFormat, Limits};

#[derive(Args)]
pub struct AppArgs {
    /// The app: JavaScript produced by `elm make` for a `Platform.worker`.
    #[arg(value_name = "APP.js")]
    pub app: PathBuf,

    /// Elm module whose `init` starts the app (dotted for nested modules).
    #[arg(long, default_value = "Main", value_name = "NAME")]
    pub module: String,

    /// Incoming port the events are sent to.
    #[arg(long, default_value = "onEvent", value_name = "NAME")]
    pub in_port: String,

    /// Outgoing port whose values are collected as responses.
    #[arg(long, default_value = "respond", value_name = "NAME")]
    pub out_port: String,

    /// Flags for `init`, as JSON.
    #[arg(long, value_name = "JSON")]
    pub flags: Option<String>,

    /// Parse each event as JSON instead of passing it as a string.
    #[arg(long)]
    pub json_events: bool,

    /// Largest event accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_event_bytes, value_name = "BYTES")]
    pub max_event_bytes: usize,

    /// Largest response (one event's JSON array of outputs), in bytes.
    #[arg(long, default_value_t = Limits::default().max_output_bytes, value_name = "BYTES")]
    pub max_output_bytes: usize,

    /// Cap on the sandbox's linear memory, in MiB (the guest needs ~10).
    #[arg(long, value_name = "MIB")]
    pub max_memory_mb: Option<usize>,

    /// QuickJS heap limit, in MiB: past it the app gets an out-of-memory
    /// exception.
    #[arg(long, value_name = "MIB")]
    pub js_memory_mb: Option<usize>,

    /// CPU deadline per event, in ms: an app still running then is stopped
    /// and marked failed.
    #[arg(long, value_name = "MS")]
    pub deadline_ms: Option<u64>,

    /// QuickJS GC threshold in bytes: allocation volume between cycle collections.
    #[arg(long, default_value_t = AppConfig::default().gc_threshold, value_name = "BYTES")]
    pub gc_threshold: usize,

    /// QuickJS's JavaScript stack limit in bytes; deeper recursion throws a
    /// RangeError inside the app.
    #[arg(long, default_value_t = AppConfig::default().max_stack_size, value_name = "BYTES")]
    pub js_stack_bytes: usize,

    /// Start of the virtual clock, in ms since the Unix epoch (default: now).
    #[arg(long, value_name = "MS")]
    pub epoch_ms: Option<f64>,
}

impl AppArgs {
    /// The runtime these options need: with epoch checks only when a CPU
    /// deadline was asked for, since they slow every app down.
    pub fn runtime(&self) -> anyhow::Result<elmbox::Runtime> {
        Ok(if self.deadline_ms.is_some() {
            elmbox::Runtime::with_deadlines()?
        } else {
            elmbox::Runtime::new()?
        })
    }

    /// Reads the app's source and builds its configuration.
    pub fn load_parts(&self) -> anyhow::Result<(Vec<u8>, AppConfig)> {
        let source = std::fs::read(&self.app)
            .with_context(|| format!("cannot read {}", self.app.display()))?;
        let flags = match &self.flags {
            Some(text) => Some(
                serde_json::from_str(text)
                    .with_context(|| format!("--flags is not JSON: {text}"))?,
            ),
            None => None,
        };
        let name = self
            .app
            .file_name()
            .map_or_else(|| "app.js".into(), |n| n.to_string_lossy().into_owned());
        let config = AppConfig {
            name,
            module: self.module.clone(),
            in_port: self.in_port.clone(),
            out_port: self.out_port.clone(),
            flags,
            event_format: if self.json_events {
                EventFormat::Json
            } else {
                EventFormat::Text
            },
            epoch_ms: self.epoch_ms,
            gc_threshold: self.gc_threshold,
            max_stack_size: self.js_stack_bytes,
            limits: Limits {
                max_event_bytes: self.max_event_bytes,
                max_output_bytes: self.max_output_bytes,
                max_memory_bytes: self.max_memory_mb.map(|mb| mb << 20),
                js_memory_limit: self.js_memory_mb.map(|mb| mb << 20),
                deadline: self.deadline_ms.map(std::time::Duration::from_millis),
                ..Limits::default()
            },
            ..AppConfig::default()
        };
        Ok((source, config))
    }
}
