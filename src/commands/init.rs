//! `clnrm init [DIR]`: scaffold a project whose example passes `clnrm dry-run` straight away.

use std::path::Path;

use crate::error::Error;
use crate::output::{self, DIM, Format, OK};

/// The files of a new project: path relative to the project root, and content.
const FILES: [(&str, &str); 5] = [
    (crate::config::PATH, include_str!("../../assets/init/config.toml")),
    (".clnrm/.gitignore", "cache/\nruns/\n"),
    ("scenarios/hello.clnrm.toml", include_str!("../../assets/init/hello.clnrm.toml")),
    ("templates/macros.tera", include_str!("../../assets/init/macros.tera")),
    ("baselines/.gitkeep", ""),
];

pub fn run(cwd: &Path, dir: &Path, format: Format) -> Result<(), Error> {
    if dir.join(crate::config::PATH).exists() {
        return Err(Error::Usage(format!(
            "{} is already a clnrm project (it has {}); nothing was changed",
            shown(cwd, dir),
            crate::config::PATH
        )));
    }
    let mut created = Vec::new();
    let mut kept = Vec::new();
    for (relative, content) in FILES {
        let path = dir.join(relative);
        if path.exists() {
            kept.push(relative);
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
        }
        crate::fsutil::write_atomic(&path, content.as_bytes())
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        created.push(relative);
    }
    match format {
        Format::Json => {
            output::json(&serde_json::json!({ "project": shown(cwd, dir), "created": created, "kept": kept }))
        }
        Format::Human => {
            output::line(format!("{OK}Created{OK:#} a clnrm project in {}", shown(cwd, dir)));
            for file in &created {
                output::line(format!("  {file}"));
            }
            for file in &kept {
                output::line(format!("  {file} {DIM}(already there, kept){DIM:#}"));
            }
            let cd = if dir == cwd { String::new() } else { format!("cd {} && ", shown(cwd, dir)) };
            output::line(format!("\nNext: {cd}clnrm dry-run   {DIM}# checks the example without Docker{DIM:#}"));
        }
    }
    Ok(())
}

fn shown(cwd: &Path, dir: &Path) -> String {
    let relative = dir.strip_prefix(cwd).unwrap_or(dir).to_string_lossy().into_owned();
    if relative.is_empty() { ".".into() } else { relative }
}
