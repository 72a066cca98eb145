//! What a batch of samples still lacks when it ends, filled in for all of
//! them at once: command lines (first samples only, through the read
//! helper), unix sockets (one filtered dump per network namespace) and UDP
//! ones (when a socket is neither TCP nor unix), the
//! full socketpairs of lazily read processes, and children's stats.
//!
//! Samples leave their work by pid ([`Batch::leave`]); when the batch ends,
//! each pid's record is found in the snapshot through [`Records`], made
//! for that batch from the snapshot itself.

use super::dir::ProcDir;
use super::helper::CmdlineReader;
use super::net::{NetTables, UnixSockets};
use super::parse;
use super::reason::{reason_for, stuck_on_file_server, Budget};
use super::run::{Dirs, Reader};
use super::sample::{read_fdinfo, unfilled_child, ChildrenLeft, Left, SocketsLeft};
use crate::snapshot::*;
use crate::text::TargetString;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io;
use std::rc::Rc;
use std::time::Duration;

pub(super) struct Batch {
    /// Command lines are read through it, in an abandonable process.
    cmdlines: CmdlineReader,
    /// Each read's own deadline, named when one runs out.
    read_timeout: Duration,
    /// Who is whose child, made once per round when a large selection (or
    /// a kernel without `task/TID/children`) needs it.
    parents: Option<Parents>,
    pending: Pending,
}

/// The work left by the samples of this batch, by pid.
#[derive(Default)]
struct Pending {
    /// Command lines still to read (first samples).
    cmdlines: Vec<i32>,
    /// Sockets still to join, with the tables of each pid's namespace and
    /// the inodes of every socket it holds.
    sockets: Vec<(i32, SocketsLeft)>,
    /// Children named, whose stats are still to be filled in.
    children: Vec<i32>,
    /// Children still to be found by ppid (see [`Parents`]).
    child_lists: Vec<i32>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.cmdlines.is_empty() && self.sockets.is_empty() && self.children.is_empty() && self.child_lists.is_empty()
    }
}

impl Batch {
    pub fn new(cmdlines: CmdlineReader, read_timeout: Duration) -> Batch {
        Batch {
            cmdlines,
            read_timeout,
            parents: None,
            pending: Pending::default(),
        }
    }

    /// What `pid`'s new sample left for the batch; `tables`, those of the
    /// namespace its sockets are in, when it holds any.
    pub fn leave(&mut self, pid: i32, left: Left, tables: Option<Rc<NetTables>>) {
        if left.cmdline {
            self.pending.cmdlines.push(pid);
        }
        if let (Some(tables), Some((_, inodes))) = (tables, left.sockets) {
            self.pending.sockets.push((pid, (tables, inodes)));
        }
        match left.children {
            ChildrenLeft::Nothing => {}
            ChildrenLeft::Stats => self.pending.children.push(pid),
            ChildrenLeft::ByPpid => self.pending.child_lists.push(pid),
        }
    }

    /// The read helpers this run started (see [`CmdlineReader::pids`]).
    pub fn helper_pids(&self) -> &[i32] {
        self.cmdlines.pids()
    }

    /// A new sampling round: who is whose child is found again.
    pub fn start_round(&mut self) {
        self.parents = None;
    }

    /// Fill in what the batch's samples lack: command lines, unix sockets
    /// and children's stats. `dirs` holds each sampled pid's directory.
    pub fn finish(&mut self, reader: &mut Reader, dirs: &Dirs, snapshot: &mut Snapshot) {
        if self.pending.is_empty() {
            return;
        }
        let records = Records::of(snapshot);
        self.fill_cmdlines(reader.budget, &records, snapshot);
        self.join_sockets(reader, dirs, &records, snapshot);
        self.fill_children(reader, &records, snapshot);
    }

