//! The execution log on disk: an append-only live file, rotation by size and by UTC day
//! (rename, then reopen: never copy-and-truncate, which loses lines written in between),
//! gzip compression of rotated files, and retention by age and total size.
//!
//! Layout of the log directory:
//! * `executions.jsonl`: the live file, one JSON object per line;
//! * `executions-YYYY-MM-DDTHH-MM-SS.ffffffZ.jsonl.gz`: a rotated file, named by the UTC time
//!   it was rotated at. Every line in it is older than its name and newer than the previous
//!   rotated file's name, so names sort by time and age comes from the name alone.
//!
//! Crash safety: lines are appended whole, a batch per `write`; a crash leaves at most an
//! incomplete last line. Compression writes `<name>.gz.tmp` and renames it into place only
//! once complete and synced; an interrupted compression is redone at the next start.
//!
//! A full disk: a write that fails is cut back to the last whole line (the live file is
//! truncated to its known size), and its lines stay queued (up to [`MAX_PENDING`]) to be
//! written once space is free again; a compression that fails removes its `.tmp` and is
//! retried at the next rotation, the rotated file staying readable uncompressed meanwhile.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, Utc};

use metaclaude_formats::log_files::{self, Kind, LIVE_FILE};

/// Queued bytes kept while writes fail (a full disk); past it, the oldest lines are dropped
/// and counted, so a long outage cannot exhaust the plugin's memory.
pub const MAX_PENDING: usize = 8 * 1024 * 1024;

/// Rotation and retention settings (from the plugin manifest's `[config]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub rotation_size_bytes: u64,
    pub retention_days: u32,
    /// Delete the oldest rotated files while all rotated files together exceed this.
    pub max_total_bytes: Option<u64>,
    pub compress: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            rotation_size_bytes: 100 * 1024 * 1024,
            retention_days: 30,
            max_total_bytes: None,
            compress: true,
        }
    }
}

pub struct LogWriter {
    dir: PathBuf,
    policy: Policy,
    live: File,
    live_size: u64,
    /// The UTC day the live file's first line belongs to (`None` while it is empty).
    live_day: Option<NaiveDate>,
    /// Lines waiting for the next `flush`.
    pending: Vec<u8>,
    /// Lines dropped because writes kept failing and the queue was full.
    pub dropped_lines: u64,
    /// Problems that did not stop logging (a failed compression), for the plugin to report.
    pub warnings: Vec<String>,
}

fn io_context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

