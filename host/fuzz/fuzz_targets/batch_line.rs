//! `metaclaude batch` request lines: each line of the input is skipped (blank or a
//! comment), a request, or an error that says where in the line and what a line must be.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metaclaude::executor::parse_request_line;
use metaclaude_fuzz::text;

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    // As `BufRead::lines` cuts them for the batch.
    for line in text.lines() {
        let trimmed = line.trim();
        match parse_request_line(line) {
            None => assert!(trimmed.is_empty() || trimmed.starts_with('#'), "{line:?}"),
            Some(Ok(request)) => {
                assert!(!trimmed.is_empty() && !trimmed.starts_with('#'));
                // The request holds what the line said, nothing less.
                let value: serde_json::Value = serde_json::from_str(trimmed).unwrap();
                assert_eq!(
                    value["script_id"].as_str(),
                    Some(request.script_id.as_str())
                );
            }
            Some(Err(why)) => {
                let why = why.to_string();
                assert!(
                    why.contains(" at line ") && why.contains(" column "),
                    "no position in {why:?}"
                );
                assert!(
                    why.ends_with(
                        "(expected {\"script_id\": \"...\", \"inputs\": {...}} with optional \
                         session_id, correlation_id, user)"
                    ),
                    "{why:?}"
                );
            }
        }
    }
});
