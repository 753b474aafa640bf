//! Native plugins: trusted shared libraries loaded with `libloading`, through the small
//! versioned C ABI of `plugins/native/metaclaude_plugin_v1.h`.
//!
//! They exist for the rare plugin that needs native speed or a library that does not build
//! for wasm32-wasip2, and as the baseline the delivery benchmark compares WebAssembly
//! against. They are **not sandboxed**: a native plugin runs in the host process with the
//! host's privileges; none of the manifest's capabilities or limits except the queue, the
//! batching and the event filter apply to it, and a crash or hang in it is one of the
//! host. That is why the manifest must say `trusted = true` (checked in `manifest`).
//!
//! Values cross the boundary as the host's own JSON (an event is one line of `metaclaude
//! run --events`, alerts the seed's alert JSON): a C mirror of the nested event model
//! would be large and fragile, while the JSON is already the one serialisation of that
//! model, built once per event however many plugins receive it, and parsed by every
//! language.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::model::Alert;
use crate::plugin::manifest::PluginKind;
use crate::plugin::runtime::instance::CallError;

/// The ABI version this host speaks; the entry point's name carries it too.
pub const NATIVE_ABI_VERSION: u32 = 1;
const ENTRY_POINT: &str = "metaclaude_plugin_v1";

/// A borrowed UTF-8 string (`struct mc_str`).
#[repr(C)]
struct McStr {
    ptr: *const u8,
    len: usize,
}

impl McStr {
    fn new(s: &str) -> McStr {
        McStr {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }
}

/// Where the plugin writes text back (`struct mc_out`).
#[repr(C)]
struct McOut {
    ctx: *mut c_void,
    write: extern "C" fn(ctx: *mut c_void, ptr: *const u8, len: usize),
}

extern "C" fn append(ctx: *mut c_void, ptr: *const u8, len: usize) {
    if ctx.is_null() || ptr.is_null() || len == 0 {
        return;
    }
    // SAFETY: `ctx` is the `Vec<u8>` of the `OutBuf` this `McOut` was made from, alive
    // for the whole call; the plugin promises `ptr` holds `len` bytes.
    unsafe {
        let buf = &mut *ctx.cast::<Vec<u8>>();
        buf.extend_from_slice(std::slice::from_raw_parts(ptr, len));
    }
}

/// A growable buffer the plugin writes into through an `McOut`. It stays in place (a
/// local of the calling function) for as long as the `McOut` made from it is used.
struct OutBuf {
    buf: Vec<u8>,
}

impl OutBuf {
    fn new() -> OutBuf {
        OutBuf { buf: Vec::new() }
    }

