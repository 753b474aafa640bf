//! `metaclaude plugins new`: a working, buildable plugin folder in Rust, Python,
//! JavaScript or C, with its manifest, for each plugin kind.
//!
//! The folder needs nothing from this repository: the WIT package this binary was built
//! with is embedded here and written into the folder's `wit/` (0.1.0 and 0.2.0 kept
//! beside it in `wit/deps/`, as in the repository), and each build uses only its
//! language's tools and packages from crates.io, npm or PyPI (and, for C, Debian's
//! clang-16). The notifier templates are the example notifiers of `examples/plugins/`,
//! which the end-to-end tests see deliver.
//!
//! Every file written comes from a file: the templates in `host/templates/` (by language, a
//! file per plugin kind, and the manifest, `Cargo.toml`, `build.mjs` and `package.json`
//! with `{{name}}`-style fields that `fill` replaces), the example notifiers and the WIT
//! package, all embedded with `include_str!`.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::plugin::manifest::PluginKind;

/// The WIT package plugins are built against, as this binary knows it.
const WIT_MONITOR: &str = include_str!("../../../wit/monitor.wit");
/// The previous versions, kept unchanged.
const WIT_MONITOR_0_1_0: &str = include_str!("../../../wit/deps/monitor-0.1.0/monitor.wit");
const WIT_MONITOR_0_2_0: &str = include_str!("../../../wit/deps/monitor-0.2.0/monitor.wit");
const WIT_MONITOR_0_3_0: &str = include_str!("../../../wit/deps/monitor-0.3.0/monitor.wit");

/// The example notifiers, which are also the notifier templates.
const PYTHON_NOTIFIER: &str = include_str!("../../../examples/plugins/python-notifier/app.py");
const JS_NOTIFIER: &str = include_str!("../../../examples/plugins/js-notifier/notifier.js");
const C_NOTIFIER: &str = include_str!("../../../examples/plugins/c-notifier/notifier.c");
const C_SUPPORT_H: &str = include_str!("../../../examples/plugins/c-notifier/support.h");
const C_SUPPORT_C: &str = include_str!("../../../examples/plugins/c-notifier/support.c");
const C_BUILD: &str = include_str!("../../../examples/plugins/c-notifier/build.sh");
const C_ADAPTER_CARGO: &str =
    include_str!("../../../examples/plugins/c-notifier/adapter/Cargo.toml");
const C_ADAPTER_LOCK: &str =
    include_str!("../../../examples/plugins/c-notifier/adapter/Cargo.lock");
const C_ADAPTER_MAIN: &str =
    include_str!("../../../examples/plugins/c-notifier/adapter/src/main.rs");

/// The templates of `host/templates/`. Rust and C bind the file wit/monitor.wit, not the
/// folder: with 0.1.0 and 0.2.0 beside it in wit/deps, the generated names would carry the
/// version (`monitor0_3_0`).
const MANIFEST: &str = include_str!("../../templates/plugin.toml");
const RUST_CARGO: &str = include_str!("../../templates/rust/Cargo.toml");
const RUST_SINK: &str = include_str!("../../templates/rust/sink.rs");
const RUST_EXPORTER: &str = include_str!("../../templates/rust/exporter.rs");
const RUST_ALERT_RULE: &str = include_str!("../../templates/rust/alert_rule.rs");
const RUST_NOTIFIER: &str = include_str!("../../templates/rust/notifier.rs");
const PYTHON_SINK: &str = include_str!("../../templates/python/sink.py");
const PYTHON_EXPORTER: &str = include_str!("../../templates/python/exporter.py");
const PYTHON_ALERT_RULE: &str = include_str!("../../templates/python/alert_rule.py");
const JS_SINK: &str = include_str!("../../templates/js/sink.js");
const JS_EXPORTER: &str = include_str!("../../templates/js/exporter.js");
const JS_ALERT_RULE: &str = include_str!("../../templates/js/alert_rule.js");
const JS_BUILD: &str = include_str!("../../templates/js/build.mjs");
const JS_PACKAGE: &str = include_str!("../../templates/js/package.json");
const C_SINK: &str = include_str!("../../templates/c/sink.c");
const C_EXPORTER: &str = include_str!("../../templates/c/exporter.c");

/// The componentize-js release the JavaScript templates pin (as the example does).
const COMPONENTIZE_JS: &str = "0.23.0";
/// The componentize-py release the Python build command names (as `cargo xtask` pins).
const COMPONENTIZE_PY: &str = "0.25.1";

