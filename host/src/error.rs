//! Everything that can go wrong, typed, each saying what was wrong.

pub use elmbox_abi::PortDirection;
use serde_json::Value;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The app's JavaScript does not parse.
    #[error("{file}:{}: syntax error: {message}", position(*.line, *.column))]
    Syntax {
        file: String,
        message: String,
        line: Option<u32>,
        column: Option<u32>,
    },

    /// The script threw while it was being evaluated, before `init`.
    #[error("{file} threw while loading: {message}{}", stack_suffix(.stack))]
    ScriptThrew {
        file: String,
        message: String,
        stack: Option<String>,
    },

    #[error("{file} defined no global `Elm` object: is it the output of `elm make`?")]
    NotElm { file: String },

    #[error("module `{module}` not found in Elm output{}", listing(.available, "modules"))]
    ModuleNotFound {
        module: String,
        available: Vec<String>,
    },

    #[error("{direction} port `{port}` not found{}", listing(.available, "ports"))]
    PortNotFound {
        port: String,
        direction: PortDirection,
        available: Vec<String>,
    },

    #[error("Elm.{module}.init threw: {message}{}", stack_suffix(.stack))]
    InitThrew {
        module: String,
        message: String,
        stack: Option<String>,
    },

    /// The app threw while handling an event or a timer. The app keeps
    /// running; `outputs` holds what it sent before the error.
    #[error("the app threw: {message}{}", stack_suffix(.stack))]
    AppThrew {
        message: String,
        stack: Option<String>,
        outputs: Vec<Value>,
    },

    #[error("event is not UTF-8 (first invalid byte at offset {valid_up_to})")]
    EventNotUtf8 { valid_up_to: usize },

    #[error("event is not valid JSON: {message}")]
    EventNotJson { message: String },

    #[error("event is {size} bytes, over the limit of {limit} bytes")]
    EventTooLarge { size: usize, limit: usize },

    /// Timers kept firing at one virtual instant: the app loops through
    /// `setTimeout(…, 0)` without end. The app is marked failed.
    #[error("runaway timers: more than {limit} timer callbacks at one instant")]
    TimerStorm { limit: u32 },

    #[error("the app's response is {size} bytes, over the limit of {limit} bytes")]
    OutputTooLarge { size: usize, limit: usize },

    /// A call ran past its CPU deadline and was stopped mid-way. The app is
    /// marked failed.
    #[error("the app ran past its CPU deadline of {limit_ms} ms and was stopped")]
    DeadlineExceeded { limit_ms: u64 },

    /// The guest needed more linear memory than its cap allows. Fatal when
    /// the guest itself could not continue; an app whose JavaScript merely
    /// got an out-of-memory exception keeps running.
    #[error("the app reached its linear memory cap of {limit} bytes: {detail}")]
    MemoryCapReached {
        limit: usize,
        detail: String,
        fatal: bool,
    },

    /// The guest trapped (out of stack, a bug in the guest). The instance is
    /// marked failed: its memory may be inconsistent.
    #[error("the app's sandbox crashed: {reason}")]
    Crashed { reason: String },

    /// In a [`Pool`](crate::Pool) whose fault policy is to restore: the
    /// app's instance faulted (`cause`), and the pool started it again from
    /// its image. Its state is now the state right after `init`.
    #[error("{cause}; the app was restored from its snapshot (state reset to after init; restore {restores})")]
    Restored { cause: Box<Error>, restores: u64 },

    #[error("no app named `{name}` in the pool")]
    NoSuchApp { name: String },

    #[error("an app named `{name}` is already in the pool")]
    AppExists { name: String },

    #[error("the pool is full: it holds at most {max_apps} apps")]
    PoolFull { max_apps: u32 },

    /// A call on an app that failed earlier.
    #[error("the app failed earlier and takes no more events: {reason}")]
    Failed { reason: String },

    /// A module given as a pre-initialised app that is not one.
    #[error("not an app module made by `elmbox build`: {reason}")]
    BadModule { reason: String },

    #[error("invalid configuration: {0}")]
    Config(String),

    /// Setting up wasmtime failed (a host or guest-module problem, not the app's).
    #[error("wasm engine: {0:#}")]
    Engine(anyhow::Error),
}

impl From<wasmtime::Error> for Error {
    fn from(e: wasmtime::Error) -> Self {
        Error::Engine(e.into())
    }
}

impl Error {
    /// Whether the app can still take events after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Error::TimerStorm { .. }
                | Error::Crashed { .. }
                | Error::Failed { .. }
                | Error::DeadlineExceeded { .. }
                | Error::MemoryCapReached { fatal: true, .. }
        )
    }
}

fn position(line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{l}:{c}"),
        (Some(l), None) => l.to_string(),
        _ => "?".to_string(),
    }
}

fn stack_suffix(stack: &Option<String>) -> String {
    match stack {
        Some(s) if !s.trim().is_empty() => format!("\n{}", s.trim_end()),
        _ => String::new(),
    }
}

fn listing(available: &[String], what: &str) -> String {
    if available.is_empty() {
        format!(" (the app has no {what})")
    } else {
        format!(" (available {what}: {})", available.join(", "))
    }
}
