//! Effect managers that take a message the moment it is sent
//! (`elmbox-optimize`'s `managers.rs`), on Elm's real runtime: the runtime
//! of elm-analyse's compiled app (installed by `make test`), with
//! `tests/managers/scenario.js` spliced into its scope. The scenario's two
//! managers and app send messages every way a manager's message can go
//! (at once, to itself while it runs, to other processes, to the app,
//! through chains, sleeps, spawns and a failure), and what happens, in
//! order, must be the same with the rewrite as without it, on Node.js.
//!
//! Breaking the new code the ways it could plausibly be wrong (a state not
//! kept, a message to itself taken after the queue, the queue not drained,
//! the scheduler not marked busy, a `fail` taken for a `succeed`) makes
//! these traces differ; that was checked when the test was written.

use std::path::Path;
use std::process::Command;

use elmbox_tests::elm_analyse_app;

/// elm-analyse's program with the scenario inside its scope.
fn program() -> String {
    let app = std::fs::read_to_string(elm_analyse_app()).unwrap();
    let scenario =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("managers/scenario.js"))
            .unwrap();
    let end = app
        .rfind("}(this));")
        .expect("Elm's program ends its scope with `}(this));`");
    format!("{}\n{scenario}\n{}", &app[..end], &app[end..])
}

/// What the program did, one line per step, run by Node.js.
fn trace(label: &str, program: &str) -> Vec<String> {
    let file =
        std::env::temp_dir().join(format!("elmbox-managers-{label}-{}.js", std::process::id()));
    std::fs::write(&file, program).unwrap();
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("managers/run.js");
    let out = Command::new("node")
        .arg(&runner)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("node starts (Node.js must be on the PATH): {e}"));
    std::fs::remove_file(&file).unwrap();
    assert!(
        out.status.success(),
        "{label}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{label} printed no trace ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Where `line` is in `trace`.
fn at(trace: &[String], line: &str) -> usize {
    trace
        .iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no `{line}` in {trace:#?}"))
}

#[test]
fn managers_taking_messages_at_once_do_what_elms_scheduler_does() {
    let original = program();
    let rewritten = elmbox_optimize::optimize(&original).expect("real Elm output is rewritten");
    assert!(rewritten.managers_take_messages_at_once);
    assert_eq!(
        rewritten.source.lines().count(),
        original.lines().count(),
        "every line keeps its number"
    );

    let elm = trace("elm", &original);
    // The scenario did what it says, on Elm's own scheduler…
    assert_eq!(elm.last().map(String::as_str), Some("done"));
    // …A's message to itself, sent while it ran, before the one it sent
    // another process first;
    assert!(at(&elm, "A self s1 state 4") < at(&elm, "listener o1"));
    // a spawned process, run before the next manager hears of the event;
    assert!(at(&elm, "spawned p1") < at(&elm, "B effects 1 state 4"));
    // a chain's state kept for the next event;
    assert!(at(&elm, "A chain 16") < at(&elm, "A effects 1 state 116"));
    // the app's update, called by A while it ran, after that event's
    // managers;
    assert!(at(&elm, "update from A model 6") > at(&elm, "A effects 1 state 116"));
    // messages that waited while A slept, taken when it woke;
    assert!(at(&elm, "A woke 140") < at(&elm, "A effects 1 state 1140"));
    // and nothing for A once its effects failed, while B goes on.
    let gone = at(&elm, "update A is gone model 13");
    assert_eq!(elm[gone + 1], "B effects 1 state 14");

    let rewritten = trace("rewritten", &rewritten.source);
    assert_eq!(rewritten, elm, "the rewritten runtime did otherwise");
}

#[test]
fn a_runtime_that_is_not_elms_word_for_word_keeps_its_managers() {
    let original = program();
    // One declaration the new code stands on, changed (a comment is
    // enough: the check is on the text) or declared a second time.
    let changes = [
        (
            "function _Scheduler_step(proc)\n{",
            "function _Scheduler_step(proc)\n{ /**/",
        ),
        (
            "function _Scheduler_enqueue(proc)\n{",
            "function _Scheduler_enqueue(proc)\n{ /**/",
        ),
        (
            "function _Scheduler_rawSend(proc, msg)\n{",
            "function _Scheduler_rawSend(proc, msg)\n{ /**/",
        ),
        (
            "function _Scheduler_receive(callback)\n{",
            "function _Scheduler_receive(callback)\n{ /**/",
        ),
        (
            "function _Scheduler_rawSpawn(task)\n{",
            "function _Scheduler_rawSpawn(task)\n{ /**/",
        ),
        (
            "var _Scheduler_working = false;",
            "var _Scheduler_working = 0;",
        ),
        (
            "var _Scheduler_queue = [];",
            "var _Scheduler_queue = [ ];\nfunction f(_Scheduler_queue) {}",
        ),
        (
            "var _Scheduler_andThen = F2(function(callback, task)\n{",
            "var _Scheduler_andThen = F2(function(callback, task)\n{ /**/",
        ),
        (
            "function _Platform_instantiateManager(info, sendToApp)\n{",
            "function _Platform_instantiateManager(info, sendToApp)\n{ /**/",
        ),
    ];
    for (from, to) in changes {
        assert_eq!(original.matches(from).count(), 1, "{from}");
        let changed = original.replacen(from, to, 1);
        let rewritten = elmbox_optimize::optimize(&changed).expect("still Elm's calls");
        assert!(
            !rewritten.managers_take_messages_at_once,
            "rewritten after {from:?} became {to:?}"
        );
        assert!(!rewritten.source.contains("elmboxDeliver"));
    }
}
