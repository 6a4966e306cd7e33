//! # elmbox-abi
//!
//! What elmbox's host and guest agree on, in one place so neither side can
//! drift: the JSON load configuration, the JSON error record, the binary
//! layouts of the reply and memory records, and the small codes in between.
//! The guest's exports that use them are listed in `guest/src/lib.rs`.
//! [`lines`] is the line protocol that `elmbox run` and a standalone module
//! built by `elmbox build` both speak on stdin and stdout.

pub mod lines;

use serde::{Deserialize, Serialize};

/// Bumped whenever an export, a record or a code below changes.
pub const ABI_VERSION: u32 = 2;

/// `kind` argument of `elmbox_dispatch`: the event reaches the app as a string.
pub const EVENT_TEXT: u32 = 0;
/// `kind` argument of `elmbox_dispatch`: the event is parsed as JSON first.
pub const EVENT_JSON: u32 = 1;

/// Sent by the host as JSON in front of the app's source (`elmbox_load`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadConfig {
    pub module: String,
    pub in_port: String,
    pub out_port: String,
    /// Flags as JSON text; `None` calls `init()` without flags.
    pub flags: Option<String>,
    /// Name the app's source has in stack traces and syntax errors.
    pub filename: String,
    /// What `Date.now()` returns before any time is advanced.
    pub epoch_ms: f64,
    /// Bytes QuickJS allocates before its cycle collector runs.
    pub gc_threshold: u32,
    /// QuickJS heap limit in bytes (0: none).
    pub memory_limit: u32,
    pub max_stack_size: u32,
    /// Timer callbacks allowed at one virtual instant before the app is
    /// declared runaway.
    pub same_instant_limit: u32,
    #[serde(default)]
    pub mode: DispatchMode,
}

/// What a standalone module (`elmbox build`) needs to serve the line
/// protocol on its own, and what the host reads back from such a module
/// (`elmbox_set_stdio`, `elmbox_stdio`): set once before the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StdioConfig {
    /// The app's name in console lines and error messages.
    pub name: String,
    /// Events are parsed as JSON (`EVENT_JSON`) or passed as strings (`EVENT_TEXT`).
    pub event_kind: u32,
    /// Virtual milliseconds to advance after each event.
    pub advance_ms: u64,
    /// Longest event line accepted, in bytes.
    pub max_event_bytes: u64,
    /// Largest response (one event's JSON array), in bytes.
    pub max_output_bytes: u64,
    /// Whether the build fixed the clock's epoch. If not, a module's clock is
    /// moved to the wall-clock time when it starts, so `Date.now()` is not
    /// the time of the build.
    pub fixed_epoch: bool,
}

/// How each event reaches the app. Only `Call` is elmbox's way; the others
/// reproduce the anti-patterns it replaces, so their cost can be measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DispatchMode {
    /// One function call into the app, which was loaded once.
    #[default]
    Call,
    /// Per event, evaluate a fresh snippet of source text that calls into the
    /// loaded app.
    Eval,
    /// Per event, evaluate the whole app again as a fresh ES module and send
    /// the event to that new instance: state is lost on every event.
    Reload,
}

/// Everything that can go wrong inside the guest, as the JSON error record
/// (`{"kind": "...", ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GuestError {
    /// The load configuration is malformed (a host bug).
    BadConfig {
        message: String,
    },
    /// `elmbox_load` was called twice.
    AlreadyLoaded,
    /// An export that needs a loaded app was called before `elmbox_load`.
    NotLoaded,
    /// The app's JavaScript does not parse.
    Syntax {
        message: String,
        line: Option<u32>,
        column: Option<u32>,
    },
    /// The script threw while being evaluated.
    ScriptThrew(Thrown),
    /// The script ran but defined no global `Elm` object.
    NotElm,
    ModuleNotFound {
        module: String,
        available: Vec<String>,
    },
    PortNotFound {
        port: String,
        direction: PortDirection,
        available: Vec<String>,
    },
    /// `Elm.<Module>.init` threw (bad flags, a crash in `init`).
    InitThrew(Thrown),
    /// The app threw while handling an event or a timer.
    Threw(Thrown),
    EventNotUtf8 {
        valid_up_to: usize,
    },
    EventNotJson {
        message: String,
    },
    /// Timers kept re-arming at the same instant: a runaway loop.
    TimerStorm {
        limit: u32,
    },
}

