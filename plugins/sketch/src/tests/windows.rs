//! Sliding windows: values leave each window at the documented instant; a window is the
//! merge of its intervals and the sketch of exactly the values its edges take in.

use super::support::{assert_same_sketch, Rng};
use crate::{DdSketch, Window, Windowed};

const MINUTE: u64 = 60_000;

fn counts(windowed: &Windowed, now_ms: u64) -> [u64; 4] {
    Window::ALL.map(|w| windowed.window(w, now_ms).count())
}

#[test]
fn a_value_leaves_each_window_at_the_stated_instant() {
    let mut windowed = Windowed::default();
    // 12 345 ms lies in the 10 s interval [10 000, 20 000) and the minute [0, 60 000).
    assert!(windowed.add(5.0, 12_345));
    assert_eq!(counts(&windowed, 12_345), [1, 1, 1, 1]);
    // One minute: the six intervals ending with now's; gone when [10 000, 20 000) is the
    // seventh, at 70 000.
    assert_eq!(counts(&windowed, 69_999), [1, 1, 1, 1]);
    assert_eq!(counts(&windowed, 70_000), [0, 1, 1, 1]);
    // Five minutes: gone at 10 000 + 300 000.
    assert_eq!(counts(&windowed, 309_999), [0, 1, 1, 1]);
    assert_eq!(counts(&windowed, 310_000), [0, 0, 1, 1]);
    // Sixty minutes: gone at 0 + 60 min.
    assert_eq!(counts(&windowed, 60 * MINUTE - 1), [0, 0, 1, 1]);
    assert_eq!(counts(&windowed, 60 * MINUTE), [0, 0, 0, 1]);
    // Since start: for ever.
    assert_eq!(counts(&windowed, 1_000 * 60 * MINUTE), [0, 0, 0, 1]);
}

#[test]
fn edges_at_interval_boundaries() {
    let mut windowed = Windowed::default();
    // On an interval's first millisecond: a full minute in the 1-minute window.
    windowed.add(1.0, 20_000);
    // On an interval's last millisecond: only 50.001 s.
    windowed.add(2.0, 19_999);
    assert_eq!(
        windowed.window(Window::OneMinute, 20_000).count(),
        2,
        "now on an edge"
    );
    assert_eq!(windowed.window(Window::OneMinute, 69_999).count(), 2);
    assert_eq!(windowed.window(Window::OneMinute, 70_000).max(), Some(1.0));
    assert_eq!(windowed.window(Window::OneMinute, 79_999).count(), 1);
    assert_eq!(windowed.window(Window::OneMinute, 80_000).count(), 0);
    // Never older than the window: a value exactly 5 min old is out, and one a millisecond
    // younger is out too when it sits in the oldest interval's predecessor.
    let mut windowed = Windowed::default();
    windowed.add(1.0, 400_000);
    assert_eq!(windowed.window(Window::FiveMinutes, 700_000).count(), 0);
    windowed.add(1.0, 400_001);
    assert_eq!(windowed.window(Window::FiveMinutes, 700_000).count(), 0);
    assert_eq!(windowed.window(Window::FiveMinutes, 699_999).count(), 2);
    // A value of an interval after the query's is not in the query's window.
    windowed.add(1.0, 710_000);
    assert_eq!(windowed.window(Window::FiveMinutes, 709_999).count(), 0);
    assert_eq!(windowed.window(Window::FiveMinutes, 710_000).count(), 1);
    // The query's own interval counts whole: it is one sketch.
    windowed.add(2.0, 715_000);
    assert_eq!(windowed.window(Window::FiveMinutes, 710_000).count(), 2);
}

#[test]
fn lengths_and_labels() {
    let lengths = Window::ALL.map(Window::length_ms);
    assert_eq!(
        lengths,
        [Some(MINUTE), Some(5 * MINUTE), Some(60 * MINUTE), None]
    );
    let labels = Window::ALL.map(Window::label);
    assert_eq!(labels, ["1m", "5m", "60m", "start"]);
}

/// Whether a value at `t` is in `window` at `now`, by the documented rule.
fn in_window(window: Window, t: u64, now: u64) -> bool {
    let (interval, n) = match window {
        Window::OneMinute => (10_000, 6),
        Window::FiveMinutes => (10_000, 30),
        Window::SixtyMinutes => (MINUTE, 60),
        Window::SinceStart => return true,
    };
    t / interval + n > now / interval && t / interval <= now / interval
}

