//! The warm pool: containers for the images a run needs, created and started *before* a scenario
//! asks for them, and handed out at once.
//!
//! Measured on the reference machine, most of a container's cost is its network namespace
//! (created at start, torn down at removal), and the engine makes only a few containers a second.
//! So the pool is built from *lanes*: a lane is a long-lived idle container on the run's network
//! that owns a network namespace and serves one scenario at a time. Step containers join a lane's
//! namespace (cheap to create and remove). Each lane keeps a queue of warm step containers,
//! created ahead of demand by a background creator that keeps the engine busy while scenarios
//! run; when a scenario has services, its lane joins the scenario's private network, so steps
//! reach services by name.
//!
//! Single-use (the default): a scenario gets a fresh step container, *fed* its first step on
//! standard input rather than by exec (`feed`); when the scenario ends, that container is ended
//! (its input closed, or killed) *before* the lane serves another scenario (so nothing of one
//! scenario runs beside the next) and removed in the background. With `reuse`, containers serve
//! many scenarios (faster, less hermetic), and a lane runs the steps itself: half the containers
//! to start; between scenarios it is cleaned over the same input.
//!
//! Warming follows demand: the scheduler announces the step image of every scenario it will start,
//! in order, and the pool creates containers for the next ones, never more than will be used, in
//! the lanes that will serve them (`plan`). Scenarios waiting for a lane are served oldest first.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::models::{NetworkConnectRequest, NetworkDisconnectRequest};
use futures_util::future::join_all;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::cleanup::Registry;
use super::container::{self, Attach};
use super::docker::{Engine, EngineError, POOL_SCENARIO};
use super::exec::{self, ExecOutcome, ExecRequest};
use super::feed::{self, Feed};

mod plan;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Lanes at most: scenarios that can hold step containers at once.
    pub lanes: usize,
    /// Warm step containers kept ready (or being made) ahead of demand, across lanes.
    pub ahead: usize,
    /// Leased step containers usually come back (`reuse`), so they count as supply.
    pub reuse: bool,
    /// Keep lanes warm when nothing is announced (a long-lived `watch`): a released lane gets a
    /// fresh container of the image it just served, until the TTL expires it. Without it (a
    /// `run`), a lane nothing more will use is removed at once.
    pub keep_warm: bool,
    /// Idle lanes are removed after this long.
    pub ttl: Duration,
}

/// Pool figures for the run summary and the run record.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub hits: usize,
    pub misses: usize,
    /// Time from asking for a lease to having it, per lease.
    #[serde(rename = "acquire_ms", with = "crate::duration::millis::list")]
    pub acquire: Vec<Duration>,
}

impl Stats {
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let mut sorted = self.acquire.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied()
    }
}

/// A warm step container.
struct Warm {
    image: String,
    container: StepContainer,
}

/// A step container, as a lease holds it.
pub struct StepContainer {
    pub name: String,
    /// The engine's id for it (a step's span names it).
    id: String,
    /// It waits for each scenario's first step on standard input.
    feed: Feed,
}

impl StepContainer {
    /// Runs a step in it: fed when it is the scenario's first here, exec'd otherwise.
    pub async fn run(&mut self, engine: &Engine, request: ExecRequest<'_>) -> Result<ExecOutcome, EngineError> {
        if let Some(ran) = self.feed.run(engine, &request, &self.id).await {
            return Ok(ran);
        }
        exec::exec(engine, request).await
    }

    /// Ends it, and with it whatever runs in it, so that its lane can serve another scenario.
    async fn stop(self, engine: &Engine) {
        if !self.feed.close(engine, &self.name).await {
            exec::kill(engine, &self.name).await;
        }
    }
}

struct Lane {
    name: String,
    /// Its address on the run's network: where its step containers' traffic comes from.
    address: Option<IpAddr>,
    warm: VecDeque<Warm>,
    /// Images of the warm containers being created in this lane.
    incoming: Vec<String>,
    leased: bool,
    /// Images of the step containers out on lease from it (they come back with `reuse`).
    lent: Vec<String>,
    idle_since: Instant,
}

