//! The shared [`StateStore`]: a PostgreSQL database (`--state
//! postgres://user:password@host:port/db`), from which any host can
//! restore any app. The same log, snapshots, code and host options as the
//! SQLite store, in tables named `elmbox_*`. A commit is one transaction,
//! durable when it returns (this connection never commits with
//! `synchronous_commit` off); a group commit's records go in one insert.
//!
//! The schema is elmbox's own: created and migrated on open, in order, in
//! one transaction under an advisory lock, so that nodes starting together
//! do not race; `elmbox_schema` holds the versions applied. A database
//! migrated by a newer elmbox is refused.
//!
//! One process runs an app at a time. Without leases, [`StateStore::claim`]
//! takes a session advisory lock per app, held while the connection lives
//! (the session of a process that died ends with its connection). Nodes
//! that name themselves (`elmbox serve --node-id`) take leases instead
//! ([`Leases`], table `elmbox_leases`): a lease expires by the database's
//! clock unless renewed, a takeover raises its epoch, and every commit
//! checks the epochs of the apps it writes to with `SELECT ... FOR SHARE`
//! on their lease rows, so that a takeover's `UPDATE` of a row waits for a
//! commit in flight, and a commit after it is refused whole. The log's key
//! (app, seq) refuses a second append of a record either way.
//!
//! One connection behind a mutex: the commit thread is the only heavy user.
//! When the connection is lost (the server restarted, say), the operation
//! under way fails with its error (a commit in flight is not durable), and
//! the next one connects again, with the same session settings; while the
//! server is unreachable, operations fail at once, trying again at most
//! every `RECONNECT_PAUSE`. Session advisory locks die with their
//! connection: an app claimed by one (without leases) is refused any
//! further write once the connection was lost, as another process may
//! have claimed it meanwhile, until the commit thread opens the store again
//! after its failed commit ([`StateStore::reopen`]) and claims the app
//! again, if nobody else took it; leases are rows, and outlive connections.
//! A failed commit may yet have reached the database (the acknowledgement
//! lost): its records are in doubt, and rolled back when the node takes
//! the app over again with the very next epoch (see `Session::in_doubt`).
//! No TLS: a URL that requires it (`sslmode=require`) is refused.
//!
//! Rooms: `session.rs` the connection and getting it back, `leases.rs` the
//! leases, `schema.rs` the schema's migrations, `commit.rs` a commit's
//! transaction; this file opening the store and its reads.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, Row, Statement};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::guest::GuestId;

use super::store::{
    code_hash, this_process, without_password, AppSummary, Leases, StateStore, StoredApp,
    StoredSnapshot, Write,
};

mod commit;
mod leases;
mod schema;
mod session;

use schema::{schema_version, MIGRATIONS};
use session::{new_session, Closing, Session};

/// How long opening waits for the server, unless the URL says
/// (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long claiming an app waits for its lock: the session of a process
/// that just died ends only once the server sees its connection closed.
const CLAIM_WAIT: Duration = Duration::from_secs(1);

/// While the server cannot be reached, how long operations fail without
/// trying to connect again.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// A PostgreSQL database, open for this process.
pub struct PostgresStore {
    /// The URL without its password, for messages.
    location: String,
    /// How to connect again, once the connection is lost.
    config: postgres::Config,
    db: Mutex<Session>,
}

impl PostgresStore {
    /// Connects to the database at `url` and brings its schema to this
    /// build's version. Refused with the reason, naming the URL without
    /// its password: not a URL, no server there, a login refused, a schema
    /// newer than this build's.
    pub fn open(url: &str) -> Result<PostgresStore> {
        let store = PostgresStore::connect(url, false)?;
        store.migrate()?;
        Ok(store)
    }

    /// Connects to read the database (`elmbox state`), beside the
    /// processes running its apps: nothing is created, migrated or written.
    pub fn open_read_only(url: &str) -> Result<PostgresStore> {
        let store = PostgresStore::connect(url, true)?;
        let mut db = store.db()?;
        let version = schema_version(&mut *db.client).map_err(|e| store.failed("reading", e))?;
        match version {
            0 => Err(store.bad("it holds no elmbox state".into())),
            v if v < MIGRATIONS.len() as i32 => Err(store.bad(format!(
                "its schema is version {v}, older than this elmbox's {}: open it once to \
                 run apps (which migrates it)",
                MIGRATIONS.len()
            ))),
            v => store.known(v),
        }?;
        drop(db);
        Ok(store)
    }

