//! The command line. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

/// Hermetic integration tests in Docker, checked through the OpenTelemetry spans your system emits.
///
/// Scenarios are Tera-templated TOML files (scenarios/**/*.clnrm.toml). Start with `clnrm init`,
/// then `clnrm dry-run` to check every scenario without touching Docker.
///
/// Exit codes: 0 passed · 1 failed (or `fmt --check` found changes, or `diff` found differences)
/// · 2 usage error · 3 invalid scenario, template, config or baseline · 4 expectations held but a
/// baseline threshold broke · 5 infrastructure failure · 6 no scenario matched · 129/130/131/143
/// interrupted by SIGHUP/SIGINT/SIGQUIT/SIGTERM (after removing everything the run made).
#[derive(Debug, Parser)]
#[command(name = "clnrm", version, max_term_width = 100)]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,

    /// Output format: `human` for people, `json` for tools (one JSON document on stdout).
    #[arg(long, value_enum, default_value_t = Format::Human, global = true)]
    pub format: Format,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new project: config, an example scenario and a template macro it uses.
    ///
    /// Existing files are never overwritten. Afterwards, `clnrm dry-run` passes straight away.
    Init {
        /// Where to create the project (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },

    /// Render and validate scenarios without running anything (no Docker needed).
    ///
    /// Checks TOML syntax, every key and value, template errors, references between services and
    /// steps, dependency cycles, regexes, durations and span selectors, and that scenario names are
    /// unique. Prints one line per file and every problem with its file, line and column.
    #[command(name = "dry-run")]
    DryRun {
        /// Scenario files or directories [default: `[run] scenarios` of the config, i.e. scenarios/].
        paths: Vec<PathBuf>,
        #[command(flatten)]
        vars: VarArgs,
    },

    /// Print a scenario file after template rendering (the TOML that clnrm reads).
    Render {
        /// The scenario file.
        file: PathBuf,
        #[command(flatten)]
        vars: VarArgs,
    },

    /// Format scenario files (and the config) in place: consistent spacing, comments kept.
    ///
    /// Only whitespace changes; Tera tags ({% … %}), expressions and comments are kept as written.
    /// Files with a {% macro %} or {% filter %} block are skipped, never changed.
    Fmt {
        /// Report files that would change, with a diff, and exit 1 if any; change nothing.
        #[arg(long)]
        check: bool,
        /// Files or directories [default: the scenario directories and .clnrm/config.toml].
        paths: Vec<PathBuf>,
    },

    /// Run scenarios in containers: services, steps, expectations, verdicts.
    ///
    /// Scenarios run `--jobs` at a time on a pool of warm containers; each gets fresh containers
    /// and a private network for its services. Unchanged scenarios whose last run passed are
    /// skipped (CACHED) unless `--force`. Nothing is left on the engine afterwards, even after
    /// Ctrl-C (exit 130), SIGTERM (143), SIGHUP (129) or SIGQUIT (131).
    ///
    /// Each passing scenario's trace is compared with its baseline (baselines/NAME.toml): a
    /// difference that breaks a threshold ([thresholds] in the config, [baseline] thresholds in
    /// the scenario) is REGRESS and exit 4. A missing or differing baseline gets a pending
    /// NAME.toml.new for `clnrm baseline review` (CLNRM_UPDATE=auto|always|new|no changes that;
    /// --update-baselines writes the baselines). When CI is set nothing under baselines/ is
    /// written, and a scenario without a baseline fails.
    Run(RunArgs),

    /// Rerun the scenarios a saved file affects, as you edit.
    ///
    /// Watches the scenario directories, templates/, baselines/, .clnrm/config.toml and `build`
    /// directories. A change reloads exactly the scenarios that depend on it (a template: the
    /// scenarios that include or import it; a `build` directory: its image is rebuilt and its
    /// users rerun; a baseline: that scenario's comparison; the config: everything). Problems are
    /// shown at once without touching Docker; valid scenarios then run on a pool that stays warm
    /// between runs (cached ones are skipped). A change during a run cancels the stale work,
    /// removing its containers, and starts again.
    ///
    /// On a terminal: `a` accepts pending baselines, `r` reruns everything, `q` quits. Ctrl-C
    /// quits too (exit 130; SIGTERM 143, SIGHUP 129, SIGQUIT 131); nothing is left on the engine.
    /// Ignores .gitignore'd files, .clnrm/cache, .clnrm/runs, *.new and target/, so clnrm's own
    /// writes never trigger a run. Each run keeps a record (see `clnrm report`).
    Watch(WatchArgs),

    /// Make every image the scenarios name available: pull registry images, build `build` directories.
    Pull {
        /// Scenario files or directories [default: `[run] scenarios` of the config].
        paths: Vec<PathBuf>,
        #[command(flatten)]
        vars: VarArgs,
    },

    /// Remove every container and network clnrm created on the engine, from any run.
    Gc,

    /// Decide about pending baselines: the baselines/NAME.toml.new files `run` writes when a
    /// scenario has no baseline yet or its trace differs from it.
    ///
    /// Refused when CI is set: baselines change on a workstation and arrive in CI by commit.
    Baseline {
        #[command(subcommand)]
        command: BaselineCommand,
    },

    /// Show a stored run again: its summary as `run` printed it, and its reports.
    ///
    /// Every `clnrm run` (and every run inside `watch`) keeps a record of what it found in
    /// .clnrm/runs/RUN-ID.json, the newest also as .clnrm/runs/latest.json ([run] keep_records of
    /// them, default 20). The exit code is the recorded run's.
    Report {
        /// The record to read [default: .clnrm/runs/latest.json].
        #[arg(long, value_name = "RECORD")]
        from: Option<PathBuf>,
        /// Write its JUnit XML report here.
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
        /// Write its JSON report here.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
    },

    /// Compare two baseline files: added, removed and changed spans (attributes, status, kind,
    /// service, parent) as a tree, or JSON with --format json.
    ///
    /// Works on any two files (a pending .new against the baseline, or one from another branch).
    /// Exit 0 when only durations differ, 1 when spans differ, 3 when a file is not a baseline.
    Diff {
        /// The earlier baseline.
        old: PathBuf,
        /// The later baseline.
        new: PathBuf,
        /// Show spans whose median duration grew by more than this percentage (and 2ms).
        #[arg(long, value_name = "PERCENT", default_value_t = crate::baseline::thresholds::SHOWN_SLOWER, value_parser = parse_percent)]
        slower: f64,
    },

    /// Run the span receiver on its own and write what arrives, one JSON trace per line.
    ///
    /// Point any OpenTelemetry SDK at it (OTEL_EXPORTER_OTLP_ENDPOINT=http://ADDR): it serves
    /// OTLP/HTTP (`POST /v1/traces`, protobuf or JSON) and OTLP/gRPC on the same port. A trace is
    /// written once it has been idle for `--idle`; Ctrl-C writes the rest and stops. Spans beyond
    /// `--max-trace-spans` or `--max-spans` are dropped, with a warning naming the trace.
    Collect {
        /// Where to listen (`:0` picks a free port, printed on stderr).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4318")]
        listen: std::net::SocketAddr,
        /// Append to this file instead of writing to stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Write a trace once no span of it has arrived for this long; spans of the trace that
        /// arrive later start a new line with the same trace_id, and a warning names the trace.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s")]
        idle: std::time::Duration,
        /// Spans held for one trace (about 760 bytes each); later spans of it are dropped.
        #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = at_least_one())]
        max_trace_spans: usize,
        /// Spans held for all traces not yet written; beyond it new spans are dropped until
        /// traces are written.
        #[arg(long, value_name = "N", default_value_t = 500_000, value_parser = at_least_one())]
        max_spans: usize,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files or directories [default: `[run] scenarios` of the config, i.e. scenarios/].
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub runner: RunnerArgs,
    /// Stop starting scenarios after the first failure (running ones finish).
    #[arg(long)]
    pub fail_fast: bool,
    /// Run slice K of N (by a stable hash of the scenario name), to split a suite over N machines.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::run::plan::Shard>,
    /// Run scenarios even when unchanged since their last pass.
    #[arg(long)]
    pub force: bool,
    /// Record: write each passing scenario's trace as its baseline (baselines/NAME.toml) instead
    /// of a pending file. A baseline the run matches (same spans, durations within thresholds,
    /// same number of runs) is left as it is, so re-recording does not churn. Refused when CI is set.
    #[arg(long)]
    pub update_baselines: bool,
    /// Run each scenario N times (stopping at a failure); the baseline keeps each span's
    /// duration as min / median / max over the runs, and comparisons use the median.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    /// Write a report: `junit=PATH` (JUnit XML) or `json=PATH` (repeatable).
    #[arg(long = "report", value_name = "KIND=PATH", value_parser = parse_report)]
    pub reports: Vec<(ReportKind, PathBuf)>,
    /// Also write the run's record here (it is always kept in .clnrm/runs/; see `clnrm report`).
    #[arg(long, value_name = "PATH")]
    pub record: Option<PathBuf>,
}

/// What `run` and `watch` share: which scenarios, and how they run.
#[derive(Debug, Args)]
pub struct RunnerArgs {
    /// Scenarios run in parallel [default: `[run] jobs`, else the number of CPUs].
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
    /// Only scenarios whose name matches this regex.
    #[arg(long, value_name = "REGEX")]
    pub filter: Option<regex::Regex>,
    /// Only scenarios with this tag (repeatable: any of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Recycle step containers between scenarios: faster, but files left by one scenario are
    /// visible to the next [default: `[pool] reuse`].
    #[arg(long)]
    pub reuse: bool,
    /// Also send clnrm's spans and every collected span to this OTLP endpoint (e.g.
    /// http://localhost:4318 for a local Jaeger) [default: clnrm's own OTEL_EXPORTER_OTLP_ENDPOINT;
    /// OTEL_EXPORTER_OTLP_PROTOCOL picks http/protobuf (default) or grpc].
    #[arg(long, value_name = "URL")]
    pub otel_endpoint: Option<String>,
}

/// `clnrm watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Scenario files or directories [default: `[run] scenarios` of the config, i.e. scenarios/].
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub runner: RunnerArgs,
    /// React once files have been quiet this long, e.g. 100ms [default: `[watch] debounce`, 50ms].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub debounce: Option<std::time::Duration>,
}

