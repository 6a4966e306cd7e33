//! Power loss, for real: `elmbox serve` keeps its state on a file system
//! that holds written data in memory until it is synced (`powerloss-fs`,
//! crate `elmbox-powerloss`, run as a child process: SQLite maps `-shm`,
//! so this process must not serve the mount). Under load the server is
//! killed with SIGKILL at a random point, everything not synced is
//! dropped, and the server starts again on what is left: every event
//! answered 200 must be there. kill -9 alone would prove nothing, as the
//! kernel's page cache outlives the process; the negative control (SQLite
//! with `synchronous=OFF`) shows the test catches a store that does not
//! sync. Needs root and /dev/fuse (`make test` runs as root).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use elmbox_powerloss::Daemon;
use elmbox_tests::fixture;

use crate::served::{count, read, scratch, Served};

/// `powerloss-fs`, built by `make test` (ELMBOX_POWERLOSS_FS).
fn powerloss_fs() -> PathBuf {
    let path = std::env::var_os("ELMBOX_POWERLOSS_FS")
        .map(PathBuf::from)
        .expect("ELMBOX_POWERLOSS_FS names no powerloss-fs: run the tests with `make test`");
    assert!(
        path.is_file(),
        "{} missing: `make test` builds it",
        path.display()
    );
    path
}

/// A small generator of random points (xorshift), seeded by the clock and
/// said in the test's output, so that a failure can be run again.
struct Random(u64);

impl Random {
    fn new() -> Random {
        let seed = std::env::var("ELMBOX_POWER_LOSS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        println!("power loss: seed {seed} (ELMBOX_POWER_LOSS_SEED={seed} to run it again)");
        Random(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What a round of load heard: the counts answered 200.
#[derive(Default)]
struct Heard {
    counts: Vec<u64>,
}

/// `rounds` times: load from two clients for a random while, kill -9, drop
/// what was not synced, start again. `Err` says which answered event is
/// missing after which round.
fn power_losses(name: &str, rounds: usize, env: &[(&str, &str)]) -> Result<(), String> {
    let dir = scratch(name);
    let (backing, mount) = (dir.join("disk"), dir.join("mnt"));
    std::fs::create_dir_all(&backing).unwrap();
    std::fs::create_dir_all(&mount).unwrap();
    let mut disk = Daemon::start(powerloss_fs(), &backing, &mount).expect("powerloss-fs mounts");
    let state = mount.join("state");
    let start = || Served::start_env(&state, env);
    let server = start();
    let (status, text) = server.deploy("counter", "", &std::fs::read(fixture("counter")).unwrap());
    assert_eq!(status, 201, "{text}");
    let mut random = Random::new();
    let mut server = Some(server);
    let mut answered_before = 0;
    for round in 1..=rounds {
        let running = server.take().unwrap();
        let heard = Arc::new(Mutex::new(Heard::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..2)
            .map(|client| {
                let (url, http) = (
                    format!("{}/apps/counter/events", running.url),
                    running.http.clone(),
                );
                let (heard, stop) = (heard.clone(), stop.clone());
                std::thread::spawn(move || {
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        // After the kill, requests fail: that ends the client.
                        let Ok(mut response) =
                            http.post(&url).send(&format!("r{round}-c{client}-{i}"))
                        else {
                            break;
                        };
                        let status = response.status().as_u16();
                        let body = response.body_mut().read_to_string().unwrap_or_default();
                        if status == 200 {
                            heard.lock().unwrap().counts.push(count(&body));
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + random.below(400)));
        drop(running); // SIGKILL, at a random point of the load
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.join().unwrap();
        }
        let dropped = disk.power_loss().expect("powerloss-fs drops");
        let heard = std::mem::take(&mut *heard.lock().unwrap());
        let last_answered = heard
            .counts
            .iter()
            .copied()
            .max()
            .unwrap_or(answered_before);
        assert!(
            heard.counts.len() > 10,
            "round {round}: the load was answered {} times",
            heard.counts.len()
        );

        let restarted = start();
        let (status, body) = read(
            restarted
                .http
                .post(format!("{}/apps/counter/events", restarted.url))
                .send("after the power loss"),
        );
        // The log is a prefix of what was written: every answered event is
        // in it iff it holds as many events as the last count answered.
        let next = match status {
            200 => count(&body),
            _ => 0,
        };
        println!(
            "round {round}: {} answered (last count {last_answered}), {} bytes dropped, \
             count after the restart {next}",
            heard.counts.len(),
            dropped.bytes
        );
        if next <= last_answered {
            return Err(format!(
                "round {round}: the count {last_answered} was answered, but after the power loss \
                 the app answered {status} {body}"
            ));
        }
        answered_before = next;
        server = Some(restarted);
    }
    drop(server);
    disk.stop().expect("powerloss-fs unmounts");
    Ok(())
}

#[test]
fn every_event_answered_200_survives_a_power_loss() {
    power_losses("power-loss", 4, &[]).unwrap();
}

/// The negative controls: a store that does not sync (`OFF`), or syncs
/// its log only at checkpoints (`NORMAL`, which loses the last commits but
/// keeps what came before them), loses answered events, and the test sees
/// it.
#[test]
fn the_power_loss_test_catches_a_store_that_does_not_sync() {
    for synchronous in ["OFF", "NORMAL"] {
        let caught = power_losses(
            &format!("power-loss-{synchronous}"),
            4,
            &[("ELMBOX_UNSAFE_SQLITE_SYNCHRONOUS", synchronous)],
        );
        let Err(caught) = caught else {
            panic!(
                "with synchronous={synchronous} every answered event survived 4 power losses: \
                 the test has no teeth"
            );
        };
        println!("synchronous={synchronous} caught: {caught}");
    }
}
