//! A realistic trace for benchmarks: clnrm's scenario and step spans, then checkout requests
//! through gateway → orders → inventory and payments, each with its database calls, HTTP
//! attributes and a failed payment now and then; shuffled as exporters' batches arrive.
//! Included by the benchmarks with `#[path = "common/trace.rs"] mod trace;`.

use std::sync::Arc;

use clnrm::telemetry::span::{AttrValue, Attributes, Event, Resource, Span, SpanKind, SpanStatus};

/// Steps of the scenario, each making `requests` requests.
pub const STEPS: u64 = 9;

/// A small deterministic generator (64-bit LCG), so every run checks the same trace.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

fn resource(service: &str, ip: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![
            ("service.name".into(), AttrValue::Str(service.into())),
            ("service.version".into(), AttrValue::Str("1.4.2".into())),
            ("host.name".into(), AttrValue::Str(ip.into())),
            ("telemetry.sdk.language".into(), AttrValue::Str("rust".into())),
            ("telemetry.sdk.name".into(), AttrValue::Str("opentelemetry".into())),
        ],
        own: service == "clnrm",
    })
}

/// Builds spans of one trace with sequential ids.
struct Trace {
    spans: Vec<Span>,
    next_id: u64,
}

impl Trace {
    /// Adds a span lasting `(start, end)` µs and returns its id.
    fn add(
        &mut self,
        parent: Option<u64>,
        name: &str,
        kind: SpanKind,
        resource: &Arc<Resource>,
        (start, end): (u64, u64),
        attributes: Attributes,
    ) -> u64 {
        self.next_id += 1;
        self.spans.push(Span {
            trace_id: [0x5a; 16],
            span_id: self.next_id.to_be_bytes(),
            parent_span_id: parent.map(u64::to_be_bytes),
            name: name.into(),
            kind,
            start_unix_nano: 1_700_000_000_000_000_000 + start * 1_000,
            end_unix_nano: 1_700_000_000_000_000_000 + end * 1_000,
            status: SpanStatus::Unset,
            status_message: "".into(),
            attributes,
            events: Vec::new(),
            resource: Arc::clone(resource),
        });
        self.next_id
    }

    fn fail(&mut self, message: &str) {
        let span = self.spans.last_mut().expect("a span");
        span.status = SpanStatus::Error;
        span.status_message = message.into();
    }
}

fn s(key: &str, value: &str) -> (Arc<str>, AttrValue) {
    (key.into(), AttrValue::Str(value.into()))
}

fn i(key: &str, value: i64) -> (Arc<str>, AttrValue) {
    (key.into(), AttrValue::Int(value))
}

