//! The space-time diagram's arrows as strokes for a canvas, and which arrow (or any
//! `Segment`, such as a topology link) a point is on. A million-event run's window holds
//! a thousand arrows; as SVG elements each one was styled, laid out and painted again at
//! every move of the cursor, most of a frame.
//! Plain Rust with native tests: it computes geometry and never touches the page.

use crate::svg::{lane_y, time_x, Highlight};
use crate::views::SpaceTime;

/// How an arrow is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Delivered,
    /// Still in flight at the cursor: it runs to the window's right edge.
    Flying,
    Dropped,
    /// The highlighted difference between two runs, or one of the events that led to it.
    Cause,
}

/// One arrow: from its send to its arrival (in the diagram's pixels).
#[derive(Clone, Debug, PartialEq)]
pub struct Stroke {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
    pub style: Style,
    /// Whether it ends in an arrowhead (a dropped message arrives nowhere).
    pub head: bool,
    /// The send's trace index.
    pub index: u64,
}

/// A straight line on a canvas that the pointer can be on: an arrow, a topology link.
pub trait Segment {
    /// Its two ends, in the drawing's pixels.
    fn ends(&self) -> ((f64, f64), (f64, f64));
}

impl Segment for Stroke {
    fn ends(&self) -> ((f64, f64), (f64, f64)) {
        ((self.x1, self.y1), (self.x2, self.y2))
    }
}

/// The arrows of `diagram`, in its order (the newest last, drawn on top).
pub fn strokes(diagram: &SpaceTime, highlight: &Highlight) -> Vec<Stroke> {
    diagram
        .arrows
        .iter()
        .map(|arrow| {
            let led = highlight.causes.contains(&arrow.index)
                || highlight.at.is_some_and(|(_, index)| index == arrow.index);
            let style = match (led, arrow.dropped, arrow.arrived_ns) {
                (true, _, _) => Style::Cause,
                (false, true, _) => Style::Dropped,
                (false, false, None) => Style::Flying,
                _ => Style::Delivered,
            };
            Stroke {
                x1: time_x(diagram, arrow.sent_ns),
                y1: lane_y(arrow.from),
                x2: time_x(diagram, arrow.arrived_ns.unwrap_or(diagram.end_ns)),
                y2: lane_y(arrow.to),
                style,
                head: !arrow.dropped,
                index: arrow.index,
            }
        })
        .collect()
}

/// How far from an arrow (pixels) the pointer still points at it.
pub const REACH: f64 = 5.0;

/// Arrows this much farther than the nearest count as as near: the pointer's position
/// comes in whole pixels, and crossing arrows are a pixel apart at most there.
pub const TIE: f64 = 1.0;

/// The line at point (x, y): the nearest within `REACH`, the one drawn on top (the
/// later) where two are as near (within `TIE`).
pub fn at<S: Segment>(strokes: &[S], x: f64, y: f64) -> Option<&S> {
    let distances: Vec<f64> = strokes
        .iter()
        .map(|stroke| distance_to_segment(stroke, x, y))
        .collect();
    let nearest = distances.iter().copied().fold(f64::INFINITY, f64::min);
    if nearest > REACH {
        return None;
    }
    let on_top = distances
        .iter()
        .rposition(|distance| *distance <= (nearest + TIE).min(REACH))?;
    strokes.get(on_top)
}

fn distance_to_segment(s: &impl Segment, x: f64, y: f64) -> f64 {
    let ((x1, y1), (x2, y2)) = s.ends();
    let (dx, dy) = (x2 - x1, y2 - y1);
    let length2 = dx * dx + dy * dy;
    let along = if length2 == 0.0 {
        0.0
    } else {
        (((x - x1) * dx + (y - y1) * dy) / length2).clamp(0.0, 1.0)
    };
    let (px, py) = (x1 + along * dx, y1 + along * dy);
    ((x - px).powi(2) + (y - py).powi(2)).sqrt()
}

