//! Group commit ([`Committer`]): one thread makes writes durable in
//! batches. Whoever has writes hands them over and goes on; while one
//! commit (one fsync, ~170 µs here) is under way the next writes gather, and
//! the next commit takes them all. An answer is released only after the
//! writes handed over before it are durable: through a [`Ticket`], or as a
//! line of output the thread itself writes once its writes are committed
//! ([`Committer::gated_output`]).
//!
//! A commit that fails does not stop the thread: the apps whose writes it
//! held are lost until they restore themselves, and the store is opened
//! again before the next commit (`healing.rs`).

use std::collections::HashSet;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::state::SandboxState;

use super::healing::{Failure, StoreHealth};
use super::retention::RetainLog;
use super::store::{StateStore, Write};

/// Writes gathered into one commit at most.
const BATCH: usize = 4096;

/// While writes keep arriving and nobody waits on them (a stream whose
/// answers the commit thread releases itself), a commit waits for more, up
/// to this long after its first write: each commit costs an fsync and the
/// interrupts of its I/O, on a core the app may be running on. The wait ends
/// as soon as somebody waits ([`Committer::ticket`], [`Committer::when_durable`]).
const GATHER_AT_MOST: Duration = Duration::from_millis(2);

/// ... or once no write arrived for this long (a client that waits for each
/// line of gated output before it sends the next).
const QUIET: Duration = Duration::from_micros(200);

/// Writes that nobody waits on and no gated line follows (the wakes of
/// apps' timers, snapshots, timers' due times) are gathered for up to this
/// long instead: they share commits, and a waiter who comes meanwhile cuts
/// the wait short.
const GATHER_UNWAITED: Duration = Duration::from_millis(20);

enum Job {
    Write(Write),
    /// Writes that go into one commit: all durable or none.
    Writes(Vec<Write>),
    /// A snapshot to encode, then write as [`Write::Snapshot`].
    Snapshot {
        app: String,
        seq: u64,
        code: String,
        state: SandboxState,
        retain: RetainLog,
    },
    /// Called once the writes handed over before it are durable (or not):
    /// those of `app`, or (`None`) all of them.
    Notify {
        app: Option<String>,
        tell: Box<dyn FnOnce(Result<(), Failure>) + Send>,
    },
    /// Written to the gated output once the writes before it (of `app`,
    /// or all) are durable; never written if they are not.
    Line {
        app: Option<String>,
        line: Vec<u8>,
    },
    /// `app` restored itself from the store: its writes from here on are
    /// committed again.
    Found(String),
}

/// The group-commit thread of one store. Dropping it commits what was
/// handed over and stops the thread.
pub struct Committer {
    jobs: Mutex<Option<Sender<Job>>>,
    /// Gated lines written as `[]` because their writes were not durable.
    lines_failed: Arc<AtomicU64>,
    /// What the commit thread found of the store.
    health: Arc<StoreHealth>,
    /// Set when somebody waits on the writes handed over: commit now.
    waited_on: Arc<AtomicBool>,
    /// The commit thread, to wake while it gathers.
    waker: Thread,
    /// Commits made so far.
    commits: Arc<AtomicU64>,
    /// Bytes of sandbox memory in snapshots handed over, not yet encoded.
    snapshot_backlog: Arc<AtomicUsize>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Waits for the writes handed over before it to be durable.
pub struct Ticket(Receiver<Result<(), Failure>>);

impl Ticket {
    pub fn wait(self) -> Result<()> {
        match self.0.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failure)) => Err(failure.error()),
            Err(_) => Err(Error::StateWrite {
                reason: "the commit thread stopped".into(),
            }),
        }
    }
}

impl Committer {
    /// Starts the thread. Lines handed over through
    /// [`Committer::gated_output`] are written to `output`.
    pub fn start(
        store: Arc<dyn StateStore>,
        output: Option<Box<dyn std::io::Write + Send>>,
    ) -> Committer {
        Committer::start_as(store, output, OnFailure::Heal)
    }

