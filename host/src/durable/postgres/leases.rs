//! Leases on apps (`Leases`), for nodes that share the database: one row
//! per app in `elmbox_leases`, taken with the next epoch once it expired,
//! renewed by its node, and checked in every commit that writes for the
//! app (`check_leases`, under a share lock), so that a node that lost an
//! app's lease cannot append to its log again.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use postgres::Statement;

use crate::error::{Error, Result};

use super::session::{HeldLease, Session};
use super::{prepared, PostgresStore};
use crate::durable::store::{Acquired, LeaseHolder, Leases, Write};

/// A new lease (epoch 1), or the next epoch of one that expired or that
/// the same node held (in a process before this one); none while another
/// node's lease is live.
pub(super) const ACQUIRE_LEASE: &str =
    "INSERT INTO elmbox_leases AS l (app, node, epoch, expires_at, address)
     VALUES ($1, $2, 1, now() + $3::float8 * interval '1 millisecond', $4)
     ON CONFLICT (app) DO UPDATE
        SET node = excluded.node, epoch = l.epoch + 1,
            expires_at = excluded.expires_at, address = excluded.address
      WHERE l.node = excluded.node OR l.expires_at < now()
     RETURNING epoch";

pub(super) const RENEW_LEASE: &str = "UPDATE elmbox_leases
        SET expires_at = now() + $4::float8 * interval '1 millisecond'
      WHERE app = $1 AND node = $2 AND epoch = $3";

/// Taken in every commit for each leased app it writes to: a takeover's
/// update of the row waits until the commit is done.
pub(super) const CHECK_LEASE: &str =
    "SELECT node, epoch FROM elmbox_leases WHERE app = $1 FOR SHARE";

/// Refused ([`Error::Fenced`]) unless each app that `writes` write to
/// has its lease still at the epoch in `leased` (once the session leases
/// apps at all). Runs inside the commit's transaction: the rows stay
/// share-locked until it ends.
pub(super) fn check_leases(
    session: &mut LeaseBook<'_>,
    tx: &mut postgres::Transaction<'_>,
    writes: &[Write],
) -> Result<Result<(), Error>, postgres::Error> {
    let mut checked = HashSet::new();
    for write in writes {
        let app = write.app();
        if !checked.insert(app) {
            continue;
        }
        let check = prepared(session.statements, tx, CHECK_LEASE)?;
        let row = tx.query_opt(&check, &[&app])?;
        let in_db = row.map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1) as u64));
        let held = match session.leased.get(app) {
            Some(held) if in_db == Some((held.node.clone(), held.epoch)) => continue,
            Some(held) => held.epoch,
            // Lost before (not renewed in time), or never held.
            None => session.lost.get(app).copied().unwrap_or(0),
        };
        let now = match in_db {
            Some((node, epoch)) => {
                format!("the database has it at epoch {epoch}, held by node `{node}`")
            }
            None => "the database holds no lease on it".into(),
        };
        session.leased.remove(app);
        session.lost.insert(app.to_string(), held);
        return Ok(Err(Error::Fenced {
            app: app.to_string(),
            held,
            now,
        }));
    }
    Ok(Ok(()))
}

/// The session's lease bookkeeping, borrowed apart from its client (which
/// a commit's transaction borrows).
pub(super) struct LeaseBook<'a> {
    pub(super) statements: &'a mut HashMap<&'static str, Statement>,
    pub(super) leased: &'a mut HashMap<String, HeldLease>,
    pub(super) lost: &'a mut HashMap<String, u64>,
}