/// Why a plugin folder was not made.
#[derive(Debug, Error)]
pub enum ScaffoldError {
    /// `--lang` named no language with templates (the name given).
    #[error("unknown language `{0}` (expected rust, python, js or c)")]
    UnknownLanguage(String),
    /// `--kind` named no plugin kind (the name given).
    #[error("unknown kind `{0}` (expected sink, exporter, alert-rule or notifier)")]
    UnknownKind(String),
    /// The name is empty, starts with `-`, or has a character other than lower-case
    /// letters, digits and `-` (the name given).
    #[error("plugin name `{0}`: use lower-case letters, digits and `-` (e.g. slack-notifier)")]
    BadName(String),
    /// The folder to create is already there (its path); nothing was written.
    #[error("{} already exists: choose another name or remove it", .0.display())]
    Exists(PathBuf),
    /// The language has no template for the kind (C has no alert rule).
    #[error("--lang {lang} has templates for sink, exporter and notifier; write an alert rule in rust, python or js")]
    NoTemplate {
        /// The language asked for.
        lang: &'static str,
    },
    /// Creating a folder, writing a file or setting its mode failed; what was written
    /// before stays.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was being done: `create`, `write` or `set the mode of`.
        action: &'static str,
        /// The folder or file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// The version of the embedded WIT package (its `package metaclaude:monitor@X;` line):
/// what a new plugin's manifest declares.
pub fn wit_version() -> &'static str {
    WIT_MONITOR
        .lines()
        .find_map(|l| l.trim().strip_prefix("package metaclaude:monitor@"))
        .and_then(|v| v.strip_suffix(';'))
        .expect("wit/monitor.wit declares `package metaclaude:monitor@X;`")
}

/// The languages a plugin can be made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust with `wit-bindgen`, built by cargo for wasm32-wasip2 (`rust`).
    Rust,
    /// Python built with componentize-py (`python`, `py`).
    Python,
    /// JavaScript built with componentize-js (`js`, `javascript`).
    Js,
    /// C with `wit-bindgen c`, built by clang (`c`).
    C,
}

impl std::str::FromStr for Lang {
    type Err = ScaffoldError;
    fn from_str(s: &str) -> Result<Lang, ScaffoldError> {
        match s {
            "rust" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            "c" => Ok(Lang::C),
            other => Err(ScaffoldError::UnknownLanguage(other.to_string())),
        }
    }
}

/// A plugin kind as `plugins new` names it.
pub fn parse_kind(s: &str) -> Result<PluginKind, ScaffoldError> {
    match s {
        "sink" => Ok(PluginKind::Sink),
        "exporter" => Ok(PluginKind::Exporter),
        "alert-rule" => Ok(PluginKind::AlertRule),
        "notifier" => Ok(PluginKind::Notifier),
        other => Err(ScaffoldError::UnknownKind(other.to_string())),
    }
}

/// What was written and how to build it.
pub struct Scaffold {
    /// The new plugin folder.
    pub dir: PathBuf,
    /// Every file written, in the order written.
    pub files: Vec<PathBuf>,
    /// The command that builds the component, run from inside the folder.
    pub build: String,
}

/// The files of a new plugin (path in the folder, text), its component's path and the
/// command that builds it, from inside the folder.
struct Template {
    files: Vec<(&'static str, String)>,
    component: String,
    build: String,
}

/// `template` with each `{{key}}` of `fields` replaced by its value.
fn fill(template: &str, fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .fold(template.to_string(), |text, (key, value)| {
            text.replace(&format!("{{{{{key}}}}}"), value)
        })
}

/// Creates `<parent>/<name>/` for a plugin of `kind` in `lang`.
pub fn create(
    parent: &Path,
    name: &str,
    kind: PluginKind,
    lang: Lang,
) -> Result<Scaffold, ScaffoldError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || name.starts_with('-')
    {
        return Err(ScaffoldError::BadName(name.to_string()));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Io {
            action,
            path,
            source,
        }
    };
    let template = template(name, kind, lang)?;
    let manifest = manifest(name, kind, &template.component);
    let files = template.files.iter().map(|(f, t)| (*f, t.as_str())).chain([
        ("plugin.toml", manifest.as_str()),
        ("wit/monitor.wit", WIT_MONITOR),
        ("wit/deps/monitor-0.1.0/monitor.wit", WIT_MONITOR_0_1_0),
        ("wit/deps/monitor-0.2.0/monitor.wit", WIT_MONITOR_0_2_0),
        ("wit/deps/monitor-0.3.0/monitor.wit", WIT_MONITOR_0_3_0),
    ]);
    let mut written = Vec::new();
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(io("create", p))?;
        }
        std::fs::write(&path, text).map_err(io("write", &path))?;
        written.push(path);
    }
    // A plugin's source is the operator's like any other: the modes their umask gives,
    // not the host's private one (`safe_fs::share`).
    for path in &written {
        let folders = path.ancestors().skip(1).take_while(|a| a.starts_with(&dir));
        std::iter::once((path.as_path(), 0o666))
            .chain(folders.map(|a| (a, 0o777)))
            .try_for_each(|(p, mode)| crate::safe_fs::share(p, mode))
            .map_err(io("set the mode of", path))?;
    }
    Ok(Scaffold {
        dir,
        files: written,
        build: template.build,
    })
}

