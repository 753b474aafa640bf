//! Keeping the compiled-component cache from growing without end. Every new build of a
//! plugin, and every new build of the host (another engine, another key), leaves compiled
//! code that nothing loads any more: tens of megabytes for an interpreter's component.
//!
//! * A cache entry is dated by its modification time, moved forward when it is loaded (at
//!   most once a day, one `futimens`): its date is when it was last used.
//! * At most once a day (a marker file's date says when it last ran), an engine on the
//!   cache removes the entries and index records not used for [`UNUSED_FOR`], and the
//!   half-written files a crash left. Only regular files with the cache's own names are
//!   removed; anything else (a link, a folder, a file of another name) is left alone. Another
//!   host loading an entry being removed keeps its mapping; the next load compiles again.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// An entry unused this long is removed.
pub const UNUSED_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// The cache is looked over at most this often; an entry's date moves at most this often.
const EVERY: Duration = Duration::from_secs(24 * 3600);
/// The file whose date says when the cache was last looked over.
const MARKER: &str = "last-pruned";

/// Whether `meta` says the file was last modified more than `age` before `now`.
fn older_than(meta: &std::fs::Metadata, age: Duration, now: SystemTime) -> bool {
    meta.modified()
        .is_ok_and(|m| now.duration_since(m).is_ok_and(|a| a > age))
}

/// Notes that the cache entry `file` was used now (when its date is more than a day old).
pub fn used(file: &Path, now: SystemTime) {
    let Ok(meta) = std::fs::symlink_metadata(file) else {
        return;
    };
    if older_than(&meta, EVERY, now) && meta.file_type().is_file() {
        if let Err(e) = std::fs::File::open(file).and_then(|f| f.set_modified(now)) {
            tracing::debug!(file = %file.display(), "cannot date the cache entry: {e}");
        }
    }
}

/// What one look over the cache removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Entries of compiled code.
    pub entries: usize,
    /// Records of the index (`by-stat/`) and half-written files.
    pub other: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Looks over the cache in `dir` when it was not looked over in the last day, removing
/// what was not used for [`UNUSED_FOR`] before `now`. `None` when it was not due.
pub fn prune_if_due(dir: &Path, now: SystemTime) -> Option<Pruned> {
    let marker = dir.join(MARKER);
    let due = match std::fs::symlink_metadata(&marker) {
        Ok(meta) => older_than(&meta, EVERY, now),
        Err(_) => true,
    };
    if !due {
        return None;
    }
    // Dated first, so that hosts starting together look over it once.
    if let Err(e) = crate::safe_fs::replace_file(&marker, b"", crate::safe_fs::Readers::Private)
        .and_then(|()| std::fs::File::open(&marker)?.set_modified(now))
    {
        tracing::debug!(file = %marker.display(), "cannot date the cache's look-over: {e}");
        return None;
    }
    let mut pruned = Pruned::default();
    let unused =
        |meta: &std::fs::Metadata| meta.file_type().is_file() && older_than(meta, UNUSED_FOR, now);
    remove_where(dir, &mut pruned, |name, meta| {
        (unused(meta) && (name.ends_with(".cwasm") || name.ends_with(".tmp")))
            .then_some(name.ends_with(".cwasm"))
    });
    remove_where(&dir.join("by-stat"), &mut pruned, |name, meta| {
        (unused(meta) && name.len() >= 32).then_some(false)
    });
    if pruned != Pruned::default() {
        tracing::info!(
            dir = %dir.display(),
            "removed {} compiled components and {} other files not used for {} days ({} MiB)",
            pruned.entries,
            pruned.other,
            UNUSED_FOR.as_secs() / 86_400,
            pruned.bytes >> 20
        );
    }
    Some(pruned)
}

/// Removes the files of `dir` that `which` picks (`Some(true)`: an entry of compiled code,
/// `Some(false)`: another file), never following a link.
fn remove_where(
    dir: &Path,
    pruned: &mut Pruned,
    which: impl Fn(&str, &std::fs::Metadata) -> Option<bool>,
) {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in listing.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        // `DirEntry::metadata` does not follow a link.
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let Some(compiled) = which(name, &meta) else {
            continue;
        };
        if std::fs::remove_file(entry.path()).is_ok() {
            pruned.bytes += meta.len();
            match compiled {
                true => pruned.entries += 1,
                false => pruned.other += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dated(file: &Path, at: SystemTime) {
        std::fs::File::open(file).unwrap().set_modified(at).unwrap();
    }

    fn days(n: u64) -> Duration {
        Duration::from_secs(n * 86_400)
    }

    /// Entries and index records unused for 30 days go, with half-written files; what was
    /// used lately, other names, links and their targets stay; then not again for a day.
    #[test]
    fn what_was_not_used_for_thirty_days_is_removed_once_a_day() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("components");
        std::fs::create_dir_all(dir.join("by-stat")).unwrap();
        let now = SystemTime::now();
        let file = |name: &str, age: u64| {
            let path = dir.join(name);
            std::fs::write(&path, b"code").unwrap();
            dated(&path, now - days(age));
            path
        };
        let old = file("aa-1.cwasm", 31);
        let recent = file("bb-1.cwasm", 29);
        let half_written = file(".aa-1.cwasm.123.tmp", 31);
        let other = file("notes.txt", 400);
        let old_record = file(&format!("by-stat/{}", "c".repeat(32)), 31);
        let new_record = file(&format!("by-stat/{}", "d".repeat(32)), 1);
        let outside = tmp.path().join("outside.cwasm");
        std::fs::write(&outside, b"not ours").unwrap();
        dated(&outside, now - days(100));
        std::os::unix::fs::symlink(&outside, dir.join("ee-1.cwasm")).unwrap();

        let pruned = prune_if_due(&dir, now).expect("due: never looked over");
        assert_eq!((pruned.entries, pruned.other), (1, 2), "{pruned:?}");
        for gone in [&old, &half_written, &old_record] {
            assert!(!gone.exists(), "{} removed", gone.display());
        }
        for kept in [&recent, &other, &new_record, &outside] {
            assert!(kept.exists(), "{} kept", kept.display());
        }
        assert!(
            dir.join("ee-1.cwasm").symlink_metadata().is_ok(),
            "a link is left alone"
        );
        assert_eq!(
            prune_if_due(&dir, now + days(1) / 2),
            None,
            "not again within a day"
        );
        dated(&recent, now - days(40));
        assert_eq!(
            prune_if_due(&dir, now + days(2)).map(|p| p.entries),
            Some(1),
            "due again a day later"
        );
    }

    /// Loading an entry dates it now, at most once a day.
    #[test]
    fn a_used_entry_is_dated_when_it_was_used() {
        let tmp = tempfile::tempdir().unwrap();
        let entry = tmp.path().join("aa-1.cwasm");
        std::fs::write(&entry, b"code").unwrap();
        let now = SystemTime::now();
        let modified = || std::fs::metadata(&entry).unwrap().modified().unwrap();
        dated(&entry, now - days(20));
        used(&entry, now);
        assert_eq!(modified(), now);
        let lately = now - Duration::from_secs(3600);
        dated(&entry, lately);
        used(&entry, now);
        assert_eq!(modified(), lately, "not moved within a day");
    }
}
