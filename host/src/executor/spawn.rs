//! Process creation that stays cheap however large the host grows.
//!
//! `fork()` copies the parent's page tables: measured here it cost 27 ms per spawn from a
//! host holding ~430 MB of loaded WebAssembly, against under 1 ms for `posix_spawn`. std's
//! `Command` keeps to the cheap path only without `pre_exec`, and we need to run code in the
//! child (process group, rlimits, joining the execution's cgroups) before `execve`. So we do
//! what glibc's `posix_spawn` does internally: `clone(CLONE_VM | CLONE_VFORK)` on a small
//! private stack. The child shares our memory (no page-table copy) and the calling thread
//! sleeps until the child has called `execve` or exited. The child runs only
//! async-signal-safe system calls on data prepared beforehand: no allocation, no locks.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Everything the child needs, prepared in the parent.
pub struct SpawnRequest {
    /// The file to execute: a path (commands were resolved on `PATH` beforehand).
    pub program: CString,
    /// The arguments, `argv[0]` included.
    pub argv: Vec<CString>,
    /// The whole environment, `NAME=value` each: the child inherits nothing else.
    pub envp: Vec<CString>,
    /// The working directory the child changes to before `execve`.
    pub cwd: CString,
    /// Give the child a pipe on stdin (else `/dev/null`).
    pub stdin_pipe: bool,
    /// `RLIMIT_CPU` in seconds (per process; the kernel sends SIGXCPU).
    pub cpu_limit_seconds: Option<u64>,
    /// `RLIMIT_AS` in bytes (per process); used when no memory cgroup can limit the tree.
    pub address_space_limit_bytes: Option<u64>,
    /// The execution's cgroup in the unified (v2) hierarchy, when it has one (the caller
    /// keeps the descriptors open until `spawn` returns).
    pub unified_cgroup: Option<UnifiedCgroup>,
    /// Open files of other hierarchies the child joins before `execve` by writing `0`
    /// (itself) into them: the v1 memory cgroup's `tasks` (kept open as above).
    pub cgroup_join_files: Vec<RawFd>,
}

/// A cgroup of the unified hierarchy, as `spawn` joins it.
///
/// Writing a pid into `cgroup.procs` migrates the process, and a migration takes the
/// kernel's cgroup-wide lock for writing: after the machine has been idle, that waits for
/// an RCU grace period (measured here: 4–15 ms, most of a one-shot `run`). A process
/// created in its cgroup (`clone3` with `CLONE_INTO_CGROUP`, Linux 5.7) is never migrated.
/// Where the kernel cannot do that, the child writes itself into `procs` instead.
///
/// A cgroup of the v1 memory hierarchy (hybrid systems) cannot be joined at creation, and
/// its `cgroup.procs` takes the same lock (measured: 7–15 ms after a pause against
/// 0.4 ms). Its `tasks` file moves one thread, and a thread moving itself needs no
/// cgroup-wide lock (Linux skips it then; a kernel that does not takes it either way).
/// The child, before `execve`, is a process of one thread: it joins through `tasks`.
#[derive(Debug, Clone, Copy)]
pub struct UnifiedCgroup {
    /// The cgroup's folder, open.
    pub dir: RawFd,
    /// Its `cgroup.procs`, open for writing.
    pub procs: RawFd,
}

/// A running child: its pid (also its process-group id) and our ends of its pipes.
pub struct Spawned {
    /// The child's pid, also its process group's id.
    pub pid: libc::pid_t,
    /// The host's RSS high-water mark (KiB) over the spawn: reset to its size just before
    /// the clone and read once the child has exec'd. The child starts on the host's
    /// address space, and `execve` folds that address space's high-water mark into the
    /// child's `ru_maxrss`: a child whose `ru_maxrss` is not above this figure may not
    /// have used that much itself (see `usage_from`).
    pub host_maxrss_kb: i64,
    /// A pidfd of the child: readable once it has exited, and a handle no reused pid can
    /// fool.
    pub pidfd: OwnedFd,
    /// The write end of its stdin pipe, when `stdin_pipe` asked for one.
    pub stdin: Option<OwnedFd>,
    /// The read end of its stdout pipe.
    pub stdout: OwnedFd,
    /// The read end of its stderr pipe.
    pub stderr: OwnedFd,
}

