//! The four rules: what each judges of a scope's [`Figures`], against which thresholds,
//! and what its alert says.
//!
//! Each fires when its value exceeds its warning threshold (strictly: at the threshold it
//! does not) and is critical when it exceeds its critical one, and only over enough
//! samples (`min_samples`), so that one failure out of one run pages nobody:
//!
//! | type                  | value                                                        | samples counted            |
//! |-----------------------|--------------------------------------------------------------|----------------------------|
//! | `error_rate_high`     | failed executions / executions in the window, percent        | executions in the window   |
//! | `p95_duration_high`   | the window's nearest-rank 95th-percentile duration, seconds (within 1 %) | executions with a duration |
//! | `memory_peak_high`    | the largest peak memory in the window (the maximum, not a mean or a percentile), MB | executions with a peak memory |
//! | `execution_rate_drop` | (previous − last) / previous window's executions, percent     | the previous window's executions |

use crate::lifecycle::{Observation, Severity};
use crate::thresholds::{Threshold, Thresholds};
use crate::window::Figures;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    ErrorRate,
    P95Duration,
    MemoryPeak,
    ExecutionRateDrop,
}

/// What a rule needs beside the figures.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub thresholds: &'a Thresholds,
    pub min_samples: u64,
    pub window_seconds: u64,
    /// The specialist judged, `None` for every execution.
    pub specialist: Option<&'a str>,
}

impl Rule {
    /// Every rule, in the order alerts are returned.
    pub const ALL: [Rule; 4] = [
        Rule::ErrorRate,
        Rule::P95Duration,
        Rule::MemoryPeak,
        Rule::ExecutionRateDrop,
    ];

