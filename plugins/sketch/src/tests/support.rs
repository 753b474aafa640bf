//! What the tests share: a seeded generator, distributions, exact nearest-rank
//! percentiles and the comparisons.

use crate::DdSketch;

/// SplitMix64: a seeded generator that is the same on every platform and version.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Uniform in 0 .. n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * self.unit().ln()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }
}

/// The exact nearest-rank percentile of sorted values: the ⌈p·n/1000⌉-th smallest, `p` in
/// per mille (integer arithmetic, independent of the sketch's floating-point rank).
pub fn exact_per_mille(sorted: &[f64], per_mille: u64) -> f64 {
    let n = sorted.len() as u64;
    let rank = (per_mille * n).div_ceil(1000).max(1);
    sorted[rank as usize - 1]
}

/// The percentiles every accuracy test checks, in per mille.
pub const PERCENTILES: [u64; 6] = [10, 500, 900, 950, 990, 999];

pub fn sketch_of(values: &[f64]) -> DdSketch {
    sketch_with(DdSketch::new(), values)
}

pub fn sketch_with(mut sketch: DdSketch, values: &[f64]) -> DdSketch {
    for v in values {
        assert!(sketch.add(*v), "{v}");
    }
    sketch
}

/// Checks `estimate` against `exact` as the crate documentation promises: within α where
/// the exact value is above the sketch's lowest exact value, not below the exact value
/// (over-estimated) where it lies in a collapsed bucket, at most `min_value` where it is in
/// the zero bucket. Returns the relative error (0 where not relative).
pub fn check(sketch: &DdSketch, exact: f64, estimate: f64, what: &str) -> f64 {
    let alpha = sketch.config().relative_accuracy();
    let min_value = sketch.config().min_value();
    if exact <= min_value {
        assert!(
            estimate <= min_value,
            "{what}: exact {exact}, estimate {estimate}"
        );
        return 0.0;
    }
    if exact <= sketch.lowest_exact_value() {
        assert!(
            estimate >= exact
                && estimate <= sketch.lowest_exact_value() * (1.0 + alpha) * 1.000_001,
            "{what}: exact {exact} in a collapsed bucket, estimate {estimate}"
        );
        return 0.0;
    }
    let error = (estimate - exact).abs() / exact;
    assert!(
        error <= alpha + 1e-12,
        "{what}: exact {exact}, estimate {estimate}, relative error {error} > α = {alpha}"
    );
    error
}

/// Checks every percentile of [`PERCENTILES`] (and min and max, exactly) of the sketch of
/// `values` against the exact ones; returns the largest relative error seen.
pub fn check_percentiles(sketch: &DdSketch, values: &[f64], what: &str) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(sketch.count(), values.len() as u64, "{what}");
    assert_eq!(sketch.min(), sorted.first().copied(), "{what}: min");
    assert_eq!(sketch.max(), sorted.last().copied(), "{what}: max");
    assert_eq!(
        sketch.quantile(0.0),
        sorted.first().copied(),
        "{what}: q = 0"
    );
    assert_eq!(
        sketch.quantile(1.0),
        sorted.last().copied(),
        "{what}: q = 1"
    );
    let mut worst: f64 = 0.0;
    for per_mille in PERCENTILES {
        let exact = exact_per_mille(&sorted, per_mille);
        let estimate = sketch.quantile(per_mille as f64 / 1000.0).unwrap();
        let label = format!("{what}: p{}", per_mille as f64 / 10.0);
        worst = worst.max(check(sketch, exact, estimate, &label));
    }
    worst
}

/// The same config, buckets and counts.
pub fn assert_same_buckets(a: &DdSketch, b: &DdSketch, what: &str) {
    assert_eq!(a.config(), b.config(), "{what}: config");
    assert_eq!(a.store, b.store, "{what}: buckets");
    assert_eq!(a.count(), b.count(), "{what}: count");
    assert_eq!(a.zero_count(), b.zero_count(), "{what}: zero count");
}

/// The same sketch: config, buckets, counts, min and max exactly; the sum up to the
/// rounding of a different order of additions.
pub fn assert_same_sketch(a: &DdSketch, b: &DdSketch, what: &str) {
    assert_same_buckets(a, b, what);
    assert_eq!(a.min(), b.min(), "{what}: min");
    assert_eq!(a.max(), b.max(), "{what}: max");
    let tolerance = 1e-9 * a.sum().abs().max(1e-300);
    assert!(
        (a.sum() - b.sum()).abs() <= tolerance,
        "{what}: sum {} {}",
        a.sum(),
        b.sum()
    );
}
