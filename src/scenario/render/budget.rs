//! Bounds on the work of one render. Tera has no limits of its own: a loop over
//! `range(end=100000000)`, loops inside loops, a value doubled in a loop or macros that each call
//! the next twice take minutes and gigabytes. So templates are rewritten once parsed: the text of
//! each template and macro starts with a call to a tick function, each loop's container is checked
//! (and the whole loop counted) before Tera copies it, every value printed, assigned or passed to a
//! macro goes through a meter, and `range` and every filter are wrapped. They count, per render,
//! loop iterations, macro calls and included templates, and bytes produced, watch the stack, and
//! stop the render with an error naming the limit and where it was hit.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tera::ast::{Block, Expr, ExprVal, FunctionCall, Node, WS};
use tera::{Filter, Function, Tera, Value};

use super::graph::{Refs, Site};

/// Loop iterations, macro calls and included templates rendered, per render.
pub const MAX_STEPS: usize = 100_000;
/// Bytes of text and values produced, per render (counted each time they are copied).
pub const MAX_BYTES: usize = 16 << 20;
/// Levels of arrays and objects inside one another in one value.
pub const MAX_VALUE_DEPTH: usize = 64;
/// The stack a render runs on (reserved, and used only as deep as rendering goes).
pub const STACK: usize = 64 << 20;
/// A template, macro or loop does not start with less stack left than this: room for what Tera
/// does before the next one starts, at most the tags nested in one file and the expressions of
/// one tag, whose depths `scan` bounds.
const RED_ZONE: usize = 4 << 20;

/// Ends the message of every limit, so that nobody mistakes it for a limit of Tera or of the system.
const LIMIT: &str = "(a limit of clnrm)";

const TICK: &str = "__clnrm_tick";
const VALUE: &str = "__clnrm_value";
const LOOP: &str = "__clnrm_loop";

/// Rewrites `template` so that rendering it is metered (see the module's documentation).
/// `openers` are the spans of its `{% for %}` and `{% macro %}` tags in order, so that a limit
/// hit inside one can point at it. Returns what the template refers to, found on the way.
pub fn instrument(template: &mut tera::Template, openers: &[Range<usize>]) -> Refs {
    let mut walk = Walk {
        template: template.name.clone(),
        openers: (count_openers(&template.ast) == openers.len()).then(|| openers.iter()),
        refs: Refs::new(template),
    };
    let (body, text) = walk.body(std::mem::take(&mut template.ast), &None, None);
    template.ast = [walk.tick(&None, text, true)].into_iter().chain(body).collect();
    // Tera renders macros and blocks from copies made when it parsed: make them again.
    template.macros = template
        .ast
        .iter()
        .filter_map(|n| match n {
            Node::MacroDefinition(_, m, _) => Some((m.name.clone(), m.clone())),
            _ => None,
        })
        .collect();
    template.blocks.clear();
    collect_blocks(&template.ast, &mut template.blocks);
    walk.refs
}

/// `{% for %}` and `{% macro %}` tags in `nodes`, at any depth.
fn count_openers(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|node| match node {
            Node::Forloop(_, f, _) => 1 + count_openers(&f.body) + f.empty_body.as_deref().map_or(0, count_openers),
            Node::MacroDefinition(_, m, _) => 1 + count_openers(&m.body),
            Node::If(i, _) => {
                i.conditions.iter().map(|(_, _, b)| count_openers(b)).sum::<usize>()
                    + i.otherwise.as_ref().map_or(0, |(_, b)| count_openers(b))
            }
            Node::Block(_, b, _) => count_openers(&b.body),
            Node::FilterSection(_, f, _) => count_openers(&f.body),
            _ => 0,
        })
        .sum()
}

/// Blocks at the top of `nodes` and inside them, as Tera finds them.
fn collect_blocks(nodes: &[Node], out: &mut HashMap<String, Block>) {
    for node in nodes {
        if let Node::Block(_, block, _) = node {
            out.insert(block.name.clone(), block.clone());
            collect_blocks(&block.body, out);
        }
    }
}

