//! Views of a run: live on the terminal, and its record rendered as JUnit XML or JSON. Each is a
//! function of the record (or of the outcomes it is built from), computing nothing of its own.

pub mod differences;
pub mod json;
pub mod junit;
pub mod terminal;

use crate::record::outcome::{BaselineOutcome, ScenarioOutcome, Status};

/// The output that explains a failure: for a regression, each broken threshold and then the tree
/// of differences (styled for a terminal alone); for anything else, the output the failure kept.
pub fn failure_output(outcome: &ScenarioOutcome, styled: bool) -> String {
    match (&outcome.baseline, &outcome.failure) {
        (Some(baseline), _) if outcome.status == Status::Regressed => regression(baseline, styled),
        (_, Some(failure)) => failure.output.clone(),
        _ => String::new(),
    }
}

fn regression(baseline: &BaselineOutcome, styled: bool) -> String {
    let broken: Vec<String> = baseline.broken.iter().map(|b| format!("{}: {}", b.threshold, b.message)).collect();
    let tree = baseline.diff.as_ref().map(differences::tree).unwrap_or_default();
    let tree = if styled { tree.styled() } else { tree.to_string() };
    format!("{}\n\n{}", broken.join("\n"), tree.trim_end())
}

/// One sentence on a comparison: what differs (in a later run, saying which), or that the
/// baseline is new.
pub fn baseline_summary(baseline: &BaselineOutcome) -> String {
    let Some(diff) = &baseline.diff else {
        return format!("new baseline of {}", crate::output::count(baseline.spans, "span"));
    };
    match &baseline.later_run {
        Some(later) => format!("{}: {}", later.describe(), differences::summary(diff)),
        None => differences::summary(diff),
    }
}
