//! The one connection to the database (`Session`, behind the store's
//! mutex), what it holds (prepared statements, the apps it claimed with
//! session advisory locks, the leases), and getting it back: connected
//! again when it is lost, and opened again on purpose after a failed
//! commit (`StateStore::reopen`), when the locks it held are claimed again
//! unless another process took their apps meanwhile.

use std::collections::{HashMap, HashSet};
use std::sync::MutexGuard;
use std::time::Instant;

use postgres::{Client, NoTls, Statement};

use crate::error::{Error, Result};

use super::{advisory_key, describe, refused, PostgresStore, RECONNECT_PAUSE};

/// The connection, the statements prepared on it, and the apps whose lock
/// or lease it holds.
pub(super) struct Session {
    pub(super) client: Closing,
    pub(super) statements: HashMap<&'static str, Statement>,
    pub(super) claimed: HashSet<String>,
    /// Apps claimed on a connection since lost, with their locks: refused
    /// every write from then on.
    pub(super) unlocked: HashSet<String>,
    /// Apps whose last commit failed (the connection lost, say), so that
    /// it may have been committed without this process hearing so: the epoch
    /// of their lease, and the first event record of that commit. They
    /// are rolled back when this node takes the app over next, if nobody
    /// else held it meanwhile (see [`Leases::acquire`]).
    pub(super) in_doubt: HashMap<String, (u64, u64)>,
    /// When connecting again last failed, and why.
    pub(super) reconnect_failed: Option<(Instant, String)>,
    /// The leases held, by app.
    pub(super) leased: HashMap<String, HeldLease>,
    /// The epochs of leases lost (not renewed in time, or fenced), by app:
    /// for the message that refuses their writes.
    pub(super) lost: HashMap<String, u64>,
    /// Set by the first lease acquired: from then on a write for an app
    /// without a lease is refused (one lost, say).
    pub(super) leasing: bool,
    pub(super) read_only: bool,
}

pub(super) struct HeldLease {
    pub(super) node: String,
    pub(super) epoch: u64,
}

/// A client closed on a thread of its own: it owns a tokio runtime, which
/// may not be dropped inside another runtime's async context (where
/// `elmbox serve` may drop the last handle on its store).
pub(super) struct Closing(pub(super) Option<Client>);

impl Drop for Closing {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

impl std::ops::Deref for Closing {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.0.as_ref().expect("taken only when dropped")
    }
}

impl std::ops::DerefMut for Closing {
    fn deref_mut(&mut self) -> &mut Client {
        self.0.as_mut().expect("taken only when dropped")
    }
}

impl PostgresStore {
    /// The session, connected again if its connection was lost.
    pub(super) fn db(&self) -> Result<MutexGuard<'_, Session>> {
        let mut db = self.session();
        if db.client.is_closed() {
            self.reconnect(&mut db)?;
        }
        Ok(db)
    }

    /// The session as it is, connected or not.
    pub(super) fn session(&self) -> MutexGuard<'_, Session> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the session's lost connection with a new one, unless the
    /// last try failed moments ago.
    fn reconnect(&self, db: &mut Session) -> Result<()> {
        if let Some((when, reason)) = &db.reconnect_failed {
            if when.elapsed() < RECONNECT_PAUSE {
                return Err(self.lost_connection(reason));
            }
        }
        match new_session(&self.config, db.read_only) {
            Ok(client) => {
                db.client = Closing(Some(client));
                db.statements.clear();
                db.reconnect_failed = None;
                let claimed: Vec<String> = db.claimed.drain().collect();
                db.unlocked.extend(claimed);
                Ok(())
            }
            Err(reason) => {
                let e = self.lost_connection(&reason);
                db.reconnect_failed = Some((Instant::now(), reason));
                Err(e)
            }
        }
    }

    fn lost_connection(&self, reason: &str) -> Error {
        self.bad(format!(
            "the connection to it was lost, and connecting again failed: {reason}"
        ))
    }

    /// Refused if `app` was claimed on a connection since lost.
    pub(super) fn unlocked(&self, db: &Session, app: &str) -> Result<()> {
        match db.unlocked.contains(app) {
            true => Err(self.bad(format!(
                "the lock on app `{app}` was lost with the connection to the database \
                 (another process may run it now): restart this process to run it again"
            ))),
            false => Ok(()),
        }
    }

    /// A new connection in place of the old one, whatever it looks like:
    /// after a failed commit its state is not to be trusted. The apps
    /// claimed on the old one are claimed again if no other process took
    /// them meanwhile (a lock taken at once, or not at all): their state
    /// is what this store holds, which they restore themselves from.
    pub(super) fn reopen_session(&self) -> Result<()> {
        let mut db = self.session();
        if !db.client.is_closed() {
            let claimed: Vec<String> = db.claimed.drain().collect();
            db.unlocked.extend(claimed);
            db.client = Closing(None);
        }
        self.reconnect(&mut db)?;
        let unlocked: Vec<String> = db.unlocked.iter().cloned().collect();
        for app in unlocked {
            let key = advisory_key("app", &app);
            let taken = db
                .client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .map_err(|e| self.failed("claiming an app again", e))?
                .get::<_, bool>(0);
            if taken {
                db.unlocked.remove(&app);
                db.claimed.insert(app);
            }
        }
        Ok(())
    }
}

/// A new connection from `config`, with the session's settings; why not.
pub(super) fn new_session(config: &postgres::Config, read_only: bool) -> Result<Client, String> {
    let mut client = config.connect(NoTls).map_err(|e| refused(&e))?;
    let setup = match read_only {
        true => "SET default_transaction_read_only = on",
        // A commit must be durable when it returns: never without
        // waiting for the server's WAL flush, whatever its default.
        false => {
            "DO $$ BEGIN IF current_setting('synchronous_commit') = 'off' THEN
                 SET synchronous_commit = on; END IF; END $$"
        }
    };
    client
        .batch_execute(setup)
        .map_err(|e| format!("setting up the session: {}", describe(&e)))?;
    Ok(client)
}
