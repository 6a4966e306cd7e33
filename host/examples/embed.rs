//! Embedding elmbox: load an Elm app once, send it events, read its answers.
//!
//!     cargo run --release -p elmbox --example embed -- counter.js hello '{"id":2}'

use elmbox::{AppConfig, Runtime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: embed APP.js [EVENT...]")?;
    let js = std::fs::read(&path)?; // the output of `elm make`

    let runtime = Runtime::new()?; // compiles the sandbox once per process
    let mut app = runtime.load(&js, AppConfig::default())?; // evaluates the app once
    for event in args {
        let answer = app.dispatch(&event)?; // one function call per event
        println!("{}", serde_json::Value::from(answer));
    }
    Ok(())
}
