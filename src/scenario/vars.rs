//! Template variables and their precedence, highest first: `--var k=v` → environment
//! `CLNRM_VAR_k` → the scenario's `[vars]` → `[vars]` in `.clnrm/config.toml`.
//!
//! A scenario's `[vars]` table is literal TOML read *before* rendering (it feeds the rendering), so
//! it is cut out of the raw file by its header. Overrides from the command line and the environment
//! are text; when a lower level declares the variable with a type (a number, a boolean, a list), the
//! override is converted to that type, so `--var items=5` works where the scenario says `items = 3`.

use std::collections::HashMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::config::{Vars, is_identifier, read_vars, to_json};
use crate::diagnostic::{Diagnostic, SourceFile};
use crate::schema::{Cx, Locator, Table};

/// Environment variables with this prefix set template variables.
pub const ENV_PREFIX: &str = "CLNRM_VAR_";

/// Variables given on the command line and in the environment, in that order of precedence.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--var k=v`, later ones winning.
    pub cli: Vec<(String, String)>,
    /// `CLNRM_VAR_k=v`.
    pub env: Vec<(String, String)>,
}

impl Overrides {
    /// Reads `CLNRM_VAR_*` from the process environment; names that cannot be template variables
    /// are returned as warnings rather than silently dropped.
    pub fn from_env(cli: Vec<(String, String)>) -> (Self, Vec<Diagnostic>) {
        let mut env = Vec::new();
        let mut warnings = Vec::new();
        for (key, value) in std::env::vars_os() {
            let (Some(key), Some(value)) = (key.to_str(), value.to_str()) else { continue };
            let Some(name) = key.strip_prefix(ENV_PREFIX) else { continue };
            if is_identifier(name) {
                env.push((name.to_string(), value.to_string()));
            } else {
                warnings.push(Diagnostic::warning(
                    "invalid-var-name",
                    format!("ignoring environment variable {key}: `{name}` is not a valid template variable name"),
                ));
            }
        }
        env.sort();
        (Self { cli, env }, warnings)
    }
}

