//! Checking a scenario's expectations against the spans collected from its run.
//!
//! Checking is split in two: evaluating an expectation finds what fails, as positions of spans,
//! without building text; only [`results`] turns that into messages.
//!
//! `[[expect.span]]`, with S the spans `select` selects: `count` bounds the size of S (default: at
//! least one). Every other key must hold for each span in S: `attrs` (each attribute, compared as
//! a selector's `=` does), `status`, `kind`, `parent` (the direct parent is selected by the parent
//! selector over the whole trace), `duration` (inclusive bounds), `events` (each name recorded).
//! When S is empty and `count` does not allow that, only the count is reported: the other keys
//! would hold vacuously and say nothing.
//!
//! A failure message names the selector, what was expected and what was found, lists the spans
//! concerned (or, when nothing was selected, the nearest spans) and ends with the trace tree, the
//! listed spans marked, so the user sees where they sit.

use std::fmt::Write;
use std::time::Duration;

use crate::duration;
use crate::expect::describe::{LIST_MAX, bounds, item, label, list, share, span_count};
use crate::expect::explain::{Explanation, explain_empty, quoted};
use crate::expect::failure::{Context, Failure, Found, TREE_LINES, Unmet};
use crate::expect::matcher::{attr_equals, select_positions, select_subjects};
use crate::expect::model::{Bounds, Expectations, SpanExpectation};
use crate::expect::selector::{SPAN_FIELDS, Selector, Value};
use crate::expect::trace;
use crate::output::count;
use crate::suggest::did_you_mean;
use crate::telemetry::index::TraceIndex;
use crate::telemetry::span::{Span, SpanKind, SpanStatus, hex};

pub use crate::expect::tree::render_tree;

/// One expectation as checked: what the run record keeps of it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Checked {
    /// Which one: `[[expect.span]] #2 span[name="charge"]`, `[expect.trace] order`.
    pub expectation: String,
    /// The selector of a `[[expect.span]]`.
    pub select: Option<String>,
    /// The line of a `[[expect.span]]`'s `select` in the scenario file.
    pub line: Option<usize>,
    /// The ids (hex) of the spans it selected, in start order.
    pub selected: Vec<String>,
    /// When it selected none: the ids of the spans nearest to what it asks for.
    pub nearest: Vec<String>,
    pub passed: bool,
    /// Each key that does not hold: what it asks for and what was found, as data (absent from
    /// records written before it was added: read as none).
    #[serde(default)]
    pub unmet: Vec<Unmet>,
    /// When it failed: what was expected, what was found (or the nearest spans) and where to look.
    pub message: Option<String>,
}

impl Checked {
    /// A key of `[expect.trace]`, which selects no spans of its own, as failed until said.
    fn trace() -> Checked {
        Checked {
            expectation: String::new(),
            select: None,
            line: None,
            selected: Vec::new(),
            nearest: Vec::new(),
            passed: false,
            unmet: Vec::new(),
            message: None,
        }
    }
}

/// Whether every expectation of `expectations` holds on `spans`: what `results` finds, without
/// explaining it.
pub fn hold(spans: &[Span], expectations: &Expectations, context: &Context) -> bool {
    let index = TraceIndex::new(spans);
    expectations.spans.iter().all(|expectation| evaluate(&index, expectation).problems.is_empty())
        && expectations
            .trace
            .as_ref()
            .is_none_or(|expectation| trace::problems(&index, expectation, context).is_empty())
}

/// Every expectation of `expectations` checked against `spans`: each `[[expect.span]]` with the
/// spans it selected, and each key given in `[expect.trace]`.
pub fn results(spans: &[Span], expectations: &Expectations, context: &Context) -> Vec<Checked> {
    let index = TraceIndex::new(spans);
    let mut results = Vec::new();
    for (i, expectation) in expectations.spans.iter().enumerate() {
        let verdict = evaluate(&index, expectation);
        let passed = verdict.problems.is_empty();
        let ids = |positions: &[usize]| positions.iter().map(|&p| hex(&index.spans()[p].span_id)).collect();
        let explanation = verdict.explanation(&index, &expectation.select);
        results.push(Checked {
            expectation: format!("[[expect.span]] #{} {}", i + 1, *expectation.select),
            select: Some(expectation.select.to_string()),
            line: expectation.line,
            selected: ids(&verdict.selected),
            nearest: explanation.as_ref().map(|e| ids(&e.nearest)).unwrap_or_default(),
            passed,
            unmet: verdict.problems.iter().map(|p| p.unmet(&index, verdict.selected.len())).collect(),
            message: (!passed).then(|| verdict.message(&index, &expectation.select, explanation.as_ref())),
        });
    }
    if let Some(expectation) = &expectations.trace {
        let failures: Vec<Failure> =
            trace::problems(&index, expectation, context).iter().map(|p| p.failure(&index, context)).collect();
        let given = [
            ("spans", expectation.spans.is_some()),
            ("errors", expectation.errors.is_some()),
            ("order", !expectation.order.is_empty()),
            ("within", !expectation.within.is_empty()),
            ("hermetic", expectation.hermetic.is_some()),
        ];
        for (key, _) in given.into_iter().filter(|(_, given)| *given) {
            let label = format!("[expect.trace] {key}");
            if !failures.iter().any(|f| f.expectation == label) {
                results.push(Checked { expectation: label, passed: true, ..Checked::trace() });
            }
        }
        // One result per pair or key that does not hold, as failures are counted.
        results.extend(failures.into_iter().map(|f| Checked {
            expectation: f.expectation,
            unmet: vec![f.unmet],
            message: Some(f.message),
            ..Checked::trace()
        }));
    }
    results
}

