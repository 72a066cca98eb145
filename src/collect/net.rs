//! Socket tables, read per network namespace and joined with fds by inode.
//!
//! In whystuck's own namespace the tables come from sock_diag netlink (the
//! only source of unix peers and send-buffer fill); in another namespace, or
//! under a fake `--proc-root`, from the target's `net/tcp`, `net/tcp6` and
//! `net/unix` text files. Unix sockets, which a host can have by the tens of
//! thousands, are read first, once per batch of samples, and filtered as
//! they are read: only the ones the batch kept fds for, and full ones, are
//! held (with the path each one's peer is bound to); a few are asked for
//! one by one. The TCP table is read at most once per sampling round, when
//! a batch holds a socket that is not a unix one, and shared by every
//! process in that namespace. The UDP table is read at most once per round,
//! when a batch kept a socket fd that is neither TCP nor unix (from
//! `net/udp` and `net/udp6` when sock_diag is not the source, or has no
//! UDP).

use super::dir::ProcDir;
use super::{parse, sockdiag};
use crate::snapshot::{Reason, ReasonKind, TcpSocket, UdpSocket, UnixSocket};
use crate::text::TargetString;
use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// One namespace's socket tables, each read when a batch first needs it,
/// once a round, and where they come from. TCP is held whole (a host has
/// few connections per process, and a process's are counted); unix
/// sockets, of which a host can have tens of thousands, are read for the
/// ones a batch of samples kept (see [`NetCache::unix_sockets`]).
pub struct NetTables {
    pub source: &'static str,
    /// Sorted by inode ([`NetCache::tcp_sockets`]).
    tcp: OnceCell<Result<Vec<TcpSocket>, Reason>>,
    /// Sorted by inode ([`NetCache::udp_sockets`]).
    udp: OnceCell<Result<Vec<UdpSocket>, Reason>>,
}

impl NetTables {
    fn new(source: &'static str) -> Self {
        NetTables {
            source,
            tcp: OnceCell::new(),
            udp: OnceCell::new(),
        }
    }
}

/// A TCP table sorted by inode, each socket joined with its other end on
/// this host.
fn tcp_table(tcp: impl IntoIterator<Item = TcpSocket>) -> Vec<TcpSocket> {
    let mut tcp: Vec<TcpSocket> = tcp.into_iter().filter(|s| s.inode != 0).collect();
    // A connection between two processes of this host appears twice,
    // with local and remote swapped: that names the other end.
    let by_ends: HashMap<(SocketAddr, SocketAddr), u64> = tcp.iter().map(|s| ((s.local, s.remote), s.inode)).collect();
    // A client still connecting (SYN_SENT) to a listener of this host:
    // its other end is the listening socket, bound to the address or to
    // every address of the family, on the port.
    let listeners: HashMap<SocketAddr, u64> = tcp
        .iter()
        .filter(|s| s.state == "LISTEN")
        .map(|s| (s.local, s.inode))
        .collect();
    let listener_of = |remote: SocketAddr| {
        let any = SocketAddr::new(
            match remote {
                SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
            },
            remote.port(),
        );
        listeners.get(&remote).or_else(|| listeners.get(&any)).copied()
    };
    for socket in &mut tcp {
        socket.peer_inode = match socket.state.as_ref() {
            "SYN_SENT" => listener_of(socket.remote),
            _ => by_ends.get(&(socket.remote, socket.local)).copied(),
        };
    }
    tcp.sort_unstable_by_key(|s| s.inode);
    tcp
}

/// One namespace's TCP sockets, sorted by inode.
pub struct TcpSockets<'a>(&'a [TcpSocket]);

impl TcpSockets<'_> {
    /// The TCP sockets among these inodes.
    pub fn among(&self, inodes: &[u64]) -> Vec<TcpSocket> {
        inodes
            .iter()
            .filter_map(|&i| find(self.0, i, |s| s.inode).cloned())
            .collect()
    }

    pub fn contains(&self, inode: u64) -> bool {
        find(self.0, inode, |s| s.inode).is_some()
    }
}

/// One namespace's UDP sockets, sorted by inode.
pub struct UdpSockets<'a>(&'a [UdpSocket]);

impl UdpSockets<'_> {
    pub fn get(&self, inode: u64) -> Option<&UdpSocket> {
        find(self.0, inode, |s| s.inode)
    }
}

