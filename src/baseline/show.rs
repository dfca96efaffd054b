//! A diff for people and for tools: a tree of what changed and a JSON document. The tree is plain
//! data, written as plain text wherever it goes (reports, files); only a terminal gets it styled
//! ([`Tree::styled`]).
//!
//! The tree shows only spans that differ, below their unchanged ancestors for context, so a
//! change in a 10,000-span trace reads in a few lines: `+` added, `-` removed, `~` changed (each
//! change on its own line below), and durations that regressed past the thresholds.

use std::collections::HashMap;
use std::fmt::{self, Write};

use anstyle::Style;

use serde_json::{Value, json};

use super::diff::{Change, Diff};
use super::normalize::{Baseline, NormSpan, SEPARATOR};
use super::store::duration;
use super::thresholds::{Slower, growth};
use crate::output::{BAD, DIM, NOTE, OK, count};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mark {
    Context,
    Added,
    Removed,
    Changed,
}

/// One sentence: how many spans were added, removed, changed, slower; or that nothing differs.
pub fn summary(diff: &Diff, slower: &[Slower]) -> String {
    let changed = diff.matched.iter().filter(|m| !m.changes.is_empty()).count();
    let parts: Vec<String> =
        [(diff.added.len(), "added"), (diff.removed.len(), "removed"), (changed, "changed"), (slower.len(), "slower")]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{} {what}", count(n, "span")))
            .collect();
    if parts.is_empty() { "no differences".into() } else { parts.join(", ") }
}

/// The tree of differences: spans that differ below their unchanged ancestors.
pub fn tree(old: &Baseline, new: &Baseline, diff: &Diff, slower: &[Slower]) -> Tree {
    let slower_by_span: HashMap<usize, &Slower> = slower.iter().map(|s| (s.span, s)).collect();
    let mut lines: Vec<Option<Row>> = new.spans.iter().map(|_| None).collect();
    for m in &diff.matched {
        let mut details: Vec<String> = m.changes.iter().map(describe).collect();
        if let Some(s) = slower_by_span.get(&m.new) {
            details.push(format!("duration {} → {} ({})", duration(s.old), duration(s.new), growth(s.old, s.new)));
        }
        if !details.is_empty() {
            lines[m.new] = Some(Row::of(Mark::Changed, &new.spans[m.new], details));
        }
    }
    for &n in &diff.added {
        lines[n] = Some(Row::of(Mark::Added, &new.spans[n], attributes(&new.spans[n])));
    }
    // Removed spans go below their parent's counterpart in the new trace, or at the end.
    let counterpart: HashMap<&str, usize> =
        diff.matched.iter().map(|m| (old.spans[m.old].path.as_str(), m.new)).collect();
    let mut removed_below: HashMap<Option<usize>, Vec<&NormSpan>> = HashMap::new();
    for &o in &diff.removed {
        let span = &old.spans[o];
        let parent = span.path.rsplit_once(SEPARATOR).and_then(|(p, _)| counterpart.get(p).copied());
        removed_below.entry(parent).or_default().push(span);
    }
    // Unchanged ancestors of anything shown give the context.
    let at: HashMap<&str, usize> = new.spans.iter().enumerate().map(|(i, s)| (s.path.as_str(), i)).collect();
    let shown: Vec<usize> =
        (0..new.spans.len()).filter(|i| lines[*i].is_some() || removed_below.contains_key(&Some(*i))).collect();
    for i in shown {
        let mut path = new.spans[i].path.as_str();
        while let Some((parent, _)) = path.rsplit_once(SEPARATOR) {
            path = parent;
            let Some(&p) = at.get(parent) else { break };
            if lines[p].is_some() {
                break;
            }
            lines[p] = Some(Row::of(Mark::Context, &new.spans[p], Vec::new()));
        }
    }
    let removed = |span| Row::of(Mark::Removed, span, Vec::new());
    let mut rows = Vec::new();
    for (i, line) in lines.into_iter().enumerate() {
        rows.extend(line);
        rows.extend(removed_below.get(&Some(i)).into_iter().flatten().map(|span| removed(span)));
    }
    rows.extend(removed_below.get(&None).into_iter().flatten().map(|span| removed(span)));
    Tree { rows }
}

