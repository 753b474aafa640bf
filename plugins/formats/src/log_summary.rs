//! The summary of a rotated log file: what `metaclaude logs --stats` would count in it,
//! written beside it once it is final so that a query over weeks of history reads a few
//! kilobytes per file instead of decompressing every byte. Defined once here: the log sink
//! builds it (at compression), the benchmark's generator builds it the same way, and the
//! host reads it.
//!
//! # What it holds
//!
//! For one rotated file (`executions-<STAMP>[-<TAG>].jsonl` plain or `.gz`): the first and
//! last execution timestamp, the execution count, and [`Figures`] for the whole file and
//! for each value of each [`Dimension`] (script, specialist, user, category, UTC hour; a
//! day's figures are its hours' merged): counts, successes, retries, failures by
//! category, CPU microseconds summed, and the duration, peak memory and CPU time as
//! [`DdSketch`]es in the sketch crate's wire form (every percentile within α = 1 % of the
//! exact nearest-rank one; count, sum, min and max exact but for float addition order).
//! It names the file it describes and how to check that it is that file, cheaply
//! ([`FileCheck`]): the file's size and, for a `.gz`, its gzip trailer (CRC-32 and length
//! of the last member, the last 8 bytes: a gzip file cannot change without them or its
//! size changing, short of a deliberate collision); for a plain file, a CRC-32 of its first
//! and last [`PLAIN_CHECK_SPAN`] bytes (a rotated file only ever grows, which its size
//! shows; one replaced by another file of the same size differs in its first or last
//! timestamps, which those bytes hold).
//!
//! # Format
//!
//! JSON lines, each prefixed with the CRC-32 of its JSON text (8 hex digits and a space), so
//! that a damaged summary (a bit flipped, a truncation) is refused rather than believed:
//!
//! ```text
//! 1f2e3d4c {"summary_version":1,"file":{...},"first":...,"last":...,"executions":N}
//! 9a8b7c6d {"section":"overall","figures":{...}}
//! 01234567 {"section":"script","groups":{"build":{...},...}}
//! ... specialist, user, category, hour: always all, in this order
//! ```
//!
//! JSON rather than a binary form: the sketch's wire form is serde JSON already (checked
//! whole when read back), the file is readable with `cut -c10- | jq`, and one section per
//! line lets a reader parse only the overall figures and the one dimension a query groups
//! by (the other lines are only checksummed), which keeps a 30-day query to milliseconds.
//! A summary of another [`SUMMARY_VERSION`] is ignored and the file read instead.
//!
//! # When a file gets no summary
//!
//! Only a file that the reader would read without a word gets one: a line that is not a
//! JSON record, an incomplete last line, an execution without a canonical timestamp
//! (`2024-01-15T10:30:45.123456Z`) or with a figure a sketch cannot hold (negative, not a
//! number) makes [`SummaryBuilder::finish`] answer `Err` with the reason, and the reader
//! reads that file (and reports what it finds there), as without summaries.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom};

use metaclaude_sketch::DdSketch;
use serde::{Deserialize, Serialize};

use crate::log_record::FINISHED_EVENT;

/// The version of the summary format; a summary of any other is ignored.
pub const SUMMARY_VERSION: u32 = 1;

/// The bytes at each end of a plain file that its [`FileCheck`] covers.
pub const PLAIN_CHECK_SPAN: u64 = 4096;

/// The longest line a summary is built over (the host's reader skips longer ones with a
/// warning, so a file holding one gets no summary).
pub const MAX_LINE_BYTES: usize = 256 << 20;

/// The key of records that lack the grouped field (no user, a success's category).
pub const NONE_KEY: &str = "(none)";

