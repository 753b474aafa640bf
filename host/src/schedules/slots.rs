//! The pure rules of running on a schedule: each slot's jitter, when its run is due, and
//! what a slot does given what of the script is running or waiting.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::spec::{Overlap, RunSchedule};
use crate::expectations::duration::after;
use crate::expectations::schedule::Schedule;

/// Why a slot was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissReason {
    /// The host was not running (or not looking: asleep, suspended) when the slot's run
    /// was due.
    HostDown,
    /// The previous run still held the slot (`overlap`: `skip`, or `queue` with one
    /// waiting already).
    Overlap,
    /// The server was full: `--concurrency` plus `--queue` executions admitted already.
    Busy,
}

impl MissReason {
    /// Every reason, in the order the API and `/metrics` list them.
    pub const ALL: [MissReason; 3] = [MissReason::HostDown, MissReason::Overlap, MissReason::Busy];

    /// Its name in the API and the metrics (`"host_down"`).
    pub fn as_str(self) -> &'static str {
        match self {
            MissReason::HostDown => "host_down",
            MissReason::Overlap => "overlap",
            MissReason::Busy => "busy",
        }
    }
}

/// What a slot does, its run due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start a run now (if the server admits it; else it is missed, `busy`).
    Run,
    /// Wait for the running one to end, then run.
    Queue,
    /// Not run, for this reason.
    Miss(MissReason),
}

/// What a slot does under `overlap`, while `running` scheduled runs of the script go and
/// one waits (`queued`) or none.
pub fn decide(overlap: Overlap, running: usize, queued: bool) -> Decision {
    match overlap {
        _ if running == 0 && !queued => Decision::Run,
        Overlap::Allow => Decision::Run,
        Overlap::Skip => Decision::Miss(MissReason::Overlap),
        Overlap::Queue if queued => Decision::Miss(MissReason::Overlap),
        Overlap::Queue => Decision::Queue,
    }
}

/// FNV-1a, 64 bits: a stable hash (the same in every build and release), enough to
/// spread runs.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The delay of `script`'s run at `slot`: in `[0, jitter)`, and below the gap to the next
/// slot (`next`), so that runs keep the slots' order; the same for the same script and
/// slot, on every host and after a restart.
pub fn jitter_offset(
    script: &str,
    slot: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
    jitter: Duration,
) -> Duration {
    let gap = next
        .and_then(|n| (n - slot).to_std().ok())
        .unwrap_or(jitter);
    let bound = jitter.min(gap).as_millis() as u64;
    if bound == 0 {
        return Duration::ZERO;
    }
    let h = fnv1a(&[
        script.as_bytes(),
        &[0],
        &slot.timestamp_millis().to_le_bytes(),
    ]);
    Duration::from_millis(h % bound)
}

/// When the run of `script`'s `slot` is due: the slot plus its jitter.
pub fn fire_at(script: &str, spec: &RunSchedule, slot: DateTime<Utc>) -> DateTime<Utc> {
    if spec.jitter.is_zero() {
        return slot;
    }
    let next = spec.schedule.next_after(slot);
    after(slot, jitter_offset(script, slot, next, spec.jitter))
}

/// The first slot at or after `t`.
pub fn first_at_or_after(schedule: &Schedule, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let just_before = t
        .checked_sub_signed(chrono::Duration::nanoseconds(1))
        .unwrap_or(t);
    schedule.next_after(just_before)
}

/// The slots strictly after `after` and strictly before `before`, counted up to `cap`:
/// their number, and the last one counted.
pub fn slots_between(
    schedule: &Schedule,
    after: DateTime<Utc>,
    before: DateTime<Utc>,
    cap: u64,
) -> (u64, Option<DateTime<Utc>>) {
    let mut n = 0;
    let mut last = None;
    let mut t = after;
    while n < cap {
        match schedule.next_after(t) {
            Some(slot) if slot < before => {
                n += 1;
                last = Some(slot);
                t = slot;
            }
            _ => break,
        }
    }
    (n, last)
}
