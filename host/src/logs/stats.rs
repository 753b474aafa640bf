//! `--stats`: execution statistics, overall and per group, mergeable so that each reading
//! thread keeps its own and they are combined at the end.
//!
//! Percentiles use the nearest-rank method: the p-th percentile of n sorted durations is the
//! value at 1-based rank `ceil(p / 100 * n)`, always a duration that really occurred. The
//! durations read are kept (8 bytes per execution) because exact percentiles need them.
//! Executions counted from a file's summary (`metaclaude_formats::log_summary`) come as
//! a sketch of their durations: once any did, the percentiles are the sketch's, within
//! its relative accuracy (1 %) of the exact ones, and the report says so.

use std::collections::{BTreeMap, HashMap};

use metaclaude_formats::log_summary::{day_of_hour, Dimension, Figures, NONE_KEY as NO_KEY};
use metaclaude_sketch::DdSketch;
use serde::Serialize;

use super::query::Record;

/// What `--group-by` splits the statistics by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    /// Who asked for the execution (`user` in the request).
    User,
    /// The registry id of the script run.
    Script,
    /// The script's specialist from the registry.
    Specialist,
    /// The error category of a failure; every success is in `(none)`.
    Category,
    /// The UTC hour of the finish time, `2024-01-15T10`.
    Hour,
    /// The UTC day of the finish time, `2024-01-15`.
    Day,
}

/// The key of records that lack the grouped field (no user, a success's category).
pub const NONE_KEY: &str = NO_KEY;

impl GroupBy {
    /// Every grouping, in the order `--group-by` lists them.
    pub fn all() -> &'static [GroupBy] {
        <GroupBy as clap::ValueEnum>::value_variants()
    }

    /// The group `r` falls in: the field's value as written, [`NONE_KEY`] when the record
    /// lacks it.
    pub fn key<'r>(self, r: &'r Record<'_>) -> &'r str {
        match self {
            GroupBy::Day => r
                .timestamp
                .as_deref()
                .and_then(|t| t.get(..10))
                .unwrap_or(NONE_KEY),
            other => other.dimension().key(r),
        }
    }

    /// The dimension of a log summary that holds this grouping (a day's figures are its
    /// hours').
    pub fn dimension(self) -> Dimension {
        match self {
            GroupBy::User => Dimension::User,
            GroupBy::Script => Dimension::Script,
            GroupBy::Specialist => Dimension::Specialist,
            GroupBy::Category => Dimension::Category,
            GroupBy::Hour | GroupBy::Day => Dimension::Hour,
        }
    }

    /// The group a summary's group of [`dimension`](Self::dimension) `key` falls in.
    pub fn key_of_summary_group(self, key: &str) -> &str {
        match self {
            GroupBy::Day => day_of_hour(key),
            _ => key,
        }
    }
}

/// Running figures for one set of executions.
#[derive(Debug, Default, Clone)]
pub struct Acc {
    /// Executions added.
    pub count: u64,
    /// Of them, those whose `success` is true (a record without one counts as a failure).
    pub successes: u64,
    durations: Vec<f64>,
    /// The durations of the executions counted from summaries, if any were.
    summarised: Option<DdSketch>,
    peak_memory_sum: ExactSum,
    peak_memory_max: f64,
    /// CPU time in whole microseconds (the figures' resolution): a sum that does not
    /// depend on the order the executions come in (a server's ring, the log's files).
    cpu_micros: i128,
    retries: u64,
    by_category: BTreeMap<String, u64>,
}

impl Acc {
    /// Counts one execution record in; a record without `resource_usage` adds zeros to the
    /// figures (and its 0 s to the durations).
    pub fn add(&mut self, r: &Record<'_>) {
        let u = r.usage();
        self.count += 1;
        if r.success == Some(true) {
            self.successes += 1;
        } else {
            let cat = r.category.as_deref().unwrap_or(NONE_KEY);
            match self.by_category.get_mut(cat) {
                Some(n) => *n += 1,
                None => {
                    self.by_category.insert(cat.to_string(), 1);
                }
            }
        }
        self.durations.push(u.wall_time_seconds);
        self.peak_memory_sum.add(u.peak_memory_mb);
        self.peak_memory_max = self.peak_memory_max.max(u.peak_memory_mb);
        self.cpu_micros += (u.cpu_time_seconds * 1e6).round() as i64 as i128;
        // A damaged or hostile line can say anything, `u64::MAX` included.
        self.retries = self.retries.saturating_add(r.retries.unwrap_or(0));
    }

