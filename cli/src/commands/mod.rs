//! One module per subcommand: its arguments (clap) and what it does.

pub mod build;
pub mod chart;
pub mod run;
pub mod serve;
pub mod soak;
pub mod state;