#[test]
fn windows_are_the_merge_of_their_intervals_and_hold_exactly_their_values() {
    let mut rng = Rng::new(21);
    let mut windowed = Windowed::default();
    let mut added: Vec<(f64, u64)> = Vec::new();
    let start = 1_700_000_012_345u64;
    let mut now = start;
    let mut next_query = start;
    // Two and a half hours of values, 300 ms apart on average, some arriving up to 20 s
    // late (out of order, still inside the ring).
    while now < start + 150 * MINUTE {
        now += rng.below(600);
        let t = if rng.below(10) == 0 {
            now.saturating_sub(rng.below(20_000))
        } else {
            now
        };
        let value = rng.lognormal(80.0, 1.5);
        assert!(windowed.add(value, t));
        added.push((value, t));
        if now >= next_query {
            next_query += 7 * MINUTE + rng.below(MINUTE);
            for window in Window::ALL {
                let got = windowed.window(window, now);
                let mut reference = DdSketch::new();
                for (v, t) in &added {
                    if in_window(window, *t, now) {
                        reference.add(*v);
                    }
                }
                let what = format!("{} at {now}", window.label());
                assert_same_sketch(&got, &reference, &what);
                // ... and the merge of the intervals the window lists.
                let intervals = windowed.intervals(window, now);
                let mut from_intervals = DdSketch::new();
                for interval in &intervals {
                    assert!(interval.start_ms < interval.end_ms);
                    from_intervals.merge(interval.sketch).unwrap();
                }
                assert_same_sketch(&from_intervals, &got, &format!("{what}, from intervals"));
                if let Some(length) = window.length_ms() {
                    // Oldest first, none older than the window, none after now.
                    assert!(intervals.windows(2).all(|w| w[0].end_ms <= w[1].start_ms));
                    assert!(intervals.iter().all(|i| i.start_ms + length > now));
                    assert!(intervals.iter().all(|i| i.start_ms <= now));
                }
            }
        }
    }
    // Since start has everything.
    let all = windowed.since_start();
    assert_eq!(all.count(), added.len() as u64);
    let reference = added.iter().fold(DdSketch::new(), |mut s, (v, _)| {
        s.add(*v);
        s
    });
    assert_same_sketch(all, &reference, "since start");
    let span = windowed.intervals(Window::SinceStart, now);
    assert_eq!(span.len(), 1);
    assert_eq!(
        span[0].start_ms,
        added.iter().map(|(_, t)| *t).min().unwrap()
    );
}

#[test]
fn values_too_old_for_the_ring_count_since_start_only() {
    let mut windowed = Windowed::default();
    windowed.add(1.0, 300_000); // 10 s interval 30, in slot 0 of 30
    windowed.add(2.0, 1_000); // interval 0, slot 0 too: it has left the 10 s ring
    assert_eq!(windowed.since_start().count(), 2);
    // The minute ring still has minute 0: the hour window at 300 000 includes it.
    assert_eq!(windowed.window(Window::SixtyMinutes, 300_000).count(), 2);
    assert_eq!(windowed.window(Window::FiveMinutes, 300_000).count(), 1);
    // The 10 s ring kept interval 30's sketch intact.
    assert_eq!(windowed.window(Window::OneMinute, 300_000).max(), Some(1.0));
    // A query before the newest value sees the past intervals the ring still holds.
    let mut windowed = Windowed::default();
    windowed.add(1.0, 1_000);
    windowed.add(2.0, 200_000);
    assert_eq!(windowed.window(Window::OneMinute, 50_000).max(), Some(1.0));
    // A reused slot starts afresh.
    let mut windowed = Windowed::default();
    windowed.add(1.0, 5_000);
    windowed.add(2.0, 305_000);
    assert_eq!(windowed.window(Window::OneMinute, 305_000).count(), 1);
    assert_eq!(windowed.window(Window::OneMinute, 305_000).min(), Some(2.0));
}

#[test]
fn refused_values_change_nothing() {
    let mut windowed = Windowed::default();
    assert!(!windowed.add(f64::NAN, 1_000));
    assert!(!windowed.add(-3.0, 1_000));
    assert_eq!(counts(&windowed, 1_000), [0; 4]);
    assert!(windowed.intervals(Window::SinceStart, 1_000).is_empty());
    assert!(windowed.intervals(Window::OneMinute, 1_000).is_empty());
}

#[test]
fn values_added_as_past_count_since_start_only_as_if_added_one_by_one_long_ago() {
    let now = 1000 * 60 * MINUTE;
    let mut past = DdSketch::new();
    let mut one_by_one = Windowed::default();
    for i in 0..500u64 {
        let v = 0.001 * (i as f64 + 1.0);
        past.add(v);
        one_by_one.add(v, i * 1000);
    }
    let mut windowed = Windowed::default();
    windowed.add(7.0, now - 1000);
    one_by_one.add(7.0, now - 1000);
    windowed.add_past(&past, 0, 499_000).unwrap();
    assert_eq!(counts(&windowed, now), counts(&one_by_one, now));
    assert_eq!(counts(&windowed, now), [1, 1, 1, 501]);
    assert_same_sketch(
        &windowed.window(Window::SinceStart, now),
        &one_by_one.window(Window::SinceStart, now),
        "since start",
    );
    let since_start = windowed.intervals(Window::SinceStart, now);
    assert_eq!(
        (since_start[0].start_ms, since_start[0].end_ms),
        (0, now - 999)
    );
    let other = DdSketch::with_config(crate::Config::new(0.02).unwrap());
    assert!(windowed.add_past(&other, 0, 1).is_err());
}
