//! The orchestrator: the only place that knows the order of a run.
//!
//! connect to the engine (and sweep leftovers of dead runs) → make every image available →
//! compute full cache keys and skip unchanged scenarios that passed → warm the pool for the rest →
//! run them `--jobs` at a time → tear down → report. SIGINT, SIGTERM, SIGHUP and SIGQUIT stop
//! scheduling at any point; whatever the run created is removed before it returns.

pub mod compare;
mod complete;
pub mod exits;
pub mod plan;
pub mod scenario;

pub use plan::Planned;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::{Either, join_all};
use tokio::task::JoinSet;

use crate::cache::{Cache, Conditions, Key, Lookup, Verdict};
use crate::config::{Config, PullPolicy};
use crate::engine::cleanup::{self, Registry};
use crate::engine::container;
use crate::engine::image::{self, Available, Needs};
use crate::engine::pool::{self, Pool};
use crate::engine::{Engine, EngineError, RunIdentity};
use crate::exit::Signal;
use crate::record::outcome::{CacheStatus, Failure, ScenarioOutcome, Status, TraceSpan};
use crate::record::{Record, RunInfo, Selection};
use crate::scenario::model::{ImageSource, Scenario, Step, StepTarget};
use crate::telemetry::export::Destination;
use crate::telemetry::session::Session;
use compare::Comparison;
use scenario::Shared;

/// What the orchestrator tells a view as the run goes (the terminal's live display, watch's
/// screen).
pub trait Reporter: Send {
    /// How many scenarios were selected.
    fn planned(&mut self, total: usize);
    /// An image had to be pulled or built.
    fn image(&mut self, image: &Available);
    fn started(&mut self, scenario: &str);
    fn finished(&mut self, outcome: &ScenarioOutcome);
    /// The run is over; cleaning up.
    fn cleaning(&mut self);
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub jobs: usize,
    pub fail_fast: bool,
    /// Run even scenarios that are unchanged since a pass.
    pub force: bool,
    /// Recycle step containers between scenarios (scenarios may override).
    pub reuse: bool,
    /// Warm step containers kept ready ahead of demand.
    pub warm: usize,
    pub ttl: Duration,
    /// The user's OTLP endpoint, where clnrm's and the collected spans also go.
    pub destination: Option<Destination>,
    /// Runs of each scenario (`--repeat`); the baseline keeps duration statistics over them.
    pub repeat: u32,
    /// How passing scenarios are compared with their baselines.
    pub comparison: Comparison,
    /// Keep the pool warm between batches (`watch`).
    pub keep_warm: bool,
}

/// `clnrm run`: begins the batch of `planned` (what `selection` chose), starts a runner, runs the
/// batch on it until it ends or a signal stops it, tears everything down and returns the run's
/// record, with the infrastructure failure that stopped it (engine unreachable, image
/// unavailable), which the record also holds.
pub async fn run(
    config: &Config,
    cache: &Cache,
    identity: RunIdentity,
    planned: Vec<Planned>,
    selection: Selection,
    options: &Options,
    reporter: &mut dyn Reporter,
) -> (Record, Option<EngineError>) {
    let (id, origin) = (identity.run_id.clone(), *crate::record::PROCESS_STARTED);
    let batch = Batch::begin(id, &identity.project, planned, selection, options.force, None, origin);
    let mut signals = Signals::listen();
    let runner = match Runner::start(config, cache.clone(), identity, options.clone()).await {
        Ok(runner) => runner,
        Err(e) => return (batch.unstarted(&e).await, Some(e)),
    };
    let (mut record, result) = runner.run(config, batch, &Cancel::never(), signals.next(), reporter).await;
    let teardown = Instant::now();
    runner.finish(record.run.interrupted.is_some()).await.into_record(&mut record, teardown.elapsed());
    (record, result.err())
}

/// A batch of scenarios to run, begun: `run` runs one, `watch` one per change, both through
/// [`Runner::run`], which returns its record.
pub struct Batch {
    /// The record's id: the run id, with the batch's number in `watch`.
    id: String,
    planned: Vec<Planned>,
    /// Run even scenarios that are unchanged since a pass.
    force: bool,
    begun: Begun,
}

