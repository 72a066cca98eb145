//! Minimal `NETLINK_SOCK_DIAG` client (the interface `ss` uses), built on
//! `libc` and std only.
//!
//! Why netlink rather than `/proc/net/{tcp,tcp6,unix}`: the text files lack
//! most of what tells us why a process is stuck on a socket. `/proc/net/unix`
//! has no peer inode (so a socketpair or a connected stream cannot be linked
//! to the process at the other end), no queue lengths and no socket memory
//! (`ss -xm`'s `skmem:(r..,rb..,t..,tb..)`), so "the send buffer is full
//! because the peer stops reading" cannot be seen. For TCP, the same data as
//! `ss -tim` comes in binary, without parsing hex text, for both address
//! families: state, addresses, Recv-Q/Send-Q, owner uid, inode, and what
//! /proc/net/tcp lacks: `tcp_info` (when data was last sent and received,
//! retransmissions, RTT) and socket memory (a full send buffer). UDP as
//! `ss -ua`.
//!
//! Each public function opens one netlink socket, sends its requests (one
//! dump for TCP's two address families, one per family for UDP, one dump or
//! one question per socket for unix), reads the replies (a dump's multipart
//! reply up to `NLMSG_DONE`), and closes the socket. A caller is expected to dump once per run and then join the
//! results with the socket inodes it found under `/proc/<pid>/fd`.
//!
//! All reply parsing is done with explicit, bounds-checked slice reads
//! (`u32::from_ne_bytes` over `get(..)` ranges): a short or malformed reply
//! is an [`io::ErrorKind::InvalidData`] error, never a panic and never an
//! unaligned or out-of-bounds read.
//!
//! Here: the facts a dump yields, the public dumps, and the netlink socket
//! with its deadlines. [`wire`]: the requests, and the walking and parsing
//! of replies. `tests` (crafted, truncated and mutated replies) and
//! `live_tests` (real sockets against the running kernel) beside them.

mod wire;

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};
use wire::{inet_diag_request, invalid, parse_inet_messages, parse_unix_messages, Progress};
use wire::{tcp_diag_request_both_families, unix_diag_request, unix_query_request};
use wire::{AF_INET, AF_INET6, ALL_STATES, IPPROTO_TCP, IPPROTO_UDP, TCP_EXTENSIONS, TCP_STATES_WITH_INODES};

/// One TCP or UDP socket, as `inet_diag` reports it (`ss -tan`, `ss -uan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InetDiag {
    /// Socket inode (matches `socket:[N]` under `/proc/<pid>/fd`); 0 for
    /// TIME_WAIT and SYN_RECV mini-sockets, which have no inode (and which
    /// [`dump_tcp`] does not ask for).
    pub inode: u64,
    pub local: SocketAddr,
    /// The peer; the unspecified address and port 0 for a listener or an
    /// unconnected UDP socket.
    pub remote: SocketAddr,
    /// Kernel `TCP_*` state: 1 ESTABLISHED, 2 SYN_SENT, 3 SYN_RECV,
    /// 4 FIN_WAIT1, 5 FIN_WAIT2, 6 TIME_WAIT, 7 CLOSE, 8 CLOSE_WAIT,
    /// 9 LAST_ACK, 10 LISTEN, 11 CLOSING, 12 NEW_SYN_RECV. UDP: 1 connected,
    /// 7 not.
    pub state: u8,
    /// TCP: unread bytes (Recv-Q); for LISTEN the current accept backlog.
    /// UDP: bytes of the datagrams queued for reading.
    pub rx_queue: u32,
    /// TCP: unacknowledged bytes (Send-Q); for LISTEN the maximum backlog.
    /// UDP: send-side memory in flight (`sk_wmem_alloc`).
    pub tx_queue: u32,
    /// Owner uid, in the caller's user namespace.
    pub uid: u32,
    /// `INET_DIAG_INFO` (`struct tcp_info`, `ss -ti`): TCP full sockets
    /// only (no TIME_WAIT or NEW_SYN_RECV mini-socket has one), never UDP.
    pub tcp_info: Option<TcpInfo>,
    /// `INET_DIAG_SKMEMINFO` (`ss -tm` `skmem:`): TCP full sockets only.
    pub meminfo: Option<SkMeminfo>,
}

