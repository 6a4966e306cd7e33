//! Arbitrary calls on `elmbox serve`'s HTTP API, checked against what the
//! server answered: the shared body of the `http_api` fuzz target (`make
//! fuzz`, the server in the fuzzer's process) and of the bounded proptest
//! run in `make test` (the real `elmbox` binary, restarted with SIGKILL).
//!
//! The input is raw bytes, read as a list of [`Call`]s through
//! [`arbitrary::Unstructured`]: app names (good ones, hostile ones, any
//! text), deploy query strings, headers, methods, paths and bodies, each
//! sent as raw HTTP/1.1 over a TCP connection of its own. [`check`] holds
//! the server to this:
//! - it never panics and never stops, and every request gets an answer;
//! - an admin call never fails with a 5xx, and an event only with the
//!   app's own fault (500 saying it was restored), a busy app (503) or a
//!   response that did not come in HTTP mode (504);
//! - the apps it lists are exactly those whose deploy was answered 201 or
//!   200 and not removed since (answered 204), before and after every
//!   restart on the same store; each of them shows its info and answers an
//!   event after the last restart.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use arbitrary::{Result as Drawn, Unstructured};
use serde_json::Value;

/// The admin token every server under test is started with.
pub const TOKEN: &str = "fuzz-token";

/// How long a request to an app in HTTP mode waits for its response, on
/// every server under test: short, so a request nobody answers costs little.
pub const RESPONSE_TIMEOUT_MS: u64 = 300;

/// A server that [`check`] drives: started on a state directory, restarted
/// on the same one, and asked whether it is still sound.
pub trait ServerUnderTest {
    /// Starts the server on `state` (a state directory) with
    /// [`TOKEN`] and [`RESPONSE_TIMEOUT_MS`]; where it listens.
    fn start(&mut self, state: &Path) -> SocketAddr;
    /// Stops the server as abruptly as it can (SIGKILL for a process).
    fn stop(&mut self);
    /// `Err` with what went wrong if the server panicked or stopped.
    fn soundness(&mut self) -> Result<(), String>;
}

/// The apps a deploy can carry.
#[derive(Debug, Clone)]
pub struct Bodies {
    /// A sound app (the counter fixture).
    pub good: Vec<u8>,
    /// Apps that load but misbehave, or do not load.
    pub others: Vec<Vec<u8>>,
}

/// A request body, shown short.
#[derive(Clone)]
pub struct Body(pub Vec<u8>);

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = String::from_utf8_lossy(&self.0[..self.0.len().min(48)]);
        write!(f, "{} bytes {head:?}", self.0.len())
    }
}

#[derive(Debug, Clone)]
pub enum Call {
    Deploy {
        name: String,
        query: String,
        body: Body,
        token: Option<String>,
    },
    Show {
        name: String,
        token: Option<String>,
    },
    Remove {
        name: String,
        token: Option<String>,
    },
    List {
        token: Option<String>,
    },
    Event {
        name: String,
        method: String,
        /// After `/apps/{name}`.
        rest: String,
        query: String,
        headers: Vec<(String, String)>,
        body: Body,
    },
    Restart,
}

impl Call {
    /// What kind of call it is, for a [`Tally`].
    pub fn kind(&self) -> &'static str {
        match self {
            Call::Deploy { .. } => "deploy",
            Call::Show { .. } => "show",
            Call::Remove { .. } => "remove",
            Call::List { .. } => "list",
            Call::Event { .. } => "event",
            Call::Restart => "restart",
        }
    }
}

/// Names that deploys and events share, so that events find apps.
const GOOD_NAMES: &[&str] = &["counter", "a", "Shop-2.eu_west", "x9"];

/// Names that were let in once, or are hostile at the edges.
const HOSTILE_NAMES: &[&str] = &[
    "a\0b",
    "a\nb",
    "a b",
    "x\u{202e}y",
    "",
    "_elmbox",
    "-a",
    ".",
    "..",
    "a/b",
    "ünï",
    "a%00b",
    "a\r\nSet-Cookie: x",
];