impl Batch {
    /// Begins a batch of `planned` in the project at `root` (in the Tokio runtime), with the
    /// pool's figures now when a pool runs already (`watch` runs many batches on one pool), and
    /// the `origin` its first exec is timed from (for `run`, the process's start).
    pub fn begin(
        id: String,
        root: &str,
        planned: Vec<Planned>,
        selection: Selection,
        force: bool,
        pool: Option<pool::Stats>,
        origin: Instant,
    ) -> Batch {
        let begun = Begun::new(root, &planned, selection, pool, origin);
        Batch { id, planned, force, begun }
    }

    /// The record of a batch that could not start: nothing ran, for `error`.
    pub async fn unstarted(self, error: &EngineError) -> Record {
        self.begun.record(self.id, None, Progress::default(), None, None).await.failed(error)
    }
}

/// A batch begun: what its record says of how it began.
struct Begun {
    started: Instant,
    /// What the first exec is timed from.
    origin: Instant,
    wall: std::time::SystemTime,
    selection: Selection,
    fingerprint: String,
    /// The pool's figures when it began (`watch` runs many batches on one pool).
    pool: Option<pool::Stats>,
    /// The project's git commit, read meanwhile.
    git: tokio::task::JoinHandle<Option<crate::record::Git>>,
}

impl Begun {
    fn new(root: &str, planned: &[Planned], selection: Selection, pool: Option<pool::Stats>, origin: Instant) -> Begun {
        let root = std::path::PathBuf::from(root);
        Begun {
            started: Instant::now(),
            origin,
            wall: std::time::SystemTime::now(),
            selection,
            fingerprint: fingerprint(planned),
            pool,
            git: tokio::task::spawn_blocking(move || crate::record::Git::of(&root)),
        }
    }

    /// The record of the batch, over now: run `id` on `engine`, what `progress` holds, and the
    /// pool's figures now (this batch's are the difference from when it began).
    async fn record(
        self,
        id: String,
        engine: Option<String>,
        progress: Progress,
        interrupted: Option<Signal>,
        pool: Option<pool::Stats>,
    ) -> Record {
        let pool = pool.map(|now| match self.pool {
            Some(before) => pool::Stats {
                hits: now.hits - before.hits,
                misses: now.misses - before.misses,
                acquire: now.acquire[before.acquire.len().min(now.acquire.len())..].to_vec(),
            },
            None => now,
        });
        let mut record = Record {
            version: crate::record::VERSION,
            run: RunInfo {
                id,
                clnrm_version: env!("CARGO_PKG_VERSION").into(),
                started_at: crate::record::timestamp(self.wall),
                ended_at: crate::record::timestamp(std::time::SystemTime::now()),
                elapsed: self.started.elapsed(),
                exit_code: 0,
                selection: self.selection,
                fingerprint: self.fingerprint,
                engine,
                git: self.git.await.ok().flatten(),
                pool,
                first_exec: progress.first_exec.map(|at| at.duration_since(self.origin)),
                interrupted,
                infrastructure: progress.infrastructure,
                error: None,
                leftovers: 0,
                swept: cleanup::Removed::default(),
                strays: Default::default(),
                undelivered: 0,
            },
            scenarios: progress.outcomes,
        };
        record.run.exit_code = record.exit().code();
        record
    }
}

/// The selected scenarios' names and source keys, hashed: a run of the same inputs has the same.
pub fn fingerprint(planned: &[Planned]) -> String {
    let mut keys: Vec<(&str, String)> =
        planned.iter().map(|p| (p.scenario.name.as_str(), p.source_key.to_string())).collect();
    keys.sort();
    let mut hasher = blake3::Hasher::new();
    for (name, key) in keys {
        hasher.update(name.as_bytes()).update(b"\0").update(key.as_bytes()).update(b"\n");
    }
    hasher.finalize().to_hex().to_string()
}

