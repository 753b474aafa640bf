//! A plugin's stderr: the last bytes it wrote, kept for the report of its next trap (a
//! Rust panic message, a Python traceback).
//!
//! It never refuses a write. wasmtime's `MemoryOutputPipe` fails once its capacity is
//! used up, and a failed write traps the instance: a plugin that printed a few hundred
//! KiB of warnings over its life would be killed for it. Here old bytes make room for
//! new ones instead.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The last `capacity` bytes written; clones share the buffer. With an echo
/// (`capabilities.stderr`), each complete line also goes to the host's stderr.
#[derive(Clone)]
pub struct StderrTail {
    buf: Arc<Mutex<VecDeque<u8>>>,
    capacity: usize,
    echo: Option<Arc<Mutex<Vec<u8>>>>,
}

/// A line longer than this is echoed in pieces.
const MAX_ECHO_LINE: usize = 8 * 1024;

/// A line of a plugin's stderr as the host prints it: what a plugin writes is untrusted
/// (it may carry a script's text), so control characters and escape sequences, which
/// could move a terminal's cursor or rewrite its title, are dropped; tabs stay.
pub fn printable(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .chars()
        .filter(|c| *c == '\t' || !c.is_control())
        .collect()
}

impl StderrTail {
    pub fn new(capacity: usize) -> StderrTail {
        StderrTail {
            buf: Arc::new(Mutex::new(VecDeque::with_capacity(capacity.min(64 * 1024)))),
            capacity,
            echo: None,
        }
    }

    /// The same, also printing each line on the host's stderr.
    pub fn echoing(capacity: usize) -> StderrTail {
        StderrTail {
            echo: Some(Arc::new(Mutex::new(Vec::new()))),
            ..StderrTail::new(capacity)
        }
    }

    /// Prints the complete lines of `bytes` (with what came before them).
    fn echo(&self, bytes: &[u8]) {
        use std::io::Write;
        let Some(pending) = &self.echo else { return };
        let mut pending = pending.lock().unwrap();
        pending.extend_from_slice(bytes);
        let mut out = std::io::stderr().lock();
        while let Some(end) = pending
            .iter()
            .position(|b| *b == b'\n')
            .or((pending.len() >= MAX_ECHO_LINE).then_some(MAX_ECHO_LINE - 1))
        {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let _ = writeln!(out, "{}", printable(&line));
        }
    }

    /// The bytes kept, oldest first.
    pub fn contents(&self) -> Vec<u8> {
        self.buf.lock().unwrap().iter().copied().collect()
    }

    fn push(&self, bytes: &[u8]) {
        self.echo(bytes);
        let mut buf = self.buf.lock().unwrap();
        let bytes = &bytes[bytes.len().saturating_sub(self.capacity)..];
        let overflow = (buf.len() + bytes.len()).saturating_sub(self.capacity);
        buf.drain(..overflow);
        buf.extend(bytes);
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for StderrTail {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready; a larger write is simply split by the guest.
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrTail {
    async fn ready(&mut self) {}
}

impl AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_lines_lose_control_characters() {
        assert_eq!(
            printable(b"ALERT \x1b]0;pwned\x07[warning]\tx\r\n"),
            "ALERT ]0;pwned[warning]\tx"
        );
        assert_eq!(printable("caf\u{e9} \u{9b}31m".as_bytes()), "caf\u{e9} 31m");
    }

    #[test]
    fn keeps_the_last_bytes_and_never_refuses_a_write() {
        let tail = StderrTail::new(10);
        let mut stream = tail.p2_stream();
        for i in 0..100_000u32 {
            stream
                .write(Bytes::from(format!("{}", i % 10)))
                .expect("never refused");
        }
        assert_eq!(tail.contents(), b"0123456789");
        stream
            .write(Bytes::from_static(b"a long line longer than ten"))
            .unwrap();
        assert_eq!(tail.contents(), b"er than ten"[1..].to_vec());
        assert!(stream.check_write().unwrap() > 0);
    }
}
