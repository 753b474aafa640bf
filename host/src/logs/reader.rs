//! Finding the log's files and streaming their lines, plain or gzip, with bad input reported
//! (file and line) rather than fatal: one damaged file must not hide the rest of the log.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use metaclaude_formats::log_files::{self, Kind};

use super::pieces::Piece;

/// The live file's name inside the log directory.
pub use metaclaude_formats::log_files::LIVE_FILE;

/// One file of the log and the span of time its lines can fall in.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFile {
    /// Where it is: the log directory joined with the file's name.
    pub path: PathBuf,
    /// Whether it is a rotated `.jsonl.gz` (read through a gzip decoder); plain otherwise.
    pub gzip: bool,
    /// Lines are newer than this (the previous rotated file's time); `None` for the oldest.
    pub after: Option<DateTime<Utc>>,
    /// Lines are older than this (the file's rotation time); `None` for the live file.
    pub before: Option<DateTime<Utc>>,
    /// The rotated file's summary beside it (`metaclaude_formats::log_summary`), if one
    /// was written: not yet checked against the file.
    pub summary: Option<PathBuf>,
}

impl LogFile {
    /// Whether the file can hold a line in `[start, end)`, judged from names alone.
    pub fn may_overlap(&self, start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> bool {
        let too_old = matches!((self.before, start), (Some(b), Some(s)) if b < s);
        let too_new = matches!((self.after, end), (Some(a), Some(e)) if a >= e);
        !too_old && !too_new
    }
}

/// The log's files, oldest first: rotated files by the time in their names, then the live
/// file (names as `metaclaude_formats::log_files` defines them). Compressions in progress
/// and strays are ignored. A symbolic link, which a plugin writing the directory may have
/// planted, is never followed: one with a log file's name is reported on `reporter` and
/// skipped, and a log directory that is a link is refused ([`crate::safe_fs`]).
pub fn discover(dir: &Path, reporter: &Reporter) -> io::Result<Vec<LogFile>> {
    // Refuses the directory if it is a link; the files are opened by name in it.
    crate::safe_fs::Dir::open(dir)?;
    let mut rotated = Vec::new();
    let mut summaries = std::collections::HashMap::new();
    let mut live = None;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(parsed) = log_files::parse(name) else {
            continue;
        };
        if entry.file_type()?.is_symlink() {
            let refused = crate::safe_fs::Refused::link(dir, name);
            reporter.warn(format_args!(
                "{}: {refused}; skipped",
                entry.path().display()
            ));
            continue;
        }
        match (parsed.kind, parsed.rotated_at) {
            (Kind::Live, _) => live = Some(entry.path()),
            (Kind::Rotated { compressed }, Some(t)) => {
                rotated.push((t, parsed.rotation.to_string(), compressed, entry.path()))
            }
            (Kind::Summary, _) => {
                summaries.insert(parsed.rotation.to_string(), entry.path());
            }
            _ => {}
        }
    }
    // The plain and the compressed file of one rotation can coexist for a moment while the
    // sink compresses: keep the plain one only if the .gz is missing.
    rotated.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)).then(b.2.cmp(&a.2)));
    rotated.dedup_by(|later, earlier| later.1 == earlier.1);
    let mut files = Vec::with_capacity(rotated.len() + 1);
    let mut after = None;
    for (t, rotation, gzip, path) in rotated {
        files.push(LogFile {
            path,
            gzip,
            after,
            before: Some(t),
            summary: summaries.remove(&rotation),
        });
        after = Some(t);
    }
    if let Some(path) = live {
        files.push(LogFile {
            path,
            gzip: false,
            after,
            before: None,
            summary: None,
        });
    }
    Ok(files)
}

/// What reading the log met that the person asking should hear of: a problem (a file, a
/// line or the rest of a file left out of the answer) or a note (not a problem). The
/// library prints neither; the caller gets each as it happens (the CLI prints it on
/// stderr, its `Display` being the whole line: `warning: ...` or `note: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadNotice {
    /// Something left out of the answer: the file, the line, what was wrong.
    Warning(String),
    /// Not a problem: an incomplete last line is what a live log looks like.
    Note(String),
}

