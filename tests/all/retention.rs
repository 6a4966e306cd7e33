//! Retention (`--retain-log N|all`): what the store keeps of an app's
//! history, through real `elmbox run --state` processes on a state
//! directory and on a real PostgreSQL server, read back from the store.
//! Dropping history happens in the commit of the snapshot that makes it
//! unnecessary, so kill -9 at any point loses nothing answered.

use std::io::Write;
use std::process::{Command, Stdio};

use elmbox::durable::store::AppSummary;
use elmbox::durable::StateLocation;
use elmbox_tests::{elmbox, elmbox_bin, fixture, json_lines, stderr};
use serde_json::{json, Value};

use crate::served::scratch;
use crate::support::{answers_then_kill, PgServer};

fn events(range: std::ops::RangeInclusive<u64>) -> Vec<u8> {
    range.flat_map(|i| format!("e{i}\n").into_bytes()).collect()
}

/// The counter's answer to event `e{i}` when it is the app's i-th event.
fn answer(i: u64) -> Value {
    json!([{"count": i, "event": format!("e{i}")}])
}

/// What the store at `state` holds of the app `counter`.
fn summary(state: &str) -> AppSummary {
    let store = StateLocation::parse(state).open_read_only().unwrap();
    let mut apps = store.apps().unwrap();
    assert_eq!(apps.len(), 1, "{apps:?}");
    apps.remove(0)
}

/// The event the restarted app reports it is at (`elmbox: at event N`).
fn at_event(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("elmbox: at event "))
        .unwrap_or_else(|| panic!("no `at event` in: {stderr}"))
        .trim()
        .parse()
        .unwrap()
}

