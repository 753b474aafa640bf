//! `cargo xtask soak [--minutes N] [--rate R] [--warmup M] [--clients C] [--keep-recent N] [--keep]`:
//! one long-running `metaclaude serve` under a mixed workload, sampled every minute, each
//! figure judged on its slope after warm-up.
//!
//! * The server: the debug build, on free loopback ports, with a plugins folder of the
//!   default log sink (writing into the soak's temporary directory), a recorder and a
//!   hostile plugin (both the fixture sink), each granted what its manifest asks as an
//!   operator grants it (`plugins grant --all --yes`), and a copy of the example registry.
//!   The soak runs its own copy of the binary (and of each component), so building while
//!   it runs changes nothing it uses.
//! * The workload ([`workload`]): `--clients` threads POSTing a weighted mix of the
//!   example scripts (all seven categories, `flaky` for retries, `big_output`, escaping
//!   descendants, unknown ids and bad inputs) at `--rate` executions a second in all, one
//!   in four with `?wait=false`; every waited-for result is checked against the outcome
//!   its script is written to produce. Two live-feed clients ([`feed`]) read `/ws` on
//!   each listener the whole time.
//! * Every minute at half past ([`actions`]): the hostile plugin made good or hostile
//!   again (reloaded with the recorder; quarantined again), or the registry changed.
//! * Every minute on the minute: the clients pause, the soak waits for nothing to run,
//!   and samples the server ([`probe`]): RSS, descriptors, threads, children, processes
//!   of finished executions, execution cgroups; then the API's totals. Minute 0 is taken
//!   before any load.
//! * At the end ([`report`]): the table, the least-squares slope per hour of each figure
//!   over the minutes from `--warmup` on and its verdict; then SIGTERM: the server must
//!   exit 0, every execution the API answered must be in the log and reach the recorder,
//!   and nothing of the server (cgroups, processes) may be left. Exit status 1 names
//!   every figure that grew and every check that failed.

mod actions;
mod api;
mod feed;
mod heap;
mod probe;
mod report;
mod setup;
mod workload;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};

use actions::Action;
use api::Api;
use feed::{FeedClient, FeedTally};
use report::Row;
use setup::{Server, SoakDir};
use workload::{Tally, Workload};

/// `cargo xtask soak`'s options.
#[derive(Debug, Clone)]
struct Options {
    minutes: u64,
    rate: f64,
    warmup: u64,
    clients: usize,
    keep_recent: u64,
    keep: bool,
    heaptrack: bool,
}

const USAGE: &str = "usage: cargo xtask soak [--minutes N] [--rate R] [--warmup M] [--clients C] [--keep-recent N] [--keep] [--heaptrack]
  --minutes N       how long the load runs (default 10)
  --rate R          executions per second over all clients (default 2)
  --warmup M        minutes not judged (default: a sixth of the run, 1 to 10; the server's
                    60-minute percentile windows fill for an hour: judge memory with 60)
  --clients C       client threads (default 3)
  --keep-recent N   the server's --keep-recent (default 200: its ring fills during warm-up)
  --keep            keep the temporary directory (kept anyway when the soak fails)
  --heaptrack       run the server under heaptrack: the heap in use each minute, and what is never freed";

