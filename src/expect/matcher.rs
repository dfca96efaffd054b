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

use std::cmp::Reverse;
use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use crate::expect::selector::{Compound, Condition, Pseudo, Selector, Test, Value};
use crate::telemetry::own::SERVICE_NAME;
use crate::telemetry::span::{AttrValue, Span, SpanId, TraceId};

/// The spans of one trace, indexed for selection. Spans are referred to by their *position*: the
/// index into [`TraceIndex::spans`].
pub struct TraceIndex<'a> {
    /// Every span by start time; a span that starts with another but lasts longer comes first, so a
    /// parent precedes a child that starts in the same nanosecond.
    spans: Vec<&'a Span>,
    /// Position of each span's parent within this trace. `None` for roots, for spans whose parent
    /// was not collected (or belongs to another trace), and for the one span at which a parent
    /// cycle in malformed input is cut.
    parents: Vec<Option<usize>>,
    /// Every position once, parents before their children: each root (by start time) followed by
    /// its subtree depth first, children by start time. The order of the tree rendering.
    preorder: Vec<usize>,
    /// Distance of each span from its root (roots are 0).
    depths: Vec<usize>,
    /// Span ids (as numbers, for cheap comparison) with their positions, in order: finds a span by
    /// its id.
    by_id: Vec<(u64, usize)>,
    /// Positions by span name, in start order; built on the first selection that needs it.
    by_name: OnceLock<HashMap<&'a str, Vec<usize>, BuildHasherDefault<FxHasher>>>,
}

impl<'a> TraceIndex<'a> {
    /// Indexes `spans`, all the spans of one scenario's trace (clnrm's own included). O(n log n).
    pub fn new(spans: &'a [Span]) -> Self {
        // Sorting keys rather than references keeps the comparisons in cache; the input index as
        // the last key keeps the order of equal spans deterministic.
        let mut order: Vec<(u64, Reverse<u64>, usize)> =
            spans.iter().enumerate().map(|(i, s)| (s.start_unix_nano, Reverse(s.end_unix_nano), i)).collect();
        order.sort_unstable();
        let sorted: Vec<&Span> = order.into_iter().map(|(_, _, i)| &spans[i]).collect();
        let mut by_id: Vec<(u64, usize)> =
            sorted.iter().enumerate().map(|(p, span)| (u64::from_be_bytes(span.span_id), p)).collect();
        by_id.sort_unstable();
        let mut index = TraceIndex {
            spans: sorted,
            parents: Vec::new(),
            preorder: Vec::new(),
            depths: Vec::new(),
            by_id,
            by_name: OnceLock::new(),
        };
        index.parents =
            index.spans.iter().map(|span| index.with_id(&span.parent_span_id?, &span.trace_id).next()).collect();
        index.arrange();
        index
    }

