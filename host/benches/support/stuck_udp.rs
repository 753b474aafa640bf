//! A UDP receiver that never reads, its receive buffer already full: a StatsD daemon too
//! slow to keep up, which the kernel drops datagrams for. Shared by the `default_set` bench
//! and `tests/cli/statsd.rs` (by `#[path]`).

use std::net::UdpSocket;
use std::os::fd::AsRawFd;

/// The receiver, on a loopback port of its own.
pub fn stuck_receiver() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let size: libc::c_int = 1;
    // SAFETY: setsockopt reads `size` (a live c_int of the length given) and nothing else.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let filler = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..64 {
        let _ = filler.send_to(&[b'x'; 1400], socket.local_addr().unwrap());
    }
    socket
}