/// The options that take a value.
const VALUE_FLAGS: &[&str] = &[
    "--minutes",
    "--rate",
    "--warmup",
    "--clients",
    "--keep-recent",
];

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options {
            minutes: 10,
            rate: 2.0,
            warmup: 0,
            clients: 3,
            keep_recent: 200,
            keep: false,
            heaptrack: false,
        };
        let mut warmup = None;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "--keep" {
                o.keep = true;
                continue;
            }
            if flag == "--heaptrack" {
                o.heaptrack = true;
                continue;
            }
            if !VALUE_FLAGS.contains(&flag.as_str()) {
                bail!("unknown option {flag}\n{USAGE}");
            }
            let value = it
                .next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
            let bad = || format!("{flag} {value}: not a valid value\n{USAGE}");
            match flag.as_str() {
                "--minutes" => o.minutes = value.parse().with_context(bad)?,
                "--rate" => o.rate = value.parse().with_context(bad)?,
                "--warmup" => warmup = Some(value.parse().with_context(bad)?),
                "--clients" => o.clients = value.parse().with_context(bad)?,
                "--keep-recent" => o.keep_recent = value.parse().with_context(bad)?,
                _ => unreachable!("VALUE_FLAGS names every option that takes a value"),
            }
        }
        o.warmup = warmup.unwrap_or((o.minutes / 6).clamp(1, 10));
        if o.minutes < 2 || o.warmup >= o.minutes {
            bail!(
                "--minutes must be at least 2 and more than --warmup ({})\n{USAGE}",
                o.warmup
            );
        }
        if !(o.rate > 0.0 && o.rate <= 100.0) || o.clients == 0 || o.keep_recent == 0 {
            bail!("--rate must be in (0, 100], --clients and --keep-recent at least 1\n{USAGE}");
        }
        Ok(o)
    }
}

/// Everything the soak found.
struct Findings {
    rows: Vec<Row>,
    actions: Vec<Action>,
    feeds: Vec<FeedTally>,
    /// Pass/fail checks beyond the figures: (what, Ok(detail) or Err(why)).
    checks: Vec<(String, Result<String, String>)>,
    log_summary: String,
}

pub fn soak(root: &Path, args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let opts = Options::parse(args)?;
    crate::ensure_prerequisites(false)?;
    crate::build_plugins(root, crate::PluginSet::All)?;
    crate::step("building metaclaude (the debug build: the soak looks for leaks, not speed)");
    crate::run(crate::cargo("build").args(["--quiet", "-p", "metaclaude-host"]))?;
    let dir = SoakDir::create(root)?;
    // Its own copy, like the plugins' components: a build during the soak leaves the
    // server and every command the soak runs on the binary it started with.
    let bin = dir.path.join("metaclaude");
    std::fs::copy(root.join("target/debug/metaclaude"), &bin)
        .context("copying target/debug/metaclaude into the soak's directory")?;
    dir.grant(&bin)?;
    crate::step(&format!(
        "soak: {} minutes at {} executions/s ({} clients), warm-up {} minutes, in {}",
        opts.minutes,
        opts.rate,
        opts.clients,
        opts.warmup,
        dir.path.display()
    ));
    let load_at_start = loadavg();
    let heaptrack = opts.heaptrack.then(|| heap::record_base(&dir.path));
    let mut server = Server::start(&bin, &dir, opts.keep_recent, heaptrack.as_deref())?;
    eprintln!(
        "soak: metaclaude serve pid {} on http://{} and ws://{}",
        server.pid, server.http, server.ws
    );
    let found = drive(&opts, &bin, &dir, &mut server);
    let mut found = match found {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "soak: stopped: {e:#}\nsoak: kept {} (the server's stderr is server.stderr)",
                dir.path.display()
            );
            return Err(e);
        }
    };
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let out = root.join("target/soak").join(stamp.to_string());
    std::fs::create_dir_all(&out)?;
    let heap_summary = match &heaptrack {
        Some(base) => {
            crate::step("soak: reading heaptrack's record (heaptrack_print)");
            heap::analyse(base, &mut found.rows, &out)
                .unwrap_or_else(|e| format!("heaptrack: {e:#}"))
        }
        None => String::new(),
    };
    let verdicts = report::judge(&found.rows, opts.warmup);
    let mut text = final_report(&opts, &found, &verdicts, &load_at_start);
    if !heap_summary.is_empty() {
        text.push('\n');
        text.push_str(&heap_summary);
        text.push('\n');
    }
    println!("{text}");
    std::fs::write(out.join("report.txt"), &text)?;
    std::fs::write(out.join("minutes.csv"), report::csv(&found.rows))?;
    let _ = std::fs::copy(&server.stderr, out.join("server.stderr"));
    eprintln!(
        "soak: report, per-minute CSV and the server's stderr in {}",
        out.display()
    );
    let mut failed: Vec<String> = verdicts
        .iter()
        .filter(|v| !v.ok)
        .map(|v| format!("{} grows ({:.2} {}/h)", v.name, v.slope_per_hour, v.unit))
        .collect();
    failed.extend(
        found
            .checks
            .iter()
            .filter_map(|(what, r)| r.as_ref().err().map(|e| format!("{what}: {e}"))),
    );
    if failed.is_empty() {
        if opts.keep {
            eprintln!("soak: kept {}", dir.path.display());
        } else {
            dir.remove();
        }
        eprintln!("soak: passed");
        Ok(())
    } else {
        eprintln!("soak: kept {}", dir.path.display());
        bail!("soak failed:\n  {}", failed.join("\n  "))
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn sleep_until(at: Instant, stop: &AtomicBool) {
    while Instant::now() < at && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(
            at.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200)),
        );
    }
}

