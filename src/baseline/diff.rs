//! What changed between a baseline and a run (or two baselines): spans matched by structure, not
//! by id, and each difference named.
//!
//! Matching goes down the tree from matched parents. Children are grouped by name; within a group,
//! spans whose whole subtree is alike in everything but timing pair first, then spans alike
//! themselves (service, kind, status, attributes, events), then the remaining ones in canonical
//! order (reported as changed); what is left is added or removed. Pairing whole subtrees first
//! keeps hundreds of identical-looking requests paired with their own counterparts when a few of
//! them change. Children alike all the way down and in the same order on both sides (most of them,
//! when little changed) pair in order without grouping, as the groups would pair them. Under one
//! parent, a removed and an added span of the same service and kind are a rename. Finally a
//! removed and an added span alike in everything, anywhere in the tree, are one span that moved to
//! another parent.
//!
//! Likeness is compared by 64-bit hashes, computed once per span. Grouping, pairing and moves are
//! linear in the spans (hashing, or sorting within a large group), so a diff costs O(n log n) at
//! most, with the sorting in normalization; only renames compare each span left unmatched under a
//! parent with the others left there.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use super::normalize::{Attrs, Baseline, NormSpan, split_path, without_number};
use crate::telemetry::span::{AttrValue, SpanKind, SpanStatus};

/// The differences between `old` and `new`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diff {
    /// Spans of both, matched: index into `old.spans`, into `new.spans`, and what differs.
    pub matched: Vec<Matched>,
    /// Indexes into `new.spans` of spans the old one lacks.
    pub added: Vec<usize>,
    /// Indexes into `old.spans` of spans the new one lacks.
    pub removed: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    pub old: usize,
    pub new: usize,
    pub changes: Vec<Change>,
    /// Median duration, old and new.
    pub duration: (Duration, Duration),
}

/// One way a matched span differs (attribute values as text: what a reviewer and the run record
/// read).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// Same place, another name.
    Renamed {
        old: String,
        new: String,
    },
    /// Same span, below another parent (paths of the parents).
    Moved {
        old: String,
        new: String,
    },
    Service {
        old: String,
        new: String,
    },
    Kind {
        old: SpanKind,
        new: SpanKind,
    },
    Status {
        old: SpanStatus,
        new: SpanStatus,
    },
    /// An attribute added (`old` none), removed (`new` none) or changed.
    Attr {
        key: String,
        old: Option<String>,
        new: Option<String>,
    },
    Events {
        old: Vec<String>,
        new: Vec<String>,
    },
}

impl Diff {
    /// Whether nothing but durations differs.
    pub fn is_same_shape(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.matched.iter().all(|m| m.changes.is_empty())
    }
}

/// Compares two normalized traces.
pub fn diff(old: &Baseline, new: &Baseline) -> Diff {
    let (old_side, new_side) = (Side::of(old), Side::of(new));
    let mut out = Diff::default();
    let mut matching = Matching::default();
    // Level by level from the roots: (old children, new children) of a matched pair.
    let mut queue: VecDeque<(&[usize], &[usize])> = VecDeque::from([(&old_side.roots[..], &new_side.roots[..])]);
    while let Some((old_children, new_children)) = queue.pop_front() {
        let first = matching.pairs.len();
        match_siblings(&old_side, old_children, &new_side, new_children, &mut matching);
        for &(o, n) in &matching.pairs[first..] {
            queue.push_back((old_side.children(o), new_side.children(n)));
        }
    }
    let Matching { mut pairs, lost: unmatched_old, found: unmatched_new } = matching;
    // Spans alike in everything that were not matched in place moved to another parent.
    let mut by_signature: HashMap<u64, VecDeque<usize>, Fx> = HashMap::default();
    for &n in &unmatched_new {
        by_signature.entry(new_side.own[n]).or_default().push_back(n);
    }
    let mut moved_new = vec![false; new.spans.len()];
    for &o in &unmatched_old {
        match by_signature.get_mut(&old_side.own[o]).and_then(VecDeque::pop_front) {
            Some(n) => {
                moved_new[n] = true;
                pairs.push((o, n));
            }
            None => out.removed.push(o),
        }
    }
    out.added = unmatched_new.into_iter().filter(|&n| !moved_new[n]).collect();
    out.removed.sort_unstable();
    out.added.sort_unstable();
    // Each old span is in one pair at most: in the order of the old spans, without sorting.
    let mut counterpart = vec![None; old.spans.len()];
    for &(o, n) in &pairs {
        counterpart[o] = Some(n);
    }
    out.matched = (0..old.spans.len())
        .filter_map(|o| Some((o, counterpart[o]?)))
        .map(|(o, n)| {
            let (a, b) = (&old.spans[o], &new.spans[n]);
            // Moved: its parent now is not the old parent's counterpart (a renamed parent is not a move).
            let moved = old_side.parent[o].and_then(|p| counterpart[p]) != new_side.parent[n];
            let names = (old_side.names[o], new_side.names[n]);
            Matched {
                old: o,
                new: n,
                changes: changes(a, b, names, moved),
                duration: (a.duration.median, b.duration.median),
            }
        })
        .collect();
    out
}

