//! `.clnrm/config.toml`: project defaults, pool, run, telemetry, thresholds and variables.
//! Every key is optional; a missing file means all defaults.

use std::time::Duration;

use serde::Serialize;
use toml::de::{DeTable, DeValue};

use crate::baseline::redact::IgnoreAttr;
use crate::baseline::thresholds::{AttrPolicy, Thresholds};
use crate::diagnostic::{Diagnostic, SourceFile};
use crate::expect::read::selector;
use crate::reference;
use crate::schema::{self, Cx, Locator, Spanned, Table, Value};
use crate::telemetry::wiring::OtlpProtocol;

/// Where the config lives, relative to the project root.
pub const PATH: &str = ".clnrm/config.toml";

/// The whole project configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub defaults: Defaults,
    pub pool: Pool,
    pub run: Run,
    pub otel: Otel,
    pub thresholds: Thresholds,
    pub baseline: BaselineConfig,
    pub vars: Vars,
    pub watch: Watch,
}

/// Variables for rendering, by name. JSON values because that is what Tera renders from.
pub type Vars = serde_json::Map<String, serde_json::Value>;

/// `pull`: when to pull an `image` from its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Pull only when the engine does not have the image (default).
    Missing,
    /// Pull before every run.
    Always,
    /// Never pull; a missing image is an error.
    Never,
}

impl PullPolicy {
    pub const CHOICES: [(&'static str, PullPolicy); 3] =
        [("missing", PullPolicy::Missing), ("always", PullPolicy::Always), ("never", PullPolicy::Never)];
}

/// `[baseline]`: how every scenario's trace is stored and compared.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BaselineConfig {
    /// `ignore_attrs`: attributes redacted in every scenario, before each scenario's own.
    pub ignore_attrs: Vec<IgnoreAttr>,
}

/// `[watch]`: `clnrm watch`.
#[derive(Debug, Clone, Serialize)]
pub struct Watch {
    /// `debounce`: wait until files have been quiet this long before reacting; default 50ms.
    pub debounce: Duration,
}

/// `[defaults]`: what scenarios get when they do not say.
#[derive(Debug, Clone, Serialize)]
pub struct Defaults {
    /// `pull`: pull policy for images (`missing`, `always`, `never`); default `missing`.
    pub pull: PullPolicy,
    /// `image`: image for steps that name neither `image` nor `service`; default none.
    pub image: Option<String>,
    /// `timeout`: limit for a whole scenario; default 5m.
    pub timeout: Duration,
    /// `step_timeout`: limit for one step; default 60s.
    pub step_timeout: Duration,
    /// `wait_timeout`: limit for a service to become ready; default 30s.
    pub wait_timeout: Duration,
}

/// `[pool]`: warm containers.
#[derive(Debug, Clone, Serialize)]
pub struct Pool {
    /// `size`: step containers kept warm ahead of the scenarios to come, across images; default
    /// twice `--jobs`. Ignored with `reuse`: one container per lane serves every scenario.
    pub size: Option<u64>,
    /// `reuse`: recycle step containers between scenarios (faster, less hermetic); default false.
    pub reuse: bool,
    /// `ttl`: idle containers are removed after this long; default 5m.
    pub ttl: Duration,
}

/// `[run]`: how `clnrm run` schedules.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// `jobs`: scenarios run in parallel; default the number of CPUs.
    pub jobs: Option<u64>,
    /// `fail_fast`: stop scheduling after the first failure; default false.
    pub fail_fast: bool,
    /// `scenarios`: directories searched when no path is given; default `["scenarios"]`.
    pub scenarios: Vec<String>,
    /// `keep_records`: run records kept under `.clnrm/runs/` (the newest); default 20.
    pub keep_records: u64,
}

