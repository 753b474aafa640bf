//! Whole-query tests: generated logs against a jq reference, and damaged input.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use super::*;
use gen::{generate, jq_stats_programs, GenConfig};

fn args(dir: &Path) -> LogQuery {
    LogQuery {
        log_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

fn query(a: &LogQuery) -> String {
    let mut out = Vec::new();
    execute(a, &mut out, &|_| {}).unwrap();
    String::from_utf8(out).unwrap()
}

/// All of the log's lines, decompressed, oldest first.
fn all_lines(dir: &Path) -> Vec<u8> {
    let mut data = Vec::new();
    for f in reader::discover(dir, &reader::Reporter::default()).unwrap() {
        let raw = std::fs::File::open(&f.path).unwrap();
        if f.gzip {
            flate2::read::MultiGzDecoder::new(raw)
                .read_to_end(&mut data)
                .unwrap();
        } else {
            std::io::BufReader::new(raw).read_to_end(&mut data).unwrap();
        }
    }
    data
}

fn jq(program: &str, args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new("jq")
        .args(args)
        .arg(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("jq is installed (/usr/bin/jq)");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "jq failed");
    String::from_utf8(out.stdout).unwrap()
}

/// Equal as JSON, floats within a relative 1e-9 (sums depend on the order of addition).
pub fn assert_json_close(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                "{path}: {x} != {y}"
            );
        }
        (Object(x), Object(y)) => {
            let kx: Vec<_> = x.keys().collect();
            let ky: Vec<_> = y.keys().collect();
            assert_eq!(kx, ky, "{path}: keys differ");
            for (k, v) in x {
                assert_json_close(v, &y[k], &format!("{path}.{k}"));
            }
        }
        (Array(x), Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths differ");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                assert_json_close(v, w, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

fn small_log() -> (tempfile::TempDir, gen::GenSummary) {
    small_log_framed(gen::Framing::Blocks)
}

/// A small log whose rotated files are gzipped as `framing` says.
fn small_log_framed(framing: gen::Framing) -> (tempfile::TempDir, gen::GenSummary) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = GenConfig {
        total_bytes: 3 << 20,
        rotated_bytes: 700 << 10,
        live_fraction: 0.1,
        framing,
        ..Default::default()
    };
    let summary = generate(dir.path(), &cfg).unwrap();
    (dir, summary)
}

/// As the sink writes rotated files now (members inflated whole) and as older sinks did
/// (streamed), against jq over the lines flate2 reads.
#[test]
fn stats_equal_the_jq_reference_for_every_grouping() {
    for framing in [gen::Framing::Blocks, gen::Framing::TwoMembers] {
        stats_equal_the_jq_reference(framing);
    }
}

fn stats_equal_the_jq_reference(framing: gen::Framing) {
    let (dir, summary) = small_log_framed(framing);
    assert!(summary.files >= 5);
    let lines = all_lines(dir.path());
    for (group_by, key) in [
        (GroupBy::Script, ".script_id"),
        (GroupBy::User, ".user"),
        (GroupBy::Category, ".category"),
        (GroupBy::Day, ".timestamp[:10]"),
        (GroupBy::Hour, ".timestamp[:13]"),
    ] {
        let mut a = args(dir.path());
        a.stats = true;
        a.json = true;
        a.group_by = Some(group_by);
        let ours: serde_json::Value = serde_json::from_str(&query(&a)).unwrap();
        let (project, aggregate) = jq_stats_programs(key);
        let rows = jq(&project, &["-c"], &lines);
        let reference: serde_json::Value =
            serde_json::from_str(&jq(&aggregate, &["-s", "-c"], rows.as_bytes())).unwrap();
        assert_eq!(ours["overall"]["count"], summary.executions);
        assert_json_close(&ours["overall"], &reference["overall"], "overall");
        assert_json_close(
            &ours["groups"],
            &reference["groups"],
            &format!("{group_by:?}"),
        );
    }
}

#[test]
fn filtered_listings_equal_jq_newest_first() {
    let (dir, _) = small_log();
    let lines = all_lines(dir.path());
    let mut a = args(dir.path());
    a.json = true;
    a.failed = true;
    a.specialist = Some("data-engineer".into());
    a.start_date = Some(dates::parse_instant("2026-11-01 06:00:00", false, &Utc).unwrap());
    a.end_date = Some(dates::parse_instant("2026-11-01T20:00:00Z", true, &Utc).unwrap());
    let ours: Vec<String> = query(&a)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["execution_id"].to_string())
        .collect();
    let program = r#"[inputs | select(.event == "finished" and .success == false
        and .specialist == "data-engineer"
        and .timestamp >= "2026-11-01T06:00:00.000000Z"
        and .timestamp <= "2026-11-01T20:00:00.000000Z") | .execution_id] | reverse | .[]"#;
    let reference: Vec<String> = jq(program, &["-n", "-c"], &lines)
        .lines()
        .map(String::from)
        .collect();
    assert!(reference.len() > 3, "the filter should match something");
    assert_eq!(ours, reference);

    a.limit = Some(3);
    let limited: Vec<String> = query(&a)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["execution_id"].to_string())
        .collect();
    assert_eq!(limited, reference[..3]);
}

