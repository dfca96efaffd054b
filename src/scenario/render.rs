//! Renders scenario files with Tera. Every scenario is a template; the project's `templates/`
//! directory is importable (`{% import "macros.tera" as m %}`, `{% include %}`, `{% extends %}`).
//!
//! Tera's own messages are turned into diagnostics that point into the file the user wrote: syntax
//! errors at Tera's line and column, undefined variables and failing functions at their first use
//! inside a tag, missing templates at the name in the tag that asks for them.
//!
//! Tera recurses without limit and renders whatever it is asked to, so every template is checked
//! before it renders (`scan`: nesting inside one file; `graph`: cycles and depth across files) and
//! rendering is metered (`budget`): no template can overflow the stack or exhaust the machine.

mod budget;
mod graph;
mod scan;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tera::{Context, Tera};

use crate::config::Vars;
use crate::diagnostic::{Diagnostic, SourceFile};
use crate::project::TEMPLATES_DIR;
use budget::{Budget, Exceeded, MAX_BYTES, MAX_STEPS, MAX_VALUE_DEPTH};
use graph::{Analysis, Edge, How, MAX_DEPTH, Node, Refs, Universe};

/// One file of `templates/`.
#[derive(Debug)]
pub struct TemplateFile {
    pub path: PathBuf,
    pub source: SourceFile,
    pub hash: blake3::Hash,
}

/// The project's templates, parsed once and shared by all renderers.
pub struct Templates {
    base: Tera,
    files: BTreeMap<String, TemplateFile>,
    /// What each template of `base` refers to.
    refs: BTreeMap<String, Refs>,
    /// Templates that failed to load (their errors are in `diagnostics`).
    broken: BTreeSet<String>,
    /// Problems in template files, reported once rather than per scenario.
    pub diagnostics: Vec<Diagnostic>,
}

/// What rendering produced.
#[derive(Debug)]
pub struct Rendered {
    pub text: String,
    /// Names (relative to `templates/`) of every template the scenario pulled in, transitively.
    pub templates: Vec<String>,
}

