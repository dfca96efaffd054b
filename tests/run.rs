//! `clnrm run` against the real engine: features, and every fault the issue names. Each test ends
//! by checking that nothing of its project is left on the engine.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Project, engine_available, finish, signal};

macro_rules! require_engine {
    () => {
        if !engine_available() {
            return;
        }
    };
}

#[test]
fn steps_run_with_exact_argv_env_workdir_and_files_carry_over() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "steps",
        r#"
[[steps]]
name = "argv is passed exactly, quoting kept"
run = ["sh", "-c", "printf '[%s]' \"$@\"", "sh", "a b", "*", "$HOME"]
expect = { stdout = '^\[a b\]\[\*\]\[\$HOME\]$' }

[[steps]]
name = "a string runs under sh -c"
run = "echo one; echo two >&2; test -d /tmp"
expect = { stdout = "^one$", stderr = "^two$" }

[[steps]]
name = "env and workdir"
run = "echo \"$GREETING from $(pwd)\" > /tmp/said"
env = { GREETING = "hi" }
workdir = "/root"

[[steps]]
name = "the file is still there"
run = ["cat", "/tmp/said"]
expect = { stdout = '^hi from /root$' }

[[steps]]
name = "an expected non-zero exit"
run = ["sh", "-c", "exit 7"]
expect = { exit = 7 }
"#,
    );
    p.clnrm(&["run"]).success().stdout_has("PASS [").stdout_has("] steps").stdout_has("1 scenario: 1 passed");
    p.assert_clean();
}

#[test]
fn failures_name_the_step_the_expectation_and_show_the_output_tail() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "broken",
        r#"
[[steps]]
name = "prints a lot then fails"
run = "seq 1 500; echo boom >&2; exit 3"

[[steps]]
name = "never runs"
run = ["true"]
"#,
    );
    p.scenario("fine", "[[steps]]\nname = \"ok\"\nrun = [\"true\"]\n");
    let out = p.clnrm(&["run", "--report", "junit=out/junit.xml", "--report", "json=out/run.json"]);
    out.code(1)
        .stdout_has("FAIL [")
        .stdout_has("PASS [")
        .stdout_has("step `prints a lot then fails`: expected exit code 0, got 3")
        .stdout_has("│ 500")
        .stdout_has("│ boom")
        .stdout_has("1 passed, 1 failed");
    assert!(!out.stdout.contains("│ 1\n"), "only the tail is shown");

    let junit = p.read("out/junit.xml");
    assert!(junit.contains("<testcase name=\"broken\""), "{junit}");
    assert!(
        junit.contains("<failure message=\"step `prints a lot then fails`: expected exit code 0, got 3\""),
        "{junit}"
    );
    assert!(junit.contains("<testcase name=\"fine\""), "{junit}");
    let json: serde_json::Value = serde_json::from_str(&p.read("out/run.json")).unwrap();
    assert_eq!(json["exit_code"], 1);
    assert_eq!(json["summary"]["failed"], 1);
    let broken = json["scenarios"].as_array().unwrap().iter().find(|s| s["name"] == "broken").unwrap();
    assert_eq!(broken["steps"][0]["exit_code"], 3);
    assert_eq!(broken["steps"][1]["status"], "not_run");
    p.assert_clean();
}

#[test]
fn continue_on_failure_runs_the_rest_but_still_fails() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "cont",
        "[[steps]]\nname = \"bad\"\nrun = [\"false\"]\ncontinue_on_failure = true\n\n[[steps]]\nname = \"after\"\nrun = \"echo still here\"\nexpect = { stdout = \"still here\" }\n",
    );
    let out = p.clnrm(&["run", "--report", "json=r.json"]);
    out.code(1).stdout_has("step `bad`: expected exit code 0, got 1");
    let json: serde_json::Value = serde_json::from_str(&p.read("r.json")).unwrap();
    assert_eq!(json["scenarios"][0]["steps"][1]["status"], "passed");
    p.assert_clean();
}

