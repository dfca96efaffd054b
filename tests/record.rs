//! The run record through the real binary, on the real engine: what `.clnrm/runs/<run-id>.json`
//! holds after a run (steps, services, traces with clnrm's own spans marked, expectations,
//! baseline diffs and thresholds, cache decisions, signals, infrastructure failures), that
//! `latest.json` and `--record PATH` are exact copies, that `[run] keep_records` keeps the newest,
//! that nothing half-written is left in `.clnrm/runs/`, that `clnrm report` renders byte for byte
//! the reports `run --report` wrote and exits as the run did, that it refuses what is not a record
//! (missing, truncated, newer, foreign) without writing anything, and that `watch` records its
//! runs too. Each test that uses the engine ends by checking nothing of its project is left on it.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Project, engine_available, finish, signal};
use serde_json::Value;

macro_rules! require_engine {
    () => {
        if !engine_available() {
            return;
        }
    };
}

const CI: (&str, &str) = ("CI", "true");

/// The demo shop taking an order of two items, with a passing expectation on the shop's server
/// span and `reserve` as a `[[expect.span]]` on its `reserve item` spans (of which there are two).
fn shop(name: &str, reserve: &str) -> String {
    format!(
        r#"[scenario]
name = "{name}"

[services.shop]
image = "clnrm-demo:local"
command = ["demo-app", "serve", "--port", "8080"]
wait = {{ log = "listening on", timeout = "30s" }}

[[steps]]
name = "order"
image = "clnrm-demo:local"
run = ["demo-app", "order", "--shop", "http://shop:8080", "--items", "2"]

[[expect.span]]
select = 'span[name="POST /orders" kind="server"]'

[[expect.span]]
select = 'span[name="reserve item"]'
{reserve}
"#
    )
}

/// A busybox scenario with one step per name.
fn steps(names: &[&str]) -> String {
    names.iter().map(|n| format!("[[steps]]\nname = \"{n}\"\nrun = [\"true\"]\n\n")).collect()
}

/// A JSON file of the project, parsed.
fn json(p: &Project, relative: &str) -> Value {
    let text = p.read(relative);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{relative} is not JSON ({e}):\n{text}"))
}

/// The files in `.clnrm/runs/`, sorted.
fn stored(p: &Project) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(p.join(".clnrm/runs"))
        .map(|entries| entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// The latest record, after checking that it is a byte-for-byte copy of `<its id>.json` and that
/// `.clnrm/runs/` holds nothing half-written (only `*.json`, no temporary file).
fn latest(p: &Project) -> Value {
    let names = stored(p);
    assert!(
        names.iter().all(|n| n.ends_with(".json") && !n.starts_with('.')),
        "something other than records in .clnrm/runs/: {names:?}"
    );
    let bytes = std::fs::read(p.join(".clnrm/runs/latest.json")).expect("latest.json");
    assert_eq!(bytes.last(), Some(&b'\n'), "a record ends with a newline");
    let record: Value = serde_json::from_slice(&bytes).expect("latest.json is JSON");
    let id = record["run"]["id"].as_str().expect("run.id").to_string();
    let own = std::fs::read(p.join(&format!(".clnrm/runs/{id}.json"))).expect("the record under its run id");
    assert!(own == bytes, "latest.json differs from {id}.json");
    record
}

/// The scenario of `record` named `name`.
fn scenario<'a>(record: &'a Value, name: &str) -> &'a Value {
    record["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no scenario {name} in {record}"))
}

/// The spans of a scenario's trace named `name`.
fn spans<'a>(scenario: &'a Value, name: &str) -> Vec<&'a Value> {
    scenario["trace"].as_array().expect("trace").iter().filter(|s| s["name"] == name).collect()
}

/// `2026-12-02T13:30:47.123Z`.
fn is_timestamp(text: &Value) -> bool {
    let Some(t) = text.as_str() else { return false };
    let digits = |range: std::ops::Range<usize>| t.get(range).is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()));
    t.len() == 24
        && digits(0..4)
        && &t[4..5] == "-"
        && digits(5..7)
        && &t[7..8] == "-"
        && digits(8..10)
        && &t[10..11] == "T"
        && digits(11..13)
        && &t[13..14] == ":"
        && digits(14..16)
        && &t[16..17] == ":"
        && digits(17..19)
        && &t[19..20] == "."
        && digits(20..23)
        && t.ends_with('Z')
}

