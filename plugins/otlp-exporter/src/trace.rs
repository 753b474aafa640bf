//! An execution as OTLP spans, and the `ExportTraceServiceRequest` around them, in
//! protobuf as opentelemetry-proto defines them (`opentelemetry/proto/trace/v1/trace.proto`,
//! `common/v1/common.proto`, `resource/v1/resource.proto`,
//! `collector/trace/v1/trace_service.proto`):
//!
//! ```text
//! ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
//! ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
//! ScopeSpans    { InstrumentationScope scope = 1; repeated Span spans = 2; }
//! Span { bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5;
//!        SpanKind kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
//!        repeated KeyValue attributes = 9; repeated Event events = 11; Status status = 15; }
//! Span.Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
//! Status   { string message = 2; StatusCode code = 3; }         // UNSET 0, OK 1, ERROR 2
//! KeyValue { string key = 1; AnyValue value = 2; }
//! AnyValue { oneof { string string_value = 1; bool bool_value = 2; int64 int_value = 3;
//!                    double double_value = 4; } }
//! ```
//!
//! The execution's span is named `run <script>` and hangs under the caller's span when it
//! joined a trace; each attempt is a child span `attempt <n>`; attributes follow
//! OpenTelemetry's semantic conventions where one exists (`process.exit.code`,
//! `error.type`, `user.id`, `session.id`), `metaclaude.*` otherwise.

use metaclaude_push::proto::{
    bytes_field, double_field, fixed64_field, key, message_field, varint, varint_field, LEN, VARINT,
};

use crate::ids::{context, span_id};

/// What the spans tell of a finished execution (the event's result, in plain types).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Execution {
    pub execution_id: String,
    pub script_id: String,
    pub specialist: Option<String>,
    pub user: Option<String>,
    pub session_id: Option<String>,
    pub correlation_id: Option<String>,
    pub success: bool,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    /// Unix nanoseconds.
    pub started_ns: u64,
    pub finished_ns: u64,
    /// The error category's name (`TIMEOUT` ...) and message, when it failed.
    pub category: Option<String>,
    pub message: Option<String>,
    pub retries: u32,
    pub peak_memory_mb: f64,
    pub cpu_time_seconds: f64,
    pub cpu_user_seconds: f64,
    pub cpu_system_seconds: f64,
    pub wall_time_seconds: f64,
    pub attempts: Vec<Attempt>,
}

/// One attempt of an execution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attempt {
    /// From 1.
    pub attempt: u32,
    pub started_ns: u64,
    pub finished_ns: u64,
    pub success: bool,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub category: Option<String>,
    pub message: Option<String>,
    pub wall_time_seconds: f64,
    pub cpu_time_seconds: f64,
    pub peak_memory_mb: f64,
    /// The backoff before it (0 for the first).
    pub delay_before_ms: u64,
}

/// `SpanKind.SPAN_KIND_INTERNAL`.
const KIND_INTERNAL: u64 = 1;
/// `Status.StatusCode.STATUS_CODE_ERROR`.
const STATUS_ERROR: u64 = 2;
/// `Status.StatusCode.STATUS_CODE_OK`.
const STATUS_OK: u64 = 1;

/// An attribute's value.
pub enum Value<'a> {
    Str(&'a str),
    Int(i64),
    Double(f64),
}

/// A `KeyValue` as field `field` of its message.
pub fn attribute(out: &mut Vec<u8>, field: u32, name: &str, value: Value) {
    message_field(out, field, |kv| {
        bytes_field(kv, 1, name.as_bytes());
        message_field(kv, 2, |any| match value {
            Value::Str(s) => bytes_field(any, 1, s.as_bytes()),
            Value::Int(i) => {
                key(any, 3, VARINT);
                varint(any, i as u64);
            }
            Value::Double(d) => double_field(any, 4, d),
        });
    });
}

fn status(out: &mut Vec<u8>, success: bool, category: Option<&str>, message: Option<&str>) {
    message_field(out, 15, |s| {
        if success {
            varint_field(s, 3, STATUS_OK);
        } else {
            let text = match (category, message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                (None, Some(m)) => m.to_string(),
                (None, None) => "failed".to_string(),
            };
            bytes_field(s, 2, text.as_bytes());
            varint_field(s, 3, STATUS_ERROR);
        }
    });
}

