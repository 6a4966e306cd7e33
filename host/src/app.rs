//! One loaded app: its own wasm instance, its JavaScript evaluated once, and
//! the calls that feed it events and move its clock.

use std::time::{SystemTime, UNIX_EPOCH};

use elmbox_abi::{
    console_frames, GuestError, LoadConfig, StdioConfig, Thrown, EVENT_JSON, EVENT_TEXT,
};
use serde_json::Value;
use wasmtime::{Instance, Store};

use crate::config::{AppConfig, EventFormat};
use crate::console::Console;
use crate::error::{Error, Result};
use crate::guest::{self, GuestExports};
use crate::limits::Limits;
use crate::runtime::StoreState;
use crate::stats::MemoryStats;

/// A running Elm app in its own sandbox. Not shared between threads: each app
/// handles one event at a time, in order.
pub struct App {
    store: Store<StoreState>,
    instance: Instance,
    guest: GuestExports,
    name: String,
    module: String,
    event_kind: u32,
    limits: Limits,
    console: Console,
    /// Set once the instance traps or runs away; every later call fails.
    failure: Option<String>,
    startup_outputs: Vec<Value>,
}

impl AppConfig {
    /// The load configuration as the guest reads it, as JSON. Public only for
    /// the benchmarks, which run the guest's engine natively.
    #[doc(hidden)]
    pub fn guest_load_config(&self, epoch_ms: f64) -> Result<Vec<u8>> {
        // The guest is wasm32: its usize::MAX ("never", "no limit") is u32::MAX.
        let clamp = |bytes: usize| u32::try_from(bytes).unwrap_or(u32::MAX);
        serde_json::to_vec(&LoadConfig {
            module: self.module.clone(),
            in_port: self.in_port.clone(),
            out_port: self.out_port.clone(),
            flags: self.flags.as_ref().map(Value::to_string),
            filename: self.name.clone(),
            epoch_ms,
            gc_threshold: clamp(self.gc_threshold),
            memory_limit: clamp(self.limits.js_memory_limit.unwrap_or(0)),
            max_stack_size: clamp(self.max_stack_size),
            same_instant_limit: self.limits.same_instant_timer_limit,
            mode: self.dispatch_mode,
        })
        .map_err(|e| Error::Config(e.to_string()))
    }
}

/// What the host keeps about an app besides its instance.
pub(crate) struct AppSettings {
    pub name: String,
    pub module: String,
    pub event_format: EventFormat,
    pub limits: Limits,
    pub console: Console,
}

impl App {
    /// Wraps a fresh instance of the guest (or of a snapshot of it); see
    /// [`GuestExports::bind`] for `known_reply_at`.
    pub(crate) fn attach(
        mut store: Store<StoreState>,
        instance: Instance,
        settings: AppSettings,
        known_reply_at: Option<usize>,
    ) -> Result<App> {
        let guest = GuestExports::bind(&mut store, &instance, known_reply_at)?;
        Ok(App {
            store,
            instance,
            guest,
            name: settings.name,
            module: settings.module,
            event_kind: match settings.event_format {
                EventFormat::Text => EVENT_TEXT,
                EventFormat::Json => EVENT_JSON,
            },
            limits: settings.limits,
            console: settings.console,
            failure: None,
            startup_outputs: Vec::new(),
        })
    }

    /// Attaches a fresh guest instance and loads the app into it: its
    /// JavaScript evaluated once, `init` called, ports connected.
    pub(crate) fn start(
        store: Store<StoreState>,
        instance: Instance,
        source: &[u8],
        config: AppConfig,
    ) -> Result<App> {
        let epoch_ms = config.epoch_ms.unwrap_or_else(wall_clock_ms);
        if !epoch_ms.is_finite() {
            return Err(Error::Config(format!(
                "epoch_ms must be finite, got {epoch_ms}"
            )));
        }
        let guest_config = config.guest_load_config(epoch_ms)?;
        let source_len = u32::try_from(source.len())
            .map_err(|_| Error::Config("the app's source is over 4 GiB".to_string()))?;
        let settings = AppSettings {
            name: config.name,
            module: config.module,
            event_format: config.event_format,
            limits: config.limits,
            console: config.console,
        };
        let mut app = App::attach(store, instance, settings, None)?;
        app.guest
            .write_input(&mut app.store, &[&guest_config, source])?;
        let status = guest::call(
            &app.guest.load,
            &mut app.store,
            (guest_config.len() as u32, source_len),
        );
        app.startup_outputs = app.finish(status, parse_outputs)?;
        Ok(app)
    }

    /// Records the line-protocol settings a standalone module serves with.
    pub(crate) fn set_stdio(&mut self, config: &StdioConfig) -> Result<()> {
        let json = serde_json::to_vec(config).map_err(|e| Error::Config(e.to_string()))?;
        if let Err(e) = self.guest.write_input(&mut self.store, &[&json]) {
            return Err(self.crashed(e));
        }
        let status = guest::call(&self.guest.set_stdio, &mut self.store, json.len() as u32);
        self.finish(status, |_| Ok(()))
    }

