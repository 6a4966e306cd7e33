//! The outgoing HTTP requests of the apps served ([`Outgoing`]): one client
//! for the process, on the server's tokio runtime (a task per request, no
//! thread), each app's policy (`allow-http=`, limits), and the requests in
//! flight. An answer goes to whoever serves its app when it arrives (its
//! owner thread, as an input of its own); an answer that finds the app not
//! served (parked, being deployed, moved to another node) is dropped, and
//! the request is sent again, with the same `Idempotency-Key`, when the app
//! is served again: it still waits in the app.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use elmbox::durable::IdempotencyKeys;
use elmbox::http::{HttpAction, HttpRequest, HttpResponse};
use elmbox_outgoing::{AppHttp, Ended, HttpPolicy, InFlight, OutgoingClient};

use crate::metrics::Metrics;

/// Hands an answer to whoever serves the app now; `false`: nobody took it.
pub type Deliver = Box<dyn Fn(HttpResponse) -> bool + Send + Sync>;

pub struct Outgoing {
    client: OutgoingClient,
    runtime: tokio::runtime::Handle,
    metrics: Arc<Metrics>,
    apps: Arc<Mutex<HashMap<String, AppRequests>>>,
}

/// One app's side: how it may send, and what it has in flight.
struct AppRequests {
    http: AppHttp,
    keys: IdempotencyKeys,
    /// `None` while the app is not served here.
    deliver: Option<Arc<Deliver>>,
    /// By request id: which request (`METHOD URL`), and its task.
    in_flight: HashMap<u64, (String, InFlight)>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Outgoing {
    pub fn new(
        client: OutgoingClient,
        runtime: tokio::runtime::Handle,
        metrics: Arc<Metrics>,
    ) -> Outgoing {
        Outgoing {
            client,
            runtime,
            metrics,
            apps: Arc::default(),
        }
    }

    /// `name` is served (again), with `policy` and `keys`, its answers
    /// handed to `deliver`; then the requests it waits on are sent, but
    /// for those in flight already (their answers now reach `deliver`).
    pub fn serve(
        &self,
        name: &str,
        policy: HttpPolicy,
        keys: IdempotencyKeys,
        deliver: Deliver,
        waiting: Vec<HttpRequest>,
    ) {
        {
            let mut apps = lock(&self.apps);
            let app = apps.entry(name.to_string()).or_insert_with(|| AppRequests {
                http: AppHttp::new(name, policy.clone()),
                keys: keys.clone(),
                deliver: None,
                in_flight: HashMap::new(),
            });
            if *app.http.policy() != policy {
                app.http = AppHttp::new(name, policy);
            }
            app.keys = keys;
            app.deliver = Some(Arc::new(deliver));
            // A request in flight that is no longer the one waiting under
            // its id (a new version makes other requests) is given up.
            let stale: Vec<u64> = app
                .in_flight
                .iter()
                .filter(|(id, (request, _))| {
                    !waiting
                        .iter()
                        .any(|w| w.id == **id && w.describe() == *request)
                })
                .map(|(id, _)| *id)
                .collect();
            for id in stale {
                if let Some((_, task)) = app.in_flight.remove(&id) {
                    task.abort();
                }
            }
        }
        let to_send: Vec<HttpAction> = {
            let apps = lock(&self.apps);
            let in_flight = apps.get(name).map(|a| &a.in_flight);
            waiting
                .into_iter()
                .filter(|r| in_flight.is_none_or(|f| !f.contains_key(&r.id)))
                .map(HttpAction::Send)
                .collect()
        };
        if !to_send.is_empty() {
            tracing::info!(app = %name, requests = to_send.len(), "sending the requests the app waits on");
        }
        self.act(name, to_send);
    }

    /// `name` is not served here for now: answers still to come are
    /// dropped (sent again once it is served again).
    pub fn unserve(&self, name: &str) {
        if let Some(app) = lock(&self.apps).get_mut(name) {
            app.deliver = None;
        }
    }

    /// `name` is gone: its requests in flight are given up.
    pub fn forget(&self, name: &str) {
        if let Some(app) = lock(&self.apps).remove(name) {
            for (_, (_, task)) in app.in_flight {
                task.abort();
            }
        }
    }

    /// Requests of `name` in flight.
    pub fn in_flight(&self, name: &str) -> usize {
        lock(&self.apps).get(name).map_or(0, |a| a.in_flight.len())
    }

    /// Acts on what a durable input of `name` started or aborted.
    pub fn act(&self, name: &str, actions: Vec<HttpAction>) {
        if actions.is_empty() {
            return;
        }
        let mut apps = lock(&self.apps);
        let Some(app) = apps.get_mut(name) else {
            // Not served: what it waits on is sent when it is.
            return;
        };
        for action in actions {
            match action {
                HttpAction::Abort { id } => {
                    if let Some((_, task)) = app.in_flight.remove(&id) {
                        task.abort();
                    }
                }
                HttpAction::Send(request) => {
                    let id = request.id;
                    let describe = request.describe();
                    let key = app.keys.key(id);
                    let done = self.when_done(name, describe.clone());
                    let task = self
                        .client
                        .start(&self.runtime, &app.http, request, key, done);
                    app.in_flight.insert(id, (describe, task));
                }
            }
        }
    }

    /// What to do with the answer to one request of `name`.
    fn when_done(
        &self,
        name: &str,
        request: String,
    ) -> impl FnOnce(HttpResponse, Ended) + Send + 'static {
        let (apps, metrics, name) = (self.apps.clone(), self.metrics.clone(), name.to_string());
        move |response, ended| {
            metrics.http_request_ended(&name, ended.label());
            let deliver = {
                let mut apps = lock(&apps);
                let Some(app) = apps.get_mut(&name) else {
                    return;
                };
                // Only the request still in flight under this id: not one
                // given up and made again since.
                match app.in_flight.get(&response.id) {
                    Some((current, _)) if *current == request => {
                        app.in_flight.remove(&response.id);
                    }
                    _ => return,
                }
                app.deliver.clone()
            };
            let taken = deliver.is_some_and(|deliver| deliver(response));
            if !taken {
                tracing::debug!(app = %name, %request, "an answer for an app not served now: the request is sent again when it is");
            }
        }
    }
}
