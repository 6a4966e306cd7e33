//! Durable apps (`elmbox run --state DIR|URL`, `DurableApp`): every event
//! in a log, snapshots of the sandbox, restore and replay. Real processes
//! killed with SIGKILL, real damage to the store, real locks and real full
//! disks. The tests of both stores run on a state directory, and again on a
//! real PostgreSQL server (`on_postgres`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use elmbox::durable::commit::Committer;
use elmbox::durable::sqlite::SqliteStore;
use elmbox::durable::StateLocation;
use elmbox::{AppConfig, DurableApp, DurableOptions, Error, OnNewCode};
use elmbox_tests::{
    config, dicey_app, elm_like, elmbox, elmbox_bin, fixture, json_lines, runtime, stderr,
};
use serde_json::{json, Value};

use crate::support::{answers_then_kill, PgServer};

/// A fresh, empty scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("durable-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Where a test keeps its state: a fresh state directory, or a fresh
/// database on a throwaway PostgreSQL server.
enum Place {
    Directory(PathBuf),
    Postgres { server: Arc<PgServer>, db: String },
}

impl Place {
    /// `state` in the scratch directory `name`.
    fn directory(name: &str) -> Place {
        Place::Directory(scratch(name).join("state"))
    }

    /// The database `name` on a server of its own.
    fn postgres(name: &str) -> Place {
        Place::database(&Arc::new(PgServer::start()), name)
    }

    /// A new database `name` on `server`.
    fn database(server: &Arc<PgServer>, name: &str) -> Place {
        server.database(name);
        Place::Postgres {
            server: server.clone(),
            db: name.into(),
        }
    }

    /// What `--state` takes.
    fn location(&self) -> String {
        match self {
            Place::Directory(dir) => dir.display().to_string(),
            Place::Postgres { server, db } => server.url(db),
        }
    }

    /// Runs `sql` on the store's database; `{log}` and `{snapshots}` name
    /// its tables.
    fn damage(&self, sql: &str) {
        match self {
            Place::Directory(dir) => {
                let sql = sql
                    .replace("{log}", "log")
                    .replace("{snapshots}", "snapshots");
                rusqlite::Connection::open(dir.join("elmbox.sqlite"))
                    .unwrap()
                    .execute_batch(&sql)
                    .unwrap();
            }
            Place::Postgres { server, db } => {
                let sql = sql
                    .replace("{log}", "elmbox_log")
                    .replace("{snapshots}", "elmbox_snapshots");
                server.client(db).batch_execute(&sql).unwrap();
            }
        }
    }
}

fn events(range: std::ops::Range<u64>) -> Vec<u8> {
    range
        .map(|i| format!("e{i}\n"))
        .collect::<String>()
        .into_bytes()
}

/// The counter's answer to event `e{i}` when it is the app's i-th event.
fn answer(i: u64) -> Value {
    json!([{"count": i, "event": format!("e{i}")}])
}

/// The event the restarted app reports it is at (`elmbox: at event N`).
fn at_event(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("elmbox: at event "))
        .unwrap_or_else(|| panic!("no `at event` in: {stderr}"));
    line.trim().parse().unwrap()
}

#[test]
fn a_state_directory_carries_the_app_across_runs() {
    carries_the_app_across_runs(&Place::directory("across-runs"));
}

fn carries_the_app_across_runs(place: &Place) {
    let state = &place.location();
    let counter = fixture("counter");
    let first = elmbox(&["run", &counter, "--state", state], &events(1..4));
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(json_lines(&first), (1..4).map(answer).collect::<Vec<_>>());
    let second = elmbox(&["run", &counter, "--state", state], &events(4..6));
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(json_lines(&second), (4..6).map(answer).collect::<Vec<_>>());
    assert_eq!(at_event(&stderr(&second)), 3);
    let shown = elmbox(&["state", state], b"");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{}", stderr(&shown));
    // The store and its size, then the app, named after the file, less
    // its extension, with every event kept.
    let store_line = text.lines().next().unwrap();
    assert!(
        store_line.ends_with(" KB") || store_line.ends_with(" MB"),
        "{text}"
    );
    assert_eq!(text.lines().nth(1), Some("counter"), "{text}");
    assert!(text.contains("events        5 kept"), "{text}");
    assert!(text.contains(", 1 to 5: all of them"), "{text}");
}

