//! Timing for benchmarks: sorted samples of a closure and a row of their quantiles. Included with
//! `#[path = "common/timing.rs"] mod timing;`.

use std::time::{Duration, Instant};

/// Sorted durations of `runs` calls of `f`.
pub fn measure(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
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

/// `figure  median  min  p10  p90`, under [`print_header`].
pub fn print_row(figure: &str, times: &[Duration]) {
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{figure:<44} {:>10} {:>10} {:>10} {:>10}",
        clnrm::duration::display(at(0.5)),
        clnrm::duration::display(at(0.0)),
        clnrm::duration::display(at(0.1)),
        clnrm::duration::display(at(0.9))
    );
}

/// The header of [`print_row`]'s columns.
pub fn print_header() {
    println!("{:<44} {:>10} {:>10} {:>10} {:>10}", "figure", "median", "min", "p10", "p90");
}
