//! Writers for Prometheus' two text exposition formats, family by family, and the
//! conversion of one into the other.
//!
//! * [`Format::Text`]: the text format 0.0.4 (`text/plain; version=0.0.4`), what every
//!   scraper and the node_exporter textfile collector read.
//! * [`Format::OpenMetrics`]: OpenMetrics 1.0.0 (`application/openmetrics-text;
//!   version=1.0.0`), what Prometheus asks for first: counter families are named without
//!   `_total` in `# TYPE` and `# HELP` (their samples keep it), families may carry a
//!   `# UNIT`, counters and histograms a `_created` sample (a Unix time in seconds), a
//!   quote in a help text is escaped, and the text ends with `# EOF`.
//!
//! [`openmetrics_to_text`] turns OpenMetrics text (this writer's or anyone's) into the
//! 0.0.4 text: what a host does with an exporter's OpenMetrics output when the scraper
//! did not ask for OpenMetrics.
//!
//! Both formats write a histogram's `le` labels in OpenMetrics' canonical form (`0.005`,
//! `1.0`, `1.048576e+06`, `+Inf`: Go's shortest `%g`, with `.0` added to a whole number), so a
//! bucket is the same series whichever format a scrape negotiated.
//!
//! Metric and label names are the caller's constants (valid names, not checked here);
//! label values and help texts are escaped as each format requires. Samples carry no
//! timestamps (the node_exporter textfile collector refuses them, and a scrape stamps
//! samples itself).

use std::fmt::Write as _;

/// Which text format an [`Exposition`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The text format 0.0.4.
    #[default]
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

/// The HTTP content type of the text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The HTTP content type of OpenMetrics 1.0.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The last line of an OpenMetrics text.
pub const EOF_LINE: &str = "# EOF";

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// A metric family's type, as its `# TYPE` line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// Text in one of the exposition formats, built family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
    format: Format,
}

/// One family being written: its samples follow its `# HELP` and `# TYPE` lines.
pub struct Family<'a> {
    text: &'a mut String,
    format: Format,
    kind: MetricType,
    /// What a plain sample is named (a counter's with `_total` in OpenMetrics).
    sample_name: String,
    /// The other samples' names: the family's and a suffix.
    bucket_name: String,
    sum_name: String,
    count_name: String,
    created_name: String,
    /// The bounds of the last histogram written and their `le` labels as written, up to
    /// the value (`le="0.005"} `): a family's histograms share their bounds, so each is
    /// formatted once.
    le_bounds: Vec<f64>,
    le_texts: Vec<String>,
}

/// A sample value: a number, or one written once ([`Written`]).
pub trait Number: Copy {
    /// Writes the value as [`format_value`] spells it.
    fn write_to(self, out: &mut String);
}

impl Number for f64 {
    #[inline(always)]
    fn write_to(self, out: &mut String) {
        push_value(out, self)
    }
}

/// A number written once, for a value that never changes and is written at every
/// render, such as a series' `_created`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written(String);

