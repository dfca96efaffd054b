//! The spans clnrm stores and checks: what the system under test emitted (decoded from OTLP) and
//! clnrm's own spans, in one compact form.
//!
//! Compact because a run may hold hundreds of thousands of spans (target: under 1 KB each): strings
//! are boxed, the resource is shared by every span of a batch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1 as otlp;

pub type TraceId = [u8; 16];
pub type SpanId = [u8; 8];

/// Span status as OpenTelemetry defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanStatus {
    Unset,
    Ok,
    Error,
}

impl SpanStatus {
    pub const CHOICES: [(&'static str, SpanStatus); 3] =
        [("ok", SpanStatus::Ok), ("error", SpanStatus::Error), ("unset", SpanStatus::Unset)];

    pub fn as_str(self) -> &'static str {
        match self {
            SpanStatus::Unset => "unset",
            SpanStatus::Ok => "ok",
            SpanStatus::Error => "error",
        }
    }
}

/// Span kind as OpenTelemetry defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    pub const CHOICES: [(&'static str, SpanKind); 5] = [
        ("internal", SpanKind::Internal),
        ("server", SpanKind::Server),
        ("client", SpanKind::Client),
        ("producer", SpanKind::Producer),
        ("consumer", SpanKind::Consumer),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(Box<str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Array(Box<[AttrValue]>),
    Bytes(Box<[u8]>),
}

impl AttrValue {
    /// The value as text, for regex and substring tests and for messages.
    pub fn text(&self) -> String {
        self.to_string()
    }

    /// The value as a number, when it is one.
    pub fn number(&self) -> Option<f64> {
        match self {
            AttrValue::Int(i) => Some(*i as f64),
            AttrValue::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// The text form ([`AttrValue::text`]); written through a formatter so that matching can reuse one
/// buffer instead of allocating a string per span.
impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrValue::Str(s) => f.write_str(s),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Float(x) => write!(f, "{x}"),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            AttrValue::Bytes(bytes) => bytes.iter().try_for_each(|b| write!(f, "{b:02x}")),
        }
    }
}

impl serde::Serialize for AttrValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::Str(v) => s.serialize_str(v),
            AttrValue::Int(v) => s.serialize_i64(*v),
            AttrValue::Float(v) => s.serialize_f64(*v),
            AttrValue::Bool(v) => s.serialize_bool(*v),
            AttrValue::Array(items) => items.serialize(s),
            AttrValue::Bytes(_) => s.serialize_str(&self.text()),
        }
    }
}

/// Read back from JSON (the run record): bytes come back as their hex text.
impl<'de> serde::Deserialize<'de> for AttrValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AttrValue, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Bool(bool),
            Int(i64),
            Float(f64),
            Str(String),
            Array(Vec<AttrValue>),
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Bool(b) => AttrValue::Bool(b),
            Stored::Int(i) => AttrValue::Int(i),
            Stored::Float(f) => AttrValue::Float(f),
            Stored::Str(s) => AttrValue::Str(s.into()),
            Stored::Array(items) => AttrValue::Array(items.into()),
        })
    }
}

/// Attributes as key/value pairs, in the order received. Keys are shared: the same few dozen
/// recur on every span, and one allocation per key per span would be a fifth of a span's memory.
pub type Attributes = Vec<(Key, AttrValue)>;

/// An attribute key.
pub type Key = Arc<str>;

/// Looks a key up in attributes.
pub fn find<'a>(attributes: &'a Attributes, key: &str) -> Option<&'a AttrValue> {
    attributes.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
}

/// What produced a batch of spans (shared by every span of the batch).
#[derive(Debug, Default, PartialEq)]
pub struct Resource {
    pub attributes: Attributes,
    /// Set only by clnrm's own tracer, never from what a receiver decodes: how clnrm's own spans
    /// are told apart from the system under test's. Their `service.name` ("clnrm") cannot serve,
    /// since any program can export under that name.
    pub own: bool,
}