/// FxHash (rustc's hasher): per 8-byte word a rotate, an xor and a multiply, a few cycles where
/// SipHash takes dozens. What it hashes comes from the traces compared, not from an adversary
/// flooding a server, so SipHash's protection buys nothing here.
#[derive(Default)]
struct FxHasher {
    hash: u64,
}

type Fx = BuildHasherDefault<FxHasher>;

impl FxHasher {
    fn word(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.word(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0; 8];
            last[..rest.len()].copy_from_slice(rest);
            // With its length in the byte left free, so that trailing zero bytes count.
            self.word(u64::from_le_bytes(last) | (rest.len() as u64) << 56);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.word(n);
    }

    fn finish(&self) -> u64 {
        // The multiply leaves the low bits, which hash tables take for buckets, the weakest.
        self.hash.rotate_left(26)
    }
}

/// One side of a diff: the tree, and per span its name and a hash of what it is and of its whole
/// subtree.
struct Side<'a> {
    spans: &'a [NormSpan],
    /// The span's [`name`].
    names: Vec<&'a str>,
    roots: Vec<usize>,
    /// The children of span `i` are `child_list[child_start[i]..child_start[i + 1]]`, in order:
    /// one list for all spans rather than a vector each.
    child_start: Vec<usize>,
    child_list: Vec<usize>,
    parent: Vec<Option<usize>>,
    /// Hash of the span's [`signature`].
    own: Vec<u64>,
    /// Hash of the span's signature and its children's subtree hashes, in order.
    subtree: Vec<u64>,
}

impl<'a> Side<'a> {
    fn of(baseline: &'a Baseline) -> Side<'a> {
        let spans = &baseline.spans[..];
        let n = spans.len();
        let mut parents = Parents::default();
        let mut names = Vec::with_capacity(n);
        let mut own = Vec::with_capacity(n);
        let mut roots = Vec::new();
        let mut parent = vec![None; n];
        let mut child_start = vec![0; n + 1];
        let mut text = String::new();
        for (i, span) in spans.iter().enumerate() {
            let (up, segment) = split_path(&span.path).map_or((None, &span.path[..]), |(up, s)| (Some(up), s));
            let up = parents.find(spans, i, up);
            names.push(without_number(segment));
            own.push(signature(without_number(segment), span, &mut text));
            match up {
                Some(p) => {
                    parent[i] = Some(p);
                    child_start[p + 1] += 1;
                }
                None => roots.push(i),
            }
        }
        for i in 0..n {
            child_start[i + 1] += child_start[i];
        }
        let mut child_list = vec![0; child_start[n]];
        let mut next = child_start.clone();
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = *p {
                child_list[next[p]] = i;
                next[p] += 1;
            }
        }
        let mut side = Side { spans, names, roots, child_start, child_list, parent, own, subtree: vec![0; n] };
        // Spans come parents first, so going backwards children are done before their parent.
        for i in (0..n).rev() {
            let mut hasher = FxHasher::default();
            hasher.write_u64(side.own[i]);
            for &child in side.children(i) {
                hasher.write_u64(side.subtree[child]);
            }
            side.subtree[i] = hasher.finish();
        }
        side
    }

