//! The outgoing HTTP requests of `elmbox run` ([`RunRequests`]): sent with
//! the same client and policy as `elmbox serve` (crate `elmbox-outgoing`),
//! on a small tokio runtime made at the first request. A line's answer
//! waits for the requests its event started, and for those their answers
//! start, each bounded by its timeout: still one line per input.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;
use elmbox::durable::commit::Committer;
use elmbox::durable::IdempotencyKeys;
use elmbox::http::{HttpAction, HttpOutcome, HttpRequest, HttpResponse};
use elmbox::{DurableApp, Error};
use elmbox_outgoing::{AllowedHost, AppHttp, HttpPolicy, InFlight, OutgoingClient};

/// Where the app may send HTTP requests, and within which limits.
#[derive(Args, Clone)]
pub struct HttpArgs {
    /// Let the app send HTTP requests to HOST (any port) or HOST:PORT;
    /// repeatable. Requests to any other host fail at once, as elm/http's
    /// `NetworkError`, without a connection (by default: all of them).
    #[arg(long, value_name = "HOST[:PORT]")]
    allow_http: Vec<AllowedHost>,

    /// A PEM file of CA certificates to trust for https, besides the
    /// system's; repeatable.
    #[arg(long, value_name = "FILE")]
    http_ca: Vec<PathBuf>,

    /// A request's timeout when it sets none of its own, in ms.
    #[arg(long, value_name = "MS", default_value_t = HttpPolicy::default().default_timeout_ms)]
    http_timeout_ms: u64,

    /// Bytes a response may have; a larger one fails as `NetworkError`.
    #[arg(long, value_name = "BYTES", default_value_t = HttpPolicy::default().max_response_bytes)]
    http_max_response_bytes: u64,

    /// Requests in flight at once; more fail as `NetworkError`.
    #[arg(long, value_name = "N", default_value_t = HttpPolicy::default().max_concurrent)]
    http_max_concurrent: u32,
}

impl HttpArgs {
    fn policy(&self) -> HttpPolicy {
        HttpPolicy {
            allow: self.allow_http.clone(),
            max_response_bytes: self.http_max_response_bytes,
            default_timeout_ms: self.http_timeout_ms,
            max_concurrent: self.http_max_concurrent,
        }
    }
}

/// One app's requests in `run`.
pub struct RunRequests {
    args: HttpArgs,
    app: String,
    keys: IdempotencyKeys,
    /// Made at the first request: a run whose app sends none pays nothing.
    client: Option<Client>,
    in_flight: HashMap<u64, InFlight>,
    answers: (mpsc::Sender<HttpResponse>, mpsc::Receiver<HttpResponse>),
}

struct Client {
    runtime: tokio::runtime::Runtime,
    client: OutgoingClient,
    app: AppHttp,
}

impl RunRequests {
    /// For the app `app`, its requests keyed by `keys`: a durable app's
    /// own, or (`None`) keys of this run's own, since nothing keeps the
    /// app's history.
    pub fn new(
        args: &HttpArgs,
        app: &str,
        keys: Option<IdempotencyKeys>,
    ) -> anyhow::Result<RunRequests> {
        let keys =
            keys.unwrap_or_else(|| IdempotencyKeys::new(app, &format!("{:012x}", run_tag())));
        // A CA file that does not read is said at once, not at the first
        // request.
        for ca in &args.http_ca {
            std::fs::metadata(ca).with_context(|| format!("--http-ca {}", ca.display()))?;
        }
        Ok(RunRequests {
            args: args.clone(),
            app: app.to_string(),
            keys,
            client: None,
            in_flight: HashMap::new(),
            answers: mpsc::channel(),
        })
    }

    /// Sends what the app started, gives up what it aborted.
    pub fn act(&mut self, actions: Vec<HttpAction>) -> anyhow::Result<()> {
        for action in actions {
            match action {
                HttpAction::Send(request) => self.send(request)?,
                HttpAction::Abort { id } => {
                    if let Some(task) = self.in_flight.remove(&id) {
                        task.abort();
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends `requests` (those an app restored from its state waits on).
    pub fn send_all(&mut self, requests: Vec<HttpRequest>) -> anyhow::Result<()> {
        self.act(requests.into_iter().map(HttpAction::Send).collect())
    }

    fn send(&mut self, request: HttpRequest) -> anyhow::Result<()> {
        let client = match &mut self.client {
            Some(client) => client,
            None => self.client.insert(Client {
                runtime: tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("elmbox-http")
                    .enable_all()
                    .build()?,
                client: OutgoingClient::new(&self.args.http_ca)?,
                app: AppHttp::new(&self.app, self.args.policy()),
            }),
        };
        let id = request.id;
        let key = self.keys.key(id);
        let answers = self.answers.0.clone();
        let task = client.client.start(
            client.runtime.handle(),
            &client.app,
            request,
            key,
            move |response, ended| {
                // What the app sees is only `NetworkError` or `Timeout`.
                match &response.outcome {
                    HttpOutcome::NetworkError { reason } => {
                        eprintln!("elmbox: HTTP request {id}: {reason}")
                    }
                    HttpOutcome::Timeout => eprintln!(
                        "elmbox: HTTP request {id}: no response in time ({})",
                        ended.label()
                    ),
                    HttpOutcome::Response { .. } => {}
                }
                let _ = answers.send(response);
            },
        );
        self.in_flight.insert(id, task);
        Ok(())
    }

    /// The next answer to a request in flight, once it comes; `None` when
    /// none is in flight.
    pub fn next_answer(&mut self) -> Option<HttpResponse> {
        while !self.in_flight.is_empty() {
            let response = self.answers.1.recv().ok()?;
            // An answer to a request aborted meanwhile is nobody's.
            if self.in_flight.remove(&response.id).is_some() {
                return Some(response);
            }
        }
        None
    }
}

/// A tag for this run's `Idempotency-Key`s: no two runs share one.
fn run_tag() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ (u64::from(std::process::id()) << 40)) & 0xffff_ffff_ffff
}

/// Hands `response` to the durable app (at the wall-clock time `at`, or
/// its clock's instant) and records it; what it started leaves once it is
/// durable.
pub fn deliver_durably(
    durable: &mut DurableApp,
    committer: &Committer,
    at: Option<SystemTime>,
    response: &HttpResponse,
) -> Result<(String, Vec<HttpAction>), Error> {
    let mut submitted = match at {
        Some(at) => durable.submit_http_response_at(at, response)?,
        None => durable.submit_http_response(response)?,
    };
    let actions = submitted.take_http_actions();
    if !actions.is_empty() {
        committer.ticket_for(durable.name())?.wait()?;
    }
    Ok((submitted.ungated()?, actions))
}

/// Sends `actions` once what started them is durable: an input a crash
/// loses has called nobody.
pub fn send_when_durable(
    requests: &mut RunRequests,
    committer: &Committer,
    app: &str,
    actions: Vec<HttpAction>,
) -> Result<(), Error> {
    if actions.is_empty() {
        return Ok(());
    }
    committer.ticket_for(app)?.wait()?;
    requests.act(actions).map_err(client_failed)
}

/// The HTTP client could not be made (a CA file that does not read, say).
pub fn client_failed(e: anyhow::Error) -> Error {
    Error::Config(format!("{e:#}"))
}
