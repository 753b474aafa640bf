//! Following an execution log directory as hosts write it: the records already there
//! (rotated files too, plain or gzip, through the log reader), then each complete line
//! appended to the live file. The live file is read through an open descriptor, so a
//! rotation (the file renamed, a new one started) loses nothing: the old descriptor is
//! read to its end before the new file is opened.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::logs::reader::{self, ReadNotices, Reporter, LIVE_FILE};
use crate::model::ExecutionResult;
use chrono::{DateTime, Utc};

/// The most bytes one call of [`Follower::poll`] reads, so that a huge backlog is taken
/// in steps and the caller stays responsive.
const MAX_READ_PER_POLL: usize = 8 << 20;
/// The longest line kept whole; a longer one is dropped (a result line of the shipped
/// sink never comes close).
const MAX_LINE: usize = 64 << 20;

/// An execution record of the log as its result, or `None` for any other line (lifecycle
/// events at DEBUG, damaged lines).
pub fn parse_record(line: &[u8]) -> Option<ExecutionResult> {
    // The log's own field that says what a line records, as the log sink writes it (or
    // with a space, as other JSON writers do); a result's fields are beside it.
    let finished = memchr::memmem::find(line, br#""event":"finished""#).is_some()
        || memchr::memmem::find(line, br#""event": "finished""#).is_some();
    if !finished {
        return None;
    }
    serde_json::from_slice(line).ok()
}

/// The live file of a log directory, read as it grows.
pub struct Follower {
    dir: PathBuf,
    live: Option<Live>,
    /// Bytes after the last newline read so far: a line still being written.
    partial: Vec<u8>,
}

struct Live {
    file: File,
    /// (device, inode) of what the descriptor reads.
    identity: (u64, u64),
    offset: u64,
}

fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

impl Follower {
    /// A follower of the log directory `dir` (which need not exist yet).
    pub fn new(dir: &Path) -> Follower {
        Follower {
            dir: dir.to_path_buf(),
            live: None,
            partial: Vec::new(),
        }
    }

    fn live_path(&self) -> PathBuf {
        self.dir.join(LIVE_FILE)
    }

    /// Every execution record already in the log that finished at or after `since`:
    /// rotated files through the log reader, then the live file from its start (it stays
    /// open for [`Follower::poll`]). A log directory that does not exist yet is empty.
    /// What reading the rotated files meets (a damaged file or line) goes to `notices`.
    pub fn start(
        &mut self,
        since: DateTime<Utc>,
        each: &mut impl FnMut(ExecutionResult),
        notices: ReadNotices<'_>,
    ) -> io::Result<()> {
        // Open the live file first: what is rotated after this is read through it.
        self.open_live()?;
        let reporter = Reporter::new(notices);
        let files = match reader::discover(&self.dir, &reporter) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        for file in files.iter().filter(|f| f.before.is_some()) {
            if !file.may_overlap(Some(since), None) {
                continue;
            }
            reader::for_each_line(file, &reporter, |_, line| {
                if let Some(r) = parse_record(line) {
                    if r.finished_at >= since {
                        each(r);
                    }
                }
                true
            });
        }
        while self.poll(&mut |r| {
            if r.finished_at >= since {
                each(r)
            }
        })? {}
        Ok(())
    }

    /// Opens the live file, never through a link (a plugin writing the directory may have
    /// planted one): a link is an error naming it, which the dashboard shows.
    fn open_live(&mut self) -> io::Result<()> {
        match crate::safe_fs::open_read(&self.live_path()) {
            Ok(file) => {
                let identity = identity(&file.metadata()?);
                self.live = Some(Live {
                    file,
                    identity,
                    offset: 0,
                });
                self.partial.clear();
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.live = None;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Reads what was appended since the last call, handing out each complete record.
    /// Returns whether there may be more to read at once (the read was cut at its cap).
    pub fn poll(&mut self, each: &mut impl FnMut(ExecutionResult)) -> io::Result<bool> {
        if self.live.is_none() {
            self.open_live()?;
        }
        let Some(live) = &mut self.live else {
            return Ok(false);
        };
        let len = live.file.metadata()?.len();
        if len < live.offset {
            // Truncated in place: start again from its beginning.
            live.offset = 0;
            self.partial.clear();
        }
        let more = self.read_new(each)?;
        if more {
            return Ok(true);
        }
        // Rotated: the path names another file now (or none yet). What the old one still
        // had was read above; go on with the new one.
        let current = std::fs::symlink_metadata(self.live_path())
            .ok()
            .map(|m| identity(&m));
        let ours = self.live.as_ref().map(|l| l.identity);
        if current != ours {
            self.open_live()?;
            if self.live.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn read_new(&mut self, each: &mut impl FnMut(ExecutionResult)) -> io::Result<bool> {
        let Some(live) = &mut self.live else {
            return Ok(false);
        };
        live.file.seek(SeekFrom::Start(live.offset))?;
        let mut buf = Vec::new();
        let read = (&mut live.file)
            .take(MAX_READ_PER_POLL as u64)
            .read_to_end(&mut buf)?;
        live.offset += read as u64;
        let mut rest = &buf[..];
        while let Some(n) = memchr::memchr(b'\n', rest) {
            let line = &rest[..n];
            if self.partial.is_empty() {
                if let Some(r) = parse_record(line) {
                    each(r);
                }
            } else {
                self.partial.extend_from_slice(line);
                if let Some(r) = parse_record(&self.partial) {
                    each(r);
                }
                self.partial.clear();
            }
            rest = &rest[n + 1..];
        }
        if self.partial.len() + rest.len() <= MAX_LINE {
            self.partial.extend_from_slice(rest);
        } else {
            self.partial.clear();
        }
        Ok(read == MAX_READ_PER_POLL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaclaude_formats::log_files::rotated_name;
    use std::io::Write;

    fn line(id: &str, at: DateTime<Utc>) -> String {
        let mut r = ExecutionResult::new(id, "hello", at);
        r.finished_at = at;
        r.success = true;
        let mut v = serde_json::to_value(&r).unwrap();
        v["event"] = "finished".into();
        v["level"] = "INFO".into();
        format!("{v}\n")
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn ids(f: &mut Follower) -> Vec<String> {
        let mut out = Vec::new();
        while f.poll(&mut |r| out.push(r.execution_id)).unwrap() {}
        out
    }

    #[test]
    fn new_lines_are_read_as_written_across_a_rotation_and_half_written_lines_wait() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join(LIVE_FILE);
        let now = Utc::now();
        let old = now - chrono::Duration::hours(3);
        append(
            &dir.path()
                .join(rotated_name(now + chrono::Duration::seconds(1), None)),
            &(line("01OLD", old) + &line("01R1", now)),
        );
        append(&live, &line("01A", now));
        let mut f = Follower::new(dir.path());
        let mut seen = Vec::new();
        f.start(
            now - chrono::Duration::hours(1),
            &mut |r| seen.push(r.execution_id),
            &|_| {},
        )
        .unwrap();
        assert_eq!(seen, ["01R1", "01A"], "rotated first, the old one left out");
        assert!(ids(&mut f).is_empty());

        // Half a line, then the rest.
        let b = line("01B", now);
        append(&live, &b[..10]);
        assert!(ids(&mut f).is_empty());
        append(&live, &b[10..]);
        append(&live, "not json\n");
        assert_eq!(ids(&mut f), ["01B"]);

        // A rotation: a last line into the old file after the rename, a new live file.
        let rotated = dir
            .path()
            .join(rotated_name(now + chrono::Duration::seconds(2), None));
        std::fs::rename(&live, &rotated).unwrap();
        append(&rotated, &line("01C", now));
        append(&live, &line("01D", now));
        assert_eq!(ids(&mut f), ["01C", "01D"]);
        append(&live, &line("01E", now));
        assert_eq!(ids(&mut f), ["01E"]);
    }

    #[test]
    fn a_missing_directory_is_empty_until_the_log_appears() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("later");
        let mut f = Follower::new(&logs);
        f.start(Utc::now(), &mut |_| panic!("nothing yet"), &|_| {})
            .unwrap();
        std::fs::create_dir(&logs).unwrap();
        append(&logs.join(LIVE_FILE), &line("01A", Utc::now()));
        assert_eq!(ids(&mut f), ["01A"]);
    }

    #[test]
    fn a_live_file_that_is_a_link_is_refused_naming_it_and_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let secret = dir.path().join("secret.jsonl");
        append(&secret, &line("01SECRET", Utc::now()));
        std::os::unix::fs::symlink("../secret.jsonl", logs.join(LIVE_FILE)).unwrap();
        let mut f = Follower::new(&logs);
        let e = f
            .start(
                Utc::now() - chrono::Duration::hours(1),
                &mut |r| panic!("read through the link: {}", r.execution_id),
                &|_| {},
            )
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("executions.jsonl is a symbolic link (to ../secret.jsonl)"),
            "{e}"
        );
        // Replaced by a real file: followed from then on.
        std::fs::remove_file(logs.join(LIVE_FILE)).unwrap();
        append(&logs.join(LIVE_FILE), &line("01A", Utc::now()));
        assert_eq!(ids(&mut f), ["01A"]);
    }
}
