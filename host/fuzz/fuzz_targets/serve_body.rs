//! `POST /api/v1/executions` bodies, as `metaclaude serve` reads them (any bytes, up to
//! its body limit): a request whose `script_id` is what the JSON said and not blank, or a
//! problem with a message that says what a body must be, the field at fault when one is,
//! and the position of a JSON error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metaclaude::executor::parse_execution_body;

fuzz_target!(|data: &[u8]| {
    match parse_execution_body(data) {
        Ok(request) => {
            assert!(!request.script_id.trim().is_empty());
            let value: serde_json::Value = serde_json::from_slice(data).unwrap();
            assert_eq!(
                value["script_id"].as_str(),
                Some(request.script_id.as_str())
            );
        }
        Err(problem) => {
            assert!(
                problem.message.contains("script_id"),
                "the message says what a body must be: {problem:?}"
            );
            if let Some((line, column)) = problem.position {
                assert!(line >= 1, "{problem:?}");
                let _ = column;
            }
            if let Some(field) = &problem.field {
                assert!(problem.message.contains(field.as_str()), "{problem:?}");
            }
        }
    }
});
