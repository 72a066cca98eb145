//! The snapshot: raw facts about processes as collected, before any judgement.
//!
//! `collect` is the only producer (from a live /proc or a fake tree) and
//! `classify` the only consumer, so a snapshot written to a file can later be
//! diagnosed exactly as if it were live. Every fact that can fail to be read
//! is a [`Fact`]: a value, or the reason it is unavailable. Missing is never
//! written down as zero.

use crate::text::TargetString;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::net::SocketAddr;

/// Bumped whenever a field changes meaning or a required field is added.
pub const SNAPSHOT_SCHEMA_VERSION: u32 = 1;

/// The `format` of every snapshot file: tells a snapshot from any other JSON.
pub const SNAPSHOT_FORMAT: &str = "whystuck-snapshot";

/// Snapshot files larger than this are refused rather than read.
pub const MAX_SNAPSHOT_BYTES: usize = 256 << 20;

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Snapshot {
    pub format: String,
    pub schema_version: u32,
    pub host: Host,
    /// Whether descendants of the targets were sampled too (`--tree`).
    #[serde(default)]
    pub tree: bool,
    pub processes: Vec<ProcessRecord>,
    /// Every process and fd found holding a pipe or socket inode that a
    /// sampled process holds (or is connected to): the other ends.
    #[serde(default)]
    pub holders: Vec<Holder>,
    /// Processes whose fd tables could not be searched for those holders.
    #[serde(default)]
    pub unsearchable: Vec<Unsearchable>,
    /// How much of the host a scan (`--all`, `--name`, `--user`) could see;
    /// absent when the processes were named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
}

/// What a scan of /proc could not see, so a partial view is never taken
/// for the whole host.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Visibility {
    /// The proc mount's `hidepid=` setting as it applies to this run
    /// (`off`, `noaccess`, `invisible`, `ptraceable`; `off` when the run
    /// holds CAP_SYS_PTRACE); `None` when it cannot be known.
    pub hidepid: Option<String>,
    /// Processes listed in /proc whose details this run may not read.
    pub unreadable_processes: u64,
    /// About how many threads, of processes /proc left out, the kernel
    /// counts (/proc/loadavg less those seen); `None` unless processes are
    /// hidden and the count is comparable.
    pub hidden_threads: Option<u64>,
    /// Processes the scan chose that went away while it read them: left out
    /// of the report, never `dead` (a zombie is still reported).
    #[serde(default)]
    pub vanished: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Host {
    /// The collecting host's name (`/proc/sys/kernel/hostname`).
    #[serde(default)]
    pub hostname: Option<String>,
    pub kernel_release: Fact<String>,
    /// `std::env::consts::ARCH` of the collector: it decides the syscall table.
    pub arch: String,
    pub clock_ticks_per_second: u64,
    pub page_size: u64,
    pub captured_at_unix_ms: u64,
    /// Milliseconds since boot at capture (`/proc/uptime`): with a start
    /// time, a process's age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_ms: Option<u64>,
    /// The proc mount's `hidepid=` setting when it hid or refused other
    /// users' processes to the collecting run (`noaccess`, `invisible`,
    /// `ptraceable`): the other ends of its pipes may be among them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidepid: Option<String>,
    /// Whether the collecting run held CAP_SYS_PTRACE and
    /// CAP_DAC_READ_SEARCH (as root does), so that what it was refused
    /// more privilege would not have shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_view: Option<bool>,
}

/// Everything seen of one pid, one [`Sample`] per sampling round.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ProcessRecord {
    pub pid: i32,
    #[serde(default)]
    pub role: Role,
    /// The user named this thread of the process rather than the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named_thread: Option<i32>,
    pub samples: Vec<Sample>,
}

impl ProcessRecord {
    /// The last sample actually taken: a round the run's budget skipped
    /// leaves the process judged by the one before.
    pub fn last_taken(&self) -> Option<&Sample> {
        let mut taken = self.samples.iter().rev().filter(|s| s.presence != Presence::Skipped);
        taken.next().or(self.samples.last())
    }

