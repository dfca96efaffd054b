//! Span selectors: the small language scenario files use to pick out the
//! OpenTelemetry spans an expectation talks about.
//!
//! The language is modelled on Tracetest's span selectors, for example
//! `span[name="POST /orders" service.name="shop"]`, `span[http.status_code>=500]`,
//! `span[name=~"^GET /items/\d+$"]:first` or the descendant chain
//! `span[name="checkout"] span[name="charge"]`. This module only parses and
//! prints selectors; matching them against spans happens elsewhere.
//!
//! Grammar (`ws` is spaces, tabs and newlines):
//!
//! ```text
//! selector  := ws? compound (ws compound)* ws?
//! compound  := "span" ( "[" ws? condition ((ws | ws? "," ws?) condition)* ws? "]" )? pseudo?
//! condition := key ( ws? op ws? value )?              -- no operator: presence test
//! key       := segment ("." segment)* | string         -- segment: [A-Za-z_][A-Za-z0-9_-]*
//! op        := "=" | "!=" | "=~" | "!~" | "contains" | "<" | "<=" | ">" | ">="
//! value     := string | integer | float | "true" | "false"
//! string    := '"' ... '"' | "'" ... "'"                -- escapes: \" \' \\ \n \t
//! integer   := "-"? [0-9]+
//! float     := "-"? [0-9]+ "." [0-9]+
//! pseudo    := ":first" | ":last" | ":nth_child(" [0-9]+ ")"   -- position counts from 1
//! ```
//!
//! A backslash before any other character is kept as written, so regular
//! expressions such as `"\d+"` need no doubled backslashes. Integer literals
//! outside the `i64` range are read as floats. Quoting a key never changes its
//! meaning: `"kind"` and `kind` are the same key.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use regex::Regex;

/// A parsed selector: a chain of compounds, each one selecting spans that are
/// descendants of the spans selected by the compound before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    /// The descendant chain, outermost first; never empty when produced by [`parse`].
    pub compounds: Vec<Compound>,
}

/// One `span[...]:pseudo` step of a selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Compound {
    /// Conditions a span must all satisfy; empty for a bare `span`, which selects every span.
    pub conditions: Vec<Condition>,
    /// Narrows the matching spans to one by position; at most one per compound.
    pub pseudo: Option<Pseudo>,
}

/// One test of a span field or attribute, e.g. `http.status_code>=500`.
///
/// Equality compares what is tested (key and test) and ignores `span`, which
/// only records where the condition was written; this makes a selector equal
/// to the re-parse of its [`Display`](fmt::Display) text.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The span field or attribute the condition reads, e.g. `name` or `http.route`.
    pub key: String,
    /// What the value found under `key` must satisfy.
    pub test: Test,
    /// Byte range of the whole condition in the parsed input, for error reports.
    pub span: Range<usize>,
}

/// What a condition requires of the value found under its key.
///
/// Equality compares regular expressions by their pattern text, because
/// [`Regex`] itself has no notion of equality.
#[derive(Debug, Clone)]
pub enum Test {
    /// The key is present (written as a bare key).
    Exists,
    /// The value equals this one (`=`).
    Eq(Value),
    /// The value differs from this one (`!=`).
    Ne(Value),
    /// The value matches this regular expression, unanchored like [`Regex::is_match`] (`=~`).
    Matches(Regex),
    /// The value does not match this regular expression (`!~`).
    NotMatches(Regex),
    /// The value contains this text (`contains`).
    Contains(String),
    /// The value is a number less than this one (`<`).
    Lt(f64),
    /// The value is a number less than or equal to this one (`<=`).
    Le(f64),
    /// The value is a number greater than this one (`>`).
    Gt(f64),
    /// The value is a number greater than or equal to this one (`>=`).
    Ge(f64),
}

/// A literal written on the right of `=` or `!=`; it mirrors the attribute
/// value types OpenTelemetry spans carry.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A quoted string.
    Str(String),
    /// A whole number such as `200` or `-1`.
    Int(i64),
    /// A number with a fractional part such as `0.5`.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
}

/// Keeps one span out of those a compound matches, chosen by its position
/// among them (the matcher defines the order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pseudo {
    /// `:first`
    First,
    /// `:last`
    Last,
    /// `:nth_child(n)`, counting from 1.
    NthChild(usize),
}

/// Why a selector could not be parsed, with enough detail to draw a caret
/// under the offending text and suggest a fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError {
    /// Byte range of the input the caret belongs under; never empty, except
    /// `len..len` when the problem is the end of the input.
    pub span: Range<usize>,
    /// What is wrong, e.g. "expected `]` to close the condition list".
    pub message: String,
    /// What would be right, e.g. `quote the value: name="POST /orders"`.
    pub help: Option<String>,
}

/// Parses a selector, reporting the first problem found.
///
/// # Errors
///
/// Returns a [`SelectorError`] pointing at the first text that does not
/// follow the grammar or breaks one of its rules (e.g. a regex that does not
/// compile, `<` with a string, `:nth_child(0)`).
pub fn parse(input: &str) -> Result<Selector, SelectorError> {
    Parser { input, pos: 0 }.selector()
}

impl FromStr for Selector {
    type Err = SelectorError;

    /// Same as [`parse`], so selectors work with `str::parse`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse(input)
    }
}

/// The keys that read a span's own fields; every other key reads an attribute.
pub const SPAN_FIELDS: [&str; 3] = ["name", "kind", "status"];

/// Attribute keys selectors often name: common OpenTelemetry semantic conventions (current and
/// older names) and those of clnrm's own spans. A key that is none of these and no span field, but
/// close to one, is likely a misspelling.
const COMMON_ATTRIBUTES: [&str; 56] = [
    "service.name",
    "service.namespace",
    "service.version",
    "service.instance.id",
    "http.request.method",
    "http.response.status_code",
    "http.route",
    "http.method",
    "http.status_code",
    "http.url",
    "http.target",
    "url.full",
    "url.path",
    "url.query",
    "url.scheme",
    "server.address",
    "server.port",
    "client.address",
    "network.peer.address",
    "network.protocol.name",
    "net.peer.name",
    "net.peer.ip",
    "peer.service",
    "user_agent.original",
    "db.system",
    "db.system.name",
    "db.statement",
    "db.operation",
    "db.operation.name",
    "db.name",
    "db.namespace",
    "db.query.text",
    "db.collection.name",
    "messaging.system",
    "messaging.destination.name",
    "messaging.operation",
    "rpc.system",
    "rpc.service",
    "rpc.method",
    "rpc.grpc.status_code",
    "exception.type",
    "exception.message",
    "error.type",
    "code.function",
    "code.namespace",
    "otel.status_code",
    "clnrm.scenario",
    "clnrm.step.index",
    "clnrm.cache",
    "clnrm.outcome",
    "clnrm.wait.strategy",
    "container.name",
    "container.id",
    "container.image.name",
    "process.exit.code",
    "clnrm.run-id",
];