/// Warnings about `[[expect.span]]` that held only because they could not fail: `count` allows
/// no span at most (`count = 0`, `max = 0`) and `select` names attributes that no span of the trace
/// carries, so it would hold whatever the system did (a misspelt key, say). One per expectation.
pub fn vacuous(spans: &[Span], expectations: &Expectations) -> Vec<String> {
    let mut warnings = Vec::new();
    for (i, expectation) in expectations.spans.iter().enumerate() {
        if expectation.count.is_none_or(|count| count.max != Some(0)) {
            continue;
        }
        let absent: Vec<&str> = expectation
            .select
            .attribute_keys()
            .into_iter()
            .filter(|key| !spans.iter().any(|span| span.attr(key).is_some()))
            .collect();
        if absent.is_empty() {
            continue;
        }
        let keys: Vec<String> = absent.iter().map(|key| format!("`{key}`{}", suggestion(spans, key))).collect();
        warnings.push(format!(
            "[[expect.span]] #{} {} holds only because no span in the trace has {}: with a count of 0 it cannot \
             fail; check the spelling",
            i + 1,
            *expectation.select,
            keys.join(" or ")
        ));
    }
    warnings
}

/// ` (did you mean `x`?)` when a span field or a key some span of the trace has is close to `key`.
fn suggestion(spans: &[Span], key: &str) -> String {
    let mut known: Vec<&str> = SPAN_FIELDS.to_vec();
    for span in spans {
        for (k, _) in span.attributes.iter().chain(&span.resource.attributes) {
            if !known.contains(&&**k) {
                known.push(k);
            }
        }
    }
    did_you_mean(key, known).map(|meant| format!(" (did you mean `{meant}`?)")).unwrap_or_default()
}

/// `count` when the expectation gives none.
const AT_LEAST_ONE: Bounds<u64> = Bounds { min: Some(1), max: None };

/// What evaluating one `[[expect.span]]` found.
struct Verdict<'e> {
    /// Positions of the selected spans, in start order.
    selected: Vec<usize>,
    problems: Vec<Problem<'e>>,
}

/// One key of a `[[expect.span]]` that does not hold; `offenders` are positions of the selected
/// spans it fails for.
enum Problem<'e> {
    NoneSelected(Bounds<u64>),
    Count(Bounds<u64>),
    Attr { key: &'e str, value: &'e Value, offenders: Vec<usize> },
    Status { expected: SpanStatus, offenders: Vec<usize> },
    Kind { expected: SpanKind, offenders: Vec<usize> },
    Parent { selector: &'e Selector, parents: Vec<usize>, offenders: Vec<usize> },
    Duration { bounds: Bounds<Duration>, offenders: Vec<usize> },
    Events { names: &'e [String], offenders: Vec<usize> },
}

fn evaluate<'e>(index: &TraceIndex, expectation: &'e SpanExpectation) -> Verdict<'e> {
    let selected = select_subjects(index, &expectation.select.compounds);
    let count = expectation.count.unwrap_or(AT_LEAST_ONE);
    if selected.is_empty() && !count.contains(&0) {
        return Verdict { selected, problems: vec![Problem::NoneSelected(count)] };
    }
    let offenders = |fails: &dyn Fn(&Span) -> bool| -> Vec<usize> {
        selected.iter().copied().filter(|&p| fails(index.spans()[p])).collect()
    };
    let mut problems = Vec::new();
    if !count.contains(&(selected.len() as u64)) {
        problems.push(Problem::Count(count));
    }
    for (key, value) in &expectation.attrs {
        let offenders = offenders(&|span| !span.attr(key).is_some_and(|found| attr_equals(found, value)));
        problems.push(Problem::Attr { key, value, offenders });
    }
    if let Some(expected) = expectation.status {
        problems.push(Problem::Status { expected, offenders: offenders(&|span| span.status != expected) });
    }
    if let Some(expected) = expectation.kind {
        problems.push(Problem::Kind { expected, offenders: offenders(&|span| span.kind != expected) });
    }
    if let Some(selector) = &expectation.parent {
        let parents = select_positions(index, &selector.compounds);
        let mut is_parent = vec![false; index.len()];
        for &p in &parents {
            is_parent[p] = true;
        }
        let offenders =
            selected.iter().copied().filter(|&p| index.parent(p).is_none_or(|parent| !is_parent[parent])).collect();
        problems.push(Problem::Parent { selector, parents, offenders });
    }
    if let Some(bounds) = expectation.duration {
        problems.push(Problem::Duration { bounds, offenders: offenders(&|span| !bounds.contains(&span.duration())) });
    }
    if !expectation.events.is_empty() {
        let names = &expectation.events;
        let lacks = |span: &Span| names.iter().any(|name| !span.events.iter().any(|e| *e.name == **name));
        problems.push(Problem::Events { names, offenders: offenders(&lacks) });
    }
    problems.retain(Problem::fails);
    Verdict { selected, problems }
}

