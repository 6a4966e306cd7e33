//! `elmbox run`: one event per stdin line, one JSON array per stdout line.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::process::ExitCode;

use clap::Args;
use elmbox::Error;
use serde_json::Value;

use crate::app_args::AppArgs;

/// Feed events from stdin, one per line, and print, for each, one line on
/// stdout: the JSON array of the values the app sent on its outgoing port.
///
/// App console output and errors go to stderr. Exit status: 0 when every
/// event was handled, 1 when some event failed (the app kept going), 2 when
/// the app could not be loaded, 3 when the app failed and stopped taking
/// events.
#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    app: AppArgs,

    /// Advance the virtual clock by MS after each event; what timers send
    /// then is part of that event's line.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    advance_ms: u64,
}

/// One line of input, or the size of a line too long to keep.
enum Line {
    Event,
    TooLong(usize),
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (source, config) = args.app.load_parts()?;
    let runtime = args.app.runtime()?;
    let mut app = runtime.load(&source, config)?;
    if !app.startup_outputs().is_empty() {
        eprintln!(
            "elmbox: sent while starting: {}",
            Value::from(app.startup_outputs().to_vec())
        );
    }
    let limit = app.limits().max_event_bytes;

    let mut input = BufReader::with_capacity(64 << 10, io::stdin().lock());
    let mut output = BufWriter::new(io::stdout().lock());
    let mut line = Vec::new();
    let (mut number, mut failed) = (0u64, 0u64);
    while let Some(kind) = read_line(&mut input, &mut line, limit)? {
        number += 1;
        let result = match kind {
            Line::TooLong(size) => Err(Error::EventTooLarge { size, limit }),
            Line::Event if args.advance_ms == 0 => app.dispatch_json(&line),
            Line::Event => app.dispatch(&line).and_then(|mut values| {
                values.extend(app.advance_time(args.advance_ms)?);
                Ok(Value::from(values).to_string())
            }),
        };
        match result {
            Ok(json) => writeln!(output, "{json}")?,
            Err(error) => {
                failed += 1;
                // Still one line per event: whatever the app sent before failing.
                let sent = match &error {
                    Error::AppThrew { outputs, .. } => Value::from(outputs.clone()),
                    _ => Value::Array(Vec::new()),
                };
                writeln!(output, "{sent}")?;
                output.flush()?;
                eprintln!("elmbox: event {number}: {error}");
                if error.is_fatal() {
                    eprintln!("elmbox: the app failed; events after {number} were not handled");
                    return Ok(ExitCode::from(3));
                }
            }
        }
        // Flush when no more input is waiting, so interactive use sees each
        // answer at once while piped input is written in large blocks.
        if input.buffer().is_empty() {
            output.flush()?;
        }
    }
    output.flush()?;
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads one `\n`-terminated line (without `\n` or `\r\n`) into `line`,
/// never holding more than `limit` + 1 bytes of it: longer lines are skipped
/// and reported with their size. `None` at end of input.
fn read_line(
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn skips_overlong_lines_whole() {
        assert_eq!(
            lines(b"ok\n0123456789abcdef\nnext\n0123456789", 5),
            vec![Ok("ok".into()), Err(16), Ok("next".into()), Err(10)]
        );
    }
}
