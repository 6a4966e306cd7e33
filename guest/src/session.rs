//! One loaded app: the QuickJS runtime, the app's ports, and the loop that
//! runs promise jobs and due timers until the app is idle.

use std::ffi::CString;

use elmbox_abi::{DispatchMode, LoadConfig, MemoryReport};
use javy::quickjs::{qjs, Ctx, Function, Module, String as JsString, Value};

use crate::console;
use crate::elm::{ElmApp, Ports};
use crate::error::{GuestError, Thrown, ThrownFromJs};
use crate::timers;

/// The app's ports, as the Elm glue wants them.
fn ports(config: &LoadConfig) -> Ports<'_> {
    Ports {
        module: &config.module,
        incoming: &config.in_port,
        outgoing: &config.out_port,
        flags: config.flags.as_deref(),
    }
}

/// The global through which `eval`-mode snippets reach the app.
const EVAL_SEND: &str = "__elmboxSend";

/// How the host wants an event handed to the app.
#[derive(Clone, Copy)]
pub enum EventKind {
    /// As a JavaScript string.
    Text,
    /// Parsed as JSON.
    Json,
}

pub struct Session {
    runtime: javy::Runtime,
    config: LoadConfig,
    app: ElmApp,
    /// Kept for `reload` mode only.
    reload: Option<Reload>,
}

/// What `reload` mode needs to start the app again for every event.
struct Reload {
    module_source: Vec<u8>,
    modules_loaded: u64,
}

impl Session {
    /// Evaluates the app once, starts it, and settles whatever `init` set off.
    pub fn load(config: LoadConfig, source: &[u8]) -> Result<Session, GuestError> {
        let mut js = javy::Config::default();
        // javy's default GC threshold is never, which lets cyclic garbage
        // pile up; the host always sends a finite one unless asked not to.
        let threshold = |bytes: u32| {
            if bytes == u32::MAX {
                usize::MAX
            } else {
                bytes as usize
            }
        };
        js.gc_threshold(threshold(config.gc_threshold))
            .memory_limit(if config.memory_limit == 0 {
                usize::MAX
            } else {
                config.memory_limit as usize
            })
            .max_stack_size(config.max_stack_size as usize);
        let runtime = javy::Runtime::new(js).map_err(|e| GuestError::BadConfig {
            message: e.to_string(),
        })?;
        let app = runtime
            .context()
            .with(|ctx| -> Result<ElmApp, GuestError> {
                let setup = |e| GuestError::ScriptThrew(Thrown::from_js(&ctx, e));
                console::install(&ctx).map_err(setup)?;
                timers::install(&ctx, config.epoch_ms).map_err(setup)?;
                run_script(&ctx, source, &config.filename)?;
                let elm = ctx
                    .globals()
                    .get::<_, Value>("Elm")
                    .map_err(|_| GuestError::NotElm)?;
                let app = ElmApp::start(&ctx, elm, &ports(&config))?;
                if config.mode == DispatchMode::Eval {
                    let send = app.send_function(&ctx).map_err(setup)?;
                    ctx.globals().set(EVAL_SEND, send).map_err(setup)?;
                }
                Ok(app)
            })?;
        let reload = (config.mode == DispatchMode::Reload).then(|| Reload {
            // The app as an ES module. Module code has no global `this`, so
            // the script runs inside a function called with a fresh scope.
            module_source: [
                b"const run = function () {\n".as_slice(),
                source,
                b"\n};\nexport function load() { const scope = {}; run.call(scope); return scope.Elm; }\n",
            ]
            .concat(),
            modules_loaded: 0,
        });
        let session = Session {
            config,
            runtime,
            app,
            reload,
        };
        session.with(|ctx| session.settle(ctx, timers::elapsed()))?;
        Ok(session)
    }

