//! Inhibition, as Alertmanager has it: while a *source* alert fires, the *target* alerts
//! that share its values of the `equal` labels are not notified (the book records them,
//! marked with the sources' fingerprints).
//!
//! * Built in (on unless the rules file turns it off): a firing critical alert inhibits
//!   the warning alerts that have the same labels (specialist and every label, at least
//!   one) whatever their type, e.g. `script_missed{script=backup}` (critical) inhibits
//!   `script_overdue{script=backup}` (warning). An alert of the same type and labels is
//!   the same alert in the book (its severity changes, it is never both), hence "whatever
//!   their type"; alerts without any label (about all executions together) are left out,
//!   or any such critical alert would hide every such warning.
//! * Configured: `--inhibit-rules FILE` (TOML), Alertmanager's `inhibit_rules` with our
//!   matchers:
//!
//! ```toml
//! critical_inhibits_warning = true   # the built-in rule (default true)
//!
//! [[inhibit_rules]]
//! source_matchers = ["type=plugin_quarantined"]
//! target_matchers = ["severity=warning"]
//! equal = ["specialist"]
//! ```
//!
//! As in Alertmanager, a label missing from both alerts is equal (empty in both), and an
//! alert matching both sides of a rule is not inhibited by alerts that do too (so it never
//! inhibits itself through them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::maintenance::{MaintenanceWindow, MAX_WINDOWS};
use super::matchers::{self, label, Matcher};
use crate::config::{self, Checker, ConfigError};
use crate::expectations::duration;
use crate::expectations::schedule::{Schedule, ScheduleError};
use crate::model::{Alert, AlertStatus, Severity};

/// Rules a file holds at most.
pub const MAX_RULES: usize = 100;

/// One configured rule.
#[derive(Debug, Clone, PartialEq)]
pub struct InhibitRule {
    /// What the inhibiting alerts match (all of them).
    pub source: Vec<Matcher>,
    /// What the inhibited alerts match (all of them).
    pub target: Vec<Matcher>,
    /// Labels whose values must be the same in both.
    pub equal: Vec<String>,
}

/// The rules in force (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct InhibitRules {
    /// The built-in rule: a firing critical alert inhibits the warnings of the same labels.
    pub critical_inhibits_warning: bool,
    /// The configured rules.
    pub rules: Vec<InhibitRule>,
    /// The file's recurring maintenance windows (`[[maintenance_windows]]`,
    /// [`super::maintenance`]): they mute as silences do.
    pub windows: Vec<MaintenanceWindow>,
}

impl Default for InhibitRules {
    /// The built-in rule alone.
    fn default() -> InhibitRules {
        InhibitRules {
            critical_inhibits_warning: true,
            rules: Vec::new(),
            windows: Vec::new(),
        }
    }
}

