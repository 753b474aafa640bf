//! The fast parser against serde_json, the reference: on lines as the log sink writes
//! them, on generated lines of every shape (known fields of every type, repeated and
//! unknown fields, escapes, non-ASCII text, numbers of every form, whitespace, nesting),
//! and on those lines bit-flipped, with bytes replaced, inserted or removed, and cut.

use super::*;

/// What serde_json reads from the line, as the host read it before this parser.
fn reference(line: &[u8]) -> Result<Record<'_>, NotARecord> {
    let text = std::str::from_utf8(line).map_err(|e| NotARecord(e.to_string()))?;
    serde_json::from_str::<Record>(text).map_err(|e| NotARecord(e.to_string()))
}

/// The figures' bits: `==` would take 0.0 for -0.0.
fn bits(r: &Record<'_>) -> Option<[u64; 3]> {
    r.resource_usage.as_ref().map(|u| {
        [
            u.wall_time_seconds.to_bits(),
            u.peak_memory_mb.to_bits(),
            u.cpu_time_seconds.to_bits(),
        ]
    })
}

/// Checks `line`: the fast parser answers only with serde_json's record, and
/// [`parse_record`] answers exactly as serde_json. Whether the fast parser answered.
fn check(line: &[u8]) -> bool {
    let want = reference(line);
    let fast = parse_record_fast(line);
    if let Some(fast) = &fast {
        match &want {
            Ok(want) => {
                assert_eq!(fast, want, "{}", String::from_utf8_lossy(line));
                assert_eq!(bits(fast), bits(want), "{}", String::from_utf8_lossy(line));
            }
            Err(e) => panic!(
                "the fast parser took a line serde_json refuses ({e}): {:?}",
                String::from_utf8_lossy(line)
            ),
        }
    }
    let got = parse_record(line);
    assert_eq!(got, want, "{:?}", String::from_utf8_lossy(line));
    if let (Ok(got), Ok(want)) = (&got, &want) {
        assert_eq!(bits(got), bits(want));
    }
    fast.is_some()
}

/// A line as the log sink writes one (abridged from a generated log).
const WRITTEN: &str = r#"{"log_version":1,"timestamp":"2026-11-05T00:00:00.523040Z","level":"ERROR","event":"finished","category":"DEPENDENCY","execution_id":"01J000016000000000001","script_id":"script_10_lint","specialist":"test-writer","success":false,"exit_code":1,"signal":null,"stdout":"validated item 7523 in 700 ms: c4aaca6d\nskipped item 43505\tin 784 ms: da061f11\n","stderr":"Traceback (most recent call last):\n  File \"x.py\", line 3\nValueError: \"bad\" \u001b[31m\u00e9t\u00e9\u001b[0m caf\u00e9 日本 \ud800\n","stdout_truncated":false,"stderr_truncated":false,"started_at":"2026-11-05T00:00:00.235144Z","finished_at":"2026-11-05T00:00:00.523040Z","attempts":[{"attempt":1,"started_at":"2026-11-05T00:00:00.235144Z","finished_at":"2026-11-05T00:00:00.523040Z","success":false,"exit_code":1,"signal":null,"category":"DEPENDENCY","message":null,"wall_time_seconds":0.287896,"cpu_time_seconds":0.286373,"peak_memory_mb":182.367,"delay_before_ms":0}],"retries":0,"inputs":{"schema_file":"api.yaml","n":-1.5e-7,"deep":[[[{}]],[]]},"session_id":"session-126","correlation_id":"request-22552","user":"farid","error_details":{"category":"DEPENDENCY","message":"DEPENDENCY while running script_10_lint","suggestions":["Check the input file","Run with --verbose"]},"resource_usage":{"memory_start_mb":3.5,"memory_end_mb":91.1835,"peak_memory_mb":182.367,"peak_memory_largest_process_mb":182.367,"cpu_time_seconds":0.286373,"cpu_user_seconds":0.286373,"cpu_system_seconds":0.0,"wall_time_seconds":0.287896,"memory_start_source":"sampling"}}"#;

