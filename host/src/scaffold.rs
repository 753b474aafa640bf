//! `metaclaude plugins new`: a working, buildable plugin folder in Rust, Python,
//! JavaScript or C, with its manifest, for each plugin kind.
//!
//! The folder needs nothing from this repository: the WIT package this binary was built
//! with is embedded here and written into the folder's `wit/` (0.1.0 kept beside it in
//! `wit/deps/`, as in the repository), and each build uses only its language's tools and
//! packages from crates.io, npm or PyPI (and, for C, Debian's clang-16). The notifier
//! templates are the example notifiers of `examples/plugins/`, which the end-to-end tests
//! see deliver.

use std::path::{Path, PathBuf};

use crate::plugin::manifest::PluginKind;

/// The WIT package plugins are built against, as this binary knows it.
const WIT_MONITOR: &str = include_str!("../../wit/monitor.wit");
/// The previous version, kept unchanged.
const WIT_MONITOR_0_1_0: &str = include_str!("../../wit/deps/monitor-0.1.0/monitor.wit");

/// The example notifiers, which are also the notifier templates.
const PYTHON_NOTIFIER: &str = include_str!("../../examples/plugins/python-notifier/app.py");
const JS_NOTIFIER: &str = include_str!("../../examples/plugins/js-notifier/notifier.js");
const C_NOTIFIER: &str = include_str!("../../examples/plugins/c-notifier/notifier.c");
const C_SUPPORT_H: &str = include_str!("../../examples/plugins/c-notifier/support.h");
const C_SUPPORT_C: &str = include_str!("../../examples/plugins/c-notifier/support.c");
const C_BUILD: &str = include_str!("../../examples/plugins/c-notifier/build.sh");
const C_ADAPTER_CARGO: &str = include_str!("../../examples/plugins/c-notifier/adapter/Cargo.toml");
const C_ADAPTER_LOCK: &str = include_str!("../../examples/plugins/c-notifier/adapter/Cargo.lock");
const C_ADAPTER_MAIN: &str = include_str!("../../examples/plugins/c-notifier/adapter/src/main.rs");

/// The componentize-js release the JavaScript templates pin (as the example does).
const COMPONENTIZE_JS: &str = "0.23.0";
/// The componentize-py release the Python build command names (as `cargo xtask` pins).
const COMPONENTIZE_PY: &str = "0.25.1";

/// The version of the embedded WIT package (its `package metaclaude:monitor@X;` line):
/// what a new plugin's manifest declares.
pub fn wit_version() -> &'static str {
    WIT_MONITOR
        .lines()
        .find_map(|l| l.trim().strip_prefix("package metaclaude:monitor@"))
        .and_then(|v| v.strip_suffix(';'))
        .expect("wit/monitor.wit declares `package metaclaude:monitor@X;`")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Lang, String> {
        match s {
            "rust" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            "c" => Ok(Lang::C),
            other => Err(format!(
                "unknown language `{other}` (expected rust, python, js or c)"
            )),
        }
    }
}

pub fn parse_kind(s: &str) -> Result<PluginKind, String> {
    match s {
        "sink" => Ok(PluginKind::Sink),
        "exporter" => Ok(PluginKind::Exporter),
        "alert-rule" => Ok(PluginKind::AlertRule),
        "notifier" => Ok(PluginKind::Notifier),
        other => Err(format!(
            "unknown kind `{other}` (expected sink, exporter, alert-rule or notifier)"
        )),
    }
}

/// What was written and how to build it.
pub struct Scaffold {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub build: String,
}

