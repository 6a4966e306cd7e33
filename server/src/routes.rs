//! The HTTP API. Admin calls (`/_elmbox/apps...`) need the admin token;
//! events (`POST /apps/{name}/events`) answer with what the app sent, once
//! the event is durable; `GET /healthz` says the server is up, and how its
//! store is.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, put};
use axum::{Json, Router};
use elmbox::{app_name, AppError, Error};

use crate::hosted::{HostError, Hosted, Located};
use crate::http_mode::{request_event, response, Pending};
use crate::metrics::Metrics;
use crate::options::Deploy;

/// The largest request body read at all: a deploy's module or JavaScript.
/// Each app's own event limit is checked below it.
pub const MAX_BODY_BYTES: usize = 64 << 20;

pub struct ServerState {
    pub hosted: Hosted,
    /// `None`: the admin API is off.
    pub admin_token: Option<String>,
    pub response_timeout: Duration,
    pub metrics: Arc<Metrics>,
}

type Shared = Arc<ServerState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/_elmbox/apps", get(list_apps))
        .route(
            "/_elmbox/apps/{name}",
            put(deploy_app).get(show_app).delete(remove_app),
        )
        .route("/apps/{name}", any(app_request))
        .route("/apps/{name}/{*rest}", any(app_request))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

impl IntoResponse for HostError {
    fn into_response(self) -> Response {
        let status = match self {
            HostError::NotFound(_) => StatusCode::NOT_FOUND,
            HostError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HostError::Conflict(_) => StatusCode::CONFLICT,
            HostError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            HostError::Busy(_) | HostError::Parked(_) | HostError::Restoring(_) => {
                let mut response =
                    (StatusCode::SERVICE_UNAVAILABLE, error_text(&self)).into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            HostError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, error_text(&self)).into_response()
    }
}

fn error_text(e: &impl std::fmt::Display) -> String {
    format!("{e}\n")
}

/// Why an admin call was refused.
enum Refusal {
    /// The server has no admin token: the admin API is off.
    Off,
    /// The request did not carry the token.
    Unauthorized,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Off => (
                StatusCode::FORBIDDEN,
                "the admin API is off: start the server with --admin-token or ELMBOX_ADMIN_TOKEN\n",
            )
                .into_response(),
            Refusal::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "the admin API needs `Authorization: Bearer TOKEN`\n",
            )
                .into_response(),
        }
    }
}

/// A request that carries the admin token: an extractor, so that an admin
/// route cannot forget to ask for it.
struct Admin;

impl FromRequestParts<Shared> for Admin {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Admin, Refusal> {
        admin(state, &parts.headers).map(|()| Admin)
    }
}

/// Refused unless the request carries the admin token.
fn admin(state: &ServerState, headers: &HeaderMap) -> Result<(), Refusal> {
    let token = state.admin_token.as_ref().ok_or(Refusal::Off)?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok(()),
        _ => Err(Refusal::Unauthorized),
    }
}

/// Compares without stopping at the first difference, so the time taken
/// says nothing about how much of the token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Runs `f` on a blocking thread: loading and replaying apps block.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HostError> + Send + 'static,
) -> Result<T, HostError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HostError::Internal(format!("the call failed: {e}")))?
}

