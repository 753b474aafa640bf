//! Trace and span ids: a caller's W3C `traceparent` (version 00) joined, or ids derived
//! from names, the same names giving the same ids (one correlation id, one trace).

use metaclaude_push::fnv1a;

/// A trace's context: its id and the span the next span hangs under (`None` for a root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub trace_id: [u8; 16],
    pub parent_span_id: Option<[u8; 8]>,
}

/// The context of a W3C `traceparent` (`00-<32 hex trace id>-<16 hex parent id>-<2 hex
/// flags>`, lowercase, neither id all zeros); `None` for anything else.
pub fn traceparent(value: &str) -> Option<Context> {
    let parts: Vec<&str> = value.split('-').collect();
    let [version, trace, parent, flags] = parts[..] else {
        return None;
    };
    if version != "00" || flags.len() != 2 || hex(flags).is_none() {
        return None;
    }
    let trace_id: [u8; 16] = hex(trace)?.try_into().ok()?;
    let parent_span_id: [u8; 8] = hex(parent)?.try_into().ok()?;
    if trace_id == [0; 16] || parent_span_id == [0; 8] {
        return None;
    }
    Some(Context {
        trace_id,
        parent_span_id: Some(parent_span_id),
    })
}

/// Lowercase hex digits as bytes.
fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The trace of an execution: the caller's when `correlation_id` is a `traceparent`,
/// else one derived from the correlation id (every execution of it in one trace), else
/// from the execution id.
pub fn context(correlation_id: Option<&str>, execution_id: &str) -> Context {
    if let Some(joined) = correlation_id.and_then(traceparent) {
        return joined;
    }
    let name = match correlation_id {
        Some(c) => format!("correlation {c}"),
        None => format!("execution {execution_id}"),
    };
    let high = fnv1a(format!("metaclaude trace {name}").as_bytes());
    let low = fnv1a(format!("{name} metaclaude trace").as_bytes());
    let mut trace_id = [0; 16];
    trace_id[..8].copy_from_slice(&high.to_be_bytes());
    trace_id[8..].copy_from_slice(&low.to_be_bytes());
    if trace_id == [0; 16] {
        trace_id[15] = 1;
    }
    Context {
        trace_id,
        parent_span_id: None,
    }
}

/// The span id of an execution (`attempt` 0) or of one of its attempts (from 1).
pub fn span_id(execution_id: &str, attempt: u32) -> [u8; 8] {
    let id = fnv1a(format!("metaclaude span {execution_id}/{attempt}").as_bytes()).max(1);
    id.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_joined() {
        let c = traceparent(VALID).unwrap();
        assert_eq!(c.trace_id[..4], [0x4b, 0xf9, 0x2f, 0x35]);
        assert_eq!(
            c.parent_span_id,
            Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
        assert_eq!(context(Some(VALID), "x"), c);
        assert!(traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").is_some());
    }

    #[test]
    fn invalid_traceparents_are_not_joined() {
        for bad in [
            "",
            "00",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn one_correlation_id_is_one_trace() {
        let a = context(Some("job-7"), "01A");
        let b = context(Some("job-7"), "01B");
        assert_eq!(a, b);
        assert_eq!(a.parent_span_id, None);
        assert_ne!(a.trace_id, context(Some("job-8"), "01A").trace_id);
        let alone = context(None, "01A");
        assert_eq!(alone, context(None, "01A"));
        assert_ne!(alone.trace_id, context(None, "01B").trace_id);
        assert_ne!(alone.trace_id, a.trace_id);
        assert_ne!(span_id("01A", 0), span_id("01A", 1));
        assert_ne!(span_id("01A", 0), span_id("01B", 0));
    }
}
