//! The sliding windows of one scope (everything, or one specialist): rings of
//! per-interval buckets, so memory is bounded whatever the rate.
//!
//! The window of `window_seconds` W is cut into [`INTERVALS_PER_WINDOW`] (N = 20)
//! intervals of I = W / 20 (15 s for the default 300 s), aligned on multiples of I since
//! the epoch. An execution counts in the interval holding its finish time.
//!
//! * **The window** at time `now` is the N intervals ending with the one holding `now`:
//!   it covers the last W − I to W (285 to 300 s by default) and includes the executions
//!   of the interval in progress as they arrive. The error rate, the p95 duration and the
//!   peak memory are over it. An execution leaves it at the start of the interval W after
//!   its own.
//! * **The rate drop** compares the N *complete* intervals before the one holding `now`
//!   (the last window) with the N before them (the previous window): two windows of the
//!   same length W, neither of which is still filling, so a steady rate shows no drop
//!   (an interval in progress would look like one). A drop is seen within I of the end of
//!   the interval it happens in.
//!
//! Two rings per scope, each slot holding one interval (slot `i % len` holds interval `i`):
//! counts (executions, failures) over 2N + 1 intervals, for both windows of the rate drop
//! and the window in progress; samples (a [`DdSketch`] of durations, the largest peak
//! memory) over the N intervals of the window. An execution older than every interval a
//! ring holds is not counted in it (it is outside every window of that ring).
//!
//! # Memory
//!
//! Fixed per scope, whatever the rate and the run time: 2N + 1 = 41 count slots of
//! 32 bytes and N = 20 sample slots of 168 bytes, each with a sketch of at most
//! [`SKETCH_MAX_BUCKETS`] (512) buckets of 8 bytes: [`ScopeWindows::max_memory_bytes`],
//! 86 664 bytes (about 85 KiB), of which the sketches' buckets are 80 KiB (only reached
//! when one interval's durations span more than a ratio of about 27 000, e.g. 1 ms to
//! 27 s; a typical interval holds a few dozen buckets). An evaluation merges a scope's
//! sketches into one more of at most 4 KiB, dropped after it.
//!
//! # The p95's accuracy
//!
//! The p95 duration is the nearest-rank 95th percentile (the ⌈0.95·n⌉-th smallest of the
//! n durations) of the window, estimated by merging the intervals' sketches
//! (`metaclaude-sketch`: relative accuracy α = 1 %): the value reported is within 1 % of
//! the exact p95, so a p95 within 1 % of a threshold may be judged either way. Durations
//! of 1 ms or less count as 0. With 512 buckets a sketch holds a ratio of about 27 000
//! between its largest and smallest duration above 1 ms exactly; beyond it the smallest
//! are folded together (over-estimating the low quantiles only): the p95 keeps its 1 %
//! whenever it is above 1/27 000 of the window's longest duration (for a p95 near the
//! default 30 s threshold: while no duration in the window exceeds 9 days).

use metaclaude_formats::finished::Finished;
use metaclaude_sketch::{Config as SketchConfig, DdSketch};

use crate::time::{seconds_to_micros, Time};

/// Intervals in one window.
pub const INTERVALS_PER_WINDOW: u64 = 20;
/// Relative accuracy of the duration sketches.
pub const SKETCH_RELATIVE_ACCURACY: f64 = 0.01;
/// Buckets a duration sketch keeps at most.
pub const SKETCH_MAX_BUCKETS: usize = 512;
/// Durations at or below this (seconds) count as 0 in the sketches.
pub const SKETCH_MIN_SECONDS: f64 = 0.001;

/// The quantile the p95 rule looks at.
const P95: f64 = 0.95;

fn sketch_config() -> SketchConfig {
    SketchConfig::new(SKETCH_RELATIVE_ACCURACY)
        .and_then(|c| c.with_max_buckets(SKETCH_MAX_BUCKETS))
        .and_then(|c| c.with_min_value(SKETCH_MIN_SECONDS))
        .expect("the sketch constants are a valid config")
}

/// The intervals a window length cuts time into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    interval_us: u64,
}

impl Geometry {
    /// The intervals of a window of `window_seconds` (at least 1).
    pub fn new(window_seconds: u64) -> Geometry {
        Geometry {
            interval_us: (seconds_to_micros(window_seconds) / INTERVALS_PER_WINDOW).max(1),
        }
    }

