//! Scenario files from disk to a validated model: read → extract `[vars]` → resolve variables →
//! render → parse TOML → read the model → validate → the key of its sources. Files load in
//! parallel; checks across files (unique names) run once all are loaded. Baselines are not read
//! here: the plan stage after loading does that (`run::plan::plan`).

pub mod discover;
pub mod fmt;
pub mod model;
pub mod read;
pub mod render;
pub mod validate;
pub mod vars;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use toml::de::DeTable;

use crate::cache::{Key, KeyInputs};
use crate::config::Vars;
use crate::diagnostic::{Diagnostic, Location, SourceFile};
use crate::project::Project;
use crate::schema::{Cx, Locator};
use crate::sourcemap::SourceMap;
use model::Scenario;
use render::{Renderer, Templates};
use vars::Overrides;

/// The smallest useful step, for help texts.
pub const EXAMPLE_STEP: &str = "[[steps]]\nname = \"say hello\"\nimage = \"busybox:1.36\"\nrun = [\"echo\", \"hello\"]";

/// A scenario's name and where it is written (no location when it comes from the file name).
pub type Named = (String, Option<Location>);

/// One scenario file after loading.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    /// The path as shown to the user.
    pub display: String,
    /// The scenario, when the file has no errors.
    pub scenario: Option<Scenario>,
    /// The scenario's name and where it is written.
    pub name: Option<Named>,
    /// Errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Template files the scenario pulled in (for `watch`).
    pub templates: Vec<PathBuf>,
    /// The key of the scenario's sources alone, present when it is valid.
    pub scenario_key: Option<Key>,
}

impl Loaded {
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
}

/// Loads scenario files of one project.
pub struct Loader<'p> {
    project: &'p Project,
    templates: Templates,
    overrides: Overrides,
    config_fingerprint: Vec<u8>,
}

impl<'p> Loader<'p> {
    pub fn new(project: &'p Project, overrides: Overrides) -> Self {
        let templates = Templates::load(&project.templates_dir(), |p| project.display(p));
        let config_fingerprint = project.config.fingerprint();
        Self { project, templates, overrides, config_fingerprint }
    }

    /// Problems in `templates/` files, reported once rather than per scenario.
    pub fn template_diagnostics(&self) -> &[Diagnostic] {
        &self.templates.diagnostics
    }

    /// Loads every file, in parallel, then checks that scenario names are unique. The result is in
    /// the order of `paths`.
    pub fn load_all(&self, paths: &[PathBuf]) -> Vec<Loaded> {
        let next = AtomicUsize::new(0);
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(paths.len()).max(1);
        let mut results: Vec<(usize, Loaded)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let mut renderer = self.templates.renderer();
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(path) = paths.get(i) else { break };
                            done.push((i, self.load(&mut renderer, path)));
                        }
                        done
                    })
                })
                .collect();
            // A worker's panic is the process's: swallowed, its files would vanish from the results
            // and the rest would pass for every file there is.
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        });
        results.sort_by_key(|(i, _)| *i);
        let mut loaded: Vec<Loaded> = results.into_iter().map(|(_, l)| l).collect();
        check_unique_names(&mut loaded);
        loaded
    }

    /// Renders one file without parsing the result (`clnrm render`).
    pub fn render(&self, path: &Path) -> Result<String, Vec<Diagnostic>> {
        let source = self.read_source(path)?;
        let (_, resolved) = self.variables(&source)?;
        let mut diagnostics = self.templates.diagnostics.clone();
        match self.templates.renderer().render(&source, &resolved) {
            Ok(rendered) => Ok(rendered.text),
            Err(errors) => {
                diagnostics.extend(errors);
                Err(diagnostics)
            }
        }
    }

    fn load(&self, renderer: &mut Renderer, path: &Path) -> Loaded {
        self.load_source(renderer, path, self.read_source(path))
    }

    /// Loads one scenario from its bytes, as if they had been read from the file at `path`: all
    /// that [`Loader::load_all`] does to a file but reading it from disk and comparing names with
    /// other files. It lets the fuzz targets drive the real loading code in memory.
    pub fn load_bytes(&self, path: &Path, bytes: Vec<u8>) -> Loaded {
        let source = decode(self.project.display(path), bytes);
        self.load_source(&mut self.templates.renderer(), path, source)
    }

    fn load_source(&self, renderer: &mut Renderer, path: &Path, source: Result<SourceFile, Vec<Diagnostic>>) -> Loaded {
        let display = self.project.display(path);
        let mut loaded = Loaded {
            path: path.to_path_buf(),
            display,
            scenario: None,
            name: None,
            diagnostics: Vec::new(),
            templates: Vec::new(),
            scenario_key: None,
        };
        if let Err(diagnostics) = source.and_then(|source| self.load_into(renderer, &mut loaded, source)) {
            loaded.diagnostics = diagnostics;
        }
        loaded
    }

    fn load_into(
        &self,
        renderer: &mut Renderer,
        loaded: &mut Loaded,
        source: SourceFile,
    ) -> Result<(), Vec<Diagnostic>> {
        if source.text.trim().is_empty() {
            let help = format!("a scenario needs at least one step, e.g.\n{EXAMPLE_STEP}");
            return Err(vec![
                Diagnostic::error("empty-file", "the scenario file is empty").in_file(&loaded.display).help(help),
            ]);
        }
        let (scenario_vars, resolved) = self.variables(&source)?;
        let rendered = renderer.render(&source, &resolved)?;
        loaded.templates =
            rendered.templates.iter().filter_map(|name| self.templates.file(name)).map(|f| f.path.clone()).collect();

        let locator = if rendered.text == source.text {
            Locator::Plain(&source)
        } else {
            Locator::Rendered(SourceMap::new(&source, &rendered.text))
        };
        let mut cx = Cx::new(locator);
        let (doc, errors) = DeTable::parse_recoverable(&rendered.text);
        for error in errors {
            cx.report_syntax(toml_syntax_error(&error), error.span().unwrap_or(0..0));
        }
        let stem = discover::stem(&loaded.path);
        let base_dir = loaded.path.parent().unwrap_or(Path::new("."));
        let context = read::Context { stem: &stem, vars: scenario_vars, config: &self.project.config, base_dir };
        let scenario = read::read(&mut cx, &doc, context);
        validate::validate(&mut cx, &scenario);
        let name_location = scenario.name_span.clone().and_then(|span| cx.locate(span)).map(|(_, location)| location);
        loaded.name = Some((scenario.name.clone(), name_location));
        let ok = !cx.has_errors();
        loaded.diagnostics = cx.into_diagnostics();
        if ok {
            let templates: Vec<(&str, blake3::Hash)> = rendered
                .templates
                .iter()
                .filter_map(|name| Some((name.as_str(), self.templates.file(name)?.hash)))
                .collect();
            let inputs = KeyInputs {
                rendered: &rendered.text,
                templates: &templates,
                vars: &resolved,
                config: &self.config_fingerprint,
            };
            loaded.scenario_key = Some(inputs.key());
            loaded.scenario = Some(scenario);
        }
        Ok(())
    }

    /// The scenario's own `[vars]`, and the variables it renders with after precedence.
    fn variables(&self, source: &SourceFile) -> Result<(Vars, Vars), Vec<Diagnostic>> {
        let own = vars::extract(source)?;
        let config = &self.project.config;
        let resolved = vars::resolve(&config.vars, &own, &self.overrides, source, &self.project.config_name)?;
        Ok((own.vars, resolved))
    }

    /// Reads a file as UTF-8 text; anything else is a diagnostic.
    fn read_source(&self, path: &Path) -> Result<SourceFile, Vec<Diagnostic>> {
        let display = self.project.display(path);
        let bytes = std::fs::read(path)
            .map_err(|err| vec![Diagnostic::error("io", format!("cannot read the file: {err}")).in_file(&display)])?;
        decode(display, bytes)
    }
}

