//! Which scenarios a changed file affects, so that `watch` reruns exactly those.
//!
//! A scenario depends on its own file, every template it pulled in (transitively, as rendering
//! recorded them), the directories its `build` images are made from, its baseline file, and the
//! config. A scenario that failed to load recorded no templates, so a change under `templates/`
//! also reloads every scenario that is invalid now: it may be the fix.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::baseline::files::Baselines;
use crate::config;
use crate::scenario::Loaded;
use crate::scenario::model::{ImageSource, Scenario, Step};

/// The files each scenario depends on, inverted: file → scenario files.
#[derive(Debug, Default)]
pub struct Graph {
    config: PathBuf,
    templates: PathBuf,
    /// Scenario files whose last load failed.
    invalid: BTreeSet<PathBuf>,
    /// A template or baseline file → the scenario files that depend on it.
    files: HashMap<PathBuf, BTreeSet<PathBuf>>,
    /// A `build` directory → the scenario files that use it.
    contexts: Vec<(PathBuf, PathBuf)>,
}

/// What a batch of changes asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Affected {
    /// Scenario files to load and run again (including new and deleted ones).
    pub scenarios: BTreeSet<PathBuf>,
    /// `build` directories whose image must be rebuilt.
    pub contexts: BTreeSet<PathBuf>,
    /// The config changed: everything is reloaded.
    pub everything: bool,
}

impl Affected {
    pub fn is_empty(&self) -> bool {
        self.scenarios.is_empty() && self.contexts.is_empty() && !self.everything
    }
}

/// A scenario file as the graph sees it.
pub struct Node<'a> {
    pub path: &'a Path,
    /// The scenario, when the file can run now.
    pub scenario: Option<&'a Scenario>,
    /// Templates it pulled in when last rendered.
    pub templates: &'a [PathBuf],
}

impl<'a> From<&'a Loaded> for Node<'a> {
    fn from(file: &'a Loaded) -> Self {
        Node { path: &file.path, scenario: file.scenario.as_ref(), templates: &file.templates }
    }
}

impl Graph {
    /// The graph of the project at `root` as its scenario files last loaded.
    pub fn build<'a>(root: &Path, loaded: impl IntoIterator<Item = Node<'a>>) -> Graph {
        let baselines = Baselines::new(root);
        let mut graph = Graph {
            config: root.join(config::PATH),
            templates: root.join(crate::project::TEMPLATES_DIR),
            ..Graph::default()
        };
        for file in loaded {
            let Some(scenario) = file.scenario else {
                graph.invalid.insert(file.path.to_path_buf());
                continue;
            };
            let depends = file.templates.iter().cloned().chain([baselines.path(&scenario.name)]);
            for dependency in depends {
                graph.files.entry(dependency).or_default().insert(file.path.to_path_buf());
            }
            let images =
                scenario.services.iter().map(|s| &s.image).chain(scenario.steps.iter().filter_map(Step::image));
            for image in images {
                if let ImageSource::Build(dir) = image {
                    graph.contexts.push((lexical(dir), file.path.to_path_buf()));
                }
            }
        }
        graph
    }

    /// The `build` directories scenarios use.
    pub fn contexts(&self) -> impl Iterator<Item = &PathBuf> {
        self.contexts.iter().map(|(context, _)| context)
    }

    /// What the changed `paths` (absolute) affect. A scenario file affects itself, whether it is
    /// known, new or deleted: the caller knows which files are scenarios (`is_scenario`).
    pub fn affected(&self, paths: &[PathBuf], is_scenario: impl Fn(&Path) -> bool) -> Affected {
        let mut affected = Affected::default();
        for path in paths {
            if *path == self.config {
                affected.everything = true;
            }
            if is_scenario(path) {
                affected.scenarios.insert(path.clone());
            }
            if let Some(dependents) = self.files.get(path) {
                affected.scenarios.extend(dependents.iter().cloned());
            }
            if path.starts_with(&self.templates) {
                affected.scenarios.extend(self.invalid.iter().cloned());
            }
            for (context, scenario) in &self.contexts {
                if path.starts_with(context) {
                    affected.contexts.insert(context.clone());
                    affected.scenarios.insert(scenario.clone());
                }
            }
        }
        affected
    }
}