/// One pass over a template's syntax tree.
struct Walk<'a> {
    template: String,
    /// The spans of loop and macro tags not yet met; `None` when they do not match the tree.
    openers: Option<std::slice::Iter<'a, Range<usize>>>,
    refs: Refs,
}

impl Walk<'_> {
    /// A body rewritten, with the bytes of text it renders (its own, and that of the branches and
    /// filter sections inside it; loops, macros and blocks count theirs). Macros and blocks start
    /// with a tick, loops check their container, and values are metered. `place` is the enclosing loop
    /// or macro tag; `owner` the enclosing macro.
    fn body(&mut self, nodes: Vec<Node>, place: &Option<Range<usize>>, owner: Option<&str>) -> (Vec<Node>, usize) {
        let mut text = 0;
        let mut out = Vec::with_capacity(nodes.len());
        for node in nodes {
            match node {
                Node::Text(t) => {
                    text += t.len();
                    out.push(Node::Text(t));
                }
                Node::Raw(ws, t, end_ws) => {
                    text += t.len();
                    out.push(Node::Raw(ws, t, end_ws));
                }
                Node::Forloop(ws, mut f, end_ws) => {
                    let tag = self.opener();
                    self.expr(&mut f.container, owner);
                    let (body, each) = self.body(f.body, &tag, owner);
                    let (empty_body, empty) = match f.empty_body {
                        Some(b) => {
                            let (b, t) = self.body(b, &tag, owner);
                            (Some(b), t)
                        }
                        None => (None, 0),
                    };
                    let [t, from, to] = self.place(&tag);
                    let name = match &f.container.val {
                        ExprVal::Ident(name) | ExprVal::FunctionCall(FunctionCall { name, .. }) => name.clone(),
                        _ => "the list".to_string(),
                    };
                    let container = std::mem::replace(&mut f.container, Expr::new(ExprVal::Bool(false)));
                    let args = [
                        ("v", container),
                        ("name", Expr::new(ExprVal::String(name))),
                        ("key", Expr::new(ExprVal::Bool(f.key.is_some()))),
                        t,
                        from,
                        to,
                        int("each", each),
                        int("empty", empty),
                    ];
                    f.container = call(LOOP, args);
                    (f.body, f.empty_body) = (body, empty_body);
                    // At the loop's tag while its container is computed (a `range`, say), and
                    // back in the enclosing loop or macro after it.
                    out.push(self.tick(&tag, 0, false));
                    out.push(Node::Forloop(ws, f, end_ws));
                    out.push(self.tick(place, 0, false));
                }
                Node::MacroDefinition(ws, mut m, end_ws) => {
                    let tag = self.opener();
                    let name = m.name.clone();
                    for default in m.args.values_mut().flatten() {
                        self.expr(default, Some(&name));
                    }
                    let (body, own) = self.body(m.body, &tag, Some(&name));
                    m.body = [self.tick(&tag, own, true)].into_iter().chain(body).collect();
                    out.push(Node::MacroDefinition(ws, m, end_ws));
                }
                Node::If(mut i, ws) => {
                    for (_, condition, body) in &mut i.conditions {
                        self.expr(condition, owner);
                        let (b, t) = self.body(std::mem::take(body), place, owner);
                        (*body, text) = (b, text + t);
                    }
                    if let Some((_, body)) = &mut i.otherwise {
                        let (b, t) = self.body(std::mem::take(body), place, owner);
                        (*body, text) = (b, text + t);
                    }
                    out.push(Node::If(i, ws));
                }
                Node::Block(ws, mut b, end_ws) => {
                    // Its own tick: under `extends`, a block renders where the parent puts it
                    // (even in a loop), and the child's own text is never rendered.
                    let (body, own) = self.body(b.body, place, owner);
                    b.body = [self.tick(place, own, false)].into_iter().chain(body).collect();
                    out.push(Node::Block(ws, b, end_ws));
                }
                Node::FilterSection(ws, mut f, end_ws) => {
                    f.filter.args.values_mut().for_each(|arg| self.expr(arg, owner));
                    let (body, t) = self.body(f.body, place, owner);
                    (f.body, text) = (body, text + t);
                    out.push(Node::FilterSection(ws, f, end_ws));
                }
                Node::VariableBlock(ws, mut e) => {
                    self.expr(&mut e, owner);
                    out.push(Node::VariableBlock(ws, metered(e)));
                }
                Node::Set(ws, mut set) => {
                    self.expr(&mut set.value, owner);
                    set.value = metered(set.value);
                    out.push(Node::Set(ws, set));
                }
                Node::Include(ws, names, ignore_missing) => {
                    self.refs.add(owner, Site::Include { names: names.clone(), required: !ignore_missing });
                    out.push(Node::Include(ws, names, ignore_missing));
                }
                other => out.push(other),
            }
        }
        (out, text)
    }

    /// Records the macros `expr` calls and meters the arguments it passes them.
    fn expr(&mut self, expr: &mut Expr, owner: Option<&str>) {
        self.value(&mut expr.val, owner);
        for filter in &mut expr.filters {
            filter.args.values_mut().for_each(|arg| self.expr(arg, owner));
        }
    }

    fn value(&mut self, value: &mut ExprVal, owner: Option<&str>) {
        match value {
            ExprVal::MacroCall(c) => {
                self.refs.add(owner, Site::Call(c.namespace.clone(), c.name.clone()));
                for arg in c.args.values_mut() {
                    self.expr(arg, owner);
                    *arg = metered(std::mem::replace(arg, Expr::new(ExprVal::Bool(false))));
                }
            }
            ExprVal::FunctionCall(f) => f.args.values_mut().for_each(|arg| self.expr(arg, owner)),
            ExprVal::Array(items) => items.iter_mut().for_each(|item| self.expr(item, owner)),
            ExprVal::Math(m) => [&mut m.lhs, &mut m.rhs].into_iter().for_each(|e| self.expr(e, owner)),
            ExprVal::Logic(l) => [&mut l.lhs, &mut l.rhs].into_iter().for_each(|e| self.expr(e, owner)),
            ExprVal::In(i) => [&mut i.lhs, &mut i.rhs].into_iter().for_each(|e| self.expr(e, owner)),
            ExprVal::Test(t) => t.args.iter_mut().for_each(|arg| self.expr(arg, owner)),
            ExprVal::StringConcat(c) => c.values.iter_mut().for_each(|v| self.value(v, owner)),
            _ => {}
        }
    }

    /// The span of the next loop or macro tag.
    fn opener(&mut self) -> Option<Range<usize>> {
        self.openers.as_mut().and_then(Iterator::next).cloned()
    }

    /// The arguments naming `place` in this template.
    fn place(&self, place: &Option<Range<usize>>) -> [(&'static str, Expr); 3] {
        let (from, to) = place.as_ref().map_or((-1, -1), |p| (p.start as i64, p.end as i64));
        let int = |v| Expr::new(ExprVal::Int(v));
        [("t", Expr::new(ExprVal::String(self.template.clone()))), ("from", int(from)), ("to", int(to))]
    }

    /// A tick: rendering is at `place`, renders `text` bytes of text, and takes a step or not.
    fn tick(&self, place: &Option<Range<usize>>, text: usize, step: bool) -> Node {
        let [t, from, to] = self.place(place);
        let args = [t, from, to, int("text", text), ("step", Expr::new(ExprVal::Bool(step)))];
        Node::VariableBlock(WS::default(), call(TICK, args))
    }
}

