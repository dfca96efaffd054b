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
    /// What was expected, what was found, and where to look; several lines.
    pub message: String,
}
