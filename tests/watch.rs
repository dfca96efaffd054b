//! `clnrm watch` through the real binary, on the real engine: what a change reruns, diagnostics
//! without a run, cancelling stale work, keys, and that quitting leaves nothing behind.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Project, engine_available};

const WAIT: Duration = Duration::from_secs(60);

/// A step from the template macro `echo`.
fn templated(text: &str) -> String {
    format!("{{% import \"step.tera\" as s %}}\n{{{{ s::echo(name=\"say\", text=\"{text}\") }}}}\n")
}

fn plain(text: &str) -> String {
    format!("[[steps]]\nname = \"say\"\nrun = [\"echo\", \"{text}\"]\n")
}

/// `a` and `b` use the template, `c` does not.
fn project() -> Project {
    let p = Project::with_fixture();
    p.write(
        "templates/step.tera",
        "{% macro echo(name, text) %}[[steps]]\nname = \"{{ name }}\"\nrun = [\"echo\", \"{{ text }}\"]\n{% endmacro echo %}\n",
    );
    p.write("scenarios/a.clnrm.toml", templated("a")).write("scenarios/b.clnrm.toml", templated("b"));
    p.scenario("c", &plain("c"));
    p
}

/// The lines of run `n` (from its `run N:` line to the next run or `watching for changes`).
fn run_section(output: &str, n: usize) -> String {
    let start = output.find(&format!("\nrun {n}:")).unwrap_or_else(|| panic!("no run {n} in:\n{output}")) + 1;
    let rest = &output[start..];
    let end = [rest.find("watching for changes"), rest.find("\nrun ")].into_iter().flatten().min();
    rest[..end.unwrap_or(rest.len())].to_string()
}

/// The scenarios a run section reports as run (PASS or FAIL lines, not the failures' summary).
fn ran(section: &str) -> Vec<String> {
    let mut names: Vec<String> = section
        .lines()
        .filter(|l| (l.contains("PASS [") || l.contains("FAIL [")) && !l.ends_with(')'))
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect();
    names.sort();
    names
}

#[test]
fn a_change_reruns_exactly_its_dependents_and_an_invalid_file_only_shows_its_problem() {
    if !engine_available() {
        return;
    }
    let p = project();
    let watch = p.watch(&[], false);
    let out = watch.wait_for("watching for changes", 1, WAIT);
    assert_eq!(ran(&run_section(&out, 1)), ["a", "b", "c"], "{out}");

    // A scenario: only it reruns.
    p.scenario("c", &plain("c, again"));
    let out = watch.wait_for("watching for changes", 2, WAIT);
    assert!(out.contains("changed: scenarios/c.clnrm.toml"), "{out}");
    assert_eq!(ran(&run_section(&out, 2)), ["c"], "{out}");

    // A template: exactly the scenarios that import it.
    p.write(
        "templates/step.tera",
        "{% macro echo(name, text) %}[[steps]]\nname = \"{{ name }} it\"\nrun = [\"echo\", \"{{ text }}\"]\n{% endmacro echo %}\n",
    );
    let out = watch.wait_for("watching for changes", 3, WAIT);
    assert_eq!(ran(&run_section(&out, 3)), ["a", "b"], "{out}");

    // An invalid file: its problem with file and line, nothing run, watch goes on.
    p.write("scenarios/b.clnrm.toml", "[[steps]]\nname = \"say\"\nrun = [\"echo\", \"b\"\n");
    let out = watch.wait_for("watching for changes", 4, WAIT);
    assert!(out.contains("scenarios/b.clnrm.toml:3:"), "{out}");
    assert!(!out.contains("run 4:"), "{out}");

    // Fixed: it runs.
    p.scenario("b", &plain("b, fixed"));
    let out = watch.wait_for("watching for changes", 5, WAIT);
    assert_eq!(ran(&run_section(&out, 4)), ["b"], "{out}");

    // A write that changes nothing the scenarios depend on reruns nothing.
    p.write("notes.txt", "not a dependency\n");
    p.write(".clnrm/cache/verdicts/x.json", "{}");
    std::thread::sleep(Duration::from_millis(800));
    assert!(!watch.output().contains("run 5:"), "{}", watch.output());

    // Ctrl-C: exit 130 and nothing left on the engine.
    assert_eq!(watch.interrupt(), 130);
    p.assert_clean();
}

