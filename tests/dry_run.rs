//! `clnrm dry-run` on good and bad input, through the real binary.

mod common;

use common::{Project, scenario};

#[test]
fn init_then_dry_run_passes() {
    let p = Project::init();
    p.clnrm(&["dry-run"])
        .success()
        .stdout_has("VALID scenarios/hello.clnrm.toml · hello")
        .stdout_has("1 valid, 0 invalid");
}

#[test]
fn the_projects_own_examples_are_valid() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .args(["dry-run", "--format", "json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{json:#}");
    assert!(json["summary"]["valid"].as_u64().unwrap() >= 4, "{json:#}");
}

#[test]
fn broken_toml_points_at_the_line() {
    let p = Project::init();
    p.write("scenarios/bad.clnrm.toml", "[scenario]\nname = \"bad\"\ntags = [\"a\",\n[[steps]]\n");
    p.clnrm(&["dry-run"])
        .code(3)
        .stdout_has("INVALID scenarios/bad.clnrm.toml")
        .stderr_has("error[toml-syntax]: invalid TOML")
        .stderr_has("--> scenarios/bad.clnrm.toml:4:");
}

#[test]
fn unknown_key_suggests_the_real_one() {
    let p = Project::init();
    p.write(
        "scenarios/typo.clnrm.toml",
        "[scenario]\nname = \"typo\"\n\n[[steps]]\nname = \"s\"\nimgae = \"busybox\"\nrun = [\"true\"]\n",
    );
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("error[unknown-key]: unknown key `imgae` in step `s`")
        .stderr_has("--> scenarios/typo.clnrm.toml:6:1")
        .stderr_has("6 | imgae = \"busybox\"\n  | ^^^^^ unknown key")
        .stderr_has("help: did you mean `image`?")
        .stderr_lacks("runs nowhere");
}

#[test]
fn a_misspelt_required_key_is_one_error_not_two() {
    let p = Project::init();
    p.write(
        "scenarios/t.clnrm.toml",
        "[services.db]\nimgae = \"pg\"\n\n[[steps]]\nnmae = \"s\"\nimage = \"b\"\nrun = [\"true\"]\n",
    );
    let out = p.clnrm(&["dry-run", "--format", "json"]);
    out.code(3);
    let codes: Vec<String> = out.json()["files"][1]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes, ["unknown-key", "unknown-key"], "{}", out.stdout);
}

#[test]
fn wrong_type_names_what_was_expected_and_found() {
    let p = Project::init();
    p.write(
        "scenarios/t.clnrm.toml",
        "[scenario]\nname = \"t\"\ntimeout = 30\n\n[[steps]]\nname = \"s\"\nimage = \"b\"\nrun = [\"true\"]\n",
    );
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("`timeout` in [scenario] must be a duration string, found an integer")
        .stderr_has("--> scenarios/t.clnrm.toml:3:11")
        .stderr_has("\"10s\"");
}

