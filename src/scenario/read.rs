//! Reads a rendered scenario document into the model, reporting every unknown key, wrong type and
//! invalid value (duration, regex, selector, choice) with its exact position. Checks that need the
//! whole scenario (names, references, cycles) are in `validate.rs`.
//!
//! The model is returned even when there were errors, so that later checks still run on what could
//! be read; callers only use a scenario whose file had no errors.

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use crate::baseline::files::MAX_SCENARIO_NAME;
use crate::config::{Config, PullPolicy, Vars, read_ignore_attrs, read_thresholds};
use crate::diagnostic::Diagnostic;
use crate::expect::model::{Bounds, Expectations, Hermetic, SpanExpectation, TraceExpectation};
use crate::expect::read::selector;
use crate::expect::selector::{Selector, Value as AttrValue};
use crate::reference;
use crate::scenario::model::*;
use crate::schema::{self, Cx, Spanned, Table, Value};
use crate::telemetry::own::SERVICE_NAME;
use crate::telemetry::span::{SpanKind, SpanStatus};

/// What the reader needs besides the document.
pub struct Context<'a> {
    /// The file stem, the default scenario name.
    pub stem: &'a str,
    /// The scenario's `[vars]`, already read before rendering.
    pub vars: Vars,
    pub config: &'a Config,
    /// The scenario file's directory: `build` paths are relative to it.
    pub base_dir: &'a Path,
}

pub fn read(cx: &mut Cx, doc: &toml::Spanned<DeTable>, context: Context) -> Scenario {
    let mut root = Table::new(doc.get_ref(), doc.span(), "the scenario file");
    let mut scenario = Scenario {
        name: context.stem.to_string(),
        name_span: None,
        description: None,
        tags: Vec::new(),
        timeout: None,
        reuse: None,
        vars: context.vars,
        services: Vec::new(),
        steps: Vec::new(),
        expect: Expectations::default(),
        baseline: BaselineSettings::default(),
    };
    if let Some(mut t) = root.table(cx, "scenario") {
        t.context = "[scenario]".into();
        if let Some(name) = t.string(cx, "name") {
            scenario.name_span = Some(name.span.clone());
            scenario.name = name.value;
        }
        scenario.description = t.string(cx, "description").map(|s| s.value);
        scenario.tags = t.strings(cx, "tags").unwrap_or_default().into_iter().map(|s| s.value).collect();
        scenario.timeout = t.positive_duration(cx, "timeout").map(|d| d.value);
        scenario.reuse = t.bool(cx, "reuse").map(|b| b.value);
        t.finish(cx);
    }
    check_name(cx, &scenario.name, scenario.name_span.clone().unwrap_or(0..0), scenario.name_span.is_none());
    if let Some(vars) = root.get("vars") {
        unread_vars(cx, vars, &scenario.vars);
    }
    if let Some(mut services) = root.table(cx, "services") {
        for (name, value) in services.entries() {
            let what = format!("[services.{}]", name.value);
            check_service_name(cx, &name);
            if let Some(table) = Table::of(cx, value, what, Some("write the service as a table: [services.NAME]")) {
                scenario.services.push(read_service(
                    cx,
                    table,
                    Spanned::new(name.value.to_string(), name.span),
                    context.base_dir,
                ));
            }
        }
    }
    if let Some(steps) = root.get("steps") {
        scenario.steps = read_steps(cx, steps, context.config, context.base_dir);
    }
    if let Some(mut expect) = root.table(cx, "expect") {
        expect.context = "[expect]".into();
        scenario.expect = read_expectations(cx, &mut expect);
        expect.finish(cx);
    }
    if let Some(mut t) = root.table(cx, "baseline") {
        t.context = "[baseline]".into();
        if let Some(v) = t.get("ignore_attrs") {
            scenario.baseline.ignore_attrs = read_ignore_attrs(cx, v, "`ignore_attrs` in [baseline]");
        }
        if let Some(mut thresholds) = t.table(cx, "thresholds") {
            thresholds.context = "[baseline] thresholds".into();
            scenario.baseline.thresholds = read_thresholds(cx, thresholds);
        }
        t.finish(cx);
    }
    root.finish(cx);
    scenario
}

