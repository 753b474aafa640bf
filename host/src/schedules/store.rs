//! `schedules.json` in the log directory: each scheduled script's last slot decided and
//! last run, written (private, 0600, replaced at once) each time a slot is decided, read
//! when the server starts, so that the slots that came while it was down are counted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::book::Saved;
use crate::safe_fs::{self, Readers};

/// The file's name, in the log directory.
pub const FILE: &str = "schedules.json";
/// The format version written.
const VERSION: u64 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u64,
    scripts: BTreeMap<String, Saved>,
}

/// Why the saved schedules could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be read or written.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not what this host writes (damaged, or from another version).
    #[error(
        "{}: not a schedules file this host can read ({why}); the slots missed while the \
         server was down are not counted this time, and the file is written afresh",
        file.display()
    )]
    Damaged {
        /// The file.
        file: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

/// The file in `log_dir`.
pub fn path(log_dir: &Path) -> PathBuf {
    log_dir.join(FILE)
}

/// What `file` holds; nothing when it does not exist yet.
pub fn load(file: &Path) -> Result<BTreeMap<String, Saved>, StoreError> {
    let bytes = match safe_fs::open_read(file) {
        Ok(mut f) => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut bytes).map_err(|source| StoreError::Io {
                file: file.to_path_buf(),
                source,
            })?;
            bytes
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(StoreError::Io {
                file: file.to_path_buf(),
                source,
            })
        }
    };
    let damaged = |why: String| StoreError::Damaged {
        file: file.to_path_buf(),
        why,
    };
    let doc: Document = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
    if doc.version != VERSION {
        return Err(damaged(format!(
            "version {}, this host reads {VERSION}",
            doc.version
        )));
    }
    Ok(doc.scripts)
}

/// Replaces `file` with `scripts` (private to the user; a reader sees the old content or
/// the new, never a mix); the directory is made if missing.
pub fn save(file: &Path, scripts: &BTreeMap<String, Saved>) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        file: file.to_path_buf(),
        source,
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        safe_fs::create_private_dir(dir).map_err(io)?;
    }
    let doc = Document {
        version: VERSION,
        scripts: scripts.clone(),
    };
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("saved schedules serialise");
    bytes.push(b'\n');
    safe_fs::replace_file(file, &bytes, Readers::Private).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn saved_schedules_come_back_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(&dir.path().join("logs"));
        assert!(
            load(&file).unwrap().is_empty(),
            "no file yet: nothing saved"
        );
        let t = chrono::DateTime::parse_from_rfc3339("2024-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut scripts = BTreeMap::new();
        scripts.insert(
            "backup".to_string(),
            Saved {
                last_slot: t,
                last_run: None,
            },
        );
        save(&file, &scripts).unwrap();
        assert_eq!(load(&file).unwrap(), scripts);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// The log directory is the log sink's, which may plant links there: one at the
    /// file's name is never read through, and saving replaces it, never writes the
    /// file it points at.
    #[test]
    fn a_link_planted_at_the_files_name_is_neither_read_nor_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let outside = dir.path().join("outside.json");
        std::fs::write(&outside, "{\"version\": 1, \"scripts\": {}}").unwrap();
        std::os::unix::fs::symlink("../outside.json", path(&logs)).unwrap();
        let e = load(&path(&logs)).unwrap_err().to_string();
        assert!(e.contains(&path(&logs).display().to_string()), "{e}");
        save(&path(&logs), &BTreeMap::new()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&outside).unwrap(),
            "{\"version\": 1, \"scripts\": {}}",
            "the file the link pointed at is untouched"
        );
        assert!(!std::fs::symlink_metadata(path(&logs))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_damaged_file_is_named_and_says_what_happens() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path());
        std::fs::write(
            &file,
            "{\"version\": 1, \"scripts\": {\"a\": {\"last_slot\": 5}}}",
        )
        .unwrap();
        let e = load(&file).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: not a schedules file", file.display())),
            "{e}"
        );
        assert!(e.ends_with("the file is written afresh"), "{e}");
        std::fs::write(&file, "{\"version\": 9, \"scripts\": {}}").unwrap();
        assert!(load(&file)
            .unwrap_err()
            .to_string()
            .contains("version 9, this host reads 1"));
    }
}