    /// The length of one interval, microseconds.
    pub fn interval_us(self) -> u64 {
        self.interval_us
    }

    /// The interval holding `t`.
    pub fn interval_of(self, t: Time) -> u64 {
        t.micros() / self.interval_us
    }
}

/// A ring of per-interval buckets: slot `i % len` holds interval `i`.
#[derive(Clone, Debug)]
struct Ring<T> {
    slots: Vec<Slot<T>>,
}

#[derive(Clone, Debug)]
struct Slot<T> {
    /// The interval held; `None` before the first execution.
    interval: Option<u64>,
    bucket: T,
}

/// A bucket that can be emptied for a new interval, keeping its allocation.
trait Bucket {
    fn clear(&mut self);
}

impl<T: Bucket + Clone> Ring<T> {
    fn new(len: u64, empty: T) -> Ring<T> {
        let slot = Slot {
            interval: None,
            bucket: empty,
        };
        Ring {
            slots: vec![slot; len as usize],
        }
    }

    /// The bucket of `interval`, emptied first if its slot held an older interval; `None`
    /// when the slot holds a newer one (`interval` has left the ring).
    fn bucket(&mut self, interval: u64) -> Option<&mut T> {
        let len = self.slots.len() as u64;
        let slot = &mut self.slots[(interval % len) as usize];
        match slot.interval {
            Some(held) if held == interval => {}
            Some(held) if held > interval => return None,
            _ => {
                slot.bucket.clear();
                slot.interval = Some(interval);
            }
        }
        Some(&mut slot.bucket)
    }

    /// The buckets of the intervals `first ..= last` the ring holds.
    fn held(&self, first: u64, last: u64) -> impl Iterator<Item = &T> {
        self.slots
            .iter()
            .filter(move |s| s.interval.is_some_and(|i| first <= i && i <= last))
            .map(|s| &s.bucket)
    }
}

#[derive(Clone, Debug, Default)]
struct Counts {
    executions: u64,
    failures: u64,
}

impl Bucket for Counts {
    fn clear(&mut self) {
        *self = Counts::default();
    }
}

#[derive(Clone, Debug)]
struct Samples {
    durations: DdSketch,
    memory_samples: u64,
    /// The largest peak memory, MiB (meaningless while `memory_samples` is 0).
    memory_peak_mb: f64,
}

impl Bucket for Samples {
    fn clear(&mut self) {
        self.durations.clear();
        self.memory_samples = 0;
        self.memory_peak_mb = 0.0;
    }
}

/// What the rules judge a scope by, at one instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Executions finished in the window.
    pub executions: u64,
    /// Of those, the failed ones.
    pub failures: u64,
    /// Executions in the window with a duration (a finite one, 0 or more).
    pub duration_samples: u64,
    /// Their nearest-rank 95th percentile, seconds, within 1 %.
    pub p95_duration_seconds: Option<f64>,
    /// Executions in the window with a peak memory (a finite one, 0 or more).
    pub memory_samples: u64,
    /// The largest of them, MiB.
    pub memory_peak_mb: Option<f64>,
    /// Executions finished in the last N complete intervals (the rate drop's last window).
    pub executions_last_window: u64,
    /// ... and in the N intervals before them (its previous window).
    pub executions_previous_window: u64,
}

/// The windows of one scope.
#[derive(Clone, Debug)]
pub struct ScopeWindows {
    geometry: Geometry,
    /// Intervals k − 2N ..= k.
    counts: Ring<Counts>,
    /// Intervals k − N + 1 ..= k.
    samples: Ring<Samples>,
    /// The newest interval anything was counted in.
    newest: Option<u64>,
}

impl ScopeWindows {
    pub fn new(geometry: Geometry) -> ScopeWindows {
        let samples = Samples {
            durations: DdSketch::with_config(sketch_config()),
            memory_samples: 0,
            memory_peak_mb: 0.0,
        };
        ScopeWindows {
            geometry,
            counts: Ring::new(2 * INTERVALS_PER_WINDOW + 1, Counts::default()),
            samples: Ring::new(INTERVALS_PER_WINDOW, samples),
            newest: None,
        }
    }

