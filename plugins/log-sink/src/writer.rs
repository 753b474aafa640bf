//! The execution log on disk: an append-only live file, rotation by size and by UTC day
//! (rename, then reopen: never copy-and-truncate, which loses lines written in between),
//! gzip compression of rotated files, and retention by age and total size.
//!
//! Layout of the log directory (names from [`metaclaude_formats::log_files`]):
//! * `executions.jsonl`: the live file, one JSON object per line;
//! * `executions-<STAMP>-<TAG>.jsonl`: a rotated file, named by the UTC time it was rotated
//!   at and by the tag of the writer that rotated it, then the same with `.gz` once
//!   compressed; `.gz.<TAG>.tmp`: a compression (or a file of long lines) in progress;
//! * `executions-<STAMP>-<TAG>.jsonl.summary`: the rotated file's summary
//!   ([`metaclaude_formats::log_summary`]), `.summary.<TAG>.tmp` while being written.
//!
//! # Summaries
//!
//! Once a rotated file is final the writer that makes it so writes its summary beside it:
//! at compression, from the bytes it compresses (so every byte is read once, not twice),
//! describing the `.gz`; with `compress = false`, once the plain file has settled (the
//! moment it would have been compressed), describing the plain file. A summary is written
//! to this writer's partial name, synced and renamed into place: its content depends only
//! on the file's bytes, so two writers that summarise one file at once rename identical
//! files onto one name, and there is exactly one summary per file. It goes with its file:
//! removed with a stale `.gz`, by retention, and when its file is gone. A file the reader
//! would have to warn about (a damaged line) gets none and is read instead.
//!
//! # Any number of writers, no lock
//!
//! Every host process (each `metaclaude run`, a `metaclaude batch`) has its own log sink,
//! and all of them may write one directory at once. WASI has no file locks, so they
//! coordinate through the file system alone:
//!
//! * **Appends are whole lines, one host `write` each.** The host turns one guest `write`
//!   into one append (`pwritev2(RWF_APPEND)`), but takes at most so many bytes per call
//!   (what its `check-write` says: 16 MiB in metaclaude, [`MAX_ATOMIC_WRITE`] in
//!   wasmtime-wasi; the writer asks at its first line longer than that): a bigger buffer becomes
//!   several appends, between which another writer's append could land in the middle of
//!   a line. So a batch is written in chunks of whole lines of at most that size, and
//!   lines longer than that are never appended at all: they are written whole to a file
//!   of their own, which becomes a rotated file right after the live file is rotated
//!   ([`LogWriter::flush`]).
//! * **Before appending, the writer checks that its descriptor is still the live file**
//!   (unless it checked less than [`RECHECK`] ago): the identity (device and inode; inside
//!   the sandbox, the host's `metadata-hash` of them, which wasi-libc reports as `st_ino`)
//!   of the open descriptor against that of the path; when another writer rotated, it
//!   reopens. The size that decides rotation is the file's real size, read from the same
//!   `stat`, and the day of the live file comes from its first line: neither is one
//!   writer's memory.
//! * **Rotated names are unique per writer** (its random tag), so two writers rotating at
//!   once never rename onto the same name; the second rename finds no live file, or
//!   rotates a fresh one, and both are harmless.
//! * **A writer may still append to a file just rotated** (it checked before the
//!   rename). So, as logrotate's `delaycompress`: a rotated file is compressed only once it
//!   has not changed for [`Policy::grace`] (default [`DEFAULT_GRACE`]); the compression
//!   checks that the file did not change while it read it; the plain file is removed only
//!   a grace later still, once the `.gz`'s recorded length (its members' trailers) equals the
//!   plain file's (a late append makes the `.gz` stale: it is removed and redone), which
//!   also lets a reader that listed the directory before the `.gz` appeared open the plain
//!   file. Retention never deletes a plain rotated file within the grace; start-up removes
//!   only partial files older than the grace (another writer's compression in progress is
//!   younger). A plain rotated file stays readable by `metaclaude logs` throughout.
//!
//! Crash safety: a crash leaves at most an incomplete last line (a host killed during an
//! append can leave part of it: the kernel stops a write between pages for a fatal
//! signal), which the next append ends with a newline rather than glue its first line to
//! it. A compression writes `.gz.<TAG>.tmp` and renames it into place only once complete
//! and synced; one left half done is removed once stale.
//!
//! A full disk: a write that fails is cut back to the last whole line (if no other writer
//! appended since), and its lines stay queued (up to [`MAX_PENDING`]) to be written once
//! space is free again; a compression that fails removes its `.tmp` and is retried later,
//! the rotated file staying readable uncompressed meanwhile.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use chrono::{DateTime, Duration, NaiveDate, Utc};

use metaclaude_formats::gzip_blocks::{self, BlockWriter};
use metaclaude_formats::log_files::{self, Kind, LIVE_FILE, TIDIED_FILE};
use metaclaude_formats::log_summary::{FileCheck, SummarisedFile, SummaryBuilder};

/// Queued bytes kept while writes fail (a full disk); past it, the oldest lines are dropped
/// and counted, so a long outage cannot exhaust the plugin's memory.
pub const MAX_PENDING: usize = 8 * 1024 * 1024;

/// The most one guest `write` carries and stays one append on a host that does not say
/// more: wasmtime-wasi's file stream accepts 64 KiB per write. In the sandbox the writer
/// asks the host (its `check-write`: metaclaude's takes 16 MiB) and uses what it
/// says, up to [`MAX_APPEND`]. Should a host then take less, the writer notices (a short
/// write), warns and uses the smaller size from then on.
pub const MAX_ATOMIC_WRITE: usize = 64 * 1024;

/// The most this writer appends at once, whatever the host takes: a longer line is
/// written aside (see the module's docs).
pub const MAX_APPEND: usize = 16 * 1024 * 1024;

/// A batch is appended in chunks of whole lines of about this size, a longer line alone:
/// the host copies each write out of the sandbox and then into the page cache, and a chunk
/// this size is still in the CPU's cache for the second copy (appends of 12 MB, the
/// whole queue at once, took the log sink twice the CPU with 1 MiB outputs).
pub const APPEND_CHUNK: usize = 64 * 1024;

/// How many bytes one `write` to the live file `live` (in the directory `dir`) carries
/// as one append: what the host's `check-write` says on an append stream of it, opened
/// through the preopened directory that holds `dir`. `None` when that cannot be asked.
#[cfg(target_os = "wasi")]
fn host_append_capacity(dir: &Path, live: &Path) -> Option<usize> {
    use wasip2::filesystem::preopens::get_directories;
    use wasip2::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};
    let (preopen, at) = get_directories()
        .into_iter()
        .filter(|(_, at)| dir.starts_with(at))
        .max_by_key(|(_, at)| at.len())?;
    let relative = live.strip_prefix(&at).ok()?.to_str()?;
    let file = preopen
        .open_at(
            PathFlags::empty(),
            relative,
            OpenFlags::CREATE,
            DescriptorFlags::WRITE,
        )
        .ok()?;
    let permit = file.append_via_stream().ok()?.check_write().ok()?;
    usize::try_from(permit).ok()
}

/// Natively the writer keeps to [`MAX_ATOMIC_WRITE`] (its tests, the host's benchmark).
#[cfg(not(target_os = "wasi"))]
fn host_append_capacity(_dir: &Path, _live: &Path) -> Option<usize> {
    None
}

/// How long a rotated file must have been left unchanged before it is compressed or
/// deleted, and a partial file before it counts as abandoned: far longer than a writer
/// takes between checking its descriptor and appending (at most [`RECHECK`]), with room
/// for a stalled process and coarse file times.
pub const DEFAULT_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// How long after checking that its descriptor is the live file a writer appends without
/// checking again (at most a tenth of the grace): an append that lands in a file rotated
/// meanwhile is as safe as one a microsecond late, since a rotated file is left alone
/// until it has not changed for the grace, and it spares a busy writer two host calls per
/// batch (each a round trip to wasmtime's blocking thread pool).
pub const RECHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// Rotation and retention settings (from the plugin manifest's `[config]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub rotation_size_bytes: u64,
    pub retention_days: u32,
    /// Delete the oldest rotated files while all rotated files together exceed this.
    pub max_total_bytes: Option<u64>,
    pub compress: bool,
    /// See [`DEFAULT_GRACE`].
    pub grace: std::time::Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            rotation_size_bytes: 100 * 1024 * 1024,
            retention_days: 30,
            max_total_bytes: None,
            compress: true,
            grace: DEFAULT_GRACE,
        }
    }
}

/// What identifies a file while it exists, unchanged by appends and renames: the host's
/// device and inode (inside the sandbox, the host's hash of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

#[cfg(not(target_os = "wasi"))]
mod identity {
    use super::FileId;
    use std::os::unix::fs::MetadataExt;
    use std::{fs, io, path::Path};

    pub fn of_file(file: &fs::File) -> io::Result<(FileId, u64)> {
        let m = file.metadata()?;
        Ok((FileId(m.dev(), m.ino()), m.len()))
    }