fn int(name: &'static str, value: usize) -> (&'static str, Expr) {
    (name, Expr::new(ExprVal::Int(value as i64)))
}

/// `expr` passed through the value meter.
fn metered(expr: Expr) -> Expr {
    call(VALUE, [("v", expr)])
}

fn call<const N: usize>(name: &str, args: [(&str, Expr); N]) -> Expr {
    let args = args.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Expr::new(ExprVal::FunctionCall(FunctionCall { name: name.to_string(), args }))
}

/// What one render has used, shared by the functions and filters of one renderer.
#[derive(Default)]
pub struct Budget(Mutex<Usage>);

#[derive(Default)]
struct Usage {
    steps: usize,
    bytes: usize,
    place: Place,
    exceeded: Option<Exceeded>,
}

/// Where rendering is: a template, and the loop or macro tag in it being rendered, if any.
#[derive(Debug, Clone, Default)]
pub struct Place {
    pub template: String,
    pub span: Option<Range<usize>>,
}

/// A limit a render hit, and where.
#[derive(Debug, Clone)]
pub struct Exceeded {
    pub place: Place,
    pub message: String,
}

impl Budget {
    /// Registers the meters on `tera` and wraps its `range` and filters, all counting against
    /// the returned budget.
    pub fn install(tera: &mut Tera) -> Arc<Budget> {
        let budget = Arc::new(Budget::default());
        tera.register_function(TICK, Tick(budget.clone()));
        tera.register_function(VALUE, Meter(budget.clone()));
        tera.register_function(LOOP, LoopCheck(budget.clone()));
        if let Some(inner) = tera.functions.get("range").cloned() {
            tera.register_function("range", BoundedRange { inner, budget: budget.clone() });
        }
        let filters: Vec<(String, Arc<dyn Filter>)> =
            tera.filters.iter().map(|(n, f)| (n.clone(), f.clone())).collect();
        for (name, inner) in filters {
            tera.register_filter(&name, MeteredFilter { name: name.clone(), inner, budget: budget.clone() });
        }
        budget
    }

