//! Taking samples on the pool (see [`super::pool`]): a batch's first
//! samples and the second round. Each sample is taken by whichever thread
//! of the pool gets to it ([`take_sample`]: /proc reads through the
//! process's held directory), then settled on the collecting thread, in
//! order ([`settle`]: its cgroups resolved, its ends indexed, its sockets
//! given their namespace's tables, its work left to the batch, its record
//! kept).

use super::cgroup::{CgroupReader, Round};
use super::dir::ProcDir;
use super::ends::EndIndex;
use super::net::NetCache;
use super::pool;
use super::reason::absent_reason;
use super::run::{Collector, Reader};
use super::sample::{thread_of, Left, Sampler, Shared};
use crate::snapshot::*;
use crate::text::TargetString;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// A sample as a pool thread took it, to be settled.
pub(super) struct Taken {
    sample: Sample,
    left: Left,
    /// Its `/proc/PID/cgroup`, for a sample of a process that is present.
    membership: Option<Result<TargetString, Reason>>,
}

/// A sample of `pid` through its directory, now: skipped past the budget,
/// not found when the directory could not be opened. `first`: its first
/// sample; `stat`: its stat, when already read for it.
fn take_sample(
    shared: &Shared,
    sampler: &Sampler,
    buf: &mut Vec<u8>,
    dir: Result<&ProcDir, &Reason>,
    (pid, stat): (i32, Option<Stat>),
    first: bool,
) -> Taken {
    let budget = shared.budget;
    let elapsed_ms = budget.start.elapsed().as_millis() as u64;
    let absent = |presence, reason| Taken {
        sample: Sample::absent(elapsed_ms, presence, reason),
        left: Left::default(),
        membership: None,
    };
    if budget.out_of_time() {
        return absent(Presence::Skipped, budget.spent());
    }
    let dir = match dir {
        Ok(dir) => dir,
        Err(reason) => return absent(Presence::NotFound, reason.clone()),
    };
    let (sample, left) = sampler.sample(shared, buf, dir, (pid, stat), elapsed_ms, first);
    // A thread id's first sample names its process, nothing more.
    let thread = first && thread_of(&sample.status, pid).is_some();
    let membership = (sample.presence == Presence::Present && !thread).then(|| CgroupReader::read_membership(dir, buf));
    Taken {
        sample,
        left,
        membership,
    }
}

/// What only the collecting thread changes as samples are settled.
struct Settler<'a> {
    root: &'a ProcDir,
    net: &'a mut NetCache,
    ends: &'a mut EndIndex,
    cgroups: &'a mut CgroupReader,
    round: Round,
}

impl Settler<'_> {
    /// `pid`'s sample, taken, made whole: its cgroups (`previous`: its first
    /// sample, in a second round), its ends indexed, and what it leaves for
    /// the batch, with its namespace's socket tables.
    fn settle(
        &mut self,
        pid: i32,
        taken: Taken,
        previous: Option<&Sample>,
    ) -> (Sample, Left, Option<std::rc::Rc<super::net::NetTables>>) {
        let Taken {
            mut sample,
            mut left,
            membership,
        } = taken;
        if let Some(membership) = membership {
            sample.cgroups = Some(self.cgroups.read(self.root, membership, &sample, previous, self.round));
        }
        self.ends.add_ends(pid, &std::mem::take(&mut left.ends));
        let tables = left
            .sockets
            .as_mut()
            .map(|(netns, _)| self.net.tables_for(netns.take(), pid));
        if let (Some(tables), Fact::Ok(sockets)) = (&tables, &mut sample.sockets) {
            sockets.source = tables.source.into();
        }
        (sample, left, tables)
    }
}

impl Reader {
    /// What the pool threads share, what the collecting thread settles
    /// samples of `round` with, and its scratch buffer.
    fn split(&mut self, round: Round) -> (Shared<'_>, Settler<'_>, &mut Vec<u8>) {
        let Reader {
            root,
            hidepid,
            budget,
            net,
            ends,
            clocks,
            cgroups,
            buf,
        } = self;
        let shared = Shared {
            root,
            hidepid: *hidepid,
            budget: *budget,
            clocks,
        };
        let settler = Settler {
            root,
            net,
            ends,
            cgroups,
            round,
        };
        (shared, settler, buf)
    }
}

impl Collector {
    /// Open `pid`'s directory and take its first sample, unless it is
    /// already in the snapshot. Whether it was added (see
    /// [`Collector::add_all`]).
    pub(super) fn add(&mut self, snapshot: &mut Snapshot, pid: i32, role: Role) -> bool {
        self.add_all(snapshot, &[pid], role)[0]
    }

