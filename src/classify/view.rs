//! A process as the classifier sees it: the raw facts of its samples,
//! interpreted once (fd kinds, pipe ends and fill, socket lookups, what each
//! thread waits on, progress between the samples) so that findings and the
//! report read the same interpretation.

use super::finding::{Call, Evidence, FdWhat, ProcessRef, TcpFacts, ThreadRef, UdpFacts, UnixFacts};
use super::progress::Progress;
use crate::linux::fd::{link_inode, pipe_is_full, Access, EPOLLOUT, O_NONBLOCK};
use crate::linux::net::{tcp_poll_writable, unix_poll_writable};
use crate::linux::syscall::syscall_name;
use crate::linux::wait::{self, Timeout, Wait};
use crate::snapshot::*;
use crate::text::TargetString;

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

    /// From the open flags.
    pub fn access(&self) -> Option<Access> {
        Some(Access::of(self.flags()?))
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
    /// The syscall's timeout, for waits that take one.
    pub timeout: Option<Timeout>,
    /// wchan without compiler suffixes.
    pub wchan: Option<&'a str>,
    /// A kernel thread: no user-space syscall to speak of.
    pub kernel_thread: bool,
    /// How long ago it last ran, in milliseconds; why not, when it was read
    /// and could not be. `None` when not read (a running thread).
    pub last_ran_ms: Option<Result<u64, Reason>>,
    /// The same thread in the first sample, when there were two.
    pub before: Option<&'a Thread>,
}

