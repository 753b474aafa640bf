//! An alert in one line for people, as the console shows it and chat messages carry it:
//!
//! ```text
//! ALERT [warning] error_rate_high specialist=api-ui-designer: Error rate is 15.3% (threshold: 10.0%)
//! RESOLVED [critical] p95_duration_high specialist=ops team=web: P95 duration is 130.0s (threshold: 120.0s) (runbook_url: https://wiki/p95)
//! ```
//!
//! `ALERT` or `RESOLVED`, the severity, the type, the specialist and the other labels
//! (`name=value`, a value with spaces or quotes in double quotes), the message, then the
//! chosen annotations the alert has. Every piece from outside goes through
//! [`terminal_safe`], and the line is cut to a budget.

use std::fmt::Write as _;

use metaclaude_formats::alerts::{timestamp, Alert, Status, SPECIALIST};

use crate::text::{terminal_safe, truncate};

/// What a line shows beside the alert itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineOptions {
    /// Start with the alert's timestamp (RFC 3339, UTC).
    pub timestamp: bool,
    /// Annotations shown after the message, in this order, when the alert has them.
    pub annotations: Vec<String>,
    /// The line is cut to at most this many bytes.
    pub max_bytes: usize,
}

/// The word a line starts with: `ALERT` or `RESOLVED`.
pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Firing => "ALERT",
        Status::Resolved => "RESOLVED",
    }
}

/// The alert in one line, without a line break.
pub fn alert_line(alert: &Alert, options: &LineOptions) -> String {
    let mut line = String::with_capacity(128 + alert.message.len());
    if options.timestamp {
        line.push_str(&timestamp(&alert.timestamp));
        line.push(' ');
    }
    let _ = write!(
        line,
        "{} [{}] {}",
        status_word(alert.status),
        alert.severity.name(),
        terminal_safe(&alert.kind)
    );
    if let Some(specialist) = alert.specialist() {
        push_pair(&mut line, SPECIALIST, specialist);
    }
    for (name, value) in &alert.labels {
        if name != SPECIALIST {
            push_pair(&mut line, name, value);
        }
    }
    line.push_str(": ");
    line.push_str(&terminal_safe(&alert.message));
    for name in &options.annotations {
        if let Some(value) = alert.annotations.get(name) {
            let _ = write!(line, " ({}: {})", terminal_safe(name), terminal_safe(value));
        }
    }
    truncate(&line, options.max_bytes).into_owned()
}

/// ` name=value`: the name with anything that would break the pair made `_`, the value
/// quoted when it is empty or holds a space, a quote or a backslash.
fn push_pair(line: &mut String, name: &str, value: &str) {
    line.push(' ');
    line.extend(terminal_safe(name).chars().map(|c| {
        if c.is_whitespace() || matches!(c, '=' | '"' | ':') {
            '_'
        } else {
            c
        }
    }));
    line.push('=');
    let value = terminal_safe(value);
    if value.is_empty() || value.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
        line.push('"');
        for c in value.chars() {
            if matches!(c, '"' | '\\') {
                line.push('\\');
            }
            line.push(c);
        }
        line.push('"');
    } else {
        line.push_str(&value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_alerts::firing;

    fn options() -> LineOptions {
        LineOptions {
            timestamp: false,
            annotations: vec!["runbook_url".into()],
            max_bytes: 2048,
        }
    }

    #[test]
    fn the_line_of_a_firing_and_a_resolved_alert() {
        let alert = firing();
        assert_eq!(
            alert_line(&alert, &options()),
            "ALERT [warning] error_rate_high specialist=api-ui-designer: Error rate is 15.3% (threshold: 10.0%)"
        );
        let mut resolved = alert.clone();
        resolved.status = Status::Resolved;
        resolved.labels.insert("team".into(), "web ops".into());
        resolved
            .annotations
            .insert("runbook_url".into(), "https://wiki/errors".into());
        assert_eq!(
            alert_line(
                &resolved,
                &LineOptions {
                    timestamp: true,
                    ..options()
                }
            ),
            "2024-01-15T10:30:45.123456Z RESOLVED [warning] error_rate_high specialist=api-ui-designer team=\"web ops\": Error rate is 15.3% (threshold: 10.0%) (runbook_url: https://wiki/errors)"
        );
    }

    #[test]
    fn nothing_from_outside_reaches_the_terminal_raw() {
        let mut alert = firing();
        alert.kind = "rate\u{1b}[2Jhigh".into();
        alert.specialist = Some("ops\u{1b}]0;owned\u{7}".into());
        alert.labels.clear();
        alert
            .labels
            .insert("we ird=\u{1b}[1m".into(), "say \"hi\"\n\\".into());
        alert.labels.insert("empty".into(), String::new());
        alert.message = "line one\nline two\u{1b}[A\u{1b}[K fake line".into();
        alert
            .annotations
            .insert("runbook_url".into(), "\u{9b}31mhttp://x".into());
        let line = alert_line(&alert, &options());
        assert_eq!(
            line,
            r#"ALERT [warning] ratehigh specialist=ops empty="" we_ird_="say \"hi\" \\": line one line two fake line (runbook_url: http://x)"#
        );
        assert!(!line.contains(|c: char| c.is_control()));
    }

    #[test]
    fn a_long_line_is_cut_after_its_labels() {
        let mut alert = firing();
        alert.message = "x".repeat(10_000);
        let line = alert_line(
            &alert,
            &LineOptions {
                max_bytes: 100,
                ..options()
            },
        );
        assert!(line.len() <= 100);
        assert!(line.starts_with("ALERT [warning] error_rate_high specialist=api-ui-designer: xxx"));
        assert!(line.ends_with("x…"));
    }
}