/// Starts `elmbox run --state`, feeding `input` from a thread.
fn start(counter: &str, state: &str, input: Vec<u8>) -> Child {
    let mut child = Command::new(elmbox_bin())
        .args(["run", counter, "--state", state, "--snapshot-every", "97"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        // The child may be killed before it reads everything.
        let _ = stdin.write_all(&input);
    });
    child
}

#[test]
fn kill_9_loses_nothing_that_was_answered() {
    kill_9_loses_nothing(&Place::directory("kill-9"));
}

fn kill_9_loses_nothing(place: &Place) {
    let state = place.location();
    let counter = fixture("counter");
    // Deterministic "random" kill points, spread over the run.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let total = 4_000u64;
    let mut applied = 0u64;
    for round in 0..6 {
        let mut child = start(&counter, &state, events(applied + 1..total + 1));
        // Every answer is the one an uninterrupted run gives.
        let answered = answers_then_kill(&mut child, next() % 600 + 1, |n, got| {
            assert_eq!(*got, answer(applied + n), "round {round}");
        });
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        // The restart says where the app is: at least every answered event
        // is in its state, and none twice (the counter counts them).
        let check = Command::new(elmbox_bin())
            .args(["run", &counter, "--state", &state])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let at = at_event(&String::from_utf8_lossy(&check.stderr));
        assert!(
            at >= applied + answered,
            "round {round}: answered up to {} but restored at {at}\n{err}",
            applied + answered
        );
        applied = at;
    }
    // The rest, uninterrupted: the answers go on where the state is.
    let rest = elmbox(
        &["run", &counter, "--state", &state],
        &events(applied + 1..applied + 11),
    );
    assert!(rest.status.success(), "{}", stderr(&rest));
    assert_eq!(
        json_lines(&rest),
        (applied + 1..applied + 11).map(answer).collect::<Vec<_>>()
    );
}

/// Opens the app of the store at `place` from `source`: JavaScript, or a
/// module made by `elmbox build`.
fn open(
    place: &Place,
    source: impl AsRef<[u8]>,
    options: DurableOptions,
) -> elmbox::Result<(DurableApp, elmbox::Opened, Arc<Committer>)> {
    let store = StateLocation::parse(place.location()).open()?;
    let committer = Arc::new(Committer::start(store.clone(), None));
    let (app, opened) = DurableApp::open(
        runtime(),
        store,
        committer.clone(),
        "app",
        source.as_ref(),
        // One seed for every store here, so two stores draw alike; within a
        // store the recorded seed keeps replays deterministic anyway.
        config().0.random_seed(42),
        options,
    )?;
    Ok((app, opened, committer))
}

/// Drives `app` through `steps` (an event, then a clock move) and returns
/// every answer.
fn drive(app: &mut DurableApp, steps: std::ops::Range<u64>) -> Vec<String> {
    let mut answers = Vec::new();
    for i in steps {
        answers.push(app.dispatch_json(format!("e{i}")).unwrap());
        answers.push(app.advance_time_json(600).unwrap());
    }
    answers
}

#[test]
fn replay_gives_the_same_answers_as_an_uninterrupted_run() {
    replay_gives_the_same_answers(Place::directory);
}

/// `place` makes the state of each run, by name.
fn replay_gives_the_same_answers(place: impl Fn(&str) -> Place) {
    let js = dicey_app();
    let once = place("replay-once");
    let (mut uninterrupted, _, _) = open(&once, &js, DurableOptions::default()).unwrap();
    let expected = drive(&mut uninterrupted, 0..20);
    stopped_twice(&place("replay-twice-js"), js.as_bytes(), &expected);
    // A module built from the same app, with the same clock and seed,
    // answers alike, and replays alike.
    let module = runtime()
        .build(
            &js,
            config().0.random_seed(42),
            &elmbox::BuildOptions::default(),
        )
        .unwrap();
    stopped_twice(&place("replay-twice-wasm"), &module, &expected);
}