#[test]
fn date_names_pick_files() {
    let (dir, _) = small_log();
    let files = reader::discover(dir.path(), &reader::Reporter::default()).unwrap();
    let start = dates::parse_instant("2026-11-01T13:00:00Z", false, &Utc).unwrap();
    let kept = files
        .iter()
        .filter(|f| f.may_overlap(Some(start), None))
        .count();
    assert!(
        kept < files.len(),
        "older rotated files are skipped by name"
    );
}

#[test]
fn damaged_input_is_reported_and_the_rest_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let line = |id: &str, ok: bool| {
        format!(
            r#"{{"timestamp":"2026-11-01T10:00:00.000000Z","event":"finished","level":"INFO","execution_id":"{id}","script_id":"s","success":{ok},"category":{},"retries":0,"resource_usage":{{"wall_time_seconds":1.0,"peak_memory_mb":2.0,"cpu_time_seconds":0.5}}}}"#,
            if ok { "null" } else { "\"TIMEOUT\"" }
        )
    };
    // A rotated file: one good member, then a corrupt one.
    let mut gz = Vec::new();
    let mut enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
    writeln!(enc, "{}", line("a", true)).unwrap();
    enc.finish().unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for i in 0..50 {
        writeln!(enc, "{}", line(&format!("lost{i}"), true)).unwrap();
    }
    let mut bad = enc.finish().unwrap();
    let mid = bad.len() / 2;
    bad[mid..mid + 4].copy_from_slice(b"oops");
    gz.extend(bad);
    std::fs::write(
        dir.path()
            .join("executions-2026-11-01T11-00-00.000000Z.jsonl.gz"),
        gz,
    )
    .unwrap();
    // The live file: a non-JSON line, a good one and an incomplete last line.
    let live = format!(
        "not json at all\n{}\n{}",
        line("b", false),
        &line("c", true)[..40]
    );
    std::fs::write(dir.path().join("executions.jsonl"), live).unwrap();
    // An unreadable stray does not matter; an unreadable rotated file is reported.
    let mut a = args(dir.path());
    a.stats = true;
    a.json = true;
    let stats: serde_json::Value = serde_json::from_str(&query(&a)).unwrap();
    let count = stats["overall"]["count"].as_u64().unwrap();
    // "a" and "b" for sure; a corrupt deflate stream may still yield some lines before
    // the damage is detected, never lines after it.
    assert!((2..=52).contains(&count), "{count}");
    assert_eq!(stats["overall"]["failures_by_category"]["TIMEOUT"], 1);

    let mut a = args(dir.path());
    a.json = true;
    let ids: Vec<String> = query(&a)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["execution_id"].to_string())
        .collect();
    assert_eq!(
        ids.first().map(String::as_str),
        Some("\"b\""),
        "newest first"
    );
    assert!(
        !ids.contains(&"\"c\"".to_string()),
        "the incomplete line is skipped"
    );
}

