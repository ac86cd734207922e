//! Paints the space-time diagram's arrows (`arrows::strokes`) and the topology's links
//! (`svg::link_strokes`) on their canvases, after the page is patched and again when the
//! page scrolls. A path per line: a handful of canvas calls per line and no element for
//! the browser to style or lay out. An arrows' canvas covers only the part of its
//! diagram in the window, moved along it as the page scrolls: a hundred-lane diagram is
//! 2,630 pixels tall, and a canvas that size cost every frame a clear and an 11 MB copy
//! to the compositor. It owns no state and never decides what is drawn.

use std::rc::Rc;

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CanvasRenderingContext2d, Element, HtmlCanvasElement};
use yew::NodeRef;

use crate::arrows::{Stroke, Style};
use crate::svg::{LinkKind, LinkStroke};

/// What one canvas shows.
pub enum Drawing {
    /// A space-time diagram's arrows.
    Arrows(Rc<Vec<Stroke>>),
    /// The topology's links.
    Links(Rc<Vec<LinkStroke>>),
}

/// The canvases of the last render and what they show, filled by the view and painted
/// once the page is patched (a canvas is drawn on, not described), and again on a scroll.
pub type Canvases = std::cell::RefCell<Vec<(NodeRef, Drawing)>>;

/// How each kind of topology link is stroked: colour and dashes (its width is its own).
/// Lossy links differ from plain ones in lightness, not only hue, and are not dashed:
/// dashing a hundred-node run's 485 links cost the software rasteriser 15 ms a move.
const LINK_STYLES: [(LinkKind, &str, &[f64]); 3] = [
    (LinkKind::Plain, "#9ca3af", &[]),
    (LinkKind::Lossy, "#b45309", &[]),
    (LinkKind::Cut, "#dc2626", &[6.0, 4.0]),
];

/// How each style is stroked: colour, width, dashes. One pixel wide: the software
/// rasteriser draws those a third faster than the 1.2 the SVG lines had.
const STYLES: [(Style, &str, f64, &[f64]); 4] = [
    (Style::Delivered, "#5c8af0", 1.0, &[]),
    (Style::Flying, "#9ca3af", 1.0, &[2.0, 2.0]),
    (Style::Dropped, "#dc2626", 1.0, &[3.0, 3.0]),
    (Style::Cause, "#dc2626", 2.5, &[]),
];
const HEAD_COLOUR: &str = "#2563eb";
/// An arrowhead's length and half width, in pixels.
const HEAD: (f64, f64) = (7.0, 3.0);

/// Paints every canvas of `canvases` for where the page is scrolled now.
pub fn paint_all(canvases: &Canvases) {
    for (node, drawing) in canvases.borrow().iter() {
        if let Some(canvas) = node.cast::<HtmlCanvasElement>() {
            match drawing {
                Drawing::Arrows(strokes) => paint(&canvas, strokes),
                Drawing::Links(links) => paint_links(&canvas, links),
            }
        }
    }
}

/// The canvas's 2D context; none only for a canvas the browser refuses one.
pub fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok()??.dyn_into().ok()
}