/// Which step of child setup failed, so the error can say what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnStage {
    /// Joining the execution's cgroups.
    Cgroup,
    /// Setting `RLIMIT_CPU` or `RLIMIT_AS`.
    Limits,
    /// Putting the pipes (or `/dev/null`) on descriptors 0, 1 and 2.
    Redirect,
    /// Changing to the working directory.
    Chdir,
    /// `execve` itself (missing file, not executable, bad format, ...).
    Exec,
}

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// Setup in the child failed; `errno` tells why.
    #[error("{stage:?} failed in the child: {}", io::Error::from_raw_os_error(*errno))]
    Child {
        /// The step that failed.
        stage: SpawnStage,
        /// The `errno` it failed with.
        errno: i32,
    },
    /// The host could not create the child at all (pipes, clone, pidfd).
    #[error("cannot create the process: {0}")]
    Host(#[from] io::Error),
}

/// `s` as a C string; an error naming it when it holds a NUL byte.
pub fn cstring(s: impl AsRef<OsStr>) -> io::Result<CString> {
    CString::new(s.as_ref().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?} contains a NUL byte", s.as_ref()),
        )
    })
}

/// [`cstring`] of a path.
pub fn path_cstring(p: &Path) -> io::Result<CString> {
    cstring(p.as_os_str())
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors that we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Raw pointers and plain values the child reads; lives on the parent's stack during clone.
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdin_fd: RawFd,
    stdout_fd: RawFd,
    stderr_fd: RawFd,
    cpu_limit: Option<u64>,
    as_limit: Option<u64>,
    cgroup_fds: *const RawFd,
    cgroup_fd_count: usize,
    /// The operator's umask, set back in the child when the host replaced it with its own
    /// private one (`safe_fs::restrict_umask`).
    umask: Option<libc::mode_t>,
    /// Written by the child on failure (shared memory: CLONE_VM).
    failed_stage: i32,
    failed_errno: i32,
}

const STAGES: [SpawnStage; 5] = [
    SpawnStage::Cgroup,
    SpawnStage::Limits,
    SpawnStage::Redirect,
    SpawnStage::Chdir,
    SpawnStage::Exec,
];

/// Runs in the child, on the small stack, sharing the parent's memory until `execve`.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: arg points at the ChildArgs the parent keeps alive until we exec or exit;
    // the parent thread is suspended (CLONE_VFORK) so nothing else touches it.
    unsafe {
        let a = &mut *(arg as *mut ChildArgs);
        let fail = |a: &mut ChildArgs, stage: usize| -> libc::c_int {
            a.failed_errno = *libc::__errno_location();
            a.failed_stage = stage as i32 + 1;
            libc::_exit(127)
        };

        // Signal handlers are per process after clone without CLONE_SIGHAND: restore the
        // defaults (the host ignores SIGPIPE, scripts expect it to kill them).
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

        // Own process group, so a timeout can signal the whole tree at once.
        libc::setpgid(0, 0);

        // Join the execution's cgroups before anything else runs, so every byte and
        // every CPU tick of the tree is accounted there. `0` is the writer itself: its
        // process in a `cgroup.procs`, its one thread (all of it) in a v1 `tasks`.
        for i in 0..a.cgroup_fd_count {
            let fd = *a.cgroup_fds.add(i);
            if libc::write(fd, b"0".as_ptr() as *const _, 1) != 1 {
                return fail(a, 0);
            }
        }

        if let Some(secs) = a.cpu_limit {
            // Soft limit sends SIGXCPU (catchable, reported as RESOURCE); hard limit kills.
            let lim = libc::rlimit {
                rlim_cur: secs,
                rlim_max: secs + 1,
            };
            if libc::setrlimit(libc::RLIMIT_CPU, &lim) != 0 {
                return fail(a, 1);
            }
        }
        if let Some(bytes) = a.as_limit {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return fail(a, 1);
            }
        }

        // dup2 clears FD_CLOEXEC on the target, so only 0, 1 and 2 survive execve.
        for (from, to) in [(a.stdin_fd, 0), (a.stdout_fd, 1), (a.stderr_fd, 2)] {
            if libc::dup2(from, to) < 0 {
                return fail(a, 2);
            }
        }
        if libc::chdir(a.cwd) != 0 {
            return fail(a, 3);
        }
        // The umask is per process (the clone has no CLONE_FS): the host's stays 077.
        if let Some(mask) = a.umask {
            libc::umask(mask);
        }
        libc::execve(a.program, a.argv, a.envp);
        fail(a, 4)
    }
}

/// Whether `clone3` can create a child in its cgroup here; cleared the first time the
/// kernel says it cannot (older than 5.7, or no `clone3`), so it is asked once.
static CLONE_INTO_CGROUP_WORKS: AtomicBool = AtomicBool::new(cfg!(target_arch = "x86_64"));

