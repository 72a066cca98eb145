//! The sock_diag wire format: building requests, walking netlink messages
//! and their attributes, and parsing replies. Pure functions over byte
//! slices: every read is bounds-checked, so a short or malformed reply is an
//! [`io::ErrorKind::InvalidData`] error, never a panic.

use super::{InetDiag, SkMeminfo, TcpInfo, UnixDiag};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

// ---------------------------------------------------------------------------
// Kernel ABI constants (include/uapi/linux/{netlink,sock_diag,inet_diag,
// unix_diag}.h). Stable ABI, spelled out here so their widths are exact.

pub(super) const NLMSG_HDRLEN: usize = 16;
pub(super) const NLMSG_NOOP: u16 = 1;
pub(super) const NLMSG_ERROR: u16 = 2;
pub(super) const NLMSG_DONE: u16 = 3;
pub(super) const NLMSG_OVERRUN: u16 = 4;
pub(super) const NLM_F_REQUEST: u16 = 0x01;
/// `NLM_F_ROOT | NLM_F_MATCH`.
pub(super) const NLM_F_DUMP: u16 = 0x300;
pub(super) const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// The older inet_diag request (`struct inet_diag_req`), still served: the
/// one that takes `AF_UNSPEC`, both address families in one walk of the
/// kernel's tables. Its replies carry the same type.
pub(super) const TCPDIAG_GETSOCK: u16 = 18;

pub(super) const NLA_HDRLEN: usize = 4;
/// Strips `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER`.
pub(super) const NLA_TYPE_MASK: u16 = 0x3fff;

pub(super) const AF_UNIX: u8 = libc::AF_UNIX as u8;
pub(super) const AF_INET: u8 = libc::AF_INET as u8;
pub(super) const AF_INET6: u8 = libc::AF_INET6 as u8;
pub(super) const IPPROTO_TCP: u8 = libc::IPPROTO_TCP as u8;
pub(super) const IPPROTO_UDP: u8 = libc::IPPROTO_UDP as u8;

/// `sizeof(struct inet_diag_req_v2)`.
pub(super) const INET_DIAG_REQ_V2_LEN: usize = 56;
/// `sizeof(struct inet_diag_req)`, the older request.
pub(super) const INET_DIAG_REQ_LEN: usize = 60;
/// `sizeof(struct inet_diag_sockid)`.
pub(super) const INET_DIAG_SOCKID_LEN: usize = 48;
/// `sizeof(struct inet_diag_msg)`.
pub(super) const INET_DIAG_MSG_LEN: usize = 72;
/// `sizeof(struct unix_diag_req)`.
pub(super) const UNIX_DIAG_REQ_LEN: usize = 24;
/// `sizeof(struct unix_diag_msg)`.
pub(super) const UNIX_DIAG_MSG_LEN: usize = 16;

pub(super) const UDIAG_SHOW_NAME: u32 = 0x01;
pub(super) const UDIAG_SHOW_PEER: u32 = 0x04;
pub(super) const UDIAG_SHOW_RQLEN: u32 = 0x10;
pub(super) const UDIAG_SHOW_MEMINFO: u32 = 0x20;

pub(super) const UNIX_DIAG_NAME: u16 = 0;
pub(super) const UNIX_DIAG_PEER: u16 = 2;
pub(super) const UNIX_DIAG_RQLEN: u16 = 4;
pub(super) const UNIX_DIAG_MEMINFO: u16 = 5;

pub(super) const INET_DIAG_INFO: u16 = 2;
pub(super) const INET_DIAG_SKMEMINFO: u16 = 7;
/// `idiag_ext` for a TCP dump: extension N is asked for by bit N - 1.
pub(super) const TCP_EXTENSIONS: u8 = 1 << (INET_DIAG_INFO - 1) | 1 << (INET_DIAG_SKMEMINFO - 1);

