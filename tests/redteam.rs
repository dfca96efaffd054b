//! The red-team suite: scenarios written to get a verdict they do not deserve, faults injected
//! while clnrm runs, and hostile input, each through the real binary. Every test here failed (a
//! false PASS, a lost span, a crash or a leak) on the code before its fix, or guards an attempt that
//! must keep failing.

mod common;

use common::{Project, engine_available};

macro_rules! require_engine {
    () => {
        if !engine_available() {
            return;
        }
    };
}

/// A step that sends `n` OTLP/HTTP JSON requests, one span each (named `hc-<i>`, below the step's
/// span, with status `status`), through busybox `nc`, which shuts down its write side once its
/// input is sent and then reads the answer. Prints how many requests were answered 200.
fn half_closing_step(n: u32, status: u32) -> String {
    format!(
        r#"[[steps]]
name = "send"
run = '''
endpoint=${{OTEL_EXPORTER_OTLP_ENDPOINT#http://}}
t=${{TRACEPARENT#00-}}; trace=${{t%%-*}}; rest=${{t#*-}}; parent=${{rest%%-*}}
answered=0
i=1
while [ $i -le {n} ]; do
  body='{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"'$trace'","spanId":"'$(printf %016x $i)'","parentSpanId":"'$parent'","name":"hc-'$i'","startTimeUnixNano":"1","endTimeUnixNano":"2","status":{{"code":{status}}}}}]}}]}}]}}'
  printf 'POST /v1/traces HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' $(printf %s "$body" | wc -c) "$body" \
    | nc ${{endpoint%:*}} ${{endpoint##*:}} > answer
  grep -q '^HTTP/1.1 200' answer && answered=$((answered + 1))
  i=$((i + 1))
done
echo "answered $answered"
'''
"#
    )
}

/// Defect 1: the receiver dropped about one request in ten from clients that half-close, losing
/// their spans. 200 such requests from 8 scenarios running in parallel must all be answered and
/// all reach their scenario.
#[test]
fn half_closing_clients_lose_no_span() {
    require_engine!();
    let p = Project::with_fixture();
    for k in 1..=8 {
        p.scenario(
            &format!("half-close-{k}"),
            &format!(
                "{}expect = {{ stdout = 'answered 25' }}\n\n[[expect.span]]\nselect = 'span[name=~\"^hc-\"]'\ncount = 25\nparent = 'span[name=\"send\"]'\n",
                half_closing_step(25, 1)
            ),
        );
    }
    p.clnrm(&["run", "-j", "4"]).success().stdout_has("8 scenarios: 8 passed");
    p.assert_clean();
}

