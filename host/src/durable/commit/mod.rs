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

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};

use crate::error::{Error, Result};
use crate::state::SandboxState;

use super::healing::{Failure, StoreHealth};
use super::retention::RetainLog;
use super::store::{StateStore, Write};

mod thread;

pub use thread::SNAPSHOT_BACKLOG;
use thread::{run, Counters, OnFailure};

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
    use std::time::Instant;

    use super::thread::{commit, GATHER_AT_MOST};
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
