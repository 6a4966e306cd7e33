//! The apps being served ([`Hosted`]): durable apps in one [`Pool`], kept
//! in one store (a state directory or a database) whose commit thread they
//! share, each with an
//! owner thread that takes its events in the order they came, so that an
//! app handles one event at a time while different apps run in parallel.
//! The owner does not wait for an event to be durable before the next: the
//! commit thread releases each answer when its event is.
//!
//! Every app runs on the wall clock: each event is handled at the instant
//! its owner takes it, and the one [`Scheduler`] tells the owner when the
//! app's earliest timer is due, so that the owner wakes it then, behind the
//! events queued before (see `scheduler.rs`).
//!
//! Everything here blocks (loading an app compiles nothing, but replays its
//! log); the routes call it from tokio's blocking threads, except
//! [`Hosted::send`], which only queues. What the admin API shows of an app
//! is `info.rs`; leases and takeovers on a shared database, `nodes.rs`;
//! deploys, `deploying.rs` (and `beside.rs`); idle apps parked and woken,
//! `parking.rs`.
//!
//! What an input starts of outgoing HTTP is sent once the input is durable
//! (`outgoing.rs`); the answer comes back to the owner as an input of its
//! own, behind the app's events. The owner thread itself is `owner.rs`.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use elmbox::durable::commit::Committer;
use elmbox::durable::store::{StateStore, Write};
use elmbox::durable::{RetainLog, StateLocation};
use elmbox::{app_name, Console, DurableApp, DurableOptions, Error, Pool, PoolConfig};
use tokio::sync::oneshot;

use crate::http_mode::Pending;
use crate::metrics::Metrics;
use crate::options::AppOptions;
use crate::outgoing::Outgoing;
use crate::scheduler::{Fired, Scheduler};
use crate::unserved::{Unserved, UnservedApp};

mod beside;
mod deploying;
mod info;
mod nodes;
mod owner;
mod parking;

pub use info::AppInfo;
pub use nodes::{Located, Node};

use owner::{Owner, Owning, Work};

/// Why a call on the hosted apps failed, by what the client did.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("no app named `{}`", app_name::printable(.0))]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// Try again shortly: the app is being deployed or removed.
    #[error("{0}")]
    Busy(String),
    /// The app is parked: wake it (`Hosted::wake`) and try again.
    #[error("`{0}` is parked")]
    Parked(String),
    /// Try again shortly: the app faulted and is being restored.
    #[error("`{0}` is being restored after a fault; try again")]
    Restoring(String),
    #[error("{0}")]
    Internal(String),
}

/// The answer to one event, once the event is durable.
pub type Answer = oneshot::Receiver<Result<String, Error>>;

pub struct Hosted {
    pool: Arc<Pool>,
    store: Arc<dyn StateStore>,
    /// Where the store is, for messages (a database without its password).
    location: String,
    /// Without leases, the one commit thread of every app.
    committer: Arc<Committer>,
    /// With leases, a commit thread per app: an app fenced off this node
    /// fails its own commits and stops its own thread, not its neighbours'.
    committers: Mutex<HashMap<String, Arc<Committer>>>,
    node: Option<Node>,
    apps: Mutex<HashMap<String, Slot>>,
    /// Apps in the store that are not served, and why.
    unserved: Unserved,
    /// Deploys and removals, one at a time.
    admin: Mutex<()>,
    /// When each app's earliest timer is due, parked apps' too.
    scheduler: Arc<Scheduler>,
    /// What the scheduler fires, until [`Hosted::fire_timers`] takes it.
    fired: Mutex<Option<mpsc::Receiver<Fired>>>,
    /// The apps' outgoing HTTP requests.
    outgoing: Arc<Outgoing>,
    /// Deploys whose new version is being replayed beside the old one.
    deploys: Mutex<HashMap<String, elmbox::durable::DeployProgress>>,
    metrics: Arc<Metrics>,
    /// `--retain-log`: for apps whose deploy did not say.
    retain_log: RetainLog,
}

enum Slot {
    Serving(Owner),
    /// Idle for a while: out of memory, in its store (snapshotted), woken
    /// by its next request.
    Parked(AppOptions),
    /// Being deployed or removed: events are turned away until it is done.
    Busy,
}

