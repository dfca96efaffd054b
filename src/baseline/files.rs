//! Where baselines live and how they may change: `baselines/<scenario>.toml`, with a pending
//! `baselines/<scenario>.toml.new` beside it until someone accepts or rejects it (as cargo-insta
//! does with snapshots). Every write goes through a temporary file and a rename.

use std::path::{Path, PathBuf};

use super::normalize::Baseline;
use super::store;
use crate::diagnostic::{Diagnostic, SourceFile};
use crate::environment::Environment;
use crate::fsutil::write_atomic;

/// The baselines directory, relative to the project root.
pub const DIR: &str = "baselines";
const SUFFIX: &str = ".toml";
const PENDING_SUFFIX: &str = ".toml.new";

/// The longest scenario name whose files can be written: the longest file name clnrm derives from
/// a scenario name is the temporary file of its pending baseline, and a file name holds at most 255
/// bytes (the cache's `<name>.json` is shorter).
pub const MAX_SCENARIO_NAME: usize = 255 - PENDING_SUFFIX.len() - crate::fsutil::TEMP_NAME_EXTRA;

/// The baselines of one project.
#[derive(Debug, Clone)]
pub struct Baselines {
    dir: PathBuf,
}

/// A stored baseline file, read and checked.
#[derive(Debug)]
pub struct Stored {
    pub baseline: Baseline,
    /// The blake3 of the file: part of the scenario's cache key.
    pub hash: blake3::Hash,
}

/// `baselines/<scenario>.toml` as reports name it: relative to the project's root.
pub fn shown(scenario: &str) -> String {
    format!("{DIR}/{scenario}{SUFFIX}")
}

/// `baselines/<scenario>.toml.new` as reports name it.
pub fn shown_pending(scenario: &str) -> String {
    format!("{DIR}/{scenario}{PENDING_SUFFIX}")
}

impl Baselines {
    pub fn new(root: &Path) -> Self {
        Self { dir: root.join(DIR) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `baselines/<scenario>.toml`.
    pub fn path(&self, scenario: &str) -> PathBuf {
        self.dir.join(format!("{scenario}{SUFFIX}"))
    }

    /// `baselines/<scenario>.toml.new`.
    pub fn pending_path(&self, scenario: &str) -> PathBuf {
        self.dir.join(format!("{scenario}{PENDING_SUFFIX}"))
    }

    /// Reads the scenario's baseline: `None` when there is none; an error naming the file when it
    /// cannot be read or is not a baseline (never treated as missing, which would pass silently).
    pub fn load(&self, scenario: &str, shown: &str) -> Result<Option<Stored>, Box<Diagnostic>> {
        let path = self.path(scenario);
        if !path.exists() {
            return Ok(None);
        }
        let stored = read(&path, shown)?;
        if stored.baseline.scenario != scenario {
            let reason = format!("it records scenario `{}`, not `{scenario}`", stored.baseline.scenario);
            return Err(corrupted(shown, reason));
        }
        Ok(Some(stored))
    }

    /// Writes the baseline, replacing any pending one; the blake3 of what it wrote.
    pub fn write(&self, baseline: &Baseline) -> std::io::Result<blake3::Hash> {
        std::fs::create_dir_all(&self.dir)?;
        let text = store::render(baseline);
        write_atomic(&self.path(&baseline.scenario), text.as_bytes())?;
        self.discard(&baseline.scenario)?;
        Ok(blake3::hash(text.as_bytes()))
    }

    /// Writes a pending baseline beside the stored one.
    pub fn write_pending(&self, baseline: &Baseline) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        write_atomic(&self.pending_path(&baseline.scenario), store::render(baseline).as_bytes())
    }

    /// Removes the scenario's pending baseline; whether there was one.
    pub fn discard(&self, scenario: &str) -> std::io::Result<bool> {
        match std::fs::remove_file(self.pending_path(scenario)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Scenarios with a pending baseline, sorted.
    pub fn pending(&self) -> std::io::Result<Vec<String>> {
        self.names(PENDING_SUFFIX)
    }

    /// Scenarios with a stored baseline, sorted.
    pub fn stored(&self) -> std::io::Result<Vec<String>> {
        self.names(SUFFIX)
    }

    fn names(&self, suffix: &str) -> std::io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(scenario) = name.strip_suffix(suffix).filter(|s| !s.is_empty() && !s.starts_with('.')) {
                names.push(scenario.to_string());
            }
        }
        names.sort();
        Ok(names)
    }
}

/// Reads and checks a baseline file; `shown` is its path as the user knows it.
pub fn read(path: &Path, shown: &str) -> Result<Stored, Box<Diagnostic>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Box::new(Diagnostic::error("baseline", format!("cannot read the baseline: {e}")).in_file(shown))
    })?;
    let text = String::from_utf8(bytes).map_err(|_| corrupted(shown, "it is not UTF-8 text".into()))?;
    let hash = blake3::hash(text.as_bytes());
    let source = SourceFile::new(shown, text);
    let baseline = store::parse(&source.text).map_err(|invalid| located(&source, invalid))?;
    Ok(Stored { baseline, hash })
}

fn corrupted(shown: &str, reason: String) -> Box<Diagnostic> {
    Box::new(not_valid(reason).in_file(shown))
}

