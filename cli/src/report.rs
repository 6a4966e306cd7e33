//! Soak reports: the per-batch figures as CSV, and charts of them (PNG and
//! SVG) drawn with plotters: one panel per run, side by side.

use std::path::Path;

use anyhow::{bail, Context};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `soak.csv`: the state after one batch.
#[derive(Serialize, Deserialize, Clone)]
pub struct BatchRow {
    pub batch: u64,
    pub events: u64,
    pub batch_ms: u64,
    pub linear_memory_bytes: u64,
    pub quickjs_heap_bytes: u64,
    pub rss_bytes: u64,
    pub quickjs_objects: u64,
}

/// One panel: a titled series of batches.
pub struct Panel {
    pub title: String,
    pub rows: Vec<BatchRow>,
}

pub fn write_csv(path: &Path, rows: &[BatchRow]) -> anyhow::Result<()> {
    let mut out =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    for row in rows {
        out.serialize(row)?;
    }
    out.flush()?;
    Ok(())
}

pub fn read_csv(path: &Path) -> anyhow::Result<Vec<BatchRow>> {
    let mut input =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let rows = input.deserialize().collect::<Result<Vec<BatchRow>, _>>()?;
    if rows.is_empty() {
        bail!("{} has no batches", path.display());
    }
    Ok(rows)
}

/// Draws `panels` side by side into `path`, as PNG or SVG by its extension.
pub fn draw(path: &Path, title: &str, panels: &[Panel]) -> anyhow::Result<()> {
    let size = (520 * panels.len().max(1) as u32, 420);
    load_font()?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => draw_on(
            SVGBackend::new(path, size).into_drawing_area(),
            title,
            panels,
        ),
        Some("png") => draw_on(
            BitMapBackend::new(path, size).into_drawing_area(),
            title,
            panels,
        ),
        _ => bail!("chart {} must end in .png or .svg", path.display()),
    }
    .with_context(|| format!("drawing {}", path.display()))
}

fn draw_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    panels: &[Panel],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(plot_error)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(plot_error)?;
    for (area, panel) in root
        .split_evenly((1, panels.len().max(1)))
        .iter()
        .zip(panels)
    {
        draw_panel(area, panel)?;
    }
    root.present().map_err(plot_error)?;
    Ok(())
}

const MB: f64 = 1024.0 * 1024.0;

/// A line on a panel: its legend, colour and the figure it plots.
type Series = (&'static str, RGBColor, fn(&BatchRow) -> u64);

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let max_events = panel.rows.iter().map(|r| r.events).max().unwrap_or(1) as f64;
    let max_mb = panel
        .rows
        .iter()
        .flat_map(|r| [r.linear_memory_bytes, r.quickjs_heap_bytes, r.rss_bytes])
        .max()
        .unwrap_or(0) as f64
        / MB;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..max_events * 1.02, 0.0..(max_mb * 1.15).max(1.0))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("events")
        .y_desc("MB")
        .x_label_formatter(&|x| format_events(*x))
        .draw()
        .map_err(plot_error)?;
    let series: [Series; 3] = [
        ("process RSS", RGBColor(90, 90, 90), |r| r.rss_bytes),
        ("linear memory", RGBColor(31, 119, 180), |r| {
            r.linear_memory_bytes
        }),
        ("QuickJS heap", RGBColor(214, 39, 40), |r| {
            r.quickjs_heap_bytes
        }),
    ];
    for (name, color, value) in series {
        let points: Vec<(f64, f64)> = panel
            .rows
            .iter()
            .map(|r| (r.events as f64, value(r) as f64 / MB))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(plot_error)?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

/// Axis labels: 200, 1.2k, 50k, 1.5M, 3M (one decimal, only when it says
/// something, so neighbouring ticks never read alike).
fn format_events(x: f64) -> String {
    let (value, unit) = if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    let text = format!("{value:.1}");
    format!("{}{unit}", text.strip_suffix(".0").unwrap_or(&text))
}

fn plot_error<E: std::error::Error + Send + Sync + 'static>(
    e: DrawingAreaErrorKind<E>,
) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Text needs a TrueType font (to draw it in PNGs, to measure it in both);
/// plotters' ab_glyph backend takes it from us. Debian's fonts-dejavu-core
/// (installed by `make setup`) provides one.
fn load_font() -> anyhow::Result<()> {
    static LOADED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if LOADED.get().is_some() {
        return Ok(());
    }
    const CANDIDATES: [&str; 3] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ];
    let Some(bytes) = CANDIDATES.iter().find_map(|p| std::fs::read(p).ok()) else {
        bail!("charts need the DejaVu Sans font (Debian package fonts-dejavu-core)");
    };
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("DejaVu Sans is not a usable font"))?;
    let _ = LOADED.set(());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::format_events;

    #[test]
    fn event_counts_read_apart_on_the_axis() {
        let labels: Vec<String> = [200.0, 1000.0, 1200.0, 1400.0, 50_000.0, 1.5e6, 3e6]
            .into_iter()
            .map(format_events)
            .collect();
        assert_eq!(labels, ["200", "1k", "1.2k", "1.4k", "50k", "1.5M", "3M"]);
    }
}
