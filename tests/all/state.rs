//! Sandbox states: an app's memory and globals taken between events and
//! restored into a fresh instance carry on exactly as the original does,
//! including its timers, its clock and `Math.random`; damaged or foreign
//! states are refused.

use elmbox::{Error, GuestId, SandboxState};
use elmbox_tests::{config, dicey_app, elm_like, load, runtime, sources};
use serde_json::json;

#[test]
fn a_restored_state_answers_as_the_original_goes_on() {
    let mut original = load(dicey_app().as_bytes());
    for i in 0..3 {
        original.dispatch(format!("e{i}")).unwrap();
    }
    original.advance_time(400).unwrap();
    let state = original.state().unwrap();
    let bytes = state.encode().unwrap();
    let decoded = SandboxState::decode(&bytes).unwrap();
    assert_eq!(decoded, state);
    let mut restored = runtime().restore(&decoded, config().0).unwrap();
    for step in 0..5 {
        let event = format!("after{step}");
        let expected = original.dispatch(&event).unwrap();
        assert_eq!(restored.dispatch(&event).unwrap(), expected, "event {step}");
        // The same draws from Math.random, the same clock, the same timers.
        let later = original.advance_time(700).unwrap();
        assert_eq!(restored.advance_time(700).unwrap(), later, "timers {step}");
    }
    assert_eq!(
        restored.memory().unwrap().clock_ms,
        original.memory().unwrap().clock_ms
    );
}

#[test]
fn the_counter_carries_on_from_a_restored_state() {
    for source in sources("counter") {
        let mut app = load(&source.js);
        for i in 1..=100 {
            app.dispatch(format!("{i}")).unwrap();
        }
        let bytes = app.state().unwrap().encode().unwrap();
        // Most of the 8.4 MB of linear memory is zero pages.
        assert!(
            bytes.len() < 1 << 20,
            "{}: {} bytes",
            source.label,
            bytes.len()
        );
        let state = SandboxState::decode(&bytes).unwrap();
        let mut restored = runtime().restore(&state, config().0).unwrap();
        assert_eq!(
            restored.dispatch("next").unwrap(),
            vec![json!({"count": 101, "event": "next"})],
            "{}",
            source.label
        );
    }
}

#[test]
fn damaged_or_foreign_states_are_refused() {
    let mut app = load(dicey_app().as_bytes());
    app.dispatch("x").unwrap();
    let state = app.state().unwrap();
    let bytes = state.encode().unwrap();
    let refused = |bytes: &[u8], why: &str| match SandboxState::decode(bytes) {
        Err(Error::BadSnapshot { reason }) => assert!(reason.contains(why), "{reason}"),
        other => panic!("accepted: {:?}", other.map(|s| s.memory.len())),
    };
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    refused(&flipped, "checksum");
    refused(&bytes[..bytes.len() - 10], "checksum");
    refused(b"not a snapshot at all", "not an elmbox snapshot");
    refused(&[], "too short");

    let foreign = SandboxState {
        guest: GuestId([7; 32]),
        ..state
    };
    match runtime().restore(&foreign, config().0) {
        Err(Error::BadSnapshot { reason }) => {
            assert!(reason.contains("another guest build"), "{reason}")
        }
        other => panic!("restored: {:?}", other.err()),
    }
}

#[test]
fn a_failed_app_has_no_state_to_take() {
    let mut app = load(
        elm_like(
            "function init() { return { ports: {
               onEvent: { send: function () { (function deeper(n) { return deeper(n + 1) + 1; })(0); } },
               respond: { subscribe: function () {} } } }; }",
        )
        .as_bytes(),
    );
    assert!(app.dispatch("x").unwrap_err().is_fatal());
    assert!(matches!(app.state(), Err(Error::Failed { .. })));
}
