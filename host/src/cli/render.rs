//! Text for people: what the commands print when not asked for JSON. Each function
//! returns the text; the commands decide where it goes.

use std::fmt::Write as _;
use std::path::Path;

use metaclaude::batch::BatchSummary;
use metaclaude::model::ExecutionResult;
use metaclaude::model::{Alert, AlertStatus};
use metaclaude::plugin::grants::{Ask, Grant};
use metaclaude::plugin::manifest::WitVersion;
use metaclaude::plugin::runtime::engine::LoadSource;
use metaclaude::plugin::{Admission, DestinationReport, PluginError, PluginInfo};

/// `s` when `n` is not one.
fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `metaclaude registry check`'s answer for a good registry.
pub fn registry_ok(file: &Path, scripts: usize) -> String {
    format!(
        "{}: ok, {scripts} script{}",
        file.display(),
        plural(scripts)
    )
}

/// The result of `metaclaude run`: outcome, ids, measurements, suggestions, the tail of
/// the stack trace and of stdout.
pub fn execution_summary(r: &ExecutionResult) -> String {
    let u = &r.resource_usage;
    let attempts = r.attempts.len();
    let exit = match (&r.exit_code, &r.signal) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by {s}"),
        (None, None) => "not run".into(),
    };
    let mut out = String::new();
    if r.success {
        let _ = write!(
            out,
            "{}: success ({exit}) in {:.3}s",
            r.script_id, u.wall_time_seconds
        );
    } else if let Some(e) = &r.error_details {
        let _ = write!(
            out,
            "{}: FAILED [{}] {}",
            r.script_id, e.category, e.message
        );
        let _ = write!(out, "\n  {exit}");
    }
    let _ = write!(
        out,
        "\n  execution {}, {attempts} attempt{}, {} retr{}",
        r.execution_id,
        plural(attempts),
        r.retries,
        if r.retries == 1 { "y" } else { "ies" }
    );
    if attempts > 0 {
        let _ = write!(
            out,
            "\n  memory: start {:.1} MB, end {:.1} MB, peak {:.1} MB ({:?}; largest process {:.1} MB)",
            u.memory_start_mb,
            u.memory_end_mb,
            u.peak_memory_mb,
            u.peak_memory_source,
            u.peak_memory_largest_process_mb
        );
        let _ = write!(
            out,
            "\n  cpu: {:.3}s (user {:.3}s, system {:.3}s; {:?}), wall {:.3}s",
            u.cpu_time_seconds,
            u.cpu_user_seconds,
            u.cpu_system_seconds,
            u.cpu_time_source,
            u.wall_time_seconds
        );
    }
    if let Some(e) = &r.error_details {
        if !e.suggestions.is_empty() {
            out += "\n  suggestions:";
            for s in &e.suggestions {
                let _ = write!(out, "\n    - {s}");
            }
        }
        if let Some(trace) = &e.stack_trace {
            out += "\n  stack trace:";
            let lines: Vec<&str> = trace.lines().collect();
            for line in &lines[lines.len().saturating_sub(12)..] {
                let _ = write!(out, "\n    {line}");
            }
        }
    }
    let stdout = r.stdout.trim_end();
    if !stdout.is_empty() {
        out += "\n  stdout:";
        let lines: Vec<&str> = stdout.lines().collect();
        if lines.len() > 20 {
            let _ = write!(
                out,
                "\n    ... {} earlier lines (see --json)",
                lines.len() - 20
            );
        }
        for line in &lines[lines.len().saturating_sub(20)..] {
            let _ = write!(out, "\n    {line}");
        }
    }
    out
}

/// `metaclaude batch`'s last line on stderr.
pub fn batch_summary(summary: &BatchSummary) -> String {
    let mut out = format!(
        "metaclaude: {} succeeded, {} failed",
        summary.succeeded, summary.failed
    );
    if summary.bad_lines > 0 {
        let _ = write!(out, ", {} bad request line(s)", summary.bad_lines);
    }
    if summary.unrecorded > 0 {
        let _ = write!(out, ", {} not recorded", summary.unrecorded);
    }
    if summary.interrupted {
        out += " (interrupted)";
    }
    out
}

