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
use std::time::Duration;

/// One namespace's tables, sorted by inode: a few tens of bytes per socket,
/// however many thousands a host has.
pub struct NetTables {
    pub source: &'static str,
    tcp: Vec<TcpSocket>,
    unix: Vec<UnixSocket>,
}

impl NetTables {
    fn new(source: &'static str, tcp: impl IntoIterator<Item = TcpSocket>, unix: Vec<UnixSocket>) -> Self {
        let mut tcp: Vec<TcpSocket> = tcp.into_iter().filter(|s| s.inode != 0).collect();
        // A connection between two processes of this host appears twice,
        // with local and remote swapped: that names the other end.
        let by_ends: HashMap<(SocketAddr, SocketAddr), u64> =
            tcp.iter().map(|s| ((s.local, s.remote), s.inode)).collect();
        for socket in &mut tcp {
            socket.peer_inode = by_ends.get(&(socket.remote, socket.local)).copied();
        }
        tcp.sort_unstable_by_key(|s| s.inode);
        let mut unix = unix;
        unix.sort_unstable_by_key(|s| s.inode);
        unix.shrink_to_fit();
        NetTables { source, tcp, unix }
    }

    /// The entries for these socket inodes.
    pub fn select(&self, inodes: &[u64]) -> Sockets {
        fn find<T>(table: &[T], inode: u64, key: fn(&T) -> u64) -> Option<&T> {
            table.binary_search_by_key(&inode, key).ok().map(|at| &table[at])
        }
        Sockets {
            source: self.source.to_string(),
            tcp: inodes
                .iter()
                .filter_map(|&i| find(&self.tcp, i, |s| s.inode).cloned())
                .collect(),
            unix: inodes
                .iter()
                .filter_map(|&i| find(&self.unix, i, |s| s.inode).cloned())
                .collect(),
        }
    }
}

pub struct NetCache {
    /// `net:[N]` of whystuck itself, when collecting from the live /proc.
    own_netns: Option<Vec<u8>>,
    timeout: Duration,
    tables: HashMap<Vec<u8>, Result<Rc<NetTables>, Reason>>,
}

impl NetCache {
    pub fn new(live: bool, timeout: Duration) -> NetCache {
        let own_netns = live.then(|| std::fs::read_link("/proc/self/ns/net").ok()).flatten();
        NetCache {
            own_netns: own_netns.map(|p| p.into_os_string().into_encoded_bytes()),
            timeout,
            tables: HashMap::new(),
        }
    }

    /// Forget the tables: the next round reads fresh queues.
    pub fn start_round(&mut self) {
        self.tables.clear();
    }

    /// The tables of the namespace `dir`'s process lives in.
    pub fn tables_for(&mut self, dir: &ProcDir, pid: i32) -> Result<Rc<NetTables>, Reason> {
        // A namespace we cannot name is read from the process's own files,
        // under a key no other process shares.
        let key = dir
            .readlink("ns/net")
            .unwrap_or_else(|_| format!("pid:{pid}").into_bytes());
        if let Some(tables) = self.tables.get(&key) {
            return tables.clone();
        }
        let tables = if self.own_netns.as_deref() == Some(key.as_slice()) {
            self.read_sock_diag()
        } else {
            read_text(dir)
        }
        .map(Rc::new);
        self.tables.insert(key, tables.clone());
        tables
    }

    fn read_sock_diag(&self) -> Result<NetTables, Reason> {
        let failed = |e: std::io::Error| Reason::new(ReasonKind::Error, format!("sock_diag netlink query failed: {e}"));
        let tcp = sockdiag::dump_tcp(self.timeout).map_err(failed)?;
        let unix = sockdiag::dump_unix(self.timeout).map_err(failed)?;
        Ok(NetTables::new(
            "sock_diag",
            tcp.into_iter().map(tcp_socket),
            unix.into_iter().map(unix_socket).collect(),
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
    Ok(NetTables::new(
        "proc_net",
        tcp,
        parse::proc_net_unix(&read("net/unix")?),
    ))
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
        rqueue: s.rqueue,
        wqueue: s.wqueue,
        wmem_alloc: s.meminfo.as_ref().map(|m| m.wmem_alloc),
        sndbuf: s.meminfo.as_ref().map(|m| m.sndbuf),
    }
}
