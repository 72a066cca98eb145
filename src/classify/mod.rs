//! classify: pure functions from a snapshot to verdicts with structured
//! evidence. No I/O and no prose: [`crate::describe`] words the findings.
//!
//! Every finding that holds is listed with its evidence; the most severe
//! becomes the verdict (ties go to the earlier [`Verdict`] in declaration
//! order). A multi-threaded process is judged by the thread that matters:
//! the main thread, unless it only waits on a futex for another thread
//! (`join`), in which case the most telling other thread decides.
//!
//! - [`view`]: one process's facts, interpreted once (fd kinds, pipe ends,
//!   fullness, what each thread waits on).
//! - [`progress`]: how much a process moved between two samples.
//! - [`graph`]: the world of processes, who holds the other end of what,
//!   the wait-for edges and the deadlocks.
//! - [`finding`]: the types a diagnosis is made of (with `fdfacts`, an fd
//!   as a finding names it, and `held`, who holds a lock, a terminal, a
//!   DNS wait).
//! - [`locks`]: who holds the file lock a thread waits for.
//! - `lifecycle`, `blocked`, `activity`, `waits`, [`cgroup`]: the findings
//!   themselves.

mod activity;
mod blocked;
pub mod cgroup;
mod fdfacts;
pub mod finding;
pub mod graph;
mod held;
mod lifecycle;
pub mod locks;
pub mod progress;
pub mod stall;
pub mod view;
mod waits;

pub use finding::{Claim, Diagnosis, Evidence, Finding, Severity, Verdict};

use graph::World;
use std::collections::BTreeSet;
use view::View;

/// CPU use at or above this share of one core over the interval is `busy`.
pub const BUSY_PERCENT: f64 = 50.0;

/// Diagnose every process of the world, children before the parents that
/// wait on them (a parent's wait is judged by its child's verdict).
pub fn diagnose_all(world: &World) -> Diagnoses {
    let pids: Vec<i32> = world.pids().collect();
    let mut judge = Judge {
        world,
        done: Diagnoses {
            diagnoses: pids.iter().map(|_| None).collect(),
            pids,
        },
        visiting: BTreeSet::new(),
    };
    for pid in world.pids() {
        judge.diagnose(pid);
    }
    judge.done
}

/// A diagnosis per pid of a world: vectors in the world's pid order, as a
/// scan holds one per process of the host.
#[derive(Debug)]
pub struct Diagnoses {
    /// Sorted.
    pids: Vec<i32>,
    diagnoses: Vec<Option<Diagnosis>>,
}

impl Diagnoses {
    pub fn get(&self, pid: i32) -> Option<&Diagnosis> {
        self.diagnoses[self.pids.binary_search(&pid).ok()?].as_ref()
    }

    pub fn remove(&mut self, pid: i32) -> Option<Diagnosis> {
        self.diagnoses[self.pids.binary_search(&pid).ok()?].take()
    }

    fn insert(&mut self, pid: i32, diagnosis: Diagnosis) {
        if let Ok(at) = self.pids.binary_search(&pid) {
            self.diagnoses[at] = Some(diagnosis);
        }
    }
}

struct Judge<'w, 'a> {
    world: &'w World<'a>,
    done: Diagnoses,
    /// Being diagnosed: a wait back onto one of these is a cycle, which the
    /// deadlock finding covers.
    visiting: BTreeSet<i32>,
}

impl Judge<'_, '_> {
    fn diagnose(&mut self, pid: i32) -> Option<&Diagnosis> {
        if self.done.get(pid).is_none() {
            let view = self.world.view(pid)?;
            if !self.visiting.insert(pid) {
                return None;
            }
            let mut diagnosis = conclude(findings(self, view));
            diagnosis.stuck_for_ms = stuck_for(view, &diagnosis);
            self.visiting.remove(&pid);
            self.done.insert(pid, diagnosis);
        }
        self.done.get(pid)
    }
}

/// The diagnosis of a record with no usable sample.
pub fn no_sample() -> Diagnosis {
    conclude(vec![Finding::new(Verdict::Unknown, Claim::NoSample, vec![])])
}

fn conclude(mut findings: Vec<Finding>) -> Diagnosis {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.claim.about_another().cmp(&b.claim.about_another()))
            .then(a.kind.cmp(&b.kind))
    });
    if findings.is_empty() {
        findings.push(Finding::new(Verdict::Unknown, Claim::NoFinding, vec![]));
    }
    // Thousands of diagnoses are held at once in a scan: no spare room.
    findings.shrink_to_fit();
    Diagnosis {
        verdict: findings[0].kind,
        severity: findings[0].severity,
        findings,
        stuck_for_ms: None,
    }
}

/// How long the thread behind a wait verdict has not run (see
/// [`Diagnosis::stuck_for_ms`]): the deciding finding's thread. A finding
/// about no thread of its own (another process not drained, a full accept
/// queue) has no such duration: another thread's would mislead.
fn stuck_for(view: &View, diagnosis: &Diagnosis) -> Option<Result<u64, crate::snapshot::Reason>> {
    if matches!(
        diagnosis.verdict,
        Verdict::Running | Verdict::Busy | Verdict::Throttled | Verdict::Dead | Verdict::Unknown | Verdict::Stalled
    ) {
        return None;
    }
    let tid = diagnosis.deciding().tid?;
    view.threads.iter().find(|t| t.tid() == tid)?.last_ran_ms.clone()
}

fn findings(judge: &mut Judge, view: &View) -> Vec<Finding> {
    let world = judge.world;
    if let Some(dead) = lifecycle::dead(view) {
        return vec![dead];
    }
    let Some(stat) = view.stat() else {
        let reason = view.last.stat.reason().cloned();
        return vec![Finding::new(Verdict::Unknown, Claim::StatUnreadable(reason), vec![])];
    };
    let mut findings = Vec::new();
    // A frozen process's thread states are the freezer's: no D sleep, run
    // or wait of its own is judged from them.
    let frozen = cgroup::frozen(view);
    let thawed = !frozen.as_ref().is_some_and(cgroup::is_frozen);
    findings.extend(frozen);
    findings.extend(lifecycle::stopped(view, stat));
    if thawed {
        findings.extend(cgroup::memory_pressure(view));
        findings.extend(lifecycle::disk_wait(view));
    }
    findings.extend(blocked::deadlock(world, view));
    findings.extend(blocked::full_writes(judge, view));
    findings.extend(blocked::undrained(world, view));
    findings.extend(blocked::full_wakeup_fds(view));
    findings.extend(blocked::full_accept_queues(world, view));
    if thawed {
        findings.extend(cgroup::throttled(view));
        findings.extend(lifecycle::busy(view));
    }
    findings.extend(lifecycle::stopped_jobs(world, view));
    if thawed {
        findings.extend(activity::activity(judge, view));
    }
    findings
}

#[cfg(test)]
mod tests;
