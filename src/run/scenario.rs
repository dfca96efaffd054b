//! Running one scenario: lease step containers, start services on a private network and wait for
//! them, run the steps and check their expectations, then tear everything down.
//!
//! The scenario's timeout wraps all of it and is enforced while waiting. What the scenario holds
//! lives outside the timed part, so teardown happens whether it passed, failed or timed out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::Cancel;
use super::complete::Expected;
use super::exits::Exits;
use crate::baseline::normalize::Baseline;
use crate::config::{Defaults, Otel};
use crate::engine::cleanup::Registry;
use crate::engine::exec::{self, ExecEnd, ExecOutcome, ExecRequest, OnTimeout, Tail};
use crate::engine::image::Available;
use crate::engine::pool::{Hushed, Lease, Pool};
use crate::engine::{Engine, EngineError};
use crate::engine::{container, service};
use crate::expect::check::{self, Checked};
use crate::expect::failure::Context as CheckContext;
use crate::record::outcome::{
    CacheStatus, Failure, ScenarioOutcome, ServiceExit, ServiceOutcome, Status, StepOutcome, StepStatus, Target,
};
use crate::scenario::model::{ImageSource, OutputExpect, Scenario, Service, Step, StepTarget};
use crate::telemetry::own::OwnSpan;
use crate::telemetry::peers::{CLNRM, Peers, STEPS};
use crate::telemetry::session::Session;
use crate::telemetry::span::{Span, SpanKind, WAIT_STRATEGY};
use crate::telemetry::store::{Closed, Settled};
use crate::telemetry::wiring::{STEPS_SERVICE, quiet_window};

/// Lines of output shown with a failure.
const TAIL_LINES: usize = 20;

/// The longest a run that confirms a duration regression waits for earlier teardown work.
const SETTLE_AT_MOST: Duration = Duration::from_secs(30);

/// What all scenarios of a run share.
pub struct Shared {
    pub engine: Engine,
    pub registry: Registry,
    /// Present when some scenario runs steps in step containers.
    pub pool: Option<Arc<Pool>>,
    pub images: HashMap<ImageSource, Available>,
    pub defaults: Defaults,
    pub otel: Otel,
    /// The run's receiver, span store and tracing.
    pub telemetry: Arc<Session>,
    pub reuse: bool,
    /// Teardown work, finished before the run ends.
    pub background: Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>,
    /// Stops the batch these scenarios belong to.
    pub cancel: Cancel,
    /// Every run of a scenario holds it shared; a run that confirms a duration regression holds it
    /// alone, so that it measures the system on a machine as quiet as the batch can make it (the
    /// other scenarios' runs finish first, and new ones wait).
    pub quiet: tokio::sync::RwLock<()>,
    /// When the batch's first step exec started.
    pub first_exec: std::sync::OnceLock<Instant>,
}

impl Shared {
    pub fn reference(&self, source: &ImageSource) -> String {
        self.images.get(source).map(|a| a.reference.clone()).unwrap_or_default()
    }

    /// Holds the batch alone (`quiet`), with the pool hushed but for a container of `image` (the
    /// run's step image), once the teardown work of the runs before is done and the pool makes and
    /// removes nothing (removing a scenario's containers keeps the engine busy for a second or
    /// more), or after [`SETTLE_AT_MOST`].
    pub async fn alone(&self, image: Option<String>) -> Alone<'_> {
        let quiet = self.quiet.write().await;
        let hushed = self.pool.as_ref().map(|pool| pool.hush(image));
        let deadline = Instant::now() + SETTLE_AT_MOST;
        while Instant::now() < deadline && !self.idle() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Alone { _quiet: quiet, _hushed: hushed }
    }

    /// No teardown work left, and the pool neither making nor removing containers.
    fn idle(&self) -> bool {
        let mut background = self.background.lock().unwrap_or_else(|e| e.into_inner());
        while background.try_join_next().is_some() {}
        background.is_empty() && !self.pool.as_ref().is_some_and(|pool| pool.busy())
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut background = self.background.lock().unwrap_or_else(|e| e.into_inner());
        // A long `watch` would otherwise keep every finished task until it quits.
        while background.try_join_next().is_some() {}
        background.spawn(task);
    }
}

