//! Many hosts on one log directory at once, as the CLI is naturally used (an agent running
//! tools in parallel, cron jobs, CI steps): `metaclaude run` processes side by side with a
//! `metaclaude batch`, each with its own log-sink instance, a rotation size small enough to
//! rotate every third line. Every execution any of them reported is in the log exactly
//! once, every rotated `.gz` is valid, the live file never grew far past the size before
//! it rotated, every compressed file has exactly one summary, of its own bytes, and
//! `metaclaude logs --stats` counts them all, from the summaries or reading every file; in
//! acknowledged mode the same holds for what was reported when some hosts are killed -9.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use metaclaude_formats::gzip_blocks;
use metaclaude_formats::log_files::{self, Kind};
use serde_json::Value;

use crate::log_sink::write_log_sink;
use crate::util::{bin, example_registry, succeed};

/// `metaclaude run` processes started in all, and how many run at once.
const RUNS: usize = 240;
const PARALLEL_RUNS: usize = 8;
/// Requests given to the `metaclaude batch` running beside them.
const BATCH_REQUESTS: usize = 400;

/// The rotation size every scenario but one uses: a hello line is about 1.2 KB, so the
/// live file rotates every third line or so.
const ROTATION_BYTES: usize = 4096;

/// The log sink's config for [`ROTATION_BYTES`]; compression waits a second, not a
/// minute, to run while the hosts still write.
fn small_rotation() -> String {
    format!("rotation_size_bytes = {ROTATION_BYTES}\ngrace_seconds = 1")
}

/// Lines longer than this are written aside, never through the live file (the sink's
/// largest atomic append, what the host's `check-write` says: 16 MiB; the long names make
/// lines of over 140 KB, which wasmtime-wasi's 64 KiB appends sent aside, and which now
/// go through the live file between the other hosts' appends).
const WRITTEN_ASIDE: usize = 16 * 1024 * 1024;

fn sink(plugins: &Path, logs: &Path, config: &str, acknowledged: bool) {
    let tables = if acknowledged {
        "[acknowledgements]\nenabled = true"
    } else {
        ""
    };
    write_log_sink(plugins, logs, config, tables);
}

/// What the `metaclaude batch` beside the runs is asked: hello with a name of
/// `name_len(i)` more bytes for request `i`, `concurrency` at once.
struct BatchLoad {
    name_len: fn(usize) -> usize,
    concurrency: &'static str,
}

/// Every 25th name is 70 KB: its log line (name in the inputs and in stdout) is longer
/// than one append of wasmtime-wasi's (64 KiB) carried.
const SOME_LONG_LINES: BatchLoad = BatchLoad {
    name_len: |i| if i % 25 == 7 { 70_000 } else { 0 },
    concurrency: "4",
};

/// Lines of about 25 KB, 16 at once: the batch's batches are bigger than one append.
const BIG_BATCHES: BatchLoad = BatchLoad {
    name_len: |_| 12_000,
    concurrency: "16",
};

/// Every `"execution_id": "..."` a host printed (run --json's pretty JSON, batch's lines);
/// a host killed while printing still counts for the ids it printed whole.
fn printed_ids(stdout: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(stdout);
    let mut ids = Vec::new();
    for piece in text.split("\"execution_id\":").skip(1) {
        let piece = piece.trim_start();
        if let Some(rest) = piece.strip_prefix('"') {
            if let Some(end) = rest.find('"') {
                ids.push(rest[..end].to_string());
            }
        }
    }
    ids
}

fn run_host(plugins: &Path) -> Child {
    bin()
        .args(["run", "hello", "--json", "--registry"])
        .arg(example_registry())
        .arg("--plugins")
        .arg(plugins)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What the hosts of one scenario reported, and how they ended.
#[derive(Default)]
struct Reported {
    /// `metaclaude run` processes started: [`RUNS`], or more with [`Until::Compressed`].
    runs: usize,
    ids: Vec<String>,
    killed: usize,
    /// Stderr of hosts that exited on their own with a failure.
    failures: Vec<String>,
}

/// When the runs stop.
#[derive(Clone, Copy)]
enum Until<'a> {
    /// After [`RUNS`].
    Runs,
    /// After [`RUNS`] and once this log directory holds a compressed rotation, so that
    /// compression ran while hosts wrote however fast they are: a file is compressed only
    /// once it has been left a grace (a second here), by a host starting or tidying, and a
    /// fast build can finish [`RUNS`] sooner. At most [`MAX_RUNS`] in all.
    Compressed(&'a Path),
}

/// The bound on runs with [`Until::Compressed`]: at one rotation every third line, a
/// compression is due a second after the first rotation, whatever the build's speed.
const MAX_RUNS: usize = 20 * RUNS;

impl Until<'_> {
    fn done(self, runs: usize) -> bool {
        match self {
            Until::Runs => runs >= RUNS,
            Until::Compressed(logs) => {
                runs >= MAX_RUNS
                    || (runs >= RUNS
                        && std::fs::read_dir(logs).unwrap().any(|entry| {
                            let name = entry.unwrap().file_name();
                            log_files::parse(&name.to_string_lossy()).is_some_and(|parsed| {
                                parsed.kind == (Kind::Rotated { compressed: true })
                            })
                        }))
            }
        }
    }
}

