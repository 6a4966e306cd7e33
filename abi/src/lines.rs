//! The line protocol of `elmbox run` and of built modules: one event per
//! `\n`-terminated line on stdin (a trailing `\r` is dropped, the last line
//! may lack its `\n`), and for each event exactly one line on stdout, the
//! JSON array of what the app sent on its outgoing port. Errors go to stderr
//! as `elmbox: event N: ...`; the exit status says how the run ended.
//!
//! Both sides run [`serve`] and differ only in the closure that hands one
//! event to the app, so they agree on every edge case, word and exit code.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};

use crate::AppError;

/// One line of input, or the size of a line too long to keep.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line is in the buffer, without its line ending.
    Event,
    /// The line was longer than the limit: skipped, with its size in bytes.
    TooLong(usize),
}

/// Reads one line into `line`, never holding more than `limit` + 2 bytes of
/// it: longer lines are skipped to their end and reported with their size.
/// `None` at end of input.
pub fn read_line(
    input: &mut impl BufRead,
    line: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Option<Line>> {
    line.clear();
    let read = input
        .by_ref()
        .take(limit as u64 + 2)
        .read_until(b'\n', line)?;
    if read == 0 {
        return Ok(None);
    }
    let complete = line.last() == Some(&b'\n');
    if complete {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() <= limit {
        return Ok(Some(Line::Event));
    }
    // Over the limit: skip to the end of the line, counting its size.
    let mut size = line.len();
    if !complete {
        loop {
            let chunk = input.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    size += i;
                    input.consume(i + 1);
                    break;
                }
                None => {
                    let n = chunk.len();
                    size += n;
                    input.consume(n);
                }
            }
        }
    }
    line.clear();
    Ok(Some(Line::TooLong(size)))
}

/// Exit status: every event handled.
pub const EXIT_OK: u8 = 0;
/// Some events failed; the app carried on.
pub const EXIT_SOME_FAILED: u8 = 1;
/// The app could not be loaded, or stdin or stdout failed.
pub const EXIT_LOAD_FAILED: u8 = 2;
/// The app failed and stopped taking events.
pub const EXIT_APP_FAILED: u8 = 3;

/// An event's failure, as the handler given to [`serve`] reports it.
pub trait EventFailure: fmt::Display + From<AppError> {
    /// Whether the app takes no more events after this.
    fn is_fatal(&self) -> bool;
}

impl EventFailure for AppError {
    fn is_fatal(&self) -> bool {
        AppError::is_fatal(self)
    }
}

/// Serves the line protocol until `input` ends; returns the exit status.
///
/// `first_line`, when given, is written before any event is read: in
/// all-ports mode, the JSON array of what the app sent while starting.
/// `handle(event, answer)` hands one event (at most `max_event_bytes`
/// long; longer lines fail as [`AppError::EventTooLarge`] without reaching
/// it) to the app and writes into `answer` the JSON array of what the app
/// sent, also when it fails after sending (an empty `answer` is written as
/// `[]`). Output is flushed whenever no more input is waiting, so
/// interactive use sees each answer at once while piped input is written
/// in large blocks.
pub fn serve<E: EventFailure>(
    input: &mut BufReader<impl Read>,
    output: &mut impl Write,
    max_event_bytes: usize,
    first_line: Option<&[u8]>,
    mut handle: impl FnMut(&[u8], &mut Vec<u8>) -> Result<(), E>,
) -> u8 {
    if let Some(first) = first_line {
        if let Err(e) = write_answer(output, first).and_then(|()| output.flush()) {
            eprintln!("elmbox: writing stdout: {e}");
            return EXIT_LOAD_FAILED;
        }
    }
    let mut line = Vec::new();
    let mut answer = Vec::new();
    let (mut number, mut failed) = (0u64, 0u64);
    loop {
        let read = match read_line(input, &mut line, max_event_bytes) {
            Ok(Some(read)) => read,
            Ok(None) => break,
            Err(e) => {
                eprintln!("elmbox: reading stdin: {e}");
                return EXIT_LOAD_FAILED;
            }
        };
        number += 1;
        answer.clear();
        let result = match read {
            Line::TooLong(size) => Err(E::from(AppError::EventTooLarge {
                size: size as u64,
                limit: max_event_bytes as u64,
            })),
            Line::Event => handle(&line, &mut answer),
        };
        let written = write_answer(output, &answer);
        let failure = result.err();
        // The answer's line first, then its error, so the two read in order.
        let flushed = written.and_then(|()| {
            if failure.is_some() || input.buffer().is_empty() {
                output.flush()
            } else {
                Ok(())
            }
        });
        if let Err(e) = flushed {
            eprintln!("elmbox: writing stdout: {e}");
            return EXIT_LOAD_FAILED;
        }
        if let Some(failure) = failure {
            failed += 1;
            eprintln!("elmbox: event {number}: {failure}");
            if failure.is_fatal() {
                eprintln!("elmbox: the app failed; events after {number} were not handled");
                return EXIT_APP_FAILED;
            }
        }
    }
    if let Err(e) = output.flush() {
        eprintln!("elmbox: writing stdout: {e}");
        return EXIT_LOAD_FAILED;
    }
    if failed > 0 {
        EXIT_SOME_FAILED
    } else {
        EXIT_OK
    }
}

