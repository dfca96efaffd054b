//! The warm pool through the library, against the real engine: warm hand-out, and idle expiry
//! (which a short `clnrm run` cannot show).

mod common;

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

#[test]
fn a_warm_lane_is_handed_out_at_once_and_idle_lanes_expire() {
    if !common::engine_available() {
        return;
    }
    let project = common::Project::empty();
    runtime().block_on(async {
        let engine = Engine::connect(RunIdentity::current(project.path())).await.unwrap();
        let registry = Registry::default();
        let settings = Settings { lanes: 1, ahead: 1, reuse: false, keep_warm: true, ttl: Duration::from_secs(2) };
        let network = engine.name("net", "test");
        container::create_network(&engine, &registry, &network, "test", container::Reach::HostOnly).await.unwrap();
        let pool = Pool::start(engine.clone(), registry.clone(), settings, vec![IMAGE.to_string()], network);
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

        pool.shutdown().await;
        registry.remove_all(&engine).await;
        cleanup::remove_run(&engine).await;
    });
    project.assert_clean();
}