/// Runs `metaclaude run` processes, [`PARALLEL_RUNS`] at a time, `until` says how many,
/// and a `metaclaude batch` of [`BATCH_REQUESTS`] beside them. With `kill`, every third
/// run is killed -9 partway (after 0 to 60 ms) and the batch once it has reported a third
/// of its requests.
fn run_concurrently(plugins: &Path, load: BatchLoad, kill: bool, until: Until) -> Reported {
    let reported = Mutex::new(Reported::default());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut batch = bin()
                .args(["batch", "--concurrency", load.concurrency, "--registry"])
                .arg(example_registry())
                .arg("--plugins")
                .arg(plugins)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = batch.stdin.take().unwrap();
            let feeder = std::thread::spawn(move || {
                for i in 0..BATCH_REQUESTS {
                    let name = format!("b{i}{}", "x".repeat((load.name_len)(i)));
                    let line =
                        format!("{{\"script_id\":\"hello\",\"inputs\":{{\"name\":\"{name}\"}}}}\n");
                    if stdin.write_all(line.as_bytes()).is_err() {
                        return; // killed
                    }
                }
            });
            let mut stderr = batch.stderr.take().unwrap();
            let stderr = std::thread::spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                text
            });
            let mut ids = Vec::new();
            let mut killed = false;
            let mut lines = BufReader::new(batch.stdout.take().unwrap()).lines();
            for line in lines.by_ref() {
                ids.extend(printed_ids(line.unwrap().as_bytes()));
                if kill && ids.len() == BATCH_REQUESTS / 3 {
                    batch.kill().unwrap();
                    killed = true;
                    break;
                }
            }
            for line in lines.map_while(Result::ok) {
                ids.extend(printed_ids(line.as_bytes()));
            }
            let status = batch.wait().unwrap();
            feeder.join().unwrap();
            let stderr = stderr.join().unwrap();
            let mut r = reported.lock().unwrap();
            if killed {
                r.killed += 1;
            } else {
                assert_eq!(ids.len(), BATCH_REQUESTS, "batch: {stderr}");
                if !status.success() {
                    r.failures.push(format!("batch ({status}): {stderr}"));
                }
            }
            r.ids.extend(ids);
        });
        for _ in 0..PARALLEL_RUNS {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if until.done(i) {
                    return;
                }
                reported.lock().unwrap().runs += 1;
                let mut child = run_host(plugins);
                let mut killed = false;
                if kill && i.is_multiple_of(3) {
                    // The kill lands anywhere from start-up to after the sink's write.
                    let at = Instant::now() + Duration::from_millis((i as u64 * 7) % 60);
                    while child.try_wait().unwrap().is_none() {
                        if Instant::now() >= at {
                            killed = child.kill().is_ok();
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                let out = child.wait_with_output().unwrap();
                let ids = printed_ids(&out.stdout);
                let killed =
                    killed && std::os::unix::process::ExitStatusExt::signal(&out.status) == Some(9);
                let mut r = reported.lock().unwrap();
                if killed {
                    r.killed += 1;
                } else if !out.status.success() || ids.len() != 1 {
                    r.failures.push(format!(
                        "run {i} ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                r.ids.extend(ids);
            });
        }
    });
    reported.into_inner().unwrap()
}

/// What the log directory holds once every host is gone.
struct LogContents {
    /// How many times each execution id appears, over the live file and every rotation.
    counts: HashMap<String, usize>,
    lines: usize,
    /// Lines that are not JSON: two appends glued together, or what a killed host left;
    /// the first few, cut short.
    damaged: Vec<String>,
    rotations: usize,
    /// Bytes of each file that went through the live file (the live one and every
    /// rotation holding no line written aside), and the longest line in them.
    through_live: Vec<(PathBuf, usize)>,
    longest_through_live: usize,
    compressed: usize,
    partial: Vec<PathBuf>,
    /// The summaries, by the plain rotated name they are of.
    summaries: HashMap<String, PathBuf>,
}

/// The sink's `.gz` is members that each give their own length (so that `metaclaude logs`
/// inflates each whole), one after another to the file's end, each of whole lines.
fn assert_framed(gz: &Path) {
    let bytes = std::fs::read(gz).unwrap();
    let mut at = 0;
    while at < bytes.len() {
        let len = gzip_blocks::member_len(&bytes[at..])
            .unwrap_or_else(|| panic!("{}: no framed member at {at}", gz.display()));
        let member = bytes.get(at..at + len).expect("the member within the file");
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(member)
            .read_to_end(&mut text)
            .unwrap();
        assert_eq!(text.last(), Some(&b'\n'), "{}: whole lines", gz.display());
        at += len;
    }
}

/// Reads the live file and every rotated file (the `.gz` of a rotation when both it and
/// the plain file exist, as `metaclaude logs` does); every `.gz` must be a complete, valid
/// gzip stream (flate2 checks each member's CRC and length; `gzip -t` as well).
fn read_log(logs: &Path) -> LogContents {
    let mut rotations: HashMap<String, (Option<PathBuf>, Option<PathBuf>)> = HashMap::new();
    let mut live = None;
    let mut partial = Vec::new();
    let mut summaries = HashMap::new();
    for entry in std::fs::read_dir(logs).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // The tidy's marker: not a file of the log.
        if name == log_files::TIDIED_FILE {
            continue;
        }
        let parsed = log_files::parse(&name).unwrap_or_else(|| panic!("stray file {name}"));
        let slot = rotations.entry(parsed.rotation.to_string()).or_default();
        match parsed.kind {
            Kind::Live => live = Some(entry.path()),
            Kind::Rotated { compressed: false } => slot.0 = Some(entry.path()),
            Kind::Rotated { compressed: true } => slot.1 = Some(entry.path()),
            Kind::Partial => partial.push(entry.path()),
            Kind::Summary => {
                summaries.insert(parsed.rotation.to_string(), entry.path());
            }
        }
    }
    rotations.retain(|_, (plain, gz)| plain.is_some() || gz.is_some());
    let gz: Vec<&PathBuf> = rotations
        .values()
        .filter_map(|(_, gz)| gz.as_ref())
        .collect();
    if !gz.is_empty() {
        let out = Command::new("gzip").arg("-t").args(&gz).output().unwrap();
        assert!(
            out.status.success(),
            "gzip -t: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut counts = HashMap::new();
    let (mut lines, mut damaged) = (0, Vec::new());
    let (mut through_live, mut longest_through_live) = (Vec::new(), 0);
    let files = rotations
        .values()
        .map(|(plain, gz)| gz.clone().or(plain.clone()).unwrap())
        .chain(live);
    for path in files {
        let mut text = String::new();
        let file = std::fs::File::open(&path).unwrap();
        if path.extension().is_some_and(|e| e == "gz") {
            assert_framed(&path);
            flate2::read::MultiGzDecoder::new(file)
                .read_to_string(&mut text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        } else {
            BufReader::new(file).read_to_string(&mut text).unwrap();
        }
        let longest = text.lines().map(str::len).max().unwrap_or(0);
        if longest <= WRITTEN_ASIDE {
            through_live.push((path.clone(), text.len()));
            longest_through_live = longest_through_live.max(longest);
        }
        // A blank line is allowed (what a writer adds after another's append that it
        // took, for a moment, for a killed writer's fragment); `logs` skips it.
        for line in text.lines().filter(|l| !l.is_empty()) {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                damaged.push(format!("{:?}", line.chars().take(60).collect::<String>()));
                continue;
            };
            lines += 1;
            let id = v["execution_id"].as_str().unwrap().to_string();
            *counts.entry(id).or_default() += 1;
        }
    }
    LogContents {
        counts,
        lines,
        damaged,
        rotations: rotations.len(),
        through_live,
        longest_through_live,
        compressed: gz.len(),
        partial,
        summaries,
    }
}

/// Every compressed file has its summary, and each summary is exactly the one its file's
/// bytes make (as the sink's shared builder makes it), naming that file: several hosts
/// compressing and summarising one directory at once left one whole summary per file.
fn assert_one_summary_per_compressed_file(logs: &Path, log: &LogContents) {
    use metaclaude_formats::log_summary::{
        read_summary, FileCheck, SummarisedFile, SummaryBuilder,
    };
    assert!(!log.summaries.is_empty(), "no summary written");
    for (rotation, summary) in &log.summaries {
        let written = std::fs::read(summary).unwrap();
        let header = read_summary(&written, &[])
            .unwrap_or_else(|e| panic!("{}: {e}", summary.display()))
            .header;
        assert_eq!(
            header.file.name,
            log_files::compressed_name(rotation),
            "{rotation}"
        );
        let path = logs.join(&header.file.name);
        let mut bytes = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap())
            .read_to_end(&mut bytes)
            .unwrap();
        let mut builder = SummaryBuilder::new();
        builder.feed(&bytes);
        let size = std::fs::metadata(&path).unwrap().len();
        let check = FileCheck::of(&mut std::fs::File::open(&path).unwrap(), size, true).unwrap();
        let name = header.file.name.clone();
        let expected = builder
            .finish(SummarisedFile { name, size, check })
            .unwrap()
            .to_bytes();
        assert!(
            written == expected,
            "{}: not the summary of its file",
            summary.display()
        );
    }
    for entry in std::fs::read_dir(logs).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(parsed) = log_files::parse(&name) else {
            assert_eq!(name, log_files::TIDIED_FILE, "stray file");
            continue;
        };
        if parsed.kind == (Kind::Rotated { compressed: true }) {
            assert!(
                log.summaries.contains_key(parsed.rotation),
                "{name} has no summary"
            );
        }
    }
}

