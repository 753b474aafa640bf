//! Checks of the host's shape, run with xtask's unit tests (so by `cargo xtask test`): no
//! two files of `host/src` import each other, and no module imports from a layer above its
//! own (`LAYERS`, the order `ARCHITECTURE.md` states). A file is a module (`a/b.rs` or `a/b/mod.rs`
//! is `a::b`); an import is a `use` of `crate::`, `super::` or `self::` paths, resolved to
//! the deepest module file it names. A module's own children (declared with `mod`) and
//! its tests are not imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of the source tree `src` with its text (test modules cut off).
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut name: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if name
                .last()
                .is_some_and(|n| n == "mod" || n == "lib" || n == "main")
            {
                name.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let text = match text.find("#[cfg(test)]\nmod tests {") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            found.insert(name.join("::"), text);
        }
    }
    found
}

/// The paths a module's `use` items name, each as written (`super::x::Y`), with the items
/// of a brace group expanded one level (`super::{a, b::C}` gives `super::a`, `super::b::C`).
fn used_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for statement in text.split(';') {
        let Some(at) = statement.find("use ") else {
            continue;
        };
        let before = &statement[..at];
        if !(before.is_empty() || before.ends_with(char::is_whitespace)) {
            continue;
        }
        let path: String = statement[at + 4..]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if !["crate::", "super::", "self::"]
            .iter()
            .any(|p| path.starts_with(p))
        {
            continue;
        }
        match path.split_once("::{") {
            Some((base, group)) => {
                for item in group.trim_end_matches('}').split(',') {
                    let item = item.split("::{").next().unwrap_or_default();
                    if !item.is_empty() {
                        paths.push(format!("{base}::{item}"));
                    }
                }
            }
            None => paths.push(path),
        }
    }
    paths
}

/// The module file a path used in `module` names: the deepest module its segments reach.
fn resolve(module: &str, path: &str, known: &BTreeMap<String, String>) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").collect()
    };
    match segments.first() {
        Some(&"crate") => {
            base.clear();
            segments.remove(0);
        }
        Some(&"self") => {
            segments.remove(0);
        }
        _ => {
            while segments.first() == Some(&"super") {
                base.pop();
                segments.remove(0);
            }
        }
    }
    let mut deepest = None;
    for i in 0..=segments.len() {
        let candidate = base
            .iter()
            .chain(&segments[..i])
            .copied()
            .collect::<Vec<_>>()
            .join("::");
        if known.contains_key(&candidate) {
            deepest = Some(candidate);
        }
    }
    deepest
}

/// The pairs of modules of `src` that import each other.
pub fn circles(src: &Path) -> Vec<(String, String)> {
    let known = modules(src);
    let mut edges = BTreeSet::new();
    for (module, text) in &known {
        for path in used_paths(text) {
            let Some(target) = resolve(module, &path, &known) else {
                continue;
            };
            // The crate root, a module itself, and a child using its parent are not
            // imports between files in the sense that matters here.
            let parent_of_module = module.starts_with(&format!("{target}::"));
            if target.is_empty() || target == *module || parent_of_module {
                continue;
            }
            edges.insert((module.clone(), target));
        }
    }
    edges
        .iter()
        .filter(|(a, b)| a < b && edges.contains(&(b.clone(), a.clone())))
        .cloned()
        .collect()
}

/// The layers of `host/src`, top first: a module may use its own layer and those below it,
/// never one above (`ARCHITECTURE.md`, "Bird's eye view"). The binary (`main`, `cli`,
/// `tui`) is on top; `model` and the small shared modules at the bottom.
const LAYERS: &[&[&str]] = &[
    &["main", "cli", "string_copy"],
    &["tui"],
    &["app", "serve", "client", "batch", "replay", "scaffold"],
    &["plugin", "monitor", "script_watch"],
    &[
        "alerting",
        "logs",
        "executor",
        "registry",
        "schedules",
        "expectations",
    ],
    &["model", "config", "safe_fs", "suggest", "ids", "memory", ""],
];

fn layer(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

/// Every use of a module of a layer above the user's, as (user, used): any path naming a
/// top-level module (`crate::x`, or `metaclaude::x` from the binary), in `use` items or
/// inline, outside tests. A top-level module missing from `LAYERS` is reported as used by
/// `LAYERS` itself, so that a new folder is placed on purpose.
pub fn upward_imports(src: &Path) -> Vec<(String, String)> {
    let mut found = BTreeSet::new();
    for (module, text) in modules(src) {
        let top = module.split("::").next().unwrap_or_default().to_string();
        let Some(own) = layer(&top) else {
            found.insert(("LAYERS".to_string(), top));
            continue;
        };
        for prefix in ["crate::", "metaclaude::"] {
            for (at, _) in text.match_indices(prefix) {
                if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let used: String = text[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if let Some(theirs) = layer(&used) {
                    if theirs < own {
                        found.insert((module.clone(), used));
                    }
                }
            }
        }
    }
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_files_of_the_host_import_each_other() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src");
        assert!(modules(&src).len() > 50, "host/src not found at {src:?}");
        let found = circles(&src);
        assert!(
            found.is_empty(),
            "files of host/src that import each other (move what both need into a module of its own, or the one-way part into the other): {found:?}"
        );
    }

    #[test]
    fn no_module_of_the_host_uses_a_layer_above_its_own() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src");
        let found = upward_imports(&src);
        assert!(
            found.is_empty(),
            "modules of host/src that use a layer above their own (see LAYERS and ARCHITECTURE.md; move what both need down): {found:?}"
        );
    }

    #[test]
    fn an_upward_use_is_found() {
        let dir = std::env::temp_dir().join(format!("xtask-layers-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("executor")).unwrap();
        std::fs::write(dir.join("lib.rs"), "mod executor;\nmod model;\n").unwrap();
        std::fs::write(
            dir.join("executor/mod.rs"),
            "use crate::model::X;\nfn f() { crate::plugin::g(); }\n",
        )
        .unwrap();
        std::fs::write(dir.join("model.rs"), "// my_crate::plugin is not ours\n").unwrap();
        assert_eq!(
            upward_imports(&dir),
            [("executor".to_string(), "plugin".to_string())]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_circle_is_found_and_a_child_using_its_parent_is_not_one() {
        let dir = std::env::temp_dir().join(format!("xtask-imports-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
        std::fs::write(dir.join("a/mod.rs"), "mod c;\nuse crate::b::Thing;\n").unwrap();
        std::fs::write(dir.join("a/c.rs"), "use super::Other;\n").unwrap();
        std::fs::write(
            dir.join("b.rs"),
            "use crate::{a::{self, Other}};\npub struct Thing;\n",
        )
        .unwrap();
        assert_eq!(circles(&dir), [("a".to_string(), "b".to_string())]);
        std::fs::write(dir.join("b.rs"), "pub struct Thing;\n").unwrap();
        assert!(circles(&dir).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
