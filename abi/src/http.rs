//! Outgoing HTTP: what an app asks for through `XMLHttpRequest` (elm/http's
//! kernel uses nothing else), and what comes back. The guest never reaches
//! the network: each request it starts leaves a call as an [`HttpAction`],
//! the host decides whether and how to send it, and hands the outcome back
//! as an [`HttpResponse`], an input like an event (so a durable host logs
//! it and a replay feeds it again instead of calling again).
//!
//! On the wire both are frames of `u32 LE` JSON length, the JSON (the
//! metadata), `u32 LE` body length, the body bytes: bodies stay bytes.

use serde::{Deserialize, Serialize};

/// A request the app started: `XMLHttpRequest.send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// The app's n-th request since its start (1, 2, 3, ...). The same in
    /// every replay of its log, so a host can derive a retry's
    /// `Idempotency-Key` from it.
    pub id: u64,
    /// As the app gave it to `open` (elm/http passes it verbatim).
    pub method: String,
    /// Absolute, as the app gave it to `open`.
    pub url: String,
    /// In the order the app set them; a name set twice is sent twice.
    pub headers: Vec<(String, String)>,
    /// The request's own timeout (`XMLHttpRequest.timeout`); 0: none.
    pub timeout_ms: u64,
    /// The bytes of the body: text as UTF-8, a `Blob` or bytes as they
    /// are, `FormData` as `multipart/form-data` (its boundary in the
    /// `Content-Type` header the guest adds).
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// What a call asks of the host's HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpAction {
    /// Send this request and hand back its [`HttpResponse`].
    Send(HttpRequest),
    /// The app aborted the request with this id (elm/http's `Http.cancel`,
    /// or a killed task): its response, if one still comes, is ignored.
    Abort { id: u64 },
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HttpOutcome {
    /// A response arrived (any status): XMLHttpRequest's `load` event.
    Response {
        status: u16,
        /// The reason phrase (`OK`, `Not Found`); empty when none.
        status_text: String,
        /// The URL the response came from, after redirects.
        url: String,
        /// As received, in order, names as the peer wrote them.
        headers: Vec<(String, String)>,
        #[serde(skip)]
        body: Vec<u8>,
    },
    /// No response: XMLHttpRequest's `error` event, elm/http's
    /// `NetworkError`. `reason` is for people (the app sees none of it).
    NetworkError { reason: String },
    /// The request's timeout passed: XMLHttpRequest's `timeout` event,
    /// elm/http's `Timeout`.
    Timeout,
}

/// The outcome of the request `id`, for the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    pub id: u64,
    /// The request it answers (`METHOD URL`), so that a replay can tell a
    /// recorded response from one meant for another request.
    pub request: String,
    pub outcome: HttpOutcome,
}

impl HttpRequest {
    /// `METHOD URL`, as an [`HttpResponse`] names its request.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.url)
    }
}

impl HttpResponse {
    /// An `error` event for `request`, saying why.
    pub fn network_error(request: &HttpRequest, reason: impl Into<String>) -> HttpResponse {
        HttpResponse {
            id: request.id,
            request: request.describe(),
            outcome: HttpOutcome::NetworkError {
                reason: reason.into(),
            },
        }
    }

    /// A `timeout` event for `request`.
    pub fn timeout(request: &HttpRequest) -> HttpResponse {
        HttpResponse {
            id: request.id,
            request: request.describe(),
            outcome: HttpOutcome::Timeout,
        }
    }

    /// The response body (empty unless a response arrived).
    pub fn body(&self) -> &[u8] {
        match &self.outcome {
            HttpOutcome::Response { body, .. } => body,
            _ => &[],
        }
    }

    /// One frame: metadata JSON, then the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        push_frame(&mut out, &self.meta_json(), self.body());
        out
    }

    fn meta_json(&self) -> Vec<u8> {
        // Serialising our own types cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a frame [`HttpResponse::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<HttpResponse, FrameError> {
        let mut frames = Frames(bytes);
        let (meta, body) = frames.next_frame()?.ok_or(FrameError("no frame"))?;
        if !frames.0.is_empty() {
            return Err(FrameError("bytes after the response's frame"));
        }
        let mut response: HttpResponse =
            serde_json::from_slice(meta).map_err(|_| FrameError("unreadable response metadata"))?;
        if let HttpOutcome::Response { body: kept, .. } = &mut response.outcome {
            *kept = body.to_vec();
        } else if !body.is_empty() {
            return Err(FrameError("a body on a response that has none"));
        }
        Ok(response)
    }
}

