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

use crate::fixtures;

const TOKEN: &str = "bench";
const SECONDS: u64 = 5;
const RUN_EVENTS: usize = 50_000;
const MANY_APPS: usize = 100;

/// The `elmbox` binary `make bench` built.
fn elmbox_bin(root: &Path) -> PathBuf {
    root.join("target/release/elmbox")
}

/// `oha`, as `make bench` installs it.
fn oha(root: &Path) -> Option<PathBuf> {
    let path = root.join("target/tools/oha/bin/oha");
    path.is_file().then_some(path)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elmbox-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A running server, stopped when dropped.
struct Served {
    child: Child,
    url: String,
    state: PathBuf,
}

impl Served {
    fn start(root: &Path, name: &str) -> anyhow::Result<Served> {
        let state = scratch(name);
        let mut child = Command::new(elmbox_bin(root))
            .args(["serve", "--listen", "127.0.0.1:0", "--state"])
            .arg(&state)
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
        Ok(Served { child, url, state })
    }

    fn deploy(&self, name: &str, js: &[u8]) -> anyhow::Result<()> {
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
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// What one oha run measured.
struct Load {
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Requests answered 200, of all.
    ok: u64,
    total: u64,
}

fn load(oha: &Path, connections: usize, url: &str, random_url: bool) -> anyhow::Result<Load> {
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
    let out = command.arg(url).output().context("running oha")?;
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
    Ok(Load {
        requests_per_s: number("/summary/requestsPerSec")?,
        p50_ms: number("/latencyPercentiles/p50")? * 1e3,
        p99_ms: number("/latencyPercentiles/p99")? * 1e3,
        ok,
        total,
    })
}

/// Events per second through `elmbox run` (with `--state DIR`, or not),
/// less its start-up (timed on no events), as the server's rate is.
fn run_rate(root: &Path, js_path: &Path, durable: bool) -> anyhow::Result<f64> {
    let startup = run_time(root, js_path, durable, 0)?;
    let whole = run_time(root, js_path, durable, RUN_EVENTS)?;
    Ok(RUN_EVENTS as f64 / (whole - startup).as_secs_f64())
}

fn run_time(root: &Path, js_path: &Path, durable: bool, events: usize) -> anyhow::Result<Duration> {
    let input: String = (0..events).map(|_| "click\n").collect();
    let state = scratch("run");
    let mut command = Command::new(elmbox_bin(root));
    command.arg("run").arg(js_path);
    if durable {
        command.arg("--state").arg(&state);
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
    let run_durable = run_rate(root, &js_path, true)?;
    let run_plain = run_rate(root, &js_path, false)?;

    let one = Served::start(root, "serve-one")?;
    one.deploy("counter", &js)?;
    let url = format!("{}/apps/counter/events", one.url);
    let mut rows = Vec::new();
    for connections in [1, 16, 64] {
        let plural = if connections == 1 { "" } else { "s" };
        rows.push((
            format!("counter, {connections} connection{plural}"),
            load(&oha, connections, &url, false)?,
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
        load(&oha, 64, &url, true)?,
    ));
    drop(many);

    writeln!(
        doc,
        "`elmbox serve` with the counter app, durable (each answer released once its event \
         is in the state directory, group commit), under `oha -m POST -d click -z {SECONDS}s` \
         on loopback; the server and oha share this machine's cores. The same app through \
         `elmbox run --state` (its events piped in, {RUN_EVENTS} of them; start-up \
         not counted) answers {run_durable:.0} events/s, and through plain `elmbox run` \
         {run_plain:.0}/s. Goal: at 16 connections, at least 0.7× `run`'s durable rate. \
         With a few connections the rate is bound by commit latency, not CPU (Little's law: \
         each connection waits for its answer, which waits for an fsync); `run` pipes its \
         events in, so its commits carry thousands of events each.\n"
    )?;
    writeln!(
        doc,
        "| load | requests/s | p50 | p99 | answered 200 | / `run --state` | / `run` |"
    )?;
    writeln!(doc, "|---|---:|---:|---:|---:|---:|---:|")?;
    for (label, r) in &rows {
        writeln!(
            doc,
            "| {label} | {:.0} | {:.2} ms | {:.2} ms | {} of {} | {:.2}× | {:.2}× |",
            r.requests_per_s,
            r.p50_ms,
            r.p99_ms,
            r.ok,
            r.total,
            r.requests_per_s / run_durable,
            r.requests_per_s / run_plain,
        )?;
    }
    Ok(doc)
}