/// 1,000 events with a snapshot every 100, kept as `retain` says; then
/// what that leaves, and what can still be done with it.
fn keeps_what_it_is_asked(state: &str, retain: &str) -> AppSummary {
    let counter = fixture("counter");
    let run = |extra: &[&str], input: &[u8]| {
        let mut args = vec!["run", &counter, "--state", state, "--snapshot-every", "100"];
        args.extend_from_slice(&["--retain-log", retain]);
        args.extend_from_slice(extra);
        elmbox(&args, input)
    };
    let first = run(&[], &events(1..=1_000));
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(json_lines(&first).len(), 1_000);
    let kept = summary(state);
    let (from, to) = kept.kept.expect("a log");
    assert_eq!(to, 1_000);
    let oldest = kept.snapshots.iter().map(|s| s.seq).min().unwrap();
    match retain {
        // Every event, and the newest snapshot: the log is the fallback.
        "all" => {
            assert_eq!((from, kept.records), (1, 1_000));
            assert_eq!(kept.snapshots.len(), 1, "{:?}", kept.snapshots);
        }
        n => {
            let n: usize = n.parse().unwrap();
            assert_eq!(kept.snapshots.len(), n, "{:?}", kept.snapshots);
            // Back to the oldest snapshot kept, its own record included
            // (a restore checks it), and no further.
            assert_eq!(from, oldest, "{:?}", kept.snapshots);
            assert_eq!(kept.records, to - from + 1);
            assert!(from > 800, "kept from {from}");
        }
    }
    // A restart carries on where the app was.
    let next = run(&[], &events(1_001..=1_005));
    assert!(next.status.success(), "{}", stderr(&next));
    assert_eq!(at_event(&stderr(&next)), 1_000);
    assert_eq!(
        json_lines(&next),
        (1_001..=1_005).map(answer).collect::<Vec<_>>()
    );
    // `elmbox state` says what is kept.
    let shown = elmbox(&["state", state], b"");
    let text = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(shown.status.success(), "{}", stderr(&shown));
    let kept = summary(state);
    let (from, to) = kept.kept.unwrap();
    let range = match from {
        1 => format!("1 to {to}: all of them"),
        from => format!("{from} to {to}: the {} before dropped", from - 1),
    };
    assert!(text.contains(&range), "{range} in:\n{text}");
    assert!(
        text.contains(&format!("snapshots     {}", kept.snapshots.len())),
        "{text}"
    );
    // A new version (other flags) by replay: possible only over the whole log.
    let deploy = run(&["--deploy", "--flags", r#"{"start":0}"#], b"e1006\n");
    match from {
        1 => {
            assert!(deploy.status.success(), "{}", stderr(&deploy));
            assert_eq!(json_lines(&deploy), [answer(1_006)]);
        }
        from => {
            assert!(!deploy.status.success());
            let says = stderr(&deploy);
            assert!(
                says.contains(&format!("its log begins at event {from}")),
                "{says}"
            );
            assert!(
                says.contains("--migrate") && says.contains("--fresh"),
                "{says}"
            );
            // Refused, so nothing changed: the old version answers on.
            let old = run(&[], b"e1006\n");
            assert_eq!(json_lines(&old), [answer(1_006)], "{}", stderr(&old));
            // A fresh start needs no history.
            let fresh = run(&["--fresh", "--flags", r#"{"start":0}"#], b"e1\n");
            assert!(fresh.status.success(), "{}", stderr(&fresh));
            assert_eq!(json_lines(&fresh), [answer(1)]);
        }
    }
    kept
}

#[test]
fn the_log_is_kept_back_to_the_nth_newest_snapshot_or_whole() {
    let dir = scratch("retention-sqlite");
    let two = dir.join("two");
    keeps_what_it_is_asked(two.to_str().unwrap(), "2");
    let one = dir.join("one");
    keeps_what_it_is_asked(one.to_str().unwrap(), "1");
    // The control: by default nothing is dropped, so the assertions above
    // are about retention, not about a store that lost its start.
    let all = dir.join("all");
    keeps_what_it_is_asked(all.to_str().unwrap(), "all");
}

#[test]
fn postgres_keeps_the_log_back_to_the_nth_newest_snapshot_or_whole() {
    let server = PgServer::start();
    server.database("two");
    keeps_what_it_is_asked(&server.url("two"), "2");
    server.database("all");
    keeps_what_it_is_asked(&server.url("all"), "all");
}

/// kill -9 at random points of a run that drops history at every
/// snapshot (every 20 events, keeping one): each restart restores at or
/// after the last answered event, and the store always holds the snapshot
/// its log starts at.
#[test]
fn kill_9_during_truncation_loses_nothing_answered() {
    let state = scratch("retention-kill-9").join("state");
    let state = state.to_str().unwrap();
    let counter = fixture("counter");
    let run_args = [
        "run",
        &counter,
        "--state",
        state,
        "--snapshot-every",
        "20",
        "--retain-log",
        "1",
    ];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut applied = 0u64;
    let mut truncated_once = false;
    for round in 0..8 {
        let mut child = Command::new(elmbox_bin())
            .args(run_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = events(applied + 1..=applied + 5_000);
        std::thread::spawn(move || {
            // Killed before it reads everything.
            let _ = stdin.write_all(&input);
        });
        let answered = answers_then_kill(&mut child, next() % 700 + 1, |n, got| {
            assert_eq!(*got, answer(applied + n), "round {round}");
        });
        child.wait().unwrap();
        let kept = summary(state);
        let (from, _) = kept.kept.unwrap();
        truncated_once |= from > 1;
        // The log starts at the one snapshot kept: never cut past it.
        let snapshot = kept.snapshots.iter().map(|s| s.seq).min().unwrap();
        assert_eq!(
            kept.snapshots.len(),
            1,
            "round {round}: {:?}",
            kept.snapshots
        );
        assert!(
            from <= snapshot.max(1),
            "round {round}: log from {from}, snapshot {snapshot}"
        );
        let check = elmbox(&run_args, b"");
        assert!(check.status.success(), "round {round}: {}", stderr(&check));
        let at = at_event(&stderr(&check));
        assert!(
            at >= applied + answered,
            "round {round}: answered up to {} but restored at {at}",
            applied + answered
        );
        applied = at;
    }
    assert!(
        truncated_once,
        "no history was dropped: the test tested nothing"
    );
    let rest = elmbox(&run_args, &events(applied + 1..=applied + 10));
    assert!(rest.status.success(), "{}", stderr(&rest));
    assert_eq!(
        json_lines(&rest),
        (applied + 1..=applied + 10).map(answer).collect::<Vec<_>>()
    );
}

/// The negative control of the checks above: a log cut past its snapshot
/// (what dropping history outside the snapshot's commit could leave after
/// a crash between the two) is not restored as if nothing were missing,
/// but refused, naming what is missing.
#[test]
fn a_log_cut_past_its_snapshots_is_refused_not_restored_wrong() {
    let state = scratch("retention-cut-past").join("state");
    let state_str = state.to_str().unwrap();
    let counter = fixture("counter");
    let run = |input: &[u8]| {
        elmbox(
            &[
                "run",
                &counter,
                "--state",
                state_str,
                "--snapshot-every",
                "50",
            ],
            input,
        )
    };
    assert!(run(&events(1..=300)).status.success());
    rusqlite::Connection::open(state.join("elmbox.sqlite"))
        .unwrap()
        .execute_batch("DELETE FROM log WHERE seq < 120; DELETE FROM snapshots;")
        .unwrap();
    let restart = run(b"e301\n");
    assert!(
        !restart.status.success(),
        "restored over a log without its start"
    );
    let says = stderr(&restart);
    assert!(
        says.contains("cannot be restored: its log begins at event 120"),
        "{says}"
    );
}

/// The apps of `state` by name, as the store holds them.
fn summaries(state: &std::path::Path) -> Vec<AppSummary> {
    StateLocation::Directory(state.to_path_buf())
        .open_read_only()
        .unwrap()
        .apps()
        .unwrap()
}

/// `serve`: `retain-log=1` on a deploy drops an app's history at its next
/// snapshot (here when it is parked), beside an app kept whole by the
/// server's default; a deploy by replay over the shortened log is 409,
/// the old version serving on, and a fresh one is taken.
#[test]
fn serve_keeps_each_app_as_its_deploy_says() {
    let state = scratch("retention-serve").join("state");
    let server = crate::served::Served::start_with(
        &state,
        Some(crate::served::TOKEN),
        &["--idle-ms", "200"],
    );
    let counter = std::fs::read(fixture("counter")).unwrap();
    assert_eq!(server.deploy("short", "?retain-log=1", &counter).0, 201);
    assert_eq!(server.deploy("whole", "", &counter).0, 201);
    for i in 1..=30 {
        assert_eq!(server.count("short", &format!("e{i}")), i);
        assert_eq!(server.count("whole", &format!("e{i}")), i);
    }
    // Parked, so snapshotted: the short one's log then starts at it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (short, whole) = loop {
        let apps = summaries(&state);
        let kept = |name: &str| apps.iter().find(|a| a.app.name == name).unwrap().kept;
        if kept("short").is_some_and(|(from, _)| from > 1) {
            break (kept("short").unwrap(), kept("whole").unwrap());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no history dropped: {apps:?}\n{}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(short, (30, 30));
    assert_eq!(whole, (1, 30));
    let v2 = "?flags=%7B%22start%22%3A0%7D";
    let (status, body) = server.deploy("short", v2, &counter);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("its log begins at event 30"), "{body}");
    assert_eq!(server.count("short", "e31"), 31);
    assert_eq!(server.deploy("whole", v2, &counter).0, 200);
    assert_eq!(server.count("whole", "e31"), 31);
    let fresh = format!("{v2}&fresh=true");
    assert_eq!(server.deploy("short", &fresh, &counter).0, 200);
    assert_eq!(server.count("short", "e1"), 1);
}