#[test]
fn a_step_that_hangs_past_its_timeout_is_killed_and_others_go_on() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("hangs", "[[steps]]\nname = \"forever\"\nrun = [\"sleep\", \"600\"]\ntimeout = \"1s\"\n");
    p.scenario("quick", "[[steps]]\nname = \"ok\"\nrun = [\"true\"]\n");
    let started = Instant::now();
    p.clnrm(&["run", "-j", "2"])
        .code(1)
        .stdout_has("TIMEOUT [")
        .stdout_has("step `forever`: ran past its timeout of 1.00s; its container was killed")
        .stdout_has("1 passed, 1 timed out");
    assert!(started.elapsed() < Duration::from_secs(30), "the timeout was enforced while waiting");
    p.assert_clean();
}

/// The engine cannot kill one exec, only its container: a step run inside a service that hangs
/// must fail as that step's timeout, not kill the service and be reported as a service that died.
#[test]
fn a_step_in_a_service_past_its_timeout_fails_as_the_step_and_leaves_the_service_be() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "hangs-in-service",
        "[services.worker]\nimage = \"clnrm-fixture:busybox\"\ncommand = [\"sleep\", \"3600\"]\n\n[[steps]]\nname = \"forever\"\nservice = \"worker\"\nrun = [\"sleep\", \"600\"]\ntimeout = \"1s\"\n",
    );
    p.clnrm(&["run"])
        .code(1)
        .stdout_has("TIMEOUT [")
        .stdout_has("step `forever`: ran past its timeout of 1.00s; its command was left to the scenario's end")
        .stdout_lacks("service `worker`")
        .stdout_lacks("killed");
    p.assert_clean();
}

/// A single-use step container is fed its first step on standard input: the step must get exactly
/// its argv, environment and directory, and its verdict must come from its own process, never from
/// what a background process writes later, a forged end marker, or a signal to the container's
/// first process.
#[test]
fn a_fed_first_step_is_judged_by_its_own_process_alone() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "exact",
        r#"
[[steps]]
name = "argv, env and workdir"
run = ["sh", "-c", "printf '[%s][%s][%s]' \"$1\" \"$QUOTED\" \"$(pwd)\"", "sh", "it's \"$HOME\" *"]
env = { QUOTED = "a'b\nc $x `y`" }
workdir = "/tmp"
"#,
    );
    p.scenario(
        "late-output",
        "[[steps]]\nname = \"bg\"\nrun = \"(sleep 1; echo LATE; echo LATE >&2) & echo now\"\nexpect = { stdout = \"LATE\" }\n",
    );
    p.scenario(
        "forged",
        "[[steps]]\nname = \"forges\"\nrun = \"echo 0123456789abcdef0123456789abcdef 0; echo 0123456789abcdef0123456789abcdef 0 >&2; kill -TERM 1; kill -KILL 1; exit 4\"\n",
    );
    p.scenario("missing", "[[steps]]\nname = \"nothing\"\nrun = [\"no-such-command\"]\n");
    let out = p.clnrm(&["run", "-j", "4", "--report", "json=r.json"]);
    out.code(1).stdout_has("1 passed, 3 failed");
    let json: serde_json::Value = serde_json::from_str(&p.read("r.json")).unwrap();
    let step = |name: &str| {
        let scenario = json["scenarios"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap();
        scenario["steps"][0].clone()
    };
    let exact = step("exact");
    assert_eq!(exact["status"], "passed", "{}", out.stdout);
    assert_eq!(exact["stdout"], "[it's \"$HOME\" *][a'b\nc $x `y`][/tmp]");
    let late = step("late-output");
    assert_eq!(late["status"], "failed");
    assert_eq!(late["stdout"], "now\n", "a background process's later output is no step's");
    assert_eq!(late["stderr"], "");
    assert!(late["duration_ms"].as_f64().unwrap() < 900.0, "the step ended with its process: {late}");
    let forged = step("forged");
    assert_eq!(forged["exit_code"], 4, "{forged}");
    assert!(forged["stdout"].as_str().unwrap().contains("0123456789abcdef"), "{forged}");
    let missing = step("missing");
    assert_eq!(missing["exit_code"], 127, "{missing}");
    assert!(missing["stderr"].as_str().unwrap().contains("not found"), "{missing}");
    p.assert_clean();
}

