//! A replay's memory does not grow with the log: the counter's state with
//! 20,000 and with 200,000 events, each deployed anew by replaying its whole
//! log (`run --state --deploy`, another version: other flags), and the peak
//! resident memory of each `elmbox` process measured by the kernel
//! (`ru_maxrss`, through GNU time). Holding the log in memory made the second cost
//! tens of megabytes more than the first (issue 25 measured 49 MB after
//! 100,000 events and 235 MB after 1,000,000).

use std::io::Write;
use std::process::{Command, Stdio};

use elmbox_tests::{elmbox_bin, fixture};

use crate::served::scratch;

/// A code cache of the test's own, warmed: a process that compiles the
/// guest (a cache another test cleared, a guest just rebuilt) peaks at
/// ~170 MB whatever it replays, which would measure the compiler.
fn warm_code_cache() -> std::path::PathBuf {
    let cache = scratch("replay-memory-code-cache");
    let warmed = Command::new(elmbox_bin())
        .args(["run", &fixture("counter")])
        .env("ELMBOX_CODE_CACHE", &cache)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("elmbox starts");
    assert!(warmed.success());
    cache
}

/// Runs `elmbox ARGS` with `stdin` and the code cache `cache`; its exit
/// status and peak RSS in KiB. Through GNU time, which forks it from a small
/// process: a process started straight from this one (vfork, then exec)
/// carries this test process's own peak into its `ru_maxrss`, over 170 MB
/// while other tests run here.
fn peak_rss(args: &[&str], stdin: &[u8], cache: &std::path::Path) -> (i32, u64) {
    let report = cache.with_extension(format!("rss-{}", std::process::id()));
    let mut child = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(elmbox_bin())
        .args(args)
        .env("ELMBOX_CODE_CACHE", cache)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("GNU time (Debian's `time`, which make test installs) runs elmbox");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&report).unwrap();
    // The last line; a command that failed has a line about it before.
    let peak = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("GNU time wrote {text:?}"));
    (status.code().unwrap_or(-1), peak)
}

fn events(n: usize) -> Vec<u8> {
    (1..=n)
        .flat_map(|i| format!("e{i}\n").into_bytes())
        .collect()
}

/// The peak RSS of a deploy that replays a log of `n` counter events.
fn deploy_after(n: usize, cache: &std::path::Path) -> u64 {
    let state = scratch(&format!("replay-memory-{n}")).join("state");
    let state = state.to_str().unwrap();
    let counter = fixture("counter");
    let (code, _) = peak_rss(&["run", &counter, "--state", state], &events(n), cache);
    assert_eq!(code, 0, "recording {n} events");
    let args = [
        "run",
        &counter,
        "--state",
        state,
        "--deploy",
        "--flags",
        r#"{"start":0}"#,
    ];
    let (code, peak) = peak_rss(&args, b"", cache);
    assert_eq!(code, 0, "deploying over {n} events");
    peak
}

#[test]
fn a_replay_of_a_long_log_stays_within_a_fixed_memory_bound() {
    let cache = warm_code_cache();
    let short = deploy_after(20_000, &cache);
    let long = deploy_after(200_000, &cache);
    println!("peak RSS of a replay deploy: 20,000 events {short} KiB, 200,000 events {long} KiB");
    // Ten times the log, the same memory give or take what the sandbox and
    // the allocator do (the log alone was ~20 MB more, held whole).
    assert!(
        long < short + 8 * 1024,
        "a replay of 200,000 events took {long} KiB at its peak, one of 20,000 {short} KiB"
    );
}