const HEADER_NAMES: &[&str] = &[
    "Accept",
    "Content-Type",
    "Cookie",
    "User-Agent",
    "X-Forwarded-For",
    "X-Request-Id",
    "Authorization",
];

const QUERY_KEYS: &[&str] = &[
    "module",
    "in-port",
    "out-port",
    "flags",
    "json-events",
    "fresh",
    "http",
    "max-memory-mb",
    "deadline-ms",
    "max-event-bytes",
    "optimize",
];

const QUERY_VALUES: &[&str] = &[
    "true", "false", "0", "1", "100", "5000", "Main", "onEvent", "respond", "{}", "[1,2]", "",
];

fn name(u: &mut Unstructured) -> Drawn<String> {
    Ok(match u.int_in_range(0..=11)? {
        0..=7 => u.choose(GOOD_NAMES)?.to_string(),
        8 => u.choose(HOSTILE_NAMES)?.to_string(),
        9 => "y".repeat(u.int_in_range(60..=5000)?),
        _ => String::arbitrary_take(u)?,
    })
}

trait TakeString {
    fn arbitrary_take(u: &mut Unstructured) -> Drawn<String>;
}

impl TakeString for String {
    /// A short string: mostly printable ASCII, with control characters
    /// and any other character now and then.
    fn arbitrary_take(u: &mut Unstructured) -> Drawn<String> {
        let len = u.int_in_range(0..=24)?;
        (0..len)
            .map(|_| {
                Ok(match u.int_in_range(0..=9)? {
                    0 => char::from(u.int_in_range(0..=31)?),
                    1 => u.arbitrary::<char>()?,
                    _ => char::from(u.int_in_range(32..=126)?),
                })
            })
            .collect()
    }
}

fn query(u: &mut Unstructured) -> Drawn<String> {
    let mut pairs = Vec::new();
    let count = match u.ratio(2, 3)? {
        true => 0,
        false => u.int_in_range(1..=3)?,
    };
    for _ in 0..count {
        let key = match u.ratio(9, 10)? {
            true => u.choose(QUERY_KEYS)?.to_string(),
            false => String::arbitrary_take(u)?,
        };
        let value = match u.ratio(9, 10)? {
            true => u.choose(QUERY_VALUES)?.to_string(),
            false => String::arbitrary_take(u)?,
        };
        pairs.push(format!(
            "{}={}",
            percent_encode(&key),
            percent_encode(&value)
        ));
    }
    // Now and then a query that is not key=value pairs at all.
    if u.ratio(1, 10)? {
        pairs.push(String::arbitrary_take(u)?.replace([' ', '#', '\r', '\n'], ""));
    }
    Ok(pairs.join("&"))
}

fn token(u: &mut Unstructured) -> Drawn<Option<String>> {
    Ok(match u.int_in_range(0..=9)? {
        0 => None,
        1 => Some(String::arbitrary_take(u)?),
        _ => Some(TOKEN.to_string()),
    })
}

fn bytes(u: &mut Unstructured, at_most: usize) -> Drawn<Vec<u8>> {
    let len = u.int_in_range(0..=at_most)?;
    Ok(u.bytes(len.min(u.len()))?.to_vec())
}

/// The calls that `data` stands for, at most `at_most` of them.
pub fn calls(data: &[u8], bodies: &Bodies, at_most: usize) -> Vec<Call> {
    let mut u = Unstructured::new(data);
    // Something for the events to find from the start.
    let mut calls = vec![Call::Deploy {
        name: GOOD_NAMES[0].into(),
        query: String::new(),
        body: Body(bodies.good.clone()),
        token: Some(TOKEN.into()),
    }];
    while calls.len() < at_most && !u.is_empty() {
        match call(&mut u, bodies) {
            Ok(call) => calls.push(call),
            Err(_) => break,
        }
    }
    calls
}