/// The files of a new plugin (path in the folder, text), its component's path and the
/// command that builds it, from inside the folder.
struct Template {
    files: Vec<(&'static str, String)>,
    component: String,
    build: String,
}

/// Creates `<parent>/<name>/` for a plugin of `kind` in `lang`.
pub fn create(parent: &Path, name: &str, kind: PluginKind, lang: Lang) -> Result<Scaffold, String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || name.starts_with('-')
    {
        return Err(format!(
            "plugin name `{name}`: use lower-case letters, digits and `-` (e.g. slack-notifier)"
        ));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(format!(
            "{} already exists: choose another name or remove it",
            dir.display()
        ));
    }
    let template = template(name, kind, lang)?;
    let manifest = manifest(name, kind, &template.component);
    let files = template.files.iter().map(|(f, t)| (*f, t.as_str())).chain([
        ("plugin.toml", manifest.as_str()),
        ("wit/monitor.wit", WIT_MONITOR),
        ("wit/deps/monitor-0.1.0/monitor.wit", WIT_MONITOR_0_1_0),
    ]);
    let mut written = Vec::new();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)
                .map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    // A plugin's source is the operator's like any other: the modes their umask gives,
    // not the host's private one (`safe_fs::share`).
    for path in &written {
        let folders = path.ancestors().skip(1).take_while(|a| a.starts_with(&dir));
        std::iter::once((path.as_path(), 0o666))
            .chain(folders.map(|a| (a, 0o777)))
            .try_for_each(|(p, mode)| crate::safe_fs::share(p, mode))
            .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    }
    Ok(Scaffold {
        dir,
        files: written,
        build: template.build,
    })
}

fn template(name: &str, kind: PluginKind, lang: Lang) -> Result<Template, String> {
    let crate_name = name.replace('-', "_");
    let world = kind.as_str();
    let version = wit_version();
    Ok(match lang {
        Lang::Rust => Template {
            files: vec![
                ("Cargo.toml", rust_cargo(name, kind)),
                ("src/lib.rs", rust_source(kind).to_string()),
                (".gitignore", "/target\n".into()),
            ],
            component: format!("target/wasm32-wasip2/release/{crate_name}.wasm"),
            build: "cargo build --release --target wasm32-wasip2".into(),
        },
        Lang::Python => Template {
            files: vec![
                ("app.py", python_source(kind)),
                (".gitignore", "*.wasm\n__pycache__/\n".into()),
            ],
            component: format!("{crate_name}.wasm"),
            build: format!(
                "pip install componentize-py=={COMPONENTIZE_PY} && componentize-py -d wit -w {world} componentize app -o {crate_name}.wasm"
            ),
        },
        Lang::Js => Template {
            files: vec![
                ("plugin.js", js_source(kind).to_string()),
                ("build.mjs", js_build(world, version, &crate_name)),
                ("package.json", js_package(name)),
                (".gitignore", "*.wasm\nnode_modules/\n".into()),
            ],
            component: format!("{crate_name}.wasm"),
            build: "npm install && node build.mjs".into(),
        },
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
                PluginKind::AlertRule => {
                    return Err(
                        "--lang c has templates for sink, exporter and notifier; write an alert rule in rust, python or js"
                            .into(),
                    )
                }
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
    let (config, caps) = match kind {
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
        PluginKind::Sink | PluginKind::Exporter => (
            "[config]\n".into(),
            "[capabilities]\n# Nothing is granted until you add it here, e.g.\n# dirs = [{ host = \".claude/my-plugin\", guest = \"/data\", mode = \"rw\", create = true }]\n".into(),
        ),
    };
    format!(
        "name = \"{name}\"\nversion = \"0.1.0\"\nkind = \"{}\"\ncomponent = \"{component}\"\nwit = \"{}\"\n\n{config}\n{caps}\n[limits]\n# The Python and JavaScript runtimes start at about 12 MiB of linear memory.\nmemory_mb = 128\ncall_timeout_ms = 5000\n",
        kind.as_str(),
        wit_version(),
    )
}

fn rust_cargo(name: &str, kind: PluginKind) -> String {
    let chrono = if kind == PluginKind::Notifier {
        "# RFC 3339 timestamps in the alert JSON.\nchrono = { version = \"0.4\", default-features = false, features = [\"alloc\"] }\n"
    } else {
        ""
    };
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n# The bindings of wit/monitor.wit (see `generate!` in src/lib.rs).\nwit-bindgen = \"0.63\"\nserde_json = {{ version = \"1\", features = [\"preserve_order\"] }}\n{chrono}\n# Its own workspace, wherever it lives.\n[workspace]\n\n# As the default plugins are built: a small component, quick to compile and load.\n[profile.release]\nopt-level = \"s\"\nlto = true\ncodegen-units = 1\nstrip = true\n"
    )
}

fn rust_source(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Sink => RUST_SINK,
        PluginKind::Exporter => RUST_EXPORTER,
        PluginKind::AlertRule => RUST_ALERT_RULE,
        PluginKind::Notifier => RUST_NOTIFIER,
    }
}

