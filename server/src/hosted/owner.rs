//! An app's owner thread ([`Owning::run`]): it takes the app's inputs in
//! the order they came ([`Work`]: client events, timer wakes, answers to
//! its HTTP requests), each at the wall clock's instant when it is taken,
//! hands their answers to the commit thread, and once an input is durable
//! routes what it sent to HTTP-mode requests and sends the HTTP requests it
//! started. [`Owner`] is the handle `mod.rs` keeps of it.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use elmbox::durable::Deploying;
use elmbox::http::{HttpAction, HttpResponse};
use elmbox::{DurableApp, Error, Pool, Restoring, Submitted};
use tokio::sync::oneshot;

use crate::http_mode::Pending;
use crate::metrics::Metrics;
use crate::options::AppOptions;
use crate::outgoing::Outgoing;
use crate::scheduler::{Fired, Scheduler};

/// An app's owner thread, and how the app is served.
pub(super) struct Owner {
    pub(super) events: mpsc::Sender<Work>,
    pub(super) thread: JoinHandle<()>,
    pub(super) options: AppOptions,
    /// In HTTP mode, the requests waiting for a response.
    pub(super) pending: Option<Arc<Pending>>,
    pub(super) last_used: Instant,
    pub(super) restoring: Restoring,
}

/// What an owner thread takes, in order.
pub(super) enum Work {
    /// An event from a client, answered once durable.
    Event {
        body: Vec<u8>,
        reply: oneshot::Sender<Result<String, Error>>,
    },
    /// The app's earliest timer came due.
    Wake(Fired),
    /// The answer to one of the app's HTTP requests.
    HttpResponse(HttpResponse),
    /// A new version, made beside this one: switched to here, between two
    /// inputs.
    Deploy {
        deploying: Box<Deploying>,
        reply: mpsc::Sender<Result<(), Error>>,
    },
}

impl Owner {
    /// Ends the owner thread once it has handled what was queued. Every
    /// sender closes its queue: the app's requests in flight hold one, so
    /// they are told first that it is not served here (their answers are
    /// dropped; the requests are sent again when it is).
    pub(super) fn end(self, name: &str, outgoing: &Outgoing) -> AppOptions {
        outgoing.unserve(name);
        drop(self.events);
        let _ = self.thread.join();
        self.options
    }
}

/// How long after a wake that failed it is tried again.
const RETRY_FAILED_WAKE: Duration = Duration::from_secs(1);

/// What the owner thread of one app works with.
pub(super) struct Owning {
    pub(super) pool: Arc<Pool>,
    pub(super) name: String,
    /// In HTTP mode, the requests waiting for a response.
    pub(super) routes: Option<Arc<Pending>>,
    pub(super) scheduler: Arc<Scheduler>,
    pub(super) outgoing: Arc<Outgoing>,
    pub(super) metrics: Arc<Metrics>,
}

