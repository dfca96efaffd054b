//! What differs between a baseline and a run, as data: every span of both traces in the order a
//! tree shows them (a run's spans in order, each removed span below its parent's counterpart),
//! each marked. Judging makes it, the run record keeps it, and [`super::show`] renders it (tree,
//! one-line summary, JSON) wherever it is shown: a view never needs the two traces again.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::diff::{Change, Diff};
use super::normalize::{Baseline, NormSpan, SEPARATOR};
use super::thresholds::Slower;
use crate::telemetry::span::{SpanKind, SpanStatus};

/// Every span of a comparison, in tree order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Differences {
    pub spans: Vec<DiffSpan>,
}

/// How a span of the comparison differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// In both, alike but for durations.
    Same,
    /// Only in the run.
    Added,
    /// Only in the baseline.
    Removed,
    /// In both, with [`DiffSpan::changes`].
    Changed,
}

/// One span of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffSpan {
    pub mark: Mark,
    /// Its structural path (the run's; the baseline's for a removed span).
    pub path: String,
    /// Its path in the baseline, for a span of both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_path: Option<String>,
    pub service: String,
    pub kind: SpanKind,
    pub status: SpanStatus,
    /// What changed, for a changed span.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// An added span's attributes (values as text), so a reviewer sees what appeared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attrs: Vec<(String, String)>,
    /// Median durations, the baseline's and the run's, for a span of both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Timing>,
    /// Its gated time grew past the limits: the baseline's median and the run's gated time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slower: Option<Timing>,
}

/// A span's time in the baseline and in the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    #[serde(rename = "baseline_ms", with = "crate::duration::millis")]
    pub baseline: Duration,
    #[serde(rename = "ms", with = "crate::duration::millis")]
    pub current: Duration,
}

impl DiffSpan {
    /// How deep in the tree it sits (0 for a root).
    pub fn depth(&self) -> usize {
        self.path.matches(SEPARATOR).count()
    }

    /// The last segment of its path.
    pub fn segment(&self) -> &str {
        self.path.rsplit(SEPARATOR).next().unwrap_or(&self.path)
    }

    fn of(mark: Mark, span: &NormSpan) -> DiffSpan {
        DiffSpan {
            mark,
            path: span.path.clone(),
            baseline_path: None,
            service: span.service.clone(),
            kind: span.kind,
            status: span.status,
            changes: Vec::new(),
            attrs: Vec::new(),
            duration: None,
            slower: None,
        }
    }
}

impl Differences {
    /// The comparison of `new` with `old` as `diff` matched them, with the spans `slower` past
    /// the limits.
    pub fn of(old: &Baseline, new: &Baseline, diff: &Diff, slower: &[Slower]) -> Differences {
        let mut spans: Vec<DiffSpan> = new.spans.iter().map(|s| DiffSpan::of(Mark::Same, s)).collect();
        for m in &diff.matched {
            let span = &mut spans[m.new];
            span.baseline_path = Some(old.spans[m.old].path.clone());
            span.duration = Some(Timing { baseline: m.duration.0, current: m.duration.1 });
            span.changes = m.changes.clone();
            if !span.changes.is_empty() {
                span.mark = Mark::Changed;
            }
        }
        for s in slower {
            spans[s.span].slower = Some(Timing { baseline: s.old, current: s.new });
        }
        for &n in &diff.added {
            let span = &mut spans[n];
            span.mark = Mark::Added;
            span.attrs = new.spans[n].attrs.iter().map(|(k, v)| (k.to_string(), v.text())).collect();
        }
        // Removed spans go below their parent's counterpart in the run, or at the end.
        let counterpart: HashMap<&str, usize> =
            diff.matched.iter().map(|m| (old.spans[m.old].path.as_str(), m.new)).collect();
        let mut removed_below: HashMap<Option<usize>, Vec<DiffSpan>> = HashMap::new();
        for &o in &diff.removed {
            let span = &old.spans[o];
            let parent = span.path.rsplit_once(SEPARATOR).and_then(|(p, _)| counterpart.get(p).copied());
            removed_below.entry(parent).or_default().push(DiffSpan::of(Mark::Removed, span));
        }
        let mut ordered = Vec::with_capacity(spans.len() + diff.removed.len());
        for (i, span) in spans.into_iter().enumerate() {
            ordered.push(span);
            ordered.extend(removed_below.remove(&Some(i)).unwrap_or_default());
        }
        ordered.extend(removed_below.remove(&None).unwrap_or_default());
        Differences { spans: ordered }
    }

    /// The spans only the run has.
    pub fn added(&self) -> impl Iterator<Item = &DiffSpan> {
        self.spans.iter().filter(|s| s.mark == Mark::Added)
    }

    pub fn count(&self, mark: Mark) -> usize {
        self.spans.iter().filter(|s| s.mark == mark).count()
    }

    pub fn slower(&self) -> impl Iterator<Item = &DiffSpan> {
        self.spans.iter().filter(|s| s.slower.is_some())
    }
}