/// The fields of `struct tcp_info` (include/uapi/linux/tcp.h) whystuck
/// uses, raw, as the kernel filled them in. The kernel only ever appends to
/// the struct and sends its own size of it: each field is `None` when the
/// struct sent is too short to hold it (an older kernel). What a field means
/// depends on the state: before a connection is established the times are
/// meaningless, and for a listener `unacked` is its accept queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpInfo {
    /// `tcpi_retransmits`: retransmissions (timeouts) of the oldest
    /// unacknowledged segment, reset when it is acknowledged; SYN
    /// retransmissions in SYN_SENT.
    pub retransmits: Option<u8>,
    /// `tcpi_rto`: the retransmission timeout, in microseconds.
    pub rto_us: Option<u32>,
    /// `tcpi_unacked`: segments sent and not yet acknowledged (packets, not
    /// bytes: Send-Q has the bytes).
    pub unacked: Option<u32>,
    /// `tcpi_last_data_sent`: milliseconds since data was last sent.
    pub last_data_sent_ms: Option<u32>,
    /// `tcpi_last_data_recv`: milliseconds since data was last received
    /// (since the connection was established, when none ever was).
    pub last_data_recv_ms: Option<u32>,
    /// `tcpi_last_ack_recv`: milliseconds since an ACK was last received.
    pub last_ack_recv_ms: Option<u32>,
    /// `tcpi_rtt`: smoothed round-trip time, in microseconds.
    pub rtt_us: Option<u32>,
    /// `tcpi_total_retrans`: segments retransmitted over the connection's life.
    pub total_retrans: Option<u32>,
}

/// One unix socket, as `unix_diag` reports it (`ss -xm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixDiag {
    pub inode: u64,
    /// `SOCK_STREAM` = 1, `SOCK_DGRAM` = 2, `SOCK_SEQPACKET` = 5.
    pub sock_type: u8,
    /// `TCP_*` values as unix_diag reports them: 1 ESTABLISHED, 7 CLOSE,
    /// 10 LISTEN.
    pub state: u8,
    /// Bound address (`UNIX_DIAG_NAME`), `None` when unbound. Abstract names
    /// keep their leading NUL byte and are otherwise untouched. For pathname
    /// sockets the kernel includes the C string terminator; it is removed here
    /// (the bytes end at the first NUL), so the value is the bare path.
    pub path: Option<Vec<u8>>,
    /// Inode of the connected peer (`UNIX_DIAG_PEER`); `None` when the kernel
    /// reports no peer. `Some(0)` means a peer existed but has been released
    /// (closed) while this end is still open.
    pub peer_inode: Option<u64>,
    /// `UNIX_DIAG_RQLEN`. Stream/seqpacket: bytes queued for reading here.
    /// Dgram: size of the first queued datagram. LISTEN: pending connections.
    pub rqueue: Option<u32>,
    /// `UNIX_DIAG_RQLEN`. Not LISTEN: bytes of this socket's send-side memory
    /// still in flight (`sk_wmem_alloc`, skb truesize, not payload). LISTEN:
    /// maximum backlog.
    pub wqueue: Option<u32>,
    /// `UNIX_DIAG_MEMINFO` (`ss -xm` `skmem:`).
    pub meminfo: Option<SkMeminfo>,
}

/// `SK_MEMINFO_*` values (`ss -m` prints them as
/// `skmem:(r,rb,t,tb,f,w,o,bl,d)`), the same for unix and TCP sockets. The
/// first four are always sent; a later one a kernel does not send is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkMeminfo {
    pub rmem_alloc: u32,
    pub rcvbuf: u32,
    /// Send-side memory in flight (skb truesize).
    pub wmem_alloc: u32,
    pub sndbuf: u32,
    pub fwd_alloc: Option<u32>,
    /// Send-side memory queued, sent or not (TCP: a send waits while it is
    /// at or above `sndbuf`).
    pub wmem_queued: Option<u32>,
    pub optmem: Option<u32>,
    pub backlog: Option<u32>,
    pub drops: Option<u32>,
}

const NETLINK_SOCK_DIAG: libc::c_int = 4;

/// Receive buffer size. The kernel caps a dump skb at
/// `SKB_WITH_OVERHEAD(32768)`, so 32 KiB always holds one datagram; a larger
/// datagram is still detected (MSG_TRUNC) and reported, not misparsed.
const RECV_BUF_LEN: usize = 32 * 1024;

// ---------------------------------------------------------------------------
// Public entry points.

