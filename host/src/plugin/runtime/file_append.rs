//! A plugin's appends to a file run on the plugin's own thread.
//!
//! wasmtime-wasi hands every write of an output stream on a file to a thread of its
//! blocking pool, and the plugin, whose next step needs the write done, waits for it: two
//! thread switches per write, each a wake-up across cores. The log sink appends every
//! batch this way, and on this 2-core machine the switches cost
//! it more than the write itself. A plugin already has a worker thread of its own that
//! waits on each call (which is why its other file operations run inline, see
//! `allow_blocking_current_thread`), so `append-via-stream` is replaced by the stream
//! here, which appends right where the plugin calls it.
//!
//! What the plugin sees is what wasmtime-wasi's stream gave it, but for the size of a write:
//! * The same descriptor checks: a handle that is not the plugin's traps, a directory is
//!   `bad-descriptor`, a file the grant opened read-only is `not-permitted`.
//! * The same stream: each `write` is one `pwritev2(RWF_APPEND)` (continued should the
//!   kernel take less; a file that does not take the flag gets a write with `O_APPEND`
//!   set around it, as in wasmtime-wasi), so another process appending to the same file
//!   never lands inside it (a local file system writes an append whole under the file's
//!   lock); a write that fails closes the stream, and says why at the next call
//!   (`last-operation-failed` with the OS error), as wasmtime-wasi's did.
//! * A write may carry up to [`WRITE_CAPACITY`] bytes, which `check-write` says, where
//!   wasmtime-wasi's took 64 KiB: the log sink asks, and appends a line of up to that size
//!   whole to the live file. Over 64 KiB it had to write such a line into a file of its
//!   own, rotating the live file for it: a new file for every batch with a large output.
//! * A write is done when `write` returns, so the stream is ready for the next one at
//!   once.
//! * Every [`WRITEBACK_EVERY`] bytes appended, the kernel is told to start writing the
//!   file's new data to the disk (`sync_file_range`, not waiting), so that the plugin's
//!   `sync` (the log sink's at each flush) waits only for the last of it: it used to
//!   write a whole round of the log at once, both cores idle meanwhile.
//! * A write is appended straight from the plugin's memory. wasmtime-wasi's `write`
//!   copies the bytes into a buffer of the host's first, for any stream; `write` is
//!   replaced too, and hands the plugin's other streams (stdout, stderr, sockets) to
//!   wasmtime-wasi's as before, copied. A 1 MiB line was a fresh mapping of 1 MiB, its
//!   pages faulted in, copied to and unmapped, for every line.
//!
//! Invariant: only files the plugin opened itself, through the directories its grant
//! preopens, reach this stream (it takes the descriptor from the plugin's own table,
//! after wasmtime-wasi's permission check).

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::Bytes;
use wasmtime::component::{Linker, Resource, ResourceTable, WasmList};
use wasmtime::StoreContextMut;
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::ErrorCode;
use wasmtime_wasi::p2::bindings::sync::io::streams::{
    Host as _, HostOutputStream as _, StreamError as WitStreamError,
};
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamError, StreamResult};

/// The WASI version whose `wasi:filesystem/types` and `wasi:io/streams` wasmtime-wasi
/// defines (its WIT's package version); components built against any 0.2 version link to
/// it. A test fails should wasmtime-wasi move to another version and these replacements
/// no longer apply.
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";
const IO_STREAMS: &str = "wasi:io/streams@0.2.12";

/// The most one `write` takes (`check-write`): one append. Lines of the log are bounded
/// by the scripts' outputs (1 MiB per stream by default, up to six times that escaped).
pub const WRITE_CAPACITY: usize = 16 * 1024 * 1024;

/// Every this many bytes appended, the file's new data is sent on its way to the disk
/// (the kernel starts writing it back and the append goes on), so that the plugin's next
/// `sync` waits for little more than the last of it.
pub const WRITEBACK_EVERY: usize = 1024 * 1024;

/// The append streams of one plugin, by their handle's `rep` in its resource table: how
/// `write` tells its own streams from the plugin's others (stdout, stderr, sockets),
/// which wasmtime-wasi's table holds as the same type.
///
/// Invariant: an entry leads to its stream only while the stream lives, which is while it
/// is in the table under that `rep` (the table is all that holds it). A `rep` the table
/// gives to another resource once the stream is dropped finds a dead entry.
#[derive(Default)]
pub struct AppendStreams(HashMap<u32, Weak<Appender>>);

