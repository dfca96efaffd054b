//! Points errors found in rendered text back into the template file the user wrote.
//!
//! TOML and schema errors are found in the *rendered* text, but users edit the *template*. A line
//! diff between the two tells, for each rendered line, whether it is an untouched copy of a template
//! line (exact position), a template line whose `{{ expressions }}` were substituted (same line,
//! position found by the offending text where possible), or text produced by a macro, include or
//! loop (the nearest template line, with the rendered text shown in a note so nothing is hidden).

use std::ops::Range;

use similar::{DiffOp, TextDiff};

use crate::diagnostic::{Diagnostic, SourceFile};

/// Where a rendered line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Identical to this 0-based template line.
    Same(usize),
    /// This template line, with expressions substituted.
    Substituted(usize),
    /// Produced by the template near this line (macro call, include, loop body).
    Generated(usize),
}

/// Maps rendered offsets to the template source.
#[derive(Debug)]
pub struct SourceMap<'a> {
    source: &'a SourceFile,
    rendered: SourceFile,
    origins: Vec<Origin>,
}

impl<'a> SourceMap<'a> {
    pub fn new(source: &'a SourceFile, rendered: &str) -> Self {
        let rendered = SourceFile::new(format!("{} (rendered)", source.name), rendered);
        let diff = TextDiff::from_slices(&lines(&source.text), &lines(&rendered.text));
        let mut origins = vec![Origin::Generated(0); rendered.line_count()];
        let mut pending_delete: Option<(usize, usize)> = None;
        let hunks = Hunks { source, rendered: &rendered };
        for op in diff.ops() {
            match *op {
                DiffOp::Equal { old_index, new_index, len } => {
                    for k in 0..len {
                        set(&mut origins, new_index + k, Origin::Same(old_index + k));
                    }
                }
                DiffOp::Delete { old_index, old_len, .. } => pending_delete = Some((old_index, old_len)),
                DiffOp::Insert { old_index, new_index, new_len } => {
                    let replaced = pending_delete.filter(|&(start, len)| start + len == old_index);
                    let (old_start, old_len) = replaced.unwrap_or((old_index.saturating_sub(1), 1));
                    hunks.map(&mut origins, old_start..old_start + old_len, new_index..new_index + new_len);
                }
                DiffOp::Replace { old_index, old_len, new_index, new_len } => {
                    hunks.map(&mut origins, old_index..old_index + old_len, new_index..new_index + new_len);
                }
            }
            if !matches!(op, DiffOp::Delete { .. }) {
                pending_delete = None;
            }
        }
        Self { source, rendered, origins }
    }

    pub fn rendered_text(&self) -> &str {
        &self.rendered.text
    }

    /// Positions `diagnostic` at the template text that produced `span` of the rendered text.
    pub fn place(&self, diagnostic: Diagnostic, span: Range<usize>) -> Diagnostic {
        let line = self.rendered.line_index(span.start.min(self.rendered.text.len()));
        let rendered_line = self.rendered.line_range(line);
        match self.origins.get(line).copied().unwrap_or(Origin::Generated(0)) {
            Origin::Same(source_line) => {
                let start = self.source.line_range(source_line).start;
                let offset = span.start.saturating_sub(rendered_line.start);
                let len = span.end.min(rendered_line.end).saturating_sub(span.start);
                diagnostic.at(self.source, start + offset..start + offset + len)
            }
            Origin::Substituted(source_line) => {
                let target = self.find_in_line(source_line, &self.rendered.text[clamp(&span, &self.rendered.text)]);
                diagnostic.at(self.source, target).note_at(
                    "after rendering, this line reads",
                    &self.rendered.name,
                    self.rendered.locate(span),
                )
            }
            Origin::Generated(source_line) => {
                let line_span = self.source.line_range(source_line.min(self.source.line_count() - 1));
                diagnostic.at(self.source, trim_span(&self.source.text, line_span)).note_at(
                    "this text was produced by the template (a macro, include or loop); after rendering it reads",
                    &self.rendered.name,
                    self.rendered.locate(span),
                )
            }
        }
    }