    /// Counts in the executions of a summary's figures (whose sketches have the default
    /// config: `log_summary::read_summary` checks it).
    pub fn add_figures(&mut self, f: &Figures) {
        if f.count == 0 {
            return;
        }
        // Saturating: a summary is read from a directory plugins write (each is checked to
        // hang together, not to be small).
        self.count = self.count.saturating_add(f.count);
        self.successes = self.successes.saturating_add(f.successes);
        self.summarised
            .get_or_insert_with(DdSketch::new)
            .merge(&f.duration_seconds)
            .expect("a summary's sketches have the default config");
        self.peak_memory_sum.add(f.peak_memory_mb.sum());
        self.peak_memory_max = self
            .peak_memory_max
            .max(f.peak_memory_mb.max().unwrap_or(0.0));
        self.cpu_micros = self.cpu_micros.saturating_add(f.cpu_micros);
        self.retries = self.retries.saturating_add(f.retries);
        for (k, v) in &f.failures_by_category {
            let n = self.by_category.entry(k.clone()).or_default();
            *n = n.saturating_add(*v);
        }
    }

    /// Whether some executions were counted from summaries (the percentiles are then a
    /// sketch's).
    pub fn from_summaries(&self) -> bool {
        self.summarised.is_some()
    }

    /// Takes in another thread's figures: the result is what adding both sets of records
    /// to one accumulator would give, in any order.
    pub fn merge(&mut self, other: Acc) {
        self.count += other.count;
        self.successes += other.successes;
        self.durations.extend(other.durations);
        if let Some(theirs) = other.summarised {
            match &mut self.summarised {
                Some(ours) => ours.merge(&theirs).expect("both of the default config"),
                None => self.summarised = Some(theirs),
            }
        }
        self.peak_memory_sum.merge(other.peak_memory_sum);
        self.peak_memory_max = self.peak_memory_max.max(other.peak_memory_max);
        self.cpu_micros += other.cpu_micros;
        self.retries = self.retries.saturating_add(other.retries);
        for (k, v) in other.by_category {
            *self.by_category.entry(k).or_default() += v;
        }
    }

    /// The statistics of everything added (reorders the durations to find the percentiles).
    pub fn finish(mut self) -> Stats {
        let n = self.count;
        let avg = |sum: f64| (n > 0).then(|| sum / n as f64);
        let duration_seconds = match self.summarised.take() {
            Some(mut sketch) => {
                for d in &self.durations {
                    sketch.add(*d);
                }
                let q = |p: f64| sketch.quantile(p);
                Durations {
                    avg: avg(sketch.sum()),
                    p50: q(0.50),
                    p90: q(0.90),
                    p95: q(0.95),
                    p99: q(0.99),
                    max: sketch.max(),
                }
            }
            None => {
                let sum = order_free_sum(&self.durations);
                let [p50, p90, p95, p99, max] =
                    nearest_ranks(&mut self.durations, [50.0, 90.0, 95.0, 99.0, 100.0]);
                Durations {
                    avg: avg(sum),
                    p50,
                    p90,
                    p95,
                    p99,
                    max,
                }
            }
        };
        Stats {
            count: n,
            successes: self.successes,
            failures: n - self.successes,
            success_rate: avg(self.successes as f64 * 100.0),
            duration_seconds,
            peak_memory_mb: Memory {
                max: (n > 0).then_some(self.peak_memory_max),
                avg: avg(self.peak_memory_sum.value()),
            },
            cpu_time_seconds_total: self.cpu_micros as f64 / 1e6,
            retries: self.retries,
            failures_by_category: self.by_category,
        }
    }
}

/// The nearest-rank percentile of sorted values: rank `ceil(p / 100 * n)`, at least 1.
pub fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    (!sorted.is_empty()).then(|| sorted[rank_index(sorted.len(), p)])
}

/// The 0-based index of the nearest rank of percentile `p` among `n > 0` values.
fn rank_index(n: usize, p: f64) -> usize {
    ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1
}