    /// Open each pid's directory and take its first sample, on the pool,
    /// unless it is already in the snapshot; records are kept in the order
    /// of `pids`. Whether each was added. A thread id is not added: its
    /// process is (in its place), named by that thread when it is a target.
    pub(super) fn add_all(&mut self, snapshot: &mut Snapshot, pids: &[i32], role: Role) -> Vec<bool> {
        let mut seen = HashSet::new();
        let fresh: Vec<(usize, i32)> = (pids.iter().enumerate())
            .filter(|&(_, pid)| !self.dirs.contains_key(pid) && seen.insert(*pid))
            .map(|(at, &pid)| (at, pid))
            .collect();
        let mut added = vec![false; pids.len()];
        let Collector {
            reader,
            sampler,
            batch,
            dirs,
            threads,
            prefetched,
            ..
        } = self;
        let round = Round {
            last: sampler.single_round,
            two_samples: !sampler.single_round,
        };
        let (shared, mut settler, buf) = reader.split(round);
        // The directory, and with one sample the stat, the scan read.
        let open = |pid: i32| match (shared.budget.out_of_time(), prefetched.take(pid)) {
            // Past the budget the sample is skipped: not even its directory is opened.
            (true, _) => (Err(shared.budget.spent()), None),
            (false, Some((dir, stat))) => (Ok(dir), stat.filter(|_| sampler.single_round)),
            (false, None) => (
                (shared.root.open_dir(&pid.to_string())).map_err(|e| absent_reason(pid, &e, shared.hidepid)),
                None,
            ),
        };
        let first = |buf: &mut Vec<u8>, pid: i32| {
            let (dir, stat) = open(pid);
            let taken = take_sample(&shared, sampler, buf, dir.as_ref(), (pid, stat), true);
            (dir, taken)
        };
        pool::ordered(
            &fresh,
            *threads,
            || Vec::with_capacity(4096),
            |buf, &(_, pid)| first(buf, pid),
            |at, (mut dir, mut taken)| {
                let (asked, mut pid) = fresh[at];
                let named = thread_of(&taken.sample.status, pid).map(|tgid| (pid, tgid));
                if let Some((_, tgid)) = named {
                    // Its process, sampled here, now, in its place (unless
                    // it is already in the snapshot).
                    pid = tgid;
                    if !dirs.contains_key(&tgid) {
                        (dir, taken) = first(buf, tgid);
                    }
                }
                // Not twice: a process named after one of its threads was.
                if let std::collections::btree_map::Entry::Vacant(place) = dirs.entry(pid) {
                    let (sample, left, tables) = settler.settle(pid, taken, None);
                    place.insert(dir.ok());
                    batch.leave(pid, left, tables);
                    snapshot.processes.push(ProcessRecord {
                        pid,
                        role,
                        named_thread: None,
                        samples: vec![sample],
                    });
                    added[asked] = true;
                }
                if let Some((tid, tgid)) = named.filter(|_| role == Role::Target) {
                    if let Some(record) = snapshot.processes.iter_mut().find(|r| r.pid == tgid) {
                        record.role = Role::Target;
                        record.named_thread = Some(tid);
                    }
                }
            },
        );
        added
    }

    /// Every process sampled again, on the pool, each at least the interval
    /// after its first sample started (past the budget, a skipped sample:
    /// it is judged by its first, and its report says why it has no rates).
    pub(super) fn second_samples(&mut self, snapshot: &mut Snapshot, interval: Duration) {
        let start = self.reader.budget.start;
        // Each record's pid, when its second sample is due, and its
        // directory, or why there is none: one that could not be opened is
        // not found again, for the reason its first sample gave.
        let plan: Vec<(i32, Instant, Result<&ProcDir, Reason>)> = (snapshot.processes.iter())
            .map(|record| {
                let first = record.samples.first();
                let due = start + Duration::from_millis(first.map_or(0, |s| s.elapsed_ms)) + interval;
                let never_opened = first.and_then(|s| s.stat.reason());
                let dir = match (self.dirs.get(&record.pid), never_opened) {
                    (Some(Some(dir)), _) => Ok(dir),
                    (_, Some(reason)) => Err(reason.clone()),
                    (_, None) => Err(Reason::new(ReasonKind::Gone, "no such process")),
                };
                (record.pid, due, dir)
            })
            .collect();
        let round = Round {
            last: true,
            two_samples: true,
        };
        let (shared, mut settler, _) = self.reader.split(round);
        let (sampler, batch) = (&self.sampler, &mut self.batch);
        pool::ordered(
            &plan,
            self.threads,
            || Vec::with_capacity(4096),
            |buf, (pid, due, dir)| {
                // Never past the budget: a sample due after it is skipped.
                let wait = (*due)
                    .min(shared.budget.deadline)
                    .saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                take_sample(&shared, sampler, buf, dir.as_ref().copied(), (*pid, None), false)
            },
            |at, taken| {
                let record = &mut snapshot.processes[at];
                let (sample, left, tables) = settler.settle(record.pid, taken, record.samples.first());
                batch.leave(record.pid, left, tables);
                record.samples.push(sample);
            },
        );
    }
}
