//! The soak's figures: one row a minute, the least-squares slope of each figure over the
//! minutes after warm-up, and a verdict against each figure's tolerance.

use std::fmt::Write as _;

use super::probe::{Cgroups, Process};

/// One minute's sample, taken with no request in flight and nothing running.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub minute: u64,
    pub process: Process,
    pub cgroups: Cgroups,
    /// Processes of finished executions still alive (pid, execution, command).
    pub strays: Vec<String>,
    /// Since the server started (`/api/v1/stats`).
    pub executions: u64,
    pub failed: u64,
    pub retries: u64,
    /// The hostile plugin's state.
    pub hostile: String,
    /// Seconds the pause before the sample took (requests in flight, then executions).
    pub quiesce_seconds: f64,
    /// False when something still ran when the sample was taken.
    pub quiet: bool,
    /// Seconds since the server started, when the sample was taken.
    pub at_seconds: f64,
    /// The heap in use then, KiB (`--heaptrack` only, filled in after the server's exit).
    pub heap_kib: Option<u64>,
}

impl Row {
    pub fn rss_mib(&self) -> f64 {
        self.process.rss_kib as f64 / 1024.0
    }

    pub fn anon_mib(&self) -> f64 {
        self.process.rss_anon_kib as f64 / 1024.0
    }

    pub fn file_mib(&self) -> f64 {
        self.process.rss_file_kib as f64 / 1024.0
    }

    /// NaN when not known (no `--heaptrack`).
    pub fn heap_mib(&self) -> f64 {
        self.heap_kib.map_or(f64::NAN, |k| k as f64 / 1024.0)
    }
}

/// A figure and how much it may grow.
pub struct Figure {
    pub name: &'static str,
    pub unit: &'static str,
    pub value: fn(&Row) -> f64,
    /// The slope allowed, per hour.
    pub per_hour: f64,
    /// Growth (fitted, over the judged minutes) always allowed: the figure's noise, so a
    /// short soak is not failed by one step (a single step of 1 anywhere in the judged
    /// minutes fits a growth of at most 1.5).
    pub floor: f64,
    /// Must be zero at every sample (a process or cgroup left behind).
    pub zero: bool,
    /// Judged by this bound at every sample instead of by its slope (a pool whose size
    /// follows the load).
    pub at_most: Option<f64>,
}

/// The threads of tokio's runtime in `metaclaude serve`: its 2 workers and its blocking
/// pool, which grows with the busiest moment up to 16 (`async_runtime` in
/// `host/src/cli/mod.rs`) and whose idle threads end after 3 s.
pub const TOKIO_THREADS_AT_MOST: f64 = 18.0;

impl Row {
    /// Threads named `tokio-rt-worker` (the runtime's workers and blocking pool).
    pub fn tokio_threads(&self) -> f64 {
        self.process
            .thread_names
            .get("tokio-rt-worker")
            .copied()
            .unwrap_or(0) as f64
    }

    /// Every other thread: those the server starts itself (plugins, watchers, timers).
    pub fn own_threads(&self) -> f64 {
        self.process.threads as f64 - self.tokio_threads()
    }
}

/// The figures judged.
pub const FIGURES: &[Figure] = &[
    Figure {
        name: "rss",
        unit: "MiB",
        value: Row::rss_mib,
        per_hour: 1.0,
        floor: 1.0,
        zero: false,
        at_most: None,
    },
    Figure {
        name: "rss anon",
        unit: "MiB",
        value: Row::anon_mib,
        per_hour: 1.0,
        floor: 1.0,
        zero: false,
        at_most: None,
    },
    Figure {
        name: "rss file",
        unit: "MiB",
        value: Row::file_mib,
        per_hour: 1.0,
        floor: 1.0,
        zero: false,
        at_most: None,
    },
    Figure {
        name: "heap",
        unit: "MiB",
        value: Row::heap_mib,
        per_hour: 1.0,
        floor: 1.0,
        zero: false,
        at_most: None,
    },
    Figure {
        name: "fds",
        unit: "",
        value: |r| r.process.fds as f64,
        per_hour: 1.0,
        floor: 1.5,
        zero: false,
        at_most: None,
    },
    Figure {
        name: "threads, own",
        unit: "",
        value: Row::own_threads,
        per_hour: 1.0,
        floor: 1.5,
        zero: false,
        at_most: None,
    },
    Figure {
        name: "threads, tokio",
        unit: "",
        value: Row::tokio_threads,
        per_hour: 0.0,
        floor: 0.0,
        zero: false,
        at_most: Some(TOKIO_THREADS_AT_MOST),
    },
    Figure {
        name: "children",
        unit: "",
        value: |r| r.process.children as f64,
        per_hour: 0.0,
        floor: 0.0,
        zero: true,
        at_most: None,
    },
    Figure {
        name: "strays",
        unit: "",
        value: |r| r.strays.len() as f64,
        per_hour: 0.0,
        floor: 0.0,
        zero: true,
        at_most: None,
    },
    Figure {
        name: "cgroups",
        unit: "",
        value: |r| r.cgroups.executions as f64,
        per_hour: 1.0,
        floor: 1.5,
        zero: false,
        at_most: None,
    },
    Figure {
        name: "populated cgroups",
        unit: "",
        value: |r| r.cgroups.populated.len() as f64,
        per_hour: 0.0,
        floor: 0.0,
        zero: true,
        at_most: None,
    },
];

