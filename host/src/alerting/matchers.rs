//! Label matchers, as Alertmanager has them: `name=value`, `name!=value`, `name=~regex`,
//! `name!~regex`, a regex anchored at both ends (`script=~back` does not match `backup`),
//! and a label an alert lacks read as the empty string (so `script!=backup` matches an
//! alert without a `script` label, and `script=""` matches only those). Silences and
//! inhibition rules both select alerts with them.
//!
//! The labels of an alert, as matchers see them: `alertname` and `type` (its type),
//! `severity`, `specialist`, and every label it has (`script`, `plugin` ...).

use serde::{Deserialize, Serialize};

use crate::model::Alert;

/// The longest value (or regex) a matcher takes, in characters.
pub const MAX_VALUE_LEN: usize = 1024;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    /// `=`: the value is this.
    #[serde(rename = "=")]
    Equal,
    /// `!=`: the value is not this.
    #[serde(rename = "!=")]
    NotEqual,
    /// `=~`: the whole value matches this regex.
    #[serde(rename = "=~")]
    Regex,
    /// `!~`: the whole value does not match this regex.
    #[serde(rename = "!~")]
    NotRegex,
}

impl MatchOp {
    /// As written between the name and the value.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// Why a matcher was refused: the matcher as given, and what is wrong with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("matcher {matcher}: {message}")]
pub struct MatcherError {
    /// The matcher as given (quoted), e.g. `"script=~("`.
    pub matcher: String,
    /// What is wrong, and how to write it.
    pub message: String,
}

/// How a matcher is written, for error messages.
pub const SYNTAX: &str =
    "write NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX (e.g. script=backup, severity!=critical, type=~\"error_.*\")";

/// One matcher: a label's name, how it compares, and the value or regex.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "MatcherSpec", into = "MatcherSpec")]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    /// The anchored regex of `=~` and `!~`.
    regex: Option<regex::Regex>,
}

/// A matcher as JSON has it: `{"name": "script", "op": "=", "value": "backup"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatcherSpec {
    /// The label's name.
    pub name: String,
    /// `=`, `!=`, `=~` or `!~`.
    pub op: MatchOp,
    /// The value, or the regex.
    pub value: String,
}

impl TryFrom<MatcherSpec> for Matcher {
    type Error = MatcherError;

    fn try_from(s: MatcherSpec) -> Result<Matcher, MatcherError> {
        Matcher::new(&s.name, s.op, &s.value)
    }
}

impl From<Matcher> for MatcherSpec {
    fn from(m: Matcher) -> MatcherSpec {
        MatcherSpec {
            name: m.name,
            op: m.op,
            value: m.value,
        }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        (&self.name, self.op, &self.value) == (&other.name, other.op, &other.value)
    }
}

impl std::fmt::Display for Matcher {
    /// As the CLI takes it: `script=backup`, quoted when the value needs it
    /// (`type=~"error_.*"`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plain = !self.value.is_empty()
            && self
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.:/@".contains(c));
        if plain {
            write!(f, "{}{}{}", self.name, self.op.as_str(), self.value)
        } else {
            let quoted = self.value.replace('\\', "\\\\").replace('"', "\\\"");
            write!(f, "{}{}\"{quoted}\"", self.name, self.op.as_str())
        }
    }
}

/// Whether `name` is a label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Matcher {
    /// A matcher of label `name`; a regex is compiled (anchored) here.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, MatcherError> {
        let err = |message: String| MatcherError {
            matcher: format!("{:?}", format!("{name}{}{value}", op.as_str())),
            message,
        };
        if !is_label_name(name) {
            return Err(err(format!(
                "{name:?} is not a label name (letters, digits and _, not starting with a digit; e.g. type, severity, specialist, script)"
            )));
        }
        let chars = value.chars().count();
        if chars > MAX_VALUE_LEN {
            return Err(err(format!(
                "the value is {chars} characters long; at most {MAX_VALUE_LEN}"
            )));
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                let compile = |pattern: &str| {
                    regex::RegexBuilder::new(pattern)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|e| {
                            err(format!(
                                "the regex {value:?} does not compile ({}); it is matched against the whole value (anchored), e.g. \"backup.*\"",
                                one_line(&e.to_string())
                            ))
                        })
                };
                // Checked alone first, so that an error shows the regex as given.
                compile(value)?;
                Some(compile(&format!("^(?:{value})$"))?)
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// A matcher as the CLI takes it: `script=backup`, `severity!=critical`,
    /// `type=~"error_.*"` (a value in double quotes may hold anything, with `\"` and `\\`).
    pub fn parse(text: &str) -> Result<Matcher, MatcherError> {
        let err = |message: String| MatcherError {
            matcher: format!("{text:?}"),
            message,
        };
        let text = text.trim();
        let Some(at) = text.find(['=', '!']) else {
            return Err(err(format!("no operator; {SYNTAX}")));
        };
        let name = text[..at].trim();
        let rest = &text[at..];
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (MatchOp::Regex, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (MatchOp::Equal, v)
        } else {
            return Err(err(format!("no operator after {name:?}; {SYNTAX}")));
        };
        if name.is_empty() {
            return Err(err(format!(
                "no label name before {:?}; {SYNTAX}",
                op.as_str()
            )));
        }
        let value = value.trim();
        let value = match value.strip_prefix('"') {
            Some(quoted) => unquote(quoted).ok_or_else(|| {
                err("the value opens a double quote that does not close at its end (write \\\" for a quote inside)".into())
            })?,
            None => value.to_string(),
        };
        Matcher::new(name, op, &value).map_err(|e| MatcherError {
            matcher: format!("{text:?}"),
            ..e
        })
    }

    /// The label's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How it compares.
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The value or regex as given.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label whose value is `value` ("" when missing) matches.
    pub fn matches_value(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(r)) => r.is_match(value),
            (MatchOp::NotRegex, Some(r)) => !r.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => unreachable!("compiled in new"),
        }
    }

    /// Whether `alert` matches (its label, "" when it lacks it).
    pub fn matches(&self, alert: &Alert) -> bool {
        self.matches_value(label(alert, &self.name))
    }
}