/// The span field or common attribute `key` is probably a misspelling of: `None` when `key` is one
/// of them, or close to none.
pub fn likely_meant(key: &str) -> Option<&'static str> {
    let known = || SPAN_FIELDS.iter().chain(&COMMON_ATTRIBUTES).copied();
    if known().any(|k| k == key) {
        return None;
    }
    crate::suggest::did_you_mean(key, known())
}

impl Selector {
    /// Every condition of the chain, outermost compound first.
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.compounds.iter().flat_map(|compound| &compound.conditions)
    }

    /// The attribute keys the selector reads (span fields left out), each once, in order.
    pub fn attribute_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for condition in self.conditions() {
            let key = condition.key.as_str();
            if !SPAN_FIELDS.contains(&key) && !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }
}

/// Shows only the message; callers draw `span` and `help` themselves.
impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SelectorError {}

/// Canonical text: compounds separated by one space, conditions by one space,
/// strings double-quoted. Parsing it gives back an equal selector.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, compound) in self.compounds.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{compound}")?;
        }
        Ok(())
    }
}

/// Canonical text of one step, e.g. `span[name="x" kind="server"]:first`.
impl fmt::Display for Compound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("span")?;
        if !self.conditions.is_empty() {
            let conditions: Vec<String> = self.conditions.iter().map(ToString::to_string).collect();
            write!(f, "[{}]", conditions.join(" "))?;
        }
        match self.pseudo {
            Some(pseudo) => write!(f, "{pseudo}"),
            None => Ok(()),
        }
    }
}

/// Canonical text of one condition, e.g. `name contains "order"`.
impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = key_text(&self.key);
        match &self.test {
            Test::Exists => write!(f, "{key}"),
            Test::Eq(value) => write!(f, "{key}={value}"),
            Test::Ne(value) => write!(f, "{key}!={value}"),
            Test::Matches(regex) => write!(f, "{key}=~{}", quoted(regex.as_str())),
            Test::NotMatches(regex) => write!(f, "{key}!~{}", quoted(regex.as_str())),
            Test::Contains(text) => write!(f, "{key} contains {}", quoted(text)),
            Test::Lt(number) => write!(f, "{key}<{}", bound(*number)),
            Test::Le(number) => write!(f, "{key}<={}", bound(*number)),
            Test::Gt(number) => write!(f, "{key}>{}", bound(*number)),
            Test::Ge(number) => write!(f, "{key}>={}", bound(*number)),
        }
    }
}

/// A comparison's bound as written: -0 as 0, which is what `-0` reads back as (an integer), so
/// that printing a selector twice gives the same text.
fn bound(number: f64) -> f64 {
    number + 0.0
}

/// Literal syntax; floats always show a decimal point so they re-parse as floats.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(text) => f.write_str(&quoted(text)),
            Value::Int(int) => write!(f, "{int}"),
            Value::Float(float) if float.fract() == 0.0 => write!(f, "{float}.0"),
            Value::Float(float) => write!(f, "{float}"),
            Value::Bool(bool) => write!(f, "{bool}"),
        }
    }
}

/// Pseudo-class syntax, including the leading colon.
impl fmt::Display for Pseudo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pseudo::First => f.write_str(":first"),
            Pseudo::Last => f.write_str(":last"),
            Pseudo::NthChild(n) => write!(f, ":nth_child({n})"),
        }
    }
}

impl PartialEq for Condition {
    /// Ignores `span`; see the type's documentation.
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.test == other.test
    }
}

impl PartialEq for Test {
    /// Compares regular expressions by pattern text.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Test::Exists, Test::Exists) => true,
            (Test::Eq(a), Test::Eq(b)) | (Test::Ne(a), Test::Ne(b)) => a == b,
            (Test::Matches(a), Test::Matches(b)) | (Test::NotMatches(a), Test::NotMatches(b)) => {
                a.as_str() == b.as_str()
            }
            (Test::Contains(a), Test::Contains(b)) => a == b,
            (Test::Lt(a), Test::Lt(b))
            | (Test::Le(a), Test::Le(b))
            | (Test::Gt(a), Test::Gt(b))
            | (Test::Ge(a), Test::Ge(b)) => a == b,
            _ => false,
        }
    }
}

/// A span field that has a fixed set of values, so only `=`/`!=` with one of
/// them makes sense and anything else is a mistake worth reporting early.
struct SpecialKey {
    /// The key as written in a selector.
    name: &'static str,
    /// Every value the field can take.
    values: &'static [&'static str],
    /// The value used in help examples.
    sample: &'static str,
}

/// The span fields with a fixed set of values: span kind and status code.
const SPECIAL_KEYS: [SpecialKey; 2] = [
    SpecialKey { name: "kind", values: &["internal", "server", "client", "producer", "consumer"], sample: "server" },
    SpecialKey { name: "status", values: &["ok", "error", "unset"], sample: "error" },
];

/// Pseudo-class names, used to suggest a fix for a misspelt one.
const PSEUDO_CLASSES: [&str; 3] = ["first", "last", "nth_child"];

/// A comparison operator as written, before its value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~`
    Matches,
    /// `!~`
    NotMatches,
    /// `contains`
    Contains,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    /// The operator's spelling, for messages.
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Matches => "=~",
            Op::NotMatches => "!~",
            Op::Contains => "contains",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    /// A plausible value for this operator, for help examples.
    fn sample(self) -> &'static str {
        match self {
            Op::Eq | Op::Ne => "\"checkout\"",
            Op::Matches | Op::NotMatches => "\"^GET /items\"",
            Op::Contains => "\"order\"",
            Op::Lt | Op::Le | Op::Gt | Op::Ge => "500",
        }
    }
}

/// A value together with where it was written, so checks can point at it.
struct Literal {
    /// The value as parsed.
    value: Value,
    /// Byte range of the value as written, quotes included.
    span: Range<usize>,
}

/// Recursive-descent parser over a cursor into the input; `pos` is always a
/// byte offset on a char boundary.
struct Parser<'a> {
    /// The whole selector text.
    input: &'a str,
    /// Byte offset of the next unread character.
    pos: usize,
}

impl<'a> Parser<'a> {
    /// `selector := ws? compound (ws compound)* ws?`
    fn selector(&mut self) -> Result<Selector, SelectorError> {
        self.skip_ws();
        let mut compounds = vec![self.compound()?];
        loop {
            let had_ws = self.skip_ws();
            match self.peek() {
                None => return Ok(Selector { compounds }),
                Some(_) if had_ws => compounds.push(self.compound()?),
                Some(c) => {
                    return Err(error(self.here(), format!("unexpected {}", found(Some(c))), after_compound_help(c)));
                }
            }
        }
    }

    /// `compound := "span" ("[" conditions "]")? pseudo?`
    fn compound(&mut self) -> Result<Compound, SelectorError> {
        self.span_keyword()?;
        let conditions = if self.peek() == Some('[') { self.conditions()? } else { Vec::new() };
        let pseudo = self.pseudo_class()?;
        Ok(Compound { conditions, pseudo })
    }