/// The kernel's `struct clone_args` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` from `linux/sched.h`.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `clone(CLONE_VM | CLONE_VFORK)` as `spawn` does it, but through `clone3` so the child is
/// created in the unified cgroup `dir` (see [`UnifiedCgroup`]). Returns the child's pid
/// once it has called `execve` or exited.
///
/// # Safety
/// As for `libc::clone`: `base..top` is a stack no one else uses until the child has
/// exec'd or exited (the caller is suspended meanwhile), `top` 16-byte aligned, and `arg`
/// what `child_main` expects, alive until then.
#[cfg(target_arch = "x86_64")]
unsafe fn clone_into_cgroup(
    dir: RawFd,
    base: *mut u8,
    top: *mut u8,
    arg: *mut libc::c_void,
) -> io::Result<libc::pid_t> {
    let mut clone_args = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK) as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        stack: base as u64,
        stack_size: (top as usize - base as usize) as u64,
        cgroup: dir as u64,
        ..CloneArgs::default()
    };
    let entry: extern "C" fn(*mut libc::c_void) -> libc::c_int = child_main;
    let ret: i64;
    // SAFETY: the caller's contract. The raw system call returns twice: in the parent
    // with the child's pid (or -errno), in the child with 0 on the new stack, where no
    // Rust frame of ours exists. So the child never leaves this block: it calls
    // `child_main(arg)` (whose registers r12 and r13 survive the system call) with the
    // stack aligned as the ABI requires (the kernel starts it at `top`, 16-byte aligned,
    // and `call` pushes the return address), then exits with its result (`child_main`
    // itself ends in `execve` or `_exit`).
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "mov edi, eax",
            "mov eax, {exit}",
            "syscall",
            "ud2",
            "2:",
            exit = const libc::SYS_exit,
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &mut clone_args as *mut CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        return Err(io::Error::from_raw_os_error(-ret as i32));
    }
    Ok(ret as libc::pid_t)
}

