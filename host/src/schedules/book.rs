//! The schedule book: every scheduled script's next slot, what of it runs or waits, its
//! last run and its missed slots by reason. Pure: time comes in as an argument; the
//! server's scheduler task asks it what is due, starts the runs, and tells it how they
//! went.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::slots::{self, Decision, MissReason};
use super::spec::{Overlap, RunSchedule};
use crate::expectations::duration;

/// Slots one look counts at most per script (a host down for a year, a schedule every
/// second); the rest are counted by the next looks.
pub const MAX_SLOTS_PER_LOOK: u64 = 10_000;

/// How a scheduled run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResult {
    /// It succeeded.
    Success,
    /// It failed (the script's, or refused before it ran).
    Failure,
}

impl RunResult {
    /// Both, in the order the API and `/metrics` list them.
    pub const ALL: [RunResult; 2] = [RunResult::Success, RunResult::Failure];

    /// Its name (`"success"`).
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Success => "success",
            RunResult::Failure => "failure",
        }
    }
}

/// A scheduled run: the slot it is for, when it started, how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    /// The slot it ran for.
    #[serde(with = "crate::model::timestamp")]
    pub slot: DateTime<Utc>,
    /// When it was started.
    #[serde(with = "crate::model::timestamp")]
    pub started_at: DateTime<Utc>,
    /// Its execution.
    pub execution_id: String,
    /// When it ended; `None` while it runs.
    #[serde(with = "crate::model::timestamp::option", default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended; `None` while it runs.
    #[serde(default)]
    pub result: Option<RunResult>,
}

/// What is kept of a script's schedule across restarts (`schedules.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The last slot decided (run, queued or missed), or when scheduling began if none
    /// was: the slots after it that come while the host is down are missed (`host_down`).
    #[serde(with = "crate::model::timestamp")]
    pub last_slot: DateTime<Utc>,
    /// The last run started, if any.
    #[serde(default)]
    pub last_run: Option<LastRun>,
}

/// The one-word state of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleState {
    /// Nothing of it runs.
    Idle,
    /// A scheduled run of it goes.
    Running,
    /// A slot waits for the running one to end (`overlap: queue`).
    Queued,
}

/// Slots missed since the server started, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Missed {
    /// The host was down (counted at start from the last slot saved) or not looking.
    pub host_down: u64,
    /// The previous run held the slot.
    pub overlap: u64,
    /// The server was full.
    pub busy: u64,
}

impl Missed {
    /// The count for `reason`.
    pub fn get(&self, reason: MissReason) -> u64 {
        match reason {
            MissReason::HostDown => self.host_down,
            MissReason::Overlap => self.overlap,
            MissReason::Busy => self.busy,
        }
    }

    fn add(&mut self, reason: MissReason, n: u64) {
        let c = match reason {
            MissReason::HostDown => &mut self.host_down,
            MissReason::Overlap => &mut self.overlap,
            MissReason::Busy => &mut self.busy,
        };
        *c = c.saturating_add(n);
    }
}

/// Runs started since the server started, by result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Runs {
    /// Those that succeeded.
    pub success: u64,
    /// Those that failed.
    pub failure: u64,
}

/// A schedule's standing, for the API, `schedule list` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleStatus {
    /// The script.
    pub script: String,
    /// Its cron pattern, as written.
    pub cron: String,
    /// The time zone it is read in.
    pub timezone: String,
    /// The largest delay after a slot.
    pub jitter: String,
    /// What a slot does while the previous run goes.
    pub overlap: Overlap,
    /// Idle, running or queued.
    pub state: ScheduleState,
    /// Scheduled runs of it going now.
    pub running: usize,
    /// The last run started (kept across restarts).
    pub last_run: Option<LastRun>,
    /// When the next run is due (its slot plus its jitter).
    #[serde(with = "crate::model::timestamp::option")]
    pub next_run: Option<DateTime<Utc>>,
    /// Slots missed since the server started, by reason.
    pub missed: Missed,
    /// Runs ended since the server started, by result.
    pub runs: Runs,
}

/// Slots missed while the host was down, found at start: to tell the operator and the
/// script watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downtime {
    /// The script.
    pub script: String,
    /// The last slot decided before the host went down.
    pub since: DateTime<Utc>,
    /// Slots missed since (at most [`MAX_SLOTS_PER_LOOK`]).
    pub missed: u64,
}