/// Found by the `logs` fuzz target: a record whose skipped fields held bytes that are not
/// UTF-8 was parsed (serde_json does not check what it skips) and printed by `--json` as
/// it was, a line that is not JSON. It is now reported and skipped like any non-JSON line.
#[test]
fn a_line_that_is_not_utf8_is_not_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"event":"finished","execution_id":"good","success":true}"#;
    let mut live = Vec::new();
    live.extend_from_slice(b"{\"event\":\"finished\",\"execution_id\":\"bad\",\"success\":false,\"resource_usage\":{\"\xfcwall\":1}}\n");
    live.extend_from_slice(
        b"{\"event\":\"finished\",\"execution_id\":\"bad2\",\"stdout\":\"\xff\"}\n",
    );
    live.extend_from_slice(good.as_bytes());
    live.push(b'\n');
    std::fs::write(dir.path().join("executions.jsonl"), live).unwrap();
    let mut a = args(dir.path());
    a.json = true;
    let out = query(&a);
    assert_eq!(out, format!("{good}\n"));
    let mut a = args(dir.path());
    a.stats = true;
    a.json = true;
    let stats: serde_json::Value = serde_json::from_str(&query(&a)).unwrap();
    assert_eq!(stats["overall"]["count"], 1);
}

#[test]
fn table_output_is_readable() {
    let (dir, _) = small_log();
    let mut a = args(dir.path());
    a.limit = Some(5);
    a.failed = true;
    let text = query(&a);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 6, "{text}");
    assert!(rows[0].starts_with("FINISHED (UTC)"));
    assert!(rows[1].contains("ERROR"));
    let mut a = args(dir.path());
    a.group_by = Some(GroupBy::Specialist);
    let text = query(&a);
    assert!(text.contains("Success rate:"), "{text}");
    assert!(text.contains("SPECIALIST"), "{text}");
    assert!(text.contains("api-ui-designer"), "{text}");
}

#[test]
fn missing_directory_says_how_to_fix_it() {
    let a = args(Path::new("/nonexistent/metaclaude-logs"));
    let err = execute(&a, &mut Vec::new(), &|_| {}).unwrap_err();
    assert!(format!("{err:#}").contains("METACLAUDE_LOG_DIR"), "{err:#}");
}

/// An age past what the calendar holds is everything, not a panic (found by schemathesis
/// through the server's listing: `since=100000000d`).
#[test]
fn an_enormous_age_means_everything() {
    let q = LogQuery {
        since: Some(chrono::Duration::days(100_000_000)),
        ..Default::default()
    };
    let (start, end) = q.bounds(Utc::now());
    assert_eq!((start, end), (Some(DateTime::<Utc>::MIN_UTC), None));
    let m = Matcher::new(q.filter(Utc::now()));
    assert!(m.may_match(b"{}"));
}

