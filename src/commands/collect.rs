//! `clnrm collect`: the span receiver on its own, writing what arrives as one JSON trace per
//! line — to record what any instrumented program emits, or to debug one.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::telemetry::receiver::{Receiver, Sink};
use crate::telemetry::span::{Span, TraceId, hex};

/// A trace is written once no span of it arrived for this long.
const QUIET: Duration = Duration::from_secs(1);

pub fn run(cwd: &std::path::Path, listen: SocketAddr, out: Option<PathBuf>) -> Result<(), Error> {
    let output: Box<dyn Write + Send> = match &out {
        Some(path) => {
            let path = cwd.join(path);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
            Box::new(file)
        }
        None => Box::new(std::io::stdout()),
    };
    let traces = Arc::new(Traces {
        pending: Mutex::new(HashMap::new()),
        output: Mutex::new(output),
        written: Mutex::new((0, 0)),
    });
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let receiver = Receiver::start(listen, Arc::clone(&traces) as Arc<dyn Sink>)
            .await
            .map_err(|e| Error::io(format!("cannot listen on {listen}"), e))?;
        eprintln!(
            "clnrm collect: listening on {} (OTLP/HTTP at /v1/traces and OTLP/gRPC); Ctrl-C to stop",
            receiver.addr
        );
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let stop = super::run_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => traces.write_quiet(false),
                _ = &mut stop => break,
            }
        }
        receiver.stop().await;
        traces.write_quiet(true);
        let (spans, written) = *traces.written.lock().unwrap_or_else(|e| e.into_inner());
        eprintln!("clnrm collect: wrote {} spans in {} traces", spans, written);
        Ok(())
    })
}

struct Traces {
    pending: Mutex<HashMap<TraceId, (Vec<Span>, Instant)>>,
    output: Mutex<Box<dyn Write + Send>>,
    /// Spans and traces written.
    written: Mutex<(usize, usize)>,
}

impl Sink for Traces {
    fn accept(&self, _peer: IpAddr, spans: Vec<Span>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        for span in spans {
            let entry = pending.entry(span.trace_id).or_insert_with(|| (Vec::new(), now));
            entry.0.push(span);
            entry.1 = now;
        }
    }
}

impl Traces {
    /// Writes traces quiet for long enough (all of them with `all`), one JSON line each.
    fn write_quiet(&self, all: bool) {
        let ready: Vec<(TraceId, Vec<Span>)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let ids: Vec<TraceId> =
                pending.iter().filter(|(_, (_, last))| all || last.elapsed() >= QUIET).map(|(id, _)| *id).collect();
            ids.into_iter().filter_map(|id| pending.remove(&id).map(|(spans, _)| (id, spans))).collect()
        };
        let mut output = self.output.lock().unwrap_or_else(|e| e.into_inner());
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        for (id, mut spans) in ready {
            spans.sort_by_key(|s| s.start_unix_nano);
            let line = serde_json::json!({ "trace_id": hex(&id), "spans": spans });
            let _ = writeln!(output, "{line}");
            written.0 += spans.len();
            written.1 += 1;
        }
        let _ = output.flush();
    }
}
