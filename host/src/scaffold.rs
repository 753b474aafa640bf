//! `metaclaude plugins new`: a working, buildable plugin folder in Rust, Python or
//! JavaScript, with its manifest, for each plugin kind.
//!
//! The templates build against this checkout's WIT package and Rust SDK (their absolute
//! paths are filled in), so a new plugin builds with one command, printed at the end.

use std::path::{Path, PathBuf};

use crate::plugin::manifest::{PluginKind, WIT_VERSION};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Lang, String> {
        match s {
            "rust" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            other => Err(format!(
                "unknown language `{other}` (expected rust, python or js)"
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

/// Where this checkout keeps the WIT package and the Rust SDK.
fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// What was written and how to build it.
pub struct Scaffold {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub build: String,
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
    let root = source_root();
    let wit = root.join("wit");
    let crate_name = name.replace('-', "_");
    let world = kind.as_str();
    let (files, component, build): (Vec<(&str, String)>, String, String) = match lang {
        Lang::Rust => (
            vec![
                (
                    "Cargo.toml",
                    rust_cargo(name, kind, &root.join("plugins/sdk")),
                ),
                ("src/lib.rs", rust_source(kind)),
                (".gitignore", "/target\n".into()),
            ],
            format!("target/wasm32-wasip2/release/{crate_name}.wasm"),
            "cargo build --release --target wasm32-wasip2".to_string(),
        ),
        Lang::Python => (
            vec![("app.py", python_source(kind))],
            format!("{crate_name}.wasm"),
            format!(
                "componentize-py -d {} -w {world} componentize app -o {crate_name}.wasm",
                wit.display()
            ),
        ),
        Lang::Js => (
            vec![
                ("plugin.js", js_source(kind)),
                ("build.mjs", js_build(&wit, world, &crate_name)),
                ("package.json", js_package(name)),
            ],
            format!("{crate_name}.wasm"),
            "npm install && node build.mjs".to_string(),
        ),
    };
    let mut written = Vec::new();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let manifest = manifest(name, kind, &component);
    for (file, text) in files
        .iter()
        .map(|(f, t)| (*f, t.as_str()))
        .chain([("plugin.toml", manifest.as_str())])
    {
        let path = dir.join(file);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(Scaffold {
        dir,
        files: written,
        build,
    })
}

fn manifest(name: &str, kind: PluginKind, component: &str) -> String {
    let caps = match kind {
        PluginKind::Notifier => {
            "[capabilities]\n# Destinations this notifier may POST to:\nhttp = [\"http://127.0.0.1:9093/*\"]\n"
        }
        _ => "[capabilities]\n# Nothing is granted until you add it here, e.g.\n# dirs = [{ host = \".claude/my-plugin\", guest = \"/data\", mode = \"rw\", create = true }]\n",
    };
    let config = match kind {
        PluginKind::AlertRule => "[config]\nthreshold = 10.0\n",
        PluginKind::Notifier => "[config]\nurl = \"http://127.0.0.1:9093/api/v2/alerts\"\n",
        _ => "[config]\n",
    };
    format!(
        "name = \"{name}\"\nversion = \"0.1.0\"\nkind = \"{}\"\ncomponent = \"{component}\"\nwit = \"{WIT_VERSION}\"\n\n{config}\n{caps}\n[limits]\nmemory_mb = 64\ncall_timeout_ms = 2000\n",
        kind.as_str()
    )
}

fn rust_cargo(name: &str, kind: PluginKind, sdk: &Path) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nmetaclaude-plugin-sdk = {{ path = \"{}\", features = [\"{}\"] }}\n\n# Its own workspace, wherever it lives.\n[workspace]\n\n[profile.release]\nopt-level = \"s\"\nstrip = true\n",
        sdk.display(),
        kind.as_str()
    )
}

fn rust_source(kind: PluginKind) -> String {
    match kind {
        PluginKind::Sink => r#"//! A metaclaude sink: receives every lifecycle event, in batches.

use metaclaude_plugin_sdk::{export_sink, kind_name, sink::Guest, types::Event};

struct Plugin;

impl Guest for Plugin {
    fn init(config: String) -> Result<(), String> {
        metaclaude_plugin_sdk::parse_config(&config)?;
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Result<(), String> {
        for e in &events {
            metaclaude_plugin_sdk::debug!("{} {} {}", e.execution_id, e.script_id, kind_name(e.kind));
        }
        Ok(())
    }

    fn flush() -> Result<(), String> {
        Ok(())
    }
}

export_sink!(Plugin);
"#
        .into(),
        PluginKind::Exporter => r#"//! A metaclaude exporter: counts finished executions and renders them on request.

use std::sync::atomic::{AtomicU64, Ordering};

use metaclaude_plugin_sdk::exporter::Guest;
use metaclaude_plugin_sdk::types::{Event, LifecycleKind};
use metaclaude_plugin_sdk::export_exporter;

static FINISHED: AtomicU64 = AtomicU64::new(0);

struct Plugin;

impl Guest for Plugin {
    fn init(config: String) -> Result<(), String> {
        metaclaude_plugin_sdk::parse_config(&config)?;
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Result<(), String> {
        let n = events.iter().filter(|e| e.kind == LifecycleKind::Finished).count();
        FINISHED.fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }

    fn flush() -> Result<(), String> {
        Ok(())
    }

    fn render() -> Result<String, String> {
        Ok(format!("executions_finished_total {}\n", FINISHED.load(Ordering::Relaxed)))
    }
}

export_exporter!(Plugin);
"#
        .into(),
        PluginKind::AlertRule => r#"//! A metaclaude alert rule: raises an alert when an execution takes longer than
//! `config.threshold` seconds.

use std::cell::Cell;

use metaclaude_plugin_sdk::alert_rule::Guest;
use metaclaude_plugin_sdk::types::{Alert, Datetime, Event, Severity};
use metaclaude_plugin_sdk::export_alert_rule;

thread_local! {
    static THRESHOLD: Cell<f64> = const { Cell::new(10.0) };
}

struct Plugin;

impl Guest for Plugin {
    fn init(config: String) -> Result<(), String> {
        let config = metaclaude_plugin_sdk::parse_config(&config)?;
        if let Some(t) = config.get("threshold") {
            let t = t.as_f64().ok_or("config.threshold: expected a number of seconds")?;
            THRESHOLD.set(t);
        }
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Vec<Alert> {
        let threshold = THRESHOLD.get();
        events
            .iter()
            .filter_map(|e| e.result.as_ref().map(|r| (e, r)))
            .filter(|(_, r)| r.resource_usage.wall_time_seconds > threshold)
            .map(|(e, r)| Alert {
                timestamp: e.timestamp,
                type_: "slow_execution".into(),
                severity: Severity::Warning,
                message: format!(
                    "{} took {:.1}s (threshold: {threshold:.1}s)",
                    r.script_id, r.resource_usage.wall_time_seconds
                ),
                value: r.resource_usage.wall_time_seconds,
                threshold,
                specialist: r.specialist.clone(),
                labels: vec![("script_id".into(), r.script_id.clone())],
            })
            .collect()
    }

    fn tick(_now: Datetime) -> Vec<Alert> {
        Vec::new()
    }
}

export_alert_rule!(Plugin);
"#
        .into(),
        PluginKind::Notifier => r#"//! A metaclaude notifier: POSTs each alert as JSON to `config.url` (which the manifest
//! must grant under capabilities.http).

use std::cell::RefCell;

use metaclaude_plugin_sdk::notifier::metaclaude::monitor::http;
use metaclaude_plugin_sdk::notifier::Guest;
use metaclaude_plugin_sdk::types::Alert;
use metaclaude_plugin_sdk::{export_notifier, severity_name};

thread_local! {
    static URL: RefCell<String> = const { RefCell::new(String::new()) };
}

struct Plugin;

impl Guest for Plugin {
    fn init(config: String) -> Result<(), String> {
        let config = metaclaude_plugin_sdk::parse_config(&config)?;
        let url = config.get("url").and_then(|u| u.as_str()).ok_or("config.url: missing")?;
        URL.with_borrow_mut(|u| *u = url.to_string());
        Ok(())
    }

    fn notify(alerts: Vec<Alert>) -> Result<(), String> {
        let url = URL.with_borrow(|u| u.clone());
        for a in &alerts {
            let body = format!(
                "{{\"type\":{:?},\"severity\":{:?},\"message\":{:?},\"value\":{},\"threshold\":{}}}",
                a.type_, severity_name(a.severity), a.message, a.value, a.threshold
            );
            let response = http::post(&url, &[("Content-Type".into(), "application/json".into())], body.as_bytes())?;
            if response.status >= 300 {
                return Err(format!("{url} answered {}", response.status));
            }
        }
        Ok(())
    }
}

export_notifier!(Plugin);
"#
        .into(),
    }
}

fn python_source(kind: PluginKind) -> String {
    // componentize-py makes a fresh `WitWorld` for each call: state lives in the module.
    let body = match kind {
        PluginKind::Sink | PluginKind::Exporter => {
            let render = if kind == PluginKind::Exporter {
                "\n    def render(self) -> str:\n        return f\"executions_seen_total {STATE['count']}\\n\"\n"
            } else {
                ""
            };
            format!(
                "STATE = {{\"count\": 0}}\n\n\nclass WitWorld(wit_world.WitWorld):\n    def init(self, config: str) -> None:\n        json.loads(config)\n\n    def handle_batch(self, events) -> None:\n        STATE[\"count\"] += len(events)\n        if host.log_enabled(host.Level.DEBUG):\n            host.log(host.Level.DEBUG, f\"{{len(events)}} events\")\n\n    def flush(self) -> None:\n        pass\n{render}"
            )
        }
        PluginKind::AlertRule => "STATE = {\"threshold\": 10.0}\n\n\nclass WitWorld(wit_world.WitWorld):\n    def init(self, config: str) -> None:\n        STATE[\"threshold\"] = float(json.loads(config).get(\"threshold\", 10.0))\n\n    def handle_batch(self, events):\n        threshold = STATE[\"threshold\"]\n        alerts = []\n        for e in events:\n            r = e.result\n            if r is not None and r.resource_usage.wall_time_seconds > threshold:\n                alerts.append(types.Alert(\n                    timestamp=e.timestamp, type=\"slow_execution\", severity=types.Severity.WARNING,\n                    message=f\"{r.script_id} took {r.resource_usage.wall_time_seconds:.1f}s\",\n                    value=r.resource_usage.wall_time_seconds, threshold=threshold,\n                    specialist=r.specialist, labels=[(\"script_id\", r.script_id)]))\n        return alerts\n\n    def tick(self, now):\n        return []\n".into(),
        PluginKind::Notifier => "from wit_world.imports import http\n\nSTATE = {\"url\": \"\"}\n\n\nclass WitWorld(wit_world.WitWorld):\n    def init(self, config: str) -> None:\n        STATE[\"url\"] = json.loads(config)[\"url\"]\n\n    def notify(self, alerts) -> None:\n        url = STATE[\"url\"]\n        for a in alerts:\n            body = json.dumps({\"type\": a.type, \"message\": a.message}).encode()\n            try:\n                http.post(url, [(\"Content-Type\", \"application/json\")], body)\n            except Err as e:\n                raise Err(f\"cannot notify {url}: {e.value}\")\n".into(),
    };
    format!(
        "\"\"\"A metaclaude {} plugin in Python (componentize-py).\n\ncomponentize-py creates a new WitWorld for every call, so state lives in the module.\n\"\"\"\nimport json\n\nimport wit_world\nfrom wit_world.imports import host, types\nfrom componentize_py_types import Err\n\n\n{body}",
        kind.as_str()
    )
}

fn js_source(kind: PluginKind) -> String {
    match kind {
        PluginKind::Sink => "// A metaclaude sink in JavaScript (componentize-js).\nlet count = 0;\nexport function init(config) { JSON.parse(config); }\nexport function handleBatch(events) { count += events.length; }\nexport function flush() {}\n".into(),
        PluginKind::Exporter => "// A metaclaude exporter in JavaScript (componentize-js).\nlet count = 0;\nexport function init(config) { JSON.parse(config); }\nexport function handleBatch(events) { count += events.length; }\nexport function flush() {}\nexport function render() { return `executions_seen_total ${count}\\n`; }\n".into(),
        PluginKind::AlertRule => "// A metaclaude alert rule in JavaScript (componentize-js).\nlet threshold = 10;\nexport function init(config) { threshold = JSON.parse(config).threshold ?? 10; }\nexport function handleBatch(events) {\n  return events.filter((e) => e.result && e.result.resourceUsage.wallTimeSeconds > threshold).map((e) => ({\n    timestamp: e.timestamp, type: 'slow_execution', severity: 'warning',\n    message: `${e.scriptId} took ${e.result.resourceUsage.wallTimeSeconds}s`,\n    value: e.result.resourceUsage.wallTimeSeconds, threshold, specialist: e.specialist, labels: [],\n  }));\n}\nexport function tick(now) { return []; }\n".into(),
        PluginKind::Notifier => "// A metaclaude notifier in JavaScript (componentize-js).\nimport { post } from 'metaclaude:monitor/http@0.1.0';\nlet url = '';\nexport function init(config) { url = JSON.parse(config).url; }\nexport function notify(alerts) {\n  for (const a of alerts) {\n    post(url, [['Content-Type', 'application/json']], new TextEncoder().encode(JSON.stringify({ type: a.type, message: a.message })));\n  }\n}\n".into(),
    }
}

fn js_build(wit: &Path, world: &str, crate_name: &str) -> String {
    format!(
        "// Builds the component with the componentize-js API (its CLI is not needed).\nimport {{ componentize }} from '@bytecodealliance/componentize-js';\nimport {{ readFile, writeFile }} from 'node:fs/promises';\n\nconst source = await readFile('plugin.js', 'utf8');\nconst {{ component }} = await componentize(source, {{\n  witPath: '{}',\n  worldName: 'metaclaude:monitor/{world}@{WIT_VERSION}',\n  disableFeatures: ['http', 'fetch-event', 'random', 'clocks', 'stdio'],\n}});\nawait writeFile('{crate_name}.wasm', component);\nconsole.log('wrote {crate_name}.wasm');\n",
        wit.display()
    )
}

fn js_package(name: &str) -> String {
    format!(
        "{{\n  \"name\": \"{name}\",\n  \"version\": \"0.1.0\",\n  \"private\": true,\n  \"type\": \"module\",\n  \"devDependencies\": {{\n    \"@bytecodealliance/componentize-js\": \"^0.18.0\"\n  }}\n}}\n"
    )
}
