//! `[expect.trace]`: properties of the whole trace.
//!
//! - `spans` and `errors` count the spans of the system under test only: clnrm's own spans grow
//!   with every step and service and are not what the user tests.
//! - `order = [[A, B]]`: every span A selects ends at or before every span B selects starts.
//! - `within = [[A, B]]`: every span A selects lies inside the start–end window of at least one
//!   span B selects.
//!   For both, a side that selects nothing is a failure: holding vacuously would hide a selector
//!   that no longer matches.
//! - `spans`, `errors` and `hermetic` leave out what is clnrm's doing: its own spans and the
//!   requests of its readiness probes ([`TraceIndex::by_clnrm`]).
//! - `hermetic`: no span names a peer outside the scenario ([`Peers`]) unless `allow`ed. What a
//!   client, producer or internal span talks to is read from `server.address`, `net.peer.name`,
//!   `net.peer.ip`, `peer.service`, `network.peer.address`, `net.sock.peer.*` and the host of
//!   `url.full` and `http.url`; who called a server or consumer span from `client.address`,
//!   `net.peer.ip`, `net.peer.name`, `network.peer.address` and `net.sock.peer.addr` (unless
//!   `outbound_only`). A server span's `server.address` and URL are the server itself. Ports are
//!   stripped, names compare ignoring ASCII case. Resource attributes describe the service itself,
//!   not its peers.

use std::fmt::Write;

use crate::expect::describe::{LIST_MAX, bounds, item, list, moment, own_only_note, span_count};
use crate::expect::explain::explain_empty;
use crate::expect::failure::{Context, Failure, Found, TREE_LINES, Unmet};
use crate::expect::matcher::select_positions;
use crate::expect::model::{Bounds, Hermetic, TraceExpectation};
use crate::expect::selector::Selector;
use crate::expect::tree::render_tree;
use crate::output::count;
use crate::schema::Spanned;
use crate::telemetry::index::TraceIndex;
use crate::telemetry::peers::{Peers, host, url_host};
use crate::telemetry::span::{AttrValue, Span, SpanKind, SpanStatus, hex};

/// One key of `[expect.trace]` that does not hold.
pub(super) enum Problem<'e> {
    /// `spans`; `counted` are the positions of the spans of the system under test.
    Spans {
        bounds: Bounds<u64>,
        counted: Vec<usize>,
    },
    /// `errors`; `errors` are the positions of the counted spans with status error.
    Errors {
        expected: u64,
        errors: Vec<usize>,
    },
    Order {
        pair: &'e [Spanned<Selector>; 2],
        fault: PairFault,
    },
    Within {
        pair: &'e [Spanned<Selector>; 2],
        fault: PairFault,
    },
    /// `hermetic`; positions of the spans naming a peer outside the scenario.
    Hermetic {
        hermetic: &'e Hermetic,
        offenders: Vec<usize>,
    },
}

/// Why an `order` or `within` pair does not hold.
pub(super) enum PairFault {
    /// The selector on this side (0 or 1) selects nothing.
    Empty(usize),
    /// `order`: the span selected by A that ends last ends after the span selected by B that
    /// starts first starts.
    Overlap { last_end: usize, first_start: usize },
    /// `within`: the spans of A outside every window of B, and the spans of B.
    Outside { outside: Vec<usize>, windows: Vec<usize> },
}

/// Every key of `expectation` that does not hold.
pub(super) fn problems<'e>(
    index: &TraceIndex,
    expectation: &'e TraceExpectation,
    context: &Context,
) -> Vec<Problem<'e>> {
    let mut problems = Vec::new();
    let theirs: Vec<usize> = (0..index.len()).filter(|&p| !index.by_clnrm(p)).collect();
    if let Some(bounds) = expectation.spans
        && !bounds.contains(&(theirs.len() as u64))
    {
        problems.push(Problem::Spans { bounds, counted: theirs.clone() });
    }
    if let Some(expected) = expectation.errors {
        let errors: Vec<usize> =
            theirs.iter().copied().filter(|&p| index.spans()[p].status == SpanStatus::Error).collect();
        if errors.len() as u64 != expected {
            problems.push(Problem::Errors { expected, errors });
        }
    }
    for pair in &expectation.order {
        if let Some(fault) = order(index, pair) {
            problems.push(Problem::Order { pair, fault });
        }
    }
    for pair in &expectation.within {
        if let Some(fault) = within(index, pair) {
            problems.push(Problem::Within { pair, fault });
        }
    }
    if let Some(hermetic) = &expectation.hermetic {
        let offenders: Vec<usize> = theirs
            .into_iter()
            .filter(|&p| foreign_peers(index.spans()[p], hermetic, context.peers).next().is_some())
            .collect();
        if !offenders.is_empty() {
            problems.push(Problem::Hermetic { hermetic, offenders });
        }
    }
    problems
}