/// The nearest-rank percentiles `ps` (ascending) of `values`, what [`nearest_rank`] gives
/// of them sorted, found by selection instead of a sort (each in the part of the values
/// above the one before), which reorders them.
fn nearest_ranks<const N: usize>(values: &mut [f64], ps: [f64; N]) -> [Option<f64>; N] {
    let n = values.len();
    let mut from = 0;
    ps.map(|p| {
        if n == 0 {
            return None;
        }
        let at = rank_index(n, p).max(from);
        let (_, v, _) = values[from..].select_nth_unstable_by(at - from, f64::total_cmp);
        let v = *v;
        from = at;
        Some(v)
    })
}

/// The sum of `values` whatever their order ([`ExactSum`]).
fn order_free_sum(values: &[f64]) -> f64 {
    let mut sum = ExactSum::default();
    values.iter().for_each(|v| sum.add(*v));
    sum.value()
}

/// A sum that is the same whatever the order of its terms, so that a server's report and
/// its log's replay, or a log read in pieces and read whole, agree to the last digit: the
/// terms are added exactly, in a 256-bit two's complement fixed point counting units of
/// 2^-128 (every double from 2^-75 to below 2^100, and sums of 2^27 of the largest of
/// them), and rounded once, to the double nearest the exact sum. Bits below 2^-128 are
/// dropped (the same way in any order); a term of 2^100 or more, or not finite (only a
/// damaged log holds one), is summed apart, in sorted order.
#[derive(Debug, Default, Clone)]
pub struct ExactSum {
    /// Least significant first.
    limbs: [u64; 4],
    apart: Vec<f64>,
}

impl ExactSum {
    /// The exponent of the unit.
    const UNIT: i32 = -128;

    /// Adds `v`.
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() || v.abs() >= (1u128 << 100) as f64 {
            self.apart.push(v);
            return;
        }
        let bits = v.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i32;
        let fraction = bits & ((1 << 52) - 1);
        // v = ±mantissa × 2^exponent.
        let (mut mantissa, exponent) = match biased {
            0 => (fraction, -1074),
            _ => (fraction | 1 << 52, biased - 1075),
        };
        let mut shift = exponent - Self::UNIT;
        if shift < 0 {
            mantissa = mantissa.checked_shr(shift.unsigned_abs()).unwrap_or(0);
            shift = 0;
        }
        let shift = shift as usize;
        // At most 53 bits from bit `shift % 64`: two limbs, below bit 228.
        let wide = u128::from(mantissa) << (shift % 64);
        let mut term = [0u64; 4];
        term[shift / 64] = wide as u64;
        if shift / 64 < 3 {
            term[shift / 64 + 1] = (wide >> 64) as u64;
        }
        self.add_limbs(&term, v.is_sign_negative());
    }

    /// Takes in the terms of `other`.
    pub fn merge(&mut self, other: ExactSum) {
        self.add_limbs(&other.limbs, false);
        self.apart.extend(other.apart);
    }

    /// Adds (or subtracts) a 256-bit number, wrapping.
    fn add_limbs(&mut self, term: &[u64; 4], subtract: bool) {
        let mut carry = false;
        for (limb, &part) in self.limbs.iter_mut().zip(term) {
            let (r1, c1) = if subtract {
                limb.overflowing_sub(part)
            } else {
                limb.overflowing_add(part)
            };
            let (r2, c2) = if subtract {
                r1.overflowing_sub(u64::from(carry))
            } else {
                r1.overflowing_add(u64::from(carry))
            };
            *limb = r2;
            carry = c1 || c2;
        }
    }

    /// The double nearest the sum (ties to even), with the terms summed apart added.
    pub fn value(&self) -> f64 {
        let mut apart = self.apart.clone();
        apart.sort_unstable_by(f64::total_cmp);
        self.exact_value() + apart.iter().sum::<f64>()
    }

    /// The double nearest the fixed-point sum (ties to even).
    fn exact_value(&self) -> f64 {
        let negative = self.limbs[3] >> 63 == 1;
        let mut magnitude = self.limbs;
        if negative {
            // Two's complement: invert and add one.
            let mut carry = true;
            for limb in &mut magnitude {
                let (r, c) = (!*limb).overflowing_add(u64::from(carry));
                *limb = r;
                carry = c;
            }
        }
        let Some(top) = (0..4).rev().find(|&i| magnitude[i] != 0) else {
            return 0.0;
        };
        let high = 64 * top + 63 - magnitude[top].leading_zeros() as usize;
        let value = if high < 64 {
            // `as` rounds to the nearest double.
            magnitude[0] as f64 * pow2(Self::UNIT)
        } else {
            // The 64 bits from the highest set one down, the lowest of them set if any bit
            // below them is (so the one rounding to 53 bits is the exact sum's).
            let low = high - 63;
            let bit = |i: usize| magnitude[i / 64] >> (i % 64) & 1;
            let mut window = (low..=high).rev().fold(0u64, |w, i| w << 1 | bit(i));
            if (0..low).any(|i| bit(i) == 1) {
                window |= 1;
            }
            window as f64 * pow2(Self::UNIT + low as i32)
        };
        if negative {
            -value
        } else {
            value
        }
    }
}