/// Elsewhere the child always migrates (`CLONE_INTO_CGROUP_WORKS` starts false).
#[cfg(not(target_arch = "x86_64"))]
unsafe fn clone_into_cgroup(
    _dir: RawFd,
    _base: *mut u8,
    _top: *mut u8,
    _arg: *mut libc::c_void,
) -> io::Result<libc::pid_t> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// Starts the child described by `req`; returns once it has called `execve`.
pub fn spawn(req: SpawnRequest) -> Result<Spawned, SpawnError> {
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let (stdin_child, stdin_ours) = if req.stdin_pipe {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        let null = std::fs::File::open("/dev/null")?;
        (OwnedFd::from(null), None)
    };

    let mut argv: Vec<*const libc::c_char> = req.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = req.envp.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // The cgroups the child joins: the unified one first (left out when the child is
    // created in it), then the others.
    let cgroup_fds: Vec<RawFd> = (req.unified_cgroup.map(|u| u.procs).into_iter())
        .chain(req.cgroup_join_files.iter().copied())
        .collect();
    let into_cgroup = req
        .unified_cgroup
        .filter(|_| CLONE_INTO_CGROUP_WORKS.load(Ordering::Relaxed))
        .map(|u| u.dir);

    let mut args = ChildArgs {
        program: req.program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: req.cwd.as_ptr(),
        stdin_fd: stdin_child.as_raw_fd(),
        stdout_fd: stdout_w.as_raw_fd(),
        stderr_fd: stderr_w.as_raw_fd(),
        cpu_limit: req.cpu_limit_seconds,
        as_limit: req.address_space_limit_bytes,
        cgroup_fds: cgroup_fds.as_ptr(),
        cgroup_fd_count: cgroup_fds.len(),
        umask: crate::safe_fs::operator_umask(),
        failed_stage: 0,
        failed_errno: 0,
    };

    // The child needs very little stack: it only makes system calls. One stack per host
    // thread, reused: the thread sleeps while its child runs on it (CLONE_VFORK).
    const STACK_SIZE: usize = 32 * 1024;
    thread_local! {
        static STACK: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; STACK_SIZE]);
    }
    let host_maxrss_kb = host_rss_after_reset_kb();

    // Block every signal around clone so no host handler runs in the child before it
    // resets them; the child then unblocks everything.
    // SAFETY: sigset_t is plain data; all-zero is a valid (empty) set.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: plain signal-mask calls on valid sigset_t values; clone gets a stack of
    // STACK_SIZE bytes that this thread does not touch while the child runs on it
    // (CLONE_VFORK suspends the thread until the child execs or exits), and `args`, which
    // outlives the child's use of it for the same reason.
    let pid = unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let (pid, clone_errno) = STACK.with_borrow_mut(|stack| {
            // The stack grows down from its 16-byte-aligned top.
            let base = stack.as_mut_ptr();
            let top = base.add(stack.len());
            let top = top.sub(top as usize % 16);
            let arg = &mut args as *mut ChildArgs as *mut libc::c_void;
            if let Some(dir) = into_cgroup {
                // Created in the unified cgroup: the child skips writing the first pid file.
                args.cgroup_fds = cgroup_fds.as_ptr().add(1);
                args.cgroup_fd_count = cgroup_fds.len() - 1;
                match clone_into_cgroup(dir, base, top, arg) {
                    Ok(pid) => return (pid, None),
                    Err(e) => {
                        // An older kernel (or another hierarchy's fd): write the pid instead.
                        tracing::debug!("clone3 into the cgroup failed ({e}); migrating");
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::ENOSYS | libc::E2BIG | libc::EINVAL)
                        ) {
                            CLONE_INTO_CGROUP_WORKS.store(false, Ordering::Relaxed);
                        }
                        args.cgroup_fds = cgroup_fds.as_ptr();
                        args.cgroup_fd_count = cgroup_fds.len();
                    }
                }
            }
            let pid = libc::clone(
                child_main,
                top as *mut libc::c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                arg,
            );
            (pid, Some(io::Error::last_os_error()))
        });
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(SpawnError::Host(
                clone_errno.unwrap_or_else(io::Error::last_os_error),
            ));
        }
        pid
    };
    drop((stdout_w, stderr_w, stdin_child));
    // The child has exec'd (or exited): what it was credited with is at most the host's
    // high-water mark now, which covers what the host's other threads grew meanwhile
    // (a one-shot run loads its plugins while its script starts).
    let host_maxrss_kb = host_maxrss_kb.max(host_high_water_kb());

    // Read the child's verdict through a volatile load: it was written by another task
    // sharing our memory, which the compiler cannot see.
    // SAFETY: `args` is a live local; the child that wrote it has exec'd or exited.
    let stage = unsafe { std::ptr::read_volatile(&args.failed_stage) };
    if stage != 0 {
        // SAFETY: as above.
        let errno = unsafe { std::ptr::read_volatile(&args.failed_errno) };
        reap_blocking(pid);
        return Err(SpawnError::Child {
            stage: STAGES[(stage - 1) as usize],
            errno,
        });
    }

    // SAFETY: syscall with a pid we own (not yet reaped, so it cannot be reused).
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
    if pidfd < 0 {
        let err = io::Error::last_os_error();
        // SAFETY: signalling and reaping our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        reap_blocking(pid);
        return Err(SpawnError::Host(err));
    }
    // SAFETY: pidfd_open returned a fresh descriptor (it is created close-on-exec).
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Spawned {
        pid,
        host_maxrss_kb,
        pidfd,
        stdin: stdin_ours,
        stdout: stdout_r,
        stderr: stderr_r,
    })
}

/// The host's resident size in KiB, after resetting its RSS high-water mark to it.
///
/// A child started the vfork way runs on the host's address space until `execve`, and
/// `execve` folds that address space's high-water mark into the child's `ru_maxrss`. So
/// just before each spawn the host resets its own mark to its current size (writing "5"
/// to `/proc/self/clear_refs`, a cheap reset); a child's `ru_maxrss` above the returned
/// figure (plus slack for the host's growth during the spawn) is then the script's own.
/// (`getrusage(RUSAGE_SELF)` cannot serve: it also carries the peak the host inherited
/// from its own parent.) Both files stay open: a `pwrite` and a `pread` per spawn.
fn host_rss_after_reset_kb() -> i64 {
    use std::os::unix::fs::FileExt;
    use std::sync::OnceLock;
    static FILES: OnceLock<Option<(std::fs::File, std::fs::File)>> = OnceLock::new();
    let Some((clear_refs, statm)) = FILES.get_or_init(|| {
        let clear = std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/self/clear_refs")
            .ok()?;
        let statm = std::fs::File::open("/proc/self/statm").ok()?;
        Some((clear, statm))
    }) else {
        // Without the reset, every ru_maxrss is suspect: report it as unusable.
        return i64::MAX / 2;
    };
    if clear_refs.write_at(b"5", 0).is_err() {
        return i64::MAX / 2;
    }
    let mut buf = [0u8; 128];
    let n = statm.read_at(&mut buf, 0).unwrap_or(0);
    let pages = std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<i64>().ok());
    match pages {
        // SAFETY: sysconf has no preconditions.
        Some(p) => p * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as i64 / 1024,
        None => i64::MAX / 2,
    }
}