/// Offsets in `struct tcp_info` (include/uapi/linux/tcp.h; the kernel only
/// ever appends to it). All of these are in the 104 bytes of Linux 2.6.x.
pub(super) const TCPI_RETRANSMITS: usize = 2; // __u8
pub(super) const TCPI_RTO: usize = 8;
pub(super) const TCPI_UNACKED: usize = 24;
pub(super) const TCPI_LAST_DATA_SENT: usize = 44;
pub(super) const TCPI_LAST_DATA_RECV: usize = 52;
pub(super) const TCPI_LAST_ACK_RECV: usize = 56;
pub(super) const TCPI_RTT: usize = 68;
pub(super) const TCPI_TOTAL_RETRANS: usize = 100;

/// Every state bit: includes TIME_WAIT and NEW_SYN_RECV mini-sockets.
pub(super) const ALL_STATES: u32 = u32::MAX;
/// Every TCP state but TIME_WAIT (6) and NEW_SYN_RECV (12): those are
/// mini-sockets without an inode, which no fd holds, and a busy server has
/// them by the tens of thousands.
pub(super) const TCP_STATES_WITH_INODES: u32 = ALL_STATES & !(1 << 6) & !(1 << 12);

// ---------------------------------------------------------------------------
// Request building.

pub(super) fn push_nlmsghdr(b: &mut Vec<u8>, payload_len: usize, ty: u16, flags: u16, seq: u32) {
    // Payload sizes are compile-time constants far below u32::MAX.
    let len = (NLMSG_HDRLEN + payload_len) as u32;
    b.extend_from_slice(&len.to_ne_bytes());
    b.extend_from_slice(&ty.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: kernel fills in
}

/// `nlmsghdr` + `struct inet_diag_req_v2` for a dump of `protocol`'s
/// sockets of `family` in `states` (bit N: state N), with the `extensions`
/// (`idiag_ext` bits) asked for.
pub(super) fn inet_diag_request(family: u8, protocol: u8, extensions: u8, states: u32, seq: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(NLMSG_HDRLEN + INET_DIAG_REQ_V2_LEN);
    push_nlmsghdr(
        &mut b,
        INET_DIAG_REQ_V2_LEN,
        SOCK_DIAG_BY_FAMILY,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
    );
    b.push(family); // sdiag_family
    b.push(protocol); // sdiag_protocol
    b.push(extensions); // idiag_ext
    b.push(0); // pad
    b.extend_from_slice(&states.to_ne_bytes()); // idiag_states
    b.extend_from_slice(&[0u8; INET_DIAG_SOCKID_LEN]); // id: unused by dumps
    b
}

/// `nlmsghdr` + the older `struct inet_diag_req` for a dump of the TCP
/// sockets of both address families (`AF_UNSPEC`) in `states`, with the
/// `extensions` asked for: one walk of the kernel's hash tables where two
/// `inet_diag_req_v2` dumps (one per family) walk them twice.
pub(super) fn tcp_diag_request_both_families(extensions: u8, states: u32, seq: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(NLMSG_HDRLEN + INET_DIAG_REQ_LEN);
    push_nlmsghdr(
        &mut b,
        INET_DIAG_REQ_LEN,
        TCPDIAG_GETSOCK,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
    );
    b.push(0); // idiag_family: AF_UNSPEC
    b.push(0); // idiag_src_len
    b.push(0); // idiag_dst_len
    b.push(extensions); // idiag_ext
    b.extend_from_slice(&[0u8; INET_DIAG_SOCKID_LEN]); // id: unused by dumps
    b.extend_from_slice(&states.to_ne_bytes()); // idiag_states
    b.extend_from_slice(&0u32.to_ne_bytes()); // idiag_dbs
    b
}

/// `nlmsghdr` + `struct unix_diag_req` for a full unix dump.
pub(super) fn unix_diag_request(seq: u32) -> Vec<u8> {
    unix_request(NLM_F_REQUEST | NLM_F_DUMP, 0, [0u8; 8], seq)
}

/// `nlmsghdr` + `struct unix_diag_req` for the one unix socket `inode`
/// (no cookie: `INET_DIAG_NOCOOKIE`). The kernel answers with its message,
/// or an error (`ENOENT`: no unix socket has that inode).
pub(super) fn unix_query_request(inode: u32, seq: u32) -> Vec<u8> {
    unix_request(NLM_F_REQUEST, inode, [0xff; 8], seq)
}

fn unix_request(flags: u16, inode: u32, cookie: [u8; 8], seq: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(NLMSG_HDRLEN + UNIX_DIAG_REQ_LEN);
    push_nlmsghdr(&mut b, UNIX_DIAG_REQ_LEN, SOCK_DIAG_BY_FAMILY, flags, seq);
    b.push(AF_UNIX); // sdiag_family
    b.push(0); // sdiag_protocol
    b.extend_from_slice(&0u16.to_ne_bytes()); // pad
    b.extend_from_slice(&ALL_STATES.to_ne_bytes()); // udiag_states
    b.extend_from_slice(&inode.to_ne_bytes()); // udiag_ino: 0 for any
    let show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_MEMINFO;
    b.extend_from_slice(&show.to_ne_bytes()); // udiag_show
    b.extend_from_slice(&cookie); // udiag_cookie: unused by dumps
    b
}

// ---------------------------------------------------------------------------
// Reply parsing: pure functions over byte slices.

/// Whether a parsed datagram ended the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Progress {
    /// More datagrams follow.
    More,
    /// `NLMSG_DONE` seen.
    Done,
}

