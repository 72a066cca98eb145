//! Sampling one process through its held /proc directory: stat, status,
//! io, threads, fd links, fd details (fdinfo and pipe fill, for every fd or
//! only the ones that matter) and the pipe probe. What a sample can only
//! get when its batch ends (its sockets, its command line through the read
//! helper, its children's stats) it leaves as [`Left`] for
//! [`super::batch`]; it knows nothing of the snapshot it goes into.

use super::clock::SchedClocks;
use super::depth::{fifo_fds, full_self_pipes, probe_pipe, wanted_fds, MAX_SELF_PIPE_PROBES};
use super::dir::ProcDir;
use super::ends::end_inode;
use super::net::NetTables;
use super::parse;
use super::reason::{absent_reason, Budget};
use super::reason::{is_gone, is_vanished, memory_readable_directly, reason_for};
use super::visibility::HidePid;
use crate::linux::fd::{pipe_is_full, FdKind};
use crate::snapshot::*;
use crate::text::TargetString;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io;
use std::rc::Rc;

/// How processes are sampled in this run.
pub(super) struct Sampler {
    /// Processes with more fds than this are read lazily (see
    /// [`super::Options::deep_fds`]).
    pub deep_fds: usize,
    /// Read each thread's context switches.
    pub thread_status: bool,
    /// One of a large selection (see [`super::Options::many`]).
    pub many: bool,
    /// The host's page size, for [`pipe_is_full`].
    pub page_size: u64,
    /// The run takes one sample: its first round is its last.
    pub single_round: bool,
    /// It may read kernel stacks (root's CAP_SYS_ADMIN).
    pub kernel_stacks: bool,
    /// Command lines may be read in-process (the live /proc, whose files
    /// are the kernel's: a fake tree's could lead anywhere), for processes
    /// whose memory cannot hang the read ([`memory_readable_directly`]).
    pub direct_cmdlines: bool,
}

/// What every sampling thread reads through (see [`super::pool`]): /proc
/// held open, the mount's `hidepid=`, the run's budget, and the scheduler
/// clocks.
pub(super) struct Shared<'a> {
    pub root: &'a ProcDir,
    pub hidepid: Option<HidePid>,
    pub budget: Budget,
    pub clocks: &'a SchedClocks,
}

impl Shared<'_> {
    /// Another process named in a report, with its stat.
    pub fn relative(&self, buf: &mut Vec<u8>, pid: i32) -> Relative {
        // Missing here is gone, or hidden by hidepid: never "not provided".
        let stat = read_explained(self.root, buf, &format!("{pid}/stat"), parse::stat, |e| {
            absent_reason(pid, e, self.hidepid)
        });
        Relative { pid, stat }
    }
}

/// What a sample leaves: for the collecting thread, which alone keeps the
/// run's shared state (the index of who holds what, the socket tables),
/// and for its batch to finish (see [`super::batch`]).
#[derive(Default)]
pub(super) struct Left {
    /// The network namespace its sockets are in (the `ns/net` link, `None`
    /// when unreadable) and the inode of every socket it holds: joined with
    /// the rest of its batch from that namespace's tables.
    pub sockets: Option<(Option<Vec<u8>>, Vec<u64>)>,
    /// Its pipe and socket fds (inode, fd), for the index of who holds what.
    pub ends: Vec<(u64, i32)>,
    pub children: ChildrenLeft,
    /// Its command line is still to be read, through the read helper.
    pub cmdline: bool,
}

/// A sample's namespace's socket tables, to join its sockets with, and the
/// inode of every socket it holds.
pub(super) type SocketsLeft = (Rc<NetTables>, Vec<u64>);

/// What is left to do for a sample's children.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChildrenLeft {
    #[default]
    Nothing,
    /// They are named: their stats are filled in.
    Stats,
    /// They are found by every process's ppid (see [`super::batch::Parents`]).
    ByPpid,
}

