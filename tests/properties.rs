//! Properties of the baseline pipeline and of span selectors, over generated inputs: realistic
//! traces (a scenario's own spans, steps, then the services' spans below them, with names shared
//! by siblings, every kind and status, attributes of every type, events), baselines with any text
//! in them, and selectors of every form.
//!
//! - a baseline diffed with itself is empty, and passes the strictest gate;
//! - normalizing a trace does not depend on span ids, on the order spans arrived in, or on a shift
//!   of the clock; durations that change within the thresholds pass the gate;
//! - a baseline file reads back to the baseline that was written;
//! - a selector printed and parsed again is the same selector.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clnrm::baseline::diff::diff;
use clnrm::baseline::normalize::{Baseline, NormSpan, Recorded, SEPARATOR, Stats, normalize};
use clnrm::baseline::store;
use clnrm::baseline::thresholds::AttrPolicy;
use clnrm::baseline::thresholds::{Limits, gate};
use clnrm::expect::selector::{self, Compound, Condition, Pseudo, Selector, Test, Value};
use clnrm::telemetry::span::{AttrValue, Event, Resource, Span, SpanKind, SpanStatus};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;

const MS: u64 = 1_000_000;

/// Names from a small set, so that siblings often share one (numbered `#k` in paths), and now and
/// then any text, the separator of paths and `#` included.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => select(vec!["POST /orders", "reserve item", "charge", "db.insert", "GET /items/{id}", "validate"])
            .prop_map(String::from),
        // Names that look like a path or a numbered sibling.
        2 => select(vec!["charge › db.insert", "reserve item#1", "reserve item#2", "#", " › "]).prop_map(String::from),
        1 => any::<String>(),
        1 => "[a-z ›#0-9]{0,8}",
    ]
}

fn kind() -> impl Strategy<Value = SpanKind> {
    select(SpanKind::CHOICES.map(|(_, kind)| kind).to_vec())
}

fn status() -> impl Strategy<Value = SpanStatus> {
    select(SpanStatus::CHOICES.map(|(_, status)| status).to_vec())
}

/// A float that equals itself (baselines are compared with `==`).
fn float() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("NaN is not equal to itself", |f| !f.is_nan())
}

/// Attribute values of every type, arrays nested once. Bytes only when `bytes` (a stored baseline
/// holds them as their hex text).
fn attr_value(bytes: bool) -> impl Strategy<Value = AttrValue> {
    let mut scalars = vec![
        any::<String>().prop_map(|s| AttrValue::Str(s.into())).boxed(),
        select(vec!["200", "sqlite", "<redacted>", ""]).prop_map(|s| AttrValue::Str(s.into())).boxed(),
        any::<i64>().prop_map(AttrValue::Int).boxed(),
        (0i64..600).prop_map(AttrValue::Int).boxed(),
        float().prop_map(AttrValue::Float).boxed(),
        any::<bool>().prop_map(AttrValue::Bool).boxed(),
    ];
    if bytes {
        scalars.push(prop::collection::vec(any::<u8>(), 0..6).prop_map(|b| AttrValue::Bytes(b.into())).boxed());
    }
    Union::new(scalars).prop_recursive(1, 6, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(|items| AttrValue::Array(items.into()))
    })
}

fn attr_key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(vec![
            "http.route",
            "http.response.status_code",
            "order.items",
            "db.system",
            "container.id",
            "ratio",
            "tags",
        ])
        .prop_map(String::from),
        1 => any::<String>(),
    ]
}

/// One generated span before it gets ids: its parent (an index among the spans before it, or none
/// for another root), what it is, and when it ran (ms after its parent started, how long).
#[derive(Debug, Clone)]
struct Shape {
    parent: Option<usize>,
    name: String,
    service: &'static str,
    kind: SpanKind,
    status: SpanStatus,
    attributes: Vec<(String, AttrValue)>,
    events: Vec<String>,
    offset_ms: u64,
    duration_ms: u64,
}

fn shape(index: usize) -> impl Strategy<Value = Shape> {
    let parent = if index == 0 {
        Just(None).boxed()
    } else {
        prop_oneof![10 => (0..index).prop_map(Some), 1 => Just(None)].boxed()
    };
    (
        parent,
        name(),
        select(vec!["shop", "payments", "inventory"]),
        kind(),
        status(),
        prop::collection::vec((attr_key(), attr_value(true)), 0..4),
        prop::collection::vec(name(), 0..2),
        0u64..50,
        0u64..200,
    )
        .prop_map(|(parent, name, service, kind, status, attributes, events, offset_ms, duration_ms)| Shape {
            parent,
            name,
            service,
            kind,
            status,
            attributes,
            events,
            offset_ms,
            duration_ms,
        })
}

