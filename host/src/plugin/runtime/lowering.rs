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
//! * **A record written whole.** wasmtime's derived lowering writes a record into the
//!   instance's memory field by field, and looks the memory up again for every field
//!   (about a sixth of each counting plugin's thread in the default set went to that and
//!   to the offsets computed at each field). [`Image`] writes the record's bytes into an
//!   image on the host's stack instead, the canonical ABI's layout computed from each
//!   field type's `ComponentType` as the derive does it, and [`lowered_as_view!`] copies
//!   the image into the instance at once. Only what a string or list needs goes into the
//!   instance as it is met (its allocation and its bytes, through wasmtime's own
//!   lowering, which hands back the pointer pair the image then holds). The image's
//!   padding and the payload of a `none` are zeros, where the field-by-field lowering
//!   left whatever the memory held: the canonical ABI gives those bytes no meaning.
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

/// A value that writes its canonical-ABI bytes into `image`, the `SIZE32` bytes it takes
/// in an image of the record holding it (see the module's documentation), calling into
/// the instance only for the strings and lists in it.
pub trait Image: Lower {
    /// Writes the value, of the component's type `ty`, into `image`.
    fn write_image<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        image: &mut [u8],
    ) -> wasmtime::Result<()>;
}

/// Writes `value`, the next field of a record (of the component's type `ty`), into the
/// record's `image` at the first offset from `offset` its alignment allows, and moves
/// `offset` past it: the canonical ABI's record layout, the arithmetic of wasmtime's
/// `CanonicalAbiInfo::next_field32_size` (which its derive calls at every field, a call
/// into another crate with two checked conversions each time; here it inlines).
pub fn write_field<V: Image, T>(
    value: &V,
    cx: &mut LowerContext<'_, T>,
    ty: InterfaceType,
    image: &mut [u8],
    offset: &mut usize,
) -> wasmtime::Result<()> {
    let at = offset.next_multiple_of(V::ALIGN32 as usize);
    let end = at + V::SIZE32;
    let Some(slot) = image.get_mut(at..end) else {
        wasmtime::bail!(
            "a record's field lies past its end ({end} of {} bytes)",
            image.len()
        );
    };
    value.write_image(cx, ty, slot)?;
    *offset = end;
    Ok(())
}

/// The fields of record type `ty`, in order.
pub fn record_fields<'t, T>(
    cx: &LowerContext<'t, T>,
    ty: InterfaceType,
) -> wasmtime::Result<impl Iterator<Item = InterfaceType> + 't> {
    let types = cx.types;
    match ty {
        InterfaceType::Record(i) => Ok(types[i].fields.iter().map(|f| f.ty)),
        other => wasmtime::bail!("a record lowered as a {other:?}"),
    }
}

/// [`Image`] for a number or a `bool`, its bytes as `$bytes` makes them of `$v`.
macro_rules! scalar_images {
    ($($scalar:ty => |$v:ident| $bytes:expr),* $(,)?) => {$(
        impl Image for $scalar {
            fn write_image<T>(
                &self,
                _cx: &mut LowerContext<'_, T>,
                _ty: InterfaceType,
                image: &mut [u8],
            ) -> wasmtime::Result<()> {
                let $v = *self;
                image.copy_from_slice(&$bytes);
                Ok(())
            }
        }
    )*};
}

scalar_images!(
    u32 => |v| v.to_le_bytes(),
    i32 => |v| v.to_le_bytes(),
    u64 => |v| v.to_le_bytes(),
    i64 => |v| v.to_le_bytes(),
    // As wasmtime writes a float: its bits, as they are.
    f64 => |v| v.to_bits().to_le_bytes(),
    bool => |v| [u8::from(v)],
);

impl<V: Image> Image for &V {
    fn write_image<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        image: &mut [u8],
    ) -> wasmtime::Result<()> {
        (**self).write_image(cx, ty, image)
    }
}