/// The labels of an alert but its type and severity, as one key; `None` without any.
fn same_labels_key(a: &Alert) -> Option<String> {
    (a.specialist.is_some() || !a.labels.is_empty()).then(|| {
        metaclaude_formats::alerts::fingerprint(
            "",
            a.specialist.as_deref(),
            a.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    })
}

impl InhibitRules {
    /// No rule at all, not even the built-in one.
    pub fn none() -> InhibitRules {
        InhibitRules {
            critical_inhibits_warning: false,
            rules: Vec::new(),
            windows: Vec::new(),
        }
    }

    /// For each alert of `alerts` that is inhibited, the fingerprints of the firing alerts
    /// inhibiting it (sorted, without repeats). Resolved alerts inhibit nothing.
    pub fn inhibited(&self, alerts: &[&Alert]) -> HashMap<String, Vec<String>> {
        let firing: Vec<&Alert> = alerts
            .iter()
            .copied()
            .filter(|a| a.status == AlertStatus::Firing)
            .collect();
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        if self.critical_inhibits_warning {
            let mut critical: HashMap<String, Vec<&str>> = HashMap::new();
            for a in firing.iter().filter(|a| a.severity == Severity::Critical) {
                if let Some(key) = same_labels_key(a) {
                    critical.entry(key).or_default().push(&a.fingerprint);
                }
            }
            if !critical.is_empty() {
                for t in alerts.iter().filter(|a| a.severity == Severity::Warning) {
                    let sources = same_labels_key(t).and_then(|k| critical.get(&k));
                    if let Some(sources) = sources {
                        let by = out.entry(t.fingerprint.clone()).or_default();
                        by.extend(sources.iter().map(|s| s.to_string()));
                    }
                }
            }
        }
        for rule in &self.rules {
            let key = |a: &Alert| -> Vec<String> {
                rule.equal.iter().map(|n| label(a, n).to_string()).collect()
            };
            // Sources by their values of the equal labels, each with whether it is a
            // target of the rule too.
            let mut sources: HashMap<Vec<String>, Vec<(&str, bool)>> = HashMap::new();
            for a in firing
                .iter()
                .filter(|a| matchers::all_match(&rule.source, a))
            {
                let also_target = matchers::all_match(&rule.target, a);
                sources
                    .entry(key(a))
                    .or_default()
                    .push((&a.fingerprint, also_target));
            }
            if sources.is_empty() {
                continue;
            }
            for t in alerts
                .iter()
                .filter(|a| matchers::all_match(&rule.target, a))
            {
                let Some(found) = sources.get(&key(t)) else {
                    continue;
                };
                let t_is_source = matchers::all_match(&rule.source, t);
                let by: Vec<String> = found
                    .iter()
                    .filter(|(fp, both)| *fp != t.fingerprint && !(t_is_source && *both))
                    .map(|(fp, _)| fp.to_string())
                    .collect();
                if !by.is_empty() {
                    out.entry(t.fingerprint.clone()).or_default().extend(by);
                }
            }
        }
        for by in out.values_mut() {
            by.sort();
            by.dedup();
        }
        out.retain(|_, by| !by.is_empty());
        out
    }

    /// The rules of `file` (see the module doc); every problem at once, each at its field.
    pub fn load(file: &Path) -> Result<InhibitRules, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Io {
            what: "inhibition rules",
            file: file.to_path_buf(),
            source,
        })?;
        InhibitRules::parse(&text, file)
    }

    /// The rules of `text`, read from `file` (named in errors).
    pub fn parse(text: &str, file: &Path) -> Result<InhibitRules, ConfigError> {
        let table: Table = config::parse_toml(text, file)?;
        let mut c = Checker::new();
        let rules = check(&mut c, &table);
        c.finish(Some(rules), PathBuf::from(file))
    }
}

const TOP_KEYS: &[&str] = &[
    "critical_inhibits_warning",
    "inhibit_rules",
    "maintenance_windows",
];
const RULE_KEYS: &[&str] = &["source_matchers", "target_matchers", "equal"];
const WINDOW_KEYS: &[&str] = &[
    "name", "schedule", "timezone", "duration", "matchers", "comment",
];

fn check(c: &mut Checker, table: &Table) -> InhibitRules {
    c.unknown_keys("", table.keys(), TOP_KEYS);
    let mut rules = InhibitRules {
        windows: windows(c, table),
        ..InhibitRules::default()
    };
    match table.get("critical_inhibits_warning") {
        None => {}
        Some(Value::Boolean(b)) => rules.critical_inhibits_warning = *b,
        Some(other) => c.expected("critical_inhibits_warning", "true or false", other),
    }
    let list = match table.get("inhibit_rules") {
        None => return rules,
        Some(Value::Array(list)) => list,
        Some(other) => {
            c.expected(
                "inhibit_rules",
                "a list of rules ([[inhibit_rules]] tables)",
                other,
            );
            return rules;
        }
    };
    if list.len() > MAX_RULES {
        c.problem(
            "inhibit_rules",
            format!("{} rules; at most {MAX_RULES}", list.len()),
        );
    }
    for (i, item) in list.iter().enumerate() {
        let at = format!("inhibit_rules[{i}]");
        let Value::Table(t) = item else {
            c.expected(
                &at,
                "a table (source_matchers, target_matchers, equal)",
                item,
            );
            continue;
        };
        c.unknown_keys(&at, t.keys(), RULE_KEYS);
        let source = matcher_list(c, &at, t, "source_matchers", "the alerts that inhibit");
        let target = matcher_list(c, &at, t, "target_matchers", "the alerts inhibited");
        let mut equal = Vec::new();
        match t.get("equal") {
            None => {}
            Some(Value::Array(names)) => {
                for (j, n) in names.iter().enumerate() {
                    let f = format!("{}[{j}]", config::field(&at, "equal"));
                    match n {
                        Value::String(s) if matchers::is_label_name(s) => equal.push(s.clone()),
                        Value::String(s) => c.problem(
                            f,
                            format!("{s:?} is not a label name (letters, digits and _, e.g. script, specialist)"),
                        ),
                        other => c.expected(f, "a label name", other),
                    }
                }
            }
            Some(other) => c.expected(
                config::field(&at, "equal"),
                "a list of label names, e.g. [\"script\"]",
                other,
            ),
        }
        rules.rules.push(InhibitRule {
            source,
            target,
            equal,
        });
    }
    rules
}

