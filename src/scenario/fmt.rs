//! `clnrm fmt`: deterministic, idempotent formatting of `*.clnrm.toml` scenario files.
//!
//! Scenario files are Tera templates of TOML, so they cannot be parsed as TOML before rendering,
//! and rendering would throw the template away. The formatter therefore never parses: a lexer
//! splits the source into TOML tokens (with `{{ … }}`, `{% … %}` and `{# … #}` as opaque tokens),
//! and a printer regenerates only the whitespace between them, from the bracket structure and the
//! line breaks the user wrote. Finally the output is lexed again and compared with the input token
//! by token, so a printer bug can only ever produce an error, never a changed meaning.
//!
//! Tera tags need no structural understanding: Tera outputs the text around them where it stands
//! (an `{% if %}` or `{% for %}` only chooses or repeats it), so the rendered TOML changes only in
//! whitespace between TOML tokens, which means nothing. The exceptions are `{% raw %}` blocks,
//! lexed as one verbatim token, and `{% macro %}` and `{% filter %}` bodies, whose text is output
//! elsewhere or transformed first; files with those are skipped.

use std::ops::Range;

/// Result of formatting one file.
///
/// Callers need to tell "nothing to write" apart from "write this", and must be able to report
/// a skipped file instead of silently treating it as formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Formatted {
    /// Already formatted: the output would be byte-identical, so the file need not be rewritten
    /// (and `clnrm fmt --check` passes).
    Unchanged,
    /// The formatted text, to be written back (or shown as a diff).
    Changed(String),
    /// The file has a `{% macro %}` or `{% filter %}` block (`tag` is `"macro"` or `"filter"`)
    /// whose opening tag starts at byte `offset`.
    ///
    /// A macro body is output wherever the macro is called, perhaps inside a TOML string, and a
    /// filter section's text goes through the filter before it is output, so whitespace there
    /// may matter; such files are left alone and the offset lets the caller point at the reason.
    SkippedBlock { offset: usize, tag: &'static str },
}

/// A file the formatter cannot tokenize (e.g. an unterminated string): nothing is changed.
///
/// Guessing where a broken token ends could move text in or out of a string, so the formatter
/// refuses and points at the problem instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// Byte range in the source the error points at (for a caret under it).
    pub span: Range<usize>,
    /// What is wrong, e.g. "unterminated string".
    pub message: String,
}

/// Formats one scenario file.
///
/// Only whitespace is ever changed, which is verified on every call: the result is either a
/// text with the same tokens as `source`, a refusal (`SkippedBlock`), or an error. Formatting
/// is idempotent, so formatting the output again yields [`Formatted::Unchanged`].
///
/// # Errors
///
/// A [`FormatError`] when the source cannot be tokenized (an unterminated string, Tera
/// expression, tag, comment or raw block, or a carriage return without a line feed), or, should
/// the printer ever get something wrong, an "internal formatter error" instead of a damaged
/// output.
pub fn format(source: &str) -> Result<Formatted, FormatError> {
    let tokens = lex(source)?;
    if let Some((offset, tag)) = detached_block(&tokens) {
        return Ok(Formatted::SkippedBlock { offset, tag });
    }
    let output = print(source, &tokens);
    verify(&tokens, &output)?;
    if output == source { Ok(Formatted::Unchanged) } else { Ok(Formatted::Changed(output)) }
}

/// Tera blocks whose body is not output where it stands, so formatting it could change the result.
const DETACHED_BLOCKS: [&str; 2] = ["macro", "filter"];

/// The offset and name of the first tag opening a [`DETACHED_BLOCKS`] block, if any.
fn detached_block(tokens: &[Token]) -> Option<(usize, &'static str)> {
    tokens.iter().filter(|token| token.kind == Kind::TeraTag).find_map(|token| {
        let name = tag_name(token.text.as_bytes());
        DETACHED_BLOCKS.into_iter().find(|block| block.as_bytes() == name).map(|block| (token.start, block))
    })
}

/// Indentation per open bracket inside multi-line arrays and inline tables.
const INDENT: usize = 4;

/// What a token is; the printer chooses the whitespace around a token from its kind alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `\n` or `\r\n`; line breaks are kept where the user put them.
    Newline,
    /// Spaces and tabs; discarded and regenerated.
    Whitespace,
    /// `#` to the end of the line, without trailing whitespace.
    Comment,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Equals,
    /// A `.` that does not continue a bare run, as in `a . b` or `"a".b`.
    Dot,
    /// Any of the four TOML string kinds, verbatim (multi-line ones include their newlines).
    String,
    /// Bare keys, dotted keys, numbers, booleans, dates: everything up to a delimiter.
    Bare,
    /// `{{ … }}` up to the first `}}` outside Tera strings, verbatim.
    TeraExpr,
    /// `{% … %}` up to the first `%}` outside Tera strings, verbatim; a `{% raw %}` tag runs on
    /// through its `{% endraw %}`, since Tera outputs everything between them as written.
    TeraTag,
    /// `{# … #}` up to the first `#}`, verbatim.
    TeraComment,
}

/// A slice of the source with its kind; `start` locates comments' columns and errors.
#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    start: usize,
}

/// The error for a token that cannot be lexed.
fn error(span: Range<usize>, message: &str) -> FormatError {
    FormatError { span, message: message.to_string() }
}

/// Splits `source` into tokens; their texts concatenate back to `source` except for the
/// trailing whitespace of comments.
fn lex(source: &str) -> Result<Vec<Token<'_>>, FormatError> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut start = 0;
    while let Some(&byte) = bytes.get(start) {
        let (kind, end) = lex_one(&bytes[start..], byte, start)?;
        tokens.push(Token { kind, text: &source[start..end], start });
        start = end;
    }
    Ok(tokens)
}

