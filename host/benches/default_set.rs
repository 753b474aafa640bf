//! The whole default plugin set, as `cargo xtask build-plugins` installs it beside the
//! executable (`target/*/plugins/`: the log sink, the Prometheus and StatsD exporters,
//! the alert rules and the console notifier; what is there is what is loaded, and
//! printed), each figure a ratio against a baseline measured in the same run:
//!
//! 1. finished events per second through the default set, with 1 KiB and with 1 MiB of
//!    stdout per execution, against the native no-op sink (C ABI); the host's CPU time per
//!    finished event; the same set with full records (`event_record = "full"`, what
//!    `"figures"` saves) and with the exporters and the rule taking the scripts' output
//!    too; each plugin alone; where the no-op's and the set's time went thread by thread
//!    (`thread_times`: each thread's CPU per event, its share of the time on a CPU and
//!    waiting for one, the thread that paced the host and what it alone would carry on a
//!    core of its own); and the same plugins' work natively (`native_work`), each beside
//!    what it adds in the sandbox, with the set's floor against the CPU the target
//!    leaves;
//! 2. per-execution time of a trivial script in one host with the default set loaded,
//!    against a bare spawn and against the host with no plugins (target 1.02 or less);
//! 3. `metaclaude run` of a trivial script as a whole process with the default set (a
//!    one-shot run loads the plugins that take part in one: the log sink and the StatsD
//!    exporter), against `--no-plugins` and a bare `sh` (targets 5 and 3 ms or less), the
//!    executable freshly copied as an install leaves it, beside the one cargo built; back
//!    to back, and again each run after a pause, as an agent calls it (with `--no-cgroups`
//!    beside, for what the script's cgroups cost then); and back to back with a month of
//!    rotated files (240) in the log directory against the bench's own young log;
//! 4. the same whole process with the StatsD exporter alone, aimed at a target that is
//!    down (nobody listening, a receiver that never reads, an unroutable address) against
//!    one that reads, and the execution's own time against no plugins: a target that is
//!    down costs nothing (`tests/cli/statsd.rs` checks what such a run does).
//!
//! Needs the installed default set: `cargo xtask bench` (or `cargo xtask build-plugins`).

use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use metaclaude::model::{ExecutionEvent, ExecutionResult};
use metaclaude_formats::log_files;

use metaclaude::{ExecutorConfig, Registry, ToolExecutionService};

mod support;
use support::{deliver, execute_timed, load_set, median, ms, root, Rate};
#[path = "support/fresh_memory.rs"]
mod fresh_memory;
#[path = "support/native_work.rs"]
mod native_work;
#[path = "support/stuck_udp.rs"]
mod stuck_udp;
#[path = "support/thread_times.rs"]
mod thread_times;
use stuck_udp::stuck_receiver;
use thread_times::{Accounts, Snapshot};

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_metaclaude"))
}