impl Sampler {
    /// A sample of `pid` through its held directory `dir`, taken
    /// `elapsed_ms` into the run; its stat is `read_stat` when the
    /// selection's scan read it through that directory moments ago (at
    /// most `select::FRESH`). A first
    /// sample of a thread id stops at its status, which names its process
    /// (see [`thread_of`]): nothing else of it is read, and its fds are not
    /// indexed as a holder of their own.
    pub fn sample(
        &self,
        shared: &Shared,
        buf: &mut Vec<u8>,
        dir: &ProcDir,
        (pid, read_stat): (i32, Option<Stat>),
        elapsed_ms: u64,
        first: bool,
    ) -> (Sample, Left) {
        let mut left = Left::default();
        let mut gone = false;
        let stat = match read_stat {
            Some(stat) => Fact::Ok(stat),
            None => read_fact(dir, buf, "stat", &mut gone, parse::stat),
        };
        if gone {
            let reason = Reason::new(ReasonKind::Gone, "the process exited");
            return (Sample::absent(elapsed_ms, Presence::Exited, reason), left);
        }
        let status = read_fact(dir, buf, "status", &mut gone, |b| Ok(parse::status(b)));
        if first && thread_of(&status, pid).is_some() {
            let reason = Reason::new(ReasonKind::NotCollected, "a thread: its process is sampled");
            let mut sample = Sample::absent(elapsed_ms, Presence::Present, reason);
            sample.status = status;
            return (sample, left);
        }
        let io = read_fact(dir, buf, "io", &mut gone, |b| Ok(parse::io(b)));
        // With two samples: how long it waited for a CPU in between.
        let schedstat = self
            .thread_status
            .then(|| read_fact(dir, buf, "schedstat", &mut gone, parse::schedstat));
        // When each thread last ran, and its kernel stack, are read in the
        // last round only (the diagnosis is of the last sample).
        let last_round = !first || self.single_round;
        let threads = self.threads(dir, buf, &mut gone, last_round);
        // Read once, with the first sample: here when no thread of the
        // process can be holding its memory-map lock for good, else when
        // the batch ends, through the read helper (see
        // `batch::fill_cmdlines`), where a read that hangs is given up.
        let direct = first && self.direct_cmdlines && memory_readable_directly(&threads);
        left.cmdline = first && !direct;
        let cmdline = match direct {
            true => match super::backstop::reading_cmdline(pid, || dir.read("cmdline", buf)) {
                Ok(()) => Fact::Ok(parse::cmdline(buf)),
                Err(e) => Fact::Unavailable(reason_for(&e)),
            },
            false => cmdline_not_read(),
        };
        // "Now" in the clock of each CPU those threads last ran on.
        let cpus: BTreeSet<u32> = threads
            .ok()
            .into_iter()
            .flatten()
            .filter(|t| t.last_ran_at_ms.is_some())
            .filter_map(|t| t.stat.ok()?.processor)
            .collect();
        let sched_now_ms = (!cpus.is_empty()).then(|| {
            cpus.into_iter()
                .map(|cpu| CpuNow {
                    cpu,
                    now_ms: shared.clocks.now_on(shared.root, buf, cpu),
                })
                .collect()
        });
        // A scan's processes are already shared among the pool's threads.
        let links = fd_links(dir, &mut gone, !self.many);
        let sockets = match &links {
            Fact::Ok(links) => sockets(dir, links, &mut left),
            Fact::Unavailable(reason) => Fact::Unavailable(reason.clone()),
        };
        // Indexed once, from the first sample (the other ends are found
        // before the second round).
        if let (true, Fact::Ok(links)) = (first, &links) {
            let end = |(fd, target): &(i32, Vec<u8>)| Some((end_inode(target)?, *fd));
            left.ends = links.iter().filter_map(end).collect();
        }
        let (fds, fd_totals) = match links {
            Fact::Ok(links) => {
                let (fds, totals) = self.fd_details(dir, buf, links, &threads);
                (Fact::Ok(fds), totals)
            }
            Fact::Unavailable(reason) => (Fact::Unavailable(reason), None),
        };
        let children = self.children(dir, buf, pid, &threads, &mut gone, &mut left);
        // Only a zombie's verdict names its parent (the one not reaping it).
        let zombie = stat.ok().is_some_and(Stat::is_zombie);
        let ppid = stat.ok().and_then(|s| s.ppid).filter(|&p| p > 0 && zombie);
        let parent = ppid.map(|p| Box::new(shared.relative(buf, p)));
        let tracer_pid = status.ok().and_then(|s| s.tracer_pid).filter(|&p| p > 0);
        let tracer = tracer_pid.map(|p| Box::new(shared.relative(buf, p)));
        let sample = Sample {
            elapsed_ms,
            presence: if gone { Presence::Exited } else { Presence::Present },
            stat,
            status,
            // One that exited is not asked for it (as when the helper reads).
            cmdline: if gone { cmdline_not_read() } else { cmdline },
            io,
            threads,
            fds,
            fd_totals,
            sockets,
            children,
            parent,
            tracer,
            sched_now_ms,
            schedstat,
            python_stacks: None,
            cgroups: None,
        };
        (sample, left)
    }