/// The unix sockets of one namespace that a batch of samples needs, sorted
/// by inode.
pub struct UnixSockets(Vec<UnixSocket>);

impl UnixSockets {
    fn new(mut sockets: Vec<UnixSocket>) -> Self {
        sockets.sort_unstable_by_key(|s| s.inode);
        UnixSockets(sockets)
    }

    pub fn get(&self, inode: u64) -> Option<&UnixSocket> {
        find(&self.0, inode, |s| s.inode)
    }

    /// The sockets whose send buffer is full, wanted or not.
    pub fn full(&self) -> impl Iterator<Item = &UnixSocket> {
        self.0.iter().filter(|s| s.send_buffer_full() == Some(true))
    }
}

fn find<T>(table: &[T], inode: u64, key: fn(&T) -> u64) -> Option<&T> {
    table.binary_search_by_key(&inode, key).ok().map(|at| &table[at])
}

pub struct NetCache {
    /// `net:[N]` of whystuck itself, when collecting from the live /proc.
    own_netns: Option<Vec<u8>>,
    /// Each dump's deadline, and the run's, which no dump goes past.
    timeout: Duration,
    run_deadline: Instant,
    tables: HashMap<Vec<u8>, Rc<NetTables>>,
}

impl NetCache {
    pub fn new(live: bool, timeout: Duration, run_deadline: Instant) -> NetCache {
        let own_netns = live.then(|| std::fs::read_link("/proc/self/ns/net").ok()).flatten();
        NetCache {
            own_netns: own_netns.map(|p| p.into_os_string().into_encoded_bytes()),
            timeout,
            run_deadline,
            tables: HashMap::new(),
        }
    }

    /// Forget the tables: the next round reads fresh queues.
    pub fn start_round(&mut self) {
        self.tables.clear();
    }

    /// The tables of the namespace `pid` lives in, by its `ns/net` link,
    /// none of them read yet. One whose namespace cannot be named is read
    /// from its own files, under a key no other process shares.
    pub fn tables_for(&mut self, netns: Option<Vec<u8>>, pid: i32) -> Rc<NetTables> {
        let (key, source) = match netns {
            Some(key) if self.own_netns.as_deref() == Some(key.as_slice()) => (key, SOCK_DIAG),
            Some(key) => (key, PROC_NET),
            None => (format!("pid:{pid}").into_bytes(), PROC_NET),
        };
        Rc::clone(
            self.tables
                .entry(key)
                .or_insert_with(|| Rc::new(NetTables::new(source))),
        )
    }