/// A run's hold on the batch alone (`Shared::alone`): other runs wait, the pool is hushed.
pub struct Alone<'a> {
    _quiet: tokio::sync::RwLockWriteGuard<'a, ()>,
    _hushed: Option<Hushed>,
}

/// What a running scenario holds, released by teardown.
#[derive(Default)]
struct Held {
    lease: Option<Lease>,
    network: Option<String>,
    /// Service name → container name.
    services: Vec<(String, String)>,
    /// The scenario's containers and clnrm by address and name (for `hermetic` and baselines).
    peers: Peers,
}

/// Why a scenario stopped early.
struct Stop {
    status: Status,
    failure: Failure,
    /// An engine failure rather than a test failure.
    infrastructure: bool,
}

impl Stop {
    fn fail(place: impl Into<String>, message: impl Into<String>, output: impl Into<String>) -> Self {
        Stop {
            status: Status::Fail,
            failure: Failure { place: place.into(), message: message.into(), output: output.into() },
            infrastructure: false,
        }
    }

    fn engine(place: impl Into<String>, error: EngineError) -> Self {
        Stop { infrastructure: true, ..Stop::fail(place, error.to_string(), "") }
    }
}

/// How one run of a scenario went.
pub struct Executed {
    pub outcome: ScenarioOutcome,
    /// Every span collected for it (its own and the system under test's).
    pub spans: Vec<Span>,
    /// Its containers' and clnrm's addresses and names, which its spans may name.
    pub peers: Peers,
    /// It failed because of the engine rather than a test.
    pub infrastructure: bool,
    /// Its batch was cancelled before it ended: the outcome means nothing.
    pub cancelled: bool,
}

