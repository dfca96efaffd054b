//! Selectors read from TOML: a parse error, or a key that looks misspelt, is pointed at the exact
//! characters inside the quotes.

use std::ops::Range;

use crate::diagnostic::Diagnostic;
use crate::expect::selector::{self, Selector};
use crate::schema::{self, Cx, Spanned, Value};

/// A selector string; a parse error is pointed at the exact character inside the quotes.
pub fn selector(cx: &mut Cx, value: &Value, what: &str) -> Option<Spanned<Selector>> {
    let text = schema::string(cx, value, what)?;
    match selector::parse(&text) {
        Ok(parsed) => {
            misspelt_keys(cx, &parsed, &text);
            Some(Spanned::new(parsed, text.span))
        }
        Err(err) => {
            let span = inside_string(cx.parsed_text(), &text, err.span.clone());
            let d = Diagnostic::error("invalid-selector", format!("{what}: {}", err.message))
                .label("here")
                .help_opt(err.help.clone());
            cx.report(d, span);
            None
        }
    }
}

/// Warns about selector keys that look like misspellings of a span field or a common attribute: a
/// key no span has makes its condition false, so with `count = 0` the expectation would pass
/// whatever the system did.
fn misspelt_keys(cx: &mut Cx, parsed: &Selector, text: &Spanned<String>) {
    for condition in parsed.conditions() {
        let key = condition.key.as_str();
        let Some(meant) = selector::likely_meant(key) else { continue };
        let written = text.get(condition.span.clone()).unwrap_or("");
        let length = if written.starts_with(key) { key.len() } else { written.len() };
        let span = inside_string(cx.parsed_text(), text, condition.span.start..condition.span.start + length);
        let d = Diagnostic::warning(
            "unknown-selector-key",
            format!("selector key `{key}` is neither a span field nor a common attribute: did you mean `{meant}`?"),
        )
        .label("unknown key")
        .help(format!(
            "a key no span has makes its condition false, so an expectation with `count = 0` would pass \
             whatever the spans; if `{key}` is an attribute of your own, it is fine"
        ));
        cx.report(d, span);
    }
}

/// Maps a range inside a string's value to the parsed text, when the string is written without
/// escapes (so value offsets and source offsets agree); otherwise the whole string.
fn inside_string(parsed: &str, text: &Spanned<String>, inner: Range<usize>) -> Range<usize> {
    let raw = parsed.get(text.span.clone()).unwrap_or("");
    let quote = ["\"\"\"", "'''", "\"", "'"]
        .into_iter()
        .find(|q| raw.starts_with(q) && raw.ends_with(q) && raw.len() >= 2 * q.len());
    match quote {
        Some(q) if &raw[q.len()..raw.len() - q.len()] == text.as_str() => {
            let start = text.span.start + q.len() + inner.start;
            let end = (text.span.start + q.len() + inner.end).max(start + 1);
            start..end
        }
        _ => text.span.clone(),
    }
}