#[test]
fn a_scenario_timeout_is_enforced_while_waiting() {
    require_engine!();
    let p = Project::with_fixture();
    p.write(
        "scenarios/slow.clnrm.toml",
        "[scenario]\nname = \"slow\"\ntimeout = \"1500ms\"\n\n[[steps]]\nname = \"a\"\nrun = [\"sleep\", \"1\"]\n\n[[steps]]\nname = \"b\"\nrun = [\"sleep\", \"600\"]\n",
    );
    p.clnrm(&["run"])
        .code(1)
        .stdout_has("TIMEOUT [")
        .stdout_has("scenario: the scenario ran past its timeout of 1.50s");
    p.assert_clean();
}

#[test]
fn a_container_killed_from_outside_fails_its_scenario_clearly() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("victim", "[[steps]]\nname = \"waits\"\nrun = [\"sleep\", \"60\"]\n");
    p.scenario("bystander", "[[steps]]\nname = \"ok\"\nrun = [\"sleep\", \"2\"]\n");
    let child = p.spawn(&["run", "-j", "2"]);
    // Kill the step container running `sleep 60` once it is there.
    let label = format!("label=clnrm.project={}", p.path().display());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("docker")
            .args(["ps", "--filter", &label, "--format", "{{.Names}} {{.Command}}"])
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout).into_owned();
        let top = |name: &str| {
            Command::new("docker")
                .args(["top", name])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("sleep 60"))
                .unwrap_or(false)
        };
        if let Some(name) = listing
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.contains("-step-"))
            .find(|n| top(n))
        {
            Command::new("docker").args(["kill", name]).output().unwrap();
            break;
        }
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = finish(child);
    out.code(1)
        .stdout_has("step `waits`: its container stopped while the step ran (exit code 137: killed)")
        .stdout_has("PASS [")
        .stdout_has("1 passed, 1 failed");
    p.assert_clean();
}

#[test]
fn services_start_in_order_with_every_wait_strategy_and_are_reachable_by_name() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "services",
        r#"
[services.db]
image = "clnrm-fixture:busybox"
command = ["sh", "-c", "echo starting; sleep 0.3; echo database system is ready; exec sleep 3600"]
wait = { log = "database system is ready", timeout = "20s" }

[services.api]
image = "clnrm-fixture:busybox"
command = "mkdir -p /www/health && echo up > /www/health/index.html && exec httpd -f -p 8080 -h /www"
ports = [8080]
wait = { http = { port = 8080, path = "/health/" }, timeout = "20s" }
depends_on = ["db"]

[services.tcp]
image = "clnrm-fixture:busybox"
command = ["sh", "-c", "exec nc -ll -p 9000 -e echo hi"]
ports = [9000]
wait = { port = 9000, timeout = "20s" }

[services.worker]
image = "clnrm-fixture:busybox"
command = ["sh", "-c", "sleep 0.5; touch /tmp/ready; exec sleep 3600"]
wait = { exec = ["test", "-f", "/tmp/ready"], timeout = "20s" }
env = { ROLE = "worker" }

[[steps]]
name = "reach the api by name"
run = ["wget", "-qO-", "http://api:8080/health/index.html"]
expect = { stdout = "^up$" }

[[steps]]
name = "run inside a service"
service = "worker"
run = "echo $ROLE; ls /tmp/ready"
expect = { stdout = "^worker$" }
"#,
    );
    p.clnrm(&["run"]).success().stdout_has("1 passed");
    p.assert_clean();
}

