//! Durable apps ([`DurableApp`]): an app whose every input is kept in an
//! event log, with snapshots of its sandbox now and then, so that its state
//! outlives the process. An Elm app's model *is* its data: `update` is pure
//! and time is an input (each one is recorded with its instant), so the
//! same inputs from the same state give the same answers, and the state can
//! always be rebuilt.
//!
//! - Restore (`opening.rs`): the newest snapshot taken from this guest
//!   build (and after the last deploy), then the log after it replayed,
//!   each outcome checked against the recorded one; the code and settings
//!   an app runs, as the store keeps them, are `code.rs`.
//! - Output gate: an answer is released only once its input is durable; the
//!   [`Committer`] gathers many inputs into one commit.
//! - Faults: the faulty input is recorded as such and skipped on every
//!   replay; the app is restored to the input before it.
//! - Deploys: a new version replays the whole log (or starts fresh); if it
//!   fails on a logged input, it is refused and the old one runs on.
//! - Time: every input carries the instant of the app's clock it was
//!   handled at, and a replay sets it again; the wall-clock inputs and the
//!   timer due time kept in the store are `timers.rs`.
//! - Outgoing HTTP: a response is an input of the log, replayed instead of
//!   sent again; requests leave an input once it is durable, and those
//!   still waiting after a restore are sent again (`http.rs`).
//! - Stores: a state directory (SQLite, `sqlite.rs`) or a PostgreSQL
//!   database (`postgres.rs`), either opened from what `--state` takes
//!   ([`StateLocation`]).

mod code;
pub mod commit;
mod deploying;
pub mod healing;
mod http;
mod location;
pub mod log;
pub mod log_pages;
mod migrating;
mod opening;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod retention;
pub mod sqlite;
pub mod store;
mod timers;

pub use deploying::{DeployBase, DeployProgress, Deploying};
pub use healing::{Health, StoreHealth};
pub use http::IdempotencyKeys;
pub use location::StateLocation;
pub use retention::RetainLog;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use elmbox_abi::AppSettings;

use crate::app::App;
use crate::console::Console;
use crate::error::{Error, Result};
use crate::http::HttpAction;
use crate::runtime::Runtime;
use crate::stats::{thread_cpu_time, MemoryStats};

use commit::Committer;
use log::{answer_checksum, Input, Outcome, Record};
use store::{StateStore, Write};

/// What to do when the app's code or settings differ from the recorded ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnNewCode {
    /// Refuse to open it ([`Error::CodeChanged`]).
    #[default]
    Refuse,
    /// Deploy it by replaying the whole log through it (the state is what
    /// the new version makes of every input so far).
    Replay,
    /// Deploy it from its `init`, leaving the old state behind.
    Fresh,
    /// Deploy it from the old version's model: the old version exports it
    /// (`elmboxExport`/`elmboxExported`) and the new one's `init` gets it
    /// in its flags (`migrating`).
    Migrate,
}

impl OnNewCode {
    /// Whether the new version starts a history of its own (from `init`),
    /// rather than continuing the app's by replay.
    pub fn starts_anew(self) -> bool {
        matches!(self, OnNewCode::Fresh | OnNewCode::Migrate)
    }
}

/// How a durable app is opened and snapshotted.
#[derive(Debug, Clone)]
pub struct DurableOptions {
    pub on_new_code: OnNewCode,
    /// A snapshot once the app has spent this long handling inputs since
    /// the last one (checked against its thread's CPU time, so that a busy
    /// machine does not bring them sooner): what bounds a restart's replay,
    /// whatever the app's speed...
    pub snapshot_after_work: Duration,
    /// ...or after this many inputs, or this long after the last one,
    /// whichever comes first.
    pub snapshot_every_inputs: u64,
    pub snapshot_every: Duration,
    /// What the host that runs the app keeps with it in the store
    /// ([`Write::HostOptions`], read back by [`StateStore::host_options`]):
    /// written by [`DurableApp::open`] in the same commit as the app's
    /// creation or deploy, so that a store never holds a new version with
    /// the old version's host options, or an app without its own; and on
    /// its own when only they changed. `None`: left as they are.
    pub host_options: Option<String>,
    /// How much of the app's history the store keeps ([`RetainLog`]).
    pub retain_log: RetainLog,
}

