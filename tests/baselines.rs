//! Baselines through the real binary against the real engine: record, compare, gate, and the
//! pending / review / accept / reject workflow, with and without CI.

mod common;

use common::{Project, engine_available};

macro_rules! require_engine {
    () => {
        if !engine_available() {
            return;
        }
    };
}

const CI: (&str, &str) = ("CI", "true");

/// The demo shop taking an order of `{{ items }}` items (2 unless `--var items=N`), charging in
/// `{{ charge }}` milliseconds (2).
const SHOP: &str = r#"[scenario]
name = "shop"

[vars]
items = 2
charge = 2

[services.shop]
image = "clnrm-demo:local"
command = ["demo-app", "serve", "--port", "8080", "--charge-ms", "{{ charge }}"]
wait = { log = "listening on", timeout = "30s" }

[[steps]]
name = "order"
image = "clnrm-demo:local"
run = ["demo-app", "order", "--shop", "http://shop:8080", "--items", "{{ items }}"]

[[expect.span]]
select = 'span[name="POST /orders" kind="server"]'
"#;

/// A busybox scenario with one step per name.
fn steps(names: &[&str]) -> String {
    names.iter().map(|n| format!("[[steps]]\nname = \"{n}\"\nrun = [\"true\"]\n\n")).collect()
}

/// Every file under `baselines/` with its content, to show nothing was written.
fn baselines(p: &Project) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(p.join("baselines"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).unwrap()))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn record_change_fail_in_ci_accept_and_pass_again() {
    require_engine!();
    let p = Project::with_fixture();
    p.write("scenarios/shop.clnrm.toml", SHOP);

    // First run: no baseline yet, so a pending one and a notice; the run passes.
    p.clnrm(&["run"])
        .success()
        .stdout_has("Pending baselines:")
        .stdout_has("baselines/shop.toml.new  new baseline of")
        .stdout_has("clnrm baseline review");
    assert!(!p.join("baselines/shop.toml").exists());
    p.clnrm(&["baseline", "pending"]).success().stdout_has("shop  baselines/shop.toml.new  new: ");
    // CI without a baseline fails and says how to record one.
    p.clnrm_env(&["run"], &[CI]).code(1).stdout_has("baselines/shop.toml does not exist; record it");
    p.clnrm(&["baseline", "accept"]).success().stdout_has("accepted baselines/shop.toml");
    assert!(!p.join("baselines/shop.toml.new").exists());
    let recorded = p.read("baselines/shop.toml");
    assert!(recorded.contains("scenario = \"shop\""), "{recorded}");
    assert!(recorded.contains("reserve item#2\""), "{recorded}");

    // The accepted baseline is part of the cache key: the scenario runs again, and matches.
    p.clnrm_env(&["run"], &[CI]).success().stdout_has("PASS").stdout_lacks("CACHED");
    p.clnrm_env(&["run"], &[CI]).success().stdout_has("CACHED");

    // The behaviour changes: one more item. CI fails with exit 4, names each broken threshold,
    // shows the tree, and writes nothing.
    let before = baselines(&p);
    let ci = p.clnrm_env(&["run", "--var", "items=3"], &[CI]);
    ci.code(4)
        .stdout_has("REGRESS")
        .stdout_has("added_spans: 1 span added, at most 0 allowed: `")
        .stdout_has("reserve item#3`")
        .stdout_has("attrs: ")
        .stdout_has("order.items: 2 → 3")
        .stdout_has("1 regressed");
    assert_eq!(baselines(&p), before, "CI wrote under baselines/");

    // Outside CI the same run leaves a pending baseline, which `diff` shows.
    p.clnrm(&["run", "--var", "items=3"]).code(4).stdout_has("baselines/shop.toml.new  1 span added");
    p.clnrm(&["diff", "baselines/shop.toml", "baselines/shop.toml.new"])
        .code(1)
        .stdout_has("baselines/shop.toml → baselines/shop.toml.new: 1 span added")
        .stdout_has("reserve item#3");
    let json = p.clnrm(&["diff", "baselines/shop.toml", "baselines/shop.toml.new", "--format", "json"]).json();
    p.clnrm(&["diff", "baselines/shop.toml", "baselines/shop.toml.new", "--slower=-5"]).code(2).stderr_has("0 or more");
    assert_eq!(json["added"].as_array().unwrap().len(), 1, "{json}");

    // Accepting it makes CI pass again.
    p.clnrm(&["baseline", "accept", "shop"]).success();
    p.clnrm_env(&["run", "--var", "items=3"], &[CI]).success().stdout_has("1 passed");
    p.assert_clean();
}

