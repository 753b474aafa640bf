//! A log file cut into pieces that threads read side by side, so that `metaclaude logs
//! --stats` keeps every core busy to the end however the log's bytes are spread over its
//! files (one large live file, or a few rotated ones).
//!
//! A piece starts where a line starts, and reading the pieces one after the other reads
//! exactly what reading the whole file reads:
//!
//! * A rotated file is cut only between framed gzip members that [`Members`] takes whole
//!   (what the log sink writes: [`inflate::framed_len`] and [`inflate::inflates_whole`]
//!   decide, for the cut and for the reader alike). Where the file stops being so (another
//!   tool's gzip, a member cut short, a damaged header), the rest is one piece, which the
//!   reader streams from there as it would have. A member of whole lines ends in a
//!   newline; a piece whose last line is incomplete anyway (a hostile writer's member) is
//!   met by the caller, which reads the file again from that piece on in one go.
//! * A plain file is cut after a newline.
//!
//! Pieces are read through one open file with positioned reads ([`At`]), so every piece
//! reads the same file even if its name is replaced meanwhile (a rotation).
//!
//! [`Members`]: super::inflate::Members

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use metaclaude_formats::gzip_blocks::{recorded_len, HEADER_LEN};

use super::inflate;

/// About how many bytes a piece holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Compressed bytes of a rotated file.
    pub gzip: u64,
    /// Bytes of a plain file.
    pub plain: u64,
}

impl Sizes {
    /// What the query cuts: pieces of some 12 MiB of lines, so that the threads' last
    /// pieces end close together and a piece's buffers cost little beside its reading.
    pub const DEFAULT: Sizes = Sizes {
        gzip: 2 << 20,
        plain: 12 << 20,
    };

    /// Every file whole.
    pub const WHOLE: Sizes = Sizes {
        gzip: u64::MAX,
        plain: u64::MAX,
    };
}

/// How much of a plain file is read at a time to find the newline after a cut.
const NEWLINE_WINDOW: usize = 64 << 10;

/// Bytes `start..end` of a file (to the end as it is when read, for `end` `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// The first byte's offset: the file's start, a framed member's or a line's.
    pub start: u64,
    /// The offset after the last byte; `None` for the last piece.
    pub end: Option<u64>,
}

impl Piece {
    /// The whole file.
    pub const WHOLE: Piece = Piece {
        start: 0,
        end: None,
    };

    /// The piece's bytes in a file of `size` bytes.
    pub fn len(&self, size: u64) -> u64 {
        self.end.unwrap_or(size).saturating_sub(self.start)
    }

    /// Whether it is empty in a file of `size` bytes.
    pub fn is_empty(&self, size: u64) -> bool {
        self.len(size) == 0
    }

    /// Reads the piece of `file`.
    pub fn of(self, file: &File) -> At<'_> {
        At {
            file,
            pos: self.start,
            end: self.end.unwrap_or(u64::MAX),
        }
    }
}

/// A piece of an open file, read with positioned reads (the file's own offset is not used,
/// so pieces of one file are read by several threads at once).
pub struct At<'f> {
    file: &'f File,
    pos: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = usize::try_from(self.end - self.pos).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Cuts `file` (`size` bytes; gzip members or plain lines) into pieces of about `sizes`,
/// in order; always at least one.
pub fn cut(file: &File, size: u64, gzip: bool, sizes: Sizes) -> io::Result<Vec<Piece>> {
    if gzip {
        cut_members(file, size, sizes.gzip)
    } else {
        cut_lines(file, size, sizes.plain)
    }
}

/// Cuts between framed members taken whole, at most every `every` bytes; from the first
/// member that is not such, the rest is the last piece.
fn cut_members(file: &File, size: u64, every: u64) -> io::Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut at = 0;
    // The previous member's trailer's last 4 bytes (its length), then a member's header:
    // one read per member.
    let mut buf = [0u8; 4 + HEADER_LEN];
    let mut header_read = false;
    while at < size {
        if !header_read && read_full_at(file, &mut buf[4..], at)? < HEADER_LEN {
            break;
        }
        let Some(len) = inflate::framed_len(&buf[4..]) else {
            break;
        };
        let end = at + len as u64;
        if end > size {
            break;
        }
        let got = read_full_at(file, &mut buf, end - 4)?;
        let inflated = recorded_len(&buf[..4]).unwrap_or(0) as usize;
        if got < 4 || !inflate::inflates_whole(len, inflated) {
            break;
        }
        header_read = got == buf.len();
        at = end;
        if at - start >= every && at < size {
            pieces.push(Piece {
                start,
                end: Some(at),
            });
            start = at;
        }
    }
    pieces.push(Piece { start, end: None });
    Ok(pieces)
}

/// Cuts after the first newline at or after every `every` bytes (each byte is read at
/// most once, however long the lines).
fn cut_lines(file: &File, size: u64, every: u64) -> io::Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut window = vec![0u8; NEWLINE_WINDOW];
    let mut at = every;
    while at < size {
        let got = read_full_at(file, &mut window, at)?;
        if got == 0 {
            break;
        }
        let Some(nl) = memchr::memchr(b'\n', &window[..got]) else {
            at += got as u64;
            continue;
        };
        let cut = at + nl as u64 + 1;
        if cut >= size {
            break;
        }
        pieces.push(Piece {
            start,
            end: Some(cut),
        });
        start = cut;
        at = cut.saturating_add(every);
    }
    pieces.push(Piece { start, end: None });
    Ok(pieces)
}

