//! The embedded [`StateStore`]: one SQLite database in a directory of its
//! own (bundled SQLite, write-ahead log, `synchronous=FULL`, so a commit
//! has reached the disk when it returns), and a lock file that keeps a
//! second process out while one holds the directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::guest::GuestId;

use super::store::{
    code_hash, this_process, AppSummary, StateStore, StoredApp, StoredSnapshot, Write,
};

const DATABASE: &str = "elmbox.sqlite";
const LOCK: &str = "elmbox.lock";
const SCHEMA_VERSION: i64 = 1;

/// A state directory, open and locked by this process.
pub struct SqliteStore {
    dir: PathBuf,
    db: Mutex<Connection>,
    read_only: bool,
    /// Held for the store's life: the lock is released when it is dropped.
    _lock: File,
}

impl SqliteStore {
    /// Opens the state directory `dir`, making it if it does not exist.
    /// Refused when it is not one (it holds other files), cannot be written,
    /// or another process holds it (naming that process).
    pub fn open(dir: impl AsRef<Path>) -> Result<SqliteStore> {
        let dir = dir.as_ref().to_path_buf();
        let bad = |why: String| Error::BadState {
            location: dir.display().to_string(),
            reason: why,
        };
        if dir.exists() && !dir.is_dir() {
            return Err(bad("it is not a directory".into()));
        }
        std::fs::create_dir_all(&dir).map_err(|e| bad(format!("cannot create it: {e}")))?;
        let database = dir.join(DATABASE);
        if !database.exists() {
            let others: Vec<String> = std::fs::read_dir(&dir)
                .map_err(|e| bad(format!("cannot read it: {e}")))?
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name != LOCK)
                .collect();
            if !others.is_empty() {
                return Err(bad(format!(
                    "it is not an elmbox state directory: it holds other files ({})",
                    others.join(", ")
                )));
            }
        }
        let lock = lock(&dir).map_err(|e| match e {
            Locked::By(holder) => Error::StateLocked {
                location: dir.display().to_string(),
                holder,
            },
            Locked::Io(e) => bad(format!("cannot take its lock file: {e}")),
        })?;
        let db = Connection::open(&database).map_err(|e| bad(format!("cannot open it: {e}")))?;
        setup(&db).map_err(|e| bad(e.to_string()))?;
        Ok(SqliteStore {
            dir,
            db: Mutex::new(db),
            read_only: false,
            _lock: lock,
        })
    }

    /// Opens the state directory `dir` to read it, beside a process that
    /// may be running it (SQLite's write-ahead log lets readers in).
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<SqliteStore> {
        let dir = dir.as_ref().to_path_buf();
        let bad = |why: String| Error::BadState {
            location: dir.display().to_string(),
            reason: why,
        };
        let database = dir.join(DATABASE);
        if !database.is_file() {
            return Err(bad("it holds no elmbox state".into()));
        }
        let db = Connection::open_with_flags(&database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| bad(format!("cannot open it: {e}")))?;
        let lock = File::open(dir.join(LOCK))
            .map_err(|e| bad(format!("cannot open its lock file: {e}")))?;
        Ok(SqliteStore {
            dir,
            db: Mutex::new(db),
            read_only: true,
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn failed(&self, what: &str, e: rusqlite::Error) -> Error {
        let full = e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull);
        match full {
            true => Error::StateFull {
                reason: format!("{}: {what}: {e}", self.dir.display()),
            },
            false => Error::BadState {
                location: self.dir.display().to_string(),
                reason: format!("{what}: {e}"),
            },
        }
    }
}

enum Locked {
    By(String),
    Io(std::io::Error),
}

/// Takes the directory's lock file, and writes this process's id in it so
/// a second opener can name the holder.
fn lock(dir: &Path) -> std::result::Result<File, Locked> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK))
        .map_err(Locked::Io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Locked::By(if holder.is_empty() {
                "another process".to_string()
            } else {
                holder.to_string()
            }));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Locked::Io(e)),
    }
    let me = this_process();
    file.set_len(0).map_err(Locked::Io)?;
    file.rewind().map_err(Locked::Io)?;
    file.write_all(me.as_bytes()).map_err(Locked::Io)?;
    file.sync_all().map_err(Locked::Io)?;
    Ok(file)
}