/// Parses one `--var` argument (`KEY=VALUE`); the error is the usage message.
pub fn parse_cli_var(arg: &str) -> Result<(String, String), String> {
    let Some((key, value)) = arg.split_once('=') else {
        return Err(format!("expected KEY=VALUE, e.g. --var items=3 (got `{arg}`)"));
    };
    let key = key.trim();
    if !is_identifier(key) {
        return Err(format!(
            "`{key}` is not a valid variable name: use letters, digits and `_`, not starting with a digit"
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// A scenario's own `[vars]`, with where each was declared (for pointing at a type clash).
#[derive(Debug, Default)]
pub struct ScenarioVars {
    pub vars: Vars,
    pub spans: HashMap<String, Range<usize>>,
}

/// Cuts the `[vars]` table out of the raw (unrendered) file and parses it. It ends at the next
/// table header or the next line that starts with a template tag (typically a macro call that
/// produces the next table). A tag inside it is an error: it is read before anything is rendered.
pub fn extract(source: &SourceFile) -> Result<ScenarioVars, Vec<Diagnostic>> {
    let Some(section) = vars_section(source) else { return Ok(ScenarioVars::default()) };
    let text = &source.text[section.clone()];
    if let Some(at) = ["{{", "{%", "{#"].iter().filter_map(|tag| text.find(tag)).min() {
        let d = Diagnostic::error(
            "template-in-vars",
            "[vars] must be literal TOML: it is read before the file is rendered",
        )
        .at(source, section.start + at..section.start + at + 2)
        .label("template tag inside [vars]")
        .help("write a literal value here, and use `--var`, CLNRM_VAR_* or config [vars] for values that vary");
        return Err(vec![d]);
    }
    // Parse the section on its own, after a blanked-out copy of what precedes it (newlines kept,
    // everything else spaces) so that offsets, lines and columns are those of the whole file.
    let blank: String = source.text[..section.start].bytes().map(|b| if b == b'\n' { '\n' } else { ' ' }).collect();
    let padded = format!("{blank}{text}");
    let padded_source = SourceFile::new(source.name.clone(), padded);
    let mut cx = Cx::new(Locator::Plain(&padded_source));
    let (doc, errors) = DeTable::parse_recoverable(&padded_source.text);
    for error in errors {
        let span = error.span().unwrap_or(section.clone());
        cx.report_syntax(Diagnostic::error("toml-syntax", error.message().to_string()).label("here"), span);
    }
    let mut spans = HashMap::new();
    let mut vars = Vars::new();
    if let Some(value) = doc.get_ref().get("vars") {
        if let Some(table) = Table::of(&mut cx, value, "[vars]", None) {
            vars = read_vars(&mut cx, table);
        }
        if let DeValue::Table(entries) = value.get_ref() {
            spans = entries.iter().map(|(k, _)| (k.get_ref().to_string(), k.span())).collect();
        }
    }
    if cx.has_errors() {
        return Err(cx.into_diagnostics());
    }
    Ok(ScenarioVars { vars, spans })
}

/// Byte range of the `[vars]` section: its header line to just before the next header.
fn vars_section(source: &SourceFile) -> Option<Range<usize>> {
    let lines = (0..source.line_count()).map(|i| source.line_range(i));
    let mut start = None;
    for line in lines {
        let text = strip_comment(&source.text[line.clone()]);
        let starts_with_tag = ["{{", "{%", "{#"].iter().any(|tag| text.trim_start().starts_with(tag));
        match (start, header_name(text)) {
            (None, Some("vars")) => start = Some(line.start),
            (Some(begin), Some(_)) => return Some(begin..line.start),
            (Some(begin), None) if starts_with_tag => return Some(begin..line.start),
            _ => {}
        }
    }
    start.map(|begin| begin..source.text.len())
}

/// The table name if `line` is a table header (`[name]` or `[[name]]`).
fn header_name(line: &str) -> Option<&str> {
    let inner = line.trim().strip_prefix('[')?.strip_suffix(']')?;
    let inner = inner.strip_prefix('[').and_then(|i| i.strip_suffix(']')).unwrap_or(inner).trim();
    let is_key = !inner.is_empty()
        && inner.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\'' | ' '));
    is_key.then_some(inner)
}

fn strip_comment(line: &str) -> &str {
    if line.contains(['"', '\'']) { line } else { line.split('#').next().unwrap_or(line) }
}

/// Applies the precedence rules. `config_source` names the config file for type-clash errors.
pub fn resolve(
    config_vars: &Vars,
    scenario: &ScenarioVars,
    overrides: &Overrides,
    scenario_source: &SourceFile,
    config_source: &str,
) -> Result<Vars, Vec<Diagnostic>> {
    let mut vars = config_vars.clone();
    vars.extend(scenario.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut errors = Vec::new();
    let given = overrides.env.iter().map(|(k, v)| (k, v, "environment variable CLNRM_VAR_"));
    let given = given.chain(overrides.cli.iter().map(|(k, v)| (k, v, "--var ")));
    for (key, text, origin) in given {
        match coerce(vars.get(key), text) {
            Ok(value) => {
                vars.insert(key.clone(), value);
            }
            Err(expected) => {
                let message = format!("{origin}{key}={text}: `{key}` is declared as {expected}, and `{text}` is not");
                let d = Diagnostic::error("var-type", message).help(format!("give {expected} for `{key}`"));
                let d = match scenario.spans.get(key) {
                    Some(span) => d.at(scenario_source, span.clone()).label("declared here"),
                    None => d.in_file(config_source),
                };
                errors.push(d);
            }
        }
    }
    if errors.is_empty() { Ok(vars) } else { Err(errors) }
}

/// Converts override text to the type of the value it overrides; the error names that type.
fn coerce(declared: Option<&serde_json::Value>, text: &str) -> Result<serde_json::Value, &'static str> {
    use serde_json::Value as J;
    let trimmed = text.trim();
    match declared {
        None | Some(J::String(_)) | Some(J::Null) => Ok(J::String(text.to_string())),
        Some(J::Bool(_)) => trimmed.parse::<bool>().map(J::Bool).map_err(|_| "a boolean (true or false)"),
        Some(J::Number(n)) if n.is_i64() || n.is_u64() => trimmed.parse::<i64>().map(J::from).map_err(|_| "an integer"),
        Some(J::Number(_)) => trimmed.parse::<f64>().map(J::from).map_err(|_| "a number"),
        Some(J::Array(_)) | Some(J::Object(_)) => {
            let expected = if declared.is_some_and(J::is_array) { "a TOML array" } else { "a TOML inline table" };
            let value = DeValue::parse(trimmed).map_err(|_| expected)?;
            let json = to_json(value.get_ref());
            if json.is_array() == declared.is_some_and(J::is_array) { Ok(json) } else { Err(expected) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(text: &str) -> SourceFile {
        SourceFile::new("s.clnrm.toml", text)
    }

    #[test]
    fn extracts_vars_up_to_the_next_header() {
        let src = source(
            "[scenario]\nname = \"{{ who }}\"\n\n[vars] # literal\nitems = 3\nwho = \"me\"\nlist = [\n  1,\n]\n[[steps]]\nname = \"x\"\n",
        );
        let vars = extract(&src).unwrap();
        assert_eq!(json!(vars.vars), json!({"items": 3, "who": "me", "list": [1]}));
        let span = vars.spans["items"].clone();
        assert_eq!(&src.text[span], "items");
    }

    #[test]
    fn vars_end_at_a_line_starting_with_a_template_tag() {
        let src = source("[vars]\nbody = \"x\"\n\n{{ m::service(body=body) }}\nport = 1\n");
        let vars = extract(&src).unwrap();
        assert_eq!(json!(vars.vars), json!({"body": "x"}));
    }

    #[test]
    fn template_tags_in_vars_point_at_the_tag() {
        let errors = extract(&source("[vars]\nx = {{ y }}\n")).unwrap_err();
        assert_eq!(errors[0].code, "template-in-vars");
        let loc = errors[0].location.as_ref().unwrap();
        assert_eq!((loc.line, loc.column), (2, 5));
    }

    #[test]
    fn broken_vars_report_in_file_coordinates() {
        let errors = extract(&source("[scenario]\n\n[vars]\nx = \n")).unwrap_err();
        assert_eq!(errors[0].location.as_ref().unwrap().line, 4);
    }

    #[test]
    fn precedence_is_cli_then_env_then_scenario_then_config() {
        let config: Vars =
            serde_json::from_value(json!({"a": "config", "b": "config", "c": "config", "d": "config"})).unwrap();
        let scenario = ScenarioVars {
            vars: serde_json::from_value(json!({"a": "scenario", "b": "scenario", "c": "scenario"})).unwrap(),
            ..Default::default()
        };
        let overrides = Overrides {
            cli: vec![("a".into(), "cli".into())],
            env: vec![("a".into(), "env".into()), ("b".into(), "env".into())],
        };
        let vars = resolve(&config, &scenario, &overrides, &source(""), "c.toml").unwrap();
        assert_eq!(json!(vars), json!({"a": "cli", "b": "env", "c": "scenario", "d": "config"}));
    }

    #[test]
    fn overrides_take_the_declared_type() {
        let src = source("[vars]\nitems = 3\nratio = 0.5\nflag = false\nports = [1]\n");
        let scenario = extract(&src).unwrap();
        let cli = ["items=5", "ratio=2.5", "flag=true", "ports=[8080, 9090]", "new=7"]
            .iter()
            .map(|a| parse_cli_var(a).unwrap())
            .collect();
        let vars = resolve(&Vars::new(), &scenario, &Overrides { cli, env: vec![] }, &src, "c").unwrap();
        assert_eq!(json!(vars), json!({"items": 5, "ratio": 2.5, "flag": true, "ports": [8080, 9090], "new": "7"}));
    }

    #[test]
    fn a_wrongly_typed_override_points_at_the_declaration() {
        let src = source("[vars]\nitems = 3\n");
        let scenario = extract(&src).unwrap();
        let overrides = Overrides { cli: vec![("items".into(), "lots".into())], env: vec![] };
        let errors = resolve(&Vars::new(), &scenario, &overrides, &src, "c").unwrap_err();
        assert!(
            errors[0].message.contains("--var items=lots: `items` is declared as an integer"),
            "{}",
            errors[0].message
        );
        assert_eq!(errors[0].location.as_ref().unwrap().line, 2);
    }

    #[test]
    fn cli_var_needs_an_equals_sign_and_a_valid_name() {
        assert_eq!(parse_cli_var("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_cli_var("items").unwrap_err().contains("expected KEY=VALUE"));
        assert!(parse_cli_var("9x=1").unwrap_err().contains("not a valid variable name"));
    }
}
