//! Arbitrary bytes as an app's JavaScript: loaded into a fresh sandbox with
//! a CPU deadline, a memory cap and a QuickJS heap limit, then sent one
//! event. Any error is fine; a host panic or undefined behaviour is not.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use elmbox::{AppConfig, Console, Limits, Runtime};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::with_deadlines().expect("the guest compiles"))
}

fuzz_target!(|source: &[u8]| {
    let limits = Limits {
        max_memory_bytes: Some(32 << 20),
        js_memory_limit: Some(16 << 20),
        deadline: Some(Duration::from_millis(200)),
        same_instant_timer_limit: 1_000,
        ..Limits::default()
    };
    let config = AppConfig::default()
        .epoch_ms(0.0)
        .limits(limits)
        .console(Console::new(|_, _| {}));
    if let Ok(mut app) = runtime().load(source, config) {
        let _ = app.dispatch("event");
        let _ = app.advance_time(1_000);
        let _ = app.memory();
    }
});
