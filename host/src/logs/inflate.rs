//! A rotated log file's gzip members, inflated. Members framed with their own length
//! (`metaclaude_formats::gzip_blocks`, what the log sink writes) are taken whole and each
//! inflated in one call of libdeflate, into the reader's buffer when it has room; anything
//! else (an older sink's single member, another tool's gzip) is streamed through flate2
//! from there on. Both check every member's CRC-32 and length.
//!
//! The file is untrusted (a plugin writes it): a member's stated lengths are checked
//! against each other and against [`MAX_MEMBER_BYTES`] before anything is allocated for
//! them, so a small file cannot make the reader allocate without bound.

use std::io::{self, Cursor, Read};

use flate2::read::MultiGzDecoder;
use metaclaude_formats::gzip_blocks::{member_len, recorded_len, HEADER_LEN};

/// The largest member, compressed or not, inflated whole; a larger one is streamed, with
/// the reader's bound on a line (`reader::MAX_LINE_BYTES`, the same, which the reader
/// checks).
pub const MAX_MEMBER_BYTES: usize = 256 << 20;

/// Deflate cannot expand its input more than this (a run of one byte: 258 bytes for about
/// a quarter of a byte): a member claiming more is damaged.
const MAX_RATIO: usize = 1032;

/// The length of the framed member whose header starts `header`, if [`Members`] takes it
/// whole (framed, and not longer than [`MAX_MEMBER_BYTES`]); `None` if it streams the file
/// from there.
pub fn framed_len(header: &[u8]) -> Option<usize> {
    member_len(header).filter(|&len| len <= MAX_MEMBER_BYTES)
}

/// Whether [`Members`] inflates a framed member of `len` bytes whose trailer records
/// `inflated` bytes whole, in one call; if not, it streams the file from that member on.
pub fn inflates_whole(len: usize, inflated: usize) -> bool {
    inflated <= MAX_MEMBER_BYTES && inflated <= len.saturating_mul(MAX_RATIO)
}

/// The inflated bytes of a gzip file's members, in order.
pub struct Members<R: Read> {
    state: State<R>,
    /// A whole member's compressed bytes, reused.
    member: Vec<u8>,
    /// An inflated member the caller's buffer had no room for, served from `at`.
    block: Vec<u8>,
    filled: usize,
    at: usize,
    inflater: libdeflater::Decompressor,
}

enum State<R: Read> {
    /// At a member's start, in framed members so far.
    Framed(R),
    /// From an unframed member on: the rest (the bytes already read of it, then the
    /// source), streamed.
    Streaming(Box<MultiGzDecoder<io::Chain<Cursor<Vec<u8>>, R>>>),
    Done,
}

impl<R: Read> Members<R> {
    /// The members of `source` (a gzip file, from its start).
    pub fn new(source: R) -> Members<R> {
        Members {
            state: State::Framed(source),
            member: Vec::new(),
            block: Vec::new(),
            filled: 0,
            at: 0,
            inflater: libdeflater::Decompressor::new(),
        }
    }

    /// Reads the next framed member whole, or switches to streaming from it.
    /// `Ok(None)` at the file's end.
    fn next_member(&mut self) -> io::Result<Option<usize>> {
        let State::Framed(source) = &mut self.state else {
            return Ok(None);
        };
        let mut header = [0u8; HEADER_LEN];
        let got = read_full(source, &mut header)?;
        if got == 0 {
            self.state = State::Done;
            return Ok(None);
        }
        let Some(len) = framed_len(&header[..got]) else {
            self.stream_from(header[..got].to_vec());
            return Ok(None);
        };
        self.member.clear();
        self.member.extend_from_slice(&header);
        let rest = (len - HEADER_LEN) as u64;
        let read = source.by_ref().take(rest).read_to_end(&mut self.member)?;
        if read as u64 != rest {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a gzip member cut short",
            ));
        }
        Ok(Some(len))
    }

    /// Streams the rest of the file through flate2, starting with `start` (bytes already
    /// read of the first member not framed).
    fn stream_from(&mut self, start: Vec<u8>) {
        if let State::Framed(source) = std::mem::replace(&mut self.state, State::Done) {
            let decoder = MultiGzDecoder::new(Cursor::new(start).chain(source));
            self.state = State::Streaming(Box::new(decoder));
        }
    }

    /// Inflates the member read (`self.member`) into `out`, which has room for exactly
    /// the length its trailer records.
    fn inflate(&mut self, out_len: usize, into_block: bool, out: &mut [u8]) -> io::Result<()> {
        let out = if into_block {
            if self.block.len() < out_len {
                self.block.resize(out_len, 0);
            }
            &mut self.block[..out_len]
        } else {
            &mut out[..out_len]
        };
        let got = self
            .inflater
            .gzip_decompress(&self.member, out)
            .map_err(|e| {
                let why = match e {
                    libdeflater::DecompressionError::InsufficientSpace => {
                        "a gzip member inflates past the length its trailer records"
                    }
                    libdeflater::DecompressionError::BadData => {
                        "a gzip member's data or checksum is damaged"
                    }
                };
                io::Error::new(io::ErrorKind::InvalidData, why)
            })?;
        if got != out_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a gzip member's length does not match its trailer",
            ));
        }
        Ok(())
    }
}