/// An `exec` probe that hangs (a loaded machine can stall an exec for seconds) counts as not ready
/// and the next probe is tried; it never kills the service it probes.
#[test]
fn a_wait_probe_that_hangs_is_tried_again_and_its_service_lives_on() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "slow-probe",
        r#"[services.worker]
image = "clnrm-fixture:busybox"
command = ["sleep", "3600"]
# The first probe hangs past a probe's timeout (10s); the next answers at once.
wait = { exec = ["sh", "-c", "test -e /tmp/probed && exit 0; touch /tmp/probed; exec sleep 60"], timeout = "40s" }

[[steps]]
name = "the service still runs"
service = "worker"
run = ["test", "-e", "/tmp/probed"]
"#,
    );
    p.clnrm(&["run"]).success().stdout_has("1 passed").stdout_lacks("killed");
    p.assert_clean();
}

#[test]
fn a_service_that_exits_at_start_fails_with_its_log() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "crash",
        "[services.db]\nimage = \"clnrm-fixture:busybox\"\ncommand = [\"sh\", \"-c\", \"echo fatal: no config >&2; exit 2\"]\nwait = { port = 5432, timeout = \"20s\" }\nports = [5432]\n\n[[steps]]\nname = \"s\"\nrun = [\"true\"]\n",
    );
    p.clnrm(&["run"]).code(1).stdout_has("service `db`: exited with code 2 at +").stdout_has("│ fatal: no config");
    p.assert_clean();
}

#[test]
fn a_wait_that_never_succeeds_reports_strategy_time_and_log() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "never",
        "[services.svc]\nimage = \"clnrm-fixture:busybox\"\ncommand = [\"sh\", \"-c\", \"echo booting; exec sleep 3600\"]\nwait = { log = \"^ready$\", timeout = \"1s\" }\n\n[[steps]]\nname = \"s\"\nrun = [\"true\"]\n",
    );
    p.clnrm(&["run"])
        .code(1)
        .stdout_has("service `svc`: not ready after waiting 1.")
        .stdout_has("for log line matching /^ready$/: not ready after 1.00s")
        .stdout_has("│ booting");
    p.assert_clean();
}

#[test]
fn a_missing_image_with_pull_never_is_exit_5_naming_image_and_scenario() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "ghost",
        "[[steps]]\nname = \"s\"\nimage = \"clnrm-no-such-image:1\"\npull = \"never\"\nrun = [\"true\"]\n",
    );
    p.clnrm(&["run"])
        .code(5)
        .stderr_has("image `clnrm-no-such-image:1` (needed by scenario `ghost`) is not available")
        .stderr_has("pull policy is \"never\"");
    p.assert_clean();
}

