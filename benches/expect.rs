//! Benchmark of span-expectation checking on a large trace.
//!
//! `cargo bench --bench expect` builds a realistic 10,000-span trace (clnrm's scenario and step
//! spans, then 999 checkout requests through gateway → orders → inventory and payments, each with
//! its database calls, HTTP attributes and a failed payment now and then), parses 20 selectors and
//! 20 expectations, and prints the median (and spread) over repeated runs of:
//! - indexing the trace and evaluating the 20 selectors;
//! - `check` of the 20 expectations, which all hold (asserted before timing);
//! - for reference, building the index alone and `holds` of the same expectations.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clnrm::expect::check::{Context, check, holds};
use clnrm::expect::matcher::{TraceIndex, select};
use clnrm::expect::selector::{Selector, Value, parse};
use clnrm::scenario::model::{Bounds, Expectations, SpanExpectation, SpanKind, SpanStatus, TraceExpectation};
use clnrm::schema::Spanned;
use clnrm::telemetry::span::{AttrValue, Attributes, Event, Resource, Span};

const RUNS: usize = 101;
const TARGET: Duration = Duration::from_millis(10);

/// Steps of the scenario and checkout requests per step: 1 + 9 × (1 + 111 × 10) = 10,000 spans.
const STEPS: u64 = 9;
const REQUESTS: u64 = 111;

const SELECTORS: [&str; 20] = [
    r#"span[name="POST /orders" service.name="gateway"]"#,
    r#"span[http.response.status_code>=500]"#,
    r#"span[name=~"^GET /stock/\d+$"]"#,
    r#"span[db.system="postgresql" db.statement contains "INSERT"]"#,
    r#"span[name="step 3"] span[service.name="payments"]"#,
    r#"span[name="checkout-load"] span[kind="server"] span[db.system]"#,
    r#"span[service.name="payments" status="error"]:first"#,
    r#"span[name="POST /charge"]:last"#,
    r#"span[name="POST /orders"]:nth_child(500)"#,
    r#"span[kind="client" server.address="inventory"]"#,
    r#"span[http.route="/orders" http.request.method="POST"]"#,
    r#"span[name=~"^(INSERT|SELECT) "]"#,
    r#"span[url.full=~"^http://payments:8080/"]"#,
    r#"span[service.name="orders"] span[name="validate"]"#,
    r#"span[name="step 8"] span[name="POST /orders"] span[name="INSERT payment"]"#,
    r#"span[status!="error" service.name="inventory"]"#,
    r#"span[http.response.status_code!=200]"#,
    r#"span[name="GET /stock/17"]"#,
    "span:first",
    r#"span[name contains "stock" kind="server"]:last"#,
];

fn main() {
    let spans = trace();
    assert_eq!(spans.len(), 10_000);
    let selectors: Vec<Selector> = SELECTORS.iter().map(|s| parse(s).expect("valid selector")).collect();
    let errors = spans.iter().filter(|s| s.status == SpanStatus::Error).count() as u64;
    let expectations = expectations(errors);
    let peers = known_peers();
    let context = Context { own_service: "clnrm", known_peers: &peers };
    let failures = check(&spans, &expectations, &context);
    assert!(failures.is_empty(), "the benchmark's expectations must hold: {failures:#?}");
    assert!(holds(&spans, &expectations, &context));

    let index = TraceIndex::new(&spans);
    let matched: Vec<usize> = selectors.iter().map(|s| select(&index, s).len()).collect();
    println!("spans: {}; selected per selector: {matched:?}", spans.len());

    let mut figures: [Figure; 4] = [
        ("index 10,000 spans", Box::new(|| drop(black_box(TraceIndex::new(&spans))))),
        (
            "index + evaluate 20 selectors",
            Box::new(|| {
                let index = TraceIndex::new(&spans);
                for selector in &selectors {
                    black_box(select(&index, selector));
                }
            }),
        ),
        ("check 20 expectations (all hold)", Box::new(|| drop(black_box(check(&spans, &expectations, &context))))),
        (
            "holds, same 20 expectations",
            Box::new(|| {
                black_box(holds(&spans, &expectations, &context));
            }),
        ),
    ];
    let samples = measure(&mut figures);
    println!("\n{:<40} {:>10} {:>10} {:>10} {:>10} {:>10}  result", "figure", "median", "min", "p10", "p90", "target");
    for ((name, _), samples) in figures.iter().zip(&samples) {
        let verdict = if samples[RUNS / 2] < TARGET { "met" } else { "MISSED" };
        println!(
            "{name:<40} {:>10} {:>10} {:>10} {:>10} {:>10}  {verdict}",
            fmt(samples[RUNS / 2]),
            fmt(samples[0]),
            fmt(samples[RUNS / 10]),
            fmt(samples[RUNS * 9 / 10]),
            fmt(TARGET)
        );
    }
}

/// A named piece of work to time.
type Figure<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// Sorted samples of `RUNS` timed runs of each figure, after a warm-up run. The figures take turns
/// run by run, so a slow stretch of this shared machine affects them all alike.
fn measure(figures: &mut [Figure]) -> Vec<Vec<Duration>> {
    let mut samples = vec![Vec::with_capacity(RUNS); figures.len()];
    for (_, f) in figures.iter_mut() {
        f();
    }
    for _ in 0..RUNS {
        for ((_, f), samples) in figures.iter_mut().zip(&mut samples) {
            let start = Instant::now();
            f();
            samples.push(start.elapsed());
        }
    }
    for samples in &mut samples {
        samples.sort();
    }
    samples
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{}µs", d.as_micros())
    } else {
        format!("{:.2}ms", d.as_secs_f64() * 1e3)
    }
}

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
    })
}