/// The fields of a log line (`log_record`, which names them) that queries and summaries
/// read. Everything else (stdout, stderr, attempts, inputs, error details) is skipped by
/// the parser without being built, and strings are borrowed from the line unless they hold
/// escapes. The host's query reads lines with this same type, so a summary counts exactly
/// what a full read counts.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct Record<'a> {
    /// When: an execution's `finished_at`, a lifecycle event's time, as written
    /// (`2024-01-15T10:30:45.123456Z`).
    #[serde(borrow, default)]
    pub timestamp: Option<Cow<'a, str>>,
    /// When an execution's first attempt started, as written.
    #[serde(borrow, default)]
    pub started_at: Option<Cow<'a, str>>,
    /// `DEBUG`, `INFO`, `WARN` or `ERROR` (`log_record::Level`).
    #[serde(borrow, default)]
    pub level: Option<Cow<'a, str>>,
    /// `finished` for an execution; a lifecycle event's kind otherwise.
    #[serde(borrow, default)]
    pub event: Option<Cow<'a, str>>,
    /// A failed execution's error category as written (`TIMEOUT`); `None` for a success.
    #[serde(borrow, default)]
    pub category: Option<Cow<'a, str>>,
    /// The execution's id (a ULID).
    #[serde(borrow, default)]
    pub execution_id: Option<Cow<'a, str>>,
    /// The registry id of the script run.
    #[serde(borrow, default)]
    pub script_id: Option<Cow<'a, str>>,
    /// The script's specialist; `None` when it has none.
    #[serde(borrow, default)]
    pub specialist: Option<Cow<'a, str>>,
    /// Who asked for the execution; `None` when the request did not say.
    #[serde(borrow, default)]
    pub user: Option<Cow<'a, str>>,
    /// The caller's session, as given in the request.
    #[serde(borrow, default)]
    pub session_id: Option<Cow<'a, str>>,
    /// The caller's correlation id, as given in the request.
    #[serde(borrow, default)]
    pub correlation_id: Option<Cow<'a, str>>,
    /// Whether the execution succeeded; `None` on a lifecycle line.
    #[serde(default)]
    pub success: Option<bool>,
    /// The last attempt's exit status; `None` when a signal ended it or nothing ran.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Attempts after the first.
    #[serde(default)]
    pub retries: Option<u64>,
    /// The figures the statistics use; `None` on a lifecycle line ([`usage`](Self::usage)
    /// reads zeros then).
    #[serde(default)]
    pub resource_usage: Option<Usage>,
}

/// The resource figures the statistics use.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct Usage {
    /// Spawn to reap, seconds, summed over attempts (backoff excluded); 0 when missing.
    #[serde(default)]
    pub wall_time_seconds: f64,
    /// Peak resident memory of the process tree, MiB; 0 when missing.
    #[serde(default)]
    pub peak_memory_mb: f64,
    /// User plus system CPU time of the process tree, seconds; 0 when missing.
    #[serde(default)]
    pub cpu_time_seconds: f64,
}

impl Record<'_> {
    /// Execution records are `"event":"finished"`; lifecycle lines (DEBUG) are the others.
    pub fn is_execution(&self) -> bool {
        self.event.as_deref() == Some(FINISHED_EVENT)
    }

    /// The resource figures, all zero when the line has none.
    pub fn usage(&self) -> &Usage {
        static EMPTY: Usage = Usage {
            wall_time_seconds: 0.0,
            peak_memory_mb: 0.0,
            cpu_time_seconds: 0.0,
        };
        self.resource_usage.as_ref().unwrap_or(&EMPTY)
    }

    /// The CPU time in whole microseconds, the figures' resolution: what statistics sum,
    /// so that the sum does not depend on the order executions come in.
    pub fn cpu_micros(&self) -> i128 {
        (self.usage().cpu_time_seconds * 1e6).round() as i64 as i128
    }
}

/// What a summary splits its figures by (`metaclaude logs --group-by`; `day` is made of
/// the hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dimension {
    Script,
    Specialist,
    User,
    Category,
    /// The UTC hour of the finish time, `2024-01-15T10`.
    Hour,
}