#[derive(Default)]
struct State {
    lanes: Vec<Lane>,
    /// Lanes being created, by the image of the step container each brings.
    lanes_coming: HashMap<String, usize>,
    /// Step containers being created, by image.
    creating: HashMap<String, usize>,
    /// Step images of scenarios announced but not started, in schedule order.
    demand: VecDeque<String>,
    /// Scenarios waiting for a lane, oldest first.
    waiters: VecDeque<Waiter>,
    /// Why creating a container of an image failed, so waiters fail rather than retry forever.
    failures: HashMap<String, String>,
    /// Used lanes being ended and their containers removed.
    recycling: usize,
    /// Hushes in force (`Pool::hush`): nothing is made ahead of demand meanwhile but for the
    /// runs to be measured alone, whose images are in `measured`.
    hushed: usize,
    measured: Vec<String>,
    closed: bool,
}

struct Waiter {
    image: String,
    reply: oneshot::Sender<Result<(String, Warm), EngineError>>,
}

impl State {
    fn warm_count(&self, image: &str) -> usize {
        self.lanes.iter().flat_map(|l| &l.warm).filter(|w| w.image == image).count()
    }

    fn lanes_total(&self) -> usize {
        self.lanes.len() + self.lanes_coming.values().sum::<usize>()
    }

    /// The announced scenarios to warm for. While the pool is hushed, only the runs to be
    /// measured alone: their containers are made before the measurement starts (it waits for an
    /// idle pool), so they are served at once and the engine is quiet while they run.
    fn announced(&self) -> Vec<&String> {
        if self.hushed == 0 {
            return self.demand.iter().collect();
        }
        let mut measured: Vec<&String> = self.measured.iter().collect();
        let mut measured_next = |image: &&String| match measured.iter().position(|m| m == image) {
            Some(at) => {
                measured.swap_remove(at);
                true
            }
            None => false,
        };
        self.demand.iter().filter(|image| measured_next(image)).collect()
    }
}

/// A lane leased to one scenario.
pub struct Lease {
    pub lane: String,
    /// The lane's address on the run's network.
    pub address: Option<IpAddr>,
    /// Step container by image.
    pub containers: HashMap<String, StepContainer>,
    /// The scenario's private network the lane joined, if any.
    pub network: Option<String>,
}

pub struct Pool {
    engine: Engine,
    registry: Registry,
    /// The run's network, where lanes live.
    network: String,
    settings: Settings,
    state: Mutex<State>,
    stats: Mutex<Stats>,
    tasks: Mutex<JoinSet<()>>,
    /// Limits step containers being created at once: past a few, the engine only gets slower.
    creating: tokio::sync::Semaphore,
    /// Lanes have slots of their own, beside step containers rather than ahead of them, so the
    /// first scenario can start as soon as one lane and one step container exist. The first lane
    /// has the engine to itself (one slot until it exists): two network namespaces made at once
    /// took ~0.55 s each on the reference machine, one alone ~0.3 s, and the run's first step
    /// waits for it.
    creating_lane: tokio::sync::Semaphore,
    /// Opens the other lane slots once the first lane is made (or failed).
    first_lane: std::sync::Once,
}

/// Step containers created at once (see `Pool::creating`).
const CREATE_CONCURRENCY: usize = 3;
/// Lanes created at once (see `Pool::creating_lane`).
const LANE_CONCURRENCY: usize = 2;