#[test]
fn re_recording_unchanged_behaviour_leaves_the_file_byte_identical() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("steps", &steps(&["one", "two"]));
    p.clnrm(&["run", "--update-baselines", "--repeat", "3"]).success().stdout_has("recorded baselines/steps.toml");
    p.clnrm(&["run"]).success().stdout_has("CACHED");
    let first = p.read("baselines/steps.toml");
    assert!(first.contains("runs = 3"), "{first}");
    assert!(first.contains("samples = 3"), "{first}");
    p.clnrm(&["run", "--update-baselines", "--force", "--repeat", "3"]).success().stdout_lacks("updated");
    p.clnrm_env(&["run", "--force", "--repeat", "3"], &[("CLNRM_UPDATE", "always")]).success();
    assert_eq!(p.read("baselines/steps.toml"), first);
    assert_eq!(baselines(&p).len(), 1, "no pending file either");
}

#[test]
fn ci_refuses_every_write_under_baselines() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("steps", &steps(&["one"]));
    p.clnrm_env(&["run", "--update-baselines"], &[CI])
        .code(2)
        .stderr_has("refusing to write baselines while CI is set");
    p.clnrm_env(&["run"], &[CI, ("CLNRM_UPDATE", "always")]).code(2).stderr_has("CLNRM_UPDATE=always");
    p.clnrm_env(&["run"], &[CI]).code(1).stdout_has("baselines/steps.toml does not exist");
    assert!(baselines(&p).is_empty());
    // A pending file written outside CI cannot be decided in CI.
    p.clnrm(&["run", "--force"]).success();
    let pending = baselines(&p);
    for args in [&["baseline", "accept"][..], &["baseline", "reject"], &["baseline", "review"]] {
        p.clnrm_env(args, &[CI]).code(2).stderr_has("refusing to change baselines/ while CI is set");
    }
    assert_eq!(baselines(&p), pending);
    p.clnrm_env(&["run"], &[("CLNRM_UPDATE", "sometimes")]).code(2).stderr_has("not one of auto, always, new, no");
}

#[test]
fn rejecting_keeps_the_baseline_and_no_writes_with_update_no() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("steps", &steps(&["one"]));
    p.clnrm(&["run", "--update-baselines"]).success();
    let recorded = p.read("baselines/steps.toml");
    p.scenario("steps", &steps(&["one", "two"]));
    p.clnrm_env(&["run"], &[("CLNRM_UPDATE", "no")]).code(4).stdout_has("added_spans");
    assert_eq!(baselines(&p).len(), 1, "CLNRM_UPDATE=no wrote a pending file");
    p.clnrm(&["run"]).code(4);
    p.clnrm(&["baseline", "reject", "nope"]).code(2).stderr_has("`nope` has no pending baseline (pending: steps)");
    p.clnrm(&["baseline", "reject"]).success().stdout_has("rejected baselines/steps.toml.new");
    assert_eq!(baselines(&p), [("steps.toml".to_string(), recorded)]);
    p.clnrm(&["baseline", "pending"]).success().stdout_has("no pending baselines");
}

#[test]
fn review_asks_on_a_terminal_and_applies_each_answer() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("a", &steps(&["one"]));
    p.scenario("b", &steps(&["one"]));
    p.scenario("c", &steps(&["one"]));
    p.clnrm(&["run"]).success();
    // Without a terminal, review refuses rather than guess.
    p.clnrm(&["baseline", "review"]).code(2).stderr_has("asks on a terminal");
    // On a terminal: accept a, reject b, skip c.
    let out = p.clnrm_on_terminal(&["baseline", "review"], "dumb", b"a\nr\nx\ns\n");
    let text = &out.stdout;
    assert_eq!(out.code, 0, "{text}");
    assert!(text.contains("[1/3] a — new: 2 spans"), "{text}");
    assert!(text.contains("+ a  clnrm internal"), "{text}");
    assert!(text.contains("review: 1 accepted, 1 rejected, 1 skipped"), "{text}");
    let names: Vec<String> = baselines(&p).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a.toml", "c.toml.new"]);
}

