//! A store that fails and comes back, with real faults in a real
//! `elmbox serve`: fsyncs failed by libfiu (`fiu-run`, `fiu-ctrl`) in the
//! running server, and a full disk (a small tmpfs the test mounts). The
//! server must heal without a restart: events refused while the store
//! fails (503, or 507 with the reason while the disk is full), every event
//! answered 200 counted exactly once, and after kill -9 a restart carries
//! on at exactly the last answered count + 1. Both need root (`make test`
//! runs as root here and in CI).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use elmbox_tests::fixture;
use serde_json::Value;

use crate::served::{count, scratch, Served, TOKEN};

fn counter_js() -> Vec<u8> {
    std::fs::read(fixture("counter")).expect("make fixtures")
}

fn deploy_counter(server: &Served) {
    let (status, text) = server.deploy("counter", "", &counter_js());
    assert_eq!(status, 201, "{text}\n{}", server.log());
}

fn root() {
    let uid = Command::new("id").arg("-u").output().expect("id runs");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test mounts a file system and injects faults: it runs as root (make test does)"
    );
}

/// Runs `fiu-ctrl -c COMMAND PID`.
fn fiu_ctrl(server: &Served, command: &str) {
    let status = Command::new("fiu-ctrl")
        .args(["-c", command, &server.child.id().to_string()])
        .status()
        .expect("fiu-ctrl runs (make test installs fiu-utils)");
    assert!(status.success(), "fiu-ctrl -c {command}");
}

/// The events' answers: each 200's count, in order, and the other
/// statuses with their bodies.
struct Answers {
    counts: Vec<u64>,
    refused: Vec<(u16, String)>,
}

fn send(server: &Served, events: usize, tag: &str) -> Answers {
    let mut answers = Answers {
        counts: Vec::new(),
        refused: Vec::new(),
    };
    for i in 0..events {
        let (status, body) = server.event("counter", &format!("{tag}{i}"));
        match status {
            200 => answers.counts.push(count(&body)),
            _ => answers.refused.push((status, body)),
        }
    }
    answers
}

/// Every 200 counted once: their counts go up, and none repeats.
fn counted_once(counts: &[u64]) {
    for pair in counts.windows(2) {
        assert!(
            pair[0] < pair[1],
            "counts answered 200 out of order: {counts:?}"
        );
    }
}

fn store_line(server: &Served) -> String {
    let (status, body) =
        crate::served::read(server.http.get(format!("{}/healthz", server.url)).call());
    assert_eq!(
        status, 200,
        "healthz answers 200 whatever the store: {body}"
    );
    body
}

#[test]
fn failed_fsyncs_heal_without_a_restart() {
    root();
    let state = scratch("store-fsync");
    let server = Served::start_under(&["fiu-run", "-x"], &state, Some(TOKEN), &[]);
    deploy_counter(&server);
    let before = send(&server, 20, "before");
    assert_eq!(before.counts, (1..=20).collect::<Vec<_>>());

    fiu_ctrl(
        &server,
        "enable_random name=posix/io/sync/*,probability=0.05",
    );
    let during = send(&server, 300, "during");
    fiu_ctrl(&server, "disable name=posix/io/sync/*");
    assert!(
        !during.refused.is_empty(),
        "the faults were injected: some events must have failed ({} answered)",
        during.counts.len()
    );
    for (status, body) in &during.refused {
        assert_eq!(*status, 503, "{body}");
        assert!(
            body.contains("cannot write the state") || body.starts_with("not taken"),
            "{body}"
        );
    }
    server.wait_for_log("ERROR");

    // Healed, without a restart: every later event is answered, counted on
    // from what the store holds.
    let after = send(&server, 20, "after");
    assert!(after.refused.is_empty(), "{:?}", after.refused);
    let all: Vec<u64> = before
        .counts
        .iter()
        .chain(&during.counts)
        .chain(&after.counts)
        .copied()
        .collect();
    counted_once(&all);
    let answered = (before.counts.len() + during.counts.len() + after.counts.len()) as u64;
    let last = *all.last().unwrap();
    assert!(
        last >= answered && last <= 340,
        "every 200 counted, no event twice: the last count {last}, {answered} answered"
    );
    assert!(store_line(&server).contains("store: healthy"));
    let metrics = server.metrics();
    assert!(metrics.contains("elmbox_store_healthy 1"), "{metrics}");
    let errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("elmbox_store_errors_total "))
        .and_then(|n| n.parse().ok())
        .expect("elmbox_store_errors_total");
    assert!(
        errors >= during.refused.len() as u64 / 4 && errors > 0,
        "{errors}"
    );

    drop(server); // SIGKILL
    let server = Served::start(&state);
    assert_eq!(server.count("counter", "restarted"), last + 1);
}

