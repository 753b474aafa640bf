//! Label values and their caps.
//!
//! A Prometheus label value may hold any UTF-8 text (the writer escapes `\`, `"` and line
//! feeds), so a script id needs no other change to travel, with three exceptions this
//! exporter makes:
//!
//! * an empty value is `none`: Prometheus treats a label with an empty value as absent,
//!   so `script=""` would silently merge with series that have no script at all;
//! * control characters other than the line feed (NUL, carriage return, tab, escape ...)
//!   become `_`: they are invisible in every query and graph, and a NUL is refused by
//!   some parsers;
//! * a value is cut at [`MAX_LABEL_BYTES`] (on a character boundary).
//!
//! Script ids from the registry are `[A-Za-z0-9_.-]` and pass unchanged; other values come
//! from executions refused as VALIDATION (an unknown id as a client typed it).

use std::collections::HashSet;

/// The longest label value written, in bytes.
pub const MAX_LABEL_BYTES: usize = 200;
/// What an empty value (a script without specialist, a failure without category) is.
pub const NONE: &str = "none";
/// What a value beyond its cap is.
pub const OTHER: &str = "other";

/// `raw` as a label value of this exporter (see the module docs).
pub fn label_value(raw: &str) -> String {
    if raw.is_empty() {
        return NONE.to_string();
    }
    let mut out = String::with_capacity(raw.len().min(MAX_LABEL_BYTES));
    for c in raw.chars() {
        if out.len() + c.len_utf8() > MAX_LABEL_BYTES {
            break;
        }
        out.push(if c.is_control() && c != '\n' { '_' } else { c });
    }
    out
}

/// Distinct values of one label, at most `max`; beyond them, [`OTHER`].
#[derive(Debug)]
pub struct Cap {
    /// The `label` value of `metaclaude_exporter_label_overflow_total` it counts under.
    pub label: &'static str,
    config_key: &'static str,
    max: usize,
    seen: HashSet<String>,
    warned: bool,
    /// Executions whose value was replaced by `other`.
    pub overflowed: u64,
}

impl Cap {
    pub fn new(label: &'static str, config_key: &'static str, max: usize) -> Cap {
        Cap {
            label,
            config_key,
            max,
            seen: HashSet::new(),
            warned: false,
            overflowed: 0,
        }
    }

    /// Whether `value` may be used: one already seen, or a new one while fewer than `max`
    /// were (it is then remembered). A refusal is counted, and the first one pushes a
    /// warning to `warnings`.
    pub fn admit(&mut self, value: &str, warnings: &mut Vec<String>) -> bool {
        if self.seen.contains(value) {
            return true;
        }
        if self.seen.len() < self.max {
            self.seen.insert(value.to_string());
            return true;
        }
        self.overflowed += 1;
        if !self.warned {
            self.warned = true;
            warnings.push(format!(
                "more than {} distinct {} values: `{value}` and every further new one are labelled `{OTHER}` (config.{}; counted in metaclaude_exporter_label_overflow_total{{label=\"{}\"}})",
                self.max, self.label, self.config_key, self.label
            ));
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_what_a_label_may_hold() {
        assert_eq!(label_value("validate_api_schema"), "validate_api_schema");
        assert_eq!(
            label_value("a\\b\"c\nd"),
            "a\\b\"c\nd",
            "escaped by the writer"
        );
        assert_eq!(label_value("naïve 脚本 {x=\"1\"}"), "naïve 脚本 {x=\"1\"}");
        assert_eq!(label_value(""), NONE);
        assert_eq!(
            label_value("a\0b\rc\td\u{1b}e\u{7f}f\u{85}"),
            "a_b_c_d_e_f_"
        );
        let long = "é".repeat(150);
        let cut = label_value(&long);
        assert_eq!(cut.len(), MAX_LABEL_BYTES);
        assert!(long.starts_with(&cut));
        assert_eq!(label_value(&"x".repeat(201)), "x".repeat(200));
    }

    #[test]
    fn a_cap_admits_max_values_then_counts_and_warns_once() {
        let mut cap = Cap::new("script", "max_scripts", 2);
        let mut warnings = Vec::new();
        let admitted: Vec<bool> = ["a", "b", "a", "c", "d", "b"]
            .iter()
            .map(|v| cap.admit(v, &mut warnings))
            .collect();
        assert_eq!(admitted, [true, true, true, false, false, true]);
        assert_eq!(cap.overflowed, 2);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("more than 2 distinct script values: `c`"));
        assert!(warnings[0].contains("config.max_scripts"));
    }
}