/// Variables are read from the raw file before rendering, by the `[vars]` header; anything in the
/// rendered `vars` that was not read then (written inline, or after a template tag line) did not
/// take part in rendering, which would be a silent surprise.
fn unread_vars(cx: &mut Cx, value: &Value, read: &Vars) {
    let help = "write variables under the [vars] header, before any line that starts with a template tag: \
                [vars] is literal TOML, read by its header before rendering";
    let DeValue::Table(entries) = value.get_ref() else {
        cx.wrong_type(value, "`vars`", "a table", Some(help));
        return;
    };
    for (key, _) in entries.iter().filter(|(k, _)| !read.contains_key(k.get_ref().as_ref())) {
        let d = Diagnostic::error("unread-var", format!("variable `{}` was not read before rendering", key.get_ref()))
            .label("not available to the template")
            .help(help);
        cx.report(d, key.span());
    }
}

/// Scenario names become file names (baselines) and container labels, so they stay simple, and
/// short enough for a file name.
fn check_name(cx: &mut Cx, name: &str, span: Range<usize>, defaulted: bool) {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        if name.len() > MAX_SCENARIO_NAME {
            name_too_long(cx, name, span, defaulted);
        }
        return;
    }
    let d = if defaulted {
        Diagnostic::error(
            "invalid-name",
            format!("the file name gives the scenario name `{name}`, which is not a valid name"),
        )
        .help("set `name` under [scenario]: letters, digits, `-`, `_` and `.`, starting with a letter or digit")
    } else {
        Diagnostic::error("invalid-name", format!("`{name}` is not a valid scenario name"))
            .label("invalid name")
            .help("use letters, digits, `-`, `_` and `.`, starting with a letter or digit")
    };
    cx.report(d, span);
}

fn name_too_long(cx: &mut Cx, name: &str, span: Range<usize>, defaulted: bool) {
    let whose = if defaulted { "the scenario name the file name gives" } else { "the scenario name" };
    let d = Diagnostic::error(
        "invalid-name",
        format!("{whose} is {} characters long; at most {MAX_SCENARIO_NAME} fit in a file name", name.len()),
    )
    .label("too long")
    .help(format!(
        "baselines are written as baselines/<name>.toml.new, and a file name holds at most 255 bytes; {}",
        if defaulted { "set a shorter `name` under [scenario]" } else { "shorten the name" }
    ));
    cx.report(d, span);
}

/// Services are reachable by their name on the scenario's network, so a name is a DNS label; and
/// `clnrm` is what clnrm's own spans are from, which no service may pose as.
fn check_service_name(cx: &mut Cx, name: &Spanned<&str>) {
    let d = if name.value == SERVICE_NAME {
        Diagnostic::error("reserved-name", format!("the service name `{SERVICE_NAME}` is reserved"))
            .label("reserved")
            .help("clnrm's own spans carry service.name = \"clnrm\", and a service's spans carry its name: give the service another name")
    } else if is_dns_label(name.value) {
        return;
    } else {
        let fixed = dns_label(name.value);
        let suggestion = if fixed.is_empty() { String::new() } else { format!(", e.g. `{fixed}`") };
        Diagnostic::error("invalid-name", format!("`{}` is not a valid service name", name.value))
            .label("not a DNS label")
            .help(format!("a service is reachable by its name, so the name is a DNS label: lowercase letters, digits and `-`, not starting or ending with `-`, at most 63 characters{suggestion}"))
    };
    cx.report(d, name.span.clone());
}

/// Lowercase letters, digits and `-`, not starting or ending with `-`, 1 to 63 characters. Only
/// lowercase: DNS ignores case, so `Web` and `web` would be one host, and clients lowercase host
/// names (`server.address` would not name the service as written).
fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `name` made into a DNS label, for the suggestion (empty when nothing of it is left).
fn dns_label(name: &str) -> String {
    let mapped: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let trimmed = mapped.trim_matches('-');
    trimmed.get(..63).unwrap_or(trimmed).trim_end_matches('-').to_string()
}

/// `workdir`: the engine only takes an absolute path.
fn workdir(cx: &mut Cx, t: &mut Table) -> Option<String> {
    let dir = t.string(cx, "workdir")?;
    let what = format!("`workdir` in {}", t.context);
    if !no_nul(cx, &dir, &what) {
        return None;
    }
    if !dir.starts_with('/') {
        let d = Diagnostic::error("invalid-value", format!("{what} must be an absolute path"))
            .label("relative path")
            .help(format!("write it from the root, e.g. \"/{}\"", dir.trim_start_matches("./")));
        cx.report(d, dir.span);
        return None;
    }
    Some(dir.value)
}