    /// The offending text's position in the template line if it is written there literally;
    /// otherwise the first `{{ expression }}` of the line, which is what produced it.
    fn find_in_line(&self, source_line: usize, needle: &str) -> Range<usize> {
        let line = self.source.line_range(source_line);
        let text = &self.source.text[line.clone()];
        if !needle.trim().is_empty() {
            if let Some(at) = text.find(needle) {
                return line.start + at..line.start + at + needle.len();
            }
        }
        match (text.find("{{"), text.find("}}")) {
            (Some(open), Some(close)) if close > open => line.start + open..line.start + close + 2,
            _ => trim_span(&self.source.text, line),
        }
    }
}

/// The lines of `text` as [`SourceFile`] counts them, ended by `\n` only: the diff's own line
/// splitting also ends a line at a lone `\r`, which would shift every later line index off the
/// file's (and past its end).
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

fn set(origins: &mut [Origin], index: usize, origin: Origin) {
    if let Some(slot) = origins.get_mut(index) {
        *slot = origin;
    }
}

/// The two texts, for attributing the lines of a changed hunk.
struct Hunks<'a> {
    source: &'a SourceFile,
    rendered: &'a SourceFile,
}

impl Hunks<'_> {
    /// Rendered lines `new` replaced template lines `old`. A rendered line that fits the skeleton of
    /// one of those template lines (its literal text, with each `{{ … }}` matching anything) was
    /// substituted from it; any other line was generated, and is attributed to the hunk's first line
    /// holding a template tag (the macro call, include or loop that produced it).
    fn map(&self, origins: &mut [Origin], old: Range<usize>, new: Range<usize>) {
        let old = old.start.min(self.source.line_count() - 1)..old.end.min(self.source.line_count());
        let producer = old.clone().find(|&i| self.source_line(i).contains("{{") || self.source_line(i).contains("{%"));
        for line in new {
            let text = self.rendered.text[self.rendered.line_range(line)].trim();
            let origin = match old.clone().find(|&i| fits_skeleton(self.source_line(i).trim(), text)) {
                Some(i) => Origin::Substituted(i),
                None => Origin::Generated(producer.unwrap_or(old.start)),
            };
            set(origins, line, origin);
        }
    }

    fn source_line(&self, index: usize) -> &str {
        &self.source.text[self.source.line_range(index)]
    }
}

/// Whether `rendered` could be `template` with its `{{ expressions }}` substituted.
fn fits_skeleton(template: &str, rendered: &str) -> bool {
    if !template.contains("{{") {
        return !template.is_empty() && template == rendered;
    }
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        parts.push(&rest[..open]);
        rest = rest[open..].find("}}").map_or("", |close| &rest[open + close + 2..]);
    }
    parts.push(rest);
    if parts.iter().all(|p| p.trim().is_empty()) {
        // Nothing but expressions: the line produces text rather than shaping it (a macro call).
        return false;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !rendered.starts_with(first) || !rendered[first.len()..].ends_with(last) {
        return false;
    }
    let mut middle = &rendered[first.len()..rendered.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match middle.find(part) {
            Some(at) => middle = &middle[at + part.len()..],
            None => return false,
        }
    }
    true
}

fn clamp(span: &Range<usize>, text: &str) -> Range<usize> {
    let end = span.end.min(text.len());
    let start = span.start.min(end);
    if text.is_char_boundary(start) && text.is_char_boundary(end) { start..end } else { start..start }
}