/// 2^k, exactly, for a normal double's exponent.
fn pow2(k: i32) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// Overall and grouped accumulators of one reading thread.
#[derive(Debug, Default, Clone)]
pub struct StatsAcc {
    /// Every record added.
    pub overall: Acc,
    /// The records of each group, by [`GroupBy::key`]; empty without a grouping.
    pub groups: HashMap<String, Acc>,
}

impl StatsAcc {
    /// Counts `r` in overall and, with `group_by`, in its group.
    pub fn add(&mut self, r: &Record<'_>, group_by: Option<GroupBy>) {
        self.overall.add(r);
        if let Some(g) = group_by {
            let key = g.key(r);
            match self.groups.get_mut(key) {
                Some(acc) => acc.add(r),
                None => self.groups.entry(key.to_string()).or_default().add(r),
            }
        }
    }

    /// Counts in figures of a summary: `overall` (what a query takes of the file) and,
    /// with `group_by`, `groups` by the summary's keys of its dimension.
    pub fn add_summary<'f>(
        &mut self,
        overall: impl IntoIterator<Item = &'f Figures>,
        groups: impl IntoIterator<Item = (&'f str, &'f Figures)>,
        group_by: Option<GroupBy>,
    ) {
        for f in overall {
            self.overall.add_figures(f);
        }
        if let Some(g) = group_by {
            for (key, f) in groups {
                let key = g.key_of_summary_group(key);
                match self.groups.get_mut(key) {
                    Some(acc) => acc.add_figures(f),
                    None => self
                        .groups
                        .entry(key.to_string())
                        .or_default()
                        .add_figures(f),
                }
            }
        }
    }

    /// Takes in another thread's accumulators, group by group (see [`Acc::merge`]).
    pub fn merge(&mut self, other: StatsAcc) {
        self.overall.merge(other.overall);
        for (k, v) in other.groups {
            self.groups.entry(k).or_default().merge(v);
        }
    }

    /// The report: overall, and the groups sorted by key; `group_by` is only recorded in
    /// it (the grouping was done by [`add`](Self::add)).
    pub fn finish(self, group_by: Option<GroupBy>) -> Report {
        let percentile_relative_error = self
            .overall
            .from_summaries()
            .then(|| metaclaude_sketch::Config::default().relative_accuracy());
        let mut groups: Vec<Group> = self
            .groups
            .into_iter()
            .map(|(key, acc)| Group {
                key,
                stats: acc.finish(),
            })
            .collect();
        groups.sort_by(|a, b| a.key.cmp(&b.key));
        Report {
            overall: self.overall.finish(),
            group_by,
            groups,
            percentile_relative_error,
        }
    }
}

/// The figures of `--stats`, also its `--json` shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Executions counted.
    pub count: u64,
    /// Of them, those that succeeded.
    pub successes: u64,
    /// The others: `count - successes`, refused executions included.
    pub failures: u64,
    /// Percent; absent when there is nothing to rate.
    pub success_rate: Option<f64>,
    /// Each execution's `wall_time_seconds` (spawn to reap, summed over attempts, backoff
    /// excluded), seconds.
    pub duration_seconds: Durations,
    /// Each execution's `peak_memory_mb` (the process tree's peak), MiB.
    pub peak_memory_mb: Memory,
    /// User plus system CPU time of all of them, seconds (summed to the microsecond).
    pub cpu_time_seconds_total: f64,
    /// Attempts after the first, summed (saturating at `u64::MAX`).
    pub retries: u64,
    /// Failures by error category (`TIMEOUT`, ...); a failure without one counts under
    /// `(none)`. Successes are not in it.
    pub failures_by_category: BTreeMap<String, u64>,
}

