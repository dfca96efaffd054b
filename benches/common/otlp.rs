//! OTLP traffic for benchmarks: realistic export requests and a client that posts them. Included
//! by the benchmarks with `#[path = "common/otlp.rs"] mod otlp;`.

use std::net::SocketAddr;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as OtlpSpan};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Spans per request.
pub const BATCH: usize = 512;

pub fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

/// A realistic batch, as an SDK's HTTP instrumentation sends it: server and internal spans with
/// nine HTTP/DB attributes (one of them different on every span), one resource of three.
pub fn batch(trace: u8, seed: u64) -> ExportTraceServiceRequest {
    let spans = (0..BATCH as u64)
        .map(|i| {
            let n = seed * BATCH as u64 + i;
            OtlpSpan {
                trace_id: vec![trace; 16],
                span_id: (n + 1).to_le_bytes().to_vec(),
                parent_span_id: n.max(1).to_le_bytes().to_vec(),
                name: if i % 8 == 0 { "POST /orders".into() } else { format!("reserve item {}", i % 50) },
                kind: if i % 8 == 0 { 2 } else { 1 },
                start_time_unix_nano: 1_700_000_000_000_000_000 + n * 1000,
                end_time_unix_nano: 1_700_000_000_000_000_000 + n * 1000 + 900,
                attributes: vec![
                    kv("http.request.method", any_value::Value::StringValue("POST".into())),
                    kv("http.route", any_value::Value::StringValue("/orders".into())),
                    kv("url.path", any_value::Value::StringValue(format!("/orders/{n}/items"))),
                    kv("http.response.status_code", any_value::Value::IntValue(200)),
                    kv("server.address", any_value::Value::StringValue("shop".into())),
                    kv("server.port", any_value::Value::IntValue(8080)),
                    kv("network.protocol.version", any_value::Value::StringValue("1.1".into())),
                    kv("item.index", any_value::Value::IntValue((i % 50) as i64)),
                    kv("db.system", any_value::Value::StringValue("sqlite".into())),
                ],
                ..Default::default()
            }
        })
        .collect();
    let resource = Resource {
        attributes: vec![
            kv("service.name", any_value::Value::StringValue("shop".into())),
            kv("clnrm.scenario", any_value::Value::StringValue("bench".into())),
            kv("clnrm.run-id", any_value::Value::StringValue("0123456789ab".into())),
        ],
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// Keeps one keep-alive HTTP/1.1 connection busy with pre-encoded batches.
pub async fn client(addr: SocketAddr, bodies: Arc<Vec<Vec<u8>>>, requests: usize) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buffer = vec![0u8; 4096];
    for i in 0..requests {
        let body = &bodies[i % bodies.len()];
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        // Read one response: headers, then the Content-Length body.
        let mut got = Vec::new();
        loop {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "connection closed");
            got.extend_from_slice(&buffer[..n]);
            let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                break;
            }
        }
    }
}
