//! Which file events `watch` never reacts to: clnrm's own writes (the cache, run records, pending
//! baselines, the temporary files of atomic writes), build outputs, editors' scratch files, and whatever the
//! project's `.gitignore` ignores. Without this, a run's own writes would trigger the next run.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Directories ignored wherever they are.
const DIRECTORIES: [&str; 3] = [".git", "target", "node_modules"];

pub struct Filter {
    /// `.clnrm/cache` and `.clnrm/runs`: written by every run.
    state: [PathBuf; 2],
    gitignore: Gitignore,
}

impl Filter {
    /// The filter of the project at `root`; a `.gitignore` that cannot be read is described in
    /// the second value (and only the fixed rules apply).
    pub fn new(root: &Path) -> (Filter, Option<String>) {
        let mut builder = GitignoreBuilder::new(root);
        let file = root.join(".gitignore");
        let problem = file.exists().then(|| builder.add(&file)).flatten().map(|e| e.to_string());
        let gitignore = builder.build().unwrap_or_else(|_| Gitignore::empty());
        let state = [root.join(".clnrm").join("cache"), root.join(".clnrm").join("runs")];
        (Filter { state, gitignore }, problem)
    }

    /// Whether a change of `path` (absolute, inside the project) is to be ignored.
    pub fn ignores(&self, path: &Path) -> bool {
        if self.state.iter().any(|dir| path.starts_with(dir)) {
            return true;
        }
        let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        let scratch = name.ends_with(".new")
            || (name.starts_with('.') && name.ends_with(".tmp"))
            || name.ends_with('~')
            || name.ends_with(".swp")
            || name.ends_with(".swx")
            || name.starts_with(".#")
            || name == "4913";
        let in_ignored_dir = path.components().any(|c| DIRECTORIES.iter().any(|d| c.as_os_str() == *d));
        scratch
            || in_ignored_dir
            || (path.starts_with(self.gitignore.path())
                && self.gitignore.matched_path_or_any_parents(path, path.is_dir()).is_ignore())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_clnrms_own_writes_build_outputs_scratch_files_and_gitignored_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "/reports/\n*.log\n!keep.log\n").unwrap();
        let (filter, problem) = Filter::new(root);
        assert_eq!(problem, None);
        for ignored in [
            ".clnrm/cache/verdicts/a.json",
            ".clnrm/runs/latest.json",
            "baselines/checkout.toml.new",
            "baselines/.checkout.toml.123.456.tmp",
            "app/target/debug/app",
            "scenarios/.a.clnrm.toml.swp",
            "scenarios/a.clnrm.toml~",
            "scenarios/4913",
            "reports/run.json",
            "app/debug.log",
        ] {
            assert!(filter.ignores(&root.join(ignored)), "{ignored} should be ignored");
        }
        for watched in [
            "scenarios/a.clnrm.toml",
            "templates/macros.tera",
            ".clnrm/config.toml",
            "baselines/checkout.toml",
            "app/Dockerfile",
            "app/keep.log",
        ] {
            assert!(!filter.ignores(&root.join(watched)), "{watched} should be watched");
        }
    }

    #[test]
    fn works_without_a_gitignore() {
        let dir = tempfile::tempdir().unwrap();
        let (filter, problem) = Filter::new(dir.path());
        assert_eq!(problem, None);
        assert!(!filter.ignores(&dir.path().join("scenarios/a.clnrm.toml")));
    }
}
