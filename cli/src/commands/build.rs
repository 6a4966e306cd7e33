//! `elmbox build`: the app pre-initialised into one standalone module.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use elmbox::{BuildOptions, Runtime, SandboxLimits};

use crate::app_args::{AppArgs, AppFile};

/// Write a WASI command module with the app inside, already evaluated and
/// started (a Wizer snapshot taken after `init`).
///
/// Run it with `wasmtime run APP.wasm < events > responses`, or
/// `elmbox run APP.wasm`: it speaks the line protocol of `elmbox run`, one
/// event per stdin line and one JSON array per stdout line. Everything
/// given here is fixed in the module.
#[derive(Args)]
pub struct BuildArgs {
    #[command(flatten)]
    app: AppArgs,

    /// Where to write the module.
    #[arg(short, long, value_name = "APP.wasm")]
    output: PathBuf,

    /// Advance the virtual clock by MS after each event, as `elmbox run
    /// --advance-ms` does.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    advance_ms: u64,
}

pub fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let AppFile::JavaScript(source) = args.app.read()? else {
        bail!(
            "{} is already a WebAssembly module: build takes the JavaScript of `elm make`",
            args.app.app.display()
        );
    };
    let config = args.app.config()?;
    // The module applies these size limits when it serves stdio on its own.
    let runtime = crate::code_cache::with(Runtime::builder())
        .limits(args.app.size_limits(SandboxLimits::default()))
        .build()?;
    let options = BuildOptions {
        advance_ms: args.advance_ms,
    };
    let module = runtime
        .build(&source, config, &options)
        .with_context(|| format!("cannot build {}", args.app.app.display()))?;
    std::fs::write(&args.output, &module)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!(
        "elmbox: wrote {} ({} bytes): {} pre-initialised; run it with `wasmtime run {0}`",
        args.output.display(),
        module.len(),
        args.app.app.display(),
    );
    Ok(ExitCode::SUCCESS)
}
