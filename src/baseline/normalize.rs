//! A scenario's trace in the form that is stored and compared: nothing in it changes from run to
//! run unless the system's behaviour does.
//!
//! - Ids become structural paths: the names from the root down, `name#k` for the k-th of siblings
//!   that share a name (`checkout › place order › POST /orders › reserve item#2`).
//! - Siblings get a canonical order, so spans that run in parallel and finish in any order give
//!   the same file: clnrm's steps by their index, every other span by what it is (name, service,
//!   kind, status, attributes); only spans alike in all of that are ordered by when they started.
//! - Timestamps become offsets from the scenario's start, and with durations are kept as
//!   statistics over the recorded runs.
//! - Attributes are sorted, with values that differ on every run made stable or redacted
//!   ([`super::redact`]).
//! - The requests of clnrm's own wait probes (the spans below a `wait` span) are left out: how
//!   many probes a service needed says nothing about the system.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use super::redact::{Ignores, Redaction, stable_value};
use crate::telemetry::index::TraceIndex;
use crate::telemetry::own::SERVICE_NAME;
use crate::telemetry::span::{AttrValue, Key, Span, SpanKind, SpanStatus};

/// A normalized span's attributes: sorted by key.
pub type Attrs = BTreeMap<Key, AttrValue>;

/// Version of the normalized form and its file format.
pub const FORMAT: u32 = 1;

pub use super::redact::REDACTED;

/// A scenario's normalized trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub scenario: String,
    /// The clnrm version that recorded it.
    pub clnrm: String,
    /// How many runs the statistics cover.
    pub runs: u32,
    /// Depth first (each span right after its parent or after another span below its parent),
    /// siblings in canonical order, every path once. Normalization makes them so, and reading a
    /// file checks the first and the last (`store::parse`), which the diff relies on.
    pub spans: Vec<NormSpan>,
}

/// One span, normalized. Two are equal when what a baseline file holds of them is: `fastest` is
/// a judgement of the runs compared, not part of the recorded trace.
#[derive(Debug, Clone)]
pub struct NormSpan {
    /// Structural path: names from the root, ` › ` between them.
    pub path: String,
    pub service: String,
    pub kind: SpanKind,
    pub status: SpanStatus,
    /// Sorted by key; volatile and ignored values are [`REDACTED`].
    pub attrs: Attrs,
    /// Event names, in the order they were recorded.
    pub events: Vec<String>,
    /// Start, as an offset from the scenario's start.
    pub start: Stats,
    pub duration: Stats,
    /// What duration gating compares (`baseline::thresholds`): the fastest time over the runs as
    /// measured when one of them was as quiet as the recording, or, when none was, with each
    /// run's load divided out. `None` for a span that began before the scenario's first step: a
    /// service's start-up (cold caches, a fresh data directory) took 1.5–6× as long from one
    /// machine or moment to the next with the system unchanged (docs/benchmarks.md, "Duration
    /// gating"), so its duration is shown, not gated. Not stored: a stored baseline's is its
    /// `duration.min`.
    pub fastest: Option<Duration>,
}

impl PartialEq for NormSpan {
    fn eq(&self, other: &Self) -> bool {
        let NormSpan { path, service, kind, status, attrs, events, start, duration, fastest: _ } = self;
        (path, service, kind, status, attrs, events, start, duration)
            == (
                &other.path,
                &other.service,
                &other.kind,
                &other.status,
                &other.attrs,
                &other.events,
                &other.start,
                &other.duration,
            )
    }
}

impl NormSpan {
    /// How many levels below the root (the root is 0).
    pub fn depth(&self) -> usize {
        self.path.matches(SEPARATOR).count()
    }

    /// The last segment of the path: the span's name, with `#k` when siblings share it.
    pub fn segment(&self) -> &str {
        self.path.rsplit(SEPARATOR).next().unwrap_or(&self.path)
    }
}

/// Between the segments of a path.
pub const SEPARATOR: &str = " › ";

/// Appends `name` to a path as a segment, with `\`, `#` and `›` escaped by a backslash: so a
/// name holding ` › ` never reads as two segments, and one ending in `#2` never as the second of
/// siblings sharing a name. Paths stay unique, and parents are found by their text.
pub fn push_segment(path: &mut String, name: &str) {
    for c in name.chars() {
        if matches!(c, '\\' | '#' | '›') {
            path.push('\\');
        }
        path.push(c);
    }
}

