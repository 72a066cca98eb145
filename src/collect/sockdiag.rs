//! Minimal `NETLINK_SOCK_DIAG` client (the interface `ss` uses), built on
//! `libc` and std only.
//!
//! Why netlink rather than `/proc/net/{tcp,tcp6,unix}`: the text files lack
//! most of what tells us why a process is stuck on a socket. `/proc/net/unix`
//! has no peer inode (so a socketpair or a connected stream cannot be linked
//! to the process at the other end), no queue lengths and no socket memory
//! (`ss -xm`'s `skmem:(r..,rb..,t..,tb..)`), so "the send buffer is full
//! because the peer stops reading" cannot be seen. For TCP, the same data as
//! `ss -t` (state, addresses, Recv-Q/Send-Q, owner uid, inode) comes in
//! binary, without parsing hex text, for both address families.
//!
//! Each public function opens one netlink socket, sends one dump request per
//! address family, reads the multipart reply up to `NLMSG_DONE`, and closes
//! the socket. A caller is expected to dump once per run and then join the
//! results with the socket inodes it found under `/proc/<pid>/fd`.
//!
//! All reply parsing is done with explicit, bounds-checked slice reads
//! (`u32::from_ne_bytes` over `get(..)` ranges): a short or malformed reply
//! is an [`io::ErrorKind::InvalidData`] error, never a panic and never an
//! unaligned or out-of-bounds read.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// One TCP socket, as `inet_diag` reports it (`ss -tan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpDiag {
    /// Socket inode (matches `socket:[N]` under `/proc/<pid>/fd`); 0 for
    /// TIME_WAIT and SYN_RECV mini-sockets, which have no inode.
    pub inode: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Kernel `TCP_*` state: 1 ESTABLISHED, 2 SYN_SENT, 3 SYN_RECV,
    /// 4 FIN_WAIT1, 5 FIN_WAIT2, 6 TIME_WAIT, 7 CLOSE, 8 CLOSE_WAIT,
    /// 9 LAST_ACK, 10 LISTEN, 11 CLOSING, 12 NEW_SYN_RECV.
    pub state: u8,
    /// Unread bytes (Recv-Q); for LISTEN the current accept backlog.
    pub rx_queue: u32,
    /// Unacknowledged bytes (Send-Q); for LISTEN the maximum backlog.
    pub tx_queue: u32,
    /// Owner uid, in the caller's user namespace.
    pub uid: u32,
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
/// `skmem:(r,rb,t,tb,f,w,o,bl,d)`). Fields a (very old) kernel does not send
/// are 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkMeminfo {
    pub rmem_alloc: u32,
    pub rcvbuf: u32,
    pub wmem_alloc: u32,
    pub sndbuf: u32,
    pub fwd_alloc: u32,
    pub wmem_queued: u32,
    pub optmem: u32,
    pub backlog: u32,
    pub drops: u32,
}

// ---------------------------------------------------------------------------
// Kernel ABI constants (include/uapi/linux/{netlink,sock_diag,inet_diag,
// unix_diag}.h). Stable ABI, spelled out here so their widths are exact.

const NETLINK_SOCK_DIAG: libc::c_int = 4;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const NLM_F_REQUEST: u16 = 0x01;
/// `NLM_F_ROOT | NLM_F_MATCH`.
const NLM_F_DUMP: u16 = 0x300;
const SOCK_DIAG_BY_FAMILY: u16 = 20;

const NLA_HDRLEN: usize = 4;
/// Strips `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER`.
const NLA_TYPE_MASK: u16 = 0x3fff;

const AF_UNIX: u8 = libc::AF_UNIX as u8;
const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;
const IPPROTO_TCP: u8 = libc::IPPROTO_TCP as u8;

/// `sizeof(struct inet_diag_req_v2)`.
const INET_DIAG_REQ_V2_LEN: usize = 56;
/// `sizeof(struct inet_diag_sockid)`.
const INET_DIAG_SOCKID_LEN: usize = 48;
/// `sizeof(struct inet_diag_msg)`.
const INET_DIAG_MSG_LEN: usize = 72;
/// `sizeof(struct unix_diag_req)`.
const UNIX_DIAG_REQ_LEN: usize = 24;
/// `sizeof(struct unix_diag_msg)`.
const UNIX_DIAG_MSG_LEN: usize = 16;

const UDIAG_SHOW_NAME: u32 = 0x01;
const UDIAG_SHOW_PEER: u32 = 0x04;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UDIAG_SHOW_MEMINFO: u32 = 0x20;

const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_MEMINFO: u16 = 5;

/// Every state bit: includes TIME_WAIT and NEW_SYN_RECV mini-sockets.
const ALL_STATES: u32 = u32::MAX;

/// Receive buffer size. The kernel caps a dump skb at
/// `SKB_WITH_OVERHEAD(32768)`, so 32 KiB always holds one datagram; a larger
/// datagram is still detected (MSG_TRUNC) and reported, not misparsed.
const RECV_BUF_LEN: usize = 32 * 1024;

