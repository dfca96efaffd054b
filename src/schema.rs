//! Typed access to a parsed TOML document that reports *every* unknown key and wrong type of a file
//! in one pass, each with a caret under the exact key or value.
//!
//! serde with `deny_unknown_fields` stops at the first problem and cannot suggest keys; this reader
//! keeps going. The keys a reader asks for are the schema: whatever is left over when a table is
//! [`Table::finish`]ed is unknown, and the asked-for keys are the candidates for "did you mean".

use std::ops::{Deref, Range};
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, Location, SourceFile};
use crate::sourcemap::SourceMap;
use crate::suggest::did_you_mean;

/// A parsed TOML value with its byte span in the parsed text.
pub type Value<'i> = toml::Spanned<DeValue<'i>>;

/// A value read from a file, with the byte span it came from (for later, semantic diagnostics).
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Range<usize>,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Range<usize>) -> Self {
        Self { value, span }
    }
}

impl<T> Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// How spans of the parsed text become positions in the file the user wrote.
pub enum Locator<'a> {
    /// The parsed text is the file itself.
    Plain(&'a SourceFile),
    /// The parsed text was rendered from a template.
    Rendered(SourceMap<'a>),
}

/// Collects the diagnostics of one document.
pub struct Cx<'a> {
    locator: Locator<'a>,
    diagnostics: Vec<Diagnostic>,
    /// Spans of syntax errors: follow-on errors inside them are noise and are dropped.
    quiet: Vec<Range<usize>>,
}

impl<'a> Cx<'a> {
    pub fn new(locator: Locator<'a>) -> Self {
        Self { locator, diagnostics: Vec::new(), quiet: Vec::new() }
    }

    /// Reports `diagnostic` at `span` of the parsed text.
    pub fn report(&mut self, diagnostic: Diagnostic, span: Range<usize>) {
        if self.quiet.iter().any(|q| overlaps(q, &span)) {
            return;
        }
        let placed = match &self.locator {
            Locator::Plain(source) => diagnostic.at(source, span),
            Locator::Rendered(map) => map.place(diagnostic, span),
        };
        self.diagnostics.push(placed);
    }

    /// Reports a syntax error and silences anything else reported inside its span.
    pub fn report_syntax(&mut self, diagnostic: Diagnostic, span: Range<usize>) {
        self.report(diagnostic, span.clone());
        self.quiet.push(span.start.saturating_sub(1)..span.end + 1);
    }

    pub fn has_syntax_errors(&self) -> bool {
        !self.quiet.is_empty()
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The diagnostics, in file order.
    pub fn into_diagnostics(mut self) -> Vec<Diagnostic> {
        self.diagnostics.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.diagnostics
    }

    /// The text that was parsed (the rendered text for a template), which spans index into.
    pub fn parsed_text(&self) -> &str {
        match &self.locator {
            Locator::Plain(source) => &source.text,
            Locator::Rendered(map) => map.rendered_text(),
        }
    }

    /// Where `span` of the parsed text is in the file the user wrote.
    pub fn locate(&self, span: Range<usize>) -> Option<(String, Location)> {
        let probe = match &self.locator {
            Locator::Plain(source) => Diagnostic::error("", "").at(source, span),
            Locator::Rendered(map) => map.place(Diagnostic::error("", ""), span),
        };
        Some((probe.file?, probe.location?))
    }

    /// Adds a note pointing at `span` of the parsed text (e.g. "first defined here").
    pub fn note_at(&self, diagnostic: Diagnostic, message: &str, span: Range<usize>) -> Diagnostic {
        match self.locate(span) {
            Some((file, location)) => diagnostic.note_at(message, file, location),
            None => diagnostic.note(message),
        }
    }

    /// Reports that `value` has the wrong type; `expected` reads like "a string".
    pub fn wrong_type(&mut self, value: &Value<'_>, what: &str, expected: &str, help: Option<&str>) {
        let found = value.get_ref().type_str();
        let d = Diagnostic::error("wrong-type", format!("{what} must be {expected}, found {}", article(found)))
            .label(format!("expected {expected}"))
            .help_opt(help.map(str::to_string));
        self.report(d, value.span());
    }
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end.max(b.start + 1) && b.start < a.end
}

fn article(type_name: &str) -> String {
    match type_name {
        "integer" | "array" => format!("an {type_name}"),
        other => format!("a {other}"),
    }
}

/// A table being read. Ask for each key the schema knows, then call [`Table::finish`].
pub struct Table<'a, 'i> {
    entries: &'a DeTable<'i>,
    span: Range<usize>,
    /// How messages name this table, e.g. "[scenario]" or "step `place order`".
    pub context: String,
    asked: Vec<&'static str>,
}

impl<'a, 'i> Table<'a, 'i> {
    pub fn new(entries: &'a DeTable<'i>, span: Range<usize>, context: impl Into<String>) -> Self {
        Self { entries, span, context: context.into(), asked: Vec::new() }
    }

