//! `cargo xtask bench-dashboard`: what the interactive terminal dashboard costs. The real
//! binary runs in tmux (a real terminal, 200x50) following a log directory that this
//! command writes as hosts do, a finished record per execution:
//!
//! 1. CPU: `--rate` executions per second (default 1000) for `--seconds` (default 30)
//!    after a warm-up; the dashboard process's user + system time over wall time, as a
//!    share of one core (target: under 5 %);
//! 2. memory: an hour of executions at that rate (`--hour-events`, default 3 600 000),
//!    written at `--hour-rate` per second (default 10 000, so it takes six minutes); the
//!    process's RSS every 30 s, judged flat when the last sample is within 10 % (and
//!    4 MiB) of the one at a quarter of the way.
//!
//! The dashboard is built with `--release` unless `--debug` is given (then the dev build,
//! whose own code is unoptimised: an upper bound).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{cargo, ensure_debian, run, step};

struct Options {
    rate: u64,
    seconds: u64,
    hour_events: u64,
    hour_rate: u64,
    debug: bool,
}

fn options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        rate: 1000,
        seconds: 30,
        hour_events: 3_600_000,
        hour_rate: 10_000,
        debug: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |name: &str| -> Result<u64> {
            it.next()
                .with_context(|| format!("{name} needs a number"))?
                .parse()
                .with_context(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--rate" => o.rate = number("--rate")?,
            "--seconds" => o.seconds = number("--seconds")?,
            "--hour-events" => o.hour_events = number("--hour-events")?,
            "--hour-rate" => o.hour_rate = number("--hour-rate")?,
            "--debug" => o.debug = true,
            other => bail!(
                "unknown option {other} (known: --rate N --seconds N --hour-events N --hour-rate N --debug)"
            ),
        }
    }
    Ok(o)
}

