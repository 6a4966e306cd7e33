//! `elmbox serve` under a real HTTP load generator (`oha`) on loopback,
//! against the same app driven through `elmbox run --state` (durable too),
//! side by side in one run.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use elmbox_server::DEFAULT_DEADLINE_MS;
use elmbox_tests::PgServer;

use crate::fixtures;

pub(crate) const TOKEN: &str = "bench";
const SECONDS: u64 = 5;
const RUN_EVENTS: usize = 50_000;
const MANY_APPS: usize = 100;

/// The `elmbox` binary `make bench` built.
pub(crate) fn elmbox_bin(root: &Path) -> PathBuf {
    root.join("target/release/elmbox")
}

/// `oha`, as `make bench` installs it.
pub(crate) fn oha(root: &Path) -> Option<PathBuf> {
    let path = root.join("target/tools/oha/bin/oha");
    path.is_file().then_some(path)
}

pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elmbox-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A running server, stopped when dropped.
pub(crate) struct Served {
    pub(crate) child: Child,
    pub(crate) url: String,
    /// Its state directory, removed when dropped (none for a database).
    pub(crate) state: Option<PathBuf>,
}

impl Served {
    /// A server on a fresh state directory.
    fn start(root: &Path, name: &str) -> anyhow::Result<Served> {
        let state = scratch(name);
        let mut served = Served::start_on(root, state.as_os_str(), &[])?;
        served.state = Some(state);
        Ok(served)
    }

    /// A server on `state` (a directory or a database's URL), with `args`.
    pub(crate) fn start_on(
        root: &Path,
        state: &std::ffi::OsStr,
        args: &[&str],
    ) -> anyhow::Result<Served> {
        let mut child = Command::new(elmbox_bin(root))
            .args(["serve", "--listen", "127.0.0.1:0", "--state"])
            .arg(state)
            .args(args)
            .env("ELMBOX_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .spawn()
            .context("starting elmbox serve")?;
        let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let url = loop {
            let Some(line) = lines.next().transpose()? else {
                bail!("elmbox serve stopped before it listened");
            };
            if let Some(url) = line.strip_prefix("elmbox: listening on ") {
                break url.trim().to_string();
            }
        };
        // Keep draining its log, so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Served {
            child,
            url,
            state: None,
        })
    }

    pub(crate) fn deploy(&self, name: &str, js: &[u8]) -> anyhow::Result<()> {
        let response = ureq::put(format!("{}/_elmbox/apps/{name}", self.url))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .send(js)?;
        if response.status() != 201 {
            bail!("deploying {name}: {}", response.status());
        }
        Ok(())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(state) = &self.state {
            let _ = std::fs::remove_dir_all(state);
        }
    }
}

/// The `--lease-ms` settings the takeover time is measured at.
const TAKEOVER_LEASES_MS: [u64; 2] = [1_000, 5_000];

