//! Pre-initialised modules (`elmbox build`): how long a build takes, how big
//! the modules are with and without a `wasm-opt` pass, and how fast an app
//! starts from one, with wasmtime's default (on-demand) allocator and with
//! its pooling allocator. Both reuse one `InstancePre` per module
//! (`AppImage`) and map the snapshot copy-on-write.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use elmbox::{AppImage, BuildOptions, Runtime};

use crate::{fixtures, median_time, ms, quiet_config, EMPTY_APP};

/// Instances per measurement of instantiate time.
const STARTS: usize = 400;

pub fn section(root: &Path, runtime: &Runtime) -> anyhow::Result<String> {
    let mut doc = String::new();
    // A first build warms the caches; the builds below are timed without it.
    // (The runtime compiled the guest instrumented already: a build only
    // loads the app, parses the guest for Wizer, and writes the snapshot.)
    let started = Instant::now();
    runtime.build(EMPTY_APP, quiet_config(), &BuildOptions::default())?;
    writeln!(
        doc,
        "The first build in a process (an empty app): {}.\n",
        ms(started.elapsed())
    )?;
    writeln!(
        doc,
        "| module | build | size | after `wasm-opt -O` | wasm-opt time |"
    )?;
    writeln!(doc, "|---|---:|---:|---:|---:|")?;
    writeln!(
        doc,
        "| the bare guest (no app; embedded in the `elmbox` binary) | | {} | | |",
        kb(elmbox::GUEST_WASM.len())
    )?;
    let scratch = root.join("target/bench-modules");
    std::fs::create_dir_all(&scratch)?;
    let mut counter = Vec::new();
    for name in ["counter", "wordcount"] {
        let js = std::fs::read(fixtures(root).join(format!("{name}.js")))?;
        let started = Instant::now();
        let wasm = runtime.build(&js, quiet_config(), &BuildOptions::default())?;
        let build = started.elapsed();
        let optimised = wasm_opt(&scratch, name, &wasm, runtime)?;
        writeln!(
            doc,
            "| {name} fixture, `elmbox build` | {} | {} | {} | {} |",
            ms(build),
            kb(wasm.len()),
            optimised
                .as_ref()
                .map_or("wasm-opt not installed".into(), |o| {
                    format!("{} ({:+.0}%)", kb(o.0), pct(o.0, wasm.len()))
                }),
            optimised.as_ref().map_or(String::new(), |o| ms(o.1)),
        )?;
        if name == "counter" {
            counter = wasm;
        }
    }

    let pooled = Runtime::builder()
        .engine_config(&pooling(STARTS as u32 + 8))
        .build()?;
    let on_demand = runtime.image(&counter)?.console(quiet_config().console);
    let from_pool = pooled.image(&counter)?.console(quiet_config().console);
    let js = std::fs::read(fixtures(root).join("counter.js"))?;
    let cold = median_time(50, || runtime.load(&js, quiet_config()).map(drop))?;
    writeln!(
        doc,
        "\nStarting the counter app, median of {STARTS} (each instance dropped after):\n"
    )?;
    writeln!(doc, "| how | instantiate | instantiate + first event |")?;
    writeln!(doc, "|---|---:|---:|")?;
    for (how, image, rt) in [
        ("from its module, default allocator", &on_demand, runtime),
        ("from its module, pooling allocator", &from_pool, &pooled),
    ] {
        let (start, first) = starts(image)?;
        writeln!(doc, "| {how} | {} | {} |", ms(start), ms(first))?;
        writeln!(
            doc,
            "| the same, wasmtime's `InstancePre::instantiate` alone | {} | |",
            ms(raw_instantiate(rt.engine(), &counter)?)
        )?;
    }
    writeln!(
        doc,
        "| from JavaScript (`Runtime::load`: instantiate, evaluate, `init`; median of 50) | {} | |",
        ms(cold)
    )?;
    Ok(doc)
}

/// Median instantiate time, and instantiate plus one event.
fn starts(image: &AppImage) -> anyhow::Result<(Duration, Duration)> {
    let start = median_time(STARTS, || image.instantiate().map(drop))?;
    let first = median_time(STARTS, || {
        image
            .instantiate()
            .and_then(|mut app| app.dispatch_json("hello"))
            .map(drop)
    })?;
    Ok((start, first))
}

/// The pooling allocator with room for `slots` apps at once.
pub fn pooling(slots: u32) -> wasmtime::Config {
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_core_instances(slots)
        .total_memories(slots)
        .total_tables(slots)
        .total_stacks(slots)
        .max_memory_size(256 << 20);
    let mut config = wasmtime::Config::new();
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Runs `wasm-opt -O` on the module, checks that the result still answers,
/// and returns its size and the pass's time; `None` without wasm-opt.
/// Binaryen 108 reads the features the module uses from its
/// `target_features` section, which the snapshot keeps.
fn wasm_opt(
    scratch: &Path,
    name: &str,
    wasm: &[u8],
    runtime: &Runtime,
) -> anyhow::Result<Option<(usize, Duration)>> {
    let input = scratch.join(format!("{name}.wasm"));
    let output = scratch.join(format!("{name}.opt.wasm"));
    std::fs::write(&input, wasm)?;
    let started = Instant::now();
    let status = match Command::new("wasm-opt")
        .arg("-O")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .status()
    {
        Ok(status) => status,
        Err(_) => return Ok(None),
    };
    let took = started.elapsed();
    anyhow::ensure!(status.success(), "wasm-opt failed on {name}");
    let optimised = std::fs::read(&output)?;
    let mut app = runtime
        .image(&optimised)
        .and_then(|image| image.instantiate())
        .with_context(|| format!("{name} after wasm-opt does not start"))?;
    app.dispatch_json(r#"{"text":"still answers"}"#)
        .with_context(|| format!("{name} after wasm-opt does not answer"))?;
    Ok(Some((optimised.len(), took)))
}

fn kb(bytes: usize) -> String {
    format!("{:.0} KB", bytes as f64 / 1024.0)
}

fn pct(new: usize, old: usize) -> f64 {
    (new as f64 / old as f64 - 1.0) * 100.0
}

/// wasmtime alone: instantiating the module through an `InstancePre`, with
/// its WASI imports stubbed, and nothing of elmbox's own set-up.
fn raw_instantiate(engine: &wasmtime::Engine, wasm: &[u8]) -> anyhow::Result<Duration> {
    let module = wasmtime::Module::new(engine, wasm)?;
    let mut linker = wasmtime::Linker::<()>::new(engine);
    linker.define_unknown_imports_as_traps(&module)?;
    let pre = linker.instantiate_pre(&module)?;
    median_time(STARTS, || {
        let mut store = wasmtime::Store::new(engine, ());
        pre.instantiate(&mut store).map(drop)
    })
}