/// Runs `scenario` and reports how it went; never leaves anything behind. `cache` says why it runs
/// (the `clnrm.cache` attribute of its span); its `baseline`, if any, is what its trace should
/// hold (the wait for spans looks at it).
pub async fn execute(
    shared: Arc<Shared>,
    scenario: Arc<Scenario>,
    file: String,
    cache: CacheStatus,
    baseline: Option<&Baseline>,
) -> Executed {
    let started = Instant::now();
    let telemetry = &shared.telemetry;
    let span = telemetry.tracing.scenario(&scenario.name, &file);
    span.set("clnrm.cache", cache.as_str());
    telemetry.store.open(&scenario.name, span.trace_id());
    let mut held = Held::default();
    let receiver = telemetry.address;
    held.peers.add_address(receiver.ip(), CLNRM);
    let mut steps = Vec::new();
    let exits = Exits::new(started);
    let limit = scenario.timeout.unwrap_or(shared.defaults.timeout);
    let timed = tokio::time::timeout(limit, body(&shared, &scenario, &mut held, &mut steps, &span, &exits));
    // Biased: the body is polled first, so even a scenario cancelled before it began has taken
    // its place in the pool's demand back (`acquire` does so before it first waits).
    let result = tokio::select! {
        biased;
        result = timed => result,
        () = shared.cancel.cancelled() => Ok(Err(Stop::fail("scenario", "cancelled by a newer change", ""))),
    };
    let cancelled = shared.cancel.is_cancelled();
    let duration = started.elapsed();
    let mut exit = match cancelled {
        true => None,
        false => exits.confirm(&shared.engine).await,
    };
    let ended = match &result {
        _ if cancelled => "cancelled",
        Ok(Ok(())) if exit.is_none() => "pass",
        _ => "fail",
    };
    span.set("clnrm.outcome", ended);
    if ended != "pass" {
        span.fail("the scenario failed");
    }
    span.end();
    let expectations = &scenario.expect;
    let peers = held.peers.clone();
    let context = CheckContext { peers: &peers };
    // The baseline compares the whole trace, so every passing scenario waits for its spans; its
    // services must still run when that is over.
    let settled = match &result {
        Ok(Ok(())) if exit.is_none() => {
            let explicit =
                scenario.services.iter().flat_map(|s| &s.env).chain(scenario.steps.iter().flat_map(|s| &s.env));
            let window = shared.otel.settle.unwrap_or_else(|| quiet_window(explicit));
            let expected = Expected { scenario: &scenario.name, expectations, context: &context, baseline };
            let incomplete = |spans: &[Span]| expected.incomplete(spans);
            let settled = telemetry.store.settle(&scenario.name, window, shared.otel.settle_cap, incomplete).await;
            exit = exits.confirm(&shared.engine).await;
            Some(settled)
        }
        _ => None,
    };
    let exit_logs = match &exit {
        Some(exit) => service::last_log_lines(&shared.engine, &exit.container).await,
        None => String::new(),
    };
    drop(exits);
    let Closed { spans, refused } = telemetry.store.close(&scenario.name);
    let services = services(&shared, &scenario, &held, &spans, exit.as_ref());
    // Step containers are reused only when every command in them ended normally.
    let healthy = result.is_ok() && steps.iter().all(|s| s.exit_code.is_some());
    teardown(&shared, held, healthy && scenario.reuse.unwrap_or(shared.reuse)).await;
    // Checked spans can show expectations that held only because they could not fail.
    let mut warnings = if settled.is_some() { check::vacuous(&spans, expectations) } else { Vec::new() };
    // The cap as configured: the time waited overshoots it by a timer tick or more under load.
    if let Some((Settled::Capped, _)) = settled {
        warnings.push(format!(
            "spans kept arriving for all of [otel] settle_cap ({}): the trace was checked while it still grew, and \
             spans after that were not counted",
            crate::duration::display(shared.otel.settle_cap)
        ));
    }
    let mut checked = Vec::new();
    let (status, failure, infrastructure) = match result {
        // A service that stopped is the cause of whatever else went wrong.
        _ if let Some(exit) = &exit => {
            let failure =
                Failure { place: format!("service `{}`", exit.service), message: exit.describe(), output: exit_logs };
            (Status::Fail, Some(failure), false)
        }
        // Spans its system sent were lost: nothing said about its trace could be trusted.
        Ok(Ok(())) if refused.any() => {
            let message = format!(
                "the span receiver refused {} sent from this scenario's containers, so its trace is incomplete",
                refused.describe()
            );
            let output = format!("first refused: {}", refused.first.unwrap_or_default());
            (Status::Fail, Some(Failure { place: "spans".into(), message, output }), false)
        }
        Ok(Ok(())) if settled.is_some() => {
            checked = check::results(&spans, expectations, &context);
            match unmet(&checked) {
                None => (Status::Pass, None, false),
                failure => (Status::Fail, failure, false),
            }
        }
        Ok(Ok(())) => (Status::Pass, None, false),
        Ok(Err(stop)) => (stop.status, Some(stop.failure), stop.infrastructure),
        Err(_) => {
            let message = format!(
                "the scenario ran past its timeout of {}; its containers were removed",
                crate::duration::display(limit)
            );
            (Status::Timeout, Some(Failure { place: "scenario".into(), message, output: String::new() }), false)
        }
    };
    for step in scenario.steps.iter().skip(steps.len()) {
        steps.push(not_run(&shared, step));
    }
    let settle = settled.map(|(_, waited)| waited);
    let outcome = ScenarioOutcome {
        status,
        cache: Some(cache),
        duration,
        runs: 1,
        services,
        steps,
        failure,
        settle,
        expectations: checked,
        warnings,
        ..ScenarioOutcome::without_running(&scenario.name, &file, status)
    };
    Executed { outcome, spans, peers, infrastructure, cancelled }
}

