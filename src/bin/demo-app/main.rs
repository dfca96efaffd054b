//! `demo-app`: the system under test of clnrm's own examples and tests.
//!
//! A shop server and its clients that emit OpenTelemetry spans through OTLP, configured only by
//! the standard `OTEL_*` environment variables, so a scenario can assert on a known span tree.
//! `scripts/fixtures` builds it into the image `clnrm-demo:local`.

mod order;
mod serve;
mod telemetry;

use std::collections::HashMap;
use std::env;
use std::process::ExitCode;
use std::str::FromStr;

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, TraceContextExt};

use crate::telemetry::{Telemetry, start};

const USAGE: &str = "\
usage: demo-app serve [--port PORT] [--charge-ms MS]
       demo-app order --shop http://HOST[:PORT] [--items N] [--fail charge]
       demo-app emit --spans N [--name NAME]
defaults: --port 8080, --charge-ms 2 (how long charging a payment takes), --items 1, --name emit";

const TRACING: &str = "\
Tracing is configured by the standard variables OTEL_EXPORTER_OTLP_ENDPOINT (unset: no export),
OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf or grpc), OTEL_SERVICE_NAME (default demo-app),
OTEL_RESOURCE_ATTRIBUTES and OTEL_BSP_SCHEDULE_DELAY; order and emit continue the trace in
TRACEPARENT when it is set.";

/// What the command line asks for.
enum Command {
    Serve { port: u16, charge_ms: u64 },
    Order { host: String, port: u16, items: u32, fail_charge: bool },
    Emit { spans: u32, name: String },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("-h" | "--help" | "help")) {
        println!("{USAGE}\n\n{TRACING}");
        return ExitCode::SUCCESS;
    }
    let command = match parse(&args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("demo-app: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match Telemetry::init() {
        Ok(telemetry) => telemetry,
        Err(message) => {
            eprintln!("demo-app: {message}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        Command::Serve { port, charge_ms } => serve::run(&telemetry, port, charge_ms).await,
        Command::Order { host, port, items, fail_charge } => {
            order::run(&telemetry, &host, port, items, fail_charge).await
        }
        Command::Emit { spans, name } => emit(&telemetry, spans, name).await,
    };
    // Every command ends here, serve after its graceful stop too: spans still queued for export
    // would otherwise be lost with the process.
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("demo-app: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<Command, String> {
    let Some((command, rest)) = args.split_first() else {
        return Err("missing command".to_owned());
    };
    match command.as_str() {
        "serve" => {
            let flags = flags(rest, &["--port", "--charge-ms"])?;
            Ok(Command::Serve {
                port: number(&flags, "--port")?.unwrap_or(8080),
                charge_ms: number(&flags, "--charge-ms")?.unwrap_or(2),
            })
        }
        "order" => {
            let flags = flags(rest, &["--shop", "--items", "--fail"])?;
            let fail_charge = match flags.get("--fail") {
                None => false,
                Some(&"charge") => true,
                Some(other) => return Err(format!("--fail {other}: only `charge` can be made to fail")),
            };
            let shop = flags.get("--shop").ok_or("order needs --shop, e.g. --shop http://shop:8080")?;
            let (host, port) = order::parse_shop(shop)?;
            Ok(Command::Order {
                host: host.to_owned(),
                port,
                items: number(&flags, "--items")?.unwrap_or(1),
                fail_charge,
            })
        }
        "emit" => {
            let flags = flags(rest, &["--spans", "--name"])?;
            Ok(Command::Emit {
                spans: number(&flags, "--spans")?.ok_or("emit needs --spans N")?,
                name: flags.get("--name").unwrap_or(&"emit").to_string(),
            })
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

/// The `--flag value` pairs of `args`: each flag known to the command and given at most once.
fn flags<'a>(args: &'a [String], known: &[&str]) -> Result<HashMap<&'a str, &'a str>, String> {
    let mut flags = HashMap::new();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if !known.contains(&flag.as_str()) {
            return Err(format!("unexpected argument {flag:?} (this command takes {})", known.join(", ")));
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if flags.insert(flag.as_str(), value.as_str()).is_some() {
            return Err(format!("{flag} is given twice"));
        }
    }
    Ok(flags)
}

/// The value of `flag` as a number, if it was given.
fn number<T: FromStr>(flags: &HashMap<&str, &str>, flag: &str) -> Result<Option<T>, String> {
    let parse = |text: &&str| text.parse().map_err(|_| format!("{flag} {text}: expected a whole number in range"));
    flags.get(flag).map(parse).transpose()
}

/// Emits `count` internal spans `child` under one root span `name`, for scenarios that need volume.
async fn emit(telemetry: &Telemetry, count: u32, name: String) -> Result<(), String> {
    // The batch processor drops spans once its queue (OTEL_BSP_MAX_QUEUE_SIZE, 2048 by default)
    // is full, and a tight loop outruns the exporter; flushing every batch keeps any count lossless.
    const FLUSH_EVERY: u32 = 512;
    let tracer = telemetry.tracer();
    let root = start(
        &tracer,
        &telemetry::caller_context()?,
        name,
        SpanKind::Internal,
        vec![KeyValue::new("emit.spans", i64::from(count))],
    );
    for index in 0..count {
        start(&tracer, &root, "child", SpanKind::Internal, vec![KeyValue::new("emit.index", i64::from(index))])
            .span()
            .end();
        if (index + 1) % FLUSH_EVERY == 0 {
            telemetry.flush().await;
        }
    }
    root.span().end();
    Ok(())
}