/// `[otel]`: span collection.
#[derive(Debug, Clone, Serialize)]
pub struct Otel {
    /// `settle`: after the last step, wait until no span arrived for this long; by default, as
    /// long as the exporters need (`telemetry::wiring::quiet_window`).
    pub settle: Option<Duration>,
    /// `settle_cap`: never wait longer than this for spans; default 5s.
    pub settle_cap: Duration,
    /// `protocol`: OTLP protocol announced to containers (`http/protobuf` or `grpc`); default `http/protobuf`.
    pub protocol: OtlpProtocol,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            defaults: Defaults {
                pull: PullPolicy::Missing,
                image: None,
                timeout: Duration::from_secs(300),
                step_timeout: Duration::from_secs(60),
                wait_timeout: Duration::from_secs(30),
            },
            pool: Pool { size: None, reuse: false, ttl: Duration::from_secs(300) },
            run: Run { jobs: None, fail_fast: false, scenarios: vec!["scenarios".into()], keep_records: 20 },
            otel: Otel { settle: None, settle_cap: Duration::from_secs(5), protocol: OtlpProtocol::HttpProtobuf },
            thresholds: Thresholds::default(),
            baseline: BaselineConfig::default(),
            vars: Vars::new(),
            watch: Watch { debounce: Duration::from_millis(50) },
        }
    }
}

impl Config {
    /// Parses config text; every problem is reported, none stops the others.
    pub fn parse(source: &SourceFile) -> Result<Config, Vec<Diagnostic>> {
        let mut cx = Cx::new(Locator::Plain(source));
        let (doc, errors) = DeTable::parse_recoverable(&source.text);
        for error in errors {
            let span = error.span().unwrap_or(0..0);
            cx.report_syntax(Diagnostic::error("toml-syntax", error.message().to_string()).label("here"), span);
        }
        let config = read(&mut cx, Table::new(doc.get_ref(), doc.span(), "the config"));
        if cx.has_errors() { Err(cx.into_diagnostics()) } else { Ok(config) }
    }

    /// The parts of the config that change what a scenario does or how it is judged, for the
    /// scenario cache key (`jobs` or pool size do not change a verdict, so they are left out).
    pub fn fingerprint(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Relevant<'a> {
            defaults: &'a Defaults,
            otel: &'a Otel,
            thresholds: &'a Thresholds,
            baseline: &'a BaselineConfig,
            vars: &'a Vars,
        }
        let relevant = Relevant {
            defaults: &self.defaults,
            otel: &self.otel,
            thresholds: &self.thresholds,
            baseline: &self.baseline,
            vars: &self.vars,
        };
        serde_json::to_vec(&relevant).unwrap_or_default()
    }
}

