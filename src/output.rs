//! Where command output goes: results to stdout, diagnostics to stderr, styled through `anstream`
//! (which drops the styles when the stream is not a terminal or `NO_COLOR` is set). With
//! `--format json`, a command prints one JSON document on stdout and nothing else.

use std::io::Write;

use anstyle::{AnsiColor, Effects, Style};
use clap::ValueEnum;

use crate::diagnostic::Diagnostic;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Text for people: status lines, diagnostics with source snippets, a summary.
    Human,
    /// One JSON document on stdout (schema in the README).
    Json,
}

pub const OK: Style = AnsiColor::Green.on_default().effects(Effects::BOLD);
pub const BAD: Style = AnsiColor::Red.on_default().effects(Effects::BOLD);
pub const NOTE: Style = AnsiColor::Yellow.on_default().effects(Effects::BOLD);
pub const DIM: Style = Style::new().effects(Effects::DIMMED);

/// Prints a line on stdout.
pub fn line(text: impl std::fmt::Display) {
    let mut out = anstream::stdout().lock();
    let _ = writeln!(out, "{text}");
}

/// Prints diagnostics on stderr (after flushing stdout, so both read in order on a terminal).
pub fn diagnostics<'a>(diagnostics: impl IntoIterator<Item = &'a Diagnostic>) {
    let _ = std::io::stdout().flush();
    let mut err = anstream::stderr().lock();
    for d in diagnostics {
        let _ = writeln!(err, "{}", d.render());
    }
}

/// Prints a JSON document on stdout.
pub fn json(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

/// `1 error`, `2 errors`.
pub fn count(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}
