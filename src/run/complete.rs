//! Whether a scenario's trace, quiet for its window, is still known to be incomplete: what keeps
//! `Store::settle` waiting, up to its patience. On a loaded machine a service's batch can arrive
//! past the quiet window (seen with the CPU otherwise busy: a demo shop scenario judged without
//! the shop's spans, 1 of 36 in a batch), and judging then fails a scenario that deserved to
//! pass. What says a trace is incomplete is only what the trace itself, the scenario or its
//! baseline knows; it costs nothing to a trace that is complete, and a patience's wait to one that
//! fails.

use crate::baseline::normalize::{self, Baseline, Recorded};
use crate::expect::check;
use crate::expect::failure::Context;
use crate::expect::model::Expectations;
use crate::telemetry::span::{Span, SpanId, TraceId};
use std::collections::HashSet;

/// What a scenario's trace is expected to hold.
pub struct Expected<'a> {
    pub scenario: &'a str,
    pub expectations: &'a Expectations,
    pub context: &'a Context<'a>,
    pub baseline: Option<&'a Baseline>,
}

impl Expected<'_> {
    /// A span's parent has not arrived (a process exports a span's children before the span,
    /// which ends last), an expectation does not hold, or a span of the baseline is missing.
    pub fn incomplete(&self, spans: &[Span]) -> bool {
        orphaned(spans)
            || !check::hold(spans, self.expectations, self.context)
            || self.baseline.is_some_and(|baseline| lacks(baseline, self.scenario, spans))
    }
}

/// Some span's parent, in its own trace, is not among `spans`.
fn orphaned(spans: &[Span]) -> bool {
    let ids: HashSet<(TraceId, SpanId)> = spans.iter().map(|s| (s.trace_id, s.span_id)).collect();
    spans.iter().any(|s| s.parent_span_id.is_some_and(|parent| !ids.contains(&(s.trace_id, parent))))
}

/// The trace has no span at some path of `baseline`.
fn lacks(baseline: &Baseline, scenario: &str, spans: &[Span]) -> bool {
    let now = normalize::normalize(scenario, &[Recorded::plain(spans)]);
    let paths: HashSet<&str> = now.spans.iter().map(|s| s.path.as_str()).collect();
    baseline.spans.iter().any(|s| !paths.contains(s.path.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::model::SpanExpectation;
    use crate::expect::selector::parse;
    use crate::schema::Spanned;
    use crate::telemetry::peers::Peers;
    use crate::telemetry::span::tests::span;

    /// A shop's trace: the step's request, the shop's server span, two reservations below it.
    fn shop() -> Vec<Span> {
        vec![
            span(1, 0, "checkout", "clnrm", 0, 100).build(),
            span(2, 1, "place order", "clnrm", 1, 50).build(),
            span(3, 2, "POST /orders", "shop", 2, 40).build(),
            span(4, 3, "reserve item", "shop", 3, 10).build(),
            span(5, 3, "reserve item", "shop", 11, 20).build(),
        ]
    }

    fn incomplete(spans: &[Span], expectations: &Expectations, baseline: Option<&Baseline>) -> bool {
        let peers = Peers::new();
        let context = Context { peers: &peers };
        Expected { scenario: "checkout", expectations, context: &context, baseline }.incomplete(spans)
    }

    #[test]
    fn a_complete_trace_is_not_waited_for() {
        let spans = shop();
        let baseline = normalize::normalize("checkout", &[Recorded::plain(&spans)]);
        assert!(!incomplete(&spans, &Expectations::default(), Some(&baseline)));
    }

    #[test]
    fn a_missing_parent_makes_a_trace_incomplete() {
        // The shop's server span is still in its batch; its children came earlier.
        let spans: Vec<Span> = shop().into_iter().filter(|s| &*s.name != "POST /orders").collect();
        assert!(incomplete(&spans, &Expectations::default(), None));
        // A root is no orphan.
        assert!(!incomplete(&shop()[..2], &Expectations::default(), None));
    }

    #[test]
    fn an_expectation_that_does_not_hold_makes_a_trace_incomplete() {
        // The whole batch of the shop is late: no orphan, but the scenario says it is missing.
        let spans = &shop()[..2];
        let select = "span[name=\"POST /orders\"] span[name=\"reserve item\"]";
        let mut expectation = SpanExpectation::new(Spanned::new(parse(select).unwrap(), 0..select.len()));
        expectation.count = Some(crate::expect::model::Bounds { min: Some(2), max: Some(2) });
        let expectations = Expectations { spans: vec![expectation], trace: None };
        assert!(incomplete(spans, &expectations, None));
        assert!(!incomplete(&shop(), &expectations, None));
    }

    #[test]
    fn a_span_of_the_baseline_missing_makes_a_trace_incomplete() {
        let baseline = normalize::normalize("checkout", &[Recorded::plain(&shop())]);
        // One of two reservations (`reserve item#2`) has not arrived.
        assert!(incomplete(&shop()[..4], &Expectations::default(), Some(&baseline)));
        // Nor has the shop's batch at all.
        assert!(incomplete(&shop()[..2], &Expectations::default(), Some(&baseline)));
        // More than the baseline is not less.
        let mut more = shop();
        more.push(span(6, 3, "charge", "shop", 21, 30).build());
        assert!(!incomplete(&more, &Expectations::default(), Some(&baseline)));
    }
}
