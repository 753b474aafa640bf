//! The notifiers' own `[config]` readers, on top of the SDK's [`Table`]: a URL the `http`
//! import can post to, and extra request headers.

use metaclaude_plugin_sdk::config::Table;
use serde_json::Value;

/// Headers the host writes itself: a notifier's config may not set them.
const HOST_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "user-agent",
];

/// An `http://` or `https://` URL with a host, without credentials or fragment.
pub fn http_url(table: &Table, key: &str) -> Result<Option<String>, String> {
    let Some(url) = table
        .string(key)
        .map_err(|_| table.expected(key, "a URL"))?
    else {
        return Ok(None);
    };
    check_http_url(&url).map_err(|why| format!("config.{key}: {why}"))?;
    Ok(Some(url))
}

/// Extra request headers: a table of names to values (`Authorization = "Bearer
/// ${TOKEN}"`). Names are HTTP tokens, values hold no control characters and are not
/// empty (an unset `${VAR}` expands to nothing), and the headers the host writes
/// (`Host`, `Content-Length`, `Connection`, `Transfer-Encoding`, `User-Agent`) are
/// refused.
pub fn headers(table: &Table, key: &str) -> Result<Vec<(String, String)>, String> {
    let given =
        match table.value(key) {
            None => return Ok(Vec::new()),
            Some(Value::Object(given)) => given,
            Some(_) => return Err(table.expected(
                key,
                "a table of header names to values, e.g. { Authorization = \"Bearer ${TOKEN}\" }",
            )),
        };
    let mut headers = Vec::with_capacity(given.len());
    for (name, value) in given {
        let at = format!("config.{key}.{name}");
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(format!(
                "{at}: not a valid header name (letters, digits and !#$%&'*+-.^_`|~)"
            ));
        }
        if HOST_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(format!("{at}: the host sets this header itself"));
        }
        let Value::String(value) = value else {
            return Err(format!("{at}: expected a string, found {value}"));
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(format!(
                "{at}: empty (is the variable it names set in the host's environment?)"
            ));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!(
                "{at}: control characters (line breaks ...) are not allowed in a header"
            ));
        }
        headers.push((name.clone(), value.to_string()));
    }
    Ok(headers)
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Why `url` is not a URL the `http` import can post to, if it is not.
pub fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("expected an http:// or https:// URL, found \"{url}\""))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("no host in \"{url}\""));
    }
    if authority.contains('@') {
        return Err(format!(
            "credentials in the URL are not supported, found \"{url}\": give them as a header (headers.Authorization)"
        ));
    }
    if url.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!("spaces or control characters in \"{url}\""));
    }
    if url.contains('#') {
        return Err(format!("a fragment (#...) is never sent, found \"{url}\""));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &["url", "headers"];

    fn table(json: &str) -> Table {
        Table::parse(json, KEYS).unwrap()
    }

    #[test]
    fn urls_are_trimmed_and_headers_optional() {
        let t = table(r#"{"url":" http://127.0.0.1:9/x "}"#);
        assert_eq!(
            http_url(&t, "url").unwrap().unwrap(),
            "http://127.0.0.1:9/x"
        );
        let t = table("{}");
        assert_eq!(http_url(&t, "url").unwrap(), None);
        assert!(headers(&t, "headers").unwrap().is_empty());
    }

    #[test]
    fn every_url_problem_names_its_key() {
        let err = |json: &str| http_url(&table(json), "url").unwrap_err();
        for (url, why) in [
            ("ftp://x/", "expected an http:// or https:// URL"),
            ("127.0.0.1:9093", "expected an http:// or https:// URL"),
            ("http:///path", "no host in"),
            (
                "https://user:pw@host/",
                "credentials in the URL are not supported",
            ),
            ("http://host/a b", "spaces or control characters"),
            ("http://host/#top", "a fragment"),
        ] {
            let e = err(&format!(r#"{{"url":"{url}"}}"#));
            assert!(e.starts_with(&format!("config.url: {why}")), "{url}: {e}");
        }
        assert_eq!(err(r#"{"url":1}"#), "config.url: expected a URL, found 1");
    }

    #[test]
    fn headers_are_checked_one_by_one() {
        let t = table(r#"{"headers":{"Authorization":" Bearer abc ","X-Team":"web"}}"#);
        assert_eq!(
            headers(&t, "headers").unwrap(),
            [
                ("Authorization".to_string(), "Bearer abc".to_string()),
                ("X-Team".to_string(), "web".to_string())
            ]
        );
        for (json, expect) in [
            (r#"{"headers":"x"}"#, "config.headers: expected a table"),
            (
                r#"{"headers":{"Bad Name":"x"}}"#,
                "config.headers.Bad Name: not a valid header name",
            ),
            (
                r#"{"headers":{"Content-Length":"1"}}"#,
                "config.headers.Content-Length: the host sets this header itself",
            ),
            (
                r#"{"headers":{"Authorization":""}}"#,
                "config.headers.Authorization: empty (is the variable",
            ),
            (
                r#"{"headers":{"X":"a\r\nInjected: 1"}}"#,
                "config.headers.X: control characters",
            ),
            (
                r#"{"headers":{"X":1}}"#,
                "config.headers.X: expected a string, found 1",
            ),
        ] {
            let e = headers(&table(json), "headers").unwrap_err();
            assert!(e.starts_with(expect), "{json}: {e}");
        }
    }
}
