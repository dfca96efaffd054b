//! Renders scenario files with Tera. Every scenario is a template; the project's `templates/`
//! directory is importable (`{% import "macros.tera" as m %}`, `{% include %}`, `{% extends %}`).
//!
//! Tera's own messages are turned into diagnostics that point into the file the user wrote: syntax
//! errors at Tera's line and column, undefined variables and failing functions at their first use
//! inside a tag, missing templates at the name in the tag that asks for them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use tera::ast::Node;
use tera::{Context, Tera};

use crate::diagnostic::{Diagnostic, SourceFile};
use crate::scenario::model::Vars;

/// The directory, relative to the project root, whose files are importable templates.
pub const TEMPLATES_DIR: &str = "templates";

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
        let mut templates =
            Templates { base: base_tera(), files: BTreeMap::new(), broken: BTreeSet::new(), diagnostics: Vec::new() };
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
            match tera::Template::new(&name, Some(path.to_string_lossy().into()), &source.text) {
                Ok(template) => {
                    parsed.insert(name.clone(), template);
                }
                Err(err) => templates.fail(&name, syntax_error(&err, &source)),
            }
            let hash = blake3::hash(source.text.as_bytes());
            templates.files.insert(name, TemplateFile { path, source, hash });
        }
        templates.link(parsed);
        templates
    }

    /// Adds parsed templates to the engine, dropping (and reporting) those that refer to a
    /// template that does not exist or is itself broken, until what is left is consistent.
    fn link(&mut self, mut parsed: HashMap<String, tera::Template>) {
        loop {
            let missing = parsed.iter().find_map(|(name, t)| {
                let refs = references(t);
                refs.into_iter().find(|(target, _)| !parsed.contains_key(target)).map(|r| (name.clone(), r))
            });
            let Some((name, (target, kind))) = missing else { break };
            parsed.remove(&name);
            let d = self.missing_template(&self.files[&name].source, &target, kind);
            self.fail(&name, d);
        }
        self.base.templates.extend(parsed);
        if let Err(err) = self.base.build_inheritance_chains() {
            self.diagnostics.push(Diagnostic::error("template", chain(&err).join(": ")).in_file(TEMPLATES_DIR));
        }
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
        Renderer { templates: self, tera: self.base.clone() }
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

/// Templates a template refers to directly, with how ("imports", "includes", "extends").
fn references(template: &tera::Template) -> Vec<(String, &'static str)> {
    let mut refs: Vec<(String, &'static str)> =
        template.imported_macro_files.iter().map(|(file, _)| (file.clone(), "imports")).collect();
    refs.extend(template.parent.iter().map(|p| (p.clone(), "extends")));
    let mut includes = Vec::new();
    walk_includes(&template.ast, &mut includes);
    for macro_def in template.macros.values() {
        walk_includes(&macro_def.body, &mut includes);
    }
    refs.extend(includes.into_iter().map(|name| (name, "includes")));
    refs
}

/// Names of required `{% include %}`s anywhere in `nodes` (`ignore missing` ones excluded).
fn walk_includes(nodes: &[Node], out: &mut Vec<String>) {
    for node in nodes {
        match node {
            Node::Include(_, names, false) => out.extend(names.iter().cloned()),
            Node::Block(_, b, _) => walk_includes(&b.body, out),
            Node::Forloop(_, f, _) => {
                walk_includes(&f.body, out);
                walk_includes(f.empty_body.as_deref().unwrap_or_default(), out);
            }
            Node::If(i, _) => {
                for (_, _, body) in &i.conditions {
                    walk_includes(body, out);
                }
                walk_includes(i.otherwise.as_ref().map(|(_, b)| b.as_slice()).unwrap_or_default(), out);
            }
            Node::FilterSection(_, f, _) => walk_includes(&f.body, out),
            Node::MacroDefinition(_, m, _) => walk_includes(&m.body, out),
            _ => {}
        }
    }
}

/// Renders scenarios on one thread.
pub struct Renderer<'t> {
    templates: &'t Templates,
    tera: Tera,
}

impl Renderer<'_> {
    /// Renders `source` with `vars`. Plain TOML comes back untouched without entering Tera.
    pub fn render(&mut self, source: &SourceFile, vars: &Vars) -> Result<Rendered, Vec<Diagnostic>> {
        if !has_template_syntax(&source.text) {
            return Ok(Rendered { text: source.text.clone(), templates: Vec::new() });
        }
        let name = source.name.clone();
        let template = tera::Template::new(&name, None, &source.text).map_err(|e| vec![syntax_error(&e, source)])?;
        let missing: Vec<Diagnostic> = references(&template)
            .into_iter()
            .filter(|(target, _)| !self.tera.templates.contains_key(target))
            .map(|(target, kind)| self.templates.missing_template(source, &target, kind))
            .collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        self.tera.templates.insert(name.clone(), template);
        let result = self.render_inserted(&name, source, vars);
        self.tera.templates.remove(&name);
        result
    }

    fn render_inserted(&mut self, name: &str, source: &SourceFile, vars: &Vars) -> Result<Rendered, Vec<Diagnostic>> {
        self.tera.build_inheritance_chains().map_err(|e| vec![self.render_error(&e, source)])?;
        let context = Context::from_value(serde_json::Value::Object(vars.clone()))
            .map_err(|e| vec![self.render_error(&e, source)])?;
        let text = self.tera.render(name, &context).map_err(|e| vec![self.render_error(&e, source)])?;
        let mut used = BTreeSet::new();
        self.dependencies(name, &mut used);
        used.remove(name);
        Ok(Rendered { text, templates: used.into_iter().collect() })
    }

    /// Every template `name` pulls in, transitively.
    fn dependencies(&self, name: &str, seen: &mut BTreeSet<String>) {
        if !seen.insert(name.to_string()) {
            return;
        }
        if let Some(template) = self.tera.templates.get(name) {
            for (target, _) in references(template) {
                self.dependencies(&target, seen);
            }
        }
    }

    /// Turns a rendering error into a diagnostic in the template where it happened.
    fn render_error(&self, err: &tera::Error, scenario: &SourceFile) -> Diagnostic {
        let messages = chain(err);
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
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = text[at..].find('{') {
        let start = at + i;
        let close = match text.get(start..start + 2) {
            Some("{{") => "}}",
            Some("{%") => "%}",
            Some("{#") => "#}",
            _ => {
                at = start + 1;
                continue;
            }
        };
        let end = text[start + 2..].find(close).map_or(text.len(), |j| start + 2 + j + 2);
        out.push(start..end);
        at = end;
    }
    out
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