// Rust and C bind the file wit/monitor.wit, not the folder: with 0.1.0 beside it in
// wit/deps, the generated names would carry the version (`monitor0_2_0`).

const RUST_SINK: &str = r##"//! A metaclaude sink: receives every lifecycle event, in batches, and logs a line per
//! finished execution through the host.

wit_bindgen::generate!({ path: "wit/monitor.wit", world: "sink" });

use metaclaude::monitor::host::{self, Level};
use metaclaude::monitor::types::LifecycleKind;

struct Plugin;

impl Guest for Plugin {
    fn init(config: String) -> Result<(), String> {
        serde_json::from_str::<serde_json::Value>(&config).map_err(|e| format!("config: {e}"))?;
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Result<(), String> {
        let finished = events.iter().filter(|e| e.kind == LifecycleKind::Finished);
        for r in finished.filter_map(|e| e.result.as_ref()) {
            if host::log_enabled(Level::Info) {
                let how = if r.success { "succeeded" } else { "failed" };
                let took = r.resource_usage.wall_time_seconds;
                host::log(Level::Info, &format!("{} {} {how} in {took:.2}s", r.execution_id, r.script_id));
            }
        }
        Ok(())
    }

    fn flush() -> Result<(), String> {
        Ok(())
    }
}

export!(Plugin);
"##;

const RUST_EXPORTER: &str = r##"//! A metaclaude exporter: counts finished executions by outcome and renders them in the
//! Prometheus text format on request.

use std::sync::atomic::{AtomicU64, Ordering};

wit_bindgen::generate!({ path: "wit/monitor.wit", world: "exporter" });

use metaclaude::monitor::types::LifecycleKind;

static SUCCEEDED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);

struct Plugin;

