//! Silences, as Alertmanager has them: matchers (see [`super::matchers`]), a start, an end,
//! who made it and why. An alert that every matcher of a silence matches while the silence
//! is active (from `starts_at`, included, to `ends_at`, excluded) is not notified; the book
//! still records it, marked with the silence's id.
//!
//! * [`Silences`]: the set, pure (time passed in): add, expire early, list by state
//!   (active, pending, expired), which silences mute an alert. An expired silence is kept
//!   [`RETENTION`] after its end (Alertmanager's default), then forgotten.
//! * [`SilenceStore`]: the set of a host, kept in `silences.json` in the log directory
//!   (private, 0600, replaced atomically at every change, read back at start; a damaged file
//!   is an error naming it, never taken for an empty one). Whoever changes it (the API, the
//!   CLI) is heard by those watching it (the router).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::matchers::{self, Matcher, MatcherSpec};
use crate::model::{timestamp, Alert};
use crate::safe_fs::{self, Dir};

/// The file the silences are kept in, in the log directory.
pub const SILENCES_FILE: &str = "silences.json";
/// How long an expired silence is kept (and listed) after its end.
pub const RETENTION: Duration = Duration::from_secs(5 * 24 * 3600);
/// Silences active or pending at once, at most; more are refused.
pub const MAX_SILENCES: usize = 1000;
/// Expired silences kept at most (the most recently ended).
pub const MAX_EXPIRED: usize = 1000;
/// Matchers one silence has at most.
pub const MAX_MATCHERS: usize = 32;
/// The longest comment, or author, in characters.
pub const MAX_TEXT: usize = 4096;
/// Version of the file's format.
const FILE_VERSION: u32 = 1;

/// Where a silence is in its life at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Not started yet.
    Pending,
    /// Muting what it matches.
    Active,
    /// Over (its end passed, or it was expired early).
    Expired,
}

impl SilenceState {
    /// As serialised: `active`.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

/// One silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    /// Its id (a ULID: unique, sorts by creation).
    pub id: String,
    /// What it mutes: alerts every one of them matches.
    pub matchers: Vec<Matcher>,
    /// When it starts muting, UTC.
    #[serde(with = "timestamp")]
    pub starts_at: DateTime<Utc>,
    /// When it stops (excluded), UTC; set to the time it was expired early.
    #[serde(with = "timestamp")]
    pub ends_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was made, or last changed (expired early).
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl Silence {
    /// Its state at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// Whether it mutes `alert` at `now`: active, and every matcher matches.
    pub fn mutes(&self, alert: &Alert, now: DateTime<Utc>) -> bool {
        self.state(now) == SilenceState::Active && matchers::all_match(&self.matchers, alert)
    }
}

/// A silence to make, as the API's `POST /api/v1/silences` takes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// What it mutes (at least one, not all matching an empty label).
    pub matchers: Vec<MatcherSpec>,
    /// When it starts (now when missing or past).
    #[serde(default, with = "timestamp::option")]
    pub starts_at: Option<DateTime<Utc>>,
    /// When it ends: after its start and after now.
    #[serde(with = "timestamp")]
    pub ends_at: DateTime<Utc>,
    /// Who makes it (not empty).
    pub created_by: String,
    /// Why (not empty).
    pub comment: String,
}

/// Why a silence could not be made, found, expired, read or kept.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// The new silence breaks a rule: the field, and what to do.
    #[error("{field}: {message}")]
    Invalid {
        /// `matchers[1]`, `ends_at`, `comment` ...
        field: String,
        /// What is wrong, and how to fix it.
        message: String,
    },
    /// No silence has that id.
    #[error("no silence has the id {id:?} (`metaclaude alerts silences --all` lists them)")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The silence is over already.
    #[error("silence {id} is already expired (it ended {ends_at})")]
    AlreadyExpired {
        /// Its id.
        id: String,
        /// When it ended, as written in messages.
        ends_at: String,
    },
    /// [`MAX_SILENCES`] are active or pending.
    #[error("{MAX_SILENCES} silences are active or pending already: expire some first (`metaclaude alerts unsilence ID`)")]
    TooMany,
    /// The file is there but is not a silences file: nothing is taken from it.
    #[error("the silences file {path} is damaged: {why}. Fix it, or move it away to start with no silences (they are then lost)")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (the parser's words, with the line and column).
        why: String,
    },
    /// The file could not be read (a link planted there included).
    #[error("cannot read the silences file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error (or the link refused).
        source: std::io::Error,
    },
    /// The file could not be written: the change was not made.
    #[error("cannot write the silences file {path}: {source} (the change was not made; check the log directory, METACLAUDE_LOG_DIR)")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl SilenceError {
    /// Whether the caller asked for something wrong (rather than the store failing).
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            SilenceError::Invalid { .. }
                | SilenceError::NotFound { .. }
                | SilenceError::AlreadyExpired { .. }
                | SilenceError::TooMany
        )
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SilenceError {
    SilenceError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// A set of silences (see the module doc); pure: time comes in as an argument.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Silences {
    /// By id order (creation order).
    list: Vec<Silence>,
}