    fn out(&mut self) -> McOut {
        McOut {
            ctx: (&mut self.buf as *mut Vec<u8>).cast(),
            write: append,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

type Init = extern "C" fn(McStr, *mut *mut c_void, *const McOut) -> i32;
type HandleBatch =
    extern "C" fn(*mut c_void, *const McStr, usize, *const McOut, *const McOut) -> i32;
type Flush = extern "C" fn(*mut c_void, *const McOut) -> i32;
type Render = extern "C" fn(*mut c_void, *const McOut, *const McOut) -> i32;
type Tick = extern "C" fn(*mut c_void, i64, u32, *const McOut, *const McOut) -> i32;
type Notify = extern "C" fn(*mut c_void, McStr, *const McOut) -> i32;

/// `struct mc_plugin_v1`.
#[repr(C)]
struct McPluginV1 {
    abi_version: u32,
    init: Option<Init>,
    handle_batch: Option<HandleBatch>,
    flush: Option<Flush>,
    render: Option<Render>,
    tick: Option<Tick>,
    notify: Option<Notify>,
    drop: Option<extern "C" fn(*mut c_void)>,
}

/// Why a native library cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// The file could not be read, is too large, is not an ELF shared object (or is a
    /// link), or the dynamic loader refused it.
    #[error("cannot load the shared library {}: {message}", file.display())]
    Open {
        /// The library.
        file: PathBuf,
        /// What failed.
        message: String,
    },
    /// This executable is statically linked (the static build, `cargo xtask build-static`):
    /// it has no dynamic loader, so it cannot load a shared library at all.
    #[error("cannot load the shared library {}: this metaclaude is the static executable (cargo xtask build-static), which cannot load native plugins; run this plugin with the glibc build (cargo build --release -p metaclaude-host), or remove its folder from the plugins directory", file.display())]
    StaticExecutable {
        /// The library.
        file: PathBuf,
    },
    /// The library does not export the ABI's entry point, or it returned NULL.
    #[error("{} is not a metaclaude native plugin: it does not export `{ENTRY_POINT}` ({message}); implement plugins/native/metaclaude_plugin_v1.h", file.display())]
    NoEntryPoint {
        /// The library.
        file: PathBuf,
        /// The loader's words, or that the entry returned NULL.
        message: String,
    },
    /// Its entry table is of another ABI version than [`NATIVE_ABI_VERSION`].
    #[error("{} speaks native plugin ABI version {found}, but this host speaks version {NATIVE_ABI_VERSION}: rebuild it against plugins/native/metaclaude_plugin_v1.h of this host", file.display())]
    AbiVersion {
        /// The library.
        file: PathBuf,
        /// The version its table declares.
        found: u32,
    },
    /// An entry its manifest's kind needs is NULL in its table.
    #[error("{} does not implement the `{kind}` kind: its `{entry}` entry is NULL", file.display())]
    Missing {
        /// The library.
        file: PathBuf,
        /// The kind its manifest declares.
        kind: PluginKind,
        /// The missing entry (`"render"`, `"notify"`, ...).
        entry: &'static str,
    },
}

/// A loaded library and its entry table. Instances hold an `Arc` of it, so the library
/// is never unloaded while its code can still be called.
pub struct NativeLibrary {
    table: &'static McPluginV1,
    // Declared last: dropped after everything that could call into it.
    _library: libloading::Library,
}

// SAFETY: the table is immutable static data of the library, and the ABI requires its
// functions to be callable from any thread (one call per instance at a time).
unsafe impl Send for NativeLibrary {}
// SAFETY: as for Send: shared references only read the immutable table.
unsafe impl Sync for NativeLibrary {}

/// A native library's bytes, read once: the operator's grant is checked against their
/// digest, and these very bytes are what [`NativeLibrary::load`] loads (from a sealed
/// memory file), so the file cannot be swapped between the check and the load.
pub struct NativeCode {
    bytes: Vec<u8>,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
}

/// The largest native library read (a plugin, not a whole runtime).
const MAX_LIBRARY_BYTES: u64 = 256 << 20;

impl NativeCode {
    /// Reads `file` (not following a link at its last component: a plugin folder's
    /// library is its own file) and checks that it is an ELF shared object, without
    /// loading it.
    pub fn read(file: &Path) -> Result<NativeCode, NativeError> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let open = |message: String| NativeError::Open {
            file: file.to_path_buf(),
            message,
        };
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(file)
            .map_err(|e| open(e.to_string()))?;
        let mut bytes = Vec::new();
        f.take(MAX_LIBRARY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| open(e.to_string()))?;
        if bytes.len() as u64 > MAX_LIBRARY_BYTES {
            return Err(open(format!("larger than {} MiB", MAX_LIBRARY_BYTES >> 20)));
        }
        // e_ident: "\x7fELF"; e_type (bytes 16-17, little endian here) 3 = ET_DYN.
        if bytes.len() < 18 || &bytes[..4] != b"\x7fELF" || bytes[16] != 3 || bytes[17] != 0 {
            return Err(open(
                "not an ELF shared library (build it with crate-type = [\"cdylib\"] or -shared)"
                    .into(),
            ));
        }
        let sha256 = crate::plugin::grants::sha256_hex(&bytes);
        Ok(NativeCode { bytes, sha256 })
    }
}

impl NativeLibrary {
    /// Loads `code` (read from `file`) and checks that it implements `kind` through ABI
    /// v1. Its initialisers run now, unsandboxed: call it only once the operator granted
    /// `code.sha256`.
    pub fn load(
        code: &NativeCode,
        file: &Path,
        kind: PluginKind,
    ) -> Result<Arc<NativeLibrary>, NativeError> {
        if cfg!(target_feature = "crt-static") {
            return Err(NativeError::StaticExecutable {
                file: file.to_path_buf(),
            });
        }
        let sealed = seal(&code.bytes).map_err(|e| NativeError::Open {
            file: file.to_path_buf(),
            message: format!("cannot copy it into memory to load: {e}"),
        })?;
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&sealed));
        // SAFETY: loading a library runs its initialisers: this is exactly the trust the
        // operator granted to these bytes (their digest is in the grants file).
        let library =
            unsafe { libloading::Library::new(&path) }.map_err(|e| NativeError::Open {
                file: file.to_path_buf(),
                message: e.to_string(),
            })?;
        // The library stays mapped once loaded; the memory file is no longer needed.
        drop(sealed);
        // SAFETY: the symbol's type is the one the ABI header declares.
        let table: &'static McPluginV1 = unsafe {
            let entry = library
                .get::<extern "C" fn() -> *const McPluginV1>(ENTRY_POINT.as_bytes())
                .map_err(|e| NativeError::NoEntryPoint {
                    file: file.to_path_buf(),
                    message: e.to_string(),
                })?;
            let ptr = entry();
            if ptr.is_null() {
                return Err(NativeError::NoEntryPoint {
                    file: file.to_path_buf(),
                    message: format!("`{ENTRY_POINT}()` returned NULL"),
                });
            }
            &*ptr
        };
        if table.abi_version != NATIVE_ABI_VERSION {
            return Err(NativeError::AbiVersion {
                file: file.to_path_buf(),
                found: table.abi_version,
            });
        }
        let missing = |entry| NativeError::Missing {
            file: file.to_path_buf(),
            kind,
            entry,
        };
        let mut needed: Vec<(&'static str, bool)> = vec![
            ("init", table.init.is_some()),
            ("drop", table.drop.is_some()),
        ];
        match kind {
            PluginKind::Sink => needed.extend([
                ("handle_batch", table.handle_batch.is_some()),
                ("flush", table.flush.is_some()),
            ]),
            PluginKind::Exporter => needed.extend([
                ("handle_batch", table.handle_batch.is_some()),
                ("flush", table.flush.is_some()),
                ("render", table.render.is_some()),
            ]),
            PluginKind::AlertRule => needed.extend([
                ("handle_batch", table.handle_batch.is_some()),
                ("tick", table.tick.is_some()),
            ]),
            PluginKind::Pusher => needed.extend([
                ("handle_batch", table.handle_batch.is_some()),
                ("flush", table.flush.is_some()),
                ("tick", table.tick.is_some()),
            ]),
            PluginKind::Notifier => needed.push(("notify", table.notify.is_some())),
        }
        if let Some((entry, _)) = needed.into_iter().find(|(_, present)| !present) {
            return Err(missing(entry));
        }
        Ok(Arc::new(NativeLibrary {
            table,
            _library: library,
        }))
    }

    /// A fresh instance: `init` with the manifest's config (as JSON).
    pub fn start(self: &Arc<Self>, config: &str) -> Result<NativeInstance, CallError> {
        let init = self.table.init.expect("checked at open");
        let mut state: *mut c_void = std::ptr::null_mut();
        let mut err = OutBuf::new();
        let code = init(McStr::new(config), &mut state, &err.out());
        if code != 0 {
            return Err(CallError::Refused(refusal(&err, "init")));
        }
        Ok(NativeInstance {
            library: self.clone(),
            state,
        })
    }
}

