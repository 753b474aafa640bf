//! Launch planning: the program, arguments, environment, working directory and stdin of
//! an execution, computed once before its first attempt.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::model::ErrorDetails;
use crate::registry::{InputMode, ScriptEntry};

use super::errors::{missing_interpreter, unknown_error};
use super::spawn::{cstring, path_cstring};
use crate::model::ExecutionIdentity;

/// Everything needed to start the script, computed once per execution.
pub(super) struct LaunchPlan {
    /// The file `execve` runs: the interpreter, or the script itself.
    pub program: PathBuf,
    pub program_c: CString,
    pub argv: Vec<CString>,
    /// The environment, without `METACLAUDE_ATTEMPT` (added per attempt).
    pub envp: Vec<CString>,
    pub cwd: CString,
    /// What the script reads on stdin (`stdin_json` inputs); `None`: `/dev/null`.
    pub stdin: Option<Vec<u8>>,
}

impl LaunchPlan {
    pub(super) fn new(
        entry: &ScriptEntry,
        header: &ExecutionIdentity,
        inputs: &BTreeMap<String, Value>,
    ) -> Result<LaunchPlan, Box<ErrorDetails>> {
        let env = script_environment(entry, header, inputs);
        let path_var = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let mut argv: Vec<String> = Vec::new();
        let program = match &entry.interpreter {
            Some(interp) => {
                let program = resolve_command(&interp[0], &path_var, &entry.working_dir)
                    .ok_or_else(|| Box::new(missing_interpreter(entry, &interp[0])))?;
                argv.extend(interp.iter().cloned());
                argv.push(entry.path.display().to_string());
                program
            }
            None => {
                argv.push(entry.path.display().to_string());
                entry.path.clone()
            }
        };
        if entry.input_mode == InputMode::Args {
            for (name, value) in inputs {
                match value {
                    Value::Bool(true) => argv.push(format!("--{name}")),
                    Value::Bool(false) | Value::Null => {}
                    Value::String(s) => {
                        argv.push(format!("--{name}"));
                        argv.push(s.clone());
                    }
                    other => {
                        argv.push(format!("--{name}"));
                        argv.push(other.to_string());
                    }
                }
            }
        }
        let stdin = (entry.input_mode == InputMode::StdinJson).then(|| {
            let mut data = serde_json::to_vec(inputs).unwrap_or_default();
            data.push(b'\n');
            data
        });
        let bad = |what: &str, e: std::io::Error| {
            unknown_error(
                entry,
                0,
                format!("cannot pass the {what} to the script: {e}"),
            )
        };
        Ok(LaunchPlan {
            program_c: path_cstring(&program).map_err(|e| bad("program path", e))?,
            argv: argv
                .iter()
                .map(cstring)
                .collect::<Result<_, _>>()
                .map_err(|e| bad("arguments", e))?,
            envp: env
                .iter()
                .map(|(k, v)| cstring(format!("{k}={v}")))
                .collect::<Result<_, _>>()
                .map_err(|e| bad("environment", e))?,
            cwd: path_cstring(&entry.working_dir).map_err(|e| bad("working directory", e))?,
            program,
            stdin,
        })
    }
}

pub(super) const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A clean environment: `PATH`, the entry's allow-list and fixed values, the inputs in
/// `env` mode, and `METACLAUDE_*` facts about the execution.
fn script_environment(
    entry: &ScriptEntry,
    header: &ExecutionIdentity,
    inputs: &BTreeMap<String, Value>,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert(
        "PATH".into(),
        std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into()),
    );
    for (key, value) in std::env::vars() {
        let allowed = entry
            .env_allow
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => key.starts_with(prefix),
                None => *pattern == key,
            });
        if allowed {
            env.insert(key, value);
        }
    }
    env.extend(entry.env.clone());
    if entry.input_mode == InputMode::Env {
        for (name, value) in inputs {
            let var = entry.inputs[name].env_name.clone().unwrap_or_else(|| {
                format!("METACLAUDE_INPUT_{}", name.to_uppercase().replace('-', "_"))
            });
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            env.insert(var, text);
        }
    }
    env.insert(
        "METACLAUDE_EXECUTION_ID".into(),
        header.execution_id.clone(),
    );
    env.insert("METACLAUDE_SCRIPT_ID".into(), entry.id.clone());
    for (key, value) in [
        ("METACLAUDE_SESSION_ID", &header.session_id),
        ("METACLAUDE_CORRELATION_ID", &header.correlation_id),
        ("METACLAUDE_USER", &header.user),
    ] {
        if let Some(v) = value {
            env.insert(key.into(), v.clone());
        }
    }
    env.into_iter().collect()
}

/// Looks a command up like `execvp` would, on the script's `PATH`.
pub(super) fn resolve_command(command: &str, path_var: &str, cwd: &Path) -> Option<PathBuf> {
    if command.contains('/') {
        let p = cwd.join(command);
        return p.is_file().then_some(p);
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(command))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
