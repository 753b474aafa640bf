//! The eight thresholds: their names (those of `[config]` and of `set-threshold`), ranges,
//! defaults and descriptions, and the rule that a critical threshold is never below its
//! warning one.
//!
//! A rule fires when its value *exceeds* its threshold (strictly: a value equal to the
//! threshold does not fire), as warning above the warning threshold and as critical above
//! the critical one.

use std::fmt;

/// One threshold, by the name `[config]` and `set-threshold` know it by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Threshold {
    ErrorRatePercent,
    ErrorRatePercentCritical,
    P95DurationSeconds,
    P95DurationSecondsCritical,
    MemoryPeakMb,
    MemoryPeakMbCritical,
    ExecutionRateDropPercent,
    ExecutionRateDropPercentCritical,
}

/// What values a threshold may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Range {
    /// Above 0, at most 100.
    Percent,
    /// Above 0, finite.
    Positive,
}

impl Threshold {
    /// Every threshold, in the order `thresholds` lists them.
    pub const ALL: [Threshold; 8] = [
        Threshold::ErrorRatePercent,
        Threshold::ErrorRatePercentCritical,
        Threshold::P95DurationSeconds,
        Threshold::P95DurationSecondsCritical,
        Threshold::MemoryPeakMb,
        Threshold::MemoryPeakMbCritical,
        Threshold::ExecutionRateDropPercent,
        Threshold::ExecutionRateDropPercentCritical,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Threshold::ErrorRatePercent => "error_rate_percent",
            Threshold::ErrorRatePercentCritical => "error_rate_percent_critical",
            Threshold::P95DurationSeconds => "p95_duration_seconds",
            Threshold::P95DurationSecondsCritical => "p95_duration_seconds_critical",
            Threshold::MemoryPeakMb => "memory_peak_mb",
            Threshold::MemoryPeakMbCritical => "memory_peak_mb_critical",
            Threshold::ExecutionRateDropPercent => "execution_rate_drop_percent",
            Threshold::ExecutionRateDropPercentCritical => "execution_rate_drop_percent_critical",
        }
    }

    /// The threshold named `name`.
    pub fn named(name: &str) -> Option<Threshold> {
        Threshold::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The seed's value.
    pub fn default_value(self) -> f64 {
        match self {
            Threshold::ErrorRatePercent => 10.0,
            Threshold::ErrorRatePercentCritical => 25.0,
            Threshold::P95DurationSeconds => 30.0,
            Threshold::P95DurationSecondsCritical => 120.0,
            Threshold::MemoryPeakMb => 1024.0,
            Threshold::MemoryPeakMbCritical => 4096.0,
            Threshold::ExecutionRateDropPercent => 50.0,
            Threshold::ExecutionRateDropPercentCritical => 90.0,
        }
    }

    /// What it bounds and in which unit, for people.
    pub fn description(self) -> &'static str {
        match self {
            Threshold::ErrorRatePercent => {
                "error_rate_high fires (warning) when more than this percentage of the executions finished in the window failed; percent, above 0, at most 100"
            }
            Threshold::ErrorRatePercentCritical => {
                "error_rate_high is critical above this percentage of failed executions; percent, at least error_rate_percent, at most 100"
            }
            Threshold::P95DurationSeconds => {
                "p95_duration_high fires (warning) when the 95th percentile of the wall-clock durations of the executions finished in the window is above this; seconds, above 0"
            }
            Threshold::P95DurationSecondsCritical => {
                "p95_duration_high is critical above this 95th-percentile duration; seconds, at least p95_duration_seconds"
            }
            Threshold::MemoryPeakMb => {
                "memory_peak_high fires (warning) when the largest peak memory of an execution finished in the window is above this; MB (MiB), above 0"
            }
            Threshold::MemoryPeakMbCritical => {
                "memory_peak_high is critical above this peak memory; MB (MiB), at least memory_peak_mb"
            }
            Threshold::ExecutionRateDropPercent => {
                "execution_rate_drop fires (warning) when the executions finished in the last window fell by more than this percentage against the window before; percent, above 0, at most 100"
            }
            Threshold::ExecutionRateDropPercentCritical => {
                "execution_rate_drop is critical above this drop; percent, at least execution_rate_drop_percent, at most 100"
            }
        }
    }

    fn range(self) -> Range {
        match self {
            Threshold::ErrorRatePercent
            | Threshold::ErrorRatePercentCritical
            | Threshold::ExecutionRateDropPercent
            | Threshold::ExecutionRateDropPercentCritical => Range::Percent,
            Threshold::P95DurationSeconds
            | Threshold::P95DurationSecondsCritical
            | Threshold::MemoryPeakMb
            | Threshold::MemoryPeakMbCritical => Range::Positive,
        }
    }

    /// The other threshold of this one's rule, and whether this one is the critical one.
    fn partner(self) -> (Threshold, bool) {
        match self {
            Threshold::ErrorRatePercent => (Threshold::ErrorRatePercentCritical, false),
            Threshold::ErrorRatePercentCritical => (Threshold::ErrorRatePercent, true),
            Threshold::P95DurationSeconds => (Threshold::P95DurationSecondsCritical, false),
            Threshold::P95DurationSecondsCritical => (Threshold::P95DurationSeconds, true),
            Threshold::MemoryPeakMb => (Threshold::MemoryPeakMbCritical, false),
            Threshold::MemoryPeakMbCritical => (Threshold::MemoryPeakMb, true),
            Threshold::ExecutionRateDropPercent => {
                (Threshold::ExecutionRateDropPercentCritical, false)
            }
            Threshold::ExecutionRateDropPercentCritical => {
                (Threshold::ExecutionRateDropPercent, true)
            }
        }
    }

    fn index(self) -> usize {
        Threshold::ALL
            .iter()
            .position(|t| *t == self)
            .expect("every threshold is in ALL")
    }

    /// Why `value` is out of this threshold's range, if it is.
    pub fn check_range(self, value: f64) -> Result<(), String> {
        let ok = match self.range() {
            Range::Percent => value > 0.0 && value <= 100.0,
            Range::Positive => value > 0.0 && value.is_finite(),
        };
        if ok {
            return Ok(());
        }
        Err(match self.range() {
            Range::Percent => {
                format!("expected a percentage above 0 and at most 100, found {value}")
            }
            Range::Positive => format!("expected a number above 0, found {value}"),
        })
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The names `set-threshold` knows, for an error message.
pub fn known_names() -> String {
    Threshold::ALL.map(Threshold::name).join(", ")
}

/// The values in force.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    values: [f64; 8],
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            values: Threshold::ALL.map(Threshold::default_value),
        }
    }
}