/// What stays up from one batch of scenarios to the next: the engine connection, the run's
/// network, the span receiver on its gateway, the warm pool and the teardown work still going on.
/// `run` uses it for one batch; `watch` for one batch per change, so the pool stays warm and the
/// receiver up between them.
pub struct Runner {
    pub engine: Engine,
    /// The engine's version, as it said.
    engine_version: Option<String>,
    registry: Registry,
    /// The run's network: lanes live there, the receiver listens on its gateway.
    network: String,
    session: Arc<Session>,
    cache: Cache,
    options: Options,
    /// Made when a batch first needs step containers, then kept.
    pool: Mutex<Option<Arc<Pool>>>,
    background: Arc<Mutex<JoinSet<()>>>,
    /// Removing leftovers of dead runs, in the background from the start.
    sweep: tokio::task::JoinHandle<Result<cleanup::Removed, EngineError>>,
}

/// What finishing a runner reports.
pub struct Finished {
    /// Resources that could not be removed.
    pub leftovers: usize,
    /// What the start-of-run sweep removed of dead runs (nothing when it could not list them).
    pub swept: cleanup::Removed,
    pub strays: crate::telemetry::store::Strays,
    pub undelivered: u64,
}

impl Finished {
    /// Adds what tearing down found, and the time it took, to the `record` of the runner's batch.
    pub fn into_record(self, record: &mut Record, took: Duration) {
        let run = &mut record.run;
        (run.leftovers, run.swept, run.strays, run.undelivered) =
            (self.leftovers, self.swept, self.strays, self.undelivered);
        run.elapsed += took;
        run.ended_at = crate::record::timestamp(std::time::SystemTime::now());
    }
}

/// Tells a batch to stop: running scenarios tear down at once and are not reported, and queued
/// ones do not start. `watch` cancels work a newer change made stale.
#[derive(Clone)]
pub struct Cancel(tokio::sync::watch::Receiver<bool>);

impl Cancel {
    /// A cancel and the switch that sets it.
    pub fn new() -> (tokio::sync::watch::Sender<bool>, Cancel) {
        let (switch, cancel) = tokio::sync::watch::channel(false);
        (switch, Cancel(cancel))
    }

    /// A cancel that never fires.
    pub fn never() -> Cancel {
        Cancel::new().1
    }

    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when cancelled (never, once the switch is gone unset).
    pub async fn cancelled(&self) {
        let mut watch = self.0.clone();
        if watch.wait_for(|set| *set).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Runner {
    /// Connects to the engine (sweeping leftovers of dead runs meanwhile), creates the run's
    /// network and starts the span receiver.
    pub async fn start(
        config: &Config,
        cache: Cache,
        identity: RunIdentity,
        options: Options,
    ) -> Result<Runner, EngineError> {
        let engine = Engine::connect(identity).await?;
        let sweeper = engine.clone();
        let sweep = tokio::spawn(async move { cleanup::sweep(&sweeper).await });
        let registry = Registry::default();
        let network = engine.name("net", "run");
        let (session, version) =
            tokio::join!(start_telemetry(&engine, &registry, &network, config, &options), engine.docker.version());
        let session = match session {
            Ok(session) => Arc::new(session),
            Err(e) => {
                registry.remove_all(&engine).await;
                let _ = sweep.await;
                return Err(e);
            }
        };
        Ok(Runner {
            engine_version: version.ok().and_then(|v| v.version),
            engine,
            registry,
            network,
            session,
            cache,
            options,
            pool: Mutex::new(None),
            background: Arc::default(),
            sweep,
        })
    }

    pub fn pool_stats(&self) -> Option<pool::Stats> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|p| p.stats())
    }

