//! A writer for the Prometheus text exposition format (version 0.0.4), family by family.
//!
//! Metric and label names are the caller's constants (valid names, not checked here);
//! label values and help texts are escaped as the format requires. Samples carry no
//! timestamps (the node_exporter textfile collector refuses them, and a scrape stamps
//! samples itself).

use std::fmt::Write as _;

/// A metric family's type, as its `# TYPE` line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
        }
    }
}

/// Text in the exposition format, built family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

/// One family being written: its samples follow its `# HELP` and `# TYPE` lines.
pub struct Family<'a> {
    text: &'a mut String,
    name: &'a str,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts the family `name`: writes its `# HELP` and `# TYPE` lines.
    pub fn family<'a>(&'a mut self, name: &'a str, kind: MetricType, help: &str) -> Family<'a> {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.as_str());
        Family {
            text: &mut self.text,
            name,
        }
    }

    pub fn finish(self) -> String {
        self.text
    }
}

impl Family<'_> {
    /// Writes one sample of the family.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.text.push_str(self.name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{name}=\"{}\"", escape_label_value(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", format_value(value));
        self
    }
}

/// 1 for true, 0 for false: how the format spells a boolean gauge.
pub fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// A label value: backslash, double quote and line feed escaped.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A help text: backslash and line feed escaped (quotes stay as they are).
pub fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value as the format spells it: Rust's `Display` for finite numbers (never an
/// exponent, `12` for 12.0), `NaN`, `+Inf`, `-Inf` otherwise.
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        value.to_string()
    }
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
}