/// Lexes the token at the start of `rest` (whose first byte is `byte`, at offset `start`) and
/// returns its kind and end offset. All delimiters are ASCII, so every end offset falls on a
/// character boundary.
fn lex_one(rest: &[u8], byte: u8, start: usize) -> Result<(Kind, usize), FormatError> {
    let token = |kind, len| Ok((kind, start + len));
    // A Tera delimiter without its closing one: the error points at the opening one.
    let tera =
        |kind, len: Option<usize>, message| Ok((kind, start + len.ok_or_else(|| error(start..start + 2, message))?));
    match byte {
        b'\n' => token(Kind::Newline, 1),
        b'\r' if rest.starts_with(b"\r\n") => token(Kind::Newline, 2),
        // A lone CR is not valid TOML, and printing a newline after it would turn it into a
        // CRLF line break, so it is refused rather than kept.
        b'\r' => Err(error(start..start + 1, "carriage return without a line feed")),
        b' ' | b'\t' => token(Kind::Whitespace, run(rest, |b| b == b' ' || b == b'\t')),
        b'#' => token(Kind::Comment, comment_len(rest)),
        b'"' | b'\'' => token(Kind::String, string_len(rest, byte, start)?),
        b'{' if rest.starts_with(b"{{") => tera(Kind::TeraExpr, tera_len(rest, b"}}"), "unterminated Tera expression"),
        b'{' if rest.starts_with(b"{%") => tera(Kind::TeraTag, tag_len(rest, start)?, "unterminated Tera tag"),
        b'{' if rest.starts_with(b"{#") => {
            tera(Kind::TeraComment, find(&rest[2..], b"#}").map(|i| i + 4), "unterminated Tera comment")
        }
        b'{' => token(Kind::LBrace, 1),
        b'}' => token(Kind::RBrace, 1),
        b'[' => token(Kind::LBracket, 1),
        b']' => token(Kind::RBracket, 1),
        b',' => token(Kind::Comma, 1),
        b'=' => token(Kind::Equals, 1),
        b'.' => token(Kind::Dot, 1),
        _ => token(Kind::Bare, run(rest, is_bare)),
    }
}

/// Whether `byte` can be part of a bare run; every other byte has its own arm in [`lex_one`].
fn is_bare(byte: u8) -> bool {
    !matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b'=' | b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'"' | b'\'')
}

/// Length of the longest prefix of `bytes` whose bytes all satisfy `pred`.
fn run(bytes: &[u8], pred: impl Fn(u8) -> bool) -> usize {
    bytes.iter().position(|&b| !pred(b)).unwrap_or(bytes.len())
}

/// Length of a comment up to the line end, without trailing spaces and tabs.
fn comment_len(rest: &[u8]) -> usize {
    let line = &rest[..run(rest, |b| b != b'\n' && b != b'\r')];
    line.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(0, |i| i + 1)
}

/// Length of the string starting with `quote`, or an error spanning its opening delimiter.
fn string_len(rest: &[u8], quote: u8, start: usize) -> Result<usize, FormatError> {
    if rest.starts_with(&[quote; 3]) {
        multi_line_string_len(rest, quote).ok_or_else(|| error(start..start + 3, "unterminated multi-line string"))
    } else {
        single_line_string_len(rest, quote).ok_or_else(|| error(start..start + 1, "unterminated string"))
    }
}

/// Length of a basic (`"`) or literal (`'`) string, which must end on its line.
fn single_line_string_len(rest: &[u8], quote: u8) -> Option<usize> {
    let mut i = 1;
    loop {
        match *rest.get(i)? {
            b'\n' => return None,
            b'\\' if quote == b'"' && rest.get(i + 1) != Some(&b'\n') => i += 2,
            b if b == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// Length of a `"""` or `'''` string. Up to two extra quotes before the closing delimiter belong
/// to the content, as in TOML (`"""a""""` is `a"`).
fn multi_line_string_len(rest: &[u8], quote: u8) -> Option<usize> {
    let mut i = 3;
    loop {
        match *rest.get(i)? {
            b'\\' if quote == b'"' => i += 2,
            b if b == quote => {
                let quotes = run(&rest[i..], |b| b == quote);
                if quotes >= 3 {
                    return Some(i + quotes.min(5));
                }
                i += quotes;
            }
            _ => i += 1,
        }
    }
}

/// Offset of the first occurrence of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Length of a Tera expression or tag opening `rest`: up to and including the first `close`
/// outside a Tera string literal (`"…"`, `'…'` or `` `…` ``, which have no escapes), because
/// Tera reads those whole: `{% set s = "%}" %}` is one tag.
fn tera_len(rest: &[u8], close: &[u8]) -> Option<usize> {
    let mut i = 2;
    while i < rest.len() {
        match rest[i] {
            _ if rest[i..].starts_with(close) => return Some(i + close.len()),
            quote @ (b'"' | b'\'' | b'`') => i += 2 + rest[i + 1..].iter().position(|&b| b == quote)?,
            _ => i += 1,
        }
    }
    None
}

/// Length of the tag opening `rest`, or `None` if it is unterminated. A `{% raw %}` tag runs on
/// through its `{% endraw %}`, which must exist: what lies between is output verbatim by Tera,
/// so it is one verbatim token here.
fn tag_len(rest: &[u8], start: usize) -> Result<Option<usize>, FormatError> {
    let Some(len) = tera_len(rest, b"%}") else { return Ok(None) };
    if tag_body(&rest[..len]) != b"raw" {
        return Ok(Some(len));
    }
    let end = endraw_end(&rest[len..]).ok_or_else(|| error(start..start + len, "unterminated {% raw %} block"))?;
    Ok(Some(len + end))
}

/// End offset of the first `{% endraw %}` tag (in any whitespace-control variant) in `text`.
fn endraw_end(text: &[u8]) -> Option<usize> {
    let mut from = 0;
    loop {
        let open = from + find(&text[from..], b"{%")?;
        let close = open + 2 + find(&text[open + 2..], b"%}")? + 2;
        if tag_body(&text[open..close]) == b"endraw" {
            return Some(close);
        }
        from = open + 2;
    }
}

/// What a tag says, without its delimiters, whitespace-control dashes and surrounding
/// whitespace: `{%- endraw %}` says `endraw`.
fn tag_body(tag: &[u8]) -> &[u8] {
    let inner = &tag[2..tag.len() - 2];
    let inner = inner.strip_prefix(b"-").unwrap_or(inner);
    inner.strip_suffix(b"-").unwrap_or(inner).trim_ascii()
}

/// The tag's keyword: `macro` for `{% macro step(name) %}`.
fn tag_name(tag: &[u8]) -> &[u8] {
    let body = tag_body(tag);
    &body[..run(body, |b| b.is_ascii_alphanumeric() || b == b'_')]
}

/// Where in a statement the printer is; dots in keys are joined, dots in values are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Before the `=` of a key/value pair (at depth 0 or in an inline table).
    Key,
    /// After an `=`, or inside an array.
    Value,
    /// Inside a `[table]` or `[[array.of.tables]]` header.
    Header,
}

/// A significant token and whether whitespace preceded it on its line (kept between atoms, so
/// `1979-05-27 07:32:00` does not become one token).
#[derive(Debug, Clone, Copy)]
struct Item<'a> {
    token: Token<'a>,
    spaced: bool,
}

/// An open `[` or `{`, remembering what its closing bracket restores.
#[derive(Debug, Clone, Copy)]
struct Frame {
    brace: bool,
    /// Indentation of the line that opened it, where its closing line goes.
    indent: usize,
    /// Context to return to after the closing bracket.
    restore: Context,
}

/// What a printed line is, which decides the blank lines around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Blank,
    Comment,
    Header,
    Code,
    /// Only Tera tags, as in `{% for i in range(end=3) %}` or `{% endif %}`.
    Tag,
}

