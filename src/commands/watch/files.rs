//! The project as `watch` sees it: the last load of every scenario file, and the graph of what
//! each depends on. A change reloads only the files it affects (rendered and validated at once,
//! no container touched); names are checked for uniqueness across all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::diagnostic::Diagnostic;
use crate::project::Project;
use crate::run::Planned;
use crate::scenario::discover::discover;
use crate::scenario::vars::Overrides;
use crate::scenario::{Loader, Named};

use super::graph::{Affected, Graph, Node};

/// One scenario file's last load.
struct Entry {
    display: String,
    templates: Vec<PathBuf>,
    diagnostics: Vec<Diagnostic>,
    name: Option<Named>,
    /// Present when the file is valid.
    planned: Option<Planned>,
    /// Its name is used by an earlier file.
    duplicate: Option<Diagnostic>,
}

impl Entry {
    fn runnable(&self) -> Option<&Planned> {
        self.planned.as_ref().filter(|_| self.duplicate.is_none())
    }
}

pub struct Files {
    pub project: Project,
    /// Where scenarios are looked for: the paths given, or the config's scenario directories.
    roots: Vec<PathBuf>,
    overrides: Overrides,
    entries: BTreeMap<PathBuf, Entry>,
    /// Problems in `templates/`, reported once rather than per scenario.
    template_diagnostics: Vec<Diagnostic>,
    graph: Graph,
}

/// What a reload found.
#[derive(Default)]
pub struct Reloaded {
    /// Valid scenario files to run now.
    pub runnable: BTreeSet<PathBuf>,
    /// Files that were reloaded or removed.
    pub touched: BTreeSet<PathBuf>,
}

impl Files {
    /// Loads every scenario file under `roots` (the given paths, or the config's directories when
    /// there are none).
    pub fn load(project: Project, given: Vec<PathBuf>, overrides: Overrides) -> Files {
        let mut files = Files {
            roots: Vec::new(),
            project,
            overrides,
            entries: BTreeMap::new(),
            template_diagnostics: Vec::new(),
            graph: Graph::default(),
        };
        files.set_roots(given);
        files.reload_all();
        files
    }

    fn set_roots(&mut self, given: Vec<PathBuf>) {
        self.roots = if given.is_empty() { self.project.scenario_dirs() } else { given };
    }

    /// The config changed: the project is read again (`Err` with its diagnostics when it is
    /// invalid now, keeping the old one), then every file is reloaded.
    pub fn reload_project(&mut self, given: &[PathBuf]) -> Result<Reloaded, Vec<Diagnostic>> {
        self.project = Project::discover(&self.project.cwd)?;
        if given.is_empty() {
            self.set_roots(Vec::new());
        }
        Ok(self.reload_all())
    }

    fn reload_all(&mut self) -> Reloaded {
        let all = self.discovered();
        let stale: Vec<PathBuf> = self.entries.keys().filter(|p| !all.contains(*p)).cloned().collect();
        let affected = Affected { scenarios: all.iter().chain(&stale).cloned().collect(), ..Affected::default() };
        self.reload(&affected)
    }

    /// What the changed `paths` affect, by the graph as last loaded.
    pub fn affected(&self, paths: &[PathBuf]) -> Affected {
        let found = self.discovered();
        self.graph.affected(paths, |path| found.contains(path) || self.entries.contains_key(path))
    }

    /// Reloads the scenario files `affected` names (dropping the ones that are gone), checks names
    /// across all files, and rebuilds the graph.
    pub fn reload(&mut self, affected: &Affected) -> Reloaded {
        let found = self.discovered();
        let (present, gone): (Vec<PathBuf>, Vec<PathBuf>) =
            affected.scenarios.iter().cloned().partition(|p| found.contains(p));
        for path in &gone {
            self.entries.remove(path);
        }
        let loader = Loader::new(&self.project, self.overrides.clone());
        self.template_diagnostics = loader.template_diagnostics().to_vec();
        let mut loaded = loader.load_all(&present);
        let plans = crate::run::plan::plan(&mut loaded, &self.project);
        for (file, planned) in loaded.into_iter().zip(plans) {
            let entry = Entry {
                display: file.display,
                templates: file.templates,
                diagnostics: file.diagnostics,
                name: file.name,
                planned,
                duplicate: None,
            };
            self.entries.insert(file.path, entry);
        }
        let names: Vec<_> = self.entries.values().map(|e| (e.display.as_str(), e.name.as_ref())).collect();
        let mut duplicates: BTreeMap<usize, Diagnostic> =
            crate::scenario::duplicate_names(&names).into_iter().collect();
        // A file whose name is no longer taken (the other file was renamed or deleted) runs too.
        let mut freed = Vec::new();
        for (index, (path, entry)) in self.entries.iter_mut().enumerate() {
            let was = entry.duplicate.take();
            entry.duplicate = duplicates.remove(&index);
            if was.is_some() && entry.duplicate.is_none() {
                freed.push(path.clone());
            }
        }
        let nodes = self.entries.iter().map(|(path, entry)| Node {
            path,
            scenario: entry.runnable().map(|p| p.scenario.as_ref()),
            templates: &entry.templates,
        });
        self.graph = Graph::build(&self.project.root, nodes);
        let touched: BTreeSet<PathBuf> = present.into_iter().chain(gone).chain(freed).collect();
        let runnable = touched.iter().filter(|p| self.entries.get(*p).is_some_and(|e| e.runnable().is_some()));
        Reloaded { runnable: runnable.cloned().collect(), touched }
    }