    /// Reads `value` as a table, reporting a type error otherwise.
    pub fn of(cx: &mut Cx, value: &'a Value<'i>, context: impl Into<String>, help: Option<&str>) -> Option<Self> {
        let context = context.into();
        match value.get_ref() {
            DeValue::Table(entries) => Some(Self::new(entries, value.span(), context)),
            _ => {
                cx.wrong_type(value, &context, "a table", help);
                None
            }
        }
    }

    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The raw value of `key`, marking the key as known.
    pub fn get(&mut self, key: &'static str) -> Option<&'a Value<'i>> {
        self.asked.push(key);
        self.entries.get(key)
    }

    /// Like [`Table::get`], but a missing key is an error naming what to add.
    pub fn require(&mut self, cx: &mut Cx, key: &'static str, example: &str) -> Option<&'a Value<'i>> {
        let value = self.get(key);
        if value.is_none() && !self.misspelt(key) {
            let d = Diagnostic::error("missing-key", format!("{} has no `{key}`", self.context))
                .label(format!("`{key}` is required here"))
                .help(format!("add `{key} = {example}`"));
            cx.report(d, self.span.clone());
        }
        value
    }

    /// Whether the table holds a near-miss spelling of `key` (which [`Table::finish`] will report
    /// with a suggestion), so a "missing `key`" error would only repeat that.
    pub fn misspelt(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k.get_ref().as_ref() != key && did_you_mean(k.get_ref(), [key]).is_some())
    }

    /// Every entry, for tables whose keys are user-chosen names (services, env, attrs).
    pub fn entries(&mut self) -> impl Iterator<Item = (Spanned<&'a str>, &'a Value<'i>)> {
        self.asked.clear();
        self.asked.push("*");
        self.entries.iter().map(|(k, v)| (Spanned::new(k.get_ref().as_ref(), k.span()), v))
    }

    /// The span of `key` itself (the name, not the value), if present.
    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.entries.get_key_value(key).map(|(k, _)| k.span())
    }

    pub fn string(&mut self, cx: &mut Cx, key: &'static str) -> Option<Spanned<String>> {
        let what = self.what(key);
        self.get(key).and_then(|v| string(cx, v, &what))
    }

    pub fn bool(&mut self, cx: &mut Cx, key: &'static str) -> Option<Spanned<bool>> {
        let value = self.get(key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(Spanned::new(*b, value.span())),
            _ => {
                cx.wrong_type(value, &self.what(key), "a boolean", Some("write `true` or `false`"));
                None
            }
        }
    }

    pub fn uint(&mut self, cx: &mut Cx, key: &'static str) -> Option<Spanned<u64>> {
        let what = self.what(key);
        self.get(key).and_then(|v| uint(cx, v, &what))
    }

    pub fn duration(&mut self, cx: &mut Cx, key: &'static str) -> Option<Spanned<Duration>> {
        let what = self.what(key);
        self.get(key).and_then(|v| duration(cx, v, &what))
    }

    /// A limit or a pace (`timeout`, `interval`): zero would fail before anything ran, or probe
    /// without pause, so it is an error here rather than a surprise at run time.
    pub fn positive_duration(&mut self, cx: &mut Cx, key: &'static str) -> Option<Spanned<Duration>> {
        let duration = self.duration(cx, key)?;
        if duration.value.is_zero() {
            let d = Diagnostic::error("invalid-duration", format!("{} must be longer than zero", self.what(key)))
                .label("zero")
                .help("write a duration longer than zero, e.g. \"10s\", or leave the key out for the default");
            cx.report(d, duration.span);
            return None;
        }
        Some(duration)
    }

    pub fn regex(&mut self, cx: &mut Cx, key: &'static str) -> Option<Spanned<regex::Regex>> {
        let what = self.what(key);
        self.get(key).and_then(|v| regex(cx, v, &what))
    }

    pub fn strings(&mut self, cx: &mut Cx, key: &'static str) -> Option<Vec<Spanned<String>>> {
        let what = self.what(key);
        self.get(key).and_then(|v| strings(cx, v, &what))
    }

    /// A string that must be one of `options` (`(spelling, value)` pairs).
    pub fn choice<T: Copy>(
        &mut self,
        cx: &mut Cx,
        key: &'static str,
        options: &[(&'static str, T)],
    ) -> Option<Spanned<T>> {
        let what = self.what(key);
        self.get(key).and_then(|v| choice(cx, v, &what, options))
    }

    /// A sub-table under `key`.
    pub fn table(&mut self, cx: &mut Cx, key: &'static str) -> Option<Table<'a, 'i>> {
        let context = format!("`{key}` in {}", self.context);
        self.get(key).and_then(|v| Table::of(cx, v, context, None))
    }

    /// Reports every key nobody asked for.
    pub fn finish(self, cx: &mut Cx) {
        if self.asked.contains(&"*") {
            return;
        }
        for (key, _) in self.entries.iter() {
            let name = key.get_ref().as_ref();
            if self.asked.contains(&name) {
                continue;
            }
            let help = match did_you_mean(name, self.asked.iter().copied()) {
                Some(suggestion) => format!("did you mean `{suggestion}`?"),
                None => format!("valid keys here: {}", list(&self.asked)),
            };
            let d = Diagnostic::error("unknown-key", format!("unknown key `{name}` in {}", self.context))
                .label("unknown key")
                .help(help);
            cx.report(d, key.span());
        }
    }

    fn what(&self, key: &str) -> String {
        format!("`{key}` in {}", self.context)
    }
}

/// `a, b, c` with each name in backticks.
pub fn list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

pub fn string(cx: &mut Cx, value: &Value<'_>, what: &str) -> Option<Spanned<String>> {
    match value.get_ref() {
        DeValue::String(s) => Some(Spanned::new(s.to_string(), value.span())),
        _ => {
            cx.wrong_type(value, what, "a string", Some("put the value in double quotes"));
            None
        }
    }
}

pub fn uint(cx: &mut Cx, value: &Value<'_>, what: &str) -> Option<Spanned<u64>> {
    let parsed = match value.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok(),
        _ => {
            cx.wrong_type(value, what, "a whole number", None);
            return None;
        }
    };
    match parsed.and_then(|n| u64::try_from(n).ok()) {
        Some(n) => Some(Spanned::new(n, value.span())),
        None => {
            cx.report(
                Diagnostic::error("invalid-value", format!("{what} must not be negative")).label("negative"),
                value.span(),
            );
            None
        }
    }
}