/// The spans each side of a pair selects, or which side selects nothing.
fn sides(index: &TraceIndex, pair: &[Spanned<Selector>; 2]) -> Result<[Vec<usize>; 2], PairFault> {
    let [a, b] = pair.each_ref().map(|selector| select_positions(index, &selector.compounds));
    match (a.is_empty(), b.is_empty()) {
        (true, _) => Err(PairFault::Empty(0)),
        (_, true) => Err(PairFault::Empty(1)),
        _ => Ok([a, b]),
    }
}

fn order(index: &TraceIndex, pair: &[Spanned<Selector>; 2]) -> Option<PairFault> {
    let [a, b] = match sides(index, pair) {
        Ok(sides) => sides,
        Err(fault) => return Some(fault),
    };
    let span = |p: usize| index.spans()[p];
    let last_end = a.iter().copied().max_by_key(|&p| span(p).end_unix_nano)?;
    let first_start = b.iter().copied().min_by_key(|&p| span(p).start_unix_nano)?;
    (span(last_end).end_unix_nano > span(first_start).start_unix_nano)
        .then_some(PairFault::Overlap { last_end, first_start })
}

/// O((|A| + |B|) log |B|): B's windows are in start order, so the windows starting no later than a
/// span are a prefix, and the latest end among them decides.
fn within(index: &TraceIndex, pair: &[Spanned<Selector>; 2]) -> Option<PairFault> {
    let [a, windows] = match sides(index, pair) {
        Ok(sides) => sides,
        Err(fault) => return Some(fault),
    };
    let span = |p: usize| index.spans()[p];
    let reach: Vec<u64> = windows
        .iter()
        .scan(0, |latest, &w| {
            *latest = span(w).end_unix_nano.max(*latest);
            Some(*latest)
        })
        .collect();
    let outside: Vec<usize> = a
        .into_iter()
        .filter(|&p| {
            let started = windows.partition_point(|&w| span(w).start_unix_nano <= span(p).start_unix_nano);
            started == 0 || reach[started - 1] < span(p).end_unix_nano
        })
        .collect();
    (!outside.is_empty()).then_some(PairFault::Outside { outside, windows })
}

/// The peers `span` names that are outside the scenario and not allowed: (key, value, host).
/// A server or consumer span's own address and URL are the server itself; who called it is judged
/// unless `outbound_only`.
fn foreign_peers<'s>(
    span: &'s Span,
    hermetic: &'s Hermetic,
    peers: &'s Peers,
) -> impl Iterator<Item = (&'s str, &'s str, &'s str)> {
    let received = matches!(span.kind, SpanKind::Server | SpanKind::Consumer);
    span.attributes.iter().filter_map(move |(key, value)| {
        let AttrValue::Str(value) = value else { return None };
        let host = match (&**key, received) {
            (
                "client.address" | "net.peer.ip" | "net.peer.name" | "network.peer.address" | "net.sock.peer.addr",
                true,
            ) if !hermetic.outbound_only => host(value),
            (
                "server.address"
                | "net.peer.name"
                | "net.peer.ip"
                | "peer.service"
                | "network.peer.address"
                | "net.sock.peer.addr"
                | "net.sock.peer.name",
                false,
            ) => host(value),
            ("url.full" | "http.url", false) => url_host(value)?,
            _ => return None,
        };
        let inside = host.is_empty() || peers.is_inside(host) || hermetic.allows(host);
        (!inside).then_some((&**key, &**value, host))
    })
}