    /// Counts the finished execution `f` at time `at` (its finish time).
    pub fn add(&mut self, f: &Finished, at: Time) {
        let interval = self.geometry.interval_of(at);
        if let Some(counts) = self.counts.bucket(interval) {
            counts.executions += 1;
            if !f.success {
                counts.failures += 1;
            }
        }
        if let Some(samples) = self.samples.bucket(interval) {
            // A NaN, negative or infinite duration is refused by the sketch: not a sample.
            samples.durations.add(f.duration_seconds);
            let memory = f.memory_peak_mb;
            if memory.is_finite() && memory >= 0.0 {
                samples.memory_peak_mb = if samples.memory_samples == 0 {
                    memory
                } else {
                    samples.memory_peak_mb.max(memory)
                };
                samples.memory_samples += 1;
            }
        }
        self.newest = Some(self.newest.map_or(interval, |n| n.max(interval)));
    }

    /// The figures at `now` (see the module documentation for the windows).
    pub fn figures(&self, now: Time) -> Figures {
        let k = self.geometry.interval_of(now);
        let n = INTERVALS_PER_WINDOW;
        let mut f = Figures::default();
        for c in self.counts.held((k + 1).saturating_sub(n), k) {
            f.executions += c.executions;
            f.failures += c.failures;
        }
        if let Some(last) = k.checked_sub(1) {
            f.executions_last_window = self
                .counts
                .held(k.saturating_sub(n), last)
                .map(|c| c.executions)
                .sum();
        }
        if let Some(last) = k.checked_sub(n + 1) {
            f.executions_previous_window = self
                .counts
                .held(k.saturating_sub(2 * n), last)
                .map(|c| c.executions)
                .sum();
        }
        let mut durations = DdSketch::with_config(sketch_config());
        for s in self.samples.held((k + 1).saturating_sub(n), k) {
            durations
                .merge(&s.durations)
                .expect("every interval's sketch has the one sketch config");
            if s.memory_samples > 0 {
                f.memory_samples += s.memory_samples;
                f.memory_peak_mb = Some(
                    f.memory_peak_mb
                        .map_or(s.memory_peak_mb, |m| m.max(s.memory_peak_mb)),
                );
            }
        }
        f.duration_samples = durations.count();
        f.p95_duration_seconds = durations.quantile(P95);
        f
    }

    /// Whether every execution counted has left every window at `now`: the scope's
    /// figures are all zero from now on until it counts a new one.
    pub fn is_idle(&self, now: Time) -> bool {
        let k = self.geometry.interval_of(now);
        self.newest
            .is_none_or(|newest| newest + 2 * INTERVALS_PER_WINDOW < k)
    }

