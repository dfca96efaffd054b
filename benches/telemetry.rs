//! Benchmarks of span collection (issue: collect spans and check expectations).
//!
//! `cargo bench --bench telemetry`:
//! - receiver ingest over OTLP/HTTP protobuf, batches of 512 spans, several keep-alive connections,
//!   through the real receiver and the routing store;
//! - resident memory per stored span at 100,000 spans (decoded through the real OTLP path);
//! - settle overhead per scenario with the default window, from `clnrm run` on the demo shop
//!   (needs the Docker engine; skipped with a note when there is none).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clnrm::telemetry::receiver::{Receiver, Sink};
use clnrm::telemetry::span::from_otlp;
use clnrm::telemetry::store::Store;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

#[path = "common/otlp.rs"]
mod otlp;

use otlp::{BATCH, batch, client};

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    memory_per_span();
    runtime.block_on(ingest());
    settle_overhead();
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// The system allocator, counting the bytes currently allocated: what the store holds, exactly,
/// where resident memory also shows the allocator's slack.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Stores 100,000 spans the way the receiver does (each batch encoded as a request body, decoded,
/// converted, routed), first thing in the process so resident memory starts small.
fn memory_per_span() {
    const SPANS: usize = 100_000;
    let store = Store::default();
    store.open("bench", [7; 16]);
    let (rss_before, live_before) = (rss_bytes(), LIVE.load(Ordering::Relaxed));
    for seed in 0..SPANS.div_ceil(BATCH) {
        let body = batch(7, seed as u64).encode_to_vec();
        let request = ExportTraceServiceRequest::decode(&body[..]).unwrap();
        let (spans, _) = from_otlp(request.resource_spans);
        store.accept("10.0.0.1".parse().unwrap(), spans);
    }
    let held = store.with_spans("bench", |s| s.len());
    assert!(held >= SPANS);
    let rss = rss_bytes().saturating_sub(rss_before) as f64;
    let live = LIVE.load(Ordering::Relaxed).saturating_sub(live_before) as f64;
    println!(
        "memory: {held} stored spans: {:.0} bytes resident per span ({:.1} MB), {:.0} bytes allocated per span (target < 1024 resident)",
        rss / held as f64,
        rss / 1e6,
        live / held as f64
    );
}

/// Spans per second through the receiver into the store, 5 rounds of 4 connections × 100 requests.
async fn ingest() {
    const CONNECTIONS: usize = 4;
    const REQUESTS_EACH: usize = 100;
    const ROUNDS: usize = 5;
    let store = Arc::new(Store::default());
    store.open("bench", [9; 16]);
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&store) as Arc<dyn Sink>).await.unwrap();
    let bodies = Arc::new((0..16).map(|s| batch(9, s).encode_to_vec()).collect::<Vec<_>>());
    // Warm up connections and allocator.
    client(receiver.addr, Arc::clone(&bodies), 10).await;
    let mut rates = Vec::new();
    for _ in 0..ROUNDS {
        let before = store.with_spans("bench", |s| s.len());
        let started = Instant::now();
        let clients: Vec<_> =
            (0..CONNECTIONS).map(|_| tokio::spawn(client(receiver.addr, Arc::clone(&bodies), REQUESTS_EACH))).collect();
        for c in clients {
            c.await.unwrap();
        }
        let elapsed = started.elapsed();
        let spans = store.with_spans("bench", |s| s.len()) - before;
        assert_eq!(spans, CONNECTIONS * REQUESTS_EACH * BATCH);
        rates.push(spans as f64 / elapsed.as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "ingest: {} spans a round in batches of {BATCH} over {CONNECTIONS} HTTP/1.1 connections: median {:.0} spans/s (min {:.0}, max {:.0}; {ROUNDS} rounds; target >= 100,000)",
        CONNECTIONS * REQUESTS_EACH * BATCH,
        rates[ROUNDS / 2],
        rates[0],
        rates[ROUNDS - 1]
    );
    receiver.stop().await;
}

/// Settle time per scenario (the wait after the last step) with the automatic window, for the
/// checkout example against the demo shop, from `--report json`.
fn settle_overhead() {
    let docker = std::process::Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success());
    if !docker {
        println!("settle: skipped (no Docker engine)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = std::process::Command::new(root.join("scripts/fixtures")).status().unwrap();
    assert!(fixtures.success());
    let project = tempfile::tempdir().unwrap();
    for dir in ["templates", ".clnrm"] {
        copy(&root.join(dir), &project.path().join(dir));
    }
    let _ = std::fs::remove_dir_all(project.path().join(".clnrm/cache"));
    std::fs::create_dir_all(project.path().join("scenarios")).unwrap();
    std::fs::copy(
        root.join("scenarios/orders/checkout.clnrm.toml"),
        project.path().join("scenarios/checkout.clnrm.toml"),
    )
    .unwrap();
    let mut settles = Vec::new();
    for _ in 0..10 {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_clnrm"))
            .args(["run", "--force", "--report", "json=r.json"])
            .current_dir(project.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(project.path().join("r.json")).unwrap()).unwrap();
        settles.push(Duration::from_secs_f64(report["scenarios"][0]["settle_ms"].as_f64().unwrap() / 1000.0));
    }
    settles.sort();
    println!(
        "settle: median {} (min {}, max {}) over {} runs of the checkout example (target < 50ms)",
        clnrm::duration::display(settles[settles.len() / 2]),
        clnrm::duration::display(settles[0]),
        clnrm::duration::display(settles[settles.len() - 1]),
        settles.len()
    );
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
