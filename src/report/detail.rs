//! A reported process's detail beyond its one-line row: CPU, I/O, threads,
//! fds, pipes and sockets with who holds their other ends, children,
//! signals, and every fact that could not be read.

use super::{identity, PeerReport};
use crate::classify::graph::World;
use crate::classify::progress::relative_cpu_percent;
use crate::classify::view::{FdKind, View};
use crate::classify::{Diagnoses, Severity, Verdict};
use crate::linux::fd::Access;
use crate::linux::signal::signal_names;
use crate::linux::wait::strip_wchan_suffix;
use crate::snapshot::*;
use crate::text::TargetString;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize, Debug, Default, schemars::JsonSchema)]
pub struct ProcessDetail {
    pub cmdline: Option<Vec<TargetString>>,
    pub cpu: CpuReport,
    pub io: Option<IoReport>,
    pub threads: Vec<ThreadReport>,
    pub fds: FdsReport,
    pub pipes: Vec<PipeReport>,
    pub tcp: Vec<TcpReport>,
    pub unix: Vec<UnixReport>,
    /// Left out when empty (as in snapshots taken before UDP was read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub udp: Vec<UdpReport>,
    pub children: Vec<ChildReport>,
    pub signals: Option<SignalsReport>,
    /// Its cgroups (left out for snapshots taken before they were read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<super::CgroupReport>,
    pub unavailable: Vec<Unavailable>,
}

