//! The event log's lines as HTML text, handed to the browser whole like the drawings
//! (`svg`) instead of an element and a closure per line made and diffed at every move.
//! Each line carries its event's number (`data-i`) for the page's one click listener.
//! Plain Rust with a native test; it never filters (that is `views::log_lines`) and
//! never handles an event.

use std::fmt::Write;

use sim_core::trace::TraceEvent;

use sim_core::export::xml_escape as escape;

/// The list of `lines`, oldest first.
pub fn list(lines: &[&TraceEvent]) -> String {
    let mut out = String::with_capacity(100 * lines.len() + 32);
    out.push_str(r#"<ol class="log">"#);
    for event in lines {
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            r#"<li class="{}" data-i="{}">{}</li>"#,
            event.kind.as_str(),
            event.index,
            escape(&event.render())
        );
    }
    out.push_str("</ol>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::trace::EventKind;

    #[test]
    fn each_line_names_its_event_and_escapes_its_text() {
        let event = |index: u64, kind: EventKind, detail: &str| TraceEvent {
            index,
            time_ns: 1_500,
            kind,
            node: 2,
            peer: Some(3),
            msg: None,
            timer: None,
            reason: None,
            cause: None,
            label: String::new(),
            detail: detail.to_string(),
        };
        let lines = [
            event(7, EventKind::Send, "Put { key: \"a<b>\" }"),
            event(9, EventKind::Drop, "x & y"),
        ];
        let refs: Vec<&TraceEvent> = lines.iter().collect();
        let html = list(&refs);
        assert!(
            html.starts_with(r#"<ol class="log"><li class="send" data-i="7">"#),
            "{html}"
        );
        assert!(html.contains(r#"<li class="drop" data-i="9">"#), "{html}");
        assert!(
            html.contains("a&lt;b&gt;") && html.contains("x &amp; y"),
            "{html}"
        );
        assert_eq!(html.matches("<li").count(), 2);
        assert_eq!(list(&[]), r#"<ol class="log"></ol>"#);
    }
}
