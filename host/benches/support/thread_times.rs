//! Where a host's time goes, thread by thread: each thread's time on a CPU and its time
//! runnable but waiting for one (the kernel's `/proc/self/task/TID/schedstat`), so that a
//! figure paced by one thread says which thread, and whether that thread was short of
//! CPU or of work.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The threads of this process at one moment: name, time on a CPU and time waiting for
/// one, by thread id.
pub struct Snapshot {
    at: Instant,
    threads: HashMap<u32, (String, Duration, Duration)>,
}

impl Snapshot {
    pub fn now() -> Snapshot {
        let at = Instant::now();
        let mut threads = HashMap::new();
        for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
            let task = task.expect("a task").path();
            let Some(tid) = task.file_name().and_then(|n| n.to_str()?.parse().ok()) else {
                continue;
            };
            // A thread may end between the listing and the reads: it is left out.
            let (Ok(name), Ok(stat)) = (
                std::fs::read_to_string(task.join("comm")),
                std::fs::read_to_string(task.join("schedstat")),
            ) else {
                continue;
            };
            let mut fields = stat
                .split_whitespace()
                .map(|f| f.parse::<u64>().unwrap_or(0));
            let on_cpu = Duration::from_nanos(fields.next().unwrap_or(0));
            let waiting = Duration::from_nanos(fields.next().unwrap_or(0));
            threads.insert(tid, (name.trim().to_string(), on_cpu, waiting));
        }
        Snapshot { at, threads }
    }
}

/// One thread's share of some spans of wall time.
#[derive(Clone, Default)]
pub struct Share {
    pub name: String,
    pub on_cpu: Duration,
    pub waiting: Duration,
}

/// What each thread did over the spans added with [`Accounts::add`]: time on a CPU and
/// time waiting for one, by thread name (a name several threads share is summed), and the
/// spans' wall time.
#[derive(Default)]
pub struct Accounts {
    pub wall: Duration,
    pub threads: HashMap<String, Share>,
}

impl Accounts {
    /// Adds the span from `before` to `after`; the thread `emitter` is named `emitting
    /// thread`.
    pub fn add(&mut self, before: &Snapshot, after: &Snapshot, emitter: u32) {
        self.wall += after.at - before.at;
        for (tid, (name, on_cpu, waiting)) in &after.threads {
            let (was_on, was_waiting) = before
                .threads
                .get(tid)
                .map_or((Duration::ZERO, Duration::ZERO), |(_, on, w)| (*on, *w));
            let name = if *tid == emitter {
                "emitting thread".to_string()
            } else {
                name.clone()
            };
            let share = self.threads.entry(name.clone()).or_insert_with(|| Share {
                name,
                ..Share::default()
            });
            share.on_cpu += on_cpu.saturating_sub(was_on);
            share.waiting += waiting.saturating_sub(was_waiting);
        }
    }

    /// The threads that were on a CPU at least `min` of the wall time, busiest first.
    pub fn busiest(&self, min: f64) -> Vec<Share> {
        let mut busy: Vec<Share> = self
            .threads
            .values()
            .filter(|s| self.fraction(s.on_cpu) >= min)
            .cloned()
            .collect();
        busy.sort_by_key(|s| std::cmp::Reverse(s.on_cpu));
        busy
    }

    /// `d` as a share of the wall time.
    pub fn fraction(&self, d: Duration) -> f64 {
        d.as_secs_f64() / self.wall.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// This thread's id.
pub fn current_tid() -> u32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() as u32 }
}
