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

    /// Joins the caller's trace: a W3C `traceparent` (`METACLAUDE_TRACEPARENT` for `run`,
    /// the `traceparent` request header for `serve`), checked, becomes the correlation id
    /// when the request has none, so it reaches the plugins in every event (WIT has no
    /// field of its own for it; the OTLP exporter joins a correlation id that is a
    /// `traceparent`). A request that has a correlation id keeps it, and its trace
    /// derives from it.
    pub fn join_trace(&mut self, traceparent: &str) -> Result<(), TraceparentError> {
        check_traceparent(traceparent)?;
        if self.correlation_id.is_none() {
            self.correlation_id = Some(traceparent.to_string());
        }
        Ok(())
    }
}

/// Why a `traceparent` is not one of W3C Trace Context's version 00.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceparentError {
    /// Not `00-<32 hex>-<16 hex>-<2 hex>` in lowercase.
    #[error("{0:?} is not a W3C traceparent: expected 00-<32 lowercase hex trace id>-<16 lowercase hex parent id>-<2 hex flags>, e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
    Shape(String),
    /// A version other than 00.
    #[error("traceparent version {0:?} is not supported: only version 00 is")]
    Version(String),
    /// An all-zero trace id or parent id.
    #[error("traceparent {0:?} has an all-zero trace id or parent id, which W3C Trace Context makes invalid")]
    Zero(String),
}

/// Checks a W3C Trace Context `traceparent` header value, version 00:
/// `00-{trace id: 32 lowercase hex}-{parent id: 16 lowercase hex}-{flags: 2 hex}`.
pub fn check_traceparent(value: &str) -> Result<(), TraceparentError> {
    let shape = || TraceparentError::Shape(value.to_string());
    let fields: Vec<&str> = value.split('-').collect();
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if fields.len() != 4 || !lower_hex(fields[0], 2) {
        return Err(shape());
    }
    if fields[0] != "00" {
        return Err(TraceparentError::Version(fields[0].to_string()));
    }
    if !(lower_hex(fields[1], 32) && lower_hex(fields[2], 16) && lower_hex(fields[3], 2)) {
        return Err(shape());
    }
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    if zero(fields[1]) || zero(fields[2]) {
        return Err(TraceparentError::Zero(value.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod traceparent_tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_becomes_the_correlation_id_unless_one_is_given() {
        let mut r = ExecutionRequest::new("hello");
        r.join_trace(VALID).unwrap();
        assert_eq!(r.correlation_id.as_deref(), Some(VALID));
        let mut r = ExecutionRequest::new("hello").correlation_id("job-7");
        r.join_trace(VALID).unwrap();
        assert_eq!(r.correlation_id.as_deref(), Some("job-7"));
    }

    #[test]
    fn invalid_traceparents_are_refused_saying_why() {
        assert!(
            check_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").is_ok()
        );
        for (bad, why) in [
            ("", "not a W3C traceparent"),
            ("hello", "not a W3C traceparent"),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version \"01\"",
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version \"ff\"",
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "not a W3C",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
                "not a W3C",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
                "not a W3C",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
                "not a W3C",
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "all-zero",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "all-zero",
            ),
        ] {
            let e = check_traceparent(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
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
