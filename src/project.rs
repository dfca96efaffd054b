//! The project: its root (the nearest directory holding `.clnrm/config.toml`, like Cargo finds
//! `Cargo.toml`), its config, and how paths are shown to the user.

use std::path::{Path, PathBuf};

use crate::config::{self, Config};
use crate::diagnostic::{Diagnostic, SourceFile};

/// The directory, relative to the project root, whose files are importable templates.
pub const TEMPLATES_DIR: &str = "templates";

pub struct Project {
    /// The project root; default scenario directories, `templates/` and `.clnrm/` are under it.
    pub root: PathBuf,
    /// The working directory, for showing paths relative to it.
    pub cwd: PathBuf,
    pub config: Config,
    /// The config file's display path (whether or not it exists), for diagnostics.
    pub config_name: String,
}

impl Project {
    /// Finds the project containing `cwd` and reads its config. Without a config file anywhere up
    /// the tree, `cwd` is the root and every setting has its default.
    pub fn discover(cwd: &Path) -> Result<Project, Vec<Diagnostic>> {
        let root = cwd.ancestors().find(|dir| dir.join(config::PATH).is_file()).unwrap_or(cwd).to_path_buf();
        let mut project =
            Project { root, cwd: cwd.to_path_buf(), config: Config::default(), config_name: String::new() };
        let path = project.root.join(config::PATH);
        project.config_name = project.display(&path);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| {
                    vec![
                        Diagnostic::error("not-utf8", "the config file is not valid UTF-8")
                            .in_file(project.config_name.clone()),
                    ]
                })?;
                project.config = Config::parse(&SourceFile::new(project.config_name.clone(), text))?;
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(vec![
                    Diagnostic::error("io", format!("cannot read the config: {err}"))
                        .in_file(project.config_name.clone()),
                ]);
            }
        }
        Ok(project)
    }

    /// `path` as the user should see it: relative to the working directory when it is inside it.
    pub fn display(&self, path: &Path) -> String {
        let shown = path.strip_prefix(&self.cwd).unwrap_or(path);
        let text = shown.to_string_lossy();
        if text.is_empty() { ".".into() } else { text.into_owned() }
    }

    /// The directories searched when no path is given (`[run] scenarios`).
    pub fn scenario_dirs(&self) -> Vec<PathBuf> {
        self.config.run.scenarios.iter().map(|d| self.root.join(d)).collect()
    }

    pub fn templates_dir(&self) -> PathBuf {
        self.root.join(TEMPLATES_DIR)
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.root.join(".clnrm").join("cache")
    }
}
