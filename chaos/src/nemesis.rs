//! The nemesis: every few seconds one fault, chosen at random, held for a
//! short random while and then healed, one at a time, until the campaign's
//! end. Each fault is written to `nemesis.log` (and said on stdout) with
//! the time since the start, so that the nodes' logs and the history read
//! alongside it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::cluster::Cluster;
use crate::processes::{interrupted, nap};
use crate::rng::Rng;

/// ECONNRESET and ECONNREFUSED, as libfiu's `failinfo`: the errno a failed
/// call sets (without it libfiu picks any errno the call may set, EAGAIN
/// among them, which an edge-triggered poller takes for "wait for more" and
/// no real socket with data says).
const ECONNRESET: i32 = 104;
const ECONNREFUSED: i32 = 111;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL a node, start it again after a while.
    Kill,
    /// SIGSTOP a node for longer than its lease, then SIGCONT.
    Pause,
    /// `pg_ctl stop -m fast` or `-m immediate` (a crash), then start it.
    PgRestart,
    /// A node's fsync and fdatasync fail (`posix/io/sync/*`). Inert with a
    /// PostgreSQL store: a node calls neither (strace says so; the database
    /// syncs), but a node's own files would be hit if it had any.
    Fsync,
    /// A node's socket calls fail with ECONNRESET (`posix/io/net/recv`,
    /// `send`, `posix/io/rw/writev`) and its connects with ECONNREFUSED.
    Net,
    /// PostgreSQL's tmpfs filled to the last byte, then emptied.
    DiskFull,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::Kill,
        Fault::Pause,
        Fault::PgRestart,
        Fault::Fsync,
        Fault::Net,
        Fault::DiskFull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill-9",
            Fault::Pause => "sigstop",
            Fault::PgRestart => "pg-restart",
            Fault::Fsync => "fsync-fail",
            Fault::Net => "net-fail",
            Fault::DiskFull => "disk-full",
        }
    }

    pub fn parse(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The faults `--faults` names (all of them if none; `none` for none).
    pub fn list(names: &[String]) -> Result<Vec<Fault>, String> {
        if names.is_empty() {
            return Ok(Fault::ALL.to_vec());
        }
        names
            .iter()
            .filter(|n| !n.is_empty())
            .map(|name| {
                if name == "none" {
                    return Ok(None);
                }
                Fault::parse(name).map(Some).ok_or_else(|| {
                    let all: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                    format!("no fault `{name}`: one of {}, or none", all.join(", "))
                })
            })
            .filter_map(Result::transpose)
            .collect()
    }
}

/// What the nemesis did.
#[derive(Debug, Default)]
pub struct Report {
    /// Faults injected, by kind (`pg-restart` split into fast and crash).
    pub injected: BTreeMap<String, u64>,
    /// Heals that did not work at once (the end heals again).
    pub problems: Vec<String>,
}

pub struct Nemesis {
    cluster: Arc<Cluster>,
    rng: Rng,
    kinds: Vec<Fault>,
    /// The nemesis's own log.
    log: File,
    started: Instant,
    report: Report,
    /// PostgreSQL restarts so far.
    pg_restarts: u64,
    /// Set to end a fault's hold early (never set: the deadline and an
    /// interrupt end it).
    stop: AtomicBool,
}

impl Nemesis {
    pub fn new(
        cluster: Arc<Cluster>,
        rng: Rng,
        kinds: Vec<Fault>,
        log: File,
        started: Instant,
    ) -> Nemesis {
        Nemesis {
            cluster,
            rng,
            kinds,
            log,
            started,
            report: Report::default(),
            pg_restarts: 0,
            stop: AtomicBool::new(false),
        }
    }

    fn say(&mut self, text: &str) {
        let line = format!(
            "[+{:6.1}s] nemesis: {text}",
            self.started.elapsed().as_secs_f64()
        );
        println!("{line}");
        let _ = writeln!(self.log, "{line}");
    }

    fn problem(&mut self, text: String) {
        self.say(&format!("PROBLEM: {text}"));
        self.report.problems.push(text);
    }

    /// Holds a fault for a random while in `range` ms; false if the campaign
    /// ended meanwhile (the fault is healed at once then).
    fn hold(&mut self, range: std::ops::Range<u64>) -> bool {
        let wait = self.rng.millis(range);
        nap(wait, &self.stop)
    }

    /// Faults until `until`, each healed before the next.
    pub fn run(mut self, until: Instant) -> Report {
        if self.kinds.is_empty() {
            nap(until.saturating_duration_since(Instant::now()), &self.stop);
            return self.report;
        }
        while Instant::now() < until && !interrupted() {
            let gap = self.rng.millis(1_000..4_000);
            if !nap(
                gap.min(until.saturating_duration_since(Instant::now())),
                &self.stop,
            ) {
                break;
            }
            if Instant::now() >= until {
                break;
            }
            // A node that died by itself is a finding; it is started again.
            for exit in self.cluster.reap_self_exits() {
                self.problem(format!("node exit nobody asked for: {exit}"));
                for problem in self.cluster.heal_nodes() {
                    self.problem(problem);
                }
            }
            let fault = self.kinds[self.rng.below(self.kinds.len())];
            self.inject(fault);
        }
        self.report
    }

    fn count(&mut self, kind: &str) {
        *self.report.injected.entry(kind.to_string()).or_default() += 1;
    }

