//! The pipes and sockets of a reported process, each with who holds its
//! other end: what the tables and `links` show.

use super::PeerReport;
use crate::classify::graph::World;
use crate::classify::view::{FdKind, View};
use crate::linux::fd::Access;
use crate::text::TargetString;
use serde::Serialize;

/// A pipe, or a FIFO a thread reads or writes (with its `path`; `inode` its file's).
#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct PipeReport {
    pub fd: i32,
    pub inode: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<TargetString>,
    /// `read` or `write`.
    pub end: Option<&'static str>,
    pub buffered_bytes: Option<u64>,
    pub capacity_bytes: Option<u64>,
    /// No write can proceed: a writer is blocked on it, or less than a page
    /// is free.
    pub full: Option<bool>,
    /// Who holds the other end: every fd of this pipe open in the other
    /// direction, in any process.
    pub peers: Vec<PeerReport>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct TcpReport {
    pub fd: i32,
    pub inode: u64,
    pub local: String,
    pub remote: String,
    pub state: String,
    pub tx_queue: u32,
    pub rx_queue: u32,
    /// The process holding the other end, for a connection on this host.
    pub peers: Vec<PeerReport>,
    // From tcp_info and the socket's memory (sock_diag only; each left out
    // when unknown or meaningless in the state, see `TcpSocket`).
    /// Milliseconds since data was last received, sent, and an ACK
    /// received (`ss -ti` lastrcv, lastsnd, lastack).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_recv_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_send_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ack_ms: Option<u32>,
    /// Retransmissions of the oldest unacknowledged segment (in SYN_SENT,
    /// of the SYN), and over the connection's life.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retransmits: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_retransmits: Option<u32>,
    /// Segments not yet acknowledged (`tx_queue` has the bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unacked: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rto_ms: Option<f64>,
    /// Send-buffer memory queued and its limit (`ss -tm` w and tb): a write
    /// waits while the one reaches the other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_buffer_bytes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_buffer_limit: Option<u32>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct UdpReport {
    pub fd: i32,
    pub inode: u64,
    pub local: String,
    /// What it is connected to; the unspecified address and port 0
    /// (`0.0.0.0:0`, `[::]:0`) when it is not, as for a TCP listener.
    pub remote: String,
    /// `ESTABLISHED` (connected) or `UNCONNECTED`.
    pub state: String,
    /// Memory of the datagrams waiting to be read, and of those sent and
    /// not yet freed (`ss -u` Recv-Q and Send-Q).
    pub rx_queue: u32,
    pub tx_queue: u32,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct UnixReport {
    pub fd: i32,
    pub inode: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub state: String,
    pub path: Option<TargetString>,
    pub peer_inode: Option<u64>,
    pub rqueue: Option<u32>,
    pub wqueue: Option<u32>,
    /// Send-buffer memory in use and its limit (`ss -xm` t and tb).
    pub send_buffer_bytes: Option<u32>,
    pub send_buffer_limit: Option<u32>,
    pub full: Option<bool>,
    /// The process holding the peer socket.
    pub peers: Vec<PeerReport>,
}

pub(super) fn pipes(world: &World, view: &View) -> Vec<PipeReport> {
    view.fds
        .iter()
        .filter(|f| matches!(f.kind, FdKind::Pipe | FdKind::Fifo))
        .filter_map(|f| {
            let fill = f.pipe_fill();
            let fifo = f.kind == FdKind::Fifo;
            Some(PipeReport {
                fd: f.fd.fd,
                inode: f.inode.or_else(|| f.fd.info.ok()?.ino.filter(|_| fifo))?,
                path: fifo.then(|| f.fd.target.clone()),
                end: f.access().map(Access::name),
                buffered_bytes: fill.map(|p| p.buffered_bytes),
                capacity_bytes: fill.map(|p| p.capacity_bytes),
                full: view.pipe_full(f),
                peers: world
                    .peers(view.pid, f.fd.fd)
                    .into_iter()
                    .map(PeerReport::from)
                    .collect(),
            })
        })
        .collect()
}

pub(super) fn tcp(world: &World, view: &View) -> Vec<TcpReport> {
    view.fds
        .iter()
        .filter_map(|f| {
            let t = view.tcp(f.inode?)?;
            Some(TcpReport {
                fd: f.fd.fd,
                inode: t.inode,
                local: t.local.to_string(),
                remote: t.remote.to_string(),
                state: t.state.to_string(),
                tx_queue: t.tx_queue,
                rx_queue: t.rx_queue,
                peers: world
                    .peers(view.pid, f.fd.fd)
                    .into_iter()
                    .map(PeerReport::from)
                    .collect(),
                last_recv_ms: t.last_recv_ms,
                last_send_ms: t.last_send_ms,
                last_ack_ms: t.last_ack_ms,
                retransmits: t.retransmits,
                total_retransmits: t.total_retransmits,
                unacked: t.unacked,
                rtt_ms: t.rtt_ms,
                rto_ms: t.rto_ms,
                send_buffer_bytes: t.wmem_queued,
                send_buffer_limit: t.sndbuf,
            })
        })
        .collect()
}

pub(super) fn udp(view: &View) -> Vec<UdpReport> {
    view.fds
        .iter()
        .filter_map(|f| {
            let u = view.udp(f.inode?)?;
            Some(UdpReport {
                fd: f.fd.fd,
                inode: u.inode,
                local: u.local.to_string(),
                remote: u.remote.to_string(),
                state: u.state.to_string(),
                rx_queue: u.rx_queue,
                tx_queue: u.tx_queue,
            })
        })
        .collect()
}

pub(super) fn unix(world: &World, view: &View) -> Vec<UnixReport> {
    view.fds
        .iter()
        .filter_map(|f| {
            let u = view.unix(f.inode?)?;
            Some(UnixReport {
                fd: f.fd.fd,
                inode: u.inode,
                kind: u.kind.to_string(),
                state: u.state.to_string(),
                path: u.path.clone(),
                peer_inode: u.peer_inode,
                rqueue: u.rqueue,
                wqueue: u.wqueue,
                send_buffer_bytes: u.wmem_alloc,
                send_buffer_limit: u.sndbuf,
                full: view.unix_full(u),
                peers: world
                    .peers(view.pid, f.fd.fd)
                    .into_iter()
                    .map(PeerReport::from)
                    .collect(),
            })
        })
        .collect()
}
