//! The families this exporter keeps from finished executions (the state: a series per
//! label set), and their exposition.
//!
//! | family (samples) | type | seed name | labels |
//! | --- | --- | --- | --- |
//! | `metaclaude_executions_total` | counter | `metaclaude.executions.total` | script, specialist |
//! | `metaclaude_executions_success_total` | counter | `metaclaude.executions.success` | script, specialist |
//! | `metaclaude_executions_failure_total` | counter | `metaclaude.executions.failure` | script, specialist, category |
//! | `metaclaude_execution_duration_seconds` | histogram | `metaclaude.execution.duration_seconds` | script, specialist |
//! | `metaclaude_resource_memory_peak_bytes` | histogram | `metaclaude.resource.memory_peak_mb` (MiB × 2^20) | script, specialist |
//! | `metaclaude_resource_cpu_seconds_total` | counter | `metaclaude.resource.cpu_time_seconds` | script, specialist |
//! | `metaclaude_executions_retries_total` | counter | `metaclaude.executions.retries` | script, specialist |
//! | `metaclaude_exporter_label_overflow_total` | counter | (this exporter's own) | label |
//!
//! Every (script, specialist) pair seen has every family but the failures (one series per
//! category seen), zeros included, so `rate()` and ratios work from the first execution.
//! Families are written one after the other, each once with its `# HELP` and `# TYPE`;
//! within a family the series go in (script, specialist, category) order, a histogram's
//! samples together. `_created` (OpenMetrics) is the time of the finished event that made
//! the series (the exporter's start for the overflow counters).
//!
//! The same families are also walked as structured samples ([`Exporter::samples`]: name,
//! labels, value), for the exporters that push them (remote write), and as points
//! ([`Exporter::points`]: a counter's value, a histogram whole, with the series' start and
//! the seed's name and unit), for OpenTelemetry's metrics: one definition of the series,
//! [`Exporter::families`], for all three.
//!
//! A render is on every scrape's path: each series keeps what never changes written once,
//! when it is made (its label set escaped, [`LabelSet`]; its `_created`, [`Written`]),
//! and the text is written into one buffer sized from the previous render.

use std::cell::Cell;
use std::collections::BTreeMap;

use metaclaude_formats::prometheus::{
    canonical_float, Exposition, Format, Histogram, LabelSet, MetricType, Written,
};

use crate::config::Config;
pub use metaclaude_formats::finished::Finished;

use crate::labels::{label_value, LabelCap, NONE, OTHER};

/// Bytes in the MiB the host measures memory in.
pub const MIB: f64 = 1_048_576.0;

/// A label cap whose overflow this exporter counts in its overflow family.
fn cap(label: &'static str, config_key: &'static str, max: usize) -> LabelCap {
    let counted_in = format!("metaclaude_exporter_label_overflow_total{{label=\"{label}\"}}");
    LabelCap::new(label, config_key, max, counted_in)
}

/// The series of one (script, specialist) pair.
#[derive(Debug, Clone)]
struct Series {
    /// `script="...",specialist="..."`.
    labels: LabelSet,
    created: Written,
    /// When the series was made, seconds since the Unix epoch (`created`, as a number).
    created_at: f64,
    total: u64,
    success: u64,
    /// Category → its counter.
    failures: BTreeMap<String, Failures>,
    duration: Histogram,
    memory: Histogram,
    cpu_seconds: f64,
    retries: u64,
}

/// The failures of one category of a pair.
#[derive(Debug, Clone)]
struct Failures {
    /// The pair's labels and `category="..."`.
    labels: LabelSet,
    count: u64,
    created: Written,
    created_at: f64,
}

/// A figure as a histogram takes it: not a number, or below 0, is 0.
fn figure(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 {
        v
    } else {
        0.0
    }
}

/// The state: every series, the label caps, the buckets.
pub struct Exporter {
    duration_bounds: Vec<f64>,
    /// Bytes.
    memory_bounds: Vec<f64>,
    scripts: LabelCap,
    specialists: LabelCap,
    label_sets: LabelCap,
    started: f64,
    series: BTreeMap<(String, String), Series>,
    /// How long the last render was, to size the next one's buffer.
    last_render: Cell<usize>,
}

impl Exporter {
    /// An empty state; `now` (seconds since the Unix epoch) is the overflow counters'
    /// `_created`.
    pub fn new(config: &Config, now: f64) -> Exporter {
        Exporter {
            duration_bounds: config.duration_buckets.clone(),
            memory_bounds: config.memory_buckets_mb.iter().map(|b| b * MIB).collect(),
            scripts: cap("script", "max_scripts", config.max_scripts),
            specialists: cap("specialist", "max_specialists", config.max_specialists),
            label_sets: cap("label_set", "max_label_sets", config.max_label_sets),
            started: now,
            series: BTreeMap::new(),
            last_render: Cell::new(0),
        }
    }