/// A segment without the `#k` that numbers siblings sharing a name (an escaped `\#` is part of
/// the name).
pub fn without_number(segment: &str) -> &str {
    let Some((name, k)) = segment.rsplit_once('#') else { return segment };
    let escapes = name.bytes().rev().take_while(|&b| b == b'\\').count();
    if escapes % 2 == 0 && !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) { name } else { segment }
}

/// `path` split at its last separator: the parent's path and the last segment; `None` for a root.
/// What `path.rsplit_once(SEPARATOR)` gives, by comparing at each byte of the short last segment
/// rather than setting up a general substring search for every span.
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let (bytes, separator) = (path.as_bytes(), SEPARATOR.as_bytes());
    (separator.len()..=bytes.len())
        .rev()
        .find(|&end| bytes[..end].ends_with(separator))
        .map(|end| (&path[..end - separator.len()], &path[end..]))
}

/// Minimum, median and maximum of a duration over the recorded runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub min: Duration,
    pub median: Duration,
    pub max: Duration,
    /// How many runs had this span.
    pub samples: u32,
}

impl Stats {
    /// Statistics of `samples`, which must not be empty.
    pub fn of(samples: &mut [Duration]) -> Stats {
        samples.sort_unstable();
        Stats {
            min: samples[0],
            median: samples[samples.len() / 2],
            max: samples[samples.len() - 1],
            samples: samples.len() as u32,
        }
    }
}

/// One recorded trace with what its redaction needs, and how loaded the machine was.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    pub spans: &'a [Span],
    pub redaction: Redaction<'a>,
    /// How many times slower than at recording the machine ran this trace (`thresholds::load`);
    /// exactly 1 for a run as quiet as the recording, whose durations are taken as they are.
    pub load: f64,
}

