//! Reading a notifier's `[config]` table (handed to `init` as JSON): every problem names
//! its key (`config.url: ...`) and what would be accepted.
//!
//! `${VAR}` expands to a string in the manifest, so numbers and booleans are also taken
//! as strings (`"true"`, `"60"`), and a list also as one string of comma-separated items.

use serde_json::{Map, Value};

/// A `[config]` table whose keys are all known.
#[derive(Debug)]
pub struct Table {
    map: Map<String, Value>,
}

/// Headers the host writes itself: a notifier's config may not set them.
const HOST_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "user-agent",
];

impl Table {
    /// Parses the table, refusing a key not in `known` (naming the known ones).
    pub fn parse(json: &str, known: &[&str]) -> Result<Table, String> {
        let map = match serde_json::from_str(json) {
            Ok(Value::Object(map)) => map,
            Ok(other) => return Err(format!("config must be a table, found {other}")),
            Err(e) => return Err(format!("config is not valid JSON: {e}")),
        };
        if let Some(key) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "config.{key}: unknown key (known: {})",
                known.join(", ")
            ));
        }
        Ok(Table { map })
    }

    /// Whether the key is given.
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn bad(&self, key: &str, expected: &str) -> String {
        format!("config.{key}: expected {expected}, found {}", self.map[key])
    }

    /// A string (trimmed); `None` when the key is absent.
    pub fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(_) => Err(self.bad(key, "a string")),
        }
    }

    /// One of `choices`.
    pub fn choice(
        &self,
        key: &str,
        choices: &[&'static str],
    ) -> Result<Option<&'static str>, String> {
        let Some(s) = self.string(key).map_err(|_| self.one_of(key, choices))? else {
            return Ok(None);
        };
        choices
            .iter()
            .find(|c| **c == s)
            .copied()
            .map(Some)
            .ok_or_else(|| self.one_of(key, choices))
    }

    fn one_of(&self, key: &str, choices: &[&str]) -> String {
        let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
        self.bad(key, &format!("one of {}", quoted.join(", ")))
    }

    /// `true` or `false`.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.trim() == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s.trim() == "false" => Ok(Some(false)),
            Some(_) => Err(self.bad(key, "true or false")),
        }
    }

    /// A whole number from `min` to `max`.
    pub fn whole(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
        let Some(value) = self.map.get(key) else {
            return Ok(None);
        };
        value
            .as_u64()
            .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|n| (min..=max).contains(n))
            .map(Some)
            .ok_or_else(|| self.bad(key, &format!("a whole number from {min} to {max}")))
    }

    /// A list of strings: an array, or one string of comma-separated items (empty: none).
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, String> {
        let items: Vec<String> = match self.map.get(key) {
            None => return Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(|s| s.trim().to_string()))
                .collect::<Option<_>>()
                .ok_or_else(|| self.bad(key, "an array of strings"))?,
            Some(Value::String(s)) => s.split(',').map(|s| s.trim().to_string()).collect(),
            Some(_) => return Err(self.bad(key, "an array of strings")),
        };
        Ok(Some(items.into_iter().filter(|s| !s.is_empty()).collect()))
    }

    /// An `http://` or `https://` URL with a host, without credentials or fragment.
    pub fn http_url(&self, key: &str) -> Result<Option<String>, String> {
        let Some(url) = self.string(key).map_err(|_| self.bad(key, "a URL"))? else {
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
    pub fn headers(&self, key: &str) -> Result<Vec<(String, String)>, String> {
        let table = match self.map.get(key) {
            None => return Ok(Vec::new()),
            Some(Value::Object(table)) => table,
            Some(_) => return Err(self.bad(
                key,
                "a table of header names to values, e.g. { Authorization = \"Bearer ${TOKEN}\" }",
            )),
        };
        let mut headers = Vec::with_capacity(table.len());
        for (name, value) in table {
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

    const KEYS: &[&str] = &["url", "format", "on", "n", "names", "headers"];

    fn table(json: &str) -> Table {
        Table::parse(json, KEYS).unwrap()
    }

    #[test]
    fn values_come_typed_or_as_expanded_strings() {
        let t = table(
            r#"{"url":" http://127.0.0.1:9/x ","format":"slack","on":"true","n":"60","names":"a, b,,c"}"#,
        );
        assert_eq!(t.http_url("url").unwrap().unwrap(), "http://127.0.0.1:9/x");
        assert_eq!(
            t.choice("format", &["json", "slack"]).unwrap(),
            Some("slack")
        );
        assert_eq!(t.boolean("on").unwrap(), Some(true));
        assert_eq!(t.whole("n", 1, 100).unwrap(), Some(60));
        assert_eq!(t.strings("names").unwrap().unwrap(), ["a", "b", "c"]);
        let t = table(r#"{"on":false,"n":7,"names":["x"," y "]}"#);
        assert_eq!(t.boolean("on").unwrap(), Some(false));
        assert_eq!(t.whole("n", 1, 100).unwrap(), Some(7));
        assert_eq!(t.strings("names").unwrap().unwrap(), ["x", "y"]);
        assert_eq!(t.string("url").unwrap(), None);
        assert!(t.headers("headers").unwrap().is_empty());
    }

    #[test]
    fn every_problem_names_its_key() {
        let err =
            |json: &str, f: &dyn Fn(&Table) -> Result<(), String>| f(&table(json)).unwrap_err();
        assert_eq!(
            Table::parse(r#"{"urll":"x"}"#, KEYS).unwrap_err(),
            "config.urll: unknown key (known: url, format, on, n, names, headers)"
        );
        assert_eq!(
            Table::parse("[1]", KEYS).unwrap_err(),
            "config must be a table, found [1]"
        );
        assert_eq!(
            err(r#"{"format":"xml"}"#, &|t| t
                .choice("format", &["json", "slack"])
                .map(drop)),
            r#"config.format: expected one of "json", "slack", found "xml""#
        );
        assert_eq!(
            err(r#"{"format":3}"#, &|t| t
                .choice("format", &["json"])
                .map(drop)),
            r#"config.format: expected one of "json", found 3"#
        );
        assert_eq!(
            err(r#"{"on":"yes"}"#, &|t| t.boolean("on").map(drop)),
            r#"config.on: expected true or false, found "yes""#
        );
        assert_eq!(
            err(r#"{"n":0}"#, &|t| t.whole("n", 1, 100).map(drop)),
            "config.n: expected a whole number from 1 to 100, found 0"
        );
        assert_eq!(
            err(r#"{"n":"1.5"}"#, &|t| t.whole("n", 1, 100).map(drop)),
            r#"config.n: expected a whole number from 1 to 100, found "1.5""#
        );
        assert_eq!(
            err(r#"{"names":[1]}"#, &|t| t.strings("names").map(drop)),
            "config.names: expected an array of strings, found [1]"
        );
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
            let e = err(&format!(r#"{{"url":"{url}"}}"#), &|t| {
                t.http_url("url").map(drop)
            });
            assert!(e.starts_with(&format!("config.url: {why}")), "{url}: {e}");
        }
        assert_eq!(
            err(r#"{"url":1}"#, &|t| t.http_url("url").map(drop)),
            "config.url: expected a URL, found 1"
        );
    }

    #[test]
    fn headers_are_checked_one_by_one() {
        let t = table(r#"{"headers":{"Authorization":" Bearer abc ","X-Team":"web"}}"#);
        assert_eq!(
            t.headers("headers").unwrap(),
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
            let e = table(json).headers("headers").unwrap_err();
            assert!(e.starts_with(expect), "{json}: {e}");
        }
    }
}
