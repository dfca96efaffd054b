//! What span checks (`check`) and trace checks (`trace`) share: the [`Context`] of the run they
//! judge, the [`Failure`] they report, and how long the trace tree ending a message may be.

use crate::telemetry::peers::Peers;

/// The longest trace tree a failure message ends with.
pub(super) const TREE_LINES: usize = 60;

/// What checks need to know about the run beyond its spans.
///
/// clnrm's own spans (scenario, service and step spans, [`Span::is_own`](crate::telemetry::span::Span::is_own)) are in the trace, so
/// selectors can name them (`parent = 'span[name="place order"]'`), but trace-level counts and the
/// hermetic check leave them out.
pub struct Context<'a> {
    /// Hosts and addresses inside the scenario: its containers' names and addresses, clnrm's
    /// (the receiver, the probes), loopback. Anything else a span talks to breaks `hermetic`.
    pub peers: &'a Peers,
}

/// One expectation that does not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Which one: `[[expect.span]] #2 span[name="charge"]`, `[expect.trace] order`.
    pub expectation: String,
    /// What was expected and what was found, as data.
    pub unmet: Unmet,
    /// What was expected, what was found, and where to look; several lines.
    pub message: String,
}

/// One key of an expectation that does not hold, as data (the run record keeps it; the message
/// says the same in words): what the key asks for and what the trace has instead.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Unmet {
    /// The key: `count`, `attrs.KEY`, `status`, `kind`, `parent`, `duration`, `events` of a
    /// `[[expect.span]]`; `spans`, `errors`, `order`, `within`, `hermetic` of `[expect.trace]`.
    pub key: String,
    /// What it asks for, as the scenario says it: `at least 1`, `"200"`, `ok`, `at most 50ms`.
    pub expected: String,
    /// What the trace has as a whole, when the key is about the whole: a count, or which
    /// selector of a pair selects nothing.
    pub found: Option<String>,
    /// The spans it fails for, each with what it has instead.
    pub spans: Vec<Found>,
}

/// A span an expectation fails for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Found {
    /// Its span id (hex).
    pub span: String,
    /// What it has instead of what is asked (`"404"`, `absent`, `error`, `120.0ms`), when the key
    /// asks something of each span; none for the spans of a pair that clash by their times.
    pub value: Option<String>,
}