/// `source` driven through the inputs of `expected`, stopped twice on the
/// way: restored once by replaying the log, once from a snapshot.
fn stopped_twice(twice: &Place, source: &[u8], expected: &[String]) {
    let name = &twice.location();
    let rarely = DurableOptions {
        snapshot_every_inputs: 1_000_000,
        snapshot_after_work: std::time::Duration::from_secs(3600),
        ..DurableOptions::default()
    };
    let (mut app, _, committer) = open(twice, source, rarely.clone()).unwrap();
    let mut got = drive(&mut app, 0..7);
    drop(app); // no close: no snapshot, so the next open replays the log
    committer.finish().unwrap();
    drop(committer);
    let (mut app, opened, committer) = open(twice, source, rarely.clone()).unwrap();
    assert_eq!((opened.snapshot, opened.replayed), (Some(0), 14), "{name}");
    got.extend(drive(&mut app, 7..13));
    app.close().unwrap();
    committer.finish().unwrap();
    drop(committer);
    let (mut app, opened, _) = open(twice, source, rarely).unwrap();
    assert_eq!((opened.snapshot, opened.replayed), (Some(26), 0), "{name}");
    got.extend(drive(&mut app, 13..20));
    assert_eq!(got, expected, "{name}");
}

#[test]
fn a_built_module_is_kept_in_a_state_directory_and_deployed_like_its_javascript() {
    let dir = scratch("module");
    let state = dir.join("state").display().to_string();
    let counter = fixture("counter");
    let module = dir.join("counter.wasm").display().to_string();
    let built = elmbox(&["build", &counter, "-o", &module], b"");
    assert!(built.status.success(), "{}", stderr(&built));

    let first = elmbox(&["run", &module, "--state", &state], &events(1..4));
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(json_lines(&first), (1..4).map(answer).collect::<Vec<_>>());
    let again = elmbox(&["run", &module, "--state", &state], &events(4..6));
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(json_lines(&again), (4..6).map(answer).collect::<Vec<_>>());
    assert_eq!(at_event(&stderr(&again)), 3);

    // `counter.js` is the same app (by name), in another version: refused,
    // then deployed by replaying the module's log through the JavaScript.
    let refused = elmbox(&["run", &counter, "--state", &state], &events(6..7));
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("the app's code differs from the recorded one"),
        "{}",
        stderr(&refused)
    );
    assert!(json_lines(&refused).is_empty());
    let deployed = elmbox(
        &["run", &counter, "--state", &state, "--deploy"],
        &events(6..8),
    );
    assert!(deployed.status.success(), "{}", stderr(&deployed));
    assert_eq!(
        json_lines(&deployed),
        (6..8).map(answer).collect::<Vec<_>>()
    );

    // Options the build fixed are refused, as for a plain run.
    let fixed = elmbox(&["run", &module, "--state", &state, "--json-events"], b"");
    assert_eq!(fixed.status.code(), Some(2), "{}", stderr(&fixed));
    assert!(
        stderr(&fixed).contains("fixed when it was built"),
        "{}",
        stderr(&fixed)
    );
}

#[test]
fn a_module_not_built_from_this_guest_is_refused_by_name() {
    // A valid module with one memory and no code: not an elmbox build.
    let stranger = b"\0asm\x01\0\0\0\x05\x03\x01\x00\x01";
    let err = runtime().module_state(stranger).unwrap_err();
    assert!(err.to_string().contains("built by another elmbox"), "{err}");
    let err = runtime().module_state(b"\0asm\x01\0\0\0").unwrap_err();
    assert!(err.to_string().contains("0 memories"), "{err}");
    let err = runtime().module_state(b"\0asm\x01\0\0\0\x05").unwrap_err();
    assert!(err.to_string().contains("not valid WebAssembly"), "{err}");
    // The bare guest has the code, but no app in it.
    let err = open(
        &Place::directory("stranger"),
        elmbox::GUEST_WASM,
        DurableOptions::default(),
    )
    .err()
    .expect("the bare guest is no app");
    assert!(err.to_string().contains("holds no app"), "{err}");
}

