//! The warm pool: containers for the images a run needs, created and started *before* a scenario
//! asks for them, and handed out at once.
//!
//! Measured on the reference machine, most of a container's cost is its network namespace (created
//! at start, torn down at removal). So the pool keeps a few *sandboxes*: long-lived idle containers
//! on the run's network, each owning a network namespace. A scenario leases one sandbox for itself;
//! its step containers join the sandbox's namespace (cheap to create and remove), and when it has
//! services the sandbox joins the scenario's private network, so steps reach services by name.
//!
//! Single-use (the default): a lease comes with fresh step containers, which are removed when the
//! scenario ends; the sandbox is handed out again only after they are gone and it has left the
//! scenario's network, so nothing of one scenario is visible to the next. With `reuse`, step
//! containers stay in their sandbox and serve later scenarios (faster, less hermetic).
//!
//! Warming follows demand: the scheduler announces the step image of every scenario it will start,
//! in order, and the pool prepares sandboxes for the next ones, never more than will be used.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::models::{NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::cleanup::Registry;
use super::container::{self, Attach};
use super::docker::{Engine, EngineError, POOL_SCENARIO};

#[derive(Debug, Clone)]
pub struct Settings {
    /// Idle, ready sandboxes kept ahead of demand.
    pub warm: usize,
    /// Sandboxes in existence at most (leased, ready and being prepared).
    pub max: usize,
    /// Idle sandboxes are removed after this long.
    pub ttl: Duration,
}

/// Pool figures for the run summary.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub hits: usize,
    pub misses: usize,
    /// Time from asking for a lease to having it, per lease.
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

/// A sandbox and the step containers (by image) that live in its network namespace.
struct Sandbox {
    name: String,
    warm: HashMap<String, String>,
    idle_since: Instant,
}

#[derive(Default)]
struct State {
    ready: Vec<Sandbox>,
    /// Sandboxes being prepared, by the image of their step container.
    preparing: HashMap<String, usize>,
    alive: usize,
    /// Step images of scenarios announced but not started, in schedule order.
    demand: VecDeque<String>,
    /// Why preparing a container of an image failed, so waiters fail rather than retry forever.
    failures: HashMap<String, String>,
    closed: bool,
}

impl State {
    fn preparing_total(&self) -> usize {
        self.preparing.values().sum()
    }
}

/// A sandbox leased to one scenario.
pub struct Lease {
    pub sandbox: String,
    /// Step container by image.
    pub containers: HashMap<String, String>,
    /// The scenario's private network the sandbox joined, if any.
    pub network: Option<String>,
    /// The sandbox could not be cleaned for another scenario.
    poisoned: bool,
}

pub struct Pool {
    engine: Engine,
    registry: Registry,
    /// The run's network, where sandboxes live.
    network: String,
    settings: Settings,
    state: Mutex<State>,
    changed: Notify,
    stats: Mutex<Stats>,
    tasks: Mutex<JoinSet<()>>,
    /// Limits containers being created at once: past a couple, the engine only gets slower.
    creating: tokio::sync::Semaphore,
}

/// Containers created at once (see `Pool::creating`).
const CREATE_CONCURRENCY: usize = 2;

impl Pool {
    /// Creates the run's network and starts warming for the announced `demand` (one step image per
    /// scenario, in the order they will start).
    pub async fn start(
        engine: Engine,
        registry: Registry,
        settings: Settings,
        demand: Vec<String>,
    ) -> Result<Arc<Pool>, EngineError> {
        let network = engine.name("net", "pool");
        registry.add_network(&network);
        let request = NetworkCreateRequest {
            name: network.clone(),
            labels: Some(engine.labels(POOL_SCENARIO)),
            ..Default::default()
        };
        engine.docker.create_network(request).await.map_err(|e| EngineError::api("create the run's network", e))?;
        let pool = Arc::new(Pool {
            engine,
            registry,
            network,
            settings,
            state: Mutex::new(State { demand: demand.into(), ..Default::default() }),
            changed: Notify::new(),
            stats: Mutex::new(Stats::default()),
            tasks: Mutex::new(JoinSet::new()),
            creating: tokio::sync::Semaphore::new(CREATE_CONCURRENCY),
        });
        pool.fill();
        pool.spawn_expiry();
        Ok(pool)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).spawn(task);
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Announces more scenarios (for `watch`, where demand arrives over time).
    pub fn announce(self: &Arc<Self>, images: impl IntoIterator<Item = String>) {
        self.state().demand.extend(images);
        self.fill();
    }

