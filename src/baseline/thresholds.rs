//! Thresholds turn a diff into a verdict: which differences from the baseline are tolerated and
//! which break the gate (exit 4).
//!
//! A renamed span and a span moved to another parent count as one removed and one added: the
//! baseline's span is gone from its place. Changes of a matched span's attributes, events, kind,
//! service or status fall under the `attrs` policy, except a span that newly has status error,
//! which counts against `new_errors`.
//!
//! Durations are gated (unless `duration = "off"`) in a way built to hold on a shared machine
//! (docs/benchmarks.md, "Duration gating", measures it). Load only ever
//! adds time, in bursts that hit one run and not the next, while a real slowdown adds it to every
//! run. So a span regresses when its *fastest* time over the runs (`NormSpan::fastest`) grew past
//! the baseline's median by more than both the percentage and the absolute floor (a 1 ms span
//! taking 2 ms does not fail a 25% rule), and a run whose only broken threshold is a duration is
//! not believed at once: the scenario runs again, alone, up to `duration_runs` times in all, until
//! its fastest times are within the limits (a pass) or every run was too slow (a regression).
//! Each run's [`load`] (clnrm's container starts against the baseline's) decides how times are
//! taken: as measured when any run was quiet, else divided by it (what passes only so is
//! [`Gate::excused`] and named). Durations of clnrm's own spans and of a service's start-up
//! are not gated (see [`slower`] and `normalize::timed`).

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use super::diff::{Change, Diff};
use super::normalize::{Baseline, NormSpan, SEPARATOR, push_segment, split_path};
use crate::output;
use crate::telemetry::span::{Span, SpanStatus};

/// Growth of a span's fastest time past its baseline's median that fails unless `duration` says
/// otherwise: a 4 ms database query made twice as slow breaks it, the real stack's unchanged
/// scenarios on a shared 2-core machine did not (docs/benchmarks.md, "Duration gating").
pub const DEFAULT_PERCENT: f64 = 50.0;

/// Growth below this never fails a duration rule unless `duration_floor` says otherwise.
pub const DEFAULT_FLOOR: Duration = Duration::from_millis(2);

/// Runs a duration regression must show in unless `duration_runs` says otherwise.
pub const DEFAULT_DURATION_RUNS: u32 = 5;

/// Where durations are not gated, growth past this percentage (and the floor) is still shown as
/// slower: by `clnrm diff` unless `--slower` says otherwise, and by `clnrm baseline pending`.
pub const SHOWN_SLOWER: f64 = 25.0;

/// How many offending spans a broken threshold names before it says "and N more".
const NAMED: usize = 5;

/// `[thresholds]` (config) and `[baseline] thresholds` (per scenario, overriding key by key):
/// which baseline differences fail the gate. Unset keys fall back to the next level.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Thresholds {
    /// `duration = "25%"`: allowed growth of a span's duration over its baseline; `"off"` (read
    /// as an infinite percentage) leaves durations ungated.
    pub duration: Option<f64>,
    /// `duration_floor = "2ms"`: growth smaller than this never fails, whatever the percentage.
    pub duration_floor: Option<Duration>,
    /// `duration_runs = 5`: runs a duration regression must show in before it counts.
    pub duration_runs: Option<u64>,
    /// `added_spans`: how many spans may appear that the baseline lacks.
    pub added_spans: Option<u64>,
    /// `removed_spans`: how many baseline spans may disappear.
    pub removed_spans: Option<u64>,
    /// `new_errors`: how many spans may newly have status error.
    pub new_errors: Option<u64>,
    /// `attrs`: what a changed attribute does: `fail`, `warn` or `ignore`.
    pub attrs: Option<AttrPolicy>,
}

/// What a changed attribute does to the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttrPolicy {
    Fail,
    Warn,
    Ignore,
}

/// Thresholds with every key resolved: scenario over config over defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Allowed growth of a duration in percent; `None` (`duration = "off"`) leaves durations ungated.
    pub duration: Option<f64>,
    pub floor: Duration,
    /// Runs a duration regression must show in before it counts.
    pub duration_runs: u32,
    pub added: u64,
    pub removed: u64,
    pub new_errors: u64,
    pub attrs: AttrPolicy,
}

impl Limits {
    /// The scenario's `[baseline] thresholds` key by key over the config's `[thresholds]`. Unset
    /// everywhere: no span may be added, removed or newly fail, a changed attribute fails, and a
    /// duration may grow by [`DEFAULT_PERCENT`] and [`DEFAULT_FLOOR`].
    pub fn resolve(config: &Thresholds, scenario: &Thresholds) -> Limits {
        let duration = Some(scenario.duration.or(config.duration).unwrap_or(DEFAULT_PERCENT));
        let runs = scenario.duration_runs.or(config.duration_runs).map_or(DEFAULT_DURATION_RUNS, |n| n as u32);
        Limits {
            duration: duration.filter(|percent| percent.is_finite()),
            duration_runs: runs.max(1),
            floor: scenario.duration_floor.or(config.duration_floor).unwrap_or(DEFAULT_FLOOR),
            added: scenario.added_spans.or(config.added_spans).unwrap_or(0),
            removed: scenario.removed_spans.or(config.removed_spans).unwrap_or(0),
            new_errors: scenario.new_errors.or(config.new_errors).unwrap_or(0),
            attrs: scenario.attrs.or(config.attrs).unwrap_or(AttrPolicy::Fail),
        }
    }
}