impl Resource {
    pub fn service_name(&self) -> Option<&str> {
        match find(&self.attributes, "service.name") {
            Some(AttrValue::Str(name)) => Some(name),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub name: Box<str>,
    pub time_unix_nano: u64,
    #[serde(serialize_with = "serialize_attributes", deserialize_with = "deserialize_attributes")]
    pub attributes: Attributes,
}

/// One span.
///
/// Serialized as `collect` writes it and the run record keeps it; read back from the record, a
/// span's resource is not clnrm's own (the record says that beside it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Span {
    #[serde(serialize_with = "serialize_hex", deserialize_with = "deserialize_hex")]
    pub trace_id: TraceId,
    #[serde(serialize_with = "serialize_hex", deserialize_with = "deserialize_hex")]
    pub span_id: SpanId,
    #[serde(serialize_with = "serialize_hex_opt", deserialize_with = "deserialize_hex_opt")]
    pub parent_span_id: Option<SpanId>,
    pub name: Box<str>,
    pub kind: SpanKind,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub status: SpanStatus,
    #[serde(default, skip_serializing_if = "str::is_empty")]
    pub status_message: Box<str>,
    #[serde(serialize_with = "serialize_attributes", deserialize_with = "deserialize_attributes")]
    pub attributes: Attributes,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    #[serde(serialize_with = "serialize_resource", deserialize_with = "deserialize_resource")]
    pub resource: Arc<Resource>,
}

/// The attribute of clnrm's wait spans that names the strategy (`HTTP 2xx from GET :8000/health`).
pub const WAIT_STRATEGY: &str = "clnrm.wait.strategy";

impl Span {
    /// An attribute of the span, else of its resource.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        find(&self.attributes, key).or_else(|| find(&self.resource.attributes, key))
    }

    pub fn service_name(&self) -> &str {
        self.resource.service_name().unwrap_or("")
    }

    /// Whether clnrm made this span itself (see [`Resource::own`]).
    pub fn is_own(&self) -> bool {
        self.resource.own
    }

    /// Whether this is clnrm's span of waiting for a service: what a service does below it (the
    /// requests of `http` probes, which carry its context) is clnrm's doing, not the system's.
    pub fn is_wait(&self) -> bool {
        self.is_own() && self.attr(WAIT_STRATEGY).is_some()
    }

    /// Whether this is clnrm's span of starting a service's container: the engine's work alone
    /// (creating and starting it; waiting for it to be ready is the `wait` span), which no system
    /// under test makes faster or slower, so its time tells how loaded the machine is.
    pub fn is_start(&self) -> bool {
        self.is_own() && self.name.starts_with("start ") && self.attr("container.image.name").is_some()
    }

    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_unix_nano.saturating_sub(self.start_unix_nano))
    }
}

/// Hex text of an id, as OTLP/JSON and trace viewers show it. Written digit by digit: a record
/// writes three ids for every span of a run.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(2 * bytes.len());
    for b in bytes {
        text.push(DIGITS[usize::from(b >> 4)] as char);
        text.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    text
}

fn serialize_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

fn serialize_hex_opt<S: serde::Serializer>(bytes: &Option<SpanId>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(id) => s.serialize_str(&hex(id)),
        None => s.serialize_none(),
    }
}

fn serialize_attributes<S: serde::Serializer>(attributes: &Attributes, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(attributes.len()))?;
    for (k, v) in attributes {
        map.serialize_entry(&**k, v)?;
    }
    map.end()
}

fn serialize_resource<S: serde::Serializer>(resource: &Arc<Resource>, s: S) -> Result<S::Ok, S::Error> {
    serialize_attributes(&resource.attributes, s)
}

fn deserialize_hex<'de, D: serde::Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
    use serde::Deserialize;
    let text = String::deserialize(d)?;
    from_hex(&text).ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not an id of {N} bytes in hex")))
}

fn deserialize_hex_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SpanId>, D::Error> {
    use serde::Deserialize;
    match Option::<String>::deserialize(d)? {
        Some(text) => {
            from_hex(&text).map(Some).ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a span id")))
        }
        None => Ok(None),
    }
}

/// `N` bytes from their hex text.
fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Attributes from a JSON object, in its order.
fn deserialize_attributes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Attributes, D::Error> {
    struct Pairs;
    impl<'de> serde::de::Visitor<'de> for Pairs {
        type Value = Attributes;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of attributes")
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Attributes, M::Error> {
            let mut out = Vec::new();
            while let Some((key, value)) = map.next_entry::<String, AttrValue>()? {
                out.push((Key::from(key), value));
            }
            Ok(out)
        }
    }
    d.deserialize_map(Pairs)
}

fn deserialize_resource<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Arc<Resource>, D::Error> {
    Ok(Arc::new(Resource { attributes: deserialize_attributes(d)?, own: false }))
}

/// Why a received span was rejected (reported through OTLP's partial-success fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub count: i64,
    pub reason: String,
}

