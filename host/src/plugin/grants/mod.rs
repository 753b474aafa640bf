//! The operator's grants: what each plugin may do, decided outside its folder.
//!
//! A manifest *requests* ([`Requests`]: host directories, UDP and HTTP destinations, the
//! environment variables its `${VAR}`s name, its stderr on the host's, its memory and
//! time ceilings, and for a native plugin its shared library). The operator *grants*, in
//! a grants file ([`FILE_NAME`], beside the plugins directory unless `--grants` or
//! `METACLAUDE_GRANTS` says otherwise), which `metaclaude plugins grant NAME` writes
//! after showing the requests and `revoke` edits. A plugin starts only when its grant
//! covers every request ([`Grant::check`]); otherwise it does not start, and the error
//! lists what is missing and the command that grants it. It is never started with less
//! than it asked for: a log sink without its directory would lose every record in
//! silence.
//!
//! What a grant covers, and why:
//! * a WebAssembly plugin's grant is the set of capabilities, not its code: a rebuilt
//!   component asking for no more keeps running (hot reload), because the sandbox holds
//!   it to what was granted. A request beyond the grant (a new directory, a larger
//!   memory ceiling) stops it until the operator grants again, as a browser extension
//!   update that asks for new permissions is disabled until accepted.
//! * a native plugin runs unsandboxed, so its grant is its code: the SHA-256 of the
//!   library, checked on the very bytes that are loaded (`native`).
//! * directories, destinations and variables are compared as the manifest writes them
//!   (`${METACLAUDE_LOG_DIR:-.claude/logs/executions}`) or as they expand: a grant of
//!   the written form follows the operator's environment and working directory, as the
//!   manifest does. A directory grant also covers the directories below it.
//! * no grant can let a plugin write the grants file or the plugins directory
//!   ([`Grant::check`]'s `protected`).
//!
//! This module is pure (no wasmtime): parsing and checking only, fuzzed by
//! `host/fuzz/fuzz_targets/grants.rs`.

#[cfg(feature = "runtime")]
pub mod admission;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use toml::{Table, Value};

use crate::config::{self, Checker, ConfigError, ConfigValue};
use crate::plugin::manifest::vars;
use crate::plugin::manifest::{DirRequest, Requests, Written};

/// The grants file's name, beside the plugins directory: `<dir>/../grants.toml`.
pub const FILE_NAME: &str = "grants.toml";
/// The version of the grants file's format this host reads and writes.
pub const FORMAT_VERSION: i64 = 1;
/// What an unstated ceiling is in a hand-written grant: the manifest's defaults.
const DEFAULT_MEMORY_MB: u64 = 64;
const DEFAULT_CALL_TIMEOUT_MS: u64 = 2000;

const TOP_KEYS: &[&str] = &["version", "plugins"];
const GRANT_KEYS: &[&str] = &[
    "granted",
    "env",
    "dirs",
    "udp",
    "http",
    "stderr",
    "memory_mb",
    "call_timeout_ms",
    "native_sha256",
];
const DIR_KEYS: &[&str] = &["host", "mode"];

/// Every grant of one grants file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grants {
    /// Where they were read from (or will be written to).
    pub file: PathBuf,
    /// By plugin name.
    pub plugins: BTreeMap<String, Grant>,
}

/// What the operator granted one plugin.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    /// When it was granted (RFC 3339), for the operator's record; not checked.
    pub granted: Option<String>,
    /// Variables its manifest may expand.
    pub env: BTreeSet<String>,
    /// Host directories it may mount; each also covers the directories below it.
    pub dirs: Vec<GrantedDir>,
    /// UDP targets (`host:port`) it may send to, as written in the manifest.
    pub udp: Vec<String>,
    /// URL patterns its `http` import may post to, as written in the manifest.
    pub http: Vec<String>,
    /// Whether its stderr may go to the host's.
    pub stderr: bool,
    /// Its memory ceiling, MiB (64 when the file does not say).
    pub memory_mb: u64,
    /// Its ceiling on a call's deadline, ms (2000 when the file does not say).
    pub call_timeout_ms: u64,
    /// A native plugin's library, by content (lower-case hex SHA-256).
    pub native_sha256: Option<String>,
}