/// Least-squares slope of `points` (x, y), in y per x; 0 for fewer than two points.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

/// One figure's verdict.
pub struct Verdict {
    pub name: &'static str,
    pub unit: &'static str,
    pub start: f64,
    pub end: f64,
    pub min: f64,
    pub max: f64,
    pub slope_per_hour: f64,
    /// The slope allowed over this soak's judged minutes, per hour.
    pub limit_per_hour: f64,
    pub ok: bool,
    pub rule: String,
}

/// Judges every figure over the rows from minute `warmup` on.
pub fn judge(rows: &[Row], warmup: u64) -> Vec<Verdict> {
    let judged: Vec<&Row> = rows.iter().filter(|r| r.minute >= warmup).collect();
    let span_hours = match (judged.first(), judged.last()) {
        (Some(a), Some(b)) => (b.minute - a.minute) as f64 / 60.0,
        _ => 0.0,
    };
    FIGURES
        .iter()
        // A figure this soak did not measure (the heap without --heaptrack).
        .filter(|f| judged.iter().any(|r| !(f.value)(r).is_nan()))
        .map(|f| {
            let values: Vec<f64> = judged.iter().map(|r| (f.value)(r)).collect();
            let points: Vec<(f64, f64)> = judged
                .iter()
                .zip(&values)
                .map(|(r, v)| (r.minute as f64, *v))
                .collect();
            let slope_per_hour = slope(&points) * 60.0;
            let (min, max) = values
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(*v), hi.max(*v))
                });
            // Over every quiet sample, warm-up included: a process left behind is never
            // noise.
            let all_zero = rows.iter().filter(|r| r.quiet).all(|r| (f.value)(r) == 0.0);
            let limit_per_hour = if span_hours > 0.0 {
                f.per_hour.max(f.floor / span_hours)
            } else {
                f64::INFINITY
            };
            let (ok, rule) = if f.zero {
                (all_zero, "0 at every sample".to_string())
            } else if let Some(bound) = f.at_most {
                let within = rows.iter().all(|r| (f.value)(r) <= bound);
                (within, format!("at most {bound} at every sample"))
            } else {
                (
                    slope_per_hour <= limit_per_hour,
                    format!(
                        "slope at most {} {}/h (or growth within {} {})",
                        f.per_hour, f.unit, f.floor, f.unit
                    ),
                )
            };
            Verdict {
                name: f.name,
                unit: f.unit,
                start: values.first().copied().unwrap_or(0.0),
                end: values.last().copied().unwrap_or(0.0),
                min: if min.is_finite() { min } else { 0.0 },
                max: if max.is_finite() { max } else { 0.0 },
                slope_per_hour,
                limit_per_hour,
                ok,
                rule,
            }
        })
        .collect()
}

/// The line printed each minute.
pub fn minute_line(r: &Row, previous_executions: u64) -> String {
    format!(
        "soak: minute {:>3}  rss {:>7.1} MiB (anon {:.1}, file {:.1})  fds {:>3}  threads {:>3}  children {}  strays {}  cgroups {:>2} ({} populated)  | executions {:>6} (+{:>4})  failed {:>6}  retries {:>5}  | {} {}  quiesce {:.1}s{}",
        r.minute,
        r.rss_mib(),
        r.anon_mib(),
        r.file_mib(),
        r.process.fds,
        r.process.threads,
        r.process.children,
        r.strays.len(),
        r.cgroups.executions,
        r.cgroups.populated.len(),
        r.executions,
        r.executions.saturating_sub(previous_executions),
        r.failed,
        r.retries,
        super::setup::HOSTILE,
        r.hostile,
        r.quiesce_seconds,
        if r.quiet { "" } else { "  (NOT QUIET: something still ran)" },
    )
}

/// Every minute as a table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "minute  rss MiB  anon MiB  file MiB  heap MiB  fds  threads  children  strays  cgroups  executions  failed  retries  hostile\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:>6}  {:>7.1}  {:>8.1}  {:>8.1}  {:>8}  {:>3}  {:>7}  {:>8}  {:>6}  {:>7}  {:>10}  {:>6}  {:>7}  {}",
            r.minute,
            r.rss_mib(),
            r.anon_mib(),
            r.file_mib(),
            r.heap_kib
                .map_or("-".to_string(), |k| format!("{:.1}", k as f64 / 1024.0)),
            r.process.fds,
            r.process.threads,
            r.process.children,
            r.strays.len(),
            r.cgroups.executions,
            r.executions,
            r.failed,
            r.retries,
            r.hostile
        );
    }
    out
}

