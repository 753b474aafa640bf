//! Benchmark of `metaclaude logs --stats --group-by script` against jq (computing the same
//! figures) and zcat (only decompressing), on a generated log.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-logs cargo bench -p metaclaude-host --bench logs_query
//! ```
//!
//! Settings (environment): `LOGS_BENCH_BYTES` uncompressed size (default 1 GiB),
//! `LOGS_BENCH_RUNS` runs of metaclaude and zcat (default 3, the median is reported),
//! `LOGS_BENCH_JQ_RUNS` runs of jq (default 1: it takes minutes), `LOGS_BENCH_DIR` a
//! directory to generate into and reuse (default: a fresh temporary one), `LOGS_BENCH_SEED`.
//!
//! Then "30 days of history": a second log of `LOGS_BENCH_HISTORY_BYTES` (default 1 GiB)
//! spread over 30 days, 120 rotated files of 6 hours and a live file of 6 hours, each
//! rotated file with the summary the log sink writes at compression (the same builder),
//! queried the same way from the summaries (`logs --stats --group-by script`, only the
//! live file read), against the full scan (`--no-summaries`) and jq in the same run; the
//! summaries' answer must be within the sketch's 1 % of the full scan's (percentiles) and
//! equal otherwise. Its time depends on the number of files and the live file's size, not
//! on the history's bytes.
//!
//! metaclaude runs as a child process of the benchmark calling `metaclaude::logs::execute`
//! (what `metaclaude logs` calls) and reports its peak memory;
//! jq reads `zcat -f` of the same files through a pipe (`zcat | jq project | jq -s
//! aggregate`, so it too uses both cores); zcat writes to /dev/null. The
//! answer must equal jq's (floats within 1e-9 relative: sums depend on addition order).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use metaclaude::logs::gen::{generate, jq_stats_programs, Framing, GenConfig};
use metaclaude::logs::stats::GroupBy;
use metaclaude::logs::{execute, reader, LogQuery};

mod support;
use support::median;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn time<T>(runs: u64, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let out = f();
        times.push(t.elapsed());
        last = Some(out);
    }
    (median(times), last.expect("ran at least once"))
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

fn close(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Result<(), String> {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            if (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0) {
                Ok(())
            } else {
                Err(format!("{path}: {x} != {y}"))
            }
        }
        (Object(x), Object(y)) => {
            if x.keys().ne(y.keys()) {
                return Err(format!("{path}: keys differ"));
            }
            x.iter()
                .try_for_each(|(k, v)| close(v, &y[k], &format!("{path}.{k}")))
        }
        (Array(x), Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .try_for_each(|(i, (v, w))| close(v, w, &format!("{path}[{i}]"))),
        _ if a == b => Ok(()),
        _ => Err(format!("{path}: {a} != {b}")),
    }
}

