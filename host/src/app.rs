//! One loaded app: its own wasm instance, its JavaScript evaluated once, and
//! the calls that feed it events and move its clock.

use elmbox_abi::{console, AppError, AppSettings, HttpAction, ModuleSettings, StdioConfig};
use std::time::SystemTime;

use serde_json::Value;
use wasmtime::{Instance, Store};

use crate::clock::AppClock;
use crate::console::Console;
use crate::error::{Error, Result};
use crate::guest::{self, GuestExports, GuestId};
use crate::limits::SandboxLimits;
use crate::stats::MemoryStats;
use crate::store::{StoreState, WASM_STACK_BYTES};

/// A running Elm app in its own sandbox. Not shared between threads: each app
/// handles one event at a time, in order.
pub struct App {
    store: Store<StoreState>,
    instance: Instance,
    guest: GuestExports,
    /// The guest build it runs, which its state can only be restored into.
    guest_id: GuestId,
    name: String,
    limits: SandboxLimits,
    console: Console,
    /// Set once the instance traps or runs away; every later call fails.
    failure: Option<String>,
    startup_outputs: Vec<Value>,
    /// The clock after the last call, as the guest reported it.
    clock: AppClock,
    /// Timers the last call fired.
    timers_fired: u32,
    /// The HTTP requests the last call started or aborted (see `http.rs`).
    pub(crate) http: Vec<HttpAction>,
}

impl App {
    /// Wraps a fresh instance of the guest (or of a snapshot of it); see
    /// [`GuestExports::bind`] for `known_reply_at`.
    pub(crate) fn attach(
        mut store: Store<StoreState>,
        instance: Instance,
        guest_id: GuestId,
        name: String,
        limits: SandboxLimits,
        console: Console,
        known_reply_at: Option<usize>,
    ) -> Result<App> {
        let guest = GuestExports::bind(&mut store, &instance, known_reply_at)?;
        guest.set_deadline(&mut store, limits.deadline)?;
        // An instance of a built module: its record holds its build's clock.
        let clock = guest.reply(&store).map(|r| r.clock).unwrap_or_default();
        Ok(App {
            store,
            instance,
            guest,
            guest_id,
            name,
            limits,
            console,
            failure: None,
            startup_outputs: Vec::new(),
            clock,
            timers_fired: 0,
            http: Vec::new(),
        })
    }

    /// Loads the app into a fresh, attached guest instance: its JavaScript
    /// evaluated once, `init` called, ports connected.
    pub(crate) fn load(&mut self, settings: &AppSettings, source: &[u8]) -> Result<()> {
        // Text that is not UTF-8, or not Elm output, goes to QuickJS as it is
        // (which then reports what is wrong with it).
        let rewritten = settings
            .optimize
            .then(|| {
                std::str::from_utf8(source)
                    .ok()
                    .and_then(elmbox_optimize::optimize)
            })
            .flatten();
        let source = rewritten.as_ref().map_or(source, |r| r.source.as_bytes());
        let settings = serde_json::to_vec(settings).map_err(|e| Error::Config(e.to_string()))?;
        let source_len = u32::try_from(source.len())
            .map_err(|_| Error::Config("the app's source is over 4 GiB".to_string()))?;
        if let Err(e) = self
            .guest
            .write_input(&mut self.store, &[&settings, source])
        {
            return Err(self.crashed(e));
        }
        let status = guest::call(
            &self.guest.load,
            &mut self.store,
            (settings.len() as u32, source_len),
        );
        self.startup_outputs = self.finish(status, parse_outputs)?;
        Ok(())
    }

    /// Records the line-protocol settings a built module serves with.
    pub(crate) fn set_stdio(&mut self, config: &StdioConfig) -> Result<()> {
        let json = serde_json::to_vec(config).map_err(|e| Error::Config(e.to_string()))?;
        if let Err(e) = self.guest.write_input(&mut self.store, &[&json]) {
            return Err(self.crashed(e));
        }
        let status = guest::call(&self.guest.set_stdio, &mut self.store, json.len() as u32);
        self.finish(status, |_| Ok(()))
    }