/// `metaclaude logs --stats --json | head -c 1`: the reader went away while serde_json
/// wrote, which is no failure (it was reported as an error: serde_json wraps the pipe's
/// error in its own).
#[test]
fn a_reader_gone_during_the_json_statistics_is_a_broken_pipe() {
    struct Gone;
    impl Write for Gone {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (dir, _) = small_log();
    let mut a = args(dir.path());
    a.stats = true;
    a.json = true;
    let err = execute(&a, &mut Gone, &|_| {}).unwrap_err();
    assert!(matches!(err, LogsError::Json(_)), "{err:?}");
    assert!(err.is_broken_pipe(), "{err:?}");
    let listing = execute(&args(dir.path()), &mut Gone, &|_| {}).unwrap_err();
    assert!(listing.is_broken_pipe(), "{listing:?}");
}

/// A generated log whose rotated files have summaries, as the log sink writes them.
fn summarised_log(total_bytes: u64, rotated_bytes: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cfg = GenConfig {
        total_bytes,
        rotated_bytes,
        live_fraction: 0.1,
        summaries: true,
        ..Default::default()
    };
    generate(dir.path(), &cfg).unwrap();
    dir
}

/// The statistics of `a` as JSON, and the notices met.
fn stats_json(a: &LogQuery) -> (serde_json::Value, Vec<ReadNotice>) {
    let notices = std::sync::Mutex::new(Vec::new());
    let mut out = Vec::new();
    execute(a, &mut out, &|n| notices.lock().unwrap().push(n)).unwrap();
    let notices = notices.into_inner().unwrap();
    (serde_json::from_slice(&out).unwrap(), notices)
}

/// Equal as JSON but for the duration percentiles, which may be off by the sketch's
/// relative error (1 %), and floats summed in another order (1e-9 relative).
pub(crate) fn assert_within_sketch_error(
    summarised: &serde_json::Value,
    full: &serde_json::Value,
    path: &str,
) {
    use serde_json::Value::*;
    match (summarised, full) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            let percentile = ["p50", "p90", "p95", "p99"]
                .iter()
                .any(|p| path.ends_with(&format!("duration_seconds.{p}")));
            let allowed = if percentile {
                0.01 * y.abs() + 1e-12
            } else {
                1e-9 * x.abs().max(y.abs()).max(1.0)
            };
            assert!((x - y).abs() <= allowed, "{path}: {x} vs {y} (full scan)");
        }
        (Object(x), Object(y)) => {
            let kx: Vec<_> = x.keys().collect();
            let ky: Vec<_> = y.keys().collect();
            assert_eq!(kx, ky, "{path}: keys differ");
            for (k, v) in x {
                assert_within_sketch_error(v, &y[k], &format!("{path}.{k}"));
            }
        }
        (Array(x), Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths differ");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                assert_within_sketch_error(v, w, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(summarised, full, "{path}"),
    }
}

#[test]
fn summaries_answer_as_the_full_scan_within_the_sketchs_error() {
    let dir = summarised_log(4 << 20, 400 << 10);
    let stats = |a: &LogQuery| {
        let mut a = a.clone();
        a.stats = true;
        a.json = true;
        let (summarised, notices) = stats_json(&a);
        assert!(notices.is_empty(), "{notices:?}");
        a.no_summaries = true;
        let (full, _) = stats_json(&a);
        (summarised, full)
    };
    let whole = args(dir.path());
    let (_, everything) = stats(&whole);
    let executions = everything["overall"]["count"].as_u64().unwrap();
    // The live file is read in every case; the rotated files come from their summaries.
    let mut cases: Vec<(String, LogQuery, bool)> = Vec::new();
    for group_by in [
        None,
        Some(GroupBy::Script),
        Some(GroupBy::Specialist),
        Some(GroupBy::User),
        Some(GroupBy::Category),
        Some(GroupBy::Hour),
        Some(GroupBy::Day),
    ] {
        let mut a = whole.clone();
        a.group_by = group_by;
        cases.push((format!("--group-by {group_by:?}"), a, true));
    }
    let mut a = whole.clone();
    a.script = Some("script_07_deploy".into());
    cases.push(("--script".into(), a.clone(), true));
    a.group_by = Some(GroupBy::Script);
    cases.push(("--script --group-by script".into(), a.clone(), true));
    a.group_by = Some(GroupBy::User);
    cases.push(("--script --group-by user (not summarised)".into(), a, false));
    let mut a = whole.clone();
    a.category = Some(ErrorCategory::Timeout);
    a.group_by = Some(GroupBy::Category);
    cases.push(("--category timeout --group-by category".into(), a, true));
    let mut a = whole.clone();
    a.user = Some("ann".into());
    cases.push(("--user ann".into(), a, true));
    let mut a = whole.clone();
    a.failed = true;
    cases.push(("--failed (not summarised)".into(), a, false));
    // A range that cuts files in their middle: the whole ones inside from summaries, the
    // cut ones read.
    let mut a = whole.clone();
    a.start_date = Some(dates::parse_instant("2026-11-01T04:00:00Z", false, &Utc).unwrap());
    a.end_date = Some(dates::parse_instant("2026-11-02T09:30:00Z", true, &Utc).unwrap());
    a.group_by = Some(GroupBy::Hour);
    cases.push(("a range".into(), a, true));
    for (what, a, summarised) in cases {
        let (ours, full) = stats(&a);
        let count = full["overall"]["count"].as_u64().unwrap();
        assert!(count > 0 && count <= executions, "{what}: {count}");
        assert_eq!(
            ours.get("percentile_relative_error").is_some(),
            summarised,
            "{what}: summaries used?"
        );
        assert_within_sketch_error(
            &ours["overall"],
            &full["overall"],
            &format!("{what}: overall"),
        );
        assert_within_sketch_error(&ours["groups"], &full["groups"], &format!("{what}: groups"));
    }
}