    /// Runs `batch` until it ends, `cancel` fires or `interrupt` resolves (a signal: its running
    /// scenarios are recorded as interrupted), and returns its record, with the infrastructure
    /// failure that stopped it, which the record also holds. The one entry point of `run` and
    /// `watch`.
    pub async fn run(
        &self,
        config: &Config,
        batch: Batch,
        cancel: &Cancel,
        interrupt: impl Future<Output = Signal>,
        reporter: &mut dyn Reporter,
    ) -> (Record, Result<(), EngineError>) {
        let Batch { id, planned, force, begun } = batch;
        reporter.planned(planned.len());
        let mut progress = Progress::default();
        let (result, interrupted) = tokio::select! {
            result = self.batch(config, planned, force, cancel, reporter, &mut progress) => (result, None),
            signal = interrupt => (Ok(()), Some(signal)),
        };
        for outcome in progress.interrupted() {
            reporter.finished(&outcome);
            progress.outcomes.push(outcome);
        }
        reporter.cleaning();
        let record = begun.record(id, self.engine_version.clone(), progress, interrupted, self.pool_stats()).await;
        match &result {
            Ok(()) => (record, result),
            Err(e) => (record.failed(e), result),
        }
    }

    /// Runs a batch of scenarios, reporting each as it finishes and adding it to `progress` (kept
    /// outside, so that an interruption, which drops the batch mid-way, loses nothing of it).
    /// Once `cancel` fires, nothing more is reported. An error is an image that cannot be had.
    /// `force` runs scenarios that are unchanged since a pass.
    async fn batch(
        &self,
        config: &Config,
        planned: Vec<Planned>,
        force: bool,
        cancel: &Cancel,
        reporter: &mut dyn Reporter,
        progress: &mut Progress,
    ) -> Result<(), EngineError> {
        let images = tokio::select! {
            images = ensure_images(&self.engine, config, &planned, reporter) => images?,
            () = cancel.cancelled() => return Ok(()),
        };
        let mut to_run = Vec::new();
        for item in planned {
            let full = full_key(&item.scenario, &item.source_key, &images);
            let conditions = conditions(&item.scenario, &self.options);
            let (lookup, warning) =
                self.cache.lookup(&item.scenario.name, &item.source_key, Some((&full, &conditions)));
            crate::output::diagnostics(warning.iter());
            let status = cache_status(&lookup, force);
            if status == CacheStatus::Hit {
                // A span all the same, so the user's trace viewer shows the scenario was skipped.
                let span = self.session.tracing.scenario(&item.scenario.name, &item.file);
                span.set("clnrm.cache", status.as_str());
                span.set("clnrm.outcome", "cached");
                span.end();
                let mut cached = item.without_running(Status::Cached);
                cached.cache = Some(status);
                reporter.finished(&cached);
                progress.outcomes.push(cached);
            } else {
                to_run.push((item, full, status));
            }
        }
        let services = to_run.iter().any(|(p, _, _)| !p.scenario.services.is_empty());
        let demand: Vec<String> = to_run
            .iter()
            .filter_map(|(p, _, _)| first_step_image(&p.scenario))
            .map(|source| images.get(&source).map(|a| a.reference.clone()).unwrap_or_default())
            .collect();
        let shared = Arc::new(Shared {
            engine: self.engine.clone(),
            registry: self.registry.clone(),
            pool: self.pool_for(demand, services),
            images,
            defaults: config.defaults.clone(),
            otel: config.otel.clone(),
            telemetry: Arc::clone(&self.session),
            reuse: self.options.reuse,
            background: Arc::clone(&self.background),
            cancel: cancel.clone(),
            quiet: tokio::sync::RwLock::new(()),
            first_exec: std::sync::OnceLock::new(),
        });
        self.schedule(&shared, to_run, reporter, progress).await;
        progress.first_exec = shared.first_exec.get().copied();
        Ok(())
    }