    /// (script, specialist) pairs with series.
    pub fn label_sets(&self) -> usize {
        self.series.len()
    }

    /// Executions labelled `other` so far: (script, specialist, label set).
    pub fn overflowed(&self) -> (u64, u64, u64) {
        (
            self.scripts.overflowed,
            self.specialists.overflowed,
            self.label_sets.overflowed,
        )
    }

    /// Counts `f`; warnings to log (a cap reached for the first time) go to `warnings`.
    pub fn observe(&mut self, f: &Finished, warnings: &mut Vec<String>) {
        let mut script = label_value(&f.script);
        if !self.scripts.admit(&script, warnings) {
            script = OTHER.to_string();
        }
        let mut specialist = label_value(f.specialist.as_deref().unwrap_or(""));
        if !self.specialists.admit(&specialist, warnings) {
            specialist = OTHER.to_string();
        }
        let mut key = (script, specialist);
        if !self.series.contains_key(&key) {
            let pair = format!("{}\u{0}{}", key.0, key.1);
            if !self.label_sets.admit(&pair, warnings) {
                key = (OTHER.to_string(), OTHER.to_string());
            }
        }
        let (duration_bounds, memory_bounds) = (&self.duration_bounds, &self.memory_bounds);
        let s = self
            .series
            .entry(key)
            .or_insert_with_key(|(script, specialist)| Series {
                labels: LabelSet::new(&[("script", script), ("specialist", specialist)]),
                created: Written::new(f.at),
                created_at: f.at,
                total: 0,
                success: 0,
                failures: BTreeMap::new(),
                duration: Histogram::new(duration_bounds),
                memory: Histogram::new(memory_bounds),
                cpu_seconds: 0.0,
                retries: 0,
            });
        s.total += 1;
        if f.success {
            s.success += 1;
        } else {
            let category = label_value(f.category.as_deref().unwrap_or(NONE));
            let pair = &s.labels;
            s.failures
                .entry(category)
                .or_insert_with_key(|category| Failures {
                    labels: pair.with("category", category),
                    count: 0,
                    created: Written::new(f.at),
                    created_at: f.at,
                })
                .count += 1;
        }
        s.duration
            .observe(duration_bounds, figure(f.duration_seconds));
        s.memory
            .observe(memory_bounds, figure(f.memory_peak_mb) * MIB);
        s.cpu_seconds += figure(f.cpu_time_seconds);
        s.retries += u64::from(f.retries);
    }

    /// The exposition of the state in `format` (OpenMetrics: ended with `# EOF`).
    pub fn render(&self, format: Format) -> String {
        // The last render's size and some room to grow, or about 100 bytes a sample, 50
        // samples a pair: one buffer, never copied to grow.
        let last = self.last_render.get();
        let capacity = if last > 0 {
            last + last / 8
        } else {
            4096 + self.series.len() * 5000
        };
        let mut out = Exposition::with_capacity(format, capacity);
        for (info, what) in self.families() {
            let kind = match what {
                Samples::Histogram(..) => MetricType::Histogram,
                _ => MetricType::Counter,
            };
            let mut family = out.family_with_unit(info.name, kind, info.unit, info.help);
            for s in self.series.values() {
                match what {
                    Samples::Counter(value) => {
                        family.counter(&s.labels, value(s), &s.created);
                    }
                    Samples::Histogram(bounds, histogram) => {
                        family.histogram(&s.labels, bounds, histogram(s), Some(&s.created));
                    }
                    Samples::Failures => {
                        for f in s.failures.values() {
                            family.counter(&f.labels, f.count as f64, &f.created);
                        }
                    }
                }
            }
        }
        let mut family = out.family(OVERFLOW.name, MetricType::Counter, OVERFLOW.help);
        for cap in [&self.scripts, &self.specialists, &self.label_sets] {
            family.counter(&[("label", cap.label)], cap.overflowed as f64, self.started);
        }
        let text = out.finish();
        self.last_render.set(text.len());
        text
    }