#[test]
fn a_corrupted_baseline_stops_the_run_naming_the_file() {
    let p = Project::with_fixture();
    p.scenario("steps", &steps(&["one"]));
    p.write("baselines/steps.toml", "format = 1\nscenario = \"steps\"\n[[span]\npath = \"x\"\n");
    for command in ["run", "dry-run"] {
        p.clnrm(&[command])
            .code(3)
            .stderr_has("baselines/steps.toml")
            .stderr_has("the baseline file is not valid")
            .stderr_has("baselines/steps.toml:3:")
            .stderr_has("--update-baselines");
    }
    p.write("baselines/steps.toml", "format = 9\nclnrm = \"9.0.0\"\n");
    p.clnrm(&["run"]).code(3).stderr_has("baseline format 9 is not known");
    // A corrupted pending file is named too, and accepting it changes nothing.
    p.write("baselines/steps.toml.new", "format = 1\n[[span]]\npath = 3\n");
    p.clnrm(&["baseline", "accept"]).code(3).stderr_has("baselines/steps.toml.new");
    assert!(p.join("baselines/steps.toml.new").exists());
    p.write("other.toml", "not a baseline");
    p.clnrm(&["diff", "other.toml", "baselines/steps.toml"]).code(3).stderr_has("other.toml");
}

/// A baseline file of scenario `steps` holding spans with these paths, in this order.
fn baseline_file(paths: &[&str]) -> String {
    let mut text = String::from("format = 1\nscenario = \"steps\"\nclnrm = \"0.1.0\"\nruns = 1\n");
    for path in paths {
        text += &format!(
            "\n[[span]]\npath = \"{path}\"\nservice = \"clnrm\"\nkind = \"internal\"\nstatus = \"unset\"\nstart = \"0ns\"\nduration = \"1ms\"\n"
        );
    }
    text
}

/// Children before their parents, a span apart from its parent, a path whose parent is nowhere,
/// two spans with one path: each made the diff pair spans with the wrong parents ("moved from
/// below `steps › b01` to below `steps › b01`"). Every command that reads the file refuses it,
/// naming the file and the line.
#[test]
fn an_inconsistent_baseline_is_refused_at_its_line() {
    let p = Project::with_fixture();
    p.scenario("steps", &steps(&["one"]));
    // The first span's path is on line 7, the next ones 8 lines apart.
    let sound = ["steps", "steps › b01", "steps › b01 › c", "steps › b02"];
    p.write("sound.toml", baseline_file(&sound));
    p.clnrm(&["diff", "sound.toml", "sound.toml"]).success().stdout_has("no differences");
    let cases: [(&[&str], &str, &str); 4] = [
        (&["steps", "steps › b01 › c", "steps › b01"], ":15:", "span `steps › b01 › c` comes before its parent"),
        (&["steps", "steps › b01", "steps › b02", "steps › b01 › c"], ":31:", "is apart from its parent"),
        (&["steps", "steps › b09 › c"], ":15:", "no span has the path `steps › b09`"),
        (&["steps", "steps › b01", "steps › b01"], ":23:", "two spans have the path `steps › b01`"),
    ];
    for (paths, line, reason) in cases {
        p.write("baselines/steps.toml", baseline_file(paths));
        let at = format!("baselines/steps.toml{line}");
        for command in ["dry-run", "run"] {
            p.clnrm(&[command])
                .code(3)
                .stderr_has(&at)
                .stderr_has(reason)
                .stderr_has("record it again with `clnrm run --update-baselines`");
        }
        for (old, new) in [("sound.toml", "baselines/steps.toml"), ("baselines/steps.toml", "sound.toml")] {
            p.clnrm(&["diff", old, new]).code(3).stderr_has(&at).stderr_has(reason).stdout_lacks("moved");
        }
        let json = p.clnrm(&["dry-run", "--format", "json"]);
        let diagnostic = &json.code(3).json()["files"][0]["diagnostics"][0];
        assert_eq!(diagnostic["file"], "baselines/steps.toml", "{diagnostic}");
        assert_eq!(format!(":{}:", diagnostic["line"]), line, "{diagnostic}");
    }
}

/// Whether `text` holds a terminal escape: the byte itself, or JSON's `\u001b` for it.
fn has_escape(text: &str) -> bool {
    text.contains('\u{1b}') || text.to_ascii_lowercase().contains("\\u001b")
}

