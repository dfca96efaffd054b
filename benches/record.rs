//! Benchmark of the run record (issue: one run record, every report a view of it).
//!
//! `cargo bench --bench record` builds the record of a run of 200 scenarios, each with two steps
//! (with output), a service, a 50-span trace (from `benches/common/trace.rs`), three expectation
//! results and a baseline comparison of those 50 spans with its thresholds, and prints the median
//! (and spread) of:
//! - writing it as `run` does (serialize, then `<id>.json` and `latest.json` written atomically,
//!   and old records pruned);
//! - reading it back (`clnrm report`'s parse);
//! - rendering the JSON and JUnit reports from it.
//!
//! Target: writing the record of 200 scenarios × 50 spans in under 50 ms.

use std::hint::black_box;
use std::time::Duration;

use clnrm::baseline::changes::Differences;
use clnrm::baseline::diff::diff;
use clnrm::baseline::normalize::{Recorded, normalize};
use clnrm::baseline::thresholds::{Limits, gate};
use clnrm::engine::exec::Tail;
use clnrm::expect::check::Checked;
use clnrm::record::files::{self, Runs};
use clnrm::record::outcome::*;
use clnrm::record::{Record, RunInfo, Selection, VERSION};
use clnrm::telemetry::span::{Span, hex};

#[path = "common/timing.rs"]
mod timing;
#[path = "common/trace.rs"]
mod trace;

use timing::{measure, print_header, print_row};

const SCENARIOS: usize = 200;
const SPANS: usize = 50;
const TARGET: Duration = Duration::from_millis(50);

fn main() {
    let record = record();
    let dir = tempfile::tempdir().unwrap();
    let runs = Runs::new(dir.path());
    let bytes = files::to_bytes(&record);
    println!(
        "record of {SCENARIOS} scenarios × {SPANS} spans: {:.1} MB ({} KB a scenario)",
        bytes.len() as f64 / 1e6,
        bytes.len() / SCENARIOS / 1024
    );
    print_header();
    let write = measure(21, || {
        runs.write(&record, 20, None).unwrap();
    });
    let serialize = measure(21, || {
        black_box(files::to_bytes(&record));
    });
    let text = String::from_utf8(bytes).unwrap();
    let read = measure(21, || {
        black_box(files::parse(&text, "bench").unwrap());
    });
    let reports = measure(21, || {
        black_box(clnrm::report::json::render(&record));
        black_box(clnrm::report::junit::render(&record).unwrap());
    });
    print_row("write (serialize, record + latest, prune)", &write);
    print_row("  of which serialize", &serialize);
    print_row("read back (parse)", &read);
    print_row("render the JSON and JUnit reports", &reports);
    let verdict = if write[write.len() / 2] < TARGET { "met" } else { "NOT met" };
    println!("  target: write the record of {SCENARIOS} × {SPANS} spans < {TARGET:?}: {verdict}");
}

/// A record as a run of `SCENARIOS` scenarios makes it.
fn record() -> Record {
    let spans: Vec<Span> = trace::trace(1).into_iter().take(SPANS).collect();
    let baseline = normalize("checkout", &[Recorded::plain(&spans)]);
    let d = diff(&baseline, &baseline);
    let verdict = gate(&baseline, &baseline, &d, &Limits::resolve(&Default::default(), &Default::default()), Vec::new);
    let scenario = |i: usize| {
        let step = |name: &str, argv: &[&str]| {
            let mut stdout = Tail::new(64 * 1024);
            stdout.push(format!("{name}: ok\n").repeat(20).as_bytes());
            StepOutcome {
                name: name.into(),
                target: Target::Image("clnrm-fixture:busybox".into()),
                argv: argv.iter().map(|a| a.to_string()).collect(),
                status: StepStatus::Passed,
                exit_code: Some(0),
                duration: Duration::from_micros(45_123),
                stdout,
                stderr: Tail::new(64 * 1024),
                problems: Vec::new(),
            }
        };
        let checked = |n: usize| Checked {
            expectation: format!("[[expect.span]] #{n} span[name=\"charge\"]"),
            select: Some("span[name=\"charge\"]".into()),
            line: Some(12),
            selected: spans.iter().take(2).map(|s| hex(&s.span_id)).collect(),
            nearest: Vec::new(),
            passed: true,
            unmet: Vec::new(),
            message: None,
        };
        ScenarioOutcome {
            cache: Some(CacheStatus::Miss),
            duration: Duration::from_micros(812_345),
            runs: 1,
            services: vec![ServiceOutcome {
                name: "shop".into(),
                image: "clnrm-demo:local".into(),
                container: format!("clnrm-0123456789ab-svc-s{i}-shop-{i}"),
                wait: Some("HTTP 2xx from GET :8000/health".into()),
                ready: Some(Duration::from_millis(80)),
                exit: None,
            }],
            steps: vec![
                step("place order", &["sh", "-c", "wget -qO- http://shop:8000/orders"]),
                step("list", &["true"]),
            ],
            trace: spans.iter().map(|span| TraceSpan { own: span.resource.own, span: span.clone() }).collect(),
            settle: Some(Duration::from_millis(200)),
            expectations: (1..=3).map(checked).collect(),
            baseline: Some(BaselineOutcome {
                file: format!("baselines/s{i}.toml"),
                action: BaselineAction::Unchanged,
                spans: baseline.spans.len(),
                diff: Some(Differences::of(&baseline, &baseline, &d, &verdict.slower)),
                later_run: None,
                thresholds: verdict.judged.clone(),
                broken: Vec::new(),
                warnings: Vec::new(),
                excused: None,
                written: None,
            }),
            ..ScenarioOutcome::without_running(&format!("s{i}"), &format!("scenarios/s{i}.clnrm.toml"), Status::Pass)
        }
    };
    Record {
        version: VERSION,
        run: RunInfo {
            id: "0123456789ab".into(),
            clnrm_version: "0.1.0".into(),
            started_at: "2026-12-02T13:30:47.123Z".into(),
            ended_at: "2026-12-02T13:31:47.123Z".into(),
            elapsed: Duration::from_secs(60),
            exit_code: 0,
            selection: Selection::default(),
            fingerprint: "0".repeat(64),
            engine: Some("28.2.2".into()),
            git: None,
            pool: None,
            first_exec: Some(Duration::from_millis(412)),
            interrupted: None,
            infrastructure: false,
            error: None,
            leftovers: 0,
            swept: Default::default(),
            strays: Default::default(),
            undelivered: 0,
        },
        scenarios: (0..SCENARIOS).map(scenario).collect(),
    }
}