impl Problem<'_> {
    pub(super) fn failure(&self, index: &TraceIndex, context: &Context) -> Failure {
        let mut out = String::new();
        let key = match self {
            Problem::Spans { bounds: expected, counted } => {
                spans_message(&mut out, index, expected, counted);
                "spans"
            }
            Problem::Errors { expected, errors } => {
                let colon = if errors.is_empty() { "" } else { ":" };
                let _ = writeln!(
                    out,
                    "expected {} with status error, found {}{colon}",
                    count(*expected as usize, "span"),
                    errors.len()
                );
                let lines = errors.iter().map(|&p| match &*index.spans()[p].status_message {
                    "" => item(index, p),
                    message => format!("{}: {message:?}", item(index, p)),
                });
                list(&mut out, lines, LIST_MAX);
                "errors"
            }
            Problem::Order { pair: [a, b], fault } => {
                let rule = format!("every span selected by {} must end before any selected by {} starts", **a, **b);
                pair_message(&mut out, index, &rule, [a, b], fault);
                "order"
            }
            Problem::Within { pair: [a, b], fault } => {
                let rule = format!("every span selected by {} must lie within one selected by {}", **a, **b);
                pair_message(&mut out, index, &rule, [a, b], fault);
                "within"
            }
            Problem::Hermetic { hermetic, offenders } => {
                hermetic_message(&mut out, index, hermetic, offenders, context);
                "hermetic"
            }
        };
        Failure { expectation: format!("[expect.trace] {key}"), unmet: self.unmet(index, context), message: out }
    }

    /// What the key asks for and what was found, as data.
    fn unmet(&self, index: &TraceIndex, context: &Context) -> Unmet {
        let id = |p: usize| hex(&index.spans()[p].span_id);
        let spans = |positions: &[usize], value: &dyn Fn(usize) -> Option<String>| -> Vec<Found> {
            positions.iter().map(|&p| Found { span: id(p), value: value(p) }).collect()
        };
        let (key, expected, found, spans) = match self {
            Problem::Spans { bounds: expected, counted } => {
                ("spans", bounds(expected, u64::to_string), Some(counted.len().to_string()), Vec::new())
            }
            Problem::Errors { expected, errors } => {
                let message = |p: usize| Some(index.spans()[p].status_message.to_string()).filter(|m| !m.is_empty());
                ("errors", expected.to_string(), Some(errors.len().to_string()), spans(errors, &message))
            }
            Problem::Order { pair: [a, b], fault } => {
                let (found, spans) = pair_found([a, b], fault, &id);
                ("order", format!("{} ends before {} starts", **a, **b), found, spans)
            }
            Problem::Within { pair: [a, b], fault } => {
                let (found, spans) = pair_found([a, b], fault, &id);
                ("within", format!("{} lies within {}", **a, **b), found, spans)
            }
            Problem::Hermetic { hermetic, offenders } => {
                let peers = |p: usize| {
                    let named = foreign_peers(index.spans()[p], hermetic, context.peers);
                    Some(named.map(|(key, value, _)| format!("{key} = {value:?}")).collect::<Vec<_>>().join(", "))
                };
                let allowed = match hermetic.allow.as_slice() {
                    [] => String::new(),
                    allow => format!(" (allowed: {})", allow.join(", ")),
                };
                ("hermetic", format!("no peer outside the scenario{allowed}"), None, spans(offenders, &peers))
            }
        };
        Unmet { key: key.into(), expected, found, spans }
    }
}

/// What a pair that does not hold found: the selector that selects nothing, or the spans whose
/// times clash (the recorded trace has their times).
fn pair_found(pair: [&Selector; 2], fault: &PairFault, id: &dyn Fn(usize) -> String) -> (Option<String>, Vec<Found>) {
    let found = |positions: &[usize]| positions.iter().map(|&p| Found { span: id(p), value: None }).collect();
    match fault {
        PairFault::Empty(side) => (Some(format!("{} selects no span", pair[*side])), Vec::new()),
        PairFault::Overlap { last_end, first_start } => (None, found(&[*last_end, *first_start])),
        PairFault::Outside { outside, .. } => (None, found(outside)),
    }
}

