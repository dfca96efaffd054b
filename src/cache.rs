//! The scenario cache: a blake3 key per scenario over everything that decides its outcome, and the
//! last verdict recorded under that key, so `run` and `watch` skip unchanged scenarios that passed.
//!
//! One small JSON file per scenario under `.clnrm/cache/verdicts/` (named after the scenario, whose
//! name is restricted to file-safe characters): lookups touch one file, concurrent runs of different
//! scenarios never contend, and writes are atomic. A corrupted or foreign entry is a warning and a
//! miss, and is overwritten by the next verdict.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Vars;
use crate::diagnostic::Diagnostic;
use crate::fsutil::write_atomic;

/// Version of the entry format; entries of another version are foreign.
const FORMAT: u32 = 1;

/// A scenario's cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(blake3::Hash);

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.to_hex())
    }
}

/// Everything a scenario's *source key* covers; `run` extends it with the image ids
/// ([`Key::with_images`]), which only an engine can tell.
pub struct KeyInputs<'a> {
    /// The rendered scenario text (covers the file, variables used and `env()` values).
    pub rendered: &'a str,
    /// Each template pulled in, by name, with the hash of its content.
    pub templates: &'a [(&'a str, blake3::Hash)],
    /// The resolved variables.
    pub vars: &'a Vars,
    /// The relevant part of the config (see `Config::fingerprint`).
    pub config: &'a [u8],
}

impl KeyInputs<'_> {
    pub fn key(&self) -> Key {
        let mut hasher = blake3::Hasher::new();
        let mut field = |bytes: &[u8]| {
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        field(env!("CARGO_PKG_VERSION").as_bytes());
        field(self.rendered.as_bytes());
        for (name, hash) in self.templates {
            field(name.as_bytes());
            field(hash.as_bytes());
        }
        field(&serde_json::to_vec(self.vars).unwrap_or_default());
        field(self.config);
        Key(hasher.finalize())
    }
}

impl Key {
    /// The source key: the scenario's own key plus the blake3 of its baseline file (`None`: it
    /// has none), so accepting a new baseline reruns the comparison.
    pub fn with_baseline(&self, baseline: Option<blake3::Hash>) -> Key {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.0.as_bytes());
        match baseline {
            Some(hash) => hasher.update(b"baseline").update(hash.as_bytes()),
            None => hasher.update(b"no baseline"),
        };
        Key(hasher.finalize())
    }

    /// The full key of a run: the source key plus the id of every image the scenario uses, so a
    /// rebuilt or re-pulled image reruns the scenario.
    pub fn with_images(&self, images: &[(&str, &str)]) -> Key {
        let mut sorted = images.to_vec();
        sorted.sort();
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.0.as_bytes());
        for (reference, id) in sorted {
            hasher.update(&(reference.len() as u64).to_le_bytes());
            hasher.update(reference.as_bytes());
            hasher.update(&(id.len() as u64).to_le_bytes());
            hasher.update(id.as_bytes());
        }
        Key(hasher.finalize())
    }
}

/// The conditions a verdict was reached under. A pass vouches only for runs that ask no more of
/// it: one run does not vouch for `--repeat 3`, nor a run in reused containers for fresh ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    /// Runs of the scenario (`--repeat`).
    pub runs: u32,
    /// Its step containers were reused across scenarios.
    pub reuse: bool,
}

impl Conditions {
    /// What an entry written before conditions were recorded is taken to have been: the weakest.
    fn unknown() -> Conditions {
        Conditions { runs: 1, reuse: true }
    }

    /// Whether a verdict reached under these conditions holds for a run under `asked`.
    fn covers(&self, asked: &Conditions) -> bool {
        self.runs >= asked.runs && (!self.reuse || asked.reuse)
    }
}

/// How a scenario's last run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Timeout,
    /// Passed, but broke a baseline threshold.
    Regressed,
}

/// One stored verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    format: u32,
    scenario: String,
    /// The full key (source and images).
    key: String,
    /// The source key alone, for `dry-run`, which has no engine to ask for image ids.
    source_key: String,
    verdict: Verdict,
    duration_ms: u64,
    #[serde(default = "Conditions::unknown")]
    conditions: Conditions,
}

