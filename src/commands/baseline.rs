//! `clnrm baseline pending|review|accept|reject`: what `run` left for review in `baselines/`
//! (`NAME.toml.new` beside `NAME.toml`), and deciding about it. Nothing here runs a scenario.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use serde_json::json;

use crate::baseline::changes::Differences;
use crate::baseline::diff::{Diff, diff};
use crate::baseline::files::{self, Baselines, DIR};
use crate::baseline::merge::{self, Accepted};
use crate::baseline::normalize::Baseline;
use crate::baseline::store::duration;
use crate::baseline::thresholds::Thresholds;
use crate::baseline::thresholds::{self, Limits, SHOWN_SLOWER, Slower};
use crate::cli::BaselineCommand;
use crate::environment::Environment;
use crate::error::Error;
use crate::output::{self, DIM, Format, NOTE, OK, count};
use crate::project::Project;
use crate::report::differences;

/// `clnrm baseline …`; deciding is refused under CI (`env`): baselines change on a workstation
/// and arrive in CI by commit.
pub fn run(project: &Project, command: BaselineCommand, format: Format, env: &Environment) -> Result<(), Error> {
    let baselines = Baselines::new(&project.root);
    let rule = Rule::of(&project.config.thresholds);
    if !matches!(command, BaselineCommand::Pending) {
        refuse_in_ci(env.ci)?;
    }
    match command {
        BaselineCommand::Pending => pending(&baselines, rule, format),
        BaselineCommand::Accept { scenarios } => decide(&baselines, rule, &scenarios, Decision::Accept),
        BaselineCommand::Reject { scenarios } => decide(&baselines, rule, &scenarios, Decision::Reject),
        BaselineCommand::Review { scenarios } => review(&baselines, rule, &scenarios),
    }
}

/// The duration rule pending baselines are judged by: a span is slower when its median grew by
/// more than `percent` and more than `floor`, and accepting keeps the stored statistics of a span
/// whose medians are within it both ways ([`merge::accepted`]). It is the config's `[thresholds]`
/// `duration` and `duration_floor` (or their defaults), so that what a run gated on is what the
/// reviewer sees; where the config turns durations off, what `clnrm diff` shows. A scenario's own
/// `[baseline] thresholds` are not read: that would load every scenario file to list a directory.
#[derive(Debug, Clone, Copy)]
struct Rule {
    percent: f64,
    floor: Duration,
}

impl Rule {
    fn of(config: &Thresholds) -> Rule {
        let limits = Limits::resolve(config, &Thresholds::default());
        Rule { percent: limits.duration.unwrap_or(SHOWN_SLOWER), floor: limits.floor }
    }
}

/// A pending baseline with what it changes.
struct Pending {
    scenario: String,
    new: Baseline,
    /// The stored baseline it would replace, compared with it (`None`: a new one).
    stored: Option<Compared>,
}

/// A stored baseline and how a pending one differs from it.
struct Compared {
    old: Baseline,
    diff: Diff,
    /// Matched spans slower than their stored counterparts by the rule.
    slower: Vec<Slower>,
    /// The differences as shown.
    changes: Differences,
    rule: Rule,
}

impl Pending {
    fn new(scenario: String, old: Option<Baseline>, new: Baseline, rule: Rule) -> Pending {
        let stored = old.map(|old| {
            let diff = diff(&old, &new);
            let slower = thresholds::slower(&diff, &new, rule.percent, rule.floor);
            let changes = Differences::of(&old, &new, &diff, &slower);
            Compared { old, diff, slower, changes, rule }
        });
        Pending { scenario, new, stored }
    }

    /// One line: what changed, or that nothing did by the rule (a reviewer must not read "no
    /// differences" where durations moved within it), and the run counts when they differ.
    fn summary(&self) -> String {
        let Some(c) = &self.stored else { return format!("new: {}", count(self.new.spans.len(), "span")) };
        let what = if c.diff.is_same_shape() && c.slower.is_empty() {
            format!(
                "unchanged: same spans, none slower by more than +{}% and {}",
                c.rule.percent,
                duration(c.rule.floor)
            )
        } else {
            format!("changed: {}", differences::summary(&c.changes))
        };
        if c.old.runs == self.new.runs {
            return what;
        }
        format!("{what}; {} (stored: {})", count(self.new.runs as usize, "run"), count(c.old.runs as usize, "run"))
    }