    fn children(&self, i: usize) -> &[usize] {
        &self.child_list[self.child_start[i]..self.child_start[i + 1]]
    }
}

/// Finds each span's parent. Spans are depth first (normalization writes them so and reading a
/// file checks it: see [`Baseline::spans`]), so a span's parent is the span before it or one of
/// that span's ancestors, which a stack of them finds without hashing a single path.
#[derive(Default)]
struct Parents {
    /// The previous span and its ancestors.
    stack: Vec<usize>,
}

impl Parents {
    /// The parent of `spans[i]`, whose path's parent is `up` (`None`: it is a root).
    fn find(&mut self, spans: &[NormSpan], i: usize, up: Option<&str>) -> Option<usize> {
        match up {
            Some(up) => {
                while self.stack.last().is_some_and(|&top| spans[top].path != up) {
                    self.stack.pop();
                }
            }
            None => self.stack.clear(),
        }
        let parent = self.stack.last().copied();
        self.stack.push(i);
        parent
    }
}

/// What matching has found so far: pairs (old, new), and the spans of each side it left alone.
#[derive(Default)]
struct Matching {
    pairs: Vec<(usize, usize)>,
    lost: Vec<usize>,
    found: Vec<usize>,
}

/// Up to this many, scanning a list finds things faster than hashing or sorting it.
const SMALL: usize = 16;

/// Children of one name under one parent: old ones, new ones.
struct Group<'a> {
    name: &'a str,
    olds: Vec<usize>,
    news: Vec<usize>,
}

/// Matches siblings (see the module comment), adding to `matching`.
fn match_siblings(old: &Side, old_children: &[usize], new: &Side, new_children: &[usize], matching: &mut Matching) {
    if old_children.len() == new_children.len()
        && old_children.iter().zip(new_children).all(|(&o, &n)| old.subtree[o] == new.subtree[n])
    {
        matching.pairs.extend(old_children.iter().copied().zip(new_children.iter().copied()));
        return;
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<&str, usize, Fx> = HashMap::default();
    for (side, children, is_old) in [(old, old_children, true), (new, new_children, false)] {
        for &i in children {
            let g = group_of(side.names[i], &mut groups, &mut index);
            let group = &mut groups[g];
            if is_old { group.olds.push(i) } else { group.news.push(i) }
        }
    }
    let pairs = &mut matching.pairs;
    let (mut lost, mut found) = (Vec::new(), Vec::new());
    for Group { mut olds, mut news, .. } in groups {
        pair_by(old, &mut olds, new, &mut news, |s, i| s.subtree[i], pairs);
        pair_by(old, &mut olds, new, &mut news, |s, i| s.own[i], pairs);
        // The others in canonical order: changed where both sides have one.
        let common = olds.len().min(news.len());
        pairs.extend(olds.iter().copied().zip(news.iter().copied()));
        lost.extend_from_slice(&olds[common..]);
        found.extend_from_slice(&news[common..]);
    }
    // Renames: what is left under this parent, of the same service and kind, in order.
    let mut renamed_new = vec![false; found.len()];
    for o in lost {
        let a = &old.spans[o];
        let rename = found
            .iter()
            .enumerate()
            .filter(|(k, _)| !renamed_new[*k])
            .find(|(_, n)| new.spans[**n].service == a.service && new.spans[**n].kind == a.kind);
        match rename {
            Some((k, &n)) => {
                renamed_new[k] = true;
                pairs.push((o, n));
            }
            None => matching.lost.push(o),
        }
    }
    matching.found.extend(found.into_iter().zip(renamed_new).filter(|(_, r)| !r).map(|(n, _)| n));
}

/// The index in `groups` of the group named `name`, added if new: found by a scan while there are
/// few groups, through `index` once there are many.
fn group_of<'a>(name: &'a str, groups: &mut Vec<Group<'a>>, index: &mut HashMap<&'a str, usize, Fx>) -> usize {
    if groups.len() < SMALL {
        if let Some(g) = groups.iter().position(|g| g.name == name) {
            return g;
        }
    } else {
        if index.is_empty() {
            index.extend(groups.iter().enumerate().map(|(g, group)| (group.name, g)));
        }
        if let Some(&g) = index.get(name) {
            return g;
        }
        index.insert(name, groups.len());
    }
    groups.push(Group { name, olds: Vec::new(), news: Vec::new() });
    groups.len() - 1
}

