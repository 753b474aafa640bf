//! The names of a log directory's files (`metaclaude_formats::log_files::parse`): a name
//! is the live file, a rotated file with its rotation time, a compression in progress, a
//! summary, or a stray; never a panic. A rotated name's `rotation` is the plain name it is a form of.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metaclaude_formats::log_files::{self, Kind};

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let Some(parsed) = log_files::parse(name) else {
        return;
    };
    match parsed.kind {
        Kind::Live => {
            assert_eq!(name, log_files::LIVE_FILE);
            assert!(parsed.rotated_at.is_none());
        }
        Kind::Rotated { .. } | Kind::Partial | Kind::Summary => {
            assert!(parsed.rotated_at.is_some(), "{name:?}: no rotation time");
            assert!(name.starts_with(parsed.rotation), "{name:?} {parsed:?}");
            assert!(parsed.rotation.starts_with(log_files::ROTATED_PREFIX));
            assert!(parsed.rotation.ends_with(log_files::EXTENSION));
            // The plain name parses as the plain rotated file of the same rotation.
            let plain = log_files::parse(parsed.rotation).expect("the plain name parses");
            assert_eq!(plain.kind, Kind::Rotated { compressed: false });
            assert_eq!(plain.rotated_at, parsed.rotated_at);
        }
    }
});