/// Dump the TCP sockets (AF_INET and AF_INET6) of the caller's network
/// namespace that an fd can hold (every state but the TIME_WAIT and
/// NEW_SYN_RECV mini-sockets), each with its `tcp_info` and socket memory.
///
/// Never blocks longer than `timeout` in total; on expiry returns
/// [`io::ErrorKind::TimedOut`]. A kernel without IPv6 support yields only the
/// IPv4 sockets.
///
/// Both families come from one request (the older `inet_diag_req` takes
/// `AF_UNSPEC`): one walk of the kernel's connection tables, which are as
/// large as the host's memory makes them whatever they hold, instead of one
/// per family. A kernel that refuses it is asked once per family.
pub fn dump_tcp(timeout: Duration) -> io::Result<Vec<InetDiag>> {
    let mut conn = DiagSocket::open(timeout)?;
    let mut out = Vec::new();
    let request = tcp_diag_request_both_families(TCP_EXTENSIONS, TCP_STATES_WITH_INODES, 1);
    match conn.dump(&request, parse_inet_messages, &mut |s| out.push(s)) {
        Ok(()) => Ok(out),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT | libc::EOPNOTSUPP)) => {
            dump_inet(conn, IPPROTO_TCP, TCP_EXTENSIONS, TCP_STATES_WITH_INODES)
        }
        Err(e) => Err(e),
    }
}

/// Dump all UDP sockets (AF_INET and AF_INET6) of the caller's network
/// namespace. As [`dump_tcp`]; a kernel without UDP diag support (the
/// `udp_diag` module) fails with `ENOENT`.
pub fn dump_udp(timeout: Duration) -> io::Result<Vec<InetDiag>> {
    dump_inet(DiagSocket::open(timeout)?, IPPROTO_UDP, 0, ALL_STATES)
}

/// One request per address family on one socket.
fn dump_inet(mut conn: DiagSocket, protocol: u8, extensions: u8, states: u32) -> io::Result<Vec<InetDiag>> {
    let mut out = Vec::new();
    let mut push = |s| out.push(s);
    let request = |family, seq| inet_diag_request(family, protocol, extensions, states, seq);
    conn.dump(&request(AF_INET, 2), parse_inet_messages, &mut push)?;
    match conn.dump(&request(AF_INET6, 3), parse_inet_messages, &mut push) {
        Ok(()) => {}
        // No inet6 diag handler (IPv6 compiled out / module not loadable).
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EAFNOSUPPORT)) => {}
        Err(e) => return Err(e),
    }
    Ok(out)
}

/// Dump all unix sockets of the caller's network namespace with
/// `UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_MEMINFO`,
/// handing each to `each` as it is parsed: a host's tens of thousands of
/// sockets are never all held, only what the caller keeps.
///
/// Never blocks longer than `timeout` in total; on expiry returns
/// [`io::ErrorKind::TimedOut`].
pub fn dump_unix(timeout: Duration, each: &mut dyn FnMut(UnixDiag)) -> io::Result<()> {
    let mut conn = DiagSocket::open(timeout)?;
    conn.dump(&unix_diag_request(1), parse_unix_messages, each)
}

/// The unix sockets among `inodes`, asked for one by one (each answer is
/// the kernel looking through its unix sockets once, without writing them
/// all out as a dump does), each handed to `each`; an inode that is no
/// unix socket's is left out. As [`dump_unix`] for what each holds and
/// for `timeout`, which covers every question.
///
/// Each question has the kernel walk its table of unix sockets until it
/// finds the one asked for: a few questions are shared out among up to as
/// many threads as the run samples on, each with its own netlink socket and
/// deadline; the answers come in the order asked.
pub fn query_unix(timeout: Duration, inodes: &[u64], each: &mut dyn FnMut(UnixDiag)) -> io::Result<()> {
    const PER_THREAD: usize = 4;
    let threads = super::pool::threads().min(inodes.len().div_ceil(PER_THREAD));
    for answer in super::pool::shared_out(inodes, threads, |asked| ask_unix(timeout, asked)) {
        answer?.into_iter().for_each(&mut *each);
    }
    Ok(())
}

/// [`query_unix`] on one netlink socket, on this thread.
fn ask_unix(timeout: Duration, inodes: &[u64]) -> io::Result<Vec<UnixDiag>> {
    let mut found = Vec::new();
    if inodes.is_empty() {
        return Ok(found);
    }
    let mut conn = DiagSocket::open(timeout)?;
    for (seq, &inode) in (1..).zip(inodes) {
        // Socket inodes are 32-bit; a wider one is nobody's socket.
        let Ok(inode) = u32::try_from(inode) else { continue };
        conn.send(&unix_query_request(inode, seq))?;
        let n = conn.recv()?;
        let datagram = conn.buf.get(..n).ok_or_else(|| invalid("netlink reply too long"))?;
        match parse_unix_messages(datagram, &mut found) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

// ---------------------------------------------------------------------------
// The socket.

struct DiagSocket {
    fd: OwnedFd,
    /// `None` only when `now + timeout` is not representable (effectively
    /// "no deadline").
    deadline: Option<Instant>,
    buf: Vec<u8>,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "sock_diag: netlink dump timed out")
}

/// A zeroed `sockaddr_nl` (`nl_pid` 0 = the kernel).
fn sockaddr_nl_zeroed() -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    sa
}

