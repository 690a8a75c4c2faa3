//! The report's plots as self-contained SVG strings (plotters' SVG
//! backend): ROC with a log false-positive axis, precision-recall,
//! calibration, score histograms by class, and campaign timelines.

use anyhow::{anyhow, Result};
use plotters::{coord::Shift, prelude::*};

use crate::metrics::{CalibrationBin, CurvePoint};

const SIZE: (u32, u32) = (520, 380);
/// Smallest false-positive rate shown on the ROC plot's log axis.
const MIN_FPR: f64 = 1e-4;
const COLOURS: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
];

/// A named curve to draw.
pub struct Series<'a> {
    /// Legend label.
    pub name: &'a str,
    /// Points.
    pub points: &'a [CurvePoint],
}

fn draw(
    svg: &mut String,
    paint: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<()> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
    paint(&root)?;
    root.present().map_err(|e| anyhow!("plot: {e}"))
}

/// A chart builder with the report's caption style, margins and label areas.
fn builder<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(44);
    b
}

/// Draws the series legend at `position`.
fn legend<'a, 'b: 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plot: {e:?}")
}

/// ROC curves, false-positive rate on a log axis from 1e-4 to 1, with
/// dashed verticals at the 0.1% and 1% operating points.
pub fn roc(series: &[Series]) -> Result<String> {
    let mut svg = String::new();
    draw(&mut svg, |root| {
        let mut chart = builder(root, "ROC (log false-positive rate)")
            .build_cartesian_2d((MIN_FPR..1.0f64).log_scale(), 0.0..1.0f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("benign false-positive rate")
            .y_desc("recall")
            .draw()
            .map_err(plot_err)?;
        for fpr in [0.001, 0.01] {
            chart
                .draw_series(DashedLineSeries::new(
                    [(fpr, 0.0), (fpr, 1.0)],
                    4,
                    4,
                    BLACK.mix(0.4).stroke_width(1),
                ))
                .map_err(plot_err)?;
        }
        for (s, colour) in series.iter().zip(COLOURS.iter().cycle()) {
            let points = s.points.iter().map(|p| (p.x.max(MIN_FPR), p.y));
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(plot_err)?
                .label(s.name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })?;
    Ok(svg)
}

/// Precision-recall curves.
pub fn precision_recall(series: &[Series]) -> Result<String> {
    let mut svg = String::new();
    draw(&mut svg, |root| {
        let mut chart = builder(root, "Precision-recall")
            .build_cartesian_2d(0.0..1.0f64, 0.0..1.0f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("recall")
            .y_desc("precision")
            .draw()
            .map_err(plot_err)?;
        for (s, colour) in series.iter().zip(COLOURS.iter().cycle()) {
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().map(|p| (p.x, p.y)),
                    colour.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(s.name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerLeft)
    })?;
    Ok(svg)
}

/// Calibration: mean predicted score against the observed extraction
/// share per bin, next to the diagonal.
pub fn calibration(bins: &[CalibrationBin]) -> Result<String> {
    let mut svg = String::new();
    draw(&mut svg, |root| {
        let mut chart = builder(root, "Calibration")
            .build_cartesian_2d(0.0..1.0f64, 0.0..1.0f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("mean score in bin")
            .y_desc("share extraction")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                4,
                4,
                BLACK.mix(0.4).stroke_width(1),
            ))
            .map_err(plot_err)?;
        let points: Vec<(f64, f64)> = bins.iter().map(|b| (b.mean_score, b.observed)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), COLOURS[0].stroke_width(2)))
            .map_err(plot_err)?;
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, COLOURS[0].filled())),
            )
            .map_err(plot_err)?;
        Ok(())
    })?;
    Ok(svg)
}

