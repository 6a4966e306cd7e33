//! `GET /metrics` in the Prometheus text format ([`Metrics`]): per app,
//! events, errors, restores, the latency from taking an event to releasing
//! its answer, timers fired and how late the app was woken for them,
//! outgoing HTTP requests by how they ended,
//! linear memory and QuickJS heap (read when scraped); per process,
//! resident memory, the apps served, and the store's health and failed
//! commits.

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

/// An app's outgoing HTTP requests, by how they ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppOutcome {
    app: String,
    outcome: &'static str,
}

type Latency = Family<App, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    events: Family<App, Counter>,
    errors: Family<App, Counter>,
    restores: Family<App, Counter>,
    latency: Latency,
    timers_fired: Family<App, Counter>,
    timer_lateness: Latency,
    http_requests: Family<AppOutcome, Counter>,
    linear_memory: Family<App, Gauge>,
    js_heap: Family<App, Gauge>,
    rss: Gauge,
    apps: Gauge,
    apps_with_timers: Gauge,
    commits: Counter,
    store_errors: Counter,
    store_healthy: Gauge,
}

/// 50 µs to ~1.6 s: a durable answer takes at least one fsync (~170 µs).
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(50e-6, 2.0, 16))
}

/// 100 µs to ~6.5 s: a wake is late by the scheduler's reaction (well under
/// a millisecond), the app's queue of events before it, or a gap.
fn lateness_histogram() -> Histogram {
    Histogram::new(exponential_buckets(100e-6, 2.0, 17))
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
        let timers_fired = add(
            r,
            "timers_fired",
            "Timers of the app that came due and fired (Process.sleep, Time.every)",
            Family::default(),
        );
        let timer_lateness = add(
            r,
            "timer_lateness_seconds",
            "How late the app was woken for its earliest due timer",
            Family::new_with_constructor(lateness_histogram as fn() -> Histogram),
        );
        let http_requests = add(
            r,
            "http_requests",
            "Outgoing HTTP requests of the app, by how they ended (ok: a response of any \
             status; not_allowed: a host not in allow-http, never connected to; timeout, \
             too_large, too_many, redirect_not_allowed, ...: a limit; network: no response)",
            Family::default(),
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
        let apps_with_timers = add(
            r,
            "apps_with_timers",
            "Apps with a timer armed, parked ones included",
            Gauge::default(),
        );
        let commits = add(
            r,
            "store_commits",
            "Commits the store made (each one sync of the disk, many inputs in each)",
            Counter::default(),
        );
        let store_errors = add(
            r,
            "store_errors",
            "Commits of the store that failed (an I/O error, a failed fsync, a full disk)",
            Counter::default(),
        );
        let store_healthy = add(
            r,
            "store_healthy",
            "1 while the store takes commits; 0 while it heals (a commit failed, the apps it \
             failed restore themselves) or cannot be opened",
            Gauge::default(),
        );
        Metrics {
            registry,
            store_errors,
            store_healthy,
            apps_with_timers,
            commits,
            events,
            errors,
            restores,
            latency,
            timers_fired,
            timer_lateness,
            http_requests,
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

    /// `fired` timers of `app` came due and fired in one of its inputs.
    pub fn timers_fired(&self, app: &str, fired: u32) {
        if fired > 0 {
            self.timers_fired
                .get_or_create(&label(app))
                .inc_by(fired.into());
        }
    }

    /// `app` was woken for its timers `seconds` after the earliest was due.
    pub fn woken_late(&self, app: &str, seconds: f64) {
        self.timer_lateness
            .get_or_create(&label(app))
            .observe(seconds);
    }

    /// One outgoing HTTP request of `app` ended, as `outcome` says.
    pub fn http_request_ended(&self, app: &str, outcome: &'static str) {
        self.http_requests
            .get_or_create(&AppOutcome {
                app: app.to_string(),
                outcome,
            })
            .inc();
    }

    /// The app is gone: its series go with it.
    pub fn forget(&self, app: &str) {
        let app = label(app);
        self.events.remove(&app);
        self.errors.remove(&app);
        self.restores.remove(&app);
        self.latency.remove(&app);
        self.timers_fired.remove(&app);
        self.timer_lateness.remove(&app);
        for ended in elmbox_outgoing::Ended::ALL {
            self.http_requests.remove(&AppOutcome {
                app: app.app.clone(),
                outcome: ended.label(),
            });
        }
        self.linear_memory.remove(&app);
        self.js_heap.remove(&app);
    }

    /// The text a scrape gets, with memory as `memory` says it is now, and
    /// the apps with timers and the store's commits as they are now.
    pub fn render(
        &self,
        memory: &[(String, MemoryStats)],
        apps_with_timers: usize,
        commits: u64,
        (store_health, store_errors): (elmbox::durable::Health, u64),
    ) -> String {
        self.store_errors
            .inc_by(store_errors.saturating_sub(self.store_errors.get()));
        self.store_healthy.set(i64::from(store_health.is_healthy()));
        self.apps_with_timers.set(apps_with_timers as i64);
        // A counter only goes up: what it lacks of the store's count.
        self.commits
            .inc_by(commits.saturating_sub(self.commits.get()));
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
