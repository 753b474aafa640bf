//! The log reader and query (`metaclaude logs`) on damaged, truncated and hostile files:
//! the input is written as the live `.jsonl`, as a rotated `.jsonl.gz` of it (a plain
//! gzip stream, and members framed as the log sink writes them), as the same gzip cut in
//! half, as raw bytes in a `.jsonl.gz` (hostile gzip data), and as raw bytes behind a
//! framed member's header (hostile data inflated whole, as the sink's members are). A listing, a
//! JSON listing with a limit, `--stats` and `--stats --group-by` over that directory must
//! each return normally (bad lines and files are reported on stderr, never fatal).
#![no_main]

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;
use metaclaude::logs::stats::GroupBy;
use metaclaude::logs::{execute, LogQuery};
use metaclaude_formats::gzip_blocks::{self, BlockWriter};
use serde::de::IgnoredAny;

/// One directory for every run: each input rewrites its six files.
fn log_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fuzz_target!(|data: &[u8]| {
    let dir = log_dir();
    let compressed = gzip(data);
    let mut blocks = BlockWriter::new(Vec::new(), 1);
    blocks.write_all(data).unwrap();
    let framed = blocks.finish().unwrap();
    let len = (data.len() + gzip_blocks::HEADER_LEN) as u32;
    let hostile_member = [&gzip_blocks::header(len)[..], data].concat();
    let files: [(&str, &[u8]); 6] = [
        ("executions.jsonl", data),
        (
            "executions-2024-01-14T10-00-00.000000Z.jsonl.gz",
            &compressed,
        ),
        (
            "executions-2024-01-15T10-00-00.000000Z.jsonl.gz",
            &compressed[..compressed.len() / 2],
        ),
        ("executions-2024-01-16T10-00-00.000000Z-raw.jsonl.gz", data),
        ("executions-2024-01-17T10-00-00.000000Z.jsonl.gz", &framed),
        (
            "executions-2024-01-18T10-00-00.000000Z-raw.jsonl.gz",
            &hostile_member,
        ),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let base = LogQuery {
        log_dir: dir.to_path_buf(),
        ..LogQuery::default()
    };
    let queries = [
        base.clone(),
        LogQuery {
            json: true,
            limit: Some(3),
            ..base.clone()
        },
        LogQuery {
            failed: true,
            script: Some("hello".into()),
            ..base.clone()
        },
        LogQuery {
            stats: true,
            json: true,
            ..base.clone()
        },
        LogQuery {
            group_by: Some(GroupBy::all()[data.len() % GroupBy::all().len()]),
            limit: Some(2),
            ..base
        },
    ];
    for query in &queries {
        let mut out = Vec::new();
        // What reading met (damaged lines, as fuzzing makes them) is not asserted on.
        if let Err(e) = execute(query, &mut out, &|_| {}) {
            panic!("the query {query:?} failed: {e:#}");
        }
        if query.json {
            // Every line of a JSON answer is JSON (a record as written, or the report):
            // UTF-8 and of JSON's grammar. (Not necessarily a `serde_json::Value`: that
            // refuses numbers past f64's range such as 2e308, which are JSON all the same.)
            for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let text = std::str::from_utf8(line)
                    .unwrap_or_else(|e| panic!("{query:?} wrote a line that is not UTF-8: {e}"));
                serde_json::from_str::<IgnoredAny>(text)
                    .unwrap_or_else(|e| panic!("{query:?} wrote a line that is not JSON: {e}"));
            }
        }
    }
});
