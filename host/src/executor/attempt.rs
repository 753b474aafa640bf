//! One attempt: spawn the script's process, sample its memory, enforce its timeout, reap
//! it, drain its output and classify how it ended, then sum it up as an
//! [`AttemptSummary`].

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::io::unix::AsyncFd;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::model::{
    signal_name, AttemptSummary, ErrorDetails, ExecutionEvent, LifecycleKind, ResourceUsage,
};
use crate::registry::ScriptEntry;

use super::capture::{Captured, OutputPipe};
use super::cgroup::{CgroupManager, ExecCgroup};
use super::classify;
use super::errors::{self, unknown_error};
use super::launch::LaunchPlan;
use super::measure::{self, Samples};
use super::spawn::{self, cstring, SpawnRequest, UnifiedCgroup};
use super::usage::usage_from;
use super::{EventSink, ExecutorConfig};
use crate::model::ExecutionIdentity;

/// What an attempt needs of the service that runs it: its configuration, the cgroups,
/// the sinks its `started` event goes to, and the signal that ends running attempts.
pub(super) struct Surroundings<'a> {
    pub config: &'a ExecutorConfig,
    pub cgroups: Option<&'a CgroupManager>,
    pub sinks: &'a [Arc<dyn EventSink>],
    pub stop: &'a watch::Sender<bool>,
}

impl Surroundings<'_> {
    /// Hands `event` to every sink.
    pub(super) fn emit(&self, event: ExecutionEvent) {
        for sink in self.sinks {
            sink.emit(&event);
        }
    }

    /// Returns once the service is told to stop running executions.
    pub(super) async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// How one attempt went.
pub(super) struct AttemptOutcome {
    pub summary: AttemptSummary,
    pub error: Option<ErrorDetails>,
    pub stdout: Captured,
    pub stderr: Captured,
    pub usage: ResourceUsage,
}

/// How the attempt's process ended, before the attempt's timing is added.
struct Ended {
    exit_code: Option<i32>,
    signal: Option<String>,
    error: Option<ErrorDetails>,
    stdout: Captured,
    stderr: Captured,
    usage: ResourceUsage,
}

/// Runs attempt number `attempt` (1-based) in its own execution cgroup when there is one.
/// `delay_before_ms`: the backoff waited before it, recorded in its summary.
pub(super) async fn run(
    service: &Surroundings<'_>,
    entry: &ScriptEntry,
    header: &ExecutionIdentity,
    plan: &LaunchPlan,
    attempt: u32,
    delay_before_ms: u64,
) -> AttemptOutcome {
    let started_at = Utc::now();
    let clock = Instant::now();
    let cgroups = service.cgroups;
    let cgroup = cgroups.and_then(|m| match m.acquire() {
        Ok(cg) => Some(cg),
        Err(e) => {
            tracing::warn!("running without an execution cgroup: {e}");
            None
        }
    });
    let ended = spawn_and_wait(service, entry, header, plan, attempt, cgroup.as_ref()).await;
    if let (Some(m), Some(cg)) = (cgroups, cgroup) {
        m.release(cg);
    }
    let finished_at = Utc::now();
    let wall = clock.elapsed().as_secs_f64();
    let mut ended = ended.unwrap_or_else(|error| Ended {
        exit_code: None,
        signal: None,
        error: Some(*error),
        stdout: Captured::default(),
        stderr: Captured::default(),
        usage: ResourceUsage::empty(),
    });
    ended.usage.wall_time_seconds = wall;
    AttemptOutcome {
        summary: AttemptSummary {
            attempt,
            started_at,
            finished_at,
            success: ended.error.is_none(),
            exit_code: ended.exit_code,
            signal: ended.signal,
            category: ended.error.as_ref().map(|e| e.category),
            message: ended.error.as_ref().map(|e| e.message.clone()),
            wall_time_seconds: wall,
            cpu_time_seconds: ended.usage.cpu_time_seconds,
            peak_memory_mb: ended.usage.peak_memory_mb,
            delay_before_ms,
        },
        error: ended.error,
        stdout: ended.stdout,
        stderr: ended.stderr,
        usage: ended.usage,
    }
}

