//! Findings about the process's cgroups rather than its code: frozen by a
//! freezer, held back by a CPU quota, or by memory.
//!
//! A frozen process's threads show what they showed when it froze (D and
//! the old wchan on current kernels, S in `get_signal` under the v2
//! freezer, R on older ones): `frozen` takes precedence over the findings
//! those states would make (see `classify::findings`).

use super::finding::*;
use super::view::View;
use crate::linux::cgroup::{self, thread_memory_wait, Container, MemoryWait};
use crate::snapshot::*;

/// Throttled in more than this share of the interval's periods: most of them.
const THROTTLED_SHARE: f64 = 0.5;
/// Fewer periods than this over the interval say nothing.
const MIN_PERIODS: u64 = 2;

/// The container (and pod) a sample's cgroups name.
pub fn container(sample: &Sample) -> Option<Container> {
    let raw = sample.cgroups.as_ref()?.membership.ok()?;
    let lines = cgroup::membership(raw.as_bytes()).ok()?;
    cgroup::container(lines.iter().map(|l| l.path))
}

fn cgroups(sample: &Sample) -> Option<&Cgroups> {
    sample.cgroups.as_deref()
}

fn cgroup_ref(at: &CgroupAt) -> CgroupRef {
    CgroupRef {
        version: at.version,
        path: at.path.clone(),
        dir: at.dir.clone(),
    }
}

/// Frozen, or being frozen, by a freezer: from the last sample.
pub(super) fn frozen(view: &View) -> Option<Finding> {
    let freezer = cgroups(view.last)?.freezer.as_ref()?.ok()?;
    if freezer.state == FreezerState::Thawed {
        return None;
    }
    let cgroup = cgroup_ref(&freezer.at);
    let frozen_for_ms = freezer.frozen_usec.as_ref().and_then(Fact::ok).map(|usec| usec / 1000);
    let thaw = match freezer.frozen_by.is_empty() {
        true => vec![freezer.at.dir.clone()],
        false => freezer.frozen_by.clone(),
    };
    let mut evidence = vec![Evidence::Cgroup(CgroupEvidence::FreezerState {
        cgroup: cgroup.clone(),
        state: freezer.state,
    })];
    evidence.extend(frozen_for_ms.map(|ms| Evidence::Cgroup(CgroupEvidence::FrozenFor(ms))));
    if freezer.state == FreezerState::Frozen {
        evidence.push(Evidence::Cgroup(CgroupEvidence::StatesFrozen));
    }
    // What each thread shows: `None` only for a wchan that could not be read.
    evidence.extend(view.threads.iter().filter_map(|t| {
        Some(Evidence::ThreadWchan {
            tid: t.tid(),
            comm: t.comm(),
            state: t.state?,
            wchan: t.thread.wchan.ok().map(|w| t.wchan.unwrap_or(w).to_string()),
        })
    }));
    let claim = Claim::Frozen(Frozen {
        cgroup,
        state: freezer.state,
        thaw,
        frozen_for_ms,
        container: container(view.last),
    });
    let finding = Finding::new(Verdict::Frozen, claim, evidence);
    Some(match view.main_thread() {
        Some(main) => finding.of_thread(main.tid()),
        None => finding,
    })
}

/// Whether the last sample says frozen (not merely freezing): then the
/// threads' states are the freezer's, not waits.
pub(super) fn is_frozen(finding: &Finding) -> bool {
    matches!(
        &finding.claim,
        Claim::Frozen(Frozen {
            state: FreezerState::Frozen,
            ..
        })
    )
}

