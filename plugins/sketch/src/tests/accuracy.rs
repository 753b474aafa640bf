//! p1, p50, p90, p95, p99 and p99.9 against the exact nearest-rank percentiles of the same
//! samples, for the shapes latencies and sizes take.

use super::support::{check_percentiles, sketch_of, sketch_with, Rng};
use crate::{Config, DdSketch};

const N: usize = 100_000;

fn samples(seed: u64, n: usize, mut draw: impl FnMut(&mut Rng) -> f64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| draw(&mut rng)).collect()
}

#[test]
fn uniform() {
    let values = samples(1, N, |r| r.uniform(0.0, 1000.0));
    let worst = check_percentiles(&sketch_of(&values), &values, "uniform");
    // The estimates are not the exact values: the test compares something.
    assert!(worst > 0.0005, "{worst}");
}

#[test]
fn exponential_skewed() {
    let values = samples(2, N, |r| r.exponential(50.0));
    check_percentiles(&sketch_of(&values), &values, "exponential");
}

#[test]
fn lognormal_heavy_tail() {
    // Median 100 ms, σ = 2: p99.9 is about 50 000 times p1.
    let values = samples(3, N, |r| r.lognormal(100.0, 2.0));
    check_percentiles(&sketch_of(&values), &values, "log-normal");
}

#[test]
fn bimodal_far_apart_modes() {
    // 90 % around 10 ms, 10 % around 30 s: p90 is the last value of the fast mode, p95 in
    // the slow one. An estimate that interpolated between ranks would be far off at p90.
    let values = samples(4, N, |r| {
        if r.below(10) < 9 {
            r.lognormal(10.0, 0.1)
        } else {
            r.lognormal(30_000.0, 0.1)
        }
    });
    let sketch = sketch_of(&values);
    check_percentiles(&sketch, &values, "bimodal 90/10");
    assert!(sketch.quantile(0.5).unwrap() < 20.0);
    assert!(sketch.quantile(0.95).unwrap() > 20_000.0);
    // Half and half, with the modes exactly at 10 ms and 30 s.
    let values: Vec<f64> = (0..N)
        .map(|i| if i % 2 == 0 { 10.0 } else { 30_000.0 })
        .collect();
    let sketch = sketch_of(&values);
    check_percentiles(&sketch, &values, "bimodal 50/50");
    let p50 = sketch.quantile(0.5).unwrap();
    assert!((p50 - 10.0).abs() <= 0.1, "{p50}");
    let p51 = sketch.quantile(0.51).unwrap();
    assert!((p51 - 30_000.0).abs() <= 300.0, "{p51}");
    // Ten values, nine fast and one slow: p90 is fast, p95 and p99 are the slow one (the
    // nearest rank ⌈0.95 × 10⌉ = 10; ranks like ⌊q·(n − 1)⌋ would give the ninth).
    let mut values = vec![10.0; 9];
    values.push(30_000.0);
    let sketch = sketch_of(&values);
    check_percentiles(&sketch, &values, "bimodal, ten values");
    assert!(sketch.quantile(0.9).unwrap() < 11.0);
    assert!(sketch.quantile(0.95).unwrap() > 29_000.0);
}

#[test]
fn constant_values_are_exact() {
    let values = vec![42.0; 1000];
    let sketch = sketch_of(&values);
    check_percentiles(&sketch, &values, "constant");
    // Min and max are exact, and the estimate is clamped between them.
    for q in [0.01, 0.5, 0.9, 0.95, 0.99] {
        assert_eq!(sketch.quantile(q), Some(42.0));
    }
}

#[test]
fn one_sample() {
    let sketch = sketch_of(&[7.5]);
    check_percentiles(&sketch, &[7.5], "one sample");
    assert_eq!(sketch.quantile(0.5), Some(7.5));
    assert_eq!(sketch.count(), 1);
    assert_eq!(sketch.sum(), 7.5);
}

#[test]
fn many_zeros() {
    // 70 % zeros (instant runs, nothing measured), the rest exponential.
    let values = samples(5, N, |r| {
        if r.below(10) < 7 {
            0.0
        } else {
            r.exponential(20.0)
        }
    });
    let sketch = sketch_of(&values);
    check_percentiles(&sketch, &values, "many zeros");
    assert_eq!(sketch.quantile(0.5), Some(0.0));
    assert_eq!(sketch.quantile(0.7), Some(0.0));
    assert!(sketch.quantile(0.71).unwrap() > 0.0);
    assert_eq!(
        sketch.zero_count(),
        values.iter().filter(|v| **v == 0.0).count() as u64
    );
    // Only zeros.
    let zeros = vec![0.0; 100];
    check_percentiles(&sketch_of(&zeros), &zeros, "only zeros");
}

#[test]
fn tiny_values_go_to_the_zero_bucket_and_report_the_exact_min() {
    let values = [1e-12, 2e-12, 5e-10, 1.0];
    let sketch = sketch_of(&values);
    assert_eq!(sketch.zero_count(), 3);
    assert_eq!(
        sketch.quantile(0.5),
        Some(1e-12),
        "0 clamped to the exact min"
    );
    check_percentiles(&sketch, &values, "tiny values");
}

#[test]
fn other_relative_accuracies_hold_theirs() {
    let values = samples(6, N, |r| r.lognormal(5.0, 1.5));
    // Enough buckets for the finest α not to collapse: 2048 buckets at α = 0.001 cover a
    // ratio of only γ^2047 ≈ 60 between the largest and the smallest value.
    let config = |alpha| {
        Config::new(alpha)
            .and_then(|c| c.with_max_buckets(20_000))
            .unwrap()
    };
    for alpha in [0.001, 0.005, 0.05] {
        let sketch = sketch_with(DdSketch::with_config(config(alpha)), &values);
        assert!(!sketch.is_collapsed());
        let worst = check_percentiles(&sketch, &values, &format!("α = {alpha}"));
        assert!(worst > alpha / 20.0, "α {alpha}: worst {worst}");
    }
    // A coarser sketch needs fewer buckets.
    let fine = sketch_with(DdSketch::with_config(config(0.001)), &values);
    let coarse = sketch_with(DdSketch::with_config(config(0.05)), &values);
    assert!(coarse.bucket_count() * 10 < fine.bucket_count());
}

#[test]
fn values_arriving_sorted_or_reversed_give_the_same_sketch() {
    let mut values = samples(7, 10_000, |r| r.lognormal(1.0, 3.0));
    let shuffled = sketch_of(&values);
    values.sort_by(f64::total_cmp);
    let ascending = sketch_of(&values);
    values.reverse();
    let descending = sketch_of(&values);
    assert_eq!(ascending.store, shuffled.store);
    assert_eq!(descending.store, shuffled.store);
    check_percentiles(&descending, &values, "descending");
}
