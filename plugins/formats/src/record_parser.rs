//! A log line read into its [`Record`] fast: the one reader of log lines for the host's
//! query (`metaclaude logs`) and the summaries' builder ([`SummaryBuilder`]), so that a
//! summary counts exactly what a full read counts.
//!
//! [`parse_record`] takes exactly the lines `serde_json::from_str::<Record>` takes, with the
//! same field values, and refuses the others with serde_json's own message. It first tries
//! a parser made for the lines the log sink writes ([`parse_record_fast`]): one object of
//! unescaped field values, numbers in plain decimal, everything else skipped without being
//! built. Where that parser cannot be sure of serde_json's answer (an escape in a value it
//! keeps, a repeated field, a negative or long number, a value of another type, invalid
//! JSON, ...) it answers `None` and serde_json reads the line instead: the fast parser
//! never decides anything serde_json would decide otherwise, only sooner.
//!
//! What the fast parser checks as serde_json does, for the values it skips as well: JSON's
//! grammar (no trailing comma, keys are strings, literals spelt out, numbers as JSON
//! writes them), strings without raw control characters and with valid escapes (`\u`
//! followed by four hex digits; a lone surrogate in a skipped string is allowed, as
//! serde_json allows it there), UTF-8 throughout (checked per string: everything outside
//! strings is ASCII or refused), and nothing but whitespace after the object. A test
//! (`tests` below) and a fuzz target (`host/fuzz/fuzz_targets/log_record.rs`) compare it
//! with serde_json on valid, mutated and truncated lines.
//!
//! [`raw_member`] is the same parser finding one member's raw text in an object (with the
//! same guarantee), and [`last_member`] the same for a member its writer puts last, taken
//! as it is without reading it (the log sink's way to the result in the host's JSON of an
//! event: only the members before it are checked).
//!
//! [`SummaryBuilder`]: crate::log_summary::SummaryBuilder

use std::borrow::Cow;

use crate::log_summary::{Record, Usage};

/// Why a line is not a log record: serde_json's message (or the UTF-8 error's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotARecord(pub String);

impl std::fmt::Display for NotARecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotARecord {}

/// The record of one log line (without its newline), borrowed from it where serde_json
/// borrows; the error says why the line is not one. Exactly what
/// `std::str::from_utf8` then `serde_json::from_str::<Record>` answer, only faster.
pub fn parse_record(line: &[u8]) -> Result<Record<'_>, NotARecord> {
    if let Some(record) = parse_record_fast(line) {
        return Ok(record);
    }
    // JSON is UTF-8 throughout, but serde_json does not check the fields it skips: a line
    // with other bytes there would parse and be printed by `--json` as it is, a line no
    // JSON reader takes.
    let text = std::str::from_utf8(line).map_err(|e| NotARecord(e.to_string()))?;
    serde_json::from_str::<Record>(text).map_err(|e| NotARecord(e.to_string()))
}

/// The fast parser alone: `Some` only with the record serde_json reads from `line`;
/// `None` where it cannot tell (then serde_json decides: see the module's documentation).
pub fn parse_record_fast(line: &[u8]) -> Option<Record<'_>> {
    // UTF-8 throughout: outside strings only ASCII is JSON; inside, serde_json takes any
    // character (after `from_utf8`, as the line's reader does).
    let text = simdutf8::basic::from_utf8(line).ok()?;
    let mut p = Parser {
        text,
        b: line,
        i: 0,
    };
    let mut r = Record::default();
    let mut seen = 0u32;
    p.object(|p, key| match field_of(key) {
        Some(field) => {
            // A repeated field is an error in serde_json.
            let bit = 1u32 << field as u32;
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            p.field(field, &mut r)
        }
        None => p.skip_value(0),
    })?;
    Some(r)
}