    /// Every span, by start time.
    pub fn spans(&self) -> &[&'a Span] {
        &self.spans
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The position of `span`, which must be one of the indexed spans (the same reference, as
    /// [`select`] returns them); `None` for any other span.
    pub fn position(&self, span: &Span) -> Option<usize> {
        self.with_id(&span.span_id, &span.trace_id).find(|&p| std::ptr::eq(self.spans[p], span))
    }

    /// The position of the parent of the span at `position`, if it is in this trace.
    pub fn parent(&self, position: usize) -> Option<usize> {
        self.parents[position]
    }

    /// The span at `position` and its ancestors, nearest first.
    pub fn ancestry(&self, position: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(Some(position), |&p| self.parents[p])
    }

    /// Whether the span at `position` is clnrm's doing: one of its own spans, or a span below one
    /// of its wait spans (a readiness probe's request, see [`Span::is_wait`]).
    pub fn by_clnrm(&self, position: usize) -> bool {
        self.spans[position].is_own() || self.ancestry(position).skip(1).any(|p| self.spans[p].is_wait())
    }

    /// Positions, parents first: each root followed by its subtree, depth first.
    pub fn preorder(&self) -> &[usize] {
        &self.preorder
    }

    /// How far below its root the span at `position` is.
    pub fn depth(&self, position: usize) -> usize {
        self.depths[position]
    }

    /// Positions of the spans with this id in this trace, lowest first (more than one only in
    /// malformed or duplicated input).
    fn with_id<'s>(&'s self, span_id: &SpanId, trace_id: &'s TraceId) -> impl Iterator<Item = usize> + 's {
        let id = u64::from_be_bytes(*span_id);
        let first = self.by_id.partition_point(|&(other, _)| other < id);
        self.by_id[first..]
            .iter()
            .take_while(move |&&(other, _)| other == id)
            .map(|&(_, p)| p)
            .filter(move |&p| self.spans[p].trace_id == *trace_id)
    }

    /// Fills `preorder` and `depths`. A span whose ancestors never reach a root sits on or below a
    /// parent cycle (malformed input); the cycle is cut at the first span found on it, which then
    /// counts as a root, so every span is placed exactly once.
    fn arrange(&mut self) {
        let n = self.spans.len();
        let children = Children::new(&self.parents);
        let mut depths = vec![usize::MAX; n];
        let mut preorder = Vec::with_capacity(n);
        for root in 0..n {
            if self.parents[root].is_none() {
                children.walk(root, &self.parents, &mut depths, &mut preorder);
            }
        }
        if preorder.len() < n {
            let mut walked = vec![usize::MAX; n];
            for start in 0..n {
                if depths[start] != usize::MAX {
                    continue;
                }
                let mut at = start;
                while walked[at] != start {
                    walked[at] = start;
                    // Unplaced spans never have a placed or missing parent: it would have placed them.
                    let Some(parent) = self.parents[at] else { break };
                    at = parent;
                }
                self.parents[at] = None;
                children.walk(at, &self.parents, &mut depths, &mut preorder);
            }
        }
        self.preorder = preorder;
        self.depths = depths;
    }

    /// Positions selected by a chain of compounds, in start-time order, clnrm's own spans included.
    /// An empty chain selects nothing.
    pub fn select_positions(&self, compounds: &[Compound]) -> Vec<usize> {
        self.select_among(compounds, true)
    }

    /// The spans a `[[expect.span]]` is about, selected by a chain of compounds: those of the system
    /// under test. clnrm's own spans (a step named `charge` for a selector meant for the system's
    /// `charge`) would let it hold with the system doing nothing; they serve only as ancestors in
    /// the chain, and as subjects when the last compound asks for them by `service.name="clnrm"`.
    pub(super) fn select_subjects(&self, compounds: &[Compound]) -> Vec<usize> {
        let asks_for_own = compounds.last().is_some_and(|last| {
            last.conditions
                .iter()
                .any(|c| &*c.key == "service.name" && matches!(&c.test, Test::Eq(Value::Str(s)) if s == SERVICE_NAME))
        });
        self.select_among(compounds, asks_for_own)
    }

    fn select_among(&self, compounds: &[Compound], own_subjects: bool) -> Vec<usize> {
        let mut scratch = String::new();
        let mut selected = Vec::new();
        for (i, compound) in compounds.iter().enumerate() {
            let checks = Check::compile(compound);
            let below = (i > 0).then(|| self.below(&selected));
            let subject = i + 1 == compounds.len();
            let matches = |p: usize| {
                below.as_ref().is_none_or(|below| below[p])
                    && (own_subjects || !subject || !self.spans[p].is_own())
                    && checks.iter().all(|c| c.holds(self.spans[p], &mut scratch))
            };
            selected = match exact_name(compound) {
                Some(name) => pick(self.named(name).iter().copied(), matches, compound.pseudo),
                None => pick(0..self.len(), matches, compound.pseudo),
            };
            if selected.is_empty() {
                break;
            }
        }
        selected
    }

    /// Positions of the spans named `name`, in start order. Most selectors name their spans, and
    /// this turns a pass over the whole trace into one over those spans.
    fn named(&self, name: &str) -> &[usize] {
        let by_name = self.by_name.get_or_init(|| {
            let mut by_name: HashMap<&str, Vec<usize>, _> = HashMap::default();
            for (p, span) in self.spans.iter().enumerate() {
                by_name.entry(&span.name).or_default().push(p);
            }
            by_name
        });
        by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// For each position, whether some proper ancestor is in `set`.
    pub(super) fn below(&self, set: &[usize]) -> Vec<bool> {
        let mut in_set = vec![false; self.len()];
        for &p in set {
            in_set[p] = true;
        }
        let mut below = vec![false; self.len()];
        for &p in &self.preorder {
            if let Some(parent) = self.parents[p] {
                below[p] = in_set[parent] || below[parent];
            }
        }
        below
    }
}

/// rustc's FxHash, for the name index: several times faster than the default SipHash on short
/// keys. It does not resist crafted collisions, which costs nothing here: a trace full of colliding
/// names would only make its own check slower.
#[derive(Default)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Children of each span by parent position, in start-time order (one flat list plus offsets, so
/// building it allocates twice whatever the trace's size).
struct Children {
    offsets: Vec<usize>,
    list: Vec<usize>,
}

impl Children {
    fn new(parents: &[Option<usize>]) -> Self {
        let mut offsets = vec![0; parents.len() + 1];
        for &parent in parents.iter().flatten() {
            offsets[parent + 1] += 1;
        }
        for i in 0..parents.len() {
            offsets[i + 1] += offsets[i];
        }
        let mut list = vec![0; offsets[parents.len()]];
        let mut next = offsets.clone();
        for (child, parent) in parents.iter().enumerate() {
            if let Some(parent) = *parent {
                list[next[parent]] = child;
                next[parent] += 1;
            }
        }
        Children { offsets, list }
    }

    /// Appends `root` and its subtree to `preorder`, recording depths. Follows only links that are
    /// still in `parents`, so a span cut off a cycle is not reached again through its old parent.
    fn walk(&self, root: usize, parents: &[Option<usize>], depths: &mut [usize], preorder: &mut Vec<usize>) {
        let mut stack = vec![(root, 0)];
        while let Some((p, depth)) = stack.pop() {
            depths[p] = depth;
            preorder.push(p);
            let children = &self.list[self.offsets[p]..self.offsets[p + 1]];
            stack.extend(children.iter().rev().filter(|&&c| parents[c] == Some(p)).map(|&c| (c, depth + 1)));
        }
    }
}

/// The spans `selector` selects in the trace, in start-time order.
pub fn select<'a>(index: &TraceIndex<'a>, selector: &Selector) -> Vec<&'a Span> {
    index.select_positions(&selector.compounds).into_iter().map(|p| index.spans[p]).collect()
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
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::expect::selector::parse;
    use crate::telemetry::span::{Event, Resource, SpanKind, SpanStatus};

    /// Builds spans for tests: ids are small numbers, times are milliseconds from 0.
    pub(crate) struct SpanBuilder(Span);

    /// A span with id `id` (parent `parent`, 0 for none) from service `service`, lasting `start..end` ms.
    /// Spans of service `clnrm` are built as clnrm's tracer makes them: its own.
    pub(crate) fn span(id: u64, parent: u64, name: &str, service: &str, start: u64, end: u64) -> SpanBuilder {
        let resource = Resource {
            attributes: vec![("service.name".into(), AttrValue::Str(service.into()))],
            own: service == crate::telemetry::own::SERVICE_NAME,
        };
        SpanBuilder(Span {
            trace_id: [7; 16],
            span_id: id.to_be_bytes(),
            parent_span_id: (parent != 0).then_some(parent.to_be_bytes()),
            name: name.into(),
            kind: SpanKind::Internal,
            start_unix_nano: start * 1_000_000,
            end_unix_nano: end * 1_000_000,
            status: SpanStatus::Unset,
            status_message: "".into(),
            attributes: Vec::new(),
            events: Vec::new(),
            resource: Arc::new(resource),
        })
    }

    impl SpanBuilder {
        pub(crate) fn kind(mut self, kind: SpanKind) -> Self {
            self.0.kind = kind;
            self
        }

        pub(crate) fn status(mut self, status: SpanStatus, message: &str) -> Self {
            self.0.status = status;
            self.0.status_message = message.into();
            self
        }

        pub(crate) fn attr(mut self, key: &str, value: AttrValue) -> Self {
            self.0.attributes.push((key.into(), value));
            self
        }

        pub(crate) fn str(self, key: &str, value: &str) -> Self {
            self.attr(key, AttrValue::Str(value.into()))
        }

        pub(crate) fn event(mut self, name: &str) -> Self {
            self.0.events.push(Event { name: name.into(), time_unix_nano: 0, attributes: Vec::new() });
            self
        }

        /// Not clnrm's own, whatever its service name: a program exporting as `clnrm`.
        pub(crate) fn impostor(mut self) -> Self {
            let attributes = self.0.resource.attributes.clone();
            self.0.resource = Arc::new(Resource { attributes, own: false });
            self
        }

        pub(crate) fn build(self) -> Span {
            self.0
        }
    }

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

    /// scenario → step → checkout → reserve, charge → db; plus a second step with its own charge.
    pub(in crate::expect) fn shop() -> Vec<Span> {
        vec![
            span(9, 5, "db", "db", 12, 13).build(),
            span(1, 0, "scenario", "clnrm", 0, 100).build(),
            span(2, 1, "step one", "clnrm", 1, 50).build(),
            span(3, 2, "checkout", "shop", 2, 40).kind(SpanKind::Server).build(),
            span(4, 3, "reserve", "shop", 3, 10).build(),
            span(5, 3, "charge", "pay", 11, 30).kind(SpanKind::Client).build(),
            span(6, 1, "step two", "clnrm", 60, 90).build(),
            span(7, 6, "charge", "pay", 61, 70).kind(SpanKind::Client).build(),
            span(8, 6, "charge", "pay", 71, 80).kind(SpanKind::Client).build(),
        ]
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
    fn index_orders_parents_first_and_survives_malformed_links() {
        let mut spans = shop();
        // Same start as its parent but shorter, and received first: still after it.
        spans.insert(0, span(10, 9, "db child", "db", 12, 12).build());
        // A two-span cycle with a child, a self-parent, and an orphan.
        spans.push(span(20, 21, "cycle a", "x", 5, 6).build());
        spans.push(span(21, 20, "cycle b", "x", 5, 7).build());
        spans.push(span(22, 20, "below cycle", "x", 4, 5).build());
        spans.push(span(23, 23, "self", "x", 1, 2).build());
        spans.push(span(24, 99, "orphan", "x", 1, 2).build());
        let index = TraceIndex::new(&spans);
        assert_eq!(index.preorder().len(), spans.len());
        let mut seen = vec![false; index.len()];
        for &p in index.preorder() {
            assert!(!seen[p], "placed twice");
            seen[p] = true;
            if let Some(parent) = index.parent(p) {
                assert!(seen[parent], "child before parent");
                assert_eq!(index.depth(p), index.depth(parent) + 1);
            } else {
                assert_eq!(index.depth(p), 0);
            }
        }
        let at = |name: &str| index.spans().iter().position(|s| &*s.name == name).expect("span");
        assert_eq!(index.parent(at("db child")), Some(at("db")));
        // Starting together, the longer span comes first.
        assert!(at("db") < at("db child"));
        assert_eq!(index.parent(at("self")), None);
        assert_eq!(index.parent(at("orphan")), None);
        assert_eq!(index.depth(at("db")), 4);
        assert_eq!(index.ancestry(at("db")).count(), 5);
        // The cycle is cut at the first of its spans reached from below, which becomes a root.
        assert_eq!(index.parent(at("cycle a")), None);
        assert_eq!(index.parent(at("cycle b")), Some(at("cycle a")));
        assert_eq!(names(&spans, "span[name=\"cycle a\"] span"), ["below cycle", "cycle b"]);
        assert_eq!(names(&spans, "span[name=\"db\"] span").first().map(String::as_str), Some("db child"));
    }

    #[test]
    fn parents_are_found_within_the_same_trace_only() {
        let mut other = span(2, 1, "elsewhere", "x", 1, 2).build();
        other.trace_id = [8; 16];
        let spans = vec![span(1, 0, "root", "x", 0, 10).build(), other];
        let index = TraceIndex::new(&spans);
        assert!(index.parent(1).is_none());
        assert!(names(&spans, "span[name=\"root\"] span").is_empty());
    }

    #[test]
    fn position_is_by_identity() {
        let spans = shop();
        let index = TraceIndex::new(&spans);
        for (p, span) in index.spans().iter().enumerate() {
            assert_eq!(index.position(span), Some(p));
        }
        let copy = spans[0].clone();
        assert_eq!(index.position(&copy), None);
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
