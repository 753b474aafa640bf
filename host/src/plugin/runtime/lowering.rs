//! How the host's records go into a plugin's memory (the canonical ABI's lowering), past
//! what wasmtime's derived `Lower` does for the generated WIT types in two ways:
//!
//! * **Empty strings and lists without a call into the plugin's allocator.** The
//!   canonical ABI puts every string and list of a record into the instance's memory by
//!   calling the plugin's `cabi_realloc`, even an empty one (`realloc(0, 0, align, 0)`),
//!   and an event's record has several: outputs, ids and lists a shape leaves empty, the
//!   `json` of a plugin that does not take it (7 of the 9 calls a `figures` record made
//!   per event, per plugin, each a round trip into the sandbox). Every allocator
//!   wit-bindgen generates (Rust, C, and the languages built on them) answers a
//!   zero-sized request with the alignment and allocates nothing. [`Text`] and [`List`]
//!   lower as `string` and `list<T>` do, except that an empty one takes the alignment as
//!   its pointer without asking, once the instance has shown that its allocator answers
//!   so ([`ZeroSized`], learnt from the first request of each alignment). A plugin whose
//!   allocator answers otherwise (memory of its own for each, as other languages'
//!   allocators may) is asked for every empty value, as the canonical ABI says. Nothing
//!   changes for the plugin either way: it receives what its allocator would have given.
//!   The answers live with each instance and reach the lowering through
//!   [`with_answers`], around a call on the instance's thread.
//! * **A record built where it is lowered.** [`lowered_as_view!`] lowers a borrowed record
//!   as the view its `view` method builds, on the stack, as it goes into the instance:
//!   a batch's list of records holds a reference each, not a view each (a view of a
//!   finished event is most of a KiB, so a batch of them would be a fresh mapping of the
//!   allocator's at every call).
//!
//! These implement wasmtime's `ComponentType` and `Lower` by hand, which its derive macros
//! otherwise do, through the items wasmtime exports for those macros
//! (`wasmtime::component::__internal`), named here only; they delegate everything but
//! the empty case to wasmtime's own `str`, `[T]` and derived records.

use std::cell::Cell;
use std::mem::MaybeUninit;

use wasmtime::component::__internal::wasmtime_environ::component::StringEncoding;

use self::abi::{CanonicalAbiInfo, InstanceType, InterfaceType, LowerContext};
use wasmtime::component::{ComponentType, Lower};
use wasmtime::ValRaw;

/// What an instance's allocator answers a zero-sized request of each alignment (1, 2, 4,
/// 8: the canonical ABI's), as far as the host has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZeroSized([Answer; 4]);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Answer {
    /// Not asked yet: the next empty value of this alignment asks.
    #[default]
    Unknown,
    /// The alignment itself, no memory: empty values of it need no call.
    Alignment,
    /// Something else: every empty value of it is asked for.
    Other,
}

impl ZeroSized {
    /// The index of `align`'s answer (`None`: not an alignment the canonical ABI uses).
    fn slot(align: u32) -> Option<usize> {
        match align {
            1 => Some(0),
            2 => Some(1),
            4 => Some(2),
            8 => Some(3),
            _ => None,
        }
    }
}

thread_local! {
    /// The answers of the instance being called on this thread ([`with_answers`]);
    /// `None` outside such a call: every empty value is then asked for.
    static ANSWERS: Cell<Option<ZeroSized>> = const { Cell::new(None) };
}

/// Runs `call` (a call into one instance, on this thread) with `answers`, that instance's
/// answers so far, and keeps what it learns in them. Outside, even after a panic in
/// `call`, the thread's answers are what they were.
pub fn with_answers<R>(answers: &mut ZeroSized, call: impl FnOnce() -> R) -> R {
    /// Puts the outer answers back, keeping the call's in `learnt`.
    struct Restore<'a> {
        outer: Option<ZeroSized>,
        learnt: &'a mut ZeroSized,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            if let Some(learnt) = ANSWERS.with(|a| a.replace(self.outer)) {
                *self.learnt = learnt;
            }
        }
    }
    let outer = ANSWERS.with(|a| a.replace(Some(*answers)));
    let _restore = Restore {
        outer,
        learnt: answers,
    };
    call()
}