/// A run to start (the slot's run due, its overlap policy agreeing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The script.
    pub script: String,
    /// The slot it runs for.
    pub slot: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Entry {
    spec: RunSchedule,
    /// The next slot not yet decided.
    next_slot: Option<DateTime<Utc>>,
    /// The last slot decided.
    last_slot: Option<DateTime<Utc>>,
    /// When the book began scheduling it (what is saved before a slot was decided).
    since: DateTime<Utc>,
    /// Execution ids of the scheduled runs going.
    running: Vec<String>,
    /// A slot waiting for the running one to end.
    queued: Option<DateTime<Utc>>,
    last_run: Option<LastRun>,
    missed: Missed,
    runs: Runs,
}

impl Entry {
    fn new(spec: RunSchedule, now: DateTime<Utc>) -> Entry {
        let next_slot = slots::first_at_or_after(&spec.schedule, now);
        Entry {
            spec,
            next_slot,
            last_slot: None,
            since: now,
            running: Vec::new(),
            queued: None,
            last_run: None,
            missed: Missed::default(),
            runs: Runs::default(),
        }
    }

    fn fire_at(&self, script: &str) -> Option<DateTime<Utc>> {
        self.next_slot
            .map(|slot| slots::fire_at(script, &self.spec, slot))
    }

    fn state(&self) -> ScheduleState {
        if self.queued.is_some() {
            ScheduleState::Queued
        } else if !self.running.is_empty() {
            ScheduleState::Running
        } else {
            ScheduleState::Idle
        }
    }
}

/// Every scheduled script's standing (see the module doc).
#[derive(Debug, Default)]
pub struct ScheduleBook {
    entries: BTreeMap<String, Entry>,
    /// What was saved before the host started, taken by the first sync.
    saved: BTreeMap<String, Saved>,
}

impl ScheduleBook {
    /// An empty book.
    pub fn new() -> ScheduleBook {
        ScheduleBook::default()
    }

    /// A book that starts from what a previous server saved: the first
    /// [`sync`](ScheduleBook::sync) counts the slots each script missed since.
    pub fn restored(saved: BTreeMap<String, Saved>) -> ScheduleBook {
        ScheduleBook {
            entries: BTreeMap::new(),
            saved,
        }
    }