#[derive(Serialize, Debug, Default, schemars::JsonSchema)]
pub struct CpuReport {
    /// At the last sample.
    pub utime_ticks: Option<u64>,
    pub stime_ticks: Option<u64>,
    /// At the first sample (equal to the above with `--interval 0`).
    pub first_utime_ticks: Option<u64>,
    pub first_stime_ticks: Option<u64>,
    /// Over the interval, 100 = one core; `null` with a single sample.
    pub percent: Option<f64>,
    /// The share of the interval its main thread waited for a CPU on a run
    /// queue (100 = all of it); `null` with a single sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_percent: Option<f64>,
    pub interval_ms: Option<u64>,
    pub clock_ticks_per_second: u64,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct IoReport {
    pub rchar: Option<u64>,
    pub wchar: Option<u64>,
    pub syscr: Option<u64>,
    pub syscw: Option<u64>,
    /// rchar + wchar gained over the interval.
    pub bytes_delta: Option<u64>,
    /// syscr + syscw gained over the interval.
    pub syscalls_delta: Option<u64>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct ThreadReport {
    pub tid: i32,
    pub comm: Option<TargetString>,
    pub state: Option<String>,
    /// Without compiler suffixes; `""` when not waiting, `null` when unreadable.
    pub wchan: Option<String>,
    /// `null` when the thread is on a CPU or the syscall is unreadable.
    pub syscall: Option<SyscallReport>,
    pub on_cpu: bool,
    pub ctxt_switches_delta: Option<u64>,
    /// Seconds since the thread last ran (the scheduler's clock, to within
    /// a tick); `null` for a running thread, or when unreadable (then
    /// listed under `unavailable`).
    pub last_ran_seconds_ago: Option<f64>,
    /// The kernel stack, innermost frame first, for a waiting thread whose
    /// wchan does not say what it waits for (root only; `null` otherwise).
    pub kernel_stack: Option<Vec<String>>,
    /// With `--stacks`, a Python thread's frames, innermost first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python_stack: Option<Vec<PyFrame>>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct SyscallReport {
    /// -1 when blocked outside a syscall.
    pub nr: i64,
    pub name: Option<&'static str>,
    pub args: Vec<u64>,
}

#[derive(Serialize, Debug, Default, schemars::JsonSchema)]
pub struct FdsReport {
    /// These three are `null` when the fd table could not be read.
    pub count: Option<usize>,
    pub by_type: Option<BTreeMap<String, usize>>,
    /// `all`, or, for a process read lazily (more than 256 fds, or one of a
    /// large selection), `those read in depth`: the fds its threads wait on,
    /// its epoll sets and full self-pipes and socketpairs. `--deep` lists all.
    pub listed: Option<&'static str>,
    pub open: Vec<FdReport>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct FdReport {
    pub fd: i32,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub target: TargetString,
    /// `read`, `write` or `read-write`; `null` without fdinfo flags.
    pub access: Option<&'static str>,
    pub nonblocking: Option<bool>,
}

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

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct ChildReport {
    pub pid: i32,
    pub comm: Option<TargetString>,
    pub state: Option<String>,
    pub cpu_percent: Option<f64>,
    /// The child's own diagnosis, when it was sampled (a parent's wait is
    /// judged by it); `null` when it was not.
    pub verdict: Option<Verdict>,
    pub severity: Option<Severity>,
    pub kernel_thread: bool,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct SignalsReport {
    pub pending: Vec<String>,
    pub blocked: Vec<String>,
    pub ignored: Vec<String>,
    pub caught: Vec<String>,
}

#[derive(Serialize, Debug, PartialEq, schemars::JsonSchema)]
pub struct Unavailable {
    pub what: String,
    pub kind: ReasonKind,
    pub reason: String,
}

/// Everything about one process beyond its one-line row.
pub(super) fn detail(world: &World, diagnoses: &Diagnoses, record: &ProcessRecord) -> Box<ProcessDetail> {
    let host = world.host;
    let view = world.view(record.pid);
    let (stat, status) = identity(record);
    Box::new(ProcessDetail {
        cmdline: record.samples.first().and_then(|s| s.cmdline.ok().cloned()),
        cpu: view.map(|v| cpu(host, v)).unwrap_or_default(),
        io: view.and_then(io),
        threads: view.map(threads).unwrap_or_default(),
        fds: view.map(fds).unwrap_or_default(),
        pipes: view.map(|v| pipes(world, v)).unwrap_or_default(),
        tcp: view.map(|v| tcp(world, v)).unwrap_or_default(),
        unix: view.map(|v| unix(world, v)).unwrap_or_default(),
        udp: view.map(udp).unwrap_or_default(),
        children: view.map(|v| children(v, diagnoses)).unwrap_or_default(),
        // A kernel thread ignores every signal: nothing to say.
        signals: status
            .filter(|_| !stat.is_some_and(Stat::is_kernel_thread))
            .map(signals),
        cgroup: record
            .samples
            .first()
            .zip(record.last_taken())
            .and_then(|(first, last)| super::cgroup::cgroup(first, last)),
        unavailable: super::unavailable::unavailable(record),
    })
}
fn cpu(host: &Host, view: &View) -> CpuReport {
    let first = view.first.stat.ok();
    let last = view.stat();
    CpuReport {
        utime_ticks: last.and_then(|s| s.utime),
        stime_ticks: last.and_then(|s| s.stime),
        first_utime_ticks: first.and_then(|s| s.utime),
        first_stime_ticks: first.and_then(|s| s.stime),
        percent: view
            .progress
            .as_ref()
            .and_then(|p| p.cpu_percent)
            .map(|p| (p * 10.0).round() / 10.0),
        wait_percent: view
            .progress
            .as_ref()
            .and_then(|p| p.wait_percent)
            .map(|p| (p * 10.0).round() / 10.0),
        interval_ms: view.progress.as_ref().map(|p| p.interval_ms),
        clock_ticks_per_second: host.clock_ticks_per_second,
    }
}

fn io(view: &View) -> Option<IoReport> {
    let io = view.last.io.ok()?;
    Some(IoReport {
        rchar: io.rchar,
        wchar: io.wchar,
        syscr: io.syscr,
        syscw: io.syscw,
        bytes_delta: view.progress.as_ref().and_then(|p| p.io_bytes),
        syscalls_delta: view.progress.as_ref().and_then(|p| p.io_syscalls),
    })
}

fn threads(view: &View) -> Vec<ThreadReport> {
    let switches = |t: &Thread| t.status.ok()?.total();
    let python = view.last.python_stacks.as_ref().and_then(Fact::ok);
    let before: BTreeMap<i32, u64> = view
        .first
        .threads
        .ok()
        .map(|ts| ts.iter().filter_map(|t| Some((t.tid, switches(t)?))).collect())
        .unwrap_or_default();
    view.threads
        .iter()
        .map(|t| ThreadReport {
            tid: t.tid(),
            comm: t.thread.stat.ok().map(|s| s.comm.clone()),
            state: t.state.map(String::from),
            wchan: t.thread.wchan.ok().map(|w| strip_wchan_suffix(w).to_string()),
            syscall: match t.thread.syscall.ok() {
                Some(Syscall::Blocked { nr, args }) if !t.kernel_thread => Some(SyscallReport {
                    nr: *nr,
                    name: t.syscall_name,
                    args: args.to_vec(),
                }),
                _ => None,
            },
            on_cpu: t.on_cpu(),
            ctxt_switches_delta: view
                .progress
                .as_ref()
                .and_then(|_| Some(switches(t.thread)?.saturating_sub(*before.get(&t.tid())?))),
            last_ran_seconds_ago: t.last_ran_ms.clone().and_then(Result::ok).map(seconds),
            kernel_stack: t.thread.kernel_stack.as_ref().and_then(|s| s.ok().cloned()),
            python_stack: python
                .and_then(|threads| threads.iter().find(|p| p.tid == Some(t.tid())))
                .map(|p| p.frames.clone()),
        })
        .collect()
}

fn fds(view: &View) -> FdsReport {
    let Some(_) = view.last.fds.ok() else {
        return FdsReport::default();
    };
    let (count, by_type) = match &view.last.fd_totals {
        Some(totals) => (
            totals.count,
            totals
                .kinds()
                .map(|(k, n)| (k.name().to_string(), n as usize))
                .collect(),
        ),
        None => {
            let mut by_type = BTreeMap::new();
            for fd in &view.fds {
                *by_type.entry(fd.kind.name().to_string()).or_insert(0) += 1;
            }
            (view.fds.len(), by_type)
        }
    };
    FdsReport {
        count: Some(count),
        by_type: Some(by_type),
        listed: Some(if view.last.fd_totals.is_some() {
            "those read in depth"
        } else {
            "all"
        }),
        open: view
            .fds
            .iter()
            .map(|f| FdReport {
                fd: f.fd.fd,
                kind: f.kind.name(),
                target: f.fd.target.clone(),
                access: f.access().map(Access::name),
                nonblocking: f.nonblocking(),
            })
            .collect(),
    }
}

fn pipes(world: &World, view: &View) -> Vec<PipeReport> {
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

fn tcp(world: &World, view: &View) -> Vec<TcpReport> {
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

fn udp(view: &View) -> Vec<UdpReport> {
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

fn unix(world: &World, view: &View) -> Vec<UnixReport> {
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

fn children(view: &View, diagnoses: &Diagnoses) -> Vec<ChildReport> {
    let before = view.first.children.ok().map(Vec::as_slice).unwrap_or_default();
    let interval = view.progress.as_ref().map(|p| p.interval_ms).unwrap_or(0);
    view.last
        .children
        .ok()
        .map(|children| {
            children
                .iter()
                .map(|child| ChildReport {
                    pid: child.pid,
                    comm: child.stat.ok().map(|s| s.comm.clone()),
                    state: child.stat.ok().map(|s| s.state.to_string()),
                    cpu_percent: before
                        .iter()
                        .find(|b| b.pid == child.pid)
                        .and_then(|b| relative_cpu_percent(view.host, b, child, interval))
                        .map(|p| p.round()),
                    verdict: diagnoses.get(child.pid).map(|d| d.verdict),
                    severity: diagnoses.get(child.pid).map(|d| d.severity),
                    kernel_thread: child.stat.ok().is_some_and(Stat::is_kernel_thread),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn signals(status: &Status) -> SignalsReport {
    let names = |mask: Option<u64>| mask.map(signal_names).unwrap_or_default();
    SignalsReport {
        pending: names(Some(
            status.sig_pending.unwrap_or(0) | status.sig_shared_pending.unwrap_or(0),
        )),
        blocked: names(status.sig_blocked),
        ignored: names(status.sig_ignored),
        caught: names(status.sig_caught),
    }
}

/// Milliseconds as seconds, to the millisecond.
pub(super) fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}