impl<'a> Recorded<'a> {
    /// A quiet run's trace with no ignores and no known containers.
    pub fn plain(spans: &'a [Span]) -> Recorded<'a> {
        Recorded { spans, redaction: Redaction::none(), load: 1.0 }
    }
}

/// Normalizes the traces of `runs` recordings of `scenario` into one baseline. Spans are matched
/// across runs by path; the first run decides which spans there are and what they look like, the
/// others add duration samples (a span missing from some runs has fewer samples).
pub fn normalize(scenario: &str, runs: &[Recorded]) -> Baseline {
    let mut recorded: Vec<Vec<NormSpan>> = runs.iter().map(normalize_run).collect();
    let first = if recorded.is_empty() { Vec::new() } else { recorded.remove(0) };
    if recorded.is_empty() {
        // One run: its spans' one-sample statistics are already the answer.
        return Baseline { scenario: scenario.to_string(), clnrm: version(), runs: runs.len() as u32, spans: first };
    }
    let mut others: Vec<(f64, BTreeMap<&str, &NormSpan>)> = runs[1..]
        .iter()
        .zip(&recorded)
        .map(|(r, run)| (r.load, run.iter().map(|s| (s.path.as_str(), s)).collect()))
        .collect();
    let spans = first
        .into_iter()
        .map(|span| {
            let mut starts = vec![span.start.median];
            let mut durations = vec![span.duration.median];
            let mut loaded = vec![(span.duration.median, runs[0].load)];
            for (load, run) in &mut others {
                if let Some(other) = run.remove(span.path.as_str()) {
                    starts.push(other.start.median);
                    durations.push(other.duration.median);
                    loaded.push((other.duration.median, *load));
                }
            }
            NormSpan {
                start: Stats::of(&mut starts),
                duration: Stats::of(&mut durations),
                fastest: span.fastest.map(|_| fastest(&loaded)),
                ..span
            }
        })
        .collect();
    Baseline { scenario: scenario.to_string(), clnrm: version(), runs: runs.len() as u32, spans }
}

/// The fastest of `runs` (a duration and its run's load). Load only adds time, so every time as
/// measured is one the system achieved: when any run was quiet, the fastest as measured over all
/// of them (a loaded run's time counts too; on our machines a lone scenario's request spans were
/// at times slower than the same spans beside three others: docs/benchmarks.md, "Duration
/// gating", third round). When none was, each duration is divided by its run's load, so a machine
/// loaded throughout does not make the system look slower.
fn fastest(runs: &[(Duration, f64)]) -> Duration {
    let quiet = runs.iter().any(|&(_, load)| load <= 1.0);
    let time = |&(duration, load): &(Duration, f64)| if quiet { duration } else { duration.div_f64(load.max(1.0)) };
    runs.iter().map(time).min().unwrap_or_default()
}

fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The spans of one trace in canonical order, with paths, redacted attributes, and their own
/// offset and duration as one-sample statistics.
fn normalize_run(recorded: &Recorded) -> Vec<NormSpan> {
    let index = TraceIndex::new(recorded.spans);
    let ignores = Ignores::for_trace(&recorded.redaction, &index);
    let spans = index.spans();
    let origin = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
    let timed = timed(&index);
    // What ordering siblings compares, looked up once per span rather than at every comparison.
    let keys: Vec<SortKey> = spans.iter().map(|&span| SortKey::of(span)).collect();
    let mut attrs: Vec<Attrs> = vec![Attrs::new(); index.len()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); index.len()];
    let mut roots = Vec::new();
    for position in 0..index.len() {
        match index.parent(position) {
            Some(parent) => children[parent].push(position),
            None => roots.push(position),
        }
    }
    // Attributes are redacted one sibling group at a time, just before the group is sorted, so
    // that they lie in memory about in the order they are written and compared in afterwards, not
    // in the order the spans arrived.
    let mut sort = |siblings: &mut [usize]| {
        for &p in siblings.iter() {
            attrs[p] = spans[p]
                .attributes
                .iter()
                .map(|(key, value)| {
                    (Key::clone(key), stable_value(key, value, spans[p], p, &ignores, recorded.redaction.peers))
                })
                .collect();
        }
        siblings.sort_by(|&a, &b| canonical_order(&keys[a], &attrs[a], &keys[b], &attrs[b]));
    };
    // Depth first, parents before children, siblings in canonical order: (position, path).
    let mut ordered: Vec<(usize, String)> = Vec::with_capacity(index.len());
    let mut stack: Vec<(usize, String)> = Vec::new();
    sort(&mut roots);
    push_siblings(&index, &roots, None, &mut stack);
    while let Some((position, path)) = stack.pop() {
        // A wait span's children are its probes' requests: left out.
        let mut below = match spans[position].is_wait() {
            true => Vec::new(),
            false => std::mem::take(&mut children[position]),
        };
        sort(&mut below);
        push_siblings(&index, &below, Some(&path), &mut stack);
        ordered.push((position, path));
    }
    ordered
        .into_iter()
        .map(|(position, path)| {
            let span = spans[position];
            let start = Duration::from_nanos(span.start_unix_nano.saturating_sub(origin));
            NormSpan {
                path,
                service: keys[position].service.to_string(),
                kind: span.kind,
                status: span.status,
                attrs: std::mem::take(&mut attrs[position]),
                events: span.events.iter().map(|e| e.name.to_string()).collect(),
                start: Stats::of(&mut [start]),
                duration: Stats::of(&mut [span.duration()]),
                fastest: timed[position].then(|| fastest(&[(span.duration(), recorded.load)])),
            }
        })
        .collect()
}

/// Which spans' durations are gated: every span below one of the scenario's steps (clnrm's spans
/// right below its scenario span that neither start nor wait for a service), and every other span
/// that began after the first step did. The rest is start-up (see [`NormSpan::fastest`]). A trace
/// without steps has only start-up to time: all of it is gated.
fn timed(index: &TraceIndex) -> Vec<bool> {
    let spans = index.spans();
    let own_root = |p: usize| spans[p].is_own() && index.parent(p).is_none();
    let step = |p: usize| {
        spans[p].is_own() && !spans[p].is_start() && !spans[p].is_wait() && index.parent(p).is_some_and(own_root)
    };
    let first = (0..index.len()).filter(|&p| step(p)).map(|p| spans[p].start_unix_nano).min();
    (0..index.len())
        .map(|p| first.is_none_or(|first| spans[p].start_unix_nano >= first) || index.ancestry(p).skip(1).any(step))
        .collect()
}

/// Up to this many siblings, counting names by scanning them is cheaper than a map.
const FEW_SIBLINGS: usize = 16;

