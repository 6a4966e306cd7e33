//! `make chaos`: a fault campaign against three `elmbox serve` nodes on one
//! PostgreSQL. Clients send unique events to counter apps through random
//! nodes while a nemesis kills, pauses and restarts nodes, restarts (and
//! crashes) PostgreSQL, fails a node's fsyncs and socket I/O (libfiu) and
//! fills PostgreSQL's disk; at the end every fault is healed, every app
//! must answer again, and the clients' history is checked against the apps'
//! logs as PostgreSQL holds them (`checker.rs`).
//!
//! Exit status: 0 clean; 1 a violation, an app that never answered again,
//! or a node that exited by itself (and, with `--self-check`, the injected
//! violations caught, as they must be); 2 the harness failed or was
//! interrupted; 3 `--self-check` found the checker blind.

mod checker;
mod clients;
mod cluster;
mod history;
mod nemesis;
mod postgres;
mod processes;
mod rng;
mod self_check;
mod summary;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;

use crate::clients::{final_event, Load, Sender};
use crate::cluster::Cluster;
use crate::history::Entry;
use crate::nemesis::{Fault, Nemesis};
use crate::postgres::Postgres;
use crate::processes::{interrupted, run};
use crate::rng::Rng;
use crate::summary::Summary;

/// A fault campaign against `elmbox serve` nodes on one PostgreSQL,
/// checked against the apps' logs. Needs root (it mounts a tmpfs), Debian's
/// `postgresql` and `fiu-utils`, and `make build fixtures`.
#[derive(Parser, Debug)]
#[command(name = "elmbox-chaos")]
struct Args {
    /// How long the nemesis injects faults, in minutes.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Counter apps deployed.
    #[arg(long, default_value_t = 8)]
    apps: usize,
    /// Client threads.
    #[arg(long, default_value_t = 6)]
    clients: usize,
    /// `elmbox serve` nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// The nodes' `--lease-ms`.
    #[arg(long, default_value_t = 2000)]
    lease_ms: u64,
    /// How long a client waits for one answer (each redirect hop too).
    #[arg(long, default_value_t = 5000)]
    request_timeout_ms: u64,
    /// The size of PostgreSQL's tmpfs.
    #[arg(long, default_value_t = 1024)]
    pg_disk_mb: u64,
    /// The faults to draw from (kill-9, sigstop, pg-restart, fsync-fail,
    /// net-fail, disk-full), comma-separated; all of them by default, `none`
    /// for a run without faults.
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    /// Seed of every random choice (printed; the default is the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Each run's logs and history go into a new directory under this one.
    #[arg(long, default_value = "target/chaos")]
    work_dir: PathBuf,
    /// Also write the summary as a markdown table to FILE.
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// Proves the checker has teeth: before checking, the history is
    /// falsified four ways (an `ok` event that was never sent, a real `ok`
    /// event answered one count more, one relabelled `fail`, one dropped).
    /// The checker must report all four, and the run then exits 1; 3 if it
    /// missed one.
    #[arg(long)]
    self_check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    processes::catch_interrupts();
    match campaign(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("elmbox-chaos: harness error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Tears the cluster down however the campaign ends, a panic included
/// (the threads holding the cluster may outlive `main`'s unwinding).
struct Teardown(Arc<Cluster>);

impl Drop for Teardown {
    fn drop(&mut self) {
        self.0.teardown();
    }
}

/// What the phases of a campaign share.
struct Run {
    started: Instant,
    /// This run's directory: logs, history, nemesis log.
    dir: PathBuf,
    cluster: Arc<Cluster>,
    apps: Arc<Vec<String>>,
}

impl Run {
    /// A progress line, with the time since the start.
    fn say(&self, text: &str) {
        say(self.started, text);
    }
}

fn say(started: Instant, text: &str) {
    println!("[+{:6.1}s] {text}", started.elapsed().as_secs_f64());
}

fn campaign(args: &Args) -> Result<ExitCode, String> {
    let started = Instant::now();
    preflight(args)?;
    let kinds = Fault::list(&args.faults)?;
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let mut rng = Rng::new(seed);
    let (run, _teardown) = set_up(args, started, seed)?;

    let timeout = Duration::from_millis(args.request_timeout_ms);
    let sender = Sender::new(run.cluster.clone(), run.apps.clone(), timeout, started);
    let load = Load::start(&sender, args.clients, &mut rng);
    run.say(&format!("{} clients sending", args.clients));
    let (report, campaign) = inject_faults(&run, args, &sender, kinds, rng.fork())?;
    let mut summary = Summary {
        seed,
        nodes: args.nodes,
        apps: args.apps,
        clients: args.clients,
        lease_ms: args.lease_ms,
        campaign,
        faults: report.injected,
        nemesis_problems: report.problems,
        interrupted: interrupted(),
        ..Summary::default()
    };

    heal(&run)?;
    let (finals, unanswered) = final_events(&run, &sender, &mut rng);
    summary.unanswered = unanswered;
    let mut history = load.stop()?;
    history.extend(finals);
    run.say(&format!("clients stopped: {}", sender.tally.line()));
    summary.node_ends = run.cluster.terminate(Duration::from_secs(30));
    summary.self_exits = run.cluster.self_exits();
    for (node, how) in &summary.node_ends {
        run.say(&format!("SIGTERM {node}: {how}"));
    }

    // The logs, from PostgreSQL; then nothing of the cluster is needed.
    run.cluster.pg.ensure_running()?;
    let logs = checker::read_logs(&run.cluster.pg.url(), &run.apps, &mut summary.notes)?;
    run.cluster.teardown();
    let _ = std::fs::remove_file(run.dir.join("elmbox"));
    summary.tally(&history);
    history::write_tsv(&run.dir.join("history.tsv"), &run.apps, &history)?;

    let injected = match args.self_check {
        true => Some(self_check::falsify(&mut history)?),
        false => None,
    };
    let report = checker::check(&run.apps, &history, &logs);
    summary.checked(&report);
    summary.total = started.elapsed();
    write_violations(&run, &report)?;
    let mut code = match summary.failed() {
        true => ExitCode::from(1),
        false => ExitCode::SUCCESS,
    };
    if let Some(injected) = injected {
        let kinds = report.by_kind();
        let missed: Vec<&str> = injected
            .iter()
            .filter(|kind| !kinds.contains_key(*kind))
            .copied()
            .collect();
        summary.self_check = Some(match missed.is_empty() {
            true => format!(
                "the checker caught all {} injected violations",
                injected.len()
            ),
            false => {
                code = ExitCode::from(3);
                format!("the checker MISSED: {}", missed.join(", "))
            }
        });
    }
    if summary.interrupted {
        code = ExitCode::from(2);
    }
    summary.print();
    println!("logs, history and nemesis log: {}", run.dir.display());
    if let Some(path) = &args.summary {
        std::fs::write(path, summary.markdown()).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("summary table: {}", path.display());
    }
    Ok(code)
}

/// The run's directory, PostgreSQL, the nodes and the apps; the guard that
/// tears them down.
fn set_up(args: &Args, started: Instant, seed: u64) -> Result<(Run, Teardown), String> {
    let elmbox = elmbox_tests::elmbox_bin();
    let counter = std::fs::read(elmbox_tests::fixture("counter"))
        .map_err(|e| format!("the counter fixture: {e} (make fixtures)"))?;
    std::fs::create_dir_all(&args.work_dir)
        .map_err(|e| format!("{}: {e}", args.work_dir.display()))?;
    cluster::sweep(&args.work_dir);
    let dir = new_run_dir(&args.work_dir)?;
    say(
        started,
        &format!("seed {seed}; work directory {}", dir.display()),
    );
    // A copy: a build in the shared target directory during the campaign
    // must not change the binary that restarted nodes run.
    let copy = dir.join("elmbox");
    std::fs::copy(&elmbox, &copy).map_err(|e| format!("copying {}: {e}", elmbox.display()))?;
    say(
        started,
        &format!("nodes run a copy of {}", elmbox.display()),
    );

    let pg = Postgres::start(&dir, args.pg_disk_mb)?;
    let log = pg.log_path();
    say(
        started,
        &format!(
            "PostgreSQL on a {} MiB tmpfs, fsync on; its log: {}",
            args.pg_disk_mb,
            log.display()
        ),
    );
    let cluster = Cluster::start(pg, args.nodes, &dir, copy, args.lease_ms, started)?;
    let cluster = Arc::new(cluster);
    let teardown = Teardown(cluster.clone());
    for i in 0..cluster.len() {
        let (url, pid) = (
            cluster.url(i).unwrap_or_default(),
            cluster.pid(i).unwrap_or_default(),
        );
        say(
            started,
            &format!(
                "node {} at {url} (pid {pid}), under fiu-run -x",
                cluster.id(i)
            ),
        );
    }
    say(
        started,
        &format!("node logs: {}/", cluster.log_dir().display()),
    );

    let apps: Vec<String> = (0..args.apps).map(|i| format!("counter-{i}")).collect();
    for app in &apps {
        cluster.deploy(0, app, &counter)?;
    }
    say(
        started,
        &format!(
            "deployed {} counter apps through {}",
            apps.len(),
            cluster.id(0)
        ),
    );
    let run = Run {
        started,
        dir,
        cluster,
        apps: Arc::new(apps),
    };
    Ok((run, teardown))
}

/// The nemesis, for `--minutes`, with a progress line every 10 s; what it
/// did, and how long it ran.
fn inject_faults(
    run: &Run,
    args: &Args,
    sender: &Sender,
    kinds: Vec<Fault>,
    rng: Rng,
) -> Result<(nemesis::Report, Duration), String> {
    let begun = Instant::now();
    let until = begun + Duration::from_secs_f64(args.minutes * 60.0);
    let log = std::fs::File::create(run.dir.join("nemesis.log")).map_err(|e| e.to_string())?;
    let nemesis = Nemesis::new(run.cluster.clone(), rng, kinds, log, run.started);
    let nemesis = std::thread::Builder::new()
        .name("nemesis".into())
        .spawn(move || nemesis.run(until))
        .map_err(|e| e.to_string())?;
    let mut next_progress = Instant::now() + Duration::from_secs(10);
    while !nemesis.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        if Instant::now() >= next_progress {
            let disk = run.cluster.pg.disk_use();
            run.say(&format!(
                "progress: {}; PostgreSQL's disk: {disk}",
                sender.tally.line()
            ));
            next_progress += Duration::from_secs(10);
        }
    }
    let report = nemesis
        .join()
        .map_err(|_| "the nemesis panicked".to_string())?;
    Ok((report, begun.elapsed()))
}

/// Every fault healed, then two leases for the cluster to settle, and
/// every node answering `/healthz`.
fn heal(run: &Run) -> Result<(), String> {
    run.say("healing everything");
    let cluster = &run.cluster;
    let _ = cluster.pg.unfill_disk();
    cluster.pg.ensure_running()?;
    let mut problems = cluster.heal_nodes();
    if !problems.is_empty() {
        std::thread::sleep(Duration::from_secs(2));
        problems = cluster.heal_nodes();
    }
    if !problems.is_empty() {
        return Err(format!(
            "the cluster could not be healed: {}",
            problems.join("; ")
        ));
    }
    std::thread::sleep(cluster.lease() * 2);
    cluster.wait_healthy()
}

/// One more event to every app, until it is answered 200: the tries, and
/// the apps that never answered.
fn final_events(run: &Run, sender: &Sender, rng: &mut Rng) -> (Vec<Entry>, Vec<String>) {
    let (mut finals, mut unanswered) = (Vec::new(), Vec::new());
    for (app, name) in run.apps.iter().enumerate() {
        let (tries, answered) = final_event(sender, app, Duration::from_secs(45), rng);
        let last = tries.last().map(|e| e.to_string()).unwrap_or_default();
        finals.extend(tries);
        if !answered {
            run.say(&format!(
                "{name} answered no event with 200 after healing: {last}"
            ));
            unanswered.push(name.clone());
        }
    }
    let answered = run.apps.len() - unanswered.len();
    run.say(&format!(
        "after healing, {answered} of {} apps answered 200",
        run.apps.len()
    ));
    (finals, unanswered)
}

/// Each violation with its details, on stdout and in `violations.txt`.
fn write_violations(run: &Run, report: &checker::Report) -> Result<(), String> {
    let mut violations = String::new();
    for v in &report.violations {
        violations += &format!("{} [{}]:\n      {}\n", v.kind, v.app, v.detail.trim_end());
    }
    for ((kind, app), n) in &report.more {
        violations += &format!("{kind} [{app}]: {n} more\n");
    }
    if violations.is_empty() {
        return Ok(());
    }
    println!("\n==== violations ====\n{violations}");
    std::fs::write(run.dir.join("violations.txt"), &violations).map_err(|e| e.to_string())
}

/// Root, and the programs the campaign runs.
fn preflight(args: &Args) -> Result<(), String> {
    let uid = run(
        std::process::Command::new("id").arg("-u"),
        Duration::from_secs(10),
    )?;
    if uid.stdout.trim() != "0" {
        return Err(
            "elmbox-chaos mounts a tmpfs and runs PostgreSQL as `postgres`: run it as root".into(),
        );
    }
    for program in ["fiu-run", "fiu-ctrl", "runuser", "mount", "umount"] {
        let found = run(
            std::process::Command::new("sh").args(["-c", &format!("command -v {program}")]),
            Duration::from_secs(10),
        )?;
        if !found.status.success() {
            return Err(format!(
                "`{program}` is missing (make chaos installs postgresql and fiu-utils)"
            ));
        }
    }
    if args.nodes == 0 || args.apps == 0 || args.clients == 0 {
        return Err("--nodes, --apps and --clients must be at least 1".into());
    }
    Ok(())
}

fn new_run_dir(work_dir: &Path) -> Result<PathBuf, String> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dir = work_dir.join(format!("run-{secs}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    dir.canonicalize().map_err(|e| e.to_string())
}
