//! Options shared by every subcommand that loads an app, and opening the
//! app: JavaScript from `elm make`, or a module from `elmbox build`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use elmbox::{App, AppConfig, DispatchMode, EventFormat, Runtime, SandboxLimits, StdioConfig};

/// What the app is and how it starts. For a module made by `elmbox build`
/// all of these were fixed at build time, except the size limits.
#[derive(Args)]
pub struct AppArgs {
    /// The app: JavaScript produced by `elm make` for a `Platform.worker`, or
    /// a module made by `elmbox build`.
    #[arg(value_name = "APP")]
    pub app: PathBuf,

    /// Elm module whose `init` starts the app (dotted for nested modules)
    /// [default: Main].
    #[arg(long, value_name = "NAME")]
    pub module: Option<String>,

    /// Incoming port the events are sent to [default: onEvent].
    #[arg(long, value_name = "NAME")]
    pub in_port: Option<String>,

    /// Outgoing port whose values are collected as responses [default: respond].
    #[arg(long, value_name = "NAME")]
    pub out_port: Option<String>,

    /// Flags for `init`, as JSON.
    #[arg(long, value_name = "JSON")]
    pub flags: Option<String>,

    /// Parse each event as JSON instead of passing it as a string.
    #[arg(long)]
    pub json_events: bool,

    /// Every port at once: each event is `{"port": NAME, "value": VALUE}`
    /// for any incoming port, and each answer lists what the app sent on all
    /// its outgoing ports, as `{"port": NAME, "value": VALUE}`. The first
    /// line written is what the app sent while starting.
    #[arg(long, conflicts_with_all = ["in_port", "out_port", "json_events"])]
    pub ports: bool,

    /// Largest event accepted, in bytes [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    pub max_event_bytes: Option<usize>,

    /// Largest response (one event's JSON array of outputs), in bytes
    /// [default: 16777216].
    #[arg(long, value_name = "BYTES")]
    pub max_output_bytes: Option<usize>,

    /// QuickJS heap limit, in MiB: past it the app gets an out-of-memory
    /// exception.
    #[arg(long, value_name = "MIB")]
    pub js_memory_mb: Option<usize>,

    /// QuickJS GC threshold in bytes: allocation volume between cycle
    /// collections [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    pub gc_threshold: Option<usize>,

    /// Start of the virtual clock, in ms since the Unix epoch (default: now).
    #[arg(long, value_name = "MS")]
    pub epoch_ms: Option<f64>,

    /// Evaluate the JavaScript exactly as given. By default elmbox first
    /// rewrites Elm's calls through `A2`…`A9` (`A2(f, x, y)` becomes
    /// `f.f(x, y)` when `f` is an `F2`, else A2's test in place) and, in an
    /// app with one outgoing port, lets the port take each batch without
    /// waiting out a `setTimeout(…, 0)`: the same behaviour, faster.
    #[arg(long)]
    pub no_optimize: bool,
}

/// The size limits a built module applies on the wasmtime CLI: `elmbox run`
/// applies them too, unless tightened, so both answer alike.
pub fn built_limits(stdio: &StdioConfig) -> SandboxLimits {
    SandboxLimits {
        max_event_bytes: usize::try_from(stdio.max_event_bytes).unwrap_or(usize::MAX),
        max_output_bytes: usize::try_from(stdio.max_output_bytes).unwrap_or(usize::MAX),
        ..SandboxLimits::default()
    }
}

/// Bounds the host puts on the sandbox, for a loaded app or a built module.
#[derive(Args)]
pub struct SandboxArgs {
    /// Cap on the sandbox's linear memory, in MiB (the guest needs ~10).
    #[arg(long, value_name = "MIB")]
    pub max_memory_mb: Option<usize>,

    /// CPU deadline per event, in ms: an app still running then is stopped
    /// and marked failed.
    #[arg(long, value_name = "MS")]
    pub deadline_ms: Option<u64>,
}

/// The app file, by what it holds.
pub enum AppFile {
    JavaScript(Vec<u8>),
    Module(Vec<u8>),
}

/// Where an opened app came from.
pub enum Origin {
    /// Loaded from JavaScript with this configuration.
    Source(AppConfig),
    /// Instantiated from a built module, whose own stdio loop advances the
    /// clock by `advance_ms` per event; `all_ports` as it was built.
    Module { advance_ms: u64, all_ports: bool },
}

impl SandboxArgs {
    /// The runtime these options need: with epoch checks only when a CPU
    /// deadline was asked for, since they slow every app down.
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        Ok(crate::code_cache::with(Runtime::builder())
            .deadlines(self.deadline_ms.is_some())
            .build()?)
    }

    /// `limits` with the memory cap and deadline given here.
    pub fn apply(&self, limits: SandboxLimits) -> SandboxLimits {
        SandboxLimits {
            max_memory_bytes: self.max_memory_mb.map(|mb| mb << 20),
            deadline: self.deadline_ms.map(std::time::Duration::from_millis),
            ..limits
        }
    }
}

impl AppArgs {
    /// Reads the app file; a WebAssembly module starts with `\0asm`.
    pub fn read(&self) -> anyhow::Result<AppFile> {
        let bytes = std::fs::read(&self.app)
            .with_context(|| format!("cannot read {}", self.app.display()))?;
        Ok(if bytes.starts_with(b"\0asm") {
            AppFile::Module(bytes)
        } else {
            AppFile::JavaScript(bytes)
        })
    }