impl<'a> ThreadView<'a> {
    /// `sched_now_ms`: "now" in each CPU's scheduler clock, from the sample.
    pub(crate) fn new(thread: &'a Thread, arch: &str, sched_now_ms: Option<&[CpuNow]>) -> ThreadView<'a> {
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
        let (syscall_name, from_syscall, fd, timeout) = match thread.syscall.ok() {
            Some(Syscall::Blocked { nr, args }) if *nr >= 0 && !kernel_thread && !vfork => {
                let name = syscall_name(arch, *nr);
                let wait = name.map(|n| wait::syscall_wait(n, args));
                let fd = wait
                    .filter(|w| w.waits_on_fd())
                    .and_then(|_| args.first())
                    .and_then(|&a| i32::try_from(a).ok());
                (name, wait, fd, name.and_then(|n| wait::timeout(n, args)))
            }
            _ => (None, None, None, None),
        };
        let blocked = matches!(state, Some('S' | 'D'));
        // The syscall decides; a syscall with no wait of its own (openat,
        // ioctl...) defers to a wchan family that names one (a FIFO open).
        // A generic wchan (`wait_woken`) defers to the kernel stack, where read.
        let from_stack = || thread.kernel_stack.as_ref()?.ok().and_then(|s| wait::stack_wait(s));
        let from_wchan = wchan.and_then(wait::wchan_wait).or_else(from_stack);
        let wait = match from_syscall {
            Some(Wait::Other) => from_wchan.or(from_syscall),
            Some(wait) => Some(wait),
            None => from_wchan,
        };
        let wait = wait.filter(|_| blocked);
        let cpu = thread.stat.ok().and_then(|s| s.processor);
        let now = sched_now_ms.and_then(|clocks| clocks.iter().find(|c| Some(c.cpu) == cpu));
        let last_ran_ms = thread
            .last_ran_at_ms
            .as_ref()
            .map(|at| match (at, now.map(|c| &c.now_ms)) {
                (Fact::Ok(at), Some(Fact::Ok(now))) => Ok((now - at).max(0.0) as u64),
                (Fact::Unavailable(reason), _) | (_, Some(Fact::Unavailable(reason))) => Err(reason.clone()),
                (_, None) => Err(Reason::new(
                    ReasonKind::NotSupported,
                    "the scheduler's clock was not read",
                )),
            });
        ThreadView {
            thread,
            state,
            syscall_name,
            wait,
            fd,
            timeout,
            wchan,
            kernel_thread,
            last_ran_ms,
            before: None,
        }
    }

    /// Asleep in a wait a timer ends (a timed futex, a sleep, a poll with a
    /// timeout): a housekeeping thread, whose ticking is not the process's
    /// progress.
    pub fn timed_wait(&self) -> bool {
        self.timed_futex()
            || self.wait == Some(Wait::Sleep)
            || (matches!(self.wait, Some(Wait::Epoll | Wait::Poll))
                && matches!(self.timeout, Some(Timeout::Millis(_) | Timeout::Given)))
    }

    /// Whether this thread itself worked between the samples: it used CPU
    /// time, or was scheduled while the process did I/O (`io_moved`). A
    /// process whose housekeeping threads tick (a JVM's) is not thereby
    /// making progress in the thread that decides its verdict. `None`
    /// without both samples of the thread.
    pub fn worked(&self, io_moved: bool) -> Option<bool> {
        let before = self.before?;
        let ticks = |t: &Thread| t.stat.ok()?.cpu_ticks();
        let switches = |t: &Thread| t.status.ok()?.total();
        let cpu = ticks(self.thread)?.saturating_sub(ticks(before)?);
        let scheduled = match (switches(self.thread), switches(before)) {
            (Some(after), Some(before)) => after > before,
            _ => false,
        };
        Some(cpu > 0 || (io_moved && scheduled))
    }

    /// Blocked in a futex wait that a timeout ends: a timed sleep, not a
    /// wait only another thread can end.
    pub fn timed_futex(&self) -> bool {
        self.wait == Some(Wait::Futex) && matches!(self.timeout, Some(Timeout::Given | Timeout::Millis(_)))
    }

    pub fn tid(&self) -> i32 {
        self.thread.tid
    }

    /// On a CPU, or runnable: not waiting for anything.
    pub fn on_cpu(&self) -> bool {
        matches!(self.thread.syscall, Fact::Ok(Syscall::Running)) || self.state == Some('R')
    }

    /// The call the thread is in, as a finding names it.
    pub fn call(&self) -> Call {
        let unnamed_nr = match (self.syscall_name, self.thread.syscall.ok()) {
            (None, Some(Syscall::Blocked { nr, .. })) if *nr >= 0 && !self.kernel_thread => Some(*nr),
            _ => None,
        };
        Call {
            syscall: self.syscall_name,
            unnamed_nr,
            fd: self.fd,
            timeout: self.timeout,
            wchan: self.wchan.map(str::to_string),
            running: matches!(self.thread.syscall, Fact::Ok(Syscall::Running)),
        }
    }

    /// This thread, as a finding of process `pid` names it.
    pub fn named(&self, pid: i32) -> ThreadRef {
        ThreadRef {
            tid: self.tid(),
            main: self.tid() == pid,
        }
    }

    pub fn comm(&self) -> Option<TargetString> {
        self.thread.stat.ok().map(|s| s.comm.clone())
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
    udp: Box<[&'a UdpSocket]>,
    /// Pipe and socket inodes a thread of this process is blocked writing
    /// to (in write(), or pending in an event loop), sorted.
    blocked_write_inodes: Box<[u64]>,
    /// Writes pending in an event loop: fds registered for EPOLLOUT in the
    /// epoll set a thread waits on, full at both samples.
    pub pending_writes: Box<[PendingWrite]>,
}

/// A non-blocking write an event loop waits to finish: the fd is in the
/// epoll set its thread waits on, registered for EPOLLOUT, and full.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PendingWrite {
    pub tid: i32,
    pub epfd: i32,
    pub fd: i32,
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
            .map(|ts| {
                ts.iter()
                    .map(|t| ThreadView::new(t, &host.arch, last.sched_now_ms.as_deref()))
                    .collect()
            })
            .unwrap_or_default();
        let mut threads = threads;
        if !std::ptr::eq(first, last) {
            let earlier = first.threads.ok().map(Vec::as_slice).unwrap_or_default();
            for thread in &mut threads {
                thread.before = earlier.iter().find(|t| t.tid == thread.tid());
            }
        }
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
        let udp = by_inode(sockets.map(|s| s.udp.as_slice()).unwrap_or_default(), |u| u.inode);
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
            udp,
            blocked_write_inodes: Box::new([]),
            pending_writes: Box::new([]),
        };
        view.pending_writes = view.find_pending_writes().into_boxed_slice();
        let mut blocked_write_inodes: Vec<u64> = view
            .threads
            .iter()
            .filter(|t| t.wait == Some(Wait::Write))
            .filter_map(|t| view.fd(t.fd?)?.inode)
            .chain(view.pending_writes.iter().filter_map(|p| view.fd(p.fd)?.inode))
            .collect();
        blocked_write_inodes.sort_unstable();
        view.blocked_write_inodes = blocked_write_inodes.into_boxed_slice();
        view.progress = (record.samples.len() > 1).then(|| Box::new(Progress::between(host, first, last)));
        Some(view)
    }