#[test]
fn an_unreachable_engine_is_exit_5_naming_the_endpoint() {
    let p = Project::with_fixture();
    p.scenario("any", "[[steps]]\nname = \"s\"\nrun = [\"true\"]\n");
    p.clnrm_env(&["run"], &[("DOCKER_HOST", "tcp://127.0.0.1:1")])
        .code(5)
        .stderr_has("cannot reach the container engine at tcp://127.0.0.1:1")
        .stderr_has("Check that DOCKER_HOST");
    p.clnrm_env(&["run"], &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")])
        .code(5)
        .stderr_has("unix:///nonexistent/docker.sock")
        .stderr_has("docker info");
}

#[test]
fn ctrl_c_with_four_scenarios_in_flight_removes_everything_and_exits_130() {
    require_engine!();
    let p = Project::with_fixture();
    for i in 0..4 {
        p.scenario(&format!("long-{i}"), "[services.s]\nimage = \"clnrm-fixture:busybox\"\ncommand = [\"sleep\", \"601\"]\n\n[[steps]]\nname = \"wait\"\nrun = [\"sleep\", \"600\"]\n");
    }
    let child = p.spawn(&["run", "-j", "4"]);
    wait_for_steps(&p, 4);
    signal(&child, "INT");
    let started = Instant::now();
    let out = finish(child);
    out.code(130).stdout_has("interrupted");
    assert!(started.elapsed() < Duration::from_secs(30), "cleanup took {:?}", started.elapsed());
    p.assert_clean();
}

#[test]
fn sigterm_sighup_and_sigquit_remove_everything_and_exit_128_plus_the_signal() {
    require_engine!();
    // SIGHUP (a closed terminal) used to end `run` at once, leaving its containers and networks.
    for (name, code) in [("TERM", 143), ("HUP", 129), ("QUIT", 131)] {
        let p = Project::with_fixture();
        p.scenario("long", "[services.s]\nimage = \"clnrm-fixture:busybox\"\ncommand = [\"sleep\", \"601\"]\n\n[[steps]]\nname = \"wait\"\nrun = [\"sleep\", \"600\"]\n");
        let child = p.spawn(&["run", "--report", "json=r.json"]);
        wait_for_steps(&p, 1);
        signal(&child, name);
        // The scenario in flight is reported as interrupted, not dropped from the count (issue 13, 6).
        finish(child)
            .code(code)
            .stdout_has("STOPPED [")
            .stdout_has("1 scenario: 0 passed, 1 interrupted")
            .stdout_has("interrupted: scheduling stopped");
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("r.json")).unwrap()).unwrap();
        assert_eq!(json["summary"]["interrupted"], true);
        assert_eq!(json["summary"]["interrupted_scenarios"], 1);
        assert_eq!(json["scenarios"][0]["status"], "interrupted");
        p.assert_clean();
    }
}

#[test]
fn a_signal_while_the_run_starts_still_removes_everything() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("long", "[[steps]]\nname = \"wait\"\nrun = [\"sleep\", \"600\"]\n");
    let child = p.spawn(&["run"]);
    // The run's network is the first thing it makes; signal as soon as it exists.
    let label = format!("label=clnrm.project={}", p.path().display());
    let deadline = Instant::now() + Duration::from_secs(30);
    while Command::new("docker").args(["network", "ls", "-q", "--filter", &label]).output().unwrap().stdout.is_empty() {
        assert!(Instant::now() < deadline, "the run made no network");
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(&child, "HUP");
    finish(child).code(129);
    p.assert_clean();
}

#[test]
fn leftovers_of_a_run_killed_with_sigkill_are_swept_by_the_next_start() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("long", "[services.s]\nimage = \"clnrm-fixture:busybox\"\ncommand = [\"sleep\", \"601\"]\n\n[[steps]]\nname = \"wait\"\nrun = [\"sleep\", \"600\"]\n");
    let child = p.spawn(&["run"]);
    wait_for_steps(&p, 1);
    signal(&child, "KILL");
    let _ = child.wait_with_output();
    let (containers, networks) = p.leftovers();
    assert!(!containers.is_empty(), "kill -9 leaves containers behind for the sweep to find");

    std::fs::remove_file(p.join("scenarios/long.clnrm.toml")).unwrap();
    p.scenario("quick", "[[steps]]\nname = \"ok\"\nrun = [\"true\"]\n");
    // The sweep says what it removed, and the JSON report counts it.
    let report = p.join("report.json");
    p.clnrm(&["run", "--report", &format!("json={}", report.display())]).success().stdout_has(&format!(
        "note: removed {} and {} left by an earlier run of clnrm",
        count(containers.len(), "container"),
        count(networks.len(), "network")
    ));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["summary"]["swept"]["runs"], 1);
    assert_eq!(json["summary"]["swept"]["containers"], containers.len());
    assert_eq!(json["summary"]["swept"]["networks"], networks.len());
    // Nothing was left to sweep the next time.
    p.clnrm(&["run", "--force"]).success().stdout_lacks("left by");
    p.assert_clean();
}

