//! The wait-for graph: who holds the other end of each pipe and socket,
//! which process each blocked thread waits on, and the waits that can never
//! resolve.
//!
//! An edge goes from a thread to the processes that could unblock it: the
//! child it waits for, the readers of the full pipe it writes, the writers
//! of the empty pipe (or FIFO) it reads, the peer of its socket, the
//! holders of the file lock it waits for. A thread is unblocked
//! if *any* of them makes progress, so liveness is a least fixed point: a
//! process is live if it makes progress, has a thread on a CPU or in a wait
//! something outside the graph can end (a timer, epoll, the disk), or has a
//! thread whose edge leads to a live process. Whatever is not live, and is
//! blocked on edges, is deadlocked. Processes outside the snapshot, and
//! waits whystuck cannot resolve, count as live: no deadlock is ever claimed
//! on a guess. So does a pipe or socket whose holders are not all known
//! (some processes could not be searched, or /proc hid them): an unseen
//! holder could still read or write it.

use super::finding::{FdFacts, Peer, Unseen};
use super::view::{FdKind, ThreadView, View};
use crate::linux::fd::{Access, O_CLOEXEC};
use crate::linux::wait::{self, Timeout, Wait, Waited};
use crate::snapshot::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    /// wait4 / waitid on a child.
    Child,
    /// Blocked writing a full pipe or socket: waits on its readers.
    Write,
    /// Blocked reading an empty pipe or socket: waits on its writers.
    Read,
    /// Connecting to a listener of this host whose accept queue is full:
    /// waits on the process owning it to accept.
    Connect,
    /// Waiting for a file lock (flock, fcntl F_SETLKW): waits on the
    /// processes holding it to release it.
    Lock,
}

/// A blocked thread and the processes any one of which could unblock it.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub from: i32,
    pub tid: i32,
    pub kind: EdgeKind,
    /// The syscall name, for child waits.
    pub call: &'static str,
    pub fd: Option<i32>,
    /// For a read or write edge.
    pub channel: Option<Channel>,
    pub to: Vec<i32>,
    /// Whether `to` is every process that could unblock the thread, or only
    /// those found (see [`World::unseen`]).
    pub complete: bool,
}

/// What a read or write edge goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Pipe,
    /// A named pipe.
    Fifo,
    UnixSocket,
    TcpSocket,
}

pub struct World<'a> {
    pub host: &'a Host,
    /// Sorted by pid: a fifth the memory of a map, at thousands of processes.
    views: Vec<View<'a>>,
    holders: HashMap<u64, Vec<&'a Holder>>,
    /// The holders of named pipes, by the FIFO's inode.
    fifo_holders: HashMap<u64, Vec<&'a Holder>>,
    /// The files threads wait to lock, and who holds them.
    pub locks: Option<&'a Fact<Vec<LockedFile>>>,
    pub unsearchable: &'a [Unsearchable],
    /// Why some holders of pipes and sockets may not be known: processes
    /// that could not be searched, or hidden by /proc. `None`: all known.
    pub unseen: Option<Unseen>,
    edges: BTreeMap<i32, Vec<Edge>>,
    /// For each pid, the edges that wait on it, as (from, index in its
    /// edges): found once, not by a walk of every edge for each process.
    waiters: BTreeMap<i32, Vec<(i32, usize)>>,
    /// Threads (pid, tid) whose every waker is one of their edges or their
    /// own process: an event loop on pipes and its own wakeup fds.
    closed_waits: BTreeSet<(i32, i32)>,
    live: BTreeSet<i32>,
}

