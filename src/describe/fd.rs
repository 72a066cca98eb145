//! An fd in words: the long form a finding names ("fd 1, a pipe (write
//! end), 65536/65536 bytes buffered, read by pid 1200 (python3) fd 3") and
//! the brief one an epoll summary lists ("pipe from pid 1200 (python3),
//! empty").

use super::{bytes, elapsed, pipe_fill, process_name};
use crate::classify::finding::{FdFacts, FdWhat, Peer, TcpFacts, UdpFacts, Unseen};
use crate::linux::fd::Access;

/// What an fd is, with the facts that matter for a wait on it and who holds
/// its other end.
pub fn long(f: &FdFacts) -> String {
    let what = match &f.what {
        FdWhat::Missing => return format!("fd {} (not in the fd table)", f.fd),
        FdWhat::Fifo { path, access, fill, .. } => {
            let end = access.map(|a| format!(" ({} end)", a.name())).unwrap_or_default();
            let fill = match fill {
                Some(Ok(fill)) => format!(", {}", pipe_fill(fill)),
                Some(Err(reason)) => format!(", fill unavailable ({reason})"),
                None => " (fill not probed)".to_string(),
            };
            format!("a FIFO {}{end}{fill}", path.escaped())
        }
        FdWhat::Pipe { access, fill } => {
            let end = access.map(|a| format!(" ({} end)", a.name())).unwrap_or_default();
            let fill = match fill {
                Some(Ok(fill)) => format!(", {}", pipe_fill(fill)),
                Some(Err(reason)) => format!(", fill unavailable ({reason})"),
                None => String::new(),
            };
            format!("a pipe{end}{fill}")
        }
        FdWhat::Tcp(t) if t.state == "LISTEN" => format!(
            "TCP {} LISTEN ({} of {} pending connections)",
            t.local, t.rx_queue, t.tx_queue
        ),
        FdWhat::Tcp(t) => format!(
            "TCP {} -> {} {} (recv-q {}, send-q {}){}",
            t.local,
            t.remote,
            t.state,
            t.rx_queue,
            t.tx_queue,
            tcp_timeline(t)
        ),
        FdWhat::Unix(u) => {
            let path = u.path.as_ref().map(|p| format!(" {}", p.escaped())).unwrap_or_default();
            let peer = u.peer_inode.map(|p| format!(", peer socket:[{p}]")).unwrap_or_default();
            let to = u
                .peer_path
                .as_ref()
                .map(|p| format!(" at {}", p.escaped()))
                .unwrap_or_default();
            let sndbuf = u
                .send_buffer
                .map(|(used, size)| format!(", send buffer {used}/{size} bytes"))
                .unwrap_or_default();
            format!("unix {} socket{path} {}{peer}{to}{sndbuf}", u.kind, u.state)
        }
        FdWhat::Udp(u) => format!("{} (recv-q {})", udp(u), u.rx_queue),
        FdWhat::OtherSocket { inode } => format!("socket:[{inode}] (not TCP, UDP or unix)"),
        FdWhat::Other { kind, target } => format!("{} {}", kind.name(), target.escaped()),
    };
    let what = format!("fd {}, {what}", f.fd);
    let (pipe, verb) = match &f.what {
        FdWhat::Pipe {
            access: Some(Access::Write),
            ..
        } => (true, "read by"),
        FdWhat::Pipe {
            access: Some(Access::Read),
            ..
        } => (true, "written by"),
        FdWhat::Pipe { .. } => (true, "other end held by"),
        FdWhat::Fifo {
            searched: true,
            access: Some(Access::Write),
            ..
        } => (true, "read by"),
        FdWhat::Fifo {
            searched: true,
            access: Some(Access::Read),
            ..
        } => (true, "written by"),
        FdWhat::Fifo { searched: true, .. } => (true, "other end held by"),
        FdWhat::Tcp(_) | FdWhat::Unix(_) | FdWhat::Udp(_) | FdWhat::OtherSocket { .. } => (false, "other end held by"),
        _ => return what,
    };
    let unseen = f
        .unseen
        .as_ref()
        .map(|u| format!(" ({})", unseen(u)))
        .unwrap_or_default();
    match f.peers.as_slice() {
        [] if !pipe => what,
        [] => format!("{what}, no other end found{unseen}"),
        peers => {
            let names: Vec<String> = peers
                .iter()
                .take(3)
                .map(|p| match p.pid == f.pid {
                    true => format!("itself (fd {})", p.fd),
                    false => format!("{} fd {}", peer_name(p), p.fd),
                })
                .collect();
            let more = match peers.len() {
                n if n > 3 => format!(" and {} more", n - 3),
                _ => String::new(),
            };
            format!("{what}, {verb} {}{more}{unseen}", names.join(", "))
        }
    }
}

