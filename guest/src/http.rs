//! Outgoing HTTP in the guest: `XMLHttpRequest`, `Blob`, `File` and
//! `FormData` (written in JavaScript, `xhr.js`) over four native calls, and
//! the requests waiting for their responses.
//!
//! The guest never touches the network. `send` records the request and puts
//! it in the call's reply (`reply::push_http`); the host answers later with
//! an input of its own ([`deliver`]). The waiting requests live here, in
//! linear memory, so a snapshot holds them with their bodies: a host that
//! restores an app asks for them ([`waiting`]) and sends them again.

use std::cell::RefCell;
use std::collections::BTreeMap;

use elmbox_abi::{AppError, HttpAction, HttpOutcome, HttpRequest, HttpResponse};
use rquickjs::{
    prelude::Opt, Array, ArrayBuffer, Ctx, Exception, Function, Object, Persistent, Result,
    TypedArray, Value,
};

use crate::error::{Thrown, ThrownFromJs};
use crate::reply;

#[derive(Default)]
struct Requests {
    /// The id of the last request started: ids count the app's requests
    /// from its start, so a replay of its log gives each the same one.
    last_id: u64,
    /// Sent and not yet answered, by id.
    waiting: BTreeMap<u64, HttpRequest>,
}

thread_local! {
    static REQUESTS: RefCell<Requests> = RefCell::new(Requests::default());
    /// `xhr.js`'s `deliver`.
    static DELIVER: RefCell<Option<Persistent<Function<'static>>>> = const { RefCell::new(None) };
}

/// Defines `XMLHttpRequest` and friends on the global object.
pub fn install(ctx: &Ctx<'_>) -> Result<()> {
    let native = Object::new(ctx.clone())?;
    native.set("send", Function::new(ctx.clone(), send)?)?;
    native.set("abort", Function::new(ctx.clone(), abort)?)?;
    native.set("utf8", Function::new(ctx.clone(), utf8)?)?;
    native.set("fromUtf8", Function::new(ctx.clone(), from_utf8)?)?;
    native.set("contains", Function::new(ctx.clone(), contains)?)?;
    let make: Function = ctx.eval(include_str!("xhr.js"))?;
    let deliver: Function = make.call((native,))?;
    DELIVER.with_borrow_mut(|d| *d = Some(Persistent::save(ctx, deliver)));
    Ok(())
}

/// `native.send(method, url, headers, timeout, body)`: records a request
/// and returns its id. `body` is a `Uint8Array`, or null for none.
fn send<'js>(
    ctx: Ctx<'js>,
    method: String,
    url: String,
    headers: Array<'js>,
    timeout: f64,
    body: Opt<Value<'js>>,
) -> Result<f64> {
    let mut pairs = Vec::with_capacity(headers.len());
    for header in headers.iter::<Array>() {
        let header = header?;
        pairs.push((header.get::<String>(0)?, header.get::<String>(1)?));
    }
    let body = match body.0.filter(|b| !b.is_null() && !b.is_undefined()) {
        None => Vec::new(),
        Some(value) => {
            let array = TypedArray::<u8>::from_value(value)?;
            // SAFETY: copied out before any JavaScript runs again.
            unsafe { array.as_bytes() }
                .ok_or_else(|| Exception::throw_type(&ctx, "the request body was detached"))?
                .to_vec()
        }
    };
    let request = REQUESTS.with_borrow_mut(|r| {
        r.last_id += 1;
        let request = HttpRequest {
            id: r.last_id,
            method,
            url,
            headers: pairs,
            timeout_ms: if timeout > 0.0 { timeout as u64 } else { 0 },
            body,
        };
        r.waiting.insert(request.id, request.clone());
        request
    });
    let id = request.id as f64;
    reply::push_http(&HttpAction::Send(request));
    Ok(id)
}

/// `native.abort(id)`: the app gave up on a request it sent.
fn abort(id: f64) {
    let id = id as u64;
    if REQUESTS
        .with_borrow_mut(|r| r.waiting.remove(&id))
        .is_some()
    {
        reply::push_http(&HttpAction::Abort { id });
    }
}

/// `native.utf8(text)`: the text's UTF-8 bytes, as an `ArrayBuffer`.
fn utf8<'js>(ctx: Ctx<'js>, text: String) -> Result<ArrayBuffer<'js>> {
    ArrayBuffer::new(ctx, text.into_bytes())
}

