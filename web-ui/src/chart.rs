//! The CAP panel, drawn with plotters on a canvas: one row per protocol that reports it,
//! availability (the share of requests each client had served) on the left and
//! consistency on the right (stale reads for the registry, the oldest branch in doubt
//! for the bank, orders not yet applied for the shop), over virtual time, with the
//! cursor as a vertical line. With the bank beside the shop under one partition, the bank's
//! availability falls while its consistency holds, and the shop's availability holds
//! while it diverges.
//!
//! Each node has its own colour from the Okabe-Ito palette (distinct for colour-blind
//! readers); a node on the far side of the partition at the cursor is drawn dashed. Past
//! `cap::LINES_MAX` clients, each side's median and worst client are drawn instead: a
//! hundred lines in seven colours say nothing, and cost a frame.

use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
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

/// Rows the chart draws for this session (the canvas is sized to them).
pub fn rows(session: &Session) -> u32 {
    panel(session).map_or(1, |cap| cap.rows.len().max(1) as u32)
}

fn panel(session: &Session) -> Option<cap::Cap> {
    let end_ns = session
        .summary()
        .map_or(session.progress().end_ns, |summary| summary.end_ns);
    let kinds = session.scenario().qualified_kinds();
    cap::cap(session.metrics(), &session.sides(), &kinds, end_ns, BUCKETS)
}

pub fn draw(canvas: &HtmlCanvasElement, session: &Session) {
    let Some(backend) = CanvasBackend::with_canvas_object(canvas.clone()) else {
        return;
    };
    let root = backend.into_drawing_area();
    // Drawing errors only mean a canvas the browser refused; the next render retries.
    let _ = root.fill(&WHITE);
    let Some(cap) = panel(session) else {
        let style = ("sans-serif", 16).into_font().color(&BLACK);
        let text = "This protocol reports no per-client availability; the registry, bank and \
                    shop scenarios do (try cap-partition: the bank beside the shop).";
        let _ = root.draw_text(text, &style, (20, 120));
        let _ = root.present();
        return;
    };
    let now_s = session.progress().now_ns as f64 / 1e9;
    let end_s = (cap.end_ns as f64 / 1e9).max(1e-3);
    let areas = root.split_evenly((cap.rows.len(), 1));
    for (area, row) in areas.iter().zip(&cap.rows) {
        let _ = draw_row(area, row, end_s, now_s);
    }
    let _ = root.present();
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
    end_s: f64,
    now_s: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (left, right) = area.split_horizontally(550);
    let name = tagline(&row.protocol);
    chart(
        &left,
        &format!("{name} · availability: % of requests served"),
        "% served",
        cap::lines(&row.availability, false),
        100.0,
        end_s,
        now_s,
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
        end_s,
        now_s,
    )
}

fn chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    unit: &str,
    lines: Vec<cap::Line>,
    top: f64,
    end_s: f64,
    now_s: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let ceiling = top * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 14))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(44)
        .build_cartesian_2d(0f64..end_s, 0f64..ceiling)?;
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
    chart.draw_series(LineSeries::new(
        vec![(now_s, 0.0), (now_s, ceiling)],
        BLACK.mix(0.4),
    ))?;
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
