//! Benchmark of baselines (issue: record, diff and gate on baselines).
//!
//! `cargo bench --bench baseline` builds the realistic trace of `benches/common/trace.rs` at
//! 1,000, 10,000 and 100,000 spans and prints the median (and spread) of:
//! - normalizing it and writing the baseline file (render + atomic write to a temporary file);
//! - reading the file back (parse);
//! - diffing it against a run of the same workload in which every 50th span has a changed
//!   attribute and every 100th `validate` span is missing (both normalized beforehand).
//!
//! Targets: normalize and write a 10,000-span baseline in under 50 ms; diff two 10,000-span traces
//! in under 20 ms; diff time growing no worse than n log n.

use std::hint::black_box;
use std::time::Duration;

use clnrm::baseline::diff::diff;
use clnrm::baseline::normalize::{Recorded, normalize};
use clnrm::baseline::store::{parse, render};
use clnrm::fsutil::write_atomic;
use clnrm::telemetry::span::{AttrValue, Span};

#[path = "common/timing.rs"]
mod timing;
#[path = "common/trace.rs"]
mod trace;

use timing::{measure, print_header, print_row};

const WRITE_TARGET: Duration = Duration::from_millis(50);
const DIFF_TARGET: Duration = Duration::from_millis(20);

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkout.toml");
    print_header();
    let mut diffs: Vec<(usize, Duration)> = Vec::new();
    for (requests, runs) in [(11, 51), (111, 21), (1111, 5)] {
        let spans = trace::trace(requests);
        let n = spans.len();
        let write = measure(runs, || {
            let baseline = normalize("checkout", &[Recorded::plain(&spans)]);
            write_atomic(&file, render(&baseline).as_bytes()).unwrap();
        });
        let alone = measure(runs, || {
            black_box(normalize("checkout", &[Recorded::plain(&spans)]));
        });
        let text = std::fs::read_to_string(&file).unwrap();
        let read = measure(runs, || {
            black_box(parse(&text).unwrap());
        });
        print_row(&format!("normalize + write, {n} spans"), &write);
        print_row(&format!("  of which normalize, {n} spans"), &alone);
        print_row(&format!("parse, {n} spans ({} KB)", text.len() / 1024), &read);
        let old = normalize("checkout", &[Recorded::plain(&spans)]);
        let new = normalize("checkout", &[Recorded::plain(&changed(&spans))]);
        let d = diff(&old, &new);
        let differing = d.added.len() + d.removed.len() + d.matched.iter().filter(|m| !m.changes.is_empty()).count();
        let compare = measure(runs, || {
            black_box(diff(&old, &new));
        });
        print_row(&format!("diff, {n} spans ({differing} differ)"), &compare);
        diffs.push((n, compare[compare.len() / 2]));
        if n == 10_000 {
            let verdict = |times: &[Duration], target| if times[times.len() / 2] < target { "met" } else { "NOT met" };
            println!("  target: normalize + write 10,000 spans < {WRITE_TARGET:?}: {}", verdict(&write, WRITE_TARGET));
            println!("  target: diff of two 10,000-span traces < {DIFF_TARGET:?}: {}", verdict(&compare, DIFF_TARGET));
        }
    }
    let per = |(n, t): (usize, Duration)| t.as_secs_f64() / (n as f64 * (n as f64).log2());
    for (small, large) in [(diffs[0], diffs[1]), (diffs[0], diffs[diffs.len() - 1])] {
        println!(
            "  diff growth: time / (n log n) is {:.2}× from {} to {} spans (≤ 1 means no worse than n log n)",
            per(large) / per(small),
            small.0,
            large.0
        );
    }
}

/// The workload's spans as a later run might have them: every 50th span with a changed attribute,
/// every 100th `validate` span (a leaf) gone.
fn changed(spans: &[Span]) -> Vec<Span> {
    let mut validates = 0;
    let mut out: Vec<Span> = spans
        .iter()
        .filter(|s| {
            validates += usize::from(&*s.name == "validate");
            &*s.name != "validate" || validates % 100 != 0
        })
        .cloned()
        .collect();
    for span in out.iter_mut().step_by(50) {
        span.attributes.push(("build".into(), AttrValue::Str("next".into())));
    }
    out
}
