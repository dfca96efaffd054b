//! Static checks that rendering ends: no template reaches itself through includes, imports,
//! extends or macro calls, and references nest at most [`MAX_DEPTH`] levels. Tera recurses for
//! each of these (loading an import's macros, rendering an included template, a parent or a
//! macro) with no limit of its own, so a cycle or a long enough chain overflows the stack.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Includes, imports, extends and macro calls nested inside one another that one render follows.
pub const MAX_DEPTH: usize = 32;

/// A reference written in a template's text.
#[derive(Debug, Clone)]
pub enum Site {
    /// `{% include %}` of any of `names`; `required` unless `ignore missing`.
    Include { names: Vec<String>, required: bool },
    /// `namespace::name(…)`.
    Call(String, String),
}

/// What one template refers to.
#[derive(Debug, Clone, Default)]
pub struct Refs {
    /// `(file, namespace)` of each `{% import %}`.
    imports: Vec<(String, String)>,
    parent: Option<String>,
    /// In its own text (blocks included), outside macro definitions.
    body: Vec<Site>,
    /// In each macro it defines.
    macros: BTreeMap<String, Vec<Site>>,
    /// Whether it defines blocks: where one renders, Tera looks macro calls up in this
    /// template's namespaces, whatever template they are written in.
    blocks: bool,
}

impl Refs {
    /// The imports, parent and macro names of `template`; sites are added with [`Refs::add`].
    pub fn new(template: &tera::Template) -> Refs {
        Refs {
            imports: template.imported_macro_files.clone(),
            parent: template.parent.clone(),
            body: Vec::new(),
            macros: template.macros.keys().map(|name| (name.clone(), Vec::new())).collect(),
            blocks: !template.blocks.is_empty(),
        }
    }

    /// Records a site in the text of macro `owner`, or in the template's own text.
    pub fn add(&mut self, owner: Option<&str>, site: Site) {
        match owner {
            Some(name) => self.macros.entry(name.to_string()).or_default().push(site),
            None => self.body.push(site),
        }
    }

    /// Templates that must exist for this one to render, with how it names them.
    pub fn required(&self) -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &'static str)> =
            self.imports.iter().map(|(file, _)| (file.clone(), "imports")).collect();
        out.extend(self.parent.iter().map(|p| (p.clone(), "extends")));
        for site in self.body.iter().chain(self.macros.values().flatten()) {
            if let Site::Include { names, required: true } = site {
                out.extend(names.iter().map(|n| (n.clone(), "includes")));
            }
        }
        out
    }

    /// The graph's nodes for this template, in the order a search starts from them.
    pub fn nodes(&self, name: &str) -> Vec<Node> {
        let mut nodes = vec![Node::Macros(name.to_string()), Node::Body(name.to_string())];
        nodes.extend(self.macros.keys().map(|m| Node::Macro(name.to_string(), m.clone())));
        nodes
    }
}

/// The templates a render can reach: the project's, and the scenario being rendered on top.
pub struct Universe<'a> {
    templates: &'a BTreeMap<String, Refs>,
    scenario: Option<(&'a str, &'a Refs)>,
    /// What each namespace names in the templates in whose namespaces Tera may look up any macro
    /// call of a render, besides those of the template the call is written in: under `extends`,
    /// the base template's, and where a block renders, those of the block's template.
    contexts: BTreeMap<String, BTreeSet<String>>,
}

impl<'a> Universe<'a> {
    pub fn new(templates: &'a BTreeMap<String, Refs>) -> Self {
        let mut universe = Universe { templates, scenario: None, contexts: BTreeMap::new() };
        universe.add_contexts(templates.iter().filter(|(_, r)| r.blocks).map(|(name, _)| name.clone()));
        universe
    }

