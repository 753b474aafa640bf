//! `memcpy` and `memmove` for the static executable (`cargo xtask build-static`, musl on
//! x86-64), as one `rep movsb` each.
//!
//! musl's `memcpy` copies byte by byte up to an 8-byte boundary, then 8 bytes at a time
//! with `rep movsq`, then the tail byte by byte: slow for the short copies Rust code makes
//! by the thousand (a component's metadata deserialised as the plugins load). On a CPU
//! with fast string moves (ERMS: Intel since 2012, AMD since Zen 3; FSRM for short ones
//! since Ice Lake and Zen 3), one `rep movsb` is as fast as anything for every length.
//! Measured on the README's machine (2026-12-07, 300 interleaved runs of the two builds):
//! `metaclaude run noop` with the default set 5.61 → 5.51 and 5.84 → 5.69 ms, without
//! plugins 2.62 → 2.57 ms; musl's `memcpy` had been 3.5 % of a run's CPU (glibc's 0.8 %).
//!
//! The glibc build keeps glibc's (chosen for the CPU at start): these are exported as the
//! C symbols only in the static build, where they take the place of musl's (a static link
//! takes an archive's member only for a symbol still undefined, and `memmove` is defined
//! here too because musl's calls into the object that holds its `memcpy`).

// The glibc build compiles these for their tests only.
#![cfg_attr(not(target_env = "musl"), allow(dead_code))]

/// Copies `n` bytes forward from `src` to `dest`, one `rep movsb`.
///
/// # Safety
/// `src` must be valid for reading and `dest` for writing `n` bytes; where the two
/// overlap, `dest` must not be after `src` (the copy goes forward).
pub unsafe fn copy_forward(dest: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's contract; the direction flag is clear at every call (the
    // System V ABI's rule, which `copy_backward` restores), so the copy goes forward.
    unsafe {
        core::arch::asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags)
        );
    }
}

/// Copies `n` bytes backward (the last byte first) from `src` to `dest`, as musl's
/// `memmove` does when `dest` is after `src`.
///
/// # Safety
/// `src` must be valid for reading and `dest` for writing `n` bytes; where the two
/// overlap, `dest` must not be before `src`.
pub unsafe fn copy_backward(dest: *mut u8, src: *const u8, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: the caller's contract; both pointers start at the last byte of their
    // ranges (n > 0), the direction flag is set for the copy and cleared again after it.
    unsafe {
        core::arch::asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") dest.add(n - 1) => _,
            inout("rsi") src.add(n - 1) => _,
            options(nostack)
        );
    }
}

/// C's `memcpy`, in the static executable only.
///
/// # Safety
/// C's contract: both ranges valid for `n` bytes, not overlapping.
#[cfg(target_env = "musl")]
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: C's contract for memcpy is stronger than copy_forward's.
    unsafe { copy_forward(dest, src, n) };
    dest
}

/// Copies `n` bytes from `src` to `dest`, which may overlap: C's `memmove`.
///
/// # Safety
/// `src` must be valid for reading and `dest` for writing `n` bytes.
pub unsafe fn move_bytes(dest: *mut u8, src: *const u8, n: usize) {
    // Forward unless `dest` starts inside `src`'s range (the distance, taken modulo the
    // address space, is below `n`), where a forward copy would overwrite bytes not yet
    // read.
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // SAFETY: `dest` is before `src` or past its range: a forward copy reads every
        // byte before it is overwritten.
        unsafe { copy_forward(dest, src, n) };
    } else {
        // SAFETY: `dest` is inside `src`'s range, so after `src`: a backward copy reads
        // every byte before it is overwritten.
        unsafe { copy_backward(dest, src, n) };
    }
}

/// C's `memmove`, in the static executable only.
///
/// # Safety
/// C's contract: both ranges valid for `n` bytes; they may overlap.
#[cfg(target_env = "musl")]
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: C's contract is move_bytes's.
    unsafe { move_bytes(dest, src, n) };
    dest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn forward_copies_every_length_exactly() {
        for n in [0, 1, 7, 8, 9, 15, 16, 31, 63, 64, 65, 255, 4096, 65_537] {
            let src = pattern(n);
            let mut dest = vec![0xAAu8; n + 2];
            // SAFETY: both buffers hold at least `n` bytes and do not overlap.
            unsafe { copy_forward(dest.as_mut_ptr().add(1), src.as_ptr(), n) };
            assert_eq!(&dest[1..=n], &src[..], "length {n}");
            assert_eq!(
                (dest[0], dest[n + 1]),
                (0xAA, 0xAA),
                "length {n}: outside touched"
            );
        }
    }

    #[test]
    fn overlapping_moves_either_way_match_copy_within() {
        for (len, from, to, n) in [
            (100, 0, 10, 80),
            (100, 10, 0, 80),
            (4096, 1, 0, 4095),
            (4096, 0, 1, 4095),
            (64, 5, 6, 0),
        ] {
            let mut ours = pattern(len);
            let mut expected = ours.clone();
            expected.copy_within(from..from + n, to);
            let base = ours.as_mut_ptr();
            // SAFETY: both ranges lie inside `ours`.
            unsafe { move_bytes(base.add(to), base.add(from), n) };
            assert_eq!(ours, expected, "{n} bytes from {from} to {to}");
        }
    }
}