impl Silences {
    /// Validates `new` at `now` and adds it; returns it as kept (with its id).
    pub fn add(
        &mut self,
        new: NewSilence,
        id: String,
        now: DateTime<Utc>,
    ) -> Result<Silence, SilenceError> {
        let silence = validate(new, id, now)?;
        let live = self
            .list
            .iter()
            .filter(|s| s.state(now) != SilenceState::Expired)
            .count();
        if live >= MAX_SILENCES {
            return Err(SilenceError::TooMany);
        }
        self.list.push(silence.clone());
        self.forget_old(now);
        Ok(silence)
    }

    /// Ends silence `id` at `now` (a pending one never starts); returns it as it is now.
    pub fn expire(&mut self, id: &str, now: DateTime<Utc>) -> Result<Silence, SilenceError> {
        let s = self
            .list
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| SilenceError::NotFound { id: id.into() })?;
        match s.state(now) {
            SilenceState::Expired => Err(SilenceError::AlreadyExpired {
                id: id.into(),
                ends_at: timestamp::format(&s.ends_at),
            }),
            state => {
                if state == SilenceState::Pending {
                    s.starts_at = now;
                }
                s.ends_at = now;
                s.updated_at = now;
                Ok(s.clone())
            }
        }
    }

    /// Forgets expired silences ended more than [`RETENTION`] before `now`, and the
    /// oldest beyond [`MAX_EXPIRED`].
    pub fn forget_old(&mut self, now: DateTime<Utc>) {
        let retention = chrono::Duration::from_std(RETENTION).expect("small");
        self.list.retain(|s| s.ends_at + retention > now);
        let mut expired: Vec<(DateTime<Utc>, String)> = self
            .list
            .iter()
            .filter(|s| s.state(now) == SilenceState::Expired)
            .map(|s| (s.ends_at, s.id.clone()))
            .collect();
        if expired.len() > MAX_EXPIRED {
            expired.sort_unstable_by(|a, b| b.cmp(a));
            let dropped: std::collections::HashSet<String> =
                expired.drain(MAX_EXPIRED..).map(|(_, id)| id).collect();
            self.list.retain(|s| !dropped.contains(&s.id));
        }
    }

    /// The silences, in creation order, with their state at `now`; expired ones only
    /// when `expired`.
    pub fn list(&self, now: DateTime<Utc>, expired: bool) -> Vec<(Silence, SilenceState)> {
        self.list
            .iter()
            .map(|s| (s.clone(), s.state(now)))
            .filter(|(_, state)| expired || *state != SilenceState::Expired)
            .collect()
    }

    /// The silence `id`, if kept.
    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.list.iter().find(|s| s.id == id)
    }

    /// The ids of the silences muting `alert` at `now`, in creation order.
    pub fn matches(&self, alert: &Alert, now: DateTime<Utc>) -> Vec<String> {
        self.list
            .iter()
            .filter(|s| s.mutes(alert, now))
            .map(|s| s.id.clone())
            .collect()
    }

    /// The next time after `now` at which a silence starts or ends, if one will.
    pub fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.list
            .iter()
            .flat_map(|s| [s.starts_at, s.ends_at])
            .filter(|t| *t > now)
            .min()
    }

    /// How many are kept, whatever their state.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// `new` as a silence made at `now`, or the first rule it breaks.
