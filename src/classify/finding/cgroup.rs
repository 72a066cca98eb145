//! What the cgroup findings claim (frozen, throttled, memory-pressure),
//! and the cgroup facts behind them, as data.

use super::ThreadRef;
use crate::linux::cgroup::{Container, MemoryWait};
use crate::snapshot::{FreezerState, Limit, MemoryEvents};
use crate::text::TargetString;

/// A cgroup a finding names: the hierarchy, the path as `/proc/PID/cgroup`
/// gives it, and its directory on the collecting host.
#[derive(Clone, Debug, PartialEq)]
pub struct CgroupRef {
    pub version: u8,
    pub path: TargetString,
    pub dir: TargetString,
}

/// The process's cgroup is frozen, or being frozen.
#[derive(Clone, Debug, PartialEq)]
pub struct Frozen {
    pub cgroup: CgroupRef,
    /// `Frozen` or `Freezing`.
    pub state: FreezerState,
    /// The directories whose freeze must be undone: the cgroups, from its
    /// own up, that asked for it (its own when that is not known).
    pub thaw: Vec<TargetString>,
    /// How long the cgroup has been frozen in all, when the kernel says
    /// (v2 `frozen_usec`, Linux 6.17+).
    pub frozen_for_ms: Option<u64>,
    pub container: Option<Container>,
}

/// The process wants CPU and its cgroup's quota (or an ancestor's) held it
/// back in most periods of the interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Throttled {
    /// The cgroup with the quota.
    pub cgroup: CgroupRef,
    pub quota_us: u64,
    pub period_us: Option<u64>,
    /// Periods with tasks wanting CPU over the interval, and of them those
    /// that ran out of quota.
    pub periods: u64,
    pub throttled: u64,
    /// How long its tasks were held back over the interval.
    pub throttled_ms: Option<u64>,
    pub interval_ms: u64,
    pub container: Option<Container>,
}

/// Threads held back by memory (reclaim, `memory.high` throttling, an
/// OOM), or the memory cgroup's events moving over the interval.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPressure {
    /// Threads asleep in a memory wait; the deciding one (in the most
    /// telling wait), its wait and the kernel function that says it.
    pub threads: usize,
    pub thread: Option<ThreadRef>,
    pub wait: Option<(MemoryWait, String)>,
    /// The memory cgroup, when it was read.
    pub cgroup: Option<CgroupRef>,
    pub current_bytes: Option<u64>,
    /// The limit that binds: `memory.high` for a thread throttled above
    /// it, `memory.max` (or the v1 limit) otherwise; `None` when there is
    /// none or it was not read.
    pub limit: Option<(LimitKind, u64)>,
    /// The events that grew over the interval (`None` for the others), and
    /// over how long.
    pub grew: Option<(MemoryEvents, u64)>,
    /// A v1 cgroup's OOM in progress (`under_oom 1`).
    pub under_oom: bool,
    pub container: Option<Container>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    /// v2 `memory.high`.
    High,
    /// v2 `memory.max`.
    Max,
    /// v1 `memory.limit_in_bytes`.
    V1Limit,
}

/// Cgroup facts behind a finding.
#[derive(Clone, Debug, PartialEq)]
pub enum CgroupEvidence {
    /// What the freezer file says: v1 `freezer.state`, v2 `cgroup.events`.
    FreezerState {
        cgroup: CgroupRef,
        state: FreezerState,
    },
    /// v2 `frozen_usec`, in all since the cgroup was made.
    FrozenFor(u64),
    /// A frozen task's state and wchan are what they were when it froze.
    StatesFrozen,
    Quota {
        cgroup: CgroupRef,
        quota_us: u64,
        period_us: Option<u64>,
    },
    /// `cpu.stat` over the interval.
    ThrottledPeriods {
        periods: u64,
        throttled: u64,
        throttled_ms: Option<u64>,
        interval_ms: u64,
    },
    /// A thread asleep in a memory wait, and the function that says it.
    MemoryWait {
        tid: i32,
        comm: Option<TargetString>,
        state: char,
        wait: MemoryWait,
        function: String,
    },
    MemoryUsage {
        cgroup: CgroupRef,
        current_bytes: Option<u64>,
        max: Option<Limit>,
        high: Option<Limit>,
    },
    /// `memory.events` (v1: `memory.failcnt` and `oom_control`) now, and
    /// what grew over the interval.
    MemoryEvents {
        version: u8,
        now: MemoryEvents,
        grew: Option<(MemoryEvents, u64)>,
    },
    UnderOom,
    /// The pressure files' avg10: the share of the last 10 s some (or all)
    /// of the cgroup's tasks were stalled, by resource.
    Pressure {
        cgroup: CgroupRef,
        stalls: Vec<Stall>,
    },
}

/// One pressure file's avg10s.
#[derive(Clone, Debug, PartialEq)]
pub struct Stall {
    pub resource: &'static str,
    pub some_avg10: Option<f64>,
    pub full_avg10: Option<f64>,
}
