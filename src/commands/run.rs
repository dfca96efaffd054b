//! `clnrm run`: validate, select, run in containers, report.

use crate::baseline::files::{Baselines, Update};
use crate::cache::Cache;
use crate::cli::{RunArgs, RunnerArgs};
use crate::engine::RunIdentity;
use crate::environment::Environment;
use crate::error::Error;
use crate::exit::Exit;
use crate::output::Format;
use crate::project::Project;
use crate::record::files::Runs;
use crate::report::terminal::{self, Terminal};
use crate::run::compare::Comparison;
use crate::run::plan::Selection;
use crate::run::{self, Options, Planned};
use crate::telemetry::export::Destination;

pub fn run(project: &Project, args: RunArgs, format: Format, env: &Environment) -> Result<(), Error> {
    if format == Format::Json {
        return Err(Error::Usage(
            "`run` reports as JSON with --report json=PATH; --format json is not supported".into(),
        ));
    }
    let update = Update::resolve(args.update_baselines, env).map_err(Error::Usage)?;
    let planned = super::load_valid(project, &args.paths, args.vars.vars, format)?;
    let baselines = Baselines::new(&project.root);
    // Baselines of scenarios that no longer exist, when the whole project was loaded.
    let orphans: Vec<String> = if args.paths.is_empty() {
        let names: std::collections::HashSet<&str> = planned.iter().map(|p| p.scenario.name.as_str()).collect();
        baselines.stored().unwrap_or_default().into_iter().filter(|b| !names.contains(b.as_str())).collect()
    } else {
        Vec::new()
    };
    let selection = Selection { filter: args.runner.filter.clone(), tags: args.runner.tags.clone(), shard: args.shard };
    let planned: Vec<Planned> = planned
        .into_iter()
        .filter(|planned| selection.matches(&planned.scenario.name, &planned.scenario.tags))
        .collect();
    if planned.is_empty() {
        return Err(Error::NoScenarios {
            searched: "the selected scenarios (check --filter, --tag and --shard)".into(),
        });
    }
    let config = &project.config;
    let options = Options {
        fail_fast: args.fail_fast || config.run.fail_fast,
        force: args.force,
        repeat: args.repeat,
        ..options(project, &args.runner, Comparison::new(project, update, env.ci))
    };
    let cache = Cache::new(project.cache_dir());
    let identity = RunIdentity::current(&project.root);
    let mut reporter = Terminal::new(env.ci);
    let recorded = selection.recorded(&args.paths);
    let (record, stopped) =
        super::runtime()?.block_on(run::run(config, &cache, identity, planned, recorded, &options, &mut reporter));
    // A run stopped before its scenarios ran says why as its error, with nothing to summarize.
    if stopped.is_none() {
        terminal::print_summary(&record);
        terminal::print_orphans(&orphans);
    }
    // Every file is attempted, so that one that cannot be written loses no other.
    let also = args.record.as_ref().map(|path| project.cwd.join(path));
    let kept = Runs::new(&project.root)
        .write(&record, config.run.keep_records as usize, also.as_deref())
        .map_err(|e| Error::io("cannot keep the run's record", std::io::Error::other(e)));
    let reports: Vec<Result<(), Error>> =
        args.reports.iter().map(|(kind, path)| super::report::write(&record, *kind, &project.cwd.join(path))).collect();
    if let Some(e) = stopped {
        return Err(e.into());
    }
    kept?;
    reports.into_iter().collect::<Result<(), Error>>()?;
    match record.exit() {
        Exit::Passed => Ok(()),
        exit => Err(Error::Ended(exit)),
    }
}

/// How to run, as the config and the arguments `run` and `watch` share say; one run of each
/// scenario, no fail-fast, cache used, the pool not kept warm.
pub(super) fn options(project: &Project, args: &RunnerArgs, comparison: Comparison) -> Options {
    let config = &project.config;
    let jobs = args
        .jobs
        .or(config.run.jobs)
        .map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |j| j as usize);
    Options {
        jobs,
        fail_fast: false,
        force: false,
        reuse: args.reuse || config.pool.reuse,
        warm: config.pool.size.map_or(2 * jobs, |s| s as usize),
        ttl: config.pool.ttl,
        destination: Destination::from_env(args.otel_endpoint.as_deref()),
        repeat: 1,
        comparison,
        keep_warm: false,
    }
}