/// Spawns the attempt's process, samples it until it exits or its timeout ends it, reaps
/// it, drains its output and classifies how it ended.
async fn spawn_and_wait(
    service: &Surroundings<'_>,
    entry: &ScriptEntry,
    header: &ExecutionIdentity,
    plan: &LaunchPlan,
    attempt: u32,
    cgroup: Option<&ExecCgroup>,
) -> Result<Ended, Box<ErrorDetails>> {
    let memory_limit = entry.memory_limit_mb.map(|mb| mb * 1024 * 1024);
    let mut cgroup_limits_memory = false;
    if let (Some(bytes), Some(cg)) = (memory_limit, cgroup) {
        if cg.has_memory() {
            match cg.set_memory_limit(bytes) {
                Ok(()) => cgroup_limits_memory = true,
                Err(e) => tracing::warn!("cannot set the cgroup memory limit: {e}"),
            }
        }
    }
    let unified_cgroup = cgroup
        .and_then(|cg| cg.unified_fds())
        .map(|(dir, procs)| UnifiedCgroup { dir, procs });
    let cgroup_join_files = cgroup
        .and_then(|cg| cg.memory_tasks_fd())
        .into_iter()
        .collect();
    let mut envp = plan.envp.clone();
    envp.push(cstring(format!("METACLAUDE_ATTEMPT={attempt}")).expect("no NUL"));
    let request = SpawnRequest {
        program: plan.program_c.clone(),
        argv: plan.argv.clone(),
        envp,
        cwd: plan.cwd.clone(),
        stdin_pipe: plan.stdin.is_some(),
        cpu_limit_seconds: entry.cpu_limit_seconds,
        address_space_limit_bytes: if cgroup_limits_memory {
            None
        } else {
            memory_limit
        },
        unified_cgroup,
        cgroup_join_files,
    };
    let child = spawn::spawn(request)
        .map_err(|e| Box::new(classify::spawn_failure(entry, attempt, &plan.program, &e)))?;
    let pid = child.pid;
    let host_maxrss_kb = child.host_maxrss_kb;
    let mut started = header.event(LifecycleKind::Started, attempt);
    started.pid = Some(pid as u32);
    service.emit(started);

    let spawned_at = Instant::now();
    let mut samples = Samples::default();
    // Right after execve the tree is this one process: no need to list the cgroup.
    if let Some(rss) = measure::rss_after_exec(pid) {
        samples.record(rss);
    }

    let mut stdout = OutputPipe::new(child.stdout, entry.output_limit_bytes);
    let mut stderr = OutputPipe::new(child.stderr, entry.output_limit_bytes);
    if let (Some(fd), Some(data)) = (child.stdin, plan.stdin.clone()) {
        tokio::spawn(async move {
            if let Ok(mut w) = tokio::net::unix::pipe::Sender::from_owned_fd(fd) {
                // A script that does not read its stdin closes the pipe: that is fine.
                let _ = w.write_all(&data).await;
            }
        });
    }

    // SAFETY: the OwnedFd moves into the AsyncFd and stays open as long as it lives.
    let pidfd =
        unsafe { AsyncFd::register_with_interest(child.pidfd, tokio::io::Interest::READABLE) }
            .map_err(|e| {
                Box::new(unknown_error(
                    entry,
                    attempt,
                    format!("cannot watch the process: {e}"),
                ))
            })?;
    let deadline = spawned_at + Duration::from_millis(entry.timeout_ms);
    let mut interval = Duration::from_millis(5);
    let mut timed_out = false;
    let mut stopped = false;
    loop {
        let next_sample = Instant::now() + interval;
        let wake = next_sample.min(deadline);
        tokio::select! {
            ready = pidfd.readable() => {
                if let Ok(mut guard) = ready {
                    guard.retain_ready();
                }
                break;
            }
            _ = stdout.read_once(), if stdout.is_open() => {}
            _ = stderr.read_once(), if stderr.is_open() => {}
            () = service.stopped(), if !stopped => {
                stopped = true;
                timed_out = true;
                terminate(pid, cgroup, &pidfd, service.config.kill_grace).await;
                break;
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                if Instant::now() >= deadline {
                    timed_out = true;
                    terminate(pid, cgroup, &pidfd, service.config.kill_grace).await;
                    break;
                }
                if let Some(rss) = measure::tree_rss_bytes(pid, cgroup) {
                    samples.record(rss);
                }
                interval = (interval * 2).min(service.config.max_sample_interval);
            }
        }
    }

    // The main process has exited (it is a zombie until reaped, so its pid and
    // process group cannot be reused yet): end whatever it left behind.
    spawn::signal_group(pid, libc::SIGKILL);
    if let Some(cg) = cgroup.filter(|cg| cg.is_populated() != Some(false)) {
        cg.kill_all();
    }
    let reaped = loop {
        match spawn::try_reap(pid) {
            Ok(Some(r)) => break r,
            Ok(None) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(e) => {
                return Err(Box::new(unknown_error(
                    entry,
                    attempt,
                    format!("cannot collect the process's exit status: {e}"),
                )))
            }
        }
    };
    drop(pidfd);

    // Output: read to EOF, but never wait long for a pipe an escaped process holds.
    let drain_until = Instant::now() + service.config.drain_grace;
    while stdout.is_open() || stderr.is_open() {
        tokio::select! {
            _ = stdout.read_once(), if stdout.is_open() => {}
            _ = stderr.read_once(), if stderr.is_open() => {}
            _ = tokio::time::sleep_until(drain_until.into()) => break,
        }
    }
    let (stdout, stderr) = (stdout.finish(), stderr.finish());

    let exit_code = reaped.exit_code();
    let signal = reaped.signal();
    let cg_usage = cgroup
        .map(|c| c.usage(signal == Some(libc::SIGKILL)))
        .unwrap_or_default();
    let usage = usage_from(&reaped, host_maxrss_kb, &samples, &cg_usage);
    let oom_killed = cg_usage.oom_killed;
    let error = classify::classify(&classify::Ending {
        entry,
        attempt,
        exit_code,
        signal,
        timed_out,
        oom_killed,
        peak_memory_mb: usage.peak_memory_mb,
        cpu_seconds: usage.cpu_time_seconds,
        stderr: &stderr.text,
    });
    let error = match error {
        Some(e) if stopped => Some(errors::ended_by_shutdown(e)),
        other => other,
    };
    Ok(Ended {
        exit_code,
        signal: signal.map(signal_name),
        error,
        stdout,
        stderr,
        usage,
    })
}

/// SIGTERM to the group (and the cgroup's stragglers), then SIGKILL after the grace.
async fn terminate(
    pid: libc::pid_t,
    cgroup: Option<&ExecCgroup>,
    pidfd: &AsyncFd<OwnedFd>,
    grace: Duration,
) {
    spawn::signal_group(pid, libc::SIGTERM);
    if let Some(cg) = cgroup {
        for p in cg.pids() {
            // SAFETY: signalling processes of our own execution cgroup.
            unsafe { libc::kill(p, libc::SIGTERM) };
        }
    }
    let exited = tokio::time::timeout(grace, pidfd.readable()).await.is_ok();
    if !exited {
        tracing::debug!(pid, "script ignored SIGTERM; sending SIGKILL");
    }
    spawn::signal_group(pid, libc::SIGKILL);
    if let Some(cg) = cgroup {
        cg.kill_all();
    }
}
