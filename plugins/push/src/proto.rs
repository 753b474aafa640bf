//! Protobuf's wire format, the parts the exporters write by hand: varints, field keys,
//! length-delimited and fixed-width fields
//! (<https://protobuf.dev/programming-guides/encoding/>).

/// Wire type of varints (int32, int64, uint*, bool, enum).
pub const VARINT: u8 = 0;
/// Wire type of fixed64 and double.
pub const I64: u8 = 1;
/// Wire type of strings, bytes and embedded messages.
pub const LEN: u8 = 2;

/// Appends `v` as a varint.
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The bytes [`varint`] writes for `v`.
pub fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// A field's key: its number and wire type.
pub fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field) << 3 | u64::from(wire));
}

/// A length-delimited field (a string, bytes, an embedded message).
pub fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A varint field, left out when 0 (proto3's default).
pub fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        key(out, field, VARINT);
        varint(out, v);
    }
}

/// A fixed64 field, left out when 0.
pub fn fixed64_field(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        key(out, field, I64);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// A double field (always written: a 0 is a value worth keeping in a `oneof`).
pub fn double_field(out: &mut Vec<u8>, field: u32, v: f64) {
    key(out, field, I64);
    out.extend_from_slice(&v.to_le_bytes());
}

/// An embedded message written by `write` into a scratch buffer, then as a field.
pub fn message_field(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    write(&mut inner);
    bytes_field(out, field, &inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut out = Vec::new();
            varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
    }

    #[test]
    fn keys_of_fields_past_15_take_two_bytes() {
        let mut out = Vec::new();
        key(&mut out, 1, LEN);
        assert_eq!(out, [0x0a]);
        out.clear();
        key(&mut out, 16, I64);
        assert_eq!(out, [0x81, 0x01]);
    }
}
