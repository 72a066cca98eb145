//! Findings about the process as a whole: gone, stopped, in uninterruptible
//! sleep, or burning CPU.

use super::finding::*;
use super::graph::World;
use super::view::{ThreadView, View};
use super::BUSY_PERCENT;
use crate::linux::wait::{self, Wait};
use crate::snapshot::*;

pub(super) fn dead(view: &View) -> Option<Finding> {
    let (first, last) = (view.first, view.last);
    if let Some(skipped) = [first, last].into_iter().find(|s| s.presence == Presence::Skipped) {
        let reason = skipped.stat.reason().cloned();
        return Some(Finding::new(Verdict::Unknown, Claim::NotLookedAt(reason), vec![]));
    }
    if first.presence == Presence::NotFound {
        let reason = first.stat.reason();
        let evidence = vec![Evidence::ProcEntryUnopened(reason.cloned())];
        // Only "no such entry" means no such process; anything else (too
        // many open files, permission) is whystuck not knowing.
        if reason.is_some_and(|r| r.kind != ReasonKind::Gone) {
            return Some(Finding::new(
                Verdict::Unknown,
                Claim::CouldNotLookAt(reason.cloned()),
                evidence,
            ));
        }
        return Some(Finding::new(Verdict::Dead, Claim::NoSuchProcess, evidence));
    }
    if last.presence != Presence::Present {
        return Some(Finding::new(
            Verdict::Dead,
            Claim::ExitedWhileInspected,
            vec![Evidence::ProcEntryWentAway {
                elapsed_ms: last.elapsed_ms,
            }],
        ));
    }
    let start = |s: &Sample| s.stat.ok().and_then(|s| s.starttime);
    if let (Some(before), Some(after)) = (start(first), start(last)) {
        if before != after {
            return Some(Finding::new(
                Verdict::Dead,
                Claim::PidReused,
                vec![Evidence::StartTimeChanged {
                    before,
                    after,
                    pid: view.pid,
                }],
            ));
        }
    }
    let stat = view.stat()?;
    if !stat.is_zombie() {
        return None;
    }
    let parent = last.parent.as_deref().map(relative_ref);
    let parent_state = last.parent.as_ref().and_then(|p| p.stat.ok()).map(|s| s.state);
    let mut evidence = vec![
        Evidence::State(stat.state),
        Evidence::ParentNotReaping {
            parent: parent.clone().map(|p| (p, parent_state)),
        },
    ];
    if let Some(status) = stat.exit_code {
        evidence.push(match status & 0x7f {
            0 => Evidence::ExitStatus((status >> 8) & 0xff),
            signal => Evidence::KilledBy(1 << (signal - 1)),
        });
    }
    Some(Finding::new(Verdict::Dead, Claim::Zombie { parent }, evidence))
}

/// A process named by a sample (parent, tracer, child).
pub(super) fn relative_ref(relative: &Relative) -> ProcessRef {
    ProcessRef {
        pid: relative.pid,
        comm: relative.stat.ok().map(|s| s.comm.clone()),
    }
}

pub(super) fn stopped(view: &View, stat: &Stat) -> Option<Finding> {
    if !matches!(stat.state, 'T' | 't') {
        return None;
    }
    let tracer = view.last.tracer.as_deref();
    let background = super::waits::background_stop(view, stat).filter(|_| tracer.is_none());
    let mut evidence = vec![Evidence::State(stat.state)];
    if let Some(pid) = view.status().and_then(|s| s.tracer_pid).filter(|&p| p > 0) {
        evidence.push(Evidence::TracerPid(pid));
    }
    // A job stopped for touching its terminal stops again on SIGCONT
    // alone: it resumes for good only in the foreground.
    evidence.push(match &background {
        Some(stop) => Evidence::BackgroundGroup {
            pgrp: stop.pgrp,
            foreground: stop.foreground,
        },
        None => Evidence::Resumes {
            by_tracer: tracer.is_some(),
        },
    });
    let cause = match (stat.state, tracer, background) {
        (_, Some(tracer), _) => StopCause::Tracer(relative_ref(tracer)),
        ('t', None, _) => StopCause::TracingStop,
        (_, None, Some(stop)) => StopCause::Background(stop),
        _ => StopCause::Signal,
    };
    let finding = Finding::new(Verdict::Stopped, Claim::Stopped(cause), evidence);
    Some(match view.main_thread() {
        Some(main) => finding.of_thread(main.tid()),
        None => finding,
    })
}

/// Children stopped by job control that the process does not wait for (a
/// shell's background job stopped on SIGTTIN): each its own finding, at
/// info, never the parent's severity.
pub(super) fn stopped_jobs(world: &World, view: &View) -> Vec<Finding> {
    let waited: Vec<i32> = world
        .edges(view.pid)
        .iter()
        .flat_map(|e| e.to.iter().copied())
        .collect();
    let children = view.last.children.ok().map(Vec::as_slice).unwrap_or_default();
    children
        .iter()
        .filter(|c| c.stat.ok().is_some_and(|s| s.state == 'T') && !waited.contains(&c.pid))
        .map(|c| {
            let mut finding = Finding::new(
                Verdict::Stopped,
                Claim::StoppedJob(relative_ref(c)),
                vec![Evidence::State('T')],
            );
            finding.severity = Severity::Info;
            finding
        })
        .collect()
}

pub(super) fn disk_wait(view: &View) -> Option<Finding> {
    // A vfork parent is in D too, but it waits on its child: not a disk
    // wait; nor is memory throttling (a memory-pressure finding).
    let stuck: Vec<&ThreadView> = view
        .threads
        .iter()
        .filter(|t| t.state == Some('D') && t.wait != Some(Wait::Child))
        .filter(|t| !super::cgroup::is_memory_wchan(t.wchan))
        .collect();
    let first = stuck.first()?;
    let claim = Claim::DiskWait {
        threads: stuck.len(),
        wchan: first.wchan.map(str::to_string),
        on: first.wchan.and_then(wait::disk_wait),
    };
    let evidence = stuck
        .iter()
        .map(|t| Evidence::ThreadWchan {
            tid: t.tid(),
            comm: t.comm(),
            state: 'D',
            wchan: t.wchan.map(str::to_string),
        })
        .collect();
    Some(Finding::new(Verdict::DiskWait, claim, evidence).of_thread(first.tid()))
}

pub(super) fn busy(view: &View) -> Option<Finding> {
    let progress = view.progress.as_deref()?;
    // What it wanted, not only what it got: CPUs may be contended.
    if progress.wanted_cpu_percent()? < BUSY_PERCENT {
        return None;
    }
    let mut evidence = vec![Evidence::CpuTicks {
        ticks: progress.cpu_ticks,
        interval_ms: progress.interval_ms,
    }];
    evidence.extend(view.threads_on_cpu());
    Some(Finding::new(Verdict::Busy, Claim::Busy(progress.clone()), evidence))
}