/// The first columns of a plugin table, left-aligned.
const HEADINGS: [&str; 4] = ["NAME", "KIND", "VERSION", "STATE"];
/// The counts of `plugins list`: (heading, width, the API's key), right-aligned.
const COUNTS: &[(&str, usize, &str)] = &[
    ("QUEUED", 8, "queued"),
    ("DELIVERED", 9, "delivered"),
    ("DROPPED", 7, "dropped"),
    ("FAILURES", 8, "failures"),
    ("RESTARTS", 8, "restarts"),
];
/// The counts of `plugins list --server`: those and the calls the plugin refused.
const LIVE_COUNTS: [(&str, usize, &str); 6] = [
    ("QUEUED", 8, "queued"),
    ("DELIVERED", 9, "delivered"),
    ("DROPPED", 7, "dropped"),
    ("FAILURES", 8, "failures"),
    ("REFUSED", 8, "refused"),
    ("RESTARTS", 8, "restarts"),
];

/// One line of a plugin table: `cells` under [`HEADINGS`], then each count (the
/// headings when `counts` is `None`) right-aligned under its column.
fn table_line(cells: [&str; 4], columns: &[(&str, usize, &str)], counts: Option<&[u64]>) -> String {
    let mut line = format!(
        "{:<20} {:<10} {:<9} {:<12}",
        cells[0], cells[1], cells[2], cells[3]
    );
    for (i, (heading, width, _)) in columns.iter().enumerate() {
        let _ = match counts {
            Some(c) => write!(line, " {:>width$}", c[i]),
            None => write!(line, " {heading:>width$}"),
        };
    }
    line
}

/// `metaclaude plugins list`: each plugin loaded (with what it asks for and what it is
/// granted), each native library inspected, then what would not load.
/// What a plugin that sends elsewhere reports of its deliveries, a line per destination
/// (and its last error on the next), for `plugins list`.
pub fn deliveries(p: &PluginInfo) -> String {
    delivery_lines(&p.destinations, p.destinations_left_out)
}

fn delivery_lines(destinations: &[DestinationReport], left_out: usize) -> String {
    let mut out = String::new();
    for d in destinations {
        let _ = writeln!(
            out,
            "  delivers to {}: {} {unit} pending, {} sent, {} dropped; {} failed requests ({} retried){}",
            d.destination,
            d.pending,
            d.sent,
            d.dropped,
            d.failed_requests,
            d.retried_requests,
            d.last_success_at
                .map(|t| format!("; last success {}", metaclaude::model::timestamp::format(&t)))
                .unwrap_or_default(),
            unit = d.unit,
        );
        if let Some(e) = &d.last_error {
            let at = d
                .last_error_at
                .map(|t| format!(" at {}", metaclaude::model::timestamp::format(&t)))
                .unwrap_or_default();
            let _ = writeln!(out, "    last delivery error{at}: {e}");
        }
    }
    if left_out > 0 {
        let _ = writeln!(out, "  ({left_out} more destinations reported, not kept)");
    }
    out
}

pub fn plugin_table(
    dir: &Path,
    grants_file: Option<&Path>,
    plugins: &[PluginInfo],
    admitted: &[Admission],
    inspected: &[Admission],
    errors: &[PluginError],
) -> String {
    let mut out = format!("plugins in {}:\n", dir.display());
    if let Some(f) = grants_file {
        let _ = writeln!(out, "grants in {}", f.display());
    }
    let _ = writeln!(out, "{}  LOADED", table_line(HEADINGS, COUNTS, None));
    for p in plugins {
        let state = p.health.describe();
        let cells = [p.name.as_str(), p.kind.as_str(), &p.version, &state];
        let counts = [p.queued, p.delivered, p.dropped, p.failures, p.restarts];
        let _ = writeln!(
            out,
            "{}  {} in {} ms",
            table_line(cells, COUNTS, Some(&counts)),
            load_source(p.load),
            p.load_time.as_millis()
        );
        let _ = writeln!(
            out,
            "  folder: {}{}",
            p.folder.display(),
            if p.sandboxed {
                ""
            } else {
                "  (TRUSTED native plugin: unsandboxed)"
            }
        );
        let _ = writeln!(out, "  capabilities: {}", p.capabilities);
        if let Some(g) = admitted
            .iter()
            .find(|a| a.manifest.name == p.name)
            .and_then(|a| a.grant.as_ref())
        {
            let _ = writeln!(out, "  granted: {}", describe_grant(g));
        }
        for n in &p.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        if let Some(e) = &p.last_error {
            let _ = writeln!(out, "  last error: {e}");
        }
        out.push_str(&deliveries(p));
    }
    for a in inspected {
        let m = &a.manifest;
        let _ = writeln!(
            out,
            "{:<20} {:<10} {:<9} {:<12}  native library, inspected (plugins list never loads native code)",
            m.name,
            m.kind.as_str(),
            m.version,
            if a.granted() { "granted" } else { "NOT GRANTED" },
        );
        let _ = writeln!(
            out,
            "  folder: {}  (TRUSTED native plugin: unsandboxed)",
            m.file.parent().unwrap_or(Path::new(".")).display()
        );
        out.push_str(&native_lines(a));
    }
    for e in errors {
        let _ = writeln!(out, "FAILED TO LOAD: {e}");
    }
    out
}