impl Pool {
    /// Starts warming for the announced `demand` (one step image per scenario, in the order they
    /// will start). Lanes live on `network`, the run's network.
    pub fn start(
        engine: Engine,
        registry: Registry,
        settings: Settings,
        demand: Vec<String>,
        network: String,
    ) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            engine,
            registry,
            network,
            settings,
            state: Mutex::new(State { demand: demand.into(), ..Default::default() }),
            stats: Mutex::new(Stats::default()),
            tasks: Mutex::new(JoinSet::new()),
            creating: tokio::sync::Semaphore::new(CREATE_CONCURRENCY),
            creating_lane: tokio::sync::Semaphore::new(1),
            first_lane: std::sync::Once::new(),
        });
        pool.update(&mut pool.state());
        pool.spawn_expiry();
        pool
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        // A long `watch` would otherwise keep every finished task until it quits.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Free lanes holding a warm step container: scenarios that would be served at once.
    pub fn ready(&self) -> usize {
        self.state().lanes.iter().filter(|l| !l.leased && !l.warm.is_empty()).count()
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes nothing ahead of demand until the guard is dropped (a run measured alone wants an
    /// engine doing nothing else) but a container for the announced run of `measured`, the image
    /// of the run to be measured; scenarios that ask are still served, as misses.
    pub fn hush(self: &Arc<Self>, measured: Option<String>) -> Hushed {
        let mut state = self.state();
        state.hushed += 1;
        state.measured.extend(measured.clone());
        self.update(&mut state);
        Hushed { pool: Arc::clone(self), measured }
    }

    /// Whether containers or lanes are being made, or used ones ended and removed.
    pub fn busy(&self) -> bool {
        let state = self.state();
        !state.creating.is_empty() || !state.lanes_coming.is_empty() || state.recycling > 0
    }

    /// Announces more scenarios (for `watch`, where demand arrives over time).
    pub fn announce(self: &Arc<Self>, images: impl IntoIterator<Item = String>) {
        let mut state = self.state();
        state.demand.extend(images);
        self.update(&mut state);
    }

    /// Takes back announced scenarios that will not start after all (a cancelled `watch` batch,
    /// `--fail-fast`), so that nothing is warmed for them and idle lanes can expire.
    pub fn withdraw(self: &Arc<Self>, images: impl IntoIterator<Item = String>) {
        let mut state = self.state();
        for image in images {
            if let Some(at) = state.demand.iter().position(|i| *i == image) {
                state.demand.remove(at);
            }
        }
        self.update(&mut state);
    }

    /// Brings the pool up to date after any change: serves waiters (oldest first) from free lanes
    /// with a warm container of their image, fails waiters whose image cannot be made, and starts
    /// creating the lanes and warm containers that waiters and announced demand need.
    fn update(self: &Arc<Self>, state: &mut State) {
        if state.closed {
            return;
        }
        let mut i = 0;
        while i < state.waiters.len() {
            let image = state.waiters[i].image.clone();
            let lane = state.lanes.iter().position(|l| !l.leased && l.warm.iter().any(|w| w.image == image));
            if let Some(at) = lane {
                let lane = &mut state.lanes[at];
                let slot = lane.warm.iter().position(|w| w.image == image).expect("checked above");
                let warm = lane.warm.remove(slot).expect("checked above");
                lane.leased = true;
                lane.lent = vec![image.clone()];
                let name = lane.name.clone();
                let waiter = state.waiters.remove(i).expect("index in range");
                if let Err(Ok((_, warm))) = waiter.reply.send(Ok((name, warm))) {
                    // The scenario stopped waiting: its container and lane are free again.
                    let lane = &mut state.lanes[at];
                    lane.warm.push_front(warm);
                    lane.leased = false;
                    lane.lent.clear();
                }
                continue;
            }
            let coming =
                state.creating.get(&image).copied().unwrap_or(0) + state.lanes_coming.get(&image).copied().unwrap_or(0);
            if let Some(reason) =
                state.failures.get(&image).filter(|_| coming == 0 && state.warm_count(&image) == 0).cloned()
            {
                let waiter = state.waiters.remove(i).expect("index in range");
                let _ = waiter.reply.send(Err(EngineError::Prepare { image, reason }));
                continue;
            }
            i += 1;
        }
        self.make(state);
    }

    /// Makes the lanes and warm containers the scenarios to come need (`plan`): lanes up to the
    /// limit while scenarios wait or are announced, warm containers for the waiting ones and the
    /// next `ahead` announced.
    fn make(self: &Arc<Self>, state: &mut State) {
        let reuse = self.settings.reuse;
        let mut slots: Vec<plan::Slot> = state
            .lanes
            .iter()
            .map(|l| {
                let lent = l.lent.iter().filter(|_| reuse);
                let supply = l.warm.iter().map(|w| &w.image).chain(&l.incoming).chain(lent).cloned().collect();
                plan::Slot { free: !l.leased, coming: false, supply }
            })
            .collect();
        for (image, n) in &state.lanes_coming {
            slots.extend(std::iter::repeat_n(plan::Slot { free: true, coming: true, supply: vec![image.clone()] }, *n));
        }
        let waiting = state.waiters.len();
        let leased = state.lanes.iter().filter(|l| l.leased).count();
        let announced = state.announced();
        let wanted = (leased + waiting + announced.len()).min(self.settings.lanes);
        let upcoming: Vec<String> = state
            .waiters
            .iter()
            .map(|w| &w.image)
            .chain(announced)
            .filter(|image| !state.failures.contains_key(*image))
            .cloned()
            .collect();
        let demand = plan::Demand {
            upcoming: &upcoming,
            warm: waiting + self.settings.ahead,
            lanes: wanted.saturating_sub(state.lanes_total()),
            cap: reuse.then_some(self.settings.lanes),
        };
        let plan = plan::plan(slots, &demand);
        for image in plan.lanes {
            *state.lanes_coming.entry(image.clone()).or_default() += 1;
            let pool = Arc::clone(self);
            self.spawn(async move { pool.create_lane(image).await });
        }
        for (slot, image) in plan.warm {
            let lane = &mut state.lanes[slot];
            lane.incoming.push(image.clone());
            let lane = lane.name.clone();
            *state.creating.entry(image.clone()).or_default() += 1;
            let pool = Arc::clone(self);
            self.spawn(async move { pool.create_warm_in(lane, image).await });
        }
    }

    /// Creates a lane and, in the same slot, its first step container, so a new lane can serve a
    /// scenario as soon as it exists.
    async fn create_lane(self: Arc<Self>, image: String) {
        let name = self.engine.name("lane", POOL_SCENARIO);
        let (labels, attach) =
            (self.engine.labels(POOL_SCENARIO), Attach::Network { name: &self.network, aliases: Vec::new() });
        let created = {
            let _slot = self.creating_lane.acquire().await;
            // Reused containers give up isolation between scenarios anyway, so the lane itself
            // runs the steps: half the containers to start.
            if self.settings.reuse {
                match self.fed(feed::spec(name.clone(), &image, labels, attach)).await {
                    Ok(lane) => Ok((lane, container::address(&self.engine, &name, &self.network).await)),
                    Err(e) => Err(e),
                }
            } else {
                self.lane_with_step(container::idle(name.clone(), &image, labels, attach)).await
            }
        };
        let mut state = self.state();
        decrement(&mut state.lanes_coming, &image);
        self.first_lane.call_once(|| self.creating_lane.add_permits(LANE_CONCURRENCY - 1));
        match created {
            Ok((container, address)) => {
                let warm = VecDeque::from([Warm { image, container }]);
                let idle_since = Instant::now();
                state.lanes.push(Lane {
                    name,
                    address,
                    warm,
                    incoming: Vec::new(),
                    leased: false,
                    lent: Vec::new(),
                    idle_since,
                });
            }
            Err(e) => {
                state.failures.insert(image, e.to_string());
                let (engine, registry) = (self.engine.clone(), self.registry.clone());
                self.spawn(async move {
                    let _ = registry.remove_container(&engine, &name).await;
                });
            }
        }
        self.update(&mut state);
    }

    async fn create_warm_in(self: Arc<Self>, lane: String, image: String) {
        let created = self.step_container(&lane, &image, POOL_SCENARIO).await;
        let mut guard = self.state();
        let state = &mut *guard;
        decrement(&mut state.creating, &image);
        let mut lane = state.lanes.iter_mut().find(|l| l.name == lane);
        if let Some(lane) = lane.as_mut() {
            plan::claim(&mut lane.incoming, &image);
        }
        match (created, lane) {
            (Ok(container), Some(lane)) => {
                state.failures.remove(&image);
                lane.warm.push_back(Warm { image, container });
            }
            (Ok(container), None) => {
                // The lane went away meanwhile (expiry): the container goes too.
                let (engine, registry) = (self.engine.clone(), self.registry.clone());
                self.spawn(async move {
                    let _ = registry.remove_container(&engine, &container.name).await;
                });
            }
            (Err(e), _) => {
                state.failures.insert(image, e.to_string());
            }
        }
        self.update(state);
    }

    /// Creates a step container of `image` in the namespace of `lane`, in a creation slot.
    async fn step_container(&self, lane: &str, image: &str, scenario: &str) -> Result<StepContainer, EngineError> {
        let _slot = self.creating.acquire().await;
        self.create_step(lane, image, scenario).await
    }

    async fn create_step(&self, lane: &str, image: &str, scenario: &str) -> Result<StepContainer, EngineError> {
        let name = self.engine.name("step", scenario);
        self.fed(feed::spec(name, image, self.engine.labels(scenario), Attach::JoinNamespaceOf(lane))).await
    }

    /// Creates a fed container, attaches to it and starts it.
    async fn fed(&self, spec: container::Spec<'_>) -> Result<StepContainer, EngineError> {
        let image = spec.image.to_string();
        let container = self.create_fed(spec).await?;
        container::start(&self.engine, &container.name, &image).await?;
        Ok(container)
    }

    /// Creates a fed container and attaches to it, not yet started.
    async fn create_fed(&self, spec: container::Spec<'_>) -> Result<StepContainer, EngineError> {
        let name = spec.name.clone();
        let id = container::create(&self.engine, &self.registry, spec).await?;
        let feed = feed::attach(&self.engine, &name).await?;
        Ok(StepContainer { name, id, feed })
    }

    /// Creates a single-use lane from `spec` and its first step container, with the lane's
    /// address. What can overlap does, since the first scenario of a run waits for all of it: the
    /// step container is created while the lane starts (it needs the lane to exist, and to run
    /// only when it starts itself), and the address is read while the step container starts.
    async fn lane_with_step(&self, spec: container::Spec<'_>) -> Result<(StepContainer, Option<IpAddr>), EngineError> {
        let (lane, image) = (spec.name.clone(), spec.image.to_string());
        container::create(&self.engine, &self.registry, spec).await?;
        let labels = self.engine.labels(POOL_SCENARIO);
        let step = feed::spec(self.engine.name("step", POOL_SCENARIO), &image, labels, Attach::JoinNamespaceOf(&lane));
        let (started, step) = tokio::join!(container::start(&self.engine, &lane, &image), self.create_fed(step));
        let step = match started {
            Ok(()) => step?,
            Err(e) => return Err(self.discard_step(step.ok(), e).await),
        };
        let (address, started) = tokio::join!(
            container::address(&self.engine, &lane, &self.network),
            container::start(&self.engine, &step.name, &image)
        );
        match started {
            Ok(()) => Ok((step, address)),
            Err(e) => Err(self.discard_step(Some(step), e).await),
        }
    }

    /// Removes the step container of a lane that could not be made (the caller removes the
    /// lane), and passes on why.
    async fn discard_step(&self, step: Option<StepContainer>, error: EngineError) -> EngineError {
        if let Some(step) = step {
            let _ = self.registry.remove_container(&self.engine, &step.name).await;
        }
        error
    }

    /// Leases a lane with a step container for each of `images` (the first is the one announced
    /// for this scenario). A free lane with a warm container is handed out at once; otherwise this
    /// waits its turn.
    pub async fn acquire(self: &Arc<Self>, scenario: &str, images: &[String]) -> Result<Lease, EngineError> {
        let started = Instant::now();
        let primary = images.first().cloned().unwrap_or_default();
        let (reply, mut answer) = oneshot::channel();
        {
            let mut state = self.state();
            if let Some(at) = state.demand.iter().position(|i| *i == primary) {
                state.demand.remove(at);
            }
            state.waiters.push_back(Waiter { image: primary.clone(), reply });
            self.update(&mut state);
        }
        let at_once = answer.try_recv();
        let mut hit = at_once.is_ok();
        let (lane, warm) = match at_once {
            Ok(served) => served?,
            Err(_) => answer.await.map_err(|_| EngineError::Prepare {
                image: primary.clone(),
                reason: "the pool was shut down".into(),
            })??,
        };
        let mut lease = Lease {
            address: self.state().lanes.iter().find(|l| l.name == lane).and_then(|l| l.address),
            lane,
            containers: HashMap::from([(warm.image, warm.container)]),
            network: None,
        };
        for image in images.iter().skip(1) {
            if lease.containers.contains_key(image) {
                continue;
            }
            let taken = {
                let mut state = self.state();
                let lane = state.lanes.iter_mut().find(|l| l.name == lease.lane);
                lane.and_then(|l| l.warm.iter().position(|w| w.image == *image).and_then(|at| l.warm.remove(at)))
            };
            let container = match taken {
                Some(warm) => warm.container,
                None => {
                    hit = false;
                    match self.step_container(&lease.lane, image, scenario).await {
                        Ok(container) => container,
                        Err(e) => {
                            self.release(lease, false).await;
                            return Err(e);
                        }
                    }
                }
            };
            if let Some(lane) = self.state().lanes.iter_mut().find(|l| l.name == lease.lane) {
                lane.lent.push(image.clone());
            }
            lease.containers.insert(image.clone(), container);
        }
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        if hit {
            stats.hits += 1
        } else {
            stats.misses += 1
        }
        stats.acquire.push(started.elapsed());
        Ok(lease)
    }

    /// Connects a leased lane to a scenario's private network.
    pub async fn join(&self, lease: &mut Lease, network: &str) -> Result<(), EngineError> {
        let request = NetworkConnectRequest { container: lease.lane.clone(), endpoint_config: None };
        self.engine
            .docker
            .connect_network(network, request)
            .await
            .map_err(|e| EngineError::api("connect the step containers to the scenario's network", e))?;
        lease.network = Some(network.to_string());
        Ok(())
    }

    /// Takes a lane off a scenario's network, if it joined one; false when the engine refuses
    /// (the lane is then not handed out again).
    async fn leave(&self, lane: &str, network: Option<String>) -> bool {
        let Some(network) = network else { return true };
        let request = NetworkDisconnectRequest { container: lane.to_string(), force: Some(true) };
        self.engine.docker.disconnect_network(&network, request).await.is_ok()
    }

    /// Ends a lease. With `reuse` (only for step containers known to be healthy: every command
    /// ended normally) the containers go back to their lane, once every process the scenario left
    /// in them (a server a step started in the background, say) is stopped: nothing of one
    /// scenario may run, or export spans, while the next uses the container. Otherwise (or when
    /// that fails) they are ended first (their input closed, or killed), so the lane serves its
    /// next scenario with nothing of this one running, and removed in the background. A lane that
    /// joined a scenario's network is off it when this returns, so that the caller can remove
    /// that network (its containers are never reused: services could have reached into them).
    pub async fn release(self: &Arc<Self>, mut lease: Lease, reuse: bool) {
        if let Some(lane) = self.state().lanes.iter_mut().find(|l| l.name == lease.lane) {
            lane.lent.clear();
        }
        let on_network = lease.network.is_some();
        let reusable = reuse && !on_network;
        let stopped =
            reusable && join_all(lease.containers.values_mut().map(|c| c.feed.clean())).await.into_iter().all(|ok| ok);
        if !stopped {
            self.state().recycling += 1;
            let pool = Arc::clone(self);
            let recycled = async move {
                Arc::clone(&pool).recycle(lease).await;
                pool.state().recycling -= 1;
            };
            if on_network {
                recycled.await;
            } else {
                self.spawn(recycled);
            }
            return;
        }
        let mut state = self.state();
        if let Some(lane) = state.lanes.iter_mut().find(|l| l.name == lease.lane) {
            for (image, container) in lease.containers {
                lane.warm.push_front(Warm { image, container });
            }
            lane.leased = false;
            lane.idle_since = Instant::now();
        }
        self.update(&mut state);
    }

    async fn recycle(self: Arc<Self>, lease: Lease) {
        let lease_images: Vec<String> = lease.containers.keys().cloned().collect();
        let used: Vec<StepContainer> = lease.containers.into_values().collect();
        let names: Vec<String> = used.iter().map(|c| c.name.clone()).collect();
        // A lane that ran steps itself cannot be cleaned without ending it.
        if names.contains(&lease.lane) {
            return self.discard_lane(&lease.lane, names).await;
        }
        let idle_from_now = {
            let state = self.state();
            state.waiters.is_empty() && state.demand.is_empty()
        };
        if idle_from_now && !self.settings.keep_warm {
            // Nothing more will run here: the lane goes now rather than at the end of the run.
            return self.discard_lane(&lease.lane, names).await;
        }
        // Kept warm with nothing announced: the image just used is the best guess for the next.
        let refill = lease_images.first().cloned().filter(|_| idle_from_now);
        // The lane leaves the scenario's network while its step containers end: it comes back
        // after the longer of the two, not after both.
        let stopped = join_all(used.into_iter().map(|c| c.stop(&self.engine)));
        let (left, _) = tokio::join!(self.leave(&lease.lane, lease.network), stopped);
        if !left {
            return self.discard_lane(&lease.lane, names).await;
        }
        {
            let mut guard = self.state();
            let state = &mut *guard;
            if let Some(lane) = state.lanes.iter_mut().find(|l| l.name == lease.lane) {
                lane.leased = false;
                lane.idle_since = Instant::now();
                if let Some(image) = refill.filter(|_| lane.warm.is_empty() && lane.incoming.is_empty()) {
                    lane.incoming.push(image.clone());
                    *state.creating.entry(image.clone()).or_default() += 1;
                    let (pool, lane) = (Arc::clone(&self), lane.name.clone());
                    self.spawn(async move { pool.create_warm_in(lane, image).await });
                }
            }
            self.update(state);
        }
        join_all(names.iter().map(|c| self.registry.remove_container(&self.engine, c))).await;
    }

    /// Removes a lane and its containers for good.
    async fn discard_lane(self: &Arc<Self>, lane: &str, containers: Vec<String>) {
        let mut containers: Vec<String> = containers.into_iter().filter(|c| c != lane).collect();
        {
            let mut state = self.state();
            if let Some(at) = state.lanes.iter().position(|l| l.name == lane) {
                let removed = state.lanes.remove(at);
                containers.extend(removed.warm.into_iter().map(|w| w.container.name));
            }
            self.update(&mut state);
        }
        join_all(containers.iter().map(|c| self.registry.remove_container(&self.engine, c))).await;
        let _ = self.registry.remove_container(&self.engine, lane).await;
    }

    /// Removes lanes idle for longer than the TTL (matters in long-lived `watch` processes).
    fn spawn_expiry(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let period = (self.settings.ttl / 2).max(Duration::from_secs(1));
        self.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(pool) = weak.upgrade() else { return };
                // Only while nothing is announced: lanes that coming scenarios need are not idle.
                let expired: Vec<String> = {
                    let state = pool.state();
                    let ttl = pool.settings.ttl;
                    let quiet = state.demand.is_empty() && state.waiters.is_empty();
                    let idle = state.lanes.iter().filter(|l| quiet && !l.leased && l.idle_since.elapsed() > ttl);
                    idle.map(|l| l.name.clone()).collect()
                };
                for lane in expired {
                    pool.discard_lane(&lane, Vec::new()).await;
                }
            }
        });
    }

    /// Stops warming and waits for background work; what remains is removed by the run's registry.
    pub async fn shutdown(&self) {
        self.state().closed = true;
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

/// A hush of the pool (`Pool::hush`), lifted when dropped.
pub struct Hushed {
    pool: Arc<Pool>,
    measured: Option<String>,
}

impl Drop for Hushed {
    fn drop(&mut self) {
        let mut state = self.pool.state();
        state.hushed -= 1;
        if let Some(at) = state.measured.iter().position(|m| Some(m) == self.measured.as_ref()) {
            state.measured.swap_remove(at);
        }
        self.pool.update(&mut state);
    }
}

fn decrement(counts: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = counts.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(key);
        }
    }
}