/// A scenario's trace: clnrm's scenario span, its steps (with their index), then 0 to 30 spans
/// of the services, each below an earlier span (mostly) or a root of its own.
fn trace() -> impl Strategy<Value = Vec<Span>> {
    (1usize..4, 0usize..30)
        .prop_flat_map(|(steps, spans)| {
            let shapes: Vec<_> = (0..spans).map(|i| shape(i + 1 + steps)).collect();
            (Just(steps), shapes)
        })
        .prop_map(|(steps, shapes)| build(steps, &shapes))
}

/// Spans with ids 1, 2, …: the scenario span, `steps` steps below it, then `shapes`, whose parent
/// indexes count the scenario and the steps first.
fn build(steps: usize, shapes: &[Shape]) -> Vec<Span> {
    let clnrm = Arc::new(Resource { attributes: vec![("service.name".into(), str("clnrm"))], own: true });
    let mut spans = vec![span(1, None, "scenario", &clnrm, 0, 1_000 * MS)];
    for step in 0..steps {
        let mut s =
            span(step as u64 + 2, Some(1), &format!("step {step}"), &clnrm, (1 + 300 * step as u64) * MS, 300 * MS);
        s.attributes.push(("clnrm.step.index".into(), AttrValue::Int(step as i64)));
        spans.push(s);
    }
    for shape in shapes {
        let resource = Arc::new(Resource { attributes: vec![("service.name".into(), str(shape.service))], own: false });
        let parent = shape.parent.map(|p| &spans[p]);
        let start = parent.map_or(0, |p| p.start_unix_nano - EPOCH) + shape.offset_ms * MS;
        let parent_id = parent.map(|p| u64::from_be_bytes(p.span_id));
        let mut s = span(spans.len() as u64 + 1, parent_id, &shape.name, &resource, start, shape.duration_ms * MS);
        s.kind = shape.kind;
        s.status = shape.status;
        s.attributes = shape.attributes.iter().map(|(k, v)| (k.as_str().into(), v.clone())).collect();
        s.events = shape
            .events
            .iter()
            .map(|e| Event { name: e.as_str().into(), time_unix_nano: EPOCH + start, attributes: vec![] })
            .collect();
        spans.push(s);
    }
    spans
}

fn str(text: &str) -> AttrValue {
    AttrValue::Str(text.into())
}

/// Times are of a realistic clock: nanoseconds since 1970.
const EPOCH: u64 = 1_700_000_000_000_000_000;

/// A span starting `start` ns after [`EPOCH`].
fn span(id: u64, parent: Option<u64>, name: &str, resource: &Arc<Resource>, start: u64, duration: u64) -> Span {
    let start = EPOCH + start;
    Span {
        trace_id: [0x5a; 16],
        span_id: id.to_be_bytes(),
        parent_span_id: parent.map(u64::to_be_bytes),
        name: name.into(),
        kind: SpanKind::Internal,
        start_unix_nano: start,
        end_unix_nano: start + duration,
        status: SpanStatus::Unset,
        status_message: "".into(),
        attributes: Vec::new(),
        events: Vec::new(),
        resource: Arc::clone(resource),
    }
}

/// The strictest limits: nothing added, removed, newly failing or changed, no growth at all.
fn strictest() -> Limits {
    Limits {
        duration: Some(0.0),
        floor: Duration::ZERO,
        duration_runs: 1,
        added: 0,
        removed: 0,
        new_errors: 0,
        attrs: AttrPolicy::Fail,
    }
}

/// Gives every span a new id (distinct, any value), its parent link following.
fn renumber(spans: &[Span], ids: &[u64]) -> Vec<Span> {
    let new_id = |old: [u8; 8]| ids[u64::from_be_bytes(old) as usize - 1].to_be_bytes();
    spans
        .iter()
        .map(|s| Span { span_id: new_id(s.span_id), parent_span_id: s.parent_span_id.map(new_id), ..s.clone() })
        .collect()
}

