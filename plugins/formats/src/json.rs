//! A small JSON writer: strings, numbers and objects written in the order given.
//!
//! The formats here fix their key order themselves (a reader diffing two files, or a
//! golden test, sees the same bytes whatever map type or feature of a JSON library is in
//! the build), and the crate stays free of dependencies beyond `chrono`.

use std::fmt::Write as _;

/// Appends `s` as a JSON string: `"` and `\` escaped, control characters as `\n`, `\t`
/// ... or `\u00XX`; everything else as it is (JSON text is UTF-8).
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    // Every character escaped is ASCII, and no byte of a multi-byte UTF-8 character is:
    // the text is scanned byte by byte, and cut only next to an ASCII byte. Eight bytes
    // at a time are passed over at once while none of them is escaped.
    let bytes = s.as_bytes();
    let mut plain_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = bytes.get(i..i + 8) {
            if !escapes_one_of(u64::from_le_bytes(word.try_into().unwrap_or_default())) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        i += 1;
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            b if b < b' ' => "",
            _ => continue,
        };
        out.push_str(&s[plain_from..i - 1]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escape);
        }
        plain_from = i;
    }
    out.push_str(&s[plain_from..]);
    out.push('"');
}

/// Whether any of the eight bytes of `word` is one [`write_string`] escapes: a control
/// character (below 0x20), `"` or `\`. (Each test sets a byte's high bit where the byte
/// matches, and may set it above a match too, never where no byte matches: so the answer
/// for the word is exact. A byte of 0x80 or more matches none of them.)
const fn escapes_one_of(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * b'"' as u64);
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = word ^ (ONES * b'\\' as u64);
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | quote | backslash) & HIGH != 0
}

/// Appends `v` as a JSON number with a decimal point and no exponent (`10.0`, `15.3`,
/// `0.0001`), so every reader takes it for a float, as serde_json's `10.0` is; JSON has no
/// NaN or infinity, so those are `null` (as serde_json writes them too).
pub fn write_number(out: &mut String, v: f64) {
    if !v.is_finite() {
        out.push_str("null");
        return;
    }
    let start = out.len();
    let _ = write!(out, "{v}");
    if !out[start..].contains('.') {
        out.push_str(".0");
    }
}

