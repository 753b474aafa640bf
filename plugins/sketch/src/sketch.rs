//! [`DdSketch`] and its [`Config`]: the logarithmic index mapping, the zero bucket, the
//! bounded store, nearest-rank quantiles.

use std::fmt;

use crate::store::Store;

/// The parameters of a sketch. Two sketches merge only when their configs are equal.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    relative_accuracy: f64,
    max_buckets: usize,
    min_value: f64,
    /// ln γ, γ = (1 + α) / (1 − α).
    gamma_ln: f64,
    /// 1 / ln γ.
    multiplier: f64,
}

impl Config {
    /// α when none is chosen: every quantile within 1 % of its exact value.
    pub const DEFAULT_RELATIVE_ACCURACY: f64 = 0.01;
    /// The bucket cap when none is chosen: 16 KiB of counts per sketch at most.
    pub const DEFAULT_MAX_BUCKETS: usize = 2048;
    /// Values at or below this go to the zero bucket when nothing else is chosen.
    pub const DEFAULT_MIN_VALUE: f64 = 1e-9;
    /// The smallest α accepted (it keeps the bucket keys of every `f64` small integers).
    pub const MIN_RELATIVE_ACCURACY: f64 = 1e-6;
    /// The largest bucket cap accepted (512 KiB of counts).
    pub const MAX_MAX_BUCKETS: usize = 1 << 16;

    /// A config with relative accuracy `relative_accuracy` (α, in
    /// [`MIN_RELATIVE_ACCURACY`](Self::MIN_RELATIVE_ACCURACY) .. 1) and the default cap and
    /// minimum value.
    pub fn new(relative_accuracy: f64) -> Result<Self, ConfigError> {
        if !(Self::MIN_RELATIVE_ACCURACY..1.0).contains(&relative_accuracy) {
            return Err(ConfigError::RelativeAccuracy(relative_accuracy));
        }
        // ln((1 + α) / (1 − α)) = ln(1 + 2α / (1 − α)), the latter without cancellation.
        let gamma_ln = (2.0 * relative_accuracy / (1.0 - relative_accuracy)).ln_1p();
        Ok(Config {
            relative_accuracy,
            max_buckets: Self::DEFAULT_MAX_BUCKETS,
            min_value: Self::DEFAULT_MIN_VALUE,
            gamma_ln,
            multiplier: 1.0 / gamma_ln,
        })
    }

    /// The same config with at most `max_buckets` buckets (1 ..=
    /// [`MAX_MAX_BUCKETS`](Self::MAX_MAX_BUCKETS)).
    pub fn with_max_buckets(self, max_buckets: usize) -> Result<Self, ConfigError> {
        if !(1..=Self::MAX_MAX_BUCKETS).contains(&max_buckets) {
            return Err(ConfigError::MaxBuckets(max_buckets));
        }
        Ok(Config {
            max_buckets,
            ..self
        })
    }

    /// The same config with values at or below `min_value` (a positive, normal, finite
    /// `f64`) counted in the zero bucket.
    pub fn with_min_value(self, min_value: f64) -> Result<Self, ConfigError> {
        if !(min_value.is_normal() && min_value > 0.0) {
            return Err(ConfigError::MinValue(min_value));
        }
        Ok(Config { min_value, ..self })
    }

    /// α: the most a quantile's value is off, relative to the exact value.
    pub fn relative_accuracy(&self) -> f64 {
        self.relative_accuracy
    }

    /// The most buckets a sketch keeps.
    pub fn max_buckets(&self) -> usize {
        self.max_buckets
    }

    /// Values at or below this are counted in the zero bucket (and reported as 0).
    pub fn min_value(&self) -> f64 {
        self.min_value
    }

    /// γ^(max_buckets − 1): values whose largest-to-smallest ratio (over the values above
    /// [`min_value`](Self::min_value)) is at most this never make a sketch collapse.
    /// About 6·10^17 with the defaults.
    pub fn collapse_free_ratio(&self) -> f64 {
        ((self.max_buckets - 1) as f64 * self.gamma_ln).exp()
    }