/// Runs the soak against a started server, then stops it and checks what it left.
fn drive(opts: &Options, bin: &Path, dir: &SoakDir, server: &mut Server) -> Result<Findings> {
    let api = Api::new(&server.http);
    let ready_by = Instant::now() + Duration::from_secs(120);
    while api.get("/readyz").map(|r| r.status).ok() != Some(200) {
        if Instant::now() > ready_by {
            bail!("the server was not ready within 120 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every plugin of the folder is listed, or the soak would run without its log or its
    // recorder: the server names what it refused.
    for name in ["log-sink", "recorder", setup::HOSTILE] {
        actions::plugin_state(&api, name)?;
    }
    let mut rows = vec![sample(0, server.pid, dir, &api, None)?];
    eprintln!("{}", report::minute_line(&rows[0], 0));

    let stopping = Arc::new(AtomicBool::new(false));
    let feeds = [
        FeedClient::start(format!("ws://{}/ws", server.http), stopping.clone()),
        FeedClient::start(
            format!("ws://{}/ws?kinds=finished", server.ws),
            stopping.clone(),
        ),
    ];
    let schema = dir
        .registry
        .with_file_name("data/api.json")
        .display()
        .to_string();
    let workload = Workload::new(api.clone(), opts.rate, schema);
    let t0 = Instant::now();
    workload.burst("slow", 3 * setup::CONCURRENCY);
    let clients = workload.spawn(opts.clients);
    // Held by a change and by a sample: neither happens in the middle of the other.
    let turn = Mutex::new(());
    let done = AtomicBool::new(false);
    let (rows, actions) = std::thread::scope(|s| -> Result<(Vec<Row>, Vec<Action>)> {
        let conductor = s.spawn(|| {
            let mut made = Vec::new();
            for step in 0..opts.minutes {
                sleep_until(t0 + Duration::from_secs(step * 60 + 30), &done);
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let _turn = turn.lock().unwrap();
                let a = actions::perform(step, dir, &api);
                match &a.outcome {
                    Ok(detail) => eprintln!(
                        "soak: minute {:>3}  {}: {detail} ({:.1}s)",
                        step,
                        a.what,
                        a.took.as_secs_f64()
                    ),
                    Err(e) => eprintln!("soak: minute {:>3}  {}: FAILED: {e}", step, a.what),
                }
                made.push(a);
            }
            made
        });
        let sampled = (|| -> Result<()> {
            for minute in 1..=opts.minutes {
                sleep_until(
                    t0 + Duration::from_secs(minute * 60),
                    &AtomicBool::new(false),
                );
                let _turn = turn.lock().unwrap();
                let row = sample(minute, server.pid, dir, &api, Some(&workload))?;
                eprintln!(
                    "{}",
                    report::minute_line(&row, rows.last().map_or(0, |r| r.executions))
                );
                rows.push(row);
            }
            Ok(())
        })();
        done.store(true, Ordering::SeqCst);
        let made = conductor.join().expect("the conductor thread");
        sampled.map(|()| (std::mem::take(&mut rows), made))
    })?;

    crate::step("soak: stopping (SIGTERM) while the clients stop sending");
    workload.stop();
    stopping.store(true, Ordering::SeqCst);
    server.terminate()?;
    for c in clients {
        let _ = c.join();
    }
    let status = server.wait(Duration::from_secs(120))?;
    let feeds: Vec<FeedTally> = feeds.into_iter().map(FeedClient::finish).collect();
    let tally = workload.tally();
    let mut checks = Vec::new();
    checks.push((
        "server exit".to_string(),
        if status.success() {
            Ok("exit status 0 after SIGTERM".to_string())
        } else {
            Err(format!("{status} after SIGTERM"))
        },
    ));
    checks.extend(after_exit(
        bin, dir, server.pid, &tally, &feeds, &rows, &actions,
    ));
    let log_summary = log_summary(bin, dir);
    Ok(Findings {
        rows,
        actions,
        feeds,
        checks,
        log_summary,
    })
}

/// Pauses the workload, waits for nothing to run, and samples the server.
fn sample(
    minute: u64,
    pid: u32,
    dir: &SoakDir,
    api: &Api,
    workload: Option<&Workload>,
) -> Result<Row> {
    let started = Instant::now();
    let limit = Duration::from_secs(90);
    let mut quiet = workload.is_none_or(|w| w.pause(limit));
    // Executions accepted with ?wait=false may still run.
    let deadline = Instant::now() + limit;
    loop {
        let stats = api.get_json("/api/v1/stats?period=1&top=1")?;
        if stats["running"].as_u64() == Some(0) {
            break;
        }
        if Instant::now() > deadline {
            quiet = false;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let the cgroup pool take back the last execution's cgroup, closed connections go,
    // and idle threads of the server's blocking pool end (they stay 3 s: `cli::mod.rs`), so
    // that the thread count is of the threads the server keeps, not of the last burst.
    std::thread::sleep(Duration::from_millis(3500));
    let quiesce_seconds = started.elapsed().as_secs_f64();
    let at_seconds = probe::seconds_since_start(pid).unwrap_or(f64::NAN);
    let process = probe::process(pid, &dir.path)?;
    let cgroups = probe::cgroups(pid);
    let strays = strays(api);
    let stats = api.get_json("/api/v1/stats?period=1&top=1")?;
    let hostile = actions::hostile_state(api)
        .map(|p| p["state"].as_str().unwrap_or("?").to_string())
        .unwrap_or_else(|e| format!("? ({e})"));
    if let Some(w) = workload {
        w.resume();
    }
    let total = |k: &str| stats["since_start"][k].as_u64().unwrap_or(0);
    Ok(Row {
        minute,
        process,
        cgroups,
        strays,
        executions: total("executions"),
        failed: total("failed"),
        retries: total("retries"),
        hostile,
        quiesce_seconds,
        quiet,
        at_seconds,
        heap_kib: None,
    })
}

/// Processes of finished executions of this server still alive: every process carrying
/// `METACLAUDE_EXECUTION_ID` of an execution the server says finished, still there a
/// second later (one being killed at that moment is given the time to go).
fn strays(api: &Api) -> Vec<String> {
    let finished = |id: &str| {
        api.get_json(&format!("/api/v1/executions/{id}"))
            .is_ok_and(|v| v["state"].is_null() && v["success"].is_boolean())
    };
    let candidates: Vec<probe::Carrier> = probe::execution_processes()
        .into_iter()
        .filter(|c| finished(&c.execution_id))
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    std::thread::sleep(Duration::from_secs(1));
    let again = probe::execution_processes();
    candidates
        .into_iter()
        .filter(|c| {
            again
                .iter()
                .any(|a| a.pid == c.pid && a.execution_id == c.execution_id)
        })
        .map(|c| {
            format!(
                "pid {} (parent {}) of finished execution {}: {}",
                c.pid, c.parent, c.execution_id, c.command
            )
        })
        .collect()
}

/// Execution ids in `metaclaude logs --json` of the soak's log.
fn logged_ids(bin: &Path, dir: &SoakDir) -> Result<HashSet<String>> {
    let out = Command::new(bin)
        .args(["logs", "--json", "--log-dir"])
        .arg(&dir.logs)
        .output()
        .context("metaclaude logs")?;
    if !out.status.success() {
        bail!(
            "metaclaude logs --json: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["execution_id"].as_str().map(str::to_string))
        .collect())
}

/// `metaclaude logs --stats` of the soak's log (the whole run, by the log).
fn log_summary(bin: &Path, dir: &SoakDir) -> String {
    Command::new(bin)
        .args(["logs", "--stats", "--log-dir"])
        .arg(&dir.logs)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("metaclaude logs --stats: {e}"))
}

/// `what` missing from `have`, as a check.
fn all_in(ids: &[String], have: &HashSet<String>, place: &str) -> Result<String, String> {
    let missing: Vec<&String> = ids.iter().filter(|id| !have.contains(*id)).collect();
    if missing.is_empty() {
        Ok(format!(
            "all {} executions the API answered are {place}",
            ids.len()
        ))
    } else {
        let first: Vec<&str> = missing.iter().take(5).map(|s| s.as_str()).collect();
        Err(format!(
            "{} of {} executions the API answered are not {place} (first: {})",
            missing.len(),
            ids.len(),
            first.join(", ")
        ))
    }
}

/// The checks once the server has exited.
fn after_exit(
    bin: &Path,
    dir: &SoakDir,
    pid: u32,
    tally: &Tally,
    feeds: &[FeedTally],
    rows: &[Row],
    actions: &[Action],
) -> Vec<(String, Result<String, String>)> {
    let mut checks = Vec::new();
    checks.push((
        "log".to_string(),
        logged_ids(bin, dir)
            .map_err(|e| format!("{e:#}"))
            .and_then(|logged| all_in(&tally.ids, &logged, "in the log (metaclaude logs --json)")),
    ));
    let recorded: HashSet<String> = std::fs::read_to_string(dir.recorder_out.join("events.txt"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_suffix(" finished").map(str::to_string))
        .collect();
    checks.push((
        "recorder".to_string(),
        all_in(
            &tally.ids,
            &recorded,
            "recorded by the recorder plugin (reloaded every other minute)",
        ),
    ));
    let left = probe::cgroups(pid);
    checks.push((
        "cgroups after exit".to_string(),
        if left.folders.is_empty() {
            Ok("no metaclaude-<pid>-* folder left".to_string())
        } else {
            Err(format!(
                "left behind: {:?} ({} execution cgroups)",
                left.folders, left.executions
            ))
        },
    ));
    let ours: HashSet<&String> = tally
        .ids
        .iter()
        .chain(feeds.iter().flat_map(|f| f.ids.iter()))
        .collect();
    let alive: Vec<String> = probe::execution_processes()
        .into_iter()
        .filter(|c| ours.contains(&c.execution_id))
        .map(|c| format!("pid {} of {}: {}", c.pid, c.execution_id, c.command))
        .collect();
    checks.push((
        "processes after exit".to_string(),
        if alive.is_empty() {
            Ok("no process of any execution left".to_string())
        } else {
            Err(alive.join("; "))
        },
    ));
    let failed: Vec<String> = actions
        .iter()
        .filter_map(|a| {
            a.outcome
                .as_ref()
                .err()
                .map(|e| format!("minute {} {}: {e}", a.minute, a.what))
        })
        .collect();
    checks.push((
        "reloads and quarantines".to_string(),
        if failed.is_empty() {
            Ok(format!("{} changes, each verified", actions.len()))
        } else {
            Err(failed.join("; "))
        },
    ));
    checks.push((
        "outcomes".to_string(),
        if tally.mismatches == 0 {
            Ok(format!(
                "every waited-for result as its script is written ({:?})",
                tally.outcomes
            ))
        } else {
            Err(format!(
                "{} unexpected: {}",
                tally.mismatches,
                tally.first_mismatches.join("; ")
            ))
        },
    ));
    checks.push((
        "requests".to_string(),
        if tally.errors == 0 {
            Ok(format!(
                "{} sent, {} answered ({} without waiting), {} refused with 429",
                tally.sent, tally.answered, tally.not_waited, tally.rejected
            ))
        } else {
            Err(format!(
                "{} failed: {}",
                tally.errors,
                tally.first_errors.join("; ")
            ))
        },
    ));
    for f in feeds {
        checks.push((
            format!("live feed {}", f.url),
            if f.gaps == 0 && f.last_end == "closed 1001" && f.connects == 1 {
                Ok(format!(
                    "{} events, {} alert changes, {} snapshots ({} lagged), no gap, closed with 1001",
                    f.events, f.alerts, f.snapshots, f.lagged
                ))
            } else {
                Err(format!(
                    "{} connections, {} gaps, ended: {}",
                    f.connects, f.gaps, f.last_end
                ))
            },
        ));
    }
    let noisy: Vec<u64> = rows.iter().filter(|r| !r.quiet).map(|r| r.minute).collect();
    checks.push((
        "quiet samples".to_string(),
        if noisy.is_empty() {
            Ok("nothing ran at any sample".to_string())
        } else {
            Err(format!("something still ran at minutes {noisy:?}"))
        },
    ));
    checks
}

fn final_report(
    opts: &Options,
    f: &Findings,
    verdicts: &[report::Verdict],
    load_at_start: &str,
) -> String {
    let mut out = String::new();
    let last = f.rows.last().map_or(0, |r| r.minute);
    let _ = writeln!(
        out,
        "\n== soak: {} minutes, {} executions/s requested over {} clients, warm-up {} minutes, debug build, --keep-recent {}\n\
         machine: {} cores, load average {} at the start, {} at the end",
        opts.minutes,
        opts.rate,
        opts.clients,
        opts.warmup,
        opts.keep_recent,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_at_start,
        loadavg()
    );
    out.push_str(&report::table(&f.rows));
    out.push('\n');
    out.push_str(&report::verdict_table(verdicts, opts.warmup, last));
    let judged = f.rows.iter().find(|r| r.minute >= opts.warmup);
    if let (Some(a), Some(b)) = (judged, f.rows.last()) {
        let _ = writeln!(
            out,
            "\ndescriptors at minute {}: {:?}\nthreads at minute {}: {:?}",
            b.minute, b.process.fd_kinds, b.minute, b.process.thread_names
        );
        let _ = writeln!(
            out,
            "descriptors, minute {} -> {}: {}\nthreads, minute {} -> {}: {}",
            a.minute,
            b.minute,
            report::breakdown_diff(&a.process.fd_kinds, &b.process.fd_kinds),
            a.minute,
            b.minute,
            report::breakdown_diff(&a.process.thread_names, &b.process.thread_names)
        );
    }
    for r in f
        .rows
        .iter()
        .filter(|r| !r.strays.is_empty() || !r.cgroups.populated.is_empty())
    {
        let _ = writeln!(
            out,
            "minute {}: strays {:?}, populated cgroups {:?}",
            r.minute, r.strays, r.cgroups.populated
        );
    }
    let executions = f.rows.last().map_or(0, |r| r.executions);
    let _ = writeln!(
        out,
        "\nexecutions done: {executions} ({:.2}/s over the run), {} changes (reloads, quarantines, registry)",
        executions as f64 / (last.max(1) * 60) as f64,
        f.actions.len()
    );
    for feed in &f.feeds {
        if feed.url.contains("kinds=finished") {
            let _ = writeln!(
                out,
                "finished executions by outcome (live feed): {:?}",
                feed.finished
            );
        }
    }
    let _ = writeln!(
        out,
        "\nthe log (metaclaude logs --stats):\n{}",
        f.log_summary.trim_end()
    );
    out.push_str("\nchecks:\n");
    for (what, r) in &f.checks {
        match r {
            Ok(detail) => {
                let _ = writeln!(out, "  ok      {what}: {detail}");
            }
            Err(why) => {
                let _ = writeln!(out, "  FAILED  {what}: {why}");
            }
        }
    }
    out
}
