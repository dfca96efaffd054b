//! The spans of one trace, indexed by position: each span's parent within the trace, a
//! parents-first order with depths, and lookups by span id and by name. Selectors run over it
//! (`expect::matcher`); failure messages draw it as a tree; baselines normalize and redact by it.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use crate::telemetry::span::{Span, SpanId, TraceId};

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
    /// `expect::matcher::select` returns them); `None` for any other span.
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

    /// Positions of the spans named `name`, in start order. Most selectors name their spans, and
    /// this turns a pass over the whole trace into one over those spans.
    pub fn named(&self, name: &str) -> &[usize] {
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
    pub fn below(&self, set: &[usize]) -> Vec<bool> {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::telemetry::span::SpanKind;
    use crate::telemetry::span::tests::span;

    /// scenario → step → checkout → reserve, charge → db; plus a second step with its own charge.
    pub(crate) fn shop() -> Vec<Span> {
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

    /// `shop` with malformed links: a child received before its parent, a parent cycle, a
    /// self-parent, and an orphan.
    pub(crate) fn malformed() -> Vec<Span> {
        let mut spans = shop();
        // Same start as its parent but shorter, and received first: still after it.
        spans.insert(0, span(10, 9, "db child", "db", 12, 12).build());
        // A two-span cycle with a child, a self-parent, and an orphan.
        spans.push(span(20, 21, "cycle a", "x", 5, 6).build());
        spans.push(span(21, 20, "cycle b", "x", 5, 7).build());
        spans.push(span(22, 20, "below cycle", "x", 4, 5).build());
        spans.push(span(23, 23, "self", "x", 1, 2).build());
        spans.push(span(24, 99, "orphan", "x", 1, 2).build());
        spans
    }

    #[test]
    fn index_orders_parents_first_and_survives_malformed_links() {
        let spans = malformed();
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
    }

    #[test]
    fn parents_are_found_within_the_same_trace_only() {
        let mut other = span(2, 1, "elsewhere", "x", 1, 2).build();
        other.trace_id = [8; 16];
        let spans = vec![span(1, 0, "root", "x", 0, 10).build(), other];
        let index = TraceIndex::new(&spans);
        assert!(index.parent(1).is_none());
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
}
