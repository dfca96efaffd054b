//! `clnrm watch`: rerun the scenarios a saved file affects, until quit.

use crate::baseline::files::{Baselines, Update};
use crate::cli::WatchArgs;
use crate::error::Error;
use crate::exit::Exit;
use crate::output::Format;
use crate::project::Project;
use crate::run::compare::Comparison;
use crate::run::plan::Selection;
use crate::scenario::vars::Overrides;
use crate::watch::{self, Settings};

pub fn run(project: Project, args: WatchArgs, format: Format) -> Result<(), Error> {
    if format == Format::Json {
        return Err(Error::Usage("`watch` is for people; --format json is not supported".into()));
    }
    let paths = super::resolve_paths(&project, &args.paths, Vec::new())?;
    let (overrides, warnings) = Overrides::from_env(args.vars.vars);
    crate::output::diagnostics(warnings.iter());
    let update = Update::from_env(false).map_err(Error::Usage)?;
    let comparison = Comparison {
        baselines: Baselines::new(&project.root),
        update,
        thresholds: project.config.thresholds.clone(),
        ignore_attrs: project.config.baseline.ignore_attrs.clone(),
    };
    let options = crate::run::Options { keep_warm: true, ..super::run::options(&project, &args.runner, comparison) };
    let selection = Selection { filter: args.runner.filter, tags: args.runner.tags, shard: None };
    let settings = Settings { paths, overrides, selection, options, debounce: args.debounce };
    match super::runtime()?.block_on(watch::watch(project, settings))? {
        None => Ok(()),
        Some(signal) => Err(Error::Ended(Exit::Signalled(signal))),
    }
}