/// Whether `text` is free of NUL bytes, which no argument, environment variable or path can
/// hold; an error at `text` otherwise.
fn no_nul(cx: &mut Cx, text: &Spanned<impl AsRef<str>>, what: &str) -> bool {
    if !text.value.as_ref().contains('\0') {
        return true;
    }
    let d = Diagnostic::error("nul-byte", format!("{what} contains a NUL byte"))
        .label("NUL byte")
        .help("arguments, environment variables and paths are C strings, which end at a NUL byte: remove it");
    cx.report(d, text.span.clone());
    false
}

fn read_steps(cx: &mut Cx, value: &Value, config: &Config, base_dir: &Path) -> Vec<Step> {
    let DeValue::Array(items) = value.get_ref() else {
        cx.wrong_type(value, "`steps`", "an array of tables", Some("write each step under its own [[steps]] header"));
        return Vec::new();
    };
    let mut steps = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let context = format!("[[steps]] #{}", index + 1);
        if let Some(table) = Table::of(cx, item, context, Some("write each step under its own [[steps]] header")) {
            steps.push(read_step(cx, table, config, base_dir));
        }
    }
    steps
}

/// The image a service or step names: exactly one of `image` or `build` (`None` if neither).
fn image_source(cx: &mut Cx, t: &mut Table, base_dir: &Path) -> Option<Spanned<ImageSource>> {
    let image = t.string(cx, "image");
    let build = t.string(cx, "build");
    match (image, build) {
        (Some(image), None) => {
            reference::valid(cx, &image);
            Some(Spanned::new(ImageSource::Image(image.value), image.span))
        }
        (None, Some(build)) => {
            let dir = base_dir.join(&build.value);
            if !dir.join("Dockerfile").is_file() {
                let problem = if dir.is_dir() { "has no Dockerfile" } else { "is not a directory" };
                let d = Diagnostic::error("build-context", format!("build context `{}` {problem}", build.value))
                    .label(problem)
                    .help("`build` names a directory holding a Dockerfile, relative to the scenario file");
                cx.report(d, build.span.clone());
            }
            Some(Spanned::new(ImageSource::Build(dir), build.span))
        }
        (Some(_), Some(build)) => {
            let d = Diagnostic::error("image-and-build", format!("{} has both `image` and `build`", t.context))
                .label("conflicts with `image`")
                .help("keep `image` to use an existing image, or `build` to build a directory with a Dockerfile");
            cx.report(d, t.key_span("build").unwrap_or(build.span));
            None
        }
        (None, None) => None,
    }
}

fn read_service(cx: &mut Cx, mut t: Table, name: Spanned<String>, base_dir: &Path) -> Service {
    let image = image_source(cx, &mut t, base_dir);
    let named = ["image", "build"].iter().any(|k| t.key_span(k).is_some() || t.misspelt(k));
    if image.is_none() && !named {
        let d = Diagnostic::error("no-image", format!("{} has neither `image` nor `build`", t.context))
            .label("needs an image")
            .help("add `image = \"name:tag\"` or `build = \"path/to/dir\"` (a directory with a Dockerfile)");
        cx.report(d, t.span());
    }
    let service = Service {
        name,
        image: image.map_or(ImageSource::Image(String::new()), |i| i.value),
        pull: t.choice(cx, "pull", &PullPolicy::CHOICES).map(|p| p.value),
        command: t.get("command").and_then(|v| command(cx, v, &format!("`command` in {}", t.context))).map(|c| c.value),
        env: t.table(cx, "env").map(|e| env(cx, e)).unwrap_or_default(),
        ports: t.get("ports").map(|v| ports(cx, v)).unwrap_or_default(),
        wait: t.table(cx, "wait").and_then(|w| read_wait(cx, w)),
        depends_on: t.strings(cx, "depends_on").unwrap_or_default(),
        workdir: workdir(cx, &mut t),
    };
    t.finish(cx);
    service
}