/// `metaclaude plugins list --server URL`: each plugin of the running server (the JSON
/// of its `/api/v1/plugins`) with its live counters; `REFUSED` counts the calls it
/// answered with an error (a notifier's failed deliveries), the last of which is shown,
/// then what it reports of each destination it delivers to. Every string is the
/// server's, made terminal-safe. Also says whether every plugin is running.
pub fn plugin_table_live(url: &str, answer: &serde_json::Value) -> (String, bool) {
    let text = |v: &serde_json::Value| terminal_safe(v.as_str().unwrap_or("?"));
    let count = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let mut out = format!("plugins of the server at {}", terminal_safe(url));
    if let Some(dir) = answer["plugins_dir"].as_str() {
        let _ = write!(out, " (from {})", terminal_safe(dir));
    }
    out.push_str(":\n");
    let _ = writeln!(out, "{}", table_line(HEADINGS, &LIVE_COUNTS, None));
    let none = Vec::new();
    let mut all_running = true;
    for p in answer["plugins"].as_array().unwrap_or(&none) {
        let cells = ["name", "kind", "version", "state"].map(|k| text(&p[k]));
        let counts = LIVE_COUNTS.map(|(_, _, key)| count(&p[key]));
        let cells = [&*cells[0], &cells[1], &cells[2], &cells[3]];
        let _ = writeln!(out, "{}", table_line(cells, &LIVE_COUNTS, Some(&counts)));
        let _ = writeln!(out, "  capabilities: {}", text(&p["capabilities"]));
        if p["reason"].is_string() {
            let _ = writeln!(out, "  reason: {}", text(&p["reason"]));
        }
        if p["last_error"].is_string() {
            let _ = writeln!(out, "  last error: {}", text(&p["last_error"]));
        }
        all_running &= p["state"].as_str() == Some("running");
        out.push_str(&delivery_lines(&destinations_of(p), 0));
    }
    (out, all_running)
}

/// The destination reports of one plugin of `GET /api/v1/plugins`, terminal-safe.
fn destinations_of(p: &serde_json::Value) -> Vec<DestinationReport> {
    let text = |d: &serde_json::Value, key: &str| terminal_safe(d[key].as_str().unwrap_or(""));
    let number = |d: &serde_json::Value, key: &str| d[key].as_u64().unwrap_or(0);
    let time = |d: &serde_json::Value, key: &str| {
        d[key]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    p["destinations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| DestinationReport {
            destination: text(d, "destination"),
            unit: text(d, "unit"),
            pending: number(d, "pending"),
            sent: number(d, "sent"),
            dropped: number(d, "dropped"),
            failed_requests: number(d, "failed_requests"),
            retried_requests: number(d, "retried_requests"),
            last_error: d["last_error"].as_str().map(terminal_safe),
            last_error_at: time(d, "last_error_at"),
            last_success_at: time(d, "last_success_at"),
        })
        .collect()
}