/// `native.fromUtf8(bytes)`: the text of UTF-8 bytes (an `ArrayBuffer` or
/// a typed array), malformed sequences replaced, as a browser decodes a
/// response.
fn from_utf8<'js>(ctx: Ctx<'js>, bytes: Value<'js>) -> Result<String> {
    with_bytes(&ctx, &bytes, |b| String::from_utf8_lossy(b).into_owned())
}

/// `native.contains(bytes, text)`: whether `text`'s UTF-8 bytes occur in
/// `bytes` (a `FormData` boundary must not).
fn contains<'js>(ctx: Ctx<'js>, bytes: Value<'js>, text: String) -> Result<bool> {
    let needle = text.as_bytes();
    with_bytes(&ctx, &bytes, |b| {
        !needle.is_empty() && b.windows(needle.len()).any(|w| w == needle)
    })
}

/// `f` is plain Rust: no JavaScript runs while it holds the engine's bytes,
/// which is what `as_bytes` asks of its callers.
fn with_bytes<'js, R>(ctx: &Ctx<'js>, value: &Value<'js>, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
    if let Some(buffer) = ArrayBuffer::from_value(value.clone()) {
        if let Some(bytes) = unsafe { buffer.as_bytes() } {
            return Ok(f(bytes));
        }
    } else if let Ok(array) = TypedArray::<u8>::from_value(value.clone()) {
        if let Some(bytes) = unsafe { array.as_bytes() } {
            return Ok(f(bytes));
        }
    }
    Err(Exception::throw_type(ctx, "expected bytes"))
}

/// What the app did with a response.
pub enum Delivered {
    /// A request was waiting for it: the app's callbacks ran.
    Taken,
    /// No request was waiting under its id (the app aborted it, or never
    /// made it): nothing happened.
    Ignored,
}

/// Hands `response` to the request waiting for it: its events fire and
/// the app's callbacks run (what they set off is left for the caller to
/// settle). A response that answers another request than the one waiting
/// under its id is refused, and nothing happens.
pub fn deliver(ctx: &Ctx<'_>, response: &HttpResponse) -> std::result::Result<Delivered, Failure> {
    let waiting = REQUESTS.with_borrow(|r| r.waiting.get(&response.id).map(HttpRequest::describe));
    let Some(waiting) = waiting else {
        return Ok(Delivered::Ignored);
    };
    if waiting != response.request {
        return Err(Failure::Refused(AppError::HttpResponseMismatch {
            id: response.id,
            waiting,
            answers: response.request.clone(),
        }));
    }
    REQUESTS.with_borrow_mut(|r| r.waiting.remove(&response.id));
    let thrown = |e| Failure::Threw(Thrown::from_js(ctx, e));
    let deliver = DELIVER
        .with_borrow(Clone::clone)
        .ok_or(Failure::Refused(AppError::NotLoaded))?
        .restore(ctx)
        .map_err(thrown)?;
    let id = response.id as f64;
    let called = match &response.outcome {
        HttpOutcome::Response {
            status,
            status_text,
            url,
            headers,
            body,
        } => {
            let pairs = Array::new(ctx.clone()).map_err(thrown)?;
            for (i, (name, value)) in headers.iter().enumerate() {
                let pair = Array::new(ctx.clone()).map_err(thrown)?;
                pair.set(0, name.as_str()).map_err(thrown)?;
                pair.set(1, value.as_str()).map_err(thrown)?;
                pairs.set(i, pair).map_err(thrown)?;
            }
            let body = ArrayBuffer::new_copy(ctx.clone(), body).map_err(thrown)?;
            deliver.call::<_, bool>((
                id,
                "load",
                *status as f64,
                status_text.as_str(),
                url.as_str(),
                pairs,
                body,
            ))
        }
        HttpOutcome::NetworkError { .. } | HttpOutcome::Timeout => {
            let outcome = match response.outcome {
                HttpOutcome::Timeout => "timeout",
                _ => "error",
            };
            deliver.call::<_, bool>((id, outcome))
        }
    };
    called.map_err(thrown)?;
    Ok(Delivered::Taken)
}

/// Why a response could not be handed over.
pub enum Failure {
    /// Refused before it reached the app.
    Refused(AppError),
    /// The app threw while it took it.
    Threw(Thrown),
}

/// The requests sent and not yet answered, in the order they were made.
pub fn waiting() -> Vec<HttpRequest> {
    REQUESTS.with_borrow(|r| r.waiting.values().cloned().collect())
}
