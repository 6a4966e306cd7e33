//! The load: client threads, each sending events no one else sends
//! (`c{client}-{i}`) to random apps through random nodes, following 307s to
//! the lease holder by hand, each request bounded in time, and keeping a
//! history [`Entry`] per event.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::history::{classify, Entry, Outcome};
use crate::processes::{interrupted, nap};
use crate::rng::Rng;

/// Redirects followed at most for one event.
const HOPS: usize = 3;

/// Running counts, for the progress lines.
#[derive(Default)]
pub struct Tally {
    pub sent: AtomicU64,
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub unknown: AtomicU64,
}

impl Tally {
    fn count(&self, outcome: Outcome) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let which = match outcome {
            Outcome::Ok(_) => &self.ok,
            Outcome::Fail => &self.fail,
            Outcome::Unknown => &self.unknown,
        };
        which.fetch_add(1, Ordering::Relaxed);
    }

    pub fn line(&self) -> String {
        format!(
            "events {} (ok {}, fail {}, unknown {})",
            self.sent.load(Ordering::Relaxed),
            self.ok.load(Ordering::Relaxed),
            self.fail.load(Ordering::Relaxed),
            self.unknown.load(Ordering::Relaxed)
        )
    }
}

/// Sends one event and follows its redirects.
#[derive(Clone)]
pub struct Sender {
    agent: ureq::Agent,
    cluster: Arc<Cluster>,
    apps: Arc<Vec<String>>,
    started: Instant,
    pub tally: Arc<Tally>,
}

impl Sender {
    pub fn new(
        cluster: Arc<Cluster>,
        apps: Arc<Vec<String>>,
        timeout: Duration,
        started: Instant,
    ) -> Sender {
        let agent = ureq::Agent::config_builder()
            // A connection per request: after a kill -9 a pooled one would
            // fail in ways that say less, and a refused connect is then
            // certain to have sent nothing.
            .max_idle_connections(0)
            .http_status_as_error(false)
            // Followed by hand, to see each hop.
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Sender {
            agent,
            cluster,
            apps,
            started,
            tally: Arc::default(),
        }
    }

    fn now_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// Which node a URL is (by its address now), or the address itself (a
    /// node's old port, after its restart).
    fn node_of(&self, url: &str) -> String {
        (0..self.cluster.len())
            .find(|&i| self.cluster.url(i).is_some_and(|u| url.starts_with(&u)))
            .map(|i| self.cluster.id(i))
            .unwrap_or_else(|| url.split("/apps/").next().unwrap_or(url).to_string())
    }

    /// Sends `event` to app `app` through a random node; `None` if no node
    /// has a process to send it to (nothing was sent).
    pub fn send(&self, app: usize, event: String, rng: &mut Rng) -> Option<Entry> {
        let bases: Vec<String> = (0..self.cluster.len())
            .filter_map(|i| self.cluster.url(i))
            .collect();
        if bases.is_empty() {
            return None;
        }
        let name = &self.apps[app];
        let mut url = format!("{}/apps/{name}/events", bases[rng.below(bases.len())]);
        let sent_us = self.now_us();
        let mut hops = 0;
        let (outcome, why, echoed) = loop {
            let answered = self.agent.post(&url).send(event.as_bytes());
            let mut response = match answered {
                Ok(response) => response,
                Err(e) => break transport_error(&e),
            };
            let status = response.status().as_u16();
            if status == 307 && hops < HOPS {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .map(str::to_string);
                if let Some(location) = location {
                    hops += 1;
                    url = location;
                    continue;
                }
            }
            let body = response.body_mut().read_to_string();
            break match (status, body) {
                (200, Ok(body)) => match counted(&body, &event) {
                    Some((count, echoed)) => (Outcome::Ok(count), String::new(), echoed),
                    None => (
                        Outcome::Unknown,
                        format!(
                            "200 unreadable: {}",
                            body.chars().take(60).collect::<String>()
                        ),
                        false,
                    ),
                },
                (200, Err(e)) => (Outcome::Unknown, format!("200 body lost: {e}"), false),
                (status, body) => {
                    let (outcome, why) = classify(name, status, &body.unwrap_or_default());
                    (outcome, why, false)
                }
            };
        };
        self.tally.count(outcome);
        Some(Entry {
            app,
            node: self.node_of(&url),
            event,
            outcome,
            why,
            sent_us,
            done_us: self.now_us(),
            echoed,
        })
    }
}

