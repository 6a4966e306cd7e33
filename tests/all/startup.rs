//! The startup example: what an app sends while it starts (Elm hands `init`'s
//! values over only after the host subscribed to the port) and the order of
//! what one event sets off: a batch reaching the port last-first, a task
//! done at once, a sleep of 0 ms. elmbox's rewrite of an app's one outgoing
//! port (`elmbox-optimize`) must change none of it: on real Elm output
//! (`ELMBOX_ELM_OUT`) every step is run with and without it.

use elmbox_tests::{config, runtime, sources};
use serde_json::{json, Value};

/// What the app sends while starting, then for events `a`, `b`, `c`.
fn run(js: &[u8], optimize: bool) -> (Vec<Value>, Vec<Vec<Value>>) {
    let mut app = runtime()
        .load(js, config().0.optimize(optimize))
        .expect("the app loads");
    let started = app.startup_outputs().to_vec();
    let answers = ["a", "b", "c"]
        .iter()
        .map(|event| app.dispatch(event).unwrap())
        .collect();
    (started, answers)
}

#[test]
fn init_and_each_event_send_in_elms_order_with_or_without_the_rewrite() {
    for source in sources("startup") {
        let l = &source.label;
        let (started, answers) = run(&source.js, true);
        assert_eq!(
            started,
            vec![json!("started"), json!("done init"), json!("slept init")],
            "{l}"
        );
        for (n, (event, answer)) in ["a", "b", "c"].iter().zip(&answers).enumerate() {
            let expected = [
                format!("count {}", n + 1),
                format!("event {event}"),
                format!("done {event}"),
                format!("slept {event}"),
            ];
            assert_eq!(
                answer,
                &expected.map(Value::from).to_vec(),
                "{l}: event {event}"
            );
        }
        assert_eq!(
            run(&source.js, false),
            (started, answers),
            "{l}: --no-optimize"
        );
    }
}