    /// Why the last round did not sample this process, when an earlier one did.
    pub fn skipped_round(&self) -> Option<&Reason> {
        match self.samples.as_slice() {
            [_, .., last] if last.presence == Presence::Skipped => last.stat.reason(),
            _ => None,
        }
    }
}

/// Why a process was sampled.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Named by the user.
    #[default]
    Target,
    /// A descendant of a target, under `--tree`.
    Descendant,
    /// Sampled only because a target waits on it (a child it waits for, the
    /// other end of a pipe or socket it is blocked on): context, not reported.
    Related,
}

/// One process holding one end of a pipe or socket.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Holder {
    pub inode: u64,
    pub pid: i32,
    pub fd: i32,
    /// Open flags from fdinfo (for a pipe: which end).
    pub flags: Option<u32>,
    pub comm: Option<TargetString>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Unsearchable {
    pub pid: i32,
    pub comm: Option<TargetString>,
    pub reason: Reason,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// The process was there for the whole sample.
    Present,
    /// `/proc/PID` did not exist when the sample began.
    NotFound,
    /// The process went away while this sample was being read.
    Exited,
    /// Not read: the run's time budget (`--timeout`) ran out first.
    Skipped,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Sample {
    /// Milliseconds since the run's first sample.
    pub elapsed_ms: u64,
    pub presence: Presence,
    pub stat: Fact<Stat>,
    pub status: Fact<Status>,
    pub cmdline: Fact<Vec<TargetString>>,
    pub io: Fact<Io>,
    pub threads: Fact<Vec<Thread>>,
    /// Every fd, or, for a process read lazily (many fds, or one of a large
    /// selection), only the fds read in depth; then `fd_totals` counts all.
    pub fds: Fact<Vec<Fd>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_totals: Option<FdTotals>,
    pub sockets: Fact<Sockets>,
    pub children: Fact<Vec<Relative>>,
    /// The parent of a zombie (the one not reaping it).
    pub parent: Option<Box<Relative>>,
    /// The tracer named by `TracerPid`, when there is one.
    pub tracer: Option<Box<Relative>>,
    /// "Now" in the scheduler's clock of each CPU the sample's waiting
    /// threads last ran on (see `collect::clock`), taken right after their
    /// `last_ran_at_ms`, to tell how long ago each ran; `None` when they
    /// were not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sched_now_ms: Option<Vec<CpuNow>>,
    /// A Python process's stacks (`--stacks`, by py-spy), with the last
    /// sample; `None` when not asked for or not a Python process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_stacks: Option<Fact<Vec<PyThread>>>,
}

/// One Python thread's stack, innermost frame first.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PyThread {
    /// The os thread id, to join with the sample's threads.
    pub tid: Option<i32>,
    pub name: Option<String>,
    pub frames: Vec<PyFrame>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PyFrame {
    pub function: String,
    pub file: String,
    pub line: Option<i64>,
}

/// "Now" in one CPU's scheduler clock, in milliseconds.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct CpuNow {
    pub cpu: u32,
    pub now_ms: Fact<f64>,
}

/// A value, or why it could not be read.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Fact<T> {
    Ok(T),
    Unavailable(Reason),
}

