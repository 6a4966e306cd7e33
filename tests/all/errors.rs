//! Bad input gets a typed error that says what was wrong, and an event that
//! fails never takes the app (or any other app) down with it.

use elmbox::{
    AppConfig, AppError, Error, EventFormat, FaultSite, PortDirection, SandboxLimits, Thrown,
};
use elmbox_tests::{config, elm_like, load, runtime, sources};
use serde_json::json;

/// An app whose `send` echoes strings, counts every event it saw, rejects
/// numbers as Elm's port does (before anything happens), and throws on
/// "boom" after sending "partial", as an `update` that crashes would.
fn echo_app() -> String {
    elm_like(
        "var subs = [], seen = 0;
         function init() { return { ports: {
           onEvent: { send: function (v) {
             if (typeof v === 'number') { throw new Error('https://github.com/elm/core/blob/1.0.0/hints/4.md'); }
             seen++;
             if (v === 'boom') { subs.forEach(function (s) { s('partial'); }); throw new Error('boom at ' + seen); }
             subs.forEach(function (s) { s({ seen: seen, echo: v }); });
           } },
           respond: { subscribe: function (f) { subs.push(f); } }
         } }; }",
    )
}

#[test]
fn syntax_error_names_line_and_column() {
    let js = "var ok = 1;\nvar broken = ;\n";
    match runtime().load(js, AppConfig::default().name("broken.js")) {
        Err(Error::App {
            error:
                AppError::Syntax {
                    file,
                    line,
                    column,
                    message,
                },
            ..
        }) => {
            assert_eq!(file, "broken.js");
            assert_eq!(line, Some(2), "{message}");
            assert!(column.is_some_and(|c| c >= 1), "{column:?}");
            assert!(message.contains("SyntaxError"), "{message}");
        }
        other => panic!(
            "expected a syntax error, got {other:?}",
            other = other.err()
        ),
    }
}

#[test]
fn script_that_throws_while_loading() {
    let err = runtime()
        .load(
            "throw new TypeError('no window here')",
            AppConfig::default(),
        )
        .err()
        .expect("load fails");
    assert!(
        matches!(&err, Error::App { error: AppError::ScriptThrew { thrown, .. }, .. }
            if thrown.message == "TypeError: no window here"),
        "{err:?}"
    );
}

