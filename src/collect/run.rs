//! One run of [`super::collect`]: its rounds, and the state they share.
//!
//! The first round samples the requested pids, then (with `--tree`) their
//! descendants a generation at a time, then the other ends of their pipes
//! and sockets ([`HolderSearch`]), the holders of the file locks they wait
//! for ([`LockSearch`], each round), and the related processes a diagnosis
//! asks for, each batch finished by [`Batch::finish`]. The second round,
//! when there is an interval, samples every process again, each at least
//! the interval after its first sample started.

use super::batch::Batch;
use super::cgroup::CgroupReader;
use super::clock::SchedClocks;
use super::dir::ProcDir;
use super::ends::EndIndex;
use super::helper::CmdlineReader;
use super::holders::HolderSearch;
use super::locks::LockSearch;
use super::net::NetCache;
use super::pool;
use super::pystacks;
use super::reason::{stuck_on_file_server, Budget};
use super::sample::{read_fact, Sampler, Shared};
use super::visibility::{self, HidePid};
use super::{parse, Options, Request, MAX_RELATED};
use crate::snapshot::*;
use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What every part of a run reads through: /proc held open, the mount's
/// `hidepid=`, the run's budget, the socket tables, the index of who holds
/// each pipe and socket, and one reused read buffer.
pub(super) struct Reader {
    pub root: ProcDir,
    /// The proc mount's `hidepid=` as it applies to this run, when known.
    pub hidepid: Option<HidePid>,
    pub budget: Budget,
    pub net: NetCache,
    /// Who holds each pipe and socket fd seen, for finding the other ends.
    pub ends: EndIndex,
    /// Each CPU's scheduler clock, for how long ago a thread last ran.
    pub clocks: SchedClocks,
    /// Processes' cgroups, each cgroup's files read once a round.
    pub cgroups: CgroupReader,
    pub buf: Vec<u8>,
}

