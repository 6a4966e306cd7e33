//! Everything that can go wrong inside the guest, serialised as JSON for the
//! host (`{"kind": "...", ...}`), which turns it into its typed error.

use javy::quickjs::{Ctx, Error as JsError, Value};
use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GuestError {
    /// The load configuration the host sent is malformed (a host bug).
    BadConfig {
        message: String,
    },
    /// `elmbox_load` was called twice, or another export before it.
    AlreadyLoaded,
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
        direction: &'static str,
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

/// A JavaScript exception, as much of it as we can read.
#[derive(Debug, Serialize)]
pub struct Thrown {
    pub message: String,
    pub stack: Option<String>,
}

impl Thrown {
    /// Reads the pending exception after `err`; also covers non-Error throws
    /// (`throw "x"`) and errors that are not exceptions at all.
    pub fn from_js<'js>(ctx: &Ctx<'js>, err: JsError) -> Thrown {
        if !err.is_exception() {
            return Thrown {
                message: err.to_string(),
                stack: None,
            };
        }
        Thrown::from_value(ctx, ctx.catch())
    }

    pub fn from_value<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> Thrown {
        if let Some(obj) = value.as_object() {
            let name: Option<String> = obj.get("name").ok();
            let message: Option<String> = obj.get("message").ok();
            let stack: Option<String> = obj.get("stack").ok();
            if let Some(message) = message {
                let message = match name {
                    Some(name) if !name.is_empty() => format!("{name}: {message}"),
                    _ => message,
                };
                return Thrown {
                    message,
                    stack: stack.filter(|s| !s.is_empty()),
                };
            }
        }
        Thrown {
            message: display(ctx, value),
            stack: None,
        }
    }
}

/// `String(value)`, or a placeholder when even that throws.
pub fn display<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> String {
    match javy::quickjs::Coerced::<String>::from_js(ctx, value) {
        Ok(javy::quickjs::Coerced(s)) => s,
        Err(_) => {
            let _ = ctx.catch();
            "<value that cannot be converted to a string>".to_string()
        }
    }
}

use javy::quickjs::FromJs;
