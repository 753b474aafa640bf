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

/// One of the script's output pipes, read by the task that waits for the script (no
/// task of its own: a cross-thread wake-up per execution costs more than the read).
pub struct OutputPipe {
    pipe: Option<tokio::net::unix::pipe::Receiver>,
    out: Bounded,
    buf: Vec<u8>,
}

impl OutputPipe {
    pub fn new(fd: OwnedFd, limit: usize) -> Self {
        OutputPipe {
            pipe: tokio::net::unix::pipe::Receiver::from_owned_fd(fd).ok(),
            out: Bounded::new(limit.max(2)),
            buf: vec![0u8; 32 * 1024],
        }
    }

    pub fn is_open(&self) -> bool {
        self.pipe.is_some()
    }

    /// Waits for data and keeps it; closes the pipe at end of file (or on error).
    pub async fn read_once(&mut self) {
        let Some(pipe) = self.pipe.as_mut() else {
            return std::future::pending().await;
        };
        match pipe.read(&mut self.buf).await {
            Ok(0) | Err(_) => self.pipe = None,
            Ok(n) => self.out.push(&self.buf[..n]),
        }
    }

    pub fn finish(self) -> Captured {
        self.out.finish()
    }
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
