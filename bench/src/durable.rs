//! Durable apps (`DurableApp`, `elmbox run --state`): what keeping every
//! event costs, against the same apps without a store, side by side.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use elmbox::durable::commit::Committer;
use elmbox::durable::sqlite::SqliteStore;
use elmbox::durable::store::StateStore;
use elmbox::{DurableApp, DurableOptions, Runtime};

use crate::{fixtures, ms, quiet_config, MB};

/// Client threads in the concurrent runs, each with its own app.
const CLIENTS: usize = 4;
const MANY_CLIENTS: usize = 32;
const EVENTS_PER_CLIENT: usize = 20_000;
const LATENCY_EVENTS: usize = 2_000;
const MILLION: u64 = 1_000_000;
/// Turns of the one-stream run, durable then without a store.
const STREAM_ROUNDS: usize = 3;

fn scratch(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("elmbox-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(dir)
}

struct Store {
    store: Arc<dyn StateStore>,
    committer: Arc<Committer>,
}

fn store(dir: &Path) -> anyhow::Result<Store> {
    let store: Arc<dyn StateStore> = Arc::new(SqliteStore::open(dir)?);
    let committer = Arc::new(Committer::start(store.clone(), None));
    Ok(Store { store, committer })
}

fn open(runtime: &Runtime, at: &Store, name: &str, js: &[u8]) -> anyhow::Result<DurableApp> {
    let (app, _) = DurableApp::open(
        runtime,
        at.store.clone(),
        at.committer.clone(),
        name,
        js,
        quiet_config(),
        DurableOptions::default(),
    )?;
    Ok(app)
}

fn event(client: usize, i: usize) -> String {
    format!(r#"{{"type":"click","client":{client},"id":{i}}}"#)
}

pub fn section(root: &Path, runtime: &Runtime) -> anyhow::Result<String> {
    let mut doc = String::new();
    let js = std::fs::read(fixtures(root).join("counter.js"))?;

    // Clients that each wait for every answer before sending the next.
    let mut waiting = Vec::new();
    for clients in [CLIENTS, MANY_CLIENTS] {
        let events = CLIENTS * EVENTS_PER_CLIENT / clients;
        let plain = concurrent(
            clients,
            events,
            || Ok(runtime.load(&js, quiet_config())?),
            |app: &mut elmbox::App, e| app.dispatch_json(e).map(drop),
        )?;
        let dir = scratch(&format!("clients-{clients}"))?;
        let at = store(&dir)?;
        let mut next = 0;
        let durable = concurrent(
            clients,
            events,
            || {
                next += 1;
                open(runtime, &at, &format!("client-{next}"), &js)
            },
            |app: &mut DurableApp, e| app.dispatch_json(e).map(drop),
        )?;
        drop(at);
        let _ = std::fs::remove_dir_all(dir);
        waiting.push((clients, plain, durable));
    }
    // One stream, answers released by the output gate (`run --state`),
    // against the same stream without a store, in turns: the median of
    // the rounds (this machine's speed drifts between runs).
    let stream_dir = scratch("stream")?;
    let mut rounds = Vec::new();
    for round in 0..STREAM_ROUNDS {
        let at = store(&stream_dir)?;
        let mut app = open(runtime, &at, &format!("stream-{round}"), &js)?;
        let total = CLIENTS * EVENTS_PER_CLIENT;
        let started = Instant::now();
        for i in 0..total {
            app.submit_event(event(0, i).as_bytes())?.ungated()?;
        }
        at.committer.ticket()?.wait()?;
        let durable = started.elapsed();
        let mut plain = runtime.load(&js, quiet_config())?;
        let started = Instant::now();
        for i in 0..total {
            plain.dispatch_json(event(0, i))?;
        }
        rounds.push((durable, started.elapsed()));
    }
    rounds.sort_by(|a, b| {
        let ratio = |(d, p): &(Duration, Duration)| p.as_secs_f64() / d.as_secs_f64();
        ratio(a).total_cmp(&ratio(b))
    });
    let (stream, stream_plain) = rounds[rounds.len() / 2];
    let total = (CLIENTS * EVENTS_PER_CLIENT) as f64;
    let rate = |d: Duration| total / d.as_secs_f64();
    writeln!(
        doc,
        "The counter fixture, {} events, each answered only once it is durable (SQLite, WAL, \
         `synchronous=FULL`; one fsync on this disk takes ~170 µs), against the same apps \
         without a store:\n",
        CLIENTS * EVENTS_PER_CLIENT
    )?;
    writeln!(
        doc,
        "| run | without a store | durable | durable / without |"
    )?;
    writeln!(doc, "|---|---:|---:|---:|")?;
    writeln!(
        doc,
        "| one app, events arriving while earlier ones commit (`run --state`), the median of {STREAM_ROUNDS} turns | {:.0} events/s | {:.0} events/s | {:.2} |",
        rate(stream_plain),
        rate(stream),
        rate(stream) / rate(stream_plain)
    )?;
    for (clients, plain, durable) in &waiting {
        writeln!(
            doc,
            "| {clients} apps, a client each that waits for every answer before the next | {:.0} events/s | {:.0} events/s | {:.2} |",
            rate(*plain),
            rate(*durable),
            rate(*durable) / rate(*plain)
        )?;
    }
    writeln!(
        doc,
        "\nThe output gate holds answers, not the app: an app goes on with the next event while \
         the commit thread makes the earlier ones durable, and one commit takes all that arrived \
         meanwhile; while nobody waits on a commit (a stream whose answers the commit thread \
         writes itself), it gathers for up to 2 ms, so the stream pays for a few hundred fsyncs a \
         second rather than thousands (whose I/O interrupts land on the app's core too). A client \
         that waits for each answer before it sends the next waits for a commit each time, and \
         that commit starts at once, so such clients gain only as many of them share a commit.\n"
    )?;

    // One client waiting for each answer.
    let latency_dir = scratch("latency")?;
    let mut latencies = {
        let at = store(&latency_dir)?;
        let mut app = open(runtime, &at, "latency", &js)?;
        let mut latencies = Vec::with_capacity(LATENCY_EVENTS);
        for i in 0..LATENCY_EVENTS {
            let started = Instant::now();
            app.dispatch_json(event(0, i))?;
            latencies.push(started.elapsed());
        }
        latencies
    };
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    writeln!(
        doc,
        "One client alone, waiting for each answer ({LATENCY_EVENTS} events): median {:.0} µs, \
         99th percentile {:.0} µs per event (a commit of its own each time).\n",
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6
    )?;

    // Restart after a million events, as after kill -9: no last snapshot.
    let million_dir = scratch("million")?;
    let events = MILLION;
    {
        let at = store(&million_dir)?;
        let mut app = open(runtime, &at, "counter", &js)?;
        for i in 0..events as usize {
            app.submit_event(event(0, i).as_bytes())?.ungated()?;
        }
        at.committer.ticket()?.wait()?;
        // No close: as after kill -9, the log runs past the last snapshot.
        drop(app);
        at.committer.finish()?;
    }
    let size = dir_size(&million_dir)?;
    let started = Instant::now();
    let at = store(&million_dir)?;
    let (mut app, opened) = DurableApp::open(
        runtime,
        at.store.clone(),
        at.committer.clone(),
        "counter",
        &js,
        quiet_config(),
        DurableOptions::default(),
    )?;
    let restart = started.elapsed();
    let answer = app.dispatch_json(event(0, 0))?;
    anyhow::ensure!(
        answer.contains(&format!("\"count\":{}", events + 1)),
        "restored to the wrong state: {answer}"
    );
    let cold = crate::median_time(15, || runtime.load(&js, quiet_config()).map(drop))?;
    writeln!(
        doc,
        "Restart after {events} events (a snapshot whenever the app spent 150 ms on events; \
         stopped as by kill -9, the last snapshot {} events back): {} to open the store, restore \
         the snapshot and replay {} events, against {} for a cold start of the app from its \
         JavaScript: cold start + {}.\n",
        events - opened.snapshot.unwrap_or(0),
        ms(restart),
        opened.replayed,
        ms(cold),
        ms(restart.saturating_sub(cold))
    )?;
    writeln!(
        doc,
        "Store size: {:.1} MB for {events} events: {:.1} MB per million events (log and \
         snapshots; `elmbox state` shows the parts).\n",
        size as f64 / MB,
        size as f64 / MB / (events as f64 / MILLION as f64)
    )?;

    // Snapshot size and time.
    writeln!(
        doc,
        "| snapshot of | memory | encoded (zstd) | take + encode |"
    )?;
    writeln!(doc, "|---|---:|---:|---:|")?;
    for name in ["counter", "wordcount"] {
        let js = std::fs::read(fixtures(root).join(format!("{name}.js")))?;
        let mut app = runtime.load(&js, quiet_config())?;
        for i in 0..100 {
            app.dispatch_json(format!(r#""{{\"text\": \"event {i} of a hundred\"}}""#))?;
        }
        let started = Instant::now();
        let state = app.state()?;
        let bytes = state.encode()?;
        let took = started.elapsed();
        writeln!(
            doc,
            "| {name} after 100 events | {:.1} MB | {:.0} KB | {} |",
            state.memory.len() as f64 / MB,
            bytes.len() as f64 / 1024.0,
            ms(took)
        )?;
    }
    for dir in [stream_dir, latency_dir, million_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(doc)
}

/// The bytes of the files in `dir` (a state directory).
pub(crate) fn dir_size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}

/// Runs `clients` threads at once, each on an app of its own made by
/// `make`, each sending `events` events and waiting for every answer.
fn concurrent<A: Send>(
    clients: usize,
    events: usize,
    mut make: impl FnMut() -> anyhow::Result<A>,
    send: impl Fn(&mut A, String) -> elmbox::Result<()> + Sync,
) -> anyhow::Result<Duration> {
    let mut apps = Vec::with_capacity(clients);
    for _ in 0..clients {
        apps.push(make()?);
    }
    let send = &send;
    let started = Instant::now();
    std::thread::scope(|s| {
        for (client, mut app) in apps.into_iter().enumerate() {
            s.spawn(move || {
                for i in 0..events {
                    send(&mut app, event(client, i)).expect("answered");
                }
            });
        }
    });
    Ok(started.elapsed())
}