impl std::fmt::Display for ReadNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadNotice::Warning(msg) => write!(f, "warning: {msg}"),
            ReadNotice::Note(msg) => write!(f, "note: {msg}"),
        }
    }
}

/// Where the notices of a read go: called as each is met, from the reading threads.
pub type ReadNotices<'a> = &'a (dyn Fn(ReadNotice) + Sync);

/// Notices nobody hears (the problems are still counted).
fn ignore(_: ReadNotice) {}

/// Problems met while reading, handed to the caller's [`ReadNotices`] as they happen and
/// counted, so the query's answer can say it is incomplete. At most [`MAX_LINE_REPORTS`]
/// bad lines per file are reported one by one; the rest are summed up at the end of the
/// file.
pub struct Reporter<'a> {
    /// Problems reported so far (warnings; notes are not counted).
    pub problems: Mutex<u64>,
    notices: ReadNotices<'a>,
}

/// Counts the problems and tells no one.
impl Default for Reporter<'_> {
    fn default() -> Self {
        Reporter::new(&ignore)
    }
}

impl std::fmt::Debug for Reporter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

/// Bad lines of one file reported one by one; those past it are counted in one warning at
/// the end of the file.
pub const MAX_LINE_REPORTS: u64 = 5;

impl<'a> Reporter<'a> {
    /// Counts the problems and hands every notice to `notices`.
    pub fn new(notices: ReadNotices<'a>) -> Reporter<'a> {
        Reporter {
            problems: Mutex::new(0),
            notices,
        }
    }

    /// Counts a problem and hands it on as a [`ReadNotice::Warning`].
    pub fn warn(&self, msg: impl std::fmt::Display) {
        *self.problems.lock().unwrap() += 1;
        (self.notices)(ReadNotice::Warning(msg.to_string()));
    }

    /// A note is not a problem: an incomplete last line is what a live log looks like.
    pub fn note(&self, msg: impl std::fmt::Display) {
        (self.notices)(ReadNotice::Note(msg.to_string()));
    }

    /// Problems reported so far.
    pub fn count(&self) -> u64 {
        *self.problems.lock().unwrap()
    }
}

/// Streams `file`'s complete lines (1-based numbers) to `each`, which returns `false` to
/// stop early. Reports an unreadable file, corrupt gzip data and an incomplete last line on
/// `reporter` and returns normally: the caller goes on with the other files.
pub fn for_each_line(
    file: &LogFile,
    reporter: &Reporter,
    mut each: impl FnMut(u64, &[u8]) -> bool,
) {
    let Some(open) = open(file, reporter) else {
        return;
    };
    let ended = read_piece(
        &open,
        file.gzip,
        Piece::WHOLE,
        &mut each,
        &mut |line, bytes| report_too_long(file, reporter, line, bytes),
    );
    report_end(file, reporter, 0, &ended);
}

/// Opens `file` to read it, or reports why it cannot be (it is then skipped).
pub fn open(file: &LogFile, reporter: &Reporter) -> Option<fs::File> {
    let path = file.path.display();
    match crate::safe_fs::open_read(&file.path) {
        Ok(f) => Some(f),
        Err(e) if crate::safe_fs::refusal(&e).is_some() => {
            reporter.warn(format_args!("{path}: {e}; skipped"));
            None
        }
        Err(e) => {
            reporter.warn(format_args!(
                "{path}: cannot open ({e}); skipped. Check its permissions."
            ));
            None
        }
    }
}

/// Streams the complete lines of `piece` of the open log file `open` (gzip members or
/// plain lines, as [`stream_lines`] does), numbered from the piece's start; a line longer
/// than [`MAX_LINE_BYTES`] goes to `too_long` instead.
pub fn read_piece(
    open: &fs::File,
    gzip: bool,
    piece: Piece,
    each: &mut impl FnMut(u64, &[u8]) -> bool,
    too_long: &mut impl FnMut(u64, usize),
) -> Result<Tail, (u64, io::Error)> {
    let bytes = piece.of(open);
    if gzip {
        let members = super::inflate::Members::new(io::BufReader::with_capacity(256 * 1024, bytes));
        stream_lines(members, MAX_LINE_BYTES, each, too_long)
    } else {
        stream_lines(bytes, MAX_LINE_BYTES, each, too_long)
    }
}

/// Reports a line of `file` (its number `line`) too long to be read.
pub fn report_too_long(file: &LogFile, reporter: &Reporter, line: u64, bytes: usize) {
    reporter.warn(format_args!(
        "{}:{line}: a line of {bytes} bytes, longer than the {} MiB a log line may have; line \
         skipped",
        file.path.display(),
        MAX_LINE_BYTES >> 20
    ))
}

/// Reports how reading `file` ended (an incomplete last line, damage), when its last piece
/// read started after `lines_before` lines: the numbers `ended` holds are the piece's own.
pub fn report_end(
    file: &LogFile,
    reporter: &Reporter,
    lines_before: u64,
    ended: &Result<Tail, (u64, io::Error)>,
) {
    let path = file.path.display();
    match ended {
        Ok(Tail::Complete { .. } | Tail::Stopped) => {}
        Ok(Tail::Incomplete { line, bytes }) => reporter.note(format_args!(
            "{path}:{}: incomplete last line ({bytes} bytes, no newline) skipped; \
             a writer may still be appending it",
            lines_before + line
        )),
        Err((line, e)) if file.gzip => reporter.warn(format_args!(
            "{path}: corrupt gzip data after line {} ({e}); the rest of this file is \
             skipped. `gzip -t {path}` shows the damage.",
            lines_before + line
        )),
        Err((line, e)) => reporter.warn(format_args!(
            "{path}: read error after line {} ({e}); the rest of this file is skipped",
            lines_before + line
        )),
    }
}

/// How a stream ended.
#[derive(Debug, PartialEq)]
pub enum Tail {
    /// The input ended with a newline (or was empty): nothing was left over.
    Complete {
        /// How many lines it held (empty ones too).
        lines: u64,
    },
    /// The line callback returned `false`; the rest was not read.
    Stopped,
    /// Bytes after the last newline: a line still being written (or cut by a crash).
    Incomplete {
        /// Its 1-based line number.
        line: u64,
        /// How many bytes it has so far.
        bytes: usize,
    },
}

/// The longest line the reader holds: a longer one is skipped and reported, so that a
/// hostile or damaged file (a small `.gz` that inflates to gigabytes without a newline)
/// cannot make the reader allocate without bound. The shipped log sink cannot write a
/// line this long: each record passes through its memory, capped at 128 MiB.
pub const MAX_LINE_BYTES: usize = 256 << 20;

// A member inflated whole is held as a line may be.
const _: () = assert!(super::inflate::MAX_MEMBER_BYTES == MAX_LINE_BYTES);

/// Splits `r` into lines with a byte scan over a large buffer: no per-line allocation and
/// memory bounded by the longest line, itself bounded by `max_line` bytes: a longer line
/// is passed to `too_long` (its number and length) instead of `each`, and the lines after
/// it are read as usual. Errors carry the number of the last complete line.
pub fn stream_lines<R: Read>(
    mut r: R,
    max_line: usize,
    each: &mut impl FnMut(u64, &[u8]) -> bool,
    too_long: &mut impl FnMut(u64, usize),
) -> Result<Tail, (u64, io::Error)> {
    // Room for a line of `max_line` bytes and its newline.
    let capacity = max_line.saturating_add(1);
    let mut buf = vec![0u8; capacity.min(1 << 20)];
    let mut filled = 0;
    let mut line_no = 0u64;
    // The bytes dropped so far of a line longer than `max_line`, while it is skipped.
    let mut skipping: Option<usize> = None;
    loop {
        if filled == buf.len() {
            if buf.len() < capacity {
                // A line longer than the buffer: grow rather than split it.
                buf.resize(buf.len().saturating_mul(2).min(capacity), 0);
            } else {
                // No newline in more than `max_line` bytes: drop the line's bytes as
                // they come until its newline.
                skipping = Some(skipping.unwrap_or(0) + filled);
                filled = 0;
            }
        }
        let n = match r.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((line_no, e)),
        };
        if n == 0 {
            let bytes = skipping.unwrap_or(0) + filled;
            return Ok(if bytes == 0 {
                Tail::Complete { lines: line_no }
            } else {
                Tail::Incomplete {
                    line: line_no + 1,
                    bytes,
                }
            });
        }
        let scan_from = filled;
        filled += n;
        let mut start = 0;
        let mut search = scan_from;
        if let Some(dropped) = skipping {
            match memchr::memchr(b'\n', &buf[..filled]) {
                None => {
                    skipping = Some(dropped + filled);
                    filled = 0;
                    continue;
                }
                Some(end) => {
                    line_no += 1;
                    too_long(line_no, dropped + end);
                    skipping = None;
                    start = end + 1;
                    search = start;
                }
            }
        }
        while let Some(pos) = memchr::memchr(b'\n', &buf[search..filled]) {
            let end = search + pos;
            line_no += 1;
            let line = &buf[start..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() && !each(line_no, line) {
                return Ok(Tail::Stopped);
            }
            start = end + 1;
            search = start;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_of(data: &[u8]) -> (Vec<(u64, String)>, Result<Tail, u64>) {
        let (lines, too_long, tail) = lines_within(data, MAX_LINE_BYTES);
        assert_eq!(too_long, []);
        (lines, tail)
    }

    /// The lines of `data` read with lines of at most `max` bytes, and the skipped ones.
    #[allow(clippy::type_complexity)]
    fn lines_within(
        data: &[u8],
        max: usize,
    ) -> (Vec<(u64, String)>, Vec<(u64, usize)>, Result<Tail, u64>) {
        let mut out = Vec::new();
        let mut long = Vec::new();
        let tail = stream_lines(
            data,
            max,
            &mut |n, l| {
                out.push((n, String::from_utf8_lossy(l).into_owned()));
                true
            },
            &mut |n, bytes| long.push((n, bytes)),
        )
        .map_err(|(n, _)| n);
        (out, long, tail)
    }

    /// A line past the limit is skipped and counted, whatever the buffer's size then;
    /// the lines around it are read. (A small `.gz` that inflates to gigabytes with no
    /// newline made the buffer grow until the reader ran out of memory.)
    #[test]
    fn a_line_past_the_limit_is_skipped_not_held() {
        let data =
            b"ok\n0123456789\nshort\n0123456789abcdefghijklmnop\n\n12345678\nend\nxxxxxxxxxxxx";
        let (lines, long, tail) = lines_within(data, 8);
        assert_eq!(
            lines,
            vec![
                (1, "ok".into()),
                (3, "short".into()),
                (6, "12345678".into()),
                (7, "end".into())
            ]
        );
        assert_eq!(long, vec![(2, 10), (4, 26)]);
        assert_eq!(tail, Ok(Tail::Incomplete { line: 8, bytes: 12 }));
        // Read one byte at a time, so that the skip spans many reads.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let mut seen = Vec::new();
        let mut skipped = Vec::new();
        let tail = stream_lines(
            Trickle(data),
            8,
            &mut |n, _| {
                seen.push(n);
                true
            },
            &mut |n, bytes| skipped.push((n, bytes)),
        );
        assert_eq!(seen, [1, 3, 6, 7]);
        assert_eq!(skipped, long);
        assert_eq!(
            tail.map_err(|(n, _)| n),
            Ok(Tail::Incomplete { line: 8, bytes: 12 })
        );
    }

    #[test]
    fn splits_lines_and_notices_an_incomplete_last_one() {
        let (lines, tail) = lines_of(b"a\nbb\r\n\nccc");
        assert_eq!(lines, vec![(1, "a".into()), (2, "bb".into())]);
        assert_eq!(tail, Ok(Tail::Incomplete { line: 4, bytes: 3 }));
        let (_, tail) = lines_of(b"a\n");
        assert_eq!(tail, Ok(Tail::Complete { lines: 1 }));
    }

    #[test]
    fn lines_longer_than_the_buffer_stay_whole() {
        let long = "x".repeat(3 << 20);
        let data = format!("{long}\nshort\n");
        let (lines, tail) = lines_of(data.as_bytes());
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].1.len(), long.len());
        assert_eq!(tail, Ok(Tail::Complete { lines: 2 }));
    }

    #[test]
    fn discovers_files_oldest_first_and_skips_strays() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "executions.jsonl",
            "executions-2024-01-15T10-00-00.000000Z.jsonl.gz",
            "executions-2024-01-14T10-00-00.000000Z.jsonl.gz",
            "executions-2024-01-14T10-00-00.000000Z.jsonl",
            "executions-2024-01-16T10-00-00.000000Z.jsonl.gz.tmp",
            "notes.txt",
        ] {
            fs::write(dir.path().join(name), b"").unwrap();
        }
        let files = discover(dir.path(), &Reporter::default()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "executions-2024-01-14T10-00-00.000000Z.jsonl.gz",
                "executions-2024-01-15T10-00-00.000000Z.jsonl.gz",
                "executions.jsonl"
            ]
        );
        let t = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        // The second file holds (14th 10:00, 15th 10:00).
        assert!(files[1].may_overlap(t("2024-01-15T09:00:00Z"), None));
        assert!(!files[1].may_overlap(t("2024-01-15T11:00:00Z"), None));
        assert!(!files[1].may_overlap(None, t("2024-01-14T10:00:00Z")));
        assert!(files[2].may_overlap(t("2030-01-01T00:00:00Z"), None));
    }

    #[test]
    fn links_with_log_names_are_reported_and_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("logs");
        fs::create_dir(&dir).unwrap();
        fs::write(tmp.path().join("secret"), b"{\"secret\": 1}\n").unwrap();
        let rotated = "executions-2024-01-14T10-00-00.000000Z.jsonl.gz";
        for name in ["executions.jsonl", rotated] {
            std::os::unix::fs::symlink("../secret", dir.join(name)).unwrap();
        }
        fs::write(
            dir.join("executions-2024-01-15T10-00-00.000000Z.jsonl"),
            b"ok\n",
        )
        .unwrap();
        let reporter = Reporter::default();
        let files = discover(&dir, &reporter).unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(reporter.count(), 2, "each link reported");
        // A link that took a listed file's name before it was opened is refused too.
        let swapped = LogFile {
            path: dir.join(rotated),
            gzip: false,
            after: None,
            before: None,
            summary: None,
        };
        let mut read = Vec::new();
        for_each_line(&swapped, &reporter, |_, l| {
            read.push(l.to_vec());
            true
        });
        assert!(read.is_empty());
        assert_eq!(reporter.count(), 3);
        // A log directory that is a link is refused.
        std::os::unix::fs::symlink("logs", tmp.path().join("linked")).unwrap();
        let e = discover(&tmp.path().join("linked"), &reporter).unwrap_err();
        assert!(e.to_string().contains("linked is a symbolic link"), "{e}");
    }

    #[test]
    fn corrupt_gzip_member_keeps_the_lines_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join("executions-2024-01-14T10-00-00.000000Z.jsonl.gz");
        let mut data = Vec::new();
        for chunk in ["one\ntwo\n", "three\n"] {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(chunk.as_bytes()).unwrap();
            data.extend(enc.finish().unwrap());
        }
        let good = data.len();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"four\nfive\n").unwrap();
        let mut bad = enc.finish().unwrap();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        bad[mid + 1] ^= 0xff;
        data.extend(bad);
        fs::write(&path, &data).unwrap();
        let file = discover(dir.path(), &Reporter::default())
            .unwrap()
            .remove(0);
        let reporter = Reporter::default();
        let mut seen = Vec::new();
        for_each_line(&file, &reporter, |_, l| {
            seen.push(String::from_utf8_lossy(l).into_owned());
            true
        });
        assert_eq!(&seen[..3], ["one", "two", "three"]);
        assert_eq!(reporter.count(), 1);
        assert!(good < data.len());
    }
}