/// What the cache knows about a scenario.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    /// Nothing recorded, or recorded under another key (something changed).
    Miss,
    /// The scenario is unchanged since a run that ended with this verdict.
    Hit(Verdict),
}

/// The cache directory of a project.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn entry_path(&self, scenario: &str) -> PathBuf {
        self.dir.join("verdicts").join(format!("{scenario}.json"))
    }

    /// Looks up a scenario by its source key and, when known, its full key and the conditions of
    /// the run asking. An unreadable entry is a miss plus a warning saying it will be rebuilt.
    pub fn lookup(
        &self,
        scenario: &str,
        source: &Key,
        full: Option<(&Key, &Conditions)>,
    ) -> (Lookup, Option<Diagnostic>) {
        let path = self.entry_path(scenario);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return (Lookup::Miss, None),
            Err(err) => return (Lookup::Miss, Some(rebuild_warning(&path, &err.to_string()))),
        };
        match serde_json::from_slice::<Entry>(&bytes) {
            Ok(entry) if entry.format == FORMAT && entry.scenario == scenario => {
                let hit = entry.source_key == source.to_string()
                    && full.is_none_or(|(k, asked)| entry.key == k.to_string() && entry.conditions.covers(asked));
                (if hit { Lookup::Hit(entry.verdict) } else { Lookup::Miss }, None)
            }
            Ok(entry) => (
                Lookup::Miss,
                Some(rebuild_warning(
                    &path,
                    &format!("it is a foreign entry (format {}, scenario `{}`)", entry.format, entry.scenario),
                )),
            ),
            Err(err) => (Lookup::Miss, Some(rebuild_warning(&path, &format!("it is corrupted ({err})")))),
        }
    }

    /// Records a verdict, replacing whatever was there (including a corrupted entry or a file where
    /// the cache directory should be).
    pub fn record(
        &self,
        scenario: &str,
        source: &Key,
        full: &Key,
        conditions: Conditions,
        verdict: Verdict,
        duration: Duration,
    ) -> std::io::Result<()> {
        let path = self.entry_path(scenario);
        let dir = self.dir.join("verdicts");
        for d in [&self.dir, &dir] {
            if d.exists() && !d.is_dir() {
                std::fs::remove_file(d)?;
            }
        }
        if !self.dir.exists() {
            std::fs::create_dir_all(&self.dir)?;
            // The cache is machine-local: keep it out of version control whatever the project ignores.
            std::fs::write(self.dir.join(".gitignore"), "*\n")?;
        }
        std::fs::create_dir_all(&dir)?;
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        }
        let entry = Entry {
            format: FORMAT,
            scenario: scenario.to_string(),
            key: full.to_string(),
            source_key: source.to_string(),
            verdict,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            conditions,
        };
        let json = serde_json::to_vec_pretty(&entry).map_err(std::io::Error::other)?;
        write_atomic(&path, &json)
    }
}

