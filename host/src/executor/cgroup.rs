//! Per-execution cgroups: the only way to account and end a whole process tree.
//!
//! `wait4`'s rusage counts one process (memory) or only the descendants that were waited
//! for (CPU), and a descendant that calls `setsid` leaves the process group, so neither
//! accounting nor killing by group covers everything. A cgroup does: every descendant
//! stays in it whatever it does. We use what the kernel offers, detected once:
//!
//! * cgroup v2 (the unified hierarchy, even without controllers): `cgroup.procs` to list
//!   the tree, `cgroup.kill` to end it, `cpu.stat` for its CPU time; and, when the memory
//!   controller is enabled there, `memory.peak`, `memory.max` and `memory.events`.
//! * cgroup v1's memory controller (hybrid systems): `memory.max_usage_in_bytes`,
//!   `memory.limit_in_bytes` and the `oom_kill` counter.
//!
//! Without write access to either, executions run without cgroups and the result says so
//! through its measurement sources. Creating a cgroup costs ~0.2 ms, so a host makes a
//! folder of its own in each hierarchy (`metaclaude-<pid>-t<start>-<nanos>`: its pid, its
//! start time in the kernel's clock ticks, and the nanoseconds of the moment it made the
//! folder), and a small pool of
//! execution cgroups in it is prepared off the hot path (as many as were ever in use at
//! once, up to eight) and removal happens in the background. A host for one execution (a
//! one-shot `run`) makes neither folder nor pool: its execution cgroup is made straight
//! in the host's own cgroup (`metaclaude-<pid>-t<start>-<nanos>-<n>`), and removed as the
//! execution ends (at exit, patiently, should it not go then). Folders of hosts that are
//! gone (killed with -9, or the machine lost power) are swept by the next host to start:
//! those whose pid is not running, or runs a process that started at another time than
//! the name says (the pid was given again).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where the host may create execution cgroups.
#[derive(Debug, Clone, Default)]
struct Roots {
    /// The host's own folder in the unified hierarchy.
    unified: Option<PathBuf>,
    /// Whether `unified` children get the memory controller.
    unified_memory: bool,
    /// The host's own folder in the v1 memory hierarchy.
    memory_v1: Option<PathBuf>,
    /// A host for one execution: `unified` and `memory_v1` are the host process's own
    /// cgroups (not folders it made, so never removed), and execution cgroups are made
    /// straight in them, named this prefix and a number.
    single: Option<String>,
}

/// Memory accounting of one execution cgroup.
#[derive(Debug, Clone)]
enum MemoryFiles {
    V2(PathBuf),
    V1(PathBuf),
}

/// The cgroups of one execution. Reused across executions (only when empty): counters
/// that cannot be reset are read as a baseline and subtracted.
#[derive(Debug)]
pub struct ExecCgroup {
    unified: Option<PathBuf>,
    memory: Option<MemoryFiles>,
    /// The unified cgroup's folder and its `cgroup.procs`, opened once: a child is created
    /// in the folder where the kernel can, else it writes its pid into the file.
    unified_files: Option<(OwnedFd, OwnedFd)>,
    /// `tasks` of the v1 memory hierarchy, opened once.
    memory_tasks: Option<OwnedFd>,
    /// Files read after every execution, kept open: a `pread` at offset 0 re-reads a
    /// cgroup file for well under a microsecond, an open-read-close costs ten.
    counters: Counters,
    cpu_baseline: (u64, u64, u64),
    oom_baseline: u64,
    /// Whether `cgroup.kill` was ever written: such a cgroup is removed, never reused. A
    /// child created in it afterwards (`CLONE_INTO_CGROUP`) was seen killed at birth on
    /// Linux 6.18 (the fork compares kill sequence numbers of two different cgroups).
    killed: AtomicBool,
}

#[derive(Debug, Default)]
struct Counters {
    /// v2 `cgroup.events` (`populated 0|1`).
    events: Option<File>,
    /// v2 `cpu.stat`.
    cpu_stat: Option<File>,
    /// v2 `memory.peak` or v1 `memory.max_usage_in_bytes`.
    memory_peak: Option<File>,
    /// v2 `memory.events` or v1 `memory.oom_control`.
    oom: Option<File>,
}

fn pread_string(file: &Option<File>) -> Option<String> {
    let file = file.as_ref()?;
    let mut buf = [0u8; 1024];
    let n = file.read_at(&mut buf, 0).ok()?;
    String::from_utf8(buf[..n].to_vec()).ok()
}

/// Counters as the kernel shows them (some only ever grow).
#[derive(Debug, Clone, Copy, Default)]
struct RawUsage {
    peak_memory_bytes: Option<u64>,
    cpu_total_usec: Option<u64>,
    cpu_user_usec: Option<u64>,
    cpu_system_usec: Option<u64>,
    oom_kills: u64,
}