/// A few words on an fd: "pipe from pid 1200 (python3), empty", "TCP
/// 10.0.0.1:5 -> 10.0.0.2:443 ESTABLISHED", "timerfd".
pub fn brief(f: &FdFacts) -> String {
    let whom = match f.peers.as_slice() {
        [] => String::new(),
        [one, ..] if one.pid == f.pid => " itself".to_string(),
        [one] => format!(" {}", peer_name(one)),
        [one, rest @ ..] => format!(" {} and {} more", peer_name(one), rest.len()),
    };
    match &f.what {
        FdWhat::Missing => "closed".into(),
        FdWhat::Pipe { access, fill } => {
            let (dir, fill) = match (access, fill) {
                (Some(Access::Write), _) => ("to", String::new()),
                (_, Some(Ok(p))) if p.buffered_bytes == 0 => ("from", ", empty".to_string()),
                (_, Some(Ok(p))) => ("from", format!(", {} bytes buffered", p.buffered_bytes)),
                _ => ("from", String::new()),
            };
            if whom.is_empty() {
                format!("pipe{fill}")
            } else {
                format!("pipe {dir}{whom}{fill}")
            }
        }
        FdWhat::Tcp(TcpFacts { local, state, .. }) if state == "LISTEN" => format!("TCP {local} LISTEN"),
        FdWhat::Tcp(t) => format!("TCP {} -> {} {}{}", t.local, t.remote, t.state, tcp_timeline(t)),
        FdWhat::Unix(u) if whom.is_empty() => format!("unix {} socket", u.kind),
        FdWhat::Unix(u) => format!("unix {} socket to{whom}", u.kind),
        FdWhat::Udp(u) => udp(u),
        FdWhat::OtherSocket { .. } => "socket".into(),
        FdWhat::Fifo { .. } => "fifo".into(),
        FdWhat::Other { kind, .. } => kind.name().to_string(),
    }
}

/// "UDP 127.0.0.1:40000 -> 127.0.0.53:53", or "UDP 0.0.0.0:5353
/// UNCONNECTED" for a socket that is not connected.
fn udp(u: &UdpFacts) -> String {
    match u.connected() {
        true => format!("UDP {} -> {} {}", u.local, u.remote, u.state),
        false => format!("UDP {} {}", u.local, u.state),
    }
}

/// What a TCP connection last did: ", nothing received for 10m12s",
/// ", 5 SYN retransmits", ", 12.0 KiB unacknowledged, 6 retransmits: the
/// peer or the path is not answering".
fn tcp_timeline(t: &TcpFacts) -> String {
    let mut said = String::new();
    if t.state == "SYN_SENT" {
        if let Some(n) = t.retransmits.filter(|&n| n > 0) {
            said.push_str(&format!(", {n} SYN retransmit{}", if n == 1 { "" } else { "s" }));
        }
        return said;
    }
    if let Some(ms) = t.last_recv_ms.filter(|&ms| ms >= 1000) {
        said.push_str(&format!(", nothing received for {}", elapsed(u64::from(ms))));
        // Sent since: it asked, and waits for an answer.
        if let Some(sent) = t.last_send_ms.filter(|&sent| sent < ms) {
            said.push_str(&format!(" (last sent {} ago)", elapsed(u64::from(sent))));
        }
    }
    if let (Some(n), true) = (t.retransmits.filter(|&n| n > 0), t.tx_queue > 0) {
        said.push_str(&format!(
            ", {} unacknowledged, {n} retransmit{}: the peer or the path is not answering",
            bytes(u64::from(t.tx_queue)),
            if n == 1 { "" } else { "s" }
        ));
    }
    said
}

/// Why the holders found of a pipe or socket may not be all of them.
pub fn unseen(unseen: &Unseen) -> String {
    match unseen {
        Unseen::Hidden(setting) => format!("/proc hides other users' processes (hidepid={setting})"),
        Unseen::Unsearchable(1) => "1 process not searchable".to_string(),
        Unseen::Unsearchable(n) => format!("{n} processes not searchable"),
    }
}

fn peer_name(peer: &Peer) -> String {
    process_name(peer.pid, peer.comm.as_ref())
}
