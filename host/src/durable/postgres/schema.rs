//! The schema, elmbox's own: created and migrated on open, in order, in one
//! transaction under an advisory lock; `elmbox_schema` holds the versions
//! applied, and a database migrated by a newer elmbox is refused.

use postgres::GenericClient;

use crate::error::Result;

use super::{advisory_key, PostgresStore};

/// The schema's migrations, in order: `elmbox_schema` holds one row per
/// migration applied, numbered from 1.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: what the SQLite store keeps. Snapshots are zstd already, so
    // PostgreSQL keeps them out of line without compressing them again.
    "CREATE TABLE elmbox_code (hash text PRIMARY KEY, bytes bytea NOT NULL);
     CREATE TABLE elmbox_apps (name text PRIMARY KEY, code text NOT NULL);
     CREATE TABLE elmbox_host_options (app text PRIMARY KEY, options text NOT NULL);
     CREATE TABLE elmbox_log (
         app text NOT NULL, seq bigint NOT NULL, record bytea NOT NULL,
         PRIMARY KEY (app, seq));
     CREATE TABLE elmbox_snapshots (
         app text NOT NULL, seq bigint NOT NULL, guest text NOT NULL, code text NOT NULL,
         bytes bytea NOT NULL,
         PRIMARY KEY (app, seq));
     ALTER TABLE elmbox_snapshots ALTER COLUMN bytes SET STORAGE EXTERNAL;",
    // 2: who runs which app (`elmbox serve --node-id`), until when by the
    // database's clock; the epoch rises with every change of hands.
    "CREATE TABLE elmbox_leases (
         app text PRIMARY KEY, node text NOT NULL, epoch bigint NOT NULL,
         expires_at timestamptz NOT NULL, address text NOT NULL);",
    // 3: when each app's earliest timer is due (ms since the Unix epoch),
    // so that a node can wake an app whose node died.
    "CREATE TABLE elmbox_timers (app text PRIMARY KEY, due_ms bigint NOT NULL);
     CREATE INDEX elmbox_timers_due ON elmbox_timers (due_ms);",
];

impl PostgresStore {
    /// Applies the migrations this database lacks, in one transaction
    /// under a lock, so that a node starting meanwhile waits and finds them
    /// applied.
    pub(super) fn migrate(&self) -> Result<()> {
        let mut db = self.db()?;
        let failed = |e| self.failed("creating or migrating the schema", e);
        let mut tx = db.client.transaction().map_err(failed)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&advisory_key("schema", "")],
        )
        .map_err(failed)?;
        let version = schema_version(&mut tx).map_err(failed)?;
        self.known(version)?;
        if version == MIGRATIONS.len() as i32 {
            return Ok(());
        }
        if version == 0 {
            tx.batch_execute(
                "CREATE TABLE elmbox_schema (
                     version integer PRIMARY KEY,
                     applied timestamptz NOT NULL DEFAULT now())",
            )
            .map_err(failed)?;
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.batch_execute(migration).map_err(failed)?;
            tx.execute(
                "INSERT INTO elmbox_schema (version) VALUES ($1)",
                &[&(index as i32 + 1)],
            )
            .map_err(failed)?;
        }
        tx.commit().map_err(failed)
    }

    /// Refuses a schema this build does not know.
    pub(super) fn known(&self, version: i32) -> Result<()> {
        match version > MIGRATIONS.len() as i32 {
            true => Err(self.bad(format!(
                "its schema is version {version}, newer than this elmbox knows ({}): run a \
                 newer elmbox on it",
                MIGRATIONS.len()
            ))),
            false => Ok(()),
        }
    }
}

/// The version of the schema in the database (0: none yet).
pub(super) fn schema_version(client: &mut impl GenericClient) -> Result<i32, postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('elmbox_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client.query_one("SELECT coalesce(max(version), 0) FROM elmbox_schema", &[])?;
    Ok(row.get(0))
}
