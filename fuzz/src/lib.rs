//! What the fuzz targets share: the fixture project `fuzz/project` that scenarios are loaded in,
//! and the checks every loaded scenario and every baseline must pass.

use std::path::Path;
use std::sync::LazyLock;

use clnrm::baseline::diff::diff;
use clnrm::baseline::normalize::Baseline;
use clnrm::baseline::store;
use clnrm::project::Project;
use clnrm::scenario::vars::Overrides;
use clnrm::scenario::{Loaded, Loader};

/// `fuzz/project`: a config with `[vars]`, templates (the repository's macros, a partial to
/// include and a base to extend) and the repository's baselines, so that a scenario named like one
/// of them is checked against it as `dry-run` does.
static PROJECT: LazyLock<Project> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("project");
    Project::discover(&root).unwrap_or_else(|d| panic!("the fixture project's config is invalid: {d:?}"))
});

static LOADER: LazyLock<Loader<'static>> = LazyLock::new(|| {
    let loader = Loader::new(&PROJECT, Overrides::default());
    assert!(loader.template_diagnostics().is_empty(), "{:?}", loader.template_diagnostics());
    loader
});

/// Loads `data` as the fixture project's `scenarios/fuzz.clnrm.toml`, the way `clnrm dry-run`
/// loads a file, and checks what every load must give.
pub fn load(data: &[u8]) -> Loaded {
    let loaded = LOADER.load_bytes(&PROJECT.root.join("scenarios").join("fuzz.clnrm.toml"), data.to_vec());
    check(&loaded);
    loaded
}

/// A file is valid exactly when it has no error: a file without a scenario and without an error
/// would pass `dry-run` while `run` could not run it. Every diagnostic must show, as text and as
/// JSON.
fn check(loaded: &Loaded) {
    assert_eq!(
        loaded.scenario.is_some(),
        loaded.error_count() == 0,
        "valid exactly when without errors: {:#?}",
        loaded.diagnostics
    );
    assert_eq!(loaded.scenario.is_some(), loaded.scenario_key.is_some(), "a valid scenario has a key");
    for d in &loaded.diagnostics {
        let _ = d.render();
        serde_json::to_string(d).expect("a diagnostic serializes to JSON");
    }
}

/// What must hold of any baseline, however it was made: its file reads back and writes the same
/// bytes again, and it differs from itself in nothing.
pub fn check_baseline(baseline: &Baseline) {
    let text = store::render(baseline);
    let read = store::parse(&text).unwrap_or_else(|e| panic!("a written baseline does not read back: {e:?}\n{text}"));
    assert_eq!(store::render(&read), text, "a written baseline reads back to other bytes");
    let same = diff(baseline, baseline);
    assert!(same.is_same_shape(), "a baseline differs from itself: {same:?}");
    assert_eq!(same.matched.len(), baseline.spans.len(), "every span matches itself");
}