/// What [`Hosted::stop`] found in an app's place.
enum Previous {
    Serving(Box<DurableApp>, AppOptions),
    Parked(AppOptions),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn internal(e: impl std::fmt::Display) -> HostError {
    HostError::Internal(e.to_string())
}

impl Hosted {
    /// Opens the state at `location` and loads every app it holds; an app
    /// that no longer loads (or that another process runs) is reported and
    /// left in the store, unserved.
    /// As a node (`node`), only the apps it can lease: those whose lease
    /// is free, expired, or was this node's.
    pub fn open(
        location: &StateLocation,
        pool: PoolConfig,
        node: Option<Node>,
        outgoing: Arc<Outgoing>,
        metrics: Arc<Metrics>,
        retain_log: RetainLog,
    ) -> Result<Hosted, Error> {
        let store = location.open()?;
        if node.is_some() && store.leases().is_none() {
            return Err(Error::Config(format!(
                "--node-id needs a state that nodes share (a PostgreSQL database), not {location}"
            )));
        }
        let committer = Arc::new(Committer::start(store.clone(), None));
        let (fire, fired) = mpsc::channel();
        let scheduler = Scheduler::start(fire)
            .map_err(|e| Error::Config(format!("cannot start the timer thread: {e}")))?;
        let hosted = Hosted {
            pool: Arc::new(Pool::new(pool)?),
            store: store.clone(),
            location: location.to_string(),
            committer,
            committers: Mutex::default(),
            node,
            apps: Mutex::default(),
            unserved: Unserved::default(),
            admin: Mutex::default(),
            scheduler: Arc::new(scheduler),
            fired: Mutex::new(Some(fired)),
            outgoing,
            deploys: Mutex::default(),
            metrics,
            retain_log,
        };
        for summary in store.apps()? {
            let name = summary.app.name;
            // Written by an older elmbox: reported, listed, never started.
            if let Err(e) = app_name::check(&name) {
                hosted.unserved.report(&name, e.to_string());
                continue;
            }
            match hosted.lease(&name) {
                Ok(None) => {}
                Ok(Some(holder)) => {
                    tracing::info!(app = %name, node = %holder.node, "run by another node");
                    continue;
                }
                Err(e) => {
                    tracing::error!(app = %name, error = %e, "not served: its lease");
                    continue;
                }
            }
            let served = hosted
                .kept_options(&name)
                .and_then(|options| hosted.reopen(&name, options));
            match served {
                Ok(()) => tracing::info!(app = %name, "serving"),
                Err(e) => hosted.unserved.report(&name, e.to_string()),
            }
        }
        Ok(hosted)
    }

    /// The commit thread of app `name`'s writes.
    fn committer(&self, name: &str) -> Arc<Committer> {
        if self.node.is_none() {
            return self.committer.clone();
        }
        let mut committers = lock(&self.committers);
        match committers.get(name) {
            // One whose commit failed commits nothing more: a new start.
            Some(committer) if committer.check().is_ok() => committer.clone(),
            // A failed commit stops it: the node takes the app over again.
            _ => {
                let committer = Arc::new(Committer::start_stopping_on_failure(self.store.clone()));
                committers.insert(name.to_string(), committer.clone());
                committer
            }
        }
    }

    /// Whether `name` has a place here (served, parked, or busy).
    pub fn has(&self, name: &str) -> bool {
        lock(&self.apps).contains_key(name)
    }

    /// The options the store keeps for `name`.
    fn kept_options(&self, name: &str) -> Result<AppOptions, Error> {
        match self.store.host_options(name)? {
            Some(kept) => serde_json::from_str(&kept).map_err(|e| Error::BadState {
                location: self.location.clone(),
                reason: format!("the options kept for `{name}` do not read back: {e}"),
            }),
            // Recorded by `elmbox run --state`: served with the defaults.
            None => Ok(AppOptions::default()),
        }
    }

    /// How an app deployed with `options` is kept: its own retention, or
    /// the server's.
    fn durable_options(&self, options: &AppOptions) -> DurableOptions {
        DurableOptions {
            retain_log: options.retain_log.unwrap_or(self.retain_log),
            ..DurableOptions::default()
        }
    }

    /// Opens the stored app `name` with its recorded code, and serves it.
    fn reopen(&self, name: &str, options: AppOptions) -> Result<(), Error> {
        let runtime = self.pool.durable_runtime(options.limits())?;
        let (app, opened) = DurableApp::open_recorded(
            &runtime,
            self.store.clone(),
            self.committer(name),
            name,
            Console::default(),
            self.durable_options(&options),
        )?
        .ok_or_else(|| Error::NoSuchApp { name: name.into() })?;
        for note in &opened.passed_over {
            tracing::warn!(app = %name, "{note}; passed over");
        }
        self.serve(app, options)
    }

