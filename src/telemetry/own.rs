//! clnrm's own spans: run → scenario → service start / service wait / step, made with the
//! OpenTelemetry SDK.
//!
//! Each scenario is the root of its own trace (linked to the run's span), so that trace ids tell
//! scenarios apart and a scenario's trace is complete on its own: the steps' spans are the parents
//! of what the system under test does (clnrm hands each step its `TRACEPARENT`). Every finished span
//! is copied into the store, where expectations see it beside the collected ones; when the user
//! names an OTLP endpoint, the SDK also exports them there.

use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{Link, SpanKind as OtelKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::Resource as SdkResource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanProcessor};

use super::span::{AttrValue, Attributes, Event, Resource, Span, SpanKind, SpanStatus, TraceId, hex};
use super::store::Store;

/// The `service.name` of clnrm's own spans.
pub const SERVICE_NAME: &str = "clnrm";

/// clnrm's tracer for one run.
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    run: Context,
}

/// One of clnrm's spans, in progress.
pub struct OwnSpan {
    cx: Context,
}

impl OwnSpan {
    pub fn trace_id(&self) -> TraceId {
        self.cx.span().span_context().trace_id().to_bytes()
    }

    /// The W3C `traceparent` of this span, handed to the commands it covers.
    pub fn traceparent(&self) -> String {
        let context = self.cx.span().span_context().clone();
        format!("00-{}-{}-01", hex(&context.trace_id().to_bytes()), hex(&context.span_id().to_bytes()))
    }

    pub fn set(&self, key: &'static str, value: impl Into<Value>) {
        self.cx.span().set_attribute(KeyValue::new(key, value));
    }

    /// Marks the span failed, with the reason.
    pub fn fail(&self, message: impl Into<String>) {
        self.cx.span().set_status(Status::error(message.into()));
    }

    pub fn end(self) {
        self.cx.span().end();
    }
}

impl Tracing {
    /// Starts the run's span. `exporter`, when given, also sends every span to the user's endpoint.
    pub fn start(store: Arc<Store>, run_id: &str, exporter: Option<opentelemetry_otlp::SpanExporter>) -> Tracing {
        let resource_attributes = vec![
            KeyValue::new("service.name", SERVICE_NAME),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("clnrm.run-id", run_id.to_string()),
        ];
        let resource = Arc::new(Resource {
            attributes: resource_attributes.iter().map(|kv| (kv.key.as_str().into(), attr(&kv.value))).collect(),
            own: true,
        });
        let mut builder = SdkTracerProvider::builder()
            .with_resource(SdkResource::builder_empty().with_attributes(resource_attributes).build())
            .with_span_processor(ToStore { store, resource });
        if let Some(exporter) = exporter {
            // The batch processor that exports from a Tokio task: the OTLP HTTP client needs the
            // runtime (the default processor's own thread has none).
            let processor = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
            builder = builder.with_span_processor(processor);
        }
        let provider = builder.build();
        let tracer = provider.tracer("clnrm");
        let span = tracer
            .span_builder("clnrm run")
            .with_attributes([KeyValue::new("clnrm.run-id", run_id.to_string())])
            .start(&tracer);
        Tracing { provider, tracer, run: Context::new().with_span(span) }
    }

    /// A scenario's span: the root of a new trace, linked to the run.
    pub fn scenario(&self, name: &str, file: &str) -> OwnSpan {
        let link = Link::with_context(self.run.span().span_context().clone());
        let span = self
            .tracer
            .span_builder(name.to_string())
            .with_links(vec![link])
            .with_attributes([
                KeyValue::new("clnrm.scenario", name.to_string()),
                KeyValue::new("clnrm.file", file.to_string()),
            ])
            .start_with_context(&self.tracer, &Context::new());
        OwnSpan { cx: Context::new().with_span(span) }
    }

    /// A span below `parent` (a service start or wait, a step).
    pub fn child(&self, parent: &OwnSpan, name: String, kind: SpanKind) -> OwnSpan {
        let kind = match kind {
            SpanKind::Client => OtelKind::Client,
            _ => OtelKind::Internal,
        };
        let span = self.tracer.span_builder(name).with_kind(kind).start_with_context(&self.tracer, &parent.cx);
        OwnSpan { cx: Context::new().with_span(span) }
    }

