//! collect: the only code that touches /proc, netlink or a target's fds.
//!
//! It turns pids into a [`Snapshot`] of raw facts and judges nothing. It is
//! read-only by construction: files are opened read-only and non-blocking
//! and closed at once, fd links are read with readlink and never followed,
//! and the one open of a target's fd is the pipe probe in [`probe_pipe`].

mod dir;
mod ends;
pub mod helper;
mod net;
pub mod parse;
pub mod pulse;
mod reason;
pub mod select;
pub mod sockdiag;
mod visibility;
use reason::{absent_reason, is_gone, is_vanished, reason_for, stuck_on_file_server, Budget};
use visibility::HidePid;

use crate::snapshot::*;
use crate::text::TargetString;
use dir::ProcDir;
use net::{NetCache, NetTables};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct Options {
    /// Where /proc is (a fake tree, for tests), the read helper, and the
    /// deadline of each read that can block (cmdline, netlink).
    pub helper: helper::HelperConfig,
    /// Time between the two samples; zero takes one sample.
    pub interval: Duration,
    /// The whole run's budget: past it, nothing more is read and what was
    /// not is reported as timed out.
    pub timeout: Duration,
    /// Processes with up to this many fds have every fd read in depth
    /// (fdinfo, pipe fill); past it, only the fds that matter. [`LAZY_FDS`]
    /// by default, `usize::MAX` for `--deep`, 0 for a large selection.
    pub deep_fds: usize,
    /// Read each thread's context switches (progress between samples).
    pub thread_status: bool,
    /// A large selection (`--all`): children are found by the ppids of the
    /// samples (see [`Parents`]) instead of each thread's `children` file,
    /// and a process's self-pipes are probed only once.
    pub many: bool,
}

/// A process with more fds than this has its fds read in depth (fdinfo,
/// pipe fill) only where it matters: the fds its blocked threads name, its
/// epoll fds and what they watch, and pipes and socketpairs it holds both
/// ends of. The rest are listed by their links, their details marked "not
/// collected".
pub const LAZY_FDS: usize = 256;

/// A selection of more processes than this is read lazily (see
/// [`Options::many`]): every process's fds in depth only where it matters.
pub const MANY_PROCESSES: usize = 32;

/// What to sample.
pub struct Request<'a> {
    pub pids: &'a [i32],
    /// Also every descendant of the pids.
    pub tree: bool,
    /// Given the facts so far, the further pids a diagnosis will need (the
    /// child a target waits for, the process at the other end of the pipe
    /// it is blocked on). They are sampled as [`Role::Related`].
    pub related: &'a dyn Fn(&Snapshot) -> Vec<i32>,
}

/// Expansion to related processes stops after this many of them: a wait-for
/// chain longer than that is reported as far as it was followed.
const MAX_RELATED: usize = 64;

/// Sample every process (twice, `interval` apart, unless the interval is
/// zero), then find the holders of the other ends of their pipes and sockets.
pub fn collect(request: &Request, options: &Options) -> anyhow::Result<Snapshot> {
    let proc_root = &options.helper.proc_root;
    let root = ProcDir::open(proc_root).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", proc_root.display()))?;
    let live = proc_root == std::path::Path::new("/proc");
    let start = Instant::now();
    let mut collector = Collector {
        budget: Budget::new(start, options.timeout),
        // Started now, when there is anything to read: its start overlaps
        // the first round's reads.
        cmdlines: helper::CmdlineReader::new(options.helper.clone(), !request.pids.is_empty()),
        deep_fds: options.deep_fds,
        thread_status: options.thread_status,
        many: options.many,
        sampled: HashMap::with_capacity(request.pids.len()),
        pending_cmdlines: Vec::new(),
        pending_sockets: Vec::new(),
        pending_children: Vec::new(),
        pending_child_lists: Vec::new(),
        parents: None,
        ends: ends::EndIndex::default(),
        page_size: 4096,
        net: NetCache::new(live, options.helper.timeout, start + options.timeout),
        read_timeout: options.helper.timeout,
        buf: Vec::with_capacity(4096),
        root,
        dirs: Vec::with_capacity(request.pids.len()),
        hidepid: None,
    };
    collector.hidepid = visibility::restriction(&collector.root, proc_root);
    let host = collector.host();
    collector.page_size = host.page_size;
    let mut snapshot = Snapshot {
        format: SNAPSHOT_FORMAT.to_string(),
        schema_version: SNAPSHOT_SCHEMA_VERSION,
        host,
        tree: request.tree,
        // A scan holds one record per process: sized for the selection.
        processes: Vec::with_capacity(request.pids.len()),
        holders: Vec::new(),
        unsearchable: Vec::new(),
        visibility: None,
    };
    for &pid in request.pids {
        collector.add(&mut snapshot, pid, Role::Target);
    }
    collector.finish_batch(&mut snapshot);
    if request.tree {
        // A generation at a time: a batch's children are known when it ends.
        let mut generation: Vec<i32> = request.pids.to_vec();
        while !generation.is_empty() {
            let mut next = Vec::new();
            for pid in generation {
                for child in collector.children_of(&snapshot, pid) {
                    if collector.add(&mut snapshot, child, Role::Descendant) {
                        next.push(child);
                    }
                }
            }
            collector.finish_batch(&mut snapshot);
            generation = next;
        }
    }
    let mut holders = HolderSearch::default();
    holders.update(&mut collector, &mut snapshot);
    let mut related = 0;
    loop {
        let wanted: Vec<i32> = (request.related)(&snapshot);
        let mut added = false;
        for pid in wanted {
            if related < MAX_RELATED && collector.add(&mut snapshot, pid, Role::Related) {
                related += 1;
                added = true;
            }
        }
        if !added {
            break;
        }
        collector.finish_batch(&mut snapshot);
        holders.update(&mut collector, &mut snapshot);
    }
    if !options.interval.is_zero() {
        // The interval runs from the first sample: time spent collecting
        // counts towards it. It is cut short only where the run's budget
        // would not leave the second round as long as the first took (the
        // report gives the interval measured).
        let first_round = collector.budget.start.elapsed();
        let until_budget = options.timeout.saturating_sub(first_round * 2);
        std::thread::sleep(options.interval.saturating_sub(first_round).min(until_budget));
        collector.net.start_round();
        collector.parents = None;
        // Past the budget a process gets a skipped sample (and is judged by
        // its first), so its report says why it has no rates.
        for i in 0..snapshot.processes.len() {
            let sample = collector.sample_again(i, snapshot.processes[i].pid, false);
            snapshot.processes[i].samples.push(sample);
        }
        collector.finish_batch(&mut snapshot);
    }
    Ok(snapshot)
}

