//! Percentiles with bounded memory and a stated relative-error guarantee, shared by the
//! host and its plugins: [`DdSketch`], a mergeable quantile sketch (DDSketch: Masson, Rim
//! and Lee, *DDSketch: A Fast and Fully-Mergeable Quantile Sketch with Relative-Error
//! Guarantees*, VLDB 2019), and [`Windowed`], sketches over the last 1, 5 and 60 minutes
//! and since start.
//!
//! No I/O, no clock (time is passed in as milliseconds since the epoch), one dependency
//! (serde): the crate builds for the host and for `wasm32-wasip2` alike.
//!
//! # The guarantee
//!
//! A sketch with relative accuracy α (default 0.01) answers `quantile(q)` with a value x̂
//! such that
//!
//! > |x̂ − x| ≤ α·x, where x is the exact nearest-rank q-quantile of the values added:
//! > the ⌈q·n⌉-th smallest of the n values (q = 0 and q = 1 give the exact min and max).
//!
//! The error is relative to the quantile's *value*, not to its rank: the rank is exact,
//! because the sketch counts exactly how many values fall in each bucket; only the value
//! within the bucket is approximated. So with α = 1 % a p99 of 250 ms is reported between
//! 247.5 and 252.5 ms, whatever the distribution: skewed, heavy-tailed or bimodal, over ten
//! values or ten million. (Floating point adds at most about 1e-12 to α.) `count`,
//! `min` and `max` are exact; `sum` is a floating-point sum.
//!
//! It holds for every quantile whose value is above two bounds:
//!
//! * **The zero bucket.** Values at or below the config's `min_value` (default 1e-9 of the
//!   unit used) are counted together and reported as 0, or as the exact min when that is
//!   positive: there the error is at most `min_value`, absolute.
//! * **The bucket cap.** A sketch keeps at most `max_buckets` buckets (default 2048: at most
//!   16 KiB of counts), over a contiguous range of keys. Values whose largest-to-smallest
//!   ratio is at most γ^(max_buckets − 1) (γ = (1 + α)/(1 − α); about 6·10^17 with the
//!   defaults, e.g. 1 ns to 19 years) never reach the cap. Beyond it the lowest buckets are
//!   folded into the lowest one kept ("collapsing lowest", as in the paper and Datadog's
//!   stores): the guarantee still holds for every quantile whose value lies above
//!   [`DdSketch::lowest_exact_value`], i.e. the high quantiles that latency reports are
//!   about, and lower quantiles are over-estimated (reported at the lowest kept bucket).
//!   [`DdSketch::is_collapsed`] tells whether that happened. The ratio shrinks as α does
//!   (γ^(cap − 1) ≈ e^(2α·(cap − 1))): at α = 0.001, 2048 buckets cover a ratio of only
//!   about 60, so a finer α wants a larger cap ([`Config::with_max_buckets`]).
//!
//! # How it works
//!
//! A value x > `min_value` goes to bucket k = ⌈log_γ x⌉, which holds (γ^(k−1), γ^k]; the
//! bucket's value (1 + α)·γ^(k−1) is within α of each of them. A quantile walks the
//! counts to the bucket holding the ⌈q·n⌉-th value. Merging adds counts bucket by bucket:
//! the merge of two sketches has exactly the buckets, counts, min and max of the sketch of
//! both sets of values, in any order (the state of the bounded store depends only on the
//! multiset of keys; see `store`).
//!
//! # Why not an existing crate
//!
//! `sketches-ddsketch` (0.4, a port of Datadog's Go implementation) builds for
//! `wasm32-wasip2` and is maintained, but did not fit: its quantile takes the
//! ⌊q·(n − 1)⌋-th value, not the nearest rank (its p95 of 1..=10 is 8.94, the nearest-rank
//! p95 is 10), with no option; its serde form is its internal state, read back unchecked,
//! so a sketch a plugin hands over can make the host panic in a later merge (an
//! out-of-range slice index); and its public API cannot rebuild a sketch from a checked
//! form (min, max and sum are private). The sketch here is written from the paper.
//!
//! # JSON
//!
//! [`DdSketch`] serialises with serde (see `wire` for the form and its checks):
//! `{"relative_accuracy":0.01,"max_buckets":2048,"min_value":1e-9,"count":…,"sum":…,
//! "min":…,"max":…,"zero_count":…,"collapsed":false,"buckets":[{"key":…,"counts":[…]}]}`.
//! A sketch read back is checked whole and refused with a message when inconsistent, so
//! the host can merge what a plugin sends. A float may come back one unit in the last place
//! off with serde_json's default (best-effort) float parsing; its `float_roundtrip` feature
//! makes the round trip exact.
//!
//! # Prometheus
//!
//! Percentiles in the Prometheus exposition come from a histogram with configurable
//! buckets (aggregatable across hosts), not from this sketch; the sketch serves reports,
//! the stats API and dashboards.

mod sketch;
mod store;
mod window;
mod wire;

pub use sketch::{Config, ConfigError, DdSketch, MergeError};
pub use window::{Interval, Window, Windowed, LONG_INTERVAL_MS, SHORT_INTERVAL_MS};

#[cfg(test)]
pub(crate) mod tests;