impl AppendStreams {
    fn insert(&mut self, rep: u32, appender: &Arc<Appender>) {
        // A plugin opens a stream per file it appends to; dropped ones go now and then.
        if self.0.len() >= 16 {
            self.0.retain(|_, a| a.strong_count() > 0);
        }
        self.0.insert(rep, Arc::downgrade(appender));
    }

    /// The append stream whose handle's `rep` this is, if it is one of ours and alive.
    fn get(&self, rep: u32) -> Option<Arc<Appender>> {
        self.0.get(&rep)?.upgrade()
    }
}

/// Replaces wasmtime-wasi's `[method]descriptor.append-via-stream` in `linker` (which
/// must already have WASI) with [`append_via_stream`], and its
/// `[method]output-stream.write` with one that appends a write to one of those streams
/// straight from the plugin's memory, and hands any other stream's to wasmtime-wasi as
/// before; both over the table and streams `parts` returns.
pub fn replace_append_via_stream<T: 'static>(
    linker: &mut Linker<T>,
    parts: fn(&mut T) -> (&mut ResourceTable, &mut AppendStreams),
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let defined = define(linker, parts);
    linker.allow_shadowing(false);
    defined
}

fn define<T: 'static>(
    linker: &mut Linker<T>,
    parts: fn(&mut T) -> (&mut ResourceTable, &mut AppendStreams),
) -> wasmtime::Result<()> {
    linker.instance(FILESYSTEM_TYPES)?.func_wrap(
        "[method]descriptor.append-via-stream",
        move |mut store, (fd,): (Resource<Descriptor>,)| {
            let (table, streams) = parts(store.data_mut());
            Ok((append_via_stream(table, streams, fd)?,))
        },
    )?;
    linker.instance(IO_STREAMS)?.func_wrap(
        "[method]output-stream.write",
        move |mut store: StoreContextMut<'_, T>,
              (stream, bytes): (Resource<DynOutputStream>, WasmList<u8>)| {
            let (table, streams) = parts(store.data_mut());
            let written = match streams.get(stream.rep()) {
                Some(appender) => {
                    // Never reached without a valid handle; checked as wasmtime-wasi does.
                    table.get(&stream)?;
                    appender.write(bytes.as_le_slice(&store))
                }
                None => {
                    let copy = bytes.as_le_slice(&store).to_vec();
                    parts(store.data_mut()).0.write(stream, copy)
                }
            };
            Ok((match written {
                Ok(()) => Ok(()),
                Err(e) => {
                    Err::<(), WitStreamError>(parts(store.data_mut()).0.convert_stream_error(e)?)
                }
            },))
        },
    )?;
    Ok(())
}

/// `append-via-stream` on the descriptor `fd` of `table`: a stream that appends on the
/// calling thread, known to `streams`. Traps (`Err`) on a handle not in the table, as
/// wasmtime-wasi does.
pub fn append_via_stream(
    table: &mut ResourceTable,
    streams: &mut AppendStreams,
    fd: Resource<Descriptor>,
) -> wasmtime::Result<Result<Resource<DynOutputStream>, ErrorCode>> {
    let file = match table.get(&fd)? {
        Descriptor::File(f) if f.perms.write_not_permitted() => {
            return Ok(Err(ErrorCode::NotPermitted))
        }
        Descriptor::File(f) => Arc::clone(&f.file),
        Descriptor::Dir(_) => return Ok(Err(ErrorCode::BadDescriptor)),
    };
    let appender = Arc::new(Appender {
        file,
        state: Mutex::new(State::Open),
        not_sent: AtomicUsize::new(0),
    });
    let stream: DynOutputStream = Box::new(InlineAppend(Arc::clone(&appender)));
    let stream = table.push(stream)?;
    streams.insert(stream.rep(), &appender);
    Ok(Ok(stream))
}

enum State {
    Open,
    /// The last write failed; the next call says why, and the stream is closed after.
    Failed(io::Error),
    Closed,
}

/// What an append stream does, shared by the stream in the plugin's table and the
/// `write` that reaches it without going through the table's type.
pub struct Appender {
    file: Arc<std::fs::File>,
    state: Mutex<State>,
    /// Bytes appended since the file's data was last sent on its way to the disk.
    not_sent: AtomicUsize,
}

