//! Group commit ([`Committer`]): one thread makes writes durable in
//! batches. Whoever has writes hands them over and goes on; while one
//! commit (one fsync, ~170 µs here) is under way the next writes gather, and
//! the next commit takes them all. An answer is released only after the
//! writes handed over before it are durable: through a [`Ticket`], or as a
//! line of output the thread itself writes once its writes are committed
//! ([`Committer::gated_output`]).

use std::io::Write as _;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::state::SandboxState;

use super::store::{StateStore, Write};

/// Writes gathered into one commit at most.
const BATCH: usize = 4096;

enum Job {
    Write(Write),
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
        let thread = std::thread::Builder::new()
            .name("elmbox-commit".into())
            .spawn(move || run(store, receive, output, failed))
            .expect("spawning the commit thread");
        Committer {
            jobs: Mutex::new(Some(send)),
            failure,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Hands `write` over; it is durable once a later ticket says so.
    pub fn write(&self, write: Write) -> Result<()> {
        self.send(Job::Write(write))
    }

    /// Hands over a snapshot of `app` after record `seq`, running `code`:
    /// encoded (compressed) on the commit thread, then written.
    pub fn snapshot(&self, app: &str, seq: u64, code: &str, state: SandboxState) -> Result<()> {
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
        self.send(Job::Notify(Box::new(move |durable| {
            let _ = send.send(durable);
        })))?;
        Ok(Ticket(receive))
    }

    /// Calls `tell`, on the commit thread, once everything handed over so
    /// far is durable, or with the reason it cannot be: for callers that
    /// must not block, such as an async server.
    pub fn when_durable(&self, tell: impl FnOnce(Result<()>) + Send + 'static) -> Result<()> {
        self.send(Job::Notify(Box::new(move |durable: Result<(), String>| {
            tell(durable.map_err(|reason| Error::StateWrite { reason }))
        })))
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

fn run(
    store: Arc<dyn StateStore>,
    receive: Receiver<Job>,
    mut output: Option<Box<dyn std::io::Write + Send>>,
    failure: Arc<Mutex<Option<String>>>,
) {
    let mut failed: Option<String> = None;
    while let Ok(first) = receive.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match receive.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // The writes go in one commit; what waits on them comes after, in
        // the order it was handed over.
        let mut writes = Vec::new();
        let mut waiting = Vec::new();
        for job in batch {
            match job {
                Job::Write(write) => writes.push(write),
                Job::Snapshot {
                    app,
                    seq,
                    code,
                    state,
                } => match state.encode() {
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
                },
                other => waiting.push(other),
            }
        }
        if failed.is_none() && !writes.is_empty() {
            if let Err(e) = store.commit(&writes) {
                let reason = e.to_string();
                *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
                failed = Some(reason);
            }
        }
        let mut wrote = false;
        for job in waiting {
            match job {
                Job::Write(_) | Job::Snapshot { .. } => unreachable!("writes were taken out"),
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