fn template(name: &str, kind: PluginKind, lang: Lang) -> Result<Template, ScaffoldError> {
    let crate_name = name.replace('-', "_");
    let world = kind.as_str();
    let version = wit_version();
    Ok(match lang {
        Lang::Rust => {
            let notifier_dependencies = if kind == PluginKind::Notifier {
                "# RFC 3339 timestamps in the alert JSON.\nchrono = { version = \"0.4\", default-features = false, features = [\"alloc\"] }\n"
            } else {
                ""
            };
            let source = match kind {
                PluginKind::Sink => RUST_SINK,
                PluginKind::Exporter => RUST_EXPORTER,
                PluginKind::AlertRule => RUST_ALERT_RULE,
                PluginKind::Notifier => RUST_NOTIFIER,
                PluginKind::Pusher => return Err(ScaffoldError::UnknownKind("pusher".into())),
            };
            Template {
                files: vec![
                    (
                        "Cargo.toml",
                        fill(
                            RUST_CARGO,
                            &[
                                ("name", name),
                                ("notifier_dependencies", notifier_dependencies),
                            ],
                        ),
                    ),
                    ("src/lib.rs", source.to_string()),
                    (".gitignore", "/target\n".into()),
                ],
                component: format!("target/wasm32-wasip2/release/{crate_name}.wasm"),
                build: "cargo build --release --target wasm32-wasip2".into(),
            }
        }
        Lang::Python => {
            let source = match kind {
                PluginKind::Sink => PYTHON_SINK,
                PluginKind::Exporter => PYTHON_EXPORTER,
                PluginKind::AlertRule => PYTHON_ALERT_RULE,
                PluginKind::Notifier => PYTHON_NOTIFIER,
                PluginKind::Pusher => return Err(ScaffoldError::UnknownKind("pusher".into())),
            };
            Template {
                files: vec![
                    ("app.py", source.to_string()),
                    (".gitignore", "*.wasm\n__pycache__/\n".into()),
                ],
                component: format!("{crate_name}.wasm"),
                build: format!(
                    "pip install componentize-py=={COMPONENTIZE_PY} && componentize-py -d wit -w {world} componentize app -o {crate_name}.wasm"
                ),
            }
        }
        Lang::Js => {
            let source = match kind {
                PluginKind::Sink => JS_SINK,
                PluginKind::Exporter => JS_EXPORTER,
                PluginKind::AlertRule => JS_ALERT_RULE,
                PluginKind::Notifier => JS_NOTIFIER,
                PluginKind::Pusher => return Err(ScaffoldError::UnknownKind("pusher".into())),
            };
            let fields = [
                ("name", name),
                ("crate_name", crate_name.as_str()),
                ("world", world),
                ("version", version),
                ("componentize_js", COMPONENTIZE_JS),
            ];
            Template {
                files: vec![
                    ("plugin.js", source.to_string()),
                    ("build.mjs", fill(JS_BUILD, &fields)),
                    ("package.json", fill(JS_PACKAGE, &fields)),
                    (".gitignore", "*.wasm\nnode_modules/\n".into()),
                ],
                component: format!("{crate_name}.wasm"),
                build: "npm install && node build.mjs".into(),
            }
        }
        Lang::C => {
            let mut files = vec![
                ("build.sh", C_BUILD.to_string()),
                ("adapter/Cargo.toml", C_ADAPTER_CARGO.to_string()),
                ("adapter/Cargo.lock", C_ADAPTER_LOCK.to_string()),
                ("adapter/src/main.rs", C_ADAPTER_MAIN.to_string()),
                (".gitignore", "*.wasm\n/build/\n".into()),
            ];
            match kind {
                PluginKind::Notifier => files.extend([
                    ("notifier.c", C_NOTIFIER.to_string()),
                    ("support.h", C_SUPPORT_H.to_string()),
                    ("support.c", C_SUPPORT_C.to_string()),
                ]),
                PluginKind::Sink => files.push(("sink.c", C_SINK.to_string())),
                PluginKind::Exporter => files.push(("exporter.c", C_EXPORTER.to_string())),
                PluginKind::AlertRule => return Err(ScaffoldError::NoTemplate { lang: "c" }),
                PluginKind::Pusher => return Err(ScaffoldError::UnknownKind("pusher".into())),
            }
            Template {
                files,
                component: format!("{crate_name}.wasm"),
                build: "sh build.sh".into(),
            }
        }
    })
}

