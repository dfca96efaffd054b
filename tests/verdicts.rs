//! Honest verdicts, through the real binary: a way to require empty output that cannot be fooled,
//! values that used to pass `dry-run` only to fail at run time, and expectations that cannot fail.

mod common;

use common::{Project, engine_available};

macro_rules! require_engine {
    () => {
        if !engine_available() {
            return;
        }
    };
}

/// Runs `dry-run --format json`, checks its exit code, and returns `(severity, code, line, column)`
/// of each diagnostic of `file`.
fn dry_run(p: &Project, exit: i32, file: &str) -> Vec<(String, String, u64, u64)> {
    let out = p.clnrm(&["dry-run", "--format", "json"]);
    out.code(exit);
    let json = out.json();
    let found = json["files"].as_array().unwrap().iter().find(|f| f["path"] == file);
    let found = found.unwrap_or_else(|| panic!("no {file} in {json:#}"));
    found["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let text = |key: &str| d[key].as_str().unwrap_or_default().to_string();
            (text("severity"), text("code"), d["line"].as_u64().unwrap_or(0), d["column"].as_u64().unwrap_or(0))
        })
        .collect()
}

fn at(severity: &str, code: &str, line: u64, column: u64) -> (String, String, u64, u64) {
    (severity.to_string(), code.to_string(), line, column)
}

// Part 1: empty output.

#[test]
fn stderr_empty_fails_on_any_output_where_caret_dollar_passed() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "quiet",
        r#"
[[steps]]
name = "silent"
run = ["true"]
expect = { stdout_empty = true, stderr_empty = true }
"#,
    );
    p.scenario(
        "oops",
        r#"
[[steps]]
name = "writes to stderr"
run = "echo ok; echo oops >&2"
expect = { stdout = '^ok$', stderr_empty = true }
"#,
    );
    p.scenario(
        "newline",
        r#"
[[steps]]
name = "prints an empty line"
run = "echo"
expect = { stdout_empty = true }
"#,
    );
    p.clnrm(&["run"])
        .code(1)
        .stdout_has("PASS [")
        .stdout_has("] quiet")
        .stdout_has("step `writes to stderr`: expected no stderr, got 5 bytes")
        .stdout_has("│ oops")
        .stdout_has("step `prints an empty line`: expected no stdout, got 1 byte")
        .stdout_has("1 passed, 2 failed");
    p.assert_clean();
}

#[test]
fn dry_run_warns_about_output_regexes_that_cannot_fail_or_mean_an_empty_line() {
    let p = Project::with_fixture();
    p.write(
        "scenarios/out.clnrm.toml",
        r#"[[steps]]
name = "anything"
run = ["true"]
expect = { stdout = '', stderr = '.*' }

[[steps]]
name = "anything too"
run = ["true"]
expect = { stdout = '(?s).*', stderr = 'a*' }

[[steps]]
name = "a start"
run = ["true"]
expect = { stdout = '^' }

[[steps]]
name = "an empty line"
run = ["true"]
expect = { stderr = '^$', stdout = '^(ok)?$' }

[[steps]]
name = "real checks"
run = ["true"]
expect = { stdout = '^ok$', stderr = '\A\z' }
"#,
    );
    assert_eq!(
        dry_run(&p, 0, "scenarios/out.clnrm.toml"),
        [
            at("warning", "regex-matches-anything", 4, 21),
            at("warning", "regex-matches-anything", 4, 34),
            at("warning", "regex-matches-anything", 9, 21),
            at("warning", "regex-matches-anything", 9, 40),
            at("warning", "regex-matches-anything", 14, 21),
            at("warning", "regex-empty-line", 19, 21),
            at("warning", "regex-empty-line", 19, 36),
        ]
    );
    p.clnrm(&["dry-run"])
        .success()
        .stdout_has("1 valid, 0 invalid (0 errors, 7 warnings)")
        .stderr_has("warning[regex-matches-anything]: `stderr = '.*'` matches any output, so it checks nothing")
        .stderr_has("warning[regex-empty-line]: `stderr = '^$'` matches an empty line, not only an empty output")
        .stderr_has("--> scenarios/out.clnrm.toml:19:21")
        .stderr_has("`^` and `$` match at every line, so `^$` matches the empty line after any final newline")
        .stderr_has("to require no output, write `stderr_empty = true`");
}

