//! Evaluating selectors over the spans of one trace.
//!
//! A trace is indexed once ([`TraceIndex`]) and then any number of selectors run over it. Each
//! compound of a selector is one pass over the spans in start-time order (over only the spans of
//! that name when it says `name="…"`); the descendant step ("below a span the previous compound
//! selected") is a single parents-first pass that carries one flag per span, so a chain of any
//! length costs O(n) per compound and never re-walks ancestors. Conditions are resolved once per
//! compound; testing a span allocates nothing.
//!
//! What a condition `key op value` means:
//! - `name`, `kind` (lowercase: `server`, …) and `status` (`ok`, `error`, `unset`) read the span
//!   itself; any other key reads the span's attribute, else its resource's, so `service.name` is
//!   the resource's.
//! - Every test needs the key present: `!=`, `!~` and the comparisons are false for a span that
//!   lacks the key, like `=`. A missing attribute is not evidence of a different value.
//! - `=` and `!=` with a string compare it to the text form of the value (`AttrValue::text`), so
//!   `"200"` equals the integer 200. With a number they compare numerically and only numbers
//!   (`200` equals `200.0`, but not the string `"200"`); with `true`/`false`, only booleans.
//! - `=~`, `!~` and `contains` test the text form; `<`, `<=`, `>`, `>=` need a numeric value.
//! - `:first`, `:last` and `:nth_child(n)` keep one span, by start time, of those the compound
//!   selects at its place in the chain (after the descendant step).

use std::fmt::Write;

use crate::expect::selector::{Compound, Condition, Pseudo, Selector, Test, Value};
use crate::telemetry::index::TraceIndex;
use crate::telemetry::own::SERVICE_NAME;
use crate::telemetry::span::{AttrValue, Span};

/// The spans `selector` selects in the trace, in start-time order.
pub fn select<'a>(index: &TraceIndex<'a>, selector: &Selector) -> Vec<&'a Span> {
    select_positions(index, &selector.compounds).into_iter().map(|p| index.spans()[p]).collect()
}

/// Positions selected by a chain of compounds, in start-time order, clnrm's own spans included.
/// An empty chain selects nothing.
pub fn select_positions(index: &TraceIndex, compounds: &[Compound]) -> Vec<usize> {
    select_among(index, compounds, true)
}

/// The spans a `[[expect.span]]` is about, selected by a chain of compounds: those of the system
/// under test. clnrm's own spans (a step named `charge` for a selector meant for the system's
/// `charge`) would let it hold with the system doing nothing; they serve only as ancestors in
/// the chain, and as subjects when the last compound asks for them by `service.name="clnrm"`.
pub(super) fn select_subjects(index: &TraceIndex, compounds: &[Compound]) -> Vec<usize> {
    let asks_for_own = compounds.last().is_some_and(|last| {
        last.conditions
            .iter()
            .any(|c| &*c.key == "service.name" && matches!(&c.test, Test::Eq(Value::Str(s)) if s == SERVICE_NAME))
    });
    select_among(index, compounds, asks_for_own)
}

fn select_among(index: &TraceIndex, compounds: &[Compound], own_subjects: bool) -> Vec<usize> {
    let mut scratch = String::new();
    let mut selected = Vec::new();
    for (i, compound) in compounds.iter().enumerate() {
        let checks = Check::compile(compound);
        let below = (i > 0).then(|| index.below(&selected));
        let subject = i + 1 == compounds.len();
        let matches = |p: usize| {
            below.as_ref().is_none_or(|below| below[p])
                && (own_subjects || !subject || !index.spans()[p].is_own())
                && checks.iter().all(|c| c.holds(index.spans()[p], &mut scratch))
        };
        selected = match exact_name(compound) {
            Some(name) => pick(index.named(name).iter().copied(), matches, compound.pseudo),
            None => pick(0..index.len(), matches, compound.pseudo),
        };
        if selected.is_empty() {
            break;
        }
    }
    selected
}

/// The name a compound requires with `name="…"`, if any.
fn exact_name(compound: &Compound) -> Option<&str> {
    compound.conditions.iter().find_map(|c| match (&*c.key, &c.test) {
        ("name", Test::Eq(Value::Str(name))) => Some(name.as_str()),
        _ => None,
    })
}

