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
use std::time::Duration;

use tokio::sync::mpsc;

use crate::baseline::files::{Baselines, Update};
use crate::cache::Cache;
use crate::cli::WatchArgs;
use crate::engine::{EngineError, RunIdentity};
use crate::environment::Environment;
use crate::error::Error;
use crate::exit::{Exit, Signal};
use crate::output::{self, BAD, Format, NOTE};
use crate::project::Project;
use crate::record::Record;
use crate::record::files::Runs;
use crate::report::terminal::Terminal;
use crate::run::compare::Comparison;
use crate::run::plan::Selection;
use crate::run::{self, Batch, Cancel, Options, Runner};
use crate::scenario::vars::Overrides;
use events::{Event, Events};
use files::Files;
use keys::Key;
use screen::Screen;

/// `clnrm watch` with `args`: watches until quit.
pub fn run(project: Project, args: WatchArgs, format: Format, env: &Environment) -> Result<(), Error> {
    if format == Format::Json {
        return Err(Error::Usage("`watch` is for people; --format json is not supported".into()));
    }
    let paths = super::resolve_paths(&project, &args.paths, Vec::new())?;
    let (overrides, warnings) = Overrides::from_env(args.vars.vars);
    crate::output::diagnostics(warnings.iter());
    let update = Update::resolve(false, env).map_err(Error::Usage)?;
    let comparison = Comparison::new(&project, update, env.ci);
    let options = Options { keep_warm: true, ..super::run::options(&project, &args.runner, comparison) };
    let selection = Selection { filter: args.runner.filter, tags: args.runner.tags, shard: None };
    let settings = Settings { paths, overrides, selection, options, debounce: args.debounce, ci: env.ci };
    match super::runtime()?.block_on(watch(project, settings))? {
        None => Ok(()),
        Some(signal) => Err(Error::Ended(Exit::Signalled(signal))),
    }
}

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
    /// Under CI: plain lines, no keys read.
    pub ci: bool,
}

/// The run in flight.
struct Current {
    task: tokio::task::JoinHandle<(Record, Result<(), EngineError>)>,
    switch: tokio::sync::watch::Sender<bool>,
    /// Its scenario files, with how each is shown (outcomes name the shown form).
    files: Vec<(PathBuf, String)>,
}

