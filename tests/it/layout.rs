//! The architecture as a test. Every file of `src/` is read whole (its tests too), and every path
//! it names (`crate::`, `super::`, `self::`, a child module, in `use` lines and in code) becomes an
//! edge between modules, at the granularity of files: `mqtt::sink::account` → `mqtt::topics`.
//! A re-export (`pub use`) is followed to where the item is defined, so a module's facade is not
//! mistaken for a dependency. On that graph:
//!
//! - there is no import circle anywhere in `src/`;
//! - the sinks (`mqtt`, `statistics`) know no provider, no Energi Data Service and no `http`;
//! - the bridge (the worker) knows neither `http` nor MQTT;
//! - `http` knows no domain type (nothing of the crate but the backoff policy);
//! - the provider kit (`providers::kit`) is used by providers only;
//! - the uploads (`upload`: Home Assistant / MQTT → an import API, the second direction) know of
//!   the providers only their import contract (`providers::upload`), and neither `http` nor a
//!   sink; the import client that speaks an API lives in its provider's folder, with the kit;
//!
//! and a provider is its folder plus its two lines in the registry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use meter2mqtt::providers::KINDS;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's code without comments (doc comments included).
fn code(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default().to_owned())
        .collect()
}

/// A module's path from the crate root: `src/mqtt/sink/mod.rs` → `mqtt::sink`, `src/lib.rs` → ``.
type Module = Vec<String>;

fn module_of(path: &Path) -> Module {
    let rel = path.strip_prefix(src()).unwrap();
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().unwrap();
    let stem = file.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib") {
        parts.push(stem.to_owned());
    }
    parts
}

fn show(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// One imported name of a `use` line: the path it names (from the crate root, before any
/// re-export is followed) and the name it is known by here (`None` for a glob).
#[derive(Debug, Clone)]
struct Import {
    path: Vec<String>,
    name: Option<String>,
}

/// Splits a `use` tree into tokens: names, `::`, `{`, `}`, `,`, `*`.
fn tokens(tree: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = tree.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&c) = chars.peek().filter(|c| c.is_alphanumeric() || **c == '_') {
                word.push(c);
                chars.next();
            }
            out.push(word);
        } else if c == ':' {
            chars.next();
            chars.next();
            out.push("::".into());
        } else {
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
            chars.next();
        }
    }
    out
}

/// Parses a `use` tree (`super::{dto::{self, Charges}, KIND}`) into its leaf paths.
fn use_tree(tokens: &[String], at: &mut usize, prefix: Vec<String>, out: &mut Vec<(Vec<String>, Option<String>)>) {
    let mut path = prefix;
    loop {
        match tokens.get(*at).map(String::as_str) {
            Some("{") => {
                *at += 1;
                while tokens.get(*at).is_some_and(|t| t != "}") {
                    use_tree(tokens, at, path.clone(), out);
                    if tokens.get(*at).is_some_and(|t| t == ",") {
                        *at += 1;
                    }
                }
                *at += 1;
                return;
            }
            Some("*") => {
                *at += 1;
                out.push((path, None));
                return;
            }
            Some(word) if word != "," && word != "}" => {
                *at += 1;
                if word == "self" && !path.is_empty() {
                    let name = path.last().cloned();
                    let alias = alias(tokens, at);
                    out.push((path, alias.or(name)));
                    return;
                }
                path.push(word.to_owned());
                if tokens.get(*at).is_some_and(|t| t == "::") {
                    *at += 1;
                    continue;
                }
                let name = alias(tokens, at).or_else(|| path.last().cloned());
                out.push((path, name));
                return;
            }
            _ => return,
        }
    }
}

fn alias(tokens: &[String], at: &mut usize) -> Option<String> {
    if tokens.get(*at).is_some_and(|t| t == "as") {
        *at += 2;
        return tokens.get(*at - 1).cloned();
    }
    None
}

/// What one file says: its `use` lines (split into re-exports and the rest) and its code, each
/// piece with the module it sits in (an inline `mod tests { .. }` is a module of its own for
/// `super::`, but its edges count for the file).
struct File {
    module: Module,
    reexports: Vec<Import>,
    imports: Vec<Import>,
    /// The code outside `use` lines, per (inline) module.
    rest: Vec<(Module, String)>,
}

