//! After a scenario passed: compare its trace with the stored baseline, gate on the thresholds,
//! and write what the update policy allows (a pending `.new`, the baseline itself, or nothing).

use crate::baseline::changes::Differences;
use crate::baseline::diff::diff;
use crate::baseline::files::{self, Baselines, Update};
use crate::baseline::normalize::{Baseline, Recorded, normalize};
use crate::baseline::redact::{IgnoreAttr, Redaction};
use crate::baseline::store;
use crate::baseline::thresholds::Thresholds;
use crate::baseline::thresholds::{Broken, Gate, Limits, Slower, gate, load};
use crate::scenario::model::Scenario;
use crate::telemetry::peers::Peers;
use crate::telemetry::span::Span;

use crate::record::outcome::{BaselineAction, BaselineOutcome, Failure, LaterRun, ScenarioOutcome, Status};

/// What stays fixed for comparisons in one run.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub baselines: Baselines,
    pub update: Update,
    /// The config's `[thresholds]`.
    pub thresholds: Thresholds,
    /// The config's `[baseline] ignore_attrs`.
    pub ignore_attrs: Vec<IgnoreAttr>,
    /// A scenario without a baseline fails (CI), rather than passing with a note.
    pub require_baselines: bool,
}

/// One run of a scenario as compared: its trace, and the peers the trace may name (whose
/// addresses its baseline writes as their names).
pub struct Traced {
    pub spans: Vec<Span>,
    pub peers: Peers,
}

impl Comparison {
    /// Comparisons with `project`'s baselines under its config, writing as `update` allows; under
    /// `ci` a scenario without a baseline fails.
    pub fn new(project: &crate::project::Project, update: Update, ci: bool) -> Comparison {
        let config = &project.config;
        Comparison {
            baselines: Baselines::new(&project.root),
            update,
            thresholds: config.thresholds.clone(),
            ignore_attrs: config.baseline.ignore_attrs.clone(),
            require_baselines: ci,
        }
    }

    /// How many runs in all a duration regression of `scenario` must show in before it counts.
    pub fn duration_runs(&self, scenario: &Scenario) -> usize {
        Limits::resolve(&self.thresholds, &scenario.baseline.thresholds).duration_runs as usize
    }

    /// Compares a passed scenario's `runs` (one trace per `--repeat`) with `stored` and records
    /// the result in `outcome`: a broken threshold makes it [`Status::Regressed`], a missing
    /// baseline under CI makes it fail with how to record one.
    pub fn judge(
        &self,
        scenario: &Scenario,
        stored: Option<&Baseline>,
        runs: &[Traced],
        outcome: &mut ScenarioOutcome,
    ) {
        if outcome.status != Status::Pass {
            return;
        }
        let ignores = [self.ignore_attrs.as_slice(), scenario.baseline.ignore_attrs.as_slice()];
        let traces: Vec<Recorded> = runs
            .iter()
            .map(|run| Recorded {
                spans: &run.spans,
                redaction: Redaction { ignores, peers: &run.peers },
                load: stored.map_or(1.0, |old| load(old, &run.spans)),
            })
            .collect();
        // The spans of the first run, with durations over all of them.
        let current = normalize(&scenario.name, &traces);
        let limits = Limits::resolve(&self.thresholds, &scenario.baseline.thresholds);
        let file = files::shown(&scenario.name);
        let mut result = BaselineOutcome {
            file: file.clone(),
            action: BaselineAction::Unchanged,
            spans: current.spans.len(),
            diff: None,
            later_run: None,
            thresholds: Vec::new(),
            broken: Vec::new(),
            warnings: Vec::new(),
            excused: None,
            written: None,
        };
        let (differs, verdict) = match stored {
            None => (true, Gate::default()),
            Some(old) => {
                let d = diff(old, &current);
                // The runs judged as measured, one by one: what the trace's pace is taken from.
                let quiet = || {
                    let quiet = traces.iter().filter(|t| t.load <= 1.0);
                    quiet.map(|t| normalize(&scenario.name, std::slice::from_ref(t))).collect()
                };
                let verdict = gate(old, &current, &d, &limits, quiet);
                result.diff = Some(Differences::of(old, &current, &d, &verdict.slower));
                let rerecorded = self.update == Update::Always && old.runs != current.runs;
                (!d.is_same_shape() || !verdict.passed() || rerecorded, verdict)
            }
        };
        result.excused = excused(&current, &verdict, &traces);
        result.warnings = verdict.warnings;
        result.broken = verdict.broken;
        result.thresholds = verdict.judged;
        // Re-recording (`--update-baselines`) replaces the stored baseline: later runs must agree
        // with the first, not with what is being replaced.
        let reference = stored.filter(|_| self.update != Update::Always);
        let unstable = later_run_differs(scenario, reference, &traces, &limits);
        if let Some(unstable) = &unstable {
            if result.broken.is_empty() {
                result.diff = Some(unstable.diff.clone());
                result.later_run = Some(unstable.run.clone());
            }
            result.broken.extend(unstable.broken.iter().cloned());
        }
        let written = match (differs, self.update) {
            // Runs that disagree give no baseline to record.
            _ if unstable.is_some() => {
                Ok(if stored.is_some() { BaselineAction::Differs } else { BaselineAction::Missing })
            }
            (false, Update::No) => Ok(BaselineAction::Unchanged),
            // A pending file left from an earlier, differing run is stale now.
            (false, _) => self.baselines.discard(&scenario.name).map(|_| BaselineAction::Unchanged),
            (true, Update::Always) => self.baselines.write(&current).map(|hash| {
                result.written = Some(hash.to_hex().to_string());
                if stored.is_some() { BaselineAction::Updated } else { BaselineAction::Recorded }
            }),
            (true, Update::Pending) => self.baselines.write_pending(&current).map(|()| BaselineAction::Pending),
            (true, Update::No) => Ok(if stored.is_some() { BaselineAction::Differs } else { BaselineAction::Missing }),
        };
        result.action = match written {
            Ok(action) => action,
            Err(e) => {
                outcome.status = Status::Fail;
                outcome.failure = Some(Failure {
                    place: "baseline".into(),
                    message: format!("cannot write {file} or its pending file: {e}"),
                    output: String::new(),
                });
                outcome.baseline = Some(result);
                return;
            }
        };
        let updated = matches!(result.action, BaselineAction::Updated | BaselineAction::Recorded);
        if result.action == BaselineAction::Missing && self.require_baselines {
            outcome.status = Status::Fail;
            outcome.failure = Some(Failure {
                place: "baseline".into(),
                message: format!(
                    "{file} does not exist; record it outside CI with `clnrm run --update-baselines {}` (or run, then `clnrm baseline accept {}`) and commit it",
                    outcome.file, scenario.name
                ),
                output: String::new(),
            });
        } else if !result.broken.is_empty() && !updated {
            outcome.status = Status::Regressed;
            let message = match result.broken.len() {
                1 => format!("a threshold is broken against {file}"),
                n => format!("{n} thresholds are broken against {file}"),
            };
            // The thresholds and the differences are in `result`, where reports render them.
            outcome.failure = Some(Failure { place: "baseline".into(), message, output: String::new() });
        }
        outcome.baseline = Some(result);
    }
}

