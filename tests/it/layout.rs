//! The architecture as a test: no import circles between the modules of `src/`, and a provider
//! is its folder plus its two lines in the registry (`mod` and the `registry!` list).

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

/// A file's code: without its tests (by convention at the end, after `#[cfg(test)]`) and
/// without comments.
fn code(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let without_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
    without_tests
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default().to_owned())
        .collect()
}

/// The top-level module a file belongs to (`src/mqtt/sink/account.rs` → `mqtt`).
fn top_module(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_owned()
}

#[test]
fn no_import_circles_between_modules() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = top_module(file);
        if from == "lib" || from == "main" {
            continue;
        }
        for line in code(file) {
            for (at, _) in line.match_indices("crate::") {
                let to: String = line[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !to.is_empty() && to != from {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    assert!(
        edges.contains_key("bridge") && edges["bridge"].contains("sink"),
        "the scan works: {edges:?}"
    );

    // Depth-first search; a module met again while still on the path closes a circle.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if !done.insert(node.to_owned()) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        let circle = visit(node, &edges, &mut Vec::new(), &mut done);
        assert!(circle.is_none(), "import circle: {}", circle.unwrap().join(" → "));
    }
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
        assert!(
            registration.contains("pub const REGISTRATION"),
            "{kind} registers itself"
        );
        if kind == "sample" {
            // The demo runs on the sample data by design; a new provider does not touch it.
            continue;
        }
        let mut outside = Vec::new();
        for file in files.iter().filter(|f| !f.starts_with(&folder)) {
            for (number, line) in code(file).iter().enumerate() {
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