async fn body(
    shared: &Shared,
    scenario: &Scenario,
    held: &mut Held,
    steps: &mut Vec<StepOutcome>,
    span: &OwnSpan,
    exits: &Exits,
) -> Result<(), Stop> {
    let mut step_images: Vec<String> = Vec::new();
    for reference in scenario.steps.iter().filter_map(Step::image).map(|image| shared.reference(image)) {
        if !step_images.contains(&reference) {
            step_images.push(reference);
        }
    }
    let network = (!scenario.services.is_empty()).then(|| shared.engine.name("net", &scenario.name));
    held.network = network.clone();
    let create_network = async {
        match &network {
            Some(name) => {
                let reach = container::Reach::Shared;
                container::create_network(&shared.engine, &shared.registry, name, &scenario.name, reach).await
            }
            None => Ok(None),
        }
    };
    let lease = async {
        match (&shared.pool, step_images.is_empty()) {
            (Some(pool), false) => pool.acquire(&scenario.name, &step_images).await.map(Some),
            _ => Ok(None),
        }
    };
    let (lease, created) = tokio::join!(lease, create_network);
    held.lease = lease.map_err(|e| Stop::engine("step containers", e))?;
    // The host's end of the scenario network: where `http` and `port` probes come from.
    if let Some(gateway) = created.map_err(|e| Stop::engine("scenario network", e))? {
        held.peers.add_address(gateway, CLNRM);
    }
    if let Some(address) = held.lease.as_ref().and_then(|l| l.address) {
        shared.telemetry.store.claim(address, &scenario.name);
        held.peers.add_address(address, STEPS);
    }
    if let (Some(lease), Some(network), Some(pool)) = (held.lease.as_mut(), &network, &shared.pool) {
        pool.join(lease, network).await.map_err(|e| Stop::engine("scenario network", e))?;
        // Where the steps' requests to services come from.
        if let Some(address) = container::address(&shared.engine, &lease.lane, network).await {
            held.peers.add_address(address, STEPS);
        }
    }
    if let Some(network) = &network {
        start_services(shared, scenario, network, held, span, exits).await?;
    }
    // A service that stops ends the scenario at once (`execute` says which and how).
    tokio::select! {
        biased;
        () = exits.first() => Err(Stop::fail("services", "a service stopped", "")),
        result = run_steps(shared, scenario, held, steps, span) => result,
    }
}

/// Starts services in dependency order: each wave holds the services whose dependencies are
/// ready, started (and waited for) in parallel.
async fn start_services(
    shared: &Shared,
    scenario: &Scenario,
    network: &str,
    held: &mut Held,
    span: &OwnSpan,
    exits: &Exits,
) -> Result<(), Stop> {
    let mut pending: Vec<&Service> = scenario.services.iter().collect();
    while !pending.is_empty() {
        let ready = |s: &&Service| s.depends_on.iter().all(|d| held.services.iter().any(|(name, _)| *name == d.value));
        let (wave, rest): (Vec<&Service>, Vec<&Service>) = pending.into_iter().partition(ready);
        pending = rest;
        if wave.is_empty() {
            return Err(Stop::fail("services", "dependencies cannot be satisfied", ""));
        }
        let names: Vec<String> =
            wave.iter().map(|s| shared.engine.name("svc", &format!("{}-{}", scenario.name, *s.name))).collect();
        held.services.extend(wave.iter().zip(&names).map(|(s, c)| (s.name.value.clone(), c.clone())));
        for (service, container) in wave.iter().zip(&names) {
            held.peers.add_name(&service.name);
            held.peers.add_name(container);
        }
        let started = wave.iter().zip(&names).map(|(s, c)| start_service(shared, scenario, network, s, c, span, exits));
        let results = join_all(started).await;
        let addresses = results.into_iter().collect::<Result<Vec<_>, Stop>>()?;
        for (service, address) in wave.iter().zip(addresses) {
            if let Some(address) = address {
                held.peers.add_address(address, &service.name);
            }
        }
    }
    Ok(())
}