fn read_wait(cx: &mut Cx, mut t: Table) -> Option<Wait> {
    const STRATEGIES: [&str; 5] = ["log", "port", "http", "exec", "healthy"];
    let what = t.context.clone();
    let mut found = Vec::new();
    if let Some(re) = t.regex(cx, "log") {
        found.push(Spanned::new(WaitStrategy::Log(re.value), re.span));
    }
    if let Some(v) = t.get("port") {
        if let Some(port) = port(cx, v, &format!("`port` in {what}")) {
            found.push(Spanned::new(WaitStrategy::Port(port.value), port.span));
        }
    }
    if let Some(mut http) = t.table(cx, "http") {
        let port = http.require(cx, "port", "8080").and_then(|v| port(cx, v, "`port` of the http wait"));
        let path = http.string(cx, "path").map_or("/".to_string(), |p| p.value);
        if !path.starts_with('/') {
            cx.report(
                Diagnostic::error("invalid-value", "the http wait `path` must start with `/`")
                    .label("e.g. \"/health\""),
                http.span(),
            );
        }
        if let Some(port) = port {
            found.push(Spanned::new(WaitStrategy::Http { port: port.value, path }, http.span()));
        }
        http.finish(cx);
    }
    if let Some(v) = t.get("exec") {
        if let Some(c) = command(cx, v, &format!("`exec` in {what}")) {
            found.push(Spanned::new(WaitStrategy::Exec(c.value), c.span));
        }
    }
    if let Some(healthy) = t.bool(cx, "healthy") {
        if healthy.value {
            found.push(Spanned::new(WaitStrategy::Healthy, healthy.span));
        } else {
            cx.report(
                Diagnostic::error("invalid-value", "`healthy = false` waits for nothing")
                    .label("remove it, or set true"),
                healthy.span,
            );
        }
    }
    let timeout = t.positive_duration(cx, "timeout").map(|d| d.value);
    let interval = t.positive_duration(cx, "interval").map(|d| d.value);
    let named: Vec<Range<usize>> = STRATEGIES.iter().filter_map(|k| t.key_span(k)).collect();
    let span = t.span();
    t.finish(cx);
    match named.as_slice() {
        [] => {
            let d = Diagnostic::error("wait-strategies", format!("{what} names no strategy"))
                .label("nothing to wait for")
                .help(format!("add one of {}", schema::list(&STRATEGIES)));
            cx.report(d, span);
        }
        [_] => {}
        [_, second, ..] => {
            let d = Diagnostic::error(
                "wait-strategies",
                format!("{what} names {} strategies; a wait has exactly one", named.len()),
            )
            .label("second strategy")
            .help("keep one; e.g. `http` already implies that the port is open");
            cx.report(d, second.clone());
            return None;
        }
    }
    let strategy = found.into_iter().next()?;
    Some(Wait { strategy, timeout, interval })
}

