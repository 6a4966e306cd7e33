//! Several ports at once (`AppConfig::all_ports`, `elmbox run --ports`):
//! events name their incoming port, answers carry every outgoing port's
//! values in the order sent, and what `init` sent comes first. The same
//! through the library, `elmbox run` and a built module; and strings that
//! JavaScript holds but UTF-8 cannot (unpaired surrogates) on every path.

use elmbox::{AppConfig, AppError, Error, PortDirection};
use elmbox_tests::{config, elm_like, json_lines, runtime, stderr};
use serde_json::json;

use crate::support::{build, scratch, three_paths_agree};

/// Two incoming ports and three outgoing ones: `ready` reports the flags
/// after `init`; `ping` echoes at once and shouts a timer later; `left`
/// sends the first UTF-16 unit of its value, as Elm's `String.left 1` does.
fn chatty_app() -> String {
    elm_like(
        "function port() { var subs = []; return {
           subscribe: function (f) { subs.push(f); },
           emit: function (v) { subs.forEach(function (s) { s(v); }); } }; }
         function init(args) {
           var ready = port(), echo = port(), shout = port();
           setTimeout(function () { ready.emit({ flags: args.flags === undefined ? null : args.flags }); }, 0);
           return { ports: { ready: ready, echo: echo, shout: shout,
             ping: { send: function (v) {
               echo.emit(v);
               setTimeout(function () { shout.emit(String(v).toUpperCase()); }, 0); } },
             left: { send: function (v) { echo.emit(v.slice(0, 1)); } } } }; }",
    )
}

fn write_app(dir: &std::path::Path) -> String {
    let path = dir.join("chatty.js");
    std::fs::write(&path, chatty_app()).unwrap();
    path.display().to_string()
}

#[test]
fn the_library_sends_to_any_port_and_hears_all_of_them() {
    let (config, _) = config();
    let mut app = runtime()
        .load(chatty_app(), config.all_ports(true).flags(json!(7)))
        .unwrap();
    assert_eq!(
        app.startup_outputs(),
        [json!({"port": "ready", "value": {"flags": 7}})]
    );
    assert_eq!(
        app.send("ping", &json!("hi")).unwrap(),
        vec![
            json!({"port": "echo", "value": "hi"}),
            json!({"port": "shout", "value": "HI"}),
        ]
    );
    // The same event as text, as `run --ports` reads it.
    assert_eq!(
        app.dispatch_json(r#"{"port":"left","value":"ok"}"#)
            .unwrap(),
        r#"[{"port":"echo","value":"o"}]"#
    );
    let err = app.send("nope", &json!(1)).expect_err("no such port");
    match &err {
        Error::App {
            error:
                AppError::PortNotFound {
                    port,
                    direction: PortDirection::Incoming,
                    available,
                },
            ..
        } => {
            assert_eq!(port, "nope");
            assert_eq!(available, &["left", "ping"]);
        }
        other => panic!("{other:?}"),
    }
    for bad in [r#"{"value":1}"#, r#"{"port":"ping"}"#, "[1]", "{oops"] {
        let err = app.dispatch(bad).expect_err("refused");
        assert!(
            matches!(
                err,
                Error::App {
                    error: AppError::NotAPortEvent { .. },
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
        assert!(!err.is_fatal());
    }
    assert_eq!(
        app.send("ping", &json!("again")).unwrap()[0],
        json!({"port": "echo", "value": "again"})
    );
}

#[test]
fn run_and_built_modules_serve_every_port_alike() {
    let dir = scratch("ports");
    let js = write_app(&dir);
    let baked = ["--ports", "--flags", r#"{"mode":"test"}"#];
    let wasm = build(&js, &dir, "chatty", &baked);
    let events = b"{\"port\":\"ping\",\"value\":\"hi\"}\n{\"port\":\"nope\",\"value\":1}\n{\"port\":\"left\",\"value\":\"xy\"}\n";
    let out = three_paths_agree(&js, &baked, &wasm, events);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        json_lines(&out),
        vec![
            json!([{"port": "ready", "value": {"flags": {"mode": "test"}}}]),
            json!([{"port": "echo", "value": "hi"}, {"port": "shout", "value": "HI"}]),
            json!([]),
            json!([{"port": "echo", "value": "x"}]),
        ]
    );
    assert!(
        stderr(&out).contains("event 2: incoming port `nope` not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unpaired_surrogates_reach_every_path_without_a_crash() {
    // "😀" is two UTF-16 units; its first alone is an unpaired surrogate.
    let (config, _) = config();
    let mut app = runtime()
        .load(chatty_app(), config.all_ports(true))
        .unwrap();
    let values = app.send("left", &json!("😀")).unwrap();
    assert_eq!(values, vec![json!({"port": "echo", "value": "\u{fffd}"})]);
    assert!(app.failure().is_none());
    // The JSON text keeps what JavaScript had, as `elmbox run` prints it.
    let text = app
        .dispatch_json(r#"{"port":"left","value":"😀"}"#)
        .unwrap();
    assert_eq!(text, r#"[{"port":"echo","value":"\ud83d"}]"#);

    let dir = scratch("surrogates");
    let js = write_app(&dir);
    let wasm = build(&js, &dir, "surrogates", &["--ports"]);
    let out = three_paths_agree(
        &js,
        &["--ports"],
        &wasm,
        "{\"port\":\"left\",\"value\":\"😀\"}\n".as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[{\"port\":\"ready\",\"value\":{\"flags\":null}}]\n\
         [{\"port\":\"echo\",\"value\":\"\\ud83d\"}]\n"
    );
}

#[test]
fn all_ports_mode_refuses_the_options_of_one_port() {
    let out = elmbox_tests::elmbox(
        &[
            "run",
            &elmbox_tests::fixture("counter"),
            "--ports",
            "--in-port",
            "x",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--in-port"), "{}", stderr(&out));
    // The library has no such conflict to check: all_ports replaces them.
    let js = elmbox_tests::sources("counter").remove(0).js;
    let mut app = runtime()
        .load(&js, AppConfig::default().all_ports(true).epoch_ms(0.0))
        .unwrap();
    assert_eq!(
        app.send("onEvent", &json!("x")).unwrap(),
        vec![json!({"port": "respond", "value": {"count": 1, "event": "x"}})]
    );
}
