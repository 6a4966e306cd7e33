//! Sends an app's [`HttpRequest`] and answers it with one [`HttpResponse`],
//! within the app's [`HttpPolicy`]: a host not allowed is never connected
//! to (nor looked up), redirects are followed only to allowed hosts, a
//! response is read up to the app's limit and no further, and each
//! request runs as one tokio task that the caller can abort.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use elmbox_abi::{HttpRequest, HttpResponse};

use crate::app::{AppHttp, Slot};
use crate::error::ClientError;
use crate::exchange::{prepare, Ended, Refused};
use crate::tls;

/// The HTTP client of a process: one connection pool and one TLS
/// configuration (the system's root certificates plus the extra CAs),
/// shared by all apps. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OutgoingClient {
    // reqwest's client is an `Arc` inside.
    http: reqwest::Client,
}

/// A request started by [`OutgoingClient::start`]. Dropping it leaves the
/// request running; [`InFlight::abort`] stops it.
#[derive(Debug)]
pub struct InFlight {
    shared: Arc<Shared>,
    task: tokio::task::AbortHandle,
}

impl InFlight {
    /// Stops the request: its `done` is then never called, its connection
    /// is dropped, and its place among the app's `max_concurrent` is free
    /// when this returns. False if `done` was called (or is being called)
    /// already: then this does nothing.
    pub fn abort(&self) -> bool {
        if !self.shared.claim(ABORTED) {
            return false;
        }
        self.shared.release_slot();
        self.task.abort();
        true
    }
}

impl OutgoingClient {
    /// The client of this process: HTTP/1.1 over TCP or TLS (rustls, with
    /// the system's root certificates and the CA certificates of
    /// `extra_ca_pem_files`), no proxy (the allowlist names the hosts
    /// connected to), no cookies, no decompression, no redirects of its
    /// own (see [`OutgoingClient::start`]).
    pub fn new(extra_ca_pem_files: &[PathBuf]) -> Result<OutgoingClient, ClientError> {
        let mut tls = tls::client_config(extra_ca_pem_files)?;
        // A preconfigured config keeps its ALPN: HTTP/1.1 is all we speak.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .user_agent(concat!("elmbox/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Http)?;
        Ok(OutgoingClient { http })
    }

    /// Starts `request` for `app` on `runtime` (which needs its I/O and
    /// time drivers), as one task, and calls `done` once with its response
    /// and how it ended, unless [`InFlight::abort`] was called first (or
    /// the runtime shut down). `done` is always called from that task,
    /// never from within `start`, even when the request is refused at once
    /// (not allowed, too many in flight, a bad URL). `idempotency_key` goes
    /// in an `Idempotency-Key` header unless the app set one.
    pub fn start(
        &self,
        runtime: &tokio::runtime::Handle,
        app: &AppHttp,
        request: HttpRequest,
        idempotency_key: String,
        done: impl FnOnce(HttpResponse, Ended) + Send + 'static,
    ) -> InFlight {
        let (plan, slot) = match prepare(app, &request, &idempotency_key) {
            Err(refused) => (Err(refused), None),
            Ok(exchange) => match app.take_slot() {
                Some(slot) => (Ok(exchange), Some(slot)),
                None => (Err(too_many(app, &request)), None),
            },
        };
        let shared = Arc::new(Shared {
            state: AtomicU8::new(PENDING),
            slot,
        });
        // Moved into the task before it first runs, so that the slot is
        // released even when the task is dropped unpolled.
        let release_on_drop = ReleaseOnDrop(shared.clone());
        let http = self.http.clone();
        let app = app.clone();
        let task = runtime.spawn(async move {
            let release_on_drop = release_on_drop;
            let (outcome, ended) = match plan {
                Err(refused) => refused.into_parts(),
                Ok(exchange) => exchange.run(&http, &app, &request).await,
            };
            // Before `done`: the app may start its next request from it.
            release_on_drop.0.release_slot();
            if release_on_drop.0.claim(DELIVERED) {
                let response = HttpResponse {
                    id: request.id,
                    request: request.describe(),
                    outcome,
                };
                done(response, ended);
            }
        });
        InFlight {
            shared,
            task: task.abort_handle(),
        }
    }
}

// Who got to a request first: its task with the response, or an abort.
const PENDING: u8 = 0;
const DELIVERED: u8 = 1;
const ABORTED: u8 = 2;

#[derive(Debug)]
struct Shared {
    state: AtomicU8,
    /// The request's place among its app's `max_concurrent`; none when it
    /// was refused before it took one.
    slot: Option<Slot>,
}

impl Shared {
    /// True for the first of delivery and abort only.
    fn claim(&self, end: u8) -> bool {
        self.state
            .compare_exchange(PENDING, end, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn release_slot(&self) {
        if let Some(slot) = &self.slot {
            slot.release();
        }
    }
}

struct ReleaseOnDrop(Arc<Shared>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release_slot();
    }
}

fn too_many(app: &AppHttp, request: &HttpRequest) -> Refused {
    let max = app.policy().max_concurrent;
    tracing::warn!(
        app = app.name(),
        request_id = request.id,
        method = request.method,
        max_concurrent = max,
        "outgoing HTTP: too many requests in flight"
    );
    Refused::new(
        Ended::TooMany,
        format!("this app has {max} requests in flight already, its most at once"),
    )
}
