//! Tracing set up from the standard OpenTelemetry environment variables only, so clnrm (or any
//! collector) configures the demo exactly as it would configure a real instrumented service.
//!
//! The 0.33 SDK and OTLP exporter read most variables themselves: `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES` (in `Resource::builder`), `OTEL_BSP_SCHEDULE_DELAY` and the other
//! `OTEL_BSP_*` (in the batch processor's default config), and the endpoint, headers, timeout
//! and compression variables (in the exporter). This module wires the rest:
//!
//! - without `OTEL_EXPORTER_OTLP_ENDPOINT` there is no exporter at all, so the app runs
//!   anywhere; the exporter alone would keep sending to `localhost:4318`;
//! - `OTEL_EXPORTER_OTLP_PROTOCOL` picks the transport, and an unsupported value is an error
//!   rather than the exporter's silent fallback;
//! - the service is called `demo-app` unless the environment names it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::env;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, SpanRef, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::runtime;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tokio::task::JoinError;

/// The tracer provider of one command, to be shut down before the process exits.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Builds the provider. Must run inside the Tokio runtime, which drives the exports.
    pub fn init() -> Result<Self, String> {
        let mut builder = SdkTracerProvider::builder().with_resource(resource());
        if let Some(exporter) = exporter()? {
            // The SDK's default batch processor exports from a plain thread, where the async
            // HTTP client (hyper, the only one this package enables) cannot run; this one
            // exports from a Tokio task instead.
            builder = builder.with_span_processor(BatchSpanProcessor::builder(exporter, runtime::Tokio).build());
        }
        Ok(Self { provider: builder.build() })
    }

    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("demo-app")
    }

    /// Exports every span ended so far.
    pub async fn flush(&self) {
        let provider = self.provider.clone();
        report(tokio::task::spawn_blocking(move || provider.force_flush()).await);
    }

    /// Exports the remaining spans and stops the processor.
    pub async fn shutdown(self) {
        let provider = self.provider;
        report(tokio::task::spawn_blocking(move || provider.shutdown()).await);
    }
}

/// Reports a failed flush or shutdown without failing the command: like any service, the demo
/// keeps working when its collector does not. Both block until the export is done, and the
/// export itself runs on the runtime, hence the blocking thread they are called from.
fn report(outcome: Result<OTelSdkResult, JoinError>) {
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("demo-app: exporting spans: {e}"),
        Err(e) => eprintln!("demo-app: exporting spans: {e}"),
    }
}

/// A non-empty environment variable (the specification treats empty as unset).
fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|value| !value.is_empty())
}

/// The OTLP exporter the environment asks for, or none without an endpoint. The signal-specific
/// `OTEL_EXPORTER_OTLP_TRACES_*` variables take precedence, as the exporter itself does.
fn exporter() -> Result<Option<SpanExporter>, String> {
    if var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT")).is_none() {
        return Ok(None);
    }
    let protocol = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"));
    let exporter = match protocol.as_deref() {
        None | Some("http/protobuf") => SpanExporter::builder().with_http().with_protocol(Protocol::HttpBinary).build(),
        Some("grpc") => SpanExporter::builder().with_tonic().build(),
        Some(other) => {
            return Err(format!("OTEL_EXPORTER_OTLP_PROTOCOL={other} is not supported: use http/protobuf or grpc"));
        }
    };
    exporter.map(Some).map_err(|e| format!("OTLP exporter: {e}"))
}

/// The SDK's resource (its detectors read `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`)
/// with two corrections: the fallback name is `demo-app` rather than `unknown_service:demo-app`,
/// and `OTEL_SERVICE_NAME` wins over a `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, as the
/// specification says (the SDK's detectors let the latter win).
fn resource() -> Resource {
    let builder = Resource::builder();
    let named_in_attributes = var("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|attributes| {
        attributes.split(',').any(|pair| pair.split_once('=').is_some_and(|(key, _)| key.trim() == "service.name"))
    });
    match var("OTEL_SERVICE_NAME") {
        Some(name) => builder.with_service_name(name),
        None if named_in_attributes => builder,
        None => builder.with_service_name("demo-app"),
    }
    .build()
}

/// Starts span `name` as a child of the span in `parent` (a new trace if there is none) and
/// returns the context holding it, which is what its own children are started from.
pub fn start(
    tracer: &SdkTracer,
    parent: &Context,
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
) -> Context {
    let span = tracer.span_builder(name).with_kind(kind).with_attributes(attributes).start_with_context(tracer, parent);
    parent.with_span(span)
}

/// Marks a span failed the way trace backends expect: status error and an `exception` event.
pub fn record_failure(span: &SpanRef<'_>, exception_type: &'static str, message: &str) {
    span.add_event(
        "exception",
        vec![KeyValue::new("exception.type", exception_type), KeyValue::new("exception.message", message.to_owned())],
    );
    span.set_status(Status::error(message.to_owned()));
}

/// The W3C trace context (`traceparent`, `tracestate`) found in `carrier`, e.g. HTTP headers
/// keyed by lower-case name; an empty context when it is absent or malformed.
pub fn extract(carrier: &HashMap<String, String>) -> Context {
    TraceContextPropagator::new().extract(carrier)
}

/// The `traceparent` (and `tracestate`) headers that make a callee's spans children of `cx`'s span.
pub fn inject(cx: &Context) -> HashMap<String, String> {
    let mut headers = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut headers);
    headers
}

/// The caller's trace context from `TRACEPARENT` and `TRACESTATE`, the environment-variable
/// carrier of the OpenTelemetry specification; an empty context when `TRACEPARENT` is unset,
/// and an error when it is set but malformed (silently starting a new trace would hide that).
pub fn caller_context() -> Result<Context, String> {
    let Some(traceparent) = var("TRACEPARENT") else {
        return Ok(Context::new());
    };
    let mut carrier = HashMap::from([("traceparent".to_owned(), traceparent.clone())]);
    if let Some(tracestate) = var("TRACESTATE") {
        carrier.insert("tracestate".to_owned(), tracestate);
    }
    let cx = extract(&carrier);
    if cx.span().span_context().is_valid() {
        Ok(cx)
    } else {
        Err(format!("TRACEPARENT={traceparent} is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)"))
    }
}
