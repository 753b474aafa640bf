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
//! metaclaude runs as a child process of the benchmark calling `metaclaude::logs::execute`
//! (what `metaclaude logs` calls) and reports its peak memory;
//! jq reads `zcat -f` of the same files through a pipe (`zcat | jq project | jq -s
//! aggregate`, so it too uses both cores); zcat writes to /dev/null. The
//! answer must equal jq's (floats within 1e-9 relative: sums depend on addition order).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use metaclaude::logs::gen::{generate, jq_stats_programs, GenConfig};
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
    // The query runs in a child process of its own, like the CLI, so its time includes
    // process start and its peak memory is its own (not the generator's).
    if let Some(dir) = std::env::var_os("LOGS_BENCH_QUERY") {
        let args = LogQuery {
            log_dir: PathBuf::from(dir),
            stats: true,
            json: true,
            group_by: Some(GroupBy::Script),
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
    if reader::discover(&dir, &reader::Reporter::default()).map_or(true, |f| f.is_empty()) {
        let cfg = GenConfig {
            seed: env_u64("LOGS_BENCH_SEED", 42),
            total_bytes: bytes,
            rotated_bytes: 64 << 20,
            ..Default::default()
        };
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

    let args = LogQuery {
        log_dir: dir.clone(),
        ..Default::default()
    };
    let me = std::env::current_exe().expect("the benchmark's own path");
    let (ours_t, (ours, rss)) = time(runs, || {
        let out = Command::new(&me)
            .env("LOGS_BENCH_QUERY", &args.log_dir)
            .output()
            .expect("running the query");
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
    });
    let (zcat_t, ()) = time(runs, || {
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!("zcat -f {file_args} > /dev/null"))
            .status()
            .expect("zcat");
        assert!(st.success());
    });
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

    let ours: serde_json::Value = serde_json::from_slice(&ours).unwrap();
    let reference: serde_json::Value = serde_json::from_slice(&reference).unwrap();
    let same = close(&ours["overall"], &reference["overall"], "overall")
        .and_then(|()| close(&ours["groups"], &reference["groups"], "groups"));

    println!(
        "metaclaude logs --stats --group-by script: {:>8.2?} (median of {runs})",
        ours_t
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
        "jq / metaclaude = {:.1}x (goal >= 10)   metaclaude / zcat = {:.2}x (goal <= 2)",
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
}