/// The default set as `cargo xtask build-plugins` installs it beside the executable;
/// prints what it holds.
fn default_set() -> PathBuf {
    let dir = exe().parent().unwrap().join("plugins");
    for name in ["log-sink", "prometheus-exporter", "statsd-exporter"] {
        assert!(
            dir.join(name).join("plugin.toml").is_file(),
            "{} is missing: run `cargo xtask build-plugins` first",
            dir.join(name).display()
        );
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    println!("the default set ({}): {}", dir.display(), names.join(", "));
    dir
}

fn event(i: u64, output: &str) -> ExecutionEvent {
    let mut r = ExecutionResult::new(format!("01BENCH{i:019}"), "validate_api_schema", Utc::now());
    r.specialist = Some(["api-ui-designer", "ops", "qa"][i as usize % 3].into());
    r.success = !i.is_multiple_of(10);
    r.exit_code = Some(if r.success { 0 } else { 1 });
    r.stdout = output.to_string();
    r.inputs = [("schema_file".to_string(), serde_json::json!("api.json"))].into();
    r.session_id = Some("session-123".into());
    r.user = Some("ops".into());
    r.finished_at = r.started_at + chrono::Duration::milliseconds(2 + (i % 97) as i64);
    r.resource_usage.peak_memory_mb = 3.0 + (i % 13) as f64;
    r.resource_usage.cpu_time_seconds = 0.001;
    ExecutionEvent::finished(r)
}

/// A StatsD target on loopback that reads and counts every datagram, so the exporter's
/// sends cost what they cost against a live daemon. It is a process of its own (this
/// executable again, `BENCH_STATSD_DRAIN=1`), as a daemon is: its reads are not the
/// host's CPU.
struct StatsdDrain {
    port: u16,
    child: std::process::Child,
    replies: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl StatsdDrain {
    fn start() -> StatsdDrain {
        use std::io::BufRead;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("BENCH_STATSD_DRAIN", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the StatsD drain");
        let mut replies = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let port = replies
            .next()
            .expect("the drain names its port")
            .unwrap()
            .parse()
            .unwrap();
        StatsdDrain {
            port,
            child,
            replies,
        }
    }

    /// Datagrams received so far.
    fn datagrams(&mut self) -> u64 {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"count\n").unwrap();
        stdin.flush().unwrap();
        self.replies.next().unwrap().unwrap().parse().unwrap()
    }

    /// The drain's side: binds, names its port, counts datagrams, answers each line of
    /// its standard input with the count, and ends with it.
    fn serve() {
        use std::io::BufRead;
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        println!("{}", socket.local_addr().unwrap().port());
        let count = Arc::new(AtomicU64::new(0));
        let counter = count.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            loop {
                if socket.recv(&mut buf).is_ok() {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        for _ in std::io::stdin().lock().lines() {
            println!("{}", count.load(Ordering::Relaxed));
        }
    }
}

impl Drop for StatsdDrain {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A copy of the default set in `into`, with `edit` applied to each manifest's text.
fn copy_set(from: &Path, into: &Path, edit: impl Fn(&str, String) -> String) -> PathBuf {
    for entry in std::fs::read_dir(from).unwrap() {
        let folder = entry.unwrap().path();
        let name = folder.file_name().unwrap().to_string_lossy().to_string();
        let target = into.join(&name);
        std::fs::create_dir_all(&target).unwrap();
        for file in std::fs::read_dir(&folder).unwrap() {
            let file = file.unwrap().path();
            let to = target.join(file.file_name().unwrap());
            if file.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&file).unwrap();
                std::fs::write(to, edit(&name, text)).unwrap();
            } else {
                std::fs::copy(&file, to).unwrap();
            }
        }
    }
    into.to_path_buf()
}

/// The rounds of each host in [`throughput`]. More would say little more on this machine
/// kind: each round writes a host's log onto fresh pages (see `fresh_memory`), and a run
/// of six rounds read the set slower than one of three (0.28 against 0.45, 2026-12-07).
const ROUNDS: usize = 3;

fn median_rate(mut rates: Vec<Rate>) -> Rate {
    rates.sort_by(|a, b| a.events_per_s.total_cmp(&b.events_per_s));
    rates.swap_remove(rates.len() / 2)
}

/// A copy of the set in `tmp` whose exporters block on a full queue: they drop events
/// then (they never hold executions up), and here every event must be processed and
/// counted.
fn blocking_set(set: &Path, tmp: &Path) -> PathBuf {
    copy_set(set, &tmp.join("blocking"), |_, text| {
        text.replace("on_full = \"drop_newest\"", "on_full = \"block\"")
    })
}

/// A copy of `set` in `into` with the plugin `name` alone.
fn alone_in_set(set: &Path, into: &Path, name: &str) -> PathBuf {
    copy_set(set, into, |_, text| text);
    for other in std::fs::read_dir(into).unwrap() {
        let other = other.unwrap().path();
        if other.file_name().unwrap() != name {
            std::fs::remove_dir_all(other).unwrap();
        }
    }
    assert!(into.join(name).is_dir(), "no plugin {name} in the set");
    into.to_path_buf()
}

fn throughput(tmp: &Path, set: &Path, native: &Path, drain: &StatsdDrain) {
    let set = &blocking_set(set, tmp);
    // The set as it was before `event_record = "figures"`: full records (without the
    // scripts' output for the counting plugins); and those taking the output too.
    let counting = |text: &str, instead: &str| {
        let json = text.contains("event_json = true");
        text.replace(
            "event_record = \"figures\"",
            if json { "" } else { instead },
        )
    };
    let full_records = copy_set(set, &tmp.join("full-records"), |_, text| {
        counting(&text, "event_output = false")
    });
    let all_output = copy_set(set, &tmp.join("with-output"), |_, text| {
        counting(&text, "event_output = true")
    });
    // Each plugin of the set that takes events, alone in a host: what each costs.
    let mut alone: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(set).unwrap() {
        let folder = entry.unwrap().path();
        let manifest = std::fs::read_to_string(folder.join("plugin.toml")).unwrap();
        if manifest.contains("kind = \"notifier\"") {
            continue;
        }
        let name = folder.file_name().unwrap().to_string_lossy().to_string();
        let dir = alone_in_set(set, &tmp.join("alone").join(&name), &name);
        alone.push((format!("{name} alone"), dir));
    }
    alone.sort();
    for (label, size, n) in [("1 KiB", 1024, 20_000u64), ("1 MiB", 1 << 20, 200)] {
        let output: String = "x".repeat(size - 1) + "\n";
        let events: Vec<ExecutionEvent> = (0..n).map(|i| event(i, &output)).collect();
        let mut hosts = vec![
            (
                "native no-op sink (C ABI)".to_string(),
                load_set(native, tmp, drain.port),
            ),
            ("default set".to_string(), load_set(set, tmp, drain.port)),
            (
                "default set, full records".to_string(),
                load_set(&full_records, tmp, drain.port),
            ),
            (
                "default set, exporters take output".to_string(),
                load_set(&all_output, tmp, drain.port),
            ),
        ];
        for (name, dir) in &alone {
            hosts.push((name.clone(), load_set(dir, tmp, drain.port)));
        }
        let mut rates: Vec<Vec<Rate>> = hosts.iter().map(|_| Vec::new()).collect();
        // The native no-op's and the default set's threads, over their rounds.
        let mut by_thread = [Accounts::default(), Accounts::default()];
        let emitter = thread_times::current_tid();
        // Interleaved rounds, so that drift in the machine's load hits each alike.
        for _ in 0..ROUNDS {
            for (i, (_, host)) in hosts.iter().enumerate() {
                // Threads are read only around the rounds accounted for.
                let before = by_thread.get(i).map(|_| Snapshot::now());
                rates[i].push(deliver(&events, host));
                if let (Some(accounts), Some(before)) = (by_thread.get_mut(i), before) {
                    accounts.add(&before, &Snapshot::now(), emitter);
                }
            }
        }
        for (_, host) in &hosts {
            // Notifiers take alerts, not events.
            let takes_events = |p: &metaclaude::plugin::PluginInfo| {
                p.kind != metaclaude::plugin::manifest::PluginKind::Notifier
            };
            for p in host.list().into_iter().filter(takes_events) {
                assert_eq!(
                    p.delivered,
                    ROUNDS as u64 * n,
                    "{}: every event delivered (dropped {}, failures {}, last error {:?})",
                    p.name,
                    p.dropped,
                    p.failures,
                    p.last_error
                );
            }
        }
        let ranges: Vec<(f64, f64)> = rates
            .iter()
            .map(|r| {
                r.iter().fold((f64::MAX, 0.0f64), |(lo, hi), r| {
                    (lo.min(r.events_per_s), hi.max(r.events_per_s))
                })
            })
            .collect();
        let rates: Vec<Rate> = rates.into_iter().map(median_rate).collect();
        let fresh = fresh_memory::measure(tmp);
        println!("{n} finished events of {label} stdout each (median of {ROUNDS} interleaved rounds; the rounds' range):");
        // A log line is the event's JSON with the log's own head in front: as long, near
        // enough, for what the page cache takes.
        let line = serde_json::to_string(&events[0]).unwrap().len() as f64;
        let target = if size < 1 << 20 { 0.5 } else { 0.6 };
        println!(
            "  this machine after the rounds: 64 MiB of new file data written at {:.0} MB/s, the same pages rewritten at {:.0} MB/s ({:.1}x): a log line of {:.1} KiB onto fresh pages {:.2} µs, onto reused ones {:.2}; at {target} of the no-op's events/s, the log sink's worker has {:.2} µs per event",
            fresh.new_file_mb_s,
            fresh.rewritten_mb_s,
            fresh.rewritten_mb_s / fresh.new_file_mb_s,
            line / 1024.0,
            line / fresh.new_file_mb_s,
            line / fresh.rewritten_mb_s,
            1e6 / (target * rates[0].events_per_s)
        );
        for (((name, _), rate), (lo, hi)) in hosts.iter().zip(&rates).zip(&ranges) {
            println!(
                "  {name:<36} {:>10.0} events/s   CPU {:>8.1} µs/event   ({lo:.0} to {hi:.0})",
                rate.events_per_s,
                rate.cpu_per_event.as_secs_f64() * 1e6
            );
        }
        println!(
            "  ratio default set / native no-op     {:>10.2}",
            rates[1].events_per_s / rates[0].events_per_s
        );
        print_by_thread(
            &hosts[..2],
            &by_thread,
            ROUNDS as u64 * n,
            rates[0].events_per_s,
        );
        let saves =
            |more: &Rate| more.cpu_per_event.as_secs_f64() / rates[1].cpu_per_event.as_secs_f64();
        println!(
            "  event_record = \"figures\" saves       {:>10.2}x CPU per event (against full records)",
            saves(&rates[2])
        );
        println!(
            "  ... and against taking the output    {:>10.2}x",
            saves(&rates[3])
        );
        let each: f64 = rates[4..]
            .iter()
            .map(|r| r.cpu_per_event.as_secs_f64() * 1e6)
            .sum();
        println!("  the plugins alone, summed            {each:>10.1} µs/event CPU");
        for (_, host) in &hosts {
            host.shutdown();
        }
        let alone: Vec<(&str, &Rate)> = hosts[4..]
            .iter()
            .map(|(name, _)| name.trim_end_matches(" alone"))
            .zip(&rates[4..])
            .collect();
        let small = size < 1 << 20;
        without_the_sandbox(
            &events, tmp, drain.port, &rates[0], &rates[1], &alone, target, small,
        );
        let _ = std::fs::remove_dir_all(tmp.join("logs"));
    }
}

/// Where the native no-op's and the default set's time went, thread by thread, over
/// their rounds of `events` in all (`by_thread`, in the order of `hosts`): each busy
/// thread's CPU per event and its share of the time on a CPU and runnable but waiting for
/// one; then, for each, the thread that paced it (the one busy or waiting the longest)
/// and what that thread alone would carry on a core of its own, against the no-op's
/// events per second (`noop`).
fn print_by_thread(
    hosts: &[(String, metaclaude::plugin::PluginHost)],
    by_thread: &[Accounts],
    events: u64,
    noop: f64,
) {
    println!(
        "  by thread, over the rounds (CPU per event; share of the time on a CPU, and runnable but waiting for one):"
    );
    for ((name, host), accounts) in hosts.iter().zip(by_thread) {
        println!("    {name}");
        // A worker thread is `plugin-NAME`, as the kernel keeps it: 15 bytes.
        let workers: HashMap<String, String> = host
            .list()
            .into_iter()
            .map(|p| {
                let mut comm = format!("plugin-{}", p.name);
                comm.truncate(comm.floor_char_boundary(15));
                (comm, format!("{}'s worker", p.name))
            })
            .collect();
        let mut busy = accounts.busiest(0.01);
        for t in &mut busy {
            if let Some(worker) = workers.get(&t.name) {
                t.name = worker.clone();
            }
        }
        for t in &busy {
            println!(
                "      {:<30} {:>8.2} µs/event   on a CPU {:>3.0}%   waiting {:>3.0}%",
                t.name,
                t.on_cpu.as_secs_f64() * 1e6 / events as f64,
                100.0 * accounts.fraction(t.on_cpu),
                100.0 * accounts.fraction(t.waiting),
            );
        }
        let pacer = busy
            .iter()
            .max_by(|a, b| (a.on_cpu + a.waiting).cmp(&(b.on_cpu + b.waiting)))
            .expect("a busy thread");
        let alone = events as f64 / pacer.on_cpu.as_secs_f64();
        println!(
            "      paced by {}: on a core of its own, at its CPU per event, {alone:.0} events/s ({:.2} of the no-op's)",
            pacer.name,
            alone / noop
        );
    }
}

/// The set's work natively (`native_work`) beside what each plugin adds in the sandbox,
/// and the set's floor against what `target` times the native no-op's events per second
/// leaves.
///
/// What a plugin alone in a host adds is its CPU per event over the native no-op's; the
/// no-op's includes the host's JSON of each event, which a host pays only when a plugin
/// takes the JSON: so a plugin that does not (all but the log sink) is set against the
/// no-op without the JSON (measured natively here). With large outputs (not `small`) the
/// JSON is most of the no-op's cost and that difference says nothing of the sandbox: only
/// the work is shown then.
#[allow(clippy::too_many_arguments)]
fn without_the_sandbox(
    events: &[ExecutionEvent],
    tmp: &Path,
    statsd_port: u16,
    noop: &Rate,
    set: &Rate,
    alone: &[(&str, &Rate)],
    target: f64,
    small: bool,
) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let json = us(native_work::json_per_event(events, 3));
    let work = native_work::measure(events, tmp, statsd_port, 3);
    println!(
        "  the same plugins' work natively (their crates' logic on one thread, no sandbox; median of 3){}:",
        if small { ", against what each adds alone in a host" } else { "" }
    );
    let mut natively = 0.0;
    let mut sandboxed = 0.0;
    for w in &work {
        natively += us(w.cpu_per_event);
        if !small {
            println!(
                "    {:<22} natively {:>8.1} µs/event",
                w.name,
                us(w.cpu_per_event)
            );
            continue;
        }
        let (_, rate) = alone
            .iter()
            .find(|(name, _)| *name == w.name)
            .unwrap_or_else(|| panic!("{} is not in the set", w.name));
        // Only the log sink takes the event's JSON.
        let base = us(noop.cpu_per_event) - if w.name == "log-sink" { 0.0 } else { json };
        let added = us(rate.cpu_per_event) - base;
        sandboxed += added - us(w.cpu_per_event);
        println!(
            "    {:<22} natively {:>8.1} µs/event   alone in a host, over the host's own {:>8.1}: the sandbox {:>6.1}",
            w.name,
            us(w.cpu_per_event),
            added,
            added - us(w.cpu_per_event)
        );
    }
    println!(
        "    the host's own: the native no-op's {:.1} µs/event, of which the event's JSON {json:.1}",
        us(noop.cpu_per_event)
    );
    let wanted = noop.events_per_s * target;
    if small {
        let floor = us(noop.cpu_per_event) + natively;
        println!(
            "    the set {:.1} µs/event; without the sandbox (the no-op's and the work) {floor:.1}; the sandbox's share of the plugins alone {sandboxed:.1}",
            us(set.cpu_per_event),
        );
        // Both cores busy the whole time at `target` times the no-op's events per second.
        let budget = 2.0 / wanted * 1e6;
        println!(
            "    {target} of the no-op's events/s leaves at most {budget:.1} µs/event of CPU (both cores busy the whole time): {}",
            if floor <= budget {
                "the set's work without the sandbox fits in it"
            } else {
                "the set's work without the sandbox does not fit in it"
            }
        );
    } else {
        // Large lines: the log sink's own pace, and how busy it keeps a core (its
        // natively measured work is not a floor here: this host's allocator maps every
        // buffer of 128 KiB or more afresh, the sandbox's memory is reused).
        let (_, sink) = alone
            .iter()
            .find(|(name, _)| *name == "log-sink")
            .expect("the log sink in the set");
        println!(
            "    the log sink alone: {:.0} events/s, {:.2} of a core busy: {target} of the no-op's events/s is {wanted:.0}",
            sink.events_per_s,
            sink.events_per_s * sink.cpu_per_event.as_secs_f64()
        );
    }
}

/// One host of [`throughput`]'s, alone and for longer: what `perf` watches.
fn profile(tmp: &Path, set: &Path, native: &Path, drain: &StatsdDrain, which: &str) {
    let set = &blocking_set(set, tmp);
    let dir = match which {
        "set" => set.clone(),
        "native" => native.to_path_buf(),
        name => alone_in_set(set, &tmp.join("alone"), name),
    };
    // `BENCH_PROFILE_KIB=1024`: 1 MiB outputs (and fewer events) instead of 1 KiB.
    let kib: usize = std::env::var("BENCH_PROFILE_KIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let output: String = "x".repeat(kib * 1024 - 1) + "\n";
    let n = (20_000 / kib as u64).max(50);
    let events: Vec<ExecutionEvent> = (0..n).map(|i| event(i, &output)).collect();
    let host = load_set(&dir, tmp, drain.port);
    println!(
        "profiling {which} (pid {}): 20 rounds of {n} events of {kib} KiB",
        std::process::id()
    );
    let rates: Vec<Rate> = (0..20).map(|_| deliver(&events, &host)).collect();
    let rate = median_rate(rates);
    println!(
        "  {which}: {:.0} events/s, CPU {:.1} µs/event",
        rate.events_per_s,
        rate.cpu_per_event.as_secs_f64() * 1e6
    );
    host.shutdown();
}

fn bare_spawn(script: &Path) -> Duration {
    let start = Instant::now();
    let out = Command::new(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn noop.sh");
    assert!(out.status.success());
    start.elapsed()
}

fn in_one_host(tmp: &Path, set: &Path, drain: &StatsdDrain, runs: usize) {
    let registry = Registry::load(root().join("examples/registry/registry.json")).unwrap();
    let script = root().join("examples/registry/scripts/noop.sh");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let plugins = Arc::new(load_set(set, tmp, drain.port));
    let (bare, with_set) = rt.block_on(async {
        let bare = ToolExecutionService::new(registry.clone(), ExecutorConfig::default());
        let mut with_set = ToolExecutionService::new(registry, ExecutorConfig::default());
        with_set.add_sink(plugins.clone());
        (bare, with_set)
    });
    let once = |s: &ToolExecutionService| execute_timed(&rt, s, "noop");
    for _ in 0..20 {
        bare_spawn(&script);
        once(&bare);
        once(&with_set);
    }
    let (mut spawn, mut none, mut full) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        spawn.push(bare_spawn(&script));
        none.push(once(&bare));
        full.push(once(&with_set));
    }
    plugins.flush();
    for p in plugins.list() {
        assert_eq!(p.failures, 0, "{} failed", p.name);
    }
    let (spawn, none, full) = (median(spawn), median(none), median(full));
    println!("per-execution time of noop.sh in one host ({runs} interleaved runs each, medians):");
    println!("  bare Command spawn+wait          {:>8.3} ms", ms(spawn));
    println!("  host, no plugins                 {:>8.3} ms", ms(none));
    println!("  host, default set loaded         {:>8.3} ms", ms(full));
    println!(
        "  ratio default set / bare spawn   {:>8.3}   (target <= 1.02)",
        full.as_secs_f64() / spawn.as_secs_f64()
    );
    println!(
        "  ratio default set / no plugins   {:>8.3}",
        full.as_secs_f64() / none.as_secs_f64()
    );
    plugins.shutdown();
}

/// One `metaclaude run noop ARGS...` as a whole process, with the plugins of `plugins`
/// (or none), its StatsD exporter aimed at `statsd`: how long it took, and its output. It
/// must succeed.
fn run_noop(
    tmp: &Path,
    args: &[&str],
    plugins: Option<&Path>,
    statsd: (&str, u16),
) -> (Duration, std::process::Output) {
    run_noop_logging_to(&exe(), &tmp.join("run-logs"), tmp, args, plugins, statsd)
}

/// [`run_noop`] with the executable at `exe` and its execution log in `logs`.
fn run_noop_logging_to(
    exe: &Path,
    logs: &Path,
    tmp: &Path,
    args: &[&str],
    plugins: Option<&Path>,
    statsd: (&str, u16),
) -> (Duration, std::process::Output) {
    let mut cmd = Command::new(exe);
    cmd.args(["run", "noop", "--registry"])
        .arg(root().join("examples/registry/registry.json"))
        .args(args)
        .env("METACLAUDE_LOG_DIR", logs)
        .env("METACLAUDE_METRICS_HOST", statsd.0)
        .env("METACLAUDE_METRICS_PORT", statsd.1.to_string())
        .env("METACLAUDE_CACHE_DIR", tmp.join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match plugins {
        Some(dir) => cmd.arg("--plugins").arg(dir),
        None => cmd.arg("--no-plugins"),
    };
    let start = Instant::now();
    let out = cmd.output().expect("spawn metaclaude");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "metaclaude run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, out)
}

/// The static executable (`cargo xtask build-static`), which `cargo xtask bench` builds
/// and names in `METACLAUDE_BENCH_STATIC_EXE`.
fn static_exe() -> Option<PathBuf> {
    std::env::var_os("METACLAUDE_BENCH_STATIC_EXE").map(PathBuf::from)
}

/// One executable's one-shot runs with the default set and without, alternated with
/// `sh noop.sh`: the medians of each (in that order).
fn one_shot_block(
    runs: usize,
    run: &dyn Fn(Option<&Path>) -> Duration,
    set: &Path,
    sh: &dyn Fn() -> Duration,
) -> (Duration, Duration, Duration) {
    // The first run fills the compilation cache; a user's every later run reads it.
    for _ in 0..5 {
        run(Some(set));
        run(None);
        sh();
    }
    let (mut full, mut none, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        full.push(run(Some(set)));
        none.push(run(None));
        bare.push(sh());
    }
    (median(full), median(none), median(bare))
}

fn whole_process(tmp: &Path, set: &Path, drain: &StatsdDrain, runs: usize) {
    let script = root().join("examples/registry/scripts/noop.sh");
    // The executables freshly copied, as an install leaves them, are what the figures are
    // of. A start faults in a few MiB of code: a freshly written file sits in the page
    // cache in large folios, while one whose pages the kernel reclaimed and read back
    // page by page (this machine kind pages cold memory out on its own, and the one cargo
    // built may have sat for hours) takes many more steps a fault. The one cargo built is
    // measured too. Each executable runs in a block of its own: alternated, a run of one
    // 180 MB executable made the next of the other 0.2 to 0.3 ms slower (5.41 against
    // 5.14 ms for the copy with the default set, 100 runs each, 2026-12-07).
    let copy = tmp.join("metaclaude-copy");
    std::fs::copy(exe(), &copy).unwrap();
    let static_copy = static_exe().map(|built| {
        let copy = tmp.join("metaclaude-static-copy");
        std::fs::copy(&built, &copy)
            .unwrap_or_else(|e| panic!("copying the static executable {}: {e}", built.display()));
        copy
    });
    let logs = tmp.join("run-logs");
    let run_with = |exe: &Path, plugins: Option<&Path>| {
        run_noop_logging_to(exe, &logs, tmp, &[], plugins, ("127.0.0.1", drain.port)).0
    };
    // What the later sections measure: the static executable when there is one.
    let main_copy = static_copy.clone().unwrap_or_else(|| copy.clone());
    let run = |plugins: Option<&Path>| run_with(&main_copy, plugins);
    let sh = || {
        let start = Instant::now();
        let status = Command::new("sh")
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        start.elapsed()
    };
    let static_runs = static_copy
        .as_ref()
        .map(|c| one_shot_block(runs, &|p| run_with(c, p), set, &sh));
    let glibc = one_shot_block(runs, &|p| run_with(&copy, p), set, &sh);
    let built = one_shot_block(runs, &|p| run_with(&exe(), p), set, &sh);
    println!("`metaclaude run noop` as a whole process ({runs} runs of each, alternated with `sh noop.sh` in a block for each executable, medians):");
    let block = |what: &str, (full, none, bare): (Duration, Duration, Duration), targets: bool| {
        let target = |t: &str| {
            if targets {
                format!("   (target <= {t})")
            } else {
                String::new()
            }
        };
        println!("  {what}");
        println!("    sh noop.sh                     {:>8.2} ms", ms(bare));
        println!(
            "    metaclaude run --no-plugins    {:>8.2} ms{}",
            ms(none),
            target("3 ms")
        );
        println!(
            "    metaclaude run, default set    {:>8.2} ms{}",
            ms(full),
            target("5 ms")
        );
        println!(
            "    plugins add                    {:>8.2} ms",
            ms(full.saturating_sub(none))
        );
    };
    match static_runs {
        Some(static_runs) => block(
            "the static executable (cargo xtask build-static: musl, mimalloc), freshly copied:",
            static_runs,
            true,
        ),
        None => println!(
            "  the static executable: not measured (METACLAUDE_BENCH_STATIC_EXE is not set; `cargo xtask bench` builds it and sets it)"
        ),
    }
    block(
        "the glibc executable (cargo build --release), freshly copied:",
        glibc,
        static_runs.is_none(),
    );
    block("the glibc executable as cargo built it:", built, false);
    let main_name = if static_runs.is_some() {
        "static"
    } else {
        "glibc"
    };
    // A month of a busy host's log: rotated every 3 hours, 240 files, which a log sink's
    // tidy lists (it skips the tidy when another tidied less than half a grace ago).
    let month = tmp.join("month-logs");
    std::fs::create_dir_all(&month).unwrap();
    let empty_gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())
        .finish()
        .unwrap();
    for k in 1..=240 {
        let at = Utc::now() - chrono::Duration::hours(3 * k);
        let name = log_files::compressed_name(&log_files::rotated_name(at, Some("bench")));
        std::fs::write(month.join(name), &empty_gzip).unwrap();
    }
    let run_month = || {
        run_noop_logging_to(
            &main_copy,
            &month,
            tmp,
            &[],
            Some(set),
            ("127.0.0.1", drain.port),
        )
        .0
    };
    let (mut young, mut month_old) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        young.push(run(Some(set)));
        month_old.push(run_month());
    }
    println!(
        "  the {main_name} executable, a month in the log directory {:>8.2} ms   (240 rotated files; {:.2} ms beside it with the young log)",
        ms(median(month_old)),
        ms(median(young))
    );
    // An agent calls once per tool call, seconds apart, not back to back: what a run
    // right after another finds warm is cold again then (and moving a process into a
    // cgroup after a pause would wait for an RCU grace period, which the host avoids:
    // README, Cgroups). `--no-cgroups` shows what the cgroups cost.
    let spaced = runs.min(20);
    let pause = Duration::from_millis(500);
    let no_cgroups = || {
        let args = ["--no-cgroups"];
        run_noop_logging_to(
            &main_copy,
            &logs,
            tmp,
            &args,
            None,
            ("127.0.0.1", drain.port),
        )
        .0
    };
    let (mut full, mut none, mut bare_host) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..spaced {
        std::thread::sleep(pause);
        full.push(run(Some(set)));
        std::thread::sleep(pause);
        none.push(run(None));
        std::thread::sleep(pause);
        bare_host.push(no_cgroups());
    }
    println!(
        "the {main_name} executable, each run after a {} ms pause ({spaced} interleaved runs each, medians):",
        pause.as_millis()
    );
    println!(
        "  metaclaude run --no-plugins      {:>8.2} ms",
        ms(median(none))
    );
    println!(
        "  ... --no-plugins --no-cgroups    {:>8.2} ms",
        ms(median(bare_host))
    );
    println!(
        "  metaclaude run, default set      {:>8.2} ms   (target <= 5 ms)",
        ms(median(full))
    );
    let logged =
        std::fs::metadata(tmp.join("run-logs").join(log_files::LIVE_FILE)).map_or(0, |m| m.len());
    assert!(logged > 0, "the log sink wrote the runs' log");
}

fn down_targets(tmp: &Path, set: &Path, drain: &StatsdDrain, runs: usize) {
    // The StatsD exporter alone, as installed.
    let exporter = tmp.join("exporter-only/statsd-exporter");
    std::fs::create_dir_all(&exporter).unwrap();
    for file in std::fs::read_dir(set.join("statsd-exporter")).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, exporter.join(file.file_name().unwrap())).unwrap();
    }
    let stuck = stuck_receiver();
    let refusing = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let targets: [(&str, &str, u16); 4] = [
        ("a daemon that reads", "127.0.0.1", drain.port),
        ("nobody listening", "127.0.0.1", refusing),
        (
            "a receiver that never reads",
            "127.0.0.1",
            stuck.local_addr().unwrap().port(),
        ),
        // TEST-NET-3 (RFC 5737): never assigned.
        ("an unroutable address", "203.0.113.1", 8125),
    ];
    // The whole process, and the execution's own wall time as its result reports it.
    let run = |target: Option<(&str, u16)>| -> (Duration, f64) {
        let plugins = target.map(|_| exporter.parent().unwrap());
        let statsd = target.unwrap_or(("127.0.0.1", drain.port));
        let (took, out) = run_noop(tmp, &["--json"], plugins, statsd);
        let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let wall = result["resource_usage"]["wall_time_seconds"]
            .as_f64()
            .unwrap();
        (took, wall)
    };
    let variants: Vec<Option<(&str, u16)>> = std::iter::once(None)
        .chain(targets.iter().map(|(_, host, port)| Some((*host, *port))))
        .collect();
    for variant in &variants {
        run(*variant);
    }
    let mut process: Vec<Vec<Duration>> = variants.iter().map(|_| Vec::new()).collect();
    let mut execution: Vec<Vec<f64>> = variants.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs {
        for (i, variant) in variants.iter().enumerate() {
            let (took, wall) = run(*variant);
            process[i].push(took);
            execution[i].push(wall);
        }
    }
    let process: Vec<Duration> = process.into_iter().map(median).collect();
    let execution: Vec<f64> = execution
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect();
    println!(
        "`metaclaude run noop` with the StatsD exporter alone, its target down ({runs} interleaved runs each, medians):"
    );
    println!(
        "  --no-plugins                        process {:>7.2} ms   execution {:>6.2} ms",
        ms(process[0]),
        execution[0] * 1e3
    );
    for (i, (name, _, _)) in targets.iter().enumerate() {
        println!(
            "  aimed at {name:<27} process {:>7.2} ms   execution {:>6.2} ms   ratio to a daemon that reads {:>5.2}",
            ms(process[i + 1]),
            execution[i + 1] * 1e3,
            process[i + 1].as_secs_f64() / process[1].as_secs_f64()
        );
    }
}

