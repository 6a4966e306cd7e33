//! Everything that can go wrong, typed, each saying what was wrong. The
//! app's own errors are [`AppError`], worded once in `elmbox-abi` for the
//! library and built modules alike; the rest are the host's.

pub use elmbox_abi::{AppError, FaultSite, PortDirection, Thrown};
use serde_json::Value;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The app could not load, or could not handle an event: its own fault
    /// or its input's (a syntax error, a missing port, a throw, an event
    /// that is not JSON or too large, ...). Unless
    /// [`AppError::is_fatal`], the app goes on. `outputs` holds what the app
    /// sent on its outgoing port before it threw; it is empty otherwise.
    #[error("{error}")]
    App {
        error: AppError,
        outputs: Vec<Value>,
    },

    /// A call ran past its CPU deadline and was stopped mid-way. The app is
    /// marked failed.
    #[error("the app ran past its CPU deadline of {limit_ms} ms and was stopped")]
    DeadlineExceeded { limit_ms: u64 },

    /// The guest needed more linear memory than its cap allows. Fatal when
    /// the guest itself could not continue; an app whose JavaScript merely
    /// got an out-of-memory exception keeps running.
    #[error("the app reached its linear memory cap of {limit} bytes: {detail}")]
    MemoryCapReached {
        limit: usize,
        detail: String,
        fatal: bool,
    },

    /// The guest trapped (out of stack, a bug in the guest). The instance is
    /// marked failed: its memory may be inconsistent.
    #[error("the app's sandbox crashed: {reason}")]
    Crashed { reason: String },

    /// The app's instance faulted (`cause`) and was started again: in a
    /// [`Pool`](crate::Pool) whose fault policy is to restore, from its
    /// image, with the state right after `init` (`after` is `None`); a
    /// [`DurableApp`](crate::DurableApp), from its store, with the state
    /// it had before the faulty event, number `before`, which is skipped.
    #[error("{cause}; {}", restored(.before, .restores))]
    Restored {
        cause: Box<Error>,
        restores: u64,
        before: Option<u64>,
    },

    /// A name that breaks the rule for app names (`rule`, from
    /// `app_name`); `name` as `app_name::printable` shows it.
    #[error("`{name}` cannot name an app: app names are {rule}")]
    BadAppName { name: String, rule: &'static str },

    #[error("no app named `{name}` in the pool")]
    NoSuchApp { name: String },

    #[error("an app named `{name}` is already in the pool")]
    AppExists { name: String },

    #[error("the pool is full: it holds at most {max_apps} apps")]
    PoolFull { max_apps: u32 },

    /// A call on an app that failed earlier.
    #[error("the app failed earlier and takes no more events: {reason}")]
    Failed { reason: String },

    /// A sandbox state ([`SandboxState`](crate::SandboxState)) that cannot
    /// be restored: damaged, not a snapshot, or from another guest build.
    #[error("cannot restore this snapshot: {reason}")]
    BadSnapshot { reason: String },

    /// A state location that cannot be used: a directory that is not one
    /// or not writable, a database that cannot be reached or logged into,
    /// or a store that is damaged. `location` is the directory, or the
    /// database's URL without its password.
    #[error("cannot use the state in {location}: {reason}")]
    BadState { location: String, reason: String },

    /// Another process holds the state directory.
    #[error("the state in {location} is in use by {holder}")]
    StateLocked { location: String, holder: String },

    /// Another process runs the app, in a store that many processes share.
    #[error("the app `{app}` in {location} is in use by {holder}")]
    AppInUse {
        app: String,
        location: String,
        holder: String,
    },

    /// This node lost the app's lease (another node took the app over, or
    /// the lease could not be renewed in time): its writes for the app are
    /// refused, in the transaction that carried them, and it writes
    /// nothing more for it.
    #[error(
        "app `{app}` is fenced off this node: it held the app's lease at epoch {held}, \
             and {now}; nothing more is written for it here"
    )]
    Fenced {
        app: String,
        held: u64,
        /// What the database says now.
        now: String,
    },

    /// Writing the state failed (a failing disk, a lost connection): the
    /// input was not answered, and the app restores itself from what the
    /// store holds before its next one (`durable::healing`).
    #[error("cannot write the state: {reason}")]
    StateWrite { reason: String },

    /// The store's disk (or database) is full: as [`Error::StateWrite`],
    /// until there is room again.
    #[error("the state's disk is full: {reason}")]
    StateFull { reason: String },

    /// An input refused before its app saw anything of it, because the
    /// store cannot take it now (`full`: its disk is full; else it cannot
    /// be opened, or this node writes nothing more for the app): safe to
    /// send again.
    #[error("not taken (the app saw nothing of it): {reason}")]
    NotTaken { reason: String, full: bool },

    /// An app's log is damaged where it cannot simply be cut.
    #[error("the event log is damaged: {reason}")]
    BadLog { reason: String },

    /// The app's code or settings differ from the recorded ones, and no
    /// deploy was asked for.
    #[error(
        "the app's code differs from the recorded one (recorded {recorded}, given {given}): \
         deploy it (replaying the log through it) or start it fresh"
    )]
    CodeChanged { recorded: String, given: String },

    /// A new version failed on a logged event, so it was not deployed; the
    /// old version runs on.
    #[error("the new version was not deployed: on logged event {seq} it {error}")]
    DeployRefused { seq: u64, error: String },

    /// A replay from the app's start was asked for, but retention
    /// (`--retain-log`) dropped the history before `first_kept`.
    #[error(
        "`{app}` cannot be replayed from its start: its log begins at event {first_kept}, \
         the events before it dropped by its retention (--retain-log); deploy the new version \
         with --migrate (its state carried over) or --fresh (started from init)"
    )]
    HistoryDropped { app: String, first_kept: u64 },

    /// A new version by migration was refused: the old version does not
    /// export its model, or the new one does not start from it. The old
    /// version runs on.
    #[error("the new version was not deployed by migration: {reason}")]
    MigrationRefused { reason: String },

    /// Replaying the log gave another outcome than the one recorded: the app
    /// is not deterministic, or its state is not what the log says.
    #[error("replaying the log diverged at event {seq}: recorded {recorded}, replay gave {now}")]
    Diverged {
        seq: u64,
        recorded: String,
        now: String,
    },

    /// A module given as a pre-initialised app that is not one.
    #[error("not an app module made by `elmbox build`: {reason}")]
    BadModule { reason: String },

    #[error("invalid configuration: {0}")]
    Config(String),

    /// Setting up wasmtime failed (a host or guest-module problem, not the app's).
    #[error("wasm engine: {0:#}")]
    Engine(anyhow::Error),
}