fn is_hex(text: &Value, len: usize) -> bool {
    text.as_str().is_some_and(|t| t.len() == len && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Asserts that `name` was not written.
fn absent(p: &Project, name: &str) {
    assert!(!p.join(name).exists(), "{name} was written");
}

#[test]
fn the_record_holds_each_scenarios_steps_services_trace_and_expectations() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("ok", "[[steps]]\nname = \"greets\"\nrun = [\"echo\", \"hello\"]\n");
    p.scenario(
        "broken",
        "[[steps]]\nname = \"fails\"\nrun = \"seq 1 100000; echo err-line >&2; exit 3\"\n\n[[steps]]\nname = \"never runs\"\nrun = [\"true\"]\n",
    );
    p.write("scenarios/shop.clnrm.toml", shop("shop", "count = 2"));
    p.write("scenarios/miscount.clnrm.toml", shop("miscount", "count = 5"));
    let out = p.clnrm(&["run", "-j", "2"]);
    out.code(1).stdout_has("2 passed, 2 failed");
    let record = latest(&p);

    // The run.
    let run = &record["run"];
    assert_eq!(record["version"], 1);
    assert_eq!(run["exit_code"], 1, "the process exited 1");
    assert!(is_hex(&run["id"], 12), "{run}");
    assert_eq!(stored(&p), [format!("{}.json", run["id"].as_str().unwrap()), "latest.json".into()]);
    assert_eq!(run["clnrm_version"], env!("CARGO_PKG_VERSION"));
    assert!(is_timestamp(&run["started_at"]) && is_timestamp(&run["ended_at"]), "{run}");
    assert!(run["started_at"].as_str() < run["ended_at"].as_str(), "{run}");
    assert!(run["duration_ms"].as_f64().unwrap() > 100.0, "{run}");
    assert_eq!(run["selection"], serde_json::json!({"paths": [], "filter": null, "tags": [], "shard": null}));
    assert!(is_hex(&run["fingerprint"], 64), "{run}");
    assert_eq!(
        (&run["interrupted"], &run["infrastructure"], &run["leftovers"]),
        (&Value::Null, &false.into(), &0.into())
    );
    assert_eq!(run["strays"]["unroutable"], 0, "{run}");
    assert!(run["pool"]["misses"].as_u64().unwrap() >= 1, "{run}");
    // From the process's start to the first step's exec: more than nothing, less than the whole.
    let first = run["first_exec_ms"].as_f64().unwrap();
    assert!(first > 0.0 && first < run["duration_ms"].as_f64().unwrap() + 10_000.0, "{run}");
    assert_eq!(record["scenarios"].as_array().unwrap().len(), 4);

    // A passing step: what ran, where, and its output.
    let ok = scenario(&record, "ok");
    assert_eq!(
        (&ok["status"], &ok["cache"], &ok["runs"], &ok["failure"]),
        (&"pass".into(), &"miss".into(), &1.into(), &Value::Null)
    );
    assert_eq!(ok["file"], "scenarios/ok.clnrm.toml");
    let step = &ok["steps"][0];
    assert_eq!(step["name"], "greets");
    assert_eq!(step["target"], serde_json::json!({"image": "clnrm-fixture:busybox"}));
    assert_eq!(step["argv"], serde_json::json!(["echo", "hello"]));
    assert_eq!((&step["status"], &step["exit_code"]), (&"passed".into(), &0.into()));
    assert_eq!(step["stdout"], serde_json::json!({"text": "hello\n", "bytes": 6}));
    assert_eq!(step["stderr"], serde_json::json!({"text": "", "bytes": 0}));
    // Its trace is clnrm's own: the scenario's span and the step's.
    assert_eq!(spans(ok, "ok").len(), 1, "{ok}");
    assert_eq!(spans(ok, "greets").len(), 1, "{ok}");
    assert!(ok["trace"].as_array().unwrap().iter().all(|s| s["own"] == true), "{ok}");

    // A failing step: its exit code, the tail of its output, the step after it not run.
    let broken = scenario(&record, "broken");
    assert_eq!(broken["status"], "fail");
    let failed = &broken["steps"][0];
    assert_eq!(failed["argv"], serde_json::json!(["sh", "-c", "seq 1 100000; echo err-line >&2; exit 3"]));
    assert_eq!((&failed["status"], &failed["exit_code"]), (&"failed".into(), &3.into()));
    assert_eq!(failed["problems"], serde_json::json!(["expected exit code 0, got 3"]));
    let full: String = (1..=100_000).map(|n| format!("{n}\n")).collect();
    let tail = failed["stdout"]["text"].as_str().unwrap();
    assert_eq!(failed["stdout"]["bytes"], full.len(), "the whole stream's size");
    assert!(!tail.is_empty() && tail.len() <= 64 * 1024 && full.ends_with(tail), "not a tail: {} bytes", tail.len());
    assert_eq!(failed["stderr"], serde_json::json!({"text": "err-line\n", "bytes": 9}));
    assert_eq!((&broken["steps"][1]["status"], &broken["steps"][1]["exit_code"]), (&"not_run".into(), &Value::Null));
    let failure = &broken["failure"];
    assert_eq!(
        (&failure["place"], &failure["message"]),
        (&"step `fails`".into(), &"expected exit code 0, got 3".into())
    );
    let output = failure["output"].as_str().unwrap();
    assert!(output.contains("100000") && output.contains("err-line") && !output.contains("\n1\n"), "{output}");
    assert_eq!(broken["settle_ms"], Value::Null, "no spans were waited for after a failed step");
    let step_span = spans(broken, "fails");
    assert_eq!(step_span.len(), 1, "{broken}");
    assert_eq!(
        (&step_span[0]["status"], &step_span[0]["attributes"]["process.exit.code"]),
        (&"error".into(), &3.into())
    );

    // A service, its wait, and the system's spans next to clnrm's.
    let shop = scenario(&record, "shop");
    assert_eq!(shop["status"], "pass", "{shop}");
    let service = &shop["services"][0];
    assert_eq!((&service["name"], &service["image"]), (&"shop".into(), &"clnrm-demo:local".into()));
    assert_eq!(service["wait"], "log line matching /listening on/");
    assert!(service["ready_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{service}");
    assert_eq!(service["exit"], Value::Null);
    assert!(service["container"].as_str().unwrap().contains(run["id"].as_str().unwrap()), "{service}");
    assert_eq!(shop["steps"][0]["target"], serde_json::json!({"image": "clnrm-demo:local"}));
    assert_eq!(shop["steps"][0]["stdout"]["text"], "placed 2\n");
    assert!(shop["settle_ms"].as_f64().is_some(), "{shop}");
    let trace = shop["trace"].as_array().unwrap();
    for name in ["shop", "start shop", "wait shop", "order"] {
        let own = spans(shop, name);
        assert!(own.len() == 1 && own[0]["own"] == true, "clnrm's span `{name}`: {own:?}");
        assert_eq!(own[0]["resource"]["service.name"], "clnrm");
    }
    let system: Vec<&Value> = trace.iter().filter(|s| s["own"] == false).collect();
    assert!(system.len() >= 7, "the demo's spans: {system:?}");
    assert!(system.iter().all(|s| s["resource"]["service.name"] != "clnrm"), "{system:?}");
    assert!(system.iter().any(|s| s["resource"]["service.name"] == "shop"), "{system:?}");
    assert!(system.iter().any(|s| s["resource"]["service.name"] == "steps"), "{system:?}");
    assert!(trace.iter().all(|s| s["trace_id"] == trace[0]["trace_id"]), "one trace per scenario");
    assert_ne!(trace[0]["trace_id"], ok["trace"][0]["trace_id"], "scenarios have traces of their own");

    // Expectations: what each selected, by ids of spans of this very trace.
    let ids = |s: &Value| -> Vec<String> {
        s["trace"].as_array().unwrap().iter().map(|span| span["span_id"].as_str().unwrap().to_string()).collect()
    };
    let span_of = |s: &Value, id: &str| -> Value {
        s["trace"].as_array().unwrap().iter().find(|span| span["span_id"] == id).cloned().unwrap_or(Value::Null)
    };
    let expectations = shop["expectations"].as_array().unwrap();
    assert_eq!(expectations.len(), 2, "{shop}");
    assert!(expectations.iter().all(|e| e["passed"] == true && e["message"].is_null()), "{expectations:?}");
    assert_eq!(expectations[0]["select"], "span[name=\"POST /orders\" kind=\"server\"]");
    assert_eq!(expectations[0]["expectation"], "[[expect.span]] #1 span[name=\"POST /orders\" kind=\"server\"]");
    let selected = expectations[0]["selected"].as_array().unwrap();
    assert_eq!(selected.len(), 1, "{expectations:?}");
    let server = span_of(shop, selected[0].as_str().unwrap());
    assert_eq!(
        (&server["name"], &server["kind"], &server["own"]),
        (&"POST /orders".into(), &"server".into(), &false.into())
    );
    assert_eq!(expectations[1]["selected"].as_array().unwrap().len(), 2);
    // Each is placed at the line of its `select` in the scenario file.
    let text = p.read(shop["file"].as_str().unwrap());
    for expectation in expectations {
        let select = expectation["select"].as_str().unwrap();
        let line = text.lines().position(|l| l.contains("select") && l.contains(select)).map(|i| i as u64 + 1);
        assert_eq!(expectation["line"].as_u64(), line, "{select} in\n{text}");
    }

    // A failing expectation: its message, and what it did select.
    let miscount = scenario(&record, "miscount");
    assert_eq!(miscount["status"], "fail");
    let wrong = &miscount["expectations"][1];
    assert_eq!(wrong["passed"], false);
    let message = wrong["message"].as_str().unwrap();
    assert!(message.contains("count: expected exactly 5 spans, found 2"), "{message}");
    // The same as data: the key, what it asks for and what the trace has.
    assert_eq!(
        wrong["unmet"],
        serde_json::json!([{ "key": "count", "expected": "exactly 5", "found": "2", "spans": [] }]),
        "{wrong}"
    );
    assert!(shop["expectations"].as_array().unwrap().iter().all(|e| e["unmet"] == serde_json::json!([])));
    let own_ids = ids(miscount);
    let picked = wrong["selected"].as_array().unwrap();
    assert_eq!(picked.len(), 2, "{wrong}");
    for id in picked {
        let id = id.as_str().unwrap();
        assert!(own_ids.iter().any(|i| i == id), "{id} is not in miscount's trace");
        assert!(!ids(shop).iter().any(|i| i == id), "{id} is in another scenario's trace");
        assert_eq!(span_of(miscount, id)["name"], "reserve item");
    }
    assert_eq!(miscount["failure"]["place"], "[[expect.span]] #2 span[name=\"reserve item\"]");
    assert_eq!(miscount["expectations"][0]["passed"], true);
    p.assert_clean();
}

#[test]
fn clnrm_report_renders_the_reports_run_wrote_byte_for_byte_and_exits_as_it_did() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("steps", &steps(&["one"]));
    p.clnrm(&["run", "--update-baselines"]).success().stdout_has("recorded baselines/steps.toml");
    assert_eq!(latest(&p)["run"]["exit_code"], 0);
    p.clnrm(&["report"]).success().stdout_has("1 scenario: 1 passed");

    // A regression and a failure: the run fails (1), and so does its report.
    p.scenario("steps", &steps(&["one", "two"]));
    p.scenario("broken", "[[steps]]\nname = \"fails\"\nrun = 'printf \"\\033[31mred\\033[0m <&>\\n\"; exit 1'\n");
    let args = ["run", "--report", "json=out/run.json", "--report", "junit=out/run.xml"];
    let ran = p.clnrm_env(&args, &[CI]);
    ran.code(1).stdout_has("REGRESS").stdout_has("FAIL [");
    let record = latest(&p);
    assert_eq!(record["run"]["exit_code"], 1);
    let report = p.clnrm_env(&["report", "--json", "again/run.json", "--junit", "again/run.xml"], &[CI]);
    report.code(1);
    assert_eq!(p.read("again/run.json"), p.read("out/run.json"), "the JSON report differs");
    assert_eq!(p.read("again/run.xml"), p.read("out/run.xml"), "the JUnit report differs");
    assert_eq!(report.stdout, ran.stdout, "`report` prints what `run` printed");
    let junit = p.read("out/run.xml");
    assert!(junit.contains("baseline regression") && junit.contains("<testcase name=\"broken\""), "{junit}");

    // Anywhere, from a copy, with no project around it.
    let elsewhere = Project::empty();
    elsewhere.write("ci-artifact.json", p.read(".clnrm/runs/latest.json"));
    let copied = elsewhere.clnrm(&["report", "--from", "ci-artifact.json", "--json", "r.json", "--junit", "r.xml"]);
    copied.code(1).stdout_has("REGRESS").stdout_has("1 regressed");
    assert_eq!(elsewhere.read("r.json"), p.read("out/run.json"));
    assert_eq!(elsewhere.read("r.xml"), p.read("out/run.xml"));
    assert_eq!(copied.stdout, ran.stdout);

    // The regression alone: 4, in the run and in its report.
    let args = ["run", "--filter", "^steps$", "--report", "json=out/run.json", "--report", "junit=out/run.xml"];
    let ran = p.clnrm_env(&args, &[CI]);
    ran.code(4);
    assert_eq!(latest(&p)["run"]["exit_code"], 4);
    assert_eq!(latest(&p)["run"]["selection"]["filter"], "^steps$");
    p.clnrm(&["report", "--json", "again/run.json", "--junit", "again/run.xml"]).code(4);
    assert_eq!(p.read("again/run.json"), p.read("out/run.json"));
    assert_eq!(p.read("again/run.xml"), p.read("out/run.xml"));
    let report: Value = json(&p, "again/run.json");
    assert_eq!((&report["exit_code"], &report["summary"]["regressed"]), (&4.into(), &1.into()), "{report}");
    p.assert_clean();
}

#[test]
fn a_regression_records_the_added_span_and_the_threshold_it_broke() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("steps", &steps(&["one"]));
    p.clnrm(&["run", "--update-baselines"]).success();
    let recorded = latest(&p);
    let baseline = &scenario(&recorded, "steps")["baseline"];
    assert_eq!((&baseline["action"], &baseline["file"]), (&"recorded".into(), &"baselines/steps.toml".into()));
    let file = std::fs::read(p.join("baselines/steps.toml")).unwrap();
    assert_eq!(baseline["written"], blake3::hash(&file).to_hex().as_str(), "the hash of the file written");

    p.scenario("steps", &steps(&["one", "two"]));
    p.clnrm_env(&["run"], &[CI]).code(4).stdout_has("REGRESS");
    let record = latest(&p);
    assert_eq!(record["run"]["exit_code"], 4);
    let steps = scenario(&record, "steps");
    assert_eq!(steps["status"], "regressed");
    assert_eq!(steps["failure"]["place"], "baseline");
    let baseline = &steps["baseline"];
    assert_eq!((&baseline["action"], &baseline["written"]), (&"differs".into(), &Value::Null), "{baseline}");
    assert_eq!(std::fs::read(p.join("baselines/steps.toml")).unwrap(), file, "CI wrote the baseline");
    let diff = baseline["diff"]["spans"].as_array().expect("diff.spans");
    let added: Vec<&Value> = diff.iter().filter(|s| s["mark"] == "added").collect();
    assert_eq!(added.len(), 1, "{diff:?}");
    let path = added[0]["path"].as_str().unwrap();
    assert!(path.ends_with("two"), "{path}");
    assert_eq!((&added[0]["service"], &added[0]["kind"]), (&"clnrm".into(), &"internal".into()));
    let attrs = added[0]["attrs"].as_array().expect("an added span's attributes");
    assert!(attrs.iter().any(|a| a[0] == "container.image.name" && a[1] == "clnrm-fixture:busybox"), "{attrs:?}");
    let one = diff.iter().find(|s| s["path"].as_str().unwrap().ends_with("one")).expect("the unchanged step");
    assert_eq!(one["mark"], "same", "{diff:?}");
    assert!(one["duration"]["baseline_ms"].as_f64().is_some() && one["duration"]["ms"].as_f64().is_some(), "{one}");
    let judged = baseline["thresholds"].as_array().unwrap();
    let added_spans = judged.iter().find(|t| t["threshold"] == "added_spans").expect("added_spans judged");
    assert_eq!(
        (&added_spans["limit"], &added_spans["broken"], &added_spans["found"]),
        (&"0".into(), &true.into(), &1.into())
    );
    assert_eq!(added_spans["spans"], serde_json::json!([path]));
    assert!(judged.iter().filter(|t| t["threshold"] != "added_spans").all(|t| t["broken"] == false), "{judged:?}");
    let broken = baseline["broken"].as_array().unwrap();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert_eq!(broken[0]["threshold"], "added_spans");
    let message = broken[0]["message"].as_str().unwrap();
    assert!(message.contains("1 span added, at most 0 allowed") && message.contains("two"), "{message}");
    p.assert_clean();
}