fn spans_message(out: &mut String, index: &TraceIndex, expected: &Bounds<u64>, counted: &[usize]) {
    let own = index.len() - counted.len();
    let _ = writeln!(
        out,
        "expected {} from the system under test, found {} (clnrm's own {} not counted)",
        span_count(expected),
        counted.len(),
        count(own, "span")
    );
    let mut services: Vec<(&str, usize)> = Vec::new();
    for &p in counted {
        let service = index.spans()[p].service_name();
        match services.iter_mut().find(|(name, _)| *name == service) {
            Some((_, n)) => *n += 1,
            None => services.push((service, 1)),
        }
    }
    list(out, services.into_iter().map(|(service, n)| format!("{service}: {}", count(n, "span"))), LIST_MAX);
    if let Some(note) = own_only_note(index) {
        let _ = writeln!(out, "{note}");
    }
}

fn pair_message(out: &mut String, index: &TraceIndex, rule: &str, pair: [&Selector; 2], fault: &PairFault) {
    let ends = |p: usize| format!("{} ends at {}", item(index, p), moment(index, index.spans()[p].end_unix_nano));
    let marks: Vec<usize> = match fault {
        PairFault::Empty(side) => {
            let _ = writeln!(out, "{rule}, but {} selects no span:", pair[*side]);
            let explanation = explain_empty(index, pair[*side]);
            out.push_str(&explanation.text);
            explanation.nearest
        }
        PairFault::Overlap { last_end, first_start } => {
            let _ = writeln!(out, "{rule}, but:");
            let _ = writeln!(out, "  - {}", ends(*last_end));
            let _ = writeln!(out, "  - {} starts before that", item(index, *first_start));
            vec![*last_end, *first_start]
        }
        PairFault::Outside { outside, windows } => {
            let _ = writeln!(out, "{rule}, but these are not:");
            list(out, outside.iter().map(|&p| ends(p)), LIST_MAX);
            let _ = writeln!(out, "{} selects:", pair[1]);
            list(out, windows.iter().map(|&p| ends(p)), LIST_MAX);
            outside.iter().chain(windows).copied().collect()
        }
    };
    let marked: Vec<&Span> = marks.iter().map(|&p| index.spans()[p]).collect();
    let _ = writeln!(out, "trace ({}; ▶ the spans above):", count(index.len(), "span"));
    out.push_str(&render_tree(index, &marked, TREE_LINES));
}