impl Guest for Plugin {
    fn init(config: String) -> Result<(), String> {
        serde_json::from_str::<serde_json::Value>(&config).map_err(|e| format!("config: {e}"))?;
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Result<(), String> {
        let finished = events.iter().filter(|e| e.kind == LifecycleKind::Finished);
        for r in finished.filter_map(|e| e.result.as_ref()) {
            let counter = if r.success { &SUCCEEDED } else { &FAILED };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn flush() -> Result<(), String> {
        Ok(())
    }

    fn render() -> Result<String, String> {
        Ok(format!(
            "# TYPE executions_finished_total counter\n\
             executions_finished_total{{outcome=\"success\"}} {}\n\
             executions_finished_total{{outcome=\"failure\"}} {}\n",
            SUCCEEDED.load(Ordering::Relaxed),
            FAILED.load(Ordering::Relaxed)
        ))
    }
}

export!(Plugin);
"##;

const RUST_ALERT_RULE: &str = r##"//! A metaclaude alert rule: `slow_execution` fires for a script whose execution took
//! longer than `threshold_seconds`, and resolves at its next execution within it.

use std::collections::BTreeMap;
use std::sync::Mutex;

wit_bindgen::generate!({ path: "wit/monitor.wit", world: "alert-rule" });

use metaclaude::monitor::types::{AlertStatus, Severity};

struct State {
    threshold_seconds: f64,
    /// The scripts whose alert is firing, and since when.
    firing: BTreeMap<String, Datetime>,
}

static STATE: Mutex<State> = Mutex::new(State { threshold_seconds: 10.0, firing: BTreeMap::new() });

struct Plugin;

impl Guest for Plugin {
    fn init(config: String) -> Result<(), String> {
        let config: serde_json::Value = serde_json::from_str(&config).map_err(|e| format!("config: {e}"))?;
        if let Some(t) = config.get("threshold_seconds") {
            let t = t.as_f64().filter(|t| *t >= 0.0);
            STATE.lock().unwrap().threshold_seconds =
                t.ok_or("config.threshold_seconds: expected a number of seconds, 0 or more")?;
        }
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Vec<Alert> {
        let mut state = STATE.lock().unwrap();
        let threshold = state.threshold_seconds;
        let mut alerts = Vec::new();
        for (e, r) in events.iter().filter_map(|e| e.result.as_ref().map(|r| (e, r))) {
            let took = r.resource_usage.wall_time_seconds;
            let (status, starts_at, ends_at) = if took > threshold {
                let since = *state.firing.entry(r.script_id.clone()).or_insert(e.timestamp);
                (AlertStatus::Firing, since, None)
            } else if let Some(since) = state.firing.remove(&r.script_id) {
                (AlertStatus::Resolved, since, Some(e.timestamp))
            } else {
                continue;
            };
            let message = format!("{} took {took:.1}s (threshold: {threshold:.1}s)", r.script_id);
            alerts.push(Alert {
                timestamp: e.timestamp,
                type_: "slow_execution".into(),
                severity: Severity::Warning,
                message: message.clone(),
                value: took,
                threshold,
                specialist: r.specialist.clone(),
                labels: std::iter::once(("script_id".into(), r.script_id.clone()))
                    .chain(r.specialist.clone().map(|s| ("specialist".into(), s)))
                    .collect(),
                status,
                fingerprint: String::new(), // the host fills it in
                starts_at,
                ends_at,
                annotations: vec![("summary".into(), message)],
            });
        }
        alerts
    }

    fn tick(_now: Datetime) -> Vec<Alert> {
        Vec::new()
    }

    fn set_threshold(name: String, value: f64) -> Result<String, String> {
        if name != "threshold_seconds" {
            return Err(format!("unknown threshold `{name}` (known: threshold_seconds)"));
        }
        if !(value >= 0.0 && value.is_finite()) {
            return Err(format!("threshold_seconds: {value} is out of range (0 or more seconds)"));
        }
        let old = std::mem::replace(&mut STATE.lock().unwrap().threshold_seconds, value);
        Ok(format!("threshold_seconds: {old} -> {value}"))
    }

    fn thresholds() -> Vec<Threshold> {
        vec![Threshold {
            name: "threshold_seconds".into(),
            value: STATE.lock().unwrap().threshold_seconds,
            description: "an execution's wall time above which it is slow, in seconds".into(),
        }]
    }
}

export!(Plugin);
"##;

const RUST_NOTIFIER: &str = r##"//! A metaclaude notifier: POSTs each alert, as the host's alert JSON, to `config.url`
//! (which the manifest grants under `capabilities.http`).

use std::sync::Mutex;

use serde_json::{json, Map, Value};

wit_bindgen::generate!({ path: "wit/monitor.wit", world: "notifier" });

use metaclaude::monitor::http;
use metaclaude::monitor::types::{AlertStatus, Datetime, Severity};

static URL: Mutex<String> = Mutex::new(String::new());

struct Plugin;

impl Guest for Plugin {
    fn init(config: String) -> Result<(), String> {
        let config: Value = serde_json::from_str(&config).map_err(|e| format!("config: {e}"))?;
        let url = config["url"].as_str().unwrap_or_default();
        if !url.starts_with("http://") && !url.starts_with("https://") {
            let found = &config["url"];
            return Err(format!("config.url: expected the webhook's http(s):// URL, found {found}"));
        }
        *URL.lock().unwrap() = url.to_string();
        Ok(())
    }

    fn notify(alerts: Vec<Alert>) -> Result<(), String> {
        let url = URL.lock().unwrap().clone();
        let headers = [("content-type".to_string(), "application/json".to_string())];
        for a in &alerts {
            let body = alert_json(a).to_string();
            let reply = http::post(&url, &headers, body.as_bytes())
                .map_err(|e| format!("cannot POST to {url}: {e}"))?;
            if reply.status >= 300 {
                let text = String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)]);
                return Err(format!("{url} answered {}: {text}", reply.status));
            }
        }
        Ok(())
    }
}

/// The alert as the host writes it to its alert history (absent fields left out).
fn alert_json(a: &Alert) -> Value {
    let pairs = |list: &[(String, String)]| -> Map<String, Value> {
        list.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect()
    };
    let mut doc = json!({
        "timestamp": rfc3339(&a.timestamp),
        "type": a.type_,
        "severity": match a.severity { Severity::Warning => "warning", Severity::Critical => "critical" },
        "message": a.message,
        "value": a.value,
        "threshold": a.threshold,
        "specialist": a.specialist,
        "labels": pairs(&a.labels),
        "status": match a.status { AlertStatus::Firing => "firing", AlertStatus::Resolved => "resolved" },
        "fingerprint": a.fingerprint,
        "starts_at": rfc3339(&a.starts_at),
        "ends_at": a.ends_at.as_ref().map(rfc3339),
        "annotations": pairs(&a.annotations),
    });
    if let Some(fields) = doc.as_object_mut() {
        fields.retain(|_, v| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()));
    }
    doc
}

