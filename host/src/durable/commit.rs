//! Group commit ([`Committer`]): one thread makes writes durable in
//! batches. Whoever has writes hands them over and goes on; while one
//! commit (one fsync, ~170 µs here) is under way the next writes gather, and
//! the next commit takes them all. An answer is released only after the
//! writes handed over before it are durable: through a [`Ticket`], or as a
//! line of output the thread itself writes once its writes are committed
//! ([`Committer::gated_output`]).

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::state::SandboxState;

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
    },
    /// Called once the writes handed over before it are durable (or not).
    Notify(Box<dyn FnOnce(Result<(), String>) + Send>),
    /// Written to the gated output once the writes before it are durable.
    Line(Vec<u8>),
}

/// The group-commit thread of one store. Dropping it commits what was
/// handed over and stops the thread.
pub struct Committer {
    jobs: Mutex<Option<Sender<Job>>>,
    /// Set once a commit failed: nothing more is committed.
    failure: Arc<Mutex<Option<String>>>,
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
pub struct Ticket(Receiver<Result<(), String>>);

impl Ticket {
    pub fn wait(self) -> Result<()> {
        match self.0.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(Error::StateWrite { reason }),
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
        let (send, receive) = channel();
        let failure = Arc::new(Mutex::new(None));
        let failed = failure.clone();
        let waited_on = Arc::new(AtomicBool::new(false));
        let waited = waited_on.clone();
        let commits = Arc::new(AtomicU64::new(0));
        let snapshot_backlog = Arc::new(AtomicUsize::new(0));
        let counters = Counters {
            commits: commits.clone(),
            snapshot_backlog: snapshot_backlog.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("elmbox-commit".into())
            .spawn(move || run(store, receive, output, failed, &waited, &counters))
            .expect("spawning the commit thread");
        Committer {
            jobs: Mutex::new(Some(send)),
            failure,
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
    /// encoded (compressed) on the commit thread, then written.
    pub fn snapshot(&self, app: &str, seq: u64, code: &str, state: SandboxState) -> Result<()> {
        self.snapshot_backlog
            .fetch_add(state.memory.len(), Ordering::Relaxed);
        self.send(Job::Snapshot {
            app: app.to_string(),
            seq,
            code: code.to_string(),
            state,
        })
    }

    /// A ticket for everything handed over so far.
    pub fn ticket(&self) -> Result<Ticket> {
        let (send, receive) = channel();
        self.notify(Box::new(move |durable| {
            let _ = send.send(durable);
        }))?;
        Ok(Ticket(receive))
    }

    /// Calls `tell`, on the commit thread, once everything handed over so
    /// far is durable, or with the reason it cannot be: for callers that
    /// must not block, such as an async server.
    pub fn when_durable(&self, tell: impl FnOnce(Result<()>) + Send + 'static) -> Result<()> {
        self.notify(Box::new(move |durable: Result<(), String>| {
            tell(durable.map_err(|reason| Error::StateWrite { reason }))
        }))
    }

    fn notify(&self, tell: Box<dyn FnOnce(Result<(), String>) + Send>) -> Result<()> {
        self.send(Job::Notify(tell))?;
        self.waited_on.store(true, Ordering::Release);
        self.waker.unpark();
        Ok(())
    }

    /// A writer whose lines reach the output only once everything handed
    /// over before each line is durable: the output gate of `elmbox run
    /// --state`.
    pub fn gated_output(self: &Arc<Self>) -> GatedOutput {
        GatedOutput {
            committer: self.clone(),
            line: Vec::new(),
        }
    }

    /// Why commits stopped, if they did.
    pub fn check(&self) -> Result<()> {
        match &*self.failure.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(reason) => Err(Error::StateWrite {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Commits what was handed over, writes the released lines, and stops
    /// the thread.
    pub fn finish(&self) -> Result<()> {
        drop(self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
        self.check()
    }

    fn send(&self, job: Job) -> Result<()> {
        self.check()?;
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
}

fn run(
    store: Arc<dyn StateStore>,
    receive: Receiver<Job>,
    mut output: Option<Box<dyn std::io::Write + Send>>,
    failure: Arc<Mutex<Option<String>>>,
    waited_on: &AtomicBool,
    counters: &Counters,
) {
    let mut failed: Option<String> = None;
    while let Ok(first) = receive.recv() {
        let batch = gather(&receive, first, waited_on);
        // The writes go in one commit; what waits on them comes after, in
        // the order it was handed over.
        let mut writes = Vec::new();
        let mut waiting = Vec::new();
        for job in batch {
            match job {
                Job::Write(write) => writes.push(write),
                Job::Writes(together) => writes.extend(together),
                Job::Snapshot {
                    app,
                    seq,
                    code,
                    state,
                } => {
                    let encoded = state.encode();
                    counters
                        .snapshot_backlog
                        .fetch_sub(state.memory.len(), Ordering::Relaxed);
                    match encoded {
                        Ok(bytes) => writes.push(Write::Snapshot {
                            app,
                            seq,
                            guest: state.guest,
                            code,
                            bytes,
                        }),
                        // A snapshot that cannot be made is only a slower restart.
                        Err(e) => {
                            eprintln!("elmbox: a snapshot of {app} after event {seq} failed: {e}")
                        }
                    }
                }
                other => waiting.push(other),
            }
        }
        if failed.is_none() && !writes.is_empty() {
            match store.commit(&writes) {
                Ok(()) => {
                    counters.commits.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    let reason = e.to_string();
                    *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
                    failed = Some(reason);
                }
            }
        }
        let mut wrote = false;
        for job in waiting {
            match job {
                Job::Write(_) | Job::Writes(_) | Job::Snapshot { .. } => {
                    unreachable!("writes were taken out")
                }
                Job::Notify(tell) => tell(failed.clone().map_or(Ok(()), Err)),
                // Never released if its writes were not durable.
                Job::Line(line) if failed.is_none() => {
                    if let Some(out) = output.as_mut() {
                        wrote |= out.write_all(&line).is_ok();
                    }
                }
                Job::Line(_) => {}
            }
        }
        if wrote {
            if let Some(out) = output.as_mut() {
                let _ = out.flush();
            }
        }
    }
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
    let mut someone_waits = matches!(first, Job::Notify(_));
    let mut lines = matches!(first, Job::Line(_));
    let mut batch = vec![first];
    loop {
        let before = batch.len();
        while batch.len() < BATCH {
            match receive.try_recv() {
                Ok(job) => {
                    someone_waits |= matches!(job, Job::Notify(_));
                    lines |= matches!(job, Job::Line(_));
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
    line: Vec<u8>,
}

impl std::io::Write for GatedOutput {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for part in bytes.split_inclusive(|&b| b == b'\n') {
            self.line.extend_from_slice(part);
            if part.ends_with(b"\n") {
                let line = std::mem::take(&mut self.line);
                self.committer
                    .send(Job::Line(line))
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.committer
                .send(Job::Line(line))
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durable::store::{AppSummary, LogRead, StoredApp, StoredSnapshot};

    /// Counts commits and the writes in them; nothing else is asked of a
    /// store by the commit thread.
    #[derive(Default)]
    struct Counting {
        commits: Mutex<Vec<usize>>,
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
        fn commit(&self, writes: &[Write]) -> Result<()> {
            self.commits.lock().unwrap().push(writes.len());
            Ok(())
        }
        fn log(&self, _: &str, _: u64) -> Result<LogRead> {
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
        Write::HostOptions {
            app: "a".into(),
            options: i.to_string(),
        }
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
