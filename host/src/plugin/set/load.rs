//! Loading one plugin folder: its manifest, its component (compiled or from the cache)
//! or native library, the checks of its WIT version and exports, its first instance
//! (`init`), and its worker thread.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::plugin::delivery::health::PluginStats;
use crate::plugin::delivery::worker::Worker;
use crate::plugin::delivery::{Mailbox, Room};
use crate::plugin::grants::admission::{admit, Admission};
use crate::plugin::grants::Grants;
use crate::plugin::manifest::{self, Artifact, Manifest, ManifestError, PluginKind, WitVersion};
use crate::plugin::runtime::engine::LoadSource;
use crate::plugin::runtime::instance::{self, CallError, Prepared};
use crate::plugin::runtime::native::{NativeCode, NativeLibrary};
use crate::plugin::runtime::{Live, Runtime};
use crate::plugin::set::folders::Fingerprint;
use crate::plugin::set::{LoadedPlugin, PluginHost, WorkerThread};
use crate::plugin::PluginError;

/// Runs `f` on a thread of its own when called on a tokio runtime's thread (a library
/// user's `#[tokio::main]`): a plugin's first instance runs `init` here, and WASI's
/// blocking host calls (opening its files) drive a runtime of their own, which tokio
/// refuses inside another. Off a runtime, `f` runs right here.
fn outside_async<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

impl PluginHost {
    /// Reads `folder` (its fingerprint, its manifest, the grants) and starts its plugin.
    pub(super) fn start_plugin(
        &self,
        folder: &Path,
        taken: &[(String, PathBuf)],
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        self.start_read_plugin(folder, taken, FolderRead::of(folder, self), None)
    }

    /// Starts the plugin of `folder` from what a load already read of it, and `grants`,
    /// the grants of its directory as the load read them (read here when `None`).
    pub(super) fn start_read_plugin(
        &self,
        folder: &Path,
        taken: &[(String, PathBuf)],
        read: FolderRead,
        grants: Option<&Grants>,
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        let FolderRead {
            fingerprint,
            manifest,
        } = read;
        let result = outside_async(|| {
            self.start_plugin_with(folder, fingerprint.clone(), manifest, grants, taken)
        });
        let mut failed = self.failed.lock().unwrap();
        match &result {
            Ok(_) => {
                failed.remove(folder);
            }
            Err(e) => {
                let blocker = match e {
                    PluginError::DuplicateName { other, .. } => Some(other.clone()),
                    _ => None,
                };
                failed.insert(folder.to_path_buf(), (fingerprint, blocker));
            }
        }
        result
    }

    fn start_plugin_with(
        &self,
        folder: &Path,
        fingerprint: Fingerprint,
        manifest: Result<Manifest, ManifestError>,
        grants: Option<&Grants>,
        taken: &[(String, PathBuf)],
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        let manifest = manifest?;
        if let Some((_, other)) = taken
            .iter()
            .find(|(name, f)| *name == manifest.name && f != folder)
        {
            return Err(PluginError::DuplicateName {
                name: manifest.name.clone(),
                file: manifest.file.clone(),
                other: other.clone(),
            });
        }
        // Nothing of the plugin runs (nor is its native library loaded) unless the
        // operator granted everything it asks for.
        let admission = match grants {
            Some(all) => admit(manifest, all, &|n| self.env_value(n))?,
            None => self.admit(manifest)?,
        };
        if !admission.granted() {
            return Err(admission.refusal());
        }
        let Admission {
            manifest, native, ..
        } = admission;
        let native_sha256 = native.as_ref().map(|n| n.sha256.clone());
        let stats = PluginStats::new();
        let Started {
            instance,
            runtime,
            load,
            load_time,
            wit,
            notes,
        } = self.prepare(&manifest, native.as_ref(), &stats)?;
        let name: Arc<str> = Arc::from(manifest.name.as_str());
        let manifest = Arc::new(manifest);
        let queue_len = self.queue_len(&manifest);
        let (tx, rx) = sync_channel(queue_len);
        let room = Arc::new(Room::new(queue_len));
        let worker = Worker {
            name: name.clone(),
            manifest: manifest.clone(),
            runtime,
            instance: Some(instance),
            stats: stats.clone(),
            router: self.router.clone(),
            room: room.clone(),
        };
        let (done, ended) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name(format!("plugin-{name}"))
            .spawn(move || {
                let process_exiting = worker.run(rx);
                let _ = done.send(());
                if process_exiting {
                    // A thread that ends gives its stack back (an madvise, with a TLB
                    // flush on every core the process runs on); the exit that follows
                    // takes a parked one with the rest, for nothing.
                    loop {
                        std::thread::park();
                    }
                }
            })
            .map_err(|e| PluginError::Start {
                name: name.to_string(),
                message: e.to_string(),
            })?;
        let mailbox = Arc::new(Mailbox::new(
            tx,
            thread.thread().clone(),
            stats.clone(),
            room,
            manifest.limits.batch_max,
            manifest.limits.queue,
        ));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if manifest.kind == PluginKind::Notifier {
            self.router
                .add(id, mailbox.clone(), manifest.alerts.clone());
        }
        if matches!(manifest.artifact, Artifact::Native(_)) {
            tracing::warn!(plugin = %name, "loaded a trusted native plugin: it runs unsandboxed, without memory or time limits");
        }
        tracing::info!(plugin = %name, kind = %manifest.kind, ?load, ms = load_time.as_millis() as u64, "plugin loaded");
        Ok(Arc::new(LoadedPlugin {
            id,
            folder: folder.to_path_buf(),
            fingerprint,
            manifest,
            mailbox,
            stats,
            thread: Mutex::new(Some(WorkerThread {
                handle: thread,
                ended,
            })),
            load,
            load_time,
            wit,
            notes,
            native_sha256,
        }))
    }