#[test]
fn a_written_line_takes_the_fast_path_with_serde_jsons_values() {
    assert!(check(WRITTEN.as_bytes()));
    let r = parse_record(WRITTEN.as_bytes()).unwrap();
    assert_eq!(r.script_id.as_deref(), Some("script_10_lint"));
    assert_eq!(r.usage().peak_memory_mb, 182.367);
    assert!(matches!(r.timestamp, Some(Cow::Borrowed(_))));
    // A lifecycle line and the smallest records.
    for line in [
        r#"{"log_version":1,"timestamp":"2026-11-05T00:00:00.235144Z","level":"DEBUG","event":"queued","execution_id":"01J","script_id":"s","attempt":1}"#,
        "{}",
        " { } ",
        r#"{"resource_usage":{}}"#,
        r#"{"resource_usage":null,"success":null,"retries":null,"exit_code":null,"user":null}"#,
    ] {
        assert!(check(line.as_bytes()), "{line}");
    }
}

#[test]
fn lines_it_leaves_to_serde_json_get_serde_jsons_answer() {
    let cases: &[&str] = &[
        // serde_json takes these, with values the fast parser leaves to it.
        "[]",
        r#"["2024-01-15T10:30:45.123456Z",null,"INFO","finished"]"#,
        r#"{"script_id":"a\"b"}"#,
        r#"{"script\u005fid":"a"}"#,
        r#"{"exit_code":-1,"retries":18446744073709551615}"#,
        r#"{"resource_usage":{"wall_time_seconds":-0,"peak_memory_mb":1e3,"cpu_time_seconds":0.12345678901234567890}}"#,
        r#"{"resource_usage":[1.5,2,3]}"#,
        // And refuses these.
        r#"{"script_id":"a","script_id":"b"}"#,
        r#"{"resource_usage":{"peak_memory_mb":1,"peak_memory_mb":2}}"#,
        r#"{"resource_usage":{"peak_memory_mb":null}}"#,
        r#"{"exit_code":1.0}"#,
        r#"{"retries":-1}"#,
        r#"{"success":"yes"}"#,
        r#"{"stdout":"a\qb"}"#,
        r#"{"stdout":"a\u12"}"#,
        "{\"stdout\":\"a\tb\"}",
        r#"{"a":[1,]}"#,
        r#"{"a":1,}"#,
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":.5}"#,
        r#"{"a":1e}"#,
        r#"{"a":tru}"#,
        r#"{"a":1} x"#,
        r#"{"a" 1}"#,
        r#"{a:1}"#,
        "",
        "null",
    ];
    for case in cases {
        check(case.as_bytes());
    }
    // Bytes that are not UTF-8 in a skipped string.
    check(b"{\"stdout\":\"\xff\"}");
    check(b"{\"stdout\":\"\xc3\xa9\"}");
}

/// A small deterministic generator (xorshift64*), so that a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const KNOWN: [&str; 15] = [
    "timestamp",
    "started_at",
    "level",
    "event",
    "category",
    "execution_id",
    "script_id",
    "specialist",
    "user",
    "session_id",
    "correlation_id",
    "success",
    "exit_code",
    "retries",
    "resource_usage",
];

fn ws(g: &mut Rng, out: &mut String) {
    if g.chance(10) {
        out.push_str(g.pick(&[" ", "  ", "\t", "\r", "\n", " \t "]));
    }
}

fn string(g: &mut Rng, out: &mut String) {
    out.push('"');
    for _ in 0..g.below(12) {
        out.push_str(g.pick(&[
            "a",
            "Z",
            "0",
            " ",
            "item 42 ok",
            "-",
            "_",
            ":",
            "é",
            "日本",
            "🦀",
            "\\n",
            "\\\"",
            "\\\\",
            "\\/",
            "\\t",
            "\\b",
            "\\f",
            "\\r",
            "\\u001b",
            "\\u00e9",
            "\\ud800",
            "\\uDFFF",
            "\\u0041",
            "\u{7f}",
            "{",
            "}",
            "[",
            "]",
            ",",
        ]));
    }
    out.push('"');
}