/// What an execution cgroup measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct CgroupUsage {
    /// The tree's peak memory, bytes (`memory.peak` or `memory.max_usage_in_bytes`); `None`
    /// without a memory controller.
    pub peak_memory_bytes: Option<u64>,
    /// Precise CPU time (the scheduler's runtime); the user/system split below is
    /// tick-sampled and only gives the proportion.
    pub cpu_total_usec: Option<u64>,
    /// User CPU time, µs, since the cgroup was reset; `None` without cgroup v2's
    /// `cpu.stat`.
    pub cpu_user_usec: Option<u64>,
    /// System CPU time, µs, since the cgroup was reset; `None` as above.
    pub cpu_system_usec: Option<u64>,
    /// Whether the kernel OOM-killed a process of the cgroup since it was reset (asked only
    /// when the caller says a SIGKILL was seen).
    pub oom_killed: bool,
}

impl ExecCgroup {
    /// The unified cgroup's open folder and `cgroup.procs`: where the child is created, or
    /// else what it writes its pid into.
    pub fn unified_fds(&self) -> Option<(RawFd, RawFd)> {
        let (dir, procs) = self.unified_files.as_ref()?;
        Some((dir.as_raw_fd(), procs.as_raw_fd()))
    }

    /// The v1 memory hierarchy's open `tasks`, which the child joins through (a process
    /// can only be created in a cgroup of the unified hierarchy; see `spawn`'s
    /// `UnifiedCgroup` for why `tasks` and not `cgroup.procs`).
    pub fn memory_tasks_fd(&self) -> Option<RawFd> {
        self.memory_tasks.as_ref().map(|f| f.as_raw_fd())
    }

    fn open_files(&mut self) -> io::Result<()> {
        let read = |p: PathBuf| File::open(&p).map(Some);
        if let Some(u) = &self.unified {
            let dir = OwnedFd::from(File::open(u)?);
            self.unified_files = Some((dir, open_write(&u.join("cgroup.procs"))?));
            self.counters.events = read(u.join("cgroup.events"))?;
            self.counters.cpu_stat = read(u.join("cpu.stat"))?;
        }
        match &self.memory {
            Some(MemoryFiles::V1(m)) => {
                self.memory_tasks = Some(open_write(&m.join("tasks"))?);
                self.counters.memory_peak = read(m.join("memory.max_usage_in_bytes"))?;
                self.counters.oom = read(m.join("memory.oom_control"))?;
            }
            Some(MemoryFiles::V2(m)) => {
                self.counters.memory_peak = read(m.join("memory.peak"))?;
                self.counters.oom = read(m.join("memory.events"))?;
            }
            None => {}
        }
        Ok(())
    }

    /// Whether any process is still in the cgroup (`None` when the kernel cannot say
    /// cheaply). An exited, unreaped main process no longer counts.
    pub fn is_populated(&self) -> Option<bool> {
        let events = pread_string(&self.counters.events)?;
        keyed(&events, "populated").map(|n| n > 0)
    }

    /// Makes an empty cgroup ready for the next execution: no limit, fresh peak, and
    /// baselines for the counters that only grow.
    fn reset(&mut self) -> io::Result<()> {
        match &self.memory {
            Some(MemoryFiles::V2(p)) => {
                fs::write(p.join("memory.max"), "max")?;
                // Writing to memory.peak resets it (Linux 6.12+); older kernels refuse, and
                // then the cgroup is not reused.
                fs::write(p.join("memory.peak"), "0")?;
            }
            Some(MemoryFiles::V1(p)) => {
                fs::write(p.join("memory.limit_in_bytes"), "-1")?;
                fs::write(p.join("memory.max_usage_in_bytes"), "0")?;
            }
            None => {}
        }
        let raw = self.raw_usage(true);
        self.cpu_baseline = (
            raw.cpu_user_usec.unwrap_or(0),
            raw.cpu_system_usec.unwrap_or(0),
            raw.cpu_total_usec.unwrap_or(0),
        );
        self.oom_baseline = raw.oom_kills;
        Ok(())
    }

    /// Whether a memory controller (v2 or v1) measures and limits this cgroup.
    pub fn has_memory(&self) -> bool {
        self.memory.is_some()
    }

    /// Whether it has a cgroup v2 folder (process list, `cgroup.kill`, CPU figures).
    pub fn has_unified(&self) -> bool {
        self.unified.is_some()
    }

    /// Limits the tree's memory; the kernel OOM-kills inside the cgroup when it is hit.
    pub fn set_memory_limit(&self, bytes: u64) -> io::Result<()> {
        match &self.memory {
            Some(MemoryFiles::V2(p)) => fs::write(p.join("memory.max"), bytes.to_string()),
            Some(MemoryFiles::V1(p)) => {
                fs::write(p.join("memory.limit_in_bytes"), bytes.to_string())
            }
            None => Err(io::Error::other("no memory cgroup")),
        }
    }

