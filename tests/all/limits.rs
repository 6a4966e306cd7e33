//! Per-app limits: each one, when broken, gives an error that names it, and
//! every other app in the process keeps answering.

use std::time::{Duration, Instant};

use elmbox::{App, AppError, Error, SandboxLimits};
use elmbox_tests::{config, deadline_runtime, elm_like, load, runtime};
use serde_json::json;

/// An app with a few ways to misbehave, chosen by the event.
fn unruly_app() -> String {
    elm_like(
        "var subs = [];
         function init() { return { ports: {
           onEvent: { send: function (v) {
             if (v === 'spin') { for (;;) {} }
             if (v === 'busy') { var x = 0; for (var i = 0; i < 100000; i++) { x += i; } }
             if (v === 'hoard') { var h = []; for (;;) h.push(new Array(4096).fill(1)); }
             if (v === 'shout') { subs.forEach(function (s) { s('x'.repeat(1 << 20)); }); return; }
             subs.forEach(function (s) { s(v); });
           } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    )
}

fn with_limits(limits: SandboxLimits) -> App {
    let runtime = if limits.deadline.is_some() {
        deadline_runtime()
    } else {
        runtime()
    };
    runtime
        .with_limits(limits)
        .unwrap()
        .load(unruly_app(), config().0)
        .unwrap()
}

fn neighbour_answers() {
    let mut neighbour = load(unruly_app().as_bytes());
    assert_eq!(neighbour.dispatch("hello").unwrap(), vec![json!("hello")]);
}

#[test]
fn an_endless_loop_is_stopped_at_its_deadline() {
    // Deadlines count wall time: far above what loading and a small event
    // take on a busy machine, so only the endless loop meets it.
    let mut app = with_limits(SandboxLimits {
        deadline: Some(Duration::from_millis(1000)),
        ..SandboxLimits::default()
    });
    assert_eq!(app.dispatch("ok").unwrap(), vec![json!("ok")]);
    let started = Instant::now();
    let err = app.dispatch("spin").expect_err("stopped");
    // A bound, not a timing: stopped, and long before anything would notice.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, Error::DeadlineExceeded { limit_ms: 1000 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("CPU deadline of 1000 ms"), "{err}");
    assert!(matches!(app.dispatch("ok"), Err(Error::Failed { .. })));
    neighbour_answers();
}

/// Runaway work of every shape QuickJS runs without returning to the
/// host: each is stopped at the deadline by QuickJS's interrupt handler
/// (which the guest keeps), the app marked failed. The negative control is
/// the same app without a deadline, which still runs after 3 s.
#[test]
fn every_kind_of_runaway_is_stopped_at_its_deadline() {
    let runaways = [
        // A promise job that queues the next one, for ever.
        "function again() { Promise.resolve().then(again); } again();",
        // A timer whose callback never returns.
        "setTimeout(function () { for (;;) {} }, 0);",
        // Deep recursion that never overflows: a loop through calls.
        "function f(n) { return n > 100 ? 0 : f(n + 1) + f(n + 1); } f(0);",
        // A regular expression that backtracks exponentially.
        "/^(a+)+$/.test('a'.repeat(40) + 'b');",
        // Sorting with a comparator that spins.
        "[3, 1, 2].sort(function (a, b) { for (;;) {} });",
    ];
    let deadline = Duration::from_millis(300);
    for runaway in runaways {
        let js = elm_like(&format!(
            "function init() {{ return {{ ports: {{
               onEvent: {{ send: function (v) {{ if (v === 'go') {{ {runaway} }} }} }},
               respond: {{ subscribe: function (f) {{}} }} }} }}; }}"
        ));
        let mut app = deadline_runtime()
            .with_limits(SandboxLimits {
                deadline: Some(deadline),
                ..SandboxLimits::default()
            })
            .unwrap()
            .load(&js, config().0)
            .unwrap();
        let started = Instant::now();
        let err = app.dispatch("go").expect_err("stopped");
        assert!(
            matches!(err, Error::DeadlineExceeded { limit_ms: 300 }),
            "{runaway}: {err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{runaway}");
        assert!(matches!(app.dispatch("ok"), Err(Error::Failed { .. })));
    }
    // The control: without a deadline, the first still runs after 3 s.
    let js = elm_like(&format!(
        "function init() {{ return {{ ports: {{
           onEvent: {{ send: function (v) {{ {} }} }},
           respond: {{ subscribe: function (f) {{}} }} }} }}; }}",
        runaways[0]
    ));
    let mut app = runtime().load(&js, config().0).unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = app.dispatch("go");
        let _ = done.send(());
    });
    assert!(
        finished.recv_timeout(Duration::from_secs(3)).is_err(),
        "a runaway without a deadline stopped by itself: the test would prove nothing"
    );
}

#[test]
fn allocation_without_end_stops_at_the_linear_memory_cap() {
    let cap = 24 << 20;
    let mut app = with_limits(SandboxLimits {
        max_memory_bytes: Some(cap),
        ..SandboxLimits::default()
    });
    let err = app.dispatch("hoard").expect_err("capped");
    match &err {
        Error::MemoryCapReached { limit, .. } => assert_eq!(*limit, cap),
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .contains("linear memory cap of 25165824 bytes"),
        "{err}"
    );
    // The cap held whatever happened next.
    if !err.is_fatal() {
        assert!(app.memory().unwrap().linear_memory_bytes <= cap as u64);
        assert_eq!(app.dispatch("after").unwrap(), vec![json!("after")]);
    }
    neighbour_answers();
}

#[test]
fn a_response_over_the_output_limit_is_refused() {
    let mut app = with_limits(SandboxLimits {
        max_output_bytes: 64 << 10,
        ..SandboxLimits::default()
    });
    let err = app.dispatch("shout").expect_err("too large");
    assert!(
        matches!(err, Error::App { error: AppError::OutputTooLarge { limit: 65536, size }, .. }
            if size > 1 << 20),
        "{err:?}"
    );
    assert!(!err.is_fatal());
    assert_eq!(app.dispatch("calm").unwrap(), vec![json!("calm")]);
}

#[test]
fn a_deadline_does_not_touch_apps_that_keep_to_it() {
    // The deadline is per call: events that each take a few ms keep to it
    // however long they run in all. Run until they took three deadlines.
    let deadline = Duration::from_millis(1000);
    let mut app = with_limits(SandboxLimits {
        deadline: Some(deadline),
        ..SandboxLimits::default()
    });
    let started = Instant::now();
    let mut events = 0;
    while started.elapsed() < 3 * deadline {
        assert_eq!(app.dispatch("busy").unwrap(), vec![json!("busy")]);
        events += 1;
        assert!(events < 1_000_000, "busy events take no time");
    }
}

#[test]
fn deadlines_need_a_runtime_that_supports_them() {
    let limits = SandboxLimits {
        deadline: Some(Duration::from_millis(10)),
        ..SandboxLimits::default()
    };
    // Refused where the limited runtime is made, before any app loads.
    let err = runtime().with_limits(limits).err().expect("refused");
    assert!(
        matches!(&err, Error::Config(m) if m.contains("Runtime::with_deadlines")),
        "{err:?}"
    );
}
