//! Bounded capture of a script's stdout or stderr.
//!
//! A script may print gigabytes; we keep the first and the last half of the bound (the
//! head says what started, the tail holds the traceback) and count what was dropped, while
//! still reading everything so the script never blocks on a full pipe.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use tokio::io::AsyncReadExt;

#[derive(Debug, Default, Clone)]
pub struct Captured {
    pub text: String,
    pub truncated: bool,
}

struct Bounded {
    limit: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    dropped: u64,
}

impl Bounded {
    fn new(limit: usize) -> Self {
        Bounded {
            limit,
            head: Vec::new(),
            tail: VecDeque::new(),
            dropped: 0,
        }
    }

    fn push(&mut self, mut data: &[u8]) {
        let head_room = (self.limit / 2).saturating_sub(self.head.len());
        if self.dropped == 0 && self.tail.is_empty() && self.head.len() + data.len() <= self.limit {
            self.head.extend_from_slice(data);
            return;
        }
        if head_room > 0 {
            let take = head_room.min(data.len());
            self.head.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        // Anything already in head beyond its half moves to the tail.
        if self.head.len() > self.limit / 2 {
            let extra: Vec<u8> = self.head.drain(self.limit / 2..).collect();
            self.tail.extend(extra);
        }
        self.tail.extend(data);
        let tail_cap = self.limit - self.limit / 2;
        while self.tail.len() > tail_cap {
            let excess = self.tail.len() - tail_cap;
            self.tail.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    fn finish(self) -> Captured {
        let mut bytes = self.head;
        if self.dropped > 0 {
            bytes.extend_from_slice(
                format!("\n[... {} bytes truncated ...]\n", self.dropped).as_bytes(),
            );
        }
        bytes.extend(self.tail);
        Captured {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            truncated: self.dropped > 0,
        }
    }
}

/// Reads `fd` to EOF, or until `stop` turns true, keeping at most `limit` bytes.
pub async fn capture(
    fd: OwnedFd,
    limit: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Captured {
    let mut out = Bounded::new(limit.max(2));
    let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
        return out.finish();
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            read = pipe.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => out.push(&buf[..n]),
            },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_is_kept_whole() {
        let mut b = Bounded::new(100);
        b.push(b"hello ");
        b.push(b"world");
        let c = b.finish();
        assert_eq!(c.text, "hello world");
        assert!(!c.truncated);
    }

    #[test]
    fn large_output_keeps_head_and_tail() {
        let mut b = Bounded::new(10);
        for chunk in [b"abcdefgh".as_slice(), b"ijklmnop", b"qrstuvwxyz"] {
            b.push(chunk);
        }
        let c = b.finish();
        assert!(c.truncated);
        assert!(c.text.starts_with("abcde"), "{}", c.text);
        assert!(c.text.ends_with("vwxyz"), "{}", c.text);
        assert!(c.text.contains("16 bytes truncated"), "{}", c.text);
    }
}
