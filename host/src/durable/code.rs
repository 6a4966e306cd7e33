//! What a durable app runs: its code and settings as the store keeps them,
//! what makes two versions the same app, and the app at its start (its
//! JavaScript loaded, or a built module restored).

use std::borrow::Cow;

use elmbox_abi::migration::migrated_flags;
use elmbox_abi::AppSettings;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::config::{wall_clock_ms, AppConfig};
use crate::console::Console;
use crate::error::{Error, Result};
use crate::runtime::Runtime;

use super::OnNewCode;

/// The settings and code of an app as the store keeps them: the settings'
/// JSON, a newline, the source.
pub(super) fn encode_code(settings: &AppSettings, source: &[u8]) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(settings).map_err(|e| Error::Config(e.to_string()))?;
    bytes.push(b'\n');
    bytes.extend_from_slice(source);
    Ok(bytes)
}

pub(super) fn decode_code(bytes: &[u8]) -> Result<(AppSettings, Vec<u8>)> {
    let split = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let settings = serde_json::from_slice(&bytes[..split]).map_err(|e| Error::BadLog {
        reason: format!("the recorded settings do not read back: {e}"),
    })?;
    Ok((
        settings,
        bytes.get(split + 1..).unwrap_or_default().to_vec(),
    ))
}

/// A module made by `elmbox build`, not JavaScript.
pub(super) fn is_module(source: &[u8]) -> bool {
    source.starts_with(b"\0asm")
}

/// A built module's settings, as fixed when it was built. Unless the build fixed the clock's epoch,
/// the clock starts now, as for any instance of the module.
pub(super) fn module_settings(runtime: &Runtime, wasm: &[u8]) -> Result<AppSettings> {
    let mut settings = runtime.module_settings(wasm)?.app;
    if !settings.fixed_epoch {
        settings.epoch_ms = wall_clock_ms();
    }
    Ok(settings)
}

/// The app at its start, with `settings`: its JavaScript loaded and `init`
/// run, or a built module's state restored and given the recorded clock and
/// seed.
pub(super) fn start(
    runtime: &Runtime,
    source: &[u8],
    settings: &AppSettings,
    name: &str,
    console: &Console,
) -> Result<App> {
    if !is_module(source) {
        let settings = as_loaded(settings);
        return runtime.load_settings(source, &settings, name.to_string(), console.clone());
    }
    if settings.migrated.is_some() {
        // Refused: a module's init ran when it was built.
        check_source(OnNewCode::Migrate, source)?;
    }
    let config = AppConfig::default().name(name).console(console.clone());
    let mut app = runtime.restore_module(source, config)?;
    app.set_clock(settings.epoch_ms)?;
    if let Some(seed) = settings.random_seed {
        app.reseed(seed)?;
    }
    let startup = app.kept_startup_outputs()?;
    app.set_startup_outputs(startup);
    Ok(app)
}

/// What makes two versions the same app: code and settings, but not where
/// its history started (the clock's epoch, which a deploy by replay keeps,
/// and `Math.random`'s seed, drawn by the first load).
pub(super) fn identity(settings: &AppSettings, source: &[u8]) -> String {
    let mut settings = settings.clone();
    settings.epoch_ms = 0.0;
    settings.fixed_epoch = false;
    settings.random_seed = None;
    // Nor the model a migration started it from.
    settings.migrated = None;
    let mut hash = Sha256::new();
    hash.update(serde_json::to_vec(&settings).unwrap_or_default());
    hash.update(b"\n");
    hash.update(source);
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A migration into a built module is refused: its `init` ran when it was
/// built, so it cannot start from a model.
pub(super) fn check_source(how: OnNewCode, source: &[u8]) -> Result<()> {
    match how == OnNewCode::Migrate && is_module(source) {
        true => Err(Error::MigrationRefused {
            reason: "the new version is a module built by `elmbox build`, whose init ran when \
                     it was built: migrate to its JavaScript"
                .into(),
        }),
        false => Ok(()),
    }
}

/// The settings the guest loads: a migrated start's model goes to `init`
/// inside its flags (`{"migrated": MODEL, "flags": FLAGS}`).
pub(super) fn as_loaded(settings: &AppSettings) -> Cow<'_, AppSettings> {
    match &settings.migrated {
        None => Cow::Borrowed(settings),
        Some(model) => Cow::Owned(AppSettings {
            flags: Some(migrated_flags(model, settings.flags.as_deref())),
            migrated: None,
            ..settings.clone()
        }),
    }
}
