//! The guest as a WASI command: a module written by `elmbox build` is this
//! guest with one app already loaded (a Wizer snapshot), whose `_start` is
//! [`serve`]. It speaks the same line protocol as `elmbox run` (see
//! `elmbox_abi::lines`): events on stdin, one JSON array per event on
//! stdout, console lines and errors on stderr.

use std::cell::RefCell;
use std::io::{self, BufReader, BufWriter, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use elmbox_abi::lines::{self, Line, EXIT_APP_FAILED, EXIT_LOAD_FAILED, EXIT_OK, EXIT_SOME_FAILED};
use elmbox_abi::{console_frames, GuestError, StdioConfig, EVENT_JSON};

use crate::reply;
use crate::session::EventKind;
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

/// Why one event produced no normal answer.
enum Failure {
    Guest(GuestError),
    TooLong(usize),
    OutputTooLarge(usize),
}

/// Reads events until stdin ends; returns the exit status.
pub fn serve() -> u8 {
    let Some(config) = config() else {
        eprintln!(
            "elmbox: this module holds no app: make one with `elmbox build APP.js -o APP.wasm`"
        );
        return EXIT_LOAD_FAILED;
    };
    if !config.fixed_epoch {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_millis() as f64);
        timers::rebase(now);
    }
    let kind = if config.event_kind == EVENT_JSON {
        EventKind::Json
    } else {
        EventKind::Text
    };
    let limit = usize::try_from(config.max_event_bytes).unwrap_or(usize::MAX);
    let mut input = BufReader::with_capacity(64 << 10, io::stdin().lock());
    let mut output = BufWriter::new(io::stdout().lock());
    let mut line = Vec::new();
    let (mut number, mut failed) = (0u64, 0u64);
    let mut status = EXIT_OK;
    loop {
        let read = match lines::read_line(&mut input, &mut line, limit) {
            Ok(Some(read)) => read,
            Ok(None) => break,
            Err(e) => {
                eprintln!("elmbox: reading stdin: {e}");
                status = EXIT_LOAD_FAILED;
                break;
            }
        };
        number += 1;
        let answer = match read {
            Line::TooLong(size) => Err(Failure::TooLong(size)),
            Line::Event => handle(&line, kind, &config),
        };
        // One line per event, written straight from the reply buffer: what
        // the app sent, or (when it threw) what it sent before throwing.
        let sent = matches!(answer, Ok(()) | Err(Failure::Guest(GuestError::Threw(_))));
        let mut written = if sent {
            reply::last(|outputs, _| output.write_all(outputs))
        } else {
            output.write_all(b"[]")
        }
        .and_then(|()| output.write_all(b"\n"));
        if let Err(failure) = answer {
            failed += 1;
            // The line first, then the error, as `elmbox run` does.
            written = written.and_then(|()| output.flush());
            eprintln!("elmbox: event {number}: {}", describe(&failure, &config));
            if matches!(&failure, Failure::Guest(e) if e.is_fatal()) {
                eprintln!("elmbox: the app failed; events after {number} were not handled");
                status = EXIT_APP_FAILED;
                break;
            }
        }
        // Flush when no more input is waiting, so interactive use sees each
        // answer at once while piped input is written in large blocks.
        let flushed = written.and_then(|()| {
            if input.buffer().is_empty() {
                output.flush()
            } else {
                Ok(())
            }
        });
        if let Err(e) = flushed {
            eprintln!("elmbox: writing stdout: {e}");
            return EXIT_LOAD_FAILED;
        }
    }
    if let Err(e) = output.flush() {
        eprintln!("elmbox: writing stdout: {e}");
        return EXIT_LOAD_FAILED;
    }
    match status {
        EXIT_OK if failed > 0 => EXIT_SOME_FAILED,
        status => status,
    }
}

/// Dispatches one event (and advances the clock, if configured), leaving
/// the JSON array of outputs in the reply buffer. Console lines go to stderr
/// as they would from `elmbox run`.
fn handle(event: &[u8], kind: EventKind, config: &StdioConfig) -> Result<(), Failure> {
    reply::begin();
    let result = crate::with_session(|session| {
        session.dispatch(event, kind)?;
        if config.advance_ms > 0 {
            session.advance(config.advance_ms as f64)?;
        }
        Ok(())
    });
    reply::finish::<GuestError>(Ok(()));
    let size = reply::last(|outputs, console| {
        for (level, text) in console_frames(console) {
            eprintln!("[{}] console.{level}: {text}", config.name);
        }
        outputs.len()
    });
    result.map_err(Failure::Guest)?;
    if size as u64 > config.max_output_bytes {
        return Err(Failure::OutputTooLarge(size));
    }
    Ok(())
}

fn describe(failure: &Failure, config: &StdioConfig) -> String {
    match failure {
        Failure::Guest(e) => e.to_string(),
        Failure::TooLong(size) => format!(
            "event is {size} bytes, over the limit of {} bytes",
            config.max_event_bytes
        ),
        Failure::OutputTooLarge(size) => format!(
            "the app's response is {size} bytes, over the limit of {} bytes",
            config.max_output_bytes
        ),
    }
}