    /// Starts preparing sandboxes until enough are ready or on their way for the coming demand.
    fn fill(self: &Arc<Self>) {
        let mut state = self.state();
        if state.closed {
            return;
        }
        loop {
            let ahead = state.ready.len() + state.preparing_total();
            let Some(image) = state.demand.get(ahead).cloned() else { break };
            if ahead >= self.settings.warm || state.alive >= self.settings.max || state.failures.contains_key(&image) {
                break;
            }
            state.alive += 1;
            *state.preparing.entry(image.clone()).or_default() += 1;
            let pool = Arc::clone(self);
            self.spawn(async move { pool.prepare_new(image).await });
        }
    }

    /// Creates a sandbox with a step container for `image` and makes it ready.
    async fn prepare_new(self: Arc<Self>, image: String) {
        let sandbox = self.engine.name("sandbox", POOL_SCENARIO);
        let spec = container::idle(
            sandbox.clone(),
            &image,
            self.engine.labels(POOL_SCENARIO),
            Attach::Network { name: &self.network, aliases: Vec::new() },
        );
        let created = {
            let _slot = self.creating.acquire().await;
            container::run(&self.engine, &self.registry, spec).await
        };
        let result = match created {
            Ok(sandbox) => self.step_container(&sandbox, &image, POOL_SCENARIO).await.map(|c| (sandbox, c)),
            Err(e) => Err(e),
        };
        let mut state = self.state();
        decrement(&mut state.preparing, &image);
        match result {
            Ok((name, step)) => {
                state.failures.remove(&image);
                state.ready.push(Sandbox { name, warm: HashMap::from([(image, step)]), idle_since: Instant::now() });
            }
            Err(e) => {
                state.alive -= 1;
                state.failures.insert(image, e.to_string());
            }
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// Creates a step container of `image` in the namespace of `sandbox`.
    async fn step_container(&self, sandbox: &str, image: &str, scenario: &str) -> Result<String, EngineError> {
        let name = self.engine.name("step", scenario);
        let spec = container::idle(name, image, self.engine.labels(scenario), Attach::JoinNamespaceOf(sandbox));
        let _slot = self.creating.acquire().await;
        container::run(&self.engine, &self.registry, spec).await
    }

    /// Leases a sandbox with a step container for each of `images` (the first is the one announced
    /// for this scenario). Ready ones are handed out at once; otherwise this waits for one.
    pub async fn acquire(self: &Arc<Self>, scenario: &str, images: &[String]) -> Result<Lease, EngineError> {
        let started = Instant::now();
        let primary = images.first().cloned().unwrap_or_default();
        let mut hit = true;
        {
            let mut state = self.state();
            if let Some(at) = state.demand.iter().position(|i| *i == primary) {
                state.demand.remove(at);
            }
        }
        let mut sandbox = loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.state();
                if let Some(at) = state.ready.iter().position(|s| s.warm.contains_key(&primary)) {
                    break state.ready.swap_remove(at);
                }
                let coming = state.preparing.get(&primary).copied().unwrap_or(0) > 0;
                if let Some(reason) = state.failures.get(&primary).filter(|_| !coming) {
                    return Err(EngineError::Prepare { image: primary, reason: reason.clone() });
                }
                if !coming && state.alive < self.settings.max {
                    state.alive += 1;
                    *state.preparing.entry(primary.clone()).or_default() += 1;
                    let pool = Arc::clone(self);
                    let image = primary.clone();
                    self.spawn(async move { pool.prepare_new(image).await });
                } else if !coming && !state.ready.is_empty() {
                    // Every sandbox exists already and none has this image: take any, add the container.
                    break state.ready.swap_remove(0);
                }
                hit = false;
            }
            notified.await;
        };
        self.fill();
        let mut containers = HashMap::new();
        for image in images {
            let existing = sandbox.warm.remove(image);
            let id = match existing {
                Some(id) => id,
                None => {
                    hit = false;
                    match self.step_container(&sandbox.name, image, scenario).await {
                        Ok(id) => id,
                        Err(e) => {
                            self.discard(sandbox);
                            return Err(e);
                        }
                    }
                }
            };
            containers.insert(image.clone(), id);
        }
        // Containers of other images in this sandbox are not wanted by this scenario.
        for (_, unused) in sandbox.warm.drain() {
            let (engine, registry) = (self.engine.clone(), self.registry.clone());
            self.spawn(async move {
                let _ = registry.remove_container(&engine, &unused).await;
            });
        }
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        if hit {
            stats.hits += 1
        } else {
            stats.misses += 1
        }
        stats.acquire.push(started.elapsed());
        Ok(Lease { sandbox: sandbox.name, containers, network: None, poisoned: false })
    }