/// Marks a span of `news` as paired.
const TAKEN: usize = usize::MAX;

/// Pairs each of `olds` with the first unpaired of `news` that has the same `key`, in order; adds
/// the pairs to `pairs` and leaves in `olds` and `news` what is left (in order).
fn pair_by(
    old: &Side,
    olds: &mut Vec<usize>,
    new: &Side,
    news: &mut Vec<usize>,
    key: fn(&Side, usize) -> u64,
    pairs: &mut Vec<(usize, usize)>,
) {
    if olds.is_empty() || news.is_empty() {
        return;
    }
    let mut pair = |o: usize, j: usize, news: &mut [usize]| {
        pairs.push((o, news[j]));
        news[j] = TAKEN;
    };
    if olds.len().min(news.len()) < SMALL {
        // Few on one side: scanning the other for each is linear in it.
        olds.retain(|&o| {
            let wanted = key(old, o);
            match news.iter().position(|&n| n != TAKEN && key(new, n) == wanted) {
                Some(j) => {
                    pair(o, j, news);
                    false
                }
                None => true,
            }
        });
    } else {
        // Sorted by key, then by place: each key's news in order, with the next unpaired one in
        // `next` at the first of them.
        let mut by_key: Vec<(u64, usize)> = news.iter().enumerate().map(|(j, &n)| (key(new, n), j)).collect();
        by_key.sort_unstable();
        let mut next: Vec<usize> = (0..by_key.len()).collect();
        olds.retain(|&o| {
            let wanted = key(old, o);
            let first = by_key.partition_point(|&(k, _)| k < wanted);
            match by_key.get(next.get(first).copied().unwrap_or(first)) {
                Some(&(k, j)) if k == wanted => {
                    next[first] += 1;
                    pair(o, j, news);
                    false
                }
                _ => true,
            }
        });
    }
    news.retain(|&n| n != TAKEN);
}

/// Hash of everything about a span but its place and timing: of the text
/// `name␁service␁kind␁status`, then `␁key=value` per attribute and `␂event` per event. The text is
/// written into `text`, one buffer for all spans, and hashed whole.
fn signature(name: &str, span: &NormSpan, text: &mut String) -> u64 {
    text.clear();
    for part in [name, "\u{1}", &span.service, "\u{1}", span.kind.as_str(), "\u{1}", span.status.as_str()] {
        text.push_str(part);
    }
    for (key, value) in &span.attrs {
        text.push('\u{1}');
        text.push_str(key);
        text.push('=');
        match value {
            AttrValue::Str(s) => text.push_str(s),
            _ => {
                let _ = write!(text, "{value}");
            }
        }
    }
    for event in &span.events {
        text.push('\u{2}');
        text.push_str(event);
    }
    let mut hasher = FxHasher::default();
    hasher.write(text.as_bytes());
    hasher.finish()
}

