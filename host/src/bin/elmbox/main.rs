//! The `elmbox` command: `run` an Elm app on stdin events, or `soak` it with
//! millions of generated events while watching memory.

mod app_args;
mod run;
mod soak;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "elmbox",
    version,
    about = "Run Elm `Platform.worker` programs in a WebAssembly sandbox",
    long_about = "Run Elm `Platform.worker` programs in a WebAssembly sandbox.\n\n\
        elmbox evaluates the JavaScript that `elm make` produces once, inside QuickJS \
        compiled to WebAssembly, then feeds it events through the app's incoming port \
        and prints what it sends on its outgoing port. Memory stays bounded because \
        no source text is evaluated per event."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(run::RunArgs),
    Soak(soak::SoakArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Soak(args) => soak::soak(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("elmbox: {e:#}");
            ExitCode::from(2)
        }
    }
}
