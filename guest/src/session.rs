//! The one loaded app of this instance ([`Session`]): the QuickJS runtime,
//! the app's ports, and the loop that runs promise jobs and due timers until
//! the app is idle. The exports reach it through [`with_session`].

use std::cell::RefCell;

use elmbox_abi::{AppSettings, DispatchMode, EventFormat, FaultSite, HttpResponse, MemoryReport};
use rquickjs::{Ctx, Function, Module, String as JsString, Value};

use crate::console;
use crate::deadline;
use crate::elm::{self, ElmApp};
use crate::engine::{Engine, Limits};
use crate::error::{AppError, Thrown, ThrownFromJs};
use crate::http;
use crate::quickjs::{self, run_jobs, run_script};
use crate::random;
use crate::reply;
use crate::timers;

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// Loads the app as this instance's session; an instance holds one app.
pub fn start(settings: AppSettings, source: &[u8]) -> Result<(), AppError> {
    if SESSION.with_borrow(Option::is_some) {
        return Err(AppError::AlreadyLoaded);
    }
    let session = deadline::checked(Session::load(settings, source))?;
    SESSION.with_borrow_mut(|slot| *slot = Some(session));
    Ok(())
}

/// Runs `f` on the loaded app.
pub fn with_session<R>(f: impl FnOnce(&mut Session) -> Result<R, AppError>) -> Result<R, AppError> {
    SESSION.with_borrow_mut(|s| deadline::checked(s.as_mut().map_or(Err(AppError::NotLoaded), f)))
}

/// The global through which `eval`-mode snippets reach the app.
const EVAL_SEND: &str = "__elmboxSend";