// ---------------------------------------------------------------------------
// Public entry points.

/// Dump all TCP sockets (AF_INET and AF_INET6, every state) of the caller's
/// network namespace.
///
/// Never blocks longer than `timeout` in total; on expiry returns
/// [`io::ErrorKind::TimedOut`]. A kernel without IPv6 support yields only the
/// IPv4 sockets.
pub fn dump_tcp(timeout: Duration) -> io::Result<Vec<TcpDiag>> {
    let mut conn = DiagSocket::open(timeout)?;
    let mut out = Vec::new();
    let mut push = |s| out.push(s);
    conn.dump(&inet_diag_request(AF_INET, 1), parse_tcp_messages, &mut push)?;
    match conn.dump(&inet_diag_request(AF_INET6, 2), parse_tcp_messages, &mut push) {
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

// ---------------------------------------------------------------------------
// Request building.

fn push_nlmsghdr(b: &mut Vec<u8>, payload_len: usize, ty: u16, flags: u16, seq: u32) {
    // Payload sizes are compile-time constants far below u32::MAX.
    let len = (NLMSG_HDRLEN + payload_len) as u32;
    b.extend_from_slice(&len.to_ne_bytes());
    b.extend_from_slice(&ty.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: kernel fills in
}

/// `nlmsghdr` + `struct inet_diag_req_v2` for a full TCP dump of `family`.
fn inet_diag_request(family: u8, seq: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(NLMSG_HDRLEN + INET_DIAG_REQ_V2_LEN);
    push_nlmsghdr(
        &mut b,
        INET_DIAG_REQ_V2_LEN,
        SOCK_DIAG_BY_FAMILY,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
    );
    b.push(family); // sdiag_family
    b.push(IPPROTO_TCP); // sdiag_protocol
    b.push(0); // idiag_ext: no extensions
    b.push(0); // pad
    b.extend_from_slice(&ALL_STATES.to_ne_bytes()); // idiag_states
    b.extend_from_slice(&[0u8; INET_DIAG_SOCKID_LEN]); // id: unused by dumps
    b
}

/// `nlmsghdr` + `struct unix_diag_req` for a full unix dump.
fn unix_diag_request(seq: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(NLMSG_HDRLEN + UNIX_DIAG_REQ_LEN);
    push_nlmsghdr(
        &mut b,
        UNIX_DIAG_REQ_LEN,
        SOCK_DIAG_BY_FAMILY,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
    );
    b.push(AF_UNIX); // sdiag_family
    b.push(0); // sdiag_protocol
    b.extend_from_slice(&0u16.to_ne_bytes()); // pad
    b.extend_from_slice(&ALL_STATES.to_ne_bytes()); // udiag_states
    b.extend_from_slice(&0u32.to_ne_bytes()); // udiag_ino: any
    let show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_MEMINFO;
    b.extend_from_slice(&show.to_ne_bytes()); // udiag_show
    b.extend_from_slice(&[0u8; 8]); // udiag_cookie: unused by dumps
    b
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

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
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

// ---------------------------------------------------------------------------
// Reply parsing: pure functions over byte slices.

/// Whether a parsed datagram ended the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// More datagrams follow.
    More,
    /// `NLMSG_DONE` seen.
    Done,
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

fn read_u16(b: &[u8], off: usize) -> io::Result<u16> {
    off.checked_add(2)
        .and_then(|end| b.get(off..end))
        .and_then(|s| s.try_into().ok())
        .map(u16::from_ne_bytes)
        .ok_or_else(|| invalid("sock_diag: truncated field"))
}

fn read_u16_be(b: &[u8], off: usize) -> io::Result<u16> {
    off.checked_add(2)
        .and_then(|end| b.get(off..end))
        .and_then(|s| s.try_into().ok())
        .map(u16::from_be_bytes)
        .ok_or_else(|| invalid("sock_diag: truncated field"))
}

fn read_u32(b: &[u8], off: usize) -> io::Result<u32> {
    off.checked_add(4)
        .and_then(|end| b.get(off..end))
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
        .ok_or_else(|| invalid("sock_diag: truncated field"))
}

fn read_i32(b: &[u8], off: usize) -> io::Result<i32> {
    read_u32(b, off).map(|v| v as i32)
}

fn read_16_bytes(b: &[u8], off: usize) -> io::Result<[u8; 16]> {
    off.checked_add(16)
        .and_then(|end| b.get(off..end))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| invalid("sock_diag: truncated address"))
}

/// Turn a kernel `-errno` into an `io::Error`.
fn errno_error(neg_errno: i32) -> io::Error {
    match neg_errno.checked_neg() {
        Some(errno) if errno > 0 => io::Error::from_raw_os_error(errno),
        _ => invalid("sock_diag: bad errno in netlink reply"),
    }
}

/// Walk the netlink messages of one datagram, handing each
/// `SOCK_DIAG_BY_FAMILY` payload to `on_msg`. Returns `Done` at
/// `NLMSG_DONE`; converts `NLMSG_ERROR` into the kernel's errno.
fn walk_messages(buf: &[u8], mut on_msg: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<Progress> {
    if buf.is_empty() {
        return Err(invalid("sock_diag: empty netlink datagram"));
    }
    let mut off = 0usize;
    while off < buf.len() {
        let rest = buf.get(off..).unwrap_or_default();
        if rest.len() < NLMSG_HDRLEN {
            return Err(invalid("sock_diag: truncated netlink header"));
        }
        let len = read_u32(rest, 0)? as usize;
        let ty = read_u16(rest, 4)?;
        if len < NLMSG_HDRLEN {
            return Err(invalid("sock_diag: netlink message length too small"));
        }
        let payload = rest
            .get(NLMSG_HDRLEN..len)
            .ok_or_else(|| invalid("sock_diag: netlink message runs past the datagram"))?;
        match ty {
            NLMSG_DONE => {
                // A dump's DONE carries the dump's final status (0 or -errno).
                if payload.len() >= 4 {
                    let status = read_i32(payload, 0)?;
                    if status < 0 {
                        return Err(errno_error(status));
                    }
                }
                return Ok(Progress::Done);
            }
            NLMSG_ERROR => {
                // struct nlmsgerr { int error; struct nlmsghdr msg; ... }
                let error = read_i32(payload, 0).map_err(|_| invalid("sock_diag: truncated NLMSG_ERROR"))?;
                if error != 0 {
                    return Err(errno_error(error));
                }
                // error == 0 is an ACK; we never ask for one, ignore it.
            }
            NLMSG_NOOP => {}
            NLMSG_OVERRUN => return Err(invalid("sock_diag: netlink overrun")),
            SOCK_DIAG_BY_FAMILY => on_msg(payload)?,
            _ => return Err(invalid("sock_diag: unexpected netlink message type")),
        }
        off = off.saturating_add(align4(len));
    }
    Ok(Progress::More)
}

/// Walk netlink attributes (`struct nlattr`), 4-byte aligned, validating
/// every length against `buf`.
fn walk_attrs(buf: &[u8], mut on_attr: impl FnMut(u16, &[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut off = 0usize;
    while off < buf.len() {
        let rest = buf.get(off..).unwrap_or_default();
        if rest.len() < NLA_HDRLEN {
            return Err(invalid("sock_diag: truncated attribute header"));
        }
        let len = read_u16(rest, 0)? as usize;
        let ty = read_u16(rest, 2)? & NLA_TYPE_MASK;
        if len < NLA_HDRLEN {
            return Err(invalid("sock_diag: attribute length too small"));
        }
        let data = rest
            .get(NLA_HDRLEN..len)
            .ok_or_else(|| invalid("sock_diag: attribute runs past its message"))?;
        on_attr(ty, data)?;
        off = off.saturating_add(align4(len));
    }
    Ok(())
}

/// Parse one datagram of an inet_diag (TCP) dump, appending to `out`.
fn parse_tcp_messages(buf: &[u8], out: &mut Vec<TcpDiag>) -> io::Result<Progress> {
    walk_messages(buf, |payload| {
        out.push(parse_inet_diag_msg(payload)?);
        Ok(())
    })
}

/// Parse one datagram of a unix_diag dump, appending to `out`.
fn parse_unix_messages(buf: &[u8], out: &mut Vec<UnixDiag>) -> io::Result<Progress> {
    walk_messages(buf, |payload| {
        out.push(parse_unix_diag_msg(payload)?);
        Ok(())
    })
}

/// `struct inet_diag_msg` (+ attributes, validated but unused).
fn parse_inet_diag_msg(p: &[u8]) -> io::Result<TcpDiag> {
    if p.len() < INET_DIAG_MSG_LEN {
        return Err(invalid("sock_diag: truncated inet_diag_msg"));
    }
    let family = p[0];
    let state = p[1];
    // inet_diag_sockid at offset 4.
    let sport = read_u16_be(p, 4)?;
    let dport = read_u16_be(p, 6)?;
    let src = read_16_bytes(p, 8)?;
    let dst = read_16_bytes(p, 24)?;
    let ifindex = read_u32(p, 40)?;
    // cookie at 44..52, idiag_expires at 52.
    let rx_queue = read_u32(p, 56)?;
    let tx_queue = read_u32(p, 60)?;
    let uid = read_u32(p, 64)?;
    let inode = read_u32(p, 68)?;
    walk_attrs(p.get(INET_DIAG_MSG_LEN..).unwrap_or_default(), |_, _| Ok(()))?;

    let (local, remote) = match family {
        AF_INET => (v4_addr(src, sport), v4_addr(dst, dport)),
        AF_INET6 => (v6_addr(src, sport, ifindex), v6_addr(dst, dport, ifindex)),
        _ => return Err(invalid("sock_diag: unexpected address family in inet_diag_msg")),
    };
    Ok(TcpDiag {
        inode: u64::from(inode),
        local,
        remote,
        state,
        rx_queue,
        tx_queue,
        uid,
    })
}

fn v4_addr(raw: [u8; 16], port: u16) -> SocketAddr {
    let ip = Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]);
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

fn v6_addr(raw: [u8; 16], port: u16, ifindex: u32) -> SocketAddr {
    let ip = Ipv6Addr::from(raw);
    // The bound interface only scopes link-local addresses (fe80::/10).
    let link_local = (ip.segments()[0] & 0xffc0) == 0xfe80;
    let scope_id = if link_local { ifindex } else { 0 };
    SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope_id))
}

/// `struct unix_diag_msg` + `UNIX_DIAG_*` attributes.
fn parse_unix_diag_msg(p: &[u8]) -> io::Result<UnixDiag> {
    if p.len() < UNIX_DIAG_MSG_LEN {
        return Err(invalid("sock_diag: truncated unix_diag_msg"));
    }
    if p[0] != AF_UNIX {
        return Err(invalid("sock_diag: unexpected address family in unix_diag_msg"));
    }
    let mut d = UnixDiag {
        inode: u64::from(read_u32(p, 4)?),
        sock_type: p[1],
        state: p[2],
        path: None,
        peer_inode: None,
        rqueue: None,
        wqueue: None,
        meminfo: None,
    };
    walk_attrs(p.get(UNIX_DIAG_MSG_LEN..).unwrap_or_default(), |ty, data| {
        match ty {
            UNIX_DIAG_NAME => d.path = Some(unix_name(data)),
            UNIX_DIAG_PEER => d.peer_inode = Some(u64::from(read_u32(data, 0)?)),
            UNIX_DIAG_RQLEN => {
                d.rqueue = Some(read_u32(data, 0)?);
                d.wqueue = Some(read_u32(data, 4)?);
            }
            UNIX_DIAG_MEMINFO => d.meminfo = Some(parse_meminfo(data)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(d)
}

/// `UNIX_DIAG_NAME` payload: `addr->len - sizeof(sa_family_t)` bytes of
/// `sun_path`. Abstract (leading NUL): kept verbatim. Pathname: cut at the
/// first NUL (the kernel includes the terminator).
fn unix_name(data: &[u8]) -> Vec<u8> {
    match data.first() {
        Some(0) | None => data.to_vec(),
        Some(_) => {
            let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
            data.get(..end).unwrap_or(data).to_vec()
        }
    }
}

/// `UNIX_DIAG_MEMINFO`: `u32[SK_MEMINFO_VARS]`. At least the first four
/// (rmem_alloc, rcvbuf, wmem_alloc, sndbuf) are required; later ones default
/// to 0 if an old kernel sends fewer; extra ones from newer kernels are
/// ignored.
fn parse_meminfo(data: &[u8]) -> io::Result<SkMeminfo> {
    if data.len() < 16 {
        return Err(invalid("sock_diag: truncated UNIX_DIAG_MEMINFO"));
    }
    let get = |i: usize| read_u32(data, i * 4).unwrap_or(0);
    Ok(SkMeminfo {
        rmem_alloc: get(0),
        rcvbuf: get(1),
        wmem_alloc: get(2),
        sndbuf: get(3),
        fwd_alloc: get(4),
        wmem_queued: get(5),
        optmem: get(6),
        backlog: get(7),
        drops: get(8),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{ErrorKind, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::net::UnixStream;

    const T: Duration = Duration::from_secs(5);

    fn inode_of(fd: &impl AsRawFd) -> u64 {
        // SAFETY: test-only fstat on a live descriptor into a zeroed stat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
        assert_eq!(rc, 0, "fstat: {}", io::Error::last_os_error());
        st.st_ino as u64
    }

    fn dump_all_unix(timeout: Duration) -> io::Result<Vec<UnixDiag>> {
        let mut all = Vec::new();
        dump_unix(timeout, &mut |s| all.push(s))?;
        Ok(all)
    }

    fn find_unix(all: &[UnixDiag], ino: u64) -> &UnixDiag {
        all.iter()
            .find(|d| d.inode == ino)
            .unwrap_or_else(|| panic!("unix inode {ino} not in dump"))
    }

    /// Fill `w` with writes of `chunk` bytes until EAGAIN; returns bytes
    /// written and number of successful writes.
    fn fill(w: &mut UnixStream, chunk: usize) -> (usize, usize) {
        w.set_nonblocking(true).unwrap();
        let data = vec![b'x'; chunk];
        let (mut bytes, mut writes) = (0, 0);
        loop {
            match w.write(&data) {
                Ok(n) => {
                    bytes += n;
                    writes += 1;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return (bytes, writes),
                Err(e) => panic!("write: {e}"),
            }
        }
    }

    fn check_full_socketpair(chunk: usize) -> (SkMeminfo, usize, usize) {
        let (mut w, r) = UnixStream::pair().unwrap();
        let (wi, ri) = (inode_of(&w), inode_of(&r));
        let (bytes, writes) = fill(&mut w, chunk);
        let all = dump_all_unix(T).unwrap();
        let wd = find_unix(&all, wi);
        let rd = find_unix(&all, ri);
        assert_eq!(wd.sock_type, libc::SOCK_STREAM as u8);
        assert_eq!(wd.state, 1, "ESTABLISHED");
        assert_eq!(wd.peer_inode, Some(ri));
        assert_eq!(rd.peer_inode, Some(wi));
        assert_eq!(wd.path, None);
        // Stream rqueue is the bytes waiting to be read.
        assert_eq!(rd.rqueue, Some(bytes as u32));
        assert!(rd.rqueue.unwrap() > 0);
        let m = wd.meminfo.clone().expect("writer meminfo");
        // Send queue and wmem_alloc are the same counter.
        assert_eq!(wd.wqueue, Some(m.wmem_alloc));
        // The kernel lets a send through while wmem_alloc < sndbuf, so a full
        // socket is at or just above sndbuf, by less than one skb's truesize.
        let per_skb = (m.wmem_alloc as usize).div_ceil(writes.max(1));
        assert!(m.wmem_alloc >= m.sndbuf, "{m:?}");
        assert!((m.wmem_alloc as usize) < m.sndbuf as usize + per_skb, "{m:?}");
        drop(r);
        (m, bytes, writes)
    }

    #[test]
    fn live_unix_socketpair_full_1_byte_writes() {
        let (m, bytes, writes) = check_full_socketpair(1);
        eprintln!(
            "1-byte writes: {writes} writes, {bytes} bytes, wmem_alloc={} sndbuf={} \
             over={} per_skb~{}",
            m.wmem_alloc,
            m.sndbuf,
            m.wmem_alloc as i64 - m.sndbuf as i64,
            m.wmem_alloc as usize / writes
        );
    }

    #[test]
    fn live_unix_socketpair_full_4096_byte_writes() {
        let (m, bytes, writes) = check_full_socketpair(4096);
        eprintln!(
            "4096-byte writes: {writes} writes, {bytes} bytes, wmem_alloc={} sndbuf={} \
             over={} per_skb~{}",
            m.wmem_alloc,
            m.sndbuf,
            m.wmem_alloc as i64 - m.sndbuf as i64,
            m.wmem_alloc as usize / writes
        );
    }

    #[test]
    fn live_unix_bound_names() {
        use std::os::unix::net::UnixListener;
        let dir = std::env::temp_dir().join(format!("sockdiag-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        let c = UnixStream::connect(&path).unwrap();
        let li = inode_of(&l);
        let all = dump_all_unix(T).unwrap();
        let ld = find_unix(&all, li);
        assert_eq!(ld.state, 10, "LISTEN");
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(ld.path.as_deref(), Some(path.as_os_str().as_bytes()));
        // LISTEN: rqueue = pending connections, wqueue = max backlog.
        assert_eq!(ld.rqueue, Some(1));
        assert!(ld.wqueue.unwrap_or(0) >= 1);
        drop(c);
        drop(l);
        let _ = std::fs::remove_dir_all(&dir);

        // Abstract name keeps its leading NUL.
        use std::os::linux::net::SocketAddrExt;
        let name = format!("sockdiag-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let l = UnixListener::bind_addr(&addr).unwrap();
        let all = dump_all_unix(T).unwrap();
        let mut want = vec![0u8];
        want.extend_from_slice(name.as_bytes());
        assert_eq!(find_unix(&all, inode_of(&l)).path, Some(want));
    }

    #[test]
    fn live_unix_multipart_dump() {
        // ~600 sockets at ~90 bytes each: the reply spans several datagrams.
        let pairs: Vec<_> = (0..300).map(|_| UnixStream::pair().unwrap()).collect();
        let all = dump_all_unix(T).unwrap();
        let inodes: std::collections::HashSet<u64> = all.iter().map(|d| d.inode).collect();
        assert_eq!(inodes.len(), all.len(), "duplicate inodes in dump");
        for (a, b) in &pairs {
            let (ai, bi) = (inode_of(a), inode_of(b));
            assert_eq!(find_unix(&all, ai).peer_inode, Some(bi));
            assert_eq!(find_unix(&all, bi).peer_inode, Some(ai));
        }
    }

    fn find_tcp(all: &[TcpDiag], ino: u64) -> &TcpDiag {
        all.iter()
            .find(|d| d.inode == ino)
            .unwrap_or_else(|| panic!("tcp inode {ino} not in dump"))
    }

    fn check_tcp(bind: &str) {
        let l = match TcpListener::bind(bind) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("skipping {bind}: {e}");
                return;
            }
        };
        let laddr = l.local_addr().unwrap();
        let mut c = TcpStream::connect(laddr).unwrap();
        let (s, caddr) = l.accept().unwrap();
        assert_eq!(caddr, c.local_addr().unwrap());
        let payload = [7u8; 1000];
        c.write_all(&payload).unwrap();

        let uid = unsafe { libc::geteuid() };
        let (li, ci, si) = (inode_of(&l), inode_of(&c), inode_of(&s));
        let mut tries = 0;
        loop {
            let all = dump_tcp(T).unwrap();
            let ld = find_tcp(&all, li);
            assert_eq!(ld.state, 10, "LISTEN");
            assert_eq!(ld.local, laddr);
            assert_eq!(ld.uid, uid);
            let cd = find_tcp(&all, ci);
            assert_eq!(cd.state, 1, "ESTABLISHED");
            assert_eq!(cd.local, caddr);
            assert_eq!(cd.remote, laddr);
            let sd = find_tcp(&all, si);
            assert_eq!(sd.state, 1, "ESTABLISHED");
            assert_eq!(sd.local, laddr);
            assert_eq!(sd.remote, caddr);
            if sd.rx_queue == payload.len() as u32 {
                break;
            }
            tries += 1;
            assert!(tries < 100, "rx_queue never reached 1000: {sd:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn live_tcp_ipv4() {
        check_tcp("127.0.0.1:0");
    }

    #[test]
    fn live_tcp_ipv6() {
        check_tcp("[::1]:0");
    }

    #[test]
    fn recv_without_reply_times_out_within_budget() {
        let budget = Duration::from_millis(200);
        let start = Instant::now();
        let mut conn = DiagSocket::open(budget).unwrap();
        // No request sent: the kernel never answers.
        let e = conn.recv().unwrap_err();
        let took = start.elapsed();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert!(took >= Duration::from_millis(150), "{took:?}");
        assert!(took < budget + Duration::from_millis(50), "{took:?}");
    }

    #[test]
    fn zero_timeout_times_out() {
        assert_eq!(dump_all_unix(Duration::ZERO).unwrap_err().kind(), ErrorKind::TimedOut);
        assert_eq!(dump_tcp(Duration::ZERO).unwrap_err().kind(), ErrorKind::TimedOut);
    }

    // ---- pure parser tests -------------------------------------------------

    fn nlmsg(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        push_nlmsghdr(&mut b, payload.len(), ty, 0x2, 1);
        b.extend_from_slice(payload);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    fn nla(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((NLA_HDRLEN + data.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(data);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    fn done() -> Vec<u8> {
        nlmsg(NLMSG_DONE, &0i32.to_ne_bytes())
    }

    fn unix_payload(ino: u32, attrs: &[u8]) -> Vec<u8> {
        let mut p = vec![AF_UNIX, 1, 1, 0];
        p.extend_from_slice(&ino.to_ne_bytes());
        p.extend_from_slice(&[0u8; 8]);
        p.extend_from_slice(attrs);
        p
    }

    fn meminfo_bytes(vals: &[u32]) -> Vec<u8> {
        vals.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    fn good_unix_datagram() -> Vec<u8> {
        let mut attrs = nla(UNIX_DIAG_NAME, b"\0abc");
        attrs.extend(nla(UNIX_DIAG_PEER, &42u32.to_ne_bytes()));
        let mut rq = 5u32.to_ne_bytes().to_vec();
        rq.extend_from_slice(&6u32.to_ne_bytes());
        attrs.extend(nla(UNIX_DIAG_RQLEN, &rq));
        attrs.extend(nla(UNIX_DIAG_MEMINFO, &meminfo_bytes(&[1, 2, 3, 4, 5, 6, 7, 8, 9])));
        let mut b = nlmsg(SOCK_DIAG_BY_FAMILY, &unix_payload(7, &attrs));
        b.extend(done());
        b
    }

    #[test]
    fn parses_crafted_unix_message() {
        let mut out = Vec::new();
        let p = parse_unix_messages(&good_unix_datagram(), &mut out).unwrap();
        assert_eq!(p, Progress::Done);
        assert_eq!(
            out,
            vec![UnixDiag {
                inode: 7,
                sock_type: 1,
                state: 1,
                path: Some(b"\0abc".to_vec()),
                peer_inode: Some(42),
                rqueue: Some(5),
                wqueue: Some(6),
                meminfo: Some(SkMeminfo {
                    rmem_alloc: 1,
                    rcvbuf: 2,
                    wmem_alloc: 3,
                    sndbuf: 4,
                    fwd_alloc: 5,
                    wmem_queued: 6,
                    optmem: 7,
                    backlog: 8,
                    drops: 9,
                }),
            }]
        );
    }

    #[test]
    fn pathname_terminator_is_stripped() {
        assert_eq!(unix_name(b"/run/x.sock\0"), b"/run/x.sock".to_vec());
        assert_eq!(unix_name(b"\0ab\0c"), b"\0ab\0c".to_vec());
        assert_eq!(unix_name(b""), Vec::<u8>::new());
    }

    #[test]
    fn more_without_done() {
        let b = nlmsg(SOCK_DIAG_BY_FAMILY, &unix_payload(7, &[]));
        let mut out = Vec::new();
        assert_eq!(parse_unix_messages(&b, &mut out).unwrap(), Progress::More);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].meminfo, None);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = good_unix_datagram();
        let first_len = full.len() - done().len();
        for cut in 0..first_len {
            let mut out = Vec::new();
            let r = parse_unix_messages(&full[..cut], &mut out);
            assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidData, "cut at {cut}");
        }
        // Cutting inside the trailing DONE: the first message parsed, then
        // the truncated header is an error.
        for cut in first_len + 1..full.len() {
            let mut out = Vec::new();
            assert!(parse_unix_messages(&full[..cut], &mut out).is_err(), "cut {cut}");
        }
    }

    /// Mutated replies (bytes flipped, inserted, cut; lengths scrambled)
    /// are errors or parses, never panics or runaway allocations.
    #[test]
    fn mutated_replies_never_panic() {
        let mut tcp = vec![AF_INET, 1, 0, 0];
        tcp.extend_from_slice(&[7u8; INET_DIAG_MSG_LEN - 4]);
        let seeds = [good_unix_datagram(), nlmsg(SOCK_DIAG_BY_FAMILY, &tcp)];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below.max(1) as u64) as usize
        };
        for _ in 0..20_000 {
            let mut input = seeds[next(seeds.len())].clone();
            for _ in 0..1 + next(4) {
                let at = next(input.len() + 1);
                match next(3) {
                    0 if at < input.len() => input[at] = next(256) as u8,
                    1 => input.truncate(at),
                    _ => input
                        .splice(at..at, (0..next(9)).map(|_| next(256) as u8))
                        .for_each(drop),
                }
            }
            let (mut unix, mut tcp) = (Vec::new(), Vec::new());
            let _ = parse_unix_messages(&input, &mut unix);
            let _ = parse_tcp_messages(&input, &mut tcp);
            assert!(unix.len() + tcp.len() <= input.len(), "more entries than bytes");
        }
    }

    #[test]
    fn tcp_truncations_are_errors() {
        let mut p = vec![AF_INET, 1, 0, 0];
        p.extend_from_slice(&[0u8; INET_DIAG_MSG_LEN - 4]);
        let b = nlmsg(SOCK_DIAG_BY_FAMILY, &p);
        for cut in 0..b.len() {
            let mut out = Vec::new();
            let r = parse_tcp_messages(&b[..cut], &mut out);
            assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidData, "cut at {cut}");
        }
        let mut out = Vec::new();
        assert_eq!(parse_tcp_messages(&b, &mut out).unwrap(), Progress::More);
        // nlmsg_len says full, payload shorter than inet_diag_msg.
        let short = nlmsg(SOCK_DIAG_BY_FAMILY, &p[..INET_DIAG_MSG_LEN - 1]);
        assert_eq!(
            parse_tcp_messages(&short, &mut out).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
    }

    #[test]
    fn parses_crafted_tcp_messages() {
        let mut p = vec![AF_INET, 10, 0, 0];
        p.extend_from_slice(&8080u16.to_be_bytes());
        p.extend_from_slice(&0u16.to_be_bytes());
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[127, 0, 0, 1]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&[0u8; 16]);
        p.extend_from_slice(&0u32.to_ne_bytes()); // if
        p.extend_from_slice(&[0u8; 8]); // cookie
        for v in [0u32, 3, 128, 1000, 99] {
            p.extend_from_slice(&v.to_ne_bytes());
        }
        p.extend(nla(8, &[1, 2, 3])); // some attribute, ignored
        let mut v6 = p.clone();
        v6[0] = AF_INET6;
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        v6[8..24].copy_from_slice(&ll.octets());
        v6[40..44].copy_from_slice(&3u32.to_ne_bytes());
        let mut b = nlmsg(SOCK_DIAG_BY_FAMILY, &p);
        b.extend(nlmsg(SOCK_DIAG_BY_FAMILY, &v6));
        b.extend(done());
        let mut out = Vec::new();
        assert_eq!(parse_tcp_messages(&b, &mut out).unwrap(), Progress::Done);
        assert_eq!(
            out[0],
            TcpDiag {
                inode: 99,
                local: "127.0.0.1:8080".parse().unwrap(),
                remote: "0.0.0.0:0".parse().unwrap(),
                state: 10,
                rx_queue: 3,
                tx_queue: 128,
                uid: 1000,
            }
        );
        assert_eq!(out[1].local, SocketAddr::V6(SocketAddrV6::new(ll, 8080, 0, 3)));
        assert_eq!(
            out[1].remote,
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0))
        );
    }

    #[test]
    fn attribute_running_past_message_is_an_error() {
        let mut attr = nla(UNIX_DIAG_PEER, &42u32.to_ne_bytes());
        attr[0..2].copy_from_slice(&200u16.to_ne_bytes()); // claims 200 bytes
        let b = nlmsg(SOCK_DIAG_BY_FAMILY, &unix_payload(7, &attr));
        let mut out = Vec::new();
        let e = parse_unix_messages(&b, &mut out).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidData);

        // Attribute length below its own header.
        let mut attr = nla(UNIX_DIAG_PEER, &42u32.to_ne_bytes());
        attr[0..2].copy_from_slice(&2u16.to_ne_bytes());
        let b = nlmsg(SOCK_DIAG_BY_FAMILY, &unix_payload(7, &attr));
        assert_eq!(
            parse_unix_messages(&b, &mut out).unwrap_err().kind(),
            ErrorKind::InvalidData
        );

        // Attributes too short for their type.
        for (ty, len) in [(UNIX_DIAG_PEER, 3), (UNIX_DIAG_RQLEN, 7), (UNIX_DIAG_MEMINFO, 15)] {
            let attr = nla(ty, &vec![0u8; len]);
            let b = nlmsg(SOCK_DIAG_BY_FAMILY, &unix_payload(7, &attr));
            assert_eq!(
                parse_unix_messages(&b, &mut out).unwrap_err().kind(),
                ErrorKind::InvalidData,
                "type {ty} len {len}"
            );
        }
        // The same on the TCP side (attributes are validated there too).
        let mut p = vec![AF_INET, 1, 0, 0];
        p.extend_from_slice(&[0u8; INET_DIAG_MSG_LEN - 4]);
        p.extend_from_slice(&[0xff, 0x00, 0x01, 0x00]);
        let b = nlmsg(SOCK_DIAG_BY_FAMILY, &p);
        let mut tout = Vec::new();
        assert_eq!(
            parse_tcp_messages(&b, &mut tout).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
    }

    #[test]
    fn zero_length_nlmsg_is_an_error() {
        let mut b = vec![0u8; 64];
        let mut out = Vec::new();
        assert_eq!(
            parse_unix_messages(&b, &mut out).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
        // A length that is nonzero but below the header size.
        b[0..4].copy_from_slice(&15u32.to_ne_bytes());
        assert_eq!(
            parse_tcp_messages(&b, &mut Vec::new()).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
        // A length past the datagram.
        b[0..4].copy_from_slice(&65u32.to_ne_bytes());
        assert_eq!(
            parse_tcp_messages(&b, &mut Vec::new()).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
        // Empty datagram.
        assert_eq!(
            parse_tcp_messages(&[], &mut Vec::new()).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
    }

    #[test]
    fn nlmsg_error_returns_errno() {
        let mut payload = (-libc::EPERM).to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0u8; NLMSG_HDRLEN]); // echoed request header
        let b = nlmsg(NLMSG_ERROR, &payload);
        let e = parse_unix_messages(&b, &mut Vec::new()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        let e = parse_tcp_messages(&b, &mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);

        // Truncated error payload, and an absurd errno: InvalidData, no overflow.
        let b = nlmsg(NLMSG_ERROR, &[0xff, 0xff]);
        assert_eq!(
            parse_tcp_messages(&b, &mut Vec::new()).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
        let b = nlmsg(NLMSG_ERROR, &i32::MIN.to_ne_bytes());
        assert_eq!(
            parse_tcp_messages(&b, &mut Vec::new()).unwrap_err().kind(),
            ErrorKind::InvalidData
        );

        // A failed dump reports -errno in NLMSG_DONE.
        let b = nlmsg(NLMSG_DONE, &(-libc::ENOBUFS).to_ne_bytes());
        assert_eq!(
            parse_tcp_messages(&b, &mut Vec::new()).unwrap_err().raw_os_error(),
            Some(libc::ENOBUFS)
        );

        // An error after good messages still fails the datagram.
        let mut b = nlmsg(SOCK_DIAG_BY_FAMILY, &unix_payload(7, &[]));
        b.extend(nlmsg(NLMSG_ERROR, &(-libc::EINVAL).to_ne_bytes()));
        assert_eq!(
            parse_unix_messages(&b, &mut Vec::new()).unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
    }

    #[test]
    fn garbage_never_panics() {
        // Cheap deterministic fuzz: xorshift bytes, plus bytes with plausible
        // headers, through both parsers.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seed = good_unix_datagram();
        for i in 0..20_000 {
            let mut b = if i % 2 == 0 {
                seed.clone()
            } else {
                (0..(next() % 200) as usize).map(|_| next() as u8).collect()
            };
            if !b.is_empty() {
                for _ in 0..(next() % 4) {
                    let at = (next() as usize) % b.len();
                    b[at] = next() as u8;
                }
            }
            let _ = parse_unix_messages(&b, &mut Vec::new());
            let _ = parse_tcp_messages(&b, &mut Vec::new());
        }
    }

    #[test]
    fn request_layout() {
        let r = inet_diag_request(AF_INET6, 9);
        assert_eq!(r.len(), 72);
        assert_eq!(read_u32(&r, 0).unwrap(), 72);
        assert_eq!(read_u16(&r, 4).unwrap(), SOCK_DIAG_BY_FAMILY);
        assert_eq!(read_u16(&r, 6).unwrap(), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(read_u32(&r, 8).unwrap(), 9);
        assert_eq!(&r[16..20], &[AF_INET6, IPPROTO_TCP, 0, 0]);
        assert_eq!(read_u32(&r, 20).unwrap(), u32::MAX);
        let u = unix_diag_request(3);
        assert_eq!(u.len(), 40);
        assert_eq!(read_u32(&u, 0).unwrap(), 40);
        assert_eq!(u[16], AF_UNIX);
        assert_eq!(read_u32(&u, 28).unwrap(), 0x35);
    }
}