#[test]
fn unchanged_passing_scenarios_are_cached_and_force_reruns_them() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("a", "[[steps]]\nname = \"s\"\nrun = [\"true\"]\n");
    p.scenario("b", "[[steps]]\nname = \"s\"\nrun = [\"false\"]\n");
    // Recording a baseline keys the verdict with it, so the next run is a hit at once.
    p.clnrm(&["run", "--update-baselines"]).code(1);
    p.clnrm(&["run"]).code(1).stdout_has("CACHED             a").stdout_has("FAIL [");
    p.clnrm(&["run", "--force", "--filter", "^a$"]).success().stdout_has("PASS [");
    // A changed scenario runs again (and its renamed step breaks its baseline).
    p.scenario("a", "[[steps]]\nname = \"s changed\"\nrun = [\"true\"]\n");
    p.clnrm(&["run", "--filter", "^a$"]).code(4).stdout_has("REGRESS [");
    p.assert_clean();
}

#[test]
fn filter_tag_and_shard_select_scenarios() {
    require_engine!();
    let p = Project::with_fixture();
    for (name, tag) in [("alpha", "smoke"), ("beta", "slow"), ("gamma", "smoke")] {
        p.write(
            &format!("scenarios/{name}.clnrm.toml"),
            format!("[scenario]\nname = \"{name}\"\ntags = [\"{tag}\"]\n\n[[steps]]\nname = \"s\"\nrun = [\"true\"]\n"),
        );
    }
    let names = |out: &common::Output| {
        let mut n: Vec<String> = out
            .stdout
            .lines()
            .filter(|l| l.contains("PASS ["))
            .filter_map(|l| l.split_whitespace().last().map(str::to_string))
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(p.clnrm(&["run", "--force", "--tag", "smoke"]).success()), ["alpha", "gamma"]);
    assert_eq!(names(p.clnrm(&["run", "--force", "--filter", "^b"]).success()), ["beta"]);
    let mut all: Vec<String> = (1..=3)
        .flat_map(|k| names(p.clnrm(&["run", "--force", "--shard", &format!("{k}/3")]).success_or_6()))
        .collect();
    all.sort();
    assert_eq!(all, ["alpha", "beta", "gamma"], "shards partition the suite");
    p.clnrm(&["run", "--filter", "nothing-matches"]).code(6);
    p.clnrm(&["run", "--shard", "4/3"]).code(2);
    p.assert_clean();
}

#[test]
fn fail_fast_stops_scheduling_after_the_first_failure() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("a-fails", "[[steps]]\nname = \"s\"\nrun = [\"false\"]\n");
    for name in ["b", "c", "d"] {
        p.scenario(name, "[[steps]]\nname = \"s\"\nrun = [\"true\"]\n");
    }
    p.clnrm(&["run", "-j", "1", "--fail-fast"]).code(1).stdout_has("SKIP").stdout_has("1 failed, 3 skipped");
    p.assert_clean();
}

