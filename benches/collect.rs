//! Benchmark of `clnrm collect`'s memory with one huge trace (issue 12: collect held an open trace
//! without limit).
//!
//! `cargo build --release && cargo bench --bench collect` runs the release binary (`CLNRM_BIN`,
//! default `target/release/clnrm`) as `clnrm collect --listen 127.0.0.1:0 --out FILE` plus the
//! arguments in `CLNRM_BENCH_ARGS` (split at spaces), sends it `CLNRM_BENCH_SPANS` spans (default
//! 1,000,000) of one trace over OTLP/HTTP protobuf (the telemetry benchmark's realistic batches of
//! 512 spans, on 4 keep-alive connections), waits for the trace's line, and stops it as Ctrl-C
//! does. Figures: resident memory once every span is acknowledged (`VmRSS`), peak resident memory
//! over the process's life (`ru_maxrss` of the waited child, what `/usr/bin/time -v` reports),
//! spans written, and the time from the last span to the end of the line (the quiet window
//! included).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;

#[path = "common/otlp.rs"]
mod otlp;

use otlp::{BATCH, batch, client};

const CONNECTIONS: usize = 4;

fn main() {
    let binary =
        std::env::var("CLNRM_BIN").unwrap_or_else(|_| format!("{}/target/release/clnrm", env!("CARGO_MANIFEST_DIR")));
    let spans: usize = std::env::var("CLNRM_BENCH_SPANS").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let extra = std::env::var("CLNRM_BENCH_ARGS").unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("traces.jsonl");
    let mut child = Command::new(&binary)
        .args(["collect", "--listen", "127.0.0.1:0", "--out"])
        .arg(&out)
        .args(extra.split_whitespace())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {binary} (build it with `cargo build --release`): {e}"));
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let port: u16 = first
        .split("listening on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    let said = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        rest
    });

    // Every batch of the trace pre-encoded, so that sending measures the receiver, not the encoder.
    let requests = spans.div_ceil(BATCH);
    let bodies: Vec<Vec<u8>> = (0..requests).map(|seed| batch(7, seed as u64).encode_to_vec()).collect();
    let per_connection = requests.div_ceil(CONNECTIONS);
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let addr = ([127, 0, 0, 1], port).into();
        let sending: Vec<_> = bodies
            .chunks(per_connection)
            .map(|chunk| tokio::spawn(client(addr, Arc::new(chunk.to_vec()), chunk.len())))
            .collect();
        for s in sending {
            s.await.unwrap();
        }
    });
    let sent = started.elapsed();
    let held = status_kb(child.id(), "VmRSS");
    let last_span = Instant::now();
    while !line_written(&out) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let to_line = last_span.elapsed();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().unwrap().success(), "collect exits 0 on Ctrl-C");
    let peak_kb = {
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
        usage.ru_maxrss as u64
    };
    let written = count(&out, b"\"span_id\":");
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    println!(
        "clnrm collect {extra}: {} spans of one trace sent in {sent:.1?} ({CONNECTIONS} connections)",
        requests * BATCH
    );
    println!("  resident once all were acknowledged: {:.0} MB", held as f64 / 1024.0);
    println!("  peak resident: {:.0} MB", peak_kb as f64 / 1024.0);
    println!("  written: {written} spans, {:.0} MB, {to_line:.1?} after the last span", size as f64 / 1e6);
    for line in said.join().unwrap().lines() {
        println!("  stderr: {line}");
    }
}

/// A `kB` figure of `/proc/PID/status`.
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Whether the file holds a whole line: JSON escapes its newlines, so the only one ends the line.
fn line_written(path: &std::path::Path) -> bool {
    let Ok(mut file) = std::fs::File::open(path) else { return false };
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    if length == 0 {
        return false;
    }
    let mut last = [0u8];
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(length - 1)).unwrap();
    file.read_exact(&mut last).unwrap();
    last[0] == b'\n'
}

/// Occurrences of `needle` in the file, read in chunks.
fn count(path: &std::path::Path, needle: &[u8]) -> usize {
    let mut file = BufReader::with_capacity(1 << 20, std::fs::File::open(path).unwrap());
    let (mut found, mut carry) = (0, Vec::new());
    loop {
        let chunk = file.fill_buf().unwrap();
        if chunk.is_empty() {
            return found;
        }
        carry.extend_from_slice(chunk);
        let length = chunk.len();
        file.consume(length);
        found += carry.windows(needle.len()).filter(|w| *w == needle).count();
        // Keep a needle's length minus one, so a match across chunks is counted once.
        carry.drain(..carry.len().saturating_sub(needle.len() - 1));
    }
}