async fn start_service(
    shared: &Shared,
    scenario: &Scenario,
    network: &str,
    service: &Service,
    container: &str,
    parent: &OwnSpan,
    exits: &Exits,
) -> Result<Option<std::net::IpAddr>, Stop> {
    let place = format!("service `{}`", *service.name);
    let image = shared.reference(&service.image);
    let tracing = &shared.telemetry.tracing;
    let start = tracing.child(parent, format!("start {}", *service.name), SpanKind::Internal);
    start.set("container.name", container.to_string());
    start.set("container.image.name", image.clone());
    let env = shared.telemetry.wiring.env(&service.env, &service.name, &scenario.name, &start.traceparent());
    let started =
        service::start(&shared.engine, &shared.registry, container, &scenario.name, network, service, &image, env)
            .await;
    match started {
        Ok(id) => {
            exits.watch(&shared.engine, &service.name, container);
            start.set("container.id", id)
        }
        Err(e) => {
            start.fail(e.to_string());
            return Err(Stop::engine(&place, e));
        }
    }
    let address = container::address(&shared.engine, container, network).await;
    if let Some(address) = address {
        shared.telemetry.store.claim(address, &scenario.name);
    }
    start.end();
    let Some(wait) = &service.wait else { return Ok(address) };
    let waiting = tracing.child(parent, format!("wait {}", *service.name), SpanKind::Internal);
    waiting.set(WAIT_STRATEGY, service::describe(&wait.strategy));
    let prober = service::Prober { service: &service.name, traceparent: &waiting.traceparent() };
    let ready =
        service::wait_ready(&shared.engine, container, network, wait, shared.defaults.wait_timeout, &prober).await;
    match ready {
        Ok(_) => {
            waiting.end();
            Ok(address)
        }
        Err(not_ready) => {
            let message = format!(
                "not ready after waiting {} for {}: {}",
                crate::duration::display(not_ready.waited),
                not_ready.strategy,
                not_ready.reason
            );
            waiting.fail(message.clone());
            Err(Stop::fail(&place, message, not_ready.logs))
        }
    }
}

async fn run_steps(
    shared: &Shared,
    scenario: &Scenario,
    held: &mut Held,
    steps: &mut Vec<StepOutcome>,
    parent: &OwnSpan,
) -> Result<(), Stop> {
    let mut first_failure: Option<Stop> = None;
    for (index, step) in scenario.steps.iter().enumerate() {
        // A step container runs the step itself (it may be fed the step); a service's is exec'd.
        let mut step_container = None;
        let container = match &step.target {
            StepTarget::Container { image, .. } => {
                let reference = shared.reference(image);
                step_container = held.lease.as_mut().and_then(|l| l.containers.get_mut(&reference));
                step_container.as_ref().map(|c| c.name.clone())
            }
            StepTarget::Service(name) => held.services.iter().find(|(s, _)| *s == name.value).map(|(_, c)| c.clone()),
        };
        let Some(container) = container else {
            return Err(Stop::fail(format!("step `{}`", *step.name), "no container to run in", ""));
        };
        // The step's own span: the parent of whatever the command reports.
        let span = shared.telemetry.tracing.child(parent, step.name.value.clone(), SpanKind::Internal);
        span.set("clnrm.step.index", index as i64);
        span.set("container.name", container.clone());
        let (service, on_timeout) = match &step.target {
            StepTarget::Service(name) => (name.value.as_str(), OnTimeout::Abandon),
            StepTarget::Container { image, .. } => {
                span.set("container.image.name", shared.reference(image));
                (STEPS_SERVICE, OnTimeout::KillContainer)
            }
        };
        let request = ExecRequest {
            container: &container,
            argv: step.run.argv(),
            env: shared.telemetry.wiring.env(&step.env, service, &scenario.name, &span.traceparent()),
            workdir: step.workdir.clone(),
            timeout: step.timeout.unwrap_or(shared.defaults.step_timeout),
            on_timeout,
        };
        let timeout = request.timeout;
        shared.first_exec.get_or_init(Instant::now);
        let ran = match step_container {
            Some(step_container) => step_container.run(&shared.engine, request).await,
            None => exec::exec(&shared.engine, request).await,
        };
        let ran = ran.map_err(|e| Stop::engine(format!("step `{}`", *step.name), e))?;
        if let Some(id) = &ran.container_id {
            span.set("container.id", id.clone());
        }
        let in_step_container = matches!(step.target, StepTarget::Container { .. });
        let outcome = judge(step, target(shared, step), ran, timeout, in_step_container);
        if let Some(code) = outcome.exit_code {
            span.set("process.exit.code", code);
        }
        if !outcome.problems.is_empty() {
            span.fail(outcome.problems.join("; "));
        }
        span.end();
        let stop = match outcome.status {
            StepStatus::Passed | StepStatus::NotRun => None,
            StepStatus::Failed => {
                Some(Stop::fail(format!("step `{}`", *step.name), outcome.problems.join("; "), output_tail(&outcome)))
            }
            StepStatus::TimedOut => Some(Stop {
                status: Status::Timeout,
                ..Stop::fail(format!("step `{}`", *step.name), outcome.problems.join("; "), output_tail(&outcome))
            }),
        };
        let stops_here = outcome.status == StepStatus::TimedOut || !step.continue_on_failure;
        steps.push(outcome);
        if let Some(stop) = stop {
            if stops_here {
                return Err(stop);
            }
            first_failure.get_or_insert(stop);
        }
    }
    first_failure.map_or(Ok(()), Err)
}