    pub fn with_scenario(self, name: &'a str, refs: &'a Refs) -> Self {
        let mut universe = Universe { scenario: Some((name, refs)), ..self };
        let mut chain = BTreeSet::new();
        if refs.blocks || refs.parent.is_some() {
            chain.insert(name.to_string());
        }
        let mut parent = refs.parent.clone();
        for _ in 0..=MAX_DEPTH {
            let Some(p) = parent.filter(|p| chain.insert(p.clone())) else { break };
            parent = universe.get(&p).and_then(|r| r.parent.clone());
        }
        universe.add_contexts(chain);
        universe
    }

    fn add_contexts(&mut self, files: impl IntoIterator<Item = String>) {
        for file in files {
            for (namespace, targets) in self.names(&file) {
                self.contexts.entry(namespace).or_default().extend(targets);
            }
        }
    }

    fn get(&self, name: &str) -> Option<&'a Refs> {
        match self.scenario {
            Some((scenario, refs)) if scenario == name => Some(refs),
            _ => self.templates.get(name),
        }
    }

    /// What `node` leads Tera into.
    fn edges(&self, node: &Node) -> Vec<Edge> {
        let Some(refs) = self.get(node.file()) else { return Vec::new() };
        let edge = |to: Node, how, needle: &str| Edge { from: node.clone(), to, how, needle: needle.to_string() };
        let mut out = Vec::new();
        let sites = match node {
            Node::Macro(_, name) => refs.macros.get(name).map_or(&[][..], Vec::as_slice),
            Node::Body(_) | Node::Macros(_) => {
                // Rendering a template, or loading its macros, loads the macros of what it
                // imports, and renders (or loads) its parent.
                for (import, _) in refs.imports.iter().filter(|(i, _)| self.get(i).is_some()) {
                    out.push(edge(Node::Macros(import.clone()), How::Imports, import));
                }
                if let Some(parent) = refs.parent.as_ref().filter(|p| self.get(p).is_some()) {
                    let to = match node {
                        Node::Body(_) => Node::Body(parent.clone()),
                        _ => Node::Macros(parent.clone()),
                    };
                    out.push(edge(to, How::Extends, parent));
                }
                if matches!(node, Node::Macros(_)) {
                    return out;
                }
                &refs.body
            }
        };
        for site in sites {
            match site {
                Site::Include { names, .. } => {
                    for name in names.iter().filter(|n| self.get(n).is_some()) {
                        out.push(edge(Node::Body(name.clone()), How::Includes, name));
                    }
                }
                Site::Call(namespace, name) => {
                    let needle = format!("{namespace}::{name}");
                    for file in self.resolve(node.file(), namespace) {
                        if self.get(&file).is_some_and(|r| r.macros.contains_key(name)) {
                            out.push(edge(Node::Macro(file, name.clone()), How::Calls, &needle));
                        }
                    }
                }
            }
        }
        out
    }

    /// The files `namespace::…` can name in `file`: what its namespaces or the contexts' name.
    fn resolve(&self, file: &str, namespace: &str) -> BTreeSet<String> {
        let mut found = self.names(file).remove(namespace).unwrap_or_default();
        found.extend(self.contexts.get(namespace).into_iter().flatten().cloned());
        found
    }

    /// The files each namespace of `file` can name: under `self`, the template itself, or when it
    /// defines no macro, what it imports or extends, and so on; under another namespace, every
    /// file imported as it by the template, what it imports or extends, and so on (Tera merges
    /// their namespaces into the template's own).
    fn names(&self, file: &str) -> BTreeMap<String, BTreeSet<String>> {
        let closure = self.closure([file]);
        let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (import, namespace) in closure.iter().filter_map(|f| self.get(f)).flat_map(|r| &r.imports) {
            names.entry(namespace.clone()).or_default().insert(import.clone());
        }
        let own = self.get(file).is_some_and(|r| !r.macros.is_empty());
        names.insert("self".to_string(), if own { BTreeSet::from([file.to_string()]) } else { closure });
        names
    }

    /// `files` and everything they import or extend, and so on.
    fn closure<'s>(&self, files: impl IntoIterator<Item = &'s str>) -> BTreeSet<String> {
        let mut seen: BTreeSet<String> = files.into_iter().map(str::to_string).collect();
        let mut queue: Vec<String> = seen.iter().cloned().collect();
        while let Some(current) = queue.pop() {
            let Some(refs) = self.get(&current) else { continue };
            for next in refs.imports.iter().map(|(import, _)| import).chain(&refs.parent) {
                if seen.insert(next.clone()) {
                    queue.push(next.clone());
                }
            }
        }
        seen
    }
}

