//! Running a command inside a running container, with its output captured (the tail is kept when
//! it exceeds a cap) and its timeout enforced while waiting. The engine cannot kill a single exec,
//! so a command past its timeout either takes its container with it or is abandoned
//! ([`OnTimeout`]).

use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::exec::StartExecResults;
use bollard::models::ExecConfig;
use bollard::query_parameters::KillContainerOptions;
use futures_util::StreamExt;

use super::cleanup::short;
use super::docker::{Engine, EngineError};

/// Output kept per stream; beyond it, the oldest bytes are dropped (the end is what explains a failure).
pub const OUTPUT_CAP: usize = 64 * 1024;

/// The end of a byte stream, at most `cap` bytes. Equal when they kept the same bytes of streams
/// of the same size, whatever their caps (a tail read back from a record has none to speak of).
#[derive(Debug, Clone, Default)]
pub struct Tail {
    bytes: Vec<u8>,
    /// How many bytes the stream had in all.
    pub total: usize,
    cap: usize,
}

impl Tail {
    pub fn new(cap: usize) -> Self {
        Self { bytes: Vec::new(), total: 0, cap }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len();
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > self.cap {
            let excess = self.bytes.len() - self.cap;
            self.bytes.drain(..excess);
        }
    }

    pub fn truncated(&self) -> bool {
        self.total > self.bytes.len()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The last `n` lines, for failure reports.
    pub fn last_lines(&self, n: usize) -> String {
        let text = self.text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl PartialEq for Tail {
    fn eq(&self, other: &Tail) -> bool {
        (&self.bytes, self.total) == (&other.bytes, other.total)
    }
}

impl Eq for Tail {}

/// In the run record: `{"text": "…", "bytes": 123}`, the kept end as text and the stream's size.
impl serde::Serialize for Tail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("Tail", 2)?;
        out.serialize_field("text", &self.text())?;
        out.serialize_field("bytes", &self.total)?;
        out.end()
    }
}

impl<'de> serde::Deserialize<'de> for Tail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Tail, D::Error> {
        #[derive(serde::Deserialize)]
        struct Stored {
            text: String,
            bytes: usize,
        }
        let Stored { text, bytes } = Stored::deserialize(d)?;
        let kept = text.into_bytes();
        Ok(Tail { cap: kept.len(), total: bytes.max(kept.len()), bytes: kept })
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ExecRequest<'a> {
    pub container: &'a str,
    pub argv: Vec<String>,
    /// `KEY=value` entries added to the container's environment.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub timeout: Duration,
    pub on_timeout: OnTimeout,
}

/// What a command past its timeout does to its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTimeout {
    /// Kill it: a step container exists for its scenario's steps, and a step that hangs must not
    /// keep running beside the next.
    KillContainer,
    /// Leave it running and stop waiting: a service is only visited (a readiness probe, a step run
    /// inside it), and killing it would fail its scenario as a service that died; what was left
    /// running goes when the scenario's end removes the service.
    Abandon,
}

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEnd {
    Exited(i64),
    /// It ran past its timeout; the container was killed or the command abandoned (`OnTimeout`).
    TimedOut,
    /// The container stopped while the command ran (killed from outside, or it crashed).
    ContainerStopped {
        exit_code: Option<i64>,
    },
}

#[derive(Debug, Clone)]
pub struct ExecOutcome {
    pub end: ExecEnd,
    /// The id of the container the command ran in, as the engine reported it.
    pub container_id: Option<String>,
    pub stdout: Tail,
    pub stderr: Tail,
    pub duration: Duration,
}