/// A host directory granted, as the operator (or the manifest) wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedDir {
    /// The directory, as written (`${VAR}`s expanded when checked).
    pub host: String,
    /// Whether it may be written (`mode = "rw"`).
    pub writable: bool,
}

/// One thing a plugin asks for, as people read it (in the grant prompt, and in the list
/// of what is missing when a plugin is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// A variable its `${VAR}`s read.
    Env(String),
    /// A host directory to mount.
    Dir(DirRequest),
    /// A UDP target.
    Udp(Written),
    /// An HTTP URL pattern.
    Http(Written),
    /// Its stderr on the host's.
    Stderr,
    /// A memory ceiling, MiB.
    Memory(u64),
    /// A deadline per call, ms.
    Deadline(u64),
    /// Unsandboxed code, by its digest (`None`: the file could not be read).
    Native {
        /// The library.
        file: PathBuf,
        /// Its digest, lower-case hex.
        sha256: Option<String>,
    },
    /// Write access to something no plugin may write: never grantable.
    Protected {
        /// The directory asked for read-write.
        dir: DirRequest,
        /// The grants file or plugins directory it holds.
        protected: PathBuf,
    },
}

impl fmt::Display for Ask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |w: &Written| {
            if w.written == w.value {
                w.value.clone()
            } else {
                format!("{} (now {})", w.written, w.value)
            }
        };
        match self {
            Ask::Env(name) => write!(f, "the environment variable {name}"),
            Ask::Dir(d) => write!(
                f,
                "{} directory {}",
                if d.writable { "read-write" } else { "read-only" },
                shown(&Written {
                    written: d.written.clone(),
                    value: d.path.display().to_string()
                })
            ),
            Ask::Udp(w) => write!(f, "UDP datagrams to {}", shown(w)),
            Ask::Http(w) => write!(f, "HTTP requests to {}", shown(w)),
            Ask::Stderr => write!(f, "its stderr on the host's stderr"),
            Ask::Memory(mb) => write!(f, "up to {mb} MiB of memory"),
            Ask::Deadline(ms) => write!(f, "up to {ms} ms a call"),
            Ask::Native { file, sha256 } => write!(
                f,
                "NATIVE CODE, unsandboxed inside the host with all its privileges: {} (sha256 {})",
                file.display(),
                sha256.as_deref().unwrap_or("unreadable")
            ),
            Ask::Protected { dir, protected } => write!(
                f,
                "read-write directory {} holds {}, which no plugin may write: give it a directory of its own",
                dir.path.display(),
                protected.display()
            ),
        }
    }
}

/// Everything `requests` asks for, in the order people read it. `native_sha256`: the
/// digest of a native plugin's library (`None` when it could not be read).
pub fn asks(requests: &Requests, native_sha256: Option<&str>) -> Vec<Ask> {
    let mut asks = Vec::new();
    if let Some(file) = &requests.native {
        asks.push(Ask::Native {
            file: file.clone(),
            sha256: native_sha256.map(str::to_string),
        });
    }
    asks.extend(requests.dirs.iter().cloned().map(Ask::Dir));
    asks.extend(requests.udp.iter().cloned().map(Ask::Udp));
    asks.extend(requests.http.iter().cloned().map(Ask::Http));
    asks.extend(requests.env.iter().cloned().map(Ask::Env));
    if requests.stderr {
        asks.push(Ask::Stderr);
    }
    asks.push(Ask::Memory(requests.memory_mb));
    asks.push(Ask::Deadline(requests.call_timeout_ms));
    asks
}

impl Grant {
    /// Exactly what `requests` asks for (what `plugins grant` writes), dated `granted`.
    pub fn of(requests: &Requests, native_sha256: Option<&str>, granted: Option<String>) -> Grant {
        Grant {
            granted,
            env: requests.env.clone(),
            dirs: requests
                .dirs
                .iter()
                .map(|d| GrantedDir {
                    host: d.written.clone(),
                    writable: d.writable,
                })
                .collect(),
            udp: requests.udp.iter().map(|w| w.written.clone()).collect(),
            http: requests.http.iter().map(|w| w.written.clone()).collect(),
            stderr: requests.stderr,
            memory_mb: requests.memory_mb,
            call_timeout_ms: requests.call_timeout_ms,
            native_sha256: native_sha256.map(str::to_string),
        }
    }