impl Leases for PostgresStore {
    fn acquire(&self, app: &str, node: &str, address: &str, ttl: Duration) -> Result<Acquired> {
        let held = self.session().leased.get(app).map(|held| held.epoch);
        if let Some(epoch) = held {
            if self.renew(app, ttl)? {
                // Still held: what the store has is what is restored.
                self.session().in_doubt.remove(app);
                return Ok(Acquired::Held { epoch });
            }
        }
        let mut db = self.db()?;
        if db.read_only {
            return Err(self.bad("it was opened to be read, not to run apps".into()));
        }
        let Session {
            client,
            statements,
            in_doubt,
            ..
        } = &mut *db;
        let doubt = in_doubt.get(app).copied();
        let mut rolled_back = false;
        let row = client
            .transaction()
            .and_then(|mut tx| {
                let acquire = prepared(statements, &mut tx, ACQUIRE_LEASE)?;
                let row = tx.query_opt(
                    &acquire,
                    &[&app, &node, &(ttl.as_millis() as f64), &address],
                )?;
                let epoch = row.as_ref().map(|row| row.get::<_, i64>(0) as u64);
                if let (Some(epoch), Some((held, first))) = (epoch, doubt) {
                    // Nobody has held the app since: no answer was given
                    // on the records in doubt, whose clients heard 503.
                    if epoch == held + 1 {
                        for sql in [
                            "DELETE FROM elmbox_log WHERE app = $1 AND seq >= $2",
                            "DELETE FROM elmbox_snapshots WHERE app = $1 AND seq >= $2",
                        ] {
                            tx.execute(sql, &[&app, &(first as i64)])?;
                        }
                        rolled_back = true;
                    }
                }
                tx.commit()?;
                Ok(row)
            })
            .map_err(|e| self.failed("acquiring the app's lease", e))?;
        db.leasing = true;
        if let Some(row) = row {
            let epoch = row.get::<_, i64>(0) as u64;
            if db.in_doubt.remove(app).is_some() && rolled_back {
                eprintln!(
                    "elmbox: the events of {app} from a commit that failed, and might yet \
                     have reached the database, are rolled back: their clients were answered \
                     an error"
                );
            }
            let node = node.to_string();
            db.lost.remove(app);
            db.leased.insert(app.to_string(), HeldLease { node, epoch });
            return Ok(Acquired::Held { epoch });
        }
        drop(db);
        match self.holder(app)? {
            Some(holder) => Ok(Acquired::Refused(holder)),
            // Deleted between the two statements: nobody's to take.
            None => Err(self.bad(format!(
                "the lease on `{app}` changed hands while it was acquired: try again"
            ))),
        }
    }

    fn renew(&self, app: &str, ttl: Duration) -> Result<bool> {
        let mut db = self.db()?;
        let Session {
            client,
            statements,
            leased,
            lost,
            ..
        } = &mut *db;
        let Some(held) = leased.get(app) else {
            return Ok(false);
        };
        let renewed = prepared(statements, &mut **client, RENEW_LEASE)
            .and_then(|renew| {
                client.execute(
                    &renew,
                    &[
                        &app,
                        &held.node,
                        &(held.epoch as i64),
                        &(ttl.as_millis() as f64),
                    ],
                )
            })
            .map_err(|e| self.failed("renewing the app's lease", e))?;
        if renewed == 0 {
            if let Some(held) = leased.remove(app) {
                lost.insert(app.to_string(), held.epoch);
            }
        }
        Ok(renewed == 1)
    }

    fn release(&self, app: &str) -> Result<()> {
        // Let go here even if the database cannot be told: the next
        // acquire takes the next epoch.
        let Some(held) = self.session().leased.remove(app) else {
            return Ok(());
        };
        let mut db = self.db()?;
        db.client
            .execute(
                "UPDATE elmbox_leases SET expires_at = now()
                  WHERE app = $1 AND node = $2 AND epoch = $3",
                &[&app, &held.node, &(held.epoch as i64)],
            )
            .map_err(|e| self.failed("releasing the app's lease", e))?;
        Ok(())
    }

    fn leased(&self) -> Vec<String> {
        let mut apps: Vec<String> = self.session().leased.keys().cloned().collect();
        apps.sort();
        apps
    }

    fn holder(&self, app: &str) -> Result<Option<LeaseHolder>> {
        let row = self.row(
            "reading the app's lease",
            "SELECT node, address, epoch, expires_at > now() FROM elmbox_leases WHERE app = $1",
            &[&app],
        )?;
        Ok(row.map(|row| LeaseHolder {
            node: row.get(0),
            address: row.get(1),
            epoch: row.get::<_, i64>(2) as u64,
            live: row.get(3),
        }))
    }
}
