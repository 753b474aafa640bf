//! [`Windowed`]: sketches over the last 1, 5 and 60 minutes and since start, in bounded
//! memory.
//!
//! Time is milliseconds since the Unix epoch, passed in by the caller (never read from a
//! clock). It is cut into *intervals* aligned on multiples of their length: 10 s intervals
//! for the 1- and 5-minute windows, 1 min intervals for the 60-minute window. Each interval
//! has a sketch of the values added with a time inside it, kept in a ring (30 of 10 s, 60 of
//! 1 min: 90 sketches and one since start); a window's answer is the merge of its
//! intervals' sketches.
//!
//! # Window edges
//!
//! The window of length W (a multiple of its interval length I) at time `now` is the
//! W / I intervals ending with the one that contains `now`: a value added at time `t`
//! belongs to it exactly when
//!
//! ```text
//! floor(t / I) > floor(now / I) − W / I      and      floor(t / I) <= floor(now / I)
//! ```
//!
//! so it enters the window with its own interval and leaves it at the instant
//! `floor(t / I)·I + W`, the start of the interval W after its own. A window therefore
//! never holds a value older than W, and always holds every value younger than W − I: the
//! 1-minute window covers the last 50 to 60 s, the 5-minute window the last 4 min 50 s to
//! 5 min, the 60-minute window the last 59 to 60 min. When `now` is an interval's first
//! millisecond, that interval is the window's newest. For example a value at 12 345 ms is
//! in the 1-minute window up to 69 999 ms and gone at 70 000 ms; one at 20 000 ms stays
//! until 79 999 ms, a full minute; one at 19 999 ms leaves at 70 000 ms, 50.001 s later.
//!
//! An interval is one sketch, so it counts whole: a query answers for the intervals up to
//! and including the one holding `now`, with every value of that interval (also those
//! timed after `now`, which a query at the current time never meets), and none of a later
//! one. Values may come out of order: each goes to its own interval while the ring still
//! holds it; one older than every interval the ring holds counts since start only (and in
//! the 60-minute window while the minute ring still holds its minute).

use crate::sketch::{Bucket, Config, DdSketch};

/// Length of the intervals of the 1- and 5-minute windows.
pub const SHORT_INTERVAL_MS: u64 = 10_000;
/// Length of the intervals of the 60-minute window.
pub const LONG_INTERVAL_MS: u64 = 60_000;

/// A time window over which a [`Windowed`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    /// The last minute: six 10 s intervals.
    OneMinute,
    /// The last five minutes: thirty 10 s intervals.
    FiveMinutes,
    /// The last hour: sixty 1 min intervals.
    SixtyMinutes,
    /// Every value ever added.
    SinceStart,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 4] = [
        Window::OneMinute,
        Window::FiveMinutes,
        Window::SixtyMinutes,
        Window::SinceStart,
    ];

    /// The window's length, `None` for [`SinceStart`](Window::SinceStart).
    pub fn length_ms(self) -> Option<u64> {
        self.shape().map(|(interval, n)| interval * n)
    }

    /// A short name for reports and labels: `1m`, `5m`, `60m`, `start`.
    pub fn label(self) -> &'static str {
        match self {
            Window::OneMinute => "1m",
            Window::FiveMinutes => "5m",
            Window::SixtyMinutes => "60m",
            Window::SinceStart => "start",
        }
    }

    /// The interval length and how many intervals make the window.
    fn shape(self) -> Option<(u64, u64)> {
        match self {
            Window::OneMinute => Some((SHORT_INTERVAL_MS, 6)),
            Window::FiveMinutes => Some((SHORT_INTERVAL_MS, 30)),
            Window::SixtyMinutes => Some((LONG_INTERVAL_MS, 60)),
            Window::SinceStart => None,
        }
    }
}

/// One interval of a window and its sketch.
#[derive(Clone, Copy, Debug)]
pub struct Interval<'a> {
    /// The first millisecond of the interval (for since start: the earliest value's time).
    pub start_ms: u64,
    /// The millisecond after the interval (for since start: after the latest value's time).
    pub end_ms: u64,
    /// The values added with a time in `start_ms .. end_ms`.
    pub sketch: &'a DdSketch,
}

/// A ring of per-interval sketches.
#[derive(Clone, Debug)]
struct Ring {
    interval_ms: u64,
    /// Slot `i % len` holds interval `i` (the interval starting at `i * interval_ms`).
    slots: Vec<Slot>,
}

#[derive(Clone, Debug)]
struct Slot {
    /// The interval held; `None` before the first value.
    interval: Option<u64>,
    sketch: DdSketch,
}

impl Ring {
    fn new(config: Config, interval_ms: u64, len: usize) -> Self {
        let slot = Slot {
            interval: None,
            sketch: DdSketch::with_config(config),
        };
        Ring {
            interval_ms,
            slots: vec![slot; len],
        }
    }

    fn add(&mut self, value: f64, bucket: Bucket, now_ms: u64) {
        let interval = now_ms / self.interval_ms;
        let len = self.slots.len() as u64;
        let slot = &mut self.slots[(interval % len) as usize];
        match slot.interval {
            Some(held) if held == interval => {}
            // The slot holds a newer interval: this one has left the ring.
            Some(held) if held > interval => return,
            _ => {
                slot.sketch.clear();
                slot.interval = Some(interval);
            }
        }
        slot.sketch.add_to_bucket(value, bucket);
    }