impl Dimension {
    /// Every dimension, in the order of the summary's lines.
    pub const ALL: [Dimension; 5] = [
        Dimension::Script,
        Dimension::Specialist,
        Dimension::User,
        Dimension::Category,
        Dimension::Hour,
    ];

    /// The name of its section in a summary (`script`), as `--group-by` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Script => "script",
            Dimension::Specialist => "specialist",
            Dimension::User => "user",
            Dimension::Category => "category",
            Dimension::Hour => "hour",
        }
    }

    /// The group `r` falls in: the field's value as written, [`NONE_KEY`] when the record
    /// lacks it.
    pub fn key<'r>(self, r: &'r Record<'_>) -> &'r str {
        let field = match self {
            Dimension::Script => r.script_id.as_deref(),
            Dimension::Specialist => r.specialist.as_deref(),
            Dimension::User => r.user.as_deref(),
            Dimension::Category => r.category.as_deref(),
            Dimension::Hour => r.timestamp.as_deref().and_then(|t| t.get(..13)),
        };
        field.unwrap_or(NONE_KEY)
    }
}

/// The UTC day (`2024-01-15`) of an hour key (`2024-01-15T10`), or the key itself when it
/// is [`NONE_KEY`]: a day's figures are its hours' merged.
pub fn day_of_hour(hour_key: &str) -> &str {
    if hour_key == NONE_KEY {
        return hour_key;
    }
    hour_key.get(..10).unwrap_or(hour_key)
}

/// The figures of a set of executions: what `logs --stats` reports, in mergeable form.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figures {
    /// Executions counted.
    pub count: u64,
    /// Of them, those whose `success` is true (a record without one counts as a failure).
    pub successes: u64,
    /// Attempts after the first, summed (saturating).
    pub retries: u64,
    /// User plus system CPU time, whole microseconds summed (see [`Record::cpu_micros`]).
    pub cpu_micros: i128,
    /// Failures by category as written; a failure without one under [`NONE_KEY`].
    pub failures_by_category: BTreeMap<String, u64>,
    /// `wall_time_seconds` of each execution.
    pub duration_seconds: DdSketch,
    /// `peak_memory_mb` of each execution.
    pub peak_memory_mb: DdSketch,
    /// `cpu_time_seconds` of each execution.
    pub cpu_time_seconds: DdSketch,
}

impl Figures {
    /// Counts one execution record in, as the host's statistics do; `false` (and nothing
    /// sure of what was counted) when a figure is one a sketch cannot hold.
    pub fn add(&mut self, r: &Record<'_>) -> bool {
        let u = r.usage();
        let held = self.duration_seconds.add(u.wall_time_seconds)
            & self.peak_memory_mb.add(u.peak_memory_mb)
            & self.cpu_time_seconds.add(u.cpu_time_seconds);
        self.count += 1;
        if r.success == Some(true) {
            self.successes += 1;
        } else {
            let cat = r.category.as_deref().unwrap_or(NONE_KEY);
            match self.failures_by_category.get_mut(cat) {
                Some(n) => *n += 1,
                None => {
                    self.failures_by_category.insert(cat.to_string(), 1);
                }
            }
        }
        self.cpu_micros += r.cpu_micros();
        self.retries = self.retries.saturating_add(r.retries.unwrap_or(0));
        held
    }

    /// Takes in another set's figures: the figures of both sets of records.
    pub fn merge(&mut self, other: &Figures) {
        self.count = self.count.saturating_add(other.count);
        self.successes = self.successes.saturating_add(other.successes);
        self.retries = self.retries.saturating_add(other.retries);
        self.cpu_micros = self.cpu_micros.saturating_add(other.cpu_micros);
        for (k, v) in &other.failures_by_category {
            let n = self.failures_by_category.entry(k.clone()).or_default();
            *n = n.saturating_add(*v);
        }
        // Sketches a summary holds were checked to have the default config when read.
        let _ = self.duration_seconds.merge(&other.duration_seconds);
        let _ = self.peak_memory_mb.merge(&other.peak_memory_mb);
        let _ = self.cpu_time_seconds.merge(&other.cpu_time_seconds);
    }

