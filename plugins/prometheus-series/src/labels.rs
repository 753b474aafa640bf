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

pub use metaclaude_formats::label_cap::{LabelCap, OTHER};

/// The longest label value written, in bytes.
pub const MAX_LABEL_BYTES: usize = 200;
/// What an empty value (a script without specialist, a failure without category) is.
pub const NONE: &str = "none";

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
}