    /// The differences as a tree, for the terminal; a new baseline shows all its spans as added.
    fn tree(&self) -> String {
        match &self.stored {
            Some(c) => differences::tree(&c.changes).styled(),
            None => {
                let empty = Baseline { spans: Vec::new(), ..self.new.clone() };
                differences::tree(&Differences::of(&empty, &self.new, &diff(&empty, &self.new), &[])).styled()
            }
        }
    }

    /// What accepting it writes: the stored statistics kept where they stand better.
    fn accepted(&self) -> Accepted {
        match &self.stored {
            Some(c) => merge::accepted(&c.old, &self.new, &c.diff, c.rule.percent, c.rule.floor),
            None => Accepted { baseline: self.new.clone(), kept: 0 },
        }
    }
}

/// Reads the pending baselines of `names` (all when empty). A name without one is a usage error
/// that lists those there are; a pending or stored file that is not a baseline is exit 3, naming it.
fn load(baselines: &Baselines, rule: Rule, names: &[String], format: Format) -> Result<Vec<Pending>, Error> {
    let all = baselines.pending().map_err(|e| Error::io(format!("cannot list {DIR}/"), e))?;
    if let Some(unknown) = names.iter().find(|n| !all.contains(n)) {
        let there = if all.is_empty() { "there are none".to_string() } else { format!("pending: {}", all.join(", ")) };
        return Err(Error::Usage(format!("`{unknown}` has no pending baseline ({there})")));
    }
    let chosen = if names.is_empty() { all } else { names.to_vec() };
    chosen
        .into_iter()
        .map(|scenario| {
            let file = files::shown(&scenario);
            let invalid = |d: Box<crate::diagnostic::Diagnostic>| super::invalid(format, &[*d]);
            let new = files::read(&baselines.pending_path(&scenario), &files::shown_pending(&scenario))
                .map_err(invalid)?
                .baseline;
            let old = baselines.load(&scenario, &file).map_err(invalid)?.map(|s| s.baseline);
            Ok(Pending::new(scenario, old, new, rule))
        })
        .collect()
}