impl LogWriter {
    /// Opens (or creates) the log in `dir`, finishing any rotation a crash interrupted.
    pub fn open(dir: impl Into<PathBuf>, policy: Policy, now: DateTime<Utc>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| io_context(e, "cannot create", &dir))?;
        let live_path = dir.join(LIVE_FILE);
        let live = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&live_path)
            .map_err(|e| io_context(e, "cannot open", &live_path))?;
        let live_size = live.metadata()?.len();
        let live_day = if live_size > 0 {
            first_line_day(&live_path).or(Some(now.date_naive()))
        } else {
            None
        };
        let mut writer = LogWriter {
            dir,
            policy,
            live,
            live_size,
            live_day,
            pending: Vec::new(),
            dropped_lines: 0,
            warnings: Vec::new(),
        };
        writer.finish_interrupted()?;
        writer.apply_retention(now)?;
        Ok(writer)
    }

    /// Queues one line (without its newline) for the next flush, rotating first if the line
    /// belongs to a new day or would push the live file past the size limit.
    pub fn append(&mut self, line: &str, now: DateTime<Utc>) -> io::Result<()> {
        let size = self.live_size + self.pending.len() as u64;
        let new_day = self.live_day.is_some_and(|d| d != now.date_naive());
        let too_big = size > 0 && size + line.len() as u64 + 1 > self.policy.rotation_size_bytes;
        if new_day || too_big {
            self.rotate(now)?;
        }
        if self.live_day.is_none() {
            self.live_day = Some(now.date_naive());
        }
        self.pending.extend_from_slice(line.as_bytes());
        self.pending.push(b'\n');
        Ok(())
    }

    /// Writes the queued lines in one append; with `sync`, also to stable storage. When
    /// the write fails, the file is cut back to its last whole line and the lines stay
    /// queued for the next flush.
    pub fn flush(&mut self, sync: bool) -> io::Result<()> {
        if !self.pending.is_empty() {
            if let Err(e) = self.live.write_all(&self.pending) {
                let live_path = self.dir.join(LIVE_FILE);
                // On WASI a failed write closes the file's stream for good: reopen. And
                // part of the buffer may have reached the file: cut it back so no half
                // line is left in the middle of the log.
                if let Ok(file) = OpenOptions::new().append(true).open(&live_path) {
                    self.live = file;
                }
                if self.live.metadata().is_ok_and(|m| m.len() > self.live_size) {
                    let _ = self.live.set_len(self.live_size);
                }
                self.bound_pending();
                // WASI turns every failed stream write, ENOSPC included, into EIO.
                let hint = if cfg!(target_os = "wasi") && e.raw_os_error() == Some(29) {
                    " (the disk may be full)"
                } else {
                    ""
                };
                let message = format!("cannot write {}: {e}{hint}", live_path.display());
                return Err(io::Error::new(e.kind(), message));
            }
            self.live_size += self.pending.len() as u64;
            self.pending.clear();
        }
        if sync {
            self.live.sync_data()?;
        }
        Ok(())
    }

    /// Drops the oldest whole lines while more than [`MAX_PENDING`] bytes are queued.
    fn bound_pending(&mut self) {
        let mut cut = 0;
        while self.pending.len() - cut > MAX_PENDING {
            match self.pending[cut..].iter().position(|&b| b == b'\n') {
                Some(end) => {
                    cut += end + 1;
                    self.dropped_lines += 1;
                }
                None => break,
            }
        }
        self.pending.drain(..cut);
    }

    /// Renames the live file to its rotated name, reopens a fresh one, compresses the
    /// rotated file and applies retention.
    pub fn rotate(&mut self, now: DateTime<Utc>) -> io::Result<()> {
        self.flush(true)?;
        if self.live_size == 0 {
            return Ok(());
        }
        let live_path = self.dir.join(LIVE_FILE);
        let mut stamp_time = now;
        let rotated = loop {
            let name = log_files::rotated_name(stamp_time, None);
            let candidate = self.dir.join(&name);
            let taken =
                candidate.exists() || self.dir.join(log_files::compressed_name(&name)).exists();
            if !taken {
                break candidate;
            }
            stamp_time += Duration::microseconds(1);
        };
        fs::rename(&live_path, &rotated).map_err(|e| io_context(e, "cannot rotate", &live_path))?;
        self.live = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&live_path)
            .map_err(|e| io_context(e, "cannot reopen", &live_path))?;
        self.live_size = 0;
        self.live_day = None;
        if self.policy.compress {
            // Also retries files an earlier failed compression left plain. A failure here
            // does not stop logging: the rotated file stays readable uncompressed.
            if let Err(e) = self.compress_rotated() {
                self.warnings.push(format!(
                    "cannot compress {}: {e} (kept uncompressed; retried at the next rotation)",
                    rotated.display()
                ));
            }
        }
        self.apply_retention(now)
    }

    fn compress_rotated(&self) -> io::Result<()> {
        for (name, path) in self.rotated_files()? {
            if log_files::parse(&name)
                .is_some_and(|n| n.kind == Kind::Rotated { compressed: false })
            {
                compress(&path)?;
            }
        }
        Ok(())
    }

    /// Compresses rotated files a crash left uncompressed and removes half-written `.tmp`s.
    fn finish_interrupted(&mut self) -> io::Result<()> {
        for (name, path) in self.rotated_files()? {
            if log_files::parse(&name).is_some_and(|n| n.kind == Kind::Partial) {
                fs::remove_file(&path)?;
            }
        }
        if self.policy.compress {
            self.compress_rotated()?;
        }
        Ok(())
    }

    /// Rotated files, plain, compressed or being compressed, as (name, path), oldest first.
    fn rotated_files(&self) -> io::Result<Vec<(String, PathBuf)>> {
        let mut files: Vec<(String, PathBuf)> = fs::read_dir(&self.dir)?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                log_files::parse(&name)
                    .is_some_and(|n| n.kind != Kind::Live)
                    .then(|| (name, e.path()))
            })
            .collect();
        files.sort();
        Ok(files)
    }

    /// Deletes rotated files older than the retention period (by the time in their name),
    /// then the oldest while the total exceeds the size cap.
    pub fn apply_retention(&mut self, now: DateTime<Utc>) -> io::Result<()> {
        let cutoff = now - Duration::days(self.policy.retention_days as i64);
        let mut kept = Vec::new();
        for (name, path) in self.rotated_files()? {
            match log_files::parse(&name).and_then(|n| n.rotated_at) {
                Some(t) if t < cutoff => fs::remove_file(&path)?,
                _ => kept.push(path),
            }
        }
        if let Some(cap) = self.policy.max_total_bytes {
            let mut sizes: Vec<(PathBuf, u64)> = kept
                .into_iter()
                .map(|p| {
                    let len = fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                    (p, len)
                })
                .collect();
            let mut total: u64 = sizes.iter().map(|(_, l)| l).sum();
            while total > cap && !sizes.is_empty() {
                let (oldest, len) = sizes.remove(0);
                fs::remove_file(&oldest)?;
                total -= len;
            }
        }
        Ok(())
    }
}

