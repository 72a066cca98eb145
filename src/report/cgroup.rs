//! A process's container and cgroups as the report gives them: `container`
//! on every row, `cgroup` in the detail (what was read: its cgroups, and
//! where it mattered whether it is frozen, the CPU quota over it, its
//! memory and pressure), and what of that could not be read.

use super::detail::seconds;
use crate::linux::cgroup::{membership, Container};
use crate::snapshot::*;
use crate::text::TargetString;
use serde::Serialize;

/// The container a process is in, and its Kubernetes pod.
#[derive(Serialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct ContainerReport {
    /// `docker`, `containerd`, `cri-o` or `podman`; `null` for a container
    /// id the path names without a runtime (the cgroupfs driver).
    pub runtime: Option<&'static str>,
    /// The full container id (64 hex digits); `null` in a pod's own cgroup.
    pub id: Option<String>,
    pub pod_uid: Option<String>,
}

impl From<Container> for ContainerReport {
    fn from(c: Container) -> Self {
        ContainerReport {
            runtime: c.runtime.map(|r| r.name()),
            id: c.id,
            pod_uid: c.pod_uid,
        }
    }
}

/// The container of a record, from its last sample taken.
pub(super) fn container(record: &ProcessRecord) -> Option<ContainerReport> {
    let sample = record.last_taken()?;
    crate::classify::cgroup::container(sample).map(ContainerReport::from)
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct CgroupReport {
    /// `/proc/PID/cgroup`, a line per hierarchy (empty when unreadable:
    /// then under `unavailable`).
    pub paths: Vec<CgroupPathReport>,
    /// `null` when not read (a thawed root cgroup is read as thawed).
    pub freezer: Option<FreezerReport>,
    /// `null` when not read (one sample) or unreadable.
    pub cpu: Option<CpuLimitReport>,
    /// `null` unless a thread sleeps in reclaim (boxed, as the pressure:
    /// most processes of a scan have neither).
    pub memory: Option<Box<MemoryReport>>,
    pub pressure: Option<Box<PressureReport>>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct CgroupPathReport {
    /// 0 for the v2 hierarchy.
    pub hierarchy: u32,
    /// As the file lists them: `cpu,cpuacct`, `name=systemd`; `""` for v2.
    pub controllers: String,
    pub path: TargetString,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct FreezerReport {
    pub version: u8,
    pub path: TargetString,
    /// `thawed`, `freezing` or `frozen`.
    pub state: FreezerState,
    /// The directories whose freeze must be undone.
    pub frozen_by: Vec<TargetString>,
    /// v2 `frozen_usec`: frozen in all since the cgroup was made.
    pub frozen_seconds: Option<f64>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct CpuLimitReport {
    pub version: u8,
    /// The cgroup with the quota (the process's own when none has one).
    pub path: TargetString,
    /// `null`: no quota, there or above.
    pub quota_us: Option<u64>,
    pub period_us: Option<u64>,
    /// `cpu.stat` gained over the interval.
    pub periods_delta: Option<u64>,
    pub throttled_delta: Option<u64>,
    pub throttled_seconds_delta: Option<f64>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct MemoryReport {
    pub version: u8,
    pub path: TargetString,
    pub current_bytes: Option<u64>,
    /// `null` when there is none, or it was not read.
    pub max_bytes: Option<u64>,
    pub high_bytes: Option<u64>,
    pub events: Option<MemoryEvents>,
    /// What grew over the interval (`null` with one reading).
    pub events_delta: Option<MemoryEvents>,
    pub under_oom: Option<bool>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct PressureReport {
    pub path: TargetString,
    pub memory: Option<Psi>,
    pub cpu: Option<Psi>,
    pub io: Option<Psi>,
}

/// The cgroup detail of a process, from its first and last samples; `None`
/// when its cgroups were not read (snapshots before they were).
pub(super) fn cgroup(first: &Sample, last: &Sample) -> Option<CgroupReport> {
    let now = last.cgroups.as_deref()?;
    let before = first.cgroups.as_deref().filter(|_| !std::ptr::eq(first, last));
    let lines = now
        .membership
        .ok()
        .map(|raw| membership(raw.as_bytes()).unwrap_or_default());
    let paths = lines
        .unwrap_or_default()
        .iter()
        .map(|l| CgroupPathReport {
            hierarchy: l.hierarchy,
            controllers: l.controllers.to_string(),
            path: TargetString::new(l.path),
        })
        .collect();
    let freezer = now.freezer.as_ref().and_then(Fact::ok).map(|f| FreezerReport {
        version: f.at.version,
        path: f.at.path.clone(),
        state: f.state,
        frozen_by: f.frozen_by.clone(),
        frozen_seconds: f.frozen_usec.as_ref().and_then(Fact::ok).map(|us| seconds(us / 1000)),
    });
    // The counters are read again only where the first reading found a
    // quota: the second sample's, or the first's.
    let cpu_now = now.cpu.as_ref().and_then(Fact::ok);
    let cpu_before = before.and_then(|b| b.cpu.as_ref()?.ok());
    let cpu = cpu_now.or(cpu_before).map(|c| {
        let stat = |c: Option<&CpuLimit>| c.and_then(|c| c.stat.as_ref()?.ok().cloned());
        let (a, b) = (stat(cpu_before), stat(cpu_now));
        let delta = |f: fn(&CpuStat) -> Option<u64>| f(b.as_ref()?)?.checked_sub(f(a.as_ref()?)?);
        CpuLimitReport {
            version: c.at.version,
            path: c.at.path.clone(),
            quota_us: c.quota_us,
            period_us: c.period_us,
            periods_delta: delta(|s| s.nr_periods),
            throttled_delta: delta(|s| s.nr_throttled),
            throttled_seconds_delta: delta(|s| s.throttled_usec).map(|us| seconds(us / 1000)),
        }
    });
    let memory = now.memory.as_deref().and_then(Fact::ok).map(|m| {
        let earlier = before.and_then(|b| b.memory.as_deref()?.ok()?.events.clone());
        let bytes = |l: Option<Limit>| match l? {
            Limit::Bytes(n) => Some(n),
            Limit::Unlimited => None,
        };
        Box::new(MemoryReport {
            version: m.at.version,
            path: m.at.path.clone(),
            current_bytes: m.current_bytes,
            max_bytes: bytes(m.max),
            high_bytes: bytes(m.high),
            events_delta: m.events.as_ref().zip(earlier).map(|(now, before)| {
                let d = |a: Option<u64>, b: Option<u64>| b?.checked_sub(a?);
                MemoryEvents {
                    high: d(before.high, now.high),
                    max: d(before.max, now.max),
                    oom: d(before.oom, now.oom),
                    oom_kill: d(before.oom_kill, now.oom_kill),
                }
            }),
            events: m.events.clone(),
            under_oom: m.under_oom,
        })
    });
    let pressure = now.pressure.as_deref().and_then(Fact::ok).map(|p| {
        Box::new(PressureReport {
            path: p.at.path.clone(),
            memory: p.memory.ok().cloned(),
            cpu: p.cpu.ok().cloned(),
            io: p.io.ok().cloned(),
        })
    });
    Some(CgroupReport {
        paths,
        freezer,
        cpu,
        memory,
        pressure,
    })
}

/// What of a sample's cgroups could not be read, for `unavailable`.
pub(super) fn unavailable(sample: &Sample, mut push: impl FnMut(&str, &Reason)) {
    let Some(cgroups) = sample.cgroups.as_deref() else {
        return;
    };
    if let Some(reason) = cgroups.membership.reason() {
        push("cgroup", reason);
    }
    let parts = [
        ("cgroup freezer", cgroups.freezer.as_ref().and_then(Fact::reason)),
        ("cpu cgroup", cgroups.cpu.as_ref().and_then(Fact::reason)),
        ("memory cgroup", cgroups.memory.as_deref().and_then(Fact::reason)),
        ("cgroup pressure", cgroups.pressure.as_deref().and_then(Fact::reason)),
    ];
    for (what, reason) in parts {
        if let Some(reason) = reason {
            push(what, reason);
        }
    }
    let freezer = cgroups.freezer.as_ref().and_then(Fact::ok);
    if let Some(reason) = freezer.and_then(|f| f.frozen_usec.as_ref()?.reason()) {
        push("cgroup frozen_usec", reason);
    }
    let cpu = cgroups.cpu.as_ref().and_then(Fact::ok);
    if let Some(reason) = cpu.and_then(|c| c.stat.as_ref()?.reason()) {
        push("cpu.stat", reason);
    }
    if let Some(pressure) = cgroups.pressure.as_deref().and_then(Fact::ok) {
        for (what, psi) in [
            ("memory.pressure", &pressure.memory),
            ("cpu.pressure", &pressure.cpu),
            ("io.pressure", &pressure.io),
        ] {
            if let Some(reason) = psi.reason() {
                push(what, reason);
            }
        }
    }
}
