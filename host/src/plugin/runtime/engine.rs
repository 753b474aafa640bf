//! The one wasmtime `Engine` of the host, its epoch ticker, and the on-disk cache of
//! compiled components.
//!
//! * Epoch interruption bounds every call into a plugin: a ticker thread advances the
//!   engine's epoch every [`EPOCH_TICK`]; a call is given `call_timeout_ms / EPOCH_TICK`
//!   ticks and traps past them. The ticker holds only `engine.weak()`, so it ends when the
//!   engine is dropped.
//! * Compiling a component is slow (seconds for a Python one), so compiled code is cached
//!   on disk under a key made of the component's SHA-256 and the engine's compatibility
//!   hash: a restart, or a second plugin with the same component, never recompiles.
//! * Hashing the component costs more than loading its compiled code (a third of a
//!   millisecond for a 300 KiB one, in every `metaclaude run`), so an index beside the
//!   cache (`by-stat/`) remembers the hash of a file by its path, device, inode, size and
//!   modification and change times, for files that had settled when they were hashed.
//! * Compiled code is loaded as native code, so the cache is used only while its folder
//!   (and `by-stat/`) and each file are the current user's and writable by nobody else
//!   ([`crate::safe_fs::untrusted`]); otherwise components are compiled at every load and
//!   the host says once why and how to fix it. The folder is created 0700, files 0600.
//! * What was not used for 30 days is removed, at most once a day (`cache_pruning`).

use std::fs::Metadata;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use super::cache_pruning;

/// How often the epoch advances; per-call deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Why the engine could not start or a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// wasmtime refused the configuration, or the epoch thread could not start (the
    /// reason).
    #[error("cannot create the WebAssembly engine: {0}")]
    Create(String),
    /// The component file could not be read.
    #[error("cannot read component {}: {source}", path.display())]
    Read {
        /// The component file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a component wasmtime can compile (not WebAssembly, a core module
    /// rather than a component, or refused by the validator).
    #[error("{} is not a valid WebAssembly component: {message}", path.display())]
    Invalid {
        /// The component file.
        path: PathBuf,
        /// wasmtime's reason.
        message: String,
    },
}

/// Where a plugin's code came from, for `plugins list` and the load benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// A component compiled now.
    Compiled,
    /// A component's compiled code read from the on-disk cache.
    Cache,
    /// A trusted native library, loaded as it is (nothing to compile).
    Native,
}

/// The one wasmtime `Engine` of a host (epoch interruption on, ticked every
/// [`EPOCH_TICK`]) and its cache of compiled components.
pub struct PluginEngine {
    engine: Engine,
    cache_dir: Option<PathBuf>,
    engine_key: String,
}