pub struct Session {
    runtime: Engine,
    settings: AppSettings,
    /// What the app sent while it started, as a JSON array: a built
    /// module's snapshot keeps it, so its instances can report it too.
    startup: Vec<u8>,
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
    pub fn load(settings: AppSettings, source: &[u8]) -> Result<Session, AppError> {
        if settings.all_ports && settings.mode != DispatchMode::Call {
            return Err(AppError::BadConfig {
                message: "all-ports mode dispatches by call only".into(),
            });
        }
        // The host sends its GC threshold; u32::MAX stands for never.
        let bytes = |b: u32| {
            if b == u32::MAX {
                usize::MAX
            } else {
                b as usize
            }
        };
        let runtime = Engine::new(Limits {
            gc_threshold: bytes(settings.gc_threshold),
            memory_limit: settings.js_memory_limit.map_or(usize::MAX, |b| b as usize),
            max_stack_size: settings.max_stack_size as usize,
        })
        .map_err(|e| AppError::BadConfig {
            message: e.to_string(),
        })?;
        let app = runtime.context().with(|ctx| -> Result<ElmApp, AppError> {
            if !quickjs::counts_block_sizes(&ctx) {
                return Err(AppError::BadConfig {
                    message: "this guest's QuickJS cannot tell the size of its heap blocks: \
                              build the guest with `make guest` (GUEST_CFLAGS)"
                        .into(),
                });
            }
            let setup = |e| AppError::ScriptThrew {
                file: settings.name.clone(),
                thrown: Thrown::from_js(&ctx, e),
            };
            deadline::install(quickjs::runtime_ptr(&ctx));
            console::install(&ctx).map_err(setup)?;
            timers::install(&ctx, settings.epoch_ms).map_err(setup)?;
            http::install(&ctx).map_err(setup)?;
            random::install(&ctx, settings.random_seed).map_err(setup)?;
            run_script(&ctx, source, &settings.name)?;
            let elm = ctx
                .globals()
                .get::<_, Value>("Elm")
                .map_err(|_| AppError::NotElm {
                    file: settings.name.clone(),
                })?;
            let app = ElmApp::start(&ctx, elm, &settings)?;
            if settings.mode == DispatchMode::Eval {
                let send = app.send_function(&ctx).map_err(setup)?;
                ctx.globals().set(EVAL_SEND, send).map_err(setup)?;
            }
            Ok(app)
        })?;
        let reload = (settings.mode == DispatchMode::Reload).then(|| Reload {
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
            settings,
            startup: b"[]".to_vec(),
            runtime,
            app,
            reload,
        };
        session.with(|ctx| session.settle(ctx, timers::elapsed(), Move::Exact))?;
        Ok(session)
    }

    fn with<R>(&self, f: impl FnOnce(&Ctx<'_>) -> R) -> R {
        self.runtime.context().with(|ctx| f(&ctx))
    }

    /// The settings the app was loaded with.
    pub fn settings(&self) -> &AppSettings {
        &self.settings
    }

    /// What the app sent while it started, as a JSON array.
    pub fn startup(&self) -> &[u8] {
        &self.startup
    }

    /// Keeps what the app sent while it started (the outputs of the load).
    pub fn set_startup(&mut self, outputs: Vec<u8>) {
        self.startup = outputs;
    }

    /// Sends one event and runs the app until it is idle. With `at` (ms
    /// since load), the clock first catches up to that instant, firing what
    /// came due by then (their outputs come first in the reply); an instant
    /// before the clock's is the clock's.
    pub fn dispatch(&mut self, event: &[u8], at: Option<u64>) -> Result<(), AppError> {
        if let Some(at) = at.filter(|&at| at > timers::elapsed()) {
            self.advance_to(at)?;
        }
        let kind = self.settings.event_format;
        let text = std::str::from_utf8(event).map_err(|e| AppError::EventNotUtf8 {
            valid_up_to: e.valid_up_to() as u64,
        })?;
        match self.settings.mode {
            DispatchMode::Call => {}
            DispatchMode::Eval => return self.dispatch_by_eval(text, kind),
            DispatchMode::Reload => return self.dispatch_by_reload(text, kind),
        }
        elm::take_sink_failure();
        self.with(|ctx| {
            let (port, value) = if self.settings.all_ports {
                let (port, value) = port_event(ctx, text)?;
                (Some(port), value)
            } else {
                (None, event_value(ctx, text, kind)?)
            };
            let sent = self.app.send(ctx, port.as_deref(), value)?;
            self.sent(ctx, sent)
        })
    }

    /// A migration's export: sends `null` on the port `elmboxExport`, runs
    /// the app until it is idle, and answers with what it sent on
    /// `elmboxExported` meanwhile, and nothing else (what it sent on other
    /// ports answers nobody: the host exports from a copy of the app).
    pub fn export(&mut self) -> Result<(), AppError> {
        elm::take_sink_failure();
        self.with(|ctx| {
            let (sink, sent) = self.app.export(ctx)?;
            let settled = self.sent(ctx, sent);
            let exported = self.app.end_export(ctx, sink);
            settled?;
            reply::clear_outputs();
            for json in exported {
                reply::push_output(json.as_bytes());
            }
            Ok(())
        })
    }

    /// Finishes a `send`: a port that rejected the event leaves the app as
    /// it was, so it settles and goes on; any other throw is a fault.
    fn sent(&self, ctx: &Ctx<'_>, sent: Result<(), Thrown>) -> Result<(), AppError> {
        let sent = sent.map_err(|thrown| {
            let thrown = self.reworded(thrown);
            if elm::is_port_rejection(&thrown) {
                AppError::Threw(thrown)
            } else {
                fault(FaultSite::Event, thrown)
            }
        });
        if let Err(fault @ AppError::Faulted { .. }) = sent {
            return Err(fault);
        }
        let settled = self.settle(ctx, timers::elapsed(), Move::Exact);
        sent?;
        settled
    }

    /// `eval` mode: compiles and runs `__elmboxSend(<event literal>)`. A JSON
    /// text is a JavaScript expression, and a JSON string literal is a
    /// JavaScript string literal, so the snippet carries the event verbatim.
    fn dispatch_by_eval(&self, text: &str, kind: EventFormat) -> Result<(), AppError> {
        let literal = match kind {
            EventFormat::Text => serde_json::to_string(text).unwrap_or_default(),
            EventFormat::Json => {
                serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| {
                    AppError::EventNotJson {
                        message: e.to_string(),
                    }
                })?;
                text.to_string()
            }
        };
        let snippet = format!("{EVAL_SEND}({literal});");
        elm::take_sink_failure();
        self.with(|ctx| {
            let sent = ctx
                .eval::<(), _>(snippet)
                .map_err(|e| Thrown::from_js(ctx, e));
            self.sent(ctx, sent)
        })
    }

    /// `reload` mode: evaluates the whole app again as a new ES module,
    /// starts it, and sends it the event. Every event meets a fresh app.
    fn dispatch_by_reload(&mut self, text: &str, kind: EventFormat) -> Result<(), AppError> {
        let Some(reload) = self.reload.as_mut() else {
            return Err(AppError::NotLoaded);
        };
        reload.modules_loaded += 1;
        let name = format!("app-{}.mjs", reload.modules_loaded);
        let source = reload.module_source.clone();
        self.with(|ctx| {
            let threw = |e| AppError::Threw(Thrown::from_js(ctx, e));
            let (module, _) = Module::declare(ctx.clone(), name, source)
                .and_then(|m| m.eval())
                .map_err(threw)?;
            let load: Function = module.get("load").map_err(threw)?;
            let elm: Value = load.call(()).map_err(threw)?;
            let app = ElmApp::start(ctx, elm, &self.settings)?;
            elm::take_sink_failure();
            let sent = app.send(ctx, None, event_value(ctx, text, kind)?)?;
            self.sent(ctx, sent)
        })
    }

    /// Hands the host's answer to one of the app's HTTP requests (an
    /// encoded [`HttpResponse`]) to the app at the instant `at`, as
    /// [`Session::dispatch`] hands an event, and runs the app until it is
    /// idle. An answer no request waits for changes nothing; one that
    /// answers another request than the one waiting under its id is
    /// refused. A throw while the app takes it is a fault: elm/http's
    /// callback runs Elm's scheduler, which it leaves mid-step.
    pub fn deliver_http(&mut self, response: &[u8], at: Option<u64>) -> Result<(), AppError> {
        let response = HttpResponse::decode(response).map_err(|e| AppError::BadConfig {
            message: format!("an HTTP response that does not read back: {e}"),
        })?;
        if let Some(at) = at.filter(|&at| at > timers::elapsed()) {
            self.advance_to(at)?;
        }
        elm::take_sink_failure();
        self.with(|ctx| {
            match http::deliver(ctx, &response) {
                Ok(_) => {}
                Err(http::Failure::Refused(e)) => return Err(e),
                Err(http::Failure::Threw(thrown)) => {
                    return Err(fault(FaultSite::HttpResponse, self.reworded(thrown)));
                }
            }
            self.settle(ctx, timers::elapsed(), Move::Exact)
        })
    }

    /// Moves the virtual clock forward, firing timers in deadline order.
    pub fn advance(&self, ms: f64) -> Result<(), AppError> {
        let ms = if ms.is_finite() && ms > 0.0 {
            ms as u64
        } else {
            0
        };
        let until = timers::elapsed().saturating_add(ms);
        self.with(|ctx| self.settle(ctx, until, Move::Exact))
    }

    /// Moves the clock to `at` (ms since load; never backwards), catching
    /// up: what came due by then fires once, at `at`.
    pub fn advance_to(&self, at: u64) -> Result<(), AppError> {
        let until = at.max(timers::elapsed());
        self.with(|ctx| self.settle(ctx, until, Move::CatchUp))
    }

    /// Runs promise jobs and every timer due up to `until`, then parks the
    /// clock there. A promise job that throws does not stop the others (as
    /// in a browser); the first error is reported. A timer callback that
    /// throws is a fault: in Elm it leaves the scheduler mid-step.
    ///
    /// Only timers that fire at the very instant they were due count
    /// towards the same-instant limit: those a catch-up fires late are
    /// bounded by how many were armed.
    fn settle(&self, ctx: &Ctx<'_>, until: u64, how: Move) -> Result<(), AppError> {
        if how == Move::CatchUp {
            timers::set_now(until);
        }
        let mut first_error = None;
        let mut instant = timers::elapsed();
        let mut fired_at_instant = 0u32;
        loop {
            if let Err(thrown) = run_jobs(ctx) {
                first_error.get_or_insert_with(|| AppError::Threw(self.reworded(thrown)));
            }
            if deadline::interrupted() {
                return Err(deadline::exceeded());
            }
            let Some(due) = timers::take_due(until) else {
                break;
            };
            let now = timers::elapsed();
            if now != instant {
                instant = now;
                fired_at_instant = 0;
            }
            if due.due == now {
                fired_at_instant += 1;
            }
            let limit = self.settings.same_instant_timer_limit;
            if fired_at_instant > limit {
                return Err(AppError::TimerStorm { limit });
            }
            if let Err(thrown) = call_timer(ctx, &due) {
                return Err(fault(FaultSite::Timer, self.reworded(thrown)));
            }
            if due.is_interval {
                timers::rearm(due.id, due.due);
            }
        }
        timers::set_now(until);
        first_error.map_or(Ok(()), Err)
    }

    /// What the app threw, as reported. When QuickJS reaches its heap limit
    /// it often has no memory left to build an Error object and throws
    /// `null` instead; by the time we look, the unwound frames have freed
    /// memory again, so name the likely cause rather than print "null".
    fn reworded(&self, thrown: Thrown) -> Thrown {
        let bare =
            thrown.stack.is_none() && (thrown.message == "null" || thrown.message == "undefined");
        match (self.settings.js_memory_limit, bare) {
            (Some(limit), true) => Thrown {
                message: format!(
                    "InternalError: out of memory (the app threw {}, as QuickJS does when it \
                     reaches its heap limit of {limit} bytes)",
                    thrown.message
                ),
                stack: None,
            },
            _ => thrown,
        }
    }

    pub fn memory(&self) -> MemoryReport {
        self.with(|ctx| {
            let usage = quickjs::memory_usage(ctx);
            MemoryReport {
                malloc_size: usage.malloc_size,
                malloc_count: usage.malloc_count,
                memory_used_size: usage.memory_used_size,
                obj_count: usage.obj_count,
                str_count: usage.str_count,
                atom_count: usage.atom_count,
                js_func_count: usage.js_func_count,
                pending_timers: timers::pending() as i64,
                clock_ms: timers::elapsed() as i64,
            }
        })
    }

    /// Runs QuickJS's cycle collector now.
    pub fn collect_garbage(&self) {
        self.with(quickjs::collect_garbage)
    }
}

/// A throw Elm's runtime cannot recover from, at `site`; or in an outgoing
/// port's subscriber, if one failed on the way up.
fn fault(site: FaultSite, thrown: Thrown) -> AppError {
    let during = if elm::take_sink_failure() {
        FaultSite::OutgoingPort
    } else {
        site
    };
    AppError::Faulted { during, thrown }
}

/// How [`Session::settle`] moves the clock (see the `timers` module).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Move {
    /// Each timer fires at the instant it was due.
    Exact,
    /// The clock jumps to the end first; what came due meanwhile fires once.
    CatchUp,
}