/// Peak resident memory of this process, in MiB: `VmHWM`, which belongs to the process's
/// own address space (`ru_maxrss` would carry the benchmark's figure across fork and exec).
fn max_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    // The allocator as the binary sets it (`main`), so that the figures are the binary's.
    metaclaude::memory::tune_allocator();
    // The query runs in a child process of its own, like the CLI, so its time includes
    // process start and its peak memory is its own (not the generator's).
    if let Some(dir) = std::env::var_os("LOGS_BENCH_QUERY") {
        let args = LogQuery {
            log_dir: PathBuf::from(dir),
            stats: true,
            json: true,
            group_by: Some(GroupBy::Script),
            no_summaries: std::env::var_os("LOGS_BENCH_NO_SUMMARIES").is_some(),
            ..Default::default()
        };
        let mut out = std::io::stdout().lock();
        execute(&args, &mut out, &|notice| eprintln!("{notice}")).expect("metaclaude logs");
        eprintln!("{}", max_rss_mib());
        return;
    }
    let bytes = env_u64("LOGS_BENCH_BYTES", 1 << 30);
    let runs = env_u64("LOGS_BENCH_RUNS", 3);
    let jq_runs = env_u64("LOGS_BENCH_JQ_RUNS", 1);
    let temp;
    let dir: PathBuf = match std::env::var_os("LOGS_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            temp = tempfile::tempdir().expect("a temporary directory");
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).expect("the benchmark directory");
    let cfg = GenConfig {
        seed: env_u64("LOGS_BENCH_SEED", 42),
        total_bytes: bytes,
        rotated_bytes: 64 << 20,
        ..Default::default()
    };
    if reader::discover(&dir, &reader::Reporter::default()).map_or(true, |f| f.is_empty()) {
        let t = Instant::now();
        let s = generate(&dir, &cfg).expect("generating the log");
        println!(
            "generated {} files, {} executions, {} lifecycle lines, {:.1} MiB uncompressed, \
             {:.1} MiB on disk in {:.1?}",
            s.files,
            s.executions,
            s.lifecycle_lines,
            s.uncompressed_bytes as f64 / 1048576.0,
            s.compressed_bytes as f64 / 1048576.0,
            t.elapsed()
        );
    } else {
        println!("reusing the log in {}", dir.display());
    }
    let files: Vec<PathBuf> = reader::discover(&dir, &reader::Reporter::default())
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    let file_args: Vec<String> = files.iter().map(|f| shell_quote(f)).collect();
    let file_args = file_args.join(" ");

    let (ours_t, (ours, rss)) = time(runs, || query(&dir, false));
    let (zcat_t, ()) = time(runs, || {
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!("zcat -f {file_args} > /dev/null"))
            .status()
            .expect("zcat");
        assert!(st.success());
    });
    let (jq_t, reference) = jq_reference(&dir, &file_args, jq_runs);

    let ours: serde_json::Value = serde_json::from_slice(&ours).unwrap();
    let same = close(&ours["overall"], &reference["overall"], "overall")
        .and_then(|()| close(&ours["groups"], &reference["groups"], "groups"));
    // The same log as older sinks gzipped it (no framing: streamed by flate2).
    let streamed = tempfile::tempdir().expect("a temporary directory");
    let older = GenConfig {
        framing: Framing::TwoMembers,
        ..cfg
    };
    generate(streamed.path(), &older).expect("generating the log");
    let (streamed_t, (streamed_out, _)) = time(runs, || query(streamed.path(), false));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&streamed_out).unwrap(),
        ours,
        "the same answer from either framing"
    );
    drop(streamed);

    println!(
        "metaclaude logs --stats --group-by script: {:>8.2?} (median of {runs})",
        ours_t
    );
    println!(
        "... the same log gzipped as before 2026-12-06 (one stream a file, no member lengths): {:>8.2?} (median of {runs})",
        streamed_t
    );
    println!(
        "zcat -f (decompress only):                {:>8.2?} (median of {runs})",
        zcat_t
    );
    println!(
        "jq (same figures, nearest-rank):          {:>8.2?} (median of {jq_runs})",
        jq_t
    );
    println!(
        "jq / metaclaude = {:.1}x (target >= 50)   metaclaude / zcat = {:.2}x (goal <= 2)",
        jq_t.as_secs_f64() / ours_t.as_secs_f64(),
        ours_t.as_secs_f64() / zcat_t.as_secs_f64()
    );
    println!(
        "executions: {}; metaclaude peak memory {rss:.1} MiB",
        ours["overall"]["count"]
    );
    match same {
        Ok(()) => println!("results equal the jq reference"),
        Err(e) => {
            eprintln!("results differ from the jq reference: {e}");
            std::process::exit(1);
        }
    }
    history(runs, jq_runs);
}

/// Runs the query (`--stats --group-by script --json`) on `dir` in a child process, from
/// the summaries or (`no_summaries`) reading every file: its answer and peak memory.
fn query(dir: &Path, no_summaries: bool) -> (Vec<u8>, f64) {
    let me = std::env::current_exe().expect("the benchmark's own path");
    let mut cmd = Command::new(&me);
    cmd.env("LOGS_BENCH_QUERY", dir);
    if no_summaries {
        cmd.env("LOGS_BENCH_NO_SUMMARIES", "1");
    }
    let out = cmd.output().expect("running the query");
    assert!(
        out.status.success(),
        "the query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rss: f64 = String::from_utf8_lossy(&out.stderr)
        .trim()
        .lines()
        .last()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0.0);
    (out.stdout, rss)
}

/// jq computing the same figures over `file_args` (the log's files, quoted), and its time.
fn jq_reference(dir: &Path, file_args: &str, jq_runs: u64) -> (Duration, serde_json::Value) {
    let (project, aggregate) = jq_stats_programs(".script_id");
    let project_file = dir.with_extension("project.jq");
    let program = dir.with_extension("stats.jq");
    std::fs::write(&project_file, project).unwrap();
    std::fs::write(&program, aggregate).unwrap();
    let (jq_t, reference) = time(jq_runs, || {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "zcat -f {file_args} | jq -c -f {} | jq -s -c -f {}",
                shell_quote(&project_file),
                shell_quote(&program)
            ))
            .stderr(Stdio::inherit())
            .output()
            .expect("jq");
        assert!(out.status.success(), "jq failed");
        out.stdout
    });
    let _ = std::fs::remove_file(&program);
    let _ = std::fs::remove_file(&project_file);
    (jq_t, serde_json::from_slice(&reference).unwrap())
}

