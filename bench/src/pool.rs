//! 1,000 apps in one `Pool`: what each costs in memory and how long each
//! takes to load, to answer its first event, and to answer later ones; and
//! how a later event's cost grows with the number of apps it takes turns
//! with (the pool's working set against the caches).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use elmbox::{Pool, PoolConfig};

use crate::{counter, quiet_config, spread};

const APPS: usize = 1000;
/// Events per app after the first.
const LATER: usize = 10;
/// Pool sizes for the working-set curve, and the later events timed at
/// each size (in rounds over all its apps), in turns of their own.
const CURVE_SIZES: [usize; 5] = [10, 30, 100, 300, 1000];
const CURVE_EVENTS: usize = 20_000;
const CURVE_TURNS: usize = 5;

pub fn section(root: &Path) -> anyhow::Result<String> {
    let pool = Pool::new(PoolConfig {
        max_apps: APPS as u32,
        ..PoolConfig::default()
    })?;
    let (path, kind) = counter(root);
    let js =
        std::fs::read(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let image = pool.runtime().snapshot(&js, quiet_config())?;
    let names = tenant_names(APPS);

    let before = Memory::now()?;
    let started = Instant::now();
    for name in &names {
        pool.load_image(name, &image)?;
    }
    let load = started.elapsed();
    let loaded = Memory::now()?;

    let started = Instant::now();
    for name in &names {
        pool.dispatch_json(name, "first")?;
    }
    let first = started.elapsed();
    let after_first = Memory::now()?;

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
    let after_later = Memory::now()?;
    let linear = pool.with_app(&names[0], |app| app.memory())?;

    let kb = |bytes: u64| format!("{:.0} KB", bytes as f64 / APPS as f64 / 1024.0);
    let mean = |total: Duration, n: usize| crate::ms(total / n as u32);
    let mut doc = String::new();
    writeln!(
        doc,
        "{APPS} counter apps ({kind}) in one `Pool` (pooling allocator, CPU deadlines on), all \
         started from one image of it, each then sent one event and {LATER} more \
         (single thread). Memory per app is the process's growth divided by {APPS}, read from \
         `/proc/self/smaps_rollup`: *private* is the pages an app has written (its copies of \
         the image's pages), *resident* also counts each app's mapping of the image's pages it \
         has only read, which all apps share (one copy in RAM), and *proportional* (PSS) \
         divides those among the apps that map them.\n"
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
    for (what, memory) in [
        ("once loaded", &loaded),
        ("after its first event", &after_first),
        (&format!("after {} events", LATER + 1), &after_later),
    ] {
        let grown = memory.minus(&before);
        writeln!(
            doc,
            "| memory {what}: private / proportional / resident | {} / {} / {} |",
            kb(grown.private),
            kb(grown.proportional),
            kb(grown.resident)
        )?;
    }
    writeln!(
        doc,
        "| linear memory (address space; mostly the untouched 8 MiB stack) | {:.1} MB |",
        mb(linear.linear_memory_bytes)
    )?;
    writeln!(
        doc,
        "\nProcess memory with all {APPS} apps after {} events each: {:.0} MB private, \
         {:.0} MB resident ({:.0} MB and {:.0} MB before loading them).",
        LATER + 1,
        mb(after_later.private),
        mb(after_later.resident),
        mb(before.private),
        mb(before.resident)
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

    // The working set: a later event's cost by how many apps take turns.
    writeln!(
        doc,
        "\nA later event by the number of apps taking turns ({CURVE_EVENTS} events to the \
         apps in rounds, {CURVE_TURNS} turns at each size: median and spread), against the \
         app alone in a `Pool` of its own above. What all the apps have written is their \
         private memory, past this machine's caches (2 MiB of L2, 32 MiB of L3) from a few \
         dozen apps on.\n"
    )?;
    writeln!(
        doc,
        "| apps | private memory of all | a later event | / alone in a loop |"
    )?;
    writeln!(doc, "|---:|---:|---:|---:|")?;
    for apps in CURVE_SIZES {
        let (times, private) = later_events(&js, apps)?;
        let ratios = times
            .iter()
            .map(|t| t.as_secs_f64() / in_pool.as_secs_f64())
            .collect();
        let (ratio, low, high) = spread(ratios);
        let (time, _, _) = spread(times.iter().map(Duration::as_secs_f64).collect());
        writeln!(
            doc,
            "| {apps} | {:.0} MB | {} | {ratio:.2} ({low:.2}-{high:.2}) |",
            mb(private),
            crate::ms(Duration::from_secs_f64(time))
        )?;
    }

    // What an event writes, net: the lines of the app's memory that differ
    // after it. Lines written and restored (a reference count counted up
    // and down again) do not show; the first event's private pages above,
    // against the pages it changes here, count those.
    let mut app = plain.load(&js, quiet_config())?;
    let loaded_bytes = app.state()?.memory;
    app.dispatch_json("first")?;
    let first_bytes = app.state()?.memory;
    app.dispatch_json("later")?;
    let later_bytes = app.state()?.memory;
    let (first_pages, first_lines) = changed(&loaded_bytes, &first_bytes);
    let (later_pages, later_lines) = changed(&first_bytes, &later_bytes);
    writeln!(
        doc,
        "\nWhat one event leaves changed in its app's linear memory (an `App` on \
         `Runtime::new()`, its memory compared before and after): its first event \
         {first_lines} lines of 64 bytes in {first_pages} pages ({} KB), against the \
         {} KB a pooled app's first event makes its own above; a later event \
         {later_lines} lines in {later_pages} pages.",
        first_pages * 4,
        after_first.minus(&before).private / APPS as u64 / 1024
    )?;
    Ok(doc)
}

/// Pages of 4 KiB and lines of 64 bytes that differ between `a` and `b`.
fn changed(a: &[u8], b: &[u8]) -> (usize, usize) {
    let differ = |size: usize| {
        a.chunks(size)
            .zip(b.chunks(size))
            .filter(|(x, y)| x != y)
            .count()
    };
    (differ(4096), differ(64))
}

fn tenant_names(apps: usize) -> Vec<String> {
    (0..apps).map(|i| format!("tenant-{i:04}")).collect()
}

/// `apps` counters in a pool of their own, each sent its first event; then
/// [`CURVE_TURNS`] turns of [`CURVE_EVENTS`] later events in rounds over
/// them: each turn's time per event, and the private memory the apps added.
fn later_events(js: &[u8], apps: usize) -> anyhow::Result<(Vec<Duration>, u64)> {
    let pool = Pool::new(PoolConfig {
        max_apps: apps as u32,
        ..PoolConfig::default()
    })?;
    let image = pool.runtime().snapshot(js, quiet_config())?;
    let names = tenant_names(apps);
    let before = Memory::now()?;
    for name in &names {
        pool.load_image(name, &image)?;
        pool.dispatch_json(name, "first")?;
    }
    let rounds = CURVE_EVENTS.div_ceil(apps);
    let mut times = Vec::with_capacity(CURVE_TURNS);
    for _ in 0..CURVE_TURNS {
        let started = Instant::now();
        for _ in 0..rounds {
            for name in &names {
                pool.dispatch_json(name, "later")?;
            }
        }
        times.push(started.elapsed() / (rounds * apps) as u32);
    }
    let private = Memory::now()?.minus(&before).private;
    Ok((times, private))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / crate::MB
}

/// The process's memory, from `/proc/self/smaps_rollup`, in bytes.
struct Memory {
    resident: u64,
    proportional: u64,
    private: u64,
}

impl Memory {
    fn now() -> anyhow::Result<Memory> {
        let text = std::fs::read_to_string("/proc/self/smaps_rollup")
            .map_err(|e| anyhow::anyhow!("reading /proc/self/smaps_rollup: {e}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = text
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .ok_or_else(|| anyhow::anyhow!("no {name} in /proc/self/smaps_rollup"))?;
            let kb = line.trim().trim_end_matches("kB").trim();
            Ok(kb
                .parse::<u64>()
                .map_err(|e| anyhow::anyhow!("{name}: {kb:?}: {e}"))?
                * 1024)
        };
        Ok(Memory {
            resident: field("Rss")?,
            proportional: field("Pss")?,
            private: field("Private_Clean")? + field("Private_Dirty")?,
        })
    }

    fn minus(&self, earlier: &Memory) -> Memory {
        Memory {
            resident: self.resident.saturating_sub(earlier.resident),
            proportional: self.proportional.saturating_sub(earlier.proportional),
            private: self.private.saturating_sub(earlier.private),
        }
    }
}

/// Events to one app in a loop, for the comparison.
const ALONE_EVENTS: usize = 20_000;
