//! What a notifier makes of an HTTP answer, and how it names a URL in an error.

use crate::text::{terminal_safe, truncate};

/// At most this much of a refusing server's body goes into the error.
pub const SNIPPET_BYTES: usize = 200;

/// `url` without what may be secret: the path and query (a Slack webhook's path is its
/// key) and any credentials, e.g. `https://hooks.slack.com/…`.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let hidden = !(tail.is_empty() || tail == "/") || host.len() != authority.len();
    format!("{scheme}://{host}{}", if hidden { "/…" } else { "" })
}

/// The start of `body` for an error message: as text, terminal-safe, cut to
/// [`SNIPPET_BYTES`].
pub fn snippet(body: &[u8]) -> String {
    let head = &body[..body.len().min(SNIPPET_BYTES + 4)];
    let text = String::from_utf8_lossy(head);
    let text = terminal_safe(text.trim());
    if body.len() > SNIPPET_BYTES {
        truncate(&format!("{text}…"), SNIPPET_BYTES).into_owned()
    } else {
        text.into_owned()
    }
}

/// `Ok` for a 2xx answer; otherwise an error naming the destination (as `shown`), the
/// status and the start of the body: `POST http://127.0.0.1:9093/api/v2/alerts: HTTP 400:
/// {"code":400,"message":"..."}`. A redirect says that it was not followed and where to.
pub fn check_response(
    shown: &str,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(), String> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let mut message = format!("POST {shown}: HTTP {status}");
    if (300..400).contains(&status) {
        let location = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("location"))
            .map(|(_, v)| redact(&terminal_safe(v)));
        message.push_str(" (redirects are not followed");
        if let Some(location) = location {
            message.push_str(&format!("; it points to {location}: use that URL"));
        }
        message.push(')');
    }
    let body = snippet(body);
    if !body.is_empty() {
        message.push_str(": ");
        message.push_str(&body);
    }
    Err(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_scheme_host_and_port_only() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redact("http://127.0.0.1:9000/"), "http://127.0.0.1:9000");
        assert_eq!(redact("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(redact("http://h?token=x"), "http://h/…");
        assert_eq!(redact("https://user:pw@h:1/p"), "https://h:1/…");
    }

    #[test]
    fn only_2xx_is_delivered() {
        assert_eq!(check_response("u", 200, &[], b""), Ok(()));
        assert_eq!(check_response("u", 204, &[], b"ignored"), Ok(()));
        assert_eq!(
            check_response(
                "http://127.0.0.1:9093/api/v2/alerts",
                400,
                &[],
                br#"{"code":400,"message":"start time must be before end time"}"#
            )
            .unwrap_err(),
            r#"POST http://127.0.0.1:9093/api/v2/alerts: HTTP 400: {"code":400,"message":"start time must be before end time"}"#
        );
        assert_eq!(
            check_response("u", 503, &[], b"").unwrap_err(),
            "POST u: HTTP 503"
        );
        assert_eq!(
            check_response(
                "u",
                301,
                &[("Location".into(), "https://new.example/hook/secret".into())],
                b""
            )
            .unwrap_err(),
            "POST u: HTTP 301 (redirects are not followed; it points to https://new.example/…: use that URL)"
        );
    }

    #[test]
    fn the_body_snippet_is_short_and_harmless() {
        let long = "x".repeat(5000);
        let s = snippet(long.as_bytes());
        assert!(s.len() <= SNIPPET_BYTES && s.ends_with('…'), "{s}");
        assert_eq!(
            snippet(b"  \x1b[31mred\x1b[0m\n<html>\xff"),
            "red <html>\u{fffd}"
        );
    }
}