#[test]
fn script_without_elm_object() {
    let err = runtime()
        .load("var x = 1;", AppConfig::default())
        .err()
        .expect("load fails");
    assert!(
        matches!(
            err,
            Error::App {
                error: AppError::NotElm { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn missing_module_lists_the_available_ones() {
    let js = &sources("counter")[0].js;
    let err = runtime()
        .load(js, AppConfig::default().module("Admin.Main"))
        .err()
        .expect("load fails");
    match err {
        Error::App {
            error: AppError::ModuleNotFound { module, available },
            ..
        } => {
            assert_eq!(module, "Admin.Main");
            assert_eq!(available, vec!["Main".to_string()]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_ports_list_the_available_ones() {
    for source in sources("counter") {
        let cases = [
            (
                AppConfig::default().in_port("events"),
                "events",
                PortDirection::Incoming,
                "onEvent",
            ),
            (
                AppConfig::default().out_port("replies"),
                "replies",
                PortDirection::Outgoing,
                "respond",
            ),
        ];
        for (config, missing, expected_direction, existing) in cases {
            match runtime()
                .load(&source.js, config)
                .err()
                .expect("load fails")
            {
                Error::App {
                    error:
                        AppError::PortNotFound {
                            port,
                            direction,
                            available,
                        },
                    ..
                } => {
                    assert_eq!((port.as_str(), direction), (missing, expected_direction));
                    assert_eq!(available, vec![existing.to_string()], "{}", source.label);
                }
                other => panic!("{}: {other:?}", source.label),
            }
        }
    }
}

#[test]
fn init_that_throws() {
    let js = elm_like(
        "function init(args) { throw new Error('bad flags: ' + JSON.stringify(args.flags)); }",
    );
    let err = runtime()
        .load(js, AppConfig::default().flags(json!({"start": "x"})))
        .err()
        .expect("load fails");
    match err {
        Error::App {
            error:
                AppError::InitThrew {
                    module,
                    thrown: Thrown { message, stack },
                },
            ..
        } => {
            assert_eq!(module, "Main");
            assert_eq!(message, r#"Error: bad flags: {"start":"x"}"#);
            assert!(stack.is_some_and(|s| s.contains("init")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_port_that_rejects_the_event_leaves_the_app_answering() {
    let (config, _) = config();
    let mut app = runtime()
        .load(echo_app(), config.event_format(EventFormat::Json))
        .unwrap();
    assert_eq!(
        app.dispatch(r#""a""#).unwrap(),
        vec![json!({"seen": 1, "echo": "a"})]
    );
    match app.dispatch("7") {
        Err(Error::App {
            error: AppError::Threw(Thrown { message, .. }),
            outputs,
        }) => {
            assert!(message.ends_with("hints/4.md"), "{message}");
            assert!(outputs.is_empty(), "{outputs:?}");
        }
        other => panic!("{other:?}"),
    }
    // Nothing happened in the app: the next event is its second.
    assert_eq!(
        app.dispatch(r#""b""#).unwrap(),
        vec![json!({"seen": 2, "echo": "b"})]
    );
    assert!(app.failure().is_none());
}

#[test]
fn an_app_that_throws_after_its_port_took_the_event_is_failed() {
    let mut app = load(echo_app().as_bytes());
    app.dispatch("a").unwrap();
    let err = app.dispatch("boom").expect_err("faulted");
    match &err {
        Error::App {
            error:
                AppError::Faulted {
                    during: FaultSite::Event,
                    thrown: Thrown { message, stack },
                },
            outputs,
        } => {
            assert_eq!(message, "Error: boom at 2");
            assert!(stack.is_some());
            // What it sent before the fault is not an answer.
            assert!(outputs.is_empty(), "{outputs:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_fatal());
    assert!(app.failure().is_some());
    assert!(matches!(app.dispatch("b"), Err(Error::Failed { .. })));
}

#[test]
fn elm_port_type_error_is_reported_and_the_app_goes_on() {
    // wordcount's port takes a String; a JSON object makes Elm's port throw.
    for source in sources("wordcount") {
        let (config, _) = config();
        let mut app = runtime()
            .load(&source.js, config.event_format(EventFormat::Json))
            .unwrap();
        let err = app
            .dispatch(r#"{"text": "not a string"}"#)
            .expect_err("port rejects objects");
        assert!(
            matches!(
                err,
                Error::App {
                    error: AppError::Threw(_),
                    ..
                }
            ),
            "{}: {err:?}",
            source.label
        );
        let ok = app
            .dispatch(r#""{\"text\": \"hello hello world\"}""#)
            .unwrap();
        assert_eq!(ok[0]["total"], json!(3), "{}", source.label);
    }
}

#[test]
fn event_that_is_not_utf8() {
    let mut app = load(echo_app().as_bytes());
    let err = app.dispatch(b"ok\xff\xfe").expect_err("rejected");
    assert!(
        matches!(
            err,
            Error::App {
                error: AppError::EventNotUtf8 { valid_up_to: 2 },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        app.dispatch("é").unwrap(),
        vec![json!({"seen": 1, "echo": "é"})]
    );
}

#[test]
fn event_over_the_size_limit() {
    let (config, _) = config();
    let limits = SandboxLimits {
        max_event_bytes: 16,
        ..SandboxLimits::default()
    };
    let mut app = runtime()
        .with_limits(limits)
        .unwrap()
        .load(echo_app(), config)
        .unwrap();
    let err = app.dispatch("x".repeat(17)).expect_err("rejected");
    assert!(
        matches!(
            err,
            Error::App {
                error: AppError::EventTooLarge {
                    size: 17,
                    limit: 16
                },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(app.dispatch("y".repeat(16)).unwrap()[0]["seen"], json!(1));
}

#[test]
fn event_that_is_not_json_in_json_mode() {
    let (config, _) = config();
    let mut app = runtime()
        .load(echo_app(), config.event_format(EventFormat::Json))
        .unwrap();
    let err = app.dispatch("{not json").expect_err("rejected");
    assert!(
        matches!(&err, Error::App { error: AppError::EventNotJson { message }, .. }
            if !message.is_empty()),
        "{err:?}"
    );
    assert_eq!(
        app.dispatch("[1,2]").unwrap(),
        vec![json!({"seen": 1, "echo": [1, 2]})]
    );
}

#[test]
fn deep_recursion_works_and_runaway_recursion_fails_only_its_app() {
    let js = elm_like(
        "function down(n) { return n <= 0 ? 0 : down(n - 1) + 1; }
         var subs = [];
         function init() { return { ports: {
           onEvent: { send: function (v) { subs.forEach(function (s) { s(down(+v)); }); } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    );
    let mut app = load(js.as_bytes());
    let mut neighbour = load(js.as_bytes());
    // Deeper than Elm's own List.foldr recursion (500 levels of two frames).
    assert_eq!(app.dispatch("5000").unwrap(), vec![json!(5000)]);
    let err = app.dispatch("100000000").expect_err("stack overflow");
    assert!(
        matches!(&err, Error::Crashed { reason } if reason.starts_with("stack overflow")),
        "{err:?}"
    );
    // The instance was unwound mid-call, so it takes no more events...
    assert!(matches!(app.dispatch("1"), Err(Error::Failed { .. })));
    // ...and no other app notices.
    assert_eq!(neighbour.dispatch("10").unwrap(), vec![json!(10)]);
}

#[test]
fn javascript_memory_limit_stops_a_memory_bomb() {
    let js = elm_like(
        "var subs = [];
         function init() { return { ports: {
           onEvent: { send: function (v) {
             var hoard = [];
             if (v === 'bomb') { for (;;) hoard.push(new Array(1024).fill(v)); }
             subs.forEach(function (s) { s(v); });
           } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    );
    let (config, _) = config();
    let mut app = runtime()
        .load(&js, config.js_memory_limit(32 << 20))
        .unwrap();
    let mut neighbour = load(js.as_bytes());
    let err = app.dispatch("bomb").expect_err("out of memory");
    // Thrown inside the app's handling of the event: a fault, which stops
    // the app rather than let it go on half-way through an update.
    assert!(
        matches!(&err, Error::App { error: AppError::Faulted { thrown, .. }, .. }
            if thrown.message.contains("out of memory")),
        "{err:?}"
    );
    assert!(err.is_fatal());
    assert!(matches!(app.dispatch("after"), Err(Error::Failed { .. })));
    assert_eq!(neighbour.dispatch("after").unwrap(), vec![json!("after")]);
}

#[test]
fn runaway_timers_fail_the_app_but_not_its_neighbours() {
    let js = elm_like(
        "var subs = [];
         function init() { return { ports: {
           onEvent: { send: function (v) {
             if (v === 'spin') setTimeout(function again() { setTimeout(again, 0); }, 0);
             subs.forEach(function (s) { s(v); });
           } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    );
    let (config, _) = config();
    let mut spinner = runtime()
        .load(&js, config.same_instant_timer_limit(1000))
        .unwrap();
    let mut neighbour = load(js.as_bytes());
    assert_eq!(spinner.dispatch("hi").unwrap(), vec![json!("hi")]);
    let err = spinner.dispatch("spin").expect_err("runaway");
    assert!(
        matches!(
            err,
            Error::App {
                error: AppError::TimerStorm { limit: 1000 },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(spinner.failure().is_some());
    let again = spinner
        .dispatch("hi")
        .expect_err("failed app refuses events");
    assert!(matches!(again, Error::Failed { .. }), "{again:?}");
    assert_eq!(
        neighbour.dispatch("still here").unwrap(),
        vec![json!("still here")]
    );
}
