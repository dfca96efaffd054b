//! The embedded OTLP receiver: OTLP/HTTP (`POST /v1/traces`, protobuf and JSON) and OTLP/gRPC
//! (TraceService) on one port — HTTP/1.1 and HTTP/2 are told apart per connection — so containers
//! need one endpoint whichever protocol their SDK speaks.
//!
//! Bodies are capped (413 beyond); a malformed payload gets a 400 and nothing else changes; spans
//! that cannot be stored (bad ids) are reported back through OTLP's partial-success fields.
//!
//! Connections are served by hyper directly rather than through `axum::serve`, for one setting:
//! HTTP/1 half-close. Many small clients (busybox `nc`, some `curl` modes) send their request and
//! then shut down their write side; by default hyper takes that end-of-file for an aborted
//! request and drops it unanswered, losing its spans. A request that arrived whole is always
//! processed and answered.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::span::{Span, from_otlp};

/// Where received spans go.
pub trait Sink: Send + Sync + 'static {
    /// `spans` arrived from `peer`.
    fn accept(&self, peer: IpAddr, spans: Vec<Span>);
    /// An export request from `peer` was refused, whole (`spans` is `None`: its spans are unknown)
    /// or in part (that many of its spans), for `reason`. Its sender's spans are then incomplete
    /// (default: ignored).
    fn refused(&self, _peer: IpAddr, _spans: Option<u64>, _reason: &str) {}
    /// The raw request, for sinks that forward it elsewhere unchanged (default: ignored).
    fn forward(&self, _request: &ExportTraceServiceRequest) {}
}

/// Largest request body accepted; OTLP SDKs send a few hundred KB per batch.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// How long requests in flight may take to finish when the receiver stops.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// A running receiver. Dropping it stops serving.
pub struct Receiver {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Binds `listen` and serves until [`Receiver::stop`] or drop.
    pub async fn start(listen: SocketAddr, sink: Arc<dyn Sink>) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let grpc = TraceServiceServer::new(Grpc { sink: Arc::clone(&sink) }).max_decoding_message_size(MAX_BODY);
        let app = Router::new()
            .route("/v1/traces", post(http_traces))
            .layer(DefaultBodyLimit::disable())
            .with_state(sink)
            .merge(tonic::service::Routes::new(grpc).into_axum_router());
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, app, stopped));
        Ok(Receiver { addr, shutdown: Some(shutdown), task })
    }

    /// Stops accepting, lets requests in flight finish (up to [`STOP_GRACE`]), then closes every
    /// connection: exporters keep theirs open, and must not hold the receiver up.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if tokio::time::timeout(STOP_GRACE, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections until `stopped`, then lets requests in flight finish. Connections live in
/// this task's set, so aborting it closes them all.
async fn serve(listener: TcpListener, app: Router, stopped: tokio::sync::oneshot::Receiver<()>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().half_close(true);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    tokio::pin!(stopped);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, or a connection reset before it was accepted: go on
                // after a pause rather than spin.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = &mut stopped => break,
        };
        // Answers go out at once: with Nagle's algorithm a small write waits for the peer's
        // delayed ACK (40 ms on Linux), and an HTTP/2 (gRPC) exporter's request then reached the
        // store ~45 ms after it was sent, past the wait for spans (measured: docs/benchmarks.md).
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            tower_service::Service::call(&mut app.clone(), request)
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        connections.spawn(graceful.watch(connection));
        while connections.try_join_next().is_some() {}
    }
    graceful.shutdown().await;
}

/// What an export request yields: spans stored, and the partial-success answer.
fn ingest(sink: &dyn Sink, peer: IpAddr, request: ExportTraceServiceRequest) -> ExportTraceServiceResponse {
    sink.forward(&request);
    let (spans, rejected) = from_otlp(request.resource_spans);
    if let Some(rejected) = &rejected {
        sink.refused(peer, Some(rejected.count.unsigned_abs()), &rejected.reason);
    }
    sink.accept(peer, spans);
    ExportTraceServiceResponse {
        partial_success: rejected
            .map(|r| ExportTracePartialSuccess { rejected_spans: r.count, error_message: r.reason }),
    }
}

/// An OTLP/HTTP export request's body: OTLP/JSON when `json`, else protobuf.
pub fn decode(json: bool, body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    if json {
        serde_json::from_slice::<ExportTraceServiceRequest>(body).map_err(|e| e.to_string())
    } else {
        ExportTraceServiceRequest::decode(body).map_err(|e| e.to_string())
    }
}

async fn http_traces(
    State(sink): State<Arc<dyn Sink>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let refuse = |status: StatusCode, message: String| {
        sink.refused(peer.ip(), None, &message);
        (status, message).into_response()
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let json = content_type.starts_with("application/json");
    if !json && !content_type.starts_with("application/x-protobuf") {
        let message =
            format!("unsupported content type `{content_type}`: send application/x-protobuf or application/json");
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, message);
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(e) if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, format!("export request over {} MiB", MAX_BODY >> 20));
        }
        // The client went away before its request was whole: it knows it was not delivered.
        Err(e) => return (StatusCode::BAD_REQUEST, format!("incomplete request: {e}")).into_response(),
    };
    let request = match decode(json, &body) {
        Ok(request) => request,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("malformed OTLP export request: {e}")),
    };
    let response = ingest(&*sink, peer.ip(), request);
    if json {
        let body = serde_json::to_vec(&response).unwrap_or_default();
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/x-protobuf")], response.encode_to_vec()).into_response()
    }
}

struct Grpc {
    sink: Arc<dyn Sink>,
}

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            .or_else(|| request.remote_addr().map(|a| a.ip()))
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(tonic::Response::new(ingest(&*self.sink, peer, request.into_inner())))
    }
}
