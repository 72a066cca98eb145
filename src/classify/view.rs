//! A process as the classifier sees it: the raw facts of its samples,
//! interpreted once (fd kinds, pipe ends and fill, socket lookups, what each
//! thread waits on, progress between the samples) so that findings and the
//! report read the same interpretation.

use crate::linux::fd::{link_inode, Access, O_NONBLOCK};
use crate::linux::syscall::syscall_name;
use crate::linux::wait::{self, Wait};
use crate::snapshot::*;
use std::collections::HashMap;

pub use crate::snapshot::FdKind;

pub struct FdView<'a> {
    pub fd: &'a Fd,
    pub kind: FdKind,
    /// Pipe or socket inode.
    pub inode: Option<u64>,
}

impl FdView<'_> {
    pub fn flags(&self) -> Option<u32> {
        self.fd.info.ok().and_then(|i| i.flags)
    }

    /// `read`, `write` or `read-write`, from the open flags.
    pub fn access(&self) -> Option<&'static str> {
        Some(Access::of(self.flags()?).name())
    }

    pub fn nonblocking(&self) -> Option<bool> {
        Some(self.flags()? & O_NONBLOCK != 0)
    }

    pub fn pipe_fill(&self) -> Option<PipeFill> {
        self.fd.pipe.as_ref()?.ok().copied()
    }
}

/// What one thread is doing, decided from its state, syscall and wchan.
pub struct ThreadView<'a> {
    pub thread: &'a Thread,
    pub state: Option<char>,
    pub syscall_name: Option<&'static str>,
    /// The wait, when the thread is blocked (S or D) in a known one.
    pub wait: Option<Wait>,
    /// The fd the syscall names, for waits on an fd.
    pub fd: Option<i32>,
    /// wchan without compiler suffixes.
    pub wchan: Option<&'a str>,
    /// A kernel thread: no user-space syscall to speak of.
    pub kernel_thread: bool,
}

impl<'a> ThreadView<'a> {
    pub(crate) fn new(thread: &'a Thread, arch: &str) -> ThreadView<'a> {
        let state = thread.stat.ok().map(|s| s.state);
        // A kernel thread has no user-space syscall: its syscall file reads
        // zeros, which would look like read(0).
        let kernel_thread = thread.stat.ok().is_some_and(Stat::is_kernel_thread);
        let wchan = thread
            .wchan
            .ok()
            .map(|w| wait::strip_wchan_suffix(w))
            .filter(|w| !w.is_empty());
        let vfork = wchan.is_some_and(wait::is_vfork_wait);
        let (syscall_name, from_syscall, fd) = match thread.syscall.ok() {
            Some(Syscall::Blocked { nr, args }) if *nr >= 0 && !kernel_thread && !vfork => {
                let name = syscall_name(arch, *nr);
                let wait = name.map(|n| wait::syscall_wait(n, args));
                let fd = wait
                    .filter(|w| w.waits_on_fd())
                    .and_then(|_| args.first())
                    .and_then(|&a| i32::try_from(a).ok());
                (name, wait, fd)
            }
            _ => (None, None, None),
        };
        let blocked = matches!(state, Some('S' | 'D'));
        // The syscall decides; a syscall with no wait of its own (openat,
        // ioctl...) defers to a wchan family that names one (a FIFO open).
        let from_wchan = wchan.and_then(wait::wchan_wait);
        let wait = match from_syscall {
            Some(Wait::Other) => from_wchan.or(from_syscall),
            Some(wait) => Some(wait),
            None => from_wchan,
        };
        let wait = wait.filter(|_| blocked);
        ThreadView {
            thread,
            state,
            syscall_name,
            wait,
            fd,
            wchan,
            kernel_thread,
        }
    }

    pub fn tid(&self) -> i32 {
        self.thread.tid
    }

    pub fn comm(&self) -> String {
        self.thread.stat.ok().map(|s| s.comm.escaped()).unwrap_or_default()
    }

    /// On a CPU, or runnable: not waiting for anything.
    pub fn on_cpu(&self) -> bool {
        matches!(self.thread.syscall, Fact::Ok(Syscall::Running)) || self.state == Some('R')
    }

    /// `write(fd=1)`-style text for the syscall, or the wchan when that is
    /// all there is.
    pub fn describe_call(&self) -> String {
        match (self.syscall_name, self.thread.syscall.ok(), self.wchan) {
            (Some(name), _, wchan) => {
                let fd = self.fd.map(|fd| format!("fd={fd}")).unwrap_or_default();
                let wchan = wchan.map(|w| format!(", wchan {w}")).unwrap_or_default();
                format!("{name}({fd}){wchan}")
            }
            (None, Some(Syscall::Blocked { nr, .. }), Some(w)) if *nr >= 0 && !self.kernel_thread => {
                format!("syscall {nr}, wchan {w}")
            }
            (None, _, Some(w)) => format!("wchan {w}"),
            (None, Some(Syscall::Running), None) => "on CPU".to_string(),
            (None, _, None) => "an unknown wait (neither syscall nor wchan readable)".to_string(),
        }
    }
}

/// How much a process moved between its two samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    pub interval_ms: u64,
    pub cpu_ticks: Option<u64>,
    pub cpu_percent: Option<f64>,
    /// rchar + wchar.
    pub io_bytes: Option<u64>,
    /// syscr + syscw.
    pub io_syscalls: Option<u64>,
    /// Voluntary + involuntary, over the threads present in both samples.
    pub ctxt_switches: Option<u64>,
}

