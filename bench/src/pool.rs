//! 1,000 apps in one `Pool`: what each costs in resident memory and how long
//! each takes to load, to answer its first event, and to answer later ones.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use elmbox::stats::process_rss_bytes;
use elmbox::{Pool, PoolConfig};

use crate::{fixtures, quiet_config};

const APPS: usize = 1000;
/// Events per app after the first.
const LATER: usize = 10;

pub fn section(root: &Path) -> anyhow::Result<String> {
    let pool = Pool::new(PoolConfig {
        max_apps: APPS as u32,
        ..PoolConfig::default()
    })?;
    let js = std::fs::read(fixtures(root).join("counter.js"))?;
    let image = pool.runtime().snapshot(&js, quiet_config())?;
    let names: Vec<String> = (0..APPS).map(|i| format!("tenant-{i:04}")).collect();

    let rss_before = rss()?;
    let started = Instant::now();
    for name in &names {
        pool.load_image(name, &image)?;
    }
    let load = started.elapsed();
    let rss_loaded = rss()?;

    let started = Instant::now();
    for name in &names {
        pool.dispatch_json(name, "first")?;
    }
    let first = started.elapsed();
    let rss_first = rss()?;

    let started = Instant::now();
    for k in 0..LATER {
        for name in &names {
            let answer = pool.dispatch_json(name, "later")?;
            anyhow::ensure!(
                answer.contains(&format!("\"count\":{}", k + 2)),
                "{name} lost count: {answer}"
            );
        }
    }
    let later = started.elapsed();
    let rss_later = rss()?;
    let linear = pool.with_app(&names[0], |app| app.memory())?;

    let per_app = |after: u64, before: u64| {
        format!(
            "{:.0} KB",
            after.saturating_sub(before) as f64 / APPS as f64 / 1024.0
        )
    };
    let mean = |total: Duration, n: usize| crate::ms(total / n as u32);
    let mut doc = String::new();
    writeln!(
        doc,
        "{APPS} counter apps in one `Pool` (pooling allocator, CPU deadlines on), all started \
         from one image of the counter fixture, each then sent one event and {LATER} more \
         (single thread). Resident memory is the process's RSS growth divided by {APPS}.\n"
    )?;
    writeln!(doc, "| what | per app |")?;
    writeln!(doc, "|---|---:|")?;
    writeln!(
        doc,
        "| load from the shared image (`Pool::load_image`, mean) | {} |",
        mean(load, APPS)
    )?;
    writeln!(
        doc,
        "| its first event (mean; copy-on-write faults included) | {} |",
        mean(first, APPS)
    )?;
    writeln!(
        doc,
        "| a later event (mean) | {} |",
        mean(later, APPS * LATER)
    )?;
    writeln!(
        doc,
        "| resident memory once loaded | {} |",
        per_app(rss_loaded, rss_before)
    )?;
    writeln!(
        doc,
        "| resident memory after its first event | {} |",
        per_app(rss_first, rss_before)
    )?;
    writeln!(
        doc,
        "| resident memory after {} events | {} |",
        LATER + 1,
        per_app(rss_later, rss_before)
    )?;
    writeln!(
        doc,
        "| linear memory (address space; mostly the untouched 8 MiB stack) | {:.1} MB |",
        linear.linear_memory_bytes as f64 / 1024.0 / 1024.0
    )?;
    writeln!(
        doc,
        "\nProcess RSS: {:.0} MB before loading, {:.0} MB with all {APPS} apps after {} events each.",
        rss_before as f64 / 1024.0 / 1024.0,
        rss_later as f64 / 1024.0 / 1024.0,
        LATER + 1
    )?;
    drop(pool);

    // Where a pool event's time goes: the same event to one app in a loop,
    // in a pool of its own, and alone with and without CPU deadlines.
    let pool_event = later / (APPS * LATER) as u32;
    let alone = |mut send: Box<dyn FnMut() -> anyhow::Result<()>>| -> anyhow::Result<Duration> {
        for _ in 0..ALONE_EVENTS / 10 {
            send()?;
        }
        let started = Instant::now();
        for _ in 0..ALONE_EVENTS {
            send()?;
        }
        Ok(started.elapsed() / ALONE_EVENTS as u32)
    };
    let single = Pool::new(PoolConfig {
        max_apps: 1,
        ..PoolConfig::default()
    })?;
    let image = single.runtime().snapshot(&js, quiet_config())?;
    single.load_image("alone", &image)?;
    let in_pool = alone(Box::new(|| {
        single
            .dispatch_json("alone", "later")
            .map(drop)
            .map_err(Into::into)
    }))?;
    let mut with_deadlines = image.instantiate()?;
    let deadlines = alone(Box::new(move || {
        with_deadlines
            .dispatch_json("later")
            .map(drop)
            .map_err(Into::into)
    }))?;
    let plain = elmbox::Runtime::new()?;
    let mut without = plain.load(&js, quiet_config())?;
    let no_deadlines = alone(Box::new(move || {
        without.dispatch_json("later").map(drop).map_err(Into::into)
    }))?;
    writeln!(
        doc,
        "\nThe same event to one app in a loop ({ALONE_EVENTS} events), against a later event \
         above (every event to another of the {APPS} apps):\n"
    )?;
    writeln!(
        doc,
        "| one app in a loop | per event | a pool event / this |"
    )?;
    writeln!(doc, "|---|---:|---:|")?;
    for (what, time) in [
        ("alone in a `Pool` of its own (CPU deadlines on)", in_pool),
        (
            "an `App` from the pool's image (CPU deadlines on)",
            deadlines,
        ),
        (
            "an `App` on `Runtime::new()` (no CPU deadlines)",
            no_deadlines,
        ),
    ] {
        writeln!(
            doc,
            "| {what} | {} | {:.2} |",
            crate::ms(time),
            pool_event.as_secs_f64() / time.as_secs_f64()
        )?;
    }
    Ok(doc)
}

/// Events to one app in a loop, for the comparison.
const ALONE_EVENTS: usize = 20_000;

fn rss() -> anyhow::Result<u64> {
    process_rss_bytes().ok_or_else(|| anyhow::anyhow!("no RSS figure on this platform"))
}
