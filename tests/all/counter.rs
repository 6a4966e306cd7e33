//! The counter example (the memo's demo app): state persists across events,
//! and every response is correct and in order.

use elmbox::EventFormat;
use elmbox_tests::{config, load, runtime, sources};
use serde_json::json;

#[test]
fn state_persists_across_ten_thousand_dispatches() {
    for source in sources("counter") {
        let mut app = load(&source.js);
        for i in 1..=10_000u64 {
            let event = format!(r#"{{"type":"click","id":{i}}}"#);
            let responses = app.dispatch(&event).unwrap();
            // Text events are echoed as the string the app received.
            assert_eq!(
                responses,
                vec![json!({"count": i, "event": event})],
                "{}: event {i}",
                source.label
            );
        }
    }
}

#[test]
fn json_events_are_echoed_as_values() {
    for source in sources("counter") {
        let (config, _) = config();
        let mut app = runtime()
            .load(&source.js, config.event_format(EventFormat::Json))
            .unwrap();
        let out = app
            .dispatch(r#"{"type":"click","tags":["a",1,null]}"#)
            .unwrap();
        assert_eq!(
            out,
            vec![json!({"count": 1, "event": {"type": "click", "tags": ["a", 1, null]}})],
            "{}",
            source.label
        );
        assert_eq!(
            app.dispatch("7").unwrap(),
            vec![json!({"count": 2, "event": 7})]
        );
    }
}

#[test]
fn flags_set_the_starting_count() {
    for source in sources("counter") {
        let (config, _) = config();
        let mut app = runtime()
            .load(&source.js, config.flags(json!({"start": 41})))
            .unwrap();
        assert_eq!(
            app.dispatch("x").unwrap(),
            vec![json!({"count": 42, "event": "x"})]
        );
    }
}

#[test]
fn the_fast_path_returns_the_same_json_text() {
    for source in sources("counter") {
        let mut slow = load(&source.js);
        let mut fast = load(&source.js);
        for i in 0..100 {
            let event = format!("event {i} \"quoted\" é");
            let parsed = slow.dispatch(&event).unwrap();
            let text = fast.dispatch_json(&event).unwrap();
            // The app's own text: its key order, its escapes.
            let expected = format!(
                r#"[{{"count":{},"event":{}}}]"#,
                i + 1,
                serde_json::to_string(&event).unwrap()
            );
            assert_eq!(text, expected, "{}", source.label);
            // The parsed values say the same, in the same order.
            assert_eq!(serde_json::to_string(&parsed).unwrap(), text);
        }
    }
}

#[test]
fn apps_do_not_share_state() {
    for source in sources("counter") {
        let mut a = load(&source.js);
        let mut b = load(&source.js);
        for _ in 0..5 {
            a.dispatch("a").unwrap();
        }
        assert_eq!(b.dispatch("b").unwrap()[0]["count"], json!(1));
        assert_eq!(a.dispatch("a").unwrap()[0]["count"], json!(6));
    }
}
