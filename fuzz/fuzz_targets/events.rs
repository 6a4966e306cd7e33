//! Arbitrary bytes as events, to the counter fixture loaded once: as strings
//! or as JSON (the first byte picks), under tight limits. Errors are fine;
//! a host panic or undefined behaviour is not, and the app must keep
//! answering unless an error said it failed.

#![no_main]

use std::sync::Mutex;
use std::time::Duration;

use elmbox::{App, AppConfig, Console, EventFormat, Runtime, SandboxLimits};
use libfuzzer_sys::fuzz_target;

/// The counter fixture, assembled by `make fixtures` (make fuzz does).
static COUNTER: &[u8] = include_bytes!("../../target/fixtures/counter.js");

struct Apps {
    text: App,
    json: App,
}

fn load(runtime: &Runtime, format: EventFormat) -> App {
    let config = AppConfig::default()
        .epoch_ms(0.0)
        .event_format(format)
        .console(Console::new(|_, _| {}));
    runtime
        .load(COUNTER, config)
        .expect("the counter fixture loads")
}

static APPS: Mutex<Option<(Runtime, Apps)>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = APPS.lock().unwrap();
    let (_, apps) = guard.get_or_insert_with(|| {
        let limits = SandboxLimits {
            max_event_bytes: 64 << 10,
            max_output_bytes: 1 << 20,
            max_memory_bytes: Some(64 << 20),
            deadline: Some(Duration::from_millis(500)),
        };
        let runtime = Runtime::builder()
            .limits(limits)
            .build()
            .expect("the guest compiles");
        let apps = Apps {
            text: load(&runtime, EventFormat::Text),
            json: load(&runtime, EventFormat::Json),
        };
        (runtime, apps)
    });
    let Some((&pick, event)) = data.split_first() else {
        return;
    };
    let app = if pick & 1 == 0 {
        &mut apps.text
    } else {
        &mut apps.json
    };
    match app.dispatch(event) {
        Ok(values) => assert_eq!(values.len(), 1, "the counter answers once per event"),
        // The counter never faults on its own: an event that fails it (or
        // its sandbox) is a finding, not noise.
        Err(e) if e.is_fatal() => panic!("an event failed the counter app: {e}"),
        Err(_) => {}
    }
});