    /// Starts counting a new render.
    pub fn start(&self) {
        *self.usage() = Usage::default();
    }

    /// The limit the render hit, if it hit one.
    pub fn exceeded(&self) -> Option<Exceeded> {
        self.usage().exceeded.clone()
    }

    fn usage(&self) -> MutexGuard<'_, Usage> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Usage {
    /// Rendering enters the place named by `args` (`t`, `from`, `to`): refused when too little
    /// stack is left for Tera to go on.
    fn enter(&mut self, args: &HashMap<String, Value>) -> tera::Result<()> {
        let int = |name| args.get(name).and_then(Value::as_u64).map(|n| n as usize);
        self.place = Place {
            template: args.get("t").and_then(Value::as_str).unwrap_or_default().to_string(),
            span: int("from").zip(int("to")).map(|(from, to)| from..to),
        };
        self.check()?;
        if stacker::remaining_stack().is_some_and(|left| left < RED_ZONE) {
            let message = format!(
                "templates nest too deeply to render: loops, conditions, macro calls and includes inside one another use up the stack {LIMIT}"
            );
            return Err(self.exceed(message));
        }
        Ok(())
    }

    /// The error for a limit hit; every later check fails too (a render that swallowed the error
    /// must not go on).
    fn exceed(&mut self, message: String) -> tera::Error {
        let place = self.place.clone();
        self.exceeded.get_or_insert(Exceeded { place, message: message.clone() });
        tera::Error::msg(message)
    }

    fn check(&self) -> tera::Result<()> {
        match &self.exceeded {
            Some(e) => Err(tera::Error::msg(e.message.clone())),
            None => Ok(()),
        }
    }

    fn steps(&mut self, steps: usize) -> tera::Result<()> {
        self.check()?;
        self.steps = self.steps.saturating_add(steps);
        if self.steps > MAX_STEPS {
            let message =
                format!("rendering takes more than {MAX_STEPS} loop iterations, macro calls and includes {LIMIT}");
            return Err(self.exceed(message));
        }
        Ok(())
    }