impl Thresholds {
    pub fn get(&self, threshold: Threshold) -> f64 {
        self.values[threshold.index()]
    }

    /// Sets `threshold` without any check; [`check_order`](Self::check_order) and
    /// [`Threshold::check_range`] are the caller's.
    pub(crate) fn put(&mut self, threshold: Threshold, value: f64) {
        self.values[threshold.index()] = value;
    }

    /// Why `threshold` at `value` would sit on the wrong side of its partner (a warning
    /// above its critical, a critical below its warning), if it would. The message names
    /// both thresholds, each after `prefix` (`config.` in `init`, empty at run time), and
    /// what to change first.
    pub fn check_order(
        &self,
        threshold: Threshold,
        value: f64,
        prefix: &str,
    ) -> Result<(), String> {
        let (partner, is_critical) = threshold.partner();
        let other = self.get(partner);
        if is_critical && value < other {
            return Err(format!(
                "{prefix}{threshold}: {value} is below {prefix}{partner} ({other}): a critical threshold must be at least its warning one (lower {prefix}{partner} first)"
            ));
        }
        if !is_critical && value > other {
            return Err(format!(
                "{prefix}{threshold}: {value} is above {prefix}{partner} ({other}): a warning threshold must not exceed its critical one (raise {prefix}{partner} first)"
            ));
        }
        Ok(())
    }

