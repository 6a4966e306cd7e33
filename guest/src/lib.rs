//! # elmbox-guest
//!
//! The WebAssembly side of elmbox: QuickJS (through `javy`) running one Elm
//! app. The host instantiates this module once per app, calls
//! [`elmbox_load`] once with the app's JavaScript, then feeds events through
//! [`elmbox_dispatch`] and moves the virtual clock with [`elmbox_advance`].
//! Source text is evaluated exactly once, at load; events are plain calls.
//!
//! ## The ABI, all of it in this file
//! Data goes in through one reusable input buffer ([`elmbox_input`]) and comes
//! back through one `Reply` record (see the `elmbox-abi` crate) whose address the host reads once
//! ([`elmbox_reply`]). Every call that runs JavaScript returns its status
//! (0 ok, 1 error) and refreshes the reply: the JSON array of outgoing-port
//! values, the console lines, and on failure a JSON error (`error::GuestError`).
//!
//! ## Standalone modules
//! `elmbox build` loads an app into this module, records its line-protocol
//! settings ([`elmbox_set_stdio`]) and snapshots the instance with Wizer,
//! renaming [`elmbox_main`] to `_start`: the result is a WASI command that
//! serves events on stdin with the app already evaluated and started.
//!
//! Modules: `session` (one loaded app and its event loop), `elm` (port glue),
//! `timers` (virtual clock), `console`, `reply`, `error`, `standalone` (the
//! line protocol on stdio); `native` runs the same engine without Wasm, for
//! benchmarks.

mod console;
mod elm;
mod error;
pub mod native;
mod reply;
mod session;
mod standalone;
mod timers;

use std::cell::RefCell;

use elmbox_abi::{LoadConfig, MemoryReport, StdioConfig, ABI_VERSION, EVENT_JSON};
use error::GuestError;
use session::{EventKind, Session};

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static MEMORY: RefCell<MemoryReport> = RefCell::new(MemoryReport::default());
}

/// Input buffers above this are released after use, so one large event does
/// not pin its size for the rest of the instance's life.
const INPUT_KEEP: usize = 64 << 10;

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
    INPUT.with_borrow_mut(|input| {
        input.resize(len as usize, 0);
        input.as_mut_ptr()
    })
}

/// Loads the app. The input buffer holds `config_len` bytes of JSON
/// ([`LoadConfig`]) followed by `source_len` bytes of JavaScript.
#[no_mangle]
pub extern "C" fn elmbox_load(config_len: u32, source_len: u32) -> u32 {
    reply::begin();
    let result = SESSION.with_borrow_mut(|slot| {
        if slot.is_some() {
            return Err(GuestError::AlreadyLoaded);
        }
        let session = INPUT.with_borrow(|input| {
            let (config, rest) = input
                .split_at_checked(config_len as usize)
                .ok_or_else(|| bad_config("input shorter than config_len"))?;
            let source = rest
                .get(..source_len as usize)
                .ok_or_else(|| bad_config("input shorter than config_len + source_len"))?;
            let config: LoadConfig =
                serde_json::from_slice(config).map_err(|e| bad_config(&e.to_string()))?;
            Session::load(config, source)
        })?;
        *slot = Some(session);
        Ok(())
    });
    release_input();
    reply::finish(result)
}

/// Sends the `len` bytes in the input buffer to the app as one event: as a
/// string (`kind` 0) or parsed as JSON (`kind` 1).
#[no_mangle]
pub extern "C" fn elmbox_dispatch(len: u32, kind: u32) -> u32 {
    reply::begin();
    let kind = if kind == EVENT_JSON {
        EventKind::Json
    } else {
        EventKind::Text
    };
    let result = with_session(|session| {
        INPUT.with_borrow(|input| session.dispatch(&input[..(len as usize).min(input.len())], kind))
    });
    release_input();
    reply::finish(result)
}

/// Moves the virtual clock forward by `ms`, firing due timers in order.
#[no_mangle]
pub extern "C" fn elmbox_advance(ms: f64) -> u32 {
    reply::begin();
    let result = with_session(|session| session.advance(ms));
    reply::finish(result)
}

/// QuickJS's memory accounting; the record's address is fixed.
#[no_mangle]
pub extern "C" fn elmbox_memory() -> *const MemoryReport {
    let report = SESSION.with_borrow(|s| s.as_ref().map(Session::memory).unwrap_or_default());
    MEMORY.with_borrow_mut(|m| *m = report);
    MEMORY.with(|m| m.as_ptr() as *const MemoryReport)
}

/// Runs QuickJS's cycle collector.
#[no_mangle]
pub extern "C" fn elmbox_collect_garbage() {
    SESSION.with_borrow(|s| {
        if let Some(s) = s {
            s.collect_garbage()
        }
    })
}

/// Records how a standalone module serves stdio: the input buffer holds
/// `len` bytes of JSON ([`StdioConfig`]). Called before the snapshot.
#[no_mangle]
pub extern "C" fn elmbox_set_stdio(len: u32) -> u32 {
    reply::begin();
    let config = INPUT.with_borrow(|input| {
        serde_json::from_slice::<StdioConfig>(&input[..(len as usize).min(input.len())])
            .map_err(|e| bad_config(&e.to_string()))
    });
    let result = config.map(standalone::configure);
    release_input();
    reply::finish(result)
}

/// Puts the standalone settings, as JSON, in the reply's outputs (`[{…}]`);
/// fails with `NotLoaded` on a module that `elmbox build` did not make.
#[no_mangle]
pub extern "C" fn elmbox_stdio() -> u32 {
    reply::begin();
    let loaded = SESSION.with_borrow(Option::is_some);
    let result = match standalone::config() {
        Some(config) if loaded => {
            reply::push_output(&serde_json::to_vec(&config).unwrap_or_default());
            Ok(())
        }
        _ => Err(GuestError::NotLoaded),
    };
    reply::finish(result)
}

/// Sets the wall-clock time `Date.now()` reports at this virtual instant,
/// for an app started from a snapshot taken at another time.
#[no_mangle]
pub extern "C" fn elmbox_set_clock(now_ms: f64) {
    if now_ms.is_finite() {
        timers::rebase(now_ms);
    }
}

/// The standalone module's `_start` (renamed by `elmbox build`): serves the
/// line protocol on stdio and exits with its status.
#[no_mangle]
pub extern "C" fn elmbox_main() {
    let status = standalone::serve();
    if status != 0 {
        std::process::exit(status.into());
    }
}

pub(crate) fn with_session(
    f: impl FnOnce(&mut Session) -> Result<(), GuestError>,
) -> Result<(), GuestError> {
    SESSION.with_borrow_mut(|s| s.as_mut().map_or(Err(GuestError::NotLoaded), f))
}

fn bad_config(message: &str) -> GuestError {
    GuestError::BadConfig {
        message: message.to_string(),
    }
}

fn release_input() {
    INPUT.with_borrow_mut(|input| {
        if input.capacity() > INPUT_KEEP {
            *input = Vec::new();
        }
    })
}
