//! Parsers for the /proc files whystuck reads: pure functions from bytes to
//! snapshot facts, so they can be tested and fuzzed without a process.
//!
//! Inputs are hostile (a comm can contain `) (`, a fake tree can hold
//! anything), so nothing here indexes blindly or panics: unknown lines are
//! skipped, missing fields become `None`, and only a file that cannot mean
//! anything is an error.

use crate::snapshot::{EpollTarget, FdInfo, Io, SchedStat, Stat, Status, Syscall, TcpSocket, UdpSocket, UnixSocket};

/// `/proc/locks` and the `lock:` lines of an fdinfo, parsed beside the
/// search that reads them.
pub use super::locks::{fdinfo_locks, lock_line, proc_locks};
use crate::text::TargetString;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// `/proc/PID/stat`. The comm sits between the first `(` and the *last* `)`
/// because it may itself contain parentheses and spaces.
pub fn stat(buf: &[u8]) -> Result<Stat, String> {
    let open = buf.iter().position(|&b| b == b'(').ok_or("no '(' before the comm")?;
    let close = buf.iter().rposition(|&b| b == b')').ok_or("no ')' after the comm")?;
    if close < open {
        return Err("')' before '('".into());
    }
    let comm = TargetString::new(&buf[open + 1..close]);
    let rest = std::str::from_utf8(&buf[close + 1..]).map_err(|_| "fields after the comm are not text")?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let state = match fields.first().map(|s| s.as_bytes()) {
        Some([c]) if c.is_ascii_alphabetic() => *c as char,
        _ => return Err("no state letter after the comm".into()),
    };
    Ok(Stat {
        comm,
        state,
        ppid: field(&fields, 1),
        pgrp: field(&fields, 2),
        session: field(&fields, 3),
        tty_nr: field(&fields, 4),
        tpgid: field(&fields, 5),
        flags: field(&fields, 6),
        utime: field(&fields, 11),
        stime: field(&fields, 12),
        num_threads: field(&fields, 17),
        starttime: field(&fields, 19),
        rss_pages: field(&fields, 21),
        processor: field(&fields, 36),
        exit_code: field(&fields, 49),
    })
}

fn field<T: std::str::FromStr>(fields: &[&str], i: usize) -> Option<T> {
    fields.get(i)?.parse().ok()
}

/// `/proc/PID/schedstat`: "run_ns wait_ns timeslices".
pub fn schedstat(buf: &[u8]) -> Result<SchedStat, String> {
    let text = std::str::from_utf8(buf).map_err(|_| "not text")?;
    let mut fields = text.split_ascii_whitespace().map(str::parse::<u64>);
    match (fields.next(), fields.next(), fields.next()) {
        (Some(Ok(run_ns)), Some(Ok(wait_ns)), Some(Ok(timeslices))) => Ok(SchedStat {
            run_ns,
            wait_ns,
            timeslices,
        }),
        _ => Err(format!("not three numbers: {:?}", text.trim())),
    }
}

/// `/proc/uptime`: seconds since boot, as milliseconds.
pub fn uptime_ms(buf: &[u8]) -> Option<u64> {
    let seconds: f64 = std::str::from_utf8(buf).ok()?.split_whitespace().next()?.parse().ok()?;
    Some((seconds * 1000.0) as u64)
}

/// `se.exec_start` of `/proc/PID/task/TID/sched`: when the task last ran,
/// in milliseconds of the scheduler's clock.
pub fn sched_exec_start(buf: &[u8]) -> Result<f64, String> {
    let text = std::str::from_utf8(buf).map_err(|_| "not text")?;
    let line = text
        .lines()
        .find(|l| l.starts_with("se.exec_start"))
        .ok_or("no se.exec_start line")?;
    let value = line.split(':').nth(1).ok_or("no value after se.exec_start")?;
    value
        .trim()
        .parse()
        .map_err(|_| format!("se.exec_start {:?} is not a number", value.trim()))
}

