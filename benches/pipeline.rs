//! Benchmarks of everything before a container starts (issue: scenario pipeline).
//!
//! `cargo bench --bench pipeline` prints, for each figure, the median (and spread) over repeated
//! runs and the target it must meet. End-to-end figures spawn the release binary, so process start
//! is included, as a user would see it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use clnrm::cache::{Cache, Conditions, KeyInputs, Verdict};
use clnrm::config::Vars;
use clnrm::diagnostic::SourceFile;
use clnrm::scenario::render::Templates;
use clnrm::scenario::vars::{self, Overrides};

const SCENARIOS: usize = 200;

fn main() {
    let project = tempfile::tempdir().expect("temp dir");
    // CLNRM_BENCH_KEEP=DIR also writes the generated project there, to look at or time by hand.
    if let Some(keep) = std::env::var_os("CLNRM_BENCH_KEEP") {
        write_project(Path::new(&keep));
    }
    write_project(project.path());
    let bin = env!("CARGO_BIN_EXE_clnrm");

    let mut results = Vec::new();
    results.push(measure("clnrm --version (process start)", 200, Duration::from_millis(10), || {
        run(bin, &["--version"], project.path())
    }));
    let dry_run =
        measure(&format!("clnrm dry-run, {SCENARIOS} scenarios (wall)"), 40, Duration::from_millis(150), || {
            run(bin, &["dry-run", "--format", "json"], project.path())
        });
    results.push(dry_run);
    results.push(render_one(project.path()));
    results.push(cache_key_and_lookup(project.path()));

    println!("\n{:<48} {:>10} {:>10} {:>10} {:>10}  result", "figure", "median", "p10", "p90", "target");
    for r in &results {
        let verdict = if r.median < r.target { "met" } else { "MISSED" };
        println!(
            "{:<48} {:>10} {:>10} {:>10} {:>10}  {verdict}",
            r.name,
            fmt(r.median),
            fmt(r.p10),
            fmt(r.p90),
            fmt(r.target)
        );
    }
}

struct Figure {
    name: String,
    median: Duration,
    p10: Duration,
    p90: Duration,
    target: Duration,
}

fn measure(name: &str, runs: usize, target: Duration, mut f: impl FnMut()) -> Figure {
    f(); // warm the page cache and the binary
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    samples.sort();
    Figure {
        name: name.to_string(),
        median: samples[runs / 2],
        p10: samples[runs / 10],
        p90: samples[runs * 9 / 10],
        target,
    }
}