/// Execution durations, seconds; every figure absent when no execution was counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Durations {
    /// The mean.
    pub avg: Option<f64>,
    /// The median, nearest rank (a duration that occurred).
    pub p50: Option<f64>,
    /// The 90th percentile, nearest rank.
    pub p90: Option<f64>,
    /// The 95th percentile, nearest rank.
    pub p95: Option<f64>,
    /// The 99th percentile, nearest rank.
    pub p99: Option<f64>,
    /// The longest.
    pub max: Option<f64>,
}

/// Peak memory of the executions, MiB; both absent when no execution was counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Memory {
    /// The highest peak.
    pub max: Option<f64>,
    /// The mean of the peaks.
    pub avg: Option<f64>,
}

/// The statistics of one group of `--group-by`; in JSON the key sits beside the figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The group's value of the grouped field (`ann`, `2024-01-15T10`), or [`NONE_KEY`].
    pub key: String,
    /// The figures of the group's executions.
    #[serde(flatten)]
    pub stats: Stats,
}

/// What `--stats` answers, and its `--json` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Every execution the query matched.
    pub overall: Stats,
    /// The grouping asked for, by its command-line name (`"user"`), or null.
    #[serde(serialize_with = "ser_group_by")]
    pub group_by: Option<GroupBy>,
    /// One per key, sorted by key; empty without `--group-by`.
    pub groups: Vec<Group>,
    /// Present when some files were counted from their summaries: the duration
    /// percentiles are then a sketch's, each within this fraction (0.01) of the exact
    /// nearest-rank value. Absent: exact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentile_relative_error: Option<f64>,
}

