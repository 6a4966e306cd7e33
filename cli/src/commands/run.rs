//! `elmbox run`: one event per stdin line, one JSON array per stdout line.
//! The loop is the line protocol's driver (`elmbox_abi::lines`), the same
//! one a built module runs; this file only hands each event to the app.

use std::io::{self, BufReader, BufWriter};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;
use elmbox::app_name;
use elmbox::durable::commit::Committer;
use elmbox::durable::{RetainLog, StateLocation};
use elmbox::{
    App, AppConfig, AppError, DispatchMode, DurableApp, DurableOptions, Error, OnNewCode,
    SandboxLimits,
};
use elmbox_abi::lines;
use serde_json::Value;

use crate::app_args::{built_limits, AppArgs, AppFile, Origin, SandboxArgs};
use crate::outgoing::{client_failed, deliver_durably, send_when_durable, HttpArgs, RunRequests};
use elmbox::http::{HttpAction, HttpResponse};

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

    /// The app's clock. `virtual`: time moves only by --advance-ms, so a
    /// run is reproducible. `wall`: each line is handled at the wall-clock
    /// instant it is read, and the timers due by then fire within that
    /// line, once however long ago they came due (as `elmbox serve` runs
    /// every app).
    #[arg(long, value_enum, default_value_t = Clock::Virtual, conflicts_with = "advance_ms")]
    clock: Clock,

    #[command(flatten)]
    durable: DurableArgs,

    #[command(flatten)]
    http: HttpArgs,
}

/// `--clock`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Clock {
    Virtual,
    Wall,
}

impl Clock {
    /// The instant a line read now is handled at: `None` on virtual time.
    fn now(self) -> Option<SystemTime> {
        (self == Clock::Wall).then(SystemTime::now)
    }
}

/// Keeping the app's state across runs.
#[derive(Args)]
pub struct DurableArgs {
    /// Keep the app's state in DIR, or in the PostgreSQL database at
    /// `postgres://user:password@host:port/db`: every event in a log, with
    /// snapshots of the sandbox. New state records the app; existing state
    /// restores it and carries on. Each answer is written once its event is
    /// durable. One process runs an app at a time.
    #[arg(long, value_name = "DIR|URL")]
    pub state: Option<StateLocation>,

    /// With --state, when APP differs from the recorded app: deploy it by
    /// replaying the whole log through it (refused if it fails on any).
    #[arg(long, requires = "state", conflicts_with = "fresh")]
    pub deploy: bool,

    /// With --state, when APP differs from the recorded app: start it from
    /// its init, leaving the old state behind.
    #[arg(long, requires = "state")]
    pub fresh: bool,

    /// With --deploy: start the new version from the old one's model
    /// instead of replaying the log. The old version is sent null on its
    /// port elmboxExport and answers on elmboxExported; the new version's
    /// init gets {"migrated": THAT, "flags": FLAGS}. Tried on a copy first:
    /// refused, the old version kept, if either side fails.
    #[arg(long, requires = "deploy")]
    pub migrate: bool,

    /// With --state, the app's name in the state [default: APP's file name without
    /// its extension, so that `app.js` and the `app.wasm` built from it are
    /// one app].
    #[arg(long, requires = "state", value_name = "NAME", value_parser = app_name_arg)]
    pub name: Option<String>,

    /// With --state, a snapshot after at most this many events [default:
    /// once the app has spent 150 ms handling events since the last one,
    /// which bounds a restart's replay whatever the app's speed].
    #[arg(long, requires = "state", value_name = "EVENTS")]
    pub snapshot_every: Option<u64>,