/// Overrides `synchronous=FULL`, for one test alone: the power-loss test's
/// negative control sets `OFF` to show that the test catches a store that
/// does not sync. Never set it to run anything.
const UNSAFE_SYNCHRONOUS: &str = "ELMBOX_UNSAFE_SQLITE_SYNCHRONOUS";

fn setup(db: &Connection) -> rusqlite::Result<()> {
    // WAL: readers never block the writer; FULL: a commit is on disk when it
    // returns (the output gate releases answers only then).
    db.pragma_update(None, "journal_mode", "WAL")?;
    let synchronous = std::env::var(UNSAFE_SYNCHRONOUS).unwrap_or_else(|_| "FULL".into());
    db.pragma_update(None, "synchronous", synchronous)?;
    db.busy_timeout(std::time::Duration::from_secs(5))?;
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS code (hash TEXT PRIMARY KEY, bytes BLOB NOT NULL) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS apps (name TEXT PRIMARY KEY, code TEXT NOT NULL) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS timers (app TEXT PRIMARY KEY, due_ms INTEGER NOT NULL)
             WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS host_options (app TEXT PRIMARY KEY, options TEXT NOT NULL)
             WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS log (
             app TEXT NOT NULL, seq INTEGER NOT NULL, record BLOB NOT NULL,
             PRIMARY KEY (app, seq)) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS snapshots (
             app TEXT NOT NULL, seq INTEGER NOT NULL, guest TEXT NOT NULL, code TEXT NOT NULL,
             bytes BLOB NOT NULL,
             PRIMARY KEY (app, seq)) WITHOUT ROWID;",
    )?;
    let version: Option<i64> = db
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .optional()?;
    match version {
        None => {
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                [SCHEMA_VERSION],
            )?;
        }
        Some(SCHEMA_VERSION) => {}
        Some(other) => {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!(
                    "the store's schema is version {other}, this elmbox knows {SCHEMA_VERSION}"
                )
                .into(),
            ))
        }
    }
    Ok(())
}

impl StateStore for SqliteStore {
    fn put_code(&self, bytes: &[u8]) -> Result<String> {
        let hash = code_hash(bytes);
        self.db()
            .execute(
                "INSERT OR IGNORE INTO code (hash, bytes) VALUES (?1, ?2)",
                params![hash, bytes],
            )
            .map_err(|e| self.failed("storing the app's code", e))?;
        Ok(hash)
    }

    fn code(&self, hash: &str) -> Result<Vec<u8>> {
        let bytes: Option<Vec<u8>> = self
            .db()
            .query_row("SELECT bytes FROM code WHERE hash = ?1", [hash], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.failed("reading the app's code", e))?;
        let bytes = bytes.ok_or_else(|| Error::BadState {
            location: self.dir.display().to_string(),
            reason: format!("it has no code stored under {hash}"),
        })?;
        if code_hash(&bytes) != hash {
            return Err(Error::BadState {
                location: self.dir.display().to_string(),
                reason: format!("the code stored under {hash} is damaged"),
            });
        }
        Ok(bytes)
    }

    fn app(&self, name: &str) -> Result<Option<StoredApp>> {
        self.db()
            .query_row("SELECT code FROM apps WHERE name = ?1", [name], |r| {
                Ok(StoredApp {
                    name: name.to_string(),
                    code: r.get(0)?,
                })
            })
            .optional()
            .map_err(|e| self.failed("reading the app", e))
    }

    fn host_options(&self, app: &str) -> Result<Option<String>> {
        self.db()
            .query_row(
                "SELECT options FROM host_options WHERE app = ?1",
                [app],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.failed("reading the app's host options", e))
    }

