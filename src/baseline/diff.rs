//! What changed between a baseline and a run (or two baselines): spans matched by structure, not
//! by id, and each difference named.
//!
//! Matching goes down the tree from matched parents. Children are grouped by name; within a group,
//! spans whose whole subtree is alike in everything but timing pair first, then spans alike
//! themselves (service, kind, status, attributes, events), then the remaining ones in canonical
//! order (reported as changed); what is left is added or removed. Pairing whole subtrees first
//! keeps hundreds of identical-looking requests paired with their own counterparts when a few of
//! them change. Under one parent, a removed and an added span of the same service and kind
//! are a rename. Finally a removed and an added span alike in everything, anywhere in the tree,
//! are one span that moved to another parent. Every step is linear in the spans (with hashing), so
//! a diff costs O(n log n) at most, with the sorting in normalization.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use super::normalize::{Baseline, NormSpan, SEPARATOR};
use crate::telemetry::span::AttrValue;

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

/// One way a matched span differs.
#[derive(Debug, Clone, PartialEq)]
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
        old: &'static str,
        new: &'static str,
    },
    Status {
        old: &'static str,
        new: &'static str,
    },
    /// An attribute added (`old` none), removed (`new` none) or changed.
    Attr {
        key: String,
        old: Option<AttrValue>,
        new: Option<AttrValue>,
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
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut unmatched_old: Vec<usize> = Vec::new();
    let mut unmatched_new: Vec<usize> = Vec::new();
    // Level by level from the roots: (old children, new children) of a matched pair.
    let mut queue: VecDeque<(&[usize], &[usize])> = VecDeque::from([(&old_side.roots[..], &new_side.roots[..])]);
    while let Some((old_children, new_children)) = queue.pop_front() {
        let (matched, lost, found) = match_siblings(&old_side, old_children, &new_side, new_children);
        for &(o, n) in &matched {
            queue.push_back((&old_side.children[o], &new_side.children[n]));
        }
        pairs.extend(matched);
        unmatched_old.extend(lost);
        unmatched_new.extend(found);
    }
    // Spans alike in everything that were not matched in place moved to another parent.
    let mut by_signature: HashMap<u64, VecDeque<usize>> = HashMap::new();
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
    pairs.sort_unstable();
    let mut counterpart = vec![None; old.spans.len()];
    for &(o, n) in &pairs {
        counterpart[o] = Some(n);
    }
    out.matched = pairs
        .into_iter()
        .map(|(o, n)| {
            let (a, b) = (&old.spans[o], &new.spans[n]);
            // Moved: its parent now is not the old parent's counterpart (a renamed parent is not a move).
            let moved = old_side.parent[o].and_then(|p| counterpart[p]) != new_side.parent[n];
            Matched { old: o, new: n, changes: changes(a, b, moved), duration: (a.duration.median, b.duration.median) }
        })
        .collect();
    out
}

/// One side of a diff: the tree, and per span a hash of what it is and of its whole subtree.
struct Side<'a> {
    spans: &'a [NormSpan],
    roots: Vec<usize>,
    children: Vec<Vec<usize>>,
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
        let mut at: HashMap<&str, usize> = HashMap::with_capacity(n);
        let mut side = Side {
            spans,
            roots: Vec::new(),
            children: vec![Vec::new(); n],
            parent: vec![None; n],
            own: spans.iter().map(|s| hash(&signature(s))).collect(),
            subtree: vec![0; n],
        };
        for (i, span) in spans.iter().enumerate() {
            at.insert(&span.path, i);
            match span.path.rsplit_once(SEPARATOR).and_then(|(parent, _)| at.get(parent)) {
                Some(&parent) => {
                    side.children[parent].push(i);
                    side.parent[i] = Some(parent);
                }
                None => side.roots.push(i),
            }
        }
        // Spans come parents first, so going backwards children are done before their parent.
        for i in (0..n).rev() {
            let mut hasher = DefaultHasher::new();
            side.own[i].hash(&mut hasher);
            for &child in &side.children[i] {
                side.subtree[child].hash(&mut hasher);
            }
            side.subtree[i] = hasher.finish();
        }
        side
    }
}

