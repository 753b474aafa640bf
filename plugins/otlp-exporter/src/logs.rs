//! The execution's log record as an OTLP `LogRecord`
//! (`opentelemetry/proto/logs/v1/logs.proto`), tied to the execution's span:
//!
//! ```text
//! LogRecord { fixed64 time_unix_nano = 1; SeverityNumber severity_number = 2;
//!             string severity_text = 3; AnyValue body = 5; repeated KeyValue attributes = 6;
//!             bytes trace_id = 9; bytes span_id = 10; fixed64 observed_time_unix_nano = 11; }
//! ```
//!
//! The body is the host's JSON of the `finished` event: the line the execution log holds
//! (without the scripts' output unless the manifest sets `event_output = true`).

use metaclaude_push::proto::{bytes_field, fixed64_field, message_field, varint_field};

use crate::ids::{context, span_id};
use crate::trace::{attribute, Execution, Value};

/// `SeverityNumber.SEVERITY_NUMBER_INFO` and `_ERROR`.
const INFO: u64 = 9;
const ERROR: u64 = 17;

/// The `LogRecord` of `e`, its body `json` (the execution log's line; when empty, a
/// sentence for people), observed at `observed_ns`.
pub fn record(e: &Execution, json: &str, observed_ns: u64) -> Vec<u8> {
    let ctx = context(e.correlation_id.as_deref(), &e.execution_id);
    let mut out = Vec::with_capacity(256 + json.len());
    fixed64_field(&mut out, 1, e.finished_ns);
    let (severity, text) = if e.success {
        (INFO, "INFO")
    } else {
        (ERROR, "ERROR")
    };
    varint_field(&mut out, 2, severity);
    bytes_field(&mut out, 3, text.as_bytes());
    let body = if json.is_empty() {
        match (&e.category, &e.message) {
            (Some(c), Some(m)) => format!("{} failed: {c}: {m}", e.script_id),
            _ if e.success => format!("{} succeeded", e.script_id),
            _ => format!("{} failed", e.script_id),
        }
    } else {
        json.to_string()
    };
    message_field(&mut out, 5, |any| bytes_field(any, 1, body.as_bytes()));
    attribute(
        &mut out,
        6,
        "metaclaude.script.id",
        Value::Str(&e.script_id),
    );
    attribute(
        &mut out,
        6,
        "metaclaude.execution.id",
        Value::Str(&e.execution_id),
    );
    if let Some(code) = e.exit_code {
        attribute(&mut out, 6, "process.exit.code", Value::Int(code.into()));
    }
    if !e.success {
        let category = e.category.as_deref().unwrap_or("UNKNOWN");
        attribute(&mut out, 6, "error.type", Value::Str(category));
    }
    bytes_field(&mut out, 9, &ctx.trace_id);
    bytes_field(&mut out, 10, &span_id(&e.execution_id, 0));
    fixed64_field(&mut out, 11, observed_ns);
    out
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use prost::Message;

    use super::*;
    use crate::trace::tests::{attr, flaky};
    use crate::trace::{request, resource, scope, spans};

    #[test]
    fn the_official_definitions_decode_the_log_record_tied_to_the_span() {
        let mut e = flaky();
        e.success = false;
        e.category = Some("TIMEOUT".into());
        let json = r#"{"event":"finished","script_id":"flaky"}"#;
        let rec = record(&e, json, 42);
        let body = request(
            &resource("metaclaude", None, &[]),
            &scope(),
            [&rec[..]].into_iter(),
        );
        let got = ExportLogsServiceRequest::decode(&body[..]).unwrap();
        let rl = &got.resource_logs[0];
        assert_eq!(
            attr(&rl.resource.as_ref().unwrap().attributes, "service.name"),
            Some(&Any::StringValue("metaclaude".into()))
        );
        let r = &rl.scope_logs[0].log_records[0];
        assert_eq!(
            (r.time_unix_nano, r.observed_time_unix_nano),
            (e.finished_ns, 42)
        );
        assert_eq!((r.severity_number, r.severity_text.as_str()), (17, "ERROR"));
        assert_eq!(
            r.body.as_ref().unwrap().value,
            Some(Any::StringValue(json.into()))
        );
        assert_eq!(
            attr(&r.attributes, "error.type"),
            Some(&Any::StringValue("TIMEOUT".into()))
        );
        let span = opentelemetry_proto::tonic::trace::v1::Span::decode(&spans(&e)[0][..]).unwrap();
        assert_eq!((&r.trace_id, &r.span_id), (&span.trace_id, &span.span_id));
        let ok = record(&flaky(), "", 0);
        let ok = opentelemetry_proto::tonic::logs::v1::LogRecord::decode(&ok[..]).unwrap();
        assert_eq!(ok.severity_number, 9);
        assert_eq!(
            ok.body.unwrap().value,
            Some(Any::StringValue("flaky succeeded".into()))
        );
    }
}