/// A grant as `plugins list` shows it.
pub fn describe_grant(g: &Grant) -> String {
    let mut parts: Vec<String> = g
        .dirs
        .iter()
        .map(|d| format!("dir {} ({})", d.host, if d.writable { "rw" } else { "ro" }))
        .collect();
    parts.extend(g.udp.iter().map(|u| format!("udp {u}")));
    parts.extend(g.http.iter().map(|h| format!("http {h}")));
    if !g.env.is_empty() {
        parts.push(format!(
            "env {}",
            g.env.iter().cloned().collect::<Vec<_>>().join(" ")
        ));
    }
    if g.stderr {
        parts.push("stderr".into());
    }
    if let Some(d) = &g.native_sha256 {
        parts.push(format!("native code sha256 {d}"));
    }
    parts.push(format!("memory {} MiB", g.memory_mb));
    parts.push(format!("{} ms a call", g.call_timeout_ms));
    if let Some(t) = &g.granted {
        parts.push(format!("since {t}"));
    }
    parts.join(", ")
}

/// The library of a native plugin, its digest and its grant, without loading it.
fn native_lines(a: &Admission) -> String {
    let mut out = String::new();
    if let (Some(code), Some(file)) = (&a.native, &a.manifest.requests.native) {
        let _ = writeln!(
            out,
            "  library: {} (sha256 {})",
            file.display(),
            code.sha256
        );
    }
    match (&a.grant, a.granted()) {
        (Some(g), true) => {
            let _ = writeln!(out, "  granted: {}", describe_grant(g));
        }
        _ => {
            for m in &a.missing {
                let _ = writeln!(out, "  not granted: {m}");
            }
            let _ = writeln!(out, "  {}", fix_of(a));
        }
    }
    out
}

/// The refusal's last line: what to run (or change).
fn fix_of(a: &Admission) -> String {
    match a.refusal() {
        PluginError::NotGranted(n) => n.fix.clone(),
        other => other.to_string(),
    }
}

/// `plugins check` of a native plugin: what the file is and whether it is granted; it is
/// never loaded by a check.
pub fn native_inspected(dir: &Path, a: &Admission) -> String {
    let m = &a.manifest;
    let mut text = format!(
        "{}: plugin {} {} ({}), a TRUSTED native library (unsandboxed), an ELF shared object; not loaded: plugins check never runs native code\n",
        dir.join("plugin.toml").display(),
        m.name,
        m.version,
        m.kind.as_str(),
    );
    text.push_str(&native_lines(a));
    text.trim_end().to_string()
}

/// `plugins check` of a WebAssembly plugin that is not granted: valid as far as can be
/// seen without running it, and what it asks for.
pub fn plugin_not_granted(dir: &Path, a: &Admission, wit: WitVersion, notes: &[String]) -> String {
    let m = &a.manifest;
    let mut text = format!(
        "{}: plugin {} {} ({}) exports the `{}` world of metaclaude:monitor@{}, but is NOT GRANTED what it asks for, so none of it ran (init not called):\n",
        dir.join("plugin.toml").display(),
        m.name,
        m.version,
        m.kind.as_str(),
        m.kind.as_str(),
        wit.as_str()
    );
    for ask in &a.missing {
        let _ = writeln!(text, "  - {ask}");
    }
    let _ = write!(text, "  {}", fix_of(a));
    for n in notes {
        let _ = write!(text, "\n  note: {n}");
    }
    text
}

/// What `plugins grant` shows before asking: everything the plugin asks for, the part
/// not granted yet marked.
pub fn grant_prompt(a: &Admission, asks: &[Ask]) -> String {
    let m = &a.manifest;
    let mut out = format!(
        "{} {} ({}) in {} asks for:\n",
        m.name,
        m.version,
        m.kind.as_str(),
        m.file.parent().unwrap_or(Path::new(".")).display()
    );
    for ask in asks {
        let new = a.grant.is_some() && a.missing.contains(ask);
        let _ = writeln!(out, "  - {ask}{}", if new { "   (NEW)" } else { "" });
    }
    out
}

/// How a plugin's code was obtained, as `plugins list` says it.
pub fn load_source(load: LoadSource) -> &'static str {
    match load {
        LoadSource::Cache => "from cache",
        LoadSource::Compiled => "compiled",
        LoadSource::Native => "native library",
    }
}