/// The span without leading and trailing whitespace (so a caret run covers the code, not the indent).
fn trim_span(text: &str, span: Range<usize>) -> Range<usize> {
    let slice = &text[span.clone()];
    let start = span.start + (slice.len() - slice.trim_start().len());
    let end = span.end - (slice.len() - slice.trim_end().len());
    if start < end { start..end } else { span }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(template: &str, rendered: &str, needle: &str) -> Diagnostic {
        let source = SourceFile::new("s.clnrm.toml", template);
        let map = SourceMap::new(&source, rendered);
        let at = rendered.find(needle).unwrap();
        map.place(Diagnostic::error("test", "boom"), at..at + needle.len())
    }

    #[test]
    fn untouched_lines_map_exactly() {
        let d = place("a = {{ x }}\nimgae = \"b\"\n", "a = 3\nimgae = \"b\"\n", "imgae");
        let loc = d.location.unwrap();
        assert_eq!((loc.line, loc.column, loc.end_column), (2, 1, 6));
        assert!(d.notes.is_empty());
    }

    #[test]
    fn substituted_lines_point_at_the_literal_text_or_the_expression() {
        let d = place("[s]\nrun = {{ cmd }}\nx = 1\n", "[s]\nrun = 42\nx = 1\n", "42");
        let loc = d.location.unwrap();
        assert_eq!((loc.line, loc.column, loc.end_column), (2, 7, 16));
        assert_eq!(d.notes[0].location.as_ref().unwrap().line_text, "run = 42");

        let d = place("[s]\ncount = {{ n }} # x\n", "[s]\ncount = 3 # x\n", "count");
        assert_eq!(d.location.unwrap().column, 1);
    }

    #[test]
    fn a_literal_line_next_to_a_macro_call_keeps_its_own_position() {
        let template = "[s]\n{{ m::step() }}\ntimeot = \"{{ 5 }}s\"\n";
        let rendered = "[s]\n[[steps]]\nname = \"a\"\ntimeot = \"5s\"\n";
        let d = place(template, rendered, "timeot");
        let loc = d.location.unwrap();
        assert_eq!((loc.line, loc.column, loc.end_column), (3, 1, 7));
        let d = place(template, rendered, "name");
        assert_eq!(d.location.unwrap().line_text, "{{ m::step() }}");
    }

    #[test]
    fn loop_bodies_map_every_iteration_to_the_body_line() {
        let template = "{% for i in [1, 2] %}\n[[steps]]\nnmae = \"s{{ i }}\"\n{% endfor %}\n";
        let rendered = "\n[[steps]]\nnmae = \"s1\"\n\n[[steps]]\nnmae = \"s2\"\n\n";
        let at = rendered.rfind("nmae").unwrap();
        let source = SourceFile::new("s.clnrm.toml", template);
        let d = SourceMap::new(&source, rendered).place(Diagnostic::error("t", "m"), at..at + 4);
        let loc = d.location.unwrap();
        assert_eq!((loc.line, loc.column), (3, 1));
    }

    #[test]
    fn a_lone_carriage_return_ends_no_line() {
        // The diff once split lines at a lone `\r` too, so line indexes ran past the template's.
        let d = place("\r{# a #}\u{0}", "\r\u{0}", "\u{0}");
        assert_eq!(d.location.unwrap().line, 1);
        let d = place("a = 1\r{{ x }}\nimgae = 2\n", "a = 1\r3\nimgae = 2\n", "imgae");
        let loc = d.location.unwrap();
        assert_eq!((loc.line, loc.column), (2, 1));
    }

    #[test]
    fn skeletons_match_substituted_text_only() {
        assert!(fits_skeleton("a = \"{{ x }}-{{ y }}\"", "a = \"1-2\""));
        assert!(!fits_skeleton("a = \"{{ x }}-{{ y }}\"", "b = \"1-2\""));
        assert!(!fits_skeleton("a = {{ x }}", "b = 1"));
        assert!(fits_skeleton("x = 1", "x = 1"));
        assert!(!fits_skeleton("{{ m::step() }}", "[[steps]]"));
    }

    #[test]
    fn generated_lines_point_at_the_producing_line_and_show_the_rendered_text() {
        let template = "[scenario]\n{{ m::steps() }}\nname = \"x\"\n";
        let rendered = "[scenario]\n[[steps]]\nnmae = \"a\"\nname = \"x\"\n";
        let d = place(template, rendered, "nmae");
        let loc = d.location.unwrap();
        assert_eq!(loc.line_text, "{{ m::steps() }}");
        let note = &d.notes[0];
        assert!(note.message.contains("produced by the template"));
        assert_eq!(note.location.as_ref().unwrap().line_text, "nmae = \"a\"");
    }
}