    /// The non-empty intervals among the `n` ending with the one holding `now_ms`, oldest
    /// first.
    fn intervals(&self, n: u64, now_ms: u64) -> Vec<Interval<'_>> {
        let last = now_ms / self.interval_ms;
        let first = (last + 1).saturating_sub(n);
        let mut held: Vec<Interval<'_>> = self
            .slots
            .iter()
            .filter_map(|slot| {
                let interval = slot.interval.filter(|i| (first..=last).contains(i))?;
                (!slot.sketch.is_empty()).then_some(Interval {
                    start_ms: interval * self.interval_ms,
                    end_ms: (interval + 1) * self.interval_ms,
                    sketch: &slot.sketch,
                })
            })
            .collect();
        held.sort_by_key(|interval| interval.start_ms);
        held
    }

    fn memory_bytes(&self) -> usize {
        self.slots.iter().map(|s| s.sketch.memory_bytes()).sum()
    }

    fn bucket_count(&self) -> usize {
        self.slots.iter().map(|s| s.sketch.bucket_count()).sum()
    }
}

/// Sketches of the values of the last 1, 5 and 60 minutes and since start. Memory is
/// bounded: 91 sketches of at most the config's `max_buckets` buckets each, whatever the
/// rate or the duration.
#[derive(Clone, Debug)]
pub struct Windowed {
    config: Config,
    short: Ring,
    long: Ring,
    total: DdSketch,
    /// Earliest and latest time of a value added.
    span_ms: Option<(u64, u64)>,
}

impl Default for Windowed {
    fn default() -> Self {
        Windowed::new(Config::default())
    }
}

impl Windowed {
    /// Empty windows whose sketches have `config`.
    pub fn new(config: Config) -> Self {
        Windowed {
            config,
            // The five-minute window's thirty 10 s intervals also serve the one-minute one.
            short: Ring::new(config, SHORT_INTERVAL_MS, 30),
            long: Ring::new(config, LONG_INTERVAL_MS, 60),
            total: DdSketch::with_config(config),
            span_ms: None,
        }
    }

    /// The config of every sketch.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Adds `value` at time `now_ms`; `false`, with nothing changed, for a value a sketch
    /// refuses (NaN, negative, infinite).
    pub fn add(&mut self, value: f64, now_ms: u64) -> bool {
        // Every sketch here has one config: the bucket is computed once for all three.
        let Some(bucket) = self.total.bucket_of(value) else {
            return false;
        };
        self.total.add_to_bucket(value, bucket);
        self.short.add(value, bucket, now_ms);
        self.long.add(value, bucket, now_ms);
        self.span_ms = Some(match self.span_ms {
            Some((first, last)) => (first.min(now_ms), last.max(now_ms)),
            None => (now_ms, now_ms),
        });
        true
    }

    /// Adds the values of `sketch`, timed from `first_ms` to `last_ms`, since start only:
    /// for values older than any window that will be asked about (a replay of a log file
    /// known by its summary, finished more than an hour before the report's time). Refused,
    /// with nothing changed, when the configs differ.
    pub fn add_past(
        &mut self,
        sketch: &DdSketch,
        first_ms: u64,
        last_ms: u64,
    ) -> Result<(), crate::MergeError> {
        self.total.merge(sketch)?;
        if !sketch.is_empty() {
            self.span_ms = Some(match self.span_ms {
                Some((first, last)) => (first.min(first_ms), last.max(last_ms)),
                None => (first_ms, last_ms),
            });
        }
        Ok(())
    }

    /// The sketch of `window` at time `now_ms`: the merge of its intervals (see the module
    /// documentation for the edges).
    pub fn window(&self, window: Window, now_ms: u64) -> DdSketch {
        if window == Window::SinceStart {
            return self.total.clone();
        }
        let mut merged = DdSketch::with_config(self.config);
        for interval in self.intervals(window, now_ms) {
            merged.merge_same_config(interval.sketch);
        }
        merged
    }

    /// The sketch of every value ever added.
    pub fn since_start(&self) -> &DdSketch {
        &self.total
    }

    /// The non-empty intervals of `window` at time `now_ms`, oldest first: for a time
    /// series (a dashboard's p95 per 10 s, say). For [`Window::SinceStart`], one interval
    /// from the earliest to the latest value's time.
    pub fn intervals(&self, window: Window, now_ms: u64) -> Vec<Interval<'_>> {
        match (window.shape(), self.span_ms) {
            (Some((SHORT_INTERVAL_MS, n)), _) => self.short.intervals(n, now_ms),
            (Some((_, n)), _) => self.long.intervals(n, now_ms),
            (None, Some((first, last))) => vec![Interval {
                start_ms: first,
                end_ms: last + 1,
                sketch: &self.total,
            }],
            (None, None) => Vec::new(),
        }
    }

    /// Buckets held over all sketches (at most 91 × `max_buckets`).
    pub fn bucket_count(&self) -> usize {
        self.short.bucket_count() + self.long.bucket_count() + self.total.bucket_count()
    }

    /// The bytes the windows occupy, sketches and their buckets.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.short.memory_bytes()
            + self.long.memory_bytes()
            + self.total.memory_bytes()
    }
}