    /// A commit thread that commits nothing more after a failed commit
    /// ([`crate::durable::Health::Stopped`]): for a node's per-app thread,
    /// whose node then drops the app and takes it over again from the
    /// store with the next lease epoch, which rolls back a commit whose
    /// acknowledgement was lost (in doubt) instead of keeping it.
    pub fn start_stopping_on_failure(store: Arc<dyn StateStore>) -> Committer {
        Committer::start_as(store, None, OnFailure::Stop)
    }

    fn start_as(
        store: Arc<dyn StateStore>,
        output: Option<Box<dyn std::io::Write + Send>>,
        on_failure: OnFailure,
    ) -> Committer {
        let (send, receive) = channel();
        let health = Arc::new(StoreHealth::default());
        let told = health.clone();
        let waited_on = Arc::new(AtomicBool::new(false));
        let waited = waited_on.clone();
        let commits = Arc::new(AtomicU64::new(0));
        let snapshot_backlog = Arc::new(AtomicUsize::new(0));
        let lines_failed = Arc::new(AtomicU64::new(0));
        let counters = Counters {
            commits: commits.clone(),
            snapshot_backlog: snapshot_backlog.clone(),
            lines_failed: lines_failed.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("elmbox-commit".into())
            .spawn(move || {
                run(
                    store, receive, output, &told, &waited, &counters, on_failure,
                )
            })
            .expect("spawning the commit thread");
        Committer {
            jobs: Mutex::new(Some(send)),
            lines_failed,
            health,
            waited_on,
            commits,
            snapshot_backlog,
            waker: thread.thread().clone(),
            thread: Mutex::new(Some(thread)),
        }
    }

    /// How many commits the store has made for this thread so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Hands `write` over; it is durable once a later ticket says so.
    pub fn write(&self, write: Write) -> Result<()> {
        self.send(Job::Write(write))
    }

    /// Hands `writes` over to go into one commit, all durable or none
    /// (a deploy's new code and the record of it, say).
    pub fn write_together(&self, writes: Vec<Write>) -> Result<()> {
        self.send(Job::Writes(writes))
    }

    /// Whether a snapshot taken now would be encoded soon: false while the
    /// snapshots handed over and not yet encoded hold [`SNAPSHOT_BACKLOG`]
    /// bytes or more. A snapshot that is only there to shorten a restart
    /// can wait; the memory of a growing queue of them cannot.
    pub fn takes_snapshots(&self) -> bool {
        self.snapshot_backlog.load(Ordering::Relaxed) < SNAPSHOT_BACKLOG
    }

    /// Hands over a snapshot of `app` after record `seq`, running `code`:
    /// encoded (compressed) on the commit thread, then written, with the
    /// history `retain` says dropped in the same commit.
    pub fn snapshot(
        &self,
        app: &str,
        seq: u64,
        code: &str,
        state: SandboxState,
        retain: RetainLog,
    ) -> Result<()> {
        self.snapshot_backlog
            .fetch_add(state.memory.len(), Ordering::Relaxed);
        self.send(Job::Snapshot {
            app: app.to_string(),
            seq,
            code: code.to_string(),
            state,
            retain,
        })
    }

    /// A ticket for everything handed over so far: it fails if the commit
    /// that held any of it failed.
    pub fn ticket(&self) -> Result<Ticket> {
        self.ticket_of(None)
    }

    /// A ticket for the writes of `app` handed over so far.
    pub fn ticket_for(&self, app: &str) -> Result<Ticket> {
        self.ticket_of(Some(app.to_string()))
    }

    fn ticket_of(&self, app: Option<String>) -> Result<Ticket> {
        let (send, receive) = channel();
        self.notify(
            app,
            Box::new(move |durable| {
                let _ = send.send(durable);
            }),
        )?;
        Ok(Ticket(receive))
    }

    /// Calls `tell`, on the commit thread, once the writes of `app` handed
    /// over so far are durable, or with the reason they are not: for
    /// callers that must not block, such as an async server.
    pub fn when_durable(
        &self,
        app: &str,
        tell: impl FnOnce(Result<()>) + Send + 'static,
    ) -> Result<()> {
        self.notify(
            Some(app.to_string()),
            Box::new(move |durable: Result<(), Failure>| tell(durable.map_err(|f| f.error()))),
        )
    }

    fn notify(
        &self,
        app: Option<String>,
        tell: Box<dyn FnOnce(Result<(), Failure>) + Send>,
    ) -> Result<()> {
        self.send(Job::Notify { app, tell })?;
        self.waited_on.store(true, Ordering::Release);
        self.waker.unpark();
        Ok(())
    }

    /// A writer whose lines reach the output only once the writes of `app`
    /// handed over before each line are durable: the output gate of
    /// `elmbox run --state`.
    pub fn gated_output(self: &Arc<Self>, app: &str) -> GatedOutput {
        GatedOutput {
            committer: self.clone(),
            app: app.to_string(),
            line: Vec::new(),
        }
    }

    /// Lines of the gated output that were not durable (written as `[]`).
    pub fn lines_failed(&self) -> u64 {
        self.lines_failed.load(Ordering::Relaxed)
    }

    /// What the commit thread found of the store.
    pub fn health(&self) -> &Arc<StoreHealth> {
        &self.health
    }

    /// Refused while the store cannot even be opened again.
    pub fn check(&self) -> Result<()> {
        match self.health.refusal() {
            Some(refused) => Err(refused),
            None => Ok(()),
        }
    }

    /// `app` restored itself from what the store holds after its writes
    /// were lost: the writes it hands over from now on are committed.
    pub fn found(&self, app: &str) -> Result<()> {
        self.health.found(app);
        self.send(Job::Found(app.to_string()))
    }

    /// Commits what was handed over, writes the released lines, and stops
    /// the thread.
    pub fn finish(&self) -> Result<()> {
        drop(self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
        match self.health.health().reason() {
            None => Ok(()),
            Some(reason) => Err(Error::StateWrite {
                reason: reason.to_string(),
            }),
        }
    }

    fn send(&self, job: Job) -> Result<()> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let sent = jobs.as_ref().map(|jobs| jobs.send(job).is_ok());
        match sent {
            Some(true) => Ok(()),
            _ => Err(Error::StateWrite {
                reason: "the commit thread has stopped".into(),
            }),
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The most sandbox memory that snapshots waiting to be encoded may hold
/// before [`Committer::takes_snapshots`] says to wait: a few apps' worth.
pub const SNAPSHOT_BACKLOG: usize = 64 << 20;

/// What the commit thread counts for the [`Committer`].
struct Counters {
    commits: Arc<AtomicU64>,
    snapshot_backlog: Arc<AtomicUsize>,
    /// Gated lines whose writes were not durable.
    lines_failed: Arc<AtomicU64>,
}

/// What a commit thread does after a failed commit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnFailure {
    /// Opens the store again; the apps it failed restore themselves.
    Heal,
    /// Commits nothing more.
    Stop,
}

fn run(
    store: Arc<dyn StateStore>,
    receive: Receiver<Job>,
    mut output: Option<Box<dyn std::io::Write + Send>>,
    health: &StoreHealth,
    waited_on: &AtomicBool,
    counters: &Counters,
    on_failure: OnFailure,
) {
    // Apps whose writes are dropped, until the `Found` they hand over: the
    // order of the channel says which writes came before their restore.
    let mut lost: HashSet<String> = HashSet::new();
    let mut reopen = false;
    loop {
        // While the store waits to be opened again, it is tried every
        // so often even without writes: a store that is down refuses
        // inputs, so none would come to try it.
        let first = match reopen {
            false => receive.recv().ok(),
            true => match receive.recv_timeout(REOPEN_EVERY) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => {
                    reopen = !reopened(store.as_ref(), health);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => None,
            },
        };
        let Some(first) = first else { break };
        let batch = gather(&receive, first, waited_on);
        // The writes go in one commit; what waits on them comes after, in
        // the order it was handed over.
        let mut writes = Vec::new();
        let mut waiting = Vec::new();
        // Records (all but snapshots) gathered so far: a line or a notice
        // waits on this commit only if one of its app's is among those
        // handed over before it; one whose writes all went in an earlier
        // commit does not (that commit held them, or its app would be
        // lost), whatever comes of this one. Looked at only if it fails.
        let mut records = 0;
        for job in batch {
            match job {
                Job::Write(write) => records += keep(write, &lost, &mut writes),
                Job::Writes(together) => {
                    for write in together {
                        records += keep(write, &lost, &mut writes);
                    }
                }
                Job::Snapshot {
                    app,
                    seq,
                    code,
                    state,
                    retain,
                } => {
                    counters
                        .snapshot_backlog
                        .fetch_sub(state.memory.len(), Ordering::Relaxed);
                    if lost.contains(&app) {
                        continue;
                    }
                    match state.encode() {
                        Ok(bytes) => writes.push(Write::Snapshot {
                            app,
                            seq,
                            guest: state.guest,
                            code,
                            bytes,
                            retain,
                        }),
                        // A snapshot that cannot be made is only a slower restart.
                        Err(e) => {
                            tracing::error!(app = %app, seq, "a snapshot could not be made: {e}")
                        }
                    }
                }
                Job::Found(app) => {
                    lost.remove(&app);
                }
                Job::Notify { app, tell } => {
                    let dropped = app.as_ref().is_some_and(|app| lost.contains(app));
                    waiting.push((Waiter::Notify(tell), app, dropped, records));
                }
                Job::Line { app, line } => {
                    let dropped = app.as_ref().is_some_and(|app| lost.contains(app));
                    waiting.push((Waiter::Line(line), app, dropped, records));
                }
            }
        }
        let mut failure = None;
        if reopen && !writes.is_empty() {
            reopen = !reopened(store.as_ref(), health);
            if reopen {
                failure = Some(health.lost_because());
            }
        }
        if health.stopped() && !writes.is_empty() {
            failure = Some(health.lost_because());
        } else if failure.is_none() && !writes.is_empty() {
            match commit(store.as_ref(), &mut writes) {
                Ok(()) => {
                    counters.commits.fetch_add(1, Ordering::Relaxed);
                    if !health.health().is_healthy() {
                        tracing::warn!("the store took a commit again: healed");
                    }
                    health.healthy();
                }
                Err(e) => {
                    let mut failed = Failure::of(&e);
                    // Stopped as if fenced: its node takes the app over,
                    // rolling back a commit in doubt. A full store's commit
                    // is not in doubt: it heals in place, trying for room,
                    // rather than taking the app over at every input.
                    failed.fenced |= on_failure == OnFailure::Stop && !failed.full;
                    failure = Some(failed);
                }
            }
        }
        // The apps whose writes failed, only looked for when some did.
        let apps: HashSet<&str> = match failure {
            Some(_) => writes.iter().map(Write::app).collect(),
            None => HashSet::new(),
        };
        if let Some(failure) = failure.as_ref().filter(|f| f.fenced) {
            tracing::warn!("{}; nothing more is committed here", failure.reason);
            health.failed(failure, apps.iter().copied());
        } else if let Some(failure) = &failure {
            // What the store holds is not known now: stop using the
            // connection, and never trust a retried fsync.
            tracing::error!(
                apps = apps.len(),
                "a commit failed: {}; the store is opened again, and the apps whose writes \
                 it held restore themselves from what it holds",
                failure.reason
            );
            reopen = true;
            lost.extend(apps.iter().map(|app| app.to_string()));
            health.failed(failure, apps.iter().copied());
        }
        let mut wrote = false;
        for (waiter, app, dropped, records_before) in waiting {
            // Its writes were dropped, or were in the commit that failed.
            let failed = dropped
                || failure.is_some() && held_before(&writes, app.as_deref(), records_before);
            let outcome = match (failed, &failure) {
                (false, _) => Ok(()),
                (true, Some(failure)) => Err(failure.clone()),
                (true, None) => Err(health.lost_because()),
            };
            match waiter {
                Waiter::Notify(tell) => tell(outcome),
                // Never released if its writes were not durable: the line
                // protocol's `[]` stands in for it, said on stderr.
                Waiter::Line(line) => {
                    let line = match outcome {
                        Ok(()) => line,
                        Err(failure) => {
                            counters.lines_failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!(
                                "elmbox: an answer was not written, its event not durable: {}",
                                failure.error()
                            );
                            b"[]\n".to_vec()
                        }
                    };
                    if let Some(out) = output.as_mut() {
                        wrote |= out.write_all(&line).is_ok();
                    }
                }
            }
        }
        if wrote {
            if let Some(out) = output.as_mut() {
                let _ = out.flush();
            }
        }
    }
}

/// How often a store that failed is tried again while nothing is written.
const REOPEN_EVERY: Duration = Duration::from_millis(500);

/// Opens the store again; whether it worked.
fn reopened(store: &dyn StateStore, health: &StoreHealth) -> bool {
    match store.reopen() {
        Ok(()) => {
            health.reopened();
            true
        }
        Err(e) => {
            tracing::error!("the store cannot be opened again: {e}");
            health.down(e.to_string());
            false
        }
    }
}

/// What waits on a commit.
enum Waiter {
    Notify(Box<dyn FnOnce(Result<(), Failure>) + Send>),
    Line(Vec<u8>),
}

/// Whether the first `records` records (snapshots aside) of `writes` hold
/// one of `app`'s (`None`: of any app).
fn held_before(writes: &[Write], app: Option<&str>, records: usize) -> bool {
    let mut first = writes
        .iter()
        .filter(|w| !matches!(w, Write::Snapshot { .. }))
        .take(records);
    match app {
        Some(app) => first.any(|w| w.app() == app),
        None => first.next().is_some(),
    }
}

/// Keeps `write` for the commit, unless its app is lost; how many records
/// that adds (0 or 1).
fn keep(write: Write, lost: &HashSet<String>, writes: &mut Vec<Write>) -> usize {
    if lost.contains(write.app()) {
        return 0;
    }
    let record = usize::from(!matches!(write, Write::Snapshot { .. }));
    writes.push(write);
    record
}

/// Commits `writes`. A full store refuses snapshots first: those are only
/// a faster restart, so they are left out, said, and the rest tried again.
fn commit(store: &dyn StateStore, writes: &mut Vec<Write>) -> Result<()> {
    let error = match store.commit(writes) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let has_snapshots = writes.iter().any(|w| matches!(w, Write::Snapshot { .. }));
    if !matches!(error, Error::StateFull { .. }) || !has_snapshots {
        return Err(error);
    }
    writes.retain(|write| match write {
        Write::Snapshot { app, seq, .. } => {
            tracing::error!(app = %app, seq, "a snapshot was not written: {error}; the log is kept");
            false
        }
        _ => true,
    });
    if writes.is_empty() {
        return Ok(());
    }
    store.commit(writes)
}

/// The jobs of one commit, from `first` on: what has arrived and, while
/// nobody waits on any of it, what arrives until the writes go [`QUIET`] or
/// the first has waited [`GATHER_AT_MOST`] (with a gated line among them;
/// else [`GATHER_UNWAITED`]). The thread parks meanwhile
/// rather than waiting on the channel, so that handing a write over stays a
/// push, not a wake-up of this thread.
fn gather(receive: &Receiver<Job>, first: Job, waited_on: &AtomicBool) -> Vec<Job> {
    let started = Instant::now();
    // Anybody who waits has handed over a Notify before setting the flag:
    // it is in the channel, drained below.
    waited_on.store(false, Ordering::Release);
    let mut someone_waits = matches!(first, Job::Notify { .. });
    let mut lines = matches!(first, Job::Line { .. });
    let mut batch = vec![first];
    loop {
        let before = batch.len();
        while batch.len() < BATCH {
            match receive.try_recv() {
                Ok(job) => {
                    someone_waits |= matches!(job, Job::Notify { .. });
                    lines |= matches!(job, Job::Line { .. });
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let now = Instant::now();
        let quiet = lines && batch.len() == before && before > 1;
        let until = started
            + if lines {
                GATHER_AT_MOST
            } else {
                GATHER_UNWAITED
            };
        if someone_waits || quiet || batch.len() >= BATCH || now >= until {
            return batch;
        }
        // Quiet is only looked for with gated lines; else the thread sleeps
        // to the end, unless a waiter wakes it.
        let nap = if lines {
            (until - now).min(QUIET)
        } else {
            until - now
        };
        std::thread::park_timeout(nap);
        // Woken by a waiter: take what came meanwhile, and commit.
        someone_waits = waited_on.load(Ordering::Acquire);
    }
}

/// See [`Committer::gated_output`]. Each complete line is handed to the
/// commit thread in order with the writes; `flush` hands over a partial one.
pub struct GatedOutput {
    committer: Arc<Committer>,
    app: String,
    line: Vec<u8>,
}

impl std::io::Write for GatedOutput {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for part in bytes.split_inclusive(|&b| b == b'\n') {
            self.line.extend_from_slice(part);
            if part.ends_with(b"\n") {
                let line = std::mem::take(&mut self.line);
                let app = Some(self.app.clone());
                self.committer
                    .send(Job::Line { app, line })
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            let app = Some(self.app.clone());
            self.committer
                .send(Job::Line { app, line })
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durable::store::{AppSummary, StoredApp, StoredSnapshot};

    /// Counts commits and the writes in them; nothing else is asked of a
    /// store by the commit thread. It fails the commits `fail` says, in
    /// turn, and refuses snapshots as full with `full_of_snapshots`.
    #[derive(Default)]
    struct Counting {
        commits: Mutex<Vec<usize>>,
        /// `app:options` of every write committed.
        committed: Mutex<Vec<String>>,
        fail: Mutex<Vec<Error>>,
        full_of_snapshots: bool,
        reopens: AtomicU64,
    }

    impl StateStore for Counting {
        fn put_code(&self, _: &[u8]) -> Result<String> {
            unreachable!("the commit thread only commits")
        }
        fn code(&self, _: &str) -> Result<Vec<u8>> {
            unreachable!("the commit thread only commits")
        }
        fn app(&self, _: &str) -> Result<Option<StoredApp>> {
            unreachable!("the commit thread only commits")
        }
        fn host_options(&self, _: &str) -> Result<Option<String>> {
            unreachable!("the commit thread only commits")
        }
        fn timer_due(&self, _: &str) -> Result<Option<i64>> {
            unreachable!("the commit thread only commits")
        }
        fn timers_due(&self, _: i64) -> Result<Vec<String>> {
            unreachable!("the commit thread only commits")
        }
        fn apps(&self) -> Result<Vec<AppSummary>> {
            unreachable!("the commit thread only commits")
        }
        fn bytes(&self) -> Result<u64> {
            unreachable!("the commit thread only commits")
        }
        fn commit(&self, writes: &[Write]) -> Result<()> {
            if let Some(e) = self.fail.lock().unwrap().pop() {
                return Err(e);
            }
            let snapshots = writes.iter().any(|w| matches!(w, Write::Snapshot { .. }));
            if self.full_of_snapshots && snapshots {
                return Err(Error::StateFull {
                    reason: "no room".into(),
                });
            }
            self.commits.lock().unwrap().push(writes.len());
            for write in writes {
                if let Write::HostOptions { app, options } = write {
                    self.committed
                        .lock()
                        .unwrap()
                        .push(format!("{app}:{options}"));
                }
            }
            Ok(())
        }
        fn reopen(&self) -> Result<()> {
            self.reopens.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        fn log_rows(&self, _: &str, _: u64, _: usize) -> Result<Vec<(u64, Vec<u8>)>> {
            unreachable!("the commit thread only commits")
        }
        fn cut_log(&self, _: &str, _: u64) -> Result<()> {
            unreachable!("the commit thread only commits")
        }
        fn snapshots(&self, _: &str) -> Result<Vec<StoredSnapshot>> {
            unreachable!("the commit thread only commits")
        }
        fn snapshot(&self, _: &str, _: u64) -> Result<Vec<u8>> {
            unreachable!("the commit thread only commits")
        }
    }

    fn write(i: usize) -> Write {
        write_of("a", i)
    }

    fn write_of(app: &str, i: usize) -> Write {
        Write::HostOptions {
            app: app.into(),
            options: i.to_string(),
        }
    }

    #[test]
    fn a_failed_commit_loses_its_apps_until_they_have_restored_themselves() {
        let store = Arc::new(Counting {
            fail: Mutex::new(vec![Error::StateWrite {
                reason: "disk I/O error".into(),
            }]),
            ..Counting::default()
        });
        let committer = Committer::start(store.clone(), None);
        committer.write(write_of("a", 1)).unwrap();
        let failed = committer.ticket_for("a").unwrap().wait().unwrap_err();
        assert!(failed.to_string().contains("disk I/O error"), "{failed}");
        let health = committer.health();
        assert!(health.is_lost("a") && !health.is_lost("b"));
        assert_eq!(health.errors(), 1);
        assert_eq!(health.health().name(), "healing");

        // Until `a` says it restored itself, its writes are dropped, and
        // its waiters told; another app's go through, on a store opened
        // again first.
        committer.write(write_of("a", 2)).unwrap();
        committer.write(write_of("b", 1)).unwrap();
        assert!(committer.ticket_for("a").unwrap().wait().is_err());
        committer.ticket_for("b").unwrap().wait().unwrap();
        assert_eq!(store.reopens.load(Ordering::Relaxed), 1);
        assert!(health.health().is_healthy());

        committer.found("a").unwrap();
        assert!(!health.is_lost("a"));
        committer.write(write_of("a", 3)).unwrap();
        committer.ticket_for("a").unwrap().wait().unwrap();
        assert_eq!(*store.committed.lock().unwrap(), ["b:1", "a:3"]);
    }

    #[test]
    fn a_full_store_leaves_snapshots_out_and_keeps_the_log() {
        let store = Counting {
            full_of_snapshots: true,
            ..Counting::default()
        };
        let snapshot = Write::Snapshot {
            app: "a".into(),
            seq: 1,
            guest: crate::guest::GuestId([0; 32]),
            code: "c".into(),
            bytes: vec![1; 64],
            retain: RetainLog::All,
        };
        commit(&store, &mut vec![snapshot.clone(), write(1)]).unwrap();
        assert_eq!(*store.committed.lock().unwrap(), ["a:1"]);
        // Nothing but the snapshot: nothing to commit.
        commit(&store, &mut vec![snapshot]).unwrap();
        assert_eq!(store.commits.lock().unwrap().len(), 1);
        // Any other failure is the commit's.
        store.fail.lock().unwrap().push(Error::StateFull {
            reason: "full".into(),
        });
        assert!(matches!(
            commit(&store, &mut vec![write(2)]),
            Err(Error::StateFull { .. })
        ));
    }

    #[test]
    fn a_stream_nobody_waits_on_shares_few_commits() {
        let store = Arc::new(Counting::default());
        let committer = Committer::start(store.clone(), None);
        for i in 0..2000 {
            committer.write(write(i)).unwrap();
        }
        committer.ticket().unwrap().wait().unwrap();
        let commits = store.commits.lock().unwrap().clone();
        assert_eq!(commits.iter().sum::<usize>(), 2000, "every write committed");
        // Without gathering, a store this fast commits nearly each write alone.
        assert!(
            commits.len() <= 100,
            "{} commits for 2000 writes",
            commits.len()
        );
    }

    #[test]
    fn somebody_waiting_is_not_kept_waiting_by_the_gathering() {
        let store = Arc::new(Counting::default());
        let committer = Committer::start(store.clone(), None);
        let rounds = 200;
        let started = Instant::now();
        for i in 0..rounds {
            committer.write(write(i)).unwrap();
            committer.ticket().unwrap().wait().unwrap();
        }
        // Held for the whole gathering, the rounds would take 0.4 s.
        let held = GATHER_AT_MOST * rounds as u32;
        assert!(
            started.elapsed() < held / 4,
            "{rounds} waited-on writes took {:?}",
            started.elapsed()
        );
        assert_eq!(store.commits.lock().unwrap().len(), rounds);
    }
}