fn refusal(err: &OutBuf, call: &str) -> String {
    let text = err.text();
    if text.trim().is_empty() {
        format!("`{call}` failed without saying why")
    } else {
        text
    }
}

/// One native instance: the plugin's state pointer and the library that owns its code.
pub struct NativeInstance {
    state: *mut c_void,
    library: Arc<NativeLibrary>,
}

// SAFETY: the ABI lets the host call an instance from any thread, one call at a time;
// `NativeInstance` methods take `&mut self`, which guarantees that.
unsafe impl Send for NativeInstance {}

impl NativeInstance {
    fn table(&self) -> &'static McPluginV1 {
        self.library.table
    }

    /// `events` are the host's JSON lines, oldest first. Returns the alerts raised.
    pub fn handle_batch(&mut self, events: &[&str]) -> Result<Vec<Alert>, CallError> {
        let Some(f) = self.table().handle_batch else {
            return Ok(Vec::new());
        };
        let strs: Vec<McStr> = events.iter().map(|e| McStr::new(e)).collect();
        let mut alerts = OutBuf::new();
        let mut err = OutBuf::new();
        let code = f(
            self.state,
            strs.as_ptr(),
            strs.len(),
            &alerts.out(),
            &err.out(),
        );
        if code != 0 {
            return Err(CallError::Refused(refusal(&err, "handle_batch")));
        }
        parse_alerts(&alerts, "handle_batch")
    }

    /// Asks the plugin to make what it holds durable; a library without `flush` has
    /// nothing to do.
    pub fn flush(&mut self) -> Result<(), CallError> {
        let Some(f) = self.table().flush else {
            return Ok(());
        };
        let mut err = OutBuf::new();
        match f(self.state, &err.out()) {
            0 => Ok(()),
            _ => Err(CallError::Refused(refusal(&err, "flush"))),
        }
    }

    /// An exporter's state in its format (refused by a library without `render`).
    pub fn render(&mut self) -> Result<String, CallError> {
        let Some(f) = self.table().render else {
            return Err(CallError::Refused("this plugin is not an exporter".into()));
        };
        let mut out = OutBuf::new();
        let mut err = OutBuf::new();
        match f(self.state, &out.out(), &err.out()) {
            0 => Ok(out.text()),
            _ => Err(CallError::Refused(refusal(&err, "render"))),
        }
    }

    /// An alert rule's clock tick at `now`; the alerts it returns (none without `tick`).
    pub fn tick(&mut self, now: DateTime<Utc>) -> Result<Vec<Alert>, CallError> {
        let Some(f) = self.table().tick else {
            return Ok(Vec::new());
        };
        let mut alerts = OutBuf::new();
        let mut err = OutBuf::new();
        let code = f(
            self.state,
            now.timestamp(),
            now.timestamp_subsec_nanos(),
            &alerts.out(),
            &err.out(),
        );
        if code != 0 {
            return Err(CallError::Refused(refusal(&err, "tick")));
        }
        parse_alerts(&alerts, "tick")
    }

    /// Hands a notifier `alerts` as a JSON array (nothing happens without `notify`).
    pub fn notify(&mut self, alerts: &[Alert]) -> Result<(), CallError> {
        let Some(f) = self.table().notify else {
            return Ok(());
        };
        let json = serde_json::to_string(alerts).unwrap_or_else(|_| "[]".into());
        let mut err = OutBuf::new();
        match f(self.state, McStr::new(&json), &err.out()) {
            0 => Ok(()),
            _ => Err(CallError::Refused(refusal(&err, "notify"))),
        }
    }
}