/// The band of the diagram the canvas covers, in diagram pixels: from `top`, `height`
/// tall. `drawing_top` is where the diagram starts in the window (negative once scrolled
/// past), `drawing_height` its height, `window_height` the window's.
pub fn band(drawing_top: f64, drawing_height: f64, window_height: f64) -> (f64, f64) {
    let height = drawing_height.min(window_height).max(1.0).ceil();
    let top = (-drawing_top)
        .clamp(0.0, (drawing_height - height).max(0.0))
        .floor();
    (top, height)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::views::Arrow;
    use sim_core::node::NodeId;

    fn arrow(
        index: u64,
        from: NodeId,
        to: NodeId,
        arrived_ns: Option<u64>,
        dropped: bool,
    ) -> Arrow {
        Arrow {
            from,
            to,
            sent_ns: 100,
            arrived_ns,
            dropped,
            drop_reason: String::new(),
            detail: String::new(),
            index,
        }
    }

    /// A 1,000 ns window with a delivered, a flying and a dropped message (#7, #8, #9).
    pub(crate) fn three_arrows() -> SpaceTime {
        SpaceTime {
            start_ns: 0,
            end_ns: 1_000,
            arrows: vec![
                arrow(7, 0, 1, Some(500), false),
                arrow(8, 1, 0, None, false),
                arrow(9, 1, 2, None, true),
            ],
            markers: Vec::new(),
            outages: Vec::new(),
        }
    }

    #[test]
    fn each_arrow_runs_from_its_send_to_its_arrival_in_its_style() {
        let plain = strokes(&three_arrows(), &Highlight::default());
        // Sent at 100 of a 1,000 ns window: a tenth of the way along the lanes (90..1090).
        assert_eq!(
            (plain[0].x1, plain[0].y1, plain[0].x2, plain[0].y2),
            (190.0, 20.0, 590.0, 46.0)
        );
        let styles: Vec<(Style, bool)> = plain.iter().map(|s| (s.style, s.head)).collect();
        assert_eq!(
            styles,
            [
                (Style::Delivered, true),
                (Style::Flying, true),
                (Style::Dropped, false)
            ]
        );
        // In flight: to the window's right edge.
        assert_eq!(plain[1].x2, 1_090.0);
        let led = strokes(
            &three_arrows(),
            &Highlight {
                at: Some((100, 8)),
                causes: vec![7],
            },
        );
        let styles: Vec<Style> = led.iter().map(|s| s.style).collect();
        assert_eq!(styles, [Style::Cause, Style::Cause, Style::Dropped]);
    }

    #[test]
    fn the_pointer_finds_the_nearest_arrow_and_the_top_one_where_they_cross() {
        let drawn = strokes(&three_arrows(), &Highlight::default());
        // Halfway along #7 (190,20 -> 590,46), and a little off it.
        assert_eq!(at(&drawn, 390.0, 33.0).map(|s| s.index), Some(7));
        assert_eq!(at(&drawn, 390.0, 36.0).map(|s| s.index), Some(7));
        assert_eq!(at(&drawn, 390.0, 60.0), None, "beyond reach of every arrow");
        // #8 and #9 both start at (190, 46): the later one is drawn on top, also a
        // fraction of a pixel nearer #8.
        assert_eq!(at(&drawn, 190.0, 46.0).map(|s| s.index), Some(9));
        assert_eq!(at(&drawn, 196.0, 45.6).map(|s| s.index), Some(9));
        assert_eq!(at(&drawn, 300.0, 40.0).map(|s| s.index), Some(8));
        // Past an arrow's end, the distance is to the end.
        assert_eq!(at(&drawn, 594.0, 46.0).map(|s| s.index), Some(7));
        assert_eq!(at(&drawn, 600.0, 46.0).map(|s| s.index), None);
        assert_eq!(at::<Stroke>(&[], 1.0, 1.0), None);
    }

    #[test]
    fn the_band_follows_the_window_over_a_tall_diagram_and_covers_a_short_one() {
        // A 300-pixel diagram in a 1,000-pixel window: all of it, wherever it is.
        assert_eq!(band(200.0, 300.0, 1_000.0), (0.0, 300.0));
        assert_eq!(band(-100.0, 300.0, 1_000.0), (0.0, 300.0));
        // A 2,630-pixel diagram: a window's height of it, from where the window starts.
        assert_eq!(band(400.0, 2_630.0, 1_000.0), (0.0, 1_000.0));
        assert_eq!(band(-700.5, 2_630.0, 1_000.0), (700.0, 1_000.0));
        // Scrolled past its end: its last window's height, never beyond.
        assert_eq!(band(-5_000.0, 2_630.0, 1_000.0), (1_630.0, 1_000.0));
    }
}
