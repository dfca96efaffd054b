//! Scenario format v1: the types a `*.clnrm.toml` file is read into. Their doc comments are the
//! reference for each key; `read.rs` fills them from the rendered TOML and reports every mistake.
//!
//! Values that later checks point at keep their span in the rendered text ([`Spanned`]).
//! The expectations (`[[expect.span]]`, `[expect.trace]`) are typed in [`crate::expect::model`].

use std::path::PathBuf;
use std::time::Duration;

use crate::baseline::redact::IgnoreAttr;
use crate::baseline::thresholds::Thresholds;
use crate::config::{PullPolicy, Vars};
use crate::expect::model::Expectations;
use crate::schema::Spanned;

/// One scenario file.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// `[scenario] name`: unique in the project; defaults to the file stem (`checkout` for
    /// `checkout.clnrm.toml`). Span is `None` when defaulted.
    pub name: String,
    pub name_span: Option<std::ops::Range<usize>>,
    /// `[scenario] description`: free text shown in reports.
    pub description: Option<String>,
    /// `[scenario] tags`: for `clnrm run --tag`.
    pub tags: Vec<String>,
    /// `[scenario] timeout`: limit for the whole scenario; default `[defaults] timeout`.
    pub timeout: Option<Duration>,
    /// `[scenario] reuse`: let steps reuse pooled containers (faster, less hermetic); default `[pool] reuse`.
    pub reuse: Option<bool>,
    /// `[vars]`: literal TOML read before rendering; lowest precedence but for config `[vars]`.
    pub vars: Vars,
    /// `[services.NAME]`, in file order.
    pub services: Vec<Service>,
    /// `[[steps]]`, run in order.
    pub steps: Vec<Step>,
    /// `[[expect.span]]` and `[expect.trace]`.
    pub expect: Expectations,
    /// `[baseline]`.
    pub baseline: BaselineSettings,
}

/// Where a container's image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageSource {
    /// `image = "name:tag"`: from the engine, pulled per the pull policy.
    Image(String),
    /// `build = "dir"`: a directory with a Dockerfile, relative to the scenario file; built through
    /// the engine and tagged by the hash of its contents.
    Build(PathBuf),
}

/// What a container or step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// An array: passed as argv exactly, never re-split.
    Argv(Vec<String>),
    /// A string: run as `sh -c "<string>"`.
    Shell(String),
}

impl Command {
    /// What an exec runs: an array exactly as given, a string through `sh -c`.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Command::Argv(argv) => argv.clone(),
            Command::Shell(line) => vec!["sh".into(), "-c".into(), line.clone()],
        }
    }
}

/// `[services.NAME]`: a long-running container started before the steps, reachable by its name on
/// the scenario's private network.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: Spanned<String>,
    /// Exactly one of `image` or `build`.
    pub image: ImageSource,
    /// `pull`: default `[defaults] pull`.
    pub pull: Option<PullPolicy>,
    /// `command`: replaces the image's command (array = argv, string = `sh -c`).
    pub command: Option<Command>,
    /// `env`: extra environment variables.
    pub env: Vec<(String, String)>,
    /// `ports`: container ports the service listens on (used by `port` and `http` waits).
    pub ports: Vec<Spanned<u16>>,
    /// `wait`: how to tell the service is ready; without it, ready once started.
    pub wait: Option<Wait>,
    /// `depends_on`: services to start (and wait for) first.
    pub depends_on: Vec<Spanned<String>>,
    /// `workdir`: working directory inside the container.
    pub workdir: Option<String>,
}

/// `wait = { <strategy>, timeout = "10s", interval = "100ms" }`.
#[derive(Debug, Clone)]
pub struct Wait {
    pub strategy: Spanned<WaitStrategy>,
    /// `timeout`: give up after this long; default `[defaults] wait_timeout`.
    pub timeout: Option<Duration>,
    /// `interval`: time between probes for `port`, `http` and `exec`; default 100ms.
    pub interval: Option<Duration>,
}

/// Exactly one readiness strategy.
#[derive(Debug, Clone)]
pub enum WaitStrategy {
    /// `log = "regex"`: a line of the container's output matches.
    Log(regex::Regex),
    /// `port = 8080`: a TCP connection to this port succeeds (must be in `ports`).
    Port(u16),
    /// `http = { port = 8080, path = "/health" }`: GET returns a 2xx status (port must be in `ports`).
    Http { port: u16, path: String },
    /// `exec = ["argv"]` or `"shell"`: this command exits 0 inside the container.
    Exec(Command),
    /// `healthy = true`: the image's own HEALTHCHECK reports healthy.
    Healthy,
}

/// `[[steps]]`: one command, run in order.
#[derive(Debug, Clone)]
pub struct Step {
    /// `name`: unique within the scenario.
    pub name: Spanned<String>,
    /// Where it runs: `image` (the scenario's step container for that image) or `service`.
    pub target: StepTarget,
    /// `run`: array = argv exactly; string = `sh -c`.
    pub run: Spanned<Command>,
    /// `env`: extra environment variables for this step.
    pub env: Vec<(String, String)>,
    /// `workdir`: working directory for this step.
    pub workdir: Option<String>,
    /// `timeout`: default `[defaults] step_timeout`.
    pub timeout: Option<Duration>,
    /// `continue_on_failure`: a failing step does not stop the scenario (the scenario still fails).
    pub continue_on_failure: bool,
    /// `expect = { exit, stdout, stderr }`.
    pub expect: StepExpect,
}

/// Where a step runs.
#[derive(Debug, Clone)]
pub enum StepTarget {
    /// `image` / `build` (or `[defaults] image` when the step names neither): the scenario's step
    /// container for that image, shared by its steps so files carry over.
    Container { image: ImageSource, pull: Option<PullPolicy> },
    /// `service = "name"`: exec inside that service's container.
    Service(Spanned<String>),
}

impl Step {
    /// The image of the step container it runs in (none for a step in a service): what every
    /// walk from steps to images (needs, the pool's demand, leases, watch's build directories)
    /// asks.
    pub fn image(&self) -> Option<&ImageSource> {
        match &self.target {
            StepTarget::Container { image, .. } => Some(image),
            StepTarget::Service(_) => None,
        }
    }
}

/// `expect` of a step.
#[derive(Debug, Clone)]
pub struct StepExpect {
    /// `exit`: the expected exit code; default 0.
    pub exit: i32,
    /// `stdout` (a regex) or `stdout_empty = true`.
    pub stdout: Option<OutputExpect>,
    /// `stderr` (a regex) or `stderr_empty = true`.
    pub stderr: Option<OutputExpect>,
}

/// What one output stream of a step must be.
#[derive(Debug, Clone)]
pub enum OutputExpect {
    /// `stdout = 'regex'`: the output matches the regex somewhere (multi-line mode).
    Matches(regex::Regex),
    /// `stdout_empty = true`: the stream had no byte at all. A regex cannot say this reliably: in
    /// multi-line mode `^$` matches the empty line after any final newline.
    Empty,
}

/// `[baseline]`: how this scenario's trace is compared with its stored baseline.
#[derive(Debug, Clone, Default)]
pub struct BaselineSettings {
    /// `ignore_attrs`: attributes redacted before storing and comparing, besides the config's.
    pub ignore_attrs: Vec<IgnoreAttr>,
    /// `thresholds`: overrides of the config `[thresholds]`, key by key.
    pub thresholds: Thresholds,
}