    /// The bucket key of `value` (> `min_value`): bucket `k` holds (γ^(k−1), γ^k].
    pub(crate) fn key(&self, value: f64) -> i64 {
        (value.ln() * self.multiplier).ceil() as i64
    }

    /// The value reported for bucket `key`: (1 + α)·γ^(k−1), within α of every value of
    /// (γ^(k−1), γ^k] (exactly α at both ends).
    pub(crate) fn value(&self, key: i64) -> f64 {
        ((key - 1) as f64 * self.gamma_ln).exp() * (1.0 + self.relative_accuracy)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new(Self::DEFAULT_RELATIVE_ACCURACY)
            .unwrap_or_else(|_| unreachable!("the default relative accuracy is valid"))
    }
}

impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        // The derived fields follow from these three.
        self.relative_accuracy == other.relative_accuracy
            && self.max_buckets == other.max_buckets
            && self.min_value == other.min_value
    }
}

/// A config parameter out of its range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConfigError {
    /// α must be in [1e-6, 1).
    RelativeAccuracy(f64),
    /// The cap must be in 1 ..= 65536.
    MaxBuckets(usize),
    /// The minimum value must be positive, normal and finite.
    MinValue(f64),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::RelativeAccuracy(alpha) => write!(
                f,
                "relative accuracy {alpha} is out of range: it must be at least {} and below 1",
                Config::MIN_RELATIVE_ACCURACY
            ),
            ConfigError::MaxBuckets(n) => write!(
                f,
                "max_buckets {n} is out of range: it must be 1 to {}",
                Config::MAX_MAX_BUCKETS
            ),
            ConfigError::MinValue(v) => write!(
                f,
                "min_value {v} is out of range: it must be a positive, normal, finite number"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Two sketches with different configs: their buckets mean different ranges of values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MergeError {
    /// The config of the sketch merged into.
    pub ours: Config,
    /// The config of the sketch offered.
    pub theirs: Config,
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let describe = |c: &Config| {
            format!(
                "relative accuracy {}, max_buckets {}, min_value {}",
                c.relative_accuracy, c.max_buckets, c.min_value
            )
        };
        write!(
            f,
            "cannot merge sketches with different configs ({} into {})",
            describe(&self.theirs),
            describe(&self.ours)
        )
    }
}

impl std::error::Error for MergeError {}

/// Where an accepted value goes: the zero bucket or the bucket of a key.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Bucket {
    Zero,
    Key(i64),
}

