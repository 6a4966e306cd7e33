//! Migration, the old version's side ([`App::export_model`]): the app is
//! sent `null` on its port `elmboxExport` and answers with its model on
//! `elmboxExported` (`elmbox_abi::migration`). The new version's side, and
//! the deploy around both, is `durable::migrating`.

use crate::app::{parse_outputs, App};
use crate::error::{Error, Result};
use crate::guest;

pub use elmbox_abi::migration::{migrated_flags, EXPORTED_PORT, EXPORT_PORT};

impl App {
    /// Sends `null` on the app's port `elmboxExport` and returns the one
    /// value it sends on `elmboxExported` in that event, as JSON text.
    /// [`Error::MigrationRefused`] if it lacks either port, throws, or
    /// sends no value or several. The event changes the app as any event
    /// does: export from a copy of an app that goes on
    /// ([`crate::DurableApp`] does).
    pub fn export_model(&mut self) -> Result<String> {
        let refused = |reason: String| Error::MigrationRefused { reason };
        self.check_alive()
            .map_err(|e| refused(format!("the old version cannot run: {e}")))?;
        let (store, guest) = self.guest_parts();
        let status = guest::call(&guest.export, store, ());
        let mut sent = self
            .finish(status, parse_outputs)
            .map_err(|e| refused(format!("the old version did not export its model: {e}")))?;
        match sent.len() {
            1 => Ok(sent.remove(0).to_string()),
            0 => Err(refused(format!(
                "the old version sent nothing on `{EXPORTED_PORT}` when sent null on `{EXPORT_PORT}`"
            ))),
            n => Err(refused(format!(
                "the old version sent {n} values on `{EXPORTED_PORT}`, not one"
            ))),
        }
    }
}