/// RFC 3339 in UTC with microseconds, e.g. `2024-01-15T10:30:45.123456Z`.
fn rfc3339(t: &Datetime) -> String {
    chrono::DateTime::from_timestamp(t.seconds, t.nanoseconds)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

export!(Plugin);
"##;

fn python_source(kind: PluginKind) -> String {
    let body = match kind {
        PluginKind::Sink => PYTHON_SINK,
        PluginKind::Exporter => PYTHON_EXPORTER,
        PluginKind::AlertRule => PYTHON_ALERT_RULE,
        PluginKind::Notifier => return PYTHON_NOTIFIER.to_string(),
    };
    format!(
        "\"\"\"A metaclaude {} plugin in Python (componentize-py).\n\ncomponentize-py makes a new WitWorld for every call, so state lives in the module.\n\"\"\"\n{body}",
        kind.as_str()
    )
}

const PYTHON_SINK: &str = r##"import json

import wit_world
from wit_world.imports import host, types

STATE = {"finished": 0}


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        json.loads(config)

    def handle_batch(self, events) -> None:
        for e in events:
            if e.kind == types.LifecycleKind.FINISHED and e.result is not None:
                STATE["finished"] += 1
                if host.log_enabled(host.Level.INFO):
                    how = "succeeded" if e.result.success else "failed"
                    took = e.result.resource_usage.wall_time_seconds
                    host.log(host.Level.INFO, f"{e.execution_id} {e.script_id} {how} in {took:.2f}s")

    def flush(self) -> None:
        pass
"##;

const PYTHON_EXPORTER: &str = r##"import json

import wit_world
from wit_world.imports import types

STATE = {"success": 0, "failure": 0}


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        json.loads(config)

    def handle_batch(self, events) -> None:
        for e in events:
            if e.kind == types.LifecycleKind.FINISHED and e.result is not None:
                STATE["success" if e.result.success else "failure"] += 1

    def flush(self) -> None:
        pass

    def render(self) -> str:
        lines = ["# TYPE executions_finished_total counter"]
        lines += [f'executions_finished_total{{outcome="{k}"}} {v}' for k, v in STATE.items()]
        return "\n".join(lines) + "\n"
"##;

const PYTHON_ALERT_RULE: &str = r##"import json

import wit_world
from wit_world.imports import types
from componentize_py_types import Err

# threshold_seconds, and the scripts whose alert is firing (script id -> since when).
STATE = {"threshold_seconds": 10.0, "firing": {}}


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        t = json.loads(config).get("threshold_seconds", 10.0)
        if not isinstance(t, (int, float)) or t < 0:
            raise Err("config.threshold_seconds: expected a number of seconds, 0 or more")
        STATE["threshold_seconds"] = float(t)

    def handle_batch(self, events):
        threshold, firing, alerts = STATE["threshold_seconds"], STATE["firing"], []
        for e in events:
            r = e.result
            if r is None:
                continue
            took = r.resource_usage.wall_time_seconds
            if took > threshold:
                status, starts_at, ends_at = types.AlertStatus.FIRING, firing.setdefault(r.script_id, e.timestamp), None
            elif r.script_id in firing:
                status, starts_at, ends_at = types.AlertStatus.RESOLVED, firing.pop(r.script_id), e.timestamp
            else:
                continue
            message = f"{r.script_id} took {took:.1f}s (threshold: {threshold:.1f}s)"
            alerts.append(types.Alert(
                timestamp=e.timestamp, type="slow_execution", severity=types.Severity.WARNING,
                message=message, value=took, threshold=threshold, specialist=r.specialist,
                labels=[("script_id", r.script_id)] + ([("specialist", r.specialist)] if r.specialist else []),
                status=status,
                fingerprint="",  # the host fills it in
                starts_at=starts_at, ends_at=ends_at, annotations=[("summary", message)]))
        return alerts

    def tick(self, now):
        return []

    def set_threshold(self, name: str, value: float) -> str:
        if name != "threshold_seconds":
            raise Err(f"unknown threshold `{name}` (known: threshold_seconds)")
        if not 0 <= value < float("inf"):
            raise Err(f"threshold_seconds: {value} is out of range (0 or more seconds)")
        old, STATE["threshold_seconds"] = STATE["threshold_seconds"], value
        return f"threshold_seconds: {old} -> {value}"

    def thresholds(self):
        return [types.Threshold(name="threshold_seconds", value=STATE["threshold_seconds"],
                                description="an execution's wall time above which it is slow, in seconds")]
"##;

fn js_source(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Sink => JS_SINK,
        PluginKind::Exporter => JS_EXPORTER,
        PluginKind::AlertRule => JS_ALERT_RULE,
        PluginKind::Notifier => JS_NOTIFIER,
    }
}

