//! Glue between elmbox and the calling convention of `elm make` output:
//! `Elm.<Module>.init({ flags })`, `app.ports.<in>.send(value)` and
//! `app.ports.<out>.subscribe(callback)`, for one pair of ports or for all.

use rquickjs::{Ctx, Function, Object, Persistent, Value};

use elmbox_abi::migration::{EXPORTED_PORT, EXPORT_PORT};
use elmbox_abi::{AppSettings, PortDirection};

use crate::error::{AppError, Thrown, ThrownFromJs};
use crate::{json, reply};

/// A started app: its incoming ports' `send`, by name (the one port, or
/// every one in all-ports mode), and its `ports` object for a migration's
/// export ([`ElmApp::export`]).
pub struct ElmApp {
    incoming: Vec<(String, Persistent<Function<'static>>)>,
    ports: Option<Persistent<Object<'static>>>,
}

impl ElmApp {
    /// Finds the app's module under `elm` (the `Elm` object the script
    /// defined), runs `init` with the flags, and subscribes the reply buffer
    /// to the outgoing port (to every one in all-ports mode).
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
        let ports = app_ports.as_ref();

        let (incoming, outgoing) = if settings.all_ports {
            (port_names(ports, "send"), port_names(ports, "subscribe"))
        } else {
            (
                vec![settings.in_port.clone()],
                vec![settings.out_port.clone()],
            )
        };
        let mut sends = Vec::with_capacity(incoming.len());
        for name in incoming {
            let send = port_method(ports, &name, "send").ok_or_else(|| AppError::PortNotFound {
                port: name.clone(),
                direction: PortDirection::Incoming,
                available: port_names(ports, "send"),
            })?;
            sends.push((name, Persistent::save(ctx, send)));
        }
        for name in outgoing {
            let subscribe =
                port_method(ports, &name, "subscribe").ok_or_else(|| AppError::PortNotFound {
                    port: name.clone(),
                    direction: PortDirection::Outgoing,
                    available: port_names(ports, "subscribe"),
                })?;
            // In all-ports mode each value is tagged with its port's name.
            let tag = settings
                .all_ports
                .then(|| serde_json::to_string(&name).unwrap_or_default());
            let sink = Function::new(ctx.clone(), move |ctx: Ctx<'js>, value: Value<'js>| {
                collect_output(&ctx, value, tag.as_deref())
            })
            .and_then(|f| f.with_name("elmboxOutgoing"))
            .map_err(init_threw)?;
            subscribe.call::<_, ()>((sink,)).map_err(init_threw)?;
        }
        Ok(ElmApp {
            incoming: sends,
            ports: app_ports.map(|ports| Persistent::save(ctx, ports)),
        })
    }

