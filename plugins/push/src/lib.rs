//! What the push exporters (remote write, OTLP) share, one home for each:
//!
//! * [`queue`]: a bounded queue whose oldest items make room, counted as dropped;
//! * [`retry`]: which answers are retried, the doubling backoff, `Retry-After`;
//! * [`sender`]: a destination's answer taken into its figures and its next attempt;
//! * [`proto`]: protobuf's wire primitives (varints, keys, length-delimited fields);
//! * [`destination`] and [`string_map`]: the manifest's URL for people, tables of strings;
//! * [`fnv1a`]: a checksum, and stable ids from names;
//! * [`glue`] (feature `pusher`): the host's clock, its `http` import as a poster, the
//!   figures through the `delivery` interface.

pub mod proto;
pub mod queue;
pub mod retry;
pub mod sender;

#[cfg(feature = "pusher")]
pub mod glue;

use std::collections::BTreeMap;

use metaclaude_plugin_sdk::config::Table;

/// Where the items go, for people and as the `destination` label: the URL's scheme,
/// host and port (its path, query and any credentials left out).
pub fn destination(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}")
}

/// A table of strings (`{ host = "a" }`), values trimmed; absent is empty.
pub fn string_map(table: &Table, key: &str) -> Result<BTreeMap<String, String>, String> {
    match table.value(key) {
        None => Ok(BTreeMap::new()),
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k.clone(), s.trim().to_string())),
                other => Err(format!(
                    "config.{key}.{k}: expected a string, found {other}"
                )),
            })
            .collect(),
        Some(_) => Err(table.expected(key, "a table of strings")),
    }
}

/// FNV-1a, 64 bits: a checksum (the remote write spool's), and stable ids from names
/// (the OTLP exporter's trace and span ids). Not for anything an attacker chooses to
/// collide.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_keep_no_credentials_path_or_query() {
        assert_eq!(
            destination("https://u:p@vm.example:8428/api/v1/write?x=1"),
            "https://vm.example:8428"
        );
        assert_eq!(
            destination("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318"
        );
    }
}