#[test]
fn a_torn_log_tail_is_cut_and_a_damaged_snapshot_passed_over() {
    torn_tail_cut_and_damaged_snapshot_passed_over(&Place::directory("damage"));
}

fn torn_tail_cut_and_damaged_snapshot_passed_over(place: &Place) {
    let state = place.location();
    let counter = fixture("counter");
    let run = |input: &[u8]| elmbox(&["run", &counter, "--state", &state], input);
    assert!(run(&events(1..11)).status.success());
    // Damage the last record and the newest snapshot, as a crash or a bad
    // disk might.
    place.damage(
        "UPDATE {log} SET record = substr(record, 1, length(record) - 3) WHERE seq = 10;
         UPDATE {snapshots} SET bytes = substr(bytes, 1, 100) WHERE seq = 10;",
    );
    let out = run(&events(10..12));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cut 1 damaged record"), "{err}");
    assert!(err.contains("the snapshot after event 10"), "{err}");
    assert_eq!(at_event(&err), 9, "{err}");
    assert_eq!(json_lines(&out), (10..12).map(answer).collect::<Vec<_>>());
}

#[test]
fn one_process_holds_a_state_directory_at_a_time() {
    let dir = scratch("lock");
    let held = SqliteStore::open(&dir).unwrap();
    let out = elmbox(
        &["run", &fixture("counter"), "--state", dir.to_str().unwrap()],
        b"e1\n",
    );
    assert_eq!(out.status.code(), Some(2));
    let me = format!("process {}", std::process::id());
    assert!(stderr(&out).contains(&me), "{}", stderr(&out));
    drop(held);
    let out = elmbox(
        &["run", &fixture("counter"), "--state", dir.to_str().unwrap()],
        b"e1\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn what_is_not_a_state_directory_is_refused() {
    let dir = scratch("not-state");
    let file = dir.join("file");
    std::fs::write(&file, "x").unwrap();
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    for (path, why) in [
        (&file, "it is not a directory"),
        (&other, "it holds other files (notes.txt)"),
    ] {
        match SqliteStore::open(path) {
            Err(Error::BadState { reason, .. }) => assert!(reason.contains(why), "{reason}"),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("{} accepted", path.display()),
        }
    }
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).unwrap(),
        "mine"
    );
}

