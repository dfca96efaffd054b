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
                "failure": o.failure.as_ref().map(|f| json!({ "place": f.place, "message": f.message, "output": f.output })),
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
                    "problems": s.problems,
                    "stdout": s.stdout.text(),
                    "stderr": s.stderr.text(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "version": VERSION,
        "run_id": report.run_id,
        "exit_code": report.exit_code(),
        "summary": {
            "total": report.outcomes.len(),
            "passed": report.count(Status::Pass),
            "failed": report.count(Status::Fail),
            "timed_out": report.count(Status::Timeout),
            "regressed": report.count(Status::Regressed),
            "cached": report.count(Status::Cached),
            "skipped": report.count(Status::Skipped),
            "duration_ms": ms(report.elapsed),
            "interrupted": report.interrupted.is_some(),
            "spans_unroutable": report.strays.unroutable,
            "spans_late": report.strays.late,
            "spans_conflicting": report.strays.conflicting,
            "exports_undelivered": report.undelivered,
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
