//! Where run records live: `.clnrm/runs/<run-id>.json`, `latest.json` (the newest, as a hard
//! link to it), and at most `[run] keep_records` of them. Every file is written whole or not at
//! all (a temporary file or link renamed), so a reader never sees half a record.

use std::path::{Path, PathBuf};

use super::{Record, VERSION};

/// The newest record, again.
pub const LATEST: &str = "latest.json";

/// A project's stored run records.
pub struct Runs {
    dir: PathBuf,
}

impl Runs {
    /// The records of the project rooted at `root`.
    pub fn new(root: &Path) -> Runs {
        Runs { dir: root.join(".clnrm").join("runs") }
    }

    pub fn latest(&self) -> PathBuf {
        self.dir.join(LATEST)
    }

    /// Writes `record` as `<run-id>.json` and `latest.json` (and to `also`, `--record PATH`), then
    /// removes the oldest records beyond `keep`. Returns the record's size in bytes.
    pub fn write(&self, record: &Record, keep: usize, also: Option<&Path>) -> Result<usize, String> {
        let bytes = to_bytes(record);
        let write = |path: &Path| {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            crate::fsutil::write_atomic(path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        let path = self.dir.join(format!("{}.json", record.run.id));
        write(&path)?;
        // A link costs nothing where a copy writes the record again (megabytes for a large run).
        if link_atomic(&path, &self.latest()).is_err() {
            write(&self.latest())?;
        }
        if let Some(path) = also {
            write(path)?;
        }
        self.prune(keep).map_err(|e| format!("cannot remove old records in {}: {e}", self.dir.display()))?;
        Ok(bytes.len())
    }

    /// Removes all but the newest `keep` records (by modification time, then name).
    fn prune(&self, keep: usize) -> std::io::Result<()> {
        let mut records = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".json") && name != LATEST {
                records.push((entry.metadata()?.modified()?, entry.path()));
            }
        }
        records.sort();
        let excess = records.len().saturating_sub(keep.max(1));
        for (_, path) in records.into_iter().take(excess) {
            std::fs::remove_file(path)?;
        }
        Ok(())
    }
}

/// Makes `link` a hard link to `target`, replacing what was there in one rename.
fn link_atomic(target: &Path, link: &Path) -> std::io::Result<()> {
    // Hidden and not `*.json`, as `write_atomic`'s, so that no reader or pruning takes it for a record.
    let name = link.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let temp = link.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    std::fs::hard_link(target, &temp)?;
    std::fs::rename(&temp, link).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// The record as stored: compact JSON (a record holds whole traces; `jq` shows it indented).
pub fn to_bytes(record: &Record) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(record).expect("a record serializes");
    bytes.push(b'\n');
    bytes
}

/// Reads the record at `path` (`shown` in messages). A record of a newer format, or a file that
/// is not a record, is refused with what to do.
pub fn read(path: &Path, shown: &str) -> Result<Record, String> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{shown} does not exist; `clnrm run` writes a record of every run"),
        _ => format!("cannot read {shown}: {e}"),
    })?;
    parse(&text, shown)
}