/// A tmpfs of `size` mounted at `at`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        let _ = Command::new("umount").arg(at).output();
        std::fs::create_dir_all(at).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(mounted.success(), "mount -t tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }

    /// Fills what is left with a file of its own; removing it makes room.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k"])
            .arg(format!("of={}", filler.display()))
            .output()
            .unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

#[test]
fn a_full_disk_is_507_until_there_is_room_again() {
    root();
    let disk = Tmpfs::mount(&scratch("store-full").join("disk"), "8m");
    let state = disk.0.join("state");
    let server = Served::start(&state);
    deploy_counter(&server);
    let before = send(&server, 10, "before");
    assert_eq!(before.counts.len(), 10);

    let filler = disk.fill();
    let full = send(&server, 5, "full");
    assert!(full.counts.is_empty(), "{:?}", full.counts);
    for (status, body) in &full.refused {
        assert_eq!(*status, 507, "{body}");
        assert!(body.contains("disk is full"), "the reason: {body}");
    }
    let health = store_line(&server);
    assert!(
        health.contains("store: healing") && health.contains("full"),
        "{health}"
    );
    assert!(server.metrics().contains("elmbox_store_healthy 0"));
    let (status, info) = server.admin_get("apps/counter", Some(TOKEN));
    assert_eq!(status, 200, "{info}");
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["store"]["health"], "healing", "{info}");
    server.wait_for_log("ERROR");

    // Room again: it heals by itself (it tries the store with one event
    // every so often), and counts on from the last 200.
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        let (status, body) = server.event("counter", "room");
        if status == 200 {
            break count(&body);
        }
        assert_eq!(status, 507, "{body}");
        assert!(
            Instant::now() < deadline,
            "not healed in 10 s:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(first, 11);
    let after = send(&server, 9, "after");
    assert!(after.refused.is_empty(), "{:?}", after.refused);
    assert_eq!(after.counts, (12..=20).collect::<Vec<_>>());
    assert!(store_line(&server).contains("store: healthy"));

    drop(server); // SIGKILL
    let server = Served::start(&state);
    assert_eq!(server.count("counter", "restarted"), 21);
}

#[test]
fn a_single_server_heals_after_its_database_restarts() {
    let database = crate::support::PgServer::start();
    let url = database.database("heal");
    let server = Served::start(&url);
    deploy_counter(&server);
    let before = send(&server, 20, "before");
    assert_eq!(before.counts, (1..=20).collect::<Vec<_>>());

    database.stop();
    let down = send(&server, 5, "down");
    assert!(down.counts.is_empty(), "{:?}", down.counts);
    for (status, body) in &down.refused {
        assert_eq!(*status, 503, "{body}");
    }
    database.restart();
    // Connected again, its app claimed again, without a restart: every
    // event answered after a few tries, counted on from the store.
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        let (status, body) = server.event("counter", "back");
        if status == 200 {
            break count(&body);
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < deadline,
            "not healed in 20 s:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(first, 21, "no event refused was kept");
    let after = send(&server, 10, "after");
    assert!(after.refused.is_empty(), "{:?}", after.refused);
    assert_eq!(after.counts, (22..=31).collect::<Vec<_>>());
    assert!(store_line(&server).contains("store: healthy"));

    drop(server); // SIGKILL
    let server = Served::start(&url);
    assert_eq!(server.count("counter", "restarted"), 32);
}
