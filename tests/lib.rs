//! Shared helpers for the end-to-end tests: one compiled runtime per test
//! binary, and the example apps as JavaScript.
//!
//! Every example runs as our hand-written fixture (`make fixtures` assembles
//! them into `target/fixtures/`), and also as real `elm make` output when
//! `ELMBOX_ELM_OUT` names a folder holding `counter.js`, `wordcount.js` and
//! `timers.js` (`make elm` writes them where Elm's package server is reachable).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use elmbox::{App, AppConfig, Console, ConsoleLine, Runtime};

/// Fixed start of the virtual clock, so timestamps in responses are exact.
pub const EPOCH_MS: f64 = 1_700_000_000_000.0;

/// The guest compiled once and shared by every test in the binary.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new().expect("the embedded guest compiles"))
}

/// A runtime whose apps may have CPU deadlines (epoch interruption on).
pub fn deadline_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::with_deadlines().expect("the embedded guest compiles"))
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One build of an example app: a label for messages and its JavaScript.
pub struct Source {
    pub label: String,
    pub js: Vec<u8>,
}

/// The example `name` as our fixture, plus real Elm output when available.
pub fn sources(name: &str) -> Vec<Source> {
    let fixtures = std::env::var_os("ELMBOX_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/fixtures"));
    let fixture = fixtures.join(format!("{name}.js"));
    let js = std::fs::read(&fixture).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `make fixtures` (make test does)",
            fixture.display()
        )
    });
    let mut all = vec![Source {
        label: format!("fixture {name}"),
        js,
    }];
    if let Some(dir) = std::env::var_os("ELMBOX_ELM_OUT") {
        let compiled = Path::new(&dir).join(format!("{name}.js"));
        let js = std::fs::read(&compiled)
            .unwrap_or_else(|e| panic!("ELMBOX_ELM_OUT is set but {}: {e}", compiled.display()));
        all.push(Source {
            label: format!("elm make {name}"),
            js,
        });
    }
    all
}

/// Default test configuration: fixed clock, console collected.
pub fn config() -> (AppConfig, Arc<Mutex<Vec<ConsoleLine>>>) {
    let (console, lines) = Console::collect();
    (
        AppConfig::default().epoch_ms(EPOCH_MS).console(console),
        lines,
    )
}

/// Loads `js` with the default test configuration.
pub fn load(js: &[u8]) -> App {
    runtime().load(js, config().0).expect("the app loads")
}

/// A minimal app in the shape of Elm output, for error cases: `body` runs
/// inside the IIFE and must define `init(args)`.
pub fn elm_like(body: &str) -> String {
    format!(
        "(function(scope){{'use strict';\n{body}\nscope['Elm'] = {{ Main: {{ init: init }} }};\n}}(this));"
    )
}

/// An app whose answers draw on `Math.random` and the clock: each event is
/// answered with its number, a draw and `Date.now()`, and again with a draw
/// from a timer 1 s later. What a restored or replayed app must repeat.
pub fn dicey_app() -> String {
    elm_like(
        "var subs = [], n = 0;
         function emit(v) { subs.forEach(function (s) { s(v); }); }
         function init() { return { ports: {
           onEvent: { send: function (v) {
             n++;
             var mine = n;
             emit({ n: mine, draw: Math.random(), now: Date.now() });
             setTimeout(function () { emit({ later: mine, draw: Math.random(), now: Date.now() }); }, 1000);
           } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    )
}

/// Path of the `elmbox` binary built by `make build`.
pub fn elmbox_bin() -> PathBuf {
    let bin = std::env::var_os("ELMBOX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/release/elmbox"));
    assert!(
        bin.is_file(),
        "{} missing: run `make build` (make test does)",
        bin.display()
    );
    bin
}

/// Path of a fixture assembled by `make fixtures`.
pub fn fixture(name: &str) -> String {
    let dir = std::env::var("ELMBOX_FIXTURES")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/fixtures").to_string());
    format!("{dir}/{name}.js")
}

/// Runs `program` with `args`, feeding it `stdin`; returns what it did.
pub fn run_with_stdin(program: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", program.display()));
    let mut input = child.stdin.take().unwrap();
    // A program that exits early may not read it all; that is its answer.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

/// Runs the `elmbox` binary.
pub fn elmbox(args: &[&str], stdin: &[u8]) -> Output {
    run_with_stdin(&elmbox_bin(), args, stdin)
}

/// Each stdout line parsed as JSON.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An app with a count, and a few ways to break its limits, chosen by the event.
pub fn unruly_app() -> String {
    elm_like(
        "var subs = [], count = 0;
         function init() { return { ports: {
           onEvent: { send: function (v) {
             count++;
             if (v === 'spin') { for (;;) {} }
             if (v === 'hoard') { var h = []; for (;;) h.push(new Array(4096).fill(count)); }
             if (v === 'recurse') { (function deeper(n) { return deeper(n + 1) + 1; })(0); }
             if (v === 'storm') { (function again() { setTimeout(again, 0); })(); }
             subs.forEach(function (s) { s({ count: count, event: v }); });
           } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    )
}