    /// Ends the run's span and flushes any export.
    pub fn shutdown(&self) {
        self.run.span().end();
        let _ = self.provider.shutdown();
    }
}

/// Copies finished spans into the store (spans of no open scenario, like the run's, are skipped).
struct ToStore {
    store: Arc<Store>,
    resource: Arc<Resource>,
}

impl std::fmt::Debug for ToStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToStore")
    }
}

impl SpanProcessor for ToStore {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.store.add_traced(convert(span, &self.resource));
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> OTelSdkResult {
        Ok(())
    }
}

fn convert(span: SpanData, resource: &Arc<Resource>) -> Span {
    let parent = span.parent_span_id.to_bytes();
    let status = match &span.status {
        Status::Unset => (SpanStatus::Unset, Box::from("")),
        Status::Ok => (SpanStatus::Ok, Box::from("")),
        Status::Error { description } => (SpanStatus::Error, Box::from(description.as_ref())),
    };
    Span {
        trace_id: span.span_context.trace_id().to_bytes(),
        span_id: span.span_context.span_id().to_bytes(),
        parent_span_id: (parent != [0; 8]).then_some(parent),
        name: span.name.as_ref().into(),
        kind: match span.span_kind {
            OtelKind::Server => SpanKind::Server,
            OtelKind::Client => SpanKind::Client,
            OtelKind::Producer => SpanKind::Producer,
            OtelKind::Consumer => SpanKind::Consumer,
            OtelKind::Internal => SpanKind::Internal,
        },
        start_unix_nano: nanos(span.start_time),
        end_unix_nano: nanos(span.end_time),
        status: status.0,
        status_message: status.1,
        attributes: attributes(&span.attributes),
        events: span
            .events
            .events
            .iter()
            .map(|e| Event {
                name: e.name.as_ref().into(),
                time_unix_nano: nanos(e.timestamp),
                attributes: attributes(&e.attributes),
            })
            .collect(),
        resource: Arc::clone(resource),
    }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn attributes(pairs: &[KeyValue]) -> Attributes {
    pairs.iter().map(|kv| (kv.key.as_str().into(), attr(&kv.value))).collect()
}

fn attr(value: &Value) -> AttrValue {
    match value {
        Value::Bool(b) => AttrValue::Bool(*b),
        Value::I64(i) => AttrValue::Int(*i),
        Value::F64(f) => AttrValue::Float(*f),
        Value::String(s) => AttrValue::Str(s.as_str().into()),
        Value::Array(array) => AttrValue::Str(array.to_string().into()),
        _ => AttrValue::Str(value.to_string().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scenario_spans_start_their_own_trace_and_land_in_the_store() {
        let store = Arc::new(Store::default());
        let tracing = Tracing::start(Arc::clone(&store), "run1", None);
        let scenario = tracing.scenario("checkout", "scenarios/checkout.clnrm.toml");
        store.open("checkout", scenario.trace_id());
        let step = tracing.child(&scenario, "place order".into(), SpanKind::Internal);
        step.set("process.exit.code", 3);
        step.fail("expected exit code 0, got 3");
        let traceparent = step.traceparent();
        step.end();
        scenario.end();
        let other = tracing.scenario("other", "x");
        assert_ne!(other.trace_id(), store.with_spans("checkout", |s| s[0].trace_id), "one trace per scenario");
        other.end();
        tracing.shutdown();

        let spans = store.close("checkout").spans;
        let names: Vec<&str> = spans.iter().map(|s| &*s.name).collect();
        assert_eq!(names, ["place order", "checkout"]);
        let (step, scenario) = (&spans[0], &spans[1]);
        assert_eq!(step.parent_span_id, Some(scenario.span_id));
        assert_eq!(scenario.parent_span_id, None, "a scenario is a trace root");
        assert_eq!(step.status, SpanStatus::Error);
        assert_eq!(step.attr("process.exit.code"), Some(&AttrValue::Int(3)));
        assert_eq!(step.service_name(), SERVICE_NAME);
        assert!(step.is_own() && scenario.is_own());
        assert_eq!(traceparent, format!("00-{}-{}-01", hex(&step.trace_id), hex(&step.span_id)));
        assert_eq!(store.strays().unroutable, 0, "the run's own span is not a stray");
    }
}