fn read(cx: &mut Cx, mut root: Table) -> Config {
    let mut config = Config::default();
    if let Some(mut t) = root.table(cx, "defaults") {
        let d = &mut config.defaults;
        set(&mut d.pull, t.choice(cx, "pull", &PullPolicy::CHOICES));
        d.image = t.string(cx, "image").filter(|image| reference::valid(cx, image)).map(|image| image.value);
        set(&mut d.timeout, t.positive_duration(cx, "timeout"));
        set(&mut d.step_timeout, t.positive_duration(cx, "step_timeout"));
        set(&mut d.wait_timeout, t.positive_duration(cx, "wait_timeout"));
        t.finish(cx);
    }
    if let Some(mut t) = root.table(cx, "pool") {
        let p = &mut config.pool;
        let size = t.uint(cx, "size");
        p.size = positive(cx, size);
        set(&mut p.reuse, t.bool(cx, "reuse"));
        set(&mut p.ttl, t.duration(cx, "ttl"));
        t.finish(cx);
    }
    if let Some(mut t) = root.table(cx, "run") {
        let r = &mut config.run;
        let jobs = t.uint(cx, "jobs");
        r.jobs = positive(cx, jobs);
        set(&mut r.fail_fast, t.bool(cx, "fail_fast"));
        let keep = t.uint(cx, "keep_records");
        if let Some(keep) = positive(cx, keep) {
            r.keep_records = keep;
        }
        if let Some(dirs) = t.strings(cx, "scenarios") {
            r.scenarios = dirs.into_iter().map(|d| d.value).collect();
        }
        t.finish(cx);
    }
    if let Some(mut t) = root.table(cx, "otel") {
        let o = &mut config.otel;
        if let Some(settle) = t.duration(cx, "settle") {
            o.settle = Some(settle.value);
        }
        set(&mut o.settle_cap, t.duration(cx, "settle_cap"));
        let protocols = [("http/protobuf", OtlpProtocol::HttpProtobuf), ("grpc", OtlpProtocol::Grpc)];
        set(&mut o.protocol, t.choice(cx, "protocol", &protocols));
        t.finish(cx);
    }
    if let Some(mut t) = root.table(cx, "watch") {
        set(&mut config.watch.debounce, t.duration(cx, "debounce"));
        t.finish(cx);
    }
    if let Some(t) = root.table(cx, "thresholds") {
        config.thresholds = read_thresholds(cx, t);
    }
    if let Some(mut t) = root.table(cx, "baseline") {
        if let Some(v) = t.get("ignore_attrs") {
            config.baseline.ignore_attrs = read_ignore_attrs(cx, v, "`ignore_attrs` in [baseline]");
        }
        t.finish(cx);
    }
    if let Some(t) = root.table(cx, "vars") {
        config.vars = read_vars(cx, t);
    }
    root.finish(cx);
    config
}

fn set<T>(slot: &mut T, value: Option<Spanned<T>>) {
    if let Some(v) = value {
        *slot = v.value;
    }
}

fn positive(cx: &mut Cx, value: Option<Spanned<u64>>) -> Option<u64> {
    let v = value?;
    if v.value == 0 {
        cx.report(Diagnostic::error("invalid-value", "must be at least 1").label("zero"), v.span);
        return None;
    }
    Some(v.value)
}

/// Reads a thresholds table (config `[thresholds]` or a scenario's `[baseline] thresholds`).
pub fn read_thresholds(cx: &mut Cx, mut t: Table) -> Thresholds {
    let thresholds = Thresholds {
        duration: t.string(cx, "duration").and_then(|s| percent(cx, s)),
        duration_floor: t.duration(cx, "duration_floor").map(|d| d.value),
        duration_runs: {
            let runs = t.uint(cx, "duration_runs");
            positive(cx, runs)
        },
        added_spans: t.uint(cx, "added_spans").map(|n| n.value),
        removed_spans: t.uint(cx, "removed_spans").map(|n| n.value),
        new_errors: t.uint(cx, "new_errors").map(|n| n.value),
        attrs: t
            .choice(
                cx,
                "attrs",
                &[("fail", AttrPolicy::Fail), ("warn", AttrPolicy::Warn), ("ignore", AttrPolicy::Ignore)],
            )
            .map(|a| a.value),
    };
    t.finish(cx);
    thresholds
}

