//! Deploying an app ([`Hosted::deploy`]): a new app, or a new version of a
//! served one (made beside it, `beside.rs`), or of one that is parked or
//! not served, which is stopped, deployed by the store and served again;
//! a refused deploy puts back what was there.

use elmbox::{app_name, DurableApp, DurableOptions, Error, EventFormat};

use crate::options::Deploy;

use super::{internal, is_load_error, lock, HostError, Hosted, Previous, SettleOnPanic, Slot};

impl Hosted {
    /// Deploys `source` (JavaScript, or a module made by `elmbox build`)
    /// as `name`: a new app, or a new version of one, deployed by replaying
    /// its log (or from `init` with `fresh`). Returns whether it is new.
    /// If the new version does not load or fails on a logged event, the
    /// old one goes on serving.
    pub fn deploy(&self, name: &str, source: &[u8], deploy: Deploy) -> Result<bool, HostError> {
        app_name::check(name).map_err(|e| HostError::BadRequest(e.to_string()))?;
        let is_module = source.starts_with(b"\0asm");
        let fixed = deploy.options.fixed_by_build();
        if is_module && !fixed.is_empty() {
            return Err(HostError::BadRequest(format!(
                "the app is a built module: {} {} fixed when it was built",
                fixed.join(", "),
                if fixed.len() == 1 { "was" } else { "were" }
            )));
        }
        if is_module && deploy.options.http {
            let built = self
                .pool
                .runtime()
                .module_settings(source)
                .map_err(|e| HostError::BadRequest(e.to_string()))?;
            if built.app.event_format != EventFormat::Json {
                return Err(HostError::BadRequest(
                    "http=true takes requests as JSON: build the module with --json-events".into(),
                ));
            }
        }
        let _admin = lock(&self.admin);
        match self.lease(name) {
            Ok(None) => {}
            Ok(Some(holder)) => {
                return Err(HostError::Conflict(format!(
                    "`{name}` is run by node `{}` at {}: deploy it there",
                    holder.node, holder.address
                )))
            }
            Err(e) => return Err(internal(e)),
        }
        // A new version of a served app: made beside it, switched to
        // between two of its events.
        if self.deploy_beside(name, source, &deploy)?.is_some() {
            return Ok(false);
        }
        // Whatever happens below, a panic included, the app's place is
        // left servable or removable, never busy for ever.
        let _settle = SettleOnPanic(self, name);
        let old = self.stop(name)?;
        if !matches!(old, Some(Previous::Serving(..))) {
            // Known before anything is written: a new app needs room.
            if let Err(e) = self.pool.has_room_for(name) {
                return Err(self.restart(name, old, HostError::Busy(e.to_string())));
            }
        }
        let runtime = match self.pool.durable_runtime(deploy.options.limits()) {
            Ok(runtime) => runtime,
            Err(e) => return Err(self.restart(name, old, HostError::BadRequest(e.to_string()))),
        };
        let kept = match serde_json::to_string(&deploy.options) {
            Ok(kept) => kept,
            Err(e) => return Err(self.restart(name, old, internal(e))),
        };
        let how = deploy.how();
        // The options go into the store in the commit that creates or
        // deploys the app: a refused deploy leaves the old ones.
        let opened = DurableApp::open(
            &runtime,
            self.store.clone(),
            self.committer(name),
            name,
            source,
            deploy.options.config(name),
            DurableOptions {
                on_new_code: how,
                host_options: Some(kept),
                ..self.durable_options(&deploy.options)
            },
        );
        let (app, opened) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                let refusal = match e {
                    Error::DeployRefused { .. }
                    | Error::HistoryDropped { .. }
                    | Error::MigrationRefused { .. } => HostError::Conflict(e.to_string()),
                    e if is_load_error(&e) => HostError::BadRequest(e.to_string()),
                    e => HostError::Internal(e.to_string()),
                };
                return Err(self.restart(name, old, refusal));
            }
        };
        drop(old);
        tracing::info!(app = %name, created = opened.created, deployed = ?opened.deployed, "deployed");
        if let Err(e) = self.serve(app, deploy.options.clone()) {
            // The store has it: parked, it is woken by its next request
            // (or removed by the admin).
            tracing::error!(app = %name, error = %e, "deployed but not served: parked");
            lock(&self.apps).insert(name.to_string(), Slot::Parked(deploy.options));
            return Err(internal(e));
        }
        Ok(opened.created)
    }
}
