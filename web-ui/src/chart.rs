//! The CAP panel, drawn with plotters on a canvas: one row per protocol that reports it,
//! availability (the share of requests each client had served) on the left and
//! consistency on the right (stale reads for the registry, the oldest branch in doubt
//! for the bank, orders not yet applied for the shop), over virtual time, with the
//! cursor as a vertical line. With the bank beside the shop under one partition, the bank's
//! availability falls while its consistency holds, and the shop's availability holds
//! while it diverges.
//!
//! Once the first pass has finished, the chart shows the whole run (the curves go on past
//! the cursor, as a timeline does) and is drawn once per arrangement of sides into an
//! image kept off screen (`Drawn`, at most `DRAWN_MAX` arrangements kept): a move of
//! the cursor copies it and draws one line, where a redraw cost 25 ms on a hundred-node
//! run and most of a jump's budget. The page draws the images of the arrangements the
//! run went through between frames, right after the first pass (`prepare`).
//!
//! Each node has its own colour from the Okabe-Ito palette (distinct for colour-blind
//! readers); a node on the far side of the partition at the cursor is drawn dashed. Past
//! `cap::LINES_MAX` clients, each side's median and worst client are drawn instead: a
//! hundred lines in seven colours say nothing, and cost a frame.

use std::ops::Range;

use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use sim_core::engine::MetricSample;
use wasm_bindgen::JsCast;
use web_sys::HtmlCanvasElement;

use crate::cap::{self, Row};
use crate::session::Session;

/// Time buckets across the run.
const BUCKETS: u32 = 60;
/// The height of one protocol's row, in canvas pixels.
pub const ROW_HEIGHT: u32 = 250;
/// Okabe and Ito's colour-blind safe palette (without its yellow, too faint on white).
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(0, 0, 0),
];

/// Rows the chart draws for this session (the canvas is sized to them): the whole run's,
/// as its image has them, once the first pass is done.
pub fn rows(session: &Session) -> u32 {
    session.chart_rows(|| {
        panel(session, session.metrics_all(), &session.sides())
            .map_or(1, |cap| cap.rows.len().max(1) as u32)
    })
}

fn panel(session: &Session, metrics: &[MetricSample], sides: &[u32]) -> Option<cap::Cap> {
    let end_ns = session
        .summary()
        .map_or(session.progress().end_ns, |summary| summary.end_ns);
    let kinds = session.scenario().qualified_kinds();
    cap::cap(metrics, sides, &kinds, end_ns, BUCKETS)
}

/// A plot's plotting area in canvas pixels (x, y).
type Plot = (Range<i32>, Range<i32>);

/// The time axis: its end, and the cursor when it is drawn with the curves.
#[derive(Clone, Copy)]
struct Time {
    end_s: f64,
    now_s: Option<f64>,
}

/// The whole run's chart without its cursor, off screen, and where each plot sits on it.
pub struct Drawn {
    image: HtmlCanvasElement,
    key: Key,
    /// Per plot: its plotting area in canvas pixels (x, y).
    plots: Vec<Plot>,
    end_s: f64,
}

/// What the image depends on: the run (its hash), the sides at the cursor (who is drawn
/// dashed, and how clients are summarised), and the canvas size.
#[derive(PartialEq)]
struct Key {
    run: String,
    sides: Vec<u32>,
    size: (u32, u32),
}

fn key(canvas: &HtmlCanvasElement, session: &Session, sides: Vec<u32>) -> Option<Key> {
    Some(Key {
        run: session.trace_hash()?,
        sides,
        size: (canvas.width(), canvas.height()),
    })
}

/// Images kept at most: one per arrangement of sides, drawn ahead of the cursor
/// (`prepare`) or when it visits one that has none, the least recently used dropped. A
/// run's partitions come and go in a few arrangements, and each image is one canvas
/// (1.1 MB a row), so a jump seldom draws a chart.
pub const DRAWN_MAX: usize = 8;

