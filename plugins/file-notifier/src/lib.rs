//! The file notifier: every alert as one JSON line (the alert JSON,
//! `metaclaude_formats::alerts::Alert::to_json`, the same the host writes to its alert
//! history) appended to a file in a directory the manifest grants.
//!
//! Each call's lines are written with one `write` and, with `sync`, synced to disk before
//! the call returns; a failure is returned as the call's error, and the host retries the
//! alerts later. A line cut short by a failed write is ended before the next call's, so
//! it never runs into a whole one. The file is opened for each call: a file moved away
//! (rotated) is started anew.

pub mod config;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use metaclaude_formats::alerts::Alert;

/// One JSON line per alert, each ending with a line break.
pub fn lines(alerts: &[Alert]) -> String {
    let mut out = String::with_capacity(alerts.len() * 512);
    for alert in alerts {
        alert.write_json(&mut out);
        out.push('\n');
    }
    out
}

/// Makes the file's directory and checks the file can be opened for appending: at `init`,
/// so a missing grant is a refused config, not a failing notification.
pub fn prepare(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "config.path: cannot create the directory {}: {e} (the manifest's [capabilities] dirs must grant it, mode = \"rw\")",
                dir.display()
            )
        })?;
    }
    open(path).map(drop).map_err(|e| {
        format!(
            "config.path: cannot open {} for appending: {e} (the manifest's [capabilities] dirs must grant its directory, mode = \"rw\")",
            path.display()
        )
    })
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
}

/// Appends `text` to the file at `path` in one write, ending a line a failed write left
/// unfinished first; with `sync`, syncs the file's data to disk.
pub fn append(path: &Path, text: &str, sync: bool) -> Result<(), String> {
    if text.is_empty() {
        return Ok(());
    }
    let failed = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
    let mut file = open(path).map_err(|e| failed("opening", e))?;
    let unfinished = ends_unfinished(&mut file).map_err(|e| failed("reading the end of", e))?;
    let mut bytes = Vec::with_capacity(text.len() + 1);
    if unfinished {
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(text.as_bytes());
    file.write_all(&bytes)
        .map_err(|e| failed("appending to", e))?;
    if sync {
        file.sync_data().map_err(|e| failed("syncing", e))?;
    }
    Ok(())
}

/// Whether the file is not empty and does not end with a line break.
fn ends_unfinished(file: &mut File) -> std::io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

#[cfg(feature = "plugin")]
mod plugin;

#[cfg(test)]
mod tests {
    use super::*;
    use metaclaude_notify::test_alerts::{firing, resolved};

    #[test]
    fn each_alert_is_its_json_on_a_line() {
        let alert = firing();
        let gone = resolved(&alert, alert.timestamp);
        let text = lines(&[alert.clone(), gone.clone()]);
        assert_eq!(text, format!("{}\n{}\n", alert.to_json(), gone.to_json()));
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["type"], "error_rate_high");
        }
        assert_eq!(lines(&[]), "");
    }

    #[test]
    fn calls_append_to_the_file_and_mend_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/er/alerts.jsonl");
        prepare(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let alert = firing();
        let text = lines(std::slice::from_ref(&alert));
        append(&path, &text, false).unwrap();
        append(&path, &text, true).unwrap();
        let one = alert.to_json();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{one}\n{one}\n")
        );
        // A write that failed half-way left a fragment: the next line starts on its own.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"timestamp\":\"20")
            .unwrap();
        append(&path, &lines(&[alert]), false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let last: Vec<&str> = text.lines().collect();
        assert_eq!(last.len(), 4);
        assert_eq!(last[2], "{\"timestamp\":\"20");
        assert_eq!(last[3], one);
    }

    #[test]
    fn failures_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, "not a directory").unwrap();
        let path = blocked.join("alerts.jsonl");
        let e = prepare(&path).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "config.path: cannot create the directory {}:",
                blocked.display()
            )) && e.ends_with("(the manifest's [capabilities] dirs must grant it, mode = \"rw\")"),
            "{e}"
        );
        let e = append(&path, "x\n", false).unwrap_err();
        assert!(
            e.starts_with(&format!("opening {}:", path.display())),
            "{e}"
        );
        let e = prepare(dir.path()).unwrap_err();
        assert!(e.contains("cannot open"), "{e}");
    }
}
