//! The rotated log file's gzip framing: ordinary gzip members (RFC 1952), each of about
//! [`BLOCK_BYTES`] of whole lines, each header carrying the member's own length in an
//! extra subfield (`MC`), as BGZF does for genomic data.
//!
//! Any gzip reader reads such a file: members concatenate (`zcat`, `gzip -t`, Python's
//! `gzip`, flate2's `MultiGzDecoder`). A reader that knows the subfield takes each member
//! whole and inflates it in one call into a buffer of the size its trailer records, which
//! is faster than streaming, and lets it skip to the next member without inflating.
//!
//! Layout of a member: the 20-byte [`header`] (magic, deflate, `FEXTRA` alone, no time,
//! `XLEN` 8, subfield `MC` of 4 bytes: the whole member's length, little-endian), the raw
//! deflate stream, then the usual trailer: CRC-32 and length of the member's input.

/// The uncompressed bytes a member holds at least (unless it is the last): it ends at the
/// first newline from there, so that a member holds whole lines.
pub const BLOCK_BYTES: usize = 256 << 10;

/// The length of this framing's member header.
pub const HEADER_LEN: usize = 20;

/// The length of a gzip member's trailer (CRC-32, input length).
pub const TRAILER_LEN: usize = 8;

/// The extra subfield's id.
const SUBFIELD: [u8; 2] = *b"MC";

/// The header of a member whose whole length (header, deflate stream, trailer) is
/// `member_len`.
pub fn header(member_len: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    // Magic, CM = deflate, FLG = FEXTRA; MTIME 0; XFL 0; OS 255 (unknown).
    h[..10].copy_from_slice(&[0x1f, 0x8b, 8, 0x04, 0, 0, 0, 0, 0, 255]);
    h[10..12].copy_from_slice(&8u16.to_le_bytes());
    h[12..14].copy_from_slice(&SUBFIELD);
    h[14..16].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&member_len.to_le_bytes());
    h
}

/// The whole member's length if `bytes` starts with this framing's header (as [`header`]
/// writes it, the time and OS bytes aside); `None` for any other gzip header, which is
/// then read as a stream. The length is at least a header and a trailer long.
pub fn member_len(bytes: &[u8]) -> Option<usize> {
    let h = bytes.get(..HEADER_LEN)?;
    let framed = h[..4] == [0x1f, 0x8b, 8, 0x04]
        && h[10..12] == 8u16.to_le_bytes()
        && h[12..14] == SUBFIELD
        && h[14..16] == 4u16.to_le_bytes();
    let len = u32::from_le_bytes([h[16], h[17], h[18], h[19]]) as usize;
    (framed && len > HEADER_LEN + TRAILER_LEN).then_some(len)
}

/// The input length a whole `member` records in its trailer (mod 2^32, as gzip does).
pub fn recorded_len(member: &[u8]) -> Option<u32> {
    let t = member.len().checked_sub(4).map(|at| &member[at..])?;
    Some(u32::from_le_bytes([t[0], t[1], t[2], t[3]]))
}

#[cfg(feature = "gzip-blocks")]
pub use writer::BlockWriter;

#[cfg(feature = "gzip-blocks")]
mod writer {
    use std::io::{self, Write};

    use flate2::write::DeflateEncoder;
    use flate2::Compression;

    use super::{header, BLOCK_BYTES, HEADER_LEN, TRAILER_LEN};

    /// Where the first newline of `bytes` is.
    fn newline(bytes: &[u8]) -> Option<usize> {
        bytes.iter().position(|&b| b == b'\n')
    }

    /// Writes what is written to it as members of whole lines: a member ends at the first
    /// newline after [`BLOCK_BYTES`] (a longer line makes a longer member); the rest is
    /// written by [`BlockWriter::finish`]. An empty input is one empty member (an empty
    /// file is no gzip file).
    pub struct BlockWriter<W: Write> {
        inner: W,
        pending: Vec<u8>,
        /// Deflates into a buffer with room for the header before the stream.
        encoder: DeflateEncoder<Vec<u8>>,
        spare: Vec<u8>,
        members: u64,
    }

    impl<W: Write> BlockWriter<W> {
        /// A writer compressing at `level` (0-9) into `inner`.
        pub fn new(inner: W, level: u32) -> BlockWriter<W> {
            BlockWriter {
                inner,
                pending: Vec::with_capacity(BLOCK_BYTES * 2),
                encoder: DeflateEncoder::new(vec![0; HEADER_LEN], Compression::new(level)),
                spare: vec![0; HEADER_LEN],
                members: 0,
            }
        }

