//! Errors found by the host itself rather than by classifying how a script ended: an
//! unknown script, invalid inputs, a missing interpreter, a host-side failure.

use crate::model::{ErrorCategory, ErrorContext, ErrorDetails};
use crate::registry::ScriptEntry;
use crate::suggest::closest;

use super::classify;

/// VALIDATION: no script `id` in the registry; the closest ids are suggested.
pub(super) fn unknown_script<'a>(
    id: &str,
    known: impl IntoIterator<Item = &'a str>,
    registry_file: &std::path::Path,
) -> ErrorDetails {
    let near = closest(id, known, 3);
    let mut suggestions = Vec::new();
    if !near.is_empty() {
        suggestions.push(format!(
            "Did you mean {}?",
            near.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    suggestions.push(format!(
        "List the registered scripts in {}",
        registry_file.display()
    ));
    let mut context = ErrorContext {
        script_id: id.to_string(),
        script_path: String::new(),
        specialist: None,
        exit_code: None,
        signal: None,
        attempt: 0,
        extra: Default::default(),
    };
    if !near.is_empty() {
        context.extra.insert("closest_ids".into(), near.join(","));
    }
    ErrorDetails {
        category: ErrorCategory::Validation,
        message: format!("Unknown script `{id}`"),
        context,
        suggestions,
        stack_trace: None,
    }
}

/// DEPENDENCY: the entry's interpreter is not on `PATH`.
pub(super) fn missing_interpreter(entry: &ScriptEntry, interp: &str) -> ErrorDetails {
    let mut ctx = classify::context(entry, 1);
    ctx.extra
        .insert("missing_interpreter".into(), interp.into());
    ErrorDetails {
        category: ErrorCategory::Dependency,
        message: format!("Interpreter `{interp}` was not found on PATH"),
        context: ctx,
        suggestions: vec![
            format!("Install `{interp}` or put it on the PATH the host runs with"),
            format!(
                "Or change `interpreter` in the registry entry for `{}`",
                entry.id
            ),
        ],
        stack_trace: None,
    }
}

/// VALIDATION: the inputs do not fit the entry's declarations; nothing was run.
pub(super) fn validation_error(entry: &ScriptEntry, problems: Vec<String>) -> ErrorDetails {
    let mut ctx = classify::context(entry, 0);
    ctx.extra.insert("problems".into(), problems.join("; "));
    let usage: Vec<String> = entry
        .inputs
        .iter()
        .map(|(n, s)| {
            format!(
                "--input {n}=<{}>{}",
                s.kind.as_str(),
                if s.required { " (required)" } else { "" }
            )
        })
        .collect();
    let mut suggestions = vec![format!(
        "Fix the inputs of `{}`; it accepts: {}",
        entry.id,
        if usage.is_empty() {
            "no inputs".to_string()
        } else {
            usage.join(", ")
        }
    )];
    suggestions.push("Nothing was run; correct the request and try again".into());
    ErrorDetails {
        category: ErrorCategory::Validation,
        message: format!("Invalid inputs for `{}`: {}", entry.id, problems.join("; ")),
        context: ctx,
        suggestions,
        stack_trace: None,
    }
}

/// UNKNOWN: a failure of the host itself, with the context there is.
pub(super) fn unknown_error(entry: &ScriptEntry, attempt: u32, message: String) -> ErrorDetails {
    ErrorDetails {
        category: ErrorCategory::Unknown,
        message,
        context: classify::context(entry, attempt),
        suggestions: vec!["Check the host's log (--log-level debug) for details".into()],
        stack_trace: None,
    }
}

/// UNKNOWN: the host stopped (its shutdown grace ended) before the execution got a slot;
/// nothing was run.
pub(super) fn not_started(entry: &ScriptEntry) -> ErrorDetails {
    let mut context = classify::context(entry, 0);
    context.extra.insert("ended_by".into(), "shutdown".into());
    ErrorDetails {
        category: ErrorCategory::Unknown,
        message: "Not run: the host shut down before the execution got a slot".into(),
        context,
        suggestions: vec![
            "Run it again once the host is back".into(),
            "Give the host a longer shutdown grace, or fewer executions at once".into(),
        ],
        stack_trace: None,
    }
}

/// The TIMEOUT of an attempt the host's shutdown ended: the timeout's category and
/// context, the cause in the message.
pub(super) fn ended_by_shutdown(mut error: ErrorDetails) -> ErrorDetails {
    error.message =
        "Script execution was ended by the host's shutdown (its grace period was over)".into();
    error.context.extra.remove("timeout_ms");
    error
        .context
        .extra
        .insert("ended_by".into(), "shutdown".into());
    error.suggestions = vec![
        "Run it again once the host is back".into(),
        "Stop the host when it is idle, or give it a longer shutdown grace".into(),
    ];
    error
}