impl PluginEngine {
    /// `cache_dir`: where compiled components are kept (`None` disables the cache).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<PluginEngine, EngineError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // A trap captures the guest's stack and memory so that, when the manifest asks for
        // it, the host can write a core dump for the plugin's author.
        config.coredump_on_trap(true);
        config.parallel_compilation(true);
        // `METACLAUDE_WASM_PERFMAP=1`: plugins' compiled functions are named in
        // /tmp/perf-PID.map, so that `perf report` shows where their time goes.
        if std::env::var_os("METACLAUDE_WASM_PERFMAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| EngineError::Create(e.to_string()))?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("metaclaude-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            })
            .map_err(|e| EngineError::Create(e.to_string()))?;
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        let engine_key = format!("{:016x}", hasher.finish());
        let cache_dir = cache_dir.filter(|d| trusted_cache_dir(d));
        if let Some(dir) = &cache_dir {
            cache_pruning::prune_if_due(dir, SystemTime::now());
        }
        Ok(PluginEngine {
            engine,
            cache_dir,
            engine_key,
        })
    }

    /// The wasmtime engine every plugin's store is made on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The default cache folder: `$METACLAUDE_CACHE_DIR`, else `$XDG_CACHE_HOME/metaclaude`,
    /// else `~/.cache/metaclaude`, each with `components/` below it.
    pub fn default_cache_dir() -> Option<PathBuf> {
        let base = std::env::var_os("METACLAUDE_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("metaclaude"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/metaclaude"))
            })?;
        Some(base.join("components"))
    }

    /// Loads a component, from the cache when it holds this exact component for this
    /// exact engine, else by compiling it (and filling the cache).
    pub fn load(&self, path: &Path) -> Result<(Component, LoadSource), EngineError> {
        let read_error = |source| EngineError::Read {
            path: path.to_path_buf(),
            source,
        };
        let seen = std::fs::metadata(path).map_err(read_error)?;
        // A file the index saw settled, unchanged since: no need to read and hash it.
        if let Some(key) = self.remembered_key(path, &seen) {
            if let Some(component) = self.cached(&key) {
                return Ok((component, LoadSource::Cache));
            }
        }
        let bytes = std::fs::read(path).map_err(read_error)?;
        if !bytes.starts_with(b"\0asm") {
            return Err(EngineError::Invalid {
                path: path.to_path_buf(),
                message: "not a WebAssembly file (it does not start with \\0asm): build the plugin for wasm32-wasip2 and point `component` at the .wasm".into(),
            });
        }
        if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
            return Err(EngineError::Invalid {
                path: path.to_path_buf(),
                message: "a core WebAssembly module, not a component: build for wasm32-wasip2, or wrap it with `wasm-tools component new`".into(),
            });
        }
        let key = hex(&Sha256::digest(&bytes));
        if let Some(component) = self.cached(&key) {
            self.remember_key(path, &seen, &key);
            return Ok((component, LoadSource::Cache));
        }
        let invalid = |e: wasmtime::Error| EngineError::Invalid {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        };
        let compiled = self.engine.precompile_component(&bytes).map_err(invalid)?;
        if let Some(file) = self.cache_file(&key) {
            match write_atomically(&file, &compiled) {
                Ok(()) => self.remember_key(path, &seen, &key),
                Err(e) => {
                    tracing::warn!(file = %file.display(), "cannot cache the compiled component: {e}")
                }
            }
        }
        // SAFETY: `compiled` was produced just now by this engine.
        let component =
            unsafe { Component::deserialize(&self.engine, &compiled) }.map_err(invalid)?;
        Ok((component, LoadSource::Compiled))
    }

    fn cache_file(&self, key: &str) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        Some(dir.join(format!("{key}-{}.cwasm", self.engine_key)))
    }

    /// The cached compiled code of the component whose SHA-256 is `key`, if usable: a
    /// regular file of the current user's that nobody else may write.
    fn cached(&self, key: &str) -> Option<Component> {
        let file = self.cache_file(key)?;
        let meta = std::fs::symlink_metadata(&file).ok()?;
        if !meta.file_type().is_file() {
            tracing::warn!(file = %file.display(), "ignoring a cache entry that is not a regular file (a link?); remove it");
            return None;
        }
        if let Some(why) = crate::safe_fs::untrusted_meta(&meta) {
            tracing::warn!(file = %file.display(), "ignoring a cache entry of compiled code: {why}, so someone else may have written it; remove it, or fix it with `{}`", why.fix(&file));
            return None;
        }
        // SAFETY: the file was written by `Engine::precompile_component` of an engine
        // with the same compatibility hash, into our own cache folder.
        match unsafe { Component::deserialize_file(&self.engine, &file) } {
            Ok(c) => {
                cache_pruning::used(&file, SystemTime::now());
                Some(c)
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), "ignoring an unusable cache entry: {e}");
                None
            }
        }
    }

    /// Where the index keeps the SHA-256 of the file at `path` as `meta` describes it.
    fn index_entry(&self, path: &Path, meta: &Metadata) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let name = hex(&Sha256::digest(identity(path, meta)));
        Some(dir.join("by-stat").join(&name[..32]))
    }

    fn remembered_key(&self, path: &Path, meta: &Metadata) -> Option<String> {
        let text = std::fs::read_to_string(self.index_entry(path, meta)?).ok()?;
        let key = text.trim();
        (key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())).then(|| key.to_string())
    }

    /// Notes that the file at `path`, as `seen` before it was read, holds the component
    /// `key`: only once the file has settled (changed more than [`SETTLED`] ago) and only
    /// if it did not change while it was read, so that any later change, which gives it a
    /// later change time, is a new index entry (the way git trusts its index's stat data).
    fn remember_key(&self, path: &Path, seen: &Metadata, key: &str) {
        let unchanged =
            std::fs::metadata(path).is_ok_and(|now| identity(path, &now) == identity(path, seen));
        if !unchanged || !settled(seen, SystemTime::now()) {
            return;
        }
        if let Some(entry) = self.index_entry(path, seen) {
            if let Err(e) = write_atomically(&entry, key.as_bytes()) {
                tracing::debug!(file = %entry.display(), "cannot index the component: {e}");
            }
        }
    }
}

