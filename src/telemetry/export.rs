//! Sending everything on to the user's own OTLP endpoint (Jaeger, Tempo, a collector), when one is
//! named: `--otel-endpoint`, or `OTEL_EXPORTER_OTLP_ENDPOINT` in clnrm's own environment (with
//! `OTEL_EXPORTER_OTLP_PROTOCOL`, `http/protobuf` by default, as the OpenTelemetry spec says).
//!
//! clnrm's own spans go through the SDK's OTLP exporter. Collected spans are forwarded as the OTLP
//! requests they arrived in — unchanged, so every span keeps its own resource (`service.name`),
//! which re-exporting through one SDK exporter (one resource) would lose.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_http::HttpClient;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tokio::sync::mpsc;

use crate::telemetry::wiring::OtlpProtocol;

/// How long one export may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Requests waiting to be forwarded; beyond, new ones are dropped (and counted) rather than
/// letting a slow endpoint hold up the run.
const QUEUE: usize = 1024;

/// The user's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Base URL, e.g. `http://localhost:4318` (HTTP) or `http://localhost:4317` (gRPC).
    pub endpoint: String,
    pub protocol: OtlpProtocol,
}

impl Destination {
    /// From `--otel-endpoint`, else clnrm's own `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn from_env(cli: Option<&str>) -> Option<Destination> {
        let endpoint = cli.map(str::to_string).or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())?;
        let endpoint = endpoint.trim().trim_end_matches('/').to_string();
        if endpoint.is_empty() {
            return None;
        }
        let protocol = match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
            Ok("grpc") => OtlpProtocol::Grpc,
            _ => OtlpProtocol::HttpProtobuf,
        };
        Some(Destination { endpoint, protocol })
    }

    fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint)
    }

    /// The SDK exporter for clnrm's own spans.
    pub fn exporter(&self) -> Result<opentelemetry_otlp::SpanExporter, String> {
        let built = match self.protocol {
            OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(self.traces_url())
                .with_timeout(TIMEOUT)
                .build(),
            OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(&self.endpoint)
                .with_timeout(TIMEOUT)
                .build(),
        };
        built.map_err(|e| format!("cannot export to {}: {e}", self.endpoint))
    }
}

/// Forwards received requests to the destination in the background.
pub struct Forwarder {
    queue: mpsc::Sender<ExportTraceServiceRequest>,
    /// Requests that could not be delivered: dropped (queue full) or refused.
    undelivered: Arc<AtomicU64>,
    /// Requests queued and not yet handled.
    pending: Arc<AtomicU64>,
}

impl Forwarder {
    pub fn start(destination: Destination) -> Forwarder {
        let (queue, mut requests) = mpsc::channel::<ExportTraceServiceRequest>(QUEUE);
        let undelivered = Arc::new(AtomicU64::new(0));
        let pending = Arc::new(AtomicU64::new(0));
        let (failed, left) = (Arc::clone(&undelivered), Arc::clone(&pending));
        tokio::spawn(async move {
            let mut grpc: Option<TraceServiceClient<tonic::transport::Channel>> = None;
            let http = opentelemetry_http::hyper::HyperClient::with_default_connector(TIMEOUT, None);
            while let Some(request) = requests.recv().await {
                let sent = match destination.protocol {
                    OtlpProtocol::HttpProtobuf => {
                        let post = http::Request::post(destination.traces_url())
                            .header("content-type", "application/x-protobuf")
                            .body(request.encode_to_vec().into());
                        match post {
                            Ok(post) => http.send_bytes(post).await.is_ok_and(|r| r.status().is_success()),
                            Err(_) => false,
                        }
                    }
                    OtlpProtocol::Grpc => {
                        if grpc.is_none() {
                            grpc = TraceServiceClient::connect(destination.endpoint.clone()).await.ok();
                        }
                        match grpc.as_mut() {
                            Some(client) => client.export(request).await.is_ok(),
                            None => false,
                        }
                    }
                };
                if !sent {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                left.fetch_sub(1, Ordering::Relaxed);
            }
        });
        Forwarder { queue, undelivered, pending }
    }

    /// Queues a copy of `request`.
    pub fn send(&self, request: &ExportTraceServiceRequest) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        if self.queue.try_send(request.clone()).is_err() {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            self.undelivered.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits (at most the export timeout) for what is queued; returns how many requests could not
    /// be delivered.
    pub async fn flush(&self) -> u64 {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while self.pending.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.undelivered.load(Ordering::Relaxed) + self.pending.load(Ordering::Relaxed)
    }
}