    /// Consumes the `span` that starts every compound.
    fn span_keyword(&mut self) -> Result<(), SelectorError> {
        let word = self.word();
        if word == "span" {
            self.pos += word.len();
            return Ok(());
        }
        let (span, found) = if word.is_empty() {
            (self.here(), found(self.peek()))
        } else {
            (self.pos..self.pos + word.len(), format!("`{word}`"))
        };
        let help = match self.peek() {
            Some('[') => "conditions attach directly to `span`, with no space: span[name=\"x\"]",
            None => "a bare `span` selects every span; narrow it with span[name=\"x\"]",
            Some(_) => "a selector starts with `span`, e.g. span[name=\"x\"]",
        };
        Err(error(span, format!("expected `span`, found {found}"), help))
    }

    /// `"[" ws? condition ((ws | ws? "," ws?) condition)* ws? "]"`
    fn conditions(&mut self) -> Result<Vec<Condition>, SelectorError> {
        let open = self.pos;
        self.bump();
        self.skip_ws();
        if self.eat(']') {
            return Err(error(
                open..self.pos,
                "empty condition list",
                "drop the brackets to select every span, or add a condition: span[name=\"x\"]",
            ));
        }
        let mut conditions = vec![self.condition()?];
        loop {
            let had_ws = self.skip_ws();
            match self.peek() {
                Some(']') => {
                    self.bump();
                    return Ok(conditions);
                }
                Some(',') => {
                    self.bump();
                    self.skip_ws();
                    if self.peek() == Some(']') {
                        return Err(error(self.here(), "expected a condition after `,`", "remove the trailing comma"));
                    }
                    conditions.push(self.condition()?);
                }
                None => {
                    return Err(error(
                        self.here(),
                        "expected `]` to close the condition list",
                        "add `]` after the last condition",
                    ));
                }
                Some(_) if had_ws => conditions.push(self.condition()?),
                Some(c) => {
                    return Err(error(
                        self.here(),
                        format!("expected a space, `,` or `]` after a condition, found {}", found(Some(c))),
                        "separate conditions with a space: span[name=\"x\" kind=\"server\"]",
                    ));
                }
            }
        }
    }

    /// `condition := key (ws? op ws? value)?`
    fn condition(&mut self) -> Result<Condition, SelectorError> {
        let start = self.pos;
        let key = self.key()?;
        let key_end = self.pos;
        self.skip_ws();
        let op_start = self.pos;
        let Some(op) = self.operator()? else {
            self.pos = key_end;
            if let Some(special) = special_key(&key) {
                return Err(error(
                    start..key_end,
                    format!("`{key}` cannot be tested for presence: every span has one"),
                    format!("compare it instead, e.g. {key}=\"{}\"", special.sample),
                ));
            }
            return Ok(Condition { key, test: Test::Exists, span: start..key_end });
        };
        let op_span = op_start..self.pos;
        self.skip_ws();
        let literal = self.value(&key, op)?;
        let test = match special_key(&key) {
            Some(special) => self.special_test(special, op, op_span, literal)?,
            None => self.test(&key, op, literal)?,
        };
        Ok(Condition { key, test, span: start..self.pos })
    }

    /// `key := segment ("." segment)* | string`
    fn key(&mut self) -> Result<String, SelectorError> {
        let start = self.pos;
        if let Some(quote @ ('"' | '\'')) = self.peek() {
            let key = self.string(quote)?;
            if key.is_empty() {
                return Err(error(
                    start..self.pos,
                    "empty attribute key",
                    "write the attribute's name between the quotes",
                ));
            }
            return Ok(key);
        }
        loop {
            if !self.peek().is_some_and(is_segment_start) {
                let expected = if self.pos == start { "an attribute key" } else { "a key segment after `.`" };
                return Err(error(
                    self.here(),
                    format!("expected {expected}, found {}", found(self.peek())),
                    "keys are dotted names like http.route; quote any other name: \"my key\"=1",
                ));
            }
            self.take_while(is_segment_char);
            if !self.eat('.') {
                return Ok(self.input[start..self.pos].to_string());
            }
        }
    }

    /// Reads an operator if one comes next; `None` means a presence test.
    fn operator(&mut self) -> Result<Option<Op>, SelectorError> {
        let start = self.pos;
        let op = match self.peek() {
            Some('=') => {
                self.bump();
                if self.eat('~') {
                    Op::Matches
                } else if self.eat('=') {
                    return Err(error(start..self.pos, "`==` is not an operator", "use `=` to test equality"));
                } else {
                    Op::Eq
                }
            }
            Some('!') => {
                self.bump();
                if self.eat('=') {
                    Op::Ne
                } else if self.eat('~') {
                    Op::NotMatches
                } else {
                    return Err(error(
                        start..self.pos,
                        "expected `!=` or `!~`",
                        "use `!=` for inequality or `!~` for a regex that must not match",
                    ));
                }
            }
            Some('<') => {
                self.bump();
                if self.eat('=') { Op::Le } else { Op::Lt }
            }
            Some('>') => {
                self.bump();
                if self.eat('=') { Op::Ge } else { Op::Gt }
            }
            _ if self.word() == "contains" => {
                self.pos += "contains".len();
                Op::Contains
            }
            _ => return Ok(None),
        };
        Ok(Some(op))
    }

    /// `value := string | number | true | false`
    fn value(&mut self, key: &str, op: Op) -> Result<Literal, SelectorError> {
        let start = self.pos;
        if let Some(quote @ ('"' | '\'')) = self.peek() {
            let value = Value::Str(self.string(quote)?);
            return Ok(Literal { value, span: start..self.pos });
        }
        let token = self.take_while(|c| !is_ws(c) && !matches!(c, ']' | '[' | ',' | '"' | '\''));
        let span = start..self.pos;
        match bare_literal(token) {
            Some(Value::Float(float)) if !float.is_finite() => Err(error(
                span,
                format!("number `{token}` is too large"),
                "use a number within the range of a 64-bit float",
            )),
            Some(value) => Ok(Literal { value, span }),
            None if token.is_empty() => Err(error(
                self.here(),
                format!("expected a value after `{}`, found {}", op.symbol(), found(self.peek())),
                format!("e.g. {}", example(key, op, op.sample())),
            )),
            None => Err(self.unquoted(start, token, key, op)),
        }
    }

    /// The error for bare text where a value belongs. It suggests quoting
    /// everything up to the next `]` or `,` (`name=POST /orders`), or just the
    /// bare word when that stretch holds operators or quotes of later conditions.
    fn unquoted(&self, start: usize, token: &str, key: &str, op: Op) -> SelectorError {
        let rest = &self.input[start..];
        let phrase = rest[..rest.find([']', ',']).unwrap_or(rest.len())].trim_end();
        // Trimming can eat into the word itself when it is whitespace to Unicode but not to
        // selectors (a form feed), which would leave the error pointing at nothing.
        let phrase = if phrase.len() < token.len() || phrase.contains(['=', '<', '>', '!', '~', '"', '\'']) {
            token
        } else {
            phrase
        };
        error(
            start..start + phrase.len(),
            format!("`{phrase}` must be quoted: only numbers, `true` and `false` can be bare"),
            format!("quote the value: {}", example(key, op, &quoted(phrase))),
        )
    }