    fn with<R>(&self, f: impl FnOnce(&Ctx<'_>) -> R) -> R {
        self.runtime.context().with(|ctx| f(&ctx))
    }

    /// Sends one event and runs the app until it is idle at the current instant.
    pub fn dispatch(&mut self, event: &[u8], kind: EventKind) -> Result<(), GuestError> {
        let text = std::str::from_utf8(event).map_err(|e| GuestError::EventNotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        match self.config.mode {
            DispatchMode::Call => {}
            DispatchMode::Eval => return self.dispatch_by_eval(text, kind),
            DispatchMode::Reload => return self.dispatch_by_reload(text, kind),
        }
        self.with(|ctx| {
            let value = event_value(ctx, text, kind)?;
            let sent = self.app.send(ctx, value);
            // Settle even when `send` threw: the app may have armed timers or
            // sent output before throwing, and the port manager must unpark.
            let settled = self.settle(ctx, timers::elapsed());
            sent.map_err(|t| self.threw(t))?;
            settled
        })
    }

    /// `eval` mode: compiles and runs `__elmboxSend(<event literal>)`. A JSON
    /// text is a JavaScript expression, and a JSON string literal is a
    /// JavaScript string literal, so the snippet carries the event verbatim.
    fn dispatch_by_eval(&self, text: &str, kind: EventKind) -> Result<(), GuestError> {
        let literal = match kind {
            EventKind::Text => serde_json::to_string(text).unwrap_or_default(),
            EventKind::Json => {
                serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| {
                    GuestError::EventNotJson {
                        message: e.to_string(),
                    }
                })?;
                text.to_string()
            }
        };
        let snippet = format!("{EVAL_SEND}({literal});");
        self.with(|ctx| {
            let sent = ctx
                .eval::<(), _>(snippet)
                .map_err(|e| Thrown::from_js(ctx, e));
            let settled = self.settle(ctx, timers::elapsed());
            sent.map_err(|t| self.threw(t))?;
            settled
        })
    }

    /// `reload` mode: evaluates the whole app again as a new ES module,
    /// starts it, and sends it the event. Every event meets a fresh app.
    fn dispatch_by_reload(&mut self, text: &str, kind: EventKind) -> Result<(), GuestError> {
        let Some(reload) = self.reload.as_mut() else {
            return Err(GuestError::NotLoaded);
        };
        reload.modules_loaded += 1;
        let name = format!("app-{}.mjs", reload.modules_loaded);
        let source = reload.module_source.clone();
        self.with(|ctx| {
            let threw = |e| GuestError::Threw(Thrown::from_js(ctx, e));
            let (module, _) = Module::declare(ctx.clone(), name, source)
                .and_then(|m| m.eval())
                .map_err(threw)?;
            let load: Function = module.get("load").map_err(threw)?;
            let elm: Value = load.call(()).map_err(threw)?;
            let app = ElmApp::start(ctx, elm, &ports(&self.config))?;
            let sent = app.send(ctx, event_value(ctx, text, kind)?);
            let settled = self.settle(ctx, timers::elapsed());
            sent.map_err(|t| self.threw(t))?;
            settled
        })
    }

    /// Moves the virtual clock forward, firing timers in deadline order.
    pub fn advance(&self, ms: f64) -> Result<(), GuestError> {
        let ms = if ms.is_finite() && ms > 0.0 {
            ms as u64
        } else {
            0
        };
        self.with(|ctx| self.settle(ctx, timers::elapsed().saturating_add(ms)))
    }

    /// Runs promise jobs and every timer due up to `until`, then parks the
    /// clock there. A throwing callback does not stop the others (as in a
    /// browser); the first error is reported.
    fn settle(&self, ctx: &Ctx<'_>, until: u64) -> Result<(), GuestError> {
        let mut first_error = None;
        let mut instant = timers::elapsed();
        let mut fired_at_instant = 0u32;
        loop {
            if let Err(thrown) = run_jobs(ctx) {
                first_error.get_or_insert_with(|| self.threw(thrown));
            }
            let Some(due) = timers::take_due(until) else {
                break;
            };
            let now = timers::elapsed();
            if now != instant {
                instant = now;
                fired_at_instant = 0;
            }
            fired_at_instant += 1;
            if fired_at_instant > self.config.same_instant_limit {
                return Err(GuestError::TimerStorm {
                    limit: self.config.same_instant_limit,
                });
            }
            if let Err(thrown) = call_timer(ctx, &due) {
                first_error.get_or_insert_with(|| self.threw(thrown));
            }
            if due.is_interval {
                timers::rearm(due.id);
            }
        }
        timers::set_now(until);
        first_error.map_or(Ok(()), Err)
    }

    /// An app error. When QuickJS reaches its heap limit it often has no
    /// memory left to build an Error object and throws `null` instead; by
    /// the time we look, the unwound frames have freed memory again, so name
    /// the likely cause rather than print "null".
    fn threw(&self, thrown: Thrown) -> GuestError {
        let bare =
            thrown.stack.is_none() && (thrown.message == "null" || thrown.message == "undefined");
        if self.config.memory_limit > 0 && bare {
            return GuestError::Threw(Thrown {
                message: format!(
                    "InternalError: out of memory (the app threw {}, as QuickJS does when it \
                     reaches its heap limit of {} bytes)",
                    thrown.message, self.config.memory_limit
                ),
                stack: None,
            });
        }
        GuestError::Threw(thrown)
    }

    pub fn memory(&self) -> MemoryReport {
        self.with(|ctx| {
            let mut usage = unsafe { std::mem::zeroed::<qjs::JSMemoryUsage>() };
            unsafe { qjs::JS_ComputeMemoryUsage(runtime_ptr(ctx), &mut usage) };
            MemoryReport {
                malloc_size: usage.malloc_size as i64,
                malloc_count: usage.malloc_count as i64,
                memory_used_size: usage.memory_used_size as i64,
                obj_count: usage.obj_count as i64,
                str_count: usage.str_count as i64,
                atom_count: usage.atom_count as i64,
                js_func_count: usage.js_func_count as i64,
                pending_timers: timers::pending() as i64,
                clock_ms: timers::elapsed() as i64,
            }
        })
    }

    /// Runs QuickJS's cycle collector now.
    pub fn collect_garbage(&self) {
        self.with(|ctx| unsafe { qjs::JS_RunGC(runtime_ptr(ctx)) })
    }
}

/// The event as the JavaScript value the incoming port receives.
fn event_value<'js>(ctx: &Ctx<'js>, text: &str, kind: EventKind) -> Result<Value<'js>, GuestError> {
    match kind {
        EventKind::Text => JsString::from_str(ctx.clone(), text)
            .map(JsString::into_value)
            .map_err(|e| GuestError::Threw(Thrown::from_js(ctx, e))),
        EventKind::Json => ctx.json_parse(text).map_err(|e| GuestError::EventNotJson {
            message: Thrown::from_js(ctx, e).message,
        }),
    }
}