    /// Read the command lines still pending, all at once through the read
    /// helper (each read under its own deadline).
    fn fill_cmdlines(&mut self, budget: Budget, records: &Records, snapshot: &mut Snapshot) {
        let pending = std::mem::take(&mut self.pending.cmdlines);
        if pending.is_empty() {
            return;
        }
        let mut wanted: Vec<(usize, (i32, Option<u64>))> = Vec::with_capacity(pending.len());
        for pid in pending {
            let Some(at) = records.find(pid) else { continue };
            let Some(sample) = last_sample(snapshot, at).filter(|s| s.presence == Presence::Present) else {
                continue;
            };
            if let Some(reason) = stuck_on_file_server(sample) {
                // Its helper would only join it: stuck, and unkillable.
                sample.cmdline = Fact::Unavailable(reason);
                continue;
            }
            wanted.push((at, (pid, sample.stat.ok().and_then(|s| s.starttime))));
        }
        let targets: Vec<(i32, Option<u64>)> = wanted.iter().map(|(_, t)| *t).collect();
        let results = self.cmdlines.read(&targets, budget.deadline);
        for ((at, _), result) in wanted.iter().zip(results) {
            let fact = match result {
                Ok(bytes) => Fact::Ok(parse::cmdline(&bytes)),
                Err(e) if e.kind() == io::ErrorKind::TimedOut && budget.out_of_time() => {
                    Fact::Unavailable(budget.spent())
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => Fact::Unavailable(Reason::new(
                    ReasonKind::TimedOut,
                    format!(
                        "unreadable for {}: its memory-map lock is probably held",
                        humantime::format_duration(self.read_timeout)
                    ),
                )),
                Err(e) => Fact::Unavailable(reason_for(&e)),
            };
            if let Some(sample) = last_sample(snapshot, *at) {
                sample.cmdline = fact;
            }
        }
    }

    /// Give the samples taken since the last join their sockets, one
    /// namespace at a time. Unix sockets first: one read (or a few
    /// questions) keeping only the sockets of the fds those samples kept,
    /// and full ones (see [`super::net::NetCache::unix_sockets`]), so a
    /// host's whole table is never held. Then TCP, when a socket they hold
    /// is not a unix one: all of each sample's. Then UDP, when a kept
    /// socket is neither.
    fn join_sockets(&mut self, reader: &mut Reader, dirs: &Dirs, records: &Records, snapshot: &mut Snapshot) {
        // The pending samples' (pid, record, sockets), by namespace, in the order sampled.
        let mut namespaces: Vec<Namespace> = Vec::new();
        let mut by_tables: HashMap<*const NetTables, usize> = HashMap::new();
        for (pid, (tables, inodes)) in std::mem::take(&mut self.pending.sockets) {
            let Some(at) = records.find(pid) else { continue };
            let group = *by_tables.entry(Rc::as_ptr(&tables)).or_insert_with(|| {
                namespaces.push((tables, Vec::new()));
                namespaces.len() - 1
            });
            namespaces[group].1.push(((pid, at), inodes));
        }
        for (tables, sockets_of) in namespaces {
            let members: Vec<Member> = sockets_of.iter().map(|(member, _)| *member).collect();
            let kept = |at: usize| {
                snapshot.processes[at]
                    .samples
                    .last()
                    .into_iter()
                    .flat_map(kept_socket_inodes)
            };
            let wanted: HashSet<u64> = members.iter().flat_map(|&(_, at)| kept(at)).collect();
            // A lazily read member's full socketpair is found among every
            // full socket: only with none of those are the wanted enough.
            let lazy = |at: usize| {
                snapshot.processes[at]
                    .samples
                    .last()
                    .is_some_and(|s| s.fd_totals.is_some())
            };
            let only_wanted = !members.iter().any(|&(_, at)| lazy(at));
            let Some(dir) = members.iter().find_map(|(pid, _)| dirs.get(pid)?.as_ref()) else {
                continue;
            };
            // Every socket held, until it is found to be a unix one.
            let mut unknown: HashSet<u64> = sockets_of
                .iter()
                .flat_map(|(_, inodes)| inodes.iter().copied())
                .collect();
            let unix = match reader
                .net
                .unix_sockets(&tables, dir, &wanted, only_wanted, &mut unknown)
            {
                Ok(unix) => unix,
                Err(reason) => {
                    for &(_, at) in &members {
                        if let Some(sample) = last_sample(snapshot, at) {
                            sample.sockets = Fact::Unavailable(reason.clone());
                        }
                    }
                    continue;
                }
            };
            read_full_socketpairs(reader, dirs, &unix, &members, snapshot);
            let tcp = (!unknown.is_empty()).then(|| reader.net.tcp_sockets(&tables, dir));
            if let Some(Ok(tcp)) = &tcp {
                unknown.retain(|&inode| !tcp.contains(inode));
            }
            // UDP only when a kept socket could be one: neither TCP nor unix.
            let udp = wanted
                .iter()
                .any(|inode| unknown.contains(inode))
                .then(|| reader.net.udp_sockets(&tables, dir));
            for ((_, at), inodes) in &sockets_of {
                let Some(sample) = last_sample(snapshot, *at) else {
                    continue;
                };
                let tcp = match &tcp {
                    Some(Ok(tcp)) => tcp.among(inodes),
                    // Its sockets are all unix ones.
                    _ if !inodes.iter().any(|inode| unknown.contains(inode)) => Vec::new(),
                    Some(Err(reason)) => {
                        sample.sockets = Fact::Unavailable(reason.clone());
                        continue;
                    }
                    None => Vec::new(),
                };
                let joined: Vec<UnixSocket> = kept_socket_inodes(sample)
                    .filter_map(|inode| unix.get(inode).cloned())
                    .collect();
                let (udp, udp_unavailable) = match &udp {
                    Some(Ok(udp)) => (
                        kept_socket_inodes(sample)
                            .filter_map(|inode| udp.get(inode).cloned())
                            .collect(),
                        None,
                    ),
                    Some(Err(reason)) => (Vec::new(), Some(reason.clone())),
                    None => (Vec::new(), None),
                };
                if let Fact::Ok(sockets) = &mut sample.sockets {
                    sockets.tcp = tcp;
                    sockets.unix = joined;
                    sockets.udp = udp;
                    sockets.udp_unavailable = udp_unavailable;
                }
            }
        }
    }

    /// Give the children named since the last fill their stats: a child in
    /// the snapshot lends the stat of its own sample (in a scan, every
    /// child), any other is read. Nothing is read twice, and a parent of
    /// thousands holds no second copy of the host's stats while it is sampled.
    fn fill_children(&mut self, reader: &mut Reader, records: &Records, snapshot: &mut Snapshot) {
        let lists = std::mem::take(&mut self.pending.child_lists);
        if !lists.is_empty() {
            let parents = self.parents.get_or_insert_with(|| {
                let sampled = |pid| records.find(pid).is_some();
                Parents::of(snapshot, &sampled, &reader.root, &mut reader.buf)
            });
            for pid in lists {
                let Some(at) = records.find(pid) else { continue };
                let Some(Fact::Ok(children)) = last_sample(snapshot, at).map(|s| &mut s.children) else {
                    continue;
                };
                children.extend(parents.children_of(pid).map(unfilled_child));
                if !children.is_empty() {
                    self.pending.children.push(pid);
                }
            }
        }
        for pid in std::mem::take(&mut self.pending.children) {
            let Some(at) = records.find(pid) else { continue };
            let Some(Fact::Ok(children)) = snapshot.processes[at].samples.last().map(|s| &s.children) else {
                continue;
            };
            let stats: Vec<Fact<Stat>> = children
                .iter()
                .map(|child| {
                    match records
                        .find(child.pid)
                        .and_then(|j| snapshot.processes[j].samples.last())
                    {
                        Some(sample) => sample.stat.clone(),
                        None => reader.relative(child.pid).stat,
                    }
                })
                .collect();
            if let Some(Fact::Ok(children)) = last_sample(snapshot, at).map(|s| &mut s.children) {
                for (child, stat) in children.iter_mut().zip(stats) {
                    child.stat = stat;
                }
            }
        }
    }
}

/// A pid and where its record is in the snapshot (see [`Records`]).
type Member = (i32, usize);

/// One network namespace's tables, and the batch's members in it with the
/// inodes of every socket each holds.
type Namespace = (Rc<NetTables>, Vec<(Member, Vec<u64>)>);

/// Where each pid's record is in the snapshot, sorted by pid: made from the
/// snapshot when a batch ends, for that batch's fill-ins only (records are
/// only ever added, and none while a batch is finished). 8 bytes a record.
pub(super) struct Records(Vec<(i32, u32)>);

impl Records {
    fn of(snapshot: &Snapshot) -> Records {
        let mut positions: Vec<(i32, u32)> = (snapshot.processes.iter().enumerate())
            .map(|(at, r)| (r.pid, at as u32))
            .collect();
        positions.sort_unstable();
        Records(positions)
    }