fn hermetic_message(out: &mut String, index: &TraceIndex, hermetic: &Hermetic, offenders: &[usize], context: &Context) {
    let _ = writeln!(out, "peers outside the scenario, named by {}:", count(offenders.len(), "span"));
    let lines = offenders.iter().flat_map(|&p| {
        foreign_peers(index.spans()[p], hermetic, context.peers).map(move |(key, value, host)| {
            let host = if host == value { String::new() } else { format!(" (host {host})") };
            format!("{}: {key} = {value:?}{host}", item(index, p))
        })
    });
    list(out, lines, LIST_MAX);
    let _ = writeln!(out, "known peers: {}", context.peers.describe());
    if !hermetic.allow.is_empty() {
        let _ = writeln!(out, "allowed: {}", hermetic.allow.join(", "));
    }
    let _ = writeln!(
        out,
        "run each of these peers as a [services.NAME] container of the scenario (or a fake of it) and point the \
         system under test at it, or allow it: hermetic = {{ allow = [\"HOST\"] }}"
    );
    let marked: Vec<&Span> = offenders.iter().map(|&p| index.spans()[p]).collect();
    let _ = writeln!(out, "trace ({}; ▶ the spans naming outside peers):", count(index.len(), "span"));
    out.push_str(&render_tree(index, &marked, TREE_LINES));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::check::tests::{failures, selector, shop};
    use crate::expect::model::Expectations;
    use crate::telemetry::span::tests::span;

    fn trace_failures(spans: &[Span], trace: TraceExpectation) -> Vec<Failure> {
        failures(spans, &Expectations { spans: Vec::new(), trace: Some(trace) })
    }

    fn pair(a: &str, b: &str) -> [Spanned<Selector>; 2] {
        [selector(a), selector(b)]
    }

    /// The message of the only failure, checking its name.
    fn message(spans: &[Span], trace: TraceExpectation, key: &str) -> String {
        let failures = trace_failures(spans, trace);
        assert_eq!(failures.len(), 1, "{failures:#?}");
        assert_eq!(failures[0].expectation, format!("[expect.trace] {key}"));
        failures[0].message.clone()
    }

    /// What the run record keeps of each failed key: what it asks for, what the trace has as a
    /// whole, and the spans it fails for.
    #[test]
    fn failures_say_what_was_expected_and_found_as_data() {
        let mut spans = shop();
        spans.push(
            span(21, 3, "GET evil", "shop", 5, 6).kind(SpanKind::Client).str("server.address", "evil.example").build(),
        );
        let id = |i: usize| hex(&spans[i].span_id);
        let unmet = |trace: TraceExpectation| -> Vec<Unmet> {
            trace_failures(&spans, trace).into_iter().map(|f| f.unmet).collect()
        };
        let at = |i: usize, value: Option<&str>| Found { span: id(i), value: value.map(String::from) };
        let all = TraceExpectation {
            spans: Some(Bounds { min: None, max: Some(3) }),
            errors: Some(0),
            order: vec![
                pair("span[name=\"POST /orders\"]", "span[name=\"reserve\"]"),
                pair("span[name=\"nope\"]", "span[name=\"reserve\"]"),
            ],
            within: vec![pair("span[name=\"GET /orders/1\"]", "span[name=\"place order\"]")],
            hermetic: Some(Hermetic { allow: vec!["other.example".into()], outbound_only: false }),
        };
        let expected = |key: &str, expected: &str, found: Option<&str>, spans: Vec<Found>| Unmet {
            key: key.into(),
            expected: expected.into(),
            found: found.map(String::from),
            spans,
        };
        assert_eq!(
            unmet(all),
            vec![
                expected("spans", "at most 3", Some("5"), Vec::new()),
                expected("errors", "0", Some("1"), vec![at(4, Some("card declined"))]),
                expected(
                    "order",
                    "span[name=\"POST /orders\"] ends before span[name=\"reserve\"] starts",
                    None,
                    vec![at(2, None), at(3, None)]
                ),
                expected(
                    "order",
                    "span[name=\"nope\"] ends before span[name=\"reserve\"] starts",
                    Some("span[name=\"nope\"] selects no span"),
                    Vec::new()
                ),
                expected(
                    "within",
                    "span[name=\"GET /orders/1\"] lies within span[name=\"place order\"]",
                    None,
                    vec![at(6, None)]
                ),
                expected(
                    "hermetic",
                    "no peer outside the scenario (allowed: other.example)",
                    None,
                    vec![at(7, Some("server.address = \"evil.example\""))]
                ),
            ]
        );
    }

    #[test]
    fn span_and_error_counts_leave_out_clnrm_spans() {
        let mut spans = shop();
        spans.push(span(20, 1, "failed step", "clnrm", 95, 99).status(SpanStatus::Error, "exit 1").build());
        let exact = TraceExpectation {
            spans: Some(Bounds { min: Some(4), max: Some(4) }),
            errors: Some(1),
            ..Default::default()
        };
        assert!(trace_failures(&spans, exact).is_empty());

        let fewer = TraceExpectation { spans: Some(Bounds { min: None, max: Some(3) }), ..Default::default() };
        assert_eq!(
            message(&spans, fewer, "spans"),
            "expected at most 3 spans from the system under test, found 4 (clnrm's own 4 spans not counted)
  - shop: 3 spans
  - pay: 1 span
"
        );
        let none = TraceExpectation { errors: Some(0), ..Default::default() };
        assert_eq!(
            message(&spans, none, "errors"),
            "expected 0 spans with status error, found 1:
  - charge (pay, client, 19.0ms, error) at +11.0ms: \"card declined\"
"
        );
        let two = TraceExpectation { errors: Some(2), ..Default::default() };
        assert!(message(&spans, two, "errors").starts_with("expected 2 spans with status error, found 1:\n"));
    }

    #[test]
    fn a_program_exporting_as_clnrm_is_counted_and_checked_like_any_other() {
        let mut spans = shop();
        spans.push(
            span(21, 3, "GET /evil", "clnrm", 5, 6)
                .status(SpanStatus::Error, "boom")
                .str("server.address", "evil.example.com")
                .impostor()
                .build(),
        );
        let counts = TraceExpectation {
            spans: Some(Bounds { min: Some(4), max: Some(4) }),
            errors: Some(0),
            hermetic: Some(Hermetic::default()),
            ..Default::default()
        };
        let failures = trace_failures(&spans, counts);
        let keys: Vec<&str> = failures.iter().map(|f| f.expectation.as_str()).collect();
        assert_eq!(keys, ["[expect.trace] spans", "[expect.trace] errors", "[expect.trace] hermetic"]);
    }

    #[test]
    fn order_needs_every_a_to_end_before_every_b_starts() {
        let holds = TraceExpectation {
            order: vec![
                pair("span[name=\"reserve\"]", "span[name=\"charge\"]"),
                pair("span[name=\"place order\"]", "span[service.name=\"shop\"]:last"),
            ],
            ..Default::default()
        };
        assert!(trace_failures(&shop(), holds).is_empty());
        // Ending in the very nanosecond the other starts is in order.
        let mut touching = shop();
        touching[3].end_unix_nano = touching[4].start_unix_nano;
        let order = TraceExpectation {
            order: vec![pair("span[name=\"reserve\"]", "span[name=\"charge\"]")],
            ..Default::default()
        };
        assert!(trace_failures(&touching, order.clone()).is_empty());
        touching[3].end_unix_nano += 1;
        assert!(
            message(&touching, order, "order").contains("reserve (shop, internal, 8.0ms) at +3.0ms ends at +11.0ms\n")
        );

        let overlap = TraceExpectation {
            order: vec![pair("span[name=\"POST /orders\"]", "span[name=\"reserve\"]")],
            ..Default::default()
        };
        let text = message(&shop(), overlap, "order");
        assert!(
            text.starts_with(
                "every span selected by span[name=\"POST /orders\"] must end before any selected by span[name=\"reserve\"] starts, but:
  - POST /orders (shop, server, 38.0ms, ok) at +2.0ms ends at +40.0ms
  - reserve (shop, internal, 7.0ms) at +3.0ms starts before that
trace (7 spans; ▶ the spans above):
  checkout (clnrm, internal, 100.0ms)
    place order (clnrm, internal, 49.0ms)
▶     POST /orders (shop, server, 38.0ms, ok)
▶       reserve (shop, internal, 7.0ms)
"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_side_selecting_nothing_fails_and_says_which() {
        for (a, b, empty) in [
            ("span[name=\"refund\"]", "span[name=\"charge\"]", 0),
            ("span[name=\"charge\"]", "span[name=\"chrage\"]", 1),
        ] {
            let order = TraceExpectation { order: vec![pair(a, b)], ..Default::default() };
            let within = TraceExpectation { within: vec![pair(a, b)], ..Default::default() };
            let side = [a, b][empty];
            assert!(message(&shop(), order, "order").contains(&format!(" starts, but {side} selects no span:\n")));
            assert!(message(&shop(), within, "within").contains(&format!(", but {side} selects no span:\n")));
        }
        let within = TraceExpectation {
            within: vec![pair("span[name=\"charge\"]", "span[name=\"chrage\"]")],
            ..Default::default()
        };
        let text = message(&shop(), within, "within");
        assert!(text.contains("nearest spans, with the conditions each one fails:\n  - charge "), "{text}");
        assert!(text.contains("\n▶       charge (pay"), "{text}");
    }

    #[test]
    fn within_needs_each_a_inside_some_b() {
        let holds = TraceExpectation {
            within: vec![
                pair("span[name=\"charge\"]", "span[name=\"POST /orders\"]"),
                pair("span[service.name=\"shop\"]", "span[name=~\"order$\"]"),
                pair("span[name=\"charge\"]", "span[name=\"charge\"]"),
            ],
            ..Default::default()
        };
        assert!(trace_failures(&shop(), holds).is_empty());
        let outside = TraceExpectation {
            within: vec![pair("span[name=\"check order\"]", "span[name=\"place order\"]")],
            ..Default::default()
        };
        let text = message(&shop(), outside, "within");
        assert!(
            text.starts_with(
                "every span selected by span[name=\"check order\"] must lie within one selected by span[name=\"place order\"], but these are not:
  - check order (clnrm, internal, 30.0ms) at +60.0ms ends at +90.0ms
span[name=\"place order\"] selects:
  - place order (clnrm, internal, 49.0ms) at +1.0ms ends at +50.0ms
trace (7 spans; ▶ the spans above):
"
            ),
            "{text}"
        );
    }

    #[test]
    fn within_looks_at_every_earlier_window() {
        // A long early window covers the span although a later, shorter window starts closer to it.
        let spans = [
            span(1, 0, "window", "s", 0, 100).build(),
            span(2, 0, "window", "s", 5, 6).build(),
            span(3, 0, "inside", "s", 50, 60).build(),
            span(4, 0, "too early", "s", 0, 1).build(),
        ];
        let inside = TraceExpectation {
            within: vec![pair("span[name=\"inside\"]", "span[name=\"window\"]:last")],
            ..Default::default()
        };
        assert!(!trace_failures(&spans, inside).is_empty());
        let inside = TraceExpectation {
            within: vec![pair("span[name=\"inside\"]", "span[name=\"window\"]")],
            ..Default::default()
        };
        assert!(trace_failures(&spans, inside).is_empty());
        let early = TraceExpectation {
            within: vec![pair("span[name=\"too early\"]", "span[name=\"window\"]:last")],
            ..Default::default()
        };
        assert!(message(&spans, early, "within").contains("these are not:\n  - too early "));
    }

    /// The spans `hermetic` flags in `shop()` with `extra` added (by name).
    fn flagged(extra: Vec<Span>, hermetic: Hermetic) -> Vec<String> {
        let mut spans = shop();
        spans.extend(extra);
        let index = TraceIndex::new(&spans);
        let expectation = TraceExpectation { hermetic: Some(hermetic), ..Default::default() };
        let context = crate::expect::check::tests::context();
        let mut names = Vec::new();
        for problem in problems(&index, &expectation, &context) {
            if let Problem::Hermetic { offenders, .. } = problem {
                names.extend(offenders.iter().map(|&p| index.spans()[p].name.to_string()));
            }
        }
        names
    }

    #[test]
    fn a_server_span_names_itself_and_its_caller_and_ports_do_not_matter() {
        let server = |caller: &str| {
            span(30, 3, "GET /items", "shop", 12, 14)
                .kind(SpanKind::Server)
                .str("server.address", "api.shop.example:8000")
                .str("url.full", "http://api.shop.example:8000/items")
                .str("net.host.name", "10.1.1.1:8000")
                .str("client.address", caller)
                .build()
        };
        let client = span(31, 3, "SELECT", "shop", 12, 14)
            .kind(SpanKind::Client)
            .str("server.address", "pay:5432")
            .str("network.peer.address", "[::1]:5432")
            .build();
        assert!(flagged(vec![server("localhost"), client.clone()], Hermetic::default()).is_empty());
        assert_eq!(flagged(vec![server("10.9.9.9")], Hermetic::default()), ["GET /items"], "an outside caller");
        let outbound = Hermetic { outbound_only: true, ..Hermetic::default() };
        assert!(flagged(vec![server("10.9.9.9")], outbound).is_empty());
        let outside = span(32, 3, "call", "shop", 12, 14)
            .kind(SpanKind::Client)
            .str("server.address", "pay.example.com:443")
            .build();
        assert_eq!(flagged(vec![outside.clone()], Hermetic::default()), ["call"], "a port does not make it inside");
    }

    #[test]
    fn allowed_peers_are_names_and_domains() {
        let call =
            |host: &str| span(33, 3, "call", "shop", 12, 14).kind(SpanKind::Client).str("server.address", host).build();
        let allow = Hermetic { allow: vec!["api.stripe.com".into(), "*.example.com".into()], outbound_only: false };
        for allowed in ["api.stripe.com", "API.Stripe.com:443", "a.example.com", "b.a.EXAMPLE.com"] {
            assert!(flagged(vec![call(allowed)], allow.clone()).is_empty(), "{allowed}");
        }
        for outside in ["example.com", "stripe.com", "api.stripe.com.evil.io", "notexample.com"] {
            assert_eq!(flagged(vec![call(outside)], allow.clone()), ["call"], "{outside}");
        }
    }

    #[test]
    fn what_a_readiness_probe_causes_is_clnrms_doing() {
        let probe = |id: u64, parent: u64| {
            span(id, parent, "GET /health", "shop", 1, 2)
                .kind(SpanKind::Server)
                .str("client.address", "10.9.9.9")
                .build()
        };
        let wait = span(40, 1, "wait shop", "clnrm", 0, 3)
            .str("clnrm.wait.strategy", "HTTP 2xx from GET :8000/health")
            .build();
        let below = span(42, 41, "SELECT 1", "shop", 1, 2).status(SpanStatus::Error, "not yet").build();
        let spans: Vec<Span> = shop().into_iter().chain([wait, probe(41, 40), below]).collect();
        let exact = TraceExpectation {
            spans: Some(Bounds { min: Some(4), max: Some(4) }),
            errors: Some(1),
            hermetic: Some(Hermetic::default()),
            ..Default::default()
        };
        assert!(trace_failures(&spans, exact).is_empty(), "the probe and what it caused are not counted");
        // The same request below a step (not a wait) is the system's.
        assert_eq!(flagged(vec![probe(43, 2)], Hermetic::default()), ["GET /health"]);
    }

    #[test]
    fn hermetic_reports_each_foreign_peer() {
        let hermetic = TraceExpectation { hermetic: Some(Hermetic::default()), ..Default::default() };
        assert!(trace_failures(&shop(), hermetic.clone()).is_empty());
        let mut spans = shop();
        spans.push(
            span(20, 3, "call", "shop", 12, 14)
                .kind(SpanKind::Client)
                .str("server.address", "api.stripe.com")
                .str("url.full", "https://user@API.example.com:443/v1?x=1")
                .str("http.url", "http://LOCALHOST:8080/x")
                .str("peer.service", "pay")
                .attr("net.peer.port", AttrValue::Int(443))
                .attr("net.peer.name", AttrValue::Int(7))
                .build(),
        );
        spans.push(span(21, 3, "lookup", "shop", 15, 16).str("net.peer.ip", "10.0.0.9").build());
        spans.push(span(22, 1, "pull", "clnrm", 0, 1).str("server.address", "registry.example.com").build());
        spans.push(span(23, 3, "empty", "shop", 15, 16).str("network.peer.address", "").build());
        assert_eq!(
            message(&spans, hermetic, "hermetic"),
            "peers outside the scenario, named by 2 spans:
  - call (shop, client, 2.0ms) at +12.0ms: server.address = \"api.stripe.com\"
  - call (shop, client, 2.0ms) at +12.0ms: url.full = \"https://user@API.example.com:443/v1?x=1\" (host API.example.com)
  - lookup (shop, internal, 1.0ms) at +15.0ms: net.peer.ip = \"10.0.0.9\"
known peers: localhost (127.0.0.1, ::1), shop, pay
run each of these peers as a [services.NAME] container of the scenario (or a fake of it) and point the system under test at it, or allow it: hermetic = { allow = [\"HOST\"] }
trace (11 spans; ▶ the spans naming outside peers):
  checkout (clnrm, internal, 100.0ms)
    pull (clnrm, internal, 1.0ms)
    place order (clnrm, internal, 49.0ms)
      POST /orders (shop, server, 38.0ms, ok)
        reserve (shop, internal, 7.0ms)
        charge (pay, client, 19.0ms, error)
▶       call (shop, client, 2.0ms)
▶       lookup (shop, internal, 1.0ms)
        empty (shop, internal, 1.0ms)
    check order (clnrm, internal, 30.0ms)
      GET /orders/1 (shop, server, 9.0ms)
"
        );
    }

    #[test]
    fn url_hosts() {
        let cases = [
            ("https://a.b/c", Some("a.b")),
            ("http://host:8080", Some("host")),
            ("http://u:p@host:1/x", Some("host")),
            ("http://host?q=1", Some("host")),
            ("http://host#frag", Some("host")),
            ("http://[::1]:8080/x", Some("::1")),
            ("http://[::1", None),
            ("host:8080/x", None),
            ("file:///tmp/x", Some("")),
        ];
        for (url, host) in cases {
            assert_eq!(url_host(url), host, "{url}");
        }
    }
}