/// The raw text of the member `name` of the JSON object `json` (`None` inside when it is
/// absent or `null`), exactly what serde_json reads into an `Option<&RawValue>` field of
/// a struct that ignores its other members, with the whole text checked as serde_json
/// checks it; `None` where the fast parser cannot tell (an escaped key, a repeated
/// `name`, a value nested too deep, invalid JSON, ...: then serde_json decides, and says
/// why). The log sink finds the result's text in an event's JSON with it.
pub fn raw_member<'a>(json: &'a str, name: &str) -> Option<Option<&'a str>> {
    let mut p = Parser {
        text: json,
        b: json.as_bytes(),
        i: 0,
    };
    let mut found = None;
    p.object(|p, key| {
        let start = p.i;
        p.skip_value(0)?;
        if key == name.as_bytes() {
            // A repeated field is an error in serde_json.
            if found.is_some() {
                return None;
            }
            let raw = &json[start..p.i];
            found = Some((raw != "null").then_some(raw));
        }
        Some(())
    })?;
    Some(found.flatten())
}

/// The raw text of the member `name` of the JSON object `json`, for a writer that puts
/// that member last, as the host does `result` in an event's JSON (WIT `event.json`):
/// the members before it are read and checked as by [`raw_member`]; its value is taken as
/// it is, from its first byte to the object's closing brace, without reading it through
/// (for a 1 MiB output, the scan was the log sink's largest cost). `None` where that does
/// not hold on the face of it (no such member, an escaped key before it, a value that is
/// not an object ending right before the closing brace): then ask [`raw_member`]. A member
/// written after it would be taken into the text, so only a writer that guarantees the
/// order may be read so.
pub fn last_member<'a>(json: &'a str, name: &str) -> Option<&'a str> {
    let mut p = Parser {
        text: json,
        b: json.as_bytes(),
        i: 0,
    };
    p.ws();
    // The members are read up to `name`, where reading stops (the `None` that ends it).
    let mut start = None;
    let _ = p.members(|p, key| {
        if key == name.as_bytes() {
            start = Some(p.i);
            return None;
        }
        p.skip_value(0)
    });
    let ws: &[char] = &[' ', '\t', '\n', '\r'];
    let value = json[start?..]
        .trim_end_matches(ws)
        .strip_suffix('}')?
        .trim_end_matches(ws);
    (value.len() >= 2 && value.starts_with('{') && value.ends_with('}')).then_some(value)
}

/// The fields of [`Record`] the fast parser fills, by their JSON names.
#[derive(Clone, Copy)]
enum Field {
    Timestamp,
    StartedAt,
    Level,
    Event,
    Category,
    ExecutionId,
    ScriptId,
    Specialist,
    User,
    SessionId,
    CorrelationId,
    Success,
    ExitCode,
    Retries,
    ResourceUsage,
}

fn field_of(key: &[u8]) -> Option<Field> {
    Some(match key {
        b"timestamp" => Field::Timestamp,
        b"started_at" => Field::StartedAt,
        b"level" => Field::Level,
        b"event" => Field::Event,
        b"category" => Field::Category,
        b"execution_id" => Field::ExecutionId,
        b"script_id" => Field::ScriptId,
        b"specialist" => Field::Specialist,
        b"user" => Field::User,
        b"session_id" => Field::SessionId,
        b"correlation_id" => Field::CorrelationId,
        b"success" => Field::Success,
        b"exit_code" => Field::ExitCode,
        b"retries" => Field::Retries,
        b"resource_usage" => Field::ResourceUsage,
        _ => return None,
    })
}

/// The deepest nesting of skipped values the fast parser follows (serde_json has no
/// limit there; deeper lines go to it).
const MAX_DEPTH: u32 = 64;

/// Where a string's raw text is, between its quotes.
struct Str {
    start: usize,
    end: usize,
    /// Whether it holds escapes (its value is then not its raw text).
    escaped: bool,
}

/// 0x01 in every byte of a word.
const ONES: u64 = u64::MAX / 255;
/// 0x80 in every byte of a word.
const HIGHS: u64 = ONES << 7;

/// The bytes of `w` that end a run of plain string bytes, each flagged by its high bit:
/// `"`, `\` or a control character (below 0x20). Exact for the lowest flagged byte (a
/// borrow can flag bytes above a flagged one, never below).
fn specials(w: u64) -> u64 {
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    (zero_in(quote) | zero_in(backslash) | below_space) & HIGHS
}