    /// Whether the figures hang together as the builder makes them: every sketch of the
    /// default config (what [`merge`](Self::merge) needs) holding `count` values, no more
    /// successes than executions, the failures by category adding up to the failures, the
    /// CPU sum within what `count` values can add to. A summary read from a directory
    /// plugins write is checked so before any of it is counted.
    fn consistent(&self) -> bool {
        let default = metaclaude_sketch::Config::default();
        let sketches = [
            &self.duration_seconds,
            &self.peak_memory_mb,
            &self.cpu_time_seconds,
        ];
        let failures = self
            .failures_by_category
            .values()
            .try_fold(0u64, |sum, n| sum.checked_add(*n));
        sketches
            .iter()
            .all(|s| *s.config() == default && s.count() == self.count)
            && self.successes <= self.count
            && failures == Some(self.count - self.successes)
            && self.cpu_micros.unsigned_abs() <= u128::from(self.count) * i64::MAX as u128
    }
}

/// How to tell, without reading it, that a file is the one a summary describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FileCheck {
    /// A `.gz`: its gzip trailer, the last 8 bytes (CRC-32 and length mod 2^32 of the
    /// last member's data: with the sink's framing, the last block's, so with the size it
    /// tells files apart, not damage in an earlier member).
    GzipTrailer { crc32: u32, isize: u32 },
    /// A plain file: the CRC-32 of its first [`PLAIN_CHECK_SPAN`] bytes followed by its
    /// last ones (the same bytes twice when the file is shorter than twice the span).
    HeadTailCrc32(u32),
}

impl FileCheck {
    /// The check of the file `file`, `size` bytes long, gzip or plain; only the bytes the
    /// check covers are read (8, or twice [`PLAIN_CHECK_SPAN`]).
    pub fn of<R: Read + Seek>(file: &mut R, size: u64, gzip: bool) -> io::Result<FileCheck> {
        if gzip {
            if size < 18 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "too short for a gzip file",
                ));
            }
            let mut trailer = [0u8; 8];
            file.seek(SeekFrom::Start(size - 8))?;
            file.read_exact(&mut trailer)?;
            let word = |i: usize| u32::from_le_bytes(trailer[i..i + 4].try_into().expect("4"));
            return Ok(FileCheck::GzipTrailer {
                crc32: word(0),
                isize: word(4),
            });
        }
        let span = size.min(PLAIN_CHECK_SPAN);
        let mut buf = vec![0u8; span as usize];
        let mut hasher = crc32fast::Hasher::new();
        for start in [0, size - span] {
            file.seek(SeekFrom::Start(start))?;
            file.read_exact(&mut buf)?;
            hasher.update(&buf);
        }
        Ok(FileCheck::HeadTailCrc32(hasher.finalize()))
    }
}

/// The file a summary describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummarisedFile {
    /// Its name in the log directory (the plain rotated name, or with `.gz`).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// See [`FileCheck`].
    pub check: FileCheck,
}