/// A file's bytes as UTF-8 text; anything else is a diagnostic pointing at the first bad byte.
fn decode(display: String, bytes: Vec<u8>) -> Result<SourceFile, Vec<Diagnostic>> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(display, text)),
        Err(err) => {
            let at = err.utf8_error().valid_up_to();
            let lossy = SourceFile::new(display, String::from_utf8_lossy(err.as_bytes()).into_owned());
            let d = Diagnostic::error("not-utf8", format!("the file is not valid UTF-8 (byte {at} is not)"))
                .at(&lossy, at..at + 1)
                .label("invalid byte")
                .help("save the file as UTF-8");
            Err(vec![d])
        }
    }
}

/// A TOML syntax error, with a hint for the most common one in scenarios: a regex backslash in a
/// basic string.
fn toml_syntax_error(error: &toml::de::Error) -> Diagnostic {
    let d = Diagnostic::error("toml-syntax", format!("invalid TOML: {}", error.message())).label("here");
    if error.message().contains("escaped value") {
        d.help("in a \"basic string\" a backslash starts an escape: write `\\\\` for one backslash, or use a 'literal string' (single quotes), handy for regexes: '\\d+'")
    } else {
        d
    }
}

/// A second scenario with a name already used is an error at its name, pointing at the first.
fn check_unique_names(loaded: &mut [Loaded]) {
    let names: Vec<_> = loaded.iter().map(|file| (file.display.as_str(), file.name.as_ref())).collect();
    for (index, diagnostic) in duplicate_names(&names) {
        let file = &mut loaded[index];
        file.diagnostics.push(diagnostic);
        file.scenario = None;
        file.scenario_key = None;
    }
}

/// Files (by index, with the error) whose scenario name an earlier file already uses: scenario
/// names identify baselines, cache entries and reports. Each file is given as its display path and
/// its name with where it is written.
pub fn duplicate_names(files: &[(&str, Option<&Named>)]) -> Vec<(usize, Diagnostic)> {
    let mut first: std::collections::HashMap<&str, (&str, Option<&Location>)> = std::collections::HashMap::new();
    let mut duplicates = Vec::new();
    for (index, (display, named)) in files.iter().enumerate() {
        let Some((name, location)) = named else { continue };
        let Some(&(first_file, first_location)) = first.get(name.as_str()) else {
            first.insert(name, (display, location.as_ref()));
            continue;
        };
        let d = Diagnostic::error("duplicate-scenario", format!("two scenarios are named `{name}`")).help(
            "scenario names identify baselines, cache entries and reports; give each file a unique [scenario] name",
        );
        let d = match location {
            Some(location) => d.at_location(*display, location.clone()).label("second use of this name"),
            None => {
                d.in_file(*display).note(format!("`{name}` comes from the file name; set [scenario] name to change it"))
            }
        };
        let d = match first_location {
            Some(location) => d.note_at("first used here", first_file, location.clone()),
            None => d.note(format!("first used by {first_file} (from its file name)")),
        };
        duplicates.push((index, d));
    }
    duplicates
}
