//! Spans through the real binary: `clnrm collect` records them, and `clnrm run` sends its spans
//! to an external endpoint (a second `clnrm collect`).

mod common;

use common::{Project, engine_available, otlp_request};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn collect_writes_one_trace_per_line_from_http_and_grpc() {
    let p = Project::empty();
    let collector = p.collect("traces.jsonl");
    let port = collector.port;
    let mut grpc = TraceServiceClient::connect(format!("http://127.0.0.1:{port}")).await.unwrap();
    grpc.export(otlp_request(1, &["a", "b"])).await.unwrap();
    let body = otlp_request(2, &["c"]).encode_to_vec();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    collector.stop();
    let mut lines = p.traces("traces.jsonl");
    lines.sort_by_key(|t| t["trace_id"].as_str().unwrap().to_string());
    assert_eq!(lines.len(), 2, "one line per trace");
    assert_eq!(lines[0]["trace_id"], "01".repeat(16));
    let names: Vec<&str> = lines[0]["spans"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(lines[1]["spans"][0]["name"], "c");
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
