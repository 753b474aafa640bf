//! The default alert rules: four rules over a sliding window of finished executions,
//! judged for every execution together and for each specialist on its own, each alert
//! living as a Prometheus alerting rule's does.
//!
//! | type                  | fires when (strictly above: at the threshold it does not)          | defaults (warning / critical) |
//! |-----------------------|---------------------------------------------------------------------|-------------------------------|
//! | `error_rate_high`     | failed executions in the window, percent                            | 10 / 25 %                     |
//! | `p95_duration_high`   | the window's 95th-percentile wall-clock duration, seconds           | 30 / 120 s                    |
//! | `memory_peak_high`    | the largest peak memory of an execution in the window, MB           | 1024 / 4096 MB                |
//! | `execution_rate_drop` | fewer executions in the last window than in the one before, percent | 50 / 90 %                     |
//!
//! Each rule judges a window only over `min_samples` executions (10; for the rate drop,
//! in the previous window): one failure out of one run pages nobody. Messages are the
//! seed's ("Error rate is 15.3% (threshold: 10.0%)"), showing the threshold crossed.
//!
//! # Modules
//!
//! The logic builds without the component glue (`default-features = false`) and never
//! reads a clock: time is passed in, so the tests run it natively on their own clock.
//!
//! * [`config`]: the `[config]` table and its checks.
//! * [`thresholds`]: the eight thresholds, their ranges and `set-threshold`.
//! * [`window`]: the windows, rings of per-interval buckets (memory bound, p95 accuracy).
//! * [`rules`]: what each rule judges and what its alert says.
//! * [`lifecycle`]: pending, firing, kept firing, resolved.
//! * [`engine`]: [`AlertRules`](engine::AlertRules), all of it for the global scope and
//!   each specialist; [`alert`]: the alert returned. `plugin` (feature `plugin`, on by
//!   default) is the glue to the SDK's alert-rule world.
//!
//! # Time
//!
//! Only `finished` events count (the SDK's `finished(event)` figures), each at its finish
//! time (the event's timestamp). Rules are evaluated on every `handle-batch` and every
//! `tick`, always at the host's clock: `host::now()` in `handle-batch`, the tick's `now`
//! in `tick`, so both kinds of evaluation see one clock and a rate drop to nothing is
//! seen on ticks while no event arrives. Evaluation time never goes back (a clock stepped
//! back evaluates at the latest instant seen), and an execution stamped after it counts
//! at it.
//!
//! # Windows and memory
//!
//! A window of `window_seconds` (300) is 20 intervals (15 s): the error rate, p95 and
//! peak memory are over the 20 intervals ending with the current one (the last 285 to
//! 300 s), the rate drop compares the 20 complete intervals before the current one with
//! the 20 before them. Memory is fixed whatever the rate: at most about 85 KiB per scope
//! (the global one and up to `max_specialists`, 100: about 8.4 MiB in all), see
//! [`window`]. A specialist beyond `max_specialists` counts only in the global rules
//! (reported once in the host's log); one whose executions have all left every window and
//! whose alerts are all inactive is forgotten, freeing its place.
//!
//! # p95 accuracy
//!
//! The p95 is the nearest-rank 95th percentile, estimated with `metaclaude-sketch`'s
//! DDSketch at a relative accuracy of 1 %: the value reported is within 1 % of the exact
//! p95 of the window's durations (exact when all are equal), so a p95 within 1 % of a
//! threshold may be judged either way.
//!
//! # Life cycle
//!
//! As Prometheus' alerting rules ([`lifecycle`]): a condition that holds is pending until
//! it has held for `for_seconds`, then firing; a firing alert is returned at every
//! evaluation with `starts_at` the instant it started firing (an escalation from warning
//! to critical, or back, is the same alert: same fingerprint, same `starts_at`); once its
//! condition has stayed clear for `keep_firing_for_seconds` it is returned once
//! `resolved`, with `ends_at`. Defaults: `for_seconds = 0`, as Prometheus: the window and
//! `min_samples` already demand a condition over ten executions and up to five minutes,
//! and a `for` would only delay the page; `keep_firing_for_seconds = 60` (Prometheus: 0),
//! because rules are evaluated at every batch: a value hovering at a threshold would
//! otherwise fire and resolve with each execution that enters or leaves the window.
//!
//! # Thresholds
//!
//! Set in `[config]` under their names and checked in `init` (percentages above 0 and at
//! most 100, other values above 0, a `_critical` at least its warning one); changed while
//! the host runs by `set-threshold` (the same checks, answering
//! "error_rate_percent: 10 -> 15"), from the next evaluation on; listed by `thresholds`.
//!
//! The state lives in the instance: a restarted instance starts with empty windows (no
//! rate drop is seen until a previous window has filled again) and does not know the
//! alerts the previous one had firing.

pub mod alert;
pub mod config;
pub mod engine;
pub mod lifecycle;
pub mod rules;
pub mod thresholds;
pub mod time;
pub mod window;

#[cfg(feature = "plugin")]
mod plugin;