/// Frames of [`HttpAction`]s, back to back: `{"send": HttpRequest}` with
/// its body, or `{"abort": ID}` with an empty one.
pub fn encode_actions(actions: &[HttpAction], out: &mut Vec<u8>) {
    for action in actions {
        push_action(action, out);
    }
}

/// Appends one action's frame.
pub fn push_action(action: &HttpAction, out: &mut Vec<u8>) {
    match action {
        HttpAction::Send(request) => {
            let meta = serde_json::to_vec(&serde_json::json!({ "send": request }));
            push_frame(out, &meta.unwrap_or_default(), &request.body);
        }
        HttpAction::Abort { id } => {
            let meta = serde_json::to_vec(&serde_json::json!({ "abort": id }));
            push_frame(out, &meta.unwrap_or_default(), &[]);
        }
    }
}

/// Reads the frames [`encode_actions`] wrote.
pub fn decode_actions(bytes: &[u8]) -> Result<Vec<HttpAction>, FrameError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    enum Meta {
        Send(HttpRequest),
        Abort(u64),
    }
    let mut frames = Frames(bytes);
    let mut actions = Vec::new();
    while let Some((meta, body)) = frames.next_frame()? {
        let meta: Meta =
            serde_json::from_slice(meta).map_err(|_| FrameError("unreadable request metadata"))?;
        actions.push(match meta {
            Meta::Send(mut request) => {
                request.body = body.to_vec();
                HttpAction::Send(request)
            }
            Meta::Abort(id) => HttpAction::Abort { id },
        });
    }
    Ok(actions)
}

/// A frame that does not read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameError(pub &'static str);

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for FrameError {}

fn push_frame(out: &mut Vec<u8>, meta: &[u8], body: &[u8]) {
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(meta);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
}

struct Frames<'a>(&'a [u8]);

/// One frame's metadata and body.
type Frame<'a> = (&'a [u8], &'a [u8]);

impl<'a> Frames<'a> {
    fn part(&mut self) -> Result<&'a [u8], FrameError> {
        let (len, rest) = self
            .0
            .split_first_chunk::<4>()
            .ok_or(FrameError("a frame is cut short"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(FrameError("a frame is longer than its bytes"));
        }
        let (part, rest) = rest.split_at(len);
        self.0 = rest;
        Ok(part)
    }

    fn next_frame(&mut self) -> Result<Option<Frame<'a>>, FrameError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        Ok(Some((self.part()?, self.part()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: u64, body: &[u8]) -> HttpRequest {
        HttpRequest {
            id,
            method: "POST".into(),
            url: "http://127.0.0.1:9/x?q=é".into(),
            headers: vec![
                ("Content-Type".into(), "text/plain".into()),
                ("X-A".into(), "1".into()),
            ],
            timeout_ms: 250,
            body: body.to_vec(),
        }
    }

    #[test]
    fn actions_round_trip_with_their_bodies() {
        let actions = vec![
            HttpAction::Send(request(1, b"\0\xffbinary")),
            HttpAction::Abort { id: 1 },
            HttpAction::Send(request(2, b"")),
        ];
        let mut bytes = Vec::new();
        encode_actions(&actions, &mut bytes);
        assert_eq!(decode_actions(&bytes).unwrap(), actions);
        assert_eq!(decode_actions(&[]).unwrap(), vec![]);
        for cut in 1..bytes.len() {
            if let Ok(read) = decode_actions(&bytes[..cut]) {
                // Only a cut at a frame's end reads back, as fewer actions.
                assert!(read.len() < actions.len(), "cut {cut}");
            }
        }
    }

    #[test]
    fn responses_round_trip_with_their_bodies() {
        let sent = request(7, b"");
        let responses = [
            HttpResponse {
                id: 7,
                request: sent.describe(),
                outcome: HttpOutcome::Response {
                    status: 404,
                    status_text: "Not Found".into(),
                    url: "http://127.0.0.1:9/y".into(),
                    headers: vec![("content-length".into(), "3".into())],
                    body: b"\x00no".to_vec(),
                },
            },
            HttpResponse::network_error(&sent, "not allowed"),
            HttpResponse::timeout(&sent),
        ];
        for response in responses {
            let bytes = response.encode();
            assert_eq!(HttpResponse::decode(&bytes).unwrap(), response);
            assert!(HttpResponse::decode(&bytes[..bytes.len() - 1]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(HttpResponse::decode(&longer).is_err());
        }
    }
}