    /// With --state, how much of the app's history to keep: `all` (every
    /// event, so that a new version can always be deployed by replay), or
    /// N, the log back to the N-th newest snapshot and no further (the
    /// store stays bounded; a later --deploy by replay is refused, use
    /// --migrate or --fresh). Applies from this run's next snapshot on.
    #[arg(long, requires = "state", value_name = "N|all", default_value = "all")]
    pub retain_log: RetainLog,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // The library's errors (a store that failed, say) on stderr; stdout is
    // the answers'.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
    if let Some(location) = &args.durable.state {
        return run_durable(&args, location);
    }
    let (mut app, origin) = args.app.open(&args.sandbox, DispatchMode::Call)?;
    let (advance_ms, all_ports) = match origin {
        Origin::Module {
            advance_ms,
            all_ports,
        } => (args.advance_ms.unwrap_or(advance_ms), all_ports),
        Origin::Source(config) => (args.advance_ms.unwrap_or(0), config.all_ports),
    };
    let mut requests = RunRequests::new(&args.http, app.name(), None)?;
    // What `init` sent, and what it sent when the requests it made were
    // answered: with --ports it is the first line; with one pair of ports
    // it is only reported.
    let mut startup = Value::from(app.startup_outputs().to_vec())
        .to_string()
        .into_bytes();
    requests.send_all(app.waiting_http()?)?;
    let clock = args.clock;
    answer_requests(&mut requests, &mut startup, |response| {
        let sent = match clock.now() {
            Some(at) => app.deliver_http_json_at(at, response),
            None => app.deliver_http_json(response),
        };
        Ok((sent?, app.take_http_actions()))
    })?;
    let startup = String::from_utf8_lossy(&startup).into_owned();
    if !all_ports && startup != "[]" {
        eprintln!("elmbox: sent while starting: {startup}");
    }
    let first_line = all_ports.then_some(startup.as_bytes());
    let limit = app.limits().max_event_bytes;
    let mut input = BufReader::with_capacity(64 << 10, io::stdin().lock());
    let mut output = BufWriter::new(io::stdout().lock());
    let status = lines::serve(
        &mut input,
        &mut output,
        limit,
        first_line,
        |event, answer| handle(&mut app, &mut requests, event, advance_ms, clock, answer),
    );
    Ok(ExitCode::from(status))
}

