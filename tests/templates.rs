//! Templates that would never finish rendering (cycles, recursion, runaway loops) or nest deeper
//! than clnrm renders: each is an invalid-input error (exit 3) naming where and why, through the
//! real binary, and the other scenarios are still checked.

mod common;

use common::Project;

const STEP: &str = "[[steps]]\nname = \"s\"\nimage = \"busybox\"\nrun = [\"true\"]\n";

/// A project with a valid scenario `ok`, a scenario `uses` whose file starts with `head` (line 1),
/// and the given files.
fn project(head: &str, files: &[(&str, &str)]) -> Project {
    let p = Project::empty();
    p.scenario("ok", STEP);
    p.write("scenarios/uses.clnrm.toml", format!("{head}\n[scenario]\nname = \"uses\"\n{STEP}"));
    for (path, text) in files {
        p.write(path, text);
    }
    p
}

/// `dry-run` is exit 3 with `needles` on stderr, and still reports the valid scenario.
fn dry_run_refuses(p: &Project, needles: &[&str]) {
    let out = p.clnrm(&["dry-run"]);
    out.code(3).stdout_has("VALID scenarios/ok.clnrm.toml");
    for needle in needles {
        out.stderr_has(needle);
    }
}

#[test]
fn an_include_cycle_is_named_at_the_tag_that_closes_it() {
    let p = project(
        "{% include \"a.tera\" %}",
        &[("templates/a.tera", "{% include \"b.tera\" %}"), ("templates/b.tera", "\n{% include \"a.tera\" %}")],
    );
    dry_run_refuses(
        &p,
        &[
            "error[template-cycle]: templates include each other in a cycle: a.tera → b.tera → a.tera",
            "--> templates/b.tera:2:13",
            "includes `a.tera`, which has errors (reported separately)",
            "--> scenarios/uses.clnrm.toml:1:",
        ],
    );
}

