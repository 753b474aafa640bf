//! A deterministic generator of execution logs in the sink's format (written with
//! `metaclaude_formats::log_record`, as the sink writes it), for the benchmark
//! (`host/benches/logs_query.rs`), the example (`host/examples/gen_logs.rs`) and the tests
//! that compare `metaclaude logs` with a jq reference.
//!
//! Each rotated file covers its own time window and is generated from its own seed, so
//! files are made in parallel and the output depends only on the configuration.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use metaclaude_formats::gzip_blocks::BlockWriter;
use metaclaude_formats::json::{self, Object};
use metaclaude_formats::log_files;
use metaclaude_formats::log_record::{self, Level};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::model::{
    timestamp, AttemptSummary, ErrorCategory, ErrorDetails, ExecutionResult, MeasurementSource,
    ResourceUsage,
};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// What the random choices start from (default 42): the same seed and configuration
    /// make the same log.
    pub seed: u64,
    /// Uncompressed bytes over all files (reached approximately, rounded up by one line).
    pub total_bytes: u64,
    /// Uncompressed bytes per rotated file; the remainder goes to the live file.
    pub rotated_bytes: u64,
    /// Share of the total written to the live (plain) file.
    pub live_fraction: f64,
    /// The first record's time.
    pub start: DateTime<Utc>,
    /// The time each rotated file covers.
    pub window: Duration,
    /// Write each rotated file's summary beside it, as the log sink does at compression
    /// (`metaclaude_formats::log_summary`, built from the same bytes).
    pub summaries: bool,
    /// How rotated files are gzipped.
    pub framing: Framing,
}

/// How a rotated file is gzipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// Members of whole lines that give their own length, as the log sink writes them
    /// (`metaclaude_formats::gzip_blocks`): inflated whole by the reader.
    #[default]
    Blocks,
    /// Two plain gzip members split at a line, as an older sink's file appended to may
    /// be: streamed by the reader.
    TwoMembers,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 42,
            total_bytes: 64 << 20,
            rotated_bytes: 16 << 20,
            live_fraction: 0.05,
            start: DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
                .expect("valid")
                .with_timezone(&Utc),
            window: Duration::hours(6),
            summaries: false,
            framing: Framing::Blocks,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct GenSummary {
    /// Files written, the live one included.
    pub files: usize,
    /// Execution lines (`"event":"finished"`) over all files.
    pub executions: u64,
    /// Lifecycle lines (DEBUG), about one for every four executions.
    pub lifecycle_lines: u64,
    /// Bytes of lines written, before compression.
    pub uncompressed_bytes: u64,
    /// Bytes on disk: the `.gz` files' sizes plus the live file's.
    pub compressed_bytes: u64,
}

const SCRIPTS: usize = 40;
const SPECIALISTS: [&str; 6] = [
    "api-ui-designer",
    "backend-architect",
    "data-engineer",
    "security-auditor",
    "test-writer",
    "docs-writer",
];
const USERS: [&str; 8] = ["ann", "bob", "chen", "dana", "eve", "farid", "gus", "hana"];

/// Writes the log into `dir` (which must exist): rotated `.gz` files (framed as
/// [`GenConfig::framing`] says) and a live `executions.jsonl`.
pub fn generate(dir: &Path, cfg: &GenConfig) -> io::Result<GenSummary> {
    let live_bytes = (cfg.total_bytes as f64 * cfg.live_fraction) as u64;
    let rotated_total = cfg.total_bytes.saturating_sub(live_bytes);
    let rotated_count = rotated_total.div_ceil(cfg.rotated_bytes.max(1)) as usize;
    // One file each, the live one last.
    let results = super::parallel::in_parallel(rotated_count + 1, |i| {
        let live = i == rotated_count;
        let bytes = if live { live_bytes } else { cfg.rotated_bytes };
        write_file(dir, cfg, i, live, bytes)
    });
    let mut total = GenSummary::default();
    for r in results {
        let r = r?;
        total.files += r.files;
        total.executions += r.executions;
        total.lifecycle_lines += r.lifecycle_lines;
        total.uncompressed_bytes += r.uncompressed_bytes;
        total.compressed_bytes += r.compressed_bytes;
    }
    Ok(total)
}