fn read_step(cx: &mut Cx, mut t: Table, config: &Config, base_dir: &Path) -> Step {
    let name = t.require(cx, "name", "\"what this step does\"").and_then(|v| schema::string(cx, v, "`name` of a step"));
    if let Some(name) = &name {
        t.context = format!("step `{}`", name.value);
    }
    let image = image_source(cx, &mut t, base_dir);
    let pull = t.choice(cx, "pull", &PullPolicy::CHOICES);
    let service = t.string(cx, "service");
    let target = match (image, service) {
        (Some(_), Some(service)) => {
            let d = Diagnostic::error("step-target", format!("{} names both an image and a service", t.context))
                .label("conflicts with `image`")
                .help("a step runs either in its own container (`image`) or inside a service (`service`)");
            cx.report(d, t.key_span("service").unwrap_or(service.span.clone()));
            StepTarget::Service(service)
        }
        (None, Some(service)) => {
            if let Some(pull) = &pull {
                let d = Diagnostic::error(
                    "step-target",
                    "`pull` applies to a step's image, but this step runs in a service",
                )
                .label("not used")
                .help("set `pull` on the service instead");
                cx.report(d, pull.span.clone());
            }
            StepTarget::Service(service)
        }
        (Some(image), None) => StepTarget::Container { image: image.value, pull: pull.map(|p| p.value) },
        (None, None) => match &config.defaults.image {
            Some(default) => {
                StepTarget::Container { image: ImageSource::Image(default.clone()), pull: pull.map(|p| p.value) }
            }
            None => {
                let named = ["image", "build", "service"].iter().any(|k| t.key_span(k).is_some() || t.misspelt(k));
                if !named {
                    let d = Diagnostic::error("step-target", format!("{} has no `image` and no `service` to run in", t.context))
                        .label("runs nowhere")
                        .help("add `image = \"name:tag\"` or `service = \"NAME\"`, or set `image` under [defaults] in .clnrm/config.toml");
                    cx.report(d, t.span());
                }
                StepTarget::Container { image: ImageSource::Image(String::new()), pull: None }
            }
        },
    };
    let what = format!("`run` in {}", t.context);
    let run = t.require(cx, "run", "[\"echo\", \"hello\"]").and_then(|v| command(cx, v, &what));
    let step = Step {
        name: name.unwrap_or_else(|| Spanned::new(String::new(), t.span())),
        target,
        run: run.unwrap_or_else(|| Spanned::new(Command::Argv(Vec::new()), t.span())),
        env: t.table(cx, "env").map(|e| env(cx, e)).unwrap_or_default(),
        workdir: workdir(cx, &mut t),
        timeout: t.positive_duration(cx, "timeout").map(|d| d.value),
        continue_on_failure: t.bool(cx, "continue_on_failure").is_some_and(|b| b.value),
        expect: t.table(cx, "expect").map(|e| read_step_expect(cx, e)).unwrap_or(StepExpect {
            exit: 0,
            stdout: None,
            stderr: None,
        }),
    };
    t.finish(cx);
    step
}

fn read_step_expect(cx: &mut Cx, mut t: Table) -> StepExpect {
    let exit = t.uint(cx, "exit").and_then(|code| {
        if code.value > 255 {
            cx.report(
                Diagnostic::error("invalid-value", "exit codes range from 0 to 255").label("out of range"),
                code.span,
            );
            return None;
        }
        i32::try_from(code.value).ok()
    });
    let expect = StepExpect {
        exit: exit.unwrap_or(0),
        stdout: output_expect(cx, &mut t, "stdout", "stdout_empty"),
        stderr: output_expect(cx, &mut t, "stderr", "stderr_empty"),
    };
    t.finish(cx);
    expect
}

/// `stdout = 'regex'` or `stdout_empty = true` (likewise for stderr), never both.
fn output_expect(cx: &mut Cx, t: &mut Table, key: &'static str, empty_key: &'static str) -> Option<OutputExpect> {
    let regex = t.regex(cx, key);
    let empty = t.bool(cx, empty_key);
    if let Some(regex) = &regex {
        weak_output_regex(cx, regex, key, empty_key);
    }
    match (regex, empty) {
        (Some(_), Some(empty)) => {
            let d = Diagnostic::error("conflicting-keys", format!("`{key}` and `{empty_key}` both say what {key} must be"))
                .label(format!("conflicts with `{key}`"))
                .help(format!("keep `{empty_key} = true` to require no output at all, or the regex `{key}` to require output it matches"));
            cx.report(d, t.key_span(empty_key).unwrap_or(empty.span));
            None
        }
        (None, Some(empty)) if !empty.value => {
            let d = Diagnostic::error("invalid-value", format!("`{empty_key} = false` requires nothing"))
                .label("remove it, or set true")
                .help(format!("to require some output, give a regex it must match, e.g. {key} = 'ready'"));
            cx.report(d, empty.span);
            None
        }
        (None, Some(_)) => Some(OutputExpect::Empty),
        (Some(regex), None) => Some(OutputExpect::Matches(regex.value)),
        (None, None) => None,
    }
}

/// Texts an output regex is tried on: one that matches every one of them checks nothing.
const PROBES: [&str; 8] = ["", "\n", "x", "oops\n", "two\nlines", " \t", "0", "\u{fffd}"];

