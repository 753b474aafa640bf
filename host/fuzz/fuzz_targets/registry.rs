//! `registry.json`: `Registry::parse` either gives scripts that keep the registry's
//! invariants (absolute paths, unique ids, positive limits; the normalised form
//! serialises) or a clear error naming the file.
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use metaclaude::registry::Registry;
use metaclaude_fuzz::{assert_clear_error, text};

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    let file = Path::new("/fuzz/registry.json");
    match Registry::parse(text, file) {
        Ok(registry) => {
            let mut ids = HashSet::new();
            for s in &registry.scripts {
                assert!(ids.insert(s.id.as_str()), "duplicate id {:?}", s.id);
                assert!(s.path.is_absolute(), "{:?}", s.path);
                assert!(s.working_dir.is_absolute(), "{:?}", s.working_dir);
                assert!(s.timeout_ms > 0 && s.output_limit_bytes > 0);
            }
            // What `registry check --normalized` prints.
            serde_json::to_string(&registry).expect("a registry serialises");
        }
        Err(e) => assert_clear_error(&e, file),
    }
});