/// Runs `request` and waits for it, at most its timeout.
pub async fn exec(engine: &Engine, request: ExecRequest<'_>) -> Result<ExecOutcome, EngineError> {
    let started = Instant::now();
    let container = request.container;
    let config = ExecConfig {
        cmd: Some(request.argv),
        env: (!request.env.is_empty()).then_some(request.env),
        working_dir: request.workdir,
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let mut stdout = Tail::new(OUTPUT_CAP);
    let mut stderr = Tail::new(OUTPUT_CAP);
    let run = async {
        let created = engine.docker.create_exec(container, config).await;
        let created = match created {
            Ok(created) => created,
            Err(e) if is_not_running(&e) => return Ok((None, None)),
            Err(e) => return Err(EngineError::api(format!("start a command in container {}", short(container)), e)),
        };
        let started = engine.docker.start_exec(&created.id, None).await;
        if let Ok(StartExecResults::Attached { mut output, .. }) = started {
            while let Some(Ok(chunk)) = output.next().await {
                match chunk {
                    LogOutput::StdErr { message } => stderr.push(&message),
                    LogOutput::StdOut { message } | LogOutput::Console { message } => stdout.push(&message),
                    LogOutput::StdIn { .. } => {}
                }
            }
        }
        let inspected = engine.docker.inspect_exec(&created.id).await.ok();
        let container_id = inspected.as_ref().and_then(|i| i.container_id.clone());
        let exit = inspected.filter(|i| i.running != Some(true)).and_then(|i| i.exit_code);
        Ok((exit, container_id))
    };
    let (end, container_id) = match tokio::time::timeout(request.timeout, run).await {
        Err(_) => {
            give_up(engine, container, request.on_timeout).await;
            (ExecEnd::TimedOut, None)
        }
        Ok(result) => {
            let (exit, container_id) = result?;
            (ended(engine, container, exit).await, container_id)
        }
    };
    Ok(ExecOutcome { end, container_id, stdout, stderr, duration: started.elapsed() })
}

/// How a command that finished with `exit` ended. A normal exit needs no second look. No exit
/// code, or death by a signal, may mean the whole container went down (`docker kill`), which the
/// engine reports a moment later.
async fn ended(engine: &Engine, container: &str, exit: Option<i64>) -> ExecEnd {
    match exit {
        Some(code) if code < 128 => ExecEnd::Exited(code),
        exit => match (container_state(engine, container).await, exit) {
            (ContainerState::Stopped(exit_code), _) => ExecEnd::ContainerStopped { exit_code },
            (ContainerState::Running, None) => ExecEnd::ContainerStopped { exit_code: None },
            (ContainerState::Running, Some(code)) => match stopping(engine, container).await {
                Some(exit_code) => ExecEnd::ContainerStopped { exit_code },
                None => ExecEnd::Exited(code),
            },
        },
    }
}

/// Deals with a command that ran past its timeout in `container`, as `on_timeout` says.
pub async fn give_up(engine: &Engine, container: &str, on_timeout: OnTimeout) {
    if on_timeout == OnTimeout::KillContainer {
        kill(engine, container).await;
    }
}

/// Kills a container at once (SIGKILL); one that is already stopped or gone is fine.
pub async fn kill(engine: &Engine, container: &str) {
    let _ = engine.docker.kill_container(container, Some(KillContainerOptions::default())).await;
}

/// The exit code of a container whose command's output ended unannounced: it stopped, or is
/// stopping (within a second).
pub(super) async fn stopped_code(engine: &Engine, container: &str) -> Option<i64> {
    match container_state(engine, container).await {
        ContainerState::Stopped(code) => code,
        ContainerState::Running => stopping(engine, container).await.flatten(),
    }
}

/// Whether a container stops within a second; its exit code if so.
async fn stopping(engine: &Engine, container: &str) -> Option<Option<i64>> {
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let ContainerState::Stopped(code) = container_state(engine, container).await {
            return Some(code);
        }
    }
    None
}

enum ContainerState {
    Running,
    Stopped(Option<i64>),
}

async fn container_state(engine: &Engine, container: &str) -> ContainerState {
    match engine.docker.inspect_container(container, None::<bollard::query_parameters::InspectContainerOptions>).await {
        Ok(info) => match info.state {
            Some(state) if state.running == Some(true) => ContainerState::Running,
            Some(state) => ContainerState::Stopped(state.exit_code),
            None => ContainerState::Stopped(None),
        },
        Err(_) => ContainerState::Stopped(None),
    }
}

fn is_not_running(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404 | 409, .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_and_counts_everything() {
        let mut t = Tail::new(8);
        t.push(b"hello ");
        t.push(b"world!\nbye");
        assert_eq!(t.text(), "rld!\nbye");
        assert_eq!(t.total, 16);
        assert!(t.truncated());
        assert_eq!(t.last_lines(1), "bye");
    }
}
