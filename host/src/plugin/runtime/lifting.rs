//! How a large text comes out of a plugin's memory (the canonical ABI's lifting), past what
//! wasmtime's `Lift` for `String` does: an exporter's exposition is about 1 MiB at 10 000
//! series, lifted at every scrape.
//!
//! [`LargeText`] lifts a WIT `string` as `String` does (the same checks of the pointer,
//! length and encoding, the same bytes), with three differences in how:
//! * into the buffer of the instance's last text, once its reader is done with it
//!   ([`Rendered`] gives it back to the instance's [`Spare`] when dropped): its pages are
//!   in place, where a fresh 1 MiB buffer (glibc maps each buffer of 128 KiB or more
//!   afresh, see `memory::tune_allocator`) took a page fault on each of its 256 pages as
//!   the copy wrote it, and was unmapped when freed: four fifths of the lift's time;
//! * into a fresh buffer whose pages are faulted in at once when there is no such buffer
//!   ([`crate::memory::buffer_to_fill`]);
//! * its UTF-8 checked by `simdutf8`.
//!
//! An instance holds one spare buffer, as large as its last text (about 1 MiB for an
//! exporter at 10 000 series), from one render to the next.
//!
//! A string in another encoding than UTF-8 (a component whose `canon lift` says UTF-16)
//! is lifted by wasmtime's own `String`. Lifting runs inside the call, before wasmtime
//! hands the plugin back its memory (the `post-return`): what the text is lifted from is
//! the plugin's answer as it gave it.
//!
//! Like `lowering`, this implements wasmtime's `ComponentType` and `Lift` by hand through
//! the items wasmtime exports for its derive macros (`wasmtime::component::__internal`).

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use wasmtime::component::__internal::wasmtime_environ::component::StringEncoding;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift, WasmStr};
use wasmtime::ValRaw;

/// A WIT `string` lifted into a buffer of its own (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LargeText(pub String);

// SAFETY: the same type as `str`/`String` in every respect: the same flat representation
// (a pointer and a length), ABI and check.
unsafe impl ComponentType for LargeText {
    type Lower = <str as ComponentType>::Lower;

    const ABI: CanonicalAbiInfo = <str as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <str as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: lifts exactly what `String`'s lift reads (the pointer pair, checked by `WasmStr`
// against the memory's bounds and the fuel), and nothing else.
unsafe impl Lift for LargeText {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        if cx.options().string_encoding != StringEncoding::Utf8 {
            return String::linear_lift_from_flat(cx, ty, src).map(LargeText);
        }
        // Checked by wasmtime (bounds, alignment, fuel) before its pointer pair is read.
        WasmStr::linear_lift_from_flat(cx, ty, src)?;
        let [ptr, len]: &[ValRaw; 2] = src;
        lift_utf8(cx, ptr.get_u32(), len.get_u32())
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        if cx.options().string_encoding != StringEncoding::Utf8 {
            return String::linear_lift_from_memory(cx, ty, bytes).map(LargeText);
        }
        WasmStr::linear_lift_from_memory(cx, ty, bytes)?;
        let word = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_le_bytes)
        };
        match (word(0), word(4)) {
            (Some(ptr), Some(len)) => lift_utf8(cx, ptr, len),
            _ => wasmtime::bail!("string pointer pair out of bounds"),
        }
    }
}

/// The UTF-8 text at `ptr`, `len` bytes, of the memory `cx` lifts from (its bounds already
/// checked by `WasmStr`), copied into a buffer of its own.
fn lift_utf8(cx: &LiftContext<'_>, ptr: u32, len: u32) -> wasmtime::Result<LargeText> {
    let (ptr, len) = (ptr as usize, len as usize);
    let Some(bytes) = cx.memory().get(ptr..ptr + len) else {
        wasmtime::bail!("string pointer/length out of bounds of memory");
    };
    if simdutf8::basic::from_utf8(bytes).is_err() {
        // std's check says where the mistake is, and what.
        if let Err(e) = std::str::from_utf8(bytes) {
            wasmtime::bail!(
                "returned a string that is not UTF-8, as the component model requires: {e}"
            );
        }
    }
    let mut text = SPARE
        .with_borrow(|spare| spare.as_ref().and_then(|s| s.take(len)))
        .unwrap_or_else(|| crate::memory::buffer_to_fill(len));
    text.extend_from_slice(bytes);
    // SAFETY: the bytes were checked to be UTF-8 just above.
    Ok(LargeText(unsafe { String::from_utf8_unchecked(text) }))
}

thread_local! {
    /// The spare buffer of the instance being called on this thread ([`with_spare`]).
    static SPARE: RefCell<Option<Arc<Spare>>> = const { RefCell::new(None) };
}