fn call(u: &mut Unstructured, bodies: &Bodies) -> Drawn<Call> {
    Ok(match u.int_in_range(0..=19)? {
        0..=6 => Call::Deploy {
            name: name(u)?,
            query: query(u)?,
            body: Body(match u.int_in_range(0..=5)? {
                0..=3 => bodies.good.clone(),
                4 => u.choose(&bodies.others)?.clone(),
                _ => bytes(u, 256)?,
            }),
            token: token(u)?,
        },
        7..=12 => Call::Event {
            // Half of them to the app deployed first.
            name: match u.ratio(1, 2)? {
                true => GOOD_NAMES[0].into(),
                false => name(u)?,
            },
            method: u
                .choose(&[
                    "POST", "POST", "POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "BREW",
                ])?
                .to_string(),
            rest: match u.int_in_range(0..=5)? {
                0..=3 => "/events".into(),
                4 => String::new(),
                _ => format!("/{}", percent_encode(&String::arbitrary_take(u)?)),
            },
            query: query(u)?,
            headers: (0..u.int_in_range(0..=3)?)
                .map(|_| {
                    let name = match u.ratio(19, 20)? {
                        true => u.choose(HEADER_NAMES)?.to_string(),
                        false => String::arbitrary_take(u)?,
                    };
                    // Mostly values a parser takes: else the request
                    // never reaches a route.
                    let value = String::arbitrary_take(u)?;
                    let value = match u.ratio(9, 10)? {
                        true => value.chars().filter(|c| (' '..='~').contains(c)).collect(),
                        false => value,
                    };
                    Ok((name, value))
                })
                .collect::<Drawn<_>>()?,
            body: Body(match u.ratio(1, 2)? {
                true => b"\"probe\"".to_vec(),
                false => bytes(u, 512)?,
            }),
        },
        13..=14 => Call::Show {
            name: name(u)?,
            token: token(u)?,
        },
        15..=16 => Call::Remove {
            name: name(u)?,
            token: token(u)?,
        },
        17 => Call::List { token: token(u)? },
        _ => Call::Restart,
    })
}

/// `text`'s bytes, all but the unreserved ones as `%XX`.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One answer: its status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Sends one request as raw HTTP/1.1 on a connection of its own and reads
/// the whole answer. A body waits for the server's `100 Continue`: a
/// server that refuses the request before reading its body answers at
/// once, and the connection is not reset under an unread body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Answer, String> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str("Expect: 100-continue\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let fail = |what: &str, e: std::io::Error| format!("{method} {target}: {what}: {e}");
    let mut stream = TcpStream::connect(addr).map_err(|e| fail("connecting", e))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| fail("setting a timeout", e))?;
    stream
        .write_all(head.as_bytes())
        .map_err(|e| fail("sending", e))?;
    let mut answer = Vec::new();
    if !body.is_empty() {
        let first = read_head(&mut stream, &mut answer).map_err(|e| fail("reading", e))?;
        if first.starts_with("HTTP/1.1 100") {
            answer.clear();
            stream
                .write_all(body)
                .map_err(|e| fail("sending the body", e))?;
        }
    }
    stream
        .read_to_end(&mut answer)
        .map_err(|e| fail("reading the answer", e))?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{method} {target}: no status line in {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_string();
    Ok(Answer { status, body })
}

/// Reads until `buffer` holds a whole response head; returns its first line.
fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<String> {
    let mut chunk = [0u8; 4096];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(buffer);
    Ok(text.lines().next().unwrap_or_default().to_string())
}

fn admin_headers(token: &Option<String>) -> Vec<(String, String)> {
    let token = token.as_deref().map(|t| t.replace(['\r', '\n'], ""));
    token
        .map(|t| vec![("Authorization".into(), format!("Bearer {t}"))])
        .unwrap_or_default()
}

