//! The real stack (fixtures/stack: Flask with OpenTelemetry's Python auto-instrumentation, Debian's
//! PostgreSQL and Redis): `hermetic` and baselines judged on what real instrumentation reports.

mod common;

use common::{Project, engine_available};

macro_rules! require_engine {
    () => {
        if !engine_available() {
            return;
        }
    };
}

/// A project with the repository's service recipes and the fixture images.
fn stack_project() -> Project {
    let p = Project::empty();
    p.write(".clnrm/config.toml", "[defaults]\npull = \"never\"\n");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for recipe in ["catalog", "postgres", "redis"] {
        let path = format!("templates/services/{recipe}.tera");
        p.write(&path, std::fs::read(root.join(&path)).unwrap());
    }
    p
}

const CURL_STEPS: &str = r#"{{ catalog::stack() }}

[[steps]]
name = "write"
image = "clnrm-stack/app:local"
run = ["curl", "-sf", "-XPOST", "-H", "content-type: application/json", "-d", '{"name": "pen", "price_cents": 250}', "http://app:8000/items"]

[[steps]]
name = "read"
image = "clnrm-stack/app:local"
run = ["curl", "-sf", "http://app:8000/items/1"]
"#;

/// Before: the curl steps' address was unknown (recorded before their container joined the
/// scenario network) and `hermetic` failed; the `http` probes' `GET /health` spans were counted;
/// and the baseline held the step's address and ephemeral port, so the second run differed.
#[test]
fn curl_steps_against_the_real_stack_are_hermetic_and_their_baseline_holds() {
    require_engine!();
    let p = stack_project();
    let body = format!(
        "{{% import \"services/catalog.tera\" as catalog %}}\n[scenario]\nname = \"stack\"\n{CURL_STEPS}\n\
         [expect.trace]\n\
         # CREATE TABLE at start, POST /items and its INSERT, GET /items/1 with Redis GET, SELECT, SET.\n\
         spans = 7\nhermetic = true\n"
    );
    p.write("scenarios/stack.clnrm.toml", body);
    // What churned was attributes: durations (judged by `scripts/stack-runs` against baselines of
    // five runs) would judge these reruns against a baseline of one.
    p.write(".clnrm/config.toml", "[defaults]\npull = \"never\"\n[thresholds]\nduration = \"off\"\n");
    p.clnrm(&["run", "--update-baselines"]).success().stdout_has("1 passed");
    let baseline = std::fs::read_to_string(p.join("baselines/stack.toml")).unwrap();
    for kept in [
        r#""net.peer.ip" = "steps""#,
        r#""net.peer.port" = "<redacted>""#,
        r#""net.peer.port" = 5432"#,
        r#""net.host.name" = "app:8000""#,
        r#"path = "stack › wait app""#,
    ] {
        assert!(baseline.contains(kept), "{kept} in\n{baseline}");
    }
    let probes = baseline.lines().filter(|l| l.starts_with("path = ") && l.contains("/health"));
    assert_eq!(probes.count(), 0, "the probes' spans are left out:\n{baseline}");
    assert!(!baseline.contains("172."), "no container address is stored:\n{baseline}");
    for _ in 0..2 {
        p.clnrm(&["run", "--force"]).success().stdout_has("1 passed").stdout_lacks("REGRESS");
        assert!(!p.join("baselines/stack.toml.new").exists(), "nothing differs from the baseline");
    }
    p.assert_clean();
}

/// An instrumented client in a step calling a host outside the scenario: the step's own
/// expectation (it fails, exit 1) holds, but `hermetic` must not; allowing the host lets it pass.
#[test]
fn a_call_to_an_outside_host_breaks_hermetic_unless_it_is_allowed() {
    require_engine!();
    let p = stack_project();
    let scenario = |hermetic: &str| {
        format!(
            "[[steps]]\nname = \"call out\"\nimage = \"clnrm-stack/app:local\"\n\
             run = [\"opentelemetry-instrument\", \"python3\", \"/app/client.py\", \"http://api.outside.invalid:8080/rates\"]\n\
             expect = {{ exit = 1 }}\n\n[expect.trace]\nhermetic = {hermetic}\n"
        )
    };
    p.scenario("outside", &scenario("true"));
    p.clnrm(&["run"])
        .code(1)
        .stdout_has("[expect.trace] hermetic")
        .stdout_has(r#"url = "http://api.outside.invalid:8080/rates" (host api.outside.invalid)"#)
        .stdout_has("allow it: hermetic = { allow = [\"HOST\"] }");
    p.scenario("outside", &scenario(r#"{ allow = ["*.outside.invalid"] }"#));
    p.clnrm(&["run"]).success().stdout_has("1 passed");
    p.assert_clean();
}

/// The project's deliberate regression: an extra query per read, against the committed baseline
/// recorded without it. Every step and expectation holds; the baseline catches it, exit 4.
#[test]
fn the_extra_query_example_regresses_against_its_committed_baseline() {
    require_engine!();
    let p = stack_project();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for path in [".clnrm/config.toml", "examples/failing/extra-query.clnrm.toml", "baselines/stack-extra-query.toml"] {
        p.write(path, std::fs::read(root.join(path)).unwrap());
    }
    p.clnrm_env(&["run", "examples/failing/extra-query.clnrm.toml"], &[("CI", "true")])
        .code(4)
        .stdout_has("REGRESS")
        .stdout_has("added_spans: 1 span added, at most 0 allowed: `GET /items/<int:item_id> › SELECT#")
        .stdout_has("db.statement = SELECT count(*) FROM items")
        .stdout_lacks("attrs:");
    p.assert_clean();
}