/// Pushes `siblings` (in canonical order) onto the depth-first stack with their paths below
/// `parent`, so that they pop in that order; a name shared by several siblings gets `#1`, `#2`, …
/// in that order. Roots have no parent (`None`): a span with an empty name has the path `""`, and
/// its children's paths still begin with the separator, so they never read as roots.
fn push_siblings(index: &TraceIndex, siblings: &[usize], parent: Option<&str>, stack: &mut Vec<(usize, String)>) {
    let name = |p: usize| &*index.spans()[p].name;
    // Per name: how many siblings have it, how many of those are numbered so far.
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    if siblings.len() > FEW_SIBLINGS {
        for &p in siblings {
            counts.entry(name(p)).or_default().0 += 1;
        }
    }
    let first = stack.len();
    for (k, &p) in siblings.iter().enumerate() {
        let name = name(p);
        let (sharing, n) = match counts.get_mut(name) {
            Some((sharing, numbered)) => {
                *numbered += 1;
                (*sharing, *numbered)
            }
            None => {
                let same = |q: &&usize| &*index.spans()[**q].name == name;
                (siblings.iter().filter(same).count(), siblings[..k].iter().filter(same).count() + 1)
            }
        };
        // The path in one allocation: `parent › name#n`.
        let mut path = String::with_capacity(parent.map_or(0, str::len) + SEPARATOR.len() + name.len() + 4);
        if let Some(parent) = parent {
            path.push_str(parent);
            path.push_str(SEPARATOR);
        }
        push_segment(&mut path, name);
        if sharing > 1 {
            let _ = write!(path, "#{n}");
        }
        stack.push((p, path));
    }
    stack[first..].reverse();
}

/// A span's service as a baseline stores it. The file tells clnrm's own spans (whose durations are
/// never gated, see `thresholds::slower`) by their service `clnrm`; a span of the system under test
/// exporting under that name is stored as [`IMPOSTOR_SERVICE`], so it cannot pass for one of them.
fn stored_service(span: &Span) -> &str {
    match span.service_name() {
        SERVICE_NAME if !span.is_own() => IMPOSTOR_SERVICE,
        service => service,
    }
}

/// The service a baseline gives a span of the system under test that calls itself `clnrm`.
pub const IMPOSTOR_SERVICE: &str = "clnrm (not clnrm's own)";

/// What siblings are ordered by, before their attributes and start.
struct SortKey<'a> {
    /// clnrm's steps' index.
    step: Option<i64>,
    name: &'a str,
    service: &'a str,
    kind: SpanKind,
    status: SpanStatus,
    start: u64,
}