/// The summary of the rotated file `gz` as the sink writes it, to damage it on purpose.
fn summary_of(gz: &Path) -> metaclaude_formats::log_summary::Summary {
    use metaclaude_formats::log_summary::{FileCheck, SummarisedFile, SummaryBuilder};
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(gz).unwrap())
        .read_to_end(&mut text)
        .unwrap();
    let mut b = SummaryBuilder::new();
    b.feed(&text);
    let size = std::fs::metadata(gz).unwrap().len();
    let check = FileCheck::of(&mut std::fs::File::open(gz).unwrap(), size, true).unwrap();
    let name = gz.file_name().unwrap().to_str().unwrap().to_string();
    b.finish(SummarisedFile { name, size, check }).unwrap()
}

#[test]
fn a_damaged_or_mismatched_summary_is_ignored_and_the_file_read() {
    use metaclaude_formats::log_summary::FileCheck;
    // One rotated file and the live one.
    let dir = summarised_log(1 << 20, 950 << 10);
    let files = reader::discover(dir.path(), &reader::Reporter::default()).unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    let summary_path = files[0].summary.clone().expect("the generator wrote one");
    let intact = std::fs::read(&summary_path).unwrap();
    assert_eq!(
        intact,
        summary_of(&files[0].path).to_bytes(),
        "as the sink makes it"
    );
    let mut a = args(dir.path());
    a.stats = true;
    a.json = true;
    a.group_by = Some(GroupBy::Script);
    let mut full = a.clone();
    full.no_summaries = true;
    let (exact, _) = stats_json(&full);
    let (used, notices) = stats_json(&a);
    assert!(used.get("percentile_relative_error").is_some() && notices.is_empty());

    let edited = |edit: fn(&mut metaclaude_formats::log_summary::Summary)| {
        let mut s = summary_of(&files[0].path);
        edit(&mut s);
        s.to_bytes()
    };
    let mut flipped = intact.clone();
    flipped[intact.len() / 2] ^= 0x04;
    let damages: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("truncated", Some(intact[..intact.len() - 100].to_vec())),
        ("a bit flipped", Some(flipped)),
        ("empty", Some(Vec::new())),
        ("wrong size", Some(edited(|s| s.header.file.size += 1))),
        (
            "wrong checksum",
            Some(edited(|s| {
                if let FileCheck::GzipTrailer { crc32, .. } = &mut s.header.file.check {
                    *crc32 ^= 1;
                }
            })),
        ),
        (
            "another version",
            Some(edited(|s| s.header.summary_version += 1)),
        ),
        (
            "another file",
            Some(edited(|s| {
                s.header.file.name = "executions-2020-01-01T00-00-00Z.jsonl.gz".into()
            })),
        ),
        ("missing", None),
    ];
    for (what, bytes) in damages {
        match &bytes {
            Some(b) => std::fs::write(&summary_path, b).unwrap(),
            None => std::fs::remove_file(&summary_path).unwrap(),
        }
        let (answer, notices) = stats_json(&a);
        assert_eq!(answer, exact, "{what}: the file read instead");
        let noted = notices
            .iter()
            .any(|n| matches!(n, ReadNotice::Note(m) if m.contains("summary ignored")));
        assert_eq!(noted, bytes.is_some(), "{what}: {notices:?}");
        assert!(
            !notices.iter().any(|n| matches!(n, ReadNotice::Warning(_))),
            "{what}: the answer is complete: {notices:?}"
        );
    }

    // A link with the summary's name (the log sink can plant one through WASI), pointing
    // at the true summary outside: never followed, the file read instead.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("elsewhere.summary");
    std::fs::write(&target, &intact).unwrap();
    std::os::unix::fs::symlink(&target, &summary_path).unwrap();
    let (answer, notices) = stats_json(&a);
    assert_eq!(answer, exact, "a linked summary: the file read instead");
    let name = summary_path.file_name().unwrap().to_str().unwrap();
    assert!(
        notices
            .iter()
            .any(|n| matches!(n, ReadNotice::Warning(m) if m.contains(name) && m.contains("link"))),
        "the link is named: {notices:?}"
    );
}

