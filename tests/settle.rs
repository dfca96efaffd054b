//! The wait for spans loses none: the demo shop's scenarios (`scenarios/orders`: HTTP and gRPC
//! exporters, a service and an instrumented client) run 500 times in parallel batches with the
//! automatic quiet window, and every span of every run is there in time.
//!
//! Each scenario is copied under several names, so a run is a batch of many at `-j 4`. The first
//! run writes their baselines; the later ones run as CI does, against them, with
//! `added_spans = removed_spans = 0`, so a span that arrived after its scenario was judged fails
//! it twice: its expectations (counts, order, parents) and its baseline. The records must also
//! count no late and no unroutable span, and every copy must have the same trace in every run.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Project, engine_available};
use serde_json::Value;

/// Copies of each demo shop scenario in one run.
const COPIES: usize = 12;
/// Runs after the one that writes the baselines: 3 scenarios × COPIES × RUNS ≥ 500.
const RUNS: usize = 14;

/// Held by each test of this file: one running beside the other would load the machine more than
/// CI does, and time spent waiting is what both measure.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Gates the trace exactly: a span more or less than the baseline has fails.
const CONFIG: &str = "[defaults]\npull = \"never\"\n[thresholds]\nadded_spans = 0\nremoved_spans = 0\nnew_errors = 0\n\
                      duration = \"off\"\n";

/// A project with `copies` of each demo shop scenario, named `<file stem>-<copy>`.
fn shop(copies: usize) -> Project {
    let p = Project::empty();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    p.write("templates/macros.tera", std::fs::read_to_string(root.join("templates/macros.tera")).unwrap());
    p.write(".clnrm/config.toml", CONFIG);
    let scenarios = std::fs::read_dir(root.join("scenarios/orders")).unwrap();
    let mut kinds = 0;
    for entry in scenarios {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let stem = path.file_name().unwrap().to_str().unwrap().trim_end_matches(".clnrm.toml").to_string();
        let name = text.lines().find_map(|l| l.strip_prefix("name = ")).expect("a [scenario] name").to_string();
        for copy in 0..copies {
            let renamed = text.replacen(&format!("name = {name}"), &format!("name = \"{stem}-{copy}\""), 1);
            p.write(&format!("scenarios/{stem}-{copy}.clnrm.toml"), &renamed);
        }
        kinds += 1;
    }
    assert_eq!(kinds, 3, "the demo shop's scenarios");
    p
}

/// Every scenario of the latest run passed, and no span came late or from nowhere.
fn all_passed_with_no_stray(p: &Project, run: usize) -> Vec<(String, usize)> {
    let record: Value = serde_json::from_str(&p.read(".clnrm/runs/latest.json")).unwrap();
    let strays = &record["run"]["strays"];
    assert_eq!((&strays["late"], &strays["unroutable"]), (&0.into(), &0.into()), "run {run}: {strays}");
    let scenarios = record["scenarios"].as_array().unwrap();
    for scenario in scenarios {
        assert_eq!(scenario["status"], "pass", "run {run}: {scenario}");
    }
    scenarios.iter().map(|s| (s["name"].as_str().unwrap().to_string(), s["trace"].as_array().unwrap().len())).collect()
}

#[test]
fn five_hundred_demo_shop_runs_lose_no_span_and_none_arrives_late() {
    if !engine_available() {
        return;
    }
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let p = shop(COPIES);

    let first = p.clnrm(&["run", "-j", "4", "--update-baselines"]);
    first.success();
    // Per scenario, its trace's size in the run that wrote its baseline.
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    let mut judged = 0;
    for run in 0..=RUNS {
        if run > 0 {
            p.clnrm_env(&["run", "-j", "4", "--force"], &[("CI", "true")]).success();
        }
        for (name, spans) in all_passed_with_no_stray(&p, run) {
            assert_eq!(*sizes.entry(name.clone()).or_insert(spans), spans, "run {run}: {name}");
            judged += 1;
        }
    }
    assert!(judged >= 500, "{judged} runs");
    // The copies of one scenario agree with each other, too.
    for kind in ["checkout", "failed-payment", "grpc-export"] {
        let of_kind: Vec<usize> =
            sizes.iter().filter(|(n, _)| n.starts_with(&format!("{kind}-"))).map(|(_, s)| *s).collect();
        assert_eq!(of_kind.len(), COPIES, "{kind}");
        assert!(of_kind.iter().all(|s| *s == of_kind[0]), "{kind}: {of_kind:?}");
    }
    p.assert_clean();
}

/// With a window far too short for the shop's exporter (`[otel] settle = "1ms"`: its batches come
/// every 10 ms), what a quiet trace is known to lack still keeps the wait open: a missing parent,
/// an expectation that does not hold, a path of the baseline. No scenario is judged without the
/// shop's spans, and none of them comes late. (Without that, the first batch fails: its
/// scenarios are judged on the step's spans alone.)
#[test]
fn a_window_too_short_still_waits_for_what_a_trace_is_known_to_lack() {
    if !engine_available() {
        return;
    }
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let p = shop(4);
    p.clnrm(&["run", "-j", "4", "--update-baselines"]).success();
    p.write(".clnrm/config.toml", format!("{CONFIG}[otel]\nsettle = \"1ms\"\n"));
    for run in 1..=3 {
        p.clnrm_env(&["run", "-j", "4", "--force"], &[("CI", "true")]).success();
        all_passed_with_no_stray(&p, run);
    }
    p.assert_clean();
}