/// What the index knows a file by: its path, device, inode, size, and modification and
/// change times.
fn identity(path: &Path, meta: &Metadata) -> String {
    format!(
        "{}\0{}\0{}\0{}\0{}.{}\0{}.{}",
        path.display(),
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}

/// Whether the file was last modified and last changed more than [`SETTLED`] before `now`.
fn settled(meta: &Metadata, now: SystemTime) -> bool {
    let changed = UNIX_EPOCH
        + Duration::new(
            meta.ctime().max(0) as u64,
            meta.ctime_nsec().clamp(0, 999_999_999) as u32,
        );
    let modified = meta.modified().unwrap_or(now);
    [changed, modified]
        .iter()
        .all(|t| now.duration_since(*t).is_ok_and(|age| age > SETTLED))
}

/// How long a component file must have been left alone before the index vouches for it.
const SETTLED: Duration = Duration::from_secs(2);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the cache folder `dir` may be used: created 0700 when missing; the folder and
/// its `by-stat/` index, when there, the current user's and writable by nobody else.
/// Otherwise the host says once (a warning) why, and how to fix it.
fn trusted_cache_dir(dir: &Path) -> bool {
    if let Err(e) = crate::safe_fs::create_private_dir(dir) {
        tracing::debug!(dir = %dir.display(), "cannot create the compiled-component cache: {e}");
    }
    for d in [dir.to_path_buf(), dir.join("by-stat")] {
        let Ok(meta) = std::fs::metadata(&d) else {
            continue;
        };
        if let Some(why) = crate::safe_fs::untrusted_meta(&meta) {
            tracing::warn!(
                "not using the compiled-component cache {}: {why}, and what is there is loaded as native code; components are compiled at every load instead. Fix it with `{}`, or set METACLAUDE_CACHE_DIR to a folder of your own",
                d.display(),
                why.fix(dir)
            );
            return false;
        }
    }
    true
}

/// Writes `bytes` to `file` (0600), in a private directory, replacing it at once.
fn write_atomically(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        crate::safe_fs::create_private_dir(dir)?;
    }
    crate::safe_fs::replace_file(file, bytes, crate::safe_fs::Readers::Private)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two components of the same size that differ.
    fn component(export: &str) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(component (core module (func (export "{export}"))))"#
        ))
        .unwrap()
    }

    /// A scratch folder, its cache, an engine on it, and a component just written there.
    fn a_component_written() -> (tempfile::TempDir, PathBuf, PluginEngine, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("components");
        let engine = PluginEngine::new(Some(cache.clone())).unwrap();
        let file = tmp.path().join("plugin.wasm");
        std::fs::write(&file, component("a")).unwrap();
        (tmp, cache, engine, file)
    }

    fn index_entries(cache: &Path) -> usize {
        std::fs::read_dir(cache.join("by-stat")).map_or(0, |d| d.count())
    }

    #[test]
    fn a_settled_component_is_found_by_its_file_and_a_change_in_place_is_seen() {
        let (_tmp, cache, engine, file) = a_component_written();

        // Just written: hashed, cached, but not indexed (it may still be changing).
        assert_eq!(engine.load(&file).unwrap().1, LoadSource::Compiled);
        assert_eq!(index_entries(&cache), 0);

        // Settled: the next load indexes it, and the one after finds it by its file.
        std::thread::sleep(SETTLED + Duration::from_millis(100));
        assert_eq!(engine.load(&file).unwrap().1, LoadSource::Cache);
        assert_eq!(index_entries(&cache), 1);
        let meta = std::fs::metadata(&file).unwrap();
        let key = hex(&Sha256::digest(component("a")));
        assert_eq!(engine.remembered_key(&file, &meta), Some(key));
        assert_eq!(engine.load(&file).unwrap().1, LoadSource::Cache);

        // Rewritten in place with the same size and its old modification time put back:
        // its change time moved, so it is hashed again and compiled as the new component.
        let modified = meta.modified().unwrap();
        std::fs::write(&file, component("b")).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        let now = std::fs::metadata(&file).unwrap();
        assert_eq!((now.len(), now.modified().unwrap()), (meta.len(), modified));
        assert_eq!(engine.remembered_key(&file, &now), None);
        assert_eq!(engine.load(&file).unwrap().1, LoadSource::Compiled);
    }

    #[test]
    fn an_index_entry_that_is_not_a_key_is_ignored() {
        let (_tmp, _cache, engine, file) = a_component_written();
        let meta = std::fs::metadata(&file).unwrap();
        let entry = engine.index_entry(&file, &meta).unwrap();
        std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
        std::fs::write(&entry, "../../etc/passwd").unwrap();
        assert_eq!(engine.remembered_key(&file, &meta), None);
        assert_eq!(engine.load(&file).unwrap().1, LoadSource::Compiled);
    }

    #[test]
    fn a_cache_others_may_write_is_not_used_and_a_fresh_one_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        let (tmp, cache, engine, file) = a_component_written();
        assert_eq!(engine.load(&file).unwrap().1, LoadSource::Compiled);
        assert_eq!(mode(&cache), 0o700, "created private");
        let entries = || -> Vec<PathBuf> {
            std::fs::read_dir(&cache)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                .collect()
        };
        let cached = entries();
        assert_eq!(cached.len(), 1);
        assert_eq!(mode(&cached[0]), 0o600);

        // An entry others may write is not loaded (compiled again, and replaced).
        set(&cached[0], 0o666);
        assert_eq!(engine.load(&file).unwrap().1, LoadSource::Compiled);
        assert_eq!(mode(&cached[0]), 0o600);
        assert_eq!(engine.load(&file).unwrap().1, LoadSource::Cache);

        // A folder its group may write is not used at all: nothing read, nothing written.
        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        set(&shared, 0o775);
        std::fs::copy(&cached[0], shared.join(cached[0].file_name().unwrap())).unwrap();
        let engine = PluginEngine::new(Some(shared.clone())).unwrap();
        assert_eq!(engine.cache_dir, None);
        assert_eq!(engine.load(&file).unwrap().1, LoadSource::Compiled);
        assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 1);
    }
}
