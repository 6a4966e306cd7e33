//! A replay's memory does not grow with the log: the counter's state with
//! 20,000 and with 200,000 events, each deployed anew by replaying its whole
//! log (`run --state --deploy`, another version: other flags), and the peak
//! resident memory of each `elmbox` process measured by the kernel
//! (`wait4`'s `ru_maxrss`). Holding the log in memory made the second cost
//! tens of megabytes more than the first (issue 25 measured 49 MB after
//! 100,000 events and 235 MB after 1,000,000).

use std::io::Write;
use std::process::{Command, Stdio};

use elmbox_tests::{elmbox_bin, fixture};

use crate::served::scratch;

/// Runs `elmbox ARGS` with `stdin`; its exit status and peak RSS in KiB.
fn peak_rss(args: &[&str], stdin: &[u8]) -> (i32, u64) {
    let mut child = Command::new(elmbox_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("elmbox starts");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // Reaped here, with its own resource use; `child` is not waited for.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    std::mem::forget(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, usage.ru_maxrss as u64)
}

fn events(n: usize) -> Vec<u8> {
    (1..=n)
        .flat_map(|i| format!("e{i}\n").into_bytes())
        .collect()
}

/// The peak RSS of a deploy that replays a log of `n` counter events.
fn deploy_after(n: usize) -> u64 {
    let state = scratch(&format!("replay-memory-{n}")).join("state");
    let state = state.to_str().unwrap();
    let counter = fixture("counter");
    let (code, _) = peak_rss(&["run", &counter, "--state", state], &events(n));
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
    let (code, peak) = peak_rss(&args, b"");
    assert_eq!(code, 0, "deploying over {n} events");
    peak
}

#[test]
fn a_replay_of_a_long_log_stays_within_a_fixed_memory_bound() {
    let short = deploy_after(20_000);
    let long = deploy_after(200_000);
    println!("peak RSS of a replay deploy: 20,000 events {short} KiB, 200,000 events {long} KiB");
    // Ten times the log, the same memory give or take what the sandbox and
    // the allocator do (the log alone was ~20 MB more, held whole).
    assert!(
        long < short + 8 * 1024,
        "a replay of 200,000 events took {long} KiB at its peak, one of 20,000 {short} KiB"
    );
}
