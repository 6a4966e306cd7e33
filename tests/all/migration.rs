//! Deploys by migration (`run --deploy --migrate`, `migrate=true`): tally's
//! count carried into tally2's other model through the ports
//! `elmboxExport`/`elmboxExported`, over a log whose start retention
//! dropped; refusals that leave the old version serving; restores that
//! start from the migration; and a migration in `serve` under load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use elmbox_tests::{elm_like, elmbox, fixture, json_lines, stderr};
use serde_json::{json, Value};

use crate::served::{count, scratch, steady_client, Served};
use crate::support::PgServer;

fn events(range: std::ops::RangeInclusive<u64>) -> Vec<u8> {
    range.flat_map(|i| format!("e{i}\n").into_bytes()).collect()
}

/// tally's answer to its n-th event `e{n}`.
fn v1(n: u64) -> Value {
    json!([{"count": n, "event": format!("e{n}")}])
}

/// tally2's answer to its event with count `n`, after `previous`.
fn v2(n: u64, previous: &str) -> Value {
    json!([{"count": n, "previous": previous, "version": 2}])
}

/// `elmbox run APP --state STATE --name app ARGS`, fed `input`.
fn run(app: &str, state: &str, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut all = vec!["run", app, "--state", state, "--name", "app"];
    all.extend_from_slice(args);
    elmbox(&all, input)
}

fn carries_the_count_over(state: &str) {
    let (tally, tally2) = (fixture("tally"), fixture("tally2"));
    // 300 events, a snapshot every 20, the log kept back to the newest one.
    let keep = ["--snapshot-every", "20", "--retain-log", "1"];
    let first = run(&tally, state, &keep, &events(1..=300));
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(json_lines(&first).last(), Some(&v1(300)));
    // A replay cannot rebuild tally2's model: the history is gone.
    let replay = run(&tally2, state, &["--deploy"], b"x\n");
    assert!(!replay.status.success());
    assert!(stderr(&replay).contains("--migrate"), "{}", stderr(&replay));
    // A migration starts tally2 from tally's count.
    let migrated = run(&tally2, state, &["--deploy", "--migrate"], b"e301\ne302\n");
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert!(stderr(&migrated).contains("deployed the new version (Migrate)"));
    assert_eq!(
        json_lines(&migrated),
        [v2(301, ""), v2(302, "e301")],
        "{}",
        stderr(&migrated)
    );
    // A restart restores tally2, not tally.
    let restarted = run(&tally2, state, &[], b"e303\n");
    assert_eq!(
        json_lines(&restarted),
        [v2(303, "e302")],
        "{}",
        stderr(&restarted)
    );
    // So does a replay from the log alone: it starts from the migration
    // (the snapshots are taken away, the whole log since it replayed).
    let store = elmbox::durable::StateLocation::parse(state)
        .open_read_only()
        .unwrap();
    let summary = store.apps().unwrap().remove(0);
    drop(store);
    let (from, _) = summary.kept.unwrap();
    assert!(
        from <= 301,
        "the migration's record was dropped: {summary:?}"
    );
    wipe_snapshots(state);
    let replayed = run(&tally2, state, &[], b"e304\n");
    assert!(
        stderr(&replayed).contains("by replaying 3 event(s)"),
        "{}",
        stderr(&replayed)
    );
    assert_eq!(
        json_lines(&replayed),
        [v2(304, "e303")],
        "{}",
        stderr(&replayed)
    );
    // And a new version of tally2 by replay replays from the migration,
    // from the model it was migrated from.
    let again = run(&tally2, state, &["--deploy", "--flags", "{}"], b"e305\n");
    assert_eq!(json_lines(&again), [v2(305, "e304")], "{}", stderr(&again));
}

/// Takes every snapshot out of the store at `state`.
fn wipe_snapshots(state: &str) {
    match state.starts_with("postgres") {
        true => {
            let mut client = postgres::Client::connect(state, postgres::NoTls).unwrap();
            client
                .batch_execute("DELETE FROM elmbox_snapshots")
                .unwrap();
        }
        false => {
            rusqlite::Connection::open(std::path::Path::new(state).join("elmbox.sqlite"))
                .unwrap()
                .execute_batch("DELETE FROM snapshots")
                .unwrap();
        }
    }
}

#[test]
fn a_migration_carries_the_count_into_a_new_model_over_a_dropped_history() {
    let state = scratch("migrate-sqlite").join("state");
    carries_the_count_over(state.to_str().unwrap());
}

#[test]
fn postgres_carries_the_count_into_a_new_model_over_a_dropped_history() {
    let server = PgServer::start();
    server.database("migrate");
    carries_the_count_over(&server.url("migrate"));
}

/// An old version sent null on elmboxExport that answers nothing.
fn silent_exporter() -> String {
    elm_like(
        "var subs = [], n = 0;
         function init() { return { ports: {
           onEvent: { send: function (v) { n++; subs.forEach(function (s) { s({ count: n }); }); } },
           respond: { subscribe: function (f) { subs.push(f); } },
           elmboxExport: { send: function (v) {} },
           elmboxExported: { subscribe: function (f) {}, unsubscribe: function (f) {} } } }; }",
    )
}

