//! The CAP panel, drawn with plotters on a canvas: per client, the share of requests
//! served (availability) and the share of reads that were stale (consistency) over
//! virtual time, coloured by the client's side of the partition at the cursor, with the
//! cursor as a vertical line. A ZAB minority shows as availability falling to zero;
//! read-only mode keeps availability up and pays in stale reads.

use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use web_sys::HtmlCanvasElement;

use crate::session::Session;
use crate::views::{self, Series};

/// Time buckets across the run.
const BUCKETS: u32 = 60;
const SIDE_RGB: [RGBColor; 4] = [
    RGBColor(37, 99, 235),
    RGBColor(220, 38, 38),
    RGBColor(22, 163, 74),
    RGBColor(147, 51, 234),
];

pub fn draw(canvas: &HtmlCanvasElement, session: &Session) {
    let Some(backend) = CanvasBackend::with_canvas_object(canvas.clone()) else {
        return;
    };
    let root = backend.into_drawing_area();
    // Drawing errors only mean a canvas the browser refused; the next render retries.
    let _ = root.fill(&WHITE);
    let end_ns = session
        .summary()
        .map_or(session.progress().end_ns, |summary| summary.end_ns);
    let cap = views::cap(session.metrics(), &session.sides(), end_ns, BUCKETS);
    let Some(cap) = cap else {
        let style = ("sans-serif", 16).into_font().color(&BLACK);
        let text = "This protocol reports no per-client availability; the registry scenarios do \
                    (try registry-partition-minority against registry-read-only).";
        let _ = root.draw_text(text, &style, (20, 120));
        let _ = root.present();
        return;
    };
    let now_s = session.progress().now_ns as f64 / 1e9;
    let end_s = (cap.end_ns as f64 / 1e9).max(1e-3);
    let (left, right) = root.split_horizontally(550);
    let _ = panel(
        &left,
        "availability: % of requests served",
        &cap.availability,
        end_s,
        now_s,
    );
    let _ = panel(
        &right,
        "consistency: % of reads that were stale",
        &cap.stale,
        end_s,
        now_s,
    );
    let _ = root.present();
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    series: &[Series],
    end_s: f64,
    now_s: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(36)
        .build_cartesian_2d(0f64..end_s, 0f64..105f64)?;
    chart
        .configure_mesh()
        .x_desc("virtual time (s)")
        .y_labels(6)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for line in series {
        let colour = SIDE_RGB[line.side as usize % SIDE_RGB.len()];
        let points: Vec<(f64, f64)> = line
            .points
            .iter()
            .map(|(t, percent)| (*t as f64 / 1e9, *percent))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(format!("client {} (side {})", line.node, line.side))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], colour));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 2, colour.filled())),
        )?;
    }
    chart.draw_series(LineSeries::new(
        vec![(now_s, 0.0), (now_s, 105.0)],
        BLACK.mix(0.4),
    ))?;
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
    }
    Ok(())
}
