//! The alert history: every change of every alert (firing, escalated, resolved) as a
//! JSON line in `alerts.jsonl` beside the execution log, and the query `metaclaude alerts
//! history` runs on it.
//!
//! Many hosts may share a log directory: each line is one `write` on a file opened for
//! appending, so lines never interleave. At [`MAX_BYTES`] the file becomes
//! `alerts.1.jsonl` (replacing the one before) and a new one starts; a writer notices
//! that its file was renamed and reopens. A failed write is counted and reported; it
//! never stops alerts from reaching notifiers.
//!
//! The log directory is one a plugin writes (the log sink's grant): the files are opened
//! through [`crate::safe_fs`], so a link planted there is refused, never followed; the
//! directory is created 0700 and the files 0600.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use metaclaude_formats::log_files::{ALERTS_FILE, ALERTS_PREVIOUS};

use crate::model::{Alert, AlertStatus, Severity};
use crate::safe_fs::{self, Dir};

/// The history's size cap, after which it starts again (the previous one is kept).
pub const MAX_BYTES: u64 = 16 << 20;

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Creating the directory, opening, writing or rotating the live file failed (a link
    /// in its place included).
    #[error("cannot write the alert history {path}: {source} (check the log directory, METACLAUDE_LOG_DIR)")]
    Write {
        /// The live file, `alerts.jsonl`.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A history file exists but could not be opened or read.
    #[error("cannot read the alert history {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// The writer of one host.
pub struct AlertHistory {
    dir: PathBuf,
    file: Mutex<Option<(File, u64)>>,
    max_bytes: u64,
}

impl AlertHistory {
    /// The history in the log directory `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> AlertHistory {
        AlertHistory {
            dir: dir.into(),
            file: Mutex::new(None),
            max_bytes: MAX_BYTES,
        }
    }

    /// The same with another size cap (tests).
    pub fn with_max_bytes(dir: impl Into<PathBuf>, max_bytes: u64) -> AlertHistory {
        AlertHistory {
            max_bytes,
            ..AlertHistory::new(dir)
        }
    }

    /// The live file, `alerts.jsonl` in the log directory.
    pub fn path(&self) -> PathBuf {
        self.dir.join(ALERTS_FILE)
    }

    /// Appends each alert as a line.
    pub fn append(&self, alerts: &[Alert]) -> Result<(), HistoryError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let path = self.path();
        let err = |source| HistoryError::Write {
            path: path.clone(),
            source,
        };
        let mut slot = self.file.lock().unwrap();
        for alert in alerts {
            let mut line = serde_json::to_vec(alert).expect("alerts serialise");
            line.push(b'\n');
            let file = self.open(&mut slot).map_err(err)?;
            file.write_all(&line).map_err(err)?;
            self.rotate_if_full(&mut slot).map_err(err)?;
        }
        Ok(())
    }

    /// The open live file, reopened when another writer rotated it away (or something
    /// else took its name: a link planted there is refused when reopening).
    fn open<'a>(&self, slot: &'a mut Option<(File, u64)>) -> std::io::Result<&'a mut File> {
        use std::os::unix::fs::MetadataExt;
        let path = self.path();
        let current = std::fs::symlink_metadata(&path).ok().map(|m| m.ino());
        if slot.as_ref().map(|(_, ino)| Some(*ino)) != Some(current) {
            *slot = None;
            let file = Dir::create_private(&self.dir)?.open_append(ALERTS_FILE)?;
            let ino = file.metadata()?.ino();
            *slot = Some((file, ino));
        }
        Ok(&mut slot.as_mut().expect("opened").0)
    }

    fn rotate_if_full(&self, slot: &mut Option<(File, u64)>) -> std::io::Result<()> {
        let Some((file, _)) = slot.as_ref() else {
            return Ok(());
        };
        if file.metadata()?.len() >= self.max_bytes {
            Dir::open(&self.dir)?.rename(ALERTS_FILE, ALERTS_PREVIOUS)?;
            *slot = None;
        }
        Ok(())
    }
}

/// What `metaclaude alerts history` asks.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Only alerts of this type (`error_rate_high`); any when `None`.
    pub kind: Option<String>,
    /// Only this severity; any when `None`.
    pub severity: Option<Severity>,
    /// Only alerts about this specialist; any when `None`.
    pub specialist: Option<String>,
    /// Only firing or only resolved changes; both when `None`.
    pub status: Option<AlertStatus>,
    /// Only changes observed at or after this time; all when `None`.
    pub since: Option<DateTime<Utc>>,
    /// At most this many, newest first (0: all).
    pub limit: usize,
}

