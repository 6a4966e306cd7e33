//! Real HTTP and HTTPS servers on 127.0.0.1 for the tests: each counts
//! the TCP connections it accepts and records the requests it reads, then
//! answers with the test's handler.

// Each test binary uses part of this.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use elmbox_abi::{HttpRequest, HttpResponse};
use elmbox_outgoing::{AllowedHost, AppHttp, Ended, HttpPolicy, OutgoingClient};

pub type Reply = Response<BoxBody<Bytes, Infallible>>;
type Handler = Arc<dyn Fn(Seen) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// A request as the server read it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    /// Every value of the header `name` (lower case), in order.
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    seen_count: watch::Receiver<usize>,
}

impl TestServer {
    /// An HTTP server on 127.0.0.1, a port of its own.
    pub async fn start<F, Fut>(handler: F) -> TestServer
    where
        F: Fn(Seen) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        TestServer::start_with(None, handler).await
    }

    /// An HTTPS server with `tls`'s certificate.
    pub async fn start_tls<F, Fut>(tls: Arc<rustls::ServerConfig>, handler: F) -> TestServer
    where
        F: Fn(Seen) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        TestServer::start_with(Some(tokio_rustls::TlsAcceptor::from(tls)), handler).await
    }

    async fn start_with<F, Fut>(tls: Option<tokio_rustls::TlsAcceptor>, handler: F) -> TestServer
    where
        F: Fn(Seen) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |seen| Box::pin(handler(seen)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (count_tx, seen_count) = watch::channel(0);
        let count_tx = Arc::new(count_tx);
        let accepted = connections.clone();
        let recorded = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                let recorded = recorded.clone();
                let count_tx = count_tx.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(stream, handler, recorded, count_tx).await,
                        Some(tls) => {
                            // A client that refuses our certificate ends here.
                            if let Ok(stream) = tls.accept(stream).await {
                                serve(stream, handler, recorded, count_tx).await;
                            }
                        }
                    }
                });
            }
        });
        TestServer {
            addr,
            connections,
            seen,
            seen_count,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `127.0.0.1:PORT`, as an allowlist entry.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Requests read so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (at most 5 s) until the server has read `n` requests.
    pub async fn wait_for_requests(&self, n: usize) {
        let mut count = self.seen_count.clone();
        tokio::time::timeout(Duration::from_secs(5), count.wait_for(|seen| *seen >= n))
            .await
            .unwrap_or_else(|_| panic!("the server did not get {n} requests within 5 s"))
            .unwrap();
    }
}

async fn serve<S>(
    stream: S,
    handler: Handler,
    recorded: Arc<Mutex<Vec<Seen>>>,
    count_tx: Arc<watch::Sender<usize>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let handler = handler.clone();
        let recorded = recorded.clone();
        let count_tx = count_tx.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let seen = Seen {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("<bytes>").to_owned()))
                    .collect(),
                body: body.to_vec(),
            };
            let count = {
                let mut recorded = recorded.lock().unwrap();
                recorded.push(seen.clone());
                recorded.len()
            };
            count_tx.send_replace(count);
            Ok::<_, Infallible>(handler(seen).await)
        }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A response with `body` (and its Content-Length).
pub fn reply(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response.body(Full::new(body.into()).boxed()).unwrap()
}

/// A response whose body the caller streams through the returned sender
/// (chunked, no Content-Length unless `headers` give one).
pub fn streamed(
    status: u16,
    headers: &[(&str, &str)],
) -> (http_body_util::channel::Sender<Bytes>, Reply) {
    let (sender, body) = http_body_util::Channel::<Bytes>::new(4);
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    (sender, response.body(body.boxed()).unwrap())
}

/// A request of the app.
pub fn request(method: &str, url: &str) -> HttpRequest {
    HttpRequest {
        id: 1,
        method: method.into(),
        url: url.into(),
        headers: Vec::new(),
        timeout_ms: 0,
        body: Vec::new(),
    }
}

/// An app allowed `hosts` (comma-separated), with the default limits.
pub fn app(hosts: &str) -> AppHttp {
    app_with(hosts, HttpPolicy::default())
}

/// An app allowed `hosts`, with `policy`'s limits.
pub fn app_with(hosts: &str, policy: HttpPolicy) -> AppHttp {
    AppHttp::new(
        "test-app",
        HttpPolicy {
            allow: AllowedHost::parse_list(hosts).unwrap(),
            ..policy
        },
    )
}

pub fn client() -> OutgoingClient {
    OutgoingClient::new(&[]).unwrap()
}

/// Starts `request`; the receiver gets what `done` was called with.
pub fn start(
    client: &OutgoingClient,
    app: &AppHttp,
    request: HttpRequest,
) -> (
    elmbox_outgoing::InFlight,
    oneshot::Receiver<(HttpResponse, Ended)>,
) {
    let (done_tx, done_rx) = oneshot::channel();
    let in_flight = client.start(
        &tokio::runtime::Handle::current(),
        app,
        request,
        "key-of-the-test".into(),
        move |response, ended| {
            let _ = done_tx.send((response, ended));
        },
    );
    (in_flight, done_rx)
}

/// Waits (at most 10 s) for `done`.
pub async fn finished(done: oneshot::Receiver<(HttpResponse, Ended)>) -> (HttpResponse, Ended) {
    tokio::time::timeout(Duration::from_secs(10), done)
        .await
        .expect("the request ended within 10 s")
        .expect("done was called")
}

/// Sends `request` and waits for its response.
pub async fn send(
    client: &OutgoingClient,
    app: &AppHttp,
    request: HttpRequest,
) -> (HttpResponse, Ended) {
    let (_in_flight, done) = start(client, app, request);
    finished(done).await
}

/// A file of its own in the temporary directory, removed when dropped.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(name: &str, contents: &[u8]) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("elmbox-outgoing-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
