//! The run record: everything one run found, as data (README, "The run record"). Every `clnrm run`
//! and every run inside `watch` writes one to `.clnrm/runs/<run-id>.json` ([`files`]); the
//! terminal summary, `--report json=` and `--report junit=` are rendered from it, and
//! `clnrm report` renders them again from a stored one.
//!
//! Readers check [`VERSION`]: a record of a newer format is refused with a message saying so,
//! never half-read.

pub mod files;
pub mod outcome;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::engine::cleanup::Removed;
use crate::engine::pool;
use crate::exit::{Exit, Signal};
use crate::telemetry::store::Strays;
use outcome::{ScenarioOutcome, Status};

/// When the process started, as near as it can be told: `main` forces it first thing.
pub static PROCESS_STARTED: std::sync::LazyLock<std::time::Instant> = std::sync::LazyLock::new(std::time::Instant::now);

/// The record's format. A reader accepts this one and every older one it knows.
pub const VERSION: u32 = 1;

/// One run, complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub run: RunInfo,
    /// Every selected scenario, in the order they finished (cached and skipped ones included).
    pub scenarios: Vec<ScenarioOutcome>,
}

/// The run as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run id, as the engine's resources are labelled.
    pub id: String,
    pub clnrm_version: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub ended_at: String,
    #[serde(rename = "duration_ms", with = "crate::duration::millis")]
    pub elapsed: Duration,
    /// The process's exit code for this run (as [`Record::exit`] decides it).
    pub exit_code: u8,
    pub selection: Selection,
    /// blake3 over the selected scenarios' names and cache keys: equal fingerprints, equal inputs.
    pub fingerprint: String,
    /// The Docker engine's version, when it said.
    pub engine: Option<String>,
    /// The project's git commit, when it is in a git repository.
    pub git: Option<Git>,
    /// The warm pool's figures (none when no scenario needed step containers).
    pub pool: Option<pool::Stats>,
    /// From the process's start (in `watch`, the batch's) to the first step's exec: what a run
    /// costs before it tests anything. None when no step ran; absent from older records.
    #[serde(rename = "first_exec_ms", with = "crate::duration::millis::option", default)]
    pub first_exec: Option<Duration>,
    /// The signal that stopped the run.
    pub interrupted: Option<Signal>,
    /// Some scenario failed because of the engine rather than a test.
    pub infrastructure: bool,
    /// What stopped the run before its scenarios could run (engine unreachable, an image missing).
    pub error: Option<String>,
    /// Resources that could not be removed at the end (they are reported, and swept next start).
    pub leftovers: usize,
    /// What the start-of-run sweep removed of earlier runs whose process is gone.
    pub swept: Removed,
    /// Spans that belonged to no scenario.
    pub strays: Strays,
    /// Export requests that could not be delivered to the user's endpoint.
    pub undelivered: u64,
}

/// What was asked to run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Paths given on the command line (none: the project's `[run] scenarios`).
    pub paths: Vec<String>,
    /// `--filter`.
    pub filter: Option<String>,
    /// `--tag`.
    pub tags: Vec<String>,
    /// `--shard K/N`.
    pub shard: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Git {
    pub commit: String,
    /// Files differed from the commit (tracked changes or untracked files).
    pub dirty: bool,
}

impl Git {
    /// The commit `dir` is at, when it is in a git repository and git is installed. Blocking:
    /// run it off the async threads.
    pub fn of(dir: &std::path::Path) -> Option<Git> {
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        let commit = git(&["rev-parse", "HEAD"])?;
        let dirty = !git(&["status", "--porcelain"])?.is_empty();
        Some(Git { commit, dirty })
    }
}

impl Record {
    /// The record of a run that `error` stopped before its scenarios could run.
    pub fn failed(mut self, error: &impl std::fmt::Display) -> Record {
        self.run.error = Some(error.to_string());
        self.run.infrastructure = true;
        self.run.exit_code = self.exit().code();
        self
    }

    pub fn count(&self, status: Status) -> usize {
        self.scenarios.iter().filter(|o| o.status == status).count()
    }

    /// How the run ended: interrupted before anything else, then an infrastructure failure, then
    /// a failed scenario, then a regression.
    pub fn exit(&self) -> Exit {
        match self.run.interrupted {
            Some(signal) => Exit::Signalled(signal),
            None if self.run.infrastructure => Exit::Infrastructure,
            None if self.scenarios.iter().any(|o| o.status.is_failure()) => Exit::Failed,
            None if self.count(Status::Regressed) > 0 => Exit::Regressed,
            None => Exit::Passed,
        }
    }
}

/// `time` as RFC 3339 in UTC with milliseconds: `2026-12-02T13:30:47.123Z`.
pub fn timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (days, rest) = ((since.as_secs() / 86_400) as i64, since.as_secs() % 86_400);
    // Days to a civil date (Howard Hinnant's algorithm, for the proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record(statuses: &[Status], infrastructure: bool, interrupted: Option<Signal>) -> Record {
        Record {
            version: VERSION,
            run: RunInfo {
                id: "r".into(),
                clnrm_version: "0".into(),
                started_at: String::new(),
                ended_at: String::new(),
                elapsed: Duration::ZERO,
                exit_code: 0,
                selection: Selection::default(),
                fingerprint: String::new(),
                engine: None,
                git: None,
                pool: None,
                first_exec: Some(Duration::from_micros(412_345)),
                interrupted,
                infrastructure,
                error: None,
                leftovers: 0,
                swept: Default::default(),
                strays: Default::default(),
                undelivered: 0,
            },
            scenarios: statuses.iter().map(|&s| ScenarioOutcome::without_running("s", "s.clnrm.toml", s)).collect(),
        }
    }

    /// A signal outranks everything, then the engine, then a failure, then a regression: a run
    /// that regressed and failed is a failure (1), never a mere regression (4).
    #[test]
    fn a_runs_exit_is_its_worst_outcome_in_a_fixed_order() {
        use Status::*;
        assert_eq!(record(&[Pass, Cached], false, None).exit(), Exit::Passed);
        assert_eq!(record(&[Pass, Regressed], false, None).exit(), Exit::Regressed);
        assert_eq!(record(&[Regressed, Fail], false, None).exit(), Exit::Failed);
        assert_eq!(record(&[Regressed, Timeout], false, None).exit(), Exit::Failed);
        assert_eq!(record(&[Fail], true, None).exit(), Exit::Infrastructure);
        assert_eq!(record(&[Fail], true, Some(Signal::Terminate)).exit(), Exit::Signalled(Signal::Terminate));
        assert_eq!(record(&[], false, Some(Signal::Interrupt)).exit().code(), 130);
    }

    #[test]
    fn timestamps_are_rfc3339_in_utc() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_796_218_247_123);
        assert_eq!(timestamp(t), "2026-12-02T13:30:47.123Z");
        // A leap day.
        assert_eq!(timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
    }
}