    fn discovered(&self) -> BTreeSet<PathBuf> {
        let roots: Vec<PathBuf> = self.roots.iter().filter(|p| p.exists()).cloned().collect();
        discover(&roots).unwrap_or_default().into_iter().collect()
    }

    /// Every problem now: templates first, then each file's, in path order.
    pub fn diagnostics(&self) -> Vec<&Diagnostic> {
        let files = self.entries.values().flat_map(|e| e.diagnostics.iter().chain(&e.duplicate));
        self.template_diagnostics.iter().chain(files).collect()
    }

    /// Problems of the given files (and of templates).
    pub fn diagnostics_of(&self, paths: &BTreeSet<PathBuf>) -> Vec<&Diagnostic> {
        let files =
            paths.iter().filter_map(|p| self.entries.get(p)).flat_map(|e| e.diagnostics.iter().chain(&e.duplicate));
        self.template_diagnostics.iter().chain(files).collect()
    }

    /// Files that do not load now.
    pub fn invalid(&self) -> usize {
        self.entries.values().filter(|e| e.runnable().is_none()).count()
    }

    /// Scenario files, valid or not.
    pub fn count(&self) -> usize {
        self.entries.len()
    }

    /// Every valid scenario file.
    pub fn runnable(&self) -> BTreeSet<PathBuf> {
        self.entries.iter().filter(|(_, e)| e.runnable().is_some()).map(|(p, _)| p.clone()).collect()
    }

    /// The plans of those of `paths` that are valid now, with their files.
    pub fn plans(&self, paths: &BTreeSet<PathBuf>) -> Vec<(PathBuf, Planned)> {
        paths.iter().filter_map(|p| Some((p.clone(), self.entries.get(p)?.runnable()?.clone()))).collect()
    }

    /// Whether a scenario file shown as `shown` is still there.
    pub fn shows(&self, shown: &str) -> bool {
        self.entries.values().any(|e| e.display == shown)
    }

    /// What to watch: scenario roots and `templates/` with their subdirectories, `.clnrm/` and
    /// `baselines/` without, `build` contexts, and the project root itself (to see them appear).
    pub fn watched(&self) -> BTreeMap<PathBuf, notify::RecursiveMode> {
        use notify::RecursiveMode::{NonRecursive, Recursive};
        let root = &self.project.root;
        let mut wanted = BTreeMap::from([
            (root.clone(), NonRecursive),
            (root.join(".clnrm"), NonRecursive),
            (crate::baseline::files::Baselines::new(root).dir().to_path_buf(), NonRecursive),
            (self.project.templates_dir(), Recursive),
        ]);
        for path in self.roots.iter().chain(self.graph.contexts()) {
            // A single file is watched through its directory: saving often replaces the file.
            if let Some(dir) = path.parent().filter(|_| path.is_file()) {
                wanted.entry(dir.to_path_buf()).or_insert(NonRecursive);
            } else {
                wanted.insert(path.clone(), Recursive);
            }
        }
        wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &std::path::Path, path: &str, text: &str) -> PathBuf {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    const STEP: &str = "[[steps]]\nname = \"s\"\nimage = \"busybox\"\nrun = [\"true\"]\n";

    #[test]
    fn reloads_what_changed_and_checks_names_across_all_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, ".clnrm/config.toml", "");
        let a = write(root, "scenarios/a.clnrm.toml", STEP);
        let b = write(root, "scenarios/b.clnrm.toml", STEP);
        let mut files = Files::load(Project::discover(root).unwrap(), Vec::new(), Overrides::default());
        assert_eq!((files.count(), files.invalid()), (2, 0));

        // b takes a's name: b is invalid, with the duplicate named, and is not run.
        write(root, "scenarios/b.clnrm.toml", &format!("[scenario]\nname = \"a\"\n{STEP}"));
        let reloaded = files.reload(&files.affected(std::slice::from_ref(&b)));
        assert!(reloaded.runnable.is_empty());
        assert_eq!(files.invalid(), 1);
        assert!(files.diagnostics().iter().any(|d| d.code == "duplicate-scenario"));

        // a is deleted: b is valid again and runs, though only a changed.
        std::fs::remove_file(&a).unwrap();
        let reloaded = files.reload(&files.affected(std::slice::from_ref(&a)));
        assert_eq!(reloaded.runnable, BTreeSet::from([b.clone()]));
        assert_eq!((files.count(), files.invalid()), (1, 0));

        // A new file is found and loaded; a broken one shows its problem and does not run.
        let c = write(root, "scenarios/c.clnrm.toml", "[[steps]\n");
        let reloaded = files.reload(&files.affected(std::slice::from_ref(&c)));
        assert!(reloaded.runnable.is_empty() && reloaded.touched.contains(&c));
        let problems = files.diagnostics_of(&reloaded.touched);
        assert!(!problems.is_empty() && problems.iter().all(|d| d.file.as_deref() == Some("scenarios/c.clnrm.toml")));
        assert_eq!(files.plans(&files.runnable()).len(), 1);
    }
}
