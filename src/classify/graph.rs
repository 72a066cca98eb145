//! The wait-for graph: who holds the other end of each pipe and socket,
//! which process each blocked thread waits on, and the waits that can never
//! resolve.
//!
//! An edge goes from a thread to the processes that could unblock it: the
//! child it waits for, the readers of the full pipe it writes, the writers
//! of the empty pipe it reads, the peer of its socket. A thread is unblocked
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
use crate::linux::fd::Access;
use crate::linux::wait::Wait;
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
    UnixSocket,
    TcpSocket,
}

pub struct World<'a> {
    pub host: &'a Host,
    /// Sorted by pid: a fifth the memory of a map, at thousands of processes.
    views: Vec<View<'a>>,
    holders: HashMap<u64, Vec<&'a Holder>>,
    pub unsearchable: &'a [Unsearchable],
    /// Why some holders of pipes and sockets may not be known: processes
    /// that could not be searched, or hidden by /proc. `None`: all known.
    pub unseen: Option<Unseen>,
    edges: BTreeMap<i32, Vec<Edge>>,
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
        let unseen = match (snapshot.unsearchable.len(), snapshot.host.hidepid.as_deref()) {
            (0, None | Some("noaccess")) => None,
            (0, Some(setting)) => Some(Unseen::Hidden(setting.to_string())),
            (n, _) => Some(Unseen::Unsearchable(n)),
        };
        let mut world = World {
            host: &snapshot.host,
            views,
            holders,
            unsearchable: &snapshot.unsearchable,
            unseen,
            edges: BTreeMap::new(),
            live: BTreeSet::new(),
        };
        world.edges = world.pids().map(|pid| (pid, world.compute_edges(pid))).collect();
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

    /// Who holds the other end of `pid`'s `fd`: for a pipe, every fd of the
    /// same pipe open in the other direction; for a socket, the holders of
    /// its peer.
    pub fn peers(&self, pid: i32, fd: i32) -> Vec<Peer> {
        let Some(view) = self.view(pid) else { return vec![] };
        let Some(fd_view) = view.fd(fd) else { return vec![] };
        let Some(inode) = fd_view.inode else { return vec![] };
        let (peer_inode, wanted_access): (u64, Option<Access>) = match fd_view.kind {
            FdKind::Pipe => (
                inode,
                match fd_view.access() {
                    Some(Access::Read) => Some(Access::Write),
                    Some(Access::Write) => Some(Access::Read),
                    _ => None,
                },
            ),
            FdKind::Socket => match view
                .unix(inode)
                .and_then(|u| u.peer_inode)
                .or_else(|| view.tcp(inode)?.peer_inode)
            {
                Some(peer) => (peer, None),
                None => return vec![],
            },
            _ => return vec![],
        };
        self.holders
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
        let ends = view
            .fd(fd)
            .is_some_and(|f| matches!(f.kind, FdKind::Pipe | FdKind::Socket));
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
            (FdKind::Pipe | FdKind::Socket, _) => {
                let peers = self.peers(view.pid, fd);
                peers.is_empty()
                    || self.unseen.is_some()
                    || peers.iter().any(|p| self.live.contains(&p.pid) || !self.has(p.pid))
            }
            _ => true,
        }
    }

    pub fn edges(&self, pid: i32) -> &[Edge] {
        self.edges.get(&pid).map(Vec::as_slice).unwrap_or_default()
    }

    fn compute_edges(&self, pid: i32) -> Vec<Edge> {
        let Some(view) = self.view(pid) else { return vec![] };
        let mut edges = Vec::new();
        // Blocked threads: asleep (S), or a vfork parent (D) waiting on its child.
        let blocked = |t: &&super::view::ThreadView| {
            t.state == Some('S') || (t.state == Some('D') && t.wait == Some(Wait::Child))
        };
        for thread in view.threads.iter().filter(blocked) {
            let (kind, to, channel) = match thread.wait {
                Some(Wait::Child) => (EdgeKind::Child, waited_children(view, thread.thread), None),
                Some(wait @ (Wait::Write | Wait::Read)) => {
                    let Some(fd) = thread.fd.and_then(|fd| view.fd(fd)) else {
                        continue;
                    };
                    let channel = match (fd.kind, fd.inode) {
                        (FdKind::Pipe, _) => Channel::Pipe,
                        (FdKind::Socket, Some(i)) if view.unix(i).is_some() => Channel::UnixSocket,
                        (FdKind::Socket, Some(i)) if view.tcp(i).is_some() => Channel::TcpSocket,
                        _ => continue,
                    };
                    let mut to: Vec<i32> = self.peers(pid, fd.fd.fd).iter().map(|p| p.pid).collect();
                    to.sort_unstable();
                    to.dedup();
                    let kind = if wait == Wait::Write {
                        EdgeKind::Write
                    } else {
                        EdgeKind::Read
                    };
                    (kind, to, Some(channel))
                }
                _ => continue,
            };
            if to.is_empty() {
                continue; // nobody to wait on that we can see: not an edge
            }
            edges.push(Edge {
                from: pid,
                tid: thread.tid(),
                kind,
                call: thread.syscall_name.unwrap_or("wait"),
                fd: thread.fd,
                channel,
                to,
                complete: kind == EdgeKind::Child || self.unseen.is_none(),
            });
        }
        edges
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
            if let Some(edge) = edges.iter().find(|e| e.tid == thread.tid()) {
                // An unseen holder could unblock it: not provably stuck.
                return !edge.complete || edge.to.iter().any(|to| live.contains(to) || !self.has(*to));
            }
            // An untimed futex wait depends on another thread of the same
            // process; any other wait (or none) can end from outside the graph.
            thread.wait != Some(Wait::Futex) || thread.timed_futex()
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

/// The children a wait4 / waitid can return: the one it names, or all.
fn waited_children(view: &View, thread: &Thread) -> Vec<i32> {
    let all: Vec<i32> = view
        .last
        .children
        .ok()
        .map(|c| c.iter().map(|c| c.pid).collect())
        .unwrap_or_default();
    let Some(Syscall::Blocked { args, .. }) = thread.syscall.ok() else {
        return all;
    };
    let arg = |i: usize| args.get(i).map(|&a| a as i64 as i32);
    let named = match view
        .threads
        .iter()
        .find(|t| t.tid() == thread.tid)
        .and_then(|t| t.syscall_name)
    {
        Some("wait4") => arg(0).filter(|&p| p > 0),
        Some("waitid") if arg(0) == Some(1) => arg(1).filter(|&p| p > 0), // P_PID
        _ => None,
    };
    match named {
        Some(pid) => vec![pid],
        None => all,
    }
}

/// The pids a diagnosis of this snapshot still needs (for `collect`).
pub fn related_pids(snapshot: &Snapshot) -> Vec<i32> {
    // Only a thread waiting on a child, or blocked reading or writing, can
    // wait on another process: the rest need no view (a large selection
    // would otherwise be viewed twice).
    let may_wait_on_others = |record: &ProcessRecord| {
        let threads = record.samples.last().and_then(|s| s.threads.ok());
        threads.into_iter().flatten().any(|t| {
            matches!(
                ThreadView::new(t, &snapshot.host.arch).wait,
                Some(Wait::Child | Wait::Read | Wait::Write)
            )
        })
    };
    World::of(snapshot, may_wait_on_others).wanted()
}