/// Runs `call` (a call into one instance, on this thread) with `spare`, that instance's
/// spare buffer, for the texts it lifts. Outside, even after a panic in `call`, the
/// thread's spare is what it was.
pub(crate) fn with_spare<R>(spare: &Arc<Spare>, call: impl FnOnce() -> R) -> R {
    /// Puts the outer spare back.
    struct Restore(Option<Arc<Spare>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SPARE.set(self.0.take());
        }
    }
    let _restore = Restore(SPARE.replace(Some(spare.clone())));
    call()
}

/// An instance's spare buffer: the last text's, given back by its reader.
#[derive(Debug, Default)]
pub(crate) struct Spare(Mutex<Vec<u8>>);

impl Spare {
    /// The spare buffer, empty, when it holds `len` bytes without being much larger
    /// (at most twice, and 64 KiB, over): a text that shrank for good does not keep its
    /// old size.
    fn take(&self, len: usize) -> Option<Vec<u8>> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let fits = slot.capacity() >= len && slot.capacity() <= len * 2 + (64 << 10);
        let old = std::mem::take(&mut *slot);
        drop(slot);
        fits.then_some(old)
    }

    /// Keeps `buffer` for the next text, unless one is kept already.
    fn put(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if slot.capacity() == 0 {
            *slot = buffer;
        }
    }
}

/// A text an instance returned (an exporter's exposition), read as a `str`. Once
/// dropped, its buffer goes back to the instance (its spare buffer) for the next one.
pub struct Rendered {
    text: String,
    spare: Option<Arc<Spare>>,
}

impl Rendered {
    /// `text`, whose buffer goes back to `spare` once dropped.
    pub(crate) fn with_spare(text: String, spare: Arc<Spare>) -> Rendered {
        Rendered {
            text,
            spare: Some(spare),
        }
    }

    /// The text as a `String` of its own (its buffer then does not go back).
    pub fn into_string(mut self) -> String {
        self.spare = None;
        std::mem::take(&mut self.text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<String> for Rendered {
    fn from(text: String) -> Rendered {
        Rendered { text, spare: None }
    }
}

impl std::ops::Deref for Rendered {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.text, f)
    }
}

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Drop for Rendered {
    fn drop(&mut self) {
        if let Some(spare) = self.spare.take() {
            spare.put(std::mem::take(&mut self.text).into_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spare_with(capacity: usize) -> Spare {
        let spare = Spare::default();
        spare.put(Vec::with_capacity(capacity));
        spare
    }

    #[test]
    fn a_spare_is_taken_when_the_text_fits_it_without_much_room_left() {
        let spare = spare_with(1 << 20);
        let buffer = spare.take(900 << 10).expect("fits");
        assert!(buffer.is_empty() && buffer.capacity() >= 1 << 20);
        assert!(spare.take(900 << 10).is_none(), "taken already");

        // Too small for the text, or more than twice its size and 64 KiB over: dropped,
        // and the next text gets a fresh buffer (and gives it back in turn).
        let spare = spare_with(1 << 20);
        assert!(spare.take(2 << 20).is_none());
        assert_eq!(spare.0.lock().unwrap().capacity(), 0, "dropped");
        let spare = spare_with(8 << 20);
        assert!(spare.take(1 << 20).is_none());
        assert_eq!(spare.0.lock().unwrap().capacity(), 0, "dropped");
        let spare = spare_with((2 << 20) + (64 << 10));
        assert!(spare.take(1 << 20).is_some(), "twice and 64 KiB over: kept");
    }

    #[test]
    fn a_spare_is_kept_once_and_given_back_only_by_a_dropped_text() {
        let spare = Arc::new(Spare::default());
        let first = Rendered::with_spare("a".repeat(4096), spare.clone());
        let second = Rendered::with_spare("b".repeat(4096), spare.clone());
        let (first_at, second_at) = (first.as_ptr(), second.as_ptr());
        drop(first);
        drop(second);
        let kept = spare.take(4000).expect("the first text's buffer");
        assert_eq!(kept.as_ptr(), first_at, "the second was not kept over it");
        assert_ne!(kept.as_ptr(), second_at);
        assert!(kept.is_empty());

        let owned = Rendered::with_spare("c".repeat(4096), spare.clone()).into_string();
        assert_eq!(owned.len(), 4096);
        assert!(
            spare.take(4000).is_none(),
            "a text taken as a String is not given back"
        );
        let plain = Rendered::from("d".to_string());
        assert_eq!(plain.as_str(), "d");
        assert_eq!(format!("{plain} {plain:?}"), "d \"d\"");
    }
}