fn main() {
    // The allocator as the binary sets it (`main`), so that the figures are the binary's.
    metaclaude::memory::tune_allocator();
    if std::env::var_os("BENCH_STATSD_DRAIN").is_some() {
        return StatsdDrain::serve();
    }
    let runs: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let tmp = std::env::temp_dir().join(format!("metaclaude-bench-set-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let set = default_set();
    let noop = root().join("plugins/target/native/release/libnative_noop_sink.so");
    assert!(
        noop.is_file(),
        "{} is missing: run `cargo xtask build-plugins` first",
        noop.display()
    );
    let native = tmp.join("native");
    std::fs::create_dir_all(native.join("native-noop")).unwrap();
    std::fs::write(
        native.join("native-noop/plugin.toml"),
        format!(
            "name = \"native-noop\"\nversion = \"1.0.0\"\nkind = \"sink\"\nnative = \"{}\"\n\
             trusted = true\n[limits]\nbatch_max = 256\nqueue = 10000\n",
            noop.display()
        ),
    )
    .unwrap();
    let mut drain = StatsdDrain::start();

    // `BENCH_PROFILE=log-sink` (a plugin of the set, `set` for all of it, or `native`):
    // only that host, 1 KiB events (`BENCH_PROFILE_KIB`) for 20 rounds, for `perf`.
    if let Ok(which) = std::env::var("BENCH_PROFILE") {
        profile(&tmp, &set, &native, &drain, &which);
        let _ = std::fs::remove_dir_all(&tmp);
        return;
    }
    throughput(&tmp, &set, &native, &drain);
    println!(
        "StatsD datagrams received by the drain: {}",
        drain.datagrams()
    );
    in_one_host(&tmp, &set, &drain, runs);
    whole_process(&tmp, &set, &drain, runs / 3);
    down_targets(&tmp, &set, &drain, runs / 10);
    let _ = std::fs::remove_dir_all(&tmp);
}
