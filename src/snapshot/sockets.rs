//! Sockets matched by inode against their network namespace's tables: TCP,
//! UDP and unix, with their queues and what TCP last did.

use super::Reason;
use crate::text::TargetString;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::net::SocketAddr;

/// The sockets among this process's fds, matched by inode against its network
/// namespace's tables.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, schemars::JsonSchema)]
pub struct Sockets {
    /// Where the facts came from: `sock_diag` (netlink) or `proc_net` (text).
    /// From `proc_net`, TCP sockets have no `tcp_info` or memory (those
    /// fields are `None`) and unix sockets no peer, queues or memory.
    pub source: Cow<'static, str>,
    pub tcp: Vec<TcpSocket>,
    pub unix: Vec<UnixSocket>,
    /// The UDP sockets among the fds whystuck kept (all of them, unless the
    /// process was read lazily), as for unix sockets. Read only when one of
    /// those fds is a socket neither TCP nor unix. The same facts whether
    /// from sock_diag or from /proc/net/udp (in another network namespace,
    /// and on a kernel without `udp_diag`, whatever `source` says). Empty
    /// in snapshots taken before whystuck read UDP.
    #[serde(default)]
    pub udp: Vec<UdpSocket>,
    /// Why the UDP sockets could not be read, when they could not: `udp`
    /// is then empty for want of facts, not of sockets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_unavailable: Option<Reason>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct TcpSocket {
    pub inode: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: Cow<'static, str>,
    pub tx_queue: u32,
    pub rx_queue: u32,
    /// The inode of the other end, when it is on this host (same namespace).
    #[serde(default)]
    pub peer_inode: Option<u64>,
    // What the connection last did, from its `tcp_info` (`ss -ti`), as of
    // the round's dump. All `None` from /proc/net (source `proc_net`),
    // which has none of it, and from a kernel whose `tcp_info` is too short
    // to hold the field.
    /// Milliseconds since data was last received (`lastrcv`), sent
    /// (`lastsnd`), and an ACK last received (`lastack`). A connection that
    /// never received data counts from when it was established. `None`
    /// before it was (SYN_SENT, SYN_RECV, LISTEN, CLOSE), when they mean
    /// nothing.
    #[serde(default)]
    pub last_recv_ms: Option<u32>,
    #[serde(default)]
    pub last_send_ms: Option<u32>,
    #[serde(default)]
    pub last_ack_ms: Option<u32>,
    /// Retransmissions of the oldest unacknowledged segment, reset when it
    /// is acknowledged (in SYN_SENT: of the SYN). `None` for a listener.
    #[serde(default)]
    pub retransmits: Option<u32>,
    /// Segments retransmitted over the connection's life.
    #[serde(default)]
    pub total_retransmits: Option<u32>,
    /// Segments sent and not yet acknowledged (packets; `tx_queue` has the
    /// bytes). `None` for a listener.
    #[serde(default)]
    pub unacked: Option<u32>,
    /// Smoothed round-trip time and the retransmission timeout, in
    /// milliseconds (the kernel's microseconds / 1000). `None` for a listener.
    #[serde(default)]
    pub rtt_ms: Option<f64>,
    #[serde(default)]
    pub rto_ms: Option<f64>,
    /// Send-buffer memory queued (sent or not) and its limit (`ss -tm` w
    /// and tb): a write waits while `wmem_queued >= sndbuf`.
    #[serde(default)]
    pub wmem_queued: Option<u32>,
    #[serde(default)]
    pub sndbuf: Option<u32>,
}

impl TcpSocket {
    /// Whether the send buffer is full: TCP lets a write proceed only while
    /// the memory queued is below the limit. Unknown without the socket's
    /// memory (sock_diag's, not /proc/net's).
    pub fn send_buffer_full(&self) -> Option<bool> {
        Some(self.wmem_queued? >= self.sndbuf?)
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct UdpSocket {
    pub inode: u64,
    pub local: SocketAddr,
    /// The address it is connected to (a resolver's `127.0.0.53:53`); the
    /// unspecified address and port 0 when it is not connected.
    pub remote: SocketAddr,
    /// `ESTABLISHED` when connected, else `UNCONNECTED`.
    pub state: Cow<'static, str>,
    /// Memory of the datagrams waiting to be read (skb truesize, not
    /// payload: `ss -u`'s Recv-Q), and of those sent and not yet freed.
    pub rx_queue: u32,
    pub tx_queue: u32,
}

impl UdpSocket {
    /// Whether it is connected to a peer.
    pub fn connected(&self) -> bool {
        !self.remote.ip().is_unspecified() || self.remote.port() != 0
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct UnixSocket {
    pub inode: u64,
    /// `stream`, `dgram` or `seqpacket`.
    pub kind: Cow<'static, str>,
    pub state: Cow<'static, str>,
    pub path: Option<TargetString>,
    pub peer_inode: Option<u64>,
    /// The path the peer socket is bound to: a client's peer is the
    /// server's accepted socket, which carries its listener's path
    /// (`/run/systemd/resolve/io.systemd.Resolve`). From sock_diag only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_path: Option<TargetString>,
    pub rqueue: Option<u32>,
    pub wqueue: Option<u32>,
    /// Send-buffer memory in use and its limit (`ss -xm` t and tb).
    pub wmem_alloc: Option<u32>,
    pub sndbuf: Option<u32>,
}

impl UnixSocket {
    /// Whether its send-buffer memory has reached the limit: the kernel lets
    /// a send proceed only below it. Unknown without the socket's memory
    /// (sock_diag's, not /proc/net/unix's).
    pub fn send_buffer_full(&self) -> Option<bool> {
        Some(self.wmem_alloc? >= self.sndbuf?)
    }
}