pub(super) fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

pub(super) fn read_u16(b: &[u8], off: usize) -> io::Result<u16> {
    off.checked_add(2)
        .and_then(|end| b.get(off..end))
        .and_then(|s| s.try_into().ok())
        .map(u16::from_ne_bytes)
        .ok_or_else(|| invalid("sock_diag: truncated field"))
}

pub(super) fn read_u16_be(b: &[u8], off: usize) -> io::Result<u16> {
    off.checked_add(2)
        .and_then(|end| b.get(off..end))
        .and_then(|s| s.try_into().ok())
        .map(u16::from_be_bytes)
        .ok_or_else(|| invalid("sock_diag: truncated field"))
}

pub(super) fn read_u32(b: &[u8], off: usize) -> io::Result<u32> {
    off.checked_add(4)
        .and_then(|end| b.get(off..end))
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
        .ok_or_else(|| invalid("sock_diag: truncated field"))
}

pub(super) fn read_i32(b: &[u8], off: usize) -> io::Result<i32> {
    read_u32(b, off).map(|v| v as i32)
}

pub(super) fn read_16_bytes(b: &[u8], off: usize) -> io::Result<[u8; 16]> {
    off.checked_add(16)
        .and_then(|end| b.get(off..end))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| invalid("sock_diag: truncated address"))
}

/// Turn a kernel `-errno` into an `io::Error`.
pub(super) fn errno_error(neg_errno: i32) -> io::Error {
    match neg_errno.checked_neg() {
        Some(errno) if errno > 0 => io::Error::from_raw_os_error(errno),
        _ => invalid("sock_diag: bad errno in netlink reply"),
    }
}

/// Walk the netlink messages of one datagram, handing each
/// `SOCK_DIAG_BY_FAMILY` payload to `on_msg`. Returns `Done` at
/// `NLMSG_DONE`; converts `NLMSG_ERROR` into the kernel's errno.
pub(super) fn walk_messages(buf: &[u8], mut on_msg: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<Progress> {
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
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => on_msg(payload)?,
            _ => return Err(invalid("sock_diag: unexpected netlink message type")),
        }
        off = off.saturating_add(align4(len));
    }
    Ok(Progress::More)
}

