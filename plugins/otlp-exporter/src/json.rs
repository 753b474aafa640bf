//! OTLP/JSON (`protocol = "http/json"`): a request this crate wrote in protobuf,
//! rewritten as the OTLP specification's JSON encoding
//! (<https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding>): protobuf's JSON
//! mapping with field names in lowerCamelCase, `traceId`, `spanId` and `parentSpanId` as
//! hex (not base64), enums as numbers, 64-bit integers as decimal strings (a histogram's
//! counts as numbers, which the mapping's parsers take too).
//!
//! The protobuf encoders stay the one definition of what is sent: this module only
//! knows, per message, the field names and types it may meet ([`Field`]), and walks the
//! bytes. A field it does not know is an error (our own encoder wrote something this
//! table lacks), never silently left out.

use metaclaude_formats::json::write_string;

/// Which request a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
    Metrics,
}

/// How a field's value is written.
#[derive(Clone, Copy)]
enum Kind {
    Message(&'static [Field]),
    String,
    /// Trace and span ids: lowercase hex.
    Hex,
    /// A varint or fixed64 written as a decimal string (uint64, fixed64, int64).
    Integer64,
    /// A fixed64 count written as a number: the JSON mapping's parsers take a number or
    /// a string for 64-bit integers, and counts stay exact below 2^53; the official Rust
    /// definitions' serde reads only numbers for a histogram's counts.
    Count,
    /// A varint written as a number (enums, uint32, int32).
    Number,
    Bool,
    Double,
    /// A fixed32 written as a number (flags).
    Fixed32,
    /// Packed `repeated fixed64` counts: an array of numbers (as [`Kind::Count`]).
    PackedCounts,
    /// Packed `repeated double`: an array of numbers.
    PackedDouble,
}

#[derive(Clone, Copy)]
struct Field {
    number: u32,
    name: &'static str,
    kind: Kind,
    repeated: bool,
}

const fn one(number: u32, name: &'static str, kind: Kind) -> Field {
    Field {
        number,
        name,
        kind,
        repeated: false,
    }
}

const fn many(number: u32, name: &'static str, kind: Kind) -> Field {
    Field {
        number,
        name,
        kind,
        repeated: true,
    }
}

// common/v1/common.proto, resource/v1/resource.proto
const ANY_VALUE: &[Field] = &[
    one(1, "stringValue", Kind::String),
    one(2, "boolValue", Kind::Bool),
    one(3, "intValue", Kind::Integer64),
    one(4, "doubleValue", Kind::Double),
];
const KEY_VALUE: &[Field] = &[
    one(1, "key", Kind::String),
    one(2, "value", Kind::Message(ANY_VALUE)),
];
const ATTRIBUTES: Kind = Kind::Message(KEY_VALUE);
const RESOURCE: &[Field] = &[
    many(1, "attributes", ATTRIBUTES),
    one(2, "droppedAttributesCount", Kind::Number),
];
const SCOPE: &[Field] = &[
    one(1, "name", Kind::String),
    one(2, "version", Kind::String),
    many(3, "attributes", ATTRIBUTES),
];

// trace/v1/trace.proto
const STATUS: &[Field] = &[
    one(2, "message", Kind::String),
    one(3, "code", Kind::Number),
];
const SPAN_EVENT: &[Field] = &[
    one(1, "timeUnixNano", Kind::Integer64),
    one(2, "name", Kind::String),
    many(3, "attributes", ATTRIBUTES),
];
const SPAN: &[Field] = &[
    one(1, "traceId", Kind::Hex),
    one(2, "spanId", Kind::Hex),
    one(3, "traceState", Kind::String),
    one(4, "parentSpanId", Kind::Hex),
    one(5, "name", Kind::String),
    one(6, "kind", Kind::Number),
    one(7, "startTimeUnixNano", Kind::Integer64),
    one(8, "endTimeUnixNano", Kind::Integer64),
    many(9, "attributes", ATTRIBUTES),
    many(11, "events", Kind::Message(SPAN_EVENT)),
    one(15, "status", Kind::Message(STATUS)),
    one(16, "flags", Kind::Fixed32),
];
const SCOPE_SPANS: &[Field] = &[
    one(1, "scope", Kind::Message(SCOPE)),
    many(2, "spans", Kind::Message(SPAN)),
];
const RESOURCE_SPANS: &[Field] = &[
    one(1, "resource", Kind::Message(RESOURCE)),
    many(2, "scopeSpans", Kind::Message(SCOPE_SPANS)),
];
const TRACES: &[Field] = &[many(1, "resourceSpans", Kind::Message(RESOURCE_SPANS))];

// logs/v1/logs.proto
const LOG_RECORD: &[Field] = &[
    one(1, "timeUnixNano", Kind::Integer64),
    one(2, "severityNumber", Kind::Number),
    one(3, "severityText", Kind::String),
    one(5, "body", Kind::Message(ANY_VALUE)),
    many(6, "attributes", ATTRIBUTES),
    one(8, "flags", Kind::Fixed32),
    one(9, "traceId", Kind::Hex),
    one(10, "spanId", Kind::Hex),
    one(11, "observedTimeUnixNano", Kind::Integer64),
];
const SCOPE_LOGS: &[Field] = &[
    one(1, "scope", Kind::Message(SCOPE)),
    many(2, "logRecords", Kind::Message(LOG_RECORD)),
];
const RESOURCE_LOGS: &[Field] = &[
    one(1, "resource", Kind::Message(RESOURCE)),
    many(2, "scopeLogs", Kind::Message(SCOPE_LOGS)),
];
const LOGS: &[Field] = &[many(1, "resourceLogs", Kind::Message(RESOURCE_LOGS))];

// metrics/v1/metrics.proto
const NUMBER_POINT: &[Field] = &[
    many(7, "attributes", ATTRIBUTES),
    one(2, "startTimeUnixNano", Kind::Integer64),
    one(3, "timeUnixNano", Kind::Integer64),
    one(4, "asDouble", Kind::Double),
    one(6, "asInt", Kind::Integer64),
];
const HISTOGRAM_POINT: &[Field] = &[
    many(9, "attributes", ATTRIBUTES),
    one(2, "startTimeUnixNano", Kind::Integer64),
    one(3, "timeUnixNano", Kind::Integer64),
    one(4, "count", Kind::Count),
    one(5, "sum", Kind::Double),
    one(6, "bucketCounts", Kind::PackedCounts),
    one(7, "explicitBounds", Kind::PackedDouble),
];
const SUM: &[Field] = &[
    many(1, "dataPoints", Kind::Message(NUMBER_POINT)),
    one(2, "aggregationTemporality", Kind::Number),
    one(3, "isMonotonic", Kind::Bool),
];
const HISTOGRAM: &[Field] = &[
    many(1, "dataPoints", Kind::Message(HISTOGRAM_POINT)),
    one(2, "aggregationTemporality", Kind::Number),
];
const METRIC: &[Field] = &[
    one(1, "name", Kind::String),
    one(2, "description", Kind::String),
    one(3, "unit", Kind::String),
    one(7, "sum", Kind::Message(SUM)),
    one(9, "histogram", Kind::Message(HISTOGRAM)),
];
const SCOPE_METRICS: &[Field] = &[
    one(1, "scope", Kind::Message(SCOPE)),
    many(2, "metrics", Kind::Message(METRIC)),
];
const RESOURCE_METRICS: &[Field] = &[
    one(1, "resource", Kind::Message(RESOURCE)),
    many(2, "scopeMetrics", Kind::Message(SCOPE_METRICS)),
];
const METRICS: &[Field] = &[many(1, "resourceMetrics", Kind::Message(RESOURCE_METRICS))];

/// The JSON of a protobuf request of `signal`.
pub fn from_protobuf(signal: Signal, body: &[u8]) -> Result<Vec<u8>, String> {
    let schema = match signal {
        Signal::Traces => TRACES,
        Signal::Logs => LOGS,
        Signal::Metrics => METRICS,
    };
    let mut out = String::with_capacity(body.len() * 2);
    message(&mut out, schema, body, "request")?;
    Ok(out.into_bytes())
}

/// Reads a varint at `*at`.
fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at).ok_or("a varint cut short")?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err("a varint longer than 10 bytes".into())
}

fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let end = at.checked_add(n).filter(|e| *e <= bytes.len());
    let end = end.ok_or("a field cut short")?;
    let slice = &bytes[*at..end];
    *at = end;
    Ok(slice)
}

fn double(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        out.push_str(&format!("{v:?}"));
    }
}

/// Writes the message `bytes` of `schema` as a JSON object: fields in the order they
/// first appear, a repeated field's values together as one array.
fn message(out: &mut String, schema: &[Field], bytes: &[u8], what: &str) -> Result<(), String> {
    // (index in schema, its JSON values), in order of first appearance.
    let mut fields: Vec<(usize, Vec<String>)> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let tag = varint(bytes, &mut at)?;
        let (number, wire) = ((tag >> 3) as u32, (tag & 7) as u8);
        let i = schema
            .iter()
            .position(|f| f.number == number)
            .ok_or_else(|| format!("{what}: field {number} is not in the OTLP/JSON table"))?;
        let field = schema[i];
        let mut value = String::new();
        match (wire, field.kind) {
            (0, kind) => {
                let v = varint(bytes, &mut at)?;
                match kind {
                    Kind::Integer64 => value = format!("\"{v}\""),
                    Kind::Number => value = (v as i64).to_string(),
                    Kind::Bool => value = (v != 0).to_string(),
                    _ => return Err(format!("{what}.{}: a varint", field.name)),
                }
            }
            (1, kind) => {
                let raw = take(bytes, &mut at, 8)?;
                let raw = u64::from_le_bytes(raw.try_into().expect("8 bytes"));
                match kind {
                    Kind::Integer64 => value = format!("\"{raw}\""),
                    Kind::Count => value = raw.to_string(),
                    Kind::Double => double(&mut value, f64::from_bits(raw)),
                    _ => return Err(format!("{what}.{}: a 64-bit value", field.name)),
                }
            }
            (5, Kind::Fixed32) => {
                let raw = take(bytes, &mut at, 4)?;
                value = u32::from_le_bytes(raw.try_into().expect("4 bytes")).to_string();
            }
            (2, kind) => {
                let n = varint(bytes, &mut at)? as usize;
                let inner = take(bytes, &mut at, n)?;
                match kind {
                    Kind::Message(schema) => {
                        message(&mut value, schema, inner, field.name)?;
                    }
                    Kind::String => {
                        let s = std::str::from_utf8(inner)
                            .map_err(|_| format!("{what}.{}: not UTF-8", field.name))?;
                        write_string(&mut value, s);
                    }
                    Kind::Hex => {
                        value.push('"');
                        for b in inner {
                            value.push_str(&format!("{b:02x}"));
                        }
                        value.push('"');
                    }
                    Kind::PackedCounts | Kind::PackedDouble => {
                        if inner.len() % 8 != 0 {
                            return Err(format!("{what}.{}: not whole 8-byte values", field.name));
                        }
                        value.push('[');
                        for (k, chunk) in inner.chunks_exact(8).enumerate() {
                            if k > 0 {
                                value.push(',');
                            }
                            let raw = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
                            if matches!(kind, Kind::PackedDouble) {
                                double(&mut value, f64::from_bits(raw));
                            } else {
                                value.push_str(&raw.to_string());
                            }
                        }
                        value.push(']');
                    }
                    _ => return Err(format!("{what}.{}: length-delimited", field.name)),
                }
            }
            _ => {
                return Err(format!(
                    "{what}.{}: wire type {wire} does not fit the field",
                    field.name
                ))
            }
        }
        match fields.iter_mut().find(|(k, _)| *k == i) {
            Some((_, values)) if field.repeated => values.push(value),
            Some((_, values)) => values[0] = value, // a later value of a singular field wins
            None => fields.push((i, vec![value])),
        }
    }
    out.push('{');
    for (n, (i, values)) in fields.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let field = schema[*i];
        write_string(out, field.name);
        out.push(':');
        if field.repeated {
            out.push('[');
            out.push_str(&values.join(","));
            out.push(']');
        } else {
            out.push_str(&values[0]);
        }
    }
    out.push('}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    use super::*;
    use crate::metrics::Metrics;
    use crate::trace::tests::flaky;
    use crate::trace::{request, resource, scope, spans};

    fn body(items: &[Vec<u8>]) -> Vec<u8> {
        request(
            &resource("svc", Some("web-1"), &[("team".into(), "ops \"a\"".into())]),
            &scope(),
            items.iter().map(|i| &i[..]),
        )
    }

    /// The JSON, read back with the official definitions' serde (OTLP's JSON rules),
    /// equals the protobuf read with prost.
    fn same<M: Message + Default + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
        signal: Signal,
        protobuf: &[u8],
    ) -> String {
        let json = from_protobuf(signal, protobuf).unwrap();
        let text = String::from_utf8(json).unwrap();
        let from_json: M = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        let from_protobuf = M::decode(protobuf).unwrap();
        assert_eq!(from_json, from_protobuf, "{text}");
        text
    }

    #[test]
    fn traces_in_json_read_back_as_the_protobuf() {
        let text = same::<ExportTraceServiceRequest>(Signal::Traces, &body(&spans(&flaky())));
        assert!(
            text.starts_with(
                r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name""#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#""traceId":""#) && !text.contains("=="),
            "hex ids, no base64: {text}"
        );
        assert!(
            text.contains(r#""startTimeUnixNano":""#),
            "64-bit as strings: {text}"
        );
        assert!(text.contains(r#""kind":1"#), "enums as numbers: {text}");
    }

    #[test]
    fn logs_in_json_read_back_as_the_protobuf() {
        let e = flaky();
        let record = crate::logs::record(&e, r#"{"line":"with \"quotes\"\n"}"#, 42);
        same::<ExportLogsServiceRequest>(Signal::Logs, &body(&[record]));
    }

    #[test]
    fn metrics_in_json_read_back_as_the_protobuf() {
        let mut m = Metrics::new(&Default::default(), 1000, 0);
        let mut warnings = Vec::new();
        m.observe(
            &metaclaude_prometheus_series::families::Finished {
                script: "s".into(),
                specialist: None,
                success: false,
                category: Some("TIMEOUT".into()),
                duration_seconds: 1.5,
                memory_peak_mb: 3.0,
                cpu_time_seconds: 0.5,
                retries: 2,
                at: 1.0,
            },
            &mut warnings,
        );
        let text =
            same::<ExportMetricsServiceRequest>(Signal::Metrics, &body(&m.due(1000).unwrap()));
        assert!(text.contains(r#""bucketCounts":[0,"#), "{text}");
        assert!(text.contains(r#""count":1,"#), "{text}");
        assert!(text.contains(r#""explicitBounds":[0.005,"#), "{text}");
    }

    #[test]
    fn what_the_table_lacks_is_an_error_not_left_out() {
        let mut span = Vec::new();
        metaclaude_push::proto::bytes_field(&mut span, 13, b"x");
        let err = from_protobuf(Signal::Traces, &body(&[span])).unwrap_err();
        assert_eq!(err, "spans: field 13 is not in the OTLP/JSON table");
        assert!(
            from_protobuf(Signal::Traces, &[0x0a, 0x05, 1]).is_err(),
            "cut short"
        );
    }
}
