//! The module graph has no cycles (docs/architecture.md, section 1): no top-level module of `src/`
//! reaches back up to one that depends on it, and within each directory module no submodule does
//! so to a sibling. Reads the sources only; no Docker.
//!
//! A dependency is any `crate::`, `super::` or `self::` path in code that is not under
//! `#[cfg(test)]`: in `use` lines (with `{…}` groups) and inline alike. Comments and string
//! literals are skipped. A path counts for the longest module it names (`crate::expect::check::X`
//! is `expect::check`). Within a directory module the nodes are its submodules; its own `mod.rs`
//! is not one (it declares them). `src/bin/` is another crate and is not read.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

/// A module path from the crate root: `["expect", "check"]`; the root is empty.
type ModPath = Vec<String>;

/// Module → module graph, with for each edge one place that makes it.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// `from`'s code names `to` (resolved to a module); `shown` says where, for messages.
struct Dependency {
    from: ModPath,
    to: ModPath,
    shown: String,
}

#[test]
fn module_graph_has_no_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = source_files(&src);
    let modules: BTreeSet<ModPath> = files.iter().map(|(m, _)| m.clone()).collect();

    // Every module's dependencies, resolved to the longest known module path, with where each is
    // written.
    let mut deps: Vec<Dependency> = Vec::new();
    for (module, path) in &files {
        let text = fs::read_to_string(path).unwrap();
        let tokens = without_test_items(&tokenize(&text));
        for target in paths(&tokens, module) {
            let shown = format!("{} uses crate::{}", path.strip_prefix(&src).unwrap().display(), target.join("::"));
            let to = longest_module(&modules, &target);
            deps.push(Dependency { from: module.clone(), to, shown });
        }
    }

    let mut problems = Vec::new();
    let mut checked = Vec::new();
    // The root and every module that has submodules.
    let parents: BTreeSet<ModPath> =
        modules.iter().filter(|m| !m.is_empty()).map(|m| m[..m.len() - 1].to_vec()).collect();
    for parent in &parents {
        let graph = sibling_graph(parent, &modules, &deps);
        let name = if parent.is_empty() { "crate".to_string() } else { parent.join("::") };
        for component in strongly_connected(&graph).iter().filter(|c| c.len() > 1) {
            let cycle = a_cycle(&graph, component);
            let evidence: Vec<&str> = cycle.windows(2).map(|e| graph[&e[0]][&e[1]].as_str()).collect();
            let among = component.iter().cloned().collect::<Vec<_>>().join(", ");
            problems.push(format!(
                "cycle in {name}: {} (one of the cycles among {among})\n  {}",
                cycle.join(" → "),
                evidence.join("\n  ")
            ));
        }
        checked.push(format!("{name} ({} modules)", graph.len()));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    println!("module graph acyclic: {}", checked.join(", "));
}

/// Every `.rs` file under `src/` but `src/bin/`, with the module it defines.
fn source_files(src: &Path) -> Vec<(ModPath, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path != src.join("bin") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: ModPath = relative.iter().map(|s| s.to_str().unwrap().to_string()).collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                module.pop();
            }
            out.push((module, path));
        }
    }
    out.sort();
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

