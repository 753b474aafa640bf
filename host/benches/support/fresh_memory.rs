//! What this machine charges for memory touched for the first time, measured in the run:
//! the baseline against which the log sink's figures are read.
//!
//! The log sink writes every line into the kernel's page cache, and a log that grows takes
//! a fresh page every 4 KiB. On an ordinary machine a fresh page costs little more than a
//! reused one. On a virtual machine whose hypervisor backs its memory lazily and takes
//! free pages back (this machine kind: a Firecracker guest with virtio-balloon free page
//! reporting), the first touch of a page the guest freed earlier is a fault in the
//! hypervisor too, and writing new file data ran at 390 to 620 MB/s against 1.4 to
//! 3.4 GB/s for the same pages rewritten (`dd`, 2026-12-07). So the set's figures, and the
//! log sink's above all, move with how much fresh memory a run consumes and how much of
//! the machine's free memory the hypervisor still backs; this says what the run saw.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

/// The same bytes written into a new file and then over themselves, in MB/s.
pub struct FreshMemory {
    pub new_file_mb_s: f64,
    pub rewritten_mb_s: f64,
}

/// Writes 64 MiB in 64 KiB writes into a new file in `dir` (buffered, as the log sink
/// writes), then the same 64 MiB over them (their pages already in the page cache), and
/// removes the file.
pub fn measure(dir: &Path) -> FreshMemory {
    const TOTAL: usize = 64 << 20;
    let chunk = vec![b'x'; 64 << 10];
    let path = dir.join("fresh-memory");
    let mut file = File::create(&path).expect("a file for the fresh-memory figure");
    let write_all = |file: &mut File| {
        let start = Instant::now();
        for _ in 0..TOTAL / chunk.len() {
            file.write_all(&chunk)
                .expect("writing the fresh-memory file");
        }
        TOTAL as f64 / 1e6 / start.elapsed().as_secs_f64()
    };
    let new_file_mb_s = write_all(&mut file);
    file.seek(SeekFrom::Start(0)).unwrap();
    let rewritten_mb_s = write_all(&mut file);
    drop(file);
    let _ = std::fs::remove_file(&path);
    FreshMemory {
        new_file_mb_s,
        rewritten_mb_s,
    }
}