fn validate(new: NewSilence, id: String, now: DateTime<Utc>) -> Result<Silence, SilenceError> {
    if new.matchers.is_empty() {
        return Err(invalid(
            "matchers",
            format!(
                "a silence needs at least one matcher, to say what it mutes; {}",
                matchers::SYNTAX
            ),
        ));
    }
    if new.matchers.len() > MAX_MATCHERS {
        return Err(invalid(
            "matchers",
            format!("{} matchers; at most {MAX_MATCHERS}", new.matchers.len()),
        ));
    }
    let mut list = Vec::with_capacity(new.matchers.len());
    for (i, spec) in new.matchers.into_iter().enumerate() {
        let m = Matcher::try_from(spec)
            .map_err(|e| invalid(format!("matchers[{i}]"), e.to_string()))?;
        list.push(m);
    }
    if list.iter().all(|m| m.matches_value("")) {
        let shown: Vec<String> = list.iter().map(Matcher::to_string).collect();
        return Err(invalid(
            "matchers",
            format!(
                "{} would match an alert that has none of these labels, so it would mute (nearly) everything: name something an alert must have, e.g. script=backup or type=~\"error_.*\"",
                shown.join(", ")
            ),
        ));
    }
    let starts_at = new.starts_at.unwrap_or(now).max(now);
    if new.ends_at <= starts_at {
        return Err(invalid(
            "ends_at",
            format!(
                "{} is not after the start ({}): a silence ends after it starts and after now",
                timestamp::format(&new.ends_at),
                timestamp::format(&starts_at)
            ),
        ));
    }
    for (field, text) in [("created_by", &new.created_by), ("comment", &new.comment)] {
        if text.trim().is_empty() {
            let why = if field == "comment" {
                "say why alerts are muted (a maintenance, a known incident ...), for whoever wonders later"
            } else {
                "say who makes the silence (the CLI's --author, $USER by default)"
            };
            return Err(invalid(field, format!("empty: {why}")));
        }
        let chars = text.chars().count();
        if chars > MAX_TEXT {
            return Err(invalid(
                field,
                format!("{chars} characters long; at most {MAX_TEXT}"),
            ));
        }
    }
    Ok(Silence {
        id,
        matchers: list,
        starts_at,
        ends_at: new.ends_at,
        created_by: new.created_by.trim().to_string(),
        comment: new.comment.trim().to_string(),
        updated_at: now,
    })
}

/// The file's shape.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilencesFile {
    version: u32,
    silences: Vec<Silence>,
}

/// Called when the silences change (the router wakes).
pub type SilenceWatcher = Box<dyn Fn() + Send + Sync>;

/// The silences of a host, kept in [`SILENCES_FILE`] in its log directory (see the module
/// doc).
pub struct SilenceStore {
    dir: PathBuf,
    silences: Mutex<Silences>,
    /// Counts changes, so a reader can tell that it must look again.
    version: AtomicU64,
    watchers: Mutex<Vec<SilenceWatcher>>,
    ids: crate::ids::IdGenerator,
    /// The file as last read or written (to see another process change it), and whether
    /// that read failed (damaged).
    seen: Mutex<(Option<Stamp>, bool)>,
}

/// What tells a file's versions apart: inode, modification time, size.
type Stamp = (u64, i64, i64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.ino(), m.mtime(), m.mtime_nsec(), m.len()))
}

impl std::fmt::Debug for SilenceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SilenceStore")
            .field("dir", &self.dir)
            .field("silences", &self.silences.lock().unwrap().len())
            .finish()
    }
}