impl<V: Image> Image for Option<V> {
    fn write_image<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        image: &mut [u8],
    ) -> wasmtime::Result<()> {
        let payload_ty = match ty {
            InterfaceType::Option(i) => cx.types[i].ty,
            other => wasmtime::bail!("an option lowered as a {other:?}"),
        };
        match self {
            None => image[0] = 0,
            Some(value) => {
                image[0] = 1;
                // The payload follows the one-byte discriminant at its own alignment.
                let mut offset = 1;
                write_field(value, cx, payload_ty, image, &mut offset)?;
            }
        }
        Ok(())
    }
}

/// Writes `value` (a string or list) into `image` as its pointer pair: lowered as wasmtime
/// lowers it flat (its allocation and its bytes, or none for an empty one), the pair then
/// written as wasmtime writes one into memory.
fn write_pointer_pair<V: Lower<Lower = [ValRaw; 2]>, T>(
    value: &V,
    cx: &mut LowerContext<'_, T>,
    ty: InterfaceType,
    image: &mut [u8],
) -> wasmtime::Result<()> {
    let mut flat = MaybeUninit::uninit();
    value.linear_lower_to_flat(cx, ty, &mut flat)?;
    // SAFETY: a flat lowering that returned `Ok` wrote both values.
    let [ptr, len] = unsafe { flat.assume_init() };
    image[..4].copy_from_slice(&u32::try_from(ptr.get_i64())?.to_le_bytes());
    image[4..8].copy_from_slice(&u32::try_from(len.get_i64())?.to_le_bytes());
    Ok(())
}

/// [`Image`] for the borrowed strings and lists, each written as its pointer pair.
macro_rules! pointer_pair_images {
    ($(impl[$($generics:tt)*] $wrapper:ty;)*) => {$(
        impl<$($generics)*> Image for $wrapper {
            fn write_image<T>(
                &self,
                cx: &mut LowerContext<'_, T>,
                ty: InterfaceType,
                image: &mut [u8],
            ) -> wasmtime::Result<()> {
                write_pointer_pair(self, cx, ty, image)
            }
        }
    )*};
}

pointer_pair_images! {
    impl['a] Text<'a>;
    impl['a, V: Lower] List<'a, V>;
}

/// [`Image`] for records (`$record { $field, ... }`: every field, in the component type's
/// order, each of a type with an [`Image`]) and for enums of at most 256 cases
/// (`enum $enum`, written as wasmtime writes one: its discriminant, one byte).
macro_rules! image_of {
    (impl[$($generics:tt)*] $record:ty { $($field:ident),* $(,)? }) => {
        impl<$($generics)*> $crate::plugin::runtime::lowering::Image for $record {
            fn write_image<T>(
                &self,
                cx: &mut $crate::plugin::runtime::lowering::abi::LowerContext<'_, T>,
                ty: $crate::plugin::runtime::lowering::abi::InterfaceType,
                image: &mut [u8],
            ) -> wasmtime::Result<()> {
                let mut types = $crate::plugin::runtime::lowering::record_fields(cx, ty)?;
                let mut offset = 0;
                $(
                    let Some(ty) = types.next() else {
                        wasmtime::bail!(concat!("the record has no field for `", stringify!($field), "`"));
                    };
                    $crate::plugin::runtime::lowering::write_field(
                        &self.$field, cx, ty, image, &mut offset,
                    )?;
                )*
                Ok(())
            }
        }
    };
    (enum $enum:ty) => {
        const _: () = assert!(
            <$enum as wasmtime::component::ComponentType>::SIZE32 == 1,
            "an enum of one byte"
        );
        impl $crate::plugin::runtime::lowering::Image for $enum {
            fn write_image<T>(
                &self,
                _cx: &mut $crate::plugin::runtime::lowering::abi::LowerContext<'_, T>,
                _ty: $crate::plugin::runtime::lowering::abi::InterfaceType,
                image: &mut [u8],
            ) -> wasmtime::Result<()> {
                image[0] = *self as u8;
                Ok(())
            }
        }
    };
}
pub(crate) use image_of;

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
                const SIZE: usize = <$view<'static> as wasmtime::component::ComponentType>::SIZE32;
                let mut image = [0u8; SIZE];
                $crate::plugin::runtime::lowering::Image::write_image(
                    &self.view(),
                    cx,
                    ty,
                    &mut image,
                )?;
                *cx.get::<SIZE>(offset) = image;
                Ok(())
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
