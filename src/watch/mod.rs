//! `clnrm watch`: rerun exactly the scenarios a saved file affects, on a warm pool.
//!
//! change → the files it affects are rendered and validated at once (problems on screen, no
//! container touched) → the valid ones go through the cache → the rest run on the runner, whose
//! pool and span receiver stay up between runs. A change that arrives while a run goes cancels
//! it (its scenarios tear down and their containers are removed); what it had not finished runs
//! again with the new change. Quitting (`q`, Ctrl-C, SIGTERM) removes everything.

pub mod events;
pub mod files;
pub mod filter;
pub mod graph;
pub mod keys;
pub mod screen;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::baseline::files::Baselines;
use crate::cache::Cache;
use crate::engine::{EngineError, RunIdentity};
use crate::error::Error;
use crate::output::{self, NOTE};
use crate::project::Project;
use crate::report::Reporter;
use crate::report::terminal::Terminal;
use crate::run::outcome::{RunReport, Signal};
use crate::run::plan::Selection;
use crate::run::{self, Cancel, Options, Progress, Runner};
use crate::scenario::vars::Overrides;
use events::{Event, Events};
use files::Files;
use keys::Key;
use screen::Screen;

/// What to watch and how to run.
pub struct Settings {
    /// Scenario files or directories given on the command line (none: the config's).
    pub paths: Vec<PathBuf>,
    pub overrides: Overrides,
    pub selection: Selection,
    /// How to run (`keep_warm` set).
    pub options: Options,
    /// Overrides `[watch] debounce`.
    pub debounce: Option<Duration>,
}

/// The run in flight.
struct Current {
    task: tokio::task::JoinHandle<(Progress, Result<(), EngineError>)>,
    switch: tokio::sync::watch::Sender<bool>,
    /// Its scenario files, with how each is shown (outcomes name the shown form).
    files: Vec<(PathBuf, String)>,
    started: Instant,
}

impl Current {
    /// Cancels the run and waits for its scenarios to tear down; the files it did not finish.
    async fn cancel(self) -> BTreeSet<PathBuf> {
        let _ = self.switch.send(true);
        let finished: BTreeSet<String> = match self.task.await {
            Ok((progress, _)) => progress.outcomes.into_iter().map(|o| o.file).collect(),
            Err(_) => BTreeSet::new(),
        };
        self.files.into_iter().filter(|(_, shown)| !finished.contains(shown)).map(|(path, _)| path).collect()
    }
}

/// Watches until quit; how it was quit (`None` for the `q` key).
pub async fn watch(project: Project, settings: Settings) -> Result<Option<Signal>, Error> {
    let (filter, problem) = filter::Filter::new(&project.root);
    if let Some(problem) = problem {
        output::line(format!("{NOTE}note{NOTE:#}: .gitignore is not used: {problem}"));
    }
    let debounce = settings.debounce.unwrap_or(project.config.watch.debounce);
    let (mut events, mut changes) = Events::start(debounce, filter).map_err(Error::Usage)?;
    let identity = RunIdentity::current(&project.root);
    let cache = Cache::new(project.cache_dir());
    let mut files = Files::load(project, settings.paths.clone(), settings.overrides.clone());
    for problem in events.sync(&files.watched(), &[]) {
        output::line(format!("{NOTE}note{NOTE:#}: {problem}"));
    }
    let runner = Arc::new(Runner::start(&files.project.config, cache, identity, settings.options.clone()).await?);
    let (_raw_mode, mut keys) = match keys::start() {
        Some((guard, keys)) => (Some(guard), Some(keys)),
        None => (None, None),
    };
    let mut screen = Screen::new(keys.is_some());
    output::line(format!(
        "watching {} ({} invalid), debounce {}",
        output::count(files.len(), "scenario file"),
        files.invalid(),
        crate::duration::display(debounce)
    ));
    screen.diagnostics(&files.diagnostics());
    let baselines = Baselines::new(&files.project.root);
    let mut to_run = selected(&files, &settings.selection, files.runnable());
    let mut force = false;
    let mut current: Option<Current> = None;
    // Baselines this process wrote, by their hash: their file events are not changes.
    let mut written: HashMap<PathBuf, blake3::Hash> = HashMap::new();
    if to_run.is_empty() {
        screen.idle(baselines.pending().map_or(0, |p| p.len()));
    }
    let interrupt = run::signal();
    tokio::pin!(interrupt);
    let quit = loop {
        if current.is_none() && !to_run.is_empty() {
            let plans = files.plans(&std::mem::take(&mut to_run));
            current = Some(start(&runner, &files, plans, std::mem::take(&mut force), &mut screen));
        }
        tokio::select! {
            event = changes.recv() => {
                let paths = match event {
                    Some(Event::Changed(paths)) => paths,
                    Some(Event::Error(problem)) => {
                        output::line(format!("{NOTE}note{NOTE:#}: watching files: {problem}"));
                        continue;
                    }
                    None => break None,
                };
                let paths: Vec<PathBuf> = paths.into_iter().filter(|p| !own_write(&mut written, p)).collect();
                let affected = files.affected(&paths);
                let renewed: Vec<PathBuf> = paths.iter().filter(|p| p.is_dir()).cloned().collect();
                if affected.is_empty() {
                    events.sync(&files.watched(), &renewed);
                    continue;
                }
                let shown: Vec<String> = paths.iter().map(|p| files.project.display(p)).collect();
                screen.changed(&shown);
                let reloaded = if affected.everything {
                    match files.reload_project(&settings.paths) {
                        Ok(reloaded) => reloaded,
                        Err(problems) => {
                            screen.diagnostics(&problems.iter().collect::<Vec<_>>());
                            continue;
                        }
                    }
                } else {
                    files.reload(&affected)
                };
                for problem in events.sync(&files.watched(), &renewed) {
                    output::line(format!("{NOTE}note{NOTE:#}: {problem}"));
                }
                screen.diagnostics(&files.diagnostics_of(&reloaded.touched));
                let mut next = selected(&files, &settings.selection, reloaded.runnable);
                if next.is_empty() && current.is_none() {
                    screen.idle(baselines.pending().map_or(0, |p| p.len()));
                }
                if let Some(stale) = current.take_if(|_| !next.is_empty()) {
                    next.extend(stale.cancel().await);
                }
                to_run.extend(next);
            }
            Some(key) = next_key(&mut keys) => match key {
                Key::Quit => break None,
                Key::RerunAll => {
                    if let Some(stale) = current.take() {
                        stale.cancel().await;
                    }
                    to_run = selected(&files, &settings.selection, files.runnable());
                    force = true;
                }
                Key::Accept => accept(&baselines),
            },
            joined = async { (&mut current.as_mut().expect("guarded").task).await }, if current.is_some() => {
                let done = current.take().expect("guarded");
                let (progress, result) = match joined {
                    Ok((progress, result)) => (progress, result.map_err(|e| e.to_string())),
                    Err(e) => (Progress::default(), Err(format!("internal error: {e}; please report it"))),
                };
                if let Err(e) = result {
                    output::line(format!("{}error{:#}: {e}", output::BAD, output::BAD));
                }
                for outcome in &progress.outcomes {
                    if let Some(hash) = outcome.baseline.as_ref().and_then(|b| b.written) {
                        written.insert(baselines.path(&outcome.name), hash);
                    }
                }
                let report = report(&runner, progress, done.started);
                screen.finished(&report, |shown| files.shows(shown), &files.diagnostics());
                if to_run.is_empty() {
                    screen.idle(baselines.pending().map_or(0, |p| p.len()));
                }
            }
            signal = &mut interrupt => break Some(signal),
        }
    };
    output::line(format!("{NOTE}stopping{NOTE:#}: removing containers"));
    if let Some(stale) = current.take() {
        stale.cancel().await;
    }
    drop(_raw_mode);
    let runner = Arc::into_inner(runner).expect("no run holds the runner once stopped");
    let finished = runner.finish(quit.is_some()).await;
    if finished.leftovers > 0 {
        output::line(format!(
            "{}warning{:#}: {} resources could not be removed; `clnrm gc` removes them",
            output::BAD,
            output::BAD,
            finished.leftovers
        ));
    }
    Ok(quit)
}