impl File {
    /// Whether the file's own code defines an item named `name`.
    fn defines(&self, name: &str) -> bool {
        let kinds = ["struct", "enum", "trait", "type", "fn", "const", "static", "mod"];
        self.rest.iter().any(|(_, rest)| {
            let words: Vec<&str> = rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .collect();
            words.windows(2).any(|pair| kinds.contains(&pair[0]) && pair[1] == name)
        })
    }
}

/// Cuts inline modules (`mod name { .. }`) out of `text`: the text without them, and each with
/// its name. Braces in string literals are not expected to be unbalanced.
fn inline_modules(text: &str) -> (String, Vec<(String, String)>) {
    let mut outer = String::new();
    let mut inner = Vec::new();
    let mut remaining = text;
    while let Some(at) = find_inline_mod(remaining) {
        outer.push_str(&remaining[..at.0]);
        let body_start = at.2;
        let mut depth = 0usize;
        let mut end = remaining.len();
        for (i, c) in remaining[body_start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = body_start + i;
                        break;
                    }
                }
                _ => {}
            }
        }
        inner.push((at.1, remaining[body_start + 1..end].to_owned()));
        remaining = &remaining[(end + 1).min(remaining.len())..];
    }
    outer.push_str(remaining);
    (outer, inner)
}

/// `mod name {`: where it starts, the name, where its `{` is.
fn find_inline_mod(text: &str) -> Option<(usize, String, usize)> {
    let mut from = 0;
    while let Some(found) = text[from..].find("mod ") {
        let at = from + found;
        from = at + 4;
        if at > 0 && text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let after = &text[at + 4..];
        let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let rest = after[name.len()..].trim_start();
        if !name.is_empty() && rest.starts_with('{') {
            let brace = text.len() - rest.len();
            return Some((at, name, brace));
        }
    }
    None
}

/// Makes a path that starts with `crate`, `super`, `self` or a child module of `here` absolute;
/// `None` for anything else (a crate from crates.io, a local name).
fn absolute(here: &[String], path: &[String], modules: &BTreeSet<Module>) -> Option<Vec<String>> {
    let mut out: Vec<String> = here.to_vec();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => {
            out.clear();
            rest = &path[1..];
        }
        Some("self") => rest = &path[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                out.pop()?;
                rest = &rest[1..];
            }
        }
        Some(first) => {
            let mut child = here.to_vec();
            child.push(first.to_owned());
            if !modules.contains(&child) {
                return None;
            }
        }
        None => return None,
    }
    out.extend(rest.iter().cloned());
    Some(out)
}

fn read(path: &Path, modules: &BTreeSet<Module>) -> File {
    let module = module_of(path);
    let mut file = File {
        module: module.clone(),
        reexports: Vec::new(),
        imports: Vec::new(),
        rest: Vec::new(),
    };
    read_module(&code(path).join("\n"), module, modules, &mut file);
    file
}

fn read_module(text: &str, here: Module, modules: &BTreeSet<Module>, file: &mut File) {
    let (text, inline) = inline_modules(text);
    for (name, body) in inline {
        let mut inner = here.clone();
        inner.push(name);
        read_module(&body, inner, modules, file);
    }
    let top = here == file.module;
    let mut rest = String::new();
    let mut remaining = text.as_str();
    // `use` lines: `use`, `pub use` or `pub(crate) use`, at the start of a statement.
    while let Some(at) = find_use(remaining) {
        rest.push_str(&remaining[..at.start]);
        let end = remaining[at.tree..]
            .find(';')
            .map(|e| at.tree + e)
            .unwrap_or(remaining.len());
        let mut leaves = Vec::new();
        use_tree(&tokens(&remaining[at.tree..end]), &mut 0, Vec::new(), &mut leaves);
        for (leaf, name) in leaves {
            if let Some(path) = absolute(&here, &leaf, modules) {
                let import = Import { path, name };
                // An inline module's re-exports are not the file's facade.
                if at.public && top {
                    file.reexports.push(import);
                } else {
                    file.imports.push(import);
                }
            }
        }
        remaining = &remaining[(end + 1).min(remaining.len())..];
    }
    rest.push_str(remaining);
    file.rest.push((here, rest));
}