impl Default for DurableOptions {
    fn default() -> Self {
        DurableOptions {
            on_new_code: OnNewCode::Refuse,
            snapshot_after_work: Duration::from_millis(150),
            snapshot_every_inputs: 100_000,
            snapshot_every: Duration::from_secs(60),
            host_options: None,
            retain_log: RetainLog::All,
        }
    }
}

/// How an app was brought back, for the record (`elmbox run --state` says
/// it on stderr).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Opened {
    /// The store had no such app: it was created.
    pub created: bool,
    /// The snapshot restored from (the input it was taken after).
    pub snapshot: Option<u64>,
    /// Inputs replayed after it.
    pub replayed: u64,
    /// Damaged records cut from the log's end (a write a crash tore).
    pub cut: u64,
    /// Snapshots passed over, and why.
    pub passed_over: Vec<String>,
    /// A new version was deployed.
    pub deployed: Option<OnNewCode>,
}

/// An app whose state lives in a [`StateStore`].
pub struct DurableApp {
    app: App,
    runtime: Runtime,
    name: String,
    /// The content hash of the code and settings it runs.
    code: String,
    console: Console,
    settings: AppSettings,
    source: Vec<u8>,
    store: Arc<dyn StateStore>,
    committer: Arc<Committer>,
    options: DurableOptions,
    /// The last input recorded.
    seq: u64,
    /// The app's clock, in ms since it was loaded.
    clock_ms: u64,
    since_snapshot: u64,
    /// Time spent handling inputs since the last snapshot: a replay's
    /// cost. Wall time, cheap to read per input; on a busy machine it
    /// counts the time other threads had the CPU, so before it takes a
    /// snapshot the thread's CPU time is asked (see `worked_enough`).
    work_since_snapshot: Duration,
    /// The thread that took the last snapshot, and its CPU time then.
    cpu_at_snapshot: Option<(std::thread::ThreadId, Duration)>,
    snapshot_at: Instant,
    restores: u64,
    /// Set while the app is being restored after a fault; shared with
    /// whoever serves it ([`DurableApp::restoring`]).
    restoring: Restoring,
    /// When the store says the app's earliest timer is due (ms since load,
    /// `None`: no timer); `None` until known. See [`Write::TimerDue`].
    kept_due: Option<Option<u64>>,
}

/// Whether a durable app is being restored after a fault, readable from
/// other threads while the app's own thread restores it: a server turns
/// requests away meanwhile (503) rather than queue them behind the replay.
#[derive(Debug, Clone, Default)]
pub struct Restoring(Arc<AtomicBool>);

impl Restoring {
    pub fn now(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Set until the returned guard is dropped.
    fn during(&self) -> impl Drop + '_ {
        struct Clear<'a>(&'a AtomicBool);
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        self.0.store(true, Ordering::Release);
        Clear(&self.0)
    }
}

/// An input handled, whose answer waits for the input to be durable.
pub struct Submitted {
    pub seq: u64,
    /// The app's name: the writes it waits on are its own.
    app: String,
    result: Result<String>,
    committer: Arc<Committer>,
    /// The HTTP requests the input started or aborted: for the caller to
    /// act on once the input is durable, never before (an input lost in a
    /// crash must not have called anyone).
    http: Vec<HttpAction>,
}

impl Submitted {
    /// The HTTP requests the input started or aborted, taken out: act on
    /// them once the answer is released (the input is durable), and not
    /// at all if it is refused for the store's sake.
    pub fn take_http_actions(&mut self) -> Vec<HttpAction> {
        std::mem::take(&mut self.http)
    }

    /// The answer, once its input is durable.
    pub fn wait(self) -> Result<String> {
        self.committer.ticket_for(&self.app)?.wait()?;
        self.result
    }

    /// Calls `tell` with the answer once its input is durable, on the
    /// commit thread (which `tell` must not hold up): for callers that must
    /// not block, such as an async server.
    pub fn when_durable(self, tell: impl FnOnce(Result<String>) + Send + 'static) -> Result<()> {
        self.when_committed(move |durable, answer| tell(durable.and(answer)))
    }

