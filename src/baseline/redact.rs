//! Which attribute values a baseline keeps: those that change only when the system's behaviour
//! does. Everything that differs from run to run by nature is made stable or redacted here, in one
//! place, so that a scenario run twice with nothing changed compares equal.
//!
//! In order, for each attribute of a span:
//! 1. the user's ignores (`ignore_attrs` of the config's and the scenario's `[baseline]`, each
//!    everywhere, for one service, or for the spans a selector selects) redact it;
//! 2. identities of a process, thread, host, container or run (the current and the previous
//!    OpenTelemetry semantic conventions' names) are redacted;
//! 3. ephemeral ports are redacted: the remote end's port on a span that received the connection
//!    (server, consumer), the local end's on any other; the well-known port of a database a client
//!    span names (`5432`) stays;
//! 4. in every string, the addresses of the scenario's containers become their names
//!    (`172.30.0.5:8000` → `app:8000`), so a new network allocation changes nothing; an address
//!    attribute still holding an address after that (a peer outside the known ones) is redacted;
//! 5. a string that is a date and time (`2026-12-01T10:00:00Z`), or an integer under a key that
//!    names a timestamp, is redacted.
//!
//! The key always stays, so an attribute that appears or disappears is still a difference.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::expect::matcher::select_positions;
use crate::expect::selector::Selector;
use crate::telemetry::index::TraceIndex;
use crate::telemetry::peers::{Peers, is_address};
use crate::telemetry::span::{AttrValue, Span, SpanKind};

/// What a redacted attribute value becomes.
pub const REDACTED: &str = "<redacted>";

/// Keys whose values identify one process, thread, host, container or run of clnrm.
const IDENTITIES: [&str; 22] = [
    "clnrm.run-id",
    "clnrm.cache",
    "container.id",
    "container.name",
    "host.name",
    "host.id",
    "host.ip",
    "host.mac",
    "service.instance.id",
    "process.pid",
    "process.parent_pid",
    "process.vpid",
    "thread.id",
    "thread.name",
    "k8s.pod.uid",
    "k8s.pod.name",
    "messaging.message.id",
    "messaging.message_id",
    "messaging.kafka.message.offset",
    "messaging.rabbitmq.delivery_tag",
    "net.sock.host.addr",
    "network.local.address",
];

/// Keys naming the port of the remote end of a connection.
const PEER_PORTS: [&str; 5] =
    ["net.peer.port", "network.peer.port", "net.sock.peer.port", "client.port", "source.port"];

/// Keys naming the port of this end of a connection.
const LOCAL_PORTS: [&str; 3] = ["network.local.port", "net.sock.host.port", "net.host.port"];

/// Keys whose values are a host or an address (with or without a port).
const ADDRESSES: [&str; 14] = [
    "client.address",
    "server.address",
    "source.address",
    "destination.address",
    "network.peer.address",
    "net.peer.ip",
    "net.peer.name",
    "net.host.ip",
    "net.host.name",
    "net.sock.peer.addr",
    "net.sock.peer.name",
    "http.client_ip",
    "http.host",
    "peer.service",
];

/// One `ignore_attrs` entry: an attribute redacted before storing and comparing.
#[derive(Debug, Clone, PartialEq)]
pub struct IgnoreAttr {
    /// The key; a final `*` matches every key that begins with what precedes it.
    pub key: String,
    /// Only on spans of this service.
    pub service: Option<String>,
    /// Only on spans this selector selects.
    pub span: Option<Selector>,
}

impl IgnoreAttr {
    /// An ignore of `key` on every span.
    pub fn everywhere(key: &str) -> IgnoreAttr {
        IgnoreAttr { key: key.to_string(), service: None, span: None }
    }

    fn covers(&self, key: &str) -> bool {
        match self.key.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => self.key == key,
        }
    }
}

/// As written in TOML, for messages and the cache key: `"order.id"`, or the table.
impl fmt::Display for IgnoreAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.service, &self.span) {
            (None, None) => write!(f, "{:?}", self.key),
            (service, span) => {
                write!(f, "{{ key = {:?}", self.key)?;
                if let Some(service) = service {
                    write!(f, ", service = {service:?}")?;
                }
                if let Some(span) = span {
                    write!(f, ", span = {:?}", span.to_string())?;
                }
                f.write_str(" }")
            }
        }
    }
}

impl Serialize for IgnoreAttr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

/// What normalizing one recorded trace needs besides its spans.
#[derive(Debug, Clone, Copy)]
pub struct Redaction<'a> {
    /// The config's ignores, then the scenario's.
    pub ignores: [&'a [IgnoreAttr]; 2],
    /// The run's containers by address.
    pub peers: &'a Peers,
}