/// The statistics and notices of the log in `dir`, its files read in pieces of `sizes`.
fn counted_in(
    dir: &Path,
    sizes: pieces::Sizes,
    group_by: Option<GroupBy>,
) -> (serde_json::Value, Vec<ReadNotice>) {
    let notices = std::sync::Mutex::new(Vec::new());
    let push = |n| notices.lock().unwrap().push(n);
    let reporter = Reporter::new(&push);
    let files = reader::discover(dir, &reporter).unwrap();
    let matcher = Matcher::new(Filter::default());
    let report = scan::count_all(&files, &matcher, None, &reporter, group_by, sizes);
    let value = serde_json::to_value(report).unwrap();
    (value, notices.into_inner().unwrap())
}

/// Files read in pieces side by side answer and report exactly as files read whole: with
/// a corrupt member in the middle of a rotated file, bad lines and an incomplete last line
/// spread over the live file's pieces, and a file of framed members that end inside lines
/// (which the sink never writes; a hostile plugin may).
#[test]
fn files_read_in_pieces_answer_and_report_as_whole_files() {
    use metaclaude_formats::gzip_blocks::BlockWriter;
    let (dir, summary) = small_log();
    let files = reader::discover(dir.path(), &Reporter::default()).unwrap();
    let rotated: Vec<&Path> = files
        .iter()
        .filter(|f| f.gzip)
        .map(|f| f.path.as_path())
        .collect();
    assert!(rotated.len() >= 3, "{files:?}");
    let tiny = pieces::Sizes {
        gzip: 1,
        plain: 4000,
    };
    let whole = counted_in(dir.path(), pieces::Sizes::WHOLE, Some(GroupBy::Script));
    let cut = counted_in(dir.path(), tiny, Some(GroupBy::Script));
    assert_eq!(whole.0["overall"]["count"], summary.executions);
    assert_json_close(&cut.0, &whole.0, "undamaged");
    assert_eq!(cut.1, [], "no notices");

    // A byte of the second rotated file's middle member flipped.
    let mut gz = std::fs::read(rotated[1]).unwrap();
    let open = std::fs::File::open(rotated[1]).unwrap();
    let members = pieces::cut(&open, gz.len() as u64, true, tiny).unwrap();
    assert!(members.len() >= 3, "{members:?}");
    let middle = members[members.len() / 2].start as usize + 200;
    gz[middle] ^= 0x55;
    std::fs::write(rotated[1], &gz).unwrap();
    // The third one's lines framed again in members cut inside lines.
    let mut lines = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(rotated[2]).unwrap())
        .read_to_end(&mut lines)
        .unwrap();
    let mut hostile = Vec::new();
    for chunk in lines.chunks(40_001) {
        let mut w = BlockWriter::new(&mut hostile, 1);
        w.write_all(chunk).unwrap();
        w.finish().unwrap();
    }
    std::fs::write(rotated[2], &hostile).unwrap();
    // Eight lines that are not records spread over the live file, and an incomplete last
    // line.
    let live_path = dir.path().join(reader::LIVE_FILE);
    let live = std::fs::read(&live_path).unwrap();
    let mut damaged = Vec::new();
    for (i, line) in live.split_inclusive(|b| *b == b'\n').enumerate() {
        if i % 29 == 5 && i < 29 * 8 {
            damaged.extend_from_slice(format!("not json {i}\n").as_bytes());
        }
        damaged.extend_from_slice(line);
    }
    damaged.extend_from_slice(b"{\"timestamp\":\"2026");
    std::fs::write(&live_path, &damaged).unwrap();
    assert!(damaged.len() as u64 > 10 * tiny.plain);

    for group_by in [None, Some(GroupBy::Script), Some(GroupBy::Day)] {
        let whole = counted_in(dir.path(), pieces::Sizes::WHOLE, group_by);
        let cut = counted_in(dir.path(), tiny, group_by);
        assert_json_close(&cut.0, &whole.0, &format!("{group_by:?}"));
        assert_eq!(cut.1, whole.1, "{group_by:?}");
        let text: Vec<String> = whole.1.iter().map(ToString::to_string).collect();
        let has = |s: &str| text.iter().filter(|t| t.contains(s)).count();
        assert_eq!(has("corrupt gzip data after line"), 1, "{text:#?}");
        assert_eq!(has("not a JSON log record"), 5, "{text:#?}");
        assert_eq!(
            has("3 more lines that are not JSON records"),
            1,
            "{text:#?}"
        );
        assert_eq!(has("incomplete last line"), 1, "{text:#?}");
        assert_eq!(text.len(), 8, "{text:#?}");
    }
    // The hostile file's lines are all counted: only the damaged file lost some.
    let (full, _) = counted_in(dir.path(), tiny, None);
    let lost = summary.executions - full["overall"]["count"].as_u64().unwrap();
    assert!(lost > 0 && lost < summary.executions / 5, "{lost}");
}