    /// What `requests` asks for beyond this grant (empty: the plugin may start).
    /// `expand` expands the grant's own `${VAR}`s (the operator wrote them); `protected`
    /// are paths no plugin may write, whatever is granted (the grants file, the plugins
    /// directory).
    pub fn check(
        &self,
        requests: &Requests,
        native_sha256: Option<&str>,
        expand: &dyn Fn(&str) -> Option<String>,
        protected: &[PathBuf],
    ) -> Vec<Ask> {
        let mut missing = Vec::new();
        if let Some(file) = &requests.native {
            let granted = matches!((&self.native_sha256, native_sha256), (Some(g), Some(d)) if g.eq_ignore_ascii_case(d));
            if !granted {
                missing.push(Ask::Native {
                    file: file.clone(),
                    sha256: native_sha256.map(str::to_string),
                });
            }
        }
        for d in &requests.dirs {
            if let Some(p) = d
                .writable
                .then(|| protected.iter().find(|p| is_within(p, &d.path)))
                .flatten()
            {
                missing.push(Ask::Protected {
                    dir: d.clone(),
                    protected: p.clone(),
                });
                continue;
            }
            let covered = self.dirs.iter().any(|g| {
                (g.writable || !d.writable)
                    && (g.host == d.written
                        || expand_path(&g.host, expand).is_some_and(|gp| is_within(&d.path, &gp)))
            });
            if !covered {
                missing.push(Ask::Dir(d.clone()));
            }
        }
        let destination = |granted: &[String], w: &Written| {
            granted
                .iter()
                .any(|g| *g == w.written || expand_text(g, expand).is_some_and(|v| v == w.value))
        };
        for w in &requests.udp {
            if !destination(&self.udp, w) {
                missing.push(Ask::Udp(w.clone()));
            }
        }
        for w in &requests.http {
            if !destination(&self.http, w) {
                missing.push(Ask::Http(w.clone()));
            }
        }
        for name in &requests.env {
            if !self.env.contains(name) {
                missing.push(Ask::Env(name.clone()));
            }
        }
        if requests.stderr && !self.stderr {
            missing.push(Ask::Stderr);
        }
        if requests.memory_mb > self.memory_mb {
            missing.push(Ask::Memory(requests.memory_mb));
        }
        if requests.call_timeout_ms > self.call_timeout_ms {
            missing.push(Ask::Deadline(requests.call_timeout_ms));
        }
        missing
    }
}

/// `s` expanded from `env` (`vars`); `None` when a variable without a default is unset
/// (such a grant covers nothing but its written form).
pub fn expand_text(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    vars::expand(s, env, &mut |_| {}).ok()
}

fn expand_path(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let text = expand_text(s, env).filter(|t| !t.trim().is_empty())?;
    std::path::absolute(text).ok()
}

/// Whether `path` is `dir` or below it: lexically (`.` and `..` resolved), and, where
/// both exist, also once links are resolved (a link below `dir` leading out of it is not
/// below it).
pub fn is_within(path: &Path, dir: &Path) -> bool {
    if !normalise(path).starts_with(normalise(dir)) {
        return false;
    }
    match (real_path(path), std::fs::canonicalize(dir)) {
        (Some(p), Ok(d)) => p.starts_with(d),
        _ => true,
    }
}

/// `path` with its links resolved: of the path itself when it exists, else of its
/// nearest existing ancestor with the rest appended.
fn real_path(path: &Path) -> Option<PathBuf> {
    let path = normalise(path);
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            let mut real = real;
            real.extend(rest.iter().rev());
            return Some(real);
        }
        rest.push(existing.file_name()?.to_os_string());
        existing = existing.parent()?;
    }
}

