//! The connection to the container engine, and the identity every resource of a run carries.
//!
//! Every container and network clnrm creates is labelled (contract): `clnrm.managed-by=clnrm`,
//! `clnrm.run-id`, `clnrm.scenario`; plus where the run lives (`clnrm.host`, `clnrm.pid`,
//! `clnrm.proc`: boot id and process start time, so a reused pid is not mistaken for a live run)
//! and the project it belongs to (`clnrm.project`). The sweep uses them to tell leftovers of dead
//! runs from resources of live ones.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use thiserror::Error;

pub const LABEL_MANAGED_BY: &str = "clnrm.managed-by";
pub const LABEL_RUN_ID: &str = "clnrm.run-id";
pub const LABEL_SCENARIO: &str = "clnrm.scenario";
pub const LABEL_HOST: &str = "clnrm.host";
pub const LABEL_PID: &str = "clnrm.pid";
pub const LABEL_PROC: &str = "clnrm.proc";
pub const LABEL_PROJECT: &str = "clnrm.project";
/// The `clnrm.scenario` value of pooled resources not yet handed to a scenario.
pub const POOL_SCENARIO: &str = "(pool)";

/// How long connecting (and negotiating the API version) may take before the engine counts as
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Failures of the engine layer; all are infrastructure failures (exit 5).
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("cannot reach the container engine at {endpoint}: {reason}\n  {hint}")]
    Unreachable { endpoint: String, reason: String, hint: String },
    #[error("image `{image}` (needed by {}) is not available: {reason}", list_scenarios(.scenarios))]
    ImageUnavailable { image: String, scenarios: Vec<String>, reason: String },
    #[error("cannot build `{context}` (needed by {}): {reason}", list_scenarios(.scenarios))]
    Build { context: String, scenarios: Vec<String>, reason: String },
    #[error(
        "{} containers or networks could not be removed; run `clnrm gc` again, or remove them with `docker rm -f` or `docker network rm`:\n  {}",
        .failed.len(),
        .failed.join("\n  ")
    )]
    Cleanup { failed: Vec<String> },
    #[error("the span receiver could not start: {reason}")]
    Receiver { reason: String },
    #[error("cannot prepare a step container from `{image}`: {reason}")]
    Prepare { image: String, reason: String },
    #[error("the engine failed to {action}: {source}")]
    Api {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
}

fn list_scenarios(scenarios: &[String]) -> String {
    match scenarios {
        [] => "no scenario".into(),
        [one] => format!("scenario `{one}`"),
        many => format!("scenarios {}", many.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")),
    }
}

impl EngineError {
    pub fn api(action: impl Into<String>, source: bollard::errors::Error) -> Self {
        EngineError::Api { action: action.into(), source }
    }
}

/// Who is running: what the liveness labels hold.
#[derive(Debug, Clone)]
pub struct RunIdentity {
    pub run_id: String,
    pub host: String,
    pub pid: u32,
    /// `<boot id>:<process start time in clock ticks>`, unique to this process for the machine's uptime.
    pub proc: String,
    /// The project root, for telling projects apart on a shared engine.
    pub project: String,
}

impl RunIdentity {
    pub fn current(project: &std::path::Path) -> Self {
        let pid = std::process::id();
        let proc = process_fingerprint(pid).unwrap_or_default();
        let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let seed = format!("{pid}:{proc}:{}", nonce.as_nanos());
        let run_id = blake3::hash(seed.as_bytes()).to_hex()[..12].to_string();
        Self { run_id, host: hostname(), pid, proc, project: project.display().to_string() }
    }
}

/// `<boot id>:<start time>` of a process, from /proc; `None` when the process does not exist.
pub fn process_fingerprint(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let start_ticks = after_name.split_whitespace().nth(19)?;
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    Some(format!("{}:{start_ticks}", boot_id.trim()))
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// A connected engine and the identity of this run.
#[derive(Clone)]
pub struct Engine {
    pub docker: Docker,
    /// Where the engine was reached, for messages.
    pub endpoint: String,
    pub identity: RunIdentity,
}

impl Engine {
    /// Connects to the engine named by `DOCKER_HOST` (or the local socket) and negotiates the API
    /// version, so older engines work too.
    pub async fn connect(identity: RunIdentity) -> Result<Engine, EngineError> {
        let endpoint = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
        let unreachable =
            |reason: String| EngineError::Unreachable { hint: hint(&endpoint), endpoint: endpoint.clone(), reason };
        let docker = Docker::connect_with_host(&endpoint).map_err(|e| unreachable(e.to_string()))?;
        let docker = match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
            Ok(Ok(docker)) => docker,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()))),
        };
        Ok(Engine { docker, endpoint, identity })
    }

    /// The labels of a resource created for `scenario` (or for the pool).
    pub fn labels(&self, scenario: &str) -> HashMap<String, String> {
        let id = &self.identity;
        HashMap::from([
            (LABEL_MANAGED_BY.into(), "clnrm".into()),
            (LABEL_RUN_ID.into(), id.run_id.clone()),
            (LABEL_SCENARIO.into(), scenario.into()),
            (LABEL_HOST.into(), id.host.clone()),
            (LABEL_PID.into(), id.pid.to_string()),
            (LABEL_PROC.into(), id.proc.clone()),
            (LABEL_PROJECT.into(), id.project.clone()),
        ])
    }

    /// A short, unique, readable name for a resource of this run.
    pub fn name(&self, kind: &str, scenario: &str) -> String {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let readable: String = scenario
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' })
            .take(40)
            .collect();
        format!("clnrm-{}-{kind}-{readable}-{n}", self.identity.run_id)
    }
}

fn hint(endpoint: &str) -> String {
    if endpoint.starts_with("unix://") {
        "Check that the Docker engine is running (`docker info`), that you may use its socket, or set DOCKER_HOST."
            .into()
    } else {
        format!("Check that DOCKER_HOST ({endpoint}) points to a running Docker engine (`docker info`).")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gc` that cannot remove something says what and why, one per line: a count alone left a
    /// stale network endpoint of the engine to be found by hand.
    #[test]
    fn a_failed_cleanup_names_each_resource_and_the_engines_reason() {
        let failed = vec![
            "the engine failed to remove network 1a2b3c: has active endpoints".to_string(),
            "the engine failed to remove container 4d5e6f: device busy".to_string(),
        ];
        let said = EngineError::Cleanup { failed }.to_string();
        assert!(said.starts_with("2 containers or networks could not be removed;"), "{said}");
        assert!(said.contains("\n  the engine failed to remove network 1a2b3c: has active endpoints\n  "), "{said}");
        assert!(said.ends_with("remove container 4d5e6f: device busy"), "{said}");
    }

    #[test]
    fn fingerprint_tells_this_process_apart() {
        let mine = process_fingerprint(std::process::id()).unwrap();
        assert!(mine.contains(':'));
        assert_eq!(process_fingerprint(std::process::id()), Some(mine));
        assert_eq!(process_fingerprint(u32::MAX), None);
    }

    #[test]
    fn error_messages_name_the_image_and_scenarios() {
        let e = EngineError::ImageUnavailable {
            image: "x:1".into(),
            scenarios: vec!["a".into(), "b".into()],
            reason: "not found".into(),
        };
        assert_eq!(e.to_string(), "image `x:1` (needed by scenarios `a`, `b`) is not available: not found");
    }
}
