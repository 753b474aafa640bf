//! StatsD lines and datagrams.
//!
//! A line is `name:value|type[|@rate][|#key:value,key:value]`. What may appear where:
//!
//! * a name is `[A-Za-z0-9_.-]` only: `:` ends it, `|` ends the value, and daemons split
//!   or drop anything else (the reference statsd deletes every other character);
//! * a label value (a DogStatsD tag value, or a segment folded into a Graphite name) is
//!   `[A-Za-z0-9_-]`, plus `.` in a tag: `,` and `#` would split the tag list, `|` and `@`
//!   the line, `:` the key from the value, a newline the datagram, and `.` a Graphite
//!   segment. Anything else becomes `_`, one per character; an empty value is `none`; a
//!   value is cut at [`MAX_LABEL`] bytes;
//! * a value is a plain decimal (never `NaN`, `inf` or an exponent), not negative.
//!
//! Lines are packed into datagrams of at most `max_payload_bytes`, separated by `\n`; a
//! line is never split (a line longer than the payload goes alone).

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::config::{TagStyle, MAX_DATAGRAM};

/// The longest label value sent, in bytes (values are ASCII once sanitised).
pub const MAX_LABEL: usize = 200;

/// The StatsD metric types this exporter sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Counter,
    Timer,
    Gauge,
}

impl Type {
    fn code(self) -> &'static str {
        match self {
            Type::Counter => "c",
            Type::Timer => "ms",
            Type::Gauge => "g",
        }
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// A name prefix: characters outside `[A-Za-z0-9_.-]` become `_`, and empty segments
/// (leading, trailing or doubled dots) are dropped.
pub fn sanitize_prefix(raw: &str) -> String {
    let mapped: String = raw
        .chars()
        .map(|c| if name_char(c) { c } else { '_' })
        .collect();
    mapped
        .split('.')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

/// A label value as the line rules allow it for `style` (see the module docs): the value
/// itself, borrowed, when it is one already (most are: script ids, specialists).
pub fn sanitize_label(raw: &str, style: TagStyle) -> Cow<'_, str> {
    let keep_dot = style == TagStyle::DogStatsd;
    let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (keep_dot && b == b'.');
    if !raw.is_empty() && raw.len() <= MAX_LABEL && raw.bytes().all(ok) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len().min(MAX_LABEL));
    for c in raw.chars() {
        if out.len() >= MAX_LABEL {
            break;
        }
        out.push(if c.is_ascii() && ok(c as u8) { c } else { '_' });
    }
    if out.is_empty() {
        out.push_str("none");
    }
    Cow::Owned(out)
}

/// [`write_decimal`] into a `String` of its own, for the tests.
#[cfg(test)]
pub fn decimal(v: f64, decimals: usize) -> String {
    let mut s = String::new();
    write_decimal(&mut s, v, decimals);
    s
}

/// Appends `v` to `out` with at most `decimals` decimals, trailing zeros removed: `81.5`,
/// `3`, `0.000125`. Not-a-number, infinite and negative values are 0 (StatsD timers refuse
/// negatives).
///
/// The digits are those of `format!("{v:.decimals$}")` (the exact value rounded half to
/// even), which takes a slow path for many values (a third of a microsecond, three times
/// an execution); so the value is scaled and rounded as an integer instead wherever that
/// rounding is certain, and formatted the slow way only where it is not.
pub fn write_decimal(out: &mut String, v: f64, decimals: usize) {
    let v = if v.is_finite() && v > 0.0 { v } else { 0.0 };
    let start = out.len();
    match scaled(v, decimals) {
        Some((n, unit)) => {
            // The whole part, then the fraction padded to `decimals` digits: integers
            // written without `core::fmt` (its padding machinery was a tenth of the
            // exporter's time in the sandbox).
            out.push_str(itoa::Buffer::new().format(n / unit));
            if decimals > 0 {
                out.push('.');
                let mut digits = itoa::Buffer::new();
                let fraction = digits.format(n % unit);
                for _ in fraction.len()..decimals {
                    out.push('0');
                }
                out.push_str(fraction);
            }
        }
        None => {
            let _ = write!(out, "{v:.decimals$}");
        }
    }
    if out[start..].contains('.') {
        let digits = out[start..]
            .trim_end_matches('0')
            .trim_end_matches('.')
            .len();
        out.truncate(start + digits);
    }
}