/// `/proc/PID/task/TID/stack`: one frame per line, `[<0>] pipe_read+0x2d1/0x3b0`
/// (the address is zeroed for unprivileged readers); the frames without
/// their `[<...>]` prefix.
pub fn kernel_stack(buf: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(buf)
        .lines()
        .map(|l| match l.split_once("] ") {
            Some((_, frame)) => frame.trim().to_string(),
            None => l.trim().to_string(),
        })
        .filter(|f| !f.is_empty())
        .collect()
}

/// `/proc/PID/status`: only the lines whystuck uses.
pub fn status(buf: &[u8]) -> Status {
    let mut status = Status::default();
    for (key, value) in key_values(buf) {
        let hex = || u64::from_str_radix(value, 16).ok();
        match key {
            "Uid" => {
                let ids: Vec<u32> = value.split_ascii_whitespace().filter_map(|v| v.parse().ok()).collect();
                status.uid = ids.try_into().ok();
            }
            "TracerPid" => status.tracer_pid = value.parse().ok(),
            "Tgid" => status.tgid = value.parse().ok(),
            "VmRSS" => status.vm_rss_kib = value.trim_end_matches("kB").trim().parse().ok(),
            "SigPnd" => status.sig_pending = hex(),
            "ShdPnd" => status.sig_shared_pending = hex(),
            "SigBlk" => status.sig_blocked = hex(),
            "SigIgn" => status.sig_ignored = hex(),
            "SigCgt" => status.sig_caught = hex(),
            "voluntary_ctxt_switches" => status.voluntary_ctxt_switches = value.parse().ok(),
            "nonvoluntary_ctxt_switches" => status.nonvoluntary_ctxt_switches = value.parse().ok(),
            _ => {}
        }
    }
    status
}

/// `/proc/PID/io`.
pub fn io(buf: &[u8]) -> Io {
    let mut io = Io::default();
    for (key, value) in key_values(buf) {
        let value = value.parse().ok();
        match key {
            "rchar" => io.rchar = value,
            "wchar" => io.wchar = value,
            "syscr" => io.syscr = value,
            "syscw" => io.syscw = value,
            "read_bytes" => io.read_bytes = value,
            "write_bytes" => io.write_bytes = value,
            _ => {}
        }
    }
    io
}

/// The value of one `key:` line of a status-like file.
pub fn line_value<'a>(buf: &'a [u8], key: &str) -> Option<&'a str> {
    key_values(buf).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// The total thread count of `/proc/loadavg` (`0.00 0.01 0.05 1/123 4567`).
pub fn loadavg_threads(buf: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(buf).ok()?;
    text.split_ascii_whitespace().nth(3)?.split_once('/')?.1.parse().ok()
}

/// `key:<whitespace>value` lines, values trimmed; lines without a colon or
/// that are not UTF-8 are skipped.
fn key_values(buf: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    buf.split(|&b| b == b'\n')
        .filter_map(|line| std::str::from_utf8(line).ok())
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
}

/// `/proc/PID/task/TID/syscall`: `running`, or `NR arg0 .. arg5 sp pc` (NR -1
/// when blocked outside a syscall, then only `sp pc` follow).
pub fn syscall(buf: &[u8]) -> Result<Syscall, String> {
    let text = std::str::from_utf8(buf).map_err(|_| "not text")?.trim();
    if text == "running" {
        return Ok(Syscall::Running);
    }
    let mut words = text.split_ascii_whitespace();
    let nr: i64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("no syscall number in {text:?}"))?;
    let mut args: Vec<u64> = words
        .map(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad argument in {text:?}"))?;
    // The last two words are the stack and instruction pointers.
    args.truncate(if nr < 0 { 0 } else { args.len().saturating_sub(2).min(6) });
    Ok(Syscall::Blocked {
        nr,
        args: args.into_boxed_slice(),
    })
}

