//! Spans of the demo application, collected and checked by `clnrm run` against the real engine.

mod common;

use common::{Project, engine_available};

macro_rules! require_engine {
    () => {
        if !engine_available() {
            return;
        }
    };
}

/// A scenario ordering `items` from the demo shop, exporting with `protocol`, expecting exactly
/// the spans that order makes (the shop's handling has `items + 5` spans in all).
fn order_scenario(name: &str, items: u32, protocol: &str) -> String {
    format!(
        r#"[scenario]
name = "{name}"

[services.shop]
image = "clnrm-demo:local"
command = ["demo-app", "serve", "--port", "8080"]
wait = {{ log = "listening on", timeout = "30s" }}
env = {{ OTEL_EXPORTER_OTLP_PROTOCOL = "{protocol}" }}

[[steps]]
name = "order {items}"
image = "clnrm-demo:local"
run = ["demo-app", "order", "--shop", "http://shop:8080", "--items", "{items}"]
env = {{ OTEL_EXPORTER_OTLP_PROTOCOL = "{protocol}" }}
expect = {{ stdout = "^placed {items}$" }}

[[expect.span]]
select = 'span[name="POST /orders" kind="server"]'
count = 1
attrs = {{ "order.items" = {items} }}
parent = 'span[name="POST /orders" kind="client"]'

[[expect.span]]
select = 'span[name="POST /orders" kind="client"]'
parent = 'span[name="order {items}"]'

[[expect.span]]
select = 'span[name="reserve item"]'
count = {items}

[expect.trace]
spans = {total}
errors = 0
"#,
        total = items + 5
    )
}

fn report(p: &Project, file: &str) -> serde_json::Value {
    serde_json::from_str(&p.read(file)).unwrap()
}

#[test]
fn spans_over_http_and_grpc_reach_their_scenario() {
    require_engine!();
    let p = Project::with_fixture();
    p.write("scenarios/http.clnrm.toml", order_scenario("over-http", 2, "http/protobuf"));
    p.write("scenarios/grpc.clnrm.toml", order_scenario("over-grpc", 3, "grpc"));
    p.clnrm(&["run", "-j", "2", "--report", "json=r.json"]).success().stdout_has("2 scenarios: 2 passed");
    let json = report(&p, "r.json");
    for scenario in json["scenarios"].as_array().unwrap() {
        assert!(scenario["spans"].as_u64().unwrap() >= 9, "{scenario}");
        assert!(scenario["settle_ms"].as_f64().unwrap() < 5000.0);
    }
    assert_eq!(json["summary"]["spans_unroutable"], 0);
    p.assert_clean();
}

#[test]
fn eight_scenarios_in_parallel_do_not_see_each_others_spans() {
    require_engine!();
    let p = Project::with_fixture();
    for items in 1..=8 {
        let protocol = if items % 2 == 0 { "grpc" } else { "http/protobuf" };
        p.write(
            &format!("scenarios/order-{items}.clnrm.toml"),
            order_scenario(&format!("order-{items}"), items, protocol),
        );
    }
    let out = p.clnrm(&["run", "-j", "8", "--report", "json=r.json"]);
    out.success().stdout_has("8 scenarios: 8 passed");
    let json = report(&p, "r.json");
    assert_eq!(json["summary"]["spans_unroutable"], 0, "{}", out.stdout);
    assert_eq!(json["summary"]["spans_late"], 0, "{}", out.stdout);
    p.assert_clean();
}

#[test]
fn an_expectation_absent_from_the_trace_fails_with_what_was_found() {
    require_engine!();
    let p = Project::with_fixture();
    let wrong = order_scenario("typo", 2, "http/protobuf").replace(
        "[expect.trace]",
        "[[expect.span]]\nselect = 'span[name=\"POST /order\" kind=\"server\"]'\n\n[expect.trace]",
    );
    p.write("scenarios/typo.clnrm.toml", wrong);
    p.scenario("echo-only", "[[steps]]\nname = \"says ok\"\nrun = [\"echo\", \"ok\"]\n\n[[expect.span]]\nselect = 'span[name=\"POST /orders\"]'\n");
    let out = p.clnrm(&["run", "-j", "2"]);
    out.code(1)
        .stdout_has("span[name=\"POST /order\" kind=\"server\"]")
        .stdout_has("count: expected at least 1 span, found none")
        .stdout_has("POST /orders")
        .stdout_has("reserve item")
        .stdout_has("the system under test sent none");
    p.assert_clean();
}