/// A record from its text; `shown` names it in messages.
pub fn parse(text: &str, shown: &str) -> Result<Record, String> {
    /// The one field every format has, read first.
    #[derive(serde::Deserialize)]
    struct Version {
        version: Option<u64>,
    }
    // Read by position, an array would pass for a struct (`[99]`, a record of format 99).
    if !text.trim_start().starts_with('{') {
        return Err(format!("{shown}: not a clnrm run record: it is not a JSON object"));
    }
    // `file:line:column: …`, as every diagnostic of clnrm is placed (serde's own ends in the place).
    let not_a_record = |e: serde_json::Error| {
        let place = format!(" at line {} column {}", e.line(), e.column());
        let message = e.to_string();
        let message = message.strip_suffix(&place).unwrap_or(&message);
        format!("{shown}:{}:{}: not a clnrm run record: {message}", e.line(), e.column())
    };
    match serde_json::from_str::<Version>(text).map_err(not_a_record)?.version {
        None => return Err(format!("{shown}: not a clnrm run record: it has no `version`")),
        Some(v) if v > u64::from(VERSION) => {
            return Err(format!(
                "{shown} is a run record of format {v}, written by a newer clnrm; this clnrm reads formats up to \
                 {VERSION}: upgrade clnrm to read it"
            ));
        }
        Some(_) => {}
    }
    serde_json::from_str(text).map_err(not_a_record)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::baseline::changes::Differences;
    use crate::baseline::diff::diff;
    use crate::baseline::normalize::{Recorded, normalize};
    use crate::engine::exec::Tail;
    use crate::expect::check::Checked;
    use crate::expect::failure::{Found, Unmet};
    use crate::record::outcome::*;
    use crate::telemetry::span::tests::span;
    use crate::telemetry::span::{AttrValue, Span};

    /// A record with every kind of content: steps, a service, a trace of both kinds of span, an
    /// expectation, a baseline diff with thresholds.
    fn full() -> Record {
        let spans: Vec<Span> = vec![
            span(1, 0, "checkout", "clnrm", 0, 100).build(),
            span(2, 1, "POST /orders", "shop", 1, 41).attr("http.response.status_code", AttrValue::Int(200)).build(),
            span(3, 2, "charge", "pay", 4, 24).attr("ratio", AttrValue::Float(0.5)).build(),
        ];
        let old = normalize("checkout", &[Recorded::plain(&spans[..2])]);
        let new = normalize("checkout", &[Recorded::plain(&spans)]);
        let mut record = crate::record::tests::record(&[Status::Regressed, Status::Cached], false, None);
        let mut stdout = Tail::new(16);
        stdout.push("a long line of output, cut".as_bytes());
        let scenario = &mut record.scenarios[0];
        scenario.cache = Some(CacheStatus::Miss);
        scenario.duration = Duration::from_nanos(123_456_789);
        scenario.settle = Some(Duration::from_micros(1500));
        scenario.steps.push(StepOutcome {
            name: "order".into(),
            target: Target::Image("clnrm-fixture:busybox".into()),
            argv: vec!["sh".into(), "-c".into(), "wget -qO- shop".into()],
            status: StepStatus::Passed,
            exit_code: Some(0),
            duration: Duration::from_millis(45),
            stdout,
            stderr: Tail::new(8),
            problems: Vec::new(),
        });
        scenario.services.push(ServiceOutcome {
            name: "shop".into(),
            image: "clnrm-demo:local".into(),
            container: "clnrm-x-svc-shop-1".into(),
            wait: Some("HTTP 2xx from GET :8000/health".into()),
            ready: Some(Duration::from_millis(80)),
            exit: None,
        });
        scenario.trace =
            spans.into_iter().map(|span| TraceSpan { own: span.name.as_ref() == "checkout", span }).collect();
        scenario.expectations.push(Checked {
            expectation: "[[expect.span]] #1 span[name=\"charge\"]".into(),
            select: Some("span[name=\"charge\"]".into()),
            line: Some(12),
            selected: vec!["0000000000000003".into()],
            nearest: Vec::new(),
            passed: true,
            unmet: Vec::new(),
            message: None,
        });
        scenario.expectations.push(Checked {
            expectation: "[[expect.span]] #2 span[name=\"refund\"]".into(),
            select: Some("span[name=\"refund\"]".into()),
            line: Some(15),
            selected: Vec::new(),
            nearest: vec!["0000000000000003".into()],
            passed: false,
            unmet: vec![Unmet {
                key: "attrs.amount".into(),
                expected: "30".into(),
                found: None,
                spans: vec![Found { span: "0000000000000003".into(), value: Some("absent".into()) }],
            }],
            message: Some("select: span[name=\"refund\"]\n…".into()),
        });
        let d = diff(&old, &new);
        let gate = crate::baseline::thresholds::gate(
            &old,
            &new,
            &d,
            &crate::baseline::thresholds::Limits::resolve(&Default::default(), &Default::default()),
            Vec::new,
        );
        scenario.baseline = Some(BaselineOutcome {
            file: "baselines/checkout.toml".into(),
            action: BaselineAction::Differs,
            spans: new.spans.len(),
            diff: Some(Differences::of(&old, &new, &d, &gate.slower)),
            later_run: None,
            thresholds: gate.judged,
            broken: gate.broken,
            warnings: Vec::new(),
            excused: None,
            written: None,
        });
        record
    }

    /// What is written reads back as the same record, to the nanosecond and the attribute type,
    /// and clnrm's own spans stay marked.
    #[test]
    fn a_record_reads_back_as_written() {
        let record = full();
        let text = String::from_utf8(to_bytes(&record)).unwrap();
        let read = parse(&text, "r.json").unwrap();
        assert_eq!(read, Record { scenarios: read.scenarios.clone(), ..record.clone() });
        let (a, b) = (&read.scenarios[0], &record.scenarios[0]);
        assert_eq!(a.steps, b.steps);
        assert_eq!(a.services, b.services);
        assert_eq!(a.expectations, b.expectations);
        assert_eq!(a.baseline, b.baseline);
        assert_eq!(a.duration, b.duration);
        for (x, y) in a.trace.iter().zip(&b.trace) {
            assert_eq!((x.own, &x.span.attributes, x.span.span_id), (y.own, &y.span.attributes, y.span.span_id));
        }
        assert!(a.baseline.as_ref().unwrap().thresholds.iter().any(|t| t.threshold == "added_spans" && t.broken));
        // The whole of it, by its bytes.
        assert_eq!(to_bytes(&read), to_bytes(&record));
    }

    /// A record of format 1 written before expectations said what they found as data reads,
    /// with nothing unmet recorded.
    #[test]
    fn a_record_from_before_unmet_reads() {
        let record = full();
        let mut value: serde_json::Value = serde_json::from_slice(&to_bytes(&record)).unwrap();
        for expectation in value["scenarios"][0]["expectations"].as_array_mut().unwrap() {
            assert!(expectation.as_object_mut().unwrap().remove("unmet").is_some());
        }
        let read = parse(&value.to_string(), "r.json").unwrap();
        assert!(read.scenarios[0].expectations.iter().all(|e| e.unmet.is_empty()));
        assert_eq!(read.scenarios[0].expectations[1].nearest, record.scenarios[0].expectations[1].nearest);
    }

    #[test]
    fn a_newer_or_foreign_file_is_refused_saying_why() {
        let newer = format!("{{\"version\": {}, \"run\": {{}}}}", VERSION + 1);
        let e = parse(&newer, "r.json").unwrap_err();
        assert!(e.contains("written by a newer clnrm") && e.contains("upgrade clnrm"), "{e}");
        let e = parse("{\"runs\": []}", "r.json").unwrap_err();
        assert!(e.contains("r.json: not a clnrm run record: it has no `version`"), "{e}");
        let e = parse("{\"version\": 1,\n \"run\": 3}", "r.json").unwrap_err();
        assert!(e.starts_with("r.json:2:9: not a clnrm run record: invalid type"), "{e}");
        assert!(!e.contains("line 2"), "{e}");
        let e = parse("<html>", "r.json").unwrap_err();
        assert!(e.starts_with("r.json: not a clnrm run record"), "{e}");
        // Read as a struct by position, an array would pass for a record of format 99.
        let e = parse("[99]", "r.json").unwrap_err();
        assert!(e.starts_with("r.json: not a clnrm run record") && !e.contains("newer"), "{e}");
        let e = parse("{\"version\": 4294967296}", "r.json").unwrap_err();
        assert!(e.contains("written by a newer clnrm"), "{e}");
    }

    #[test]
    fn the_newest_records_are_kept_and_latest_is_the_last_written() {
        let dir = tempfile::tempdir().unwrap();
        let runs = Runs::new(dir.path());
        let mut record = full();
        for i in 0..5 {
            record.run.id = format!("run{i}");
            runs.write(&record, 3, None).unwrap();
            // Modification times of files written in the same instant may be equal.
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join(".clnrm/runs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["latest.json", "run2.json", "run3.json", "run4.json"]);
        assert_eq!(read(&runs.latest(), "latest").unwrap().run.id, "run4");
        let e = read(&dir.path().join("nope.json"), "nope.json").unwrap_err();
        assert!(e.contains("nope.json does not exist"), "{e}");
    }
}
