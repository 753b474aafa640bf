//! A request to run a script, and its outside forms: the JSON object that `metaclaude
//! batch` reads one per line and `POST /api/v1/executions` reads as its body. Pure
//! parsers (no I/O, no plugin runtime): the fuzz targets `batch_line` and `serve_body`
//! drive them.

use std::collections::BTreeMap;

use serde_json::Value;

/// One request to run a script.
#[derive(Debug, Clone, Default)]
pub struct ExecutionRequest {
    /// The registry id of the script to run.
    pub script_id: String,
    /// Raw input values; strings are converted to the declared types.
    pub inputs: BTreeMap<String, Value>,
    /// The caller's session, copied into the result and every event; `None` when not
    /// given.
    pub session_id: Option<String>,
    /// The caller's id tying the execution to its own work (a request, a job), copied as
    /// `session_id` is.
    pub correlation_id: Option<String>,
    /// Who asks, copied as `session_id` is (`--group-by user` groups by it).
    pub user: Option<String>,
}

/// The JSON shape of a request, as `metaclaude batch` lines and `POST /api/v1/executions`
/// bodies have it (only `script_id` is required; other keys are errors).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestJson {
    script_id: String,
    #[serde(default)]
    inputs: BTreeMap<String, Value>,
    session_id: Option<String>,
    correlation_id: Option<String>,
    user: Option<String>,
}

/// What a request in JSON must look like, for messages.
pub const REQUEST_SHAPE: &str =
    "{\"script_id\": \"...\", \"inputs\": {...}} with optional session_id, correlation_id, user";

impl ExecutionRequest {
    /// A request from its JSON: `{"script_id": ..., "inputs": {...}, "session_id": ...,
    /// "correlation_id": ..., "user": ...}`; serde's error names the field and position.
    pub fn from_json(json: &[u8]) -> Result<ExecutionRequest, serde_json::Error> {
        let r: RequestJson = serde_json::from_slice(json)?;
        Ok(ExecutionRequest {
            script_id: r.script_id,
            inputs: r.inputs,
            session_id: r.session_id,
            correlation_id: r.correlation_id,
            user: r.user,
        })
    }

    /// A request to run `script_id` with no inputs (the defaults apply) and no caller ids.
    pub fn new(script_id: impl Into<String>) -> Self {
        ExecutionRequest {
            script_id: script_id.into(),
            ..Default::default()
        }
    }

    /// Sets input `name` (a string is converted to its declared type, as from the command
    /// line).
    pub fn input(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.inputs.insert(name.into(), value.into());
        self
    }

    /// Tags the execution with the caller's session.
    pub fn session_id(mut self, s: impl Into<String>) -> Self {
        self.session_id = Some(s.into());
        self
    }

    /// Tags the execution with the caller's correlation id.
    pub fn correlation_id(mut self, s: impl Into<String>) -> Self {
        self.correlation_id = Some(s.into());
        self
    }

    /// Says who asks.
    pub fn user(mut self, s: impl Into<String>) -> Self {
        self.user = Some(s.into());
        self
    }
}

/// Why a request line of `metaclaude batch` cannot be used: serde_json's message and the
/// expected shape (the batch adds the file and line number).
#[derive(Debug, thiserror::Error)]
#[error("{json} (expected {REQUEST_SHAPE})")]
pub struct RequestLineError {
    /// serde_json's error: what is wrong, at which line and column of the line.
    pub json: serde_json::Error,
}

/// Parses one request line of `metaclaude batch`: `None` for a blank line or a comment
/// (`#` first), otherwise the request or why the line cannot be used (serde_json's message
/// and the expected shape; the caller adds the file and line number). Only `script_id` is
/// required; unknown fields are refused, since a misspelt `inputs` would run the script
/// without them. Never panics, whatever the line holds.
pub fn parse_request_line(line: &str) -> Option<Result<ExecutionRequest, RequestLineError>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    Some(ExecutionRequest::from_json(line.as_bytes()).map_err(|json| RequestLineError { json }))
}

/// What is wrong with a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyProblem {
    /// What is wrong and the expected shape: the API error's `message`.
    pub message: String,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// Line and column (1-based) of a JSON error.
    pub position: Option<(usize, usize)>,
}

/// The body of `POST /api/v1/executions` (the `metaclaude batch` request shape) as an
/// execution request, or what is wrong with it.
pub fn parse_execution_body(body: &[u8]) -> Result<ExecutionRequest, BodyProblem> {
    if body.is_empty() {
        return Err(BodyProblem {
            message: "the body is empty: send {\"script_id\": \"...\", \"inputs\": {...}} as JSON"
                .into(),
            field: None,
            position: None,
        });
    }
    let request = ExecutionRequest::from_json(body).map_err(|e| {
        let message = e.to_string();
        let field = message
            .split('`')
            .nth(1)
            .filter(|_| message.contains("field"))
            .map(str::to_string);
        BodyProblem {
            message: format!("{message} (expected {REQUEST_SHAPE})"),
            field,
            position: Some((e.line(), e.column())),
        }
    })?;
    if request.script_id.trim().is_empty() {
        return Err(BodyProblem {
            message: "script_id must not be empty".into(),
            field: Some("script_id".into()),
            position: None,
        });
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_requests_comments_or_errors() {
        assert!(parse_request_line("  ").is_none());
        assert!(parse_request_line("# a comment").is_none());
        let r = parse_request_line(r#"{"script_id":"s","inputs":{"n":3},"user":"ana"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.script_id, "s");
        assert_eq!(r.inputs["n"], 3);
        assert_eq!(r.user.as_deref(), Some("ana"));
        let e = parse_request_line(r#"{"script":"s"}"#)
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("unknown field `script`"), "{e}");
    }
}