impl Appender {
    /// `Ok` while the stream is open; otherwise the pending failure (once) or `Closed`.
    fn usable(&self) -> StreamResult<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *state, State::Closed) {
            State::Open => {
                *state = State::Open;
                Ok(())
            }
            State::Failed(e) => Err(StreamError::LastOperationFailed(e.into())),
            State::Closed => Err(StreamError::Closed),
        }
    }

    /// Appends `bytes` before returning; a failure is reported at the next call.
    fn write(&self, bytes: &[u8]) -> StreamResult<()> {
        self.usable()?;
        if bytes.len() > WRITE_CAPACITY {
            return Err(StreamError::Trap(wasmtime::Error::msg(format!(
                "write of {} bytes is more than check-write allowed ({WRITE_CAPACITY})",
                bytes.len()
            ))));
        }
        if let Err(e) = append_all(&self.file, bytes) {
            *self.state.lock().unwrap_or_else(PoisonError::into_inner) = State::Failed(e);
            return Ok(());
        }
        let not_sent = self.not_sent.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len();
        if not_sent >= WRITEBACK_EVERY {
            self.not_sent.store(0, Ordering::Relaxed);
            start_writeback(&self.file);
        }
        Ok(())
    }
}

/// An append stream whose writes are done on the thread that makes them.
struct InlineAppend(Arc<Appender>);