/// A quantile sketch with relative-error guarantees (DDSketch). See the crate documentation
/// for the guarantee, the bucket cap and the JSON form.
#[derive(Clone, Debug)]
pub struct DdSketch {
    pub(crate) config: Config,
    pub(crate) store: Store,
    /// Values at or below `config.min_value`.
    pub(crate) zero_count: u64,
    pub(crate) count: u64,
    pub(crate) sum: f64,
    /// Exact; +∞ and −∞ when empty.
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Default for DdSketch {
    fn default() -> Self {
        DdSketch::with_config(Config::default())
    }
}

impl DdSketch {
    /// An empty sketch with the default config (α = 0.01, 2048 buckets, zero bucket up to
    /// 1e-9).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty sketch with `config`.
    pub fn with_config(config: Config) -> Self {
        DdSketch {
            config,
            store: Store::new(config.max_buckets),
            zero_count: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// The sketch's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Adds `value`: a finite value ≥ 0 (a duration, a size). Anything else (NaN, a
    /// negative or an infinite value) is refused: nothing changes and the answer is
    /// `false`.
    pub fn add(&mut self, value: f64) -> bool {
        match self.bucket_of(value) {
            Some(bucket) => {
                self.add_to_bucket(value, bucket);
                true
            }
            None => false,
        }
    }

    /// Where `value` goes; `None` if it is refused. Sketches of one config (the intervals
    /// of [`Windowed`](crate::Windowed)) share the answer, computing the logarithm once.
    pub(crate) fn bucket_of(&self, value: f64) -> Option<Bucket> {
        if !(value >= 0.0 && value.is_finite()) {
            None
        } else if value > self.config.min_value {
            Some(Bucket::Key(self.config.key(value)))
        } else {
            Some(Bucket::Zero)
        }
    }

    /// Adds `value`, whose bucket under this sketch's config is `bucket`.
    pub(crate) fn add_to_bucket(&mut self, value: f64, bucket: Bucket) {
        match bucket {
            Bucket::Key(key) => self.store.add(key, 1),
            Bucket::Zero => self.zero_count += 1,
        }
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds every value of `other`: afterwards this sketch has the buckets, counts, min and
    /// max of the sketch of both sketches' values together, whatever the order of merges
    /// and adds (the sum may differ in its last bits: floating-point addition). Refused,
    /// with nothing changed, when the configs differ.
    pub fn merge(&mut self, other: &DdSketch) -> Result<(), MergeError> {
        if self.config != other.config {
            return Err(MergeError {
                ours: self.config,
                theirs: other.config,
            });
        }
        self.merge_same_config(other);
        Ok(())
    }

    /// [`merge`](Self::merge) for a sketch known to share this one's config.
    pub(crate) fn merge_same_config(&mut self, other: &DdSketch) {
        if other.count == 0 {
            return;
        }
        self.store.merge(&other.store);
        self.zero_count += other.zero_count;
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The nearest-rank `q`-quantile, within the relative accuracy (see the crate
    /// documentation): an estimate of the ⌈q·n⌉-th smallest of the n values added (the
    /// smallest for q = 0; q = 0 and q = 1 give the exact min and max). `None` when the
    /// sketch is empty or `q` is not in [0, 1].
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        if q == 0.0 {
            return Some(self.min);
        }
        if q == 1.0 {
            return Some(self.max);
        }
        let rank = nearest_rank(q, self.count);
        let estimate = if rank <= self.zero_count {
            0.0
        } else {
            let key = self.store.key_at_rank(rank - self.zero_count - 1);
            self.config.value(key)
        };
        // The exact quantile lies within [min, max]: clamping only brings the estimate
        // closer (and turns the zero bucket's 0 into the exact min when that is positive).
        Some(estimate.clamp(self.min, self.max))
    }

    /// How many values were added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether no value was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The sum of the values added (0 when empty).
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The mean of the values added.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The smallest value added, exactly.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// The largest value added, exactly.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// How many values were counted in the zero bucket (at or below the config's
    /// `min_value`).
    pub fn zero_count(&self) -> u64 {
        self.zero_count
    }

    /// Whether the bucket cap made the sketch fold its lowest buckets together (then the
    /// quantiles whose values lie below [`lowest_exact_value`](Self::lowest_exact_value) are
    /// over-estimated).
    pub fn is_collapsed(&self) -> bool {
        self.store.collapsed()
    }

    /// The value above which every quantile keeps the relative accuracy: the lower edge of
    /// the lowest bucket kept when the sketch is collapsed, otherwise the zero bucket's
    /// bound (`min_value`).
    pub fn lowest_exact_value(&self) -> f64 {
        if self.store.collapsed() {
            // Bucket k holds (γ^(k−1), γ^k].
            ((self.store.offset() - 1) as f64 * self.config.gamma_ln).exp()
        } else {
            self.config.min_value
        }
    }

    /// How many buckets the sketch holds now (at most the config's `max_buckets`).
    pub fn bucket_count(&self) -> usize {
        self.store.bins().len()
    }

    /// The bytes the sketch occupies: its own size and its bucket counts' allocation
    /// (at most `max_buckets` × 8).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.store.allocated_bytes()
    }

    /// Forgets every value; keeps the config and the allocation.
    pub fn clear(&mut self) {
        self.store.clear();
        self.zero_count = 0;
        self.count = 0;
        self.sum = 0.0;
        self.min = f64::INFINITY;
        self.max = f64::NEG_INFINITY;
    }
}

/// ⌈q·n⌉ clamped to 1 ..= n, for 0 < q < 1.
///
/// q·n is computed in floating point, where a product that is an integer in decimal
/// (0.07 × 100) can come out a hair above it (7.000000000000001) and round up to the next
/// rank; taking off a relative 1e-12 first keeps such products on their integer, and moves
/// a true fraction only when it is below 1e-12 of q·n.
fn nearest_rank(q: f64, n: u64) -> u64 {
    let x = q * n as f64;
    let rank = (x - x * 1e-12).ceil() as u64;
    rank.clamp(1, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_is_the_ceiling_of_q_times_n() {
        assert_eq!(nearest_rank(0.5, 10), 5);
        assert_eq!(nearest_rank(0.95, 10), 10);
        assert_eq!(nearest_rank(0.9, 10), 9);
        assert_eq!(nearest_rank(0.07, 100), 7);
        assert_eq!(nearest_rank(0.99, 1), 1);
        assert_eq!(nearest_rank(1e-9, 1000), 1);
        for n in 1..=1000u64 {
            for percent in [1u64, 7, 25, 50, 57, 90, 95, 99] {
                let expected = (percent * n).div_ceil(100);
                assert_eq!(nearest_rank(percent as f64 / 100.0, n), expected.max(1));
            }
        }
    }

    #[test]
    fn every_value_is_within_alpha_of_its_bucket_value() {
        for alpha in [1e-6, 0.001, 0.01, 0.05, 0.5] {
            let config = Config::new(alpha).unwrap();
            let check = |x: f64| {
                let estimate = config.value(config.key(x));
                let error = (estimate - x).abs() / x;
                assert!(error <= alpha + 1e-12, "α {alpha}, x {x:e}: {error}");
            };
            // Points all over the range of values...
            let mut x = 1e-8;
            while x < 1e300 {
                check(x);
                x *= 1.003;
            }
            // ... and at bucket edges, where a value is as far from its bucket's as it gets.
            let (lo, hi) = (config.key(1e-8), config.key(1e300));
            for k in (lo..hi).step_by(((hi - lo) / 5000).max(1) as usize) {
                let edge = (k as f64 * config.gamma_ln).exp();
                for x in [edge.next_down(), edge, edge.next_up()] {
                    check(x);
                }
            }
        }
    }

    #[test]
    fn bucket_edges_and_keys_of_extreme_values() {
        let config = Config::default();
        // Keys of every representable value fit comfortably.
        assert!(config.key(f64::MAX) < 40_000);
        assert!(config.key(f64::MIN_POSITIVE) > -40_000);
        // The largest value reports a finite value once clamped.
        let mut sketch = DdSketch::new();
        assert!(sketch.add(f64::MAX));
        assert_eq!(sketch.quantile(0.5), Some(f64::MAX));
    }

    #[test]
    fn config_ranges() {
        assert!(Config::new(0.0).is_err());
        assert!(Config::new(1.0).is_err());
        assert!(Config::new(f64::NAN).is_err());
        assert!(Config::new(1e-7).is_err());
        assert!(Config::new(1e-6).is_ok());
        assert!(Config::new(0.999).is_ok());
        let config = Config::default();
        assert!(config.with_max_buckets(0).is_err());
        assert!(config.with_max_buckets(1 << 17).is_err());
        assert!(config.with_max_buckets(1).is_ok());
        assert!(config.with_min_value(0.0).is_err());
        assert!(config.with_min_value(-1.0).is_err());
        assert!(config.with_min_value(f64::INFINITY).is_err());
        assert!(config.with_min_value(1e-310).is_err(), "subnormal");
        assert_eq!(
            Config::new(1.0).unwrap_err().to_string(),
            "relative accuracy 1 is out of range: it must be at least 0.000001 and below 1"
        );
    }

    #[test]
    fn default_cap_covers_every_plausible_duration() {
        let ratio = Config::default().collapse_free_ratio();
        // One nanosecond to ten years (3.2e17 ns), in any unit, fits without collapsing.
        assert!(ratio > 3.2e17, "{ratio:e}");
        assert!(ratio > 5e17 && ratio < 7e17, "{ratio:e}");
    }

    #[test]
    fn refuses_nan_negative_and_infinite_values() {
        let mut sketch = DdSketch::new();
        for bad in [f64::NAN, -1.0, -0.0001, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(!sketch.add(bad), "{bad}");
        }
        assert!(sketch.is_empty());
        assert_eq!(sketch.min(), None);
        assert_eq!(sketch.quantile(0.5), None);
        assert!(sketch.add(-0.0), "negative zero is zero");
        assert_eq!(sketch.count(), 1);
    }

    #[test]
    fn empty_sketch_and_quantiles_out_of_range() {
        let mut sketch = DdSketch::new();
        assert_eq!(sketch.quantile(0.5), None);
        assert_eq!(sketch.mean(), None);
        assert_eq!(sketch.sum(), 0.0);
        sketch.add(3.0);
        assert_eq!(sketch.quantile(-0.1), None);
        assert_eq!(sketch.quantile(1.1), None);
        assert_eq!(sketch.quantile(f64::NAN), None);
        assert_eq!(sketch.quantile(0.0), Some(3.0));
        assert_eq!(sketch.quantile(1.0), Some(3.0));
        assert_eq!(sketch.mean(), Some(3.0));
    }

    #[test]
    fn merge_refuses_another_config_and_changes_nothing() {
        let mut ours = DdSketch::new();
        ours.add(1.0);
        let mut theirs = DdSketch::with_config(Config::new(0.02).unwrap());
        theirs.add(2.0);
        let error = ours.merge(&theirs).unwrap_err();
        assert_eq!(error.theirs.relative_accuracy(), 0.02);
        assert_eq!(ours.count(), 1);
        let capped = DdSketch::with_config(Config::default().with_max_buckets(10).unwrap());
        assert!(ours.merge(&capped).is_err());
        let tiny = DdSketch::with_config(Config::default().with_min_value(1e-6).unwrap());
        assert!(ours.merge(&tiny).is_err());
    }

    #[test]
    fn clear_forgets_values_and_keeps_config() {
        let config = Config::new(0.02).unwrap().with_max_buckets(64).unwrap();
        let mut sketch = DdSketch::with_config(config);
        for i in 1..1000 {
            sketch.add(i as f64);
        }
        sketch.add(0.0);
        sketch.clear();
        assert!(sketch.is_empty());
        assert_eq!(sketch.bucket_count(), 0);
        assert_eq!(sketch.zero_count(), 0);
        assert!(!sketch.is_collapsed());
        assert_eq!(*sketch.config(), config);
        sketch.add(5.0);
        assert_eq!(sketch.min(), Some(5.0));
        assert_eq!(sketch.max(), Some(5.0));
    }

    #[test]
    fn collapsed_sketch_keeps_upper_quantiles_and_overestimates_lower_ones() {
        let config = Config::default().with_max_buckets(100).unwrap();
        let mut sketch = DdSketch::with_config(config);
        // 100 values at 1, then 900 spread over 1000..2000: γ^99 ≈ 7.2 < 1000, so the
        // lowest values fold into the lowest bucket kept.
        for _ in 0..100 {
            sketch.add(1.0);
        }
        for i in 0..900 {
            sketch.add(1000.0 + i as f64 * 1000.0 / 900.0);
        }
        assert!(sketch.is_collapsed());
        let floor = sketch.lowest_exact_value();
        assert!(floor > 1.0 && floor < 2000.0, "{floor}");
        // p5 is 1: reported above it, at the lowest kept bucket's value.
        let p5 = sketch.quantile(0.05).unwrap();
        assert!(p5 > floor, "{p5} {floor}");
        // p50 (≈ 1444) and p99 (≈ 1989) keep the guarantee.
        let exact_p50 = 1000.0 + 399.0 * 1000.0 / 900.0;
        let p50 = sketch.quantile(0.5).unwrap();
        assert!(
            (p50 - exact_p50).abs() <= 0.01 * exact_p50,
            "{p50} {exact_p50}"
        );
        assert_eq!(sketch.count(), 1000);
        assert_eq!(sketch.min(), Some(1.0));
        assert!(sketch.bucket_count() <= 100);
    }
}
