//! A store that fails and comes back ([`StoreHealth`]). After a failed
//! commit (an I/O error, a failed fsync, a full disk) what the store holds
//! is not known: PostgreSQL's lesson ("fsyncgate") is never to retry an
//! fsync and then trust it. So the commit thread stops using the
//! connection and opens the store again before its next commit, and every
//! app whose writes were in the failed commit is *lost*: its state in
//! memory may be ahead of the store's. The commit thread drops a lost app's
//! writes (and fails their waiters) until the app has restored itself from
//! what the reopened store holds, which it does before its next input
//! (`DurableApp::heal`), so that what it answers after is what a restart
//! would answer. Nothing answered is lost: an answer waits for its writes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// While the store is full, one input is let through this often to find
/// out whether there is room again.
pub const FULL_TRIAL_EVERY: Duration = Duration::from_millis(250);

use crate::error::{Error, Result};

use super::DurableApp;

/// How the store is, as its commit thread last found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The last commit went through.
    Healthy,
    /// A commit failed: the store was (or is being) opened again, and the
    /// apps it failed restore themselves before their next input. `full`:
    /// the disk (or database) is full; commits go on failing until there
    /// is room, then it heals by itself.
    Healing {
        reason: String,
        full: bool,
        since: SystemTime,
    },
    /// The store cannot even be opened again: inputs are refused at once
    /// until it can.
    Down { reason: String, since: SystemTime },
    /// Nothing more is committed: the store refused the writes of an app
    /// whose lease this node lost ([`Error::Fenced`]). Its node drops the
    /// app; another node runs it.
    Stopped { reason: String },
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy)
    }

    /// `healthy`, `healing` or `down`.
    pub fn name(&self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Healing { .. } => "healing",
            Health::Down { .. } => "down",
            Health::Stopped { .. } => "stopped",
        }
    }

    /// Why it is not healthy.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Health::Healthy => None,
            Health::Healing { reason, .. }
            | Health::Down { reason, .. }
            | Health::Stopped { reason } => Some(reason),
        }
    }
}

/// Why a commit failed, as its waiters are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub reason: String,
    pub full: bool,
    /// Fenced: no healing, nothing more is committed.
    pub fenced: bool,
}

impl Failure {
    pub(crate) fn of(error: &Error) -> Failure {
        match error {
            Error::StateFull { reason } => Failure {
                reason: reason.clone(),
                full: true,
                fenced: false,
            },
            Error::StateWrite { reason } => Failure {
                reason: reason.clone(),
                full: false,
                fenced: false,
            },
            other => Failure {
                reason: other.to_string(),
                full: false,
                fenced: matches!(other, Error::Fenced { .. }),
            },
        }
    }

    pub(crate) fn error(&self) -> Error {
        match self.full {
            true => Error::StateFull {
                reason: self.reason.clone(),
            },
            false => Error::StateWrite {
                reason: self.reason.clone(),
            },
        }
    }
}

/// A store's health, shared by its commit thread (which writes it) and the
/// apps and servers that read it.
#[derive(Debug)]
pub struct StoreHealth {
    state: Mutex<State>,
    /// Commits that failed so far.
    errors: AtomicU64,
    /// How many apps are lost: the check before every input reads this
    /// alone while none is.
    lost: AtomicU64,
    /// Whether `state` says healthy: the refusal check before every input
    /// reads this alone while it does.
    healthy: AtomicBool,
}

#[derive(Debug)]
struct State {
    health: Health,
    /// Apps whose writes are dropped until they have restored themselves.
    lost: HashSet<String>,
    /// Why they were lost, the last time one was.
    last_failure: Option<Failure>,
    /// While the store is full, the last input let through to try it.
    last_trial: Option<Instant>,
}

impl Default for StoreHealth {
    fn default() -> Self {
        StoreHealth {
            state: Mutex::new(State {
                health: Health::Healthy,
                lost: HashSet::new(),
                last_failure: None,
                last_trial: None,
            }),
            errors: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
        }
    }
}

impl StoreHealth {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the health, and the flag that says whether it is healthy.
    fn set(&self, state: &mut State, health: Health) {
        self.healthy.store(health.is_healthy(), Ordering::Release);
        state.health = health;
    }

    pub fn health(&self) -> Health {
        self.state().health.clone()
    }

    /// Commits that failed so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Whether `app` must restore itself from the store before its next
    /// input: a commit of its writes failed.
    pub fn is_lost(&self, app: &str) -> bool {
        self.lost.load(Ordering::Acquire) > 0 && self.state().lost.contains(app)
    }

