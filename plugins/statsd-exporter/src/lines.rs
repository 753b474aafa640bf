//! What one finished execution becomes: the seed's metrics as StatsD lines.
//!
//! | name (after the prefix) | type | value | labels |
//! | --- | --- | --- | --- |
//! | `executions.total` | `c` | 1 | script, specialist |
//! | `executions.success` | `c` | 1 | script, specialist |
//! | `executions.failure` | `c` | 1 | script, specialist, category |
//! | `execution.duration_seconds` | `ms` | wall time × 1000 (milliseconds: StatsD timers are in ms) | script, specialist |
//! | `resource.memory_peak_mb` | `ms` (or `g`) | peak memory of the tree, MiB | script, specialist |
//! | `resource.cpu_time_seconds` | `c` | CPU seconds of the tree | script, specialist |
//! | `executions.retries` | `c` | retries (only when above 0) | script, specialist |
//! | `statsd.label_overflow` | `c` | 1 per label replaced by `other` | label |

use crate::config::{Config, MemoryAs, TagStyle};
use std::borrow::Cow;
use std::fmt::Write as _;

use crate::format::{sanitize_label, write_decimal, Formatter, Lines, Type};

pub use metaclaude_formats::finished::Finished;
pub use metaclaude_formats::label_cap::{LabelCap, OTHER};

/// The counter the replaced labels are counted in (after the prefix).
const OVERFLOW: &str = "statsd.label_overflow";

/// Turns finished executions into lines; keeps the label caps and the sampling state.
pub struct Exporter {
    fmt: Formatter,
    memory_as: MemoryAs,
    scripts: LabelCap,
    specialists: LabelCap,
    rng: u64,
}

impl Exporter {
    /// `seed` drives the sampling (any value; 0 is replaced).
    pub fn new(config: &Config, seed: u64) -> Exporter {
        Exporter {
            fmt: Formatter {
                prefix: config.prefix.clone(),
                style: config.tag_style,
                rate: config.sample_rate,
            },
            memory_as: config.memory_as,
            scripts: LabelCap::new("script", "max_scripts", config.max_scripts, OVERFLOW),
            specialists: LabelCap::new(
                "specialist",
                "max_specialists",
                config.max_specialists,
                OVERFLOW,
            ),
            rng: seed | 1,
        }
    }

    /// Labels replaced by `other` so far (scripts, specialists).
    pub fn overflowed(&self) -> (u64, u64) {
        (self.scripts.overflowed, self.specialists.overflowed)
    }

