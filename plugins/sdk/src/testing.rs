//! Helpers for a plugin's native tests (feature `testing`: a dev-dependency's feature,
//! never built into a component).

/// The manifest's `[config]` table as JSON, as the host hands it to `init` when none of
/// the variables it names is set: every `${VAR:-default}` is its default.
///
/// ```
/// let manifest = "name = \"x\"\n[config]\nport = \"${PORT:-8125}\"\nn = 2\n[limits]\nqueue = 1\n";
/// assert_eq!(
///     metaclaude_plugin_sdk::testing::manifest_config_json(manifest),
///     r#"{"n":2,"port":"8125"}"#
/// );
/// ```
///
/// # Panics
///
/// When the manifest is not TOML, has no `[config]` table, or names a variable without
/// a default (the host refuses such a manifest when the variable is unset).
pub fn manifest_config_json(manifest: &str) -> String {
    let manifest: toml::Table = manifest
        .parse()
        .unwrap_or_else(|e| panic!("the manifest is not TOML: {e}"));
    let config = manifest
        .get("config")
        .unwrap_or_else(|| panic!("the manifest has no [config] table"));
    json(config).to_string()
}

/// A TOML value as the host writes it in JSON (strings expanded).
fn json(value: &toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(s) => expand(s).into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(items) => items.iter().map(json).collect(),
        toml::Value::Table(t) => t
            .iter()
            .map(|(k, v)| (k.clone(), json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

/// `s` with every `${VAR:-default}` replaced by its default.
fn expand(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .unwrap_or_else(|| panic!("unclosed `${{` in {s:?}"));
        match after[..end].split_once(":-") {
            Some((_, default)) => out.push_str(default),
            None => {
                panic!("{s:?} names a variable without a default: the host refuses it when unset")
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_table_comes_as_the_host_hands_it_over() {
        let manifest = r#"
name = "x"
[config]
url = "${URL:-http://127.0.0.1:9000}/api"
plain = "a # not a comment"
list = ["${A:-1}", 2.5, true]
headers = { Authorization = "Bearer ${T:-none}" }
[capabilities]
udp = ["${URL:-elsewhere}"]
"#;
        assert_eq!(
            manifest_config_json(manifest),
            r#"{"headers":{"Authorization":"Bearer none"},"list":["1",2.5,true],"plain":"a # not a comment","url":"http://127.0.0.1:9000/api"}"#
        );
    }

    #[test]
    #[should_panic(expected = "names a variable without a default")]
    fn a_variable_without_default_is_refused() {
        manifest_config_json("[config]\nurl = \"${URL}\"\n");
    }
}
