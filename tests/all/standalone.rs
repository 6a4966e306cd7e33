//! Standalone modules (`elmbox build`): the app pre-initialised with Wizer,
//! answering exactly as its JavaScript does on three paths: `elmbox run
//! app.js`, `elmbox run app.wasm` and the real wasmtime CLI.

use elmbox::{Console, Error};
use elmbox_tests::{config, elm_like, elmbox, fixture, json_lines, runtime, stderr, EPOCH_MS};

use crate::support::{build, scratch, three_paths_agree};
use serde_json::json;

#[test]
fn counter_answers_the_same_on_all_three_paths() {
    let dir = scratch("counter");
    let js = fixture("counter");
    let wasm = build(&js, &dir, "counter", &[]);
    let mut events = String::new();
    for i in 0..300 {
        match i % 5 {
            0 => events.push_str(&format!("plain {i}\n")),
            1 => events.push('\n'),
            2 => events.push_str(&format!("héllo ✓ \"quoted\" \\ {i}\r\n")),
            3 => events.push_str(&format!("{{\"type\":\"click\",\"id\":{i}}}\n")),
            _ => events.push_str(&format!("{}\n", "x".repeat(i))),
        }
    }
    let out = three_paths_agree(&js, &[], &wasm, events.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let answers = json_lines(&out);
    assert_eq!(answers.len(), 300);
    assert_eq!(answers[0], json!([{"count": 1, "event": "plain 0"}]));
    assert_eq!(
        answers[299][0]["count"], 300,
        "state persists in the module"
    );
}

#[test]
fn json_events_flags_and_bad_events_agree_on_all_three_paths() {
    let dir = scratch("json");
    let js = fixture("counter");
    let baked = [
        "--json-events",
        "--flags",
        r#"{"start":10}"#,
        "--max-event-bytes",
        "32",
    ];
    let wasm = build(&js, &dir, "counter-json", &baked);
    let events = b"{\"id\":1}\n\xff\xfe\n{not json\n[1,2,3]\n0123456789012345678901234567890123456789\n\"last\"";
    let out = three_paths_agree(&js, &baked, &wasm, events);
    assert_eq!(out.status.code(), Some(1), "some events failed");
    assert_eq!(
        json_lines(&out),
        vec![
            json!([{"count": 11, "event": {"id": 1}}]),
            json!([]),
            json!([]),
            json!([{"count": 12, "event": [1, 2, 3]}]),
            json!([]),
            json!([{"count": 13, "event": "last"}]),
        ]
    );
    let err = stderr(&out);
    assert!(err.contains("event 2: event is not UTF-8"), "{err}");
    assert!(err.contains("event 3: event is not valid JSON"), "{err}");
    assert!(
        err.contains("event 5: event is 40 bytes, over the limit of 32 bytes"),
        "{err}"
    );
}

#[test]
fn timers_and_console_agree_on_all_three_paths() {
    let dir = scratch("timers");
    let js = fixture("timers");
    let baked = ["--advance-ms", "1000", "--epoch-ms", "0"];
    let wasm = build(&js, &dir, "timers", &baked);
    let out = three_paths_agree(&js, &baked, &wasm, b"hello\nagain\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        concat!(
            r#"[{"received":"hello"},{"tick":1,"posix":500},"#,
            r#"{"delayed":"hello"},{"tick":2,"posix":1000}]"#,
            "\n",
            r#"[{"received":"again"},{"tick":3,"posix":1500},"#,
            r#"{"delayed":"again"},{"tick":4,"posix":2000}]"#,
            "\n",
        )
    );
    // The module's own console goes to stderr like elmbox's; the DEV-mode
    // warning was printed once, at build time, and is not repeated.
    let err = stderr(&out);
    assert!(
        err.contains(r#"[timers.js] console.log: event: "hello""#),
        "{err}"
    );
    assert!(!err.contains("Compiled in DEV mode"), "{err}");
}

/// An app that logs when its script is evaluated and reports its state.
fn evaluation_logging_app() -> String {
    elm_like(
        "console.log('evaluating the script');
         var subs = [], count = 0;
         function init(args) {
           console.log('init');
           count = args.flags.start;
           return { ports: {
             onEvent: { send: function (v) {
               count++;
               subs.forEach(function (s) { s({ count: count, now: Date.now(), event: v }); });
             } },
             respond: { subscribe: function (f) { subs.push(f); } }
           } };
         }",
    )
}

#[test]
fn instances_start_from_the_snapshot_without_evaluating_javascript() {
    let (build_console, at_build) = Console::collect();
    let config = config()
        .0
        .flags(json!({"start": 10}))
        .console(build_console);
    let image = runtime()
        .snapshot(evaluation_logging_app(), config)
        .expect("the app builds");
    let logged: Vec<String> = at_build
        .lock()
        .unwrap()
        .iter()
        .map(|l| l.text.clone())
        .collect();
    assert_eq!(logged, ["evaluating the script", "init"]);

    let (console, at_run) = Console::collect();
    let image = image.console(console);
    let mut first = image.instantiate().unwrap();
    let mut second = image.instantiate().unwrap();
    assert!(
        at_run.lock().unwrap().is_empty(),
        "instantiating evaluated the script again: {:?}",
        at_run.lock().unwrap()
    );
    // Each instance starts where `init` left the snapshot, on the build's clock.
    assert_eq!(
        first.dispatch("a").unwrap(),
        vec![json!({"count": 11, "now": EPOCH_MS as i64, "event": "a"})]
    );
    assert_eq!(first.dispatch("b").unwrap()[0]["count"], 12);
    assert_eq!(second.dispatch("c").unwrap()[0]["count"], 11);
    assert_eq!(
        image.instantiate().unwrap().dispatch("d").unwrap()[0]["count"],
        11
    );
}

#[test]
fn modules_that_are_not_built_apps_are_refused_with_the_reason() {
    let cases: [(&[u8], &str); 4] = [
        (b"<not wasm>", "it is not a WebAssembly module"),
        (b"\0asm\x01\0\0\0\xff\xff", "it is not valid WebAssembly"),
        (b"\0asm\x01\0\0\0", "it has no `elmbox_abi_version` export"),
        (elmbox::GUEST_WASM, "it holds no app"),
    ];
    let dir = scratch("bad-modules");
    for (i, (bytes, reason)) in cases.into_iter().enumerate() {
        match runtime().image(bytes) {
            Err(Error::BadModule { reason: got }) => {
                assert!(got.contains(reason), "{got:?} should say {reason:?}")
            }
            Err(other) => panic!("case {i}: wrong error {other}"),
            Ok(_) => panic!("case {i}: accepted"),
        }
        // The CLI says the same and exits with status 2. (Case 0 is text,
        // so the CLI reads it as JavaScript: it is not an Elm app either.)
        let path = dir.join(format!("case{i}.wasm"));
        std::fs::write(&path, bytes).unwrap();
        let out = elmbox(&["run", path.to_str().unwrap()], b"event\n");
        assert_eq!(out.status.code(), Some(2), "case {i}: {}", stderr(&out));
        let expected = if i == 0 { "syntax error" } else { reason };
        assert!(
            stderr(&out).contains(expected),
            "case {i}: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty(), "case {i}: answered");
    }
}

#[test]
fn options_fixed_at_build_time_cannot_be_given_again() {
    let dir = scratch("bad-args");
    let js = fixture("counter");
    let wasm = build(&js, &dir, "counter", &[]);

    let out = elmbox(&["run", &wasm, "--module", "Main", "--flags", "{}"], b"x\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--module, --flags were fixed when it was built"),
        "{}",
        stderr(&out)
    );

    let out = elmbox(&["soak", &wasm, "--mode", "eval", "--batches", "1"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("only call mode applies"),
        "{}",
        stderr(&out)
    );

    let out = elmbox(&["build", &wasm, "-o", &format!("{wasm}.again")], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("already a WebAssembly module"),
        "{}",
        stderr(&out)
    );

    let out = elmbox(&["build", &js], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--output"), "{}", stderr(&out));

    // Host-side limits still apply to a built module.
    let out = elmbox(&["run", &wasm, "--max-event-bytes", "3"], b"abc\nabcd\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        json_lines(&out),
        vec![json!([{"count": 1, "event": "abc"}]), json!([])]
    );
}

#[test]
fn a_broken_app_fails_at_build_time_and_writes_nothing() {
    let dir = scratch("broken");
    let broken = dir.join("broken.js");
    std::fs::write(&broken, "(function(scope){\n  var x = ;\n}(this));").unwrap();
    let wasm = dir.join("broken.wasm");
    let out = elmbox(
        &[
            "build",
            broken.to_str().unwrap(),
            "-o",
            wasm.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("broken.js:2:"), "{}", stderr(&out));
    assert!(stderr(&out).contains("syntax error"), "{}", stderr(&out));
    assert!(!wasm.exists(), "a module was written for a broken app");

    let out = elmbox(
        &[
            "build",
            &fixture("counter"),
            "-o",
            wasm.to_str().unwrap(),
            "--out-port",
            "nope",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("outgoing port `nope` not found (available ports: respond)"),
        "{}",
        stderr(&out)
    );
}