/// A place rendering can be in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    /// A template's own text being rendered.
    Body(String),
    /// A template's macros being loaded, with those of what it imports and extends.
    Macros(String),
    /// A macro of a template being rendered.
    Macro(String, String),
}

impl Node {
    /// The template it belongs to.
    pub fn file(&self) -> &str {
        match self {
            Node::Body(f) | Node::Macros(f) | Node::Macro(f, _) => f,
        }
    }

    /// How messages name it: the template, or `template::macro`.
    pub fn shown(&self) -> String {
        match self {
            Node::Macro(file, name) => format!("{file}::{name}"),
            _ => self.file().to_string(),
        }
    }
}

/// How a tag refers to another template or macro.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Includes,
    Imports,
    Extends,
    Calls,
}

impl How {
    pub fn verb(self) -> &'static str {
        match self {
            How::Includes => "includes",
            How::Imports => "imports",
            How::Extends => "extends",
            How::Calls => "calls",
        }
    }

    /// The verb for several subjects ("templates include …").
    pub fn plural(self) -> &'static str {
        self.verb().strip_suffix('s').unwrap_or(self.verb())
    }
}

/// One reference, written in a tag of `from`'s template.
#[derive(Debug, Clone)]
pub struct Edge {
    pub from: Node,
    pub to: Node,
    pub how: How,
    /// What the tag names (a template, or `namespace::macro`), to find the tag in the text.
    pub needle: String,
}

/// The cycles and chain lengths found from some nodes.
#[derive(Default)]
pub struct Analysis {
    /// Each cycle as its edges, the last one closing it.
    pub cycles: Vec<Vec<Edge>>,
    /// For each node searched, its longest chain's length (in edges) and first edge.
    longest: HashMap<Node, (usize, Option<Edge>)>,
}

/// A node being searched, with its edges and how far through them the search is.
struct Frame {
    node: Node,
    via: Option<Edge>,
    edges: Vec<Edge>,
    next: usize,
    longest: (usize, Option<Edge>),
}

impl Frame {
    fn reached(&mut self, length: usize, edge: &Edge) {
        if length + 1 > self.longest.0 {
            self.longest = (length + 1, Some(edge.clone()));
        }
    }
}

impl Analysis {
    /// Searches depth first from each root in turn, without recursion (chains may be long).
    pub fn run(universe: &Universe, roots: impl IntoIterator<Item = Node>) -> Analysis {
        let mut analysis = Analysis::default();
        for root in roots {
            if !analysis.longest.contains_key(&root) {
                analysis.search(universe, root);
            }
        }
        analysis
    }

    fn search(&mut self, universe: &Universe, root: Node) {
        let mut on_path: HashMap<Node, usize> = HashMap::from([(root.clone(), 0)]);
        let frame = |node: Node, via| Frame { edges: universe.edges(&node), node, via, next: 0, longest: (0, None) };
        let mut stack = vec![frame(root, None)];
        while let Some(top) = stack.last_mut() {
            if let Some(edge) = top.edges.get(top.next).cloned() {
                top.next += 1;
                if let Some(&at) = on_path.get(&edge.to) {
                    let entered = stack[at + 1..].iter().filter_map(|f| f.via.clone());
                    self.cycles.push(entered.chain([edge]).collect());
                } else if let Some((length, _)) = self.longest.get(&edge.to) {
                    top.reached(*length, &edge);
                } else {
                    on_path.insert(edge.to.clone(), stack.len());
                    stack.push(frame(edge.to.clone(), Some(edge)));
                }
                continue;
            }
            let done = stack.pop().expect("a frame");
            on_path.remove(&done.node);
            if let (Some(parent), Some(via)) = (stack.last_mut(), &done.via) {
                parent.reached(done.longest.0, via);
            }
            self.longest.insert(done.node, done.longest);
        }
    }