        /// Writes the last member and returns the inner writer (not flushed).
        pub fn finish(mut self) -> io::Result<W> {
            if !self.pending.is_empty() || self.members == 0 {
                let all = std::mem::take(&mut self.pending);
                self.member(&all)?;
            }
            Ok(self.inner)
        }

        /// Compresses `input` as one member and writes it, in one write.
        fn member(&mut self, input: &[u8]) -> io::Result<()> {
            self.encoder.write_all(input)?;
            // Finishes the deflate stream (written after room for the header) and starts a
            // fresh one into the spare buffer.
            let mut member = self.encoder.reset(std::mem::take(&mut self.spare))?;
            let len = u32::try_from(member.len() + TRAILER_LEN)
                .map_err(|_| io::Error::other("a gzip member over 4 GiB compressed"))?;
            member[..HEADER_LEN].copy_from_slice(&header(len));
            member.extend_from_slice(&crc32fast::hash(input).to_le_bytes());
            member.extend_from_slice(&(input.len() as u32).to_le_bytes());
            self.inner.write_all(&member)?;
            // This member's buffer is the next one's spare.
            member.clear();
            member.resize(HEADER_LEN, 0);
            self.spare = member;
            self.members += 1;
            Ok(())
        }
    }

    impl<W: Write> Write for BlockWriter<W> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.pending.extend_from_slice(buf);
            let mut pending = std::mem::take(&mut self.pending);
            let mut start = 0;
            let result = loop {
                // The first newline once a block's worth is pending ends a member.
                let from = start + BLOCK_BYTES - 1;
                let Some(at) = pending.get(from..).and_then(newline) else {
                    break Ok(());
                };
                let end = from + at + 1;
                if let Err(e) = self.member(&pending[start..end]) {
                    break Err(e);
                }
                start = end;
            };
            pending.drain(..start);
            self.pending = pending;
            result.map(|()| buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }
}

#[cfg(all(test, feature = "gzip-blocks"))]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn framed(input: &[u8], writes: usize) -> Vec<u8> {
        let mut w = BlockWriter::new(Vec::new(), 6);
        for chunk in input.chunks(input.len().div_ceil(writes).max(1)) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    /// The members, as this framing's headers give them.
    fn members(mut gz: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        while !gz.is_empty() {
            let len = member_len(gz).expect("a framed member");
            out.push(&gz[..len]);
            gz = &gz[len..];
        }
        out
    }

    fn lines(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                format!("{{\"line\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 300)).into_bytes()
            })
            .collect()
    }

    #[test]
    fn members_hold_whole_lines_and_any_gzip_reader_reads_them() {
        let input = lines(20_000);
        for writes in [1, 7, 5000] {
            let gz = framed(&input, writes);
            let members = members(&gz);
            assert!(members.len() > 4, "{} members", members.len());
            let mut total = 0;
            for m in &members {
                let mut one = Vec::new();
                flate2::read::GzDecoder::new(*m)
                    .read_to_end(&mut one)
                    .unwrap();
                assert_eq!(recorded_len(m), Some(one.len() as u32));
                assert_eq!(one.last(), Some(&b'\n'), "whole lines");
                total += one.len();
            }
            assert_eq!(total, input.len());
            let mut all = Vec::new();
            flate2::read::MultiGzDecoder::new(&gz[..])
                .read_to_end(&mut all)
                .unwrap();
            assert_eq!(all, input, "{writes} writes");
        }
    }

    #[test]
    fn a_line_longer_than_a_block_is_one_member_and_a_partial_last_line_is_kept() {
        let long = format!("{}\n", "y".repeat(BLOCK_BYTES * 2));
        let input = [b"a\n".as_slice(), long.as_bytes(), b"b\nno newline"].concat();
        let gz = framed(&input, 3);
        let mut all = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all, input);
        assert_eq!(members(&gz).len(), 2);
    }

    #[test]
    fn an_empty_input_is_one_empty_member() {
        let gz = framed(b"", 1);
        assert_eq!(members(&gz).len(), 1);
        let mut all = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut all)
            .unwrap();
        assert!(all.is_empty());
    }

    #[test]
    fn other_gzip_headers_are_not_taken_for_this_framing() {
        let mut plain = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        plain.write_all(b"x\n").unwrap();
        let plain = plain.finish().unwrap();
        assert_eq!(member_len(&plain), None);
        let mut h = header(100);
        assert_eq!(member_len(&h), Some(100));
        h[13] = b'D';
        assert_eq!(member_len(&h), None, "another subfield");
        assert_eq!(
            member_len(&header(HEADER_LEN as u32)),
            None,
            "too short to be a member"
        );
        assert_eq!(member_len(&header(100)[..19]), None);
    }
}