pub fn bench_dashboard(root: &Path, args: &[String]) -> Result<()> {
    let o = options(args)?;
    ensure_debian("/usr/bin/tmux", "tmux")?;
    step(&format!(
        "building metaclaude ({})",
        if o.debug { "dev profile" } else { "release" }
    ));
    let mut build = cargo("build");
    build.args(["-p", "metaclaude-host", "--bin", "metaclaude"]);
    if !o.debug {
        build.arg("--release");
    }
    run(&mut build)?;
    let bin = root
        .join("target")
        .join(if o.debug { "debug" } else { "release" })
        .join("metaclaude");

    let scratch =
        std::env::temp_dir().join(format!("metaclaude-bench-dashboard-{}", std::process::id()));
    let logs = scratch.join("logs");
    std::fs::create_dir_all(&logs)?;
    let template = template_record(&bin, root, &scratch)?;
    let live = logs.join("executions.jsonl");
    std::fs::write(&live, "")?;

    let session = Tmux::start(&bin, &logs)?;
    let result = measure(&o, &session, &template, &live);
    drop(session);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn measure(o: &Options, session: &Tmux, template: &Value, live: &Path) -> Result<()> {
    session.wait_for("the dashboard following the log", |s| {
        s.contains(": following")
    })?;
    let pid = session.dashboard_pid()?;
    let mut writer = Writer::new(template, live)?;

    step(&format!(
        "CPU: {} executions/s for {} s (after 5 s of warm-up)",
        o.rate, o.seconds
    ));
    writer.at_rate(o.rate, Duration::from_secs(5))?;
    let (cpu0, t0) = (cpu_seconds(pid)?, Instant::now());
    writer.at_rate(o.rate, Duration::from_secs(o.seconds))?;
    let cpu = cpu_seconds(pid)? - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    let screen = session.screen()?;
    let shown = screen
        .lines()
        .find_map(|l| l.split("Throughput, 60 s: now ").nth(1))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("?")
        .to_string();
    let share = 100.0 * cpu / wall;
    println!(
        "dashboard CPU at {} executions/s: {share:.2} % of one core ({cpu:.2} s in {wall:.1} s; the screen showed {shown}/s finishing)",
        o.rate
    );

    step(&format!(
        "memory: {} executions (an hour at {}/s) written at {}/s",
        o.hour_events, o.rate, o.hour_rate
    ));
    let mut samples = Vec::new();
    let start = Instant::now();
    let target = writer.written + o.hour_events;
    let mut next_sample = Duration::ZERO;
    while writer.written < target {
        if start.elapsed() >= next_sample {
            let rss = rss_kib(pid)?;
            println!(
                "  {:>5.0} s  {:>9} executions  RSS {:>7.1} MiB",
                start.elapsed().as_secs_f64(),
                writer.written,
                rss as f64 / 1024.0
            );
            samples.push(rss);
            next_sample += Duration::from_secs(30);
        }
        let left = target - writer.written;
        let step = Duration::from_secs_f64((left as f64 / o.hour_rate.max(1) as f64).min(1.0));
        writer.at_rate(o.hour_rate, step.max(Duration::from_millis(20)))?;
    }
    // Let the dashboard take in the backlog, then the last sample.
    std::thread::sleep(Duration::from_secs(3));
    let last = rss_kib(pid)?;
    samples.push(last);
    println!(
        "  {:>5.0} s  {:>9} executions  RSS {:>7.1} MiB (end)",
        start.elapsed().as_secs_f64(),
        writer.written,
        last as f64 / 1024.0
    );
    let quarter = samples[samples.len() / 4];
    let growth = last as f64 - quarter as f64;
    let flat = growth <= (quarter as f64 * 0.10).max(4096.0);
    println!(
        "dashboard RSS after {} executions: {:.1} MiB ({:+.1} MiB since a quarter of the way): {}",
        writer.written,
        last as f64 / 1024.0,
        growth / 1024.0,
        if flat { "flat" } else { "GROWING" }
    );
    let screen = session.screen()?;
    if !screen.contains("q quit") {
        bail!("the dashboard is no longer on screen:\n{screen}");
    }
    if !flat {
        bail!("the dashboard's memory grew");
    }
    Ok(())
}

/// A real finished record: one `metaclaude run hello`'s result.
fn template_record(bin: &Path, root: &Path, scratch: &Path) -> Result<Value> {
    let dir = scratch.join("template");
    // The result as `run --json` prints it is the record the log sink writes, less the
    // log's own fields.
    let out = Command::new(bin)
        .env("METACLAUDE_LOG_DIR", &dir)
        .args(["run", "hello", "--json", "--no-plugins", "--registry"])
        .arg(root.join("examples/registry/registry.json"))
        .output()
        .context("cannot run metaclaude")?;
    let mut v: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "metaclaude run --json printed no JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    v["event"] = "finished".into();
    v["level"] = "INFO".into();
    Ok(v)
}

/// Appends records to the live file at a steady rate, in batches every 10 ms.
struct Writer {
    template: Value,
    file: std::fs::File,
    written: u64,
}

const SCRIPTS: [&str; 8] = [
    "hello",
    "validate_api_schema",
    "summarize_json",
    "fetch_data",
    "report",
    "deploy",
    "lint",
    "backup",
];

impl Writer {
    fn new(template: &Value, live: &Path) -> Result<Writer> {
        Ok(Writer {
            template: template.clone(),
            file: std::fs::OpenOptions::new().append(true).open(live)?,
            written: 0,
        })
    }

    /// Writes `rate` records a second for `for_`, whole lines in one write each batch.
    fn at_rate(&mut self, rate: u64, for_: Duration) -> Result<()> {
        let start = Instant::now();
        let base = self.written;
        let mut buf = String::new();
        while start.elapsed() < for_ {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            buf.clear();
            while self.written - base < due {
                buf.push_str(&self.record());
                buf.push('\n');
            }
            if !buf.is_empty() {
                self.file.write_all(buf.as_bytes())?;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn record(&mut self) -> String {
        let n = self.written;
        self.written += 1;
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        let mut v = self.template.clone();
        v["execution_id"] = format!("01BENCH{n:019}").into();
        v["script_id"] = SCRIPTS[(n % SCRIPTS.len() as u64) as usize].into();
        v["success"] = (!n.is_multiple_of(10)).into();
        v["started_at"] = now.clone().into();
        v["finished_at"] = now.into();
        v.to_string()
    }
}

fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("the dashboard (pid {pid}) is gone"))?;
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    // After the name: state is field 3; utime 14, stime 15 (1-based over the whole line).
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // USER_HZ is 100 on Linux for every architecture built here.
    Ok(ticks / 100.0)
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(bin: &Path, logs: &Path) -> Result<Tmux> {
        let socket = format!("metaclaude-bench-{}", std::process::id());
        let command = format!(
            "env -u RUST_LOG '{}' dashboard-terminal --log --log-dir '{}'; sleep 600",
            bin.display(),
            logs.display()
        );
        run(Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "200", "-y", "50", "-s", "bench", &command]))?;
        Ok(Tmux { socket })
    }

    fn screen(&self) -> Result<String> {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "bench"])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen()?;
            if ready(&screen) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the screen did not show {what} within 60 s:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn dashboard_pid(&self) -> Result<u32> {
        let out = Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "display-message",
                "-p",
                "-t",
                "bench",
                "#{pane_pid}",
            ])
            .output()?;
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))?;
        children
            .split_whitespace()
            .next()
            .context("the dashboard process is not running")?
            .parse()
            .context("a pid")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}