/// Whether `text` uses any Tera syntax; plain TOML skips the template engine entirely.
pub fn has_template_syntax(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

impl Templates {
    /// Loads every file under `dir` (hidden files excluded). A broken file is reported and left
    /// out; the others still load.
    pub fn load(dir: &Path, display: impl Fn(&Path) -> String) -> Templates {
        let mut templates = Templates {
            base: base_tera(),
            files: BTreeMap::new(),
            refs: BTreeMap::new(),
            broken: BTreeSet::new(),
            diagnostics: Vec::new(),
        };
        let mut paths = Vec::new();
        collect_files(dir, &mut paths);
        paths.sort();
        let mut parsed = HashMap::new();
        for path in paths {
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let shown = display(&path);
            let text = match std::fs::read(&path).map(String::from_utf8) {
                Ok(Ok(text)) => text,
                Ok(Err(_)) => {
                    templates
                        .fail(&name, Diagnostic::error("not-utf8", "template file is not valid UTF-8").in_file(shown));
                    continue;
                }
                Err(err) => {
                    templates
                        .fail(&name, Diagnostic::error("io", format!("cannot read template: {err}")).in_file(shown));
                    continue;
                }
            };
            let source = SourceFile::new(shown, text);
            match parse(&name, Some(path.to_string_lossy().into()), &source) {
                Ok((template, refs)) => {
                    parsed.insert(name.clone(), template);
                    templates.refs.insert(name.clone(), refs);
                }
                Err(d) => templates.fail(&name, *d),
            }
            let hash = blake3::hash(source.text.as_bytes());
            templates.files.insert(name, TemplateFile { path, source, hash });
        }
        templates.link(parsed);
        templates
    }

    /// Adds parsed templates to the engine, dropping (and reporting) those that could not render:
    /// those in a cycle or an `extends` chain too long, and those that refer to a template that
    /// does not exist or is dropped, until what is left is consistent.
    fn link(&mut self, mut parsed: HashMap<String, tera::Template>) {
        loop {
            self.drop_dependents(&mut parsed);
            let dropped = self.drop_unrenderable();
            if dropped.is_empty() {
                break;
            }
            for name in dropped {
                parsed.remove(&name);
            }
        }
        self.base.templates.extend(parsed);
        if let Err(err) = self.base.build_inheritance_chains() {
            self.diagnostics.push(Diagnostic::error("template", chain(&err).join(": ")).in_file(TEMPLATES_DIR));
        }
    }

    /// Drops the templates that refer to one that is not in `parsed`, then those that refer to
    /// those, and so on, each reported at its first such reference.
    fn drop_dependents(&mut self, parsed: &mut HashMap<String, tera::Template>) {
        let mut dependents: BTreeMap<String, Vec<(String, &'static str)>> = BTreeMap::new();
        for (name, refs) in &self.refs {
            for (target, kind) in refs.required() {
                dependents.entry(target).or_default().push((name.clone(), kind));
            }
        }
        let mut absent: Vec<String> = dependents.keys().filter(|t| !parsed.contains_key(*t)).cloned().collect();
        absent.reverse();
        while let Some(target) = absent.pop() {
            for (name, kind) in dependents.get(&target).into_iter().flatten() {
                if parsed.remove(name).is_some() {
                    self.refs.remove(name);
                    let d = self.missing_template(&self.files[name].source, &target, kind);
                    self.fail(name, d);
                    absent.push(name.clone());
                }
            }
        }
    }

    /// Reports the templates in a cycle, or at the head of an `extends` chain too long, once
    /// each; returns those to drop.
    fn drop_unrenderable(&mut self) -> BTreeSet<String> {
        let universe = Universe::new(&self.refs);
        let analysis = Analysis::run(&universe, self.refs.iter().flat_map(|(name, refs)| refs.nodes(name)));
        let mut dropped = BTreeSet::new();
        let mut found = Vec::new();
        for cycle in &analysis.cycles {
            let files: BTreeSet<String> = cycle.iter().map(|e| e.from.file().to_string()).collect();
            if !files.is_subset(&dropped) {
                found.push(self.cycle_diagnostic(cycle, None));
                dropped.extend(files);
            }
        }
        if dropped.is_empty() {
            for chain in graph::deep_extends(&self.refs) {
                found.push(self.depth_diagnostic(&chain, None));
                dropped.insert(chain[0].from.file().to_string());
            }
        }
        for name in &dropped {
            self.refs.remove(name);
            self.broken.insert(name.clone());
        }
        self.diagnostics.extend(found);
        dropped
    }

    /// The cycles and depth of what scenario `name` pulls in; errors for those it cannot render.
    fn check_scenario(&self, refs: &Refs, source: &SourceFile) -> Result<(), Vec<Diagnostic>> {
        let name = &source.name;
        let universe = Universe::new(&self.refs).with_scenario(name, refs);
        let analysis = Analysis::run(&universe, refs.nodes(name));
        if !analysis.cycles.is_empty() {
            return Err(analysis.cycles.iter().map(|c| self.cycle_diagnostic(c, Some(source))).collect());
        }
        let chain = analysis.chain(&Node::Body(name.clone()));
        if chain.len() > MAX_DEPTH {
            return Err(vec![self.depth_diagnostic(&chain, Some(source))]);
        }
        Ok(())
    }

    /// The text of template `name`: the scenario being rendered, or a file of `templates/`.
    fn source_of<'a>(&'a self, name: &str, scenario: Option<&'a SourceFile>) -> Option<&'a SourceFile> {
        match scenario {
            Some(s) if s.name == name => Some(s),
            _ => self.files.get(name).map(|f| &f.source),
        }
    }

    /// `d` placed at the tag that makes `edge`.
    fn at_edge(&self, d: Diagnostic, edge: &Edge, scenario: Option<&SourceFile>) -> Diagnostic {
        let Some(source) = self.source_of(edge.from.file(), scenario) else { return d };
        match find_in_tags(&source.text, &edge.needle) {
            Some(span) => d.at(source, span),
            None => d.in_file(source.name.clone()),
        }
    }

    /// A cycle, at the tag that closes it.
    fn cycle_diagnostic(&self, cycle: &[Edge], scenario: Option<&SourceFile>) -> Diagnostic {
        let closing = cycle.last().expect("a cycle has an edge");
        let path = graph::shown(cycle);
        let d = if cycle.iter().all(|e| e.how == How::Calls) {
            Diagnostic::error("recursive-macro", format!("recursive macros are not supported: {path}")).help(
                "Tera cannot bound how deeply a macro calls itself, so clnrm refuses macros that call themselves, directly or through others; loop over a list instead",
            )
        } else {
            let message = match cycle {
                [edge] => format!("`{}` {} itself: {path}", edge.from.shown(), edge.how.verb()),
                _ if cycle.iter().all(|e| e.how == closing.how) => {
                    format!("templates {} each other in a cycle: {path}", closing.how.plural())
                }
                _ => format!("templates refer to each other in a cycle: {path}"),
            };
            Diagnostic::error("template-cycle", message).help(
                "a template may not include, import or extend itself, directly or through others (rendering it would never end)",
            )
        };
        self.at_edge(d, closing, scenario).label(format!(
            "{} `{}`, closing the cycle",
            closing.how.verb(),
            closing.needle
        ))
    }

    /// A chain of references longer than clnrm renders, at the tag that starts it.
    fn depth_diagnostic(&self, chain: &[Edge], scenario: Option<&SourceFile>) -> Diagnostic {
        let message = format!("templates nest {} levels deep: {}", chain.len(), graph::shown(chain));
        let d = Diagnostic::error("template-depth", message).help(format!(
            "clnrm renders at most {MAX_DEPTH} levels of includes, imports, extends and macro calls inside one another (a limit of clnrm: Tera recurses for each level, and too many overflow the stack)"
        ));
        self.at_edge(d, &chain[0], scenario).label("the chain starts here")
    }

    /// A limit of the budget hit while rendering `scenario`, at the loop or macro being rendered.
    fn limit_diagnostic(&self, exceeded: Exceeded, scenario: &SourceFile) -> Diagnostic {
        let d = Diagnostic::error("template-limit", exceeded.message).help(format!(
            "clnrm stops a render at {MAX_STEPS} loop iterations, macro calls and includes, {} MiB of text and values, values nested {MAX_VALUE_DEPTH} levels deep, or when the stack runs low, so that a runaway template cannot exhaust the machine: generate less",
            MAX_BYTES >> 20
        ));
        let source = self.source_of(&exceeded.place.template, Some(scenario)).unwrap_or(scenario);
        let d = match exceeded.place.span {
            Some(span) => d.at(source, span).label("while rendering this"),
            None => d.in_file(source.name.clone()),
        };
        if std::ptr::eq(source, scenario) { d } else { d.note(format!("while rendering {}", scenario.name)) }
    }

    fn fail(&mut self, name: &str, diagnostic: Diagnostic) {
        self.broken.insert(name.to_string());
        self.diagnostics.push(diagnostic);
    }

    /// The file behind a template name (as written in `{% import %}`).
    pub fn file(&self, name: &str) -> Option<&TemplateFile> {
        self.files.get(name)
    }

    /// A renderer for one thread.
    pub fn renderer(&self) -> Renderer<'_> {
        let mut tera = self.base.clone();
        let budget = Budget::install(&mut tera);
        Renderer { templates: self, tera, budget }
    }

    /// "template `x` not found", pointing at the name inside the tag that asks for it.
    fn missing_template(&self, source: &SourceFile, target: &str, kind: &str) -> Diagnostic {
        let quoted = find_in_tags(&source.text, target).unwrap_or(0..0);
        let (message, help) = if self.broken.contains(target) {
            (
                format!("{kind} `{target}`, which has errors (reported separately)"),
                "fix that template first".to_string(),
            )
        } else {
            let known: Vec<&str> = self.files.keys().map(String::as_str).collect();
            let help = match crate::suggest::did_you_mean(target, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if known.is_empty() => {
                    format!("templates are loaded from the project's {TEMPLATES_DIR}/ directory, which has none")
                }
                None => format!("templates in {TEMPLATES_DIR}/: {}", crate::schema::list(&known)),
            };
            (format!("{kind} `{target}`, which does not exist"), help)
        };
        Diagnostic::error("template-not-found", message).at(source, quoted).label("not found").help(help)
    }
}

/// A Tera instance for TOML: no HTML escaping, plus clnrm's helper functions.
fn base_tera() -> Tera {
    let mut tera = Tera::default();
    tera.autoescape_on(vec![]);
    tera.register_function("env", env_function);
    tera.register_filter("toml", toml_filter);
    tera
}

/// `{{ value | toml }}`: the value written as a TOML value (strings quoted and escaped, lists as
/// arrays, maps as inline tables), so macros can splice any value into TOML safely.
fn toml_filter(value: &tera::Value, _: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let converted = toml::Value::try_from(value)
        .map_err(|e| tera::Error::msg(format!("cannot write `{value}` as a TOML value: {e}")))?;
    Ok(tera::Value::String(converted.to_string()))
}

/// `env(name="VAR", default="value")`: an environment variable of the clnrm process.
fn env_function(args: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let name = args
        .get("name")
        .and_then(tera::Value::as_str)
        .ok_or_else(|| tera::Error::msg("env() needs a `name` argument, e.g. env(name=\"HOME\", default=\"/root\")"))?;
    match (std::env::var(name), args.get("default")) {
        (Ok(value), _) => Ok(value.into()),
        (Err(_), Some(default)) => Ok(default.clone()),
        (Err(_), None) => Err(tera::Error::msg(format!(
            "environment variable `{name}` is not set and env() was given no default (add default=\"…\")"
        ))),
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_files(&path, out),
            Ok(_) if path.is_file() => out.push(path),
            _ => {}
        }
    }
}