    /// The app's name: its file's.
    pub fn name(&self) -> String {
        self.app
            .file_name()
            .map_or_else(|| "app.js".into(), |n| n.to_string_lossy().into_owned())
    }

    /// The configuration for loading the app from JavaScript.
    pub fn config(&self) -> anyhow::Result<AppConfig> {
        let defaults = AppConfig::default();
        // Passed on as written, so objects keep their key order.
        if let Some(text) = &self.flags {
            serde_json::from_str::<serde::de::IgnoredAny>(text)
                .with_context(|| format!("--flags is not JSON: {text}"))?;
        }
        let flags = self.flags.clone();
        Ok(AppConfig {
            name: self.name(),
            module: self.module.clone().unwrap_or(defaults.module),
            in_port: self.in_port.clone().unwrap_or(defaults.in_port),
            out_port: self.out_port.clone().unwrap_or(defaults.out_port),
            all_ports: self.ports,
            flags,
            event_format: if self.json_events {
                EventFormat::Json
            } else {
                EventFormat::Text
            },
            epoch_ms: self.epoch_ms,
            gc_threshold: self.gc_threshold.unwrap_or(defaults.gc_threshold),
            js_memory_limit: self.js_memory_mb.map(|mb| mb << 20),
            optimize: !self.no_optimize,
            ..defaults
        })
    }

    /// `limits` with the event and output size limits given here.
    pub fn size_limits(&self, limits: SandboxLimits) -> SandboxLimits {
        SandboxLimits {
            max_event_bytes: self.max_event_bytes.unwrap_or(limits.max_event_bytes),
            max_output_bytes: self.max_output_bytes.unwrap_or(limits.max_output_bytes),
            ..limits
        }
    }

    /// Opens the app in its own sandbox: loads JavaScript (in `mode`), or
    /// instantiates a built module (call mode only).
    pub fn open(&self, sandbox: &SandboxArgs, mode: DispatchMode) -> anyhow::Result<(App, Origin)> {
        let runtime = sandbox.runtime()?;
        match self.read()? {
            AppFile::JavaScript(source) => {
                let mut config = self.config()?;
                config.dispatch_mode = mode;
                let limits = sandbox.apply(self.size_limits(SandboxLimits::default()));
                let app = runtime.with_limits(limits)?.load(&source, config.clone())?;
                Ok((app, Origin::Source(config)))
            }
            AppFile::Module(wasm) => {
                self.refuse_build_options()?;
                if mode != DispatchMode::Call {
                    bail!(
                        "{} is a built module: it holds the app already loaded, so only call \
                         mode applies (eval and reload need the app's JavaScript)",
                        self.app.display()
                    );
                }
                // A module built on this runtime's guest is its state: put
                // into the guest, already compiled, it starts in
                // milliseconds. Another build's is compiled as it is (and
                // the bare guest refused there).
                if let Ok(built) = runtime.module_settings(&wasm) {
                    let limits = sandbox.apply(self.size_limits(built_limits(&built.stdio)));
                    let app = runtime
                        .with_limits(limits)?
                        .load_module(&wasm, AppConfig::default().name(self.name()))
                        .with_context(|| format!("cannot load {}", self.app.display()))?;
                    return Ok((
                        app,
                        Origin::Module {
                            advance_ms: built.stdio.advance_ms,
                            all_ports: built.app.all_ports,
                        },
                    ));
                }
                let image = runtime
                    .image(&wasm)
                    .with_context(|| format!("cannot load {}", self.app.display()))?;
                // The size limits the module applies on the wasmtime CLI,
                // unless tightened here, so both answer alike.
                let limits = sandbox.apply(self.size_limits(built_limits(image.stdio())));
                let advance_ms = image.stdio().advance_ms;
                let all_ports = image.settings().all_ports;
                let app = image.with_limits(limits)?.instantiate()?;
                Ok((
                    app,
                    Origin::Module {
                        advance_ms,
                        all_ports,
                    },
                ))
            }
        }
    }

    /// A built module fixed these when it was made; saying them again for
    /// one would silently not apply, so it is an error.
    pub fn refuse_build_options(&self) -> anyhow::Result<()> {
        let given: Vec<&str> = [
            ("--module", self.module.is_some()),
            ("--in-port", self.in_port.is_some()),
            ("--out-port", self.out_port.is_some()),
            ("--flags", self.flags.is_some()),
            ("--json-events", self.json_events),
            ("--ports", self.ports),
            ("--js-memory-mb", self.js_memory_mb.is_some()),
            ("--gc-threshold", self.gc_threshold.is_some()),
            ("--epoch-ms", self.epoch_ms.is_some()),
            ("--no-optimize", self.no_optimize),
        ]
        .into_iter()
        .filter_map(|(flag, set)| set.then_some(flag))
        .collect();
        if !given.is_empty() {
            bail!(
                "{} is a built module: {} {} fixed when it was built; pass {} to `elmbox build` \
                 instead",
                self.app.display(),
                given.join(", "),
                if given.len() == 1 { "was" } else { "were" },
                if given.len() == 1 { "it" } else { "them" },
            );
        }
        Ok(())
    }
}
