//! Test harness: the real `clnrm` binary in a temporary project with a scrubbed environment.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as OtlpSpan};

pub struct Project {
    dir: tempfile::TempDir,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Project {
    /// An empty directory.
    pub fn empty() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// A project made by `clnrm init`.
    pub fn init() -> Self {
        let project = Self::empty();
        project.clnrm(&["init"]).success();
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn write(&self, relative: &str, content: impl AsRef<[u8]>) -> &Self {
        let path = self.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.join(relative)).unwrap()
    }

    pub fn clnrm(&self, args: &[&str]) -> Output {
        self.clnrm_env(args, &[])
    }

    /// Runs clnrm with only the given environment (plus PATH and HOME): nothing from the test
    /// runner (`CI`, `CLNRM_*`, `OTEL_*`, `TRACEPARENT`) leaks in.
    pub fn clnrm_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Output::of(self.command(args).envs(env.iter().copied()).output().expect("run clnrm"))
    }

    /// [`Project::clnrm`] started in `dir`, a directory of the project.
    pub fn clnrm_in(&self, dir: &str, args: &[&str]) -> Output {
        Output::of(self.command(args).current_dir(self.join(dir)).output().expect("run clnrm"))
    }

    /// The clnrm binary with `args`, in this project, with only PATH, HOME and DOCKER_HOST set.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_clnrm"));
        command
            .args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .envs(std::env::var_os("DOCKER_HOST").map(|h| ("DOCKER_HOST", h)));
        command
    }

    /// Runs clnrm on a pseudo-terminal (script(1) gives it one) with the scrubbed environment of
    /// [`Project::clnrm_env`] and `TERM=term` (`dumb`: no colour), typing `input`. stdout holds
    /// what the terminal showed (stderr too).
    pub fn clnrm_on_terminal(&self, args: &[&str], term: &str, input: &[u8]) -> Output {
        use std::io::Write;
        let command = std::iter::once(env!("CARGO_BIN_EXE_clnrm")).chain(args.iter().copied()).collect::<Vec<_>>();
        let out = Command::new("script")
            .args(["-qec", &command.join(" "), "/dev/null"])
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("TERM", term)
            .envs(std::env::var_os("DOCKER_HOST").map(|h| ("DOCKER_HOST", h)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().unwrap().write_all(input)?;
                child.wait_with_output()
            })
            .expect("run script");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::new(),
        }
    }
}