/// The pointer an empty value of alignment `align` takes: `Some` without a call when the
/// instance's allocator is known to answer with the alignment, `Some` from a call when
/// its answer is not known yet (which it learns), `None` when it answers otherwise (the
/// caller lowers the value as wasmtime does, which asks).
fn empty_pointer<T>(cx: &mut LowerContext<'_, T>, align: u32) -> wasmtime::Result<Option<usize>> {
    let Some(mut answers) = ANSWERS.with(Cell::get) else {
        return Ok(None);
    };
    let Some(slot) = ZeroSized::slot(align) else {
        return Ok(None);
    };
    match answers.0[slot] {
        Answer::Alignment => Ok(Some(align as usize)),
        Answer::Other => Ok(None),
        Answer::Unknown => {
            let ptr = cx.realloc(0, 0, align, 0)?;
            answers.0[slot] = if ptr == align as usize {
                Answer::Alignment
            } else {
                Answer::Other
            };
            ANSWERS.with(|a| a.set(Some(answers)));
            Ok(Some(ptr))
        }
    }
}

fn write_flat(dst: &mut MaybeUninit<[ValRaw; 2]>, ptr: usize) {
    // As wasmtime writes a pointer pair: 64-bit values, the length 0.
    dst.write([ValRaw::i64(ptr as i64), ValRaw::i64(0)]);
}

fn write_memory<T>(
    cx: &mut LowerContext<'_, T>,
    offset: usize,
    ptr: usize,
) -> wasmtime::Result<()> {
    *cx.get::<4>(offset) = u32::try_from(ptr)?.to_le_bytes();
    *cx.get::<4>(offset + 4) = 0u32.to_le_bytes();
    Ok(())
}

/// `ComponentType` and `Lower` for `$wrapper`, a borrowed `$inner` (its field `.0`, a
/// string or list): the same type as `$inner`, lowered as `$inner` is except that an
/// empty one takes the pointer its `empty_pointer` method gives, when it gives one.
macro_rules! empty_without_asking {
    (impl[$($generics:tt)*] $wrapper:ty => $inner:ty) => {
        // SAFETY: the same type as `$inner` in every respect (its `Lower`, `ABI` and check).
        unsafe impl<$($generics)*> ComponentType for $wrapper {
            type Lower = <$inner as ComponentType>::Lower;
            const ABI: CanonicalAbiInfo = <$inner as ComponentType>::ABI;

            fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
                <$inner as ComponentType>::typecheck(ty, types)
            }
        }

        // SAFETY: an empty value is written as `$inner` writes one, a pointer pair (length
        // 0) whose pointer the plugin's allocator gave for its alignment, or would have,
        // as it showed; the rest is `$inner`'s own lowering.
        unsafe impl<$($generics)*> Lower for $wrapper {
            fn linear_lower_to_flat<X>(
                &self,
                cx: &mut LowerContext<'_, X>,
                ty: InterfaceType,
                dst: &mut MaybeUninit<Self::Lower>,
            ) -> wasmtime::Result<()> {
                match self.empty_pointer(cx)? {
                    Some(ptr) => {
                        write_flat(dst, ptr);
                        Ok(())
                    }
                    None => self.0.linear_lower_to_flat(cx, ty, dst),
                }
            }

            fn linear_lower_to_memory<X>(
                &self,
                cx: &mut LowerContext<'_, X>,
                ty: InterfaceType,
                offset: usize,
            ) -> wasmtime::Result<()> {
                match self.empty_pointer(cx)? {
                    Some(ptr) => write_memory(cx, offset, ptr),
                    None => self.0.linear_lower_to_memory(cx, ty, offset),
                }
            }
        }
    };
}

/// A `string`, borrowed; see the module's documentation.
#[derive(Clone, Copy, Debug)]
pub struct Text<'a>(pub &'a str);

impl Text<'_> {
    /// The pointer of an empty UTF-8 string (`None`: lower it as wasmtime does).
    fn empty_pointer<T>(&self, cx: &mut LowerContext<'_, T>) -> wasmtime::Result<Option<usize>> {
        if !self.0.is_empty() || cx.options().string_encoding != StringEncoding::Utf8 {
            return Ok(None);
        }
        empty_pointer(cx, 1)
    }
}

empty_without_asking!(impl['a] Text<'a> => str);

/// A `list<T>`, borrowed; see the module's documentation.
#[derive(Debug)]
pub struct List<'a, T>(pub &'a [T]);

