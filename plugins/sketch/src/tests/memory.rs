//! Memory stays bounded, whatever the number and the spread of the values.

use super::support::check;
use crate::{Config, DdSketch, Window, Windowed};

/// The `i`-th of `n` values spread evenly (in log scale) from 10^lo to 10^hi.
fn log_spread(i: u64, n: u64, lo: f64, hi: f64) -> f64 {
    10f64.powf(lo + (hi - lo) * (i as f64 + 0.5) / n as f64)
}

#[test]
fn ten_million_samples_over_306_orders_of_magnitude_stay_within_the_cap() {
    const N: u64 = 10_000_000;
    // The values are spread evenly in log scale from 1e-6 to 1e300, added in a scrambled
    // order (i ↦ i·P mod N visits every i once, P being prime to N), so the exact
    // nearest-rank percentile is known without storing and sorting ten million values.
    const P: u64 = 7_919_993;
    let mut sketch = DdSketch::new();
    let cap = sketch.config().max_buckets();
    let mut most_buckets = 0;
    for step in 0..N {
        let i = (step * P) % N;
        assert!(sketch.add(log_spread(i, N, -6.0, 300.0)));
        if step % 65_536 == 0 {
            most_buckets = most_buckets.max(sketch.bucket_count());
        }
    }
    most_buckets = most_buckets.max(sketch.bucket_count());
    assert_eq!(sketch.count(), N);
    assert!(most_buckets <= cap, "{most_buckets} buckets");
    assert_eq!(sketch.bucket_count(), cap, "the spread fills the cap");
    assert!(sketch.memory_bytes() <= std::mem::size_of::<DdSketch>() + cap * 8);
    assert!(sketch.is_collapsed());
    // The guarantee holds above the lowest kept bucket (≈ 1e300 / 6e17), and the lower
    // percentiles are over-estimated, as documented.
    let floor = sketch.lowest_exact_value();
    assert!(floor > 1e282 && floor < 1e283, "{floor:e}");
    for per_mille in [10, 500, 900, 950, 990, 999] {
        let rank = (per_mille * N).div_ceil(1000);
        let exact = log_spread(rank - 1, N, -6.0, 300.0);
        let estimate = sketch.quantile(per_mille as f64 / 1000.0).unwrap();
        check(
            &sketch,
            exact,
            estimate,
            &format!("p{}", per_mille as f64 / 10.0),
        );
    }
    let p99 = sketch.quantile(0.99).unwrap();
    assert!(p99 > 1e296 && p99 < 1e297, "{p99:e}");
}

#[test]
fn windows_stay_bounded_over_hours_of_spread_values() {
    let config = Config::default().with_max_buckets(256).unwrap();
    let mut windowed = Windowed::new(config);
    let fixed = windowed.memory_bytes();
    // 1.2 million values over 4 hours (every 12 ms), spread from 1e-3 to 1e12.
    let n = 1_200_000u64;
    for i in 0..n {
        let value = log_spread((i * 7_919) % n, n, -3.0, 12.0);
        assert!(windowed.add(value, 1_700_000_000_000 + i * 12));
    }
    let sketches = 30 + 60 + 1;
    assert!(
        windowed.bucket_count() <= sketches * 256,
        "{}",
        windowed.bucket_count()
    );
    let per_sketch = std::mem::size_of::<DdSketch>() + 256 * 8;
    assert!(
        windowed.memory_bytes() <= std::mem::size_of::<Windowed>() + sketches * per_sketch,
        "{} bytes",
        windowed.memory_bytes()
    );
    assert!(windowed.memory_bytes() > fixed);
    assert_eq!(windowed.since_start().count(), n);
    // The hour's window has the values from the start of its oldest minute on.
    let time = |i: u64| 1_700_000_000_000 + i * 12;
    let now = time(n - 1);
    let start = (now / 60_000 - 59) * 60_000;
    let in_hour = (0..n).filter(|i| time(*i) >= start).count() as u64;
    assert_eq!(windowed.window(Window::SixtyMinutes, now).count(), in_hour);
}
