//! `console.*`, captured into the reply so the host decides where it goes.
//!
//! QuickJS has no console, and javy's wrote straight to WASI stdout/stderr;
//! capturing keeps every line (with its level) in the host's hands and off
//! the protocol stream.

use rquickjs::{prelude::Rest, Ctx, Function, Object, Result, Value};

use crate::error::display;
use crate::reply::{self, Level};

pub fn install<'js>(ctx: &Ctx<'js>) -> Result<()> {
    let console = Object::new(ctx.clone())?;
    for (name, level) in [
        ("log", Level::Log),
        ("info", Level::Info),
        ("debug", Level::Debug),
        ("trace", Level::Debug),
        ("warn", Level::Warn),
        ("error", Level::Error),
    ] {
        let f = Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
            reply::push_console(level, &format_args(&ctx, args.0));
        })?
        .with_name(name)?;
        console.set(name, f)?;
    }
    ctx.globals().set("console", console)
}

/// Joins the arguments with spaces, like a browser console: strings as they
/// are, objects as JSON where possible, anything else through `String()`.
fn format_args<'js>(ctx: &Ctx<'js>, args: Vec<Value<'js>>) -> String {
    let mut line = String::new();
    for (i, arg) in args.into_iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        if let Some(s) = arg.as_string() {
            match s.to_string() {
                Ok(s) => line.push_str(&s),
                Err(_) => line.push_str(&display(ctx, arg)),
            }
        } else if arg.is_object() && !arg.is_function() && !arg.is_error() {
            match ctx.json_stringify(arg.clone()) {
                Ok(Some(json)) => line.push_str(&json.to_string().unwrap_or_default()),
                _ => {
                    let _ = ctx.catch();
                    line.push_str(&display(ctx, arg));
                }
            }
        } else {
            line.push_str(&display(ctx, arg));
        }
    }
    line
}