    /// After a registry (re)load: every script given is scheduled with its schedule, the
    /// others no more. A new script's slots start at `now`; one with a saved last slot
    /// has the slots between that and `now` counted missed (`host_down`) and returned. A
    /// changed schedule takes effect from its first slot at or after `now` (never one
    /// decided already); runs going are left to end.
    pub fn sync<'a>(
        &mut self,
        scripts: impl IntoIterator<Item = (&'a str, &'a RunSchedule)>,
        now: DateTime<Utc>,
    ) -> Vec<Downtime> {
        let saved = std::mem::take(&mut self.saved);
        let mut keep = std::collections::BTreeSet::new();
        let mut downtimes = Vec::new();
        for (script, spec) in scripts {
            keep.insert(script.to_string());
            match self.entries.get_mut(script) {
                Some(e) if e.spec == *spec => {}
                Some(e) => {
                    e.spec = spec.clone();
                    let from = slots::first_at_or_after(&e.spec.schedule, now);
                    e.next_slot = match (from, e.last_slot) {
                        (Some(f), Some(last)) if f <= last => e.spec.schedule.next_after(last),
                        (f, _) => f,
                    };
                }
                None => {
                    let mut e = Entry::new(spec.clone(), now);
                    if let Some(s) = saved.get(script) {
                        e.last_run = s.last_run.clone();
                        // A run that was going when the host went down ended with it.
                        if let Some(run) = e.last_run.as_mut().filter(|r| r.result.is_none()) {
                            run.result = Some(RunResult::Failure);
                        }
                        if s.last_slot < now {
                            let (missed, last) = slots::slots_between(
                                &spec.schedule,
                                s.last_slot,
                                now,
                                MAX_SLOTS_PER_LOOK,
                            );
                            e.last_slot = last.or(Some(s.last_slot));
                            if missed > 0 {
                                e.missed.add(MissReason::HostDown, missed);
                                downtimes.push(Downtime {
                                    script: script.to_string(),
                                    since: s.last_slot,
                                    missed,
                                });
                            }
                        }
                    }
                    self.entries.insert(script.to_string(), e);
                }
            }
        }
        self.entries.retain(|script, _| keep.contains(script));
        downtimes
    }

    /// When the next run is due, of every script.
    pub fn next_due_at(&self) -> Option<DateTime<Utc>> {
        self.entries
            .iter()
            .filter_map(|(script, e)| e.fire_at(script))
            .min()
    }

    /// Decides every slot whose run is due at `now` (its time plus its jitter at or
    /// before `now`): a slot passed while a later one is due too was missed (the host did
    /// not look: `host_down`); the latest is run, queued or missed by its overlap policy.
    /// The runs to start are returned: for each, [`started`](ScheduleBook::started) or,
    /// when the server refuses it, [`refused`](ScheduleBook::refused).
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<Due> {
        let mut out = Vec::new();
        for (script, e) in &mut self.entries {
            let mut looked = 0;
            while let Some(slot) = e.next_slot {
                if slots::fire_at(script, &e.spec, slot) > now || looked == MAX_SLOTS_PER_LOOK {
                    break;
                }
                looked += 1;
                let next = e.spec.schedule.next_after(slot);
                e.last_slot = Some(slot);
                e.next_slot = next;
                if next.is_some_and(|n| slots::fire_at(script, &e.spec, n) <= now) {
                    e.missed.add(MissReason::HostDown, 1);
                    continue;
                }
                match slots::decide(e.spec.overlap, e.running.len(), e.queued.is_some()) {
                    Decision::Run => out.push(Due {
                        script: script.clone(),
                        slot,
                    }),
                    Decision::Queue => e.queued = Some(slot),
                    Decision::Miss(reason) => e.missed.add(reason, 1),
                }
                break;
            }
        }
        out
    }

    /// The run of `script`'s `slot` started as `execution_id` at `now`.
    pub fn started(
        &mut self,
        script: &str,
        slot: DateTime<Utc>,
        execution_id: &str,
        now: DateTime<Utc>,
    ) {
        if let Some(e) = self.entries.get_mut(script) {
            e.running.push(execution_id.to_string());
            e.last_run = Some(LastRun {
                slot,
                started_at: now,
                execution_id: execution_id.to_string(),
                finished_at: None,
                result: None,
            });
        }
    }

    /// The server did not admit the run of `script`'s slot: it was full (`busy`), or
    /// going down (`host_down`).
    pub fn refused(&mut self, script: &str, reason: MissReason) {
        if let Some(e) = self.entries.get_mut(script) {
            e.missed.add(reason, 1);
        }
    }

    /// A scheduled run of `script` ended at `now`. Returns the slot that waited for it,
    /// whose run is due now (to start, or refuse, as one from [`due`](ScheduleBook::due)).
    pub fn finished(
        &mut self,
        script: &str,
        execution_id: &str,
        result: RunResult,
        now: DateTime<Utc>,
    ) -> Option<Due> {
        let e = self.entries.get_mut(script)?;
        let at = e.running.iter().position(|id| id == execution_id)?;
        e.running.swap_remove(at);
        match result {
            RunResult::Success => e.runs.success += 1,
            RunResult::Failure => e.runs.failure += 1,
        }
        if let Some(run) = e
            .last_run
            .as_mut()
            .filter(|r| r.execution_id == execution_id)
        {
            run.finished_at = Some(now);
            run.result = Some(result);
        }
        if e.running.is_empty() {
            if let Some(slot) = e.queued.take() {
                return Some(Due {
                    script: script.to_string(),
                    slot,
                });
            }
        }
        None
    }

    /// Every schedule's standing, by script.
    pub fn statuses(&self) -> Vec<ScheduleStatus> {
        self.entries
            .iter()
            .map(|(script, e)| ScheduleStatus {
                script: script.clone(),
                cron: e.spec.schedule.pattern().to_string(),
                timezone: e.spec.schedule.timezone().name().to_string(),
                jitter: duration::format(e.spec.jitter),
                overlap: e.spec.overlap,
                state: e.state(),
                running: e.running.len(),
                last_run: e.last_run.clone(),
                next_run: e.fire_at(script),
                missed: e.missed,
                runs: e.runs,
            })
            .collect()
    }

    /// What to save for a restart: each script's last slot decided and last run.
    pub fn saved(&self) -> BTreeMap<String, Saved> {
        self.entries
            .iter()
            .map(|(script, e)| {
                (
                    script.clone(),
                    Saved {
                        last_slot: e.last_slot.unwrap_or(e.since).max(e.since),
                        last_run: e.last_run.clone(),
                    },
                )
            })
            .collect()
    }

    /// The schedule of `script`, if it is scheduled.
    pub fn spec(&self, script: &str) -> Option<&RunSchedule> {
        self.entries.get(script).map(|e| &e.spec)
    }
}