    /// xorshift64*: uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Appends the lines for `f` to `out` (none when sampling leaves it out: one draw per
    /// execution, so its lines stay together) and warnings to log to `warnings`.
    pub fn lines(&mut self, f: &Finished, out: &mut Lines, warnings: &mut Vec<String>) {
        if self.fmt.rate < 1.0 && self.uniform() >= self.fmt.rate {
            return;
        }
        let style = self.fmt.style;
        let labelled = style != TagStyle::None;
        let mut overflow: Vec<&'static str> = Vec::new();
        let (script, specialist) = if labelled {
            let raw_specialist = f.specialist.as_deref().unwrap_or("");
            let mut label = |cap: &mut LabelCap, raw| {
                let value = sanitize_label(raw, style);
                if cap.admit(&value, warnings) {
                    value
                } else {
                    overflow.push(cap.label);
                    Cow::Borrowed(OTHER)
                }
            };
            (
                label(&mut self.scripts, &f.script),
                label(&mut self.specialists, raw_specialist),
            )
        } else {
            (Cow::Borrowed(""), Cow::Borrowed(""))
        };
        let category = if f.success || !labelled {
            Cow::Borrowed("")
        } else {
            sanitize_label(f.category.as_deref().unwrap_or(""), style)
        };
        let all = [
            ("script", &*script),
            ("specialist", &*specialist),
            ("category", &*category),
        ];
        let base = if labelled { &all[..2] } else { &[] };
        let fmt = &self.fmt;
        let mut line =
            |name: &str, value: &dyn Fn(&mut String), ty: Type, labels: &[(&str, &str)]| {
                out.push(|text| fmt.write_line(text, name, value, ty, labels));
            };
        let one = |text: &mut String| text.push('1');
        line("executions.total", &one, Type::Counter, base);
        if f.success {
            line("executions.success", &one, Type::Counter, base);
        } else {
            let with_category = if labelled { &all[..] } else { &[] };
            line("executions.failure", &one, Type::Counter, with_category);
        }
        let decimal =
            |v: f64, decimals: usize| move |text: &mut String| write_decimal(text, v, decimals);
        line(
            "execution.duration_seconds",
            &decimal(f.duration_seconds * 1000.0, 3),
            Type::Timer,
            base,
        );
        let memory_type = match self.memory_as {
            MemoryAs::Timer => Type::Timer,
            MemoryAs::Gauge => Type::Gauge,
        };
        line(
            "resource.memory_peak_mb",
            &decimal(f.memory_peak_mb, 3),
            memory_type,
            base,
        );
        line(
            "resource.cpu_time_seconds",
            &decimal(f.cpu_time_seconds, 6),
            Type::Counter,
            base,
        );
        if f.retries > 0 {
            let retries = |text: &mut String| {
                let _ = write!(text, "{}", f.retries);
            };
            line("executions.retries", &retries, Type::Counter, base);
        }
        for label in overflow {
            line(OVERFLOW, &one, Type::Counter, &[("label", label)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(script: &str, success: bool) -> Finished {
        Finished {
            script: script.into(),
            specialist: Some("examples".into()),
            success,
            category: (!success).then(|| "TIMEOUT".to_string()),
            duration_seconds: 0.0815,
            memory_peak_mb: 13.9,
            cpu_time_seconds: 0.072,
            retries: 0,
            at: 0.0,
        }
    }

    fn lines_of(e: &mut Exporter, f: &Finished) -> (Vec<String>, Vec<String>) {
        let (mut out, mut warnings) = (Lines::default(), Vec::new());
        e.lines(f, &mut out, &mut warnings);
        (out.iter().map(String::from).collect(), warnings)
    }

    #[test]
    fn a_success_and_a_failure_in_dogstatsd_style() {
        let mut e = Exporter::new(&Config::default(), 1);
        let (ok, _) = lines_of(&mut e, &finished("hello", true));
        assert_eq!(
            ok,
            [
                "metaclaude.executions.total:1|c|#script:hello,specialist:examples",
                "metaclaude.executions.success:1|c|#script:hello,specialist:examples",
                "metaclaude.execution.duration_seconds:81.5|ms|#script:hello,specialist:examples",
                "metaclaude.resource.memory_peak_mb:13.9|ms|#script:hello,specialist:examples",
                "metaclaude.resource.cpu_time_seconds:0.072|c|#script:hello,specialist:examples",
            ]
        );
        let mut failed = finished("slow", false);
        failed.retries = 2;
        failed.specialist = None;
        let (bad, _) = lines_of(&mut e, &failed);
        assert_eq!(
            bad,
            [
                "metaclaude.executions.total:1|c|#script:slow,specialist:none",
                "metaclaude.executions.failure:1|c|#script:slow,specialist:none,category:TIMEOUT",
                "metaclaude.execution.duration_seconds:81.5|ms|#script:slow,specialist:none",
                "metaclaude.resource.memory_peak_mb:13.9|ms|#script:slow,specialist:none",
                "metaclaude.resource.cpu_time_seconds:0.072|c|#script:slow,specialist:none",
                "metaclaude.executions.retries:2|c|#script:slow,specialist:none",
            ]
        );
    }

    #[test]
    fn graphite_none_and_gauge_variants() {
        let config = Config {
            tag_style: TagStyle::Graphite,
            memory_as: MemoryAs::Gauge,
            ..Config::default()
        };
        let mut e = Exporter::new(&config, 1);
        let (lines, _) = lines_of(&mut e, &finished("a.b", false));
        assert_eq!(
            lines[1],
            "metaclaude.executions.failure.a_b.examples.TIMEOUT:1|c"
        );
        assert_eq!(
            lines[3],
            "metaclaude.resource.memory_peak_mb.a_b.examples:13.9|g"
        );
        let config = Config {
            tag_style: TagStyle::None,
            ..Config::default()
        };
        let (lines, _) = lines_of(&mut Exporter::new(&config, 1), &finished("a", false));
        assert_eq!(lines[0], "metaclaude.executions.total:1|c");
        assert_eq!(lines[1], "metaclaude.executions.failure:1|c");
    }

    #[test]
    fn beyond_the_cap_labels_are_other_warned_once_and_counted() {
        let config = Config {
            max_scripts: 2,
            max_specialists: 1,
            ..Config::default()
        };
        let mut e = Exporter::new(&config, 1);
        let mut all_warnings = Vec::new();
        for script in ["a", "b", "a", "c", "d", "b"] {
            let (lines, warnings) = lines_of(&mut e, &finished(script, true));
            all_warnings.extend(warnings);
            let expect = if script == "c" || script == "d" {
                OTHER
            } else {
                script
            };
            assert_eq!(
                lines[0],
                format!("metaclaude.executions.total:1|c|#script:{expect},specialist:examples")
            );
            let overflow = lines
                .iter()
                .filter(|l| l.contains("label_overflow"))
                .count();
            assert_eq!(overflow, usize::from(expect == OTHER), "{lines:?}");
        }
        let mut other_specialist = finished("a", true);
        other_specialist.specialist = Some("ops".into());
        let (lines, warnings) = lines_of(&mut e, &other_specialist);
        all_warnings.extend(warnings);
        assert_eq!(
            lines[0],
            "metaclaude.executions.total:1|c|#script:a,specialist:other"
        );
        assert_eq!(
            lines.last().unwrap(),
            "metaclaude.statsd.label_overflow:1|c|#label:specialist"
        );
        assert_eq!(all_warnings.len(), 2, "{all_warnings:?}");
        assert!(
            all_warnings[0].starts_with("more than 2 distinct script values: `c`"),
            "{}",
            all_warnings[0]
        );
        assert!(all_warnings[1].contains("config.max_specialists"));
        assert_eq!(e.overflowed(), (2, 1));
    }

    #[test]
    fn sampling_keeps_an_executions_lines_together_near_the_rate() {
        let config = Config {
            sample_rate: 0.25,
            ..Config::default()
        };
        let mut e = Exporter::new(&config, 42);
        let mut kept = 0;
        for _ in 0..4000 {
            let (lines, _) = lines_of(&mut e, &finished("a", true));
            assert!(lines.is_empty() || lines.len() == 5);
            if let Some(first) = lines.first() {
                kept += 1;
                assert_eq!(
                    first,
                    "metaclaude.executions.total:1|c|@0.25|#script:a,specialist:examples"
                );
            }
        }
        assert!(
            (850..1150).contains(&kept),
            "{kept} of 4000 kept at rate 0.25"
        );
    }

    #[test]
    fn hostile_ids_stay_inside_their_tags() {
        let mut e = Exporter::new(&Config::default(), 1);
        let mut f = finished("x:1|c\nevil.total:999|c|#script:forged,", false);
        f.specialist = Some("@0.0001|#a,b".into());
        f.category = Some("TIME|OUT".into());
        let (lines, _) = lines_of(&mut e, &f);
        for line in &lines {
            assert!(!line.contains('\n'));
            let (_, rest) = line.split_once(':').unwrap();
            let fields: Vec<&str> = rest.split('|').collect();
            assert_eq!(fields.len(), 3, "{line}");
            assert!(fields[2].starts_with('#'));
        }
        assert_eq!(
            lines[1],
            "metaclaude.executions.failure:1|c|#script:x_1_c_evil.total_999_c__script_forged_,specialist:_0.0001__a_b,category:TIME_OUT"
        );
    }
}