impl<T> Fact<T> {
    pub fn ok(&self) -> Option<&T> {
        match self {
            Fact::Ok(value) => Some(value),
            Fact::Unavailable(_) => None,
        }
    }

    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Fact::Ok(_) => None,
            Fact::Unavailable(reason) => Some(reason),
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReasonKind {
    /// The kernel refused the read (another user's process, no ptrace access).
    Permission,
    /// The process (or the thread, or the fd) went away.
    Gone,
    /// The read did not finish within its deadline.
    TimedOut,
    /// This kernel or configuration does not provide the file.
    NotSupported,
    /// The file was read but its contents made no sense.
    Unparsable,
    /// Not read, on purpose (for example skipped to save time).
    NotCollected,
    /// Not read because the read could hang: the process is stuck where
    /// the file's contents come from (its memory, on a dead FUSE or NFS
    /// mount).
    Avoided,
    /// Any other I/O error.
    Error,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Reason {
    pub kind: ReasonKind,
    /// Most reasons are fixed text, shared rather than allocated: a scan
    /// holds one per thread ("context switches not read").
    pub detail: Cow<'static, str>,
}

impl Reason {
    pub fn new(kind: ReasonKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Reason {
            kind,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// `/proc/PID/stat` (or `task/TID/stat`). Fields after `state` are optional
/// because older kernels and fake trees write fewer of them.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Stat {
    pub comm: TargetString,
    pub state: char,
    pub ppid: Option<i32>,
    pub pgrp: Option<i32>,
    pub session: Option<i32>,
    /// The controlling terminal (0: none), and its foreground process group.
    #[serde(default)]
    pub tty_nr: Option<i32>,
    #[serde(default)]
    pub tpgid: Option<i32>,
    pub flags: Option<u32>,
    pub utime: Option<u64>,
    pub stime: Option<u64>,
    pub num_threads: Option<i64>,
    /// Clock ticks after boot: with the pid, it names one process for good.
    pub starttime: Option<u64>,
    pub rss_pages: Option<i64>,
    /// The CPU the task last ran on.
    #[serde(default)]
    pub processor: Option<u32>,
    /// The wait status a zombie exited with (since Linux 3.5).
    #[serde(default)]
    pub exit_code: Option<i32>,
}

impl Stat {
    /// utime + stime, when both are known.
    pub fn cpu_ticks(&self) -> Option<u64> {
        Some(self.utime? + self.stime?)
    }

    /// Exited, its status not yet collected by its parent (Z), or dying (X).
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }

    /// PF_KTHREAD: the task is a kernel thread.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags.is_some_and(|f| f & 0x0020_0000 != 0)
    }
}

/// The lines of `/proc/PID/status` whystuck uses.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// The thread group (process) id: differs from the pid for a thread.
    #[serde(default)]
    pub tgid: Option<i32>,
    /// Real, effective, saved and filesystem uid.
    pub uid: Option<[u32; 4]>,
    pub tracer_pid: Option<i32>,
    pub vm_rss_kib: Option<u64>,
    pub sig_pending: Option<u64>,
    pub sig_shared_pending: Option<u64>,
    pub sig_blocked: Option<u64>,
    pub sig_ignored: Option<u64>,
    pub sig_caught: Option<u64>,
    pub voluntary_ctxt_switches: Option<u64>,
    pub nonvoluntary_ctxt_switches: Option<u64>,
}

/// `/proc/PID/io`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Io {
    pub rchar: Option<u64>,
    pub wchar: Option<u64>,
    pub syscr: Option<u64>,
    pub syscw: Option<u64>,
    pub read_bytes: Option<u64>,
    pub write_bytes: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Thread {
    pub tid: i32,
    pub stat: Fact<Stat>,
    /// From the thread's status file, only the context-switch counters.
    pub status: Fact<ContextSwitches>,
    /// The raw symbol from `wchan`; empty when the thread is not waiting.
    pub wchan: Fact<String>,
    pub syscall: Fact<Syscall>,
    /// When the thread last ran (`se.exec_start` of `task/TID/sched`, in
    /// the scheduler's clock, milliseconds): read in the last round for a
    /// thread that is not running; `None` when not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ran_at_ms: Option<Fact<f64>>,
    /// The kernel stack (`task/TID/stack`, root only), innermost frame
    /// first: read in the last round for a thread whose wchan does not say
    /// what it waits for; `None` when not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_stack: Option<Fact<Vec<String>>>,
}

/// A thread's context switches, from `/proc/PID/task/TID/status` (the
/// field names are those of [`Status`], so a thread's status reads as one).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct ContextSwitches {
    pub voluntary_ctxt_switches: Option<u64>,
    pub nonvoluntary_ctxt_switches: Option<u64>,
}

impl ContextSwitches {
    pub fn total(&self) -> Option<u64> {
        Some(self.voluntary_ctxt_switches? + self.nonvoluntary_ctxt_switches?)
    }
}

