//! Baseline files: a normalized trace as TOML laid out for code review (a header, then one
//! `[[span]]` block per span in canonical order, one attribute per line) and read back.
//!
//! The text is a pure function of the [`Baseline`]: the same baseline always gives the same bytes,
//! so re-recording unchanged behaviour changes nothing in the repository. Durations are written
//! with three decimals in the largest unit that fits (`13.412ms`), which reads back to the same
//! text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde::Deserialize;

use super::normalize::{Baseline, FORMAT, NormSpan, Stats};
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

/// Reads a baseline file's text. The error says what is wrong, with the line where the TOML
/// parser knows it.
pub fn parse(text: &str) -> Result<Baseline, String> {
    let header: Header = toml::from_str(text).map_err(|e| e.to_string())?;
    if header.format != FORMAT {
        return Err(format!(
            "baseline format {} is not known to this clnrm (format {FORMAT}); it was written by clnrm {}",
            header.format,
            header.clnrm.as_deref().unwrap_or("of another version")
        ));
    }
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let spans = file.span.into_iter().map(read_span).collect::<Result<Vec<_>, _>>()?;
    Ok(Baseline { scenario: file.scenario, clnrm: file.clnrm, runs: file.runs, spans })
}

/// Read first, so that a file of another format version is named as such rather than as a schema
/// mismatch.
#[derive(Deserialize)]
struct Header {
    format: u32,
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
    path: String,
    service: String,
    kind: String,
    status: String,
    start: FileStats,
    duration: FileStats,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    attrs: BTreeMap<String, toml::Value>,
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

fn read_span(span: FileSpan) -> Result<NormSpan, String> {
    let at = |what: &str| format!("{what} of span `{}`", span.path);
    let kind = SpanKind::CHOICES
        .iter()
        .find(|(name, _)| *name == span.kind)
        .map(|(_, k)| *k)
        .ok_or_else(|| format!("{}: unknown kind `{}`", at("kind"), span.kind))?;
    let status = SpanStatus::CHOICES
        .iter()
        .find(|(name, _)| *name == span.status)
        .map(|(_, s)| *s)
        .ok_or_else(|| format!("{}: unknown status `{}`", at("status"), span.status))?;
    let stats = |s: &FileStats, what: &str| -> Result<Stats, String> {
        let read = |text: &str| crate::duration::parse(text).map_err(|e| format!("{}: {e}", at(what)));
        Ok(match s {
            FileStats::One(text) => Stats::of(&mut [read(text)?]),
            FileStats::Many(s) => {
                Stats { min: read(&s.min)?, median: read(&s.median)?, max: read(&s.max)?, samples: s.samples }
            }
        })
    };
    let mut attrs = BTreeMap::new();
    for (key, value) in span.attrs {
        let value = attr_value(&value)
            .ok_or_else(|| format!("{}: `{key}` is not a string, number, boolean or array", at("attrs")))?;
        attrs.insert(key.into(), value);
    }
    Ok(NormSpan {
        start: stats(&span.start, "start")?,
        duration: stats(&span.duration, "duration")?,
        path: span.path,
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
    use crate::baseline::normalize::normalize;
    use crate::expect::matcher::tests::span;

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
        normalize("checkout", &[&spans], &[])
    }

    #[test]
    fn the_file_reads_back_to_the_same_baseline_and_the_same_bytes() {
        let baseline = sample();
        let text = render(&baseline);
        let read = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
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
        let refs: Vec<&[crate::telemetry::span::Span]> = runs.iter().map(Vec::as_slice).collect();
        let baseline = normalize("s", &refs, &[]);
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

    #[test]
    fn broken_files_say_what_is_wrong() {
        let text = render(&sample());
        assert!(parse("format = 1\nscenario = ").unwrap_err().contains("line 2"));
        let newer = text.replace("format = 1", "format = 9");
        assert!(
            parse(&newer).unwrap_err().contains("baseline format 9 is not known"),
            "{}",
            parse(&newer).unwrap_err()
        );
        let unknown = text.replace("service = \"shop\"", "service = \"shop\"\nservise = 1");
        assert!(parse(&unknown).unwrap_err().contains("servise"));
        let kind = text.replace("kind = \"server\"", "kind = \"serv\"");
        assert_eq!(parse(&kind).unwrap_err(), "kind of span `checkout › POST /orders`: unknown kind `serv`");
        let bad = text.replace("duration = \"13ms\"", "duration = \"13 parsecs\"");
        assert!(parse(&bad).unwrap_err().starts_with("duration of span `checkout › POST /orders`: "));
    }
}