impl Problem<'_> {
    /// What the key asks for and what was found, as data; `selected` is how many spans were.
    fn unmet(&self, index: &TraceIndex, selected: usize) -> Unmet {
        let spans = |offenders: &[usize], value: &dyn Fn(&Span) -> String| -> Vec<Found> {
            let span = |p: usize| index.spans()[p];
            offenders.iter().map(|&p| Found { span: hex(&span(p).span_id), value: Some(value(span(p))) }).collect()
        };
        let (key, expected, found, spans) = match self {
            Problem::NoneSelected(count) | Problem::Count(count) => {
                ("count".to_string(), bounds(count, u64::to_string), Some(selected.to_string()), Vec::new())
            }
            Problem::Attr { key, value, offenders } => {
                let has = |span: &Span| span.attr(key).map_or_else(|| "absent".to_string(), quoted);
                (format!("attrs.{key}"), value.to_string(), None, spans(offenders, &has))
            }
            Problem::Status { expected, offenders } => {
                let has = |span: &Span| span.status.as_str().to_string();
                ("status".into(), expected.as_str().into(), None, spans(offenders, &has))
            }
            Problem::Kind { expected, offenders } => {
                let has = |span: &Span| span.kind.as_str().to_string();
                ("kind".into(), expected.as_str().into(), None, spans(offenders, &has))
            }
            Problem::Parent { selector, offenders, .. } => {
                // The parent's id, which the recorded trace describes; `none` for a root.
                let has = |span: &Span| span.parent_span_id.map_or_else(|| "none".to_string(), |id| hex(&id));
                ("parent".into(), selector.to_string(), None, spans(offenders, &has))
            }
            Problem::Duration { bounds: limits, offenders } => {
                let has = |span: &Span| duration::display(span.duration());
                ("duration".into(), bounds(limits, |d| duration::display(*d)), None, spans(offenders, &has))
            }
            Problem::Events { names, offenders } => {
                let has = |span: &Span| lacked_events(span, names);
                let wanted: Vec<String> = names.iter().map(|name| format!("{name:?}")).collect();
                ("events".into(), wanted.join(", "), None, spans(offenders, &has))
            }
        };
        Unmet { key, expected, found, spans }
    }

    fn fails(&self) -> bool {
        match self {
            Problem::NoneSelected(_) | Problem::Count(_) => true,
            Problem::Attr { offenders, .. }
            | Problem::Status { offenders, .. }
            | Problem::Kind { offenders, .. }
            | Problem::Parent { offenders, .. }
            | Problem::Duration { offenders, .. }
            | Problem::Events { offenders, .. } => !offenders.is_empty(),
        }
    }
}