    fn threads(&self, dir: &ProcDir, buf: &mut Vec<u8>, gone: &mut bool, last_round: bool) -> Fact<Vec<Thread>> {
        // Each thread's files are read relative to the task directory.
        let (task, tids) = match dir.open_listing("task") {
            Ok(listing) => listing,
            Err(e) => {
                *gone |= is_gone(&e);
                return Fact::Unavailable(reason_for(&e));
            }
        };
        let mut threads = Vec::with_capacity(tids.len());
        // Every waiting thread's kernel stack, but in a large selection or
        // a process with many threads: there only where it can decide.
        let every_stack = !self.many && tids.len() <= super::LAZY_THREADS;
        // Stacks are root's: once refused, not asked again for this process.
        let mut stack_refused: Option<Reason> = None;
        let mut path = String::new();
        for tid in tids {
            let mut thread_gone = false;
            let stat = read_thread_fact(&task, buf, &mut path, tid, "stat", &mut thread_gone, parse::stat);
            if matches!(&stat, Fact::Unavailable(r) if r.kind == ReasonKind::NotSupported) || thread_gone {
                continue; // the thread exited after the listing
            }
            // Context switches only matter between two samples.
            let status = if self.thread_status {
                read_thread_fact(&task, buf, &mut path, tid, "status", &mut thread_gone, |b| {
                    let status = parse::status(b);
                    Ok(ContextSwitches {
                        voluntary_ctxt_switches: status.voluntary_ctxt_switches,
                        nonvoluntary_ctxt_switches: status.nonvoluntary_ctxt_switches,
                    })
                })
            } else {
                Fact::Unavailable(Reason::new(
                    ReasonKind::NotCollected,
                    "one sample: context switches not read",
                ))
            };
            let syscall = read_thread_fact(&task, buf, &mut path, tid, "syscall", &mut thread_gone, parse::syscall);
            let wchan = read_thread_fact(&task, buf, &mut path, tid, "wchan", &mut thread_gone, |b| {
                Ok(String::from_utf8_lossy(b).trim().to_string())
            });
            let wchan = normalise_wchan(wchan, &syscall);
            let (mut last_ran_at_ms, mut kernel_stack) = (None, None);
            let waiting = stat
                .ok()
                .filter(|s| !s.is_kernel_thread() && s.state != 'R')
                .map(|s| s.state);
            if let (true, Some(state)) = (last_round, waiting) {
                last_ran_at_ms = Some(read_thread_fact(
                    &task,
                    buf,
                    &mut path,
                    tid,
                    "sched",
                    &mut thread_gone,
                    parse::sched_exec_start,
                ));
                // The stack tells apart waits that share a wchan (a tty and a
                // TCP read both sleep in wait_woken), and what a D sleep is.
                // Where reads are lazy: only where neither the syscall nor
                // the wchan says what the wait is.
                let said = super::depth::syscall_decides(&syscall)
                    .or_else(|| wchan.ok().and_then(|w| crate::linux::wait::wchan_wait(w)));
                let unclear = state == 'D' || said.is_none();
                if self.kernel_stacks && matches!(state, 'S' | 'D') && (unclear || every_stack) {
                    kernel_stack = Some(match &stack_refused {
                        Some(reason) => Fact::Unavailable(reason.clone()),
                        None => {
                            let stack = read_thread_fact(&task, buf, &mut path, tid, "stack", &mut thread_gone, |b| {
                                Ok(parse::kernel_stack(b))
                            });
                            if let Fact::Unavailable(r) = &stack {
                                stack_refused = (r.kind == ReasonKind::Permission).then(|| r.clone());
                            }
                            stack
                        }
                    });
                }
            }
            threads.push(Thread {
                tid,
                stat,
                status,
                wchan,
                syscall,
                last_ran_at_ms,
                kernel_stack,
            });
        }
        Fact::Ok(threads)
    }

