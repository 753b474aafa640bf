//! The names of the execution log's files, the one definition the writer (the log sink
//! plugin) and the readers (`metaclaude logs`, the server's history) share.
//!
//! A log directory holds:
//! * `executions.jsonl`: the live file, appended to;
//! * `executions-<STAMP>[-<TAG>].jsonl`: a rotated file, named by the UTC time it was
//!   rotated at (`STAMP` = `2024-01-15T10-30-45.123456Z`); every line in it is older than
//!   that time and newer than the previous rotated file's. `TAG` (letters and digits) tells
//!   apart two writers that rotate in the same microsecond;
//! * the same name with `.gz`: a rotated file once compressed;
//! * the compressed name with `.tmp` or `.<TAG>.tmp`: a compression in progress (never
//!   read; its writer renames it into place once complete);
//! * the plain rotated name with `.summary`: the rotated file's summary (`log_summary`),
//!   written once the file is final, and with `.summary.<TAG>.tmp` one being written.
//!   It goes with its file: retention removes both.
//!
//! * [`TIDIED_FILE`]: empty; its modification time is when a writer last tidied the
//!   directory (compression, retention), so that one starting right after skips it.
//!
//! Names sort by time (the stamp comes first and has a fixed width), so age comes from the
//! name alone. Beside them the host keeps its alert history ([`ALERTS_FILE`], and the one
//! before it, [`ALERTS_PREVIOUS`]), which the log's writer and readers leave alone, as
//! anything else in the directory.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// The alert history: every change of every alert (firing, escalated, resolved), a JSON
/// line each, written by the host.
pub const ALERTS_FILE: &str = "alerts.jsonl";
/// The alert history before the last time it reached its size cap.
pub const ALERTS_PREVIOUS: &str = "alerts.1.jsonl";

/// The live file's name.
pub const LIVE_FILE: &str = "executions.jsonl";
/// Touched by a writer each time it tidies the directory (hidden; no reader reads it).
pub const TIDIED_FILE: &str = ".executions-tidied";
/// What every rotated name starts with.
pub const ROTATED_PREFIX: &str = "executions-";
/// The extension of the log's lines, plain.
pub const EXTENSION: &str = ".jsonl";
/// Added to a rotated name once compressed.
pub const COMPRESSED_SUFFIX: &str = ".gz";
/// Added to a plain rotated name for its summary.
pub const SUMMARY_SUFFIX: &str = ".summary";
/// Ends the name of a compression (or a summary) in progress.
pub const PARTIAL_SUFFIX: &str = ".tmp";
/// How the rotation time is written in a name (chrono's syntax; microseconds, UTC).
pub const STAMP_FORMAT: &str = "%Y-%m-%dT%H-%M-%S%.6fZ";
/// Longest writer tag in a name.
pub const MAX_TAG_LEN: usize = 32;

/// What a file of the log directory is, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Live,
    /// A rotated file, gzip-compressed or not yet.
    Rotated {
        compressed: bool,
    },
    /// A compression or a summary in progress: never read.
    Partial,
    /// The summary of the rotated file (`log_summary`).
    Summary,
}

/// A parsed name of a file of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogFileName<'a> {
    pub kind: Kind,
    /// When the file was rotated (`None` for the live file).
    pub rotated_at: Option<DateTime<Utc>>,
    /// The plain rotated name this file is a form of (`executions-<STAMP>[-<TAG>].jsonl`):
    /// the plain, compressed and partial files of one rotation share it. The live file's
    /// name for the live file.
    pub rotation: &'a str,
}

impl LogFileName<'_> {
    /// Whether it holds log lines (the live file or a rotated one).
    pub fn is_readable(&self) -> bool {
        matches!(self.kind, Kind::Live | Kind::Rotated { .. })
    }

    pub fn is_compressed(&self) -> bool {
        self.kind == (Kind::Rotated { compressed: true })
    }
}

/// What `name` is in a log directory; `None` for a stray.
pub fn parse(name: &str) -> Option<LogFileName<'_>> {
    if name == LIVE_FILE {
        return Some(LogFileName {
            kind: Kind::Live,
            rotated_at: None,
            rotation: name,
        });
    }
    let rest = name.strip_prefix(ROTATED_PREFIX)?;
    let end = rest.find(EXTENSION)?;
    // The stamp's only `Z` is its last character: a tag follows `Z-`.
    let head = &rest[..end];
    let (stamp, tag) = match head.find("Z-") {
        Some(z) => (&head[..=z], Some(&head[z + 2..])),
        None => (head, None),
    };
    if tag.is_some_and(|t| !valid_tag(t)) {
        return None;
    }
    let rotated_at = parse_stamp(stamp)?;
    let rotation = &name[..ROTATED_PREFIX.len() + end + EXTENSION.len()];
    let kind = match &rest[end + EXTENSION.len()..] {
        "" => Kind::Rotated { compressed: false },
        ".gz" => Kind::Rotated { compressed: true },
        SUMMARY_SUFFIX => Kind::Summary,
        partial => {
            let inner = partial.strip_suffix(PARTIAL_SUFFIX)?;
            let inner = inner
                .strip_prefix(COMPRESSED_SUFFIX)
                .or_else(|| inner.strip_prefix(SUMMARY_SUFFIX))?;
            match inner.strip_prefix('.') {
                None if inner.is_empty() => Kind::Partial,
                Some(tag) if valid_tag(tag) => Kind::Partial,
                _ => return None,
            }
        }
    };
    Some(LogFileName {
        kind,
        rotated_at: Some(rotated_at),
        rotation,
    })
}

