//! A heavy real workload: elm-analyse 0.16.5 (npm; `make elm-analyse`
//! installs it), a ~700 KB Elm 0.19 `Platform.worker` we did not write,
//! analysing its own Elm sources, shipped in the same package.
//!
//! The test's driver (`tests/elm-analyse/driver.js`) runs the analysis once
//! on Node.js and records every message; each engine then gets the same
//! messages in the same order (elmbox through the library, QuickJS natively,
//! Node.js through the driver's `--replay`), so what is timed is the app
//! alone, and every engine's answers are checked against the recording.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use elmbox::{AppConfig, Runtime};
use elmbox_guest::native::NativeApp;
use serde_json::Value;

use crate::{ms, quiet_config, MB};

/// The driver's fixed clock start (the app reads no time; kept the same anyway).
const EPOCH_MS: f64 = 1_700_000_000_000.0;

/// One engine's run: load (evaluate + `init`), the analysis, memory after.
struct Run {
    load: Duration,
    analysis: Duration,
    memory: String,
}

pub fn section(root: &Path, runtime: &Runtime) -> anyhow::Result<String> {
    let package = std::env::var_os("ELMBOX_ELM_ANALYSE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/tools/elm-analyse-0.16.5/package"));
    let app_path = package.join("dist/app/backend-elm.js");
    if !app_path.is_file() {
        return Ok(format!(
            "Skipped: {} is missing (`make elm-analyse` installs it).\n",
            app_path.display()
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Ok("Skipped: the driver needs Node.js, which is not installed.\n".into());
    }
    let driver = root.join("tests/elm-analyse/driver.js");
    let scratch = root.join("target/bench-elm-analyse");
    std::fs::create_dir_all(&scratch)?;
    let transcript_path = scratch.join("transcript.json");

    // Record the analysis once, on Node, answering from the package's sources.
    let (project, files, bytes) = read_project(&package)?;
    let mut child = Command::new("node")
        .arg(&driver)
        .arg("--app")
        .arg(&app_path)
        .args(["--engine", "node", "--project", "-", "--out"])
        .arg(&transcript_path)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("the driver's stdin")?
        .write_all(project.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "the driver failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let transcript: Value = serde_json::from_slice(&std::fs::read(&transcript_path)?)?;
    if !transcript["error"].is_null() {
        bail!("the recording broke off: {}", transcript["error"]);
    }
    let steps = transcript["steps"].as_array().context("steps")?;
    // The messages as `elmbox run --ports` reads them, and the answers as
    // the driver recorded them (keys in their order: preserve_order).
    let events: Vec<String> = steps[1..].iter().map(|s| s["sent"].to_string()).collect();
    let answers: Vec<&str> = steps[1..]
        .iter()
        .map(|s| s["line"].as_str().unwrap_or_default())
        .collect();
    let config = quiet_config()
        .epoch_ms(EPOCH_MS)
        .module("Analyser")
        .all_ports(true)
        .flags(transcript["flags"].clone());

    let traffic: usize = events.iter().map(String::len).sum();
    let replies: usize = answers.iter().map(|a| a.len()).sum();
    eprintln!("bench: elm-analyse on elmbox");
    let wasm = run_elmbox(runtime, &app_path, config.clone(), &events, &answers)?;
    eprintln!("bench: elm-analyse natively");
    let native = run_native(&app_path, &config, &events, &answers)?;
    eprintln!("bench: elm-analyse on Node.js");
    let node = run_node(&driver, &app_path, &transcript_path)?;

    let mut doc = String::new();
    writeln!(
        doc,
        "elm-analyse 0.16.5 (`dist/app/backend-elm.js` of the npm package: {} KB of Elm 0.19 output, \
         module `Analyser`, {} ports) analysing its own Elm sources from the same package: {} files, {} KB. \
         The test's driver (`tests/elm-analyse/driver.js`) records the analysis on Node.js; \
         each engine is then sent the same {} messages ({:.1} MB) in the same order and must answer \
         each with the recorded values ({} in all, {:.1} MB). *Load* is evaluating the app and `init`; \
         *analysis* is every message after that, to the report. One run each. Native QuickJS runs with \
         its stack limit raised to {} MiB (the analysis recurses past the default 256 KiB; in the sandbox \
         the 8 MiB wasm stack bounds it), and is a 64-bit build: wider values and pointers, a larger heap.\n",
        std::fs::metadata(&app_path)?.len() / 1024,
        port_count(&std::fs::read_to_string(&app_path)?),
        files,
        bytes / 1024,
        events.len(),
        traffic as f64 / MB,
        transcript["messagesOut"],
        replies as f64 / MB,
        NATIVE_JS_STACK >> 20,
    )?;
    writeln!(
        doc,
        "| engine | load | analysis | analysis vs native QuickJS | memory after the analysis |"
    )?;
    writeln!(doc, "|---|---:|---:|---:|---|")?;
    for (engine, r) in [
        ("elmbox (Wasm, all ports)", &wasm),
        ("native QuickJS", &native),
        ("Node.js", &node),
    ] {
        writeln!(
            doc,
            "| {engine} | {} | {} | {:.2}× the time | {} |",
            ms(r.load),
            seconds(r.analysis),
            r.analysis.as_secs_f64() / native.analysis.as_secs_f64(),
            r.memory
        )?;
    }
    Ok(doc)
}

/// The package's Elm project (its elm.json, elm-analyse.json and the `.elm`
/// files of its source directories) as the driver takes it, `{path:
/// content}`; how many `.elm` files, and their bytes.
fn read_project(package: &Path) -> anyhow::Result<(Value, usize, u64)> {
    let elm_text = std::fs::read_to_string(package.join("elm.json"))?;
    let elm_json: Value = serde_json::from_str(&elm_text)?;
    let mut project = serde_json::Map::new();
    project.insert("elm.json".into(), elm_text.into());
    let config = package.join("elm-analyse.json");
    if config.is_file() {
        project.insert(
            "elm-analyse.json".into(),
            std::fs::read_to_string(config)?.into(),
        );
    }
    let (mut files, mut bytes) = (0, 0);
    let mut pending: Vec<PathBuf> = elm_json["source-directories"]
        .as_array()
        .context("source-directories")?
        .iter()
        .filter_map(|d| d.as_str().map(PathBuf::from))
        .collect();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(package.join(&dir))? {
            let rel = dir.join(entry?.file_name());
            let full = package.join(&rel);
            if full.is_dir() {
                pending.push(rel);
            } else if rel.extension().is_some_and(|e| e == "elm") {
                let text = std::fs::read_to_string(&full)?;
                files += 1;
                bytes += text.len() as u64;
                project.insert(rel.to_string_lossy().into_owned(), text.into());
            }
        }
    }
    Ok((Value::Object(project), files, bytes))
}

/// Incoming and outgoing ports the app declares (`var $… = _Platform_…Port(`).
fn port_count(js: &str) -> usize {
    js.matches("= _Platform_incomingPort(").count()
        + js.matches("= _Platform_outgoingPort(").count()
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Fails unless the engine answered message `i` as recorded.
fn check(i: usize, got: &[u8], expected: &str) -> anyhow::Result<()> {
    if got != expected.as_bytes() {
        let at = got
            .iter()
            .zip(expected.as_bytes())
            .take_while(|(a, b)| a == b)
            .count();
        let show = |s: &[u8]| {
            String::from_utf8_lossy(&s[at.saturating_sub(40)..(at + 80).min(s.len())]).into_owned()
        };
        bail!(
            "message {} was answered differently from the recording, at byte {at}:\n  recorded: {}\n  got:      {}",
            i + 1,
            show(expected.as_bytes()),
            show(got)
        );
    }
    Ok(())
}

fn run_elmbox(
    runtime: &Runtime,
    app_path: &Path,
    config: AppConfig,
    events: &[String],
    answers: &[&str],
) -> anyhow::Result<Run> {
    let js = std::fs::read(app_path)?;
    let started = Instant::now();
    let mut app = runtime.load(&js, config)?;
    let load = started.elapsed();
    let mut got = Vec::with_capacity(events.len());
    let started = Instant::now();
    for e in events {
        got.push(app.dispatch_json(e)?);
    }
    let analysis = started.elapsed();
    for (i, (got, expected)) in got.iter().zip(answers).enumerate() {
        check(i, got.as_bytes(), expected)?;
    }
    let m = app.memory()?;
    Ok(Run {
        load,
        analysis,
        memory: format!(
            "linear {:.1} MB, QuickJS heap {:.1} MB",
            m.linear_memory_bytes as f64 / MB,
            m.js_heap_bytes as f64 / MB
        ),
    })
}

/// QuickJS's own stack limit for the native run, and its thread's stack.
/// The analysis recurses deeper than the default 256 KiB limit allows
/// (in the sandbox, the 8 MiB wasm stack bounds it instead).
const NATIVE_JS_STACK: usize = 32 << 20;
const NATIVE_THREAD_STACK: usize = 64 << 20;

fn run_native(
    app_path: &Path,
    config: &AppConfig,
    events: &[String],
    answers: &[&str],
) -> anyhow::Result<Run> {
    let js = std::fs::read(app_path)?;
    let mut settings = config.settings()?;
    settings.max_stack_size = NATIVE_JS_STACK as u32;
    // The engine keeps its state per thread: load and run in one thread.
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(NATIVE_THREAD_STACK)
            .spawn_scoped(scope, || {
                let started = Instant::now();
                let mut app = NativeApp::load(settings, &js).map_err(anyhow::Error::msg)?;
                let load = started.elapsed();
                let mut got = Vec::with_capacity(events.len());
                let started = Instant::now();
                for e in events {
                    got.push(app.dispatch(e.as_bytes()).map_err(anyhow::Error::msg)?);
                }
                let analysis = started.elapsed();
                for (i, (got, expected)) in got.iter().zip(answers).enumerate() {
                    check(i, got, expected)?;
                }
                Ok(Run {
                    load,
                    analysis,
                    memory: format!("QuickJS heap {:.1} MB", app.heap_bytes() as f64 / MB),
                })
            })?
            .join()
            .map_err(|_| anyhow::anyhow!("the native run panicked"))?
    })
}

/// The driver's `--replay`: the same messages on Node.js, the app in a `vm`
/// context on the same virtual clock; it checks the answers itself.
fn run_node(driver: &Path, app_path: &Path, transcript: &Path) -> anyhow::Result<Run> {
    let out = Command::new("node")
        .arg(driver)
        .arg("--app")
        .arg(app_path)
        .arg("--replay")
        .arg(transcript)
        .output()?;
    if !out.status.success() {
        bail!(
            "the replay failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let r: Value = serde_json::from_slice(&out.stdout)?;
    let seconds = |key: &str| Duration::from_secs_f64(r[key].as_f64().unwrap_or(0.0));
    Ok(Run {
        load: seconds("loadSeconds"),
        analysis: seconds("analysisSeconds"),
        memory: format!(
            "V8 heap used {:.1} MB, RSS {:.1} MB",
            r["heapUsed"].as_f64().unwrap_or(0.0) / MB,
            r["rss"].as_f64().unwrap_or(0.0) / MB
        ),
    })
}
