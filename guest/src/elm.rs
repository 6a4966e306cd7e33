//! Glue between elmbox and the calling convention of `elm make` output:
//! `Elm.<Module>.init({ flags })`, `app.ports.<in>.send(value)` and
//! `app.ports.<out>.subscribe(callback)`.

use javy::quickjs::{Ctx, Function, Object, Persistent, Value};

use elmbox_abi::{AppSettings, PortDirection};

use crate::error::{AppError, Thrown, ThrownFromJs};
use crate::reply;

/// A started app: all we keep is its incoming port's `send`.
pub struct ElmApp {
    send: Persistent<Function<'static>>,
}

impl ElmApp {
    /// Finds the app's module under `elm` (the `Elm` object the script
    /// defined), runs `init` with the flags, and subscribes the reply buffer
    /// to the outgoing port.
    pub fn start<'js>(
        ctx: &Ctx<'js>,
        elm: Value<'js>,
        settings: &AppSettings,
    ) -> Result<ElmApp, AppError> {
        let elm: Object = elm.into_object().ok_or_else(|| AppError::NotElm {
            file: settings.name.clone(),
        })?;
        let not_found = || AppError::ModuleNotFound {
            module: settings.module.clone(),
            available: modules(&elm, ""),
        };
        let mut node = elm.clone();
        for part in settings.module.split('.') {
            node = node
                .get::<_, Value>(part)
                .ok()
                .and_then(Value::into_object)
                .ok_or_else(not_found)?;
        }
        let init: Function = node
            .get::<_, Value>("init")
            .ok()
            .and_then(Value::into_function)
            .ok_or_else(not_found)?;

        let init_threw = |e| AppError::InitThrew {
            module: settings.module.clone(),
            thrown: Thrown::from_js(ctx, e),
        };
        let args = Object::new(ctx.clone()).map_err(init_threw)?;
        if let Some(flags) = &settings.flags {
            let flags = ctx
                .json_parse(flags.as_str())
                .map_err(|e| AppError::BadConfig {
                    message: format!("flags are not JSON: {}", Thrown::from_js(ctx, e).message),
                })?;
            args.set("flags", flags).map_err(init_threw)?;
        }
        let app: Value = init.call((args,)).map_err(init_threw)?;
        let app_ports: Option<Object> = app
            .as_object()
            .and_then(|a| a.get::<_, Value>("ports").ok())
            .and_then(Value::into_object);

        let send = port_method(app_ports.as_ref(), &settings.in_port, "send").ok_or_else(|| {
            AppError::PortNotFound {
                port: settings.in_port.clone(),
                direction: PortDirection::Incoming,
                available: port_names(app_ports.as_ref(), "send"),
            }
        })?;
        let subscribe = port_method(app_ports.as_ref(), &settings.out_port, "subscribe")
            .ok_or_else(|| AppError::PortNotFound {
                port: settings.out_port.clone(),
                direction: PortDirection::Outgoing,
                available: port_names(app_ports.as_ref(), "subscribe"),
            })?;

        let sink = Function::new(ctx.clone(), |ctx: Ctx<'js>, value: Value<'js>| {
            collect_output(&ctx, value)
        })
        .and_then(|f| f.with_name("elmboxOutgoing"))
        .map_err(init_threw)?;
        subscribe.call::<_, ()>((sink,)).map_err(init_threw)?;

        Ok(ElmApp {
            send: Persistent::save(ctx, send),
        })
    }

    /// The incoming port's `send`, for callers that expose it to scripts.
    pub fn send_function<'js>(&self, ctx: &Ctx<'js>) -> javy::quickjs::Result<Function<'js>> {
        self.send.clone().restore(ctx)
    }

    /// Sends one event on the incoming port. Whatever the app does in response
    /// synchronously happens inside this call; timers are drained by the caller.
    pub fn send<'js>(&self, ctx: &Ctx<'js>, event: Value<'js>) -> Result<(), Thrown> {
        let send = self
            .send
            .clone()
            .restore(ctx)
            .map_err(|e| Thrown::from_js(ctx, e))?;
        send.call::<_, ()>((event,))
            .map_err(|e| Thrown::from_js(ctx, e))
    }
}

/// The outgoing port's subscriber: serialises each value straight into the
/// reply, so nothing JavaScript-side accumulates between calls.
fn collect_output<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> javy::quickjs::Result<()> {
    match ctx.json_stringify(value)? {
        Some(json) => reply::push_output(json.to_string()?.as_bytes()),
        // `undefined` and functions have no JSON form; Elm never sends them.
        None => reply::push_output(b"null"),
    }
    Ok(())
}

fn port_method<'js>(
    ports: Option<&Object<'js>>,
    name: &str,
    method: &str,
) -> Option<Function<'js>> {
    ports?
        .get::<_, Value>(name)
        .ok()?
        .into_object()?
        .get::<_, Value>(method)
        .ok()?
        .into_function()
}

/// Names of the ports that have `method` (`send` for incoming, `subscribe`
/// for outgoing), for error messages.
fn port_names(ports: Option<&Object<'_>>, method: &str) -> Vec<String> {
    let Some(ports) = ports else {
        return Vec::new();
    };
    let mut names: Vec<String> = ports
        .keys::<String>()
        .filter_map(|k| k.ok())
        .filter(|k| port_method(Some(ports), k, method).is_some())
        .collect();
    names.sort();
    names
}

/// Dotted names of every module under `Elm` that has an `init`.
fn modules(node: &Object<'_>, prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    for key in node.keys::<String>().filter_map(|k| k.ok()) {
        let Some(child) = node.get::<_, Value>(&key).ok().and_then(Value::into_object) else {
            continue;
        };
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if child
            .get::<_, Value>("init")
            .ok()
            .is_some_and(|v| v.is_function())
        {
            found.push(name.clone());
        }
        if prefix.matches('.').count() < 8 {
            found.extend(modules(&child, &name));
        }
    }
    found.sort();
    found
}
