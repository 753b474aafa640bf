//! Hot reload: bring the loaded set in line with the plugin folders of a directory, once
//! ([`PluginHost::reload_dir`]) or on a watch ([`PluginHost::watch`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::plugin::set::folders::{plugin_folders, Fingerprint};
use crate::plugin::set::{names, stop_all, PluginHost};
use crate::plugin::PluginError;

/// What a [`PluginHost::reload_dir`] changed, by plugin name.
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// New folders, now loaded.
    pub added: Vec<String>,
    /// Replaced by the new version of their folder.
    pub changed: Vec<String>,
    /// Folders gone (or no longer plugin folders): stopped, every event offered first.
    pub removed: Vec<String>,
    /// Stopped because the operator's grant no longer covers what they ask for.
    pub revoked: Vec<String>,
    /// Folders that could not be loaded; a changed plugin whose new version fails keeps
    /// running in its old version. The same failing content is reported once.
    pub errors: Vec<PluginError>,
}

impl ReloadReport {
    /// Whether the pass changed nothing and found no error.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.changed.is_empty()
            && self.removed.is_empty()
            && self.revoked.is_empty()
            && self.errors.is_empty()
    }
}

/// What the watch saw of each folder on its previous pass: a new or changed folder is
/// loaded only once two passes in a row found the same files, so a folder still being
/// copied in is never loaded (nor reported broken) half-written.
pub type Settling = HashMap<PathBuf, Fingerprint>;

impl PluginHost {
    /// Brings the loaded set in line with the plugin folders now in `dir`, at once.
    pub fn reload_dir(&self, dir: &Path) -> Result<ReloadReport, PluginError> {
        self.reload_dir_with(dir, None)
    }

    /// [`PluginHost::reload_dir`], acting on a new or changed folder only once `settling`
    /// saw the same fingerprint on the previous pass.
    fn reload_dir_with(
        &self,
        dir: &Path,
        mut settling: Option<&mut Settling>,
    ) -> Result<ReloadReport, PluginError> {
        let _loading = self.loading.lock().unwrap();
        if self.closed.load(Ordering::Acquire) {
            return Ok(ReloadReport::default());
        }
        let folders = plugin_folders(dir)?;
        let current = self.current();
        let mut report = ReloadReport::default();
        let mut add = Vec::new();
        let mut remove = Vec::new();
        // The grants as they are now: when they changed, folders that failed are tried
        // again (a grant given), and loaded plugins are checked again (a grant revoked).
        let grants = self.grants_for(dir);
        let grants_changed = {
            let mut seen = self.grants_seen.lock().unwrap();
            let now = grants.as_ref().ok().cloned();
            let changed = *seen != now;
            *seen = now;
            changed
        };
        if grants_changed {
            self.failed.lock().unwrap().clear();
        }
        match &grants {
            // A grants file being edited may not parse for a moment: what runs keeps
            // running (a log sink stopped would lose records), and new folders wait.
            Err(e) if grants_changed => tracing::warn!("{e}; the plugins running keep running"),
            _ => {}
        }
        if let (true, Ok(g)) = (grants_changed, &grants) {
            for p in current.iter().filter(|p| folders.contains(&p.folder)) {
                if !self
                    .missing(g, &p.manifest, p.native_sha256.as_deref())
                    .is_empty()
                {
                    tracing::warn!(plugin = %p.manifest.name, "plugin stopped: its grant no longer covers what it asks for (run metaclaude plugins list)");
                    remove.push(p.id);
                    report.revoked.push(p.manifest.name.clone());
                }
            }
        }
        // Names held by plugins that stay (their folder is still there), and by those
        // loaded in this pass.
        let mut taken = names(current.iter().filter(|p| folders.contains(&p.folder)));
        for folder in &folders {
            let fingerprint = Fingerprint::of(folder);
            let existing = current
                .iter()
                .find(|p| &p.folder == folder)
                .filter(|p| !remove.contains(&p.id));
            let revoked = current
                .iter()
                .any(|p| &p.folder == folder && remove.contains(&p.id));
            if existing.is_some_and(|p| p.fingerprint == fingerprint) {
                continue;
            }
            if revoked {
                // Stopped for its grant; tried again when the grants or the folder change.
                self.failed
                    .lock()
                    .unwrap()
                    .insert(folder.clone(), (fingerprint, None));
                continue;
            }
            let known_failure =
                self.failed
                    .lock()
                    .unwrap()
                    .get(folder)
                    .is_some_and(|(failed, blocker)| {
                        *failed == fingerprint
                            && blocker
                                .as_ref()
                                .is_none_or(|b| taken.iter().any(|(_, f)| f == b))
                    });
            if known_failure {
                continue;
            }
            if let Some(seen) = settling.as_deref_mut() {
                if seen.get(folder) != Some(&fingerprint) {
                    // Still changing, or first seen: look again at the next pass.
                    seen.insert(folder.clone(), fingerprint);
                    continue;
                }
            }
            match self.start_plugin(folder, &taken) {
                Ok(plugin) => {
                    taken.push((plugin.manifest.name.clone(), plugin.folder.clone()));
                    match existing {
                        Some(old) => {
                            remove.push(old.id);
                            report.changed.push(plugin.manifest.name.clone());
                        }
                        None => report.added.push(plugin.manifest.name.clone()),
                    }
                    add.push(plugin);
                }
                Err(e) => report.errors.push(e),
            }
        }
        for p in current.iter().filter(|p| !folders.contains(&p.folder)) {
            remove.push(p.id);
            report.removed.push(p.manifest.name.clone());
        }
        self.failed
            .lock()
            .unwrap()
            .retain(|folder, _| folders.contains(folder));
        if let Some(seen) = settling {
            seen.retain(|folder, _| folders.contains(folder));
        }
        let removed = self.swap(add, &remove);
        stop_all(&removed, None, false);
        for (what, names) in [
            ("added", &report.added),
            ("reloaded", &report.changed),
            ("removed", &report.removed),
            ("stopped (grant revoked)", &report.revoked),
        ] {
            for name in names {
                tracing::info!(plugin = %name, "plugin {what}");
            }
        }
        Ok(report)
    }

    /// Applies [`PluginHost::reload_dir`] to `dir` every `every`, until the host is shut
    /// down or dropped: a long-running host picks up added, changed and removed plugin
    /// folders without a restart. Polling (not inotify) keeps it dependable on every file
    /// system. A new or changed folder is loaded once it stopped changing (two passes saw
    /// the same files), so a slow `cp -r` into the directory is loaded once, whole.
    /// `on_change` sees every pass that changed something or failed to load a folder.
    pub fn watch(
        self: &Arc<Self>,
        dir: PathBuf,
        every: Duration,
        mut on_change: impl FnMut(&ReloadReport) + Send + 'static,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let host = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("plugin-watch".into())
            .spawn(move || {
                let mut settling = Settling::new();
                loop {
                    std::thread::sleep(every);
                    let Some(host) = host.upgrade() else {
                        return;
                    };
                    if host.closed.load(Ordering::Acquire) {
                        return;
                    }
                    match host.reload_dir_with(&dir, Some(&mut settling)) {
                        Ok(report) if !report.is_empty() => on_change(&report),
                        Ok(_) => {}
                        Err(e) => tracing::warn!("{e}"),
                    }
                }
            })
    }
}