/// Whether drawing now costs only a copy: the first pass is done and one of `drawn` fits.
pub fn cheap(drawn: &[Drawn], canvas: &HtmlCanvasElement, session: &Session) -> bool {
    let key = key(canvas, session, session.sides());
    key.is_some_and(|key| drawn.iter().any(|d| d.key == key))
}

/// Draws the image of the first arrangement of sides the run went through that has none
/// yet, while there is room for it: what the page does between frames once the first
/// pass is done, so that a jump into a partition copies an image instead of drawing the
/// chart (20-30 ms in a frame). True when it drew one (there may be more to draw).
pub fn prepare(canvas: &HtmlCanvasElement, session: &Session, drawn: &mut Vec<Drawn>) -> bool {
    // An earlier run's images (before a fault was injected) only take room.
    let run = session.trace_hash();
    drawn.retain(|d| Some(&d.key.run) == run.as_ref());
    if drawn.len() >= DRAWN_MAX {
        return false;
    }
    let missing = session.arrangements().iter().find_map(|sides| {
        let key = key(canvas, session, sides.clone())?;
        (!drawn.iter().any(|d| d.key == key)).then_some(key)
    });
    let Some(made) = missing.and_then(|key| whole(canvas, session, key)) else {
        return false;
    };
    // Ahead of the cursor: least recently used, the first to go.
    drawn.insert(0, made);
    true
}

/// Draws the chart on `canvas`: from the image of `drawn` that fits (made when none
/// does, the least recently used dropped past `DRAWN_MAX`; the one used goes last) once
/// the first pass is done, else all of it up to the cursor.
pub fn draw(canvas: &HtmlCanvasElement, session: &Session, drawn: &mut Vec<Drawn>) {
    let now_s = session.progress().now_ns as f64 / 1e9;
    // During the first pass, or with no chart to keep: all of it, up to the cursor.
    let up_to_cursor = || {
        let sides = session.sides();
        render(canvas, session, session.metrics(), &sides, Some(now_s));
    };
    let Some(key) = key(canvas, session, session.sides()) else {
        up_to_cursor();
        return;
    };
    match drawn.iter().position(|d| d.key == key) {
        Some(at) => {
            let used = drawn.remove(at);
            drawn.push(used);
        }
        None => {
            let Some(made) = whole(canvas, session, key) else {
                up_to_cursor();
                return;
            };
            if drawn.len() == DRAWN_MAX {
                drawn.remove(0);
            }
            drawn.push(made);
        }
    }
    let Some(drawn) = drawn.last() else {
        return;
    };
    let Some(context) = crate::canvas::context(canvas) else {
        return;
    };
    // Canvas calls fail only on a detached or zero-sized canvas; the next frame retries.
    let _ = context.draw_image_with_html_canvas_element(&drawn.image, 0.0, 0.0);
    context.set_stroke_style_str("rgba(0, 0, 0, 0.4)");
    context.set_line_width(1.0);
    context.begin_path();
    let at = (now_s / drawn.end_s).clamp(0.0, 1.0);
    for (x, y) in &drawn.plots {
        let pixel = x.start as f64 + at * (x.end - x.start) as f64 + 0.5;
        context.move_to(pixel, y.start as f64);
        context.line_to(pixel, y.end as f64);
    }
    context.stroke();
}

/// The whole run's chart on a new canvas of `canvas`'s size.
fn whole(canvas: &HtmlCanvasElement, session: &Session, key: Key) -> Option<Drawn> {
    let image: HtmlCanvasElement = web_sys::window()?
        .document()?
        .create_element("canvas")
        .ok()?
        .dyn_into()
        .ok()?;
    image.set_width(canvas.width());
    image.set_height(canvas.height());
    let (plots, end_s) = render(&image, session, session.metrics_all(), &key.sides, None)?;
    Some(Drawn {
        image,
        key,
        plots,
        end_s,
    })
}

