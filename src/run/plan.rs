//! After loading: the plan stage (each valid scenario's stored baseline and the cache key it
//! makes, giving what the run executes) and choosing what to run (`--filter`, `--tag` and
//! `--shard` over the planned scenarios).

use std::sync::Arc;

use regex::Regex;

use crate::baseline::files::Baselines;
use crate::baseline::normalize::Baseline;
use crate::cache::Key;
use crate::project::Project;
use crate::record::outcome::{ScenarioOutcome, Status};
use crate::scenario::Loaded;
use crate::scenario::model::Scenario;

/// A scenario ready to run: made by the plan stage from a valid loaded file.
#[derive(Clone)]
pub struct Planned {
    pub scenario: Arc<Scenario>,
    /// The scenario file, as shown to the user.
    pub file: String,
    /// The cache key of its sources, its baseline included (the run adds image ids).
    pub source_key: Key,
    /// The key of the scenario alone, before its baseline is added.
    pub scenario_key: Key,
    /// Its stored baseline, when it has one.
    pub baseline: Option<Arc<Baseline>>,
    /// The file's warnings (`file:line:col: message`), repeated with its outcome so that they are
    /// not lost above a long run.
    pub warnings: Vec<String>,
}

impl Planned {
    /// Its outcome when it does not run (cached or skipped), with the file's warnings.
    pub fn without_running(&self, status: Status) -> ScenarioOutcome {
        let mut outcome = ScenarioOutcome::without_running(&self.scenario.name, &self.file, status);
        outcome.warnings = self.warnings.clone();
        outcome
    }
}

/// The plan stage of loaded `files`, one entry per file: a valid file's scenario (taken out of
/// it) with its baseline, read and checked, and its cache key made with the baseline's hash. A
/// file whose baseline is not one gets the diagnostic beside its own and plans nothing, as an
/// invalid file does. Every command that runs or judges scenarios calls it right after loading.
pub fn plan(files: &mut [Loaded], project: &Project) -> Vec<Option<Planned>> {
    let baselines = Baselines::new(&project.root);
    files
        .iter_mut()
        .map(|file| {
            let (Some(scenario), Some(key)) = (&file.scenario, file.scenario_key) else { return None };
            let shown = project.display(&baselines.path(&scenario.name));
            let stored = match baselines.load(&scenario.name, &shown) {
                Ok(stored) => stored,
                Err(diagnostic) => {
                    file.diagnostics.push(*diagnostic);
                    return None;
                }
            };
            Some(Planned {
                scenario: Arc::new(file.scenario.take()?),
                file: file.display.clone(),
                source_key: key.with_baseline(stored.as_ref().map(|s| s.hash)),
                scenario_key: key,
                baseline: stored.map(|s| Arc::new(s.baseline)),
                warnings: file.diagnostics.iter().filter(|d| !d.is_error()).map(|d| d.one_line()).collect(),
            })
        })
        .collect()
}

/// `--shard K/N`: this machine runs the K-th of N slices of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || format!("expected K/N with 1 ≤ K ≤ N, e.g. --shard 2/4 (got `{text}`)");
        let (k, n) = text.split_once('/').ok_or_else(usage)?;
        let (index, count) =
            (k.trim().parse::<u64>().map_err(|_| usage())?, n.trim().parse::<u64>().map_err(|_| usage())?);
        if index == 0 || count == 0 || index > count {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether `name` falls in this shard. The slice depends only on the name (a stable hash), so
    /// every machine agrees without coordination and adding a scenario moves no other one.
    pub fn contains(&self, name: &str) -> bool {
        let hash = blake3::hash(name.as_bytes());
        let value = u64::from_le_bytes(hash.as_bytes()[..8].try_into().unwrap_or_default());
        value % self.count == self.index - 1
    }
}

/// What selects scenarios.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub filter: Option<Regex>,
    pub tags: Vec<String>,
    pub shard: Option<Shard>,
}

impl Selection {
    /// What the run record says of it, with the `paths` given.
    pub fn recorded(&self, paths: &[std::path::PathBuf]) -> crate::record::Selection {
        crate::record::Selection {
            paths: paths.iter().map(|p| p.display().to_string()).collect(),
            filter: self.filter.as_ref().map(|re| re.as_str().to_string()),
            tags: self.tags.clone(),
            shard: self.shard.as_ref().map(|s| format!("{}/{}", s.index, s.count)),
        }
    }

    pub fn matches(&self, name: &str, tags: &[String]) -> bool {
        self.filter.as_ref().is_none_or(|re| re.is_match(name))
            && (self.tags.is_empty() || self.tags.iter().any(|t| tags.contains(t)))
            && self.shard.is_none_or(|s| s.contains(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_suite() {
        let names: Vec<String> = (0..200).map(|i| format!("scenario-{i}")).collect();
        let shards: Vec<Shard> = (1..=4).map(|k| Shard { index: k, count: 4 }).collect();
        for name in &names {
            assert_eq!(shards.iter().filter(|s| s.contains(name)).count(), 1, "{name}");
        }
        let first = names.iter().filter(|n| shards[0].contains(n)).count();
        assert!((30..=70).contains(&first), "roughly even: {first}");
    }

    #[test]
    fn shard_syntax_is_checked() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "2", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn filter_and_tags_combine() {
        let selection =
            Selection { filter: Some(Regex::new("^order").unwrap()), tags: vec!["smoke".into()], shard: None };
        assert!(selection.matches("orders", &["smoke".into()]));
        assert!(!selection.matches("orders", &["slow".into()]));
        assert!(!selection.matches("checkout", &["smoke".into()]));
    }
}