/// A JSON object being written into a `String`: keys in the order they are added.
pub struct Object<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> Object<'a> {
    /// Starts an object (writes `{`).
    pub fn new(out: &'a mut String) -> Object<'a> {
        out.push('{');
        Object { out, empty: true }
    }

    /// Writes `key` and its colon, and hands back the output for the value, which the
    /// caller must write (exactly one JSON value).
    pub fn key(&mut self, key: &str) -> &mut String {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        write_string(self.out, key);
        self.out.push(':');
        self.out
    }

    pub fn string(&mut self, key: &str, value: &str) -> &mut Self {
        write_string(self.key(key), value);
        self
    }

    pub fn number(&mut self, key: &str, value: f64) -> &mut Self {
        write_number(self.key(key), value);
        self
    }

    pub fn integer(&mut self, key: &str, value: i64) -> &mut Self {
        self.key(key).push_str(itoa::Buffer::new().format(value));
        self
    }

    pub fn boolean(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key).push_str(if value { "true" } else { "false" });
        self
    }

    /// `key` with an object of string values, in the iterator's order.
    pub fn strings<'s>(
        &mut self,
        key: &str,
        entries: impl IntoIterator<Item = (&'s str, &'s str)>,
    ) -> &mut Self {
        let mut inner = Object::new(self.key(key));
        for (k, v) in entries {
            inner.string(k, v);
        }
        inner.end();
        self
    }

    /// Ends the object (writes `}`).
    pub fn end(self) {
        self.out.push('}');
    }

    /// Ends the object with the members of `object_json`, another object's JSON text,
    /// copied as they are (its text after its `{`, closing brace included). Text that is
    /// not an object adds nothing: the object just ends.
    pub fn end_with_members_of(self, object_json: &str) {
        let Some(members) = object_json.trim_start().strip_prefix('{') else {
            return self.end();
        };
        if !self.empty && !members.trim_start().starts_with('}') {
            self.out.push(',');
        }
        self.out.push_str(members);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> String {
        let mut out = String::new();
        write_string(&mut out, s);
        out
    }

    fn number(v: f64) -> String {
        let mut out = String::new();
        write_number(&mut out, v);
        out
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_every_control_character() {
        assert_eq!(string(""), r#""""#);
        assert_eq!(string("plain é ✓"), r#""plain é ✓""#);
        assert_eq!(string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            string("\n\r\t\u{8}\u{c}\u{0}\u{1b}[31m\u{1f}"),
            r#""\n\r\t\b\f\u0000\u001b[31m\u001f""#
        );
        // DEL and C1 controls are legal JSON as they are.
        assert_eq!(string("\u{7f}\u{9b}"), "\"\u{7f}\u{9b}\"");
    }

    /// Every character next to every other kind (ASCII, escaped, two to four bytes of
    /// UTF-8), at every position of a word: what serde_json reads back is the string, and
    /// what is escaped is escaped as serde_json does it but for the controls it writes
    /// in upper-case hex (`\u001B` here is `\u001b`, both JSON).
    #[test]
    fn every_character_reads_back_from_any_position() {
        let samples = [
            'a', '"', '\\', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{0}', '\u{1f}', ' ', '\u{7f}',
            'é', '\u{9b}', '✓', '\u{fffd}', '😀',
        ];
        for &c in &samples {
            for &d in &samples {
                let long = "0123456789abcdefghij";
                for word in [
                    format!("{c}"),
                    format!("{c}{d}"),
                    format!("x{c}y{d}z"),
                    format!("{c}{long}{d}{long}"),
                    format!("{long}{c}{d}"),
                    format!("0123456{c}89abcdef{d}ghijklmnopq{c}"),
                ] {
                    let written = string(&word);
                    let back: String = serde_json::from_str(&written).unwrap();
                    assert_eq!(back, word, "{written}");
                    let theirs = serde_json::to_string(&word).unwrap();
                    assert_eq!(written.to_lowercase(), theirs.to_lowercase(), "{word:?}");
                }
            }
        }
    }

    /// The word test agrees with the byte test for every byte value at every position of
    /// a word of plain bytes, and for words of random bytes.
    #[test]
    fn a_word_escapes_one_of_its_bytes_exactly_when_a_byte_does() {
        let escaped = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut word = *b"abcdefgh";
                word[at] = b;
                assert_eq!(
                    escapes_one_of(u64::from_le_bytes(word)),
                    escaped(b),
                    "{b:#x} at {at}"
                );
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let any = x.to_le_bytes().into_iter().any(escaped);
            assert_eq!(escapes_one_of(x), any, "{x:#018x}");
        }
    }

    #[test]
    fn numbers_always_read_back_as_floats() {
        assert_eq!(number(10.0), "10.0");
        assert_eq!(number(15.3), "15.3");
        assert_eq!(number(-0.5), "-0.5");
        assert_eq!(number(0.0001), "0.0001");
        assert_eq!(number(1e21), "1000000000000000000000.0");
        assert_eq!(number(f64::NAN), "null");
        assert_eq!(number(f64::INFINITY), "null");
        for v in [
            0.1,
            1.0 / 3.0,
            1e-9,
            123456.789,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            assert_eq!(number(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn objects_keep_the_order_keys_are_added_in() {
        let mut out = String::new();
        let mut o = Object::new(&mut out);
        o.string("z", "last?")
            .number("a", 1.5)
            .integer("n", -3)
            .boolean("b", true)
            .strings("m", [("y", "1"), ("x", "2")]);
        o.key("raw").push_str("[]");
        o.end();
        assert_eq!(
            out,
            r#"{"z":"last?","a":1.5,"n":-3,"b":true,"m":{"y":"1","x":"2"},"raw":[]}"#
        );
        let mut out = String::new();
        Object::new(&mut out).end();
        assert_eq!(out, "{}");
    }

    #[test]
    fn another_objects_members_end_an_object_as_they_are_written() {
        let end_with = |first: bool, other: &str| {
            let mut out = String::new();
            let mut o = Object::new(&mut out);
            if first {
                o.integer("a", 1);
            }
            o.end_with_members_of(other);
            out
        };
        assert_eq!(end_with(true, r#"{"b": [2] }"#), r#"{"a":1,"b": [2] }"#);
        assert_eq!(end_with(false, r#" {"b":2}"#), r#"{"b":2}"#);
        assert_eq!(end_with(true, "{ }"), r#"{"a":1 }"#);
        assert_eq!(end_with(true, "{}"), r#"{"a":1}"#);
        assert_eq!(end_with(true, r#""not an object""#), r#"{"a":1}"#);
    }
}