    pub fn of_path(path: &Path) -> io::Result<Option<(FileId, u64)>> {
        match fs::metadata(path) {
            Ok(m) => Ok(Some((FileId(m.dev(), m.ino()), m.len()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `std::os::wasi::fs::MetadataExt` is unstable; wasi-libc's `stat` fills `st_dev` (1) and
/// `st_ino` (wasi:filesystem's `metadata-hash`, a hash of the host's device and inode).
#[cfg(target_os = "wasi")]
mod identity {
    use super::FileId;
    use std::os::fd::AsRawFd;
    use std::{fs, io, path::Path};

    fn id(st: &libc::stat) -> (FileId, u64) {
        (FileId(st.st_dev, st.st_ino), st.st_size as u64)
    }

    pub fn of_file(file: &fs::File) -> io::Result<(FileId, u64)> {
        // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat fills the struct it is given, on a descriptor we own.
        if unsafe { libc::fstat(file.as_raw_fd(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(id(&st))
    }

    pub fn of_path(path: &Path) -> io::Result<Option<(FileId, u64)>> {
        let name = path.to_str().ok_or(io::ErrorKind::InvalidInput)?;
        let name = std::ffi::CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: as above.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: stat fills the struct it is given; the path is NUL-terminated.
        if unsafe { libc::stat(name.as_ptr(), &mut st) } != 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::NotFound => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(id(&st)))
    }
}

/// Writes `buf` at `offset` of a file this writer alone has open (a line written aside):
/// a positional write, which in the sandbox is wasi:filesystem's `write`, done by the host
/// on the calling thread, where a stream's `write` (what `Write` on a file is) is handed
/// to a thread of the host's blocking pool 64 KiB at a time: 16 round trips between
/// threads for a line of 1 MiB. Not for the live file, which other hosts append to.
mod positional {
    use std::fs::File;
    use std::io;

    #[cfg(not(target_os = "wasi"))]
    pub fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
    }

    /// `std::os::wasi::fs::FileExt` is unstable; wasi-libc's `pwrite` is the same call.
    #[cfg(target_os = "wasi")]
    pub fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        while !buf.is_empty() {
            let at = libc::off_t::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
            // At most 64 KiB a call: the host copies what is written out of the sandbox
            // first, and a larger buffer would be a fresh mapping of its own each time.
            let len = buf.len().min(super::MAX_ATOMIC_WRITE);
            // SAFETY: `buf` holds at least `len` readable bytes; the descriptor is one we
            // own and keep open for the call.
            let n = unsafe { libc::pwrite(file.as_raw_fd(), buf.as_ptr().cast(), len, at) };
            match n {
                n if n > 0 => {
                    buf = &buf[n as usize..];
                    offset += n as u64;
                }
                0 => return Err(io::ErrorKind::WriteZero.into()),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The queued lines, as one text. Written ones leave the front by moving a start, not the
/// bytes after them: a batch leaves in appends of up to 64 KiB, and moving what follows
/// each one moved a batch's bytes many times over. The text is emptied once all is
/// written; what was written stays in front until a line is queued while more than half
/// the text is written (so each byte moves at most once, and none while a flush writes).
///
/// Invariant: `start` is where a line begins (all the text before it is whole lines).
#[derive(Default)]
struct Pending {
    text: String,
    start: usize,
}

impl Pending {
    /// The bytes still to be written.
    fn queued(&self) -> &[u8] {
        &self.text.as_bytes()[self.start..]
    }

    /// Queues the line `write` appends to the text it is given (without a newline), and
    /// its newline; returns the line's length with the newline.
    fn push_line_with(&mut self, write: impl FnOnce(&mut String)) -> usize {
        if self.start > self.text.len() / 2 {
            self.text.drain(..self.start);
            self.start = 0;
        }
        let before = self.text.len();
        write(&mut self.text);
        self.text.push('\n');
        self.text.len() - before
    }

    /// Queues a newline before all the lines (in the room of the written newline before
    /// them, if there is one).
    fn push_newline_front(&mut self) {
        if self.start > 0 {
            self.start -= 1;
            self.text.replace_range(self.start..self.start + 1, "\n");
        } else {
            self.text.insert(0, '\n');
        }
    }

    /// Takes `text` as the queue, its line from `start` to its end (a newline), when
    /// nothing is queued: the text before `start` is not written (ASCII, so `start` is a
    /// character boundary).
    fn adopt(&mut self, text: String, start: usize) {
        debug_assert!(self.queued().is_empty() && text.ends_with('\n'));
        debug_assert!(text.as_bytes()[..start].is_ascii());
        self.text = text;
        self.start = start;
    }

    /// Drops the first `n` queued bytes (whole lines, written or given up on).
    fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.text.is_char_boundary(self.start));
        if self.start == self.text.len() {
            self.text.clear();
            self.start = 0;
        }
    }
}

/// The live file as this writer has it open.
struct Live {
    file: File,
    id: FileId,
    /// The file's size at the last check, plus this writer's appends since.
    size: u64,
    /// The UTC day of the file's first line (`None` while it is empty).
    day: Option<NaiveDate>,
    /// Written to since the last sync.
    dirty: bool,
    /// The same file open for reading its last byte (see `ends_whole`), once needed.
    reader: Option<File>,
    /// The file's size right after this writer's last append.
    ours_end: Option<u64>,
    /// When the path was last seen to name this file.
    checked: Instant,
}

pub struct LogWriter {
    dir: PathBuf,
    live_path: PathBuf,
    policy: Policy,
    /// Letters and digits in this writer's rotated and partial names.
    tag: String,
    live: Option<Live>,
    /// Lines waiting for the next `flush`, each ending with a newline...
    pending: Pending,
    /// ... as (length, time of the event) in order.
    lines: VecDeque<(usize, DateTime<Utc>)>,
    /// See [`MAX_ATOMIC_WRITE`].
    atomic_write: usize,
    /// Whether `atomic_write` is settled: the host was asked (at the first line longer
    /// than the default, the only kind its answer changes anything for), or it took less.
    atomic_write_known: bool,
    /// See [`RECHECK`].
    recheck: std::time::Duration,
    /// The last stamp this writer gave a rotated name: the next is later.
    last_stamp: Option<DateTime<Utc>>,
    last_maintenance: Instant,
    /// Lines dropped because writes kept failing and the queue was full.
    pub dropped_lines: u64,
    /// Problems that did not stop logging (a failed compression), for the plugin to report.
    pub warnings: Vec<String>,
}

fn io_context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// A tag no other writer has: 10 letters and digits from a randomly keyed hash of the time.
fn new_tag() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    hasher.write_u128(nanos);
    let mut n = hasher.finish();
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..10)
        .map(|_| {
            let d = digits[(n % 36) as usize] as char;
            n /= 36;
            d
        })
        .collect()
}

impl LogWriter {
    /// Opens (or creates) the log in `dir`, then tidies it: finishes what writers that
    /// are gone left half done, compresses what has settled, applies retention; unless a
    /// writer tidied it less than half the grace ago ([`TIDIED_FILE`]).
    pub fn open(dir: impl Into<PathBuf>, policy: Policy, now: DateTime<Utc>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| io_context(e, "cannot create", &dir))?;
        let grace = policy.grace;
        let mut writer = LogWriter {
            live_path: dir.join(LIVE_FILE),
            dir,
            policy,
            tag: new_tag(),
            live: None,
            pending: Pending::default(),
            lines: VecDeque::new(),
            atomic_write: MAX_ATOMIC_WRITE,
            atomic_write_known: false,
            recheck: RECHECK.min(grace / 10),
            last_stamp: None,
            last_maintenance: Instant::now(),
            dropped_lines: 0,
            warnings: Vec::new(),
        };
        writer.check_live(now.date_naive())?;
        // A month of rotated files takes a listing of hundreds of names through the
        // sandbox: a writer starting right after another tidied (a one-shot `run` after
        // another) leaves it to the next, as a running writer waits half the grace.
        if !writer.tidied_recently(now) {
            writer.maintain(now);
        }
        Ok(writer)
    }

    /// This writer's tag in the names it makes.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Queues one line (without its newline), of an event at `at`, for the next flush.
    pub fn append(&mut self, line: &str, at: DateTime<Utc>) {
        self.append_with(at, |out| out.push_str(line));
    }

    /// Queues the line `write` appends (without its newline) to the text it is given, of
    /// an event at `at`, for the next flush: the line is written into the queue itself.
    pub fn append_with(&mut self, at: DateTime<Utc>, write: impl FnOnce(&mut String)) {
        let len = self.pending.push_line_with(write);
        self.lines.push_back((len, at));
    }

    /// Whether no line is queued (all were written, or none came).
    pub fn is_idle(&self) -> bool {
        self.lines.is_empty()
    }

    /// Queues the line that `text` holds from `start` to its end, newline included, of
    /// an event at `at`, when no line is queued ([`is_idle`](Self::is_idle)): the text
    /// becomes the queue, so a long line is not copied into it. The bytes before `start`
    /// must be ASCII; they are not written. Otherwise (lines queued) the line is copied
    /// in after them.
    pub fn append_in_place(&mut self, at: DateTime<Utc>, text: String, start: usize) {
        let len = text.len() - start;
        if self.is_idle() && text.ends_with('\n') && text.as_bytes()[..start].is_ascii() {
            self.pending.adopt(text, start);
            self.lines.push_back((len, at));
        } else {
            self.append_with(at, |out| out.push_str(text[start..].trim_end_matches('\n')));
        }
    }

    /// Writes the queued lines, rotating first whenever a line would push the live file
    /// past the size limit or belongs to a later UTC day than its first line; with `sync`,
    /// also to stable storage. When a write fails, the file is cut back to its last whole
    /// line and the lines stay queued for the next flush. Tidies the directory every half
    /// grace.
    pub fn flush(&mut self, sync: bool) -> io::Result<()> {
        let written = self.write_pending();
        let written = match written {
            Ok(()) if sync => self.sync(),
            other => other,
        };
        if written.is_err() {
            self.bound_pending();
        }
        if self.last_maintenance.elapsed() >= self.policy.grace / 2 {
            self.maintain(Utc::now());
        }
        written
    }

    fn sync(&mut self) -> io::Result<()> {
        if let Some(live) = self.live.as_mut().filter(|l| l.dirty) {
            live.file.sync_data()?;
            live.dirty = false;
        }
        Ok(())
    }

    fn write_pending(&mut self) -> io::Result<()> {
        // Set once the live file was rotated for the first queued line: if another writer
        // filled the new one at once, the line goes in anyway rather than rotating again.
        let mut rotated_for_front = false;
        while let Some(&(len, at)) = self.lines.front() {
            let day = at.date_naive();
            let (size, live_day) = self.check_live(day)?;
            if len > self.atomic_write && !self.atomic_write_known {
                self.atomic_write_known = true;
                let capacity = host_append_capacity(&self.dir, &self.live_path);
                if let Some(capacity) = capacity.filter(|&c| c > 0) {
                    self.atomic_write = capacity.min(MAX_APPEND);
                }
            }
            if len > self.atomic_write {
                self.write_aside()?;
                rotated_for_front = false;
                continue;
            }
            let new_day = live_day.is_some_and(|d| day > d);
            let too_big = size > 0 && size + len as u64 > self.policy.rotation_size_bytes;
            if (new_day || too_big) && !rotated_for_front {
                self.rotate(at)?;
                rotated_for_front = true;
                continue;
            }
            // The lines that fit in one append and in the live file: a chunk of about
            // [`APPEND_CHUNK`], or one longer line alone.
            let (mut count, mut bytes) = (0, 0);
            for &(len, at) in &self.lines {
                let fits = size + (bytes + len) as u64 <= self.policy.rotation_size_bytes;
                let chunk_full = count > 0 && bytes + len > APPEND_CHUNK;
                if bytes + len > self.atomic_write
                    || chunk_full
                    || at.date_naive() > day
                    || (count > 0 && !fits)
                {
                    break;
                }
                count += 1;
                bytes += len;
            }
            if !self.ends_whole(size) {
                // A writer died (or failed) half way through an append: end its fragment
                // so that our first line is not glued to it.
                self.pending.push_newline_front();
                let appended = self.append_chunk(1);
                self.pending.consume(1);
                appended?;
                self.live.as_mut().expect("checked above").size += 1;
            }
            self.append_chunk(bytes)?;
            let live = self.live.as_mut().expect("checked above");
            live.size += bytes as u64;
            live.ours_end = Some(live.size);
            live.day.get_or_insert(day);
            live.dirty = true;
            self.drain(count, bytes);
            rotated_for_front = false;
        }
        Ok(())
    }

    fn drain(&mut self, count: usize, bytes: usize) {
        self.pending.consume(bytes);
        self.lines.drain(..count);
    }

    /// The live file, reopened if the path no longer names the file this writer has open
    /// (another writer rotated it); its real size, and the day of its first line
    /// (`fallback` when that has no timestamp).
    fn check_live(&mut self, fallback: NaiveDate) -> io::Result<(u64, Option<NaiveDate>)> {
        if let Some(live) = self.live.as_ref() {
            if live.checked.elapsed() < self.recheck {
                return Ok((live.size, live.day));
            }
        }
        let seen = identity::of_path(&self.live_path)
            .map_err(|e| io_context(e, "cannot check", &self.live_path))?;
        let current = match (&self.live, seen) {
            (Some(live), Some((id, _))) => live.id == id,
            _ => false,
        };
        if current {
            let live = self.live.as_mut().expect("current");
            live.size = seen.expect("current").1;
            live.checked = Instant::now();
            if live.size == 0 {
                live.day = None;
            }
        } else {
            self.leave_live()?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.live_path)
                .map_err(|e| io_context(e, "cannot open", &self.live_path))?;
            let (id, size) = identity::of_file(&file)?;
            self.live = Some(Live {
                file,
                id,
                size,
                day: None,
                dirty: false,
                reader: None,
                ours_end: None,
                checked: Instant::now(),
            });
        }
        let live = self.live.as_mut().expect("opened above");
        if live.day.is_none() && live.size > 0 {
            live.day = Some(first_line_day(&self.live_path).unwrap_or(fallback));
        }
        Ok((live.size, live.day))
    }

    /// Stops using the open live file, syncing what this writer wrote to it.
    fn leave_live(&mut self) -> io::Result<()> {
        if let Some(live) = self.live.take().filter(|l| l.dirty) {
            live.file.sync_data()?;
        }
        Ok(())
    }

    /// Whether the live file, `size` bytes long, ends with a newline (or cannot be read):
    /// every append ends with one, but a host killed during an append can leave part of it
    /// (the kernel stops a write between pages for a fatal signal).
    fn ends_whole(&mut self, size: u64) -> bool {
        let live = self.live.as_mut().expect("checked before");
        if size == 0 || live.ours_end == Some(size) {
            return true; // empty, or what it ends with is our last append
        }
        if live.reader.is_none() {
            live.reader = File::open(&self.live_path)
                .ok()
                .filter(|f| identity::of_file(f).is_ok_and(|(id, _)| id == live.id));
        }
        let Some(reader) = live.reader.as_mut() else {
            return true;
        };
        // Another host's append in progress also ends in the middle of a line for a
        // moment (the file grows page by page, and its writer may be descheduled half way
        // through): only a tail that stays so, looked at over about 60 ms, is a fragment.
        // Should that still be an append in progress, the newline we add lands after it
        // (appends to one file are serialised), which leaves a blank line: never a split
        // or lost one. Readers skip blank lines.
        let mut size = size;
        let mut waits = [0u64, 2, 8, 50].into_iter().peekable();
        while let Some(wait) = waits.next() {
            if wait > 0 {
                std::thread::sleep(std::time::Duration::from_millis(wait));
            }
            let mut last = [0u8; 1];
            let read = reader
                .seek(SeekFrom::Start(size - 1))
                .and_then(|_| reader.read_exact(&mut last));
            if read.is_err() || last[0] == b'\n' {
                return true;
            }
            match identity::of_file(reader) {
                Ok((_, now)) if now != size => size = now,
                Ok(_) if waits.peek().is_none() => return false,
                Ok(_) => {}
                Err(_) => return true,
            }
        }
        true // appends keep coming, and each ends whole
    }

    /// One append of the first `bytes` queued bytes (whole lines, at most one atomic write).
    fn append_chunk(&mut self, bytes: usize) -> io::Result<()> {
        let live = self.live.as_mut().expect("checked before");
        let chunk = &self.pending.queued()[..bytes];
        let result = match live.file.write(chunk) {
            Ok(n) if n == bytes => Ok(()),
            Ok(0) => Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => {
                // The host took less than we thought one append carries: the rest goes
                // in a second append (another writer's line may land between the two)
                // and from now on chunks are no bigger than what it took.
                self.atomic_write = n;
                self.atomic_write_known = true;
                self.warnings.push(format!(
                    "the host took {n} of {bytes} bytes in one write to {}: appends are at most {n} bytes from now on",
                    self.live_path.display()
                ));
                live.file.write_all(&chunk[n..])
            }
            Err(e) => Err(e),
        };
        result.map_err(|e| self.failed_write(e))
    }

    /// After a failed append: drops the descriptor (on WASI a failed write closes its
    /// stream for good), cuts a partly written line off the end of the file, and says why.
    fn failed_write(&mut self, e: io::Error) -> io::Error {
        if let Some(live) = self.live.take() {
            self.cut_incomplete_line(live.id);
        }
        // WASI turns every failed stream write, ENOSPC included, into EIO.
        let hint = if cfg!(target_os = "wasi") && e.raw_os_error() == Some(29) {
            " (the disk may be full)"
        } else {
            ""
        };
        let message = format!("cannot write {}: {e}{hint}", self.live_path.display());
        io::Error::new(e.kind(), message)
    }

    /// Cuts the live file back to its last whole line if it ends in the middle of one (a
    /// write that failed half way), unless it is no longer the file `id` or grew since:
    /// other writers only ever append whole lines, which must not be cut.
    fn cut_incomplete_line(&self, id: FileId) {
        let cut = || -> io::Result<()> {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&self.live_path)?;
            let (seen, size) = identity::of_file(&file)?;
            if seen != id || size == 0 {
                return Ok(());
            }
            let window = size.min(self.atomic_write as u64 + 1);
            let mut tail = vec![0u8; window as usize];
            file.seek(SeekFrom::Start(size - window))?;
            file.read_exact(&mut tail)?;
            let keep = match tail.iter().rposition(|&b| b == b'\n') {
                Some(i) if i + 1 == tail.len() => return Ok(()),
                Some(i) => size - window + i as u64 + 1,
                None if window == size => 0,
                None => return Ok(()),
            };
            if identity::of_file(&file)?.1 == size {
                file.set_len(keep)?;
            }
            Ok(())
        };
        let _ = cut();
    }

    /// Writes the queued lines from the first (one too long for one append) up to the next
    /// UTC day into a file of their own, through a partial name, then rotates the live file
    /// and renames the new file into place as the rotated file right after it: the lines
    /// join the log whole, in order, without any other writer's append inside them.
    fn write_aside(&mut self) -> io::Result<()> {
        let first = self.lines[0].1;
        let (mut count, mut bytes, mut last) = (0, 0, first);
        for &(len, at) in &self.lines {
            if at.date_naive() > first.date_naive() {
                break;
            }
            count += 1;
            bytes += len;
            last = last.max(at);
        }
        let rotation = log_files::rotated_name(first, Some(&self.tag));
        let tmp = self
            .dir
            .join(log_files::partial_name(&rotation, Some(&self.tag)));
        let result = (|| {
            let out = File::create(&tmp).map_err(|e| io_context(e, "cannot create", &tmp))?;
            positional::write_all_at(&out, &self.pending.queued()[..bytes], 0)
                .and_then(|()| out.sync_data())
                .map_err(|e| io_context(e, "cannot write", &tmp))?;
            if self.live.as_ref().is_some_and(|l| l.size > 0) {
                self.rotate(first)?;
            }
            let target = self.unused_rotated_path(last);
            fs::rename(&tmp, &target).map_err(|e| io_context(e, "cannot rename", &tmp))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        self.drain(count, bytes);
        Ok(())
    }

    /// Renames the live file to this writer's next rotated name, unless the path already
    /// names another file (another writer rotated it first), and leaves it.
    pub fn rotate(&mut self, at: DateTime<Utc>) -> io::Result<()> {
        let ours = self.live.as_ref().map(|l| l.id);
        let seen = identity::of_path(&self.live_path)
            .map_err(|e| io_context(e, "cannot check", &self.live_path))?;
        if ours.is_some() && seen.map(|s| s.0) == ours {
            let target = self.unused_rotated_path(at);
            match fs::rename(&self.live_path, &target) {
                Ok(()) => {}
                // Another writer rotated it between the check and the rename.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_context(e, "cannot rotate", &self.live_path)),
            }
        }
        self.leave_live()
    }

    /// This writer's rotated name for `at`, later than any it gave before, not yet used.
    fn unused_rotated_path(&mut self, at: DateTime<Utc>) -> PathBuf {
        let at = DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at);
        let mut stamp = match self.last_stamp {
            Some(last) if last >= at => last + Duration::microseconds(1),
            _ => at,
        };
        loop {
            let name = log_files::rotated_name(stamp, Some(&self.tag));
            let path = self.dir.join(&name);
            if !path.exists() && !self.dir.join(log_files::compressed_name(&name)).exists() {
                self.last_stamp = Some(stamp);
                return path;
            }
            stamp += Duration::microseconds(1);
        }
    }

    /// Drops the oldest whole lines while more than [`MAX_PENDING`] bytes are queued.
    fn bound_pending(&mut self) {
        let (mut count, mut bytes) = (0, 0);
        while self.pending.queued().len() - bytes > MAX_PENDING && count < self.lines.len() {
            bytes += self.lines[count].0;
            count += 1;
        }
        self.dropped_lines += count as u64;
        self.drain(count, bytes);
    }

    /// Tidies the directory; what fails is kept as a warning, never stops logging.
    /// Marks the time in [`TIDIED_FILE`].
    pub fn maintain(&mut self, now: DateTime<Utc>) {
        self.last_maintenance = Instant::now();
        let tidied = self.tidy(now).and_then(|()| {
            // Written, not only opened: the write is what moves its modification time.
            fs::write(
                self.dir.join(TIDIED_FILE),
                format!("{}\n", Utc::now().to_rfc3339()),
            )
        });
        if let Err(e) = tidied {
            self.warnings.push(format!(
                "cannot tidy the log in {}: {e}",
                self.dir.display()
            ));
        }
    }

    /// Whether a writer tidied the directory less than half the grace before `now` (how
    /// often a running writer tidies), by [`TIDIED_FILE`]'s modification time; a time
    /// after `now` (a clock set back) does not count.
    fn tidied_recently(&self, now: DateTime<Utc>) -> bool {
        let Ok(at) = fs::symlink_metadata(self.dir.join(TIDIED_FILE)).and_then(|m| m.modified())
        else {
            return false;
        };
        (now - DateTime::<Utc>::from(at))
            .to_std()
            .is_ok_and(|age| age < self.policy.grace / 2)
    }

    /// Whether `meta`'s file has been left unchanged for the grace.
    fn settled(&self, meta: &fs::Metadata, wall: SystemTime) -> bool {
        meta.modified()
            .ok()
            .and_then(|t| wall.duration_since(t).ok())
            .is_some_and(|age| age >= self.policy.grace)
    }

    /// Removes partial files older than the grace; compresses plain rotated files that
    /// have settled; removes a plain file once its settled `.gz` holds all of it; deletes
    /// rotated files past the retention period (by the time in their names), then the
    /// oldest while the total exceeds the size cap. A plain file within the grace is never
    /// compressed or deleted: another writer may still append to it.
    fn tidy(&mut self, now: DateTime<Utc>) -> io::Result<()> {
        let wall = SystemTime::now();
        let mut rotations: BTreeMap<String, Rotation> = BTreeMap::new();
        for entry in fs::read_dir(&self.dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(parsed) = log_files::parse(&name) else {
                continue;
            };
            let Some(at) = parsed.rotated_at else {
                continue;
            };
            let slot = rotations
                .entry(parsed.rotation.to_string())
                .or_insert_with(|| Rotation::new(at));
            // Only the few files that may change are looked at here; a .gz only if needed.
            let stat = || entry.metadata().ok().map(|m| (entry.path(), m));
            match parsed.kind {
                Kind::Rotated { compressed: false } => slot.plain = stat(),
                Kind::Rotated { compressed: true } => slot.gz = Some(Gz::new(entry.path())),
                Kind::Partial => slot.partials.extend(stat()),
                Kind::Summary => slot.summary = Some(entry.path()),
                Kind::Live => {}
            }
        }
        for (name, rot) in rotations.iter_mut() {
            if rot.plain.is_none() && rot.gz.is_none() {
                // Its file may be gone (another writer's retention or stale .gz removal
                // stopped half way). A listing can miss files that exist (inside the
                // sandbox `readdir` pages by index, so entries that others add or remove
                // meanwhile shift it): only the file's own name, looked up, says so.
                if let Some(summary) = rot.summary.take() {
                    let gz = self.dir.join(log_files::compressed_name(name));
                    if !self.dir.join(name).exists() && !gz.exists() {
                        remove(&summary)?;
                    }
                }
            }
            for (path, meta) in std::mem::take(&mut rot.partials) {
                if self.settled(&meta, wall) {
                    remove(&path)?; // its writer is gone
                } else {
                    rot.busy = true;
                }
            }
            let Some((plain, plain_meta)) = rot.plain.clone() else {
                continue;
            };
            if !self.settled(&plain_meta, wall) {
                continue;
            }
            if plain_meta.len() == 0 {
                remove(&plain)?; // an empty rotation (two writers rotated at once)
                rot.plain = None;
                continue;
            }
            match rot.gz.as_mut() {
                Some(gz) => {
                    if !gz.meta().is_some_and(|m| self.settled(m, wall)) {
                        continue;
                    }
                    if gzip_length(&gz.path) == Some(plain_meta.len()) {
                        remove(&plain)?;
                        rot.plain = None;
                    } else {
                        // The plain file grew after it was compressed: compress it again
                        // (and summarise it again).
                        remove(&gz.path)?;
                        rot.gz = None;
                        if let Some(summary) = rot.summary.take() {
                            remove(&summary)?;
                        }
                    }
                }
                None if self.policy.compress && !rot.busy => match self.compress(&plain, name) {
                    Ok(gz) => {
                        rot.gz = gz;
                        rot.summary = Some(self.dir.join(log_files::summary_name(name)))
                            .filter(|p| p.exists());
                    }
                    Err(e) => self.warnings.push(format!(
                        "cannot compress {}: {e} (kept uncompressed; retried later)",
                        plain.display()
                    )),
                },
                None if rot.summary.is_none() && !rot.busy => {
                    // Not compressed: the file is final once settled; summarise it now.
                    match self.summarise_plain(&plain, &plain_meta, name) {
                        Ok(written) => rot.summary = written,
                        Err(e) => self.warnings.push(format!(
                            "cannot summarise {}: {e} (read whole by queries; retried later)",
                            plain.display()
                        )),
                    }
                }
                None => {}
            }
        }
        let cutoff = now - Duration::days(self.policy.retention_days as i64);
        let mut total: u64 = match self.policy.max_total_bytes {
            Some(_) => rotations.values_mut().map(Rotation::bytes).sum(),
            None => 0,
        };
        for rot in rotations.values_mut() {
            let expired = rot.at < cutoff;
            let over_cap = self.policy.max_total_bytes.is_some_and(|cap| total > cap);
            if !(expired || over_cap) {
                continue;
            }
            if rot
                .plain
                .as_ref()
                .is_some_and(|(_, m)| !self.settled(m, wall))
            {
                continue;
            }
            total = total.saturating_sub(rot.bytes());
            let gz = rot.gz.take().map(|gz| gz.path);
            let files = rot.plain.take().map(|(p, _)| p).into_iter().chain(gz);
            // The summary last: a reader never finds a file without it that had one.
            for path in files.chain(rot.summary.take()) {
                remove(&path)?;
            }
        }
        Ok(())
    }

    /// Gzips `plain` (named `rotation`) to its `.gz`, through this writer's partial name,
    /// synced, and writes the `.gz`'s summary from the same bytes; gives up (`None`) if
    /// the file changed while it was read. Leaves `plain`.
    fn compress(&mut self, plain: &Path, rotation: &str) -> io::Result<Option<Gz>> {
        let tmp = self
            .dir
            .join(log_files::partial_name(rotation, Some(&self.tag)));
        let gz = self.dir.join(log_files::compressed_name(rotation));
        let result: io::Result<_> = (|| {
            let mut input = File::open(plain).map_err(|e| io_context(e, "cannot read", plain))?;
            let before = input.metadata()?;
            let out = File::create(&tmp).map_err(|e| io_context(e, "cannot create", &tmp))?;
            // Members of whole lines that give their own length: `metaclaude logs` inflates
            // each in one call (any gzip reader reads the file).
            let mut encoder = BlockWriter::new(out, 6);
            let mut buf = vec![0u8; 256 * 1024];
            let mut read = 0u64;
            let mut summary = SummaryBuilder::new();
            loop {
                let n = input.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                read += n as u64;
                encoder.write_all(&buf[..n])?;
                summary.feed(&buf[..n]);
            }
            encoder.finish()?.sync_all()?;
            let after = fs::metadata(plain)?;
            if after.len() != read || after.modified().ok() != before.modified().ok() {
                return Ok(None); // a late append: compressed at a later pass
            }
            fs::rename(&tmp, &gz).map_err(|e| io_context(e, "cannot rename", &tmp))?;
            Ok(Some((Gz::new(gz.clone()), summary)))
        })();
        let result = result.map(|done| {
            done.map(|(gz, summary)| {
                if let Err(e) = self.write_summary(rotation, &gz.path, true, summary) {
                    self.warnings.push(format!(
                        "cannot summarise {}: {e} (read whole by queries)",
                        gz.path.display()
                    ));
                }
                gz
            })
        });
        match result {
            Ok(Some(done)) => Ok(Some(done)),
            // Another writer removed the plain file (it compressed it first), or our
            // partial file (we stalled past the grace): nothing lost, nothing to do.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let _ = fs::remove_file(&tmp);
                Ok(None)
            }
            other => {
                let _ = fs::remove_file(&tmp);
                other
            }
        }
    }
}

impl LogWriter {
    /// Writes the summary of the settled plain rotated file `plain` (named `rotation`,
    /// `meta` its metadata when found settled), answering where; nothing if it changed
    /// while read.
    fn summarise_plain(
        &self,
        plain: &Path,
        meta: &fs::Metadata,
        rotation: &str,
    ) -> io::Result<Option<PathBuf>> {
        let mut input = File::open(plain).map_err(|e| io_context(e, "cannot read", plain))?;
        let mut summary = SummaryBuilder::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut read = 0u64;
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            read += n as u64;
            summary.feed(&buf[..n]);
        }
        let after = input.metadata()?;
        if after.len() != read
            || after.len() != meta.len()
            || after.modified().ok() != meta.modified().ok()
        {
            return Ok(None); // a late append: summarised at a later pass
        }
        self.write_summary(rotation, plain, false, summary)
    }

    /// Finishes `summary` for `file` (the rotation `rotation`'s `.gz`, or its plain file)
    /// and renames it into place through this writer's partial name, synced; answers
    /// where. A file the builder refuses gets no summary (queries read it).
    fn write_summary(
        &self,
        rotation: &str,
        file: &Path,
        gzip: bool,
        summary: SummaryBuilder,
    ) -> io::Result<Option<PathBuf>> {
        let mut data = File::open(file).map_err(|e| io_context(e, "cannot read", file))?;
        let size = data.metadata()?.len();
        let check = FileCheck::of(&mut data, size, gzip)?;
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let Ok(summary) = summary.finish(SummarisedFile { name, size, check }) else {
            return Ok(None);
        };
        let tmp = self
            .dir
            .join(log_files::partial_summary_name(rotation, &self.tag));
        let target = self.dir.join(log_files::summary_name(rotation));
        let written = (|| {
            let mut out = File::create(&tmp).map_err(|e| io_context(e, "cannot create", &tmp))?;
            out.write_all(&summary.to_bytes())?;
            out.sync_all()?;
            fs::rename(&tmp, &target).map_err(|e| io_context(e, "cannot rename", &tmp))
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map(|()| Some(target))
    }
}

/// The files of one rotation found in the directory.
struct Rotation {
    at: DateTime<Utc>,
    plain: Option<(PathBuf, fs::Metadata)>,
    gz: Option<Gz>,
    partials: Vec<(PathBuf, fs::Metadata)>,
    /// Its summary.
    summary: Option<PathBuf>,
    /// Another writer is compressing it (a partial file within the grace).
    busy: bool,
}

impl Rotation {
    fn new(at: DateTime<Utc>) -> Self {
        Rotation {
            at,
            plain: None,
            gz: None,
            partials: Vec::new(),
            summary: None,
            busy: false,
        }
    }

    /// What it takes on disk for good: the `.gz` (a plain file beside it is a passing
    /// copy), else the plain file.
    fn bytes(&mut self) -> u64 {
        match (&mut self.gz, &self.plain) {
            (Some(gz), _) => gz.meta().map_or(0, |m| m.len()),
            (None, Some((_, m))) => m.len(),
            (None, None) => 0,
        }
    }
}

/// A `.gz` of a rotation, looked at only when needed (there are many, and they never change).
struct Gz {
    path: PathBuf,
    meta: Option<Option<fs::Metadata>>,
}

impl Gz {
    fn new(path: PathBuf) -> Self {
        Gz { path, meta: None }
    }

    fn meta(&mut self) -> Option<&fs::Metadata> {
        self.meta
            .get_or_insert_with(|| fs::metadata(&self.path).ok())
            .as_ref()
    }
}

/// Removes a file another writer may have removed first.
fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_context(e, "cannot remove", path)),
        _ => Ok(()),
    }
}

/// The uncompressed length of a gzip file this sink wrote: the sum of its members' recorded
/// lengths, each member found from the length its header gives (`gzip_blocks`). `None` if
/// a member is not framed so, or the chain does not end exactly at the file's end.
fn gzip_length(path: &Path) -> Option<u64> {
    let mut file = File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    let (mut at, mut total) = (0u64, 0u64);
    let mut header = [0u8; gzip_blocks::HEADER_LEN];
    while at < size {
        file.seek(SeekFrom::Start(at)).ok()?;
        file.read_exact(&mut header).ok()?;
        let len = gzip_blocks::member_len(&header)? as u64;
        file.seek(SeekFrom::Start(at + len - 4)).ok()?;
        let mut recorded = [0u8; 4];
        file.read_exact(&mut recorded).ok()?;
        total += u64::from(u32::from_le_bytes(recorded));
        at += len;
    }
    (at == size).then_some(total)
}

/// The UTC day of the first line's `"timestamp"`.
fn first_line_day(path: &Path) -> Option<NaiveDate> {
    let mut head = vec![0u8; 4096];
    let n = File::open(path).ok()?.read(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head[..n]);
    let start = text.find("\"timestamp\":\"")? + "\"timestamp\":\"".len();
    let end = start + text[start..].find('"')?;
    DateTime::parse_from_rfc3339(&text[start..end])
        .ok()
        .map(|t| t.with_timezone(&Utc).date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::SubsecRound;
    use metaclaude_formats::log_summary::{read_summary, Dimension, SummaryView};
    use std::collections::{HashMap, HashSet};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The log's files in `dir`, sorted (not the tidy marker).
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != TIDIED_FILE)
            .collect();
        names.sort();
        names
    }

