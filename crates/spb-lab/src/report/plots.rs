//! Time-series plots drawn with plotters' SVG backend into strings (text stays `<text>`, so no
//! font files are needed).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{compact, ReportError};
use crate::metrics::RunMetrics;

/// Line colours of the runs of a scenario (Okabe–Ito, colour-blind safe), by column index.
pub(crate) const POLICY_COLORS: [(u8, u8, u8); 8] = [
    (0x00, 0x72, 0xb2),
    (0xd5, 0x5e, 0x00),
    (0x00, 0x9e, 0x73),
    (0xcc, 0x79, 0xa7),
    (0xe6, 0x9f, 0x00),
    (0x56, 0xb4, 0xe9),
    (0x00, 0x00, 0x00),
    (0x99, 0x99, 0x99),
];

pub(crate) fn policy_rgb(i: usize) -> RGBColor {
    let (r, g, b) = POLICY_COLORS[i % POLICY_COLORS.len()];
    RGBColor(r, g, b)
}

pub(crate) fn policy_hex(i: usize) -> String {
    let (r, g, b) = POLICY_COLORS[i % POLICY_COLORS.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

const REF_GREY: RGBColor = RGBColor(0x77, 0x77, 0x77);
const WIDTH: u32 = 480;
const HEIGHT: u32 = 230;
/// Longest series drawn; longer timelines are decimated by a stride (the last point is kept).
const MAX_POINTS: usize = 1000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Solid line in the run's colour.
    Line,
    /// Solid line plus a dot at every point.
    Dots,
    /// Dashed reference in the run's colour (references differ between runs).
    RefRun,
    /// Dashed grey reference shared by all runs.
    RefShared,
}

struct Series {
    run: usize,
    kind: Kind,
    points: Vec<(f64, f64)>,
}

/// One chart of a scenario.
pub(crate) struct Plot {
    /// Figure caption (HTML-escaped by the caller).
    pub title: &'static str,
    /// Explains the dashed reference, if any.
    pub note: String,
    pub svg: String,
}

/// The six charts of a scenario, one line per run.
pub(crate) fn scenario_plots(runs: &[&RunMetrics]) -> Result<Vec<Plot>, ReportError> {
    let x_max = runs
        .iter()
        .flat_map(|r| {
            r.timeline
                .iter()
                .map(|p| p.t)
                .chain(std::iter::once(r.virtual_seconds))
        })
        .fold(0.0f64, f64::max);
    let x_max = if x_max > 0.0 { x_max } else { 1.0 };
    let per_run = |f: &dyn Fn(&RunMetrics) -> Vec<(f64, f64)>, kind: Kind| -> Vec<Series> {
        runs.iter()
            .enumerate()
            .map(|(i, r)| Series {
                run: i,
                kind,
                points: decimate(f(r)),
            })
            .collect()
    };
    let mut out = Vec::new();

    // 1, 2: tainted and lost SPBs with the lost floor as reference.
    let floor = |r: &RunMetrics| {
        r.timeline
            .iter()
            .map(|p| (p.t, p.lost_floor as f64))
            .collect::<Vec<_>>()
    };
    for (title, f) in [
        (
            "Tainted SPBs (Normal zone)",
            (|r: &RunMetrics| r.timeline.iter().map(|p| (p.t, p.tainted as f64)).collect())
                as fn(&RunMetrics) -> Vec<(f64, f64)>,
        ),
        ("Lost SPBs (Normal zone)", |r: &RunMetrics| {
            r.timeline.iter().map(|p| (p.t, p.lost as f64)).collect()
        }),
    ] {
        let (refs, shared) = references(runs, &floor);
        let mut s = refs;
        s.extend(per_run(&f, Kind::Line));
        out.push(Plot {
            title,
            note: ref_note("lost floor", shared),
            svg: chart(&s, x_max, None, true, "SPBs")?,
        });
    }

    // 3: free memory.
    let s = per_run(
        &|r| {
            r.timeline
                .iter()
                .map(|p| (p.t, p.free_pages as f64 * 4096.0 / (1u64 << 30) as f64))
                .collect()
        },
        Kind::Line,
    );
    out.push(Plot {
        title: "Free memory (GiB)",
        note: String::new(),
        svg: chart(&s, x_max, None, false, "GiB")?,
    });

    // 4: 1 GiB pages obtainable where probed, with the end-of-run limit as reference.
    let limit = |r: &RunMetrics| {
        vec![
            (0.0, r.gigantic.limit as f64),
            (x_max, r.gigantic.limit as f64),
        ]
    };
    let (mut s, shared) = references(runs, &limit);
    s.extend(per_run(
        &|r| {
            let mut v: Vec<(f64, f64)> = r
                .timeline
                .iter()
                .filter_map(|p| p.gigantic_obtainable.map(|g| (p.t, g as f64)))
                .collect();
            // The end-of-run probe, when the last sample was not probed.
            let end = r
                .timeline
                .last()
                .map(|p| p.t)
                .unwrap_or(0.0)
                .max(r.virtual_seconds);
            if v.last().is_none_or(|&(t, _)| t < end) {
                v.push((end, r.gigantic.allocatable as f64));
            }
            v
        },
        Kind::Dots,
    ));
    out.push(Plot {
        title: "1 GiB pages obtainable (probed)",
        note: ref_note("1 GiB limit at end", shared),
        svg: chart(&s, x_max, None, true, "pages")?,
    });

    // 5: THP success rate per sample interval.
    let s = per_run(
        &|r| {
            let mut v = Vec::new();
            let (mut a0, mut s0) = (0u64, 0u64);
            for p in &r.timeline {
                let da = p.thp_attempts.saturating_sub(a0);
                if da > 0 {
                    v.push((
                        p.t,
                        100.0 * p.thp_success.saturating_sub(s0) as f64 / da as f64,
                    ));
                }
                a0 = p.thp_attempts;
                s0 = p.thp_success;
            }
            v
        },
        Kind::Line,
    );
    out.push(Plot {
        title: "THP success rate (%, per sample interval)",
        note: String::new(),
        svg: chart(&s, x_max, Some(100.0), false, "%")?,
    });

    // 6: pages migrated.
    let s = per_run(
        &|r| {
            r.timeline
                .iter()
                .map(|p| (p.t, p.pages_migrated as f64))
                .collect()
        },
        Kind::Line,
    );
    out.push(Plot {
        title: "Pages migrated (cumulative)",
        note: String::new(),
        svg: chart(&s, x_max, None, false, "pages")?,
    });
    Ok(out)
}

fn ref_note(what: &str, shared: Option<bool>) -> String {
    match shared {
        Some(true) => format!("dashed grey: {what}"),
        Some(false) => format!("dashed: {what} of each run"),
        None => String::new(),
    }
}

/// Reference series: one grey series when every run has the same one, else one per run.
/// The flag is `None` when there is no reference data at all.
fn references(
    runs: &[&RunMetrics],
    f: &dyn Fn(&RunMetrics) -> Vec<(f64, f64)>,
) -> (Vec<Series>, Option<bool>) {
    let all: Vec<Vec<(f64, f64)>> = runs.iter().map(|r| decimate(f(r))).collect();
    if all.iter().all(|v| v.is_empty()) {
        return (vec![], None);
    }
    if all.windows(2).all(|w| w[0] == w[1]) {
        (
            vec![Series {
                run: 0,
                kind: Kind::RefShared,
                points: all[0].clone(),
            }],
            Some(true),
        )
    } else {
        (
            all.into_iter()
                .enumerate()
                .map(|(run, points)| Series {
                    run,
                    kind: Kind::RefRun,
                    points,
                })
                .collect(),
            Some(false),
        )
    }
}

fn decimate(v: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if v.len() <= MAX_POINTS {
        return v;
    }
    let stride = v.len().div_ceil(MAX_POINTS);
    let last = *v.last().unwrap();
    let mut out: Vec<_> = v.into_iter().step_by(stride).collect();
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

fn perr<E: std::fmt::Display>(e: E) -> ReportError {
    ReportError::Plot(e.to_string())
}

/// One chart as an `<svg class="plot">` string.
fn chart(
    series: &[Series],
    x_max: f64,
    y_fixed: Option<f64>,
    integer: bool,
    y_desc: &str,
) -> Result<String, ReportError> {
    let has_data = series
        .iter()
        .any(|s| !s.points.is_empty() && matches!(s.kind, Kind::Line | Kind::Dots));
    let data_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y_max = match y_fixed {
        Some(y) => y,
        None if integer => (data_max * 1.1).ceil().max(data_max + 1.0).max(2.0),
        None => (data_max * 1.1).max(if data_max > 0.0 { data_max * 1.1 } else { 1.0 }),
    };
    let y_labels = if integer && y_max <= 12.0 {
        y_max as usize + 1
    } else {
        6
    };
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let mut ch = ChartBuilder::on(&root)
            .margin_top(10)
            .margin_right(16)
            .margin_left(4)
            .margin_bottom(4)
            .x_label_area_size(34)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(perr)?;
        let label_font = ("sans-serif", 13)
            .into_font()
            .color(&RGBColor(0x55, 0x55, 0x55));
        let desc_font = ("sans-serif", 13)
            .into_font()
            .color(&RGBColor(0x77, 0x77, 0x77));
        let y_fmt = |v: &f64| compact(*v);
        let x_fmt = |v: &f64| compact(*v);
        ch.configure_mesh()
            .bold_line_style(RGBColor(0xe6, 0xe6, 0xe6))
            .light_line_style(TRANSPARENT)
            .axis_style(RGBColor(0x99, 0x99, 0x99))
            .label_style(label_font)
            .axis_desc_style(desc_font)
            .x_labels(7)
            .y_labels(y_labels)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_desc("virtual time (s)")
            .y_desc(y_desc)
            .draw()
            .map_err(perr)?;
        // References first (underneath), then lines, then dots on top.
        for s in series
            .iter()
            .filter(|s| matches!(s.kind, Kind::RefShared | Kind::RefRun))
        {
            let color = if s.kind == Kind::RefShared {
                REF_GREY.to_rgba()
            } else {
                policy_rgb(s.run).mix(0.7)
            };
            let style = ShapeStyle {
                color,
                filled: false,
                stroke_width: 2,
            };
            ch.draw_series(DashedLineSeries::new(s.points.iter().copied(), 6, 4, style))
                .map_err(perr)?;
        }
        for s in series
            .iter()
            .filter(|s| matches!(s.kind, Kind::Line | Kind::Dots))
        {
            let style = ShapeStyle {
                color: policy_rgb(s.run).to_rgba(),
                filled: false,
                stroke_width: 2,
            };
            if s.points.len() == 1 && s.kind == Kind::Line {
                ch.draw_series(s.points.iter().map(|&p| Circle::new(p, 2, style.filled())))
                    .map_err(perr)?;
            } else {
                ch.draw_series(LineSeries::new(s.points.iter().copied(), style))
                    .map_err(perr)?;
            }
            if s.kind == Kind::Dots {
                ch.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, style.filled())))
                    .map_err(perr)?;
            }
        }
        if !has_data {
            let (w, h) = root.dim_in_pixel();
            let style = ("sans-serif", 16)
                .into_font()
                .color(&RGBColor(0x88, 0x88, 0x88))
                .pos(Pos::new(HPos::Center, VPos::Center));
            root.draw_text("no data", &style, ((w / 2) as i32, (h / 2) as i32))
                .map_err(perr)?;
        }
        root.present().map_err(perr)?;
    }
    // Let CSS size the figure: keep the viewBox, drop the fixed size, mark it as a plot.
    let head = format!("<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" ");
    if buf.starts_with(&head) {
        buf.replace_range(..head.len(), "<svg class=\"plot\" role=\"img\" ");
    } else {
        return Err(ReportError::Plot(
            "unexpected SVG header from plotters".into(),
        ));
    }
    Ok(buf)
}
