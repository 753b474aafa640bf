//! The host's own files where plugins can write, and the modes of what the host creates.
//!
//! **Links.** A plugin granted a directory read-write (the log sink has the log directory)
//! can create *relative* symbolic links in it through WASI: cap-std refuses an absolute
//! link target, not `alerts.jsonl -> ../../x`. The host opens files there itself,
//! unsandboxed, so every such open goes through [`Dir`]: the directory is opened
//! `O_DIRECTORY | O_NOFOLLOW`, and each file in it by name relative to that descriptor with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (Linux 5.6 and later; before,
//! `openat(O_NOFOLLOW)`, the same for a single name). A link is refused with a
//! [`Refused`] naming it, never followed. A file opened for writing must also be a
//! regular file with one name: through a hard link the host would write into a file the
//! plugin reached under another grant.
//!
//! **Modes.** What the host creates itself has an explicit mode whatever the umask:
//! directories [`PRIVATE_DIR_MODE`], files [`PRIVATE_FILE_MODE`]. The binary also sets
//! its umask to 077 at start ([`restrict_umask`]), so that files plugins create through
//! WASI (which asks for 0666) are private too; scripts get the operator's umask back in
//! the spawned child ([`operator_umask`]), and files made for others (a metrics file for a
//! textfile collector, a plugin scaffold) are given it with [`share`].
//!
//! **Code the host runs.** [`untrusted`] says why a folder or file whose contents the
//! host would load as native code (the compiled-component cache) must not be used.

use std::ffi::{CString, OsStr};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The mode of every directory the host creates for itself or for a plugin's grant.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// The mode of every file the host creates in such a directory (the alert history, the
/// compiled-component cache).
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Why the host would not open a file: what is there is not a plain file of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The file's name in `dir`.
    pub name: String,
    /// The directory it is in: one a plugin may write.
    pub dir: PathBuf,
    /// What is there instead of a plain file.
    pub why: Why,
}

/// What the host found where it expected a plain file (or directory) of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// A symbolic link.
    Link {
        /// Where it points, when it could be read.
        target: Option<PathBuf>,
    },
    /// The directory itself is a symbolic link.
    DirLink {
        /// Where it points, when it could be read.
        target: Option<PathBuf>,
    },
    /// A regular file with more than one name (hard links), opened for writing.
    HardLinked {
        /// How many names it has.
        names: u64,
    },
    /// A directory, a FIFO, a device, a socket.
    NotAFile,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, dir) = (&self.name, self.dir.display());
        let to = |t: &Option<PathBuf>| {
            t.as_ref()
                .map(|t| format!(" (to {})", t.display()))
                .unwrap_or_default()
        };
        match &self.why {
            Why::Link { target } => write!(
                f,
                "{name} is a symbolic link{}, which the host never follows in {dir}: a plugin \
                 with write access to that directory may have planted it; remove the link",
                to(target)
            ),
            Why::DirLink { target } => write!(
                f,
                "{name} is a symbolic link{}, which the host never follows for a directory \
                 plugins write: a plugin with write access to {dir} may have planted it; \
                 name the directory it points to instead, if that is the one you mean",
                to(target)
            ),
            Why::HardLinked { names } => write!(
                f,
                "{name} has {names} names (hard links), and the host never writes through a \
                 second name in {dir}: a plugin with write access to that directory may have \
                 made it; remove the other names (`find -samefile`)"
            ),
            Why::NotAFile => write!(f, "{name} in {dir} is not a regular file; remove it"),
        }
    }
}

impl std::error::Error for Refused {}

impl Refused {
    /// The refusal of the link `name` found in `dir` (by a listing, say).
    pub fn link(dir: &Path, name: impl AsRef<OsStr>) -> Refused {
        let name = name.as_ref();
        Refused {
            name: name.to_string_lossy().into_owned(),
            dir: dir.to_path_buf(),
            why: Why::Link {
                target: std::fs::read_link(dir.join(name)).ok(),
            },
        }
    }
}

/// The refusal inside an error from this module, if that is what it is.
pub fn refusal(e: &io::Error) -> Option<&Refused> {
    e.get_ref()?.downcast_ref::<Refused>()
}

fn refused(name: &OsStr, dir: &Path, why: Why) -> io::Error {
    io::Error::other(Refused {
        name: name.to_string_lossy().into_owned(),
        dir: dir.to_path_buf(),
        why,
    })
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte"))
}

