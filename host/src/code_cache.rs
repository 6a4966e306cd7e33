//! Compiled guests kept on disk ([`RuntimeBuilder::code_cache`]): compiling
//! the guest is most of a runtime's start (~0.8 s on two cores), and a
//! compiled guest depends only on the guest's bytes and the engine's
//! settings, so one compile serves every later start with the same both.
//!
//! A file is named after both: the guest's hash ([`GuestId`]) and wasmtime's
//! compatibility hash of the engine (its version, target and settings, which
//! include epoch interruption and the Wizer instrumentation's version, as
//! `wasmtime-wizer` is released with wasmtime). Files are written whole and
//! renamed into place, so a reader never sees half of one; writing one
//! removes all but the newest few others.
//!
//! [`RuntimeBuilder::code_cache`]: crate::runtime::RuntimeBuilder::code_cache

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::{Engine, Module};

use crate::error::Result;
use crate::guest::GuestId;

/// Changes when elmbox changes how it prepares the guest before compiling
/// it (see `runtime::wizer`), which the engine's hash cannot know.
const PREPARATION: &str = "wizer-instrumented, _start renamed elmbox_main, v1";

/// Where the compiled guest `guest` for `engine` is kept in `dir`.
fn path(dir: &Path, engine: &Engine, guest: GuestId) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    PREPARATION.hash(&mut hasher);
    dir.join(format!("guest-{guest}-{:016x}.cwasm", hasher.finish()))
}

/// The compiled guest from `dir` if it holds one for this engine, otherwise
/// `compile`d and written there for next time. The cache only saves time:
/// a file that does not load is compiled again and replaced, and one that
/// cannot be written is left out.
pub(crate) fn load_or_compile(
    dir: &Path,
    engine: &Engine,
    guest: GuestId,
    compile: impl FnOnce() -> Result<Module>,
) -> Result<Module> {
    let path = path(dir, engine, guest);
    if path.is_file() {
        // SAFETY: the file is native code that wasmtime maps and runs as
        // is. elmbox writes it only from `Module::serialize` of this
        // engine's compile and renames it into place whole; wasmtime checks
        // its header and the engine's compatibility before using it. The
        // directory must be writable by its owner alone, as for wasmtime's
        // own cache.
        if let Ok(module) = unsafe { Module::deserialize_file(engine, &path) } {
            return Ok(module);
        }
    }
    let module = compile()?;
    if store(&path, &module).is_ok() {
        prune(dir, &path);
    }
    Ok(module)
}

/// Compiled guests a directory keeps: each elmbox build (and engine
/// setting) writes one of ~4 MB, so without a bound they pile up.
const KEEP: usize = 8;

/// Removes all but the [`KEEP`] newest compiled guests in `dir`, never
/// `kept` (just written). Only when a new one is written: a cache in use
/// with one elmbox stays as it is.
fn prune(dir: &Path, kept: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut others: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with("guest-") && name.ends_with(".cwasm")
        })
        .map(|entry| entry.path())
        .filter(|path| path != kept)
        .filter_map(|path| Some((std::fs::metadata(&path).ok()?.modified().ok()?, path)))
        .collect();
    others.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    for (_, old) in others.into_iter().skip(KEEP - 1) {
        let _ = std::fs::remove_file(old);
    }
}

fn store(path: &Path, module: &Module) -> anyhow::Result<()> {
    let dir = path.parent().expect("a file in the cache directory");
    std::fs::create_dir_all(dir)?;
    let bytes = module.serialize()?;
    let name = path.file_name().expect("a file name").to_string_lossy();
    let partial = dir.join(format!(".{name}.{}.partial", std::process::id()));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    Ok(())
}