/// The `[[maintenance_windows]]` of the file, each problem at its field.
fn windows(c: &mut Checker, table: &Table) -> Vec<MaintenanceWindow> {
    let list = match table.get("maintenance_windows") {
        None => return Vec::new(),
        Some(Value::Array(list)) => list,
        Some(other) => {
            c.expected(
                "maintenance_windows",
                "a list of windows ([[maintenance_windows]] tables)",
                other,
            );
            return Vec::new();
        }
    };
    if list.len() > MAX_WINDOWS {
        c.problem(
            "maintenance_windows",
            format!("{} windows; at most {MAX_WINDOWS}", list.len()),
        );
    }
    let mut out: Vec<MaintenanceWindow> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let at = format!("maintenance_windows[{i}]");
        let Value::Table(t) = item else {
            c.expected(
                &at,
                "a table (name, schedule, timezone, duration, matchers, comment)",
                item,
            );
            continue;
        };
        c.unknown_keys(&at, t.keys(), WINDOW_KEYS);
        let text = |c: &mut Checker, key: &str, required: bool| -> Option<String> {
            match t.get(key) {
                None if required => {
                    c.problem(config::field(&at, key), "missing");
                    None
                }
                None => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => {
                    c.expected(config::field(&at, key), "a string", other);
                    None
                }
            }
        };
        let name = text(c, "name", true);
        if let Some(n) = &name {
            if n.is_empty()
                || !n
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
            {
                c.problem(
                    config::field(&at, "name"),
                    format!("{n:?}: use letters, digits, `-`, `_` and `.` (it marks what the window mutes: maintenance:NAME)"),
                );
            } else if names.contains(n) {
                c.problem(
                    config::field(&at, "name"),
                    format!("{n:?} is the name of an earlier window: names are unique"),
                );
            }
        }
        names.extend(name.clone());
        let pattern = text(c, "schedule", true);
        let zone = text(c, "timezone", false).unwrap_or_else(|| "UTC".into());
        let schedule = pattern.and_then(|p| match Schedule::parse(&p, &zone) {
            Ok(s) => Some(s),
            Err(e) => {
                let key = match e {
                    ScheduleError::Timezone { .. } => "timezone",
                    _ => "schedule",
                };
                c.problem(config::field(&at, key), e.to_string());
                None
            }
        });
        let length = text(c, "duration", true).and_then(|d| match duration::parse(&d) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                c.problem(
                    config::field(&at, "duration"),
                    "0: a window must stay open a while, e.g. \"2h\"",
                );
                None
            }
            Err(e) => {
                c.problem(config::field(&at, "duration"), e.to_string());
                None
            }
        });
        let matchers = matcher_list(c, &at, t, "matchers", "the alerts it mutes");
        let comment = text(c, "comment", false).unwrap_or_default();
        if let (Some(name), Some(schedule), Some(duration)) = (name, schedule, length) {
            out.push(MaintenanceWindow {
                name,
                schedule,
                duration,
                matchers,
                comment,
            });
        }
    }
    out
}

