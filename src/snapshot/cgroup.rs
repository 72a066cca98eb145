//! A process's cgroups, and what was read of them in one round: whether
//! it is frozen, the CPU quota over it and how often it was throttled, and
//! its memory cgroup's limits, events and pressure.
//!
//! Each part is read only where it can matter (see `collect::cgroup`):
//! `None` when it was not read, a [`Fact`] otherwise. Paths are as
//! `/proc/PID/cgroup` gives them (relative to the collecting run's cgroup
//! namespace), and the directory on the collecting host is kept beside
//! them, so that a next step can name the file.

use super::Fact;
use crate::text::TargetString;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct Cgroups {
    /// `/proc/PID/cgroup` as read, a line per hierarchy (see
    /// [`crate::linux::cgroup::membership`]): kept whole, one allocation.
    pub membership: Fact<TargetString>,
    /// Whether its cgroup is frozen (v1 freezer or v2 `cgroup.freeze`):
    /// read in the last round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freezer: Option<Fact<Freezer>>,
    /// The CPU quota over it and its throttling: read only with two samples,
    /// and in the second round only where the first found a quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Fact<CpuLimit>>,
    /// Its memory cgroup: read only when a thread sleeps in reclaim (and
    /// again in the round after, to see what changed). Boxed, as the
    /// pressure: most samples of a scan have neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Box<Fact<MemoryCgroup>>>,
    /// Pressure stall information of its v2 cgroup, read with `memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressure: Option<Box<Fact<Pressure>>>,
}

/// Where a cgroup fact was read: which hierarchy, which cgroup, and its
/// directory on the collecting host.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct CgroupAt {
    /// 1 or 2.
    pub version: u8,
    /// As `/proc/PID/cgroup` names it.
    pub path: TargetString,
    /// Where its files are: the hierarchy's mount point
    /// (`/sys/fs/cgroup/freezer`, `/sys/fs/cgroup`) and the path below the
    /// mount's root.
    pub dir: TargetString,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FreezerState {
    Thawed,
    /// Asked to freeze, not all of its tasks frozen yet.
    Freezing,
    Frozen,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct Freezer {
    pub at: CgroupAt,
    /// v1 `freezer.state`; v2 `frozen` of `cgroup.events`, `freezing` when
    /// its own `cgroup.freeze` is 1 but it is not frozen yet.
    pub state: FreezerState,
    /// The directories of the cgroups, from its own up, that asked for the
    /// freeze (v1 `freezer.self_freezing`, v2 `cgroup.freeze` 1): each must
    /// be thawed. Read when it is not thawed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frozen_by: Vec<TargetString>,
    /// v2 `frozen_usec` of `cgroup.stat.local` (Linux 6.17+): how long it
    /// has been frozen, in all, since it was created. Read when frozen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen_usec: Option<Fact<u64>>,
}

/// The CPU bandwidth limit over a process: its cgroup's quota, or the
/// nearest ancestor's.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct CpuLimit {
    /// The cgroup with the quota, or the process's own when none has one.
    pub at: CgroupAt,
    /// Microseconds of CPU per period (v1 `cpu.cfs_quota_us`, v2 the first
    /// field of `cpu.max`); `None`: no quota, here or above.
    pub quota_us: Option<u64>,
    pub period_us: Option<u64>,
    /// That cgroup's `cpu.stat`, when it has a quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<Fact<CpuStat>>,
}

/// Bandwidth counters of `cpu.stat`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, schemars::JsonSchema)]
pub struct CpuStat {
    /// Periods in which the cgroup had tasks wanting CPU.
    pub nr_periods: Option<u64>,
    /// Of them, those it ran out of quota in.
    pub nr_throttled: Option<u64>,
    /// How long its tasks were held back (v2 `throttled_usec`; v1
    /// `throttled_time`, nanoseconds, in microseconds here).
    pub throttled_usec: Option<u64>,
}

/// A memory limit: a number of bytes, or none (`max`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    Unlimited,
    Bytes(u64),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct MemoryCgroup {
    pub at: CgroupAt,
    /// v2 `memory.current`, v1 `memory.usage_in_bytes`.
    pub current_bytes: Option<u64>,
    /// v2 `memory.max`, v1 `memory.limit_in_bytes`.
    pub max: Option<Limit>,
    /// v2 `memory.high`.
    pub high: Option<Limit>,
    /// v2 `memory.events`; v1: `max` from `memory.failcnt`, `oom_kill`
    /// from `memory.oom_control`.
    pub events: Option<MemoryEvents>,
    /// v1 `under_oom` of `memory.oom_control`: an OOM in progress (for good
    /// when the cgroup's OOM killer is disabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under_oom: Option<bool>,
}

/// Counters of `memory.events`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq, schemars::JsonSchema)]
pub struct MemoryEvents {
    /// Times usage went over `memory.high` (and the tasks were throttled).
    pub high: Option<u64>,
    /// Times usage was about to go over `memory.max` (or the v1 limit).
    pub max: Option<u64>,
    /// Times the cgroup ran out of memory.
    pub oom: Option<u64>,
    /// Processes the OOM killer killed in it.
    pub oom_kill: Option<u64>,
}

/// Pressure stall information of a v2 cgroup (`memory.pressure`,
/// `cpu.pressure`, `io.pressure`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct Pressure {
    pub at: CgroupAt,
    pub memory: Fact<Psi>,
    pub cpu: Fact<Psi>,
    pub io: Fact<Psi>,
}

/// One pressure file: the share of time some (or all) of the cgroup's
/// tasks were stalled.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct Psi {
    pub some: Option<PsiLine>,
    pub full: Option<PsiLine>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct PsiLine {
    /// Percent of the last 10, 60 and 300 seconds.
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Microseconds stalled, in all.
    pub total_us: u64,
}