/// The first line of a summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// [`SUMMARY_VERSION`] when written.
    pub summary_version: u32,
    /// The file summarised.
    pub file: SummarisedFile,
    /// The earliest execution timestamp in it, canonical (`2024-01-15T10:30:45.123456Z`).
    pub first: Option<String>,
    /// The latest, canonical.
    pub last: Option<String>,
    /// The earliest `started_at` of an execution in it, canonical (`None` when none has
    /// one): where a replay of the log starts its clock.
    pub first_started: Option<String>,
    /// Execution records in it.
    pub executions: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverallLine {
    section: String,
    figures: Figures,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupsLine {
    section: String,
    groups: BTreeMap<String, Figures>,
}

/// Just the version, read before anything else (another version may differ in the rest).
#[derive(Deserialize)]
struct VersionOnly {
    summary_version: u32,
}

/// A whole summary: what the writer builds and writes.
#[derive(Debug, Clone)]
pub struct Summary {
    pub header: Header,
    pub overall: Figures,
    /// One map per [`Dimension`], in [`Dimension::ALL`]'s order.
    pub groups: [BTreeMap<String, Figures>; 5],
}

/// Why a summary was not used (the reader then reads the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryError(pub String);

impl std::fmt::Display for SummaryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SummaryError {}

fn bad(msg: impl Into<String>) -> SummaryError {
    SummaryError(msg.into())
}

const SECTIONS: usize = 2 + Dimension::ALL.len();

impl Summary {
    /// The summary file's bytes: its lines, each with its CRC-32. The same summary always
    /// gives the same bytes (maps are ordered), so writers that summarise one file at once
    /// write identical files.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut line = |json: String| {
            out.extend_from_slice(format!("{:08x} ", crc32fast::hash(json.as_bytes())).as_bytes());
            out.extend_from_slice(json.as_bytes());
            out.push(b'\n');
        };
        line(to_json(&self.header));
        line(to_json(&OverallLine {
            section: "overall".into(),
            figures: self.overall.clone(),
        }));
        for (d, groups) in Dimension::ALL.iter().zip(&self.groups) {
            line(to_json(&GroupsLine {
                section: d.name().into(),
                groups: groups.clone(),
            }));
        }
        out
    }
}

/// One of the summary's lines as JSON text.
fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("a summary line serialises")
}

/// What a reader takes from a summary: the header, the overall figures and the groups of
/// the dimensions it asked for (the other lines are checked, not parsed).
#[derive(Debug, Clone)]
pub struct SummaryView {
    pub header: Header,
    pub overall: Figures,
    /// The groups of each dimension asked for.
    pub groups: BTreeMap<Dimension, BTreeMap<String, Figures>>,
}

/// Reads a summary file's bytes, taking the overall figures and `dimensions`' groups;
/// refuses one that is damaged (a line's CRC, a truncation, JSON that does not parse or
/// a sketch that does not check), of another version, or whose sketches have another
/// config. Whether it describes the file at hand is for the caller to check against
/// [`Header::file`].
pub fn read_summary(bytes: &[u8], dimensions: &[Dimension]) -> Result<SummaryView, SummaryError> {
    let text = bytes
        .strip_suffix(b"\n")
        .ok_or_else(|| bad("truncated (no final newline)"))?;
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    let mut json = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let (crc, body) = (line.get(..8), line.get(9..));
        let (Some(crc), Some(body)) = (crc, body) else {
            return Err(bad(format!("line {} is too short", i + 1)));
        };
        let crc = std::str::from_utf8(crc)
            .ok()
            .and_then(|c| u32::from_str_radix(c, 16).ok());
        if line[8] != b' ' || crc != Some(crc32fast::hash(body)) {
            return Err(bad(format!("line {} does not match its CRC-32", i + 1)));
        }
        json.push(body);
    }
    let version: VersionOnly =
        serde_json::from_slice(json[0]).map_err(|e| bad(format!("header: {e}")))?;
    if version.summary_version != SUMMARY_VERSION {
        return Err(bad(format!(
            "summary version {} (this reader knows {SUMMARY_VERSION})",
            version.summary_version
        )));
    }
    if json.len() != SECTIONS {
        return Err(bad(format!("{} lines, not {SECTIONS}", json.len())));
    }
    let header: Header =
        serde_json::from_slice(json[0]).map_err(|e| bad(format!("header: {e}")))?;
    let overall: OverallLine =
        serde_json::from_slice(json[1]).map_err(|e| bad(format!("overall: {e}")))?;
    if overall.section != "overall" || !overall.figures.consistent() {
        return Err(bad("overall: figures that do not hang together"));
    }
    let mut groups = BTreeMap::new();
    for &d in dimensions {
        let i = Dimension::ALL.iter().position(|x| *x == d).expect("listed");
        let line: GroupsLine =
            serde_json::from_slice(json[2 + i]).map_err(|e| bad(format!("{}: {e}", d.name())))?;
        if line.section != d.name() || !line.groups.values().all(Figures::consistent) {
            return Err(bad(format!(
                "{}: not that dimension's figures, or figures that do not hang together",
                d.name()
            )));
        }
        groups.insert(d, line.groups);
    }
    Ok(SummaryView {
        header,
        overall: overall.figures,
        groups,
    })
}