    fn gunzip(path: &Path) -> String {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        text
    }

    /// The log's lines as `metaclaude logs` reads them: rotations oldest first (the `.gz`
    /// when both forms exist), then the live file; partial files never. Every `.gz` must
    /// decode completely.
    fn read_log(dir: &Path) -> Vec<String> {
        let mut rotations: BTreeMap<String, (Option<PathBuf>, Option<PathBuf>)> = BTreeMap::new();
        let mut live = None;
        for name in names(dir) {
            let path = dir.join(&name);
            let parsed = log_files::parse(&name).unwrap_or_else(|| panic!("stray {name}"));
            let slot = rotations.entry(parsed.rotation.to_string()).or_default();
            match parsed.kind {
                Kind::Live => live = Some(path),
                Kind::Rotated { compressed: false } => slot.0 = Some(path),
                Kind::Rotated { compressed: true } => slot.1 = Some(path),
                Kind::Partial | Kind::Summary => {}
            }
        }
        let mut lines = Vec::new();
        let files = rotations
            .into_values()
            .filter_map(|(plain, gz)| gz.or(plain))
            .chain(live);
        for path in files {
            let text = if path.to_string_lossy().ends_with(".gz") {
                gunzip(&path)
            } else {
                fs::read_to_string(&path).unwrap()
            };
            lines.extend(text.lines().filter(|l| !l.is_empty()).map(String::from));
        }
        lines
    }

