//! Benchmarks of `clnrm run` against the real engine (issue: run on a warm pool). Every comparison
//! is measured in the same run, because the machine is shared and noisy: ratios matter, not times.
//!
//! `cargo bench --bench engine` needs a Docker engine and builds the fixture image
//! (`scripts/fixtures`). Set `CLNRM_BENCH_ROUNDS` (default 3) for the throughput rounds, and
//! `CLNRM_BENCH_ONLY` (`warm`, `ceiling`, `throughput`, `growth`, comma-separated) to run only
//! those sections.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::exec::StartExecResults;
use bollard::models::ExecConfig;
use futures_util::StreamExt;

use clnrm::engine::cleanup::{self, Registry};
use clnrm::engine::container::Reach;
use clnrm::engine::exec::{ExecRequest, OnTimeout};
use clnrm::engine::feed;
use clnrm::engine::image::{Available, Obtained};
use clnrm::engine::pool::{self, Pool};
use clnrm::engine::{Engine, RunIdentity};
use clnrm::project::Project;
use clnrm::record::outcome::CacheStatus;
use clnrm::run::scenario::{Shared, execute};
use clnrm::scenario::Loader;
use clnrm::scenario::model::ImageSource;
use clnrm::scenario::vars::Overrides;
use clnrm::telemetry::session::Session;
use clnrm::telemetry::wiring::OtlpProtocol;

const IMAGE: &str = "clnrm-fixture:busybox";

