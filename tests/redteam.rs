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

/// Shell that defines `send NAME TRACE PARENT STATUS RESOURCE_ATTRS SPAN_ATTRS`: one span (a new
/// random id) to the receiver over OTLP/HTTP JSON through busybox `nc`. `new_trace` prints a random
/// trace id; `$trace` and `$parent` are the step's own, from `TRACEPARENT`.
const SENDER: &str = r#"
endpoint=${OTEL_EXPORTER_OTLP_ENDPOINT#http://}
t=${TRACEPARENT#00-}; trace=${t%%-*}; rest=${t#*-}; parent=${rest%%-*}
hexes() { head -c $1 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
new_trace() { hexes 16; }
send() {
  body='{"resourceSpans":[{"resource":{"attributes":'"$5"'},"scopeSpans":[{"spans":[{"traceId":"'$2'","spanId":"'$(hexes 8)'","parentSpanId":"'$3'","name":"'$1'","startTimeUnixNano":"1","endTimeUnixNano":"2","status":{"code":'$4'},"attributes":'"$6"'}]}]}]}'
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
