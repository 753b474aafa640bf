//! Reading the log's files for a query: one file's matching records in order
//! ([`scan_file`]), and the statistics over all files ([`count_all`]), each file answered
//! by its summary or cut into pieces ([`pieces`](super::pieces)) that every core reads
//! side by side.
//!
//! Invariant: the statistics are what reading each file whole, one after the other, gives,
//! problems and line numbers included, and the same on every run: pieces are counted apart
//! and taken in the log's order (files, then pieces), whichever thread read them, so sums
//! of floating-point figures do not depend on the threads' timing.

use std::fs::File;
use std::io;

use metaclaude_formats::record_parser::parse_record;

use super::parallel::in_parallel;
use super::pieces::{self, Piece, Sizes};
use super::query::{Matcher, Record};
use super::reader::{self, LogFile, Reporter, Tail, MAX_LINE_REPORTS};
use super::stats::{GroupBy, Report, StatsAcc};
use super::summaries::{Answer, SummaryPlan};

/// Scans one file, calling `each` with every matching execution record and its line.
/// Lines that are not JSON are reported (the first few one by one) and skipped.
pub fn scan_file(
    file: &LogFile,
    matcher: &Matcher,
    reporter: &Reporter,
    mut each: impl FnMut(&Record<'_>, &[u8]) -> bool,
) {
    let Some(open) = reader::open(file, reporter) else {
        return;
    };
    let mut report = FileReport::new(file, reporter);
    let mut bad = BadLines::default();
    let ended = reader::read_piece(
        &open,
        file.gzip,
        Piece::WHOLE,
        &mut |n, line| bad.take(matcher, n, line, &mut each),
        &mut |n, bytes| reader::report_too_long(file, reporter, n, bytes),
    );
    report.bad(bad);
    report.end(ended, true);
}

/// Statistics over all files on every core, read in pieces of about `sizes`; a file whose
/// summary answers (`plan`) is not read. See the module's invariant.
pub fn count_all(
    files: &[LogFile],
    matcher: &Matcher,
    plan: Option<&SummaryPlan>,
    reporter: &Reporter,
    group_by: Option<GroupBy>,
    sizes: Sizes,
) -> Report {
    // Each file answered from its summary, or opened and cut.
    let planned = in_parallel(files.len(), |i| {
        let file = &files[i];
        if let Some(plan) = plan.filter(|_| file.summary.is_some()) {
            let mut acc = StatsAcc::default();
            if from_summary(plan, file, &mut acc, reporter) {
                return Planned::Counted(Box::new(acc));
            }
        }
        let Some(open) = reader::open(file, reporter) else {
            return Planned::Skipped;
        };
        let size = open.metadata().map_or(0, |m| m.len());
        // A file that cannot be cut is read whole: its reader meets the error and says so.
        let cut = pieces::cut(&open, size, file.gzip, sizes).unwrap_or_else(|_| vec![Piece::WHOLE]);
        Planned::Pieces(open, size, cut)
    });
    // Every piece, the longest first so that the threads finish together (a compressed
    // byte holds about six of lines).
    let mut jobs: Vec<(usize, usize, u64)> = Vec::new();
    for (i, planned) in planned.iter().enumerate() {
        if let Planned::Pieces(_, size, cut) = planned {
            let weight = if files[i].gzip { 6 } else { 1 };
            jobs.extend(
                cut.iter()
                    .enumerate()
                    .map(|(k, p)| (i, k, p.len(*size).saturating_mul(weight))),
            );
        }
    }
    jobs.sort_by_key(|&(i, k, cost)| (std::cmp::Reverse(cost), i, k));
    let counted = in_parallel(jobs.len(), |j| {
        let (i, k, _) = jobs[j];
        let Planned::Pieces(open, _, cut) = &planned[i] else {
            unreachable!("jobs are pieces")
        };
        count_piece(open, &files[i], cut[k], matcher, group_by)
    });
    // In the log's order.
    let mut by_file: Vec<Vec<(usize, PieceCount)>> = (0..files.len()).map(|_| Vec::new()).collect();
    for ((i, k, _), c) in jobs.into_iter().zip(counted) {
        by_file[i].push((k, c));
    }
    let mut total = StatsAcc::default();
    for ((file, planned), mut counts) in files.iter().zip(planned).zip(by_file) {
        match planned {
            Planned::Counted(acc) => total.merge(*acc),
            Planned::Skipped => {}
            Planned::Pieces(open, _, cut) => {
                counts.sort_by_key(|(k, _)| *k);
                let counts = counts.into_iter().map(|(_, c)| c);
                add_pieces(
                    file, &open, &cut, counts, matcher, reporter, group_by, &mut total,
                );
            }
        }
    }
    total.finish(group_by)
}

/// What the first step of [`count_all`] made of a file.
enum Planned {
    /// Counted from its summary (or outside the query's range).
    Counted(Box<StatsAcc>),
    /// Not readable (reported).
    Skipped,
    /// To be read: the open file, its size, its pieces.
    Pieces(File, u64, Vec<Piece>),
}

/// What one piece of a file counted and met, its line numbers the piece's own.
struct PieceCount {
    acc: StatsAcc,
    ended: Result<Tail, (u64, io::Error)>,
    bad: BadLines,
    too_long: Vec<(u64, usize)>,
}

fn count_piece(
    open: &File,
    file: &LogFile,
    piece: Piece,
    matcher: &Matcher,
    group_by: Option<GroupBy>,
) -> PieceCount {
    let mut acc = StatsAcc::default();
    let mut bad = BadLines::default();
    let mut too_long = Vec::new();
    let ended = reader::read_piece(
        open,
        file.gzip,
        piece,
        &mut |n, line| {
            bad.take(matcher, n, line, &mut |r, _| {
                acc.add(r, group_by);
                true
            })
        },
        &mut |n, bytes| too_long.push((n, bytes)),
    );
    PieceCount {
        acc,
        ended,
        bad,
        too_long,
    }
}

/// Takes `file`'s counted pieces into `total` in order, with their problems reported as
/// reading the file whole reports them: after damage the rest of the file is left out,
/// and a piece that does not end with a whole line (only a hostile writer's members do
/// not) has the file read again from it in one go.
#[allow(clippy::too_many_arguments)]
fn add_pieces(
    file: &LogFile,
    open: &File,
    cut: &[Piece],
    counts: impl Iterator<Item = PieceCount>,
    matcher: &Matcher,
    reporter: &Reporter,
    group_by: Option<GroupBy>,
    total: &mut StatsAcc,
) {
    let mut report = FileReport::new(file, reporter);
    for (k, mut c) in counts.enumerate() {
        let mut last = k + 1 == cut.len();
        if !last && matches!(c.ended, Ok(Tail::Incomplete { .. })) {
            let rest = Piece {
                start: cut[k].start,
                end: None,
            };
            c = count_piece(open, file, rest, matcher, group_by);
            last = true;
        }
        for (line, bytes) in c.too_long {
            reader::report_too_long(file, reporter, report.lines_before + line, bytes);
        }
        report.bad(c.bad);
        total.merge(c.acc);
        if !report.end(c.ended, last) {
            break;
        }
    }
}

/// Whether `file`'s summary answers for it under `plan` (or found it outside the query's
/// range), counted into `acc`. A summary that could not be used is a note (the answer is
/// complete: the file is read instead) and a debug line.
fn from_summary(
    plan: &SummaryPlan,
    file: &LogFile,
    acc: &mut StatsAcc,
    reporter: &Reporter,
) -> bool {
    match plan.answer(file, acc) {
        Ok(Answer::Counted | Answer::Outside) => true,
        Ok(Answer::Partial) => false,
        Err(why) => {
            ignored_summary(file, &why, reporter);
            false
        }
    }
}

/// Says that `file`'s summary was not used and why (a note: the file is read instead, so
/// the answer is complete), and logs it at debug level.
pub fn ignored_summary(file: &LogFile, why: &str, reporter: &Reporter) {
    let summary = file.summary.as_deref().unwrap_or(file.path.as_path());
    tracing::debug!(summary = %summary.display(), "summary ignored: {why}");
    reporter.note(format_args!(
        "{}: summary ignored ({why}); {} read instead",
        summary.display(),
        file.path.display()
    ));
}

/// Lines of a file or piece that are not JSON records: the first few (their numbers, and
/// why), and how many in all.
#[derive(Default)]
struct BadLines {
    first: Vec<(u64, String)>,
    count: u64,
}

impl BadLines {
    /// Hands line `n` to `each` if it is a matching execution record; notes it here if it
    /// is not a record. What `each` answers (`false`: stop).
    fn take(
        &mut self,
        matcher: &Matcher,
        n: u64,
        line: &[u8],
        each: &mut impl FnMut(&Record<'_>, &[u8]) -> bool,
    ) -> bool {
        if !matcher.may_match(line) {
            return true;
        }
        // Exactly what serde_json reads (UTF-8 checked throughout), faster.
        match parse_record(line) {
            Ok(r) if r.is_execution() && matcher.matches(&r) => each(&r, line),
            Ok(_) => true,
            Err(e) => {
                self.count += 1;
                if self.count <= MAX_LINE_REPORTS {
                    self.first.push((n, e.to_string()));
                }
                true
            }
        }
    }
}

/// A file's problems reported in its order as its pieces are taken in: line numbers made
/// the file's own, bad lines past the first few counted in one warning at the end.
struct FileReport<'a> {
    file: &'a LogFile,
    reporter: &'a Reporter<'a>,
    /// Lines in the pieces taken so far.
    lines_before: u64,
    bad_reported: u64,
    bad: u64,
}

impl<'a> FileReport<'a> {
    fn new(file: &'a LogFile, reporter: &'a Reporter<'a>) -> FileReport<'a> {
        FileReport {
            file,
            reporter,
            lines_before: 0,
            bad_reported: 0,
            bad: 0,
        }
    }

    /// A piece's bad lines.
    fn bad(&mut self, bad: BadLines) {
        for (line, why) in bad.first {
            if self.bad_reported < MAX_LINE_REPORTS {
                self.bad_reported += 1;
                self.reporter.warn(format_args!(
                    "{}:{}: not a JSON log record ({why}); line skipped",
                    self.file.path.display(),
                    self.lines_before + line
                ));
            }
        }
        self.bad += bad.count;
    }

    /// How a piece ended (`last`: the file's last piece read); whether the next piece is
    /// to be taken. The file's end is reported.
    fn end(&mut self, ended: Result<Tail, (u64, io::Error)>, last: bool) -> bool {
        match ended {
            Ok(Tail::Complete { lines }) if !last => {
                self.lines_before += lines;
                return true;
            }
            ended => reader::report_end(self.file, self.reporter, self.lines_before, &ended),
        }
        if self.bad > self.bad_reported {
            self.reporter.warn(format_args!(
                "{}: {} more lines that are not JSON records skipped",
                self.file.path.display(),
                self.bad - self.bad_reported
            ));
        }
        false
    }
}
