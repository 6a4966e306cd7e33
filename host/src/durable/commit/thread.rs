//! The commit thread itself: it gathers the jobs handed over into one
//! commit ([`gather`]), commits them (leaving snapshots out of a full
//! store), tells the waiters and writes the gated lines, and after a failed
//! commit heals (opens the store again) or stops.

use std::collections::HashSet;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::durable::healing::{Failure, StoreHealth};
use crate::durable::store::{StateStore, Write};
use crate::error::{Error, Result};

#[cfg(doc)]
use super::Committer;
use super::Job;

/// Writes gathered into one commit at most.
const BATCH: usize = 4096;

/// While writes keep arriving and nobody waits on them (a stream whose
/// answers the commit thread releases itself), a commit waits for more, up
/// to this long after its first write: each commit costs an fsync and the
/// interrupts of its I/O, on a core the app may be running on. The wait ends
/// as soon as somebody waits ([`Committer::ticket`], [`Committer::when_durable`]).
pub(super) const GATHER_AT_MOST: Duration = Duration::from_millis(2);

/// ... or once no write arrived for this long (a client that waits for each
/// line of gated output before it sends the next).
const QUIET: Duration = Duration::from_micros(200);

/// Writes that nobody waits on and no gated line follows (the wakes of
/// apps' timers, snapshots, timers' due times) are gathered for up to this
/// long instead: they share commits, and a waiter who comes meanwhile cuts
/// the wait short.
const GATHER_UNWAITED: Duration = Duration::from_millis(20);

/// The most sandbox memory that snapshots waiting to be encoded may hold
/// before [`Committer::takes_snapshots`] says to wait: a few apps' worth.
pub const SNAPSHOT_BACKLOG: usize = 64 << 20;

/// What the commit thread counts for the [`Committer`].
pub(super) struct Counters {
    pub(super) commits: Arc<AtomicU64>,
    pub(super) snapshot_backlog: Arc<AtomicUsize>,
    /// Gated lines whose writes were not durable.
    pub(super) lines_failed: Arc<AtomicU64>,
}

/// What a commit thread does after a failed commit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum OnFailure {
    /// Opens the store again; the apps it failed restore themselves.
    Heal,
    /// Commits nothing more.
    Stop,
}

pub(super) fn run(
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
pub(super) fn commit(store: &dyn StateStore, writes: &mut Vec<Write>) -> Result<()> {
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
