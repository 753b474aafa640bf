//! The allocator's settings ([`tune_allocator`]) and its free memory given back to the
//! system while a long-running host runs.
//!
//! glibc keeps memory that the program freed inside its arenas (one per thread that
//! allocated, up to eight per core): only the top of an arena is returned by itself, and
//! freed pages in the middle stay resident until `malloc_trim` hands them back. A `serve`
//! under a steady mixed load held about 7 MiB of such free memory after 40 minutes, and
//! its RSS grew by about 8 MiB an hour while what it allocated grew by about 1 (the soak
//! with `--heaptrack` in the README). [`trim_every`] starts one thread per process that
//! calls `malloc_trim(0)` every so often, so that RSS follows what the host holds.

use std::sync::Once;
use std::time::Duration;

/// Sets the allocator's parameters a host runs with: called first thing by `main`, before
/// any other thread, and by the benchmarks, so that they measure what the binary runs.
/// With glibc (elsewhere it does nothing):
///
/// * The mmap threshold is fixed at 128 KiB: large buffers (a script's captured output is
///   up to a few MiB) get their own mappings and go back to the system when freed. glibc
///   starts with this threshold but raises it after the first large buffer is freed, and
///   from then on 1 MiB captures are carved from per-thread arenas that fragment: a
///   long-running `serve` grew by about 13 MiB an hour that way (the soak in the README).
///   `MALLOC_MMAP_THRESHOLD_` in the environment still wins.
/// * Fast bins are off (`M_MXFAST` 0; the per-thread caches stay). An event's output and
///   its JSON are requests of 1 KiB or more, and each such request made glibc consolidate
///   every fast bin first (`malloc_consolidate`, a good part of the tenth of the default
///   set's CPU per event that glibc took); without fast bins small chunks are merged as
///   they are freed. The default set took 5 % less CPU per event. `GLIBC_TUNABLES` naming `glibc.malloc.mxfast` still
///   wins.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: `mallopt` only sets one of the allocator's parameters and is safe
            // to call at any time, from any thread (it takes the arenas' locks).
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_MAPPING as libc::c_int);
            }
        }
        let tunables = std::env::var_os("GLIBC_TUNABLES").unwrap_or_default();
        if !tunables.to_string_lossy().contains("glibc.malloc.mxfast") {
            // SAFETY: as above; glibc consolidates the fast bins before it changes their
            // size, so no chunk is lost.
            unsafe {
                libc::mallopt(libc::M_MXFAST, 0);
            }
        }
    }
}

/// For a process that runs one execution and exits (`metaclaude run`): glibc grows each
/// arena 1 MiB at a time instead of by what the allocation asks (`M_TOP_PAD`; its
/// default is none). The plugin loader's threads each allocate into an arena of their
/// own, and grew it by some pages at each step: about 80 `mprotect` calls in a run with
/// the default set, 40 with the pad. A pad is memory an arena keeps when it shrinks,
/// which a server would hold for hours; a one-shot run gives it all back a few
/// milliseconds later, when it exits. `MALLOC_TOP_PAD_` in the environment still wins.
pub fn tune_allocator_for_one_execution() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_TOP_PAD_").is_none() {
        // SAFETY: `mallopt` only sets one of the allocator's parameters and is safe to
        // call at any time, from any thread (it takes the arenas' locks).
        unsafe {
            libc::mallopt(libc::M_TOP_PAD, 1 << 20);
        }
    }
}

/// glibc's mmap threshold as [`tune_allocator`] fixes it: below it, a buffer comes from an
/// arena whose pages are mostly in place already; from it up, it is mapped afresh.
const OWN_MAPPING: usize = 128 * 1024;

