//! HTTP mode (`http=true`): every request to `/apps/{name}/...` reaches the
//! app's incoming port as one event,
//! `{"id", "method", "path", "query", "headers", "body" | "bodyBase64"}`,
//! and the app answers by sending `{"id", "status", "headers", "body" |
//! "bodyBase64"}` on its outgoing port, in that event or any later one
//! (long polling). [`Pending`] holds the requests still waiting, and routes
//! each event's outputs to them once the event is durable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

/// The requests of one app that wait for their response.
pub struct Pending {
    /// The app's name, for the log.
    app: String,
    waiting: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    /// Ids are unique across restarts too: an app may keep an id in its
    /// state (a long poll) and answer it after the server came back, and
    /// that answer must not reach another request.
    boot: String,
    next: AtomicU64,
}

impl Pending {
    pub fn new(app: &str) -> Pending {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Pending {
            app: app.to_string(),
            waiting: Mutex::default(),
            boot: format!("{:x}-{:x}", nanos, std::process::id()),
            next: AtomicU64::new(1),
        }
    }

    /// A new request id, and where its response will arrive.
    pub fn register(&self) -> (String, oneshot::Receiver<Value>) {
        let id = format!(
            "{}-{}",
            self.boot,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let (send, receive) = oneshot::channel();
        self.lock().insert(id.clone(), send);
        (id, receive)
    }

    /// Requests waiting for their response.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The request `id` gave up (timed out, or failed).
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Hands each response among `outputs` (one event's JSON array) to its
    /// request; what is not a response to a waiting request is logged and
    /// dropped.
    pub fn route(&self, outputs: &str) {
        let app = self.app.as_str();
        let values: Vec<Value> = match serde_json::from_str(outputs) {
            Ok(values) => values,
            Err(e) => {
                tracing::warn!(app, error = %e, "outputs that do not parse; dropped");
                return;
            }
        };
        for value in values {
            let waiting = value
                .get("id")
                .and_then(Value::as_str)
                .and_then(|id| self.lock().remove(id));
            match waiting {
                Some(request) => {
                    // The client may have gone: nothing to do then.
                    let _ = request.send(value);
                }
                None => tracing::warn!(app, %value, "not a response to a waiting request; dropped"),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Value>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The event a request becomes.
pub fn request_event(
    id: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Value {
    let mut names: Map<String, Value> = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        // Repeated headers join as HTTP allows: "a, b".
        match names.get_mut(name.as_str()) {
            Some(Value::String(seen)) => {
                seen.push_str(", ");
                seen.push_str(&value);
            }
            _ => {
                names.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }
    let mut event = json!({
        "id": id,
        "method": method,
        "path": path,
        "query": query,
        "headers": names,
    });
    match std::str::from_utf8(body) {
        Ok(text) => event["body"] = Value::String(text.to_string()),
        Err(_) => event["bodyBase64"] = Value::String(BASE64.encode(body)),
    }
    event
}

/// The HTTP response an app's response value stands for; a value that
/// cannot be one is a 502, saying why.
pub fn response(value: &Value) -> Response {
    match read_response(value) {
        Ok(response) => response,
        Err(why) => (
            StatusCode::BAD_GATEWAY,
            format!("the app's response cannot be sent: {why}\n"),
        )
            .into_response(),
    }
}

fn read_response(value: &Value) -> Result<Response, String> {
    let status = match value.get("status") {
        None => StatusCode::OK,
        Some(status) => status
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| format!("`status` is not an HTTP status: {status}"))?,
    };
    let body = match (value.get("body"), value.get("bodyBase64")) {
        (Some(Value::String(text)), None) => text.clone().into_bytes(),
        (None, Some(Value::String(encoded))) => BASE64
            .decode(encoded)
            .map_err(|e| format!("`bodyBase64` is not base64: {e}"))?,
        (None, None) => Vec::new(),
        _ => return Err("it needs one of `body` or `bodyBase64`, a string".into()),
    };
    let mut response = (status, body).into_response();
    if let Some(headers) = value.get("headers") {
        let headers = headers.as_object().ok_or("`headers` is not an object")?;
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a header name"))?;
            let value = value
                .as_str()
                .and_then(|v| HeaderValue::from_str(v).ok())
                .ok_or_else(|| format!("the value of header `{name}` is not a header value"))?;
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_events_and_responses_route_to_their_request() {
        let pending = Pending::new("app");
        let (id, mut answer) = pending.register();
        let mut headers = HeaderMap::new();
        headers.append("x-tag", HeaderValue::from_static("a"));
        headers.append("x-tag", HeaderValue::from_static("b"));
        let event = request_event(
            &id,
            "GET",
            "/p",
            "q=1",
            &headers,
            &Bytes::from_static(b"hi"),
        );
        assert_eq!(event["headers"]["x-tag"], "a, b");
        assert_eq!(event["body"], "hi");
        let binary = request_event(&id, "PUT", "/", "", &headers, &Bytes::from_static(&[0xff]));
        assert_eq!(binary["bodyBase64"], "/w==");
        assert!(binary.get("body").is_none());

        pending.route(&format!(r#"[{{"log":1}},{{"id":"{id}","status":201}}]"#));
        assert_eq!(answer.try_recv().unwrap()["status"], 201);
        // Answered once: a second response to the same id is dropped.
        pending.route(&format!(r#"[{{"id":"{id}","status":200}}]"#));
        assert!(
            Pending::new("app").register().0 != id,
            "ids differ between boots"
        );
    }

    #[test]
    fn responses_that_cannot_be_sent_say_why() {
        let ok =
            response(&json!({"id": "x", "status": 404, "headers": {"x-a": "b"}, "body": "no"}));
        assert_eq!(ok.status(), StatusCode::NOT_FOUND);
        assert_eq!(ok.headers()["x-a"], "b");
        for (value, why) in [
            (json!({"id": "x", "status": 99}), "not an HTTP status"),
            (
                json!({"id": "x", "body": 5}),
                "one of `body` or `bodyBase64`",
            ),
            (json!({"id": "x", "bodyBase64": "%%"}), "not base64"),
            (
                json!({"id": "x", "headers": {"bad name": "v"}}),
                "not a header name",
            ),
        ] {
            let err = read_response(&value).expect_err("refused");
            assert!(err.contains(why), "{value}: {err}");
            assert_eq!(response(&value).status(), StatusCode::BAD_GATEWAY);
        }
    }
}