#[test]
fn a_regex_and_an_empty_requirement_for_one_stream_conflict() {
    let p = Project::with_fixture();
    p.write(
        "scenarios/both.clnrm.toml",
        r#"[[steps]]
name = "s"
run = ["true"]
expect = { stderr = 'x', stderr_empty = true, stdout_empty = false }
"#,
    );
    assert_eq!(
        dry_run(&p, 3, "scenarios/both.clnrm.toml"),
        [at("error", "conflicting-keys", 4, 26), at("error", "invalid-value", 4, 62)]
    );
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("`stderr` and `stderr_empty` both say what stderr must be")
        .stderr_has("help: keep `stderr_empty = true` to require no output at all, or the regex `stderr`")
        .stderr_has("`stdout_empty = false` requires nothing");
}

#[test]
fn run_repeats_the_files_warnings_in_its_summary_and_json_report() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("lax", "[[steps]]\nname = \"s\"\nrun = [\"echo\", \"hi\"]\nexpect = { stdout = '.*' }\n");
    let warning = "scenarios/lax.clnrm.toml:7:21: `stdout = '.*'` matches any output, so it checks nothing";
    p.clnrm(&["run", "--update-baselines", "--report", "json=run.json"])
        .success()
        .stderr_has("warning[regex-matches-anything]")
        .stdout_has(&format!("warning: `lax`: {warning}"));
    let report: serde_json::Value = serde_json::from_str(&p.read("run.json")).unwrap();
    assert_eq!(report["scenarios"][0]["warnings"], serde_json::json!([warning]));
    // A cached scenario still carries them.
    p.clnrm(&["run"]).success().stdout_has("CACHED").stdout_has(&format!("warning: `lax`: {warning}"));
    p.assert_clean();
}

// Part 2: values that used to fail only at run time.

#[test]
fn a_scenario_name_too_long_for_a_baseline_file_name_is_invalid() {
    let p = Project::with_fixture();
    let step = "[[steps]]\nname = \"s\"\nrun = [\"true\"]\n";
    p.write("scenarios/long.clnrm.toml", format!("[scenario]\nname = \"{}\"\n\n{step}", "a".repeat(221)));
    p.write("scenarios/fits.clnrm.toml", format!("[scenario]\nname = \"{}\"\n\n{step}", "b".repeat(220)));
    assert_eq!(dry_run(&p, 3, "scenarios/long.clnrm.toml"), [at("error", "invalid-name", 2, 8)]);
    assert_eq!(dry_run(&p, 3, "scenarios/fits.clnrm.toml"), []);
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("the scenario name is 221 characters long; at most 220 fit in a file name")
        .stderr_has("help: baselines are written as baselines/<name>.toml.new");
    p.clnrm(&["run"]).code(3).stdout_lacks("PASS").stdout_lacks("FAIL");
}

#[test]
fn environment_names_and_values_the_engine_cannot_pass_are_invalid() {
    let p = Project::with_fixture();
    p.write(
        "scenarios/env.clnrm.toml",
        r#"[services.web]
image = "clnrm-fixture:busybox"
env = { "A=B" = "x", "" = "y", OK = "fine" }

[[steps]]
name = "s"
run = ["true"]
env = { "\u0000" = "x", V = "a\u0000b", N = 3 }
"#,
    );
    assert_eq!(
        dry_run(&p, 3, "scenarios/env.clnrm.toml"),
        [
            at("error", "invalid-env", 3, 9),
            at("error", "invalid-env", 3, 22),
            at("error", "nul-byte", 8, 9),
            at("error", "nul-byte", 8, 29),
        ]
    );
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("`A=B` cannot name an environment variable: `=` ends the name")
        .stderr_has("an environment variable name cannot be empty")
        .stderr_has("help: the engine passes NAME=value")
        .stderr_has("environment variable `V` contains a NUL byte");
}

#[test]
fn nul_bytes_in_commands_are_invalid() {
    let p = Project::with_fixture();
    p.write(
        "scenarios/nul.clnrm.toml",
        r#"[services.web]
image = "clnrm-fixture:busybox"
command = ["sleep", "3\u0000"]
wait = { exec = "test \u0000" }

[[steps]]
name = "argv"
run = ["echo", "fine", "a\u0000b"]

[[steps]]
name = "shell"
run = "echo \u0000"
"#,
    );
    assert_eq!(
        dry_run(&p, 3, "scenarios/nul.clnrm.toml"),
        [
            at("error", "nul-byte", 3, 21),
            at("error", "nul-byte", 4, 17),
            at("error", "nul-byte", 8, 24),
            at("error", "nul-byte", 12, 7),
        ]
    );
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("`command` in [services.web] contains a NUL byte")
        .stderr_has("`exec` in `wait` in [services.web] contains a NUL byte")
        .stderr_has("`run` in step `argv` contains a NUL byte")
        .stderr_has("help: arguments, environment variables and paths are C strings");
}

