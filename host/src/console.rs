//! Where the app's `console.*` output goes. The guest captures every line
//! with its level; the host hands each one to the app's [`Console`].

use std::fmt;
use std::sync::{Arc, Mutex};

use elmbox_abi::console::Printed;
pub use elmbox_abi::Level;

/// One `console.*` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleLine {
    pub level: Level,
    pub text: String,
}

/// A sink for console lines: called with the app's name and the line.
type Sink = dyn Fn(&str, &ConsoleLine) + Send + Sync;

/// Receives an app's console lines, in order. Cheap to clone.
#[derive(Clone)]
pub struct Console(Arc<Sink>);

impl Console {
    /// Writes `[app] console.level: text` to the process's stderr (the
    /// default), as a built module does.
    pub fn stderr() -> Console {
        Console::new(|app, line| {
            let printed = Printed {
                app,
                level: line.level,
                text: &line.text,
            };
            eprintln!("{printed}")
        })
    }

    /// Calls `f(app_name, line)` for every line.
    pub fn new(f: impl Fn(&str, &ConsoleLine) + Send + Sync + 'static) -> Console {
        Console(Arc::new(f))
    }

    /// Keeps every line in memory; read them through the returned handle.
    pub fn collect() -> (Console, Arc<Mutex<Vec<ConsoleLine>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let console = Console::new(move |_, line| {
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line.clone())
        });
        (console, lines)
    }

    pub(crate) fn emit(&self, app: &str, level: Level, text: &str) {
        let line = ConsoleLine {
            level,
            text: text.to_string(),
        };
        (self.0)(app, &line)
    }
}

impl Default for Console {
    fn default() -> Self {
        Console::stderr()
    }
}

impl fmt::Debug for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Console")
    }
}
