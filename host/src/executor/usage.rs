//! An attempt's resource figures, each from the most complete source available, and
//! their sum over an execution's attempts.

use crate::model::{MeasurementSource, ResourceUsage};

use super::cgroup::CgroupUsage;
use super::measure::{bytes_to_mb, Samples};
use super::spawn;

/// Combines one attempt's figures into the execution's totals.
pub(super) fn accumulate(total: &mut ResourceUsage, a: &ResourceUsage, first: bool) {
    if first {
        total.memory_start_mb = a.memory_start_mb;
        total.memory_start_source = a.memory_start_source;
    }
    total.memory_end_mb = a.memory_end_mb;
    total.memory_end_source = a.memory_end_source;
    if a.peak_memory_mb >= total.peak_memory_mb {
        total.peak_memory_mb = a.peak_memory_mb;
        total.peak_memory_source = a.peak_memory_source;
    }
    total.peak_memory_largest_process_mb = total
        .peak_memory_largest_process_mb
        .max(a.peak_memory_largest_process_mb);
    total.cpu_user_seconds += a.cpu_user_seconds;
    total.cpu_system_seconds += a.cpu_system_seconds;
    total.cpu_time_seconds += a.cpu_time_seconds;
    if a.cpu_time_source != MeasurementSource::None {
        total.cpu_time_source = a.cpu_time_source;
    }
    total.wall_time_seconds += a.wall_time_seconds;
}

fn timeval_seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// The attempt's resource figures, each from the most complete source available.
pub(super) fn usage_from(
    reaped: &spawn::Reaped,
    host_maxrss_kb: i64,
    samples: &Samples,
    cg: &CgroupUsage,
) -> ResourceUsage {
    // ru_maxrss is in KiB on Linux. The child began on the host's address space (vfork
    // semantics), and execve credits that address space's peak to the child; a figure not
    // above the host's own size at the spawn (plus slack for growth meanwhile) may be
    // the host's, not the script's, and is set aside. (The host resets its own mark to
    // its current size before each spawn; 4 MiB of slack covers its growth meanwhile.)
    let maxrss_kb = reaped.rusage.ru_maxrss.max(0);
    let rusage_usable = maxrss_kb > host_maxrss_kb.saturating_add(4096);
    let sampled_peak = bytes_to_mb(samples.max);
    let cgroup_peak = cg.peak_memory_bytes.map(bytes_to_mb);
    let largest = if rusage_usable {
        maxrss_kb as f64 / 1024.0
    } else {
        // The largest process cannot be bigger than the whole tree.
        cgroup_peak.unwrap_or(sampled_peak)
    };
    let mut peak = if rusage_usable {
        (largest, MeasurementSource::Rusage)
    } else {
        (0.0, MeasurementSource::None)
    };
    if sampled_peak > peak.0 {
        peak = (sampled_peak, MeasurementSource::Sampling);
    }
    if let Some(mb) = cgroup_peak {
        // The cgroup counts the whole tree; RSS can still be larger when a process maps
        // pages charged to another cgroup (shared libraries): report the larger, honestly.
        if mb >= peak.0 {
            peak = (mb, MeasurementSource::Cgroup);
        }
    }
    let (user, system, cpu_source) = match (cg.cpu_total_usec, cg.cpu_user_usec, cg.cpu_system_usec)
    {
        (Some(total), Some(u), Some(s)) => {
            let total = total as f64 / 1e6;
            let user_share = if u + s > 0 {
                u as f64 / (u + s) as f64
            } else {
                1.0
            };
            (
                total * user_share,
                total * (1.0 - user_share),
                MeasurementSource::Cgroup,
            )
        }
        _ => (
            timeval_seconds(reaped.rusage.ru_utime),
            timeval_seconds(reaped.rusage.ru_stime),
            MeasurementSource::Rusage,
        ),
    };
    let sampled = |v: Option<u64>| match v {
        Some(b) => (bytes_to_mb(b), MeasurementSource::Sampling),
        None => (0.0, MeasurementSource::None),
    };
    let (start, start_source) = sampled(samples.first);
    let (end, end_source) = sampled(samples.last);
    ResourceUsage {
        memory_start_mb: start,
        memory_end_mb: end,
        peak_memory_mb: peak.0,
        peak_memory_largest_process_mb: largest,
        cpu_time_seconds: user + system,
        cpu_user_seconds: user,
        cpu_system_seconds: system,
        wall_time_seconds: 0.0,
        memory_start_source: start_source,
        memory_end_source: end_source,
        peak_memory_source: peak.1,
        cpu_time_source: cpu_source,
    }
}