fn run(bin: &str, args: &[&str], dir: &Path) {
    let out = Command::new(bin).args(args).current_dir(dir).env_clear().output().expect("run clnrm");
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// The render stage for one typical scenario (an import, an include, macros, a loop, variables):
/// extract `[vars]`, apply precedence, render. Timed in batches so clock resolution does not matter.
fn render_one(project: &Path) -> Figure {
    let templates = Templates::load(&project.join("templates"), |p| p.display().to_string());
    let mut renderer = templates.renderer();
    let text = std::fs::read_to_string(project.join("scenarios/group-0/scenario-000.clnrm.toml")).unwrap();
    let source = SourceFile::new("scenario-000.clnrm.toml", text);
    let config_vars: Vars = serde_json::from_value(serde_json::json!({"region": "eu-west", "items": 3})).unwrap();
    let overrides = Overrides::default();
    const BATCH: u32 = 100;
    let mut figure = measure("render one typical scenario", 50, Duration::from_millis(1), || {
        for _ in 0..BATCH {
            let scenario_vars = vars::extract(&source).expect("vars");
            let resolved = vars::resolve(&config_vars, &scenario_vars, &overrides, &source, "config").expect("resolve");
            std::hint::black_box(renderer.render(&source, &resolved).expect("renders"));
        }
    });
    for d in [&mut figure.median, &mut figure.p10, &mut figure.p90] {
        *d /= BATCH;
    }
    figure
}

/// Computes a scenario's key and looks it up in a cache holding a recorded pass for it.
fn cache_key_and_lookup(project: &Path) -> Figure {
    let rendered = std::fs::read_to_string(project.join("scenarios/group-0/scenario-000.clnrm.toml")).unwrap();
    let templates = [("macros.tera", blake3::hash(b"macros")), ("common.toml", blake3::hash(b"common"))];
    let vars: Vars = serde_json::from_value(serde_json::json!({"items": 3, "region": "eu-west"})).unwrap();
    let config = br#"{"defaults":{"pull":"missing"},"otel":{},"thresholds":{}}"#;
    let inputs = KeyInputs { rendered: &rendered, templates: &templates, vars: &vars, config };
    let cache = Cache::new(project.join(".clnrm/cache"));
    let conditions = Conditions { runs: 1, reuse: false };
    cache
        .record("scenario-000", &inputs.key(), &inputs.key(), conditions, Verdict::Pass, Duration::from_millis(5))
        .unwrap();
    const BATCH: u32 = 200;
    let mut figure = measure("cache key computation + lookup", 50, Duration::from_micros(50), || {
        for _ in 0..BATCH {
            let key = inputs.key();
            std::hint::black_box(cache.lookup("scenario-000", &key, None));
        }
    });
    for d in [&mut figure.median, &mut figure.p10, &mut figure.p90] {
        *d /= BATCH;
    }
    figure
}

fn fmt(d: Duration) -> String {
    clnrm::duration::display(d)
}

/// A project of realistic scenarios: every file imports the macros, most use variables, loops,
/// services with wait strategies, step expectations and span expectations.
fn write_project(root: &Path) {
    let write = |relative: &str, content: &str| {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    };
    write(
        ".clnrm/config.toml",
        "[defaults]\nimage = \"clnrm-fixture:busybox\"\n\n[vars]\nregion = \"eu-west\"\nitems = 3\n",
    );
    write(
        "templates/macros.tera",
        r#"{% macro step(name, run, stdout="") %}
[[steps]]
name = {{ name | toml }}
run = {{ run | toml }}
{%- if stdout %}
expect = { exit = 0, stdout = {{ stdout | toml }} }
{%- endif %}
{% endmacro step %}
{% macro service(name, port) %}
[services.{{ name }}]
image = "clnrm-fixture:busybox"
command = ["httpd", "-f", "-p", "{{ port }}"]
ports = [{{ port }}]
wait = { port = {{ port }}, timeout = "10s" }
env = { REGION = {{ region | toml }}, PORT = "{{ port }}" }
{% endmacro service %}
"#,
    );
    write("templates/common.toml", "tags = [\"generated\", \"bench\"]\ntimeout = \"60s\"\n");
    for i in 0..SCENARIOS {
        write(&format!("scenarios/group-{}/scenario-{i:03}.clnrm.toml", i % 10), &scenario(i));
    }
}

fn scenario(i: usize) -> String {
    let services = i % 3;
    let mut s = format!(
        r#"{{% import "macros.tera" as m %}}
# Generated scenario {i}: services, steps and span expectations.
[scenario]
name = "scenario-{i:03}"
description = "order flow variant {i} in {{{{ region }}}}"
{{% include "common.toml" %}}

[vars]
items = {items}
customer = "customer-{i}"
"#,
        items = i % 7 + 1
    );
    for k in 0..services {
        s.push_str(&format!("{{{{ m::service(name=\"svc{k}\", port={}) }}}}\n", 8080 + k));
    }
    s.push_str(
        r#"
{% for n in range(end=items) %}
{{ m::step(name="order " ~ n, run=["sh", "-c", "echo placed " ~ n ~ " for " ~ customer], stdout="placed \d+") }}
{% endfor %}

[[steps]]
name = "check the receipt"
run = "echo receipt {{ customer }} && test -n '{{ region }}'"
timeout = "10s"
expect = { exit = 0, stdout = '^receipt customer-\d+' }
"#,
    );
    if services > 0 {
        s.push_str("\n[[steps]]\nname = \"inside the service\"\nservice = \"svc0\"\nrun = [\"true\"]\n");
    }
    s.push_str(
        r#"
[[expect.span]]
select = 'span[name="POST /orders" service.name="shop"]'
count = { min = 1, max = 10 }
attrs = { "http.response.status_code" = 200 }
status = "ok"
duration = { max = "200ms" }

[[expect.span]]
select = 'span[name=~"^charge"] span[db.system]'
parent = 'span[name="place order"]'

[expect.trace]
spans = { min = 4, max = 50 }
errors = 0
order = [['span[name="reserve"]', 'span[name="charge"]']]

[baseline]
ignore_attrs = ["order.id"]
thresholds = { duration = "25%", added_spans = 0 }
"#,
    );
    s
}
