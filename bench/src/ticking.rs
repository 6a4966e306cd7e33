//! What the wall clock costs a server: 1,000 apps on one `elmbox serve`,
//! each ticking every 100 ms (`Time.every 100` in the clock fixture) and
//! asked nothing, against the same 1,000 apps with no timer, side by side in
//! one run: the server's CPU, the store's commits and log records per
//! second, how late the ticks fire.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::fixtures;
use crate::serve::{process_cpu, scratch, Served, TOKEN};

const APPS: usize = 1_000;
/// Measured windows, each this long, after a settling one.
const WINDOWS: usize = 3;
const WINDOW: Duration = Duration::from_secs(5);

/// What one window measured.
struct Window {
    /// Cores' worth of CPU the server used.
    cores: f64,
    commits_per_s: f64,
    /// Log records written per second: one per wake.
    records_per_s: f64,
    timers_per_s: f64,
    /// Mean lateness of the wakes, in ms.
    late_ms: f64,
    /// The median and 99th percentile of it, as the histogram's bucket
    /// bounds they fall under, in ms.
    late_p50_ms: f64,
    late_p99_ms: f64,
    /// Bytes the state directory grew by per second.
    bytes_per_s: f64,
}

/// A server with `APPS` clock apps deployed, with `flags`.
fn server_of_clocks(root: &Path, name: &str, flags: &str) -> anyhow::Result<Served> {
    let state = scratch(name);
    let max = (APPS + 10).to_string();
    let mut server = Served::start_on(
        root,
        state.as_os_str(),
        &["--max-apps", &max, "--idle-ms", "0"],
    )?;
    server.state = Some(state);
    let js = std::fs::read(fixtures(root).join("clock.js")).context("make fixtures")?;
    let flags: String = flags
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    // Four at a time: deploys take the server's admin lock one by one, but
    // reading and sending the code overlaps.
    let url = server.url.clone();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                let (url, js, flags) = (&url, &js, &flags);
                scope.spawn(move || -> anyhow::Result<()> {
                    for i in (worker..APPS).step_by(4) {
                        let response = ureq::put(format!(
                            "{url}/_elmbox/apps/clock-{i}?http=true&flags={flags}"
                        ))
                        .header("Authorization", format!("Bearer {TOKEN}"))
                        .send(js)?;
                        if response.status() != 201 {
                            bail!("deploying clock-{i}: {}", response.status());
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("a deploying thread panicked")?;
        }
        Ok(())
    })?;
    Ok(server)
}

/// The sum of the series named `name` (over all apps) in a scrape.
fn summed(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The lateness histogram's buckets summed over all apps: upper bound (s)
/// and cumulative count, in order.
fn lateness_buckets(metrics: &str) -> Vec<(f64, f64)> {
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("elmbox_timer_lateness_seconds_bucket{") else {
            continue;
        };
        let Some(le) = rest.split("le=\"").nth(1).and_then(|r| r.split('"').next()) else {
            continue;
        };
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        let count: f64 = line
            .rsplit_once(' ')
            .and_then(|(_, c)| c.parse().ok())
            .unwrap_or(0.0);
        match buckets.iter_mut().find(|(b, _)| *b == bound) {
            Some((_, total)) => *total += count,
            None => buckets.push((bound, count)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The bucket bound (ms) under which the fraction `q` of the wakes between
/// two scrapes fell.
fn lateness_quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> f64 {
    let deltas: Vec<(f64, f64)> = after
        .iter()
        .map(|&(bound, count)| {
            let earlier = before
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0.0, |c| c.1);
            (bound, count - earlier)
        })
        .collect();
    let total = deltas.last().map_or(0.0, |d| d.1);
    deltas
        .iter()
        .find(|(_, cumulative)| *cumulative >= q * total)
        .map_or(f64::NAN, |(bound, _)| bound * 1e3)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// One window of `WINDOW` on `server`.
fn window(server: &Served) -> anyhow::Result<Window> {
    let scrape = || -> anyhow::Result<String> {
        Ok(ureq::get(format!("{}/metrics", server.url))
            .call()?
            .into_body()
            .read_to_string()?)
    };
    let state = server.state.as_deref().context("a state directory")?;
    // A scrape of a busy server takes a while: the window runs from the
    // middle of one to the middle of the other.
    let sample = || -> anyhow::Result<(String, Duration, u64, Instant)> {
        let asked = Instant::now();
        let metrics = scrape()?;
        let middle = asked + asked.elapsed() / 2;
        Ok((
            metrics,
            process_cpu(server.child.id())?,
            dir_bytes(state),
            middle,
        ))
    };
    let (before, cpu_before, bytes_before, started) = sample()?;
    std::thread::sleep(WINDOW);
    let (after, cpu_after, bytes_after, ended) = sample()?;
    let seconds = (ended - started).as_secs_f64();
    let rate = |name: &str| (summed(&after, name) - summed(&before, name)) / seconds;
    let wakes = rate("elmbox_timer_lateness_seconds_count");
    let late_s = rate("elmbox_timer_lateness_seconds_sum");
    Ok(Window {
        cores: (cpu_after - cpu_before).as_secs_f64() / seconds,
        commits_per_s: rate("elmbox_store_commits_total"),
        records_per_s: wakes,
        timers_per_s: rate("elmbox_timers_fired_total"),
        late_ms: if wakes > 0.0 {
            late_s / wakes * 1e3
        } else {
            0.0
        },
        late_p50_ms: lateness_quantile(&lateness_buckets(&before), &lateness_buckets(&after), 0.5),
        late_p99_ms: lateness_quantile(&lateness_buckets(&before), &lateness_buckets(&after), 0.99),
        bytes_per_s: (bytes_after as f64 - bytes_before as f64).max(0.0) / seconds,
    })
}

/// Median, and the lowest and highest, of `values`.
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

fn measure(server: &Served) -> anyhow::Result<Vec<Window>> {
    // The first window lets the apps settle after their deploys.
    std::thread::sleep(WINDOW);
    (0..WINDOWS).map(|_| window(server)).collect()
}

/// The servers measured side by side: a label, and the clock app's flags.
const CONFIGS: [(&str, &str); 3] = [
    ("every 100 ms", r#"{"tick":100}"#),
    ("every 1 s", r#"{"tick":1000}"#),
    ("no timer", "{}"),
];

pub fn section(root: &Path) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut measured = Vec::new();
    for (i, (label, flags)) in CONFIGS.iter().enumerate() {
        let deploying = Instant::now();
        let server = server_of_clocks(root, &format!("ticking-{i}"), flags)?;
        let deployed_in = deploying.elapsed();
        measured.push((*label, deployed_in, measure(&server)?));
    }
    writeln!(
        out,
        "{APPS} apps on one `elmbox serve` (the clock fixture, a state directory, never \
         parked), asked nothing, for {WINDOWS} windows of {} s after one to settle: ticking \
         (`Time.every`) every 100 ms, every second, and with no timer, each on a server of its \
         own in one run. Medians, with the lowest and highest window in brackets. Every app \
         also snapshots once a minute (`DurableOptions::snapshot_every`), which is part of the \
         cost; lateness percentiles are the bounds of the histogram buckets they fall in.\n",
        WINDOW.as_secs(),
    )?;
    let header: Vec<&str> = measured.iter().map(|(label, _, _)| *label).collect();
    writeln!(out, "| | {} |", header.join(" | "))?;
    writeln!(out, "|---|{}", "---:|".repeat(measured.len()))?;
    let row =
        |out: &mut String, label: &str, f: &dyn Fn(&Window) -> f64, unit: &str, digits: usize| {
            let cells: Vec<String> = measured
                .iter()
                .map(|(_, _, windows)| {
                    let (mid, low, high) = spread(windows.iter().map(f).collect());
                    match mid.is_nan() {
                        // No wakes to be late.
                        true => "–".to_string(),
                        false => format!("{mid:.digits$}{unit} [{low:.digits$}–{high:.digits$}]"),
                    }
                })
                .collect();
            writeln!(out, "| {label} | {} |", cells.join(" | "))
        };
    row(&mut out, "server CPU (cores)", &|w| w.cores, "", 2)?;
    row(
        &mut out,
        "timers fired per second",
        &|w| w.timers_per_s,
        "",
        0,
    )?;
    row(
        &mut out,
        "wakes (log records) per second",
        &|w| w.records_per_s,
        "",
        0,
    )?;
    row(
        &mut out,
        "store commits per second",
        &|w| w.commits_per_s,
        "",
        1,
    )?;
    row(
        &mut out,
        "state grows per second",
        &|w| w.bytes_per_s / 1024.0,
        " KiB",
        0,
    )?;
    row(
        &mut out,
        "mean lateness of a wake",
        &|w| w.late_ms,
        " ms",
        1,
    )?;
    row(
        &mut out,
        "half the wakes late by at most",
        &|w| w.late_p50_ms,
        " ms",
        1,
    )?;
    row(
        &mut out,
        "99% late by at most",
        &|w| w.late_p99_ms,
        " ms",
        1,
    )?;
    let deploys: Vec<String> = measured
        .iter()
        .map(|(label, took, _)| format!("{:.0} s ({label})", took.as_secs_f64()))
        .collect();
    writeln!(
        out,
        "\nDeploying the {APPS} apps took {}.",
        deploys.join(", ")
    )?;
    let median =
        |windows: &[Window], f: &dyn Fn(&Window) -> f64| spread(windows.iter().map(f).collect()).0;
    let (ticking, idle) = measured.split_at(2);
    let idle_cores = median(&idle[0].2, &|w| w.cores);
    for (label, _, windows) in ticking {
        let extra = median(windows, &|w| w.cores) - idle_cores;
        let per_tick = extra / median(windows, &|w| w.timers_per_s).max(1.0);
        writeln!(
            out,
            "Ticking {label}, a timer costs the server {:.0} µs of CPU over the apps with none \
             (the wake, the app's `update`, its log record and its share of a commit).",
            per_tick * 1e6
        )?;
    }
    Ok(out)
}
