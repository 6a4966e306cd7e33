//! Parking ([`Hosted::park_idle`]): an app idle long enough is
//! snapshotted and taken out of memory, and its next request (or its timer)
//! wakes it, so that an app costs nothing while nobody uses it.

use std::time::{Duration, Instant, SystemTime};

use super::{internal, lock, HostError, Hosted, Previous, SettleOnPanic, Slot};

impl Hosted {
    /// Parks every app idle for `idle` or longer: snapshotted, out of
    /// memory, woken by its next request. Apps in HTTP mode with requests
    /// waiting are not idle. Returns how many were parked.
    pub fn park_idle(&self, idle: Duration) -> usize {
        let _admin = lock(&self.admin);
        // An app whose timer is due within `idle` would be woken about as
        // soon as it was parked.
        let soon = SystemTime::now() + idle;
        let idle_ones: Vec<String> = lock(&self.apps)
            .iter()
            .filter_map(|(name, slot)| match slot {
                Slot::Serving(owner)
                    if owner.last_used.elapsed() >= idle
                        && owner.pending.as_ref().is_none_or(|p| p.is_empty())
                        && self.outgoing.in_flight(name) == 0
                        && self.scheduler.due(name).is_none_or(|due| due > soon) =>
                {
                    Some(name.clone())
                }
                _ => None,
            })
            .collect();
        let mut parked = 0;
        for name in idle_ones {
            let _settle = SettleOnPanic(self, &name);
            let closed = match self.stop(&name) {
                Ok(Some(Previous::Serving(app, options))) => {
                    // Kept while it is parked, so that its timer wakes it.
                    self.scheduler.set(&name, app.next_due());
                    app.close().map(|()| options)
                }
                Ok(other) => {
                    self.restart(&name, other, HostError::NotFound(name.clone()));
                    continue;
                }
                Err(e) => {
                    tracing::error!(app = %name, error = %e, "parking");
                    continue;
                }
            };
            match closed {
                Ok(options) => {
                    lock(&self.apps).insert(name.clone(), Slot::Parked(options));
                    tracing::info!(app = %name, "parked: idle for {} ms", idle.as_millis());
                    parked += 1;
                }
                Err(e) => {
                    // Its log holds every answered event: reopening restores it.
                    tracing::error!(app = %name, error = %e, "closing to park");
                    let options = self.kept_options(&name).unwrap_or_default();
                    lock(&self.apps).insert(name.clone(), Slot::Parked(options));
                }
            }
        }
        parked
    }

    /// Brings a parked app back into memory (a no-op if it is not parked).
    pub fn wake(&self, name: &str) -> Result<(), HostError> {
        let _admin = lock(&self.admin);
        let options = match lock(&self.apps).get(name) {
            Some(Slot::Parked(options)) => options.clone(),
            Some(_) => return Ok(()),
            None => return Err(HostError::NotFound(name.into())),
        };
        let _settle = SettleOnPanic(self, name);
        let started = Instant::now();
        self.reopen(name, options).map_err(internal)?;
        tracing::info!(app = %name, "woken in {} ms", started.elapsed().as_millis());
        Ok(())
    }

    /// Whether `name` is parked.
    pub fn is_parked(&self, name: &str) -> bool {
        matches!(lock(&self.apps).get(name), Some(Slot::Parked(_)))
    }
}
