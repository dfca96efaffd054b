//! After a scenario passed: compare its trace with the stored baseline, gate on the thresholds,
//! and write what the update policy allows (a pending `.new`, the baseline itself, or nothing).

use crate::baseline::diff::diff;
use crate::baseline::files::{Baselines, DIR, Update};
use crate::baseline::normalize::{Baseline, normalize};
use crate::baseline::show::{self, Tree};
use crate::baseline::thresholds::{Gate, Limits, gate};
use crate::config::Thresholds;
use crate::scenario::model::Scenario;
use crate::telemetry::span::Span;

use super::outcome::{BaselineAction, BaselineOutcome, Failure, ScenarioOutcome, Status};

/// What stays fixed for comparisons in one run.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub baselines: Baselines,
    pub update: Update,
    /// The config's `[thresholds]`.
    pub thresholds: Thresholds,
}

impl Comparison {
    /// Compares a passed scenario's `runs` (one trace per `--repeat`) with `stored` and records
    /// the result in `outcome`: a broken threshold makes it [`Status::Regressed`], a missing
    /// baseline under CI makes it fail with how to record one.
    pub fn judge(
        &self,
        scenario: &Scenario,
        stored: Option<&Baseline>,
        runs: &[Vec<Span>],
        outcome: &mut ScenarioOutcome,
    ) {
        if outcome.status != Status::Pass {
            return;
        }
        let traces: Vec<&[Span]> = runs.iter().map(Vec::as_slice).collect();
        let current = normalize(&scenario.name, &traces, &scenario.baseline.ignore_attrs);
        let file = format!("{DIR}/{}.toml", scenario.name);
        let mut result = BaselineOutcome {
            file: file.clone(),
            action: BaselineAction::Unchanged,
            summary: format!("new baseline of {}", crate::output::count(current.spans.len(), "span")),
            tree: Tree::default(),
            diff: None,
            broken: Vec::new(),
            warnings: Vec::new(),
            written: None,
        };
        let (differs, verdict) = match stored {
            None => (true, Gate::default()),
            Some(old) => {
                let d = diff(old, &current);
                let limits = Limits::resolve(&self.thresholds, &scenario.baseline.thresholds);
                let verdict = gate(old, &current, &d, &limits);
                result.summary = show::summary(&d, &verdict.slower);
                result.tree = show::tree(old, &current, &d, &verdict.slower);
                result.diff = Some(show::json(old, &current, &d, &verdict.slower));
                let rerecorded = self.update == Update::Always && old.runs != current.runs;
                (!d.is_same_shape() || !verdict.passed() || rerecorded, verdict)
            }
        };
        result.warnings = verdict.warnings;
        result.broken = verdict.broken;
        let written = match (differs, self.update) {
            (false, Update::No) => Ok(BaselineAction::Unchanged),
            // A pending file left from an earlier, differing run is stale now.
            (false, _) => self.baselines.discard(&scenario.name).map(|_| BaselineAction::Unchanged),
            (true, Update::Always) => self.baselines.write(&current).map(|hash| {
                result.written = Some(hash);
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
        if result.action == BaselineAction::Missing && crate::output::in_ci() {
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
            let output = result.regression(false);
            outcome.failure = Some(Failure { place: "baseline".into(), message, output });
        }
        outcome.baseline = Some(result);
    }
}