/// Decodes OTLP resource spans. Spans whose ids are not of the right length cannot be stored;
/// they are counted in the returned rejection, the rest are kept.
pub fn from_otlp(resource_spans: Vec<otlp::ResourceSpans>) -> (Vec<Span>, Option<Rejected>) {
    let mut spans = Vec::new();
    let mut rejected = 0i64;
    let mut keys = Keys::default();
    for batch in resource_spans {
        let attributes = batch.resource.map(|r| keys.attributes(r.attributes)).unwrap_or_default();
        let resource = Arc::new(Resource { attributes, own: false });
        for scope in batch.scope_spans {
            spans.reserve(scope.spans.len());
            for span in scope.spans {
                match decode(span, &resource, &mut keys) {
                    Some(span) => spans.push(span),
                    None => rejected += 1,
                }
            }
        }
    }
    let rejected = (rejected > 0).then(|| Rejected {
        count: rejected,
        reason: format!("{rejected} span(s) with a trace id that is not 16 bytes or a span id that is not 8"),
    });
    (spans, rejected)
}

fn decode(span: otlp::Span, resource: &Arc<Resource>, keys: &mut Keys) -> Option<Span> {
    let trace_id: TraceId = span.trace_id.as_slice().try_into().ok()?;
    let span_id: SpanId = span.span_id.as_slice().try_into().ok()?;
    let parent_span_id = match span.parent_span_id.len() {
        0 => None,
        _ => Some(span.parent_span_id.as_slice().try_into().ok()?),
    };
    let kind = match otlp::span::SpanKind::try_from(span.kind).unwrap_or(otlp::span::SpanKind::Unspecified) {
        otlp::span::SpanKind::Server => SpanKind::Server,
        otlp::span::SpanKind::Client => SpanKind::Client,
        otlp::span::SpanKind::Producer => SpanKind::Producer,
        otlp::span::SpanKind::Consumer => SpanKind::Consumer,
        _ => SpanKind::Internal,
    };
    let (status, status_message) = match span.status {
        Some(status) => {
            let code = match otlp::status::StatusCode::try_from(status.code).unwrap_or(otlp::status::StatusCode::Unset)
            {
                otlp::status::StatusCode::Ok => SpanStatus::Ok,
                otlp::status::StatusCode::Error => SpanStatus::Error,
                otlp::status::StatusCode::Unset => SpanStatus::Unset,
            };
            (code, status.message.into_boxed_str())
        }
        None => (SpanStatus::Unset, Box::from("")),
    };
    let events = span
        .events
        .into_iter()
        .map(|e| Event {
            name: e.name.into_boxed_str(),
            time_unix_nano: e.time_unix_nano,
            attributes: keys.attributes(e.attributes),
        })
        .collect();
    Some(Span {
        trace_id,
        span_id,
        parent_span_id,
        name: span.name.into_boxed_str(),
        kind,
        start_unix_nano: span.start_time_unix_nano,
        end_unix_nano: span.end_time_unix_nano,
        status,
        status_message,
        attributes: keys.attributes(span.attributes),
        events,
        resource: Arc::clone(resource),
    })
}

/// The attribute keys of one request, each allocated once.
#[derive(Default)]
struct Keys(HashMap<String, Key>);

impl Keys {
    /// Exactly as long as it needs to be (a collected `filter_map` would round the capacity up).
    fn attributes(&mut self, pairs: Vec<KeyValue>) -> Attributes {
        let mut attributes = Vec::with_capacity(pairs.len());
        for kv in pairs {
            if let Some(value) = kv.value.and_then(value) {
                attributes.push((self.key(kv.key), value));
            }
        }
        attributes
    }

    fn key(&mut self, key: String) -> Key {
        match self.0.get(&key) {
            Some(shared) => Arc::clone(shared),
            None => Arc::clone(self.0.entry(key).or_insert_with_key(|k| Arc::from(k.as_str()))),
        }
    }
}

