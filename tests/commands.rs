//! `clnrm init`, `render` and `fmt` through the real binary.

mod common;

use common::{Project, scenario};

#[test]
fn init_creates_the_layout_and_never_overwrites() {
    let p = Project::empty();
    p.write("templates/macros.tera", "{# mine #}");
    p.clnrm(&["init"])
        .success()
        .stdout_has(".clnrm/config.toml")
        .stdout_has("templates/macros.tera (already there, kept)");
    assert_eq!(p.read("templates/macros.tera"), "{# mine #}");
    for file in [".clnrm/config.toml", ".clnrm/.gitignore", "scenarios/hello.clnrm.toml", "baselines/.gitkeep"] {
        assert!(p.join(file).is_file(), "{file} missing");
    }
    let config_before = p.read(".clnrm/config.toml");
    p.clnrm(&["init"]).code(2).stderr_has("already a clnrm project");
    assert_eq!(p.read(".clnrm/config.toml"), config_before);
}

#[test]
fn init_into_a_new_directory() {
    let p = Project::empty();
    p.clnrm(&["init", "proj"]).success().stdout_has("cd proj && clnrm dry-run");
    p.clnrm(&["-C", "proj", "dry-run"]).success();
}

#[test]
fn render_prints_the_rendered_toml() {
    let p = Project::init();
    let out = p.clnrm(&["render", "scenarios/hello.clnrm.toml"]);
    out.success();
    assert!(!out.stdout.contains("{{") && !out.stdout.contains("{%"), "{}", out.stdout);
    out.stdout_has("[[steps]]\nname = \"greet\"").stdout_has("run = [\"echo\", \"hello, world\"]");
}

#[test]
fn render_applies_variable_precedence() {
    let p = Project::empty();
    p.write(".clnrm/config.toml", "[vars]\na = \"config\"\nb = \"config\"\nc = \"config\"\nd = \"config\"\n");
    p.write("s.clnrm.toml", "[vars]\na = \"scenario\"\nb = \"scenario\"\nc = \"scenario\"\n\n[x]\nv = \"{{ a }} {{ b }} {{ c }} {{ d }}\"\n");
    let out =
        p.clnrm_env(&["render", "s.clnrm.toml", "--var", "a=cli"], &[("CLNRM_VAR_a", "env"), ("CLNRM_VAR_b", "env")]);
    out.success().stdout_has("v = \"cli env scenario config\"");
}

#[test]
fn render_reports_template_errors_and_prints_nothing_else() {
    let p = Project::init();
    p.write("scenarios/x.clnrm.toml", "v = \"{{ env(name=\"CLNRM_SURELY_UNSET\") }}\"\n");
    let out = p.clnrm(&["render", "scenarios/x.clnrm.toml"]);
    out.code(3).stderr_has("`CLNRM_SURELY_UNSET` is not set").stderr_has("--> scenarios/x.clnrm.toml:1:");
    assert!(out.stdout.is_empty());
    p.clnrm_env(&["render", "scenarios/x.clnrm.toml"], &[("CLNRM_SURELY_UNSET", "set")])
        .success()
        .stdout_has("v = \"set\"");
    p.clnrm(&["render", "scenarios"]).code(2).stderr_has("is a directory");
}

const MESSY: &str = "[scenario]\nname   =   \"m\"      # the name\ntags=[\"a\",\"b\"]\n[[steps]]\nname=\"s\"\nimage = \"b\"\nrun = [ \"echo\",\"hi\" ]\n\n\n\nexpect={exit=0}\n";

#[test]
fn fmt_formats_in_place_keeping_comments_and_is_idempotent() {
    let p = Project::empty();
    p.write("scenarios/m.clnrm.toml", MESSY);
    p.clnrm(&["fmt"]).success().stdout_has("formatted scenarios/m.clnrm.toml");
    let formatted = p.read("scenarios/m.clnrm.toml");
    assert_eq!(
        formatted,
        "[scenario]\nname = \"m\"          # the name\ntags = [\"a\", \"b\"]\n\n[[steps]]\nname = \"s\"\nimage = \"b\"\nrun = [\"echo\", \"hi\"]\n\nexpect = { exit = 0 }\n"
    );
    p.clnrm(&["fmt"]).success().stdout_has("0 formatted, 1 unchanged");
    assert_eq!(p.read("scenarios/m.clnrm.toml"), formatted);
    p.clnrm(&["dry-run"]).success();
}

#[test]
fn fmt_check_shows_a_diff_exits_1_and_changes_nothing() {
    let p = Project::empty();
    p.write("scenarios/m.clnrm.toml", MESSY);
    p.clnrm(&["fmt", "--check"])
        .code(1)
        .stdout_has("would reformat scenarios/m.clnrm.toml")
        .stdout_has("+tags = [\"a\", \"b\"]");
    assert_eq!(p.read("scenarios/m.clnrm.toml"), MESSY);
}