    /// Compiles (or loads from cache), links, checks the exports and runs `init`; for a
    /// native plugin, loads the library (the bytes admission read and the operator
    /// granted), checks its ABI and entries, and runs `init`.
    fn prepare(
        &self,
        manifest: &Manifest,
        native: Option<&NativeCode>,
        stats: &PluginStats,
    ) -> Result<Started, PluginError> {
        let started = Instant::now();
        let name: Arc<str> = Arc::from(manifest.name.as_str());
        if let Some(code) = native {
            let library = NativeLibrary::load(code, artifact_path(manifest), manifest.kind)
                .map_err(|source| PluginError::Native {
                    name: manifest.name.clone(),
                    file: manifest.file.clone(),
                    source,
                })?;
            let runtime = Runtime::Native(library);
            let instance = runtime
                .start(manifest, name, stats)
                .map_err(|e| start_error(manifest, e))?;
            return Ok(Started {
                instance,
                runtime,
                load: LoadSource::Native,
                load_time: started.elapsed(),
                wit: None,
                notes: Vec::new(),
            });
        }
        let Compiled {
            prepared,
            load,
            version,
            notes,
        } = self.compile(manifest)?;
        let runtime = Runtime::Wasm {
            engine: self.engine.engine().clone(),
            prepared,
        };
        let instance = runtime
            .start(manifest, name, stats)
            .map_err(|e| start_error(manifest, e))?;
        Ok(Started {
            instance,
            runtime,
            load,
            load_time: started.elapsed(),
            wit: Some(version),
            notes,
        })
    }

    /// A component compiled (or loaded from cache), linked and its exports checked,
    /// without running any of it.
    fn compile(&self, manifest: &Manifest) -> Result<Compiled, PluginError> {
        let path = artifact_path(manifest);
        let (component, load) = self
            .engine
            .load(path)
            .map_err(|source| PluginError::Engine {
                name: manifest.name.clone(),
                source,
            })?;
        let notes = grant_notes(self.engine.engine(), &component, manifest);
        for n in &notes {
            tracing::warn!(plugin = %manifest.name, "{n}");
        }
        let version = check_component_wit(self.engine.engine(), &component).map_err(|message| {
            PluginError::WitVersion {
                name: manifest.name.clone(),
                component: path.to_path_buf(),
                message,
            }
        })?;
        let linker = self.linker(manifest.kind).map_err(|e| PluginError::Start {
            name: manifest.name.clone(),
            message: format!("{e:#}"),
        })?;
        let wrong_exports = |message: String| PluginError::WrongExports {
            name: manifest.name.clone(),
            file: manifest.file.clone(),
            kind: manifest.kind,
            message,
        };
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| wrong_exports(format!("{e:#}")))?;
        let prepared = Prepared::new(manifest.kind, version, pre)
            .map_err(|e| wrong_exports(format!("{e:#}")))?;
        Ok(Compiled {
            prepared,
            load,
            version,
            notes,
        })
    }

    /// Checks a WebAssembly plugin as far as can be done without running any of it
    /// (`plugins check` of a plugin not granted yet): compiles it, links it, checks its
    /// WIT version and exports. Returns how its code was obtained, its WIT version and
    /// the notes a load would give.
    pub fn validate_component(
        &self,
        manifest: &Manifest,
    ) -> Result<(LoadSource, WitVersion, Vec<String>), PluginError> {
        let c = self.compile(manifest)?;
        Ok((c.load, c.version, c.notes))
    }

    fn linker(
        &self,
        kind: PluginKind,
    ) -> wasmtime::Result<Arc<wasmtime::component::Linker<instance::PluginState>>> {
        let mut linkers = self.linkers.lock().unwrap();
        if let Some(l) = linkers.get(kind.as_str()) {
            return Ok(l.clone());
        }
        let l = Arc::new(instance::linker(self.engine.engine(), kind)?);
        linkers.insert(kind.as_str(), l.clone());
        Ok(l)
    }
}

/// What a load reads of a plugin folder before it starts the plugin: read once, for the
/// load to choose the folders it starts and for the start itself.
pub(super) struct FolderRead {
    /// Taken before anything of the plugin starts, so that a change made while loading is
    /// seen by the next reload.
    pub(super) fingerprint: Fingerprint,
    /// The manifest, or why it cannot be used (reported when the folder is started).
    pub(super) manifest: Result<Manifest, ManifestError>,
}