/// The candidates (positions in start order) that `matches`, narrowed by the pseudo-class. Tests
/// only as many candidates as the pseudo-class needs: `:last` searches from the end.
fn pick(
    mut candidates: impl DoubleEndedIterator<Item = usize>,
    mut matches: impl FnMut(usize) -> bool,
    pseudo: Option<Pseudo>,
) -> Vec<usize> {
    let kept = match pseudo {
        None => return candidates.filter(|&p| matches(p)).collect(),
        Some(Pseudo::First) => candidates.find(|&p| matches(p)),
        Some(Pseudo::Last) => candidates.rfind(|&p| matches(p)),
        Some(Pseudo::NthChild(n)) => n.checked_sub(1).and_then(|i| candidates.filter(|&p| matches(p)).nth(i)),
    };
    kept.into_iter().collect()
}

/// Whether one condition holds for a span. For explanations; selection compiles a compound once.
pub(super) fn condition_holds(span: &Span, condition: &Condition) -> bool {
    Check::new(condition).holds(span, &mut String::new())
}

/// Whether an attribute value equals a literal, as `=` compares them.
pub(super) fn attr_equals(found: &AttrValue, expected: &Value) -> bool {
    equals(&Field::Value(found), expected, &mut String::new())
}

/// A condition with its key resolved, so the per-span work is only the lookup and the test.
struct Check<'s> {
    key: Key<'s>,
    test: &'s Test,
}

/// What a condition's key reads.
#[derive(Clone, Copy)]
enum Key<'s> {
    Name,
    Kind,
    Status,
    Attribute(&'s str),
}

impl<'s> Check<'s> {
    fn new(condition: &'s Condition) -> Self {
        Check { key: Key::of(&condition.key), test: &condition.test }
    }

    /// A compound's conditions, those on the span's own fields first: they are the cheapest to
    /// read and `name` usually rules out most spans.
    fn compile(compound: &'s Compound) -> Vec<Self> {
        let mut checks: Vec<Check> = compound.conditions.iter().map(Check::new).collect();
        checks.sort_by_key(|check| matches!(check.key, Key::Attribute(_)));
        checks
    }

    fn holds(&self, span: &Span, scratch: &mut String) -> bool {
        read(span, self.key).is_some_and(|found| passes(self.test, &found, scratch))
    }
}

impl<'s> Key<'s> {
    fn of(key: &'s str) -> Self {
        match key {
            "name" => Key::Name,
            "kind" => Key::Kind,
            "status" => Key::Status,
            other => Key::Attribute(other),
        }
    }
}

/// What a key reads on a span: one of its own fields (as text) or an attribute value.
pub(super) enum Field<'s> {
    Text(&'s str),
    Value(&'s AttrValue),
}

/// The value `key` reads on `span`, as a selector condition sees it; `None` when absent.
pub(super) fn lookup<'s>(span: &'s Span, key: &str) -> Option<Field<'s>> {
    read(span, Key::of(key))
}

fn read<'s>(span: &'s Span, key: Key) -> Option<Field<'s>> {
    match key {
        Key::Name => Some(Field::Text(&span.name)),
        Key::Kind => Some(Field::Text(span.kind.as_str())),
        Key::Status => Some(Field::Text(span.status.as_str())),
        Key::Attribute(key) => span.attr(key).map(Field::Value),
    }
}

impl Field<'_> {
    /// The text form; non-string values are written into `scratch`, which is reused across spans.
    fn text<'b>(&'b self, scratch: &'b mut String) -> &'b str {
        match self {
            Field::Text(text) => text,
            Field::Value(AttrValue::Str(text)) => text,
            Field::Value(value) => {
                scratch.clear();
                // Writing into a String cannot fail.
                let _ = write!(scratch, "{value}");
                scratch
            }
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Field::Text(_) => None,
            Field::Value(value) => value.number(),
        }
    }
}

fn passes(test: &Test, found: &Field, scratch: &mut String) -> bool {
    match test {
        Test::Exists => true,
        Test::Eq(value) => equals(found, value, scratch),
        Test::Ne(value) => !equals(found, value, scratch),
        Test::Matches(regex) => regex.is_match(found.text(scratch)),
        Test::NotMatches(regex) => !regex.is_match(found.text(scratch)),
        Test::Contains(text) => found.text(scratch).contains(text.as_str()),
        Test::Lt(limit) => found.number().is_some_and(|n| n < *limit),
        Test::Le(limit) => found.number().is_some_and(|n| n <= *limit),
        Test::Gt(limit) => found.number().is_some_and(|n| n > *limit),
        Test::Ge(limit) => found.number().is_some_and(|n| n >= *limit),
    }
}