/// A new version whose init throws on what it is given.
fn throwing_init() -> String {
    elm_like(
        "function init(args) {
           if (args.flags.migrated.count > 2) { throw new Error('too many to carry'); }
           return { ports: {
             onEvent: { send: function (v) {} }, respond: { subscribe: function (f) {} } } }; }",
    )
}

#[test]
fn a_refused_migration_leaves_the_old_version_serving() {
    let dir = scratch("migrate-refused");
    let state = dir.join("state");
    let state = state.to_str().unwrap();
    let (counter, tally, tally2) = (fixture("counter"), fixture("tally"), fixture("tally2"));
    let throws = dir.join("throws.js");
    std::fs::write(&throws, throwing_init()).unwrap();
    let silent = dir.join("silent.js");
    std::fs::write(&silent, silent_exporter()).unwrap();
    let module = dir.join("tally2.wasm");
    let built = elmbox(&["build", &tally2, "-o", module.to_str().unwrap()], b"");
    assert!(built.status.success(), "{}", stderr(&built));

    // The counter has no elmboxExport port.
    assert!(run(&counter, state, &[], &events(1..=3)).status.success());
    let refused = run(&tally2, state, &["--deploy", "--migrate"], b"x\n");
    assert!(!refused.status.success());
    let says = stderr(&refused);
    assert!(says.contains("not deployed by migration"), "{says}");
    assert!(
        says.contains("incoming port `elmboxExport` not found"),
        "{says}"
    );
    let old = run(&counter, state, &[], b"e4\n");
    assert_eq!(
        json_lines(&old),
        [json!([{"count": 4, "event": "e4"}])],
        "{}",
        stderr(&old)
    );

    // tally exports, but the new version's init throws on its model.
    let state = dir.join("state-2");
    let state = state.to_str().unwrap();
    assert!(run(&tally, state, &[], &events(1..=3)).status.success());
    let refused = run(
        throws.to_str().unwrap(),
        state,
        &["--deploy", "--migrate"],
        b"x\n",
    );
    assert!(!refused.status.success());
    let says = stderr(&refused);
    assert!(
        says.contains("did not start from the migrated model"),
        "{says}"
    );
    assert!(says.contains("too many to carry"), "{says}");
    // A built module's init ran when it was built: it cannot take a model.
    let refused = run(
        module.to_str().unwrap(),
        state,
        &["--deploy", "--migrate"],
        b"x\n",
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("migrate to its JavaScript"),
        "{}",
        stderr(&refused)
    );
    // Nothing of either reached the store: tally counts on, and its
    // export (on a copy) left it as it was.
    let old = run(&tally, state, &[], b"e4\n");
    assert_eq!(json_lines(&old), [v1(4)], "{}", stderr(&old));

    // An old version that answers the export with nothing.
    let state = dir.join("state-3");
    let state = state.to_str().unwrap();
    let silent = silent.to_str().unwrap();
    assert!(run(silent, state, &[], b"a\n").status.success());
    let refused = run(&tally2, state, &["--deploy", "--migrate"], b"x\n");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("sent nothing on `elmboxExported`"),
        "{}",
        stderr(&refused)
    );
    let old = run(silent, state, &[], b"b\n");
    assert_eq!(
        json_lines(&old),
        [json!([{"count": 2}])],
        "{}",
        stderr(&old)
    );
}

/// `serve`: `migrate=true` while a client sends events throughout: every
/// answer 200, counted on without a gap across the switch from tally to
/// tally2; a refused migration is 409 and the old version serves on.
#[test]
fn serve_migrates_under_load_without_a_gap() {
    let state = scratch("migrate-serve").join("state");
    let server = Served::start(&state);
    let (tally, tally2) = (
        std::fs::read(fixture("tally")).unwrap(),
        std::fs::read(fixture("tally2")).unwrap(),
    );
    let counter = std::fs::read(fixture("counter")).unwrap();
    assert_eq!(server.deploy("plain", "", &counter).0, 201);
    assert_eq!(server.count("plain", "a"), 1);
    let (status, body) = server.deploy("plain", "?migrate=true", &tally2);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("elmboxExport"), "{body}");
    assert_eq!(server.count("plain", "b"), 2);
    let (status, body) = server.deploy("plain", "?migrate=true&fresh=true", &tally2);
    assert_eq!(status, 400, "{body}");

    assert_eq!(server.deploy("tally", "", &tally).0, 201);
    let stop = Arc::new(AtomicBool::new(false));
    let client = steady_client(&server, "tally", stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    let (status, body) = server.deploy("tally", "?migrate=true", &tally2);
    assert_eq!(status, 200, "{body}\n{}", server.log());
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (answers, _) = client.join().unwrap();
    let mut last = 0;
    let mut versions = (0, 0);
    for (status, text) in &answers {
        assert_eq!(*status, 200, "{text}\n{}", server.log());
        let n = count(text);
        assert_eq!(n, last + 1, "a gap or a repeat: {last} then {text}");
        last = n;
        match text.contains(r#""version":2"#) {
            true => versions.1 += 1,
            // Never tally again once tally2 answered.
            false => {
                assert_eq!(versions.1, 0, "tally after tally2: {text}");
                versions.0 += 1;
            }
        }
    }
    assert!(
        versions.0 > 10 && versions.1 > 10,
        "{versions:?} answers by tally, tally2"
    );
    // The next answer is tally2's, counting on.
    let (status, text) = server.event("tally", "y");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        v2(last + 1, "x")
    );
}