impl Redaction<'_> {
    /// Nothing known: only the built-in rules apply.
    pub fn none() -> Redaction<'static> {
        static NO_PEERS: std::sync::LazyLock<Peers> = std::sync::LazyLock::new(Peers::new);
        Redaction { ignores: [&[], &[]], peers: &NO_PEERS }
    }
}

/// The ignores in force for one trace: for each, the positions it applies to when it is scoped by
/// a selector (evaluated once per trace).
pub struct Ignores<'a> {
    rules: Vec<(&'a IgnoreAttr, Option<Vec<bool>>)>,
}

impl<'a> Ignores<'a> {
    pub fn for_trace(redaction: &Redaction<'a>, index: &TraceIndex) -> Ignores<'a> {
        let rules = redaction
            .ignores
            .iter()
            .flat_map(|ignores| ignores.iter())
            .map(|rule| {
                let selected = rule.span.as_ref().map(|selector| {
                    let mut selected = vec![false; index.len()];
                    for p in select_positions(index, &selector.compounds) {
                        selected[p] = true;
                    }
                    selected
                });
                (rule, selected)
            })
            .collect();
        Ignores { rules }
    }

    fn hide(&self, key: &str, span: &Span, position: usize) -> bool {
        self.rules.iter().any(|(rule, selected)| {
            rule.covers(key)
                && rule.service.as_deref().is_none_or(|s| s == span.service_name())
                && selected.as_ref().is_none_or(|selected| selected[position])
        })
    }
}

/// The value the baseline keeps for attribute `key` of the span at `position`.
pub fn stable_value(
    key: &str,
    value: &AttrValue,
    span: &Span,
    position: usize,
    ignores: &Ignores,
    peers: &Peers,
) -> AttrValue {
    if ignores.hide(key, span, position) || volatile(key, value, span.kind) {
        return AttrValue::Str(REDACTED.into());
    }
    match value {
        AttrValue::Str(text) => {
            let text = peers.substitute(text);
            if ADDRESSES.contains(&key) && is_address(&text) {
                return AttrValue::Str(REDACTED.into());
            }
            AttrValue::Str(text.into())
        }
        AttrValue::Bytes(_) => AttrValue::Str(value.text().into()),
        AttrValue::Array(items) => {
            AttrValue::Array(items.iter().map(|item| stable_value(key, item, span, position, ignores, peers)).collect())
        }
        _ => value.clone(),
    }
}

/// Whether the value differs from run to run by its nature, whatever the system does.
fn volatile(key: &str, value: &AttrValue, kind: SpanKind) -> bool {
    let received = matches!(kind, SpanKind::Server | SpanKind::Consumer);
    IDENTITIES.contains(&key)
        || (received && PEER_PORTS.contains(&key))
        || (!received && LOCAL_PORTS.contains(&key))
        || match value {
            AttrValue::Str(text) => is_date_time(text),
            AttrValue::Int(_) | AttrValue::Float(_) => names_a_timestamp(key),
            _ => false,
        }
}

/// `2026-12-01T10:00:00…` or `2026-12-01 10:00:00…`: a moment, which no two runs share.
fn is_date_time(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| range.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't' | b' ')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
}

