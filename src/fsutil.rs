//! File writes that never leave a half-written file behind.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader (or a crash) sees either the old content or the new, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let temp = dir.join(temp_name(&name, std::process::id(), nonce));
    let result = std::fs::File::create(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        drop(file);
        std::fs::rename(&temp, path)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// How many bytes [`write_atomic`]'s temporary file name adds to the name of the file it writes, at
/// most: file names hold at most 255 bytes, so a name within this of the limit cannot be written.
pub const TEMP_NAME_EXTRA: usize = ".".len() + ".4294967295".len() + ".999999999".len() + ".tmp".len();

/// The temporary file beside `name`, hidden, unique per process and attempt.
fn temp_name(name: &str, pid: u32, nonce: u32) -> String {
    format!(".{name}.{pid}.{nonce}.tmp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_add_at_most_the_documented_length() {
        assert_eq!(temp_name("a.toml", u32::MAX, 999_999_999).len(), "a.toml".len() + TEMP_NAME_EXTRA);
    }

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failure_leaves_the_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("is-a-dir");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), "x").unwrap();
        assert!(write_atomic(&target, b"new").is_err());
        assert!(target.join("keep").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