/// Mounts a tmpfs of `size` at `dir` (read-only with `ro`); unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, options: &str) -> Tmpfs {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root, as CI has");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_or_full_disk_stops_the_answers_not_the_truth() {
    let counter = fixture("counter");
    let dir = scratch("read-only");
    let _ro = Tmpfs::mount(&dir, "ro,size=1m");
    let out = elmbox(
        &["run", &counter, "--state", dir.to_str().unwrap()],
        b"e1\n",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot use the state"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());

    // A disk that fills up mid-run: each event not durable is answered
    // `[]` and said on stderr, the run ends failed, and every answer given
    // is counted on by the next run, from the store.
    let dir = scratch("full");
    let _full = Tmpfs::mount(&dir, "size=1200k");
    let state = dir.to_str().unwrap();
    let out = elmbox(&["run", &counter, "--state", state], &events(1..100_001));
    assert_eq!(out.status.code(), Some(1), "a full disk went unnoticed");
    assert!(stderr(&out).contains("disk is full"), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 100_000, "one line per event");
    // Each answer is its own event's, counted on from the last answered:
    // an event not durable counts for nothing (a trial let through once
    // the store had room again may be answered, later).
    let mut counted = 0;
    for (i, line) in lines.iter().enumerate() {
        if line == &json!([]) {
            continue;
        }
        counted += 1;
        assert_eq!(line[0]["event"], format!("e{}", i + 1), "line {i}");
        assert_eq!(line[0]["count"], counted, "line {i}");
    }
    assert!(counted > 0 && counted < 100_000, "{counted} answered");
    // Room again, and a run counts on from the last answered.
    let grown = Command::new("mount")
        .args(["-o", "remount,size=4m"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(grown.success());
    let next = elmbox(&["run", &counter, "--state", state], b"next\n");
    assert_eq!(json_lines(&next)[0][0]["count"], counted + 1);
}

#[test]
fn a_new_version_is_deployed_by_replay_or_refused() {
    deployed_by_replay_or_refused(&Place::directory("deploy"));
}

fn deployed_by_replay_or_refused(place: &Place) {
    let v1 = elm_like(
        "var subs = [], n = 0;
         function init() { return { ports: {
           onEvent: { send: function (v) { n++; subs.forEach(function (s) { s({ n: n }); }); } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    );
    // v2 keeps the same count and answers in another shape.
    let v2 = v1.replace("s({ n: n })", "s({ count: n, v: 2 })");
    // v3 crashes on the second event it ever sees.
    let v3 = v1.replace(
        "n++;",
        "n++; if (n === 2) { throw new Error('v3 breaks'); }",
    );
    let (mut app, _, committer) = open(place, &v1, DurableOptions::default()).unwrap();
    for _ in 0..3 {
        app.dispatch_json("x").unwrap();
    }
    app.close().unwrap();
    committer.finish().unwrap();
    drop(committer);

    match open(place, &v2, DurableOptions::default()) {
        Err(Error::CodeChanged { .. }) => {}
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("new code taken without a deploy"),
    }
    let deploy = DurableOptions {
        on_new_code: OnNewCode::Replay,
        ..DurableOptions::default()
    };
    match open(place, &v3, deploy.clone()) {
        Err(Error::DeployRefused { seq, error }) => {
            assert_eq!(seq, 2);
            assert!(error.contains("v3 breaks"), "{error}");
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a version that fails on the log was deployed"),
    }
    // Still v1.
    let (mut app, _, committer) = open(place, &v1, DurableOptions::default()).unwrap();
    assert_eq!(app.dispatch_json("x").unwrap(), r#"[{"n":4}]"#);
    app.close().unwrap();
    committer.finish().unwrap();
    drop(committer);
    let (mut app, opened, committer) = open(place, &v2, deploy).unwrap();
    assert_eq!(opened.deployed, Some(OnNewCode::Replay));
    assert_eq!(app.dispatch_json("x").unwrap(), r#"[{"count":5,"v":2}]"#);
    app.close().unwrap();
    committer.finish().unwrap();
    drop(committer);
    // v2 is now the recorded app, and restores without a deploy.
    let (mut app, _, _) = open(place, &v2, DurableOptions::default()).unwrap();
    assert_eq!(app.dispatch_json("x").unwrap(), r#"[{"count":6,"v":2}]"#);
    // Fresh: from init.
    let fresh = DurableOptions {
        on_new_code: OnNewCode::Fresh,
        ..DurableOptions::default()
    };
    drop(app);
    let v4 = v2.replace("v: 2", "v: 4");
    let (mut app, opened, _) = open(place, &v4, fresh).unwrap();
    assert_eq!(opened.deployed, Some(OnNewCode::Fresh));
    assert_eq!(app.dispatch_json("x").unwrap(), r#"[{"count":1,"v":4}]"#);
    let _ = AppConfig::default();
}

#[test]
fn a_fault_is_recorded_skipped_and_the_app_restored_to_the_event_before() {
    fault_recorded_skipped_and_restored(&Place::directory("fault"));
}

fn fault_recorded_skipped_and_restored(place: &Place) {
    let state = place.location();
    let faults = fixture("faults");
    // crash-later answers, then faults 100 ms later (on the clock's move):
    // the app is restored to before that move and goes on; the restart
    // replays the log skipping the faulty move.
    let out = elmbox(
        &["run", &faults, "--state", &state, "--advance-ms", "200"],
        b"a\ncrash-later\nb\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("faulted in a timer callback"), "{err}");
    assert!(err.contains("restored"), "{err}");
    assert_eq!(
        json_lines(&out),
        vec![
            json!([{"count": 1, "event": "a"}]),
            json!([{"count": 2, "event": "crash-later"}]),
            json!([{"count": 3, "event": "b"}]),
        ]
    );
    let again = elmbox(&["run", &faults, "--state", &state], b"c\n");
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        json_lines(&again),
        vec![json!([{"count": 4, "event": "c"}])]
    );
}

#[test]
fn a_replay_that_diverges_from_the_log_is_refused() {
    let dir = scratch("diverge").join("state");
    let place = Place::Directory(dir.clone());
    let js = dicey_app();
    let (mut app, _, committer) = open(&place, &js, DurableOptions::default()).unwrap();
    drive(&mut app, 0..5);
    drop(app); // no close: the next open replays from the load's snapshot
    committer.finish().unwrap();
    drop(committer);
    // Say the third record answered otherwise than it did.
    {
        let db = rusqlite::Connection::open(dir.join("elmbox.sqlite")).unwrap();
        let bytes: Vec<u8> = db
            .query_row("SELECT record FROM log WHERE seq = 3", [], |r| r.get(0))
            .unwrap();
        let mut record = elmbox::durable::log::Record::decode(3, &bytes).unwrap();
        record.outcome = elmbox::durable::log::Outcome::Answered { answer: 12345 };
        db.execute(
            "UPDATE log SET record = ?1 WHERE seq = 3",
            [record.encode()],
        )
        .unwrap();
    }
    match open(&place, &js, DurableOptions::default()) {
        Err(Error::Diverged { seq, .. }) => assert_eq!(seq, 3),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a diverging replay was accepted"),
    }
}

#[test]
fn a_snapshot_from_another_guest_build_is_passed_over_and_the_log_replayed() {
    other_guest_snapshot_passed_over(&Place::directory("other-guest"));
}

fn other_guest_snapshot_passed_over(place: &Place) {
    let state = place.location();
    let counter = fixture("counter");
    let run = |input: &[u8]| elmbox(&["run", &counter, "--state", &state], input);
    assert!(run(&events(1..6)).status.success());
    place.damage("UPDATE {snapshots} SET guest = 'ff' || substr(guest, 3)");
    let out = run(&events(6..8));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("from another guest build; passed over"),
        "{err}"
    );
    assert!(err.contains("replaying 5 event(s) from the start"), "{err}");
    assert_eq!(json_lines(&out), (6..8).map(answer).collect::<Vec<_>>());
}

/// The tests of both stores, on PostgreSQL.
mod on_postgres {
    use super::*;

    #[test]
    fn a_database_carries_the_app_across_runs() {
        carries_the_app_across_runs(&Place::postgres("across-runs"));
    }

    #[test]
    fn kill_9_loses_nothing_that_was_answered() {
        kill_9_loses_nothing(&Place::postgres("kill-9"));
    }

    #[test]
    fn replay_gives_the_same_answers_as_an_uninterrupted_run() {
        let server = Arc::new(PgServer::start());
        replay_gives_the_same_answers(|name| Place::database(&server, name));
    }

    #[test]
    fn a_torn_log_tail_is_cut_and_a_damaged_snapshot_passed_over() {
        torn_tail_cut_and_damaged_snapshot_passed_over(&Place::postgres("damage"));
    }

    #[test]
    fn a_new_version_is_deployed_by_replay_or_refused() {
        deployed_by_replay_or_refused(&Place::postgres("deploy"));
    }

    #[test]
    fn a_fault_is_recorded_skipped_and_the_app_restored_to_the_event_before() {
        fault_recorded_skipped_and_restored(&Place::postgres("fault"));
    }

    #[test]
    fn a_snapshot_from_another_guest_build_is_passed_over_and_the_log_replayed() {
        other_guest_snapshot_passed_over(&Place::postgres("other-guest"));
    }
}