impl Verdict<'_> {
    /// Why nothing was selected, with the nearest spans, when that is the only problem.
    fn explanation(&self, index: &TraceIndex, selector: &Selector) -> Option<Explanation> {
        matches!(self.problems[..], [Problem::NoneSelected(_)]).then(|| explain_empty(index, selector))
    }

    /// The failure message: the selector, a section per failed key (with `explanation` when
    /// nothing was selected), the trace tree.
    fn message(&self, index: &TraceIndex, selector: &Selector, explanation: Option<&Explanation>) -> String {
        let mut out = format!("select: {selector}\n");
        let marks = explanation.map_or(self.selected.as_slice(), |e| e.nearest.as_slice());
        for problem in &self.problems {
            match problem {
                Problem::NoneSelected(count) => {
                    let _ = writeln!(out, "count: expected {}, found none", span_count(count));
                    let own = select_positions(index, &selector.compounds);
                    if !own.is_empty() {
                        let _ = writeln!(
                            out,
                            "only clnrm's own spans match, which are not the system under test's: {}; to select \
                             them, add service.name=\"clnrm\" to the selector",
                            own.iter().map(|&p| format!("`{}`", index.spans()[p].name)).collect::<Vec<_>>().join(", ")
                        );
                    }
                    out.push_str(explanation.map_or("", |e| e.text.as_str()));
                }
                Problem::Count(count) => {
                    let found = self.selected.len();
                    let _ = writeln!(out, "count: expected {}, found {found}:", span_count(count));
                    list(&mut out, self.selected.iter().map(|&p| item(index, p)), LIST_MAX);
                }
                Problem::Attr { key, value, offenders } => {
                    self.section(&mut out, index, &format!("attrs: {key} = {value}"), offenders, |span| {
                        match span.attr(key) {
                            Some(found) => format!("{key} is {}", quoted(found)),
                            None => format!("{key} is absent"),
                        }
                    });
                }
                Problem::Status { expected, offenders } => {
                    let heading = format!("status: expected {}", expected.as_str());
                    self.section(&mut out, index, &heading, offenders, |span| match &*span.status_message {
                        "" => format!("status is {}", span.status.as_str()),
                        message => format!("status is {} ({message:?})", span.status.as_str()),
                    });
                }
                Problem::Kind { expected, offenders } => {
                    let heading = format!("kind: expected {}", expected.as_str());
                    self.section(&mut out, index, &heading, offenders, |span| {
                        format!("kind is {}", span.kind.as_str())
                    });
                }
                Problem::Parent { selector, parents, offenders } => {
                    let heading = format!("parent: expected {selector}");
                    self.section(&mut out, index, &heading, offenders, |span| parent_of(index, span));
                    if parents.is_empty() {
                        let _ = writeln!(out, "  {selector} selects no span in this trace");
                    }
                }
                Problem::Duration { bounds: limits, offenders } => {
                    let heading = format!("duration: expected {}", bounds(limits, |d| duration::display(*d)));
                    self.section(&mut out, index, &heading, offenders, |span| {
                        format!("took {}", duration::display(span.duration()))
                    });
                }
                Problem::Events { names, offenders } => {
                    let wanted: Vec<String> = names.iter().map(|name| format!("{name:?}")).collect();
                    let heading = format!("events: expected {}", wanted.join(", "));
                    self.section(&mut out, index, &heading, offenders, |span| lacked_events(span, names));
                }
            }
        }
        let marked: Vec<&Span> = marks.iter().map(|&p| index.spans()[p]).collect();
        let legend = match (marked.is_empty(), explanation.is_some()) {
            (true, _) => "",
            (false, true) => "; ▶ nearest",
            (false, false) => "; ▶ selected",
        };
        let _ = writeln!(out, "trace ({}{legend}):", count(index.len(), "span"));
        out.push_str(&render_tree(index, &marked, TREE_LINES));
        out
    }

    /// `heading, fails on 1 of 3 spans:` and a line per offending span with what it has instead.
    fn section(
        &self,
        out: &mut String,
        index: &TraceIndex,
        heading: &str,
        offenders: &[usize],
        found: impl Fn(&Span) -> String,
    ) {
        let _ = writeln!(out, "{heading}, fails on {}:", share(offenders.len(), self.selected.len()));
        let lines = offenders.iter().map(|&p| format!("{}: {}", item(index, p), found(index.spans()[p])));
        list(out, lines, LIST_MAX);
    }
}

/// What the parent of a span is, when it is not the expected one.
fn parent_of(index: &TraceIndex, span: &Span) -> String {
    let parent = index.position(span).and_then(|p| index.parent(p));
    match (parent, span.parent_span_id) {
        (Some(parent), _) => format!("parent is {}", label(index.spans()[parent])),
        (None, Some(id)) => format!("its parent {} was not collected", hex(&id)),
        (None, None) => "a root span, without parent".to_string(),
    }
}