/// `/proc/PID/fdinfo/N`.
pub fn fdinfo(buf: &[u8]) -> FdInfo {
    let mut info = FdInfo::default();
    for line in buf.split(|&b| b == b'\n').filter_map(|l| std::str::from_utf8(l).ok()) {
        if let Some(rest) = line.strip_prefix("tfd:") {
            if let Some(target) = epoll_target(rest) {
                info.epoll_targets.push(target);
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "flags" => info.flags = u32::from_str_radix(value, 8).ok(),
            "pos" => info.pos = value.parse().ok(),
            "ino" => info.ino = value.parse().ok(),
            "eventfd-count" => info.eventfd_count = u64::from_str_radix(value, 16).ok(),
            _ => {}
        }
    }
    info
}

/// The rest of a `tfd:` line: `5 events: 19 data: 5 pos:0 ino:6a12 sdev:f`.
fn epoll_target(rest: &str) -> Option<EpollTarget> {
    let mut words = rest.split_ascii_whitespace();
    let fd = words.next()?.parse().ok()?;
    let mut events = 0;
    let mut inode = None;
    while let Some(word) = words.next() {
        if word == "events:" {
            events = u32::from_str_radix(words.next()?, 16).ok()?;
        } else if let Some(ino) = word.strip_prefix("ino:") {
            inode = u64::from_str_radix(ino, 16).ok();
        }
    }
    Some(EpollTarget { fd, events, inode })
}

/// `/proc/PID/cmdline`: NUL-separated arguments. A process that rewrote its
/// command line without NULs yields one argument.
pub fn cmdline(buf: &[u8]) -> Vec<TargetString> {
    let buf = buf.strip_suffix(b"\0").unwrap_or(buf);
    if buf.is_empty() {
        return Vec::new();
    }
    buf.split(|&b| b == 0).map(TargetString::new).collect()
}

/// `/proc/PID/task/TID/children`: space-separated pids.
pub fn pids(buf: &[u8]) -> Vec<i32> {
    std::str::from_utf8(buf)
        .unwrap_or("")
        .split_ascii_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

pub fn unix_type_name(sock_type: u8) -> &'static str {
    match sock_type {
        1 => "stream",
        2 => "dgram",
        5 => "seqpacket",
        _ => "unknown",
    }
}

/// `/proc/PID/net/tcp` or `tcp6`: one socket per line after the header.
/// Malformed lines are skipped.
pub fn proc_net_tcp(buf: &[u8]) -> Vec<TcpSocket> {
    let text = String::from_utf8_lossy(buf);
    text.lines().skip(1).filter_map(tcp_line).collect()
}

/// `/proc/PID/net/udp` or `udp6`, the same way.
pub fn proc_net_udp(buf: &[u8]) -> Vec<UdpSocket> {
    let text = String::from_utf8_lossy(buf);
    text.lines().skip(1).filter_map(udp_line).collect()
}

/// The fields the TCP and UDP tables share:
/// `sl local_address rem_address st tx_queue:rx_queue tr tm->when retrnsmt uid timeout inode ...`.
struct InetLine {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    tx_queue: u32,
    rx_queue: u32,
    inode: u64,
}

fn inet_line(line: &str) -> Option<InetLine> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    let (tx, rx) = f.get(4)?.split_once(':')?;
    Some(InetLine {
        local: hex_socket_addr(f.get(1)?)?,
        remote: hex_socket_addr(f.get(2)?)?,
        state: u8::from_str_radix(f.get(3)?, 16).ok()?,
        tx_queue: u32::from_str_radix(tx, 16).ok()?,
        rx_queue: u32::from_str_radix(rx, 16).ok()?,
        inode: f.get(9)?.parse().ok()?,
    })
}

fn tcp_line(line: &str) -> Option<TcpSocket> {
    let l = inet_line(line)?;
    Some(TcpSocket {
        local: l.local,
        remote: l.remote,
        state: crate::linux::net::tcp_state_name(l.state).into(),
        tx_queue: l.tx_queue,
        rx_queue: l.rx_queue,
        inode: l.inode,
        peer_inode: None,
        // Not in the text: tcp_info and socket memory come from sock_diag.
        last_recv_ms: None,
        last_send_ms: None,
        last_ack_ms: None,
        retransmits: None,
        total_retransmits: None,
        unacked: None,
        rtt_ms: None,
        rto_ms: None,
        wmem_queued: None,
        sndbuf: None,
    })
}

