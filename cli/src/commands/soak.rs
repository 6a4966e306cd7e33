//! `elmbox soak`: millions of generated events through one loaded app, with
//! memory printed after every batch and a verdict on its growth at the end.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use elmbox::stats::process_rss_bytes;
use elmbox::{DispatchMode, MemoryStats, Trend};
use indicatif::{ProgressBar, ProgressStyle};

use crate::app_args::{AppArgs, Origin, SandboxArgs};
use crate::report::{self, BatchRow, Panel};

/// Dispatch batches of generated events to one loaded app and report time
/// and memory per batch, then events/s and whether memory stayed bounded.
///
/// Exit status 1 when memory grows past --max-growth after warm-up.
#[derive(Args)]
pub struct SoakArgs {
    #[command(flatten)]
    app: AppArgs,

    #[command(flatten)]
    sandbox: SandboxArgs,

    /// How each event reaches the app: `call` is elmbox's way; `eval` and
    /// `reload` reproduce the anti-patterns it replaces, for comparison.
    #[arg(long, value_enum, default_value_t = Mode::Call)]
    mode: Mode,

    #[arg(long, default_value_t = 15)]
    batches: u64,

    #[arg(long, default_value_t = 200_000, value_name = "EVENTS")]
    batch_size: u64,

    /// Event template; `{i}` becomes the event's number, counting from 1.
    #[arg(
        long,
        default_value = r#"{"type":"click","id":{i}}"#,
        value_name = "TEMPLATE"
    )]
    event: String,

    /// Batches left out of the memory verdict while caches and heaps settle.
    #[arg(long, default_value_t = 2, value_name = "BATCHES")]
    warmup: usize,

    /// Growth after warm-up, in bytes per event, above which memory is judged
    /// unbounded (the leak this tool was built to expose was ~250 B/event).
    #[arg(long, default_value_t = 1.0, value_name = "BYTES")]
    max_growth: f64,

    /// Write the per-batch figures to DIR/soak.csv and chart them in
    /// DIR/soak.png and DIR/soak.svg.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// One function call per event into the app loaded once.
    Call,
    /// Per event, evaluate a fresh source snippet that calls the loaded app.
    Eval,
    /// Per event, evaluate the whole app again as a fresh ES module (state is lost).
    Reload,
}

impl From<Mode> for DispatchMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Call => DispatchMode::Call,
            Mode::Eval => DispatchMode::Eval,
            Mode::Reload => DispatchMode::Reload,
        }
    }
}

const MB: f64 = 1024.0 * 1024.0;