impl<'a> World<'a> {
    pub fn new(snapshot: &'a Snapshot) -> World<'a> {
        World::of(snapshot, |_| true)
    }

    /// A world of the processes `keep` admits (the others count as outside).
    fn of(snapshot: &'a Snapshot, keep: impl Fn(&ProcessRecord) -> bool) -> World<'a> {
        let kept: Vec<&ProcessRecord> = snapshot.processes.iter().filter(|r| keep(r)).collect();
        let mut views: Vec<View> = Vec::with_capacity(kept.len());
        views.extend(kept.into_iter().filter_map(|record| View::new(&snapshot.host, record)));
        views.sort_unstable_by_key(|v| v.pid);
        views.dedup_by_key(|v| v.pid);
        let mut holders: HashMap<u64, Vec<&Holder>> = HashMap::new();
        for holder in &snapshot.holders {
            holders.entry(holder.inode).or_default().push(holder);
        }
        let mut fifo_holders: HashMap<u64, Vec<&Holder>> = HashMap::new();
        for holder in &snapshot.fifo_holders {
            fifo_holders.entry(holder.inode).or_default().push(holder);
        }
        let unseen = match (snapshot.unsearchable.len(), snapshot.host.hidepid.as_deref()) {
            (0, None | Some("noaccess")) => None,
            (0, Some(setting)) => Some(Unseen::Hidden(setting.to_string())),
            (n, _) => Some(Unseen::Unsearchable(n)),
        };
        let mut world = World {
            host: &snapshot.host,
            views,
            holders,
            fifo_holders,
            locks: snapshot.locks.as_ref(),
            unsearchable: &snapshot.unsearchable,
            unseen,
            edges: BTreeMap::new(),
            waiters: BTreeMap::new(),
            closed_waits: BTreeSet::new(),
            live: BTreeSet::new(),
        };
        for pid in world.pids().collect::<Vec<_>>() {
            let (edges, closed) = world.compute_edges(pid);
            world.edges.insert(pid, edges);
            world.closed_waits.extend(closed.into_iter().map(|tid| (pid, tid)));
        }
        for (&from, edges) in &world.edges {
            for (at, edge) in edges.iter().enumerate() {
                let mut to = edge.to.clone();
                to.sort_unstable();
                to.dedup();
                for pid in to {
                    world.waiters.entry(pid).or_default().push((from, at));
                }
            }
        }
        world.live = world.compute_live();
        world
    }

    pub fn view(&self, pid: i32) -> Option<&View<'a>> {
        let at = self.views.binary_search_by_key(&pid, |v| v.pid).ok()?;
        Some(&self.views[at])
    }

    /// Whether `pid` was sampled (and so is inside the world).
    pub fn has(&self, pid: i32) -> bool {
        self.view(pid).is_some()
    }

    /// Every sampled pid, ascending.
    pub fn pids(&self) -> impl Iterator<Item = i32> + '_ {
        self.views.iter().map(|v| v.pid)
    }

    /// Who holds the other end of `pid`'s `fd`: for a pipe or a FIFO, every
    /// fd of it open in the other direction; for a socket, the holders of
    /// its peer.
    pub fn peers(&self, pid: i32, fd: i32) -> Vec<Peer> {
        let Some(view) = self.view(pid) else { return vec![] };
        let Some(fd_view) = view.fd(fd) else { return vec![] };
        let other_way = match fd_view.access() {
            Some(Access::Read) => Some(Access::Write),
            Some(Access::Write) => Some(Access::Read),
            _ => None,
        };
        let (holders, peer_inode, wanted_access) = match (fd_view.kind, fd_view.inode) {
            (FdKind::Fifo, _) => match fd_view.fd.info.ok().and_then(|i| i.ino) {
                Some(ino) => (&self.fifo_holders, ino, other_way),
                None => return vec![],
            },
            (_, None) => return vec![],
            (FdKind::Pipe, Some(inode)) => (&self.holders, inode, other_way),
            (FdKind::Socket, Some(inode)) => match view
                .unix(inode)
                .and_then(|u| u.peer_inode)
                .or_else(|| view.tcp(inode)?.peer_inode)
            {
                Some(peer) => (&self.holders, peer, None),
                None => return vec![],
            },
            _ => return vec![],
        };
        holders
            .get(&peer_inode)
            .into_iter()
            .flatten()
            .filter(|h| !(h.pid == pid && h.fd == fd))
            .filter(|h| {
                !matches!(
                    (wanted_access, h.flags.map(Access::of)),
                    (Some(Access::Read), Some(Access::Write)) | (Some(Access::Write), Some(Access::Read))
                )
            })
            .map(|h| Peer {
                pid: h.pid,
                fd: h.fd,
                comm: h.comm.clone(),
            })
            .collect()
    }

    /// What an fd is, with who holds its other end.
    pub fn fd_facts(&self, view: &View, fd: i32) -> FdFacts {
        let ends = view.fd(fd).is_some_and(|f| f.kind.is_channel());
        FdFacts {
            pid: view.pid,
            fd,
            what: view.fd_what(fd),
            peers: if ends { self.peers(view.pid, fd) } else { Vec::new() },
            unseen: self.unseen.clone(),
        }
    }