/// `clnrm baseline …`.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// List pending baselines: which are new and what the changed ones change.
    Pending,
    /// Show each pending baseline's diff and ask: a accept, r reject, s skip, q quit. Needs a
    /// terminal; elsewhere use `accept` and `reject`.
    Review {
        /// Only these scenarios [default: every pending baseline].
        scenarios: Vec<String>,
    },
    /// Make pending baselines the baselines (each one rename).
    Accept {
        /// Only these scenarios [default: every pending baseline].
        scenarios: Vec<String>,
    },
    /// Delete pending baselines, keeping the baselines as they are.
    Reject {
        /// Only these scenarios [default: every pending baseline].
        scenarios: Vec<String>,
    },
}

/// Report file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Junit,
    Json,
}

/// A duration such as `50ms` or `1s`.
/// A count of one or more.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

fn parse_duration(arg: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse(arg)
}

/// A percentage: a number of zero or more, with or without `%`.
fn parse_percent(arg: &str) -> Result<f64, String> {
    let number = arg.strip_suffix('%').unwrap_or(arg).trim();
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| format!("expected a percentage of 0 or more, like 25 or 25% (got `{arg}`)"))
}

fn parse_report(arg: &str) -> Result<(ReportKind, PathBuf), String> {
    let usage = || format!("expected junit=PATH or json=PATH (got `{arg}`)");
    let (kind, path) = arg.split_once('=').ok_or_else(usage)?;
    let kind = match kind {
        "junit" => ReportKind::Junit,
        "json" => ReportKind::Json,
        _ => return Err(usage()),
    };
    if path.is_empty() {
        return Err(usage());
    }
    Ok((kind, PathBuf::from(path)))
}

/// Template variables from the command line.
#[derive(Debug, Args)]
pub struct VarArgs {
    /// Set a template variable, overriding CLNRM_VAR_KEY, the scenario's [vars] and the config's
    /// [vars]. Repeatable. The value takes the type the variable is declared with (e.g. a number).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = crate::scenario::vars::parse_cli_var)]
    pub vars: Vec<(String, String)>,
}
