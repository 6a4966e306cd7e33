//! Making runtimes: from a guest given at run time, with sandbox limits
//! checked where the runtime is made, and images that report the settings
//! their snapshot holds.

use std::time::Duration;

use elmbox::{AppConfig, Error, EventFormat, Runtime, SandboxLimits};
use elmbox_tests::{config, fixture, runtime};
use serde_json::json;

fn counter_js() -> Vec<u8> {
    std::fs::read(fixture("counter")).expect("make fixtures")
}

#[test]
fn a_runtime_takes_its_guest_at_run_time() {
    let from_bytes = Runtime::from_guest(elmbox::GUEST_WASM.to_vec()).unwrap();
    let mut app = from_bytes.load(counter_js(), config().0).unwrap();
    assert_eq!(app.dispatch("hi").unwrap()[0]["count"], json!(1));

    let err = Runtime::from_guest(b"not a guest".to_vec())
        .err()
        .expect("refused");
    assert!(
        matches!(&err, Error::BadModule { reason } if reason.contains("does not compile")),
        "{err}"
    );
}

#[test]
fn limits_an_engine_cannot_keep_are_refused_where_the_runtime_is_made() {
    let deadline = SandboxLimits {
        deadline: Some(Duration::from_millis(10)),
        ..SandboxLimits::default()
    };
    let tiny_cap = SandboxLimits {
        max_memory_bytes: Some(1 << 20),
        ..SandboxLimits::default()
    };
    for limits in [deadline.clone(), tiny_cap.clone()] {
        assert!(matches!(
            runtime().with_limits(limits),
            Err(Error::Config(_))
        ));
    }
    let err = Runtime::builder()
        .limits(tiny_cap)
        .build()
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("below the guest's initial"),
        "{err}"
    );
    // A deadline given to the builder turns deadlines on.
    let with_deadline = Runtime::builder().limits(deadline).build().unwrap();
    assert!(with_deadline.has_deadlines() && !runtime().has_deadlines());
    assert_eq!(
        with_deadline.limits().deadline,
        Some(Duration::from_millis(10))
    );
}

#[test]
fn an_image_reports_the_settings_its_snapshot_holds() {
    let config = AppConfig::default()
        .name("counter.js")
        .flags(json!({"start": 10}))
        .event_format(EventFormat::Json)
        .js_memory_limit(16 << 20)
        .same_instant_timer_limit(500)
        .epoch_ms(1_700_000_000_000.0);
    let wasm = runtime()
        .build(counter_js(), config, &Default::default())
        .unwrap();
    // Read back by a runtime that never saw the config.
    let image = Runtime::new().unwrap().image(&wasm).unwrap();
    let settings = image.settings();
    assert_eq!(settings.name, "counter.js");
    assert_eq!(settings.flags.as_deref(), Some(r#"{"start":10}"#));
    assert_eq!(settings.event_format, EventFormat::Json);
    assert_eq!(settings.js_memory_limit, Some(16 << 20));
    assert_eq!(settings.same_instant_timer_limit, 500);
    assert!(settings.fixed_epoch);
    assert_eq!(settings.epoch_ms, 1_700_000_000_000.0);
    let mut app = image.instantiate().unwrap();
    assert_eq!(app.dispatch(r#"{"id":1}"#).unwrap()[0]["count"], json!(11));
}