impl<'a> SortKey<'a> {
    fn of(span: &'a Span) -> SortKey<'a> {
        let step = match span.attr("clnrm.step.index") {
            Some(AttrValue::Int(i)) if span.is_own() => Some(*i),
            _ => None,
        };
        SortKey {
            step,
            name: &span.name,
            service: stored_service(span),
            kind: span.kind,
            status: span.status,
            start: span.start_unix_nano,
        }
    }
}

/// Orders siblings: clnrm's steps by their index, then everything by what it is (name, service,
/// kind, status, attributes), then by start. Compares in place: sorting allocates nothing.
fn canonical_order(a: &SortKey, a_attrs: &Attrs, b: &SortKey, b_attrs: &Attrs) -> Ordering {
    a.step
        .cmp(&b.step)
        .then_with(|| a.name.cmp(b.name))
        .then_with(|| a.service.cmp(b.service))
        .then_with(|| a.kind.as_str().cmp(b.kind.as_str()))
        .then_with(|| a.status.as_str().cmp(b.status.as_str()))
        .then_with(|| {
            let mut pairs = a_attrs.iter().zip(b_attrs.iter());
            pairs
                .find_map(|((ka, va), (kb, vb))| {
                    Some(ka.cmp(kb).then_with(|| value_order(va, vb))).filter(|o| o.is_ne())
                })
                .unwrap_or_else(|| a_attrs.len().cmp(&b_attrs.len()))
        })
        .then_with(|| a.start.cmp(&b.start))
}

/// A total order on attribute values: by type, then by value (floats by `total_cmp`).
fn value_order(a: &AttrValue, b: &AttrValue) -> Ordering {
    let rank = |v: &AttrValue| match v {
        AttrValue::Bool(_) => 0,
        AttrValue::Int(_) => 1,
        AttrValue::Float(_) => 2,
        AttrValue::Str(_) => 3,
        AttrValue::Bytes(_) => 4,
        AttrValue::Array(_) => 5,
    };
    match (a, b) {
        (AttrValue::Bool(x), AttrValue::Bool(y)) => x.cmp(y),
        (AttrValue::Int(x), AttrValue::Int(y)) => x.cmp(y),
        (AttrValue::Float(x), AttrValue::Float(y)) => x.total_cmp(y),
        (AttrValue::Str(x), AttrValue::Str(y)) => x.cmp(y),
        (AttrValue::Bytes(x), AttrValue::Bytes(y)) => x.cmp(y),
        (AttrValue::Array(x), AttrValue::Array(y)) => x
            .iter()
            .zip(y.iter())
            .map(|(p, q)| value_order(p, q))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::redact::IgnoreAttr;
    use crate::telemetry::span::tests::span;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// scenario → two steps (the second's name sorts first) → a server span with two reservations
    /// (made in parallel, listed in either order) and a container id.
    fn checkout(id_offset: u64, shift: u64, swapped: bool) -> Vec<Span> {
        let id = |n: u64| if n == 0 { 0 } else { n + id_offset };
        let t = |n: u64| n + shift;
        let (first, second) = if swapped { (6, 5) } else { (5, 6) };
        let mut spans = vec![
            span(id(first), id(4), "reserve item", "shop", t(12), t(14)).attr("item.index", AttrValue::Int(0)).build(),
            span(id(1), 0, "checkout", "clnrm", t(0), t(100)).build(),
            span(id(2), id(1), "place order", "clnrm", t(1), t(50))
                .attr("clnrm.step.index", AttrValue::Int(0))
                .str("container.id", &format!("abc{id_offset}"))
                .build(),
            span(id(3), id(1), "a check", "clnrm", t(60), t(90)).attr("clnrm.step.index", AttrValue::Int(1)).build(),
            span(id(4), id(2), "POST /orders", "shop", t(10), t(40)).kind(SpanKind::Server).build(),
            span(id(second), id(4), "reserve item", "shop", t(12), t(15)).attr("item.index", AttrValue::Int(1)).build(),
        ];
        if swapped {
            spans.reverse();
        }
        spans
    }

    fn paths(baseline: &Baseline) -> Vec<&str> {
        baseline.spans.iter().map(|s| s.path.as_str()).collect()
    }

    #[test]
    fn paths_follow_the_tree_in_canonical_order() {
        let spans = checkout(0, 0, false);
        let baseline = normalize("checkout", &[Recorded::plain(&spans)]);
        assert_eq!(
            paths(&baseline),
            [
                "checkout",
                "checkout › place order",
                "checkout › place order › POST /orders",
                "checkout › place order › POST /orders › reserve item#1",
                "checkout › place order › POST /orders › reserve item#2",
                "checkout › a check",
            ]
        );
        let reserve = &baseline.spans[3];
        assert_eq!(reserve.attrs["item.index"], AttrValue::Int(0));
        assert_eq!((reserve.start.median, reserve.duration.median), (ms(12), ms(2)));
        assert_eq!(reserve.depth(), 3);
        assert_eq!(reserve.segment(), "reserve item#1");
        assert_eq!(baseline.spans[1].attrs["container.id"], AttrValue::Str(REDACTED.into()));
    }

    #[test]
    fn other_ids_other_times_and_another_sibling_order_change_nothing() {
        let a = normalize("checkout", &[Recorded::plain(&checkout(0, 0, false))]);
        let b = normalize("checkout", &[Recorded::plain(&checkout(100, 5_000, true))]);
        assert_eq!(a, b);
    }

    #[test]
    fn names_holding_the_separator_or_a_number_give_unique_paths_that_read_back() {
        let spans = vec![
            span(1, 0, "root", "shop", 0, 10).build(),
            span(2, 1, "a › b", "shop", 1, 2).build(),
            span(3, 2, "c", "shop", 1, 2).build(),
            span(4, 1, "a", "shop", 2, 3).build(),
            span(5, 1, "a", "shop", 3, 4).build(),
            span(6, 1, "a#1", "shop", 4, 5).build(),
            span(7, 1, "back\\", "shop", 5, 6).build(),
            span(8, 1, "back\\", "shop", 6, 7).build(),
        ];
        let baseline = normalize("s", &[Recorded::plain(&spans)]);
        let paths: Vec<&str> = baseline.spans.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "root",
                "root › a#1",
                "root › a#2",
                "root › a \\› b",
                "root › a \\› b › c",
                "root › a\\#1",
                "root › back\\\\#1",
                "root › back\\\\#2",
            ]
        );
        let names: Vec<&str> = baseline.spans.iter().map(|s| without_number(s.segment())).collect();
        assert_eq!(names, ["root", "a", "a", "a \\› b", "c", "a\\#1", "back\\\\", "back\\\\"]);
        assert_eq!(crate::baseline::store::parse(&crate::baseline::store::render(&baseline)).unwrap(), baseline);
    }

