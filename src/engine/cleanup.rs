//! Nothing of a run stays on the engine.
//!
//! - The [`Registry`] is the guard: every container and network is registered by name before it is
//!   created (so one created as the process is interrupted is still known), and
//!   [`Registry::remove_all`] removes whatever is still registered — after a normal run, a
//!   failure, a timeout or Ctrl-C.
//! - [`sweep`] runs at every start and removes what earlier runs left behind when their process
//!   died without cleaning up (`kill -9`, a crash, a power cut), using the liveness labels.
//! - [`gc`] removes everything clnrm ever created on the engine.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bollard::models::NetworkDisconnectRequest;
use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptions};
use futures_util::future::join_all;

use super::docker::{
    Engine, EngineError, LABEL_HOST, LABEL_MANAGED_BY, LABEL_PID, LABEL_PROC, LABEL_RUN_ID, process_fingerprint,
};

/// Resources of this run that may exist, by name. A name is registered *before* the engine is
/// asked to create the resource, so a run interrupted mid-request still removes it.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<Resources>>,
}

#[derive(Default)]
struct Resources {
    containers: HashSet<String>,
    networks: HashSet<String>,
}

impl Registry {
    fn with<T>(&self, f: impl FnOnce(&mut Resources) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn add_container(&self, id: &str) {
        self.with(|r| r.containers.insert(id.to_string()));
    }

    pub fn add_network(&self, id: &str) {
        self.with(|r| r.networks.insert(id.to_string()));
    }

    pub fn container_count(&self) -> usize {
        self.with(|r| r.containers.len())
    }

    /// Removes a container and forgets it. A container that is already gone counts as removed.
    pub async fn remove_container(&self, engine: &Engine, id: &str) -> Result<(), EngineError> {
        remove_container(engine, id).await?;
        self.with(|r| r.containers.remove(id));
        Ok(())
    }

    /// Removes a network and forgets it (its containers must be gone or disconnected).
    pub async fn remove_network(&self, engine: &Engine, id: &str) -> Result<(), EngineError> {
        remove_network(engine, id).await?;
        self.with(|r| r.networks.remove(id));
        Ok(())
    }

    /// Removes everything still registered: containers first (in parallel), then networks.
    /// Returns how many resources could not be removed (each attempt is made regardless).
    pub async fn remove_all(&self, engine: &Engine) -> usize {
        let (containers, networks): (Vec<String>, Vec<String>) =
            self.with(|r| (r.containers.iter().cloned().collect(), r.networks.iter().cloned().collect()));
        let failed_containers = join_all(containers.iter().map(|id| self.remove_container(engine, id))).await;
        let failed_networks = join_all(networks.iter().map(|id| self.remove_network(engine, id))).await;
        failed_containers.into_iter().chain(failed_networks).filter(Result::is_err).count()
    }
}

/// Force-removes a container (killing it if needed) with its anonymous volumes.
pub async fn remove_container(engine: &Engine, id: &str) -> Result<(), EngineError> {
    let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
    match engine.docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if is_gone(&e) || is_removal_in_progress(&e) => Ok(()),
        Err(e) => Err(EngineError::api(format!("remove container {}", short(id)), e)),
    }
}

/// Removes a network, first disconnecting any container still attached.
pub async fn remove_network(engine: &Engine, id: &str) -> Result<(), EngineError> {
    match engine.docker.remove_network(id).await {
        Ok(()) => return Ok(()),
        Err(e) if is_gone(&e) => return Ok(()),
        Err(_) => {}
    }
    // Still in use: disconnect what is attached, then try again.
    if let Ok(network) = engine.docker.inspect_network(id, None).await {
        let attached: Vec<String> = network.containers.unwrap_or_default().into_keys().collect();
        for container in attached {
            let request = NetworkDisconnectRequest { container, force: Some(true) };
            let _ = engine.docker.disconnect_network(id, request).await;
        }
    }
    match engine.docker.remove_network(id).await {
        Ok(()) => Ok(()),
        Err(e) if is_gone(&e) => Ok(()),
        Err(e) => Err(EngineError::api(format!("remove network {}", short(id)), e)),
    }
}

fn is_gone(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

fn is_removal_in_progress(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 409, message }
        if message.contains("already in progress"))
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// What a sweep or gc removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Removed {
    pub runs: usize,
    pub containers: usize,
    pub networks: usize,
}