    /// Every sample of the state, in the order [`Exporter::render`] writes them, as a
    /// scrape of the text format stores them: a counter under its `_total` name, a
    /// histogram as its `_bucket` series (`le` in the canonical form of the exposition),
    /// `_sum` and `_count`; no `_created`. Labels in the exposition's order, without
    /// `__name__`.
    pub fn samples(&self, visit: &mut dyn FnMut(Sample<'_>)) {
        let mut names = String::new();
        for (FamilyInfo { name, .. }, what) in self.families() {
            match what {
                Samples::Counter(value) => {
                    for ((script, specialist), s) in &self.series {
                        let labels = [
                            ("script", script.as_str()),
                            ("specialist", specialist.as_str()),
                        ];
                        visit(Sample {
                            name,
                            labels: &labels,
                            value: value(s),
                        });
                    }
                }
                Samples::Failures => {
                    for ((script, specialist), s) in &self.series {
                        for (category, f) in &s.failures {
                            let labels = [
                                ("script", script.as_str()),
                                ("specialist", specialist.as_str()),
                                ("category", category.as_str()),
                            ];
                            visit(Sample {
                                name,
                                labels: &labels,
                                value: f.count as f64,
                            });
                        }
                    }
                }
                Samples::Histogram(bounds, histogram) => {
                    names.clear();
                    names.push_str(name);
                    let stem = names.len();
                    let les: Vec<String> = bounds
                        .iter()
                        .map(|b| canonical_float(*b))
                        .chain(["+Inf".to_string()])
                        .collect();
                    for ((script, specialist), s) in &self.series {
                        let h = histogram(s);
                        names.truncate(stem);
                        names.push_str("_bucket");
                        let mut cumulative = 0u64;
                        for (le, n) in les.iter().zip(&h.counts) {
                            cumulative += n;
                            let labels = [
                                ("script", script.as_str()),
                                ("specialist", specialist.as_str()),
                                ("le", le.as_str()),
                            ];
                            visit(Sample {
                                name: &names,
                                labels: &labels,
                                value: cumulative as f64,
                            });
                        }
                        let labels = [
                            ("script", script.as_str()),
                            ("specialist", specialist.as_str()),
                        ];
                        names.truncate(stem);
                        names.push_str("_sum");
                        visit(Sample {
                            name: &names,
                            labels: &labels,
                            value: h.sum,
                        });
                        names.truncate(stem);
                        names.push_str("_count");
                        visit(Sample {
                            name: &names,
                            labels: &labels,
                            value: h.count() as f64,
                        });
                    }
                }
            }
        }
        for cap in [&self.scripts, &self.specialists, &self.label_sets] {
            let labels = [("label", cap.label)];
            visit(Sample {
                name: OVERFLOW.name,
                labels: &labels,
                value: cap.overflowed as f64,
            });
        }
    }

    /// The families of every (script, specialist) pair, in the order they are written.
    fn families(&self) -> [(FamilyInfo, Samples<'_>); 7] {
        [
            (
                FamilyInfo {
                    name: "metaclaude_executions_total",
                    unit: "",
                    help: "Finished executions, by script and specialist (seed: metaclaude.executions.total).",
                    seed_name: "metaclaude.executions.total",
                    seed_unit: "{execution}",
                    per_seed_unit: 1.0,
                },
                Samples::Counter(|s| s.total as f64),
            ),
            (
                FamilyInfo {
                    name: "metaclaude_executions_success_total",
                    unit: "",
                    help: "Finished executions that succeeded (seed: metaclaude.executions.success).",
                    seed_name: "metaclaude.executions.success",
                    seed_unit: "{execution}",
                    per_seed_unit: 1.0,
                },
                Samples::Counter(|s| s.success as f64),
            ),
            (
                FamilyInfo {
                    name: "metaclaude_executions_failure_total",
                    unit: "",
                    help: "Finished executions that failed, by error category: TIMEOUT, VALIDATION, DEPENDENCY, EXECUTION, PERMISSION, RESOURCE, UNKNOWN (seed: metaclaude.executions.failure).",
                    seed_name: "metaclaude.executions.failure",
                    seed_unit: "{execution}",
                    per_seed_unit: 1.0,
                },
                Samples::Failures,
            ),
            (
                FamilyInfo {
                    name: "metaclaude_execution_duration_seconds",
                    unit: "seconds",
                    help: "Wall time of finished executions: spawn to reap, summed over attempts, backoff excluded; 0 for one refused before it ran (seed: metaclaude.execution.duration_seconds).",
                    seed_name: "metaclaude.execution.duration_seconds",
                    seed_unit: "s",
                    per_seed_unit: 1.0,
                },
                Samples::Histogram(&self.duration_bounds, |s| &s.duration),
            ),
            (
                FamilyInfo {
                    name: "metaclaude_resource_memory_peak_bytes",
                    unit: "bytes",
                    help: "Peak memory of a finished execution's whole process tree, bytes (seed: metaclaude.resource.memory_peak_mb, MiB).",
                    seed_name: "metaclaude.resource.memory_peak_mb",
                    seed_unit: "MiBy",
                    per_seed_unit: MIB,
                },
                Samples::Histogram(&self.memory_bounds, |s| &s.memory),
            ),
            (
                FamilyInfo {
                    name: "metaclaude_resource_cpu_seconds_total",
                    unit: "seconds",
                    help: "CPU time of finished executions' whole process trees, seconds (seed: metaclaude.resource.cpu_time_seconds).",
                    seed_name: "metaclaude.resource.cpu_time_seconds",
                    seed_unit: "s",
                    per_seed_unit: 1.0,
                },
                Samples::Counter(|s| s.cpu_seconds),
            ),
            (
                FamilyInfo {
                    name: "metaclaude_executions_retries_total",
                    unit: "",
                    help: "Retries of finished executions: attempts after the first (seed: metaclaude.executions.retries).",
                    seed_name: "metaclaude.executions.retries",
                    seed_unit: "{retry}",
                    per_seed_unit: 1.0,
                },
                Samples::Counter(|s| s.retries as f64),
            ),
        ]
    }

    /// Every point of the state, family by family in the order [`Exporter::render`]
    /// writes them, as OpenTelemetry's cumulative metrics have them: a counter's value, a
    /// histogram's bucket counts (each bucket's own, not cumulative) and sum, each with
    /// its labels and the time its series was made (the start of its cumulation). Values,
    /// bounds and sums are in the family's own unit (bytes for memory; divide by
    /// [`FamilyInfo::per_seed_unit`] for the seed's). The overflow counters come last.
    pub fn points(&self, visit: &mut dyn FnMut(&FamilyInfo, Point<'_>)) {
        for (info, what) in self.families() {
            for ((script, specialist), s) in &self.series {
                let pair = [
                    ("script", script.as_str()),
                    ("specialist", specialist.as_str()),
                ];
                match what {
                    Samples::Counter(value) => visit(
                        &info,
                        Point {
                            labels: &pair,
                            since: s.created_at,
                            value: Value::Counter(value(s)),
                        },
                    ),
                    Samples::Failures => {
                        for (category, f) in &s.failures {
                            let labels = [pair[0], pair[1], ("category", category.as_str())];
                            visit(
                                &info,
                                Point {
                                    labels: &labels,
                                    since: f.created_at,
                                    value: Value::Counter(f.count as f64),
                                },
                            );
                        }
                    }
                    Samples::Histogram(bounds, histogram) => {
                        let h = histogram(s);
                        visit(
                            &info,
                            Point {
                                labels: &pair,
                                since: s.created_at,
                                value: Value::Histogram {
                                    bounds,
                                    counts: &h.counts,
                                    sum: h.sum,
                                },
                            },
                        );
                    }
                }
            }
        }
        for cap in [&self.scripts, &self.specialists, &self.label_sets] {
            visit(
                &OVERFLOW,
                Point {
                    labels: &[("label", cap.label)],
                    since: self.started,
                    value: Value::Counter(cap.overflowed as f64),
                },
            );
        }
    }
}

/// A family's names, unit and help: Prometheus' and the seed's (OpenTelemetry metrics
/// carry the seed's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FamilyInfo {
    /// Prometheus' name (`metaclaude_executions_total`).
    pub name: &'static str,
    /// OpenMetrics' unit (`seconds`, `bytes`), empty for none.
    pub unit: &'static str,
    pub help: &'static str,
    /// The seed's name (`metaclaude.executions.total`).
    pub seed_name: &'static str,
    /// The seed's unit, in UCUM as OpenTelemetry has it (`s`, `MiBy`, `{execution}`).
    pub seed_unit: &'static str,
    /// The family's values, bounds and sums divided by this are in the seed's unit (the
    /// bytes of memory in MiB: 2^20; else 1).
    pub per_seed_unit: f64,
}

/// One point of the state, as [`Exporter::points`] hands it out.
#[derive(Debug, Clone, Copy)]
pub struct Point<'a> {
    /// The series' labels, in the exposition's order.
    pub labels: &'a [(&'a str, &'a str)],
    /// When the series was made (its cumulation's start), seconds since the Unix epoch.
    pub since: f64,
    pub value: Value<'a>,
}

/// A point's value.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Counter(f64),
    /// Upper bounds (ascending), the count of each bucket (one more than the bounds: the
    /// last is above every bound) and the sum of what was observed.
    Histogram {
        bounds: &'a [f64],
        counts: &'a [u64],
        sum: f64,
    },
}