fn value(any: AnyValue) -> Option<AttrValue> {
    Some(match any.value? {
        any_value::Value::StringValue(s) => AttrValue::Str(s.into_boxed_str()),
        any_value::Value::IntValue(i) => AttrValue::Int(i),
        any_value::Value::DoubleValue(f) => AttrValue::Float(f),
        any_value::Value::BoolValue(b) => AttrValue::Bool(b),
        any_value::Value::BytesValue(b) => AttrValue::Bytes(b.into_boxed_slice()),
        any_value::Value::ArrayValue(array) => AttrValue::Array(array.values.into_iter().filter_map(value).collect()),
        any_value::Value::KvlistValue(list) => {
            AttrValue::Str(list.values.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>().join(",").into_boxed_str())
        }
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
    }

    #[test]
    fn decodes_otlp_spans_sharing_their_resource_and_rejects_bad_ids() {
        let good = otlp::Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![3; 8],
            name: "GET /items".into(),
            kind: otlp::span::SpanKind::Server as i32,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 3_500,
            attributes: vec![kv("http.response.status_code", any_value::Value::IntValue(200))],
            status: Some(otlp::Status { code: otlp::status::StatusCode::Error as i32, message: "boom".into() }),
            ..Default::default()
        };
        let bad = otlp::Span { trace_id: vec![1; 3], span_id: vec![2; 8], ..Default::default() };
        let batch = otlp::ResourceSpans {
            resource: Some(OtlpResource {
                attributes: vec![kv("service.name", any_value::Value::StringValue("shop".into()))],
                ..Default::default()
            }),
            scope_spans: vec![otlp::ScopeSpans { spans: vec![good.clone(), good, bad], ..Default::default() }],
            ..Default::default()
        };
        let (spans, rejected) = from_otlp(vec![batch]);
        assert_eq!(spans.len(), 2);
        assert_eq!(rejected.unwrap().count, 1);
        let span = &spans[0];
        assert!(Arc::ptr_eq(&span.resource, &spans[1].resource));
        assert_eq!((span.kind, span.status, &*span.status_message), (SpanKind::Server, SpanStatus::Error, "boom"));
        assert_eq!(span.service_name(), "shop");
        assert_eq!(span.attr("http.response.status_code"), Some(&AttrValue::Int(200)));
        assert_eq!(span.attr("service.name"), Some(&AttrValue::Str("shop".into())));
        assert_eq!(span.duration(), Duration::from_nanos(2_500));
        let json = serde_json::to_value(span).unwrap();
        assert_eq!(json["trace_id"], "01010101010101010101010101010101");
        assert_eq!(json["attributes"]["http.response.status_code"], 200);
        assert_eq!(json["resource"]["service.name"], "shop");
    }

    #[test]
    fn text_forms_of_values() {
        let items = [AttrValue::Str("a b".into()), AttrValue::Int(-2), AttrValue::Float(0.5), AttrValue::Bool(true)];
        assert_eq!(AttrValue::Array(Box::new(items)).text(), "[a b, -2, 0.5, true]");
        assert_eq!(AttrValue::Array(Box::new([])).text(), "[]");
        assert_eq!(AttrValue::Bytes(Box::new([0, 0xab])).text(), "00ab");
        assert_eq!(AttrValue::Float(200.0).text(), "200");
    }

    #[test]
    fn a_span_stays_small() {
        // The stored form is what the memory target is about: ids, times and pointers inline.
        assert!(std::mem::size_of::<Span>() <= 160, "{}", std::mem::size_of::<Span>());
    }

    /// Builds spans for tests: ids are small numbers, times are milliseconds from 0.
    pub(crate) struct SpanBuilder(Span);

    /// A span with id `id` (parent `parent`, 0 for none) from service `service`, lasting `start..end` ms.
    /// Spans of service `clnrm` are built as clnrm's tracer makes them: its own.
    pub(crate) fn span(id: u64, parent: u64, name: &str, service: &str, start: u64, end: u64) -> SpanBuilder {
        let resource = Resource {
            attributes: vec![("service.name".into(), AttrValue::Str(service.into()))],
            own: service == crate::telemetry::own::SERVICE_NAME,
        };
        SpanBuilder(Span {
            trace_id: [7; 16],
            span_id: id.to_be_bytes(),
            parent_span_id: (parent != 0).then_some(parent.to_be_bytes()),
            name: name.into(),
            kind: SpanKind::Internal,
            start_unix_nano: start * 1_000_000,
            end_unix_nano: end * 1_000_000,
            status: SpanStatus::Unset,
            status_message: "".into(),
            attributes: Vec::new(),
            events: Vec::new(),
            resource: Arc::new(resource),
        })
    }

    impl SpanBuilder {
        pub(crate) fn kind(mut self, kind: SpanKind) -> Self {
            self.0.kind = kind;
            self
        }

        pub(crate) fn status(mut self, status: SpanStatus, message: &str) -> Self {
            self.0.status = status;
            self.0.status_message = message.into();
            self
        }

        pub(crate) fn attr(mut self, key: &str, value: AttrValue) -> Self {
            self.0.attributes.push((key.into(), value));
            self
        }

        pub(crate) fn str(self, key: &str, value: &str) -> Self {
            self.attr(key, AttrValue::Str(value.into()))
        }

        pub(crate) fn event(mut self, name: &str) -> Self {
            self.0.events.push(Event { name: name.into(), time_unix_nano: 0, attributes: Vec::new() });
            self
        }

        /// Not clnrm's own, whatever its service name: a program exporting as `clnrm`.
        pub(crate) fn impostor(mut self) -> Self {
            let attributes = self.0.resource.attributes.clone();
            self.0.resource = Arc::new(Resource { attributes, own: false });
            self
        }

        pub(crate) fn build(self) -> Span {
            self.0
        }
    }
}