/// Where the run of plain string bytes from `i` in `b` ends: at the first quote, backslash
/// or control character, or, with fewer than 8 bytes left, somewhere before them (the
/// caller goes on a byte at a time). 16 bytes at a time with SSE2 (part of every x86-64),
/// then a word at a time.
#[inline(always)]
fn plain_run_end(b: &[u8], mut i: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        while i + 16 <= b.len() {
            // SAFETY: SSE2 is in every x86-64 target's baseline, and the 16 bytes loaded
            // (an unaligned load) are inside `b`: `i + 16 <= b.len()`.
            let flagged = unsafe {
                let v = _mm_loadu_si128(b.as_ptr().add(i).cast());
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                // Below 0x20, unsigned: the byte is its minimum with 0x1f.
                let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
            };
            if flagged != 0 {
                return i + flagged.trailing_zeros() as usize;
            }
            i += 16;
        }
    }
    while let Some(chunk) = b.get(i..i + 8) {
        let m = specials(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        if m != 0 {
            return i + m.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    i
}

/// The exact powers of ten a double holds.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

struct Parser<'a> {
    /// The line, checked to be UTF-8.
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// The whole text as one object ([`Parser::members`]), then nothing but whitespace.
    fn object(&mut self, member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.ws();
        self.members(member)?;
        self.ws();
        (self.i == self.b.len()).then_some(())
    }

    /// An object from its `{` to its `}`: each member's key handed to `member` with the
    /// parser at its value, which `member` reads. `None` for anything else, an escaped key
    /// too (serde_json compares keys unescaped).
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        let b = self.b;
        self.expect(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.expect(b'"')?;
            let key = self.string()?;
            if key.escaped {
                return None;
            }
            self.ws();
            self.expect(b':')?;
            self.ws();
            member(self, &b[key.start..key.end])?;
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// JSON's whitespace, as serde_json skips it.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// The string whose opening quote was just read, checked as serde_json checks a string
    /// it skips: no raw control character, valid escapes. (UTF-8 was checked for the
    /// whole line.)
    #[inline(always)]
    fn string(&mut self) -> Option<Str> {
        let b = self.b;
        let start = self.i;
        let mut escaped = false;
        let mut i = self.i;
        loop {
            i = plain_run_end(b, i);
            match *b.get(i)? {
                b'"' => {
                    self.i = i + 1;
                    return Some(Str {
                        start,
                        end: i,
                        escaped,
                    });
                }
                b'\\' => {
                    escaped = true;
                    match *b.get(i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                        b'u' => {
                            let hex = b.get(i + 2..i + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            i += 6;
                        }
                        _ => return None,
                    }
                }
                // A raw control character.
                c if c < 0x20 => return None,
                _ => i += 1,
            }
        }
    }

    /// A string value kept as the record's (borrowed: one with escapes goes to serde_json).
    fn kept_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        match self.next()? {
            b'"' => {
                let s = self.string()?;
                if s.escaped {
                    return None;
                }
                Some(Some(Cow::Borrowed(self.text.get(s.start..s.end)?)))
            }
            b'n' => self.literal(b"ull").map(|()| None),
            _ => None,
        }
    }

    /// The rest of a literal whose first byte was just read.
    fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let end = self.i + rest.len();
        (self.b.get(self.i..end)? == rest).then(|| self.i = end)
    }

    /// A number's text, checked against JSON's grammar (as serde_json skips one).
    fn number(&mut self) -> Option<&'a [u8]> {
        let b = self.b;
        let start = self.i;
        let digits = |i: &mut usize| {
            let from = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > from
        };
        let mut i = self.i;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                digits(&mut i);
            }
            _ => return None,
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        self.i = i;
        Some(&b[start..i])
    }

    /// An unsigned integer of at most 18 digits, plain (what serde_json reads as the same
    /// `u64` for an integer field); `None` for anything else.
    fn small_unsigned(&mut self) -> Option<u64> {
        let text = self.number()?;
        if text.len() > 18 || !text.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(text.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
    }

    /// A non-negative decimal of at most 15 digits and no exponent: its value exactly as
    /// serde_json computes it (the digits as an integer, below 2^53 and so exact, divided
    /// by an exact power of ten: one correctly rounded operation). `None` otherwise.
    fn plain_decimal(&mut self) -> Option<f64> {
        let text = self.number()?;
        let (int, frac) = match text.iter().position(|c| *c == b'.') {
            Some(dot) => (&text[..dot], &text[dot + 1..]),
            None => (text, &text[..0]),
        };
        let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
        if int.len() + frac.len() > 15 || !all_digits(int) || !all_digits(frac) {
            return None;
        }
        let significand = int
            .iter()
            .chain(frac)
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        Some(significand as f64 / POW10[frac.len()])
    }

    /// The value of a known field, into `r`.
    fn field(&mut self, field: Field, r: &mut Record<'a>) -> Option<()> {
        let text = match field {
            Field::Timestamp => &mut r.timestamp,
            Field::StartedAt => &mut r.started_at,
            Field::Level => &mut r.level,
            Field::Event => &mut r.event,
            Field::Category => &mut r.category,
            Field::ExecutionId => &mut r.execution_id,
            Field::ScriptId => &mut r.script_id,
            Field::Specialist => &mut r.specialist,
            Field::User => &mut r.user,
            Field::SessionId => &mut r.session_id,
            Field::CorrelationId => &mut r.correlation_id,
            Field::Success => {
                r.success = match self.next()? {
                    b't' => self.literal(b"rue").map(|()| Some(true))?,
                    b'f' => self.literal(b"alse").map(|()| Some(false))?,
                    b'n' => self.literal(b"ull").map(|()| None)?,
                    _ => return None,
                };
                return Some(());
            }
            Field::ExitCode => {
                r.exit_code = match self.peek()? {
                    b'n' => self.null()?,
                    _ => Some(i64::try_from(self.small_unsigned()?).ok()?),
                };
                return Some(());
            }
            Field::Retries => {
                r.retries = match self.peek()? {
                    b'n' => self.null()?,
                    _ => Some(self.small_unsigned()?),
                };
                return Some(());
            }
            Field::ResourceUsage => {
                r.resource_usage = match self.peek()? {
                    b'n' => self.null()?,
                    b'{' => Some(self.usage()?),
                    _ => return None,
                };
                return Some(());
            }
        };
        *text = self.kept_string()?;
        Some(())
    }

    /// `null`, as an absent value.
    fn null<T>(&mut self) -> Option<Option<T>> {
        self.i += 1;
        self.literal(b"ull").map(|()| None)
    }

    /// The `resource_usage` object: its three figures, the rest skipped.
    fn usage(&mut self) -> Option<Usage> {
        let mut u = Usage::default();
        let mut seen = 0u8;
        self.members(|p, key| {
            let figure = match key {
                b"wall_time_seconds" => Some((1, &mut u.wall_time_seconds)),
                b"peak_memory_mb" => Some((2, &mut u.peak_memory_mb)),
                b"cpu_time_seconds" => Some((4, &mut u.cpu_time_seconds)),
                _ => None,
            };
            match figure {
                None => p.skip_value(1),
                Some((bit, figure)) => {
                    if seen & bit != 0 {
                        return None;
                    }
                    seen |= bit;
                    *figure = p.plain_decimal()?;
                    Some(())
                }
            }
        })?;
        Some(u)
    }

    /// Skips one value (whitespace before it already skipped), checking it as serde_json
    /// checks a value it ignores.
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        match self.next()? {
            b'"' => self.string().map(drop),
            b'n' => self.literal(b"ull"),
            b't' => self.literal(b"rue"),
            b'f' => self.literal(b"alse"),
            b'-' | b'0'..=b'9' => {
                self.i -= 1;
                self.number().map(drop)
            }
            open @ (b'{' | b'[') => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let close = if open == b'{' { b'}' } else { b']' };
                self.ws();
                if self.peek()? == close {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.expect(b'"')?;
                        self.string()?;
                        self.ws();
                        self.expect(b':')?;
                        self.ws();
                    }
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        c if c == close => return Some(()),
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
