//! What the soak reads about the server from the outside: `/proc` (memory, descriptors,
//! threads, children, processes of its executions) and its cgroup folders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// One look at the server process.
#[derive(Debug, Clone, Default)]
pub struct Process {
    /// `VmRSS`, KiB, and its parts: anonymous memory (heap, stacks: what the server
    /// holds) and file-backed pages (the binary's code and data as it is touched).
    pub rss_kib: u64,
    pub rss_anon_kib: u64,
    pub rss_file_kib: u64,
    pub fds: usize,
    pub threads: usize,
    /// Processes whose parent is the server, and how many of them are zombies.
    pub children: usize,
    pub zombies: usize,
    /// Descriptors by what they point at (`socket`, `pipe`, `cgroup:cpu.stat`, a path).
    pub fd_kinds: BTreeMap<String, usize>,
    /// Threads by name.
    pub thread_names: BTreeMap<String, usize>,
}

fn status_field(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// `(state, ppid)` from `/proc/PID/stat` (the name in parentheses may hold anything).
fn state_and_parent(pid: &str) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?))
}

fn pids() -> Vec<String> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                .collect()
        })
        .unwrap_or_default()
}

/// What a descriptor points at, with its numbers left out so that kinds can be counted.
fn fd_kind(target: &Path, soak_dir: &Path) -> String {
    let text = target.to_string_lossy();
    if let Some(kind) = ["socket:", "pipe:"].iter().find(|k| text.starts_with(**k)) {
        return kind.trim_end_matches(':').to_string();
    }
    if text.starts_with("anon_inode:") {
        return text.into_owned();
    }
    if text.starts_with("/sys/fs/cgroup") {
        let file = target.file_name().map(|f| f.to_string_lossy().into_owned());
        return format!("cgroup:{}", file.unwrap_or_default());
    }
    match target.strip_prefix(soak_dir) {
        Ok(inside) => format!("soak:{}", inside.display()),
        Err(_) => text.into_owned(),
    }
}

/// Seconds since process `pid` started, from `/proc` (its start in clock ticks since
/// boot, Linux's fixed 100 a second, against `/proc/uptime`): the clock heaptrack's record
/// keeps, which starts with the process.
pub fn seconds_since_start(pid: u32) -> Option<f64> {
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22, `starttime`: the 20th after the name in parentheses.
    let start: f64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(uptime - start / TICKS_PER_SECOND)
}

/// Samples the server's figures.
pub fn process(pid: u32, soak_dir: &Path) -> Result<Process> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("the server (pid {pid}) is gone"))?;
    let mut p = Process {
        rss_kib: status_field(&status, "VmRSS").unwrap_or(0),
        rss_anon_kib: status_field(&status, "RssAnon").unwrap_or(0),
        rss_file_kib: status_field(&status, "RssFile").unwrap_or(0),
        threads: status_field(&status, "Threads").unwrap_or(0) as usize,
        ..Process::default()
    };
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))?.flatten() {
        p.fds += 1;
        if let Ok(target) = std::fs::read_link(fd.path()) {
            *p.fd_kinds.entry(fd_kind(&target, soak_dir)).or_default() += 1;
        }
    }
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        *p.thread_names.entry(name.trim().to_string()).or_default() += 1;
    }
    for other in pids() {
        if let Some((state, parent)) = state_and_parent(&other) {
            if parent == pid {
                p.children += 1;
                p.zombies += usize::from(state == 'Z');
            }
        }
    }
    Ok(p)
}

/// A live process carrying `METACLAUDE_EXECUTION_ID` in its environment.
#[derive(Debug, Clone)]
pub struct Carrier {
    pub pid: String,
    pub execution_id: String,
    pub parent: u32,
    pub command: String,
}

/// Every live (not zombie) process whose environment names an execution.
pub fn execution_processes() -> Vec<Carrier> {
    const KEY: &[u8] = b"METACLAUDE_EXECUTION_ID=";
    let mut found = Vec::new();
    for pid in pids() {
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let Some(id) = environ.split(|b| *b == 0).find_map(|v| v.strip_prefix(KEY)) else {
            continue;
        };
        let Some((state, parent)) = state_and_parent(&pid) else {
            continue;
        };
        if state == 'Z' {
            continue;
        }
        let command = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        found.push(Carrier {
            execution_id: String::from_utf8_lossy(id).into_owned(),
            pid,
            parent,
            command,
        });
    }
    found
}

/// The server's cgroup folders and the execution cgroups in them.
#[derive(Debug, Clone, Default)]
pub struct Cgroups {
    /// `metaclaude-<pid>-*` folders, one per writable hierarchy.
    pub folders: Vec<PathBuf>,
    /// Execution cgroups (`exec-N`) over all folders.
    pub executions: usize,
    /// Execution cgroups with a process in them.
    pub populated: Vec<PathBuf>,
}

/// This process's own folder in each mounted cgroup hierarchy (the server, a child of
/// this process, starts in the same ones and makes its folders under them).
fn own_hierarchy_dirs() -> Vec<PathBuf> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // (fstype, super options, mount point) of whole-hierarchy mounts.
    let mounts: Vec<(&str, &str, &str)> = mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut left = left.split_whitespace();
            let root = left.nth(3)?;
            let mount = left.next()?;
            let mut right = right.split_whitespace();
            let fstype = right.next()?;
            let options = right.nth(1).unwrap_or("");
            (root == "/" && fstype.starts_with("cgroup")).then_some((fstype, options, mount))
        })
        .collect();
    let mut dirs = Vec::new();
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let mount = if id == "0" && controllers.is_empty() {
            mounts.iter().find(|m| m.0 == "cgroup2")
        } else {
            mounts.iter().find(|m| {
                m.0 == "cgroup"
                    && controllers
                        .split(',')
                        .any(|c| m.1.split(',').any(|o| o == c))
            })
        };
        if let Some((_, _, mount)) = mount {
            dirs.push(Path::new(mount).join(path.trim_start_matches('/')));
        }
    }
    dirs
}

/// The cgroup folders of the host process `pid`.
pub fn cgroups(pid: u32) -> Cgroups {
    let prefix = format!("metaclaude-{pid}-");
    let mut view = Cgroups::default();
    for dir in own_hierarchy_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for folder in entries.flatten() {
            if !folder.file_name().to_string_lossy().starts_with(&prefix) {
                continue;
            }
            for cg in std::fs::read_dir(folder.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if !cg.path().is_dir() {
                    continue;
                }
                view.executions += 1;
                let procs =
                    std::fs::read_to_string(cg.path().join("cgroup.procs")).unwrap_or_default();
                if !procs.trim().is_empty() {
                    view.populated.push(cg.path());
                }
            }
            view.folders.push(folder.path());
        }
    }
    view
}