impl From<wasmtime::Error> for Error {
    fn from(e: wasmtime::Error) -> Self {
        Error::Engine(e.into())
    }
}

/// An app error with nothing sent before it.
impl From<AppError> for Error {
    fn from(error: AppError) -> Self {
        match error {
            // Stopped inside the sandbox (QuickJS's interrupt handler): the
            // same failure as one stopped from outside.
            AppError::DeadlineExceeded { limit_ms } => Error::DeadlineExceeded { limit_ms },
            error => Error::App {
                error,
                outputs: Vec::new(),
            },
        }
    }
}

impl Error {
    /// Whether the app can still take events after this error.
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::App { error, .. } => error.is_fatal(),
            Error::Crashed { .. } | Error::Failed { .. } | Error::DeadlineExceeded { .. } => true,
            Error::MemoryCapReached { fatal, .. } => *fatal,
            _ => false,
        }
    }
}

/// `elmbox run` serves the line protocol with the library's errors.
impl elmbox_abi::lines::EventFailure for Error {
    fn is_fatal(&self) -> bool {
        Error::is_fatal(self)
    }
}

/// How [`Error::Restored`] says where the app was restored to.
fn restored(before: &Option<u64>, restores: &u64) -> String {
    match before {
        None => format!(
            "the app was restored from its snapshot (state reset to after init; restore {restores})"
        ),
        Some(seq) => format!(
            "the app was restored from its store to its state before event {seq}, which is skipped (restore {restores})"
        ),
    }
}

impl Error {
    /// [`Error::BadModule`], saying why.
    pub(crate) fn bad_module(reason: impl Into<String>) -> Error {
        Error::BadModule {
            reason: reason.into(),
        }
    }

    /// A module that is the bare guest: no app was built into it.
    pub(crate) fn bare_guest() -> Error {
        Error::bad_module("it holds no app: it is the bare guest, not the output of `elmbox build`")
    }
}