#[test]
fn reuse_recycles_step_containers() {
    require_engine!();
    let p = Project::with_fixture();
    for i in 0..4 {
        p.scenario(&format!("r{i}"), "[[steps]]\nname = \"count\"\nrun = \"echo x >> /tmp/runs; wc -l < /tmp/runs\"\n");
    }
    let out = p.clnrm(&["run", "-j", "1", "--reuse", "--report", "json=r.json"]);
    out.success();
    let json: serde_json::Value = serde_json::from_str(&p.read("r.json")).unwrap();
    let counts: Vec<String> = json["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["steps"][0]["stdout"].as_str().unwrap().trim().to_string())
        .collect();
    assert!(counts.iter().any(|c| c != "1"), "with reuse a later scenario sees earlier files: {counts:?}");
    assert!(json["pool"]["hits"].as_u64().unwrap() >= 2, "{}", json["pool"]);

    // Single-use (the default): every scenario starts from a fresh container.
    let out = p.clnrm(&["run", "-j", "1", "--force", "--report", "json=s.json"]);
    out.success();
    let json: serde_json::Value = serde_json::from_str(&p.read("s.json")).unwrap();
    for scenario in json["scenarios"].as_array().unwrap() {
        assert_eq!(scenario["steps"][0]["stdout"].as_str().unwrap().trim(), "1", "fresh containers");
    }
    p.assert_clean();
}

#[test]
fn build_contexts_are_built_once_and_rebuilt_when_changed() {
    require_engine!();
    let p = Project::with_fixture();
    // Content unique to this test run, so the engine cannot already hold an image of it.
    let nonce = p.path().display().to_string();
    p.write("build-test-app/Dockerfile", "FROM clnrm-fixture:busybox\nCOPY message /message\n");
    p.write("build-test-app/message", format!("version one {nonce}\n"));
    p.write(
        "scenarios/built.clnrm.toml",
        "[scenario]\nname = \"built\"\n\n[[steps]]\nname = \"s\"\nbuild = \"../build-test-app\"\nrun = [\"cat\", \"/message\"]\nexpect = { stdout = \"version one\" }\n",
    );
    p.clnrm(&["run"]).success().stdout_has("BUILT clnrm-build/build-test-app:");
    p.clnrm(&["run", "--force"]).success().stdout_lacks("BUILT");
    p.write("build-test-app/message", format!("version two {nonce}\n"));
    p.clnrm(&["run"]).code(1).stdout_has("BUILT").stdout_has("does not match /version one/");
    p.write("build-test-app/Dockerfile", "FROM clnrm-fixture:busybox\nRUN false\n");
    p.clnrm(&["run"]).code(5).stderr_has("cannot build").stderr_has("(needed by scenario `built`)");
    p.assert_clean();
    remove_built_images();
}

/// Removes the images built from directories named `build-test-app` (only that test uses the name).
fn remove_built_images() {
    let images = Command::new("docker").args(["images", "-q", "clnrm-build/build-test-app"]).output().unwrap();
    for id in String::from_utf8_lossy(&images.stdout).lines() {
        let _ = Command::new("docker").args(["rmi", "-f", id]).output();
    }
}

#[test]
fn pull_reports_every_image() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("a", "[[steps]]\nname = \"s\"\nrun = [\"true\"]\n");
    p.scenario("b", "[[steps]]\nname = \"s\"\nimage = \"clnrm-no-such-image:2\"\nrun = [\"true\"]\n");
    p.clnrm(&["pull"])
        .code(5)
        .stdout_has("present clnrm-fixture:busybox")
        .stdout_has("unavailable image `clnrm-no-such-image:2` (needed by scenario `b`)");
}

#[test]
fn invalid_scenarios_run_nothing() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("ok", "[[steps]]\nname = \"s\"\nrun = [\"true\"]\n");
    p.scenario("bad", "[[steps]]\nnmae = \"s\"\nrun = [\"true\"]\n");
    p.clnrm(&["run"]).code(3).stderr_has("unknown key `nmae`").stdout_lacks("PASS");
    p.assert_clean();
}