#[test]
fn an_include_cycle_stops_render_and_run_before_the_engine() {
    let p = project(
        "{% include \"a.tera\" %}",
        &[("templates/a.tera", "{% include \"b.tera\" %}"), ("templates/b.tera", "{% include \"a.tera\" %}")],
    );
    p.clnrm(&["render", "scenarios/uses.clnrm.toml"]).code(3).stderr_has("a.tera → b.tera → a.tera");
    // An engine that cannot be reached would be exit 5: exit 3 shows nothing got that far.
    p.clnrm_env(&["run"], &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")])
        .code(3)
        .stderr_has("a.tera → b.tera → a.tera");
}

#[test]
fn a_template_including_itself() {
    let p = project("{% include \"me.tera\" %}", &[("templates/me.tera", "x = 1\n{% include \"me.tera\" %}")]);
    dry_run_refuses(&p, &["error[template-cycle]", "me.tera → me.tera", "--> templates/me.tera:2:"]);
    p.clnrm(&["render", "scenarios/uses.clnrm.toml"]).code(3).stderr_has("me.tera → me.tera");
}

#[test]
fn macro_files_importing_each_other() {
    let p = project(
        "{% import \"m1.tera\" as m1 %}",
        &[
            ("templates/m1.tera", "{% import \"m2.tera\" as m2 %}{% macro a() %}a{% endmacro a %}"),
            ("templates/m2.tera", "{% import \"m1.tera\" as m1 %}{% macro b() %}b{% endmacro b %}"),
        ],
    );
    dry_run_refuses(&p, &["error[template-cycle]", "m1.tera → m2.tera → m1.tera", "--> templates/m2.tera:1:"]);
}

#[test]
fn templates_extending_each_other() {
    let p = project(
        "{% include \"x.tera\" %}",
        &[
            ("templates/x.tera", "x = 1\n"),
            ("templates/a.tera", "{% extends \"b.tera\" %}"),
            ("templates/b.tera", "{% extends \"a.tera\" %}"),
            ("templates/c.tera", "{% extends \"a.tera\" %}"),
        ],
    );
    let out = p.clnrm(&["dry-run"]);
    out.code(3).stdout_has("VALID scenarios/ok.clnrm.toml").stderr_has("a.tera → b.tera → a.tera");
}

#[test]
fn a_macro_calling_itself_is_refused() {
    let p = project(
        "{% import \"macros.tera\" as m %}{{ m::down(n=3) }}",
        &[(
            "templates/macros.tera",
            "{% macro down(n) %}\n{% if n > 0 %}{{ self::down(n=n - 1) }}{% endif %}\n{% endmacro down %}",
        )],
    );
    dry_run_refuses(
        &p,
        &[
            "error[recursive-macro]: recursive macros are not supported: macros.tera::down → macros.tera::down",
            "--> templates/macros.tera:2:",
        ],
    );
}

#[test]
fn macros_calling_each_other_are_refused() {
    let p = project(
        "{% import \"macros.tera\" as m %}{{ m::ping() }}",
        &[(
            "templates/macros.tera",
            "{% macro ping() %}{{ self::pong() }}{% endmacro ping %}\n{% macro pong() %}{{ self::ping() }}{% endmacro pong %}",
        )],
    );
    dry_run_refuses(
        &p,
        &["recursive macros are not supported: macros.tera::ping → macros.tera::pong → macros.tera::ping"],
    );
}

#[test]
fn a_macro_recursing_through_the_namespaces_of_a_parent_is_refused() {
    // Under `extends`, Tera looks calls up in the base template's namespaces, where `m` is.
    let p = Project::empty();
    p.scenario("ok", STEP);
    p.write("templates/base.tera", "{% import \"m.tera\" as m %}[scenario]\n{% block body %}{% endblock body %}\n");
    p.write("templates/m.tera", "{% macro a(n) %}{{ n }} {{ m::a(n=n + 1) }}{% endmacro a %}");
    p.write(
        "scenarios/uses.clnrm.toml",
        format!("{{% extends \"base.tera\" %}}{{% block body %}}# {{{{ m::a(n=1) }}}}\n{STEP}{{% endblock body %}}"),
    );
    dry_run_refuses(&p, &["recursive macros are not supported: m.tera::a → m.tera::a", "--> templates/m.tera:1:28"]);
}

#[test]
fn a_macro_recursing_through_the_namespaces_of_an_included_block_is_refused() {
    // Where a block of an included template renders, Tera looks calls up in that template's
    // namespaces: `m::a` calls itself, though m.tera does not import itself.
    let p = project(
        "{% include \"inc.tera\" %}",
        &[
            ("templates/inc.tera", "{% import \"m.tera\" as m %}{% block b %}# {{ m::a(n=1) }}{% endblock b %}\n"),
            ("templates/m.tera", "{% macro a(n) %}{{ n }} {{ m::a(n=n + 1) }}{% endmacro a %}"),
        ],
    );
    dry_run_refuses(
        &p,
        &[
            "recursive macros are not supported: m.tera::a → m.tera::a",
            "--> templates/m.tera:1:28",
            "includes `inc.tera`, which has errors",
        ],
    );
}

#[test]
fn a_scenario_with_its_own_recursive_macro_is_refused() {
    let p = project("{% macro again() %}{{ self::again() }}{% endmacro again %}{{ self::again() }}", &[]);
    dry_run_refuses(
        &p,
        &[
            "recursive macros are not supported: scenarios/uses.clnrm.toml::again → scenarios/uses.clnrm.toml::again",
            "--> scenarios/uses.clnrm.toml:1:",
        ],
    );
    p.clnrm(&["render", "scenarios/uses.clnrm.toml"]).code(3).stderr_has("error[recursive-macro]");
}

#[test]
fn a_very_deep_include_chain_names_its_depth() {
    let p = project("{% include \"t1.tera\" %}", &[]);
    for i in 1..3000 {
        p.write(&format!("templates/t{i}.tera"), format!("{{% include \"t{}.tera\" %}}", i + 1));
    }
    p.write("templates/t3000.tera", "x = 1\n");
    dry_run_refuses(
        &p,
        &[
            "error[template-depth]: templates nest 3000 levels deep: scenarios/uses.clnrm.toml → t1.tera → t2.tera",
            "→ t3000.tera",
            "--> scenarios/uses.clnrm.toml:1:",
            "at most 32 levels",
        ],
    );
    p.clnrm(&["render", "scenarios/uses.clnrm.toml"]).code(3).stderr_has("3000 levels deep");
}

#[test]
fn nesting_below_the_limits_still_renders() {
    let p = Project::empty();
    for i in 1..20 {
        p.write(&format!("templates/t{i}.tera"), format!("{{% include \"t{}.tera\" %}}", i + 1));
    }
    p.write("templates/t20.tera", "{% import \"macros.tera\" as m %}{{ m::outer(n=2) }}");
    p.write(
        "templates/macros.tera",
        "{% import \"inner.tera\" as inner %}{% macro outer(n) %}{% for i in range(end=n) %}{{ inner::one(i=i) }}{% endfor %}{% endmacro outer %}",
    );
    p.write(
        "templates/inner.tera",
        "{% macro one(i) %}{{ self::two(i=i) }}{% endmacro one %}{% macro two(i) %}# {{ i }}\n{% endmacro two %}",
    );
    p.write("templates/base.tera", "[scenario]\n{% block name %}name = \"base\"{% endblock name %}\n");
    p.write("scenarios/deep.clnrm.toml", format!("[scenario]\n{{% include \"t1.tera\" %}}{STEP}"));
    p.write(
        "scenarios/child.clnrm.toml",
        format!("{{% extends \"base.tera\" %}}{{% block name %}}name = \"child\"\n{STEP}{{% endblock name %}}"),
    );
    p.clnrm(&["dry-run"])
        .success()
        .stdout_has("VALID scenarios/deep.clnrm.toml")
        .stdout_has("VALID scenarios/child.clnrm.toml");
    p.clnrm(&["render", "scenarios/deep.clnrm.toml"]).success().stdout_has("# 0\n# 1\n");
}

#[test]
fn a_huge_range_is_stopped_where_it_is_written() {
    let p = project("\n{% for i in range(end=100000000) %}# {{ i }}\n{% endfor %}", &[]);
    dry_run_refuses(&p, &["error[template-limit]", "--> scenarios/uses.clnrm.toml:2:", "a limit of clnrm"]);
}

#[test]
fn nested_loops_over_large_ranges_are_stopped() {
    let p = project("{% for i in range(end=20000) %}\n{% for j in range(end=20000) %}{% endfor %}{% endfor %}", &[]);
    dry_run_refuses(&p, &["error[template-limit]", "100000 loop iterations", "a limit of clnrm"]);
}

#[test]
fn a_value_doubled_in_a_loop_is_stopped() {
    let p = project("{% set s = \"xx\" %}{% for i in range(end=64) %}{% set_global s = s ~ s %}{% endfor %}", &[]);
    dry_run_refuses(&p, &["error[template-limit]", "MiB", "a limit of clnrm"]);
    let p = project(
        "{% set a = [1] %}{% for i in range(end=64) %}{% set_global a = a | concat(with=a) %}{% endfor %}",
        &[],
    );
    dry_run_refuses(&p, &["error[template-limit]", "a limit of clnrm"]);
}

#[test]
fn macros_fanning_out_are_stopped() {
    let mut macros = String::from("{% macro m0() %}0123456789{% endmacro m0 %}\n");
    for i in 1..30 {
        macros.push_str(&format!(
            "{{% macro m{i}() %}}{{{{ self::m{j}() }}}}{{{{ self::m{j}() }}}}{{% endmacro m{i} %}}\n",
            j = i - 1
        ));
    }
    let p = project("{% import \"laughs.tera\" as l %}# {{ l::m29() }}", &[("templates/laughs.tera", &macros)]);
    dry_run_refuses(&p, &["error[template-limit]", "a limit of clnrm"]);
}

#[test]
fn a_range_that_never_ends_is_refused() {
    let p = project("{% for i in range(end=10, step_by=0) %}{% endfor %}", &[]);
    dry_run_refuses(&p, &["error[template-limit]", "step_by=0"]);
}

#[test]
fn tags_nested_too_deeply_in_one_file_are_refused() {
    let p = project(&format!("{}x = 1{}", "{% if true %}".repeat(300), "{% endif %}".repeat(300)), &[]);
    dry_run_refuses(&p, &["error[template-nesting]", "--> scenarios/uses.clnrm.toml:1:", "64"]);
    let sum = vec!["1"; 3000].join(" + ");
    let p = project(&format!("# {{{{ {sum} }}}}"), &[]);
    dry_run_refuses(&p, &["error[template-nesting]", "--> scenarios/uses.clnrm.toml:1:3", "64"]);
}