    /// What the instance holds, as recorded when its module was built;
    /// `None` when it holds no app built by `elmbox build` (a bare guest).
    pub(crate) fn module_settings(&mut self) -> Result<Option<ModuleSettings>> {
        let status = guest::call(&self.guest.settings, &mut self.store, ());
        match self.finish(status, |outputs| {
            serde_json::from_slice::<[ModuleSettings; 1]>(outputs).map_err(|e| Error::Crashed {
                reason: format!("unreadable module settings: {e}"),
            })
        }) {
            Ok([settings]) => Ok(Some(settings)),
            Err(Error::App {
                error: AppError::NotLoaded,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What the app sent while it started, as the guest kept it since the
    /// load: for a built module, whose load ran at build time.
    pub(crate) fn kept_startup_outputs(&mut self) -> Result<Vec<Value>> {
        let status = guest::call(&self.guest.startup, &mut self.store, ());
        self.finish(status, parse_outputs)
    }

    pub(crate) fn set_startup_outputs(&mut self, outputs: Vec<Value>) {
        self.startup_outputs = outputs;
    }

    /// Starts `Math.random` over from `seed`.
    pub(crate) fn reseed(&mut self, seed: u64) -> Result<()> {
        let result = guest::call(&self.guest.reseed, &mut self.store, seed);
        result.map_err(|e| self.crashed(e))
    }

    /// Sets what `Date.now()` reads at the app's current virtual instant.
    pub(crate) fn set_clock(&mut self, now_ms: f64) -> Result<()> {
        let result = guest::call(&self.guest.set_clock, &mut self.store, now_ms);
        result.map_err(|e| self.crashed(e))?;
        self.read_clock();
        Ok(())
    }

    /// Reads the clock from the reply record again: after the sandbox's
    /// memory was replaced by a snapshot's, whose record holds the clock as
    /// the last call before the snapshot left it.
    pub(crate) fn read_clock(&mut self) {
        if let Ok(reply) = self.guest.reply(&self.store) {
            self.clock = reply.clock;
        }
    }

    /// Where this instance's reply record is (the same in every instance of
    /// its module).
    pub(crate) fn reply_at(&self) -> usize {
        self.guest.reply_at()
    }

    /// The wasm store and the guest's exports, borrowed apart.
    pub(crate) fn guest_parts(&mut self) -> (&mut Store<StoreState>, &GuestExports) {
        (&mut self.store, &self.guest)
    }

    /// The wasm store and instance, for snapshotting.
    pub(crate) fn into_parts(self) -> (Store<StoreState>, Instance) {
        (self.store, self.instance)
    }

    /// The wasm store and instance, to read or restore the sandbox's state
    /// between calls; refused once the app failed (its state is suspect).
    pub(crate) fn sandbox(&mut self) -> Result<(&mut Store<StoreState>, Instance)> {
        self.check_alive()?;
        Ok((&mut self.store, self.instance))
    }

    /// Sends one event to the app's incoming port and returns every value the
    /// app sent on its outgoing port in response, in order, including those
    /// sent by timers that came due at this instant.
    pub fn dispatch(&mut self, event: impl AsRef<[u8]>) -> Result<Vec<Value>> {
        self.dispatch_with(event.as_ref(), None, parse_outputs)
    }

    /// Sends one event at the wall-clock time `at`: the app's clock first
    /// moves there (never backwards), and the timers due by then fire once,
    /// at that instant, however long ago they came due (as in a browser after
    /// a suspended process); what they sent comes first in the outputs.
    /// This is how `elmbox serve` hands every event to an app.
    pub fn dispatch_at(&mut self, at: SystemTime, event: impl AsRef<[u8]>) -> Result<Vec<Value>> {
        let instant = self.clock.instant_at(at);
        self.dispatch_with(event.as_ref(), Some(instant), parse_outputs)
    }

    /// Like [`App::dispatch_at`], with the outputs as JSON array text.
    pub fn dispatch_json_at(&mut self, at: SystemTime, event: impl AsRef<[u8]>) -> Result<String> {
        let instant = self.clock.instant_at(at);
        self.dispatch_with(event.as_ref(), Some(instant), json_text)
    }

    /// Moves the app's clock to the wall-clock time `at` (never backwards),
    /// firing the timers due by then as [`App::dispatch_at`] does; returns
    /// what they sent. A scheduler calls it at [`App::next_due`].
    pub fn advance_to(&mut self, at: SystemTime) -> Result<Vec<Value>> {
        let instant = self.clock.instant_at(at);
        self.advance_to_instant(instant, parse_outputs)
    }

    /// Like [`App::advance_to`], with the outputs as JSON array text.
    pub fn advance_to_json(&mut self, at: SystemTime) -> Result<String> {
        let instant = self.clock.instant_at(at);
        self.advance_to_instant(instant, json_text)
    }

    /// The app's clock after its last call: its instant, its epoch, and
    /// when its earliest timer is due.
    pub fn clock(&self) -> AppClock {
        self.clock
    }

    /// When the app's earliest armed timer is due, on the wall clock
    /// (`None`: no timer armed). Known after every call, without one.
    pub fn next_due(&self) -> Option<SystemTime> {
        self.clock.next_due()
    }

    /// How many timers the last call fired.
    pub fn timers_fired(&self) -> u32 {
        self.timers_fired
    }

    /// [`App::dispatch_json_at`] at an instant of the app's own clock (ms
    /// since load), as a log records it.
    pub(crate) fn dispatch_json_at_instant(
        &mut self,
        instant: u64,
        event: &[u8],
    ) -> Result<String> {
        self.dispatch_with(event, Some(instant), json_text)
    }

    /// [`App::advance_to_json`] at an instant of the app's own clock.
    pub(crate) fn advance_to_instant_json(&mut self, instant: u64) -> Result<String> {
        self.advance_to_instant(instant, json_text)
    }

    fn advance_to_instant<T>(
        &mut self,
        instant: u64,
        take: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        self.check_alive()?;
        let status = guest::call(&self.guest.advance_to, &mut self.store, instant as f64);
        self.finish(status, take)
    }

    /// For an app loaded with all ports ([`AppConfig::all_ports`]): sends
    /// `value` to the incoming port `port`, and returns what the app sent on
    /// all its outgoing ports, each as `{"port": NAME, "value": VALUE}`.
    ///
    /// [`AppConfig::all_ports`]: crate::AppConfig::all_ports
    pub fn send(&mut self, port: &str, value: &Value) -> Result<Vec<Value>> {
        let event = serde_json::json!({ "port": port, "value": value });
        self.dispatch(event.to_string())
    }

    /// Like [`App::dispatch`], but returns the outputs as the JSON array text
    /// the guest produced, without parsing it: the fast path for forwarding.
    pub fn dispatch_json(&mut self, event: impl AsRef<[u8]>) -> Result<String> {
        self.dispatch_with(event.as_ref(), None, json_text)
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
    /// commands and the timers they armed); for an instance of a built
    /// module, those its build saw.
    pub fn startup_outputs(&self) -> &[Value] {
        &self.startup_outputs
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The guest build the app runs in.
    pub fn guest_id(&self) -> GuestId {
        self.guest_id
    }

    /// The sandbox's bounds for this app.
    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// Why the app takes no more events, if it failed.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    pub(crate) fn check_alive(&self) -> Result<()> {
        match &self.failure {
            Some(reason) => Err(Error::Failed {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// One event, at `instant` of the app's clock (`None`: where it is).
    fn dispatch_with<T>(
        &mut self,
        event: &[u8],
        instant: Option<u64>,
        take: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        self.check_alive()?;
        if event.len() > self.limits.max_event_bytes {
            return Err(AppError::EventTooLarge {
                size: event.len() as u64,
                limit: self.limits.max_event_bytes as u64,
            }
            .into());
        }
        if let Err(e) = self.guest.write_input(&mut self.store, &[event]) {
            return Err(self.crashed(e));
        }
        let at = instant.map_or(-1.0, |ms| ms as f64);
        let status = guest::call(
            &self.guest.dispatch,
            &mut self.store,
            (event.len() as u32, at),
        );
        self.finish(status, take)
    }

    /// Turns a guest call's outcome into ours: traps fail the app for good;
    /// otherwise console lines go to the sink and the reply is decoded.
    pub(crate) fn finish<T>(
        &mut self,
        status: wasmtime::Result<u32>,
        take: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        let memory_refused = self.store.data_mut().limiter.memory_refused.take();
        self.http.clear();
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
        self.clock = reply.clock;
        self.timers_fired = reply.timers_fired;
        match elmbox_abi::http::decode_actions(reply.http) {
            Ok(actions) => self.http = actions,
            Err(e) => {
                let reason = format!("unreadable HTTP requests from the guest: {e}");
                return Err(self.crashed(wasmtime::Error::msg(reason)));
            }
        }
        for (level, text) in console::frames(reply.console) {
            self.console.emit(&self.name, level, text);
        }
        if reply.ok {
            if reply.outputs.len() > self.limits.max_output_bytes {
                return Err(AppError::OutputTooLarge {
                    size: reply.outputs.len() as u64,
                    limit: self.limits.max_output_bytes as u64,
                }
                .into());
            }
            return take(reply.outputs);
        }
        let error = match serde_json::from_slice::<AppError>(reply.error) {
            // What the app sent before it threw still belongs to its answer.
            Ok(error @ AppError::Threw(_)) => Error::App {
                error,
                outputs: parse_outputs(reply.outputs).unwrap_or_default(),
            },
            Ok(error) => error.into(),
            Err(e) => Error::Crashed {
                reason: format!("unreadable error from guest: {e}"),
            },
        };
        // JavaScript that could not get memory because of the cap: say which
        // limit it hit. The app goes on if it unwound where its runtime can.
        let error = match (memory_refused, self.limits.max_memory_bytes, error) {
            (Some(_), Some(limit), Error::App { error, .. })
                if matches!(error, AppError::Threw(_) | AppError::Faulted { .. }) =>
            {
                Error::MemoryCapReached {
                    limit,
                    fatal: error.is_fatal(),
                    detail: error.to_string(),
                }
            }
            (_, _, error) => error,
        };
        if error.is_fatal() {
            self.failure = Some(error.to_string());
        }
        Err(error)
    }

    /// Marks the app failed after a trap, keeping the guest's last words.
    pub(crate) fn crashed(&mut self, cause: wasmtime::Error) -> Error {
        let mut reason = match cause.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::StackOverflow) => format!(
                "stack overflow: the app recursed deeper than the sandbox's {} MiB stack",
                WASM_STACK_BYTES >> 20
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
}

/// The outputs as the JSON array text the guest wrote (always UTF-8: the
/// guest writes it from JavaScript strings).
pub(crate) fn json_text(bytes: &[u8]) -> Result<String> {
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// The outputs as JSON values. JavaScript strings may hold unpaired
/// surrogates (Elm's `String.left 1 "😀"` gives one), which `JSON.stringify`
/// writes as `\ud83d` escapes and serde_json refuses: those become U+FFFD,
/// as in any conversion to UTF-8. The JSON text itself (`dispatch_json`)
/// keeps them.
pub(crate) fn parse_outputs(bytes: &[u8]) -> Result<Vec<Value>> {
    serde_json::from_slice(bytes)
        .or_else(|_| serde_json::from_slice(&replace_lone_surrogates(bytes)))
        .map_err(|e| Error::Crashed {
            reason: format!("guest produced invalid output JSON: {e}"),
        })
}

/// `json` with every `\uXXXX` escape of a surrogate that is not half of a
/// pair replaced by `\ufffd`. Escapes are found as JSON defines them: a
/// backslash inside a string starts one, and `\\` is one escaped backslash.
fn replace_lone_surrogates(json: &[u8]) -> Vec<u8> {
    fn escape_at(json: &[u8], at: usize) -> Option<u16> {
        let hex = json.get(at..at + 6)?.strip_prefix(b"\\u")?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    }
    let is_high = |u: u16| (0xD800..0xDC00).contains(&u);
    let is_low = |u: u16| (0xDC00..0xE000).contains(&u);
    let mut out = Vec::with_capacity(json.len());
    let (mut i, mut in_string) = (0, false);
    while i < json.len() {
        let byte = json[i];
        if !in_string {
            in_string = byte == b'"';
            out.push(byte);
            i += 1;
            continue;
        }
        match byte {
            b'"' => in_string = false,
            b'\\' => match escape_at(json, i) {
                Some(high) if is_high(high) && escape_at(json, i + 6).is_some_and(is_low) => {
                    out.extend_from_slice(&json[i..i + 12]);
                    i += 12;
                    continue;
                }
                Some(unit) if is_high(unit) || is_low(unit) => {
                    out.extend_from_slice(b"\\ufffd");
                    i += 6;
                    continue;
                }
                // Any other escape: copy it whole, so `\\` is not read twice.
                _ => {
                    out.extend_from_slice(&json[i..(i + 2).min(json.len())]);
                    i += 2;
                    continue;
                }
            },
            _ => {}
        }
        out.push(byte);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let parsed =
            parse_outputs(br#"["\ud83d","a\ud83d\ude00b","\\ud83d","\ude00\ud83d"]"#).unwrap();
        assert_eq!(
            parsed,
            vec![
                Value::from("\u{fffd}"),
                Value::from("a😀b"),
                Value::from("\\ud83d"),
                Value::from("\u{fffd}\u{fffd}"),
            ]
        );
    }
}