    /// Fails unless `bytes` more fit, with what `what` says would make them as the message.
    fn fits(&mut self, bytes: usize, what: impl FnOnce() -> String) -> tera::Result<()> {
        self.check()?;
        if self.bytes.saturating_add(bytes) > MAX_BYTES {
            let message = format!(
                "{}, more than the {} MiB of text and values a render may produce {LIMIT}",
                what(),
                MAX_BYTES >> 20
            );
            return Err(self.exceed(message));
        }
        Ok(())
    }

    fn charge(&mut self, bytes: usize) -> tera::Result<()> {
        self.check()?;
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > MAX_BYTES {
            return Err(
                self.exceed(format!("rendering produces more than {} MiB of text and values {LIMIT}", MAX_BYTES >> 20))
            );
        }
        Ok(())
    }

    fn charge_value(&mut self, value: &Value) -> tera::Result<()> {
        match measure(value, 0) {
            Some((bytes, _)) => self.charge(bytes),
            None => Err(self.exceed(format!("a value nests more than {MAX_VALUE_DEPTH} levels deep {LIMIT}"))),
        }
    }
}

/// What one value takes in memory, besides the text it holds.
const VALUE_SIZE: usize = std::mem::size_of::<Value>();

/// About how many bytes a value takes in memory (each value and key, and its text) and how deep
/// it nests; `None` past [`MAX_VALUE_DEPTH`].
fn measure(value: &Value, depth: usize) -> Option<(usize, usize)> {
    if depth > MAX_VALUE_DEPTH {
        return None;
    }
    let inner = |v: &Value, extra: usize, (bytes, deepest): (usize, usize)| {
        measure(v, depth + 1).map(|(b, d)| (bytes + extra + b, deepest.max(d + 1)))
    };
    match value {
        Value::String(s) => Some((VALUE_SIZE + s.len(), 0)),
        Value::Array(items) => items.iter().try_fold((VALUE_SIZE, 0), |acc, v| inner(v, 0, acc)),
        Value::Object(map) => map.iter().try_fold((VALUE_SIZE, 0), |acc, (k, v)| inner(v, VALUE_SIZE + k.len(), acc)),
        _ => Some((VALUE_SIZE, 0)),
    }
}

/// A whole-number argument; 0 when absent.
fn number(args: &HashMap<String, Value>, name: &str) -> usize {
    args.get(name).and_then(Value::as_u64).unwrap_or(0) as usize
}

/// `__clnrm_tick(t, from, to, text, step)`: rendering reaches a place (see [`Walk::tick`]): a
/// template or macro starts (a step), or a block, or a loop is entered or left.
struct Tick(Arc<Budget>);

impl Function for Tick {
    fn call(&self, args: &HashMap<String, Value>) -> tera::Result<Value> {
        let mut usage = self.0.usage();
        usage.enter(args)?;
        if args.get("step").and_then(Value::as_bool) == Some(true) {
            usage.steps(1)?;
        }
        usage.charge(number(args, "text"))?;
        Ok(Value::String(String::new()))
    }
}

/// `__clnrm_value(v)`: `v`, counted.
struct Meter(Arc<Budget>);

impl Function for Meter {
    fn call(&self, args: &HashMap<String, Value>) -> tera::Result<Value> {
        let value = args.get("v").cloned().unwrap_or(Value::Null);
        self.0.usage().charge_value(&value)?;
        Ok(value)
    }
}

/// `__clnrm_loop(v, name, key, t, from, to, each, empty)`: the container `v` (written `name`) of
/// the loop at a place, taking keys and values or not, whose body renders `each` bytes of text per
/// item (`empty` when there is none). The whole loop counts before Tera copies the items: a step
/// per item (even if it breaks early; a string's characters count more, as Tera walks the string
/// from its start for each), and its text. A container Tera cannot loop over is refused here, as
/// Tera would only name this function.
struct LoopCheck(Arc<Budget>);