    pub fn stat(&self) -> Option<&'a Stat> {
        self.last.stat.ok()
    }

    pub fn status(&self) -> Option<&'a Status> {
        self.last.status.ok()
    }

    pub fn comm(&self) -> Option<TargetString> {
        self.stat().or(self.first.stat.ok()).map(|s| s.comm.clone())
    }

    /// This process, as a finding names it.
    pub fn named(&self) -> ProcessRef {
        ProcessRef {
            pid: self.pid,
            comm: self.comm(),
        }
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

    pub fn udp(&self, inode: u64) -> Option<&'a UdpSocket> {
        let at = self.udp.binary_search_by_key(&inode, |u| u.inode).ok()?;
        Some(self.udp[at])
    }

    /// The process's UDP sockets, by inode.
    pub fn udp_sockets(&self) -> &[&'a UdpSocket] {
        &self.udp
    }

    /// The process's unix sockets, by inode.
    pub fn unix_sockets(&self) -> &[&'a UnixSocket] {
        &self.unix
    }

    fn blocked_writing(&self, inode: u64) -> bool {
        self.blocked_write_inodes.binary_search(&inode).is_ok()
    }

    /// Each thread found running, as evidence that CPU is being spent.
    pub fn threads_on_cpu(&self) -> impl Iterator<Item = Evidence> + '_ {
        self.threads
            .iter()
            .filter(|t| t.on_cpu())
            .map(|t| Evidence::ThreadOnCpu {
                tid: t.tid(),
                comm: t.comm(),
            })
    }

    /// The main thread (tid == pid), if it is still there.
    pub fn main_thread(&self) -> Option<&ThreadView<'a>> {
        self.threads.iter().find(|t| t.tid() == self.pid)
    }

    /// A pipe is full when no write can proceed: a thread is blocked writing
    /// to it, or its fill says so ([`pipe_is_full`]). `None` when unknown.
    pub fn pipe_full(&self, fd: &FdView) -> Option<bool> {
        if fd.inode.is_some_and(|i| self.blocked_writing(i)) {
            return Some(true);
        }
        let fill = fd.pipe_fill()?;
        Some(pipe_is_full(
            fill.buffered_bytes,
            fill.capacity_bytes,
            self.host.page_size,
        ))
    }

    /// The epoll set of an fd: (target fd, events) pairs.
    pub fn epoll_set(&self, epfd: i32) -> &'a [EpollTarget] {
        let info = self.fd(epfd).and_then(|f| f.fd.info.ok());
        info.map(|i| i.epoll_targets.as_slice()).unwrap_or_default()
    }

    /// Writes pending in an event loop (see [`PendingWrite`]). A pipe must
    /// be full at both samples (nobody drained it in between); a unix or
    /// TCP socket not writable, as poll judges it, at the last.
    fn find_pending_writes(&self) -> Vec<PendingWrite> {
        let mut pending = Vec::new();
        for thread in self.threads.iter().filter(|t| t.wait == Some(Wait::Epoll)) {
            let Some(epfd) = thread.fd else { continue };
            for target in self.epoll_set(epfd).iter().filter(|t| t.events & EPOLLOUT != 0) {
                let Some(f) = self.fd(target.fd) else { continue };
                let full = match (f.kind, f.inode) {
                    (FdKind::Pipe, _) if f.access() == Some(Access::Write) => self.pipe_stays_full(f),
                    // Registered for EPOLLOUT: waiting until poll says writable.
                    (FdKind::Socket, Some(inode)) => match (self.unix(inode), self.tcp(inode)) {
                        (Some(u), _) => u.wmem_alloc.zip(u.sndbuf).map(|(w, b)| !unix_poll_writable(w, b)),
                        (None, Some(t)) => t.wmem_queued.zip(t.sndbuf).map(|(w, b)| !tcp_poll_writable(w, b)),
                        (None, None) => None,
                    },
                    _ => None,
                };
                if full == Some(true) {
                    pending.push(PendingWrite {
                        tid: thread.tid(),
                        epfd,
                        fd: target.fd,
                    });
                }
            }
        }
        pending
    }

    /// Whether a pipe's fill says full at the last sample and, with two
    /// samples, is the same at the first: nobody drained it in between.
    fn pipe_stays_full(&self, f: &FdView) -> Option<bool> {
        let last = f.pipe_fill()?;
        let full = pipe_is_full(last.buffered_bytes, last.capacity_bytes, self.host.page_size);
        if std::ptr::eq(self.first, self.last) {
            return Some(full);
        }
        let first = self
            .first
            .fds
            .ok()?
            .iter()
            .find(|x| x.fd == f.fd.fd)?
            .pipe
            .as_ref()?
            .ok()?;
        Some(full && first.buffered_bytes == last.buffered_bytes)
    }

    /// The pending write of a thread on an fd, if it has one.
    pub fn pending_write(&self, tid: i32, fd: i32) -> Option<&PendingWrite> {
        self.pending_writes.iter().find(|p| p.tid == tid && p.fd == fd)
    }

    /// A unix socket is full when its send-buffer memory has reached the
    /// limit, or a thread is blocked sending on it.
    pub fn unix_full(&self, sock: &UnixSocket) -> Option<bool> {
        if self.blocked_writing(sock.inode) {
            return Some(true);
        }
        sock.send_buffer_full()
    }

    /// A TCP socket is full likewise: its send buffer (queued bytes) has
    /// reached its limit, or a thread is blocked sending on it.
    pub fn tcp_full(&self, sock: &TcpSocket) -> Option<bool> {
        if self.blocked_writing(sock.inode) {
            return Some(true);
        }
        sock.send_buffer_full()
    }

    /// What an fd is, from this process's facts alone.
    pub fn fd_what(&self, fd: i32) -> FdWhat {
        let Some(view) = self.fd(fd) else {
            return FdWhat::Missing;
        };
        match (view.kind, view.inode) {
            (FdKind::Fifo, _) => FdWhat::Fifo {
                path: view.fd.target.clone(),
                access: view.access(),
                fill: view.fd.pipe.as_ref().map(|fill| match fill {
                    Fact::Ok(fill) => Ok(*fill),
                    Fact::Unavailable(reason) => Err(reason.clone()),
                }),
                searched: view.fd.info.ok().is_some_and(|i| i.ino.is_some()),
            },
            (FdKind::Pipe, Some(_)) => FdWhat::Pipe {
                access: view.access(),
                fill: view.fd.pipe.as_ref().map(|fill| match fill {
                    Fact::Ok(fill) => Ok(*fill),
                    Fact::Unavailable(reason) => Err(reason.clone()),
                }),
            },
            (FdKind::Socket, Some(inode)) => self.socket_what(inode),
            (kind, _) => FdWhat::Other {
                kind,
                target: view.fd.target.clone(),
            },
        }
    }

    fn socket_what(&self, inode: u64) -> FdWhat {
        if let Some(t) = self.tcp(inode) {
            return FdWhat::Tcp(TcpFacts {
                local: t.local,
                remote: t.remote,
                state: t.state.to_string(),
                rx_queue: t.rx_queue,
                tx_queue: t.tx_queue,
                last_recv_ms: t.last_recv_ms,
                last_send_ms: t.last_send_ms,
                retransmits: t.retransmits,
            });
        }
        if let Some(u) = self.unix(inode) {
            return FdWhat::Unix(UnixFacts {
                kind: u.kind.to_string(),
                state: u.state.to_string(),
                path: u.path.clone(),
                peer_path: u.peer_path.clone(),
                peer_inode: u.peer_inode,
                send_buffer: u.wmem_alloc.zip(u.sndbuf),
            });
        }
        if let Some(u) = self.udp(inode) {
            return FdWhat::Udp(UdpFacts {
                local: u.local,
                remote: u.remote,
                state: u.state.to_string(),
                rx_queue: u.rx_queue,
            });
        }
        FdWhat::OtherSocket { inode }
    }
}

/// References to `items`, sorted by inode for binary search (one per inode).
fn by_inode<T>(items: &[T], inode: fn(&T) -> u64) -> Box<[&T]> {
    let mut sorted: Vec<&T> = items.iter().collect();
    sorted.sort_unstable_by_key(|item| inode(item));
    sorted.dedup_by_key(|item| inode(item));
    sorted.into_boxed_slice()
}