/// `MY-NOTIFIER` → `MY_NOTIFIER_URL`: the variable a notifier's manifest reads its URL from.
fn url_variable(name: &str) -> String {
    format!("{}_URL", name.to_ascii_uppercase().replace('-', "_"))
}

fn manifest(name: &str, kind: PluginKind, component: &str) -> String {
    let (config, capabilities) = match kind {
        PluginKind::Notifier => {
            let url = format!("${{{}:-http://127.0.0.1:9099/alerts}}", url_variable(name));
            (
                format!("[config]\n# The webhook each alert is POSTed to, as JSON.\nurl = \"{url}\"\n"),
                format!("[capabilities]\n# Exactly the destination it posts to; anything else is refused.\nhttp = [\"{url}\"]\n"),
            )
        }
        PluginKind::AlertRule => (
            "[config]\n# An execution slower than this (in seconds) fires `slow_execution`.\nthreshold_seconds = 10.0\n".into(),
            "[capabilities]\n".into(),
        ),
        PluginKind::Sink | PluginKind::Exporter | PluginKind::Pusher => (
            "[config]\n".into(),
            "[capabilities]\n# Nothing is granted until you add it here, e.g.\n# dirs = [{ host = \".claude/my-plugin\", guest = \"/data\", mode = \"rw\", create = true }]\n".into(),
        ),
    };
    fill(
        MANIFEST,
        &[
            ("name", name),
            ("kind", kind.as_str()),
            ("component", component),
            ("wit", wit_version()),
            ("config", &config),
            ("capabilities", &capabilities),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_wit_version_is_the_packages() {
        assert_eq!(wit_version(), "0.4.0");
        assert!(WIT_MONITOR_0_1_0.contains("package metaclaude:monitor@0.1.0;"));
        assert!(WIT_MONITOR_0_2_0.contains("package metaclaude:monitor@0.2.0;"));
        assert!(WIT_MONITOR_0_3_0.contains("package metaclaude:monitor@0.3.0;"));
    }

    /// Nothing in a new folder points into this checkout: it builds wherever it is copied.
    #[test]
    fn a_new_folder_is_self_contained() {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let kinds = [
            PluginKind::Sink,
            PluginKind::Exporter,
            PluginKind::AlertRule,
            PluginKind::Notifier,
        ];
        for lang in [Lang::Rust, Lang::Python, Lang::Js, Lang::C] {
            for kind in kinds {
                let tmp = tempfile::tempdir().unwrap();
                let made = match create(tmp.path(), "my-plugin", kind, lang) {
                    Ok(made) => made,
                    Err(e) if lang == Lang::C && kind == PluginKind::AlertRule => {
                        assert!(e.to_string().contains("rust, python or js"), "{e}");
                        continue;
                    }
                    Err(e) => panic!("{lang:?} {kind:?}: {e}"),
                };
                for file in &made.files {
                    let text = std::fs::read_to_string(file).unwrap();
                    assert!(
                        !text.contains(&*checkout.to_string_lossy()) && !text.contains("../"),
                        "{lang:?} {kind:?}: {} refers outside its folder",
                        file.display()
                    );
                    let field = text.split("{{").skip(1).find(|rest| {
                        rest.split_once("}}").is_some_and(|(key, _)| {
                            !key.is_empty()
                                && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        })
                    });
                    assert!(
                        field.is_none(),
                        "{lang:?} {kind:?}: {} has a template field left unfilled",
                        file.display()
                    );
                }
                let wit = std::fs::read_to_string(made.dir.join("wit/monitor.wit")).unwrap();
                assert_eq!(wit, WIT_MONITOR);
                let manifest = std::fs::read_to_string(made.dir.join("plugin.toml")).unwrap();
                assert!(manifest.contains("wit = \"0.4.0\""), "{manifest}");
            }
        }
    }

    #[test]
    fn a_notifier_posts_where_its_manifest_grants() {
        let m = manifest("team-hook", PluginKind::Notifier, "team_hook.wasm");
        let url = "${TEAM_HOOK_URL:-http://127.0.0.1:9099/alerts}";
        assert!(m.contains(&format!("url = \"{url}\"")), "{m}");
        assert!(m.contains(&format!("http = [\"{url}\"]")), "{m}");
    }
}