/// `metaclaude plugins check`'s answer for a good plugin folder: the version of the
/// contract its component was built against, and a word when that is older than the
/// SDK's (0.1.0, 0.2.0: they lack what later versions added).
pub fn plugin_ok(dir: &Path, p: &PluginInfo, a: &Admission) -> String {
    let what = if let (true, Some(v)) = (p.sandboxed, p.wit) {
        let mut what = format!(
            "exports the `{}` world of metaclaude:monitor@{}",
            p.kind.as_str(),
            v.as_str()
        );
        if v < WitVersion::DEFAULT {
            what.push_str(&format!(
                " (built against an older version, which still loads; rebuild against @{} for what it adds)",
                WitVersion::CURRENT.as_str()
            ));
        }
        what
    } else {
        "a TRUSTED native library (unsandboxed), native ABI v1".to_string()
    };
    let mut text = format!(
        "{}: ok: plugin {} {} ({}), {what}, init accepted its config\n  capabilities: {}",
        dir.join("plugin.toml").display(),
        p.name,
        p.version,
        p.kind.as_str(),
        p.capabilities
    );
    if let Some(g) = &a.grant {
        text.push_str(&format!(
            "\n  granted: {} (in {})",
            describe_grant(g),
            a.grants_file.display()
        ));
    }
    for n in &p.notes {
        text.push_str(&format!("\n  note: {n}"));
    }
    text
}

/// `metaclaude plugins new`'s answer: what was made and how to build, check and use it.
pub fn scaffold_made(made: &metaclaude::scaffold::Scaffold, kind: &str, name: &str) -> String {
    let mut out = format!(
        "created {kind} plugin `{name}` in {}:\n",
        made.dir.display()
    );
    for f in &made.files {
        let _ = writeln!(out, "  {}", f.display());
    }
    let _ = writeln!(
        out,
        "build it:   cd {} && {}",
        made.dir.display(),
        made.build
    );
    let _ = writeln!(
        out,
        "check it:   metaclaude plugins check {}",
        made.dir.display()
    );
    let _ = writeln!(
        out,
        "use it:     copy the folder into your plugins directory, then grant it what it asks for:"
    );
    let _ = write!(
        out,
        "            metaclaude plugins grant {name} --plugins <that directory>"
    );
    out
}

/// A report (the JSON of `GET /api/v1/stats`, from a server or the log) for people.
pub fn report(r: &serde_json::Value, from: &str) -> String {
    let w = &r["window"];
    let o = &w["overall"];
    let secs = |v: &serde_json::Value| v.as_f64().map_or("-".to_string(), |s| format!("{s:.3}s"));
    let num = |v: &serde_json::Value| v.as_f64().map_or("-".to_string(), |n| format!("{n:.1}"));
    let period = r["period_minutes"].as_u64().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Executions ({}, from {from}): {}   running now: {}   since start: {}",
        if period == 0 {
            "all".to_string()
        } else {
            format!("last {period} min")
        },
        o["count"],
        r["running"],
        r["since_start"]["executions"]
    );
    let _ = writeln!(
        out,
        "Success rate:   {}%   ({} succeeded, {} failed, {} retries; {:.1} executions/min)",
        num(&o["success_rate"]),
        o["successes"],
        o["failures"],
        o["retries"],
        r["executions_per_minute"].as_f64().unwrap_or(0.0)
    );
    let d = &o["duration_seconds"];
    let _ = writeln!(
        out,
        "Duration:       avg {}  p50 {}  p90 {}  p95 {}  p99 {}  max {}",
        secs(&d["avg"]),
        secs(&d["p50"]),
        secs(&d["p90"]),
        secs(&d["p95"]),
        secs(&d["p99"]),
        secs(&d["max"])
    );
    let _ = writeln!(
        out,
        "Peak memory:    avg {} MB  max {} MB     CPU: {} in all",
        num(&o["peak_memory_mb"]["avg"]),
        num(&o["peak_memory_mb"]["max"]),
        secs(&o["cpu_time_seconds_total"])
    );
    let categories: Vec<String> = o["failures_by_category"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Failures:       {}",
        if categories.is_empty() {
            "none".to_string()
        } else {
            categories.join(", ")
        }
    );
    for (title, key) in [
        ("Top scripts", "top_scripts"),
        ("Top specialists", "top_specialists"),
    ] {
        let _ = writeln!(out, "{title}:");
        for g in w[key].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  {:<32} {:>6} runs  {:>6}% ok  p95 {:>9}  peak {:>7} MB",
                g["key"].as_str().unwrap_or("-"),
                g["count"],
                num(&g["success_rate"]),
                secs(&g["duration_seconds"]["p95"]),
                num(&g["peak_memory_mb"]["max"])
            );
        }
    }
    let p = &r["percentiles"]["duration_seconds"];
    let _ = write!(out, "Duration by window (sketch, at most 1% error):");
    for win in ["1m", "5m", "60m", "start"] {
        let q = &p[win];
        let _ = write!(
            out,
            "\n  {win:<6} {:>6} runs  p50 {:>9}  p95 {:>9}  p99 {:>9}",
            q["count"],
            secs(&q["p50"]),
            secs(&q["p95"]),
            secs(&q["p99"])
        );
    }
    if w["complete"] == false {
        let _ = write!(
            out,
            "\n(memory holds executions since {} only; the log has the rest)",
            w["oldest_held"].as_str().unwrap_or("?")
        );
    }
    out
}