/// The rest of a double-quoted value after its opening quote: the text up to the closing
/// quote, which must end it, with `\"` and `\\` unescaped.
fn unquote(rest: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                c @ ('"' | '\\') => out.push(c),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            },
            '"' => return chars.as_str().trim().is_empty().then_some(out),
            c => out.push(c),
        }
    }
    None
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The value of label `name` of `alert` as matchers see it: `alertname` and `type` are its
/// type, `severity` its severity, `specialist` its specialist; any other name is one of its
/// labels. "" when it has none.
pub fn label<'a>(alert: &'a Alert, name: &str) -> &'a str {
    match name {
        "alertname" | "type" => &alert.kind,
        "severity" => alert.severity.as_str(),
        "specialist" => alert
            .specialist
            .as_deref()
            .or_else(|| alert.labels.get("specialist").map(String::as_str))
            .unwrap_or(""),
        other => alert.labels.get(other).map_or("", String::as_str),
    }
}

/// Whether `alert` matches every matcher of `matchers`.
pub fn all_match(matchers: &[Matcher], alert: &Alert) -> bool {
    matchers.iter().all(|m| m.matches(alert))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::model::Severity;

    fn alert() -> Alert {
        let mut a = Alert::firing(
            Utc::now(),
            "script_failing",
            Severity::Critical,
            "m",
            3.0,
            3.0,
        );
        a.labels.insert("script".into(), "backup".into());
        a.specialist = Some("ops".into());
        a
    }

    fn m(text: &str) -> Matcher {
        Matcher::parse(text).unwrap()
    }

    #[test]
    fn the_four_operators_on_every_kind_of_label() {
        let a = alert();
        for yes in [
            "script=backup",
            "type=script_failing",
            "alertname=script_failing",
            "severity=critical",
            "specialist=ops",
            "script!=deploy",
            "script=~back.*",
            "script=~\"back(up|end)\"",
            "script!~deploy|build",
            "region=\"\"",
            "region!=eu",
            "region!~.+",
            " script = backup ",
        ] {
            assert!(m(yes).matches(&a), "{yes}");
        }
        for no in [
            "script=backu",
            "script!=backup",
            "script=~back",
            "script=~ackup",
            "script!~back.*",
            "severity=warning",
            "region=eu",
            "region=~.+",
        ] {
            assert!(!m(no).matches(&a), "{no}");
        }
    }

    #[test]
    fn regexes_are_anchored_at_both_ends() {
        let r = m("script=~back");
        assert!(r.matches_value("back"));
        assert!(!r.matches_value("backup") && !r.matches_value("aback"));
        // An alternation is anchored as a whole, not only its first and last branch.
        let r = m("script=~a|b");
        assert!(r.matches_value("a") && r.matches_value("b"));
        assert!(!r.matches_value("ab") && !r.matches_value("xa"));
    }

    #[test]
    fn bad_matchers_say_which_and_how_to_fix_them() {
        let e = |t: &str| Matcher::parse(t).unwrap_err().to_string();
        assert_eq!(
            e("script"),
            format!("matcher \"script\": no operator; {SYNTAX}")
        );
        assert_eq!(
            e("=backup"),
            format!("matcher \"=backup\": no label name before \"=\"; {SYNTAX}")
        );
        assert!(
            e("scr ipt=x").contains("\"scr ipt\" is not a label name"),
            "{}",
            e("scr ipt=x")
        );
        assert!(e("1script=x").contains("not a label name"));
        let regex = e("script=~(");
        assert!(
            regex.starts_with("matcher \"script=~(\": the regex \"(\" does not compile (")
                && regex.contains("anchored"),
            "{regex}"
        );
        assert!(e("script=\"open").contains("does not close"));
        assert!(e(&format!("script={}", "x".repeat(MAX_VALUE_LEN + 1))).contains("at most 1024"));
    }

    /// A client's regex cannot make the host build a huge automaton: past 1 MiB compiled,
    /// it is refused (an HTTP client's silence is one; `tests/cli/silences.rs` checks the
    /// answer's field), quickly and with what went wrong.
    #[test]
    fn a_regex_too_big_to_compile_is_refused() {
        let e = Matcher::new("type", MatchOp::Regex, "(\\w{100}){100}")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("does not compile") && e.contains("size limit"),
            "{e}"
        );
    }

    #[test]
    fn quoted_values_and_display_round_trip() {
        for text in [
            "script=backup",
            "type=~\"error_.*\"",
            "comment!=\"a \\\"b\\\"\"",
            "x=\"\"",
        ] {
            let parsed = m(text);
            assert_eq!(parsed.to_string(), text);
            assert_eq!(m(&parsed.to_string()), parsed);
        }
        assert_eq!(m("x=\"a \\\"q\\\" \\\\ b\"").value(), "a \"q\" \\ b");
        let json = serde_json::to_string(&m("script=~b.*")).unwrap();
        assert_eq!(json, r#"{"name":"script","op":"=~","value":"b.*"}"#);
        let back: Matcher = serde_json::from_str(&json).unwrap();
        assert!(back.matches_value("backup"));
        let bad = serde_json::from_str::<Matcher>(r#"{"name":"x","op":"=~","value":"("}"#)
            .unwrap_err()
            .to_string();
        assert!(bad.contains("does not compile"), "{bad}");
    }
}
