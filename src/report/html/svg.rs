//! The report's charts as inline SVG, drawn with plotters' SVG backend:
//! text is written as `<text>` elements (no font files), and plotters
//! escapes every text and attribute it writes, so names from the data
//! cannot break out of the picture.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor;

use crate::report::charts::{CompletionChart, WEEKDAYS};
use crate::report::model::{ExperimentReport, FunnelStep, Verdict};

/// Width of every chart in SVG units; CSS scales it to the page.
const WIDTH: u32 = 720;
const FONT: &str = "sans-serif";

const INK: RGBColor = RGBColor(33, 37, 41);
const GREY: RGBColor = RGBColor(134, 142, 150);
const BAR: RGBColor = RGBColor(51, 108, 176);
const BETTER: RGBColor = RGBColor(47, 133, 90);
const WORSE: RGBColor = RGBColor(197, 48, 48);
const UNSURE: RGBColor = RGBColor(134, 142, 150);

/// Series colours, told apart by people with the common colour-vision
/// deficiencies (Okabe and Ito's palette).
const SERIES: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
];

/// A variant's colour, the same in every chart.
pub fn series_colour(index: usize) -> RGBColor {
    SERIES[index % SERIES.len()]
}

type Failed = Box<dyn std::error::Error>;

/// Draws with `draw` on a fresh SVG of `height`; the SVG text, stripped of
/// its `xmlns` (inline SVG in HTML needs none) and labelled for screen
/// readers, or a short note when plotters refused.
fn svg(
    label: &str,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Result<(), Failed>,
) -> String {
    let mut out = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(Failed::from)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Failed::from))
    };
    match drawn {
        Ok(()) => out.replacen(
            " xmlns=\"http://www.w3.org/2000/svg\"",
            &format!(" role=\"img\" aria-label=\"{}\"", attribute(label)),
            1,
        ),
        Err(e) => format!(
            "<p class=\"note\">This chart could not be drawn: {}</p>",
            attribute(&e.to_string())
        ),
    }
}

/// Escapes text for an attribute or element.
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The funnel as horizontal bars, the first step on top, each labelled
/// with its count and its rate from the step before.
pub fn funnel(steps: &[FunnelStep]) -> String {
    let k = steps.len() as i32;
    let top = steps.iter().map(|s| s.count).max().unwrap_or(0).max(1) as f64;
    svg("The funnel", 40 + 34 * k as u32 + 30, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(24)
            .y_label_area_size(90)
            .build_cartesian_2d(0f64..top * 1.5, (0..k).into_segmented())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .y_labels(k as usize)
            .y_label_style((FONT, 15, &INK))
            .x_label_style((FONT, 12, &GREY))
            .y_label_formatter(&|y| match y {
                SegmentValue::CenterOf(i) => steps
                    .get((k - 1 - i) as usize)
                    .map(|s| s.step.name().to_string())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .x_label_formatter(&|x| {
                if *x <= top {
                    format!("{x:.0}")
                } else {
                    String::new()
                }
            })
            .draw()?;
        chart.draw_series(steps.iter().enumerate().map(|(i, s)| {
            let y = k - 1 - i as i32;
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(y)),
                    (s.count as f64, SegmentValue::Exact(y + 1)),
                ],
                BAR.filled(),
            );
            bar.set_margin(5, 5, 0, 0);
            bar
        }))?;
        chart.draw_series(steps.iter().enumerate().map(|(i, s)| {
            let y = k - 1 - i as i32;
            let rate = match s.rate_from_previous {
                Some(r) if i > 0 => format!("  ({} of the step before)", percent(r)),
                _ => String::new(),
            };
            Text::new(
                format!("{}{rate}", s.count),
                (s.count as f64 + top * 0.02, SegmentValue::CenterOf(y)),
                (FONT, 14)
                    .into_font()
                    .color(&INK)
                    .pos(text_anchor::Pos::new(
                        text_anchor::HPos::Left,
                        text_anchor::VPos::Center,
                    )),
            )
        }))?;
        Ok(())
    })
}