/// `v` (finite, not negative) times 10^`decimals` rounded to a whole number, and
/// 10^`decimals`, when the rounding is certain: the product is a double within half a unit
/// in its last place of the exact one, and below 2^52 a unit in the last place is at most
/// half, so only a product within two units in the last place of a half (where the exact
/// one could lie on either side of it, or on it) is left to `format!`. At most 15
/// decimals, so that 10^`decimals` is exact in a double.
fn scaled(v: f64, decimals: usize) -> Option<(u64, u64)> {
    let unit = 10u64.pow(u32::try_from(decimals).ok().filter(|&d| d <= 15)?);
    let product = v * unit as f64;
    // (Infinite when `v` is huge; never NaN, `v` being finite.)
    if product >= (1u64 << 52) as f64 {
        return None;
    }
    let below = product.floor();
    let from_half = (product - below - 0.5).abs();
    // A unit in the last place of `product` (below 2^52), as a double.
    let ulp = f64::from_bits(product.to_bits() + 1) - product;
    if from_half <= 2.0 * ulp {
        return None;
    }
    Some((product.round() as u64, unit))
}

/// Writes lines in one tag style with one prefix and sample rate.
#[derive(Debug, Clone)]
pub struct Formatter {
    pub prefix: String,
    pub style: TagStyle,
    /// Below 1, every line carries `|@rate`.
    pub rate: f64,
}

impl Formatter {
    /// One line: `name` (after the prefix) with `value` of type `ty`, labelled by `labels`
    /// (key and already sanitised value, in this order). (A `String` of its own for the
    /// tests; lines are written in place with [`Formatter::write_line`].)
    #[cfg(test)]
    pub fn line(&self, name: &str, value: &str, ty: Type, labels: &[(&str, &str)]) -> String {
        let mut line = String::with_capacity(64 + labels.len() * 32);
        self.write_line(&mut line, name, |out| out.push_str(value), ty, labels);
        line
    }

    /// [`Formatter::line`] appended to `out`, its value written by `value`.
    pub fn write_line(
        &self,
        out: &mut String,
        name: &str,
        value: impl FnOnce(&mut String),
        ty: Type,
        labels: &[(&str, &str)],
    ) {
        if !self.prefix.is_empty() {
            out.push_str(&self.prefix);
            out.push('.');
        }
        out.push_str(name);
        if self.style == TagStyle::Graphite {
            for (_, v) in labels {
                out.push('.');
                out.push_str(v);
            }
        }
        out.push(':');
        value(out);
        out.push('|');
        out.push_str(ty.code());
        if self.rate < 1.0 {
            out.push_str("|@");
            write_decimal(out, self.rate, 6);
        }
        if self.style == TagStyle::DogStatsd && !labels.is_empty() {
            out.push_str("|#");
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push(':');
                out.push_str(v);
            }
        }
    }
}

/// Lines one after another in one buffer, which a batch's lines reuse.
#[derive(Debug, Default)]
pub struct Lines {
    text: String,
    ends: Vec<usize>,
}

impl Lines {
    /// Adds the line `write` appends to the buffer.
    pub fn push(&mut self, write: impl FnOnce(&mut String)) {
        write(&mut self.text);
        self.ends.push(self.text.len());
    }

    /// The lines, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.text[start..end])
    }

    /// Forgets every line, keeping the buffer.
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }
}

