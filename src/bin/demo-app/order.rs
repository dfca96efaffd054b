//! `demo-app order`: places one order with the shop and joins the caller's trace.
//!
//! The HTTP/1.1 client is hand-written over a Tokio `TcpStream`: one request, one response,
//! which keeps the package free of an HTTP client dependency and shows where `traceparent` goes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, lookup_host};

use crate::telemetry::{self, Telemetry, record_failure, start};

/// A shop slower than this is broken; a step should fail rather than hang.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Posts the order, prints the shop's answer (`placed N`) on success, and fails on anything but 2xx.
pub async fn run(telemetry: &Telemetry, host: &str, port: u16, items: u32, fail_charge: bool) -> Result<(), String> {
    let target =
        if fail_charge { format!("/orders?items={items}&fail=charge") } else { format!("/orders?items={items}") };
    let tracer = telemetry.tracer();
    let cx = start(
        &tracer,
        &telemetry::caller_context()?,
        "POST /orders",
        SpanKind::Client,
        vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("server.address", host.to_owned()),
            KeyValue::new("server.port", i64::from(port)),
            KeyValue::new("url.full", format!("http://{host}:{port}{target}")),
        ],
    );
    let span = cx.span();
    let exchange = tokio::time::timeout(TIMEOUT, post(host, port, &target, &telemetry::inject(&cx))).await;
    let result = match exchange.unwrap_or_else(|_| Err(format!("no answer from {host}:{port} within {TIMEOUT:?}"))) {
        Ok((status, body)) => {
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
            if (200..300).contains(&status) {
                span.set_status(Status::Ok);
                println!("{body}");
                Ok(())
            } else {
                span.set_status(Status::error(format!("HTTP {status}")));
                Err(format!("the shop answered {status}: {body}"))
            }
        }
        Err(message) => {
            record_failure(&span, "TransportError", &message);
            Err(message)
        }
    };
    span.end();
    result
}

/// Host and port of `http://HOST[:PORT][/]`, the only form the demo needs (no TLS, no path).
pub fn parse_shop(url: &str) -> Result<(&str, u16), String> {
    let invalid = |why: &str| format!("--shop {url}: {why} (expected http://HOST[:PORT], e.g. http://shop:8080)");
    let authority = url.strip_prefix("http://").ok_or_else(|| invalid("not an http:// URL"))?;
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    if authority.contains('/') {
        return Err(invalid("the shop's address takes no path"));
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, port.parse().map_err(|_| invalid("the port is not a number"))?),
        None => (authority, 80),
    };
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    Ok((host, port))
}

/// Sends `POST target` with `headers` and returns the response's status code and body.
async fn post(host: &str, port: u16, target: &str, headers: &HashMap<String, String>) -> Result<(u16, String), String> {
    // Resolving separately tells a misspelt service name apart from a service that is down.
    let addresses: Vec<SocketAddr> =
        lookup_host((host, port)).await.map_err(|e| format!("cannot resolve {host}: {e}"))?.collect();
    let mut stream =
        TcpStream::connect(&addresses[..]).await.map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;

    // `Connection: close` makes the server close the connection after its answer, so the
    // response is simply everything read until then (the shop's bodies have a fixed length,
    // never chunked framing).
    let mut request =
        format!("POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let io_error = |e: std::io::Error| format!("talking to {host}:{port}: {e}");
    stream.write_all(request.as_bytes()).await.map_err(io_error)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.map_err(io_error)?;

    let response = String::from_utf8_lossy(&response);
    let (head, body) =
        response.split_once("\r\n\r\n").ok_or_else(|| format!("{host}:{port}: truncated HTTP response"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{host}:{port}: not an HTTP response"))?;
    Ok((status, body.to_owned()))
}