/// `messaging.kafka.message.timestamp`, `app.created_at`, `job.start_time_unix_nano`.
fn names_a_timestamp(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    last == "timestamp"
        || last.ends_with("_timestamp")
        || last.ends_with("_at")
        || last.ends_with("_unix_nano")
        || last.ends_with("_time")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::selector::parse;
    use crate::telemetry::peers::{CLNRM, STEPS};
    use crate::telemetry::span::tests::span;

    fn peers() -> Peers {
        let mut peers = Peers::new();
        peers.add_address("172.30.0.5".parse().unwrap(), "app");
        peers.add_address("172.30.0.3".parse().unwrap(), "postgres");
        peers.add_address("172.30.0.4".parse().unwrap(), STEPS);
        peers.add_address("172.30.0.1".parse().unwrap(), CLNRM);
        peers
    }

    /// The value kept for each of `attrs` on a span of `kind` and `service`.
    fn kept(kind: SpanKind, service: &str, attrs: &[(&str, AttrValue)], ignores: &[IgnoreAttr]) -> Vec<String> {
        let mut builder = span(1, 0, "GET /items/{id}", service, 0, 1).kind(kind);
        for (key, value) in attrs {
            builder = builder.attr(key, value.clone());
        }
        let spans = [builder.build()];
        let index = TraceIndex::new(&spans);
        let peers = peers();
        let redaction = Redaction { ignores: [ignores, &[]], peers: &peers };
        let ignores = Ignores::for_trace(&redaction, &index);
        attrs.iter().map(|(key, value)| stable_value(key, value, &spans[0], 0, &ignores, &peers).text()).collect()
    }

    fn s(text: &str) -> AttrValue {
        AttrValue::Str(text.into())
    }

    #[test]
    fn a_server_span_keeps_its_own_end_and_loses_the_clients_port() {
        let attrs = [
            ("net.peer.port", AttrValue::Int(51234)),
            ("client.port", AttrValue::Int(51234)),
            ("net.peer.ip", s("172.30.0.4")),
            ("client.address", s("172.30.0.9")),
            ("net.host.name", s("172.30.0.5:8000")),
            ("server.address", s("app")),
            ("net.host.port", AttrValue::Int(8000)),
            ("http.route", s("/items/<id>")),
            ("http.status_code", AttrValue::Int(200)),
        ];
        assert_eq!(
            kept(SpanKind::Server, "catalog", &attrs, &[]),
            [REDACTED, REDACTED, "steps", REDACTED, "app:8000", "app", "8000", "/items/<id>", "200"]
        );
    }

    #[test]
    fn a_client_span_keeps_the_servers_port_and_loses_its_own() {
        let attrs = [
            ("net.peer.port", AttrValue::Int(5432)),
            ("server.port", AttrValue::Int(5432)),
            ("network.peer.address", s("172.30.0.3")),
            ("net.peer.name", s("postgres")),
            ("net.sock.host.port", AttrValue::Int(40312)),
            ("network.local.port", AttrValue::Int(40312)),
            ("db.system", s("postgresql")),
        ];
        assert_eq!(
            kept(SpanKind::Client, "catalog", &attrs, &[]),
            ["5432", "5432", "postgres", "postgres", REDACTED, REDACTED, "postgresql"]
        );
    }

    #[test]
    fn identities_moments_and_unknown_addresses_are_redacted() {
        let attrs = [
            ("process.pid", AttrValue::Int(7)),
            ("thread.id", AttrValue::Int(140_000)),
            ("thread.name", s("Thread-7 (process_request_thread)")),
            ("host.name", s("4f2a9c")),
            ("container.id", s("4f2a9c0d")),
            ("app.created_at", AttrValue::Int(1_764_583_200)),
            ("order.placed", s("2026-12-01T10:00:00.123Z")),
            ("server.address", s("10.1.2.3")),
            ("url.full", s("http://172.30.0.5:8000/items/1")),
            ("order.total", AttrValue::Int(1_764_583_200)),
        ];
        assert_eq!(
            kept(SpanKind::Client, "catalog", &attrs, &[]),
            [
                REDACTED,
                REDACTED,
                REDACTED,
                REDACTED,
                REDACTED,
                REDACTED,
                REDACTED,
                REDACTED,
                "http://app:8000/items/1",
                "1764583200"
            ]
        );
    }

    #[test]
    fn ignores_apply_everywhere_to_a_service_or_to_selected_spans() {
        let attrs = [("order.id", s("o-1")), ("http.request.header.x_id", s("r-9")), ("kept", s("yes"))];
        let rule = |key: &str, service: Option<&str>, span: Option<&str>| IgnoreAttr {
            key: key.into(),
            service: service.map(String::from),
            span: span.map(|s| parse(s).unwrap()),
        };
        let redacted = [REDACTED, REDACTED, "yes"];
        let everywhere = [IgnoreAttr::everywhere("order.id"), IgnoreAttr::everywhere("http.request.header.*")];
        assert_eq!(kept(SpanKind::Server, "catalog", &attrs, &everywhere), redacted);
        let by_service = [rule("order.id", Some("catalog"), None), rule("http.*", Some("catalog"), None)];
        assert_eq!(kept(SpanKind::Server, "catalog", &attrs, &by_service), redacted);
        assert_eq!(kept(SpanKind::Server, "billing", &attrs, &by_service), ["o-1", "r-9", "yes"]);
        let by_span = [
            rule("order.id", None, Some(r#"span[name=~"^GET"]"#)),
            rule("http.*", None, Some(r#"span[kind="server"]"#)),
        ];
        assert_eq!(kept(SpanKind::Server, "catalog", &attrs, &by_span), redacted);
        assert_eq!(kept(SpanKind::Client, "catalog", &attrs, &by_span), [REDACTED, "r-9", "yes"]);
    }

    #[test]
    fn ignores_read_back_as_written() {
        assert_eq!(IgnoreAttr::everywhere("order.id").to_string(), r#""order.id""#);
        let scoped = IgnoreAttr {
            key: "a".into(),
            service: Some("shop".into()),
            span: Some(parse(r#"span[name="x"]"#).unwrap()),
        };
        assert_eq!(scoped.to_string(), r#"{ key = "a", service = "shop", span = "span[name=\"x\"]" }"#);
    }

    #[test]
    fn dates_need_the_whole_shape() {
        assert!(is_date_time("2026-12-01T10:00:00Z") && is_date_time("2026-12-01 10:00:00"));
        assert!(!is_date_time("2026-12-01") && !is_date_time("order 2026-12-01T10:00:00") && !is_date_time("v1.2.3"));
    }
}
