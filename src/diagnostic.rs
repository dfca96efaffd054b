//! Diagnostics: what went wrong, where (file, line, column, the source line with a caret under the
//! exact key or value), and what would be right.
//!
//! A [`Diagnostic`] is self-contained: its location is resolved to line/column and the source line
//! is copied in when it is created, so reports can be sorted, merged across files and printed (as
//! text or JSON) long after the source text is gone.

use std::fmt::Write as _;
use std::ops::Range;

use anstyle::{AnsiColor, Effects, Style};
use serde::Serialize;

/// How bad a diagnostic is: errors make a file invalid (exit 3), warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A point in a file, resolved for display. Lines and columns are 1-based; columns count characters,
/// not bytes, so editors jump to the right place in non-ASCII text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
    /// Exclusive end column on the same line (a span running onto later lines is cut at the line end).
    pub end_column: usize,
    /// The whole source line, for the snippet.
    #[serde(rename = "source_line")]
    pub line_text: String,
}

/// A secondary message, optionally pointing somewhere else (e.g. "first defined here").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// One problem found in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable, kebab-case identifier (e.g. `unknown-key`), for tools and for searching the docs.
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Short text printed next to the caret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// What would be right.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message)
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, message)
    }

    fn new(severity: Severity, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity,
            code,
            message: message.into(),
            file: None,
            location: None,
            label: None,
            help: None,
            notes: Vec::new(),
        }
    }

    /// Names the file without pointing into it (e.g. "file is not UTF-8" before any line exists).
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// Points at `span` of `source`.
    pub fn at(mut self, source: &SourceFile, span: Range<usize>) -> Self {
        self.file = Some(source.name.clone());
        self.location = Some(source.locate(span));
        self
    }

    pub fn at_location(mut self, file: impl Into<String>, location: Location) -> Self {
        self.file = Some(file.into());
        self.location = Some(location);
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Self {
        self.help = help.or(self.help);
        self
    }

    pub fn note(mut self, message: impl Into<String>) -> Self {
        self.notes.push(Note { message: message.into(), file: None, location: None });
        self
    }

    pub fn note_at(mut self, message: impl Into<String>, file: impl Into<String>, location: Location) -> Self {
        self.notes.push(Note { message: message.into(), file: Some(file.into()), location: Some(location) });
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Sort key: file order, then position, so one file's report reads top to bottom.
    pub fn sort_key(&self) -> (Option<&str>, usize, usize) {
        let (line, column) = self.location.as_ref().map_or((0, 0), |l| (l.line, l.column));
        (self.file.as_deref(), line, column)
    }

    /// `file:line:col: message`, for summaries and reports that list diagnostics shown in full
    /// elsewhere.
    pub fn one_line(&self) -> String {
        match (&self.file, &self.location) {
            (Some(file), Some(l)) => format!("{file}:{}:{}: {}", l.line, l.column, self.message),
            (Some(file), None) => format!("{file}: {}", self.message),
            _ => self.message.clone(),
        }
    }

    /// Renders the diagnostic as text with ANSI styles; callers print through `anstream`, which strips
    /// the styles when the output is not a terminal or `NO_COLOR` is set.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let (word, style) = match self.severity {
            Severity::Error => ("error", ERROR),
            Severity::Warning => ("warning", WARNING),
        };
        let _ = writeln!(out, "{style}{word}[{}]{style:#}{BOLD}: {}{BOLD:#}", self.code, self.message);
        let lines = self.location.iter().chain(self.notes.iter().filter_map(|n| n.location.as_ref()));
        let gutter_width = lines.map(|l| digits(l.line)).max().unwrap_or(1);
        match (&self.file, &self.location) {
            (Some(file), Some(location)) => {
                render_snippet(&mut out, file, location, self.label.as_deref(), style, gutter_width);
            }
            (Some(file), None) => {
                let _ = writeln!(out, "{:gutter_width$}{GUTTER}-->{GUTTER:#} {file}", "");
            }
            _ => {}
        }
        for note in &self.notes {
            match (&note.file, &note.location) {
                (Some(file), Some(location)) => {
                    let _ =
                        writeln!(out, "{:gutter_width$} {GUTTER}={GUTTER:#} {BOLD}note{BOLD:#}: {}", "", note.message);
                    render_snippet(&mut out, file, location, None, NOTE, gutter_width);
                }
                _ => {
                    let _ =
                        writeln!(out, "{:gutter_width$} {GUTTER}={GUTTER:#} {BOLD}note{BOLD:#}: {}", "", note.message);
                }
            }
        }
        if let Some(help) = &self.help {
            // Continuation lines align under the text after "help: ".
            let indent = format!("\n{:gutter_width$}         ", "");
            let help = help.replace('\n', &indent);
            let _ = writeln!(out, "{:gutter_width$} {GUTTER}={GUTTER:#} {HELP}help{HELP:#}: {help}", "");
        }
        out
    }
}

