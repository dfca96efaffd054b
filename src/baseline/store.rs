//! Baseline files: a normalized trace as TOML laid out for code review (a header, then one
//! `[[span]]` block per span in canonical order, one attribute per line) and read back.
//!
//! The text is a pure function of the [`Baseline`]: the same baseline always gives the same bytes,
//! so re-recording unchanged behaviour changes nothing in the repository. Durations are written
//! with three decimals in the largest unit that fits (`13.412ms`), which reads back to the same
//! text.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::normalize::{Baseline, FORMAT, NormSpan, Stats, split_path};
use crate::telemetry::span::{AttrValue, SpanKind, SpanStatus};

/// The file's text.
pub fn render(baseline: &Baseline) -> String {
    // Written straight into one buffer, sized for the whole file up front: a 10,000-span file is
    // 3.5 MB, and a temporary string per value would cost more than the writing itself.
    let mut out = String::with_capacity(512 + baseline.spans.iter().map(size_hint).sum::<usize>());
    out.push_str("# The normalized trace of scenario ");
    quote(&mut out, &baseline.scenario);
    out.push_str(
        ", compared with every run. Review changes to it like\n\
         # code. Record with `clnrm run --update-baselines`; accept pending changes with\n\
         # `clnrm baseline accept`.\n",
    );
    let _ = writeln!(out, "format = {FORMAT}");
    out.push_str("scenario = ");
    quote(&mut out, &baseline.scenario);
    out.push_str("\nclnrm = ");
    quote(&mut out, &baseline.clnrm);
    let _ = writeln!(out, "\nruns = {}", baseline.runs);
    for span in &baseline.spans {
        out.push_str("\n[[span]]\npath = ");
        quote(&mut out, &span.path);
        out.push_str("\nservice = ");
        quote(&mut out, &span.service);
        out.push_str("\nkind = \"");
        out.push_str(span.kind.as_str());
        out.push_str("\"\nstatus = \"");
        out.push_str(span.status.as_str());
        out.push_str("\"\nstart = ");
        stats(&mut out, &span.start);
        out.push_str("\nduration = ");
        stats(&mut out, &span.duration);
        out.push('\n');
        if !span.events.is_empty() {
            out.push_str("events = [");
            for (i, event) in span.events.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                quote(&mut out, event);
            }
            out.push_str("]\n");
        }
        if !span.attrs.is_empty() {
            out.push_str("[span.attrs]\n");
            for (key, value) in &span.attrs {
                quote(&mut out, key);
                out.push_str(" = ");
                toml_value(&mut out, value);
                out.push('\n');
            }
        }
    }
    out
}

/// About how many bytes a span's block takes (exact but for values other than strings and for
/// escapes), so that the buffer is allocated once.
fn size_hint(span: &NormSpan) -> usize {
    let attrs: usize = span.attrs.iter().map(|(key, value)| key.len() + 8 + value_size_hint(value)).sum();
    let events: usize = span.events.iter().map(|e| e.len() + 4).sum();
    130 + span.path.len() + span.service.len() + attrs + events
}

fn value_size_hint(value: &AttrValue) -> usize {
    match value {
        AttrValue::Str(s) => s.len() + 2,
        AttrValue::Bytes(b) => b.len() * 2 + 2,
        AttrValue::Array(items) => items.iter().map(|v| value_size_hint(v) + 2).sum(),
        AttrValue::Int(_) | AttrValue::Float(_) | AttrValue::Bool(_) => 8,
    }
}

/// Why a baseline file cannot be read: what is wrong, where in the text when that is known (a
/// byte range), and another place that explains it (the first span with the same path, the
/// parent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub reason: String,
    pub at: Option<Range<usize>>,
    pub note: Option<(String, Range<usize>)>,
}

impl Invalid {
    fn at(reason: String, at: Range<usize>) -> Invalid {
        Invalid { reason, at: Some(at), note: None }
    }

    fn note(mut self, message: &str, at: Range<usize>) -> Invalid {
        self.note = Some((message.to_string(), at));
        self
    }
}