/// Reads from `offset` until `buf` is full or the file ends; the bytes read.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut at = Piece {
        start: offset,
        end: None,
    }
    .of(file);
    inflate::read_full(&mut at, buf)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use metaclaude_formats::gzip_blocks::{BlockWriter, BLOCK_BYTES};

    use super::*;

    fn lines(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("{{\"n\":{i},\"pad\":\"{:x}\"}}\n", i * 7919).into_bytes())
            .collect()
    }

    fn file_of(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    fn framed(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = BlockWriter::new(&mut out, 1);
        w.write_all(data).unwrap();
        w.finish().unwrap();
        out
    }

    fn read_all(file: &File, piece: Piece, gzip: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if gzip {
            inflate::Members::new(piece.of(file))
                .read_to_end(&mut out)
                .unwrap();
        } else {
            piece.of(file).read_to_end(&mut out).unwrap();
        }
        out
    }

    /// Checks that `pieces` cover `size` bytes in order, the last open-ended.
    fn assert_tiled(pieces: &[Piece], size: u64) {
        let mut at = 0;
        for (i, p) in pieces.iter().enumerate() {
            assert_eq!(p.start, at, "{pieces:?}");
            match p.end {
                Some(end) => {
                    assert!(
                        i + 1 < pieces.len() && end > p.start && end < size,
                        "{pieces:?}"
                    );
                    at = end;
                }
                None => assert_eq!(i + 1, pieces.len(), "{pieces:?}"),
            }
        }
    }

    #[test]
    fn a_framed_file_is_cut_between_members_each_piece_whole_lines() {
        let data = lines(60_000);
        assert!(data.len() > 5 * BLOCK_BYTES);
        let gz = framed(&data);
        let file = file_of(&gz);
        let size = gz.len() as u64;
        for every in [1, 1000, size / 3, size] {
            let pieces = cut_members(&file, size, every).unwrap();
            assert_tiled(&pieces, size);
            let mut joined = Vec::new();
            for p in &pieces {
                let part = read_all(&file, *p, true);
                assert!(part.is_empty() || part.ends_with(b"\n"));
                joined.extend(part);
            }
            assert_eq!(joined, data, "cut every {every} bytes: {pieces:?}");
            if every == 1 {
                assert!(pieces.len() > 5, "{pieces:?}");
            }
        }
    }

    #[test]
    fn a_file_not_framed_from_some_member_on_is_one_piece_from_there() {
        let data = lines(40_000);
        let mut gz = framed(&data[..data.len() / 2]);
        let framed_end = gz.len() as u64;
        let mut enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
        enc.write_all(&data[data.len() / 2..]).unwrap();
        enc.finish().unwrap();
        let file = file_of(&gz);
        let pieces = cut_members(&file, gz.len() as u64, 1).unwrap();
        assert_tiled(&pieces, gz.len() as u64);
        assert_eq!(pieces.last().unwrap().start, framed_end);
        // A plain gzip file: one piece.
        let mut plain = Vec::new();
        let mut enc = flate2::write::GzEncoder::new(&mut plain, flate2::Compression::fast());
        enc.write_all(&data).unwrap();
        enc.finish().unwrap();
        let pieces = cut_members(&file_of(&plain), plain.len() as u64, 1).unwrap();
        assert_eq!(pieces, [Piece::WHOLE]);
    }

    #[test]
    fn a_damaged_or_short_member_ends_the_cutting_at_its_start() {
        let data = lines(40_000);
        let gz = framed(&data);
        let size = gz.len() as u64;
        let whole = cut_members(&file_of(&gz), size, 1).unwrap();
        let third = whole[3].start as usize;
        // A member's stated length one byte too long (its trailer is then read one byte
        // off), then a file cut short inside a member.
        let mut longer = gz.clone();
        let at = third + 16;
        let len = u32::from_le_bytes(longer[at..at + 4].try_into().unwrap());
        longer[at..at + 4].copy_from_slice(&(len + 1).to_le_bytes());
        let pieces = cut_members(&file_of(&longer), size, 1).unwrap();
        assert_eq!(pieces.last().unwrap().start as usize, third);
        let short = &gz[..third + 100];
        let pieces = cut_members(&file_of(short), short.len() as u64, 1).unwrap();
        assert_eq!(pieces.last().unwrap().start as usize, third);
        // A trailer claiming more than deflate can make: streamed from its member.
        let mut swollen = gz.clone();
        let next = whole[2].start as usize;
        swollen[next - 4..next].copy_from_slice(&u32::MAX.to_le_bytes());
        let pieces = cut_members(&file_of(&swollen), size, 1).unwrap();
        assert_eq!(pieces.last().unwrap().start, whole[1].start);
    }

    #[test]
    fn a_plain_file_is_cut_after_newlines() {
        let data = lines(20_000);
        let file = file_of(&data);
        let size = data.len() as u64;
        for every in [1, 100, 4096, size / 2, size, size * 2] {
            let pieces = cut_lines(&file, size, every).unwrap();
            assert_tiled(&pieces, size);
            let mut joined = Vec::new();
            for p in &pieces {
                let part = read_all(&file, *p, false);
                assert!(part.ends_with(b"\n"), "{every}");
                joined.extend(part);
            }
            assert_eq!(joined, data);
        }
        // A line longer than the pieces: the cut is after it.
        let mut long = vec![b'x'; 3 * NEWLINE_WINDOW];
        long.extend_from_slice(b"\nend\n");
        let pieces = cut_lines(&file_of(&long), long.len() as u64, 10).unwrap();
        assert_tiled(&pieces, long.len() as u64);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        assert_eq!(pieces[0].end, Some(3 * NEWLINE_WINDOW as u64 + 1));
    }
}