fn rebuild_warning(path: &Path, why: &str) -> Diagnostic {
    Diagnostic::warning("cache", format!("ignoring cache entry {}: {why}; it will be rebuilt", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(rendered: &str) -> Key {
        KeyInputs { rendered, templates: &[], vars: &Vars::new(), config: b"{}" }.key()
    }

    #[test]
    fn key_covers_every_input() {
        let vars: Vars = serde_json::from_value(serde_json::json!({"a": 1})).unwrap();
        let tpl = [("macros.tera", blake3::hash(b"x"))];
        let base = KeyInputs { rendered: "r", templates: &tpl, vars: &vars, config: b"c" };
        let k = base.key();
        assert_eq!(k, KeyInputs { ..base }.key());
        let tpl2 = [("macros.tera", blake3::hash(b"y"))];
        assert_ne!(k, KeyInputs { templates: &tpl2, ..base }.key());
        assert_ne!(k, KeyInputs { rendered: "r2", ..base }.key());
        assert_ne!(k, KeyInputs { vars: &Vars::new(), ..base }.key());
        assert_ne!(k, KeyInputs { config: b"d", ..base }.key());
        let (a, b) = (blake3::hash(b"a"), blake3::hash(b"b"));
        assert_ne!(k.with_baseline(None), k.with_baseline(Some(a)));
        assert_ne!(k.with_baseline(Some(a)), k.with_baseline(Some(b)));
        assert_eq!(k.with_baseline(Some(a)), k.with_baseline(Some(a)));
    }

    const ONE_RUN: Conditions = Conditions { runs: 1, reuse: false };

    #[test]
    fn records_and_finds_verdicts_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        let (source, full) = (key("1"), key("1").with_images(&[("img", "sha256:1")]));
        assert_eq!(cache.lookup("a", &source, Some((&full, &ONE_RUN))), (Lookup::Miss, None));
        cache.record("a", &source, &full, ONE_RUN, Verdict::Pass, Duration::from_millis(5)).unwrap();
        assert_eq!(cache.lookup("a", &source, Some((&full, &ONE_RUN))), (Lookup::Hit(Verdict::Pass), None));
        assert_eq!(
            cache.lookup("a", &source, None),
            (Lookup::Hit(Verdict::Pass), None),
            "dry-run checks the source only"
        );
        let rebuilt = key("1").with_images(&[("img", "sha256:2")]);
        assert_eq!(
            cache.lookup("a", &source, Some((&rebuilt, &ONE_RUN))),
            (Lookup::Miss, None),
            "a new image id reruns"
        );
        assert_eq!(cache.lookup("a", &key("2"), None), (Lookup::Miss, None));
        assert_eq!(std::fs::read_to_string(dir.path().join("cache/.gitignore")).unwrap(), "*\n");
    }

    #[test]
    fn a_verdict_vouches_only_for_runs_that_ask_no_more_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let k = key("1");
        let ask = |runs, reuse| cache.lookup("a", &k, Some((&k, &Conditions { runs, reuse }))).0;
        cache.record("a", &k, &k, Conditions { runs: 3, reuse: false }, Verdict::Pass, Duration::ZERO).unwrap();
        for (runs, reuse) in [(1, false), (3, false), (3, true)] {
            assert_eq!(ask(runs, reuse), Lookup::Hit(Verdict::Pass), "{runs} runs, reuse {reuse}");
        }
        assert_eq!(ask(4, false), Lookup::Miss, "three runs do not vouch for four");
        cache.record("a", &k, &k, Conditions { runs: 1, reuse: true }, Verdict::Pass, Duration::ZERO).unwrap();
        assert_eq!(ask(1, true), Lookup::Hit(Verdict::Pass));
        assert_eq!(ask(1, false), Lookup::Miss, "a pass in reused containers does not vouch for fresh ones");
        // Entries written before conditions were recorded vouch for the least.
        std::fs::write(
            dir.path().join("verdicts/a.json"),
            r#"{"format":1,"scenario":"a","key":"K","source_key":"K","verdict":"pass","duration_ms":1}"#
                .replace('K', &k.to_string()),
        )
        .unwrap();
        assert_eq!([ask(1, true), ask(1, false)], [Lookup::Hit(Verdict::Pass), Lookup::Miss]);
    }

    #[test]
    fn corrupted_and_foreign_entries_warn_and_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        std::fs::create_dir_all(dir.path().join("verdicts")).unwrap();
        std::fs::write(dir.path().join("verdicts/a.json"), b"{not json").unwrap();
        let (lookup, warning) = cache.lookup("a", &key("1"), None);
        assert_eq!(lookup, Lookup::Miss);
        assert!(warning.unwrap().message.contains("corrupted"));

        std::fs::write(
            dir.path().join("verdicts/a.json"),
            br#"{"format":99,"scenario":"a","key":"k","source_key":"k","verdict":"pass","duration_ms":1}"#,
        )
        .unwrap();
        assert!(cache.lookup("a", &key("1"), None).1.unwrap().message.contains("foreign"));

        cache.record("a", &key("1"), &key("1"), ONE_RUN, Verdict::Fail, Duration::ZERO).unwrap();
        assert_eq!(cache.lookup("a", &key("1"), None), (Lookup::Hit(Verdict::Fail), None));
    }

    #[test]
    fn a_file_where_the_cache_directory_belongs_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cache"), b"junk").unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        assert!(cache.lookup("a", &key("1"), None).1.is_some());
        cache.record("a", &key("1"), &key("1"), ONE_RUN, Verdict::Pass, Duration::ZERO).unwrap();
        assert_eq!(cache.lookup("a", &key("1"), None).0, Lookup::Hit(Verdict::Pass));
    }
}
