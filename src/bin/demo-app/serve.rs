//! `demo-app serve`: a tiny shop whose handlers emit the spans clnrm's examples assert on.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::{get, post};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::telemetry::{self, Telemetry, record_failure, start};

/// What the handlers share: the tracer, and how long the payment provider takes to charge (a
/// knob for showing duration regressions against a baseline).
#[derive(Clone)]
struct Shop {
    tracer: SdkTracer,
    charge: u64,
}

/// Serves until SIGTERM or SIGINT, then lets in-flight requests finish. Charging takes
/// `charge_ms` milliseconds.
pub async fn run(telemetry: &Telemetry, port: u16, charge_ms: u64) -> Result<(), String> {
    let app = Router::new()
        .route("/health", get(health))
        .route("/orders", post(place_order))
        .route("/items/{id}", get(item))
        .with_state(Shop { tracer: telemetry.tracer(), charge: charge_ms });
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| format!("watching for SIGTERM: {e}"))?;
    let listener = TcpListener::bind(("0.0.0.0", port)).await.map_err(|e| format!("listening on port {port}: {e}"))?;
    let port = listener.local_addr().map_err(|e| format!("listening on port {port}: {e}"))?.port();
    // clnrm waits for this line; it is printed only once the port accepts connections.
    println!("listening on :{port}");
    let stopped = async move {
        tokio::select! {
            _ = sigterm.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    axum::serve(listener, app).with_graceful_shutdown(stopped).await.map_err(|e| format!("serving: {e}"))
}

/// No span: readiness probes would otherwise fill every trace.
async fn health() -> &'static str {
    "ok"
}

/// `POST /orders?items=N[&fail=charge]`: reserves each item, charges, stores the order.
async fn place_order(State(shop): State<Shop>, uri: Uri, headers: HeaderMap) -> (StatusCode, String) {
    let tracer = shop.tracer;
    let cx = start(
        &tracer,
        &caller(&headers),
        "POST /orders",
        SpanKind::Server,
        vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.route", "/orders"),
            KeyValue::new("url.path", uri.path().to_owned()),
        ],
    );
    let query = uri.query().unwrap_or("");
    let items = query_param(query, "items").and_then(|value| value.parse::<u32>().ok());
    if let Some(items) = items {
        cx.span().set_attribute(KeyValue::new("order.items", i64::from(items)));
    }
    let outcome = match (items, query_param(query, "fail")) {
        (None | Some(0), _) => Err((StatusCode::BAD_REQUEST, "InvalidOrder", "items must be a positive integer")),
        (_, Some(step)) if step != "charge" => {
            Err((StatusCode::BAD_REQUEST, "InvalidOrder", "only fail=charge exists"))
        }
        (Some(items), fail) => place(&tracer, &cx, items, fail.is_some(), shop.charge).await,
    };
    let (status, body) = match outcome {
        Ok(items) => (StatusCode::OK, format!("placed {items}")),
        Err((status, exception_type, message)) => {
            record_failure(&cx.span(), exception_type, message);
            (status, message.to_owned())
        }
    };
    finish(&cx, status);
    (status, body)
}

/// What went wrong with an order: the response status, the exception type and the message.
type Failure = (StatusCode, &'static str, &'static str);

/// The order's work as children of the request span `cx`; returns the item count placed.
async fn place(
    tracer: &SdkTracer,
    cx: &Context,
    items: u32,
    fail_charge: bool,
    charge_ms: u64,
) -> Result<u32, Failure> {
    let reserve =
        start(tracer, cx, "reserve", SpanKind::Internal, vec![KeyValue::new("order.items", i64::from(items))]);
    for index in 0..items {
        let item = start(
            tracer,
            &reserve,
            "reserve item",
            SpanKind::Internal,
            vec![KeyValue::new("item.index", i64::from(index))],
        );
        pause(1).await;
        item.span().end();
    }
    pause(1).await;
    reserve.span().end();

    let charge =
        start(tracer, cx, "charge", SpanKind::Internal, vec![KeyValue::new("payment.amount", i64::from(items) * 10)]);
    pause(charge_ms).await;
    if fail_charge {
        record_failure(&charge.span(), "PaymentDeclined", "payment declined");
        charge.span().end();
        return Err((StatusCode::INTERNAL_SERVER_ERROR, "PaymentDeclined", "charge failed"));
    }
    charge.span().end();

    let insert = start(
        tracer,
        cx,
        "db.insert",
        SpanKind::Client,
        vec![KeyValue::new("db.system", "sqlite"), KeyValue::new("db.operation", "INSERT")],
    );
    pause(3).await;
    insert.span().end();
    Ok(items)
}

/// `GET /items/{id}`: a single span, for scenarios that need a second route.
async fn item(
    State(Shop { tracer, .. }): State<Shop>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let cx = start(
        &tracer,
        &caller(&headers),
        "GET /items/{id}",
        SpanKind::Server,
        vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/items/{id}"),
            KeyValue::new("url.path", uri.path().to_owned()),
            KeyValue::new("item.id", id.clone()),
        ],
    );
    pause(1).await;
    finish(&cx, StatusCode::OK);
    (StatusCode::OK, format!("item {id}"))
}

/// The caller's trace context from the request's `traceparent` header, so the request span
/// joins the client's trace.
fn caller(headers: &HeaderMap) -> Context {
    let carrier: HashMap<String, String> = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect();
    telemetry::extract(&carrier)
}

/// Records the response status on the request span and ends it. A success is marked `ok`
/// (the app itself, not a library, decides that the request succeeded), so scenarios can tell
/// an answered request from a span nobody judged.
fn finish(cx: &Context, status: StatusCode) {
    let span = cx.span();
    span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status.as_u16())));
    if status.is_success() {
        span.set_status(Status::Ok);
    }
    span.end();
}

/// The value of `key` in a query string. The routes only take plain numbers and words, so no
/// percent-decoding is needed (axum's `Query` extractor needs a feature this package leaves off).
fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

/// Stands in for real work, so spans have realistic, non-zero durations.
async fn pause(millis: u64) {
    tokio::time::sleep(Duration::from_millis(millis)).await;
}