struct UseAt {
    start: usize,
    tree: usize,
    public: bool,
}

fn find_use(text: &str) -> Option<UseAt> {
    let mut from = 0;
    while let Some(found) = text[from..].find("use ") {
        let at = from + found;
        from = at + 4;
        let before = text[..at].trim_end();
        let (start, public) = if let Some(stripped) = before.strip_suffix("pub") {
            (stripped.len(), true)
        } else if let Some(stripped) = before.strip_suffix("pub(crate)") {
            (stripped.len(), true)
        } else if let Some(stripped) = before.strip_suffix("pub(super)") {
            (stripped.len(), true)
        } else {
            (before.len(), false)
        };
        // A statement starts after `;`, `{`, `}`, an attribute, or at the top of the file.
        let statement = text[..start].trim_end();
        if statement.is_empty() || statement.ends_with([';', '{', '}', ']']) {
            return Some(UseAt {
                start,
                tree: at + 4,
                public,
            });
        }
    }
    None
}

/// Paths named in code (not in `use` lines) that start with `crate`, `super`, `self` or a
/// child module: `crate::model::Meter::new` → [crate, model, Meter, new].
fn code_paths(rest: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i;
        if bytes[i].is_alphabetic() || bytes[i] == '_' {
            let prev = if word_start > 0 { bytes[word_start - 1] } else { ' ' };
            let mut path = Vec::new();
            let mut j = i;
            loop {
                let s = j;
                while j < bytes.len() && (bytes[j].is_alphanumeric() || bytes[j] == '_') {
                    j += 1;
                }
                path.push(bytes[s..j].iter().collect::<String>());
                if j + 2 < bytes.len()
                    && bytes[j] == ':'
                    && bytes[j + 1] == ':'
                    && (bytes[j + 2].is_alphabetic() || bytes[j + 2] == '_')
                {
                    j += 2;
                } else {
                    break;
                }
            }
            // A path's start, not the middle of one (`x::y` after `::`) nor a `$crate`.
            if path.len() > 1 && prev != ':' && prev != '$' && !(prev.is_alphanumeric() || prev == '_') {
                out.push(path);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

struct Crate {
    modules: BTreeSet<Module>,
    files: BTreeMap<Module, File>,
}

impl Crate {
    fn read() -> Crate {
        let mut paths = Vec::new();
        rust_files(&src(), &mut paths);
        paths.retain(|p| p.file_name().is_some_and(|n| n != "main.rs"));
        let modules: BTreeSet<Module> = paths.iter().map(|p| module_of(p)).collect();
        let files = paths
            .iter()
            .map(|p| {
                let file = read(p, &modules);
                (file.module.clone(), file)
            })
            .collect();
        Crate { modules, files }
    }

    /// The module that defines what `path` names, following modules and re-exports.
    fn target(&self, path: &[String], depth: usize) -> Module {
        let mut module: Module = Vec::new();
        for (at, segment) in path.iter().enumerate() {
            let mut child = module.clone();
            child.push(segment.clone());
            if self.modules.contains(&child) {
                module = child;
                continue;
            }
            // An item of `module`: defined there, or brought in by one of its `use` lines.
            let Some(file) = self.files.get(&module) else {
                return module;
            };
            let imports = || file.reexports.iter().chain(&file.imports);
            let via = imports()
                .find(|i| i.name.as_deref() == Some(segment.as_str()))
                .or_else(|| {
                    // A glob (`pub use types::*`): the module it names, if that defines the item.
                    imports().find(|i| i.name.is_none() && self.files.get(&i.path).is_some_and(|f| f.defines(segment)))
                });
            return match via {
                Some(import) if depth < 16 => {
                    let mut next = import.path.clone();
                    next.extend(path[at + 1..].iter().cloned());
                    self.target(&next, depth + 1)
                }
                _ => module,
            };
        }
        module
    }

    /// Module → the modules it uses.
    fn edges(&self) -> BTreeMap<Module, BTreeSet<Module>> {
        self.explained()
            .into_iter()
            .map(|(from, to)| (from, to.into_keys().collect()))
            .collect()
    }

    /// Module → the modules it uses, each with a path that says so.
    fn explained(&self) -> BTreeMap<Module, BTreeMap<Module, String>> {
        let mut edges: BTreeMap<Module, BTreeMap<Module, String>> = BTreeMap::new();
        for file in self.files.values() {
            let here = &file.module;
            let mut named: Vec<Vec<String>> = file.imports.iter().map(|i| i.path.clone()).collect();
            // A re-exported name that the module's own code uses is a dependency too.
            let words: BTreeSet<&str> = file
                .rest
                .iter()
                .flat_map(|(_, rest)| rest.split(|c: char| !(c.is_alphanumeric() || c == '_')))
                .collect();
            for export in &file.reexports {
                if export.name.as_deref().is_some_and(|n| words.contains(n)) {
                    named.push(export.path.clone());
                }
            }
            for (inner, rest) in &file.rest {
                for path in code_paths(rest) {
                    if let Some(path) = absolute(inner, &path, &self.modules) {
                        named.push(path);
                    }
                }
            }
            for path in named {
                let to = self.target(&path, 0);
                if &to != here {
                    edges
                        .entry(here.clone())
                        .or_default()
                        .entry(to)
                        .or_insert(path.join("::"));
                }
            }
        }
        edges
    }
}

/// Whether `module` is `root` or inside it; `""` is the whole crate.
fn under(module: &[String], root: &str) -> bool {
    if root.is_empty() {
        return true;
    }
    let root: Vec<&str> = root.split("::").collect();
    module.len() >= root.len() && module.iter().zip(&root).all(|(a, b)| a == b)
}

/// Every edge from a module under one of `from` to a module under one of `to`.
fn crossings(edges: &BTreeMap<Module, BTreeSet<Module>>, from: &[&str], to: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (source, targets) in edges {
        if !from.iter().any(|f| under(source, f)) {
            continue;
        }
        for target in targets {
            if to.iter().any(|t| under(target, t)) {
                out.push(format!("{} → {}", show(source), show(target)));
            }
        }
    }
    out
}

#[test]
fn the_scan_sees_use_lines_super_edges_reexports_and_tests() {
    let krate = Crate::read();
    let edges = krate.edges();
    let has = |from: &str, to: &str| {
        let from: Module = from.split("::").map(str::to_owned).collect();
        let to: Module = to.split("::").map(str::to_owned).collect();
        edges.get(&from).is_some_and(|t| t.contains(&to))
    };
    // `use crate::sink::{...}` in the worker.
    assert!(has("bridge::worker", "sink"), "{edges:#?}");
    // `use super::ranges::{...}`, a sibling through `super::`.
    assert!(has("bridge::worker", "bridge::ranges"), "{edges:#?}");
    // `crate::providers::ProviderError` is followed through the re-export to where it is defined.
    assert!(has("bridge::worker", "providers::contract"), "{edges:#?}");
    // A glob re-export (`pub use types::*`) is followed to the module that defines the item.
    assert!(has("config::validate_rules", "config::types"), "{edges:#?}");
    // A separate test file's `use super::*`.
    assert!(has("energidataservice::tests", "energidataservice"), "{edges:#?}");
    // Re-exports are followed: `crate::mqtt::Topics` is `mqtt::topics`.
    assert!(has("cli::wiring", "mqtt::topics"), "{edges:#?}");
    // A path in code, not in a `use` line.
    assert!(has("cli", "http"), "{edges:#?}");
}

#[test]
fn no_import_circles_anywhere() {
    let krate = Crate::read();
    let explained = krate.explained();
    let edges = krate.edges();
    // Depth-first search; a module met again while still on the path closes a circle.
    fn visit(
        node: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        path: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
        circles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle: Vec<String> = path[at..].iter().map(|m| show(m)).collect();
            circle.push(show(node));
            circles.push(circle.join(" → "));
            return;
        }
        if !done.insert(node.clone()) {
            return;
        }
        path.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, path, done, circles);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    let mut circles = Vec::new();
    for node in edges.keys() {
        visit(node, &edges, &mut Vec::new(), &mut done, &mut circles);
    }
    let why = |circle: &String| {
        let hops: Vec<&str> = circle.split(" → ").collect();
        let parts: Vec<String> = hops
            .windows(2)
            .map(|pair| {
                let module = |s: &str| -> Module {
                    if s == "crate" {
                        Vec::new()
                    } else {
                        s.split("::").map(str::to_owned).collect()
                    }
                };
                let path = explained
                    .get(&module(pair[0]))
                    .and_then(|to| to.get(&module(pair[1])))
                    .cloned()
                    .unwrap_or_default();
                format!("{} → {} ({path})", pair[0], pair[1])
            })
            .collect();
        parts.join(", ")
    };
    let circles: Vec<String> = circles.iter().map(why).collect();
    assert!(circles.is_empty(), "import circles:\n{}", circles.join("\n"));
}

#[test]
fn sinks_know_no_provider_and_no_http() {
    let edges = Crate::read().edges();
    let found = crossings(
        &edges,
        &["mqtt", "statistics"],
        &["providers", "energidataservice", "http"],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_worker_knows_neither_http_nor_mqtt() {
    let edges = Crate::read().edges();
    let found = crossings(&edges, &["bridge"], &["http", "mqtt"]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn http_knows_no_domain_type() {
    let krate = Crate::read();
    let edges = krate.edges();
    let allowed = ["http", "backoff_policy"];
    let found: Vec<String> = crossings(&edges, &["http"], &[""])
        .into_iter()
        .filter(|edge| {
            let target = edge.split(" → ").nth(1).unwrap_or_default();
            !allowed
                .iter()
                .any(|a| target == *a || target.starts_with(&format!("{a}::")))
        })
        .collect();
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_provider_kit_is_used_by_providers_only() {
    let edges = Crate::read().edges();
    let users: Vec<String> = crossings(&edges, &[""], &["providers::kit"])
        .into_iter()
        .filter(|edge| {
            let source = edge.split(" → ").next().unwrap_or_default();
            let source: Vec<String> = source.split("::").map(str::to_owned).collect();
            !under(&source, "providers")
        })
        .collect();
    assert!(users.is_empty(), "{users:#?}");
}

#[test]
fn the_uploads_know_only_the_import_contract() {
    let edges = Crate::read().edges();
    let found: Vec<String> = crossings(
        &edges,
        &["upload"],
        &["providers", "http", "energidataservice", "bridge", "statistics", "sink"],
    )
    .into_iter()
    .filter(|edge| edge.split(" → ").nth(1) != Some("providers::upload"))
    .collect();
    assert!(found.is_empty(), "{found:#?}");
    let users = crossings(&edges, &["upload"], &["providers::upload"]);
    assert!(!users.is_empty(), "the scan sees the uploads: {edges:#?}");
}

#[test]
fn a_provider_is_its_folder_and_two_registry_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let registry = src().join("providers").join("mod.rs");
    for kind in KINDS.iter().map(|k| k.kind()) {
        let folder = src().join("providers").join(kind);
        assert!(folder.join("mod.rs").exists(), "{kind} is a folder");
        let registration = std::fs::read_to_string(folder.join("mod.rs")).unwrap();
        assert!(registration.contains("const REGISTRATION"), "{kind} registers itself");
        if kind == "sample" {
            // The demo runs on the sample data by design; a new provider does not touch it.
            continue;
        }
        let mut outside = Vec::new();
        for file in files.iter().filter(|f| !f.starts_with(&folder)) {
            // Without its tests (by convention at the end, after `#[cfg(test)]`): a test
            // elsewhere may name a provider.
            let text = std::fs::read_to_string(file).unwrap();
            let without_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (number, line) in without_tests.lines().enumerate() {
                let line = line.split("//").next().unwrap_or_default();
                if line.to_ascii_lowercase().contains(kind) {
                    outside.push(format!("{}:{}: {}", file.display(), number + 1, line.trim()));
                }
            }
        }
        // Its `mod` line and its entry in the `registry!` list, both in providers/mod.rs.
        assert_eq!(outside.len(), 2, "{kind} outside its folder: {outside:#?}");
        assert!(
            outside
                .iter()
                .all(|line| line.starts_with(&format!("{}:", registry.display()))),
            "{outside:?}"
        );
        assert!(
            outside.iter().any(|line| line.ends_with(&format!("mod {kind};"))),
            "{outside:?}"
        );
    }
}