/// `run --state`: the app restored from (or recorded into) the state at
/// `location`, each answer written by the commit thread once its event is
/// durable.
fn run_durable(args: &RunArgs, location: &StateLocation) -> anyhow::Result<ExitCode> {
    let runtime = args.sandbox.runtime()?;
    let (source, config, advance_ms, limits) = match args.app.read()? {
        AppFile::JavaScript(source) => {
            let config = args.app.config()?;
            let limits = args.app.size_limits(SandboxLimits::default());
            (source, config, args.advance_ms.unwrap_or(0), limits)
        }
        // Restored into the runtime's guest from its state, so it can be
        // snapshotted like an app loaded from JavaScript.
        AppFile::Module(wasm) => {
            args.app.refuse_build_options()?;
            let built = runtime
                .module_settings(&wasm)
                .with_context(|| format!("cannot load {}", args.app.app.display()))?;
            let config = AppConfig::default()
                .name(args.app.name())
                .all_ports(built.app.all_ports);
            let advance_ms = args.advance_ms.unwrap_or(built.stdio.advance_ms);
            let limits = args.app.size_limits(built_limits(&built.stdio));
            (wasm, config, advance_ms, limits)
        }
    };
    let name = args.durable.name.clone().unwrap_or_else(|| {
        let file = Path::new(&config.name);
        file.file_stem()
            .unwrap_or(file.as_os_str())
            .to_string_lossy()
            .into_owned()
    });
    // Before the store is opened: nothing is made for a name it refuses.
    if args.durable.name.is_none() {
        app_name::check(&name).with_context(|| {
            format!(
                "{} gives the app its name: name it with --name",
                args.app.app.display()
            )
        })?;
    }
    let all_ports = config.all_ports;
    let runtime = runtime.with_limits(args.sandbox.apply(limits))?;
    let store = location.open()?;
    let committer = Arc::new(Committer::start(
        store.clone(),
        Some(Box::new(io::stdout())),
    ));
    let options = DurableOptions {
        on_new_code: match (args.durable.deploy, args.durable.fresh) {
            (true, _) if args.durable.migrate => OnNewCode::Migrate,
            (true, _) => OnNewCode::Replay,
            (_, true) => OnNewCode::Fresh,
            _ => OnNewCode::Refuse,
        },
        snapshot_every_inputs: args
            .durable
            .snapshot_every
            .map_or(DurableOptions::default().snapshot_every_inputs, |n| {
                n.max(1)
            }),
        retain_log: args.durable.retain_log,
        ..DurableOptions::default()
    };
    let (mut durable, opened) = DurableApp::open(
        &runtime,
        store,
        committer.clone(),
        &name,
        &source,
        config,
        options,
    )
    .with_context(|| format!("cannot open {name} in {location}"))?;
    for note in &opened.passed_over {
        eprintln!("elmbox: {note}; passed over");
    }
    if opened.cut > 0 {
        eprintln!(
            "elmbox: cut {} damaged record(s) from the end of the log (a write torn by a crash)",
            opened.cut
        );
    }
    match (opened.created, opened.snapshot) {
        (true, _) => eprintln!("elmbox: recording {name} in {location}"),
        (false, Some(seq)) => eprintln!(
            "elmbox: restored {name} from the snapshot after event {seq}, replayed {} event(s)",
            opened.replayed
        ),
        (false, None) => eprintln!(
            "elmbox: restored {name} by replaying {} event(s) from the start",
            opened.replayed
        ),
    }
    if let Some(how) = opened.deployed {
        eprintln!("elmbox: deployed the new version ({how:?})");
    }
    eprintln!("elmbox: at event {}", durable.seq());
    let mut requests = RunRequests::new(&args.http, &name, Some(durable.idempotency_keys()))?;
    // Sent again: their answers were not durable when the last run ended.
    let waiting = durable.waiting_http()?;
    if !waiting.is_empty() {
        eprintln!(
            "elmbox: sending the {} request(s) the app waits on",
            waiting.len()
        );
    }
    requests.send_all(waiting)?;
    let clock = args.clock;
    let mut startup = Value::from(durable.startup_outputs().to_vec())
        .to_string()
        .into_bytes();
    answer_requests(&mut requests, &mut startup, |response| {
        deliver_durably(&mut durable, &committer, clock.now(), response)
    })?;
    let startup = String::from_utf8_lossy(&startup).into_owned();
    let first_line = all_ports.then_some(startup.as_bytes());
    let limit = durable.limits().max_event_bytes;
    let mut input = BufReader::with_capacity(64 << 10, io::stdin().lock());
    let mut output = committer.gated_output(&name);
    let status = lines::serve(
        &mut input,
        &mut output,
        limit,
        first_line,
        |event, answer| {
            let mut submitted = match clock.now() {
                Some(now) => durable.submit_event_at(now, event)?,
                None => durable.submit_event(event)?,
            };
            send_when_durable(
                &mut requests,
                &committer,
                &name,
                submitted.take_http_actions(),
            )?;
            let sent = submitted.ungated()?;
            answer.extend_from_slice(sent.as_bytes());
            if advance_ms > 0 {
                let mut later = durable.submit_advance(advance_ms)?;
                send_when_durable(&mut requests, &committer, &name, later.take_http_actions())?;
                append_array(answer, later.ungated()?.as_bytes());
            }
            answer_requests(&mut requests, answer, |response| {
                deliver_durably(&mut durable, &committer, clock.now(), response)
            })
        },
    );
    // A run that already failed says why; closing must not hide it.
    let closed = durable.close().and_then(|()| committer.finish());
    // Lines the store failed were answered `[]`: some events failed.
    let status = match (status, committer.lines_failed()) {
        (lines::EXIT_OK, 1..) => lines::EXIT_SOME_FAILED,
        (status, _) => status,
    };
    match closed {
        Err(e) if status == lines::EXIT_OK => Err(e.into()),
        Err(e) => {
            eprintln!("elmbox: {e}");
            Ok(ExitCode::from(status))
        }
        Ok(()) => Ok(ExitCode::from(status)),
    }
}