#[test]
fn cached_forced_and_rerun_scenarios_are_recorded_as_such() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("a", &steps(&["one"]));
    p.scenario("b", "[[steps]]\nname = \"fails\"\nrun = [\"false\"]\n");
    p.clnrm(&["run", "--update-baselines"]).code(1);
    let first = latest(&p);
    assert_eq!(scenario(&first, "a")["cache"], "miss");
    assert_eq!(scenario(&first, "b")["cache"], "miss");

    p.clnrm(&["run"]).code(1).stdout_has("CACHED");
    let second = latest(&p);
    assert_ne!(second["run"]["id"], first["run"]["id"]);
    let a = scenario(&second, "a");
    assert_eq!((&a["status"], &a["cache"]), (&"cached".into(), &"hit".into()), "{a}");
    assert_eq!(a["trace"], serde_json::json!([]));
    assert_eq!(
        (&a["steps"], &a["services"], &a["expectations"]),
        (&serde_json::json!([]), &serde_json::json!([]), &serde_json::json!([]))
    );
    assert_eq!((&a["runs"], &a["failure"]), (&0.into(), &Value::Null), "{a}");
    let b = scenario(&second, "b");
    assert_eq!((&b["status"], &b["cache"]), (&"fail".into(), &"rerun".into()), "a failure runs again: {b}");
    assert_eq!(b["steps"][0]["exit_code"], 1);

    p.clnrm(&["run", "--force", "--filter", "^a$"]).success();
    let third = latest(&p);
    let a = scenario(&third, "a");
    assert_eq!((&a["status"], &a["cache"]), (&"pass".into(), &"forced".into()), "{a}");
    assert!(!spans(a, "one").is_empty(), "{a}");
    assert_eq!(a["baseline"]["action"], "unchanged");
    assert_eq!(third["scenarios"].as_array().unwrap().len(), 1, "the filter selected one");
    assert_eq!(third["run"]["selection"]["filter"], "^a$");

    // The fingerprint is of the inputs: the same for the same scenarios, another when one changes.
    p.clnrm(&["run"]).code(1);
    let fourth = latest(&p);
    assert_eq!(fourth["run"]["fingerprint"], second["run"]["fingerprint"]);
    p.scenario("a", &steps(&["one"]).replace("[\"true\"]", "[\"true\", \"changed\"]"));
    p.clnrm(&["run"]).code(1);
    assert_ne!(latest(&p)["run"]["fingerprint"], second["run"]["fingerprint"]);
    p.assert_clean();
}