fn number(g: &mut Rng, out: &mut String) {
    let digits = |g: &mut Rng, n: usize| -> String {
        (0..n.max(1))
            .map(|_| char::from(b'0' + g.below(10) as u8))
            .collect()
    };
    if g.chance(15) {
        out.push('-');
    }
    if g.chance(20) {
        out.push('0');
    } else {
        out.push(char::from(b'1' + g.below(9) as u8));
        let n = g.below(20);
        if n > 0 {
            out.push_str(&digits(g, n));
        }
    }
    if g.chance(60) {
        out.push('.');
        let n = 1 + g.below(22);
        out.push_str(&digits(g, n));
    }
    if g.chance(10) {
        out.push_str(g.pick(&["e", "E", "e+", "e-", "E-"]));
        let n = 1 + g.below(4);
        out.push_str(&digits(g, n));
    }
}

fn any_value(g: &mut Rng, out: &mut String, depth: usize) {
    match g.below(if depth > 4 { 5 } else { 7 }) {
        0 => string(g, out),
        1 => number(g, out),
        2 => out.push_str(g.pick(&["true", "false"])),
        3 => out.push_str("null"),
        4 => string(g, out),
        5 => {
            out.push('[');
            for i in 0..g.below(4) {
                if i > 0 {
                    out.push(',');
                }
                ws(g, out);
                any_value(g, out, depth + 1);
                ws(g, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            for i in 0..g.below(4) {
                if i > 0 {
                    out.push(',');
                }
                ws(g, out);
                string(g, out);
                out.push(':');
                any_value(g, out, depth + 1);
            }
            out.push('}');
        }
    }
}

fn usage(g: &mut Rng, out: &mut String) {
    out.push('{');
    let keys = [
        "wall_time_seconds",
        "peak_memory_mb",
        "cpu_time_seconds",
        "memory_start_mb",
        "peak_memory_source",
    ];
    for i in 0..g.below(7) {
        if i > 0 {
            out.push(',');
        }
        ws(g, out);
        out.push_str(&format!("\"{}\":", g.pick(&keys)));
        ws(g, out);
        if g.chance(85) {
            number(g, out);
        } else {
            any_value(g, out, 2);
        }
    }
    out.push('}');
}

/// A value for the known field `key`: mostly of its type, sometimes anything.
fn value_for(g: &mut Rng, key: &str, out: &mut String) {
    if g.chance(8) {
        return any_value(g, out, 1);
    }
    if g.chance(8) {
        return out.push_str("null");
    }
    match key {
        "success" => out.push_str(g.pick(&["true", "false"])),
        "exit_code" | "retries" => {
            if g.chance(80) {
                out.push_str(&g.below(300).to_string());
            } else {
                number(g, out);
            }
        }
        "resource_usage" => usage(g, out),
        _ => {
            if g.chance(85) {
                out.push_str(g.pick(&[
                    "\"2024-01-15T10:30:45.123456Z\"",
                    "\"finished\"",
                    "\"TIMEOUT\"",
                    "\"script_10_lint\"",
                    "\"\"",
                ]));
            } else {
                string(g, out);
            }
        }
    }
}

fn line(g: &mut Rng) -> String {
    let mut out = String::new();
    ws(g, &mut out);
    out.push('{');
    let mut used = Vec::new();
    for i in 0..g.below(18) {
        if i > 0 {
            out.push(',');
        }
        ws(g, &mut out);
        let key = if g.chance(60) {
            // Mostly each known field once, as a writer would.
            let fresh: Vec<&str> = KNOWN
                .iter()
                .copied()
                .filter(|k| !used.contains(k))
                .collect();
            match fresh.is_empty() || g.chance(3) {
                true => g.pick(&KNOWN),
                false => g.pick(&fresh),
            }
        } else {
            g.pick(&[
                "stdout",
                "attempts",
                "inputs",
                "log_version",
                "",
                "Timestamp",
            ])
        };
        used.push(key);
        out.push_str(&format!("\"{key}\""));
        ws(g, &mut out);
        out.push(':');
        ws(g, &mut out);
        if KNOWN.contains(&key) {
            value_for(g, key, &mut out);
        } else {
            any_value(g, &mut out, 1);
        }
        ws(g, &mut out);
    }
    out.push('}');
    ws(g, &mut out);
    out
}

/// `line` damaged once: a bit flipped, a byte replaced, inserted or removed, or cut.
fn mutate(g: &mut Rng, line: &[u8]) -> Vec<u8> {
    let mut out = line.to_vec();
    if out.is_empty() {
        return out;
    }
    let at = g.below(out.len());
    const BYTES: &[u8] = b"\"\\{}[],:ue-.0 \x00\x1f\x7f\x80\xc3\xff";
    match g.below(5) {
        0 => out[at] ^= 1 << g.below(8),
        1 => out[at] = BYTES[g.below(BYTES.len())],
        2 => out.insert(at, BYTES[g.below(BYTES.len())]),
        3 => {
            out.remove(at);
        }
        _ => out.truncate(at),
    }
    out
}

#[test]
fn generated_and_damaged_lines_read_as_serde_json_reads_them() {
    let mut g = Rng(0x5eed_1234_abcd_0001);
    let (mut valid, mut fast_on_valid, mut fast_on_damaged) = (0, 0, 0);
    for _ in 0..30_000 {
        let text = line(&mut g);
        if reference(text.as_bytes()).is_ok() {
            valid += 1;
        }
        if check(text.as_bytes()) {
            fast_on_valid += 1;
        }
        for _ in 0..3 {
            let damaged = mutate(&mut g, text.as_bytes());
            fast_on_damaged += usize::from(check(&damaged));
        }
    }
    // The generator makes both kinds, and the fast path is taken for many lines: a
    // parser that always deferred would pass the checks above and be no faster.
    assert!(valid > 5_000, "{valid} valid lines");
    assert!(fast_on_valid > 3_000, "{fast_on_valid} on the fast path");
    assert!(
        fast_on_damaged > 1_000,
        "{fast_on_damaged} damaged on the fast path"
    );
    // The written line, damaged at every byte in each way.
    let written = WRITTEN.as_bytes();
    for at in 0..written.len() {
        let mut cut = written.to_vec();
        cut.truncate(at);
        check(&cut);
        for b in [b'"', b'\\', b'\x01', b'\xff', b'}', b',', b'x'] {
            let mut replaced = written.to_vec();
            replaced[at] = b;
            check(&replaced);
        }
    }
}

/// What serde_json reads as the raw text of the members `inputs` and `resource_usage`,
/// each the one `Option<&RawValue>` field of a struct that ignores the rest.
fn reference_members(text: &str) -> [Result<Option<&str>, String>; 2] {
    #[derive(serde::Deserialize)]
    struct Inputs<'a> {
        #[serde(borrow, default)]
        inputs: Option<&'a serde_json::value::RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Usage<'a> {
        #[serde(borrow, default)]
        resource_usage: Option<&'a serde_json::value::RawValue>,
    }
    [
        serde_json::from_str::<Inputs>(text)
            .map(|m| m.inputs.map(|r| r.get()))
            .map_err(|e| e.to_string()),
        serde_json::from_str::<Usage>(text)
            .map(|m| m.resource_usage.map(|r| r.get()))
            .map_err(|e| e.to_string()),
    ]
}

/// Checks `text`: [`raw_member`] answers only with serde_json's raw text, for both
/// members. Whether it answered.
fn check_members(text: &str) -> bool {
    let fast = [
        raw_member(text, "inputs"),
        raw_member(text, "resource_usage"),
    ];
    let want = reference_members(text);
    for (fast, want) in fast.iter().zip(&want) {
        if let Some(fast) = fast {
            match want {
                Ok(want) => assert_eq!(fast, want, "{text}"),
                Err(e) => panic!("raw_member took a text serde_json refuses ({e}): {text:?}"),
            }
        }
    }
    fast.iter().all(Option::is_some)
}

/// A last member is taken as it is, up to the closing brace; what does not look like a
/// writer's last object member is left to `raw_member`.
#[test]
fn a_last_members_text_runs_to_the_closing_brace() {
    let event = format!(
        r#"{{"kind":"finished","timestamp":"2026-11-05T00:00:00.523040Z","execution_id":"01J","attempt":1,"result":{WRITTEN}}}"#
    );
    assert_eq!(last_member(&event, "result"), Some(WRITTEN));
    assert_eq!(
        last_member(&format!(" {{ \"result\" :\n{WRITTEN} }}\n"), "result"),
        Some(WRITTEN)
    );
    // The text is not read: an output holding what looks like the end of the object or
    // another member changes nothing.
    let tricky = r#"{"stdout":"},\"result\":{\"x\":1}}","n":[1,{"a":"}"}]}"#;
    let event =
        format!(r#"{{"kind":"finished","error":{{"m":"\"result\":{{"}},"result":{tricky}}}"#);
    assert_eq!(last_member(&event, "result"), Some(tricky));
    assert_eq!(
        raw_member(&event, "result"),
        Some(Some(tricky)),
        "as the full read"
    );
    for (text, why) in [
        (r#"{"kind":"queued"}"#, "no result"),
        (r#"{"result":null}"#, "not an object"),
        (r#"{"result":[1]}"#, "not an object"),
        (r#"{"result":{"a":1}"#, "no closing brace"),
        (r#"{"result":{"a":1} x}"#, "not right before the brace"),
        (r#"{"resul\u0074":{"a":1}}"#, "an escaped key"),
        (r#"{"a":tru,"result":{}}"#, "a member before it is not JSON"),
        (r#"{"result":}"#, "no value"),
    ] {
        assert_eq!(last_member(text, "result"), None, "{why}: {text}");
    }
}

#[test]
fn a_members_raw_text_is_serde_jsons_raw_value() {
    // An event's JSON as the host makes one: the result's text is found as it is.
    let event = format!(
        r#"{{"kind":"finished","timestamp":"2026-11-05T00:00:00.523040Z","execution_id":"01J","attempt":1,"result":{WRITTEN}}}"#
    );
    assert_eq!(raw_member(&event, "result"), Some(Some(WRITTEN)));
    assert_eq!(raw_member(&event, "results"), Some(None));
    assert_eq!(raw_member(r#" {"result" : null } "#, "result"), Some(None));
    assert_eq!(
        raw_member(r#"{"result": [1, {"a":"\""}] }"#, "result"),
        Some(Some(r#"[1, {"a":"\""}]"#))
    );
    // Left to serde_json: a repeated member, an escaped key, invalid JSON.
    assert_eq!(raw_member(r#"{"result":1,"result":2}"#, "result"), None);
    assert_eq!(raw_member(r#"{"resul\u0074":1}"#, "result"), None);
    assert_eq!(raw_member(r#"{"result":1,}"#, "result"), None);
    assert_eq!(raw_member(r#"{"result":1} x"#, "result"), None);

    let mut g = Rng(0x5eed_1234_abcd_0002);
    let (mut fast_on_valid, mut fast_on_damaged) = (0, 0);
    for _ in 0..20_000 {
        let text = line(&mut g);
        fast_on_valid += usize::from(check_members(&text));
        for _ in 0..3 {
            let damaged = mutate(&mut g, text.as_bytes());
            if let Ok(damaged) = std::str::from_utf8(&damaged) {
                fast_on_damaged += usize::from(check_members(damaged));
            }
        }
    }
    // A parser that always deferred would pass the checks above and be no faster.
    assert!(fast_on_valid > 3_000, "{fast_on_valid} on the fast path");
    assert!(
        fast_on_damaged > 1_000,
        "{fast_on_damaged} damaged on the fast path"
    );
    for at in 0..event.len() {
        for b in ['"', '\\', '\u{1}', '}', ',', 'x', 'é'] {
            if event.is_char_boundary(at) {
                let mut replaced = event.clone();
                replaced.insert(at, b);
                check_members(&replaced);
                let found = raw_member(&replaced, "result");
                if let (Some(found), Ok(v)) = (
                    found,
                    serde_json::from_str::<
                        std::collections::HashMap<String, &serde_json::value::RawValue>,
                    >(&replaced),
                ) {
                    assert_eq!(
                        found,
                        v.get("result").map(|r| r.get()).filter(|r| *r != "null")
                    );
                }
            }
        }
    }
}