    /// Like [`Submitted::when_durable`], with whether the input is durable
    /// (`Ok`) apart from the app's answer, which may be an error of the
    /// app's own on a durable input: what it started (its
    /// [`HttpAction`]s) is to be acted on exactly when it is durable.
    pub fn when_committed(
        self,
        tell: impl FnOnce(Result<()>, Result<String>) + Send + 'static,
    ) -> Result<()> {
        let result = self.result;
        self.committer
            .when_durable(&self.app, move |durable| tell(durable, result))
    }

    /// The answer now, before its input is durable: only for output that
    /// the committer itself releases ([`Committer::gated_output`]).
    pub fn ungated(self) -> Result<String> {
        self.result
    }
}

/// How an input came out, as the log records it.
fn outcome(result: &Result<String>) -> Outcome {
    match result {
        Ok(answer) => Outcome::Answered {
            answer: answer_checksum(answer),
        },
        Err(e) if e.is_fatal() => Outcome::Faulted,
        Err(_) => Outcome::Refused,
    }
}

impl DurableApp {
    /// Sends one event to the app and records it; the answer is released by
    /// [`Submitted::wait`] once the event is durable.
    pub fn submit_event(&mut self, event: &[u8]) -> Result<Submitted> {
        self.submit(Input::Event(event.to_vec()))
    }

    /// Moves the app's clock and records it, as [`DurableApp::submit_event`].
    pub fn submit_advance(&mut self, ms: u64) -> Result<Submitted> {
        self.submit(Input::Advance(ms))
    }

    /// One event, answered once it is durable (one commit, shared with
    /// whatever else is committing at the time).
    pub fn dispatch_json(&mut self, event: impl AsRef<[u8]>) -> Result<String> {
        self.submit_event(event.as_ref())?.wait()
    }

    /// The clock moved, answered once durable.
    pub fn advance_time_json(&mut self, ms: u64) -> Result<String> {
        self.submit_advance(ms)?.wait()
    }

    /// An input at the clock's current instant.
    fn submit(&mut self, input: Input) -> Result<Submitted> {
        self.submit_at(self.clock_ms, input)
    }

    /// An input handled at `clock_ms` (an advance: from there), recorded
    /// with it.
    fn submit_at(&mut self, clock_ms: u64, input: Input) -> Result<Submitted> {
        self.committer.check()?;
        self.heal_if_lost()?;
        let clock_ms = clock_ms.max(self.clock_ms);
        let started = Instant::now();
        let result = self
            .apply(clock_ms, &input)
            .expect("deploys are not submitted");
        let mut http = self.app.take_http_actions();
        let outcome = outcome(&result);
        self.seq += 1;
        let seq = self.seq;
        self.committer.write(Write::Record {
            app: self.name.clone(),
            record: Record {
                seq,
                clock_ms,
                input,
                outcome,
            },
        })?;
        self.keep_timer_due(false)?;
        let result = match result {
            Err(cause) if outcome == Outcome::Faulted => {
                // Restored to before the input: what it started never was.
                http.clear();
                let restoring = self.restoring.clone();
                let _during = restoring.during();
                // Restore from what is durable: the fault's own record first.
                self.committer.ticket_for(&self.name)?.wait()?;
                self.restore_after_fault(cause)
            }
            result => {
                self.since_snapshot += 1;
                self.work_since_snapshot += started.elapsed();
                // Only to shorten a restart: when the commit thread is
                // behind with the snapshots handed over, the next input
                // asks again.
                let due = (self.work_since_snapshot >= self.options.snapshot_after_work
                    && self.worked_enough())
                    || self.since_snapshot >= self.options.snapshot_every_inputs
                    || self.snapshot_at.elapsed() >= self.options.snapshot_every;
                if due && self.committer.takes_snapshots() {
                    self.snapshot()?;
                }
                result
            }
        };
        Ok(Submitted {
            seq,
            app: self.name.clone(),
            result,
            committer: self.committer.clone(),
            http,
        })
    }

