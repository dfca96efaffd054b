//! Services: long-running containers on a scenario's private network, reachable by their name,
//! and the wait strategies that tell when they are ready.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::query_parameters::{InspectContainerOptions, LogsOptionsBuilder, WaitContainerOptionsBuilder};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::cleanup::Registry;
use super::container::{self, Attach, Spec};
use super::docker::{Engine, EngineError};
use super::exec::{self, ExecEnd, ExecRequest, OnTimeout};
use crate::scenario::model::{Command, Service, Wait, WaitStrategy};

/// Probes of `port`, `http` and `exec` waits run this often unless the wait says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
/// How long one `exec` probe may take before the next is tried.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of a service's log shown when it fails.
const LOG_LINES: usize = 20;

/// Starts `service` as container `name` from `image` on `network`, reachable there by its name;
/// returns the container's id.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    engine: &Engine,
    registry: &Registry,
    name: &str,
    scenario: &str,
    network: &str,
    service: &Service,
    image: &str,
    env: Vec<String>,
) -> Result<String, EngineError> {
    let (entrypoint, cmd) = match &service.command {
        Some(Command::Argv(argv)) => (None, Some(argv.clone())),
        Some(Command::Shell(line)) => (Some(vec!["sh".to_string(), "-c".to_string()]), Some(vec![line.clone()])),
        None => (None, None),
    };
    let spec = Spec {
        name: name.to_string(),
        image,
        entrypoint,
        cmd,
        env,
        workdir: service.workdir.clone(),
        labels: engine.labels(scenario),
        attach: Attach::Network { name: network, aliases: vec![service.name.value.clone()] },
        // What the service sees as its host name (and reports, as `net.host.name` say) is the
        // same on every run, so traces compare equal.
        hostname: Some(service.name.value.clone()),
        stdin: false,
    };
    container::run(engine, registry, spec).await
}

/// Why a service did not become ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// The strategy, in words (e.g. "port 8080").
    pub strategy: String,
    pub waited: Duration,
    pub reason: String,
    /// The last lines of the service's output.
    pub logs: String,
}

/// Describes a strategy for messages.
pub fn describe(strategy: &WaitStrategy) -> String {
    match strategy {
        WaitStrategy::Log(re) => format!("log line matching /{}/", re.as_str()),
        WaitStrategy::Port(port) => format!("TCP port {port}"),
        WaitStrategy::Http { port, path } => format!("HTTP 2xx from GET :{port}{path}"),
        WaitStrategy::Exec(command) => format!("`{}` exiting 0", command_text(command)),
        WaitStrategy::Healthy => "the image's healthcheck".into(),
    }
}

fn command_text(command: &Command) -> String {
    match command {
        Command::Argv(argv) => argv.join(" "),
        Command::Shell(line) => line.clone(),
    }
}

/// Who is waiting, as the requests of `http` probes say: they name the service by its name (the
/// `Host` header a client on the scenario network would send), and carry the `traceparent` of
/// clnrm's wait span, so the spans the service makes of them sit below it as clnrm's doing.
pub struct Prober<'a> {
    pub service: &'a str,
    pub traceparent: &'a str,
}

/// Waits until the service in `container` is ready by `wait`, at most its timeout (or `default_timeout`).
pub async fn wait_ready(
    engine: &Engine,
    container: &str,
    network: &str,
    wait: &Wait,
    default_timeout: Duration,
    prober: &Prober<'_>,
) -> Result<Duration, NotReady> {
    let started = Instant::now();
    let timeout = wait.timeout.unwrap_or(default_timeout);
    let interval = wait.interval.unwrap_or(DEFAULT_INTERVAL);
    let strategy = &wait.strategy.value;
    let outcome =
        tokio::time::timeout(timeout, probe_until_ready(engine, container, network, strategy, interval, prober)).await;
    let reason = match outcome {
        Ok(Ok(())) => return Ok(started.elapsed()),
        Ok(Err(reason)) => reason,
        Err(_) => format!("not ready after {}", crate::duration::display(timeout)),
    };
    Err(NotReady {
        strategy: describe(strategy),
        waited: started.elapsed(),
        reason,
        logs: last_log_lines(engine, container).await,
    })
}

/// Probes until ready; an `Err` is a reason to stop early (the container exited, no healthcheck).
async fn probe_until_ready(
    engine: &Engine,
    container: &str,
    network: &str,
    strategy: &WaitStrategy,
    interval: Duration,
    prober: &Prober<'_>,
) -> Result<(), String> {
    if let WaitStrategy::Log(re) = strategy {
        return watch_log(engine, container, re).await;
    }
    loop {
        let info = inspect(engine, container).await?;
        let state = info.state.clone().unwrap_or_default();
        if state.running != Some(true) {
            return Err(exited(state.exit_code));
        }
        let ready = match strategy {
            WaitStrategy::Port(port) => tcp_open(&address(&info, network)?, *port).await,
            WaitStrategy::Http { port, path } => http_ok(&address(&info, network)?, *port, path, prober).await,
            WaitStrategy::Exec(command) => exec_ok(engine, container, command).await,
            WaitStrategy::Healthy => match state.health.and_then(|h| h.status) {
                None => return Err("the image defines no HEALTHCHECK; use another wait strategy".into()),
                Some(status) => status == bollard::models::HealthStatusEnum::HEALTHY,
            },
            WaitStrategy::Log(_) => unreachable!("handled above"),
        };
        if ready {
            return Ok(());
        }
        tokio::time::sleep(interval).await;
    }
}