    /// Connects a leased sandbox to a scenario's private network.
    pub async fn join(&self, lease: &mut Lease, network: &str) -> Result<(), EngineError> {
        let request = NetworkConnectRequest { container: lease.sandbox.clone(), endpoint_config: None };
        self.engine
            .docker
            .connect_network(network, request)
            .await
            .map_err(|e| EngineError::api("connect the step containers to the scenario's network", e))?;
        lease.network = Some(network.to_string());
        Ok(())
    }

    /// Takes a leased sandbox off the scenario's network (before that network is removed). A
    /// sandbox that cannot leave is not handed out again.
    pub async fn leave(&self, lease: &mut Lease) {
        let Some(network) = lease.network.take() else { return };
        let request = NetworkDisconnectRequest { container: lease.sandbox.clone(), force: Some(true) };
        if self.engine.docker.disconnect_network(&network, request).await.is_err() {
            lease.poisoned = true;
        }
    }

    /// Ends a lease. In the background: either keep the step containers (`reuse`, when they still
    /// run) or remove them and prepare a fresh one for the next demand; the sandbox is handed out
    /// again only after that.
    ///
    /// `reuse` must only be asked for step containers known to be healthy (every command ended
    /// normally); such a lease is ready again at once.
    pub fn release(self: &Arc<Self>, lease: Lease, reuse: bool) {
        if reuse && !lease.poisoned && lease.network.is_none() {
            self.state().ready.push(Sandbox {
                name: lease.sandbox,
                warm: lease.containers,
                idle_since: Instant::now(),
            });
            self.changed.notify_waiters();
            return;
        }
        let pool = Arc::clone(self);
        self.spawn(async move { pool.recycle(lease).await });
    }

    /// Replaces a released sandbox's step containers with a fresh one for the coming demand.
    async fn recycle(self: Arc<Self>, lease: Lease) {
        if lease.poisoned || lease.network.is_some() {
            return self.discard_named(&lease.sandbox, lease.containers.into_values().collect()).await;
        }
        for id in lease.containers.values() {
            let _ = self.registry.remove_container(&self.engine, id).await;
        }
        let next = {
            let state = self.state();
            state.demand.get(state.ready.len() + state.preparing_total()).cloned()
        };
        let Some(image) = next else {
            return self.discard_named(&lease.sandbox, Vec::new()).await;
        };
        let Ok(step) = self.step_container(&lease.sandbox, &image, POOL_SCENARIO).await else {
            return self.discard_named(&lease.sandbox, Vec::new()).await;
        };
        let warm = HashMap::from([(image, step)]);
        self.state().ready.push(Sandbox { name: lease.sandbox, warm, idle_since: Instant::now() });
        self.changed.notify_waiters();
    }

    fn discard(self: &Arc<Self>, sandbox: Sandbox) {
        let pool = Arc::clone(self);
        self.spawn(async move { pool.discard_named(&sandbox.name, sandbox.warm.into_values().collect()).await });
    }

    /// Removes a sandbox and its containers for good.
    async fn discard_named(&self, sandbox: &str, containers: Vec<String>) {
        for id in containers {
            let _ = self.registry.remove_container(&self.engine, &id).await;
        }
        let _ = self.registry.remove_container(&self.engine, sandbox).await;
        self.state().alive -= 1;
        self.changed.notify_waiters();
    }

    /// Removes sandboxes idle for longer than the TTL (matters in long-lived `watch` processes).
    fn spawn_expiry(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let period = (self.settings.ttl / 2).max(Duration::from_secs(1));
        self.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(pool) = weak.upgrade() else { return };
                let expired: Vec<Sandbox> = {
                    let mut state = pool.state();
                    let (old, fresh) = std::mem::take(&mut state.ready)
                        .into_iter()
                        .partition(|s| s.idle_since.elapsed() > pool.settings.ttl);
                    state.ready = fresh;
                    old
                };
                for sandbox in expired {
                    pool.discard_named(&sandbox.name, sandbox.warm.into_values().collect()).await;
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

fn decrement(counts: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = counts.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(key);
        }
    }
}