    /// A quoted string starting at the current `quote`; returns its unescaped text.
    fn string(&mut self, quote: char) -> Result<String, SelectorError> {
        let start = self.pos;
        self.bump();
        let mut text = String::new();
        loop {
            let c = match self.bump() {
                Some('\\') => match self.bump() {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some(c @ ('"' | '\'' | '\\')) => c,
                    Some(c) => {
                        text.push('\\');
                        c
                    }
                    None => break,
                },
                Some(c) if c == quote => return Ok(text),
                Some(c) => c,
                None => break,
            };
            text.push(c);
        }
        Err(error(start..self.input.len(), "unterminated string", format!("close the string with `{quote}`")))
    }

    /// Checks that the value suits the operator and builds the test.
    fn test(&self, key: &str, op: Op, literal: Literal) -> Result<Test, SelectorError> {
        match op {
            Op::Eq => Ok(Test::Eq(literal.value)),
            Op::Ne => Ok(Test::Ne(literal.value)),
            Op::Matches => self.regex(key, op, literal).map(Test::Matches),
            Op::NotMatches => self.regex(key, op, literal).map(Test::NotMatches),
            Op::Contains => self.text(key, op, literal).map(Test::Contains),
            Op::Lt => self.number(key, op, literal).map(Test::Lt),
            Op::Le => self.number(key, op, literal).map(Test::Le),
            Op::Gt => self.number(key, op, literal).map(Test::Gt),
            Op::Ge => self.number(key, op, literal).map(Test::Ge),
        }
    }

    /// The string a text operator needs.
    fn text(&self, key: &str, op: Op, literal: Literal) -> Result<String, SelectorError> {
        match literal.value {
            Value::Str(text) => Ok(text),
            _ => {
                let written = &self.input[literal.span.clone()];
                Err(error(
                    literal.span,
                    format!("`{}` needs a quoted string", op.symbol()),
                    format!("quote it: {}", example(key, op, &quoted(written))),
                ))
            }
        }
    }

    /// The compiled regular expression `=~`/`!~` needs.
    fn regex(&self, key: &str, op: Op, literal: Literal) -> Result<Regex, SelectorError> {
        let span = literal.span.clone();
        let pattern = self.text(key, op, literal)?;
        Regex::new(&pattern).map_err(|err| {
            error(
                span,
                format!("invalid regular expression: {}", regex_reason(&err)),
                "patterns use Rust regex syntax; put a backslash before a special character to match it literally, e.g. \\(",
            )
        })
    }

    /// The number a comparison operator needs.
    fn number(&self, key: &str, op: Op, literal: Literal) -> Result<f64, SelectorError> {
        let help = match literal.value {
            // Beyond 2^53 the nearest f64 is as precise as a comparison can get.
            Value::Int(int) => return Ok(int as f64),
            Value::Float(float) => return Ok(float),
            Value::Str(text) if matches!(bare_literal(&text), Some(Value::Int(_) | Value::Float(_))) => {
                format!("remove the quotes: {}", example(key, op, &text))
            }
            _ => format!("e.g. {}", example(key, op, op.sample())),
        };
        let written = &self.input[literal.span.clone()];
        Err(error(literal.span, format!("`{}` needs a number, found `{written}`", op.symbol()), help))
    }

    /// Builds the test for `kind`/`status`, which only take `=`/`!=` with one
    /// of their known values.
    fn special_test(
        &self,
        special: &SpecialKey,
        op: Op,
        op_span: Range<usize>,
        literal: Literal,
    ) -> Result<Test, SelectorError> {
        let name = special.name;
        let sample = example(name, Op::Eq, &quoted(special.sample));
        if !matches!(op, Op::Eq | Op::Ne) {
            return Err(error(
                op_span,
                format!("`{name}` can only be compared with `=` or `!=`"),
                format!("e.g. {sample}"),
            ));
        }
        // A number or boolean is never a known value; "" stands in for it.
        let text = match &literal.value {
            Value::Str(text) => text.as_str(),
            _ => "",
        };
        if special.values.contains(&text) {
            return Ok(if op == Op::Eq { Test::Eq(literal.value) } else { Test::Ne(literal.value) });
        }
        let help = match special.values.iter().find(|v| v.eq_ignore_ascii_case(text)) {
            Some(value) => format!("did you mean {}?", example(name, op, &quoted(value))),
            None => format!("e.g. {sample}"),
        };
        Err(error(
            literal.span.clone(),
            format!("unknown {name} {}: expected one of {}", &self.input[literal.span], special.values.join(", ")),
            help,
        ))
    }

    /// `pseudo?`, with a clear error for a second pseudo-class.
    fn pseudo_class(&mut self) -> Result<Option<Pseudo>, SelectorError> {
        if self.peek() != Some(':') {
            return Ok(None);
        }
        let pseudo = self.pseudo()?;
        if self.peek() == Some(':') {
            let start = self.pos;
            self.pseudo()?;
            return Err(error(
                start..self.pos,
                "a compound can have only one pseudo-class",
                "keep one; to narrow further, add a descendant selector: span:first span:last",
            ));
        }
        Ok(Some(pseudo))
    }

    /// `pseudo := ":first" | ":last" | ":nth_child(" integer ")"`
    fn pseudo(&mut self) -> Result<Pseudo, SelectorError> {
        let start = self.pos;
        self.bump();
        let name = self.take_while(is_segment_char);
        match name {
            "first" => Ok(Pseudo::First),
            "last" => Ok(Pseudo::Last),
            "nth_child" => self.nth_child(),
            "" => Err(error(
                self.here(),
                format!("expected a pseudo-class after `:`, found {}", found(self.peek())),
                "use `:first`, `:last` or `:nth_child(N)`",
            )),
            _ => Err(error(start..self.pos, format!("unknown pseudo-class `:{name}`"), pseudo_suggestion(name))),
        }
    }

    /// The `(N)` after `:nth_child`, N counting from 1.
    fn nth_child(&mut self) -> Result<Pseudo, SelectorError> {
        let help = "give the position, counting from 1: `:nth_child(2)`";
        if !self.eat('(') {
            return Err(error(
                self.here(),
                format!("expected `(` after `:nth_child`, found {}", found(self.peek())),
                help,
            ));
        }
        let start = self.pos;
        let digits = self.take_while(|c| c.is_ascii_digit());
        let span = start..self.pos;
        if digits.is_empty() {
            return Err(error(
                self.here(),
                format!("expected a position in `:nth_child(…)`, found {}", found(self.peek())),
                help,
            ));
        }
        let Ok(n) = digits.parse::<usize>() else {
            return Err(error(span, format!("position `{digits}` is too large"), help));
        };
        if n == 0 {
            return Err(error(
                span,
                "`:nth_child` counts from 1, so position 0 selects nothing",
                "use `:nth_child(1)` for the first span",
            ));
        }
        if !self.eat(')') {
            return Err(error(
                self.here(),
                format!("expected `)` to close `:nth_child(`, found {}", found(self.peek())),
                format!("write `:nth_child({n})`"),
            ));
        }
        Ok(Pseudo::NthChild(n))
    }

