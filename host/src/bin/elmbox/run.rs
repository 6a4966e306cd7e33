//! `elmbox run`: one event per stdin line, one JSON array per stdout line
//! (the line protocol of `elmbox_abi::lines`).

use std::io::{self, BufReader, BufWriter, Write};
use std::process::ExitCode;

use clap::Args;
use elmbox::{DispatchMode, Error};
use elmbox_abi::lines::{self, Line, EXIT_APP_FAILED, EXIT_SOME_FAILED};
use serde_json::Value;

use crate::app_args::{AppArgs, Origin, SandboxArgs};

/// Feed events from stdin, one per line, and print, for each, one line on
/// stdout: the JSON array of the values the app sent on its outgoing port.
///
/// APP is the JavaScript of `elm make`, or a module made by `elmbox build`
/// (which answers exactly as its JavaScript would, without evaluating it).
/// App console output and errors go to stderr. Exit status: 0 when every
/// event was handled, 1 when some event failed (the app kept going), 2 when
/// the app could not be loaded, 3 when the app failed and stopped taking
/// events.
#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    app: AppArgs,

    #[command(flatten)]
    sandbox: SandboxArgs,

    /// Advance the virtual clock by MS after each event; what timers send
    /// then is part of that event's line [default: 0, or what `elmbox build
    /// --advance-ms` set for a built module].
    #[arg(long, value_name = "MS")]
    advance_ms: Option<u64>,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (mut app, origin) = args.app.open(&args.sandbox, DispatchMode::Call)?;
    let advance_ms = match (args.advance_ms, origin) {
        (Some(ms), _) => ms,
        (None, Origin::Module { advance_ms }) => advance_ms,
        (None, Origin::Source(_)) => 0,
    };
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
    while let Some(kind) = lines::read_line(&mut input, &mut line, limit)? {
        number += 1;
        let result = match kind {
            Line::TooLong(size) => Err(Error::EventTooLarge { size, limit }),
            Line::Event => app.dispatch_json(&line).and_then(|sent| {
                if advance_ms == 0 {
                    return Ok(sent);
                }
                match app.advance_time_json(advance_ms) {
                    Ok(later) => Ok(join_arrays(sent, &later)),
                    // What the event sent still belongs on its line.
                    Err(Error::AppThrew {
                        message,
                        stack,
                        outputs,
                    }) => {
                        let mut values: Vec<Value> =
                            serde_json::from_str(&sent).unwrap_or_default();
                        values.extend(outputs);
                        Err(Error::AppThrew {
                            message,
                            stack,
                            outputs: values,
                        })
                    }
                    Err(e) => Err(e),
                }
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
                    return Ok(ExitCode::from(EXIT_APP_FAILED));
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
        ExitCode::from(EXIT_SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `[a,b]` and `[c]` as `[a,b,c]`, keeping the app's JSON text as it is
/// (parsing and printing again could change how numbers are written).
fn join_arrays(mut first: String, second: &str) -> String {
    let rest = second.trim().trim_start_matches('[');
    if rest.trim_start().starts_with(']') {
        return first;
    }
    if first.trim() == "[]" {
        return second.to_string();
    }
    first.truncate(first.trim_end().len() - 1);
    first.push(',');
    first.push_str(rest);
    first
}

#[cfg(test)]
mod tests {
    use super::join_arrays;

    #[test]
    fn joins_json_arrays_as_text() {
        assert_eq!(join_arrays("[1,2]".into(), "[3]"), "[1,2,3]");
        assert_eq!(join_arrays("[]".into(), "[{\"a\":1e21}]"), "[{\"a\":1e21}]");
        assert_eq!(join_arrays("[1]".into(), "[]"), "[1]");
        assert_eq!(join_arrays("[]".into(), "[]"), "[]");
    }
}