fn write_file(
    dir: &Path,
    cfg: &GenConfig,
    index: usize,
    live: bool,
    bytes: u64,
) -> io::Result<GenSummary> {
    let mut rng =
        StdRng::seed_from_u64(cfg.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let window_start = cfg.start + cfg.window * index as i32;
    // About 1.3 KB a line on average: spread the lines over the window.
    let expected = (bytes / 1300).max(1) as i64;
    let step =
        Duration::microseconds((cfg.window.num_microseconds().unwrap_or(1) / expected).max(1));
    let mut sum = GenSummary::default();
    let mut body = Vec::with_capacity(bytes as usize + 4096);
    let mut t = window_start;
    let mut seq = 0u64;
    let mut line = String::new();
    while (body.len() as u64) < bytes {
        seq += 1;
        t += step;
        let r = execution(&mut rng, t, index, seq);
        if rng.random_bool(0.25) {
            let event =
                ["queued", "started", "attempt_failed", "retry_scheduled"][rng.random_range(0..4)];
            write_lifecycle_line(&mut line, &r, event);
            body.extend_from_slice(line.as_bytes());
            body.push(b'\n');
            sum.lifecycle_lines += 1;
        }
        write_finished_line(&mut line, &r)?;
        body.extend_from_slice(line.as_bytes());
        body.push(b'\n');
        sum.executions += 1;
    }
    sum.uncompressed_bytes = body.len() as u64;
    sum.files = 1;
    if live {
        std::fs::write(dir.join(log_files::LIVE_FILE), &body)?;
        sum.compressed_bytes = body.len() as u64;
        return Ok(sum);
    }
    let rotated_at = window_start + cfg.window;
    let name = log_files::compressed_name(&log_files::rotated_name(rotated_at, None));
    let path = dir.join(&name);
    let mut out = BufWriter::new(File::create(&path)?);
    match cfg.framing {
        Framing::Blocks => {
            let mut blocks = BlockWriter::new(&mut out, 6);
            blocks.write_all(&body)?;
            blocks.finish()?;
        }
        Framing::TwoMembers => {
            let half = body[..body.len() / 2]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1);
            for part in [&body[..half], &body[half..]] {
                let mut enc = flate2::write::GzEncoder::new(&mut out, flate2::Compression::new(6));
                enc.write_all(part)?;
                enc.finish()?;
            }
        }
    }
    out.flush()?;
    drop(out);
    sum.compressed_bytes = std::fs::metadata(&path)?.len();
    if cfg.summaries {
        write_summary(dir, &name, &body)?;
    }
    Ok(sum)
}

/// Writes the summary of the rotated `.gz` named `gz_name`, whose lines are `body`, as the
/// log sink does: the shared builder over the same bytes, the file's gzip trailer.
fn write_summary(dir: &Path, gz_name: &str, body: &[u8]) -> io::Result<()> {
    use metaclaude_formats::log_summary::{FileCheck, SummarisedFile, SummaryBuilder};
    let mut builder = SummaryBuilder::new();
    builder.feed(body);
    let path = dir.join(gz_name);
    let size = std::fs::metadata(&path)?.len();
    let check = FileCheck::of(&mut File::open(&path)?, size, true)?;
    let file = SummarisedFile {
        name: gz_name.to_string(),
        size,
        check,
    };
    let summary = builder
        .finish(file)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let rotation = log_files::parse(gz_name)
        .map(|n| n.rotation.to_string())
        .unwrap_or_default();
    std::fs::write(
        dir.join(log_files::summary_name(&rotation)),
        summary.to_bytes(),
    )
}