fn hash(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Matches siblings (see the module comment): the pairs, then the old and new ones left over.
fn match_siblings(
    old: &Side,
    old_children: &[usize],
    new: &Side,
    new_children: &[usize],
) -> (Vec<(usize, usize)>, Vec<usize>, Vec<usize>) {
    let mut pairs = Vec::new();
    let mut groups: HashMap<&str, (Vec<usize>, Vec<usize>)> = HashMap::new();
    let mut names: Vec<&str> = Vec::new();
    for (side, children, is_old) in [(old, old_children, true), (new, new_children, false)] {
        for &i in children {
            let name = name(&side.spans[i]);
            let group = groups.entry(name).or_insert_with(|| {
                names.push(name);
                Default::default()
            });
            if is_old { group.0.push(i) } else { group.1.push(i) }
        }
    }
    let (mut lost, mut found) = (Vec::new(), Vec::new());
    for name in names {
        let (mut olds, mut news) = std::mem::take(groups.get_mut(name).expect("grouped above"));
        let keys: [fn(&Side, usize) -> u64; 2] = [|s, i| s.subtree[i], |s, i| s.own[i]];
        for key in keys {
            let (paired, rest_old, rest_new) = pair_by(old, &olds, new, &news, key);
            pairs.extend(paired);
            (olds, news) = (rest_old, rest_new);
        }
        // The others in canonical order: changed where both sides have one.
        let common = olds.len().min(news.len());
        pairs.extend(olds.iter().copied().zip(news.iter().copied()));
        lost.extend_from_slice(&olds[common..]);
        found.extend_from_slice(&news[common..]);
    }
    // Renames: what is left under this parent, of the same service and kind, in order.
    let mut renamed_new = vec![false; found.len()];
    let mut still_lost = Vec::new();
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
            None => still_lost.push(o),
        }
    }
    let still_found = found.into_iter().zip(renamed_new).filter(|(_, r)| !r).map(|(n, _)| n).collect();
    (pairs, still_lost, still_found)
}

/// Pairs each of `olds` with the first unpaired of `news` that has the same `key`, in order;
/// returns the pairs and what is left of each side (in order).
fn pair_by(
    old: &Side,
    olds: &[usize],
    new: &Side,
    news: &[usize],
    key: fn(&Side, usize) -> u64,
) -> (Vec<(usize, usize)>, Vec<usize>, Vec<usize>) {
    let mut by_key: HashMap<u64, VecDeque<usize>> = HashMap::with_capacity(news.len());
    for (j, &n) in news.iter().enumerate() {
        by_key.entry(key(new, n)).or_default().push_back(j);
    }
    let mut taken = vec![false; news.len()];
    let mut pairs = Vec::new();
    let mut rest_old = Vec::new();
    for &o in olds {
        match by_key.get_mut(&key(old, o)).and_then(VecDeque::pop_front) {
            Some(j) => {
                taken[j] = true;
                pairs.push((o, news[j]));
            }
            None => rest_old.push(o),
        }
    }
    let rest_new = news.iter().zip(&taken).filter(|(_, t)| !**t).map(|(&n, _)| n).collect();
    (pairs, rest_old, rest_new)
}

/// The span's name: its path's last segment without the `#k` that numbers siblings.
fn name(span: &NormSpan) -> &str {
    let segment = span.segment();
    match segment.rsplit_once('#') {
        Some((name, k)) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => segment,
    }
}

/// Everything about a span but its place and timing, as one comparable string.
fn signature(span: &NormSpan) -> String {
    let mut text =
        format!("{}\u{1}{}\u{1}{}\u{1}{}", name(span), span.service, span.kind.as_str(), span.status.as_str());
    for (key, value) in &span.attrs {
        text.push('\u{1}');
        text.push_str(key);
        text.push('=');
        text.push_str(&value.text());
    }
    for event in &span.events {
        text.push('\u{2}');
        text.push_str(event);
    }
    text
}

/// How `a` (old) and `b` (new) differ, timing aside; `moved` when `b` is below another parent.
fn changes(a: &NormSpan, b: &NormSpan, moved: bool) -> Vec<Change> {
    let mut out = Vec::new();
    if name(a) != name(b) {
        out.push(Change::Renamed { old: name(a).to_string(), new: name(b).to_string() });
    }
    if moved {
        let parent = |s: &NormSpan| s.path.rsplit_once(SEPARATOR).map_or(String::new(), |(p, _)| p.to_string());
        out.push(Change::Moved { old: parent(a), new: parent(b) });
    }
    if a.service != b.service {
        out.push(Change::Service { old: a.service.clone(), new: b.service.clone() });
    }
    if a.kind != b.kind {
        out.push(Change::Kind { old: a.kind.as_str(), new: b.kind.as_str() });
    }
    if a.status != b.status {
        out.push(Change::Status { old: a.status.as_str(), new: b.status.as_str() });
    }
    let keys: std::collections::BTreeSet<&str> = a.attrs.keys().chain(b.attrs.keys()).map(|k| &**k).collect();
    for key in keys {
        let (x, y) = (a.attrs.get(key), b.attrs.get(key));
        if x != y {
            out.push(Change::Attr { key: key.to_string(), old: x.cloned(), new: y.cloned() });
        }
    }
    if a.events != b.events {
        out.push(Change::Events { old: a.events.clone(), new: b.events.clone() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::normalize::normalize;
    use crate::expect::matcher::tests::{SpanBuilder, span};
    use crate::telemetry::span::{Span, SpanKind, SpanStatus};

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
        normalize("checkout", &[&spans], &[])
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
                &Change::Status { old: "unset", new: "error" },
                &Change::Attr { key: "error.type".into(), old: None, new: Some(AttrValue::Str("500".into())) },
                &Change::Attr {
                    key: "http.response.status_code".into(),
                    old: Some(AttrValue::Int(200)),
                    new: Some(AttrValue::Int(500))
                },
                &Change::Kind { old: "client", new: "internal" },
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