/// The expectations that did not hold, as one failure (`None` when all hold).
fn unmet(checked: &[Checked]) -> Option<Failure> {
    let failures: Vec<&Checked> = checked.iter().filter(|c| !c.passed).collect();
    let first = failures.first()?;
    // The headline is what went wrong; the selector is already in the place.
    let text = |c: &Checked| c.message.clone().unwrap_or_default();
    let headline = text(first);
    let headline = headline.lines().find(|l| !l.starts_with("select:")).unwrap_or_default();
    let message = match failures.len() {
        1 => headline.to_string(),
        n => format!("{n} expectations did not hold; the first: {headline}"),
    };
    let output =
        failures.iter().map(|f| format!("{}\n{}", f.expectation, text(f).trim_end())).collect::<Vec<_>>().join("\n\n");
    let place = if failures.len() == 1 { first.expectation.clone() } else { "expectations".to_string() };
    Some(Failure { place, message, output })
}

/// Where a step runs, as the record says it.
fn target(shared: &Shared, step: &Step) -> Target {
    match &step.target {
        StepTarget::Container { image, .. } => Target::Image(shared.reference(image)),
        StepTarget::Service(name) => Target::Service(name.value.clone()),
    }
}

/// The scenario's services as they ran: image, container, how readiness was waited for and how
/// long it took (from their `wait` spans), and how the one that stopped ended.
fn services(
    shared: &Shared,
    scenario: &Scenario,
    held: &Held,
    spans: &[Span],
    exit: Option<&super::exits::Exit>,
) -> Vec<ServiceOutcome> {
    let started = held.services.iter().filter_map(|(name, container)| {
        let service = scenario.services.iter().find(|s| *s.name == *name)?;
        let wait = format!("wait {name}");
        let ready = spans
            .iter()
            .find(|s| s.is_wait() && *s.name == *wait && s.status != crate::telemetry::span::SpanStatus::Error)
            .map(Span::duration);
        Some(ServiceOutcome {
            name: name.clone(),
            image: shared.reference(&service.image),
            container: container.clone(),
            wait: service.wait.as_ref().map(|w| service::describe(&w.strategy)),
            ready,
            exit: exit.filter(|e| e.service == *name).map(|e| ServiceExit { code: e.code, at: e.at }),
        })
    });
    started.collect()
}

