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

#[test]
fn five_hundred_demo_shop_runs_lose_no_span_and_none_arrives_late() {
    if !engine_available() {
        return;
    }
    let p = Project::empty();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    p.write("templates/macros.tera", std::fs::read_to_string(root.join("templates/macros.tera")).unwrap());
    p.write(
        ".clnrm/config.toml",
        "[defaults]\npull = \"never\"\n[thresholds]\nadded_spans = 0\nremoved_spans = 0\nnew_errors = 0\n\
         duration = \"off\"\n",
    );
    let scenarios = std::fs::read_dir(root.join("scenarios/orders")).unwrap();
    let mut kinds = 0;
    for entry in scenarios {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let stem = path.file_name().unwrap().to_str().unwrap().trim_end_matches(".clnrm.toml").to_string();
        let name = text.lines().find_map(|l| l.strip_prefix("name = ")).expect("a [scenario] name").to_string();
        for copy in 0..COPIES {
            let renamed = text.replacen(&format!("name = {name}"), &format!("name = \"{stem}-{copy}\""), 1);
            p.write(&format!("scenarios/{stem}-{copy}.clnrm.toml"), &renamed);
        }
        kinds += 1;
    }
    assert_eq!(kinds, 3, "the demo shop's scenarios");

    let first = p.clnrm(&["run", "-j", "4", "--update-baselines"]);
    first.success();
    // Per scenario, its trace's size in the run that wrote its baseline.
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    let mut judged = 0;
    for run in 0..=RUNS {
        if run > 0 {
            p.clnrm_env(&["run", "-j", "4", "--force"], &[("CI", "true")]).success();
        }
        let record: Value = serde_json::from_str(&p.read(".clnrm/runs/latest.json")).unwrap();
        let strays = &record["run"]["strays"];
        assert_eq!((&strays["late"], &strays["unroutable"]), (&0.into(), &0.into()), "run {run}: {strays}");
        for scenario in record["scenarios"].as_array().unwrap() {
            let (name, spans) = (scenario["name"].as_str().unwrap(), scenario["trace"].as_array().unwrap().len());
            assert_eq!(scenario["status"], "pass", "run {run}: {scenario}");
            assert_eq!(*sizes.entry(name.to_string()).or_insert(spans), spans, "run {run}: {name}");
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