impl From<toml::de::Error> for Invalid {
    fn from(e: toml::de::Error) -> Invalid {
        Invalid { reason: e.message().trim_end().to_string(), at: e.span(), note: None }
    }
}

/// Reads a baseline file's text: a file that is not one, or whose spans are not laid out as
/// [`render`] lays them out (see [`check_tree`]), is an error saying what is wrong and where.
pub fn parse(text: &str) -> Result<Baseline, Invalid> {
    let header: Header = toml::from_str(text)?;
    if *header.format.get_ref() != FORMAT {
        return Err(Invalid::at(
            format!(
                "baseline format {} is not known to this clnrm (format {FORMAT}); it was written by clnrm {}",
                header.format.get_ref(),
                header.clnrm.as_deref().unwrap_or("of another version")
            ),
            header.format.span(),
        ));
    }
    let file: File = toml::from_str(text)?;
    check_tree(&file.span)?;
    let spans = file.span.into_iter().map(read_span).collect::<Result<Vec<_>, _>>()?;
    Ok(Baseline { scenario: file.scenario, clnrm: file.clnrm, runs: file.runs, spans })
}

/// Read first, so that a file of another format version is named as such rather than as a schema
/// mismatch.
#[derive(Deserialize)]
struct Header {
    format: Spanned<u32>,
    clnrm: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Checked through [`Header`] first.
    #[serde(rename = "format")]
    _format: u32,
    scenario: String,
    clnrm: String,
    runs: u32,
    #[serde(default)]
    span: Vec<FileSpan>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpan {
    path: Spanned<String>,
    service: String,
    kind: Spanned<String>,
    status: Spanned<String>,
    start: Spanned<FileStats>,
    duration: Spanned<FileStats>,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    attrs: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FileStats {
    One(String),
    Many(ManyStats),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManyStats {
    min: String,
    median: String,
    max: String,
    samples: u32,
}

/// Checks what the diff and its tree rely on, and what [`render`] always writes: every path is
/// unique, and the spans are depth first, each one right after its parent or after another span
/// below its parent (so a span's parent is the span before it or one of that span's ancestors).
/// A file edited by hand or merged badly can break this; read anyway, its spans would be paired
/// with the wrong parents and the diff would contradict itself.
fn check_tree(spans: &[FileSpan]) -> Result<(), Invalid> {
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(spans.len());
    // The previous span's path and its ancestors' paths, from the root.
    let mut ancestors: Vec<&str> = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        let path = span.path.get_ref().as_str();
        if let Some(&j) = first.get(path) {
            return Err(Invalid::at(format!("two spans have the path `{path}`"), span.path.span())
                .note("the first one", spans[j].path.span()));
        }
        match split_path(path) {
            Some((parent, _)) => {
                while ancestors.last().is_some_and(|&a| a != parent) {
                    ancestors.pop();
                }
                if ancestors.is_empty() {
                    return Err(misplaced(spans, i, parent));
                }
            }
            None => ancestors.clear(),
        }
        ancestors.push(path);
        first.insert(path, i);
    }
    Ok(())
}

/// Why span `i`, whose parent's path is `parent`, is not where its parent's subtree is.
fn misplaced(spans: &[FileSpan], i: usize, parent: &str) -> Invalid {
    let path = &spans[i].path;
    let reason = |what: &str| Invalid::at(format!("span `{}` {what}", path.get_ref()), path.span());
    match spans.iter().position(|s| s.path.get_ref() == parent) {
        None => reason(&format!("has no parent: no span has the path `{parent}`")),
        Some(p) if p > i => reason("comes before its parent").note("its parent", spans[p].path.span()),
        Some(p) => {
            reason("is apart from its parent: the spans below a span come right after it, before any span that is not")
                .note("its parent", spans[p].path.span())
        }
    }
}

fn read_span(span: FileSpan) -> Result<NormSpan, Invalid> {
    let path = span.path.into_inner();
    let at = |what: &str, place: Range<usize>, problem: String| {
        Invalid::at(format!("{what} of span `{path}`: {problem}"), place)
    };
    let kind = SpanKind::CHOICES
        .iter()
        .find(|(name, _)| *name == span.kind.get_ref())
        .map(|(_, k)| *k)
        .ok_or_else(|| at("kind", span.kind.span(), format!("unknown kind `{}`", span.kind.get_ref())))?;
    let status = SpanStatus::CHOICES
        .iter()
        .find(|(name, _)| *name == span.status.get_ref())
        .map(|(_, s)| *s)
        .ok_or_else(|| at("status", span.status.span(), format!("unknown status `{}`", span.status.get_ref())))?;
    let stats = |s: &Spanned<FileStats>, what: &str| -> Result<Stats, Invalid> {
        let read = |text: &str| crate::duration::parse(text).map_err(|e| at(what, s.span(), e));
        Ok(match s.get_ref() {
            FileStats::One(text) => Stats::of(&mut [read(text)?]),
            FileStats::Many(s) => {
                Stats { min: read(&s.min)?, median: read(&s.median)?, max: read(&s.max)?, samples: s.samples }
            }
        })
    };
    let mut attrs = BTreeMap::new();
    for (key, value) in span.attrs {
        let problem = || format!("`{key}` is not a string, number, boolean or array");
        let read = attr_value(value.get_ref()).ok_or_else(|| at("attrs", value.span(), problem()))?;
        attrs.insert(key.into(), read);
    }
    let duration = stats(&span.duration, "duration")?;
    Ok(NormSpan {
        start: stats(&span.start, "start")?,
        fastest: Some(duration.min),
        duration,
        path,
        service: span.service,
        kind,
        status,
        attrs,
        events: span.events,
    })
}

fn attr_value(value: &toml::Value) -> Option<AttrValue> {
    Some(match value {
        toml::Value::String(s) => AttrValue::Str(s.as_str().into()),
        toml::Value::Integer(i) => AttrValue::Int(*i),
        toml::Value::Float(f) => AttrValue::Float(*f),
        toml::Value::Boolean(b) => AttrValue::Bool(*b),
        toml::Value::Array(items) => AttrValue::Array(items.iter().map(attr_value).collect::<Option<_>>()?),
        _ => return None,
    })
}

fn toml_value(out: &mut String, value: &AttrValue) {
    match value {
        AttrValue::Str(s) => quote(out, s),
        AttrValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        // `toml` writes floats so that they read back exactly (and `nan`, `inf` as TOML has them).
        AttrValue::Float(f) => {
            let _ = write!(out, "{}", toml::Value::Float(*f));
        }
        AttrValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AttrValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                toml_value(out, item);
            }
            out.push(']');
        }
        AttrValue::Bytes(_) => quote(out, &value.text()),
    }
}