impl Drop for NativeInstance {
    fn drop(&mut self) {
        if let Some(drop_state) = self.table().drop {
            drop_state(self.state);
        }
    }
}

/// Alerts the plugin wrote: nothing, or a JSON array of alerts. Malformed output is a
/// refusal (the instance stays), reported with the parser's reason.
fn parse_alerts(out: &OutBuf, call: &str) -> Result<Vec<Alert>, CallError> {
    let text = out.text();
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(&text).map_err(|e| {
        CallError::Refused(format!(
            "`{call}` wrote alerts that are not a JSON array of alerts: {e}"
        ))
    })
}

/// `bytes` in an anonymous memory file, sealed against any change, to be loaded from.
fn seal(bytes: &[u8]) -> std::io::Result<std::fs::File> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: the name is a NUL-terminated literal; the flags are valid for memfd_create.
    let fd = unsafe {
        libc::memfd_create(
            c"metaclaude-native-plugin".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(bytes)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a descriptor we own, with a valid command and argument.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    //! These load the real example plugin, `plugins/native/noop-sink`.

    use std::path::{Path, PathBuf};

    use crate::executor::EventSink;
    use crate::plugin::test_support::{event, example, granting};
    use crate::plugin::{GrantSource, Health, PluginError, PluginHost};

    fn folder(dir: &Path, kind: &str, config: &str) -> PathBuf {
        let folder = dir.join("native-sink");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("plugin.toml"),
            format!(
                "name = \"native-sink\"\nversion = \"1.0.0\"\nkind = \"{kind}\"\n\
                 native = \"{}\"\ntrusted = true\n[config]\n{config}\n",
                example().display()
            ),
        )
        .unwrap();
        folder
    }

    #[test]
    fn native_sink_receives_every_event() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let folder = folder(
            dir.path(),
            "sink",
            &format!("count_file = \"{}\"\nparse = true", count.display()),
        );
        let mut host = granting(dir.path());
        host.load_plugin(&folder).unwrap();
        for i in 0..1000 {
            host.emit(&event(i));
        }
        host.flush();
        assert_eq!(std::fs::read_to_string(&count).unwrap(), "1000");
        let info = &host.list()[0];
        assert_eq!(info.health, Health::Running);
        assert!(!info.sandboxed);
        assert_eq!((info.delivered, info.dropped, info.refused), (1000, 0, 0));
    }

    /// A native library loads only when the operator granted its digest: not because
    /// its manifest says `trusted = true`, and not once its bytes changed.
    #[test]
    fn a_native_library_loads_only_with_its_digest_granted() {
        let dir = tempfile::tempdir().unwrap();
        let folder = folder(dir.path(), "sink", "");
        let err = PluginHost::new(None)
            .unwrap()
            .load_plugin(&folder)
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PluginError::NotGranted(_)), "{text}");
        assert!(
            text.contains("NATIVE CODE") && text.contains("metaclaude plugins grant native-sink"),
            "{text}"
        );
        // Granted another library's digest: refused, naming the digest it has.
        let host = granting(dir.path());
        let mut grants = host.grants_for(dir.path()).unwrap();
        let grant = grants.plugins.get_mut("native-sink").unwrap();
        let real = grant.native_sha256.replace("0".repeat(64)).unwrap();
        host.set_grants(GrantSource::Given(grants));
        let mut host = host;
        let text = host.load_plugin(&folder).unwrap_err().to_string();
        assert!(text.contains(&real), "{text}");
    }

    #[test]
    fn config_rejected_by_init_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let folder = folder(dir.path(), "sink", "bogus = 1");
        let err = granting(dir.path()).load_plugin(&folder).unwrap_err();
        assert!(matches!(err, PluginError::ConfigRejected { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("plugin.toml, [config]") && text.contains("unknown config key `bogus`"),
            "{text}"
        );
    }

    #[test]
    fn entries_must_match_the_kind() {
        let dir = tempfile::tempdir().unwrap();
        let folder = folder(dir.path(), "exporter", "");
        let err = granting(dir.path())
            .load_plugin(&folder)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not implement the `exporter` kind: its `render` entry is NULL"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_library_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("fake");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("libfake.so"), "not a library").unwrap();
        std::fs::write(
            folder.join("plugin.toml"),
            "name = \"fake\"\nversion = \"1\"\nkind = \"sink\"\nnative = \"libfake.so\"\ntrusted = true\n",
        )
        .unwrap();
        let err = granting(dir.path())
            .load_plugin(&folder)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("plugin fake (") && err.contains("cannot load the shared library"),
            "{err}"
        );
    }
}
