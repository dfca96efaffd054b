//! Why a selector selects nothing, and which spans the user most likely meant: the part of a
//! failure message that turns "no span matched" into something to fix.
//!
//! The chain is followed to the first compound that leaves nothing, and the reason is told apart:
//! - its conditions match no span anywhere: the nearest spans are listed with the conditions each
//!   one fails and what it has instead. Nearest means, in turn: spans that pass every `name`
//!   condition but fail others (fewest failures first); spans whose name is a small edit away from
//!   a `name="…"`; otherwise just the span names the trace holds;
//! - spans match its conditions but none lies below the previous compound's spans: those spans are
//!   listed with the path above them;
//! - `:nth_child(n)` asks for more spans than match: those that do are listed.

use std::collections::HashMap;
use std::fmt::Write;

use crate::expect::describe::{item, list, own_only_note};
use crate::expect::matcher::{Field, condition_holds, lookup, select_positions};
use crate::expect::selector::{Compound, Condition, Selector, Test, Value};
use crate::output::count;
use crate::suggest::{close_matches, did_you_mean};
use crate::telemetry::index::TraceIndex;
use crate::telemetry::span::{AttrValue, Span};

/// How many nearest spans an explanation lists.
const NEAREST_MAX: usize = 5;

/// How many distinct span names an explanation lists when no span comes close.
const NAMES_MAX: usize = 20;

/// Lines explaining an empty selection, and the spans they point at (to mark in the trace tree).
#[derive(Debug, Default)]
pub(super) struct Explanation {
    /// Newline-terminated lines.
    pub text: String,
    /// Positions of the spans listed as candidates.
    pub nearest: Vec<usize>,
}

/// Explains why `selector` selects no span of `index`.
pub(super) fn explain_empty(index: &TraceIndex, selector: &Selector) -> Explanation {
    let mut out = Explanation::default();
    if index.is_empty() {
        out.text.push_str("the trace holds no spans at all, not even clnrm's own\n");
        return out;
    }
    let compounds = &selector.compounds;
    let mut above = Vec::new();
    for (k, compound) in compounds.iter().enumerate() {
        let chain = select_positions(index, &compounds[..=k]);
        if !chain.is_empty() {
            above = chain;
            continue;
        }
        let bare = Compound { conditions: compound.conditions.clone(), pseudo: None };
        let anywhere = select_positions(index, std::slice::from_ref(&bare));
        let placed = if k == 0 {
            anywhere.clone()
        } else {
            let below = index.below(&above);
            anywhere.iter().copied().filter(|&p| below[p]).collect()
        };
        if anywhere.is_empty() {
            nearest(index, compound, &mut out);
        } else if placed.is_empty() {
            let prefix = Selector { compounds: compounds[..k].to_vec() };
            let _ = writeln!(
                out.text,
                "{bare} matches {}, none below a span selected by {prefix}:",
                count(anywhere.len(), "span")
            );
            candidates(index, &anywhere, &mut out, |p| path(index, p));
        } else if let Some(pseudo) = compound.pseudo {
            let _ = writeln!(
                out.text,
                "{bare} matches only {} there, so {pseudo} picks none:",
                count(placed.len(), "span")
            );
            candidates(index, &placed, &mut out, |_| String::new());
        }
        break;
    }
    if let Some(note) = own_only_note(index) {
        let _ = writeln!(out.text, "{note}");
    }
    out
}

/// Lists the spans at `positions` (up to [`NEAREST_MAX`]), each followed by `detail` when not
/// empty, and records them as the explanation's nearest spans.
fn candidates(index: &TraceIndex, positions: &[usize], out: &mut Explanation, detail: impl Fn(usize) -> String) {
    let shown = &positions[..positions.len().min(NEAREST_MAX)];
    let lines = positions.iter().map(|&p| match detail(p) {
        text if text.is_empty() => item(index, p),
        text => format!("{}: {text}", item(index, p)),
    });
    list(&mut out.text, lines, NEAREST_MAX);
    out.nearest.extend_from_slice(shown);
}

/// `below scenario › step one › checkout`, or `a root span`.
fn path(index: &TraceIndex, position: usize) -> String {
    let mut names: Vec<&str> = index.ancestry(position).skip(1).map(|p| &*index.spans()[p].name).collect();
    if names.is_empty() {
        return "a root span".to_string();
    }
    names.reverse();
    format!("below {}", names.join(" › "))
}