/// Datagrams of `\n`-separated lines, each at most `max` bytes, in order. A line longer
/// than `max` goes in a datagram of its own; one longer than a UDP datagram can carry is
/// left out and counted (the second value).
pub fn pack<'a>(lines: impl IntoIterator<Item = &'a str>, max: usize) -> (Vec<Vec<u8>>, usize) {
    let mut datagrams = Vec::new();
    let mut current: Vec<u8> = Vec::with_capacity(max);
    let mut too_long = 0;
    for line in lines {
        if line.len() > MAX_DATAGRAM {
            too_long += 1;
            continue;
        }
        let needed = if current.is_empty() {
            line.len()
        } else {
            current.len() + 1 + line.len()
        };
        if needed > max && !current.is_empty() {
            datagrams.push(std::mem::replace(&mut current, Vec::with_capacity(max)));
        }
        if !current.is_empty() {
            current.push(b'\n');
        }
        current.extend_from_slice(line.as_bytes());
    }
    if !current.is_empty() {
        datagrams.push(current);
    }
    (datagrams, too_long)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(style: TagStyle, rate: f64) -> Formatter {
        Formatter {
            prefix: "metaclaude".into(),
            style,
            rate,
        }
    }

    #[test]
    fn lines_in_each_tag_style() {
        let labels = [
            ("script", "hello"),
            ("specialist", "ops"),
            ("category", "TIMEOUT"),
        ];
        let f = fmt(TagStyle::DogStatsd, 1.0);
        assert_eq!(
            f.line("executions.failure", "1", Type::Counter, &labels),
            "metaclaude.executions.failure:1|c|#script:hello,specialist:ops,category:TIMEOUT"
        );
        assert_eq!(
            f.line(
                "execution.duration_seconds",
                "81.5",
                Type::Timer,
                &labels[..2]
            ),
            "metaclaude.execution.duration_seconds:81.5|ms|#script:hello,specialist:ops"
        );
        assert_eq!(f.line("x", "1", Type::Gauge, &[]), "metaclaude.x:1|g");
        let g = fmt(TagStyle::Graphite, 1.0);
        assert_eq!(
            g.line("executions.failure", "1", Type::Counter, &labels),
            "metaclaude.executions.failure.hello.ops.TIMEOUT:1|c"
        );
        let n = fmt(TagStyle::None, 1.0);
        assert_eq!(
            n.line("executions.failure", "1", Type::Counter, &labels),
            "metaclaude.executions.failure:1|c"
        );
        let no_prefix = Formatter {
            prefix: String::new(),
            ..f
        };
        assert_eq!(
            no_prefix.line("executions.total", "1", Type::Counter, &[]),
            "executions.total:1|c"
        );
    }

    #[test]
    fn a_sample_rate_below_one_comes_before_the_tags() {
        let f = fmt(TagStyle::DogStatsd, 0.25);
        assert_eq!(
            f.line("executions.total", "1", Type::Counter, &[("script", "a")]),
            "metaclaude.executions.total:1|c|@0.25|#script:a"
        );
        assert_eq!(
            fmt(TagStyle::Graphite, 0.1).line(
                "execution.duration_seconds",
                "3",
                Type::Timer,
                &[("script", "a")]
            ),
            "metaclaude.execution.duration_seconds.a:3|ms|@0.1"
        );
    }

    #[test]
    fn hostile_label_values_cannot_break_a_line() {
        let hostile = "a:b|c@d,e#f\ng\r\n h.i/j\u{0}é;k=l";
        assert_eq!(
            sanitize_label(hostile, TagStyle::DogStatsd),
            "a_b_c_d_e_f_g___h.i_j___k_l"
        );
        assert_eq!(
            sanitize_label(hostile, TagStyle::Graphite),
            "a_b_c_d_e_f_g___h_i_j___k_l"
        );
        assert_eq!(sanitize_label("", TagStyle::DogStatsd), "none");
        assert_eq!(
            sanitize_label("ok-id_1.2", TagStyle::DogStatsd),
            "ok-id_1.2"
        );
        let long = "é".repeat(1000);
        assert_eq!(sanitize_label(&long, TagStyle::DogStatsd).len(), MAX_LABEL);
        // Whatever goes in, a line parses back into exactly its parts.
        let f = fmt(TagStyle::DogStatsd, 0.5);
        let v = sanitize_label(hostile, TagStyle::DogStatsd);
        let line = f.line(
            "executions.total",
            "1",
            Type::Counter,
            &[("script", &v), ("specialist", &v)],
        );
        assert!(!line.contains(['\n', '\r', '\0']));
        let (name, rest) = line.split_once(':').unwrap();
        assert_eq!(name, "metaclaude.executions.total");
        let fields: Vec<&str> = rest.split('|').collect();
        assert_eq!(
            fields,
            ["1", "c", "@0.5", &format!("#script:{v},specialist:{v}")]
        );
        let tags: Vec<&str> = fields[3][1..].split(',').collect();
        assert_eq!(tags.len(), 2);
        for tag in tags {
            assert_eq!(tag.matches(':').count(), 1, "{tag}");
        }
        let g = fmt(TagStyle::Graphite, 1.0);
        let v = sanitize_label(hostile, TagStyle::Graphite);
        let line = g.line("executions.total", "1", Type::Counter, &[("script", &v)]);
        assert_eq!(line.matches(':').count(), 1);
        assert_eq!(
            line.split(':').next().unwrap().split('.').count(),
            4,
            "{line}"
        );
    }

    /// The fast digits are `format!`'s: for values near and far from a half, tiny, huge
    /// and at every number of decimals the exporter uses.
    #[test]
    fn decimals_are_the_digits_of_format() {
        let slow = |v: f64, d: usize| {
            let mut s = format!("{v:.d$}");
            if s.contains('.') {
                while s.ends_with('0') {
                    s.pop();
                }
                if s.ends_with('.') {
                    s.pop();
                }
            }
            s
        };
        // A fixed generator (xorshift), so that a failure is the same every run.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut checked = 0;
        for d in [0, 1, 3, 6] {
            for _ in 0..200_000 {
                let r = next();
                let v = match r % 4 {
                    // Any double of any size.
                    0 => f64::from_bits(r >> 2),
                    // Milliseconds and megabytes as the exporter sees them.
                    1 => (r % 100_000_000) as f64 / 1000.0,
                    // Exactly on and next to halves of the last decimal kept.
                    2 => {
                        let half = ((r >> 8) % 1_000_000) as f64 + 0.5;
                        let v = half / 10f64.powi(d as i32);
                        f64::from_bits((v.to_bits() as i64 + (r % 5) as i64 - 2) as u64)
                    }
                    _ => (r >> 11) as f64 * f64::EPSILON,
                };
                if v.is_finite() && v > 0.0 {
                    assert_eq!(decimal(v, d), slow(v, d), "{v:e} at {d} decimals");
                    checked += 1;
                }
            }
        }
        assert!(checked > 500_000, "{checked}");
    }

    #[test]
    fn a_clean_label_is_borrowed_and_lines_share_one_buffer() {
        assert!(matches!(
            sanitize_label("deploy-api_1.v2", TagStyle::DogStatsd),
            Cow::Borrowed("deploy-api_1.v2")
        ));
        let graphite = sanitize_label("deploy.v2", TagStyle::Graphite);
        assert!(matches!(&graphite, Cow::Owned(s) if s == "deploy_v2"));
        let mut lines = Lines::default();
        lines.push(|text| text.push_str("a:1|c"));
        lines.push(|text| {
            fmt(TagStyle::None, 1.0).write_line(text, "b", |v| v.push('2'), Type::Gauge, &[])
        });
        assert_eq!(
            lines.iter().collect::<Vec<_>>(),
            ["a:1|c", "metaclaude.b:2|g"]
        );
        lines.clear();
        assert_eq!(lines.iter().count(), 0);
    }

    #[test]
    fn decimals_are_plain() {
        assert_eq!(decimal(81.5, 3), "81.5");
        assert_eq!(decimal(3.0, 3), "3");
        assert_eq!(decimal(0.000125, 6), "0.000125");
        assert_eq!(decimal(0.0000001, 6), "0");
        assert_eq!(decimal(1e21, 3), "1000000000000000000000");
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -2.0] {
            assert_eq!(decimal(bad, 3), "0");
        }
    }

    #[test]
    fn lines_are_packed_up_to_the_payload_never_split() {
        let lines: Vec<String> = (0..10).map(|i| format!("m{i}:1|c")).collect(); // 6 bytes each
        let (d, dropped) = pack(lines.iter().map(String::as_str), 20);
        assert_eq!(dropped, 0);
        // 6 + 1 + 6 = 13, + 1 + 6 = 20: three lines fit exactly.
        let texts: Vec<String> = d
            .iter()
            .map(|b| String::from_utf8(b.clone()).unwrap())
            .collect();
        assert_eq!(
            texts,
            [
                "m0:1|c\nm1:1|c\nm2:1|c",
                "m3:1|c\nm4:1|c\nm5:1|c",
                "m6:1|c\nm7:1|c\nm8:1|c",
                "m9:1|c"
            ]
        );
        assert!(d.iter().all(|b| b.len() <= 20));
        // Every line arrives once, in order.
        let back: Vec<String> = texts
            .iter()
            .flat_map(|t| t.split('\n'))
            .map(String::from)
            .collect();
        assert_eq!(back, lines);
    }

    #[test]
    fn a_line_longer_than_the_payload_goes_alone() {
        let long = format!("long:{}|c", "1".repeat(100));
        let (d, dropped) = pack(["a:1|c", long.as_str(), "b:1|c"], 64);
        assert_eq!(dropped, 0);
        assert_eq!(d.len(), 3);
        assert_eq!(d[1], long.as_bytes());
        let huge = "x".repeat(MAX_DATAGRAM + 1);
        let (d, dropped) = pack(["a:1|c", huge.as_str()], 64);
        assert_eq!((d.len(), dropped), (1, 1));
        assert_eq!(pack(std::iter::empty(), 64).0.len(), 0);
    }

    #[test]
    fn default_payload_holds_whole_executions() {
        // A typical execution's six lines with DogStatsD tags fit one 1432-byte datagram.
        let f = fmt(TagStyle::DogStatsd, 1.0);
        let l = [
            ("script", "validate_api_schema"),
            ("specialist", "api-ui-designer"),
        ];
        let lines = [
            f.line("executions.total", "1", Type::Counter, &l),
            f.line("executions.success", "1", Type::Counter, &l),
            f.line("execution.duration_seconds", "81.234", Type::Timer, &l),
            f.line("resource.memory_peak_mb", "13.9", Type::Timer, &l),
            f.line("resource.cpu_time_seconds", "0.072", Type::Counter, &l),
            f.line("executions.retries", "2", Type::Counter, &l),
        ];
        let (d, _) = pack(lines.iter().map(String::as_str), 1432);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn prefixes_keep_their_dots() {
        assert_eq!(sanitize_prefix("a..b.c"), "a.b.c");
        assert_eq!(sanitize_prefix("team 1.metaclaude"), "team_1.metaclaude");
        assert_eq!(sanitize_prefix("..."), "");
    }
}
