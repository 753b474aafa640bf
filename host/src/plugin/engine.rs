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

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// How often the epoch advances; per-call deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot create the WebAssembly engine: {0}")]
    Create(String),
    #[error("cannot read component {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid WebAssembly component: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
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
        Ok(PluginEngine {
            engine,
            cache_dir,
            engine_key,
        })
    }

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
        let bytes = std::fs::read(path).map_err(|source| EngineError::Read {
            path: path.to_path_buf(),
            source,
        })?;
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
        let digest = Sha256::digest(&bytes);
        let key: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let cached = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{key}-{}.cwasm", self.engine_key)));
        if let Some(file) = cached.as_ref().filter(|f| f.is_file()) {
            // SAFETY: the file was written by `Engine::precompile_component` of an engine
            // with the same compatibility hash, into our own cache folder.
            match unsafe { Component::deserialize_file(&self.engine, file) } {
                Ok(c) => return Ok((c, LoadSource::Cache)),
                Err(e) => {
                    tracing::warn!(file = %file.display(), "ignoring an unusable cache entry: {e}")
                }
            }
        }
        let invalid = |e: wasmtime::Error| EngineError::Invalid {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        };
        let compiled = self.engine.precompile_component(&bytes).map_err(invalid)?;
        if let Some(file) = &cached {
            if let Err(e) = write_atomically(file, &compiled) {
                tracing::warn!(file = %file.display(), "cannot cache the compiled component: {e}");
            }
        }
        // SAFETY: `compiled` was produced just now by this engine.
        let component =
            unsafe { Component::deserialize(&self.engine, &compiled) }.map_err(invalid)?;
        Ok((component, LoadSource::Compiled))
    }
}

fn write_atomically(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)
}
