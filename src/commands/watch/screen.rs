//! What `watch` shows. On a terminal (and not in CI) the screen is redrawn when a run's results
//! are ready, so the previous results stay until then: every scenario's latest result, the run's
//! failures and the problems of invalid files, then a status line with the keys. While a run goes,
//! the live line of `run` says what is running. Elsewhere (a pipe, CI) everything is appended as
//! plain lines, which is also what tests read.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use crate::diagnostic::Diagnostic;
use crate::output::{self, DIM};
use crate::record::Record;
use crate::record::outcome::Status;
use crate::report::terminal::{self, status_line};

pub struct Screen {
    live: bool,
    /// Keys are read (shown in the status line).
    keys: bool,
    /// The latest result line of each scenario, by file.
    latest: BTreeMap<String, String>,
    runs: usize,
}

impl Screen {
    /// `ci`: the environment says CI (plain lines even on a terminal).
    pub fn new(keys: bool, ci: bool) -> Screen {
        let live = std::io::stdout().is_terminal() && !ci;
        Screen { live, keys, latest: BTreeMap::new(), runs: 0 }
    }

    pub fn changed(&self, shown: &[String]) {
        output::line(format!("{DIM}changed:{DIM:#} {}", shown.join(", ")));
    }

    /// Problems found by a reload, shown at once.
    pub fn diagnostics(&self, diagnostics: &[&Diagnostic]) {
        output::diagnostics(diagnostics.iter().copied());
    }

    /// A run begins; its number.
    pub fn starting(&mut self, scenarios: usize) -> usize {
        self.runs += 1;
        output::line(format!("{DIM}run {}:{DIM:#} {}", self.runs, output::count(scenarios, "scenario")));
        self.runs
    }

    /// A run's results are ready. `exists` tells which scenario files are still there, and
    /// `problems` are those of every invalid file (shown again when the screen is redrawn).
    pub fn finished(&mut self, record: &Record, exists: impl Fn(&str) -> bool, problems: &[&Diagnostic]) {
        for outcome in &record.scenarios {
            // CACHED says nothing new about a scenario whose result is on screen already.
            if outcome.status != Status::Cached || !self.latest.contains_key(&outcome.file) {
                self.latest.insert(outcome.file.clone(), status_line(outcome));
            }
        }
        self.latest.retain(|file, _| exists(file));
        if self.live {
            // Clear the screen and the scrollback, then the latest state of everything.
            output::line("\x1b[H\x1b[2J\x1b[3J");
            output::line(format!("{DIM}run {} — latest result of each scenario:{DIM:#}", self.runs));
            for line in self.latest.values() {
                output::line(line);
            }
            output::diagnostics(problems.iter().copied());
        }
        terminal::print_summary(record);
    }

    /// Nothing is running: what the user can do.
    pub fn idle(&self, pending: usize) {
        let hint = if self.keys {
            let accept = if pending > 0 { format!("a accept {pending} pending baselines · ") } else { String::new() };
            format!(" · {accept}r rerun all · q quit")
        } else {
            " (Ctrl-C to stop)".to_string()
        };
        output::line(format!("{DIM}watching for changes{hint}{DIM:#}"));
    }
}
