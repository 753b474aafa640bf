//! `cargo xtask soak --heaptrack`: the server runs under heaptrack (Debian's package), so a
//! figure that grows can be told apart: the heap in use (what the program holds, read from
//! heaptrack's record at each minute's sample) against RSS (which also counts the
//! allocator's free memory and code pages touched), and what is still allocated at exit
//! with the allocation sites, in `heap-leaks.txt` beside the report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::report::Row;

/// heaptrack's record, without the suffix it adds (`.zst` or `.gz`).
pub fn record_base(soak_dir: &Path) -> PathBuf {
    soak_dir.join("heaptrack")
}

/// `heaptrack -o BASE BIN`: the arguments follow.
pub fn command(bin: &Path, base: &Path) -> Result<Command> {
    crate::ensure_debian("/usr/bin/heaptrack", "heaptrack")?;
    let mut c = Command::new("heaptrack");
    c.arg("-o").arg(base).arg(bin);
    Ok(c)
}

/// The server's own pid: heaptrack's script runs it as its child.
pub fn server_pid(wrapper: u32, within: Duration) -> Result<u32> {
    let deadline = Instant::now() + within;
    loop {
        let children = std::fs::read_to_string(format!("/proc/{wrapper}/task/{wrapper}/children"))
            .unwrap_or_default();
        for pid in children.split_whitespace() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "metaclaude" {
                return pid.parse().context("a pid in /proc");
            }
        }
        if Instant::now() > deadline {
            bail!("heaptrack (pid {wrapper}) started no metaclaude within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// After the server's exit: the heap in use at each row's sample (`Row::heap_kib`) and the
/// allocations never freed, into `out/heap-leaks.txt`. Returns the report's paragraph.
pub fn analyse(base: &Path, rows: &mut [Row], out: &Path) -> Result<String> {
    let record = ["zst", "gz"]
        .iter()
        .map(|s| base.with_extension(s))
        .find(|p| p.exists())
        .with_context(|| format!("heaptrack wrote no {}.zst", base.display()))?;
    let massif = out.join("heap.massif");
    let leaks = Command::new("heaptrack_print")
        .arg("-f")
        .arg(&record)
        .args([
            "--print-leaks",
            "1",
            "--print-peaks",
            "1",
            "--print-allocators",
            "0",
        ])
        .args(["--print-temporary", "0", "--peak-limit", "25"])
        .arg("--print-massif")
        .arg(&massif)
        .args(["--massif-detailed-freq", "0"])
        .output()
        .context("cannot run heaptrack_print")?;
    if !leaks.status.success() {
        bail!(
            "heaptrack_print {}: {}",
            record.display(),
            String::from_utf8_lossy(&leaks.stderr)
        );
    }
    std::fs::write(out.join("heap-leaks.txt"), &leaks.stdout)?;
    let series = heap_series(&std::fs::read_to_string(&massif)?);
    for row in rows.iter_mut() {
        row.heap_kib = heap_at(&series, row.at_seconds).map(|b| b / 1024);
    }
    Ok(format!(
        "heaptrack: record {}; still allocated at exit, by site: {}\n{}",
        record.display(),
        out.join("heap-leaks.txt").display(),
        leak_summary(&String::from_utf8_lossy(&leaks.stdout)).join("\n")
    ))
}

/// heaptrack_print's total and each leaking site (`X leaked over N calls from`, then the
/// function), leaving out the callers listed under each (`... calls from:`).
fn leak_summary(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut summary = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("total runtime") || line.starts_with("total memory leaked") {
            summary.push(line.to_string());
        } else if line.contains(" leaked over ") && line.ends_with(" calls from") {
            let site = lines.get(i + 1).map_or("", |l| l.trim());
            summary.push(format!("{line} {site}"));
        }
    }
    summary
}

/// `(seconds since start, heap bytes in use)` of each snapshot of a massif file.
fn heap_series(massif: &str) -> Vec<(f64, u64)> {
    let mut series = Vec::new();
    let mut time = None;
    for line in massif.lines() {
        if let Some(t) = line.strip_prefix("time=") {
            time = t.trim().parse::<f64>().ok();
        } else if let Some(b) = line.strip_prefix("mem_heap_B=") {
            if let (Some(t), Ok(b)) = (time.take(), b.trim().parse::<u64>()) {
                series.push((t, b));
            }
        }
    }
    series
}

/// The heap in use at `seconds`: the last snapshot at or before it.
fn heap_at(series: &[(f64, u64)], seconds: f64) -> Option<u64> {
    let i = series.partition_point(|(t, _)| *t <= seconds);
    i.checked_sub(1).map(|i| series[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leak_summary_names_each_site_once_and_not_its_callers() {
        let text =
            "MEMORY LEAKS\n32.77K leaked over 1 calls from\nsharded_slab::new\n  in /bin/x\n\
                    32.77K leaked over 1 calls from:\n    caller::f\n      in /bin/x\n\
                    total runtime: 190.03s.\ntotal memory leaked: 122.01K\n";
        assert_eq!(
            leak_summary(text),
            [
                "32.77K leaked over 1 calls from sharded_slab::new",
                "total runtime: 190.03s.",
                "total memory leaked: 122.01K",
            ]
        );
    }

    #[test]
    fn the_heap_at_a_time_is_the_last_snapshot_before_it() {
        let massif = "desc: heaptrack\n#-----------\nsnapshot=0\n#-----------\ntime=0.5\nmem_heap_B=100\n\
                      mem_heap_extra_B=0\n#-----------\nsnapshot=1\n#-----------\ntime=61.25\nmem_heap_B=2048\n";
        let series = heap_series(massif);
        assert_eq!(series, [(0.5, 100), (61.25, 2048)]);
        assert_eq!(heap_at(&series, 0.1), None);
        assert_eq!(heap_at(&series, 60.0), Some(100));
        assert_eq!(heap_at(&series, 61.25), Some(2048));
        assert_eq!(heap_at(&series, 3600.0), Some(2048));
    }
}