impl<T> Clone for List<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for List<'_, T> {}

impl<T: Lower> List<'_, T> {
    /// The pointer of an empty list (`None`: lower it as wasmtime does).
    fn empty_pointer<U>(&self, cx: &mut LowerContext<'_, U>) -> wasmtime::Result<Option<usize>> {
        if !self.0.is_empty() {
            return Ok(None);
        }
        empty_pointer(cx, T::ALIGN32)
    }
}

empty_without_asking!(impl['a, T: Lower] List<'a, T> => [T]);

/// The items of wasmtime's lowering that [`lowered_as_view!`] names.
pub mod abi {
    pub use wasmtime::component::__internal::{
        CanonicalAbiInfo, InstanceType, InterfaceType, LowerContext,
    };
}

/// Makes `$record<'a>`, a borrowed record with a `view(&self) -> $view<'_>` method,
/// lower as that view, built on the stack where it is lowered (see the module's
/// documentation): `$view` is the component's record type, derived.
macro_rules! lowered_as_view {
    ($record:ident => $view:ident) => {
        // SAFETY: the same type as `$view` in every respect (its `Lower`, `ABI` and check),
        // and lowered by a `$view`.
        unsafe impl wasmtime::component::ComponentType for $record<'_> {
            type Lower = <$view<'static> as wasmtime::component::ComponentType>::Lower;
            const ABI: $crate::plugin::runtime::lowering::abi::CanonicalAbiInfo =
                <$view<'static> as wasmtime::component::ComponentType>::ABI;

            fn typecheck(
                ty: &$crate::plugin::runtime::lowering::abi::InterfaceType,
                types: &$crate::plugin::runtime::lowering::abi::InstanceType<'_>,
            ) -> wasmtime::Result<()> {
                <$view<'static> as wasmtime::component::ComponentType>::typecheck(ty, types)
            }
        }

        // SAFETY: lowered by the view, whose type this is.
        unsafe impl wasmtime::component::Lower for $record<'_> {
            fn linear_lower_to_flat<T>(
                &self,
                cx: &mut $crate::plugin::runtime::lowering::abi::LowerContext<'_, T>,
                ty: $crate::plugin::runtime::lowering::abi::InterfaceType,
                dst: &mut std::mem::MaybeUninit<Self::Lower>,
            ) -> wasmtime::Result<()> {
                wasmtime::component::Lower::linear_lower_to_flat(&self.view(), cx, ty, dst)
            }

            fn linear_lower_to_memory<T>(
                &self,
                cx: &mut $crate::plugin::runtime::lowering::abi::LowerContext<'_, T>,
                ty: $crate::plugin::runtime::lowering::abi::InterfaceType,
                offset: usize,
            ) -> wasmtime::Result<()> {
                wasmtime::component::Lower::linear_lower_to_memory(&self.view(), cx, ty, offset)
            }
        }
    };
}
pub(crate) use lowered_as_view;

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> Option<ZeroSized> {
        ANSWERS.with(Cell::get)
    }

    /// A call sees its instance's answers and keeps what it learns; outside a call, and
    /// after one that panicked, the thread has none (every empty value is asked for).
    #[test]
    fn answers_belong_to_one_call() {
        assert_eq!(current(), None);
        let mut answers = ZeroSized::default();
        with_answers(&mut answers, || {
            assert_eq!(current(), Some(ZeroSized::default()));
            let mut learnt = ZeroSized::default();
            learnt.0[ZeroSized::slot(4).unwrap()] = Answer::Alignment;
            ANSWERS.with(|a| a.set(Some(learnt)));
        });
        assert_eq!(
            answers.0,
            [
                Answer::Unknown,
                Answer::Unknown,
                Answer::Alignment,
                Answer::Unknown
            ]
        );
        assert_eq!(current(), None);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_answers(&mut answers, || panic!("a call that panics"))
        }));
        assert!(panicked.is_err());
        assert_eq!(current(), None, "restored after the panic");
        assert_eq!(answers.0[2], Answer::Alignment, "what was learnt stays");
    }

    #[test]
    fn only_the_canonical_alignments_have_answers() {
        let slots: Vec<_> = [1, 2, 4, 8, 16, 0].map(ZeroSized::slot).into();
        assert_eq!(slots, [Some(0), Some(1), Some(2), Some(3), None, None]);
    }
}
