//! Benchmark of baselines (issue: record, diff and gate on baselines).
//!
//! `cargo bench --bench baseline` builds the realistic trace of `benches/common/trace.rs` at
//! 1,000, 10,000 and 100,000 spans and prints the median (and spread) of:
//! - normalizing it and writing the baseline file (render + atomic write to a temporary file);
//! - reading the file back (parse).
//!
//! Target: normalize and write a 10,000-span baseline in under 50 ms.

use std::hint::black_box;
use std::time::{Duration, Instant};

use clnrm::baseline::normalize::normalize;
use clnrm::baseline::store::{parse, render};
use clnrm::fsutil::write_atomic;

#[path = "common/trace.rs"]
mod trace;

const TARGET: Duration = Duration::from_millis(50);

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkout.toml");
    println!("{:<44} {:>10} {:>10} {:>10} {:>10}", "figure", "median", "min", "p10", "p90");
    for (requests, runs) in [(11, 51), (111, 21), (1111, 5)] {
        let spans = trace::trace(requests);
        let n = spans.len();
        let write = measure(runs, || {
            let baseline = normalize("checkout", &[&spans], &[]);
            write_atomic(&file, render(&baseline).as_bytes()).unwrap();
        });
        let alone = measure(runs, || {
            black_box(normalize("checkout", &[&spans], &[]));
        });
        let text = std::fs::read_to_string(&file).unwrap();
        let read = measure(runs, || {
            black_box(parse(&text).unwrap());
        });
        print_row(&format!("normalize + write, {n} spans"), &write);
        print_row(&format!("  of which normalize, {n} spans"), &alone);
        print_row(&format!("parse, {n} spans ({} KB)", text.len() / 1024), &read);
        if n == 10_000 {
            let median = write[write.len() / 2];
            println!(
                "  target: normalize + write 10,000 spans < {TARGET:?}: {}",
                if median < TARGET { "met" } else { "NOT met" }
            );
        }
    }
}

/// Sorted durations of `runs` calls of `f`.
fn measure(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn print_row(figure: &str, times: &[Duration]) {
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{figure:<44} {:>10} {:>10} {:>10} {:>10}",
        clnrm::duration::display(at(0.5)),
        clnrm::duration::display(at(0.0)),
        clnrm::duration::display(at(0.1)),
        clnrm::duration::display(at(0.9))
    );
}