/// The host's RSS high-water mark in KiB (`VmHWM`, since the last reset), read once the
/// child has exec'd: every page the host held at any moment of the spawn, whichever of
/// its threads touched it.
fn host_high_water_kb() -> i64 {
    use std::os::unix::fs::FileExt;
    use std::sync::OnceLock;
    static STATUS: OnceLock<Option<std::fs::File>> = OnceLock::new();
    let Some(status) = STATUS.get_or_init(|| std::fs::File::open("/proc/self/status").ok()) else {
        return i64::MAX / 2;
    };
    let mut buf = [0u8; 4096];
    let n = status.read_at(&mut buf, 0).unwrap_or(0);
    std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<i64>().ok()
        })
        .unwrap_or(i64::MAX / 2)
}

fn reap_blocking(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// The child's exit as `wait4` reports it, with its rusage.
pub struct Reaped {
    /// The raw wait status (`WIFEXITED`, `WTERMSIG` ... decode it).
    pub status: i32,
    /// The child's resource usage and that of the descendants it waited for.
    pub rusage: libc::rusage,
}

impl Reaped {
    /// Its exit status, when it exited; `None` when a signal ended it.
    pub fn exit_code(&self) -> Option<i32> {
        libc::WIFEXITED(self.status).then(|| libc::WEXITSTATUS(self.status))
    }
    /// The signal number that ended it; `None` when it exited.
    pub fn signal(&self) -> Option<i32> {
        libc::WIFSIGNALED(self.status).then(|| libc::WTERMSIG(self.status))
    }
}

/// Reaps an exited child without blocking (call once its pidfd is readable).
pub fn try_reap(pid: libc::pid_t) -> io::Result<Option<Reaped>> {
    let mut status = 0;
    // SAFETY: rusage is plain data, filled by the kernel.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes into the two valid locals; `pid` is our own child.
    let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut rusage) };
    match r {
        0 => Ok(None),
        r if r == pid => Ok(Some(Reaped { status, rusage })),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Sends `signal` to every process of the group `pgid`.
pub fn signal_group(pgid: libc::pid_t, signal: i32) {
    // SAFETY: kill with a negative pid targets the process group; errors (ESRCH) are fine.
    unsafe { libc::kill(-pgid, signal) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sh(script: &str) -> SpawnRequest {
        SpawnRequest {
            program: cstring("/bin/sh").unwrap(),
            argv: vec![
                cstring("sh").unwrap(),
                cstring("-c").unwrap(),
                cstring(script).unwrap(),
            ],
            envp: vec![cstring("PATH=/usr/bin:/bin").unwrap()],
            cwd: cstring("/").unwrap(),
            stdin_pipe: false,
            cpu_limit_seconds: None,
            address_space_limit_bytes: None,
            unified_cgroup: None,
            cgroup_join_files: vec![],
        }
    }

    fn wait(child: &Spawned) -> Reaped {
        loop {
            if let Some(r) = try_reap(child.pid).unwrap() {
                return r;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn runs_in_its_own_group_with_clean_env_and_cwd() {
        let child = spawn(sh("echo $$ $(ps -o pgid= $$ 2>/dev/null || cut -d' ' -f5 /proc/$$/stat) $FOO; pwd; echo err >&2; exit 3")).unwrap();
        let mut out = String::new();
        std::fs::File::from(child.stdout.try_clone().unwrap())
            .read_to_string(&mut out)
            .unwrap();
        let r = wait(&child);
        assert_eq!(r.exit_code(), Some(3));
        let mut lines = out.lines();
        let ids: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(ids[0], ids[1], "pid is the process group id: {out}");
        assert_eq!(ids.len(), 2, "FOO must not leak in: {out}");
        assert_eq!(lines.next(), Some("/"));
    }

    #[test]
    fn reports_exec_failure_with_errno() {
        let mut req = sh("true");
        req.program = cstring("/nonexistent/program").unwrap();
        match spawn(req) {
            Err(SpawnError::Child { stage, errno }) => {
                assert_eq!(stage, SpawnStage::Exec);
                assert_eq!(errno, libc::ENOENT);
            }
            other => panic!("expected exec failure, got {:?}", other.map(|s| s.pid)),
        }
    }

    #[test]
    fn cpu_limit_sends_sigxcpu() {
        let mut req = sh("while :; do :; done");
        req.cpu_limit_seconds = Some(1);
        let child = spawn(req).unwrap();
        let r = wait(&child);
        assert_eq!(r.signal(), Some(libc::SIGXCPU));
    }
}