#[test]
fn collected_spans_are_forwarded_to_an_external_endpoint() {
    require_engine!();
    let p = Project::with_fixture();
    p.write("scenarios/order.clnrm.toml", order_scenario("forwarded", 1, "http/protobuf"));
    let collector = p.collect("external.jsonl");
    let result = p.clnrm(&["run", "--otel-endpoint", &format!("http://127.0.0.1:{}", collector.port)]);
    collector.stop();
    result.success();
    let spans: Vec<serde_json::Value> =
        p.traces("external.jsonl").iter().flat_map(|t| t["spans"].as_array().unwrap().clone()).collect();
    let services: std::collections::BTreeSet<&str> =
        spans.iter().filter_map(|s| s["resource"]["service.name"].as_str()).collect();
    assert!(services.contains("shop") && services.contains("steps") && services.contains("clnrm"), "{services:?}");
    let start = spans.iter().find(|s| s["name"] == "start shop").expect("the service's start span");
    assert_eq!(start["attributes"]["container.image.name"], "clnrm-demo:local");
    assert_eq!(start["attributes"]["container.id"].as_str().map(str::len), Some(64), "{start}");
    assert!(spans.iter().any(|s| s["name"] == "wait shop"), "the service's wait span");
    p.assert_clean();
}

#[test]
fn the_failing_span_example_names_what_was_expected_and_the_nearest_spans() {
    require_engine!();
    let p = Project::with_fixture();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    p.write("templates/macros.tera", std::fs::read(root.join("templates/macros.tera")).unwrap());
    p.write(
        "scenarios/missing-span.clnrm.toml",
        std::fs::read(root.join("examples/failing/missing-span.clnrm.toml")).unwrap(),
    );
    p.clnrm(&["run"])
        .code(1)
        .stdout_has("2 expectations did not hold")
        .stdout_has("count: expected exactly 3 spans, found 2:")
        .stdout_has("▶           reserve item (shop, internal")
        // Of the two spans named `POST /orders`, the server one is nearest to a server selector.
        .stdout_has("- POST /orders (shop, server, ")
        .stdout_has(": name=\"POST /order\" (name is \"POST /orders\")\n")
        .stdout_lacks("- POST /orders (steps, client");
    p.assert_clean();
}

#[test]
fn spans_arriving_after_their_scenario_was_checked_are_counted_not_mixed_in() {
    require_engine!();
    let p = Project::with_fixture();
    // The service emits spans without pause, also after the check, until teardown stops it. The
    // moment between the check and the kill is short, so three scenarios give it three chances.
    for k in 1..=3 {
        p.scenario(
            &format!("chatty-{k}"),
            r#"[services.ticker]
image = "clnrm-demo:local"
command = "while :; do demo-app emit --spans 5 --name tick; done"

[[steps]]
name = "nothing"
run = ["true"]

[[expect.span]]
select = 'span[name="tick"]'
count = { min = 1 }
"#,
        );
    }
    // Each tick is a new process, so the ticker exports in bursts with gaps of a process start:
    // the user's window is set longer than those gaps (the automatic one is not), so the trace is
    // never quiet and the cap ends the wait.
    p.write(
        ".clnrm/config.toml",
        format!("{}\n[otel]\nsettle = \"200ms\"\nsettle_cap = \"1s\"\n", p.read(".clnrm/config.toml")),
    );
    let out = p.clnrm(&["run", "-j", "3", "--report", "json=r.json"]);
    out.success()
        .stdout_has("arrived after their scenario was checked; they were not counted in any scenario")
        .stdout_has("spans kept arriving for all of [otel] settle_cap (1.00s)")
        .stdout_lacks("matched no scenario");
    let json = report(&p, "r.json");
    assert!(json["summary"]["spans_late"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(json["summary"]["spans_unroutable"], 0);
    p.assert_clean();
}

/// Found by the selector fuzz target and the property tests: a selector in a failure message was
/// not the text of what was checked. A backslash before a tab written as itself was printed as
/// `\\t`, which reads back as a backslash and the letter t; a bound of -0.0 was printed as `-0`,
/// which reads back as 0 and then prints as `0`.
#[test]
fn a_failing_selector_is_shown_as_it_reads_back() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "printed",
        "[[steps]]\nname = \"says ok\"\nrun = [\"echo\", \"ok\"]\n\n[[expect.span]]\nselect = 'span[name=\"a\\\tb\" process.exit.code<-0.0]'\n",
    );
    p.clnrm(&["run"]).code(1).stdout_has("select: span[name=\"a\\\\\\tb\" process.exit.code<0]\n");
    p.assert_clean();
}
