//! Normalising: the readers of TOML values every section uses, on the shared
//! [`Checker`]: `${VAR}` expanded (and recorded as a request), defaults filled in, bounds
//! checked, each problem recorded with its field's path.

use std::collections::BTreeSet;
use std::fmt;

use toml::{Table, Value};

use super::vars::{self, VarError};
use super::Requests;
use crate::config::Checker;

/// The checks of TOML values the manifest's fields need, on the shared [`Checker`], with
/// the environment `${VAR}` expands from.
pub(super) struct Fields<'e> {
    pub(super) c: Checker,
    pub(super) env: &'e dyn Fn(&str) -> Option<String>,
    /// Every variable `expand` was asked for.
    pub(super) env_refs: BTreeSet<String>,
    /// The capabilities as written, gathered as they are read.
    pub(super) requests: Requests,
}

impl<'e> Fields<'e> {
    pub(super) fn new(env: &'e dyn Fn(&str) -> Option<String>) -> Fields<'e> {
        Fields {
            c: Checker::new(),
            env,
            env_refs: BTreeSet::new(),
            requests: Requests::default(),
        }
    }

    pub(super) fn problem(&mut self, field: &str, message: impl fmt::Display) {
        self.c.problem(field, message);
    }

    pub(super) fn unknown_keys(&mut self, at: &str, table: &Table, known: &[&str]) {
        self.c.unknown_keys(at, table.keys(), known);
    }

    /// Expands `${VAR}` and `${VAR:-default}`; an unset variable without default is an
    /// error. Every variable named is a request (the operator must grant it).
    pub(super) fn expand(&mut self, field: &str, s: &str) -> String {
        let refs = &mut self.env_refs;
        match vars::expand(s, self.env, &mut |name| {
            refs.insert(name.to_string());
        }) {
            Ok(v) => v,
            Err(VarError::Unclosed) => {
                self.problem(field, format!("unclosed `${{` in {s:?}"));
                s.to_string()
            }
            Err(VarError::Unset(name)) => {
                self.problem(
                    field,
                    format!("environment variable `{name}` is not set (give a default with ${{{name}:-value}})"),
                );
                s.to_string()
            }
        }
    }

    pub(super) fn string(
        &mut self,
        field: &str,
        v: Option<&Value>,
        required: bool,
    ) -> Option<String> {
        match v {
            None if required => {
                self.problem(field, "missing");
                None
            }
            None => None,
            Some(Value::String(s)) if !s.trim().is_empty() => {
                let expanded = self.expand(field, s);
                if expanded.trim().is_empty() {
                    // `"${UNSET:-}"`: a grant of "" (the host's current directory, or no
                    // path at all), a plugin named "" ... is never what was meant.
                    self.problem(
                        field,
                        format!(
                            "{s:?} expands to an empty string: set the variable or give a default"
                        ),
                    );
                    return None;
                }
                Some(expanded)
            }
            Some(other) => {
                self.c.expected(field, "a non-empty string", other);
                None
            }
        }
    }

    pub(super) fn strings(&mut self, field: &str, v: Option<&Value>) -> Vec<String> {
        match v {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.string(&format!("{field}[{i}]"), Some(item), true))
                .collect(),
            Some(other) => {
                self.c.expected(field, "a list of strings", other);
                Vec::new()
            }
        }
    }

    pub(super) fn positive(&mut self, field: &str, v: Option<&Value>, default: u64) -> u64 {
        match v {
            None => default,
            Some(Value::Integer(i)) if *i > 0 => *i as u64,
            Some(other) => {
                self.c.expected(field, "a positive integer", other);
                default
            }
        }
    }

    /// [`Fields::positive`], at most `max` (a ceiling of the host's, whatever is granted).
    pub(super) fn bounded(
        &mut self,
        field: &str,
        v: Option<&Value>,
        default: u64,
        max: u64,
    ) -> u64 {
        let n = self.positive(field, v, default);
        if n > max {
            self.problem(
                field,
                format!("{n} is above the most this host allows a plugin, {max}"),
            );
            return default;
        }
        n
    }

    pub(super) fn boolean(&mut self, field: &str, v: Option<&Value>, default: bool) -> bool {
        match v {
            None => default,
            Some(Value::Boolean(b)) => *b,
            // `"${VAR:-false}"` lets an operator switch a setting from the environment.
            Some(Value::String(s)) if s.contains("${") => match self.expand(field, s).as_str() {
                "true" => true,
                "false" => false,
                other => {
                    self.problem(
                        field,
                        format!("{s:?} expands to {other:?}: expected true or false"),
                    );
                    default
                }
            },
            Some(other) => {
                self.c.expected(field, "true or false", other);
                default
            }
        }
    }

    pub(super) fn table<'v>(&mut self, field: &str, v: Option<&'v Value>) -> Option<&'v Table> {
        match v {
            None => None,
            Some(Value::Table(t)) => Some(t),
            Some(other) => {
                self.c.expected(field, "a table", other);
                None
            }
        }
    }
}