fn runtime_ptr(ctx: &Ctx<'_>) -> *mut qjs::JSRuntime {
    unsafe { qjs::JS_GetRuntime(ctx.as_raw().as_ptr()) }
}

/// Compiles, then runs, the app as a classic global script (non-strict, so the
/// `(function(scope){…}(this))` wrapper of Elm output gets the global object).
/// Compiling first separates syntax errors from errors the script throws.
fn run_script(ctx: &Ctx<'_>, source: &[u8], filename: &str) -> Result<(), GuestError> {
    let filename = CString::new(filename.replace('\0', "")).unwrap_or_default();
    // QuickJS wants a NUL after the last byte.
    let mut text = Vec::with_capacity(source.len() + 1);
    text.extend_from_slice(source);
    text.push(0);
    let raw = ctx.as_raw().as_ptr();
    unsafe {
        let compiled = qjs::JS_Eval(
            raw,
            text.as_ptr().cast(),
            source.len() as _,
            filename.as_ptr(),
            (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32,
        );
        if qjs::JS_IsException(compiled) {
            let thrown = Thrown::from_value(ctx, ctx.catch());
            let (line, column) = position(
                thrown.stack.as_deref().unwrap_or(""),
                filename.to_str().unwrap_or(""),
            );
            return Err(GuestError::Syntax {
                message: thrown.message,
                line,
                column,
            });
        }
        let result = qjs::JS_EvalFunction(raw, compiled);
        if qjs::JS_IsException(result) {
            return Err(GuestError::ScriptThrew(Thrown::from_value(
                ctx,
                ctx.catch(),
            )));
        }
        qjs::JS_FreeValue(raw, result);
    }
    Ok(())
}

/// Line and column of the first `filename:LINE:COL` in a stack trace.
fn position(stack: &str, filename: &str) -> (Option<u32>, Option<u32>) {
    let needle = format!("{filename}:");
    let Some(start) = stack.find(&needle) else {
        return (None, None);
    };
    let mut numbers = stack[start + needle.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .map(|n| n.parse().ok());
    (numbers.next().flatten(), numbers.next().flatten())
}

/// Runs queued promise jobs until none is left.
fn run_jobs(ctx: &Ctx<'_>) -> Result<(), Thrown> {
    let rt = runtime_ptr(ctx);
    let mut first_error = None;
    loop {
        let mut job_ctx = std::ptr::null_mut();
        match unsafe { qjs::JS_ExecutePendingJob(rt, &mut job_ctx) } {
            0 => break,
            r if r < 0 => {
                first_error.get_or_insert_with(|| Thrown::from_value(ctx, ctx.catch()));
            }
            _ => {}
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn call_timer(ctx: &Ctx<'_>, due: &timers::Due) -> Result<(), Thrown> {
    let callback = due
        .callback
        .clone()
        .restore(ctx)
        .map_err(|e| Thrown::from_js(ctx, e))?;
    let mut args = Vec::with_capacity(due.args.len());
    for arg in &due.args {
        args.push(
            arg.clone()
                .restore(ctx)
                .map_err(|e| Thrown::from_js(ctx, e))?,
        );
    }
    callback
        .call::<_, ()>((javy::quickjs::prelude::Rest(args),))
        .map_err(|e| Thrown::from_js(ctx, e))
}