/// Parses a template, refusing nesting Tera would overflow the stack on, and meters it; returns
/// it with what it refers to.
fn parse(name: &str, path: Option<String>, source: &SourceFile) -> Result<(tera::Template, Refs), Box<Diagnostic>> {
    let openers = scan::check(source)?;
    let mut template = tera::Template::new(name, path, &source.text).map_err(|e| Box::new(syntax_error(&e, source)))?;
    let refs = budget::instrument(&mut template, &openers);
    Ok((template, refs))
}

/// Renders scenarios on one thread.
pub struct Renderer<'t> {
    templates: &'t Templates,
    tera: Tera,
    budget: Arc<Budget>,
}

impl Renderer<'_> {
    /// Renders `source` with `vars`. Plain TOML comes back untouched without entering Tera.
    pub fn render(&mut self, source: &SourceFile, vars: &Vars) -> Result<Rendered, Vec<Diagnostic>> {
        if !has_template_syntax(&source.text) {
            return Ok(Rendered { text: source.text.clone(), templates: Vec::new() });
        }
        // On a stack of known size whatever thread this is, which the checks keep Tera within.
        stacker::grow(budget::STACK, || self.render_template(source, vars))
    }

    fn render_template(&mut self, source: &SourceFile, vars: &Vars) -> Result<Rendered, Vec<Diagnostic>> {
        let name = source.name.clone();
        let (template, refs) = parse(&name, None, source).map_err(|d| vec![*d])?;
        let missing: Vec<Diagnostic> = refs
            .required()
            .into_iter()
            .filter(|(target, _)| !self.tera.templates.contains_key(target))
            .map(|(target, kind)| self.templates.missing_template(source, &target, kind))
            .collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        self.templates.check_scenario(&refs, source)?;
        self.tera.templates.insert(name.clone(), template);
        let result = self.render_inserted(&name, source, vars);
        self.tera.templates.remove(&name);
        let templates = self.dependencies(&refs);
        result.map(|text| Rendered { text, templates })
    }

    fn render_inserted(&mut self, name: &str, source: &SourceFile, vars: &Vars) -> Result<String, Vec<Diagnostic>> {
        self.budget.start();
        self.tera.build_inheritance_chains().map_err(|e| vec![self.render_error(&e, source)])?;
        let context = Context::from_value(serde_json::Value::Object(vars.clone()))
            .map_err(|e| vec![self.render_error(&e, source)])?;
        self.tera.render(name, &context).map_err(|e| vec![self.render_error(&e, source)])
    }

    /// Every template a scenario with `refs` pulls in, transitively.
    fn dependencies(&self, refs: &Refs) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut queue: Vec<String> = refs.required().into_iter().map(|(target, _)| target).collect();
        while let Some(name) = queue.pop() {
            if let Some(refs) = self.templates.refs.get(&name).filter(|_| seen.insert(name.clone())) {
                queue.extend(refs.required().into_iter().map(|(target, _)| target));
            }
        }
        seen.into_iter().collect()
    }

    /// Turns a rendering error into a diagnostic in the template where it happened.
    fn render_error(&self, err: &tera::Error, scenario: &SourceFile) -> Diagnostic {
        if let Some(exceeded) = self.budget.exceeded() {
            return self.templates.limit_diagnostic(exceeded, scenario);
        }
        // Without the calls of clnrm's meters, which wrap what the user wrote.
        let messages: Vec<String> = chain(err).into_iter().filter(|m| !m.contains("'__clnrm_")).collect();
        let innermost = messages.last().cloned().unwrap_or_default();
        let active = quoted_after(&innermost, "while rendering '").unwrap_or_else(|| scenario.name.clone());
        let source = if active == scenario.name {
            scenario
        } else {
            self.templates.file(&active).map_or(scenario, |f| &f.source)
        };
        let (code, message, help) = match undefined_variable(&innermost) {
            Some(var) => (
                "undefined-variable",
                format!("undefined variable `{var}`"),
                format!(
                    "define it in [vars], pass `--var {var}=…`, or set CLNRM_VAR_{var}; inside a macro, pass it as an argument"
                ),
            ),
            None => (
                "template-error",
                messages.join(": "),
                "see the Tera documentation: https://keats.github.io/tera/docs/".into(),
            ),
        };
        let span = backticked(&innermost)
            .and_then(|word| find_in_tags(&source.text, word.split('.').next().unwrap_or(word)))
            .or_else(|| first_tag(&source.text));
        let d = Diagnostic::error(code, message).help(help);
        let d = match span {
            Some(span) => d.at(source, span).label(if code == "undefined-variable" { "not defined" } else { "here" }),
            None => d.in_file(source.name.clone()),
        };
        if std::ptr::eq(source, scenario) { d } else { d.note(format!("while rendering {}", scenario.name)) }
    }
}

