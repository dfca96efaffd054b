//! The wording shared by failure messages: how a span, a moment of the trace, a bound and a list
//! read. One place, so every message names spans the same way and the user can match a line of a
//! message to a line of the trace tree.

use std::fmt::Write;
use std::time::Duration;

use crate::duration;
use crate::expect::model::Bounds;
use crate::output::count;
use crate::telemetry::index::TraceIndex;
use crate::telemetry::own::SERVICE_NAME;
use crate::telemetry::span::{Span, SpanStatus};

/// How many spans a message lists before summing up the rest.
pub(super) const LIST_MAX: usize = 10;

/// `charge (pay, client, 3.2ms, error)`: name, service, kind, duration, and status unless unset.
pub(super) fn label(span: &Span) -> String {
    let service = match span.service_name() {
        "" => "no service",
        name => name,
    };
    let duration = duration::display(span.duration());
    let status = match span.status {
        SpanStatus::Unset => String::new(),
        status => format!(", {}", status.as_str()),
    };
    format!("{} ({service}, {}, {duration}{status})", span.name, span.kind.as_str())
}

/// A moment as an offset from the start of the trace's first span: `+12.0ms`.
pub(super) fn moment(index: &TraceIndex, unix_nano: u64) -> String {
    let origin = index.spans().first().map_or(0, |span| span.start_unix_nano);
    format!("+{}", duration::display(Duration::from_nanos(unix_nano.saturating_sub(origin))))
}

/// The span at `position` as a list item names it: `charge (pay, client, 3.2ms) at +11.0ms`.
pub(super) fn item(index: &TraceIndex, position: usize) -> String {
    let span = index.spans()[position];
    format!("{} at {}", label(span), moment(index, span.start_unix_nano))
}

/// `exactly 3`, `at least 1`, `at most 5`, `between 1 and 5`.
pub(super) fn bounds<T: PartialEq>(bounds: &Bounds<T>, show: impl Fn(&T) -> String) -> String {
    match (&bounds.min, &bounds.max) {
        (Some(min), Some(max)) if min == max => format!("exactly {}", show(min)),
        (Some(min), Some(max)) => format!("between {} and {}", show(min), show(max)),
        (Some(min), None) => format!("at least {}", show(min)),
        (None, Some(max)) => format!("at most {}", show(max)),
        (None, None) => "any number".to_string(),
    }
}

/// A count of spans as words: `exactly 1 span`, `at least 2 spans`.
pub(super) fn span_count(count: &Bounds<u64>) -> String {
    let unit = if count.max.or(count.min) == Some(1) { "span" } else { "spans" };
    format!("{} {unit}", bounds(count, u64::to_string))
}

/// `1 of 3 spans`.
pub(super) fn share(part: usize, whole: usize) -> String {
    format!("{part} of {}", count(whole, "span"))
}

/// Writes `items` as a `  - ` list of at most `max` lines, summing up the rest in a last line.
pub(super) fn list(out: &mut String, items: impl IntoIterator<Item = String>, max: usize) {
    let mut items = items.into_iter();
    for item in items.by_ref().take(max) {
        let _ = writeln!(out, "  - {item}");
    }
    let rest = items.count();
    if rest > 0 {
        let _ = writeln!(out, "  … {rest} more");
    }
}

/// When the trace holds spans but only clnrm's own, the likely cause of any failure: the system
/// under test exported nothing.
pub(super) fn own_only_note(index: &TraceIndex) -> Option<String> {
    let own_only = !index.is_empty() && index.spans().iter().all(|span| span.is_own());
    own_only.then(|| {
        format!(
            "note: every span in this trace is clnrm's own (service \"{SERVICE_NAME}\"): the system under test sent \
             none. Check that it is instrumented and exports OTLP to the endpoint in OTEL_EXPORTER_OTLP_ENDPOINT."
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::span::SpanKind;
    use crate::telemetry::span::tests::span;

    #[test]
    fn labels_name_service_kind_duration_and_status() {
        let plain = span(1, 0, "GET /", "shop", 0, 3).build();
        assert_eq!(label(&plain), "GET / (shop, internal, 3.0ms)");
        let failed = span(1, 0, "charge", "", 0, 1500).kind(SpanKind::Client).status(SpanStatus::Error, "x").build();
        assert_eq!(label(&failed), "charge (no service, client, 1.50s, error)");
        let ok = span(1, 0, "a", "s", 0, 0).status(SpanStatus::Ok, "").build();
        assert_eq!(label(&ok), "a (s, internal, 0µs, ok)");
    }

    #[test]
    fn items_give_the_start_within_the_trace() {
        let spans = [span(1, 0, "root", "s", 100, 200).build(), span(2, 1, "child", "s", 112, 120).build()];
        let index = TraceIndex::new(&spans);
        assert_eq!(item(&index, 1), "child (s, internal, 8.0ms) at +12.0ms");
        assert_eq!(moment(&index, 100_000_000), "+0µs");
    }

    #[test]
    fn bounds_read_as_words_and_contain_inclusively() {
        let show = |n: &u64| n.to_string();
        let cases = [
            (Bounds { min: Some(3), max: Some(3) }, "exactly 3"),
            (Bounds { min: Some(1), max: Some(5) }, "between 1 and 5"),
            (Bounds { min: Some(1), max: None }, "at least 1"),
            (Bounds { min: None, max: Some(5) }, "at most 5"),
            (Bounds { min: None, max: None }, "any number"),
        ];
        for (b, text) in cases {
            assert_eq!(bounds(&b, show), text);
        }
        let b = Bounds { min: Some(1u64), max: Some(5) };
        assert!(b.contains(&1) && b.contains(&5) && !b.contains(&0) && !b.contains(&6));
        assert!(Bounds::<u64> { min: None, max: None }.contains(&0));
        assert_eq!(span_count(&Bounds { min: Some(1), max: None }), "at least 1 span");
        assert_eq!(span_count(&Bounds { min: Some(0), max: Some(1) }), "between 0 and 1 span");
        assert_eq!(span_count(&Bounds { min: Some(1), max: Some(2) }), "between 1 and 2 spans");
        assert_eq!(span_count(&Bounds { min: Some(0), max: Some(0) }), "exactly 0 spans");
    }

    #[test]
    fn lists_stop_at_max_and_count_the_rest() {
        let mut out = String::new();
        list(&mut out, (1..=4).map(|i| i.to_string()), 2);
        assert_eq!(out, "  - 1\n  - 2\n  … 2 more\n");
        let mut out = String::new();
        list(&mut out, ["a".to_string()], 2);
        assert_eq!(out, "  - a\n");
        assert_eq!(share(1, 1), "1 of 1 span");
        assert_eq!(share(2, 3), "2 of 3 spans");
    }

    #[test]
    fn own_only_note_only_for_traces_of_clnrm_spans_alone() {
        let own = [span(1, 0, "scenario", "clnrm", 0, 1).build()];
        assert!(own_only_note(&TraceIndex::new(&own)).is_some());
        let mixed = [span(1, 0, "scenario", "clnrm", 0, 1).build(), span(2, 1, "GET", "shop", 0, 1).build()];
        assert!(own_only_note(&TraceIndex::new(&mixed)).is_none());
        let posing =
            [span(1, 0, "scenario", "clnrm", 0, 1).build(), span(2, 1, "GET", "clnrm", 0, 1).impostor().build()];
        assert!(own_only_note(&TraceIndex::new(&posing)).is_none());
        assert!(own_only_note(&TraceIndex::new(&[])).is_none());
    }
}
