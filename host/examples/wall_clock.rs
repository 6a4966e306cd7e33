//! A scheduler of your own: an app on the wall clock, woken when its
//! earliest timer is due (what `elmbox serve` does for every app, with one
//! scheduler for all of them).
//!
//!     cargo run --release -p elmbox --example wall_clock -- clock.js 10
//!
//! sends the clock fixture (`make fixtures`) one request answered after a
//! `Process.sleep`, then wakes it for its timers until it has been woken
//! the given number of times.

use std::time::SystemTime;

use elmbox::{AppConfig, EventFormat, Runtime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: wall_clock APP.js [WAKES]")?;
    let wakes: usize = args.next().map_or(Ok(10), |n| n.parse())?;
    let js = std::fs::read(&path)?;
    let config = AppConfig::default()
        .event_format(EventFormat::Json)
        .flags_json(r#"{"tick":100,"sleep":250}"#);
    let mut app = Runtime::new()?.load(&js, config)?;

    // An event at the wall clock's now: the app's clock moves there first.
    let answer = app.dispatch_at(SystemTime::now(), r#"{"id":"1","path":"/sleep"}"#)?;
    println!("at once: {}", serde_json::Value::from(answer));
    for _ in 0..wakes {
        // When its earliest timer is due, known after every call.
        let Some(due) = app.next_due() else { break };
        if let Ok(wait) = due.duration_since(SystemTime::now()) {
            std::thread::sleep(wait);
        }
        // The timers due by now fire, once each however late.
        let sent = app.advance_to(SystemTime::now())?;
        if !sent.is_empty() {
            println!("woken: {}", serde_json::Value::from(sent));
        }
    }
    let clock = app.clock();
    println!("Date.now() reads {} ms", clock.date_now_ms());
    Ok(())
}