/// A regression's tree of changes was styled when the verdict was made, so the JSON report carried
/// the terminal's escape codes (`\u001b[2m`) even with `NO_COLOR` and no terminal. Reports are
/// plain text, whatever the steps print; only a terminal gets colour.
#[test]
fn reports_hold_no_escape_codes_and_a_terminal_still_gets_colour() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("steps", &steps(&["one"]));
    p.clnrm(&["run", "--update-baselines"]).success();
    p.scenario("steps", &steps(&["one", "two"]));
    // A program that colours its own output, and fails.
    p.scenario("loud", "[[steps]]\nname = \"shout\"\nrun = 'printf \"\\033[31mred\\033[0m\\n\" >&2; exit 1'\n");
    for env in [&[("NO_COLOR", "1")][..], &[]] {
        let args = ["run", "--report", "json=report.json", "--report", "junit=report.xml"];
        p.clnrm_env(&args, env).code(1).stdout_has("REGRESS").stdout_has("+   two  clnrm internal");
        let (json, junit) = (p.read("report.json"), p.read("report.xml"));
        assert!(!has_escape(&json), "escape codes in the JSON report:\n{json}");
        assert!(!has_escape(&junit), "escape codes in the JUnit report:\n{junit}");
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        let scenario = |name: &str| report["scenarios"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap();
        let output = scenario("steps")["failure"]["output"].as_str().unwrap();
        assert!(output.contains("+   two  clnrm internal"), "{output}");
        assert!(scenario("loud")["steps"][0]["stderr"].as_str().unwrap().contains("red"), "{json}");
        assert!(junit.contains("+   two  clnrm internal"), "{junit}");
    }
    let pending = p.read("baselines/steps.toml.new");
    assert!(!has_escape(&pending), "{pending}");
    let diff = p.clnrm(&["diff", "baselines/steps.toml", "baselines/steps.toml.new", "--format", "json"]);
    assert!(!has_escape(&diff.stdout), "{}", diff.stdout);
    // On a terminal the same tree is coloured.
    let out = p.clnrm_on_terminal(&["run", "scenarios/steps.clnrm.toml"], "xterm", b"");
    let text = &out.stdout;
    assert_eq!(out.code, 4, "{text}");
    assert!(text.contains("two\u{1b}["), "the terminal got no colour:\n{text}");
    p.assert_clean();
}

#[test]
fn thresholds_gate_durations_above_the_floor_and_warn_on_attributes() {
    require_engine!();
    let p = Project::with_fixture();
    let thresholds = "\n[baseline]\nthresholds = { duration = \"50%\", duration_floor = \"20ms\" }\n";
    p.write("scenarios/shop.clnrm.toml", format!("{SHOP}{thresholds}"));
    p.clnrm(&["run", "--update-baselines", "--var", "charge=100"]).success();
    // The payment provider gets 30% slower: within the percentage.
    p.clnrm_env(&["run", "--var", "charge=130"], &[CI]).success();
    // Four times slower breaks it, naming the span and both times.
    p.clnrm_env(&["run", "--var", "charge=400"], &[CI])
        .code(4)
        .stdout_has("duration: ")
        .stdout_has("POST /orders › charge` 10")
        .stdout_has("more than +50% and more than 20ms")
        .stdout_has("duration 10");
    // From 2ms to 12ms is +500%, but 10ms of growth is under the floor. (A faster run is within
    // the thresholds, so recording it anew needs the old baseline gone.)
    std::fs::remove_file(p.join("baselines/shop.toml")).unwrap();
    p.clnrm(&["run", "--update-baselines", "--var", "charge=2"]).success().stdout_has("recorded baselines/shop.toml");
    p.clnrm_env(&["run", "--var", "charge=12"], &[CI]).success();
    // clnrm's own spans time the engine: a slow step is reported in the JSON, never gated.
    p.write(
        "scenarios/nap.clnrm.toml",
        format!("[scenario]\nname = \"nap\"\n{thresholds}\n[[steps]]\nname = \"nap\"\nrun = [\"sleep\", \"{{{{ nap }}}}\"]\n\n[vars]\nnap = \"0\"\n"),
    );
    p.clnrm(&["run", "--update-baselines", "scenarios/nap.clnrm.toml"]).success();
    p.clnrm_env(&["run", "--var", "nap=0.5", "scenarios/nap.clnrm.toml", "--report", "json=r.json"], &[CI]).success();
    let report: serde_json::Value = serde_json::from_str(&p.read("r.json")).unwrap();
    let durations = &report["scenarios"][0]["baseline"]["diff"]["durations"];
    let step = durations.as_array().unwrap().iter().find(|d| d["path"] == "nap › nap").unwrap();
    assert!(step["ms"].as_f64().unwrap() >= 500.0, "{durations}");
    // An attribute policy of `warn` reports a changed attribute without failing.
    p.write(
        ".clnrm/config.toml",
        "[defaults]\nimage = \"clnrm-fixture:busybox\"\npull = \"never\"\n[thresholds]\nattrs = \"warn\"\n",
    );
    p.scenario("exit", "[[steps]]\nname = \"s\"\nrun = [\"sh\", \"-c\", \"exit {{ code }}\"]\nexpect = { exit = {{ code }} }\n\n[vars]\ncode = 0\n");
    p.clnrm(&["run", "--update-baselines", "scenarios/exit.clnrm.toml"]).success();
    p.clnrm_env(&["run", "--var", "code=3", "scenarios/exit.clnrm.toml"], &[CI])
        .success()
        .stdout_has("warning: `exit` differs from baselines/exit.toml: 1 span changed");
}