impl Owning {
    /// The owner thread: the app's events and wakes, in order, until the
    /// queue is closed and empty. Each is handled at the wall clock's
    /// instant when it is taken. In HTTP mode each answer's responses go to
    /// their requests once the input is durable, whether or not its own
    /// client is still there.
    pub(super) fn run(self, queue: mpsc::Receiver<Work>) {
        while let Ok(work) = queue.recv() {
            let now = SystemTime::now();
            match work {
                Work::Event { body, reply } => {
                    let submitted = self.submit(now, |app| app.submit_event_at(now, &body));
                    match submitted {
                        Ok(mut submitted) => {
                            let routes = self.routes.clone();
                            let started = self.when_durable_send(submitted.take_http_actions());
                            // If the commit thread has stopped, `reply` is
                            // dropped with the closure and the client hears
                            // the app is unavailable.
                            let _ = submitted.when_committed(move |durable, answer| {
                                started(&durable);
                                let answer = durable.and(answer);
                                if let (Some(routes), Ok(outputs)) = (&routes, &answer) {
                                    routes.route(outputs);
                                }
                                let _ = reply.send(answer);
                            });
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Work::Wake(fired) => self.wake(fired, now),
                Work::Deploy { deploying, reply } => {
                    let switched = self
                        .pool
                        .with_durable(&self.name, |app| app.finish_deploy(*deploying));
                    let _ = reply.send(switched);
                }
                Work::HttpResponse(response) => {
                    let submitted =
                        self.submit(now, |app| app.submit_http_response_at(now, &response));
                    self.settle(submitted, "an HTTP response");
                }
            }
        }
    }

    /// Wakes the app for its timers at `now`, unless an event caught up
    /// with them since they fired; nobody waits for the wake to be durable.
    fn wake(&self, fired: Fired, now: SystemTime) {
        let due = self.pool.next_due(&self.name).ok().flatten();
        let Some(due) = due.filter(|&due| due <= now) else {
            self.scheduler.set(&self.name, due);
            return;
        };
        let late = now.duration_since(fired.due.min(due)).unwrap_or_default();
        self.metrics.woken_late(&self.name, late.as_secs_f64());
        let submitted = self.submit(now, |app| app.submit_advance_to(now));
        self.settle(submitted, "a timer's wake");
    }

    /// Settles an input nobody waits on (a wake, an HTTP response): its
    /// outputs may answer HTTP-mode requests, and what it started of
    /// outgoing HTTP leaves once it is durable. With neither, it shares a
    /// later commit with whatever comes.
    fn settle(&self, submitted: Result<Submitted, Error>, what: &'static str) {
        let mut submitted = match submitted {
            Ok(submitted) => submitted,
            Err(e) => return tracing::warn!(app = %self.name, error = %e, "{what}"),
        };
        let actions = submitted.take_http_actions();
        let routes = self.routes.clone().filter(|routes| !routes.is_empty());
        if routes.is_none() && actions.is_empty() {
            match submitted.ungated() {
                Ok(outputs) if outputs != "[]" => tracing::debug!(
                    app = %self.name, %outputs, "sent with no request to answer ({what})"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(app = %self.name, error = %e, "{what}"),
            }
            return;
        }
        // Committed at once: somebody waits.
        let started = self.when_durable_send(actions);
        let name = self.name.clone();
        let _ = submitted.when_committed(move |durable, answer| {
            started(&durable);
            match durable.and(answer) {
                Ok(outputs) => {
                    if let Some(routes) = routes {
                        routes.route(&outputs);
                    }
                }
                Err(e) => tracing::warn!(app = %name, error = %e, "{what}"),
            }
        });
    }

    /// What sends `actions` once their input is durable (and nothing if
    /// its commit failed: then the input never was).
    fn when_durable_send(
        &self,
        actions: Vec<HttpAction>,
    ) -> impl FnOnce(&Result<(), Error>) + Send + 'static {
        let (outgoing, name) = (self.outgoing.clone(), self.name.clone());
        move |durable| {
            if durable.is_ok() {
                outgoing.act(&name, actions);
            }
        }
    }

    /// Hands one input to the app at `now`, then tells the scheduler when
    /// its next timer is due and the metrics what fired.
    fn submit(
        &self,
        now: SystemTime,
        input: impl FnOnce(&mut DurableApp) -> Result<Submitted, Error>,
    ) -> Result<Submitted, Error> {
        let mut next_due = None;
        let submitted = self.pool.with_durable(&self.name, |app| {
            let submitted = input(app);
            next_due = app.next_due();
            self.metrics.timers_fired(&self.name, app.timers_fired());
            submitted
        });
        // Handled at `now`, the app has nothing due by then, unless the
        // input failed (a timer that faults, restored to before it): it
        // is tried again a while later, not in a loop.
        let next_due = next_due.map(|due| match due <= now {
            true => now + RETRY_FAILED_WAKE,
            false => due,
        });
        self.scheduler.set(&self.name, next_due);
        submitted
    }
}