impl<R: Read> Read for Members<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.at < self.filled {
                let n = buf.len().min(self.filled - self.at);
                buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            if let State::Streaming(decoder) = &mut self.state {
                return decoder.read(buf);
            }
            let Some(len) = self.next_member()? else {
                if matches!(self.state, State::Done) {
                    return Ok(0);
                }
                continue; // streaming from here
            };
            let inflated = recorded_len(&self.member[..len]).unwrap_or(0) as usize;
            if !inflates_whole(len, inflated) {
                let whole = std::mem::take(&mut self.member);
                self.stream_from(whole);
                continue;
            }
            if inflated == 0 {
                // An empty member still has its CRC and length checked.
                self.inflate(0, false, buf)?;
                continue;
            }
            if buf.len() >= inflated {
                self.inflate(inflated, false, buf)?;
                return Ok(inflated);
            }
            self.inflate(inflated, true, buf)?;
            self.filled = inflated;
            self.at = 0;
        }
    }
}

/// Reads until `buf` is full or the source ends; the bytes read.
pub fn read_full(source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match source.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use metaclaude_formats::gzip_blocks::{BlockWriter, BLOCK_BYTES};

    use super::*;

    fn lines(n: usize, tag: &str) -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                format!("{{\"{tag}\":{i},\"pad\":\"{}\"}}\n", "z".repeat(i % 90)).into_bytes()
            })
            .collect()
    }

    fn framed(input: &[u8]) -> Vec<u8> {
        let mut w = BlockWriter::new(Vec::new(), 1);
        w.write_all(input).unwrap();
        w.finish().unwrap()
    }

    fn plain(input: &[u8]) -> Vec<u8> {
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        w.write_all(input).unwrap();
        w.finish().unwrap()
    }

    /// What `Members` gives reading `gz` `chunk` bytes at a time, and how it ended.
    fn read_in(gz: &[u8], chunk: usize) -> (Vec<u8>, Option<io::Error>) {
        let mut r = Members::new(gz);
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    /// The offsets at which `gz`'s framed members start.
    fn starts(gz: &[u8]) -> Vec<usize> {
        let mut at = 0;
        let mut out = Vec::new();
        while let Some(len) = member_len(&gz[at..]) {
            out.push(at);
            at += len;
        }
        out
    }

    #[test]
    fn framed_plain_and_mixed_files_read_as_any_gzip_reader_reads_them() {
        let (a, b, c) = (lines(9000, "a"), lines(3000, "b"), lines(8000, "c"));
        let mixed = [framed(&a), plain(&b), framed(&c)].concat();
        let cases = [
            (framed(&a), a.clone()),
            (plain(&a), a.clone()),
            (mixed, [a.clone(), b, c].concat()),
            (framed(b""), Vec::new()),
        ];
        for (gz, want) in cases {
            for chunk in [1 << 20, BLOCK_BYTES + 1, 1000, 7] {
                let (got, err) = read_in(&gz, chunk);
                assert!(err.is_none(), "{err:?}");
                assert!(got == want, "{} bytes read in {chunk}s", got.len());
            }
        }
    }

    /// Never a byte that is not the file's: damage is an error after what the members
    /// before it hold (a wrong length in a framing whose data is whole may also be read
    /// whole, by the stream).
    #[test]
    fn damage_is_an_error_after_the_members_before_it() {
        let a = lines(20_000, "a");
        let good = framed(&a);
        let at = starts(&good);
        assert!(at.len() >= 4, "{} members", at.len());
        // What the first two members hold.
        let first_two = {
            let mut r = MultiGzDecoder::new(&good[..at[2]]);
            let mut v = Vec::new();
            r.read_to_end(&mut v).unwrap();
            v
        };
        let mut damaged = Vec::new();
        // A byte of the third member's deflate stream.
        let mut d = good.clone();
        d[at[2] + HEADER_LEN + 100] ^= 0x55;
        damaged.push(("corrupt data", d));
        // Cut inside the third member.
        damaged.push(("cut short", good[..at[2] + 50].to_vec()));
        // The third member's stated length one byte long, then one byte short.
        for delta in [1i64, -1] {
            let mut d = good.clone();
            let len = member_len(&d[at[2]..]).unwrap() as i64 + delta;
            d[at[2] + 16..at[2] + 20].copy_from_slice(&(len as u32).to_le_bytes());
            damaged.push((
                if delta > 0 {
                    "a length too long"
                } else {
                    "a length too short"
                },
                d,
            ));
        }
        // The third member's length covering the fourth too: its trailer is the fourth's.
        let mut d = good.clone();
        let len = (at[3] - at[2]) + member_len(&d[at[3]..]).unwrap();
        d[at[2] + 16..at[2] + 20].copy_from_slice(&(len as u32).to_le_bytes());
        damaged.push(("a length over two members", d));
        // The third member's trailer claiming 200 MiB: refused before any allocation.
        let mut d = good.clone();
        let end = at[3];
        d[end - 4..end].copy_from_slice(&(200u32 << 20).to_le_bytes());
        damaged.push(("an impossible inflated length", d));
        for (what, gz) in damaged {
            for chunk in [1 << 20, 1000] {
                let (got, err) = read_in(&gz, chunk);
                // Data that is still whole behind a wrong framing is read by the stream.
                let must_fail = !what.starts_with("a length");
                assert!(
                    err.is_some() || (!must_fail && got == a),
                    "{what}: no error, {} of {} bytes",
                    got.len(),
                    a.len()
                );
                assert!(
                    got.starts_with(&first_two) && a.starts_with(&got),
                    "{what}: {} bytes before the error, {} in the good members",
                    got.len(),
                    first_two.len()
                );
            }
        }
    }
}
