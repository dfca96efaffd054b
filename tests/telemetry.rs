//! Spans through the real binary: `clnrm collect` records them, and `clnrm run` sends its spans
//! to an external endpoint (a second `clnrm collect`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{Project, engine_available};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as OtlpSpan};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running `clnrm collect`, killed if a test fails before stopping it.
struct Collector(Option<Child>);

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `clnrm collect` on a free port; returns it and the port.
fn collect(p: &Project, out: &str) -> (Collector, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .args(["collect", "--listen", "127.0.0.1:0", "--out", out])
        .current_dir(p.path())
        .env_clear()
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    // Keep reading, so that what collect prints later never meets a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let port = line
        .split("listening on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok());
    (Collector(Some(child)), port.unwrap_or_else(|| panic!("no port in {line:?}")))
}

fn stop(mut collector: Collector) {
    let mut child = collector.0.take().unwrap();
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success(), "collect exits 0 on Ctrl-C");
}

fn traces(p: &Project, out: &str) -> Vec<serde_json::Value> {
    p.read(out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn request(trace: u8, names: &[&str]) -> ExportTraceServiceRequest {
    let spans = names
        .iter()
        .enumerate()
        .map(|(i, n)| OtlpSpan {
            trace_id: vec![trace; 16],
            span_id: vec![i as u8 + 1; 8],
            name: n.to_string(),
            start_time_unix_nano: i as u64,
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn collect_writes_one_trace_per_line_from_http_and_grpc() {
    let p = Project::empty();
    let (child, port) = collect(&p, "traces.jsonl");
    let mut grpc = TraceServiceClient::connect(format!("http://127.0.0.1:{port}")).await.unwrap();
    grpc.export(request(1, &["a", "b"])).await.unwrap();
    let body = request(2, &["c"]).encode_to_vec();
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
    stop(child);
    let mut lines = traces(&p, "traces.jsonl");
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
        "[[steps]]\nname = \"first step\"\nrun = [\"true\"]\n\n[[steps]]\nname = \"second step\"\nrun = [\"true\"]\n",
    );
    let (child, port) = collect(&p, "external.jsonl");
    p.clnrm(&["run", "--otel-endpoint", &format!("http://127.0.0.1:{port}")]).success();
    stop(child);
    let all = traces(&p, "external.jsonl");
    let spans: Vec<&serde_json::Value> = all.iter().flat_map(|t| t["spans"].as_array().unwrap()).collect();
    let named = |n: &str| spans.iter().find(|s| s["name"] == n).unwrap_or_else(|| panic!("no span {n}: {all:?}"));
    let scenario = named("exported");
    assert_eq!(scenario["resource"]["service.name"], "clnrm");
    assert_eq!(named("first step")["parent_span_id"], scenario["span_id"]);
    assert_eq!(named("second step")["trace_id"], scenario["trace_id"]);
    assert!(spans.iter().any(|s| s["name"] == "clnrm run"), "the run's own span is exported too");
    p.assert_clean();
}