/// The nearest spans to a compound whose conditions no span passes (see the module comment).
fn nearest(index: &TraceIndex, compound: &Compound, out: &mut Explanation) {
    let conditions = &compound.conditions;
    let failed =
        |p: usize| -> Vec<&Condition> { conditions.iter().filter(|c| !condition_holds(index.spans()[p], c)).collect() };
    let has_name = conditions.iter().any(|c| c.key == "name");
    let mut near: Vec<(usize, Vec<&Condition>)> = (0..index.len())
        .map(|p| (p, failed(p)))
        .filter(|(_, failures)| {
            let names_pass = failures.iter().all(|c| c.key != "name");
            names_pass && (has_name || failures.len() < conditions.len())
        })
        .collect();
    if near.is_empty() {
        near = similar_names(index, conditions, |p| failed(p).len()).into_iter().map(|p| (p, failed(p))).collect();
    }
    if near.is_empty() {
        span_names(index, out);
        return;
    }
    near.sort_by_key(|(p, failures)| (failures.len(), *p));
    out.text.push_str("nearest spans, with the conditions each one fails:\n");
    let lines = near.iter().map(|(p, failures)| {
        let span = index.spans()[*p];
        let reasons: Vec<String> = failures.iter().map(|c| format!("{c} ({})", found(span, &c.key))).collect();
        format!("{}: {}", item(index, *p), reasons.join(", "))
    });
    list(&mut out.text, lines, NEAREST_MAX);
    out.nearest.extend(near.iter().take(NEAREST_MAX).map(|(p, _)| *p));
}

/// For each distinct name a small edit away from a `name="…"` of the conditions (closest first),
/// the span of that name failing the fewest conditions: of a client and a server span both named
/// `POST /orders`, the one whose kind the selector asks for.
fn similar_names(index: &TraceIndex, conditions: &[Condition], failures: impl Fn(usize) -> usize) -> Vec<usize> {
    let first_of = first_by_name(index);
    let names: Vec<&str> = first_of.iter().map(|&(name, _, _)| name).collect();
    conditions
        .iter()
        .filter_map(|c| match (&*c.key, &c.test) {
            ("name", Test::Eq(Value::Str(target))) => Some(target),
            _ => None,
        })
        .flat_map(|target| close_matches(target, names.iter().copied()))
        .filter_map(|name| (0..index.len()).filter(|&p| &*index.spans()[p].name == name).min_by_key(|&p| failures(p)))
        .take(NEAREST_MAX)
        .collect()
}

/// Each distinct span name with its first position and how many spans carry it, in start order.
fn first_by_name<'a>(index: &TraceIndex<'a>) -> Vec<(&'a str, usize, usize)> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut names: Vec<(&str, usize, usize)> = Vec::new();
    for (p, span) in index.spans().iter().enumerate() {
        match seen.get(&*span.name) {
            Some(&i) => names[i].2 += 1,
            None => {
                seen.insert(&span.name, names.len());
                names.push((&span.name, p, 1));
            }
        }
    }
    names
}

/// The fallback when no span comes close: the names the trace holds, with the service and count.
fn span_names(index: &TraceIndex, out: &mut Explanation) {
    out.text.push_str("no span comes close; the span names in this trace:\n");
    let lines = first_by_name(index).into_iter().map(|(name, p, n)| {
        let service = index.spans()[p].service_name();
        format!("{name:?} ({service}) ×{n}")
    });
    list(&mut out.text, lines, NAMES_MAX);
}

/// What a span has under `key`, for a failed condition: `kind is client`, `http.route is absent`.
/// For an absent attribute, names a similar one the span has.
fn found(span: &Span, key: &str) -> String {
    match lookup(span, key) {
        Some(Field::Text(text)) if key == "name" => format!("{key} is {text:?}"),
        Some(Field::Text(text)) => format!("{key} is {text}"),
        Some(Field::Value(value)) => format!("{key} is {}", quoted(value)),
        None => {
            let keys = span.attributes.iter().chain(&span.resource.attributes).map(|(k, _)| &**k);
            match did_you_mean(key, keys) {
                Some(similar) => format!("{key} is absent; the span has {similar}"),
                None => format!("{key} is absent"),
            }
        }
    }
}

