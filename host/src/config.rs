//! What every config file the host reads (`registry.json`, each plugin's `plugin.toml`)
//! shares: one error type, one problem format, and the [`Checker`] that collects every
//! problem of a file in one pass, each at its field path, so that a user fixes a file
//! once instead of one error at a time.
//!
//! Parsing is two steps, as in Spin's manifest crate: the format's parser turns text into
//! a value (syntax errors carry line and column), then the file's own validator walks
//! that value with a [`Checker`]. Unknown keys are problems with a "did you mean", because
//! a misspelt key silently ignored is a setting that does not apply.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::suggest::did_you_mean;

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, a directory ...).
    #[error("cannot read {what} {}: {source}", file.display())]
    Io {
        /// What the file is, in messages ("registry", "plugin manifest").
        what: &'static str,
        /// The file, as the caller named it.
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid JSON or TOML; nothing was validated.
    #[error("{}:{line}:{column}: invalid {format}: {message}", file.display())]
    Syntax {
        /// The file, as the caller named it.
        file: PathBuf,
        /// "JSON" or "TOML".
        format: &'static str,
        /// Where the parser stopped, 1-based.
        line: usize,
        /// Where on that line, 1-based, in characters.
        column: usize,
        /// The parser's own words.
        message: String,
    },
    /// The file parsed but breaks rules: every problem found in one pass.
    #[error("{}", crate::suggest::problem_list(file, problems))]
    Invalid {
        /// The file, as the caller named it.
        file: PathBuf,
        /// Every problem, in the order the validator met them.
        problems: Vec<Problem>,
    },
}

/// One problem at one field of a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Field path such as `scripts[2].inputs.schema_file.type` or `limits.memory_mb`.
    pub field: String,
    /// What is wrong there and, when it can tell, how to fix it ("unknown key; did you mean
    /// `timeout_ms`?").
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A value of a parsed config file, whatever its format, as messages show it.
pub trait ConfigValue {
    /// `"text"` for a string, the number or boolean itself, `a list`, `an object` ...
    fn describe(&self) -> String;
}

impl ConfigValue for serde_json::Value {
    fn describe(&self) -> String {
        use serde_json::Value;
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => format!("{s:?}"),
            Value::Array(_) => "a list".into(),
            Value::Object(_) => "an object".into(),
        }
    }
}

impl ConfigValue for toml::Value {
    fn describe(&self) -> String {
        use toml::Value;
        match self {
            Value::String(s) => format!("{s:?}"),
            Value::Integer(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Boolean(b) => b.to_string(),
            Value::Datetime(d) => d.to_string(),
            Value::Array(_) => "a list".into(),
            Value::Table(_) => "a table".into(),
        }
    }
}

/// Collects the problems of one file while its validator walks it.
#[derive(Debug, Default)]
pub struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    /// No problem yet.
    pub fn new() -> Checker {
        Checker::default()
    }

    /// Records `message` at `field` (a path made with [`field`]).
    pub fn problem(&mut self, field: impl Into<String>, message: impl fmt::Display) {
        self.problems.push(Problem {
            field: field.into(),
            message: message.to_string(),
        });
    }

    /// `expected WHAT, found VALUE` at `field`.
    pub fn expected(&mut self, field: impl Into<String>, what: &str, found: &impl ConfigValue) {
        self.problem(
            field,
            format!("expected {what}, found {}", found.describe()),
        );
    }

    /// A problem for every key of the table at `at` that is not in `known`, with the
    /// closest known key or, when none is close, the list of them.
    pub fn unknown_keys<'k>(
        &mut self,
        at: &str,
        keys: impl IntoIterator<Item = &'k String>,
        known: &[&str],
    ) {
        for key in keys {
            if !known.contains(&key.as_str()) {
                let hint = did_you_mean(key, known.iter().copied());
                let hint = if hint.is_empty() {
                    format!(" (known keys: {})", known.join(", "))
                } else {
                    hint
                };
                self.problem(field(at, key), format!("unknown key{hint}"));
            }
        }
    }

    /// How many problems were found so far (a validator compares counts to tell whether
    /// one part of the file was fine).
    pub fn count(&self) -> usize {
        self.problems.len()
    }

    /// The problems found, if any.
    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// `value` when there were no problems; otherwise every problem, for `file`.
    pub fn finish<T>(self, value: Option<T>, file: impl Into<PathBuf>) -> Result<T, ConfigError> {
        match value {
            Some(v) if self.problems.is_empty() => Ok(v),
            _ => Err(ConfigError::Invalid {
                file: file.into(),
                problems: self.problems,
            }),
        }
    }
}

/// The path of `key` inside the table at `at` (`at.key`, or `key` at the top). A key
/// that would not show in a message (empty, with spaces at either end, or with control
/// characters such as a newline) is quoted: `""`, `" a"`, `"a\nb"`.
pub fn field(at: &str, key: &str) -> String {
    let shown = if key.is_empty() || key.trim() != key || key.chars().any(char::is_control) {
        format!("{key:?}")
    } else {
        key.to_string()
    };
    if at.is_empty() {
        shown
    } else {
        format!("{at}.{shown}")
    }
}

/// Reads `text` (from `file`, named in the error) as a TOML table: a syntax error
/// carries its line and column. The first step of every TOML file the host reads; the
/// file's own validator walks the table after.
pub fn parse_toml(text: &str, file: &Path) -> Result<toml::Table, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| line_column(text, s.start))
            .unwrap_or((0, 0));
        ConfigError::Syntax {
            file: file.to_path_buf(),
            format: "TOML",
            line,
            column,
            message: e.message().to_string(),
        }
    })
}

/// The 1-based line and column of byte `offset` of `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `registry` fuzz target: `{"": {}}` gave the problem line
    /// `  : unknown key`, a problem with no field to see.
    #[test]
    fn keys_that_would_not_show_are_quoted() {
        assert_eq!(field("", ""), "\"\"");
        assert_eq!(field("scripts[0]", " id"), "scripts[0].\" id\"");
        assert_eq!(field("env", "A\nB"), "env.\"A\\nB\"");
        assert_eq!(field("inputs", "bad name"), "inputs.bad name");
        let mut c = Checker::new();
        c.unknown_keys("", &["".to_string()], &["version", "scripts"]);
        let err = c.finish(Some(()), "r.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "r.json: 1 problem:\n  \"\": unknown key (known keys: version, scripts)"
        );
    }

    #[test]
    fn problems_are_collected_with_their_fields() {
        let mut c = Checker::new();
        let keys = ["timout_ms".to_string(), "zzz".to_string(), "id".to_string()];
        c.unknown_keys("scripts[0]", &keys, &["id", "timeout_ms"]);
        c.expected(field("", "version"), "a number", &serde_json::json!("x"));
        let err = c.finish(Some(()), "r.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "r.json: 3 problems:\n  \
             scripts[0].timout_ms: unknown key; did you mean `timeout_ms`?\n  \
             scripts[0].zzz: unknown key (known keys: id, timeout_ms)\n  \
             version: expected a number, found \"x\""
        );
        assert_eq!(Checker::new().finish(Some(7), "f").unwrap(), 7);
        assert!(Checker::new().finish::<()>(None, "f").is_err());
    }

    #[test]
    fn positions_count_lines_and_characters() {
        assert_eq!(line_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_column("x", 99), (1, 2));
    }
}
