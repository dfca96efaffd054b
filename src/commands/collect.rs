//! `clnrm collect`: the span receiver on its own, writing what arrives as one JSON trace per
//! line — to record what any instrumented program emits, or to debug one.
//!
//! Memory is bounded whatever the senders do: at most [`Limits::per_trace`] spans are held for one
//! trace and [`Limits::total`] for all traces not yet written; spans beyond either are dropped and
//! counted, and a warning names each trace that lost some and how many. A trace is written once no
//! span of it arrived for [`Limits::idle`], streamed to the output through a buffer rather than
//! built in memory first (a trace's JSON is about as large as the spans it holds). Spans of a trace
//! that arrive after it was written start another line with the same trace id, and a warning says
//! so (the last [`REMEMBERED`] written traces are known).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::telemetry::receiver::{Receiver, Sink};
use crate::telemetry::span::{Span, TraceId, hex};

/// How long traces stay open and how many spans are held.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A trace is written once no span of it arrived for this long.
    pub idle: Duration,
    /// Spans held for one trace.
    pub per_trace: usize,
    /// Spans held for all traces not yet written.
    pub total: usize,
}

pub fn run(cwd: &Path, listen: SocketAddr, out: Option<PathBuf>, limits: Limits) -> Result<(), Error> {
    let (writer, name): (Box<dyn Write + Send>, String) = match &out {
        Some(path) => {
            let path = cwd.join(path);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
            (Box::new(file), path.display().to_string())
        }
        None => (Box::new(std::io::stdout()), "stdout".into()),
    };
    let mut output = Output { writer: BufWriter::with_capacity(1 << 16, writer), spans: 0, traces: 0, dropped: 0 };
    let traces = Arc::new(Traces { limits, pending: Mutex::default() });
    let runtime = super::runtime()?;
    runtime.block_on(async {
        // Listening first: a signal from now on writes what arrived instead of losing it.
        let mut signals = crate::run::Signals::listen();
        let receiver = Receiver::start(listen, Arc::clone(&traces) as Arc<dyn Sink>)
            .await
            .map_err(|e| Error::io(format!("cannot listen on {listen}"), e))?;
        eprintln!(
            "clnrm collect: listening on {} (OTLP/HTTP at /v1/traces and OTLP/gRPC); Ctrl-C to stop",
            receiver.addr
        );
        // Often enough that a trace is written soon after its idle time is over.
        let mut tick =
            tokio::time::interval((limits.idle / 5).clamp(Duration::from_millis(10), Duration::from_millis(200)));
        let written = loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = output.write(&traces, false) {
                        break Err(e);
                    }
                }
                _ = signals.next() => break Ok(()),
            }
        };
        receiver.stop().await;
        written
            .and_then(|()| output.write(&traces, true))
            .map_err(|e| Error::io(format!("cannot write the traces to {name}"), e))?;
        let dropped = if output.dropped > 0 { format!("; dropped {} spans", output.dropped) } else { String::new() };
        eprintln!("clnrm collect: wrote {} spans in {} traces{dropped}", output.spans, output.traces);
        Ok(())
    })
}

/// How many written traces are remembered, to tell a trace's late spans from a new trace: 100,000
/// trace ids (a few MB) keep memory bounded however long collect runs.
const REMEMBERED: usize = 100_000;

/// The traces not yet written: what the receiver adds to.
struct Traces {
    limits: Limits,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    traces: HashMap<TraceId, Trace>,
    /// Spans held in all of `traces`, and in traces being written.
    held: usize,
    /// Whether the warning that [`Limits::total`] spans are held was given since it last was not.
    full: bool,
    /// The last [`REMEMBERED`] traces written, oldest first.
    written: Written,
}

/// Trace ids written, the oldest forgotten beyond [`REMEMBERED`].
#[derive(Default)]
struct Written {
    ids: HashSet<TraceId>,
    order: VecDeque<TraceId>,
}

impl Written {
    fn insert(&mut self, id: TraceId) {
        if self.ids.insert(id) {
            self.order.push_back(id);
        }
        if self.order.len() > REMEMBERED
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
    }
}

struct Trace {
    spans: Vec<Span>,
    /// When its last span arrived, kept or not.
    last: Instant,
    /// Spans dropped because the trace held [`Limits::per_trace`] already.
    beyond_trace: usize,
    /// Spans dropped because all traces held [`Limits::total`] already.
    beyond_total: usize,
}

