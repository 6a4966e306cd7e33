//! Errors inside the guest: the ABI's `AppError` (serialised as JSON for
//! the host, which wraps it in its own error), and reading JavaScript
//! exceptions into it.

use rquickjs::{Coerced, Ctx, Error as JsError, FromJs, Value};

pub use elmbox_abi::{AppError, Thrown};

/// Reading a JavaScript exception into the ABI's [`Thrown`].
pub trait ThrownFromJs: Sized {
    fn from_js<'js>(ctx: &Ctx<'js>, err: JsError) -> Self;
    fn from_value<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> Self;
}

impl ThrownFromJs for Thrown {
    /// Reads the pending exception after `err`; also covers non-Error throws
    /// (`throw "x"`) and errors that are not exceptions at all.
    fn from_js<'js>(ctx: &Ctx<'js>, err: JsError) -> Thrown {
        if !err.is_exception() {
            return Thrown {
                message: err.to_string(),
                stack: None,
            };
        }
        Thrown::from_value(ctx, ctx.catch())
    }

    fn from_value<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> Thrown {
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
    match Coerced::<String>::from_js(ctx, value) {
        Ok(Coerced(s)) => s,
        Err(_) => {
            let _ = ctx.catch();
            "<value that cannot be converted to a string>".to_string()
        }
    }
}
