//! The timers example: `Process.sleep`, `Time.every` and `Debug.log` on the
//! virtual clock, with console output captured.

use elmbox::Level;
use elmbox_tests::{config, runtime, sources, EPOCH_MS};
use serde_json::json;

#[test]
fn timers_fire_when_time_is_advanced() {
    let epoch = EPOCH_MS as u64;
    for source in sources("timers") {
        let mut app = runtime().load(&source.js, config().0).unwrap();
        let l = &source.label;
        assert_eq!(
            app.dispatch("hello").unwrap(),
            vec![json!({"received": "hello"})],
            "{l}"
        );
        // Nothing is due before the first tick at 500 ms.
        assert_eq!(
            app.advance_time(499).unwrap(),
            Vec::<serde_json::Value>::new(),
            "{l}"
        );
        assert_eq!(
            app.advance_time(1).unwrap(),
            vec![json!({"tick": 1, "posix": epoch + 500})],
            "{l}"
        );
        assert_eq!(
            app.advance_time(499).unwrap(),
            Vec::<serde_json::Value>::new(),
            "{l}"
        );
        // At 1000 ms the sleep (armed at 0) fires before the re-armed interval.
        assert_eq!(
            app.advance_time(1).unwrap(),
            vec![
                json!({"delayed": "hello"}),
                json!({"tick": 2, "posix": epoch + 1000})
            ],
            "{l}"
        );
        // A long advance fires every tick in between, in order.
        assert_eq!(
            app.advance_time(1600).unwrap(),
            (3..=5)
                .map(|n| json!({"tick": n, "posix": epoch + 500 * n}))
                .collect::<Vec<_>>(),
            "{l}"
        );
        assert_eq!(app.memory().unwrap().clock_ms, 2600, "{l}");
    }
}

#[test]
fn sleeps_from_several_events_keep_their_order() {
    for source in sources("timers") {
        let mut app = runtime().load(&source.js, config().0).unwrap();
        app.dispatch("a").unwrap();
        app.advance_time(200).unwrap();
        app.dispatch("b").unwrap();
        let out = app.advance_time(1000).unwrap();
        let delayed: Vec<_> = out.iter().filter(|v| v.get("delayed").is_some()).collect();
        assert_eq!(
            delayed,
            vec![&json!({"delayed": "a"}), &json!({"delayed": "b"})],
            "{}",
            source.label
        );
    }
}

#[test]
fn console_output_is_captured() {
    for source in sources("timers") {
        let (config, lines) = config();
        let mut app = runtime().load(&source.js, config).unwrap();
        {
            let lines = lines.lock().unwrap();
            assert_eq!(lines.len(), 1, "{}: {lines:?}", source.label);
            assert_eq!(lines[0].level, Level::Warn);
            assert!(
                lines[0].text.starts_with("Compiled in DEV mode"),
                "{:?}",
                lines[0]
            );
        }
        app.dispatch("hello").unwrap();
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 2, "{}: {lines:?}", source.label);
        assert_eq!(lines[1].level, Level::Log);
        assert_eq!(lines[1].text, r#"event: "hello""#);
    }
}

#[test]
fn date_follows_the_virtual_clock() {
    let js = elmbox_tests::elm_like(
        "var subs = [];
         function init() { return { ports: {
           onEvent: { send: function () { subs.forEach(function (s) { s([Date.now(), new Date().getTime(), new Date(5).getTime()]); }); } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    );
    let mut app = runtime().load(js, config().0).unwrap();
    let epoch = EPOCH_MS as u64;
    assert_eq!(app.dispatch("").unwrap(), vec![json!([epoch, epoch, 5])]);
    app.advance_time(1234).unwrap();
    assert_eq!(
        app.dispatch("").unwrap(),
        vec![json!([epoch + 1234, epoch + 1234, 5])]
    );
}
