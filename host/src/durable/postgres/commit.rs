//! The transaction of a commit: the leases of the apps written to checked
//! first (on a node), a run of records appended in one statement, and the
//! other writes between them in order.

use std::collections::HashMap;

use postgres::Statement;

use crate::error::Result;

use super::leases::{check_leases, LeaseBook};
use super::session::Session;
use super::{prepared, PostgresStore};
use crate::durable::log::Record;
use crate::durable::store::Write;

const APPEND_RECORDS: &str = "INSERT INTO elmbox_log (app, seq, record)
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])";

/// A run of records in one commit, appended in one statement.
#[derive(Default)]
struct Appends<'a> {
    apps: Vec<&'a str>,
    seqs: Vec<i64>,
    records: Vec<Vec<u8>>,
}

impl<'a> Appends<'a> {
    fn push(&mut self, app: &'a str, record: &Record) {
        self.apps.push(app);
        self.seqs.push(record.seq as i64);
        self.records.push(record.encode());
    }

    /// Appends the run, if any, and starts the next.
    fn flush(
        &mut self,
        statements: &mut HashMap<&'static str, Statement>,
        tx: &mut postgres::Transaction<'_>,
    ) -> Result<(), postgres::Error> {
        if self.apps.is_empty() {
            return Ok(());
        }
        let append = prepared(statements, tx, APPEND_RECORDS)?;
        tx.execute(&append, &[&self.apps, &self.seqs, &self.records])?;
        *self = Appends::default();
        Ok(())
    }
}

impl PostgresStore {
    /// The transaction of [`StateStore::commit`], on the session `db`.
    pub(super) fn commit_on(&self, db: &mut Session, writes: &[Write]) -> Result<()> {
        let Session {
            client,
            statements,
            leased,
            lost,
            leasing,
            ..
        } = db;
        let mut tx = client
            .transaction()
            .map_err(|e| self.failed("starting a commit", e))?;
        // Before anything is written: a fenced commit is rolled back whole.
        if *leasing {
            let mut book = LeaseBook {
                statements,
                leased,
                lost,
            };
            check_leases(&mut book, &mut tx, writes)
                .map_err(|e| self.failed("checking the apps' leases", e))??;
        }
        // Records in a row (nearly every write) go in one statement; the
        // other writes between them keep their order.
        let mut appends = Appends::default();
        for write in writes {
            if let Write::Record { app, record } = write {
                appends.push(app, record);
                continue;
            }
            appends
                .flush(statements, &mut tx)
                .map_err(|e| self.failed("appending to the log", e))?;
            let done = match write {
                Write::Record { .. } => unreachable!("appended above"),
                Write::App { name, code } => prepared(
                    statements,
                    &mut tx,
                    "INSERT INTO elmbox_apps (name, code) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET code = excluded.code",
                )
                .and_then(|upsert| tx.execute(&upsert, &[name, code])),
                Write::HostOptions { app, options } => prepared(
                    statements,
                    &mut tx,
                    "INSERT INTO elmbox_host_options (app, options) VALUES ($1, $2)
                     ON CONFLICT (app) DO UPDATE SET options = excluded.options",
                )
                .and_then(|upsert| tx.execute(&upsert, &[app, options])),
                Write::TimerDue {
                    app,
                    due_unix_ms: Some(due),
                } => prepared(
                    statements,
                    &mut tx,
                    "INSERT INTO elmbox_timers (app, due_ms) VALUES ($1, $2)
                     ON CONFLICT (app) DO UPDATE SET due_ms = excluded.due_ms",
                )
                .and_then(|upsert| tx.execute(&upsert, &[app, due])),
                Write::TimerDue {
                    app,
                    due_unix_ms: None,
                } => tx.execute("DELETE FROM elmbox_timers WHERE app = $1", &[app]),
                Write::Remove { app } => [
                    "DELETE FROM elmbox_log WHERE app = $1",
                    "DELETE FROM elmbox_snapshots WHERE app = $1",
                    "DELETE FROM elmbox_host_options WHERE app = $1",
                    "DELETE FROM elmbox_timers WHERE app = $1",
                    "DELETE FROM elmbox_apps WHERE name = $1",
                ]
                .into_iter()
                .try_fold(0, |n, sql| Ok(n + tx.execute(sql, &[app])?)),
                Write::Snapshot {
                    app,
                    seq,
                    guest,
                    code,
                    bytes,
                    retain,
                } => prepared(
                    statements,
                    &mut tx,
                    "INSERT INTO elmbox_snapshots (app, seq, guest, code, bytes)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (app, seq) DO UPDATE
                     SET guest = excluded.guest, code = excluded.code, bytes = excluded.bytes",
                )
                .and_then(|upsert| {
                    tx.execute(
                        &upsert,
                        &[app, &(*seq as i64), &guest.to_string(), code, bytes],
                    )
                })
                // Keep the newest few: older ones only slow a restart down
                // that a newer one serves, unless it is damaged; and, as
                // the app's retention says, the log from the oldest kept on.
                .and_then(|_| {
                    tx.execute(
                        "DELETE FROM elmbox_snapshots WHERE app = $1 AND seq < (
                             SELECT min(seq) FROM (SELECT seq FROM elmbox_snapshots
                                                    WHERE app = $1
                                                    ORDER BY seq DESC LIMIT $2) newest)",
                        &[app, &i64::from(retain.snapshots_kept())],
                    )
                })
                .and_then(|_| match retain.drops_history() {
                    true => tx.execute(
                        "DELETE FROM elmbox_log WHERE app = $1 AND seq < (
                             SELECT min(seq) FROM elmbox_snapshots WHERE app = $1)",
                        &[app],
                    ),
                    false => Ok(0),
                }),
            };
            done.map_err(|e| self.failed("writing", e))?;
        }
        appends
            .flush(statements, &mut tx)
            .map_err(|e| self.failed("appending to the log", e))?;
        tx.commit().map_err(|e| self.failed("committing", e))
    }
}
