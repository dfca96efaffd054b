//! `clnrm baseline pending|review|accept|reject`: what `run` left for review in `baselines/`
//! (`NAME.toml.new` beside `NAME.toml`), and deciding about it. Nothing here runs a scenario.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::json;

use crate::baseline::diff::diff;
use crate::baseline::files::{self, Baselines, DIR};
use crate::baseline::normalize::Baseline;
use crate::baseline::show;
use crate::cli::BaselineCommand;
use crate::error::Error;
use crate::output::{self, DIM, Format, NOTE, OK};
use crate::project::Project;

pub fn run(project: &Project, command: BaselineCommand, format: Format) -> Result<(), Error> {
    let baselines = Baselines::new(&project.root);
    match command {
        BaselineCommand::Pending => pending(&baselines, format),
        BaselineCommand::Accept { scenarios } => decide(&baselines, &scenarios, Decision::Accept),
        BaselineCommand::Reject { scenarios } => decide(&baselines, &scenarios, Decision::Reject),
        BaselineCommand::Review { scenarios } => review(&baselines, &scenarios),
    }
}

/// A pending baseline with what it changes.
struct Pending {
    scenario: String,
    /// The stored baseline it would replace (`None`: a new one).
    old: Option<Baseline>,
    new: Baseline,
}

impl Pending {
    fn summary(&self) -> String {
        match &self.old {
            Some(old) => format!("changed: {}", show::summary(&diff(old, &self.new), &[])),
            None => format!("new: {}", output::count(self.new.spans.len(), "span")),
        }
    }

    /// The differences as a tree, for the terminal; a new baseline shows all its spans as added.
    fn tree(&self) -> String {
        let empty = Baseline { spans: Vec::new(), ..self.new.clone() };
        let old = self.old.as_ref().unwrap_or(&empty);
        show::tree(old, &self.new, &diff(old, &self.new), &[]).styled()
    }
}

/// Reads the pending baselines of `names` (all when empty). A name without one is a usage error
/// that lists those there are; a pending or stored file that is not a baseline is exit 3, naming it.
fn load(baselines: &Baselines, names: &[String], format: Format) -> Result<Vec<Pending>, Error> {
    let all = baselines.pending().map_err(|e| Error::io(format!("cannot list {DIR}/"), e))?;
    if let Some(unknown) = names.iter().find(|n| !all.contains(n)) {
        let there = if all.is_empty() { "there are none".to_string() } else { format!("pending: {}", all.join(", ")) };
        return Err(Error::Usage(format!("`{unknown}` has no pending baseline ({there})")));
    }
    let chosen = if names.is_empty() { all } else { names.to_vec() };
    chosen
        .into_iter()
        .map(|scenario| {
            let file = format!("{DIR}/{scenario}.toml");
            let invalid = |d: Box<crate::diagnostic::Diagnostic>| super::invalid(format, &[*d]);
            let new =
                files::read(&baselines.pending_path(&scenario), &format!("{file}.new")).map_err(invalid)?.baseline;
            let old = baselines.load(&scenario, &file).map_err(invalid)?.map(|s| s.baseline);
            Ok(Pending { scenario, old, new })
        })
        .collect()
}

fn pending(baselines: &Baselines, format: Format) -> Result<(), Error> {
    let pending = load(baselines, &[], format)?;
    if format == Format::Json {
        let items: Vec<_> = pending
            .iter()
            .map(|p| {
                let d = p.old.as_ref().map(|old| show::json(old, &p.new, &diff(old, &p.new), &[]));
                json!({
                    "scenario": p.scenario,
                    "file": format!("{DIR}/{}.toml.new", p.scenario),
                    "kind": if p.old.is_some() { "changed" } else { "new" },
                    "summary": p.summary(),
                    "diff": d,
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
        output::line(format!("{}  {DIM}{DIR}/{}.toml.new{DIM:#}  {}", p.scenario, p.scenario, p.summary()));
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

fn refuse_in_ci() -> Result<(), Error> {
    if output::in_ci() {
        return Err(Error::Usage(format!(
            "refusing to change {DIR}/ while CI is set; decide about pending baselines on a workstation"
        )));
    }
    Ok(())
}

fn decide(baselines: &Baselines, names: &[String], decision: Decision) -> Result<(), Error> {
    refuse_in_ci()?;
    let pending = load(baselines, names, Format::Human)?;
    if pending.is_empty() {
        output::line("no pending baselines");
    }
    for p in &pending {
        apply(baselines, p, decision)?;
    }
    Ok(())
}

/// Accepts (renames the pending file over the baseline) or rejects (deletes it), and says so.
fn apply(baselines: &Baselines, pending: &Pending, decision: Decision) -> Result<(), Error> {
    let scenario = &pending.scenario;
    let file = format!("{DIR}/{scenario}.toml");
    match decision {
        Decision::Accept => {
            baselines.accept(scenario).map_err(|e| Error::io(format!("cannot accept {file}.new"), e))?;
            output::line(format!("{OK}accepted{OK:#} {file} ({})", pending.summary()));
        }
        Decision::Reject => {
            baselines.discard(scenario).map_err(|e| Error::io(format!("cannot delete {file}.new"), e))?;
            output::line(format!("{NOTE}rejected{NOTE:#} {file}.new"));
        }
    }
    Ok(())
}

/// Shows each pending diff and asks what to do. Needs a terminal: answers typed ahead into a pipe
/// would accept changes nobody looked at.
fn review(baselines: &Baselines, names: &[String]) -> Result<(), Error> {
    refuse_in_ci()?;
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "`baseline review` asks on a terminal; without one use `clnrm baseline pending` to list and \
             `clnrm baseline accept|reject [SCENARIO…]` to decide"
                .into(),
        ));
    }
    let pending = load(baselines, names, Format::Human)?;
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