const JS_SINK: &str = r##"// A metaclaude sink in JavaScript (componentize-js): logs each finished execution.
import { log, logEnabled } from 'metaclaude:monitor/host@0.2.0';

export function init(config) { JSON.parse(config); }

export function handleBatch(events) {
  for (const e of events) {
    if (e.kind === 'finished' && e.result && logEnabled('info')) {
      const how = e.result.success ? 'succeeded' : 'failed';
      log('info', `${e.executionId} ${e.scriptId} ${how} in ${e.result.resourceUsage.wallTimeSeconds.toFixed(2)}s`);
    }
  }
}

export function flush() {}
"##;

const JS_EXPORTER: &str = r##"// A metaclaude exporter in JavaScript (componentize-js): finished executions by outcome.
const counts = { success: 0, failure: 0 };

export function init(config) { JSON.parse(config); }

export function handleBatch(events) {
  for (const e of events) {
    if (e.kind === 'finished' && e.result) counts[e.result.success ? 'success' : 'failure'] += 1;
  }
}

export function flush() {}

export function render() {
  const lines = Object.entries(counts).map(([k, v]) => `executions_finished_total{outcome="${k}"} ${v}`);
  return ['# TYPE executions_finished_total counter', ...lines].join('\n') + '\n';
}
"##;

const JS_ALERT_RULE: &str = r##"// A metaclaude alert rule in JavaScript (componentize-js): `slow_execution` fires for a
// script whose execution took longer than threshold_seconds, and resolves at its next
// execution within it.
let threshold = 10;
const firing = new Map(); // script id -> since when

export function init(config) {
  const t = JSON.parse(config).threshold_seconds ?? 10;
  if (typeof t !== 'number' || t < 0) throw 'config.threshold_seconds: expected a number of seconds, 0 or more';
  threshold = t;
}

export function handleBatch(events) {
  const alerts = [];
  for (const e of events) {
    const r = e.result;
    if (!r) continue;
    const took = r.resourceUsage.wallTimeSeconds;
    let status, startsAt, endsAt;
    if (took > threshold) {
      if (!firing.has(r.scriptId)) firing.set(r.scriptId, e.timestamp);
      [status, startsAt] = ['firing', firing.get(r.scriptId)];
    } else if (firing.has(r.scriptId)) {
      [status, startsAt, endsAt] = ['resolved', firing.get(r.scriptId), e.timestamp];
      firing.delete(r.scriptId);
    } else continue;
    const message = `${r.scriptId} took ${took.toFixed(1)}s (threshold: ${threshold.toFixed(1)}s)`;
    alerts.push({
      timestamp: e.timestamp, type: 'slow_execution', severity: 'warning', message,
      value: took, threshold, specialist: r.specialist,
      labels: [['script_id', r.scriptId], ...(r.specialist ? [['specialist', r.specialist]] : [])],
      status, fingerprint: '' /* the host fills it in */, startsAt, endsAt,
      annotations: [['summary', message]],
    });
  }
  return alerts;
}

export function tick(now) { return []; }

export function setThreshold(name, value) {
  if (name !== 'threshold_seconds') throw `unknown threshold \`${name}\` (known: threshold_seconds)`;
  if (!(value >= 0 && Number.isFinite(value))) throw `threshold_seconds: ${value} is out of range (0 or more seconds)`;
  const old = threshold;
  threshold = value;
  return `threshold_seconds: ${old} -> ${value}`;
}

export function thresholds() {
  return [{ name: 'threshold_seconds', value: threshold, description: "an execution's wall time above which it is slow, in seconds" }];
}
"##;