async fn deploy_app(
    _: Admin,
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let deploy = match Deploy::from_query(&query) {
        Ok(deploy) => deploy,
        Err(e) => return HostError::BadRequest(e).into_response(),
    };
    let deployed = blocking({
        let state = state.clone();
        let name = name.clone();
        move || state.hosted.deploy(&name, &body, deploy)
    })
    .await;
    match deployed {
        Ok(true) => (StatusCode::CREATED, format!("deployed {name}\n")).into_response(),
        Ok(false) => (
            StatusCode::OK,
            format!("deployed a new version of {name}\n"),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn list_apps(_: Admin, State(state): State<Shared>) -> Response {
    Json(serde_json::json!({
        "apps": state.hosted.names(),
        "unserved": state.hosted.unserved(),
    }))
    .into_response()
}

async fn show_app(_: Admin, State(state): State<Shared>, Path(name): Path<String>) -> Response {
    match blocking(move || state.hosted.info(&name)).await {
        Ok(info) => Json(info).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn remove_app(_: Admin, State(state): State<Shared>, Path(name): Path<String>) -> Response {
    let removed = blocking({
        let (state, name) = (state.clone(), name.clone());
        move || state.hosted.remove(&name)
    });
    match removed.await {
        Ok(()) => {
            state.metrics.forget(&name);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// A request to `/apps/{name}[/rest]`: to an app in HTTP mode, a request
/// event; otherwise `POST /apps/{name}/events` is one event.
async fn app_request(
    State(state): State<Shared>,
    Path(params): Path<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let name = params.get("name").cloned().unwrap_or_default();
    if !app_name::is_valid(&name) {
        // Never served: not worth a look in the store.
        return HostError::NotFound(name).into_response();
    }
    let rest = params.get("rest").map(String::as_str).unwrap_or_default();
    if state.hosted.is_node() && !state.hosted.has(&name) {
        let located = blocking({
            let (state, name) = (state.clone(), name.clone());
            move || state.hosted.locate(&name)
        });
        match located.await {
            Ok(Located::Here) => {}
            Ok(Located::Elsewhere { node, address }) => {
                return redirect(&name, &node, &address, &uri)
            }
            Ok(Located::TakeOver) => {
                let (state, taken) = (state.clone(), name.clone());
                tokio::task::spawn_blocking(move || state.hosted.take_over(&taken));
                return HostError::Busy(format!(
                    "`{name}` is being taken over by this node (its lease had expired); try again"
                ))
                .into_response();
            }
            Err(e) => return e.into_response(),
        }
    }
    if state.hosted.is_parked(&name) {
        let woken = blocking({
            let (state, name) = (state.clone(), name.clone());
            move || state.hosted.wake(&name)
        });
        if let Err(e) = woken.await {
            return e.into_response();
        }
    }
    match state.hosted.http(&name) {
        Err(e) => e.into_response(),
        Ok(Some(pending)) => {
            let path = format!("/{rest}");
            let query = uri.query().unwrap_or_default();
            http_request(&state, &name, &pending, (&method, &path, query, &headers, &body)).await
        }
        Ok(None) if method == Method::POST && rest == "events" => event(&state, &name, body).await,
        Ok(None) => (
            StatusCode::NOT_FOUND,
            format!("`{name}` takes events at POST /apps/{name}/events (deploy it with http=true to serve requests)\n"),
        )
            .into_response(),
    }
}

/// 307 to the node that holds the app's lease: the same method, body,
/// path and query there (a client that follows redirects, `curl -L`, sends
/// the request again to the owner).
fn redirect(name: &str, node: &str, address: &str, uri: &Uri) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let location = format!("{}{path}", address.trim_end_matches('/'));
    match HeaderValue::from_str(&location) {
        Ok(value) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, value)],
            format!("`{name}` is run by node `{node}`: {location}\n"),
        )
            .into_response(),
        Err(_) => HostError::Internal(format!(
            "`{name}` is run by node `{node}`, whose address `{address}` is not usable in a \
             Location header"
        ))
        .into_response(),
    }
}

/// One event: the body is what one line of `elmbox run` carries.
async fn event(state: &ServerState, name: &str, body: Bytes) -> Response {
    let taken = Instant::now();
    // Takes the body's buffer over when it can, rather than copy it.
    let answer = match state.hosted.send(name, Vec::from(body)) {
        Ok(answer) => answer,
        Err(e) => return e.into_response(),
    };
    match answer.await {
        Ok(Ok(sent)) => {
            state
                .metrics
                .answered(name, taken.elapsed().as_secs_f64(), Ok(()));
            ([(header::CONTENT_TYPE, "application/json")], sent).into_response()
        }
        Ok(Err(e)) => {
            state
                .metrics
                .answered(name, taken.elapsed().as_secs_f64(), Err(&e));
            event_error(&e)
        }
        Err(_) => unwritable(name),
    }
}

/// 200 while the server is up, the store's health in the body: a store
/// that heals is not a reason for a load balancer to take the server out
/// (its events are refused meanwhile, saying why).
async fn healthz(State(state): State<Shared>) -> String {
    let (health, errors) = state.hosted.store_health();
    match health.reason() {
        None => format!("ok\nstore: healthy ({errors} failed commits so far)\n"),
        Some(reason) => format!(
            "ok\nstore: {}: {reason} ({errors} failed commits so far)\n",
            health.name()
        ),
    }
}

/// The Prometheus text format.
async fn metrics(State(state): State<Shared>) -> Response {
    let text = blocking(move || {
        let hosted = &state.hosted;
        Ok(state.metrics.render(
            &hosted.memory(),
            hosted.apps_with_timers(),
            hosted.commits(),
            hosted.store_health(),
        ))
    })
    .await;
    match text {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The answer when the commit thread dropped an event's answer.
fn unwritable(name: &str) -> Response {
    HostError::Busy(format!(
        "`{name}` could not answer: its state could not be written"
    ))
    .into_response()
}

/// One request to an app in HTTP mode: its event, then the app's response
/// to it, from this event or a later one, or 504.
async fn http_request(
    state: &ServerState,
    name: &str,
    pending: &Pending,
    (method, path, query, headers, body): (&Method, &str, &str, &HeaderMap, &Bytes),
) -> Response {
    let taken = Instant::now();
    let (id, responded) = pending.register();
    let event = request_event(&id, method.as_str(), path, query, headers, body);
    let answer = match state.hosted.send(name, event.to_string().into_bytes()) {
        Ok(answer) => answer,
        Err(e) => {
            pending.forget(&id);
            return e.into_response();
        }
    };
    let waited = tokio::time::timeout(state.response_timeout, async {
        match answer.await {
            Ok(Ok(_)) => {
                let seconds = taken.elapsed().as_secs_f64();
                state.metrics.answered(name, seconds, Ok(()));
            }
            Ok(Err(e)) => {
                let seconds = taken.elapsed().as_secs_f64();
                state.metrics.answered(name, seconds, Err(&e));
                return event_error(&e);
            }
            Err(_) => return unwritable(name),
        }
        match responded.await {
            Ok(value) => response(&value),
            Err(_) => unwritable(name),
        }
    })
    .await;
    match waited {
        Ok(response) => {
            pending.forget(&id);
            response
        }
        Err(_) => {
            pending.forget(&id);
            (
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "`{name}` did not respond within {} ms\n",
                    state.response_timeout.as_millis()
                ),
            )
                .into_response()
        }
    }
}

/// What an app's error on one event means for the client: its own event
/// was wrong (the app goes on), the app faulted (and was restored), or the
/// store failed (the event is not answered; the app restores itself from
/// the store before its next one): 507 while the disk is full, else 503.
fn event_error(e: &Error) -> Response {
    let status = match e {
        Error::App {
            error: AppError::EventTooLarge { .. },
            ..
        } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::StateFull { .. } | Error::NotTaken { full: true, .. } => {
            StatusCode::INSUFFICIENT_STORAGE
        }
        Error::StateWrite { .. } | Error::BadState { .. } | Error::NotTaken { .. } => {
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, error_text(e)).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        Error::Restored { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        e if e.is_fatal() => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, error_text(e)).into_response()
}
