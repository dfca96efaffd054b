//! The trace as a compact text tree, the last part of a failure message: it shows where the spans a
//! message talks about sit among everything that was collected, starting from the roots the user
//! knows (clnrm's scenario and step spans).

use std::fmt::Write;

use crate::expect::describe::label;
use crate::output::count;
use crate::telemetry::index::TraceIndex;
use crate::telemetry::span::Span;

/// One span per line, indented by depth, as [`label`] names it; spans in `mark` start with `▶`.
/// At most `max_lines` lines: runs of spans left out are summed up as `… N more spans`. What is
/// kept, in order: each marked span with its ancestors (so the path to it shows), then the tree
/// from the top; at least one line is always written. Spans in `mark` that are not in `index` are
/// ignored.
pub fn render_tree(index: &TraceIndex, mark: &[&Span], max_lines: usize) -> String {
    if index.is_empty() {
        return "(no spans)\n".to_string();
    }
    let preorder = index.preorder();
    let mut rank = vec![0; index.len()];
    for (i, &p) in preorder.iter().enumerate() {
        rank[p] = i;
    }
    let mut marked = vec![false; index.len()];
    let mut marked_ranks: Vec<usize> = mark.iter().filter_map(|span| index.position(span)).map(|p| rank[p]).collect();
    marked_ranks.sort_unstable();
    for &r in &marked_ranks {
        marked[preorder[r]] = true;
    }

    let mut shown = Shown { visible: vec![false; index.len()], lines: 1 };
    for &r in &marked_ranks {
        let chain: Vec<usize> = index.ancestry(preorder[r]).map(|p| rank[p]).collect();
        if !shown.show_all(&chain, max_lines) {
            break;
        }
    }
    for r in 0..preorder.len() {
        if !shown.show_all(&[r], max_lines) {
            break;
        }
    }

    let mut out = String::new();
    let mut r = 0;
    while r < preorder.len() {
        let p = preorder[r];
        let indent = "  ".repeat(index.depth(p));
        if shown.visible[r] {
            let marker = if marked[p] { "▶ " } else { "  " };
            let _ = writeln!(out, "{marker}{indent}{}", label(index.spans()[p]));
            r += 1;
        } else {
            let hidden = shown.visible[r..].iter().take_while(|&&v| !v).count();
            let _ = writeln!(out, "  {indent}… {}", count(hidden, "more span"));
            r += hidden;
        }
    }
    out
}

/// Which lines (by preorder rank) are shown, and how many lines that makes counting one line per
/// run of hidden spans.
struct Shown {
    visible: Vec<bool>,
    lines: usize,
}

impl Shown {
    /// Shows every rank in `ranks` if the result fits in `max_lines`; otherwise changes nothing.
    fn show_all(&mut self, ranks: &[usize], max_lines: usize) -> bool {
        let mut added = Vec::new();
        for &r in ranks {
            if !self.visible[r] {
                // A span leaving a hidden run turns one line into up to three (before, it, after).
                self.lines += usize::from(r > 0 && !self.visible[r - 1])
                    + usize::from(r + 1 < self.visible.len() && !self.visible[r + 1]);
                self.visible[r] = true;
                added.push(r);
            }
        }
        if self.lines <= max_lines {
            return true;
        }
        for &r in added.iter().rev() {
            self.visible[r] = false;
            self.lines -= usize::from(r > 0 && !self.visible[r - 1])
                + usize::from(r + 1 < self.visible.len() && !self.visible[r + 1]);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::index::tests::shop;
    use crate::telemetry::span::tests::span;

    #[test]
    fn whole_tree_with_marks() {
        let spans = shop();
        let index = TraceIndex::new(&spans);
        let second_charge = index.spans()[7];
        assert_eq!(&*second_charge.name, "charge");
        let expected = "  scenario (clnrm, internal, 100.0ms)
    step one (clnrm, internal, 49.0ms)
      checkout (shop, server, 38.0ms)
        reserve (shop, internal, 7.0ms)
        charge (pay, client, 19.0ms)
          db (db, internal, 1.0ms)
    step two (clnrm, internal, 30.0ms)
▶     charge (pay, client, 9.0ms)
      charge (pay, client, 9.0ms)
";
        assert_eq!(render_tree(&index, &[second_charge], 60), expected);
        assert_eq!(render_tree(&index, &[second_charge], 9), expected);
    }

    #[test]
    fn elides_runs_but_keeps_marked_spans_and_their_ancestors() {
        let spans = shop();
        let index = TraceIndex::new(&spans);
        let second_charge = index.spans()[7];
        let expected = "  scenario (clnrm, internal, 100.0ms)
    … 5 more spans
    step two (clnrm, internal, 30.0ms)
▶     charge (pay, client, 9.0ms)
      … 1 more span
";
        assert_eq!(render_tree(&index, &[second_charge], 5), expected);
        let top =
            "  scenario (clnrm, internal, 100.0ms)\n    step one (clnrm, internal, 49.0ms)\n      … 7 more spans\n";
        assert_eq!(render_tree(&index, &[], 3), top);
        assert_eq!(render_tree(&index, &[], 1), "  … 9 more spans\n");
    }

    #[test]
    fn large_traces_stay_within_the_line_budget() {
        // 1 root, 50 children, 20 grandchildren each: 1051 spans.
        let mut spans = vec![span(1, 0, "root", "s", 0, 10_000).build()];
        for child in 0..50u64 {
            let child_id = 2 + child * 21;
            spans.push(span(child_id, 1, &format!("child {child}"), "s", child * 100, child * 100 + 90).build());
            for leaf in 0..20u64 {
                let start = child * 100 + leaf * 4;
                spans.push(
                    span(child_id + 1 + leaf, child_id, &format!("leaf {child}.{leaf}"), "s", start, start + 3).build(),
                );
            }
        }
        let index = TraceIndex::new(&spans);
        let marks: Vec<&Span> =
            index.spans().iter().copied().filter(|s| &*s.name == "leaf 30.7" || &*s.name == "leaf 49.19").collect();
        let tree = render_tree(&index, &marks, 60);
        assert_eq!(tree.lines().count(), 60, "{tree}");
        assert!(tree.contains("▶     leaf 30.7 (s, internal, 3.0ms)"), "{tree}");
        assert!(tree.contains("▶     leaf 49.19 "), "{tree}");
        assert!(tree.contains("    child 30 ") && tree.contains("    child 49 "), "{tree}");
        // Every span is either shown or counted in an elision line.
        let shown = tree.lines().filter(|l| !l.trim_start().starts_with('…')).count();
        let elided: usize = tree
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("… "))
            .map(|l| l.split(' ').next().and_then(|n| n.parse::<usize>().ok()).expect("count"))
            .sum();
        assert_eq!(shown + elided, spans.len());
    }

    #[test]
    fn empty_trace_and_foreign_marks() {
        assert_eq!(render_tree(&TraceIndex::new(&[]), &[], 60), "(no spans)\n");
        let spans = shop();
        let stranger = spans[0].clone();
        let index = TraceIndex::new(&spans);
        assert!(!render_tree(&index, &[&stranger], 60).contains('▶'));
    }
}
