//! `clnrm dry-run`: render and validate every scenario, without Docker.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use crate::cache::{Cache, Lookup, Verdict};
use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::output::{self, BAD, DIM, Format, OK};
use crate::project::Project;
use crate::run::Planned;
use crate::scenario::vars::Overrides;
use crate::scenario::{Loaded, Loader};

pub fn run(project: &Project, paths: &[PathBuf], vars: Vec<(String, String)>, format: Format) -> Result<(), Error> {
    let started = Instant::now();
    let files = super::scenario_files(project, paths)?;
    let (overrides, mut general) = Overrides::from_env(vars);
    let loader = Loader::new(project, overrides);
    general.extend(loader.template_diagnostics().iter().cloned());
    let mut loaded = loader.load_all(&files);
    let planned = crate::run::plan::plan(&mut loaded, project);
    let cache = Cache::new(project.cache_dir());
    let unchanged: Vec<bool> =
        loaded.iter_mut().zip(&planned).map(|(file, plan)| unchanged_since_pass(&cache, file, plan.as_ref())).collect();
    let elapsed = started.elapsed();

    let invalid = loaded.iter().filter(|f| f.error_count() > 0).count();
    let errors: usize =
        loaded.iter().map(Loaded::error_count).sum::<usize>() + general.iter().filter(|d| d.is_error()).count();
    let warnings = loaded.iter().flat_map(|f| &f.diagnostics).chain(&general).filter(|d| !d.is_error()).count();
    match format {
        Format::Human => {
            output::diagnostics(&general);
            for ((file, plan), unchanged) in loaded.iter().zip(&planned).zip(&unchanged) {
                print_file(file, plan.as_ref(), *unchanged);
            }
            let verdict = if errors == 0 { OK } else { BAD };
            output::line(format!(
                "{verdict}dry-run{verdict:#}: {} in {}: {} valid, {} invalid ({}, {})",
                output::count(loaded.len(), "file"),
                crate::duration::display(elapsed),
                loaded.len() - invalid,
                invalid,
                output::count(errors, "error"),
                output::count(warnings, "warning"),
            ));
        }
        Format::Json => output::json(&json!({
            "files": loaded
                .iter()
                .zip(&planned)
                .zip(&unchanged)
                .map(|((f, p), u)| file_json(project, f, p.as_ref(), *u))
                .collect::<Vec<_>>(),
            "diagnostics": general,
            "summary": {
                "files": loaded.len(),
                "valid": loaded.len() - invalid,
                "invalid": invalid,
                "errors": errors,
                "warnings": warnings,
                "elapsed_ms": elapsed.as_secs_f64() * 1000.0,
            },
        })),
    }
    if errors > 0 {
        let broken_templates = general.iter().filter(|d| d.is_error()).count().min(1);
        return Err(Error::Invalid { files: invalid + broken_templates, errors });
    }
    Ok(())
}

/// Whether the planned scenario is unchanged since a run that passed (so `run` would skip it). A
/// bad cache entry adds its warning to the file.
fn unchanged_since_pass(cache: &Cache, file: &mut Loaded, plan: Option<&Planned>) -> bool {
    let Some(plan) = plan else { return false };
    let (lookup, warning) = cache.lookup(&plan.scenario.name, &plan.source_key, None);
    file.diagnostics.extend(warning);
    lookup == Lookup::Hit(Verdict::Pass)
}

fn print_file(file: &Loaded, plan: Option<&Planned>, unchanged: bool) {
    match (plan, file.error_count()) {
        (Some(Planned { scenario, .. }), _) => {
            let note = if unchanged { format!(" {DIM}(unchanged since its last pass){DIM:#}") } else { String::new() };
            output::line(format!("{OK}  VALID{OK:#} {} {DIM}·{DIM:#} {}{note}", file.display, scenario.name));
        }
        (None, errors) => output::line(format!(
            "{BAD}INVALID{BAD:#} {} {DIM}·{DIM:#} {}",
            file.display,
            output::count(errors, "error")
        )),
    }
    output::diagnostics(&file.diagnostics);
}

fn file_json(project: &Project, file: &Loaded, plan: Option<&Planned>, unchanged: bool) -> serde_json::Value {
    let diagnostics: &[Diagnostic] = &file.diagnostics;
    json!({
        "path": file.display,
        "scenario": file.name.as_ref().map(|(name, _)| name),
        "valid": plan.is_some(),
        "cache_key": plan.map(|p| p.source_key.to_string()),
        "unchanged_since_pass": unchanged,
        "templates": file.templates.iter().map(|t| project.display(t)).collect::<Vec<_>>(),
        "diagnostics": diagnostics,
    })
}