/// [`corrupted`], pointing at the place in the file when it is known.
fn located(source: &SourceFile, invalid: store::Invalid) -> Box<Diagnostic> {
    let mut d = not_valid(invalid.reason).in_file(&source.name);
    if let Some(at) = invalid.at {
        d = d.at(source, at);
    }
    if let Some((message, at)) = invalid.note {
        d = d.note_at(message, &source.name, source.locate(at));
    }
    Box::new(d)
}

fn not_valid(reason: String) -> Diagnostic {
    Diagnostic::error("baseline", format!("the baseline file is not valid: {reason}"))
        .help("restore it from version control, or delete it and record it again with `clnrm run --update-baselines`")
}

/// What a run may write under `baselines/` (`CLNRM_UPDATE`, `--update-baselines`, `CI`). Under CI
/// nothing is ever written there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Write the baseline itself: `--update-baselines` or `CLNRM_UPDATE=always`.
    Always,
    /// Write a pending `.new` file when the run differs or there is no baseline: the default
    /// (`auto`), and `new`.
    Pending,
    /// Write nothing: `CLNRM_UPDATE=no`, and always under CI.
    No,
}

impl Update {
    /// The policy from `--update-baselines`, and `CLNRM_UPDATE` and `CI` in `env`. Asking to write
    /// baselines under CI is an error rather than silently ignored.
    pub fn resolve(update_baselines: bool, env: &Environment) -> Result<Update, String> {
        let asked = match env.update.as_deref() {
            None | Some("auto") | Some("new") => Update::Pending,
            Some("always") => Update::Always,
            Some("no") => Update::No,
            Some(other) => {
                return Err(format!("CLNRM_UPDATE=`{other}` is not one of auto, always, new, no"));
            }
        };
        let asked = if update_baselines { Update::Always } else { asked };
        match (env.ci, asked) {
            (true, Update::Always) => Err(format!(
                "refusing to write baselines while CI is set ({}); record them on a workstation and commit {DIR}/",
                if update_baselines { "--update-baselines" } else { "CLNRM_UPDATE=always" }
            )),
            (true, _) => Ok(Update::No),
            (false, asked) => Ok(asked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::normalize::{Recorded, normalize};
    use crate::telemetry::span::tests::span;

    fn baseline(name: &str) -> Baseline {
        normalize(name, &[Recorded::plain(&[span(1, 0, "checkout", "clnrm", 0, 10).build()])])
    }

    /// Out of CI the flag and `CLNRM_UPDATE` decide; under CI nothing is written, and asking to
    /// write is refused rather than ignored.
    #[test]
    fn the_update_policy_in_ci_and_out_of_it() {
        let env = |ci, update: Option<&str>| Environment { ci, update: update.map(str::to_string) };
        let policy = |flag, ci, update| Update::resolve(flag, &env(ci, update));
        assert_eq!(policy(false, false, None), Ok(Update::Pending));
        for (variable, expected) in [("auto", Update::Pending), ("new", Update::Pending), ("always", Update::Always)] {
            assert_eq!(policy(false, false, Some(variable)), Ok(expected), "{variable}");
        }
        assert_eq!(policy(false, false, Some("no")), Ok(Update::No));
        assert_eq!(policy(true, false, None), Ok(Update::Always));
        assert_eq!(policy(true, false, Some("no")), Ok(Update::Always), "the flag outranks the variable");
        assert!(policy(false, false, Some("sometimes")).unwrap_err().contains("not one of auto, always, new, no"));
        for variable in [None, Some("auto"), Some("new"), Some("no")] {
            assert_eq!(policy(false, true, variable), Ok(Update::No), "{variable:?}");
        }
        assert!(
            policy(true, true, None)
                .unwrap_err()
                .contains("refusing to write baselines while CI is set (--update-baselines)")
        );
        assert!(policy(false, true, Some("always")).unwrap_err().contains("(CLNRM_UPDATE=always)"));
    }

    #[test]
    fn pending_baselines_are_accepted_or_discarded_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Baselines::new(dir.path());
        assert_eq!(store.pending().unwrap(), Vec::<String>::new());
        store.write_pending(&baseline("checkout")).unwrap();
        store.write_pending(&baseline("browse")).unwrap();
        assert_eq!(store.pending().unwrap(), ["browse", "checkout"]);
        assert!(store.load("checkout", "baselines/checkout.toml").unwrap().is_none());
        // Accepting writes the baseline, which removes the pending file.
        store.write(&baseline("checkout")).unwrap();
        assert_eq!(store.load("checkout", "x").unwrap().unwrap().baseline, baseline("checkout"));
        assert!(store.discard("browse").unwrap());
        assert!(!store.discard("browse").unwrap());
        assert_eq!(store.pending().unwrap(), Vec::<String>::new());
        assert_eq!(store.stored().unwrap(), ["checkout"]);
    }

    #[test]
    fn a_corrupted_or_foreign_baseline_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Baselines::new(dir.path());
        std::fs::create_dir_all(store.dir()).unwrap();
        std::fs::write(store.path("checkout"), "format = 1\nscenario = \"checkout\"\n[[span]\n").unwrap();
        let error = store.load("checkout", "baselines/checkout.toml").unwrap_err();
        assert_eq!(error.file.as_deref(), Some("baselines/checkout.toml"));
        assert_eq!(error.location.as_ref().map(|l| l.line), Some(3), "{error:?}");
        store.write(&baseline("browse")).unwrap();
        std::fs::rename(store.path("browse"), store.path("checkout")).unwrap();
        let error = store.load("checkout", "baselines/checkout.toml").unwrap_err().render();
        assert!(error.contains("records scenario `browse`"), "{error}");
    }
}
