//! File events, debounced: notify watches the directories a project's scenarios come from, and
//! the debouncer turns an editor's burst of writes, renames and chmods into one batch of paths.
//!
//! Only what scenarios depend on is watched (scenario directories, `templates/`, `.clnrm/`,
//! `baselines/` and `build` contexts), never the whole project: a `target/` or `node_modules/`
//! beside them would cost a watch per directory. The project root is watched without recursion,
//! so a directory created later (a first template) is noticed and watched from then on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::RecommendedWatcher;
use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

use super::filter::Filter;

/// What arrives from the watcher.
#[derive(Debug)]
pub enum Event {
    /// Files changed (absolute paths, none that the filter ignores).
    Changed(Vec<PathBuf>),
    /// The watcher reported a problem (e.g. too many watches).
    Error(String),
}

pub struct Events {
    debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    /// What is watched now, how, and the inode it had then (a new one means it was made again).
    watched: BTreeMap<PathBuf, (RecursiveMode, u64)>,
    filter: Arc<Filter>,
    /// The first sync is over: what appears from then on may have changed unseen.
    started: bool,
}

impl Events {
    /// Starts watching nothing yet; changes arrive on the returned channel `debounce` after the
    /// last event of a burst.
    pub fn start(debounce: Duration, filter: Filter) -> Result<(Events, mpsc::UnboundedReceiver<Event>), String> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let filter = Arc::new(filter);
        let ignored = Arc::clone(&filter);
        let handler = move |result: DebounceEventResult| {
            let event = match result {
                Ok(events) => {
                    let mut paths: Vec<PathBuf> = events
                        .into_iter()
                        .filter(|e| !e.event.kind.is_access())
                        .flat_map(|e| e.event.paths)
                        .filter(|p| !ignored.ignores(p))
                        .collect();
                    paths.sort();
                    paths.dedup();
                    if paths.is_empty() {
                        return;
                    }
                    Event::Changed(paths)
                }
                Err(errors) => Event::Error(errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")),
            };
            let _ = sender.send(event);
        };
        let debouncer = new_debouncer(debounce.max(Duration::from_millis(1)), None, handler)
            .map_err(|e| format!("cannot watch files: {e}"))?;
        Ok((Events { debouncer, watched: BTreeMap::new(), filter, started: false }, receiver))
    }

    /// Watches exactly `wanted`; paths that do not exist yet are left for a later call. Returns
    /// the files found in directories watched anew after the first call (created, or deleted and
    /// made again, since the last one), which may have changed before their watch began, and the
    /// problems met.
    pub fn sync(&mut self, wanted: &BTreeMap<PathBuf, RecursiveMode>) -> (Vec<PathBuf>, Vec<String>) {
        let mut problems = Vec::new();
        let stale: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|(path, (mode, inode))| wanted.get(*path) != Some(mode) || inode_of(path) != Some(*inode))
            .map(|(path, _)| path.clone())
            .collect();
        for path in stale {
            let _ = self.debouncer.unwatch(&path);
            self.watched.remove(&path);
        }
        let mut appeared = Vec::new();
        for (path, mode) in wanted {
            let Some(inode) = inode_of(path).filter(|_| !self.watched.contains_key(path)) else { continue };
            match self.debouncer.watch(path, *mode) {
                Ok(()) => {
                    self.watched.insert(path.clone(), (*mode, inode));
                    if self.started {
                        files_in(path, *mode == RecursiveMode::Recursive, &mut appeared);
                    }
                }
                Err(e) => problems.push(format!("cannot watch {}: {e}", path.display())),
            }
        }
        self.started = true;
        appeared.retain(|p| !self.filter.ignores(p));
        (appeared, problems)
    }
}

fn inode_of(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// The files in `dir` (and below it, when `recursive`).
fn files_in(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() && recursive => files_in(&path, true, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}