/// `path` without `.` and `..` components (`scenarios/../app` → `app`), as file events name it.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Project;
    use crate::scenario::Loader;
    use crate::scenario::vars::Overrides;

    /// A project: `a` imports macros.tera (which includes common.toml), `b` includes common.toml,
    /// `c` uses no template and builds an image from `app/`, `broken` does not load.
    fn project() -> (tempfile::TempDir, Project, Vec<Loaded>) {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(".clnrm/config.toml", "[defaults]\nimage = \"busybox\"\n");
        write("templates/common.toml", "image = \"busybox\"\n");
        write(
            "templates/macros.tera",
            "{% macro step(name) %}[[steps]]\nname = \"{{ name }}\"\n{% include \"common.toml\" %}\nrun = [\"true\"]\n{% endmacro step %}",
        );
        write("templates/unused.tera", "");
        write("scenarios/a.clnrm.toml", "{% import \"macros.tera\" as m %}\n{{ m::step(name=\"x\") }}\n");
        write("scenarios/b.clnrm.toml", "[[steps]]\nname = \"y\"\n{% include \"common.toml\" %}\nrun = [\"true\"]\n");
        write(
            "scenarios/c.clnrm.toml",
            "[services.app]\nbuild = \"../app\"\n\n[[steps]]\nname = \"z\"\nrun = [\"true\"]\n",
        );
        write("app/Dockerfile", "FROM busybox\n");
        write("scenarios/broken.clnrm.toml", "[[steps]\n");
        let project = Project::discover(dir.path()).unwrap();
        let files: Vec<PathBuf> =
            ["a", "b", "c", "broken"].iter().map(|n| dir.path().join(format!("scenarios/{n}.clnrm.toml"))).collect();
        let loaded = Loader::new(&project, Overrides::default()).load_all(&files);
        (dir, project, loaded)
    }

    fn names(affected: &Affected) -> Vec<String> {
        affected.scenarios.iter().map(|p| p.file_name().unwrap().to_string_lossy().replace(".clnrm.toml", "")).collect()
    }

    #[test]
    fn a_change_affects_exactly_the_scenarios_that_depend_on_it() {
        let (dir, project, loaded) = project();
        assert!(loaded[..3].iter().all(|l| l.scenario.is_some()), "{:?}", loaded[0].diagnostics);
        let graph = Graph::build(&project.root, loaded.iter().map(Node::from));
        let root = dir.path();
        let scenario = |p: &Path| p.to_string_lossy().ends_with(".clnrm.toml");
        let affected = |relative: &str| graph.affected(&[root.join(relative)], scenario);

        assert_eq!(names(&affected("scenarios/b.clnrm.toml")), ["b"]);
        assert_eq!(names(&affected("scenarios/new.clnrm.toml")), ["new"]);
        // Templates: their dependents, transitively, plus what does not load now.
        assert_eq!(names(&affected("templates/macros.tera")), ["a", "broken"]);
        assert_eq!(names(&affected("templates/common.toml")), ["a", "b", "broken"]);
        assert_eq!(names(&affected("templates/unused.tera")), ["broken"]);
        // A build context: its users, and the image to rebuild.
        let built = affected("app/Dockerfile");
        assert_eq!(names(&built), ["c"]);
        assert_eq!(built.contexts.len(), 1);
        // An accepted baseline reruns its scenario's comparison.
        assert_eq!(names(&affected("baselines/b.toml")), ["b"]);
        assert!(affected(".clnrm/config.toml").everything);
        assert!(affected("README.md").is_empty());
    }
}