    /// The pool, warming for `demand` (made on first demand, told of it afterwards). When scenarios
    /// have `services`, each job gets a spare lane: such a scenario gives its lane back only once
    /// its services are removed and the lane has left their network (a second or so), while its
    /// task asks for the next lane at once. One-step runs keep a lane per job: spares there only
    /// added engine work (measured: docs/benchmarks.md, issue 15's third round).
    fn pool_for(&self, demand: Vec<String>, services: bool) -> Option<Arc<Pool>> {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        match pool.as_ref() {
            Some(existing) => existing.announce(demand),
            None if demand.is_empty() => {}
            None => {
                let options = &self.options;
                // Reused containers serve many scenarios: one per lane is all that is ever needed.
                let ahead = if options.reuse { options.jobs } else { options.warm };
                let settings = pool::Settings {
                    lanes: if services { options.jobs * 2 } else { options.jobs },
                    ahead,
                    reuse: options.reuse,
                    keep_warm: options.keep_warm,
                    ttl: options.ttl,
                };
                let (engine, registry, network) = (self.engine.clone(), self.registry.clone(), self.network.clone());
                *pool = Some(Pool::start(engine, registry, settings, demand, network));
            }
        }
        pool.clone()
    }

    /// Stops the pool, waits for teardown work (aborting it when `interrupted`), stops the
    /// receiver and removes everything the runner created.
    pub async fn finish(self, interrupted: bool) -> Finished {
        let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(pool) = pool {
            pool.shutdown().await;
        }
        let mut background = std::mem::take(&mut *self.background.lock().unwrap_or_else(|e| e.into_inner()));
        if interrupted {
            background.abort_all();
        }
        while background.join_next().await.is_some() {}
        let telemetry = self.session.end().await;
        let mut leftovers = self.registry.remove_all(&self.engine).await;
        leftovers += cleanup::remove_run(&self.engine).await;
        let swept = self.sweep.await.ok().and_then(Result::ok).unwrap_or_default();
        Finished { leftovers, swept, strays: telemetry.strays, undelivered: telemetry.undelivered }
    }
}

/// Creates the run's network and starts the span receiver on its gateway: an address every
/// container of the run can reach, and no public interface.
async fn start_telemetry(
    engine: &Engine,
    registry: &Registry,
    network: &str,
    config: &Config,
    options: &Options,
) -> Result<Session, EngineError> {
    let pool = crate::engine::docker::POOL_SCENARIO;
    let gateway = container::create_network(engine, registry, network, pool, container::Reach::HostOnly).await?;
    let receiver = |reason: String| EngineError::Receiver { reason };
    let gateway = gateway.ok_or_else(|| receiver(format!("network {network} has no gateway address to listen on")))?;
    Session::start(gateway, config.otel.protocol, &engine.identity.run_id, options.destination.clone())
        .await
        .map_err(receiver)
}

/// What a batch has produced so far.
#[derive(Default)]
struct Progress {
    outcomes: Vec<ScenarioOutcome>,
    /// Scenarios started and not finished. Kept here rather than in the scheduler, which a signal
    /// drops mid-way, so the run can still report them as interrupted.
    running: HashMap<tokio::task::Id, Running>,
    /// Some scenario failed because of the engine rather than a test.
    infrastructure: bool,
    /// When the first step's exec started.
    first_exec: Option<Instant>,
}

/// A scenario started and not finished.
struct Running {
    name: String,
    file: String,
    started: Instant,
}

impl Progress {
    /// The scenarios still running, as interrupted outcomes in the order they started (taken: a
    /// signal dropped the batch that would have finished them).
    fn interrupted(&mut self) -> Vec<ScenarioOutcome> {
        let mut running: Vec<Running> = self.running.drain().map(|(_, r)| r).collect();
        running.sort_by_key(|r| r.started);
        running
            .into_iter()
            .map(|r| {
                let mut outcome = ScenarioOutcome::without_running(&r.name, &r.file, Status::Interrupted);
                outcome.duration = r.started.elapsed();
                outcome
            })
            .collect()
    }
}

/// The signals that stop a run: SIGINT, SIGTERM, SIGHUP and SIGQUIT. Listening starts when this
/// is made, which is before anything is created on the engine: a signal arriving at any later
/// point (even while the runner starts) stops the run with cleanup rather than ending the process
/// on the spot, and one that arrives while nobody waits is kept until [`Signals::next`].
pub struct Signals(Vec<(Signal, tokio::signal::unix::Signal)>);