impl Written {
    pub fn new(value: f64) -> Written {
        Written(format_value(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Number for &Written {
    #[inline(always)]
    fn write_to(self, out: &mut String) {
        out.push_str(&self.0)
    }
}

/// Labels a sample is written with: name and value pairs, escaped as they are written,
/// or a [`LabelSet`] escaped once (a series written at every scrape, whose labels are
/// known when it is made).
pub trait Labels {
    /// Writes `name="value",...` (no braces), values escaped.
    fn write_to(&self, out: &mut String);
    fn is_empty(&self) -> bool;
}

impl Labels for [(&str, &str)] {
    fn write_to(&self, out: &mut String) {
        for (i, (name, value)) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(name);
            out.push_str("=\"");
            push_label_value(out, value);
            out.push('"');
        }
    }

    fn is_empty(&self) -> bool {
        <[_]>::is_empty(self)
    }
}

impl<const N: usize> Labels for [(&str, &str); N] {
    fn write_to(&self, out: &mut String) {
        self.as_slice().write_to(out)
    }

    fn is_empty(&self) -> bool {
        N == 0
    }
}

/// A label set as the exposition writes it (`name="value",...`, values escaped), made
/// once: what a series keeps so that a render copies its labels instead of escaping them
/// again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSet {
    text: String,
}

impl LabelSet {
    pub fn new(labels: &[(&str, &str)]) -> LabelSet {
        let mut text = String::new();
        labels.write_to(&mut text);
        LabelSet { text }
    }

    /// This set and one more label after its own.
    pub fn with(&self, name: &str, value: &str) -> LabelSet {
        let mut text = self.text.clone();
        if !text.is_empty() {
            text.push(',');
        }
        [(name, value)].write_to(&mut text);
        LabelSet { text }
    }

    /// The set as written, without braces.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Labels for LabelSet {
    #[inline(always)]
    fn write_to(&self, out: &mut String) {
        out.push_str(&self.text);
    }

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

impl Exposition {
    /// An exposition in the text format 0.0.4.
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// An exposition in OpenMetrics 1.0.0.
    pub fn openmetrics() -> Exposition {
        Exposition::with_format(Format::OpenMetrics)
    }

    pub fn with_format(format: Format) -> Exposition {
        Exposition {
            text: String::new(),
            format,
        }
    }

    /// With room for `bytes` of text reserved.
    pub fn with_capacity(format: Format, bytes: usize) -> Exposition {
        Exposition {
            text: String::with_capacity(bytes),
            format,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Starts the family `name`: writes its `# HELP` and `# TYPE` lines. A counter is
    /// named as its samples are in the text format (`x_total`); in OpenMetrics its
    /// family is `x` and its samples `x_total` (a counter named without `_total` gets it
    /// appended to its samples there).
    pub fn family<'a>(&'a mut self, name: &str, kind: MetricType, help: &str) -> Family<'a> {
        self.family_with_unit(name, kind, "", help)
    }

    /// [`Exposition::family`] with a unit: OpenMetrics writes it as `# UNIT` (the family
    /// name must then end with `_` + `unit`, as Prometheus' conventions want anyway); the
    /// text format has no such line. An empty `unit` is none.
    pub fn family_with_unit<'a>(
        &'a mut self,
        name: &str,
        kind: MetricType,
        unit: &str,
        help: &str,
    ) -> Family<'a> {
        let (base, sample_suffix) = match (self.format, kind) {
            (Format::OpenMetrics, MetricType::Counter) => {
                (name.strip_suffix("_total").unwrap_or(name), "_total")
            }
            _ => (name, ""),
        };
        let family_name = base;
        let help = match self.format {
            Format::Text => escape_help(help),
            Format::OpenMetrics => escape_openmetrics_help(help),
        };
        let _ = writeln!(self.text, "# HELP {family_name} {help}");
        let _ = writeln!(self.text, "# TYPE {family_name} {}", kind.as_str());
        if self.format == Format::OpenMetrics && !unit.is_empty() {
            let _ = writeln!(self.text, "# UNIT {family_name} {unit}");
        }
        Family {
            text: &mut self.text,
            format: self.format,
            kind,
            sample_name: format!("{base}{sample_suffix}"),
            bucket_name: format!("{base}_bucket"),
            sum_name: format!("{base}_sum"),
            count_name: format!("{base}_count"),
            created_name: format!("{base}_created"),
            le_bounds: Vec::new(),
            le_texts: Vec::new(),
        }
    }

    /// The whole text: in OpenMetrics, ended with `# EOF`.
    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.text.push_str(EOF_LINE);
            self.text.push('\n');
        }
        self.text
    }

    /// The families written so far, without `# EOF`: for a text that goes on with other
    /// families (and ends with one `# EOF`).
    pub fn finish_families(self) -> String {
        self.text
    }
}

/// The observations of one histogram series: a count per bucket (not cumulative; the
/// last bucket holds what is above the largest bound) and their sum. The bounds are the
/// family's, kept once by the caller.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    pub counts: Vec<u64>,
    pub sum: f64,
}