#[test]
fn every_error_of_a_file_is_reported_in_one_pass() {
    let p = Project::init();
    p.write(
        "scenarios/many.clnrm.toml",
        r#"[scenario]
nmae = "many"

[services.db]
image = "postgres"
wait = { port = 5432 }

[[steps]]
name = "a"
service = "dbb"
run = ["x"]
timeout = "soon"

[[steps]]
name = "a"
image = "busybox"
run = ["true"]
expect = { stdout = "([" }
"#,
    );
    let out = p.clnrm(&["dry-run", "--format", "json"]);
    out.code(3);
    let json = out.json();
    let diagnostics = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "scenarios/many.clnrm.toml")
        .unwrap()["diagnostics"]
        .clone();
    let codes: Vec<&str> = diagnostics.as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        ["unknown-key", "wait-port", "unknown-service", "invalid-duration", "duplicate-step", "invalid-regex"]
    );
    let lines: Vec<u64> = diagnostics.as_array().unwrap().iter().map(|d| d["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [2, 6, 10, 12, 15, 18]);
}

#[test]
fn template_syntax_error_points_into_the_template() {
    let p = Project::init();
    p.write("scenarios/t.clnrm.toml", "[scenario]\nname = \"{{ who }\"\n");
    p.clnrm(&["dry-run"]).code(3).stderr_has("error[template-syntax]").stderr_has("--> scenarios/t.clnrm.toml:2:16");
}

#[test]
fn broken_template_file_is_reported_once_where_it_is() {
    let p = Project::init();
    p.write("templates/macros.tera", "{% macro step( %}");
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("--> templates/macros.tera:1:")
        .stderr_has("imports `macros.tera`, which has errors")
        .stderr_has("--> scenarios/hello.clnrm.toml:1:");
}

#[test]
fn undefined_variable_is_named_where_it_is_used() {
    let p = Project::init();
    p.write(
        "scenarios/u.clnrm.toml",
        "[scenario]\nname = \"u\"\n\n[[steps]]\nname = \"s\"\nimage = \"b\"\nrun = [\"echo\", \"{{ colour }}\"]\n",
    );
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("error[undefined-variable]: undefined variable `colour`")
        .stderr_has("--> scenarios/u.clnrm.toml:7:20")
        .stderr_has("--var colour=");
    // Defined on the command line, it renders.
    p.clnrm(&["dry-run", "--var", "colour=red"]).success();
}

#[test]
fn errors_in_rendered_text_point_into_the_file_the_user_wrote() {
    let p = Project::init();
    p.write(
        "scenarios/r.clnrm.toml",
        "{% import \"macros.tera\" as m %}\n[scenario]\nname = \"r\"\n\n{{ m::step(name=\"s\", image=\"b\", run=[\"true\"]) }}\nretries = {{ 1 + 1 }}\n",
    );
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("unknown key `retries` in step `s`")
        .stderr_has("--> scenarios/r.clnrm.toml:6:1")
        .stderr_has("6 | retries = {{ 1 + 1 }}")
        .stderr_has("after rendering, this line reads")
        .stderr_has("retries = 2");
}

#[test]
fn var_without_equals_is_a_usage_error() {
    let p = Project::init();
    p.clnrm(&["dry-run", "--var", "who"]).code(2).stderr_has("expected KEY=VALUE");
}

#[test]
fn override_of_the_wrong_type_points_at_the_declaration() {
    let p = Project::init();
    p.write("scenarios/n.clnrm.toml", "[scenario]\nname = \"n\"\n\n[vars]\nitems = 3\n\n[[steps]]\nname = \"s\"\nimage = \"b\"\nrun = \"seq {{ items }}\"\n");
    p.clnrm(&["dry-run", "--var", "items=many"])
        .code(3)
        .stderr_has("--var items=many: `items` is declared as an integer")
        .stderr_has("--> scenarios/n.clnrm.toml:5:1");
    p.clnrm(&["dry-run", "--var", "items=5"]).success();
}

#[test]
fn file_that_is_not_utf8_is_reported_at_the_bad_byte() {
    let p = Project::init();
    p.write("scenarios/l.clnrm.toml", b"[scenario]\nname = \"caf\xe9\"\n");
    p.clnrm(&["dry-run"]).code(3).stderr_has("not valid UTF-8").stderr_has("--> scenarios/l.clnrm.toml:2:12");
}

#[test]
fn empty_file_says_what_a_scenario_needs() {
    let p = Project::init();
    p.write("scenarios/e.clnrm.toml", "\n  \n");
    p.clnrm(&["dry-run"]).code(3).stderr_has("error[empty-file]: the scenario file is empty").stderr_has("[[steps]]");
}

#[test]
fn directory_without_scenarios_exits_6() {
    let p = Project::init();
    std::fs::create_dir_all(p.join("other")).unwrap();
    p.write("other/readme.txt", "not a scenario");
    p.clnrm(&["dry-run", "other"]).code(6).stderr_has("no scenario files found in other");
    let bare = Project::empty();
    bare.clnrm(&["dry-run"]).code(6).stderr_has("no scenario files found in scenarios");
}

#[test]
fn path_that_does_not_exist_is_a_usage_error_with_a_suggestion() {
    let p = Project::init();
    p.clnrm(&["dry-run", "scenarios/helo.clnrm.toml"])
        .code(2)
        .stderr_has("scenarios/helo.clnrm.toml does not exist (did you mean `hello.clnrm.toml`?)");
}

#[test]
fn two_scenarios_with_the_same_name_in_different_files() {
    let p = Project::init();
    p.write("scenarios/a/x.clnrm.toml", scenario("same"));
    p.write("scenarios/b/y.clnrm.toml", scenario("same"));
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("error[duplicate-scenario]: two scenarios are named `same`")
        .stderr_has("--> scenarios/b/y.clnrm.toml:2:8")
        .stderr_has("first used here")
        .stderr_has("--> scenarios/a/x.clnrm.toml:2:8");
}

#[test]
fn invalid_config_stops_before_any_scenario() {
    let p = Project::init();
    p.write(".clnrm/config.toml", "[defaults]\npull = \"sometimes\"\n");
    p.clnrm(&["dry-run"]).code(3).stderr_has("--> .clnrm/config.toml:2:8").stderr_has("`missing`, `always`, `never`");
}

#[test]
fn json_output_carries_the_same_diagnostics() {
    let p = Project::init();
    p.write(
        "scenarios/typo.clnrm.toml",
        "[scenario]\nnmae = \"x\"\n[[steps]]\nname = \"s\"\nimage = \"b\"\nrun = \"true\"\n",
    );
    let out = p.clnrm(&["dry-run", "--format", "json"]);
    out.code(3);
    assert!(out.stderr.is_empty(), "json mode writes only stdout: {}", out.stderr);
    let json = out.json();
    assert_eq!(json["summary"]["files"], 2);
    assert_eq!(json["summary"]["invalid"], 1);
    let file = &json["files"][1];
    assert_eq!(file["path"], "scenarios/typo.clnrm.toml");
    let d = &file["diagnostics"][0];
    assert_eq!(d["code"], "unknown-key");
    assert_eq!((d["line"].as_u64(), d["column"].as_u64(), d["end_column"].as_u64()), (Some(2), Some(1), Some(5)));
    assert_eq!(d["help"], "did you mean `name`?");
    assert_eq!(d["source_line"], "nmae = \"x\"");
    assert_eq!(json["files"][0]["valid"], true);
    assert_eq!(json["files"][0]["cache_key"].as_str().unwrap().len(), 64);
}

#[test]
fn cache_key_follows_templates_and_vars_and_a_recorded_pass_is_shown() {
    let p = Project::init();
    let key = |p: &Project, args: &[&str]| {
        let out = p.clnrm(&[&["dry-run", "--format", "json"], args].concat());
        out.json()["files"][0]["cache_key"].as_str().unwrap().to_string()
    };
    let first = key(&p, &[]);
    assert_eq!(key(&p, &[]), first, "stable across runs");
    assert_ne!(key(&p, &["--var", "who=you"]), first, "vars are covered");
    let macros = p.read("templates/macros.tera");
    p.write("templates/macros.tera", format!("{macros}\n{{# changed #}}\n"));
    let after_template = key(&p, &[]);
    assert_ne!(after_template, first, "templates pulled in are covered");

    // A pass recorded under the current key makes the scenario "unchanged since its last pass".
    p.write(
        ".clnrm/cache/verdicts/hello.json",
        format!(r#"{{"format":1,"scenario":"hello","key":"x","source_key":"{after_template}","verdict":"pass","duration_ms":12}}"#),
    );
    p.clnrm(&["dry-run"]).success().stdout_has("(unchanged since its last pass)");
    assert_eq!(p.clnrm(&["dry-run", "--format", "json"]).json()["files"][0]["unchanged_since_pass"], true);
}

#[test]
fn corrupted_cache_entry_is_a_warning_not_a_crash() {
    let p = Project::init();
    p.write(".clnrm/cache/verdicts/hello.json", "\0\0garbage");
    p.clnrm(&["dry-run"])
        .success()
        .stderr_has("warning[cache]: ignoring cache entry")
        .stderr_has("it will be rebuilt")
        .stdout_has("1 warning");
    std::fs::remove_dir_all(p.join(".clnrm/cache")).unwrap();
    p.write(".clnrm/cache", "a file where a directory belongs");
    p.clnrm(&["dry-run"]).success().stderr_has("warning[cache]");
}

#[test]
fn dash_c_runs_in_another_directory() {
    let p = Project::init();
    let outside = Project::empty();
    outside.clnrm(&["-C", p.path().to_str().unwrap(), "dry-run"]).success().stdout_has("1 valid");
    outside.clnrm(&["-C", "nowhere", "dry-run"]).code(2).stderr_has("-C nowhere: no such directory");
}

#[test]
fn project_root_is_found_from_a_subdirectory() {
    let p = Project::init();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .arg("dry-run")
        .current_dir(p.join("scenarios"))
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("VALID hello.clnrm.toml"));
}

#[test]
fn bad_selectors_get_a_caret_under_the_exact_character() {
    let p = Project::init();
    p.write(
        "scenarios/sel.clnrm.toml",
        r#"[scenario]
name = "sel"

[[steps]]
name = "a"
image = "busybox"
run = ["true"]

[[expect.span]]
select = 'span[name="x" http.status_code=~"(5"]'
parent = 'span[name="x"'

[expect.trace]
order = [['span[name="a"]', 'spam[name="b"]']]
"#,
    );
    p.clnrm(&["dry-run"])
        .code(3)
        .stdout_has("INVALID scenarios/sel.clnrm.toml · 3 errors")
        .stderr_has(
            "error[invalid-selector]: `select` in [[expect.span]] #1: invalid regular expression: unclosed group",
        )
        .stderr_has("--> scenarios/sel.clnrm.toml:10:43\n")
        .stderr_has("\n   |                                           ^^^^ here\n")
        .stderr_has("error[invalid-selector]: `parent` in [[expect.span]] #1: expected `]` to close the condition list")
        .stderr_has("--> scenarios/sel.clnrm.toml:11:24\n")
        .stderr_has("= help: add `]` after the last condition")
        .stderr_has("error[invalid-selector]: `order` in [expect.trace]: expected `span`, found `spam`")
        .stderr_has(
            "\n14 | order = [['span[name=\"a\"]', 'spam[name=\"b\"]']]\n   |                              ^^^^ here\n",
        );
}

/// Found by the selector fuzz target: a bare value made of a character that is whitespace to
/// Unicode but not to selectors (a no-break space, a form feed) was trimmed away from the error,
/// which then named and pointed at nothing: "`` must be quoted".
#[test]
fn a_bare_no_break_space_is_named_in_the_selector_error() {
    let p = Project::init();
    p.scenario("nbsp", "[[steps]]\nname = \"a\"\nrun = [\"true\"]\n\n[[expect.span]]\nselect = 'span[name=\u{a0}]'\n");
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has(
            "`select` in [[expect.span]] #1: `\u{a0}` must be quoted: only numbers, `true` and `false` can be bare",
        )
        .stderr_lacks("``");
}

/// Found by the template fuzz target: a lone carriage return in a template (an old Mac line end,
/// a stray byte) made the map from rendered lines to template lines count more lines than the file
/// has, and placing an error on a later line panicked. The panic, in a loading thread, was
/// swallowed: the file vanished and dry-run passed (exit 0, "0 files").
#[test]
fn a_lone_carriage_return_in_a_template_is_reported_not_lost() {
    let p = Project::init();
    p.write("scenarios/cr.clnrm.toml", "{# stray\r #}\n[scenario]\nnmae = \"x\"");
    p.clnrm(&["dry-run"])
        .code(3)
        .stdout_has("INVALID scenarios/cr.clnrm.toml")
        .stderr_has("error[unknown-key]: unknown key `nmae` in [scenario]")
        .stderr_has("--> scenarios/cr.clnrm.toml:3:1");
}

/// Found by a crafted input next to the fuzz targets (their inputs are shorter): an error past
/// column 65535 of a line panicked while drawing its caret (a format width may not exceed 65535)
/// instead of being reported.
#[test]
fn an_error_far_along_a_long_line_is_reported() {
    let p = Project::init();
    p.write("scenarios/long.clnrm.toml", format!("[scenario]\n{} = [1\n", "a".repeat(70_000)));
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("error[toml-syntax]: invalid TOML")
        .stderr_has("--> scenarios/long.clnrm.toml:2:");
}

#[test]
fn bad_hermetic_and_ignore_settings_point_at_the_line() {
    let p = Project::init();
    p.write(
        "scenarios/bad.clnrm.toml",
        "[scenario]\nname = \"bad\"\n\n[[steps]]\nname = \"s\"\nimage = \"busybox\"\nrun = [\"true\"]\n\n\
         [expect.trace]\nhermetic = { allow = [\"http://api.example.com/\"], outbound = true }\n\n\
         [baseline]\nignore_attrs = [{ service = \"app\" }]\n",
    );
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("error[invalid-value]: `allow` in `hermetic` in [expect.trace] takes host names and addresses")
        .stderr_has("--> scenarios/bad.clnrm.toml:10:23")
        .stderr_has("error[unknown-key]: unknown key `outbound`")
        .stderr_has("help: valid keys here: `allow`, `outbound_only`")
        .stderr_has("error[missing-key]")
        .stderr_has("--> scenarios/bad.clnrm.toml:13:17");
    p.write(
        "scenarios/bad.clnrm.toml",
        "[scenario]\nname = \"bad\"\n\n[[steps]]\nname = \"s\"\nimage = \"busybox\"\nrun = [\"true\"]\n\n\
         [expect.trace]\nhermetic = \"yes\"\n",
    );
    p.clnrm(&["dry-run"])
        .code(3)
        .stderr_has("error[wrong-type]: `hermetic` in [expect.trace] must be true, false or a table, found a string")
        .stderr_has("--> scenarios/bad.clnrm.toml:10:12");
}