impl FolderRead {
    /// Reads `folder`, its manifest with `host`'s variables.
    pub(super) fn of(folder: &Path, host: &PluginHost) -> FolderRead {
        Self::of_wanted(folder, host, |_| true).expect("every manifest is wanted")
    }

    /// [`FolderRead::of`] when `wanted` wants the folder's manifest (or it does not parse:
    /// its start reports why); `None`, and the folder's files left unlisted, otherwise.
    pub(super) fn of_wanted(
        folder: &Path,
        host: &PluginHost,
        wanted: impl Fn(&Manifest) -> bool,
    ) -> Option<FolderRead> {
        // `plugin.toml` read once, for the manifest and the fingerprint alike; the
        // fingerprint still comes before anything of the plugin is started.
        let read = std::fs::read(folder.join("plugin.toml"));
        let bytes = read.as_ref().map_or_else(|_| Vec::new(), Clone::clone);
        let manifest = Manifest::from_read(folder, read, &|n| host.env_value(n));
        if manifest.as_ref().is_ok_and(|m| !wanted(m)) {
            return None;
        }
        Some(FolderRead {
            fingerprint: Fingerprint::with_manifest(folder, bytes),
            manifest,
        })
    }
}

/// The file of a plugin's code.
fn artifact_path(manifest: &Manifest) -> &Path {
    match &manifest.artifact {
        Artifact::Component(p) | Artifact::Native(p) => p,
    }
}

/// A component ready to instantiate, and what is known of it.
struct Compiled {
    prepared: Prepared,
    load: LoadSource,
    version: WitVersion,
    notes: Vec<String>,
}

/// A plugin made ready to run, and what is known of it.
struct Started {
    instance: Live,
    runtime: Runtime,
    load: LoadSource,
    load_time: Duration,
    wit: Option<WitVersion>,
    notes: Vec<String>,
}

/// What a newcomer likely got wrong that still loads: the component imports the `http`
/// interface but the manifest grants no destination (every post will be refused), or the
/// manifest's `wit` is not the version the component was built against.
fn grant_notes(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
    manifest: &Manifest,
) -> Vec<String> {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let mut notes = Vec::new();
    if manifest.capabilities.http.is_empty()
        && imports
            .iter()
            .any(|n| n.starts_with("metaclaude:monitor/http@"))
    {
        notes.push(
            "the component imports `http` but capabilities.http grants no destination: every post it makes will be refused; grant the URLs it posts to, e.g. capabilities.http = [\"https://hooks.example.com/*\"]".to_string(),
        );
    }
    let built = imports
        .iter()
        .filter_map(|n| n.strip_prefix("metaclaude:monitor/"))
        .filter_map(|n| n.split_once('@'))
        .find_map(|(_, v)| WitVersion::compatible(v).ok());
    if let (Some(built), Ok(declared)) = (built, WitVersion::compatible(&manifest.wit)) {
        if built != declared {
            notes.push(format!(
                "the manifest says wit = \"{}\" but the component was built against {}: set wit = \"{}\"",
                manifest.wit,
                built.as_str(),
                built.as_str()
            ));
        }
    }
    notes
}

/// The `metaclaude:monitor` version the component was actually built against (the
/// version in the names of the interfaces it imports), whatever its manifest declares:
/// one this host does not implement is refused with the versions named, rather than
/// with the linker's "import not found"; a component that mixes versions too.
fn check_component_wit(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Result<WitVersion, String> {
    let ty = component.component_type();
    let mut found: Option<(WitVersion, String)> = None;
    for (name, _) in ty.imports(engine) {
        let Some(rest) = name.strip_prefix("metaclaude:monitor/") else {
            continue;
        };
        let Some((_, version)) = rest.split_once('@') else {
            return Err(format!(
                "the component imports `{name}` without a version: rebuild it against wit/ of this host (metaclaude:monitor@{})",
                manifest::WIT_VERSION
            ));
        };
        let v = WitVersion::compatible(version).map_err(|e| e.to_string())?;
        match &found {
            Some((other, first)) if *other != v => {
                return Err(format!(
                    "the component imports both `{first}` and `{name}`: build it against one version of metaclaude:monitor"
                ))
            }
            Some(_) => {}
            None => found = Some((v, name.to_string())),
        }
    }
    // A component that imports nothing of ours (no log, no clock) exports the current
    // world or none: the export check says which.
    Ok(found.map_or(WitVersion::CURRENT, |(v, _)| v))
}

/// The first instance's failure: a refusal is `init` rejecting the config.
fn start_error(manifest: &Manifest, e: CallError) -> PluginError {
    match e {
        CallError::Refused(message) => PluginError::ConfigRejected {
            name: manifest.name.clone(),
            file: manifest.file.clone(),
            message,
        },
        CallError::Trap(message) => PluginError::Start {
            name: manifest.name.clone(),
            message,
        },
    }
}