/// The messages of an error and its sources, outermost first.
fn chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        out.push(e.to_string());
        source = e.source();
    }
    out
}

/// A Tera syntax error, positioned from the ` --> line:col` Tera puts in its message.
fn syntax_error(err: &tera::Error, source: &SourceFile) -> Diagnostic {
    let report = chain(err).pop().unwrap_or_default();
    let position = report.lines().find_map(|l| l.trim().strip_prefix("--> ")).and_then(|p| {
        let (line, col) = p.split_once(':')?;
        Some((line.trim().parse::<usize>().ok()?, col.trim().parse::<usize>().ok()?))
    });
    let detail = report.lines().rev().find_map(|l| l.trim().strip_prefix("= ")).unwrap_or(report.trim()).to_string();
    let d = Diagnostic::error("template-syntax", format!("template syntax error: {detail}"))
        .help("Tera syntax: {{ expression }}, {% tag %}, {# comment #}; see https://keats.github.io/tera/docs/");
    match position.filter(|&(line, _)| line >= 1 && line <= source.line_count()) {
        Some((line, col)) => {
            let range = source.line_range(line - 1);
            let text = &source.text[range.clone()];
            let offset = range.start + text.char_indices().nth(col.saturating_sub(1)).map_or(text.len(), |(i, _)| i);
            d.at(source, offset..offset + 1).label("here")
        }
        None => d.in_file(source.name.clone()),
    }
}