/// Warns about an output regex that cannot fail (`.*`, `a*`, an empty one) and one that matches an
/// empty line (`^$`): in multi-line mode that includes the end of any output ending in a newline, so
/// it lets "oops\n" pass where an empty output was meant.
fn weak_output_regex(cx: &mut Cx, regex: &Spanned<regex::Regex>, key: &str, empty_key: &str) {
    let pattern = regex.as_str();
    let d = if PROBES.iter().all(|probe| regex.is_match(probe)) {
        Diagnostic::warning("regex-matches-anything", format!("`{key} = '{pattern}'` matches any output, so it checks nothing"))
            .label("matches anything")
            .help(format!("give a regex for text the output must contain, e.g. {key} = 'ready'; to require no output, write `{empty_key} = true`"))
    } else if regex.is_match("") && regex.is_match("oops\n") {
        Diagnostic::warning("regex-empty-line", format!("`{key} = '{pattern}'` matches an empty line, not only an empty output"))
            .label("also matches \"oops\\n\"")
            .help(format!("output regexes are multi-line: `^` and `$` match at every line, so `^$` matches the empty line after any final newline; to require no output, write `{empty_key} = true`"))
    } else {
        return;
    };
    cx.report(d, regex.span.clone());
}

/// `run`, `command` or `exec`: an array is argv, a string runs under `sh -c`.
fn command(cx: &mut Cx, value: &Value, what: &str) -> Option<Spanned<Command>> {
    let command = match value.get_ref() {
        DeValue::String(s) => {
            let line = Spanned::new(s.to_string(), value.span());
            if !no_nul(cx, &line, what) {
                return None;
            }
            Command::Shell(line.value)
        }
        DeValue::Array(_) => {
            let argv = schema::strings(cx, value, what)?;
            // Every argument is checked, so that each NUL byte is reported.
            if argv.iter().filter(|arg| !no_nul(cx, arg, what)).count() > 0 {
                return None;
            }
            Command::Argv(argv.into_iter().map(|s| s.value).collect())
        }
        _ => {
            cx.wrong_type(
                value,
                what,
                "a string or an array of strings",
                Some("[\"prog\", \"arg\"] runs prog directly; \"prog arg\" runs under sh -c"),
            );
            return None;
        }
    };
    let empty = match &command {
        Command::Shell(s) => s.trim().is_empty(),
        Command::Argv(argv) => argv.first().is_none_or(|p| p.is_empty()),
    };
    if empty {
        cx.report(Diagnostic::error("invalid-value", format!("{what} is empty")).label("nothing to run"), value.span());
        return None;
    }
    Some(Spanned::new(command, value.span()))
}

/// `env = { KEY = "value" }`; numbers and booleans are accepted and passed as their text.
fn env(cx: &mut Cx, mut t: Table) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, value) in t.entries() {
        if !env_name(cx, &key) {
            continue;
        }
        let text = match value.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(i) => i.as_str().to_string(),
            DeValue::Float(f) => f.as_str().to_string(),
            DeValue::Boolean(b) => b.to_string(),
            _ => {
                cx.wrong_type(value, &format!("environment variable `{}`", key.value), "a string", None);
                continue;
            }
        };
        if !no_nul(cx, &Spanned::new(&text, value.span()), &format!("environment variable `{}`", key.value)) {
            continue;
        }
        out.push((key.value.to_string(), text));
    }
    out
}

/// Whether `key` can name an environment variable: the engine passes `KEY=value`, so a name is not
/// empty and holds no `=` (`A=B = "x"` would set `A` to `B=x`), nor a NUL byte.
fn env_name(cx: &mut Cx, key: &Spanned<&str>) -> bool {
    let problem = if key.value.is_empty() {
        "an environment variable name cannot be empty".to_string()
    } else if key.value.contains('=') {
        format!("`{}` cannot name an environment variable: `=` ends the name", key.value)
    } else {
        return no_nul(cx, key, "an environment variable name");
    };
    let d = Diagnostic::error("invalid-env", problem)
        .label("invalid name")
        .help("the engine passes NAME=value: a name is not empty and holds no `=`, e.g. RUST_LOG = \"info\"");
    cx.report(d, key.span.clone());
    false
}

fn ports(cx: &mut Cx, value: &Value) -> Vec<Spanned<u16>> {
    let DeValue::Array(items) = value.get_ref() else {
        cx.wrong_type(value, "`ports`", "an array of port numbers", Some("e.g. ports = [8080]"));
        return Vec::new();
    };
    items.iter().filter_map(|item| port(cx, item, "each of `ports`")).collect()
}

