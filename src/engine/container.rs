//! Creating and starting containers, always labelled and registered for cleanup first.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, EndpointSettings, HostConfig, HostConfigLogConfig, NetworkingConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, StartContainerOptions};

use super::cleanup::Registry;
use super::docker::{Engine, EngineError};

/// Keeps a container alive doing nothing, so commands can be exec'd into it. A shell loop works in
/// any image with a POSIX shell and `sleep`, and exits promptly on SIGTERM.
pub const IDLE: [&str; 3] = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"];

/// Where a container is attached.
pub enum Attach<'a> {
    /// A user-defined network, reachable under these aliases.
    Network { name: &'a str, aliases: Vec<String> },
    /// The network namespace of another container (no interface of its own: cheap to create and remove).
    JoinNamespaceOf(&'a str),
}

pub struct Spec<'a> {
    pub name: String,
    pub image: &'a str,
    /// `None` keeps the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// `None` keeps the image's command.
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub labels: HashMap<String, String>,
    pub attach: Attach<'a>,
    /// The host name inside the container; `None` keeps the engine's (its id, new every run).
    pub hostname: Option<String>,
    /// Its standard input stays open for a client that attaches (and closes when that client
    /// leaves); its output goes to that client only, not to the engine's logs.
    pub stdin: bool,
}

/// Creates and starts a container; returns the engine's id for it. The name is registered before
/// anything is asked of the engine.
pub async fn run(engine: &Engine, registry: &Registry, spec: Spec<'_>) -> Result<String, EngineError> {
    let (name, image) = (spec.name.clone(), spec.image.to_string());
    let id = create(engine, registry, spec).await?;
    start(engine, &name, &image).await?;
    Ok(id)
}

/// Creates a container (registered first) without starting it; returns the engine's id for it.
pub async fn create(engine: &Engine, registry: &Registry, spec: Spec<'_>) -> Result<String, EngineError> {
    registry.add_container(&spec.name);
    let (network_mode, networking_config) = match &spec.attach {
        Attach::Network { name, aliases } => {
            let endpoint = EndpointSettings { aliases: Some(aliases.clone()), ..Default::default() };
            let config = NetworkingConfig { endpoints_config: Some(HashMap::from([(name.to_string(), endpoint)])) };
            (name.to_string(), Some(config))
        }
        Attach::JoinNamespaceOf(owner) => (format!("container:{owner}"), None),
    };
    let body = ContainerCreateBody {
        image: Some(spec.image.to_string()),
        entrypoint: spec.entrypoint,
        cmd: spec.cmd,
        env: (!spec.env.is_empty()).then_some(spec.env),
        working_dir: spec.workdir,
        labels: Some(spec.labels),
        hostname: spec.hostname,
        open_stdin: spec.stdin.then_some(true),
        stdin_once: spec.stdin.then_some(true),
        attach_stdin: spec.stdin.then_some(true),
        host_config: Some(HostConfig {
            network_mode: Some(network_mode),
            log_config: spec.stdin.then(|| HostConfigLogConfig { typ: Some("none".into()), config: None }),
            ..Default::default()
        }),
        networking_config,
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(&spec.name).build();
    let created = engine
        .docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| EngineError::api(format!("create a container from `{}`", spec.image), e))?;
    Ok(created.id)
}

/// Starts a created container (`image` names it in errors).
pub async fn start(engine: &Engine, name: &str, image: &str) -> Result<(), EngineError> {
    engine
        .docker
        .start_container(name, None::<StartContainerOptions>)
        .await
        .map_err(|e| EngineError::api(format!("start a container from `{image}`"), e))
}

/// An idle container of `image` for running steps in.
pub fn idle<'a>(name: String, image: &'a str, labels: HashMap<String, String>, attach: Attach<'a>) -> Spec<'a> {
    Spec {
        name,
        image,
        entrypoint: Some(IDLE.iter().map(|s| s.to_string()).collect()),
        cmd: Some(Vec::new()),
        env: Vec::new(),
        workdir: None,
        labels,
        attach,
        hostname: None,
        stdin: false,
    }
}

/// A container's address on `network`, if it has one.
pub async fn address(engine: &Engine, container: &str, network: &str) -> Option<std::net::IpAddr> {
    let info = engine
        .docker
        .inspect_container(container, None::<bollard::query_parameters::InspectContainerOptions>)
        .await
        .ok()?;
    let networks = info.network_settings?.networks?;
    networks.get(network)?.ip_address.as_deref()?.parse().ok()
}

/// Who may talk on a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Its containers talk to each other (a scenario's services and steps).
    Shared,
    /// Its containers reach the host (the span receiver on the gateway) but not each other: the
    /// run's network, where the lanes of scenarios running side by side live.
    HostOnly,
}

/// Creates a network labelled for `scenario` (registered for cleanup first); returns its gateway,
/// the host's address on it.
pub async fn create_network(
    engine: &Engine,
    registry: &Registry,
    name: &str,
    scenario: &str,
    reach: Reach,
) -> Result<Option<std::net::IpAddr>, EngineError> {
    registry.add_network(name);
    let options = match reach {
        Reach::Shared => None,
        Reach::HostOnly => {
            Some(HashMap::from([("com.docker.network.bridge.enable_icc".to_string(), "false".to_string())]))
        }
    };
    let request = bollard::models::NetworkCreateRequest {
        name: name.to_string(),
        labels: Some(engine.labels(scenario)),
        options,
        ..Default::default()
    };
    engine.docker.create_network(request).await.map_err(|e| EngineError::api(format!("create network {name}"), e))?;
    let info = engine.docker.inspect_network(name, None::<bollard::query_parameters::InspectNetworkOptions>).await.ok();
    let gateway = info.and_then(|n| n.ipam?.config?.into_iter().find_map(|c| c.gateway?.parse().ok()));
    Ok(gateway)
}