/// Whether `ts` is a timestamp as the host writes it (`2024-01-15T10:30:45.123456Z`),
/// which compares with another as text.
pub fn is_canonical_timestamp(ts: &str) -> bool {
    let b = ts.as_bytes();
    b.len() == 27
        && b[26] == b'Z'
        && b[19] == b'.'
        && b[10] == b'T'
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && [13, 16].iter().all(|&i| b[i] == b':')
}

/// Builds the summary of one file from its bytes, fed in any pieces, in order.
#[derive(Debug, Default)]
pub struct SummaryBuilder {
    overall: Figures,
    groups: [BTreeMap<String, Figures>; 5],
    first: Option<String>,
    last: Option<String>,
    first_started: Option<String>,
    /// The bytes after the last newline fed so far.
    partial: Vec<u8>,
    line: u64,
    /// Why the file gets no summary, once known.
    refused: Option<String>,
}

impl SummaryBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next bytes of the file.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        if self.refused.is_some() {
            return;
        }
        while let Some(nl) = bytes.iter().position(|b| *b == b'\n') {
            if self.partial.is_empty() {
                self.line(&bytes[..nl]);
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(&bytes[..nl]);
                self.line(&whole);
            }
            bytes = &bytes[nl + 1..];
            if self.refused.is_some() {
                return;
            }
        }
        if self.partial.len() + bytes.len() > MAX_LINE_BYTES {
            self.refuse(format!(
                "line {}: longer than {MAX_LINE_BYTES} bytes",
                self.line + 1
            ));
            self.partial = Vec::new();
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    fn refuse(&mut self, why: String) {
        self.refused.get_or_insert(why);
    }

    /// One line, without its newline, as the host's reader takes it (a `\r` before the
    /// newline dropped, blank lines skipped).
    fn line(&mut self, line: &[u8]) {
        self.line += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return;
        }
        let r = match crate::record_parser::parse_record(line) {
            Ok(r) => r,
            Err(e) => return self.refuse(format!("line {}: not a JSON record ({e})", self.line)),
        };
        if !r.is_execution() {
            return;
        }
        let Some(ts) = r.timestamp.as_deref().filter(|t| is_canonical_timestamp(t)) else {
            return self.refuse(format!("line {}: no canonical timestamp", self.line));
        };
        if self.first.as_deref().is_none_or(|f| ts < f) {
            self.first = Some(ts.to_string());
        }
        if self.last.as_deref().is_none_or(|l| ts > l) {
            self.last = Some(ts.to_string());
        }
        let started = r
            .started_at
            .as_deref()
            .filter(|t| is_canonical_timestamp(t));
        if let Some(started) = started {
            if self.first_started.as_deref().is_none_or(|f| started < f) {
                self.first_started = Some(started.to_string());
            }
        }
        let mut held = self.overall.add(&r);
        for (d, groups) in Dimension::ALL.iter().zip(self.groups.iter_mut()) {
            let key = d.key(&r);
            held &= match groups.get_mut(key) {
                Some(f) => f.add(&r),
                None => groups.entry(key.to_string()).or_default().add(&r),
            };
        }
        if !held {
            self.refuse(format!(
                "line {}: a figure a sketch cannot hold (negative or not a number)",
                self.line
            ));
        }
    }

    /// The summary of the bytes fed, for the file `file`; `Err` with the reason when the
    /// file is one a reader must read itself (see the module's documentation).
    pub fn finish(self, file: SummarisedFile) -> Result<Summary, SummaryError> {
        if let Some(why) = self.refused {
            return Err(SummaryError(why));
        }
        if !self.partial.is_empty() {
            return Err(bad(format!(
                "line {}: incomplete (no newline)",
                self.line + 1
            )));
        }
        Ok(Summary {
            header: Header {
                summary_version: SUMMARY_VERSION,
                file,
                first: self.first,
                last: self.last,
                first_started: self.first_started,
                executions: self.overall.count,
            },
            overall: self.overall,
            groups: self.groups,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &str = concat!(
        r#"{"timestamp":"2024-01-15T10:30:45.123456Z","event":"finished","success":true,"script_id":"a","user":"ann","retries":1,"resource_usage":{"wall_time_seconds":2.0,"peak_memory_mb":10.0,"cpu_time_seconds":1.0}}"#,
        "\n",
        r#"{"timestamp":"2024-01-15T09:00:00.000000Z","event":"started","script_id":"a"}"#,
        "\r\n\n",
        r#"{"timestamp":"2024-01-15T11:00:00.000001Z","event":"finished","success":false,"category":"TIMEOUT","script_id":"b","resource_usage":{"wall_time_seconds":4.0,"peak_memory_mb":30.0,"cpu_time_seconds":0.5}}"#,
        "\n"
    );

    fn file() -> SummarisedFile {
        SummarisedFile {
            name: "executions-2024-01-15T12-00-00.000000Z.jsonl.gz".into(),
            size: 100,
            check: FileCheck::GzipTrailer { crc32: 1, isize: 2 },
        }
    }

    fn built(pieces: &[&[u8]]) -> Result<Summary, SummaryError> {
        let mut b = SummaryBuilder::new();
        for p in pieces {
            b.feed(p);
        }
        b.finish(file())
    }

    #[test]
    fn counts_executions_by_every_dimension_whatever_the_pieces() {
        let s = built(&[LINES.as_bytes()]).unwrap();
        assert_eq!(s.header.executions, 2);
        assert_eq!(
            s.header.first.as_deref(),
            Some("2024-01-15T10:30:45.123456Z")
        );
        assert_eq!(
            s.header.last.as_deref(),
            Some("2024-01-15T11:00:00.000001Z")
        );
        assert_eq!(s.overall.count, 2);
        assert_eq!(s.overall.successes, 1);
        assert_eq!(s.overall.retries, 1);
        assert_eq!(s.overall.cpu_micros, 1_500_000);
        assert_eq!(s.overall.failures_by_category["TIMEOUT"], 1);
        assert_eq!(s.overall.duration_seconds.max(), Some(4.0));
        let keys = |d: usize| s.groups[d].keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(0), ["a", "b"]);
        assert_eq!(keys(2), ["(none)", "ann"]);
        assert_eq!(keys(3), ["(none)", "TIMEOUT"]);
        assert_eq!(keys(4), ["2024-01-15T10", "2024-01-15T11"]);
        // Cut anywhere, the same summary.
        let bytes = LINES.as_bytes();
        for cut in [1, 50, 200, 201, bytes.len() - 1] {
            let again = built(&[&bytes[..cut], &bytes[cut..]]).unwrap();
            assert_eq!(again.to_bytes(), s.to_bytes(), "cut at {cut}");
        }
    }

    #[test]
    fn reads_back_what_it_writes_and_refuses_any_damage() {
        let s = built(&[LINES.as_bytes()]).unwrap();
        let bytes = s.to_bytes();
        assert_eq!(bytes, s.to_bytes(), "deterministic");
        for (i, d) in Dimension::ALL.iter().enumerate() {
            let v = read_summary(&bytes, &[*d]).unwrap();
            assert_eq!(v.header, s.header);
            assert_eq!(to_json(&v.overall), to_json(&s.overall));
            assert_eq!(to_json(&v.groups[d]), to_json(&s.groups[i]));
        }
        // Every bit flipped is refused.
        for byte in (0..bytes.len()).step_by(7) {
            for bit in [0, 3, 6] {
                let mut damaged = bytes.clone();
                damaged[byte] ^= 1 << bit;
                assert!(
                    read_summary(&damaged, &[Dimension::Hour]).is_err(),
                    "bit {bit} of byte {byte} flipped"
                );
            }
        }
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                read_summary(&bytes[..cut], &[]).is_err(),
                "truncated at {cut}"
            );
        }
        let mut lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
        lines.pop();
        assert!(
            read_summary(&lines.concat(), &[]).is_err(),
            "a whole line missing"
        );
    }

    #[test]
    fn figures_that_do_not_hang_together_are_refused() {
        let edits: [fn(&mut Figures); 5] = [
            |f| f.successes = f.count + 1,
            |f| f.count += 1,
            |f| *f.failures_by_category.values_mut().next().unwrap() += 1,
            |f| f.cpu_micros = i128::MAX,
            |f| {
                f.duration_seconds.add(1.0);
            },
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut s = built(&[LINES.as_bytes()]).unwrap();
            edit(&mut s.overall);
            assert!(read_summary(&s.to_bytes(), &[]).is_err(), "edit {i}");
            let mut s = built(&[LINES.as_bytes()]).unwrap();
            edit(s.groups[0].values_mut().next_back().unwrap());
            assert!(
                read_summary(&s.to_bytes(), &[Dimension::Script]).is_err(),
                "edit {i}"
            );
            assert!(
                read_summary(&s.to_bytes(), &[Dimension::User]).is_ok(),
                "edit {i}"
            );
        }
    }

    #[test]
    fn another_version_is_refused() {
        let mut s = built(&[LINES.as_bytes()]).unwrap();
        s.header.summary_version = SUMMARY_VERSION + 1;
        let e = read_summary(&s.to_bytes(), &[]).unwrap_err();
        assert!(e.0.contains("version"), "{e}");
    }

    #[test]
    fn a_file_a_reader_would_warn_about_gets_no_summary() {
        let ok = LINES.as_bytes();
        for (extra, why) in [
            (&b"not json\n"[..], "not a JSON record"),
            (b"{\"event\":\"finished\"}\n", "canonical timestamp"),
            (
                b"{\"event\":\"finished\",\"timestamp\":\"2024-01-15T10:30:45Z\"}\n",
                "canonical timestamp",
            ),
            (
                b"{\"event\":\"finished\",\"timestamp\":\"2024-01-15T10:30:45.000000Z\",\"resource_usage\":{\"wall_time_seconds\":-1}}\n",
                "sketch",
            ),
            (b"{\"event\":\"finished\"", "incomplete"),
            (b"\xff\n", "not a JSON record"),
        ] {
            let e = built(&[ok, extra]).unwrap_err();
            assert!(e.0.contains(why), "{e} for {:?}", String::from_utf8_lossy(extra));
        }
    }

    #[test]
    fn file_checks_cover_the_gzip_trailer_or_both_ends() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let check = |d: &[u8], gzip| FileCheck::of(&mut io::Cursor::new(d), d.len() as u64, gzip);
        assert_eq!(
            check(&data, true).unwrap(),
            FileCheck::GzipTrailer {
                crc32: u32::from_le_bytes(data[9992..9996].try_into().unwrap()),
                isize: u32::from_le_bytes(data[9996..].try_into().unwrap()),
            }
        );
        let plain = check(&data, false).unwrap();
        let mut changed = data.clone();
        changed[9999] ^= 1;
        assert_ne!(check(&changed, false).unwrap(), plain);
        changed = data.clone();
        changed[0] ^= 1;
        assert_ne!(check(&changed, false).unwrap(), plain);
        assert!(check(b"short", false).is_ok());
        assert!(check(b"short", true).is_err());
    }
}