/// Two nodes on one database, the counter deployed and driven on node a;
/// a is killed (SIGKILL); the time from the kill to node b's first answer
/// for the app (b answers 503 while it takes the app over, and 307 to a
/// while a's lease lives: both are retried every 10 ms).
fn takeover(
    root: &Path,
    postgres: &PgServer,
    js: &[u8],
    lease_ms: u64,
) -> anyhow::Result<Duration> {
    let url = postgres.database(&format!("takeover{lease_ms}"));
    let lease = lease_ms.to_string();
    let node =
        |id: &str| Served::start_on(root, url.as_ref(), &["--node-id", id, "--lease-ms", &lease]);
    let mut a = node("a")?;
    let b = node("b")?;
    a.deploy("counter", js)?;
    let events = |node: &Served| format!("{}/apps/counter/events", node.url);
    for _ in 0..100 {
        ureq::post(events(&a)).send("click")?;
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    a.child.kill()?;
    let killed = Instant::now();
    a.child.wait()?;
    loop {
        let response = agent.post(events(&b)).send("click")?;
        if response.status() == 200 {
            let body = response.into_body().read_to_string()?;
            if !body.contains("\"count\":101") {
                bail!("node b answered {body} after the takeover, not the 101st click");
            }
            return Ok(killed.elapsed());
        }
        if killed.elapsed() > Duration::from_millis(lease_ms) * 4 + Duration::from_secs(10) {
            bail!(
                "node b still answers {} long after node a was killed",
                response.status()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What one oha run measured.
pub(crate) struct Load {
    pub(crate) requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Requests answered 200, of all.
    ok: u64,
    total: u64,
    /// CPU time per answered request, in µs: the server's, and the load
    /// generator's (it shares the machine's cores).
    pub(crate) server_cpu_us: f64,
    pub(crate) oha_cpu_us: f64,
}

/// CPU time (user + system) the process `pid` has used so far.
pub(crate) fn process_cpu(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("reading /proc/PID/stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks =
        |i: usize| -> anyhow::Result<u64> { Ok(fields.get(i).context("short stat")?.parse()?) };
    // utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the name.
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(Duration::from_secs_f64(
        (ticks(11)? + ticks(12)?) as f64 / per_second,
    ))
}

/// CPU time of this process's children that have ended and been waited for.
fn ended_children_cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_CHILDREN with a valid rusage to fill.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

pub(crate) fn load(
    oha: &Path,
    server_pid: u32,
    connections: usize,
    url: &str,
    random_url: bool,
) -> anyhow::Result<Load> {
    let mut command = Command::new(oha);
    command
        .args([
            "--no-tui",
            "--output-format",
            "json",
            "-m",
            "POST",
            "-d",
            "click",
        ])
        .args(["-c", &connections.to_string()])
        .args(["-z", &format!("{SECONDS}s")]);
    if random_url {
        command.arg("--rand-regex-url");
    }
    let server_before = process_cpu(server_pid)?;
    let oha_before = ended_children_cpu();
    let out = command.arg(url).output().context("running oha")?;
    // oha is the only child reaped meanwhile.
    let oha_cpu = ended_children_cpu() - oha_before;
    let server_cpu = process_cpu(server_pid)? - server_before;
    if !out.status.success() {
        bail!("oha failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let report: Value = serde_json::from_slice(&out.stdout).context("reading oha's JSON")?;
    let number = |path: &str| {
        report
            .pointer(path)
            .and_then(Value::as_f64)
            .with_context(|| format!("no {path} in oha's report"))
    };
    let statuses = report
        .pointer("/statusCodeDistribution")
        .and_then(Value::as_object)
        .context("no status codes in oha's report")?;
    let ok = statuses.get("200").and_then(Value::as_u64).unwrap_or(0);
    let total = statuses.values().filter_map(Value::as_u64).sum();
    let per_request = |cpu: Duration| cpu.as_secs_f64() * 1e6 / ok.max(1) as f64;
    Ok(Load {
        server_cpu_us: per_request(server_cpu),
        oha_cpu_us: per_request(oha_cpu),
        requests_per_s: number("/summary/requestsPerSec")?,
        p50_ms: number("/latencyPercentiles/p50")? * 1e3,
        p99_ms: number("/latencyPercentiles/p99")? * 1e3,
        ok,
        total,
    })
}

/// How `elmbox run` is driven for the reference rates.
#[derive(Clone, Copy)]
struct RunMode {
    /// With `--state DIR`: durable, as the server's apps are.
    durable: bool,
    /// With the CPU deadline the server gives every app by default: the
    /// sandbox then checks the clock as it runs (QuickJS's interrupt handler).
    deadline: bool,
}

/// Events per second through `elmbox run`, less its start-up (timed on no
/// events), as the server's rate is: the median of three.
fn run_rate(root: &Path, js_path: &Path, mode: RunMode) -> anyhow::Result<f64> {
    let mut rates = Vec::new();
    for _ in 0..3 {
        let startup = run_time(root, js_path, mode, 0)?;
        let whole = run_time(root, js_path, mode, RUN_EVENTS)?;
        rates.push(RUN_EVENTS as f64 / (whole - startup).as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[1])
}

fn run_time(root: &Path, js_path: &Path, mode: RunMode, events: usize) -> anyhow::Result<Duration> {
    let input: String = (0..events).map(|_| "click\n").collect();
    let state = scratch("run");
    let mut command = Command::new(elmbox_bin(root));
    command.arg("run").arg(js_path);
    if mode.durable {
        command.arg("--state").arg(&state);
    }
    if mode.deadline {
        command.args(["--deadline-ms", &DEFAULT_DEADLINE_MS.to_string()]);
    }
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())?;
    let status = child.wait()?;
    let elapsed = started.elapsed();
    let _ = std::fs::remove_dir_all(&state);
    if !status.success() {
        bail!("elmbox run failed: {status}");
    }
    Ok(elapsed)
}

pub fn section(root: &Path) -> anyhow::Result<String> {
    let mut doc = String::new();
    let Some(oha) = oha(root) else {
        writeln!(
            doc,
            "Skipped: no load generator at target/tools/oha (`make bench` installs it)."
        )?;
        return Ok(doc);
    };
    let js_path = fixtures(root).join("counter.js");
    let js = std::fs::read(&js_path)?;
    let run_durable = run_rate(
        root,
        &js_path,
        RunMode {
            durable: true,
            deadline: false,
        },
    )?;
    let run_plain = run_rate(
        root,
        &js_path,
        RunMode {
            durable: false,
            deadline: false,
        },
    )?;
    let run_like_served = run_rate(
        root,
        &js_path,
        RunMode {
            durable: true,
            deadline: true,
        },
    )?;

    let one = Served::start(root, "serve-one")?;
    one.deploy("counter", &js)?;
    let url = format!("{}/apps/counter/events", one.url);
    let mut rows = Vec::new();
    for connections in [1, 16, 64] {
        let plural = if connections == 1 { "" } else { "s" };
        rows.push((
            format!("counter, {connections} connection{plural}"),
            load(&oha, one.child.id(), connections, &url, false)?,
        ));
    }
    drop(one);
    let many = Served::start(root, "serve-many")?;
    for i in 0..MANY_APPS {
        many.deploy(&format!("app{i:02}"), &js)?;
    }
    let url = format!("{}/apps/app[0-9][0-9]/events", many.url);
    rows.push((
        format!("{MANY_APPS} counter apps, 64 connections"),
        load(&oha, many.child.id(), 64, &url, true)?,
    ));
    drop(many);

    // The same on PostgreSQL (a throwaway server, fsync on as by default).
    let postgres = PgServer::start_durable();
    let on_postgres = Served::start_on(root, postgres.database("bench").as_ref(), &[])?;
    on_postgres.deploy("counter", &js)?;
    rows.push((
        "counter on PostgreSQL, 16 connections".to_string(),
        load(
            &oha,
            on_postgres.child.id(),
            16,
            &format!("{}/apps/counter/events", on_postgres.url),
            false,
        )?,
    ));
    drop(on_postgres);
    let takeovers = TAKEOVER_LEASES_MS
        .iter()
        .map(|&lease_ms| takeover(root, &postgres, &js, lease_ms).map(|took| (lease_ms, took)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    drop(postgres);

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    writeln!(
        doc,
        "`elmbox serve` with the counter app, durable (each answer released once its event \
         is in the state directory, group commit), under `oha -m POST -d click -z {SECONDS}s` \
         on loopback; the server and oha share this machine's {cores} cores. The same app through \
         `elmbox run --state` (its events piped in, {RUN_EVENTS} of them; start-up \
         not counted; medians of 3) answers {run_durable:.0} events/s; with the CPU deadline \
         the server gives every app (`--deadline-ms {DEFAULT_DEADLINE_MS}`: the sandbox checks \
         the clock as it runs) {run_like_served:.0}/s; plain `elmbox run` {run_plain:.0}/s. \
         Goal: at 16 connections, at least 0.7× `run --state`'s rate. \
         With a few connections the rate is bound by commit latency, not CPU (Little's law: \
         each connection waits for its answer, which waits for an fsync); `run` pipes its \
         events in, so its commits carry thousands of events each. *CPU* is the CPU time \
         of the server and of oha per answered request: {cores} cores cannot answer more \
         than {cores} s / that per second, whatever the scheduling (*ceiling*). The \
         PostgreSQL row keeps the state in a PostgreSQL server (Debian's, started for the \
         run, fsync on as by default) on the same machine instead of a state directory; \
         PostgreSQL's own CPU time is not in its *CPU* column.\n"
    )?;
    writeln!(
        doc,
        "| load | requests/s | p50 | p99 | answered 200 | CPU: server + oha | ceiling | \
         / `run --state` | / `run --state`, deadline | / `run` |"
    )?;
    writeln!(doc, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for (label, r) in &rows {
        let cpu_us = r.server_cpu_us + r.oha_cpu_us;
        writeln!(
            doc,
            "| {label} | {:.0} | {:.2} ms | {:.2} ms | {} of {} | {:.0} + {:.0} µs | {:.0}/s \
             | {:.2}× | {:.2}× | {:.2}× |",
            r.requests_per_s,
            r.p50_ms,
            r.p99_ms,
            r.ok,
            r.total,
            r.server_cpu_us,
            r.oha_cpu_us,
            cores as f64 * 1e6 / cpu_us,
            r.requests_per_s / run_durable,
            r.requests_per_s / run_like_served,
            r.requests_per_s / run_plain,
        )?;
    }
    writeln!(
        doc,
        "\nTakeover: two `elmbox serve` nodes on that PostgreSQL server, the counter \
         deployed and driven (100 events) on node a, then a killed with SIGKILL; the time \
         from the kill to node b's first answer for the app (b redirects to a while a's \
         lease lives and answers 503 while it restores the app; the client retries every \
         10 ms), and b's answer continues the count:\n"
    )?;
    writeln!(
        doc,
        "| `--lease-ms` | kill to first answer on the other node |"
    )?;
    writeln!(doc, "|---:|---:|")?;
    for (lease_ms, took) in &takeovers {
        writeln!(doc, "| {lease_ms} | {:.0} ms |", took.as_secs_f64() * 1e3)?;
    }
    Ok(doc)
}