/// Text from elsewhere (a plugin, a script, a registry) made safe for a terminal: control
/// characters and escape sequences dropped, tabs kept.
pub fn terminal_safe(s: &str) -> String {
    s.chars()
        .filter(|c| *c == '\t' || !c.is_control())
        .collect()
}

/// Alerts for people, a line each: severity, status, type, labels (`script=backup
/// specialist=ops`; the specialist alone for an alert without labels), since when, message.
pub fn alerts(alerts: &[Alert], from: &str) -> String {
    let mut out = String::new();
    if alerts.is_empty() {
        let _ = writeln!(out, "no alerts (from {from})");
        return out;
    }
    let _ = writeln!(out, "{} alert(s), from {from}:", alerts.len());
    for a in alerts {
        let status = match a.status {
            AlertStatus::Firing => "FIRING",
            AlertStatus::Resolved => "resolved",
        };
        let specialist = if a.labels.is_empty() {
            a.specialist
                .as_deref()
                .map(|s| format!(" specialist={}", terminal_safe(s)))
                .unwrap_or_default()
        } else {
            a.labels
                .iter()
                .map(|(k, v)| format!(" {}={}", terminal_safe(k), terminal_safe(v)))
                .collect()
        };
        let when = match a.ends_at {
            Some(end) => format!(
                "{} .. {}",
                metaclaude::model::timestamp::format(&a.starts_at),
                metaclaude::model::timestamp::format(&end)
            ),
            None => format!(
                "since {}",
                metaclaude::model::timestamp::format(&a.starts_at)
            ),
        };
        let muted = if !a.silenced_by.is_empty() {
            format!("  silenced by {}", terminal_safe(&a.silenced_by.join(", ")))
        } else if !a.inhibited_by.is_empty() {
            format!(
                "  inhibited by {}",
                terminal_safe(&a.inhibited_by.join(", "))
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {:<8} {:<8} {}{specialist}  {when}{muted}\n           {}",
            a.severity.as_str(),
            status,
            terminal_safe(&a.kind),
            terminal_safe(&a.message)
        );
    }
    out
}

/// The thresholds of `GET /api/v1/alerts/thresholds`, by rule.
pub fn thresholds(v: &serde_json::Value) -> String {
    let mut out = String::new();
    let rules = v["rules"].as_array().cloned().unwrap_or_default();
    if rules.is_empty() {
        let _ = writeln!(out, "no alert rule is loaded");
    }
    for r in rules {
        let name = terminal_safe(r["plugin"].as_str().unwrap_or("?"));
        if let Some(e) = r["error"].as_str() {
            let _ = writeln!(out, "{name}: {}", terminal_safe(e));
            continue;
        }
        let _ = writeln!(out, "{name}:");
        for t in r["thresholds"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  {:<40} {:>10}  {}",
                terminal_safe(t["name"].as_str().unwrap_or("?")),
                t["value"]
                    .as_f64()
                    .map_or("?".to_string(), |v| v.to_string()),
                terminal_safe(t["description"].as_str().unwrap_or(""))
            );
        }
    }
    out
}

