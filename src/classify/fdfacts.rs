//! An fd as a finding names it: what it is, with the facts that matter for
//! a wait on it, and who holds its other end. Part of [`super::finding`]
//! (re-exported there).

use crate::linux::fd::Access;
use crate::snapshot::{FdKind, PipeFill, Reason};
use crate::text::TargetString;
use std::net::SocketAddr;

/// One process holding the other end of a pipe or socket.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    pub pid: i32,
    pub fd: i32,
    pub comm: Option<TargetString>,
}

/// Why the holders found of a pipe or socket may not be all of them.
#[derive(Clone, Debug, PartialEq)]
pub enum Unseen {
    /// /proc hides other users' processes (the mount's `hidepid=` setting).
    Hidden(String),
    /// This many processes' fd tables could not be searched.
    Unsearchable(usize),
}

/// What an fd is, with the facts that matter for a wait on it and who holds
/// its other end.
#[derive(Clone, Debug, PartialEq)]
pub struct FdFacts {
    /// The process holding the fd.
    pub pid: i32,
    pub fd: i32,
    pub what: FdWhat,
    /// For a pipe or socket: who holds the other end (empty when nobody
    /// was found), and whether that can be all of them.
    pub peers: Vec<Peer>,
    pub unseen: Option<Unseen>,
}

impl FdFacts {
    /// An event loop's own plumbing: an eventfd, or a pipe or socketpair
    /// only the process itself holds the other end of (a wakeup fd).
    pub fn is_own_wakeup(&self) -> bool {
        match &self.what {
            FdWhat::Other {
                kind: FdKind::Eventfd, ..
            } => true,
            FdWhat::Pipe { .. } | FdWhat::Unix(_) => {
                !self.peers.is_empty() && self.peers.iter().all(|p| p.pid == self.pid)
            }
            _ => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum FdWhat {
    /// Not in the fd table (closed, or not read).
    Missing,
    /// A named pipe, from the wait its reader or writer is in.
    Fifo {
        path: TargetString,
        access: Option<Access>,
        /// `None` when the fill was not probed.
        fill: Option<Result<PipeFill, Reason>>,
        /// Whether its other ends were looked for (by path, confirmed by
        /// inode: kernels before 5.8 show no inode in fdinfo).
        searched: bool,
    },
    Pipe {
        access: Option<Access>,
        /// `None` when the fill was not probed.
        fill: Option<Result<PipeFill, Reason>>,
    },
    Tcp(TcpFacts),
    Unix(UnixFacts),
    Udp(UdpFacts),
    /// A socket in none of the TCP, unix or UDP tables.
    OtherSocket {
        inode: u64,
    },
    Other {
        kind: FdKind,
        target: TargetString,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct TcpFacts {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: String,
    pub rx_queue: u32,
    pub tx_queue: u32,
    /// Milliseconds since data was last received and sent, when known.
    pub last_recv_ms: Option<u32>,
    pub last_send_ms: Option<u32>,
    /// Retransmissions of the oldest unacknowledged segment (of the SYN
    /// while connecting).
    pub retransmits: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UdpFacts {
    pub local: SocketAddr,
    /// The unspecified address and port 0 when not connected.
    pub remote: SocketAddr,
    pub state: String,
    pub rx_queue: u32,
}

impl UdpFacts {
    /// Connected to a peer (a resolver's socket is).
    pub fn connected(&self) -> bool {
        !self.remote.ip().is_unspecified() || self.remote.port() != 0
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct UnixFacts {
    pub kind: String,
    pub state: String,
    pub path: Option<TargetString>,
    /// The path the peer is bound to: a client's peer is the server's
    /// accepted socket, which carries its listener's path.
    pub peer_path: Option<TargetString>,
    pub peer_inode: Option<u64>,
    /// Send-buffer memory in use and its limit.
    pub send_buffer: Option<(u32, u32)>,
}
