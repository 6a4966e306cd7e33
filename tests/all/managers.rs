//! Effect managers that take a message the moment it is sent, and effects
//! that skip an idle queue (`elmbox-optimize`'s `managers.rs`), on Elm's
//! real runtime: the runtime
//! of elm-analyse's compiled app (installed by `make test`; and of the
//! real Elm counter with `ELMBOX_ELM_OUT`), with
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

/// Elm programs whose runtime the scenario runs on, with the scenario
/// inside their scope: elm-analyse's (elm/core before 1.0.3, without an
/// effects queue), and with `ELMBOX_ELM_OUT` the counter's as `elm make`
/// writes it today (elm/core 1.0.5).
fn programs() -> Vec<(String, String)> {
    let mut apps = vec![("elm-analyse".to_string(), elm_analyse_app())];
    if let Some(out) = std::env::var_os("ELMBOX_ELM_OUT") {
        apps.push((
            "real Elm counter".to_string(),
            Path::new(&out).join("counter.js"),
        ));
    }
    let scenario =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("managers/scenario.js"))
            .unwrap();
    apps.into_iter()
        .map(|(label, path)| {
            let app = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let end = app
                .rfind("}(this));")
                .expect("Elm's program ends its scope with `}(this));`");
            (
                label,
                format!("{}\n{scenario}\n{}", &app[..end], &app[end..]),
            )
        })
        .collect()
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
    for (label, original) in programs() {
        let rewritten = elmbox_optimize::optimize(&original).expect("real Elm output is rewritten");
        assert!(rewritten.managers_take_messages_at_once, "{label}");
        assert!(rewritten.managers_listed_once, "{label}");
        let queued = original.contains("function _Platform_enqueueEffects(");
        assert_eq!(rewritten.effects_skip_idle_queue, queued, "{label}");
        assert!(rewritten.untagged_effects_share_a_function, "{label}");
        assert_eq!(
            rewritten.source.lines().count(),
            original.lines().count(),
            "{label}: every line keeps its number"
        );

        let elm = trace(&label, &original);
        // The scenario did what it says, on Elm's own scheduler…
        assert_eq!(elm.last().map(String::as_str), Some("done"), "{label}");
        // …A's message to itself, sent while it ran, before the one it
        // sent another process first;
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
        // C's commands mapped with their taggers, and as they were
        // without (a manager gets its commands last first);
        assert!(
            elm.iter()
                .any(|l| l.starts_with("C effects again outer(inner(twice)) m1(once) plain state")),
            "{label}: {elm:#?}"
        );
        // and nothing for A once its effects failed, while B goes on.
        let gone = at(&elm, "update A is gone model 13");
        assert_eq!(elm[gone + 1], "B effects 1 state 14", "{label}");

        let rewritten = trace(&format!("{label}, rewritten"), &rewritten.source);
        assert_eq!(
            rewritten, elm,
            "{label}: the rewritten runtime did otherwise"
        );
    }
}

/// What each group of the rewrite checks, changed one at a time: a
/// declaration it stands on changed (a comment is enough: the check is on
/// the text) or declared a second time, or the name it adds taken.
const CHANGES: &[(&str, &str, &str)] = &[
    (
        "delivery",
        "function _Scheduler_step(proc)\n{",
        "function _Scheduler_step(proc)\n{ /**/",
    ),
    (
        "delivery",
        "function _Scheduler_enqueue(proc)\n{",
        "function _Scheduler_enqueue(proc)\n{ /**/",
    ),
    (
        "delivery",
        "function _Scheduler_rawSend(proc, msg)\n{",
        "function _Scheduler_rawSend(proc, msg)\n{ /**/",
    ),
    (
        "delivery",
        "function _Scheduler_receive(callback)\n{",
        "function _Scheduler_receive(callback)\n{ /**/",
    ),
    (
        "delivery",
        "function _Scheduler_rawSpawn(task)\n{",
        "function _Scheduler_rawSpawn(task)\n{ /**/",
    ),
    (
        "delivery",
        "var _Scheduler_working = false;",
        "var _Scheduler_working = 0;",
    ),
    (
        "delivery",
        "var _Scheduler_queue = [];",
        "var _Scheduler_queue = [ ];\nfunction f(_Scheduler_queue) {}",
    ),
    (
        "delivery",
        "var _Scheduler_andThen = F2(function(callback, task)\n{",
        "var _Scheduler_andThen = F2(function(callback, task)\n{ /**/",
    ),
    (
        "delivery",
        "function _Platform_instantiateManager(info, sendToApp)\n{",
        "function _Platform_instantiateManager(info, sendToApp)\n{ /**/",
    ),
    (
        "homes",
        "function _Platform_setupEffects(managers, sendToApp)\n{",
        "function _Platform_setupEffects(managers, sendToApp)\n{ /**/",
    ),
    (
        "homes",
        "function _Platform_dispatchEffects(managers, cmdBag, subBag)\n{",
        "function _Platform_dispatchEffects(managers, cmdBag, subBag)\n{ /**/",
    ),
    (
        "homes",
        "function _Platform_setupEffects(",
        "function _Platform_elmboxHomes() {}\nfunction _Platform_setupEffects(",
    ),
    (
        "queue",
        "function _Platform_enqueueEffects(managers, cmdBag, subBag)\n{",
        "function _Platform_enqueueEffects(managers, cmdBag, subBag)\n{ /**/",
    ),
    (
        "queue",
        "var _Platform_effectsQueue = [];",
        "var _Platform_effectsQueue = [0];",
    ),
    (
        "queue",
        "var _Platform_effectsActive = false;",
        "var _Platform_effectsActive = false;\nfunction g(_Platform_effectsActive) {}",
    ),
    (
        "tagger",
        "function _Platform_toEffect(isCmd, home, taggers, value)\n{",
        "function _Platform_toEffect(isCmd, home, taggers, value)\n{ /**/",
    ),
    (
        "tagger",
        "function _Platform_toEffect(",
        "function _Platform_elmboxSame() {}\nfunction _Platform_toEffect(",
    ),
];

#[test]
fn a_runtime_that_is_not_elms_word_for_word_keeps_its_managers() {
    for (label, original) in programs() {
        let queued = original.contains("function _Platform_enqueueEffects(");
        for (group, from, to) in CHANGES {
            if *group == "queue" && !queued {
                continue;
            }
            assert_eq!(original.matches(from).count(), 1, "{label}: {from}");
            let changed = original.replacen(from, to, 1);
            let rewritten = elmbox_optimize::optimize(&changed).expect("still Elm's calls");
            // The group changed is not made; the others still are.
            let made = [
                rewritten.managers_take_messages_at_once,
                rewritten.managers_listed_once,
                rewritten.effects_skip_idle_queue,
                rewritten.untagged_effects_share_a_function,
            ];
            let expected = [
                *group != "delivery",
                *group != "homes",
                queued && *group != "queue",
                *group != "tagger",
            ];
            assert_eq!(
                made, expected,
                "{label}: {group} after {from:?} became {to:?}"
            );
            assert_eq!(rewritten.source.contains("elmboxDeliver"), expected[0]);
            assert_eq!(rewritten.source.contains("'elmboxHomes'"), expected[1]);
        }
    }
}