/// A directory held open: the files in it are opened relative to its descriptor, and
/// never through a link.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Opens the directory `path`; a symbolic link there (in its last component: the
    /// directories above it are the operator's) is refused.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let c = cstring(path.as_os_str().as_bytes())?;
        // SAFETY: `c` is a NUL-terminated path that outlives the call; `open` returns a
        // new descriptor or -1.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            let link = matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR))
                && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            if link {
                let name = path.file_name().unwrap_or(path.as_os_str());
                let parent = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let target = std::fs::read_link(path).ok();
                return Err(refused(name, parent, Why::DirLink { target }));
            }
            return Err(e);
        }
        Ok(Dir {
            // SAFETY: `open` returned a fresh descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_path_buf(),
        })
    }

    /// Creates `path` (and what is missing above it) with [`PRIVATE_DIR_MODE`], then
    /// opens it as [`Dir::open`] does. A directory already there keeps its mode.
    pub fn create_private(path: &Path) -> io::Result<Dir> {
        create_private_dir(path)?;
        Dir::open(path)
    }

    /// The directory's path, as it was opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file `name` for reading.
    pub fn open_read(&self, name: impl AsRef<OsStr>) -> io::Result<File> {
        self.open_file(name.as_ref(), libc::O_RDONLY, 0)
    }

    /// Opens the file `name` for appending, created with [`PRIVATE_FILE_MODE`] when
    /// missing; it must have no other name.
    pub fn open_append(&self, name: impl AsRef<OsStr>) -> io::Result<File> {
        self.open_file(
            name.as_ref(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT,
            PRIVATE_FILE_MODE,
        )
    }

    /// Creates the file `name`, which must not exist (not even as a link), with
    /// [`PRIVATE_FILE_MODE`], for writing: the first step of replacing a file atomically
    /// (write it whole, then [`Dir::rename`] it over the old one).
    pub fn create_new(&self, name: impl AsRef<OsStr>) -> io::Result<File> {
        self.open_file(
            name.as_ref(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            PRIVATE_FILE_MODE,
        )
    }

    /// Removes the name `name` from this directory (a link is removed, never followed).
    pub fn remove(&self, name: impl AsRef<OsStr>) -> io::Result<()> {
        let c = single_name(name.as_ref())?;
        // SAFETY: `c` is NUL-terminated and outlives the call; the descriptor is open.
        if unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Renames `from` to `to`, both in this directory (a rename moves names: it never
    /// follows a link at either).
    pub fn rename(&self, from: impl AsRef<OsStr>, to: impl AsRef<OsStr>) -> io::Result<()> {
        let from = single_name(from.as_ref())?;
        let to = single_name(to.as_ref())?;
        let fd = self.fd.as_raw_fd();
        // SAFETY: both names are NUL-terminated and outlive the call; `fd` is open.
        if unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn open_file(&self, name: &OsStr, flags: libc::c_int, mode: u32) -> io::Result<File> {
        let c = single_name(name)?;
        let flags = flags | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NOCTTY;
        let fd = match open_beneath(self.fd.as_raw_fd(), &c, flags, mode) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(io::Error::other(Refused::link(&self.path, name)));
            }
            Err(e) => return Err(e),
        };
        let file = File::from(fd);
        let meta = file.metadata()?;
        if !meta.file_type().is_file() {
            return Err(refused(name, &self.path, Why::NotAFile));
        }
        let writing = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if writing && meta.nlink() > 1 {
            return Err(refused(
                name,
                &self.path,
                Why::HardLinked {
                    names: meta.nlink(),
                },
            ));
        }
        Ok(file)
    }
}

/// `name` as a C string, if it is one name (no `/`, not `.` or `..`).
fn single_name(name: &OsStr) -> io::Result<CString> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.contains(&b'/') || bytes == b"." || bytes == b".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a file name"),
        ));
    }
    cstring(bytes)
}

/// Set once `openat2` answered that the kernel does not have it.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens `name` relative to `dir` without following any link: `openat2` with
/// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` where the kernel has it, else `openat` with
/// `O_NOFOLLOW` in `flags` (the same for a single name). A link is `ELOOP`.
fn open_beneath(dir: RawFd, name: &CString, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        match openat2_beneath(dir, name, flags, mode) {
            // A seccomp filter that predates openat2 may refuse the call itself (older
            // container runtimes answer EPERM): `openat` below gives the same guarantee.
            Some(Err(e)) if e.raw_os_error() == Some(libc::EPERM) => {}
            Some(opened) => return opened,
            None => NO_OPENAT2.store(true, Ordering::Relaxed),
        }
    }
    openat_nofollow(dir, name, flags, mode)
}