impl HistoryQuery {
    fn matches(&self, a: &Alert) -> bool {
        self.kind.as_ref().is_none_or(|k| *k == a.kind)
            && self.severity.is_none_or(|s| s == a.severity)
            && self
                .specialist
                .as_ref()
                .is_none_or(|s| a.specialist.as_ref() == Some(s))
            && self.status.is_none_or(|s| s == a.status)
            && self.since.is_none_or(|t| a.timestamp >= t)
    }
}

/// The history's answer: the alerts, and the lines that could not be read (file:line:
/// why) and the files skipped (a link: file: why), which never stop the query.
#[derive(Debug, Default)]
pub struct HistoryAnswer {
    /// The alerts found ([`query`]: the changes that match, newest first, at most its
    /// `limit`).
    pub alerts: Vec<Alert>,
    /// Each line that could not be read (`file:line: why`) and each file skipped
    /// (`file: why`).
    pub damaged: Vec<String>,
}

/// Every line of the history in `dir`, oldest first, to `f`. A file that is a link is
/// skipped and reported with the damaged lines.
fn each_line(dir: &Path, mut f: impl FnMut(Alert)) -> Result<Vec<String>, HistoryError> {
    let mut damaged = Vec::new();
    for name in [ALERTS_PREVIOUS, ALERTS_FILE] {
        let path = dir.join(name);
        let file = match safe_fs::open_read(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) if safe_fs::refusal(&e).is_some() => {
                damaged.push(format!("{}: {e}", path.display()));
                continue;
            }
            Err(source) => return Err(HistoryError::Read { path, source }),
        };
        for (n, line) in BufReader::new(file).split(b'\n').enumerate() {
            let line = line.map_err(|source| HistoryError::Read {
                path: path.clone(),
                source,
            })?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Alert>(&line) {
                Ok(a) => f(a),
                Err(e) => damaged.push(format!("{}:{}: {e}", path.display(), n + 1)),
            }
        }
    }
    Ok(damaged)
}

/// The alerts of the history in `dir` that `q` selects, newest first.
pub fn query(dir: &Path, q: &HistoryQuery) -> Result<HistoryAnswer, HistoryError> {
    let mut alerts = Vec::new();
    let damaged = each_line(dir, |a| {
        if q.matches(&a) {
            alerts.push(a);
        }
    })?;
    alerts.sort_by_key(|a| std::cmp::Reverse(a.timestamp));
    if q.limit > 0 {
        alerts.truncate(q.limit);
    }
    Ok(HistoryAnswer { alerts, damaged })
}