    /// fdinfo and pipe fill: for every fd, or, past `deep_fds`, for the
    /// ones that matter (full socketpairs are added when sockets are joined).
    fn fd_details(
        &self,
        dir: &ProcDir,
        buf: &mut Vec<u8>,
        links: Links,
        threads: &Fact<Vec<Thread>>,
    ) -> (Vec<Fd>, Option<FdTotals>) {
        let mut pipe_fill: HashMap<u64, Fact<PipeFill>> = HashMap::new();
        let mut probe = |fd: i32, inode: u64| -> Fact<PipeFill> {
            pipe_fill
                .entry(inode)
                .or_insert_with(|| match probe_pipe(dir, fd) {
                    Ok(fill) => Fact::Ok(fill),
                    Err(e) => Fact::Unavailable(reason_for(&e)),
                })
                .clone()
        };
        let deep: Option<BTreeSet<i32>> = (links.len() > self.deep_fds).then(|| {
            // One of a large selection: its first self-pipe only.
            let max_probes = if self.many { 1 } else { MAX_SELF_PIPE_PROBES };
            let full = full_self_pipes(
                &links,
                max_probes,
                |fd, inode| matches!(probe(fd, inode), Fact::Ok(fill) if pipe_is_full(fill.buffered_bytes, fill.capacity_bytes, self.page_size)),
            );
            let mut wanted = wanted_fds(&links, threads);
            wanted.extend(full);
            wanted
        });
        let totals = deep.as_ref().map(|_| {
            let mut totals = FdTotals::default();
            for (_, target) in &links {
                totals.add(FdKind::of(target));
            }
            totals
        });
        // An epoll set's fds are read in depth with it, whatever their
        // numbers: the epoll fds a thread waits on are read first.
        let mut infos: HashMap<i32, Option<Fact<FdInfo>>> = HashMap::new();
        let mut deep = deep;
        if let Some(wanted) = &mut deep {
            let epolls: Vec<i32> = links
                .iter()
                .filter(|(fd, target)| wanted.contains(fd) && FdKind::of(target) == FdKind::Eventpoll)
                .map(|(fd, _)| *fd)
                .collect();
            for fd in epolls {
                let info = read_fdinfo(dir, buf, fd);
                if let Some(Fact::Ok(info)) = &info {
                    wanted.extend(info.epoll_targets.iter().map(|t| t.fd));
                }
                infos.insert(fd, info);
            }
        }
        let fifos = fifo_fds(threads);
        let mut fds = Vec::with_capacity(deep.as_ref().map_or(links.len(), |w| w.len()));
        for (fd, target) in links {
            if deep.as_ref().is_some_and(|w| !w.contains(&fd)) {
                continue; // counted in the totals only
            }
            let info = match infos.remove(&fd) {
                Some(info) => info,
                None => read_fdinfo(dir, buf, fd),
            };
            let Some(info) = info else {
                continue; // closed after the listing
            };
            let pipe = match crate::linux::fd::link_inode(&target, "pipe") {
                Some(inode) => Some(probe(fd, inode)),
                // A FIFO a thread reads or writes has both ends open: a
                // moment's extra reader completes nobody's open().
                None if fifos.contains(&fd) && target.starts_with(b"/") => Some(match probe_pipe(dir, fd) {
                    Ok(fill) => Fact::Ok(fill),
                    Err(e) => Fact::Unavailable(reason_for(&e)),
                }),
                None => None,
            };
            fds.push(Fd {
                fd,
                target: TargetString::new(target),
                info,
                pipe,
            });
        }
        (fds, totals)
    }

