//! `elmbox state DIR|URL`: what a state directory or database holds.

use std::process::ExitCode;
use std::time::SystemTime;

use clap::Args;
use elmbox::app_name;
use elmbox::durable::StateLocation;

/// Show what the state of `elmbox run --state` holds (a directory, or a
/// PostgreSQL database's URL): its apps, their events, log size and
/// snapshots. Reads it without taking it from a process that runs it.
#[derive(Args)]
pub struct StateArgs {
    /// The state directory, or `postgres://user:password@host:port/db`.
    #[arg(value_name = "DIR|URL")]
    location: StateLocation,
}

pub fn state(args: StateArgs) -> anyhow::Result<ExitCode> {
    let store = args.location.open_read_only()?;
    let apps = store.apps()?;
    println!("{}: {}", args.location, size(store.bytes()?));
    if apps.is_empty() {
        println!("  no apps");
    }
    for app in apps {
        let snapshot_bytes: u64 = app.snapshots.iter().map(|s| s.bytes).sum();
        // As an older elmbox may have let it in: nothing a terminal acts on.
        println!("{}", app_name::printable(&app.app.name));
        println!("  code          {}", app.app.code);
        println!(
            "  events        {} kept ({} of log){}",
            app.records,
            size(app.log_bytes),
            match app.kept {
                Some((1, last)) => format!(", 1 to {last}: all of them"),
                Some((first, last)) => format!(
                    ", {first} to {last}: the {} before dropped by --retain-log",
                    first - 1
                ),
                None => String::new(),
            }
        );
        match app.snapshots.is_empty() {
            false => println!(
                "  snapshots     {} ({}), after events {}",
                app.snapshots.len(),
                size(snapshot_bytes),
                app.snapshots
                    .iter()
                    .map(|s| format!("{} ({})", s.seq, size(s.bytes)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            true => println!("  snapshots     none"),
        }
        // A store written before timers were kept has none to show.
        if let Ok(due) = store.timer_due(&app.app.name) {
            println!("  next timer    {}", timer(due));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// When a kept timer is due, from now (the store may keep it early).
fn timer(due_unix_ms: Option<i64>) -> String {
    let Some(due) = due_unix_ms else {
        return "none".into();
    };
    let now = elmbox::clock::unix_ms(SystemTime::now());
    let seconds = (due - now) as f64 / 1000.0;
    match seconds >= 0.0 {
        true => format!("due in {seconds:.1} s (at {due} ms since the Unix epoch)"),
        false => format!(
            "due {:.1} s ago (at {due} ms since the Unix epoch)",
            -seconds
        ),
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KB", b as f64 / (1 << 10) as f64),
        b => format!("{b} bytes"),
    }
}
