//! The wall time of each step of a command, printed as a table when it ends (on failure,
//! up to and including the step that failed), so what a run costs shows on every run;
//! beside it the CPU time the step's processes used (user + system, of the children this
//! process waited for: cargo and all it ran), which a machine shared with other work
//! changes far less than the wall time.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::step;

struct Done {
    name: String,
    wall: Duration,
    cpu: Duration,
    ok: bool,
}

pub struct Steps {
    started: Instant,
    cpu_at_start: Duration,
    done: Vec<Done>,
}

impl Steps {
    pub fn new() -> Steps {
        Steps {
            started: Instant::now(),
            cpu_at_start: children_cpu(),
            done: Vec::new(),
        }
    }

    /// Runs `f` as the step `name`, timing it.
    pub fn run<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        step(name);
        let began = Instant::now();
        let cpu = children_cpu();
        let result = f();
        self.done.push(Done {
            name: name.to_string(),
            wall: began.elapsed(),
            cpu: children_cpu().saturating_sub(cpu),
            ok: result.is_ok(),
        });
        result
    }

    /// The table: each step's wall time, its share of the whole and its CPU time, then
    /// the totals.
    pub fn table(&self) -> String {
        let total = self.started.elapsed();
        let cpu = children_cpu().saturating_sub(self.cpu_at_start);
        let width = self
            .done
            .iter()
            .map(|d| d.name.chars().count())
            .max()
            .unwrap_or(4)
            .max(5);
        let mut out = format!(
            "{:<width$}  {:>9}  {:>5}  {:>8}\n",
            "step", "wall time", "share", "CPU time"
        );
        for d in &self.done {
            let mark = if d.ok { "" } else { "  <- FAILED" };
            out += &format!(
                "{:<width$}  {:>9}  {:>4.0}%  {:>8}{mark}\n",
                d.name,
                clock(d.wall),
                100.0 * d.wall.as_secs_f64() / total.as_secs_f64().max(1e-9),
                clock(d.cpu),
            );
        }
        out += &format!(
            "{:<width$}  {:>9}  {:>5}  {:>8}\n",
            "total",
            clock(total),
            "",
            clock(cpu)
        );
        out
    }
}

/// User + system time of the children this process waited for (and of theirs): fields
/// 16 and 17 of /proc/self/stat, in clock ticks of 1/100 s (Linux's USER_HZ).
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name, field 2, is in parentheses and may hold spaces: count after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // `after` starts at field 3; cutime is field 16, cstime 17.
    let ticks = fields.get(13).copied().unwrap_or(0) + fields.get(14).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// `M:SS`, or `H:MM:SS` past an hour.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_step_and_the_failed_one() {
        let mut steps = Steps::new();
        steps.run("fmt", || Ok(())).unwrap();
        assert!(steps
            .run("clippy", || -> Result<()> { anyhow::bail!("lint") })
            .is_err());
        let table = steps.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("step") && lines[0].contains("wall time"));
        assert!(lines[1].starts_with("fmt ") && !lines[1].contains("FAILED"));
        assert!(lines[2].starts_with("clippy") && lines[2].ends_with("<- FAILED"));
        assert!(lines[3].starts_with("total") && lines[3].ends_with("0:00"));
    }

    #[test]
    fn children_cpu_counts_a_waited_child() {
        let before = children_cpu();
        // A child that spins for about 0.3 s of CPU.
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        let used = children_cpu() - before;
        assert!(used >= Duration::from_millis(50), "{used:?}");
    }

    #[test]
    fn clock_reads_minutes_and_hours() {
        assert_eq!(clock(Duration::from_secs(59)), "0:59");
        assert_eq!(clock(Duration::from_secs(61)), "1:01");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
    }
}
