//! What a durable app's state is kept in ([`StateStore`]): per app, an
//! append-only log of [`Record`]s, the app's code and settings under their
//! content hash, and snapshots of its sandbox. A small trait, so that an
//! embedded store (SQLite, `sqlite.rs`) and a shared database (PostgreSQL,
//! `postgres.rs`) both stand behind it.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::guest::GuestId;

use super::log::Record;
use super::retention::RetainLog;

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
    /// The app is gone: its log, snapshots, host options and timer with it
    /// (its code stays, under its hash).
    Remove { app: String },
    /// When the app's earliest timer is due, in ms since the Unix epoch by
    /// the wall clock (`None`: it has none): kept so that whoever opens
    /// the store knows when to wake the app without opening it, a node
    /// taking over an app whose node died, say. Never later than the
    /// timer: a kept time may be early, never late.
    TimerDue {
        app: String,
        due_unix_ms: Option<i64>,
    },
    /// A snapshot of the app's sandbox after record `seq` (0: after load),
    /// taken from `guest` running the code stored under `code`; the store
    /// then keeps as many snapshots, and as much of the log, as `retain`
    /// says, in the same commit.
    Snapshot {
        app: String,
        seq: u64,
        guest: GuestId,
        code: String,
        bytes: Vec<u8>,
        retain: RetainLog,
    },
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
    /// The first and last records kept (`None`: an empty log); the first
    /// is after 1 when retention dropped the history before it.
    pub kept: Option<(u64, u64)>,
    pub snapshots: Vec<StoredSnapshot>,
}

/// Who holds an app's lease ([`Leases`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub node: String,
    /// Where that node takes requests (its `--advertise`).
    pub address: String,
    pub epoch: u64,
    /// Not expired by the database's clock.
    pub live: bool,
}

/// What acquiring an app's lease came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// This node holds it, at this epoch (its fencing token).
    Held { epoch: u64 },
    /// Another node holds it, and its lease is live.
    Refused(LeaseHolder),
}

/// Leases on apps, for a store that many nodes share: a node runs an app
/// only while it holds the app's lease, and every write the store commits
/// for an app it leased checks, in the same transaction, that the lease
/// still carries its epoch (else [`crate::Error::Fenced`]). Once a store
/// has acquired a lease, it refuses writes for apps it holds none of.
/// Expiry is by the database's clock, never the nodes'.
pub trait Leases: Send + Sync {
    /// Takes the app's lease for `node` (reachable at `address`) for `ttl`:
    /// a new lease, or one that expired or that `node` held before (in an
    /// earlier process) with the next epoch; one this store holds already
    /// is renewed. Refused while another node's lease is live.
    fn acquire(&self, app: &str, node: &str, address: &str, ttl: Duration) -> Result<Acquired>;
    /// Extends the lease this store holds on `app` by `ttl` from now, if the
    /// database still gives it this store's node and epoch; `false` (and
    /// the lease forgotten) if not.
    fn renew(&self, app: &str, ttl: Duration) -> Result<bool>;
    /// Lets the lease go at once (a clean stop), so that another node need
    /// not wait for it to expire.
    fn release(&self, app: &str) -> Result<()>;
    /// The apps this store holds leases on.
    fn leased(&self) -> Vec<String>;
    /// Who holds the app's lease, if anybody ever did.
    fn holder(&self, app: &str) -> Result<Option<LeaseHolder>>;
}