    /// Whether something other than a timer or a signal could make this fd
    /// readable: a live process at the other end, the network, another
    /// thread. Unknown counts as yes.
    pub fn can_wake(&self, view: &View, fd: i32) -> bool {
        let Some(f) = view.fd(fd) else { return false };
        match (f.kind, f.inode) {
            (FdKind::Timerfd | FdKind::Signalfd, _) => false,
            (FdKind::Socket, Some(inode)) if view.tcp(inode).is_some() => true,
            // Anyone may open a FIFO's path and read or write it.
            (FdKind::Fifo, _) => true,
            (FdKind::Pipe | FdKind::Socket, _) => {
                let peers = self.peers(view.pid, fd);
                peers.is_empty()
                    || self.unseen.is_some()
                    || peers.iter().any(|p| self.live.contains(&p.pid) || !self.has(p.pid))
            }
            _ => true,
        }
    }

    /// The edges of other processes that wait on `pid`.
    pub fn edges_to(&self, pid: i32) -> impl Iterator<Item = &Edge> {
        let waiters = self.waiters.get(&pid).map(Vec::as_slice).unwrap_or_default();
        waiters
            .iter()
            .filter(move |&&(from, _)| from != pid)
            .map(|&(from, at)| &self.edges[&from][at])
    }

    pub fn edges(&self, pid: i32) -> &[Edge] {
        self.edges.get(&pid).map(Vec::as_slice).unwrap_or_default()
    }

    /// A process's wait-for edges, and its threads whose every waker is
    /// one of those edges or the process itself.
    fn compute_edges(&self, pid: i32) -> (Vec<Edge>, Vec<i32>) {
        let Some(view) = self.view(pid) else {
            return (vec![], vec![]);
        };
        let mut edges = Vec::new();
        let mut closed = Vec::new();
        // Blocked threads: asleep (S), or a vfork parent (D) waiting on its child.
        let blocked = |t: &&ThreadView| t.state == Some('S') || (t.state == Some('D') && t.wait == Some(Wait::Child));
        for thread in view.threads.iter().filter(blocked) {
            match thread.wait {
                Some(Wait::Child) => {
                    let to = waited_children(view, thread.thread);
                    if !to.is_empty() {
                        edges.push(Edge {
                            from: pid,
                            tid: thread.tid(),
                            kind: EdgeKind::Child,
                            call: thread.syscall_name.unwrap_or("wait"),
                            fd: None,
                            channel: None,
                            to,
                            complete: true,
                        });
                    }
                }
                Some(Wait::Write) => {
                    edges.extend(thread.fd.and_then(|fd| self.fd_edge(view, thread, fd, EdgeKind::Write)))
                }
                Some(Wait::Read) => {
                    edges.extend(thread.fd.and_then(|fd| self.fd_edge(view, thread, fd, EdgeKind::Read)))
                }
                Some(Wait::Connect) => edges.extend(
                    thread
                        .fd
                        .and_then(|fd| self.fd_edge(view, thread, fd, EdgeKind::Connect)),
                ),
                Some(Wait::Lock) => {
                    let facts = super::locks::lock_facts(self.locks, view, thread);
                    let to = facts.waits_on();
                    if !to.is_empty() {
                        edges.push(Edge {
                            from: pid,
                            tid: thread.tid(),
                            kind: EdgeKind::Lock,
                            call: thread.syscall_name.unwrap_or("flock"),
                            fd: thread.fd,
                            channel: None,
                            to,
                            complete: facts.complete,
                        });
                    }
                }
                Some(Wait::Epoll) => {
                    if let Some(found) = self.epoll_edges(view, thread) {
                        edges.extend(found);
                        closed.push(thread.tid());
                    }
                }
                _ => {}
            }
        }
        (edges, closed)
    }