    #[test]
    fn children_of_a_span_with_an_empty_name_are_not_read_as_roots() {
        let spans = vec![
            span(1, 0, "", "shop", 0, 10).build(),
            span(2, 1, "db.insert", "shop", 1, 2).build(),
            span(3, 0, "db.insert", "shop", 2, 3).build(),
        ];
        let baseline = normalize("s", &[Recorded::plain(&spans)]);
        let paths: Vec<&str> = baseline.spans.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["", " › db.insert", "db.insert"]);
        assert_eq!(crate::baseline::store::parse(&crate::baseline::store::render(&baseline)).unwrap(), baseline);
    }

    #[test]
    fn a_span_exporting_as_clnrm_is_not_stored_as_clnrms_own() {
        let spans = vec![
            span(1, 0, "scenario", "clnrm", 0, 10).build(),
            span(2, 1, "slow query", "clnrm", 1, 9).impostor().build(),
        ];
        let baseline = normalize("s", &[Recorded::plain(&spans)]);
        let services: Vec<&str> = baseline.spans.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(services, ["clnrm", IMPOSTOR_SERVICE]);
    }

    #[test]
    fn ignore_attrs_are_redacted_but_kept() {
        let spans = vec![span(1, 0, "root", "shop", 0, 1).str("order.id", "o-123").str("kept", "yes").build()];
        let ignores = [IgnoreAttr::everywhere("order.id")];
        let redaction = Redaction { ignores: [&ignores, &[]], ..Redaction::none() };
        let baseline = normalize("s", &[Recorded { spans: &spans, redaction, load: 1.0 }]);
        let attrs = &baseline.spans[0].attrs;
        assert_eq!(attrs["order.id"], AttrValue::Str(REDACTED.into()));
        assert_eq!(attrs["kept"], AttrValue::Str("yes".into()));
    }

    #[test]
    fn bytes_are_kept_as_hex_text_inside_arrays_too() {
        let bytes = || AttrValue::Bytes(Box::new([0xde, 0xad]));
        let spans = vec![
            span(1, 0, "root", "shop", 0, 1)
                .attr("raw", bytes())
                .attr("list", AttrValue::Array(Box::new([bytes(), AttrValue::Array(Box::new([bytes()]))])))
                .build(),
        ];
        let attrs = &normalize("s", &[Recorded::plain(&spans)]).spans[0].attrs;
        let hex = || AttrValue::Str("dead".into());
        assert_eq!(attrs["raw"], hex());
        assert_eq!(attrs["list"], AttrValue::Array(Box::new([hex(), AttrValue::Array(Box::new([hex()]))])));
    }

    #[test]
    fn durations_are_statistics_over_runs() {
        let run = |reserve_ms: u64, with_check: bool| {
            let mut spans = vec![
                span(1, 0, "root", "clnrm", 0, 100).build(),
                span(2, 1, "reserve", "shop", 10, 10 + reserve_ms).build(),
            ];
            if with_check {
                spans.push(span(3, 1, "check", "shop", 50, 60).build());
            }
            spans
        };
        let runs = [run(4, true), run(2, false), run(9, true)];
        let refs: Vec<Recorded> = runs.iter().map(|run| Recorded::plain(run)).collect();
        let baseline = normalize("s", &refs);
        assert_eq!(baseline.runs, 3);
        let reserve = baseline.spans.iter().find(|s| s.path == "root › reserve").unwrap();
        assert_eq!(reserve.duration, Stats { min: ms(2), median: ms(4), max: ms(9), samples: 3 });
        let check = baseline.spans.iter().find(|s| s.path == "root › check").unwrap();
        assert_eq!(check.duration.samples, 2, "missing from one run");
    }
}
