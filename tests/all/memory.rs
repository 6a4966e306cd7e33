//! Memory stays bounded: after warm-up, neither the guest's linear memory nor
//! the QuickJS heap grows across 200,000 dispatches. A leaking app is the
//! positive control that shows the same check fails when it should.

use elmbox::{App, MemoryStats, Trend};
use elmbox_tests::{elm_like, load, sources};

const WARMUP: u64 = 20_000;
const MEASURED: u64 = 200_000;
const EVERY: u64 = 20_000;
/// Growth allowed after warm-up. A leak of even one small string per event
/// is tens of bytes per event; the memo's leak was ~250.
const MAX_BYTES_PER_EVENT: f64 = 0.5;

/// Runs warm-up, then `MEASURED` events, sampling memory every `EVERY`.
fn measure(app: &mut App, event: impl Fn(u64) -> String) -> (MemoryStats, Vec<(u64, MemoryStats)>) {
    for i in 0..WARMUP {
        app.dispatch_json(event(i)).unwrap();
    }
    let warm = app.memory().unwrap();
    let mut samples = Vec::new();
    for i in WARMUP..WARMUP + MEASURED {
        app.dispatch_json(event(i)).unwrap();
        if (i + 1 - WARMUP).is_multiple_of(EVERY) {
            samples.push((i + 1, app.memory().unwrap()));
        }
    }
    (warm, samples)
}

fn assert_bounded(label: &str, warm: MemoryStats, samples: &[(u64, MemoryStats)]) {
    let linear: Vec<_> = samples
        .iter()
        .map(|(n, m)| (*n, m.linear_memory_bytes))
        .collect();
    let heap: Vec<_> = samples.iter().map(|(n, m)| (*n, m.js_heap_bytes)).collect();
    let last = samples.last().unwrap().1;
    eprintln!(
        "{label}: linear {} -> {} bytes, QuickJS heap {} -> {} bytes, objects {} -> {}",
        warm.linear_memory_bytes,
        last.linear_memory_bytes,
        warm.js_heap_bytes,
        last.js_heap_bytes,
        warm.js_objects,
        last.js_objects
    );
    // Linear memory is the guest's high-water mark and never shrinks: flat
    // means it never needed another page after warm-up.
    assert_eq!(
        last.linear_memory_bytes, warm.linear_memory_bytes,
        "{label}: linear memory grew after warm-up: {linear:?}"
    );
    let trend = Trend::judge(&heap, 0, MAX_BYTES_PER_EVENT).unwrap();
    assert!(
        trend.bounded,
        "{label}: QuickJS heap grows {trend:?}: {heap:?}"
    );
    let peak = heap.iter().map(|h| h.1).max().unwrap();
    assert!(
        peak <= warm.js_heap_bytes + (2 << 20),
        "{label}: QuickJS heap peaked at {peak}, warm-up ended at {}",
        warm.js_heap_bytes
    );
}

#[test]
fn counter_memory_is_flat_over_200k_dispatches() {
    for source in sources("counter") {
        let mut app = load(&source.js);
        let (warm, samples) = measure(&mut app, |i| format!(r#"{{"type":"click","id":{i}}}"#));
        assert_bounded(&source.label, warm, &samples);
    }
}

#[test]
fn wordcount_memory_is_flat_over_200k_dispatches() {
    for source in sources("wordcount") {
        let mut app = load(&source.js);
        // A bounded vocabulary: the Dict stops growing once every word is in.
        let (warm, samples) = measure(&mut app, |i| {
            format!(
                r#"{{"text":"word{} and word{} again"}}"#,
                i % 97,
                (i * 7) % 101
            )
        });
        assert_bounded(&source.label, warm, &samples);
    }
}

#[test]
fn the_check_fails_on_an_app_that_leaks() {
    // Keeps every event: a real leak of about one short string per event.
    let js = elm_like(
        "var kept = [], subs = [];
         function init() { return { ports: {
           onEvent: { send: function (v) { kept.push(v); subs.forEach(function (s) { s(kept.length); }); } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    );
    let mut app = load(js.as_bytes());
    let (warm, samples) = measure(&mut app, |i| format!("event {i}"));
    let result = std::panic::catch_unwind(|| assert_bounded("leaky", warm, &samples));
    assert!(
        result.is_err(),
        "a leak of one string per event must be flagged"
    );
    let heap: Vec<_> = samples.iter().map(|(n, m)| (*n, m.js_heap_bytes)).collect();
    let trend = Trend::judge(&heap, 0, MAX_BYTES_PER_EVENT).unwrap();
    assert!(trend.bytes_per_event > 10.0, "{trend:?}");
}

/// The memo's January host evaluated a fresh snippet per event. QuickJS
/// frees each compiled snippet once it has run, so memory stays flat: what
/// this costs is time (see docs/BENCHMARKS.md), not memory.
#[test]
fn eval_mode_snippets_are_freed() {
    for source in sources("counter") {
        let (config, _) = elmbox_tests::config();
        let mut app = elmbox_tests::runtime()
            .load(&source.js, config.dispatch_mode(elmbox::DispatchMode::Eval))
            .unwrap();
        assert_eq!(
            app.dispatch("first").unwrap()[0]["count"],
            serde_json::json!(1)
        );
        let (warm, samples) = measure(&mut app, |i| format!(r#"{{"type":"click","id":{i}}}"#));
        assert_bounded(&source.label, warm, &samples);
    }
}