fn undefined_variable(message: &str) -> Option<String> {
    message.strip_prefix("Variable `").and_then(|rest| rest.split_once('`')).map(|(var, _)| var.to_string())
}

fn backticked(message: &str) -> Option<&str> {
    message.split_once('`').and_then(|(_, rest)| rest.split_once('`')).map(|(word, _)| word)
}

fn quoted_after(message: &str, marker: &str) -> Option<String> {
    let rest = &message[message.find(marker)? + marker.len()..];
    rest.split_once('\'').map(|(name, _)| name.to_string())
}

/// Byte ranges of every `{{ … }}`, `{% … %}` and `{# … #}` tag (an unclosed one runs to the end).
fn tags(text: &str) -> Vec<Range<usize>> {
    scan::tags(text).into_iter().map(|tag| tag.span).collect()
}

/// The first whole-word occurrence of `word` inside a template tag.
fn find_in_tags(text: &str, word: &str) -> Option<Range<usize>> {
    if word.is_empty() {
        return None;
    }
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    tags(text).into_iter().find_map(|tag| {
        let inside = &text[tag.clone()];
        inside.match_indices(word).find_map(|(i, _)| {
            let before = inside[..i].chars().next_back();
            let after = inside[i + word.len()..].chars().next();
            let whole = !before.is_some_and(is_ident) && !after.is_some_and(is_ident);
            whole.then(|| tag.start + i..tag.start + i + word.len())
        })
    })
}