/// A value as messages show it: strings quoted, anything else as its text form.
pub(super) fn quoted(value: &AttrValue) -> String {
    match value {
        AttrValue::Str(text) => format!("{text:?}"),
        other => other.text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::selector::parse;
    use crate::telemetry::span::SpanKind;
    use crate::telemetry::span::tests::span;

    fn shop() -> Vec<Span> {
        vec![
            span(1, 0, "scenario", "clnrm", 0, 100).build(),
            span(2, 1, "step one", "clnrm", 1, 50).build(),
            span(3, 2, "checkout", "shop", 2, 40).kind(SpanKind::Server).str("http.route", "/checkout").build(),
            span(4, 3, "charge", "pay", 11, 30).kind(SpanKind::Client).attr("amount", AttrValue::Int(5)).build(),
            span(5, 1, "step two", "clnrm", 60, 90).build(),
            span(6, 5, "charge", "pay", 61, 70).kind(SpanKind::Client).attr("amount", AttrValue::Int(7)).build(),
        ]
    }

    fn explain(spans: &[Span], selector: &str) -> Explanation {
        let index = TraceIndex::new(spans);
        let selector = parse(selector).expect("valid");
        assert!(select_positions(&index, &selector.compounds).is_empty(), "{selector} selects something");
        explain_empty(&index, &selector)
    }

    #[test]
    fn same_name_lists_the_failed_conditions_fewest_first() {
        let e = explain(&shop(), "span[name=\"charge\" kind=\"server\" amount=7]");
        assert_eq!(
            e.text,
            "nearest spans, with the conditions each one fails:
  - charge (pay, client, 9.0ms) at +61.0ms: kind=\"server\" (kind is client)
  - charge (pay, client, 19.0ms) at +11.0ms: kind=\"server\" (kind is client), amount=7 (amount is 5)
"
        );
        assert_eq!(e.nearest, [5, 3]);
    }

    #[test]
    fn absent_attributes_suggest_a_similar_key() {
        let e = explain(&shop(), "span[name=\"checkout\" http.rout=\"/checkout\"]");
        assert!(
            e.text.contains("http.rout=\"/checkout\" (http.rout is absent; the span has http.route)"),
            "{}",
            e.text
        );
    }

    #[test]
    fn without_a_name_condition_spans_passing_some_conditions_are_nearest() {
        let e = explain(&shop(), "span[kind=\"client\" amount>10]");
        assert!(e.text.contains("charge (pay, client, 19.0ms) at +11.0ms: amount>10 (amount is 5)"), "{}", e.text);
        assert_eq!(e.nearest.len(), 2);
    }

    #[test]
    fn of_spans_sharing_a_similar_name_the_one_failing_least_is_nearest() {
        // Both `charge` spans are clients; the second has the amount asked for.
        let e = explain(&shop(), "span[name=\"charg\" amount=7]");
        assert_eq!(
            e.text,
            "nearest spans, with the conditions each one fails:
  - charge (pay, client, 9.0ms) at +61.0ms: name=\"charg\" (name is \"charge\")
"
        );
        assert_eq!(e.nearest, [5]);
    }

    #[test]
    fn misspelt_names_find_similar_ones() {
        let e = explain(&shop(), "span[name=\"chekout\" kind=\"client\"]");
        assert_eq!(
            e.text,
            "nearest spans, with the conditions each one fails:
  - checkout (shop, server, 38.0ms) at +2.0ms: name=\"chekout\" (name is \"checkout\"), kind=\"client\" (kind is server)
"
        );
        assert_eq!(e.nearest, [2]);
    }

    #[test]
    fn otherwise_lists_the_span_names() {
        let e = explain(&shop(), "span[name=\"refund\"]");
        assert_eq!(
            e.text,
            "no span comes close; the span names in this trace:
  - \"scenario\" (clnrm) ×1
  - \"step one\" (clnrm) ×1
  - \"checkout\" (shop) ×1
  - \"charge\" (pay) ×2
  - \"step two\" (clnrm) ×1
"
        );
        assert!(e.nearest.is_empty());
        let e = explain(&shop(), "span[db.system]");
        assert!(e.text.starts_with("no span comes close"), "{}", e.text);
    }

    #[test]
    fn chains_say_which_link_breaks() {
        let e = explain(&shop(), "span[name=\"step two\"] span[name=\"checkout\"]");
        assert_eq!(
            e.text,
            "span[name=\"checkout\"] matches 1 span, none below a span selected by span[name=\"step two\"]:
  - checkout (shop, server, 38.0ms) at +2.0ms: below scenario › step one
"
        );
        assert_eq!(e.nearest, [2]);
        let e = explain(&shop(), "span[name=\"step two\"] span[name=\"charge\"] span[name=\"x\"]");
        assert!(e.text.starts_with("no span comes close"), "{}", e.text);
        let e = explain(&shop(), "span[name=\"scenario\"] span[name=\"chrage\"]");
        assert!(e.text.contains("name=\"chrage\" (name is \"charge\")"), "{}", e.text);
    }

    #[test]
    fn nth_child_beyond_the_matches() {
        let e = explain(&shop(), "span[name=\"scenario\"] span[name=\"charge\"]:nth_child(3)");
        assert_eq!(
            e.text,
            "span[name=\"charge\"] matches only 2 spans there, so :nth_child(3) picks none:
  - charge (pay, client, 19.0ms) at +11.0ms
  - charge (pay, client, 9.0ms) at +61.0ms
"
        );
    }

    #[test]
    fn only_clnrm_spans_and_empty_traces_say_so() {
        let own = [span(1, 0, "scenario", "clnrm", 0, 10).build(), span(2, 1, "echo ok", "clnrm", 1, 2).build()];
        let e = explain(&own, "span[service.name=\"shop\"]");
        assert!(e.text.contains("note: every span in this trace is clnrm's own"), "{}", e.text);
        let e = explain(&[], "span");
        assert_eq!(e.text, "the trace holds no spans at all, not even clnrm's own\n");
    }
}
