//! `clnrm fmt [--check]`: whitespace-only formatting of scenario files and the config.

use std::path::PathBuf;

use serde_json::json;
use similar::{ChangeTag, TextDiff};

use crate::config;
use crate::diagnostic::{Diagnostic, SourceFile};
use crate::error::Error;
use crate::output::{self, BAD, DIM, Format, NOTE, OK};
use crate::project::Project;
use crate::scenario::discover::discover;
use crate::scenario::fmt::{Formatted, format};

/// What happened to one file.
enum Outcome {
    Unchanged,
    /// Reformatted (or, with `--check`, would be), with the old and new text.
    Changed(String, String),
    /// Left alone because of the `{% macro %}` or `{% filter %}` block (`tag`) opening on `line`.
    Skipped {
        line: usize,
        tag: &'static str,
    },
    Failed(Diagnostic),
}

pub fn run(project: &Project, paths: &[PathBuf], check: bool, format_: Format) -> Result<(), Error> {
    let mut defaults = project.scenario_dirs();
    defaults.push(project.root.join(config::PATH));
    let roots = super::resolve_paths(project, paths, defaults)?;
    let files =
        discover(&roots).map_err(|missing| Error::Usage(format!("{} does not exist", project.display(&missing))))?;
    if files.is_empty() {
        let searched = roots.iter().map(|p| project.display(p)).collect::<Vec<_>>().join(", ");
        return Err(Error::NoScenarios { searched: if searched.is_empty() { "scenarios".into() } else { searched } });
    }
    let mut results = Vec::new();
    for path in &files {
        let outcome = format_file(project, path);
        if let (Outcome::Changed(_, new), false) = (&outcome, check) {
            crate::fsutil::write_atomic(path, new.as_bytes())
                .map_err(|e| Error::io(format!("cannot write {}", project.display(path)), e))?;
        }
        results.push((project.display(path), outcome));
    }
    report(&results, check, format_);
    let failed = results.iter().filter(|(_, o)| matches!(o, Outcome::Failed(_))).count();
    let changed = results.iter().filter(|(_, o)| matches!(o, Outcome::Changed(..))).count();
    if failed > 0 {
        return Err(Error::Invalid { files: failed, errors: failed });
    }
    if check && changed > 0 {
        return Err(Error::WouldReformat { files: changed });
    }
    Ok(())
}

fn format_file(project: &Project, path: &std::path::Path) -> Outcome {
    let display = project.display(path);
    let text = match std::fs::read(path).map(String::from_utf8) {
        Ok(Ok(text)) => text,
        Ok(Err(_)) => {
            return Outcome::Failed(Diagnostic::error("not-utf8", "the file is not valid UTF-8").in_file(display));
        }
        Err(e) => {
            return Outcome::Failed(Diagnostic::error("io", format!("cannot read the file: {e}")).in_file(display));
        }
    };
    let source = SourceFile::new(display, text);
    match format(&source.text) {
        Ok(Formatted::Unchanged) => Outcome::Unchanged,
        Ok(Formatted::Changed(new)) => Outcome::Changed(source.text, new),
        Ok(Formatted::SkippedBlock { offset, tag }) => Outcome::Skipped { line: source.line_index(offset) + 1, tag },
        Err(err) => Outcome::Failed(
            Diagnostic::error("fmt", format!("cannot format: {}", err.message))
                .at(&source, err.span)
                .label("here")
                .help("fix the file (clnrm dry-run explains every problem), then format again"),
        ),
    }
}

fn report(results: &[(String, Outcome)], check: bool, format_: Format) {
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|(_, o)| f(o)).count();
    let changed = count(|o| matches!(o, Outcome::Changed(..)));
    let unchanged = count(|o| matches!(o, Outcome::Unchanged));
    let skipped = count(|o| matches!(o, Outcome::Skipped { .. }));
    let failed = count(|o| matches!(o, Outcome::Failed(_)));
    if format_ == Format::Json {
        let files: Vec<_> = results
            .iter()
            .map(|(path, o)| match o {
                Outcome::Unchanged => json!({ "path": path, "status": "unchanged" }),
                Outcome::Changed(..) => {
                    json!({ "path": path, "status": if check { "would-reformat" } else { "formatted" } })
                }
                Outcome::Skipped { line, tag } => {
                    json!({ "path": path, "status": "skipped", "reason": format!("tera-{tag}-block"), "line": line })
                }
                Outcome::Failed(d) => json!({ "path": path, "status": "error", "diagnostics": [d] }),
            })
            .collect();
        let summary = json!({ "changed": changed, "unchanged": unchanged, "skipped": skipped, "errors": failed });
        output::json(&json!({ "check": check, "files": files, "summary": summary }));
        return;
    }
    for (path, outcome) in results {
        match outcome {
            Outcome::Unchanged => {}
            Outcome::Changed(old, new) if check => {
                output::line(format!("{BAD}would reformat{BAD:#} {path}"));
                output::line(diff(path, old, new));
            }
            Outcome::Changed(..) => output::line(format!("{OK}formatted{OK:#} {path}")),
            Outcome::Skipped { line, tag } => output::line(format!(
                "{NOTE}skipped{NOTE:#} {path} {DIM}(the {{% {tag} %}} block on line {line} is not output as written, so formatting could change what it produces){DIM:#}"
            )),
            Outcome::Failed(d) => output::diagnostics([d]),
        }
    }
    let verb = if check { "would reformat" } else { "formatted" };
    output::line(format!(
        "fmt: {}: {changed} {verb}, {unchanged} unchanged, {skipped} skipped, {failed} with errors",
        output::count(results.len(), "file")
    ));
}

/// A unified diff with `+`/`-` lines coloured.
fn diff(path: &str, old: &str, new: &str) -> String {
    let diff = TextDiff::from_lines(old, new);
    let mut out = format!("{DIM}--- {path}\n+++ {path} (formatted){DIM:#}\n");
    for group in diff.grouped_ops(2) {
        for op in group {
            for change in diff.iter_changes(&op) {
                let (sign, style) = match change.tag() {
                    ChangeTag::Delete => ("-", BAD),
                    ChangeTag::Insert => ("+", OK),
                    ChangeTag::Equal => (" ", DIM),
                };
                let text = change.value().trim_end_matches(['\n', '\r']);
                out.push_str(&format!("{style}{sign}{text}{style:#}\n"));
            }
        }
        out.push_str(&format!("{DIM}…{DIM:#}\n"));
    }
    out
}