pub trait StateStore: Send + Sync {
    /// The store's leases, if it is shared between nodes. `None`: one
    /// process holds the store whole (a state directory, locked when
    /// opened) and has nobody to fence.
    fn leases(&self) -> Option<&dyn Leases> {
        None
    }
    /// Takes the app for this process before it is opened: one process at
    /// a time runs an app. Refused ([`Error::AppInUse`](crate::Error::AppInUse)) while another
    /// holds it. A store that one process holds whole (a state directory,
    /// locked when opened) has nothing more to take.
    fn claim(&self, _app: &str) -> Result<()> {
        Ok(())
    }
    /// Keeps `bytes` (an app's settings and code) under their content hash,
    /// durably; returns the hash.
    fn put_code(&self, bytes: &[u8]) -> Result<String>;
    /// The bytes stored under `hash`.
    fn code(&self, hash: &str) -> Result<Vec<u8>>;
    fn app(&self, name: &str) -> Result<Option<StoredApp>>;
    /// What [`Write::HostOptions`] last kept for the app.
    fn host_options(&self, app: &str) -> Result<Option<String>>;
    /// What [`Write::TimerDue`] last kept for the app.
    fn timer_due(&self, app: &str) -> Result<Option<i64>>;
    /// The apps whose kept timer is due by `by_unix_ms`, earliest first.
    fn timers_due(&self, by_unix_ms: i64) -> Result<Vec<String>>;
    fn apps(&self) -> Result<Vec<AppSummary>>;
    /// What the whole store takes on disk, in bytes (space freed by
    /// retention is reused by later writes, not given back).
    fn bytes(&self) -> Result<u64>;
    /// Makes `writes` durable, all or none: when this returns, they survive
    /// a crash of the process and of the machine.
    fn commit(&self, writes: &[Write]) -> Result<()>;
    /// Stops using the connection and opens the store again: after a
    /// failed commit, what the connection knows is not to be trusted (a
    /// failed fsync is never retried). A store full of space errors
    /// ([`Error::StateFull`](crate::Error::StateFull)) opens again and fails its commits until
    /// there is room. Nothing to do for a store without a connection.
    fn reopen(&self) -> Result<()> {
        Ok(())
    }
    /// Up to `limit` rows of the app's log after record `after`, in order,
    /// as stored: `(seq, record bytes)`. What a replay reads, a page at a
    /// time (`log_pages.rs`).
    fn log_rows(&self, app: &str, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>>;
    /// The seq of the app's first record kept (`None`: its log is empty):
    /// 1, unless retention dropped the history before it.
    fn log_start(&self, app: &str) -> Result<Option<u64>> {
        Ok(self.log_rows(app, 0, 1)?.first().map(|(seq, _)| *seq))
    }
    /// Deletes the app's log from record `from` on: a damaged tail.
    fn cut_log(&self, app: &str, from: u64) -> Result<()>;
    /// The app's snapshots, newest first.
    fn snapshots(&self, app: &str) -> Result<Vec<StoredSnapshot>>;
    fn snapshot(&self, app: &str, seq: u64) -> Result<Vec<u8>>;
}

impl Write {
    /// The app it writes to.
    pub fn app(&self) -> &str {
        match self {
            Write::App { name, .. } => name,
            Write::Record { app, .. }
            | Write::HostOptions { app, .. }
            | Write::TimerDue { app, .. }
            | Write::Remove { app }
            | Write::Snapshot { app, .. } => app,
        }
    }
}

/// The content hash an app's code is kept under ([`StateStore::put_code`]).
pub(crate) fn code_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How a store names this process to another that finds the state (or an
/// app) held.
pub(crate) fn this_process() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into());
    format!("process {} on {host}", std::process::id())
}

/// `url` less its password, to name the database in messages and logs:
/// of what comes before the last `@` only the user is kept (the last, not
/// the first as the client reads it: a password with an `@` or a `/` that
/// was not percent-encoded is hidden all the same), and a `password`
/// parameter is left out.
pub(crate) fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let rest = match rest.rsplit_once('@') {
        Some((credentials, after)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{user}@{after}")
        }
        None => rest.to_string(),
    };
    let Some((path, query)) = rest.split_once('?') else {
        return format!("{scheme}://{rest}");
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.starts_with("password="))
        .collect();
    match kept.is_empty() {
        true => format!("{scheme}://{path}"),
        false => format!("{scheme}://{path}?{}", kept.join("&")),
    }
}
