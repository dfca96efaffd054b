//! `[[expect.span]]` and `[expect.trace]` of scenario format v1: the expectations a scenario file
//! declares, as `scenario::read` fills them. Their doc comments are the reference for each key.

use std::time::Duration;

use crate::expect::selector::{Selector, Value};
use crate::schema::Spanned;
use crate::telemetry::span::{SpanKind, SpanStatus};

/// Inclusive bounds; `count = 3` is `{ min = 3, max = 3 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds<T> {
    pub min: Option<T>,
    pub max: Option<T>,
}

impl<T: PartialOrd> Bounds<T> {
    /// Whether `value` lies within the bounds; a side that is not given does not limit.
    pub fn contains(&self, value: &T) -> bool {
        self.min.as_ref().is_none_or(|min| value >= min) && self.max.as_ref().is_none_or(|max| value <= max)
    }
}

/// `[[expect.span]]` and `[expect.trace]`.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub spans: Vec<SpanExpectation>,
    pub trace: Option<TraceExpectation>,
}

/// `[[expect.span]]`: the spans chosen by `select` must satisfy every other key given.
#[derive(Debug, Clone)]
pub struct SpanExpectation {
    /// `select`: a span selector, e.g. `span[name="POST /orders" service.name="shop"]`.
    pub select: Spanned<Selector>,
    /// `count`: how many spans match (`3` or `{ min = 1, max = 5 }`); default at least one.
    pub count: Option<Bounds<u64>>,
    /// `attrs`: attributes every selected span has, with these exact values.
    pub attrs: Vec<(String, Value)>,
    /// `status`: `ok`, `error` or `unset`.
    pub status: Option<SpanStatus>,
    /// `kind`: `internal`, `server`, `client`, `producer` or `consumer`.
    pub kind: Option<SpanKind>,
    /// `parent`: a selector the direct parent of every selected span matches.
    pub parent: Option<Spanned<Selector>>,
    /// `duration = { min = "1ms", max = "200ms" }`.
    pub duration: Option<Bounds<Duration>>,
    /// `events`: names of events every selected span records.
    pub events: Vec<String>,
    /// Where `select` is written: its line in the scenario file (through a template, the line
    /// that produced it), for the run record.
    pub line: Option<usize>,
}

impl SpanExpectation {
    /// An expectation on `select` with no condition but the default count (at least one span).
    pub fn new(select: Spanned<Selector>) -> SpanExpectation {
        SpanExpectation {
            select,
            count: None,
            attrs: Vec::new(),
            status: None,
            kind: None,
            parent: None,
            duration: None,
            events: Vec::new(),
            line: None,
        }
    }
}

/// `[expect.trace]`: properties of the scenario's whole trace.
#[derive(Debug, Clone, Default)]
pub struct TraceExpectation {
    /// `spans`: how many spans the trace holds (`12` or `{ min = 4, max = 50 }`).
    pub spans: Option<Bounds<u64>>,
    /// `errors`: how many spans have status error.
    pub errors: Option<u64>,
    /// `order = [[A, B], …]`: a span matching A ends before one matching B starts.
    pub order: Vec<[Spanned<Selector>; 2]>,
    /// `within = [[A, B], …]`: every span matching A lies inside the time window of one matching B.
    pub within: Vec<[Spanned<Selector>; 2]>,
    /// `hermetic = true` or `hermetic = { allow = [...], outbound_only = true }`: no span talks to
    /// a peer outside the scenario's containers.
    pub hermetic: Option<Hermetic>,
}

/// How `hermetic` judges the peers spans name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hermetic {
    /// `allow`: peers that may be named although outside the scenario: host names or addresses,
    /// `*.example.com` for every name below a domain; compared ignoring ASCII case.
    pub allow: Vec<String>,
    /// `outbound_only`: judge only the peers a span talks to (client and producer spans, and
    /// internal ones), not who called a server or consumer span.
    pub outbound_only: bool,
}

impl Hermetic {
    /// Whether `host` is one of the allowed peers.
    pub fn allows(&self, host: &str) -> bool {
        self.allow.iter().any(|allowed| match allowed.strip_prefix("*.") {
            Some(domain) => host.to_ascii_lowercase().ends_with(&format!(".{}", domain.to_ascii_lowercase())),
            None => allowed.eq_ignore_ascii_case(host),
        })
    }
}