fn port(cx: &mut Cx, value: &Value, what: &str) -> Option<Spanned<u16>> {
    let n = schema::uint(cx, value, what)?;
    match u16::try_from(n.value) {
        Ok(p) if p > 0 => Some(Spanned::new(p, n.span)),
        _ => {
            cx.report(
                Diagnostic::error("invalid-value", format!("{what}: {} is not a port (1-65535)", n.value))
                    .label("out of range"),
                n.span,
            );
            None
        }
    }
}

fn read_expectations(cx: &mut Cx, t: &mut Table) -> Expectations {
    let mut expectations = Expectations::default();
    if let Some(value) = t.get("span") {
        let DeValue::Array(items) = value.get_ref() else {
            cx.wrong_type(
                value,
                "`expect.span`",
                "an array of tables",
                Some("write each expectation under its own [[expect.span]] header"),
            );
            return expectations;
        };
        for (index, item) in items.iter().enumerate() {
            let context = format!("[[expect.span]] #{}", index + 1);
            if let Some(table) = Table::of(cx, item, context, None) {
                expectations.spans.push(read_span_expectation(cx, table));
            }
        }
    }
    if let Some(mut trace) = t.table(cx, "trace") {
        trace.context = "[expect.trace]".into();
        expectations.trace = Some(read_trace_expectation(cx, &mut trace));
        trace.finish(cx);
    }
    expectations
}

fn read_span_expectation(cx: &mut Cx, mut t: Table) -> SpanExpectation {
    let what = t.context.clone();
    let select =
        t.require(cx, "select", "'span[name=\"…\"]'").and_then(|v| selector(cx, v, &format!("`select` in {what}")));
    let line = select.as_ref().and_then(|s| cx.locate(s.span.clone())).map(|(_, location)| location.line);
    let expectation = SpanExpectation {
        line,
        select: select.unwrap_or_else(|| Spanned::new(Selector { compounds: Vec::new() }, t.span())),
        count: t.get("count").and_then(|v| count(cx, v, &format!("`count` in {what}"))),
        attrs: t.table(cx, "attrs").map(|a| attrs(cx, a)).unwrap_or_default(),
        status: t.choice(cx, "status", &SpanStatus::CHOICES).map(|s| s.value),
        kind: t.choice(cx, "kind", &SpanKind::CHOICES).map(|k| k.value),
        parent: t.get("parent").and_then(|v| selector(cx, v, &format!("`parent` in {what}"))),
        duration: t.table(cx, "duration").and_then(|d| duration_bounds(cx, d)),
        events: t.strings(cx, "events").unwrap_or_default().into_iter().map(|s| s.value).collect(),
    };
    t.finish(cx);
    expectation
}

fn read_trace_expectation(cx: &mut Cx, t: &mut Table) -> TraceExpectation {
    TraceExpectation {
        spans: t.get("spans").and_then(|v| count(cx, v, "`spans` in [expect.trace]")),
        errors: t.uint(cx, "errors").map(|n| n.value),
        order: t.get("order").map(|v| selector_pairs(cx, v, "`order` in [expect.trace]")).unwrap_or_default(),
        within: t.get("within").map(|v| selector_pairs(cx, v, "`within` in [expect.trace]")).unwrap_or_default(),
        hermetic: t.get("hermetic").and_then(|v| hermetic(cx, v)),
    }
}

/// `hermetic = true`, or `{ allow = ["api.example.com", "*.internal"], outbound_only = true }`.
fn hermetic(cx: &mut Cx, value: &Value) -> Option<Hermetic> {
    let what = "`hermetic` in [expect.trace]";
    match value.get_ref() {
        DeValue::Boolean(on) => on.then(Hermetic::default),
        DeValue::Table(_) => {
            let mut t = Table::of(cx, value, what, None)?;
            let allow = t.strings(cx, "allow").unwrap_or_default();
            let outbound_only = t.bool(cx, "outbound_only").is_some_and(|b| b.value);
            t.finish(cx);
            for bad in allow.iter().filter(|a| a.is_empty() || a.trim_start_matches("*.").contains(['*', '/', ' '])) {
                let d = Diagnostic::error("invalid-value", format!("`allow` in {what} takes host names and addresses"))
                    .label("not a host")
                    .help("e.g. \"api.example.com\", \"10.0.0.7\", or \"*.example.com\" for every name below a domain");
                cx.report(d, bad.span.clone());
            }
            Some(Hermetic { allow: allow.into_iter().map(|a| a.value).collect(), outbound_only })
        }
        _ => {
            cx.wrong_type(
                value,
                what,
                "true, false or a table",
                Some("hermetic = true, or hermetic = { allow = [\"api.example.com\"] }"),
            );
            None
        }
    }
}

