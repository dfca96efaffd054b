//! Step containers that take their steps on standard input rather than by exec.
//!
//! Measured on the reference machine, an exec costs the engine three API calls and a process
//! spawned through the runtime, and ending a used container a kill: together more than creating
//! the container. A *fed* container's first process is a shell that reads scripts from its
//! standard input (the pool attaches before starting it, so it is warm), runs each, and reports
//! how it ended. A scenario's first step in the container is fed to it; later steps are exec'd,
//! so that what a background process of an earlier step writes is never taken for theirs.
//!
//! Single-use containers end by closing their input: the shell exits, and with the container's
//! first process the kernel ends every process the scenario left in it (no exec, no kill). Reused
//! ones are fed `kill -9 -1` between scenarios, which ends every process but the shell.
//!
//! The protocol: a line holding a fresh random token, the script, the token again; the shell
//! answers `TOKEN CODE` on stdout *and* on stderr once the script's process has exited. Each stream
//! keeps its own order, so whatever the step wrote comes before the marker on both; what follows
//! is a background process's and belongs to no step. The step cannot forge the marker: the token
//! is in no environment, file or argument it can read, and is new for every script.

use std::pin::Pin;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::query_parameters::{AttachContainerOptions, WaitContainerOptions};
use futures_util::{Stream, StreamExt};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::container::{Attach, Spec};
use super::docker::{Engine, EngineError};
use super::exec::{self, ExecEnd, ExecOutcome, ExecRequest, OUTPUT_CAP, Tail};

/// The first process of a fed container (see the module's doc). A payload cut short (the
/// client went away) runs nothing. A script runs in a subshell with no input, so neither it nor
/// anything it leaves behind can read the rest of the protocol. No signal ends the shell from
/// inside the container (it is the first process, and traps none): only its input closing does.
const FEED: &str = r#"while IFS= read -r n; do
  s=
  while :; do
    IFS= read -r l || exit 0
    [ "$l" = "$n" ] && break
    s="$s$l
"
  done
  (eval "$s") </dev/null
  r=$?
  echo "$n $r"
  echo "$n $r" >&2
done"#;

/// Ends every process in the container but its first (and the one sending it), as the cleaning of
/// a reused container between scenarios.
const CLEAN: &str = "kill -9 -1 2>/dev/null; exit 0";

/// A fed container of `image`: created with its input open, to be attached ([`attach`]) before
/// it starts.
pub fn spec<'a>(
    name: String,
    image: &'a str,
    labels: std::collections::HashMap<String, String>,
    attach: Attach<'a>,
) -> Spec<'a> {
    let entrypoint = Some(vec!["sh".into(), "-c".into(), FEED.into()]);
    Spec { entrypoint, stdin: true, ..super::container::idle(name, image, labels, attach) }
}

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// The client's end of a fed container.
pub struct Feed {
    /// The container's standard input: closing it ends the container.
    input: Pin<Box<dyn AsyncWrite + Send>>,
    /// Its output, while it waits for a scenario's first step.
    output: Option<Output>,
    /// Once a step has run: what reads (and drops) the output meanwhile, so that background
    /// processes never block on a full pipe; it hands the output back when told to stop.
    drain: Option<(oneshot::Sender<()>, JoinHandle<Option<Output>>)>,
}

/// Attaches to a created container's input and output (before starting it, so nothing is missed).
pub async fn attach(engine: &Engine, container: &str) -> Result<Feed, EngineError> {
    let options =
        AttachContainerOptions { stream: true, stdin: true, stdout: true, stderr: true, ..Default::default() };
    let attached = engine
        .docker
        .attach_container(container, Some(options))
        .await
        .map_err(|e| EngineError::api("attach to a step container", e))?;
    Ok(Feed { input: attached.input, output: Some(attached.output), drain: None })
}

/// What a script's run left on the two streams.
struct Exchange {
    stdout: Marked,
    stderr: Marked,
    timed_out: bool,
}

