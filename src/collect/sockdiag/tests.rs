//! The parsers on crafted, truncated and mutated replies.

use super::wire::*;
use super::*;
use std::io::ErrorKind;
use std::net::{Ipv6Addr, SocketAddrV6};

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
                fwd_alloc: Some(5),
                wmem_queued: Some(6),
                optmem: Some(7),
                backlog: Some(8),
                drops: Some(9),
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
    let seeds = [
        good_unix_datagram(),
        nlmsg(SOCK_DIAG_BY_FAMILY, &tcp),
        real_datagram(REAL_TCP),
        real_datagram(REAL_UDP_SERVER),
    ];
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
        let _ = parse_inet_messages(&input, &mut tcp);
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
        let r = parse_inet_messages(&b[..cut], &mut out);
        assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidData, "cut at {cut}");
    }
    let mut out = Vec::new();
    assert_eq!(parse_inet_messages(&b, &mut out).unwrap(), Progress::More);
    // nlmsg_len says full, payload shorter than inet_diag_msg.
    let short = nlmsg(SOCK_DIAG_BY_FAMILY, &p[..INET_DIAG_MSG_LEN - 1]);
    assert_eq!(
        parse_inet_messages(&short, &mut out).unwrap_err().kind(),
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
    assert_eq!(parse_inet_messages(&b, &mut out).unwrap(), Progress::Done);
    assert_eq!(
        out[0],
        InetDiag {
            inode: 99,
            local: "127.0.0.1:8080".parse().unwrap(),
            remote: "0.0.0.0:0".parse().unwrap(),
            state: 10,
            rx_queue: 3,
            tx_queue: 128,
            uid: 1000,
            tcp_info: None,
            meminfo: None,
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
        parse_inet_messages(&b, &mut tout).unwrap_err().kind(),
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
        parse_inet_messages(&b, &mut Vec::new()).unwrap_err().kind(),
        ErrorKind::InvalidData
    );
    // A length past the datagram.
    b[0..4].copy_from_slice(&65u32.to_ne_bytes());
    assert_eq!(
        parse_inet_messages(&b, &mut Vec::new()).unwrap_err().kind(),
        ErrorKind::InvalidData
    );
    // Empty datagram.
    assert_eq!(
        parse_inet_messages(&[], &mut Vec::new()).unwrap_err().kind(),
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
    let e = parse_inet_messages(&b, &mut Vec::new()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);

    // Truncated error payload, and an absurd errno: InvalidData, no overflow.
    let b = nlmsg(NLMSG_ERROR, &[0xff, 0xff]);
    assert_eq!(
        parse_inet_messages(&b, &mut Vec::new()).unwrap_err().kind(),
        ErrorKind::InvalidData
    );
    let b = nlmsg(NLMSG_ERROR, &i32::MIN.to_ne_bytes());
    assert_eq!(
        parse_inet_messages(&b, &mut Vec::new()).unwrap_err().kind(),
        ErrorKind::InvalidData
    );

    // A failed dump reports -errno in NLMSG_DONE.
    let b = nlmsg(NLMSG_DONE, &(-libc::ENOBUFS).to_ne_bytes());
    assert_eq!(
        parse_inet_messages(&b, &mut Vec::new()).unwrap_err().raw_os_error(),
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
        let _ = parse_inet_messages(&b, &mut Vec::new());
    }
}

#[test]
fn request_layout() {
    let r = inet_diag_request(AF_INET6, IPPROTO_TCP, TCP_EXTENSIONS, TCP_STATES_WITH_INODES, 9);
    assert_eq!(r.len(), 72);
    assert_eq!(read_u32(&r, 0).unwrap(), 72);
    assert_eq!(read_u16(&r, 4).unwrap(), SOCK_DIAG_BY_FAMILY);
    assert_eq!(read_u16(&r, 6).unwrap(), NLM_F_REQUEST | NLM_F_DUMP);
    assert_eq!(read_u32(&r, 8).unwrap(), 9);
    // idiag_ext: INET_DIAG_INFO (2) and INET_DIAG_SKMEMINFO (7), bits 1 and 6.
    assert_eq!(&r[16..20], &[AF_INET6, IPPROTO_TCP, 0x42, 0]);
    // Every state but TIME_WAIT (6) and NEW_SYN_RECV (12).
    assert_eq!(read_u32(&r, 20).unwrap(), !0x1040);
    let u = unix_diag_request(3);
    assert_eq!(u.len(), 40);
    assert_eq!(read_u32(&u, 0).unwrap(), 40);
    assert_eq!(u[16], AF_UNIX);
    assert_eq!(read_u32(&u, 28).unwrap(), 0x35);
    // One unix socket: no dump flag, its inode, no cookie.
    let q = unix_query_request(4_241_490, 5);
    assert_eq!(q.len(), 40);
    assert_eq!(read_u16(&q, 6).unwrap(), NLM_F_REQUEST);
    assert_eq!(read_u32(&q, 24).unwrap(), 4_241_490);
    assert_eq!(&q[32..40], &[0xff; 8]);
    // TCP of both families: the older request, AF_UNSPEC, states after the id.
    let both = tcp_diag_request_both_families(TCP_EXTENSIONS, TCP_STATES_WITH_INODES, 2);
    assert_eq!(both.len(), 76);
    assert_eq!(read_u32(&both, 0).unwrap(), 76);
    assert_eq!(read_u16(&both, 4).unwrap(), TCPDIAG_GETSOCK);
    assert_eq!(read_u16(&both, 6).unwrap(), NLM_F_REQUEST | NLM_F_DUMP);
    assert_eq!(&both[16..20], &[0, 0, 0, 0x42]);
    assert_eq!(read_u32(&both, 68).unwrap(), !0x1040);
    assert_eq!(read_u32(&both, 72).unwrap(), 0);
}

/// The older request's replies carry its type: their sockets are parsed.
#[test]
fn replies_to_the_older_request_are_parsed() {
    let msg = real_datagram(REAL_TCP);
    let mut older = msg.clone();
    older[4..6].copy_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    parse_inet_messages(&msg, &mut a).unwrap();
    parse_inet_messages(&older, &mut b).unwrap();
    assert_eq!(a, b);
    assert_eq!(b.len(), 1);
}

// ---- real replies ----------------------------------------------------------
//
// Captured on Linux 6.18 x86_64 (little-endian) by `live_tests::capture_real_replies`:
// one message each, nlmsghdr included, of a dump asking for what whystuck asks.

/// A loopback client, 127.0.0.1:38398 -> 127.0.0.1:45025, ESTABLISHED, that
/// sent 5 bytes, then 300 ms later was sent 2 it has not read, 200 ms before
/// the dump. Attributes: SHUTDOWN, 15, 21, 22, SKMEMINFO (9 values) and
/// INFO (a 280-byte tcp_info).
const REAL_TCP: &str = concat!(
    "c001000014000200010000006a5600000201000095feafe17f0000010000000000000000000000007f00000100000000",
    "0000000000000000000000002057080000000000000000000200000000000000000000004fb840000500080000000000",
    "08000f00000000000c0015000100000000000000060016005200000028000700420300000000020000000000001e3c00",
    "be0c0000000000000000000000000000000000001c010200010000000007aa01e01c0300409c00000080000018020000",
    "0000000000000000000000000000000000000000f401000000000000c8000000c8000000ffff0000d7ff00001e000000",
    "10000000ffffff7f0b000000cbff00000300000000000000d7ff000000000000edf30a9a06000000ffffffffffffffff",
    "060000000000000002000000000000000400000003000000000000000b0000000100000001000000a28b8eb100000000",
    "000000000000000000000000000000000000000000000000020000000000000005000000000000000000000000000000",
    "000000000000000000000000000001000000010000000000000000000000000000000000000000000000000000000000",
    "00000000000000000000000000000000",
);

/// A UDP socket 127.0.0.1:53197 connected to 127.0.0.1:44641, after one send.
const REAL_UDP_CONNECTED: &str = concat!(
    "7c00000014000200010000006a56000002010000cfcdae617f0000010000000000000000000000007f00000100000000",
    "00000000000000000000000022570800000000000000000000000000000000000000000052b840000500080000000000",
    "08000f00000000000c00150001000000000000000600160050000000",
);

/// The unconnected UDP socket bound to 127.0.0.1:44641 that the send above
/// went to, its datagram unread.
const REAL_UDP_SERVER: &str = concat!(
    "7c00000014000200010000006a56000002070000ae6100007f0000010000000000000000000000000000000000000000",
    "00000000000000000000000021570800000000000000000040030000000000000000000053b840000500080000000000",
    "08000f00000000000c00150001000000000000000600160050000000",
);

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

/// The datagram a dump of one socket would be: its message, then DONE.
fn real_datagram(hex: &str) -> Vec<u8> {
    let mut b = unhex(hex);
    b.extend(done());
    b
}

#[test]
fn parses_a_real_tcp_reply() {
    let mut out = Vec::new();
    let progress = parse_inet_messages(&real_datagram(REAL_TCP), &mut out).unwrap();
    assert_eq!(progress, Progress::Done);
    assert_eq!(
        out,
        vec![InetDiag {
            inode: 4_241_487,
            local: "127.0.0.1:38398".parse().unwrap(),
            remote: "127.0.0.1:45025".parse().unwrap(),
            state: 1,
            rx_queue: 2,
            tx_queue: 0,
            uid: 0,
            tcp_info: Some(TcpInfo {
                retransmits: Some(0),
                rto_us: Some(204_000),
                unacked: Some(0),
                last_data_sent_ms: Some(500),
                last_data_recv_ms: Some(200),
                last_ack_recv_ms: Some(200),
                rtt_us: Some(30),
                total_retrans: Some(0),
            }),
            meminfo: Some(SkMeminfo {
                rmem_alloc: 834,
                rcvbuf: 131_072,
                wmem_alloc: 0,
                sndbuf: 3_939_840,
                fwd_alloc: Some(3262),
                wmem_queued: Some(0),
                optmem: Some(0),
                backlog: Some(0),
                drops: Some(0),
            }),
        }]
    );
}

#[test]
fn parses_real_udp_replies() {
    let mut both = unhex(REAL_UDP_CONNECTED);
    both.extend(real_datagram(REAL_UDP_SERVER));
    let mut out = Vec::new();
    assert_eq!(parse_inet_messages(&both, &mut out).unwrap(), Progress::Done);
    let udp = |inode, local: &str, remote: &str, state, rx_queue| InetDiag {
        inode,
        local: local.parse().unwrap(),
        remote: remote.parse().unwrap(),
        state,
        rx_queue,
        tx_queue: 0,
        uid: 0,
        tcp_info: None,
        meminfo: None,
    };
    assert_eq!(
        out,
        vec![
            udp(4_241_490, "127.0.0.1:53197", "127.0.0.1:44641", 1, 0),
            // Unconnected: no remote; Recv-Q is the queued datagram's memory.
            udp(4_241_491, "127.0.0.1:44641", "0.0.0.0:0", 7, 832),
        ]
    );
}

/// Every cut of a real TCP or UDP message, inside its header, its
/// inet_diag_msg or any attribute, is an error, never a panic or a guess.
#[test]
fn every_cut_of_a_real_inet_message_is_an_error() {
    for hex in [REAL_TCP, REAL_UDP_CONNECTED, REAL_UDP_SERVER] {
        let full = unhex(hex);
        for cut in 0..full.len() {
            let r = parse_inet_messages(&full[..cut], &mut Vec::new());
            assert_eq!(
                r.unwrap_err().kind(),
                ErrorKind::InvalidData,
                "cut at {cut} of {}",
                full.len()
            );
        }
        assert_eq!(parse_inet_messages(&full, &mut Vec::new()).unwrap(), Progress::More);
    }
}

/// The real message with its tcp_info cut to `len` bytes, as a kernel whose
/// struct is that long would send it (the lengths fixed to match).
fn with_tcp_info_of(len: usize) -> Vec<u8> {
    let real = unhex(REAL_TCP);
    let payload = &real[NLMSG_HDRLEN..];
    let mut p = payload[..INET_DIAG_MSG_LEN].to_vec();
    let mut tcp_info = None;
    walk_attrs(&payload[INET_DIAG_MSG_LEN..], |ty, data| {
        match ty {
            INET_DIAG_INFO => tcp_info = Some(data.to_vec()),
            _ => p.extend(nla(ty, data)),
        }
        Ok(())
    })
    .unwrap();
    p.extend(nla(INET_DIAG_INFO, &tcp_info.unwrap()[..len]));
    nlmsg(SOCK_DIAG_BY_FAMILY, &p)
}

/// An older kernel's shorter tcp_info: the fields it holds are read, the
/// ones past its end are `None`, never zero.
#[test]
fn a_short_tcp_info_leaves_the_missing_fields_none() {
    let full = TcpInfo {
        retransmits: Some(0),
        rto_us: Some(204_000),
        unacked: Some(0),
        last_data_sent_ms: Some(500),
        last_data_recv_ms: Some(200),
        last_ack_recv_ms: Some(200),
        rtt_us: Some(30),
        total_retrans: Some(0),
    };
    for len in 0..=280 {
        let mut out = Vec::new();
        parse_inet_messages(&with_tcp_info_of(len), &mut out).unwrap();
        let info = out[0].tcp_info.clone().expect("an INET_DIAG_INFO was sent");
        let has = |off: usize, size: usize| len >= off + size;
        let want = TcpInfo {
            retransmits: full.retransmits.filter(|_| has(TCPI_RETRANSMITS, 1)),
            rto_us: full.rto_us.filter(|_| has(TCPI_RTO, 4)),
            unacked: full.unacked.filter(|_| has(TCPI_UNACKED, 4)),
            last_data_sent_ms: full.last_data_sent_ms.filter(|_| has(TCPI_LAST_DATA_SENT, 4)),
            last_data_recv_ms: full.last_data_recv_ms.filter(|_| has(TCPI_LAST_DATA_RECV, 4)),
            last_ack_recv_ms: full.last_ack_recv_ms.filter(|_| has(TCPI_LAST_ACK_RECV, 4)),
            rtt_us: full.rtt_us.filter(|_| has(TCPI_RTT, 4)),
            total_retrans: full.total_retrans.filter(|_| has(TCPI_TOTAL_RETRANS, 4)),
        };
        assert_eq!(info, want, "tcp_info of {len} bytes");
        // The rest of the message is unaffected.
        assert_eq!(out[0].inode, 4_241_487);
        assert_eq!(out[0].meminfo.as_ref().map(|m| m.sndbuf), Some(3_939_840));
    }
    // 2.6.x's 104 bytes hold every field whystuck reads.
    let mut out = Vec::new();
    parse_inet_messages(&with_tcp_info_of(104), &mut out).unwrap();
    assert_eq!(out[0].tcp_info, Some(full));
}

/// A socket memory attribute shorter than its four required values is an
/// error; one with only those leaves the later values `None`.
#[test]
fn tcp_socket_memory_of_every_length() {
    let mut p = unhex(REAL_TCP)[NLMSG_HDRLEN..NLMSG_HDRLEN + INET_DIAG_MSG_LEN].to_vec();
    p.extend(nla(INET_DIAG_SKMEMINFO, &meminfo_bytes(&[1, 2, 3, 4, 5, 6])));
    let mut out = Vec::new();
    parse_inet_messages(&nlmsg(SOCK_DIAG_BY_FAMILY, &p), &mut out).unwrap();
    let m = out[0].meminfo.clone().unwrap();
    assert_eq!((m.sndbuf, m.wmem_queued, m.drops), (4, Some(6), None));
    for len in 0..16 {
        let mut p = p[..INET_DIAG_MSG_LEN].to_vec();
        p.extend(nla(INET_DIAG_SKMEMINFO, &vec![0u8; len]));
        let r = parse_inet_messages(&nlmsg(SOCK_DIAG_BY_FAMILY, &p), &mut Vec::new());
        assert_eq!(
            r.unwrap_err().kind(),
            ErrorKind::InvalidData,
            "skmeminfo of {len} bytes"
        );
    }
}