/// Finds who holds the other end of every pipe and socket the sampled
/// processes hold: one pass over every process's fd links (readlink only,
/// never followed), made once per run, then lookups.
#[derive(Default)]
struct HolderSearch {
    /// Whether the processes outside the snapshot have had their fd links read.
    scanned: bool,
    /// Inodes whose holders are already in the snapshot.
    done: std::collections::HashSet<u64>,
}

impl HolderSearch {
    fn update(&mut self, collector: &mut Collector, snapshot: &mut Snapshot) {
        let wanted: BTreeSet<u64> = snapshot
            .processes
            .iter()
            .filter_map(|r| r.samples.last())
            .flat_map(end_inodes)
            .filter(|inode| !self.done.contains(inode))
            .collect();
        if wanted.is_empty() {
            return;
        }
        if !self.scanned {
            collector.index_unsampled(snapshot);
            self.scanned = true;
        }
        // Sampled processes answer from their samples; others are read.
        let mut comms: HashMap<i32, Option<TargetString>> = HashMap::new();
        let mut sampled_flags: HashMap<(i32, i32), Option<u32>> = HashMap::new();
        for record in &snapshot.processes {
            let Some(sample) = record.samples.last() else { continue };
            comms.insert(record.pid, sample.stat.ok().map(|s| s.comm.clone()));
            for fd in sample.fds.ok().into_iter().flatten() {
                sampled_flags.insert((record.pid, fd.fd), fd.info.ok().and_then(|i| i.flags));
            }
        }
        for inode in wanted {
            self.done.insert(inode);
            for (pid, fd) in collector.ends.holders(inode) {
                let flags = match sampled_flags.get(&(pid, fd)) {
                    Some(flags) => *flags,
                    None => collector.fd_flags(pid, fd),
                };
                let comm = comms
                    .entry(pid)
                    .or_insert_with(|| collector.relative(pid).stat.ok().map(|s| s.comm.clone()));
                snapshot.holders.push(Holder {
                    inode,
                    pid,
                    fd,
                    flags,
                    comm: comm.clone(),
                });
            }
        }
    }
}

/// The pipe and socket inodes a sample holds, and the inodes of the other
/// ends of its connected sockets.
fn end_inodes(sample: &Sample) -> Vec<u64> {
    let mut inodes: Vec<u64> = sample
        .fds
        .ok()
        .into_iter()
        .flatten()
        .filter(|fd| fd.info.ok().is_some()) // not the fds skipped in a lazy read
        .filter_map(|fd| {
            let target = fd.target.as_bytes();
            crate::linux::fd::link_inode(target, "pipe").or_else(|| crate::linux::fd::link_inode(target, "socket"))
        })
        .collect();
    if let Some(sockets) = sample.sockets.ok() {
        inodes.extend(sockets.unix.iter().filter_map(|u| u.peer_inode));
        inodes.extend(sockets.tcp.iter().filter_map(|t| t.peer_inode));
    }
    inodes
}

struct Collector {
    root: ProcDir,
    /// When the run started, and when its budget ends.
    budget: Budget,
    /// Command lines are read through it, in an abandonable process.
    cmdlines: helper::CmdlineReader,
    deep_fds: usize,
    thread_status: bool,
    many: bool,
    /// The pids in the snapshot, and their records' indices.
    sampled: HashMap<i32, usize>,
    /// Records whose last sample still needs its cmdline (read in batches).
    pending_cmdlines: Vec<usize>,
    /// Records whose last sample still needs its unix sockets (joined in
    /// batches, see [`Collector::join_sockets`]), with their namespace's tables.
    pending_sockets: Vec<(usize, std::rc::Rc<NetTables>)>,
    /// Records whose last sample names children whose stat is still to be
    /// filled in (see [`Collector::fill_children`]).
    pending_children: Vec<usize>,
    /// Records whose last sample's children are found by ppid when the
    /// batch ends (see [`Parents`]).
    pending_child_lists: Vec<usize>,
    /// Who is whose child, made once per round when a large selection (or
    /// a kernel without `task/TID/children`) needs it.
    parents: Option<Parents>,
    /// Who holds each pipe and socket fd seen, for finding the other ends.
    ends: ends::EndIndex,
    page_size: u64,
    /// Each sampled pid's directory, opened once and held for every round,
    /// in the order of `Snapshot::processes`.
    dirs: Vec<Result<ProcDir, Reason>>,
    /// The proc mount's `hidepid=` as it applies to this run, when known.
    hidepid: Option<HidePid>,
    net: NetCache,
    read_timeout: Duration,
    /// One reused read buffer.
    buf: Vec<u8>,
}