/// Paints the topology's links, a path per line (its width is its own), unless the
/// canvas shows these already: while a run plays, its links change seldom (widths go in
/// half steps of log10), and a frame need not draw them again.
fn paint_links(canvas: &HtmlCanvasElement, links: &[LinkStroke]) {
    let Some(context) = context(canvas) else {
        return;
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for l in links {
        std::hash::Hash::hash(&(l.a, l.b, l.kind as u8), &mut hasher);
        for value in [l.x1, l.y1, l.x2, l.y2, l.width] {
            std::hash::Hash::hash(&value.to_bits(), &mut hasher);
        }
    }
    let painted = std::hash::Hasher::finish(&hasher).to_string();
    if canvas.get_attribute("data-painted").as_deref() == Some(painted.as_str()) {
        return;
    }
    // Setting an attribute on a live element cannot fail.
    let _ = canvas.set_attribute("data-painted", &painted);
    context.clear_rect(
        0.0,
        0.0,
        f64::from(canvas.width()),
        f64::from(canvas.height()),
    );
    for (kind, colour, dashes) in LINK_STYLES {
        let pattern: js_sys::Array = dashes.iter().map(|d| JsValue::from_f64(*d)).collect();
        // Dashes fail only on a non-finite length; ours are constants.
        let _ = context.set_line_dash(&pattern);
        context.set_stroke_style_str(colour);
        for link in links.iter().filter(|l| l.kind == kind) {
            context.set_line_width(link.width);
            context.begin_path();
            context.move_to(link.x1, link.y1);
            context.line_to(link.x2, link.y2);
            context.stroke();
        }
    }
}

fn paint(canvas: &HtmlCanvasElement, strokes: &[Stroke]) {
    let Some(context) = context(canvas) else {
        return;
    };
    let Some(drawing) = canvas.parent_element() else {
        return;
    };
    let window_height = web_sys::window()
        .and_then(|w| w.inner_height().ok())
        .and_then(|h| h.as_f64())
        .unwrap_or(1_000.0);
    let area = drawing.get_bounding_client_rect();
    let (top, height) = crate::arrows::band(area.top(), area.height(), window_height);
    if canvas.height() != height as u32 {
        canvas.set_height(height as u32);
    }
    let placed = format!("top: {top}px");
    if canvas.get_attribute("style").as_deref() != Some(placed.as_str()) {
        // Setting an attribute on a live element cannot fail.
        let _ = canvas.set_attribute("style", &placed);
    }
    // Transforms fail only on non-finite numbers; these are finite.
    let _ = context.set_transform(1.0, 0.0, 0.0, 1.0, 0.0, 0.0);
    context.clear_rect(
        0.0,
        0.0,
        f64::from(canvas.width()),
        f64::from(canvas.height()),
    );
    let _ = context.set_transform(1.0, 0.0, 0.0, 1.0, 0.0, -top);
    // What crosses the band, with room for the arrowheads and the widest line.
    let seen =
        |s: &&Stroke| s.y1.min(s.y2) <= top + height + HEAD.0 && s.y1.max(s.y2) >= top - HEAD.0;
    for (style, colour, width, dashes) in STYLES {
        let pattern: js_sys::Array = dashes.iter().map(|d| JsValue::from_f64(*d)).collect();
        // Dashes fail only on a non-finite length; ours are constants.
        let _ = context.set_line_dash(&pattern);
        context.set_stroke_style_str(colour);
        context.set_line_width(width);
        // A path per line: one path of a thousand crossing lines is stroked as a single
        // shape, which the software rasteriser took 100 ms over on a 100-lane diagram.
        for stroke in strokes.iter().filter(seen).filter(|s| s.style == style) {
            context.begin_path();
            context.move_to(stroke.x1, stroke.y1);
            context.line_to(stroke.x2, stroke.y2);
            context.stroke();
        }
    }
    context.begin_path();
    for stroke in strokes.iter().filter(seen).filter(|s| s.head) {
        let (dx, dy) = (stroke.x2 - stroke.x1, stroke.y2 - stroke.y1);
        let length = (dx * dx + dy * dy).sqrt();
        if length < 1.0 {
            continue;
        }
        let (ux, uy) = (dx / length, dy / length);
        let (bx, by) = (stroke.x2 - ux * HEAD.0, stroke.y2 - uy * HEAD.0);
        context.move_to(stroke.x2, stroke.y2);
        context.line_to(bx - uy * HEAD.1, by + ux * HEAD.1);
        context.line_to(bx + uy * HEAD.1, by - ux * HEAD.1);
        context.close_path();
    }
    context.set_fill_style_str(HEAD_COLOUR);
    context.fill();
}

/// Where the window point `client` falls on the diagram that `element` (its canvas)
/// belongs to, in diagram pixels: the canvas itself moves along the diagram.
pub fn diagram_point(element: &Element, client: (f64, f64)) -> Option<(f64, f64)> {
    let area = element.parent_element()?.get_bounding_client_rect();
    Some((client.0 - area.left(), client.1 - area.top()))
}
