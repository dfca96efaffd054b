//! One module per command; each takes parsed arguments and returns how the command ended.

mod dry_run;
mod fmt;
mod init;
mod render;

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command};
use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::output::{self, Format};
use crate::project::Project;

/// Runs the command `cli` describes.
pub fn run(cli: Cli) -> Result<(), Error> {
    let cwd = std::env::current_dir().map_err(|e| Error::io("cannot read the working directory", e))?;
    let cwd = match &cli.directory {
        Some(dir) if dir.is_dir() => cwd.join(dir),
        Some(dir) => return Err(Error::Usage(format!("-C {}: no such directory", dir.display()))),
        None => cwd,
    };
    let format = cli.format;
    match cli.command {
        Command::Init { dir } => init::run(&cwd, &cwd.join(dir), format),
        Command::DryRun { paths, vars } => dry_run::run(&open_project(&cwd, format)?, &paths, vars.vars, format),
        Command::Render { file, vars } => render::run(&open_project(&cwd, format)?, &file, vars.vars, format),
        Command::Fmt { check, paths } => fmt::run(&open_project(&cwd, format)?, &paths, check, format),
    }
}

fn open_project(cwd: &Path, format: Format) -> Result<Project, Error> {
    Project::discover(cwd).map_err(|diagnostics| invalid(format, &diagnostics))
}

/// Reports diagnostics that stop a command before it produced anything, and the matching error.
fn invalid(format: Format, diagnostics: &[Diagnostic]) -> Error {
    match format {
        Format::Human => output::diagnostics(diagnostics),
        Format::Json => output::json(&serde_json::json!({ "diagnostics": diagnostics })),
    }
    let files: std::collections::BTreeSet<_> = diagnostics.iter().filter_map(|d| d.file.as_deref()).collect();
    Error::Invalid { files: files.len().max(1), errors: diagnostics.iter().filter(|d| d.is_error()).count() }
}

/// Resolves the paths a command was given (relative to the working directory), or the defaults.
/// A path that does not exist is a usage error, with a suggestion when a sibling is close.
fn resolve_paths(project: &Project, given: &[PathBuf], defaults: Vec<PathBuf>) -> Result<Vec<PathBuf>, Error> {
    if given.is_empty() {
        return Ok(defaults.into_iter().filter(|p| p.exists()).collect());
    }
    let paths: Vec<PathBuf> = given.iter().map(|p| project.cwd.join(p)).collect();
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        let siblings: Vec<String> = missing
            .parent()
            .and_then(|dir| std::fs::read_dir(dir).ok())
            .map(|entries| entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let name = missing.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let hint = crate::suggest::did_you_mean(&name, siblings.iter().map(String::as_str))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        return Err(Error::Usage(format!("{} does not exist{hint}", project.display(missing))));
    }
    Ok(paths)
}