#[test]
fn keep_records_keeps_the_newest_and_zero_is_refused_at_its_line() {
    require_engine!();
    let p = Project::with_fixture();
    let config = p.read(".clnrm/config.toml");
    p.write(".clnrm/config.toml", format!("{config}\n[run]\nkeep_records = 2\n"));
    p.scenario("a", &steps(&["one"]));
    let mut ids = Vec::new();
    for _ in 0..3 {
        p.clnrm(&["run"]).success();
        ids.push(latest(&p)["run"]["id"].as_str().unwrap().to_string());
    }
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "{ids:?}");
    let mut kept = vec![format!("{}.json", ids[1]), format!("{}.json", ids[2]), "latest.json".into()];
    kept.sort();
    assert_eq!(stored(&p), kept, "runs {ids:?}");
    assert_eq!(latest(&p)["run"]["id"], ids[2].as_str());

    // 0 would keep nothing: refused, naming the file and the line, before anything runs.
    p.write(".clnrm/config.toml", format!("{config}\n[run]\nkeep_records = 0\n"));
    let line = config.lines().count() + 3;
    for command in ["dry-run", "run"] {
        p.clnrm(&[command])
            .code(3)
            .stderr_has(&format!(".clnrm/config.toml:{line}:"))
            .stderr_has("must be at least 1")
            .stderr_has("keep_records");
    }
    assert_eq!(stored(&p), kept, "a refused run wrote a record");
    p.assert_clean();
}