/// Equal but for the duration percentiles, within the sketch's relative error (1 %).
fn within_sketch_error(
    a: &serde_json::Value,
    b: &serde_json::Value,
    path: &str,
) -> Result<(), String> {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y))
            if ["p50", "p90", "p95", "p99"]
                .iter()
                .any(|p| path.ends_with(p)) =>
        {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            if (x - y).abs() <= 0.01 * y.abs() + 1e-12 {
                Ok(())
            } else {
                Err(format!("{path}: {x} is not within 1 % of {y}"))
            }
        }
        (Object(x), Object(y)) => {
            if x.keys().ne(y.keys()) {
                return Err(format!("{path}: keys differ"));
            }
            x.iter()
                .try_for_each(|(k, v)| within_sketch_error(v, &y[k], &format!("{path}.{k}")))
        }
        (Array(x), Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .try_for_each(|(i, (v, w))| within_sketch_error(v, w, &format!("{path}[{i}]"))),
        _ => close(a, b, path),
    }
}

/// 30 days of history: 120 rotated files of 6 hours with their summaries and a live file,
/// queried from the summaries, by a full scan and by jq.
fn history(runs: u64, jq_runs: u64) {
    const DAYS: i64 = 30;
    const WINDOW_HOURS: i64 = 6;
    let files = (DAYS * 24 / WINDOW_HOURS) as u64;
    let bytes = env_u64("LOGS_BENCH_HISTORY_BYTES", 1 << 30);
    let temp;
    let dir: PathBuf = match std::env::var_os("LOGS_BENCH_HISTORY_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            temp = tempfile::tempdir().expect("a temporary directory");
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).expect("the history directory");
    if reader::discover(&dir, &reader::Reporter::default()).map_or(true, |f| f.is_empty()) {
        let cfg = GenConfig {
            seed: env_u64("LOGS_BENCH_SEED", 42),
            total_bytes: bytes,
            // 120 rotated files and a live one of as many bytes.
            rotated_bytes: (bytes - bytes / (files + 1)).div_ceil(files),
            live_fraction: 1.0 / (files + 1) as f64,
            window: chrono::Duration::hours(WINDOW_HOURS),
            summaries: true,
            ..Default::default()
        };
        let t = Instant::now();
        let s = generate(&dir, &cfg).expect("generating the history");
        println!();
        println!(
            "30 days of history: {} files ({} rotated, each with its summary), {} executions, \
             {:.1} MiB uncompressed, {:.1} MiB on disk, generated in {:.1?}",
            s.files,
            s.files - 1,
            s.executions,
            s.uncompressed_bytes as f64 / 1048576.0,
            s.compressed_bytes as f64 / 1048576.0,
            t.elapsed()
        );
    } else {
        println!();
        println!("30 days of history: reusing the log in {}", dir.display());
    }
    let listed = reader::discover(&dir, &reader::Reporter::default()).unwrap();
    let summary_bytes: u64 = listed
        .iter()
        .filter_map(|f| f.summary.as_ref())
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    let file_args: Vec<String> = listed.iter().map(|f| shell_quote(&f.path)).collect();
    let file_args = file_args.join(" ");
    let (sum_t, (summarised, sum_rss)) = time(runs.max(5), || query(&dir, false));
    let (full_t, (full, _)) = time(runs, || query(&dir, true));
    let (jq_t, reference) = jq_reference(&dir, &file_args, jq_runs);
    let summarised: serde_json::Value = serde_json::from_slice(&summarised).unwrap();
    let full: serde_json::Value = serde_json::from_slice(&full).unwrap();
    let same_as_full = within_sketch_error(&summarised["overall"], &full["overall"], "overall")
        .and_then(|()| within_sketch_error(&summarised["groups"], &full["groups"], "groups"));
    let same_as_jq = close(&full["overall"], &reference["overall"], "overall")
        .and_then(|()| close(&full["groups"], &reference["groups"], "groups"));
    println!(
        "summaries ({:.1} MiB) and the live file:   {:>8.2?} (median of {}; target <= 100 ms)",
        summary_bytes as f64 / 1048576.0,
        sum_t,
        runs.max(5)
    );
    println!(
        "full scan (--no-summaries):               {:>8.2?} (median of {runs})",
        full_t
    );
    println!(
        "jq (same figures, nearest-rank):          {:>8.2?} (median of {jq_runs})",
        jq_t
    );
    println!(
        "full scan / summaries = {:.1}x   jq / summaries = {:.0}x   jq / full scan = {:.1}x",
        full_t.as_secs_f64() / sum_t.as_secs_f64(),
        jq_t.as_secs_f64() / sum_t.as_secs_f64(),
        jq_t.as_secs_f64() / full_t.as_secs_f64()
    );
    println!(
        "executions: {}; from summaries: peak memory {sum_rss:.1} MiB, percentiles within {}",
        summarised["overall"]["count"], summarised["percentile_relative_error"]
    );
    match same_as_full.and(same_as_jq) {
        Ok(()) => println!(
            "results from summaries within 1 % of the full scan (percentiles), equal otherwise; the full scan equals jq"
        ),
        Err(e) => {
            eprintln!("results differ: {e}");
            std::process::exit(1);
        }
    }
}
