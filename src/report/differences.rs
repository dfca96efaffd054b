//! A diff for people and for tools: a tree of what changed and a JSON document. The tree is plain
//! data, written as plain text wherever it goes (reports, files); only a terminal gets it styled
//! ([`Tree::styled`]).
//!
//! The tree shows only spans that differ, below their unchanged ancestors for context, so a
//! change in a 10,000-span trace reads in a few lines: `+` added, `-` removed, `~` changed (each
//! change on its own line below), and durations that regressed past the thresholds.

use std::fmt::{self, Write};

use anstyle::Style;

use serde_json::{Value, json};

use crate::baseline::changes::{DiffSpan, Differences, Mark};
use crate::baseline::diff::Change;
use crate::baseline::normalize::SEPARATOR;
use crate::baseline::store::duration;
use crate::baseline::thresholds::growth;
use crate::output::{BAD, DIM, NOTE, OK, count};

/// One sentence: how many spans were added, removed, changed, slower; or that nothing differs.
pub fn summary(differences: &Differences) -> String {
    let slower = differences.slower().count();
    let parts: Vec<String> = [
        (differences.count(Mark::Added), "added"),
        (differences.count(Mark::Removed), "removed"),
        (differences.count(Mark::Changed), "changed"),
        (slower, "slower"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{} {what}", count(n, "span")))
    .collect();
    if parts.is_empty() { "no differences".into() } else { parts.join(", ") }
}

/// The tree of differences: spans that differ (or are slower) below their unchanged ancestors.
pub fn tree(differences: &Differences) -> Tree {
    let spans = &differences.spans;
    let shown = |s: &DiffSpan| s.mark != Mark::Same || s.slower.is_some();
    // Whether `a` is above `span`: by the run's paths, or by the baseline's for a removed span.
    let below = |span: &DiffSpan, a: &DiffSpan| {
        let path = if span.mark == Mark::Removed { a.baseline_path.as_ref().unwrap_or(&a.path) } else { &a.path };
        span.path.strip_prefix(path.as_str()).is_some_and(|rest| rest.starts_with(SEPARATOR))
    };
    let mut keep = vec![false; spans.len()];
    // The run's spans above the current one, by depth: shown for context above a shown span.
    let mut above: Vec<usize> = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        if span.mark != Mark::Removed {
            above.truncate(span.depth());
        }
        if shown(span) {
            keep[i] = true;
            for &a in above.iter().filter(|&&a| below(span, &spans[a])) {
                keep[a] = true;
            }
        }
        if span.mark != Mark::Removed {
            above.push(i);
        }
    }
    let rows = spans.iter().zip(keep).filter(|(_, keep)| *keep).map(|(span, _)| Row::of(span)).collect();
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
    fn of(span: &DiffSpan) -> Row {
        let mut details: Vec<String> = span.changes.iter().map(describe).collect();
        if let Some(s) = &span.slower {
            details.push(format!(
                "duration {} → {} ({})",
                duration(s.baseline),
                duration(s.current),
                growth(s.baseline, s.current)
            ));
        }
        details.extend(span.attrs.iter().map(|(k, v)| format!("{k} = {v}")));
        let error = if span.status == crate::telemetry::span::SpanStatus::Error { " error" } else { "" };
        Row {
            mark: span.mark,
            depth: span.depth(),
            segment: span.segment().to_string(),
            what: format!("{} {}{error}", span.service, span.kind.as_str()),
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
                Mark::Same if row.details.is_empty() => (' ', DIM),
                Mark::Added => ('+', OK),
                Mark::Removed => ('-', BAD),
                Mark::Same | Mark::Changed => ('~', NOTE),
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

/// One change in words.
fn describe(change: &Change) -> String {
    let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_string());
    match change {
        Change::Renamed { old, new } => format!("renamed from `{old}` to `{new}`"),
        Change::Moved { old, new } => format!("moved from below `{old}` to below `{new}`"),
        Change::Service { old, new } => format!("service {old} → {new}"),
        Change::Kind { old, new } => format!("kind {} → {}", old.as_str(), new.as_str()),
        Change::Status { old, new } => format!("status {} → {}", old.as_str(), new.as_str()),
        Change::Attr { key, old, new } => format!("{key}: {} → {}", value(old), value(new)),
        Change::Events { old, new } => format!("events [{}] → [{}]", old.join(", "), new.join(", ")),
    }
}

/// The diff as JSON: added and removed spans, changed spans with each change, slower spans, and
/// every span of both with its median durations.
pub fn json(differences: &Differences) -> Value {
    let span = |s: &DiffSpan| json!({ "path": s.path, "service": s.service, "kind": s.kind.as_str(), "status": s.status.as_str() });
    let of = |mark| differences.spans.iter().filter(move |s: &&DiffSpan| s.mark == mark);
    let ms = |d: std::time::Duration| crate::duration::millis::of(d);
    json!({
        "summary": summary(differences),
        "added": of(Mark::Added).map(span).collect::<Vec<_>>(),
        "removed": of(Mark::Removed).map(span).collect::<Vec<_>>(),
        "changed": of(Mark::Changed).map(|s| json!({
            "path": s.path,
            "baseline_path": s.baseline_path.as_deref().unwrap_or(&s.path),
            "changes": s.changes,
        })).collect::<Vec<_>>(),
        "slower": differences.slower().filter_map(|s| Some((s, s.slower?))).map(|(s, t)| json!({
            "path": s.path,
            "baseline_ms": ms(t.baseline),
            "ms": ms(t.current),
        })).collect::<Vec<_>>(),
        "durations": differences.spans.iter().filter_map(|s| Some((s, s.duration?))).map(|(s, t)| json!({
            "path": s.path,
            "baseline_ms": ms(t.baseline),
            "ms": ms(t.current),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::diff::diff;
    use crate::baseline::normalize::{Baseline, Recorded, normalize};
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
        let changes = Differences::of(&old, &new, &d, &[]);
        let shown = tree(&changes);
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
        assert_eq!(summary(&changes), "1 span added, 1 span removed, 1 span changed");
        let value = json(&changes);
        assert_eq!(value["removed"][0]["path"], "checkout › place order › POST /orders › charge");
        assert_eq!(value["changed"][0]["changes"][0]["key"], "http.response.status_code");
        assert_eq!(value["changed"][0]["changes"][0]["new"], "500");
    }

    #[test]
    fn no_differences_give_an_empty_tree() {
        let old = trace(|_| {});
        let d = diff(&old, &old);
        let same = Differences::of(&old, &old, &d, &[]);
        assert_eq!(tree(&same).to_string(), "");
        assert_eq!(summary(&same), "no differences");
    }
}