#[test]
fn record_path_writes_a_copy_where_asked() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("a", &steps(&["one"]));
    p.clnrm(&["run", "--record", "out/deep/run.json"]).success();
    latest(&p);
    assert_eq!(p.read("out/deep/run.json"), p.read(".clnrm/runs/latest.json"));

    // Relative to where clnrm runs, not to the project root.
    p.write("sub/.keep", "");
    let out = p.clnrm_in("sub", &["run", "--force", "--record", "here.json"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(p.read("sub/here.json"), p.read(".clnrm/runs/latest.json"));
    absent(&p, "here.json");
    assert_ne!(p.read("sub/here.json"), p.read("out/deep/run.json"), "a run of its own");
    p.assert_clean();
}

#[test]
fn report_refuses_what_is_not_a_record_and_writes_nothing() {
    let p = Project::with_fixture();
    p.scenario("a", &steps(&["one"]));
    let none = p.clnrm(&["report", "--json", "r.json", "--junit", "r.xml"]);
    none.code(2).stderr_has(".clnrm/runs/latest.json does not exist").stderr_has("`clnrm run` writes a record");
    assert_eq!(none.stdout, "");
    p.clnrm(&["report", "--from", "nope.json"]).code(2).stderr_has("nope.json does not exist");

    p.write("newer.json", "{\"version\": 99}");
    p.clnrm(&["report", "--from", "newer.json", "--json", "r.json"])
        .code(2)
        .stderr_has("newer.json is a run record of format 99, written by a newer clnrm")
        .stderr_has("upgrade clnrm");
    p.write("package.json", "{\"name\": \"shop\", \"version\": \"1.0.0\"}");
    p.clnrm(&["report", "--from", "package.json", "--junit", "r.xml"]).code(2).stderr_has("not a clnrm run record");
    p.write("other.json", "{\"runs\": [1, 2]}");
    p.clnrm(&["report", "--from", "other.json", "--json", "r.json"])
        .code(2)
        .stderr_has("other.json: not a clnrm run record: it has no `version`");
    p.write("old.json", "{\"version\": 1, \"scenarios\": []}");
    p.clnrm(&["report", "--from", "old.json", "--json", "r.json"]).code(2).stderr_has("not a clnrm run record");
    p.write("page.html", "<html></html>");
    p.clnrm(&["report", "--from", "page.html", "--json", "r.json"])
        .code(2)
        .stderr_has("page.html: not a clnrm run record: it is not a JSON object");
    p.write("empty.json", "");
    p.clnrm(&["report", "--from", "empty.json", "--json", "r.json"]).code(2).stderr_has("not a clnrm run record");
    absent(&p, "r.json");
    absent(&p, "r.xml");
    // `report` writes JSON with --json, not as its output format.
    p.clnrm(&["--format", "json", "report"]).code(2).stderr_has("--json PATH");
}

/// A JSON array is read as a struct by position, so `[99]` passed for a record of format 99 and
/// was refused as "written by a newer clnrm … upgrade clnrm", which sends the user the wrong way.
#[test]
fn a_json_array_is_not_taken_for_a_record_of_a_newer_format() {
    let p = Project::empty();
    p.write("numbers.json", "[99]");
    p.clnrm(&["report", "--from", "numbers.json", "--json", "r.json"])
        .code(2)
        .stderr_has("not a clnrm run record")
        .stderr_lacks("newer clnrm");
    absent(&p, "r.json");
}

#[test]
fn a_truncated_record_is_refused_and_nothing_is_written() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("a", &steps(&["one"]));
    p.clnrm(&["run"]).success();
    let whole = p.read(".clnrm/runs/latest.json");
    // The record is whole and reads back.
    p.clnrm(&["report"]).success().stdout_has("PASS [").stdout_has("1 scenario: 1 passed");

    let half = &whole[..whole.len() / 2];
    p.write("half.json", half);
    let out = p.clnrm(&["report", "--from", "half.json", "--json", "r.json", "--junit", "r.xml"]);
    out.code(2).stderr_has("half.json:1:").stderr_has("not a clnrm run record");
    assert_eq!(out.stdout, "", "nothing of a half record is shown");
    // The same as the project's latest record.
    p.write(".clnrm/runs/latest.json", half);
    p.clnrm(&["report", "--json", "r.json"])
        .code(2)
        .stderr_has(".clnrm/runs/latest.json:1:")
        .stderr_has("not a clnrm run record");
    // All but the final newline is still a record; one byte less is not.
    p.write("nearly.json", whole.trim_end());
    p.clnrm(&["report", "--from", "nearly.json"]).success();
    p.write("short.json", &whole.trim_end()[..whole.trim_end().len() - 1]);
    p.clnrm(&["report", "--from", "short.json", "--json", "r.json"]).code(2).stderr_has("not a clnrm run record");
    absent(&p, "r.json");
    absent(&p, "r.xml");
    p.assert_clean();
}