/// Headers the fuzzer may not set: they frame the request, which stays
/// ours to frame.
fn frames_the_request(name: &str) -> bool {
    [
        "content-length",
        "transfer-encoding",
        "connection",
        "host",
        "expect",
    ]
    .contains(&name.trim().to_ascii_lowercase().as_str())
}

/// What the server should hold: each app whose deploy was answered 201 or
/// 200, and not removed since.
type Model = BTreeMap<String, ()>;

/// What a run came to, so that a caller can tell it tried something: the
/// answers by kind of call and status, and the apps probed at the end.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub answers: BTreeMap<(String, u16), u64>,
    pub restarts: u64,
    pub probed: u64,
}

impl Tally {
    /// How many calls of `kind` (`deploy`, `event`, ...) got `status`.
    pub fn count(&self, kind: &str, status: u16) -> u64 {
        self.answers
            .get(&(kind.to_string(), status))
            .copied()
            .unwrap_or(0)
    }

    pub fn add(&mut self, other: &Tally) {
        for (key, n) in &other.answers {
            *self.answers.entry(key.clone()).or_default() += n;
        }
        self.restarts += other.restarts;
        self.probed += other.probed;
    }
}

/// Runs `calls` on `server`, started on the empty state directory `state`,
/// then restarts it once more and probes every app it should hold. `Err`
/// names the first call the server got wrong.
pub fn check(
    server: &mut dyn ServerUnderTest,
    state: &Path,
    calls: &[Call],
) -> Result<Tally, String> {
    let mut addr = server.start(state);
    let mut model = Model::new();
    let mut tally = Tally::default();
    for (index, call) in calls.iter().enumerate() {
        let at = |what: String| format!("call {index} ({call:?}): {what}");
        match call {
            Call::Restart => {
                server.stop();
                addr = server.start(state);
                tally.restarts += 1;
                listed_as_modelled(addr, &model).map_err(at)?;
            }
            _ => {
                let status = one(addr, call, &mut model).map_err(at)?;
                *tally
                    .answers
                    .entry((call.kind().into(), status))
                    .or_default() += 1;
            }
        }
        server.soundness().map_err(at)?;
    }
    server.stop();
    addr = server.start(state);
    listed_as_modelled(addr, &model).map_err(|e| format!("after the last restart: {e}"))?;
    for name in model.keys() {
        probe(addr, name).map_err(|e| format!("after the last restart, `{name}`: {e}"))?;
        tally.probed += 1;
    }
    server.soundness()?;
    server.stop();
    Ok(tally)
}