fn known_peers() -> Vec<String> {
    ["gateway", "orders", "payments", "inventory", "postgres", "localhost", "127.0.0.1"]
        .iter()
        .map(|s| s.to_string())
        .chain((2..=6).map(|i| format!("172.18.0.{i}")))
        .collect()
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

/// scenario → 9 steps → 111 requests each: gateway → orders → (validate, inventory + its query,
/// payments + its insert, order insert). Every 50th payment fails. Spans arrive shuffled, as
/// batches from several exporters would.
fn trace() -> Vec<Span> {
    let mut rng = Rng(42);
    let clnrm = resource("clnrm", "127.0.0.1");
    let gateway = resource("gateway", "172.18.0.2");
    let orders = resource("orders", "172.18.0.3");
    let inventory = resource("inventory", "172.18.0.4");
    let payments = resource("payments", "172.18.0.5");
    let mut t = Trace { spans: Vec::with_capacity(10_000), next_id: 0 };
    let request_len = 1_000;
    let step_len = REQUESTS * (request_len + 20) + 100;
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
        for request in 0..REQUESTS {
            let r = step_start + 50 + request * (request_len + 20);
            let jitter = |rng: &mut Rng| rng.below(20);
            let item = 1 + rng.below(50);
            let fails = (step * REQUESTS + request) % 50 == 7;
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

fn sel(text: &str) -> Spanned<Selector> {
    Spanned::new(parse(text).expect("valid selector"), 0..text.len())
}

fn exactly(n: u64) -> Option<Bounds<u64>> {
    Some(Bounds { min: Some(n), max: Some(n) })
}

fn at_least(n: u64) -> Option<Bounds<u64>> {
    Some(Bounds { min: Some(n), max: None })
}

fn expect(select: &str) -> SpanExpectation {
    SpanExpectation::new(sel(select))
}

/// 15 `[[expect.span]]` and 5 `[expect.trace]` keys, all holding for [`trace`].
fn expectations(errors: u64) -> Expectations {
    let requests = STEPS * REQUESTS;
    let attr = |key: &str, value: Value| (key.to_string(), value);
    let text = |value: &str| Value::Str(value.to_string());
    let second = Some(Bounds { min: None, max: Some(Duration::from_secs(1)) });
    let spans = vec![
        SpanExpectation {
            count: exactly(requests),
            kind: Some(SpanKind::Server),
            attrs: vec![attr("http.request.method", text("POST"))],
            parent: Some(sel(r#"span[name=~"^step \d+$"]"#)),
            ..expect(r#"span[name="POST /orders" service.name="gateway"]"#)
        },
        SpanExpectation {
            count: exactly(requests),
            duration: second,
            parent: Some(sel(r#"span[name="POST /charge" kind="client"]"#)),
            ..expect(r#"span[name="POST /charge" kind="server"]"#)
        },
        SpanExpectation {
            count: at_least(1),
            events: vec!["exception".into()],
            ..expect(r#"span[service.name="payments" status="error"]"#)
        },
        SpanExpectation {
            count: at_least(1),
            attrs: vec![attr("db.name", text("shop"))],
            ..expect(r#"span[name="step 3"] span[db.system="postgresql"]"#)
        },
        SpanExpectation {
            attrs: vec![attr("http.response.status_code", Value::Int(200))],
            status: Some(SpanStatus::Unset),
            ..expect(r#"span[name=~"^GET /stock/\d+$" kind="server"]"#)
        },
        SpanExpectation {
            count: exactly(requests),
            kind: Some(SpanKind::Internal),
            parent: Some(sel(r#"span[name="POST /orders" service.name="orders"]"#)),
            ..expect(r#"span[name="validate"]"#)
        },
        SpanExpectation { count: exactly(1), ..expect(r#"span[name="checkout-load"]"#) },
        SpanExpectation {
            status: Some(SpanStatus::Error),
            ..expect(r#"span[http.response.status_code>=500 kind="client"]"#)
        },
        SpanExpectation { parent: Some(sel(r#"span[name="step 1"]"#)), ..expect(r#"span[name="POST /orders"]:first"#) },
        SpanExpectation {
            attrs: vec![attr("db.system", text("postgresql"))],
            ..expect(r#"span[name="INSERT order"]:last"#)
        },
        SpanExpectation {
            count: exactly(requests),
            attrs: vec![attr("server.port", Value::Float(8080.0))],
            ..expect(r#"span[kind="client" server.address="inventory"]"#)
        },
        SpanExpectation { kind: Some(SpanKind::Client), ..expect(r#"span[url.full=~"^http://payments:8080/"]"#) },
        SpanExpectation {
            count: exactly(REQUESTS),
            duration: second,
            ..expect(r#"span[name="step 9"] span[name="POST /orders"] span[name="INSERT payment"]"#)
        },
        SpanExpectation { count: Some(Bounds { min: None, max: Some(0) }), ..expect(r#"span[name="refund"]"#) },
        SpanExpectation {
            attrs: vec![attr("http.route", text("/stock/{id}"))],
            ..expect(r#"span[name contains "stock" kind="server"]:last"#)
        },
    ];
    let trace = TraceExpectation {
        spans: Some(Bounds { min: Some(9_000), max: Some(11_000) }),
        errors: Some(errors),
        order: vec![[sel(r#"span[name="step 1"]"#), sel(r#"span[name="step 2"]"#)]],
        within: vec![[sel(r#"span[service.name="payments"]"#), sel(r#"span[name=~"^step \d+$"]"#)]],
        hermetic: true,
    };
    Expectations { spans, trace: Some(trace) }
}