/// `logs --stats --group-by script --json` from the summaries and reading every file agree
/// on every count (percentiles aside, which are the sketches' from summaries).
fn assert_summaries_count_as_a_full_read(logs: &Path) {
    let stats = |extra: &[&str]| {
        let out = succeed(
            bin()
                .args([
                    "logs",
                    "--stats",
                    "--group-by",
                    "script",
                    "--json",
                    "--log-dir",
                ])
                .arg(logs)
                .args(extra),
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let counts = |v: &Value| {
            (
                v["count"].clone(),
                v["successes"].clone(),
                v["retries"].clone(),
                v["failures_by_category"].clone(),
                v["duration_seconds"]["max"].clone(),
            )
        };
        let groups: Vec<_> = report["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g["key"].clone(), counts(g)))
            .collect();
        (
            counts(&report["overall"]),
            groups,
            report.get("percentile_relative_error").is_some(),
        )
    };
    let (overall, groups, summarised) = stats(&[]);
    let (full_overall, full_groups, full_summarised) = stats(&["--no-summaries"]);
    assert!(summarised && !full_summarised);
    assert_eq!(overall, full_overall);
    assert_eq!(groups, full_groups);
}

fn stats_count(logs: &Path) -> u64 {
    let out = succeed(
        bin()
            .args(["logs", "--stats", "--json", "--log-dir"])
            .arg(logs),
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["overall"]["count"].as_u64().unwrap()
}

/// The live file rotated whenever it was full, however the hosts' writes interleaved.
/// No file that went through it holds more than: [`ROTATION_BYTES`] from the writers that
/// found room in it; [`ROTATION_BYTES`] more from the batch, which writes on the size it
/// last saw (it checks again every 100 ms); and two lines from each writer, one for having
/// decided there was room while another wrote, one for having rotated (or found rotated)
/// the file before it. So the number of rotations follows from the bytes written, not from
/// the load on the machine: `runs` lines of about 1.2 KB that went through the live file
/// make at least `runs * 1.2 KB / cap` files.
fn assert_rotated_when_full(log: &LogContents, runs: usize) {
    let writers = PARALLEL_RUNS + 1;
    let cap = 2 * ROTATION_BYTES + 2 * writers * log.longest_through_live;
    let over: Vec<String> = log
        .through_live
        .iter()
        .filter(|(_, bytes)| *bytes > cap)
        .map(|(path, bytes)| format!("{} ({bytes} bytes)", path.display()))
        .collect();
    assert!(
        over.is_empty(),
        "the live file grew past {cap} bytes before it rotated: {over:?}"
    );
    let bytes: usize = log.through_live.iter().map(|(_, b)| b).sum();
    assert!(
        bytes >= runs * 1000,
        "{runs} runs wrote their lines of about 1.2 KB through the live file, yet only {bytes} bytes went through it"
    );
}

/// Every reported id is in the log, none more than once; `context` says what ran.
fn assert_nothing_lost_or_duplicated(reported: &[String], log: &LogContents, context: &str) {
    let missing: Vec<&String> = reported
        .iter()
        .filter(|id| !log.counts.contains_key(*id))
        .collect();
    let duplicated: Vec<String> = log
        .counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, n)| format!("{id} x{n}"))
        .collect();
    assert!(
        missing.is_empty() && duplicated.is_empty(),
        "{} of {} reported executions missing (e.g. {:?}), {} duplicated ({:?}); {context}, {} rotations",
        missing.len(),
        reported.len(),
        &missing[..missing.len().min(5)],
        duplicated.len(),
        &duplicated[..duplicated.len().min(5)],
        log.rotations
    );
}

#[test]
fn concurrent_hosts_on_one_directory_lose_and_duplicate_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (plugins, logs) = (tmp.path().join("plugins"), tmp.path().join("logs"));
    sink(&plugins, &logs, &small_rotation(), false);
    let reported = run_concurrently(&plugins, SOME_LONG_LINES, false, Until::Compressed(&logs));
    assert!(reported.failures.is_empty(), "{:#?}", reported.failures);
    assert_eq!(reported.ids.len(), reported.runs + BATCH_REQUESTS);
    let log = read_log(&logs);
    assert_rotated_when_full(&log, reported.runs);
    assert_nothing_lost_or_duplicated(&reported.ids, &log, "no host killed");
    assert_eq!(
        log.lines,
        reported.ids.len(),
        "nothing but what was reported"
    );
    assert!(log.damaged.is_empty(), "damaged lines: {:?}", log.damaged);
    assert!(
        log.partial.is_empty(),
        "every host exited cleanly, yet compressions were left half done: {:?}",
        log.partial
    );
    assert!(
        log.compressed > 0,
        "no compression in {} runs while the hosts wrote",
        reported.runs
    );
    assert_one_summary_per_compressed_file(&logs, &log);
    assert_eq!(stats_count(&logs), reported.ids.len() as u64);
    assert_summaries_count_as_a_full_read(&logs);
}