/// Completion over time: one line per variant, the cumulative completion
/// rate of those enrolled up to each day.
pub fn completion(chart_data: &CompletionChart) -> String {
    let days = chart_data.days.len().max(1);
    let top = chart_data
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.cumulative_rate))
        .fold(0.0f64, f64::max);
    let top = ((top * 100.0 / 10.0).ceil() * 10.0).clamp(10.0, 100.0);
    let label = match &chart_data.experiment {
        Some(e) => format!("Completion over time by variant of {e}"),
        None => "Completion over time".to_string(),
    };
    svg(&label, 320, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..(days as f64 - 1.0).max(1.0), 0f64..top)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(222, 226, 230))
            .x_labels(days.min(7))
            .y_labels(6)
            .x_label_style((FONT, 12, &GREY))
            .y_label_style((FONT, 12, &GREY))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() > 1e-9 || i < 0.0 {
                    return String::new();
                }
                chart_data
                    .days
                    .get(i as usize)
                    .map(|d| d.get(5..).unwrap_or(d).to_string())
                    .unwrap_or_default()
            })
            .y_label_formatter(&|y| format!("{y:.0}%"))
            .y_desc("completed, cumulative")
            .axis_desc_style((FONT, 12, &GREY))
            .draw()?;
        for (index, series) in chart_data.series.iter().enumerate() {
            let colour = series_colour(index);
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .enumerate()
                .filter_map(|(day, p)| Some((day as f64, p.cumulative_rate? * 100.0)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(3)))?
                .label(series.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
                });
            if points.len() <= 31 {
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(206, 212, 218))
            .label_font((FONT, 14, &INK))
            .draw()?;
        Ok(())
    })
}