    /// A thread waiting on `fd` (to write into it, or to read from it) waits
    /// on the processes holding its other end, other than its own.
    fn fd_edge(&self, view: &View, thread: &ThreadView, fd: i32, kind: EdgeKind) -> Option<Edge> {
        let f = view.fd(fd)?;
        let channel = match (f.kind, f.inode) {
            (FdKind::Pipe, _) => Channel::Pipe,
            (FdKind::Fifo, _) => Channel::Fifo,
            (FdKind::Socket, Some(i)) if view.unix(i).is_some() => Channel::UnixSocket,
            (FdKind::Socket, Some(i)) if view.tcp(i).is_some() => Channel::TcpSocket,
            _ => return None,
        };
        let mut to: Vec<i32> = self.peers(view.pid, fd).iter().map(|p| p.pid).collect();
        to.sort_unstable();
        to.dedup();
        // Nobody to wait on that we can see: not an edge.
        (!to.is_empty()).then(|| Edge {
            from: view.pid,
            tid: thread.tid(),
            kind,
            call: thread.syscall_name.unwrap_or("wait"),
            fd: Some(fd),
            channel: Some(channel),
            to,
            // Anyone may still open a FIFO's path: its ends are never all known.
            complete: self.unseen.is_none() && channel != Channel::Fifo,
        })
    }

    /// What could wake an event loop parked in epoll_wait with no
    /// timeout: the readers of an fd it waits to write (see
    /// [`View::pending_writes`]), as for a thread blocked in write(), and
    /// whoever holds the other end of a pipe or unix socket it waits to read.
    /// `None` when something whystuck cannot follow could wake it (a
    /// timeout, a TCP peer, a timer or signal fd...): no deadlock is
    /// claimed on a guess. Its own self-pipe, socketpair or close-on-exec
    /// eventfd only it can write, and is no edge.
    fn epoll_edges(&self, view: &View, thread: &ThreadView) -> Option<Vec<Edge>> {
        let epfd = thread.fd?;
        if thread.timeout != Some(Timeout::Forever) {
            return None;
        }
        let (mut writes, mut reads) = (Vec::new(), Vec::new());
        for target in view.epoll_set(epfd) {
            if view.pending_write(thread.tid(), target.fd).is_some() {
                writes.extend(self.fd_edge(view, thread, target.fd, EdgeKind::Write));
                continue;
            }
            let f = view.fd(target.fd)?;
            let own_eventfd = f.kind == FdKind::Eventfd && f.flags().is_some_and(|flags| flags & O_CLOEXEC != 0);
            let ends_known = match (f.kind, f.inode) {
                (FdKind::Pipe, _) => true,
                (FdKind::Socket, Some(inode)) => view.unix(inode).is_some(),
                _ => false,
            };
            match (own_eventfd, ends_known) {
                (true, _) => continue,
                (false, false) => return None,
                (false, true) => {}
            }
            let mut edge = self.fd_edge(view, thread, target.fd, EdgeKind::Read);
            if let Some(edge) = &mut edge {
                edge.to.retain(|&to| to != view.pid);
            }
            reads.extend(edge.filter(|e| !e.to.is_empty()));
        }
        writes.extend(reads);
        Some(writes)
    }

    /// The least fixed point of liveness (see the module documentation).
    fn compute_live(&self) -> BTreeSet<i32> {
        let mut live = BTreeSet::new();
        loop {
            let before = live.len();
            for view in &self.views {
                if !live.contains(&view.pid) && self.is_live(view.pid, view, &live) {
                    live.insert(view.pid);
                }
            }
            if live.len() == before {
                return live;
            }
        }
    }

    fn is_live(&self, pid: i32, view: &View, live: &BTreeSet<i32>) -> bool {
        if view.progress.as_ref().and_then(|p| p.moved()) == Some(true) {
            return true;
        }
        if view.last.presence != Presence::Present || view.threads.is_empty() {
            return true; // dead or unreadable: not part of a deadlock we can prove
        }
        let edges = self.edges(pid);
        view.threads.iter().any(|thread| {
            let mut own = edges.iter().filter(|e| e.tid == thread.tid()).peekable();
            if own.peek().is_some() {
                // Any one of its edges can unblock it; an unseen holder
                // could too: not provably stuck.
                return own.any(|edge| !edge.complete || edge.to.iter().any(|to| live.contains(to) || !self.has(*to)));
            }
            // An untimed futex wait depends on another thread of the same
            // process, as does an event loop waiting only on its own wakeup
            // fds; any other wait (or none) can end from outside the graph.
            let closed = self.closed_waits.contains(&(pid, thread.tid()));
            !closed && (thread.wait != Some(Wait::Futex) || thread.timed_futex())
        })
    }

    /// Blocked for good: not live, and blocked on at least one edge.
    pub fn is_deadlocked(&self, pid: i32) -> bool {
        !self.live.contains(&pid) && !self.edges(pid).is_empty()
    }

