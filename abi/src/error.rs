//! Why an app could not load or could not handle an event, worded once: the
//! host library wraps [`AppError`] in its own error, and a built module
//! prints it as it is, so `elmbox run` and `wasmtime run app.wasm` say the
//! same thing. Raised inside the guest and sent to the host as JSON
//! (`{"kind": "...", ...}`), or by the size limits either side applies.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppError {
    /// The host sent a malformed request (a bug in elmbox, not the app's).
    BadConfig {
        message: String,
    },
    /// `elmbox_load` was called twice (a bug in elmbox).
    AlreadyLoaded,
    /// An export that needs a loaded app was called before `elmbox_load`.
    NotLoaded,
    /// The app's JavaScript does not parse.
    Syntax {
        file: String,
        message: String,
        line: Option<u32>,
        column: Option<u32>,
    },
    /// The script threw while it was being evaluated, before `init`.
    ScriptThrew {
        file: String,
        thrown: Thrown,
    },
    /// The script ran but defined no global `Elm` object.
    NotElm {
        file: String,
    },
    ModuleNotFound {
        module: String,
        available: Vec<String>,
    },
    PortNotFound {
        port: String,
        direction: PortDirection,
        available: Vec<String>,
    },
    /// `Elm.<module>.init` threw (bad flags, a crash in `init`).
    InitThrew {
        module: String,
        thrown: Thrown,
    },
    /// The app threw where its runtime is known to go on: an incoming port
    /// rejected the event's value before the app's update ran, or a promise
    /// job failed. The app goes on.
    Threw(Thrown),
    /// The app threw where Elm's runtime cannot recover: anywhere after its
    /// port decoded the event (in `update`, or in effect dispatch, which
    /// leaves Elm's effects flag set), in a timer callback (which leaves
    /// Elm's scheduler mid-step), or in an outgoing port's subscriber. Elm
    /// would then queue every later event and never process it, so the app
    /// takes no more events.
    Faulted {
        during: FaultSite,
        thrown: Thrown,
    },
    /// In `all_ports` mode, an event that is not `{"port": NAME, "value": VALUE}`.
    NotAPortEvent {
        message: String,
    },
    EventNotUtf8 {
        valid_up_to: u64,
    },
    EventNotJson {
        message: String,
    },
    /// Refused before it reached the app.
    EventTooLarge {
        size: u64,
        limit: u64,
    },
    /// The answer to one event was over its limit; the app goes on.
    OutputTooLarge {
        size: u64,
        limit: u64,
    },
    /// Timers kept re-arming at one virtual instant: a runaway loop.
    TimerStorm {
        limit: u32,
    },
    /// The call ran past the app's CPU deadline, and its JavaScript was
    /// stopped wherever it was.
    DeadlineExceeded {
        limit_ms: u64,
    },
    /// A response handed to the app answers another request than the one
    /// the app has waiting under that id: a replay through code that makes
    /// other requests. Nothing reached the app.
    HttpResponseMismatch {
        id: u64,
        /// `METHOD URL` of the request the app has waiting.
        waiting: String,
        /// `METHOD URL` of the request the response answers.
        answers: String,
    },
}

impl AppError {
    /// Whether the app can take no more events after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            AppError::TimerStorm { .. }
                | AppError::Faulted { .. }
                | AppError::DeadlineExceeded { .. }
        )
    }
}

/// Where an app threw in a way its runtime cannot recover from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultSite {
    /// While its incoming port's `send` handled the event, after the value
    /// decoded: in `update` or in the effects it started.
    Event,
    /// In a timer callback: a `Process.sleep`, `Time.every` or the
    /// scheduler's own timers.
    Timer,
    /// In the subscriber elmbox gives an outgoing port.
    OutgoingPort,
    /// While an HTTP response was handed to the app (elm/http's callbacks).
    HttpResponse,
}

impl fmt::Display for FaultSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultSite::Event => "while handling the event",
            FaultSite::Timer => "in a timer callback",
            FaultSite::OutgoingPort => "while sending on an outgoing port",
            FaultSite::HttpResponse => "while taking an HTTP response",
        })
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::BadConfig { message } => write!(f, "invalid configuration: {message}"),
            AppError::AlreadyLoaded => f.write_str("the app was already loaded"),
            AppError::NotLoaded => f.write_str("no app is loaded"),
            AppError::Syntax {
                file,
                message,
                line,
                column,
            } => {
                let position = match (line, column) {
                    (Some(l), Some(c)) => format!("{l}:{c}"),
                    (Some(l), None) => l.to_string(),
                    _ => "?".to_string(),
                };
                write!(f, "{file}:{position}: syntax error: {message}")
            }
            AppError::ScriptThrew { file, thrown } => {
                write!(f, "{file} threw while loading: {thrown}")
            }
            AppError::NotElm { file } => write!(
                f,
                "{file} defined no global `Elm` object: is it the output of `elm make`?"
            ),
            AppError::ModuleNotFound { module, available } => {
                write!(f, "module `{module}` not found in Elm output")?;
                listing(f, "modules", available)
            }
            AppError::PortNotFound {
                port,
                direction,
                available,
            } => {
                write!(f, "{direction} port `{port}` not found")?;
                listing(f, "ports", available)
            }
            AppError::InitThrew { module, thrown } => {
                write!(f, "Elm.{module}.init threw: {thrown}")
            }
            AppError::Threw(thrown) => write!(f, "the app threw: {thrown}"),
            AppError::Faulted { during, thrown } => write!(
                f,
                "the app faulted {during}, which Elm's runtime cannot recover from: {thrown}"
            ),
            AppError::NotAPortEvent { message } => write!(
                f,
                "event is not {{\"port\": NAME, \"value\": VALUE}}: {message}"
            ),
            AppError::EventNotUtf8 { valid_up_to } => write!(
                f,
                "event is not UTF-8 (first invalid byte at offset {valid_up_to})"
            ),
            AppError::EventNotJson { message } => write!(f, "event is not valid JSON: {message}"),
            AppError::EventTooLarge { size, limit } => {
                write!(f, "event is {size} bytes, over the limit of {limit} bytes")
            }
            AppError::OutputTooLarge { size, limit } => write!(
                f,
                "the app's response is {size} bytes, over the limit of {limit} bytes"
            ),
            AppError::TimerStorm { limit } => write!(
                f,
                "runaway timers: more than {limit} timer callbacks at one instant"
            ),
            AppError::DeadlineExceeded { limit_ms } => {
                write!(f, "the call ran past its CPU deadline of {limit_ms} ms")
            }
            AppError::HttpResponseMismatch {
                id,
                waiting,
                answers,
            } => write!(
                f,
                "the response to HTTP request {id} answers `{answers}`, but the app's request \
                 {id} is `{waiting}`"
            ),
        }
    }
}

