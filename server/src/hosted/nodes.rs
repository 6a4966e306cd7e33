//! This server as one node of many on a shared database (`--node-id`):
//! leases, where a request for an app served elsewhere goes, taking an app
//! over, and dropping an app whose lease or commits were lost.

use std::time::{Duration, Instant, SystemTime};

use elmbox::durable::store::{Acquired, LeaseHolder};
use elmbox::Error;

use super::{lock, HostError, Hosted, SettleOnPanic, Slot};

/// This server as one node of many on a shared database
/// (`--node-id`): it runs an app only while it holds the app's lease.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    /// Where other nodes send this node's apps' clients.
    pub address: String,
    /// How long a lease lasts unless renewed.
    pub lease: Duration,
}

/// Where a request for an app not served here goes.
pub enum Located {
    /// Served here after all (it came meanwhile): go on.
    Here,
    /// Another node's lease on it is live: to that node's address.
    Elsewhere { node: String, address: String },
    /// Nobody's live lease: this node takes it over (the slot is busy
    /// until [`Hosted::take_over`] is done).
    TakeOver,
}

impl Hosted {
    /// Takes (or renews) the app's lease for this node; `Some(holder)`
    /// if another node's lease is live. Without `--node-id`: nothing to
    /// take.
    pub(super) fn lease(&self, name: &str) -> Result<Option<LeaseHolder>, Error> {
        let (Some(node), Some(leases)) = (&self.node, self.store.leases()) else {
            return Ok(None);
        };
        match leases.acquire(name, &node.id, &node.address, node.lease)? {
            Acquired::Held { epoch } => {
                tracing::debug!(app = %name, epoch, "leased");
                Ok(None)
            }
            Acquired::Refused(holder) => Ok(Some(holder)),
        }
    }

    /// How long this node's leases last, if it is a node.
    pub fn lease_time(&self) -> Option<Duration> {
        self.node.as_ref().map(|node| node.lease)
    }

    /// Whether this server is one node of many.
    pub fn is_node(&self) -> bool {
        self.node.is_some()
    }

    /// Where a request for `name` goes, if this node does not serve it.
    pub fn locate(&self, name: &str) -> Result<Located, HostError> {
        let (Some(node), Some(leases)) = (&self.node, self.store.leases()) else {
            return Ok(Located::Here);
        };
        if lock(&self.apps).contains_key(name) {
            return Ok(Located::Here);
        }
        // The database out of reach (restarting, say) is for a while.
        let unreachable = |e: Error| {
            HostError::Busy(format!(
                "`{name}` cannot be located or taken over now ({e}); try again"
            ))
        };
        match leases.holder(name).map_err(unreachable)? {
            Some(holder) if holder.live && holder.node != node.id => {
                return Ok(Located::Elsewhere {
                    node: holder.node,
                    address: holder.address,
                })
            }
            _ => {}
        }
        if self.store.app(name).map_err(unreachable)?.is_none() {
            return Err(HostError::NotFound(name.into()));
        }
        let mut apps = lock(&self.apps);
        if apps.contains_key(name) {
            return Ok(Located::Here);
        }
        apps.insert(name.to_string(), Slot::Busy);
        Ok(Located::TakeOver)
    }

    /// Takes the app `name` over (after [`Hosted::locate`] said so): its
    /// lease with the next epoch, then its state from the store (snapshot
    /// and log), and serves it. If another node was quicker, or it does
    /// not restore, it is left alone.
    pub fn take_over(&self, name: &str) {
        let _admin = lock(&self.admin);
        let _settle = SettleOnPanic(self, name);
        let started = Instant::now();
        let taken = self.lease(name).and_then(|holder| match holder {
            Some(holder) => Ok(Some(holder)),
            None => {
                let options = self.kept_options(name)?;
                self.reopen(name, options).map(|()| None)
            }
        });
        match taken {
            Ok(None) => {
                let ms = started.elapsed().as_millis();
                tracing::info!(app = %name, "taken over in {ms} ms");
            }
            Ok(Some(holder)) => {
                tracing::info!(app = %name, node = %holder.node, "taken over by another node first");
                self.forget(name);
            }
            Err(e) => {
                tracing::error!(app = %name, error = %e, "taking over");
                self.forget(name);
                if let Some(leases) = self.store.leases() {
                    let _ = leases.release(name);
                }
            }
        }
    }