impl SilenceStore {
    /// The store of the log directory `dir`: what its file holds (nothing when there is no
    /// file yet); a damaged or unreadable file is an error.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Arc<SilenceStore>, SilenceError> {
        let dir = dir.into();
        let seen = stamp(&dir.join(SILENCES_FILE));
        let silences = read(&dir)?;
        Ok(Arc::new(SilenceStore {
            dir,
            silences: Mutex::new(silences),
            version: AtomicU64::new(0),
            watchers: Mutex::new(Vec::new()),
            ids: crate::ids::IdGenerator::default(),
            seen: Mutex::new((seen, false)),
        }))
    }

    /// Reads the file again if another process changed it since this store last read or
    /// wrote it (the CLI without a server); a damaged file leaves the silences as they
    /// were and is an error (once per change of the file).
    pub fn reload_if_changed(&self) -> Result<(), SilenceError> {
        let mut kept = self.silences.lock().unwrap();
        self.reload_locked(&mut kept, false)
    }

    /// [`SilenceStore::reload_if_changed`]; `strict`: a file found damaged before is an
    /// error again (a change is not written over it).
    fn reload_locked(&self, kept: &mut Silences, strict: bool) -> Result<(), SilenceError> {
        let now = stamp(&self.path());
        let mut seen = self.seen.lock().unwrap();
        if now == seen.0 && !(strict && seen.1) {
            return Ok(());
        }
        *seen = (now, true);
        let read = read(&self.dir)?;
        seen.1 = false;
        if read != *kept {
            *kept = read;
            self.version.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// The file, `silences.json` in the log directory.
    pub fn path(&self) -> PathBuf {
        self.dir.join(SILENCES_FILE)
    }

    /// Makes a silence at `now`; kept on disk before it is in force.
    pub fn add(&self, new: NewSilence, now: DateTime<Utc>) -> Result<Silence, SilenceError> {
        let id = self.ids.next();
        self.change(now, |s| s.add(new, id, now))
    }

    /// Ends silence `id` at `now`.
    pub fn expire(&self, id: &str, now: DateTime<Utc>) -> Result<Silence, SilenceError> {
        self.change(now, |s| s.expire(id, now))
    }

    /// A copy of the silences now.
    pub fn snapshot(&self) -> Silences {
        self.silences.lock().unwrap().clone()
    }

    /// Changes so far: a reader that saw another number looks again.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Calls `watcher` after every change from now on (it must be quick).
    pub fn watch(&self, watcher: SilenceWatcher) {
        self.watchers.lock().unwrap().push(watcher);
    }

    /// Applies `f` to a copy, writes the copy, and only then puts it in force.
    fn change<T>(
        &self,
        now: DateTime<Utc>,
        f: impl FnOnce(&mut Silences) -> Result<T, SilenceError>,
    ) -> Result<T, SilenceError> {
        let mut kept = self.silences.lock().unwrap();
        self.reload_locked(&mut kept, true)?;
        let mut next = kept.clone();
        let out = f(&mut next)?;
        next.forget_old(now);
        write(&self.dir, &next)?;
        *self.seen.lock().unwrap() = (stamp(&self.path()), false);
        *kept = next;
        self.version.fetch_add(1, Ordering::AcqRel);
        drop(kept);
        for w in self.watchers.lock().unwrap().iter() {
            w();
        }
        Ok(out)
    }
}

/// The silences kept in the log directory `dir` (none without a file).
pub fn read(dir: &Path) -> Result<Silences, SilenceError> {
    use std::io::Read;
    let path = dir.join(SILENCES_FILE);
    let mut text = String::new();
    let opened = Dir::open(dir).and_then(|d| d.open_read(SILENCES_FILE));
    match opened {
        Ok(mut f) => f
            .read_to_string(&mut text)
            .map_err(|source| SilenceError::Read {
                path: path.clone(),
                source,
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && safe_fs::refusal(&e).is_none() => {
            return Ok(Silences::default())
        }
        Err(source) => return Err(SilenceError::Read { path, source }),
    };
    let file: SilencesFile = serde_json::from_str(&text).map_err(|e| SilenceError::Damaged {
        path: path.clone(),
        why: e.to_string(),
    })?;
    if file.version != FILE_VERSION {
        return Err(SilenceError::Damaged {
            path,
            why: format!(
                "version {} is not one this host reads ({FILE_VERSION})",
                file.version
            ),
        });
    }
    Ok(Silences {
        list: file.silences,
    })
}

/// Replaces the file in `dir` with `silences`: written whole to a private temporary file
/// beside it, synced, then renamed over it.
fn write(dir: &Path, silences: &Silences) -> Result<(), SilenceError> {
    use std::io::Write;
    let path = dir.join(SILENCES_FILE);
    let err = |source| SilenceError::Write {
        path: path.clone(),
        source,
    };
    let file = SilencesFile {
        version: FILE_VERSION,
        silences: silences.list.clone(),
    };
    let mut text = serde_json::to_vec_pretty(&file).expect("silences serialise");
    text.push(b'\n');
    let d = Dir::create_private(dir).map_err(err)?;
    let tmp = format!(
        ".{SILENCES_FILE}.{}.{:x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    );
    let written = d.create_new(&tmp).and_then(|mut f| {
        f.write_all(&text)?;
        f.sync_all()
    });
    let renamed = written.and_then(|()| d.rename(&tmp, SILENCES_FILE));
    if let Err(e) = renamed {
        let _ = d.remove(&tmp);
        return Err(err(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