#[test]
fn fmt_keeps_expressions() {
    let p = Project::init();
    p.write(
        "scenarios/expr.clnrm.toml",
        "[scenario]\nname=\"{{ who }}-x\"\n[[steps]]\nname = \"s\"\nimage=\"b\"\nrun = [\"true\"]\ncount={{ 1 + 1 }}\n",
    );
    p.clnrm(&["fmt"]).success();
    let expr = p.read("scenarios/expr.clnrm.toml");
    assert!(expr.contains("name = \"{{ who }}-x\"\n") && expr.contains("count = {{ 1 + 1 }}\n"), "{expr}");
}

/// A scenario in the shape `clnrm init` writes, importing macros and looping over a call.
const MESSY_WITH_TAGS: &str = "{% import \"macros.tera\" as m %}\n[scenario]\nname=\"tags\"\n\
    {% for i in range(end=2) %}\n{{ m::step(name=\"step \" ~ i, image=\"busybox:1.36\", run=[\"echo\",  \"hi\"]) }}\n\
    {% endfor %}\n[[steps]]\nname  =  \"last\"\nimage=\"busybox:1.36\"\n  run = [ \"true\" ]\n";

#[test]
fn fmt_formats_files_with_tera_tags_keeping_the_tags() {
    let p = Project::init();
    let from_init = p.read("scenarios/hello.clnrm.toml");
    p.write("scenarios/tags.clnrm.toml", MESSY_WITH_TAGS);
    p.clnrm(&["fmt"])
        .success()
        .stdout_has("formatted scenarios/tags.clnrm.toml")
        .stdout_has("1 formatted, 2 unchanged");
    assert_eq!(p.read("scenarios/hello.clnrm.toml"), from_init);
    assert_eq!(
        p.read("scenarios/tags.clnrm.toml"),
        "{% import \"macros.tera\" as m %}\n[scenario]\nname = \"tags\"\n{% for i in range(end=2) %}\n\
         {{ m::step(name=\"step \" ~ i, image=\"busybox:1.36\", run=[\"echo\",  \"hi\"]) }}\n{% endfor %}\n\
         [[steps]]\nname = \"last\"\nimage = \"busybox:1.36\"\nrun = [\"true\"]\n"
    );
    p.clnrm(&["fmt", "--check"]).success().stdout_has("0 would reformat, 3 unchanged");
    p.clnrm(&["dry-run"]).success();
}

#[test]
fn fmt_skips_files_with_macro_definitions() {
    let p = Project::empty();
    let with_macro = "[scenario]\n{% macro n() %}1  2{% endmacro %}\nname  =  \"{{ self::n() }}\"\n";
    p.write("scenarios/macro.clnrm.toml", with_macro);
    p.clnrm(&["fmt"])
        .success()
        .stdout_has("skipped scenarios/macro.clnrm.toml")
        .stdout_has("the {% macro %} block on line 2");
    assert_eq!(p.read("scenarios/macro.clnrm.toml"), with_macro);
}

#[test]
fn fmt_reports_untokenizable_files_without_touching_them() {
    let p = Project::empty();
    let broken = "[scenario]\nname = \"unterminated\n";
    p.write("scenarios/b.clnrm.toml", broken);
    p.write("scenarios/ok.clnrm.toml", scenario("ok"));
    p.clnrm(&["fmt"])
        .code(3)
        .stderr_has("cannot format: unterminated string")
        .stderr_has("--> scenarios/b.clnrm.toml:2:8");
    assert_eq!(p.read("scenarios/b.clnrm.toml"), broken);
}

#[test]
fn fmt_json_lists_each_file() {
    let p = Project::init();
    p.write("scenarios/m.clnrm.toml", MESSY);
    p.write("scenarios/n.clnrm.toml", "a = 1\n\n{%- filter upper %}\nb = true\n{% endfilter %}\n");
    let json = p.clnrm(&["fmt", "--check", "--format", "json"]).json();
    let statuses: Vec<(&str, &str)> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            (".clnrm/config.toml", "unchanged"),
            ("scenarios/hello.clnrm.toml", "unchanged"),
            ("scenarios/m.clnrm.toml", "would-reformat"),
            ("scenarios/n.clnrm.toml", "skipped"),
        ]
    );
    let skipped = &json["files"][3];
    assert_eq!((skipped["reason"].as_str(), skipped["line"].as_u64()), (Some("tera-filter-block"), Some(3)));
}

#[test]
fn help_explains_commands_and_exit_codes() {
    let p = Project::empty();
    p.clnrm(&["--help"]).success().stdout_has("dry-run").stdout_has("Exit codes").stdout_has("3 invalid");
    p.clnrm(&["dry-run", "--help"]).success().stdout_has("--var <KEY=VALUE>");
    p.clnrm(&["--version"]).success().stdout_has(env!("CARGO_PKG_VERSION"));
    p.clnrm(&["frobnicate"]).code(2);
}