fn write_answer(output: &mut impl Write, answer: &[u8]) -> io::Result<()> {
    output.write_all(if answer.is_empty() { b"[]" } else { answer })?;
    output.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn lines(input: &[u8], limit: usize) -> Vec<Result<String, usize>> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut line = Vec::new();
        let mut out = Vec::new();
        while let Some(kind) = read_line(&mut reader, &mut line, limit).unwrap() {
            out.push(match kind {
                Line::Event => Ok(String::from_utf8(line.clone()).unwrap()),
                Line::TooLong(n) => Err(n),
            });
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_crlf() {
        assert_eq!(
            lines(b"a\r\nbb\n\nccc", 10),
            vec![
                Ok("a".into()),
                Ok("bb".into()),
                Ok("".into()),
                Ok("ccc".into())
            ]
        );
    }

    /// Runs [`serve`] over `input` with a handler that answers `[n]` with
    /// the event's length n, throws on `throw` (after sending `["x"]`) and
    /// fails fatally on `stop`.
    fn served(input: &[u8], limit: usize) -> (String, u8) {
        let mut reader = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        let status = serve(
            &mut reader,
            &mut out,
            limit,
            None,
            |event, answer| match event {
                b"throw" => {
                    answer.extend_from_slice(br#"["x"]"#);
                    Err(AppError::Threw(crate::Thrown {
                        message: "boom".into(),
                        stack: None,
                    }))
                }
                b"stop" => Err(AppError::TimerStorm { limit: 1 }),
                _ => {
                    answer.extend_from_slice(format!("[{}]", event.len()).as_bytes());
                    Ok(())
                }
            },
        );
        (String::from_utf8(out).unwrap(), status)
    }

    #[test]
    fn serve_answers_every_line_once() {
        assert_eq!(served(b"a\nbb\n", 10), ("[1]\n[2]\n".into(), EXIT_OK));
        assert_eq!(
            served(b"a\nthrow\n0123456789abc\nccc", 10),
            ("[1]\n[\"x\"]\n[]\n[3]\n".into(), EXIT_SOME_FAILED)
        );
    }

    #[test]
    fn serve_writes_the_first_line_before_any_event() {
        let mut reader = BufReader::new(&b"a\n"[..]);
        let mut out = Vec::new();
        let first = Some(&br#"[{"port":"ready","value":1}]"#[..]);
        let status = serve(&mut reader, &mut out, 10, first, |_, answer| {
            answer.extend_from_slice(b"[2]");
            Ok::<(), AppError>(())
        });
        assert_eq!(status, EXIT_OK);
        assert_eq!(out, b"[{\"port\":\"ready\",\"value\":1}]\n[2]\n");
    }

    #[test]
    fn serve_stops_at_a_fatal_failure() {
        assert_eq!(
            served(b"a\nstop\nnever\n", 10),
            ("[1]\n[]\n".into(), EXIT_APP_FAILED)
        );
    }

    #[test]
    fn skips_overlong_lines_whole() {
        assert_eq!(
            lines(b"ok\n0123456789abcdef\nnext\n0123456789", 5),
            vec![Ok("ok".into()), Err(16), Ok("next".into()), Err(10)]
        );
    }
}