/// `.` and `..` resolved without the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why the grants file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GrantsError {
    /// The file is unreadable, not TOML, or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Its group or other users may write it, so a plugin's grants would not be the
    /// operator's alone.
    #[error("the grants file {} can be changed by other users (mode {mode:o}): a plugin's grants must be the operator's alone; run: chmod 600 {}", file.display(), file.display())]
    Writable {
        /// The grants file.
        file: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// It belongs to a user other than the operator and root.
    #[error("the grants file {} belongs to another user (uid {owner}): run: chown $(id -u) {}", file.display(), file.display())]
    Owner {
        /// The grants file.
        file: PathBuf,
        /// Its owner's uid.
        owner: u32,
    },
    /// It is inside the plugins directory, where a plugin folder could bring its own.
    #[error("the grants file {} is inside the plugins directory {}: a plugin folder could bring its own grants; keep it beside the directory (the default, {}) or pass --grants", file.display(), dir.display(), FILE_NAME)]
    InsidePlugins {
        /// The grants file.
        file: PathBuf,
        /// The plugins directory.
        dir: PathBuf,
    },
    /// The plugins directory is `/`: there is no folder beside it for the default file.
    #[error("the plugins directory {} has no parent to keep the grants file in: pass --grants FILE", dir.display())]
    NoParent {
        /// The plugins directory.
        dir: PathBuf,
    },
    /// Saving the file failed.
    #[error("cannot write the grants file {}: {source}", file.display())]
    Write {
        /// The grants file.
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Where the grants of plugins directory `dir` are kept: `explicit` (`--grants`,
/// `METACLAUDE_GRANTS`), else [`FILE_NAME`] in the directory above it. Never inside it.
pub fn grants_file_for(dir: &Path, explicit: Option<&Path>) -> Result<PathBuf, GrantsError> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let real_dir = std::fs::canonicalize(dir)
        .or_else(|_| std::path::absolute(dir))
        .unwrap_or_else(|_| dir.to_path_buf());
    let file = match explicit {
        Some(f) => std::path::absolute(f).unwrap_or_else(|_| f.to_path_buf()),
        None => real_dir
            .parent()
            .ok_or_else(|| GrantsError::NoParent {
                dir: dir.to_path_buf(),
            })?
            .join(FILE_NAME),
    };
    if is_within(&file, &real_dir) {
        return Err(GrantsError::InsidePlugins {
            file,
            dir: dir.to_path_buf(),
        });
    }
    Ok(file)
}

impl Grants {
    /// No grants yet, to be written to `file`.
    pub fn empty(file: &Path) -> Grants {
        Grants {
            file: file.to_path_buf(),
            plugins: BTreeMap::new(),
        }
    }

    /// Reads the grants file; a missing file grants nothing. A file other users can
    /// change, or that belongs to another user (but root), is refused.
    pub fn load(file: &Path) -> Result<Grants, GrantsError> {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Grants::empty(file)),
            Err(source) => {
                return Err(ConfigError::Io {
                    what: "grants file",
                    file: file.to_path_buf(),
                    source,
                }
                .into())
            }
        };
        check_owner(file)?;
        Ok(Grants::parse(&text, file)?)
    }

    /// Parses and checks a grants file's text (every problem at once, with its field).
    pub fn parse(text: &str, file: &Path) -> Result<Grants, ConfigError> {
        let table: Table = config::parse_toml(text, file)?;
        let mut c = Checker::new();
        c.unknown_keys("", table.keys(), TOP_KEYS);
        match table.get("version") {
            None => c.problem(
                "version",
                format!("missing (write version = {FORMAT_VERSION})"),
            ),
            Some(Value::Integer(FORMAT_VERSION)) => {}
            Some(other) => c.problem(
                "version",
                format!(
                    "this host reads grants files of version {FORMAT_VERSION}, found {}",
                    other.describe()
                ),
            ),
        }
        let mut plugins = BTreeMap::new();
        match table.get("plugins") {
            None => {}
            Some(Value::Table(t)) => {
                for (name, v) in t {
                    let at = config::field("plugins", name);
                    if name.is_empty()
                        || !name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    {
                        c.problem(&at, "a plugin name has only letters, digits, `-` and `_`");
                        continue;
                    }
                    if let Some(g) = grant(&mut c, &at, v) {
                        plugins.insert(name.clone(), g);
                    }
                }
            }
            Some(other) => c.expected("plugins", "a table of plugins by name", other),
        }
        c.finish(
            Some(Grants {
                file: file.to_path_buf(),
                plugins,
            }),
            file,
        )
    }

    /// The file's text: a header, then each plugin's grant, by name.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# Operator grants: what each plugin in the plugins directory beside this file may do.\n\
             # A plugin starts only when its grant covers everything its plugin.toml requests.\n\
             # Written by `metaclaude plugins grant NAME` (and `revoke`); see SECURITY.md.\n",
        );
        out.push_str(&format!("version = {FORMAT_VERSION}\n"));
        let quote = |s: &str| Value::String(s.to_string()).to_string();
        let list = |items: &mut dyn Iterator<Item = &String>| {
            let items: Vec<String> = items.map(|s| quote(s)).collect();
            format!("[{}]", items.join(", "))
        };
        for (name, g) in &self.plugins {
            out.push_str(&format!("\n[plugins.{name}]\n"));
            if let Some(t) = &g.granted {
                out.push_str(&format!("granted = {}\n", quote(t)));
            }
            if let Some(d) = &g.native_sha256 {
                out.push_str(&format!("native_sha256 = {}\n", quote(d)));
            }
            if !g.dirs.is_empty() {
                let dirs: Vec<String> = g
                    .dirs
                    .iter()
                    .map(|d| {
                        format!(
                            "{{ host = {}, mode = \"{}\" }}",
                            quote(&d.host),
                            if d.writable { "rw" } else { "ro" }
                        )
                    })
                    .collect();
                out.push_str(&format!("dirs = [{}]\n", dirs.join(", ")));
            }
            if !g.udp.is_empty() {
                out.push_str(&format!("udp = {}\n", list(&mut g.udp.iter())));
            }
            if !g.http.is_empty() {
                out.push_str(&format!("http = {}\n", list(&mut g.http.iter())));
            }
            if !g.env.is_empty() {
                out.push_str(&format!("env = {}\n", list(&mut g.env.iter())));
            }
            if g.stderr {
                out.push_str("stderr = true\n");
            }
            out.push_str(&format!(
                "memory_mb = {}\ncall_timeout_ms = {}\n",
                g.memory_mb, g.call_timeout_ms
            ));
        }
        out
    }

    /// Writes the file whole: a new file beside it (mode 0600), synced, then renamed over
    /// it, so a reader sees the old grants or the new ones, never half.
    pub fn save(&self) -> Result<(), GrantsError> {
        use std::os::unix::fs::OpenOptionsExt;
        let err = |source| GrantsError::Write {
            file: self.file.clone(),
            source,
        };
        let dir = self.file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            self.file
                .file_name()
                .map_or("grants".into(), |n| n.to_string_lossy()),
            std::process::id()
        ));
        let write = || -> std::io::Result<()> {
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(self.render().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.file)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })
    }
}

