//! What scripts are expected to do, and whether they do it: "the backup did not run last
//! night", "running for 40 minutes, usually 3", "failed five times in a row", "a backup
//! that succeeds in 40 ms did nothing". Pure logic: time comes in as an argument, as in the
//! alert book, so every boundary is testable.
//!
//! * [`spec`]: a script's `expect` block in the registry, checked with the rest of the
//!   entry, into [`Expectations`]: a cadence (`every` a duration, or a cron `schedule` in a
//!   `timezone`, with a `grace`), `max_duration`, `min_duration`, `failures_in_a_row`,
//!   `alert_after_last_retry`. [`duration`] reads and writes the durations, [`schedule`]
//!   the cron schedules (and says how the clocks changing are handled).
//! * [`Tracker`]: each watched script's conditions, from `started`, `finished` and `tick`
//!   (see below), each change reported as a [`Change`] that makes its alert.
//!
//! **Windows.** A success is due at a *due time*: with `every`, that long after the last
//! success; with `schedule`, at each slot (a success counts for every slot at or before
//! it). Past the due time the script is *late*; past the due time and its grace, it has
//! *missed* that run: the window is counted (once, however often it is looked at) and
//! the next one opens, which counts again when its own grace passes. A success clears
//! both and opens the window after it. A boundary is passed when time is strictly later:
//! a success exactly at the end of the grace is in time.
//!
//! **A fresh start.** Without history the first window counts from when watching began
//! (the host's start): with `every`, a success is first due that long after it; with
//! `schedule`, at its first slot after it. Until a run starts or ends, or that first
//! window passes, the script is `new` (healthchecks.io instead waits for the first ping;
//! a host knows when it began to watch, so a script that never runs after a restart is
//! still caught). History from the execution log can be fed in as `finished` events with
//! their own times.
//!
//! **Runs.** `max_duration` is per attempt, like `timeout_ms`, which it must stay below:
//! an attempt running beyond it is *overdue* until it ends. `failures_in_a_row` failures
//! (default 1, as healthchecks.io and Cronitor treat one failure) make it *failing* until a
//! success; with `alert_after_last_retry` (default true) a failed attempt that will be
//! retried is not one. A success shorter than `min_duration` makes it *too short* until a
//! success that is not; it still counts as a success for the window and the failures.
//!
//! A condition that began and cleared between two looks (no tick in between) is counted
//! but not reported. Silences, and running schedules, belong to the server.

pub mod change;
pub mod duration;
pub mod schedule;
pub mod spec;
pub mod state;

pub use change::{Change, Condition, State};
pub use spec::{Cadence, Expectations, Rule};
pub use state::{RunEnd, ScriptStatus, Tracker};

#[cfg(test)]
mod tests;