/// The alerts whose last change in the history is `firing`: what was active when the
/// hosts writing it last said (no host running may mean none is any more).
pub fn last_firing(dir: &Path) -> Result<HistoryAnswer, HistoryError> {
    let mut last: std::collections::HashMap<String, Alert> = Default::default();
    let damaged = each_line(dir, |a| {
        let newer = last
            .get(&a.fingerprint)
            .is_none_or(|b| a.timestamp >= b.timestamp);
        if newer {
            last.insert(a.fingerprint.clone(), a);
        }
    })?;
    let mut alerts: Vec<Alert> = last
        .into_values()
        .filter(|a| a.status == AlertStatus::Firing)
        .collect();
    alerts.sort_by_key(|a| std::cmp::Reverse(a.timestamp));
    Ok(HistoryAnswer { alerts, damaged })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn alert(s: i64, kind: &str, status: AlertStatus) -> Alert {
        let mut a = Alert::firing(
            Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap(),
            kind,
            Severity::Warning,
            "m",
            1.0,
            0.5,
        );
        a.status = status;
        a
    }

    #[test]
    fn written_lines_are_read_back_newest_first_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let h = AlertHistory::new(dir.path().join("logs"));
        let mut crit = alert(2, "b", AlertStatus::Firing);
        crit.severity = Severity::Critical;
        crit.specialist = Some("ops".into());
        h.append(&[alert(1, "a", AlertStatus::Firing), crit])
            .unwrap();
        h.append(&[alert(3, "a", AlertStatus::Resolved)]).unwrap();
        let all = query(&dir.path().join("logs"), &HistoryQuery::default()).unwrap();
        let kinds: Vec<_> = all.alerts.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["a", "b", "a"]);
        let q = |q: HistoryQuery| query(&dir.path().join("logs"), &q).unwrap().alerts.len();
        assert_eq!(
            q(HistoryQuery {
                kind: Some("a".into()),
                ..Default::default()
            }),
            2
        );
        assert_eq!(
            q(HistoryQuery {
                severity: Some(Severity::Critical),
                ..Default::default()
            }),
            1
        );
        assert_eq!(
            q(HistoryQuery {
                specialist: Some("ops".into()),
                ..Default::default()
            }),
            1
        );
        assert_eq!(
            q(HistoryQuery {
                status: Some(AlertStatus::Resolved),
                ..Default::default()
            }),
            1
        );
        assert_eq!(
            q(HistoryQuery {
                limit: 1,
                ..Default::default()
            }),
            1
        );
        let firing = last_firing(&dir.path().join("logs")).unwrap();
        assert_eq!(firing.alerts.len(), 1, "a resolved, b still firing");
        assert_eq!(firing.alerts[0].kind, "b");
    }

    #[test]
    fn the_cap_keeps_one_previous_file_and_a_damaged_line_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let h = AlertHistory::with_max_bytes(dir.path(), 600);
        for i in 0..20 {
            h.append(&[alert(i, "a", AlertStatus::Firing)]).unwrap();
        }
        let size = |n| {
            std::fs::metadata(dir.path().join(n))
                .map(|m| m.len())
                .unwrap_or(0)
        };
        assert!(size(ALERTS_FILE) < 600 + 400 && size(ALERTS_PREVIOUS) >= 600);
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(ALERTS_FILE))
            .unwrap()
            .write_all(b"{not json\n")
            .unwrap();
        let a = query(dir.path(), &HistoryQuery::default()).unwrap();
        assert!(
            !a.alerts.is_empty() && a.alerts.len() < 20,
            "older lines rotated away"
        );
        assert_eq!(a.damaged.len(), 1, "{:?}", a.damaged);
        assert!(a.damaged[0].contains("alerts.jsonl:"));
        // A second writer of the same directory reopens after the first rotated.
        let other = AlertHistory::with_max_bytes(dir.path(), 600);
        other
            .append(&[alert(100, "z", AlertStatus::Firing)])
            .unwrap();
        for i in 0..10 {
            h.append(&[alert(200 + i, "a", AlertStatus::Firing)])
                .unwrap();
        }
        other
            .append(&[alert(300, "y", AlertStatus::Firing)])
            .unwrap();
        let newest = query(
            dir.path(),
            &HistoryQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            newest.alerts[0].kind, "y",
            "written to the live file, not a rotated one"
        );
    }

    #[test]
    fn an_unwritable_directory_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"").unwrap();
        let h = AlertHistory::new(blocker.join("logs"));
        let e = h
            .append(&[alert(0, "a", AlertStatus::Firing)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("alerts.jsonl") && e.contains("METACLAUDE_LOG_DIR"),
            "{e}"
        );
    }

    #[test]
    fn a_link_in_the_log_directory_is_refused_by_the_writer_and_skipped_by_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let outside = dir.path().join("outside.jsonl");
        std::fs::create_dir(&logs).unwrap();
        std::fs::write(&outside, b"").unwrap();
        std::os::unix::fs::symlink("../outside.jsonl", logs.join(ALERTS_FILE)).unwrap();
        let h = AlertHistory::new(&logs);
        let e = h
            .append(&[alert(0, "a", AlertStatus::Firing)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("alerts.jsonl is a symbolic link (to ../outside.jsonl)")
                && e.contains("plugin"),
            "{e}"
        );
        assert_eq!(
            std::fs::read(&outside).unwrap(),
            b"",
            "nothing written outside"
        );
        let a = query(&logs, &HistoryQuery::default()).unwrap();
        assert!(a.alerts.is_empty());
        assert!(
            a.damaged.len() == 1 && a.damaged[0].contains("symbolic link"),
            "{:?}",
            a.damaged
        );
    }

    #[test]
    fn the_directory_and_the_files_are_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let h = AlertHistory::with_max_bytes(&logs, 1000);
        for i in 0..100 {
            if logs.join(ALERTS_FILE).exists() && logs.join(ALERTS_PREVIOUS).exists() {
                break;
            }
            h.append(&[alert(i, "a", AlertStatus::Firing)]).unwrap();
        }
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(logs.clone()), 0o700);
        assert_eq!(mode(logs.join(ALERTS_FILE)), 0o600);
        assert_eq!(mode(logs.join(ALERTS_PREVIOUS)), 0o600, "rotated");
    }
}