/// `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`; `None` when the kernel lacks it.
fn openat2_beneath(
    dir: RawFd,
    name: &CString,
    flags: libc::c_int,
    mode: u32,
) -> Option<io::Result<OwnedFd>> {
    // SAFETY: `open_how` is three integers (non-exhaustive in libc, so not built by a
    // literal); all zeros is a valid value, the kernel's "nothing asked".
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.mode = u64::from(mode);
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    // SAFETY: `name` is NUL-terminated and `how` a valid `open_how` of the size passed,
    // both outliving the call; the syscall returns a new descriptor or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return (e.raw_os_error() != Some(libc::ENOSYS)).then_some(Err(e));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Some(Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
}

/// `openat` with `flags`, which hold `O_NOFOLLOW`: for kernels before 5.6.
fn openat_nofollow(
    dir: RawFd,
    name: &CString,
    flags: libc::c_int,
    mode: u32,
) -> io::Result<OwnedFd> {
    debug_assert!(flags & libc::O_NOFOLLOW != 0);
    // SAFETY: `name` is NUL-terminated and outlives the call; `openat` returns a new
    // descriptor or -1.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags, mode as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the file at `path` for reading, never through a link (in the file's name or its
/// directory's last component): [`Dir::open`] of its parent, then [`Dir::open_read`].
pub fn open_read(path: &Path) -> io::Result<File> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Dir::open(parent)?.open_read(name)
}

/// Creates the directory `path` and what is missing above it with [`PRIVATE_DIR_MODE`]
/// (whatever the umask: the umask could only take bits away, and the mode has none to
/// spare). A directory already there is left as it is.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(path)
}

/// Writes `bytes` to a new file `path` with `mode` (before the umask), refusing a name
/// already taken (`O_EXCL`, which never follows a link).
pub fn create_new(path: &Path, mode: u32, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(bytes)
}

/// Who a file written by [`replace_file`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    /// The user alone (0600): the compiled-code cache.
    Private,
    /// Whoever the operator's umask lets read it (0666 before the umask, see [`share`]):
    /// a metrics file a textfile collector running as another user reads.
    Shared,
}

/// Replaces `path` with `bytes` at once: they go to a new file beside it (`O_EXCL`, so a
/// name taken by a link is not written through), which is then renamed over `path`. A
/// reader sees the old content or the new, never a mix. The temporary name is hidden and
/// ends in `.tmp` (a textfile collector reads only `*.prom`); one left by a process of the
/// same id that died before its rename is replaced.
pub fn replace_file(path: &Path, bytes: &[u8], readers: Readers) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mode = match readers {
        Readers::Private => PRIVATE_FILE_MODE,
        Readers::Shared => 0o666,
    };
    let _ = std::fs::remove_file(&tmp);
    let mut written = create_new(&tmp, mode, bytes);
    if readers == Readers::Shared {
        written = written.and_then(|()| share(&tmp, mode));
    }
    let written = written.and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The umask before [`restrict_umask`] replaced it; `u32::MAX` while it has not.
static OPERATOR_UMASK: AtomicU32 = AtomicU32::new(u32::MAX);

/// Sets the process's umask to 077, so that every file made in it without an explicit
/// mode (by a plugin through WASI, a native plugin, a library) is private, and remembers
/// the one it replaces for the scripts the host runs ([`operator_umask`]). The binary
/// calls it first thing; the umask is the process's, so call it before other threads
/// start. A library does not change it unless its user calls this.
pub fn restrict_umask() {
    // SAFETY: `umask` only swaps the process's file-mode creation mask; it cannot fail.
    let old = unsafe { libc::umask(0o077) };
    // The first call's answer is the operator's: a second call would see 077.
    let _ =
        OPERATOR_UMASK.compare_exchange(u32::MAX, old as u32, Ordering::Relaxed, Ordering::Relaxed);
}

/// The umask the operator started the host with, if [`restrict_umask`] replaced it:
/// the spawned child sets it back before `execve`, so scripts see what they always saw.
pub fn operator_umask() -> Option<libc::mode_t> {
    match OPERATOR_UMASK.load(Ordering::Relaxed) {
        u32::MAX => None,
        m => Some(m as libc::mode_t),
    }
}