fn js_build(world: &str, version: &str, crate_name: &str) -> String {
    format!(
        "// Builds {crate_name}.wasm from plugin.js with componentize-js (`npm install` first).\nimport {{ componentize }} from '@bytecodealliance/componentize-js';\nimport {{ writeFile }} from 'node:fs/promises';\n\nconst {{ component }} = await componentize({{\n  sourcePath: 'plugin.js',\n  witPath: 'wit',\n  worldName: 'metaclaude:monitor/{world}@{version}',\n  // A pure component: no WASI clocks, random, stdio or fetch (the host grants none of them).\n  disableFeatures: ['http', 'fetch-event', 'random', 'clocks', 'stdio'],\n}});\nawait writeFile('{crate_name}.wasm', component);\nconsole.log('wrote {crate_name}.wasm');\n"
    )
}

fn js_package(name: &str) -> String {
    format!(
        "{{\n  \"name\": \"{name}\",\n  \"version\": \"0.1.0\",\n  \"private\": true,\n  \"type\": \"module\",\n  \"scripts\": {{\n    \"build\": \"node build.mjs\"\n  }},\n  \"devDependencies\": {{\n    \"@bytecodealliance/componentize-js\": \"{COMPONENTIZE_JS}\"\n  }}\n}}\n"
    )
}

const C_SINK: &str = r##"// A metaclaude sink in C: logs each finished execution through the host.
#include <stdio.h>

#include "sink.h"

bool exports_sink_init(sink_string_t *config, sink_string_t *err) {
  sink_string_free(config);
  return true;
}

bool exports_sink_handle_batch(sink_list_event_t *events, sink_string_t *err) {
  for (size_t i = 0; i < events->len; i++) {
    const sink_event_t *e = &events->ptr[i];
    if (e->kind != METACLAUDE_MONITOR_TYPES_LIFECYCLE_KIND_FINISHED || !e->result.is_some) continue;
    if (!metaclaude_monitor_host_log_enabled(METACLAUDE_MONITOR_HOST_LEVEL_INFO)) continue;
    const metaclaude_monitor_types_execution_result_t *r = &e->result.val;
    char line[512];
    snprintf(line, sizeof line, "%.*s %.*s %s in %.2fs", (int)r->execution_id.len, r->execution_id.ptr,
             (int)r->script_id.len, r->script_id.ptr, r->success ? "succeeded" : "failed",
             r->resource_usage.wall_time_seconds);
    sink_string_t message;
    sink_string_set(&message, line);
    metaclaude_monitor_host_log(METACLAUDE_MONITOR_HOST_LEVEL_INFO, &message);
  }
  sink_list_event_free(events);
  return true;
}

bool exports_sink_flush(sink_string_t *err) { return true; }
"##;

const C_EXPORTER: &str = r##"// A metaclaude exporter in C: finished executions by outcome, in the Prometheus text format.
#include <stdio.h>

#include "exporter.h"

static unsigned long long succeeded, failed;

bool exports_exporter_init(exporter_string_t *config, exporter_string_t *err) {
  exporter_string_free(config);
  return true;
}

bool exports_exporter_handle_batch(exporter_list_event_t *events, exporter_string_t *err) {
  for (size_t i = 0; i < events->len; i++) {
    const exporter_event_t *e = &events->ptr[i];
    if (e->kind == METACLAUDE_MONITOR_TYPES_LIFECYCLE_KIND_FINISHED && e->result.is_some)
      *(e->result.val.success ? &succeeded : &failed) += 1;
  }
  exporter_list_event_free(events);
  return true;
}

bool exports_exporter_flush(exporter_string_t *err) { return true; }

bool exports_exporter_render(exporter_string_t *ret, exporter_string_t *err) {
  char text[256];
  snprintf(text, sizeof text,
           "# TYPE executions_finished_total counter\n"
           "executions_finished_total{outcome=\"success\"} %llu\n"
           "executions_finished_total{outcome=\"failure\"} %llu\n",
           succeeded, failed);
  exporter_string_dup(ret, text);
  return true;
}
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_wit_version_is_the_packages() {
        assert_eq!(wit_version(), "0.2.0");
        assert!(WIT_MONITOR_0_1_0.contains("package metaclaude:monitor@0.1.0;"));
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
                        assert!(e.contains("rust, python or js"), "{e}");
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
                }
                let wit = std::fs::read_to_string(made.dir.join("wit/monitor.wit")).unwrap();
                assert_eq!(wit, WIT_MONITOR);
                let manifest = std::fs::read_to_string(made.dir.join("plugin.toml")).unwrap();
                assert!(manifest.contains("wit = \"0.2.0\""), "{manifest}");
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
