//! What is checked before anything runs: the request's inputs against the entry's
//! declarations, and the entry's requirements (its file, the commands it needs).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::{ErrorCategory, ErrorDetails};
use crate::registry::{coerce, InputType, Requirement, ScriptEntry};
use crate::suggest::did_you_mean;

use super::classify;
use super::launch::{resolve_command, DEFAULT_PATH};

/// `requires` and the script file itself, checked before anything runs.
pub(super) fn check_requirements(entry: &ScriptEntry) -> Option<ErrorDetails> {
    let path_var = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into());
    let dependency = |message: String, extra: (&str, String), suggestions: Vec<String>| {
        let mut ctx = classify::context(entry, 0);
        ctx.extra.insert(extra.0.into(), extra.1);
        Some(ErrorDetails {
            category: ErrorCategory::Dependency,
            message,
            context: ctx,
            suggestions,
            stack_trace: None,
        })
    };
    if !entry.path.exists() {
        return dependency(
            format!("Script file {} does not exist", entry.path.display()),
            ("missing_file", entry.path.display().to_string()),
            vec![
                format!(
                    "Check `path` of `{}` in the registry: it is relative to the registry file",
                    entry.id
                ),
                "Restore the script from version control if it was deleted".into(),
            ],
        );
    }
    for req in &entry.requires {
        match req {
            Requirement::Command(cmd) => {
                if resolve_command(cmd, &path_var, &entry.working_dir).is_none() {
                    return dependency(
                        format!("Required command `{cmd}` was not found on PATH"),
                        ("missing_command", cmd.clone()),
                        vec![
                            format!("Install `{cmd}` (on Debian: apt-get install the package that provides it)"),
                            format!("Or remove it from `requires` of `{}` if the script no longer needs it", entry.id),
                        ],
                    );
                }
            }
            Requirement::File { written, path } => {
                if !path.exists() {
                    return dependency(
                        format!("Required file {written} does not exist"),
                        ("missing_file", path.display().to_string()),
                        vec![format!(
                            "Create {} or fix the entry in `requires`",
                            path.display()
                        )],
                    );
                }
            }
        }
    }
    None
}

/// Checks inputs against the declarations; returns them typed, with defaults filled in.
pub(super) fn validate_inputs(
    entry: &ScriptEntry,
    given: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Value>, Vec<String>> {
    let mut problems = Vec::new();
    let mut out = BTreeMap::new();
    for (name, value) in given {
        match entry.inputs.get(name) {
            None => {
                let hint = did_you_mean(name, entry.inputs.keys().map(String::as_str));
                let known = if entry.inputs.is_empty() {
                    " (this script takes no inputs)".to_string()
                } else if hint.is_empty() {
                    format!(
                        " (known inputs: {})",
                        entry.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                } else {
                    String::new()
                };
                problems.push(format!("unknown input `{name}`{hint}{known}"));
            }
            Some(spec) => match coerce(spec.kind, value) {
                Ok(v) => {
                    if spec.kind == InputType::Path && spec.must_exist {
                        let p = entry.working_dir.join(v.as_str().unwrap_or_default());
                        if !p.exists() {
                            problems.push(format!(
                                "input `{name}`: path {} does not exist",
                                p.display()
                            ));
                        }
                    }
                    out.insert(name.clone(), v);
                }
                Err(e) => problems.push(format!("input `{name}`: {e}")),
            },
        }
    }
    for (name, spec) in &entry.inputs {
        if out.contains_key(name) || given.contains_key(name) {
            continue;
        }
        match (&spec.default, spec.required) {
            (Some(d), _) => {
                out.insert(name.clone(), d.clone());
            }
            (None, true) => problems.push(format!(
                "missing required input `{name}` ({})",
                spec.kind.as_str()
            )),
            (None, false) => {}
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}