impl Signals {
    /// Starts listening; must be called inside the Tokio runtime.
    pub fn listen() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        let kinds = [
            (Signal::Interrupt, SignalKind::interrupt()),
            (Signal::Terminate, SignalKind::terminate()),
            (Signal::Hangup, SignalKind::hangup()),
            (Signal::Quit, SignalKind::quit()),
        ];
        Signals(kinds.into_iter().filter_map(|(which, kind)| Some((which, signal(kind).ok()?))).collect())
    }

    /// Resolves at the next signal.
    pub async fn next(&mut self) -> Signal {
        let waits = self.0.iter_mut().map(|(which, stream)| {
            Box::pin(async move {
                match stream.recv().await {
                    Some(()) => *which,
                    None => std::future::pending().await,
                }
            })
        });
        let waits: Vec<_> = waits.collect();
        if waits.is_empty() {
            return std::future::pending().await;
        }
        futures_util::future::select_all(waits).await.0
    }
}

impl Runner {
    /// Runs scenarios `jobs` at a time, reporting each as it finishes and recording its verdict.
    async fn schedule(
        &self,
        shared: &Arc<Shared>,
        to_run: Vec<(Planned, Key, CacheStatus)>,
        reporter: &mut dyn Reporter,
        progress: &mut Progress,
    ) {
        let mut queue = to_run.into_iter();
        let mut running = JoinSet::new();
        let mut stop = false;
        loop {
            while !stop && !shared.cancel.is_cancelled() && running.len() < self.options.jobs.max(1) {
                let Some((planned, full, cache)) = queue.next() else { break };
                reporter.started(&planned.scenario.name);
                let started = Running {
                    name: planned.scenario.name.clone(),
                    file: planned.file.clone(),
                    started: Instant::now(),
                };
                let (shared, options) = (Arc::clone(shared), self.options.clone());
                let handle = running.spawn(async move {
                    let ran = repeat(shared, &planned, cache, &options).await;
                    (ran, planned, full)
                });
                progress.running.insert(handle.id(), started);
            }
            let Some(joined) = running.join_next_with_id().await else { break };
            let id = match &joined {
                Ok((id, _)) => *id,
                Err(error) => error.id(),
            };
            let started = progress.running.remove(&id);
            let (outcome, failed_on_engine) = match joined {
                Ok((_, (None, _, _))) => continue,
                Ok((_, (Some((outcome, engine_failure)), planned, full))) => {
                    if !engine_failure {
                        // A baseline the run wrote is part of the sources from now on.
                        let written = outcome.baseline.as_ref().and_then(|b| b.written_hash());
                        let (source, full) = match written {
                            Some(hash) => {
                                let source = planned.scenario_key.with_baseline(Some(hash));
                                (source, full_key(&planned.scenario, &source, &shared.images))
                            }
                            None => (planned.source_key, full),
                        };
                        record_verdict(
                            &self.cache,
                            &outcome,
                            &source,
                            &full,
                            conditions(&planned.scenario, &self.options),
                        );
                    }
                    (outcome, engine_failure)
                }
                Err(error) => (internal_error(started.as_ref(), &error), true),
            };
            progress.infrastructure |= failed_on_engine;
            stop |= self.options.fail_fast && outcome.status.is_failure();
            reporter.finished(&outcome);
            progress.outcomes.push(outcome);
        }
        let unstarted: Vec<Planned> = queue.map(|(planned, _, _)| planned).collect();
        if let Some(pool) = &shared.pool {
            pool.withdraw(unstarted.iter().filter_map(|p| first_step_image(&p.scenario)).map(|s| shared.reference(&s)));
        }
        if shared.cancel.is_cancelled() {
            return;
        }
        for planned in unstarted {
            let skipped = planned.without_running(Status::Skipped);
            reporter.finished(&skipped);
            progress.outcomes.push(skipped);
        }
    }
}

