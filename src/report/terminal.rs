//! The terminal: on an interactive terminal (and not in CI) a live display of done/total, running
//! scenarios and elapsed time with finished scenarios printed above it; otherwise one plain line
//! per scenario (`PASS [ 0.123s] name`). Then a summary that repeats every failure.

use std::io::IsTerminal;
use std::io::Write;
use std::time::Duration;

use anstyle::{AnsiColor, Effects, Style};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Reporter;
use crate::engine::image::{Available, Obtained};
use crate::output::{BAD, DIM, NOTE, OK};
use crate::run::outcome::{BaselineAction, RunReport, ScenarioOutcome, Status};

pub struct Terminal {
    bar: Option<ProgressBar>,
    running: Vec<String>,
}

impl Terminal {
    /// Live display when stderr is a terminal and CI is not set; plain lines otherwise.
    pub fn new() -> Self {
        let live = std::io::stderr().is_terminal() && !crate::output::in_ci();
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

impl Default for Terminal {
    fn default() -> Self {
        Self::new()
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
pub fn print_summary(report: &RunReport) {
    let mut out = anstream::stdout().lock();
    let failures: Vec<&ScenarioOutcome> =
        report.outcomes.iter().filter(|o| o.status.is_failure() || o.status == Status::Regressed).collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\n{BAD}Failures:{BAD:#}");
    }
    for outcome in &failures {
        let _ = writeln!(out, "\n{} {DIM}({}){DIM:#}", status_line(outcome), outcome.file);
        if let Some(failure) = &outcome.failure {
            let _ = writeln!(out, "  {}: {}", failure.place, failure.message);
            // The output of a regression as reports have it, but with its tree coloured.
            let output = match &outcome.baseline {
                Some(baseline) if outcome.status == Status::Regressed => baseline.regression(true),
                _ => failure.output.clone(),
            };
            for line in output.lines() {
                let _ = writeln!(out, "  {DIM}│{DIM:#} {line}");
            }
        }
    }
    print_warnings(&mut out, report);
    print_baselines(&mut out, report);
    let verdict = if report.exit() == crate::exit::Exit::Passed { OK } else { BAD };
    let mut parts = vec![format!("{} passed", report.count(Status::Pass))];
    for (status, word) in [
        (Status::Fail, "failed"),
        (Status::Timeout, "timed out"),
        (Status::Regressed, "regressed"),
        (Status::Cached, "cached"),
        (Status::Skipped, "skipped"),
        (Status::Interrupted, "interrupted"),
    ] {
        let n = report.count(status);
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    let _ = writeln!(
        out,
        "\n{verdict}Summary{verdict:#} [{:>8.3}s] {}: {}",
        report.elapsed.as_secs_f64(),
        crate::output::count(report.outcomes.len(), "scenario"),
        parts.join(", ")
    );
    if let Some(pool) = report.pool.as_ref().filter(|p| !p.acquire.is_empty()) {
        let ms = |d: Option<Duration>| d.map_or("-".into(), crate::duration::display);
        let _ = writeln!(
            out,
            "{DIM}   pool: {} hits, {} misses; acquire p50 {}, p99 {}{DIM:#}",
            pool.hits,
            pool.misses,
            ms(pool.percentile(0.5)),
            ms(pool.percentile(0.99))
        );
    }
    let settled: Vec<Duration> = report.outcomes.iter().filter_map(|o| o.settle).collect();
    if !settled.is_empty() {
        let total: Duration = settled.iter().sum();
        let _ = writeln!(
            out,
            "{DIM}  spans: {} collected; waited {} for them ({} per checked scenario){DIM:#}",
            report.outcomes.iter().map(|o| o.spans).sum::<usize>(),
            crate::duration::display(total),
            crate::duration::display(total / settled.len() as u32)
        );
    }
    let strays = report.strays;
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
    if let Some(note) = report.swept.swept_note() {
        let _ = writeln!(out, "{NOTE}note{NOTE:#}: {note}");
    }
    if report.undelivered > 0 {
        let _ = writeln!(
            out,
            "{NOTE}note{NOTE:#}: {} span exports to the OTLP endpoint were not delivered",
            report.undelivered
        );
    }
    match report.interrupted {
        Some(_) => {
            let _ =
                writeln!(out, "{NOTE}interrupted{NOTE:#}: scheduling stopped and the run's containers were removed");
        }
        None if report.infrastructure => {
            let _ = writeln!(out, "{BAD}infrastructure failure{BAD:#}: the engine failed, see above");
        }
        None => {}
    }
    if report.leftovers > 0 {
        let _ = writeln!(
            out,
            "{BAD}warning{BAD:#}: {} resources could not be removed; `clnrm gc` removes them",
            report.leftovers
        );
    }
}

/// Each scenario's warnings: they do not change its verdict, but a passing scenario may check less
/// than it seems to.
fn print_warnings(out: &mut impl Write, report: &RunReport) {
    let warned: Vec<&ScenarioOutcome> = report.outcomes.iter().filter(|o| !o.warnings.is_empty()).collect();
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
fn print_baselines(out: &mut impl Write, report: &RunReport) {
    let mut pending = Vec::new();
    for outcome in &report.outcomes {
        let Some(baseline) = &outcome.baseline else { continue };
        let file = &baseline.file;
        match baseline.action {
            BaselineAction::Recorded => {
                let _ = writeln!(out, "{OK}recorded{OK:#} {file} ({})", baseline.summary);
            }
            BaselineAction::Updated => {
                let _ = writeln!(out, "{OK}updated{OK:#} {file}: {}", baseline.summary);
                let _ = write!(out, "{}", baseline.tree.styled());
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
        let _ = writeln!(out, "  {}.new  {DIM}{}{DIM:#}", baseline.file, baseline.summary);
        if outcome.status == Status::Pass {
            let _ = write!(out, "{}", baseline.tree.styled());
        }
    }
    let _ = writeln!(
        out,
        "  review them with `clnrm baseline review`, or `clnrm baseline accept` / `clnrm baseline reject` [SCENARIO…]"
    );
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
