//! Turning how a process ended into an error category, a message and suggestions that
//! name the actual cause (the missing module, the limit that was hit), not a fixed list.

use std::collections::BTreeMap;
use std::path::Path;

use crate::model::{signal_name, ErrorCategory, ErrorContext, ErrorDetails};
use crate::registry::ScriptEntry;

use super::spawn::{SpawnError, SpawnStage};

/// How one attempt's process ended, with what the host knows about it.
pub struct Ending<'a> {
    /// The script run.
    pub entry: &'a ScriptEntry,
    /// Which attempt, from 1.
    pub attempt: u32,
    /// Its exit status; `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// The signal number that ended it; `None` when it exited.
    pub signal: Option<i32>,
    /// Whether the host ended it for running past `timeout_ms`.
    pub timed_out: bool,
    /// The memory cgroup recorded an OOM kill.
    pub oom_killed: bool,
    /// The attempt's peak memory, MiB (compared with `memory_limit_mb`).
    pub peak_memory_mb: f64,
    /// The attempt's CPU time, seconds (compared with `cpu_limit_seconds`).
    pub cpu_seconds: f64,
    /// What it printed on stderr (as captured): where tracebacks and missing modules are
    /// found.
    pub stderr: &'a str,
}

/// The context of an error of `entry`'s `attempt`, with no exit, signal or extra facts yet.
pub fn context(entry: &ScriptEntry, attempt: u32) -> ErrorContext {
    ErrorContext {
        script_id: entry.id.clone(),
        script_path: entry.path_in_registry.clone(),
        specialist: entry.specialist.clone(),
        exit_code: None,
        signal: None,
        attempt,
        extra: BTreeMap::new(),
    }
}

fn details(
    category: ErrorCategory,
    message: String,
    context: ErrorContext,
    suggestions: &[&str],
    stack_trace: Option<String>,
) -> ErrorDetails {
    ErrorDetails {
        category,
        message,
        context,
        suggestions: suggestions.iter().map(|s| s.to_string()).collect(),
        stack_trace,
    }
}