impl Feed {
    /// Runs `request` in the container if it waits for a scenario's first step and the request
    /// can be written as a script; `None` leaves it to an exec.
    pub async fn run(&mut self, engine: &Engine, request: &ExecRequest<'_>, id: &str) -> Option<ExecOutcome> {
        // Later steps are exec'd: no script is written for them.
        self.output.as_ref()?;
        let script = script(request)?;
        let mut output = self.output.take()?;
        let started = Instant::now();
        let Exchange { stdout, stderr, timed_out } = self.exchange(&mut output, &script, request.timeout).await;
        let end = match (stdout.code, stderr.code) {
            _ if timed_out => {
                exec::give_up(engine, request.container, request.on_timeout).await;
                ExecEnd::TimedOut
            }
            (Some(Some(code)), Some(Some(same))) if code == same => ExecEnd::Exited(code),
            _ => ExecEnd::ContainerStopped { exit_code: exec::stopped_code(engine, request.container).await },
        };
        if matches!(end, ExecEnd::Exited(_)) {
            let (stop, stopped) = oneshot::channel();
            self.drain = Some((stop, tokio::spawn(drain(output, stopped))));
        }
        let (stdout, stderr) = (stdout.finish(), stderr.finish());
        Some(ExecOutcome { end, container_id: Some(id.to_string()), stdout, stderr, duration: started.elapsed() })
    }

    /// Writes `script` and reads both streams up to its markers, at most `timeout`.
    async fn exchange(&mut self, output: &mut Output, script: &str, timeout: Duration) -> Exchange {
        let token = RandomIdGenerator::default().new_trace_id().to_string();
        let mut stdout = Marked::new(&token);
        let mut stderr = Marked::new(&token);
        let input = &mut self.input;
        let run = async {
            // A write that fails means the container is gone: the output then ends unmarked.
            let payload = format!("{token}\n{script}\n{token}\n");
            let _ = async { input.write_all(payload.as_bytes()).await.and(input.flush().await) }.await;
            while stdout.code.is_none() || stderr.code.is_none() {
                match output.next().await {
                    Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => stdout.push(&message),
                    Some(Ok(LogOutput::StdErr { message })) => stderr.push(&message),
                    Some(Ok(LogOutput::StdIn { .. })) => {}
                    Some(Err(_)) | None => break,
                }
            }
        };
        let timed_out = tokio::time::timeout(timeout, run).await.is_err();
        Exchange { stdout, stderr, timed_out }
    }

    /// Readies a reused container for its next scenario: ends every process but its first, and
    /// waits for its first step again. False when that cannot be made sure of.
    pub async fn clean(&mut self) -> bool {
        let output = match self.drain.take() {
            Some((stop, drain)) => {
                let _ = stop.send(());
                drain.await.ok().flatten()
            }
            None => self.output.take(),
        };
        let Some(mut output) = output else { return false };
        let Exchange { stdout, stderr, timed_out } = self.exchange(&mut output, CLEAN, Duration::from_secs(10)).await;
        let cleaned = !timed_out && stdout.code == Some(Some(0)) && stderr.code == Some(Some(0));
        if cleaned {
            self.output = Some(output);
        }
        cleaned
    }

    /// Ends the container by closing its input; true once the engine reports it stopped (or gone).
    /// False at once when a step may still run in it (its run was cancelled midway, or the
    /// container did not answer): the shell reads its input only between steps.
    pub async fn close(mut self, engine: &Engine, container: &str) -> bool {
        if self.output.is_none() && self.drain.is_none() {
            return false;
        }
        let _ = self.input.shutdown().await;
        let options = WaitContainerOptions { condition: "not-running".into() };
        let waited = tokio::time::timeout(
            Duration::from_secs(10),
            engine.docker.wait_container(container, Some(options)).next(),
        )
        .await;
        if let Some((_, drain)) = self.drain.take() {
            drain.abort();
        }
        use bollard::errors::Error;
        // A non-zero exit comes as an error; a container already gone has stopped too.
        matches!(
            waited,
            Ok(Some(
                Ok(_)
                    | Err(Error::DockerContainerWaitError { .. })
                    | Err(Error::DockerResponseServerError { status_code: 404, .. })
            ))
        )
    }
}

/// Reads and drops `output` until told to stop (then hands it back) or it ends.
async fn drain(mut output: Output, mut stop: oneshot::Receiver<()>) -> Option<Output> {
    loop {
        let stopped = tokio::select! {
            _ = &mut stop => true,
            chunk = output.next() => match chunk {
                Some(Ok(_)) => false,
                Some(Err(_)) | None => return None,
            },
        };
        if stopped {
            return Some(output);
        }
    }
}

/// `request` as a script for the container's shell: change to its directory, export its
/// environment, exec its command. `None` when a shell cannot say it exactly (a relative directory,
/// an environment name that is no shell name): that step is exec'd.
fn script(request: &ExecRequest<'_>) -> Option<String> {
    let mut lines = Vec::new();
    if let Some(dir) = &request.workdir {
        if !dir.starts_with('/') {
            return None;
        }
        // As an exec into a missing directory fails: with 126.
        lines.push(format!("cd {} || exit 126", quote(dir)));
    }
    for entry in &request.env {
        let (name, _) = entry.split_once('=')?;
        if !is_shell_name(name) {
            return None;
        }
        lines.push(format!("export {}", quote(entry)));
    }
    if request.argv.is_empty() {
        return None;
    }
    let argv: Vec<String> = request.argv.iter().map(|a| quote(a)).collect();
    lines.push(format!("exec {}", argv.join(" ")));
    Some(lines.join("\n"))
}