    fn find(&self, pid: i32) -> Option<usize> {
        let at = self.0.binary_search_by_key(&pid, |&(p, _)| p).ok()?;
        Some(self.0[at].1 as usize)
    }
}

fn last_sample(snapshot: &mut Snapshot, at: usize) -> Option<&mut Sample> {
    snapshot.processes[at].samples.last_mut()
}

/// A lazily read process holding both ends of a full socketpair (a wakeup
/// fd that may be losing signals) has both fds read in depth. `members` are
/// the (pid, record) of the samples joined with `unix`.
fn read_full_socketpairs(
    reader: &mut Reader,
    dirs: &Dirs,
    unix: &UnixSockets,
    members: &[Member],
    snapshot: &mut Snapshot,
) {
    let mut full = unix.full().filter_map(|s| Some((s.inode, s.peer_inode?))).peekable();
    if full.peek().is_none() {
        return; // the usual case: nothing to look up
    }
    let lazy: HashMap<i32, usize> = members
        .iter()
        .filter(|&&(_, at)| {
            snapshot.processes[at]
                .samples
                .last()
                .is_some_and(|s| s.fd_totals.is_some())
        })
        .copied()
        .collect();
    if lazy.is_empty() {
        return;
    }
    for (inode, peer) in full {
        let peer_holders = reader.ends.holders(peer);
        for (pid, fd) in reader.ends.holders(inode) {
            let Some(&at) = lazy.get(&pid) else { continue };
            let Some(&(_, peer_fd)) = peer_holders.iter().find(|&&(p, _)| p == pid) else {
                continue;
            };
            let Some(Some(dir)) = dirs.get(&pid) else { continue };
            let Some(Fact::Ok(fds)) = last_sample(snapshot, at).map(|s| &mut s.fds) else {
                continue;
            };
            for (fd, inode) in [(fd, inode), (peer_fd, peer)] {
                let Err(insert_at) = fds.binary_search_by_key(&fd, |f| f.fd) else {
                    continue;
                };
                if let Some(info) = read_fdinfo(dir, &mut reader.buf, fd) {
                    let target = TargetString::new(format!("socket:[{inode}]"));
                    fds.insert(
                        insert_at,
                        Fd {
                            fd,
                            target,
                            info,
                            pipe: None,
                        },
                    );
                }
            }
        }
    }
}

/// The socket inodes among the fds a sample kept.
fn kept_socket_inodes(sample: &Sample) -> impl Iterator<Item = u64> + '_ {
    let fds = sample.fds.ok().map(Vec::as_slice).unwrap_or_default();
    fds.iter()
        .filter_map(|f| crate::linux::fd::link_inode(f.target.as_bytes(), "socket"))
}