/// Whether an HTTP parser takes `value` as a header value: visible ASCII,
/// spaces and tabs. (One that does not is refused with 400 before any
/// route sees the request.)
fn parses_as_header(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// One call, checked against the model (kept up to date); the status it
/// got.
fn one(addr: SocketAddr, call: &Call, model: &mut Model) -> Result<u16, String> {
    let authorized = |token: &Option<String>| token.as_deref() == Some(TOKEN);
    let unparsable = |token: &Option<String>| !token.as_deref().is_none_or(parses_as_header);
    match call {
        Call::Deploy {
            name,
            query,
            body,
            token,
        } => {
            let target = match query.is_empty() {
                true => format!("/_elmbox/apps/{}", percent_encode(name)),
                false => format!("/_elmbox/apps/{}?{query}", percent_encode(name)),
            };
            let answer = request(addr, "PUT", &target, &admin_headers(token), &body.0)?;
            if std::env::var_os("HTTP_API_DEBUG").is_some() {
                eprintln!(
                    "DEP {target} -> {} {:?}",
                    answer.status,
                    answer.body.chars().take(150).collect::<String>()
                );
            }
            match answer.status {
                201 | 200 if authorized(token) => {
                    if !elmbox::app_name::is_valid(name) {
                        return Err(format!(
                            "deployed under a name the rule refuses: {answer:?}"
                        ));
                    }
                    model.insert(name.clone(), ());
                }
                400 | 409 | 413 => {}
                // No route: `/_elmbox/apps/` names nothing.
                404 | 405 if name.is_empty() => {}
                401 | 403 if !authorized(token) => {}
                status if status >= 500 => return Err(format!("a deploy failed: {answer:?}")),
                _ => return Err(format!("an unexpected answer to a deploy: {answer:?}")),
            }
            Ok(answer.status)
        }
        Call::Remove { name, token } => {
            let target = format!("/_elmbox/apps/{}", percent_encode(name));
            let answer = request(addr, "DELETE", &target, &admin_headers(token), b"")?;
            let known = model.contains_key(name);
            match answer.status {
                204 if authorized(token) && known => {
                    model.remove(name);
                }
                // No route: `/_elmbox/apps/` names nothing.
                404 | 405 if name.is_empty() => {}
                404 if authorized(token) && !known => {}
                400 if authorized(token) && !known => {}
                401 | 403 if !authorized(token) => {}
                400 if unparsable(token) => {}
                _ => return Err(format!("a removal (deployed: {known}) got {answer:?}")),
            }
            Ok(answer.status)
        }
        Call::Show { name, token } => {
            let target = format!("/_elmbox/apps/{}", percent_encode(name));
            let answer = request(addr, "GET", &target, &admin_headers(token), b"")?;
            let known = model.contains_key(name);
            match answer.status {
                200 if authorized(token) && known => {}
                404 | 400 if authorized(token) && !known => {}
                404 | 405 if name.is_empty() => {}
                401 | 403 if !authorized(token) => {}
                400 if unparsable(token) => {}
                _ => return Err(format!("a look (deployed: {known}) got {answer:?}")),
            }
            Ok(answer.status)
        }
        Call::List { token } => {
            let answer = request(addr, "GET", "/_elmbox/apps", &admin_headers(token), b"")?;
            match answer.status {
                200 if authorized(token) => listed(&answer, model)?,
                401 | 403 if !authorized(token) => {}
                400 if unparsable(token) => {}
                _ => return Err(format!("the list got {answer:?}")),
            }
            Ok(answer.status)
        }
        Call::Event {
            name,
            method,
            rest,
            query,
            headers,
            body,
        } => {
            let mut target = format!("/apps/{}{rest}", percent_encode(name));
            if !query.is_empty() {
                target = format!("{target}?{query}");
            }
            let headers: Vec<(String, String)> = headers
                .iter()
                .filter(|(name, _)| !frames_the_request(name))
                .map(|(name, value)| {
                    let clean = |s: &str| s.replace(['\r', '\n', ':'], "");
                    (clean(name), value.replace(['\r', '\n'], ""))
                })
                .filter(|(name, _)| !name.trim().is_empty())
                .collect();
            let answer = request(addr, method, &target, &headers, &body.0)?;
            if std::env::var_os("HTTP_API_DEBUG").is_some() {
                eprintln!(
                    "EV {method} {target} -> {} {:?}",
                    answer.status,
                    answer.body.chars().take(150).collect::<String>()
                );
            }
            event_answer_is_sound(&answer)?;
            if answer.status == 404
                && model.contains_key(name)
                && answer.body.starts_with("no app named")
            {
                return Err(format!("a deployed app was not found: {answer:?}"));
            }
            Ok(answer.status)
        }
        Call::Restart => unreachable!("done by check"),
    }
}

/// An event's answer is the app's, or says why there was none.
fn event_answer_is_sound(answer: &Answer) -> Result<(), String> {
    match answer.status {
        500 if answer.body.contains("restored") => Ok(()),
        503 | 504 => Ok(()),
        status if status >= 500 => Err(format!("an event failed: {answer:?}")),
        _ => Ok(()),
    }
}

fn listed(answer: &Answer, model: &Model) -> Result<(), String> {
    let list: Value = serde_json::from_str(&answer.body)
        .map_err(|e| format!("the list is not JSON ({e}): {answer:?}"))?;
    let apps: Vec<String> = list["apps"]
        .as_array()
        .ok_or_else(|| format!("the list has no apps: {list}"))?
        .iter()
        .filter_map(|name| name.as_str().map(str::to_string))
        .collect();
    let expected: Vec<String> = model.keys().cloned().collect();
    if apps != expected {
        return Err(format!(
            "listed {apps:?}, but the apps answered 201/200 and not removed are {expected:?}"
        ));
    }
    match list["unserved"].as_array() {
        Some(unserved) if unserved.is_empty() => Ok(()),
        _ => Err(format!("apps not served: {list}")),
    }
}

fn listed_as_modelled(addr: SocketAddr, model: &Model) -> Result<(), String> {
    let answer = request(
        addr,
        "GET",
        "/_elmbox/apps",
        &admin_headers(&Some(TOKEN.into())),
        b"",
    )?;
    if answer.status != 200 {
        return Err(format!("the list got {answer:?}"));
    }
    listed(&answer, model)
}

/// The app `name` shows its info and answers an event.
fn probe(addr: SocketAddr, name: &str) -> Result<(), String> {
    let token = admin_headers(&Some(TOKEN.into()));
    let info = request(addr, "GET", &format!("/_elmbox/apps/{name}"), &token, b"")?;
    if info.status != 200 {
        return Err(format!("its info: {info:?}"));
    }
    let info: Value = serde_json::from_str(&info.body).map_err(|e| format!("its info: {e}"))?;
    if info["name"] != name || info["state"] == "unserved" {
        return Err(format!("its info: {info}"));
    }
    let http = info["options"]["http"] == true;
    let target = match http {
        true => format!("/apps/{name}/probe"),
        false => format!("/apps/{name}/events"),
    };
    let answer = request(addr, "POST", &target, &[], b"\"probe\"")?;
    match answer.status {
        200 | 400 | 413 => Ok(()),
        500 if answer.body.contains("restored") => Ok(()),
        // A request the app does not answer (its port says nothing the
        // server can route) waits for the response timeout.
        504 if http => Ok(()),
        _ => Err(format!("an event got {answer:?}")),
    }
}

/// `elmbox serve` as a process of its own, stopped with SIGKILL: what
/// `make test` fuzzes.
#[derive(Default)]
pub struct ServeProcess {
    child: Option<std::process::Child>,
    /// What each start wrote, in order.
    logs: Vec<std::sync::Arc<std::sync::Mutex<String>>>,
}

impl ServeProcess {
    /// What the server wrote to its standard error, over all its starts.
    pub fn log(&self) -> String {
        self.logs
            .iter()
            .map(|log| log.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }
}

impl ServerUnderTest for ServeProcess {
    fn start(&mut self, state: &Path) -> SocketAddr {
        let mut command = std::process::Command::new(crate::elmbox_bin());
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--max-apps", "64"])
            .arg("--response-timeout-ms")
            .arg(RESPONSE_TIMEOUT_MS.to_string())
            .arg("--state")
            .arg(state)
            .env("ELMBOX_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "info");
        let listening = crate::spawn_listening(&mut command);
        self.logs.push(listening.log);
        self.child = Some(listening.child);
        let addr = listening.url.trim_start_matches("http://");
        addr.parse().expect("a socket address")
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn soundness(&mut self) -> Result<(), String> {
        let log = self.log();
        if let Some(at) = log.find("panicked") {
            let from = log[..at].rfind('\n').map_or(0, |n| n + 1);
            return Err(format!("the server panicked: {}", &log[from..]));
        }
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) | None => Ok(()),
            Some(exited) => Err(format!("the server stopped ({exited:?}):\n{log}")),
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