    /// The longest chain of references from `node` (searched), as its edges.
    pub fn chain(&self, node: &Node) -> Vec<Edge> {
        let mut out: Vec<Edge> = Vec::new();
        while let Some((_, Some(edge))) = self.longest.get(out.last().map_or(node, |e| &e.to)) {
            out.push(edge.clone());
        }
        out
    }
}

/// A chain of edges as the names it goes through, `a → b → c`; the middle of a long one elided.
pub fn shown(edges: &[Edge]) -> String {
    let mut names: Vec<String> = edges.first().map(|e| e.from.shown()).into_iter().collect();
    names.extend(edges.iter().map(|e| e.to.shown()));
    if names.len() > 8 {
        names.splice(5..names.len() - 1, ["…".to_string()]);
    }
    names.join(" → ")
}

/// For each chain of `{% extends %}` longer than [`MAX_DEPTH`], the edges up to the first
/// template too deep (whose tag is where the limit is passed). Cycles must be gone.
pub fn deep_extends(templates: &BTreeMap<String, Refs>) -> Vec<Vec<Edge>> {
    let mut out = Vec::new();
    for (name, refs) in templates {
        let mut chain = Vec::new();
        let (mut current, mut parent) = (name, refs.parent.as_ref());
        while let Some(p) = parent.filter(|p| templates.contains_key(*p) && chain.len() <= MAX_DEPTH) {
            let (from, to) = (Node::Body(current.clone()), Node::Body(p.clone()));
            chain.push(Edge { from, to, how: How::Extends, needle: p.clone() });
            (current, parent) = (p, templates[p].parent.as_ref());
        }
        if chain.len() == MAX_DEPTH + 1 && parent.is_none_or(|p| !templates.contains_key(p)) {
            out.push(chain);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refs of templates written as `name: a b` lines: `name` includes `a`, calls `ns::m` for
    /// `ns::m`, imports for `import:file:ns`, extends for `extends:file`, defines blocks for
    /// `blocks`, and defines macro `m` (whose calls follow it, until the next `macro:`) for
    /// `macro:m`.
    fn universe(spec: &str) -> BTreeMap<String, Refs> {
        let mut out = BTreeMap::new();
        for line in spec.lines().filter(|l| !l.trim().is_empty()) {
            let (name, refs) = line.split_once(':').unwrap();
            let mut r = Refs::default();
            let mut owner: Option<String> = None;
            for word in refs.split_whitespace() {
                if let Some(m) = word.strip_prefix("macro:") {
                    r.macros.insert(m.to_string(), Vec::new());
                    owner = Some(m.to_string());
                } else if let Some(rest) = word.strip_prefix("import:") {
                    let (file, ns) = rest.split_once(':').unwrap();
                    r.imports.push((file.to_string(), ns.to_string()));
                } else if let Some(parent) = word.strip_prefix("extends:") {
                    r.parent = Some(parent.to_string());
                } else if word == "blocks" {
                    r.blocks = true;
                } else if let Some((ns, m)) = word.split_once("::") {
                    r.add(owner.as_deref(), Site::Call(ns.to_string(), m.to_string()));
                } else {
                    r.add(owner.as_deref(), Site::Include { names: vec![word.to_string()], required: true });
                }
            }
            out.insert(name.trim().to_string(), r);
        }
        out
    }

    fn analyse(spec: &str) -> Analysis {
        let templates = universe(spec);
        let u = Universe::new(&templates);
        Analysis::run(&u, templates.iter().flat_map(|(name, refs)| refs.nodes(name)))
    }

    #[test]
    fn include_and_import_cycles_are_found_once_with_the_edge_that_closes_them() {
        let a = analyse("a: b\nb: c\nc: a\nd: a");
        assert_eq!(a.cycles.iter().map(|c| shown(c)).collect::<Vec<_>>(), ["a → b → c → a"]);
        assert_eq!(a.cycles[0].last().unwrap().from, Node::Body("c".into()));
        let a = analyse("m: import:n:n\nn: import:m:m");
        assert_eq!(a.cycles.iter().map(|c| shown(c)).collect::<Vec<_>>(), ["m → n → m"]);
        assert_eq!(a.cycles[0][1].how, How::Imports);
    }

    #[test]
    fn macro_calls_resolve_through_self_and_imported_namespaces() {
        let a = analyse("m: macro:a self::b macro:b self::a");
        assert_eq!(a.cycles.iter().map(|c| shown(c)).collect::<Vec<_>>(), ["m::a → m::b → m::a"]);
        // Through an import of an import, and through an include in a macro.
        let a = analyse("s: import:m:m m::a\nm: import:n:n macro:a n::b\nn: macro:b x\nx: import:m:m m::a");
        assert_eq!(a.cycles.iter().map(|c| shown(c)).collect::<Vec<_>>(), ["m::a → n::b → x → m::a"]);
        // A macro calling another of the same name elsewhere is no cycle.
        let a = analyse("wrap: import:base:base macro:step base::step\nbase: macro:step");
        assert!(a.cycles.is_empty());
    }

    #[test]
    fn calls_resolve_through_the_namespaces_tera_may_use_instead() {
        // Under `extends`, Tera looks `m::a` up in the base template's namespaces, where `m` is.
        let templates = universe("base: import:m:m\nm: macro:a m::a");
        assert!(Analysis::run(&Universe::new(&templates), templates["m"].nodes("m")).cycles.is_empty());
        let scenario = universe("s: extends:base").remove("s").unwrap();
        let u = Universe::new(&templates).with_scenario("s", &scenario);
        let a = Analysis::run(&u, templates["m"].nodes("m"));
        assert_eq!(a.cycles.iter().map(|c| shown(c)).collect::<Vec<_>>(), ["m::a → m::a"]);
        // Where a block of a template renders, in that template's, even without `extends`.
        let a = analyse("inc: import:m:m blocks\nm: macro:a m::a");
        assert_eq!(a.cycles.iter().map(|c| shown(c)).collect::<Vec<_>>(), ["m::a → m::a"]);
        // A template without macros takes `self` from what it imports.
        let a = analyse("t: import:m:m self::a\nm: macro:a t");
        assert_eq!(a.cycles.iter().map(|c| shown(c)).collect::<Vec<_>>(), ["m::a → t → m::a"]);
    }

    #[test]
    fn importing_a_file_that_includes_the_importer_is_no_cycle() {
        // Imports load macros; they do not render the imported file's text.
        assert!(analyse("a: import:b:b\nb: a").cycles.is_empty());
    }

    #[test]
    fn the_longest_chain_is_followed_without_recursion() {
        let spec: String = (0..5000).map(|i| format!("t{i}: t{}\n", i + 1)).collect::<String>() + "t5000:";
        let a = analyse(&spec);
        assert!(a.cycles.is_empty());
        let chain = a.chain(&Node::Body("t0".into()));
        assert_eq!(chain.len(), 5000);
        assert_eq!(chain.last().unwrap().to, Node::Body("t5000".into()));
        // Diamonds: the longer branch counts.
        let a = analyse("a: b c\nb: d\nc: e\ne: d\nd:");
        assert_eq!(shown(&a.chain(&Node::Body("a".into()))), "a → c → e → d");
    }

    #[test]
    fn extends_chains_longer_than_the_limit_are_reported_where_they_pass_it() {
        let spec: String = (0..40).map(|i| format!("t{i}: extends:t{}\n", i + 1)).collect::<String>() + "t40:";
        let deep = deep_extends(&universe(&spec));
        assert_eq!(deep.len(), 1);
        assert_eq!(deep[0].len(), MAX_DEPTH + 1);
        assert_eq!(deep[0][0].from, Node::Body(format!("t{}", 40 - MAX_DEPTH - 1)));
    }
}