    /// The TCP sockets of the namespace `tables` are for (`dir` is a
    /// process in it), read the first time a round asks.
    pub fn tcp_sockets<'a>(&self, tables: &'a NetTables, dir: &ProcDir) -> Result<TcpSockets<'a>, Reason> {
        let read = || match tables.source {
            SOCK_DIAG => {
                let tcp = sockdiag::dump_tcp(self.dump_timeout()?).map_err(dump_failed)?;
                Ok(tcp_table(tcp.into_iter().map(tcp_socket)))
            }
            _ => read_text_tcp(dir),
        };
        match tables.tcp.get_or_init(read) {
            Ok(tcp) => Ok(TcpSockets(tcp)),
            Err(reason) => Err(reason.clone()),
        }
    }

    /// The unix sockets of the namespace `tables` are for (`dir` is a
    /// process in it): those in `wanted`, and, unless `only_wanted`, every
    /// one whose send buffer is full (a wakeup socketpair losing signals,
    /// wanted or not). Read from the tables' source, filtered as it is read;
    /// every socket of `unknown` found to be a unix socket is taken out of
    /// it (what is left may be TCP).
    ///
    /// A few wanted sockets, with no full ones to find, are asked for one
    /// by one (with their peers, for the path each peer is bound to): the
    /// kernel looks through its unix sockets once per question instead of
    /// writing all of them out, tens of thousands on a busy host.
    pub fn unix_sockets(
        &self,
        tables: &NetTables,
        dir: &ProcDir,
        wanted: &HashSet<u64>,
        only_wanted: bool,
        unknown: &mut HashSet<u64>,
    ) -> Result<UnixSockets, Reason> {
        let keep = |s: &UnixSocket| wanted.contains(&s.inode) || (!only_wanted && s.send_buffer_full() == Some(true));
        if tables.source == SOCK_DIAG {
            let mut kept = Vec::new();
            // The peers of wanted sockets, for the path each is bound to (a
            // server's accepted socket carries its listener's): a connected
            // peer names the wanted socket as its own peer.
            let mut peers: Vec<(u64, TargetString)> = Vec::new();
            let mut each = |socket: UnixSocket| {
                unknown.remove(&socket.inode);
                if let (Some(peer), Some(path)) = (socket.peer_inode, &socket.path) {
                    if wanted.contains(&peer) {
                        peers.push((socket.inode, path.clone()));
                    }
                }
                if keep(&socket) {
                    kept.push(socket);
                }
            };
            let timeout = self.dump_timeout()?;
            if only_wanted && wanted.len() <= MAX_UNIX_QUESTIONS {
                let asked: Vec<u64> = wanted.iter().copied().collect();
                let mut found = Vec::new();
                sockdiag::query_unix(timeout, &asked, &mut |s| found.push(unix_socket(s))).map_err(dump_failed)?;
                let others: HashSet<u64> = found
                    .iter()
                    .filter_map(|s| s.peer_inode)
                    .filter(|peer| !wanted.contains(peer))
                    .collect();
                let others: Vec<u64> = others.into_iter().collect();
                let timeout = self.dump_timeout()?;
                sockdiag::query_unix(timeout, &others, &mut |s| found.push(unix_socket(s))).map_err(dump_failed)?;
                found.into_iter().for_each(&mut each);
            } else {
                sockdiag::dump_unix(timeout, &mut |s| each(unix_socket(s))).map_err(dump_failed)?;
            }
            for socket in &mut kept {
                let path = peers.iter().find(|(inode, _)| Some(*inode) == socket.peer_inode);
                socket.peer_path = path.map(|(_, path)| path.clone());
            }
            return Ok(UnixSockets::new(kept));
        }
        let mut all = parse::proc_net_unix(&read_text(dir, "net/unix")?);
        for socket in &all {
            unknown.remove(&socket.inode);
        }
        all.retain(keep);
        Ok(UnixSockets::new(all))
    }

    /// The UDP sockets of the namespace `tables` were read for (`dir` is a
    /// process in it), read the first time a round asks: from sock_diag
    /// when that is the tables' source and the kernel can dump UDP (the
    /// `udp_diag` module), else from the text files.
    pub fn udp_sockets<'a>(&self, tables: &'a NetTables, dir: &ProcDir) -> Result<UdpSockets<'a>, Reason> {
        let read = || {
            let mut udp = match tables.source == SOCK_DIAG {
                true => match sockdiag::dump_udp(self.dump_timeout()?) {
                    Ok(udp) => udp.into_iter().map(udp_socket).collect(),
                    Err(_) => read_text_udp(dir)?,
                },
                false => read_text_udp(dir)?,
            };
            udp.retain(|s| s.inode != 0);
            udp.sort_unstable_by_key(|s| s.inode);
            Ok(udp)
        };
        match tables.udp.get_or_init(read) {
            Ok(udp) => Ok(UdpSockets(udp)),
            Err(reason) => Err(reason.clone()),
        }
    }

    /// Each dump's deadline: its own timeout, cut to what is left of the run's.
    fn dump_timeout(&self) -> Result<Duration, Reason> {
        let left = self.run_deadline.saturating_duration_since(Instant::now());
        match left.is_zero() {
            true => Err(Reason::new(
                ReasonKind::TimedOut,
                "not read: the run's --timeout ran out",
            )),
            false => Ok(self.timeout.min(left)),
        }
    }
}

const SOCK_DIAG: &str = "sock_diag";
const PROC_NET: &str = "proc_net";

/// Wanted unix sockets asked for one by one, at most (with as many peers
/// again): each question costs about what a 45th of a dump does, whatever
/// the host's number of sockets.
const MAX_UNIX_QUESTIONS: usize = 16;

fn dump_failed(e: std::io::Error) -> Reason {
    let kind = match e.kind() {
        std::io::ErrorKind::TimedOut => ReasonKind::TimedOut,
        _ => ReasonKind::Error,
    };
    Reason::new(kind, format!("sock_diag netlink query failed: {e}"))
}