/// Runs a scenario `--repeat` times (stopping at the first run that does not pass), then compares
/// the traces with its baseline. A comparison broken by durations alone is not believed at once:
/// the scenario runs again, alone (`Shared::quiet`), until its fastest times are within the
/// limits or it has run `duration_runs` times (`baseline::thresholds`). The outcome is the last
/// run's, with the time of all of them, and whether it failed on the engine; none when the batch
/// was cancelled.
async fn repeat(
    shared: Arc<Shared>,
    planned: &Planned,
    cache: CacheStatus,
    options: &Options,
) -> Option<(ScenarioOutcome, bool)> {
    let mut traces = Vec::new();
    let mut elapsed = Duration::ZERO;
    let comparison = &options.comparison;
    let (scenario, stored) = (&planned.scenario, planned.baseline.as_deref());
    let repeat = options.repeat.max(1) as usize;
    let mut first_slower: Option<String> = None;
    loop {
        // A further run asks the pool like a scenario of its own: announced, so that it does not
        // take the container warmed for a later scenario (whose lane would then look idle).
        let image = first_step_image(scenario).map(|image| shared.reference(&image));
        if let (false, Some(pool), Some(image)) = (traces.is_empty(), &shared.pool, &image) {
            pool.announce([image.clone()]);
        }
        let run = scenario::execute(Arc::clone(&shared), Arc::clone(scenario), planned.file.clone(), cache, stored);
        // The run's hold on `quiet`: alone to confirm a duration regression, else beside others.
        let turn = async {
            match first_slower {
                Some(_) => Either::Left(shared.alone(image.clone()).await),
                None => Either::Right(shared.quiet.read().await),
            }
        };
        // Cancelled while waiting for its turn, the run still starts: it ends at once, handing
        // back what it holds in the pool.
        let _turn = tokio::select! {
            turn = turn => Some(turn),
            () = shared.cancel.cancelled() => None,
        };
        let mut executed = run.await;
        if executed.cancelled {
            return None;
        }
        elapsed += executed.outcome.duration;
        traces.push(compare::Traced { spans: executed.spans, peers: executed.peers });
        let passed = executed.outcome.status == Status::Pass;
        if passed && traces.len() < repeat {
            continue;
        }
        executed.outcome.duration = elapsed;
        executed.outcome.runs = traces.len();
        executed.outcome.warnings.splice(0..0, planned.warnings.iter().cloned());
        let mut outcome = executed.outcome;
        tokio::task::block_in_place(|| comparison.judge(scenario, stored, &traces, &mut outcome));
        // Durations too slow, or too slow as measured and passed only with the load divided out.
        let slower = outcome.baseline.as_ref().and_then(|b| match outcome.status {
            Status::Regressed if b.only_durations() => Some(b.broken[0].message.clone()),
            Status::Pass => b.excused.clone(),
            _ => None,
        });
        match slower {
            Some(message) if traces.len() < comparison.duration_runs(scenario).max(repeat) => {
                first_slower.get_or_insert(message);
            }
            _ => {
                if let Some(excused) = outcome.baseline.as_ref().and_then(|b| b.excused.clone()) {
                    outcome.warnings.push(excused);
                } else if let (Some(first), Status::Pass) = (first_slower, outcome.status) {
                    outcome.warnings.push(format!(
                        "slower than its baseline at first ({first}), but not in all of {} runs: the fastest times \
                         are within the limits, so the machine was loaded rather than the system slower",
                        traces.len()
                    ));
                }
                // The record keeps the last run's trace, whose outcome this is.
                let last = traces.pop().map(|t| t.spans).unwrap_or_default();
                outcome.trace = last.into_iter().map(|span| TraceSpan { own: span.is_own(), span }).collect();
                return Some((outcome, executed.infrastructure));
            }
        }
    }
}

/// Why a scenario runs (or that it does not), from what the cache holds.
fn cache_status(lookup: &Lookup, force: bool) -> CacheStatus {
    match lookup {
        Lookup::Hit(Verdict::Pass) if force => CacheStatus::Forced,
        Lookup::Hit(Verdict::Pass) => CacheStatus::Hit,
        Lookup::Hit(_) => CacheStatus::Rerun,
        Lookup::Miss => CacheStatus::Miss,
    }
}