/// Waits until a container of the project runs a process whose command line holds `command`.
fn wait_for_process(p: &Project, command: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (containers, _) = p.leftovers();
        let running = containers.iter().any(|c| {
            Command::new("docker")
                .args(["top", c])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(command))
        });
        if running {
            return;
        }
        assert!(Instant::now() < deadline, "`{command}` never started");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_interrupted_run_is_recorded_with_its_signal_and_exit_code() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("slow", "[[steps]]\nname = \"naps\"\nrun = [\"sleep\", \"41\"]\n");
    let child = p.spawn(&["run"]);
    wait_for_process(&p, "sleep 41");
    signal(&child, "INT");
    finish(child).code(130);
    let record = latest(&p);
    assert_eq!((&record["run"]["interrupted"], &record["run"]["exit_code"]), (&"interrupt".into(), &130.into()));
    let slow = scenario(&record, "slow");
    assert_eq!(slow["status"], "interrupted", "{slow}");
    p.clnrm(&["report", "--junit", "r.xml"]).code(130).stdout_has("STOPPED");
    assert!(p.read("r.xml").contains("running when a signal stopped the run"));
    p.assert_clean();
}

/// A run that cannot start (here: an image missing with `pull = "never"`) is recorded too, with
/// why and exit 5: were it not, `clnrm run; clnrm report --junit …` in CI would report the
/// previous, green run.
#[test]
fn a_run_that_cannot_start_is_recorded_with_why() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("a", &steps(&["one"]));
    p.clnrm(&["run"]).success();
    let before = p.read(".clnrm/runs/latest.json");
    p.scenario("missing", "[[steps]]\nname = \"s\"\nimage = \"clnrm-missing:never\"\nrun = [\"true\"]\n");
    p.clnrm(&["run", "--record", "out.json", "--report", "json=r.json"]).code(5).stderr_has("clnrm-missing:never");
    let latest = p.read(".clnrm/runs/latest.json");
    assert_ne!(latest, before);
    assert_eq!(p.read("out.json"), latest);
    let record: Value = serde_json::from_str(&latest).unwrap();
    assert_eq!(record["run"]["exit_code"], 5, "{record}");
    assert!(record["run"]["error"].as_str().unwrap().contains("clnrm-missing:never"), "{record}");
    assert_eq!(record["run"]["first_exec_ms"], Value::Null, "no step ran: {record}");
    let report: Value = serde_json::from_str(&p.read("r.json")).unwrap();
    assert_eq!(report["exit_code"], 5, "{report}");
    p.clnrm(&["report"]).code(5).stdout_has("infrastructure failure").stdout_has("clnrm-missing:never");
    p.assert_clean();
}