/// Walk netlink attributes (`struct nlattr`), 4-byte aligned, validating
/// every length against `buf`.
pub(super) fn walk_attrs(buf: &[u8], mut on_attr: impl FnMut(u16, &[u8]) -> io::Result<()>) -> io::Result<()> {
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

/// Parse one datagram of an inet_diag (TCP or UDP) dump, appending to `out`.
pub(super) fn parse_inet_messages(buf: &[u8], out: &mut Vec<InetDiag>) -> io::Result<Progress> {
    walk_messages(buf, |payload| {
        out.push(parse_inet_diag_msg(payload)?);
        Ok(())
    })
}

/// Parse one datagram of a unix_diag dump, appending to `out`.
pub(super) fn parse_unix_messages(buf: &[u8], out: &mut Vec<UnixDiag>) -> io::Result<Progress> {
    walk_messages(buf, |payload| {
        out.push(parse_unix_diag_msg(payload)?);
        Ok(())
    })
}

/// `struct inet_diag_msg` + `INET_DIAG_*` attributes (all validated; those
/// not used skipped).
pub(super) fn parse_inet_diag_msg(p: &[u8]) -> io::Result<InetDiag> {
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
    let (mut tcp_info, mut meminfo) = (None, None);
    walk_attrs(p.get(INET_DIAG_MSG_LEN..).unwrap_or_default(), |ty, data| {
        match ty {
            INET_DIAG_INFO => tcp_info = Some(parse_tcp_info(data)),
            INET_DIAG_SKMEMINFO => meminfo = Some(parse_meminfo(data)?),
            _ => {}
        }
        Ok(())
    })?;

    let (local, remote) = match family {
        AF_INET => (v4_addr(src, sport), v4_addr(dst, dport)),
        AF_INET6 => (v6_addr(src, sport, ifindex), v6_addr(dst, dport, ifindex)),
        _ => return Err(invalid("sock_diag: unexpected address family in inet_diag_msg")),
    };
    Ok(InetDiag {
        inode: u64::from(inode),
        local,
        remote,
        state,
        rx_queue,
        tx_queue,
        uid,
        tcp_info,
        meminfo,
    })
}

/// `INET_DIAG_INFO` of a TCP socket: `struct tcp_info`, as long as the
/// running kernel's. A field past the end of a shorter one (an older
/// kernel's) is `None`; a longer one's extra fields are ignored.
pub(super) fn parse_tcp_info(data: &[u8]) -> TcpInfo {
    let u32_at = |off| read_u32(data, off).ok();
    TcpInfo {
        retransmits: data.get(TCPI_RETRANSMITS).copied(),
        rto_us: u32_at(TCPI_RTO),
        unacked: u32_at(TCPI_UNACKED),
        last_data_sent_ms: u32_at(TCPI_LAST_DATA_SENT),
        last_data_recv_ms: u32_at(TCPI_LAST_DATA_RECV),
        last_ack_recv_ms: u32_at(TCPI_LAST_ACK_RECV),
        rtt_us: u32_at(TCPI_RTT),
        total_retrans: u32_at(TCPI_TOTAL_RETRANS),
    }
}

pub(super) fn v4_addr(raw: [u8; 16], port: u16) -> SocketAddr {
    let ip = Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]);
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

pub(super) fn v6_addr(raw: [u8; 16], port: u16, ifindex: u32) -> SocketAddr {
    let ip = Ipv6Addr::from(raw);
    // The bound interface only scopes link-local addresses (fe80::/10).
    let link_local = (ip.segments()[0] & 0xffc0) == 0xfe80;
    let scope_id = if link_local { ifindex } else { 0 };
    SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope_id))
}

/// `struct unix_diag_msg` + `UNIX_DIAG_*` attributes.
pub(super) fn parse_unix_diag_msg(p: &[u8]) -> io::Result<UnixDiag> {
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
pub(super) fn unix_name(data: &[u8]) -> Vec<u8> {
    match data.first() {
        Some(0) | None => data.to_vec(),
        Some(_) => {
            let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
            data.get(..end).unwrap_or(data).to_vec()
        }
    }
}

/// `UNIX_DIAG_MEMINFO` or `INET_DIAG_SKMEMINFO`: `u32[SK_MEMINFO_VARS]`.
/// At least the first four (rmem_alloc, rcvbuf, wmem_alloc, sndbuf) are
/// required; a later one an old kernel does not send is `None`; extra ones
/// from newer kernels are ignored.
pub(super) fn parse_meminfo(data: &[u8]) -> io::Result<SkMeminfo> {
    if data.len() < 16 {
        return Err(invalid("sock_diag: truncated socket meminfo"));
    }
    let get = |i: usize| read_u32(data, i * 4).ok();
    let first = |i: usize| get(i).unwrap_or_default(); // checked above
    Ok(SkMeminfo {
        rmem_alloc: first(0),
        rcvbuf: first(1),
        wmem_alloc: first(2),
        sndbuf: first(3),
        fwd_alloc: get(4),
        wmem_queued: get(5),
        optmem: get(6),
        backlog: get(7),
        drops: get(8),
    })
}

pub(super) fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}