/// A threshold the diff broke, with the values that broke it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Broken {
    /// The threshold's key (`added_spans`, `duration`, …).
    pub threshold: String,
    /// What was found against what is allowed, and the spans concerned.
    pub message: String,
}

/// One threshold as the gate applied it, broken or not: for the run record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Judged {
    /// The threshold's key (`added_spans`, `removed_spans`, `new_errors`, `attrs`, `duration`).
    pub threshold: String,
    /// What it allows, as a config file says it: `0`, `"fail"`, `50% and 2ms`, `off`.
    pub limit: String,
    /// How many spans it concerned.
    pub found: usize,
    /// Their paths.
    pub spans: Vec<String>,
    pub broken: bool,
}

/// A matched span whose median duration grew past the limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Slower {
    /// Index into the new baseline's spans.
    pub span: usize,
    pub old: Duration,
    pub new: Duration,
}

/// The verdict of thresholds over a diff.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gate {
    pub broken: Vec<Broken>,
    /// Every threshold applied, with its limit and what it found.
    pub judged: Vec<Judged>,
    /// Differences tolerated but worth saying (`attrs = "warn"`).
    pub warnings: Vec<String>,
    /// Spans whose duration regressed past the limits (empty when durations are not gated).
    pub slower: Vec<Slower>,
    /// Spans too slow as measured but within the limits once each run's load is divided out: no
    /// run was as quiet as the recording, so their durations could not be judged as they are.
    pub excused: Vec<Slower>,
    /// Spans too slow as measured but within the limits once the rest of their trace's pace is
    /// divided out: in every quiet run the system's other spans ran that much slower too.
    pub paced: Vec<Paced>,
}

/// A span excused by its trace's pace ([`pace`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Paced {
    pub slower: Slower,
    /// How many times slower than in the baseline the rest of the trace ran, at least.
    pub pace: f64,
}

impl Gate {
    pub fn passed(&self) -> bool {
        self.broken.is_empty()
    }
}