/// `/proc/PID/task/TID/syscall`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Syscall {
    /// The thread is on a CPU: no syscall to report.
    Running,
    /// Blocked in the kernel. `nr` is -1 when not inside a syscall.
    Blocked { nr: i64, args: Box<[u64]> },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Fd {
    pub fd: i32,
    /// The link text (`pipe:[123]`, `socket:[456]`, `/dev/null`...). Never
    /// followed.
    pub target: TargetString,
    pub info: Fact<FdInfo>,
    /// Fill level, for pipes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipe: Option<Fact<PipeFill>>,
}

pub use crate::linux::fd::FdKind;

/// How many fds a lazily read process has, by type: a fixed array, so a
/// host of thousands of processes pays 52 bytes each for it.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct FdTotals {
    pub count: usize,
    #[serde(with = "by_type")]
    pub by_type: [u32; FdKind::ALL.len()],
}

impl FdTotals {
    pub fn add(&mut self, kind: FdKind) {
        self.count += 1;
        self.by_type[kind as usize] += 1;
    }

    /// (kind, count) for every kind present.
    pub fn kinds(&self) -> impl Iterator<Item = (FdKind, u32)> + '_ {
        FdKind::ALL.into_iter().zip(self.by_type).filter(|(_, n)| *n > 0)
    }
}

/// `by_type` as a JSON object: `{"pipe": 10, "socket": 4}`.
mod by_type {
    use super::FdKind;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(counts: &[u32; 13], serializer: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<FdKind, u32> = FdKind::ALL.into_iter().zip(*counts).filter(|(_, n)| *n > 0).collect();
        map.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u32; 13], D::Error> {
        let map = BTreeMap::<FdKind, u32>::deserialize(deserializer)?;
        let mut counts = [0; 13];
        for (kind, n) in map {
            counts[kind as usize] = n;
        }
        Ok(counts)
    }
}

/// `/proc/PID/fdinfo/N`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct FdInfo {
    /// Open flags (octal in the file): access mode, O_NONBLOCK...
    pub flags: Option<u32>,
    pub pos: Option<u64>,
    /// For an epoll fd: the fds it watches (`tfd:` lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epoll_targets: Vec<EpollTarget>,
    /// For an eventfd: its counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eventfd_count: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct EpollTarget {
    pub fd: i32,
    pub events: u32,
    pub inode: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeFill {
    pub buffered_bytes: u64,
    pub capacity_bytes: u64,
}

/// The sockets among this process's fds, matched by inode against its network
/// namespace's tables.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
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

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
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

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
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

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct UnixSocket {
    pub inode: u64,
    /// `stream`, `dgram` or `seqpacket`.
    pub kind: Cow<'static, str>,
    pub state: Cow<'static, str>,
    pub path: Option<TargetString>,
    pub peer_inode: Option<u64>,
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

/// Another process named in a report (child, parent, tracer), with just
/// enough to say what it is doing.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Relative {
    pub pid: i32,
    pub stat: Fact<Stat>,
}

/// A process's pulse: the few counters that move whenever it does anything
/// (CPU time, read/write syscalls and bytes, times scheduled), read every
/// tick by `whystuck watch`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pulse {
    pub state: char,
    pub starttime: Option<u64>,
    /// utime + stime of all threads.
    pub cpu_ticks: Option<u64>,
    /// syscr + syscw.
    pub io_syscalls: Option<u64>,
    /// rchar + wchar.
    pub io_bytes: Option<u64>,
    /// Times the main thread was scheduled (`schedstat`): moves on every
    /// wakeup, even one too short to cost a clock tick.
    pub timeslices: Option<u64>,
    /// A zombie's wait status (exit code or signal), from its stat.
    pub exit_code: Option<i32>,
}

impl Snapshot {
    /// Replace secrets in every sampled command line (see [`crate::redact`]).
    pub fn redact_secrets(&mut self) {
        for sample in self.processes.iter_mut().flat_map(|p| p.samples.iter_mut()) {
            if let Fact::Ok(cmdline) = &mut sample.cmdline {
                crate::redact::redact(cmdline);
            }
        }
    }

