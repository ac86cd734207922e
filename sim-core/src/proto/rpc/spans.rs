//! Tracing as in Google's Dapper: every attempt of a call is a span (trace id, span id,
//! parent span id), propagated in the request so nested calls join their caller's
//! trace. Consumers annotate the trace with `span.cs` (client send) and `span.cr` (client
//! receive), providers with `span.sr` and `span.ss`, as Dapper's annotations; `collect`
//! assembles spans back from a run's trace and `zipkin` writes them in Zipkin's JSON v2
//! model (what `faultline run --spans` exports). It never decides anything about a call.
//!
//! The server side shares its client's span id (Zipkin's `shared` span, B3's model), so a
//! call is one span with four annotations, as in Dapper's figures.

use std::collections::BTreeMap;

use serde::Serialize;

use super::RpcError;
use crate::node::NodeId;
use crate::trace::{EventKind, TraceEvent};

pub const CLIENT_SEND: &str = "span.cs";
pub const CLIENT_RECEIVE: &str = "span.cr";
pub const SERVER_RECEIVE: &str = "span.sr";
pub const SERVER_SEND: &str = "span.ss";

/// A span's place in its trace, as requests carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SpanContext {
    pub trace_id: u64,
    pub span_id: u64,
    pub parent_id: Option<u64>,
}

/// The annotation text that opens a span: who, what and where.
pub fn start_text(span: &SpanContext, local: &str, name: &str, remote: NodeId) -> String {
    let parent = span
        .parent_id
        .map_or("-".to_string(), |p| format!("{p:016x}"));
    format!(
        "trace={:016x} span={:016x} parent={parent} local={local} name={name} remote={remote}",
        span.trace_id, span.span_id
    )
}

/// The annotation text that closes a span: `ok` or the error's kind.
pub fn end_text(span: &SpanContext, error: Option<&RpcError>) -> String {
    format!(
        "trace={:016x} span={:016x} outcome={}",
        span.trace_id,
        span.span_id,
        error.map_or("ok", RpcError::kind)
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Kind {
    Client,
    Server,
}

/// One side of one span, as the trace shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub trace_id: u64,
    pub span_id: u64,
    pub parent_id: Option<u64>,
    pub kind: Kind,
    pub name: String,
    pub node: NodeId,
    pub local: String,
    pub remote: NodeId,
    pub start_ns: u64,
    /// None when the span never closed (its node crashed, or the run ended first).
    pub end_ns: Option<u64>,
    pub outcome: Option<String>,
}

fn fields(text: &str) -> BTreeMap<&str, &str> {
    text.split_whitespace()
        .filter_map(|field| field.split_once('='))
        .collect()
}

/// Whether `event` is one of the annotations `collect` reads.
pub fn is_span_event(event: &TraceEvent) -> bool {
    event.kind == EventKind::Annotate
        && matches!(
            event.label.as_str(),
            CLIENT_SEND | CLIENT_RECEIVE | SERVER_RECEIVE | SERVER_SEND
        )
}

fn hex(text: Option<&&str>) -> Option<u64> {
    text.and_then(|t| u64::from_str_radix(t, 16).ok())
}

/// The spans a trace's annotations describe, in the order they started. Annotations
/// that do not parse are skipped: a trace is evidence, not input to trust.
pub fn collect<'a>(events: impl IntoIterator<Item = &'a TraceEvent>) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    // (trace, span, kind, node) -> index in `spans`, for the closing annotation.
    let mut open: BTreeMap<(u64, u64, Kind, NodeId), usize> = BTreeMap::new();
    for event in events.into_iter().filter(|e| e.kind == EventKind::Annotate) {
        let (kind, opens) = match event.label.as_str() {
            CLIENT_SEND => (Kind::Client, true),
            SERVER_RECEIVE => (Kind::Server, true),
            CLIENT_RECEIVE => (Kind::Client, false),
            SERVER_SEND => (Kind::Server, false),
            _ => continue,
        };
        let f = fields(&event.detail);
        let (Some(trace_id), Some(span_id)) = (hex(f.get("trace")), hex(f.get("span"))) else {
            continue;
        };
        let key = (trace_id, span_id, kind, event.node);
        if opens {
            let Some(remote) = f.get("remote").and_then(|r| r.parse().ok()) else {
                continue;
            };
            open.insert(key, spans.len());
            spans.push(Span {
                trace_id,
                span_id,
                parent_id: hex(f.get("parent")),
                kind,
                name: f.get("name").unwrap_or(&"unknown").to_string(),
                node: event.node,
                local: f.get("local").unwrap_or(&"unknown").to_string(),
                remote,
                start_ns: event.time_ns,
                end_ns: None,
                outcome: None,
            });
        } else if let Some(index) = open.remove(&key) {
            spans[index].end_ns = Some(event.time_ns);
            spans[index].outcome = f.get("outcome").map(|o| o.to_string());
        }
    }
    spans
}

/// Zipkin's v2 span model (zipkin-api's `zipkin2-api.yaml`, `Span`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ZipkinSpan {
    pub trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub id: String,
    pub kind: Kind,
    pub name: String,
    /// Epoch microseconds.
    pub timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    pub local_endpoint: Endpoint,
    pub remote_endpoint: Endpoint,
    /// `error` (the failure's kind) when the call failed or never ended.
    pub tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub service_name: String,
    pub ipv4: String,
}

/// Virtual time 0 as Zipkin sees it: 2026-01-01T00:00:00Z in microseconds (Zipkin wants
/// epoch timestamps; a run's clock starts at 0).
pub const EPOCH_US: u64 = 1_767_225_600_000_000;