    /// Sets a file's modification time `secs` into the past (time passing, without waiting).
    fn age(path: &Path, secs: u64) {
        let when = SystemTime::now() - std::time::Duration::from_secs(secs);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    /// The file `name` in `dir`, as text.
    fn text(dir: &Path, name: &str) -> String {
        fs::read_to_string(dir.join(name)).unwrap()
    }

    /// A writer with the default policy, as a host would open it now.
    fn open(dir: &Path) -> LogWriter {
        LogWriter::open(dir, Policy::default(), Utc::now()).unwrap()
    }

    /// Queues one line and flushes it.
    fn write(w: &mut LogWriter, line: &str, at: DateTime<Utc>) {
        w.append(line, at);
        w.flush(false).unwrap();
    }

    /// The plain and compressed paths of what `w` rotated at `at`.
    fn rotated_by(dir: &Path, w: &LogWriter, at: DateTime<Utc>) -> (PathBuf, PathBuf) {
        let name = log_files::rotated_name(at.trunc_subsecs(6), Some(w.tag()));
        (dir.join(&name), dir.join(log_files::compressed_name(&name)))
    }

    /// `text` gzipped as the sink writes it.
    fn gz_of(text: &str) -> Vec<u8> {
        let mut enc = BlockWriter::new(Vec::new(), 1);
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn a_compressed_file_is_framed_members_whose_lengths_add_up_to_the_plain_file() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..40_000)
            .map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "p".repeat(i % 50)))
            .collect();
        let gz = dir.path().join("a.jsonl.gz");
        fs::write(&gz, gz_of(&text)).unwrap();
        assert!(text.len() > 4 * gzip_blocks::BLOCK_BYTES);
        assert_eq!(gzip_length(&gz), Some(text.len() as u64));
        // Cut short, or a member that is not framed (an older sink's file): not taken as
        // complete, so the plain file is compressed again rather than removed.
        let bytes = fs::read(&gz).unwrap();
        fs::write(&gz, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(gzip_length(&gz), None);
        let mut old = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        old.write_all(text.as_bytes()).unwrap();
        fs::write(&gz, old.finish().unwrap()).unwrap();
        assert_eq!(gzip_length(&gz), None);
    }

    /// A line appended in place becomes the queue when nothing is queued, and is copied
    /// in behind the queued lines otherwise (or when the text before it is not ASCII);
    /// either way the file gets every line once, in order, and a fragment a killed writer
    /// left is still ended before it.
    #[test]
    fn a_line_appended_in_place_is_written_as_queued_lines_are() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let mut w = open(dir.path());
        let in_place = |line: &str| (format!("{}{line}\n", " ".repeat(8)), 8);
        // Appends `line` in place and gives what is then queued.
        let put = |w: &mut LogWriter, line: &str| {
            let (text, start) = in_place(line);
            w.append_in_place(now, text, start);
            w.pending.queued().to_vec()
        };
        assert!(w.is_idle());
        let queued = put(&mut w, "{\"n\":1}");
        assert_eq!(queued, b"{\"n\":1}\n", "the text adopted from its start");
        w.flush(false).unwrap();
        assert!(w.is_idle());
        w.append("{\"n\":2}", now);
        let queued = put(&mut w, "{\"n\":3}");
        assert_eq!(queued, b"{\"n\":2}\n{\"n\":3}\n", "copied behind");
        w.flush(false).unwrap();
        // Text before the line that is not ASCII is not taken as the queue: copied.
        w.append_in_place(now, format!("é{}{{\"n\":3.5}}\n", " ".repeat(6)), 8);
        assert_eq!(w.pending.queued(), b"{\"n\":3.5}\n");
        w.flush(false).unwrap();
        // A writer killed half way through a line; the next writer ends that fragment
        // with a newline put in the adopted text's room before the line.
        let live = dir.path().join(LIVE_FILE);
        fs::OpenOptions::new()
            .append(true)
            .open(&live)
            .unwrap()
            .write_all(b"{\"cut")
            .unwrap();
        let mut next = open(dir.path());
        let (text, start) = in_place("{\"n\":4}");
        next.append_in_place(now, text, start);
        next.flush(false).unwrap();
        assert_eq!(
            fs::read_to_string(&live).unwrap(),
            "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":3.5}\n{\"cut\n{\"n\":4}\n"
        );
    }

    #[test]
    fn queued_bytes_leave_from_the_front_in_order() {
        let mut p = Pending::default();
        for line in ["one", "two", "three", "four"] {
            assert_eq!(p.push_line_with(|out| out.push_str(line)), line.len() + 1);
        }
        p.consume(4);
        assert_eq!(p.queued(), b"two\nthree\nfour\n");
        // A newline put back before the rest (a fragment to end) reuses written room...
        p.push_newline_front();
        assert_eq!(p.queued(), b"\ntwo\nthree\nfour\n");
        p.consume(1 + 4);
        assert_eq!((p.start, p.queued()), (8, &b"three\nfour\n"[..]));
        // ... what is written stays while lines leave (a flush moves no bytes) ...
        p.consume(6);
        assert_eq!((p.start, p.queued()), (14, &b"four\n"[..]));
        // ... and moves out once a line is queued with more than half the text written.
        p.push_line_with(|out| out.push_str("five"));
        assert_eq!((p.start, p.queued()), (0, &b"four\nfive\n"[..]));
        p.push_newline_front();
        assert_eq!(p.queued(), b"\nfour\nfive\n");
        p.consume(p.queued().len());
        assert_eq!((p.start, p.text.len()), (0, 0));
        // Lines of every kind of character keep the text whole.
        p.push_line_with(|out| out.push_str("é✓😀"));
        p.consume(p.queued().len());
        assert!(p.text.is_empty());
    }

    #[test]
    fn lines_queued_through_failing_writes_are_bounded_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let mut w = open(dir.path());
        let line = "x".repeat(1023);
        for _ in 0..(MAX_PENDING / 1024 + 10) {
            w.append(&line, now);
        }
        w.bound_pending();
        let queued = w.pending.queued();
        assert!(queued.len() <= MAX_PENDING);
        assert_eq!(w.lines.len() * 1024, queued.len());
        assert_eq!(w.dropped_lines, 10);
        assert!(queued.ends_with(b"x\n") && queued.starts_with(b"x"));
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
            );
            if i % 7 == 0 {
                w.flush(false).unwrap();
            }
        }
        w.flush(true).unwrap();
        let ns: Vec<i64> = read_log(dir.path())
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
        let rotated = names(dir.path()).len() - 1;
        assert!(rotated > 10, "{rotated}");
        for e in fs::read_dir(dir.path()).unwrap().flatten() {
            assert!(e.metadata().unwrap().len() <= 1000);
        }
    }

    #[test]
    fn rotates_at_utc_midnight_and_names_carry_the_time_and_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let mut w =
            LogWriter::open(dir.path(), Policy::default(), at("2026-11-24T23:59:59Z")).unwrap();
        write(&mut w, "{\"a\":1}", at("2026-11-24T23:59:59Z"));
        write(&mut w, "{\"a\":2}", at("2026-11-25T00:00:01Z"));
        let rotated = log_files::rotated_name(at("2026-11-25T00:00:01Z"), Some(w.tag()));
        assert_eq!(names(dir.path()), [rotated.clone(), LIVE_FILE.to_string()]);
        assert_eq!(
            log_files::rotated_time(&rotated),
            Some(at("2026-11-25T00:00:01Z"))
        );
    }

    #[test]
    fn the_live_files_day_is_its_first_lines_and_a_late_line_does_not_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let policy = Policy::default();
        // Opened while the live file is empty; another writer then starts it on the 25th.
        let mut a =
            LogWriter::open(dir.path(), policy.clone(), at("2026-11-24T23:59:59Z")).unwrap();
        let mut b = LogWriter::open(dir.path(), policy, at("2026-11-25T00:00:00Z")).unwrap();
        write(
            &mut b,
            "{\"timestamp\":\"2026-11-25T00:00:00.100000Z\",\"w\":\"b\"}",
            at("2026-11-25T00:00:00.1Z"),
        );
        // A line of the 24th that was still queued is late, not a new day.
        write(&mut a, "{\"w\":\"a\"}", at("2026-11-24T23:59:59.9Z"));
        assert_eq!(names(dir.path()), [LIVE_FILE]);
        // A line of the 26th is a new day for the live file, whoever opened it.
        write(&mut a, "{\"w\":\"a2\"}", at("2026-11-26T00:00:00Z"));
        assert_eq!(names(dir.path()).len(), 2);
        assert_eq!(text(dir.path(), LIVE_FILE), "{\"w\":\"a2\"}\n");
    }

    #[test]
    fn a_writer_whose_file_another_rotated_moves_to_the_new_live_file() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let mut a = open(dir.path());
        let mut b = open(dir.path());
        write(&mut a, "{\"n\":1}", now);
        b.rotate(now).unwrap();
        // Within RECHECK of its last check, `a` still appends to the file it has open...
        a.recheck = std::time::Duration::from_secs(3600);
        write(&mut a, "{\"n\":2}", now);
        // ... and once it checks again, to the new live file.
        a.recheck = std::time::Duration::ZERO;
        write(&mut a, "{\"n\":3}", now);
        let (rotated, _) = rotated_by(dir.path(), &b, now);
        let rotated = rotated.file_name().unwrap().to_str().unwrap();
        assert_eq!(names(dir.path()), [rotated, LIVE_FILE]);
        assert_eq!(text(dir.path(), rotated), "{\"n\":1}\n{\"n\":2}\n");
        assert_eq!(text(dir.path(), LIVE_FILE), "{\"n\":3}\n");
    }

    #[test]
    fn a_rotated_file_is_compressed_once_settled_and_removed_once_its_gz_holds_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let mut w = open(dir.path());
        w.append("{\"n\":1}", now);
        write(&mut w, "{\"n\":2}", now);
        w.rotate(now).unwrap();
        let (plain, gz) = rotated_by(dir.path(), &w, now);
        w.maintain(now);
        assert!(
            plain.exists() && !gz.exists(),
            "within the grace: left alone"
        );
        age(&plain, 120);
        w.maintain(now);
        assert!(
            plain.exists() && gz.exists(),
            "compressed; plain kept a grace more"
        );
        assert_eq!(gunzip(&gz), "{\"n\":1}\n{\"n\":2}\n");
        age(&gz, 120);
        w.maintain(now);
        assert!(!plain.exists() && gz.exists());
        assert_eq!(read_log(dir.path()), ["{\"n\":1}", "{\"n\":2}"]);
        assert!(w.warnings.is_empty(), "{:?}", w.warnings);
    }

    #[test]
    fn an_append_that_lands_in_a_file_just_rotated_is_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let mut a = open(dir.path());
        let mut b = open(dir.path());
        write(&mut a, "{\"n\":1}", now);
        b.rotate(now).unwrap();
        let (rotated, gz) = rotated_by(dir.path(), &b, now);
        // `a` checked its descriptor just before the rename: its append lands in the
        // rotated file.
        let mut in_flight = |text: &[u8]| a.live.as_mut().unwrap().file.write_all(text).unwrap();
        in_flight(b"{\"n\":2}\n");
        b.maintain(now);
        assert!(rotated.exists() && !gz.exists(), "just changed: left alone");
        age(&rotated, 120);
        b.maintain(now);
        assert_eq!(gunzip(&gz), "{\"n\":1}\n{\"n\":2}\n");
        // Later still (a writer stalled past the grace): the .gz no longer holds it all.
        in_flight(b"{\"n\":3}\n");
        age(&rotated, 120);
        age(&gz, 120);
        b.maintain(now);
        assert!(rotated.exists() && !gz.exists(), "the stale .gz is removed");
        b.maintain(now);
        age(&gz, 120);
        b.maintain(now);
        assert!(!rotated.exists());
        assert_eq!(
            read_log(dir.path()),
            ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"]
        );
    }

    #[test]
    fn a_plain_file_that_grew_after_its_compression_is_compressed_again() {
        let dir = tempfile::tempdir().unwrap();
        let name = "executions-2026-11-24T01-00-00.000000Z-other1.jsonl";
        let plain = dir.path().join(name);
        let gz = dir.path().join(log_files::compressed_name(name));
        fs::write(&plain, "{\"a\":1}\n{\"a\":2}\n").unwrap();
        fs::write(&gz, gz_of("{\"a\":1}\n")).unwrap();
        age(&plain, 120);
        age(&gz, 120);
        let mut w =
            LogWriter::open(dir.path(), Policy::default(), at("2026-11-24T02:00:00Z")).unwrap();
        assert!(plain.exists() && !gz.exists(), "the stale .gz is removed");
        w.maintain(at("2026-11-24T02:00:00Z"));
        assert_eq!(gunzip(&gz), "{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(read_log(dir.path()), ["{\"a\":1}", "{\"a\":2}"]);
    }

    #[test]
    fn a_crash_during_compression_is_finished_later_and_only_stale_partials_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let name = "executions-2026-11-24T01-00-00.000000Z.jsonl";
        let rotated = dir.path().join(name);
        fs::write(&rotated, "{\"a\":1}\n{\"a\":2}\n").unwrap();
        let stale = dir.path().join(log_files::partial_name(name, None));
        fs::write(&stale, b"partial").unwrap();
        // Another writer compressing a second file right now.
        let busy_name = "executions-2026-11-24T01-30-00.000000Z-other1.jsonl";
        let busy = dir.path().join(busy_name);
        fs::write(&busy, "{\"a\":3}\n").unwrap();
        let in_progress = dir
            .path()
            .join(log_files::partial_name(busy_name, Some("other1")));
        fs::write(&in_progress, b"being written").unwrap();
        for path in [&rotated, &stale, &busy] {
            age(path, 3600);
        }
        LogWriter::open(dir.path(), Policy::default(), at("2026-11-24T02:00:00Z")).unwrap();
        assert!(!stale.exists(), "its writer is gone");
        assert!(in_progress.exists(), "its writer is still at work");
        assert!(
            busy.exists()
                && !dir
                    .path()
                    .join(log_files::compressed_name(busy_name))
                    .exists(),
            "left to the writer compressing it"
        );
        assert_eq!(
            gunzip(&dir.path().join(log_files::compressed_name(name))),
            "{\"a\":1}\n{\"a\":2}\n"
        );
        assert_eq!(
            read_log(dir.path()),
            ["{\"a\":1}", "{\"a\":2}", "{\"a\":3}"]
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
        // September is past 30 days; of the rest only the newest fits in 150 bytes.
        assert_eq!(
            names(dir.path()),
            ["executions-2026-11-20T00-00-00.000000Z.jsonl.gz", LIVE_FILE]
        );
    }

    /// A writer that starts less than half the grace after another tidied leaves the
    /// directory alone (a one-shot `run` after another lists no month of files); once the
    /// marker is older, or dated after now (a clock set back), it tidies.
    #[test]
    fn a_writer_starting_right_after_a_tidy_skips_it() {
        let dir = tempfile::tempdir().unwrap();
        let settled = "executions-2026-11-23T00-00-00.000000Z-other1.jsonl";
        let settle = |dir: &Path| {
            fs::write(dir.join(settled), "{\"a\":1}\n").unwrap();
            age(&dir.join(settled), 3600);
        };
        let compressed = |dir: &Path| names(dir).contains(&log_files::compressed_name(settled));
        // The first writer tidies: the settled file is compressed, the time marked.
        drop(open(dir.path()));
        assert!(dir.path().join(TIDIED_FILE).is_file());
        settle(dir.path());
        drop(open(dir.path()));
        assert!(!compressed(dir.path()), "tidied again right after a tidy");
        // Half a grace later, the next writer tidies.
        age(&dir.path().join(TIDIED_FILE), DEFAULT_GRACE.as_secs() / 2);
        drop(open(dir.path()));
        assert!(compressed(dir.path()), "not tidied half a grace later");
        // A marker dated after now counts for nothing.
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(dir.path().join(TIDIED_FILE))
            .unwrap()
            .set_modified(later)
            .unwrap();
        let again = "executions-2026-11-23T06-00-00.000000Z-other1.jsonl";
        fs::write(dir.path().join(again), "{\"a\":2}\n").unwrap();
        age(&dir.path().join(again), 3600);
        drop(open(dir.path()));
        assert!(
            names(dir.path()).contains(&log_files::compressed_name(again)),
            "a marker from the future stopped the tidy"
        );
    }

    #[test]
    fn retention_never_deletes_a_plain_rotated_file_within_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let old = "executions-2026-09-01T00-00-00.000000Z-other1.jsonl";
        let big = "executions-2026-11-23T00-00-00.000000Z-other1.jsonl";
        fs::write(dir.path().join(old), "{\"a\":1}\n").unwrap();
        fs::write(dir.path().join(big), "x".repeat(1000) + "\n").unwrap();
        let policy = Policy {
            retention_days: 30,
            max_total_bytes: Some(10),
            compress: false,
            ..Policy::default()
        };
        let now = at("2026-11-24T00:00:00Z");
        let mut w = LogWriter::open(dir.path(), policy, now).unwrap();
        assert_eq!(
            names(dir.path()),
            [old, big, LIVE_FILE],
            "another writer may append"
        );
        age(&dir.path().join(old), 120);
        age(&dir.path().join(big), 120);
        w.maintain(now);
        assert_eq!(names(dir.path()), [LIVE_FILE]);
    }

    #[test]
    fn lines_too_long_for_one_append_get_a_rotated_file_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let mut w = open(dir.path());
        let long = format!("{{\"n\":2,\"pad\":\"{}\"}}", "y".repeat(MAX_ATOMIC_WRITE));
        write(&mut w, "{\"n\":1}", now);
        w.append(&long, now + Duration::milliseconds(1));
        write(&mut w, "{\"n\":3}", now + Duration::milliseconds(2));
        write(&mut w, "{\"n\":4}", now + Duration::milliseconds(3));
        assert_eq!(
            read_log(dir.path()),
            ["{\"n\":1}", long.as_str(), "{\"n\":3}", "{\"n\":4}"]
        );
        let files = names(dir.path());
        assert_eq!(files.len(), 3, "{files:?}");
        assert!(files
            .iter()
            .all(|n| log_files::parse(n).unwrap().kind != Kind::Partial));
    }

    #[test]
    fn a_half_written_line_is_cut_off_unless_the_file_changed() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = open(dir.path());
        write(&mut w, "{\"n\":1}", Utc::now());
        let live = dir.path().join(LIVE_FILE);
        let id = w.live.as_ref().unwrap().id;
        fs::OpenOptions::new()
            .append(true)
            .open(&live)
            .unwrap()
            .write_all(b"{\"n\":2,\"cut")
            .unwrap();
        w.cut_incomplete_line(FileId(id.0, id.1.wrapping_add(1)));
        assert!(
            fs::read_to_string(&live).unwrap().ends_with("cut"),
            "not our file"
        );
        w.cut_incomplete_line(id);
        assert_eq!(fs::read_to_string(&live).unwrap(), "{\"n\":1}\n");
    }

    #[test]
    fn a_fragment_left_by_a_killed_writer_is_ended_before_the_next_line() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join(LIVE_FILE);
        fs::write(&live, "{\"n\":1}\n{\"n\":2,\"cut").unwrap();
        let mut w = open(dir.path());
        write(&mut w, "{\"n\":3}", Utc::now());
        write(&mut w, "{\"n\":4}", Utc::now());
        assert_eq!(
            fs::read_to_string(&live).unwrap(),
            "{\"n\":1}\n{\"n\":2,\"cut\n{\"n\":3}\n{\"n\":4}\n"
        );
    }

    /// Several writers (threads, each its own descriptors, as separate hosts would be) on
    /// one directory with a tiny rotation size, batches bigger than one append and lines
    /// longer than one, and a short grace so that compression runs while they write.
    #[test]
    fn writers_side_by_side_lose_duplicate_and_split_no_line() {
        let dir = tempfile::tempdir().unwrap();
        let policy = Policy {
            rotation_size_bytes: 4096,
            grace: std::time::Duration::from_millis(300),
            ..Policy::default()
        };
        const WRITERS: usize = 4;
        const MIN_LINES: usize = 1500;
        const MAX_LINES: usize = 20_000;
        let pad = |w: usize, i: usize| {
            if i % 211 == 17 {
                70_000
            } else {
                (i * 37 + w) % 700
            }
        };
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let dir = dir.path().to_path_buf();
                let policy = policy.clone();
                std::thread::spawn(move || {
                    let mut writer = LogWriter::open(&dir, policy, Utc::now()).unwrap();
                    let mut i = 0;
                    loop {
                        // Batches of 1 to 40 lines: many are bigger than one append.
                        for _ in 0..(i % 40) + 1 {
                            let now = Utc::now();
                            let line = format!(
                                "{{\"timestamp\":\"{}\",\"w\":{w},\"i\":{i},\"pad\":\"{}\"}}",
                                now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                                "p".repeat(pad(w, i))
                            );
                            writer.append(&line, now);
                            i += 1;
                        }
                        writer.flush(false).unwrap();
                        let compressed = || {
                            fs::read_dir(&dir)
                                .unwrap()
                                .flatten()
                                .filter(|e| e.file_name().to_string_lossy().ends_with(".gz"))
                                .count()
                        };
                        if i >= MAX_LINES || (i >= MIN_LINES && compressed() >= 3) {
                            break;
                        }
                    }
                    writer.flush(true).unwrap();
                    (writer.tag().to_string(), i, writer.warnings)
                })
            })
            .collect();
        let mut warnings = Vec::new();
        let mut written = Vec::new();
        for h in handles {
            let (tag, count, w) = h.join().unwrap();
            written.push((tag, count));
            warnings.extend(w);
        }
        let mut seen: HashMap<(usize, usize), usize> = HashMap::new();
        for line in read_log(dir.path()) {
            let v: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("a damaged line ({e}): {line:.200}"));
            let (w, i) = (
                v["w"].as_u64().unwrap() as usize,
                v["i"].as_u64().unwrap() as usize,
            );
            assert_eq!(
                v["pad"].as_str().unwrap().len(),
                pad(w, i),
                "line {w}/{i} whole"
            );
            *seen.entry((w, i)).or_default() += 1;
        }
        for (w, (_, count)) in written.iter().enumerate() {
            for i in 0..*count {
                assert_eq!(seen.get(&(w, i)), Some(&1), "line {i} of writer {w}");
            }
        }
        assert_eq!(seen.len(), written.iter().map(|(_, n)| n).sum::<usize>());
        // Every rotated name carries the tag of the writer that made it; they all rotated.
        let tags: HashSet<&str> = written.iter().map(|(t, _)| t.as_str()).collect();
        let mut rotating = HashSet::new();
        for name in names(dir.path()) {
            if name == LIVE_FILE {
                continue;
            }
            let tag = name.split("Z-").nth(1).unwrap().split('.').next().unwrap();
            assert!(tags.contains(tag), "{name}");
            rotating.insert(tag.to_string());
        }
        assert_eq!(rotating.len(), WRITERS);
        assert!(
            names(dir.path()).iter().any(|n| n.ends_with(".gz")),
            "compression ran while the writers wrote"
        );
        // Each writer appended to the live file, not on and on to one it rotated: a file
        // holds at most the rotation size, what other writers appended in the moment it
        // was rotated, and a batch with a long line.
        let bound = 4096 + WRITERS * MAX_ATOMIC_WRITE + 40 * 800 + 70_000;
        for name in names(dir.path()) {
            let path = dir.path().join(&name);
            let len = match log_files::parse(&name).unwrap().kind {
                Kind::Rotated { compressed: true } => gunzip(&path).len(),
                Kind::Partial => panic!("left half done: {name}"),
                _ => fs::metadata(&path).unwrap().len() as usize,
            };
            assert!(len <= bound, "{name}: {len} bytes");
        }
        assert!(warnings.is_empty(), "{warnings:#?}");
        // Every compressed file has one summary, of its own bytes.
        let compressed = assert_summaries_match_their_files(dir.path());
        assert!(compressed > 0);
    }

    /// The summary of `bytes` for the file at `path`, as the writer would write it.
    fn summary_bytes(path: &Path, bytes: &[u8]) -> Vec<u8> {
        let mut b = SummaryBuilder::new();
        b.feed(bytes);
        let size = fs::metadata(path).unwrap().len();
        let gzip = path.to_string_lossy().ends_with(".gz");
        let check = FileCheck::of(&mut File::open(path).unwrap(), size, gzip).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        b.finish(SummarisedFile { name, size, check })
            .unwrap()
            .to_bytes()
    }

    /// Checks that every summary in `dir` is the one its file's bytes make, naming that
    /// file (the `.gz` when there is one), that every `.gz` has one and that no summary
    /// is left half written; answers how many `.gz` there are.
    fn assert_summaries_match_their_files(dir: &Path) -> usize {
        let mut gz = 0;
        for name in names(dir) {
            let parsed = log_files::parse(&name).unwrap();
            let summary = dir.join(log_files::summary_name(parsed.rotation));
            match parsed.kind {
                Kind::Partial => assert!(!name.contains(".summary"), "left half done: {name}"),
                Kind::Summary => {
                    let written = fs::read(&summary).unwrap();
                    let header = read_summary(&written, &[]).unwrap().header;
                    let file = dir.join(&header.file.name);
                    let bytes = if header.file.name.ends_with(".gz") {
                        gunzip(&file).into_bytes()
                    } else {
                        fs::read(&file).unwrap()
                    };
                    assert_eq!(
                        String::from_utf8(summary_bytes(&file, &bytes)).unwrap(),
                        String::from_utf8(written).unwrap(),
                        "{name}"
                    );
                }
                Kind::Rotated { compressed: true } => {
                    gz += 1;
                    assert!(summary.exists(), "{name} has no summary");
                }
                _ => {}
            }
        }
        gz
    }

    /// A line the sink writes for a finished execution, as `metaclaude logs` reads it.
    fn execution(at: DateTime<Utc>, script: &str, seconds: f64) -> String {
        format!(
            "{{\"timestamp\":\"{}\",\"event\":\"finished\",\"script_id\":\"{script}\",\"success\":true,\"resource_usage\":{{\"wall_time_seconds\":{seconds},\"peak_memory_mb\":1.0,\"cpu_time_seconds\":0.5}}}}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        )
    }

    fn summary_view(dir: &Path, rotation: &Path) -> SummaryView {
        let name = rotation.file_name().unwrap().to_str().unwrap();
        let bytes = fs::read(dir.join(log_files::summary_name(name))).unwrap();
        read_summary(&bytes, &[Dimension::Script]).unwrap()
    }

    #[test]
    fn a_compressed_file_gets_a_summary_of_its_bytes_that_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let mut w = open(dir.path());
        w.append(&execution(now, "a", 1.0), now);
        w.append("{\"event\":\"started\"}", now);
        write(&mut w, &execution(now, "b", 3.0), now);
        w.rotate(now).unwrap();
        let (plain, gz) = rotated_by(dir.path(), &w, now);
        let summary = dir.path().join(log_files::summary_name(
            plain.file_name().unwrap().to_str().unwrap(),
        ));
        w.maintain(now);
        assert!(!summary.exists(), "not final within the grace");
        age(&plain, 120);
        w.maintain(now);
        assert!(gz.exists() && summary.exists());
        let view = summary_view(dir.path(), &plain);
        assert_eq!(
            view.header.file.name,
            gz.file_name().unwrap().to_str().unwrap()
        );
        assert_eq!(view.header.executions, 2);
        assert_eq!(view.overall.duration_seconds.max(), Some(3.0));
        assert_eq!(
            view.groups[&Dimension::Script].keys().collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_summaries_match_their_files(dir.path());
        age(&gz, 120);
        w.maintain(now);
        assert!(!plain.exists() && summary.exists(), "kept with its .gz");
        // Retention takes both.
        w.maintain(now + Duration::days(31));
        assert_eq!(names(dir.path()), Vec::<String>::new());
        assert!(w.warnings.is_empty(), "{:?}", w.warnings);
    }

    #[test]
    fn an_uncompressed_file_is_summarised_once_settled() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let policy = Policy {
            compress: false,
            ..Policy::default()
        };
        let mut w = LogWriter::open(dir.path(), policy, now).unwrap();
        write(&mut w, &execution(now, "a", 2.0), now);
        w.rotate(now).unwrap();
        let (plain, _) = rotated_by(dir.path(), &w, now);
        w.maintain(now);
        assert_eq!(names(dir.path()).len(), 1, "within the grace: no summary");
        age(&plain, 120);
        w.maintain(now);
        let view = summary_view(dir.path(), &plain);
        assert_eq!(
            view.header.file.name,
            plain.file_name().unwrap().to_str().unwrap()
        );
        assert_eq!(view.header.executions, 1);
        assert_eq!(assert_summaries_match_their_files(dir.path()), 0);
        w.maintain(now + Duration::days(31));
        assert_eq!(names(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn a_stale_gz_takes_its_summary_with_it_and_a_damaged_file_gets_none() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let mut a = open(dir.path());
        let mut b = open(dir.path());
        write(&mut a, &execution(now, "a", 1.0), now);
        b.rotate(now).unwrap();
        let (rotated, gz) = rotated_by(dir.path(), &b, now);
        age(&rotated, 120);
        b.maintain(now);
        assert_eq!(summary_view(dir.path(), &rotated).header.executions, 1);
        // A writer stalled past the grace appends to it: the .gz and its summary are stale.
        let late = execution(now, "late", 2.0) + "\n";
        a.live
            .as_mut()
            .unwrap()
            .file
            .write_all(late.as_bytes())
            .unwrap();
        age(&rotated, 120);
        age(&gz, 120);
        b.maintain(now);
        assert_eq!(
            names(dir.path()),
            [rotated.file_name().unwrap().to_str().unwrap()],
            "the .gz and its summary removed"
        );
        b.maintain(now);
        assert_eq!(summary_view(dir.path(), &rotated).header.executions, 2);
        assert_summaries_match_their_files(dir.path());
        // A file with a line that is not a record is compressed but not summarised.
        write(&mut b, "not json", now);
        b.rotate(now + Duration::seconds(1)).unwrap();
        let (damaged, damaged_gz) = rotated_by(dir.path(), &b, now + Duration::seconds(1));
        age(&damaged, 120);
        b.maintain(now);
        assert!(damaged_gz.exists());
        let name = damaged.file_name().unwrap().to_str().unwrap();
        assert!(!dir.path().join(log_files::summary_name(name)).exists());
        assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    }

    /// Writers that tidy one directory at once, each compressing and summarising the same
    /// settled files: one `.gz` and one summary per file, each whole and of its file.
    #[test]
    fn writers_summarising_one_file_at_once_leave_exactly_one_summary() {
        let dir = tempfile::tempdir().unwrap();
        let start = at("2026-11-24T00:00:00Z");
        for f in 0..12 {
            let mut text = String::new();
            for i in 0..400 {
                let t = start + Duration::minutes(f * 60) + Duration::seconds(i);
                text += &execution(t, &format!("s{}", i % 7), 0.01 * (i as f64 + 1.0));
                text.push('\n');
            }
            let name =
                log_files::rotated_name(start + Duration::minutes(f * 60 + 59), Some("old1"));
            fs::write(dir.path().join(&name), text).unwrap();
            age(&dir.path().join(&name), 120);
        }
        let barrier = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut w = LogWriter::open(dir.path(), Policy::default(), start).unwrap();
                    barrier.wait();
                    w.maintain(start);
                    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
                });
            }
        });
        let all = names(dir.path());
        let summaries = all.iter().filter(|n| n.ends_with(".summary")).count();
        assert_eq!(summaries, 12, "{all:#?}");
        assert_eq!(assert_summaries_match_their_files(dir.path()), 12);
    }
}
