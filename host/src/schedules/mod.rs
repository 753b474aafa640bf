//! Scripts that `serve` runs on its own: a script's `run_schedule` block ([`spec`]), the
//! pure rules of slots, jitter and overlap ([`slots`]), every schedule's standing
//! ([`ScheduleBook`]), and what is kept across restarts ([`store`], `schedules.json` in the
//! log directory). Time comes in as an argument; the server's scheduler task
//! (`serve::scheduler`) owns the clock, starts the runs and saves the book.
//!
//! **Slots.** A slot is an instant of the cron pattern in its time zone (the clocks
//! changing are handled as Vixie cron does: see `expectations::schedule`). A slot's run is
//! due at the slot plus its jitter: a delay in `[0, jitter)`, and below the gap to the
//! next slot, fixed by a hash of the script and the slot (the same on every host and
//! after a restart). A slot at exactly the current instant is due.
//!
//! **Missed slots** are counted, never dropped silently, each once, by reason:
//! `host_down` (the slots between the last slot decided, saved, and the server's start;
//! or a slot passed while a later one is due too: the host was asleep), `overlap` (the
//! previous run held the slot: `skip`, or `queue` with one waiting), `busy` (the server
//! was full). A missed slot is not run late: the next slot runs as usual.

pub mod book;
pub mod slots;
pub mod spec;
pub mod store;

pub use book::{Downtime, Due, LastRun, RunResult, ScheduleBook, ScheduleState, ScheduleStatus};
pub use slots::{Decision, MissReason};
pub use spec::{Overlap, RunSchedule};

#[cfg(test)]
mod tests;