/// The process `pid` is a thread of, when it is not its own (/proc/TID
/// exists for every thread).
fn thread_of(status: &Fact<Status>, pid: i32) -> Option<i32> {
    status.ok().and_then(|s| s.tgid).filter(|&t| t != pid && t > 0)
}

impl Sample {
    fn absent(elapsed_ms: u64, presence: Presence, reason: Reason) -> Sample {
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
        }
    }
}

/// Read and parse one file under `dir` into the reused `buf`; ESRCH marks the
/// process gone.
fn read_fact<T>(
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
fn read_explained<T>(
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

impl Collector {
    /// Open `pid`'s directory and take its first sample, unless it is
    /// already in the snapshot. Whether it was added.
    fn add(&mut self, snapshot: &mut Snapshot, pid: i32, role: Role) -> bool {
        if self.sampled.contains_key(&pid) {
            return false;
        }
        // Past the budget the sample is skipped: not even its directory is opened.
        let dir = match self.out_of_time() {
            true => Err(self.budget_spent()),
            false => self
                .root
                .open_dir(&pid.to_string())
                .map_err(|e| absent_reason(pid, &e, self.hidepid)),
        };
        self.dirs.push(dir);
        let sample = self.sample_again(self.dirs.len() - 1, pid, true);
        // /proc/TID exists for every thread: a thread id stands for its process.
        if let Some(tgid) = thread_of(&sample.status, pid) {
            self.dirs.pop();
            let popped = self.dirs.len();
            self.pending_sockets.retain(|&(index, _)| index != popped);
            self.pending_children.retain(|&index| index != popped);
            self.pending_child_lists.retain(|&index| index != popped);
            let added = self.add(snapshot, tgid, role);
            if let Some(record) = snapshot.processes.iter_mut().find(|r| r.pid == tgid) {
                if role == Role::Target {
                    record.role = Role::Target;
                    record.named_thread = Some(pid);
                }
            }
            return added;
        }
        self.sampled.insert(pid, snapshot.processes.len());
        self.pending_cmdlines.push(snapshot.processes.len());
        snapshot.processes.push(ProcessRecord {
            pid,
            role,
            named_thread: None,
            samples: vec![sample],
        });
        true
    }

    /// Read the command lines still pending, all at once through the read
    /// helper (each read under its own deadline).
    fn fill_cmdlines(&mut self, snapshot: &mut Snapshot) {
        let pending: Vec<usize> = std::mem::take(&mut self.pending_cmdlines);
        if pending.is_empty() {
            return;
        }
        let mut wanted: Vec<(usize, (i32, Option<u64>))> = Vec::with_capacity(pending.len());
        for i in pending {
            let record = &mut snapshot.processes[i];
            let pid = record.pid;
            let Some(sample) = record.samples.last_mut().filter(|s| s.presence == Presence::Present) else {
                continue;
            };
            if let Some(reason) = stuck_on_file_server(sample) {
                // Its helper would only join it: stuck, and unkillable.
                sample.cmdline = Fact::Unavailable(reason);
                continue;
            }
            wanted.push((i, (pid, sample.stat.ok().and_then(|s| s.starttime))));
        }
        let targets: Vec<(i32, Option<u64>)> = wanted.iter().map(|(_, t)| *t).collect();
        let results = self.cmdlines.read(&targets, self.budget.deadline);
        for ((i, _), result) in wanted.iter().zip(results) {
            let fact = match result {
                Ok(bytes) => Fact::Ok(parse::cmdline(&bytes)),
                Err(e) if e.kind() == io::ErrorKind::TimedOut && self.out_of_time() => {
                    Fact::Unavailable(self.budget_spent())
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
            if let Some(sample) = snapshot.processes[*i].samples.last_mut() {
                sample.cmdline = fact;
            }
        }
    }

    /// A fresh sample of the `index`th process, through its held directory.
    /// (On a first sample, a thread id's stops at its status: see [`Collector::sample`].)
    fn sample_again(&mut self, index: usize, pid: i32, first: bool) -> Sample {
        let elapsed_ms = self.budget.start.elapsed().as_millis() as u64;
        if self.out_of_time() {
            return Sample::absent(elapsed_ms, Presence::Skipped, self.budget_spent());
        }
        let dirs = std::mem::take(&mut self.dirs);
        let sample = match &dirs[index] {
            Ok(dir) => self.sample(index, pid, dir, elapsed_ms, first),
            Err(reason) => Sample::absent(elapsed_ms, Presence::NotFound, reason.clone()),
        };
        self.dirs = dirs;
        sample
    }

    fn out_of_time(&self) -> bool {
        self.budget.out_of_time()
    }

    fn budget_spent(&self) -> Reason {
        self.budget.spent()
    }

    /// Remember every pipe and socket fd of a sampled process (once per
    /// process), so even a lazily read process's fds can be found as the
    /// other end of someone's pipe.
    fn index_links(&mut self, pid: i32, links: &[(i32, Vec<u8>)]) {
        if !self.ends.first_time(pid) {
            return;
        }
        for (fd, target) in links {
            if let Some(inode) =
                crate::linux::fd::link_inode(target, "pipe").or_else(|| crate::linux::fd::link_inode(target, "socket"))
            {
                self.ends.add(inode, pid, *fd);
            }
        }
    }

    /// Read the fd links of every process not in the snapshot into the
    /// index. A process whose fds cannot be listed is recorded as
    /// unsearchable, never skipped silently.
    fn index_unsampled(&mut self, snapshot: &mut Snapshot) {
        let mut path = String::new();
        for pid in self.root.numeric_entries(".").unwrap_or_default() {
            if self.sampled.contains_key(&pid) {
                continue;
            }
            if self.out_of_time() {
                let comm = self.relative(pid).stat.ok().map(|s| s.comm.clone());
                snapshot.unsearchable.push(Unsearchable {
                    pid,
                    comm,
                    reason: self.budget_spent(),
                });
                continue;
            }
            path.clear();
            let _ = write!(path, "{pid}/fd");
            let fds = match self.root.numeric_entries(&path) {
                Ok(fds) => fds,
                Err(e) if is_vanished(&e) => continue,
                Err(e) => {
                    let comm = self.relative(pid).stat.ok().map(|s| s.comm.clone());
                    snapshot.unsearchable.push(Unsearchable {
                        pid,
                        comm,
                        reason: reason_for(&e),
                    });
                    continue;
                }
            };
            let mut links = Vec::with_capacity(fds.len());
            for fd in fds {
                path.clear();
                let _ = write!(path, "{pid}/fd/{fd}");
                if let Ok(target) = self.root.readlink(&path) {
                    links.push((fd, target));
                }
            }
            self.index_links(pid, &links);
        }
    }

    /// The open flags of another process's fd, when readable.
    fn fd_flags(&mut self, pid: i32, fd: i32) -> Option<u32> {
        let info = read_fact(
            &self.root,
            &mut self.buf,
            &format!("{pid}/fdinfo/{fd}"),
            &mut false,
            |b| Ok(parse::fdinfo(b)),
        );
        info.ok().and_then(|i| i.flags)
    }

    fn host(&mut self) -> Host {
        let kernel_release = match self.root.read("sys/kernel/osrelease", &mut self.buf) {
            Ok(()) => Fact::Ok(String::from_utf8_lossy(&self.buf).trim().to_string()),
            Err(e) => Fact::Unavailable(reason_for(&e)),
        };
        let hostname = self
            .root
            .read("sys/kernel/hostname", &mut self.buf)
            .ok()
            .map(|()| String::from_utf8_lossy(&self.buf).trim().to_string());
        let sysconf = |var| nix::unistd::sysconf(var).ok().flatten().map(|v| v as u64);
        Host {
            hostname,
            kernel_release,
            arch: std::env::consts::ARCH.to_string(),
            clock_ticks_per_second: sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap_or(100),
            page_size: sysconf(nix::unistd::SysconfVar::PAGE_SIZE).unwrap_or(4096),
            captured_at_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            hidepid: self
                .hidepid
                .filter(|&h| h != HidePid::Off)
                .map(|h| h.name().to_string()),
            full_view: visibility::full_view(),
        }
    }

    /// The `index`th process's sample (its unix sockets joined later). The
    /// first sample of a thread id stops at its status, which names its
    /// process: nothing of it is kept, and its fds are not indexed as a
    /// holder of their own.
    fn sample(&mut self, index: usize, pid: i32, dir: &ProcDir, elapsed_ms: u64, first: bool) -> Sample {
        let mut gone = false;
        let stat = read_fact(dir, &mut self.buf, "stat", &mut gone, parse::stat);
        if gone {
            return Sample::absent(
                elapsed_ms,
                Presence::Exited,
                Reason::new(ReasonKind::Gone, "the process exited"),
            );
        }
        let status = read_fact(dir, &mut self.buf, "status", &mut gone, |b| Ok(parse::status(b)));
        if first && thread_of(&status, pid).is_some() {
            let mut sample = Sample::absent(
                elapsed_ms,
                Presence::Present,
                Reason::new(ReasonKind::NotCollected, "a thread: its process is sampled"),
            );
            sample.status = status;
            return sample;
        }
        // Read later, in a batch: see `fill_cmdlines`.
        // Read in batches after the first round (see fill_cmdlines), and
        // only then: a read that hangs on a held memory-map lock is paid once.
        let cmdline = Fact::Unavailable(Reason::new(
            ReasonKind::NotCollected,
            "read once, with the first sample",
        ));
        let io = read_fact(dir, &mut self.buf, "io", &mut gone, |b| Ok(parse::io(b)));
        let threads = self.threads(dir, &mut gone);
        let links = self.fd_links(dir, &mut gone);
        let sockets = match &links {
            Fact::Ok(links) => self.tcp_sockets(index, dir, pid, links),
            Fact::Unavailable(reason) => Fact::Unavailable(reason.clone()),
        };
        if let Fact::Ok(links) = &links {
            self.index_links(pid, links);
        }
        let (fds, fd_totals) = match links {
            Fact::Ok(links) => {
                let (fds, totals) = self.fd_details(dir, links, &threads);
                (Fact::Ok(fds), totals)
            }
            Fact::Unavailable(reason) => (Fact::Unavailable(reason), None),
        };
        let children = self.children(index, pid, dir, &threads, &mut gone);
        // Only a zombie's verdict names its parent (the one not reaping it).
        let zombie = stat.ok().is_some_and(|s| matches!(s.state, 'Z' | 'X'));
        let ppid = stat.ok().and_then(|s| s.ppid).filter(|&p| p > 0 && zombie);
        let parent = ppid.map(|p| Box::new(self.relative(p)));
        let tracer_pid = status.ok().and_then(|s| s.tracer_pid).filter(|&p| p > 0);
        let tracer = tracer_pid.map(|p| Box::new(self.relative(p)));
        Sample {
            elapsed_ms,
            presence: if gone { Presence::Exited } else { Presence::Present },
            stat,
            status,
            cmdline,
            io,
            threads,
            fds,
            fd_totals,
            sockets,
            children,
            parent,
            tracer,
        }
    }

    fn threads(&mut self, dir: &ProcDir, gone: &mut bool) -> Fact<Vec<Thread>> {
        let tids = match dir.numeric_entries("task") {
            Ok(tids) => tids,
            Err(e) => {
                *gone |= is_gone(&e);
                return Fact::Unavailable(reason_for(&e));
            }
        };
        let mut threads = Vec::with_capacity(tids.len());
        for tid in tids {
            let mut thread_gone = false;
            let stat = read_fact(
                dir,
                &mut self.buf,
                &format!("task/{tid}/stat"),
                &mut thread_gone,
                parse::stat,
            );
            if matches!(&stat, Fact::Unavailable(r) if r.kind == ReasonKind::NotSupported) || thread_gone {
                continue; // the thread exited after the listing
            }
            // Context switches only matter between two samples.
            let status = if self.thread_status {
                read_fact(
                    dir,
                    &mut self.buf,
                    &format!("task/{tid}/status"),
                    &mut thread_gone,
                    |b| {
                        let status = parse::status(b);
                        Ok(ContextSwitches {
                            voluntary_ctxt_switches: status.voluntary_ctxt_switches,
                            nonvoluntary_ctxt_switches: status.nonvoluntary_ctxt_switches,
                        })
                    },
                )
            } else {
                Fact::Unavailable(Reason::new(
                    ReasonKind::NotCollected,
                    "one sample: context switches not read",
                ))
            };
            let syscall = read_fact(
                dir,
                &mut self.buf,
                &format!("task/{tid}/syscall"),
                &mut thread_gone,
                parse::syscall,
            );
            let wchan = read_fact(
                dir,
                &mut self.buf,
                &format!("task/{tid}/wchan"),
                &mut thread_gone,
                |b| Ok(String::from_utf8_lossy(b).trim().to_string()),
            );
            threads.push(Thread {
                tid,
                stat,
                status,
                wchan: normalise_wchan(wchan, &syscall),
                syscall,
            });
        }
        Fact::Ok(threads)
    }

    /// Every fd and its link text (readlink only: the target is never
    /// followed).
    fn fd_links(&mut self, dir: &ProcDir, gone: &mut bool) -> Fact<Vec<(i32, Vec<u8>)>> {
        let numbers = match dir.numeric_entries("fd") {
            Ok(numbers) => numbers,
            Err(e) => {
                *gone |= is_gone(&e);
                return Fact::Unavailable(reason_for(&e));
            }
        };
        let mut links = Vec::with_capacity(numbers.len());
        let mut path = String::new();
        for fd in numbers {
            path.clear();
            let _ = write!(path, "fd/{fd}");
            match dir.readlink(&path) {
                Ok(target) => links.push((fd, target)),
                Err(e) if is_vanished(&e) => continue, // closed after the listing
                Err(e) => return Fact::Unavailable(reason_for(&e)),
            }
        }
        Fact::Ok(links)
    }

    /// fdinfo and pipe fill: for every fd, or, past [`LAZY_FDS`], for the
    /// ones that matter (full socketpairs are added when sockets are joined).
    fn fd_details(
        &mut self,
        dir: &ProcDir,
        links: Vec<(i32, Vec<u8>)>,
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
            let page_size = self.page_size;
            // One of a large selection: its first self-pipe only.
            let max_probes = if self.many { 1 } else { MAX_SELF_PIPE_PROBES };
            let full = full_self_pipes(&links, max_probes, |fd, inode| {
                matches!(probe(fd, inode), Fact::Ok(f) if f.capacity_bytes.saturating_sub(f.buffered_bytes) < page_size)
            });
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
        let mut fds = Vec::with_capacity(deep.as_ref().map_or(links.len(), |w| w.len()));
        let mut epoll_targets: BTreeSet<i32> = BTreeSet::new();
        for (fd, target) in links {
            let pipe_inode = crate::linux::fd::link_inode(&target, "pipe");
            let wanted = deep
                .as_ref()
                .is_none_or(|w| w.contains(&fd) || epoll_targets.contains(&fd));
            if !wanted {
                continue; // counted in the totals only
            }
            let Some(info) = read_fdinfo(dir, &mut self.buf, fd) else {
                continue; // closed after the listing
            };
            if let Fact::Ok(info) = &info {
                epoll_targets.extend(info.epoll_targets.iter().map(|t| t.fd));
            }
            let pipe = pipe_inode.map(|inode| probe(fd, inode));
            fds.push(Fd {
                fd,
                target: TargetString::new(target),
                info,
                pipe,
            });
        }
        (fds, totals)
    }

    /// The process's TCP sockets (all of them: connections are counted);
    /// its unix sockets are joined with the rest of its batch, for the fds it
    /// kept.
    fn tcp_sockets(&mut self, index: usize, dir: &ProcDir, pid: i32, links: &[(i32, Vec<u8>)]) -> Fact<Sockets> {
        let inodes: Vec<u64> = links
            .iter()
            .filter_map(|(_, target)| crate::linux::fd::link_inode(target, "socket"))
            .collect();
        if inodes.is_empty() {
            return Fact::Ok(Sockets::default());
        }
        match self.net.tables_for(dir, pid) {
            Ok(tables) => {
                let sockets = Sockets {
                    source: tables.source.into(),
                    tcp: tables.tcp(&inodes),
                    unix: Vec::new(),
                };
                self.pending_sockets.push((index, tables));
                Fact::Ok(sockets)
            }
            Err(reason) => Fact::Unavailable(reason),
        }
    }

    /// What a batch of samples still lacks: command lines (first round
    /// only), unix sockets and children's stats.
    fn finish_batch(&mut self, snapshot: &mut Snapshot) {
        self.fill_cmdlines(snapshot);
        self.join_sockets(snapshot);
        self.fill_children(snapshot);
    }

    /// Give the samples taken since the last join their unix sockets: one
    /// read per network namespace, keeping only the sockets of the fds those
    /// samples kept, and full ones (see [`NetCache::unix_sockets`]), so a
    /// host's whole table is never held.
    fn join_sockets(&mut self, snapshot: &mut Snapshot) {
        let mut namespaces: HashMap<*const NetTables, (std::rc::Rc<NetTables>, Vec<usize>)> = HashMap::new();
        for (index, tables) in std::mem::take(&mut self.pending_sockets) {
            let entry = namespaces
                .entry(std::rc::Rc::as_ptr(&tables))
                .or_insert((tables, Vec::new()));
            entry.1.push(index);
        }
        for (tables, records) in namespaces.into_values() {
            let wanted: HashSet<u64> = records
                .iter()
                .filter_map(|&i| snapshot.processes[i].samples.last())
                .flat_map(kept_socket_inodes)
                .collect();
            let Some(dir) = records.iter().find_map(|&i| self.dirs[i].as_ref().ok()) else {
                continue;
            };
            let unix = match self.net.unix_sockets(&tables, dir, &wanted) {
                Ok(unix) => unix,
                Err(reason) => {
                    for &i in &records {
                        if let Some(sample) = snapshot.processes[i].samples.last_mut() {
                            sample.sockets = Fact::Unavailable(reason.clone());
                        }
                    }
                    continue;
                }
            };
            self.read_full_socketpairs(&unix, &records, snapshot);
            for &i in &records {
                let Some(sample) = snapshot.processes[i].samples.last_mut() else {
                    continue;
                };
                let joined: Vec<UnixSocket> = kept_socket_inodes(sample)
                    .filter_map(|inode| unix.get(inode).cloned())
                    .collect();
                if let Fact::Ok(sockets) = &mut sample.sockets {
                    sockets.unix = joined;
                }
            }
        }
    }

    /// A lazily read process holding both ends of a full socketpair (a
    /// wakeup fd that may be losing signals) has both fds read in depth.
    fn read_full_socketpairs(&mut self, unix: &net::UnixSockets, records: &[usize], snapshot: &mut Snapshot) {
        let mut full = unix.full().filter_map(|s| Some((s.inode, s.peer_inode?))).peekable();
        if full.peek().is_none() {
            return; // the usual case: nothing to look up
        }
        let lazy: HashMap<i32, usize> = records
            .iter()
            .filter(|&&i| {
                snapshot.processes[i]
                    .samples
                    .last()
                    .is_some_and(|s| s.fd_totals.is_some())
            })
            .map(|&i| (snapshot.processes[i].pid, i))
            .collect();
        if lazy.is_empty() {
            return;
        }
        for (inode, peer) in full {
            let peer_holders = self.ends.holders(peer);
            for (pid, fd) in self.ends.holders(inode) {
                let Some(&i) = lazy.get(&pid) else { continue };
                let Some(&(_, peer_fd)) = peer_holders.iter().find(|&&(p, _)| p == pid) else {
                    continue;
                };
                let Ok(dir) = &self.dirs[i] else { continue };
                let Some(Fact::Ok(fds)) = snapshot.processes[i].samples.last_mut().map(|s| &mut s.fds) else {
                    continue;
                };
                for (fd, inode) in [(fd, inode), (peer_fd, peer)] {
                    let Err(at) = fds.binary_search_by_key(&fd, |f| f.fd) else {
                        continue;
                    };
                    if let Some(info) = read_fdinfo(dir, &mut self.buf, fd) {
                        let target = TargetString::new(format!("socket:[{inode}]"));
                        fds.insert(
                            at,
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

    /// Children from every thread's `children` file; for a large selection,
    /// or on kernels without the file, from the ppid of every process. Their
    /// stats are filled in when the batch ends ([`Collector::fill_children`]).
    fn children(
        &mut self,
        index: usize,
        pid: i32,
        dir: &ProcDir,
        threads: &Fact<Vec<Thread>>,
        gone: &mut bool,
    ) -> Fact<Vec<Relative>> {
        let mut pids = BTreeSet::new();
        let mut supported = false;
        if !self.many {
            let tids: Vec<i32> = threads
                .ok()
                .map(|t| t.iter().map(|t| t.tid).collect())
                .unwrap_or_else(|| vec![pid]);
            for tid in tids {
                match dir.read(&format!("task/{tid}/children"), &mut self.buf) {
                    Ok(()) => {
                        supported = true;
                        pids.extend(parse::pids(&self.buf));
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
            // Found by ppid when the batch ends.
            self.pending_child_lists.push(index);
        } else if !pids.is_empty() {
            self.pending_children.push(index);
        }
        Fact::Ok(pids.into_iter().map(unfilled_child).collect())
    }

    /// Give the children named since the last fill their stats: a child in
    /// the snapshot lends the stat of its own sample (in a scan, every
    /// child), any other is read. Nothing is read twice, and a parent of
    /// thousands holds no second copy of the host's stats while it is sampled.
    fn fill_children(&mut self, snapshot: &mut Snapshot) {
        let lists = std::mem::take(&mut self.pending_child_lists);
        if !lists.is_empty() {
            let (root, buf, sampled) = (&self.root, &mut self.buf, &self.sampled);
            let parents = self
                .parents
                .get_or_insert_with(|| Parents::of(snapshot, sampled, root, buf));
            for i in lists {
                let pid = snapshot.processes[i].pid;
                let Some(Fact::Ok(children)) = snapshot.processes[i].samples.last_mut().map(|s| &mut s.children) else {
                    continue;
                };
                children.extend(parents.children_of(pid).map(unfilled_child));
                if !children.is_empty() {
                    self.pending_children.push(i);
                }
            }
        }
        for i in std::mem::take(&mut self.pending_children) {
            let Some(Fact::Ok(children)) = snapshot.processes[i].samples.last().map(|s| &s.children) else {
                continue;
            };
            let pids: Vec<i32> = children.iter().map(|c| c.pid).collect();
            let stats: Vec<Fact<Stat>> = pids
                .into_iter()
                .map(|pid| {
                    match self
                        .sampled
                        .get(&pid)
                        .and_then(|&j| snapshot.processes[j].samples.last())
                    {
                        Some(sample) => sample.stat.clone(),
                        None => self.relative(pid).stat,
                    }
                })
                .collect();
            if let Some(Fact::Ok(children)) = snapshot.processes[i].samples.last_mut().map(|s| &mut s.children) {
                for (child, stat) in children.iter_mut().zip(stats) {
                    child.stat = stat;
                }
            }
        }
    }

    /// The children the last sample of `pid` names.
    fn children_of(&self, snapshot: &Snapshot, pid: i32) -> Vec<i32> {
        let record = self.sampled.get(&pid).map(|&i| &snapshot.processes[i]);
        let last = record.and_then(|r| r.samples.last());
        last.and_then(|s| s.children.ok())
            .map(|c| c.iter().map(|c| c.pid).collect())
            .unwrap_or_default()
    }

    /// Another process named in a report, with its stat.
    fn relative(&mut self, pid: i32) -> Relative {
        // Missing here is gone, or hidden by hidepid: never "not provided".
        let stat = read_explained(&self.root, &mut self.buf, &format!("{pid}/stat"), parse::stat, |e| {
            absent_reason(pid, e, self.hidepid)
        });
        Relative { pid, stat }
    }
}

/// A child whose stat is filled in when the batch ends.
fn unfilled_child(pid: i32) -> Relative {
    Relative {
        pid,
        stat: Fact::Unavailable(Reason::new(ReasonKind::NotCollected, "filled in when the batch ends")),
    }
}

/// Who is whose child, by every process's ppid (for a large selection, and
/// on kernels without `task/TID/children`): (ppid, pid) pairs, sorted, 8
/// bytes per process of the host.
struct Parents {
    children: Vec<(i32, i32)>,
}

impl Parents {
    /// From the snapshot's samples, and the stat of every process outside
    /// it (in a scan, a handful: whystuck's own, and any born since).
    fn of(snapshot: &Snapshot, sampled: &HashMap<i32, usize>, root: &ProcDir, buf: &mut Vec<u8>) -> Parents {
        let mut children: Vec<(i32, i32)> = snapshot
            .processes
            .iter()
            .filter_map(|r| Some((r.samples.last()?.stat.ok()?.ppid?, r.pid)))
            .collect();
        let mut path = String::new();
        for pid in root.numeric_entries(".").unwrap_or_default() {
            if sampled.contains_key(&pid) {
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

/// The fds worth reading in depth in a process with many: any fd a blocked
/// thread's syscall names (argument 0 of every syscall: no table needed to
/// over-approximate), and every epoll fd (what it watches is added as it is
/// read). Self-pipes and socketpairs are added by [`Collector::fd_details`]
/// when they are full.
fn wanted_fds(links: &[(i32, Vec<u8>)], threads: &Fact<Vec<Thread>>) -> BTreeSet<i32> {
    let mut wanted: BTreeSet<i32> = threads
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|t| match t.syscall.ok()? {
            Syscall::Blocked { nr, args } if *nr >= 0 => i32::try_from(*args.first()?).ok(),
            _ => None,
        })
        .collect();
    wanted.extend(
        links
            .iter()
            .filter(|(_, target)| target.as_slice() == b"anon_inode:[eventpoll]")
            .map(|(fd, _)| *fd),
    );
    wanted
}

/// Self-pipes probed for fill in a lazily read process (in one of a large
/// selection, only the first): a wakeup fd is one or two pipes, not
/// thousands; --deep reads them all.
const MAX_SELF_PIPE_PROBES: usize = 64;

/// Both ends of every pipe held twice by this process and full: a wakeup
/// fd that may be losing signals (full socketpairs are found when sockets
/// are joined: [`Collector::read_full_socketpairs`]).
fn full_self_pipes(
    links: &[(i32, Vec<u8>)],
    max_probes: usize,
    mut pipe_is_full: impl FnMut(i32, u64) -> bool,
) -> BTreeSet<i32> {
    let mut pipes: HashMap<u64, Vec<i32>> = HashMap::new();
    for (fd, target) in links {
        if let Some(inode) = crate::linux::fd::link_inode(target, "pipe") {
            pipes.entry(inode).or_default().push(*fd);
        }
    }
    let mut full = BTreeSet::new();
    for (&inode, fds) in pipes.iter().filter(|(_, fds)| fds.len() > 1).take(max_probes) {
        if pipe_is_full(fds[0], inode) {
            full.extend(fds);
        }
    }
    full
}

/// The socket inodes among the fds a sample kept.
fn kept_socket_inodes(sample: &Sample) -> impl Iterator<Item = u64> + '_ {
    let fds = sample.fds.ok().map(Vec::as_slice).unwrap_or_default();
    fds.iter()
        .filter_map(|f| crate::linux::fd::link_inode(f.target.as_bytes(), "socket"))
}

/// An fd's fdinfo; `None` when the fd was closed after the listing.
fn read_fdinfo(dir: &ProcDir, buf: &mut Vec<u8>, fd: i32) -> Option<Fact<FdInfo>> {
    let info = read_fact(dir, buf, &format!("fdinfo/{fd}"), &mut false, |b| Ok(parse::fdinfo(b)));
    match &info {
        Fact::Unavailable(r) if r.kind == ReasonKind::NotSupported => None,
        _ => Some(info),
    }
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

/// How full a pipe is, seen from outside: open the target's fd read-only and
/// non-blocking through /proc (a moment's extra reader, never a writer), ask
/// FIONREAD and F_GETPIPE_SZ, close at once.
fn probe_pipe(dir: &ProcDir, fd: i32) -> io::Result<PipeFill> {
    let file = dir.open_file(&format!("fd/{fd}"))?;
    let mut buffered: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is valid.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::FIONREAD, &mut buffered) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let capacity = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETPIPE_SZ)?;
    Ok(PipeFill {
        buffered_bytes: buffered.max(0) as u64,
        capacity_bytes: capacity.max(0) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread id stands for its process: the process is sampled, named
    /// by that thread, and the thread is not taken for another holder of
    /// its process's pipes.
    #[test]
    fn a_thread_id_is_its_process_not_another_holder() {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // SAFETY: gettid has no arguments and cannot fail.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            let _ = done_rx.recv();
        });
        let tid = tid_rx.recv().unwrap();
        let pid = std::process::id() as i32;
        let options = Options {
            helper: helper::HelperConfig {
                program: "/nonexistent".into(),
                proc_root: "/proc".into(),
                timeout: Duration::from_secs(1),
            },
            interval: Duration::ZERO,
            timeout: Duration::from_secs(10),
            deep_fds: LAZY_FDS,
            thread_status: false,
            many: false,
        };
        let request = Request {
            pids: &[tid],
            tree: false,
            related: &|_| Vec::new(),
        };
        let snapshot = collect(&request, &options).unwrap();
        done_tx.send(()).unwrap();
        thread.join().unwrap();
        let pids: Vec<(i32, Option<i32>)> = snapshot.processes.iter().map(|r| (r.pid, r.named_thread)).collect();
        assert_eq!(pids, [(pid, Some(tid))]);
        let held = |fd: i32| snapshot.holders.iter().any(|h| (h.pid, h.fd) == (pid, fd));
        assert!(held(read_end.as_raw_fd()) && held(write_end.as_raw_fd()));
        let by_thread: Vec<&Holder> = snapshot.holders.iter().filter(|h| h.pid == tid).collect();
        assert!(by_thread.is_empty(), "{by_thread:?}");
    }
}