/// Applies `limits` to the diff of `old` (the baseline) and `new` (this run's runs). `quiet` gives
/// the quiet runs (judged as measured), normalized one by one: asked for only when a span is too
/// slow, to take its trace's pace from them.
pub fn gate(
    old: &Baseline,
    new: &Baseline,
    diff: &Diff,
    limits: &Limits,
    quiet: impl FnOnce() -> Vec<Baseline>,
) -> Gate {
    let mut added: Vec<&str> = diff.added.iter().map(|&n| new.spans[n].path.as_str()).collect();
    let mut removed: Vec<&str> = diff.removed.iter().map(|&o| old.spans[o].path.as_str()).collect();
    let mut errors: Vec<&str> = diff
        .added
        .iter()
        .filter(|&&n| new.spans[n].status == SpanStatus::Error)
        .map(|&n| &*new.spans[n].path)
        .collect();
    let mut changed: Vec<&str> = Vec::new();
    let (slower, paced) = match limits.duration {
        Some(percent) => {
            let candidates = self::slower(diff, new, percent, limits.floor);
            let quiet = if candidates.is_empty() { Vec::new() } else { quiet() };
            let (recorded, runs) = (OwnTimes::of(old), quiet.iter().map(OwnTimes::of).collect::<Vec<_>>());
            let (mut slower, mut paced) = (Vec::new(), Vec::new());
            for s in candidates {
                let pace = pace(&recorded, &runs, &new.spans[s.span].path);
                match regressed(s.old, s.new.div_f64(pace), percent, limits.floor) {
                    true => slower.push(s),
                    false => paced.push(Paced { slower: s, pace }),
                }
            }
            (slower, paced)
        }
        None => (Vec::new(), Vec::new()),
    };
    let excused = match limits.duration {
        Some(percent) => measured_slower(diff, new, percent, limits.floor)
            .into_iter()
            .filter(|s| !slower.iter().chain(paced.iter().map(|p| &p.slower)).any(|t| t.span == s.span))
            .collect(),
        None => Vec::new(),
    };
    for m in &diff.matched {
        let (a, b) = (&old.spans[m.old], &new.spans[m.new]);
        let relocated = m.changes.iter().any(|c| matches!(c, Change::Renamed { .. } | Change::Moved { .. }));
        if relocated {
            removed.push(&a.path);
            added.push(&b.path);
        }
        if b.status == SpanStatus::Error && a.status != SpanStatus::Error {
            errors.push(&b.path);
        }
        let other = m.changes.iter().any(|c| match c {
            Change::Renamed { .. } | Change::Moved { .. } => false,
            Change::Status { new, .. } => *new != SpanStatus::Error,
            _ => true,
        });
        if other {
            changed.push(&b.path);
        }
    }
    let mut gate = Gate::default();
    allowance(&mut gate, "added_spans", "added", &added, limits.added);
    allowance(&mut gate, "removed_spans", "removed", &removed, limits.removed);
    allowance(&mut gate, "new_errors", "newly with status error", &errors, limits.new_errors);
    let attrs = match limits.attrs {
        AttrPolicy::Fail => "fail",
        AttrPolicy::Warn => "warn",
        AttrPolicy::Ignore => "ignore",
    };
    let broke = limits.attrs == AttrPolicy::Fail && !changed.is_empty();
    gate.judged.push(Judged::of("attrs", attrs.into(), &changed, broke));
    let duration = match limits.duration {
        Some(percent) => format!("{percent}% and {}", super::store::duration(limits.floor)),
        None => "off".into(),
    };
    let slower_paths: Vec<&str> = slower.iter().map(|s| new.spans[s.span].path.as_str()).collect();
    gate.judged.push(Judged::of("duration", duration, &slower_paths, !slower.is_empty()));
    if !changed.is_empty() {
        let message = format!(
            "{} changed (attributes, events, kind, service or status): {}",
            output::count(changed.len(), "span"),
            list(&changed)
        );
        match limits.attrs {
            AttrPolicy::Fail => {
                gate.broken.push(Broken { threshold: "attrs".into(), message: format!("{message}; attrs = \"fail\"") })
            }
            AttrPolicy::Warn => gate.warnings.push(message),
            AttrPolicy::Ignore => {}
        }
    }
    if let (Some(percent), false) = (limits.duration, slower.is_empty()) {
        let named: Vec<String> = slower
            .iter()
            .map(|s| {
                format!(
                    "`{}` {} → {} ({})",
                    new.spans[s.span].path,
                    super::store::duration(s.old),
                    super::store::duration(s.new),
                    growth(s.old, s.new)
                )
            })
            .collect();
        let named: Vec<&str> = named.iter().map(String::as_str).collect();
        let runs = match new.runs {
            1 => String::new(),
            n => format!(" in each of {n} runs (fastest times)"),
        };
        let message = format!(
            "{} slower than allowed{runs} (more than +{percent}% and more than {}): {}",
            output::count(slower.len(), "span"),
            super::store::duration(limits.floor),
            list(&named)
        );
        gate.broken.push(Broken { threshold: "duration".into(), message });
    }
    gate.slower = slower;
    gate.excused = excused;
    gate.paced = paced;
    gate
}

/// Each gated span's own time in a baseline (its median less its children's), by path.
struct OwnTimes<'a>(HashMap<&'a str, f64>);