    /// The database, without the password: what messages name.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn connect(url: &str, read_only: bool) -> Result<PostgresStore> {
        let location = without_password(url);
        let bad = |reason: String| Error::BadState {
            location: location.clone(),
            reason,
        };
        let mut config: postgres::Config = url.parse().map_err(|e| {
            bad(format!(
                "it is not a valid PostgreSQL URL: {}",
                describe(&e)
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            // What another process that finds an app held names.
            config.application_name(&format!("elmbox {}", this_process()));
        }
        // Notices (a table that exists, say) are nobody's business here.
        config.notice_callback(|_| {});
        let client = new_session(&config, read_only).map_err(bad)?;
        Ok(PostgresStore {
            location,
            config,
            db: Mutex::new(Session {
                client: Closing(Some(client)),
                statements: HashMap::new(),
                claimed: HashSet::new(),
                unlocked: HashSet::new(),
                in_doubt: HashMap::new(),
                reconnect_failed: None,
                leased: HashMap::new(),
                lost: HashMap::new(),
                leasing: false,
                read_only,
            }),
        })
    }

    fn bad(&self, reason: String) -> Error {
        Error::BadState {
            location: self.location.clone(),
            reason,
        }
    }

    fn failed(&self, what: &str, e: postgres::Error) -> Error {
        // The server's disk is full (`could not extend file`): refused as
        // a full store, until there is room.
        if e.code() == Some(&postgres::error::SqlState::DISK_FULL) {
            return Error::StateFull {
                reason: format!("{}: {what}: {}", self.location, describe(&e)),
            };
        }
        self.bad(format!("{what}: {}", describe(&e)))
    }

    /// The rows of `sql`; `what` says what was read, if it fails.
    fn rows(&self, what: &str, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.db()?
            .client
            .query(sql, params)
            .map_err(|e| self.failed(what, e))
    }

    /// The row of `sql`, if there is one.
    fn row(&self, what: &str, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        Ok(self.rows(what, sql, params)?.into_iter().next())
    }

    /// Who holds the lock `key`, as its session named itself.
    fn lock_holder(&self, client: &mut Client, key: i64) -> Result<String> {
        let row = client
            .query_opt(
                "SELECT a.application_name, l.pid FROM pg_locks l
                   LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                    AND l.classid = $1 AND l.objid = $2
                  LIMIT 1",
                &[&((key >> 32) as u32), &(key as u32)],
            )
            .map_err(|e| self.failed("finding who holds the app", e))?;
        Ok(match row {
            None => "another process (which has just let it go: try again)".into(),
            Some(row) => {
                let name: Option<String> = row.get(0);
                let pid: i32 = row.get(1);
                match name.filter(|n| !n.is_empty()) {
                    Some(name) => name,
                    None => format!("the database session of server process {pid}"),
                }
            }
        })
    }
}

/// A key for PostgreSQL's advisory locks: elmbox's own, by what it locks.
fn advisory_key(kind: &str, name: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"elmbox\0")
        .chain_update(kind.as_bytes())
        .chain_update(b"\0")
        .chain_update(name.as_bytes())
        .finalize();
    i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The statement `sql`, prepared once per connection.
fn prepared(
    statements: &mut HashMap<&'static str, Statement>,
    client: &mut impl GenericClient,
    sql: &'static str,
) -> Result<Statement, postgres::Error> {
    if let Some(statement) = statements.get(sql) {
        return Ok(statement.clone());
    }
    let statement = client.prepare(sql)?;
    statements.insert(sql, statement.clone());
    Ok(statement)
}

/// What the server said, or why it could not be asked.
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        };
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(next) = cause {
        text.push_str(&format!(": {next}"));
        cause = next.source();
    }
    text
}

/// Why connecting failed, by who refused.
fn refused(e: &postgres::Error) -> String {
    match e.code() {
        Some(code)
            if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            format!("the server refused the login: {}", describe(e))
        }
        Some(_) => format!("the server refused the connection: {}", describe(e)),
        None => format!("cannot connect to the server: {}", describe(e)),
    }
}