/// One printed line; its text may contain line breaks of verbatim tokens.
#[derive(Debug)]
struct Line {
    kind: LineKind,
    text: String,
}

impl Line {
    fn blank() -> Self {
        Line { kind: LineKind::Blank, text: String::new() }
    }
}

/// Regenerates the whitespace of one file, line by line.
struct Printer<'a> {
    source: &'a str,
    open: Vec<Frame>,
    context: Context,
    lines: Vec<Line>,
}

/// Prints `tokens` (lexed from `source`) with regenerated whitespace.
fn print(source: &str, tokens: &[Token]) -> String {
    let mut printer = Printer { source, open: Vec::new(), context: Context::Key, lines: Vec::new() };
    for line in physical_lines(tokens) {
        printer.print_line(&line);
    }
    render(printer.lines, line_ending(tokens))
}

/// Groups the significant tokens by source line; newlines inside verbatim tokens do not count.
fn physical_lines<'a>(tokens: &[Token<'a>]) -> Vec<Vec<Item<'a>>> {
    let mut lines = Vec::new();
    let mut line = Vec::new();
    let mut spaced = false;
    for &token in tokens {
        match token.kind {
            Kind::Newline => lines.push(std::mem::take(&mut line)),
            Kind::Whitespace => {}
            _ => line.push(Item { token, spaced }),
        }
        spaced = token.kind == Kind::Whitespace;
    }
    lines.push(line);
    lines
}

impl Printer<'_> {
    /// Prints one source line: indentation from the open brackets, then its tokens. A line's
    /// kind and indentation come from its first token that is not a Tera tag, so a line like
    /// `{% if x %}[t]{% endif %}` is still a table header.
    fn print_line(&mut self, items: &[Item]) {
        let Some(first) = items.first() else {
            self.lines.push(Line::blank());
            return;
        };
        let Some(lead) = items.iter().find(|item| item.token.kind != Kind::TeraTag) else {
            self.lines.push(self.tag_line(first, &items[items.len() - 1]));
            return;
        };
        let kind = self.line_kind(lead.token.kind);
        if self.open.is_empty() {
            self.context = if kind == LineKind::Header { Context::Header } else { Context::Key };
        }
        let indent = self.indent(lead.token.kind);
        let mut text = " ".repeat(indent);
        text.push_str(first.token.text);
        self.track(first.token.kind, indent);
        for (previous, item) in items.iter().zip(&items[1..]) {
            self.push_separator(&mut text, previous, item);
            text.push_str(item.token.text);
            self.track(item.token.kind, indent);
        }
        self.lines.push(Line { kind, text });
    }

    /// A line of only Tera tags (from `first` to `last`) as written, indentation included, minus
    /// trailing whitespace: tags shape the template rather than the TOML, and their indentation
    /// may show a nesting of blocks the formatter knows nothing about.
    fn tag_line(&self, first: &Item, last: &Item) -> Line {
        let line_start = self.source[..first.token.start].rfind('\n').map_or(0, |i| i + 1);
        let end = last.token.start + last.token.text.len();
        Line { kind: LineKind::Tag, text: self.source[line_start..end].to_string() }
    }

    fn line_kind(&self, first: Kind) -> LineKind {
        match first {
            Kind::Comment => LineKind::Comment,
            Kind::LBracket if self.open.is_empty() => LineKind::Header,
            _ => LineKind::Code,
        }
    }

    /// A closing line goes where its opening line is; any other line is indented by depth.
    fn indent(&self, first: Kind) -> usize {
        match self.open.last() {
            Some(frame) if matches!(first, Kind::RBracket | Kind::RBrace) => frame.indent,
            _ => INDENT * self.open.len(),
        }
    }

    /// Updates the open brackets and the context after printing a token of `kind` on a line
    /// indented by `indent`.
    fn track(&mut self, kind: Kind, indent: usize) {
        match kind {
            Kind::LBracket | Kind::LBrace => {
                let brace = kind == Kind::LBrace;
                self.open.push(Frame { brace, indent, restore: self.context });
                self.context = match self.context {
                    _ if brace => Context::Key,
                    Context::Header => Context::Header,
                    _ => Context::Value,
                };
            }
            Kind::RBracket | Kind::RBrace => {
                if let Some(frame) = self.open.pop() {
                    self.context = frame.restore;
                }
            }
            Kind::Equals => self.context = Context::Value,
            Kind::Comma if self.open.last().is_some_and(|frame| frame.brace) => {
                self.context = Context::Key;
            }
            _ => {}
        }
    }

    /// Writes the whitespace between two tokens of one line. A trailing comment keeps its
    /// column when the code still fits before it, so hand-aligned comments stay aligned.
    fn push_separator(&self, text: &mut String, previous: &Item, item: &Item) {
        if item.token.kind == Kind::Comment {
            let source_column = column(&self.source[..item.token.start]);
            let pad = source_column.saturating_sub(column(text)).max(1);
            text.extend(std::iter::repeat_n(' ', pad));
        } else if spaced(previous, item, self.context) {
            text.push(' ');
        }
    }
}

/// Whether one space goes between `previous` and `next`. Whitespace is only ever dropped where
/// the two tokens cannot merge when lexed again (or merge into an equivalent dotted key), and
/// between two atoms it is kept as it was.
fn spaced(previous: &Item, next: &Item, context: Context) -> bool {
    use Kind::{Comma, Equals, LBrace, LBracket, RBrace, RBracket};
    match (previous.token.kind, next.token.kind) {
        (_, Comma) => false,
        (Equals, _) | (_, Equals) => true,
        (LBrace, RBrace) => false,
        // Also keeps `{ {` and `{ {{` from turning into Tera delimiters.
        (LBrace, _) | (_, RBrace) => true,
        // `[ [a] ]` is not `[[a]]`: a header's doubled brackets stay as apart as written.
        (LBracket, LBracket) | (RBracket, RBracket) if context == Context::Header => next.spaced,
        (LBracket, _) | (_, RBracket) => false,
        (Comma, _) => true,
        _ if context != Context::Value && dot_joined(previous, next) => false,
        _ => next.spaced,
    }
}