/// The tree of differences (empty when there are none): plain data, written as plain text by
/// `Display` (for reports and files) and with a style per kind of line by [`Tree::styled`] (for a
/// terminal alone).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tree {
    rows: Vec<Row>,
}

/// One span of the tree and the details below it.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    mark: Mark,
    depth: usize,
    /// The last segment of the span's path.
    segment: String,
    /// Its service and kind, and `error` when that is its status.
    what: String,
    details: Vec<String>,
}

impl Row {
    fn of(mark: Mark, span: &NormSpan, details: Vec<String>) -> Row {
        Row {
            mark,
            depth: span.depth(),
            segment: span.segment().to_string(),
            what: format!("{} {}{}", span.service, span.kind.as_str(), error_mark(span)),
            details,
        }
    }
}

impl Tree {
    /// The tree for a terminal: added spans green, removed red, changed yellow, context dimmed.
    /// Print it through `anstream`, which drops the styles when colour is off there.
    pub fn styled(&self) -> String {
        self.text(true)
    }

    /// Each line ending in a newline.
    fn text(&self, styled: bool) -> String {
        let mut out = String::new();
        for row in &self.rows {
            let (mark, style) = match row.mark {
                Mark::Context => (' ', DIM),
                Mark::Added => ('+', OK),
                Mark::Removed => ('-', BAD),
                Mark::Changed => ('~', NOTE),
            };
            let (style, dim) = if styled { (style, DIM) } else { (Style::new(), Style::new()) };
            let indent = "  ".repeat(row.depth);
            let _ = writeln!(out, "{style}{mark} {indent}{}{style:#}  {dim}{}{dim:#}", row.segment, row.what);
            for detail in &row.details {
                let _ = writeln!(out, "  {indent}    {detail}");
            }
        }
        out
    }
}

/// Plain text, with no escape codes.
impl fmt::Display for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text(false))
    }
}

fn error_mark(span: &NormSpan) -> &'static str {
    if span.status == crate::telemetry::span::SpanStatus::Error { " error" } else { "" }
}

/// An added span's attributes, one per line, so the reviewer sees what appeared.
fn attributes(span: &NormSpan) -> Vec<String> {
    span.attrs.iter().map(|(k, v)| format!("{k} = {}", v.text())).collect()
}

/// One change in words.
fn describe(change: &Change) -> String {
    let value = |v: &Option<crate::telemetry::span::AttrValue>| v.as_ref().map_or("(none)".to_string(), |v| v.text());
    match change {
        Change::Renamed { old, new } => format!("renamed from `{old}` to `{new}`"),
        Change::Moved { old, new } => format!("moved from below `{old}` to below `{new}`"),
        Change::Service { old, new } => format!("service {old} → {new}"),
        Change::Kind { old, new } => format!("kind {old} → {new}"),
        Change::Status { old, new } => format!("status {old} → {new}"),
        Change::Attr { key, old, new } => format!("{key}: {} → {}", value(old), value(new)),
        Change::Events { old, new } => format!("events [{}] → [{}]", old.join(", "), new.join(", ")),
    }
}