/// A request that got no HTTP answer: certainly not applied only if the
/// connection was refused (nothing was sent: no pooled connections).
fn transport_error(e: &ureq::Error) -> (Outcome, String, bool) {
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            (Outcome::Fail, "connection refused".into(), false)
        }
        ureq::Error::Timeout(_) => (Outcome::Unknown, "timeout".into(), false),
        ureq::Error::Io(io) => (Outcome::Unknown, format!("io: {:?}", io.kind()), false),
        other => (Outcome::Unknown, format!("client: {other}"), false),
    }
}

/// The count in a counter's answer `[{"count": n, "event": e}]`, and
/// whether `e` is the event sent.
fn counted(body: &str, event: &str) -> Option<(u64, bool)> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let first = value.get(0)?;
    let count = first.get("count")?.as_u64()?;
    Some((count, first.get("event")?.as_str() == Some(event)))
}

/// The client threads, until [`Load::stop`].
pub struct Load {
    threads: Vec<JoinHandle<Vec<Entry>>>,
    stop: Arc<AtomicBool>,
}

impl Load {
    pub fn start(sender: &Sender, clients: usize, rng: &mut Rng) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|client| {
                let (sender, stop, mut rng) = (sender.clone(), stop.clone(), rng.fork());
                std::thread::Builder::new()
                    .name(format!("client-{client}"))
                    .spawn(move || client_loop(client, &sender, &stop, &mut rng))
                    .expect("spawning a client thread")
            })
            .collect();
        Load { threads, stop }
    }

    /// Stops the clients (each finishes the request it is in, bounded by
    /// the request timeout and its redirects) and returns their histories.
    pub fn stop(self) -> Result<Vec<Entry>, String> {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for (client, thread) in self.threads.into_iter().enumerate() {
            match thread.join() {
                Ok(entries) => all.extend(entries),
                Err(_) => return Err(format!("client {client} panicked")),
            }
        }
        Ok(all)
    }
}

fn client_loop(client: usize, sender: &Sender, stop: &AtomicBool, rng: &mut Rng) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let app = rng.below(sender.apps.len());
        let event = format!("c{client}-{i}");
        let Some(entry) = sender.send(app, event, rng) else {
            // No node has a process: nothing was sent, the number is free.
            nap(Duration::from_millis(100), stop);
            continue;
        };
        i += 1;
        let ok = matches!(entry.outcome, Outcome::Ok(_));
        entries.push(entry);
        if !ok {
            // As a client told to retry would, but sooner, to see more.
            nap(rng.millis(20..200), stop);
        }
    }
    entries
}

/// After healing: one more event to app `app` until it is answered 200
/// (each try a new event, `final-{app}-{k}`), for up to `within`. The tries,
/// and whether one was answered.
pub fn final_event(
    sender: &Sender,
    app: usize,
    within: Duration,
    rng: &mut Rng,
) -> (Vec<Entry>, bool) {
    let deadline = Instant::now() + within;
    let never = AtomicBool::new(false);
    let mut tries = Vec::new();
    for k in 0.. {
        if Instant::now() > deadline || interrupted() {
            break;
        }
        let event = format!("final-{}-{k}", sender.apps[app]);
        if let Some(entry) = sender.send(app, event, rng) {
            let ok = matches!(entry.outcome, Outcome::Ok(_));
            tries.push(entry);
            if ok {
                return (tries, true);
            }
        }
        nap(Duration::from_millis(250), &never);
    }
    (tries, false)
}