/// Writes a TOML basic string: `"…"` with `"`, `\` and control characters escaped. Runs of
/// characters that need no escape are copied whole.
fn quote(out: &mut String, text: &str) {
    out.push('"');
    let mut plain = 0;
    for (at, c) in text.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\t' => "\\t",
            '\r' => "\\r",
            c if c.is_control() => "",
            _ => continue,
        };
        out.push_str(&text[plain..at]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04X}", c as u32);
        } else {
            out.push_str(escape);
        }
        plain = at + c.len_utf8();
    }
    out.push_str(&text[plain..]);
    out.push('"');
}

/// One sample as its duration (`"13ms"`); several as their statistics.
fn stats(out: &mut String, s: &Stats) {
    let quoted = |out: &mut String, d: Duration| {
        out.push('"');
        write_duration(out, d);
        out.push('"');
    };
    if s.samples == 1 {
        quoted(out, s.median);
        return;
    }
    out.push_str("{ median = ");
    quoted(out, s.median);
    out.push_str(", min = ");
    quoted(out, s.min);
    out.push_str(", max = ");
    quoted(out, s.max);
    let _ = write!(out, ", samples = {} }}", s.samples);
}

/// Three decimals in the largest unit that fits, trailing zeros dropped: `13.412ms`, `2s`, `850ns`.
/// Integer arithmetic only, so the text depends on nothing but the duration.
pub fn duration(d: Duration) -> String {
    let mut out = String::new();
    write_duration(&mut out, d);
    out
}

