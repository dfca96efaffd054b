//! `clnrm report`: a stored run shown again, from its record: the summary as `run` printed it,
//! and its JUnit and JSON reports, which `run --report` writes from the same record.

use std::path::{Path, PathBuf};

use crate::cli::ReportKind;
use crate::error::Error;
use crate::exit::Exit;
use crate::output::Format;
use crate::record::Record;
use crate::record::files::{self, Runs};
use crate::report::{json, junit, terminal};

/// Reads `from` (default: the project's latest record), prints its summary and writes the reports
/// asked for; ends as the recorded run ended.
pub fn run(
    cwd: &Path,
    from: Option<PathBuf>,
    junit: Option<PathBuf>,
    json: Option<PathBuf>,
    format: Format,
) -> Result<(), Error> {
    if format == Format::Json {
        return Err(Error::Usage("`report` writes JSON with --json PATH; --format json is not supported".into()));
    }
    let path = match from {
        Some(path) => cwd.join(path),
        // Only the default needs a project: a record passed around as a CI artifact reads anywhere.
        None => Runs::new(&super::open_project(cwd, format)?.root).latest(),
    };
    let shown = path.strip_prefix(cwd).unwrap_or(&path).display().to_string();
    let record = files::read(&path, &shown).map_err(Error::Usage)?;
    // As `run` printed it off a terminal: a line per scenario, then the summary.
    for outcome in &record.scenarios {
        crate::output::line(terminal::status_line(outcome));
    }
    terminal::print_summary(&record);
    for (kind, path) in [(ReportKind::Junit, junit), (ReportKind::Json, json)] {
        if let Some(path) = path {
            write(&record, kind, &cwd.join(path))?;
        }
    }
    match record.exit() {
        Exit::Passed => Ok(()),
        exit => Err(Error::Ended(exit)),
    }
}

/// Writes the `kind` report of `record` to `path`, whole or not at all.
pub(super) fn write(record: &Record, kind: ReportKind, path: &Path) -> Result<(), Error> {
    let content = match kind {
        ReportKind::Junit => {
            junit::render(record).map_err(|e| Error::io("cannot write the JUnit report", std::io::Error::other(e)))?
        }
        ReportKind::Json => serde_json::to_string_pretty(&json::render(record)).unwrap_or_default(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    }
    crate::fsutil::write_atomic(path, content.as_bytes())
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}