#[test]
fn the_record_names_the_git_commit_and_whether_the_tree_was_dirty() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("a", &steps(&["one"]));
    p.write(".gitignore", ".clnrm/cache/\n.clnrm/runs/\nbaselines/\n");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(p.path())
            .env("HOME", p.path())
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "first"]);
    let head = git(&["rev-parse", "HEAD"]);
    p.clnrm(&["run"]).success();
    assert_eq!(latest(&p)["run"]["git"], serde_json::json!({"commit": head, "dirty": false}));
    p.write("notes.txt", "untracked\n");
    p.clnrm(&["run", "--force"]).success();
    assert_eq!(latest(&p)["run"]["git"], serde_json::json!({"commit": head, "dirty": true}));
    p.assert_clean();
}

/// Every run inside `watch` is a run of its own, with a record of its own (README: "Every `clnrm
/// run`, and every run inside `watch`, writes … `.clnrm/runs/<run-id>.json`").
#[test]
fn watch_keeps_a_record_of_every_run() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("a", "[[steps]]\nname = \"s\"\nrun = [\"false\"]\n");
    let watch = p.watch(&[], false);
    let wait = Duration::from_secs(60);
    watch.wait_for("watching for changes", 1, wait);
    let first = latest(&p);
    assert_eq!(scenario(&first, "a")["status"], "fail");
    assert_eq!(first["run"]["exit_code"], 1);

    p.scenario("a", "[[steps]]\nname = \"s\"\nrun = [\"true\"]\n");
    let out = watch.wait_for("watching for changes", 2, wait);
    assert!(out.contains("run 2:"), "{out}");
    let second = latest(&p);
    assert_eq!(scenario(&second, "a")["status"], "pass", "{out}");
    assert_eq!(second["run"]["exit_code"], 0);
    assert_eq!((&second["run"]["leftovers"], &second["run"]["undelivered"]), (&0.into(), &0.into()));
    assert_eq!(watch.interrupt(), 130);
    // Both runs are kept: the first record is not overwritten by the second. (Every run of a watch
    // took the watch's run id, so each record replaced the one before under the same name.)
    assert_ne!(first["run"]["id"], second["run"]["id"], "the two runs of the watch have one run id");
    let id = first["run"]["id"].as_str().unwrap();
    assert_eq!(json(&p, &format!(".clnrm/runs/{id}.json")), first, "the first run's record was replaced");
    let records: Vec<String> = stored(&p).into_iter().filter(|n| n != "latest.json").collect();
    assert_eq!(records.len(), 2, "one record per run: {records:?}");
    p.assert_clean();
}
