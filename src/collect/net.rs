//! Socket tables, read once per network namespace per sampling round.
//!
//! In whystuck's own namespace the tables come from sock_diag netlink (the
//! only source of unix peers and send-buffer fill); in another namespace, or
//! under a fake `--proc-root`, from the target's `net/tcp`, `net/tcp6` and
//! `net/unix` text files. Either way a table is read once and shared by every
//! process in that namespace, then joined with fds by inode.

use super::dir::ProcDir;
use super::{parse, sockdiag};
use crate::snapshot::{Reason, ReasonKind, Sockets, TcpSocket, UnixSocket};
use crate::text::TargetString;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// One namespace's tables, sorted by inode: a few tens of bytes per socket,
/// however many thousands a host has.
pub struct NetTables {
    pub source: &'static str,
    tcp: Vec<TcpSocket>,
    unix: UnixTable,
}

enum UnixTable {
    /// From sock_diag: compact entries, made into [`UnixSocket`]s on demand.
    Diag(Vec<UnixEntry>),
    /// From `net/unix` text (another namespace, a fake tree).
    Text(Vec<UnixSocket>),
}

/// A unix socket from sock_diag, as held in a table.
struct UnixEntry {
    inode: u64,
    peer: u64,
    queues: Option<(u32, u32)>,
    memory: Option<(u32, u32)>,
    sock_type: u8,
    state: u8,
    path: Option<Box<[u8]>>,
}

impl UnixEntry {
    fn socket(&self) -> UnixSocket {
        let state = match self.state {
            10 => "LISTEN",
            1 => "ESTABLISHED",
            2 => "CONNECTING",
            _ => "UNCONNECTED",
        };
        UnixSocket {
            inode: self.inode,
            kind: parse::unix_type_name(self.sock_type).into(),
            state: state.into(),
            // Abstract names start with NUL; show them as `ss` and /proc/net/unix do.
            path: self.path.as_deref().map(|p| match p.split_first() {
                Some((0, rest)) => TargetString::new([b"@", rest].concat()),
                _ => TargetString::new(p),
            }),
            peer_inode: (self.peer != 0).then_some(self.peer),
            rqueue: self.queues.map(|q| q.0),
            wqueue: self.queues.map(|q| q.1),
            wmem_alloc: self.memory.map(|m| m.0),
            sndbuf: self.memory.map(|m| m.1),
        }
    }
}

fn find<T>(table: &[T], inode: u64, key: fn(&T) -> u64) -> Option<&T> {
    table.binary_search_by_key(&inode, key).ok().map(|at| &table[at])
}

impl NetTables {
    fn new(source: &'static str, tcp: impl IntoIterator<Item = TcpSocket>, unix: UnixTable) -> Self {
        let mut tcp: Vec<TcpSocket> = tcp.into_iter().filter(|s| s.inode != 0).collect();
        // A connection between two processes of this host appears twice,
        // with local and remote swapped: that names the other end.
        let by_ends: HashMap<(SocketAddr, SocketAddr), u64> =
            tcp.iter().map(|s| ((s.local, s.remote), s.inode)).collect();
        for socket in &mut tcp {
            socket.peer_inode = by_ends.get(&(socket.remote, socket.local)).copied();
        }
        tcp.sort_unstable_by_key(|s| s.inode);
        let unix = match unix {
            UnixTable::Diag(mut entries) => {
                entries.sort_unstable_by_key(|s| s.inode);
                entries.shrink_to_fit();
                UnixTable::Diag(entries)
            }
            UnixTable::Text(mut sockets) => {
                sockets.sort_unstable_by_key(|s| s.inode);
                UnixTable::Text(sockets)
            }
        };
        NetTables { source, tcp, unix }
    }

    fn unix(&self, inode: u64) -> Option<UnixSocket> {
        match &self.unix {
            UnixTable::Diag(entries) => find(entries, inode, |e| e.inode).map(UnixEntry::socket),
            UnixTable::Text(sockets) => find(sockets, inode, |s| s.inode).cloned(),
        }
    }

    fn holds(&self, inode: u64) -> bool {
        find(&self.tcp, inode, |s| s.inode).is_some() || self.unix(inode).is_some()
    }

    /// The entries for these socket inodes.
    pub fn select(&self, inodes: &[u64]) -> Sockets {
        Sockets {
            source: self.source.to_string(),
            tcp: inodes
                .iter()
                .filter_map(|&i| find(&self.tcp, i, |s| s.inode).cloned())
                .collect(),
            unix: inodes.iter().filter_map(|&i| self.unix(i)).collect(),
        }
    }
}

