//! Messages a live-feed client sends to `/ws` (any text): a subscription whose kinds are
//! all known, or an answer that says what a message must be. Never a panic: the server
//! answers and keeps the connection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metaclaude::monitor::parse_client_message;

/// The feed's item kinds: the five lifecycle kinds and alerts.
const KINDS: [&str; 6] = [
    "queued",
    "started",
    "attempt_failed",
    "retry_scheduled",
    "finished",
    "alert",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_client_message(text) {
        Ok(subscription) => {
            assert!(subscription
                .kinds
                .iter()
                .all(|k| KINDS.contains(&k.as_str())));
        }
        Err(why) => {
            let why = why.to_string();
            assert!(
                why.contains("subscribe") || why.contains("unknown kind"),
                "{why:?}"
            )
        }
    }
});