impl Histogram {
    /// Empty, for buckets with these upper bounds (ascending).
    pub fn new(bounds: &[f64]) -> Histogram {
        Histogram {
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    /// Counts `value` in the first bucket whose bound is at least `value` (`le`: less
    /// than or equal). `bounds` must be those the histogram was made for.
    pub fn observe(&mut self, bounds: &[f64], value: f64) {
        let i = bounds.partition_point(|b| *b < value);
        self.counts[i] += 1;
        self.sum += value;
    }

    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl Family<'_> {
    /// Writes one sample of a counter or gauge family.
    #[inline]
    pub fn sample<L: Labels + ?Sized>(&mut self, labels: &L, value: f64) -> &mut Self {
        debug_assert!(self.kind != MetricType::Histogram, "use Family::histogram");
        write_line(self.text, &self.sample_name, labels, None, value);
        self
    }

    /// Writes one counter sample and, in OpenMetrics, its `_created` sample: when the
    /// counter started counting, in seconds since the Unix epoch.
    #[inline]
    pub fn counter<L: Labels + ?Sized>(
        &mut self,
        labels: &L,
        value: f64,
        created: impl Number,
    ) -> &mut Self {
        self.sample(labels, value);
        if self.format == Format::OpenMetrics {
            write_line(self.text, &self.created_name, labels, None, created);
        }
        self
    }

    /// Writes one histogram series: a cumulative `_bucket` per bound and `+Inf` (equal to
    /// `_count`), `_sum`, `_count` and, in OpenMetrics, `_created` (seconds since the Unix
    /// epoch) when given.
    pub fn histogram<L: Labels + ?Sized>(
        &mut self,
        labels: &L,
        bounds: &[f64],
        h: &Histogram,
        created: Option<impl Number>,
    ) -> &mut Self {
        debug_assert_eq!(h.counts.len(), bounds.len() + 1, "buckets and bounds");
        if self.le_bounds != bounds {
            self.le_bounds = bounds.to_vec();
            self.le_texts = bounds
                .iter()
                .map(|b| format!("le=\"{}\"}} ", canonical_float(*b)))
                .collect();
        }
        let text = &mut *self.text;
        let mut cumulative = 0u64;
        for (le, n) in self.le_texts.iter().zip(&h.counts) {
            cumulative += n;
            write_line(text, &self.bucket_name, labels, Some(le), Count(cumulative));
        }
        let count = h.count();
        write_line(
            text,
            &self.bucket_name,
            labels,
            Some("le=\"+Inf\"} "),
            Count(count),
        );
        write_line(text, &self.sum_name, labels, None, h.sum);
        write_line(text, &self.count_name, labels, None, Count(count));
        if let (Format::OpenMetrics, Some(created)) = (self.format, created) {
            write_line(text, &self.created_name, labels, None, created);
        }
        self
    }
}

/// A count, written as an integer.
#[derive(Clone, Copy)]
struct Count(u64);

impl Number for Count {
    #[inline(always)]
    fn write_to(self, out: &mut String) {
        push_count(out, self.0)
    }
}

/// Writes a sample line: `name`, the label set and `le` (`le="..."} ` as the histogram
/// keeps it) when there are any, and `value`.
#[inline(always)]
fn write_line<L: Labels + ?Sized>(
    text: &mut String,
    name: &str,
    labels: &L,
    le: Option<&str>,
    value: impl Number,
) {
    text.push_str(name);
    let empty = labels.is_empty();
    match le {
        Some(le) => {
            text.push('{');
            labels.write_to(text);
            if !empty {
                text.push(',');
            }
            text.push_str(le);
        }
        None if !empty => {
            text.push('{');
            labels.write_to(text);
            text.push('}');
            text.push(' ');
        }
        None => text.push(' '),
    }
    value.write_to(text);
    text.push('\n');
}

/// 1 for true, 0 for false: how the format spells a boolean gauge.
pub fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn push_label_value(out: &mut String, value: &str) {
    // Runs between the bytes to escape are copied whole (they are ASCII, so never inside
    // a UTF-8 sequence).
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        let escaped = match b {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            b'\n' => "\\n",
            _ => continue,
        };
        out.push_str(&value[start..i]);
        out.push_str(escaped);
        start = i + 1;
    }
    out.push_str(&value[start..]);
}

/// A label value: backslash, double quote and line feed escaped (the same in both
/// formats).
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_label_value(&mut out, value);
    out
}

/// A help text in the text format 0.0.4: backslash and line feed escaped (quotes stay as
/// they are).
pub fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A help text in OpenMetrics: backslash, line feed and double quote escaped.
pub fn escape_openmetrics_help(help: &str) -> String {
    escape_label_value(help)
}

/// A sample value as the format spells it: for a finite number the shortest digits that
/// read back the same, as Rust's `Display` writes them (never an exponent, `12` for
/// 12.0); `NaN`, `+Inf`, `-Inf` otherwise.
pub fn format_value(value: f64) -> String {
    let mut out = String::new();
    push_value(&mut out, value);
    out
}

/// 2^53: below it, neighbouring f64 are at most 1 apart.
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

/// What [`format_value`] writes, into `out`. The digits are those of Rust's `Display`
/// (the shortest that read back the same, never an exponent; where two last digits are
/// as short and as close, `zmij` may take the other one), without its machinery: a
/// whole number as an integer, another through `zmij` (the same shortest digits), what
/// `zmij` would write with an exponent (below 1e-5), and whole numbers from 2^53 up,
/// through `Display`.
#[inline(always)]
fn push_value(out: &mut String, value: f64) {
    // Counters and counts: whole, not negative. Every digit counts below 2^53: the
    // shortest digits are the integer's.
    if value.is_sign_positive() && value < EXACT_INTEGERS && value.fract() == 0.0 {
        push_count(out, value as u64);
    } else {
        push_other_value(out, value);
    }
}