/// An all-ports event, `{"port": NAME, "value": VALUE}`: the port's name
/// and the value for it.
fn port_event<'js>(ctx: &Ctx<'js>, text: &str) -> Result<(String, Value<'js>), AppError> {
    let not = |message: &str| AppError::NotAPortEvent {
        message: message.to_string(),
    };
    let event = ctx.json_parse(text).map_err(|e| AppError::NotAPortEvent {
        message: format!("not JSON: {}", Thrown::from_js(ctx, e).message),
    })?;
    let event = event.into_object().ok_or_else(|| not("not an object"))?;
    let port = event
        .get::<_, Value>("port")
        .ok()
        .and_then(|p| p.as_string().and_then(|s| s.to_string().ok()))
        .ok_or_else(|| not("no \"port\" name"))?;
    if !event.contains_key("value").unwrap_or(false) {
        return Err(not("no \"value\""));
    }
    let value = event.get("value").map_err(|_| not("no \"value\""))?;
    Ok((port, value))
}

/// The event as the JavaScript value the incoming port receives.
fn event_value<'js>(
    ctx: &Ctx<'js>,
    text: &str,
    format: EventFormat,
) -> Result<Value<'js>, AppError> {
    match format {
        EventFormat::Text => JsString::from_str(ctx.clone(), text)
            .map(JsString::into_value)
            .map_err(|e| AppError::Threw(Thrown::from_js(ctx, e))),
        EventFormat::Json => ctx.json_parse(text).map_err(|e| AppError::EventNotJson {
            message: Thrown::from_js(ctx, e).message,
        }),
    }
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
        .call::<_, ()>((rquickjs::prelude::Rest(args),))
        .map_err(|e| Thrown::from_js(ctx, e))
}