impl std::error::Error for AppError {}

fn listing(f: &mut fmt::Formatter<'_>, what: &str, names: &[String]) -> fmt::Result {
    if names.is_empty() {
        write!(f, " (the app has no {what})")
    } else {
        write!(f, " (available {what}: {})", names.join(", "))
    }
}

/// A JavaScript exception, as much of it as could be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thrown {
    /// `Name: message`, or `String(value)` for a throw of a non-Error.
    pub message: String,
    pub stack: Option<String>,
}

impl fmt::Display for Thrown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

impl fmt::Display for PortDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PortDirection::Incoming => "incoming",
            PortDirection::Outgoing => "outgoing",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_display_what_went_wrong() {
        let e = AppError::PortNotFound {
            port: "p".into(),
            direction: PortDirection::Incoming,
            available: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            e.to_string(),
            "incoming port `p` not found (available ports: a, b)"
        );
        let e = AppError::Threw(Thrown {
            message: "Error: boom".into(),
            stack: Some("    at f (app.js:3:9)\n".into()),
        });
        assert_eq!(
            e.to_string(),
            "the app threw: Error: boom\n    at f (app.js:3:9)"
        );
        let e = AppError::Syntax {
            file: "app.js".into(),
            message: "unexpected token".into(),
            line: Some(2),
            column: None,
        };
        assert_eq!(e.to_string(), "app.js:2: syntax error: unexpected token");
        assert!(AppError::TimerStorm { limit: 3 }.is_fatal());
        assert!(!e.is_fatal());
    }

    /// One of every error, with every field set.
    fn every_error() -> Vec<AppError> {
        let thrown = || Thrown {
            message: "Error: x".into(),
            stack: Some("    at f (app.js:1:2)".into()),
        };
        vec![
            AppError::BadConfig {
                message: "m".into(),
            },
            AppError::AlreadyLoaded,
            AppError::NotLoaded,
            AppError::Syntax {
                file: "a.js".into(),
                message: "m".into(),
                line: Some(3),
                column: Some(4),
            },
            AppError::ScriptThrew {
                file: "a.js".into(),
                thrown: thrown(),
            },
            AppError::NotElm {
                file: "a.js".into(),
            },
            AppError::ModuleNotFound {
                module: "A.B".into(),
                available: vec!["Main".into()],
            },
            AppError::PortNotFound {
                port: "p".into(),
                direction: PortDirection::Outgoing,
                available: vec!["respond".into()],
            },
            AppError::InitThrew {
                module: "Main".into(),
                thrown: thrown(),
            },
            AppError::Threw(thrown()),
            AppError::Faulted {
                during: FaultSite::Timer,
                thrown: thrown(),
            },
            AppError::NotAPortEvent {
                message: "m".into(),
            },
            AppError::EventNotUtf8 { valid_up_to: 5 },
            AppError::EventNotJson {
                message: "m".into(),
            },
            AppError::EventTooLarge { size: 9, limit: 8 },
            AppError::OutputTooLarge { size: 9, limit: 8 },
            AppError::TimerStorm { limit: 7 },
            AppError::HttpResponseMismatch {
                id: 3,
                waiting: "GET http://a/".into(),
                answers: "POST http://b/".into(),
            },
        ]
    }

    #[test]
    fn every_error_round_trips_whole_through_json() {
        for error in every_error() {
            let json = serde_json::to_string(&error).unwrap();
            assert_eq!(
                serde_json::from_str::<AppError>(&json).unwrap(),
                error,
                "{json}"
            );
        }
    }

    #[test]
    fn errors_round_trip_as_tagged_json() {
        let e = AppError::Threw(Thrown {
            message: "Error: x".into(),
            stack: None,
        });
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"threw","message":"Error: x","stack":null}"#
        );
        assert_eq!(serde_json::from_str::<AppError>(&json).unwrap(), e);
        let e = AppError::PortNotFound {
            port: "p".into(),
            direction: PortDirection::Outgoing,
            available: vec!["respond".into()],
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""direction":"outgoing""#), "{json}");
        assert_eq!(serde_json::from_str::<AppError>(&json).unwrap(), e);
    }
}