    /// Hands `app` to the pool and starts its owner; if that fails, the
    /// app is not left in the pool.
    fn serve(&self, mut app: DurableApp, options: AppOptions) -> Result<(), Error> {
        let name = app.name().to_string();
        let restoring = app.restoring();
        // Due in the past after a restart, a takeover or a wake: it fires
        // at once, and the app catches up.
        let due = app.next_due();
        // Sent once it is served: their first sending, if any, was not
        // answered durably.
        let (waiting, keys) = (app.waiting_http()?, app.idempotency_keys());
        self.pool.insert_durable(app)?;
        let (events, queue) = mpsc::channel();
        let pending = options.http.then(|| Arc::new(Pending::new(&name)));
        let owner = Owning {
            pool: self.pool.clone(),
            name: name.clone(),
            routes: pending.clone(),
            scheduler: self.scheduler.clone(),
            outgoing: self.outgoing.clone(),
            metrics: self.metrics.clone(),
        };
        // Not named after the app: a thread's name is no place for text
        // that comes from outside.
        let thread = std::thread::Builder::new()
            .name("elmbox-app".into())
            .spawn(move || owner.run(queue));
        let thread = match thread {
            Ok(thread) => thread,
            Err(e) => {
                let _ = self.pool.take_durable(&name);
                return Err(Error::Config(format!("cannot start the app's thread: {e}")));
            }
        };
        self.unserved.forget(&name);
        let answers = events.clone();
        let deliver = Box::new(move |response| answers.send(Work::HttpResponse(response)).is_ok());
        self.outgoing
            .serve(&name, options.http_policy.clone(), keys, deliver, waiting);
        lock(&self.apps).insert(
            name.clone(),
            Slot::Serving(Owner {
                events,
                thread,
                options,
                pending,
                last_used: Instant::now(),
                restoring,
            }),
        );
        // Once it is served: a wake that fires now finds its owner.
        self.scheduler.set(&name, due);
        Ok(())
    }

    /// Hands each app whose timer came due to its owner, until the
    /// scheduler stops (at [`Hosted::close`]). Runs on a thread of its own;
    /// a parked app is reopened on another, so that a wake that reads a
    /// store (and waits for the admin lock a deploy holds) never holds up
    /// the timers of the apps in memory.
    pub fn fire_timers(&self) {
        let Some(fired) = lock(&self.fired).take() else {
            return;
        };
        std::thread::scope(|scope| {
            let (reopen, reopening) = mpsc::channel::<String>();
            let reopener = std::thread::Builder::new()
                .name("elmbox-reopen".into())
                .spawn_scoped(scope, move || {
                    for name in reopening {
                        // Once served, its due timer is set again, and fires.
                        if let Err(e) = self.wake(&name) {
                            tracing::error!(app = %name, error = %e, "waking for a timer");
                        }
                    }
                });
            if let Err(e) = reopener {
                tracing::error!(error = %e, "cannot start the thread that wakes parked apps");
            }
            for due in fired {
                self.fire(due, &reopen);
            }
        });
    }

    fn fire(&self, fired: Fired, reopen: &mpsc::Sender<String>) {
        let mut apps = lock(&self.apps);
        match apps.get_mut(&fired.app) {
            Some(Slot::Serving(owner)) => {
                // A timer is use: an app woken more often than the idle
                // timeout is never idle.
                owner.last_used = Instant::now();
                let _ = owner.events.send(Work::Wake(fired));
            }
            Some(Slot::Parked(_)) => {
                let _ = reopen.send(fired.app);
            }
            // Being deployed, woken or taken over: what comes of it sets its
            // timer anew when it is served.
            Some(Slot::Busy) | None => {}
        }
    }

    /// Commits the store has made for the apps served here (a node's
    /// per-app commit threads counted while they live).
    pub fn commits(&self) -> u64 {
        let per_app: u64 = lock(&self.committers).values().map(|c| c.commits()).sum();
        self.committer.commits() + per_app
    }

    /// How many apps have a timer armed, parked ones included.
    pub fn apps_with_timers(&self) -> usize {
        self.scheduler.len()
    }

