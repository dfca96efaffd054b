//! Finding scenario files: `*.clnrm.toml` under the given directories (recursively, skipping hidden
//! directories), plus any file named explicitly whatever its name.

use std::path::{Path, PathBuf};

/// The suffix that marks a scenario file (contract).
pub const SUFFIX: &str = ".clnrm.toml";

/// The scenario files under `paths`, sorted and without duplicates. A path that does not exist is
/// returned as the error, since it is almost always a typo the user wants to hear about.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, PathBuf> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut found);
        } else if path.is_file() {
            found.push(path.clone());
        } else {
            return Err(path.clone());
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() && !name.starts_with('.') {
            walk(&entry.path(), out);
        } else if name.ends_with(SUFFIX) && entry.path().is_file() {
            out.push(entry.path());
        }
    }
}

/// The default scenario name for a file: its name without the suffix.
pub fn stem(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match name.strip_suffix(SUFFIX) {
        Some(stem) => stem.to_string(),
        None => path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_scenarios_recursively_and_skips_hidden_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in ["a.clnrm.toml", "sub/b.clnrm.toml", "notes.toml", ".hidden/c.clnrm.toml"] {
            std::fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            std::fs::write(root.join(f), "").unwrap();
        }
        let found = discover(&[root.to_path_buf(), root.join("notes.toml")]).unwrap();
        let names: Vec<_> =
            found.iter().map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["a.clnrm.toml", "notes.toml", "sub/b.clnrm.toml"]);
        assert_eq!(discover(&[root.join("nope")]), Err(root.join("nope")));
    }

    #[test]
    fn stem_strips_the_scenario_suffix() {
        assert_eq!(stem(Path::new("x/checkout.clnrm.toml")), "checkout");
        assert_eq!(stem(Path::new("x/other.toml")), "other");
    }
}