    /// Pids currently in the execution's cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let path = match (&self.unified, &self.memory) {
            (Some(u), _) => u.join("cgroup.procs"),
            (None, Some(MemoryFiles::V1(m) | MemoryFiles::V2(m))) => m.join("cgroup.procs"),
            (None, None) => return Vec::new(),
        };
        fs::read_to_string(path)
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// SIGKILLs every process in the cgroups, including those that left the process group.
    pub fn kill_all(&self) {
        self.killed.store(true, Ordering::Relaxed);
        if let Some(u) = &self.unified {
            if fs::write(u.join("cgroup.kill"), "1").is_ok() {
                return;
            }
        }
        for pid in self.pids() {
            // SAFETY: signalling a pid listed in our own execution cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// What this execution used (counters relative to the baselines taken at reset).
    /// The OOM counter is read only when asked: an OOM kill always ends in SIGKILL, so
    /// other endings skip the extra file read on the hot path.
    pub fn usage(&self, check_oom: bool) -> CgroupUsage {
        let raw = self.raw_usage(check_oom);
        CgroupUsage {
            peak_memory_bytes: raw.peak_memory_bytes,
            cpu_total_usec: raw
                .cpu_total_usec
                .map(|t| t.saturating_sub(self.cpu_baseline.2)),
            cpu_user_usec: raw
                .cpu_user_usec
                .map(|u| u.saturating_sub(self.cpu_baseline.0)),
            cpu_system_usec: raw
                .cpu_system_usec
                .map(|s| s.saturating_sub(self.cpu_baseline.1)),
            oom_killed: raw.oom_kills > self.oom_baseline,
        }
    }

    fn raw_usage(&self, check_oom: bool) -> RawUsage {
        let mut usage = RawUsage::default();
        if let Some(stat) = pread_string(&self.counters.cpu_stat) {
            usage.cpu_total_usec = keyed(&stat, "usage_usec");
            usage.cpu_user_usec = keyed(&stat, "user_usec");
            usage.cpu_system_usec = keyed(&stat, "system_usec");
        }
        usage.peak_memory_bytes =
            pread_string(&self.counters.memory_peak).and_then(|s| s.trim().parse().ok());
        if check_oom {
            usage.oom_kills = pread_string(&self.counters.oom)
                .and_then(|s| keyed(&s, "oom_kill"))
                .unwrap_or(0);
        }
        usage
    }

    fn remove(&self) -> bool {
        self.try_remove().is_ok()
    }

    /// The cgroup's folders: the unified one, then the memory one when it is apart.
    fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.unified
            .iter()
            .chain(self.memory.iter().map(|m| match m {
                MemoryFiles::V1(p) | MemoryFiles::V2(p) => p,
            }))
    }

    /// Removes the cgroup's folders; the first that would not go is named in the error.
    fn try_remove(&self) -> io::Result<()> {
        let mut first_error = None;
        for dir in self.dirs() {
            if dir.exists() {
                if let Err(e) = fs::remove_dir(dir) {
                    first_error.get_or_insert_with(|| {
                        io::Error::new(e.kind(), format!("{}: {e}", dir.display()))
                    });
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Kills what is left in the cgroup and removes it, trying again for up to
    /// `deadline`: a process just killed keeps its cgroup busy until it has exited, and
    /// CI once saw a quick `run` leave its cgroup on cgroup v1 (a leftover that `rmdir`
    /// removed a moment later; about 1 in 150 such runs under load).
    fn remove_patiently(&self, deadline: Instant) -> io::Result<()> {
        let mut pause = Duration::from_micros(200);
        loop {
            // An emptied cgroup (the usual end of a one-shot run) needs no `cgroup.kill`.
            if self.is_populated() != Some(false) {
                self.kill_all();
            }
            match self.try_remove() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
            }
        }
    }
}

fn open_write(path: &Path) -> io::Result<OwnedFd> {
    Ok(OwnedFd::from(
        fs::OpenOptions::new().write(true).open(path)?,
    ))
}

fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Creates, pools and removes execution cgroups.
pub struct CgroupManager {
    shared: Arc<Shared>,
    /// Joined on drop: the pool worker may be making a cgroup at that moment, and a
    /// process that exits before it finishes would leave that cgroup behind.
    worker: Option<JoinHandle<()>>,
}

/// What the manager and its pool worker share.
struct Shared {
    roots: Roots,
    next: AtomicU64,
    state: Mutex<PoolState>,
    wake: Condvar,
}

#[derive(Default)]
struct PoolState {
    ready: Vec<ExecCgroup>,
    to_remove: Vec<ExecCgroup>,
    /// Handed out and not yet released.
    in_use: usize,
    /// The most ever in use at once: the pool keeps that many at hand (at least one, at
    /// most [`POOL_MAX`]), so a one-shot `run` makes one cgroup, not a server's worth.
    peak: usize,
    shutdown: bool,
}

impl PoolState {
    /// How many more the worker should make now.
    fn shortfall(&self) -> usize {
        let want = self.peak.clamp(1, POOL_MAX);
        want.saturating_sub(self.in_use + self.ready.len() + self.to_remove.len())
    }
}

/// The most cgroups kept ready ahead of demand.
const POOL_MAX: usize = 8;
/// How long an exiting host tries to remove the cgroups it made before it gives up and
/// says so (the next host sweeps what is left).
const EXIT_PATIENCE: Duration = Duration::from_secs(2);

impl CgroupManager {
    /// Detects what this machine allows; `None` when no cgroup can be created.
    /// `one_execution`: a host for one execution at a time (see the module's
    /// documentation): no folder of its own, no pool and no thread.
    pub fn detect(one_execution: bool) -> Option<Arc<CgroupManager>> {
        let roots = detect_roots(one_execution);
        if roots.unified.is_none() && roots.memory_v1.is_none() {
            tracing::debug!("no writable cgroup hierarchy: measuring by rusage and sampling");
            return None;
        }
        tracing::debug!(?roots, "execution cgroups available");
        let shared = Arc::new(Shared {
            roots,
            next: AtomicU64::new(0),
            state: Mutex::new(PoolState::default()),
            wake: Condvar::new(),
        });
        if shared.roots.single.is_some() {
            return Some(Arc::new(CgroupManager {
                shared,
                worker: None,
            }));
        }
        let for_worker = shared.clone();
        let worker = std::thread::Builder::new()
            .name("metaclaude-cgroups".into())
            .spawn(move || pool_worker(&for_worker));
        let worker = match worker {
            Ok(handle) => handle,
            Err(e) => {
                tracing::warn!(
                    "cannot start the cgroup pool's thread, so no execution cgroups: {e}"
                );
                shared.remove_roots();
                return None;
            }
        };
        Some(Arc::new(CgroupManager {
            shared,
            worker: Some(worker),
        }))
    }

    /// The hierarchies in use, for the host's debug log (`cgroup v2 at ... (with memory)`).
    pub fn describe(&self) -> String {
        let roots = &self.shared.roots;
        let mut parts = Vec::new();
        if let Some(u) = &roots.unified {
            parts.push(format!(
                "cgroup v2 at {}{}",
                u.display(),
                if roots.unified_memory {
                    " (with memory)"
                } else {
                    ""
                }
            ));
        }
        if let Some(m) = &roots.memory_v1 {
            parts.push(format!("cgroup v1 memory at {}", m.display()));
        }
        parts.join(", ")
    }

    /// A fresh, empty execution cgroup (from the pool when one is ready).
    pub fn acquire(&self) -> io::Result<ExecCgroup> {
        let pooled = {
            let mut s = self.shared.state.lock().unwrap();
            s.in_use += 1;
            s.peak = s.peak.max(s.in_use);
            s.ready.pop()
        };
        self.shared.wake.notify_one();
        match pooled {
            Some(cg) => Ok(cg),
            None => self.shared.create().inspect_err(|_| {
                self.shared.state.lock().unwrap().in_use -= 1;
            }),
        }
    }

    /// Hands a finished execution's cgroup back; the pool worker resets and reuses it. A
    /// one-execution host, which has no worker, removes it at once: the kernel finishes
    /// the removal on a thread of its own while the run goes on, instead of after the
    /// host's last step (0.2 to 0.3 ms of a one-shot run); one that will not go yet is
    /// kept for the patient removal at exit.
    pub fn release(&self, cg: ExecCgroup) {
        let removed = self.worker.is_none() && cg.try_remove().is_ok();
        {
            let mut s = self.shared.state.lock().unwrap();
            s.in_use = s.in_use.saturating_sub(1);
            if removed {
                return;
            }
            s.to_remove.push(cg);
        }
        self.shared.wake.notify_one();
    }

    /// Cgroups made so far (fresh ones; a reused one is not counted again).
    #[cfg(test)]
    fn made(&self) -> u64 {
        self.shared.next.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn create(&self) -> io::Result<ExecCgroup> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let name = match &self.roots.single {
            Some(prefix) => format!("{prefix}-{n}"),
            None => format!("exec-{n}"),
        };
        let mut cg = ExecCgroup {
            unified: None,
            memory: None,
            unified_files: None,
            memory_tasks: None,
            counters: Counters::default(),
            cpu_baseline: (0, 0, 0),
            oom_baseline: 0,
            killed: AtomicBool::new(false),
        };
        if let Some(root) = &self.roots.unified {
            let dir = root.join(&name);
            fs::create_dir(&dir)?;
            if self.roots.unified_memory {
                cg.memory = Some(MemoryFiles::V2(dir.clone()));
            }
            cg.unified = Some(dir);
        }
        if cg.memory.is_none() {
            if let Some(root) = &self.roots.memory_v1 {
                let dir = root.join(&name);
                if let Err(e) = fs::create_dir(&dir) {
                    cg.remove();
                    return Err(e);
                }
                cg.memory = Some(MemoryFiles::V1(dir));
            }
        }
        // A cgroup just made is what `reset` makes of a used one: no memory limit, no peak,
        // every counter at 0 (the baselines above). Saying so again cost a one-shot run
        // two more opens and writes, and three reads, in the cgroup file system.
        if let Err(e) = cg.open_files() {
            cg.remove();
            return Err(e);
        }
        Ok(cg)
    }

    fn remove_roots(&self) {
        // A one-execution host's roots are its own process's cgroups, not its folders.
        if self.roots.single.is_some() {
            return;
        }
        for root in self.roots.unified.iter().chain(self.roots.memory_v1.iter()) {
            let _ = fs::remove_dir(root);
        }
    }
}

impl Drop for CgroupManager {
    fn drop(&mut self) {
        self.shared.state.lock().unwrap().shutdown = true;
        self.shared.wake.notify_all();
        // The worker finishes what it is making and puts it in the pool, then returns.
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        let mut state = self.shared.state.lock().unwrap();
        let mut leftovers = std::mem::take(&mut state.ready);
        leftovers.append(&mut state.to_remove);
        drop(state);
        // The host is exiting: nothing may be left behind, so each removal gets a moment
        // to succeed (bounded: a process that cannot be killed must not hang the exit).
        let deadline = Instant::now() + EXIT_PATIENCE;
        for cg in leftovers {
            if let Err(e) = cg.remove_patiently(deadline) {
                tracing::warn!(
                    "cannot remove an execution cgroup at exit ({e}); `rmdir` it by hand, \
                     or the next host to start sweeps it"
                );
            }
        }
        self.shared.remove_roots();
    }
}

fn pool_worker(shared: &Shared) {
    loop {
        let (removals, need) = {
            let mut s = shared.state.lock().unwrap();
            while !s.shutdown && s.to_remove.is_empty() && s.shortfall() == 0 {
                s = shared.wake.wait(s).unwrap();
            }
            if s.shutdown {
                return;
            }
            let need = s.shortfall();
            (std::mem::take(&mut s.to_remove), need)
        };
        let mut retry = Vec::new();
        let mut recycled = Vec::new();
        for mut cg in removals {
            // A killed process may take a moment to leave; try again next round.
            if !cg.pids().is_empty() {
                cg.kill_all();
                retry.push(cg);
            } else if !cg.killed.load(Ordering::Relaxed) && cg.reset().is_ok() {
                recycled.push(cg);
            } else if !cg.remove() {
                retry.push(cg);
            }
        }
        let mut fresh = Vec::new();
        for _ in 0..need {
            if shared.state.lock().unwrap().shutdown {
                break;
            }
            match shared.create() {
                Ok(cg) => fresh.push(cg),
                Err(e) => {
                    tracing::warn!("cannot prepare an execution cgroup: {e}");
                    break;
                }
            }
        }
        let mut s = shared.state.lock().unwrap();
        s.ready.extend(recycled);
        s.ready.extend(fresh);
        let wait = !retry.is_empty();
        s.to_remove.extend(retry);
        if s.shutdown {
            return;
        }
        drop(s);
        if wait {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Finds the host's own cgroups and makes a `metaclaude-<pid>-t<start>-<nanos>` folder
/// under each; with `single`, makes none: the host's own cgroups are the roots, where it
/// may write.
fn detect_roots(single: bool) -> Roots {
    let mut roots = Roots::default();
    let Ok(membership) = fs::read_to_string("/proc/self/cgroup") else {
        return roots;
    };
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return roots;
    };
    // The pid alone can repeat (a host killed with -9 leaves its folder behind, and its
    // pid may be given to another process), so the name says when this process started,
    // and the nanoseconds tell apart two executors of one process; folders of hosts that
    // are gone are swept first.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let pid = std::process::id();
    let folder = match start_ticks("self") {
        Some(start) => format!("metaclaude-{pid}-t{start}-{nanos:09}"),
        None => format!("metaclaude-{pid}-{nanos:09}"),
    };
    // The host's own cgroup (for a one-execution host) or its folder in it.
    let root = |own: PathBuf| -> Option<PathBuf> {
        if !single {
            let dir = own.join(&folder);
            return make_dir(&dir).then_some(dir);
        }
        sweep_stale(&own.join(&folder));
        writable(&own).then_some(own)
    };
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if id == "0" && controllers.is_empty() {
            if let Some(mount) = mount_point(&mountinfo, "cgroup2", None) {
                if let Some(dir) = root(mount.join(path)) {
                    roots.unified_memory = if single {
                        // Children have memory files when their parent hands them the
                        // controller; a host that runs one execution changes nothing.
                        subtree_has_memory(&dir)
                    } else {
                        enable_memory_controller(&dir)
                    };
                    roots.unified = Some(dir);
                }
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            if let Some(mount) = mount_point(&mountinfo, "cgroup", Some("memory")) {
                roots.memory_v1 = root(mount.join(path));
            }
        }
    }
    if roots.unified_memory {
        if let Some(dir) = roots.memory_v1.take() {
            if !single {
                let _ = fs::remove_dir(dir);
            }
        }
    }
    if single && (roots.unified.is_some() || roots.memory_v1.is_some()) {
        roots.single = Some(folder);
    }
    roots
}

/// Whether this process may make folders in `dir`.
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `access` only reads the NUL-terminated path it is given.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

/// Whether `dir`'s children get the memory controller (`cgroup.subtree_control`).
fn subtree_has_memory(dir: &Path) -> bool {
    fs::read_to_string(dir.join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == "memory")
}

/// When the process `pid` (`self`, or a number) started, in clock ticks after boot
/// (`/proc/<pid>/stat`, field 22): with the pid, what tells a process from a later one
/// given the same pid. `None` when it cannot be read (no such process).
fn start_ticks(pid: &str) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses
    // itself: the fields after it start past the last `)`, with the state (field 3).
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the folder `name` (`metaclaude-<pid>-...`) belongs to a host that is gone: its
/// pid runs no process, or (for a name with the start time, `-t<start>-`) a process that
/// started at another time. A name without the start time (made by an older host) is
/// kept while its pid runs, as is one whose process cannot be looked at.
fn owner_gone(name: &str) -> Option<bool> {
    let mut parts = name.strip_prefix("metaclaude-")?.split('-');
    let pid = parts.next()?.parse::<i32>().ok()?;
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !alive {
        return Some(true);
    }
    let named = parts
        .next()
        .and_then(|p| p.strip_prefix('t'))
        .and_then(|t| t.parse::<u64>().ok());
    Some(match (named, start_ticks(&pid.to_string())) {
        (Some(named), Some(running)) => named != running,
        _ => false,
    })
}

/// Removes `metaclaude-<pid>-*` folders beside `dir` whose host process no longer exists
/// ([`owner_gone`]; their execution cgroups are empty once every process in them has
/// exited).
fn sweep_stale(dir: &Path) {
    let Some(parent) = dir.parent() else {
        return;
    };
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // A live host (this process included: it may run several executors) owns its
        // folders; only those of hosts that are gone are swept.
        if entry.path() == dir || owner_gone(&name) != Some(true) {
            continue;
        }
        if let Ok(children) = fs::read_dir(entry.path()) {
            for child in children.flatten() {
                if child.path().is_dir() {
                    let _ = fs::remove_dir(child.path());
                }
            }
        }
        let _ = fs::remove_dir(entry.path());
    }
}

fn make_dir(dir: &Path) -> bool {
    sweep_stale(dir);
    match fs::create_dir(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => true,
        Err(_) => false,
    }
}

fn enable_memory_controller(dir: &Path) -> bool {
    let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    if !available.split_whitespace().any(|c| c == "memory") {
        return false;
    }
    fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.subtree_control"))
        .and_then(|mut f| f.write_all(b"+memory"))
        .is_ok()
}

/// The mount point of a cgroup filesystem from `/proc/self/mountinfo`.
fn mount_point(mountinfo: &str, fstype: &str, option: Option<&str>) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut right = right.split_whitespace();
        if right.next()? != fstype {
            return None;
        }
        let super_options = right.nth(1).unwrap_or("");
        if let Some(opt) = option {
            if !super_options.split(',').any(|o| o == opt) {
                return None;
            }
        }
        // Bind mounts of a sub-folder have a root other than "/": skip them.
        let mut fields = left.split_whitespace();
        let root = fields.nth(3)?;
        let mount = fields.next()?;
        (root == "/").then(|| PathBuf::from(mount))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sweep removes the folders of hosts that are gone, the ones whose pid was given
    /// to another process since included, and keeps those of hosts that run. (Plain
    /// folders stand for the cgroups: the sweep only lists and removes folders.)
    #[test]
    fn folders_of_hosts_that_are_gone_are_swept_even_when_their_pid_came_back() {
        let tmp = tempfile::tempdir().unwrap();
        // A process that is not this one, standing for the later owner of a pid.
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = other.id();
        let started = start_ticks(&pid.to_string()).expect("its start time");
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        dead.wait().unwrap();
        let me = std::process::id();
        let mine = start_ticks("self").unwrap();
        let folders = [
            // The host running now, the sweeping one: kept.
            (format!("metaclaude-{me}-t{mine}-000000001"), true),
            // Another folder of a live host (another executor of it): kept.
            (format!("metaclaude-{pid}-t{started}-000000002"), true),
            // Its pid runs a process started at another time: swept.
            (
                format!("metaclaude-{pid}-t{}-000000003", started + 1),
                false,
            ),
            (
                format!("metaclaude-{pid}-t{}-000000004-0", started - 1),
                false,
            ),
            // No process has the pid: swept.
            (
                format!("metaclaude-{}-t{started}-000000005", dead.id()),
                false,
            ),
            (format!("metaclaude-{}-000000006", dead.id()), false),
            // Made by an older host, without the start time, its pid running: kept.
            (format!("metaclaude-{pid}-000000007"), true),
            // Not a host's folder at all: kept.
            ("something-else".to_string(), true),
        ];
        for (name, _) in &folders {
            fs::create_dir_all(tmp.path().join(name).join("execution-0")).unwrap();
        }
        sweep_stale(&tmp.path().join(&folders[0].0));
        other.kill().unwrap();
        other.wait().unwrap();
        for (name, kept) in &folders {
            assert_eq!(tmp.path().join(name).exists(), *kept, "{name}");
        }
    }

    /// A manager. The tests expect this machine to let the host make cgroups (CI runs them
    /// as root) and fail when it does not, unless `METACLAUDE_TEST_NO_CGROUPS=1` says it
    /// cannot: then there is nothing to test, and `None` (the README's testing notes).
    fn manager() -> Option<Arc<CgroupManager>> {
        manager_for(false)
    }

    /// [`manager`] of a host for one execution (`true`) or of a server.
    fn manager_for(one_execution: bool) -> Option<Arc<CgroupManager>> {
        let m = CgroupManager::detect(one_execution);
        let gated = std::env::var_os("METACLAUDE_TEST_NO_CGROUPS").is_some_and(|v| v == "1");
        match (&m, gated) {
            (Some(_), true) => panic!(
                "METACLAUDE_TEST_NO_CGROUPS=1, but this machine lets the host make cgroups: \
                 unset it to run the cgroup tests"
            ),
            (None, false) => panic!(
                "no writable cgroup hierarchy: the host cannot make execution cgroups here \
                 (it needs root, or a delegated cgroup v2 subtree). On a machine that \
                 cannot, set METACLAUDE_TEST_NO_CGROUPS=1 to leave these tests out"
            ),
            (None, true) => eprintln!("METACLAUDE_TEST_NO_CGROUPS=1: nothing to test"),
            (Some(_), false) => {}
        }
        m
    }

    /// The folders a manager made for itself, gone once it is dropped.
    fn roots_of(m: &CgroupManager) -> Vec<PathBuf> {
        let r = &m.shared.roots;
        r.unified
            .iter()
            .chain(r.memory_v1.iter())
            .cloned()
            .collect()
    }

    /// The child is created in its unified cgroup (`clone3`), not migrated there: its pid
    /// file here is `/dev/null`, so writing into it would leave the child outside.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_child_is_created_in_its_unified_cgroup_not_moved_there() {
        use crate::executor::spawn::{self, cstring, SpawnRequest, UnifiedCgroup};
        use std::io::Read;
        let Some(m) = manager() else {
            return;
        };
        let cg = m.acquire().unwrap();
        let (dir, _procs) = cg.unified_fds().expect("a unified cgroup");
        let null = fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let child = spawn::spawn(SpawnRequest {
            program: cstring("/bin/cat").unwrap(),
            argv: vec![
                cstring("cat").unwrap(),
                cstring("/proc/self/cgroup").unwrap(),
            ],
            envp: vec![],
            cwd: cstring("/").unwrap(),
            stdin_pipe: false,
            cpu_limit_seconds: None,
            address_space_limit_bytes: None,
            unified_cgroup: Some(UnifiedCgroup {
                dir,
                procs: null.as_raw_fd(),
            }),
            cgroup_join_files: cg.memory_tasks_fd().into_iter().collect(),
        })
        .unwrap();
        let mut out = String::new();
        File::from(child.stdout).read_to_string(&mut out).unwrap();
        while spawn::try_reap(child.pid).unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let unified = cg.unified.clone().unwrap();
        let tail: PathBuf = unified
            .iter()
            .rev()
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let line = out
            .lines()
            .find(|l| l.starts_with("0::"))
            .unwrap_or_default();
        assert!(
            line.ends_with(&format!("/{}", tail.display())),
            "the child ran in {line:?}, not in {}",
            unified.display()
        );
        m.release(cg);
    }

    /// A cgroup whose `cgroup.kill` was written (a timeout ended its tree) is not reused:
    /// on this kernel a child created in it afterwards (`CLONE_INTO_CGROUP`) is killed at
    /// birth (the kill's sequence number is compared with the parent's cgroup's).
    #[test]
    fn a_killed_cgroup_is_not_handed_out_again() {
        let Some(m) = manager() else {
            return;
        };
        let cg = m.acquire().unwrap();
        cg.kill_all();
        let killed = cg.unified.clone();
        m.release(cg);
        for _ in 0..20 {
            let cg = m.acquire().unwrap();
            assert!(
                killed.is_none() || cg.unified != killed,
                "a killed cgroup was handed out again"
            );
            m.release(cg);
        }
    }

    #[test]
    fn a_one_shot_host_makes_one_cgroup_not_a_pool() {
        let Some(m) = manager() else {
            return;
        };
        for _ in 0..3 {
            let cg = m.acquire().unwrap();
            m.release(cg);
            // The worker resets it for the next one (bounded wait on what it does).
            for _ in 0..500 {
                if m.shared.state.lock().unwrap().ready.len() == 1 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        // One made ahead by the worker, or at once by `acquire` if it came first (and the
        // worker's then kept): never a server's pool of eight.
        assert!(m.made() <= 2, "made {} cgroups for one at a time", m.made());
        let roots = roots_of(&m);
        drop(m);
        for root in roots {
            assert!(!root.exists(), "{} is left", root.display());
        }
    }

    /// A host for one execution makes its execution cgroups straight in its own cgroups:
    /// no folder, no pool, no thread; each attempt gets a fresh one, removed as it is
    /// handed back, and nothing of the host's own is removed.
    #[test]
    fn a_one_execution_host_makes_its_cgroups_in_its_own_and_leaves_nothing() {
        let Some(m) = manager_for(true) else {
            return;
        };
        assert!(
            m.worker.is_none(),
            "a one-execution host started a pool thread"
        );
        let own = roots_of(&m);
        assert!(!own.is_empty());
        let prefix = format!("metaclaude-{}-", std::process::id());
        let first = m.acquire().unwrap();
        let made: Vec<PathBuf> = first.dirs().cloned().collect();
        for dir in &made {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with(&prefix),
                "{} is not named for the host",
                dir.display()
            );
            assert!(
                own.iter().any(|o| dir.parent() == Some(o.as_path())),
                "{} is not in the host's own cgroup ({own:?})",
                dir.display()
            );
            assert!(dir.join("cgroup.procs").exists());
        }
        assert!(first.has_unified() || first.has_memory());
        m.release(first);
        // Emptied, it is removed as it is handed back, not at the host's exit.
        for dir in &made {
            assert!(!dir.exists(), "{} is left after its release", dir.display());
        }
        // A retry's attempt: a fresh cgroup, not the one its predecessor may have left
        // processes in.
        let second = m.acquire().unwrap();
        let again: Vec<PathBuf> = second.dirs().cloned().collect();
        assert!(
            again.iter().all(|d| !made.contains(d)),
            "{again:?} reused {made:?}"
        );
        m.release(second);
        assert_eq!(m.made(), 2);
        drop(m);
        for dir in made.iter().chain(&again) {
            assert!(!dir.exists(), "{} is left after the drop", dir.display());
        }
        for dir in &own {
            assert!(
                dir.exists(),
                "the host's own cgroup {} was removed",
                dir.display()
            );
        }
    }

    #[test]
    fn a_manager_dropped_with_a_process_still_in_a_cgroup_kills_it_and_leaves_nothing() {
        for one_execution in [false, true] {
            a_manager_dropped_with_a_process_still_in(one_execution);
        }
    }

    fn a_manager_dropped_with_a_process_still_in(one_execution: bool) {
        let Some(m) = manager_for(one_execution) else {
            return;
        };
        let cg = m.acquire().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id().to_string();
        for dir in cg.dirs() {
            fs::write(dir.join("cgroup.procs"), &pid).expect("move sleep into the cgroup");
        }
        assert_eq!(cg.pids().len(), 1);
        // Released with its process alive (an execution abandoned at exit): the drop
        // kills it, waits for it to leave, and removes every folder.
        let made: Vec<PathBuf> = cg.dirs().cloned().collect();
        m.release(cg);
        // A one-execution host's roots are its own cgroups, which stay.
        let roots = if one_execution {
            Vec::new()
        } else {
            roots_of(&m)
        };
        drop(m);
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
        for dir in roots.iter().chain(&made) {
            assert!(!dir.exists(), "{} is left after the drop", dir.display());
        }
    }

    #[test]
    fn a_manager_dropped_while_its_pool_fills_leaves_nothing() {
        for _ in 0..20 {
            let Some(m) = manager() else {
                return;
            };
            // Several in use at once: the worker is making more when the drop comes.
            let held: Vec<_> = (0..4).map(|_| m.acquire().unwrap()).collect();
            for cg in held {
                m.release(cg);
            }
            let roots = roots_of(&m);
            drop(m);
            for root in roots {
                assert!(!root.exists(), "{} is left after the drop", root.display());
            }
        }
    }

    #[test]
    fn parses_mountinfo() {
        let info = "30 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                    35 25 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            mount_point(info, "cgroup", Some("memory")),
            Some(PathBuf::from("/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            mount_point(info, "cgroup2", None),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(mount_point(info, "cgroup", Some("pids")), None);
    }

    #[test]
    fn reads_keyed_files() {
        assert_eq!(keyed("usage_usec 10\nuser_usec 7\n", "user_usec"), Some(7));
        assert_eq!(
            keyed("oom_kill_disable 0\noom_kill 2\n", "oom_kill"),
            Some(2)
        );
    }
}