    /// Parse a snapshot file's bytes. Errors say what is wrong and where
    /// (serde_json's line and column), in one line.
    pub fn parse(bytes: &[u8]) -> Result<Snapshot, String> {
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            return Err(format!(
                "too large to be a snapshot (more than {} MiB)",
                MAX_SNAPSHOT_BYTES >> 20
            ));
        }
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            None => return Err("empty: not a whystuck snapshot".into()),
            Some(b'{') => {}
            Some(_) => return Err("not a whystuck snapshot (not a JSON object)".into()),
        }
        #[derive(Deserialize)]
        struct Header {
            format: Option<serde_json::Value>,
            schema_version: Option<serde_json::Value>,
        }
        let header: Header = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
        if header.format.as_ref().and_then(|f| f.as_str()) != Some(SNAPSHOT_FORMAT) {
            return Err(format!(
                "not a whystuck snapshot (no \"format\": \"{SNAPSHOT_FORMAT}\")"
            ));
        }
        match header.schema_version.as_ref().and_then(|v| v.as_u64()) {
            Some(v) if v > u64::from(SNAPSHOT_SCHEMA_VERSION) => {
                return Err(format!(
                    "snapshot schema version {v} is newer than this whystuck reads ({SNAPSHOT_SCHEMA_VERSION}): upgrade whystuck"
                ))
            }
            Some(v) if v >= 1 => {}
            _ => return Err("snapshot has no valid schema_version".into()),
        }
        serde_json::from_slice(bytes).map_err(|e| json_error(&e))
    }
}

fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => format!("truncated: {e}"),
        Category::Syntax => format!("not valid JSON: {e}"),
        Category::Data | Category::Io => format!("not a valid snapshot: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> String {
        format!(
            r#"{{"format": "{SNAPSHOT_FORMAT}", "schema_version": 1,
              "host": {{"kernel_release": {{"ok": "6.1"}}, "arch": "x86_64", "clock_ticks_per_second": 100,
                        "page_size": 4096, "captured_at_unix_ms": 0}},
              "processes": []}}"#
        )
    }

    #[test]
    fn a_minimal_snapshot_parses() {
        let snapshot = Snapshot::parse(minimal().as_bytes()).unwrap();
        assert!(snapshot.processes.is_empty() && snapshot.holders.is_empty() && !snapshot.tree);
    }

    #[test]
    fn bad_snapshots_are_one_line_errors_that_say_what_and_where() {
        let full = minimal();
        let cases: Vec<(String, &str)> = vec![
            (full[..full.len() / 2].to_string(), "truncated: EOF while parsing"),
            (
                full.replace("\"processes\": []", "\"processes\": [}"),
                "not valid JSON: expected value at line 4",
            ),
            (
                full.replace("\"schema_version\": 1", "\"schema_version\": 2"),
                "schema version 2 is newer",
            ),
            (full.replace("\"schema_version\": 1,", ""), "no valid schema_version"),
            (
                full.replace(SNAPSHOT_FORMAT, "something-else"),
                "not a whystuck snapshot",
            ),
            (
                r#"{"schema_version": 1, "processes": []}"#.to_string(),
                "not a whystuck snapshot",
            ),
            ("[1, 2, 3]".to_string(), "not a whystuck snapshot (not a JSON object)"),
            ("7".to_string(), "not a whystuck snapshot (not a JSON object)"),
            (
                full.replace("\"arch\": \"x86_64\"", "\"arch\": 5"),
                "not a valid snapshot: invalid type: integer `5`, expected a string at line 2",
            ),
            (String::new(), "empty: not a whystuck snapshot"),
            (" \n".to_string(), "empty: not a whystuck snapshot"),
        ];
        for (text, expected) in cases {
            let err = Snapshot::parse(text.as_bytes()).unwrap_err();
            assert!(err.contains(expected), "{err:?} does not contain {expected:?}");
            assert!(!err.contains('\n'), "{err:?}");
        }
    }
}
