//! `--report json=PATH`: the whole run as one JSON document (schema in the README).

use serde_json::{Value, json};

use crate::run::outcome::{RunReport, Status};

/// Format version of the document.
pub const VERSION: u32 = 1;

pub fn render(report: &RunReport) -> Value {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let scenarios: Vec<Value> = report
        .outcomes
        .iter()
        .map(|o| {
            json!({
                "name": o.name,
                "file": o.file,
                "status": o.status,
                "duration_ms": ms(o.duration),
                "spans": o.spans,
                "settle_ms": o.settle.map(ms),
                "failure": o.failure.as_ref().map(|f| json!({ "place": f.place, "message": plain(&f.message), "output": plain(&f.output) })),
                "warnings": o.warnings,
                "baseline": o.baseline.as_ref().map(|b| json!({
                    "file": b.file,
                    "action": b.action,
                    "summary": b.summary,
                    "broken": b.broken,
                    "warnings": b.warnings,
                    "diff": b.diff,
                })),
                "steps": o.steps.iter().map(|s| json!({
                    "name": s.name,
                    "status": s.status,
                    "exit_code": s.exit_code,
                    "duration_ms": ms(s.duration),
                    "problems": s.problems.iter().map(|p| plain(p)).collect::<Vec<_>>(),
                    "stdout": plain(&s.stdout.text()),
                    "stderr": plain(&s.stderr.text()),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "version": VERSION,
        "run_id": report.run_id,
        "exit_code": report.exit().code(),
        "summary": {
            "total": report.outcomes.len(),
            "passed": report.count(Status::Pass),
            "failed": report.count(Status::Fail),
            "timed_out": report.count(Status::Timeout),
            "regressed": report.count(Status::Regressed),
            "cached": report.count(Status::Cached),
            "skipped": report.count(Status::Skipped),
            "interrupted_scenarios": report.count(Status::Interrupted),
            "duration_ms": ms(report.elapsed),
            "interrupted": report.interrupted.is_some(),
            "spans_unroutable": report.strays.unroutable,
            "spans_late": report.strays.late,
            "spans_conflicting": report.strays.conflicting,
            "exports_undelivered": report.undelivered,
            "swept": { "runs": report.swept.runs, "containers": report.swept.containers, "networks": report.swept.networks },
        },
        "pool": report.pool.as_ref().map(|p| json!({
            "hits": p.hits,
            "misses": p.misses,
            "acquire_p50_ms": p.percentile(0.5).map(ms),
            "acquire_p99_ms": p.percentile(0.99).map(ms),
        })),
        "scenarios": scenarios,
    })
}

/// `text` without terminal escape sequences. clnrm's own text is plain already; this is for what
/// the programs under test print (step output, service logs in a failure), which may be coloured:
/// a report is read by tools, not terminals (JUnit reports drop them the same way).
fn plain(text: &str) -> String {
    anstream::adapter::strip_str(text).to_string()
}