fn read_text(dir: &ProcDir, rel: &str) -> Result<Vec<u8>, Reason> {
    let mut buf = Vec::new();
    match dir.read(rel, &mut buf) {
        Ok(()) => Ok(buf),
        // A kernel without IPv6 has no tcp6 or udp6.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel.ends_with('6') => Ok(Vec::new()),
        Err(e) => Err(super::reason::reason_for(&e)),
    }
}

fn read_text_udp(dir: &ProcDir) -> Result<Vec<UdpSocket>, Reason> {
    let mut udp = Vec::new();
    for rel in ["net/udp", "net/udp6"] {
        udp.extend(parse::proc_net_udp(&read_text(dir, rel)?));
    }
    Ok(udp)
}

fn read_text_tcp(dir: &ProcDir) -> Result<Vec<TcpSocket>, Reason> {
    let mut tcp = Vec::new();
    for rel in ["net/tcp", "net/tcp6"] {
        tcp.extend(parse::proc_net_tcp(&read_text(dir, rel)?));
    }
    Ok(tcp_table(tcp))
}

fn tcp_socket(s: sockdiag::InetDiag) -> TcpSocket {
    let info = s.tcp_info.unwrap_or_default();
    // What of tcp_info means something in this state: nothing for a
    // listener (its `unacked` is its accept queue); the times and the RTT
    // only once the connection has been established (ESTABLISHED,
    // FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK, CLOSING); a CLOSE socket is bound
    // or torn down, never counted from a connection.
    let (connection, established) = match s.state {
        10 => (false, false),
        1 | 4 | 5 | 8 | 9 | 11 => (true, true),
        _ => (true, false),
    };
    let when = |v: Option<u32>| v.filter(|_| established);
    let ms = |us: Option<u32>| us.map(|us| f64::from(us) / 1000.0);
    TcpSocket {
        inode: s.inode,
        local: s.local,
        remote: s.remote,
        state: crate::linux::net::tcp_state_name(s.state).into(),
        tx_queue: s.tx_queue,
        rx_queue: s.rx_queue,
        peer_inode: None,
        last_recv_ms: when(info.last_data_recv_ms),
        last_send_ms: when(info.last_data_sent_ms),
        last_ack_ms: when(info.last_ack_recv_ms),
        retransmits: info.retransmits.map(u32::from).filter(|_| connection),
        total_retransmits: info.total_retrans.filter(|_| connection),
        unacked: info.unacked.filter(|_| connection),
        rtt_ms: ms(when(info.rtt_us)),
        rto_ms: ms(info.rto_us.filter(|_| connection)),
        wmem_queued: s.meminfo.as_ref().and_then(|m| m.wmem_queued),
        sndbuf: s.meminfo.as_ref().map(|m| m.sndbuf),
    }
}

fn udp_socket(s: sockdiag::InetDiag) -> UdpSocket {
    UdpSocket {
        inode: s.inode,
        local: s.local,
        remote: s.remote,
        state: crate::linux::net::udp_state_name(s.state).into(),
        rx_queue: s.rx_queue,
        tx_queue: s.tx_queue,
    }
}

fn unix_socket(s: sockdiag::UnixDiag) -> UnixSocket {
    let state = match s.state {
        10 => "LISTEN",
        1 => "ESTABLISHED",
        2 => "CONNECTING",
        _ => "UNCONNECTED",
    };
    UnixSocket {
        inode: s.inode,
        kind: parse::unix_type_name(s.sock_type).into(),
        state: state.into(),
        // Abstract names start with NUL; show them as `ss` and /proc/net/unix do.
        path: s.path.map(|p| match p.split_first() {
            Some((0, rest)) => TargetString::new([b"@", rest].concat()),
            _ => TargetString::new(p),
        }),
        peer_inode: s.peer_inode.filter(|&p| p != 0),
        peer_path: None,
        rqueue: s.rqueue.filter(|_| s.wqueue.is_some()),
        wqueue: s.wqueue.filter(|_| s.rqueue.is_some()),
        wmem_alloc: s.meminfo.as_ref().map(|m| m.wmem_alloc),
        sndbuf: s.meminfo.as_ref().map(|m| m.sndbuf),
    }
}