proptest! {
    #[test]
    fn a_baseline_diffed_with_itself_is_empty(spans in trace()) {
        let baseline = normalize("s", &[Recorded::plain(&spans)]);
        let same = diff(&baseline, &baseline);
        prop_assert!(same.is_same_shape(), "{same:?}");
        prop_assert_eq!(same.matched.len(), spans.len());
        prop_assert!(gate(&baseline, &baseline, &same, &strictest(), Vec::new).passed());
    }

    #[test]
    fn normalizing_does_not_depend_on_span_ids(
        spans in trace(),
        ids in prop::collection::hash_set(any::<u64>(), 40),
    ) {
        let ids: Vec<u64> = ids.into_iter().collect();
        prop_assert_eq!(normalize("s", &[Recorded::plain(&renumber(&spans, &ids))]), normalize("s", &[Recorded::plain(&spans)]));
    }

    #[test]
    fn normalizing_does_not_depend_on_the_order_spans_arrived_in(
        (spans, arrived) in trace().prop_flat_map(|spans| (Just(spans.clone()), Just(spans).prop_shuffle())),
    ) {
        prop_assert_eq!(normalize("s", &[Recorded::plain(&arrived)]), normalize("s", &[Recorded::plain(&spans)]));
    }

    #[test]
    fn normalizing_does_not_depend_on_when_the_trace_ran(spans in trace(), shift in 0u64..1 << 40, later in any::<bool>()) {
        let moved: Vec<Span> = spans
            .iter()
            .map(|s| {
                let at = |t: u64| if later { t + shift } else { t - shift };
                Span { start_unix_nano: at(s.start_unix_nano), end_unix_nano: at(s.end_unix_nano), ..s.clone() }
            })
            .collect();
        prop_assert_eq!(normalize("s", &[Recorded::plain(&moved)]), normalize("s", &[Recorded::plain(&spans)]));
    }

    /// Every span may last shorter, or longer by no more than the thresholds allow (the percentage
    /// or the floor): the run has the baseline's shape and passes.
    #[test]
    fn durations_within_the_thresholds_pass(
        spans in trace(),
        percent in 1u64..100,
        floor_ms in 0u64..20,
        changes in prop::collection::vec((0.0..1.0f64, any::<bool>()), 40),
    ) {
        let floor = floor_ms * MS;
        let run: Vec<Span> = spans
            .iter()
            .zip(&changes)
            .map(|(s, &(fraction, longer))| {
                let old = s.end_unix_nano - s.start_unix_nano;
                // Strictly within: growth at most the larger of the floor and 99% of the percentage.
                let allowed = floor.max(old * percent * 99 / 10_000);
                let new = if longer { old + (allowed as f64 * fraction) as u64 } else { (old as f64 * fraction) as u64 };
                Span { end_unix_nano: s.start_unix_nano + new, ..s.clone() }
            })
            .collect();
        let limits = Limits { duration: Some(percent as f64), floor: Duration::from_nanos(floor), ..strictest() };
        let (old, new) = (normalize("s", &[Recorded::plain(&spans)]), normalize("s", &[Recorded::plain(&run)]));
        let changed = diff(&old, &new);
        prop_assert!(changed.is_same_shape(), "{changed:?}");
        let verdict = gate(&old, &new, &changed, &limits, Vec::new);
        prop_assert!(verdict.passed(), "{verdict:?}");
    }

    #[test]
    fn a_baseline_file_reads_back_as_written(baseline in stored_baseline()) {
        let text = store::render(&baseline);
        let read = store::parse(&text).map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
        prop_assert_eq!(read, baseline);
    }

    #[test]
    fn a_normalized_trace_reads_back_as_written(spans in trace()) {
        let baseline = normalize("s", &[Recorded::plain(&spans)]);
        let text = store::render(&baseline);
        let read = store::parse(&text).map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
        prop_assert_eq!(store::render(&read), text);
        prop_assert!(diff(&baseline, &read).is_same_shape());
    }

    #[test]
    fn a_selector_printed_and_parsed_again_is_the_same(selector in selector()) {
        let printed = selector.to_string();
        let parsed = selector::parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed:?}: {e:?}")))?;
        prop_assert_eq!(&parsed, &selector, "printed as {:?}", printed);
        prop_assert_eq!(parsed.to_string(), printed);
    }
}

/// A duration as a baseline file holds it: three decimals in the largest unit that fits.
fn written_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![0u64..1_000_000_000, any::<u64>()].prop_map(|ns| {
        let text = store::duration(Duration::from_nanos(ns));
        clnrm::duration::parse(&text).expect("a written duration reads back")
    })
}

/// Statistics over at most `runs` samples: one, or minimum ≤ median ≤ maximum of several.
fn stats(runs: u32) -> impl Strategy<Value = Stats> {
    (prop::collection::vec(written_duration(), 3), 1..=runs).prop_map(|(mut d, samples)| {
        d.sort();
        match samples {
            1 => Stats { min: d[1], median: d[1], max: d[1], samples },
            _ => Stats { min: d[0], median: d[1], max: d[2], samples },
        }
    })
}