fn main() {
    let bin = env!("CARGO_BIN_EXE_clnrm");
    let fixtures =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fixtures")).status().expect("fixtures");
    assert!(fixtures.success(), "building the fixture image failed");
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // `CLNRM_BENCH_ONLY=warm,ceiling,throughput,growth` runs only the sections named.
    let only = |section: &str| std::env::var("CLNRM_BENCH_ONLY").map_or(true, |v| v.split(',').any(|s| s == section));
    if only("warm") {
        println!("== warm pool: one-step scenario vs one raw exec round trip (same run)");
        let (raw, warm) = runtime.block_on(warm_pool_figures());
        println!("raw exec round trip (bollard)      median {}", show(median(&raw)));
        println!(
            "single-use scenario, warm lane     median {}  ratio {:.2} (target <= 1.5)",
            show(median(&warm.scenario)),
            ratio(&warm.scenario, &raw)
        );
        println!(
            "acquiring a warm container         median {}  p99 {} (target < 1ms)",
            show(median(&warm.acquire)),
            show(percentile(&warm.acquire, 0.99))
        );

        let project = tempfile::tempdir().unwrap();
        write_project(project.path(), 20);
        let reuse_scenarios = scenario_durations(bin, project.path(), &["-j", "1", "--reuse"]);
        println!(
            "reuse scenario via `clnrm run -j 1 --reuse` median {}  ratio {:.2} (target <= 1.5)",
            show(median(&reuse_scenarios)),
            ratio(&reuse_scenarios, &raw)
        );
    }
    if only("ceiling") {
        println!("\n== the engine's ceiling: containers created, started and removed a second through the API");
        for (label, life) in [
            ("in a lane's namespace (as the pool makes them)", Life::Idle),
            ("each with its own namespace", Life::OwnNamespace),
            ("in a lane's namespace, fed a one-step scenario (attach, `echo hi`, input closed, waited for)", Life::Fed),
        ] {
            for workers in [1, 2, 4, 8] {
                let rate = runtime.block_on(ceiling(workers, life));
                println!("{label}, {workers} in parallel: {rate:.1} containers/s");
            }
        }
    }
    if only("throughput") {
        println!(
            "\n== 50 one-step scenarios, --jobs 4, against `docker run --rm` and testcontainers-rs (interleaved rounds)"
        );
        let project = tempfile::tempdir().unwrap();
        write_project(project.path(), 50);
        let peer = testcontainers_peer();
        let rounds: usize = std::env::var("CLNRM_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
        let mut table: Vec<[Duration; 5]> = Vec::new();
        let mut ceilings = Vec::new();
        for round in 1..=rounds {
            let sequential =
                timed(|| sh("for i in $(seq 50); do docker run --rm clnrm-fixture:busybox echo hi >/dev/null; done"));
            let xargs =
                timed(|| sh("seq 50 | xargs -P 4 -I{} docker run --rm clnrm-fixture:busybox echo hi >/dev/null"));
            let testcontainers = timed(|| sh(&format!("{} 50 4 {IMAGE} >/dev/null", peer.display())));
            let single = timed(|| clnrm(bin, project.path(), &["run", "--force", "-j", "4"]));
            let reuse = timed(|| clnrm(bin, project.path(), &["run", "--force", "-j", "4", "--reuse"]));
            // The engine's ceiling in the same round: what single-use is a share of.
            let ceiling = runtime.block_on(ceiling(4, Life::Fed));
            ceilings.push(ceiling);
            println!(
                "round {round}: sequential {}  xargs -P4 {}  testcontainers {}  clnrm single-use {}  clnrm reuse {}  ceiling (fed, 4 in parallel) {ceiling:.1}/s",
                show(sequential),
                show(xargs),
                show(testcontainers),
                show(single),
                show(reuse)
            );
            table.push([sequential, xargs, testcontainers, single, reuse]);
        }
        let column = |i: usize| median(&table.iter().map(|r| r[i]).collect::<Vec<_>>());
        let (sequential, xargs, testcontainers, single, reuse) =
            (column(0), column(1), column(2), column(3), column(4));
        let times = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        println!(
            "medians: sequential {}  xargs -P4 {}  testcontainers {}  single-use {}  reuse {}",
            show(sequential),
            show(xargs),
            show(testcontainers),
            show(single),
            show(reuse)
        );
        println!(
            "single-use: {:.2}x the loop (target >= 2.4), {:.2}x xargs -P4 (target >= 1.3), {:.2}x testcontainers (target >= 1.3)",
            times(sequential, single),
            times(xargs, single),
            times(testcontainers, single)
        );
        println!(
            "reuse:      {:.2}x the loop (target >= 6), {:.2}x xargs -P4 (target >= 3)",
            times(sequential, reuse),
            times(xargs, reuse)
        );
        ceilings.sort_by(f64::total_cmp);
        let ceiling = ceilings[ceilings.len() / 2];
        let rate = 50.0 / single.as_secs_f64();
        println!(
            "single-use: {rate:.1} scenarios/s end to end (process start and end included), {:.0}% of the median ceiling {ceiling:.1}/s (target >= 85%)",
            100.0 * rate / ceiling
        );
    }
    if only("growth") {
        println!("\n== growth: 10, 100 and 1,000 one-step scenarios (--jobs 4): time and peak memory");
        let mut per_scenario = Vec::new();
        for n in [10, 100, 1000] {
            let project = tempfile::tempdir().unwrap();
            write_project(project.path(), n);
            let started = Instant::now();
            let out = Command::new("/usr/bin/time")
                .args(["-f", "%M", bin, "run", "--force", "-j", "4"])
                .current_dir(project.path())
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .output()
                .expect("/usr/bin/time");
            let took = started.elapsed();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
            let stderr = String::from_utf8_lossy(&out.stderr);
            let kb: u64 = stderr.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
            let each = took / n as u32;
            println!(
                "{n:>5} scenarios: {}  ({} a scenario)  peak RSS {:.1} MB",
                show(took),
                show(each),
                kb as f64 / 1024.0
            );
            per_scenario.push(each);
        }
        println!(
            "a scenario at 1,000 costs {:.2}x one at 100 (target <= 1.2); peak RSS target < 100 MB at 1,000",
            per_scenario[2].as_secs_f64() / per_scenario[1].as_secs_f64()
        );
    }
}

struct Warm {
    scenario: Vec<Duration>,
    acquire: Vec<Duration>,
}

/// Raw exec round trips into a running container, then single-use scenarios each started when a
/// lane holds a warm container (so every one is a pool hit), through the library.
async fn warm_pool_figures() -> (Vec<Duration>, Warm) {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), 1);
    let engine = Engine::connect(RunIdentity::current(dir.path())).await.expect("engine");
    let registry = Registry::default();

    let holder = engine.name("bench", "raw");
    let spec = clnrm::engine::container::idle(
        holder.clone(),
        IMAGE,
        engine.labels("bench"),
        clnrm::engine::container::Attach::Network { name: "bridge", aliases: vec![] },
    );
    clnrm::engine::container::run(&engine, &registry, spec).await.expect("container");
    let mut raw = Vec::new();
    for _ in 0..40 {
        let started = Instant::now();
        raw_exec(&engine, &holder).await;
        raw.push(started.elapsed());
    }

    const SCENARIOS: usize = 20;
    let settings = pool::Settings { lanes: 1, ahead: 1, reuse: false, keep_warm: false, ttl: Duration::from_secs(300) };
    let network = engine.name("net", "bench");
    let gateway = clnrm::engine::container::create_network(&engine, &registry, &network, "bench", Reach::HostOnly)
        .await
        .expect("network");
    let session = Session::start(gateway.expect("gateway"), OtlpProtocol::HttpProtobuf, &engine.identity.run_id, None)
        .await
        .expect("receiver");
    let pool = Pool::start(engine.clone(), registry.clone(), settings, vec![IMAGE.to_string(); SCENARIOS], network);
    let project = Project::discover(dir.path()).expect("project");
    let loader = Loader::new(&project, Overrides::default());
    let loaded = loader.load_all(&[dir.path().join("scenarios/s000.clnrm.toml")]);
    let scenario = Arc::new(loaded.into_iter().next().and_then(|l| l.scenario).expect("scenario"));
    let id = engine.docker.inspect_image(IMAGE).await.ok().and_then(|i| i.id).unwrap_or_default();
    let available = Available { reference: IMAGE.to_string(), id, obtained: Obtained::Present };
    let shared = Arc::new(Shared {
        engine: engine.clone(),
        registry: registry.clone(),
        pool: Some(Arc::clone(&pool)),
        images: [(ImageSource::Image(IMAGE.to_string()), available)].into(),
        defaults: project.config.defaults.clone(),
        otel: project.config.otel.clone(),
        telemetry: Arc::new(session),
        reuse: false,
        background: Arc::default(),
        cancel: clnrm::run::Cancel::never(),
        quiet: tokio::sync::RwLock::new(()),
        first_exec: std::sync::OnceLock::new(),
    });
    let mut scenario_times = Vec::new();
    for _ in 0..SCENARIOS {
        while pool.ready() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = Instant::now();
        let outcome =
            execute(Arc::clone(&shared), Arc::clone(&scenario), "s000.clnrm.toml".into(), CacheStatus::Miss, None)
                .await
                .outcome;
        scenario_times.push(started.elapsed());
        assert_eq!(outcome.status, clnrm::record::outcome::Status::Pass, "{:?}", outcome.failure);
    }
    let acquire = pool.stats().acquire;
    pool.shutdown().await;
    shared.telemetry.end().await;
    let mut background = std::mem::take(&mut *shared.background.lock().unwrap());
    while background.join_next().await.is_some() {}
    registry.remove_all(&engine).await;
    cleanup::remove_run(&engine).await;
    (raw, Warm { scenario: scenario_times, acquire })
}