/// What to say of spans that were too slow as measured but pass with the load divided out, or
/// with the pace of the rest of their trace divided out.
fn excused(current: &Baseline, verdict: &Gate, traces: &[Recorded]) -> Option<String> {
    let path = |s: &Slower| &current.spans[s.span].path;
    let mut said = Vec::new();
    if !verdict.excused.is_empty() {
        let least = traces.iter().map(|t| t.load).fold(f64::INFINITY, f64::min);
        let named: Vec<String> =
            verdict.excused.iter().take(3).map(|s| format!("`{}` {}", path(s), store::duration(s.old))).collect();
        let runs = match traces.len() {
            1 => "the run was not".to_string(),
            n => format!("none of the {n} runs was"),
        };
        said.push(format!(
            "durations not judged as measured: {runs} on a machine as quiet as when the baseline was recorded \
             (clnrm's container starts took {least:.1}× as long or more), and {} slower than allowed as measured \
             passed only with that load divided out ({}; baseline medians)",
            crate::output::count(verdict.excused.len(), "span"),
            named.join(", ")
        ));
    }
    if !verdict.paced.is_empty() {
        let named: Vec<String> = verdict
            .paced
            .iter()
            .take(3)
            .map(|p| {
                let s = &p.slower;
                format!(
                    "`{}` {} → {} with the rest {:.1}× slower",
                    path(s),
                    store::duration(s.old),
                    store::duration(s.new),
                    p.pace
                )
            })
            .collect();
        said.push(format!(
            "durations judged against their trace's pace: {} slower than allowed as measured, but so was the rest \
             of the system's trace in every quiet run, as when the machine rather than one part of the system is \
             slower ({})",
            crate::output::count(verdict.paced.len(), "span"),
            named.join(", ")
        ));
    }
    (!said.is_empty()).then(|| said.join("; "))
}

/// A later run that breaks a threshold on its own, with what it broke and how it differs.
struct Unstable {
    run: LaterRun,
    broken: Vec<Broken>,
    diff: Differences,
}

/// With `--repeat`, the first later run whose trace breaks a threshold against the stored
/// baseline (or, with none, against the first run): a span added, removed, changed or newly failing
/// in any run counts, not only in the first, whose spans the compared baseline holds. Durations are
/// judged over all runs together, so they are left out here.
fn later_run_differs(
    scenario: &Scenario,
    stored: Option<&Baseline>,
    traces: &[Recorded],
    limits: &Limits,
) -> Option<Unstable> {
    if traces.len() < 2 {
        return None;
    }
    let single = |trace: &Recorded| normalize(&scenario.name, std::slice::from_ref(trace));
    let first;
    let reference = match stored {
        Some(old) => old,
        None => {
            first = single(&traces[0]);
            &first
        }
    };
    let limits = Limits { duration: None, ..limits.clone() };
    traces.iter().enumerate().skip(1).find_map(|(k, trace)| {
        let run = single(trace);
        let d = diff(reference, &run);
        let verdict = gate(reference, &run, &d, &limits, Vec::new);
        let against = if stored.is_some() { "the baseline" } else { "run 1" };
        let later = LaterRun { run: k + 1, runs: traces.len(), against: against.into() };
        (!verdict.passed()).then(|| Unstable {
            broken: verdict
                .broken
                .into_iter()
                .map(|b| Broken { message: format!("{}: {}", later.describe(), b.message), ..b })
                .collect(),
            diff: Differences::of(reference, &run, &d, &[]),
            run: later,
        })
    })
}
