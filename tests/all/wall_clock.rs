//! Served apps on the wall clock: `Time.now`, `Time.every` and
//! `Process.sleep` (elm/time and elm/core's kernels on `Date.now`,
//! `setInterval` and `setTimeout`) in a real `elmbox serve`, across kill -9,
//! parking and a takeover by another node; and replays of a log whose
//! inputs carry their instants. The app is the clock fixture
//! (`examples/clock`), in HTTP mode.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use elmbox::durable::commit::Committer;
use elmbox::durable::log::{Input, Record};
use elmbox::durable::StateLocation;
use elmbox::{AppConfig, DurableApp, DurableOptions, Error, EventFormat};
use elmbox_tests::{fixture, runtime};
use serde_json::Value;

use crate::served::{read, scratch, Served, TOKEN};

fn clock_js() -> Vec<u8> {
    std::fs::read(fixture("clock")).expect("make fixtures")
}

fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// `GET /apps/clock/PATH` on `server`: the status and the JSON body.
fn get(server: &Served, path: &str) -> (u16, Value) {
    let (status, body) = read(
        server
            .http
            .get(format!("{}/apps/clock{path}", server.url))
            .call(),
    );
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, value)
}

/// `GET PATH`, which must answer 200: its JSON body.
fn get_ok(server: &Served, path: &str) -> Value {
    let (status, body) = get(server, path);
    assert_eq!(status, 200, "{path}: {body}\n{}", server.log());
    body
}