/// Random damage anywhere in rotated files (member headers and lengths, deflate data,
/// trailers) and in the live file: read in pieces, the log answers and reports exactly as
/// read whole.
#[test]
fn damaged_files_read_in_pieces_answer_as_whole_files() {
    let (dir, _) = small_log();
    let files = reader::discover(dir.path(), &Reporter::default()).unwrap();
    let originals: Vec<(std::path::PathBuf, Vec<u8>)> = files
        .iter()
        .map(|f| (f.path.clone(), std::fs::read(&f.path).unwrap()))
        .collect();
    let tiny = pieces::Sizes {
        gzip: 1,
        plain: 3000,
    };
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
    let mut next = move || rand::Rng::random::<u64>(&mut rng);
    let mut damaged_answers = 0;
    for round in 0..40 {
        for (path, bytes) in &originals {
            let mut bytes = bytes.clone();
            for _ in 0..next() % 3 {
                let at = next() as usize % bytes.len();
                match next() % 3 {
                    0 => bytes[at] ^= 1 << (next() % 8),
                    1 => bytes[at] = b'\n',
                    _ => bytes.truncate(at.max(1)),
                }
            }
            std::fs::write(path, &bytes).unwrap();
        }
        let whole = counted_in(dir.path(), pieces::Sizes::WHOLE, Some(GroupBy::Script));
        let cut = counted_in(dir.path(), tiny, Some(GroupBy::Script));
        assert_json_close(&cut.0, &whole.0, &format!("round {round}"));
        assert_eq!(cut.1, whole.1, "round {round}");
        damaged_answers += usize::from(!whole.1.is_empty());
    }
    assert!(
        damaged_answers > 20,
        "{damaged_answers} of 40 rounds met damage"
    );
}