/// Waits until `n` step commands (`sleep 600`) run in this project's containers.
fn wait_for_steps(p: &Project, n: usize) {
    let label = format!("label=clnrm.project={}", p.path().display());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new("docker").args(["ps", "-q", "--filter", &label]).output().unwrap();
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
        let running = ids
            .iter()
            .filter(|id| {
                let top = Command::new("docker").args(["top", id]).output().unwrap();
                String::from_utf8_lossy(&top.stdout).lines().filter(|l| l.contains("sleep 600")).count() > 0
            })
            .count();
        // Each scenario in these tests holds `sleep 600` in its step container (and maybe a service).
        if running >= n {
            std::thread::sleep(Duration::from_millis(300));
            return;
        }
        assert!(Instant::now() < deadline, "only {running} of {n} steps started");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_deliberately_failing_example_fails_with_a_clear_message() {
    require_engine!();
    let p = Project::with_fixture();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/failing/wrong-greeting.clnrm.toml");
    p.write("scenarios/wrong-greeting.clnrm.toml", std::fs::read_to_string(example).unwrap());
    p.clnrm(&["run"])
        .code(1)
        .stdout_has("FAIL [")
        .stdout_has("step `greet`: stdout does not match /goodbye/")
        .stdout_has("│ hello");
    p.assert_clean();
}

#[test]
fn scenarios_with_different_images_and_steps_in_two_images_share_the_pool() {
    require_engine!();
    let p = Project::with_fixture();
    // A second image, built locally (its tag follows its content, so it is shared by all test runs).
    p.write("other-image/Dockerfile", "FROM clnrm-fixture:busybox\nRUN echo other > /which\n");
    let other = "build = \"../other-image\"";
    p.scenario("plain-1", "[[steps]]\nname = \"s\"\nrun = [\"true\"]\n");
    p.scenario(
        "other-1",
        &format!("[[steps]]\nname = \"s\"\n{other}\nrun = [\"cat\", \"/which\"]\nexpect = {{ stdout = \"other\" }}\n"),
    );
    p.scenario(
        "both",
        &format!("[[steps]]\nname = \"in busybox\"\nrun = \"test ! -e /which\"\n\n[[steps]]\nname = \"in other\"\n{other}\nrun = [\"cat\", \"/which\"]\n"),
    );
    p.scenario("plain-2", "[[steps]]\nname = \"s\"\nrun = [\"true\"]\n");
    p.scenario("other-2", &format!("[[steps]]\nname = \"s\"\n{other}\nrun = [\"true\"]\n"));
    for jobs in ["1", "2"] {
        p.clnrm(&["run", "--force", "-j", jobs]).success().stdout_has("5 scenarios: 5 passed");
    }
    p.clnrm(&["run", "--force", "-j", "1", "--reuse"]).success().stdout_has("5 passed");
    p.assert_clean();
}

#[test]
fn the_healthy_wait_follows_the_image_healthcheck() {
    require_engine!();
    let p = Project::with_fixture();
    p.write(
        "healthy-image/Dockerfile",
        "FROM clnrm-fixture:busybox\nHEALTHCHECK --interval=1s --timeout=1s --retries=30 CMD test -f /tmp/ready\n",
    );
    p.scenario(
        "healthy",
        "[services.app]\nbuild = \"../healthy-image\"\ncommand = [\"sh\", \"-c\", \"sleep 1; touch /tmp/ready; exec sleep 600\"]\nwait = { healthy = true, timeout = \"30s\" }\n\n[[steps]]\nname = \"after\"\nservice = \"app\"\nrun = [\"test\", \"-f\", \"/tmp/ready\"]\n",
    );
    p.scenario(
        "no-check",
        "[services.app]\nimage = \"clnrm-fixture:busybox\"\ncommand = [\"sleep\", \"600\"]\nwait = { healthy = true, timeout = \"30s\" }\n\n[[steps]]\nname = \"s\"\nrun = [\"true\"]\n",
    );
    p.clnrm(&["run"])
        .code(1)
        .stdout_has("PASS [")
        .stdout_has("service `app`: not ready after waiting")
        .stdout_has("the image defines no HEALTHCHECK; use another wait strategy");
    p.assert_clean();
}

#[test]
fn the_projects_own_examples_run_and_pass() {
    require_engine!();
    let p = Project::empty();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["scenarios", "templates", ".clnrm"] {
        copy_tree(&root.join(dir), &p.join(dir));
    }
    let _ = std::fs::remove_dir_all(p.join(".clnrm/cache"));
    let files = Command::new("sh")
        .arg("-c")
        .arg("find scenarios -name '*.clnrm.toml' | wc -l")
        .current_dir(p.path())
        .output()
        .unwrap();
    let n: usize = String::from_utf8_lossy(&files.stdout).trim().parse().unwrap();
    assert!(n >= 4, "the examples are there");
    p.clnrm(&["run", "--force"]).success().stdout_has(&format!("{n} scenarios: {n} passed")).stdout_lacks("FAIL");
    p.assert_clean();
}

fn count(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