/// scenario → 9 steps → `requests` requests each (10 spans a request: 111 make 10,000 spans): gateway → orders → (validate, inventory + its query,
/// payments + its insert, order insert). Every 50th payment fails. Spans arrive shuffled, as
/// batches from several exporters would.
pub fn trace(requests: u64) -> Vec<Span> {
    let mut rng = Rng(42);
    let clnrm = resource("clnrm", "127.0.0.1");
    let gateway = resource("gateway", "172.18.0.2");
    let orders = resource("orders", "172.18.0.3");
    let inventory = resource("inventory", "172.18.0.4");
    let payments = resource("payments", "172.18.0.5");
    let mut t = Trace { spans: Vec::with_capacity((10 + STEPS * requests * 10) as usize), next_id: 0 };
    let request_len = 1_000;
    let step_len = requests * (request_len + 20) + 100;
    let root = t.add(None, "checkout-load", SpanKind::Internal, &clnrm, (0, STEPS * (step_len + 50) + 10), vec![]);
    for step in 0..STEPS {
        let step_start = 5 + step * (step_len + 50);
        let step_span = t.add(
            Some(root),
            &format!("step {}", step + 1),
            SpanKind::Internal,
            &clnrm,
            (step_start, step_start + step_len),
            vec![s("clnrm.step", &format!("step {}", step + 1)), i("process.exit.code", 0)],
        );
        for request in 0..requests {
            let r = step_start + 50 + request * (request_len + 20);
            let jitter = |rng: &mut Rng| rng.below(20);
            let item = 1 + rng.below(50);
            let fails = (step * requests + request) % 50 == 7;
            let server = |route: &str, status: i64, peer: &str| {
                vec![
                    s("http.request.method", "POST"),
                    s("http.route", route),
                    s("url.path", route),
                    i("http.response.status_code", status),
                    s("server.address", "gateway"),
                    s("network.peer.address", peer),
                    s("user_agent.original", "clnrm-load/1.0"),
                ]
            };
            let edge = t.add(
                Some(step_span),
                "POST /orders",
                SpanKind::Server,
                &gateway,
                (r, r + request_len),
                server("/orders", if fails { 502 } else { 201 }, "127.0.0.1"),
            );
            let order = t.add(
                Some(edge),
                "POST /orders",
                SpanKind::Server,
                &orders,
                (r + 50, r + 950),
                server("/orders", if fails { 502 } else { 201 }, "172.18.0.2"),
            );
            t.add(
                Some(order),
                "validate",
                SpanKind::Internal,
                &orders,
                (r + 60, r + 100 - jitter(&mut rng)),
                vec![i("order.items", 1 + item as i64 % 4)],
            );
            let stock_url = format!("http://inventory:8080/stock/{item}");
            let stock_call = t.add(
                Some(order),
                &format!("GET /stock/{item}"),
                SpanKind::Client,
                &orders,
                (r + 110, r + 300),
                vec![
                    s("http.request.method", "GET"),
                    s("url.full", &stock_url),
                    s("server.address", "inventory"),
                    i("server.port", 8080),
                    i("http.response.status_code", 200),
                ],
            );
            let stock = t.add(
                Some(stock_call),
                &format!("GET /stock/{item}"),
                SpanKind::Server,
                &inventory,
                (r + 120, r + 290),
                vec![
                    s("http.request.method", "GET"),
                    s("http.route", "/stock/{id}"),
                    i("http.response.status_code", 200),
                    s("network.peer.address", "172.18.0.3"),
                ],
            );
            t.add(
                Some(stock),
                "SELECT stock",
                SpanKind::Client,
                &inventory,
                (r + 130, r + 280 - jitter(&mut rng)),
                vec![
                    s("db.system", "postgresql"),
                    s("db.name", "shop"),
                    s("db.statement", "SELECT qty FROM stock WHERE item = $1"),
                    s("server.address", "postgres"),
                    i("server.port", 5432),
                ],
            );
            let status = if fails { 502 } else { 200 };
            let charge_call = t.add(
                Some(order),
                "POST /charge",
                SpanKind::Client,
                &orders,
                (r + 310, r + 700),
                vec![
                    s("http.request.method", "POST"),
                    s("url.full", "http://payments:8080/charge"),
                    s("server.address", "payments"),
                    i("server.port", 8080),
                    i("http.response.status_code", status),
                ],
            );
            if fails {
                t.fail("502 Bad Gateway");
            }
            let charge = t.add(
                Some(charge_call),
                "POST /charge",
                SpanKind::Server,
                &payments,
                (r + 320, r + 690 - jitter(&mut rng)),
                vec![
                    s("http.request.method", "POST"),
                    s("http.route", "/charge"),
                    i("http.response.status_code", status),
                    s("network.peer.address", "172.18.0.3"),
                ],
            );
            if fails {
                t.fail("card declined");
                let event = Event { name: "exception".into(), time_unix_nano: 0, attributes: vec![] };
                t.spans.last_mut().expect("a span").events.push(event);
            }
            t.add(
                Some(charge),
                "INSERT payment",
                SpanKind::Client,
                &payments,
                (r + 330, r + 680 - jitter(&mut rng)),
                vec![
                    s("db.system", "postgresql"),
                    s("db.name", "shop"),
                    s("db.statement", "INSERT INTO payments (order_id, amount) VALUES ($1, $2)"),
                    s("server.address", "postgres"),
                ],
            );
            t.add(
                Some(order),
                "INSERT order",
                SpanKind::Client,
                &orders,
                (r + 710, r + 900 - jitter(&mut rng)),
                vec![
                    s("db.system", "postgresql"),
                    s("db.name", "shop"),
                    s("db.statement", "INSERT INTO orders (id, items) VALUES ($1, $2)"),
                    s("server.address", "postgres"),
                ],
            );
        }
    }
    let mut spans = t.spans;
    for i in (1..spans.len()).rev() {
        spans.swap(i, rng.below(i as u64 + 1) as usize);
    }
    spans
}
