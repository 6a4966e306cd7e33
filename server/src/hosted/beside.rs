//! Deploys without downtime ([`Hosted::deploy_beside`]): the new version of
//! a served app is made on the deploying thread, replaying the log from
//! the store, while the old version's owner goes on taking the app's
//! events; then the owner switches to it between two inputs
//! (`Work::Deploy`), which is the one moment a client waits. A version that
//! fails on a logged input is refused with 409 and the old one never
//! stopped. `GET /_elmbox/apps/NAME` shows how far a deploy's replay is.

use std::sync::mpsc;

use elmbox::durable::{DeployProgress, Deploying};
use elmbox::{DurableOptions, Error};

use super::owner::Work;
use super::{internal, is_load_error, lock, HostError, Hosted, Slot};
use crate::options::Deploy;

impl Hosted {
    /// Deploys `source` as a new version of the served app `name` beside
    /// the one serving; `None` when it cannot be done so (the app is not
    /// served here, the deploy changes whether it is in HTTP mode, or only
    /// the options changed), and the caller stops and reopens it instead.
    pub(super) fn deploy_beside(
        &self,
        name: &str,
        source: &[u8],
        deploy: &Deploy,
    ) -> Result<Option<()>, HostError> {
        let events = match lock(&self.apps).get(name) {
            Some(Slot::Serving(owner)) if owner.options.http == deploy.options.http => {
                owner.events.clone()
            }
            _ => return Ok(None),
        };
        let how = deploy.how();
        let base = self
            .pool
            .with_durable(name, |app| app.deploy_base(how))
            .map_err(refusal)?;
        let runtime = self
            .pool
            .durable_runtime(deploy.options.limits())
            .map_err(|e| HostError::BadRequest(e.to_string()))?;
        let kept = serde_json::to_string(&deploy.options).map_err(internal)?;
        let options = DurableOptions {
            host_options: Some(kept),
            ..self.durable_options(&deploy.options)
        };
        let progress = DeployProgress::default();
        lock(&self.deploys).insert(name.to_string(), progress.clone());
        let made = Deploying::start(
            &base,
            &runtime,
            source,
            deploy.options.config(name),
            how,
            options,
            &progress,
        )
        .and_then(|deploying| match deploying {
            // Caught up once more: the switch replays only what comes now.
            Some(mut deploying) => deploying.catch_up().map(|_| Some(deploying)),
            None => Ok(None),
        });
        let deploying = match made {
            Ok(Some(deploying)) => deploying,
            Ok(None) => {
                lock(&self.deploys).remove(name);
                return Ok(None);
            }
            Err(e) => {
                lock(&self.deploys).remove(name);
                return Err(refusal(e));
            }
        };
        let (reply, switched) = mpsc::channel();
        let sent = events.send(Work::Deploy {
            deploying: Box::new(deploying),
            reply,
        });
        let switched = match sent {
            Ok(()) => switched
                .recv()
                .unwrap_or_else(|_| Err(Error::Config("the app's owner stopped".into()))),
            Err(_) => Err(Error::Config("the app's owner stopped".into())),
        };
        lock(&self.deploys).remove(name);
        switched.map_err(refusal)?;
        // Served on as the new version: its options, its requests, its timers.
        let (waiting, keys, due) = self
            .pool
            .with_durable(name, |app| {
                Ok((app.waiting_http()?, app.idempotency_keys(), app.next_due()))
            })
            .map_err(internal)?;
        if let Some(Slot::Serving(owner)) = lock(&self.apps).get_mut(name) {
            owner.options = deploy.options.clone();
        }
        let answers = events.clone();
        let deliver = Box::new(move |response| answers.send(Work::HttpResponse(response)).is_ok());
        self.outgoing.serve(
            name,
            deploy.options.http_policy.clone(),
            keys,
            deliver,
            waiting,
        );
        self.scheduler.set(name, due);
        tracing::info!(app = %name, how = ?how, "deployed beside the serving version");
        Ok(Some(()))
    }

    /// How far the replay of a deploy of `name` under way is.
    pub(super) fn deploy_progress(&self, name: &str) -> Option<(u64, u64)> {
        lock(&self.deploys).get(name).map(DeployProgress::replayed)
    }
}

/// What a refused new version means for the deploy: 409 for a logged input
/// it fails on, 400 when it does not load.
fn refusal(e: Error) -> HostError {
    match e {
        Error::DeployRefused { .. }
        | Error::HistoryDropped { .. }
        | Error::MigrationRefused { .. } => HostError::Conflict(e.to_string()),
        e if is_load_error(&e) => HostError::BadRequest(e.to_string()),
        e => HostError::Internal(e.to_string()),
    }
}