impl<'a> OwnTimes<'a> {
    fn of(baseline: &'a Baseline) -> OwnTimes<'a> {
        let gated = |s: &NormSpan| s.fastest.is_some() && s.service != crate::telemetry::own::SERVICE_NAME;
        let mut own: HashMap<&str, f64> =
            baseline.spans.iter().map(|s| (s.path.as_str(), s.duration.median.as_secs_f64())).collect();
        for span in &baseline.spans {
            if let Some(time) = split_path(&span.path).and_then(|(parent, _)| own.get_mut(parent)) {
                *time -= span.duration.median.as_secs_f64();
            }
        }
        let spans = baseline.spans.iter().filter(|s| gated(s));
        OwnTimes(
            spans.filter_map(|s| Some((s.path.as_str(), own[s.path.as_str()])).filter(|(_, t)| *t > 0.0)).collect(),
        )
    }
}

/// Fewer of the system's other spans than this give no pace: one slow span among two would be
/// half the evidence.
const PACED_SPANS: usize = 3;

/// How many times slower than in the baseline the rest of the trace ran while `path` was slower:
/// in each quiet run, the median over the system's other gated spans (neither `path` nor its
/// ancestors, whose time includes it) of their own time (less their children's) against the
/// baseline's; the least over the runs, and never below 1. A slowdown of one query leaves the
/// rest of its trace as fast as before, while a machine whose system under test runs 1.5–2×
/// slower for minutes (measured here, though clnrm's container starts and a CPU sampler did not
/// see it: docs/benchmarks.md, "Duration gating") slows the whole trace.
fn pace(old: &OwnTimes, quiet: &[OwnTimes], path: &str) -> f64 {
    let related =
        |other: &str| other == path || path.strip_prefix(other).is_some_and(|rest| rest.starts_with(SEPARATOR));
    quiet
        .iter()
        .map(|run| {
            let mut ratios: Vec<f64> = run
                .0
                .iter()
                .filter(|(other, _)| !related(other))
                .filter_map(|(other, time)| Some(time / old.0.get(other)?))
                .collect();
            if ratios.len() < PACED_SPANS {
                return 1.0;
            }
            ratios.sort_unstable_by(f64::total_cmp);
            ratios[ratios.len() / 2]
        })
        .reduce(f64::min)
        .map_or(1.0, |least| least.max(1.0))
}

/// Matched spans of the system under test whose fastest time over the runs of `new` (its
/// `fastest`: load divided out when no run was quiet) exceeds the baseline's median by more than
/// `percent` and more than `floor` (one run: its time). clnrm's own spans (the scenario, starting
/// and waiting for services, running a step) time the engine as much as the system: a `docker
/// exec` alone varies by tens of milliseconds from run to run, so their durations are reported but
/// never gated.
pub fn slower(diff: &Diff, new: &Baseline, percent: f64, floor: Duration) -> Vec<Slower> {
    past_limits(diff, new, percent, floor, |span| span.fastest)
}

/// Like [`slower`], by the fastest times as measured, load and all.
fn measured_slower(diff: &Diff, new: &Baseline, percent: f64, floor: Duration) -> Vec<Slower> {
    past_limits(diff, new, percent, floor, |span| span.fastest.map(|_| span.duration.min))
}

/// Matched spans of the system whose `time` (none: not gated) exceeds the baseline's median by
/// more than `percent` and `floor`.
fn past_limits(
    diff: &Diff,
    new: &Baseline,
    percent: f64,
    floor: Duration,
    time: impl Fn(&NormSpan) -> Option<Duration>,
) -> Vec<Slower> {
    diff.matched
        .iter()
        .filter(|m| new.spans[m.new].service != crate::telemetry::own::SERVICE_NAME)
        .filter_map(|m| Some((m, m.duration.0, time(&new.spans[m.new])?)))
        .filter(|&(_, old, fastest)| regressed(old, fastest, percent, floor))
        .map(|(m, old, fastest)| Slower { span: m.new, old, new: fastest })
        .collect()
}

/// A run whose service starts took at most this many times as long as in the baseline counts as
/// quiet. Measured on the real stack (docs/benchmarks.md, "Duration gating"): 0.6–1.1 running
/// one scenario at a time, 0.9–3.2 running four at once on two cores.
pub const QUIET: f64 = 1.25;

/// How many times slower than at recording the machine ran `spans`, a run of `old`'s scenario:
/// the median, over clnrm's starts of service containers ([`Span::is_start`]), of their time
/// against the baseline's median; exactly 1 for a quiet run ([`QUIET`]) or one with no start the
/// baseline has. The engine's own work measures the machine, not the system under test.
pub fn load(old: &Baseline, spans: &[Span]) -> f64 {
    let own: std::collections::HashMap<_, &Span> =
        spans.iter().filter(|s| s.is_own()).map(|s| (s.span_id, s)).collect();
    let mut ratios: Vec<f64> = spans
        .iter()
        .filter(|s| s.is_start())
        .filter_map(|start| {
            let root = own.get(&start.parent_span_id?)?;
            let mut path = String::new();
            push_segment(&mut path, &root.name);
            path.push_str(SEPARATOR);
            push_segment(&mut path, &start.name);
            let recorded = old.spans.iter().find(|s| s.path == path)?.duration.median;
            (!recorded.is_zero()).then(|| start.duration().as_secs_f64() / recorded.as_secs_f64())
        })
        .collect();
    if ratios.is_empty() {
        return 1.0;
    }
    ratios.sort_unstable_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    if median <= QUIET { 1.0 } else { median }
}

/// Whether `new` is slower than `old` by more than `percent` and more than `floor`.
pub fn regressed(old: Duration, new: Duration, percent: f64, floor: Duration) -> bool {
    let Some(growth) = new.checked_sub(old) else { return false };
    growth > floor && growth.as_secs_f64() > old.as_secs_f64() * percent / 100.0
}

/// The relative change from `old` to `new`, e.g. `+50.0%`.
pub fn growth(old: Duration, new: Duration) -> String {
    if old.is_zero() {
        return if new.is_zero() { "±0%".into() } else { "new time".into() };
    }
    let percent = (new.as_secs_f64() / old.as_secs_f64() - 1.0) * 100.0;
    format!("{percent:+.1}%")
}

/// Breaks `threshold` when more spans than `allowed` are in `paths`.
fn allowance(gate: &mut Gate, threshold: &str, what: &str, paths: &[&str], allowed: u64) {
    let broke = paths.len() as u64 > allowed;
    if broke {
        let message =
            format!("{} {what}, at most {allowed} allowed: {}", output::count(paths.len(), "span"), list(paths));
        gate.broken.push(Broken { threshold: threshold.into(), message });
    }
    gate.judged.push(Judged::of(threshold, allowed.to_string(), paths, broke));
}

impl Judged {
    fn of(threshold: &str, limit: String, paths: &[&str], broken: bool) -> Judged {
        let spans = paths.iter().map(|p| p.to_string()).collect();
        Judged { threshold: threshold.into(), limit, found: paths.len(), spans, broken }
    }
}

/// The first few, quoted, and how many more.
fn list(items: &[&str]) -> String {
    let mut text: Vec<String> =
        items.iter().take(NAMED).map(|i| if i.starts_with('`') { i.to_string() } else { format!("`{i}`") }).collect();
    if items.len() > NAMED {
        text.push(format!("and {} more", items.len() - NAMED));
    }
    text.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::diff::diff;
    use crate::baseline::normalize::{Recorded, normalize};
    use crate::telemetry::span::tests::{SpanBuilder, span};
    use crate::telemetry::span::{AttrValue, Span};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn trace(edit: impl FnOnce(&mut Vec<SpanBuilder>)) -> Baseline {
        let mut spans = vec![
            span(1, 0, "checkout", "clnrm", 0, 100),
            span(2, 1, "POST /orders", "shop", 1, 41).attr("http.response.status_code", AttrValue::Int(200)),
            span(3, 2, "reserve item", "shop", 2, 3),
            span(4, 2, "charge", "pay", 4, 24),
        ];
        edit(&mut spans);
        let spans: Vec<Span> = spans.into_iter().map(SpanBuilder::build).collect();
        normalize("checkout", &[Recorded::plain(&spans)])
    }

    fn strict() -> Limits {
        Limits::resolve(&Thresholds::default(), &Thresholds::default())
    }

    fn judged(limits: &Limits, edit: impl FnOnce(&mut Vec<SpanBuilder>)) -> Gate {
        let (old, new) = (trace(|_| {}), trace(edit));
        gate(&old, &new, &diff(&old, &new), limits, Vec::new)
    }

    fn thresholds(gate: &Gate) -> Vec<&str> {
        gate.broken.iter().map(|b| b.threshold.as_str()).collect()
    }

    #[test]
    fn scenario_thresholds_override_the_config_key_by_key() {
        let config = Thresholds { duration: Some(25.0), added_spans: Some(3), ..Thresholds::default() };
        let scenario = Thresholds { added_spans: Some(1), attrs: Some(AttrPolicy::Warn), ..Thresholds::default() };
        let limits = Limits::resolve(&config, &scenario);
        assert_eq!(limits.duration, Some(25.0));
        assert_eq!(limits.duration_runs, DEFAULT_DURATION_RUNS);
        assert_eq!(limits.added, 1);
        assert_eq!(limits.attrs, AttrPolicy::Warn);
        assert_eq!((limits.removed, limits.new_errors, limits.floor), (0, 0, DEFAULT_FLOOR));
    }

    #[test]
    fn durations_are_gated_by_default_a_config_sets_the_rule_and_off_turns_it_off() {
        // `charge` takes 20 ms in the baseline.
        let slower = |spans: &mut Vec<SpanBuilder>| spans[3] = span(4, 2, "charge", "pay", 4, 90);
        let within = |spans: &mut Vec<SpanBuilder>| spans[3] = span(4, 2, "charge", "pay", 4, 33);
        let past_default = |spans: &mut Vec<SpanBuilder>| spans[3] = span(4, 2, "charge", "pay", 4, 36);
        assert_eq!((strict().duration, strict().duration_runs), (Some(DEFAULT_PERCENT), DEFAULT_DURATION_RUNS));
        assert_eq!(thresholds(&judged(&strict(), slower)), ["duration"]);
        assert!(judged(&strict(), within).passed(), "+50% of 20 ms: 29 ms passes");
        assert_eq!(thresholds(&judged(&strict(), past_default)), ["duration"], "32 ms is past +50%");
        let config = Thresholds { duration: Some(400.0), ..Thresholds::default() };
        assert!(judged(&Limits::resolve(&config, &Thresholds::default()), slower).passed(), "+400% allows 86 ms");
        let off = Thresholds { duration: Some(f64::INFINITY), ..Thresholds::default() };
        assert!(judged(&Limits::resolve(&Thresholds::default(), &off), slower).passed());
        assert_eq!(Limits::resolve(&Thresholds::default(), &off).duration, None);
    }

    #[test]
    fn the_fastest_of_several_runs_is_gated_against_the_baselines_median() {
        let run = |charge: u64| {
            let spans: Vec<Span> =
                [span(1, 0, "checkout", "clnrm", 0, 100), span(4, 1, "charge", "pay", 4, 4 + charge)]
                    .into_iter()
                    .map(SpanBuilder::build)
                    .collect();
            spans
        };
        let old = normalize("checkout", &[Recorded::plain(&run(20))]);
        let judge = |charges: &[u64]| {
            let runs: Vec<Vec<Span>> = charges.iter().map(|&c| run(c)).collect();
            let recorded: Vec<Recorded> = runs.iter().map(|r| Recorded::plain(r)).collect();
            let new = normalize("checkout", &recorded);
            gate(&old, &new, &diff(&old, &new), &Limits { duration: Some(50.0), ..strict() }, Vec::new)
        };
        // Load in two of three runs (the median is slow) is not a regression: one run was fast.
        assert!(judge(&[90, 21, 80]).passed());
        // Slower in every run is, named by its fastest time.
        let slow = judge(&[45, 41, 60]);
        assert_eq!(thresholds(&slow), ["duration"]);
        assert!(slow.broken[0].message.contains("in each of 3 runs (fastest times)"), "{slow:?}");
        assert!(slow.broken[0].message.contains("`checkout › charge` 20ms → 41ms"), "{slow:?}");
    }

    /// A run of `checkout`: clnrm starts `db` in `start` ms (100 at recording), then the system's
    /// `query` takes `query` ms (20 at recording).
    fn started(start: u64, query: u64) -> Vec<Span> {
        [
            span(1, 0, "checkout", "clnrm", 0, 1000),
            span(2, 1, "start db", "clnrm", 0, start).str("container.image.name", "postgres"),
            span(3, 0, "query", "db", 500, 500 + query),
        ]
        .into_iter()
        .map(SpanBuilder::build)
        .collect()
    }

    #[test]
    fn load_is_how_much_longer_clnrms_container_starts_took_than_at_recording() {
        let old = normalize("checkout", &[Recorded::plain(&started(100, 20))]);
        assert!((load(&old, &started(300, 20)) - 3.0).abs() < 1e-9);
        assert_eq!(load(&old, &started(125, 20)), 1.0, "up to QUIET, a run is as quiet as the recording");
        assert_eq!(load(&old, &started(50, 20)), 1.0, "a faster machine never tightens the limits");
        // A program exporting a `start db` span as `clnrm` cannot excuse its own slowness.
        let mut forged = started(300, 20);
        forged[1] = span(2, 1, "start db", "clnrm", 0, 300).str("container.image.name", "x").impostor().build();
        assert_eq!(load(&old, &forged), 1.0);
        let mut cache = started(100, 20);
        cache[1].name = "start cache".into();
        let unknown = normalize("checkout", &[Recorded::plain(&cache)]);
        assert_eq!(load(&unknown, &started(300, 20)), 1.0, "no start the baseline has: nothing to compare");
    }

    #[test]
    fn durations_are_judged_as_measured_when_a_run_was_quiet_and_with_the_load_divided_out_when_none_was() {
        let old = normalize("checkout", &[Recorded::plain(&started(100, 20))]);
        let judge = |runs: &[(u64, u64)]| {
            let traces: Vec<Vec<Span>> = runs.iter().map(|&(start, query)| started(start, query)).collect();
            let recorded: Vec<Recorded> =
                traces.iter().map(|t| Recorded { load: load(&old, t), ..Recorded::plain(t) }).collect();
            let new = normalize("checkout", &recorded);
            gate(&old, &new, &diff(&old, &new), &Limits { duration: Some(50.0), ..strict() }, Vec::new)
        };
        // Three times as loaded in every run: 45 ms is 15 ms of the system's own: excused.
        let loaded = judge(&[(300, 45), (300, 50)]);
        assert!(loaded.passed(), "{loaded:?}");
        assert_eq!((loaded.slower.len(), loaded.excused.len()), (0, 1));
        // One quiet run judges every run as measured: 45 ms against 20 ms regresses, whatever the
        // load of the other run.
        let quiet = judge(&[(300, 45), (100, 45)]);
        assert_eq!(thresholds(&quiet), ["duration"]);
        assert!(quiet.excused.is_empty());
        // As measured means the loaded run's 25 ms counts too: the system did it that fast.
        let faster_under_load = judge(&[(300, 25), (100, 45), (100, 40)]);
        assert!(faster_under_load.passed() && faster_under_load.excused.is_empty(), "{faster_under_load:?}");
        // Under load, a system slower by more than the load still regresses: 96 ms / 3 = 32 ms.
        assert_eq!(thresholds(&judge(&[(300, 99), (300, 96)])), ["duration"]);
    }

    /// Steps `write` and `read` below the scenario: a `POST` of `times[0]` ms holding an `INSERT`
    /// (`times[1]`), then a `GET` (`times[2]`) holding a Redis `GET`, a `SELECT` and a `SET`
    /// (`times[3..]`, one after another).
    fn requests(times: [u64; 6]) -> Vec<Span> {
        let [post, insert, get, cached, select, set] = times;
        let mut spans = vec![
            span(1, 0, "shop", "clnrm", 0, 1000),
            span(2, 1, "write", "clnrm", 10, 400),
            span(3, 2, "POST /items", "app", 20, 20 + post),
            span(4, 3, "INSERT", "app", 21, 21 + insert),
            span(5, 1, "read", "clnrm", 500, 900),
            span(6, 5, "GET /items/1", "app", 510, 510 + get),
        ];
        let mut at = 511;
        for (id, name, time) in [(7, "GET", cached), (8, "SELECT", select), (9, "SET", set)] {
            spans.push(span(id, 6, name, "app", at, at + time));
            at += time;
        }
        spans.into_iter().map(SpanBuilder::build).collect()
    }

    #[test]
    fn a_span_slower_with_the_rest_of_its_trace_is_judged_against_the_traces_pace() {
        let recorded = [20, 5, 30, 4, 4, 4];
        let old = normalize("shop", &[Recorded::plain(&requests(recorded))]);
        let judge = |runs: &[[u64; 6]]| {
            let traces: Vec<Vec<Span>> = runs.iter().map(|&times| requests(times)).collect();
            let recorded: Vec<Recorded> = traces.iter().map(|t| Recorded::plain(t)).collect();
            let quiet: Vec<Baseline> = recorded.iter().map(|r| normalize("shop", std::slice::from_ref(r))).collect();
            let new = normalize("shop", &recorded);
            gate(&old, &new, &diff(&old, &new), &strict(), move || quiet)
        };
        let paths = |slower: &[Slower]| slower.iter().map(|s| old.spans[s.span].path.clone()).collect::<Vec<_>>();
        // Everything 2× slower in both runs: the machine, not the system.
        let machine = judge(&[[40, 10, 60, 8, 8, 8], [42, 10, 62, 8, 9, 8]]);
        assert!(machine.passed(), "{machine:?}");
        assert!(machine.paced.len() >= 4 && machine.paced.iter().all(|p| p.pace >= 2.0), "{:?}", machine.paced);
        // One query 2× slower, the rest as fast as recorded: the query regresses (its request,
        // 30 → 34 ms, is within the limits).
        let query = judge(&[[20, 5, 34, 4, 8, 4], [21, 5, 35, 4, 9, 4]]);
        assert_eq!(thresholds(&query), ["duration"]);
        assert_eq!(paths(&query.slower), ["shop › read › GET /items/1 › SELECT"]);
        assert!(query.paced.is_empty());
        // The pace is the least over the quiet runs: one run with the rest as fast as recorded
        // judges the slower query as measured, however slow the other run was throughout.
        let once = judge(&[[40, 10, 68, 8, 16, 8], [20, 5, 34, 4, 8, 4]]);
        assert_eq!(paths(&once.slower), ["shop › read › GET /items/1 › SELECT"]);
        // A span does not pace itself, nor does its request (which holds it): a query 15× slower
        // regresses with its request, the rest being as fast as recorded.
        let slowed = judge(&[[20, 5, 90, 4, 60, 4], [20, 5, 90, 4, 60, 4]]);
        assert_eq!(paths(&slowed.slower), ["shop › read › GET /items/1", "shop › read › GET /items/1 › SELECT"]);
        // Fewer than three other spans give no pace: judged as measured.
        let slow = requests([40, 10, 60, 8, 8, 8]);
        let (few_quiet, few_new) =
            (normalize("shop", &[Recorded::plain(&slow)]), normalize("shop", &[Recorded::plain(&slow)]));
        let mut small = old.clone();
        small.spans.retain(|s| !s.path.contains("POST") && !s.path.ends_with("GET"));
        let few_gate = gate(&small, &few_new, &diff(&small, &few_new), &strict(), || vec![few_quiet]);
        assert!(few_gate.paced.is_empty() && !few_gate.slower.is_empty(), "{few_gate:?}");
    }

    #[test]
    fn a_services_start_up_before_the_first_step_is_shown_but_not_gated() {
        // The schema's CREATE while `db` starts, then a step `read` whose request runs `query`.
        let run = |create: u64, query: u64| -> Vec<Span> {
            [
                span(1, 0, "checkout", "clnrm", 0, 1000),
                span(2, 1, "start db", "clnrm", 0, 100).str("container.image.name", "postgres"),
                span(3, 0, "CREATE", "db", 150, 150 + create),
                span(4, 1, "read", "clnrm", 400, 900),
                span(5, 0, "query", "db", 500, 500 + query),
            ]
            .into_iter()
            .map(SpanBuilder::build)
            .collect()
        };
        let old = normalize("checkout", &[Recorded::plain(&run(40, 20))]);
        let judge = |create: u64, query: u64| {
            let new = normalize("checkout", &[Recorded::plain(&run(create, query))]);
            gate(&old, &new, &diff(&old, &new), &Limits { duration: Some(50.0), ..strict() }, Vec::new)
        };
        assert!(judge(200, 20).passed(), "start-up five times as long is not gated");
        let slow = judge(40, 45);
        assert_eq!(thresholds(&slow), ["duration"]);
        assert!(slow.broken[0].message.contains("`query` 20ms → 45ms"), "{slow:?}");
        let shown = normalize("checkout", &[Recorded::plain(&run(200, 20))]);
        assert_eq!(shown.spans.iter().find(|s| s.path == "CREATE").unwrap().duration.median, ms(200));
    }

    #[test]
    fn duration_boundaries_percentage_and_floor() {
        // Exactly +25% passes, just above fails.
        assert!(!regressed(ms(100), ms(125), 25.0, ms(2)));
        assert!(regressed(ms(100), Duration::from_micros(125_001), 25.0, ms(2)));
        // 1 ms → 2 ms is +100% but only 1 ms of growth: under the floor.
        assert!(!regressed(ms(1), ms(2), 25.0, ms(2)));
        // Growth exactly at the floor passes, just above it fails.
        assert!(!regressed(ms(2), ms(4), 25.0, ms(2)));
        assert!(regressed(ms(2), Duration::from_micros(4_001), 25.0, ms(2)));
        // Faster is never a regression.
        assert!(!regressed(ms(100), ms(10), 0.0, Duration::ZERO));
        assert_eq!(growth(ms(80), ms(120)), "+50.0%");
    }

    #[test]
    fn a_slower_span_breaks_the_duration_threshold_naming_its_times() {
        let limits = Limits { duration: Some(25.0), ..strict() };
        let gate = judged(&limits, |spans| spans[3] = span(4, 2, "charge", "pay", 4, 34));
        assert_eq!(thresholds(&gate), ["duration"]);
        let message = &gate.broken[0].message;
        assert!(message.contains("`checkout › POST /orders › charge` 20ms → 30ms (+50.0%)"), "{message}");
        assert!(message.contains("more than +25% and more than 2ms"), "{message}");
        // The parents grew by less than 25%.
        assert_eq!(gate.slower.len(), 1);
    }

    #[test]
    fn added_and_removed_spans_against_their_allowance() {
        let edit = |spans: &mut Vec<SpanBuilder>| {
            spans.remove(2);
            spans.push(span(5, 2, "audit", "shop", 30, 31));
        };
        let gate = judged(&strict(), edit);
        assert_eq!(thresholds(&gate), ["added_spans", "removed_spans"]);
        assert!(gate.broken[0].message.contains("1 span added, at most 0 allowed: `checkout › POST /orders › audit`"));
        let lenient = Limits { added: 1, removed: 1, ..strict() };
        assert!(judged(&lenient, edit).passed());
    }

    #[test]
    fn a_renamed_span_counts_as_removed_and_added() {
        let gate = judged(&strict(), |spans| spans[2] = span(3, 2, "reserve items", "shop", 2, 3));
        assert_eq!(thresholds(&gate), ["added_spans", "removed_spans"]);
    }

    #[test]
    fn a_new_error_span_breaks_new_errors_and_nothing_else() {
        let gate = judged(&strict(), |spans| {
            spans[3] = span(4, 2, "charge", "pay", 4, 24).status(SpanStatus::Error, "card declined")
        });
        assert_eq!(thresholds(&gate), ["new_errors"]);
        let lenient = Limits { new_errors: 1, ..strict() };
        assert!(
            judged(&lenient, |spans| spans[3] = span(4, 2, "charge", "pay", 4, 24).status(SpanStatus::Error, "x"))
                .passed()
        );
    }

    #[test]
    fn attribute_changes_fail_warn_or_are_ignored() {
        let edit = |spans: &mut Vec<SpanBuilder>| {
            spans[1] = span(2, 1, "POST /orders", "shop", 1, 41).attr("http.response.status_code", AttrValue::Int(201))
        };
        let failed = judged(&strict(), edit);
        assert_eq!(thresholds(&failed), ["attrs"]);
        assert!(failed.broken[0].message.contains("`checkout › POST /orders`"), "{failed:?}");
        let warned = judged(&Limits { attrs: AttrPolicy::Warn, ..strict() }, edit);
        assert!(warned.passed());
        assert_eq!(warned.warnings.len(), 1);
        let ignored = judged(&Limits { attrs: AttrPolicy::Ignore, ..strict() }, edit);
        assert!(ignored.passed() && ignored.warnings.is_empty());
    }

    #[test]
    fn long_lists_are_cut_short() {
        let items: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
        let items: Vec<&str> = items.iter().map(String::as_str).collect();
        assert_eq!(list(&items), "`s0`, `s1`, `s2`, `s3`, `s4`, and 3 more");
    }
}