/// What a failure is (`error.type`): its category, `UNKNOWN` when it has none.
fn error_type(category: Option<&str>) -> &str {
    category.unwrap_or("UNKNOWN")
}

/// The spans of `e` (each a protobuf `Span`): the execution's first, then one per attempt.
pub fn spans(e: &Execution) -> Vec<Vec<u8>> {
    let ctx = context(e.correlation_id.as_deref(), &e.execution_id);
    let root = span_id(&e.execution_id, 0);
    let mut out = Vec::with_capacity(1 + e.attempts.len());
    let mut span = Vec::with_capacity(512);
    bytes_field(&mut span, 1, &ctx.trace_id);
    bytes_field(&mut span, 2, &root);
    if let Some(parent) = ctx.parent_span_id {
        bytes_field(&mut span, 4, &parent);
    }
    bytes_field(&mut span, 5, format!("run {}", e.script_id).as_bytes());
    varint_field(&mut span, 6, KIND_INTERNAL);
    fixed64_field(&mut span, 7, e.started_ns);
    fixed64_field(&mut span, 8, e.finished_ns.max(e.started_ns));
    let a = |span: &mut Vec<u8>, name: &str, value: Value| attribute(span, 9, name, value);
    a(&mut span, "metaclaude.script.id", Value::Str(&e.script_id));
    a(
        &mut span,
        "metaclaude.execution.id",
        Value::Str(&e.execution_id),
    );
    for (name, value) in [
        ("metaclaude.specialist", &e.specialist),
        ("user.id", &e.user),
        ("session.id", &e.session_id),
        ("metaclaude.correlation_id", &e.correlation_id),
        ("metaclaude.signal", &e.signal),
    ] {
        if let Some(v) = value {
            a(&mut span, name, Value::Str(v));
        }
    }
    if let Some(code) = e.exit_code {
        a(&mut span, "process.exit.code", Value::Int(code.into()));
    }
    if !e.success {
        a(
            &mut span,
            "error.type",
            Value::Str(error_type(e.category.as_deref())),
        );
    }
    a(
        &mut span,
        "metaclaude.retries",
        Value::Int(e.retries.into()),
    );
    a(
        &mut span,
        "metaclaude.attempts",
        Value::Int(e.attempts.len() as i64),
    );
    a(
        &mut span,
        "metaclaude.memory.peak_mb",
        Value::Double(e.peak_memory_mb),
    );
    a(
        &mut span,
        "metaclaude.cpu.time_seconds",
        Value::Double(e.cpu_time_seconds),
    );
    a(
        &mut span,
        "metaclaude.cpu.user_seconds",
        Value::Double(e.cpu_user_seconds),
    );
    a(
        &mut span,
        "metaclaude.cpu.system_seconds",
        Value::Double(e.cpu_system_seconds),
    );
    a(
        &mut span,
        "metaclaude.wall_time_seconds",
        Value::Double(e.wall_time_seconds),
    );
    // The backoffs, as events where each began (the end of the attempt before).
    // Every attempt after the first was a retry, even one whose jittered wait was zero.
    for at in e.attempts.iter().filter(|at| at.attempt > 1) {
        message_field(&mut span, 11, |ev| {
            let begun = at.started_ns.saturating_sub(at.delay_before_ms * 1_000_000);
            fixed64_field(ev, 1, begun);
            bytes_field(ev, 2, b"retry");
            attribute(ev, 3, "metaclaude.attempt", Value::Int(at.attempt.into()));
            attribute(
                ev,
                3,
                "metaclaude.retry.delay_ms",
                Value::Int(at.delay_before_ms as i64),
            );
        });
    }
    status(
        &mut span,
        e.success,
        e.category.as_deref(),
        e.message.as_deref(),
    );
    out.push(span);
    for at in &e.attempts {
        let mut span = Vec::with_capacity(256);
        bytes_field(&mut span, 1, &ctx.trace_id);
        bytes_field(&mut span, 2, &span_id(&e.execution_id, at.attempt));
        bytes_field(&mut span, 4, &root);
        bytes_field(&mut span, 5, format!("attempt {}", at.attempt).as_bytes());
        varint_field(&mut span, 6, KIND_INTERNAL);
        fixed64_field(&mut span, 7, at.started_ns);
        fixed64_field(&mut span, 8, at.finished_ns.max(at.started_ns));
        a(
            &mut span,
            "metaclaude.attempt",
            Value::Int(at.attempt.into()),
        );
        if let Some(code) = at.exit_code {
            a(&mut span, "process.exit.code", Value::Int(code.into()));
        }
        if let Some(signal) = &at.signal {
            a(&mut span, "metaclaude.signal", Value::Str(signal));
        }
        if !at.success {
            a(
                &mut span,
                "error.type",
                Value::Str(error_type(at.category.as_deref())),
            );
        }
        a(
            &mut span,
            "metaclaude.retry.delay_ms",
            Value::Int(at.delay_before_ms as i64),
        );
        a(
            &mut span,
            "metaclaude.memory.peak_mb",
            Value::Double(at.peak_memory_mb),
        );
        a(
            &mut span,
            "metaclaude.cpu.time_seconds",
            Value::Double(at.cpu_time_seconds),
        );
        a(
            &mut span,
            "metaclaude.wall_time_seconds",
            Value::Double(at.wall_time_seconds),
        );
        status(
            &mut span,
            at.success,
            at.category.as_deref(),
            at.message.as_deref(),
        );
        out.push(span);
    }
    out
}