/// Starts a run of `plans` in the background.
fn start(
    runner: &Arc<Runner>,
    files: &Files,
    plans: Vec<(PathBuf, run::Planned)>,
    force: bool,
    screen: &mut Screen,
) -> Current {
    screen.starting(plans.len());
    let (switch, cancel) = Cancel::new();
    let files_of: Vec<(PathBuf, String)> = plans.iter().map(|(path, p)| (path.clone(), p.file.clone())).collect();
    let plans: Vec<run::Planned> = plans.into_iter().map(|(_, p)| p).collect();
    let (runner, config) = (Arc::clone(runner), files.project.config.clone());
    let task = tokio::spawn(async move {
        let mut progress = Progress::default();
        let mut reporter = Terminal::new();
        reporter.planned(plans.len());
        let result = runner.batch(&config, plans, force, &cancel, &mut reporter, &mut progress).await;
        reporter.cleaning();
        (progress, result)
    });
    Current { task, switch, files: files_of, started: Instant::now() }
}

/// The scenario files of `paths` that the selection (`--filter`, `--tag`) keeps.
fn selected(files: &Files, selection: &Selection, paths: BTreeSet<PathBuf>) -> BTreeSet<PathBuf> {
    let plans = files.plans(&paths).into_iter();
    plans.filter(|(_, p)| selection.matches(&p.scenario.name, &p.scenario.tags)).map(|(path, _)| path).collect()
}

/// Whether the change of `path` is a baseline this process wrote, unchanged since.
fn own_write(written: &mut HashMap<PathBuf, blake3::Hash>, path: &PathBuf) -> bool {
    let Some(hash) = written.get(path) else { return false };
    let same = std::fs::read(path).is_ok_and(|bytes| blake3::hash(&bytes) == *hash);
    if !same {
        written.remove(path);
    }
    same
}

/// Makes every pending baseline the baseline; the renames then rerun their scenarios.
fn accept(baselines: &Baselines) {
    let pending = baselines.pending().unwrap_or_default();
    if pending.is_empty() {
        output::line(format!("{NOTE}note{NOTE:#}: no pending baselines"));
        return;
    }
    for name in &pending {
        match baselines.accept(name) {
            Ok(()) => output::line(format!("accepted the baseline of {name}")),
            Err(e) => output::line(format!("{}error{:#}: cannot accept the baseline of {name}: {e}", output::BAD, output::BAD)),
        }
    }
}

async fn next_key(keys: &mut Option<mpsc::UnboundedReceiver<Key>>) -> Option<Key> {
    match keys {
        Some(keys) => keys.recv().await,
        None => std::future::pending().await,
    }
}

/// A run's report, for the summary.
fn report(runner: &Runner, progress: Progress, started: Instant) -> RunReport {
    RunReport {
        run_id: runner.engine.identity.run_id.clone(),
        outcomes: progress.outcomes,
        pool: runner.pool_stats(),
        elapsed: started.elapsed(),
        interrupted: None,
        infrastructure: progress.infrastructure,
        leftovers: 0,
        strays: Default::default(),
        undelivered: 0,
    }
}