fn udp_line(line: &str) -> Option<UdpSocket> {
    let l = inet_line(line)?;
    Some(UdpSocket {
        local: l.local,
        remote: l.remote,
        state: crate::linux::net::udp_state_name(l.state).into(),
        tx_queue: l.tx_queue,
        rx_queue: l.rx_queue,
        inode: l.inode,
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits + port (IPv6): each 32-bit word
/// is printed in host byte order.
fn hex_socket_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..addr.len() / 8)
        .map(|i| addr.get(i * 8..i * 8 + 8).and_then(|w| u32::from_str_radix(w, 16).ok()))
        .collect::<Option<_>>()?;
    let ip = match words.as_slice() {
        [w] if addr.len() == 8 => Ipv4Addr::from(w.to_ne_bytes()).into(),
        [a, b, c, d] if addr.len() == 32 => {
            let mut bytes = [0u8; 16];
            for (chunk, w) in bytes.chunks_exact_mut(4).zip([a, b, c, d]) {
                chunk.copy_from_slice(&w.to_ne_bytes());
            }
            Ipv6Addr::from(bytes).into()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// `/proc/PID/net/unix`: `Num RefCount Protocol Flags Type St Inode [Path]`.
/// The text format has no peer and no queues; those stay `None`.
pub fn proc_net_unix(buf: &[u8]) -> Vec<UnixSocket> {
    buf.split(|&b| b == b'\n').skip(1).filter_map(unix_line).collect()
}

fn unix_line(line: &[u8]) -> Option<UnixSocket> {
    let mut rest = line;
    let mut fields = Vec::with_capacity(7);
    while fields.len() < 7 {
        let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
        rest = &rest[start..];
        let end = rest.iter().position(|b| b.is_ascii_whitespace()).unwrap_or(rest.len());
        fields.push(std::str::from_utf8(&rest[..end]).ok()?);
        rest = &rest[end..];
    }
    let path = rest.strip_prefix(b" ").unwrap_or(rest);
    let flags = u32::from_str_radix(fields[3], 16).ok()?;
    let state = match (flags & 0x0001_0000 != 0, fields[5]) {
        (true, _) => "LISTEN",
        (_, "03") => "ESTABLISHED",
        (_, "02") => "CONNECTING",
        (_, "04") => "DISCONNECTING",
        _ => "UNCONNECTED",
    };
    Some(UnixSocket {
        inode: fields[6].parse().ok()?,
        kind: unix_type_name(u8::from_str_radix(fields[4], 16).ok()?).into(),
        state: state.into(),
        path: (!path.is_empty()).then(|| TargetString::new(path)),
        peer_inode: None,
        peer_path: None,
        rqueue: None,
        wqueue: None,
        wmem_alloc: None,
        sndbuf: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sched_and_stack_as_the_kernel_writes_them() {
        let sched = b"cat (4242, #threads: 1)\n-------------------\nse.exec_start                                :       3478955.135520\nse.vruntime  :  1.0\n";
        assert_eq!(sched_exec_start(sched), Ok(3_478_955.135_52));
        assert!(sched_exec_start(b"se.vruntime : 1\n").is_err());
        assert!(sched_exec_start(b"se.exec_start : x\n").is_err());
        let stack = b"[<0>] pipe_read+0x2d1/0x3b0\n[<0>] vfs_read+0x2a5/0x2e0\n[<0>] ksys_read+0x5f/0xe0\n";
        assert_eq!(
            kernel_stack(stack),
            ["pipe_read+0x2d1/0x3b0", "vfs_read+0x2a5/0x2e0", "ksys_read+0x5f/0xe0"]
        );
        assert!(kernel_stack(b"").is_empty());
    }

    #[test]
    fn stat_with_hostile_comm() {
        let line = b"42 (a) (b) S 1 42 42 0 -1 4194304 1 0 0 0 7 3 0 0 20 0 2 0 1234 100 55 1\n";
        let s = stat(line).unwrap();
        assert_eq!(s.comm.as_bytes(), b"a) (b");
        assert_eq!((s.state, s.ppid, s.utime, s.stime), ('S', Some(1), Some(7), Some(3)));
        assert_eq!(
            (s.num_threads, s.starttime, s.rss_pages),
            (Some(2), Some(1234), Some(55))
        );
        assert_eq!(s.flags, Some(4194304));
    }

    #[test]
    fn stat_from_a_kernel_with_fewer_fields() {
        let s = stat(b"7 (old) R 1 7 7 0 -1 0 0 0 0 0 5").unwrap();
        assert_eq!(
            (s.state, s.ppid, s.utime, s.stime, s.starttime),
            ('R', Some(1), Some(5), None, None)
        );
        assert_eq!(s.cpu_ticks(), None, "missing stime is not zero");
    }

    #[test]
    fn stat_garbage_is_an_error() {
        for bad in [
            &b""[..],
            b"12 comm S",
            b"12 (x)",
            b"12 (x) 5 1",
            b") (",
            b"\xff (\xff) \xff",
        ] {
            assert!(stat(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn status_fields() {
        let text = b"Name:\tx\nUid:\t1000\t1000\t1000\t1000\nTracerPid:\t77\nVmRSS:\t  2048 kB\n\
SigPnd:\t0000000000000100\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\n\
SigIgn:\t0000000001001000\nSigCgt:\t0000000180000002\nvoluntary_ctxt_switches:\t12\n\
nonvoluntary_ctxt_switches:\t3\n";
        let s = status(text);
        assert_eq!(s.uid, Some([1000; 4]));
        assert_eq!(s.tracer_pid, Some(77));
        assert_eq!(s.vm_rss_kib, Some(2048));
        assert_eq!(s.sig_pending, Some(0x100));
        assert_eq!(s.sig_caught, Some(0x1_8000_0002));
        assert_eq!(
            (s.voluntary_ctxt_switches, s.nonvoluntary_ctxt_switches),
            (Some(12), Some(3))
        );
        assert_eq!(
            status(b"Name: kworker\n").vm_rss_kib,
            None,
            "kernel threads have no VmRSS"
        );
    }

    #[test]
    fn syscall_forms() {
        assert_eq!(syscall(b"running\n").unwrap(), Syscall::Running);
        assert_eq!(
            syscall(b"1 0x1 0x5632 0x1000 0x0 0x0 0x0 0x7fff 0x7f9e\n").unwrap(),
            Syscall::Blocked {
                nr: 1,
                args: Box::new([1, 0x5632, 0x1000, 0, 0, 0])
            }
        );
        assert_eq!(
            syscall(b"-1 0x7fff 0x7f9e\n").unwrap(),
            Syscall::Blocked {
                nr: -1,
                args: Box::new([])
            }
        );
        assert_eq!(
            syscall(b"-1 0x0 0x0\n").unwrap(),
            Syscall::Blocked {
                nr: -1,
                args: Box::new([])
            }
        );
        assert!(syscall(b"").is_err());
        assert!(syscall(b"x 0x1").is_err());
        assert!(syscall(b"1 0xzz").is_err());
    }

    #[test]
    fn fdinfo_flags_epoll_and_missing_flags_line() {
        let info = fdinfo(b"pos:\t0\nflags:\t02004002\nmnt_id:\t17\nino:\t1038\ntfd:        5 events:       19 data:                5  pos:0 ino:6a12 sdev:f\n");
        assert_eq!((info.flags, info.ino), (Some(0o2004002), Some(1038)));
        assert_eq!(
            info.epoll_targets,
            vec![EpollTarget {
                fd: 5,
                events: 0x19,
                inode: Some(0x6a12)
            }]
        );
        let bare = fdinfo(b"pos:\t0\n");
        assert_eq!(bare.flags, None, "no flags line is unknown flags, not 0");
        assert_eq!(fdinfo(b"eventfd-count:  3\n").eventfd_count, Some(3));
    }

    #[test]
    fn cmdline_splits_on_nul() {
        assert!(cmdline(b"").is_empty());
        let args = cmdline(b"python3\0-c\0\0a) (b\0");
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        assert_eq!(args, [&b"python3"[..], b"-c", b"", b"a) (b"]);
        assert_eq!(cmdline(b"nginx: worker process").len(), 1);
    }

    #[test]
    fn proc_net_tcp_v4_and_v6() {
        let v4 = b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0\n   1: garbage\n";
        let socks = proc_net_tcp(v4);
        assert_eq!(socks.len(), 1);
        let s = &socks[0];
        assert_eq!(
            (s.local.to_string(), s.remote.to_string(), &*s.state),
            ("127.0.0.1:8080".to_string(), "0.0.0.0:0".to_string(), "LISTEN")
        );
        assert_eq!((s.tx_queue, s.rx_queue, s.inode), (0, 3, 31337));
        let v6 = b"header\n   0: 00000000000000000000000001000000:0050 00000000000000000000000001000000:A1B2 01 00000010:00000000 00:00000000 00000000  1000        0 555 1\n";
        let s = &proc_net_tcp(v6)[0];
        assert_eq!(
            (s.local.to_string(), s.remote.to_string(), &*s.state, s.tx_queue),
            ("[::1]:80".to_string(), "[::1]:41394".to_string(), "ESTABLISHED", 16)
        );
    }

    #[test]
    fn proc_net_udp_connected_and_not() {
        // From /proc/net/udp and udp6 on Linux 6.18: a socket connected to a
        // resolver, a server with 832 bytes of datagrams queued, and a v6 one.
        let v4 = b"   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n 2037: 0100007F:CFCD 3500007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 4241490 2 0000000000000000 0\n 2038: 0100007F:AE61 00000000:0000 07 00000000:00000340 00:00000000 00000000     0        0 4241491 2 0000000000000000 0\n";
        let socks = proc_net_udp(v4);
        let got: Vec<_> = socks
            .iter()
            .map(|s| {
                (
                    s.local.to_string(),
                    s.remote.to_string(),
                    &*s.state,
                    s.rx_queue,
                    s.inode,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "127.0.0.1:53197".into(),
                    "127.0.0.53:53".into(),
                    "ESTABLISHED",
                    0,
                    4_241_490
                ),
                (
                    "127.0.0.1:44641".into(),
                    "0.0.0.0:0".into(),
                    "UNCONNECTED",
                    832,
                    4_241_491
                ),
            ]
        );
        assert!(socks[0].connected() && !socks[1].connected());
        let v6 = b"header\n 1: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 777 2 0000000000000000 0\n";
        let s = &proc_net_udp(v6)[0];
        assert_eq!(
            (s.local.to_string(), s.remote.to_string(), s.connected()),
            ("[::1]:53".into(), "[::]:0".into(), false)
        );
    }

    #[test]
    fn proc_net_unix_lines() {
        let text = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
0000000000000000: 00000002 00000000 00010000 0001 01 20012 /run/my sock\n\
0000000000000000: 00000003 00000000 00000000 0001 03 20013\n\
0000000000000000: 00000002 00000000 00000000 0002 01 20014 @abstract\n";
        let socks = proc_net_unix(text);
        assert_eq!(socks.len(), 3);
        assert_eq!(
            (&*socks[0].state, socks[0].path.as_ref().unwrap().as_bytes()),
            ("LISTEN", &b"/run/my sock"[..])
        );
        assert_eq!(
            (&*socks[1].state, socks[1].path.is_none(), socks[1].inode),
            ("ESTABLISHED", true, 20013)
        );
        assert_eq!(socks[2].kind, "dgram");
    }
}