/// Score histograms of benign and extraction sessions, each as the share
/// of its class per bin (equal-width bins on [0, 1]).
pub fn score_histograms(benign: &[usize], extraction: &[usize]) -> Result<String> {
    let share = |counts: &[usize]| -> Vec<f64> {
        let total = counts.iter().sum::<usize>().max(1) as f64;
        counts.iter().map(|&c| c as f64 / total).collect()
    };
    let (b, e) = (share(benign), share(extraction));
    let bins = b.len().max(1);
    let top = b.iter().chain(&e).copied().fold(0.0, f64::max).max(0.01) * 1.05;
    let mut svg = String::new();
    draw(&mut svg, |root| {
        let mut chart = builder(root, "Scores by class")
            .build_cartesian_2d(0.0..1.0f64, 0.0..top)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("model score")
            .y_desc("share of the class's sessions")
            .draw()
            .map_err(plot_err)?;
        let width = 1.0 / bins as f64;
        for (name, shares, colour) in [("benign", &b, COLOURS[0]), ("extraction", &e, COLOURS[1])] {
            chart
                .draw_series(shares.iter().enumerate().map(|(i, &h)| {
                    let x0 = i as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, h)], colour.mix(0.5).filled())
                }))
                .map_err(plot_err)?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.mix(0.5).filled())
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperMiddle)
    })?;
    Ok(svg)
}

/// Colours of the timeline's campaigns, in turn.
const CAMPAIGN_COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// One campaign's band of the timeline: for each account shown, the hours
/// (since the window's start) at which its sessions began.
pub struct TimelineBand<'a> {
    /// Campaign id (legend).
    pub name: &'a str,
    /// Session starts per account.
    pub accounts: &'a [Vec<f64>],
}

/// Accounts × time: one row per account, campaigns in stacked bands of
/// their own colour, a dot at every session start. Waves, shifts and
/// cadences show as columns and stripes.
pub fn campaign_timeline(bands: &[TimelineBand]) -> Result<String> {
    let rows = bands.iter().map(|b| b.accounts.len()).sum::<usize>().max(1);
    let end = bands
        .iter()
        .flat_map(|b| b.accounts.iter().flatten())
        .copied()
        .fold(1.0f64, f64::max);
    let mut svg = String::new();
    draw(&mut svg, |root| {
        let mut chart = builder(root, "Campaign timelines (accounts x time)")
            .build_cartesian_2d(0.0..end * 1.02, 0.0..rows as f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("hours since the window's start")
            .y_desc("accounts, by campaign")
            .draw()
            .map_err(plot_err)?;
        let mut row = 0usize;
        for (band, colour) in bands.iter().zip(CAMPAIGN_COLOURS.iter().cycle()) {
            let dots = band.accounts.iter().enumerate().flat_map(|(i, starts)| {
                let y = (row + i) as f64 + 0.5;
                starts
                    .iter()
                    .map(move |&x| Circle::new((x, y), 2, colour.filled()))
            });
            chart
                .draw_series(dots)
                .map_err(plot_err)?
                .label(band.name)
                .legend(move |(x, y)| Circle::new((x + 6, y), 4, colour.filled()));
            row += band.accounts.len();
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{calibration as calibration_bins, roc_curve};

    #[test]
    fn plots_are_svg_documents() {
        let scores = [0.9, 0.8, 0.3, 0.1];
        let pos = [true, false, true, false];
        let curve = roc_curve(&scores, &pos);
        let series = [Series {
            name: "model",
            points: &curve,
        }];
        for svg in [
            roc(&series).unwrap(),
            precision_recall(&series).unwrap(),
            calibration(&calibration_bins(&scores, &pos, 5)).unwrap(),
            score_histograms(&[1, 0, 1], &[0, 1, 1]).unwrap(),
            campaign_timeline(&[TimelineBand {
                name: "op-1",
                accounts: &[vec![0.5, 30.0], vec![2.0]],
            }])
            .unwrap(),
        ] {
            assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
            assert!(svg.trim_end().ends_with("</svg>"));
            assert!(svg.contains("<text"), "axis labels are drawn");
        }
    }
}
