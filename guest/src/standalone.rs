//! The guest as a WASI command: a module written by `elmbox build` is this
//! guest with one app already loaded (a Wizer snapshot), whose `_start` is
//! [`serve`]. It serves the line protocol of `elmbox run` with the same
//! driver (`elmbox_abi::lines`); only the handling of one event is its own.

use std::cell::RefCell;
use std::io::{self, BufReader, BufWriter};
use std::time::{SystemTime, UNIX_EPOCH};

use elmbox_abi::console::{self, Printed};
use elmbox_abi::lines::{self, EXIT_LOAD_FAILED};
use elmbox_abi::{AppError, AppSettings, StdioConfig};

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
    let loaded = with_session(|s| Ok((s.settings().clone(), s.startup().to_vec())));
    let (Some(stdio), Ok((settings, startup))) = (config(), loaded) else {
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
    reply::finish::<AppError>(Ok(()));
    let answered =
        |result: &Result<(), AppError>| matches!(result, Ok(()) | Err(AppError::Threw(_)));
    let size = reply::last(|outputs, frames| {
        for (level, text) in console::frames(frames) {
            let line = Printed {
                app: &settings.name,
                level,
                text,
            };
            eprintln!("{line}");
        }
        if answered(&dispatched) && answered(&advanced) {
            answer.extend_from_slice(outputs);
        } else if answered(&dispatched) {
            // The event's own answer; the clock's move failed.
            answer.extend_from_slice(&outputs[..dispatch_end]);
            answer.push(b']');
        }
        outputs.len() as u64
    });
    let result = dispatched.and(advanced);
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