/// [`push_value`] of a value that is not a whole number from 0 to 2^53.
fn push_other_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value == 0.0 {
        out.push_str(if value.is_sign_negative() { "-0" } else { "0" });
    } else if value.fract() == 0.0 {
        if value.abs() < EXACT_INTEGERS {
            out.push_str(itoa::Buffer::new().format(value as i64));
        } else {
            let _ = write!(out, "{value}");
        }
    } else {
        let mut digits = zmij::Buffer::new();
        let text = digits.format_finite(value);
        if text.contains('e') {
            let _ = write!(out, "{value}");
        } else {
            out.push_str(text);
        }
    }
}

#[inline(always)]
fn push_count(out: &mut String, n: u64) {
    // Most counts of a histogram's buckets are a digit: one byte, no buffer to copy.
    if n < 10 {
        out.push(char::from(b'0' + n as u8));
    } else {
        out.push_str(itoa::Buffer::new().format(n));
    }
}

/// `value` in OpenMetrics' canonical form, as Prometheus writes and normalises `le` and
/// `quantile` labels: Go's `strconv.FormatFloat(v, 'g', -1, 64)` (the shortest digits
/// that read back the same; an exponent from 1e6 up and below 1e-4, written `e+06`,
/// `e-05`), with `.0` added when that has neither a point nor an exponent; `+Inf`,
/// `-Inf`, `NaN`.
pub fn canonical_float(value: f64) -> String {
    let mut out = String::new();
    write_canonical_float(&mut out, value);
    out
}

fn write_canonical_float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if value == 0.0 {
        out.push_str(if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `1.048576e6`, `5e-3`.
    let sci = format!("{:e}", value.abs());
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` has a numeric exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if value < 0.0 {
        out.push('-');
    }
    // Go's %g with the shortest precision: an exponent when it is below -4 or 6 and up.
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
        return;
    }
    if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let point = exp as usize + 1;
        if digits.len() <= point {
            out.push_str(&digits);
            for _ in digits.len()..point {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
}

/// The families of an OpenMetrics text: all but its `# EOF` line, or `None` when the text
/// does not end with one (it is then the text format 0.0.4, or nothing).
pub fn openmetrics_body(text: &str) -> Option<&str> {
    let trimmed = text.strip_suffix('\n').unwrap_or(text);
    let body = trimmed.strip_suffix(EOF_LINE)?;
    if body.is_empty() || body.ends_with('\n') {
        Some(body)
    } else {
        None
    }
}

/// The OpenMetrics types and what each becomes in the text format: the type, and the
/// suffix its `# TYPE` and `# HELP` names get.
fn text_type(openmetrics_type: &str) -> Option<(&'static str, &'static str)> {
    Some(match openmetrics_type {
        "counter" => ("counter", "_total"),
        "gauge" => ("gauge", ""),
        "histogram" => ("histogram", ""),
        "gaugehistogram" => ("histogram", ""),
        "summary" => ("summary", ""),
        "info" => ("gauge", "_info"),
        "stateset" => ("gauge", ""),
        "unknown" => ("untyped", ""),
        _ => return None,
    })
}

/// What becomes of a sample in the text format.
enum Becomes {
    /// Written under its own name.
    Kept,
    /// Left out (a `_created`).
    Dropped,
    /// Written as the family's name with this suffix.
    Renamed(&'static str),
    /// Not a sample of the family: one of a family without descriptors.
    Stray,
}

/// What becomes of the sample `sample` of a family of type `ty` named `family`.
fn text_sample(ty: &str, family: &str, sample: &str) -> Becomes {
    let Some(suffix) = sample.strip_prefix(family) else {
        return Becomes::Stray;
    };
    let keep = |allowed: &[&str]| {
        if allowed.contains(&suffix) {
            Becomes::Kept
        } else {
            Becomes::Stray
        }
    };
    match (ty, suffix) {
        ("counter" | "histogram" | "summary", "_created") => Becomes::Dropped,
        ("counter", _) => keep(&["_total"]),
        ("histogram", _) => keep(&["_bucket", "_sum", "_count"]),
        ("summary", _) => keep(&["", "_sum", "_count"]),
        ("gaugehistogram", "_gcount") => Becomes::Renamed("_count"),
        ("gaugehistogram", "_gsum") => Becomes::Renamed("_sum"),
        ("gaugehistogram", _) => keep(&["_bucket"]),
        ("info", _) => keep(&["_info"]),
        _ => keep(&[""]),
    }
}

/// The family being converted: its descriptors, until its first sample writes them.
#[derive(Default)]
struct Pending {
    name: String,
    ty: Option<String>,
    help: Option<String>,
    written: bool,
}

impl Pending {
    fn write_header(&mut self, out: &mut String) {
        if self.written || self.name.is_empty() {
            return;
        }
        self.written = true;
        let ty = self.ty.as_deref().unwrap_or("unknown");
        let (text_ty, suffix) = text_type(ty).unwrap_or(("untyped", ""));
        let name = format!("{}{suffix}", self.name);
        if let Some(help) = &self.help {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        }
        if self.ty.is_some() {
            let _ = writeln!(out, "# TYPE {name} {text_ty}");
        }
    }
}

/// Undoes OpenMetrics' escapes in a help text (`\\`, `\n`, `\"`).
fn unescape_openmetrics(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') => out.push('"'),
            other => {
                return Err(format!(
                    "invalid escape `\\{}`",
                    other.map(String::from).unwrap_or_default()
                ))
            }
        }
    }
    Ok(out)
}

/// A sample line's name, its label set as written (`{...}`, or empty) and what follows.
fn split_sample(line: &str) -> Result<(&str, &str, &str), String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or("a sample needs a value after its name")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("a sample without a name".into());
    }
    if line.as_bytes()[name_end] == b' ' {
        return Ok((name, "", &line[name_end + 1..]));
    }
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line[name_end..].char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => {
                let end = name_end + i + 1;
                let rest = line[end..]
                    .strip_prefix(' ')
                    .ok_or("a space must follow the label set")?;
                return Ok((name, &line[name_end..end], rest));
            }
            _ => {}
        }
    }
    Err("the label set is not closed".into())
}