async fn inspect(engine: &Engine, container: &str) -> Result<bollard::models::ContainerInspectResponse, String> {
    engine
        .docker
        .inspect_container(container, None::<InspectContainerOptions>)
        .await
        .map_err(|e| format!("cannot inspect the service's container: {e}"))
}

fn exited(code: Option<i64>) -> String {
    match code {
        Some(code) => format!("the service exited with code {code}"),
        None => "the service is not running".into(),
    }
}

/// The container's address on the scenario network (reachable from this machine over the bridge).
fn address(info: &bollard::models::ContainerInspectResponse, network: &str) -> Result<String, String> {
    info.network_settings
        .as_ref()
        .and_then(|s| s.networks.as_ref())
        .and_then(|n: &HashMap<String, bollard::models::EndpointSettings>| n.get(network))
        .and_then(|e| e.ip_address.clone())
        .filter(|ip| !ip.is_empty())
        .ok_or_else(|| "the service has no address on the scenario network".to_string())
}

async fn tcp_open(ip: &str, port: u16) -> bool {
    let connect = TcpStream::connect((ip, port));
    matches!(tokio::time::timeout(Duration::from_secs(1), connect).await, Ok(Ok(_)))
}

async fn http_ok(ip: &str, port: u16, path: &str, prober: &Prober<'_>) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect((ip, port)).await.ok()?;
        let Prober { service, traceparent } = prober;
        let request = format!(
            "GET {path} HTTP/1.0\r\nHost: {service}:{port}\r\ntraceparent: {traceparent}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        // "HTTP/1.x 2xx"
        Some(head.starts_with(b"HTTP/") && head[9] == b'2')
    };
    matches!(tokio::time::timeout(Duration::from_secs(2), attempt).await, Ok(Some(true)))
}

/// Whether `command` exits 0 in the service's container. A probe that does not answer within
/// `PROBE_TIMEOUT` counts as not ready and is left behind, never killed with the service: on a
/// loaded machine an exec can take seconds, and the wait's own timeout bounds the whole.
async fn exec_ok(engine: &Engine, container: &str, command: &Command) -> bool {
    let request = ExecRequest {
        container,
        argv: command.argv(),
        env: Vec::new(),
        workdir: None,
        timeout: PROBE_TIMEOUT,
        on_timeout: OnTimeout::Abandon,
    };
    matches!(exec::exec(engine, request).await, Ok(outcome) if outcome.end == ExecEnd::Exited(0))
}

/// Follows the service's output from its start until a line matches.
async fn watch_log(engine: &Engine, container: &str, re: &regex::Regex) -> Result<(), String> {
    let options = LogsOptionsBuilder::default().follow(true).stdout(true).stderr(true).build();
    let mut logs = engine.docker.logs(container, Some(options));
    let mut pending = String::new();
    while let Some(chunk) = logs.next().await {
        let Ok(chunk) = chunk else { break };
        let bytes = match chunk {
            LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message } => message,
            LogOutput::StdIn { .. } => continue,
        };
        pending.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            if re.is_match(line.trim_end()) {
                return Ok(());
            }
        }
        if re.is_match(&pending) {
            return Ok(());
        }
    }
    let state = inspect(engine, container).await?.state.unwrap_or_default();
    Err(format!("{} before a line matched", exited(state.exit_code)))
}

/// The last lines a container printed (stdout and stderr interleaved).
pub async fn last_log_lines(engine: &Engine, container: &str) -> String {
    let options = LogsOptionsBuilder::default().stdout(true).stderr(true).tail(&LOG_LINES.to_string()).build();
    let mut text = String::new();
    let mut logs = engine.docker.logs(container, Some(options));
    while let Some(Ok(chunk)) = logs.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    text.trim_end().to_string()
}

/// Whether a service's container still runs: `None` when it does; else how it ended (its exit
/// code, when the engine knows one). A container the engine no longer has counts as ended.
pub async fn ended(engine: &Engine, container: &str) -> Option<Option<i64>> {
    loop {
        match engine.docker.inspect_container(container, None::<InspectContainerOptions>).await {
            Ok(info) => {
                let state = info.state.unwrap_or_default();
                return if state.running == Some(true) { None } else { Some(state.exit_code) };
            }
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return Some(None),
            // Not an answer about the container: ask again.
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits until a service's container stops; its exit code, when the engine knows one.
pub async fn stopped(engine: &Engine, container: &str) -> Option<i64> {
    loop {
        let options = WaitContainerOptionsBuilder::default().condition("not-running").build();
        match engine.docker.wait_container(container, Some(options)).next().await {
            Some(Ok(response)) => return Some(response.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => return Some(code),
            // The request ended without an answer (the client's own timeout on a long wait, a
            // broken connection): wait again while the container runs.
            _ => {
                if let Some(code) = ended(engine, container).await {
                    return code;
                }
            }
        }
    }
}