/// `None` when the attempt succeeded.
pub fn classify(e: &Ending) -> Option<ErrorDetails> {
    if !e.timed_out && e.exit_code == Some(0) {
        return None;
    }
    let mut ctx = context(e.entry, e.attempt);
    ctx.exit_code = e.exit_code;
    ctx.signal = e.signal.map(signal_name);
    let trace = stack_trace(e.stderr);
    let last_line = last_error_line(e.stderr);

    if e.timed_out {
        ctx.extra
            .insert("timeout_ms".into(), e.entry.timeout_ms.to_string());
        return Some(details(
            ErrorCategory::Timeout,
            format!("Script execution timed out after {}ms", e.entry.timeout_ms),
            ctx,
            &[
                "Increase the timeout value in the script configuration",
                "Optimize the script to run faster",
                "Check for infinite loops or blocking operations",
            ],
            trace,
        ));
    }

    if let Some(limit) = e.entry.memory_limit_mb {
        let near_limit = e.peak_memory_mb >= limit as f64 * 0.9;
        let memory_error = e.stderr.contains("MemoryError")
            || e.stderr.contains("Cannot allocate memory")
            || e.stderr.contains("out of memory");
        if e.oom_killed || (e.signal == Some(libc::SIGKILL) && near_limit) || memory_error {
            ctx.extra
                .insert("memory_limit_mb".into(), limit.to_string());
            ctx.extra
                .insert("peak_memory_mb".into(), format!("{:.1}", e.peak_memory_mb));
            let suggestion = format!(
                "Raise memory_limit_mb (now {limit}) in the registry entry for `{}` if the script legitimately needs more",
                e.entry.id
            );
            return Some(ErrorDetails {
                category: ErrorCategory::Resource,
                message: format!("Script exceeded its memory limit of {limit} MB"),
                context: ctx,
                suggestions: vec![
                    suggestion,
                    "Process the data in smaller chunks or stream it instead of loading it whole"
                        .into(),
                    "Check peak_memory_mb in the execution logs for a trend".into(),
                ],
                stack_trace: trace,
            });
        }
    }
    if e.signal == Some(libc::SIGXCPU)
        || (e.signal == Some(libc::SIGKILL)
            && e.entry
                .cpu_limit_seconds
                .is_some_and(|l| e.cpu_seconds + 0.05 >= l as f64))
    {
        let limit = e.entry.cpu_limit_seconds.unwrap_or(0);
        ctx.extra
            .insert("cpu_limit_seconds".into(), limit.to_string());
        let suggestion = format!(
            "Raise cpu_limit_seconds (now {limit}) in the registry entry for `{}`",
            e.entry.id
        );
        return Some(ErrorDetails {
            category: ErrorCategory::Resource,
            message: format!("Script exceeded its CPU time limit of {limit}s"),
            context: ctx,
            suggestions: vec![
                suggestion,
                "Profile the script to find the hot loop".into(),
                "Check for busy-waiting where the script should sleep or block".into(),
            ],
            stack_trace: trace,
        });
    }
    if e.signal == Some(libc::SIGKILL) {
        return Some(details(
            ErrorCategory::Resource,
            "Script was killed by SIGKILL, most likely by the kernel's out-of-memory killer".into(),
            ctx,
            &[
                "Check the kernel log (dmesg) for an OOM-killer entry naming the process",
                "Reduce the script's memory use or run it on a machine with more memory",
                "Set memory_limit_mb in the registry so the limit is enforced and reported per script",
            ],
            trace,
        ));
    }
    if let Some(sig) = e.signal {
        let name = signal_name(sig);
        let crash = matches!(
            sig,
            libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGABRT
        );
        let (category, suggestions): (ErrorCategory, &[&str]) = if crash {
            (
                ErrorCategory::Execution,
                &[
                    "The script or a native library it loads crashed: run it by hand under a debugger",
                    "Check for a native extension built for a different version",
                ],
            )
        } else {
            (
                ErrorCategory::Unknown,
                &["Find which process sent the signal (another supervisor, a user, a watchdog)"],
            )
        };
        return Some(details(
            category,
            format!("Script was terminated by {name}"),
            ctx,
            suggestions,
            trace,
        ));
    }

    let code = e.exit_code.unwrap_or(-1);
    if let Some(module) = python_missing_module(e.stderr) {
        ctx.extra.insert("missing_module".into(), module.clone());
        let top = module.split('.').next().unwrap_or(&module).to_string();
        return Some(ErrorDetails {
            category: ErrorCategory::Dependency,
            message: format!("Python module `{module}` is not installed"),
            context: ctx,
            suggestions: vec![
                format!("Install it: python3 -m pip install {}", pip_name(&top)),
                "Check that the interpreter in the registry entry is the one the module is installed for".into(),
                "List it in the script's requirements so the next machine has it too".into(),
            ],
            stack_trace: trace,
        });
    }
    if e.stderr.contains("ImportError") {
        return Some(details(
            ErrorCategory::Dependency,
            format!("Import failed: {}", last_line.unwrap_or("ImportError")),
            ctx,
            &[
                "Reinstall or upgrade the package named in the error",
                "Check for version conflicts between installed packages",
            ],
            trace,
        ));
    }
    if code == 127 || e.stderr.contains("command not found") {
        let missing = command_not_found(e.stderr);
        if let Some(m) = &missing {
            ctx.extra.insert("missing_command".into(), m.clone());
        }
        let message = match &missing {
            Some(m) => format!("Command `{m}` was not found"),
            None => "A command the script runs was not found (exit 127)".into(),
        };
        let mut suggestions = vec![
            "Install the missing command, or add it to the script's PATH".to_string(),
            "List it under `requires` in the registry so the check happens before the run".into(),
        ];
        if let Some(m) = &missing {
            suggestions.insert(
                0,
                format!("Install `{m}` (on Debian: apt-get install the package that provides it)"),
            );
        }
        return Some(ErrorDetails {
            category: ErrorCategory::Dependency,
            message,
            context: ctx,
            suggestions,
            stack_trace: trace,
        });
    }
    if e.stderr.contains("PermissionError") || code == 126 || e.stderr.contains("Permission denied")
    {
        let what = permission_target(e.stderr);
        if let Some(w) = &what {
            ctx.extra.insert("path".into(), w.clone());
        }
        let message = match &what {
            Some(w) => format!("Permission denied: {w}"),
            None => format!("Permission denied (exit {code})"),
        };
        let mut suggestions = vec![
            "Check the file permissions (ls -l) and the user the host runs as".to_string(),
            "Review the script's sandbox configuration and its working_dir".into(),
        ];
        if let Some(w) = &what {
            suggestions.insert(
                0,
                format!("Grant access to {w}, or change the script to use a path it may access"),
            );
        }
        return Some(ErrorDetails {
            category: ErrorCategory::Permission,
            message,
            context: ctx,
            suggestions,
            stack_trace: trace,
        });
    }
    if e.stderr.contains("MemoryError") {
        return Some(details(
            ErrorCategory::Resource,
            "Script ran out of memory (MemoryError)".into(),
            ctx,
            &[
                "Process the data in smaller chunks",
                "Raise the memory available to the script",
            ],
            trace,
        ));
    }
    let message = match last_line {
        Some(line) => format!("Script exited with code {code}: {line}"),
        None => format!("Script exited with code {code}"),
    };
    let mut suggestions: Vec<String> = Vec::new();
    if e.stderr.contains("FileNotFoundError") || e.stderr.contains("No such file or directory") {
        suggestions.push(
            "A file the script opens does not exist: check the input paths and the working_dir"
                .into(),
        );
    }
    suggestions.push("Read stderr and the stack trace for the failing line".into());
    suggestions.push(format!(
        "Run the script by hand with the same inputs: metaclaude run {} --json",
        e.entry.id
    ));
    Some(ErrorDetails {
        category: ErrorCategory::Execution,
        message,
        context: ctx,
        suggestions,
        stack_trace: trace,
    })
}