/// Without rotation: only appends, from the runs and from a batch whose batches are
/// bigger than one append of wasmtime-wasi's carried (it split a write at 64 KiB, and
/// another host's line used to land inside a line there; the host's own stream takes
/// 16 MiB, and the sink asks).
#[test]
fn appends_of_concurrent_hosts_never_split_a_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (plugins, logs) = (tmp.path().join("plugins"), tmp.path().join("logs"));
    sink(&plugins, &logs, "rotation_size_mb = 100", false);
    let reported = run_concurrently(&plugins, BIG_BATCHES, false, Until::Runs);
    assert!(reported.failures.is_empty(), "{:#?}", reported.failures);
    assert_eq!(reported.ids.len(), RUNS + BATCH_REQUESTS);
    let log = read_log(&logs);
    assert_eq!(log.rotations, 0);
    assert_nothing_lost_or_duplicated(&reported.ids, &log, "appends only");
    assert_eq!(log.lines, reported.ids.len());
    assert!(log.damaged.is_empty(), "damaged lines: {:?}", log.damaged);
}

#[test]
fn kill_9_of_concurrent_acknowledged_hosts_loses_nothing_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (plugins, logs) = (tmp.path().join("plugins"), tmp.path().join("logs"));
    sink(&plugins, &logs, &small_rotation(), true);
    let reported = run_concurrently(&plugins, SOME_LONG_LINES, true, Until::Runs);
    assert!(reported.failures.is_empty(), "{:#?}", reported.failures);
    // Of the 80 kills aimed, a release build (the static executable's run of these tests)
    // has finished before about half land; the debug build before few.
    assert!(
        reported.killed > RUNS / 12,
        "some hosts must have been killed mid-way ({})",
        reported.killed
    );
    let log = read_log(&logs);
    // Every third run is killed; the others wrote.
    assert_rotated_when_full(&log, RUNS - RUNS.div_ceil(3));
    let killed = format!("{} hosts killed", reported.killed);
    assert_nothing_lost_or_duplicated(&reported.ids, &log, &killed);
    // Whatever a killed host wrote without reporting it is there too, once.
    assert_eq!(stats_count(&logs), log.lines as u64);
}