/// Identifiers and punctuation; comments, strings, characters and numbers are dropped.
fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            i = skip_string(&chars, i + 1);
        } else if (c == 'r' || c == 'b') && raw_string_start(&chars, i).is_some() {
            let (hashes, quote) = raw_string_start(&chars, i).unwrap();
            i = quote + 1;
            loop {
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).filter(|&&h| h == '#').count() == hashes {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
        } else if c == 'b' && next == Some('"') {
            i = skip_string(&chars, i + 2);
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() {
            while i < chars.len()
                && (is_ident(chars[i]) || chars[i] == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
            {
                i += 1;
            }
        } else if is_ident(c) || c == '$' {
            let start = i;
            i += 1;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            tokens.push(Token::Ident(word.trim_start_matches('$').to_string()));
        } else if c == ':' && next == Some(':') {
            tokens.push(Token::PathSep);
            i += 2;
        } else {
            tokens.push(Token::Punct(c));
            i += 1;
        }
    }
    tokens
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The index after a string literal whose contents start at `i`.
fn skip_string(chars: &[char], mut i: usize) -> usize {
    while chars[i] != '"' {
        if chars[i] == '\\' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// For `r"`, `r#"`, `br#"` at `i` (not inside an identifier): the number of `#` and the index of
/// the opening quote.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && is_ident(chars[i - 1]) {
        return None;
    }
    let mut j = i;
    if chars[j] == 'b' {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some((hashes, j + hashes))
}

/// The tokens without the items marked `#[cfg(test)]` (with their other attributes and bodies).
fn without_test_items(tokens: &[Token]) -> Vec<Token> {
    let cfg_test: Vec<Token> = ["#", "[", "cfg", "(", "test", ")", "]"]
        .iter()
        .map(|s| {
            if s.chars().all(is_ident) { Token::Ident(s.to_string()) } else { Token::Punct(s.chars().next().unwrap()) }
        })
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if !tokens[i..].starts_with(&cfg_test) {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        i += cfg_test.len();
        // The item ends at its first `;` outside brackets, or with the closing brace of its body.
        let mut depth = 0usize;
        while i < tokens.len() {
            match &tokens[i] {
                Token::Punct('{' | '(' | '[') => depth += 1,
                Token::Punct('}' | ')' | ']') => {
                    depth -= 1;
                    if depth == 0 && tokens[i] == Token::Punct('}') {
                        i += 1;
                        break;
                    }
                }
                Token::Punct(';') if depth == 0 => {
                    i += 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
    }
    out
}

/// The absolute paths named by `crate::`, `super::` and `self::` paths in the tokens of `module`.
/// `pub(in …)` visibilities are not dependencies and are skipped.
fn paths(tokens: &[Token], module: &ModPath) -> Vec<ModPath> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let after_in = i > 0 && tokens[i - 1] == Token::Ident("in".into());
        let start = match &tokens[i] {
            Token::Ident(w) if tokens.get(i + 1) == Some(&Token::PathSep) && !after_in => match w.as_str() {
                "crate" => Some(Vec::new()),
                "self" => Some(module.clone()),
                "super" => Some(module[..module.len().saturating_sub(1)].to_vec()),
                _ => None,
            },
            _ => None,
        };
        // A path that does not start here is skipped whole (`a::b::self`, `x::crate`).
        let continues = i > 0 && tokens[i - 1] == Token::PathSep;
        match start {
            Some(prefix) if !continues => i = use_tree(tokens, i + 2, prefix, &mut out),
            _ => i += 1,
        }
    }
    out
}

/// Reads a path or `use` tree starting at `i` after `prefix::`, pushing each full path; returns
/// the index after it.
fn use_tree(tokens: &[Token], mut i: usize, mut prefix: ModPath, out: &mut Vec<ModPath>) -> usize {
    loop {
        match tokens.get(i) {
            Some(Token::Ident(w)) if w == "super" => {
                prefix.pop();
            }
            Some(Token::Ident(w)) if w == "self" => {}
            Some(Token::Ident(w)) => prefix.push(w.clone()),
            Some(Token::Punct('{')) => {
                i += 1;
                loop {
                    match tokens.get(i) {
                        Some(Token::Punct('}')) | None => return i + 1,
                        Some(Token::Punct(',')) => i += 1,
                        Some(Token::Ident(w)) if w == "as" => i += 2,
                        Some(Token::Punct('*')) => {
                            out.push(prefix.clone());
                            i += 1;
                        }
                        Some(_) => i = use_tree(tokens, i, prefix.clone(), out),
                    }
                }
            }
            _ => {
                out.push(prefix);
                return i;
            }
        }
        i += 1;
        if tokens.get(i) != Some(&Token::PathSep) {
            out.push(prefix);
            return i;
        }
        i += 1;
    }
}

/// The longest prefix of `path` that is a module of the crate.
fn longest_module(modules: &BTreeSet<ModPath>, path: &ModPath) -> ModPath {
    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains(p)).unwrap_or_default()
}

/// The graph between the children of `parent`: child → the siblings its code (in any file under
/// it) names. `parent`'s own file is not a node.
fn sibling_graph(parent: &ModPath, modules: &BTreeSet<ModPath>, deps: &[Dependency]) -> Graph {
    let child = |m: &ModPath| (m.len() > parent.len() && m.starts_with(parent)).then(|| m[parent.len()].clone());
    let mut graph: Graph = modules.iter().filter_map(child).map(|c| (c, BTreeMap::new())).collect();
    for dep in deps {
        if let (Some(a), Some(b)) = (child(&dep.from), child(&dep.to))
            && a != b
        {
            graph.get_mut(&a).unwrap().entry(b).or_insert_with(|| dep.shown.clone());
        }
    }
    graph
}

/// The strongly connected components of `graph` (Tarjan's algorithm).
fn strongly_connected(graph: &Graph) -> Vec<BTreeSet<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        components: Vec<BTreeSet<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph[v].keys() {
            if !s.index.contains_key(w.as_str()) {
                visit(s, w);
                let low = s.low[v].min(s.low[w.as_str()]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w.as_str()) {
                let low = s.low[v].min(s.index[w.as_str()]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            s.components.push(component);
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.components
}

/// A shortest cycle through the first module of `component`, as `a → b → a`.
fn a_cycle(graph: &Graph, component: &BTreeSet<String>) -> Vec<String> {
    let start = component.first().unwrap();
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start.as_str()]);
    while let Some(v) = queue.pop_front() {
        for w in graph[v].keys() {
            if w == start {
                let mut cycle = vec![start.clone(), v.to_string()];
                let mut at = v;
                while at != start {
                    at = came_from[at];
                    cycle.push(at.to_string());
                }
                cycle.reverse();
                return cycle;
            }
            if component.contains(w) && !came_from.contains_key(w.as_str()) && w != start {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    unreachable!("a strongly connected component with more than one module has a cycle")
}

#[test]
fn reads_paths_in_use_trees_and_inline_but_not_in_tests_comments_or_strings() {
    let text = r##"
        use crate::a::{self, b::{C, d}, e as f};
        use super::g::*;
        pub(in crate::h) fn x() -> crate::i::J<'static> {
            let c = 'c';
            // crate::k::l
            /* crate::m /* nested */ crate::n */
            let s = "crate::o \" crate::p";
            let r = r#"crate::q"#;
            self::r::s(crate::t::u::<V>(), $crate::w!())
        }
        #[cfg(test)]
        mod tests {
            use crate::y;
        }
        #[cfg(test)]
        use crate::z;
    "##;
    let module: ModPath = vec!["m".into(), "n".into()];
    let found: BTreeSet<String> =
        paths(&without_test_items(&tokenize(text)), &module).iter().map(|p| p.join("::")).collect();
    let expected = ["a", "a::b::C", "a::b::d", "a::e", "m::g", "i::J", "m::n::r::s", "t::u", "w"];
    assert_eq!(found, expected.iter().map(|p| p.to_string()).collect::<BTreeSet<_>>());
}