impl Removed {
    /// What the start-of-run sweep did, said to the user (`None` when it removed nothing): a run's
    /// containers vanishing silently would look like clnrm reaching into other work.
    pub fn swept_note(&self) -> Option<String> {
        if self.containers + self.networks == 0 {
            return None;
        }
        let runs = match self.runs {
            1 => "an earlier run".to_string(),
            n => format!("{n} earlier runs"),
        };
        Some(format!(
            "removed {} and {} left by {runs} of clnrm on this machine whose process is gone (killed or crashed)",
            crate::output::count(self.containers, "container"),
            crate::output::count(self.networks, "network"),
        ))
    }
}

/// A container or network clnrm created, with its labels.
struct Managed {
    id: String,
    network: bool,
    labels: HashMap<String, String>,
}

impl Managed {
    fn run_id(&self) -> Option<&String> {
        self.labels.get(LABEL_RUN_ID)
    }
}

/// Every container and network labelled `clnrm.managed-by=clnrm` (and `label`, if given).
async fn list_managed(engine: &Engine, label: Option<String>) -> Result<Vec<Managed>, EngineError> {
    let mut labels = vec![format!("{LABEL_MANAGED_BY}=clnrm")];
    labels.extend(label);
    let filter = HashMap::from([("label".to_string(), labels)]);
    let containers = engine
        .docker
        .list_containers(Some(ListContainersOptionsBuilder::default().all(true).filters(&filter).build()))
        .await
        .map_err(|e| EngineError::api("list containers", e))?;
    let networks = engine
        .docker
        .list_networks(Some(ListNetworksOptionsBuilder::default().filters(&filter).build()))
        .await
        .map_err(|e| EngineError::api("list networks", e))?;
    let containers = containers.into_iter().map(|c| (c.id, false, c.labels));
    let networks = networks.into_iter().map(|n| (n.id, true, n.labels));
    Ok(containers
        .chain(networks)
        .filter_map(|(id, network, labels)| Some(Managed { id: id?, network, labels: labels.unwrap_or_default() }))
        .collect())
}

/// Removes `resources` (containers first, then networks), each attempt made regardless; returns
/// what was removed and how many could not be.
async fn remove_managed(engine: &Engine, resources: &[Managed]) -> (Removed, Vec<EngineError>) {
    let (networks, containers): (Vec<&Managed>, Vec<&Managed>) = resources.iter().partition(|r| r.network);
    let failed_containers = join_all(containers.iter().map(|c| remove_container(engine, &c.id))).await;
    let failed_networks = join_all(networks.iter().map(|n| remove_network(engine, &n.id))).await;
    let failed = failed_containers.into_iter().chain(failed_networks).filter_map(Result::err).collect();
    let runs: HashSet<&String> = resources.iter().filter_map(Managed::run_id).collect();
    (Removed { runs: runs.len(), containers: containers.len(), networks: networks.len() }, failed)
}

/// Removes the resources of earlier runs on this machine whose process is gone. Runs of other
/// machines sharing the engine are left alone (their liveness cannot be checked from here).
pub async fn sweep(engine: &Engine) -> Result<Removed, EngineError> {
    let me = &engine.identity;
    let mut dead_runs: BTreeMap<String, bool> = BTreeMap::new();
    let mut is_dead = |resource: &Managed| -> bool {
        let labels = &resource.labels;
        let Some(run) = resource.run_id() else { return false };
        if *run == me.run_id || labels.get(LABEL_HOST) != Some(&me.host) {
            return false;
        }
        *dead_runs.entry(run.clone()).or_insert_with(|| {
            let pid = labels.get(LABEL_PID).and_then(|p| p.parse::<u32>().ok());
            let recorded = labels.get(LABEL_PROC).cloned().unwrap_or_default();
            pid.and_then(process_fingerprint).is_none_or(|now| now != recorded)
        })
    };
    let doomed: Vec<Managed> = list_managed(engine, None).await?.into_iter().filter(|r| is_dead(r)).collect();
    Ok(remove_managed(engine, &doomed).await.0)
}

/// Removes whatever still carries this run's id: the last safety net at the end of a run, for a
/// resource whose creation was still in flight when the registry was emptied. Returns how many
/// could not be removed.
pub async fn remove_run(engine: &Engine) -> usize {
    let label = format!("{LABEL_RUN_ID}={}", engine.identity.run_id);
    match list_managed(engine, Some(label)).await {
        Ok(resources) => remove_managed(engine, &resources).await.1.len(),
        Err(_) => 1,
    }
}

/// Removes every container and network clnrm created on this engine, whoever created them.
pub async fn gc(engine: &Engine) -> Result<Removed, EngineError> {
    let resources = list_managed(engine, None).await?;
    match remove_managed(engine, &resources).await {
        (removed, failed) if failed.is_empty() => Ok(removed),
        (_, failed) => Err(EngineError::Cleanup { failed: failed.iter().map(ToString::to_string).collect() }),
    }
}
