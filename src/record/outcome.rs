//! What running scenarios produced, as data: what the run record holds and every report is
//! rendered from. Nothing here is styled or laid out for display.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::baseline::changes::Differences;
use crate::baseline::thresholds::{Broken, Judged};
use crate::engine::exec::Tail;
use crate::expect::check::Checked;
use crate::telemetry::span::Span;

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Timeout,
    /// Steps and expectations held, but the diff against the baseline broke a threshold.
    Regressed,
    /// Unchanged since a passing run: not run again.
    Cached,
    /// Not started: `--fail-fast` stopped scheduling, or the run was interrupted.
    Skipped,
    /// Running when a signal stopped the run: it has no verdict.
    Interrupted,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Timeout => "TIMEOUT",
            Status::Regressed => "REGRESS",
            Status::Cached => "CACHED",
            Status::Skipped => "SKIP",
            Status::Interrupted => "STOPPED",
        }
    }

    pub fn is_failure(self) -> bool {
        matches!(self, Status::Fail | Status::Timeout)
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Passed,
    Failed,
    TimedOut,
    NotRun,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub name: String,
    /// Where it ran.
    pub target: Target,
    /// What it ran: a string command as `sh -c` and the string.
    pub argv: Vec<String>,
    pub status: StepStatus,
    pub exit_code: Option<i64>,
    #[serde(rename = "duration_ms", with = "crate::duration::millis")]
    pub duration: Duration,
    pub stdout: Tail,
    pub stderr: Tail,
    /// Each expectation that did not hold, in words.
    pub problems: Vec<String>,
}

/// Where a step ran: a step container of an image, or a service's container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Image(String),
    Service(String),
}

/// A service of the scenario as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceOutcome {
    pub name: String,
    pub image: String,
    pub container: String,
    /// How its readiness was waited for (none when it has no `wait`).
    pub wait: Option<String>,
    /// How long it took to be ready, when it was.
    #[serde(rename = "ready_ms", with = "crate::duration::millis::option")]
    pub ready: Option<Duration>,
    /// How it ended, when it stopped during the scenario.
    pub exit: Option<ServiceExit>,
}

/// A service that stopped during its scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceExit {
    /// Its exit code, when the engine knows one.
    pub code: Option<i64>,
    /// When, from the scenario's start.
    #[serde(rename = "at_ms", with = "crate::duration::millis")]
    pub at: Duration,
}

/// Why a scenario failed: where, what, and the output that explains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The step (or service) it happened in.
    pub place: String,
    pub message: String,
    /// The tail of the relevant output.
    pub output: String,
}

/// Why a scenario runs, or that it does not: the `clnrm.cache` attribute of its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheStatus {
    /// Unchanged since a pass: skipped.
    Hit,
    /// Unchanged since a pass, run for `--force`.
    Forced,
    /// Unchanged, but its last run failed.
    Rerun,
    /// Never run, or something it depends on changed.
    Miss,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Forced => "forced",
            CacheStatus::Rerun => "rerun",
            CacheStatus::Miss => "miss",
        }
    }
}

/// One span of a scenario's trace, and whether clnrm made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceSpan {
    #[serde(flatten)]
    pub span: Span,
    /// clnrm's own span (scenario, service start and wait, step), not the system's.
    #[serde(default)]
    pub own: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioOutcome {
    pub name: String,
    /// The scenario file, as shown to the user.
    pub file: String,
    pub status: Status,
    /// Whether it ran and why (none when it was not looked up: skipped, interrupted).
    pub cache: Option<CacheStatus>,
    /// How long it ran (all its runs).
    #[serde(rename = "duration_ms", with = "crate::duration::millis")]
    pub duration: Duration,
    /// Runs it took: `--repeat`, and the runs that confirmed a duration regression.
    pub runs: usize,
    pub services: Vec<ServiceOutcome>,
    pub steps: Vec<StepOutcome>,
    pub failure: Option<Failure>,
    /// The trace of its last run: its own spans and the system under test's.
    pub trace: Vec<TraceSpan>,
    /// How long clnrm waited for spans after the last step: for every scenario whose steps passed,
    /// whose trace is checked and compared whole (none when a step failed).
    #[serde(rename = "settle_ms", with = "crate::duration::millis::option")]
    pub settle: Option<Duration>,
    /// Each expectation, as checked against the trace (none when it did not get that far).
    pub expectations: Vec<Checked>,
    /// The comparison with the stored baseline (when the scenario passed).
    pub baseline: Option<BaselineOutcome>,
    /// What the user should know though the verdict does not change: the scenario file's warnings
    /// (`file:line:col: message`), and expectations that held only because they could not fail.
    pub warnings: Vec<String>,
}

/// What comparing a run with its baseline found, and what was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineOutcome {
    /// The baseline file, relative to the project root.
    pub file: String,
    pub action: BaselineAction,
    /// Spans in the run's normalized trace.
    pub spans: usize,
    /// The differences from the stored baseline (none without one to compare with).
    pub diff: Option<Differences>,
    /// When the differences are a later run's (`--repeat`) rather than the first run's: that run,
    /// of how many, and what it was compared with.
    pub later_run: Option<LaterRun>,
    /// Every threshold applied, with its limit and what it found.
    pub thresholds: Vec<Judged>,
    pub broken: Vec<Broken>,
    pub warnings: Vec<String>,
    /// Durations too slow as measured that passed only with the load divided out (no run was as
    /// quiet as the recording) or with their trace's pace divided out: what to say if more runs
    /// do not settle it.
    pub excused: Option<String>,
    /// The blake3 of the baseline file this run wrote (recorded or updated), in hex.
    pub written: Option<String>,
}

/// A later run of `--repeat` that broke a threshold on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaterRun {
    pub run: usize,
    pub runs: usize,
    /// `the baseline`, or `run 1` when there was none.
    pub against: String,
}

impl LaterRun {
    /// `run 2 of 3 against the baseline`.
    pub fn describe(&self) -> String {
        format!("run {} of {} against {}", self.run, self.runs, self.against)
    }
}

impl BaselineOutcome {
    /// The hash of the baseline file this run wrote, as cache keys take it.
    pub fn written_hash(&self) -> Option<blake3::Hash> {
        self.written.as_deref().and_then(|hex| blake3::Hash::from_hex(hex).ok())
    }

    /// Whether durations are all that broke: another run may take it back.
    pub fn only_durations(&self) -> bool {
        !self.broken.is_empty() && self.broken.iter().all(|b| b.threshold == "duration")
    }
}

/// What happened to the baseline files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineAction {
    /// The run matches its baseline (durations within the thresholds); nothing written.
    Unchanged,
    /// There was no baseline; it was written (`--update-baselines`).
    Recorded,
    /// The run differed; the baseline was rewritten (`--update-baselines`).
    Updated,
    /// A pending `.new` file was written for review.
    Pending,
    /// There is no baseline and nothing was written (CI, or `CLNRM_UPDATE=no`).
    Missing,
    /// The run differs and nothing was written (CI, or `CLNRM_UPDATE=no`).
    Differs,
}

impl ScenarioOutcome {
    pub fn without_running(name: &str, file: &str, status: Status) -> Self {
        Self {
            name: name.into(),
            file: file.into(),
            status,
            cache: None,
            duration: Duration::ZERO,
            runs: 0,
            services: Vec::new(),
            steps: Vec::new(),
            failure: None,
            trace: Vec::new(),
            settle: None,
            expectations: Vec::new(),
            baseline: None,
            warnings: Vec::new(),
        }
    }
}