/// The same as CSV.
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "minute,rss_kib,rss_anon_kib,rss_file_kib,heap_kib,fds,threads,children,zombies,strays,cgroups,populated_cgroups,executions,failed,retries,hostile,quiesce_seconds,quiet\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.2},{}",
            r.minute,
            r.process.rss_kib,
            r.process.rss_anon_kib,
            r.process.rss_file_kib,
            r.heap_kib.map_or(String::new(), |k| k.to_string()),
            r.process.fds,
            r.process.threads,
            r.process.children,
            r.process.zombies,
            r.strays.len(),
            r.cgroups.executions,
            r.cgroups.populated.len(),
            r.executions,
            r.failed,
            r.retries,
            r.hostile,
            r.quiesce_seconds,
            r.quiet
        );
    }
    out
}

/// The verdicts as a table.
pub fn verdict_table(verdicts: &[Verdict], warmup: u64, last: u64) -> String {
    let mut out = format!(
        "figures over minutes {warmup}-{last} (minutes before {warmup} are warm-up):\n\
         figure             start      end      min      max   slope/h   limit/h  verdict\n"
    );
    for v in verdicts {
        let limit = if v.limit_per_hour.is_finite() {
            format!("{:.2}", v.limit_per_hour)
        } else {
            "-".into()
        };
        let _ = writeln!(
            out,
            "{:<17} {:>6.1} {:>8.1} {:>8.1} {:>8.1} {:>9.2} {:>9}  {} ({})",
            if v.unit.is_empty() {
                v.name.to_string()
            } else {
                format!("{} {}", v.name, v.unit)
            },
            v.start,
            v.end,
            v.min,
            v.max,
            v.slope_per_hour,
            limit,
            if v.ok { "flat" } else { "GROWS" },
            v.rule
        );
    }
    out
}

/// What changed in a breakdown between two samples (descriptor kinds, thread names).
pub fn breakdown_diff(
    from: &std::collections::BTreeMap<String, usize>,
    to: &std::collections::BTreeMap<String, usize>,
) -> String {
    let mut parts = Vec::new();
    for key in from
        .keys()
        .chain(to.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (a, b) = (
            from.get(key).copied().unwrap_or(0),
            to.get(key).copied().unwrap_or(0),
        );
        if a != b {
            parts.push(format!("{key}: {a} -> {b}"));
        }
    }
    if parts.is_empty() {
        "unchanged".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_and_of_a_flat_series() {
        assert!((slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) - 2.0).abs() < 1e-9);
        assert_eq!(slope(&[(0.0, 4.0), (1.0, 4.0), (2.0, 4.0)]), 0.0);
        assert_eq!(slope(&[(0.0, 4.0)]), 0.0);
    }

    fn row(minute: u64, fds: usize) -> Row {
        Row {
            minute,
            quiet: true,
            process: Process {
                fds,
                rss_kib: 100 * 1024,
                threads: 20,
                ..Process::default()
            },
            ..Row::default()
        }
    }

    /// tokio's pool is judged by its bound, the server's own threads by their slope.
    #[test]
    fn the_pool_may_follow_the_load_within_its_bound_and_other_threads_may_not_grow() {
        let with = |minute: u64, tokio: usize, own: usize| {
            let mut r = row(minute, 40);
            r.process.threads = tokio + own;
            r.process.thread_names = [("tokio-rt-worker".to_string(), tokio)].into();
            r
        };
        let verdict = |rows: &[Row], name: &str| {
            judge(rows, 10)
                .into_iter()
                .find(|v| v.name == name)
                .map(|v| v.ok)
                .unwrap()
        };
        let busy: Vec<Row> = (0..=60)
            .map(|m| with(m, 4 + (m as usize % 15), 12))
            .collect();
        assert!(verdict(&busy, "threads, tokio"));
        assert!(verdict(&busy, "threads, own"));
        let over: Vec<Row> = (0..=60)
            .map(|m| with(m, if m == 30 { 19 } else { 5 }, 12))
            .collect();
        assert!(!verdict(&over, "threads, tokio"));
        let leaking: Vec<Row> = (0..=60).map(|m| with(m, 5, 12 + m as usize / 10)).collect();
        assert!(!verdict(&leaking, "threads, own"));
    }

    #[test]
    fn a_growing_figure_is_named_and_a_flat_one_passes() {
        let rows: Vec<Row> = (0..=60).map(|m| row(m, 40 + m as usize)).collect();
        let verdicts = judge(&rows, 10);
        let fds = verdicts.iter().find(|v| v.name == "fds").unwrap();
        assert!(!fds.ok);
        assert!((fds.slope_per_hour - 60.0).abs() < 1e-6);
        assert!(verdicts.iter().filter(|v| v.name != "fds").all(|v| v.ok));
    }

    #[test]
    fn one_step_within_the_floor_does_not_fail_a_short_soak() {
        let rows = vec![row(0, 30), row(1, 40), row(2, 40), row(3, 41), row(4, 41)];
        let fds = judge(&rows, 1)
            .into_iter()
            .find(|v| v.name == "fds")
            .unwrap();
        assert!(fds.ok, "{} <= {}", fds.slope_per_hour, fds.limit_per_hour);
    }
}
