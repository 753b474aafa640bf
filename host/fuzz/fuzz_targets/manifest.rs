//! `plugin.toml`, `${VAR}` and `${VAR:-default}` included: `Manifest::parse` either gives a
//! manifest that keeps its invariants (a valid name, a `[config]` object, absolute
//! grants; the normalised form serialises) or a clear error naming the file.
//!
//! The manifest lies in a plugin folder of a temporary tree that holds the artifacts the
//! seeds name (`plugin.wasm`, `log_sink.wasm`, the test fixtures' relative paths), so the
//! component check can pass and the fuzzer reaches everything after it.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use metaclaude::plugin::manifest::Manifest;
use metaclaude_fuzz::{assert_clear_error, text};

/// The variables the manifest can name: set, empty, holding `${` (never expanded again),
/// and a boolean; any other is unset.
fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/fuzz".into()),
        "EMPTY" => Some(String::new()),
        "LOOP" => Some("${LOOP}".into()),
        "TRUE" => Some("true".into()),
        "METACLAUDE_LOG_DIR" => Some("/var/log/metaclaude".into()),
        _ => None,
    }
}

/// `<tmp>/tests/cli/plugins/plugin/plugin.toml`, with the artifacts beside it and where
/// the golden-file manifests' `../../../../plugins/target/...` paths lead.
fn manifest_file() -> &'static PathBuf {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &FILE
        .get_or_init(|| {
            let tmp = tempfile::tempdir().expect("a temporary directory");
            let dir = tmp.path().join("tests/cli/plugins/plugin");
            std::fs::create_dir_all(&dir).unwrap();
            for artifact in [
                "plugin.wasm",
                "log_sink.wasm",
                "python_sink.wasm",
                "module.wasm",
                "garbage.wasm",
                "libsink.so",
            ] {
                std::fs::write(dir.join(artifact), b"\0asm").unwrap();
            }
            let fixtures = tmp.path().join("plugins/target/wasm32-wasip2/release");
            std::fs::create_dir_all(&fixtures).unwrap();
            std::fs::write(fixtures.join("fixture_sink.wasm"), b"\0asm").unwrap();
            let file = dir.join("plugin.toml");
            (tmp, file)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    let file = manifest_file();
    match Manifest::parse(text, file, &env) {
        Ok(m) => {
            assert!(
                !m.name.is_empty()
                    && m.name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{:?}",
                m.name
            );
            assert!(m.config.is_object(), "{:?}", m.config);
            for d in &m.capabilities.dirs {
                assert!(d.host.is_absolute(), "a relative grant {:?}", d.host);
            }
            assert!(m.limits.memory_mb > 0 && m.limits.queue > 0 && m.tick_ms > 0);
            // What `plugins check --normalized` prints.
            serde_json::to_string(&m).expect("a manifest serialises");
        }
        Err(e) => assert_clear_error(&e, file),
    }
});
