//! A look at a template's tags before Tera parses it. Tera parses, clones, renders and drops a
//! template by recursing into each nested tag and each operator of an expression (`1 + 1 + …` is a
//! tree as deep as it is long), so a file nested deeply enough overflows the stack however it is
//! used. Both kinds of nesting are bounded here, where the tag that goes too deep can be named.

use std::ops::Range;

use crate::diagnostic::{Diagnostic, SourceFile};

/// Tags that open a body (`{% if %}`, `{% for %}`, …) nested inside one another in one file.
pub const MAX_NESTING: usize = 64;
/// Operators and brackets nested inside one another in one expression.
pub const MAX_EXPRESSION_DEPTH: usize = 64;

/// Tags that open a body, closed by `end<keyword>`.
const OPENERS: [&str; 5] = ["if", "for", "macro", "block", "filter"];

/// One `{{ … }}`, `{% … %}` or `{# … #}` of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    pub span: Range<usize>,
    /// `{`, `%` or `#`.
    pub kind: char,
    /// Whether the closing delimiter is there (an unclosed tag runs to the end of the text).
    closed: bool,
}

impl Tag {
    /// The text between the delimiters, without whitespace-control dashes.
    fn inner<'t>(&self, text: &'t str) -> &'t str {
        let inner = &text[self.span.start + 2..self.span.end - if self.closed { 2 } else { 0 }];
        let inner = inner.strip_prefix('-').unwrap_or(inner);
        inner.strip_suffix('-').unwrap_or(inner).trim()
    }

    /// The statement's first word (`if`, `endfor`, …); empty for expressions and comments.
    fn keyword<'t>(&self, text: &'t str) -> &'t str {
        if self.kind != '%' {
            return "";
        }
        self.inner(text).split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap_or("")
    }
}

/// Every tag of `text`, in order. A tag ends at its closing delimiter outside string literals; an
/// unclosed one runs to the end. The content of a `{% raw %}` block is text, not tags.
pub fn tags(text: &str) -> Vec<Tag> {
    let mut out: Vec<Tag> = Vec::new();
    let mut at = 0;
    while let Some(i) = text[at..].find('{') {
        let start = at + i;
        let Some(tag) = tag_at(text, start) else {
            at = start + 1;
            continue;
        };
        at = tag.span.end;
        let raw = tag.keyword(text) == "raw";
        out.push(tag);
        if raw {
            let Some(end) = end_of_raw(text, at) else { break };
            at = end.span.end;
            out.push(end);
        }
    }
    out
}

/// The tag that opens at `start`, if one does.
fn tag_at(text: &str, start: usize) -> Option<Tag> {
    let bytes = text.as_bytes();
    let (kind, close) = match bytes.get(start + 1) {
        Some(b'{') => ('{', b'}'),
        Some(b'%') => ('%', b'%'),
        Some(b'#') => ('#', b'#'),
        _ => return None,
    };
    let mut quote = None;
    for i in start + 2..bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if kind != '#' && matches!(b, b'"' | b'\'' | b'`') => quote = Some(b),
            None if b == close && bytes.get(i + 1) == Some(&b'}') => {
                return Some(Tag { span: start..i + 2, kind, closed: true });
            }
            None => {}
        }
    }
    Some(Tag { span: start..text.len(), kind, closed: false })
}

/// The `{% endraw %}` that ends a raw block whose content starts at `from`.
fn end_of_raw(text: &str, from: usize) -> Option<Tag> {
    text[from..]
        .match_indices("{%")
        .filter_map(|(i, _)| tag_at(text, from + i))
        .find(|tag| tag.keyword(text) == "endraw")
}

/// Checks the nesting of `source`'s tags; on success returns the spans of its `{% for %}` and
/// `{% macro %}` tags in order (where a limit hit while rendering their bodies is reported).
pub fn check(source: &SourceFile) -> Result<Vec<Range<usize>>, Box<Diagnostic>> {
    let text = &source.text;
    let mut depth = 0;
    let mut openers = Vec::new();
    for tag in tags(text) {
        let keyword = tag.keyword(text);
        if OPENERS.contains(&keyword) {
            depth += 1;
            if depth > MAX_NESTING {
                return Err(too_deep(source, tag.span, format!("tags nest more than {MAX_NESTING} levels deep here")));
            }
            if keyword == "for" || keyword == "macro" {
                openers.push(tag.span.clone());
            }
        } else if keyword.strip_prefix("end").is_some_and(|k| OPENERS.contains(&k)) {
            depth = depth.saturating_sub(1);
        }
        if tag.kind != '#' && expression_depth(tag.inner(text)) > MAX_EXPRESSION_DEPTH {
            let message = format!("this expression nests more than {MAX_EXPRESSION_DEPTH} operators and brackets deep");
            return Err(too_deep(source, tag.span, message));
        }
    }
    Ok(openers)
}