/// The testcontainers-rs peer (`benches/testcontainers`, a crate of its own so that testcontainers
/// is never part of clnrm), built now.
fn testcontainers_peer() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/testcontainers");
    let status = Command::new("cargo")
        .args(["build", "--release", "--locked", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .status()
        .expect("cargo");
    assert!(status.success(), "building benches/testcontainers failed");
    dir.join("target/release/clnrm-bench-testcontainers")
}

/// What each container of [`ceiling`] goes through.
#[derive(Clone, Copy)]
enum Life {
    /// Created joining an idle container's network namespace (as step containers join a lane),
    /// started, removed (forced).
    Idle,
    /// The same on the default bridge with a namespace of its own (as `docker run` makes them).
    OwnNamespace,
    /// All the engine does for a single-use one-step scenario's step container, with none of
    /// clnrm's scheduling: created in a lane's namespace, attached, started, fed `echo hi`, its
    /// input closed and its end waited for, removed.
    Fed,
}

/// Containers a second that `workers` tasks take through `life`, 32 in all.
async fn ceiling(workers: usize, life: Life) -> f64 {
    use clnrm::engine::container::{self, Attach};
    const CONTAINERS: usize = 32;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::connect(RunIdentity::current(dir.path())).await.expect("engine");
    let registry = Registry::default();
    let lane = engine.name("lane", "ceiling");
    let bridge = Attach::Network { name: "bridge", aliases: vec![] };
    let spec = container::idle(lane.clone(), IMAGE, engine.labels("ceiling"), bridge);
    container::run(&engine, &registry, spec).await.expect("lane");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    futures_util::future::join_all((0..workers).map(|_| async {
        while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < CONTAINERS {
            let name = engine.name("step", "ceiling");
            let labels = engine.labels("ceiling");
            let attach = match life {
                Life::OwnNamespace => Attach::Network { name: "bridge", aliases: vec![] },
                Life::Idle | Life::Fed => Attach::JoinNamespaceOf(&lane),
            };
            match life {
                Life::Fed => fed_one_step(&engine, &registry, feed::spec(name.clone(), IMAGE, labels, attach)).await,
                Life::Idle | Life::OwnNamespace => {
                    let spec = container::idle(name.clone(), IMAGE, labels, attach);
                    container::run(&engine, &registry, spec).await.expect("container");
                }
            }
            registry.remove_container(&engine, &name).await.expect("removed");
        }
    }))
    .await;
    let rate = CONTAINERS as f64 / started.elapsed().as_secs_f64();
    registry.remove_all(&engine).await;
    rate
}

/// Takes a fed container from `spec` through a one-step scenario: created, attached, started,
/// fed `echo hi` (its output checked), its input closed and its end waited for.
async fn fed_one_step(engine: &Engine, registry: &Registry, spec: clnrm::engine::container::Spec<'_>) {
    use clnrm::engine::container;
    let name = spec.name.clone();
    let id = container::create(engine, registry, spec).await.expect("created");
    let mut fed = feed::attach(engine, &name).await.expect("attached");
    container::start(engine, &name, IMAGE).await.expect("started");
    let request = ExecRequest {
        container: &name,
        argv: vec!["echo".into(), "hi".into()],
        env: vec![],
        workdir: None,
        timeout: Duration::from_secs(30),
        on_timeout: OnTimeout::KillContainer,
    };
    let ran = fed.run(engine, &request, &id).await.expect("fed");
    assert_eq!(ran.stdout.text().trim(), "hi", "the fed step's output");
    assert!(fed.close(engine, &name).await, "the container ended");
}

async fn raw_exec(engine: &Engine, container: &str) {
    let config = ExecConfig {
        cmd: Some(vec!["echo".into(), "hi".into()]),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let exec = engine.docker.create_exec(container, config).await.unwrap();
    if let StartExecResults::Attached { mut output, .. } = engine.docker.start_exec(&exec.id, None).await.unwrap() {
        while output.next().await.is_some() {}
    }
    engine.docker.inspect_exec(&exec.id).await.unwrap();
}

/// Scenario durations from a run's JSON report.
fn scenario_durations(bin: &str, dir: &Path, args: &[&str]) -> Vec<Duration> {
    let mut all = vec!["run", "--force", "--report", "json=report.json"];
    all.extend_from_slice(args);
    clnrm(bin, dir, &all);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let mut durations: Vec<Duration> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Duration::from_secs_f64(s["duration_ms"].as_f64().unwrap() / 1000.0))
        .collect();
    durations.remove(0); // the first one waits for the pool's first container
    durations
}

fn write_project(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join(".clnrm")).unwrap();
    std::fs::write(dir.join(".clnrm/config.toml"), format!("[defaults]\nimage = \"{IMAGE}\"\npull = \"never\"\n"))
        .unwrap();
    std::fs::create_dir_all(dir.join("scenarios")).unwrap();
    for i in 0..n {
        let body = format!("[scenario]\nname = \"s{i:03}\"\n\n[[steps]]\nname = \"echo\"\nrun = [\"echo\", \"hi\"]\n");
        std::fs::write(dir.join(format!("scenarios/s{i:03}.clnrm.toml")), body).unwrap();
    }
}

fn clnrm(bin: &str, dir: &Path, args: &[&str]) {
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(out.status.success(), "clnrm {args:?}: {}", String::from_utf8_lossy(&out.stdout));
}

fn sh(script: &str) {
    let status = Command::new("sh").args(["-c", script]).status().unwrap();
    assert!(status.success(), "{script}");
}

fn timed(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

fn median(samples: &[Duration]) -> Duration {
    percentile(samples, 0.5)
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ratio(a: &[Duration], b: &[Duration]) -> f64 {
    median(a).as_secs_f64() / median(b).as_secs_f64()
}

fn show(d: Duration) -> String {
    clnrm::duration::display(d)
}