pub fn soak(args: SoakArgs) -> anyhow::Result<ExitCode> {
    let mode = args
        .mode
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default();
    let (mut app, origin) = args.app.open(&args.sandbox, args.mode.into())?;
    let gc = match origin {
        Origin::Source(config) => format!("{} bytes", config.gc_threshold),
        Origin::Module { .. } => "as built".to_string(),
    };
    let setting = format!("{} in {mode} mode, QuickJS GC threshold {gc}", app.name());
    println!("Soaking {setting}");
    let template: Vec<&str> = args.event.split("{i}").collect();
    let total = args.batches * args.batch_size;

    let progress = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events, {per_sec}, eta {eta}")
            .expect("valid progress template"),
    );
    let mut event = String::new();
    let mut last_response = String::new();
    let (mut errors, mut first_error) = (0u64, None::<String>);
    // (events so far, batch ms, memory, RSS) after each batch.
    let mut samples: Vec<(u64, u64, MemoryStats, u64)> = Vec::new();
    let started = Instant::now();

    for batch in 0..args.batches {
        let batch_started = Instant::now();
        for i in 0..args.batch_size {
            let number = batch * args.batch_size + i + 1;
            render(&template, number, &mut event);
            match app.dispatch_json(&event) {
                Ok(response) => last_response = response,
                Err(e) if e.is_fatal() => {
                    progress.abandon();
                    anyhow::bail!("event {number}: {e}");
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert_with(|| format!("event {number}: {e}"));
                }
            }
            if number.is_multiple_of(4096) {
                progress.set_position(number);
            }
        }
        let elapsed = batch_started.elapsed();
        let memory = app.memory()?;
        let rss = process_rss_bytes().unwrap_or(0);
        let done = (batch + 1) * args.batch_size;
        samples.push((done, elapsed.as_millis() as u64, memory, rss));
        progress.set_position(done);
        progress.suspend(|| {
            println!(
                "Completed batch {} of {} in {} ms, lastEventResponse: {}",
                batch + 1,
                args.batches,
                elapsed.as_millis(),
                last_response
            );
            println!(
                "Memory use: linear memory MB: {:.2}, QuickJS heap MB: {:.2}, process RSS MB: {:.2}",
                memory.linear_memory_bytes as f64 / MB,
                memory.js_heap_bytes as f64 / MB,
                rss as f64 / MB
            );
        });
    }
    progress.finish_and_clear();

    if let Some(dir) = &args.report {
        write_report(dir, &setting, &samples)?;
    }

    let seconds = started.elapsed().as_secs_f64();
    println!(
        "Throughput: {total} events in {seconds:.1} s = {:.0} events/s",
        total as f64 / seconds
    );
    if let Some(e) = first_error {
        println!("Errors: {errors} events failed; first: {e}");
    }

    let series = |f: fn(&(u64, u64, MemoryStats, u64)) -> u64| -> Vec<(u64, u64)> {
        samples.iter().map(|s| (s.0, f(s))).collect()
    };
    let verdicts = [
        (
            "linear memory",
            Trend::judge(
                &series(|s| s.2.linear_memory_bytes),
                args.warmup,
                args.max_growth,
            ),
        ),
        (
            "QuickJS heap",
            Trend::judge(&series(|s| s.2.js_heap_bytes), args.warmup, args.max_growth),
        ),
        (
            "process RSS",
            Trend::judge(&series(|s| s.3), args.warmup, args.max_growth),
        ),
    ];
    let mut line = String::new();
    let mut bounded = true;
    for (name, trend) in &verdicts {
        match trend {
            Some(t) => {
                bounded &= t.bounded;
                let _ = write!(
                    line,
                    "{}{name} {:+.3} B/event",
                    if line.is_empty() { "" } else { ", " },
                    t.bytes_per_event
                );
            }
            None => {
                let _ = write!(
                    line,
                    "{}{name} n/a",
                    if line.is_empty() { "" } else { ", " }
                );
            }
        }
    }
    if verdicts.iter().all(|(_, t)| t.is_none()) {
        println!(
            "Memory verdict: not enough batches after the {} warm-up batches to judge",
            args.warmup
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Memory verdict: {} after warm-up (batches {}-{}): {line} (limit {} B/event)",
        if bounded { "BOUNDED" } else { "GROWING" },
        args.warmup + 1,
        args.batches,
        args.max_growth
    );
    Ok(if bounded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn write_report(
    dir: &std::path::Path,
    setting: &str,
    samples: &[(u64, u64, MemoryStats, u64)],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let rows: Vec<BatchRow> = samples
        .iter()
        .enumerate()
        .map(|(i, &(events, batch_ms, memory, rss))| BatchRow {
            batch: i as u64 + 1,
            events,
            batch_ms,
            linear_memory_bytes: memory.linear_memory_bytes,
            quickjs_heap_bytes: memory.js_heap_bytes,
            rss_bytes: rss,
            quickjs_objects: memory.js_objects,
        })
        .collect();
    report::write_csv(&dir.join("soak.csv"), &rows)?;
    let panel = [Panel {
        title: setting.to_string(),
        rows,
    }];
    for name in ["soak.png", "soak.svg"] {
        report::draw(&dir.join(name), "elmbox soak: memory per batch", &panel)?;
    }
    println!("Report: {}", dir.join("soak.{csv,png,svg}").display());
    Ok(())
}

/// Writes the template with `{i}` replaced by `number` into `out`.
fn render(template: &[&str], number: u64, out: &mut String) {
    out.clear();
    for (k, part) in template.iter().enumerate() {
        if k > 0 {
            let _ = write!(out, "{number}");
        }
        out.push_str(part);
    }
}