/// Refuses a grants file that others can change, or that belongs to another user (root
/// may own it: a system-wide install).
fn check_owner(file: &Path) -> Result<(), GrantsError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(file) else {
        return Ok(());
    };
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(GrantsError::Writable {
            file: file.to_path_buf(),
            mode,
        });
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(GrantsError::Owner {
            file: file.to_path_buf(),
            owner: meta.uid(),
        });
    }
    Ok(())
}

/// One `[plugins.NAME]` table.
fn grant(c: &mut Checker, at: &str, v: &Value) -> Option<Grant> {
    let Value::Table(t) = v else {
        c.expected(at, "a table", v);
        return None;
    };
    c.unknown_keys(at, t.keys(), GRANT_KEYS);
    let before = c.count();
    let field = |key: &str| config::field(at, key);
    let strings = |c: &mut Checker, key: &str| -> Vec<String> {
        match t.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
                    other => {
                        c.expected(format!("{}[{i}]", field(key)), "a non-empty string", other);
                        None
                    }
                })
                .collect(),
            Some(other) => {
                c.expected(field(key), "a list of strings", other);
                Vec::new()
            }
        }
    };
    let positive = |c: &mut Checker, key: &str, default: u64| match t.get(key) {
        None => default,
        Some(Value::Integer(i)) if *i > 0 => *i as u64,
        Some(other) => {
            c.expected(field(key), "a positive integer", other);
            default
        }
    };
    let granted = match t.get("granted") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Datetime(d)) => Some(d.to_string()),
        Some(other) => {
            c.expected(field("granted"), "a date (RFC 3339)", other);
            None
        }
    };
    let env: BTreeSet<String> = strings(c, "env").into_iter().collect();
    for name in &env {
        let ok = !name.is_empty()
            && !name.starts_with(|ch: char| ch.is_ascii_digit())
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if !ok {
            c.problem(
                field("env"),
                format!("{name:?} is not a variable name (letters, digits and `_`)"),
            );
        }
    }
    let mut dirs = Vec::new();
    match t.get("dirs") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let at = format!("{}[{i}]", field("dirs"));
                let Value::Table(d) = item else {
                    c.expected(&at, "a table { host, mode }", item);
                    continue;
                };
                c.unknown_keys(&at, d.keys(), DIR_KEYS);
                let host = match d.get("host") {
                    Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
                    None => {
                        c.problem(format!("{at}.host"), "missing");
                        None
                    }
                    Some(other) => {
                        c.expected(format!("{at}.host"), "a non-empty string", other);
                        None
                    }
                };
                let writable = match d.get("mode") {
                    None => false,
                    Some(Value::String(m)) if m == "ro" => false,
                    Some(Value::String(m)) if m == "rw" => true,
                    Some(other) => {
                        c.expected(format!("{at}.mode"), "\"ro\" or \"rw\"", other);
                        false
                    }
                };
                if let Some(host) = host {
                    dirs.push(GrantedDir { host, writable });
                }
            }
        }
        Some(other) => c.expected(field("dirs"), "a list of { host, mode } tables", other),
    }
    let udp = strings(c, "udp");
    let http = strings(c, "http");
    let stderr = match t.get("stderr") {
        None => false,
        Some(Value::Boolean(b)) => *b,
        Some(other) => {
            c.expected(field("stderr"), "true or false", other);
            false
        }
    };
    let memory_mb = positive(c, "memory_mb", DEFAULT_MEMORY_MB);
    let call_timeout_ms = positive(c, "call_timeout_ms", DEFAULT_CALL_TIMEOUT_MS);
    let native_sha256 = match t.get("native_sha256") {
        None => None,
        Some(Value::String(s)) if s.len() == 64 && s.chars().all(|ch| ch.is_ascii_hexdigit()) => {
            Some(s.to_ascii_lowercase())
        }
        Some(other) => {
            c.expected(
                field("native_sha256"),
                "the library's SHA-256 as 64 hex digits (sha256sum FILE)",
                other,
            );
            None
        }
    };
    (c.count() == before).then_some(Grant {
        granted,
        env,
        dirs,
        udp,
        http,
        stderr,
        memory_mb,
        call_timeout_ms,
        native_sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests() -> Requests {
        Requests {
            env: ["LOG_DIR".to_string()].into(),
            dirs: vec![DirRequest {
                written: "${LOG_DIR:-/var/log/mc}".into(),
                path: "/var/log/mc".into(),
                writable: true,
            }],
            udp: vec![],
            http: vec![Written {
                written: "http://127.0.0.1:9093/api/v2/alerts".into(),
                value: "http://127.0.0.1:9093/api/v2/alerts".into(),
            }],
            stderr: false,
            memory_mb: 64,
            call_timeout_ms: 2000,
            native: None,
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_grant_of_the_requests_covers_them_and_survives_its_file() {
        let r = requests();
        let g = Grant::of(&r, None, Some("2026-12-04T00:00:00Z".into()));
        assert!(g.check(&r, None, &no_env, &[]).is_empty());
        let mut all = Grants::empty(Path::new("/x/grants.toml"));
        all.plugins.insert("log-sink".into(), g);
        let back = Grants::parse(&all.render(), Path::new("/x/grants.toml")).unwrap();
        assert_eq!(back, all);
    }

    #[test]
    fn whatever_goes_beyond_the_grant_is_named() {
        let r = requests();
        let g = Grant::of(&r, None, None);
        let mut more = r.clone();
        more.env.insert("AWS_SECRET_ACCESS_KEY".into());
        more.dirs.push(DirRequest {
            written: "/etc".into(),
            path: "/etc".into(),
            writable: true,
        });
        more.dirs[0].writable = true;
        more.memory_mb = 4096;
        more.stderr = true;
        let missing: Vec<String> = g
            .check(&more, None, &no_env, &[])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            missing,
            [
                "read-write directory /etc",
                "the environment variable AWS_SECRET_ACCESS_KEY",
                "its stderr on the host's stderr",
                "up to 4096 MiB of memory",
            ]
        );
    }

    #[test]
    fn a_read_only_grant_does_not_cover_writing_and_a_directory_covers_below_it() {
        let g = Grant {
            dirs: vec![GrantedDir {
                host: "/srv/data".into(),
                writable: false,
            }],
            memory_mb: 64,
            call_timeout_ms: 2000,
            ..Grant::default()
        };
        let dir = |p: &str, writable| Requests {
            dirs: vec![DirRequest {
                written: p.into(),
                path: p.into(),
                writable,
            }],
            memory_mb: 64,
            call_timeout_ms: 2000,
            ..Requests::default()
        };
        assert!(g
            .check(&dir("/srv/data/x", false), None, &no_env, &[])
            .is_empty());
        assert_eq!(
            g.check(&dir("/srv/data", true), None, &no_env, &[]).len(),
            1
        );
        assert_eq!(
            g.check(&dir("/srv/data/../etc", false), None, &no_env, &[])
                .len(),
            1
        );
        assert_eq!(
            g.check(&dir("/srv/database", false), None, &no_env, &[])
                .len(),
            1
        );
    }

    #[test]
    fn a_written_grant_follows_the_environment() {
        let g = Grant::of(&requests(), None, None);
        let env = |n: &str| (n == "LOG_DIR").then(|| "/data/logs".to_string());
        let mut r = requests();
        r.dirs[0].written = "/data/logs/sub".into();
        r.dirs[0].path = "/data/logs/sub".into();
        assert!(g.check(&r, None, &env, &[]).is_empty());
        assert_eq!(g.check(&r, None, &no_env, &[]).len(), 1);
    }

    #[test]
    fn no_grant_lets_a_plugin_write_the_grants_or_the_plugins() {
        let mut r = requests();
        r.dirs[0].path = "/srv".into();
        let g = Grant::of(&r, None, None);
        let missing = g.check(&r, None, &no_env, &[PathBuf::from("/srv/plugins")]);
        assert!(
            matches!(&missing[..], [Ask::Protected { .. }]),
            "{missing:?}"
        );
    }

    #[test]
    fn a_native_library_is_granted_by_its_digest() {
        let mut r = requests();
        r.native = Some("/p/lib.so".into());
        let g = Grant::of(&r, Some("ab"), None);
        assert!(g.check(&r, Some("AB"), &no_env, &[]).is_empty());
        assert_eq!(g.check(&r, Some("cd"), &no_env, &[]).len(), 1);
        assert_eq!(g.check(&r, None, &no_env, &[]).len(), 1);
    }

    #[test]
    fn the_grants_file_is_never_inside_the_plugins_directory() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        assert_eq!(
            grants_file_for(&plugins, None).unwrap(),
            dir.path().canonicalize().unwrap().join(FILE_NAME)
        );
        let err = grants_file_for(&plugins, Some(&plugins.join("x/grants.toml"))).unwrap_err();
        assert!(
            err.to_string().contains("inside the plugins directory"),
            "{err}"
        );
    }

    #[test]
    fn a_file_others_can_change_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        std::fs::write(&file, "version = 1\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = Grants::load(&file).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Grants::load(&file).unwrap().plugins.is_empty());
        assert!(Grants::load(&dir.path().join("none.toml"))
            .unwrap()
            .plugins
            .is_empty());
    }

    #[test]
    fn saving_writes_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut g = Grants::empty(&dir.path().join(FILE_NAME));
        g.plugins
            .insert("a".into(), Grant::of(&requests(), None, None));
        g.save().unwrap();
        let mode = std::fs::metadata(&g.file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(Grants::load(&g.file).unwrap(), g);
    }
}