/// The message a standalone module prints for each error: the host's typed
/// `elmbox::Error` says the same things with more context.
impl std::fmt::Display for GuestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let listing = |f: &mut std::fmt::Formatter<'_>, what: &str, names: &[String]| {
            if names.is_empty() {
                write!(f, " (the app has no {what})")
            } else {
                write!(f, " (available {what}: {})", names.join(", "))
            }
        };
        match self {
            GuestError::BadConfig { message } => write!(f, "invalid configuration: {message}"),
            GuestError::AlreadyLoaded => f.write_str("the app was already loaded"),
            GuestError::NotLoaded => f.write_str("no app is loaded"),
            GuestError::Syntax {
                message,
                line,
                column,
            } => write!(
                f,
                "syntax error at {}:{}: {message}",
                line.map_or("?".into(), |l| l.to_string()),
                column.map_or("?".into(), |c| c.to_string())
            ),
            GuestError::ScriptThrew(t) => write!(f, "the script threw while loading: {t}"),
            GuestError::NotElm => f.write_str("the script defined no global `Elm` object"),
            GuestError::ModuleNotFound { module, available } => {
                write!(f, "module `{module}` not found in Elm output")?;
                listing(f, "modules", available)
            }
            GuestError::PortNotFound {
                port,
                direction,
                available,
            } => {
                write!(f, "{direction} port `{port}` not found")?;
                listing(f, "ports", available)
            }
            GuestError::InitThrew(t) => write!(f, "init threw: {t}"),
            GuestError::Threw(t) => write!(f, "the app threw: {t}"),
            GuestError::EventNotUtf8 { valid_up_to } => write!(
                f,
                "event is not UTF-8 (first invalid byte at offset {valid_up_to})"
            ),
            GuestError::EventNotJson { message } => write!(f, "event is not valid JSON: {message}"),
            GuestError::TimerStorm { limit } => write!(
                f,
                "runaway timers: more than {limit} timer callbacks at one instant"
            ),
        }
    }
}

impl GuestError {
    /// Whether the app can take no more events after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(self, GuestError::TimerStorm { .. })
    }
}

/// A JavaScript exception, as much of it as could be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thrown {
    pub message: String,
    pub stack: Option<String>,
}

impl std::fmt::Display for Thrown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        match &self.stack {
            Some(stack) if !stack.trim().is_empty() => write!(f, "\n{}", stack.trim_end()),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortDirection {
    Incoming,
    Outgoing,
}

impl std::fmt::Display for PortDirection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PortDirection::Incoming => "incoming",
            PortDirection::Outgoing => "outgoing",
        })
    }
}

/// A console line's level: one byte in front of each console frame
/// (`level: u8, len: u32 LE, utf8 bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Log = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
    Debug = 4,
}

impl Level {
    pub fn from_byte(b: u8) -> Level {
        match b {
            1 => Level::Info,
            2 => Level::Warn,
            3 => Level::Error,
            4 => Level::Debug,
            _ => Level::Log,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Log => "log",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Debug => "debug",
        })
    }
}

/// Decodes console frames (`level: u8, len: u32 LE, utf8 bytes`) into
/// levels and text; a truncated frame ends the sequence.
pub fn console_frames(mut frames: &[u8]) -> impl Iterator<Item = (Level, &str)> + '_ {
    std::iter::from_fn(move || {
        let (&level, rest) = frames.split_first()?;
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let text = rest.get(4..4 + len)?;
        frames = &rest[4 + len..];
        // The guest writes text from Rust strings: always UTF-8.
        Some((
            Level::from_byte(level),
            std::str::from_utf8(text).unwrap_or(""),
        ))
    })
}

/// What a call hands back, at the fixed address `elmbox_reply` returns: seven
/// little-endian `u32`s (wasm32 pointers and lengths).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reply {
    /// 0 when the call succeeded, 1 when `error` holds a JSON `GuestError`.
    pub status: u32,
    /// A JSON array of the outgoing-port values.
    pub outputs_ptr: u32,
    pub outputs_len: u32,
    /// Console frames.
    pub console_ptr: u32,
    pub console_len: u32,
    pub error_ptr: u32,
    pub error_len: u32,
}

impl Reply {
    pub const SIZE: usize = 7 * 4;