/// Spawn-time failures: the script or its interpreter could not be executed.
pub fn spawn_failure(
    entry: &ScriptEntry,
    attempt: u32,
    program: &Path,
    err: &SpawnError,
) -> ErrorDetails {
    let mut ctx = context(entry, attempt);
    ctx.extra
        .insert("program".into(), program.display().to_string());
    let (stage, errno) = match err {
        SpawnError::Child { stage, errno } => (Some(*stage), Some(*errno)),
        SpawnError::Host(e) => (None, e.raw_os_error()),
    };
    ctx.extra
        .insert("errno".into(), errno.unwrap_or(0).to_string());
    let is_script = program == entry.path;
    match (stage, errno) {
        (Some(SpawnStage::Exec), Some(libc::EACCES | libc::EPERM)) => {
            let mut s = vec![];
            if is_script {
                s.push(format!(
                    "Make the script executable: chmod +x {}",
                    entry.path.display()
                ));
                s.push("Or set `interpreter` in the registry entry (e.g. \"python3\")".to_string());
            } else {
                s.push(format!("Check the permissions of {}", program.display()));
            }
            s.push("Check that the file system is not mounted noexec".into());
            ErrorDetails {
                category: ErrorCategory::Permission,
                message: format!("Permission denied executing {}", program.display()),
                context: ctx,
                suggestions: s,
                stack_trace: None,
            }
        }
        (Some(SpawnStage::Exec), Some(libc::ENOENT)) => {
            let shebang = is_script
                .then(|| shebang_interpreter(&entry.path))
                .flatten();
            let (message, suggestions) = match shebang {
                Some(interp) => {
                    ctx.extra
                        .insert("missing_interpreter".into(), interp.clone());
                    (
                        format!(
                            "The script's interpreter `{interp}` (from its #! line) was not found"
                        ),
                        vec![
                            format!("Install `{interp}` or fix the script's #! line"),
                            "Or set `interpreter` in the registry entry to one that exists".into(),
                        ],
                    )
                }
                None => (
                    format!("{} was not found", program.display()),
                    vec![format!("Check that {} exists", program.display())],
                ),
            };
            ErrorDetails {
                category: ErrorCategory::Dependency,
                message,
                context: ctx,
                suggestions,
                stack_trace: None,
            }
        }
        (Some(SpawnStage::Exec), Some(libc::ENOEXEC)) => details(
            ErrorCategory::Execution,
            format!(
                "{} is not a program the kernel can run (no #! line?)",
                program.display()
            ),
            ctx,
            &[
                "Add a #! line such as `#!/usr/bin/env python3` as the script's first line",
                "Or set `interpreter` in the registry entry",
            ],
            None,
        ),
        (Some(SpawnStage::Chdir), _) => details(
            ErrorCategory::Dependency,
            format!(
                "Cannot enter the working directory {}",
                entry.working_dir.display()
            ),
            ctx,
            &["Create the directory or fix `working_dir` in the registry entry"],
            None,
        ),
        _ => details(
            ErrorCategory::Unknown,
            format!("Could not start the script: {err}"),
            ctx,
            &[
                "Check the host's log (--log-level debug) for details",
                "Check system limits on processes and open files (ulimit -a)",
            ],
            None,
        ),
    }
}