/// `ignore_attrs` (config `[baseline]` or a scenario's): each entry a key (`"order.id"`,
/// `"http.request.header.*"`), or a table scoping it: `{ key = "…", service = "catalog" }`,
/// `{ key = "…", span = 'span[name="GET /items/{id}"]' }`.
pub fn read_ignore_attrs(cx: &mut Cx, value: &Value, what: &str) -> Vec<IgnoreAttr> {
    let help = "e.g. [\"order.id\", { key = \"db.statement\", service = \"catalog\" }]";
    let DeValue::Array(items) = value.get_ref() else {
        cx.wrong_type(value, what, "an array", Some(help));
        return Vec::new();
    };
    let what = format!("each item of {what}");
    let mut ignores = Vec::new();
    for item in items.iter() {
        let ignore = match item.get_ref() {
            DeValue::String(_) => schema::string(cx, item, &what).map(|key| (key, None, None)),
            DeValue::Table(_) => Table::of(cx, item, what.clone(), None).and_then(|mut t| {
                let key = t.require(cx, "key", "\"db.statement\"").and_then(|v| schema::string(cx, v, &what));
                let service = t.string(cx, "service").map(|s| s.value);
                let span = t.get("span").and_then(|v| selector(cx, v, &format!("`span` in {what}"))).map(|s| s.value);
                t.finish(cx);
                key.map(|key| (key, service, span))
            }),
            _ => {
                cx.wrong_type(item, &what, "a key or a table { key, service, span }", Some(help));
                None
            }
        };
        let Some((key, service, span)) = ignore else { continue };
        if key.is_empty() || key.trim_end_matches('*').contains('*') {
            let d = Diagnostic::error(
                "invalid-value",
                format!("{what} must be an attribute key, with `*` only at its end"),
            )
            .label("not a key")
            .help("write the key as spans carry it (\"order.id\"), or a prefix and `*` (\"http.request.header.*\")");
            cx.report(d, key.span);
            continue;
        }
        ignores.push(IgnoreAttr { key: key.value, service, span });
    }
    ignores
}

/// `"25%"` → 25.0; `"off"` → infinity (no growth is too much).
fn percent(cx: &mut Cx, text: Spanned<String>) -> Option<f64> {
    if *text == "off" {
        return Some(f64::INFINITY);
    }
    let parsed = text.strip_suffix('%').and_then(|n| n.trim().parse::<f64>().ok()).filter(|n| *n >= 0.0);
    if parsed.is_none() {
        let d = Diagnostic::error("invalid-value", format!("`{}` is not a percentage", *text))
            .label("expected a percentage")
            .help("write a non-negative number followed by %, e.g. \"25%\", or \"off\"");
        cx.report(d, text.span);
    }
    parsed
}

/// Reads a `[vars]` table: any TOML values, converted to what Tera renders from.
pub fn read_vars(cx: &mut Cx, mut t: Table) -> Vars {
    let mut vars = Vars::new();
    for (name, value) in t.entries() {
        if !is_identifier(name.value) {
            let d = Diagnostic::error(
                "invalid-var-name",
                format!("`{}` cannot be used as a template variable", name.value),
            )
            .label("not an identifier")
            .help("variable names start with a letter or `_` and contain only letters, digits and `_`");
            cx.report(d, name.span);
            continue;
        }
        vars.insert(name.value.to_string(), to_json(value.get_ref()));
    }
    vars
}