fn record_verdict(cache: &Cache, outcome: &ScenarioOutcome, source: &Key, full: &Key, conditions: Conditions) {
    // A pass with no baseline to compare with is not settled: it runs again (and under CI fails)
    // until a baseline exists, whose bytes then become part of the key.
    if outcome.baseline.as_ref().is_some_and(|b| b.diff.is_none() && b.written.is_none()) {
        return;
    }
    let verdict = match outcome.status {
        Status::Pass => Verdict::Pass,
        Status::Fail => Verdict::Fail,
        Status::Timeout => Verdict::Timeout,
        Status::Regressed => Verdict::Regressed,
        Status::Cached | Status::Skipped | Status::Interrupted => return,
    };
    if let Err(e) = cache.record(&outcome.name, source, full, conditions, verdict, outcome.duration) {
        let d = crate::diagnostic::Diagnostic::warning(
            "cache",
            format!("cannot record the verdict of `{}`: {e}", outcome.name),
        );
        crate::output::diagnostics([&d]);
    }
}

/// A scenario task that panicked: reported as a failure, never silently lost.
fn internal_error(running: Option<&Running>, error: &tokio::task::JoinError) -> ScenarioOutcome {
    let (name, file) = running.map_or(("", ""), |r| (r.name.as_str(), r.file.as_str()));
    let mut outcome = ScenarioOutcome::without_running(name, file, Status::Fail);
    outcome.failure = Some(Failure {
        place: "clnrm".into(),
        message: format!("internal error: {error}; please report it"),
        output: String::new(),
    });
    outcome
}

/// Every image the planned scenarios use, made available in parallel.
async fn ensure_images(
    engine: &Engine,
    config: &Config,
    planned: &[Planned],
    reporter: &mut dyn Reporter,
) -> Result<HashMap<ImageSource, Available>, EngineError> {
    let needs = needs(planned.iter().map(|p| &*p.scenario), config.defaults.pull);
    let results = join_all(needs.iter().map(|need| image::ensure(engine, need))).await;
    let mut available = HashMap::new();
    for (need, result) in needs.into_iter().zip(results) {
        let image = result?;
        reporter.image(&image);
        available.insert(need.source, image);
    }
    Ok(available)
}

/// Every image `scenarios` use, once each, with the pull policy each asks for (else `default`)
/// and the scenarios that use it: what `run` and `pull` prepare.
pub fn needs<'a>(scenarios: impl IntoIterator<Item = &'a Scenario>, default: PullPolicy) -> Vec<image::Need> {
    let mut needs = Needs::default();
    for scenario in scenarios {
        for (source, pull) in images_of(scenario) {
            needs.add(&source, pull.unwrap_or(default), &scenario.name);
        }
    }
    needs.into_vec()
}

/// The images a scenario uses, with the pull policy it asks for (if any).
fn images_of(scenario: &Scenario) -> Vec<(ImageSource, Option<PullPolicy>)> {
    let services = scenario.services.iter().map(|s| (s.image.clone(), s.pull));
    let steps = scenario.steps.iter().filter_map(|step| match &step.target {
        StepTarget::Container { image, pull } => Some((image.clone(), *pull)),
        StepTarget::Service(_) => None,
    });
    services.chain(steps).collect()
}

fn first_step_image(scenario: &Scenario) -> Option<ImageSource> {
    scenario.steps.iter().find_map(Step::image).cloned()
}

/// How `scenario` runs, as far as what its verdict vouches for.
fn conditions(scenario: &Scenario, options: &Options) -> Conditions {
    Conditions { runs: options.repeat.max(1), reuse: scenario.reuse.unwrap_or(options.reuse) }
}

/// The source key plus the id of every image the scenario uses.
fn full_key(scenario: &Scenario, source: &Key, images: &HashMap<ImageSource, Available>) -> Key {
    let ids: Vec<(&str, &str)> = images_of(scenario)
        .iter()
        .filter_map(|(source, _)| images.get(source))
        .map(|a| (a.reference.as_str(), a.id.as_str()))
        .collect();
    source.with_images(&ids)
}
