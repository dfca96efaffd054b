//! One module per command; each takes parsed arguments and returns how the command ended.

pub(crate) mod baseline;
mod collect;
mod diff;
mod dry_run;
mod fmt;
mod gc;
mod init;
mod pull;
mod render;
mod report;
mod run;
mod watch;

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command};
use crate::diagnostic::Diagnostic;
use crate::environment::Environment;
use crate::error::Error;
use crate::output::{self, Format};
use crate::project::Project;
use crate::run::Planned;
use crate::scenario::Loader;
use crate::scenario::discover::discover;
use crate::scenario::vars::Overrides;

/// Runs the command `cli` describes.
pub fn run(cli: Cli) -> Result<(), Error> {
    let cwd = std::env::current_dir().map_err(|e| Error::io("cannot read the working directory", e))?;
    let cwd = match &cli.directory {
        Some(dir) if dir.is_dir() => cwd.join(dir),
        Some(dir) => return Err(Error::Usage(format!("-C {}: no such directory", dir.display()))),
        None => cwd,
    };
    let format = cli.format;
    let env = Environment::read();
    match cli.command {
        Command::Init { dir } => init::run(&cwd, &cwd.join(dir), format),
        Command::DryRun { paths, vars } => dry_run::run(&open_project(&cwd, format)?, &paths, vars.vars, format),
        Command::Render { file, vars } => render::run(&open_project(&cwd, format)?, &file, vars.vars, format),
        Command::Fmt { check, paths } => fmt::run(&open_project(&cwd, format)?, &paths, check, format),
        Command::Run(args) => run::run(&open_project(&cwd, format)?, args, format, &env),
        Command::Watch(args) => watch::run(open_project(&cwd, format)?, args, format, &env),
        Command::Pull { paths, vars } => pull::run(&open_project(&cwd, format)?, &paths, vars.vars),
        Command::Gc => gc::run(&cwd),
        Command::Collect { listen, out, idle, max_trace_spans, max_spans } => {
            let limits = collect::Limits { idle, per_trace: max_trace_spans, total: max_spans };
            collect::run(&cwd, listen, out, limits)
        }
        Command::Baseline { command } => baseline::run(&open_project(&cwd, format)?, command, format, &env),
        Command::Report { from, junit, json } => report::run(&cwd, from, junit, json, format),
        Command::Diff { old, new, slower } => diff::run(&cwd, &old, &new, slower, format),
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

/// Discovers, loads and plans scenarios for a command that will run them: any invalid file stops
/// the command (exit 3, nothing run) after printing its diagnostics; no file at all is exit 6.
fn load_valid(
    project: &Project,
    paths: &[PathBuf],
    vars: Vec<(String, String)>,
    format: Format,
) -> Result<Vec<Planned>, Error> {
    let files = scenario_files(project, paths)?;
    let (overrides, warnings) = Overrides::from_env(vars);
    let loader = Loader::new(project, overrides);
    let mut loaded = loader.load_all(&files);
    let planned = crate::run::plan::plan(&mut loaded, project);
    let mut diagnostics: Vec<Diagnostic> =
        warnings.into_iter().chain(loader.template_diagnostics().iter().cloned()).collect();
    diagnostics.extend(loaded.iter().flat_map(|l| l.diagnostics.iter().cloned()));
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(invalid(format, &diagnostics));
    }
    if format == Format::Human {
        output::diagnostics(&diagnostics);
    }
    Ok(planned.into_iter().flatten().collect())
}

/// The scenario files under the paths a command was given, or under `[run] scenarios`: a path
/// that does not exist is a usage error (exit 2), no file at all names where it looked (exit 6).
fn scenario_files(project: &Project, paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let roots = resolve_paths(project, paths, project.scenario_dirs())?;
    let files =
        discover(&roots).map_err(|missing| Error::Usage(format!("{} does not exist", project.display(&missing))))?;
    if files.is_empty() {
        let searched = if paths.is_empty() { project.scenario_dirs() } else { roots };
        return Err(Error::NoScenarios {
            searched: searched.iter().map(|p| project.display(p)).collect::<Vec<_>>().join(", "),
        });
    }
    Ok(files)
}

/// A runtime for commands that talk to the engine.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))
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