/// Makes `line` the line the log sink writes for the finished execution `r` (without its
/// newline): the host's JSON of the result behind the log's own fields.
pub fn write_finished_line(line: &mut String, r: &ExecutionResult) -> serde_json::Result<()> {
    line.clear();
    let mut finished_at = String::new();
    json::write_string(&mut finished_at, &timestamp::format(&r.finished_at));
    log_record::write_finished(
        line,
        &finished_at,
        Level::of_execution(r.success, u64::from(r.retries)),
        &serde_json::to_string(&r.category())?,
        &serde_json::to_string(r)?,
    );
    Ok(())
}

/// Makes `line` a DEBUG line of the lifecycle event `event` of `r`'s first attempt.
fn write_lifecycle_line(line: &mut String, r: &ExecutionResult, event: &str) {
    line.clear();
    let mut started_at = String::new();
    json::write_string(&mut started_at, &timestamp::format(&r.started_at));
    let mut kind = String::new();
    json::write_string(&mut kind, event);
    let mut members = String::new();
    let mut object = Object::new(&mut members);
    object
        .string("execution_id", &r.execution_id)
        .string("script_id", &r.script_id)
        .integer("attempt", 1);
    object.end();
    log_record::write_lifecycle(line, &started_at, &kind, &members);
}

fn execution(rng: &mut StdRng, finished: DateTime<Utc>, file: usize, seq: u64) -> ExecutionResult {
    let script = rng.random_range(0..SCRIPTS);
    let script_id = format!(
        "script_{script:02}_{}",
        ["validate", "build", "lint", "deploy"][script % 4]
    );
    let specialist =
        (rng.random_range(0..10) > 0).then(|| SPECIALISTS[script % SPECIALISTS.len()].to_string());
    let user =
        (rng.random_range(0..20) > 0).then(|| USERS[rng.random_range(0..USERS.len())].to_string());
    // Scripts differ in how slow and how flaky they are.
    let slow = 0.05 + (script as f64) * 0.02;
    let wall = (slow * (1.0 + 3.0 * rng.random::<f64>().powi(3)) * 1e6).round() / 1e6;
    let success = rng.random::<f64>() > 0.05 + (script % 5) as f64 * 0.03;
    let retries = if rng.random_bool(0.1) {
        rng.random_range(1..3)
    } else {
        0
    };
    let category =
        (!success).then(|| ErrorCategory::ALL[rng.random_range(0..ErrorCategory::ALL.len())]);
    let peak = (5.0 + rng.random::<f64>() * 200.0 * 1000.0).round() / 1000.0;
    let cpu = (wall * rng.random::<f64>() * 1e6).round() / 1e6;
    let started = finished - Duration::microseconds((wall * 1e6) as i64);
    // Varied output, so the log compresses about as well as real ones (not 20 to 1).
    let mut stdout = String::new();
    for _ in 0..rng.random_range(2..14) {
        use std::fmt::Write as _;
        let _ = writeln!(
            stdout,
            "{} item {} in {} ms: {:08x}",
            ["checked", "validated", "skipped", "fixed"][rng.random_range(0..4)],
            rng.random_range(0..100_000),
            rng.random_range(0..5000),
            rng.random::<u32>()
        );
    }
    let stderr = if success {
        String::new()
    } else {
        "Traceback (most recent call last):\n  File \"x.py\", line 3\nValueError: \"bad\"\n"
            .to_string()
    };
    let error_details = category.map(|c| ErrorDetails {
        category: c,
        message: format!("{c} while running {script_id}"),
        context: crate::model::ErrorContext {
            script_id: script_id.clone(),
            script_path: format!("scripts/{script_id}.py"),
            specialist: specialist.clone(),
            exit_code: Some(1),
            signal: None,
            attempt: retries + 1,
            extra: BTreeMap::new(),
        },
        suggestions: vec!["Check the input file".into(), "Run with --verbose".into()],
        stack_trace: Some(stderr.clone()),
    });
    let attempts = (0..=retries)
        .map(|a| AttemptSummary {
            attempt: a + 1,
            started_at: started,
            finished_at: finished,
            success: success || a < retries,
            exit_code: Some(if success { 0 } else { 1 }),
            signal: None,
            category,
            message: None,
            wall_time_seconds: wall,
            cpu_time_seconds: cpu,
            peak_memory_mb: peak,
            delay_before_ms: u64::from(a) * 1000,
        })
        .collect();
    let mut inputs = BTreeMap::new();
    inputs.insert("schema_file".to_string(), serde_json::json!("api.yaml"));
    ExecutionResult {
        execution_id: format!("01J{file:06}{seq:012}"),
        script_id,
        specialist,
        success,
        exit_code: Some(if success { 0 } else { 1 }),
        signal: None,
        stdout,
        stderr,
        stdout_truncated: false,
        stderr_truncated: false,
        started_at: started,
        finished_at: finished,
        attempts,
        retries,
        inputs,
        session_id: Some(format!("session-{}", rng.random_range(0..500))),
        correlation_id: Some(format!("request-{}", rng.random_range(0..100_000))),
        user,
        error_details,
        resource_usage: ResourceUsage {
            memory_start_mb: 3.5,
            memory_end_mb: peak / 2.0,
            peak_memory_mb: peak,
            peak_memory_largest_process_mb: peak,
            cpu_time_seconds: cpu,
            cpu_user_seconds: cpu,
            cpu_system_seconds: 0.0,
            wall_time_seconds: wall,
            memory_start_source: MeasurementSource::Sampling,
            memory_end_source: MeasurementSource::Sampling,
            peak_memory_source: MeasurementSource::Cgroup,
            cpu_time_source: MeasurementSource::Cgroup,
        },
    }
}