/// The clock app deployed on `server` in HTTP mode with `flags`.
fn deploy_clock(server: &Served, flags: &str) {
    let flags: String = url_escape(flags);
    let (status, text) = server.deploy("clock", &format!("?http=true&flags={flags}"), &clock_js());
    assert_eq!(status, 201, "{text}");
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The ticks an app has counted, and when it counted the last.
fn ticks(server: &Served) -> (i64, i64) {
    let body = get_ok(server, "/ticks");
    (
        body["ticks"].as_i64().unwrap(),
        body["last"].as_i64().unwrap(),
    )
}

#[test]
fn served_apps_see_the_wall_clock_tick_and_sleep() {
    let dir = scratch("wall-clock");
    let server = Served::start_with(
        dir.join("state"),
        Some(TOKEN),
        &["--response-timeout-ms", "5000"],
    );
    deploy_clock(&server, r#"{"tick":100,"sleep":300}"#);

    // Time.now reads the host's clock, not the instant of the deploy.
    std::thread::sleep(Duration::from_millis(400));
    for _ in 0..3 {
        let before = unix_ms(SystemTime::now());
        let now = get_ok(&server, "/now")["now"].as_i64().unwrap();
        let after = unix_ms(SystemTime::now());
        assert!(
            before - 1000 <= now && now <= after + 1000,
            "Time.now {now}, host clock {before}..{after}"
        );
    }

    // A request the app answers after `Process.sleep 300` gets its answer
    // then: not at once, and not the 504 of a sleep that never ends.
    let asked = Instant::now();
    let asked_at = unix_ms(SystemTime::now());
    let (status, slept) = get(&server, "/sleep");
    let waited = asked.elapsed();
    assert_eq!(status, 200, "{slept}\n{}", server.log());
    // The app's clock counts whole milliseconds: the event's instant is
    // the one its millisecond began at, up to 1 ms before it was asked.
    assert!(
        waited >= Duration::from_millis(299),
        "answered after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(4000),
        "answered after {waited:?}"
    );
    assert!(slept["now"].as_i64().unwrap() >= asked_at + 300, "{slept}");

    // `Time.every 100` ticks at its rate, each tick reading the clock.
    let (first, _) = ticks(&server);
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let (last, last_at) = ticks(&server);
    let expected = started.elapsed().as_millis() as i64 / 100;
    assert!(
        last - first >= expected / 3 && last - first <= expected + 2,
        "{} ticks in {:?}",
        last - first,
        started.elapsed()
    );
    assert!(
        (unix_ms(SystemTime::now()) - last_at).abs() < 1000,
        "{last_at}"
    );

    // The metrics count the timers fired and how late they were.
    let metrics = server.metrics();
    let fired = metric(&metrics, "elmbox_timers_fired_total{app=\"clock\"}");
    assert!(
        fired >= last as f64,
        "{fired} timers fired for {last} ticks"
    );
    let woken = metric(
        &metrics,
        "elmbox_timer_lateness_seconds_count{app=\"clock\"}",
    );
    // A tick due as a request comes fires in that request, not a wake.
    assert!(
        woken + 10.0 >= last as f64,
        "{woken} wakes for {last} ticks"
    );
    assert_eq!(metric(&metrics, "elmbox_apps_with_timers"), 1.0);
}

/// The value of the series `series` in a Prometheus text.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

#[test]
fn after_kill_9_the_ticks_carry_on_without_a_burst_and_time_is_real_again() {
    let dir = scratch("wall-clock-kill");
    let state = dir.join("state");
    let server = Served::start(&state);
    deploy_clock(&server, r#"{"tick":100}"#);
    std::thread::sleep(Duration::from_millis(800));
    let (before, before_at) = ticks(&server);
    assert!(before > 0, "no ticks before the kill");
    drop(server); // SIGKILL
    let gap = Duration::from_millis(2500);
    std::thread::sleep(gap);
    let server = Served::start(&state);
    let (after, after_at) = ticks(&server);
    let since = unix_ms(SystemTime::now()) - before_at;
    // Not reset: the ticks answered before the kill are durable.
    assert!(after >= before, "{before} ticks before, {after} after");
    // No burst: the gap is one tick, then the period runs from the restart.
    // Ticking through the gap would have counted one per 100 ms of it.
    let through_the_gap = since / 100;
    let since_restart = since - gap.as_millis() as i64;
    assert!(
        after - before <= since_restart / 100 + 3 && after - before < through_the_gap - 10,
        "{before} -> {after} ticks in {since} ms, {since_restart} of them since the restart"
    );
    assert!(after_at >= before_at, "{before_at} -> {after_at}");
    let now = get_ok(&server, "/now")["now"].as_i64().unwrap();
    assert!(
        (unix_ms(SystemTime::now()) - now).abs() < 1000,
        "Time.now {now}"
    );
    // And it ticks on.
    std::thread::sleep(Duration::from_millis(600));
    assert!(ticks(&server).0 >= after + 2, "no ticks after the restart");
}

#[test]
fn a_parked_apps_timer_wakes_it_when_due() {
    let dir = scratch("wall-clock-parked");
    let server = Served::start_with(dir.join("state"), Some(TOKEN), &["--idle-ms", "300"]);
    deploy_clock(&server, r#"{"sleep":2000}"#);
    let asked_at = unix_ms(SystemTime::now());
    let (status, body) = get(&server, "/remind");
    assert_eq!(status, 202, "{body}");
    server.wait_for_log("parked: idle for 300 ms");
    // Woken by its timer, not by a request: nothing is sent meanwhile.
    server.wait_for_log("woken in");
    std::thread::sleep(Duration::from_millis(1500));
    let asked_again = unix_ms(SystemTime::now());
    let reminded = get_ok(&server, "/reminded");
    assert_eq!(reminded["reminded"], 1, "{reminded}");
    let at = reminded["at"].as_i64().unwrap();
    // At its due time; a wake by the request would have noted it at the
    // request's instant.
    assert!(
        at >= asked_at + 2000 && at < asked_again - 500,
        "noted at {at}: asked at {asked_at}, due at {}, asked again at {asked_again}",
        asked_at + 2000
    );
}

#[test]
fn on_postgres_an_app_whose_node_died_wakes_for_its_timers_on_another() {
    let database = crate::support::PgServer::start();
    let url = database.database("wall_clock");
    let node =
        |id: &str| Served::start_with(&url, Some(TOKEN), &["--node-id", id, "--lease-ms", "1000"]);
    let a = node("a");
    let b = node("b");
    deploy_clock(&a, r#"{"tick":100,"sleep":4000}"#);
    let asked_at = unix_ms(SystemTime::now());
    assert_eq!(get(&a, "/remind").0, 202);
    drop(a); // SIGKILL, with a reminder pending and ticks due
             // Nobody asks b for the app: b takes it over because its timers are
             // due (the store keeps when), once a's lease has run out.
    b.wait_for_log("a timer is due and no live node holds it");
    b.wait_for_log("taken over in");
    let taken_at = unix_ms(SystemTime::now());
    assert!(
        taken_at < asked_at + 4000,
        "taken over {} ms after the reminder was asked for",
        taken_at - asked_at
    );
    // It ticks on b, and the reminder fires there when it is due.
    let (first, _) = ticks(&b);
    std::thread::sleep(Duration::from_millis((asked_at + 4600 - taken_at) as u64));
    let (later, _) = ticks(&b);
    assert!(later >= first + 5, "{first} -> {later} ticks on b");
    let reminded = get_ok(&b, "/reminded");
    assert_eq!(reminded["reminded"], 1, "{reminded}\n{}", b.log());
    let at = reminded["at"].as_i64().unwrap();
    assert!(
        at >= asked_at + 4000 && at < asked_at + 4500,
        "noted at {at}, due at {}",
        asked_at + 4000
    );
}

/// The clock app as a durable app in `dir`, fed at the instants given (no
/// time passes in the test: the instants are made up), with no snapshot
/// but the first, so that opening it again replays every input.
fn replayed_clock(
    dir: &std::path::Path,
) -> (Arc<dyn elmbox::durable::store::StateStore>, Arc<Committer>) {
    let store = StateLocation::Directory(dir.to_path_buf()).open().unwrap();
    let committer = Arc::new(Committer::start(store.clone(), None));
    (store, committer)
}

fn never_snapshot() -> DurableOptions {
    DurableOptions {
        snapshot_after_work: Duration::from_secs(3600),
        snapshot_every_inputs: u64::MAX,
        snapshot_every: Duration::from_secs(3600),
        ..DurableOptions::default()
    }
}

#[test]
fn a_replay_sets_the_recorded_instants_and_gives_the_same_answers() {
    let dir = scratch("wall-clock-replay").join("state");
    let _ = std::fs::remove_dir_all(&dir);
    let config = AppConfig::default()
        .name("clock.js")
        .event_format(EventFormat::Json)
        .flags_json(r#"{"tick":100,"sleep":250}"#);
    let (store, committer) = replayed_clock(&dir);
    let (mut app, _) = DurableApp::open(
        runtime(),
        store,
        committer.clone(),
        "clock",
        &clock_js(),
        config,
        never_snapshot(),
    )
    .unwrap();
    // Whole milliseconds, as the app's clock counts.
    let start = UNIX_EPOCH + Duration::from_millis(unix_ms(SystemTime::now()) as u64);
    let at = |ms: u64| start + Duration::from_millis(ms);
    let event = |id: &str, path: &str| format!(r#"{{"id":"{id}","path":"{path}"}}"#);
    let mut answers = Vec::new();
    let mut now_event = 0;
    for step in 0..40u64 {
        let instant = at(step * 37);
        // The app's timers, woken when due as a scheduler would.
        while let Some(due) = app.next_due().filter(|&due| due <= instant) {
            answers.push(app.advance_to_json(due).unwrap());
        }
        let path = ["/now", "/ticks", "/sleep", "/remind", "/reminded"][step as usize % 5];
        if path == "/now" {
            now_event = app.seq() + 1;
        }
        answers.push(
            app.dispatch_json_at(instant, event(&step.to_string(), path))
                .unwrap(),
        );
    }
    // What the sleeps answered came out of the wakes at their due times.
    assert!(answers.iter().any(|a| a.contains("slept")), "{answers:?}");
    // A gap: the interval fires once, then keeps its period from here.
    let ticks_before = app
        .dispatch_json_at(at(1500), event("t1", "/ticks"))
        .unwrap();
    let gap = at(1500 + 60_000);
    let after_gap = app.advance_to_json(gap).unwrap();
    let ticks_after = app.dispatch_json_at(gap, event("t2", "/ticks")).unwrap();
    let count = |answer: &str| -> i64 {
        let outputs: Value = serde_json::from_str(answer).unwrap();
        let body: Value = serde_json::from_str(outputs[0]["body"].as_str().unwrap()).unwrap();
        body["ticks"].as_i64().unwrap()
    };
    assert_eq!(count(&ticks_after), count(&ticks_before) + 1, "{after_gap}");
    assert_eq!(
        app.next_due(),
        Some(gap + Duration::from_millis(100)),
        "the period runs from the end of the gap"
    );
    let last = app.seq();
    let clock = app.clock();
    drop(app);
    committer.finish().unwrap();

    // Every input again, each at its recorded instant, each answer checked
    // against the recorded one (`Error::Diverged` otherwise).
    let reopen = || {
        let (store, committer) = replayed_clock(&dir);
        let opened = DurableApp::open_recorded(
            runtime(),
            store,
            committer,
            "clock",
            elmbox::Console::default(),
            never_snapshot(),
        );
        opened.map(|o| o.expect("the app is in the store"))
    };
    let (again, opened) = reopen().unwrap();
    assert_eq!(opened.snapshot, Some(0));
    assert_eq!(opened.replayed, last);
    assert_eq!(again.clock(), clock);
    assert_eq!(again.next_due(), Some(gap + Duration::from_millis(100)));
    drop(again);

    // With one instant changed in the log, the replay comes out otherwise
    // and says so: the instants are what the answers depend on.
    let db = rusqlite::Connection::open(dir.join("elmbox.sqlite")).unwrap();
    let bytes: Vec<u8> = db
        .query_row(
            "SELECT record FROM log WHERE app = 'clock' AND seq = ?1",
            [now_event as i64],
            |row| row.get(0),
        )
        .unwrap();
    let mut record = Record::decode(now_event, &bytes).unwrap();
    assert!(matches!(record.input, Input::Event(_)), "{record:?}");
    record.clock_ms += 5;
    db.execute(
        "UPDATE log SET record = ?1 WHERE app = 'clock' AND seq = ?2",
        rusqlite::params![record.encode(), now_event as i64],
    )
    .unwrap();
    drop(db);
    match reopen() {
        Err(Error::Diverged { seq, .. }) => assert_eq!(seq, now_event),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("the changed instant went unnoticed"),
    }
}

/// `elmbox run ARGS clock.js`, fed `lines` with `pause` between them, each
/// written once the answer to the one before has been read: the lines
/// it printed.
fn run_paced(args: &[&str], lines: &[&str], pause: Duration) -> Vec<Value> {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(elmbox_tests::elmbox_bin())
        .arg("run")
        .args(args)
        .arg(fixture("clock"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut answers = Vec::new();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
        answers.push(serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}")));
        std::thread::sleep(pause);
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    answers
}

/// The bodies of the HTTP-mode answers in one line, by request id.
fn bodies(line: &Value) -> Vec<(String, Value)> {
    line.as_array()
        .unwrap()
        .iter()
        .map(|answer| {
            let body = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
            (answer["id"].as_str().unwrap().to_string(), body)
        })
        .collect()
}

#[test]
fn run_clock_wall_handles_each_line_at_the_instant_it_is_read() {
    let lines = [
        r#"{"id":"a","path":"/sleep"}"#,
        r#"{"id":"b","path":"/ticks"}"#,
    ];
    let flags = ["--json-events", "--flags", r#"{"tick":100,"sleep":300}"#];
    let wall = [&flags[..], &["--clock", "wall"]].concat();
    let answers = run_paced(&wall, &lines, Duration::from_millis(600));
    // The sleep is not over when its line is answered...
    assert_eq!(answers[0], serde_json::json!([]), "{answers:?}");
    // ...and it is by the next line, 600 ms later: its answer comes first in
    // that line, then the event's, which counts one tick for the gap (not
    // one per 100 ms of it).
    let second = bodies(&answers[1]);
    assert_eq!(second.len(), 2, "{answers:?}");
    assert_eq!(second[0].0, "a");
    assert_eq!(second[0].1["slept"], 300);
    assert_eq!(second[1].0, "b");
    // (Two if the first line came over 100 ms after the app started.)
    let ticks = second[1].1["ticks"].as_i64().unwrap();
    assert!((1..=2).contains(&ticks), "{answers:?}");

    // On virtual time (the default) no time passes between the lines.
    let answers = run_paced(&flags, &lines, Duration::from_millis(600));
    assert_eq!(answers[1].as_array().unwrap().len(), 1, "{answers:?}");
    assert_eq!(bodies(&answers[1])[0].1["ticks"], 0, "{answers:?}");

    // A line's instant is the wall clock's, not --advance-ms's.
    let out = elmbox_tests::elmbox(
        &[
            "run",
            "--clock",
            "wall",
            "--advance-ms",
            "5",
            &fixture("clock"),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = elmbox_tests::stderr(&out);
    assert!(
        stderr.contains("--clock") && stderr.contains("--advance-ms"),
        "{stderr}"
    );
}

#[test]
fn run_state_clock_wall_carries_on_from_the_recorded_clock() {
    let dir = scratch("wall-clock-run-state");
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    let state = state.display().to_string();
    let args = [
        "--json-events",
        "--flags",
        r#"{"tick":100}"#,
        "--clock",
        "wall",
        "--state",
        &state,
        "--name",
        "clock",
    ];
    let ticks = |line: &Value| bodies(line)[0].1["ticks"].as_i64().unwrap();
    let first = run_paced(
        &args,
        &[r#"{"id":"a","path":"/ticks"}"#; 3],
        Duration::from_millis(250),
    );
    let counted = ticks(&first[2]);
    // One tick per gap of 250 ms (and perhaps one before the first line).
    assert!((2..=3).contains(&counted), "{first:?}");
    // Restored, the count goes on from there: one tick for the gap.
    let again = run_paced(&args, &[r#"{"id":"b","path":"/ticks"}"#], Duration::ZERO);
    assert_eq!(ticks(&again[0]), counted + 1, "{again:?}");
}