fn ser_group_by<S: serde::Serializer>(g: &Option<GroupBy>, s: S) -> Result<S::Ok, S::Error> {
    use clap::ValueEnum;
    match g.and_then(|g| g.to_possible_value()) {
        Some(v) => s.serialize_some(v.get_name()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 50.0), Some(5.0));
        assert_eq!(nearest_rank(&v, 90.0), Some(9.0));
        assert_eq!(nearest_rank(&v, 95.0), Some(10.0));
        assert_eq!(nearest_rank(&v, 99.0), Some(10.0));
        assert_eq!(nearest_rank(&[3.0], 50.0), Some(3.0));
        assert_eq!(nearest_rank(&[], 50.0), None);
    }

    /// The sum is the double nearest the exact sum, where adding in order is not.
    #[test]
    fn the_sum_of_durations_is_rounded_once() {
        let sum = |v: &[f64]| order_free_sum(v);
        // 1.934 is the double nearest 0.4 + 1.5 + 0.021 + 0.013 (each a double); adding
        // them in sorted order gives the next one up.
        assert_eq!(sum(&[0.4, 1.5, 0.021, 0.013]), 1.934);
        assert_eq!(sum(&[0.1; 10]), 1.0);
        assert_eq!(sum(&[1e16, 1.0, -1e16]), 1.0);
        assert_eq!(sum(&[1e16, 1.0, 1.0, -1e16]), 2.0);
        assert_eq!(sum(&[-0.5, -0.25]), -0.75);
        assert_eq!(sum(&[3.0, -3.0]), 0.0);
        assert_eq!(sum(&[]), 0.0);
        assert_eq!(sum(&[f64::MIN_POSITIVE, 1.0]), 1.0);
        assert_eq!(sum(&[1e30, 2e30]), 3.0000000000000003e30);
        assert_eq!(sum(&[1e300, 1.0]), 1e300);
        // 2^53 + 1 + 1: each 1 alone would be lost to rounding, together they are not.
        let big = (1u64 << 53) as f64;
        assert_eq!(sum(&[big, 1.0, 1.0]), big + 2.0);
        // Ties to even: 2^53 + 1 is halfway between two doubles.
        assert_eq!(sum(&[big, 1.0]), big);
        assert_eq!(sum(&[big, 1.0, 2f64.powi(-100)]), big + 2.0);
    }

    /// Percentiles found by selection are the sorted values' nearest ranks, and the sum is
    /// the same to the last bit in any order, with ties, zeros, negative and huge values.
    #[test]
    fn selected_percentiles_and_the_sum_do_not_depend_on_the_order() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for n in [0usize, 1, 2, 3, 7, 100, 1001, 10_000] {
            let mut values: Vec<f64> = (0..n)
                .map(|_| match next() % 10 {
                    0 => 0.0,
                    1 => 1.5,
                    2 => -((next() % 1000) as f64) / 7.0,
                    3 if n > 100 => 1e300,
                    _ => (next() % 10_000_000) as f64 / 1e6 + 1.0 / 3.0,
                })
                .collect();
            let ps = [50.0, 90.0, 95.0, 99.0, 100.0];
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let expected = ps.map(|p| nearest_rank(&sorted, p));
            let sum = order_free_sum(&values);
            let exact: f64 = sorted.iter().sum();
            assert!(
                (sum - exact).abs() <= 1e-12 * exact.abs().max(1.0),
                "{sum} {exact}"
            );
            for _ in 0..5 {
                // Shuffled.
                for i in (1..values.len()).rev() {
                    values.swap(i, next() as usize % (i + 1));
                }
                assert_eq!(order_free_sum(&values).to_bits(), sum.to_bits(), "n {n}");
                // Summed in two parts, merged.
                let cut = if n == 0 { 0 } else { next() as usize % n };
                let [mut a, mut b] = [ExactSum::default(), ExactSum::default()];
                values[..cut].iter().for_each(|v| a.add(*v));
                values[cut..].iter().for_each(|v| b.add(*v));
                a.merge(b);
                assert_eq!(a.value().to_bits(), sum.to_bits(), "n {n}, cut at {cut}");
                assert_eq!(nearest_ranks(&mut values.clone(), ps), expected, "n {n}");
            }
        }
    }

    /// Found by the `logs` fuzz target: retries summed past `u64::MAX` (two lines that
    /// claim `u64::MAX` retries) overflowed, a panic in `--stats`.
    #[test]
    fn retries_past_u64_max_saturate() {
        let huge: Record = serde_json::from_str(
            r#"{"event":"finished","success":false,"retries":18446744073709551615}"#,
        )
        .unwrap();
        let mut a = StatsAcc::default();
        a.add(&huge, Some(GroupBy::Script));
        a.add(&huge, Some(GroupBy::Script));
        let mut b = StatsAcc::default();
        b.add(&huge, Some(GroupBy::Script));
        a.merge(b);
        let r = a.finish(Some(GroupBy::Script));
        assert_eq!(r.overall.retries, u64::MAX);
        assert_eq!(r.groups[0].stats.retries, u64::MAX);
        assert_eq!(r.overall.count, 3);
    }

    #[test]
    fn accumulates_and_merges() {
        let ok: Record = serde_json::from_str(
            r#"{"event":"finished","success":true,"script_id":"a","retries":1,"resource_usage":{"wall_time_seconds":2.0,"peak_memory_mb":10.0,"cpu_time_seconds":1.0}}"#,
        )
        .unwrap();
        let bad: Record = serde_json::from_str(
            r#"{"event":"finished","success":false,"category":"TIMEOUT","script_id":"b","resource_usage":{"wall_time_seconds":4.0,"peak_memory_mb":30.0,"cpu_time_seconds":0.5}}"#,
        )
        .unwrap();
        let mut a = StatsAcc::default();
        a.add(&ok, Some(GroupBy::Script));
        let mut b = StatsAcc::default();
        b.add(&bad, Some(GroupBy::Script));
        a.merge(b);
        let r = a.finish(Some(GroupBy::Script));
        assert_eq!(r.overall.count, 2);
        assert_eq!(r.overall.success_rate, Some(50.0));
        assert_eq!(r.overall.duration_seconds.avg, Some(3.0));
        assert_eq!(r.overall.duration_seconds.p50, Some(2.0));
        assert_eq!(r.overall.duration_seconds.max, Some(4.0));
        assert_eq!(r.overall.peak_memory_mb.max, Some(30.0));
        assert_eq!(r.overall.cpu_time_seconds_total, 1.5);
        assert_eq!(r.overall.retries, 1);
        assert_eq!(r.overall.failures_by_category["TIMEOUT"], 1);
        assert_eq!(
            r.groups.iter().map(|g| g.key.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }
}