    /// Children from every thread's `children` file; for a large selection,
    /// or on kernels without the file, from the ppid of every process (left
    /// for the batch). Their stats are filled in when the batch ends.
    fn children(
        &self,
        dir: &ProcDir,
        buf: &mut Vec<u8>,
        pid: i32,
        threads: &Fact<Vec<Thread>>,
        gone: &mut bool,
        left: &mut Left,
    ) -> Fact<Vec<Relative>> {
        let mut pids = BTreeSet::new();
        let mut supported = false;
        if !self.many {
            let tids: Vec<i32> = threads
                .ok()
                .map(|t| t.iter().map(|t| t.tid).collect())
                .unwrap_or_else(|| vec![pid]);
            for tid in tids {
                match dir.read(&format!("task/{tid}/children"), buf) {
                    Ok(()) => {
                        supported = true;
                        pids.extend(parse::pids(buf));
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(e) => {
                        *gone |= is_gone(&e);
                        return Fact::Unavailable(reason_for(&e));
                    }
                }
            }
        }
        if !supported {
            left.children = ChildrenLeft::ByPpid;
        } else if !pids.is_empty() {
            left.children = ChildrenLeft::Stats;
        }
        Fact::Ok(pids.into_iter().map(unfilled_child).collect())
    }
}

/// [`read_fact`] of thread `tid`'s file `name`, relative to the task
/// directory (`TID/NAME`, written into the reused `path`). An unparsable
/// one is named from the process's directory, `task/TID/NAME`.
fn read_thread_fact<T>(
    task: &ProcDir,
    buf: &mut Vec<u8>,
    path: &mut String,
    tid: i32,
    name: &str,
    gone: &mut bool,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Fact<T> {
    path.clear();
    let _ = write!(path, "{tid}/{name}");
    match read_fact(task, buf, path, gone, parse) {
        Fact::Unavailable(r) if r.kind == ReasonKind::Unparsable => {
            Fact::Unavailable(Reason::new(r.kind, format!("task/{}", r.detail)))
        }
        fact => fact,
    }
}

/// The process `pid` is a thread of, when it is not its own (/proc/TID
/// exists for every thread).
pub(super) fn thread_of(status: &Fact<Status>, pid: i32) -> Option<i32> {
    status.ok().and_then(|s| s.tgid).filter(|&t| t != pid && t > 0)
}

/// A child whose stat is filled in when the batch ends.
pub(super) fn unfilled_child(pid: i32) -> Relative {
    Relative {
        pid,
        stat: Fact::Unavailable(Reason::new(ReasonKind::NotCollected, "filled in when the batch ends")),
    }
}

impl Sample {
    /// A sample of a process that could not be read: every fact unavailable
    /// for `reason`.
    pub(super) fn absent(elapsed_ms: u64, presence: Presence, reason: Reason) -> Sample {
        Sample {
            elapsed_ms,
            presence,
            stat: Fact::Unavailable(reason.clone()),
            status: Fact::Unavailable(reason.clone()),
            cmdline: Fact::Unavailable(reason.clone()),
            io: Fact::Unavailable(reason.clone()),
            threads: Fact::Unavailable(reason.clone()),
            fds: Fact::Unavailable(reason.clone()),
            fd_totals: None,
            sockets: Fact::Unavailable(reason.clone()),
            children: Fact::Unavailable(reason),
            parent: None,
            tracer: None,
            sched_now_ms: None,
            schedstat: None,
            python_stacks: None,
            cgroups: None,
        }
    }
}

/// Read and parse one file under `dir` into the reused `buf`; ESRCH marks the
/// process gone.
pub(super) fn read_fact<T>(
    dir: &ProcDir,
    buf: &mut Vec<u8>,
    rel: &str,
    gone: &mut bool,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Fact<T> {
    read_explained(dir, buf, rel, parse, |e| {
        *gone |= is_gone(e);
        reason_for(e)
    })
}

/// [`read_fact`], with the reason for a failed read given by `explain`.
pub(super) fn read_explained<T>(
    dir: &ProcDir,
    buf: &mut Vec<u8>,
    rel: &str,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
    explain: impl FnOnce(&io::Error) -> Reason,
) -> Fact<T> {
    match dir.read(rel, buf) {
        Ok(()) => match parse(buf) {
            Ok(value) => Fact::Ok(value),
            Err(e) => Fact::Unavailable(Reason::new(ReasonKind::Unparsable, format!("{rel}: {e}"))),
        },
        Err(e) => Fact::Unavailable(explain(&e)),
    }
}

/// An fd's fdinfo; `None` when the fd was closed after the listing.
pub(super) fn read_fdinfo(dir: &ProcDir, buf: &mut Vec<u8>, fd: i32) -> Option<Fact<FdInfo>> {
    let info = read_fact(dir, buf, &format!("fdinfo/{fd}"), &mut false, |b| Ok(parse::fdinfo(b)));
    match &info {
        Fact::Unavailable(r) if r.kind == ReasonKind::NotSupported => None,
        _ => Some(info),
    }
}

/// fd numbers and the targets of their links.
type Links = Vec<(i32, Vec<u8>)>;

/// Every fd and its link text (readlink only: the target is never
/// followed).
fn fd_links(dir: &ProcDir, gone: &mut bool, may_split: bool) -> Fact<Links> {
    // Each link is read relative to the fd directory: `N`, not `fd/N`.
    let (fd_dir, numbers) = match dir.open_listing("fd") {
        Ok(listing) => listing,
        Err(e) => {
            *gone |= is_gone(&e);
            return Fact::Unavailable(reason_for(&e));
        }
    };
    let read = |numbers: &[i32]| -> io::Result<Links> {
        let mut links = Vec::with_capacity(numbers.len());
        let mut path = String::new();
        for &fd in numbers {
            path.clear();
            let _ = write!(path, "{fd}");
            match fd_dir.readlink(&path) {
                Ok(target) => links.push((fd, target)),
                Err(e) if is_vanished(&e) => continue, // closed after the listing
                Err(e) => return Err(e),
            }
        }
        Ok(links)
    };
    // Thousands of links: shared out among the pool's number of threads.
    let threads = match may_split && numbers.len() > SPLIT_LINKS {
        true => super::pool::threads(),
        false => 1,
    };
    let mut links = Vec::with_capacity(numbers.len());
    for share in super::pool::shared_out(&numbers, threads, read) {
        match share {
            Ok(share) => links.extend(share),
            Err(e) => return Fact::Unavailable(reason_for(&e)),
        }
    }
    Fact::Ok(links)
}

/// A process with more fds than this, outside a scan, has its fd links read
/// on as many threads as the run samples on.
const SPLIT_LINKS: usize = 2048;

/// The process's sockets, all joined with the rest of its batch (see
/// [`super::batch`]) from the tables of its namespace, left in `left` with
/// the inodes of every socket it holds: its unix and UDP sockets for the
/// fds it kept, its TCP ones all (connections are counted).
fn sockets(dir: &ProcDir, links: &[(i32, Vec<u8>)], left: &mut Left) -> Fact<Sockets> {
    let inodes: Vec<u64> = links
        .iter()
        .filter_map(|(_, target)| crate::linux::fd::link_inode(target, "socket"))
        .collect();
    if inodes.is_empty() {
        return Fact::Ok(Sockets::default());
    }
    left.sockets = Some((dir.readlink("ns/net").ok(), inodes));
    // Its source is set, and the rest joined, when the batch ends.
    Fact::Ok(Sockets::default())
}

/// A command line not read with this sample.
fn cmdline_not_read<T>() -> Fact<T> {
    Fact::Unavailable(Reason::new(
        ReasonKind::NotCollected,
        "read once, with the first sample",
    ))
}

/// `wchan` reads `0` both for a thread that is not waiting and for one we may
/// not inspect; only the second is unknown, and it must never look like
/// "running".
fn normalise_wchan(wchan: Fact<String>, syscall: &Fact<Syscall>) -> Fact<String> {
    match (wchan, syscall) {
        (Fact::Ok(w), Fact::Unavailable(r)) if w == "0" && r.kind == ReasonKind::Permission => {
            Fact::Unavailable(Reason::new(ReasonKind::Permission, "reads 0 without ptrace access"))
        }
        (Fact::Ok(w), _) if w == "0" => Fact::Ok(String::new()),
        (wchan, _) => wchan,
    }
}
