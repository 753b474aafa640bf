//! The operator's grants file (`grants.toml`): `Grants::parse` either gives grants that
//! keep their invariants (valid plugin and variable names, positive ceilings, a native
//! digest of 64 lower-case hex digits), that the file the host writes for them reads back
//! the same, and that cover what they grant; or a clear error naming the file.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use metaclaude::plugin::grants::Grants;
use metaclaude::plugin::manifest::{DirRequest, Requests, Written};
use metaclaude_fuzz::{assert_clear_error, text};

fn no_env(_: &str) -> Option<String> {
    None
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    let file = Path::new("/fuzz/grants.toml");
    match Grants::parse(text, file) {
        Ok(grants) => {
            for (name, g) in &grants.plugins {
                assert!(
                    !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                    "{name:?}"
                );
                assert!(g.memory_mb > 0 && g.call_timeout_ms > 0, "{g:?}");
                for v in &g.env {
                    assert!(
                        !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                        "{v:?}"
                    );
                }
                if let Some(d) = &g.native_sha256 {
                    assert!(
                        d.len() == 64 && d.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
                        "{d:?}"
                    );
                }
                // A grant covers what it grants, as written (no file system needed for
                // the written forms: they match as they are).
                let asked = Requests {
                    env: g.env.clone(),
                    dirs: g
                        .dirs
                        .iter()
                        .map(|d| DirRequest {
                            written: d.host.clone(),
                            path: PathBuf::from("/fuzz/never/here"),
                            writable: d.writable,
                        })
                        .collect(),
                    udp: g
                        .udp
                        .iter()
                        .map(|u| Written {
                            written: u.clone(),
                            value: String::new(),
                        })
                        .collect(),
                    http: g
                        .http
                        .iter()
                        .map(|u| Written {
                            written: u.clone(),
                            value: String::new(),
                        })
                        .collect(),
                    stderr: g.stderr,
                    memory_mb: g.memory_mb,
                    call_timeout_ms: g.call_timeout_ms,
                    native: None,
                };
                let missing = g.check(&asked, None, &no_env, &[]);
                assert!(
                    missing.is_empty(),
                    "{g:?} does not cover itself: {missing:?}"
                );
            }
            // What `plugins grant` writes reads back the same.
            let again = Grants::parse(&grants.render(), file)
                .unwrap_or_else(|e| panic!("the written file does not read back: {e}"));
            assert_eq!(again, grants);
        }
        Err(e) => assert_clear_error(&e, file),
    }
});
