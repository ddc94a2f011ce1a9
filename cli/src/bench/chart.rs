//! The SVG chart: latency distributions (uncontended, handoff) and growth curves (held
//! locks, waiters), one panel each. plotters' SVG backend writes text as SVG `<text>`, so
//! no font library is needed.

use std::path::Path;

use distlock::{LockError, Result};
use plotters::prelude::*;

use super::report::Report;

const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// One line of a panel: its label and its points.
type Series = (String, Vec<(f64, f64)>);

/// Draws the report's chart into `path`.
pub(crate) fn draw(path: &Path, report: &Report, title: &str) -> Result<()> {
    let fail = |e: String| LockError::config(format!("cannot draw {}: {e}", path.display()));
    let root = SVGBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let root = root
        .titled(title, ("sans-serif", 24))
        .map_err(|e| fail(e.to_string()))?;
    let panels = root.split_evenly((2, 2));
    let distribution = |case: &str| -> Vec<Series> {
        report
            .rows
            .iter()
            .filter(|r| r.case == case && r.step.is_none() && !r.percentiles_us.is_empty())
            .map(|r| {
                let points = r
                    .percentiles_us
                    .iter()
                    .enumerate()
                    .map(|(p, us)| (p as f64, us.max(0.1)))
                    .collect();
                (r.subject.clone(), points)
            })
            .collect()
    };
    let growth = |case: &str, metric: &str| -> Vec<Series> {
        let mut series: Vec<Series> = Vec::new();
        for row in report.rows.iter().filter(|r| r.case == case) {
            let (Some(step), Some(value)) = (row.step, row.get(metric)) else {
                continue;
            };
            let point = (step as f64, value.max(0.1));
            match series.iter_mut().find(|(s, _)| *s == row.subject) {
                Some((_, points)) => points.push(point),
                None => series.push((row.subject.clone(), vec![point])),
            }
        }
        series
    };
    let specs: [(&str, &str, Vec<Series>, bool); 4] = [
        (
            "uncontended acquire+release latency (µs) by percentile",
            "percentile",
            distribution("uncontended"),
            false,
        ),
        (
            "handoff latency (µs) by percentile",
            "percentile",
            distribution("handoff"),
            false,
        ),
        (
            "held locks on one client: acquire p50 (µs)",
            "locks held",
            growth("holds", "p50_us"),
            true,
        ),
        (
            "waiters on one name: drain time per waiter (µs)",
            "waiters",
            growth("waiters", "drain_per_waiter_us"),
            true,
        ),
    ];
    for (area, (caption, x_label, series, log_x)) in panels.iter().zip(specs) {
        panel(area, caption, x_label, &series, log_x).map_err(fail)?;
    }
    root.present().map_err(|e| fail(e.to_string()))
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    x_label: &str,
    series: &[Series],
    log_x: bool,
) -> std::result::Result<(), String> {
    let points = || series.iter().flat_map(|(_, p)| p.iter());
    let y_max = points().map(|p| p.1).fold(1.0, f64::max) * 1.5;
    let y_min = points()
        .map(|p| p.1)
        .fold(f64::MAX, f64::min)
        .min(y_max / 10.0)
        / 1.5;
    let x_max = points().map(|p| p.0).fold(1.0, f64::max);
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60);
    if log_x {
        let mut chart = builder
            .build_cartesian_2d((1.0..x_max * 1.5).log_scale(), (y_min..y_max).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .x_label_formatter(&|x| short(*x))
            .y_label_formatter(&|y| short(*y))
            .draw()
            .map_err(err)?;
        lines(&mut chart, series).map_err(err)?;
        legend(&mut chart).map_err(err)
    } else {
        let mut chart = builder
            .build_cartesian_2d(0.0..100.0, (y_min..y_max).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .x_label_formatter(&|x| short(*x))
            .y_label_formatter(&|y| short(*y))
            .draw()
            .map_err(err)?;
        lines(&mut chart, series).map_err(err)?;
        legend(&mut chart).map_err(err)
    }
}

/// An axis label: whole numbers without decimals, small ones with one.
fn short(v: f64) -> String {
    if v >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn lines<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    series: &[Series],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    for (i, (label, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
            });
    }
    Ok(())
}

fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
}