/// Dispatches one event (at the wall-clock time, on `clock wall`), then
/// advances the clock by `advance_ms`, then waits for the HTTP requests
/// that started; writes into `answer` everything the app sent, also
/// before a throw.
fn handle(
    app: &mut App,
    requests: &mut RunRequests,
    event: &[u8],
    advance_ms: u64,
    clock: Clock,
    answer: &mut Vec<u8>,
) -> Result<(), Error> {
    let sent = match clock.now() {
        Some(at) => app.dispatch_json_at(at, event),
        None => app.dispatch_json(event),
    };
    // An app that threw may have sent a request before it did.
    requests
        .act(app.take_http_actions())
        .map_err(client_failed)?;
    let sent = sent.inspect_err(|e| sent_before(e, answer))?;
    answer.extend_from_slice(sent.as_bytes());
    if advance_ms > 0 {
        let later = app.advance_time_json(advance_ms);
        requests
            .act(app.take_http_actions())
            .map_err(client_failed)?;
        match later {
            Ok(later) => append_array(answer, later.as_bytes()),
            // What the event sent still belongs on its line.
            Err(e) => {
                let mut more = Vec::new();
                sent_before(&e, &mut more);
                append_array(answer, &more);
                return Err(e);
            }
        }
    }
    answer_requests(requests, answer, |response| {
        let sent = match clock.now() {
            Some(at) => app.deliver_http_json_at(at, response),
            None => app.deliver_http_json(response),
        };
        let actions = app.take_http_actions();
        Ok((sent?, actions))
    })
}

/// Waits for the requests in flight, hands each answer to the app with
/// `deliver` (which returns what the app sent and what it started), and
/// sends what that starts, until none is in flight; appends to `answer`
/// what the app sent.
fn answer_requests(
    requests: &mut RunRequests,
    answer: &mut Vec<u8>,
    mut deliver: impl FnMut(&HttpResponse) -> Result<(String, Vec<HttpAction>), Error>,
) -> Result<(), Error> {
    while let Some(response) = requests.next_answer() {
        let (sent, actions) = deliver(&response)?;
        requests.act(actions).map_err(client_failed)?;
        append_array(answer, sent.as_bytes());
    }
    Ok(())
}

/// What the app sent before `error`: only an app that threw sent anything.
fn sent_before(error: &Error, answer: &mut Vec<u8>) {
    if let Error::App {
        error: AppError::Threw(_),
        outputs,
    } = error
    {
        answer.extend_from_slice(Value::from(outputs.clone()).to_string().as_bytes());
    }
}

/// Appends the JSON array `more` to the JSON array in `answer` (`[a,b]` and
/// `[c]` make `[a,b,c]`), keeping the app's JSON text as it is: parsing and
/// printing again could change how numbers are written.
fn append_array(answer: &mut Vec<u8>, more: &[u8]) {
    let more = more.trim_ascii();
    let rest = more.strip_prefix(b"[").unwrap_or(more);
    if rest.trim_ascii_start().starts_with(b"]") || rest.is_empty() {
        return;
    }
    let trimmed = answer.trim_ascii_end().len();
    answer.truncate(trimmed);
    if answer.is_empty() || answer.as_slice() == b"[]" {
        answer.clear();
        answer.extend_from_slice(more);
        return;
    }
    answer.pop(); // the closing `]`
    answer.push(b',');
    answer.extend_from_slice(rest);
}

/// `--name`: an app name, by the one rule for them.
fn app_name_arg(name: &str) -> Result<String, String> {
    app_name::check(name)
        .map(|()| name.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::append_array;

    fn joined(first: &str, second: &str) -> String {
        let mut answer = first.as_bytes().to_vec();
        append_array(&mut answer, second.as_bytes());
        String::from_utf8(answer).unwrap()
    }

    #[test]
    fn joins_json_arrays_as_text() {
        assert_eq!(joined("[1,2]", "[3]"), "[1,2,3]");
        assert_eq!(joined("[]", "[{\"a\":1e21}]"), "[{\"a\":1e21}]");
        assert_eq!(joined("", "[4]"), "[4]");
        assert_eq!(joined("[1]", "[]"), "[1]");
        assert_eq!(joined("[]", "[]"), "[]");
    }
}