    /// After a fault: the app as it was before the faulty input, from the
    /// store; the input's answer is the fault, and the app goes on.
    fn restore_after_fault(&mut self, cause: Error) -> Result<String> {
        let (restored, _) = self.restored_from_store()?;
        let restores = self.restores + 1;
        let faulty = self.seq;
        *self = DurableApp {
            restores,
            restoring: self.restoring.clone(),
            ..restored
        };
        Err(Error::Restored {
            cause: Box::new(cause),
            restores,
            before: Some(faulty),
        })
    }

    /// This app as the store holds it now, from its newest snapshot and its
    /// log after it.
    fn restored_from_store(&self) -> Result<(DurableApp, Opened)> {
        DurableApp::restore(
            &self.runtime,
            self.store.clone(),
            self.committer.clone(),
            &self.name,
            &self.code.clone(),
            self.settings.clone(),
            self.source.clone(),
            self.console.clone(),
            self.options.clone(),
        )
    }

    /// A handle that tells, from any thread, whether this app is being
    /// restored after a fault (on the thread that submitted the faulty
    /// input, before that submit returns).
    pub fn restoring(&self) -> Restoring {
        self.restoring.clone()
    }

    /// Whether the work since the last snapshot, which wall time says has
    /// reached [`DurableOptions::snapshot_after_work`], really has: the CPU
    /// time of this thread since then, if this thread took it (the owner
    /// thread of a server's app, `run`'s one thread). Under contention
    /// wall time runs ahead of the work (1,000 ticking apps on 2 cores
    /// snapshotted every few ticks); the thread's CPU time includes its
    /// other work, so a snapshot may come early, never late. One clock read
    /// per check, not per input (it is a system call, ~0.5 µs here).
    fn worked_enough(&mut self) -> bool {
        let Some((thread, cpu_then)) = self.cpu_at_snapshot else {
            return true;
        };
        if thread != std::thread::current().id() {
            return true;
        }
        let worked = thread_cpu_time().saturating_sub(cpu_then);
        // Not yet: wall time starts again from what the work really was.
        self.work_since_snapshot = worked;
        worked >= self.options.snapshot_after_work
    }

    /// Takes a snapshot of the sandbox now, after the last recorded input.
    pub fn snapshot(&mut self) -> Result<()> {
        // Copying the memory is the app's; compressing it is the commit
        // thread's.
        let state = self.app.state()?;
        self.committer.snapshot(
            &self.name,
            self.seq,
            &self.code,
            state,
            self.options.retain_log,
        )?;
        self.since_snapshot = 0;
        self.work_since_snapshot = Duration::ZERO;
        self.cpu_at_snapshot = Some((std::thread::current().id(), thread_cpu_time()));
        self.snapshot_at = Instant::now();
        Ok(())
    }

    /// The write of [`DurableOptions::host_options`], if there are any.
    fn host_options_write(&self) -> Option<Write> {
        let options = self.options.host_options.clone()?;
        Some(Write::HostOptions {
            app: self.name.clone(),
            options,
        })
    }

    /// Removes the app from its store, log and snapshots and all, once
    /// what was handed over before is durable.
    pub fn remove(self) -> Result<()> {
        self.committer.write(Write::Remove {
            app: self.name.clone(),
        })?;
        self.committer.ticket()?.wait()
    }

    /// The runtime it runs in.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The app's name in its store.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The content hash of the code and settings it runs.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &AppSettings {
        &self.settings
    }

    /// The last input recorded (0: none yet).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// What the app sent while it started.
    pub fn startup_outputs(&self) -> &[serde_json::Value] {
        self.app.startup_outputs()
    }

    /// The sandbox's limits.
    pub fn limits(&self) -> &crate::limits::SandboxLimits {
        self.app.limits()
    }

    pub fn memory(&mut self) -> Result<MemoryStats> {
        self.app.memory()
    }

    /// How often the app was restored after a fault.
    pub fn restores(&self) -> u64 {
        self.restores
    }

    /// Takes a snapshot if there were inputs since the last one, and waits
    /// until everything is durable: a restart then replays nothing.
    pub fn checkpoint(&mut self) -> Result<()> {
        if self.since_snapshot > 0 {
            self.snapshot()?;
        }
        self.keep_timer_due(true)?;
        self.committer.ticket()?.wait()
    }

    /// [`DurableApp::checkpoint`], then the app is gone.
    pub fn close(mut self) -> Result<()> {
        self.checkpoint()
    }
}
