//! Reading the manifest's `[config]` table (handed to `init` as JSON): every problem names
//! its key (`config.port: ...`) and what would be accepted.
//!
//! `${VAR}` expands to a string in the manifest, so numbers and booleans are also taken
//! as strings (`"true"`, `"60"`), and a list also as one string of comma-separated items.
//!
//! ```
//! use metaclaude_plugin_sdk::config::Table;
//!
//! let table = Table::parse(r#"{"port":"8125","verbose":true}"#, &["port", "verbose"])?;
//! assert_eq!(table.whole("port", 1, 65535)?, Some(8125));
//! assert_eq!(table.boolean("verbose")?, Some(true));
//! assert_eq!(table.string("host")?, None);
//! assert_eq!(
//!     Table::parse(r#"{"prot":1}"#, &["port"]).unwrap_err(),
//!     "config.prot: unknown key (known: port)"
//! );
//! # Ok::<(), String>(())
//! ```

use serde_json::{Map, Value};

/// A `[config]` table.
#[derive(Debug, Default)]
pub struct Table {
    map: Map<String, Value>,
}

impl Table {
    /// Parses the table, refusing a key not in `known` (naming the known ones).
    pub fn parse(json: &str, known: &[&str]) -> Result<Table, String> {
        Table::read(json)?.check_keys(known, &known.join(", "))
    }

    /// Parses the table, whatever its keys.
    pub fn read(json: &str) -> Result<Table, String> {
        match serde_json::from_str(json) {
            Ok(Value::Object(map)) => Ok(Table { map }),
            Ok(other) => Err(format!("config must be a table, found {other}")),
            Err(e) => Err(format!("config is not valid JSON: {e}")),
        }
    }

    /// Refuses the first key (in the table's order) not in `known`; the message lists the
    /// known keys as `listing`.
    pub fn check_keys(self, known: &[&str], listing: &str) -> Result<Table, String> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(key) => Err(format!("config.{key}: unknown key (known: {listing})")),
            None => Ok(self),
        }
    }

    /// Whether the key is given.
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The key's value as given, for a reader of a plugin's own.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    /// `config.KEY: expected WHAT, found VALUE`: the key's value is not what it takes.
    pub fn expected(&self, key: &str, what: &str) -> String {
        self.problem(key, &format!("expected {what}"))
    }

    /// `config.KEY: WHY, found VALUE`.
    pub fn problem(&self, key: &str, why: &str) -> String {
        match self.map.get(key) {
            Some(value) => format!("config.{key}: {why}, found {value}"),
            None => format!("config.{key}: {why}"),
        }
    }

    /// A string (trimmed); `None` when the key is absent.
    pub fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(_) => Err(self.expected(key, "a string")),
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
        self.expected(key, &format!("one of {}", quoted.join(", ")))
    }

    /// `true` or `false`.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.trim() == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s.trim() == "false" => Ok(Some(false)),
            Some(_) => Err(self.expected(key, "true or false")),
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
            .ok_or_else(|| self.expected(key, &format!("a whole number from {min} to {max}")))
    }

    /// A number (any: not a number, infinities included, is the caller's to refuse).
    pub fn number(&self, key: &str) -> Result<Option<f64>, String> {
        let Some(value) = self.map.get(key) else {
            return Ok(None);
        };
        value
            .as_f64()
            .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
            .map(Some)
            .ok_or_else(|| self.expected(key, "a number"))
    }

    /// A list of strings: an array, or one string of comma-separated items (empty: none).
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, String> {
        let items: Vec<String> = match self.map.get(key) {
            None => return Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(|s| s.trim().to_string()))
                .collect::<Option<_>>()
                .ok_or_else(|| self.expected(key, "an array of strings"))?,
            Some(Value::String(s)) => s.split(',').map(|s| s.trim().to_string()).collect(),
            Some(_) => return Err(self.expected(key, "an array of strings")),
        };
        Ok(Some(items.into_iter().filter(|s| !s.is_empty()).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &["url", "format", "on", "n", "x", "names", "headers"];

    fn table(json: &str) -> Table {
        Table::parse(json, KEYS).unwrap()
    }

    #[test]
    fn values_come_typed_or_as_expanded_strings() {
        let t = table(
            r#"{"url":" http://127.0.0.1:9/x ","format":"slack","on":"true","n":"60","x":" 2.5 ","names":"a, b,,c"}"#,
        );
        assert_eq!(t.string("url").unwrap().unwrap(), "http://127.0.0.1:9/x");
        assert_eq!(
            t.choice("format", &["json", "slack"]).unwrap(),
            Some("slack")
        );
        assert_eq!(t.boolean("on").unwrap(), Some(true));
        assert_eq!(t.whole("n", 1, 100).unwrap(), Some(60));
        assert_eq!(t.number("x").unwrap(), Some(2.5));
        assert_eq!(t.strings("names").unwrap().unwrap(), ["a", "b", "c"]);
        let t = table(r#"{"on":false,"n":7,"x":-1,"names":["x"," y "]}"#);
        assert_eq!(t.boolean("on").unwrap(), Some(false));
        assert_eq!(t.whole("n", 1, 100).unwrap(), Some(7));
        assert_eq!(t.number("x").unwrap(), Some(-1.0));
        assert_eq!(t.strings("names").unwrap().unwrap(), ["x", "y"]);
        assert_eq!(t.string("url").unwrap(), None);
        assert!(t.has("on") && !t.has("url"));
        assert_eq!(t.value("n"), Some(&Value::from(7)));
    }

    #[test]
    fn every_problem_names_its_key() {
        let err =
            |json: &str, f: &dyn Fn(&Table) -> Result<(), String>| f(&table(json)).unwrap_err();
        assert_eq!(
            Table::parse(r#"{"urll":"x"}"#, KEYS).unwrap_err(),
            "config.urll: unknown key (known: url, format, on, n, x, names, headers)"
        );
        assert_eq!(
            Table::read(r#"{"urll":"x"}"#)
                .unwrap()
                .check_keys(KEYS, "url and the others")
                .unwrap_err(),
            "config.urll: unknown key (known: url and the others)"
        );
        assert!(Table::read(r#"{"urll":"x"}"#).unwrap().has("urll"));
        assert_eq!(
            Table::parse("[1]", KEYS).unwrap_err(),
            "config must be a table, found [1]"
        );
        assert!(Table::parse("{", KEYS)
            .unwrap_err()
            .starts_with("config is not valid JSON: "));
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
            err(r#"{"x":"ten"}"#, &|t| t.number("x").map(drop)),
            r#"config.x: expected a number, found "ten""#
        );
        assert_eq!(
            err(r#"{"names":[1]}"#, &|t| t.strings("names").map(drop)),
            "config.names: expected an array of strings, found [1]"
        );
        assert_eq!(
            err(r#"{"url":1}"#, &|t| t.string("url").map(drop)),
            "config.url: expected a string, found 1"
        );
        let t = table(r#"{"n":[]}"#);
        assert_eq!(
            t.expected("n", "a count"),
            "config.n: expected a count, found []"
        );
        assert_eq!(t.problem("n", "too few"), "config.n: too few, found []");
        assert_eq!(t.problem("x", "missing"), "config.x: missing");
    }
}