impl Reader {
    /// What the sampling threads read through.
    fn shared(&self) -> Shared<'_> {
        Shared {
            root: &self.root,
            hidepid: self.hidepid,
            budget: self.budget,
            clocks: &self.clocks,
        }
    }

    /// Another process named in a report, with its stat.
    pub fn relative(&mut self, pid: i32) -> Relative {
        let mut buf = std::mem::take(&mut self.buf);
        let relative = self.shared().relative(&mut buf, pid);
        self.buf = buf;
        relative
    }

    /// The open flags of another process's fd, when readable.
    pub fn fd_flags(&mut self, pid: i32, fd: i32) -> Option<u32> {
        self.fd_info(pid, fd)?.flags
    }

    /// Another process's fdinfo, when readable.
    pub fn fd_info(&mut self, pid: i32, fd: i32) -> Option<FdInfo> {
        let info = read_fact(
            &self.root,
            &mut self.buf,
            &format!("{pid}/fdinfo/{fd}"),
            &mut false,
            |b| Ok(parse::fdinfo(b)),
        );
        match info {
            Fact::Ok(info) => Some(info),
            Fact::Unavailable(_) => None,
        }
    }

    fn host(&mut self) -> Host {
        let kernel_release = match self.root.read("sys/kernel/osrelease", &mut self.buf) {
            Ok(()) => Fact::Ok(String::from_utf8_lossy(&self.buf).trim().to_string()),
            Err(e) => Fact::Unavailable(super::reason::reason_for(&e)),
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
            uptime_ms: self
                .root
                .read("uptime", &mut self.buf)
                .ok()
                .and_then(|()| parse::uptime_ms(&self.buf)),
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
}

/// Each sampled pid's directory, opened once and held for every round
/// (`None` when it could not be opened: its first sample says why), one
/// entry per process in the snapshot. 4 bytes a directory: a scan holds
/// thousands.
pub(super) type Dirs = BTreeMap<i32, Option<ProcDir>>;

pub(super) struct Collector {
    pub reader: Reader,
    pub sampler: Sampler,
    pub batch: Batch,
    pub dirs: Dirs,
    holders: HolderSearch,
    locks: LockSearch,
    /// Threads sampling at once (see [`super::pool`]).
    pub threads: usize,
    /// What the selection's scan opened and read, taken by first samples.
    pub prefetched: super::select::Prefetched,
}

pub(super) fn run(request: &Request, options: &Options) -> anyhow::Result<Snapshot> {
    let proc_root = &options.helper.proc_root;
    let root =
        ProcDir::open_root(proc_root).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", proc_root.display()))?;
    let live = proc_root == std::path::Path::new("/proc");
    let cgroups = CgroupReader::new(proc_root, &root);
    // A proc file system's own root: its files are the kernel's.
    let live_proc = root.is_proc_mount_root();
    let start = Instant::now();
    let budget = Budget::new(start, options.timeout);
    let mut collector = Collector {
        reader: Reader {
            root,
            hidepid: None,
            budget,
            net: NetCache::new(live, options.helper.timeout, budget.deadline),
            ends: EndIndex::default(),
            clocks: SchedClocks::default(),
            cgroups,
            buf: Vec::with_capacity(4096),
        },
        sampler: Sampler {
            deep_fds: options.deep_fds,
            thread_status: options.thread_status,
            many: options.many,
            page_size: 4096,
            single_round: options.interval.is_zero(),
            kernel_stacks: visibility::reads_kernel_stacks(),
            direct_cmdlines: live_proc,
        },
        // Under a fake tree every command line is read through the read
        // helper: it starts now, when there is anything to read, its start
        // overlapping the first round's reads. On the live /proc most are
        // read directly, and it starts at the first that is not.
        batch: Batch::new(
            CmdlineReader::new(options.helper.clone(), !live_proc && !request.pids.is_empty()),
            options.helper.timeout,
        ),
        dirs: Dirs::new(),
        holders: HolderSearch::default(),
        locks: LockSearch::default(),
        threads: pool::threads(),
        prefetched: request
            .prefetched
            .map(super::select::Prefetched::drain)
            .unwrap_or_default(),
    };
    collector.reader.hidepid = visibility::restriction(&collector.reader.root, proc_root);
    let host = collector.reader.host();
    collector.sampler.page_size = host.page_size;
    let mut snapshot = Snapshot {
        format: SNAPSHOT_FORMAT.to_string(),
        schema_version: SNAPSHOT_SCHEMA_VERSION,
        host,
        tree: request.tree,
        // A scan holds one record per process: sized for the selection.
        processes: Vec::with_capacity(request.pids.len()),
        holders: Vec::new(),
        unsearchable: Vec::new(),
        fifo_holders: Vec::new(),
        locks: None,
        visibility: None,
    };
    collector.add_all(&mut snapshot, request.pids, Role::Target);
    collector.finish_batch(&mut snapshot);
    if request.tree {
        // A generation at a time: a batch's children are known when it ends.
        let mut generation: Vec<i32> = request.pids.to_vec();
        while !generation.is_empty() {
            let children = children_of(&snapshot, &generation);
            let added = collector.add_all(&mut snapshot, &children, Role::Descendant);
            let next = children
                .into_iter()
                .zip(added)
                .filter(|&(_, added)| added)
                .map(|(child, _)| child);
            let next: Vec<i32> = next.collect();
            collector.finish_batch(&mut snapshot);
            generation = next;
        }
    } else if !options.many {
        // Named processes' children are sampled too (context, not
        // reported): a parent's report shows each child's verdict, and one
        // that polls instead of waiting is still judged by its children.
        let children = children_of(&snapshot, request.pids);
        let added = children
            .into_iter()
            .take(MAX_RELATED)
            .filter(|&child| collector.add(&mut snapshot, child, Role::Related))
            .count();
        if added > 0 {
            collector.finish_batch(&mut snapshot);
        }
    }
    collector.find_holders(&mut snapshot);
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
        collector.find_holders(&mut snapshot);
    }
    if !options.interval.is_zero() {
        collector.second_round(&mut snapshot, options);
    }
    if options.stacks {
        collector.python_stacks(&mut snapshot);
    }
    Ok(snapshot)
}

impl Collector {
    /// `--stacks`: every reported Python process's stacks, with its last
    /// sample (never one stuck on a file server: its memory could hang).
    fn python_stacks(&mut self, snapshot: &mut Snapshot) {
        for record in snapshot.processes.iter_mut().filter(|r| r.role != Role::Related) {
            let Some(Some(dir)) = self.dirs.get(&record.pid) else {
                continue;
            };
            let Some(sample) = record.samples.last_mut().filter(|s| s.presence == Presence::Present) else {
                continue;
            };
            if !pystacks::is_python(dir, sample) {
                continue;
            }
            sample.python_stacks = Some(match stuck_on_file_server(sample) {
                Some(reason) => Fact::Unavailable(reason),
                None => pystacks::dump(record.pid, &self.reader.budget),
            });
        }
    }

