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
const WIDTH: u32 = 560;
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

/// A colour as CSS writes it, for the page's legends.
pub fn css(colour: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", colour.0, colour.1, colour.2)
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
    svg("The funnel", 24 + 38 * k as u32, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .y_label_area_size(100)
            .build_cartesian_2d(0f64..top * 1.45, (0..k - 1).into_segmented())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(k as usize + 1)
            .y_label_style((FONT, 17, &INK))
            .y_label_formatter(&|y| match y {
                SegmentValue::CenterOf(i) => steps
                    .get((k - 1 - i) as usize)
                    .map(|s| s.step.name().to_string())
                    .unwrap_or_default(),
                _ => String::new(),
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
                Some(r) if i > 0 => format!(" ({})", percent(r)),
                _ => String::new(),
            };
            Text::new(
                format!("{}{rate}", s.count),
                (s.count as f64 + top * 0.02, SegmentValue::CenterOf(y)),
                (FONT, 16)
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
    // Headroom above the highest line.
    let top = (((top * 100.0 + 5.0) / 10.0).ceil() * 10.0).clamp(10.0, 100.0);
    let label = match &chart_data.experiment {
        Some(e) => format!("Completion over time by variant of {e}"),
        None => "Completion over time".to_string(),
    };
    svg(&label, 320, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_right(28)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..(days as f64 - 1.0).max(1.0), 0f64..top)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(222, 226, 230))
            .x_labels(days.min(7))
            .y_labels(6)
            .x_label_style((FONT, 14, &GREY))
            .y_label_style((FONT, 14, &GREY))
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
            .axis_desc_style((FONT, 14, &GREY))
            .draw()?;
        for (index, series) in chart_data.series.iter().enumerate() {
            let colour = series_colour(index);
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .enumerate()
                .filter_map(|(day, p)| Some((day as f64, p.cumulative_rate? * 100.0)))
                .collect();
            chart.draw_series(LineSeries::new(points.clone(), colour.stroke_width(3)))?;
            if points.len() <= 31 {
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
            }
        }
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
            .build_cartesian_2d((0i32..23).into_segmented(), (0i32..6).into_segmented())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(24)
            .y_labels(7)
            .x_label_style((FONT, 14, &GREY))
            .y_label_style((FONT, 15, &INK))
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

/// An experiment's intervals, a forest plot: each variant's completion
/// rate with its Wilson 95% interval, the control's rate as a grey line;
/// then each comparison's difference from the control with its 95%
/// interval (thin) and its always-valid interval (thick), coloured by
/// verdict, zero as a line. Rows are labelled above their line, inside
/// the plot, so long names keep the plot wide on a phone.
pub fn intervals(experiment: &ExperimentReport) -> String {
    let variants = &experiment.variants;
    let comparisons = &experiment.comparisons;
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
    let rate_height = 64 + ROW * variants.len() as u32;
    let diff_height = if comparisons.is_empty() {
        0
    } else {
        64 + ROW * comparisons.len() as u32
    };
    svg(&label, rate_height + diff_height, |root| {
        let (upper, lower) = root.split_vertically(rate_height);
        let rows: Vec<Row> = variants
            .iter()
            .enumerate()
            .map(|(i, v)| Row {
                label: if i == 0 {
                    format!("{} (control)", v.name)
                } else {
                    v.name.clone()
                },
                colour: series_colour(i),
                point: v.rate.map(|r| r * 100.0),
                thin: v.interval.map(|[lo, hi]| [lo * 100.0, hi * 100.0]),
                thick: None,
            })
            .collect();
        let control = variants.first().and_then(|v| v.rate).map(|r| r * 100.0);
        forest(
            &upper,
            "completion rate with its 95% interval",
            0.0..rate_top,
            &|x| format!("{x:.0}%"),
            control,
            &rows,
        )?;
        if comparisons.is_empty() {
            return Ok(());
        }
        let rows: Vec<Row> = comparisons
            .iter()
            .map(|c| Row {
                label: format!("{} − {}", c.variant, c.versus),
                colour: verdict_colour(c.verdict),
                point: c.difference.map(|d| d * 100.0),
                thin: c.interval.map(|[lo, hi]| [lo * 100.0, hi * 100.0]),
                thick: c
                    .always_valid_interval
                    .map(|[lo, hi]| [lo * 100.0, hi * 100.0]),
            })
            .collect();
        forest(
            &lower,
            "difference in points: 95% (thin), always-valid (thick)",
            -reach..reach,
            &|x| format!("{x:+.0}"),
            Some(0.0),
            &rows,
        )
    })
}

/// Height of one row of a forest plot.
const ROW: u32 = 46;

/// One row of a forest plot, in the plot's units.
struct Row {
    label: String,
    colour: RGBColor,
    point: Option<f64>,
    thin: Option<[f64; 2]>,
    thick: Option<[f64; 2]>,
}

fn forest(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    x: std::ops::Range<f64>,
    x_label: &dyn Fn(&f64) -> String,
    reference: Option<f64>,
    rows: &[Row],
) -> Result<(), Failed> {
    let n = rows.len() as f64;
    let left = x.start;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(caption, (FONT, 15, &GREY))
        .x_label_area_size(24)
        .build_cartesian_2d(x, 0f64..n)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(233, 236, 239))
        .x_labels(7)
        .x_label_style((FONT, 14, &GREY))
        .x_label_formatter(x_label)
        .draw()?;
    if let Some(at) = reference {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(at, 0.0), (at, n)],
            GREY.stroke_width(1),
        )))?;
    }
    for (i, row) in rows.iter().enumerate() {
        // The first row on top; its line a little below the middle.
        let y = n - 1.0 - i as f64 + 0.4;
        chart.draw_series(std::iter::once(Text::new(
            row.label.clone(),
            (left, n - i as f64 - 0.08),
            (FONT, 16)
                .into_font()
                .color(&INK)
                .pos(text_anchor::Pos::new(
                    text_anchor::HPos::Left,
                    text_anchor::VPos::Top,
                )),
        )))?;
        if let Some([lo, hi]) = row.thick {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(lo, y), (hi, y)],
                row.colour.mix(0.4).stroke_width(10),
            )))?;
        }
        if let Some([lo, hi]) = row.thin {
            let width = if row.thick.is_some() { 2 } else { 4 };
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(lo, y), (hi, y)],
                row.colour.stroke_width(width),
            )))?;
        }
        if let Some(at) = row.point {
            chart.draw_series(std::iter::once(Circle::new(
                (at, y),
                6,
                row.colour.filled(),
            )))?;
        }
    }
    Ok(())
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