/// Checks a step's expectations against what it did.
fn judge(step: &Step, target: Target, ran: ExecOutcome, timeout: Duration, in_step_container: bool) -> StepOutcome {
    let mut problems = Vec::new();
    let mut status = StepStatus::Passed;
    let mut exit_code = None;
    match ran.end {
        ExecEnd::TimedOut => {
            status = StepStatus::TimedOut;
            let left = if in_step_container {
                "its container was killed"
            } else {
                "its command was left to the scenario's end, which removes the service"
            };
            problems.push(format!("ran past its timeout of {}; {left}", crate::duration::display(timeout)));
        }
        ExecEnd::ContainerStopped { exit_code: code } => {
            status = StepStatus::Failed;
            let hint = match code {
                Some(127) if in_step_container => {
                    " (exit code 127: the image may lack /bin/sh, which clnrm needs to keep step containers running)"
                        .to_string()
                }
                Some(137) => " (exit code 137: killed)".to_string(),
                Some(code) => format!(" (exit code {code})"),
                None => String::new(),
            };
            problems.push(format!("its container stopped while the step ran{hint}"));
        }
        ExecEnd::Exited(code) => {
            exit_code = Some(code);
            if code != i64::from(step.expect.exit) {
                problems.push(format!("expected exit code {}, got {code}", step.expect.exit));
            }
            for (stream, expected, tail) in
                [("stdout", &step.expect.stdout, &ran.stdout), ("stderr", &step.expect.stderr, &ran.stderr)]
            {
                problems.extend(expected.as_ref().and_then(|expected| output_problem(stream, expected, tail)));
            }
            if !problems.is_empty() {
                status = StepStatus::Failed;
            }
        }
    }
    StepOutcome {
        name: step.name.value.clone(),
        target,
        argv: step.run.argv(),
        status,
        exit_code,
        duration: ran.duration,
        stdout: ran.stdout,
        stderr: ran.stderr,
        problems,
    }
}

/// What is wrong with one output stream of a step, if anything.
fn output_problem(stream: &str, expected: &OutputExpect, tail: &Tail) -> Option<String> {
    match expected {
        OutputExpect::Empty if tail.total == 0 => None,
        OutputExpect::Empty => Some(format!("expected no {stream}, got {}", crate::output::count(tail.total, "byte"))),
        OutputExpect::Matches(re) if re.is_match(&tail.text()) => None,
        OutputExpect::Matches(re) => {
            let kept = if tail.truncated() { " (only its last 64 KiB were kept)" } else { "" };
            Some(format!("{stream} does not match /{}/{kept}", re.as_str()))
        }
    }
}

fn not_run(shared: &Shared, step: &Step) -> StepOutcome {
    StepOutcome {
        name: step.name.value.clone(),
        target: target(shared, step),
        argv: step.run.argv(),
        status: StepStatus::NotRun,
        exit_code: None,
        duration: Duration::ZERO,
        stdout: Tail::new(0),
        stderr: Tail::new(0),
        problems: Vec::new(),
    }
}

/// The last lines of a step's output, labelled by stream.
fn output_tail(step: &StepOutcome) -> String {
    let mut out = String::new();
    for (label, tail) in [("stdout", &step.stdout), ("stderr", &step.stderr)] {
        if tail.total > 0 {
            out.push_str(&format!("--- {label}\n{}\n", tail.last_lines(TAIL_LINES)));
        }
    }
    out.trim_end().to_string()
}

/// Releases what the scenario held. A lease that never joined a network goes back to the pool
/// before this returns; the rest happens in the background: services go, the lane leaves the
/// scenario network (which then goes) and returns to the pool.
async fn teardown(shared: &Arc<Shared>, held: Held, reuse: bool) {
    let Held { lease, network, services, .. } = held;
    let lease = match (lease, &shared.pool) {
        (Some(lease), Some(pool)) if lease.network.is_none() => {
            pool.release(lease, reuse).await;
            None
        }
        (lease, _) => lease,
    };
    if lease.is_none() && network.is_none() && services.is_empty() {
        return;
    }
    let shared_task = Arc::clone(shared);
    shared.spawn(async move {
        let shared = shared_task;
        let services =
            join_all(services.iter().map(|(_, container)| shared.registry.remove_container(&shared.engine, container)));
        // The lane leaves the services' network while they are removed, not after: once off it,
        // nothing of this scenario can reach it, and it serves the next scenario sooner.
        let lane = async {
            if let (Some(lease), Some(pool)) = (lease, &shared.pool) {
                pool.release(lease, reuse).await;
            }
        };
        tokio::join!(services, lane);
        if let Some(network) = network {
            let _ = shared.registry.remove_network(&shared.engine, &network).await;
        }
    });
}