    /// What an input is refused with before it reaches its app: while the
    /// store cannot be opened, or is full. A full store takes one input
    /// every [`FULL_TRIAL_EVERY`] to find out whether there is room again;
    /// the others are refused at once, so that a full disk does not make
    /// every app restore itself at every input.
    pub(crate) fn refusal(&self) -> Option<Error> {
        if self.healthy.load(Ordering::Acquire) {
            return None;
        }
        let mut state = self.state();
        if let Health::Healing {
            reason, full: true, ..
        } = &state.health
        {
            let reason = reason.clone();
            let now = Instant::now();
            return match state.last_trial {
                Some(at) if now.duration_since(at) < FULL_TRIAL_EVERY => Some(Error::NotTaken {
                    reason: format!("the state's disk is full: {reason}"),
                    full: true,
                }),
                _ => {
                    state.last_trial = Some(now);
                    None
                }
            };
        }
        match &state.health {
            Health::Down { reason, .. } => Some(Error::NotTaken {
                reason: format!("the store cannot be opened again: {reason}"),
                full: false,
            }),
            Health::Stopped { reason } => Some(Error::NotTaken {
                reason: format!("nothing more is written for this app here: {reason}"),
                full: false,
            }),
            _ => None,
        }
    }

    /// Why `app`'s writes were dropped.
    pub(crate) fn lost_because(&self) -> Failure {
        self.state().last_failure.clone().unwrap_or(Failure {
            reason: "an earlier commit of the app's writes failed".into(),
            full: false,
            fenced: false,
        })
    }

    /// A commit failed: `apps` are lost.
    pub(crate) fn failed<'a>(&self, failure: &Failure, apps: impl IntoIterator<Item = &'a str>) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state();
        state.last_failure = Some(failure.clone());
        if failure.fenced {
            let stopped = Health::Stopped {
                reason: failure.reason.clone(),
            };
            self.set(&mut state, stopped);
            return;
        }
        state.lost.extend(apps.into_iter().map(str::to_string));
        self.lost.store(state.lost.len() as u64, Ordering::Release);
        let since = match &state.health {
            Health::Healing { since, .. } | Health::Down { since, .. } => *since,
            Health::Healthy => SystemTime::now(),
            Health::Stopped { .. } => return,
        };
        let healing = Health::Healing {
            reason: failure.reason.clone(),
            full: failure.full,
            since,
        };
        self.set(&mut state, healing);
    }

    /// The store could not be opened again.
    pub(crate) fn down(&self, reason: String) {
        let mut state = self.state();
        let since = match &state.health {
            Health::Healing { since, .. } | Health::Down { since, .. } => *since,
            Health::Healthy => SystemTime::now(),
            Health::Stopped { .. } => return,
        };
        self.set(&mut state, Health::Down { reason, since });
    }

    /// The store was opened again: commits may go through.
    pub(crate) fn reopened(&self) {
        let mut state = self.state();
        if let Health::Down { reason, since } = &state.health {
            let healing = Health::Healing {
                reason: reason.clone(),
                full: false,
                since: *since,
            };
            self.set(&mut state, healing);
        }
    }

    /// A commit went through.
    pub(crate) fn healthy(&self) {
        let mut state = self.state();
        if !matches!(state.health, Health::Stopped { .. }) {
            self.set(&mut state, Health::Healthy);
        }
    }

    /// Whether nothing more is to be committed.
    pub(crate) fn stopped(&self) -> bool {
        matches!(self.state().health, Health::Stopped { .. })
    }

    /// `app` restored itself from the store: its writes count again.
    pub(crate) fn found(&self, app: &str) {
        let mut state = self.state();
        state.lost.remove(app);
        self.lost.store(state.lost.len() as u64, Ordering::Release);
    }
}

impl DurableApp {
    /// Before an input: if a commit of this app's writes failed, its state
    /// in memory may be ahead of the store's. It is restored from what the
    /// store holds now, as a restart would restore it, and its writes count
    /// again. While the store cannot be read, the input is refused and the
    /// next one tries again.
    pub(super) fn heal_if_lost(&mut self) -> Result<()> {
        if !self.committer.health().is_lost(&self.name) {
            return Ok(());
        }
        let restoring = self.restoring.clone();
        let _during = restoring.during();
        let (restored, opened) = self.restored_from_store()?;
        tracing::warn!(
            app = %self.name,
            snapshot = ?opened.snapshot,
            replayed = opened.replayed,
            at = restored.seq,
            "restored from the store after a failed commit"
        );
        *self = DurableApp {
            restores: self.restores,
            restoring: self.restoring.clone(),
            ..restored
        };
        self.committer.found(&self.name)
    }
}
