//! `clnrm render FILE`: print the TOML a scenario renders to.

use std::path::Path;

use crate::error::Error;
use crate::output::{self, Format};
use crate::project::Project;
use crate::scenario::Loader;
use crate::scenario::vars::Overrides;

pub fn run(project: &Project, file: &Path, vars: Vec<(String, String)>, format: Format) -> Result<(), Error> {
    let path = super::resolve_paths(project, &[file.to_path_buf()], Vec::new())?.remove(0);
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "{} is a directory; `render` takes one scenario file",
            project.display(&path)
        )));
    }
    let (overrides, warnings) = Overrides::from_env(vars);
    if format == Format::Human {
        output::diagnostics(&warnings);
    }
    let loader = Loader::new(project, overrides);
    match loader.render(&path) {
        Ok(text) => {
            match format {
                Format::Human => print!("{text}"),
                Format::Json => output::json(&serde_json::json!({ "path": project.display(&path), "rendered": text })),
            }
            Ok(())
        }
        Err(diagnostics) => Err(super::invalid(format, &diagnostics)),
    }
}