fn equals(found: &Field, expected: &Value, scratch: &mut String) -> bool {
    match (expected, found) {
        (Value::Str(text), _) => found.text(scratch) == text,
        // Exact for integers beyond f64's precision.
        (Value::Int(int), Field::Value(AttrValue::Int(found))) => int == found,
        (Value::Int(int), _) => found.number() == Some(*int as f64),
        (Value::Float(float), _) => found.number() == Some(*float),
        (Value::Bool(bool), Field::Value(AttrValue::Bool(found))) => bool == found,
        (Value::Bool(_), _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::selector::parse;
    use crate::telemetry::index::tests::{malformed, shop};
    use crate::telemetry::span::tests::span;
    use crate::telemetry::span::{SpanKind, SpanStatus};

    /// Names of the spans `selector` selects.
    fn names(spans: &[Span], selector: &str) -> Vec<String> {
        let index = TraceIndex::new(spans);
        let selector = parse(selector).expect("valid selector");
        select(&index, &selector).iter().map(|s| s.name.to_string()).collect()
    }

    /// One span carrying every kind of attribute value.
    fn typed() -> Vec<Span> {
        vec![
            span(1, 0, "typed", "shop", 0, 10)
                .kind(SpanKind::Server)
                .status(SpanStatus::Error, "boom")
                .str("s", "POST /orders")
                .str("digits", "200")
                .attr("i", AttrValue::Int(200))
                .attr("f", AttrValue::Float(200.0))
                .attr("half", AttrValue::Float(0.5))
                .attr("b", AttrValue::Bool(true))
                .attr("arr", AttrValue::Array(Box::new([AttrValue::Int(1), AttrValue::Int(2)])))
                .attr("big", AttrValue::Int(i64::MAX))
                .build(),
        ]
    }

    /// Asserts `typed` is selected by each of `yes` and by none of `no`.
    fn assert_selects(yes: &[&str], no: &[&str]) {
        let spans = typed();
        for selector in yes {
            assert_eq!(names(&spans, selector), ["typed"], "should select: {selector}");
        }
        for selector in no {
            assert!(names(&spans, selector).is_empty(), "should not select: {selector}");
        }
    }

    #[test]
    fn span_fields_name_kind_status() {
        assert_selects(
            &[
                "span[name=\"typed\"]",
                "span[kind=\"server\"]",
                "span[status=\"error\"]",
                "span[name!=\"x\" kind!=\"client\" status!=\"ok\"]",
                "span[name=~\"^ty\"]",
                "span[name contains \"ype\"]",
                "span[name]",
            ],
            &["span[name=\"Typed\"]", "span[kind=\"client\"]", "span[status=\"ok\"]", "span[name=1]", "span[name<1]"],
        );
    }

    #[test]
    fn resource_attributes_and_presence() {
        assert_selects(
            &["span[service.name=\"shop\"]", "span[s]", "span[b]", "span[s i f]"],
            &["span[service.name=\"other\"]", "span[missing]", "span[s missing]"],
        );
    }

    #[test]
    fn equality_of_strings_numbers_and_booleans() {
        assert_selects(
            &[
                "span[s=\"POST /orders\"]",
                "span[i=200]",
                "span[i=200.0]",
                "span[f=200]",
                "span[f=200.0]",
                "span[half=0.5]",
                "span[i=\"200\"]",
                "span[f=\"200\"]",
                "span[digits=\"200\"]",
                "span[b=true]",
                "span[b=\"true\"]",
                "span[arr=\"[1, 2]\"]",
                "span[big=9223372036854775807]",
            ],
            &[
                "span[s=\"post /orders\"]",
                "span[digits=200]",
                "span[i=201]",
                "span[big=9223372036854775806]",
                "span[half=0.25]",
                "span[b=false]",
                "span[b=1]",
                "span[i=true]",
                "span[s=true]",
            ],
        );
    }

    #[test]
    fn inequality_needs_the_key() {
        assert_selects(
            &["span[s!=\"x\"]", "span[i!=201]", "span[digits!=200]", "span[b!=false]", "span[i!=\"201\"]"],
            &["span[missing!=\"x\"]", "span[missing!=1]", "span[i!=200]", "span[f!=200]", "span[b!=true]"],
        );
    }

    #[test]
    fn regexes_and_contains_read_the_text_form() {
        assert_selects(
            &[
                r#"span[s=~"^POST /ord"]"#,
                r#"span[i=~"^2\d\d$"]"#,
                r#"span[b=~"tr"]"#,
                r#"span[s!~"^GET"]"#,
                r#"span[i!~"^5"]"#,
                "span[s contains \"/orders\"]",
                "span[i contains \"20\"]",
                "span[arr contains \"1, 2\"]",
            ],
            &[
                r#"span[s=~"^GET"]"#,
                r#"span[missing=~"."]"#,
                r#"span[missing!~"x"]"#,
                r#"span[s!~"POST"]"#,
                "span[s contains \"GET\"]",
                "span[missing contains \"\"]",
            ],
        );
    }

    #[test]
    fn comparisons_need_numbers() {
        assert_selects(
            &["span[i>199]", "span[i>=200]", "span[i<=200]", "span[i<201]", "span[f>=200]", "span[half<1]"],
            &["span[i>200]", "span[i<200]", "span[digits>1]", "span[b>0]", "span[missing<1]", "span[s>=0]"],
        );
    }

    #[test]
    fn selects_in_start_order() {
        assert_eq!(names(&shop(), "span[name=\"charge\"]").len(), 3);
        assert_eq!(names(&shop(), "span").first().map(String::as_str), Some("scenario"));
        assert_eq!(names(&shop(), "span").last().map(String::as_str), Some("charge"));
    }

    #[test]
    fn descendant_chains_follow_ancestors_at_any_depth() {
        let spans = shop();
        assert_eq!(names(&spans, "span[name=\"step one\"] span[name=\"charge\"]"), ["charge"]);
        assert_eq!(names(&spans, "span[name=\"scenario\"] span[name=\"charge\"]").len(), 3);
        assert_eq!(names(&spans, "span[name=\"step one\"] span[name=\"checkout\"] span[name=\"db\"]"), ["db"]);
        assert_eq!(names(&spans, "span[name=\"scenario\"] span[name=\"step two\"] span[kind=\"client\"]").len(), 2);
        assert!(names(&spans, "span[name=\"step two\"] span[name=\"checkout\"] span[name=\"db\"]").is_empty());
        assert!(names(&spans, "span[name=\"charge\"] span[name=\"checkout\"]").is_empty());
        // A span is not its own descendant.
        assert!(names(&spans, "span[name=\"charge\"] span[name=\"charge\"]").is_empty());
        assert!(names(&spans, "span[name=\"nothing\"] span").is_empty());
    }

    #[test]
    fn pseudo_classes_pick_by_start_time_after_the_descendant_step() {
        let spans = shop();
        let starts = |selector: &str| -> Vec<u64> {
            let index = TraceIndex::new(&spans);
            let selector = parse(selector).expect("valid");
            select(&index, &selector).iter().map(|s| s.start_unix_nano / 1_000_000).collect()
        };
        assert_eq!(starts("span[name=\"charge\"]:first"), [11]);
        assert_eq!(starts("span[name=\"charge\"]:last"), [71]);
        assert_eq!(starts("span[name=\"charge\"]:nth_child(2)"), [61]);
        assert_eq!(starts("span[name=\"charge\"]:nth_child(3)"), [71]);
        assert!(starts("span[name=\"charge\"]:nth_child(4)").is_empty());
        assert_eq!(starts("span[name=\"step two\"] span[name=\"charge\"]:first"), [61]);
        assert_eq!(starts("span[name=~\"^step\"]:last span[name=\"charge\"]"), [61, 71]);
        assert_eq!(starts("span[name=~\"^step\"]:first span"), [2, 3, 11, 12]);
    }

    #[test]
    fn descendants_follow_the_index_of_malformed_links() {
        let spans = malformed();
        assert_eq!(names(&spans, "span[name=\"cycle a\"] span"), ["below cycle", "cycle b"]);
        assert_eq!(names(&spans, "span[name=\"db\"] span").first().map(String::as_str), Some("db child"));
    }

    #[test]
    fn descendants_are_found_within_the_same_trace_only() {
        let mut other = span(2, 1, "elsewhere", "x", 1, 2).build();
        other.trace_id = [8; 16];
        let spans = vec![span(1, 0, "root", "x", 0, 10).build(), other];
        assert!(names(&spans, "span[name=\"root\"] span").is_empty());
    }

    #[test]
    fn empty_trace_and_empty_chain_select_nothing() {
        let index = TraceIndex::new(&[]);
        assert!(index.is_empty());
        assert!(select(&index, &parse("span").expect("valid")).is_empty());
        let spans = shop();
        let index = TraceIndex::new(&spans);
        assert!(select(&index, &Selector { compounds: Vec::new() }).is_empty());
    }
}