/// The diff as JSON: added and removed spans, changed spans with each change, and every matched
/// span's median durations.
pub fn json(old: &Baseline, new: &Baseline, diff: &Diff, slower: &[Slower]) -> Value {
    let span = |s: &NormSpan| json!({ "path": s.path, "service": s.service, "kind": s.kind.as_str(), "status": s.status.as_str() });
    let changed: Vec<Value> = diff
        .matched
        .iter()
        .filter(|m| !m.changes.is_empty())
        .map(|m| {
            json!({
                "path": new.spans[m.new].path,
                "baseline_path": old.spans[m.old].path,
                "changes": m.changes.iter().map(change_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    let durations: Vec<Value> = diff
        .matched
        .iter()
        .map(|m| {
            json!({
                "path": new.spans[m.new].path,
                "baseline_ms": m.duration.0.as_secs_f64() * 1000.0,
                "ms": m.duration.1.as_secs_f64() * 1000.0,
            })
        })
        .collect();
    json!({
        "summary": summary(diff, slower),
        "added": diff.added.iter().map(|&n| span(&new.spans[n])).collect::<Vec<_>>(),
        "removed": diff.removed.iter().map(|&o| span(&old.spans[o])).collect::<Vec<_>>(),
        "changed": changed,
        "slower": slower.iter().map(|s| json!({
            "path": new.spans[s.span].path,
            "baseline_ms": s.old.as_secs_f64() * 1000.0,
            "ms": s.new.as_secs_f64() * 1000.0,
        })).collect::<Vec<_>>(),
        "durations": durations,
    })
}

fn change_json(change: &Change) -> Value {
    let value = |v: &Option<crate::telemetry::span::AttrValue>| v.as_ref().map(|v| v.text());
    match change {
        Change::Renamed { old, new } => json!({ "kind": "renamed", "old": old, "new": new }),
        Change::Moved { old, new } => json!({ "kind": "moved", "old": old, "new": new }),
        Change::Service { old, new } => json!({ "kind": "service", "old": old, "new": new }),
        Change::Kind { old, new } => json!({ "kind": "kind", "old": old, "new": new }),
        Change::Status { old, new } => json!({ "kind": "status", "old": old, "new": new }),
        Change::Attr { key, old, new } => json!({ "kind": "attr", "key": key, "old": value(old), "new": value(new) }),
        Change::Events { old, new } => json!({ "kind": "events", "old": old, "new": new }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::diff::diff;
    use crate::baseline::normalize::{Recorded, normalize};
    use crate::telemetry::span::tests::{SpanBuilder, span};
    use crate::telemetry::span::{AttrValue, Span};

    fn trace(edit: impl FnOnce(&mut Vec<SpanBuilder>)) -> Baseline {
        let mut spans = vec![
            span(1, 0, "checkout", "clnrm", 0, 100),
            span(2, 1, "place order", "clnrm", 1, 60),
            span(3, 2, "POST /orders", "shop", 2, 50).attr("http.response.status_code", AttrValue::Int(200)),
            span(4, 3, "reserve item", "shop", 3, 6),
            span(5, 3, "charge", "pay", 8, 20),
            span(6, 1, "list orders", "clnrm", 61, 70),
        ];
        edit(&mut spans);
        let spans: Vec<Span> = spans.into_iter().map(SpanBuilder::build).collect();
        normalize("checkout", &[Recorded::plain(&spans)])
    }

    #[test]
    fn shows_changes_below_their_ancestors_and_nothing_else() {
        let old = trace(|_| {});
        let new = trace(|spans| {
            spans[2] = span(3, 2, "POST /orders", "shop", 2, 50).attr("http.response.status_code", AttrValue::Int(500));
            spans.remove(4);
            spans.push(span(7, 3, "audit", "shop", 21, 22).attr("audit.kind", AttrValue::Str("order".into())));
        });
        let d = diff(&old, &new);
        let shown = tree(&old, &new, &d, &[]);
        let text = shown.to_string();
        let expected = "  checkout  clnrm internal
    place order  clnrm internal
~     POST /orders  shop internal
          http.response.status_code: 200 → 500
-       charge  pay internal
+       audit  shop internal
            audit.kind = order
";
        assert_eq!(text, expected);
        // Plain as data; styled for a terminal, and the same text once the styles are gone.
        assert!(!text.contains('\u{1b}'));
        let styled = shown.styled();
        assert!(styled.contains("\u{1b}["), "{styled:?}");
        assert_eq!(anstream::adapter::strip_str(&styled).to_string(), expected);
        assert_eq!(summary(&d, &[]), "1 span added, 1 span removed, 1 span changed");
        let value = json(&old, &new, &d, &[]);
        assert_eq!(value["removed"][0]["path"], "checkout › place order › POST /orders › charge");
        assert_eq!(value["changed"][0]["changes"][0]["key"], "http.response.status_code");
        assert_eq!(value["changed"][0]["changes"][0]["new"], "500");
    }

    #[test]
    fn no_differences_give_an_empty_tree() {
        let old = trace(|_| {});
        let d = diff(&old, &old);
        assert_eq!(tree(&old, &old, &d, &[]).to_string(), "");
        assert_eq!(summary(&d, &[]), "no differences");
    }
}