/// Gives `path`, made for others to read (`mode` before the umask: 0o666 for a file,
/// 0o777 for a directory), the mode the operator's umask would have given it. Nothing to
/// do when the umask was not restricted: it applied at creation.
pub fn share(path: &Path, mode: u32) -> io::Result<()> {
    match operator_umask() {
        Some(mask) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !mask)),
        None => Ok(()),
    }
}

/// Why a folder or file must not be trusted with code the host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untrusted {
    /// Owned by another user.
    Owner {
        /// Its owner's uid.
        owner: u32,
        /// The host's effective uid.
        me: u32,
    },
    /// Its group may write it.
    GroupWritable {
        /// Its permission bits.
        mode: u32,
    },
    /// Every user may write it.
    WorldWritable {
        /// Its permission bits.
        mode: u32,
    },
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Untrusted::Owner { owner, me } => {
                write!(f, "it is owned by uid {owner}, not by you (uid {me})")
            }
            Untrusted::GroupWritable { mode } => {
                write!(f, "its group may write it (mode {:04o})", mode & 0o7777)
            }
            Untrusted::WorldWritable { mode } => {
                write!(f, "every user may write it (mode {:04o})", mode & 0o7777)
            }
        }
    }
}

impl Untrusted {
    /// The command that fixes it, for `path`.
    pub fn fix(&self, path: &Path) -> String {
        match self {
            Untrusted::Owner { .. } => format!("chown -R \"$USER\" {}", path.display()),
            _ => format!("chmod -R go-w {}", path.display()),
        }
    }
}

/// Whether a folder or file of owner `owner` and mode `mode` (`st_uid`, `st_mode`) may
/// hold code the user `me` runs: it must be `me`'s and writable by nobody else.
pub fn untrusted(owner: u32, mode: u32, me: u32) -> Option<Untrusted> {
    if owner != me {
        Some(Untrusted::Owner { owner, me })
    } else if mode & 0o002 != 0 {
        Some(Untrusted::WorldWritable { mode })
    } else if mode & 0o020 != 0 {
        Some(Untrusted::GroupWritable { mode })
    } else {
        None
    }
}