/// Whether the two tokens are parts of a dotted key, where spaces around dots mean nothing.
fn dot_joined(previous: &Item, next: &Item) -> bool {
    let ends_with_dot = previous.token.kind == Kind::Bare && previous.token.text.ends_with('.');
    ends_with_dot || previous.token.kind == Kind::Dot || next.token.kind == Kind::Dot
}

/// Number of characters after the last line break of `text`.
fn column(text: &str) -> usize {
    text[text.rfind('\n').map_or(0, |i| i + 1)..].chars().count()
}

/// The line ending of the output: that of the first line break outside verbatim tokens. (One
/// inside a multi-line string or Tera expression is not printed by the formatter, so letting it
/// decide would make a second pass switch line endings.)
fn line_ending(tokens: &[Token]) -> &'static str {
    match tokens.iter().find(|token| token.kind == Kind::Newline) {
        Some(token) if token.text == "\r\n" => "\r\n",
        _ => "\n",
    }
}

/// Joins the lines after normalising the blank lines between them.
fn render(lines: Vec<Line>, newline: &str) -> String {
    let mut output = String::new();
    for line in arrange_blank_lines(lines) {
        output.push_str(&line.text);
        output.push_str(newline);
    }
    output
}

/// Drops blank lines at both ends, collapses runs of them, and separates each table header
/// (together with the comments directly above it, which describe it) from the TOML that
/// precedes it. Below a Tera tag line the blank line is left as written: the header may open an
/// `{% if %}` or `{% for %}` body, which reads best right under its tag, or follow an
/// `{% endif %}`, and the formatter cannot tell which.
fn arrange_blank_lines(lines: Vec<Line>) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::with_capacity(lines.len());
    for line in lines {
        match line.kind {
            LineKind::Blank if out.last().is_none_or(|last| last.kind == LineKind::Blank) => {}
            LineKind::Header => {
                let at = out.iter().rposition(|l| l.kind != LineKind::Comment).map_or(0, |i| i + 1);
                if at > 0 && matches!(out[at - 1].kind, LineKind::Code | LineKind::Header) {
                    out.insert(at, Line::blank());
                }
                out.push(line);
            }
            _ => out.push(line),
        }
    }
    while out.last().is_some_and(|last| last.kind == LineKind::Blank) {
        out.pop();
    }
    out
}

/// Checks that `output` has the same tokens as the input, apart from whitespace and newlines.
fn verify(input: &[Token], output: &str) -> Result<(), FormatError> {
    let reparsed = lex(output).map_err(|e| internal_error(&format!("the output does not tokenize ({})", e.message)))?;
    if significant(input) == significant(&reparsed) {
        Ok(())
    } else {
        Err(internal_error("the output's tokens differ from the input's"))
    }
}

/// The error for output that failed [`verify`]: a bug, reported instead of written.
fn internal_error(detail: &str) -> FormatError {
    error(0..0, &format!("internal formatter error: {detail}, please report"))
}

