//! `clnrm diff OLD NEW`: compare any two baseline files (stored, pending, or from another branch).

use std::path::Path;

use crate::baseline::changes::Differences;
use crate::baseline::diff::diff;
use crate::baseline::{files, thresholds};
use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::output::{self, Format};
use crate::report::differences;

/// Spans slower by more than `slower` percent (and the default floor) are shown with their times.
pub fn run(cwd: &Path, old: &Path, new: &Path, slower: f64, format: Format) -> Result<(), Error> {
    let read = |path: &Path| files::read(&cwd.join(path), &path.display().to_string()).map(|s| s.baseline);
    let (a, b) = (read(old), read(new));
    let diagnostics: Vec<Diagnostic> =
        [&a, &b].into_iter().filter_map(|r| r.as_ref().err().map(|d| (**d).clone())).collect();
    let (Ok(a), Ok(b)) = (a, b) else { return Err(super::invalid(format, &diagnostics)) };
    let d = diff(&a, &b);
    let slow = thresholds::slower(&d, &b, slower, thresholds::DEFAULT_FLOOR);
    let changes = Differences::of(&a, &b, &d, &slow);
    match format {
        Format::Json => output::json(&differences::json(&changes)),
        Format::Human => {
            output::line(format!("{} → {}: {}", old.display(), new.display(), differences::summary(&changes)));
            let mut out = anstream::stdout().lock();
            let _ = std::io::Write::write_all(&mut out, differences::tree(&changes).styled().as_bytes());
        }
    }
    if d.is_same_shape() { Ok(()) } else { Err(Error::Differs) }
}