/// The rotation time in a rotated file's name (plain or compressed; `None` otherwise).
pub fn rotated_time(name: &str) -> Option<DateTime<Utc>> {
    parse(name)
        .filter(|n| matches!(n.kind, Kind::Rotated { .. }))
        .and_then(|n| n.rotated_at)
}

/// The name of the file the live file becomes when rotated at `at`, with `tag` (letters
/// and digits, at most [`MAX_TAG_LEN`]) telling writers apart; `None` leaves it out.
///
/// # Panics
/// On a tag that is not letters and digits: the writer chooses it.
pub fn rotated_name(at: DateTime<Utc>, tag: Option<&str>) -> String {
    let stamp = at.format(STAMP_FORMAT);
    match tag {
        None => format!("{ROTATED_PREFIX}{stamp}{EXTENSION}"),
        Some(tag) => {
            assert!(
                valid_tag(tag),
                "log file tag {tag:?}: letters and digits only"
            );
            format!("{ROTATED_PREFIX}{stamp}-{tag}{EXTENSION}")
        }
    }
}

/// The name of a rotated file once compressed.
pub fn compressed_name(rotated: &str) -> String {
    format!("{rotated}{COMPRESSED_SUFFIX}")
}

/// The name a compression of `rotated` writes to before renaming it into place; `tag`
/// keeps two writers compressing at once out of each other's file.
pub fn partial_name(rotated: &str, tag: Option<&str>) -> String {
    match tag {
        None => format!("{rotated}{COMPRESSED_SUFFIX}{PARTIAL_SUFFIX}"),
        Some(tag) => {
            assert!(
                valid_tag(tag),
                "log file tag {tag:?}: letters and digits only"
            );
            format!("{rotated}{COMPRESSED_SUFFIX}.{tag}{PARTIAL_SUFFIX}")
        }
    }
}

/// The name of a rotated file's summary (`rotated` is the plain rotated name).
pub fn summary_name(rotated: &str) -> String {
    format!("{rotated}{SUMMARY_SUFFIX}")
}

/// The name a writer writes `rotated`'s summary to before renaming it into place.
///
/// # Panics
/// On a tag that is not letters and digits: the writer chooses it.
pub fn partial_summary_name(rotated: &str, tag: &str) -> String {
    assert!(
        valid_tag(tag),
        "log file tag {tag:?}: letters and digits only"
    );
    format!("{rotated}{SUMMARY_SUFFIX}.{tag}{PARTIAL_SUFFIX}")
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty() && tag.len() <= MAX_TAG_LEN && tag.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A stamp with any number of fraction digits (names written by hand or by older writers).
fn parse_stamp(stamp: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H-%M-%S%.fZ").ok()?;
    Some(Utc.from_utc_datetime(&naive))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_name_the_writer_makes_parses_back() {
        let t = at("2024-01-15T10:30:45.123456Z");
        for tag in [None, Some("a1B2")] {
            let rotated = rotated_name(t, tag);
            let compressed = compressed_name(&rotated);
            for (name, kind) in [
                (rotated.clone(), Kind::Rotated { compressed: false }),
                (compressed.clone(), Kind::Rotated { compressed: true }),
                (partial_name(&rotated, None), Kind::Partial),
                (partial_name(&rotated, Some("w9")), Kind::Partial),
                (summary_name(&rotated), Kind::Summary),
                (partial_summary_name(&rotated, "w9"), Kind::Partial),
            ] {
                let parsed = parse(&name).unwrap_or_else(|| panic!("{name}"));
                assert_eq!(parsed.kind, kind, "{name}");
                assert_eq!(parsed.rotated_at, Some(t), "{name}");
                assert_eq!(parsed.rotation, rotated, "{name}");
            }
            assert_eq!(rotated_time(&compressed), Some(t));
            assert_eq!(rotated_time(&partial_name(&rotated, None)), None);
        }
        assert_eq!(
            rotated_name(t, None),
            "executions-2024-01-15T10-30-45.123456Z.jsonl"
        );
        assert_eq!(parse(LIVE_FILE).unwrap().kind, Kind::Live);
    }

    #[test]
    fn strays_and_hand_written_names() {
        for stray in [
            "executions.jsonl.gz",
            "executions-.jsonl",
            "executions-2024-01-15T10-30-45Z.json",
            "executions-2024-01-15T10-30-45Z-bad_tag.jsonl",
            "executions-2024-01-15T10-30-45Z.jsonl.bak",
            "executions-2024-01-15T10-30-45Z.jsonl.gz.x.y.tmp",
            "executions-2024-01-15T10-30-45Z.jsonl.gz.summary",
            "executions-2024-01-15T10-30-45Z.jsonl.summary.tmp.x",
            "executions-2024-01-15T10-30-45Z.jsonl.summary.a_b.tmp",
            "other.jsonl",
        ] {
            assert_eq!(parse(stray), None, "{stray}");
        }
        // Fewer fraction digits, or none, are still a time.
        assert_eq!(
            rotated_time("executions-2024-01-15T10-30-45Z.jsonl"),
            Some(at("2024-01-15T10:30:45Z"))
        );
        assert_eq!(
            rotated_time("executions-2024-01-15T10-30-45.5Z-x.jsonl.gz"),
            Some(at("2024-01-15T10:30:45.5Z"))
        );
    }

    #[test]
    fn names_sort_by_time() {
        let mut names: Vec<String> = [
            "2024-01-15T10:30:45.000002Z",
            "2023-12-31T23:59:59.999999Z",
            "2024-01-15T10:30:45.000001Z",
        ]
        .iter()
        .map(|t| compressed_name(&rotated_name(at(t), Some("z"))))
        .collect();
        names.sort();
        let times: Vec<_> = names.iter().map(|n| rotated_time(n).unwrap()).collect();
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(times, sorted);
    }
}
