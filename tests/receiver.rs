//! The OTLP receiver over real HTTP and gRPC: both encodings and protocols arrive, and bad input
//! (garbage protobuf, invalid JSON, oversized bodies, clients that vanish mid-request) gets the
//! right answer while the receiver keeps serving.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use clnrm::telemetry::receiver::{MAX_BODY, Receiver, Sink};
use clnrm::telemetry::span::Span;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Default)]
struct Recorder(Mutex<Vec<(IpAddr, String)>>);

impl Sink for Recorder {
    fn accept(&self, peer: IpAddr, spans: Vec<Span>) {
        self.0.lock().unwrap().extend(spans.into_iter().map(|s| (peer, s.name.to_string())));
    }
}

fn request(names: &[&str]) -> ExportTraceServiceRequest {
    common::otlp_request(1, names)
}

/// Sends one HTTP/1.1 POST and returns the status code and body.
async fn post(addr: SocketAddr, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

async fn start() -> (Receiver, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), recorder.clone()).await.unwrap();
    (receiver, recorder)
}

fn names(recorder: &Recorder) -> Vec<String> {
    recorder.0.lock().unwrap().iter().map(|(_, n)| n.clone()).collect()
}

#[tokio::test]
async fn spans_arrive_over_http_protobuf_json_and_grpc_on_one_port() {
    let (receiver, recorder) = start().await;
    let (status, _) = post(receiver.addr, "application/x-protobuf", &request(&["proto"]).encode_to_vec()).await;
    assert_eq!(status, 200);
    let json = serde_json::to_vec(&request(&["json"])).unwrap();
    let (status, body) = post(receiver.addr, "application/json", &json).await;
    assert_eq!(status, 200, "{body}");
    let mut client = TraceServiceClient::connect(format!("http://{}", receiver.addr)).await.unwrap();
    let response = client.export(request(&["grpc-1", "grpc-2"])).await.unwrap().into_inner();
    assert!(response.partial_success.is_none());
    assert_eq!(names(&recorder), ["proto", "json", "grpc-1", "grpc-2"]);
    assert!(recorder.0.lock().unwrap().iter().all(|(peer, _)| peer.is_loopback()), "the sender's address is known");
    receiver.stop().await;
}

#[tokio::test]
async fn spans_with_bad_ids_are_rejected_through_partial_success() {
    let (receiver, recorder) = start().await;
    let mut bad = request(&["kept", "bad"]);
    bad.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![1, 2, 3];
    let mut client = TraceServiceClient::connect(format!("http://{}", receiver.addr)).await.unwrap();
    let partial = client.export(bad.clone()).await.unwrap().into_inner().partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(partial.error_message.contains("trace id"), "{}", partial.error_message);
    let (status, body) = post(receiver.addr, "application/json", &serde_json::to_vec(&bad).unwrap()).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"rejectedSpans\":\"1\"") || body.contains("\"rejectedSpans\":1"), "{body}");
    assert_eq!(names(&recorder), ["kept", "kept"]);
}

#[tokio::test]
async fn bad_input_is_refused_and_the_receiver_keeps_serving() {
    let (receiver, recorder) = start().await;
    let addr = receiver.addr;
    let (status, body) = post(addr, "application/x-protobuf", b"\xff\xff\xff garbage \x00\x01").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("malformed OTLP export request"), "{body}");
    let (status, _) = post(addr, "application/json", b"{\"resourceSpans\": [ not json").await;
    assert_eq!(status, 400);
    let (status, _) = post(addr, "text/plain", b"hello").await;
    assert_eq!(status, 415);
    let (status, _) = post(addr, "application/x-protobuf", &vec![0u8; MAX_BODY + 1]).await;
    assert_eq!(status, 413);

    // A client that announces a body and disappears halfway.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\npartial")
        .await
        .unwrap();
    drop(stream);
    // gRPC garbage: a client speaking HTTP/2 with a nonsense frame.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\xff\xff\xff\xff\xff\xff\x00\x00").await.unwrap();
    drop(stream);

    let (status, _) = post(addr, "application/x-protobuf", &request(&["still here"]).encode_to_vec()).await;
    assert_eq!(status, 200);
    let mut client = TraceServiceClient::connect(format!("http://{addr}")).await.unwrap();
    client.export(request(&["grpc still here"])).await.unwrap();
    assert_eq!(names(&recorder), ["still here", "grpc still here"]);
}