/// The exporter's own counter of executions labelled `other`, after the pairs' families.
const OVERFLOW: FamilyInfo = FamilyInfo {
    name: "metaclaude_exporter_label_overflow_total",
    unit: "",
    help: "Executions this exporter labelled `other` because a cap was reached: label script (config.max_scripts), specialist (max_specialists) or label_set (max_label_sets: the pair is then other, other).",
    seed_name: "metaclaude.exporter.label_overflow",
    seed_unit: "{execution}",
    per_seed_unit: 1.0,
};

/// One sample of the state, as [`Exporter::samples`] hands it out.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// The series' metric name (`__name__`), e.g. `metaclaude_executions_total`.
    pub name: &'a str,
    /// The other labels, in the exposition's order (not sorted).
    pub labels: &'a [(&'a str, &'a str)],
    pub value: f64,
}

/// What a family holds for each (script, specialist) pair.
#[derive(Clone, Copy)]
enum Samples<'a> {
    Counter(fn(&Series) -> f64),
    /// One counter per category seen.
    Failures,
    Histogram(&'a [f64], fn(&Series) -> &Histogram),
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaclaude_formats::prometheus::openmetrics_to_text;

    const T0: f64 = 1_700_000_000.0;

    fn finished(script: &str, success: bool) -> Finished {
        Finished {
            script: script.into(),
            specialist: Some("examples".into()),
            success,
            category: (!success).then(|| "TIMEOUT".to_string()),
            duration_seconds: 0.0815,
            memory_peak_mb: 13.5,
            cpu_time_seconds: 0.072,
            retries: 0,
            at: T0 + 0.5,
        }
    }

    fn exporter(config: &Config) -> Exporter {
        Exporter::new(config, T0)
    }

    fn observe(e: &mut Exporter, f: &Finished) -> Vec<String> {
        let mut warnings = Vec::new();
        e.observe(f, &mut warnings);
        warnings
    }

    /// The lines of `text` that start with `prefix`.
    fn lines<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    fn value(text: &str, series: &str) -> f64 {
        let line = text
            .lines()
            .find(|l| l.rsplit_once(' ').is_some_and(|(s, _)| s == series))
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"));
        line.rsplit_once(' ').unwrap().1.parse().unwrap()
    }

    #[test]
    fn state_from_events_in_openmetrics() {
        let config = Config {
            duration_buckets: vec![0.1, 1.0],
            memory_buckets_mb: vec![16.0],
            ..Config::default()
        };
        let mut e = exporter(&config);
        observe(&mut e, &finished("hello", true));
        observe(&mut e, &finished("hello", true));
        let mut slow = finished("slow", false);
        slow.specialist = None;
        slow.duration_seconds = 30.0;
        slow.memory_peak_mb = 100.0;
        slow.retries = 2;
        slow.cpu_time_seconds = 1.25;
        observe(&mut e, &slow);
        let text = e.render(Format::OpenMetrics);
        let hello = r#"{script="hello",specialist="examples"}"#;
        let slow = r#"{script="slow",specialist="none"}"#;
        assert_eq!(
            lines(&text, "metaclaude_executions_total"),
            [
                format!("metaclaude_executions_total{hello} 2"),
                format!("metaclaude_executions_total{slow} 1")
            ]
        );
        assert_eq!(
            value(&text, &format!("metaclaude_executions_created{hello}")),
            T0 + 0.5
        );
        assert_eq!(
            value(&text, &format!("metaclaude_executions_success_total{slow}")),
            0.0,
            "a pair with only failures has its success counter at 0"
        );
        assert_eq!(
            lines(&text, "metaclaude_executions_failure_total"),
            [
                r#"metaclaude_executions_failure_total{script="slow",specialist="none",category="TIMEOUT"} 1"#
            ]
        );
        assert_eq!(
            lines(
                &text,
                "metaclaude_execution_duration_seconds_bucket{script=\"slow\""
            ),
            [
                r#"metaclaude_execution_duration_seconds_bucket{script="slow",specialist="none",le="0.1"} 0"#,
                r#"metaclaude_execution_duration_seconds_bucket{script="slow",specialist="none",le="1.0"} 0"#,
                r#"metaclaude_execution_duration_seconds_bucket{script="slow",specialist="none",le="+Inf"} 1"#,
            ]
        );
        assert_eq!(
            value(
                &text,
                &format!("metaclaude_execution_duration_seconds_sum{hello}")
            ),
            0.163
        );
        assert_eq!(
            lines(
                &text,
                "metaclaude_resource_memory_peak_bytes_bucket{script=\"hello\""
            ),
            [
                r#"metaclaude_resource_memory_peak_bytes_bucket{script="hello",specialist="examples",le="1.6777216e+07"} 2"#,
                r#"metaclaude_resource_memory_peak_bytes_bucket{script="hello",specialist="examples",le="+Inf"} 2"#,
            ]
        );
        assert_eq!(
            value(
                &text,
                &format!("metaclaude_resource_memory_peak_bytes_sum{slow}")
            ),
            100.0 * MIB
        );
        assert_eq!(
            value(
                &text,
                &format!("metaclaude_resource_cpu_seconds_total{slow}")
            ),
            1.25
        );
        assert_eq!(
            value(&text, &format!("metaclaude_executions_retries_total{slow}")),
            2.0
        );
        assert_eq!(
            value(
                &text,
                &format!("metaclaude_executions_retries_total{hello}")
            ),
            0.0
        );
        for label in ["script", "specialist", "label_set"] {
            let series = format!("metaclaude_exporter_label_overflow_total{{label=\"{label}\"}}");
            assert_eq!(value(&text, &series), 0.0);
            let created =
                format!("metaclaude_exporter_label_overflow_created{{label=\"{label}\"}}");
            assert_eq!(value(&text, &created), T0);
        }
        assert!(text.contains("# TYPE metaclaude_executions counter\n"));
        assert!(text.contains("# UNIT metaclaude_resource_cpu_seconds seconds\n"));
        assert!(text.contains("# UNIT metaclaude_resource_memory_peak_bytes bytes\n"));
        assert!(text.ends_with("\n# EOF\n"));
    }

    #[test]
    fn the_text_format_is_the_openmetrics_converted_down() {
        let mut e = exporter(&Config::default());
        observe(&mut e, &finished("hello", true));
        observe(&mut e, &finished("slow", false));
        let text = e.render(Format::Text);
        assert_eq!(
            openmetrics_to_text(&e.render(Format::OpenMetrics)).unwrap(),
            text
        );
        assert!(text.contains("# TYPE metaclaude_executions_total counter\n"));
        assert!(!text.contains("_created"));
    }

    /// The structured samples are exactly the text format's sample lines (one definition
    /// of the series), names, labels and values.
    #[test]
    fn samples_are_the_text_formats_lines() {
        let config = Config {
            duration_buckets: vec![0.1, 1.0],
            memory_buckets_mb: vec![16.0],
            ..Config::default()
        };
        let mut e = exporter(&config);
        observe(&mut e, &finished("hello", true));
        observe(&mut e, &finished("slow", false));
        let mut odd = finished("a\\b\"c", false);
        odd.category = Some("EXECUTION".into());
        observe(&mut e, &odd);
        let text = e.render(Format::Text);
        let expected: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let mut got = Vec::new();
        e.samples(&mut |s| {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}=\"{}\"",
                        metaclaude_formats::prometheus::escape_label_value(v)
                    )
                })
                .collect();
            got.push(format!(
                "{}{{{}}} {}",
                s.name,
                labels.join(","),
                metaclaude_formats::prometheus::format_value(s.value)
            ));
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn points_are_the_samples_before_histograms_are_spread_out() {
        let config = Config {
            duration_buckets: vec![0.1, 1.0],
            memory_buckets_mb: vec![16.0],
            ..Config::default()
        };
        let mut e = exporter(&config);
        observe(&mut e, &finished("hello", true));
        let mut later = finished("slow", false);
        later.at = T0 + 7.0;
        observe(&mut e, &later);
        observe(&mut e, &finished("slow", true));
        let mut expected = Vec::new();
        e.samples(&mut |s| expected.push((s.name.to_string(), format!("{:?}", s.labels), s.value)));
        let mut got = Vec::new();
        let mut families = Vec::new();
        e.points(&mut |info, p| {
            if families.last() != Some(&info.seed_name) {
                families.push(info.seed_name);
            }
            let labels = |extra: Option<(&str, &str)>| {
                let mut l: Vec<(&str, &str)> = p.labels.to_vec();
                l.extend(extra);
                format!("{l:?}")
            };
            match p.value {
                Value::Counter(v) => got.push((info.name.to_string(), labels(None), v)),
                Value::Histogram {
                    bounds,
                    counts,
                    sum,
                } => {
                    assert_eq!(counts.len(), bounds.len() + 1);
                    let mut cumulative = 0;
                    for (i, n) in counts.iter().enumerate() {
                        cumulative += n;
                        let le = bounds
                            .get(i)
                            .map_or("+Inf".to_string(), |b| canonical_float(*b));
                        got.push((
                            format!("{}_bucket", info.name),
                            labels(Some(("le", &le))),
                            cumulative as f64,
                        ));
                    }
                    got.push((format!("{}_sum", info.name), labels(None), sum));
                    got.push((
                        format!("{}_count", info.name),
                        labels(None),
                        cumulative as f64,
                    ));
                }
            }
            if p.labels.first() == Some(&("script", "slow")) {
                assert_eq!(
                    p.since,
                    T0 + 7.0,
                    "{}: the series began with its first event",
                    info.name
                );
            }
            if info.seed_name == "metaclaude.resource.memory_peak_mb"
                && p.labels.first() == Some(&("script", "hello"))
            {
                let Value::Histogram { bounds, sum, .. } = p.value else {
                    panic!()
                };
                assert_eq!(bounds[0] / info.per_seed_unit, 16.0);
                assert_eq!(sum / info.per_seed_unit, 13.5, "{:?}", p.labels);
            }
        });
        assert_eq!(got, expected);
        assert_eq!(
            families,
            [
                "metaclaude.executions.total",
                "metaclaude.executions.success",
                "metaclaude.executions.failure",
                "metaclaude.execution.duration_seconds",
                "metaclaude.resource.memory_peak_mb",
                "metaclaude.resource.cpu_time_seconds",
                "metaclaude.executions.retries",
                "metaclaude.exporter.label_overflow",
            ],
            "the seed's names, each family once, in order"
        );
    }

    #[test]
    fn odd_figures_count_as_zero() {
        let mut e = exporter(&Config::default());
        let mut f = finished("x", true);
        f.duration_seconds = f64::NAN;
        f.memory_peak_mb = -3.0;
        f.cpu_time_seconds = f64::INFINITY;
        observe(&mut e, &f);
        let text = e.render(Format::Text);
        let labels = r#"{script="x",specialist="examples"}"#;
        assert_eq!(
            value(
                &text,
                &format!("metaclaude_execution_duration_seconds_sum{labels}")
            ),
            0.0
        );
        assert_eq!(
            value(
                &text,
                &format!("metaclaude_resource_memory_peak_bytes_sum{labels}")
            ),
            0.0
        );
        assert_eq!(
            value(
                &text,
                &format!("metaclaude_resource_cpu_seconds_total{labels}")
            ),
            0.0
        );
        assert_eq!(
            value(
                &text,
                r#"metaclaude_execution_duration_seconds_bucket{script="x",specialist="examples",le="0.005"}"#
            ),
            1.0
        );
    }

    #[test]
    fn histograms_are_cumulative_their_inf_is_count_and_sum_adds_up() {
        let mut e = exporter(&Config::default());
        let mut sum = 0.0;
        for i in 0..500u32 {
            let mut f = finished("spread", i % 3 == 0);
            f.duration_seconds = f64::from(i) * 1.37 % 900.0;
            f.memory_peak_mb = f64::from(i * 7 % 5000);
            sum += f.duration_seconds;
            observe(&mut e, &f);
        }
        for format in [Format::OpenMetrics, Format::Text] {
            let text = e.render(format);
            for family in [
                "metaclaude_execution_duration_seconds",
                "metaclaude_resource_memory_peak_bytes",
            ] {
                let buckets: Vec<(f64, f64)> = lines(&text, &format!("{family}_bucket"))
                    .iter()
                    .map(|l| {
                        let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
                        let le = if le == "+Inf" {
                            f64::INFINITY
                        } else {
                            le.parse().unwrap()
                        };
                        (le, l.rsplit_once(' ').unwrap().1.parse().unwrap())
                    })
                    .collect();
                assert!(
                    buckets
                        .windows(2)
                        .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                    "{buckets:?}"
                );
                let (last_le, last) = *buckets.last().unwrap();
                assert_eq!(last_le, f64::INFINITY);
                let labels = r#"{script="spread",specialist="examples"}"#;
                assert_eq!(last, value(&text, &format!("{family}_count{labels}")));
                assert_eq!(last, 500.0);
            }
            let labels = r#"{script="spread",specialist="examples"}"#;
            let got = value(
                &text,
                &format!("metaclaude_execution_duration_seconds_sum{labels}"),
            );
            assert!((got - sum).abs() < 1e-6, "{got} against {sum}");
        }
    }

    #[test]
    fn beyond_the_caps_labels_are_other_warned_once_and_counted() {
        let config = Config {
            max_scripts: 2,
            max_specialists: 1,
            max_label_sets: 4,
            ..Config::default()
        };
        let mut e = exporter(&config);
        let mut warnings = Vec::new();
        for script in ["a", "b", "a", "c", "d", "b"] {
            warnings.extend(observe(&mut e, &finished(script, true)));
        }
        let mut ops = finished("a", true);
        ops.specialist = Some("ops".into());
        warnings.extend(observe(&mut e, &ops));
        let text = e.render(Format::Text);
        let total = |labels: &str| value(&text, &format!("metaclaude_executions_total{labels}"));
        assert_eq!(total(r#"{script="a",specialist="examples"}"#), 2.0);
        assert_eq!(total(r#"{script="b",specialist="examples"}"#), 2.0);
        assert_eq!(
            total(r#"{script="other",specialist="examples"}"#),
            2.0,
            "c and d"
        );
        assert_eq!(total(r#"{script="a",specialist="other"}"#), 1.0);
        assert_eq!(e.overflowed(), (2, 1, 0));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("more than 2 distinct script values: `c`"));
        assert!(warnings[1].starts_with("more than 1 distinct specialist values: `ops`"));
        let overflow = |label: &str| {
            value(
                &text,
                &format!("metaclaude_exporter_label_overflow_total{{label=\"{label}\"}}"),
            )
        };
        assert_eq!((overflow("script"), overflow("specialist")), (2.0, 1.0));

        // A fifth pair goes beyond max_label_sets: all of it is other.
        let mut other_pair = finished("b", true);
        other_pair.specialist = Some("ops".into());
        let more = observe(&mut e, &other_pair);
        assert_eq!(
            e.label_sets(),
            5,
            "a, b, other with examples; a with other; other, other"
        );
        let text = e.render(Format::Text);
        assert_eq!(
            value(
                &text,
                r#"metaclaude_executions_total{script="other",specialist="other"}"#
            ),
            1.0
        );
        assert_eq!(
            value(
                &text,
                r#"metaclaude_exporter_label_overflow_total{label="label_set"}"#
            ),
            1.0
        );
        assert!(
            more.iter().any(|w| w.contains("config.max_label_sets")),
            "{more:?}"
        );
        // Thousands of ids later, still bounded.
        for i in 0..5000 {
            observe(&mut e, &finished(&format!("id-{i}"), i % 2 == 0));
        }
        assert_eq!(e.label_sets(), 5);
    }

    #[test]
    fn label_values_are_escaped_and_odd_ids_made_usable() {
        let mut e = exporter(&Config::default());
        let mut f = finished("a\\b\"c\nd", false);
        f.specialist = Some(String::new());
        f.category = Some("TIME\"OUT".into());
        observe(&mut e, &f);
        observe(&mut e, &finished("nul\0and\rcr", true));
        observe(&mut e, &finished("", true));
        for format in [Format::OpenMetrics, Format::Text] {
            let text = e.render(format);
            assert!(
                text.contains(r#"metaclaude_executions_failure_total{script="a\\b\"c\nd",specialist="none",category="TIME\"OUT"} 1"#),
                "{text}"
            );
            assert!(text.contains(
                r#"metaclaude_executions_total{script="nul_and_cr",specialist="examples"} 1"#
            ));
            assert!(text
                .contains(r#"metaclaude_executions_total{script="none",specialist="examples"} 1"#));
            // Every line is one sample or one descriptor: the escapes kept them whole.
            for line in text.lines() {
                assert!(
                    line.starts_with("# ") || line.starts_with("metaclaude_"),
                    "{line:?}"
                );
            }
        }
    }

    #[test]
    fn one_block_per_family_help_and_type_once_in_order() {
        let mut e = exporter(&Config::default());
        for (script, specialist) in [("b", "y"), ("a", "z"), ("a", "y"), ("c", "")] {
            let mut f = finished(script, script != "a");
            f.specialist = Some(specialist.into());
            observe(&mut e, &f);
        }
        let families = [
            "metaclaude_executions",
            "metaclaude_executions_success",
            "metaclaude_executions_failure",
            "metaclaude_execution_duration_seconds",
            "metaclaude_resource_memory_peak_bytes",
            "metaclaude_resource_cpu_seconds",
            "metaclaude_executions_retries",
            "metaclaude_exporter_label_overflow",
        ];
        let text = e.render(Format::OpenMetrics);
        let types: Vec<&str> = lines(&text, "# TYPE ")
            .iter()
            .map(|l| l.split(' ').nth(2).unwrap())
            .collect();
        assert_eq!(types, families);
        assert_eq!(lines(&text, "# HELP ").len(), families.len());
        // Each sample belongs to the family declared last before it, and no family's
        // samples come back after another's began.
        let mut family = "";
        let mut series_seen: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("# TYPE ") {
                family = name.split(' ').next().unwrap();
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let name = line.split(['{', ' ']).next().unwrap();
            let suffix = name
                .strip_prefix(family)
                .unwrap_or_else(|| panic!("{name} outside {family}"));
            assert!(
                ["_total", "_created", "_bucket", "_sum", "_count"].contains(&suffix),
                "{name} in {family}"
            );
            // A series' samples are together: its labels (le aside) never come back once left.
            let labels = line.split('}').next().unwrap().replace(",le=", "\u{0}");
            let key = format!(
                "{family}{}",
                labels
                    .split('\u{0}')
                    .next()
                    .unwrap()
                    .split_once('{')
                    .map_or("", |(_, l)| l)
            );
            if series_seen.last() != Some(&key) {
                assert!(!series_seen.contains(&key), "{key} split");
                series_seen.push(key);
            }
        }
        // Series in (script, specialist) order.
        assert_eq!(
            lines(&text, "metaclaude_executions_total"),
            [
                r#"metaclaude_executions_total{script="a",specialist="y"} 1"#,
                r#"metaclaude_executions_total{script="a",specialist="z"} 1"#,
                r#"metaclaude_executions_total{script="b",specialist="y"} 1"#,
                r#"metaclaude_executions_total{script="c",specialist="none"} 1"#,
            ]
        );
    }
}
