//! # elmbox-guest
//!
//! The WebAssembly side of elmbox: QuickJS (through `rquickjs`) running one Elm
//! app. The host instantiates this module once per app, calls
//! [`elmbox_load`] once with the app's JavaScript, then feeds events through
//! [`elmbox_dispatch`] and moves its clock with [`elmbox_advance`] (exactly:
//! virtual time) or [`elmbox_advance_to`] (catching up: the wall clock).
//! Source text is evaluated exactly once, at load; events are plain calls.
//!
//! ## The ABI: this file is its export table
//! Data goes in through one reusable input buffer ([`elmbox_input`]) and
//! comes back through one `Reply` record (see the `elmbox-abi` crate) whose
//! address the host reads once ([`elmbox_reply`]). Every call that runs
//! JavaScript returns its status (0 ok, 1 error) and refreshes the reply:
//! the JSON array of outgoing-port values, the console lines, on failure
//! a JSON `AppError`, and the clock: its instant, its epoch and when the
//! earliest timer is due, so a host can schedule the app's next wake; and
//! the outgoing HTTP requests the call started or aborted, which the host
//! answers through [`elmbox_http_response`]. Settings travel as the JSON
//! types of `elmbox-abi`.
//!
//! ## Built modules
//! `elmbox build` loads an app into this module, records its stdio settings
//! ([`elmbox_set_stdio`]) and snapshots the instance with Wizer, renaming
//! [`elmbox_main`] to `_start`: the result is a WASI command that serves
//! events on stdin with the app already evaluated and started.
//!
//! Modules: `session` (the loaded app and its event loop), `elm` (port
//! glue), `engine` (the runtime and its context), `quickjs` (raw QuickJS calls), `timers` (virtual clock), `random` (`Math.random` in linear memory),
//! `http` (`XMLHttpRequest` over the host's answers, with `xhr.js`),
//! `console`, `reply`, `input`, `error`, `standalone` (the line protocol on
//! stdio); `native` runs the same engine without Wasm, for benchmarks.

mod console;
mod deadline;
mod elm;
mod engine;
mod error;
mod http;
mod input;
mod json;
pub mod native;
mod quickjs;
mod random;
mod reply;
mod session;
mod standalone;
mod timers;

use std::cell::RefCell;

use elmbox_abi::{AppError, AppSettings, MemoryReport, ModuleSettings, StdioConfig, ABI_VERSION};

thread_local! {
    static MEMORY: RefCell<MemoryReport> = RefCell::new(MemoryReport::default());
}

#[no_mangle]
pub extern "C" fn elmbox_abi_version() -> u32 {
    ABI_VERSION
}

/// Where the host reads each call's results; fixed for the instance's life.
#[no_mangle]
pub extern "C" fn elmbox_reply() -> *const reply::Reply {
    reply::address()
}

/// Makes the input buffer `len` bytes long and returns where the host should
/// write them. The pointer stays valid until the next call to this function.
#[no_mangle]
pub extern "C" fn elmbox_input(len: u32) -> *mut u8 {
    input::reserve(len as usize)
}

/// Loads the app. The input buffer holds `settings_len` bytes of JSON
/// ([`AppSettings`]) followed by `source_len` bytes of JavaScript.
#[no_mangle]
pub extern "C" fn elmbox_load(settings_len: u32, source_len: u32) -> u32 {
    reply::begin();
    let total = settings_len.saturating_add(source_len);
    let result = input::take(total, |input| {
        let (settings, rest) = input
            .split_at_checked(settings_len as usize)
            .ok_or_else(|| bad_config("input shorter than settings_len"))?;
        let source = rest
            .get(..source_len as usize)
            .ok_or_else(|| bad_config("input shorter than settings_len + source_len"))?;
        let settings: AppSettings =
            serde_json::from_slice(settings).map_err(|e| bad_config(&e.to_string()))?;
        session::start(settings, source)
    });
    let status = reply::finish(result);
    if status == 0 {
        let startup = reply::last(|outputs, _| outputs.to_vec());
        let _ = session::with_session(|s| {
            s.set_startup(startup);
            Ok(())
        });
    }
    status
}

/// Puts what the app sent while it started (kept since `elmbox_load`, and
/// so in a built module's snapshot) in the reply's outputs.
#[no_mangle]
pub extern "C" fn elmbox_startup() -> u32 {
    reply::begin();
    let result = session::with_session(|s| {
        reply::push_array(s.startup());
        Ok(())
    });
    reply::finish(result)
}

/// Sends the `len` bytes in the input buffer to the app as one event, in
/// the app's [`elmbox_abi::EventFormat`], at the instant `at_ms` of its
/// clock (ms since load; the clock catches up to it first, see `timers`);
/// a negative or NaN `at_ms` is the clock's current instant.
#[no_mangle]
pub extern "C" fn elmbox_dispatch(len: u32, at_ms: f64) -> u32 {
    reply::begin();
    let at = clock_instant(at_ms);
    let result = input::take(len, |event| {
        session::with_session(|session| session.dispatch(event, at))
    });
    reply::finish(result)
}

/// Hands the app the host's answer to one of its HTTP requests: the `len`
/// bytes in the input buffer are an encoded `elmbox_abi::HttpResponse`,
/// taken at the instant `at_ms` as [`elmbox_dispatch`] takes an event.
#[no_mangle]
pub extern "C" fn elmbox_http_response(len: u32, at_ms: f64) -> u32 {
    reply::begin();
    let at = clock_instant(at_ms);
    let result = input::take(len, |response| {
        session::with_session(|session| session.deliver_http(response, at))
    });
    reply::finish(result)
}