/// The interpreter named on a script's `#!` line, if it does not exist.
fn shebang_interpreter(script: &Path) -> Option<String> {
    let head = std::fs::read(script).ok()?;
    let first = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(first).ok()?.strip_prefix("#!")?.trim();
    let mut parts = line.split_whitespace();
    let interp = parts.next()?;
    if interp.ends_with("/env") {
        let cmd = parts.find(|p| !p.starts_with('-'))?;
        return Some(cmd.to_string());
    }
    Some(interp.to_string())
}

fn python_missing_module(stderr: &str) -> Option<String> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("ModuleNotFoundError: No module named"))?;
    let rest = line.split("No module named").nth(1)?.trim();
    Some(rest.trim_matches(|c| c == '\'' || c == '"').to_string())
}

/// Import names that differ from the package to install.
fn pip_name(module: &str) -> &str {
    match module {
        "yaml" => "pyyaml",
        "cv2" => "opencv-python",
        "PIL" => "pillow",
        "sklearn" => "scikit-learn",
        "bs4" => "beautifulsoup4",
        "dateutil" => "python-dateutil",
        other => other,
    }
}

fn command_not_found(stderr: &str) -> Option<String> {
    for line in stderr.lines().rev() {
        if let Some(prefix) = line
            .strip_suffix(": command not found")
            .or_else(|| line.strip_suffix(": not found"))
        {
            let name = prefix.rsplit(':').next()?.trim();
            if !name.is_empty() {
                return Some(name.to_string());
            }
        }
    }
    None
}

fn permission_target(stderr: &str) -> Option<String> {
    for line in stderr.lines().rev() {
        if let Some(rest) = line.split("Permission denied:").nth(1) {
            let t = rest.trim().trim_matches('\'');
            if !t.is_empty() {
                return Some(t.to_string());
            }
        }
        if let Some(prefix) = line.strip_suffix(": Permission denied") {
            let t = prefix.rsplit(": ").next().unwrap_or(prefix).trim();
            if !t.is_empty() {
                return Some(t.to_string());
            }
        }
    }
    None
}

/// The last meaningful line of stderr, for the one-line message.
fn last_error_line(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| {
            if l.len() > 300 {
                &l[..l.floor_char_boundary(300)]
            } else {
                l
            }
        })
}

/// The Python traceback when there is one, else the last 20 lines of stderr.
pub fn stack_trace(stderr: &str) -> Option<String> {
    if let Some(at) = stderr.rfind("Traceback (most recent call last):") {
        return Some(stderr[at..].trim_end().to_string());
    }
    let lines: Vec<&str> = stderr.lines().collect();
    if lines.iter().all(|l| l.trim().is_empty()) {
        return None;
    }
    let start = lines.len().saturating_sub(20);
    Some(lines[start..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_python_module_and_traceback() {
        let err = "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n    import yaml\nModuleNotFoundError: No module named 'yaml'\n";
        assert_eq!(python_missing_module(err).as_deref(), Some("yaml"));
        assert!(stack_trace(err).unwrap().starts_with("Traceback"));
        assert_eq!(pip_name("yaml"), "pyyaml");
    }

    #[test]
    fn finds_missing_commands_and_denied_paths() {
        assert_eq!(
            command_not_found("./x.sh: line 3: frobnicate: command not found").as_deref(),
            Some("frobnicate")
        );
        assert_eq!(
            command_not_found("/bin/sh: 1: frobnicate: not found").as_deref(),
            Some("frobnicate")
        );
        assert_eq!(
            permission_target("PermissionError: [Errno 13] Permission denied: '/etc/shadow'")
                .as_deref(),
            Some("/etc/shadow")
        );
        assert_eq!(
            permission_target("cat: /root/secret: Permission denied").as_deref(),
            Some("/root/secret")
        );
    }
}