/// Whether `name` can be referenced as `{{ name }}` in a template.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Converts a parsed TOML value into JSON (datetimes become their TOML text).
pub fn to_json(value: &toml::de::DeValue) -> serde_json::Value {
    use toml::de::DeValue;
    match value {
        DeValue::String(s) => s.to_string().into(),
        DeValue::Integer(i) => {
            i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).map_or(serde_json::Value::Null, Into::into)
        }
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().map_or(serde_json::Value::Null, Into::into),
        DeValue::Boolean(b) => (*b).into(),
        DeValue::Datetime(d) => d.to_string().into(),
        DeValue::Array(items) => items.iter().map(|v| to_json(v.get_ref())).collect(),
        DeValue::Table(t) => t.iter().map(|(k, v)| (k.get_ref().to_string(), to_json(v.get_ref()))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Vec<Diagnostic>> {
        Config::parse(&SourceFile::new(".clnrm/config.toml", text))
    }

    #[test]
    fn empty_config_is_all_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.defaults.pull, PullPolicy::Missing);
        assert_eq!(c.otel.settle, None);
        assert_eq!(c.run.scenarios, vec!["scenarios".to_string()]);
    }

    #[test]
    fn reads_every_section() {
        let c = parse(
            r#"
[defaults]
pull = "never"
timeout = "2m"
[pool]
size = 3
reuse = true
[run]
jobs = 4
[otel]
settle = "100ms"
protocol = "grpc"
[thresholds]
duration = "10%"
duration_floor = "5ms"
attrs = "warn"
[vars]
region = "eu"
n = 3
[watch]
debounce = "80ms"
"#,
        )
        .unwrap();
        assert_eq!(c.defaults.pull, PullPolicy::Never);
        assert_eq!(c.defaults.timeout, Duration::from_secs(120));
        assert_eq!((c.pool.size, c.pool.reuse, c.run.jobs), (Some(3), true, Some(4)));
        assert_eq!((c.otel.protocol, c.otel.settle), (OtlpProtocol::Grpc, Some(Duration::from_millis(100))));
        assert_eq!(c.thresholds.duration, Some(10.0));
        assert_eq!(c.thresholds.attrs, Some(AttrPolicy::Warn));
        assert_eq!(c.vars["n"], serde_json::json!(3));
        assert_eq!(c.watch.debounce, Duration::from_millis(80));
    }

    #[test]
    fn reports_every_mistake_at_once() {
        let errors = parse("[defaults]\npul = \"never\"\ntimeout = \"soon\"\n[pool]\nsize = 0\n[thresholds]\nduration = \"ten\"\n[colour]\n").unwrap_err();
        let codes: Vec<&str> = errors.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["unknown-key", "invalid-duration", "invalid-value", "invalid-value", "unknown-key"]);
        assert_eq!(errors[0].help.as_deref(), Some("did you mean `pull`?"));
        assert_eq!(errors[0].location.as_ref().unwrap().line, 2);
    }

    #[test]
    fn fingerprint_ignores_scheduling_but_not_behaviour() {
        let base = parse("").unwrap().fingerprint();
        assert_eq!(parse("[run]\njobs = 8\n").unwrap().fingerprint(), base);
        assert_ne!(parse("[defaults]\npull = \"never\"\n").unwrap().fingerprint(), base);
        assert_ne!(parse("[vars]\nx = 1\n").unwrap().fingerprint(), base);
        assert_ne!(parse("[baseline]\nignore_attrs = [\"a\"]\n").unwrap().fingerprint(), base);
    }

    #[test]
    fn baseline_ignores_are_keys_or_scoped_tables() {
        let c = parse(
            r#"
[baseline]
ignore_attrs = [
  "order.id",
  "http.request.header.*",
  { key = "db.statement", service = "catalog" },
  { key = "app.seed", span = 'span[name="seed"]' },
]
"#,
        )
        .unwrap();
        let written: Vec<String> = c.baseline.ignore_attrs.iter().map(ToString::to_string).collect();
        assert_eq!(
            written,
            [
                r#""order.id""#,
                r#""http.request.header.*""#,
                r#"{ key = "db.statement", service = "catalog" }"#,
                r#"{ key = "app.seed", span = "span[name=\"seed\"]" }"#,
            ]
        );
    }

    #[test]
    fn a_bad_ignore_is_pointed_at() {
        let errors = parse(
            "[baseline]\nignore_attrs = [\"a*b\", { service = \"x\" }, { key = \"k\", span = \"span[\" }, 3, { key = \"k\", servce = \"x\" }]\n",
        )
        .unwrap_err();
        let found: Vec<(&str, usize)> =
            errors.iter().map(|d| (d.code, d.location.as_ref().map_or(0, |l| l.column))).collect();
        assert_eq!(
            found,
            [
                ("invalid-value", 17),
                ("missing-key", 24),
                ("invalid-selector", 69),
                ("wrong-type", 74),
                ("unknown-key", 90)
            ]
        );
        assert!(errors[0].help.as_deref().unwrap().contains("http.request.header.*"), "{errors:#?}");
        let errors = parse("[baseline]\nignore_attrs = \"order.id\"\n").unwrap_err();
        assert_eq!(errors[0].message, "`ignore_attrs` in [baseline] must be an array, found a string");
    }
}