impl Progress {
    /// Whether the process did work: CPU time or I/O advanced. `None` when
    /// neither could be measured.
    pub fn moved(&self) -> Option<bool> {
        let signals = [self.cpu_ticks, self.io_bytes, self.io_syscalls];
        if signals.iter().all(Option::is_none) {
            return None;
        }
        Some(signals.iter().any(|s| s.is_some_and(|v| v > 0)))
    }

    /// Any sign of life: CPU time, I/O or context switches advanced.
    pub fn working(&self) -> bool {
        [self.cpu_ticks, self.io_bytes, self.io_syscalls, self.ctxt_switches]
            .iter()
            .any(|v| v.is_some_and(|v| v > 0))
    }

    /// One line: "12% CPU, 4.0 KiB I/O over 1s".
    pub fn describe(&self) -> String {
        let cpu = self
            .cpu_percent
            .map_or("CPU unknown".to_string(), |p| format!("{p:.0}% CPU"));
        let io = self.io_bytes.map(|b| format!(", {} I/O", bytes(b))).unwrap_or_default();
        format!("{cpu}{io} over {}", duration_ms(self.interval_ms))
    }
}

pub struct View<'a> {
    pub host: &'a Host,
    pub pid: i32,
    /// The thread the user named, when they named a thread.
    pub named_thread: Option<i32>,
    pub first: &'a Sample,
    pub last: &'a Sample,
    pub fds: Box<[FdView<'a>]>,
    pub threads: Box<[ThreadView<'a>]>,
    /// Between the two samples; `None` with a single sample. (A scan holds
    /// a view of every process: what most lack is boxed, lookups are sorted
    /// vectors, so a view stays small.)
    pub progress: Option<Box<Progress>>,
    /// Sorted by inode.
    tcp: Box<[&'a TcpSocket]>,
    unix: Box<[&'a UnixSocket]>,
    /// Pipe and socket inodes a thread of this process is blocked writing
    /// to, sorted.
    blocked_write_inodes: Box<[u64]>,
}

impl<'a> View<'a> {
    pub fn new(host: &'a Host, record: &'a ProcessRecord) -> Option<View<'a>> {
        let first = record.samples.first()?;
        let last = record.last_taken()?;
        let fds: Vec<FdView> = last
            .fds
            .ok()
            .map(|fds| {
                fds.iter()
                    .map(|fd| {
                        let kind = FdKind::of(fd.target.as_bytes());
                        let inode = link_inode(fd.target.as_bytes(), "pipe")
                            .or_else(|| link_inode(fd.target.as_bytes(), "socket"));
                        FdView { fd, kind, inode }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let threads: Vec<ThreadView> = last
            .threads
            .ok()
            .map(|ts| ts.iter().map(|t| ThreadView::new(t, &host.arch)).collect())
            .unwrap_or_default();
        let mut fds = fds;
        fds.sort_by_key(|f| f.fd.fd); // for View::fd's binary search
        for thread in &threads {
            if let (Some(fd), Some(wchan)) = (thread.fd, thread.wchan) {
                if let Some(f) = fds.iter_mut().find(|f| f.fd.fd == fd && f.kind == FdKind::File) {
                    if wait::is_pipe_wait(wchan) {
                        f.kind = FdKind::Fifo;
                    }
                }
            }
        }
        let sockets = last.sockets.ok();
        let tcp = by_inode(sockets.map(|s| s.tcp.as_slice()).unwrap_or_default(), |t| t.inode);
        let unix = by_inode(sockets.map(|s| s.unix.as_slice()).unwrap_or_default(), |u| u.inode);
        let mut view = View {
            host,
            pid: record.pid,
            named_thread: record.named_thread,
            first,
            last,
            fds: fds.into_boxed_slice(),
            threads: threads.into_boxed_slice(),
            progress: None,
            tcp,
            unix,
            blocked_write_inodes: Box::new([]),
        };
        let mut blocked_write_inodes: Vec<u64> = view
            .threads
            .iter()
            .filter(|t| t.wait == Some(Wait::Write))
            .filter_map(|t| view.fd(t.fd?)?.inode)
            .collect();
        blocked_write_inodes.sort_unstable();
        view.blocked_write_inodes = blocked_write_inodes.into_boxed_slice();
        view.progress = (record.samples.len() > 1).then(|| Box::new(view.measure_progress()));
        Some(view)
    }

    pub fn stat(&self) -> Option<&'a Stat> {
        self.last.stat.ok()
    }

    pub fn status(&self) -> Option<&'a Status> {
        self.last.status.ok()
    }

    pub fn comm(&self) -> String {
        self.stat()
            .or(self.first.stat.ok())
            .map(|s| s.comm.escaped())
            .unwrap_or_default()
    }

    pub fn fd(&self, fd: i32) -> Option<&FdView<'a>> {
        let at = self.fds.binary_search_by_key(&fd, |f| f.fd.fd).ok()?;
        self.fds.get(at)
    }

    pub fn tcp(&self, inode: u64) -> Option<&'a TcpSocket> {
        let at = self.tcp.binary_search_by_key(&inode, |t| t.inode).ok()?;
        Some(self.tcp[at])
    }

    pub fn unix(&self, inode: u64) -> Option<&'a UnixSocket> {
        let at = self.unix.binary_search_by_key(&inode, |u| u.inode).ok()?;
        Some(self.unix[at])
    }

    fn blocked_writing(&self, inode: u64) -> bool {
        self.blocked_write_inodes.binary_search(&inode).is_ok()
    }

    /// The main thread (tid == pid), if it is still there.
    pub fn main_thread(&self) -> Option<&ThreadView<'a>> {
        self.threads.iter().find(|t| t.tid() == self.pid)
    }

    /// A pipe is full when no write can proceed: a thread is blocked writing
    /// to it, or less than a page is free (pipes fill by page slots, so a
    /// writer can block below the byte capacity). `None` when unknown.
    pub fn pipe_full(&self, fd: &FdView) -> Option<bool> {
        if fd.inode.is_some_and(|i| self.blocked_writing(i)) {
            return Some(true);
        }
        let fill = fd.pipe_fill()?;
        Some(fill.capacity_bytes.saturating_sub(fill.buffered_bytes) < self.host.page_size)
    }

    /// A unix socket is full when its send-buffer memory has reached the
    /// limit, or a thread is blocked sending on it.
    pub fn unix_full(&self, sock: &UnixSocket) -> Option<bool> {
        if self.blocked_writing(sock.inode) {
            return Some(true);
        }
        sock.send_buffer_full()
    }

    /// "fd 1, a pipe (write end), 65536/65536 bytes buffered": what an fd is,
    /// with the facts that matter for a wait on it.
    pub fn describe_fd(&self, fd: i32) -> String {
        let Some(view) = self.fd(fd) else {
            return format!("fd {fd} (not in the fd table)");
        };
        let what = match (view.kind, view.inode) {
            (FdKind::Fifo, _) => format!("a FIFO {} (fill unknown)", view.fd.target.escaped()),
            (FdKind::Pipe, Some(_)) => {
                let end = view.access().map(|a| format!(" ({a} end)")).unwrap_or_default();
                let fill = match view.fd.pipe.as_ref() {
                    Some(Fact::Ok(f)) => format!(", {}/{} bytes buffered", f.buffered_bytes, f.capacity_bytes),
                    Some(Fact::Unavailable(r)) => format!(", fill unavailable ({r})"),
                    None => String::new(),
                };
                format!("a pipe{end}{fill}")
            }
            (FdKind::Socket, Some(inode)) => self.describe_socket(inode),
            (kind, _) => format!("{} {}", kind.name(), view.fd.target.escaped()),
        };
        format!("fd {fd}, {what}")
    }

    pub fn describe_socket(&self, inode: u64) -> String {
        if let Some(t) = self.tcp(inode) {
            if t.state == "LISTEN" {
                return format!(
                    "TCP {} LISTEN ({} of {} pending connections)",
                    t.local, t.rx_queue, t.tx_queue
                );
            }
            return format!(
                "TCP {} -> {} {} (recv-q {}, send-q {})",
                t.local, t.remote, t.state, t.rx_queue, t.tx_queue
            );
        }
        if let Some(u) = self.unix(inode) {
            let path = u.path.as_ref().map(|p| format!(" {}", p.escaped())).unwrap_or_default();
            let peer = u.peer_inode.map(|p| format!(", peer socket:[{p}]")).unwrap_or_default();
            let sndbuf = match (u.wmem_alloc, u.sndbuf) {
                (Some(used), Some(size)) => format!(", send buffer {used}/{size} bytes"),
                _ => String::new(),
            };
            return format!("unix {} socket{path} {}{peer}{sndbuf}", u.kind, u.state);
        }
        format!("socket:[{inode}] (not TCP or unix)")
    }

    fn measure_progress(&self) -> Progress {
        let interval_ms = self.last.elapsed_ms.saturating_sub(self.first.elapsed_ms);
        let delta = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
        let cpu_ticks = delta(
            self.first.stat.ok().and_then(Stat::cpu_ticks),
            self.last.stat.ok().and_then(Stat::cpu_ticks),
        );
        let cpu_percent = cpu_ticks
            .filter(|_| interval_ms > 0)
            .map(|t| t as f64 * 100_000.0 / self.host.clock_ticks_per_second.max(1) as f64 / interval_ms as f64);
        let io_sum = |s: &Sample, f: fn(&Io) -> (Option<u64>, Option<u64>)| {
            let (a, b) = f(s.io.ok()?);
            Some(a? + b?)
        };
        let bytes = |io: &Io| (io.rchar, io.wchar);
        let calls = |io: &Io| (io.syscr, io.syscw);
        let switches = |s: &Sample| -> HashMap<i32, u64> {
            s.threads
                .ok()
                .map(|ts| {
                    ts.iter()
                        .filter_map(|t| Some((t.tid, t.status.ok()?.total()?)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (before, after) = (switches(self.first), switches(self.last));
        let common: Vec<(u64, u64)> = after
            .iter()
            .filter_map(|(tid, a)| Some((*before.get(tid)?, *a)))
            .collect();
        Progress {
            interval_ms,
            cpu_ticks,
            cpu_percent,
            io_bytes: delta(io_sum(self.first, bytes), io_sum(self.last, bytes)),
            io_syscalls: delta(io_sum(self.first, calls), io_sum(self.last, calls)),
            ctxt_switches: (!common.is_empty()).then(|| common.iter().map(|(b, a)| a.saturating_sub(*b)).sum()),
        }
    }
}

/// The CPU percent of a relative (child) between two samples of it.
pub fn relative_cpu_percent(host: &Host, before: &Relative, after: &Relative, interval_ms: u64) -> Option<f64> {
    let ticks = after
        .stat
        .ok()?
        .cpu_ticks()?
        .checked_sub(before.stat.ok()?.cpu_ticks()?)?;
    (interval_ms > 0).then(|| ticks as f64 * 100_000.0 / host.clock_ticks_per_second.max(1) as f64 / interval_ms as f64)
}

/// "pid 812 (sleep)" with the comm escaped.
pub fn name_relative(relative: &Relative) -> String {
    match relative.stat.ok() {
        Some(stat) => format!("pid {} ({})", relative.pid, stat.comm.escaped()),
        None => format!("pid {}", relative.pid),
    }
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// "250ms", "1.0s", "12.5s".
pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// References to `items`, sorted by inode for binary search (one per inode).
fn by_inode<T>(items: &[T], inode: fn(&T) -> u64) -> Box<[&T]> {
    let mut sorted: Vec<&T> = items.iter().collect();
    sorted.sort_unstable_by_key(|item| inode(item));
    sorted.dedup_by_key(|item| inode(item));
    sorted.into_boxed_slice()
}