/// `lacks "exception" (has "retry")`.
fn lacked_events(span: &Span, names: &[String]) -> String {
    let lacking: Vec<String> =
        names.iter().filter(|name| !span.events.iter().any(|e| *e.name == ***name)).map(|n| format!("{n:?}")).collect();
    let has: Vec<String> = span.events.iter().map(|e| format!("{:?}", e.name)).collect();
    if has.is_empty() {
        format!("lacks {} (has no events)", lacking.join(", "))
    } else {
        format!("lacks {} (has {})", lacking.join(", "), has.join(", "))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::expect::model::TraceExpectation;
    use crate::expect::selector::parse;
    use crate::schema::Spanned;
    use crate::telemetry::peers::Peers;
    use crate::telemetry::span::AttrValue;
    use crate::telemetry::span::tests::span;

    pub(in crate::expect) fn context() -> Context<'static> {
        static PEERS: std::sync::LazyLock<Peers> = std::sync::LazyLock::new(|| {
            let mut peers = Peers::new();
            peers.add_name("shop");
            peers.add_name("pay");
            peers
        });
        Context { peers: &PEERS }
    }

    pub(in crate::expect) fn selector(text: &str) -> Spanned<Selector> {
        Spanned::new(parse(text).expect("valid selector"), 0..text.len())
    }

    /// scenario `checkout` with steps `place order` and `check order`, the spans of shop and pay below.
    pub(in crate::expect) fn shop() -> Vec<Span> {
        vec![
            span(1, 0, "checkout", "clnrm", 0, 100).build(),
            span(2, 1, "place order", "clnrm", 1, 50).build(),
            span(3, 2, "POST /orders", "shop", 2, 40)
                .kind(SpanKind::Server)
                .status(SpanStatus::Ok, "")
                .str("http.route", "/orders")
                .attr("http.response.status_code", AttrValue::Int(200))
                .build(),
            span(4, 3, "reserve", "shop", 3, 10).build(),
            span(5, 3, "charge", "pay", 11, 30)
                .kind(SpanKind::Client)
                .status(SpanStatus::Error, "card declined")
                .str("server.address", "pay")
                .attr("amount", AttrValue::Int(30))
                .event("exception")
                .build(),
            span(6, 1, "check order", "clnrm", 60, 90).build(),
            span(7, 6, "GET /orders/1", "shop", 61, 70)
                .kind(SpanKind::Server)
                .attr("http.response.status_code", AttrValue::Int(404))
                .build(),
        ]
    }

    fn expect(select: &str) -> SpanExpectation {
        SpanExpectation::new(selector(select))
    }

    fn only(expectation: SpanExpectation) -> Expectations {
        Expectations { spans: vec![expectation], trace: None }
    }

    /// The failures of `expectations` over `spans`.
    pub(in crate::expect) fn failures(spans: &[Span], expectations: &Expectations) -> Vec<Failure> {
        let failed = results(spans, expectations, &context()).into_iter().filter(|c| !c.passed);
        failed
            .map(|mut c| Failure {
                expectation: c.expectation,
                unmet: c.unmet.remove(0),
                message: c.message.unwrap_or_default(),
            })
            .collect()
    }

    /// The message of the only failure.
    fn message(spans: &[Span], expectation: SpanExpectation) -> String {
        let failures = failures(spans, &only(expectation));
        assert_eq!(failures.len(), 1, "{failures:#?}");
        failures[0].message.clone()
    }

    const TREE: &str = "  checkout (clnrm, internal, 100.0ms)
    place order (clnrm, internal, 49.0ms)
      POST /orders (shop, server, 38.0ms, ok)
        reserve (shop, internal, 7.0ms)
        charge (pay, client, 19.0ms, error)
    check order (clnrm, internal, 30.0ms)
      GET /orders/1 (shop, server, 9.0ms)
";

    /// TREE with the spans at these lines marked.
    fn tree_marking(lines: &[usize]) -> String {
        TREE.lines()
            .enumerate()
            .map(|(i, line)| if lines.contains(&i) { format!("▶{}\n", &line[1..]) } else { format!("{line}\n") })
            .collect()
    }

    /// What the run record keeps: the spans each `[[expect.span]]` selected, and when it
    /// selected none the spans nearest to it, by id.
    #[test]
    fn results_hold_the_selected_and_the_nearest_spans_by_id() {
        let spans = shop();
        let expectations =
            Expectations { spans: vec![expect("span[name=\"charge\"]"), expect("span[name=\"chrage\"]")], trace: None };
        let results = results(&spans, &expectations, &context());
        let charge = hex(&spans[4].span_id);
        assert!(results[0].passed && results[0].nearest.is_empty(), "{:?}", results[0]);
        assert_eq!(results[0].selected, vec![charge.clone()]);
        assert!(!results[1].passed && results[1].selected.is_empty(), "{:?}", results[1]);
        assert!(results[1].nearest.contains(&charge), "{:?}", results[1]);
        assert!(results[1].message.as_deref().unwrap_or_default().contains("count: expected"), "{:?}", results[1]);
    }

    #[test]
    fn every_key_holding_passes() {
        let mut e = expect("span[name=\"charge\"]");
        e.count = Some(Bounds { min: Some(1), max: Some(1) });
        e.attrs = vec![("amount".into(), Value::Int(30)), ("server.address".into(), Value::Str("pay".into()))];
        e.status = Some(SpanStatus::Error);
        e.kind = Some(SpanKind::Client);
        e.parent = Some(selector("span[name=\"POST /orders\"]"));
        e.duration = Some(Bounds { min: Some(Duration::from_millis(19)), max: Some(Duration::from_millis(19)) });
        e.events = vec!["exception".into()];
        let mut under_step = expect("span[name=\"place order\"] span[kind=\"server\"]");
        under_step.count = Some(Bounds { min: Some(1), max: Some(1) });
        under_step.attrs = vec![("http.response.status_code".into(), Value::Float(200.0))];
        let mut step = expect("span[name=\"place order\" service.name=\"clnrm\"]");
        step.parent = Some(selector("span[name=\"checkout\"]"));
        let expectations = Expectations { spans: vec![e, under_step, step], trace: None };
        assert_eq!(failures(&shop(), &expectations), []);
        assert!(failures(&shop(), &Expectations::default()).is_empty());
    }

    #[test]
    fn nothing_selected_reports_the_count_nearest_spans_and_tree() {
        let mut e = expect("span[name=\"charge\" kind=\"server\"]");
        e.status = Some(SpanStatus::Ok);
        let failures = failures(&shop(), &only(e));
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].expectation, "[[expect.span]] #1 span[name=\"charge\" kind=\"server\"]");
        let expected = format!(
            "select: span[name=\"charge\" kind=\"server\"]
count: expected at least 1 span, found none
nearest spans, with the conditions each one fails:
  - charge (pay, client, 19.0ms, error) at +11.0ms: kind=\"server\" (kind is client)
trace (7 spans; ▶ nearest):
{}",
            tree_marking(&[4])
        );
        assert_eq!(failures[0].message, expected);
    }

    #[test]
    fn nothing_selected_without_candidates_lists_names_and_marks_nothing() {
        let text = message(&shop(), expect("span[name=\"refund\"]"));
        assert!(text.contains("no span comes close; the span names in this trace:\n  - \"checkout\" (clnrm) ×1\n"));
        assert!(text.ends_with(&format!("trace (7 spans):\n{TREE}")), "{text}");
    }

    #[test]
    fn count_mismatch_lists_the_selected_spans() {
        let mut e = expect("span[service.name=\"shop\"]");
        e.count = Some(Bounds { min: Some(1), max: Some(1) });
        let expected = format!(
            "select: span[service.name=\"shop\"]
count: expected exactly 1 span, found 3:
  - POST /orders (shop, server, 38.0ms, ok) at +2.0ms
  - reserve (shop, internal, 7.0ms) at +3.0ms
  - GET /orders/1 (shop, server, 9.0ms) at +61.0ms
trace (7 spans; ▶ selected):
{}",
            tree_marking(&[2, 3, 6])
        );
        assert_eq!(message(&shop(), e), expected);
        let mut e = expect("span[name=\"charge\"]");
        e.count = Some(Bounds { min: Some(2), max: Some(5) });
        assert!(message(&shop(), e).contains("count: expected between 2 and 5 spans, found 1:\n  - charge "));
    }

    #[test]
    fn zero_allowed_or_required() {
        let mut none = expect("span[name=\"refund\"]");
        none.count = Some(Bounds { min: None, max: Some(0) });
        none.status = Some(SpanStatus::Ok);
        assert!(failures(&shop(), &only(none)).is_empty());
        let mut forbidden = expect("span[name=\"charge\"]");
        forbidden.count = Some(Bounds { min: Some(0), max: Some(0) });
        assert!(message(&shop(), forbidden).contains("count: expected exactly 0 spans, found 1:\n"));
    }

    #[test]
    fn a_count_of_zero_on_a_key_no_span_has_is_vacuous() {
        let mut misspelt = expect("span[stauts=\"error\" amount]");
        misspelt.count = Some(Bounds { min: None, max: Some(0) });
        let mut present = expect("span[http.route=\"/nope\"]");
        present.count = Some(Bounds { min: Some(0), max: Some(0) });
        let default_count = expect("span[nmae=\"x\"]");
        let mut some_allowed = expect("span[order.idd]");
        some_allowed.count = Some(Bounds { min: Some(0), max: Some(3) });
        let expectations = Expectations { spans: vec![misspelt, present, default_count, some_allowed], trace: None };
        assert_eq!(
            vacuous(&shop(), &expectations),
            ["[[expect.span]] #1 span[stauts=\"error\" amount] holds only because no span in the trace has `stauts` \
              (did you mean `status`?): with a count of 0 it cannot fail; check the spelling"]
        );
    }

    /// What the run record keeps of a failed expectation: each key that does not hold, what it
    /// asks for, and each span it fails for with what that span has instead.
    #[test]
    fn results_say_what_was_expected_and_what_each_span_has_as_data() {
        let spans = shop();
        let id = |i: usize| hex(&spans[i].span_id);
        let found = |i: usize, value: &str| Found { span: id(i), value: Some(value.to_string()) };
        let mut all = expect("span[service.name=\"shop\"]");
        all.attrs = vec![("http.response.status_code".into(), Value::Int(200))];
        all.kind = Some(SpanKind::Server);
        all.status = Some(SpanStatus::Ok);
        all.parent = Some(selector("span[name=\"place order\"]"));
        all.duration = Some(Bounds { min: None, max: Some(Duration::from_millis(20)) });
        all.events = vec!["exception".into()];
        let mut count = expect("span[service.name=\"pay\"]");
        count.count = Some(Bounds { min: Some(2), max: None });
        let none = expect("span[name=\"refund\"]");
        let passing = expect("span[name=\"charge\"]");
        let expectations = Expectations { spans: vec![all, count, none, passing], trace: None };
        let results = results(&spans, &expectations, &context());
        let unmet = |key: &str, expected: &str, found: Option<&str>, spans: Vec<Found>| Unmet {
            key: key.into(),
            expected: expected.into(),
            found: found.map(String::from),
            spans,
        };
        assert_eq!(
            results[0].unmet,
            vec![
                unmet("attrs.http.response.status_code", "200", None, vec![found(3, "absent"), found(6, "404")]),
                unmet("status", "ok", None, vec![found(3, "unset"), found(6, "unset")]),
                unmet("kind", "server", None, vec![found(3, "internal")]),
                unmet("parent", "span[name=\"place order\"]", None, vec![found(3, &id(2)), found(6, &id(5))]),
                unmet("duration", "at most 20.0ms", None, vec![found(2, "38.0ms")]),
                unmet(
                    "events",
                    "\"exception\"",
                    None,
                    vec![
                        found(2, "lacks \"exception\" (has no events)"),
                        found(3, "lacks \"exception\" (has no events)"),
                        found(6, "lacks \"exception\" (has no events)")
                    ]
                ),
            ]
        );
        assert_eq!(results[1].unmet, vec![unmet("count", "at least 2", Some("1"), Vec::new())]);
        assert_eq!(results[2].unmet, vec![unmet("count", "at least 1", Some("0"), Vec::new())]);
        assert!(results[3].passed && results[3].unmet.is_empty(), "{:?}", results[3]);
        assert!(results.iter().take(3).all(|r| !r.passed && r.message.is_some()));
    }

    #[test]
    fn attrs_report_each_span_that_differs_or_lacks_the_key() {
        let mut e = expect("span[service.name=\"shop\"]");
        e.attrs = vec![("http.response.status_code".into(), Value::Int(200))];
        let expected = format!(
            "select: span[service.name=\"shop\"]
attrs: http.response.status_code = 200, fails on 2 of 3 spans:
  - reserve (shop, internal, 7.0ms) at +3.0ms: http.response.status_code is absent
  - GET /orders/1 (shop, server, 9.0ms) at +61.0ms: http.response.status_code is 404
trace (7 spans; ▶ selected):
{}",
            tree_marking(&[2, 3, 6])
        );
        assert_eq!(message(&shop(), e), expected);
        let mut e = expect("span[name=\"POST /orders\"]");
        e.attrs = vec![("http.route".into(), Value::Str("/order".into()))];
        assert!(message(&shop(), e).contains(": http.route is \"/orders\"\n"));
    }

    #[test]
    fn status_and_kind_report_what_each_span_has() {
        let mut e = expect("span[name=\"charge\"]");
        e.status = Some(SpanStatus::Ok);
        e.kind = Some(SpanKind::Server);
        let text = message(&shop(), e);
        assert!(
            text.contains(
                "status: expected ok, fails on 1 of 1 span:
  - charge (pay, client, 19.0ms, error) at +11.0ms: status is error (\"card declined\")
kind: expected server, fails on 1 of 1 span:
  - charge (pay, client, 19.0ms, error) at +11.0ms: kind is client
trace (7 spans; ▶ selected):
"
            ),
            "{text}"
        );
    }

    #[test]
    fn parent_reports_the_actual_parent() {
        let mut e = expect("span[service.name=\"shop\"]");
        e.parent = Some(selector("span[name=\"place order\"]"));
        let text = message(&shop(), e);
        assert!(
            text.contains(
                "parent: expected span[name=\"place order\"], fails on 2 of 3 spans:
  - reserve (shop, internal, 7.0ms) at +3.0ms: parent is POST /orders (shop, server, 38.0ms, ok)
  - GET /orders/1 (shop, server, 9.0ms) at +61.0ms: parent is check order (clnrm, internal, 30.0ms)
"
            ),
            "{text}"
        );
        let mut spans = shop();
        spans.push(span(8, 0, "root", "x", 0, 1).build());
        spans.push(span(9, 99, "orphan", "x", 0, 1).build());
        let mut e = expect("span[service.name=\"x\"]");
        e.parent = Some(selector("span[name=\"nope\"]"));
        let text = message(&spans, e);
        assert!(text.contains(": a root span, without parent\n"), "{text}");
        assert!(text.contains(": its parent 0000000000000063 was not collected\n"), "{text}");
        assert!(text.contains("\n  span[name=\"nope\"] selects no span in this trace\n"), "{text}");
    }

    #[test]
    fn duration_and_events() {
        let mut e = expect("span[service.name=\"shop\"]");
        e.duration = Some(Bounds { min: Some(Duration::from_millis(8)), max: Some(Duration::from_millis(20)) });
        e.events = vec!["exception".into(), "retry".into()];
        let mut spans = shop();
        spans[3].events.push(crate::telemetry::span::Event {
            name: "retry".into(),
            time_unix_nano: 0,
            attributes: vec![],
        });
        let text = message(&spans, e);
        assert!(
            text.contains(
                "duration: expected between 8.0ms and 20.0ms, fails on 2 of 3 spans:
  - POST /orders (shop, server, 38.0ms, ok) at +2.0ms: took 38.0ms
  - reserve (shop, internal, 7.0ms) at +3.0ms: took 7.0ms
events: expected \"exception\", \"retry\", fails on 3 of 3 spans:
  - POST /orders (shop, server, 38.0ms, ok) at +2.0ms: lacks \"exception\", \"retry\" (has no events)
  - reserve (shop, internal, 7.0ms) at +3.0ms: lacks \"exception\" (has \"retry\")
  - GET /orders/1 (shop, server, 9.0ms) at +61.0ms: lacks \"exception\", \"retry\" (has no events)
"
            ),
            "{text}"
        );
    }

    #[test]
    fn clnrms_own_spans_do_not_satisfy_an_expectation_unless_asked_for() {
        let trace = [span(1, 0, "pay", "clnrm", 0, 20).build(), span(2, 1, "charge", "clnrm", 1, 19).build()];
        let text = message(&trace, expect("span[name=\"charge\"]"));
        assert!(text.contains("count: expected at least 1 span, found none\n"), "{text}");
        assert!(
            text.contains("only clnrm's own spans match, which are not the system under test's: `charge`"),
            "{text}"
        );
        let asked = Expectations { spans: vec![expect("span[name=\"charge\" service.name=\"clnrm\"]")], trace: None };
        assert!(failures(&trace, &asked).is_empty());
        // As ancestors in a chain they serve as before.
        let mut app = trace.to_vec();
        app.push(span(3, 2, "POST /pay", "shop", 2, 3).build());
        let below = Expectations { spans: vec![expect("span[name=\"charge\"] span")], trace: None };
        assert!(failures(&app, &below).is_empty());
    }

    #[test]
    fn failures_are_numbered_by_position_in_the_file() {
        let good = expect("span[name=\"charge\"]");
        let bad = expect("span[name=\"refund\"]");
        let expectations = Expectations { spans: vec![good.clone(), bad, good], trace: None };
        let failures = failures(&shop(), &expectations);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].expectation, "[[expect.span]] #2 span[name=\"refund\"]");
    }

    #[test]
    fn a_step_that_only_echoes_ok_fails_every_app_span_expectation() {
        let echo = [span(1, 0, "smoke", "clnrm", 0, 20).build(), span(2, 1, "echo ok", "clnrm", 1, 19).build()];
        let app_selectors = [
            "span[service.name=\"shop\"]",
            "span[name=\"POST /orders\"]",
            "span[kind=\"server\"]",
            "span[http.route]",
            "span[name=\"echo ok\"] span",
            "span[status=\"ok\"]",
        ];
        for select in app_selectors {
            let text = message(&echo, expect(select));
            assert!(text.contains("count: expected at least 1 span, found none\n"), "{select}: {text}");
            assert!(text.contains("note: every span in this trace is clnrm's own (service \"clnrm\")"), "{text}");
        }
        let trace = TraceExpectation { spans: Some(Bounds { min: Some(1), max: None }), ..Default::default() };
        let failures = failures(&echo, &Expectations { spans: vec![], trace: Some(trace) });
        assert_eq!(failures.len(), 1);
        assert!(failures[0].message.starts_with(
            "expected at least 1 span from the system under test, found 0 (clnrm's own 2 spans not counted)\n"
        ));
    }
}