    /// The next character, if any.
    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    /// Consumes and returns the next character.
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Consumes `want` if it comes next.
    fn eat(&mut self, want: char) -> bool {
        let matched = self.peek() == Some(want);
        if matched {
            self.pos += want.len_utf8();
        }
        matched
    }

    /// Skips whitespace, telling whether there was any (it separates
    /// compounds and conditions).
    fn skip_ws(&mut self) -> bool {
        !self.take_while(is_ws).is_empty()
    }

    /// Consumes the longest run of characters satisfying `keep`.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let rest = &self.input[self.pos..];
        let len = rest.find(|c| !keep(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// The word starting here (letters, digits, `_`, `-`, `.`), without consuming it.
    fn word(&self) -> &'a str {
        let rest = &self.input[self.pos..];
        let is_word_char = |c| is_segment_char(c) || c == '.';
        &rest[..rest.find(|c| !is_word_char(c)).unwrap_or(rest.len())]
    }

    /// The span of the next character, or `len..len` at the end of input.
    fn here(&self) -> Range<usize> {
        self.pos..self.pos + self.peek().map_or(0, char::len_utf8)
    }
}

/// Builds an error; every error carries help.
fn error(span: Range<usize>, message: impl Into<String>, help: impl Into<String>) -> SelectorError {
    SelectorError { span, message: message.into(), help: Some(help.into()) }
}

/// Names what was found instead of what was expected; control characters
/// such as a newline are escaped so the message stays on one line.
fn found(c: Option<char>) -> String {
    match c {
        Some(c) if c.is_control() => format!("`{}`", c.escape_default()),
        Some(c) => format!("`{c}`"),
        None => "the end of the selector".to_string(),
    }
}

/// Help for text that follows a complete compound without whitespace.
fn after_compound_help(c: char) -> &'static str {
    match c {
        '(' => "conditions go in square brackets: span[name=\"x\"]",
        '[' => "put all conditions in one pair of brackets, right after `span`: span[a=1 b=2]:first",
        c if c.is_alphanumeric() => "separate descendant selectors with a space: span[name=\"a\"] span[name=\"b\"]",
        _ => "a selector ends after `]` or a pseudo-class; remove the extra text",
    }
}

/// Suggests the pseudo-class closest to a misspelt one.
fn pseudo_suggestion(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    crate::suggest::did_you_mean(&name, PSEUDO_CLASSES.iter().copied()).map_or_else(
        || "use `:first`, `:last` or `:nth_child(N)`".to_string(),
        |candidate| format!("did you mean `:{candidate}`?"),
    )
}

/// The special key with this name, if any.
fn special_key(key: &str) -> Option<&'static SpecialKey> {
    SPECIAL_KEYS.iter().find(|special| special.name == key)
}

/// Reads an unquoted value: `true`, `false`, an integer or a float.
fn bare_literal(token: &str) -> Option<Value> {
    match token {
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        _ => {}
    }
    let unsigned = token.strip_prefix('-').unwrap_or(token);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    if !is_digits(whole) || !fraction.is_none_or(is_digits) {
        return None;
    }
    match (fraction, token.parse::<i64>()) {
        (None, Ok(int)) => Some(Value::Int(int)),
        _ => token.parse().ok().map(Value::Float),
    }
}

/// True for a non-empty run of ASCII digits.
fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Whitespace that separates compounds and conditions.
fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// First character of a key segment.
fn is_segment_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// Any later character of a key segment.
fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A key as written: bare when the grammar allows, quoted otherwise.
/// `contains` is quoted because after a presence test it would read as the operator.
fn key_text(key: &str) -> String {
    let bare = key != "contains"
        && key.split('.').all(|segment| {
            let mut chars = segment.chars();
            chars.next().is_some_and(is_segment_start) && chars.all(is_segment_char)
        });
    if bare { key.to_string() } else { quoted(key) }
}

/// `text` as a double-quoted string literal. A backslash is doubled only
/// where it would otherwise start an escape, so regexes stay readable: before
/// the end, before what is written escaped (`"`, `\`, a newline, a tab), and
/// before a character that makes an escape with it (`'`, `n`, `t`).
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\\' if matches!(chars.peek(), None | Some('"' | '\'' | '\\' | 'n' | 't' | '\n' | '\t')) => {
                out.push_str("\\\\");
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How a condition with this key, operator and value is written, for help text.
fn example(key: &str, op: Op, value: &str) -> String {
    let key = key_text(key);
    match op {
        Op::Contains => format!("{key} contains {value}"),
        _ => format!("{key}{}{value}", op.symbol()),
    }
}