    /// The cycle `pid` is stuck behind: follow deadlocked edges from `pid`
    /// until a process repeats. Whether `pid` is on the cycle itself.
    pub fn cycle(&self, pid: i32) -> Option<(Vec<i32>, bool)> {
        if !self.is_deadlocked(pid) {
            return None;
        }
        let mut path = vec![pid];
        loop {
            let last = *path.last()?;
            let next = self
                .edges(last)
                .iter()
                .flat_map(|e| e.to.iter().copied())
                .find(|to| self.is_deadlocked(*to))?;
            if let Some(start) = path.iter().position(|&p| p == next) {
                let cycle = path.split_off(start);
                let on_it = cycle.contains(&pid);
                return Some((cycle, on_it));
            }
            path.push(next);
        }
    }

    /// The cycle's edges, one after the other.
    pub fn cycle_edges(&self, cycle: &[i32]) -> Vec<Edge> {
        let mut edges = Vec::new();
        for (i, &from) in cycle.iter().enumerate() {
            let to = cycle[(i + 1) % cycle.len()];
            if let Some(edge) = self.edges(from).iter().find(|e| e.to.contains(&to)) {
                edges.push(edge.clone());
            }
        }
        edges
    }

    /// The pids a diagnosis of the sampled processes still needs: what their
    /// blocked threads wait on.
    pub fn wanted(&self) -> Vec<i32> {
        let mut wanted: BTreeSet<i32> = BTreeSet::new();
        for edges in self.edges.values() {
            wanted.extend(edges.iter().flat_map(|e| e.to.iter().copied()));
        }
        wanted.into_iter().filter(|&pid| !self.has(pid)).collect()
    }
}

/// The children a wait4 / waitid waits for: the one it names, those of the
/// group it names, or any. A process with a controlling terminal waiting
/// for any child (an interactive shell) waits for its foreground job: a
/// job stopped in the background is not what it waits for.
pub fn waited_children(view: &View, thread: &Thread) -> Vec<i32> {
    let children = view.last.children.ok().map(Vec::as_slice).unwrap_or_default();
    let pgrp = |child: &Relative| child.stat.ok().and_then(|s| s.pgrp);
    let in_group = |group: i32| -> Vec<i32> {
        children
            .iter()
            .filter(|c| pgrp(c) == Some(group))
            .map(|c| c.pid)
            .collect()
    };
    let all = || children.iter().map(|c| c.pid).collect::<Vec<i32>>();
    let call = view
        .threads
        .iter()
        .find(|t| t.tid() == thread.tid)
        .and_then(|t| t.syscall_name);
    let waited = match (call, thread.syscall.ok()) {
        (Some(name), Some(Syscall::Blocked { args, .. })) => wait::waited(name, args),
        _ => None,
    };
    let own = view.stat();
    match waited {
        Some(Waited::Child(pid)) => vec![pid],
        Some(Waited::Group(group)) => in_group(group),
        Some(Waited::OwnGroup) => own.and_then(|s| s.pgrp).map(in_group).unwrap_or_else(all),
        Some(Waited::Any) | None => {
            let foreground = own
                .filter(|s| s.tty_nr.is_some_and(|t| t != 0))
                .and_then(|s| s.tpgid)
                .filter(|&g| g > 0);
            match foreground.map(in_group) {
                Some(jobs) if !jobs.is_empty() => jobs,
                _ => all(),
            }
        }
    }
}

/// The pids a diagnosis of this snapshot still needs (for `collect`).
pub fn related_pids(snapshot: &Snapshot) -> Vec<i32> {
    // Only a thread waiting on a child, blocked reading or writing, or an
    // event loop with no timeout (its epoll set may be all pipes to other
    // processes: see `epoll_edges`), can wait on another process: the rest
    // need no view (a large selection would otherwise be viewed twice).
    let may_wait_on_others = |record: &ProcessRecord| {
        let Some(last) = record.samples.last() else {
            return false;
        };
        last.threads.ok().into_iter().flatten().any(|t| {
            let thread = ThreadView::new(t, &snapshot.host.arch, None);
            match thread.wait {
                Some(Wait::Child | Wait::Read | Wait::Write | Wait::Connect | Wait::Lock) => true,
                Some(Wait::Epoll) => thread.timeout == Some(Timeout::Forever),
                _ => false,
            }
        })
    };
    World::of(snapshot, may_wait_on_others).wanted()
}
