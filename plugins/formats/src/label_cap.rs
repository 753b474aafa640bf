//! The cap that keeps a metric exporter's label cardinality bounded (Prometheus, StatsD):
//! at most so many distinct values of a label, every further one [`OTHER`], counted and
//! warned about once.

use std::collections::HashSet;

/// The label value that stands for every value beyond a [`LabelCap`].
pub const OTHER: &str = "other";

/// Distinct values of one label, at most `max`; beyond them, [`OTHER`].
#[derive(Debug)]
pub struct LabelCap {
    /// The label's name, as the overflow counter labels it (`script`, `specialist` ...).
    pub label: &'static str,
    config_key: &'static str,
    /// Where the replaced values are counted, for the warning (a metric name).
    counted_in: String,
    max: usize,
    seen: HashSet<String>,
    warned: bool,
    /// Values replaced by [`OTHER`] so far.
    pub overflowed: u64,
}

impl LabelCap {
    /// A cap of `max` values for `label`, set by the plugin's `config.<config_key>`.
    pub fn new(
        label: &'static str,
        config_key: &'static str,
        max: usize,
        counted_in: impl Into<String>,
    ) -> LabelCap {
        LabelCap {
            label,
            config_key,
            counted_in: counted_in.into(),
            max,
            seen: HashSet::new(),
            warned: false,
            overflowed: 0,
        }
    }

    /// Whether `value` may be used: one already seen, or a new one while fewer than `max`
    /// were (it is then remembered). A refusal is counted, and the first one pushes a
    /// warning naming the setting to raise to `warnings`.
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
                "more than {} distinct {} values: `{value}` and every further new one become `{OTHER}` (raise config.{}; counted in {})",
                self.max, self.label, self.config_key, self.counted_in
            ));
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_admits_max_values_then_counts_and_warns_once() {
        let mut cap = LabelCap::new("script", "max_scripts", 2, "overflow_total");
        let mut warnings = Vec::new();
        let admitted: Vec<bool> = ["a", "b", "a", "c", "d", "b"]
            .iter()
            .map(|v| cap.admit(v, &mut warnings))
            .collect();
        assert_eq!(admitted, [true, true, true, false, false, true]);
        assert_eq!(cap.overflowed, 2);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("more than 2 distinct script values: `c`")
                && warnings[0].contains("config.max_scripts")
                && warnings[0].contains("overflow_total"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn a_zero_cap_sends_everything_to_other() {
        let mut cap = LabelCap::new("specialist", "max_specialists", 0, "x");
        let mut warnings = Vec::new();
        assert!(!cap.admit("ops", &mut warnings));
        assert!(!cap.admit("ops", &mut warnings));
        assert_eq!((cap.overflowed, warnings.len()), (2, 1));
    }
}
