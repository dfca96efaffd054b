//! The terminal: on an interactive terminal (and not in CI) a live display of done/total, running
//! scenarios and elapsed time with finished scenarios printed above it; otherwise one plain line
//! per scenario (`PASS [ 0.123s] name`). Then a summary that repeats every failure.

use std::io::IsTerminal;
use std::io::Write;
use std::time::Duration;

use anstyle::{AnsiColor, Effects, Style};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::image::{Available, Obtained};
use crate::output::{BAD, DIM, NOTE, OK};
use crate::record::Record;
use crate::record::outcome::{BaselineAction, ScenarioOutcome, Status};
use crate::run::Reporter;

pub struct Terminal {
    bar: Option<ProgressBar>,
    running: Vec<String>,
}

impl Terminal {
    /// Live display when stderr is a terminal and not `ci`; plain lines otherwise.
    pub fn new(ci: bool) -> Self {
        let live = std::io::stderr().is_terminal() && !ci;
        let bar = live.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self { bar, running: Vec::new() }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.suspend(|| print_line(&text)),
            None => print_line(&text),
        }
    }

    fn show_running(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("running: {}", self.running.join(", ")));
        }
    }
}

fn print_line(text: &str) {
    let mut out = anstream::stdout().lock();
    let _ = writeln!(out, "{text}");
}

fn style(status: Status) -> Style {
    match status {
        Status::Pass => OK,
        Status::Fail | Status::Timeout => BAD,
        Status::Regressed => AnsiColor::Magenta.on_default().effects(Effects::BOLD),
        Status::Cached => AnsiColor::Cyan.on_default().effects(Effects::BOLD),
        Status::Skipped | Status::Interrupted => NOTE,
    }
}

/// `   PASS [   0.123s] name`.
pub fn status_line(outcome: &ScenarioOutcome) -> String {
    let s = style(outcome.status);
    let label = outcome.status.label();
    match outcome.status {
        Status::Cached | Status::Skipped => format!("{s}{label:>7}{s:#} {:>11} {}", "", outcome.name),
        _ => format!("{s}{label:>7}{s:#} [{:>8.3}s] {}", outcome.duration.as_secs_f64(), outcome.name),
    }
}