    /// A migration's export, begun: subscribes a sink that keeps what it is
    /// sent to the port [`EXPORTED_PORT`], then sends `null` on
    /// [`EXPORT_PORT`]. Returns the sink, for [`ElmApp::end_export`] once
    /// the app has settled, and how the send went.
    pub fn export<'js>(
        &self,
        ctx: &Ctx<'js>,
    ) -> Result<(Function<'js>, Result<(), Thrown>), AppError> {
        let ports = self.ports(ctx);
        let ports = ports.as_ref();
        let send =
            port_method(ports, EXPORT_PORT, "send").ok_or_else(|| AppError::PortNotFound {
                port: EXPORT_PORT.into(),
                direction: PortDirection::Incoming,
                available: port_names(ports, "send"),
            })?;
        let subscribe = port_method(ports, EXPORTED_PORT, "subscribe").ok_or_else(|| {
            AppError::PortNotFound {
                port: EXPORTED_PORT.into(),
                direction: PortDirection::Outgoing,
                available: port_names(ports, "subscribe"),
            }
        })?;
        let threw = |e| AppError::Threw(Thrown::from_js(ctx, e));
        let sink = Function::new(ctx.clone(), |ctx: Ctx<'js>, value: Value<'js>| {
            let json = ctx
                .json_stringify(value)?
                .map(|json| json.to_string())
                .transpose()?
                .unwrap_or_else(|| "null".into());
            EXPORTED.with_borrow_mut(|exported| exported.push(json));
            rquickjs::Result::Ok(())
        })
        .and_then(|f| f.with_name("elmboxExportedSink"))
        .map_err(threw)?;
        subscribe.call::<_, ()>((sink.clone(),)).map_err(threw)?;
        EXPORTED.with_borrow_mut(Vec::clear);
        let sent = send
            .call::<_, ()>((Value::new_null(ctx.clone()),))
            .map_err(|e| Thrown::from_js(ctx, e));
        Ok((sink, sent))
    }

    /// Ends a migration's export: unsubscribes its sink; what it was sent,
    /// each as JSON text, in order.
    pub fn end_export<'js>(&self, ctx: &Ctx<'js>, sink: Function<'js>) -> Vec<String> {
        let ports = self.ports(ctx);
        if let Some(unsubscribe) = port_method(ports.as_ref(), EXPORTED_PORT, "unsubscribe") {
            let _ = unsubscribe.call::<_, ()>((sink,));
        }
        EXPORTED.take()
    }

    fn ports<'js>(&self, ctx: &Ctx<'js>) -> Option<Object<'js>> {
        self.ports.clone()?.restore(ctx).ok()
    }

    /// The one incoming port's `send` (not in all-ports mode), for callers
    /// that expose it to scripts.
    pub fn send_function<'js>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
        self.incoming[0].1.clone().restore(ctx)
    }

    /// Sends one event on the incoming port (`port` names it in all-ports
    /// mode). Whatever the app does in response synchronously happens inside
    /// this call; timers are drained by the caller.
    pub fn send<'js>(
        &self,
        ctx: &Ctx<'js>,
        port: Option<&str>,
        event: Value<'js>,
    ) -> Result<Result<(), Thrown>, AppError> {
        let found = match port {
            None => self.incoming.first(),
            Some(name) => self.incoming.iter().find(|(n, _)| n == name),
        };
        let Some((_, send)) = found else {
            return Err(AppError::PortNotFound {
                port: port.unwrap_or_default().to_string(),
                direction: PortDirection::Incoming,
                available: self.incoming.iter().map(|(n, _)| n.clone()).collect(),
            });
        };
        let sent = send
            .clone()
            .restore(ctx)
            .and_then(|send| send.call::<_, ()>((event,)));
        Ok(sent.map_err(|e| Thrown::from_js(ctx, e)))
    }
}

/// Whether `thrown` is the crash of an incoming port whose value did not
/// decode: Elm throws it in `send` before the app's update runs, so the
/// app is untouched. The hint link of `--optimize` builds, or the message
/// of DEV builds.
pub fn is_port_rejection(thrown: &Thrown) -> bool {
    thrown.message.ends_with("/hints/4.md")
        || thrown
            .message
            .contains("Trying to send an unexpected type of value through port")
}

thread_local! {
    /// What a migration's export was sent on [`EXPORTED_PORT`], as JSON.
    static EXPORTED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Set when an outgoing port's subscriber failed: the exception it
    /// raised went up through Elm's effect dispatch.
    static SINK_FAILED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether an outgoing port's subscriber failed since the last call.
pub fn take_sink_failure() -> bool {
    SINK_FAILED.replace(false)
}

/// An outgoing port's subscriber: serialises each value straight into the
/// reply (as `{"port": TAG, "value": ...}` when tagged), so nothing
/// JavaScript-side accumulates between calls. Plain data is written by
/// [`json::write`], anything else by `JSON.stringify`, to the same text.
fn collect_output<'js>(
    ctx: &Ctx<'js>,
    value: Value<'js>,
    tag: Option<&str>,
) -> rquickjs::Result<()> {
    let mut json = Vec::with_capacity(64);
    if json::write(ctx, &value, &mut json).is_none() {
        json.clear();
        match ctx.json_stringify(value) {
            Ok(Some(text)) => json.extend_from_slice(text.to_string()?.as_bytes()),
            // `undefined` and functions have no JSON form; Elm never sends them.
            Ok(None) => json.extend_from_slice(b"null"),
            Err(e) => {
                SINK_FAILED.set(true);
                return Err(e);
            }
        }
    }
    match tag {
        None => reply::push_output(&json),
        Some(port) => {
            let mut tagged = format!(r#"{{"port":{port},"value":"#).into_bytes();
            tagged.extend_from_slice(&json);
            tagged.push(b'}');
            reply::push_output(&tagged)
        }
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
