//! Spans through the real binary: `clnrm collect` records them, and `clnrm run` sends its spans
//! to an external endpoint (a second `clnrm collect`).

mod common;

use std::collections::HashMap;

use common::{Project, engine_available, otlp_request};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

#[tokio::test]
async fn collect_writes_one_trace_per_line_from_http_and_grpc() {
    let p = Project::empty();
    let collector = p.collect("traces.jsonl");
    let port = collector.port;
    let mut grpc = TraceServiceClient::connect(format!("http://127.0.0.1:{port}")).await.unwrap();
    grpc.export(otlp_request(1, &["a", "b"])).await.unwrap();
    assert_eq!(collector.post(&otlp_request(2, &["c"])).await, "HTTP/1.1 200 OK");
    collector.stop();
    let mut lines = p.traces("traces.jsonl");
    lines.sort_by_key(|t| t["trace_id"].as_str().unwrap().to_string());
    assert_eq!(lines.len(), 2, "one line per trace");
    assert_eq!(lines[0]["trace_id"], "01".repeat(16));
    let names: Vec<&str> = lines[0]["spans"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(lines[1]["spans"][0]["name"], "c");
}

/// `count` span names of trace `trace`: `{trace}-{from}`, `{trace}-{from + 1}`, ….
fn spans(trace: u8, from: usize, count: usize) -> Vec<String> {
    (from..from + count).map(|i| format!("{trace}-{i}")).collect()
}

/// A request with a span of trace `trace` per name.
fn request(trace: u8, names: &[String]) -> ExportTraceServiceRequest {
    otlp_request(trace, &names.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The names of each trace's spans in the file, by trace id, sorted.
fn written(p: &Project, out: &str) -> HashMap<String, Vec<String>> {
    let mut traces: HashMap<String, Vec<String>> = HashMap::new();
    for line in p.traces(out) {
        let names = line["spans"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string());
        traces.entry(line["trace_id"].as_str().unwrap().to_string()).or_default().extend(names);
    }
    traces.values_mut().for_each(|names| names.sort());
    traces
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

/// One client streaming a trace without end made collect hold it all (768 MB for a million
/// spans). Past `--max-trace-spans` a trace's spans are dropped, past `--max-spans` every new
/// span is, and a warning names each trace that lost spans and how many; below the caps nothing
/// is lost.
#[tokio::test]
async fn collect_holds_at_most_the_span_caps_and_names_what_it_dropped() {
    let p = Project::empty();
    let caps = ["--max-trace-spans", "1000", "--max-spans", "1500", "--idle", "1m"];
    let collector = p.collect_with("traces.jsonl", &caps);
    // Trace 1 streams 2,500 spans: it keeps its first 1,000. Trace 2 fits: 1,400 are held.
    for k in 0..5 {
        assert_eq!(collector.post(&request(1, &spans(1, k * 500, 500))).await, "HTTP/1.1 200 OK");
    }
    let two = spans(2, 0, 400);
    collector.post(&request(2, &two)).await;
    // Trace 3 finds 100 places left of 1,500.
    collector.post(&request(3, &spans(3, 0, 300))).await;
    let stderr = collector.stop();
    let traces = written(&p, "traces.jsonl");
    assert_eq!(p.traces("traces.jsonl").len(), 3, "one line per trace");
    assert_eq!(traces[&"01".repeat(16)], sorted(spans(1, 0, 1000)), "the first 1,000 of trace 1");
    assert_eq!(traces[&"02".repeat(16)], sorted(two), "nothing lost below the caps");
    assert_eq!(traces[&"03".repeat(16)], sorted(spans(3, 0, 100)));
    for warning in [
        format!("trace {}: wrote 1000 spans, dropped 1500 (1500 beyond --max-trace-spans 1000)", "01".repeat(16)),
        format!("trace {}: wrote 100 spans, dropped 200 (200 while --max-spans 1500 were held)", "03".repeat(16)),
        "wrote 1500 spans in 3 traces; dropped 1700 spans".to_string(),
    ] {
        assert!(stderr.contains(&warning), "stderr lacks {warning:?}:\n{stderr}");
    }
    assert!(!stderr.contains(&format!("trace {}:", "02".repeat(16))), "{stderr}");
}

/// A trace was split in two when its spans came more than a second apart, and that could not be
/// changed: `--idle` sets how long a trace stays open.
#[tokio::test]
async fn collect_keeps_a_trace_open_for_the_idle_time() {
    let p = Project::empty();
    let collector = p.collect_with("traces.jsonl", &["--idle", "4s"]);
    collector.post(&otlp_request(1, &["early"])).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    collector.post(&otlp_request(1, &["late"])).await;
    collector.stop();
    assert_eq!(written(&p, "traces.jsonl")[&"01".repeat(16)], ["early", "late"], "one line");
    assert_eq!(p.traces("traces.jsonl").len(), 1);
    p.clnrm(&["collect", "--idle", "soon"]).code(2).stderr_has("--idle");
}

/// Spans of a trace that arrive after it was written are not passed off as a trace of their own
/// without a word: they start another line with the same trace id, and a warning says why.
#[tokio::test]
async fn collect_warns_when_a_trace_is_split_by_late_spans() {
    let p = Project::empty();
    let collector = p.collect_with("traces.jsonl", &["--idle", "200ms"]);
    collector.post(&otlp_request(1, &["early"])).await;
    collector.post(&otlp_request(2, &["other"])).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    collector.post(&otlp_request(1, &["late"])).await;
    let stderr = collector.stop();
    let lines: Vec<(String, usize)> = p
        .traces("traces.jsonl")
        .iter()
        .map(|l| (l["trace_id"].as_str().unwrap().to_string(), l["spans"].as_array().unwrap().len()))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines.iter().filter(|(id, _)| *id == "01".repeat(16)).count(), 2, "{lines:?}");
    let warning = format!("warning: trace {}: spans arrived after it was written", "01".repeat(16));
    assert_eq!(stderr.matches(&warning).count(), 1, "{stderr}");
    assert!(stderr.contains("--idle 200.0ms"), "{stderr}");
    assert!(!stderr.contains(&format!("trace {}:", "02".repeat(16))), "{stderr}");
}

/// A trace that cannot be written is not lost silently: collect stops with exit 5 and says why.
#[tokio::test]
async fn collect_stops_when_it_cannot_write() {
    let p = Project::empty();
    let collector = p.collect_with("/dev/full", &["--idle", "10ms"]);
    collector.post(&otlp_request(1, &["a"])).await;
    let (code, stderr) = collector.exited();
    assert_eq!(code, Some(5), "{stderr}");
    assert!(stderr.contains("cannot write the traces to /dev/full"), "{stderr}");
}

#[test]
fn run_sends_its_spans_to_an_external_endpoint() {
    if !engine_available() {
        return;
    }
    let p = Project::with_fixture();
    p.scenario(
        "exported",
        "[[steps]]\nname = \"first step\"\nrun = [\"true\"]\n\n[[steps]]\nname = \"second step\"\nrun = [\"sh\", \"-c\", \"exit 3\"]\nexpect = { exit = 3 }\n",
    );
    let collector = p.collect("external.jsonl");
    let endpoint = format!("http://127.0.0.1:{}", collector.port);
    p.clnrm(&["run", "--otel-endpoint", &endpoint, "--update-baselines"]).success();
    // Unchanged since it passed: skipped, and its span says so.
    p.clnrm(&["run", "--otel-endpoint", &endpoint]).success().stdout_has("CACHED");
    collector.stop();
    let all = p.traces("external.jsonl");
    let spans: Vec<&serde_json::Value> = all.iter().flat_map(|t| t["spans"].as_array().unwrap()).collect();
    let named = |n: &str| -> Vec<&serde_json::Value> { spans.iter().copied().filter(|s| s["name"] == n).collect() };
    let scenarios = named("exported");
    assert_eq!(scenarios.len(), 2, "a span per run: {all:?}");
    // Traces are written as they go quiet, so the runs' order in the file is not fixed.
    let by_cache = |status: &str| {
        let found: Vec<_> = scenarios.iter().filter(|s| s["attributes"]["clnrm.cache"] == status).collect();
        assert_eq!(found.len(), 1, "one scenario span with clnrm.cache={status}: {scenarios:?}");
        *found[0]
    };
    let (ran, cached) = (by_cache("miss"), by_cache("hit"));
    assert_eq!(ran["resource"]["service.name"], "clnrm");
    assert_eq!(ran["attributes"]["clnrm.outcome"], "pass");
    assert_eq!(cached["attributes"]["clnrm.outcome"], "cached");
    let (first, second) = (named("first step")[0], named("second step")[0]);
    assert_eq!(first["parent_span_id"], ran["span_id"]);
    assert_eq!(second["trace_id"], ran["trace_id"]);
    assert_eq!(first["attributes"]["process.exit.code"], 0);
    assert_eq!(second["attributes"]["process.exit.code"], 3);
    assert_eq!(first["attributes"]["container.image.name"], "clnrm-fixture:busybox");
    let id = first["attributes"]["container.id"].as_str().unwrap_or_default();
    assert!(id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()), "container.id {id:?}");
    assert_eq!(named("clnrm run").len(), 2, "each run's own span is exported too");
    p.assert_clean();
}