/// A weekday × hour heatmap: Monday on top, midnight on the left, darker
/// for more.
pub fn heatmap(label: &str, cells: &[Vec<u64>], colour: RGBColor) -> String {
    let top = cells.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    svg(label, 250, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d((0i32..24).into_segmented(), (0i32..7).into_segmented())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(24)
            .y_labels(7)
            .x_label_style((FONT, 12, &GREY))
            .y_label_style((FONT, 13, &INK))
            .x_label_formatter(&|h| match h {
                SegmentValue::CenterOf(h) if h % 3 == 0 => format!("{h:02}"),
                _ => String::new(),
            })
            .y_label_formatter(&|d| match d {
                SegmentValue::CenterOf(d) => WEEKDAYS
                    .get((6 - d) as usize)
                    .map(|w| w.to_string())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .draw()?;
        chart.draw_series((0..7).flat_map(|d| {
            (0..24).map(move |h| {
                let count = cells.get(d).and_then(|r| r.get(h)).copied().unwrap_or(0);
                let shade = if count == 0 {
                    RGBColor(241, 243, 245).filled()
                } else {
                    colour.mix(0.15 + 0.85 * count as f64 / top).filled()
                };
                let (x, y) = (h as i32, 6 - d as i32);
                let mut cell = Rectangle::new(
                    [
                        (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                        (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
                    ],
                    shade,
                );
                cell.set_margin(1, 1, 1, 1);
                cell
            })
        }))?;
        Ok(())
    })
}

/// An experiment's intervals: each variant's completion rate with its
/// Wilson 95% interval, the control's rate as a grey line; then each
/// comparison's difference from the control with its 95% interval (thin)
/// and its always-valid interval (thick), coloured by verdict, zero as a
/// line.
pub fn intervals(experiment: &ExperimentReport) -> String {
    let variants = &experiment.variants;
    let k = variants.len() as i32;
    let comparisons = &experiment.comparisons;
    let c = comparisons.len() as i32;
    let rate_top = variants
        .iter()
        .filter_map(|v| v.interval.map(|i| i[1]))
        .fold(0.0f64, f64::max);
    let rate_top = ((rate_top * 100.0 / 10.0).ceil() * 10.0).clamp(10.0, 100.0);
    let reach = comparisons
        .iter()
        .flat_map(|c| [c.interval, c.always_valid_interval])
        .flatten()
        .flat_map(|[lo, hi]| [lo.abs(), hi.abs()])
        .fold(0.05f64, f64::max);
    let reach = ((reach * 100.0 / 5.0).ceil() * 5.0).min(100.0);
    let label = format!("Intervals of experiment {}", experiment.name);
    let rate_height = 50 + 32 * k as u32;
    let diff_height = if c > 0 { 60 + 32 * c as u32 } else { 0 };
    svg(&label, rate_height + diff_height, |root| {
        let (upper, lower) = root.split_vertically(rate_height);
        let mut rates = ChartBuilder::on(&upper)
            .margin(12)
            .caption("completion rate, 95% interval", (FONT, 14, &GREY))
            .x_label_area_size(22)
            .y_label_area_size(110)
            .build_cartesian_2d(0f64..rate_top, (0..k).into_segmented())?;
        rates
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(233, 236, 239))
            .y_labels(k as usize)
            .x_labels(6)
            .x_label_style((FONT, 12, &GREY))
            .y_label_style((FONT, 14, &INK))
            .x_label_formatter(&|x| format!("{x:.0}%"))
            .y_label_formatter(&|y| match y {
                SegmentValue::CenterOf(i) => variants
                    .get((k - 1 - i) as usize)
                    .map(|v| v.name.clone())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .draw()?;
        if let Some(control) = variants.first().and_then(|v| v.rate) {
            rates.draw_series(std::iter::once(PathElement::new(
                vec![
                    (control * 100.0, SegmentValue::Exact(0)),
                    (control * 100.0, SegmentValue::Exact(k)),
                ],
                GREY.stroke_width(1),
            )))?;
        }
        for (i, v) in variants.iter().enumerate() {
            let (Some(rate), Some([lo, hi])) = (v.rate, v.interval) else {
                continue;
            };
            let y = SegmentValue::CenterOf(k - 1 - i as i32);
            let colour = series_colour(i);
            rates.draw_series(std::iter::once(PathElement::new(
                vec![(lo * 100.0, y.clone()), (hi * 100.0, y.clone())],
                colour.stroke_width(4),
            )))?;
            rates.draw_series(std::iter::once(Circle::new(
                (rate * 100.0, y.clone()),
                6,
                colour.filled(),
            )))?;
        }
        if c == 0 {
            return Ok(());
        }
        let mut diffs = ChartBuilder::on(&lower)
            .margin(12)
            .caption(
                "difference from the control, points: 95% (thin), always-valid (thick)",
                (FONT, 14, &GREY),
            )
            .x_label_area_size(22)
            .y_label_area_size(110)
            .build_cartesian_2d(-reach..reach, (0..c).into_segmented())?;
        diffs
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(233, 236, 239))
            .y_labels(c as usize)
            .x_labels(7)
            .x_label_style((FONT, 12, &GREY))
            .y_label_style((FONT, 14, &INK))
            .x_label_formatter(&|x| format!("{x:+.0}"))
            .y_label_formatter(&|y| match y {
                SegmentValue::CenterOf(i) => comparisons
                    .get((c - 1 - i) as usize)
                    .map(|v| format!("{} − {}", v.variant, v.versus))
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .draw()?;
        diffs.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, SegmentValue::Exact(0)), (0.0, SegmentValue::Exact(c))],
            INK.stroke_width(1),
        )))?;
        for (i, comparison) in comparisons.iter().enumerate() {
            let y = SegmentValue::CenterOf(c - 1 - i as i32);
            let colour = verdict_colour(comparison.verdict);
            if let Some([lo, hi]) = comparison.always_valid_interval {
                diffs.draw_series(std::iter::once(PathElement::new(
                    vec![(lo * 100.0, y.clone()), (hi * 100.0, y.clone())],
                    colour.mix(0.45).stroke_width(9),
                )))?;
            }
            if let Some([lo, hi]) = comparison.interval {
                diffs.draw_series(std::iter::once(PathElement::new(
                    vec![(lo * 100.0, y.clone()), (hi * 100.0, y.clone())],
                    colour.stroke_width(2),
                )))?;
            }
            if let Some(d) = comparison.difference {
                diffs.draw_series(std::iter::once(Circle::new(
                    (d * 100.0, y.clone()),
                    5,
                    colour.filled(),
                )))?;
            }
        }
        Ok(())
    })
}

pub fn verdict_colour(verdict: Verdict) -> RGBColor {
    match verdict {
        Verdict::Better => BETTER,
        Verdict::Worse => WORSE,
        Verdict::NoDifference | Verdict::NotEnoughData => UNSURE,
    }
}

/// The heatmaps' colours: invites in blue, completions in green.
pub const INVITES: RGBColor = BAR;
pub const COMPLETIONS: RGBColor = BETTER;