fn too_deep(source: &SourceFile, span: Range<usize>, message: String) -> Box<Diagnostic> {
    let start = span.start;
    Box::new(Diagnostic::error("template-nesting", message).at(source, start..start + 2).label("too deep").help(format!(
        "this is a limit of clnrm (Tera recurses for each level and would overflow the stack): split the template into macros or smaller expressions; tags may nest {MAX_NESTING} levels, expressions {MAX_EXPRESSION_DEPTH}"
    )))
}

/// An upper bound on how deep Tera's tree for an expression goes: operators along the way count
/// one level each (a chain of them becomes a tree as deep as the chain is long), brackets one; a
/// comma starts a new element of the innermost bracket.
fn expression_depth(expression: &str) -> usize {
    let chars: Vec<char> = expression.chars().collect();
    let mut outer: Vec<usize> = Vec::new();
    let (mut current, mut deepest) = (0, 0);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '"' | '\'' | '`' => i += chars[i + 1..].iter().position(|&q| q == c).map_or(chars.len(), |p| p + 1),
            '(' | '[' => {
                outer.push(current);
                current += 1;
            }
            ')' | ']' => current = outer.pop().unwrap_or(0),
            ',' => current = outer.last().map_or(0, |&base| base + 1),
            '+' | '-' | '*' | '/' | '%' | '<' | '>' => current += 1,
            '=' | '!' if next == Some('=') => {
                current += 1;
                i += 1;
            }
            c if c.is_alphanumeric() || c == '_' => {
                let len = chars[i..].iter().take_while(|c| c.is_alphanumeric() || **c == '_').count();
                let word: String = chars[i..i + len].iter().collect();
                if matches!(word.as_str(), "and" | "or" | "in") {
                    current += 1;
                }
                i += len - 1;
            }
            _ => {}
        }
        deepest = deepest.max(current);
        i += 1;
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<&str> {
        tags(text).into_iter().map(|t| &text[t.span]).collect()
    }

    #[test]
    fn tags_end_outside_strings_and_skip_raw_blocks() {
        assert_eq!(
            spans("a {{ \"}}\" }} b {% set x = '%}' %}{# {{ #}{% raw %}{{ x }}{% endraw %}{{ y"),
            ["{{ \"}}\" }}", "{% set x = '%}' %}", "{# {{ #}", "{% raw %}", "{% endraw %}", "{{ y"]
        );
    }

    #[test]
    fn expression_depth_counts_operator_chains_and_brackets_per_element() {
        assert_eq!(expression_depth("x"), 0);
        assert_eq!(expression_depth("1 + 2 + 3"), 2);
        assert_eq!(expression_depth("f(a=1 + 2, b=3)"), 2);
        assert_eq!(expression_depth("[1+1, 1+1, 1+1, 1+1]"), 2);
        assert_eq!(expression_depth("((x))"), 2);
        assert_eq!(expression_depth("a == b and c != d or e in f"), 5);
        assert_eq!(expression_depth("\"((((\" ~ index ~ loop.index"), 0);
    }

    #[test]
    fn nesting_is_checked_and_loops_and_macros_are_found() {
        let ok =
            SourceFile::new("t", "{% macro m() %}{% for i in x %}{% if i %}{% endif %}{% endfor %}{% endmacro m %}");
        assert_eq!(check(&ok).unwrap(), [0..15, 15..31]);
        let deep = SourceFile::new("t", format!("\n{}", "{% if a %}".repeat(MAX_NESTING + 1)));
        let d = check(&deep).unwrap_err();
        assert_eq!(d.code, "template-nesting");
        let loc = d.location.unwrap();
        assert_eq!((loc.line, loc.column), (2, 10 * MAX_NESTING + 1));
        let long = SourceFile::new("t", format!("{{{{ {} }}}}", vec!["1"; MAX_EXPRESSION_DEPTH + 2].join("+")));
        assert_eq!(check(&long).unwrap_err().code, "template-nesting");
    }
}
