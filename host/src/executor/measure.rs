//! Sampling the resident memory of a running process tree from `/proc`.
//!
//! Sampling sees the whole tree but only at sample instants, so it gives the start and
//! end figures and a lower bound on the peak; the exact peak comes from the kernel (the
//! execution's memory cgroup, or `wait4`'s `ru_maxrss` for the largest single process).

use std::fs;
use std::sync::OnceLock;

use super::cgroup::ExecCgroup;

/// Page size in bytes, read once.
fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64)
}

/// `/proc/<pid>/statm` (`self` for the host) as pages: (resident, program text).
fn statm_pages(pid: &str) -> Option<(u64, u64)> {
    let statm = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let mut fields = statm.split_whitespace().skip(1);
    let resident = fields.next()?.parse().ok()?;
    let text = fields.nth(1)?.parse().ok()?;
    Some((resident, text))
}

/// Resident set size of one process in bytes (from `/proc/<pid>/statm`).
fn rss_bytes(pid: i32) -> Option<u64> {
    statm_pages(&pid.to_string()).map(|(resident, _)| resident * page_size())
}

/// Resident set size in bytes of a child just spawned, once it runs on an address space
/// of its own; `None` while it does not (or when it has gone). A vfork-style spawn
/// returns when the kernel releases the host's address space from the child, which it
/// does just before it switches the child to its new program's memory: for a moment the
/// child's figures are still the host's. Told apart by the size of the program text,
/// which is the host's until the switch.
pub fn rss_after_exec(pid: i32) -> Option<u64> {
    static HOST_TEXT: OnceLock<Option<u64>> = OnceLock::new();
    let host_text = *HOST_TEXT.get_or_init(|| statm_pages("self").map(|(_, text)| text));
    let (resident, text) = statm_pages(&pid.to_string())?;
    if Some(text) == host_text || resident == 0 {
        return None;
    }
    Some(resident * page_size())
}

/// Children of a process from `/proc/<pid>/task/<tid>/children` (every thread).
fn children(pid: i32, out: &mut Vec<i32>) {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for task in tasks.flatten() {
        if let Ok(list) = fs::read_to_string(task.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
}

/// Pids of the tree rooted at `root`: the cgroup's list when there is one (it also holds
/// descendants that were re-parented or called `setsid`), else a walk of `/proc`.
pub fn tree_pids(root: i32, cgroup: Option<&ExecCgroup>) -> Vec<i32> {
    if let Some(cg) = cgroup.filter(|cg| cg.has_unified() || cg.has_memory()) {
        return cg.pids();
    }
    let mut pids = vec![root];
    let mut i = 0;
    while i < pids.len() && pids.len() < 10_000 {
        let pid = pids[i];
        children(pid, &mut pids);
        i += 1;
    }
    pids
}

/// Resident memory of the whole tree now, in bytes (`None` when it has gone).
pub fn tree_rss_bytes(root: i32, cgroup: Option<&ExecCgroup>) -> Option<u64> {
    let mut total = None;
    for pid in tree_pids(root, cgroup) {
        // A zombie (exited, not yet reaped) reports zero: it holds no memory any more.
        if let Some(rss) = rss_bytes(pid).filter(|&r| r > 0) {
            *total.get_or_insert(0) += rss;
        }
    }
    total
}

/// Bytes in MiB (2^20), the unit of every memory figure of the result.
pub fn bytes_to_mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Running statistics over the samples of one attempt.
#[derive(Debug, Default, Clone, Copy)]
pub struct Samples {
    /// The first sample, bytes; `None` before any.
    pub first: Option<u64>,
    /// The latest sample, bytes; `None` before any.
    pub last: Option<u64>,
    /// The largest sample, bytes (0 before any).
    pub max: u64,
    /// How many samples were taken.
    pub count: u32,
}

impl Samples {
    /// Adds one sample of the tree's resident memory, bytes.
    pub fn record(&mut self, bytes: u64) {
        self.first.get_or_insert(bytes);
        self.last = Some(bytes);
        self.max = self.max.max(bytes);
        self.count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process on the host's address space (the host itself, as a child is for a moment
    /// after a vfork-style spawn) gives no figure; one running a program of its own does.
    #[test]
    fn a_child_on_the_hosts_address_space_is_not_sampled() {
        assert_eq!(rss_after_exec(std::process::id() as i32), None);
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        // `spawn` returns once the child has exec'd; its own memory may take a moment.
        let rss = (0..500).find_map(|_| {
            rss_after_exec(pid).or_else(|| {
                std::thread::sleep(std::time::Duration::from_millis(2));
                None
            })
        });
        let _ = child.kill();
        let _ = child.wait();
        let rss = rss.expect("the child's own memory");
        assert!(rss < rss_bytes(std::process::id() as i32).unwrap());
    }

    #[test]
    fn own_process_has_resident_memory_and_is_its_tree_root() {
        let me = std::process::id() as i32;
        assert!(rss_bytes(me).unwrap() > 0);
        assert_eq!(tree_pids(me, None)[0], me);
        assert!(tree_rss_bytes(me, None).unwrap() >= rss_bytes(me).unwrap() / 2);
    }

    #[test]
    fn samples_track_first_last_and_max() {
        let mut s = Samples::default();
        for b in [5, 9, 3] {
            s.record(b);
        }
        assert_eq!((s.first, s.last, s.max, s.count), (Some(5), Some(3), 9, 3));
    }
}
