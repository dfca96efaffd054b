//! After loading: the plan stage (each valid scenario's stored baseline and the cache key it
//! makes) and choosing what to run (`--filter`, `--tag` and `--shard` over the valid scenarios).

use std::sync::Arc;

use regex::Regex;

use crate::baseline::files::Baselines;
use crate::project::Project;
use crate::scenario::Loaded;

/// The plan stage of loaded `files`: reads each valid scenario's baseline, checked, and keys the
/// scenario with the baseline's hash (`Loaded::cache_key`, `Loaded::baseline`). A file whose
/// baseline is not one becomes invalid: the diagnostic joins its own and its scenario is dropped.
/// Every command that runs or judges scenarios calls it right after loading.
pub fn stored(files: &mut [Loaded], project: &Project) {
    let baselines = Baselines::new(&project.root);
    for file in files.iter_mut() {
        let (Some(scenario), Some(key)) = (&file.scenario, file.scenario_key) else { continue };
        let shown = project.display(&baselines.path(&scenario.name));
        match baselines.load(&scenario.name, &shown) {
            Ok(stored) => {
                file.cache_key = Some(key.with_baseline(stored.as_ref().map(|s| s.hash)));
                file.baseline = stored.map(|s| Arc::new(s.baseline));
            }
            Err(diagnostic) => {
                file.diagnostics.push(*diagnostic);
                file.scenario = None;
                file.scenario_key = None;
            }
        }
    }
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
