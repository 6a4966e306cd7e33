//! The guest as a WASI command: a module written by `elmbox build` is this
//! guest with one app already loaded (a Wizer snapshot), whose `_start` is
//! [`serve`]. It serves the line protocol of `elmbox run` with the same
//! driver (`elmbox_abi::lines`); only the handling of one event is its own.
//!
//! A built module on the wasmtime CLI has no network: every HTTP request
//! the app makes is answered at once, within the line that made it, as
//! elm/http's `NetworkError` (`elmbox run --allow-http` sends them).

use std::cell::RefCell;
use std::io::{self, BufReader, BufWriter};
use std::time::{SystemTime, UNIX_EPOCH};

use elmbox_abi::console::{self, Printed};
use elmbox_abi::lines::{self, EXIT_LOAD_FAILED};
use elmbox_abi::{AppError, AppSettings, HttpResponse, StdioConfig};

use crate::http;
use crate::reply;
use crate::session::{self, with_session};
use crate::timers;

thread_local! {
    /// Set by `elmbox build` before the snapshot (`elmbox_set_stdio`).
    static STDIO: RefCell<Option<StdioConfig>> = const { RefCell::new(None) };
}

pub fn configure(config: StdioConfig) {
    STDIO.with_borrow_mut(|c| *c = Some(config));
}

pub fn config() -> Option<StdioConfig> {
    STDIO.with_borrow(Clone::clone)
}

/// Reads events until stdin ends; returns the exit status.
pub fn serve() -> u8 {
    // The module's own runner (the wasmtime CLI) bounds its run: no budget
    // the build's host may have left in the snapshot applies here.
    crate::deadline::set_budget(None);
    let loaded = with_session(|s| Ok((s.settings().clone(), s.startup().to_vec())));
    let (Some(stdio), Ok((settings, mut startup))) = (config(), loaded) else {
        eprintln!(
            "elmbox: this module holds no app: make one with `elmbox build APP.js -o APP.wasm`"
        );
        return EXIT_LOAD_FAILED;
    };
    if !settings.fixed_epoch {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_millis() as f64);
        timers::rebase(now);
    }
    // The requests `init` made (at build time) fail now, before any event;
    // what the app sends then is part of what it sent while starting.
    if !http::waiting().is_empty() {
        reply::begin();
        let answered = answer_without_network();
        reply::finish::<AppError>(Ok(()));
        reply::last(|outputs, frames| {
            print_console(&settings, frames);
            startup = join_arrays(&startup, outputs);
        });
        if let Err(e) = answered {
            eprintln!("elmbox: while starting: {e}");
            return lines::EXIT_APP_FAILED;
        }
    }
    let limit = usize::try_from(stdio.max_event_bytes).unwrap_or(usize::MAX);
    let mut input = BufReader::with_capacity(64 << 10, io::stdin().lock());
    let mut output = BufWriter::new(io::stdout().lock());
    // What `init` sent: all-ports mode answers it as the first line; with
    // one pair of ports it is only reported, as `elmbox run` does.
    let first_line = settings.all_ports.then_some(startup.as_slice());
    if !settings.all_ports && startup.as_slice() != b"[]" {
        eprintln!(
            "elmbox: sent while starting: {}",
            String::from_utf8_lossy(&startup)
        );
    }
    lines::serve(
        &mut input,
        &mut output,
        limit,
        first_line,
        |event, answer| handle(event, answer, &settings, &stdio),
    )
}

/// Dispatches one event (and advances the clock, if configured), and puts
/// what the app sent into `answer`: what it sent before it threw, too, but
/// nothing of a call that failed otherwise, as `elmbox run` answers. Console
/// lines go to stderr as they would from `elmbox run`.
fn handle(
    event: &[u8],
    answer: &mut Vec<u8>,
    settings: &AppSettings,
    stdio: &StdioConfig,
) -> Result<(), AppError> {
    reply::begin();
    let dispatched = session::with_session(|session| session.dispatch(event, None));
    let dispatch_end = reply::outputs_len();
    let advanced = match dispatched {
        Ok(()) if stdio.advance_ms > 0 => {
            session::with_session(|session| session.advance(stdio.advance_ms as f64))
        }
        _ => Ok(()),
    };
    let advance_end = reply::outputs_len();
    let answered =
        |result: &Result<(), AppError>| matches!(result, Ok(()) | Err(AppError::Threw(_)));
    let failed_requests = match (answered(&dispatched), answered(&advanced)) {
        (true, true) => answer_without_network(),
        _ => Ok(()),
    };
    reply::finish::<AppError>(Ok(()));
    let size = reply::last(|outputs, frames| {
        print_console(settings, frames);
        let end = match (
            answered(&dispatched),
            answered(&advanced),
            answered(&failed_requests),
        ) {
            (true, true, true) => outputs.len(),
            // The event's own answer, and what came of the clock's move.
            (true, true, false) => advance_end,
            // The event's own answer; the clock's move failed.
            (true, false, _) => dispatch_end,
            (false, _, _) => 0,
        };
        if end == outputs.len() {
            answer.extend_from_slice(outputs);
        } else if end > 0 {
            answer.extend_from_slice(&outputs[..end]);
            answer.push(b']');
        }
        outputs.len() as u64
    });
    let result = dispatched.and(advanced).and(failed_requests);
    result?;
    if size > stdio.max_output_bytes {
        answer.clear();
        return Err(AppError::OutputTooLarge {
            size,
            limit: stdio.max_output_bytes,
        });
    }
    Ok(())
}

/// At most this many requests are failed in one line: an app that retries
/// every failed request at once would otherwise never finish its line.
const MAX_FAILED_PER_LINE: usize = 1000;

/// Answers every request the app is waiting on with a network error, and
/// those the answers make it send, until none waits (or
/// [`MAX_FAILED_PER_LINE`] were answered).
fn answer_without_network() -> Result<(), AppError> {
    let mut answered = 0;
    while answered < MAX_FAILED_PER_LINE {
        let waiting = http::waiting();
        if waiting.is_empty() {
            break;
        }
        for request in waiting.iter().take(MAX_FAILED_PER_LINE - answered) {
            let failed =
                HttpResponse::network_error(request, "a module run without elmbox has no network");
            session::with_session(|s| s.deliver_http(&failed.encode(), None))?;
            answered += 1;
        }
    }
    // Nothing answers what the app asked for, so nothing need wait.
    reply::take_http();
    Ok(())
}

fn print_console(settings: &AppSettings, frames: &[u8]) {
    for (level, text) in console::frames(frames) {
        let line = Printed {
            app: &settings.name,
            level,
            text,
        };
        eprintln!("{line}");
    }
}

/// Two JSON arrays' texts as one (`[a]` and `[b]` make `[a,b]`).
fn join_arrays(first: &[u8], second: &[u8]) -> Vec<u8> {
    let mut joined = Vec::with_capacity(first.len() + second.len());
    joined.push(b'[');
    reply_values(first, &mut joined);
    reply_values(second, &mut joined);
    joined.push(b']');
    joined
}

fn reply_values(array: &[u8], into: &mut Vec<u8>) {
    let inner = array.trim_ascii();
    let inner = inner.strip_prefix(b"[").unwrap_or(inner);
    let inner = inner.strip_suffix(b"]").unwrap_or(inner).trim_ascii();
    if inner.is_empty() {
        return;
    }
    if into.len() > 1 {
        into.push(b',');
    }
    into.extend_from_slice(inner);
}