fn check_number(s: &str, what: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .map_err(|_| format!("{what} `{s}` is not a number"))
}

/// Converts OpenMetrics text into the text format 0.0.4: drops `# EOF`, `# UNIT` lines,
/// `_created` samples and exemplars; names a counter family with `_total` (and an info
/// family with `_info`) in its `# TYPE` and `# HELP` lines; writes `info` and `stateset`
/// families as gauges, `gaugehistogram` as a histogram (`_gcount`, `_gsum` become
/// `_count`, `_sum`) and `unknown` as untyped; re-escapes help texts (a quote is not
/// escaped in 0.0.4); turns timestamps from seconds into milliseconds. Label sets and
/// values are kept as they are (their escapes are the same in both formats).
///
/// An error names the line that is not OpenMetrics (a missing `# EOF` included).
pub fn openmetrics_to_text(openmetrics: &str) -> Result<String, String> {
    let body =
        openmetrics_body(openmetrics).ok_or("not OpenMetrics: it does not end with `# EOF`")?;
    let mut out = String::with_capacity(body.len());
    let mut family = Pending::default();
    for (i, line) in body.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line}", i + 1);
        if let Some(comment) = line.strip_prefix('#') {
            let descriptor = comment.strip_prefix(' ').unwrap_or(comment);
            let (keyword, rest) = descriptor.split_once(' ').unwrap_or((descriptor, ""));
            if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
                return Err(at(format!("unexpected `# {keyword}`")));
            }
            let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
            if name.is_empty() {
                return Err(at(format!("`# {keyword}` without a metric name")));
            }
            if name != family.name {
                family.write_header(&mut out);
                family = Pending {
                    name: name.to_string(),
                    ..Pending::default()
                };
            } else if family.written {
                return Err(at(format!("`# {keyword}` after the samples of its family")));
            }
            match keyword {
                "HELP" => family.help = Some(unescape_openmetrics(value).map_err(at)?),
                "TYPE" => {
                    if text_type(value).is_none() {
                        return Err(at(format!("unknown type `{value}`")));
                    }
                    family.ty = Some(value.to_string());
                }
                _ => {} // UNIT: not in the text format
            }
            continue;
        }
        if line.is_empty() {
            return Err(at("an empty line".into()));
        }
        let (name, labels, rest) = split_sample(line).map_err(at)?;
        let ty = family.ty.as_deref().unwrap_or("unknown");
        let becomes = text_sample(ty, &family.name, name);
        if let Becomes::Stray = becomes {
            family.write_header(&mut out);
            family = Pending {
                name: name.to_string(),
                written: true,
                ..Pending::default()
            };
        }
        family.write_header(&mut out);
        match becomes {
            Becomes::Dropped => continue,
            Becomes::Renamed(suffix) => {
                out.push_str(&family.name);
                out.push_str(suffix);
            }
            Becomes::Kept | Becomes::Stray => out.push_str(name),
        }
        let values = rest.split_once(" # ").map_or(rest, |(v, _exemplar)| v);
        let mut fields = values.split(' ');
        let value = fields.next().unwrap_or("");
        check_number(value, "the value").map_err(at)?;
        out.push_str(labels);
        out.push(' ');
        out.push_str(value);
        if let Some(ts) = fields.next() {
            let seconds = check_number(ts, "the timestamp").map_err(at)?;
            let _ = write!(out, " {}", (seconds * 1000.0).round() as i64);
        }
        if fields.next().is_some() {
            return Err(at("more than a value and a timestamp".into()));
        }
        out.push('\n');
    }
    family.write_header(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(
            escape_label_value("a\\b\"c\nd'e"),
            "a\\\\b\\\"c\\nd'e",
            "backslash, quote and newline escaped, nothing else"
        );
        assert_eq!(escape_help("x \\ \"y\"\nz"), "x \\\\ \"y\"\\nz");
        assert_eq!(
            escape_openmetrics_help("x \\ \"y\"\nz"),
            "x \\\\ \\\"y\\\"\\nz"
        );
        let mut out = Exposition::new();
        out.family("m", MetricType::Gauge, "line one\nline two")
            .sample(&[("plugin", "we\"ird\\\nname")], 1.0);
        assert_eq!(
            out.finish(),
            "# HELP m line one\\nline two\n# TYPE m gauge\nm{plugin=\"we\\\"ird\\\\\\nname\"} 1\n"
        );
    }

    #[test]
    fn values_are_spelled_as_the_format_wants() {
        assert_eq!(format_value(12.0), "12");
        assert_eq!(format_value(1.5), "1.5");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    }

    /// The fast path writes what `Display` writes, for every kind of figure a metric holds.
    #[test]
    fn values_are_written_as_display_writes_them() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut values = vec![
            0.1,
            0.163,
            1.0 / 3.0,
            2.5e-5,
            1e-5,
            9.99e-6,
            1e-7,
            123456.789,
            4.5e15,
            1e15,
            1e16,
            1.5e16,
            9e18,
            9.3e18,
            1e21,
            9_007_199_254_740_991.0,
            9_007_199_254_740_993.5,
            1e300,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            1_790_000_000.123,
            1_790_000_000.000_001,
            -7.25,
            -1e-9,
            3.0,
            -3.0,
            42.0,
        ];
        for _ in 0..20_000 {
            let bits = next();
            values.push(f64::from_bits(bits));
            // Figures as metrics have them: sums of durations, timestamps, counts.
            values.push((bits % 10_000_000) as f64 / 1000.0);
            values.push(1.7e9 + (bits % 1_000_000_000) as f64 / 1e6);
            values.push((bits >> 11) as f64);
        }
        for v in values.into_iter().filter(|v| v.is_finite()) {
            let (ours, display) = (format_value(v), format!("{v}"));
            // The same shortest digits, but where two are as short and as close (a tie in
            // the last digit, which the two round differently): then either reads back.
            if ours != display {
                assert_eq!(ours.len(), display.len(), "{ours} against {display}");
                assert_eq!(ours[..ours.len() - 1], display[..display.len() - 1]);
            }
            assert_eq!(ours.parse::<f64>().unwrap(), v, "{ours} reads back");
            assert!(!ours.contains('e'), "{ours}");
        }
        assert_eq!(format_value(-0.0), "-0");
        assert_eq!(format_value(0.0), "0");
    }

    #[test]
    fn a_label_set_made_once_is_written_as_the_pairs_are() {
        let pairs = [("script", "a\"b\\c\nd"), ("specialist", "naïve")];
        let set = LabelSet::new(&pairs);
        let with = set.with("category", "TIME\"OUT");
        for format in [Format::Text, Format::OpenMetrics] {
            let write = |by_set: bool| {
                let mut out = Exposition::with_format(format);
                let mut f = out.family("c_total", MetricType::Counter, "c");
                if by_set {
                    f.counter(&set, 1.0, 2.5).counter(&with, 2.0, 3.5);
                } else {
                    let three = [pairs[0], pairs[1], ("category", "TIME\"OUT")];
                    f.counter(&pairs, 1.0, 2.5).counter(&three, 2.0, 3.5);
                }
                out.family("h", MetricType::Histogram, "h").histogram(
                    if by_set {
                        &set as &dyn Labels
                    } else {
                        &pairs as &dyn Labels
                    },
                    &BOUNDS,
                    &Histogram::new(&BOUNDS),
                    Some(1.0),
                );
                out.finish()
            };
            assert_eq!(write(true), write(false));
        }
        assert_eq!(
            with.as_str(),
            "script=\"a\\\"b\\\\c\\nd\",specialist=\"naïve\",category=\"TIME\\\"OUT\""
        );
        assert_eq!(LabelSet::new(&[]).with("a", "b").as_str(), "a=\"b\"");
    }

    #[test]
    fn canonical_floats_are_gos_shortest_g_with_a_point() {
        // The values client_golang's OpenMetrics writer and Prometheus' normalisation give.
        for (v, s) in [
            (0.005, "0.005"),
            (0.01, "0.01"),
            (0.25, "0.25"),
            (1.0, "1.0"),
            (2.5, "2.5"),
            (10.0, "10.0"),
            (600.0, "600.0"),
            (100000.0, "100000.0"),
            (999999.0, "999999.0"),
            (1e6, "1e+06"),
            (1048576.0, "1.048576e+06"),
            (4294967296.0, "4.294967296e+09"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000123, "0.000123"),
            (1.25e-7, "1.25e-07"),
            (0.0, "0.0"),
            (-1.0, "-1.0"),
            (-0.5, "-0.5"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(canonical_float(v), s, "{v}");
            if v.is_finite() {
                assert_eq!(s.parse::<f64>().unwrap(), v, "{s} reads back");
            }
        }
    }

    const BOUNDS: [f64; 3] = [0.005, 1.0, 60.0];

    /// One of each family type, written in `format`.
    fn sample_text(format: Format) -> String {
        let mut out = Exposition::with_format(format);
        out.family("up", MetricType::Gauge, "1 while up.")
            .sample(&[], 1.0);
        out.family(
            "runs_total",
            MetricType::Counter,
            "Runs, by \"script\".\nTwo lines \\ one backslash.",
        )
        .counter(&[("script", "a\"b")], 3.0, 1_700_000_000.25)
        .counter(&[("script", "c\\d\ne")], 0.0, 1_700_000_001.0);
        let mut h = Histogram::new(&BOUNDS);
        for v in [0.001, 0.005, 0.5, 2.0, 1000.0] {
            h.observe(&BOUNDS, v);
        }
        out.family_with_unit(
            "duration_seconds",
            MetricType::Histogram,
            "seconds",
            "How long.",
        )
        .histogram(&[("script", "a")], &BOUNDS, &h, Some(1_700_000_000.5))
        .histogram(&[], &BOUNDS, &Histogram::new(&BOUNDS), None::<f64>);
        out.finish()
    }

    #[test]
    fn openmetrics_names_counters_without_total_and_ends_with_eof() {
        let text = sample_text(Format::OpenMetrics);
        assert_eq!(
            text,
            "# HELP up 1 while up.\n# TYPE up gauge\nup 1\n\
             # HELP runs Runs, by \\\"script\\\".\\nTwo lines \\\\ one backslash.\n# TYPE runs counter\n\
             runs_total{script=\"a\\\"b\"} 3\nruns_created{script=\"a\\\"b\"} 1700000000.25\n\
             runs_total{script=\"c\\\\d\\ne\"} 0\nruns_created{script=\"c\\\\d\\ne\"} 1700000001\n\
             # HELP duration_seconds How long.\n# TYPE duration_seconds histogram\n# UNIT duration_seconds seconds\n\
             duration_seconds_bucket{script=\"a\",le=\"0.005\"} 2\n\
             duration_seconds_bucket{script=\"a\",le=\"1.0\"} 3\n\
             duration_seconds_bucket{script=\"a\",le=\"60.0\"} 4\n\
             duration_seconds_bucket{script=\"a\",le=\"+Inf\"} 5\n\
             duration_seconds_sum{script=\"a\"} 1002.506\n\
             duration_seconds_count{script=\"a\"} 5\n\
             duration_seconds_created{script=\"a\"} 1700000000.5\n\
             duration_seconds_bucket{le=\"0.005\"} 0\n\
             duration_seconds_bucket{le=\"1.0\"} 0\n\
             duration_seconds_bucket{le=\"60.0\"} 0\n\
             duration_seconds_bucket{le=\"+Inf\"} 0\n\
             duration_seconds_sum 0\n\
             duration_seconds_count 0\n\
             # EOF\n"
        );
    }

    #[test]
    fn the_text_format_keeps_total_in_the_family_and_has_no_created_unit_or_eof() {
        let text = sample_text(Format::Text);
        assert!(text.contains("# HELP runs_total Runs, by \"script\".\\nTwo lines \\\\ one backslash.\n# TYPE runs_total counter\nruns_total{script=\"a\\\"b\"} 3\n"), "{text}");
        for absent in ["_created", "# UNIT", "# EOF"] {
            assert!(!text.contains(absent), "{absent}: {text}");
        }
        assert!(text.contains("duration_seconds_bucket{script=\"a\",le=\"+Inf\"} 5\n"));
    }

    #[test]
    fn a_histogram_is_cumulative_and_its_inf_bucket_is_its_count() {
        let bounds = [1.0, 2.0, 4.0];
        let mut h = Histogram::new(&bounds);
        // On a bound counts in that bucket (le); above the largest in the last.
        for v in [0.0, 1.0, 1.5, 2.0, 4.0, 4.5, 1e9] {
            h.observe(&bounds, v);
        }
        assert_eq!(h.counts, [2, 2, 1, 2]);
        assert_eq!(h.count(), 7);
        let mut out = Exposition::new();
        out.family("h", MetricType::Histogram, "h")
            .histogram(&[], &bounds, &h, None::<f64>);
        let text = out.finish();
        let buckets: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("h_bucket"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(buckets, [2, 4, 5, 7]);
        assert!(text.contains("h_bucket{le=\"+Inf\"} 7\nh_sum 1000000013\nh_count 7\n"));
    }

    #[test]
    fn down_conversion_of_the_writers_openmetrics_is_the_writers_text() {
        assert_eq!(
            openmetrics_to_text(&sample_text(Format::OpenMetrics)).unwrap(),
            sample_text(Format::Text)
        );
        // And of the text it gives, nothing changes when written again.
        let mut empty = Exposition::openmetrics();
        empty.family("x_total", MetricType::Counter, "none yet");
        assert_eq!(
            openmetrics_to_text(&empty.finish()).unwrap(),
            "# HELP x_total none yet\n# TYPE x_total counter\n"
        );
        assert_eq!(openmetrics_to_text("# EOF\n").unwrap(), "");
    }

    #[test]
    fn down_conversion_of_every_openmetrics_type() {
        let om = r#"# TYPE build info
# HELP build Build facts, "quoted".
build_info{version="1.0",commit="a b"} 1
# TYPE mode stateset
mode{mode="a"} 1
mode{mode="b"} 0
# TYPE queue gaugehistogram
queue_bucket{le="1.0"} 2
queue_bucket{le="+Inf"} 3
queue_gcount 3
queue_gsum 4.5
# TYPE latency summary
# UNIT latency seconds
latency{quantile="0.5"} 0.2
latency_sum 10
latency_count 20
latency_created 1.7e9
# TYPE odd unknown
odd 3 1700000000.123
stray_sample{x="}"} 1
# TYPE c counter
c_total 5 # {trace_id="x # y"} 1 1700000000
c_created 1700000000
# EOF
"#;
        assert_eq!(
            openmetrics_to_text(om).unwrap(),
            r#"# HELP build_info Build facts, "quoted".
# TYPE build_info gauge
build_info{version="1.0",commit="a b"} 1
# TYPE mode gauge
mode{mode="a"} 1
mode{mode="b"} 0
# TYPE queue histogram
queue_bucket{le="1.0"} 2
queue_bucket{le="+Inf"} 3
queue_count 3
queue_sum 4.5
# TYPE latency summary
latency{quantile="0.5"} 0.2
latency_sum 10
latency_count 20
# TYPE odd untyped
odd 3 1700000000123
stray_sample{x="}"} 1
# TYPE c_total counter
c_total 5
"#
        );
    }

    #[test]
    fn down_conversion_refuses_what_is_not_openmetrics_naming_the_line() {
        for (text, expect) in [
            ("m 1\n", "does not end with `# EOF`"),
            ("m 1\n# EOF\nm 2\n", "does not end with `# EOF`"),
            ("m 1\n# EOF\n# EOF\n", "line 2: unexpected `# EOF`"),
            (
                "# TYPE m colour\nm 1\n# EOF\n",
                "line 1: unknown type `colour`",
            ),
            ("m{a=\"1} 1\n# EOF\n", "line 1: the label set is not closed"),
            ("m one\n# EOF\n", "line 1: the value `one` is not a number"),
            (
                "m 1 2 3\n# EOF\n",
                "line 1: more than a value and a timestamp",
            ),
            ("# HELP m a \\t\n# EOF\n", "line 1: invalid escape `\\t`"),
            (
                "# TYPE m gauge\nm 1\n# HELP m late\n# EOF\n",
                "line 3: `# HELP` after the samples",
            ),
            ("m 1\n\n# EOF\n", "line 2: an empty line"),
        ] {
            let err = openmetrics_to_text(text).unwrap_err();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_body_is_what_precedes_eof() {
        assert_eq!(openmetrics_body("a 1\n# EOF\n"), Some("a 1\n"));
        assert_eq!(openmetrics_body("a 1\n# EOF"), Some("a 1\n"));
        assert_eq!(openmetrics_body("# EOF\n"), Some(""));
        assert_eq!(openmetrics_body("a 1\n"), None);
        assert_eq!(openmetrics_body("a_# EOF\n"), None);
        assert_eq!(openmetrics_body(""), None);
    }
}