impl OutputStream for InlineAppend {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0.write(&bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.0.usable()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.0.usable().map(|()| WRITE_CAPACITY)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for InlineAppend {
    /// Always ready: no write is ever in flight.
    async fn ready(&mut self) {}
}

/// Starts writing `file`'s dirty pages back to the disk without waiting for them
/// (`sync_file_range` with `SYNC_FILE_RANGE_WRITE` over the whole file: what is already
/// on its way is left alone). Only a head start for a later `sync`, which still waits for
/// all of it and reports what failed; so a failure here is not reported.
fn start_writeback(file: &std::fs::File) {
    // SAFETY: a system call on a descriptor `file` keeps open, with integer arguments
    // only; it changes no memory of ours.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Appends all of `bytes` to the end of `file`, each part in one append (the kernel
/// places each at the end as it writes it, whatever other writers do).
fn append_all(file: &std::fs::File, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match append(file, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One append: `pwritev2(RWF_APPEND)`, or, where the file does not support that flag (a
/// device, an old kernel), a write with `O_APPEND` set for its duration, as wasmtime-wasi
/// does.
fn append(file: &std::fs::File, bytes: &[u8]) -> io::Result<usize> {
    let fd = file.as_raw_fd();
    let iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: `iov` describes `bytes`, which outlives the call and which the kernel only
    // reads; `fd` is `file`'s, open while `file` is borrowed. The offset is ignored with
    // `RWF_APPEND`.
    let written = unsafe { libc::pwritev2(fd, &iov, 1, 0, libc::RWF_APPEND) };
    if written >= 0 {
        return Ok(written as usize);
    }
    let e = io::Error::last_os_error();
    if !matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENOSYS)) {
        return Err(e);
    }
    // SAFETY: fcntl on a descriptor `file` keeps open, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_APPEND) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let written = (&*file).write(bytes);
    // SAFETY: as above; restores the flags read before.
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    use wasmtime_wasi::{FsPerms, OpenMode};

    /// `path` (created if missing) opened read-write in a new table, as a plugin's
    /// descriptor granted `perms`.
    fn descriptor_on(
        path: &std::path::Path,
        perms: FsPerms,
    ) -> (ResourceTable, Resource<Descriptor>) {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .read(true)
            .open(path)
            .unwrap();
        let mut table = ResourceTable::new();
        let fd = table
            .push(Descriptor::File(wasmtime_wasi::filesystem::File::new(
                file,
                perms,
                OpenMode::READ | OpenMode::WRITE,
                true,
            )))
            .unwrap();
        (table, fd)
    }

    /// A plugin's append stream on `path`: its table, the streams it is known to, the
    /// file's descriptor (its `rep`) and the stream's handle.
    fn append_stream_on(
        path: &std::path::Path,
    ) -> (ResourceTable, AppendStreams, u32, Resource<DynOutputStream>) {
        let (mut table, fd) = descriptor_on(path, FsPerms::ReadWrite);
        let fd_rep = fd.rep();
        let mut streams = AppendStreams::default();
        let stream = append_via_stream(&mut table, &mut streams, fd)
            .unwrap()
            .unwrap();
        (table, streams, fd_rep, stream)
    }

    fn stream_on(path: &std::path::Path, perms: FsPerms) -> (ResourceTable, DynOutputStream) {
        let (mut table, fd) = descriptor_on(path, perms);
        let stream = append_via_stream(&mut table, &mut AppendStreams::default(), fd)
            .unwrap()
            .unwrap();
        let stream = table.delete(stream).unwrap();
        (table, stream)
    }

    /// A stream's handle, once the stream is dropped, may be given to another stream
    /// (stderr, say): `write` must not take that one for an append stream.
    #[test]
    fn a_dropped_streams_handle_given_to_another_stream_is_not_taken_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.log");
        let (mut table, mut streams, fd, stream) = append_stream_on(&path);
        let fd_again = Resource::<Descriptor>::new_borrow(fd);
        let rep = stream.rep();
        streams.get(rep).unwrap().write(b"ours\n").unwrap();
        drop(table.delete(stream).unwrap());
        let other: DynOutputStream = Box::new(wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(64));
        let other = table.push(other).unwrap();
        assert_eq!(other.rep(), rep, "the table gives the handle again");
        assert!(streams.get(rep).is_none());
        // A new append stream under the handle is found again.
        table.delete(other).unwrap();
        let again = append_via_stream(&mut table, &mut streams, fd_again)
            .unwrap()
            .unwrap();
        assert_eq!(again.rep(), rep);
        streams.get(rep).unwrap().write(b"again\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "ours\nagain\n");
    }

    #[test]
    fn each_write_is_appended_before_it_returns_and_the_stream_is_ready_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.log");
        std::fs::write(&path, "first\n").unwrap();
        let (_table, mut stream) = stream_on(&path, FsPerms::ReadWrite);
        // Another writer's append in between lands after ours, never inside it.
        assert_eq!(stream.check_write().unwrap(), WRITE_CAPACITY);
        stream.write(Bytes::from_static(b"second\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first\nsecond\n");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"other\n"))
            .unwrap();
        assert_eq!(stream.check_write().unwrap(), WRITE_CAPACITY);
        let big = vec![b'x'; WRITE_CAPACITY];
        stream.write(Bytes::from(big)).unwrap();
        stream.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("first\nsecond\nother\nxxx"),
            "{:?}",
            &text[..30]
        );
        assert_eq!(text.len(), 19 + WRITE_CAPACITY);
    }

    /// Each MiB appended is sent on its way to the disk as it is appended, not left for
    /// the next `sync` to write all at once.
    #[test]
    fn every_mib_appended_is_sent_to_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.log");
        let (_table, streams, _, stream) = append_stream_on(&path);
        let appender = streams.get(stream.rep()).unwrap();
        let part = vec![b'x'; WRITEBACK_EVERY * 3 / 5];
        appender.write(&part).unwrap();
        assert_eq!(appender.not_sent.load(Ordering::Relaxed), part.len());
        appender.write(&part).unwrap();
        assert_eq!(appender.not_sent.load(Ordering::Relaxed), 0, "sent");
        appender.write(b"tail\n").unwrap();
        assert_eq!(appender.not_sent.load(Ordering::Relaxed), 5);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            2 * part.len() as u64 + 5
        );
    }

    #[test]
    fn a_write_past_the_permit_traps() {
        let dir = tempfile::tempdir().unwrap();
        let (_table, mut stream) = stream_on(&dir.path().join("f"), FsPerms::ReadWrite);
        let err = stream
            .write(Bytes::from(vec![0u8; WRITE_CAPACITY + 1]))
            .unwrap_err();
        assert!(matches!(err, StreamError::Trap(_)), "{err:?}");
    }

    #[test]
    fn a_failed_write_is_reported_at_the_next_call_then_the_stream_is_closed() {
        // /dev/full accepts the open and fails every write with ENOSPC (it takes no
        // `RWF_APPEND`, so this is also the fallback's path).
        let (_table, mut stream) = stream_on(std::path::Path::new("/dev/full"), FsPerms::ReadWrite);
        stream.write(Bytes::from_static(b"line\n")).unwrap();
        match stream.check_write() {
            Err(StreamError::LastOperationFailed(e)) => {
                let io = e.downcast_ref::<io::Error>().expect("an io::Error");
                assert_eq!(io.raw_os_error(), Some(libc::ENOSPC), "{io}");
            }
            other => panic!("expected the write's failure, got {other:?}"),
        }
        assert!(matches!(stream.flush(), Err(StreamError::Closed)));
        assert!(matches!(
            stream.write(Bytes::from_static(b"x")),
            Err(StreamError::Closed)
        ));
    }

    #[test]
    fn a_file_opened_read_only_gets_no_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "").unwrap();
        let mut table = ResourceTable::new();
        let read_only = table
            .push(Descriptor::File(wasmtime_wasi::filesystem::File::new(
                std::fs::File::open(&path).unwrap(),
                FsPerms::ReadOnly,
                OpenMode::READ,
                true,
            )))
            .unwrap();
        assert!(matches!(
            append_via_stream(&mut table, &mut AppendStreams::default(), read_only).unwrap(),
            Err(ErrorCode::NotPermitted)
        ));
    }
}
