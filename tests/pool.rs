//! The warm pool through the library, against the real engine: warm hand-out, idle expiry and
//! the hush of a run measured alone (which a short `clnrm run` cannot show).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clnrm::engine::cleanup::{self, Registry};
use clnrm::engine::container;
use clnrm::engine::pool::{Pool, Settings};
use clnrm::engine::{Engine, RunIdentity};

const IMAGE: &str = "clnrm-fixture:busybox";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

async fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A pool warming for `demand` on a network of its own, with the engine and registry to stop it.
async fn start(project: &common::Project, settings: Settings, demand: Vec<String>) -> (Engine, Registry, Arc<Pool>) {
    let engine = Engine::connect(RunIdentity::current(project.path())).await.unwrap();
    let registry = Registry::default();
    let network = engine.name("net", "test");
    container::create_network(&engine, &registry, &network, "test", container::Reach::HostOnly).await.unwrap();
    let pool = Pool::start(engine.clone(), registry.clone(), settings, demand, network);
    (engine, registry, pool)
}

/// Two lanes, two containers ahead, single-use, nothing kept warm: a run's pool.
const TWO_LANES: Settings =
    Settings { lanes: 2, ahead: 2, reuse: false, keep_warm: false, ttl: Duration::from_secs(60) };

/// Stops the pool and removes everything it and the test made.
async fn stop(engine: &Engine, registry: &Registry, pool: &Pool) {
    pool.shutdown().await;
    registry.remove_all(engine).await;
    cleanup::remove_run(engine).await;
}

#[test]
fn a_warm_lane_is_handed_out_at_once_and_idle_lanes_expire() {
    if !common::engine_available() {
        return;
    }
    let project = common::Project::empty();
    runtime().block_on(async {
        let settings = Settings { lanes: 1, ahead: 1, reuse: false, keep_warm: true, ttl: Duration::from_secs(2) };
        let (engine, registry, pool) = start(&project, settings, vec![IMAGE.to_string()]).await;
        wait_until("a warm lane", || pool.ready() == 1).await;

        let started = Instant::now();
        let lease = pool.acquire("first", &[IMAGE.to_string()]).await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(5), "warm acquire took {:?}", started.elapsed());
        assert_eq!(pool.stats().hits, 1);
        pool.release(lease, false).await;

        // Kept warm: the lane gets a fresh container although nothing is announced; nobody takes
        // it, and after the TTL the idle lane and its container are gone.
        wait_until("the lane to be ready again", || pool.ready() == 1).await;
        let alive = || project.leftovers().0.len();
        assert!(alive() >= 2, "a lane and its warm container");
        wait_until("idle expiry", || pool.ready() == 0 && alive() == 0).await;

        stop(&engine, &registry, &pool).await;
    });
    project.assert_clean();
}

#[test]
fn a_hushed_pool_makes_nothing_ahead_but_serves_who_asks() {
    if !common::engine_available() {
        return;
    }
    let project = common::Project::empty();
    runtime().block_on(async {
        let (engine, registry, pool) = start(&project, TWO_LANES, Vec::new()).await;
        let alive = || project.leftovers().0.len();

        // Hushed, announced scenarios get nothing made for them.
        let hushed = pool.hush(None);
        pool.announce([IMAGE.to_string(), IMAGE.to_string(), IMAGE.to_string()]);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!pool.busy(), "the pool works while hushed");
        assert_eq!(alive(), 0, "containers made while hushed");

        // One that asks is served all the same, by a lane made for it (a miss).
        let lease = pool.acquire("asks", &[IMAGE.to_string()]).await.unwrap();
        assert_eq!((pool.stats().hits, pool.stats().misses), (0, 1));
        assert_eq!(alive(), 2, "its lane and step container, nothing ahead");
        pool.release(lease, false).await;
        wait_until("the used lane to be ended", || !pool.busy()).await;
        assert_eq!(pool.ready(), 0, "warmed while hushed");

        // The hush lifted, the two scenarios still announced are warmed for.
        drop(hushed);
        wait_until("warming to resume", || pool.ready() == 2).await;
        let lease = pool.acquire("next", &[IMAGE.to_string()]).await.unwrap();
        assert_eq!(pool.stats().hits, 1);
        pool.release(lease, false).await;

        stop(&engine, &registry, &pool).await;
    });
    project.assert_clean();
}

/// A run to be measured alone has its container made while the pool is hushed, before its
/// measurement starts (which waits for an idle pool): served at once, and nothing else is made.
#[test]
fn a_pool_hushed_for_a_measured_run_makes_its_container_and_nothing_more() {
    if !common::engine_available() {
        return;
    }
    let project = common::Project::empty();
    runtime().block_on(async {
        let (engine, registry, pool) = start(&project, TWO_LANES, Vec::new()).await;
        let alive = || project.leftovers().0.len();

        let hushed = pool.hush(Some(IMAGE.to_string()));
        pool.announce([IMAGE.to_string(), IMAGE.to_string(), IMAGE.to_string()]);
        wait_until("the measured run's container", || pool.ready() == 1 && !pool.busy()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(alive(), 2, "one lane and its step container, nothing ahead for the others");

        let lease = pool.acquire("measured", &[IMAGE.to_string()]).await.unwrap();
        assert_eq!((pool.stats().hits, pool.stats().misses), (1, 0));
        pool.release(lease, false).await;
        drop(hushed);

        stop(&engine, &registry, &pool).await;
    });
    project.assert_clean();
}