#[test]
fn relative_workdirs_are_invalid() {
    let p = Project::with_fixture();
    p.write(
        "scenarios/dir.clnrm.toml",
        r#"[services.web]
image = "clnrm-fixture:busybox"
workdir = "app"

[[steps]]
name = "s"
run = ["true"]
workdir = "./tmp"

[[steps]]
name = "t"
run = ["true"]
workdir = "/tmp"
"#,
    );
    assert_eq!(
        dry_run(&p, 3, "scenarios/dir.clnrm.toml"),
        [at("error", "invalid-value", 3, 11), at("error", "invalid-value", 8, 11)]
    );
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("`workdir` in [services.web] must be an absolute path")
        .stderr_has("help: write it from the root, e.g. \"/app\"")
        .stderr_has("`workdir` in step `s` must be an absolute path");
}

#[test]
fn image_references_the_engine_would_refuse_are_invalid() {
    let p = Project::with_fixture();
    p.write(
        "scenarios/img.clnrm.toml",
        r#"[services.a]
image = "Busybox:latest"

[services.b]
image = "busybox:bad tag"

[services.c]
image = "ghcr.io/org/app:v2"

[services.d]
image = "localhost:5000/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

[[steps]]
name = "s"
image = "busybox@sha256:abc"
run = ["true"]

[[steps]]
name = "t"
image = ""
run = ["true"]
"#,
    );
    assert_eq!(
        dry_run(&p, 3, "scenarios/img.clnrm.toml"),
        [
            at("error", "invalid-image", 2, 9),
            at("error", "invalid-image", 5, 9),
            at("error", "invalid-image", 15, 9),
            at("error", "invalid-image", 20, 9),
        ]
    );
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("`Busybox:latest` is not a valid image reference: repository names must be lowercase: `Busybox`")
        .stderr_has("help: did you mean \"busybox:latest\"?")
        .stderr_has("the tag `bad tag` is not valid")
        .stderr_has("`sha256:abc` is not a digest")
        .stderr_has("the image reference is empty")
        .stderr_has("help: an image reference is [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST]");

    let p = Project::with_fixture();
    p.write(".clnrm/config.toml", "[defaults]\nimage = \"Clnrm-fixture:busybox\"\n");
    p.scenario("s", "[[steps]]\nname = \"s\"\nrun = [\"true\"]\n");
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("error[invalid-image]: `Clnrm-fixture:busybox` is not a valid image reference")
        .stderr_has("--> .clnrm/config.toml:2:9");
}

#[test]
fn zero_timeouts_and_intervals_are_invalid() {
    let p = Project::with_fixture();
    p.write(
        "scenarios/zero.clnrm.toml",
        r#"[scenario]
timeout = "0s"

[services.web]
image = "clnrm-fixture:busybox"
wait = { exec = ["true"], timeout = "0ms", interval = "0s" }

[[steps]]
name = "s"
run = ["true"]
timeout = "0m"
"#,
    );
    assert_eq!(
        dry_run(&p, 3, "scenarios/zero.clnrm.toml"),
        [
            at("error", "invalid-duration", 2, 11),
            at("error", "invalid-duration", 6, 37),
            at("error", "invalid-duration", 6, 55),
            at("error", "invalid-duration", 11, 11),
        ]
    );
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("`timeout` in [scenario] must be longer than zero")
        .stderr_has("`interval` in `wait` in [services.web] must be longer than zero")
        .stderr_has("help: write a duration longer than zero");

    let p = Project::with_fixture();
    p.write(".clnrm/config.toml", "[defaults]\ntimeout = \"0s\"\nstep_timeout = \"0ms\"\nwait_timeout = \"0h\"\n");
    p.scenario("s", "[[steps]]\nname = \"s\"\nimage = \"busybox\"\nrun = [\"true\"]\n");
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("`timeout` in `defaults` in the config must be longer than zero")
        .stderr_has("--> .clnrm/config.toml:2:11")
        .stderr_has("--> .clnrm/config.toml:3:16")
        .stderr_has("--> .clnrm/config.toml:4:16");
}