pub fn duration(cx: &mut Cx, value: &Value<'_>, what: &str) -> Option<Spanned<Duration>> {
    let text = match value.get_ref() {
        DeValue::String(s) => s,
        _ => {
            cx.wrong_type(value, what, "a duration string", Some(crate::duration::HELP));
            return None;
        }
    };
    match crate::duration::parse(text) {
        Ok(d) => Some(Spanned::new(d, value.span())),
        Err(problem) => {
            let d = Diagnostic::error("invalid-duration", format!("{what} is not a valid duration: {problem}"))
                .label("invalid duration")
                .help(crate::duration::HELP);
            cx.report(d, value.span());
            None
        }
    }
}

pub fn regex(cx: &mut Cx, value: &Value<'_>, what: &str) -> Option<Spanned<regex::Regex>> {
    let pattern = string(cx, value, what)?;
    // Multi-line: `^` and `$` match at line starts and ends, as users expect of command output.
    match regex::RegexBuilder::new(&pattern).multi_line(true).build() {
        Ok(re) => Some(Spanned::new(re, pattern.span)),
        Err(err) => {
            let detail = err.to_string();
            let reason = detail.lines().last().unwrap_or("invalid regex").trim_start_matches("error: ").to_string();
            let d = Diagnostic::error("invalid-regex", format!("{what} is not a valid regex: {reason}"))
                .label("invalid regex")
                .help("regex syntax: https://docs.rs/regex/#syntax (in a TOML basic string, write `\\\\d` for `\\d`, or use a 'literal string')");
            cx.report(d, pattern.span);
            None
        }
    }
}

pub fn strings(cx: &mut Cx, value: &Value<'_>, what: &str) -> Option<Vec<Spanned<String>>> {
    match value.get_ref() {
        DeValue::Array(items) => {
            let what = format!("each item of {what}");
            let read: Vec<_> = items.iter().map(|item| string(cx, item, &what)).collect();
            read.into_iter().collect()
        }
        _ => {
            cx.wrong_type(value, what, "an array of strings", Some("write a list: [\"a\", \"b\"]"));
            None
        }
    }
}

pub fn choice<T: Copy>(
    cx: &mut Cx,
    value: &Value<'_>,
    what: &str,
    options: &[(&'static str, T)],
) -> Option<Spanned<T>> {
    let text = string(cx, value, what)?;
    if let Some((_, v)) = options.iter().find(|(name, _)| *name == text.as_str()) {
        return Some(Spanned::new(*v, text.span));
    }
    let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
    let help = match did_you_mean(&text, names.iter().copied()) {
        Some(s) => format!("did you mean \"{s}\"?"),
        None => format!("use one of {}", list(&names)),
    };
    let d = Diagnostic::error("invalid-value", format!("{what} must be one of {}, found \"{}\"", list(&names), *text))
        .label("not a valid choice")
        .help(help);
    cx.report(d, text.span);
    None
}