#[test]
fn a_change_during_a_run_cancels_it_and_removes_its_containers() {
    if !engine_available() {
        return;
    }
    let p = Project::with_fixture();
    p.scenario("slow", "[[steps]]\nname = \"wait\"\nrun = [\"sleep\", \"37\"]\n");
    let watch = p.watch(&[], false);
    watch.wait_for("run 1:", 1, WAIT);
    // Once the step runs, change the scenario.
    let deadline = std::time::Instant::now() + WAIT;
    while sleeping(&p) == 0 {
        assert!(std::time::Instant::now() < deadline, "the step never started:\n{}", watch.output());
        std::thread::sleep(Duration::from_millis(50));
    }
    p.scenario("slow", "[[steps]]\nname = \"wait\"\nrun = [\"sleep\", \"0\"]\n");
    let out = watch.wait_for("watching for changes", 1, Duration::from_secs(25));
    assert!(out.contains("run 2:"), "{out}");
    assert_eq!(ran(&run_section(&out, 2)), ["slow"], "{out}");
    assert!(ran(&run_section(&out, 1)).is_empty(), "the cancelled run reports nothing:\n{out}");
    assert_eq!(sleeping(&p), 0, "the cancelled step's container is gone");
    assert_eq!(watch.interrupt(), 130);
    p.assert_clean();
}

/// Containers of the project running `sleep 37`.
fn sleeping(p: &Project) -> usize {
    let (containers, _) = p.leftovers();
    containers
        .iter()
        .filter(|c| {
            let top = Command::new("docker").args(["top", c]).output().expect("docker top");
            String::from_utf8_lossy(&top.stdout).contains("sleep 37")
        })
        .count()
}

#[test]
fn on_a_terminal_keys_accept_baselines_rerun_everything_and_quit() {
    if !engine_available() {
        return;
    }
    let p = Project::with_fixture();
    p.scenario("a", &plain("a")).scenario("b", &plain("b"));
    let mut watch = p.watch(&[], true);
    watch.wait_for("a accept 2 pending baselines", 1, WAIT);
    assert!(p.join("baselines/a.toml.new").exists());

    // a: the pending baselines become the baselines, and their scenarios' comparisons rerun.
    watch.press("a");
    watch.wait_for("accepted the baseline of b", 1, WAIT);
    let out = watch.wait_for("r rerun all", 2, WAIT);
    assert!(p.join("baselines/a.toml").exists() && p.join("baselines/b.toml").exists(), "{out}");
    assert!(!p.join("baselines/a.toml.new").exists(), "{out}");
    // The renames may arrive as two changes; let both runs end.
    std::thread::sleep(Duration::from_secs(2));

    // r: everything, even what is cached.
    let idle = watch.output().matches("r rerun all").count();
    watch.press("r");
    let out = watch.wait_for("r rerun all", idle + 1, WAIT);
    let last = &out[out.rfind("\nrun ").unwrap()..];
    assert_eq!(ran(last), ["a", "b"], "{out}");

    // q: quits with 0, leaving nothing.
    watch.press("q");
    assert_eq!(watch.wait(), 0);
    p.assert_clean();
}

#[test]
fn bad_arguments_are_usage_errors() {
    let p = Project::with_fixture();
    p.scenario("a", &plain("a"));
    p.clnrm(&["watch", "--debounce", "soon"]).code(2).stderr_has("--debounce");
    p.clnrm(&["watch", "scenarios/nope.clnrm.toml"]).code(2).stderr_has("does not exist");
    p.clnrm(&["--format", "json", "watch"]).code(2).stderr_has("not supported");
}

#[test]
fn a_build_context_change_rebuilds_its_image_and_reruns_its_users_and_the_config_reruns_all() {
    if !engine_available() {
        return;
    }
    let p = Project::with_fixture();
    p.write("app/Dockerfile", "FROM clnrm-fixture:busybox\nCOPY message /message\n");
    // Unique content, so the image is built here rather than found from an earlier test run.
    let unique = p.path().display().to_string();
    p.write("app/message", format!("first {unique}\n"));
    p.scenario("built", "[[steps]]\nname = \"read\"\nbuild = \"../app\"\nrun = [\"grep\", \"first\", \"/message\"]\n");
    p.scenario("plain", &plain("plain"));
    let watch = p.watch(&[], false);
    let out = watch.wait_for("watching for changes", 1, WAIT);
    assert_eq!(ran(&run_section(&out, 1)), ["built", "plain"], "{out}");

    // The context changed: a new image, and only its user runs (and now fails: no "first").
    p.write("app/message", format!("second {unique}\n"));
    let out = watch.wait_for("watching for changes", 2, WAIT);
    let section = run_section(&out, 2);
    assert!(section.contains("BUILT"), "{out}");
    assert_eq!(ran(&section), ["built"], "{out}");
    assert!(section.contains("FAIL ["), "{out}");

    // The config: everything is reloaded and runs again (its settings are part of every key).
    p.write(
        ".clnrm/config.toml",
        "[defaults]\nimage = \"clnrm-fixture:busybox\"\npull = \"never\"\n[otel]\nsettle = \"150ms\"\n",
    );
    let out = watch.wait_for("watching for changes", 3, WAIT);
    assert_eq!(ran(&run_section(&out, 3)), ["built", "plain"], "{out}");

    // An invalid config: its problem, nothing run, and watch goes on.
    p.write(".clnrm/config.toml", "[defaults]\nimage = 5\n");
    watch.wait_for(".clnrm/config.toml:2:", 1, WAIT);
    assert_eq!(watch.interrupt(), 130);
    p.assert_clean();
}
