//! `GET /metrics` in the Prometheus text format ([`Metrics`]): per app,
//! events, errors, restores, the latency from taking an event to releasing
//! its answer, linear memory and QuickJS heap (read when scraped); per
//! process, resident memory and the apps served.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use elmbox::{Error, MemoryStats};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct App {
    app: String,
}

fn label(app: &str) -> App {
    App {
        app: app.to_string(),
    }
}

type Latency = Family<App, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    events: Family<App, Counter>,
    errors: Family<App, Counter>,
    restores: Family<App, Counter>,
    latency: Latency,
    linear_memory: Family<App, Gauge>,
    js_heap: Family<App, Gauge>,
    rss: Gauge,
    apps: Gauge,
}

/// 50 µs to ~1.6 s: a durable answer takes at least one fsync (~170 µs).
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(50e-6, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("elmbox");
        // Each series is registered as a clone: both share its value.
        fn add<M: prometheus_client::registry::Metric + Clone>(
            registry: &mut Registry,
            name: &str,
            help: &str,
            metric: M,
        ) -> M {
            registry.register(name, help, metric.clone());
            metric
        }
        let r = &mut registry;
        let events = add(r, "events", "Events answered", Family::default());
        let errors = add(
            r,
            "event_errors",
            "Events answered with an error (refused by the app, or a fault)",
            Family::default(),
        );
        let restores = add(
            r,
            "restores",
            "Times the app was restored after a fault",
            Family::default(),
        );
        let latency = add(
            r,
            "event_seconds",
            "From taking an event to releasing its answer, once durable",
            Family::new_with_constructor(latency_histogram as fn() -> Histogram),
        );
        let linear_memory = add(
            r,
            "linear_memory_bytes",
            "The app's linear memory",
            Family::default(),
        );
        let js_heap = add(
            r,
            "js_heap_bytes",
            "Bytes QuickJS has allocated for the app",
            Family::default(),
        );
        let rss = add(
            r,
            "process_rss_bytes",
            "Resident memory of the server",
            Gauge::default(),
        );
        let apps = add(
            r,
            "apps_in_memory",
            "Apps in memory (not parked)",
            Gauge::default(),
        );
        Metrics {
            registry,
            events,
            errors,
            restores,
            latency,
            linear_memory,
            js_heap,
            rss,
            apps,
        }
    }

    /// One event of `app` answered after `seconds`, with `outcome`.
    pub fn answered(&self, app: &str, seconds: f64, outcome: Result<(), &Error>) {
        let app = label(app);
        self.events.get_or_create(&app).inc();
        self.latency.get_or_create(&app).observe(seconds);
        if let Err(e) = outcome {
            self.errors.get_or_create(&app).inc();
            if matches!(e, Error::Restored { .. }) {
                self.restores.get_or_create(&app).inc();
            }
        }
    }

    /// The app is gone: its series go with it.
    pub fn forget(&self, app: &str) {
        let app = label(app);
        self.events.remove(&app);
        self.errors.remove(&app);
        self.restores.remove(&app);
        self.latency.remove(&app);
        self.linear_memory.remove(&app);
        self.js_heap.remove(&app);
    }

    /// The text a scrape gets, with memory as `memory` says it is now.
    pub fn render(&self, memory: &[(String, MemoryStats)]) -> String {
        // Parked apps have no memory to show.
        self.linear_memory.clear();
        self.js_heap.clear();
        for (app, stats) in memory {
            let app = label(app);
            self.linear_memory
                .get_or_create(&app)
                .set(stats.linear_memory_bytes as i64);
            self.js_heap
                .get_or_create(&app)
                .set(stats.js_heap_bytes as i64);
        }
        self.apps.set(memory.len() as i64);
        if let Some(rss) = elmbox::stats::process_rss_bytes() {
            self.rss.set(rss as i64);
        }
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String does not fail");
        text
    }
}