pub struct NetCache {
    /// `net:[N]` of whystuck itself, when collecting from the live /proc.
    own_netns: Option<Vec<u8>>,
    /// Each dump's deadline, and the run's, which no dump goes past.
    timeout: Duration,
    run_deadline: Instant,
    tables: HashMap<Vec<u8>, Result<Rc<NetTables>, Reason>>,
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

    /// The tables of the namespace `dir`'s process lives in.
    pub fn tables_for(&mut self, dir: &ProcDir, pid: i32, inodes: &[u64]) -> Result<Rc<NetTables>, Reason> {
        let key = match dir.readlink("ns/net") {
            Ok(key) => key,
            Err(_) => {
                // A namespace we cannot name: whystuck's own, if that holds
                // every socket of the process; else the process's own text
                // tables, under a key no other process shares.
                if let Some(own) = self.own_netns.clone() {
                    if let Ok(tables) = self.cached(own, |cache| cache.read_sock_diag()) {
                        if inodes.iter().all(|&i| tables.holds(i)) {
                            return Ok(tables);
                        }
                    }
                }
                return self.cached(format!("pid:{pid}").into_bytes(), |_| read_text(dir));
            }
        };
        if self.own_netns.as_deref() == Some(key.as_slice()) {
            self.cached(key, |cache| cache.read_sock_diag())
        } else {
            self.cached(key, |_| read_text(dir))
        }
    }

    fn cached(
        &mut self,
        key: Vec<u8>,
        read: impl FnOnce(&Self) -> Result<NetTables, Reason>,
    ) -> Result<Rc<NetTables>, Reason> {
        if let Some(tables) = self.tables.get(&key) {
            return tables.clone();
        }
        let tables = read(self).map(Rc::new);
        self.tables.insert(key, tables.clone());
        tables
    }

    fn read_sock_diag(&self) -> Result<NetTables, Reason> {
        let failed = |e: std::io::Error| {
            let kind = match e.kind() {
                std::io::ErrorKind::TimedOut => ReasonKind::TimedOut,
                _ => ReasonKind::Error,
            };
            Reason::new(kind, format!("sock_diag netlink query failed: {e}"))
        };
        let timeout = || {
            let left = self.run_deadline.saturating_duration_since(Instant::now());
            match left.is_zero() {
                true => Err(Reason::new(
                    ReasonKind::TimedOut,
                    "not read: the run's --timeout ran out",
                )),
                false => Ok(self.timeout.min(left)),
            }
        };
        let tcp = sockdiag::dump_tcp(timeout()?).map_err(failed)?;
        let unix = sockdiag::dump_unix(timeout()?).map_err(failed)?;
        let entries = unix.into_iter().map(unix_entry).collect();
        Ok(NetTables::new(
            "sock_diag",
            tcp.into_iter().map(tcp_socket),
            UnixTable::Diag(entries),
        ))
    }
}

fn read_text(dir: &ProcDir) -> Result<NetTables, Reason> {
    let mut buf = Vec::new();
    let mut read = |rel: &str| -> Result<Vec<u8>, Reason> {
        match dir.read(rel, &mut buf) {
            Ok(()) => Ok(std::mem::take(&mut buf)),
            // A kernel without IPv6 has no tcp6.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel == "net/tcp6" => Ok(Vec::new()),
            Err(e) => Err(super::reason_for(&e)),
        }
    };
    let mut tcp = Vec::new();
    for rel in ["net/tcp", "net/tcp6"] {
        tcp.extend(parse::proc_net_tcp(&read(rel)?));
    }
    let unix = UnixTable::Text(parse::proc_net_unix(&read("net/unix")?));
    Ok(NetTables::new("proc_net", tcp, unix))
}

fn tcp_socket(s: sockdiag::TcpDiag) -> TcpSocket {
    TcpSocket {
        inode: s.inode,
        local: s.local,
        remote: s.remote,
        state: parse::tcp_state_name(s.state).into(),
        tx_queue: s.tx_queue,
        rx_queue: s.rx_queue,
        peer_inode: None,
    }
}

fn unix_entry(s: sockdiag::UnixDiag) -> UnixEntry {
    UnixEntry {
        inode: s.inode,
        peer: s.peer_inode.unwrap_or(0),
        queues: s.rqueue.zip(s.wqueue),
        memory: s.meminfo.as_ref().map(|m| (m.wmem_alloc, m.sndbuf)),
        sock_type: s.sock_type,
        state: s.state,
        path: s.path.map(Vec::into_boxed_slice),
    }
}
