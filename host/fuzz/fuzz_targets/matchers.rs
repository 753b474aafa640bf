//! Alert matchers (`metaclaude::alerting::matchers`), as an operator writes them on the
//! command line (`metaclaude alerts silence add 'type=~"error_.*"'`) and as an HTTP client
//! sends them in a silence's JSON (`POST /api/v1/silences`). The input's first line is one
//! matcher's text, the rest a JSON matcher, and its last 8 bytes (as text) the label value
//! matched. A matcher accepted prints back to itself (`Display` is what the CLI lists and
//! takes); one read from JSON writes back the same JSON; `=` matches its own value only,
//! and a regex matcher of that value with every metacharacter escaped matches as `=` does
//! (the regex is anchored: it matches the whole value, never a part).
#![no_main]

use libfuzzer_sys::fuzz_target;
use metaclaude::alerting::matchers::{MatchOp, Matcher, MatcherSpec};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (line, json) = text.split_once('\n').unwrap_or((text, ""));
    let value = text
        .char_indices()
        .rev()
        .nth(7)
        .map_or(text, |(at, _)| &text[at..]);
    if let Ok(m) = Matcher::parse(line) {
        accepted(&m, value);
        let printed = m.to_string();
        assert_eq!(
            Matcher::parse(&printed).as_ref().ok(),
            Some(&m),
            "{line:?} printed as {printed:?}"
        );
    }
    if let Ok(m) = serde_json::from_str::<Matcher>(json) {
        accepted(&m, value);
        let spec: MatcherSpec = serde_json::from_str(json).expect("a matcher's JSON is a spec");
        let again = serde_json::to_value(&m).unwrap();
        assert_eq!(again, serde_json::to_value(&spec).unwrap(), "{json:?}");
    }
});

/// What every accepted matcher keeps, on `value` and on its own value: `=` matches its
/// own value alone, as the anchored regex of that value escaped does.
fn accepted(m: &Matcher, value: &str) {
    if m.op() != MatchOp::Equal {
        return;
    }
    assert!(m.matches_value(m.value()));
    assert_eq!(m.matches_value(value), value == m.value());
    if m.value().len() > 64 {
        return; // compiling long patterns twice is what slows a run, not what finds bugs
    }
    let literal = regex::escape(m.value());
    let r = Matcher::new(m.name(), MatchOp::Regex, &literal)
        .unwrap_or_else(|e| panic!("{literal:?}, {m}'s value escaped, does not compile: {e}"));
    for v in [value, m.value(), ""] {
        assert_eq!(
            r.matches_value(v),
            m.matches_value(v),
            "{r} against {m} on {v:?}"
        );
    }
}
