//! The `elmbox` command end to end: the line protocol, exit codes, stderr,
//! and the soak report.

use elmbox_tests::{elmbox, fixture, json_lines as lines, stderr};
use serde_json::json;

#[test]
fn run_answers_each_line_with_one_json_array() {
    let counter = fixture("counter");
    let out = elmbox(&["run", &counter], b"first\n{\"id\":2}\r\n\nlast");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        lines(&out),
        vec![
            json!([{"count": 1, "event": "first"}]),
            json!([{"count": 2, "event": "{\"id\":2}"}]),
            json!([{"count": 3, "event": ""}]),
            json!([{"count": 4, "event": "last"}]),
        ]
    );
}

#[test]
fn run_with_json_events_and_flags() {
    let counter = fixture("counter");
    let out = elmbox(
        &[
            "run",
            &counter,
            "--json-events",
            "--flags",
            r#"{"start":10}"#,
        ],
        b"{\"id\":2}\n[1]\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        lines(&out),
        vec![
            json!([{"count": 11, "event": {"id": 2}}]),
            json!([{"count": 12, "event": [1]}])
        ]
    );
}

#[test]
fn bad_events_get_an_empty_line_an_error_and_exit_status_1() {
    let counter = fixture("counter");
    let input =
        b"\"ok\"\n\xff\xfe\n{not json\n0123456789012345678901234567890123456789\n\"still ok\"\n";
    let out = elmbox(
        &["run", &counter, "--json-events", "--max-event-bytes", "32"],
        input,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // One line per event, and the app answers again after the bad ones.
    assert_eq!(
        lines(&out),
        vec![
            json!([{"count": 1, "event": "ok"}]),
            json!([]),
            json!([]),
            json!([]),
            json!([{"count": 2, "event": "still ok"}]),
        ]
    );
    let err = stderr(&out);
    assert!(!err.contains("event 1:"), "{err}");
    assert!(!err.contains("event 5:"), "{err}");
    assert!(err.contains("event 2: event is not UTF-8"), "{err}");
    assert!(err.contains("event 3: event is not valid JSON"), "{err}");
    assert!(
        err.contains("event 4: event is 40 bytes, over the limit of 32 bytes"),
        "{err}"
    );
}

#[test]
fn load_errors_exit_with_status_2_and_say_why() {
    let counter = fixture("counter");
    let out = elmbox(&["run", &counter, "--module", "Nope"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("module `Nope` not found in Elm output (available modules: Main)"),
        "{}",
        stderr(&out)
    );

    let out = elmbox(&["run", &counter, "--flags", "{oops"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--flags is not JSON"),
        "{}",
        stderr(&out)
    );

    let out = elmbox(&["run", "/nonexistent/app.js"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read /nonexistent/app.js"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn console_goes_to_stderr_and_timers_follow_advance_ms() {
    let timers = fixture("timers");
    let out = elmbox(
        &["run", &timers, "--advance-ms", "1000", "--epoch-ms", "0"],
        b"hello\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Compared as text: keys keep the order the app gave them.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        concat!(
            r#"[{"received":"hello"},{"tick":1,"posix":500},"#,
            r#"{"delayed":"hello"},{"tick":2,"posix":1000}]"#,
            "\n"
        )
    );
    let err = stderr(&out);
    assert!(
        err.contains("[timers.js] console.warn: Compiled in DEV mode"),
        "{err}"
    );
    assert!(
        err.contains(r#"[timers.js] console.log: event: "hello""#),
        "{err}"
    );
}

#[test]
fn soak_prints_batches_throughput_and_a_verdict() {
    let counter = fixture("counter");
    let out = elmbox(
        &[
            "soak",
            &counter,
            "--batches",
            "4",
            "--batch-size",
            "2000",
            "--warmup",
            "1",
            // RSS moves by whole 4 KiB pages: one more page over the 4,000
            // judged events is 1 B/event. 16 B/event still flags the memo's
            // leak (~250 B/event) and reload mode (~65 KB/event).
            "--max-growth",
            "16",
        ],
        b"",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for batch in 1..=4 {
        assert!(
            text.contains(&format!("Completed batch {batch} of 4 in ")),
            "{text}"
        );
    }
    assert!(
        text.contains(
            r#"lastEventResponse: [{"count":8000,"event":"{\"type\":\"click\",\"id\":8000}"}]"#
        ),
        "{text}"
    );
    assert_eq!(
        text.matches("Memory use: linear memory MB: ").count(),
        4,
        "{text}"
    );
    assert!(text.contains("Throughput: 8000 events in"), "{text}");
    assert!(text.contains("Memory verdict: BOUNDED"), "{text}");
}

#[test]
fn help_describes_every_subcommand() {
    let out = elmbox(&["--help"], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("run") && text.contains("soak"), "{text}");
    assert!(text.contains("build"), "{text}");
    for sub in ["run", "soak", "build"] {
        let out = elmbox(&[sub, "--help"], b"");
        let text = String::from_utf8_lossy(&out.stdout);
        for flag in [
            "--module",
            "--in-port",
            "--out-port",
            "--flags",
            "--json-events",
        ] {
            assert!(text.contains(flag), "{sub} --help lacks {flag}: {text}");
        }
    }
}

/// The soak's verdict comes from the growth per event after warm-up: it must
/// flag the anti-pattern that really leaks (a fresh ES module per event,
/// which QuickJS keeps for good). That it passes call mode is checked by
/// `soak_prints_batches_throughput_and_a_verdict`.
#[test]
fn soak_verdict_flags_reload_mode() {
    let counter = fixture("counter");
    let reload = elmbox(
        &[
            "soak",
            &counter,
            "--mode",
            "reload",
            "--batches",
            "4",
            "--batch-size",
            "100",
            "--warmup",
            "1",
        ],
        b"",
    );
    let text = String::from_utf8_lossy(&reload.stdout);
    assert_eq!(reload.status.code(), Some(1), "{text}\n{}", stderr(&reload));
    assert!(text.contains("Memory verdict: GROWING"), "{text}");
    // State is lost on every event: each one meets a fresh app.
    assert!(
        text.contains(
            r#"lastEventResponse: [{"count":1,"event":"{\"type\":\"click\",\"id\":400}"}]"#
        ),
        "{text}"
    );
}

#[test]
fn soak_report_writes_csv_and_charts() {
    let counter = fixture("counter");
    let dir = std::env::temp_dir().join(format!("elmbox-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = elmbox(
        &[
            "soak",
            &counter,
            "--batches",
            "3",
            "--batch-size",
            "500",
            "--report",
            dir.to_str().unwrap(),
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = std::fs::read_to_string(dir.join("soak.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "batch,events,batch_ms,linear_memory_bytes,quickjs_heap_bytes,rss_bytes,quickjs_objects"
    );
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(rows[3].starts_with("3,1500,"), "{csv}");
    let svg = std::fs::read_to_string(dir.join("soak.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("QuickJS heap"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    let png = std::fs::read(dir.join("soak.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");

    let chart = dir.join("both.svg");
    let out = elmbox(
        &[
            "chart",
            &format!("first={}", dir.join("soak.csv").display()),
            &format!("second={}", dir.join("soak.csv").display()),
            "--out",
            chart.to_str().unwrap(),
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.contains("first") && svg.contains("second"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_applies_the_limits_given_as_flags() {
    let dir = std::env::temp_dir().join(format!("elmbox-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let app = dir.join("spin.js");
    std::fs::write(
        &app,
        elmbox_tests::elm_like(
            "var subs = [];
             function init() { return { ports: {
               onEvent: { send: function (v) { if (v === 'spin') { for (;;) {} } subs.forEach(function (s) { s(v); }); } },
               respond: { subscribe: function (f) { subs.push(f); } } } }; }",
        ),
    )
    .unwrap();
    let app = app.to_str().unwrap();
    // A deadline far above what loading and an event take on a busy
    // machine, so that only the endless loop meets it.
    let out = elmbox(&["run", app, "--deadline-ms", "1000"], b"a\nspin\nb\n");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(lines(&out), vec![json!(["a"]), json!([])]);
    assert!(
        stderr(&out).contains("event 2: the app ran past its CPU deadline of 1000 ms"),
        "{}",
        stderr(&out)
    );

    let out = elmbox(&["run", app, "--max-memory-mb", "4"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("below the guest's initial"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_cli_keeps_its_compiled_guest_where_the_environment_says() {
    let root = std::env::temp_dir().join(format!("elmbox-cli-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let counter = fixture("counter");
    let run = |env: &[(&str, &std::path::Path)], off: bool| {
        let mut command = std::process::Command::new(elmbox_tests::elmbox_bin());
        command
            .args(["run", &counter])
            .env_remove("ELMBOX_CODE_CACHE")
            .env_remove("XDG_CACHE_HOME")
            .env("HOME", root.join("home"));
        for (name, value) in env {
            command.env(name, value);
        }
        if off {
            command.env("ELMBOX_CODE_CACHE", "off");
        }
        let out = command
            .stdin(std::process::Stdio::null())
            .output()
            .expect("elmbox runs");
        assert!(out.status.success(), "{}", stderr(&out));
    };
    let files = |dir: &std::path::Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);

    run(&[], true);
    assert!(!root.exists(), "off keeps nothing");
    run(&[], false);
    assert_eq!(files(&root.join("home/.cache/elmbox")), 1);
    run(&[("XDG_CACHE_HOME", &root.join("xdg"))], false);
    assert_eq!(files(&root.join("xdg/elmbox")), 1);
    run(&[("ELMBOX_CODE_CACHE", &root.join("mine"))], false);
    assert_eq!(files(&root.join("mine")), 1);
    let _ = std::fs::remove_dir_all(&root);
}
