//! `--report json=PATH`: the run as one JSON document (schema in the README), a summary of its
//! record without the traces.

use serde_json::{Value, json};

use crate::record::Record;
use crate::record::outcome::Status;
use crate::report::differences;

/// Format version of the document.
pub const VERSION: u32 = 1;

pub fn render(record: &Record) -> Value {
    let ms = crate::duration::millis::of;
    let run = &record.run;
    let scenarios: Vec<Value> = record
        .scenarios
        .iter()
        .map(|o| {
            json!({
                "name": o.name,
                "file": o.file,
                "status": o.status,
                "duration_ms": ms(o.duration),
                "spans": o.trace.len(),
                "settle_ms": o.settle.map(ms),
                "failure": o.failure.as_ref().map(|f| json!({
                    "place": f.place,
                    "message": plain(&f.message),
                    "output": plain(&super::failure_output(o, false)),
                })),
                "warnings": o.warnings,
                "baseline": o.baseline.as_ref().map(|b| json!({
                    "file": b.file,
                    "action": b.action,
                    "summary": super::baseline_summary(b),
                    "broken": b.broken,
                    "warnings": b.warnings,
                    "diff": b.diff.as_ref().map(differences::json),
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
        "run_id": run.id,
        "exit_code": record.exit().code(),
        "summary": {
            "total": record.scenarios.len(),
            "passed": record.count(Status::Pass),
            "failed": record.count(Status::Fail),
            "timed_out": record.count(Status::Timeout),
            "regressed": record.count(Status::Regressed),
            "cached": record.count(Status::Cached),
            "skipped": record.count(Status::Skipped),
            "interrupted_scenarios": record.count(Status::Interrupted),
            "duration_ms": ms(run.elapsed),
            "interrupted": run.interrupted.is_some(),
            "spans_unroutable": run.strays.unroutable,
            "spans_late": run.strays.late,
            "spans_conflicting": run.strays.conflicting,
            "exports_undelivered": run.undelivered,
            "swept": { "runs": run.swept.runs, "containers": run.swept.containers, "networks": run.swept.networks },
        },
        "pool": run.pool.as_ref().map(|p| json!({
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