/// Single-quoted for a POSIX shell: every byte literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// One output stream of a fed command: its bytes up to the marker, and the code the marker carries.
struct Marked {
    tail: Tail,
    token: Vec<u8>,
    /// Bytes not yet known not to start the marker.
    held: Vec<u8>,
    /// Once the marker has come: the exit code it says (`None` if it says none).
    code: Option<Option<i64>>,
}

impl Marked {
    fn new(token: &str) -> Self {
        Marked { tail: Tail::new(OUTPUT_CAP), token: token.as_bytes().to_vec(), held: Vec::new(), code: None }
    }

    fn push(&mut self, chunk: &[u8]) {
        if self.code.is_some() {
            return;
        }
        self.held.extend_from_slice(chunk);
        if let Some(at) = self.held.windows(self.token.len()).position(|w| w == self.token) {
            let rest = &self.held[at + self.token.len()..];
            if let Some(end) = rest.iter().position(|b| *b == b'\n') {
                let code = std::str::from_utf8(&rest[..end]).ok().and_then(|c| c.trim().parse().ok());
                self.tail.push(&self.held[..at]);
                self.held.clear();
                self.code = Some(code);
            }
            return;
        }
        let keep = self.token.len() - 1;
        if self.held.len() > keep {
            let cut = self.held.len() - keep;
            self.tail.push(&self.held[..cut]);
            self.held.drain(..cut);
        }
    }

    /// What the stream said before its marker (all it said, if the marker never came).
    fn finish(mut self) -> Tail {
        if self.code.is_none() {
            self.tail.push(&self.held);
        }
        self.tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::exec::OnTimeout;

    fn request(argv: &[&str], env: &[&str], workdir: Option<&str>) -> ExecRequest<'static> {
        ExecRequest {
            container: "c",
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: env.iter().map(|s| s.to_string()).collect(),
            workdir: workdir.map(String::from),
            timeout: Duration::from_secs(1),
            on_timeout: OnTimeout::KillContainer,
        }
    }

    #[test]
    fn scripts_quote_every_byte() {
        let r = request(&["sh", "-c", "echo 'it''s'\nexit 3"], &["A_1=x y'z", "TRACEPARENT=00-ab"], Some("/w d"));
        let s = script(&r).unwrap();
        assert_eq!(
            s,
            "cd '/w d' || exit 126\nexport 'A_1=x y'\\''z'\nexport 'TRACEPARENT=00-ab'\nexec 'sh' '-c' 'echo '\\''it'\\'''\\''s'\\''\nexit 3'"
        );
    }

    #[test]
    fn what_a_shell_cannot_say_is_left_to_exec() {
        assert!(script(&request(&["true"], &["A.B=1"], None)).is_none());
        assert!(script(&request(&["true"], &["1A=1"], None)).is_none());
        assert!(script(&request(&["true"], &[], Some("rel"))).is_none());
        assert!(script(&request(&[], &[], None)).is_none());
    }

    #[test]
    fn the_marker_ends_a_stream_wherever_the_chunks_split_it() {
        let token = "0123456789abcdef0123456789abcdef";
        let stream = format!("out\nno newline{token} 42\nafter");
        for split in 0..stream.len() {
            let mut m = Marked::new(token);
            m.push(&stream.as_bytes()[..split]);
            m.push(&stream.as_bytes()[split..]);
            assert_eq!(m.code, Some(Some(42)), "split at {split}");
            assert_eq!(m.finish().text(), "out\nno newline", "split at {split}");
        }
    }

    #[test]
    fn an_unmarked_stream_keeps_everything_and_no_code() {
        let token = "0123456789abcdef0123456789abcdef";
        let mut m = Marked::new(token);
        m.push(b"partial 0123456789abc");
        assert_eq!(m.code, None);
        assert_eq!(m.finish().text(), "partial 0123456789abc");
    }

    #[test]
    fn a_forged_marker_with_another_token_is_output() {
        let mut m = Marked::new("0123456789abcdef0123456789abcdef");
        m.push(b"ffffffffffffffffffffffffffffffff 0\n");
        assert_eq!(m.code, None);
    }
}