/// Draws the chart of `metrics`, with the cursor at `now_s` if given; returns where each
/// plot sits and the time axis's end, when there is a chart.
fn render(
    canvas: &HtmlCanvasElement,
    session: &Session,
    metrics: &[MetricSample],
    sides: &[u32],
    now_s: Option<f64>,
) -> Option<(Vec<Plot>, f64)> {
    let backend = CanvasBackend::with_canvas_object(canvas.clone())?;
    let root = backend.into_drawing_area();
    // Drawing errors only mean a canvas the browser refused; the next render retries.
    let _ = root.fill(&WHITE);
    let Some(cap) = panel(session, metrics, sides) else {
        let style = ("sans-serif", 16).into_font().color(&BLACK);
        let text = "This protocol reports no per-client availability; the registry, bank and \
                    shop scenarios do (try cap-partition: the bank beside the shop).";
        let _ = root.draw_text(text, &style, (20, 120));
        let _ = root.present();
        return None;
    };
    let end_s = (cap.end_ns as f64 / 1e9).max(1e-3);
    let areas = root.split_evenly((cap.rows.len(), 1));
    let mut plots = Vec::new();
    for (area, row) in areas.iter().zip(&cap.rows) {
        let _ = draw_row(area, row, Time { end_s, now_s }, &mut plots);
    }
    let _ = root.present();
    Some((plots, end_s))
}

/// What a protocol chose, for its row's titles.
fn tagline(protocol: &str) -> String {
    match protocol {
        "bank" => "bank (CP: two-phase commit)".into(),
        "shop" => "shop (AP: outbox)".into(),
        "registry" => "registry (ZAB)".into(),
        other => other.to_string(),
    }
}

fn draw_row<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    row: &Row,
    time: Time,
    plots: &mut Vec<Plot>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (left, right) = area.split_horizontally(550);
    let name = tagline(&row.protocol);
    chart(
        &left,
        &format!("{name} · availability: % of requests served"),
        "% served",
        cap::lines(&row.availability, false),
        100.0,
        time,
        plots,
    )?;
    let top = if row.measure.is_percent() {
        100.0
    } else {
        row.consistency
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(1.0, f64::max)
    };
    let unit = match row.measure {
        cap::Measure::StaleReads => "% stale",
        cap::Measure::InDoubt => "ms",
        cap::Measure::Divergence => "orders",
    };
    chart(
        &right,
        &format!("{name} · {}", row.measure.title()),
        unit,
        cap::lines(&row.consistency, true),
        top,
        time,
        plots,
    )
}

fn chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    unit: &str,
    lines: Vec<cap::Line>,
    top: f64,
    time: Time,
    plots: &mut Vec<Plot>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let Time { end_s, now_s } = time;
    let ceiling = top * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 14))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(44)
        .build_cartesian_2d(0f64..end_s, 0f64..ceiling)?;
    plots.push(chart.plotting_area().get_pixel_range());
    chart
        .configure_mesh()
        .x_desc("virtual time (s)")
        .y_desc(unit)
        .y_labels(6)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let drawn = !lines.is_empty();
    for (index, line) in lines.into_iter().enumerate() {
        let colour = PALETTE[index % PALETTE.len()];
        let points: Vec<(f64, f64)> = line
            .points
            .iter()
            .map(|(t, value)| (*t as f64 / 1e9, *value))
            .collect();
        let label = line.label;
        if line.side == 0 {
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], colour));
        } else {
            chart
                .draw_series(DashedLineSeries::new(points, 6, 4, colour.stroke_width(2)))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], colour));
        }
    }
    if let Some(now_s) = now_s {
        chart.draw_series(LineSeries::new(
            vec![(now_s, 0.0), (now_s, ceiling)],
            BLACK.mix(0.4),
        ))?;
    }
    if drawn {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
    }
    Ok(())
}
