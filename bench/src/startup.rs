//! Start-up: one event answered by a whole `elmbox run` process, from its
//! JavaScript and from a built module, with the compiled guest taken from
//! the code cache and without it, against Node.js doing the same with
//! `js-runner.js`. Each command runs in turn with the others, so drift
//! in the machine's speed touches all alike; medians of the wall time and of
//! the peak RSS (the kernel's own figure for the finished child).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::fixtures;

/// Runs of each command, after one that is not counted.
const RUNS: usize = 11;
const EVENT: &str = "click\n";

struct Measured {
    label: String,
    times: Vec<Duration>,
    peaks_kb: Vec<i64>,
}

/// Runs `command` once with `EVENT` on its stdin: wall time and peak RSS.
fn once(command: &mut Command) -> anyhow::Result<(Duration, i64)> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(EVENT.as_bytes())?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the child is ours and not yet waited for; wait4 reaps it and
    // fills `status` and `usage`.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let took = started.elapsed();
    if pid < 0 {
        bail!(
            "waiting for {command:?}: {}",
            std::io::Error::last_os_error()
        );
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
        }
        bail!("{command:?} failed ({status}): {err}");
    }
    Ok((took, usage.ru_maxrss))
}

fn median<T: Copy + Ord>(values: &[T]) -> T {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// [`section`], from a fresh process of this program: Linux carries a
/// parent's peak RSS into a child it starts (through `exec`), so children
/// of this process, grown by the sections before, would all report its
/// peak instead of their own.
pub fn in_a_small_process() -> anyhow::Result<String> {
    let out = Command::new(std::env::current_exe()?)
        .args(["--section", "startup"])
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("the start-up section failed");
    }
    Ok(String::from_utf8(out.stdout)?)
}

pub fn section(root: &Path) -> anyhow::Result<String> {
    let scratch = std::env::temp_dir().join(format!("elmbox-bench-startup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let elmbox = root.join("target/release/elmbox");
    let cache = scratch.join("code-cache");
    let js = fixtures(root).join("counter.js");
    let wasm = scratch.join("counter.wasm");
    let built = Command::new(&elmbox)
        .arg("build")
        .arg(&js)
        .arg("-o")
        .arg(&wasm)
        .env("ELMBOX_CODE_CACHE", &cache)
        .output()?;
    if !built.status.success() {
        bail!("elmbox build: {}", String::from_utf8_lossy(&built.stderr));
    }
    let events = scratch.join("events.txt");
    std::fs::write(&events, EVENT)?;

    let run = |app: &Path, cache: &Path| {
        let mut command = Command::new(&elmbox);
        command.arg("run").arg(app).env("ELMBOX_CODE_CACHE", cache);
        command
    };
    let off = PathBuf::from("off");
    let mut commands: Vec<(String, Box<dyn Fn() -> Command>)> = vec![
        (
            "`elmbox run counter.js`".into(),
            Box::new(|| run(&js, &cache)),
        ),
        (
            "`elmbox run counter.wasm` (built by `elmbox build`)".into(),
            Box::new(|| run(&wasm, &cache)),
        ),
        (
            "`elmbox run counter.js` without the code cache (compiles the guest)".into(),
            Box::new(|| run(&js, &off)),
        ),
    ];
    let node = Command::new("node").arg("--version").output().is_ok();
    if node {
        let runner = root.join("bench/js-runner.js");
        let js = js.clone();
        commands.push((
            "Node.js, `node js-runner.js counter.js` (the same event)".into(),
            Box::new(move || {
                let mut command = Command::new("node");
                command.arg(&runner).arg(&js).arg(&events).arg("0");
                command
            }),
        ));
    }
    let mut measured: Vec<Measured> = commands
        .iter()
        .map(|(label, _)| Measured {
            label: label.clone(),
            times: Vec::new(),
            peaks_kb: Vec::new(),
        })
        .collect();
    for round in 0..=RUNS {
        for ((_, make), m) in commands.iter().zip(&mut measured) {
            let (took, peak) = once(&mut make())?;
            if round > 0 {
                m.times.push(took);
                m.peaks_kb.push(peak);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);

    let mut doc = String::new();
    writeln!(
        doc,
        "One event (`click`) through a whole process, the counter fixture: start, answer, \
         exit. Medians of {RUNS} runs, each command in turn with the others; peak RSS is the \
         kernel's figure for the finished process. The code cache holds the compiled guest \
         after the first run (`ELMBOX_CODE_CACHE`).\n"
    )?;
    let node_time = node.then(|| median(&measured.last().expect("node measured").times));
    writeln!(doc, "| command | time | peak RSS | / Node.js's time |")?;
    writeln!(doc, "|---|---:|---:|---:|")?;
    for m in &measured {
        let time = median(&m.times);
        writeln!(
            doc,
            "| {} | {:.1} ms | {:.1} MB | {} |",
            m.label,
            time.as_secs_f64() * 1e3,
            median(&m.peaks_kb) as f64 / 1024.0,
            node_time.map_or("no Node.js".into(), |node| format!(
                "{:.2}",
                time.as_secs_f64() / node.as_secs_f64()
            ))
        )?;
    }
    Ok(doc)
}
