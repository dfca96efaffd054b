//! Benchmark of span-expectation checking on a large trace.
//!
//! `cargo bench --bench expect` builds a realistic 10,000-span trace (clnrm's scenario and step
//! spans, then 999 checkout requests through gateway → orders → inventory and payments, each with
//! its database calls, HTTP attributes and a failed payment now and then), parses 20 selectors and
//! 20 expectations, and prints the median (and spread) over repeated runs of:
//! - indexing the trace and evaluating the 20 selectors;
//! - `check` of the 20 expectations, which all hold (asserted before timing);
//! - for reference, building the index alone.

use std::hint::black_box;
use std::time::{Duration, Instant};

use clnrm::expect::check::results;
use clnrm::expect::failure::Context;
use clnrm::expect::matcher::select;
use clnrm::expect::model::{Bounds, Expectations, Hermetic, SpanExpectation, TraceExpectation};
use clnrm::expect::selector::{Selector, Value, parse};
use clnrm::schema::Spanned;
use clnrm::telemetry::index::TraceIndex;
use clnrm::telemetry::peers::Peers;
use clnrm::telemetry::span::{SpanKind, SpanStatus};

#[path = "common/trace.rs"]
mod trace;
use trace::{STEPS, trace};

const RUNS: usize = 101;
const TARGET: Duration = Duration::from_millis(10);

/// Steps of the scenario and checkout requests per step: 1 + 9 × (1 + 111 × 10) = 10,000 spans.
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
    let spans = trace(REQUESTS);
    assert_eq!(spans.len(), 10_000);
    let selectors: Vec<Selector> = SELECTORS.iter().map(|s| parse(s).expect("valid selector")).collect();
    let errors = spans.iter().filter(|s| s.status == SpanStatus::Error).count() as u64;
    let expectations = expectations(errors);
    let peers = known_peers();
    let context = Context { peers: &peers };
    let failures: Vec<_> = results(&spans, &expectations, &context).into_iter().filter(|c| !c.passed).collect();
    assert!(failures.is_empty(), "the benchmark's expectations must hold: {failures:#?}");

    let index = TraceIndex::new(&spans);
    let matched: Vec<usize> = selectors.iter().map(|s| select(&index, s).len()).collect();
    println!("spans: {}; selected per selector: {matched:?}", spans.len());

    let mut figures: [Figure; 3] = [
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
        ("check 20 expectations (all hold)", Box::new(|| drop(black_box(results(&spans, &expectations, &context))))),
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

fn known_peers() -> Peers {
    let mut peers = Peers::new();
    for (i, name) in ["gateway", "orders", "payments", "inventory", "postgres"].into_iter().enumerate() {
        peers.add_address(format!("172.18.0.{}", i + 2).parse().expect("an address"), name);
    }
    peers
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
        hermetic: Some(Hermetic::default()),
    };
    Expectations { spans, trace: Some(trace) }
}