#[test]
fn baselines_no_scenario_refers_to_are_reported() {
    require_engine!();
    let p = Project::with_fixture();
    p.scenario("kept", &steps(&["one"]));
    p.scenario("gone", &steps(&["one"]));
    p.clnrm(&["run", "--update-baselines"]).success();
    std::fs::remove_file(p.join("scenarios/gone.clnrm.toml")).unwrap();
    p.clnrm_env(&["run"], &[CI]).success().stdout_has("baselines/gone.toml belongs to no scenario");
}

/// A baseline of scenario `steps` over `runs` runs: the scenario's span (100ms every run) and a
/// `charge` span of the system whose duration is `charge`, a TOML value (one duration, or
/// statistics).
fn timed_baseline(runs: u32, charge: &str) -> String {
    let span = |path: &str, service: &str, duration: &str| {
        format!(
            "\n[[span]]\npath = \"{path}\"\nservice = \"{service}\"\nkind = \"internal\"\nstatus = \"unset\"\nstart = \"0ns\"\nduration = {duration}\n"
        )
    };
    let root = if runs == 1 {
        "\"100ms\"".to_string()
    } else {
        format!("{{ median = \"100ms\", min = \"100ms\", max = \"100ms\", samples = {runs} }}")
    };
    format!(
        "format = 1\nscenario = \"steps\"\nclnrm = \"0.1.0\"\nruns = {runs}\n{}{}",
        span("steps", "clnrm", &root),
        span("steps › charge", "pay", charge)
    )
}

/// A pending file that differs only in durations says whether any span is slower by the config's
/// `duration` threshold (not "no differences"), and with how many runs against how many. Accepting
/// a one-run file over a five-run baseline keeps the five-run statistics of the spans whose timing
/// did not change, and takes the new time of a span that got slower.
#[test]
fn pending_durations_are_shown_and_accepting_one_run_keeps_the_stored_statistics() {
    let p = Project::with_fixture();
    p.write(".clnrm/config.toml", "[thresholds]\nduration = \"50%\"\n");
    let five = "{ median = \"50ms\", min = \"40ms\", max = \"60ms\", samples = 5 }";
    p.write("baselines/steps.toml", timed_baseline(5, five));

    // Within the threshold (+40% of 50%): said so, and accepting keeps the stored statistics.
    p.write("baselines/steps.toml.new", timed_baseline(1, "\"70ms\""));
    p.clnrm(&["baseline", "pending"]).success().stdout_has(
        "steps  baselines/steps.toml.new  unchanged: same spans, none slower by more than +50% and 2ms; 1 run (stored: 5 runs)",
    );
    p.clnrm(&["baseline", "accept"]).success().stdout_has("kept the stored statistics (5 runs) of 2 spans");
    assert!(!p.join("baselines/steps.toml.new").exists());
    let accepted = p.read("baselines/steps.toml");
    assert!(accepted.contains("runs = 5\n"), "{accepted}");
    assert!(accepted.contains(&format!("duration = {five}\n")), "{accepted}");

    // Slower past it (+60%): the span is named, in text and JSON; accepted, it takes the new time.
    p.write("baselines/steps.toml.new", timed_baseline(1, "\"80ms\""));
    p.clnrm(&["baseline", "pending"])
        .success()
        .stdout_has("steps  baselines/steps.toml.new  changed: 1 span slower; 1 run (stored: 5 runs)");
    let json = p.clnrm(&["baseline", "pending", "--format", "json"]).json();
    let pending = &json["pending"][0];
    assert_eq!(pending["summary"], "changed: 1 span slower; 1 run (stored: 5 runs)", "{json}");
    assert_eq!((&pending["runs"], &pending["stored_runs"]), (&1.into(), &5.into()), "{json}");
    assert_eq!(pending["diff"]["slower"][0]["path"], "steps › charge", "{json}");
    assert_eq!(pending["diff"]["slower"][0]["baseline_ms"], 50.0, "{json}");
    assert_eq!(pending["diff"]["slower"][0]["ms"], 80.0, "{json}");
    p.clnrm(&["baseline", "accept", "steps"]).success().stdout_has("kept the stored statistics (5 runs) of 1 span");
    let accepted = p.read("baselines/steps.toml");
    assert!(accepted.contains("duration = \"80ms\"\n"), "{accepted}");
    assert!(accepted.contains("samples = 5 }"), "the scenario's span keeps its statistics: {accepted}");
}