#[test]
fn service_names_are_dns_labels_and_clnrm_is_reserved() {
    let p = Project::with_fixture();
    let service = |name: &str| format!("[services.{name}]\nimage = \"clnrm-fixture:busybox\"\n\n");
    let long = "a".repeat(64);
    let fits = "b".repeat(63);
    let names = ["Web", "web_1", "\"-web\"", "\"web.app\"", long.as_str(), "clnrm", "web-1", "x9", fits.as_str()];
    let services: String = names.iter().map(|n| service(n)).collect();
    p.write("scenarios/svc.clnrm.toml", format!("{services}[[steps]]\nname = \"s\"\nrun = [\"true\"]\n"));
    // The first six, each three lines below the one before.
    let expected: Vec<_> =
        (0..6).map(|i| at("error", if i == 5 { "reserved-name" } else { "invalid-name" }, 1 + 3 * i, 11)).collect();
    assert_eq!(dry_run(&p, 3, "scenarios/svc.clnrm.toml"), expected);
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("`Web` is not a valid service name")
        .stderr_has("a DNS label: lowercase letters, digits and `-`, not starting or ending with `-`, at most 63 characters, e.g. `web`")
        .stderr_has("`web_1` is not a valid service name")
        .stderr_has("e.g. `web-1`")
        .stderr_has("error[reserved-name]: the service name `clnrm` is reserved")
        .stderr_has("clnrm's own spans carry service.name = \"clnrm\"");
}

// Part 3: expectations that cannot fail.

#[test]
fn misspelt_selector_keys_get_a_did_you_mean_warning() {
    let p = Project::with_fixture();
    p.write(
        "scenarios/keys.clnrm.toml",
        r#"[[steps]]
name = "a"
run = ["true"]

[[expect.span]]
select = 'span[nmae="a" order.id]'
count = 0

[[expect.span]]
select = 'span[name="a"]'
parent = 'span[servce.name="shop"]'

[expect.trace]
order = [['span[stauts="error"]', 'span[http.route="/"]']]
within = [['span[service.name="x"]', 'span[kind="server"] span[htp.route="/"]']]
"#,
    );
    assert_eq!(
        dry_run(&p, 0, "scenarios/keys.clnrm.toml"),
        [
            at("warning", "unknown-selector-key", 6, 16),
            at("warning", "unknown-selector-key", 11, 16),
            at("warning", "unknown-selector-key", 14, 17),
            at("warning", "unknown-selector-key", 15, 64),
        ]
    );
    p.clnrm(&["dry-run"])
        .success()
        .stderr_has(
            "warning[unknown-selector-key]: selector key `nmae` is neither a span field nor a common attribute: did you mean `name`?",
        )
        .stderr_has("did you mean `service.name`?")
        .stderr_has("did you mean `status`?")
        .stderr_has("did you mean `http.route`?")
        .stderr_has("\n6 | select = 'span[nmae=\"a\" order.id]'\n  |                ^^^^ unknown key\n")
        .stderr_has("so an expectation with `count = 0` would pass whatever the spans");
}

#[test]
fn a_count_of_zero_that_holds_only_because_no_span_has_its_keys_warns() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario(
        "zero",
        r#"
[[steps]]
name = "a"
run = ["true"]

[[expect.span]]
select = 'span[order.idd="1"]'
count = 0

[[expect.span]]
select = 'span[name="a"] span[stauts="error"]'
count = { max = 0 }

[[expect.span]]
select = 'span[clnrm.step.index=99]'
count = 0

[[expect.span]]
select = 'span[name="nothing"]'
count = 0

[[expect.span]]
select = 'span[order.idd="1"]'
count = { min = 0, max = 2 }
"#,
    );
    let first = "[[expect.span]] #1 span[order.idd=\"1\"] holds only because no span in the trace has `order.idd`: \
                 with a count of 0 it cannot fail; check the spelling";
    let second = "[[expect.span]] #2 span[name=\"a\"] span[stauts=\"error\"] holds only because no span in the trace \
                  has `stauts` (did you mean `status`?)";
    let out = p.clnrm(&["run", "--report", "json=run.json"]);
    out.success()
        .stdout_has("PASS [")
        .stdout_has(&format!("warning: `zero`: {first}"))
        .stdout_has(&format!("warning: `zero`: {second}"))
        .stdout_lacks("#3 span")
        .stdout_lacks("#4 span")
        .stdout_lacks("#5 span");
    let report: serde_json::Value = serde_json::from_str(&p.read("run.json")).unwrap();
    assert_eq!(report["scenarios"][0]["status"], "pass");
    let warnings: Vec<&str> =
        report["scenarios"][0]["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    // The dry-run warning about `stauts` first, then the two found at run time.
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(warnings[0].contains("selector key `stauts`"), "{warnings:#?}");
    assert_eq!(warnings[1], first);
    assert!(warnings[2].starts_with(second), "{warnings:#?}");
    p.assert_clean();
}
