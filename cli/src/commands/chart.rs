//! `elmbox chart`: several soak reports side by side in one chart.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::report::{self, Panel};

/// Draw soak reports (the soak.csv of `soak --report`) side by side, one panel
/// each, into PNG and/or SVG files.
#[derive(Args)]
pub struct ChartArgs {
    /// Panels, left to right, as TITLE=PATH/TO/soak.csv.
    #[arg(required = true, value_name = "TITLE=CSV")]
    panels: Vec<String>,

    /// Output file (.png or .svg); repeat for both.
    #[arg(long = "out", short = 'o', required = true, value_name = "FILE")]
    outputs: Vec<PathBuf>,

    #[arg(long, default_value = "elmbox soak: memory per batch")]
    title: String,
}

pub fn chart(args: ChartArgs) -> anyhow::Result<ExitCode> {
    let mut panels = Vec::new();
    for spec in &args.panels {
        let (title, path) = spec
            .split_once('=')
            .with_context(|| format!("panel `{spec}` is not TITLE=CSV"))?;
        panels.push(Panel {
            title: title.to_string(),
            rows: report::read_csv(path.as_ref())?,
        });
    }
    for output in &args.outputs {
        report::draw(output, &args.title, &panels)?;
        println!("wrote {}", output.display());
    }
    Ok(ExitCode::SUCCESS)
}
