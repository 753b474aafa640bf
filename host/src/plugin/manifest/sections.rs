//! Checking: each section of `plugin.toml` (the top level, `[capabilities]`, `[limits]`,
//! `[acknowledgements]`, `[filter]`, `[alerts]`, `[config]`) read into its part of the
//! [`Manifest`], unknown keys refused with a "did you mean".

use std::path::Path;
use std::time::Duration;

use toml::{Table, Value};

use super::fields::Fields;
use super::*;
use crate::alerting::book::GROUP_BY_ALL;
use crate::alerting::matchers::is_label_name;
use crate::alerting::Routing;
use crate::config::ConfigValue;
use crate::model::Severity;
use crate::suggest::did_you_mean;

impl Fields<'_> {
    pub(super) fn manifest(&mut self, t: &Table, file: &Path, dir: &Path) -> Option<Manifest> {
        self.unknown_keys("", t, TOP_KEYS);
        // Grants are given by name: the name is written out, never taken from the
        // environment.
        let name = match t.get("name") {
            Some(Value::String(s)) if s.contains("${") => {
                self.problem(
                    "name",
                    format!("{s:?}: write the name itself, without ${{VAR}} (the operator grants capabilities by name)"),
                );
                None
            }
            v => self.string("name", v, true),
        };
        if let Some(n) = &name {
            if !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                self.problem("name", "use only letters, digits, `-` and `_`");
            }
        }
        let version = self.string("version", t.get("version"), true);
        let kind = match self.string("kind", t.get("kind"), true) {
            Some(k) => PluginKind::parse(&k).or_else(|| {
                let hint = did_you_mean(&k, PluginKind::NAMES.iter().copied());
                self.problem(
                    "kind",
                    format!(
                        "unknown kind `{k}`{hint} (expected one of {})",
                        PluginKind::NAMES.join(", ")
                    ),
                );
                None
            }),
            None => None,
        };
        let description = self.string("description", t.get("description"), false);
        let trusted = self.boolean("trusted", t.get("trusted"), false);
        let component = self.string("component", t.get("component"), false);
        let native = self.string("native", t.get("native"), false);
        let artifact = match (component, native) {
            (Some(c), None) => {
                let path = dir.join(&c);
                if !path.is_file() {
                    self.problem(
                        "component",
                        format!(
                            "{} does not exist (build the plugin, or fix the path: it is relative to the plugin folder)",
                            path.display()
                        ),
                    );
                }
                Some(Artifact::Component(path))
            }
            (None, Some(n)) => {
                if !trusted {
                    self.problem(
                        "native",
                        "native plugins run unsandboxed inside the host: add `trusted = true` to load one",
                    );
                }
                let path = dir.join(&n);
                if !path.is_file() {
                    self.problem("native", format!("{} does not exist", path.display()));
                }
                Some(Artifact::Native(path))
            }
            (Some(_), Some(_)) => {
                self.problem("component", "give either `component` or `native`, not both");
                None
            }
            (None, None) => {
                self.problem(
                    "component",
                    "missing: name the plugin's .wasm component (or `native` for a trusted shared library)",
                );
                None
            }
        };
        let wit = self
            .string("wit", t.get("wit"), false)
            .unwrap_or_else(|| DEFAULT_WIT.to_string());
        if let Err(e) = check_wit_version(&wit) {
            self.problem("wit", e);
        }
        let config = match t.get("config") {
            None => serde_json::Value::Object(Default::default()),
            Some(Value::Table(c)) => self.config_json("config", &Value::Table(c.clone())),
            Some(other) => {
                self.c.expected("config", "a table", other);
                serde_json::Value::Null
            }
        };
        let capabilities = self.capabilities(t.get("capabilities"));
        let limits = self.limits(t.get("limits"), kind.unwrap_or(PluginKind::Sink));
        let filter = self.filter(t.get("filter"));
        let acknowledgements = self.acknowledgements(t.get("acknowledgements"), kind);
        let event_json = self.boolean("event_json", t.get("event_json"), false);
        let event_record = self.event_record(t.get("event_record"), t.get("event_output"));
        let event_output = self.boolean("event_output", t.get("event_output"), true)
            && event_record == EventRecord::Full;
        let one_shot = self.boolean("one_shot", t.get("one_shot"), true);
        let tick_ms = self.positive("tick_ms", t.get("tick_ms"), 10_000);
        let shutdown_wait_ms = self.shutdown_wait(t.get("shutdown_wait_ms"), kind, &limits);
        let alerts = self.alert_routing(t.get("alerts"), kind);
        let mut requests = std::mem::take(&mut self.requests);
        requests.env = std::mem::take(&mut self.env_refs);
        requests.stderr = capabilities.stderr;
        requests.memory_mb = limits.memory_mb;
        requests.call_timeout_ms = limits.call_timeout_ms;
        requests.native = match &artifact {
            Some(Artifact::Native(path)) => Some(path.clone()),
            _ => None,
        };
        Some(Manifest {
            file: file.to_path_buf(),
            name: name?,
            version: version?,
            kind: kind?,
            description,
            artifact: artifact?,
            wit,
            config,
            capabilities,
            limits,
            filter,
            acknowledgements,
            event_json,
            event_output,
            event_record,
            one_shot,
            tick_ms,
            shutdown_wait_ms,
            alerts,
            requests,
        })
    }

    /// `event_record`: `full` (the default) or `figures`, which leaves the outputs out
    /// whatever `event_output` says: asking for both is refused.
    fn event_record(&mut self, v: Option<&Value>, event_output: Option<&Value>) -> EventRecord {
        let record = match self.string("event_record", v, false).as_deref() {
            None | Some("full") => EventRecord::Full,
            Some("figures") => EventRecord::Figures,
            Some(other) => {
                let hint = did_you_mean(other, ["full", "figures"]);
                self.problem(
                    "event_record",
                    format!("unknown record `{other}`{hint} (expected full or figures)"),
                );
                EventRecord::Full
            }
        };
        if record == EventRecord::Figures && event_output == Some(&Value::Boolean(true)) {
            self.problem(
                "event_record",
                "\"figures\" leaves the scripts' output out, and event_output = true asks for it: remove one of them",
            );
        }
        record
    }

    /// `shutdown_wait_ms`: pushers only, at most the plugin's call deadline.
    fn shutdown_wait(
        &mut self,
        v: Option<&Value>,
        kind: Option<PluginKind>,
        limits: &Limits,
    ) -> u64 {
        let field = "shutdown_wait_ms";
        let ms = match v {
            None => return 0,
            Some(Value::Integer(i)) if *i >= 0 => *i as u64,
            Some(other) => {
                self.c
                    .expected(field, "a whole number of milliseconds (0 or more)", other);
                return 0;
            }
        };
        if kind.is_some_and(|k| k != PluginKind::Pusher) {
            self.problem(
                field,
                "only a pusher keeps items to send after a flush: remove it, or make the plugin kind = \"pusher\"",
            );
            return 0;
        }
        if ms > limits.call_timeout_ms {
            self.problem(
                field,
                format!(
                    "{ms} is above limits.call_timeout_ms ({}): a plugin holds the host at shutdown no longer than one call may; lower it or raise the call deadline",
                    limits.call_timeout_ms
                ),
            );
            return 0;
        }
        ms
    }

    /// A notifier's `[alerts]` table: group wait, repeat interval, resolved or not, the
    /// least severity it takes.
    fn alert_routing(&mut self, v: Option<&Value>, kind: Option<PluginKind>) -> Routing {
        let mut r = Routing::default();
        let Some(t) = self.table("alerts", v) else {
            return r;
        };
        if kind.is_some_and(|k| k != PluginKind::Notifier) {
            self.problem(
                "alerts",
                "only notifiers are routed alerts: remove the table, or make the plugin `kind = \"notifier\"`",
            );
        }
        self.unknown_keys("alerts", t, ALERT_KEYS);
        let seconds = |this: &mut Self, key: &str, default: Duration, zero_ok: bool| -> Duration {
            let field = format!("alerts.{key}");
            match t.get(key) {
                None => default,
                Some(Value::Integer(i)) if *i > 0 || (zero_ok && *i == 0) => {
                    Duration::from_secs(*i as u64)
                }
                Some(Value::Float(f)) if f.is_finite() && (*f > 0.0 || (zero_ok && *f == 0.0)) => {
                    Duration::from_secs_f64(*f)
                }
                Some(other) => {
                    let want = if zero_ok {
                        "a number of seconds, 0 or more"
                    } else {
                        "a number of seconds above 0"
                    };
                    this.c.expected(&field, want, other);
                    default
                }
            }
        };
        r.group_by = self.group_by(t.get("group_by"));
        r.group_wait = seconds(self, "group_wait_s", r.group_wait, true);
        // Unset, the group interval is the group wait: a change waits as it did before
        // groups, every change its group wait (see `alerting::book`).
        r.group_interval = seconds(self, "group_interval_s", r.group_wait, true);
        r.repeat_interval = seconds(self, "repeat_interval_s", r.repeat_interval, false);
        r.send_resolved = self.boolean("alerts.send_resolved", t.get("send_resolved"), true);
        if let Some(s) = self.string("alerts.min_severity", t.get("min_severity"), false) {
            match s.as_str() {
                "warning" => r.min_severity = Severity::Warning,
                "critical" => r.min_severity = Severity::Critical,
                other => self.problem(
                    "alerts.min_severity",
                    format!("unknown severity `{other}` (expected warning or critical)"),
                ),
            }
        }
        r
    }

    /// `alerts.group_by`: label names (as matchers read them), or `"..."` alone; each once.
    fn group_by(&mut self, v: Option<&Value>) -> Vec<String> {
        let field = "alerts.group_by";
        let items = match v {
            None => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.c.expected(field, "a list of label names", other);
                return Vec::new();
            }
        };
        let mut seen = Vec::new();
        for (i, value) in items.iter().enumerate() {
            let item = format!("{field}[{i}]");
            let Some(name) = self.string(&item, Some(value), true) else {
                continue;
            };
            if name != GROUP_BY_ALL && !is_label_name(&name) {
                self.problem(
                    &item,
                    format!("`{name}` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, as `alertname`, `severity`, `specialist`, `script`), nor \"...\" (every label: each alert its own group)"),
                );
            } else if seen.contains(&name) {
                self.problem(&item, format!("`{name}` is listed twice: remove one"));
            } else {
                seen.push(name);
            }
        }
        if seen.len() > 1 && seen.iter().any(|n| n == GROUP_BY_ALL) {
            self.problem(
                field,
                "\"...\" groups by every label already: give it alone, or list the labels",
            );
            seen.retain(|n| n == GROUP_BY_ALL);
        }
        seen
    }

    /// The `[config]` table as JSON, with variables expanded in every string.
    fn config_json(&mut self, field: &str, v: &Value) -> serde_json::Value {
        match v {
            Value::String(s) => serde_json::Value::String(self.expand(field, s)),
            Value::Integer(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Boolean(b) => (*b).into(),
            Value::Datetime(d) => d.to_string().into(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.config_json(&format!("{field}[{i}]"), item))
                .collect(),
            Value::Table(t) => t
                .iter()
                .map(|(k, v)| (k.clone(), self.config_json(&config::field(field, k), v)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    fn capabilities(&mut self, v: Option<&Value>) -> Capabilities {
        let mut caps = Capabilities::default();
        let Some(t) = self.table("capabilities", v) else {
            return caps;
        };
        self.unknown_keys("capabilities", t, CAPABILITY_KEYS);
        match t.get("dirs") {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("capabilities.dirs[{i}]");
                    let Some(d) = self.table(&at, Some(item)) else {
                        continue;
                    };
                    self.unknown_keys(&at, d, DIR_KEYS);
                    let host = self.string(&format!("{at}.host"), d.get("host"), true);
                    let guest = self
                        .string(&format!("{at}.guest"), d.get("guest"), false)
                        .unwrap_or_else(|| "/data".into());
                    let writable = match self
                        .string(&format!("{at}.mode"), d.get("mode"), false)
                        .as_deref()
                    {
                        None | Some("ro") => false,
                        Some("rw") => true,
                        Some(other) => {
                            self.problem(
                                &format!("{at}.mode"),
                                format!("expected \"ro\" or \"rw\", found {other:?}"),
                            );
                            false
                        }
                    };
                    let create = self.boolean(&format!("{at}.create"), d.get("create"), false);
                    if let Some(host) = host {
                        // Relative grants are relative to where the host runs, like
                        // METACLAUDE_LOG_DIR's default `.claude/logs/executions`.
                        let host = std::path::absolute(&host).unwrap_or_else(|_| host.into());
                        self.requests.dirs.push(DirRequest {
                            written: written(d.get("host")),
                            path: host.clone(),
                            writable,
                        });
                        caps.dirs.push(DirGrant {
                            host,
                            guest,
                            writable,
                            create,
                        });
                    }
                }
            }
            Some(other) => self.problem(
                "capabilities.dirs",
                format!(
                    "expected a list of {{ host, guest, mode }} tables, found {}",
                    other.describe()
                ),
            ),
        }
        caps.udp = self.strings("capabilities.udp", t.get("udp"));
        for (i, target) in caps.udp.clone().iter().enumerate() {
            let port_ok = target
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                self.problem(
                    &format!("capabilities.udp[{i}]"),
                    format!("expected host:port, found {target:?}"),
                );
            }
        }
        self.requests.udp = pair(t.get("udp"), &caps.udp);
        caps.http = self.strings("capabilities.http", t.get("http"));
        self.requests.http = pair(t.get("http"), &caps.http);
        caps.stderr = self.boolean("capabilities.stderr", t.get("stderr"), false);
        for (i, pattern) in caps.http.clone().iter().enumerate() {
            if let Err(e) = crate::plugin::http::outbound::parse_grant(pattern) {
                self.problem(
                    &format!("capabilities.http[{i}]"),
                    format!(
                        "expected scheme://host[:port][/path] (`*` matches any run of characters), found {pattern:?}, which {e}"
                    ),
                );
            }
        }
        caps
    }

    fn limits(&mut self, v: Option<&Value>, kind: PluginKind) -> Limits {
        let mut l = Limits::defaults(kind);
        let Some(t) = self.table("limits", v) else {
            return l;
        };
        self.unknown_keys("limits", t, LIMIT_KEYS);
        l.memory_mb = self.bounded(
            "limits.memory_mb",
            t.get("memory_mb"),
            l.memory_mb,
            MAX_MEMORY_MB,
        );
        l.call_timeout_ms = self.bounded(
            "limits.call_timeout_ms",
            t.get("call_timeout_ms"),
            l.call_timeout_ms,
            MAX_CALL_TIMEOUT_MS,
        );
        l.queue = self.bounded("limits.queue", t.get("queue"), l.queue as u64, MAX_QUEUE) as usize;
        l.batch_max = self.bounded(
            "limits.batch_max",
            t.get("batch_max"),
            l.batch_max as u64,
            MAX_BATCH,
        ) as usize;
        l.batch_max_mb = (l.memory_mb / BATCH_SHARE_OF_MEMORY).max(1);
        if let Some(v) = t.get("batch_max_mb") {
            let mb = self.positive("limits.batch_max_mb", Some(v), l.batch_max_mb);
            if mb >= l.memory_mb {
                self.problem(
                    "limits.batch_max_mb",
                    format!(
                        "{mb} MiB of events per call cannot fit in limits.memory_mb = {}: \
                         use at most {} (a quarter), or raise memory_mb",
                        l.memory_mb,
                        (l.memory_mb / 4).max(1)
                    ),
                );
            } else {
                l.batch_max_mb = mb;
            }
        }
        l.batch_ms = self.positive("limits.batch_ms", t.get("batch_ms"), l.batch_ms);
        l.max_failures = self.positive(
            "limits.max_failures",
            t.get("max_failures"),
            l.max_failures as u64,
        ) as u32;
        l.failure_window_s = self.positive(
            "limits.failure_window_s",
            t.get("failure_window_s"),
            l.failure_window_s,
        );
        l.core_dump = self.boolean("limits.core_dump", t.get("core_dump"), l.core_dump);
        match self
            .string("limits.on_full", t.get("on_full"), false)
            .as_deref()
        {
            None => {}
            Some("block") => l.on_full = OnFull::Block,
            Some("drop_newest") => l.on_full = OnFull::DropNewest,
            Some(other) => {
                let hint = did_you_mean(other, ["block", "drop_newest"]);
                self.problem(
                    "limits.on_full",
                    format!("unknown policy `{other}`{hint} (expected block or drop_newest)"),
                );
            }
        }
        match self
            .string("limits.failure_policy", t.get("failure_policy"), false)
            .as_deref()
        {
            None => {}
            Some("reload") => l.failure_policy = FailurePolicy::Reload,
            Some("disable") => l.failure_policy = FailurePolicy::Disable,
            Some(other) => {
                let hint = did_you_mean(other, ["reload", "disable"]);
                self.problem(
                    "limits.failure_policy",
                    format!("unknown policy `{other}`{hint} (expected reload or disable)"),
                );
            }
        }
        l
    }

    fn acknowledgements(
        &mut self,
        v: Option<&Value>,
        kind: Option<PluginKind>,
    ) -> Acknowledgements {
        let mut a = Acknowledgements::default();
        let Some(t) = self.table("acknowledgements", v) else {
            return a;
        };
        self.unknown_keys("acknowledgements", t, ACK_KEYS);
        a.enabled = self.boolean("acknowledgements.enabled", t.get("enabled"), a.enabled);
        a.timeout_ms = self.positive(
            "acknowledgements.timeout_ms",
            t.get("timeout_ms"),
            a.timeout_ms,
        );
        a.sync = self.boolean("acknowledgements.sync", t.get("sync"), a.sync);
        if let Some(kind) =
            kind.filter(|k| a.enabled && !matches!(k, PluginKind::Sink | PluginKind::Exporter))
        {
            self.problem(
                "acknowledgements.enabled",
                format!("only sinks and exporters store executions; a {kind} cannot acknowledge them (remove [acknowledgements])"),
            );
        }
        a
    }

    fn filter(&mut self, v: Option<&Value>) -> Filter {
        let mut f = Filter::default();
        let Some(t) = self.table("filter", v) else {
            return f;
        };
        self.unknown_keys("filter", t, FILTER_KEYS);
        f.specialists = self.strings("filter.specialists", t.get("specialists"));
        f.scripts = self.strings("filter.scripts", t.get("scripts"));
        f.kinds = self.strings("filter.kinds", t.get("kinds"));
        for (i, k) in f.kinds.clone().iter().enumerate() {
            if !LIFECYCLE_KINDS.contains(&k.as_str()) {
                let hint = did_you_mean(k, LIFECYCLE_KINDS.iter().copied());
                self.problem(
                    &format!("filter.kinds[{i}]"),
                    format!(
                        "unknown lifecycle kind `{k}`{hint} (expected one of {})",
                        LIFECYCLE_KINDS.join(", ")
                    ),
                );
            }
        }
        f.success = t
            .get("success")
            .map(|v| self.boolean("filter.success", Some(v), false));
        f
    }
}

/// A string value as the manifest writes it (empty for anything else).
fn written(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

/// The strings of a list as written, beside their expansions (`values`, the valid ones):
/// the pairs a grant is checked against. An invalid entry makes the manifest invalid, so
/// the lists line up whenever the pairs are used.
fn pair(list: Option<&Value>, values: &[String]) -> Vec<Written> {
    let written: Vec<String> = match list {
        Some(Value::Array(items)) => items.iter().map(|i| written(Some(i))).collect(),
        _ => Vec::new(),
    };
    written
        .into_iter()
        .zip(values)
        .map(|(written, value)| Written {
            written,
            value: value.clone(),
        })
        .collect()
}