impl Function for LoopCheck {
    fn call(&self, args: &HashMap<String, Value>) -> tera::Result<Value> {
        let value = args.get("v").cloned().unwrap_or(Value::Null);
        let name = args.get("name").and_then(Value::as_str).unwrap_or_default();
        let key = args.get("key").and_then(Value::as_bool) == Some(true);
        let (items, steps) = match (&value, key) {
            (Value::Array(items), false) => (items.len(), items.len()),
            (Value::String(s), false) => {
                let n = s.chars().count();
                (n, n.saturating_add(n.saturating_mul(n) / 100))
            }
            (Value::Object(map), true) => (map.len(), map.len()),
            (Value::Object(_), false) => {
                return Err(tera::Error::msg(format!("`{name}` is a table: loop over it with `for key, value in …`")));
            }
            (Value::Array(_) | Value::String(_), true) => {
                return Err(tera::Error::msg(format!("`{name}` has no keys: loop over it with `for value in …`")));
            }
            (other, _) => {
                return Err(tera::Error::msg(format!("`{name}` is {other}, which a loop cannot go through")));
            }
        };
        let mut usage = self.0.usage();
        usage.enter(args)?;
        if usage.steps.saturating_add(steps) > MAX_STEPS {
            let what = match value {
                Value::String(_) => "characters (each counts more, as Tera reads the string from its start for each)",
                _ => "items",
            };
            let message = format!(
                "this loop over {items} {what} would take rendering past {MAX_STEPS} loop iterations, macro calls and includes {LIMIT}"
            );
            return Err(usage.exceed(message));
        }
        usage.steps(steps)?;
        let text = if items == 0 { number(args, "empty") } else { items.saturating_mul(number(args, "each")) };
        usage.charge(text)?;
        Ok(value)
    }
}

/// Tera's `range`, refused before it makes more numbers than fit, or when it would never end.
struct BoundedRange {
    inner: Arc<dyn Function>,
    budget: Arc<Budget>,
}

impl Function for BoundedRange {
    fn call(&self, args: &HashMap<String, Value>) -> tera::Result<Value> {
        let number = |name, default| args.get(name).map_or(Some(default), Value::as_u64);
        let end = args.get("end").and_then(Value::as_u64);
        if let (Some(start), Some(end), Some(step)) = (number("start", 0), end, number("step_by", 1)) {
            let mut usage = self.budget.usage();
            if step == 0 && start < end {
                return Err(usage.exceed("`range` with `step_by=0` never ends".to_string()));
            }
            let count = end.saturating_sub(start).div_ceil(step.max(1));
            usage
                .fits((count as usize).saturating_mul(VALUE_SIZE), || format!("`range` would make {count} numbers"))?;
        }
        self.inner.call(args)
    }

    fn is_safe(&self) -> bool {
        self.inner.is_safe()
    }
}

/// A filter whose output counts, refused beforehand when the output would be far larger than
/// its input.
struct MeteredFilter {
    name: String,
    inner: Arc<dyn Filter>,
    budget: Arc<Budget>,
}

impl Filter for MeteredFilter {
    fn filter(&self, value: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
        let expected = output_bound(&self.name, value, args);
        self.budget
            .usage()
            .fits(expected, || format!("the `{}` filter would make about {expected} bytes", self.name))?;
        let out = self.inner.filter(value, args)?;
        self.budget.usage().charge_value(&out)?;
        Ok(out)
    }

    fn is_safe(&self) -> bool {
        self.inner.is_safe()
    }
}