/// The one-line reason from a regex error; its full text repeats the
/// pattern over several lines.
fn regex_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines().rev().find_map(|line| line.strip_prefix("error: ")).unwrap_or(&text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses input that must be valid.
    fn ok(input: &str) -> Selector {
        match parse(input) {
            Ok(selector) => selector,
            Err(err) => panic!("{input:?} should parse, got {err:?}"),
        }
    }

    /// The single condition of a single-compound selector.
    fn only_condition(input: &str) -> Condition {
        let selector = ok(input);
        assert_eq!(selector.compounds.len(), 1, "{input}");
        let compound = &selector.compounds[0];
        assert_eq!(compound.conditions.len(), 1, "{input}");
        compound.conditions[0].clone()
    }

    /// Parses input that must be invalid.
    fn err(input: &str) -> SelectorError {
        match parse(input) {
            Ok(selector) => panic!("{input:?} should fail, parsed as {selector:?}"),
            Err(err) => err,
        }
    }

    /// Asserts the exact message and span of an error, and part of its help.
    fn check_err(input: &str, span: Range<usize>, message: &str, help: &str) {
        let err = err(input);
        assert_eq!(err.message, message, "message for {input:?}");
        assert_eq!(err.span, span, "span for {input:?}");
        let actual = err.help.unwrap_or_default();
        assert!(actual.contains(help), "help for {input:?}: {actual:?} lacks {help:?}");
    }

    /// A regex from a known-good test pattern.
    fn re(pattern: &str) -> Regex {
        Regex::new(pattern).expect("test pattern is valid")
    }

    /// A string value.
    fn str_value(text: &str) -> Value {
        Value::Str(text.to_string())
    }

    #[test]
    fn bare_span_selects_everything() {
        let selector = ok("span");
        assert_eq!(selector.compounds, vec![Compound { conditions: vec![], pseudo: None }]);
        assert_eq!(ok("  \n span \t"), selector);
    }

    #[test]
    fn every_operator() {
        let cases = [
            ("span[a]", Test::Exists),
            ("span[a=\"x\"]", Test::Eq(str_value("x"))),
            ("span[a!=\"x\"]", Test::Ne(str_value("x"))),
            ("span[a=~\"^x\"]", Test::Matches(re("^x"))),
            ("span[a!~\"^x\"]", Test::NotMatches(re("^x"))),
            ("span[a contains \"x\"]", Test::Contains("x".to_string())),
            ("span[a<1]", Test::Lt(1.0)),
            ("span[a<=1.5]", Test::Le(1.5)),
            ("span[a>-2]", Test::Gt(-2.0)),
            ("span[a>=500]", Test::Ge(500.0)),
        ];
        for (input, test) in cases {
            let condition = only_condition(input);
            assert_eq!(condition.key, "a", "{input}");
            assert_eq!(condition.test, test, "{input}");
        }
    }

    #[test]
    fn whitespace_around_operators_and_conditions() {
        let expected = ok("span[a=1 b contains \"x\" c>=2]");
        for input in [
            "span[ a = 1 b contains \"x\" c >= 2 ]",
            "span[a=1,b contains\"x\",c>=2]",
            "span[\n\ta=1 ,\n\tb contains \"x\" ,c>=2\n]",
        ] {
            assert_eq!(ok(input), expected, "{input}");
        }
    }

    #[test]
    fn contains_word_starts_a_key_when_not_an_operator() {
        let selector = ok("span[a containsx=1]");
        let keys: Vec<&str> = selector.compounds[0].conditions.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["a", "containsx"]);
    }

    #[test]
    fn each_value_type() {
        let cases = [
            ("span[a=\"x y\"]", str_value("x y")),
            ("span[a='x y']", str_value("x y")),
            ("span[a=\"\"]", str_value("")),
            ("span[a=200]", Value::Int(200)),
            ("span[a=-7]", Value::Int(-7)),
            ("span[a=0.25]", Value::Float(0.25)),
            ("span[a=-1.5]", Value::Float(-1.5)),
            ("span[a=2.0]", Value::Float(2.0)),
            ("span[a=true]", Value::Bool(true)),
            ("span[a=false]", Value::Bool(false)),
            ("span[a=\"200\"]", str_value("200")),
            ("span[a=\"true\"]", str_value("true")),
            ("span[a=99999999999999999999]", Value::Float(1e20)),
        ];
        for (input, value) in cases {
            assert_eq!(only_condition(input).test, Test::Eq(value), "{input}");
        }
    }

    #[test]
    fn presence_test() {
        let condition = only_condition("span[db.system]");
        assert_eq!(condition.key, "db.system");
        assert_eq!(condition.test, Test::Exists);
        assert_eq!(condition.span, 5..14);
    }

    #[test]
    fn dotted_and_quoted_keys() {
        let cases = [
            ("span[http.response.status_code=1]", "http.response.status_code"),
            ("span[_x.y-z.a1=1]", "_x.y-z.a1"),
            ("span[\"odd key!\"=1]", "odd key!"),
            ("span['a\"b'=1]", "a\"b"),
            ("span[\"é\"=1]", "é"),
        ];
        for (input, key) in cases {
            assert_eq!(only_condition(input).key, key, "{input}");
        }
    }

    #[test]
    fn quoted_key_means_the_same_as_bare() {
        assert_eq!(ok("span[\"name\"=\"x\"]"), ok("span[name=\"x\"]"));
    }

    #[test]
    fn string_escapes() {
        let cases = [
            (r#"span[a="say \"hi\""]"#, "say \"hi\""),
            (r#"span[a='it\'s']"#, "it's"),
            (r#"span[a="it's"]"#, "it's"),
            (r#"span[a='say "hi"']"#, "say \"hi\""),
            (r#"span[a="back\\slash"]"#, "back\\slash"),
            (r#"span[a="line\nnext"]"#, "line\nnext"),
            (r#"span[a="tab\there"]"#, "tab\there"),
            (r#"span[a="\d+"]"#, "\\d+"),
        ];
        for (input, text) in cases {
            assert_eq!(only_condition(input).test, Test::Eq(str_value(text)), "{input}");
        }
    }

    #[test]
    fn regex_backslashes_need_no_doubling() {
        let condition = only_condition(r#"span[name=~"^GET /items/\d+$"]"#);
        assert_eq!(condition.test, Test::Matches(re(r"^GET /items/\d+$")));
    }

    #[test]
    fn special_keys_accept_their_values() {
        for kind in ["internal", "server", "client", "producer", "consumer"] {
            let input = format!("span[kind=\"{kind}\"]");
            assert_eq!(only_condition(&input).test, Test::Eq(str_value(kind)));
        }
        for status in ["ok", "error", "unset"] {
            let input = format!("span[status!='{status}']");
            assert_eq!(only_condition(&input).test, Test::Ne(str_value(status)));
        }
    }

    #[test]
    fn condition_spans_cover_the_condition() {
        let selector = ok("span[name=\"x\" kind=\"server\", db.system]");
        let spans: Vec<Range<usize>> = selector.compounds[0].conditions.iter().map(|c| c.span.clone()).collect();
        assert_eq!(spans, [5..13, 14..27, 29..38]);
        assert_eq!(only_condition("span[ a  contains  'b' ]").span, 6..22);
    }

    #[test]
    fn descendant_chain() {
        let selector = ok("span[name=\"checkout\"]  span \n\tspan[name=\"charge\"]:last");
        assert_eq!(selector.compounds.len(), 3);
        assert_eq!(selector.compounds[0].conditions[0].key, "name");
        assert!(selector.compounds[1].conditions.is_empty());
        assert_eq!(selector.compounds[2].conditions[0].test, Test::Eq(str_value("charge")));
        assert_eq!(selector.compounds[2].pseudo, Some(Pseudo::Last));
    }

    #[test]
    fn every_pseudo_class() {
        let cases = [
            ("span[name=\"retry\"]:first", Pseudo::First),
            ("span[name=\"retry\"]:last", Pseudo::Last),
            ("span[name=\"retry\"]:nth_child(2)", Pseudo::NthChild(2)),
            ("span:nth_child(1)", Pseudo::NthChild(1)),
            ("span:first", Pseudo::First),
        ];
        for (input, pseudo) in cases {
            assert_eq!(ok(input).compounds[0].pseudo, Some(pseudo), "{input}");
        }
        assert_eq!(ok("span[a]").compounds[0].pseudo, None);
    }

    #[test]
    fn from_str_matches_parse() {
        let selector: Selector = "span[a=1]:first span".parse().expect("valid");
        assert_eq!(selector, ok("span[a=1]:first span"));
        assert!("spam".parse::<Selector>().is_err());
    }

    #[test]
    fn condition_equality_ignores_span_but_not_meaning() {
        let a = only_condition("span[a=1]");
        let b = only_condition("span[  a = 1 ]");
        assert_ne!(a.span, b.span);
        assert_eq!(a, b);
        assert_ne!(a, only_condition("span[a=1.0]"));
        assert_ne!(only_condition("span[a=~\"x\"]"), only_condition("span[a!~\"x\"]"));
        assert_ne!(only_condition("span[a=~\"x\"]"), only_condition("span[a=~\"y\"]"));
    }

    #[test]
    fn display_is_canonical() {
        let cases = [
            ("span", "span"),
            ("span[name=\"POST /orders\" service.name=\"shop\"]", "span[name=\"POST /orders\" service.name=\"shop\"]"),
            (r#"span[name=~"^GET /items/\d+$"]"#, r#"span[name=~"^GET /items/\d+$"]"#),
            ("span[ a = 1 , b='x' ]", "span[a=1 b=\"x\"]"),
            ("span[a contains'x']", "span[a contains \"x\"]"),
            ("span[a=1.50 b=2.0 c<2.0 d>=-0.5]", "span[a=1.5 b=2.0 c<2 d>=-0.5]"),
            ("span[\"plain\" \"odd key\"=1]", "span[plain \"odd key\"=1]"),
            ("span[\"contains\"]", "span[\"contains\"]"),
            (r#"span[a='it\'s "x"']"#, r#"span[a="it's \"x\""]"#),
            (r#"span[a="x\\" b="\\n" c="\\d"]"#, r#"span[a="x\\" b="\\n" c="\d"]"#),
            ("span[a=\"\tx\ny\"]", r#"span[a="\tx\ny"]"#),
            ("span[a]:first\n  span:nth_child(3)", "span[a]:first span:nth_child(3)"),
        ];
        for (input, canonical) in cases {
            assert_eq!(ok(input).to_string(), canonical, "{input}");
        }
    }

    #[test]
    fn display_round_trips() {
        let examples = [
            "span",
            "span[name=\"POST /orders\" service.name=\"shop\"]",
            "span[http.response.status_code=200]",
            "span[db.system]",
            r#"span[name=~"^GET /items/\d+$"]"#,
            r#"span[name!~'^health\\\\']"#,
            "span[name contains \"order\"]",
            "span[http.status_code>=500]",
            "span[a<1 b<=-2.5 c>99999999999999999999 d>=0.1]",
            "span[name!=\"health\"]",
            "span[kind=\"server\"]",
            "span[status=\"error\"]",
            "span[name=\"checkout\"] span[name=\"charge\"]",
            "span[name=\"retry\"]:first",
            "span[name=\"retry\"]:last",
            "span[name=\"retry\"]:nth_child(2)",
            "span[a=1 b=-1 c=1.0 d=-0.0 e=true f=false g=\"\" h=99999999999999999999]",
            "span[\"odd key\"=1 \"contains\" x contains \"y\"]",
            r#"span[a="q\"q" b='\\' c="\\\\" d="\n\t" e="\x"]"#,
            "span[\"é\"=\"ü\"]:last span span:nth_child(10)",
            "span[a<-0.0 b<=-0.0 c>-0.0 d>=-0.0]",
            // A backslash before a tab or newline written as themselves, then escaped.
            "span[a=\"x\\\tq\" b=\"\\\n\" c=\"\\\t\"]",
        ];
        for input in examples {
            let selector = ok(input);
            let text = selector.to_string();
            assert_eq!(ok(&text), selector, "{input} -> {text}");
            assert_eq!(ok(&text).to_string(), text, "{input} -> {text} is not canonical");
        }
    }

    #[test]
    fn an_unquoted_word_of_unicode_whitespace_is_pointed_at() {
        // A form feed or a vertical tab is no separator in selectors, but `trim` removes it.
        for input in ["span[a=\u{c}]", "span[name=\t\u{b}\t,\t\"x\"]"] {
            let e = err(input);
            assert!(!e.span.is_empty(), "{input:?}: {e:?}");
            assert!(e.message.ends_with("must be quoted: only numbers, `true` and `false` can be bare"), "{e:?}");
        }
    }

    #[test]
    fn error_invalid_regex() {
        for op in ["=~", "!~"] {
            let input = format!("span[a{op}\"(\"]");
            check_err(&input, 8..11, "invalid regular expression: unclosed group", "Rust regex syntax");
        }
    }

    #[test]
    fn error_regex_needs_string() {
        check_err("span[a=~1]", 8..9, "`=~` needs a quoted string", "quote it: a=~\"1\"");
        check_err("span[a!~true]", 8..12, "`!~` needs a quoted string", "quote it: a!~\"true\"");
    }

    #[test]
    fn error_contains_needs_string() {
        check_err("span[a contains 12]", 16..18, "`contains` needs a quoted string", "quote it: a contains \"12\"");
    }

    #[test]
    fn error_comparison_needs_number() {
        check_err("span[a<\"5\"]", 7..10, "`<` needs a number, found `\"5\"`", "remove the quotes: a<5");
        check_err("span[a>=true]", 8..12, "`>=` needs a number, found `true`", "e.g. a>=500");
        check_err("span[a>'x']", 7..10, "`>` needs a number, found `'x'`", "e.g. a>500");
        check_err("span[a<=\"true\"]", 8..14, "`<=` needs a number, found `\"true\"`", "e.g. a<=500");
    }

    #[test]
    fn error_special_key_operator() {
        check_err(
            "span[kind=~\"serv\"]",
            9..11,
            "`kind` can only be compared with `=` or `!=`",
            "e.g. kind=\"server\"",
        );
        check_err(
            "span[status contains \"err\"]",
            12..20,
            "`status` can only be compared with `=` or `!=`",
            "e.g. status=\"error\"",
        );
    }

    #[test]
    fn error_special_key_value() {
        check_err(
            "span[kind=\"SERVER\"]",
            10..18,
            "unknown kind \"SERVER\": expected one of internal, server, client, producer, consumer",
            "did you mean kind=\"server\"?",
        );
        check_err(
            "span[status!=2]",
            13..14,
            "unknown status 2: expected one of ok, error, unset",
            "e.g. status=\"error\"",
        );
    }

    #[test]
    fn error_special_key_presence() {
        check_err("span[a kind]", 7..11, "`kind` cannot be tested for presence: every span has one", "kind=\"server\"");
    }

    #[test]
    fn error_unknown_pseudo_class() {
        check_err("span[a]:frist", 7..13, "unknown pseudo-class `:frist`", "did you mean `:first`?");
        check_err("span:nth-child(2)", 4..14, "unknown pseudo-class `:nth-child`", "did you mean `:nth_child`?");
        check_err("span:middle", 4..11, "unknown pseudo-class `:middle`", "use `:first`, `:last` or `:nth_child(N)`");
        check_err("span: first", 5..6, "expected a pseudo-class after `:`, found ` `", "use `:first`");
    }

    #[test]
    fn error_nth_child_zero() {
        check_err(
            "span:nth_child(0)",
            15..16,
            "`:nth_child` counts from 1, so position 0 selects nothing",
            "`:nth_child(1)`",
        );
    }

    #[test]
    fn error_nth_child_syntax() {
        check_err(
            "span:nth_child",
            14..14,
            "expected `(` after `:nth_child`, found the end of the selector",
            "`:nth_child(2)`",
        );
        check_err("span:nth_child(x)", 15..16, "expected a position in `:nth_child(…)`, found `x`", "`:nth_child(2)`");
        check_err(
            "span:nth_child(2",
            16..16,
            "expected `)` to close `:nth_child(`, found the end of the selector",
            "write `:nth_child(2)`",
        );
        check_err(
            "span:nth_child(99999999999999999999999)",
            15..38,
            "position `99999999999999999999999` is too large",
            "counting from 1",
        );
    }

    #[test]
    fn error_second_pseudo_class() {
        check_err("span:first:nth_child(2) span", 10..23, "a compound can have only one pseudo-class", "keep one");
    }

    #[test]
    fn error_empty_brackets() {
        check_err("span[]", 4..6, "empty condition list", "drop the brackets");
        check_err("span[ \n ]", 4..9, "empty condition list", "drop the brackets");
    }

    #[test]
    fn error_not_span() {
        check_err("spam[name=\"x\"]", 0..4, "expected `span`, found `spam`", "a selector starts with `span`");
        check_err("span[a=1] spans", 10..15, "expected `span`, found `spans`", "a selector starts with `span`");
        check_err("span [a=1]", 5..6, "expected `span`, found `[`", "no space");
        check_err("", 0..0, "expected `span`, found the end of the selector", "a bare `span` selects every span");
        check_err(" \t", 2..2, "expected `span`, found the end of the selector", "a bare `span` selects every span");
    }

    #[test]
    fn error_parentheses_instead_of_brackets() {
        check_err("span(name=\"x\")", 4..5, "unexpected `(`", "conditions go in square brackets");
    }

    #[test]
    fn error_trailing_garbage() {
        check_err("span[a=1]]", 9..10, "unexpected `]`", "remove the extra text");
        check_err("span[a=1]span", 9..10, "unexpected `s`", "separate descendant selectors with a space");
        check_err("span:first[a=1]", 10..11, "unexpected `[`", "one pair of brackets");
        check_err("span\u{7}", 4..5, "unexpected `\\u{7}`", "remove the extra text");
    }

    #[test]
    fn error_unterminated_string() {
        check_err("span[a=\"x]", 7..10, "unterminated string", "close the string with `\"`");
        check_err("span['a", 5..7, "unterminated string", "close the string with `'`");
        check_err("span[a=\"x\\", 7..10, "unterminated string", "close the string");
    }

    #[test]
    fn error_unterminated_bracket() {
        check_err("span[a=1", 8..8, "expected `]` to close the condition list", "add `]`");
        check_err("span[a b ", 9..9, "expected `]` to close the condition list", "add `]`");
    }

    #[test]
    fn error_unquoted_value() {
        check_err(
            "span[name=POST /orders]",
            10..22,
            "`POST /orders` must be quoted: only numbers, `true` and `false` can be bare",
            "quote the value: name=\"POST /orders\"",
        );
        check_err(
            "span[kind=server a=1]",
            10..16,
            "`server` must be quoted: only numbers, `true` and `false` can be bare",
            "quote the value: kind=\"server\"",
        );
        check_err(
            "span[a contains x, b=1]",
            16..17,
            "`x` must be quoted: only numbers, `true` and `false` can be bare",
            "quote the value: a contains \"x\"",
        );
    }

    #[test]
    fn error_missing_value() {
        check_err("span[a= ]", 8..9, "expected a value after `=`, found `]`", "e.g. a=\"checkout\"");
        check_err("span[a>=", 8..8, "expected a value after `>=`, found the end of the selector", "e.g. a>=500");
    }

    #[test]
    fn error_number_too_large() {
        let digits = "9".repeat(400);
        let input = format!("span[a={digits}]");
        let message = format!("number `{digits}` is too large");
        check_err(&input, 7..407, &message, "64-bit float");
    }

    #[test]
    fn error_bad_operator() {
        check_err("span[a==1]", 6..8, "`==` is not an operator", "use `=`");
        check_err("span[a!1]", 6..7, "expected `!=` or `!~`", "use `!=`");
    }

    #[test]
    fn error_bad_separator() {
        check_err("span[a=1,]", 9..10, "expected a condition after `,`", "remove the trailing comma");
        check_err(
            "span[a=\"x\"b=1]",
            10..11,
            "expected a space, `,` or `]` after a condition, found `b`",
            "separate conditions with a space",
        );
    }

    #[test]
    fn error_bad_key() {
        check_err("span[é=1]", 5..7, "expected an attribute key, found `é`", "quote any other name");
        check_err("span[a.=1]", 7..8, "expected a key segment after `.`, found `=`", "dotted names");
        check_err("span[1a=1]", 5..6, "expected an attribute key, found `1`", "dotted names");
        check_err("span[\"\"=1]", 5..7, "empty attribute key", "between the quotes");
    }

    /// Asserts parse returns without panicking and any error span is a
    /// well-formed caret position.
    fn assert_well_behaved(input: &str) {
        let Err(err) = parse(input) else { return };
        let span = err.span;
        let len = input.len();
        assert!(span.start <= span.end && span.end <= len, "{input:?}: span {span:?} out of 0..={len}");
        assert!(
            input.is_char_boundary(span.start) && input.is_char_boundary(span.end),
            "{input:?}: span {span:?} splits a char"
        );
        assert!(!span.is_empty() || span.start == len, "{input:?}: empty span {span:?} before the end");
        assert!(err.help.is_some(), "{input:?}: no help for {}", err.message);
    }

    #[test]
    fn never_panics_on_prefixes_or_junk() {
        let valid = [
            "span[name=\"POST /orders\" service.name=\"shop\"]:first",
            r#"span[name=~"^GET /items/\d+$", kind='server'] span[db.system]:nth_child(12)"#,
            "span[\"é key\"='ü\\'\\n' a contains \"x\" b>=-1.5 c!~\"\\(\"]:last",
            "span[status!=\"error\"] span:first span[a<1]",
        ];
        let junk = [
            "[",
            "span[",
            "span[a=\"",
            "span[a=~\"(\"]",
            "span[é=1]",
            "span[a=1]:nth_child(",
            "span[a=1]:nth_child(é)",
            "span[a=é]",
            "span[a=1é]",
            "spané",
            "span:é",
            "span[a é]",
            "span[a=1]é",
            "é",
            "\"",
            "span[\"\\",
            "span[a=-]",
            "span[a=1.]",
            "span[a=.5]",
            "span[a=--1]",
            "span[a<-]",
            "span[,]",
            "span[a,,b]",
            "span:",
            "span::",
            "]]]",
            "span[a=\"x\"]:first:last:first",
            "span[kind]",
            "span[kind=\"é\"]",
            "\u{0}",
            "span[a=\u{0}]",
        ];
        for input in valid.iter().chain(junk.iter()) {
            for (end, _) in input.char_indices() {
                assert_well_behaved(&input[..end]);
            }
            assert_well_behaved(input);
        }
        for input in valid {
            ok(input);
        }
    }

    #[test]
    fn never_panics_on_random_token_soup() {
        let tokens = [
            "span",
            "[",
            "]",
            "(",
            ")",
            "=",
            "!",
            "~",
            "<",
            ">",
            "\"",
            "'",
            "\\",
            ",",
            ".",
            ":",
            " ",
            "\n",
            "a",
            "é",
            "1",
            "-",
            "contains",
            "first",
            "nth_child",
            "kind",
            "0",
            "x",
        ];
        let mut seed: u64 = 0x5eed;
        let mut next = move |bound: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize % bound
        };
        for _ in 0..20_000 {
            let mut input = String::from(if next(2) == 0 { "span[" } else { "" });
            for _ in 0..next(10) {
                input.push_str(tokens[next(tokens.len())]);
            }
            assert_well_behaved(&input);
        }
    }
}
