//! What a durable app's state is kept in ([`StateStore`]): per app, an
//! append-only log of [`Record`]s, the app's code and settings under their
//! content hash, and snapshots of its sandbox. A small trait, so that an
//! embedded store (SQLite, `sqlite.rs`) and a shared database can both
//! stand behind it.

use crate::error::Result;
use crate::guest::GuestId;

use super::log::Record;

/// An app as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApp {
    pub name: String,
    /// The content hash of the code and settings it runs now.
    pub code: String,
}

/// One write of a group commit.
#[derive(Debug, Clone)]
pub enum Write {
    /// The app runs (from now on) the code stored under `code`.
    App { name: String, code: String },
    /// The next record of the app's log.
    Record { app: String, record: Record },
    /// What the host that runs the app keeps with it (a server's limits
    /// for it, say): opaque to the store, read back by
    /// [`StateStore::host_options`].
    HostOptions { app: String, options: String },
    /// The app is gone: its log, snapshots and host options with it (its
    /// code stays, under its hash).
    Remove { app: String },
    /// A snapshot of the app's sandbox after record `seq` (0: after load),
    /// taken from `guest` running the code stored under `code`.
    Snapshot {
        app: String,
        seq: u64,
        guest: GuestId,
        code: String,
        bytes: Vec<u8>,
    },
}

/// An app's log as read back: the records that check out, in order, and
/// how many damaged records at its end were cut (a write torn by a crash).
#[derive(Debug, Default)]
pub struct LogRead {
    pub records: Vec<Record>,
    pub cut: u64,
}

/// A snapshot the store holds, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub seq: u64,
    pub guest: GuestId,
    pub code: String,
    pub bytes: u64,
}

/// What a store holds, for `elmbox state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSummary {
    pub app: StoredApp,
    pub records: u64,
    pub log_bytes: u64,
    pub snapshots: Vec<StoredSnapshot>,
}

pub trait StateStore: Send + Sync {
    /// Keeps `bytes` (an app's settings and code) under their content hash,
    /// durably; returns the hash.
    fn put_code(&self, bytes: &[u8]) -> Result<String>;
    /// The bytes stored under `hash`.
    fn code(&self, hash: &str) -> Result<Vec<u8>>;
    fn app(&self, name: &str) -> Result<Option<StoredApp>>;
    /// What [`Write::HostOptions`] last kept for the app.
    fn host_options(&self, app: &str) -> Result<Option<String>>;
    fn apps(&self) -> Result<Vec<AppSummary>>;
    /// Makes `writes` durable, all or none: when this returns, they survive
    /// a crash of the process and of the machine.
    fn commit(&self, writes: &[Write]) -> Result<()>;
    /// The app's log after record `after`. Damaged records at the end are
    /// cut from the store (they were never acknowledged: a crash tore the
    /// write); a damaged record before a sound one is an error.
    fn log(&self, app: &str, after: u64) -> Result<LogRead>;
    /// The app's snapshots, newest first.
    fn snapshots(&self, app: &str) -> Result<Vec<StoredSnapshot>>;
    fn snapshot(&self, app: &str, seq: u64) -> Result<Vec<u8>>;
}