    /// Decodes the record as the host reads it from guest memory.
    pub fn from_le_bytes(bytes: &[u8]) -> Option<Reply> {
        let w = |i: usize| {
            Some(u32::from_le_bytes(
                bytes.get(4 * i..4 * i + 4)?.try_into().ok()?,
            ))
        };
        Some(Reply {
            status: w(0)?,
            outputs_ptr: w(1)?,
            outputs_len: w(2)?,
            console_ptr: w(3)?,
            console_len: w(4)?,
            error_ptr: w(5)?,
            error_len: w(6)?,
        })
    }
}

/// QuickJS's own accounting, at the address `elmbox_memory` returns: nine
/// little-endian `i64`s.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryReport {
    pub malloc_size: i64,
    pub malloc_count: i64,
    pub memory_used_size: i64,
    pub obj_count: i64,
    pub str_count: i64,
    pub atom_count: i64,
    pub js_func_count: i64,
    pub pending_timers: i64,
    pub clock_ms: i64,
}

impl MemoryReport {
    pub const SIZE: usize = 9 * 8;

    pub fn from_le_bytes(bytes: &[u8]) -> Option<MemoryReport> {
        let f = |i: usize| {
            Some(i64::from_le_bytes(
                bytes.get(8 * i..8 * i + 8)?.try_into().ok()?,
            ))
        };
        Some(MemoryReport {
            malloc_size: f(0)?,
            malloc_count: f(1)?,
            memory_used_size: f(2)?,
            obj_count: f(3)?,
            str_count: f(4)?,
            atom_count: f(5)?,
            js_func_count: f(6)?,
            pending_timers: f(7)?,
            clock_ms: f(8)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_sizes_match_their_repr_c_layout() {
        assert_eq!(std::mem::size_of::<Reply>(), Reply::SIZE);
        assert_eq!(std::mem::size_of::<MemoryReport>(), MemoryReport::SIZE);
    }

    #[test]
    fn records_decode_field_by_field() {
        let words: Vec<u8> = (1u32..=7).flat_map(|w| w.to_le_bytes()).collect();
        let reply = Reply::from_le_bytes(&words).unwrap();
        assert_eq!(
            (reply.status, reply.outputs_len, reply.error_len),
            (1, 3, 7)
        );
        assert_eq!(Reply::from_le_bytes(&words[..27]), None);
        let fields: Vec<u8> = (10i64..19).flat_map(|f| f.to_le_bytes()).collect();
        let memory = MemoryReport::from_le_bytes(&fields).unwrap();
        assert_eq!((memory.malloc_size, memory.clock_ms), (10, 18));
    }

    #[test]
    fn console_frames_decode_and_stop_at_a_truncated_one() {
        let mut frames = vec![Level::Warn as u8];
        frames.extend_from_slice(&2u32.to_le_bytes());
        frames.extend_from_slice(b"hi");
        frames.push(Level::Error as u8);
        frames.extend_from_slice(&9u32.to_le_bytes());
        frames.extend_from_slice(b"short");
        let decoded: Vec<_> = console_frames(&frames).collect();
        assert_eq!(decoded, vec![(Level::Warn, "hi")]);
    }

    #[test]
    fn errors_display_what_went_wrong() {
        let e = GuestError::PortNotFound {
            port: "p".into(),
            direction: PortDirection::Incoming,
            available: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            e.to_string(),
            "incoming port `p` not found (available ports: a, b)"
        );
        let e = GuestError::Threw(Thrown {
            message: "Error: boom".into(),
            stack: Some("    at f (app.js:3:9)\n".into()),
        });
        assert_eq!(
            e.to_string(),
            "the app threw: Error: boom\n    at f (app.js:3:9)"
        );
        assert!(GuestError::TimerStorm { limit: 3 }.is_fatal());
        assert!(!e.is_fatal());
    }

    #[test]
    fn errors_round_trip_as_tagged_json() {
        let e = GuestError::Threw(Thrown {
            message: "Error: x".into(),
            stack: None,
        });
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"threw","message":"Error: x","stack":null}"#
        );
        assert_eq!(serde_json::from_str::<GuestError>(&json).unwrap(), e);
        let e = GuestError::PortNotFound {
            port: "p".into(),
            direction: PortDirection::Outgoing,
            available: vec!["respond".into()],
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""direction":"outgoing""#), "{json}");
        assert_eq!(serde_json::from_str::<GuestError>(&json).unwrap(), e);
    }
}