/// An empty buffer of `capacity` bytes, for a caller that fills it whole at once (a text
/// copied out of a plugin's memory). A buffer of 128 KiB or more ([`tune_allocator`]'s
/// threshold) is a fresh mapping whose pages would each fault on their first write (256
/// traps into the kernel for 1 MiB); here they are faulted in by one
/// `madvise(MADV_POPULATE_WRITE)` instead: 1 MiB copied into such a buffer took 140 µs
/// against 265 (2026-12-07, the machine of the README's benchmarks). Where the kernel has
/// no such advice (before Linux 5.14) the pages fault as they are written, as before.
pub fn buffer_to_fill(capacity: usize) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(capacity);
    #[cfg(target_os = "linux")]
    if capacity >= OWN_MAPPING {
        if let Some((start, end)) = whole_pages(buffer.as_mut_ptr() as usize, capacity) {
            // SAFETY: the range is whole pages inside the buffer's own allocation, which
            // nothing else uses; populating them writes nothing the buffer holds (it is
            // empty) and leaves each page as a first write would. A failure (an old
            // kernel) changes nothing and is left alone.
            unsafe {
                libc::madvise(
                    start as *mut libc::c_void,
                    end - start,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
    }
    buffer
}

/// The size of a page of memory (`None` if the system says something unusable).
#[cfg(target_os = "linux")]
fn page_size() -> Option<usize> {
    // SAFETY: `sysconf` reads a constant of the process (glibc: from the auxiliary
    // vector), safe from any thread.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    page.is_power_of_two().then_some(page)
}

/// The whole pages of the `len` bytes at `at`: where the first starts and the last ends
/// (`None` when there is none).
#[cfg(target_os = "linux")]
fn whole_pages(at: usize, len: usize) -> Option<(usize, usize)> {
    let page = page_size()?;
    let (start, end) = (at.next_multiple_of(page), (at + len) & !(page - 1));
    (end > start).then_some((start, end))
}

/// How often a long-running host gives its free memory back.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(30);

/// Gives the allocator's free memory back to the system now. Returns whether any was.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` takes each arena's lock while it walks its free chunks and
        // only releases pages no allocation uses; it may be called from any thread at any
        // time, concurrently with allocations.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Starts the thread that calls [`trim`] every `every` (once per process: later calls do
/// nothing). It runs until the process ends.
pub fn trim_every(every: Duration) {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let started = std::thread::Builder::new()
            .name("metaclaude-trim".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                trim();
            });
        if let Err(e) = started {
            tracing::warn!("cannot start the memory trim thread: {e}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pages of a large buffer to fill are in place before anything is written to it
    /// (Linux 5.14 and later: `MADV_POPULATE_WRITE`).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_large_buffer_to_fill_has_its_pages_in_place() {
        tune_allocator();
        let resident = |buffer: &Vec<u8>| -> (usize, usize) {
            let (start, end) = whole_pages(buffer.as_ptr() as usize, buffer.capacity()).unwrap();
            let mut pages = vec![0u8; (end - start) / page_size().unwrap()];
            // SAFETY: `mincore` only reads the page tables of the range (whole pages of
            // the buffer's own allocation) into `pages`, one byte a page.
            let done = unsafe {
                libc::mincore(start as *mut libc::c_void, end - start, pages.as_mut_ptr())
            };
            assert_eq!(done, 0, "{}", std::io::Error::last_os_error());
            (pages.iter().filter(|&&p| p & 1 == 1).count(), pages.len())
        };
        let filled = buffer_to_fill(4 << 20);
        let (in_place, pages) = resident(&filled);
        assert_eq!(in_place, pages, "pages in place before any write");
        // What it replaces: a fresh buffer of the same size has none in place.
        let plain: Vec<u8> = Vec::with_capacity(4 << 20);
        assert_eq!(resident(&plain).0, 0);
        // A small one comes from an arena as before.
        assert!(buffer_to_fill(1000).capacity() >= 1000);
    }

    /// Memory freed in the middle of an arena is resident until trimmed, then it is not.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_memory_in_an_arena_goes_back_when_trimmed() {
        let rss_kib = || -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            status
                .lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap()
        };
        // In a thread of its own (its own arena), 64 MiB in blocks below the mmap
        // threshold, touched; every other one freed, so no arena top can shrink.
        let freed = std::thread::spawn(move || {
            let mut blocks: Vec<Vec<u8>> = (0..2048).map(|_| vec![1u8; 32 * 1024]).collect();
            let before = rss_kib();
            for b in blocks.iter_mut().step_by(2) {
                *b = Vec::new();
            }
            let untrimmed = rss_kib();
            trim();
            let trimmed = rss_kib();
            drop(blocks);
            (before, untrimmed, trimmed)
        })
        .join()
        .unwrap();
        let (before, untrimmed, trimmed) = freed;
        assert!(
            untrimmed + 8 * 1024 > before,
            "freeing alone already gave memory back: {freed:?}"
        );
        assert!(
            trimmed + 24 * 1024 < untrimmed,
            "trimming gave back less than 24 of the 32 MiB freed: {freed:?}"
        );
    }
}