/// [`untrusted`] for `meta` and the current user.
pub fn untrusted_meta(meta: &std::fs::Metadata) -> Option<Untrusted> {
    // SAFETY: `geteuid` has no arguments and cannot fail.
    let me = unsafe { libc::geteuid() };
    untrusted(meta.uid(), meta.mode(), me)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn a_relative_link_is_refused_naming_it_and_the_file_behind_it_is_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        std::fs::write(tmp.path().join("outside"), b"secret").unwrap();
        symlink("../outside", logs.join("alerts.jsonl")).unwrap();
        let dir = Dir::open(&logs).unwrap();
        for e in [
            dir.open_append("alerts.jsonl").unwrap_err(),
            dir.open_read("alerts.jsonl").unwrap_err(),
            open_read(&logs.join("alerts.jsonl")).unwrap_err(),
        ] {
            let r = refusal(&e).expect("a refusal");
            assert_eq!(
                r.why,
                Why::Link {
                    target: Some("../outside".into())
                }
            );
            let text = e.to_string();
            assert!(
                text.contains("alerts.jsonl is a symbolic link (to ../outside)")
                    && text.contains("a plugin with write access")
                    && text.contains(&logs.display().to_string()),
                "{text}"
            );
        }
        assert_eq!(
            std::fs::read(tmp.path().join("outside")).unwrap(),
            b"secret"
        );
        // A dangling link is no way to create a file either.
        symlink("../new", logs.join("x")).unwrap();
        assert!(refusal(&dir.open_append("x").unwrap_err()).is_some());
        assert!(!tmp.path().join("new").exists());
    }

    #[test]
    fn a_linked_directory_a_second_name_and_a_directory_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        symlink("real", tmp.path().join("logs")).unwrap();
        let e = Dir::open(&tmp.path().join("logs")).unwrap_err();
        assert!(
            matches!(refusal(&e).map(|r| &r.why), Some(Why::DirLink { .. })),
            "{e}"
        );
        assert!(
            e.to_string().contains("logs is a symbolic link (to real)"),
            "{e}"
        );

        let dir = Dir::open(&real).unwrap();
        std::fs::write(tmp.path().join("elsewhere"), b"").unwrap();
        std::fs::hard_link(tmp.path().join("elsewhere"), real.join("h")).unwrap();
        let e = dir.open_append("h").unwrap_err();
        assert_eq!(refusal(&e).unwrap().why, Why::HardLinked { names: 2 });
        // Reading a file with two names writes nothing anywhere.
        dir.open_read("h").unwrap();

        std::fs::create_dir(real.join("d")).unwrap();
        assert_eq!(
            refusal(&dir.open_read("d").unwrap_err()).unwrap().why,
            Why::NotAFile
        );
        for bad in ["", ".", "..", "a/b"] {
            assert_eq!(
                dir.open_read(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
        }
    }

    #[test]
    fn plain_files_are_created_private_appended_read_and_renamed() {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("a/logs");
        let dir = Dir::create_private(&logs).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&logs), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        dir.open_append("f").unwrap().write_all(b"one\n").unwrap();
        dir.open_append("f").unwrap().write_all(b"two\n").unwrap();
        assert_eq!(mode(&logs.join("f")), 0o600);
        dir.rename("f", "g").unwrap();
        let mut text = String::new();
        open_read(&logs.join("g"))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "one\ntwo\n");
        assert_eq!(
            dir.open_read("f").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        // O_EXCL: a name taken, by a file or a link, is refused.
        create_new(&logs.join("n"), PRIVATE_FILE_MODE, b"x").unwrap();
        assert_eq!(mode(&logs.join("n")), 0o600);
        assert!(create_new(&logs.join("n"), PRIVATE_FILE_MODE, b"y").is_err());
        symlink("../../elsewhere", logs.join("l")).unwrap();
        assert!(create_new(&logs.join("l"), PRIVATE_FILE_MODE, b"y").is_err());
        assert!(!tmp.path().join("elsewhere").exists());
    }

    #[test]
    fn code_is_trusted_only_from_the_users_own_folders_nobody_else_may_write() {
        assert_eq!(untrusted(1000, 0o40700, 1000), None);
        assert_eq!(untrusted(1000, 0o40755, 1000), None);
        assert_eq!(untrusted(1000, 0o100644, 1000), None);
        assert_eq!(
            untrusted(0, 0o40755, 1000),
            Some(Untrusted::Owner { owner: 0, me: 1000 })
        );
        assert_eq!(
            untrusted(1000, 0o40775, 1000),
            Some(Untrusted::GroupWritable { mode: 0o40775 })
        );
        assert_eq!(
            untrusted(1000, 0o41777, 1000),
            Some(Untrusted::WorldWritable { mode: 0o41777 })
        );
        let why = untrusted(1001, 0o40700, 1000).unwrap();
        assert_eq!(
            why.to_string(),
            "it is owned by uid 1001, not by you (uid 1000)"
        );
        assert_eq!(why.fix(Path::new("/c")), "chown -R \"$USER\" /c");
        let why = untrusted(1000, 0o40775, 1000).unwrap();
        assert_eq!(why.to_string(), "its group may write it (mode 0775)");
        assert_eq!(why.fix(Path::new("/c")), "chmod -R go-w /c");
    }

    #[test]
    fn both_ways_of_opening_refuse_a_link_and_open_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), b"x").unwrap();
        symlink("f", tmp.path().join("l")).unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        let fd = dir.fd.as_raw_fd();
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let name = |n: &str| CString::new(n).unwrap();
        match openat2_beneath(fd, &name("l"), flags, 0) {
            // A kernel before 5.6: only the fallback is used there.
            None => {}
            Some(r) => {
                assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ELOOP));
                openat2_beneath(fd, &name("f"), flags, 0).unwrap().unwrap();
            }
        }
        let e = openat_nofollow(fd, &name("l"), flags, 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        openat_nofollow(fd, &name("f"), flags, 0).unwrap();
    }

    /// A link planted where `replace_file` puts its temporary file is not written
    /// through: the file it points at stays as it was, and the new content lands at the
    /// path asked for, with the mode asked for.
    #[test]
    fn replace_file_never_writes_through_a_planted_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        let target = dir.path().join("metrics.prom");
        let tmp = dir
            .path()
            .join(format!(".metrics.prom.{}.tmp", std::process::id()));
        symlink(&outside, &tmp).unwrap();
        replace_file(&target, b"new", Readers::Private).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, PRIVATE_FILE_MODE);
        assert!(!tmp.exists() && std::fs::symlink_metadata(&tmp).is_err());
        // A link at the target itself is replaced, not followed.
        std::fs::remove_file(&target).unwrap();
        symlink(&outside, &target).unwrap();
        replace_file(&target, b"again", Readers::Private).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert!(!std::fs::symlink_metadata(&target).unwrap().is_symlink());
    }
}