    /// Every process sampled again, each at least the interval after its
    /// first sample started, then the batch finished.
    fn second_round(&mut self, snapshot: &mut Snapshot, options: &Options) {
        // The interval runs from each process's first sample (its
        // `elapsed_ms`, from which the report measures it): time spent
        // collecting counts towards it. It is cut short only where the run's
        // budget would not leave the second round as long as the first took.
        let start = self.reader.budget.start;
        let first_round = start.elapsed();
        let interval = options.interval.min(options.timeout.saturating_sub(first_round));
        self.reader.net.start_round();
        self.reader.clocks.start_round();
        self.reader.cgroups.start_round();
        self.batch.start_round();
        self.second_samples(snapshot, interval);
        self.finish_batch(snapshot);
        // The locks waited for, as of this round.
        self.locks.start_round();
        self.locks.update(&mut self.reader, snapshot);
    }

    fn finish_batch(&mut self, snapshot: &mut Snapshot) {
        self.batch.finish(&mut self.reader, &self.dirs, snapshot);
    }

    fn find_holders(&mut self, snapshot: &mut Snapshot) {
        let dirs = &self.dirs;
        let own = std::process::id() as i32;
        let helpers = self.batch.helper_pids();
        let skipped = |pid| dirs.contains_key(&pid) || pid == own || helpers.contains(&pid);
        self.holders.update(&mut self.reader, &skipped, snapshot);
        self.locks.update(&mut self.reader, snapshot);
    }
}

/// The children the last samples of `pids` name, in the order of `pids`.
fn children_of(snapshot: &Snapshot, pids: &[i32]) -> Vec<i32> {
    let mut wanted = pids.to_vec();
    wanted.sort_unstable();
    let mut named: Vec<(i32, &[Relative])> = snapshot
        .processes
        .iter()
        .filter(|r| wanted.binary_search(&r.pid).is_ok())
        .filter_map(|r| Some((r.pid, r.samples.last()?.children.ok()?.as_slice())))
        .collect();
    named.sort_unstable_by_key(|&(pid, _)| pid);
    let children = |pid: &i32| {
        let at = named.binary_search_by_key(pid, |&(p, _)| p).ok();
        at.map_or(&[][..], |at| named[at].1)
    };
    pids.iter().flat_map(children).map(|c| c.pid).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{collect, helper, Options, Request, LAZY_FDS};
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    fn options(interval: Duration) -> Options {
        Options {
            helper: helper::HelperConfig {
                program: "/nonexistent".into(),
                proc_root: "/proc".into(),
                timeout: Duration::from_secs(1),
            },
            interval,
            timeout: interval + Duration::from_secs(10),
            deep_fds: LAZY_FDS,
            thread_status: interval > Duration::ZERO,
            many: false,
            stacks: false,
        }
    }

    /// Each process's second sample starts at least the interval after its
    /// first (the gap the report measures), however long the first round took.
    #[test]
    fn second_samples_are_at_least_the_interval_after_the_first() {
        let interval = Duration::from_millis(60);
        let pids = [std::process::id() as i32, std::os::unix::process::parent_id() as i32];
        let request = Request {
            pids: &pids,
            tree: false,
            related: &|_| Vec::new(),
            prefetched: None,
        };
        let snapshot = collect(&request, &options(interval)).unwrap();
        assert_eq!(snapshot.processes.len(), 2);
        for record in &snapshot.processes {
            let [first, second] = &record.samples[..] else {
                panic!("{} samples", record.samples.len())
            };
            assert_eq!(second.presence, Presence::Present);
            assert!(
                second.elapsed_ms >= first.elapsed_ms + 60,
                "{} then {}",
                first.elapsed_ms,
                second.elapsed_ms
            );
        }
    }

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
        let options = options(Duration::ZERO);
        let request = Request {
            pids: &[tid],
            tree: false,
            related: &|_| Vec::new(),
            prefetched: None,
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
