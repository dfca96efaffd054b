//! What accepting a pending baseline writes over the stored one.
//!
//! A pending file is often recorded with fewer runs than the baseline it replaces (a plain `clnrm
//! run` records one; the baseline may have been recorded with `--repeat 5`). Written as it is, it
//! would swap the stored minimum, median and maximum over five runs for one sample, and the
//! duration gate would compare later runs with one noisy measurement.
//!
//! So a span alike in both files keeps the statistics that rest on more samples, provided its two
//! medians are within the duration rule of each other (neither slower nor faster by more than the
//! percentage and the floor): then both describe the same timing, and the better founded one
//! stands. A span whose timing did change, a changed span and an added span take the new file's
//! values; a removed span goes. On equal samples the new file wins, being what was accepted.
//!
//! Why not combine the two sets of statistics: the files hold summaries, not samples, so a true
//! median of both cannot be computed, only guessed; and summing samples would rewrite every span's
//! line on every accept and grow `runs` without bound, burying the accepted change in a review of
//! the file under lines whose timing did not change. Kept statistics leave those lines byte for
//! byte as they were.

use std::time::Duration;

use super::diff::{Diff, Matched};
use super::normalize::{Baseline, NormSpan};
use super::thresholds::regressed;

/// The baseline to write on accepting a pending one, and how many of its spans kept the stored
/// statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub baseline: Baseline,
    pub kept: usize,
}

/// `new` (the pending baseline) with the statistics of `stored` wherever they stand for a span
/// better (see the module's doc). `diff` is `diff(stored, new)`; `percent` and `floor` are the
/// duration rule within which two medians count as the same timing. When any span kept its
/// statistics, `runs` is the larger of both files' (what the kept statistics cover); the new
/// file's spans then show fewer samples than runs, as a span missing from some runs does.
pub fn accepted(stored: &Baseline, new: &Baseline, diff: &Diff, percent: f64, floor: Duration) -> Accepted {
    let mut baseline = new.clone();
    let mut kept = 0;
    for m in &diff.matched {
        let (old, span) = (&stored.spans[m.old], &mut baseline.spans[m.new]);
        if keeps_stored(m, old, span, percent, floor) {
            span.start = old.start;
            span.duration = old.duration;
            span.fastest = old.fastest;
            kept += 1;
        }
    }
    if kept > 0 {
        baseline.runs = baseline.runs.max(stored.runs);
    }
    Accepted { baseline, kept }
}

/// Whether a matched span keeps its stored statistics: unchanged but for timing, its medians
/// within the rule of each other both ways, and the stored ones over more samples.
fn keeps_stored(m: &Matched, old: &NormSpan, new: &NormSpan, percent: f64, floor: Duration) -> bool {
    let (before, after) = m.duration;
    m.changes.is_empty()
        && old.duration.samples > new.duration.samples
        && !regressed(before, after, percent, floor)
        && !regressed(after, before, percent, floor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::diff::diff;
    use crate::baseline::normalize::{Recorded, Stats, normalize};
    use crate::telemetry::span::tests::{SpanBuilder, span};
    use crate::telemetry::span::{AttrValue, Span};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A checkout whose `charge` span lasts `charge` ms and whose `reserve` lasts 10 ms; `edit`
    /// changes the spans further.
    fn trace(charge: u64, edit: impl FnOnce(&mut Vec<SpanBuilder>)) -> Vec<Span> {
        let mut spans = vec![
            span(1, 0, "checkout", "clnrm", 0, 200),
            span(2, 1, "POST /orders", "shop", 1, 150).attr("http.response.status_code", AttrValue::Int(200)),
            span(3, 2, "reserve", "shop", 2, 12),
            span(4, 2, "charge", "pay", 20, 20 + charge),
        ];
        edit(&mut spans);
        spans.into_iter().map(SpanBuilder::build).collect()
    }

    /// The stored baseline: five runs, `charge` taking 40 to 60 ms (median 50).
    fn five_runs() -> Baseline {
        let runs: Vec<Vec<Span>> = [40, 45, 50, 55, 60].into_iter().map(|c| trace(c, |_| {})).collect();
        let runs: Vec<Recorded> = runs.iter().map(|run| Recorded::plain(run)).collect();
        normalize("checkout", &runs)
    }

    fn one_run(charge: u64, edit: impl FnOnce(&mut Vec<SpanBuilder>)) -> Baseline {
        normalize("checkout", &[Recorded::plain(&trace(charge, edit))])
    }

    fn accept(stored: &Baseline, new: &Baseline) -> Accepted {
        accepted(stored, new, &diff(stored, new), 25.0, ms(2))
    }

    fn charge(baseline: &Baseline) -> Stats {
        baseline.spans.iter().find(|s| s.path.ends_with("charge")).unwrap().duration
    }

    #[test]
    fn one_run_within_the_rule_keeps_the_five_run_statistics() {
        let stored = five_runs();
        let result = accept(&stored, &one_run(52, |_| {}));
        assert_eq!(result.kept, 4);
        assert_eq!(result.baseline.runs, 5);
        assert_eq!(charge(&result.baseline), Stats { min: ms(40), median: ms(50), max: ms(60), samples: 5 });
        assert_eq!(result.baseline, stored, "nothing but timing within the rule differs");
    }

    #[test]
    fn a_span_whose_timing_changed_takes_the_new_value_the_others_keep_theirs() {
        let stored = five_runs();
        for charge_ms in [90, 20] {
            let result = accept(&stored, &one_run(charge_ms, |_| {}));
            assert_eq!(charge(&result.baseline), Stats::of(&mut [ms(charge_ms)]), "{charge_ms} ms");
            assert_eq!(result.kept, 3, "{charge_ms} ms");
            assert_eq!(result.baseline.runs, 5);
        }
    }

    #[test]
    fn changed_and_added_spans_take_the_new_values_and_removed_spans_go() {
        let stored = five_runs();
        let new = one_run(50, |spans| {
            spans[1] =
                span(2, 1, "POST /orders", "shop", 1, 150).attr("http.response.status_code", AttrValue::Int(201));
            spans.remove(2);
            spans.push(span(5, 2, "audit", "shop", 160, 170));
        });
        let result = accept(&stored, &new);
        let paths: Vec<&str> = result.baseline.spans.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "checkout",
                "checkout › POST /orders",
                "checkout › POST /orders › audit",
                "checkout › POST /orders › charge"
            ]
        );
        // The root and `charge` kept theirs; the changed `POST /orders` and the added `audit` did not.
        assert_eq!(result.kept, 2);
        assert_eq!(result.baseline.spans[1], new.spans[1]);
        assert_eq!(result.baseline.spans[2], new.spans[2]);
        assert_eq!(charge(&result.baseline).samples, 5);
    }

    #[test]
    fn as_many_or_more_new_samples_replace_the_stored_ones() {
        let stored = five_runs();
        let runs: Vec<Vec<Span>> = [48, 49, 51, 52, 53].into_iter().map(|c| trace(c, |_| {})).collect();
        let runs: Vec<Recorded> = runs.iter().map(|run| Recorded::plain(run)).collect();
        let new = normalize("checkout", &runs);
        assert_eq!(accept(&stored, &new), Accepted { baseline: new.clone(), kept: 0 });
        // Over one stored run, one new run wins too.
        let single = one_run(50, |_| {});
        assert_eq!(accept(&single, &one_run(51, |_| {})).kept, 0);
    }
}
