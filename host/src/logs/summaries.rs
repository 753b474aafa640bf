//! Statistics from the summaries the log sink writes beside rotated files
//! (`metaclaude_formats::log_summary`), so that `--stats` over weeks of history reads a
//! few kilobytes per file instead of decompressing it.
//!
//! A summary is used for a file only when it answers the query exactly as reading the file
//! would (but for percentiles, which come from its sketches, within 1 %): the query has no
//! filter but the time range and at most one of script, specialist, user or category (then
//! grouped by nothing or by that same field), and the file lies wholly inside the time
//! range by the summary's first and last timestamps (wholly outside, it counts nothing and
//! is not read). A summary that is damaged, of another version, or that does not match its
//! file (name, size, gzip trailer or head-and-tail CRC) is ignored and the file read.

use std::io::Read;

use metaclaude_formats::log_summary::{read_summary, Dimension, FileCheck, SummaryView, NONE_KEY};

use super::query::Filter;
use super::reader::LogFile;
use super::stats::{GroupBy, StatsAcc};

/// A summary bigger than this is not one the sink wrote (a few hundred KiB at most).
const MAX_SUMMARY_BYTES: u64 = 64 << 20;

/// Which executions of a summarised file a query takes.
#[derive(Debug, Clone, PartialEq)]
enum Pick {
    /// All of them.
    All,
    /// Those whose `dimension` has this value (a category in any case).
    Value {
        dimension: Dimension,
        value: String,
        any_case: bool,
    },
}

/// How a query's statistics can come from summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryPlan {
    /// The time bounds as log timestamp text, `[start, end)`.
    start: Option<String>,
    end: Option<String>,
    pick: Pick,
    group_by: Option<GroupBy>,
}

/// What a summary did for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Its executions were counted from the summary.
    Counted,
    /// It lies wholly outside the time range: nothing to count, nothing to read.
    Outside,
    /// It straddles a bound of the time range: the file must be read.
    Partial,
}

impl SummaryPlan {
    /// The plan for a query with these filters and grouping, or `None` when summaries
    /// cannot answer it (a filter they do not split by, or two of them).
    pub fn of(filter: &Filter, group_by: Option<GroupBy>) -> Option<SummaryPlan> {
        if filter.failed
            || filter.execution_id.is_some()
            || filter.session.is_some()
            || filter.correlation_id.is_some()
        {
            return None;
        }
        let values = [
            (Dimension::Script, &filter.script, false),
            (Dimension::Specialist, &filter.specialist, false),
            (Dimension::User, &filter.user, false),
            (Dimension::Category, &filter.category, true),
        ];
        let mut picked = values
            .into_iter()
            .filter_map(|(d, v, any_case)| v.as_ref().map(|v| (d, v.clone(), any_case)));
        let pick = match (picked.next(), picked.next()) {
            (None, _) => Pick::All,
            (Some((dimension, value, any_case)), None) => {
                // Grouped by another field, the summary would need both at once; and its
                // NONE_KEY group also holds the records without the field.
                let grouped_alike = group_by.is_none_or(|g| g.dimension() == dimension);
                if !grouped_alike || value == NONE_KEY {
                    return None;
                }
                Pick::Value {
                    dimension,
                    value,
                    any_case,
                }
            }
            (Some(_), Some(_)) => return None,
        };
        Some(SummaryPlan {
            start: filter.start.clone(),
            end: filter.end.clone(),
            pick,
            group_by,
        })
    }

    /// The dimension whose groups the plan needs from a summary.
    fn dimension(&self) -> Option<Dimension> {
        match &self.pick {
            Pick::Value { dimension, .. } => Some(*dimension),
            Pick::All => self.group_by.map(GroupBy::dimension),
        }
    }

    /// Counts `file`'s executions into `acc` from its summary when it can. `Err` says why
    /// the summary was ignored (the caller reads the file).
    pub fn answer(&self, file: &LogFile, acc: &mut StatsAcc) -> Result<Answer, String> {
        let view = load(file, self.dimension().as_slice())?;
        let (Some(first), Some(last)) = (&view.header.first, &view.header.last) else {
            return Ok(Answer::Outside); // no execution in it
        };
        let before_start = |t: &String| self.start.as_ref().is_some_and(|s| t < s);
        let at_or_after_end = |t: &String| self.end.as_ref().is_some_and(|e| t >= e);
        if before_start(last) || at_or_after_end(first) {
            return Ok(Answer::Outside);
        }
        if before_start(first) || at_or_after_end(last) {
            return Ok(Answer::Partial);
        }
        let groups = view.groups.values().flatten();
        match &self.pick {
            Pick::All => acc.add_summary(
                [&view.overall],
                groups.map(|(k, f)| (k.as_str(), f)),
                self.group_by,
            ),
            Pick::Value {
                value, any_case, ..
            } => {
                let taken: Vec<_> = groups
                    .filter(|(k, _)| match any_case {
                        true => k.as_str() != NONE_KEY && k.eq_ignore_ascii_case(value),
                        false => *k == value,
                    })
                    .map(|(k, f)| (k.as_str(), f))
                    .collect();
                acc.add_summary(taken.iter().map(|(_, f)| *f), taken.clone(), self.group_by);
            }
        }
        Ok(Answer::Counted)
    }
}

/// `file`'s summary with `dimensions`' groups, checked whole and against the file (its
/// name, size and [`FileCheck`]); opened through `safe_fs`, never through a link.
pub fn load(file: &LogFile, dimensions: &[Dimension]) -> Result<SummaryView, String> {
    let path = file.summary.as_ref().ok_or("no summary")?;
    let mut bytes = Vec::new();
    crate::safe_fs::open_read(path)
        .and_then(|f| f.take(MAX_SUMMARY_BYTES).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read it ({e})"))?;
    let view = read_summary(&bytes, dimensions).map_err(|e| e.to_string())?;
    let described = &view.header.file;
    let name = file.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if described.name != name {
        return Err(format!("it describes {}, not {name}", described.name));
    }
    let mut data =
        crate::safe_fs::open_read(&file.path).map_err(|e| format!("cannot open the file ({e})"))?;
    let size = data
        .metadata()
        .map_err(|e| format!("cannot read the file's size ({e})"))?
        .len();
    if size != described.size {
        return Err(format!(
            "it describes {} bytes, the file has {size}",
            described.size
        ));
    }
    let check = FileCheck::of(&mut data, size, file.gzip)
        .map_err(|e| format!("cannot check the file ({e})"))?;
    if check != described.check {
        return Err("the file's checksum is not the one it describes".into());
    }
    Ok(view)
}
