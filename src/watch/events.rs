//! File events, debounced: notify watches the directories a project's scenarios come from, and
//! the debouncer turns an editor's burst of writes, renames and chmods into one batch of paths.
//!
//! Only what scenarios depend on is watched (scenario directories, `templates/`, `.clnrm/`,
//! `baselines/` and `build` contexts), never the whole project: a `target/` or `node_modules/`
//! beside them would cost a watch per directory. The project root is watched without recursion,
//! so a directory created later (a first template) is noticed and watched from then on.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use notify::RecommendedWatcher;
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
    /// What is watched now, and how.
    watched: BTreeMap<PathBuf, RecursiveMode>,
}

impl Events {
    /// Starts watching nothing yet; changes arrive on the returned channel `debounce` after the
    /// last event of a burst.
    pub fn start(debounce: Duration, filter: Filter) -> Result<(Events, mpsc::UnboundedReceiver<Event>), String> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let handler = move |result: DebounceEventResult| {
            let event = match result {
                Ok(events) => {
                    let mut paths: Vec<PathBuf> = events
                        .into_iter()
                        .filter(|e| !e.event.kind.is_access())
                        .flat_map(|e| e.event.paths)
                        .filter(|p| !filter.ignores(p))
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
        Ok((Events { debouncer, watched: BTreeMap::new() }, receiver))
    }

    /// Watches exactly `wanted` (paths that do not exist yet are left for a later call). A path
    /// in `renewed` is watched afresh: it was deleted and made again, which ends its watch.
    pub fn sync(&mut self, wanted: &BTreeMap<PathBuf, RecursiveMode>, renewed: &[PathBuf]) -> Vec<String> {
        let mut problems = Vec::new();
        let stale: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|(path, mode)| wanted.get(*path) != Some(mode) || renewed.contains(path) || !path.exists())
            .map(|(path, _)| path.clone())
            .collect();
        for path in stale {
            let _ = self.debouncer.unwatch(&path);
            self.watched.remove(&path);
        }
        for (path, mode) in wanted {
            if self.watched.contains_key(path) || !path.exists() {
                continue;
            }
            match self.debouncer.watch(path, *mode) {
                Ok(()) => {
                    self.watched.insert(path.clone(), *mode);
                }
                Err(e) => problems.push(format!("cannot watch {}: {e}", path.display())),
            }
        }
        problems
    }
}