/// A node's made-up IPv4 address (10.0.x.y), so Zipkin's dependency graph tells nodes apart.
fn address(node: NodeId) -> String {
    format!("10.0.{}.{}", node / 250, node % 250 + 1)
}

/// `spans` in Zipkin's v2 model, where `kind`, `timestamp` and `duration` say what
/// Dapper's four annotations said (v2 has no `cs`/`sr`/`ss`/`cr` annotations). The remote
/// end of a client span is named by the service it called, of a server span by its
/// caller's.
pub fn zipkin(spans: &[Span]) -> Vec<ZipkinSpan> {
    let mut serves: BTreeMap<NodeId, String> = BTreeMap::new();
    let mut callers: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for span in spans {
        match span.kind {
            Kind::Server => {
                serves
                    .entry(span.node)
                    .or_insert_with(|| span.local.clone());
            }
            Kind::Client => {
                callers.insert((span.trace_id, span.span_id), span.local.clone());
            }
        }
    }
    spans
        .iter()
        .map(|span| {
            let start_us = EPOCH_US + span.start_ns / 1_000;
            let end_us = span.end_ns.map(|end| EPOCH_US + end / 1_000);
            let mut tags = BTreeMap::new();
            match span.outcome.as_deref() {
                Some("ok") => {}
                Some(error) => {
                    tags.insert("error".to_string(), error.to_string());
                }
                None => {
                    tags.insert("error".to_string(), "unfinished".to_string());
                }
            }
            let remote_name = match span.kind {
                Kind::Client => serves
                    .get(&span.remote)
                    .cloned()
                    .unwrap_or_else(|| "unknown".into()),
                Kind::Server => callers
                    .get(&(span.trace_id, span.span_id))
                    .cloned()
                    .unwrap_or_else(|| "unknown".into()),
            };
            ZipkinSpan {
                trace_id: format!("{:016x}", span.trace_id),
                parent_id: span.parent_id.map(|p| format!("{p:016x}")),
                id: format!("{:016x}", span.span_id),
                kind: span.kind,
                name: span.name.to_lowercase(),
                timestamp: start_us,
                // Zipkin wants at least a microsecond.
                duration: end_us.map(|end| end.saturating_sub(start_us).max(1)),
                local_endpoint: Endpoint {
                    service_name: span.local.to_lowercase(),
                    ipv4: address(span.node),
                },
                remote_endpoint: Endpoint {
                    service_name: remote_name.to_lowercase(),
                    ipv4: address(span.remote),
                },
                tags,
                shared: span.kind == Kind::Server,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotate(index: u64, time_ns: u64, node: NodeId, label: &str, detail: String) -> TraceEvent {
        TraceEvent {
            index,
            time_ns,
            kind: EventKind::Annotate,
            node,
            peer: None,
            msg: None,
            timer: None,
            reason: None,
            cause: None,
            label: label.into(),
            detail,
        }
    }

    #[test]
    fn a_call_is_one_shared_span_with_four_annotations() {
        let span = SpanContext {
            trace_id: 0xabc,
            span_id: 0x12,
            parent_id: None,
        };
        let events = vec![
            annotate(
                0,
                1_000,
                6,
                CLIENT_SEND,
                start_text(&span, "consumer", "inventory.stock", 3),
            ),
            annotate(
                1,
                2_000,
                3,
                SERVER_RECEIVE,
                start_text(&span, "inventory", "inventory.stock", 6),
            ),
            annotate(2, 5_000, 3, SERVER_SEND, end_text(&span, None)),
            annotate(
                3,
                7_000,
                6,
                CLIENT_RECEIVE,
                end_text(&span, Some(&RpcError::Timeout)),
            ),
            annotate(4, 8_000, 6, "conn.state", "open".into()),
        ];
        let spans = collect(&events);
        assert_eq!(spans.len(), 2);
        assert_eq!(
            (spans[0].kind, spans[0].start_ns, spans[0].end_ns),
            (Kind::Client, 1_000, Some(7_000))
        );
        assert_eq!(spans[0].outcome.as_deref(), Some("timeout"));
        assert_eq!(
            (spans[1].kind, spans[1].node, spans[1].remote),
            (Kind::Server, 3, 6)
        );
        let zipkin = zipkin(&spans);
        assert_eq!(zipkin[0].trace_id, "0000000000000abc");
        assert_eq!(zipkin[0].remote_endpoint.service_name, "inventory");
        assert_eq!(zipkin[0].duration, Some(6), "microseconds");
        assert_eq!(
            zipkin[0].tags.get("error").map(String::as_str),
            Some("timeout")
        );
        assert!(zipkin[1].shared && zipkin[1].tags.is_empty());
    }

    #[test]
    fn broken_annotations_are_skipped_and_open_spans_kept_unfinished() {
        let span = SpanContext {
            trace_id: 1,
            span_id: 2,
            parent_id: Some(9),
        };
        let events = vec![
            annotate(0, 1_000, 6, CLIENT_SEND, "trace=zz span=1".into()),
            annotate(
                1,
                1_000,
                6,
                CLIENT_SEND,
                start_text(&span, "consumer", "inventory.stock", 3),
            ),
            annotate(2, 1_000, 6, CLIENT_RECEIVE, "garbage".into()),
        ];
        let spans = collect(&events);
        assert_eq!(spans.len(), 1);
        assert_eq!((spans[0].parent_id, spans[0].end_ns), (Some(9), None));
        let zipkin = zipkin(&spans);
        assert_eq!(zipkin[0].duration, None);
        assert_eq!(zipkin[0].tags["error"], "unfinished");
    }
}
