//! Where the CLI keeps compiled guests (`RuntimeBuilder::code_cache`), so
//! that only the first start after installing elmbox compiles the guest:
//! `$ELMBOX_CODE_CACHE` (`off` for none), else `$XDG_CACHE_HOME/elmbox`,
//! else `~/.cache/elmbox`.

use std::path::PathBuf;

use elmbox::RuntimeBuilder;

pub fn dir() -> Option<PathBuf> {
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = env("ELMBOX_CODE_CACHE") {
        return (dir != "off").then(|| PathBuf::from(dir));
    }
    if let Some(cache) = env("XDG_CACHE_HOME") {
        return Some(PathBuf::from(cache).join("elmbox"));
    }
    env("HOME").map(|home| PathBuf::from(home).join(".cache").join("elmbox"))
}

/// `builder` with the CLI's code cache, if it has one.
pub fn with(builder: RuntimeBuilder) -> RuntimeBuilder {
    match dir() {
        Some(dir) => builder.code_cache(dir),
        None => builder,
    }
}