/// [`duration`], written to `out`.
fn write_duration(out: &mut String, d: Duration) {
    const UNITS: [(&str, u128); 3] = [("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)];
    let ns = d.as_nanos();
    for (i, &(unit, scale)) in UNITS.iter().enumerate() {
        if ns >= scale {
            // Thousandths of the unit, rounded half up.
            let milli = (ns * 1000 + scale / 2) / scale;
            // Rounding up to 1000 of a unit is 1 of the next one.
            let (milli, unit) = if milli >= 1_000_000 && i > 0 { (1000, UNITS[i - 1].0) } else { (milli, unit) };
            let _ = write!(out, "{}", milli / 1000);
            // The fraction's digits without trailing zeros: 0.250 is `.25`, 0.007 is `.007`.
            let (mut fraction, mut digits) = (milli % 1000, 3);
            if fraction > 0 {
                while fraction % 10 == 0 {
                    fraction /= 10;
                    digits -= 1;
                }
                let _ = write!(out, ".{fraction:0digits$}");
            }
            out.push_str(unit);
            return;
        }
    }
    let _ = write!(out, "{ns}ns");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::normalize::{Attrs, Recorded, normalize};
    use crate::telemetry::span::tests::span;

    fn sample() -> Baseline {
        let spans = vec![
            span(1, 0, "checkout", "clnrm", 0, 1019).str("clnrm.file", "scenarios/checkout.clnrm.toml").build(),
            span(2, 1, "POST /orders", "shop", 3, 16)
                .kind(SpanKind::Server)
                .status(SpanStatus::Error, "boom")
                .attr("http.response.status_code", AttrValue::Int(500))
                .attr("ratio", AttrValue::Float(0.25))
                .attr("ok", AttrValue::Bool(false))
                .attr("tags", AttrValue::Array(vec![AttrValue::Str("a".into()), AttrValue::Int(2)].into()))
                .attr("raw", AttrValue::Bytes(vec![0xde, 0xad].into()))
                .str("odd \"key\"", "line\nbreak")
                .event("exception")
                .build(),
        ];
        normalize("checkout", &[Recorded::plain(&spans)])
    }

    #[test]
    fn the_file_reads_back_to_the_same_baseline_and_the_same_bytes() {
        let baseline = sample();
        let text = render(&baseline);
        let read = parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!(read, baseline);
        assert_eq!(render(&read), text);
    }

    #[test]
    fn the_layout_is_one_block_per_span_and_one_attribute_per_line() {
        let text = render(&sample());
        let block = text.split("\n[[span]]\n").nth(2).unwrap();
        assert_eq!(
            block,
            r#"path = "checkout › POST /orders"
service = "shop"
kind = "server"
status = "error"
start = "3ms"
duration = "13ms"
events = ["exception"]
[span.attrs]
"http.response.status_code" = 500
"odd \"key\"" = "line\nbreak"
"ok" = false
"ratio" = 0.25
"raw" = "dead"
"tags" = ["a", 2]
"#
        );
        assert!(text.starts_with("# The normalized trace of scenario \"checkout\""));
        assert!(text.contains("\nformat = 1\nscenario = \"checkout\"\nclnrm = \""));
    }

    #[test]
    fn statistics_of_several_runs_read_back() {
        let run = |end: u64| vec![span(1, 0, "root", "clnrm", 0, end).build()];
        let runs = [run(10), run(30), run(20)];
        let refs: Vec<Recorded> = runs.iter().map(|run| Recorded::plain(run)).collect();
        let baseline = normalize("s", &refs);
        let text = render(&baseline);
        assert!(
            text.contains("duration = { median = \"20ms\", min = \"10ms\", max = \"30ms\", samples = 3 }\n"),
            "{text}"
        );
        assert_eq!(parse(&text).unwrap(), baseline);
    }

    #[test]
    fn durations_read_back_to_the_same_text() {
        let cases = [
            (Duration::from_nanos(850), "850ns"),
            (Duration::from_nanos(12_300), "12.3us"),
            (Duration::from_nanos(13_412_345), "13.412ms"),
            (Duration::from_nanos(999_999_600), "1s"),
            (Duration::from_nanos(999_600), "999.6us"),
            (Duration::from_secs(2), "2s"),
            (Duration::ZERO, "0ns"),
        ];
        for (d, text) in cases {
            assert_eq!(duration(d), text);
            assert_eq!(duration(crate::duration::parse(text).unwrap()), text);
        }
    }

    /// The line of `text` a byte offset is on.
    fn line(text: &str, at: Option<Range<usize>>) -> usize {
        text[..at.expect("a place in the file").start].matches('\n').count() + 1
    }

    #[test]
    fn broken_files_say_what_is_wrong_and_where() {
        let text = render(&sample());
        let syntax = parse("format = 1\nscenario = ").unwrap_err();
        assert_eq!(line("format = 1\nscenario = ", syntax.at.clone()), 2, "{syntax:?}");
        let newer = parse(&text.replace("format = 1", "format = 9")).unwrap_err();
        assert!(newer.reason.contains("baseline format 9 is not known"), "{newer:?}");
        assert_eq!(line(&text, newer.at), 4);
        let unknown = text.replace("service = \"shop\"", "service = \"shop\"\nservise = 1");
        assert!(parse(&unknown).unwrap_err().reason.contains("servise"));
        let kind = text.replace("kind = \"server\"", "kind = \"serv\"");
        let error = parse(&kind).unwrap_err();
        assert_eq!(error.reason, "kind of span `checkout › POST /orders`: unknown kind `serv`");
        assert_eq!(&kind[error.at.unwrap()], "\"serv\"");
        let bad = text.replace("duration = \"13ms\"", "duration = \"13 parsecs\"");
        let error = parse(&bad).unwrap_err();
        assert!(error.reason.starts_with("duration of span `checkout › POST /orders`: "), "{error:?}");
        assert_eq!(&bad[error.at.unwrap()], "\"13 parsecs\"");
    }

    /// A file of spans with these paths, each like the sample's last span without attributes or
    /// events: the first path is on line 10, the next ones 8 lines apart.
    fn with_paths(paths: &[&str]) -> String {
        let like = NormSpan { attrs: Attrs::new(), events: Vec::new(), ..sample().spans.pop().unwrap() };
        let spans = paths.iter().map(|p| NormSpan { path: p.to_string(), ..like.clone() }).collect();
        render(&Baseline { spans, ..sample() })
    }

    /// The reason, the line it points at and the line of its note.
    fn tree_error(paths: &[&str]) -> (String, usize, Option<usize>) {
        let text = with_paths(paths);
        let error = parse(&text).unwrap_err();
        (error.reason, line(&text, error.at), error.note.map(|(_, at)| line(&text, Some(at))))
    }

    #[test]
    fn spans_must_be_depth_first_with_unique_paths() {
        let ok = ["r", "r › a", "r › a › x", "r › b", "r › b › y", "q", "q › a"];
        assert_eq!(parse(&with_paths(&ok)).unwrap().spans.len(), 7);
        assert_eq!(
            tree_error(&["r", "r › a › x", "r › a"]),
            ("span `r › a › x` comes before its parent".into(), 18, Some(26))
        );
        assert_eq!(
            tree_error(&["r", "r › a", "r › b", "r › a › x"]),
            (
                "span `r › a › x` is apart from its parent: the spans below a span come right after it, before any span that is not"
                    .into(),
                34,
                Some(18)
            )
        );
        assert_eq!(
            tree_error(&["r", "r › zz › x"]),
            ("span `r › zz › x` has no parent: no span has the path `r › zz`".into(), 18, None)
        );
        assert_eq!(tree_error(&["r", "r › a", "r › a"]), ("two spans have the path `r › a`".into(), 26, Some(18)));
        assert_eq!(tree_error(&["r", "r"]), ("two spans have the path `r`".into(), 18, Some(10)));
    }
}