    /// The alert's type.
    pub fn kind(self) -> &'static str {
        match self {
            Rule::ErrorRate => "error_rate_high",
            Rule::P95Duration => "p95_duration_high",
            Rule::MemoryPeak => "memory_peak_high",
            Rule::ExecutionRateDrop => "execution_rate_drop",
        }
    }

    /// The warning and the critical threshold.
    pub fn thresholds(self) -> (Threshold, Threshold) {
        match self {
            Rule::ErrorRate => (
                Threshold::ErrorRatePercent,
                Threshold::ErrorRatePercentCritical,
            ),
            Rule::P95Duration => (
                Threshold::P95DurationSeconds,
                Threshold::P95DurationSecondsCritical,
            ),
            Rule::MemoryPeak => (Threshold::MemoryPeakMb, Threshold::MemoryPeakMbCritical),
            Rule::ExecutionRateDrop => (
                Threshold::ExecutionRateDropPercent,
                Threshold::ExecutionRateDropPercentCritical,
            ),
        }
    }

    /// What the rule sees in `f`: an observation when its condition holds.
    pub fn evaluate(self, f: &Figures, cx: Context<'_>) -> Option<Observation> {
        let (warning, critical) = self.thresholds();
        let (warning, critical) = (cx.thresholds.get(warning), cx.thresholds.get(critical));
        let (samples, value) = match self {
            Rule::ErrorRate => (
                f.executions,
                (f.executions > 0).then(|| f.failures as f64 * 100.0 / f.executions as f64),
            ),
            Rule::P95Duration => (f.duration_samples, f.p95_duration_seconds),
            Rule::MemoryPeak => (f.memory_samples, f.memory_peak_mb),
            Rule::ExecutionRateDrop => {
                let (last, previous) = (f.executions_last_window, f.executions_previous_window);
                (
                    previous,
                    (previous > 0)
                        .then(|| (previous as f64 - last as f64) * 100.0 / previous as f64),
                )
            }
        };
        if samples < cx.min_samples {
            return None;
        }
        let value = value?;
        let (severity, threshold) = if value > critical {
            (Severity::Critical, critical)
        } else if value > warning {
            (Severity::Warning, warning)
        } else {
            return None;
        };
        Some(Observation {
            severity,
            value,
            threshold,
            message: self.message(value, threshold),
            description: self.description(f, value, warning, critical, cx),
        })
    }

    /// The seed's message.
    fn message(self, value: f64, threshold: f64) -> String {
        match self {
            Rule::ErrorRate => format!("Error rate is {value:.1}% (threshold: {threshold:.1}%)"),
            Rule::P95Duration => {
                format!("P95 duration is {value:.1}s (threshold: {threshold:.1}s)")
            }
            Rule::MemoryPeak => {
                format!("Peak memory is {value:.1} MB (threshold: {threshold:.1} MB)")
            }
            Rule::ExecutionRateDrop => {
                format!("Execution rate dropped {value:.1}% (threshold: {threshold:.1}%)")
            }
        }
    }

    fn description(
        self,
        f: &Figures,
        value: f64,
        warning: f64,
        critical: f64,
        cx: Context<'_>,
    ) -> String {
        let of = match cx.specialist {
            Some(s) => format!(" of specialist `{s}`"),
            None => String::new(),
        };
        let w = cx.window_seconds;
        match self {
            Rule::ErrorRate => format!(
                "{} of the {} executions{of} that finished in the last {w} s failed ({value:.1}%); warning above {warning:.1}%, critical above {critical:.1}%.",
                f.failures, f.executions
            ),
            Rule::P95Duration => format!(
                "The 95th percentile of the durations of the {} executions{of} that finished in the last {w} s is {value:.1}s (within 1%); warning above {warning:.1}s, critical above {critical:.1}s.",
                f.duration_samples
            ),
            Rule::MemoryPeak => format!(
                "The largest peak memory of the {} executions{of} that finished in the last {w} s is {value:.1} MB (the maximum over the window); warning above {warning:.1} MB, critical above {critical:.1} MB.",
                f.memory_samples
            ),
            Rule::ExecutionRateDrop => format!(
                "{} executions{of} finished in the last {w} s against {} in the {w} s before, a drop of {value:.1}%; warning above {warning:.1}%, critical above {critical:.1}%.",
                f.executions_last_window, f.executions_previous_window
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx(thresholds: &Thresholds) -> Context<'_> {
        Context {
            thresholds,
            min_samples: 10,
            window_seconds: 300,
            specialist: None,
        }
    }

    fn judged(rule: Rule, f: &Figures) -> Option<(Severity, f64, String)> {
        let t = Thresholds::default();
        rule.evaluate(f, cx(&t))
            .map(|o| (o.severity, o.threshold, o.message))
    }

    fn errors(failures: u64, executions: u64) -> Figures {
        Figures {
            executions,
            failures,
            ..Figures::default()
        }
    }

    #[test]
    fn error_rate_fires_above_its_thresholds_not_at_them() {
        let r = Rule::ErrorRate;
        assert_eq!(
            judged(r, &errors(100, 1000)),
            None,
            "10.0% is not above 10%"
        );
        assert_eq!(
            judged(r, &errors(101, 1000)),
            Some((
                Severity::Warning,
                10.0,
                "Error rate is 10.1% (threshold: 10.0%)".into()
            ))
        );
        assert_eq!(
            judged(r, &errors(153, 1000)).unwrap().2,
            "Error rate is 15.3% (threshold: 10.0%)"
        );
        assert_eq!(judged(r, &errors(250, 1000)).unwrap().0, Severity::Warning);
        assert_eq!(
            judged(r, &errors(251, 1000)),
            Some((
                Severity::Critical,
                25.0,
                "Error rate is 25.1% (threshold: 25.0%)".into()
            ))
        );
    }

    #[test]
    fn min_samples_keeps_a_rule_quiet() {
        assert_eq!(judged(Rule::ErrorRate, &errors(9, 9)), None);
        assert_eq!(
            judged(Rule::ErrorRate, &errors(10, 10)).unwrap().0,
            Severity::Critical
        );
        let few = Figures {
            duration_samples: 9,
            p95_duration_seconds: Some(500.0),
            memory_samples: 9,
            memory_peak_mb: Some(9000.0),
            executions_previous_window: 9,
            ..Figures::default()
        };
        for rule in [Rule::P95Duration, Rule::MemoryPeak, Rule::ExecutionRateDrop] {
            assert_eq!(judged(rule, &few), None, "{rule:?}");
        }
    }

    #[test]
    fn p95_memory_and_rate_drop_messages_are_the_seeds() {
        let f = Figures {
            duration_samples: 10,
            p95_duration_seconds: Some(45.2),
            memory_samples: 10,
            memory_peak_mb: Some(1536.0),
            executions_last_window: 6,
            executions_previous_window: 16,
            ..Figures::default()
        };
        assert_eq!(
            judged(Rule::P95Duration, &f).unwrap().2,
            "P95 duration is 45.2s (threshold: 30.0s)"
        );
        assert_eq!(
            judged(Rule::MemoryPeak, &f).unwrap().2,
            "Peak memory is 1536.0 MB (threshold: 1024.0 MB)"
        );
        assert_eq!(
            judged(Rule::ExecutionRateDrop, &f).unwrap().2,
            "Execution rate dropped 62.5% (threshold: 50.0%)"
        );
    }

    #[test]
    fn rate_drop_fires_above_its_thresholds_and_never_on_a_rise() {
        let f = |last, previous| Figures {
            executions_last_window: last,
            executions_previous_window: previous,
            ..Figures::default()
        };
        let r = Rule::ExecutionRateDrop;
        assert_eq!(judged(r, &f(10, 20)), None, "50% is not above 50%");
        assert_eq!(judged(r, &f(9, 20)).unwrap().0, Severity::Warning);
        assert_eq!(
            judged(r, &f(2, 20)).unwrap().0,
            Severity::Warning,
            "90% is not above 90%"
        );
        assert_eq!(
            judged(r, &f(0, 20)),
            Some((
                Severity::Critical,
                90.0,
                "Execution rate dropped 100.0% (threshold: 90.0%)".into()
            ))
        );
        assert_eq!(judged(r, &f(40, 20)), None);
    }

    #[test]
    fn descriptions_name_the_specialist_the_window_and_the_maximum() {
        let t = Thresholds::default();
        let f = Figures {
            executions: 12,
            failures: 3,
            memory_samples: 12,
            memory_peak_mb: Some(2000.0),
            ..Figures::default()
        };
        let c = Context {
            specialist: Some("ops"),
            ..cx(&t)
        };
        let o = Rule::ErrorRate.evaluate(&f, c).unwrap();
        assert_eq!(
            o.description,
            "3 of the 12 executions of specialist `ops` that finished in the last 300 s failed (25.0%); warning above 10.0%, critical above 25.0%."
        );
        let o = Rule::MemoryPeak.evaluate(&f, c).unwrap();
        assert!(
            o.description.contains("the maximum over the window"),
            "{}",
            o.description
        );
    }
}
