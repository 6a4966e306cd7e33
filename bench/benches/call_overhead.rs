//! The host-to-guest call overhead: one dispatch to an app that does nothing,
//! through the Wasm sandbox and natively.

use criterion::{criterion_group, criterion_main, Criterion};
use elmbox::{AppConfig, Console, Runtime};
use elmbox_guest::native::NativeApp;

const EMPTY_APP: &[u8] = b"this.Elm = { Main: { init: function () { return { ports: { onEvent: { send: function () {} }, respond: { subscribe: function () {} } } }; } } };";

fn empty_dispatch(c: &mut Criterion) {
    let config = AppConfig::default()
        .epoch_ms(0.0)
        .console(Console::new(|_, _| {}));
    let runtime = Runtime::new().expect("guest compiles");
    let mut app = runtime.load(EMPTY_APP, config.clone()).expect("loads");
    let settings = config.settings().expect("valid settings");
    let mut native = NativeApp::load(settings, EMPTY_APP).expect("loads natively");

    let mut group = c.benchmark_group("empty_dispatch");
    group.bench_function("wasm", |b| b.iter(|| app.dispatch_json("x").unwrap()));
    group.bench_function("native", |b| b.iter(|| native.dispatch(b"x").unwrap()));
    group.finish();
}

criterion_group!(benches, empty_dispatch);
criterion_main!(benches);