impl Traces {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the traces that have been idle long enough (all of them with `all`), and remembers
    /// them as written under the same lock, so that no span of theirs can slip in unremarked.
    fn take_idle(&self, all: bool) -> Vec<(TraceId, Trace)> {
        let mut pending = self.pending();
        let ids: Vec<TraceId> = pending
            .traces
            .iter()
            .filter(|(_, t)| all || t.last.elapsed() >= self.limits.idle)
            .map(|(id, _)| *id)
            .collect();
        for &id in &ids {
            pending.written.insert(id);
        }
        ids.into_iter().filter_map(|id| pending.traces.remove(&id).map(|t| (id, t))).collect()
    }
}

impl Sink for Traces {
    fn accept(&self, _peer: IpAddr, spans: Vec<Span>) {
        let mut guard = self.pending();
        let pending = &mut *guard;
        let now = Instant::now();
        let idle = self.limits.idle;
        for span in spans {
            let written = &pending.written;
            let trace = pending.traces.entry(span.trace_id).or_insert_with(|| {
                if written.ids.contains(&span.trace_id) {
                    eprintln!(
                        "clnrm collect: warning: trace {}: spans arrived after it was written (none of it had \
                         arrived for --idle {}); they start another line with the same trace_id; a longer \
                         --idle keeps such a trace on one line",
                        hex(&span.trace_id),
                        crate::duration::display(idle)
                    );
                }
                Trace { spans: Vec::new(), last: now, beyond_trace: 0, beyond_total: 0 }
            });
            trace.last = now;
            if trace.spans.len() >= self.limits.per_trace {
                if trace.beyond_trace == 0 {
                    eprintln!(
                        "clnrm collect: warning: trace {} reached --max-trace-spans {}; its further spans are dropped",
                        hex(&span.trace_id),
                        self.limits.per_trace
                    );
                }
                trace.beyond_trace += 1;
            } else if pending.held >= self.limits.total {
                if !pending.full {
                    pending.full = true;
                    eprintln!(
                        "clnrm collect: warning: {} spans are held (--max-spans); new spans are dropped until traces are written",
                        self.limits.total
                    );
                }
                trace.beyond_total += 1;
            } else {
                trace.spans.push(span);
                pending.held += 1;
            }
        }
    }
}

/// Where traces go, and what went there.
struct Output {
    writer: BufWriter<Box<dyn Write + Send>>,
    spans: usize,
    traces: usize,
    dropped: usize,
}

/// One line of the output.
#[derive(serde::Serialize)]
struct Line<'a> {
    trace_id: String,
    spans: &'a [Span],
}

impl Output {
    /// Writes the traces that have been idle long enough (all of them with `all`), one JSON line
    /// each, spans in start order; warns of each trace that lost spans.
    fn write(&mut self, traces: &Traces, all: bool) -> std::io::Result<()> {
        for (id, mut trace) in traces.take_idle(all) {
            trace.spans.sort_by_key(|s| s.start_unix_nano);
            if !trace.spans.is_empty() {
                serde_json::to_writer(&mut self.writer, &Line { trace_id: hex(&id), spans: &trace.spans })?;
                self.writer.write_all(b"\n")?;
                self.spans += trace.spans.len();
                self.traces += 1;
            }
            let mut pending = traces.pending();
            pending.held -= trace.spans.len();
            pending.full &= pending.held >= traces.limits.total;
            drop(pending);
            let dropped = trace.beyond_trace + trace.beyond_total;
            if dropped > 0 {
                self.dropped += dropped;
                eprintln!("clnrm collect: warning: trace {}: {}", hex(&id), dropped_spans(&trace, &traces.limits));
            }
        }
        self.writer.flush()
    }
}

/// What a trace lost: `wrote 100 spans, dropped 50 (50 beyond --max-trace-spans 100)`.
fn dropped_spans(trace: &Trace, limits: &Limits) -> String {
    let mut why = Vec::new();
    if trace.beyond_trace > 0 {
        why.push(format!("{} beyond --max-trace-spans {}", trace.beyond_trace, limits.per_trace));
    }
    if trace.beyond_total > 0 {
        why.push(format!("{} while --max-spans {} were held", trace.beyond_total, limits.total));
    }
    format!(
        "wrote {} spans, dropped {} ({})",
        trace.spans.len(),
        trace.beyond_trace + trace.beyond_total,
        why.join(", ")
    )
}