fn first_tag(text: &str) -> Option<Range<usize>> {
    tags(text).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates(files: &[(&str, &str)]) -> (tempfile::TempDir, Templates) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let t = Templates::load(dir.path(), |p| format!("templates/{}", p.file_name().unwrap().to_string_lossy()));
        (dir, t)
    }

    fn vars(json: serde_json::Value) -> Vars {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn renders_variables_macros_and_includes_and_lists_what_it_used() {
        let (_dir, t) = templates(&[
            ("macros.tera", "{% macro step(name) %}[[steps]]\nname = \"{{ name }}\"\n{% endmacro step %}"),
            ("parts/common.toml", "tags = [\"smoke\"]\n"),
            ("unused.tera", "x"),
        ]);
        assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
        let src = SourceFile::new(
            "s.clnrm.toml",
            "{% import \"macros.tera\" as m %}[scenario]\n{% include \"parts/common.toml\" %}{{ m::step(name=who) }}",
        );
        let out = t.renderer().render(&src, &vars(serde_json::json!({"who": "<me>"}))).unwrap();
        assert_eq!(out.text, "[scenario]\ntags = [\"smoke\"]\n[[steps]]\nname = \"<me>\"\n");
        assert_eq!(out.templates, ["macros.tera", "parts/common.toml"]);
    }

    #[test]
    fn plain_toml_is_returned_untouched() {
        let (_dir, t) = templates(&[]);
        let src = SourceFile::new("s.clnrm.toml", "a = 1\n");
        assert_eq!(t.renderer().render(&src, &Vars::new()).unwrap().text, "a = 1\n");
    }

    #[test]
    fn undefined_variable_points_at_its_use() {
        let (_dir, t) = templates(&[]);
        let src = SourceFile::new("s.clnrm.toml", "[scenario]\nname = \"{{ nmae }}\"\n");
        let d = &t.renderer().render(&src, &Vars::new()).unwrap_err()[0];
        assert_eq!(d.code, "undefined-variable");
        assert_eq!(d.message, "undefined variable `nmae`");
        let loc = d.location.as_ref().unwrap();
        assert_eq!((loc.line, loc.column, loc.end_column), (2, 12, 16));
    }

    #[test]
    fn undefined_variable_inside_a_macro_points_into_the_template_file() {
        let (_dir, t) = templates(&[("macros.tera", "{% macro x() %}\nv = {{ missing }}\n{% endmacro x %}")]);
        let src = SourceFile::new("s.clnrm.toml", "{% import \"macros.tera\" as m %}{{ m::x() }}");
        let d = &t.renderer().render(&src, &Vars::new()).unwrap_err()[0];
        assert_eq!(d.file.as_deref(), Some("templates/macros.tera"));
        assert_eq!(d.location.as_ref().unwrap().line, 2);
        assert_eq!(d.notes[0].message, "while rendering s.clnrm.toml");
    }

    #[test]
    fn syntax_errors_carry_tera_line_and_column() {
        let (_dir, t) = templates(&[]);
        let src = SourceFile::new("s.clnrm.toml", "a = 1\nb = {{ foo( }}\n");
        let d = &t.renderer().render(&src, &Vars::new()).unwrap_err()[0];
        assert_eq!(d.code, "template-syntax");
        let loc = d.location.as_ref().unwrap();
        assert_eq!((loc.line, loc.column), (2, 13));
    }

    #[test]
    fn missing_and_broken_templates_are_named_where_they_are_imported() {
        let (_dir, t) = templates(&[("macros.tera", "{% macro x( %}")]);
        assert_eq!(t.diagnostics.len(), 1);
        assert_eq!(t.diagnostics[0].file.as_deref(), Some("templates/macros.tera"));
        let src = SourceFile::new("s.clnrm.toml", "{% import \"macros.tera\" as m %}\n{% include \"macro.tera\" %}");
        let errors = t.renderer().render(&src, &Vars::new()).unwrap_err();
        assert!(errors[0].message.contains("which has errors"), "{}", errors[0].message);
        assert!(errors[1].message.contains("`macro.tera`, which does not exist"));
        assert_eq!(errors[1].help.as_deref(), Some("did you mean `macros.tera`?"));
        assert_eq!(errors[1].location.as_ref().unwrap().line, 2);
    }

    #[test]
    fn env_function_reads_the_environment_with_a_default() {
        let (_dir, t) = templates(&[]);
        let src =
            SourceFile::new("s.clnrm.toml", "a = \"{{ env(name=\"CLNRM_TEST_SURELY_UNSET\", default=\"dflt\") }}\"");
        assert_eq!(t.renderer().render(&src, &Vars::new()).unwrap().text, "a = \"dflt\"");
        let src = SourceFile::new("s.clnrm.toml", "a = \"{{ env(name=\"CLNRM_TEST_SURELY_UNSET\") }}\"");
        let d = &t.renderer().render(&src, &Vars::new()).unwrap_err()[0];
        assert!(d.message.contains("`CLNRM_TEST_SURELY_UNSET` is not set"), "{}", d.message);
        assert_eq!(d.location.as_ref().unwrap().column, 19);
    }
}