    /// `set-threshold`: changes the threshold `name` to `value` when the name is known,
    /// the value in range and on the right side of its partner; returns what changed
    /// ("error_rate_percent: 10 -> 15"). Nothing changes on an error.
    pub fn set(&mut self, name: &str, value: f64) -> Result<String, String> {
        let threshold = Threshold::named(name)
            .ok_or_else(|| format!("unknown threshold `{name}` (known: {})", known_names()))?;
        threshold
            .check_range(value)
            .map_err(|why| format!("{threshold}: {why}"))?;
        self.check_order(threshold, value, "")?;
        let old = self.get(threshold);
        self.put(threshold, value);
        Ok(format!("{threshold}: {old} -> {value}"))
    }

    /// Every threshold with its value and description, in [`Threshold::ALL`]'s order.
    pub fn list(&self) -> Vec<(&'static str, f64, &'static str)> {
        Threshold::ALL
            .into_iter()
            .map(|t| (t.name(), self.get(t), t.description()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_seeds() {
        let t = Thresholds::default();
        let listed: Vec<(&str, f64)> = t.list().iter().map(|(n, v, _)| (*n, *v)).collect();
        assert_eq!(
            listed,
            [
                ("error_rate_percent", 10.0),
                ("error_rate_percent_critical", 25.0),
                ("p95_duration_seconds", 30.0),
                ("p95_duration_seconds_critical", 120.0),
                ("memory_peak_mb", 1024.0),
                ("memory_peak_mb_critical", 4096.0),
                ("execution_rate_drop_percent", 50.0),
                ("execution_rate_drop_percent_critical", 90.0),
            ]
        );
        for (name, _, description) in t.list() {
            assert!(
                ["percent", "seconds", "MB (MiB)"]
                    .iter()
                    .any(|unit| description.contains(unit)),
                "{name}: no unit in {description:?}"
            );
        }
    }

    #[test]
    fn set_reports_the_change_and_refuses_what_is_out_of_range_or_order() {
        let mut t = Thresholds::default();
        assert_eq!(
            t.set("error_rate_percent", 15.0).unwrap(),
            "error_rate_percent: 10 -> 15"
        );
        assert_eq!(t.get(Threshold::ErrorRatePercent), 15.0);
        assert_eq!(
            t.set("p95_duration_seconds", 12.5).unwrap(),
            "p95_duration_seconds: 30 -> 12.5"
        );
        // Equal warning and critical thresholds are allowed: it is critical at once.
        assert_eq!(
            t.set("memory_peak_mb", 4096.0).unwrap(),
            "memory_peak_mb: 1024 -> 4096"
        );
        let before = t.clone();
        for (name, value, expect) in [
            (
                "error_rate",
                5.0,
                "unknown threshold `error_rate` (known: error_rate_percent, error_rate_percent_critical, p95_duration_seconds, p95_duration_seconds_critical, memory_peak_mb, memory_peak_mb_critical, execution_rate_drop_percent, execution_rate_drop_percent_critical)",
            ),
            (
                "error_rate_percent",
                0.0,
                "error_rate_percent: expected a percentage above 0 and at most 100, found 0",
            ),
            (
                "execution_rate_drop_percent_critical",
                100.5,
                "execution_rate_drop_percent_critical: expected a percentage above 0 and at most 100, found 100.5",
            ),
            (
                "memory_peak_mb",
                -1.0,
                "memory_peak_mb: expected a number above 0, found -1",
            ),
            (
                "p95_duration_seconds_critical",
                f64::INFINITY,
                "p95_duration_seconds_critical: expected a number above 0, found inf",
            ),
            (
                "p95_duration_seconds",
                f64::NAN,
                "p95_duration_seconds: expected a number above 0, found NaN",
            ),
            (
                "error_rate_percent",
                30.0,
                "error_rate_percent: 30 is above error_rate_percent_critical (25): a warning threshold must not exceed its critical one (raise error_rate_percent_critical first)",
            ),
            (
                "error_rate_percent_critical",
                12.0,
                "error_rate_percent_critical: 12 is below error_rate_percent (15): a critical threshold must be at least its warning one (lower error_rate_percent first)",
            ),
        ] {
            assert_eq!(t.set(name, value).unwrap_err(), expect, "{name} = {value}");
        }
        assert_eq!(t, before, "a refused value changes nothing");
    }
}
