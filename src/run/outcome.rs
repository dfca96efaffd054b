//! What running scenarios produced: the data every report is made from.

use std::time::Duration;

use crate::baseline::show::Tree;
use crate::engine::exec::Tail;
use crate::exit::{Exit, Signal};

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Passed,
    Failed,
    TimedOut,
    NotRun,
}

#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub name: String,
    pub status: StepStatus,
    pub exit_code: Option<i64>,
    pub duration: Duration,
    pub stdout: Tail,
    pub stderr: Tail,
    /// Each expectation that did not hold, in words.
    pub problems: Vec<String>,
}

/// Why a scenario failed: where, what, and the output that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The step (or service) it happened in.
    pub place: String,
    pub message: String,
    /// The tail of the relevant output.
    pub output: String,
}

#[derive(Debug, Clone)]
pub struct ScenarioOutcome {
    pub name: String,
    /// The scenario file, as shown to the user.
    pub file: String,
    pub status: Status,
    pub duration: Duration,
    pub steps: Vec<StepOutcome>,
    pub failure: Option<Failure>,
    /// Spans collected for the scenario (its own and the system under test's).
    pub spans: usize,
    /// How long clnrm waited for spans after the last step (when it had expectations to check).
    pub settle: Option<Duration>,
    /// The comparison with the stored baseline (when the scenario passed).
    pub baseline: Option<BaselineOutcome>,
    /// What the user should know though the verdict does not change: the scenario file's warnings
    /// (`file:line:col: message`), and expectations that held only because they could not fail.
    pub warnings: Vec<String>,
}

/// What comparing a run with its baseline found, and what was written.
#[derive(Debug, Clone)]
pub struct BaselineOutcome {
    /// The baseline file, relative to the project root.
    pub file: String,
    pub action: BaselineAction,
    /// One sentence: what differs, or "no differences".
    pub summary: String,
    /// The differences as a tree, empty when there are none.
    pub tree: Tree,
    /// The differences as JSON (absent without a baseline to compare with).
    pub diff: Option<serde_json::Value>,
    pub broken: Vec<crate::baseline::thresholds::Broken>,
    pub warnings: Vec<String>,
    /// Durations too slow as measured that passed only with the load divided out (no run was as
    /// quiet as the recording) or with their trace's pace divided out: what to say if more runs
    /// do not settle it.
    pub excused: Option<String>,
    /// The blake3 of the baseline file this run wrote (recorded or updated).
    pub written: Option<blake3::Hash>,
}

impl BaselineOutcome {
    /// Whether durations are all that broke: another run may take it back.
    pub fn only_durations(&self) -> bool {
        !self.broken.is_empty() && self.broken.iter().all(|b| b.threshold == "duration")
    }

    /// Why a regression fails: each broken threshold, then the tree of differences. Plain text for
    /// reports; `styled` for the terminal alone.
    pub fn regression(&self, styled: bool) -> String {
        let broken: Vec<String> = self.broken.iter().map(|b| format!("{}: {}", b.threshold, b.message)).collect();
        let tree = if styled { self.tree.styled() } else { self.tree.to_string() };
        format!("{}\n\n{}", broken.join("\n"), tree.trim_end())
    }
}

/// What happened to the baseline files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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
            duration: Duration::ZERO,
            steps: Vec::new(),
            failure: None,
            spans: 0,
            settle: None,
            baseline: None,
            warnings: Vec::new(),
        }
    }
}

/// Everything a finished run produced.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: String,
    /// Every selected scenario, in schedule order (cached and skipped ones included).
    pub outcomes: Vec<ScenarioOutcome>,
    pub pool: Option<crate::engine::pool::Stats>,
    pub elapsed: Duration,
    pub interrupted: Option<Signal>,
    /// Some scenario failed because of the engine rather than a test.
    pub infrastructure: bool,
    /// Resources that could not be removed at the end (they are reported, and swept next start).
    pub leftovers: usize,
    /// What the start-of-run sweep removed of earlier runs whose process is gone.
    pub swept: crate::engine::cleanup::Removed,
    /// Spans that belonged to no scenario.
    pub strays: crate::telemetry::store::Strays,
    /// Export requests that could not be delivered to the user's endpoint.
    pub undelivered: u64,
}

impl RunReport {
    pub fn count(&self, status: Status) -> usize {
        self.outcomes.iter().filter(|o| o.status == status).count()
    }

    /// How the run ended: interrupted before anything else, then an infrastructure failure, then
    /// a failed scenario, then a regression.
    pub fn exit(&self) -> Exit {
        match self.interrupted {
            Some(signal) => Exit::Signalled(signal),
            None if self.infrastructure => Exit::Infrastructure,
            None if self.outcomes.iter().any(|o| o.status.is_failure()) => Exit::Failed,
            None if self.count(Status::Regressed) > 0 => Exit::Regressed,
            None => Exit::Passed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(statuses: &[Status], infrastructure: bool, interrupted: Option<Signal>) -> RunReport {
        RunReport {
            run_id: "r".into(),
            outcomes: statuses.iter().map(|&s| ScenarioOutcome::without_running("s", "s.clnrm.toml", s)).collect(),
            pool: None,
            elapsed: Duration::ZERO,
            interrupted,
            infrastructure,
            leftovers: 0,
            swept: Default::default(),
            strays: Default::default(),
            undelivered: 0,
        }
    }

    /// A signal outranks everything, then the engine, then a failure, then a regression: a run
    /// that regressed and failed is a failure (1), never a mere regression (4).
    #[test]
    fn a_runs_exit_is_its_worst_outcome_in_a_fixed_order() {
        use Status::*;
        assert_eq!(report(&[Pass, Cached], false, None).exit(), Exit::Passed);
        assert_eq!(report(&[Pass, Regressed], false, None).exit(), Exit::Regressed);
        assert_eq!(report(&[Regressed, Fail], false, None).exit(), Exit::Failed);
        assert_eq!(report(&[Regressed, Timeout], false, None).exit(), Exit::Failed);
        assert_eq!(report(&[Fail], true, None).exit(), Exit::Infrastructure);
        assert_eq!(report(&[Fail], true, Some(Signal::Terminate)).exit(), Exit::Signalled(Signal::Terminate));
        assert_eq!(report(&[], false, Some(Signal::Interrupt)).exit().code(), 130);
    }
}