/// Gzips `path` to `path.gz` (through a synced `.gz.tmp`), then removes `path`. On
/// failure the `.tmp` is removed (on a full disk it would hold space for nothing).
fn compress(path: &Path) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(log_files::partial_name(&name, None));
    compress_through(path, &tmp).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

fn compress_through(path: &Path, tmp: &Path) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let gz = path.with_file_name(log_files::compressed_name(&name));
    {
        let mut input = File::open(path).map_err(|e| io_context(e, "cannot read", path))?;
        let out = File::create(tmp).map_err(|e| io_context(e, "cannot create", tmp))?;
        let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::new(6));
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            encoder.write_all(&buf[..n])?;
        }
        let out = encoder.finish()?;
        out.sync_all()?;
    }
    fs::rename(tmp, &gz).map_err(|e| io_context(e, "cannot rename", tmp))?;
    fs::remove_file(path)
}

/// The UTC day of the first line's `"timestamp"` (for a live file found at start-up).
fn first_line_day(path: &Path) -> Option<NaiveDate> {
    let mut head = vec![0u8; 4096];
    let n = File::open(path).ok()?.read(&mut head).ok()?;
    let text = std::str::from_utf8(&head[..n]).ok()?;
    let at = text.find("\"timestamp\":\"")? + "\"timestamp\":\"".len();
    DateTime::parse_from_rfc3339(text.get(at..at + 27)?)
        .ok()
        .map(|t| t.with_timezone(&Utc).date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn read_all(dir: &Path) -> Vec<String> {
        let mut lines = Vec::new();
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        names.sort();
        for p in names {
            let mut text = String::new();
            if p.to_string_lossy().ends_with(".gz") {
                flate2::read::MultiGzDecoder::new(File::open(&p).unwrap())
                    .read_to_string(&mut text)
                    .unwrap();
            } else {
                File::open(&p).unwrap().read_to_string(&mut text).unwrap();
            }
            lines.extend(text.lines().map(String::from));
        }
        lines
    }

    #[test]
    fn lines_queued_through_failing_writes_are_bounded_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(dir.path(), Policy::default(), Utc::now()).unwrap();
        let line = "x".repeat(1023);
        for _ in 0..(MAX_PENDING / 1024 + 10) {
            w.pending.extend_from_slice(line.as_bytes());
            w.pending.push(b'\n');
        }
        w.bound_pending();
        assert!(w.pending.len() <= MAX_PENDING);
        assert_eq!(w.dropped_lines, 10);
        assert!(w.pending.ends_with(b"x\n") && w.pending.starts_with(b"x"));
    }

    #[test]
    fn rotates_by_size_without_losing_or_duplicating_lines() {
        let dir = tempfile::tempdir().unwrap();
        let policy = Policy {
            rotation_size_bytes: 1000,
            ..Policy::default()
        };
        let now = at("2026-11-24T10:00:00Z");
        let mut w = LogWriter::open(dir.path(), policy, now).unwrap();
        for i in 0..500 {
            let t = now + Duration::milliseconds(i);
            w.append(
                &format!("{{\"timestamp\":\"{}\",\"n\":{i}}}", t.to_rfc3339()),
                t,
            )
            .unwrap();
            if i % 7 == 0 {
                w.flush(false).unwrap();
            }
        }
        w.flush(true).unwrap();
        let lines = read_all(dir.path());
        let live = lines.len();
        assert_eq!(live, 500);
        let ns: Vec<i64> = lines
            .iter()
            .map(|l| {
                l.rsplit(':')
                    .next()
                    .unwrap()
                    .trim_end_matches('}')
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            ns,
            (0..500).collect::<Vec<_>>(),
            "in order, none lost or duplicated"
        );
        let rotated = fs::read_dir(dir.path()).unwrap().count() - 1;
        assert!(rotated > 10, "{rotated}");
        for e in fs::read_dir(dir.path()).unwrap().flatten() {
            assert!(e.metadata().unwrap().len() <= 1000 || e.file_name() == LIVE_FILE);
        }
    }

    #[test]
    fn rotates_at_utc_midnight_and_names_carry_the_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut w =
            LogWriter::open(dir.path(), Policy::default(), at("2026-11-24T23:59:59Z")).unwrap();
        w.append("{\"a\":1}", at("2026-11-24T23:59:59Z")).unwrap();
        w.flush(false).unwrap();
        w.append("{\"a\":2}", at("2026-11-25T00:00:01Z")).unwrap();
        w.flush(false).unwrap();
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "executions-2026-11-25T00-00-01.000000Z.jsonl.gz".to_string(),
                LIVE_FILE.to_string()
            ]
        );
        assert_eq!(
            log_files::rotated_time(&names[0]),
            Some(at("2026-11-25T00:00:01Z"))
        );
    }

    #[test]
    fn retention_deletes_by_name_age_and_total_size() {
        let dir = tempfile::tempdir().unwrap();
        for stamp in [
            "2026-09-01T00-00-00.000000Z",
            "2026-11-01T00-00-00.000000Z",
            "2026-11-20T00-00-00.000000Z",
        ] {
            fs::write(
                dir.path().join(format!("executions-{stamp}.jsonl.gz")),
                vec![0u8; 100],
            )
            .unwrap();
        }
        let policy = Policy {
            retention_days: 30,
            max_total_bytes: Some(150),
            ..Policy::default()
        };
        LogWriter::open(dir.path(), policy, at("2026-11-24T00:00:00Z")).unwrap();
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        // September is past 30 days; of the rest only the newest fits in 150 bytes.
        assert_eq!(
            names,
            vec!["executions-2026-11-20T00-00-00.000000Z.jsonl.gz", LIVE_FILE]
        );
    }

    #[test]
    fn a_crash_during_compression_is_finished_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let rotated = dir
            .path()
            .join("executions-2026-11-24T01-00-00.000000Z.jsonl");
        fs::write(&rotated, "{\"a\":1}\n{\"a\":2}\n").unwrap();
        fs::write(
            dir.path().join(log_files::partial_name(
                "executions-2026-11-24T01-00-00.000000Z.jsonl",
                None,
            )),
            b"partial",
        )
        .unwrap();
        LogWriter::open(dir.path(), Policy::default(), at("2026-11-24T02:00:00Z")).unwrap();
        assert!(!rotated.exists());
        assert_eq!(read_all(dir.path()), vec!["{\"a\":1}", "{\"a\":2}"]);
    }
}