/// The tokens that carry meaning, with bare runs split at their dots: `a . b` lexes as three
/// tokens and `a.b` as one, yet they are the same dotted key, and the printer joins the former
/// into the latter.
fn significant<'a>(tokens: &[Token<'a>]) -> Vec<(Kind, &'a str)> {
    let mut out = Vec::new();
    for token in tokens {
        match token.kind {
            Kind::Whitespace | Kind::Newline => {}
            Kind::Bare => {
                for (i, piece) in token.text.split('.').enumerate() {
                    if i > 0 {
                        out.push((Kind::Dot, "."));
                    }
                    if !piece.is_empty() {
                        out.push((Kind::Bare, piece));
                    }
                }
            }
            kind => out.push((kind, token.text)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"[scenario]
name   =   "checkout"                # contract; default: file stem
description="placing an order emits one span per item"
tags = [ "smoke","orders" ]
timeout = "60s"                  # whole scenario
[vars]
items = {{ n }}


[services.shop]
image = "clnrm-demo:local"
command = ["demo-app","serve", "--port", "8080"]
env = {RUST_LOG="info"}
wait = { log = "listening", timeout = "10s" }
# steps follow
[[steps]]
name = "place order"
run = [
  "demo-app",
     "order",   # the subcommand
  "--items", "{{ items }}",
]
expect = { exit = 0, stdout = "placed \\d+" }
{{ m::step(name="check") }}
[[expect.span]]
select = 'span[name="POST /orders" service.name="shop"]'
count = { min = 1, max = 5 }
"#;

    const SAMPLE_FORMATTED: &str = r#"[scenario]
name = "checkout"                    # contract; default: file stem
description = "placing an order emits one span per item"
tags = ["smoke", "orders"]
timeout = "60s"                  # whole scenario

[vars]
items = {{ n }}

[services.shop]
image = "clnrm-demo:local"
command = ["demo-app", "serve", "--port", "8080"]
env = { RUST_LOG = "info" }
wait = { log = "listening", timeout = "10s" }

# steps follow
[[steps]]
name = "place order"
run = [
    "demo-app",
    "order",    # the subcommand
    "--items", "{{ items }}",
]
expect = { exit = 0, stdout = "placed \\d+" }
{{ m::step(name="check") }}

[[expect.span]]
select = 'span[name="POST /orders" service.name="shop"]'
count = { min = 1, max = 5 }
"#;

    fn has_tera(text: &str) -> bool {
        text.contains("{{") || text.contains("{#") || text.contains("{%")
    }

    fn parse(text: &str) -> toml::Table {
        toml::from_str(text).unwrap_or_else(|e| panic!("not valid TOML: {e}\n{text}"))
    }

    fn formatted(input: &str) -> String {
        match format(input) {
            Ok(Formatted::Changed(text)) => text,
            Ok(Formatted::Unchanged) => input.to_string(),
            other => panic!("formatting {input:?} gave {other:?}"),
        }
    }

    /// Checks the exact output, that formatting it again changes nothing, and, for Tera-free
    /// input, that it means the same TOML as the input.
    #[track_caller]
    fn check(input: &str, expected: &str) {
        let output = formatted(input);
        assert_eq!(output, expected, "formatting {input:?}");
        assert_eq!(format(&output), Ok(Formatted::Unchanged), "formatting {output:?} again");
        if !has_tera(input) {
            assert_eq!(parse(&output), parse(input), "meaning changed for {input:?}");
        }
    }

    /// Checks that formatting `input` neither panics nor trips the safety net, and that any
    /// output is a fixed point.
    #[track_caller]
    fn check_robust(input: &str) {
        match format(input) {
            Ok(Formatted::Changed(output)) => {
                assert_eq!(format(&output), Ok(Formatted::Unchanged), "not idempotent on {input:?}");
            }
            Ok(_) => {}
            Err(e) => {
                assert!(!e.message.starts_with("internal"), "{input:?}: {}", e.message);
                assert!(e.span.start < e.span.end && e.span.end <= input.len(), "{input:?}: {e:?}");
            }
        }
    }

    fn error(input: &str) -> FormatError {
        format(input).expect_err(input)
    }

    #[test]
    fn sample_formats_nicely() {
        check(SAMPLE, SAMPLE_FORMATTED);
    }

    #[test]
    fn sample_without_tera_keeps_its_meaning() {
        let plain = SAMPLE.replace("{{ n }}", "3").replace("{{ m::step(name=\"check\") }}\n", "");
        let expected = SAMPLE_FORMATTED.replace("{{ n }}", "3").replace("{{ m::step(name=\"check\") }}\n", "");
        check(&plain, &expected);
    }

    #[test]
    fn formatted_input_is_unchanged() {
        assert_eq!(format(SAMPLE_FORMATTED), Ok(Formatted::Unchanged));
        assert_eq!(format("a = 1\n"), Ok(Formatted::Unchanged));
    }

    #[test]
    fn table_headers_lose_inner_spaces() {
        check("[ a . b ]\n", "[a.b]\n");
        check("[[ a.b ]]\nx = 1\n", "[[a.b]]\nx = 1\n");
        check("[ \"x y\" . 'z' ]\n", "[\"x y\".'z']\n");
        check("  [a]   # t\n", "[a]     # t\n");
        // Not an array-of-tables header, and must not become one.
        assert_eq!(format("[ [a] ]\n"), Ok(Formatted::Unchanged));
    }

    #[test]
    fn key_values_get_one_space_around_equals() {
        check("name   =   \"checkout\"\n", "name = \"checkout\"\n");
        check("a=1\n", "a = 1\n");
        check("\t  a = 1\n", "a = 1\n");
    }

    #[test]
    fn dotted_keys_lose_spaces_around_dots() {
        check("a . b = 1\n\"c\" .d= 2\ne. 'f' = 3\n", "a.b = 1\n\"c\".d = 2\ne.'f' = 3\n");
        check("t = { a . b = 1 }\n", "t = { a.b = 1 }\n");
    }

    #[test]
    fn dots_in_values_keep_their_spaces() {
        check("v = {{ major }} . {{ minor }}\n", "v = {{ major }} . {{ minor }}\n");
    }

    #[test]
    fn arrays_are_spaced() {
        check("a = [1,2]\n", "a = [1, 2]\n");
        check("a = [ ]\n", "a = []\n");
        check("a = [ [ 1 ,2 ] , [] ]\n", "a = [[1, 2], []]\n");
        check("a = [ { b = 1 } ]\n", "a = [{ b = 1 }]\n");
    }

    #[test]
    fn trailing_commas_are_left_as_written() {
        check("a = [1, 2,]\n", "a = [1, 2,]\n");
        check("a = [ 1 , 2 , ]\n", "a = [1, 2,]\n");
        check("a = [\n1,\n2\n]\n", "a = [\n    1,\n    2\n]\n");
    }

    #[test]
    fn inline_tables_are_spaced() {
        check("t = {a=1,b=2}\n", "t = { a = 1, b = 2 }\n");
        check("t = { }\n", "t = {}\n");
        check("t = {a={b=1}, c . d=[1]}\n", "t = { a = { b = 1 }, c.d = [1] }\n");
    }

    #[test]
    fn adjacent_atoms_keep_a_space_only_if_they_had_one() {
        check("d = 1979-05-27 07:32:00\n", "d = 1979-05-27 07:32:00\n");
        check("port = {{ base }}  \t {{ offset }}\n", "port = {{ base }} {{ offset }}\n");
        check("d=1979-05-27T07:32:00Z\n", "d = 1979-05-27T07:32:00Z\n");
        check("n = -1.5e3\n", "n = -1.5e3\n");
    }

    #[test]
    fn multi_line_arrays_are_reindented() {
        check(
            "run = [\n  \"a\",\n     \"b\",\n  \"c\", \"d\",\n      ]\n",
            "run = [\n    \"a\",\n    \"b\",\n    \"c\", \"d\",\n]\n",
        );
        check("a = [\n[\n1,\n],\n  [2, 3],\n    ]\n", "a = [\n    [\n        1,\n    ],\n    [2, 3],\n]\n");
    }

    #[test]
    fn brackets_opened_on_one_line_indent_by_depth() {
        check("a = [[\n1,\n]]\n", "a = [[\n        1,\n]]\n");
    }

    #[test]
    fn multi_line_inline_tables_are_reindented() {
        check(
            "t = {\na = 1,\n  b = { c = [\n2,\n] }\n     }\n",
            "t = {\n    a = 1,\n    b = { c = [\n            2,\n    ] }\n}\n",
        );
    }

    #[test]
    fn comments_inside_multi_line_arrays_are_kept() {
        check(
            "a = [ # first\n# own line\n1, # one\n  2,\n]\n",
            "a = [ # first\n    # own line\n    1, # one\n    2,\n]\n",
        );
    }

    #[test]
    fn blank_lines_inside_brackets_collapse_to_one() {
        check("a = [\n\n\n1,\n\n\n\n2,\n\n]\n", "a = [\n\n    1,\n\n    2,\n\n]\n");
    }

    #[test]
    fn trailing_comments_keep_their_column_when_the_code_fits() {
        check("a   =   1      # one\nbb = 2         # two\n", "a = 1          # one\nbb = 2         # two\n");
    }

    #[test]
    fn trailing_comments_follow_code_that_grew() {
        check("t={a=1}#c\n", "t = { a = 1 } #c\n");
        check("a = [\n1,# one\n]\n", "a = [\n    1, # one\n]\n");
    }

    #[test]
    fn comment_lines_at_depth_zero_are_not_indented() {
        check("   # note\na = 1\n", "# note\na = 1\n");
    }

    #[test]
    fn trailing_whitespace_is_removed() {
        check("a = 1   \n# c \t \n[t]  \n", "a = 1\n\n# c\n[t]\n");
    }

    #[test]
    fn blank_lines_at_the_ends_are_removed_and_runs_collapse() {
        check("\n\n\na = 1\n\n\n\nb = 2\n\n\n", "a = 1\n\nb = 2\n");
    }

    #[test]
    fn table_headers_get_one_blank_line_before() {
        check("a = 1\n[t]\nb = 2\n[[u]]\n", "a = 1\n\n[t]\nb = 2\n\n[[u]]\n");
        check("a = 1\n\n\n\n[t]\n", "a = 1\n\n[t]\n");
    }

    #[test]
    fn a_header_at_the_start_gets_no_blank_line() {
        check("\n\n[t]\n", "[t]\n");
        check("# file header\n[t]\n", "# file header\n[t]\n");
    }

    #[test]
    fn comments_directly_above_a_header_stay_attached() {
        check("a = 1\n# about t\n# more\n[t]\n", "a = 1\n\n# about t\n# more\n[t]\n");
        check("a = 1\n\n\n# about t\n\n[t]\n", "a = 1\n\n# about t\n\n[t]\n");
    }

    #[test]
    fn the_file_ends_with_exactly_one_newline() {
        check("a = 1", "a = 1\n");
        check("a = 1\n\n\n", "a = 1\n");
        assert_eq!(format(""), Ok(Formatted::Unchanged));
        assert_eq!(format(" \n\t\n  "), Ok(Formatted::Changed(String::new())));
    }

    #[test]
    fn crlf_input_stays_crlf() {
        check("a=1\r\n[t]\r\nb = [\r\n1,\r\n]\r\n", "a = 1\r\n\r\n[t]\r\nb = [\r\n    1,\r\n]\r\n");
        check("a = 1\r\nb = 2\n", "a = 1\r\nb = 2\r\n");
    }

    #[test]
    fn the_first_line_ending_decides() {
        check("a = 1\nb = 2\r\n", "a = 1\nb = 2\n");
        check("s = '''\nx'''\r\nb = 1\n", "s = '''\nx'''\r\nb = 1\r\n");
    }

    #[test]
    fn multi_line_strings_are_untouched() {
        let input = "s = \"\"\"\n[not.a.header]\n\n\n  # not a comment\nkey   =   value   \n\"\"\"\n\
                     l = '''\n[x]   \n\n\n= ,'''\nq = \"\"\"a\"\"\"\"\n";
        check(input, input);
        check("s = '''\n  x'''   # c\n", "s = '''\n  x'''   # c\n");
    }

    #[test]
    fn single_line_strings_are_untouched() {
        check("s = \"a  [b] = c # d \\\" e\"\n", "s = \"a  [b] = c # d \\\" e\"\n");
        check("s='a  # b'\n", "s = 'a  # b'\n");
    }

    #[test]
    fn tera_expressions_survive_verbatim() {
        check("count = {{ n }}\n", "count = {{ n }}\n");
        check("count={{n}}\n", "count = {{n}}\n");
        check("a = [{{ x }},{{ y }}]\n", "a = [{{ x }}, {{ y }}]\n");
        let input = "[services.{{ name }}]\nimage = \"x{{ tag }}\"\nport = {{ base }}{{ offset }}\n";
        check(input, input);
    }

    #[test]
    fn whole_line_tera_calls_survive_verbatim() {
        check(
            "  {{ m::service(name=\"db\",  image = 'x') }}\n[t]\n",
            "{{ m::service(name=\"db\",  image = 'x') }}\n\n[t]\n",
        );
        check("{{ m::x(\n  a = 1,\n) }}\n", "{{ m::x(\n  a = 1,\n) }}\n");
        check("{#  a\n   note #}\na = 1\n", "{#  a\n   note #}\na = 1\n");
    }

    /// The scenario `clnrm init` writes, which imports macros and calls one.
    const INIT_SCENARIO: &str = include_str!("../../assets/init/hello.clnrm.toml");

    #[test]
    fn the_init_scenario_is_already_formatted() {
        assert_eq!(format(INIT_SCENARIO), Ok(Formatted::Unchanged));
    }

    #[test]
    fn the_init_scenario_is_restored_from_a_mess() {
        let messy = INIT_SCENARIO
            .replace(" = ", "=")
            .replace("\n\n[services", "\n  [services")
            .replace("\n\n[[steps]]", "\n\n\n\n[[steps]]")
            .replace("\nimage", "\n\timage");
        assert_ne!(messy, INIT_SCENARIO);
        check(&messy, INIT_SCENARIO);
    }

    #[test]
    fn import_lines_are_kept_and_the_toml_around_them_formatted() {
        check(
            "{% import \"services.tera\" as svc %}   \n[scenario]\nname=\"imports\"\n\
             {{ svc::service(name=\"db\",  image = 'x') }}\n[[steps]]\nname  =  \"s\"\n  run=[ \"true\" ]\n",
            "{% import \"services.tera\" as svc %}\n[scenario]\nname = \"imports\"\n\
             {{ svc::service(name=\"db\",  image = 'x') }}\n\n[[steps]]\nname = \"s\"\nrun = [\"true\"]\n",
        );
    }

    #[test]
    fn for_and_if_blocks_keep_their_tag_lines_and_headers() {
        check(
            "[scenario]\nname = \"loop\"\n{% for i in range(end=3) %}\n[[steps]]\nname=\"step {{ i }}\"\n  \
             run = [\"echo\",\"{{ i }}\"]\n{% if i > 0 %}\n\n\n[[steps]]\nname =  \"after {{ i }}\"\n\
             [[steps]]\nname = \"last\"\n  {% endif %}\n{% endfor %}\n",
            "[scenario]\nname = \"loop\"\n{% for i in range(end=3) %}\n[[steps]]\nname = \"step {{ i }}\"\n\
             run = [\"echo\", \"{{ i }}\"]\n{% if i > 0 %}\n\n[[steps]]\nname = \"after {{ i }}\"\n\n\
             [[steps]]\nname = \"last\"\n  {% endif %}\n{% endfor %}\n",
        );
    }

    /// Headers that repeat in the branches of an `{% if %}` stay where they are, and the blank
    /// line (or none) between a tag line and a header is the author's.
    #[test]
    fn conditional_headers_are_left_in_place() {
        let input = "{% if a %}\n[t]\nx = 1\n{% else %}\n\n[t]\nx = 2\n{% endif %}\n[u]\n";
        check(input, input);
        check("a = 1\n{% if x %}\n# about t\n[t]\n{% endif %}\n", "a = 1\n{% if x %}\n# about t\n[t]\n{% endif %}\n");
    }

    #[test]
    fn tag_lines_inside_arrays_keep_their_indentation() {
        check(
            "run = [\n\"a\",\n  {% if x %}\n\"b\",\n  {% endif %}\n]\n",
            "run = [\n    \"a\",\n  {% if x %}\n    \"b\",\n  {% endif %}\n]\n",
        );
    }

    #[test]
    fn whitespace_control_tags_are_kept_verbatim() {
        check(
            "[vars]\n{%- set n = 3 %}\nx={{ n }}\n  {%- if n > 2 -%}  \ny  =  1\n{% endif -%}\n{%-endif-%}\n",
            "[vars]\n{%- set n = 3 %}\nx = {{ n }}\n  {%- if n > 2 -%}\ny = 1\n{% endif -%}\n{%-endif-%}\n",
        );
    }

    #[test]
    fn raw_blocks_are_untouched() {
        check(
            "a={% raw %}{{ x   }}{% endraw %}\n{%- raw -%}\ns  =  \"{{\"   [ 1,2 ]\n  {% if %}\n{%- endraw %}\nb=2\n",
            "a = {% raw %}{{ x   }}{% endraw %}\n{%- raw -%}\ns  =  \"{{\"   [ 1,2 ]\n  {% if %}\n{%- endraw %}\nb = 2\n",
        );
        // Only an `endraw` tag ends the block, whatever other tags or strings are inside.
        let input = "{% raw %}{% endif %}\"{%   endraw-%}\n";
        check(input, input);
    }

    /// Tags inside a line are formatted, not skipped: each is kept verbatim and spaced like a
    /// value (a space on either side only if there was one), so the TOML a branch renders to
    /// differs only in whitespace between its tokens, which means nothing. Brackets that only
    /// some branch opens can at worst throw off the indentation of the following lines.
    #[test]
    fn tags_inside_a_line_are_spaced_like_values() {
        check(
            "x = {% if a %}1{% else %}2{% endif %}\ny={%if a%} [ 1,2 ]{%else%}[]{%endif%}\n{% if a %}[ t . u ]{% endif %}\n",
            "x = {% if a %}1{% else %}2{% endif %}\ny = {%if a%} [1, 2]{%else%}[]{%endif%}\n\n{% if a %}[t.u]{% endif %}\n",
        );
        // Still a header after a tag: `[ [t] ]` must not become `[[t]]`.
        check("{% if a %}[ [t] ]\n", "{% if a %}[ [t] ]\n");
        check("a = [1 {% if b %}, 2 {% endif %}]\n", "a = [1 {% if b %}, 2 {% endif %}]\n");
    }

    #[test]
    fn tera_strings_do_not_end_tags_or_expressions() {
        check("{% set s = \"%}\" %}\na={{ 'x }}' }}\n", "{% set s = \"%}\" %}\na = {{ 'x }}' }}\n");
    }

    #[test]
    fn formatting_templated_files_is_idempotent() {
        let messy = "  {% import \"m.tera\" as m %}\n\n\n{%- for s in [1, 2] -%}\n[[steps]]\nname={{ s }}\n\
                     {% if s %}\n  x = [\n1,\n{% raw %} {{ }}{% endraw %}\n]\n{%endif%}{# n #}\n{% endfor %}\n\n";
        let once = formatted(messy);
        assert_eq!(format(&once), Ok(Formatted::Unchanged), "{once}");
    }

    #[test]
    fn macro_and_filter_blocks_skip_the_file() {
        let input = "a = 1\n{% macro step(name) %}\n[[steps]]\nname  =  \"{{ name }}\"\n{% endmacro %}\n";
        assert_eq!(format(input), Ok(Formatted::SkippedBlock { offset: 6, tag: "macro" }));
        let input = "a = 1\n{% if x %}\n{%- filter upper -%}\nb  =  true\n{% endfilter %}\n{% endif %}\n";
        assert_eq!(format(input), Ok(Formatted::SkippedBlock { offset: 17, tag: "filter" }));
        // Not tags: in a raw block or a string, or a different keyword.
        check(
            "{% raw %}{% macro x() %}{% endraw %}\ns=\"{% filter upper %}\"\n",
            "{% raw %}{% macro x() %}{% endraw %}\ns = \"{% filter upper %}\"\n",
        );
        check("{% set macros = 1 %}\n", "{% set macros = 1 %}\n");
    }

    #[test]
    fn unterminated_strings_are_errors_at_the_opening() {
        let unterminated = |span| FormatError { span, message: "unterminated string".to_string() };
        assert_eq!(error("a = \"abc\nb = 1\n"), unterminated(4..5));
        assert_eq!(error("a = \"abc\\\"\n"), unterminated(4..5));
        assert_eq!(error("a = \"abc\\\nd\"\n"), unterminated(4..5));
        assert_eq!(error("a = 'abc\n'\n"), unterminated(4..5));
        assert_eq!(error("a = \"abc"), unterminated(4..5));
    }

    #[test]
    fn unterminated_multi_line_strings_are_errors_at_the_opening() {
        let unterminated = |span| FormatError { span, message: "unterminated multi-line string".to_string() };
        assert_eq!(error("a = \"\"\"abc\n\"\"\n"), unterminated(4..7));
        assert_eq!(error("x = 1\na = '''abc''\n"), unterminated(10..13));
        assert_eq!(error("a = \"\"\"abc\\\"\"\""), unterminated(4..7));
    }

    #[test]
    fn unterminated_tera_is_an_error_at_the_opening() {
        assert_eq!(
            error("a = {{ n }\n"),
            FormatError { span: 4..6, message: "unterminated Tera expression".to_string() }
        );
        assert_eq!(
            error("a = 1\n{% if x }\n"),
            FormatError { span: 6..8, message: "unterminated Tera tag".to_string() }
        );
        assert_eq!(
            error("{% set s = \"%} %}\n"),
            FormatError { span: 0..2, message: "unterminated Tera tag".to_string() }
        );
        assert_eq!(
            error("a = 1\n{%- raw %}\n{% endraw\n"),
            FormatError { span: 6..16, message: "unterminated {% raw %} block".to_string() }
        );
        assert_eq!(
            error("a = 1\n{# note\n"),
            FormatError { span: 6..8, message: "unterminated Tera comment".to_string() }
        );
    }

    #[test]
    fn a_lone_carriage_return_is_an_error() {
        assert_eq!(
            error("a = 1\rb = 2\n"),
            FormatError { span: 5..6, message: "carriage return without a line feed".to_string() }
        );
    }

    #[test]
    fn the_safety_net_rejects_any_non_whitespace_change() {
        let tokens = lex("a . b = [1, 2] # c\n").expect("lexes");
        assert_eq!(verify(&tokens, "a.b = [1, 2]   # c\n"), Ok(()));
        for mangled in ["a.b = [12] # c\n", "a.b = [1, 2]\n", "a.b = [1, 2] # c!\n", "a.b = \"[1, 2] # c\n"] {
            let message = verify(&tokens, mangled).expect_err(mangled).message;
            assert!(message.starts_with("internal formatter error: "), "{message}");
            assert!(message.ends_with(", please report"), "{message}");
        }
    }

    /// Inputs a formatter could choke on; none of them may panic it.
    #[rustfmt::skip]
    const JUNK: &[&str] = &[
        "\"", "'", "\"\"", "''", "\"\"\"", "'''", "\"\"\"\"\"\"\"\"", "{{{", "{{", "}}", "{#", "#}", "]]]", "[[[",
        "= = =", "==", ",,,", "...", ". . .", "a.", ".a", "{ {", "} }", "[ [a] ]", "[a]]", "[a}", "{]",
        "\\", "\r", "\r\r\n", "é = ü", "\u{feff}[a]", "a =\n1", "[\n", "]\n[", "{\n\n\n}", "# é  ", "\"\\",
        "'''a''''''", "a = 1 .5", "{ # c\n}", "x = [1,,]", "\t\t\n\t", "[a] b = 1 # c", "{%", "%}", "{%}",
        "{%%}", "{%-%}", "{% '", "{% raw %}", "{% raw %}{% endraw", "{{ `", "{% if %}\n[a]\n{% endif %}",
    ];

    /// Building blocks for random inputs, biased towards what breaks lexers and printers.
    #[rustfmt::skip]
    const TRICKY_FRAGMENTS: &[&str] = &[
        "a", "1", ".", " ", "\t", "\n", "\r\n", "=", ",", "[", "]", "{", "}", "#", "\"", "'", "\"\"\"", "'''",
        "{{", "}}", "{#", "#}", "\\", "é", "x.y", "\r", "# c\n", "\"s\"", "'l'", "{{ v }}", "[[", "]]", "  ",
        "\n\n", "a . b", "= [", "x = {", "{# n #}", "1979-05-27 07:32:00", "{%", "%}", "{% if a %}", "{%- endif -%}",
        "{% raw %}", "{%- endraw %}", "`",
    ];

    /// Building blocks for random inputs, biased towards valid TOML.
    #[rustfmt::skip]
    const TOML_FRAGMENTS: &[&str] = &[
        "a", "b", "1", " ", "\t", "\n", " = ", "=", ",", "[", "]", "{", "}", "# c\n", "\"s\"", "'l'", "[t]\n",
        "[[u]]\n", " . ", ".", "\"\"\"\n[x]\n\"\"\"", "1979-05-27 07:32:00", "x = [", "y = {", "\n\n", "  ",
    ];

    /// Building blocks for random templates: tag lines among TOML lines.
    #[rustfmt::skip]
    const TEMPLATE_FRAGMENTS: &[&str] = &[
        "{% import \"m.tera\" as m %}\n", "{% for i in range(end=2) %}\n", "{% endfor %}\n", "  {%- if a -%}\n",
        "{% else %}\n", "{%- endif %}\n", "{% raw %}", "{% endraw %}", "[t]\n", "[[u]]\n", "a=1\n", " x = [", "1,",
        "]\n", "\n", "\n\n", "# c\n", "{{ m::s() }}\n", " ", "b = {% if a %}1{% else %}2{% endif %}\n", "\"s\"",
        "\"\"\"\n",
    ];

    /// `count` deterministic pseudo-random concatenations of up to `max_len` fragments.
    fn random_inputs(fragments: &[&str], count: usize, max_len: usize) -> Vec<String> {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize
        };
        (0..count)
            .map(|_| {
                let len = next() % (max_len + 1);
                (0..len).map(|_| fragments[next() % fragments.len()]).collect()
            })
            .collect()
    }

    #[test]
    fn junk_never_panics() {
        for input in JUNK {
            check_robust(input);
        }
    }

    #[test]
    fn every_prefix_of_the_sample_is_handled() {
        for (end, _) in SAMPLE.char_indices() {
            check_robust(&SAMPLE[..end]);
        }
    }

    /// Never a panic, never the safety net, always a fixed point after one pass.
    #[test]
    fn random_inputs_are_handled() {
        for input in random_inputs(TRICKY_FRAGMENTS, 50_000, 16) {
            check_robust(&input);
        }
    }

    /// Besides the checks on any input, every line that is one of the whole-line tag fragments is
    /// still a line of the output. (Not `{% raw %}`: a raw block may end on a later line with
    /// TOML after it, and that physical line is then not one of only tags.)
    #[test]
    fn random_templates_keep_their_tag_lines() {
        let is_tag_line = |line: &str| {
            TEMPLATE_FRAGMENTS
                .iter()
                .any(|f| f.trim_start().starts_with("{%") && f.ends_with('\n') && f.trim_end() == line)
        };
        let mut checked = 0;
        for input in random_inputs(TEMPLATE_FRAGMENTS, 20_000, 16) {
            check_robust(&input);
            let Ok(Formatted::Changed(output)) = format(&input) else { continue };
            for line in input.lines().map(str::trim_end).filter(|line| is_tag_line(line)) {
                assert!(output.lines().any(|out| out.trim_end() == line), "{line:?} lost from {input:?}:\n{output}");
                checked += 1;
            }
        }
        assert!(checked > 5_000, "only {checked} tag lines were checked");
    }

    #[test]
    fn random_valid_toml_keeps_its_meaning() {
        let mut valid = 0;
        for input in random_inputs(TOML_FRAGMENTS, 100_000, 20) {
            check_robust(&input);
            if has_tera(&input) {
                continue;
            }
            let Ok(table) = toml::from_str::<toml::Table>(&input) else {
                continue;
            };
            valid += 1;
            assert_eq!(parse(&formatted(&input)), table, "meaning changed for {input:?}");
        }
        assert!(valid > 5_000, "only {valid} inputs were valid TOML");
    }
}