/// How `a` (old) and `b` (new), named `names`, differ, timing aside; `moved` when `b` is below
/// another parent.
fn changes(a: &NormSpan, b: &NormSpan, names: (&str, &str), moved: bool) -> Vec<Change> {
    let mut out = Vec::new();
    if names.0 != names.1 {
        out.push(Change::Renamed { old: names.0.to_string(), new: names.1.to_string() });
    }
    if moved {
        let parent = |s: &NormSpan| split_path(&s.path).map_or(String::new(), |(p, _)| p.to_string());
        out.push(Change::Moved { old: parent(a), new: parent(b) });
    }
    if a.service != b.service {
        out.push(Change::Service { old: a.service.clone(), new: b.service.clone() });
    }
    if a.kind != b.kind {
        out.push(Change::Kind { old: a.kind, new: b.kind });
    }
    if a.status != b.status {
        out.push(Change::Status { old: a.status, new: b.status });
    }
    // Most matched spans have the same attributes: one comparison says so.
    if a.attrs != b.attrs {
        attr_changes(&a.attrs, &b.attrs, &mut out);
    }
    if a.events != b.events {
        out.push(Change::Events { old: a.events.clone(), new: b.events.clone() });
    }
    out
}

/// The attributes added, removed or changed from `a` to `b`, by key: both are sorted by key, so
/// one walk through the two finds them.
fn attr_changes(a: &Attrs, b: &Attrs, out: &mut Vec<Change>) {
    let (mut olds, mut news) = (a.iter().peekable(), b.iter().peekable());
    loop {
        let (old, new) = match (olds.peek(), news.peek()) {
            (None, None) => return,
            (Some(_), None) => (olds.next(), None),
            (None, Some(_)) => (None, news.next()),
            (Some((x, _)), Some((y, _))) => match x.cmp(y) {
                std::cmp::Ordering::Less => (olds.next(), None),
                std::cmp::Ordering::Greater => (None, news.next()),
                std::cmp::Ordering::Equal => (olds.next(), news.next()),
            },
        };
        let (x, y) = (old.map(|(_, v)| v), new.map(|(_, v)| v));
        if x != y {
            let key = old.or(new).map_or("", |(k, _)| k);
            out.push(Change::Attr { key: key.to_string(), old: x.map(AttrValue::text), new: y.map(AttrValue::text) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::normalize::{Recorded, normalize};
    use crate::telemetry::span::Span;
    use crate::telemetry::span::tests::{SpanBuilder, span};

    /// checkout → place order → POST /orders (server) → reserve item ×2, charge; db below charge.
    fn shop(edit: impl FnOnce(&mut Vec<SpanBuilder>)) -> Baseline {
        let mut spans = vec![
            span(1, 0, "checkout", "clnrm", 0, 100),
            span(2, 1, "place order", "clnrm", 1, 60),
            span(3, 2, "POST /orders", "shop", 2, 50)
                .kind(SpanKind::Server)
                .attr("http.response.status_code", AttrValue::Int(200)),
            span(4, 3, "reserve item", "shop", 3, 6).attr("item", AttrValue::Int(1)),
            span(5, 3, "reserve item", "shop", 3, 7).attr("item", AttrValue::Int(2)),
            span(6, 3, "charge", "pay", 8, 20).kind(SpanKind::Client),
            span(7, 6, "db.insert", "pay", 9, 12),
        ];
        edit(&mut spans);
        let spans: Vec<Span> = spans.into_iter().map(SpanBuilder::build).collect();
        normalize("checkout", &[Recorded::plain(&spans)])
    }

    fn paths(b: &Baseline, indexes: &[usize]) -> Vec<String> {
        indexes.iter().map(|&i| b.spans[i].path.clone()).collect()
    }

    fn changed(d: &Diff) -> Vec<&Change> {
        d.matched.iter().flat_map(|m| &m.changes).collect()
    }

    #[test]
    fn identical_traces_and_reordered_siblings_show_no_difference() {
        let old = shop(|_| {});
        let reordered = shop(|spans| {
            spans.swap(3, 4);
            spans.reverse();
        });
        let d = diff(&old, &reordered);
        assert!(d.is_same_shape(), "{d:?}");
        assert_eq!(d.matched.len(), 7);
    }

    #[test]
    fn added_and_removed_spans() {
        let old = shop(|_| {});
        let new = shop(|spans| {
            spans.remove(6);
            spans.push(span(8, 3, "reserve item", "shop", 3, 8).attr("item", AttrValue::Int(3)));
        });
        let d = diff(&old, &new);
        assert_eq!(paths(&old, &d.removed), ["checkout › place order › POST /orders › charge › db.insert"]);
        assert_eq!(paths(&new, &d.added), ["checkout › place order › POST /orders › reserve item#3"]);
        assert!(changed(&d).is_empty(), "{d:?}");
    }

    #[test]
    fn a_renamed_span_is_one_change_not_an_addition_and_a_removal() {
        let old = shop(|_| {});
        let new = shop(|spans| spans[5] = span(6, 3, "charge card", "pay", 8, 20).kind(SpanKind::Client));
        let d = diff(&old, &new);
        assert!(d.added.is_empty() && d.removed.is_empty(), "{d:?}");
        assert_eq!(changed(&d), [&Change::Renamed { old: "charge".into(), new: "charge card".into() }]);
        // Its child follows it.
        let db = d.matched.iter().find(|m| old.spans[m.old].path.ends_with("db.insert")).unwrap();
        assert!(new.spans[db.new].path.ends_with("charge card › db.insert"));
    }

    #[test]
    fn a_span_under_another_parent_moved() {
        let old = shop(|_| {});
        let new = shop(|spans| spans[6] = span(7, 3, "db.insert", "pay", 9, 12));
        let d = diff(&old, &new);
        assert!(d.added.is_empty() && d.removed.is_empty(), "{d:?}");
        assert_eq!(
            changed(&d),
            [&Change::Moved {
                old: "checkout › place order › POST /orders › charge".into(),
                new: "checkout › place order › POST /orders".into()
            }]
        );
    }

    #[test]
    fn changed_attributes_status_and_kind() {
        let old = shop(|_| {});
        let new = shop(|spans| {
            spans[2] = span(3, 2, "POST /orders", "shop", 2, 50)
                .kind(SpanKind::Server)
                .status(SpanStatus::Error, "boom")
                .attr("http.response.status_code", AttrValue::Int(500))
                .str("error.type", "500");
            spans[5] = span(6, 3, "charge", "pay", 8, 20).kind(SpanKind::Internal);
        });
        let d = diff(&old, &new);
        assert!(d.added.is_empty() && d.removed.is_empty());
        assert_eq!(
            changed(&d),
            [
                &Change::Status { old: SpanStatus::Unset, new: SpanStatus::Error },
                &Change::Attr { key: "error.type".into(), old: None, new: Some("500".into()) },
                &Change::Attr {
                    key: "http.response.status_code".into(),
                    old: Some("200".into()),
                    new: Some("500".into())
                },
                &Change::Kind { old: SpanKind::Client, new: SpanKind::Internal },
            ]
        );
    }

    #[test]
    fn an_item_added_in_the_middle_of_alike_siblings_does_not_shift_the_others() {
        let old = shop(|_| {});
        // item 3 sorts after 1 and 2, but item 0 sorts first and renumbers the others' paths.
        let new = shop(|spans| spans.push(span(8, 3, "reserve item", "shop", 3, 8).attr("item", AttrValue::Int(0))));
        let d = diff(&old, &new);
        assert_eq!(paths(&new, &d.added), ["checkout › place order › POST /orders › reserve item#1"]);
        assert!(d.removed.is_empty() && changed(&d).is_empty(), "{d:?}");
    }

    #[test]
    fn durations_of_matched_spans_are_reported() {
        let old = shop(|_| {});
        let new = shop(|spans| spans[5] = span(6, 3, "charge", "pay", 8, 40).kind(SpanKind::Client));
        let d = diff(&old, &new);
        let charge = d.matched.iter().find(|m| old.spans[m.old].path.ends_with("› charge")).unwrap();
        assert_eq!(charge.duration, (Duration::from_millis(12), Duration::from_millis(32)));
    }
}
