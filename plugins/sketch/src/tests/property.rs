//! Many random cases, each checking the guarantee at every percentile, merges of random
//! splits in random orders, and the JSON round trip.

use super::support::{assert_same_buckets, check, sketch_with, Rng};
use crate::{Config, DdSketch};

/// A random distribution: one of the shapes at a random scale, or a mixture of two.
fn draw(rng: &mut Rng, shape: u64, scale: f64) -> f64 {
    match shape {
        0 => rng.uniform(0.0, scale),
        1 => rng.exponential(scale),
        2 => rng.lognormal(scale, 2.0),
        3 => {
            if rng.below(2) == 0 {
                rng.lognormal(scale, 0.2)
            } else {
                rng.lognormal(scale * 3000.0, 0.2)
            }
        }
        4 => {
            if rng.below(3) == 0 {
                0.0
            } else {
                rng.exponential(scale)
            }
        }
        _ => (rng.below(5) as f64) * scale,
    }
}

#[test]
fn random_cases_keep_the_guarantee_merge_exactly_and_round_trip() {
    let alphas = [0.001, 0.005, 0.01, 0.02, 0.05];
    let caps = [16, 128, 2048];
    for seed in 0..300u64 {
        let mut rng = Rng::new(seed);
        let config = Config::new(alphas[rng.below(5) as usize])
            .and_then(|c| c.with_max_buckets(caps[rng.below(3) as usize]))
            .unwrap();
        let n = 1 + rng.below(3000) as usize;
        let shape = rng.below(6);
        let scale = 10f64.powf(rng.uniform(-3.0, 6.0));
        let values: Vec<f64> = (0..n).map(|_| draw(&mut rng, shape, scale)).collect();
        let what = format!("seed {seed} (shape {shape}, n {n}, {config:?})");
        let whole = sketch_with(DdSketch::with_config(config), &values);

        // Every percentile, against the exact nearest rank.
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for percent in 1..=100u64 {
            let exact = sorted[((percent * n as u64).div_ceil(100) - 1) as usize];
            let estimate = whole.quantile(percent as f64 / 100.0).unwrap();
            check(&whole, exact, estimate, &format!("{what}: p{percent}"));
        }

        // A random split into up to 8 parts, merged in a random order.
        let mut parts = vec![DdSketch::with_config(config); 1 + rng.below(8) as usize];
        for v in &values {
            let k = rng.below(parts.len() as u64) as usize;
            parts[k].add(*v);
        }
        let mut merged = DdSketch::with_config(config);
        while !parts.is_empty() {
            let k = rng.below(parts.len() as u64) as usize;
            merged.merge(&parts.swap_remove(k)).unwrap();
        }
        assert_same_buckets(&merged, &whole, &what);
        assert_eq!(
            (merged.min(), merged.max()),
            (whole.min(), whole.max()),
            "{what}"
        );

        // The JSON form reads back to the same buckets.
        let json = serde_json::to_string(&whole).unwrap();
        let read: DdSketch = serde_json::from_str(&json).unwrap();
        assert_same_buckets(&read, &whole, &format!("{what}, from JSON"));
    }
}