    /// The line-protocol settings of an app started from a snapshot; `None`
    /// when the instance holds no app (a bare guest).
    pub(crate) fn stdio(&mut self) -> Result<Option<StdioConfig>> {
        let status = guest::call(&self.guest.stdio, &mut self.store, ());
        match self.finish(status, |outputs| {
            serde_json::from_slice::<[StdioConfig; 1]>(outputs).map_err(|e| Error::Crashed {
                reason: format!("unreadable standalone settings: {e}"),
            })
        }) {
            Ok([config]) => Ok(Some(config)),
            Err(Error::Config(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets what `Date.now()` reads at the app's current virtual instant.
    pub(crate) fn set_clock(&mut self, now_ms: f64) -> Result<()> {
        let result = guest::call(&self.guest.set_clock, &mut self.store, now_ms);
        result.map_err(|e| self.crashed(e))
    }

    /// Where this instance's reply record is (the same in every instance of
    /// its module).
    pub(crate) fn reply_at(&self) -> usize {
        self.guest.reply_at()
    }

    /// The wasm store and instance, for snapshotting.
    pub(crate) fn into_parts(self) -> (Store<StoreState>, Instance) {
        (self.store, self.instance)
    }

    /// Sends one event to the app's incoming port and returns every value the
    /// app sent on its outgoing port in response, in order, including those
    /// sent by timers that came due at this instant.
    pub fn dispatch(&mut self, event: impl AsRef<[u8]>) -> Result<Vec<Value>> {
        self.dispatch_with(event.as_ref(), parse_outputs)
    }

    /// Like [`App::dispatch`], but returns the outputs as the JSON array text
    /// the guest produced, without parsing it: the fast path for forwarding.
    pub fn dispatch_json(&mut self, event: impl AsRef<[u8]>) -> Result<String> {
        self.dispatch_with(event.as_ref(), json_text)
    }

    /// Moves the app's virtual clock forward by `ms`, firing due timers
    /// (`Process.sleep`, `Time.every`) in order; returns what they sent.
    pub fn advance_time(&mut self, ms: u64) -> Result<Vec<Value>> {
        self.advance_with(ms, parse_outputs)
    }

    /// Like [`App::advance_time`], but returns the outputs as the JSON array
    /// text the guest produced.
    pub fn advance_time_json(&mut self, ms: u64) -> Result<String> {
        self.advance_with(ms, json_text)
    }

    fn advance_with<T>(&mut self, ms: u64, take: impl FnOnce(&[u8]) -> Result<T>) -> Result<T> {
        self.check_alive()?;
        let status = guest::call(&self.guest.advance, &mut self.store, ms as f64);
        self.finish(status, take)
    }

    /// Linear memory and QuickJS heap figures for this app.
    pub fn memory(&mut self) -> Result<MemoryStats> {
        self.check_alive()?;
        let linear = self.guest.linear_memory_bytes(&self.store) as u64;
        let js = self
            .guest
            .memory_report(&mut self.store)
            .map_err(|e| self.crashed(e))?;
        Ok(MemoryStats::from_guest(linear, &js))
    }

    /// Runs QuickJS's cycle collector now (it also runs by itself past the
    /// configured GC threshold).
    pub fn collect_garbage(&mut self) -> Result<()> {
        self.check_alive()?;
        let result = guest::call(&self.guest.collect_garbage, &mut self.store, ());
        result.map_err(|e| self.crashed(e))
    }

    /// Values the app sent on its outgoing port while starting (from `init`'s
    /// commands and the timers they armed).
    pub fn startup_outputs(&self) -> &[Value] {
        &self.startup_outputs
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why the app takes no more events, if it failed.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn check_alive(&self) -> Result<()> {
        match &self.failure {
            Some(reason) => Err(Error::Failed {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn dispatch_with<T>(
        &mut self,
        event: &[u8],
        take: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        self.check_alive()?;
        if event.len() > self.limits.max_event_bytes {
            return Err(Error::EventTooLarge {
                size: event.len(),
                limit: self.limits.max_event_bytes,
            });
        }
        if let Err(e) = self.guest.write_input(&mut self.store, &[event]) {
            return Err(self.crashed(e));
        }
        let status = guest::call(
            &self.guest.dispatch,
            &mut self.store,
            (event.len() as u32, self.event_kind),
        );
        self.finish(status, take)
    }

    /// Turns a guest call's outcome into ours: traps fail the app for good;
    /// otherwise console lines go to the sink and the reply is decoded.
    fn finish<T>(
        &mut self,
        status: wasmtime::Result<u32>,
        take: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        let memory_refused = self.store.data_mut().limits.memory_refused.take();
        if let Err(trap) = status {
            let error = self.crashed(trap);
            let error = match (memory_refused, self.limits.max_memory_bytes) {
                (Some(_), Some(limit)) => Error::MemoryCapReached {
                    limit,
                    detail: error.to_string(),
                    fatal: true,
                },
                _ => error,
            };
            self.failure = Some(error.to_string());
            return Err(error);
        }
        let reply = match self.guest.reply(&self.store) {
            Ok(reply) => reply,
            Err(e) => return Err(self.crashed(e)),
        };
        for (level, text) in console_frames(reply.console) {
            self.console.emit(&self.name, level, text);
        }
        if reply.ok {
            if reply.outputs.len() > self.limits.max_output_bytes {
                return Err(Error::OutputTooLarge {
                    size: reply.outputs.len(),
                    limit: self.limits.max_output_bytes,
                });
            }
            return take(reply.outputs);
        }
        let outputs = reply.outputs;
        let error = match serde_json::from_slice::<GuestError>(reply.error) {
            Ok(e) => into_error(e, &self.name, &self.module, || {
                parse_outputs(outputs).unwrap_or_default()
            }),
            Err(e) => Error::Crashed {
                reason: format!("unreadable error from guest: {e}"),
            },
        };
        // JavaScript that could not get memory because of the cap: the app
        // unwound cleanly and goes on, but say which limit it hit.
        let error = match (memory_refused, self.limits.max_memory_bytes, error) {
            (Some(_), Some(limit), Error::AppThrew { message, .. }) => Error::MemoryCapReached {
                limit,
                detail: message,
                fatal: false,
            },
            (_, _, error) => error,
        };
        if error.is_fatal() {
            self.failure = Some(error.to_string());
        }
        Err(error)
    }

    /// Marks the app failed after a trap, keeping the guest's last words.
    fn crashed(&mut self, cause: wasmtime::Error) -> Error {
        if let (Some(wasmtime::Trap::Interrupt), Some(deadline)) =
            (cause.downcast_ref::<wasmtime::Trap>(), self.limits.deadline)
        {
            let error = Error::DeadlineExceeded {
                limit_ms: deadline.as_millis() as u64,
            };
            self.failure = Some(error.to_string());
            return error;
        }
        let mut reason = match cause.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::StackOverflow) => format!(
                "stack overflow: the app recursed deeper than the sandbox's {} MiB stack",
                crate::runtime::WASM_STACK_BYTES >> 20
            ),
            Some(trap) => trap.to_string(),
            None => format!("{cause:#}"),
        };
        let stderr = self.store.data().stderr.contents();
        let stderr = String::from_utf8_lossy(&stderr);
        if !stderr.trim().is_empty() {
            reason.push_str(&format!(" (guest stderr: {})", stderr.trim()));
        }
        self.failure = Some(reason.clone());
        Error::Crashed { reason }
    }

    /// The size limit applied to events, for callers that read input.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn wall_clock_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64)
}

/// The outputs as the JSON array text the guest wrote (always UTF-8: the
/// guest writes it from JavaScript strings).
fn json_text(bytes: &[u8]) -> Result<String> {
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

fn parse_outputs(bytes: &[u8]) -> Result<Vec<Value>> {
    serde_json::from_slice(bytes).map_err(|e| Error::Crashed {
        reason: format!("guest produced invalid output JSON: {e}"),
    })
}

/// The host's typed error for the guest's error record.
fn into_error(
    error: GuestError,
    file: &str,
    module: &str,
    outputs: impl FnOnce() -> Vec<Value>,
) -> Error {
    let file = file.to_string();
    {
        match error {
            GuestError::BadConfig { message } => Error::Config(message),
            GuestError::AlreadyLoaded => Error::Config("the app was already loaded".into()),
            GuestError::NotLoaded => Error::Config("the app is not loaded".into()),
            GuestError::Syntax {
                message,
                line,
                column,
            } => Error::Syntax {
                file,
                message,
                line,
                column,
            },
            GuestError::ScriptThrew(Thrown { message, stack }) => Error::ScriptThrew {
                file,
                message,
                stack,
            },
            GuestError::NotElm => Error::NotElm { file },
            GuestError::ModuleNotFound { module, available } => {
                Error::ModuleNotFound { module, available }
            }
            GuestError::PortNotFound {
                port,
                direction,
                available,
            } => Error::PortNotFound {
                port,
                direction,
                available,
            },
            GuestError::InitThrew(Thrown { message, stack }) => Error::InitThrew {
                module: module.to_string(),
                message,
                stack,
            },
            GuestError::Threw(Thrown { message, stack }) => Error::AppThrew {
                message,
                stack,
                outputs: outputs(),
            },
            GuestError::EventNotUtf8 { valid_up_to } => Error::EventNotUtf8 { valid_up_to },
            GuestError::EventNotJson { message } => Error::EventNotJson { message },
            GuestError::TimerStorm { limit } => Error::TimerStorm { limit },
        }
    }
}