impl DiagSocket {
    fn open(timeout: Duration) -> io::Result<Self> {
        let start = Instant::now();
        if timeout.is_zero() {
            return Err(timed_out());
        }
        // SAFETY: plain syscall; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, NETLINK_SOCK_DIAG) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a freshly created descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_timeout(fd.as_raw_fd(), libc::SO_RCVTIMEO, timeout)?;
        set_timeout(fd.as_raw_fd(), libc::SO_SNDTIMEO, timeout)?;
        Ok(DiagSocket {
            fd,
            deadline: start.checked_add(timeout),
            buf: vec![0u8; RECV_BUF_LEN],
        })
    }

    /// Time left before the deadline; `TimedOut` once it has passed.
    fn remaining(&self) -> io::Result<Option<Duration>> {
        match self.deadline {
            None => Ok(None),
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Ok(Some(left)),
                _ => Err(timed_out()),
            },
        }
    }

    /// Send one request and hand each item of its multipart reply to
    /// `each`, one datagram at a time.
    fn dump<T>(
        &mut self,
        request: &[u8],
        parse: fn(&[u8], &mut Vec<T>) -> io::Result<Progress>,
        each: &mut dyn FnMut(T),
    ) -> io::Result<()> {
        self.send(request)?;
        let mut datagram_items = Vec::new();
        loop {
            let n = self.recv()?;
            let datagram = self.buf.get(..n).ok_or_else(|| invalid("netlink reply too long"))?;
            let progress = parse(datagram, &mut datagram_items)?;
            datagram_items.drain(..).for_each(&mut *each);
            if progress == Progress::Done {
                return Ok(());
            }
        }
    }

    fn send(&self, request: &[u8]) -> io::Result<()> {
        let kernel = sockaddr_nl_zeroed();
        loop {
            if let Some(left) = self.remaining()? {
                set_timeout(self.fd.as_raw_fd(), libc::SO_SNDTIMEO, left)?;
            }
            // SAFETY: `request` and `kernel` are valid for the lengths given.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    request.as_ptr().cast(),
                    request.len(),
                    0,
                    (&kernel as *const libc::sockaddr_nl).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => return Err(timed_out()),
                    _ => return Err(e),
                }
            }
            if n as usize != request.len() {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "sock_diag: short netlink send",
                ));
            }
            return Ok(());
        }
    }

    /// Receive one datagram from the kernel into `self.buf`; returns its
    /// length. Datagrams from any other sender are dropped.
    fn recv(&mut self) -> io::Result<usize> {
        loop {
            if let Some(left) = self.remaining()? {
                // Re-arm SO_RCVTIMEO with what is left of the overall budget,
                // so a sequence of slow datagrams cannot exceed `timeout`.
                set_timeout(self.fd.as_raw_fd(), libc::SO_RCVTIMEO, left)?;
            }
            let mut from = sockaddr_nl_zeroed();
            let mut from_len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            // SAFETY: `self.buf` is valid for writes of `self.buf.len()`
            // bytes, `from`/`from_len` describe a valid sockaddr_nl.
            // MSG_TRUNC makes the kernel return the full datagram length even
            // when it exceeds the buffer, so truncation is detectable.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                    (&mut from as *mut libc::sockaddr_nl).cast(),
                    &mut from_len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => return Err(timed_out()),
                    _ => return Err(e),
                }
            }
            let n = n as usize;
            if n > self.buf.len() {
                return Err(invalid("sock_diag: netlink datagram larger than the receive buffer"));
            }
            if from.nl_pid != 0 {
                continue; // not from the kernel
            }
            if n == 0 {
                return Err(invalid("sock_diag: empty netlink datagram"));
            }
            return Ok(n);
        }
    }
}

/// Set `SO_RCVTIMEO`/`SO_SNDTIMEO`. A zero timeval would mean "block
/// forever", so anything shorter than 1 µs is rounded up to 1 µs.
fn set_timeout(fd: RawFd, opt: libc::c_int, d: Duration) -> io::Result<()> {
    let mut tv = libc::timeval {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    if tv.tv_sec == 0 && tv.tv_usec == 0 {
        tv.tv_usec = 1;
    }
    // SAFETY: `tv` is a valid timeval and the length matches it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
