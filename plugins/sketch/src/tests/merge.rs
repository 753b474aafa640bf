//! Merging: the union of sketches is the sketch of the union, in any order.

use super::support::{assert_same_sketch, check_percentiles, sketch_of, sketch_with, Rng};
use crate::{Config, DdSketch};

/// Latency-like values over many orders of magnitude, with some zeros.
fn mixed(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| match rng.below(4) {
            0 => 0.0,
            1 => rng.exponential(3.0),
            2 => rng.lognormal(200.0, 2.5),
            _ => rng.uniform(5_000.0, 60_000.0),
        })
        .collect()
}

fn merged(parts: &[DdSketch]) -> DdSketch {
    let mut sketch = DdSketch::with_config(*parts[0].config());
    for part in parts {
        sketch.merge(part).unwrap();
    }
    sketch
}

#[test]
fn merge_equals_sketch_of_concatenated_samples() {
    let values = mixed(11, 50_000);
    let whole = sketch_of(&values);
    for parts in [2, 3, 10, 1000] {
        let sketches: Vec<DdSketch> = values
            .chunks(values.len().div_ceil(parts))
            .map(sketch_of)
            .collect();
        let union = merged(&sketches);
        assert_same_sketch(&union, &whole, &format!("{parts} parts"));
        check_percentiles(&union, &values, &format!("merge of {parts} parts"));
    }
}

#[test]
fn merge_is_order_independent() {
    // A small cap, so that some orders collapse on the way and others only at the end.
    for config in [
        Config::default(),
        Config::default().with_max_buckets(64).unwrap(),
    ] {
        let values = mixed(12, 20_000);
        let whole = sketch_with(DdSketch::with_config(config), &values);
        let parts: Vec<DdSketch> = values
            .chunks(5_000)
            .map(|chunk| sketch_with(DdSketch::with_config(config), chunk))
            .collect();
        // All 24 orders of merging four sketches one after another.
        let mut order = [0, 1, 2, 3];
        for _ in 0..24 {
            let sequence: Vec<DdSketch> = order.iter().map(|i| parts[*i].clone()).collect();
            assert_same_sketch(&merged(&sequence), &whole, &format!("order {order:?}"));
            next_permutation(&mut order);
        }
        // As a tree: (a ∪ b) ∪ (c ∪ d), and d merged into a's copy the other way round.
        let left = merged(&parts[..2]);
        let right = merged(&parts[2..]);
        let mut tree = right.clone();
        tree.merge(&left).unwrap();
        assert_same_sketch(&tree, &whole, "tree");
        if config.max_buckets() == 64 {
            assert!(whole.is_collapsed());
            assert!(!parts.iter().all(DdSketch::is_collapsed) || whole.is_collapsed());
        }
    }
}

#[test]
fn merging_empty_sketches_changes_nothing() {
    let values = mixed(13, 1000);
    let sketch = sketch_of(&values);
    let mut into_empty = DdSketch::new();
    into_empty.merge(&sketch).unwrap();
    assert_same_sketch(&into_empty, &sketch, "into empty");
    let mut with_empty = sketch.clone();
    with_empty.merge(&DdSketch::new()).unwrap();
    assert_same_sketch(&with_empty, &sketch, "with empty");
    let mut both_empty = DdSketch::new();
    both_empty.merge(&DdSketch::new()).unwrap();
    assert!(both_empty.is_empty());
    assert_eq!(both_empty.min(), None);
}

#[test]
fn merging_a_sketch_into_itself_doubles_every_count() {
    let values = mixed(14, 1000);
    let sketch = sketch_of(&values);
    let mut doubled = sketch.clone();
    doubled.merge(&sketch).unwrap();
    let twice: Vec<f64> = values.iter().chain(values.iter()).copied().collect();
    assert_same_sketch(&doubled, &sketch_of(&twice), "doubled");
}

/// The next permutation in lexicographic order (wrapping to the first).
fn next_permutation(order: &mut [usize]) {
    let Some(i) = (0..order.len() - 1)
        .rev()
        .find(|&i| order[i] < order[i + 1])
    else {
        order.reverse();
        return;
    };
    let j = (i + 1..order.len())
        .rev()
        .find(|&j| order[j] > order[i])
        .unwrap();
    order.swap(i, j);
    order[i + 1..].reverse();
}