    fn inject(&mut self, fault: Fault) {
        let nodes = self.cluster.len();
        let i = self.rng.below(nodes);
        let id = self.cluster.id(i);
        let lease = self.cluster.lease().as_millis() as u64;
        match fault {
            Fault::Kill => {
                if let Err(e) = self.cluster.kill(i) {
                    return self.problem(format!("kill -9 {id}: {e}"));
                }
                self.count(fault.name());
                self.say(&format!("kill -9 {id}"));
                self.hold(500..5_000);
                let started = Instant::now();
                match self.cluster.start_node(i) {
                    Ok(()) => self.say(&format!(
                        "{id} started again ({} ms), at {}",
                        started.elapsed().as_millis(),
                        self.cluster.url(i).unwrap_or_default()
                    )),
                    Err(e) => self.problem(format!("restarting {id}: {e}")),
                }
            }
            Fault::Pause => {
                if let Err(e) = self.cluster.pause(i) {
                    return self.problem(format!("SIGSTOP {id}: {e}"));
                }
                self.count(fault.name());
                // Past its lease: another node takes its apps over.
                let held = self.rng.millis(lease + 500..lease + 3_000);
                self.say(&format!("SIGSTOP {id} for {} ms", held.as_millis()));
                nap(held, &self.stop);
                match self.cluster.resume(i) {
                    Ok(()) => self.say(&format!("SIGCONT {id}")),
                    Err(e) => self.problem(format!("SIGCONT {id}: {e}")),
                }
            }
            Fault::PgRestart => {
                // Taken in turn, so that a short run has both.
                self.pg_restarts += 1;
                let mode = match self.pg_restarts % 2 {
                    1 => "fast",
                    _ => "immediate",
                };
                if let Err(e) = self.cluster.pg.stop_server(mode) {
                    return self.problem(format!("pg_ctl stop -m {mode}: {e}"));
                }
                self.count(&format!("{} ({mode})", fault.name()));
                self.say(&format!("PostgreSQL stopped (-m {mode})"));
                self.hold(500..3_000);
                let started = Instant::now();
                match self.cluster.pg.ensure_running() {
                    Ok(()) => self.say(&format!(
                        "PostgreSQL started again ({} ms)",
                        started.elapsed().as_millis()
                    )),
                    Err(e) => self.problem(format!("starting PostgreSQL: {e}")),
                }
            }
            Fault::Fsync => {
                let p = 0.2 + 0.8 * self.rng.unit();
                let enable = [format!(
                    "enable_random name=posix/io/sync/*,probability={p:.2}"
                )];
                self.fiu(i, fault, &enable, &["posix/io/sync/*"]);
            }
            Fault::Net => {
                let p = 0.01 + 0.09 * self.rng.unit();
                let points = [
                    ("posix/io/net/recv", ECONNRESET),
                    ("posix/io/net/send", ECONNRESET),
                    ("posix/io/rw/writev", ECONNRESET),
                    ("posix/io/net/connect", ECONNREFUSED),
                ];
                let enable: Vec<String> = points
                    .iter()
                    .map(|(name, errno)| {
                        format!("enable_random name={name},probability={p:.3},failinfo={errno}")
                    })
                    .collect();
                let names: Vec<&str> = points.iter().map(|(name, _)| *name).collect();
                self.fiu(i, fault, &enable, &names);
            }
            Fault::DiskFull => {
                let filled = match self.cluster.pg.fill_disk() {
                    Ok(filled) => filled,
                    Err(e) => {
                        let _ = self.cluster.pg.unfill_disk();
                        return self.problem(format!("filling the disk: {e}"));
                    }
                };
                self.count(fault.name());
                self.say(&format!(
                    "PostgreSQL's disk filled ({} MiB of filler; {})",
                    filled >> 20,
                    self.cluster.pg.disk_use()
                ));
                self.hold(2_000..6_000);
                if let Err(e) = self.cluster.pg.unfill_disk() {
                    self.problem(format!("emptying the disk: {e}"));
                }
                // A full disk can crash PostgreSQL (a WAL write that finds
                // no room is a PANIC); it is started again if it did not
                // come back by itself.
                let down = !self.cluster.pg.ready();
                match self.cluster.pg.ensure_running() {
                    Ok(()) if down => {
                        self.say("disk emptied; PostgreSQL had gone down, and is back")
                    }
                    Ok(()) => self.say("disk emptied"),
                    Err(e) => self.problem(format!("PostgreSQL after the full disk: {e}")),
                }
            }
        }
    }

    /// Enables fiu failure points on node `i`, holds, disables them.
    fn fiu(&mut self, i: usize, fault: Fault, enable: &[String], names: &[&str]) {
        let id = self.cluster.id(i);
        if let Err(e) = self.cluster.fiu(i, enable) {
            return self.problem(format!("fiu-ctrl on {id}: {e}"));
        }
        self.count(fault.name());
        self.say(&format!("{id}: {}", enable.join("; ")));
        self.hold(2_000..6_000);
        let disable: Vec<String> = names.iter().map(|n| format!("disable name={n}")).collect();
        match self.cluster.fiu(i, &disable) {
            Ok(()) => self.say(&format!("{id}: failure points disabled")),
            Err(e) => self.problem(format!("disabling on {id}: {e}")),
        }
    }
}