impl Reporter for Terminal {
    fn planned(&mut self, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
        }
    }

    fn image(&mut self, image: &Available) {
        let verb = match image.obtained {
            Obtained::Pulled => "PULLED",
            Obtained::Built => "BUILT",
            Obtained::Present | Obtained::BuildCached => return,
        };
        self.line(format!("{DIM}{verb:>7}{DIM:#} {}", image.reference));
    }

    fn started(&mut self, scenario: &str) {
        self.running.push(scenario.to_string());
        self.show_running();
    }

    fn finished(&mut self, outcome: &ScenarioOutcome) {
        self.running.retain(|r| *r != outcome.name);
        self.line(status_line(outcome));
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        self.show_running();
    }

    fn cleaning(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// The final summary: counts, pool figures, and each failure again with its place, message and
/// output tail, so the reason is the last thing on screen.
pub fn print_summary(record: &Record) {
    let mut out = anstream::stdout().lock();
    let failures: Vec<&ScenarioOutcome> =
        record.scenarios.iter().filter(|o| o.status.is_failure() || o.status == Status::Regressed).collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\n{BAD}Failures:{BAD:#}");
    }
    for outcome in &failures {
        let _ = writeln!(out, "\n{} {DIM}({}){DIM:#}", status_line(outcome), outcome.file);
        if let Some(failure) = &outcome.failure {
            let _ = writeln!(out, "  {}: {}", failure.place, failure.message);
            // The output as reports have it, but with a regression's tree coloured.
            for line in super::failure_output(outcome, true).lines() {
                let _ = writeln!(out, "  {DIM}│{DIM:#} {line}");
            }
        }
    }
    print_warnings(&mut out, record);
    print_baselines(&mut out, record);
    let verdict = if record.exit() == crate::exit::Exit::Passed { OK } else { BAD };
    let mut parts = vec![format!("{} passed", record.count(Status::Pass))];
    for (status, word) in [
        (Status::Fail, "failed"),
        (Status::Timeout, "timed out"),
        (Status::Regressed, "regressed"),
        (Status::Cached, "cached"),
        (Status::Skipped, "skipped"),
        (Status::Interrupted, "interrupted"),
    ] {
        let n = record.count(status);
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    let _ = writeln!(
        out,
        "\n{verdict}Summary{verdict:#} [{:>8.3}s] {}: {}",
        record.run.elapsed.as_secs_f64(),
        crate::output::count(record.scenarios.len(), "scenario"),
        parts.join(", ")
    );
    if let Some(pool) = record.run.pool.as_ref().filter(|p| !p.acquire.is_empty()) {
        let ms = |d: Option<Duration>| d.map_or("-".into(), crate::duration::display);
        let _ = writeln!(
            out,
            "{DIM}   pool: {} hits, {} misses; acquire p50 {}, p99 {}{}{DIM:#}",
            pool.hits,
            pool.misses,
            ms(pool.percentile(0.5)),
            ms(pool.percentile(0.99)),
            record
                .run
                .first_exec
                .map(|d| format!("; first step {} after start", crate::duration::display(d)))
                .unwrap_or_default()
        );
    }
    let settled: Vec<Duration> = record.scenarios.iter().filter_map(|o| o.settle).collect();
    if !settled.is_empty() {
        let total: Duration = settled.iter().sum();
        let _ = writeln!(
            out,
            "{DIM}  spans: {} collected; waited {} for them ({} per checked scenario){DIM:#}",
            record.scenarios.iter().map(|o| o.trace.len()).sum::<usize>(),
            crate::duration::display(total),
            crate::duration::display(total / settled.len() as u32)
        );
    }
    let strays = record.run.strays;
    let stray_parts: Vec<String> =
        [(strays.unroutable, "matched no scenario"), (strays.late, "arrived after their scenario was checked")]
            .into_iter()
            .filter(|&(n, _)| n > 0)
            .map(|(n, what)| format!("{} {what}", crate::output::count(n as usize, "span")))
            .collect();
    if !stray_parts.is_empty() {
        let _ =
            writeln!(out, "{NOTE}note{NOTE:#}: {}; they were not counted in any scenario", stray_parts.join(", and "));
    }
    if strays.conflicting > 0 {
        let _ = writeln!(
            out,
            "{NOTE}note{NOTE:#}: {} named another scenario in `clnrm.scenario` than the one that sent them; \
             each was counted only in the scenario that sent it",
            crate::output::count(strays.conflicting as usize, "span")
        );
    }
    if let Some(note) = record.run.swept.swept_note() {
        let _ = writeln!(out, "{NOTE}note{NOTE:#}: {note}");
    }
    if record.run.undelivered > 0 {
        let _ = writeln!(
            out,
            "{NOTE}note{NOTE:#}: {} span exports to the OTLP endpoint were not delivered",
            record.run.undelivered
        );
    }
    match record.run.interrupted {
        Some(_) => {
            let _ =
                writeln!(out, "{NOTE}interrupted{NOTE:#}: scheduling stopped and the run's containers were removed");
        }
        None if record.run.infrastructure => {
            let why = record.run.error.as_deref().unwrap_or("the engine failed, see above");
            let _ = writeln!(out, "{BAD}infrastructure failure{BAD:#}: {why}");
        }
        None => {}
    }
    if record.run.leftovers > 0 {
        let _ = writeln!(
            out,
            "{BAD}warning{BAD:#}: {} resources could not be removed; `clnrm gc` removes them",
            record.run.leftovers
        );
    }
}

/// Each scenario's warnings: they do not change its verdict, but a passing scenario may check less
/// than it seems to.
fn print_warnings(out: &mut impl Write, record: &Record) {
    let warned: Vec<&ScenarioOutcome> = record.scenarios.iter().filter(|o| !o.warnings.is_empty()).collect();
    if !warned.is_empty() {
        let _ = writeln!(out);
    }
    for outcome in warned {
        for warning in &outcome.warnings {
            let _ = writeln!(out, "{NOTE}warning{NOTE:#}: `{}`: {warning}", outcome.name);
        }
    }
}

/// What happened to baselines: recorded or updated files, pending ones to review, warnings.
fn print_baselines(out: &mut impl Write, record: &Record) {
    let mut pending = Vec::new();
    for outcome in &record.scenarios {
        let Some(baseline) = &outcome.baseline else { continue };
        let file = &baseline.file;
        match baseline.action {
            BaselineAction::Recorded => {
                let _ = writeln!(out, "{OK}recorded{OK:#} {file} ({})", super::baseline_summary(baseline));
            }
            BaselineAction::Updated => {
                let _ = writeln!(out, "{OK}updated{OK:#} {file}: {}", super::baseline_summary(baseline));
                let _ = write!(out, "{}", tree(baseline));
            }
            BaselineAction::Pending => pending.push(outcome),
            BaselineAction::Missing if outcome.status == Status::Pass => {
                let _ = writeln!(
                    out,
                    "{NOTE}note{NOTE:#}: `{}` has no baseline ({file}); nothing was compared",
                    outcome.name
                );
            }
            BaselineAction::Unchanged | BaselineAction::Differs | BaselineAction::Missing => {}
        }
        for warning in &baseline.warnings {
            let _ = writeln!(out, "{NOTE}warning{NOTE:#}: `{}` differs from {file}: {warning}", outcome.name);
        }
    }
    if pending.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{NOTE}Pending baselines:{NOTE:#}");
    for outcome in &pending {
        let Some(baseline) = &outcome.baseline else { continue };
        let _ = writeln!(out, "  {}.new  {DIM}{}{DIM:#}", baseline.file, super::baseline_summary(baseline));
        if outcome.status == Status::Pass {
            let _ = write!(out, "{}", tree(baseline));
        }
    }
    let _ = writeln!(
        out,
        "  review them with `clnrm baseline review`, or `clnrm baseline accept` / `clnrm baseline reject` [SCENARIO…]"
    );
}

/// The differences of a comparison as a styled tree (nothing without a baseline compared).
fn tree(baseline: &crate::record::outcome::BaselineOutcome) -> String {
    baseline.diff.as_ref().map(|d| crate::report::differences::tree(d).styled()).unwrap_or_default()
}

/// Baselines that belong to no scenario of the project.
pub fn print_orphans(orphans: &[String]) {
    let mut out = anstream::stdout().lock();
    for name in orphans {
        let _ = writeln!(
            out,
            "{NOTE}note{NOTE:#}: {} belongs to no scenario; delete it if the scenario is gone",
            crate::baseline::files::shown(name)
        );
    }
}
