//! `clnrm gc` removes everything clnrm created. Alone in its test binary: cargo runs test binaries
//! one at a time, so no other test's containers are on the engine while it runs.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Project, engine_available};

#[test]
fn gc_removes_every_clnrm_container_and_network() {
    if !engine_available() {
        return;
    }
    let p = Project::with_fixture();
    p.scenario("long", "[services.s]\nimage = \"clnrm-fixture:busybox\"\ncommand = [\"sleep\", \"601\"]\n\n[[steps]]\nname = \"w\"\nrun = [\"sleep\", \"600\"]\n");
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_clnrm")).arg("run").current_dir(p.path()).env_clear().spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while p.leftovers().0.len() < 3 {
        assert!(Instant::now() < deadline, "the run never started its containers");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!p.leftovers().0.is_empty());

    let out = p.clnrm(&["gc"]);
    out.success().stdout_has("gc: removed");
    p.assert_clean();
    let all = Command::new("docker").args(["ps", "-aq", "--filter", "label=clnrm.managed-by=clnrm"]).output().unwrap();
    assert!(all.stdout.is_empty(), "gc leaves no clnrm container anywhere");
    p.clnrm(&["gc"]).success().stdout_has("removed 0 containers and 0 networks of 0 runs");
}