/// `schedule list`: one line per scheduled script of the server's answer
/// (`GET /api/v1/schedules`), times in UTC to the second.
pub fn schedules(v: &serde_json::Value, from: &str) -> String {
    let mut out = String::new();
    let list = v["schedules"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        let _ = writeln!(
            out,
            "no scheduled script on {from} (give one a run_schedule in the registry)"
        );
        return out;
    }
    let text = |v: &serde_json::Value| terminal_safe(v.as_str().unwrap_or("-"));
    let time = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or("-".to_string(), |t| {
                t.with_timezone(&chrono::Utc)
                    .format("%Y-%m-%d %H:%M:%SZ")
                    .to_string()
            })
    };
    let rows: Vec<[String; 7]> = list
        .iter()
        .map(|s| {
            let last = &s["last_run"];
            let last_run = if last.is_null() {
                "-".to_string()
            } else {
                format!(
                    "{} {}",
                    time(&last["started_at"]),
                    last["result"].as_str().unwrap_or("running")
                )
            };
            let m = &s["missed"];
            let count = |k: &str| m[k].as_u64().unwrap_or(0);
            [
                text(&s["script"]),
                format!("{} ({})", text(&s["cron"]), text(&s["timezone"])),
                text(&s["overlap"]),
                text(&s["state"]),
                last_run,
                time(&s["next_run"]),
                format!(
                    "{}/{}/{}",
                    count("host_down"),
                    count("overlap"),
                    count("busy")
                ),
            ]
        })
        .collect();
    let heads = [
        "SCRIPT",
        "SCHEDULE",
        "OVERLAP",
        "STATE",
        "LAST RUN",
        "NEXT RUN",
        "MISSED (DOWN/OVERLAP/BUSY)",
    ];
    let widths: Vec<usize> = (0..heads.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([heads[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let pad = widths[i] - c.chars().count();
                l.push_str(c);
                l.push_str(&" ".repeat(pad + 2));
            }
        }
        l
    };
    let _ = writeln!(out, "{}", line(heads.to_vec()));
    for r in &rows {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_servers_plugins_show_their_refusals_and_last_error_as_safe_text() {
        let answer = serde_json::json!({"plugins_dir": "/p", "plugins": [
            {"name": "am-notifier", "kind": "notifier", "version": "0.1.0",
             "state": "running", "queued": 2, "delivered": 1, "dropped": 0, "failures": 0,
             "refused": 3, "restarts": 0, "capabilities": "http h",
             "last_error": "Alertmanager 2 of 2 did not take the alerts\u{1b}[2J: refused"},
            {"name": "quiet", "kind": "sink", "version": "1", "state": "quarantined",
             "reason": "trapped", "capabilities": "none", "last_error": null}
        ]});
        let (text, _) = plugin_table_live("http://127.0.0.1:8080", &answer);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "plugins of the server at http://127.0.0.1:8080 (from /p):"
        );
        assert!(lines[1].ends_with("FAILURES  REFUSED RESTARTS"), "{text}");
        // Each count under its heading.
        let refused_at = lines[1].find(" REFUSED").unwrap() + " REFUSED".len();
        assert_eq!(&lines[2][refused_at - 1..refused_at], "3", "{text}");
        assert_eq!(
            lines[4],
            "  last error: Alertmanager 2 of 2 did not take the alerts[2J: refused"
        );
        assert_eq!(lines[7], "  reason: trapped");
        assert_eq!(
            lines.len(),
            8,
            "no last error shown when there is none: {text}"
        );
    }

    #[test]
    fn the_batch_summary_names_only_what_happened() {
        let mut s = BatchSummary {
            succeeded: 3,
            failed: 1,
            ..BatchSummary::default()
        };
        assert_eq!(batch_summary(&s), "metaclaude: 3 succeeded, 1 failed");
        s.bad_lines = 2;
        s.unrecorded = 1;
        s.interrupted = true;
        assert_eq!(
            batch_summary(&s),
            "metaclaude: 3 succeeded, 1 failed, 2 bad request line(s), 1 not recorded (interrupted)"
        );
    }
}