/// Who is whose child, by every process's ppid (for a large selection, and
/// on kernels without `task/TID/children`): (ppid, pid) pairs, sorted, 8
/// bytes per process of the host.
pub(super) struct Parents {
    children: Vec<(i32, i32)>,
}

impl Parents {
    /// From the snapshot's samples, and the stat of every process outside
    /// it (in a scan, a handful: whystuck's own, and any born since).
    fn of(snapshot: &Snapshot, sampled: &dyn Fn(i32) -> bool, root: &ProcDir, buf: &mut Vec<u8>) -> Parents {
        let mut children: Vec<(i32, i32)> = snapshot
            .processes
            .iter()
            .filter_map(|r| Some((r.samples.last()?.stat.ok()?.ppid?, r.pid)))
            .collect();
        let mut path = String::new();
        for pid in root.numeric_entries(".").unwrap_or_default() {
            if sampled(pid) {
                continue;
            }
            path.clear();
            let _ = write!(path, "{pid}/stat");
            if root.read(&path, buf).is_ok() {
                if let Some(ppid) = parse::stat(buf).ok().and_then(|stat| stat.ppid) {
                    children.push((ppid, pid));
                }
            }
        }
        children.sort_unstable();
        Parents { children }
    }

    fn children_of(&self, parent: i32) -> impl Iterator<Item = i32> + '_ {
        let start = self.children.partition_point(|&(ppid, _)| ppid < parent);
        self.children[start..]
            .iter()
            .take_while(move |&&(ppid, _)| ppid == parent)
            .map(|&(_, child)| child)
    }
}