/// `3` or `{ min = 1, max = 5 }`.
fn count(cx: &mut Cx, value: &Value, what: &str) -> Option<Bounds<u64>> {
    match value.get_ref() {
        DeValue::Integer(_) => schema::uint(cx, value, what).map(|n| Bounds { min: Some(n.value), max: Some(n.value) }),
        DeValue::Table(_) => {
            let mut t = Table::of(cx, value, what, None)?;
            let bounds = Bounds { min: t.uint(cx, "min").map(|n| n.value), max: t.uint(cx, "max").map(|n| n.value) };
            t.finish(cx);
            check_bounds(cx, bounds, value.span(), what)
        }
        _ => {
            cx.wrong_type(value, what, "a number or { min, max }", Some("e.g. 3, or { min = 1, max = 5 }"));
            None
        }
    }
}

fn duration_bounds(cx: &mut Cx, mut t: Table) -> Option<Bounds<std::time::Duration>> {
    let bounds = Bounds { min: t.duration(cx, "min").map(|d| d.value), max: t.duration(cx, "max").map(|d| d.value) };
    let (span, what) = (t.span(), t.context.clone());
    t.finish(cx);
    check_bounds(cx, bounds, span, &what)
}

fn check_bounds<T: PartialOrd + Copy>(
    cx: &mut Cx,
    bounds: Bounds<T>,
    span: Range<usize>,
    what: &str,
) -> Option<Bounds<T>> {
    let problem = match (bounds.min, bounds.max) {
        (None, None) => Some(format!("{what} needs `min`, `max` or both")),
        (Some(min), Some(max)) if min > max => Some(format!("{what} has `min` greater than `max`")),
        _ => None,
    };
    match problem {
        Some(message) => {
            let d = Diagnostic::error("invalid-bounds", message)
                .label("here")
                .help("e.g. { min = 1, max = 5 }; both ends are inclusive");
            cx.report(d, span);
            None
        }
        None => Some(bounds),
    }
}

fn attrs(cx: &mut Cx, mut t: Table) -> Vec<(String, AttrValue)> {
    let mut out = Vec::new();
    for (key, value) in t.entries() {
        let parsed = match value.get_ref() {
            DeValue::String(s) => AttrValue::Str(s.to_string()),
            DeValue::Boolean(b) => AttrValue::Bool(*b),
            DeValue::Integer(_) | DeValue::Float(_) => match crate::config::to_json(value.get_ref()) {
                serde_json::Value::Number(n) if n.is_i64() => AttrValue::Int(n.as_i64().unwrap_or_default()),
                serde_json::Value::Number(n) => AttrValue::Float(n.as_f64().unwrap_or_default()),
                _ => continue,
            },
            _ => {
                cx.wrong_type(value, &format!("attribute `{}`", key.value), "a string, number or boolean", None);
                continue;
            }
        };
        out.push((key.value.to_string(), parsed));
    }
    out
}

fn selector_pairs(cx: &mut Cx, value: &Value, what: &str) -> Vec<[Spanned<Selector>; 2]> {
    let help = Some("a list of pairs: [['span[name=\"a\"]', 'span[name=\"b\"]']]");
    let DeValue::Array(pairs) = value.get_ref() else {
        cx.wrong_type(value, what, "an array of selector pairs", help);
        return Vec::new();
    };
    let mut out = Vec::new();
    for pair in pairs.iter() {
        match pair.get_ref() {
            DeValue::Array(items) if items.len() == 2 => {
                let first = selector(cx, &items[0], what);
                let second = selector(cx, &items[1], what);
                if let (Some(a), Some(b)) = (first, second) {
                    out.push([a, b]);
                }
            }
            _ => {
                let d =
                    Diagnostic::error("invalid-value", format!("each entry of {what} must be a pair of two selectors"))
                        .label("not a pair")
                        .help_opt(help.map(str::to_string));
                cx.report(d, pair.span());
            }
        }
    }
    out
}