    fn timer_due(&self, app: &str) -> Result<Option<i64>> {
        self.db()
            .query_row("SELECT due_ms FROM timers WHERE app = ?1", [app], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.failed("reading the app's timer", e))
    }

    fn timers_due(&self, by_unix_ms: i64) -> Result<Vec<String>> {
        let db = self.db();
        let mut query = db
            .prepare("SELECT app FROM timers WHERE due_ms <= ?1 ORDER BY due_ms")
            .map_err(|e| self.failed("reading the timers due", e))?;
        let apps = query
            .query_map([by_unix_ms], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.failed("reading the timers due", e));
        apps
    }

    fn apps(&self) -> Result<Vec<AppSummary>> {
        let names: Vec<StoredApp> = {
            let db = self.db();
            let mut query = db
                .prepare("SELECT name, code FROM apps ORDER BY name")
                .map_err(|e| self.failed("listing apps", e))?;
            let rows = query
                .query_map([], |r| {
                    Ok(StoredApp {
                        name: r.get(0)?,
                        code: r.get(1)?,
                    })
                })
                .map_err(|e| self.failed("listing apps", e))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|e| self.failed("listing apps", e))?
        };
        let mut summaries = Vec::with_capacity(names.len());
        for app in names {
            let (records, log_bytes, first, last): (i64, i64, Option<i64>, Option<i64>) = self
                .db()
                .query_row(
                    "SELECT count(*), coalesce(sum(length(record)), 0), min(seq), max(seq)
                       FROM log WHERE app = ?1",
                    [&app.name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .map_err(|e| self.failed("counting the log", e))?;
            let snapshots = self.snapshots(&app.name)?;
            summaries.push(AppSummary {
                app,
                records: records as u64,
                log_bytes: log_bytes as u64,
                kept: first.zip(last).map(|(f, l)| (f as u64, l as u64)),
                snapshots,
            });
        }
        Ok(summaries)
    }

    fn bytes(&self) -> Result<u64> {
        // The database and the part of its write-ahead log not yet folded in.
        let mut total = 0;
        for file in [DATABASE.to_string(), format!("{DATABASE}-wal")] {
            match std::fs::metadata(self.dir.join(&file)) {
                Ok(meta) => total += meta.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::BadState {
                        location: self.dir.display().to_string(),
                        reason: format!("measuring {file}: {e}"),
                    })
                }
            }
        }
        Ok(total)
    }

    fn commit(&self, writes: &[Write]) -> Result<()> {
        let mut db = self.db();
        let tx = db
            .transaction()
            .map_err(|e| self.failed("starting a commit", e))?;
        for write in writes {
            let done = match write {
                Write::App { name, code } => tx.execute(
                    "INSERT INTO apps (name, code) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET code = excluded.code",
                    params![name, code],
                ),
                Write::HostOptions { app, options } => tx.execute(
                    "INSERT OR REPLACE INTO host_options (app, options) VALUES (?1, ?2)",
                    params![app, options],
                ),
                Write::TimerDue {
                    app,
                    due_unix_ms: Some(due),
                } => tx
                    .prepare_cached("INSERT OR REPLACE INTO timers (app, due_ms) VALUES (?1, ?2)")
                    .and_then(|mut upsert| upsert.execute(params![app, due])),
                Write::TimerDue {
                    app,
                    due_unix_ms: None,
                } => tx.execute("DELETE FROM timers WHERE app = ?1", [app]),
                Write::Remove { app } => [
                    "DELETE FROM log WHERE app = ?1",
                    "DELETE FROM snapshots WHERE app = ?1",
                    "DELETE FROM host_options WHERE app = ?1",
                    "DELETE FROM timers WHERE app = ?1",
                    "DELETE FROM apps WHERE name = ?1",
                ]
                .into_iter()
                .try_fold(0, |n, sql| Ok(n + tx.execute(sql, [app])?)),
                // The statement of nearly every write: parsed once, not per
                // record (parsing showed in the commit thread's profile).
                Write::Record { app, record } => tx
                    .prepare_cached("INSERT INTO log (app, seq, record) VALUES (?1, ?2, ?3)")
                    .and_then(|mut insert| {
                        insert.execute(params![app, record.seq as i64, record.encode()])
                    }),
                Write::Snapshot {
                    app,
                    seq,
                    guest,
                    code,
                    bytes,
                    retain,
                } => tx
                    .execute(
                        "INSERT OR REPLACE INTO snapshots (app, seq, guest, code, bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![app, *seq as i64, guest.to_string(), code, bytes],
                    )
                    // Keep the newest few: older ones only slow a restart down
                    // that a newer one serves, unless it is damaged; and, as
                    // the app's retention says, the log from the oldest kept on.
                    .and_then(|_| {
                        tx.execute(
                            "DELETE FROM snapshots WHERE app = ?1 AND seq < (
                             SELECT min(seq) FROM (SELECT seq FROM snapshots WHERE app = ?1
                                                   ORDER BY seq DESC LIMIT ?2))",
                            params![app, retain.snapshots_kept()],
                        )
                    })
                    .and_then(|_| match retain.drops_history() {
                        true => tx.execute(
                            "DELETE FROM log WHERE app = ?1 AND seq < (
                             SELECT min(seq) FROM snapshots WHERE app = ?1)",
                            [app],
                        ),
                        false => Ok(0),
                    }),
            };
            done.map_err(|e| self.failed("writing", e))?;
        }
        tx.commit().map_err(|e| self.failed("committing", e))
    }

    /// A new connection in place of the old one (its cached statements,
    /// and whatever it believed of the file, go with it); the directory's
    /// lock stays held.
    fn reopen(&self) -> Result<()> {
        let database = self.dir.join(DATABASE);
        let db = match self.read_only {
            true => {
                Connection::open_with_flags(&database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            }
            false => Connection::open(&database),
        }
        .map_err(|e| self.failed("opening it again", e))?;
        if !self.read_only {
            setup(&db).map_err(|e| self.failed("opening it again", e))?;
        }
        *self.db() = db;
        Ok(())
    }

    fn log_rows(&self, app: &str, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        let db = self.db();
        let mut query = db
            .prepare_cached(
                "SELECT seq, record FROM log WHERE app = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(|e| self.failed("reading the log", e))?;
        let rows = query
            .query_map(params![app, after as i64, limit as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
            .map_err(|e| self.failed("reading the log", e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.failed("reading the log", e))
    }

    fn cut_log(&self, app: &str, from: u64) -> Result<()> {
        self.db()
            .execute(
                "DELETE FROM log WHERE app = ?1 AND seq >= ?2",
                params![app, from as i64],
            )
            .map_err(|e| self.failed("cutting a damaged log tail", e))?;
        Ok(())
    }

    fn snapshots(&self, app: &str) -> Result<Vec<StoredSnapshot>> {
        let db = self.db();
        let mut query = db
            .prepare(
                "SELECT seq, guest, code, length(bytes) FROM snapshots WHERE app = ?1
                 ORDER BY seq DESC",
            )
            .map_err(|e| self.failed("listing snapshots", e))?;
        let rows = query
            .query_map([app], |r| {
                let guest: String = r.get(1)?;
                Ok(StoredSnapshot {
                    seq: r.get::<_, i64>(0)? as u64,
                    guest: GuestId::from_hex(&guest),
                    code: r.get(2)?,
                    bytes: r.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(|e| self.failed("listing snapshots", e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.failed("listing snapshots", e))
    }

    fn snapshot(&self, app: &str, seq: u64) -> Result<Vec<u8>> {
        self.db()
            .query_row(
                "SELECT bytes FROM snapshots WHERE app = ?1 AND seq = ?2",
                params![app, seq as i64],
                |r| r.get(0),
            )
            .map_err(|e| self.failed("reading a snapshot", e))
    }
}