fn pending(baselines: &Baselines, rule: Rule, format: Format) -> Result<(), Error> {
    let pending = load(baselines, rule, &[], format)?;
    if format == Format::Json {
        let items: Vec<_> = pending
            .iter()
            .map(|p| {
                let stored = p.stored.as_ref();
                json!({
                    "scenario": p.scenario,
                    "file": files::shown_pending(&p.scenario),
                    "kind": if stored.is_some() { "changed" } else { "new" },
                    "summary": p.summary(),
                    "runs": p.new.runs,
                    "stored_runs": stored.map(|c| c.old.runs),
                    "diff": stored.map(|c| differences::json(&c.changes)),
                })
            })
            .collect();
        output::json(&json!({ "pending": items }));
        return Ok(());
    }
    if pending.is_empty() {
        output::line("no pending baselines");
        return Ok(());
    }
    for p in &pending {
        output::line(format!("{}  {DIM}{}{DIM:#}  {}", p.scenario, files::shown_pending(&p.scenario), p.summary()));
    }
    output::line(format!(
        "{} pending; `clnrm baseline review` shows each diff, `clnrm baseline accept|reject [SCENARIO…]` decides",
        pending.len()
    ));
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Decision {
    Accept,
    Reject,
}

fn refuse_in_ci(ci: bool) -> Result<(), Error> {
    if ci {
        return Err(Error::Usage(format!(
            "refusing to change {DIR}/ while CI is set; decide about pending baselines on a workstation"
        )));
    }
    Ok(())
}

fn decide(baselines: &Baselines, rule: Rule, names: &[String], decision: Decision) -> Result<(), Error> {
    let pending = load(baselines, rule, names, Format::Human)?;
    if pending.is_empty() {
        output::line("no pending baselines");
    }
    for p in &pending {
        apply(baselines, p, decision)?;
    }
    Ok(())
}

/// Accepts (writes the pending baseline over the stored one, keeping the stored statistics where
/// they stand better, and removes the pending file) or rejects (deletes it), and says so.
fn apply(baselines: &Baselines, pending: &Pending, decision: Decision) -> Result<(), Error> {
    let scenario = &pending.scenario;
    let file = files::shown(scenario);
    match decision {
        Decision::Accept => {
            let (what, _) = write_accepted(baselines, pending)?;
            output::line(format!("{OK}accepted{OK:#} {file} ({what})"));
        }
        Decision::Reject => {
            baselines.discard(scenario).map_err(|e| Error::io(format!("cannot delete {file}.new"), e))?;
            output::line(format!("{NOTE}rejected{NOTE:#} {file}.new"));
        }
    }
    Ok(())
}

/// Writes what accepting `pending` makes of it ([`Pending::accepted`]) as the baseline and removes
/// the pending file; what it accepted, in words, and the hash of the file written.
fn write_accepted(baselines: &Baselines, pending: &Pending) -> Result<(String, blake3::Hash), Error> {
    let accepted = pending.accepted();
    let file = files::shown_pending(&pending.scenario);
    let hash = baselines.write(&accepted.baseline).map_err(|e| Error::io(format!("cannot accept {file}"), e))?;
    let mut what = pending.summary();
    if let (Some(c), kept @ 1..) = (&pending.stored, accepted.kept) {
        let runs = count(c.old.runs as usize, "run");
        what += &format!("; kept the stored statistics ({runs}) of {}", count(kept, "span"));
    }
    Ok((what, hash))
}

/// Accepts the scenario's pending baseline as `clnrm baseline accept SCENARIO` does, for `watch`'s
/// `a` key: what it accepted, in words, and the hash of the file written.
pub fn accept(project: &Project, scenario: &str) -> Result<(String, blake3::Hash), Error> {
    let baselines = Baselines::new(&project.root);
    let rule = Rule::of(&project.config.thresholds);
    let pending = load(&baselines, rule, &[scenario.to_string()], Format::Human)?;
    write_accepted(&baselines, &pending[0])
}

/// Shows each pending diff and asks what to do. Needs a terminal: answers typed ahead into a pipe
/// would accept changes nobody looked at.
fn review(baselines: &Baselines, rule: Rule, names: &[String]) -> Result<(), Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "`baseline review` asks on a terminal; without one use `clnrm baseline pending` to list and \
             `clnrm baseline accept|reject [SCENARIO…]` to decide"
                .into(),
        ));
    }
    let pending = load(baselines, rule, names, Format::Human)?;
    if pending.is_empty() {
        output::line("no pending baselines");
        return Ok(());
    }
    let (mut accepted, mut rejected, mut skipped) = (0, 0, 0);
    let mut input = std::io::stdin().lock();
    for (i, p) in pending.iter().enumerate() {
        output::line(format!("\n{NOTE}[{}/{}]{NOTE:#} {} — {}", i + 1, pending.len(), p.scenario, p.summary()));
        let mut out = anstream::stdout().lock();
        let _ = write!(out, "{}", p.tree());
        drop(out);
        let answer = loop {
            print!("accept (a), reject (r), skip (s), quit (q)? ");
            let _ = std::io::stdout().flush();
            let mut line = String::new();
            match input.read_line(&mut line) {
                Ok(0) | Err(_) => break 'q',
                Ok(_) => {}
            }
            match line.trim().to_ascii_lowercase().as_str() {
                "a" | "accept" => break 'a',
                "r" | "reject" => break 'r',
                "s" | "skip" => break 's',
                "q" | "quit" => break 'q',
                _ => continue,
            }
        };
        match answer {
            'a' => {
                apply(baselines, p, Decision::Accept)?;
                accepted += 1;
            }
            'r' => {
                apply(baselines, p, Decision::Reject)?;
                rejected += 1;
            }
            's' => skipped += 1,
            _ => {
                skipped += pending.len() - i;
                break;
            }
        }
    }
    output::line(format!("\nreview: {accepted} accepted, {rejected} rejected, {skipped} skipped"));
    Ok(())
}