    /// Drops a busy slot whose takeover came to nothing.
    fn forget(&self, name: &str) {
        let mut apps = lock(&self.apps);
        if matches!(apps.get(name), Some(Slot::Busy)) {
            apps.remove(name);
        }
    }

    /// Renews this node's leases; an app whose lease is lost (taken over
    /// while this node did not renew, or fenced in a commit) is dropped:
    /// its queued events fail, and its requests go to the new holder.
    /// So is an app whose commit failed (the database went away): its
    /// state in memory may be ahead of the store's, so its next request
    /// takes it over again from the store, with the next epoch.
    pub fn renew_leases(&self) {
        let (Some(node), Some(leases)) = (&self.node, self.store.leases()) else {
            return;
        };
        // A commit fenced off has let its lease go already: lost, below.
        let held = leases.leased();
        let failed: Vec<(String, String)> = lock(&self.committers)
            .iter()
            .filter(|(name, _)| held.contains(name))
            .filter_map(|(name, committer)| {
                let e = committer.check().err()?;
                Some((name.clone(), e.to_string()))
            })
            .collect();
        for (name, reason) in failed {
            if self.drop_app(&name) {
                // Its lease, let go here at least: the takeover that
                // restores it takes the next epoch.
                let _ = leases.release(&name);
                tracing::warn!(
                    app = %name,
                    "a commit failed ({reason}): no longer served until a request takes it over again"
                );
            }
        }
        let mut names = leases.leased();
        names.extend(
            lock(&self.apps)
                .iter()
                .filter(|(_, slot)| !matches!(slot, Slot::Busy))
                .map(|(name, _)| name.clone()),
        );
        names.sort();
        names.dedup();
        let mut lost = Vec::new();
        for name in names {
            match leases.renew(&name, node.lease) {
                Ok(true) => {}
                Ok(false) => lost.push(name),
                // The lease may yet be renewed in time; if not, the
                // database refuses this node's commits for the app.
                Err(e) => tracing::warn!(app = %name, error = %e, "renewing the lease"),
            }
        }
        // After the renewals: dropping an app waits for its event under way.
        for name in lost {
            self.drop_lost(&name);
        }
    }

    /// Takes over every app whose timer is due by `by` (as the store keeps
    /// it) that no live node holds: an app whose node died wakes for its
    /// timers on another, without waiting for a request.
    pub fn take_over_due_timers(&self, by: SystemTime) {
        if self.node.is_none() {
            return;
        }
        let due = match self.store.timers_due(elmbox::clock::unix_ms(by)) {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "reading the timers due");
                return;
            }
        };
        for name in due {
            if self.has(&name) {
                continue;
            }
            if let Ok(Located::TakeOver) = self.locate(&name) {
                tracing::info!(app = %name, "a timer is due and no live node holds it");
                self.take_over(&name);
            }
        }
    }

    /// Stops serving `name`, whose lease this node lost, writing nothing
    /// more for it.
    ///
    /// Not under the admin lock, which a takeover holds while it restores:
    /// the renewals of the other apps must not wait for that. A deploy,
    /// removal or parking under way has marked the slot busy, and is
    /// refused by the database.
    fn drop_lost(&self, name: &str) {
        if !self.drop_app(name) {
            return;
        }
        let holder = self
            .store
            .leases()
            .and_then(|l| l.holder(name).ok().flatten());
        let holder = holder.map_or("nobody".into(), |h| format!("node `{}`", h.node));
        tracing::warn!(app = %name, "lease lost: no longer served here (held by {holder})");
    }

    /// Stops serving `name` (its queued events fail), and stops its
    /// commit thread; false if a takeover or deploy under way has it.
    fn drop_app(&self, name: &str) -> bool {
        let (slot, committer) = {
            let mut apps = lock(&self.apps);
            if let Some(Slot::Busy) = apps.get(name) {
                // A takeover or deploy under way holds its own lease.
                return false;
            }
            // Taken out together: a takeover after this starts a new one.
            (apps.remove(name), lock(&self.committers).remove(name))
        };
        if let Some(Slot::Serving(owner)) = slot {
            owner.end(name, &self.outgoing);
            let _ = self.pool.take_durable(name);
        }
        // Its requests are the next holder's to send.
        self.outgoing.forget(name);
        // Its timers are the next holder's now.
        self.scheduler.set(name, None);
        // Its commit thread stops; a new lease starts a new one.
        drop(committer);
        true
    }
}