fn matcher_list(c: &mut Checker, at: &str, t: &Table, key: &str, what: &str) -> Vec<Matcher> {
    let f = config::field(at, key);
    let example = "e.g. [\"type=script_missed\"]";
    let list = match t.get(key) {
        None => {
            c.problem(
                f,
                format!("missing: the matchers that select {what}, {example}"),
            );
            return Vec::new();
        }
        Some(Value::Array(list)) if list.is_empty() => {
            c.problem(
                f,
                format!("empty: it would select every alert; name {what}, {example}"),
            );
            return Vec::new();
        }
        Some(Value::Array(list)) => list,
        Some(other) => {
            c.expected(f, &format!("a list of matchers, {example}"), other);
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (j, m) in list.iter().enumerate() {
        let fj = format!("{f}[{j}]");
        match m {
            Value::String(s) => match Matcher::parse(s) {
                Ok(m) => out.push(m),
                Err(e) => c.problem(fj, e.to_string()),
            },
            other => c.expected(fj, "a matcher such as \"script=backup\"", other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn alert(kind: &str, severity: Severity, labels: &[(&str, &str)]) -> Alert {
        let mut a = Alert::firing(Utc::now(), kind, severity, "m", 1.0, 1.0);
        for (k, v) in labels {
            a.labels.insert(k.to_string(), v.to_string());
        }
        a.fingerprint = a.identity();
        a
    }

    fn rules(text: &str) -> InhibitRules {
        InhibitRules::parse(text, Path::new("rules.toml")).unwrap()
    }

    #[test]
    fn a_critical_alert_inhibits_the_warnings_of_the_same_labels_only() {
        let missed = alert("script_missed", Severity::Critical, &[("script", "backup")]);
        let overdue = alert("script_overdue", Severity::Warning, &[("script", "backup")]);
        let other = alert("script_overdue", Severity::Warning, &[("script", "deploy")]);
        let more = alert(
            "script_overdue",
            Severity::Warning,
            &[("script", "backup"), ("host", "a")],
        );
        let global_critical = alert("error_rate_high", Severity::Critical, &[]);
        let global_warning = alert("duration_high", Severity::Warning, &[]);
        let all = [
            &missed,
            &overdue,
            &other,
            &more,
            &global_critical,
            &global_warning,
        ];
        let by = InhibitRules::default().inhibited(&all);
        assert_eq!(by.len(), 1, "{by:?}");
        assert_eq!(
            by[&overdue.fingerprint],
            std::slice::from_ref(&missed.fingerprint)
        );
        // A resolved critical inhibits nothing; the rule turned off neither.
        let mut gone = missed.clone();
        gone.status = AlertStatus::Resolved;
        assert!(InhibitRules::default()
            .inhibited(&[&gone, &overdue])
            .is_empty());
        assert!(InhibitRules::none().inhibited(&all).is_empty());
    }

    #[test]
    fn a_configured_rule_inhibits_targets_sharing_the_equal_labels() {
        let r = rules(
            "critical_inhibits_warning = false\n\
             [[inhibit_rules]]\n\
             source_matchers = ['type=plugin_quarantined']\n\
             target_matchers = ['type=~\"error_.*\"']\n\
             equal = ['plugin']\n",
        );
        let q = alert("plugin_quarantined", Severity::Critical, &[("plugin", "x")]);
        let same = alert("error_rate_high", Severity::Critical, &[("plugin", "x")]);
        let other = alert("error_rate_high", Severity::Warning, &[("plugin", "y")]);
        let neither = alert("memory_peak_high", Severity::Warning, &[("plugin", "x")]);
        let by = r.inhibited(&[&q, &same, &other, &neither]);
        assert_eq!(by.keys().collect::<Vec<_>>(), [&same.fingerprint]);
        // Missing from both is equal: a source without `plugin` inhibits targets without.
        let q0 = alert("plugin_quarantined", Severity::Critical, &[]);
        let t0 = alert("error_rate_high", Severity::Warning, &[]);
        assert_eq!(r.inhibited(&[&q0, &t0, &same]).len(), 1);
    }

    #[test]
    fn an_alert_on_both_sides_is_not_inhibited_by_its_like() {
        let r = rules(
            "critical_inhibits_warning = false\n\
             [[inhibit_rules]]\n\
             source_matchers = ['severity=warning']\n\
             target_matchers = ['severity=warning']\n\
             equal = ['script']\n",
        );
        let a = alert("a", Severity::Warning, &[("script", "s")]);
        let b = alert("b", Severity::Warning, &[("script", "s")]);
        assert!(r.inhibited(&[&a, &b]).is_empty(), "nor itself");
    }

    #[test]
    fn bad_files_name_every_problem_at_its_field() {
        let e = InhibitRules::parse(
            "critical_inhibits_warnings = 1\n\
             [[inhibit_rules]]\n\
             source_matchers = ['type']\n\
             target_matchers = []\n\
             equal = ['a b', 3]\n\
             [[inhibit_rules]]\n\
             target_matchers = ['x=~(']\n",
            Path::new("rules.toml"),
        )
        .unwrap_err()
        .to_string();
        for part in [
            "rules.toml",
            "critical_inhibits_warnings: unknown key; did you mean `critical_inhibits_warning`?",
            "inhibit_rules[0].source_matchers[0]: matcher \"type\": no operator",
            "inhibit_rules[0].target_matchers: empty: it would select every alert",
            "inhibit_rules[0].equal[0]: \"a b\" is not a label name",
            "inhibit_rules[0].equal[1]: expected a label name, found 3",
            "inhibit_rules[1].source_matchers: missing",
            "inhibit_rules[1].target_matchers[0]: matcher \"x=~(\": the regex \"(\" does not compile",
        ] {
            assert!(e.contains(part), "{part} not in:\n{e}");
        }
        let syntax = InhibitRules::parse("[[inhibit_rules]\n", Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(syntax.starts_with("r.toml:1:"), "{syntax}");
    }
}