impl Current {
    /// Cancels the run and waits for its scenarios to tear down; the files it did not finish.
    async fn cancel(self) -> BTreeSet<PathBuf> {
        let _ = self.switch.send(true);
        let finished: BTreeSet<String> = match self.task.await {
            Ok((record, _)) => record.scenarios.into_iter().map(|o| o.file).collect(),
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
    let (events, mut changes) = Events::start(debounce, filter).map_err(Error::Usage)?;
    let mut signals = run::Signals::listen();
    let identity = RunIdentity::current(&project.root);
    let cache = Cache::new(project.cache_dir());
    let files = Files::load(project, settings.paths.clone(), settings.overrides.clone());
    let runner = Arc::new(Runner::start(&files.project.config, cache, identity, settings.options.clone()).await?);
    let (raw_mode, mut keys) = match keys::start(settings.ci) {
        Some((guard, keys)) => (Some(guard), Some(keys)),
        None => (None, None),
    };
    let baselines = Baselines::new(&files.project.root);
    let mut watcher = Watcher {
        screen: Screen::new(keys.is_some(), settings.ci),
        to_run: selected(&files, &settings.selection, files.runnable()),
        files,
        events,
        runner,
        settings,
        baselines,
        force: false,
        current: None,
        written: HashMap::new(),
    };
    watcher.begin(debounce);
    let quit = loop {
        watcher.start_pending();
        tokio::select! {
            event = changes.recv() => match event {
                Some(Event::Changed(paths)) => watcher.changed(paths).await,
                Some(Event::Error(problem)) => output::line(format!("{NOTE}note{NOTE:#}: watching files: {problem}")),
                None => break None,
            },
            Some(key) = next_key(&mut keys) => match key {
                Key::Quit => break None,
                Key::RerunAll => watcher.rerun_all().await,
                Key::Accept => watcher.accept().await,
            },
            joined = async { (&mut watcher.current.as_mut().expect("guarded").task).await }, if watcher.current.is_some() => {
                watcher.finished(joined).await;
            }
            signal = signals.next() => break Some(signal),
        }
    };
    output::line(format!("{NOTE}stopping{NOTE:#}: removing containers"));
    if let Some(stale) = watcher.current.take() {
        stale.cancel().await;
    }
    drop(raw_mode);
    let runner = Arc::into_inner(watcher.runner).expect("no run holds the runner once stopped");
    let finished = runner.finish(quit.is_some()).await;
    if let Some(note) = finished.swept.swept_note() {
        output::line(format!("{NOTE}note{NOTE:#}: at start, {note}"));
    }
    if finished.leftovers > 0 {
        output::line(format!(
            "{BAD}warning{BAD:#}: {} resources could not be removed; `clnrm gc` removes them",
            finished.leftovers
        ));
    }
    Ok(quit)
}

/// The state of a watch between events.
struct Watcher {
    files: Files,
    events: Events,
    screen: Screen,
    runner: Arc<Runner>,
    settings: Settings,
    baselines: Baselines,
    /// Scenario files to run once nothing runs.
    to_run: BTreeSet<PathBuf>,
    /// The next run ignores the cache (`r`).
    force: bool,
    current: Option<Current>,
    /// Baselines this process wrote or accepted, by their hash: their file events are not changes.
    written: HashMap<PathBuf, blake3::Hash>,
}

impl Watcher {
    fn begin(&mut self, debounce: Duration) {
        self.sync();
        output::line(format!(
            "watching {} ({} invalid), debounce {}",
            output::count(self.files.count(), "scenario file"),
            self.files.invalid(),
            crate::duration::display(debounce)
        ));
        self.screen.diagnostics(&self.files.diagnostics());
        if self.to_run.is_empty() {
            self.idle();
        }
    }

    /// Starts a run of what waits to run, in the background, when nothing runs.
    fn start_pending(&mut self) {
        if self.current.is_some() || self.to_run.is_empty() {
            return;
        }
        let plans = self.files.plans(&std::mem::take(&mut self.to_run));
        let force = std::mem::take(&mut self.force);
        let number = self.screen.starting(plans.len());
        // Each run of a watch has its own record: the run id of the watch and the run's number.
        let id = format!("{}-{number}", self.runner.engine.identity.run_id);
        let (switch, cancel) = Cancel::new();
        let files: Vec<(PathBuf, String)> = plans.iter().map(|(path, p)| (path.clone(), p.file.clone())).collect();
        let plans: Vec<run::Planned> = plans.into_iter().map(|(_, p)| p).collect();
        let (root, recorded) =
            (&self.runner.engine.identity.project, self.settings.selection.recorded(&self.settings.paths));
        // Begun now, with the pool's figures now, so that its record counts this run's alone.
        let (pool, now) = (self.runner.pool_stats(), std::time::Instant::now());
        let batch = Batch::begin(id, root, plans, recorded, force, pool, now);
        let (runner, config, ci) = (Arc::clone(&self.runner), self.files.project.config.clone(), self.settings.ci);
        let task = tokio::spawn(async move {
            // Signals are the watch's own: they quit it, cancelling this run.
            let never = std::future::pending();
            runner.run(&config, batch, &cancel, never, &mut Terminal::new(ci)).await
        });
        self.current = Some(Current { task, switch, files });
    }

    /// Watches what the project needs now. Files already in a directory that appeared since the
    /// last call may have changed before it was watched: they count as changed.
    fn sync(&mut self) -> Vec<PathBuf> {
        let (appeared, problems) = self.events.sync(&self.files.watched());
        for problem in problems {
            output::line(format!("{NOTE}note{NOTE:#}: {problem}"));
        }
        appeared
    }

    /// Files changed: reload what they affect, show its problems at once, and run what is valid
    /// (cancelling a run in flight, whose unfinished scenarios run again with these).
    async fn changed(&mut self, paths: Vec<PathBuf>) {
        let paths: Vec<PathBuf> = paths.into_iter().filter(|p| !own_write(&mut self.written, p)).collect();
        self.reload(paths).await;
    }

    /// Reloads what `paths` affect (and what appears meanwhile), shows its problems and runs it.
    async fn reload(&mut self, mut paths: Vec<PathBuf>) {
        let mut reloaded = files::Reloaded::default();
        let mut shown_any = false;
        while !paths.is_empty() {
            let affected = self.files.affected(&paths);
            if !affected.is_empty() {
                shown_any = true;
                let shown: Vec<String> = paths.iter().map(|p| self.files.project.display(p)).collect();
                self.screen.changed(&shown);
                let result = if affected.everything {
                    let before = fixed_settings(&self.files.project.config);
                    let result = self.files.reload_project(&self.settings.paths);
                    if fixed_settings(&self.files.project.config) != before {
                        output::line(format!(
                            "{NOTE}note{NOTE:#}: [pool], [run] jobs and [otel] protocol take effect when watch starts again"
                        ));
                    }
                    result
                } else {
                    Ok(self.files.reload(&affected))
                };
                match result {
                    Ok(more) => {
                        self.screen.diagnostics(&self.files.diagnostics_of(&more.touched));
                        reloaded.runnable.extend(more.runnable);
                    }
                    Err(problems) => self.screen.diagnostics(&problems.iter().collect::<Vec<_>>()),
                }
            }
            paths = self.sync();
        }
        let mut next = selected(&self.files, &self.settings.selection, reloaded.runnable);
        if next.is_empty() {
            if shown_any && self.current.is_none() && self.to_run.is_empty() {
                self.idle();
            }
            return;
        }
        if let Some(stale) = self.current.take() {
            next.extend(stale.cancel().await);
        }
        self.to_run.extend(next);
    }

    /// `r`: everything again, cache or not.
    async fn rerun_all(&mut self) {
        if let Some(stale) = self.current.take() {
            stale.cancel().await;
        }
        self.to_run = selected(&self.files, &self.settings.selection, self.files.runnable());
        self.force = true;
    }

    /// `a`: every pending baseline becomes the baseline, and its scenario's comparison reruns at
    /// once (the writes' own events, arriving later, are then not changes). Stored statistics are
    /// kept as `clnrm baseline accept` keeps them.
    async fn accept(&mut self) {
        let pending = self.baselines.pending().unwrap_or_default();
        if pending.is_empty() {
            output::line(format!("{NOTE}note{NOTE:#}: no pending baselines"));
            return;
        }
        let mut accepted = Vec::new();
        for name in &pending {
            let path = self.baselines.path(name);
            match crate::commands::baseline::accept(&self.files.project, name) {
                Ok((what, hash)) => {
                    output::line(format!("accepted the baseline of {name} ({what})"));
                    self.written.insert(path.clone(), hash);
                    accepted.push(path);
                }
                Err(e) => output::line(format!("{BAD}error{BAD:#}: cannot accept the baseline of {name}: {e}")),
            }
        }
        self.reload(accepted).await;
    }

    /// The run in flight ended: its summary, and the screen redrawn.
    async fn finished(&mut self, joined: Result<(Record, Result<(), EngineError>), tokio::task::JoinError>) {
        self.current = None;
        let record = match joined {
            Ok((record, result)) => {
                if let Err(e) = result {
                    output::line(format!("{BAD}error{BAD:#}: {e}"));
                }
                record
            }
            Err(e) => {
                // The batch's task panicked: nothing of it can be trusted or recorded.
                output::line(format!("{BAD}error{BAD:#}: internal error: {e}; please report it"));
                self.idle();
                return;
            }
        };
        for outcome in &record.scenarios {
            if let Some(hash) = outcome.baseline.as_ref().and_then(|b| b.written_hash()) {
                self.written.insert(self.baselines.path(&outcome.name), hash);
            }
        }
        let keep = self.files.project.config.run.keep_records as usize;
        if let Err(e) = Runs::new(&self.files.project.root).write(&record, keep, None) {
            output::line(format!("{NOTE}note{NOTE:#}: the run's record was not kept: {e}"));
        }
        let files = &self.files;
        self.screen.finished(&record, |shown| files.shows(shown), &files.diagnostics());
        if self.to_run.is_empty() {
            self.idle();
        }
    }

    fn idle(&self) {
        self.screen.idle(self.baselines.pending().map_or(0, |p| p.len()));
    }
}

/// The settings of the config that a running watch keeps: its pool, parallelism and receiver.
fn fixed_settings(config: &crate::config::Config) -> String {
    format!("{:?} {:?} {:?}", config.pool, config.run.jobs, config.otel.protocol)
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

async fn next_key(keys: &mut Option<mpsc::UnboundedReceiver<Key>>) -> Option<Key> {
    match keys {
        Some(keys) => keys.recv().await,
        None => std::future::pending().await,
    }
}