/// The jq reference for `metaclaude logs --stats --json --group-by <field>`, as two
/// programs for a pipeline `jq -c PROJECT | jq -s -c AGGREGATE` over decompressed log
/// lines. The first streams, keeping per execution only `[key, success, category, wall,
/// peak memory, cpu, retries]`; the second aggregates those rows. (One `reduce` that appends
/// to arrays inside the state is quadratic in jq 1.6, which would flatter the comparison.)
/// Percentiles are nearest-rank, as in [`super::stats::nearest_rank`]. `key` is the jq
/// expression of the group key, e.g. `.script_id`.
pub fn jq_stats_programs(key: &str) -> (String, String) {
    let project = format!(
        r#"select(.event == "finished")
| [(({key}) // "(none)"), .success, .category, .resource_usage.wall_time_seconds,
   .resource_usage.peak_memory_mb, .resource_usage.cpu_time_seconds, (.retries // 0)]"#
    );
    let aggregate = r#"
def fin: . as $rs | ($rs | length) as $n | ([$rs[] | .[3]] | sort) as $d
  | ([$rs[] | select(.[1] == true)] | length) as $ok
  | def pct($p): $d[([((($p / 100 * $n) | ceil) - 1), 0] | max)];
  { count: $n, successes: $ok, failures: ($n - $ok),
    success_rate: ($ok * 100 / $n),
    duration_seconds: { avg: (($d | add) / $n), p50: pct(50), p90: pct(90), p95: pct(95),
      p99: pct(99), max: $d[-1] },
    peak_memory_mb: { max: ([$rs[] | .[4]] | max), avg: (([$rs[] | .[4]] | add) / $n) },
    cpu_time_seconds_total: ([$rs[] | .[5]] | add),
    retries: ([$rs[] | .[6]] | add),
    failures_by_category: ([$rs[] | select(.[1] != true) | (.[2] // "(none)")]
      | group_by(.) | map({ key: .[0], value: length }) | from_entries) };
{ overall: fin, groups: (group_by(.[0]) | map({ key: .[0][0] } + fin)) }
"#
    .to_string();
    (project, aggregate)
}
