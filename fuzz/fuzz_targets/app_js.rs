//! Arbitrary bytes as an app's JavaScript: loaded into a fresh sandbox with
//! a CPU deadline, a memory cap and a QuickJS heap limit, then sent one
//! event. Any error is fine; a host panic or undefined behaviour is not.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use elmbox::{AppConfig, Console, Runtime, SandboxLimits};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let limits = SandboxLimits {
            max_memory_bytes: Some(32 << 20),
            deadline: Some(Duration::from_millis(200)),
            ..SandboxLimits::default()
        };
        Runtime::builder()
            .limits(limits)
            .build()
            .expect("the guest compiles")
    })
}

fuzz_target!(|source: &[u8]| {
    let config = AppConfig::default()
        .epoch_ms(0.0)
        .js_memory_limit(16 << 20)
        .same_instant_timer_limit(1_000)
        .console(Console::new(|_, _| {}));
    if let Ok(mut app) = runtime().load(source, config) {
        let _ = app.dispatch("event");
        let _ = app.advance_time(1_000);
        let _ = app.memory();
    }
});