/// The `Resource` (its fields): `service.name`, `host.name` when given, the SDK's
/// `telemetry.sdk.*`, then `extra` (`OTEL_RESOURCE_ATTRIBUTES`; a name given above wins).
pub fn resource(
    service_name: &str,
    host_name: Option<&str>,
    extra: &[(String, String)],
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut given: Vec<(&str, &str)> = vec![
        ("service.name", service_name),
        ("telemetry.sdk.name", "metaclaude"),
        ("telemetry.sdk.language", "rust"),
        ("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
    ];
    if let Some(h) = host_name {
        given.push(("host.name", h));
    }
    for (k, v) in extra {
        if !given.iter().any(|(name, _)| name == k) {
            given.push((k, v));
        }
    }
    for (k, v) in given {
        attribute(&mut out, 1, k, Value::Str(v));
    }
    out
}

/// The `InstrumentationScope` (its fields): this plugin.
pub fn scope() -> Vec<u8> {
    let mut out = Vec::new();
    bytes_field(&mut out, 1, b"metaclaude.otlp-exporter");
    bytes_field(&mut out, 2, env!("CARGO_PKG_VERSION").as_bytes());
    out
}

/// An `ExportTraceServiceRequest` of `spans` (from [`spans`]), an
/// `ExportLogsServiceRequest` of log records (from [`crate::logs::record`]) or an
/// `ExportMetricsServiceRequest` of metrics (from [`crate::metrics::metrics`]), under one
/// resource and scope (their fields, from [`resource`] and [`scope`]): the three have the
/// same shape and field numbers (`resource_spans`/`_logs`/`_metrics` = 1, in it `resource`
/// = 1 and `scope_spans`/`_logs`/`_metrics` = 2, in that `scope` = 1 and
/// `spans`/`log_records`/`metrics` = 2).
pub fn request<'a>(
    resource: &[u8],
    scope: &[u8],
    spans: impl Iterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut scope_spans = Vec::new();
    bytes_field(&mut scope_spans, 1, scope);
    for span in spans {
        bytes_field(&mut scope_spans, 2, span);
    }
    let mut resource_spans = Vec::with_capacity(scope_spans.len() + resource.len() + 16);
    bytes_field(&mut resource_spans, 1, resource);
    bytes_field(&mut resource_spans, 2, &scope_spans);
    let mut out = Vec::with_capacity(resource_spans.len() + 8);
    key(&mut out, 1, LEN);
    varint(&mut out, resource_spans.len() as u64);
    out.extend_from_slice(&resource_spans);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
    use prost::Message;

    use super::*;

    /// A flaky execution: two failed attempts 100 and 200 ms apart, then a success.
    pub(crate) fn flaky() -> Execution {
        let s = 1_700_000_000_000_000_000u64;
        let ms = 1_000_000u64;
        let attempt = |n: u32, start: u64, delay: u64, ok: bool| Attempt {
            attempt: n,
            started_ns: s + start * ms,
            finished_ns: s + (start + 10) * ms,
            success: ok,
            exit_code: Some(if ok { 0 } else { 1 }),
            category: (!ok).then(|| "EXECUTION".to_string()),
            message: (!ok).then(|| format!("attempt {n} failed")),
            wall_time_seconds: 0.01,
            cpu_time_seconds: 0.005,
            peak_memory_mb: 3.5,
            delay_before_ms: delay,
            ..Attempt::default()
        };
        Execution {
            execution_id: "01JEXEC".into(),
            script_id: "flaky".into(),
            specialist: Some("ops".into()),
            user: Some("ann".into()),
            session_id: Some("s1".into()),
            correlation_id: Some("job-7".into()),
            success: true,
            exit_code: Some(0),
            started_ns: s,
            finished_ns: s + 330 * ms,
            retries: 2,
            peak_memory_mb: 3.5,
            cpu_time_seconds: 0.015,
            cpu_user_seconds: 0.01,
            cpu_system_seconds: 0.005,
            wall_time_seconds: 0.33,
            attempts: vec![
                attempt(1, 0, 0, false),
                attempt(2, 110, 100, false),
                attempt(3, 320, 200, true),
            ],
            ..Execution::default()
        }
    }

    pub(crate) fn attr<'a>(attributes: &'a [KeyValue], name: &str) -> Option<&'a Any> {
        attributes
            .iter()
            .find(|kv| kv.key == name)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    fn decode(e: &Execution) -> ExportTraceServiceRequest {
        let spans = spans(e);
        let body = request(
            &resource(
                "metaclaude",
                Some("web-1"),
                &[
                    ("deployment.environment".into(), "prod".into()),
                    ("service.name".into(), "ignored".into()),
                ],
            ),
            &scope(),
            spans.iter().map(|s| &s[..]),
        );
        ExportTraceServiceRequest::decode(&body[..]).unwrap()
    }

    #[test]
    fn the_official_definitions_decode_an_execution_and_its_attempts() {
        let e = flaky();
        let got = decode(&e);
        assert_eq!(got.resource_spans.len(), 1);
        let rs = &got.resource_spans[0];
        let res = &rs.resource.as_ref().unwrap().attributes;
        assert_eq!(
            attr(res, "service.name"),
            Some(&Any::StringValue("metaclaude".into()))
        );
        assert_eq!(
            attr(res, "host.name"),
            Some(&Any::StringValue("web-1".into()))
        );
        assert_eq!(
            attr(res, "deployment.environment"),
            Some(&Any::StringValue("prod".into()))
        );
        assert_eq!(res.iter().filter(|kv| kv.key == "service.name").count(), 1);
        let ss = &rs.scope_spans[0];
        assert_eq!(ss.scope.as_ref().unwrap().name, "metaclaude.otlp-exporter");
        let spans = &ss.spans;
        assert_eq!(spans.len(), 4);
        let root = &spans[0];
        assert_eq!(root.name, "run flaky");
        assert_eq!(root.kind, 1, "internal");
        assert_eq!(root.trace_id.len(), 16);
        assert_eq!(root.span_id.len(), 8);
        assert!(
            root.parent_span_id.is_empty(),
            "a root: no traceparent given"
        );
        assert_eq!(
            (root.start_time_unix_nano, root.end_time_unix_nano),
            (e.started_ns, e.finished_ns)
        );
        let a = &root.attributes;
        assert_eq!(
            attr(a, "metaclaude.script.id"),
            Some(&Any::StringValue("flaky".into()))
        );
        assert_eq!(
            attr(a, "metaclaude.execution.id"),
            Some(&Any::StringValue("01JEXEC".into()))
        );
        assert_eq!(
            attr(a, "metaclaude.specialist"),
            Some(&Any::StringValue("ops".into()))
        );
        assert_eq!(attr(a, "user.id"), Some(&Any::StringValue("ann".into())));
        assert_eq!(attr(a, "session.id"), Some(&Any::StringValue("s1".into())));
        assert_eq!(attr(a, "process.exit.code"), Some(&Any::IntValue(0)));
        assert_eq!(attr(a, "metaclaude.retries"), Some(&Any::IntValue(2)));
        assert_eq!(
            attr(a, "metaclaude.memory.peak_mb"),
            Some(&Any::DoubleValue(3.5))
        );
        assert_eq!(
            attr(a, "metaclaude.wall_time_seconds"),
            Some(&Any::DoubleValue(0.33))
        );
        assert_eq!(attr(a, "error.type"), None);
        let status = root.status.as_ref().unwrap();
        assert_eq!(status.code, StatusCode::Ok as i32);
        assert_eq!(
            root.events
                .iter()
                .map(|ev| (ev.name.as_str(), ev.time_unix_nano))
                .collect::<Vec<_>>(),
            [
                ("retry", spans[1].end_time_unix_nano),
                ("retry", spans[2].end_time_unix_nano)
            ],
            "each backoff where it began"
        );
        for (i, s) in spans[1..].iter().enumerate() {
            assert_eq!(s.name, format!("attempt {}", i + 1));
            assert_eq!(s.trace_id, root.trace_id);
            assert_eq!(s.parent_span_id, root.span_id);
            assert_ne!(s.span_id, root.span_id);
        }
        assert_eq!(
            spans[3].start_time_unix_nano - spans[2].end_time_unix_nano,
            200_000_000,
            "the gap is the backoff"
        );
        let failed = &spans[1];
        assert_eq!(
            failed.status.as_ref().unwrap().code,
            StatusCode::Error as i32
        );
        assert_eq!(
            failed.status.as_ref().unwrap().message,
            "EXECUTION: attempt 1 failed"
        );
        assert_eq!(
            attr(&failed.attributes, "error.type"),
            Some(&Any::StringValue("EXECUTION".into()))
        );
        assert_eq!(
            attr(&failed.attributes, "process.exit.code"),
            Some(&Any::IntValue(1))
        );
        assert_eq!(
            attr(&spans[3].attributes, "metaclaude.retry.delay_ms"),
            Some(&Any::IntValue(200))
        );
    }

    #[test]
    fn a_retry_that_waited_zero_is_still_a_retry_event() {
        // Full jitter draws the wait from zero up: a zero wait is a retry all the same.
        let mut e = flaky();
        e.attempts[1].delay_before_ms = 0;
        let got = decode(&e);
        let root = &got.resource_spans[0].scope_spans[0].spans[0];
        let retries: Vec<_> = root
            .events
            .iter()
            .map(|ev| {
                let delay = attr(&ev.attributes, "metaclaude.retry.delay_ms");
                (ev.name.as_str(), delay.cloned())
            })
            .collect();
        assert_eq!(
            retries,
            [
                ("retry", Some(Any::IntValue(0))),
                ("retry", Some(Any::IntValue(200)))
            ]
        );
    }

    #[test]
    fn a_failure_is_an_error_status_and_a_traceparent_is_joined() {
        let mut e = flaky();
        e.success = false;
        e.exit_code = None;
        e.signal = Some("SIGKILL".into());
        e.category = Some("TIMEOUT".into());
        e.message = Some("exceeded 5s".into());
        e.correlation_id = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        let got = decode(&e);
        let root = &got.resource_spans[0].scope_spans[0].spans[0];
        let status = root.status.as_ref().unwrap();
        assert_eq!(
            (status.code, status.message.as_str()),
            (StatusCode::Error as i32, "TIMEOUT: exceeded 5s")
        );
        assert_eq!(
            attr(&root.attributes, "error.type"),
            Some(&Any::StringValue("TIMEOUT".into()))
        );
        assert_eq!(
            attr(&root.attributes, "metaclaude.signal"),
            Some(&Any::StringValue("SIGKILL".into()))
        );
        assert_eq!(attr(&root.attributes, "process.exit.code"), None);
        assert_eq!(
            root.trace_id,
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36
            ]
        );
        assert_eq!(
            root.parent_span_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
    }
}