const ERROR: Style = AnsiColor::Red.on_default().effects(Effects::BOLD);
const WARNING: Style = AnsiColor::Yellow.on_default().effects(Effects::BOLD);
const NOTE: Style = AnsiColor::Cyan.on_default().effects(Effects::BOLD);
const HELP: Style = AnsiColor::Green.on_default().effects(Effects::BOLD);
const GUTTER: Style = AnsiColor::Blue.on_default().effects(Effects::BOLD);
const BOLD: Style = Style::new().effects(Effects::BOLD);

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// Prints `--> file:line:col`, the source line, and a caret run under the span.
fn render_snippet(out: &mut String, file: &str, loc: &Location, label: Option<&str>, style: Style, width: usize) {
    let _ = writeln!(out, "{:width$}{GUTTER}-->{GUTTER:#} {file}:{}:{}", "", loc.line, loc.column);
    let _ = writeln!(out, "{:width$} {GUTTER}|{GUTTER:#}", "");
    let shown: String = loc.line_text.replace('\t', "    ");
    let _ = writeln!(out, "{GUTTER}{:>width$} |{GUTTER:#} {shown}", loc.line);
    let before: usize = loc.line_text.chars().take(loc.column - 1).map(display_width).sum();
    let under: usize = loc
        .line_text
        .chars()
        .skip(loc.column - 1)
        .take(loc.end_column.saturating_sub(loc.column))
        .map(display_width)
        .sum::<usize>()
        .max(1);
    // Padding is written out rather than as a format width, which may not exceed 65535.
    let pad = " ".repeat(before);
    let carets = "^".repeat(under);
    let label = label.map(|l| format!(" {l}")).unwrap_or_default();
    let _ = writeln!(out, "{:width$} {GUTTER}|{GUTTER:#} {pad}{style}{carets}{label}{style:#}", "");
}

fn display_width(c: char) -> usize {
    if c == '\t' { 4 } else { 1 }
}

/// A file's text plus an index of line starts, for turning byte offsets into lines and columns.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as shown to the user (relative to the working directory when possible).
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Self { name: name.into(), text, line_starts }
    }

    /// 0-based line index containing byte `offset`.
    pub fn line_index(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        }
    }

    /// Byte range of 0-based line `index`, without its line terminator.
    pub fn line_range(&self, index: usize) -> Range<usize> {
        let start = self.line_starts[index];
        let end = self.line_starts.get(index + 1).map_or(self.text.len(), |next| next - 1);
        let end = if self.text[start..end].ends_with('\r') { end - 1 } else { end };
        start..end
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// Resolves a byte span to a display location. Out-of-range or mid-character offsets are clamped,
    /// so a slightly wrong span can never panic the reporter.
    pub fn locate(&self, span: Range<usize>) -> Location {
        let start = self.floor_char_boundary(span.start.min(self.text.len()));
        let end = self.floor_char_boundary(span.end.clamp(start, self.text.len()));
        let index = self.line_index(start);
        let line = self.line_range(index);
        let line_text = &self.text[line.clone()];
        let column = self.text[line.start..start.min(line.end).max(line.start)].chars().count() + 1;
        let end_column = if end <= line.end {
            self.text[line.start..end.max(line.start)].chars().count() + 1
        } else {
            line_text.chars().count() + 1
        };
        Location { line: index + 1, column, end_column: end_column.max(column + 1), line_text: line_text.to_string() }
    }

    fn floor_char_boundary(&self, mut offset: usize) -> usize {
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_spans_by_line_and_char_column() {
        let src = SourceFile::new("f.toml", "a = 1\nnäme = \"x\"\r\nlast");
        let loc = src.locate(7..11);
        assert_eq!((loc.line, loc.column, loc.end_column), (2, 2, 5));
        assert_eq!(loc.line_text, "näme = \"x\"");
        let end = src.locate(src.text.len()..src.text.len());
        assert_eq!((end.line, end.column), (3, 5));
    }

    #[test]
    fn renders_a_caret_beyond_column_65535() {
        let src = SourceFile::new("f.toml", format!("{} = [1", "a".repeat(70_000)));
        let text = Diagnostic::error("toml-syntax", "invalid TOML").at(&src, 70_004..70_005).render();
        let plain = strip(&text);
        let carets = plain.lines().last().unwrap();
        assert_eq!(carets.trim_end_matches('^').len(), "  | ".len() + 70_004, "{:?}", &carets[..10]);
    }

    #[test]
    fn clamps_bad_spans_instead_of_panicking() {
        let src = SourceFile::new("f.toml", "é");
        let loc = src.locate(1..99);
        assert_eq!((loc.line, loc.column), (1, 1));
    }

    #[test]
    fn renders_caret_under_the_span_with_label_and_help() {
        let src = SourceFile::new("s.clnrm.toml", "[scenario]\n\tnmae = \"x\"\n");
        let text = Diagnostic::error("unknown-key", "unknown key `nmae` in [scenario]")
            .at(&src, 12..16)
            .label("not a key of [scenario]")
            .help("did you mean `name`?")
            .render();
        let plain = strip(&text);
        assert!(plain.contains("error[unknown-key]: unknown key `nmae` in [scenario]"), "{plain}");
        assert!(plain.contains("--> s.clnrm.toml:2:2"), "{plain}");
        assert!(plain.contains("2 |     nmae = \"x\""), "{plain}");
        assert!(plain.contains("  |     ^^^^ not a key of [scenario]"), "{plain}");
        assert!(plain.contains("= help: did you mean `name`?"), "{plain}");
    }

    fn strip(s: &str) -> String {
        let mut out = Vec::new();
        let mut stream = anstream::StripStream::new(&mut out);
        std::io::Write::write_all(&mut stream, s.as_bytes()).unwrap();
        String::from_utf8(out).unwrap()
    }
}