    /// The bytes the windows occupy now, slots and the sketches' bucket counts.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.counts.slots.len() * std::mem::size_of::<Slot<Counts>>()
            + self.samples.slots.len() * std::mem::size_of::<Slot<Samples>>()
            + self
                .samples
                .slots
                .iter()
                .map(|s| s.bucket.durations.memory_bytes() - std::mem::size_of::<DdSketch>())
                .sum::<usize>()
    }

    /// The most [`memory_bytes`](Self::memory_bytes) can be, whatever was added.
    pub fn max_memory_bytes() -> usize {
        let n = INTERVALS_PER_WINDOW as usize;
        std::mem::size_of::<Self>()
            + (2 * n + 1) * std::mem::size_of::<Slot<Counts>>()
            + n * (std::mem::size_of::<Slot<Samples>>() + SKETCH_MAX_BUCKETS * 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-15T10:30:00Z, the first microsecond of a 15 s interval.
    const T0: u64 = 1_705_314_600;

    fn run(success: bool, duration: f64, memory: f64) -> Finished {
        Finished {
            script: "s".into(),
            specialist: None,
            success,
            category: None,
            duration_seconds: duration,
            memory_peak_mb: memory,
            cpu_time_seconds: 0.0,
            retries: 0,
            at: 0.0,
        }
    }

    fn at(seconds: f64) -> Time {
        Time::from_seconds(T0 as f64 + seconds)
    }

    #[test]
    fn the_window_holds_an_execution_until_the_interval_w_after_its_own() {
        let g = Geometry::new(300);
        assert_eq!(g.interval_us(), 15_000_000);
        assert_eq!(Time::from_seconds(T0 as f64).micros() % g.interval_us(), 0);
        let mut w = ScopeWindows::new(g);
        w.add(&run(false, 2.0, 10.0), at(20.0)); // interval [15 s, 30 s)
        for (now, expected) in [(20.0, 1), (299.0, 1), (314.999_999, 1), (315.0, 0)] {
            assert_eq!(w.figures(at(now)).executions, expected, "at {now}");
            assert_eq!(w.figures(at(now)).failures, expected, "at {now}");
            assert_eq!(w.figures(at(now)).duration_samples, expected, "at {now}");
            assert_eq!(w.figures(at(now)).memory_samples, expected, "at {now}");
        }
    }

    #[test]
    fn the_rate_windows_are_complete_intervals_of_the_same_length() {
        let mut w = ScopeWindows::new(Geometry::new(300));
        // One execution a second for 600 s: [0, 300) and [300, 600).
        for s in 0..600 {
            w.add(&run(true, 1.0, 1.0), at(s as f64));
        }
        // At 600 s the interval in progress is empty: the last window is [300, 600), the
        // previous [0, 300).
        let f = w.figures(at(600.0));
        assert_eq!(
            (f.executions_last_window, f.executions_previous_window),
            (300, 300)
        );
        // Midway through an interval, its partial count is left out of both.
        let f = w.figures(at(607.0));
        assert_eq!(
            (f.executions_last_window, f.executions_previous_window),
            (300, 300)
        );
        let f = w.figures(at(615.0));
        assert_eq!(
            (f.executions_last_window, f.executions_previous_window),
            (285, 300)
        );
        let f = w.figures(at(900.0));
        assert_eq!(
            (f.executions_last_window, f.executions_previous_window),
            (0, 300)
        );
        // The previous window's oldest interval is [585, 600): idle once it has left.
        let f = w.figures(at(1185.0));
        assert_eq!(
            (f.executions_last_window, f.executions_previous_window),
            (0, 15)
        );
        assert!(!w.is_idle(at(1199.0)));
        assert!(w.is_idle(at(1200.0)));
        assert_eq!(w.figures(at(1200.0)), Figures::default());
    }

    #[test]
    fn p95_and_peak_memory_are_over_the_window() {
        let mut w = ScopeWindows::new(Geometry::new(300));
        for i in 1..=100 {
            w.add(&run(true, i as f64, 100.0 + i as f64), at(i as f64));
        }
        let f = w.figures(at(100.0));
        assert_eq!(f.duration_samples, 100);
        let p95 = f.p95_duration_seconds.unwrap();
        assert!((p95 - 95.0).abs() <= 0.95, "{p95}");
        assert_eq!(f.memory_peak_mb, Some(200.0));
        // NaN and negative figures are not samples; the execution still counts.
        w.add(&run(true, f64::NAN, -1.0), at(101.0));
        let f = w.figures(at(101.0));
        assert_eq!(
            (f.executions, f.duration_samples, f.memory_samples),
            (101, 100, 100)
        );
    }

    #[test]
    fn late_executions_count_in_their_own_interval_while_a_ring_holds_it() {
        let mut w = ScopeWindows::new(Geometry::new(300));
        w.add(&run(true, 1.0, 1.0), at(400.0));
        // 350 s before: out of the window (still counted for the rate windows).
        w.add(&run(false, 1.0, 1.0), at(50.0));
        let f = w.figures(at(400.0));
        assert_eq!((f.executions, f.failures, f.duration_samples), (1, 0, 1));
        assert_eq!(f.executions_previous_window, 1);
        // Older than every window: counted in none.
        w.add(&run(false, 1.0, 1.0), at(-300.0));
        assert_eq!(w.figures(at(400.0)).executions_previous_window, 1);
    }

    #[test]
    fn memory_stays_bounded_whatever_the_rate_and_the_durations() {
        let bound = ScopeWindows::max_memory_bytes();
        assert!(bound < 90 * 1024, "{bound}");
        let mut w = ScopeWindows::new(Geometry::new(300));
        // 200 000 executions over 10 000 s, durations spread from 1 µs to 10^6 s in every
        // interval (the sketches hit their bucket cap).
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let duration = 10f64.powf((x % 12_000) as f64 / 1000.0 - 6.0);
            w.add(&run(i % 3 == 0, duration, duration), at(i as f64 / 20.0));
        }
        let used = w.memory_bytes();
        assert!(used <= bound, "{used} > {bound}");
        assert!(
            used > bound / 2,
            "the test should fill the sketches: {used}"
        );
        let f = w.figures(at(10_000.0));
        // The window at 10 000 s is [9705 s, 10 005 s): 295 s at 20 a second.
        assert_eq!(f.executions, 5_900);
    }
}
