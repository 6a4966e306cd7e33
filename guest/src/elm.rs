//! Glue between elmbox and the calling convention of `elm make` output:
//! `Elm.<Module>.init({ flags })`, `app.ports.<in>.send(value)` and
//! `app.ports.<out>.subscribe(callback)`.

use javy::quickjs::{Ctx, Function, Object, Persistent, Value};

use elmbox_abi::PortDirection;

use crate::error::{GuestError, Thrown, ThrownFromJs};
use crate::reply;

/// What the guest needs to know to start an app.
pub struct Ports<'a> {
    pub module: &'a str,
    pub incoming: &'a str,
    pub outgoing: &'a str,
    /// Flags as JSON text; `None` calls `init()` without flags.
    pub flags: Option<&'a str>,
}

/// A started app: all we keep is its incoming port's `send`.
pub struct ElmApp {
    send: Persistent<Function<'static>>,
}

impl ElmApp {
    /// Finds the module under `elm` (the `Elm` object the script defined),
    /// runs `init`, and subscribes the reply buffer to the outgoing port.
    pub fn start<'js>(
        ctx: &Ctx<'js>,
        elm: Value<'js>,
        ports: &Ports<'_>,
    ) -> Result<ElmApp, GuestError> {
        let elm: Object = elm.into_object().ok_or(GuestError::NotElm)?;
        let not_found = || GuestError::ModuleNotFound {
            module: ports.module.to_string(),
            available: modules(&elm, ""),
        };
        let mut node = elm.clone();
        for part in ports.module.split('.') {
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

        let args =
            Object::new(ctx.clone()).map_err(|e| GuestError::InitThrew(Thrown::from_js(ctx, e)))?;
        if let Some(flags) = ports.flags {
            let flags = ctx.json_parse(flags).map_err(|e| GuestError::BadConfig {
                message: format!("flags are not JSON: {}", Thrown::from_js(ctx, e).message),
            })?;
            args.set("flags", flags)
                .map_err(|e| GuestError::InitThrew(Thrown::from_js(ctx, e)))?;
        }
        let app: Value = init
            .call((args,))
            .map_err(|e| GuestError::InitThrew(Thrown::from_js(ctx, e)))?;
        let app_ports: Option<Object> = app
            .as_object()
            .and_then(|a| a.get::<_, Value>("ports").ok())
            .and_then(Value::into_object);

        let send = port_method(app_ports.as_ref(), ports.incoming, "send").ok_or_else(|| {
            GuestError::PortNotFound {
                port: ports.incoming.to_string(),
                direction: PortDirection::Incoming,
                available: port_names(app_ports.as_ref(), "send"),
            }
        })?;
        let subscribe =
            port_method(app_ports.as_ref(), ports.outgoing, "subscribe").ok_or_else(|| {
                GuestError::PortNotFound {
                    port: ports.outgoing.to_string(),
                    direction: PortDirection::Outgoing,
                    available: port_names(app_ports.as_ref(), "subscribe"),
                }
            })?;

        let sink = Function::new(ctx.clone(), |ctx: Ctx<'js>, value: Value<'js>| {
            collect_output(&ctx, value)
        })
        .and_then(|f| f.with_name("elmboxOutgoing"))
        .map_err(|e| GuestError::InitThrew(Thrown::from_js(ctx, e)))?;
        subscribe
            .call::<_, ()>((sink,))
            .map_err(|e| GuestError::InitThrew(Thrown::from_js(ctx, e)))?;

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