impl StateStore for PostgresStore {
    fn leases(&self) -> Option<&dyn Leases> {
        Some(self)
    }

    fn claim(&self, app: &str) -> Result<()> {
        let mut db = self.db()?;
        if db.read_only {
            return Err(self.bad("it was opened to be read, not to run apps".into()));
        }
        self.unlocked(&db, app)?;
        // A lease makes this node the app's only writer: no lock besides.
        if db.claimed.contains(app) || db.leased.contains_key(app) {
            return Ok(());
        }
        // A process without leases (`elmbox run`) keeps off an app a node
        // runs. (A node does not see this process's lock in turn: the two
        // are not to be mixed on one app.)
        let leased = db
            .client
            .query_opt(
                "SELECT node, address FROM elmbox_leases WHERE app = $1 AND expires_at > now()",
                &[&app],
            )
            .map_err(|e| self.failed("reading the app's lease", e))?;
        if let Some(row) = leased {
            let (node, address): (String, String) = (row.get(0), row.get(1));
            return Err(Error::AppInUse {
                app: app.to_string(),
                location: self.location.clone(),
                holder: format!("node `{node}` (elmbox serve at {address}), which holds its lease"),
            });
        }
        let key = advisory_key("app", app);
        let failed = |e| self.failed("claiming the app", e);
        let mut tx = db.client.transaction().map_err(failed)?;
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = {}",
            CLAIM_WAIT.as_millis()
        ))
        .map_err(failed)?;
        // A session lock: held after this transaction, until released or
        // the connection ends.
        match tx.execute("SELECT pg_advisory_lock($1)", &[&key]) {
            Ok(_) => {
                tx.commit().map_err(failed)?;
                db.claimed.insert(app.to_string());
                Ok(())
            }
            Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
                drop(tx);
                Err(Error::AppInUse {
                    app: app.to_string(),
                    location: self.location.clone(),
                    holder: self.lock_holder(&mut db.client, key)?,
                })
            }
            Err(e) => Err(failed(e)),
        }
    }

    fn put_code(&self, bytes: &[u8]) -> Result<String> {
        let hash = code_hash(bytes);
        let mut db = self.db()?;
        let Session {
            client, statements, ..
        } = &mut *db;
        prepared(
            statements,
            &mut **client,
            "INSERT INTO elmbox_code (hash, bytes) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
        )
        .and_then(|insert| client.execute(&insert, &[&hash, &bytes]))
        .map_err(|e| self.failed("storing the app's code", e))?;
        Ok(hash)
    }

    fn code(&self, hash: &str) -> Result<Vec<u8>> {
        let row = self.row(
            "reading the app's code",
            "SELECT bytes FROM elmbox_code WHERE hash = $1",
            &[&hash],
        )?;
        let bytes: Vec<u8> = row
            .ok_or_else(|| self.bad(format!("it has no code stored under {hash}")))?
            .get(0);
        if code_hash(&bytes) != hash {
            return Err(self.bad(format!("the code stored under {hash} is damaged")));
        }
        Ok(bytes)
    }

    fn app(&self, name: &str) -> Result<Option<StoredApp>> {
        let row = self.row(
            "reading the app",
            "SELECT code FROM elmbox_apps WHERE name = $1",
            &[&name],
        )?;
        Ok(row.map(|row| StoredApp {
            name: name.to_string(),
            code: row.get(0),
        }))
    }

    fn host_options(&self, app: &str) -> Result<Option<String>> {
        let row = self.row(
            "reading the app's host options",
            "SELECT options FROM elmbox_host_options WHERE app = $1",
            &[&app],
        )?;
        Ok(row.map(|row| row.get(0)))
    }

    fn timer_due(&self, app: &str) -> Result<Option<i64>> {
        let row = self.row(
            "reading the app's timer",
            "SELECT due_ms FROM elmbox_timers WHERE app = $1",
            &[&app],
        )?;
        Ok(row.map(|row| row.get(0)))
    }

    fn timers_due(&self, by_unix_ms: i64) -> Result<Vec<String>> {
        let rows = self.rows(
            "reading the timers due",
            "SELECT app FROM elmbox_timers WHERE due_ms <= $1 ORDER BY due_ms",
            &[&by_unix_ms],
        )?;
        Ok(rows.into_iter().map(|row| row.get(0)).collect())
    }

    fn apps(&self) -> Result<Vec<AppSummary>> {
        let rows = self.rows(
            "listing apps",
            "SELECT a.name, a.code, count(l.seq), coalesce(sum(octet_length(l.record)), 0),
                    min(l.seq), max(l.seq)
               FROM elmbox_apps a LEFT JOIN elmbox_log l ON l.app = a.name
              GROUP BY a.name, a.code ORDER BY a.name",
            &[],
        )?;
        rows.into_iter()
            .map(|row| {
                let name: String = row.get(0);
                Ok(AppSummary {
                    snapshots: self.snapshots(&name)?,
                    app: StoredApp {
                        name,
                        code: row.get(1),
                    },
                    records: row.get::<_, i64>(2) as u64,
                    log_bytes: row.get::<_, i64>(3) as u64,
                    kept: row
                        .get::<_, Option<i64>>(4)
                        .zip(row.get::<_, Option<i64>>(5))
                        .map(|(first, last)| (first as u64, last as u64)),
                })
            })
            .collect()
    }

    fn bytes(&self) -> Result<u64> {
        // elmbox's tables with their indexes and TOAST (where snapshots go).
        let rows = self.rows(
            "measuring the store",
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind = 'r' AND c.relname LIKE 'elmbox\\_%'
                AND n.nspname = current_schema()",
            &[],
        )?;
        Ok(rows.first().map_or(0, |row| row.get::<_, i64>(0)) as u64)
    }

    fn commit(&self, writes: &[Write]) -> Result<()> {
        let mut db = self.db()?;
        for write in writes {
            self.unlocked(&db, write.app())?;
        }
        let committed = self.commit_on(&mut db, writes);
        if committed.is_ok() {
            for write in writes {
                db.in_doubt.remove(write.app());
            }
        } else {
            // The server may have committed before the connection went (or
            // before its error reached this process): the records are in
            // doubt until this node takes the app over again (unanswered
            // meanwhile, by the output gate). Fenced, the app is not held.
            for write in writes {
                let Write::Record { app, record } = write else {
                    continue;
                };
                let Some(held) = db.leased.get(app.as_str()).map(|held| held.epoch) else {
                    continue;
                };
                let doubt = db
                    .in_doubt
                    .entry(app.to_string())
                    .or_insert((held, record.seq));
                doubt.1 = doubt.1.min(record.seq);
            }
        }
        committed
    }

    fn reopen(&self) -> Result<()> {
        self.reopen_session()
    }

    fn log_rows(&self, app: &str, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        let rows = self.rows(
            "reading the log",
            "SELECT seq, record FROM elmbox_log WHERE app = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&app, &(after as i64), &(limit as i64)],
        )?;
        Ok(rows
            .into_iter()
            .map(|row| (row.get::<_, i64>(0) as u64, row.get(1)))
            .collect())
    }

    fn cut_log(&self, app: &str, from: u64) -> Result<()> {
        self.db()?
            .client
            .execute(
                "DELETE FROM elmbox_log WHERE app = $1 AND seq >= $2",
                &[&app, &(from as i64)],
            )
            .map_err(|e| self.failed("cutting a damaged log tail", e))?;
        Ok(())
    }

    fn snapshots(&self, app: &str) -> Result<Vec<StoredSnapshot>> {
        let rows = self.rows(
            "listing snapshots",
            "SELECT seq, guest, code, octet_length(bytes)::bigint FROM elmbox_snapshots
              WHERE app = $1 ORDER BY seq DESC",
            &[&app],
        )?;
        Ok(rows
            .into_iter()
            .map(|row| StoredSnapshot {
                seq: row.get::<_, i64>(0) as u64,
                guest: GuestId::from_hex(row.get(1)),
                code: row.get(2),
                bytes: row.get::<_, i64>(3) as u64,
            })
            .collect())
    }

    fn snapshot(&self, app: &str, seq: u64) -> Result<Vec<u8>> {
        let row = self.row(
            "reading a snapshot",
            "SELECT bytes FROM elmbox_snapshots WHERE app = $1 AND seq = $2",
            &[&app, &(seq as i64)],
        )?;
        row.map(|row| row.get(0))
            .ok_or_else(|| self.bad(format!("app `{app}` has no snapshot after event {seq}")))
    }
}
