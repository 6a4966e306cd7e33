//! Deploys by migration ([`OnNewCode::Migrate`](super::OnNewCode::Migrate)): the new version starts
//! from the old one's model rather than from a replay of its history, for
//! an app whose history is gone (`--retain-log`) or too long to replay.
//!
//! The old version exports its model from a copy of its sandbox
//! ([`DurableApp::exported_model`]), so a refused migration leaves it
//! exactly as it was. The new version's settings keep the model
//! (`AppSettings::migrated`), and its `init` gets it inside its flags
//! ([`as_loaded`](super::code::as_loaded)); the deploy is recorded as a fresh start of that code,
//! so a restore from the log starts from the migrated model, and a later
//! deploy by replay replays from it too.

use elmbox_abi::AppSettings;

use crate::config::AppConfig;
use crate::error::{Error, Result};

use super::code::{encode_code, start};
use super::DurableApp;

impl DurableApp {
    /// The model this version exports for a migration (JSON text), from a
    /// copy of its sandbox: this app sees nothing of the export.
    pub fn exported_model(&mut self) -> Result<String> {
        let state = self.app.state()?;
        let config = AppConfig::default().name(&self.name);
        let mut copy = self.runtime.restore(&state, config)?;
        copy.export_model()
    }

    /// Starts this (new) version again from `model`, in place of the start
    /// it had: for a migration whose old version took inputs after the
    /// model it began with was exported.
    pub(super) fn restart_migrated(&mut self, model: String) -> Result<()> {
        let settings = AppSettings {
            migrated: Some(model),
            ..self.settings.clone()
        };
        self.app = start_migrated(self, &settings)?;
        self.code = self
            .store
            .put_code(&encode_code(&settings, &self.source)?)?;
        self.settings = settings;
        self.clock_ms = self.app.clock().now_ms;
        Ok(())
    }
}

/// The new version started from its migrated settings; an `init` that fails
/// on the model refuses the migration.
fn start_migrated(app: &DurableApp, settings: &AppSettings) -> Result<crate::App> {
    start(&app.runtime, &app.source, settings, &app.name, &app.console).map_err(init_failed)
}

/// Why a migrated start failed, as the refusal of the migration.
pub(super) fn init_failed(e: Error) -> Error {
    match e {
        e @ Error::MigrationRefused { .. } => e,
        e => Error::MigrationRefused {
            reason: format!("the new version did not start from the migrated model: {e}"),
        },
    }
}