/// Puts every HTTP request the app sent and has no answer for yet, in the
/// order it sent them, in the reply's HTTP actions: for a host that
/// restored the app and must send them again. Runs no JavaScript.
#[no_mangle]
pub extern "C" fn elmbox_http_waiting() -> u32 {
    reply::begin();
    let result = session::with_session(|_| {
        for request in http::waiting() {
            reply::push_http(&elmbox_abi::HttpAction::Send(request));
        }
        Ok(())
    });
    reply::finish(result)
}

/// A migration's export (the old version's side): sends `null` on the
/// app's port `elmboxExport` and puts what it sends on `elmboxExported` in
/// that event, and nothing else, in the reply's outputs
/// (`elmbox_abi::migration`).
#[no_mangle]
pub extern "C" fn elmbox_export() -> u32 {
    reply::begin();
    let result = session::with_session(|session| session.export());
    reply::finish(result)
}

/// Moves the virtual clock forward by `ms`, firing due timers in order,
/// each at its own instant.
#[no_mangle]
pub extern "C" fn elmbox_advance(ms: f64) -> u32 {
    reply::begin();
    let result = session::with_session(|session| session.advance(ms));
    reply::finish(result)
}

/// Moves the clock to the instant `at_ms` (ms since load; never
/// backwards), catching up: what came due by then fires once, at `at_ms`.
#[no_mangle]
pub extern "C" fn elmbox_advance_to(at_ms: f64) -> u32 {
    reply::begin();
    let result = match clock_instant(at_ms) {
        Some(at) => session::with_session(|session| session.advance_to(at)),
        None => session::with_session(|_| Ok(())),
    };
    reply::finish(result)
}

/// An instant of the clock passed as a float: whole ms, `None` for a
/// negative or NaN one.
fn clock_instant(at_ms: f64) -> Option<u64> {
    (at_ms >= 0.0).then(|| at_ms.min(u64::MAX as f64) as u64)
}

/// QuickJS's memory accounting; the record's address is fixed.
#[no_mangle]
pub extern "C" fn elmbox_memory() -> *const MemoryReport {
    let report = session::with_session(|s| Ok(s.memory())).unwrap_or_default();
    MEMORY.with_borrow_mut(|m| *m = report);
    MEMORY.with(|m| m.as_ptr() as *const MemoryReport)
}

/// Runs QuickJS's cycle collector.
#[no_mangle]
pub extern "C" fn elmbox_collect_garbage() {
    let _ = session::with_session(|s| {
        s.collect_garbage();
        Ok(())
    });
}

/// Records how a built module serves stdio: the input buffer holds `len`
/// bytes of JSON ([`StdioConfig`]). Called before the snapshot.
#[no_mangle]
pub extern "C" fn elmbox_set_stdio(len: u32) -> u32 {
    reply::begin();
    let result = input::take(len, |json| {
        serde_json::from_slice::<StdioConfig>(json).map_err(|e| bad_config(&e.to_string()))
    })
    .map(standalone::configure);
    reply::finish(result)
}

/// Puts what a built module holds ([`ModuleSettings`]: its app's settings
/// and its stdio settings), as JSON, in the reply's outputs (`[{…}]`); fails
/// with `NotLoaded` on a module that `elmbox build` did not make.
#[no_mangle]
pub extern "C" fn elmbox_settings() -> u32 {
    reply::begin();
    let result = session::with_session(|s| Ok(s.settings().clone())).and_then(|app| {
        let stdio = standalone::config().ok_or(AppError::NotLoaded)?;
        let settings = ModuleSettings { app, stdio };
        reply::push_output(&serde_json::to_vec(&settings).unwrap_or_default());
        Ok(())
    });
    reply::finish(result)
}

/// Sets how long each later call may run, in ms (0, negative or NaN: for
/// ever): past it, the app's JavaScript is stopped and the call fails with
/// `DeadlineExceeded` (see `deadline`).
#[no_mangle]
pub extern "C" fn elmbox_set_deadline(ms: f64) {
    let budget = (ms > 0.0).then(|| std::time::Duration::from_secs_f64(ms.min(1e12) / 1000.0));
    deadline::set_budget(budget);
}

/// Sets the wall-clock time `Date.now()` reports at this virtual instant,
/// for an app started from a snapshot taken at another time.
#[no_mangle]
pub extern "C" fn elmbox_set_clock(now_ms: f64) {
    if now_ms.is_finite() {
        timers::rebase(now_ms);
        reply::stamp_clock();
    }
}

/// Starts `Math.random` over from `seed`: for an instance of a built module,
/// so that it does not draw what every other instance draws.
#[no_mangle]
pub extern "C" fn elmbox_reseed(seed: u64) {
    random::reseed(seed);
}

/// The built module's `_start` (renamed by `elmbox build`): serves the line
/// protocol on stdio and exits with its status.
#[no_mangle]
pub extern "C" fn elmbox_main() {
    let status = standalone::serve();
    if status != 0 {
        std::process::exit(status.into());
    }
}

fn bad_config(message: &str) -> AppError {
    AppError::BadConfig {
        message: message.to_string(),
    }
}