/// Shell that defines `send NAME TRACE PARENT STATUS RESOURCE_ATTRS SPAN_ATTRS [END]`: one span (a
/// new random id, from 1 ns to END ns, default 2) to the receiver over OTLP/HTTP JSON through
/// busybox `nc`. `new_trace` prints a random
/// trace id; `$trace` and `$parent` are the step's own, from `TRACEPARENT`.
const SENDER: &str = r#"
endpoint=${OTEL_EXPORTER_OTLP_ENDPOINT#http://}
t=${TRACEPARENT#00-}; trace=${t%%-*}; rest=${t#*-}; parent=${rest%%-*}
hexes() { head -c $1 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
new_trace() { hexes 16; }
send() {
  body='{"resourceSpans":[{"resource":{"attributes":'"$5"'},"scopeSpans":[{"spans":[{"traceId":"'$2'","spanId":"'$(hexes 8)'","parentSpanId":"'$3'","name":"'$1'","startTimeUnixNano":"1","endTimeUnixNano":"'${7:-2}'","status":{"code":'$4'},"attributes":'"$6"'}]}]}]}'
  printf 'POST /v1/traces HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' $(printf %s "$body" | wc -c) "$body" \
    | nc ${endpoint%:*} ${endpoint##*:} | grep -q '^HTTP/1.1 200' || echo "not delivered: $1" >&2
}
"#;

/// A step running `script` after [`SENDER`].
fn sending_step(name: &str, script: &str) -> String {
    format!("[[steps]]\nname = \"{name}\"\nrun = '''{SENDER}{script}'''\n")
}

/// An attribute list, as OTLP/JSON writes it.
fn attrs(pairs: &[(&str, &str)]) -> String {
    let items: Vec<String> =
        pairs.iter().map(|(k, v)| format!(r#"{{"key":"{k}","value":{{"stringValue":"{v}"}}}}"#)).collect();
    format!("[{}]", items.join(","))
}

/// The status of scenario `name` in a JSON report.
fn status_in(report: &serde_json::Value, name: &str) -> String {
    let scenarios = report["scenarios"].as_array().unwrap();
    scenarios.iter().find(|s| s["name"] == name).unwrap()["status"].as_str().unwrap().to_string()
}

const EXPECTS_A_PAYMENT: &str =
    "[[steps]]\nname = \"pay\"\nrun = [\"sleep\", \"4\"]\n\n[[expect.span]]\nselect = 'span[name=\"payment ok\"]'\n";

/// Defect 8: routing trusted the `clnrm.scenario` resource attribute, so a container of one
/// scenario could deliver the span another scenario waits for and make it pass.
#[test]
fn a_container_cannot_deliver_spans_into_another_scenario() {
    require_engine!();
    let p = Project::with_fixture();
    let posing = attrs(&[("service.name", "pay"), ("clnrm.scenario", "victim")]);
    let script = format!(
        "for i in 1 2 3 4 5 6 7 8 9 10; do send 'payment ok' $(new_trace) '' 1 '{posing}' '[]'; sleep 0.3; done"
    );
    p.scenario("attacker", &sending_step("pose as the victim", &script));
    p.scenario("victim", EXPECTS_A_PAYMENT);
    let out = p.clnrm(&["run", "-j", "2", "--report", "json=r.json"]);
    out.code(1).stdout_has("named another scenario in `clnrm.scenario`");
    let report: serde_json::Value = serde_json::from_str(&p.read("r.json")).unwrap();
    assert_eq!(status_in(&report, "victim"), "fail");
    assert_eq!(status_in(&report, "attacker"), "pass");
    assert_eq!(report["summary"]["spans_conflicting"], 10);
    p.assert_clean();
}

/// Defect 8, with `--reuse`: a process one scenario leaves running in a reused container must not
/// have its spans counted in the next scenario that container serves.
#[test]
fn a_process_left_in_a_reused_container_is_stopped_before_the_next_scenario() {
    require_engine!();
    let p = Project::with_fixture();
    let service = attrs(&[("service.name", "pay")]);
    let script = format!("(sleep 2; send 'payment ok' $(new_trace) '' 1 '{service}' '[]') > /dev/null 2>&1 &");
    p.scenario("a-leaves-a-process", &sending_step("start in the background", &script));
    p.scenario("b-expects-a-payment", EXPECTS_A_PAYMENT);
    p.clnrm(&["run", "--reuse", "-j", "1", "--report", "json=r.json"]).code(1);
    let report: serde_json::Value = serde_json::from_str(&p.read("r.json")).unwrap();
    assert_eq!(status_in(&report, "a-leaves-a-process"), "pass");
    assert_eq!(status_in(&report, "b-expects-a-payment"), "fail");
    p.assert_clean();
}

/// Defect 7: clnrm's own spans were told apart by `service.name = "clnrm"`, which any program can
/// export under, and so escaped `errors`, `spans` and `hermetic`.
#[test]
fn a_program_exporting_as_clnrm_is_still_counted_and_checked() {
    require_engine!();
    let p = Project::with_fixture();
    let clnrm = attrs(&[("service.name", "clnrm")]);
    let evil = attrs(&[("server.address", "evil.example.com")]);
    let step = sending_step("pose as clnrm", &format!("send 'GET /evil' $trace $parent 2 '{clnrm}' '{evil}'"));
    p.scenario("errors", &format!("{step}\n[expect.trace]\nerrors = 0\n"));
    p.scenario("count", &format!("{step}\n[expect.trace]\nspans = 0\n"));
    p.scenario("hermetic", &format!("{step}\n[expect.trace]\nhermetic = true\n"));
    let out = p.clnrm(&["run", "-j", "3"]);
    out.code(1).stdout_has("3 scenarios: 0 passed, 3 failed");
    out.stdout_has("expected 0 spans with status error, found 1").stdout_has("evil.example.com");
    // A hermetic failure ends with the trace, the offending span marked (issue 13, 8).
    out.stdout_has("▶ the spans naming outside peers):");
    p.assert_clean();
}

/// Defect 6: a service whose command exits passed most of the time when no wait strategy and no
/// step noticed. Every scenario of three in parallel must fail, naming the service and its code.
#[test]
fn a_service_that_exits_fails_its_scenario_every_time() {
    require_engine!();
    let p = Project::with_fixture();
    for k in 1..=3 {
        p.scenario(
            &format!("job-{k}"),
            "[services.job]\nimage = \"clnrm-fixture:busybox\"\ncommand = \"echo done; exit 0\"\n\n[[steps]]\nname = \"s\"\nrun = [\"sleep\", \"1\"]\n",
        );
    }
    let out = p.clnrm(&["run", "-j", "3"]);
    out.code(1).stdout_has("3 scenarios: 0 passed, 3 failed");
    assert_eq!(out.stdout.matches("service `job`: exited with code 0 at +").count(), 3, "{}", out.stdout);
    out.stdout_has("done");
    p.assert_clean();
}

/// Defect 6: a service killed mid-scenario passed when no later step used it, and when one did,
/// the failure said only "bad address".
#[test]
fn a_service_that_dies_mid_scenario_is_named_with_its_code_and_logs() {
    require_engine!();
    let p = Project::with_fixture();
    let service = |line: &str| {
        format!(
            "[services.web]\nimage = \"clnrm-fixture:busybox\"\nports = [8080]\nwait = {{ port = 8080 }}\ncommand = \"nc -ll -p 8080 -e true & {line}\"\n"
        )
    };
    p.scenario(
        "killed-unused",
        &format!("{}\n[[steps]]\nname = \"s\"\nrun = [\"sleep\", \"3\"]\n", service("echo serving; wait")),
    );
    let child = p.spawn(&["run"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let web = loop {
        if let Some(web) = p.running("-svc-").pop() {
            break web;
        }
        assert!(std::time::Instant::now() < deadline, "the service never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::process::Command::new("docker").args(["kill", &web]).output().unwrap();
    let out = common::finish(child);
    out.code(1).stdout_has("service `web`: was killed (exit code 137) at +").stdout_has("serving");

    std::fs::remove_file(p.join("scenarios/killed-unused.clnrm.toml")).unwrap();
    p.scenario(
        "exits-used",
        &format!(
            "{}\n[[steps]]\nname = \"wait\"\nrun = [\"sleep\", \"3\"]\n\n[[steps]]\nname = \"use it\"\nrun = [\"wget\", \"-q\", \"-O-\", \"http://web:8080/\"]\n",
            service("sleep 1; echo giving up; exit 3")
        ),
    );
    let out = p.clnrm(&["run"]);
    out.code(1)
        .stdout_has("service `web`: exited with code 3 at +")
        .stdout_has("giving up")
        .stdout_lacks("bad address");
    p.assert_clean();
}

/// Defect 3: `--repeat N` compared only the first run's spans with the baseline, so a scenario
/// that misbehaves only on a later run passed, and recording took the first run's trace alone.
/// With `--reuse` the step container (and a counter file in it) lasts from run to run; from the
/// second run on, the step emits a failing span.
#[test]
fn every_repeated_run_is_compared_not_only_the_first() {
    require_engine!();
    let p = Project::with_fixture();
    let service = attrs(&[("service.name", "pay")]);
    let script = format!(
        "n=$(($(cat /tmp/runs 2>/dev/null || echo 0) + 1)); echo $n > /tmp/runs\nif [ $n -ge 2 ]; then send charge $trace $parent 2 '{service}' '[]'; fi"
    );
    p.scenario("flaky", &sending_step("pay", &script));

    // Recording over runs that disagree records nothing.
    let out = p.clnrm(&["run", "--reuse", "--repeat", "3", "--update-baselines"]);
    out.code(4).stdout_has("run 2 of 3 against run 1: 1 span added").stdout_has("charge");
    assert!(!p.join("baselines/flaky.toml").exists() && !p.join("baselines/flaky.toml.new").exists());

    // A baseline of one clean run, then three runs of which the later two fail.
    p.clnrm(&["run", "--update-baselines"]).success();
    let recorded = p.read("baselines/flaky.toml");
    let out = p.clnrm_env(&["run", "--reuse", "--repeat", "3"], &[("CI", "true")]);
    out.code(4).stdout_has("run 2 of 3 against the baseline").stdout_has("new_errors");
    assert_eq!(p.read("baselines/flaky.toml"), recorded);
    p.assert_clean();
}

/// Found with the real stack: after an intended change, `--update-baselines --repeat N` compared the
/// later runs with the baseline being replaced, found them all different, and recorded nothing.
#[test]
fn re_recording_with_repeat_replaces_a_baseline_after_an_intended_change() {
    require_engine!();
    let p = Project::with_fixture();
    let service = attrs(&[("service.name", "pay")]);
    p.scenario("intended", &sending_step("pay", &format!("send charge $trace $parent 0 '{service}' '[]'")));
    p.clnrm(&["run", "--update-baselines"]).success();
    p.scenario("intended", &sending_step("pay", &format!("send refund $trace $parent 0 '{service}' '[]'")));
    p.clnrm(&["run", "--repeat", "3", "--update-baselines"]).success().stdout_has("updated baselines/intended.toml");
    let baseline = p.read("baselines/intended.toml");
    assert!(baseline.contains("refund") && !baseline.contains("charge"), "{baseline}");
    assert!(baseline.contains("runs = 3"), "{baseline}");
    p.assert_clean();
}

/// Issue 13, defect 4: durations gated at once on one run failed whenever the machine was loaded
/// for a moment. Now a run broken by durations alone is run again, and only a span slower in every
/// run (its fastest time past the limits) regresses. With `--reuse` a counter file lasts from run
/// to run: `burst` is slow in its first run only, `slower` in every run.
#[test]
fn a_duration_regression_must_show_in_every_run() {
    require_engine!();
    let p = Project::with_fixture();
    p.write(
        ".clnrm/config.toml",
        "[defaults]\nimage = \"clnrm-fixture:busybox\"\npull = \"never\"\n\n[thresholds]\nduration = \"50%\"\n",
    );
    let service = attrs(&[("service.name", "pay")]);
    // The counter file is the scenario's own: both may run in the same reused container.
    let sends = |first_ms: u64, later_ms: u64| {
        let (first, later) = (first_ms * 1_000_000 + 1, later_ms * 1_000_000 + 1);
        format!(
            "n=$(($(cat /tmp/runs-{first}-{later} 2>/dev/null || echo 0) + 1)); echo $n > /tmp/runs-{first}-{later}\n\
             if [ $n -eq 1 ]; then end={first}; else end={later}; fi\nsend charge $trace $parent 0 '{service}' '[]' $end"
        )
    };
    for name in ["burst", "slower"] {
        p.scenario(name, &sending_step("pay", &sends(10, 10)));
    }
    p.clnrm(&["run", "--update-baselines"]).success();
    p.scenario("burst", &sending_step("pay", &sends(100, 10)));
    p.scenario("slower", &sending_step("pay", &sends(100, 100)));
    let out = p.clnrm_env(&["run", "--reuse", "-j", "1"], &[("CI", "true")]);
    out.code(4)
        .stdout_has("PASS")
        .stdout_has("slower than its baseline at first")
        .stdout_has("but not in all of 2 runs")
        .stdout_has("REGRESS")
        .stdout_has("1 span slower than allowed in each of 5 runs (fastest times) (more than +50% and more than 2ms)")
        .stdout_has("`slower › pay › charge` 10ms → 100ms");
    p.clnrm_env(&["run", "--force", "--reuse", "-j", "1", "--report", "json=report.json"], &[("CI", "true")]).code(4);
    let report: serde_json::Value = serde_json::from_str(&p.read("report.json")).unwrap();
    assert_eq!(status_in(&report, "burst"), "pass", "{report:#}");
    assert_eq!(status_in(&report, "slower"), "regressed", "{report:#}");
    p.assert_clean();
}

/// Issue 13, defect 4: a run's durations are divided by its load (how much longer clnrm's container
/// starts took than the baseline says) only when no run was as quiet as the recording, and what
/// passes only so is named in a warning. A baseline whose `start db` took 1ms makes every run look
/// hundreds of times as loaded: the slower `charge` passes, with the warning, after two runs. The
/// same baseline with `start db` at 60s makes every run quiet: the same `charge` regresses, so the
/// excuse needs the machine to be loaded and cannot be had by a slower system alone.
#[test]
fn a_slower_span_is_excused_only_on_a_machine_loaded_in_every_run_and_then_named() {
    require_engine!();
    let p = Project::with_fixture();
    p.write(
        ".clnrm/config.toml",
        "[defaults]\nimage = \"clnrm-fixture:busybox\"\npull = \"never\"\n\n[thresholds]\nduration = \"50%\"\nduration_runs = 2\n",
    );
    let service = attrs(&[("service.name", "pay")]);
    let scenario = |ms: u64| {
        let send = format!("send charge $trace $parent 0 '{service}' '[]' {}", ms * 1_000_000 + 1);
        format!(
            "[services.db]\nimage = \"clnrm-fixture:busybox\"\ncommand = [\"sleep\", \"3600\"]\n\n{}",
            sending_step("pay", &send)
        )
    };
    p.scenario("loaded", &scenario(10));
    p.clnrm(&["run", "--update-baselines"]).success();
    p.scenario("loaded", &scenario(100));
    let recorded = p.read("baselines/loaded.toml");
    let with_start = |took: &str| {
        let (before, after) = recorded.split_once("path = \"loaded › start db\"").unwrap();
        let (block, rest) = after.split_once("\nduration = ").unwrap();
        let (_, rest) = rest.split_once('\n').unwrap();
        format!("{before}path = \"loaded › start db\"{block}\nduration = \"{took}\"\n{rest}")
    };
    p.write("baselines/loaded.toml", with_start("1ms"));
    p.clnrm_env(&["run", "--force", "-j", "1"], &[("CI", "true")])
        .success()
        .stdout_has("durations not judged as measured: none of the 2 runs was on a machine as quiet as when the baseline was recorded")
        .stdout_has("1 span slower than allowed as measured passed only with that load divided out (`loaded › pay › charge` 10ms");
    p.write("baselines/loaded.toml", with_start("60s"));
    p.clnrm_env(&["run", "--force", "-j", "1"], &[("CI", "true")])
        .code(4)
        .stdout_has("1 span slower than allowed in each of 2 runs (fastest times)")
        .stdout_has("`loaded › pay › charge` 10ms → 100ms")
        .stdout_lacks("not judged as measured");
    p.assert_clean();
}

/// Issue 13, defect 4: durations were gated only when a config asked, so with the defaults a span
/// three times as slow passed. Now it regresses, while the rest of its trace is as fast as
/// recorded; a trace slower throughout (as on a slower machine) passes, and the warning names its
/// spans and the pace they were judged against. Spans of a synthetic system with exact durations.
#[test]
fn with_default_thresholds_one_slower_span_regresses_and_a_trace_slower_throughout_is_named() {
    require_engine!();
    let p = Project::with_fixture();
    let service = attrs(&[("service.name", "pay")]);
    let scenario = |times: [u64; 4]| {
        let sends: Vec<String> = ["reserve", "charge", "notify", "ship"]
            .iter()
            .zip(times)
            .map(|(name, ms)| format!("send {name} $trace $parent 0 '{service}' '[]' {}", ms * 1_000_000 + 1))
            .collect();
        sending_step("pay", &sends.join("\n"))
    };
    p.scenario("paced", &scenario([10, 10, 10, 10]));
    p.clnrm(&["run", "--update-baselines"]).success();
    p.scenario("paced", &scenario([10, 30, 10, 10]));
    p.clnrm_env(&["run"], &[("CI", "true")])
        .code(4)
        .stdout_has("1 span slower than allowed in each of 5 runs (fastest times) (more than +50% and more than 2ms)")
        .stdout_has("`paced › pay › charge` 10ms → 30ms")
        .stdout_lacks("trace's pace");
    p.scenario("paced", &scenario([30, 30, 30, 30]));
    p.clnrm_env(&["run"], &[("CI", "true")])
        .success()
        .stdout_has("durations judged against their trace's pace: 4 spans slower than allowed as measured")
        .stdout_has("`paced › pay › charge` 10ms → 30ms with the rest 3.0× slower");
    p.assert_clean();
}

/// Defect 4: a `build` image was tagged by its context alone, so rebuilding its `FROM` image under
/// the same tag kept the stale image and the cached PASS.
#[test]
fn a_build_is_rebuilt_when_its_base_image_changes() {
    require_engine!();
    let p = Project::with_fixture();
    // A base image unique to this test run, rebuilt under one tag; both images go when the test
    // ends, passed or failed.
    let base = format!("clnrm-redteam-base:{}", std::process::id());
    let _images = RemovedImages(vec!["clnrm-build/redteam-app".into(), base.clone()]);
    let build_base = |marker: &str| {
        p.write("base/Dockerfile", format!("FROM clnrm-fixture:busybox\nRUN echo {marker} > /marker\n"));
        let built = std::process::Command::new("docker")
            .args(["build", "-q", "-t", &base, &p.join("base").display().to_string()])
            .output()
            .unwrap();
        assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    };
    build_base("one");
    p.write("redteam-app/Dockerfile", format!("FROM {base}\nCOPY hello /hello\n"));
    p.write("redteam-app/hello", "hello\n");
    p.write(
        "scenarios/built.clnrm.toml",
        "[scenario]\nname = \"built\"\n\n[[steps]]\nname = \"s\"\nbuild = \"../redteam-app\"\nrun = [\"cat\", \"/marker\"]\nexpect = { stdout = '^one$' }\n",
    );
    p.clnrm(&["run", "--update-baselines"]).success().stdout_has("BUILT");
    p.clnrm(&["run"]).success().stdout_has("CACHED");
    build_base("two");
    p.clnrm(&["run"]).code(1).stdout_has("BUILT").stdout_has("does not match /^one$/");
    p.assert_clean();
}

/// Images a test made, removed in order (every id of each reference: images built on another
/// first, or the engine refuses to remove their base) when it is dropped: also when the test
/// fails half-way, so no image is left behind.
struct RemovedImages(Vec<String>);

impl Drop for RemovedImages {
    fn drop(&mut self) {
        for image in &self.0 {
            let Ok(ids) = std::process::Command::new("docker").args(["images", "-q", image]).output() else { continue };
            for id in String::from_utf8_lossy(&ids.stdout).lines() {
                let _ = std::process::Command::new("docker").args(["rmi", "-f", id]).output();
            }
        }
    }
}

/// Found while hunting: an export the receiver refuses (a malformed body, spans with ids of the
/// wrong length) lost its spans without a word to the scenario, so an error span sent that way
/// passed `errors = 0`. Spans refused from a scenario's containers now fail it.
#[test]
fn spans_the_receiver_refused_fail_their_scenario() {
    require_engine!();
    let p = Project::with_fixture();
    let service = attrs(&[("service.name", "pay")]);
    let short_trace = "0123456789abcdef0123456789abcd";
    p.scenario(
        "bad-ids",
        &format!(
            "{}\n[expect.trace]\nerrors = 0\n",
            sending_step("send", &format!("send charge {short_trace} $parent 2 '{service}' '[]'"))
        ),
    );
    p.scenario(
        "malformed",
        &format!(
            "{}\n[expect.trace]\nerrors = 0\n",
            // A resource attribute list that is not a list: the whole request is refused.
            sending_step("send", "send charge $trace $parent 2 '{\"no\":1}' '[]'")
        ),
    );
    let out = p.clnrm(&["run", "-j", "2"]);
    out.code(1).stdout_has("2 scenarios: 0 passed, 2 failed");
    out.stdout_has("the span receiver refused 1 span sent from this scenario's containers");
    out.stdout_has("the span receiver refused 1 export request sent from this scenario's containers");
    p.assert_clean();
}

/// Found while hunting: the lanes of scenarios running side by side share the run's network, where
/// a step of one scenario could reach a server a step of another started (a result that depends on
/// the other scenario). Containers there now reach only the host.
#[test]
fn scenarios_running_side_by_side_cannot_reach_each_other() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("listens", "[[steps]]\nname = \"serve\"\nrun = \"nc -ll -p 9999 -e echo secret & sleep 4\"\n");
    // Tries every address of its own /24 on the run's network, all at once.
    p.scenario(
        "probes",
        "[[steps]]\nname = \"probe\"\nrun = '''\nsleep 1\nmine=$(ip -4 -o addr show eth0 | sed 's/.* inet \\([0-9.]*\\)\\/.*/\\1/')\nprefix=${mine%.*}\nfor i in $(seq 2 40); do (echo | nc -w 2 $prefix.$i 9999 >> /tmp/heard 2>/dev/null &); done\nsleep 3\nif grep -q secret /tmp/heard; then echo reached another scenario; exit 1; fi\necho alone\n'''\nexpect = { stdout = 'alone' }\n",
    );
    p.clnrm(&["run", "-j", "2"]).success().stdout_has("2 scenarios: 2 passed");
    p.assert_clean();
}

/// Guards the lane's turnaround: a lane that served a scenario with services goes back to the pool
/// only once it is off their network (its step containers end meanwhile). The scenarios right
/// after it, on one job (so on the lanes it just used), must neither reach its service by name nor
/// have a second network interface.
#[test]
fn a_lane_back_from_a_scenario_with_services_reaches_none_of_them() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "a-serves",
        "[services.secret]\nimage = \"clnrm-fixture:busybox\"\ncommand = \"nc -ll -p 9999 -e echo secret\"\n\n[[steps]]\nname = \"use\"\nrun = \"echo | nc -w 2 secret 9999\"\nexpect = { stdout = 'secret' }\n",
    );
    let probe = "[[steps]]\nname = \"probe\"\nrun = '''\nif ip -o link | grep -q eth1; then echo on a second network; exit 1; fi\nif echo | nc -w 1 secret 9999 | grep -q secret; then echo reached the service; exit 1; fi\necho alone\n'''\nexpect = { stdout = 'alone' }\n";
    for i in 1..=4 {
        p.scenario(&format!("b{i}-probes"), probe);
    }
    p.clnrm(&["run", "-j", "1"]).success().stdout_has("5 scenarios: 5 passed");
    p.assert_clean();
}

/// Attempts that already failed before these fixes, kept failing: a step that prints what a span
/// would say instead of emitting it.
#[test]
fn an_echoed_span_name_is_not_a_span() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "echo",
        "[[steps]]\nname = \"pay\"\nrun = [\"echo\", \"span[name=charge status=ok] charge ok\"]\n\n[[expect.span]]\nselect = 'span[name=\"charge\"]'\n",
    );
    p.clnrm(&["run"]).code(1).stdout_has("count: expected at least 1 span, found none");
    p.assert_clean();
}

/// Kept failing: the span a scenario waits for, emitted by another scenario (beside it, or before
/// it and still emitting while its containers go).
#[test]
fn a_span_emitted_by_another_scenario_does_not_count() {
    require_engine!();
    let p = Project::with_fixture();
    let service = attrs(&[("service.name", "pay")]);
    p.scenario(
        "a-emits",
        &sending_step(
            "pay",
            &format!("for i in 1 2 3 4 5 6 7 8; do send charge $trace $parent 0 '{service}' '[]'; sleep 0.25; done"),
        ),
    );
    p.scenario(
        "b-ticker",
        "[services.ticker]\nimage = \"clnrm-demo:local\"\ncommand = \"while :; do demo-app emit --spans 5 --name charge; done\"\n\n[[steps]]\nname = \"nothing\"\nrun = [\"true\"]\n",
    );
    p.scenario(
        "c-expects",
        "[[steps]]\nname = \"pay\"\nrun = [\"sleep\", \"2\"]\n\n[[expect.span]]\nselect = 'span[name=\"charge\"]'\n",
    );
    let out = p.clnrm(&["run", "-j", "2", "--report", "json=r.json"]);
    out.code(1);
    let report: serde_json::Value = serde_json::from_str(&p.read("r.json")).unwrap();
    assert_eq!(status_in(&report, "a-emits"), "pass");
    assert_eq!(status_in(&report, "b-ticker"), "pass");
    assert_eq!(status_in(&report, "c-expects"), "fail");
    p.assert_clean();
}

/// Kept failing: a passing scenario with no baseline to compare with, in CI.
#[test]
fn ci_without_a_baseline_fails() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("fine", "[[steps]]\nname = \"s\"\nrun = [\"true\"]\n");
    p.clnrm_env(&["run"], &[("CI", "true")]).code(1).stdout_has("baselines/fine.toml does not exist");
    p.clnrm_env(&["run"], &[("CI", "true")]).code(1).stdout_lacks("CACHED");
    p.assert_clean();
}

/// Found while hunting: clnrm's own step spans were selected like the system's, so a step named
/// `charge` satisfied `select = 'span[name="charge"]'` with the system emitting nothing.
#[test]
fn a_step_named_like_the_expected_span_does_not_satisfy_it() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "named-like-it",
        "[[steps]]\nname = \"charge\"\nrun = [\"true\"]\n\n[[expect.span]]\nselect = 'span[name=\"charge\"]'\ncount = 1\n",
    );
    p.clnrm(&["run"]).code(1).stdout_has("only clnrm's own spans match");
    p.assert_clean();
}

/// Found by the property tests: normalization wrote bytes as hex text only at the top of an
/// attribute, not inside an array, so a baseline read back differed from the run it recorded, and
/// every later run of unchanged behaviour was a regression (exit 4) on that attribute.
#[test]
fn bytes_inside_an_array_attribute_match_their_recorded_baseline() {
    require_engine!();
    let p = Project::with_fixture();
    let service = attrs(&[("service.name", "upload")]);
    let raw = r#"[{"key":"raw","value":{"arrayValue":{"values":[{"bytesValue":"3q0="},{"stringValue":"x"}]}}}]"#;
    let step = sending_step("upload", &format!("send 'PUT /blob' $trace $parent 1 '{service}' '{raw}'"));
    p.scenario("bytes", &format!("{step}\n[[expect.span]]\nselect = 'span[name=\"PUT /blob\"]'\n"));
    p.clnrm(&["run", "--update-baselines"]).success().stdout_has("recorded baselines/bytes.toml");
    assert!(
        p.read("baselines/bytes.toml").contains("\"raw\" = [\"dead\", \"x\"]"),
        "{}",
        p.read("baselines/bytes.toml")
    );
    p.clnrm(&["run", "--force"]).success().stdout_has("1 passed");
    p.assert_clean();
}