impl Project {
    /// Starts clnrm in the background with a scrubbed environment (see [`Project::clnrm_env`]).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn clnrm")
    }

    /// Names of this project's running containers whose name contains `part`.
    pub fn running(&self, part: &str) -> Vec<String> {
        let label = format!("label=clnrm.project={}", self.path().display());
        let out = Command::new("docker").args(["ps", "--filter", &label, "--format", "{{.Names}}"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().filter(|n| n.contains(part)).map(str::to_string).collect()
    }
}

/// Waits for a clnrm started with [`Project::spawn`] to exit.
pub fn finish(child: Child) -> Output {
    Output::of(child.wait_with_output().unwrap())
}

/// Sends signal `name` (`INT`, `TERM`, …) to a clnrm started with [`Project::spawn`].
pub fn signal(child: &Child, name: &str) {
    Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
}

impl Output {
    /// What a finished clnrm printed and its exit code; failing the test if it panicked.
    fn of(out: std::process::Output) -> Output {
        let output = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(!output.stderr.contains("panicked"), "clnrm panicked:\n{}", output.stderr);
        output
    }

    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    pub fn success(&self) -> &Self {
        self.code(0)
    }

    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn stdout_lacks(&self, needle: &str) -> &Self {
        assert!(!self.stdout.contains(needle), "stdout has {needle:?}\n--- stdout\n{}", self.stdout);
        self
    }

    /// Exit 0, or 6 when the selection was empty (e.g. a shard with no scenario).
    pub fn success_or_6(&self) -> &Self {
        assert!(
            matches!(self.code, 0 | 6),
            "exit code {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}\n--- stderr\n{}", self.stderr);
        self
    }

    pub fn stderr_lacks(&self, needle: &str) -> &Self {
        assert!(!self.stderr.contains(needle), "stderr has {needle:?}\n--- stderr\n{}", self.stderr);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// A minimal valid scenario.
pub fn scenario(name: &str) -> String {
    format!("[scenario]\nname = \"{name}\"\n\n[[steps]]\nname = \"s\"\nimage = \"busybox\"\nrun = [\"true\"]\n")
}

/// Whether tests that need the engine can run. With `CI` set a missing engine is a failure, never a skip.
pub fn engine_available() -> bool {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY.get_or_init(|| {
        let info = Command::new("docker").arg("info").output();
        let up = info.as_ref().is_ok_and(|o| o.status.success());
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        let said = match &info {
            Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
            Err(e) => e.to_string(),
        };
        assert!(
            up || !ci,
            "CI is set but the Docker engine is not reachable (./scripts/engine starts it); docker info: {said}"
        );
        if !up {
            eprintln!("skipping: no Docker engine (set CI to make this an error)");
            return false;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fixtures");
        let built = Command::new(&script).output().expect("run scripts/fixtures");
        assert!(built.status.success(), "building fixtures failed: {}", String::from_utf8_lossy(&built.stderr));
        true
    })
}

impl Project {
    /// Containers and networks the engine still holds for this project.
    pub fn leftovers(&self) -> (Vec<String>, Vec<String>) {
        let label = format!("label=clnrm.project={}", self.path().display());
        let list = |args: &[&str]| {
            let out = Command::new("docker").args(args).output().expect("docker");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
        };
        (
            list(&["ps", "-a", "--filter", &label, "--format", "{{.Names}}"]),
            list(&["network", "ls", "--filter", &label, "--format", "{{.Name}}"]),
        )
    }

    pub fn assert_clean(&self) {
        let (containers, networks) = self.leftovers();
        assert!(containers.is_empty() && networks.is_empty(), "left behind: {containers:?} {networks:?}");
    }

    /// Writes `scenarios/<name>.clnrm.toml` with a `[scenario]` header and `body`.
    pub fn scenario(&self, name: &str, body: &str) -> &Self {
        self.write(&format!("scenarios/{name}.clnrm.toml"), format!("[scenario]\nname = \"{name}\"\n\n{body}"))
    }

    /// A project whose steps default to the local fixture image and never pull.
    pub fn with_fixture() -> Self {
        let project = Self::empty();
        project.write(".clnrm/config.toml", "[defaults]\nimage = \"clnrm-fixture:busybox\"\npull = \"never\"\n");
        project
    }
}

/// An OTLP export request with one span per name in trace `trace` (ids 1, 2, …; starts 0, 1, …).
pub fn otlp_request(trace: u8, names: &[&str]) -> ExportTraceServiceRequest {
    let spans = names
        .iter()
        .enumerate()
        .map(|(i, n)| OtlpSpan {
            trace_id: vec![trace; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: n.to_string(),
            start_time_unix_nano: i as u64,
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// A running `clnrm collect`, killed if a test fails before stopping it.
pub struct Collector {
    child: Option<Child>,
    pub port: u16,
    /// What it prints on stderr after the line with its port.
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Project {
    /// Starts `clnrm collect` on a free loopback port, appending to `out` in the project.
    pub fn collect(&self, out: &str) -> Collector {
        self.collect_with(out, &[])
    }

    /// [`Project::collect`] with more options.
    pub fn collect_with(&self, out: &str, args: &[&str]) -> Collector {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clnrm"))
            .args(["collect", "--listen", "127.0.0.1:0", "--out", out])
            .args(args)
            .current_dir(self.path())
            .env_clear()
            .stderr(Stdio::piped())
            .spawn()
            .expect("start clnrm collect");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        // Keep reading, so that what collect prints later never meets a closed pipe.
        let rest = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
            rest
        });
        let port = line
            .split("listening on 127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok());
        Collector {
            child: Some(child),
            port: port.unwrap_or_else(|| panic!("no port in {line:?}")),
            stderr: Some(rest),
        }
    }

    /// The traces a `clnrm collect` wrote to `out`, one JSON object per line.
    pub fn traces(&self, out: &str) -> Vec<serde_json::Value> {
        self.read(out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

impl Collector {
    /// Stops it as Ctrl-C does (it writes what it holds), checks that it exits 0, and returns what
    /// it printed on stderr after its port.
    pub fn stop(mut self) -> String {
        let mut child = self.child.take().unwrap();
        Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        let status = child.wait().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(status.success(), "collect exits 0 on Ctrl-C; stderr:\n{stderr}");
        stderr
    }

    /// Waits (10 s at most) for it to stop by itself: its exit code and what it printed on stderr.
    pub fn exited(mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("collect still runs after 10 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        (status.code(), self.stderr.take().unwrap().join().unwrap())
    }

    /// Posts an export request over OTLP/HTTP protobuf; the response's status line.
    pub async fn post(&self, request: &ExportTraceServiceRequest) -> String {
        use prost::Message;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = request.encode_to_vec();
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response.lines().next().unwrap_or_default().to_string()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running `clnrm watch`, read as it writes (stdout and stderr together). Stopped with SIGINT
/// if a test fails before stopping it, so that it removes what it made.
pub struct Watch {
    child: Option<Child>,
    output: std::sync::Arc<std::sync::Mutex<String>>,
    stdin: Option<std::process::ChildStdin>,
}

impl Project {
    /// Starts `clnrm watch ARGS` with a scrubbed environment; on a pseudo-terminal (through
    /// script(1)) when `terminal`, so that keys are read.
    pub fn watch(&self, args: &[&str], terminal: bool) -> Watch {
        let binary = env!("CARGO_BIN_EXE_clnrm");
        let mut command = if terminal {
            let line = std::iter::once(format!("{binary} watch")).chain(args.iter().map(|a| a.to_string()));
            let mut c = Command::new("script");
            c.args(["-qefc", &line.collect::<Vec<_>>().join(" "), "/dev/null"]);
            c
        } else {
            let mut c = Command::new(binary);
            c.arg("watch").args(args);
            c
        };
        let mut child = command
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("TERM", "dumb")
            .envs(std::env::var_os("DOCKER_HOST").map(|h| ("DOCKER_HOST", h)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start clnrm watch");
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let pipes: [Box<dyn std::io::Read + Send>; 2] =
            [Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
        for pipe in pipes {
            let output = std::sync::Arc::clone(&output);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(pipe);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    output.lock().unwrap().push_str(&line);
                    line.clear();
                }
            });
        }
        let stdin = child.stdin.take();
        Watch { child: Some(child), output, stdin }
    }
}

impl Watch {
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until `needle` has appeared `times` times in all, failing with the output so far.
    pub fn wait_for(&self, needle: &str, times: usize, within: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let output = self.output();
            if output.matches(needle).count() >= times {
                return output;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited {within:?} for {needle:?} ×{times}; output:\n{output}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Types a key (only read on a terminal).
    pub fn press(&mut self, key: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin.write_all(key.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Sends SIGINT (as Ctrl-C does) and returns the exit code.
    pub fn interrupt(mut self) -> i32 {
        let mut child = self.child.take().unwrap();
        Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        child.wait().unwrap().code().unwrap_or(-1)
    }

    /// Waits for it to exit by itself (after `q`); its exit code.
    pub fn wait(mut self) -> i32 {
        let mut child = self.child.take().unwrap();
        child.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }
}