/// A span of a stored baseline but its path: any text in its service, attributes and events.
fn norm_span(runs: u32) -> impl Strategy<Value = NormSpan> {
    (
        any::<String>(),
        kind(),
        status(),
        prop::collection::btree_map(attr_key(), attr_value(false), 0..4),
        prop::collection::vec(any::<String>(), 0..3),
        stats(runs),
        stats(runs),
    )
        .prop_map(|(service, kind, status, attrs, events, start, duration)| NormSpan {
            path: String::new(),
            service,
            kind,
            status,
            attrs: attrs.into_iter().map(|(k, v)| (k.into(), v)).collect::<BTreeMap<_, _>>(),
            events,
            start,
            fastest: Some(duration.min),
            duration,
        })
}

/// A baseline as normalization writes it, with any text in it: spans depth first (each below the
/// span before it or one of that span's ancestors, or a root), one path each, over 1 to 1000 runs.
fn stored_baseline() -> impl Strategy<Value = Baseline> {
    (any::<String>(), any::<String>(), 1u32..1000)
        .prop_flat_map(|(scenario, clnrm, runs)| {
            let segment = any::<String>().prop_filter("one segment", |s| !s.contains(SEPARATOR));
            let spans = prop::collection::vec((0usize..4, segment, norm_span(runs)), 0..8);
            (Just(scenario), Just(clnrm), Just(runs), spans)
        })
        .prop_map(|(scenario, clnrm, runs, items)| {
            let mut spans: Vec<NormSpan> = Vec::new();
            // Paths of the last span and its ancestors, the root first.
            let mut above: Vec<String> = Vec::new();
            for (up, segment, span) in items {
                above.truncate(above.len().saturating_sub(up));
                let path = match above.last() {
                    Some(parent) => format!("{parent}{SEPARATOR}{segment}"),
                    None => segment,
                };
                if spans.iter().all(|s| s.path != path) {
                    above.push(path.clone());
                    spans.push(NormSpan { path, ..span });
                }
            }
            Baseline { scenario, clnrm, runs, spans }
        })
}

/// Values a condition can compare with; floats are finite (the parser refuses others).
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::Str),
        "[a-z\\\\\"' .]{0,6}".prop_map(Value::Str),
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
    ]
}

/// A pattern that compiles: one of a few written ones, or any text matched literally.
fn regex() -> impl Strategy<Value = regex::Regex> {
    prop_oneof![
        select(vec!["^GET /items/\\d+$", "\\\\", "a\"b", "[\\]]", "\\n", "\\'", "x\\\\\\\\", "é+"])
            .prop_map(String::from),
        any::<String>().prop_map(|text| regex::escape(&text)),
    ]
    .prop_map(|pattern| regex::Regex::new(&pattern).expect("a valid pattern"))
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![any::<f64>().prop_filter("finite", |f| f.is_finite()), (-1000i64..1000).prop_map(|i| i as f64)]
}

/// A condition on any key but `kind` and `status`, which take only their own values.
fn free_condition() -> impl Strategy<Value = Condition> {
    let key = prop_oneof![
        select(vec!["name", "http.route", "service.name", "a-b._c", "contains", "span"]).prop_map(String::from),
        any::<String>().prop_filter("a key", |k| !k.is_empty() && k != "kind" && k != "status"),
    ];
    let test = prop_oneof![
        Just(Test::Exists),
        value().prop_map(Test::Eq),
        value().prop_map(Test::Ne),
        regex().prop_map(Test::Matches),
        regex().prop_map(Test::NotMatches),
        any::<String>().prop_map(Test::Contains),
        number().prop_map(Test::Lt),
        number().prop_map(Test::Le),
        number().prop_map(Test::Gt),
        number().prop_map(Test::Ge),
    ];
    (key, test).prop_map(|(key, test)| Condition { key, test, span: 0..0 })
}

fn special_condition() -> impl Strategy<Value = Condition> {
    let kinds = SpanKind::CHOICES.map(|(name, _)| ("kind", name));
    let statuses = SpanStatus::CHOICES.map(|(name, _)| ("status", name));
    (select([kinds.as_slice(), statuses.as_slice()].concat()), any::<bool>()).prop_map(|((key, value), equal)| {
        let value = Value::Str(value.into());
        let test = if equal { Test::Eq(value) } else { Test::Ne(value) };
        Condition { key: key.into(), test, span: 0..0 }
    })
}

fn selector() -> impl Strategy<Value = Selector> {
    let pseudo = prop_oneof![
        Just(None),
        Just(Some(Pseudo::First)),
        Just(Some(Pseudo::Last)),
        (1usize..).prop_map(|n| Some(Pseudo::NthChild(n))),
    ];
    let condition = prop_oneof![4 => free_condition(), 1 => special_condition()];
    let compound = (prop::collection::vec(condition, 0..4), pseudo)
        .prop_map(|(conditions, pseudo)| Compound { conditions, pseudo });
    prop::collection::vec(compound, 1..4).prop_map(|compounds| Selector { compounds })
}