    /// Whether `name` is served in HTTP mode, with its waiting requests.
    pub fn http(&self, name: &str) -> Result<Option<Arc<Pending>>, HostError> {
        match lock(&self.apps).get(name) {
            None => Err(HostError::NotFound(name.into())),
            Some(Slot::Busy) => Err(HostError::Busy(format!(
                "`{name}` is being deployed, parked or woken; try again"
            ))),
            Some(Slot::Parked(_)) => Err(HostError::Parked(name.into())),
            Some(Slot::Serving(owner)) => Ok(owner.pending.clone()),
        }
    }

    /// Queues one event for the app `name`; the answer comes once the
    /// event is durable.
    pub fn send(&self, name: &str, body: Vec<u8>) -> Result<Answer, HostError> {
        let mut apps = lock(&self.apps);
        let owner = match apps.get_mut(name) {
            None => return Err(HostError::NotFound(name.into())),
            Some(Slot::Busy) => {
                return Err(HostError::Busy(format!(
                    "`{name}` is being deployed, parked or woken; try again"
                )))
            }
            Some(Slot::Parked(_)) => return Err(HostError::Parked(name.into())),
            Some(Slot::Serving(owner)) => owner,
        };
        // Queued behind the replay, the event would wait for all of it.
        if owner.restoring.now() {
            return Err(HostError::Restoring(name.into()));
        }
        owner.last_used = Instant::now();
        let limit = owner.options.limits().max_event_bytes;
        if body.len() > limit {
            return Err(HostError::TooLarge(format!(
                "event is {} bytes, over the limit of {limit} bytes",
                body.len()
            )));
        }
        let (reply, answer) = oneshot::channel();
        owner
            .events
            .send(Work::Event { body, reply })
            .map_err(|_| HostError::Busy(format!("`{name}` has stopped; try again")))?;
        Ok(answer)
    }

    /// Stops serving `name` (its queued events are answered first) and
    /// takes it out of the pool; `None` if it was not served. The slot
    /// stays busy until [`Hosted::restart`] or [`Hosted::serve`].
    fn stop(&self, name: &str) -> Result<Option<Previous>, HostError> {
        let slot = lock(&self.apps).insert(name.to_string(), Slot::Busy);
        let owner = match slot {
            Some(Slot::Serving(owner)) => owner,
            Some(Slot::Parked(options)) => return Ok(Some(Previous::Parked(options))),
            // Deploys, removals and parking take the admin lock; a takeover
            // marks the slot busy before it does.
            Some(Slot::Busy) => {
                return Err(HostError::Busy(format!(
                    "`{name}` is being taken over by this node; try again"
                )))
            }
            None => return Ok(None),
        };
        let options = owner.end(name, &self.outgoing);
        let app = self.pool.take_durable(name).map_err(internal)?;
        // What it handed over is durable before anything reads its log.
        self.committer(name)
            .ticket()
            .and_then(|ticket| ticket.wait())
            .map_err(internal)?;
        Ok(Some(Previous::Serving(Box::new(app), options)))
    }

    /// Puts back what was in the app's place after a refused deploy, and
    /// returns the refusal.
    fn restart(&self, name: &str, previous: Option<Previous>, refusal: HostError) -> HostError {
        match previous {
            Some(Previous::Serving(app, options)) => {
                if let Err(e) = self.serve(*app, options.clone()) {
                    tracing::error!(app = %name, error = %e, "the old version could not be served again: parked");
                    lock(&self.apps).insert(name.to_string(), Slot::Parked(options));
                }
            }
            Some(Previous::Parked(options)) => {
                lock(&self.apps).insert(name.to_string(), Slot::Parked(options));
            }
            None => {
                lock(&self.apps).remove(name);
            }
        }
        refusal
    }

    /// Whether `name` is being restored after a fault.
    fn is_restoring(&self, name: &str) -> bool {
        matches!(lock(&self.apps).get(name), Some(Slot::Serving(owner)) if owner.restoring.now())
    }

    /// Removes the app `name`, and its state; an app the store holds but
    /// this server does not serve (its name breaks the rule, say) too.
    pub fn remove(&self, name: &str) -> Result<(), HostError> {
        let _admin = lock(&self.admin);
        if self.unserved.problem(name).is_some() && !self.has(name) {
            return self.remove_unserved(name);
        }
        let _settle = SettleOnPanic(self, name);
        let stopped = self.stop(name);
        if let Err(HostError::Busy(_)) = stopped {
            // A takeover's: left to it.
            return stopped.map(drop);
        }
        lock(&self.apps).remove(name);
        self.scheduler.set(name, None);
        self.outgoing.forget(name);
        let committer = self.committer(name);
        let removed = match stopped? {
            Some(Previous::Serving(app, _)) => app.remove().map_err(internal),
            Some(Previous::Parked(_)) => committer
                .write(Write::Remove { app: name.into() })
                .and_then(|()| committer.ticket()?.wait())
                .map_err(internal),
            None => Err(HostError::NotFound(name.into())),
        };
        if removed.is_ok() && self.node.is_some() {
            lock(&self.committers).remove(name);
            if let Some(leases) = self.store.leases() {
                leases.release(name).map_err(internal)?;
            }
        }
        removed
    }

