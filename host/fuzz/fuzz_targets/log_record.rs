//! The fast reader of log lines (`metaclaude_formats::record_parser`) against serde_json,
//! the reference: for any bytes as a line, `parse_record` answers exactly what
//! `std::str::from_utf8` then `serde_json::from_str::<Record>` answer (the same record,
//! figures bit for bit, or the same error), and the fast parser alone answers only with
//! serde_json's record. The same parser finding one member's raw text (`raw_member`, the
//! log sink's way to the result in an event's JSON) answers only with what serde_json
//! reads into an `Option<&RawValue>`. The seeds are lines as the log sink writes them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metaclaude_formats::log_summary::Record;
use metaclaude_formats::record_parser::{parse_record, parse_record_fast, raw_member, NotARecord};
use serde_json::value::RawValue;

/// What serde_json reads as the member `resource_usage`'s raw text.
#[derive(serde::Deserialize)]
struct Member<'a> {
    #[serde(borrow, default)]
    resource_usage: Option<&'a RawValue>,
}

fn reference(line: &[u8]) -> Result<Record<'_>, NotARecord> {
    let text = std::str::from_utf8(line).map_err(|e| NotARecord(e.to_string()))?;
    serde_json::from_str::<Record>(text).map_err(|e| NotARecord(e.to_string()))
}

fn figures(r: &Record<'_>) -> Option<[u64; 3]> {
    r.resource_usage.as_ref().map(|u| {
        [
            u.wall_time_seconds.to_bits(),
            u.peak_memory_mb.to_bits(),
            u.cpu_time_seconds.to_bits(),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let want = reference(data);
    if let Some(fast) = parse_record_fast(data) {
        match &want {
            Ok(want) => {
                assert_eq!(&fast, want);
                assert_eq!(figures(&fast), figures(want));
            }
            Err(e) => panic!("the fast parser took a line serde_json refuses: {e}"),
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(fast) = raw_member(text, "resource_usage") {
            match serde_json::from_str::<Member>(text) {
                Ok(want) => assert_eq!(fast, want.resource_usage.map(RawValue::get)),
                Err(e) => panic!("raw_member took a text serde_json refuses: {e}"),
            }
        }
    }
    let got = parse_record(data);
    assert_eq!(got, want);
    if let (Ok(got), Ok(want)) = (&got, &want) {
        assert_eq!(figures(got), figures(want));
    }
});