/// Wants CPU, and its quota held it back in most periods of the interval.
/// A cgroup without a quota (here or above) never is.
pub(super) fn throttled(view: &View) -> Option<Finding> {
    let progress = view.progress.as_deref()?;
    let first = cgroups(view.first)?.cpu.as_ref()?.ok()?;
    let last = cgroups(view.last)?.cpu.as_ref()?.ok()?;
    let quota_us = last.quota_us?;
    if first.at.path != last.at.path {
        return None; // moved between cgroups: the counters are not comparable
    }
    let (before, after) = (first.stat.as_ref()?.ok()?, last.stat.as_ref()?.ok()?);
    let delta = |a: Option<u64>, b: Option<u64>| b?.checked_sub(a?);
    let periods = delta(before.nr_periods, after.nr_periods)?;
    let throttled = delta(before.nr_throttled, after.nr_throttled)?;
    let wants_cpu = progress.cpu_ticks.is_some_and(|t| t > 0) || view.threads.iter().any(|t| t.on_cpu());
    if !wants_cpu || periods < MIN_PERIODS || (throttled as f64) <= periods as f64 * THROTTLED_SHARE {
        return None;
    }
    let throttled_ms = delta(before.throttled_usec, after.throttled_usec).map(|us| us / 1000);
    let cgroup = cgroup_ref(&last.at);
    let mut evidence = vec![
        Evidence::Cgroup(CgroupEvidence::Quota {
            cgroup: cgroup.clone(),
            quota_us,
            period_us: last.period_us,
        }),
        Evidence::Cgroup(CgroupEvidence::ThrottledPeriods {
            periods,
            throttled,
            throttled_ms,
            interval_ms: progress.interval_ms,
        }),
        Evidence::CpuTicks {
            ticks: progress.cpu_ticks,
            interval_ms: progress.interval_ms,
        },
    ];
    evidence.extend(view.threads_on_cpu());
    let claim = Claim::Throttled(Throttled {
        cgroup,
        quota_us,
        period_us: last.period_us,
        periods,
        throttled,
        throttled_ms,
        interval_ms: progress.interval_ms,
        container: container(view.last),
    });
    Some(Finding::new(Verdict::Throttled, claim, evidence))
}

/// The memory wait a thread of the view sleeps in (S or D), by its wchan
/// or its kernel stack.
fn memory_wait_of<'a>(thread: &'a super::view::ThreadView) -> Option<(MemoryWait, &'a str)> {
    if !matches!(thread.state, Some('S' | 'D')) {
        return None;
    }
    let stack = thread
        .thread
        .kernel_stack
        .as_ref()
        .and_then(Fact::ok)
        .map(Vec::as_slice);
    thread_memory_wait(thread.wchan, stack)
}

/// Whether a wchan is a memory wait: a D sleep there is memory's, not a
/// disk's.
pub(super) fn is_memory_wchan(wchan: Option<&str>) -> bool {
    wchan.and_then(cgroup::memory_wait).is_some()
}

