//! The `elmbox` command: `run` an Elm app on stdin events, `build` it into a
//! standalone pre-initialised module, `soak` it with millions of generated
//! events while watching memory, and `chart` the memory reports of several
//! soaks side by side, show what a `--state` directory holds, and `serve`
//! apps over HTTP (crate `elmbox-server`). One file
//! per subcommand under `commands/`; the
//! library `elmbox` does the work.

mod app_args;
mod code_cache;
mod commands;
mod outgoing;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::{build, chart, run, serve, soak, state};

#[derive(Parser)]
#[command(
    name = "elmbox",
    version,
    about = "Run Elm `Platform.worker` programs in a WebAssembly sandbox",
    long_about = "Run Elm `Platform.worker` programs in a WebAssembly sandbox.\n\n\
        elmbox evaluates the JavaScript that `elm make` produces once, inside QuickJS \
        compiled to WebAssembly, then feeds it events through the app's incoming port \
        and prints what it sends on its outgoing port. Memory stays bounded because \
        no source text is evaluated per event.\n\n\
        The compiled sandbox is kept in $ELMBOX_CODE_CACHE (`off` for none), else \
        $XDG_CACHE_HOME/elmbox, else ~/.cache/elmbox: only the first start compiles it."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(run::RunArgs),
    Build(build::BuildArgs),
    Soak(soak::SoakArgs),
    Chart(chart::ChartArgs),
    State(state::StateArgs),
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Build(args) => build::build(args),
        Command::Soak(args) => soak::soak(args),
        Command::Chart(args) => chart::chart(args),
        Command::State(args) => state::state(args),
        Command::Serve(args) => serve::serve(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("elmbox: {e:#}");
            ExitCode::from(elmbox_abi::lines::EXIT_LOAD_FAILED)
        }
    }
}