    /// Removes an app that is in the store but not served: it was never
    /// loaded, so its store holds all of it.
    fn remove_unserved(&self, name: &str) -> Result<(), HostError> {
        match self.lease(name) {
            Ok(None) => {}
            Ok(Some(holder)) => {
                return Err(HostError::Conflict(format!(
                    "`{}` is run by node `{}` at {}: remove it there",
                    app_name::printable(name),
                    holder.node,
                    holder.address
                )))
            }
            Err(e) => return Err(internal(e)),
        }
        let committer = self.committer(name);
        committer
            .write(Write::Remove { app: name.into() })
            .and_then(|()| committer.ticket()?.wait())
            .map_err(internal)?;
        self.unserved.forget(name);
        tracing::info!(app = %app_name::printable(name), "removed, unserved");
        if let Some(leases) = self.store.leases() {
            lock(&self.committers).remove(name);
            leases.release(name).map_err(internal)?;
        }
        Ok(())
    }

    /// The apps in the store that are not served, with their problems.
    pub fn unserved(&self) -> Vec<UnservedApp> {
        self.unserved.list()
    }

    /// Puts the place of `name` right after a panic in the middle of a
    /// deploy, removal, parking or takeover: never left busy. An app the
    /// store holds is parked (its next request reopens it from the store,
    /// as after a restart); one it does not hold is forgotten. Nothing
    /// here may panic in its turn.
    fn settle(&self, name: &str) {
        let _ = self.pool.take_durable(name);
        let in_store = self.store.app(name).ok().flatten().is_some();
        let options = in_store.then(|| self.kept_options(name).unwrap_or_default());
        let mut apps = lock(&self.apps);
        match options {
            Some(options) => {
                apps.insert(name.to_string(), Slot::Parked(options));
            }
            None => {
                apps.remove(name);
            }
        }
        tracing::error!(app = %name, "a panic in the middle of a change: settled as {}",
            if in_store { "parked" } else { "gone" });
    }

    /// The names of the apps served, in order.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.apps).keys().cloned().collect();
        names.sort();
        names
    }

    /// Stops every owner (their queued events answered first), snapshots
    /// every app, and waits until all of it is durable.
    pub fn close(&self) -> Result<(), Error> {
        // No more wakes: what is due is due after the restart too.
        self.scheduler.stop();
        let _admin = lock(&self.admin);
        let slots: Vec<(String, Slot)> = lock(&self.apps).drain().collect();
        for (name, slot) in slots {
            if let Slot::Serving(owner) = slot {
                owner.end(&name, &self.outgoing);
                match self.pool.take_durable(&name).and_then(DurableApp::close) {
                    Ok(()) => {}
                    Err(e) => tracing::error!(app = %name, error = %e, "closing"),
                }
            }
        }
        let committers: Vec<(String, Arc<Committer>)> = lock(&self.committers).drain().collect();
        for (name, committer) in committers {
            match committer.finish() {
                // All it wrote is durable: another node may take it at once.
                Ok(()) => {
                    if let Some(Err(e)) = self.store.leases().map(|l| l.release(&name)) {
                        tracing::error!(app = %name, error = %e, "releasing");
                    }
                }
                Err(e) => tracing::error!(app = %name, error = %e, "closing"),
            }
        }
        self.committer.finish()
    }
}

/// Settles an app's place ([`Hosted::settle`]) if the change it guards
/// panics before it is done.
struct SettleOnPanic<'a>(&'a Hosted, &'a str);

impl Drop for SettleOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.settle(self.1);
        }
    }
}

/// An error that says the app itself is at fault (it does not load), not
/// the server.
fn is_load_error(e: &Error) -> bool {
    matches!(
        e,
        Error::App { .. } | Error::BadModule { .. } | Error::Config(_) | Error::BadAppName { .. }
    ) || e.is_fatal()
}