/// Threads asleep in reclaim or memory throttling, a memory cgroup whose
/// events grew over the interval, or a v1 cgroup in OOM.
pub(super) fn memory_pressure(view: &View) -> Option<Finding> {
    let waiting: Vec<(&super::view::ThreadView, MemoryWait, &str)> = view
        .threads
        .iter()
        .filter_map(|t| {
            let (wait, function) = memory_wait_of(t)?;
            Some((t, wait, function))
        })
        .collect();
    let memory = cgroups(view.last).and_then(|c| c.memory.as_deref()?.ok());
    let earlier = match std::ptr::eq(view.first, view.last) {
        true => None,
        false => cgroups(view.first).and_then(|c| c.memory.as_deref()?.ok()),
    };
    let over_ms = view.progress.as_ref().map_or(0, |p| p.interval_ms);
    let grew = memory.zip(earlier).and_then(|(now, before)| {
        if now.at.path != before.at.path {
            return None;
        }
        let (now, before) = (now.events.as_ref()?, before.events.as_ref()?);
        let up = |a: Option<u64>, b: Option<u64>| b?.checked_sub(a?).filter(|&d| d > 0);
        let grew = MemoryEvents {
            high: up(before.high, now.high),
            max: up(before.max, now.max),
            oom: up(before.oom, now.oom),
            oom_kill: up(before.oom_kill, now.oom_kill),
        };
        (grew != MemoryEvents::default()).then_some((grew, over_ms))
    });
    let under_oom = memory.is_some_and(|m| m.under_oom == Some(true));
    if waiting.is_empty() && grew.is_none() && !under_oom {
        return None;
    }
    let first_wait = waiting.iter().map(|(_, w, _)| *w).min();
    let limit = memory.and_then(|m| {
        let bytes = |l: Option<Limit>| match l? {
            Limit::Bytes(n) => Some(n),
            Limit::Unlimited => None,
        };
        let high = bytes(m.high).map(|n| (LimitKind::High, n));
        let max = match m.at.version {
            1 => bytes(m.max).map(|n| (LimitKind::V1Limit, n)),
            _ => bytes(m.max).map(|n| (LimitKind::Max, n)),
        };
        match first_wait {
            Some(MemoryWait::OverHigh) => high.or(max),
            _ => max.or(high),
        }
    });
    let mut evidence: Vec<Evidence> = waiting
        .iter()
        .map(|(t, wait, function)| {
            Evidence::Cgroup(CgroupEvidence::MemoryWait {
                tid: t.tid(),
                comm: t.comm(),
                state: t.state.unwrap_or('?'),
                wait: *wait,
                function: function.to_string(),
            })
        })
        .collect();
    if let Some(m) = memory {
        evidence.push(Evidence::Cgroup(CgroupEvidence::MemoryUsage {
            cgroup: cgroup_ref(&m.at),
            current_bytes: m.current_bytes,
            max: m.max,
            high: m.high,
        }));
        if let Some(now) = &m.events {
            evidence.push(Evidence::Cgroup(CgroupEvidence::MemoryEvents {
                version: m.at.version,
                now: now.clone(),
                grew: grew.clone(),
            }));
        }
    }
    if under_oom {
        evidence.push(Evidence::Cgroup(CgroupEvidence::UnderOom));
    }
    evidence.extend(pressure_evidence(view));
    // The deciding thread: the first in the most telling wait.
    let deciding = waiting.iter().min_by_key(|(_, w, _)| *w);
    let claim = Claim::MemoryPressure(MemoryPressure {
        threads: waiting.len(),
        thread: deciding.map(|(t, _, _)| t.named(view.pid)),
        wait: deciding.map(|(_, w, f)| (*w, f.to_string())),
        cgroup: memory.map(|m| cgroup_ref(&m.at)),
        current_bytes: memory.and_then(|m| m.current_bytes),
        limit,
        grew,
        under_oom,
        container: container(view.last),
    });
    let finding = Finding::new(Verdict::MemoryPressure, claim, evidence);
    Some(match deciding {
        Some((t, _, _)) => finding.of_thread(t.tid()),
        None => finding,
    })
}

/// The pressure files read with the memory cgroup: memory's always, CPU's
/// and I/O's when anything stalled on them.
fn pressure_evidence(view: &View) -> Option<Evidence> {
    let pressure = cgroups(view.last)?.pressure.as_deref()?.ok()?;
    let stalls: Vec<Stall> = [
        ("memory", &pressure.memory),
        ("cpu", &pressure.cpu),
        ("io", &pressure.io),
    ]
    .into_iter()
    .filter_map(|(resource, psi)| {
        let psi = psi.ok()?;
        let some_avg10 = psi.some.as_ref().map(|l| l.avg10);
        let full_avg10 = psi.full.as_ref().map(|l| l.avg10);
        let stalled = some_avg10.unwrap_or(0.0) > 0.0 || full_avg10.unwrap_or(0.0) > 0.0;
        (resource == "memory" || stalled).then_some(Stall {
            resource,
            some_avg10,
            full_avg10,
        })
    })
    .collect();
    (!stalls.is_empty()).then(|| {
        Evidence::Cgroup(CgroupEvidence::Pressure {
            cgroup: cgroup_ref(&pressure.at),
            stalls,
        })
    })
}