/// What the filters whose output can be a product of sizes (of the input and an argument, of a
/// value and its depth, or of a text and the values it splits into) would make; 0 for the
/// others, whose output is at most a few times their input and is counted once made.
fn output_bound(filter: &str, value: &Value, args: &HashMap<String, Value>) -> usize {
    let text = |name| args.get(name).and_then(Value::as_str);
    match (filter, value) {
        ("replace", Value::String(s)) => {
            let from = text("from").unwrap_or_default();
            let count = if from.is_empty() { s.chars().count() + 1 } else { s.matches(from).count() };
            count.saturating_mul(text("to").map_or(0, str::len)).saturating_add(s.len())
        }
        ("indent", Value::String(s)) => s.lines().count().saturating_mul(text("prefix").map_or(4, str::len)),
        ("join", Value::Array(items)) => items.len().saturating_mul(text("sep").map_or(0, str::len)),
        ("split", Value::String(s)) => {
            let pattern = text("pat").unwrap_or_default();
            let count = if pattern.is_empty() { s.chars().count() + 2 } else { s.matches(pattern).count() + 1 };
            count.saturating_mul(VALUE_SIZE)
        }
        // Pretty-printed, each value (at most one per VALUE_SIZE bytes) is indented two spaces
        // per level.
        ("json_encode", v) => measure(v, 0).map_or(0, |(bytes, depth)| bytes + bytes / VALUE_SIZE * 2 * depth),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str) -> Result<String, Exceeded> {
        let openers = super::super::scan::check(&crate::diagnostic::SourceFile::new("t", text)).unwrap();
        let mut template = tera::Template::new("t", None, text).unwrap();
        instrument(&mut template, &openers);
        let mut tera = Tera::default();
        tera.autoescape_on(vec![]);
        let budget = Budget::install(&mut tera);
        tera.templates.insert("t".into(), template);
        budget.start();
        let result = stacker::grow(STACK, || tera.render("t", &tera::Context::new()));
        result.map_err(|e| budget.exceeded().unwrap_or_else(|| panic!("{e:?}")))
    }

    #[test]
    fn metered_templates_render_as_before() {
        let text = "{% macro m(x) %}<{{ x }}>{% endmacro m %}{% set l = [1, 2] %}{% for i in l %}{{ self::m(x=i) }}{% else %}none{% endfor %}{% if l | length > 1 %} {{ l | join(sep=\",\") }}{% endif %}";
        assert_eq!(render(text).unwrap(), "<1><2> 1,2");
    }

    #[test]
    fn a_render_stops_before_the_stack_runs_out() {
        // A template including itself, which only `graph` would refuse.
        let e = render("{% if true %}{% include \"t\" %}{% endif %}").unwrap_err();
        assert!(e.message.starts_with("templates nest too deeply to render"), "{}", e.message);
    }

    #[test]
    fn limits_name_the_loop_or_macro_being_rendered() {
        let e = render("a\n{% for i in range(end=100000000) %}{% endfor %}").unwrap_err();
        assert!(e.message.starts_with("`range` would make 100000000 numbers"), "{}", e.message);
        assert_eq!(e.place.span, Some(2..37));
        let e =
            render("{% for i in range(end=1000) %}{% for j in range(end=1000) %}{% endfor %}{% endfor %}").unwrap_err();
        assert!(e.message.contains("100000 loop iterations"), "{}", e.message);
        assert_eq!(e.place.span, Some(30..60));
        let e =
            render("{% set s = 'ab' %}{% for i in range(end=40) %}{% set_global s = s ~ s %}{% endfor %}").unwrap_err();
        assert!(e.message.contains("16 MiB of text and values"), "{}", e.message);
        let e =
            render("{% set a = [] %}{% for i in range(end=100) %}{% set_global a = [a] %}{% endfor %}").unwrap_err();
        assert!(e.message.contains("nests more than 64 levels"), "{}", e.message);
        let e = render(
            "{% set s = 'ab' %}{% for i in range(end=13) %}{% set_global s = s | replace(from='', to=s) %}{% endfor %}",
        )
        .unwrap_err();
        assert!(e.message.starts_with("the `replace` filter would make about"), "{}", e.message);
    }
}
