//! The cgroup findings in words (frozen, throttled, memory-pressure), their
//! evidence, their next steps, and the container line of a report.

use super::units::{bytes, duration_ms, elapsed, thread_name};
use crate::classify::finding::*;
use crate::linux::cgroup::{Container, MemoryWait};
use crate::snapshot::{FreezerState, Limit, MemoryEvents};
use crate::text::TargetString;

/// "containerd 1a2b3c4d5e6f, pod 5f3c1a2e-…": the runtime and short id (the
/// first 12 hex digits, as `docker ps` shows it), and the pod's uid.
pub fn container(runtime: Option<&str>, id: Option<&str>, pod_uid: Option<&str>) -> String {
    let mut parts = Vec::new();
    match (runtime, id) {
        (Some(runtime), Some(id)) => parts.push(format!("{runtime} {}", short_id(id))),
        (None, Some(id)) => parts.push(format!("container {}", short_id(id))),
        _ => {}
    }
    if let Some(uid) = pod_uid {
        parts.push(format!("pod {uid}"));
    }
    parts.join(", ")
}

fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn path(p: &TargetString) -> String {
    p.escaped()
}

pub(super) fn frozen(f: &Frozen) -> String {
    let file = match (f.cgroup.version, f.state) {
        (1, FreezerState::Frozen) => "FROZEN (v1 freezer)",
        (1, _) => "FREEZING (v1 freezer)",
        (_, FreezerState::Frozen) => "frozen (v2 cgroup.freeze)",
        (_, _) => "being frozen (v2 cgroup.freeze)",
    };
    let cgroup = path(&f.cgroup.path);
    match f.state {
        FreezerState::Frozen => {
            format!("frozen: its cgroup {cgroup} is {file}")
        }
        _ => format!("being frozen: its cgroup {cgroup} is {file}, and not every task has stopped yet"),
    }
}

/// "5% of a CPU", "1.5 CPUs".
fn cpu_share(quota_us: u64, period_us: u64) -> String {
    let cpus = quota_us as f64 / period_us.max(1) as f64;
    match cpus {
        c if c < 0.01 => format!("{:.1}% of a CPU", c * 100.0),
        c if c < 1.0 => format!("{:.0}% of a CPU", c * 100.0),
        c if (c - 1.0).abs() < 0.005 => "1 CPU".to_string(),
        c => format!("{} CPUs", format!("{c:.2}").trim_end_matches('0').trim_end_matches('.')),
    }
}

/// "cpu.cfs_quota_us 5000 / 100000", "cpu.max 5000 100000".
fn quota_files(version: u8, quota_us: u64, period_us: Option<u64>) -> String {
    match (version, period_us) {
        (1, Some(period)) => format!("cpu.cfs_quota_us {quota_us} / {period}"),
        (1, None) => format!("cpu.cfs_quota_us {quota_us}"),
        (_, Some(period)) => format!("cpu.max {quota_us} {period}"),
        (_, None) => format!("cpu.max {quota_us}"),
    }
}

pub(super) fn throttled(t: &Throttled) -> String {
    let limited = match t.period_us {
        Some(period) => format!("limited to {}", cpu_share(t.quota_us, period)),
        None => "limited by a CPU quota".to_string(),
    };
    let held = t
        .throttled_ms
        .map(|ms| format!(", {} held back", duration_ms(ms)))
        .unwrap_or_default();
    format!(
        "{limited} ({}): throttled in {} of {} periods{held} over {}",
        quota_files(t.cgroup.version, t.quota_us, t.period_us),
        t.throttled,
        t.periods,
        duration_ms(t.interval_ms)
    )
}

fn memory_wait(wait: MemoryWait) -> &'static str {
    match wait {
        MemoryWait::OverHigh => "throttled for being above its cgroup's memory.high",
        MemoryWait::Oom => "waiting for its memory cgroup's out-of-memory to end",
        MemoryWait::CgroupReclaim => "reclaiming memory to stay within its cgroup's limit",
        MemoryWait::Reclaim => "stalled in memory reclaim",
    }
}

fn limit_name(kind: LimitKind) -> &'static str {
    match kind {
        LimitKind::High => "memory.high",
        LimitKind::Max => "memory.max",
        LimitKind::V1Limit => "memory.limit_in_bytes",
    }
}

/// "memory.high exceeded 37 times, 1 process OOM-killed"
fn events_grew(grew: &MemoryEvents, version: u8) -> String {
    let times = |n: u64| {
        if n == 1 {
            "1 time".to_string()
        } else {
            format!("{n} times")
        }
    };
    let mut parts = Vec::new();
    if let Some(n) = grew.high {
        parts.push(format!("memory.high exceeded {}", times(n)));
    }
    if let Some(n) = grew.max {
        match version {
            1 => parts.push(format!("the limit hit {} (memory.failcnt)", times(n))),
            _ => parts.push(format!("memory.max hit {}", times(n))),
        }
    }
    if let Some(n) = grew.oom {
        parts.push(format!("out of memory {}", times(n)));
    }
    if let Some(n) = grew.oom_kill {
        parts.push(match n {
            1 => "1 process OOM-killed".to_string(),
            n => format!("{n} processes OOM-killed"),
        });
    }
    parts.join(", ")
}

pub(super) fn memory_pressure(m: &MemoryPressure) -> String {
    let version = m.cgroup.as_ref().map_or(2, |c| c.version);
    let usage = match (&m.cgroup, m.current_bytes, m.limit) {
        (Some(c), Some(current), Some((kind, limit))) => format!(
            ": its cgroup {} uses {} of its {} {}",
            path(&c.path),
            bytes(current),
            limit_name(kind),
            bytes(limit)
        ),
        (Some(c), Some(current), None) => format!(": its cgroup {} uses {}", path(&c.path), bytes(current)),
        _ => String::new(),
    };
    let grew = m
        .grew
        .as_ref()
        .map(|(grew, over)| format!("; over {}: {}", duration_ms(*over), events_grew(grew, version)))
        .unwrap_or_default();
    let oom = if m.under_oom {
        "; the cgroup is out of memory (under_oom)"
    } else {
        ""
    };
    match (m.thread, &m.wait) {
        (Some(thread), Some((wait, function))) => {
            let others = match m.threads {
                0 | 1 => String::new(),
                2 => ", and 1 more thread".to_string(),
                n => format!(", and {} more threads", n - 1),
            };
            format!(
                "{} {} (in {function}){others}{usage}{grew}{oom}",
                thread_name(thread),
                memory_wait(*wait)
            )
        }
        _ => {
            let cgroup = m
                .cgroup
                .as_ref()
                .map(|c| format!(" {}", path(&c.path)))
                .unwrap_or_default();
            format!("its memory cgroup{cgroup} is at its limits{grew}{oom}")
        }
    }
}

pub(super) fn evidence(e: &CgroupEvidence) -> String {
    match e {
        CgroupEvidence::FreezerState { cgroup, state } => {
            let dir = path(&cgroup.dir);
            match (cgroup.version, state) {
                (1, FreezerState::Frozen) => format!("{dir}/freezer.state: FROZEN"),
                (1, FreezerState::Freezing) => format!("{dir}/freezer.state: FREEZING"),
                (1, FreezerState::Thawed) => format!("{dir}/freezer.state: THAWED"),
                (_, FreezerState::Frozen) => format!("{dir}/cgroup.events: frozen 1"),
                (_, _) => format!("{dir}/cgroup.freeze: 1, and cgroup.events: frozen 0"),
            }
        }
        CgroupEvidence::FrozenFor(ms) => format!(
            "cgroup.stat.local frozen_usec: frozen {} in all since the cgroup was made",
            elapsed(*ms)
        ),
        CgroupEvidence::StatesFrozen => "a frozen task keeps the state and wchan it had when it froze \
(D on current kernels, S in get_signal under the v2 freezer, R on older ones): its threads wait for the thaw, not in their wchans"
            .to_string(),
        CgroupEvidence::Quota {
            cgroup,
            quota_us,
            period_us,
        } => {
            let share = period_us.map(|p| format!(": {}", cpu_share(*quota_us, p))).unwrap_or_default();
            format!(
                "{} in {} ({}){share}",
                quota_files(cgroup.version, *quota_us, *period_us),
                path(&cgroup.path),
                path(&cgroup.dir)
            )
        }
        CgroupEvidence::ThrottledPeriods {
            periods,
            throttled,
            throttled_ms,
            interval_ms,
        } => format!(
            "cpu.stat over {}: nr_throttled {throttled} of nr_periods {periods}{}",
            duration_ms(*interval_ms),
            throttled_ms
                .map(|ms| format!(", {} throttled", duration_ms(ms)))
                .unwrap_or_default()
        ),
        CgroupEvidence::MemoryWait {
            tid,
            comm,
            state,
            wait,
            function,
        } => format!(
            "thread {tid} ({}) state {state} in {function}: {}",
            comm.as_ref().map(TargetString::escaped).unwrap_or_default(),
            memory_wait(*wait)
        ),
        CgroupEvidence::MemoryUsage {
            cgroup,
            current_bytes,
            max,
            high,
        } => {
            let limit = |name: &str, l: &Option<Limit>| match l {
                Some(Limit::Bytes(n)) => Some(format!("{name} {}", bytes(*n))),
                Some(Limit::Unlimited) => Some(format!("{name} unlimited")),
                None => None,
            };
            let max_name = if cgroup.version == 1 { "memory.limit_in_bytes" } else { "memory.max" };
            let limits: Vec<String> = [limit(max_name, max), limit("memory.high", high)]
                .into_iter()
                .flatten()
                .collect();
            format!(
                "memory cgroup {} (v{}): {} used{}",
                path(&cgroup.path),
                cgroup.version,
                current_bytes.map(bytes).unwrap_or_else(|| "? bytes".into()),
                if limits.is_empty() {
                    String::new()
                } else {
                    format!(", {}", limits.join(", "))
                }
            )
        }
        CgroupEvidence::MemoryEvents { version, now, grew } => {
            let over = grew.as_ref().map(|(_, ms)| duration_ms(*ms)).unwrap_or_default();
            let field = |name: &str, now: Option<u64>, grew: Option<u64>| {
                let now = now?;
                Some(match grew {
                    Some(d) => format!("{name} {now} (+{d} in {over})"),
                    None => format!("{name} {now}"),
                })
            };
            let g = grew.as_ref().map(|(g, _)| g.clone()).unwrap_or_default();
            match version {
                1 => {
                    let fields: Vec<String> = [
                        field("memory.failcnt", now.max, g.max),
                        field("oom_kill", now.oom_kill, g.oom_kill),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    format!("memory events: {}", fields.join(", "))
                }
                _ => {
                    let fields: Vec<String> = [
                        field("high", now.high, g.high),
                        field("max", now.max, g.max),
                        field("oom", now.oom, g.oom),
                        field("oom_kill", now.oom_kill, g.oom_kill),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    format!("memory.events: {}", fields.join(", "))
                }
            }
        }
        CgroupEvidence::UnderOom => "memory.oom_control: under_oom 1: the cgroup is out of memory, and its tasks \
wait for memory to be freed (its OOM killer is disabled)"
            .to_string(),
        CgroupEvidence::Pressure { cgroup, stalls } => {
            let part = |name: &str, v: Option<f64>| v.map(|v| format!("{name} {v:.2}%"));
            let stalls: Vec<String> = stalls
                .iter()
                .map(|s| {
                    let parts: Vec<String> = [part("some", s.some_avg10), part("full", s.full_avg10)]
                        .into_iter()
                        .flatten()
                        .collect();
                    format!("{} {}", s.resource, parts.join(" "))
                })
                .collect();
            let whole = match cgroup.path.as_bytes() {
                b"/" => " (the whole host)",
                _ => "",
            };
            format!(
                "stalled over the last 10s in v2 cgroup {}{whole} (avg10 of *.pressure): {}",
                path(&cgroup.path),
                stalls.join("; ")
            )
        }
    }
}

/// The runtime's own command for a container, when it has one.
fn runtime_command(c: Option<&Container>, docker: &str) -> Option<String> {
    let c = c?;
    let id = short_id(c.id.as_deref()?);
    let runtime = c.runtime?.name();
    matches!(runtime, "docker" | "podman").then(|| format!("{runtime} {docker} {id}"))
}

pub(super) fn next_frozen(f: &Frozen) -> String {
    let thaw: Vec<String> = f
        .thaw
        .iter()
        .map(|dir| match f.cgroup.version {
            1 => format!("echo THAWED > {}/freezer.state", path(dir)),
            _ => format!("echo 0 > {}/cgroup.freeze", path(dir)),
        })
        .collect();
    let thaw = thaw.join(" and ");
    let thaw = match runtime_command(f.container.as_ref(), "unpause") {
        Some(unpause) => format!("{unpause} (or {thaw})"),
        None => thaw,
    };
    match f.state {
        FreezerState::Frozen => format!("thaw it if it should run: {thaw}"),
        _ => format!(
            "a task of its cgroup does not stop (one in uninterruptible sleep, usually): see which (whystuck --all); to give up the freeze: {thaw}"
        ),
    }
}

pub(super) fn next_throttled(t: &Throttled) -> String {
    let dir = path(&t.cgroup.dir);
    let raise = match (&t.container, t.cgroup.version) {
        (Some(Container { pod_uid: Some(_), .. }), _) => "the pod's resources.limits.cpu".to_string(),
        (c, version) => match runtime_command(c.as_ref(), "update --cpus N") {
            Some(update) => update,
            None if version == 1 => format!("echo QUOTA > {dir}/cpu.cfs_quota_us, or -1 for none"),
            None => format!("echo 'QUOTA PERIOD' > {dir}/cpu.max, or 'max' for none"),
        },
    };
    format!("its CPU quota holds it back: raise it ({raise}), or make it need less CPU")
}

pub(super) fn next_memory(m: &MemoryPressure) -> String {
    let Some(cgroup) = &m.cgroup else {
        return "memory is short: see what uses it (free -m; top -o RES) and what limits it".to_string();
    };
    let dir = path(&cgroup.dir);
    if m.under_oom {
        return format!(
            "its cgroup is out of memory with its OOM killer disabled: free memory in it, raise {dir}/memory.limit_in_bytes, or let the killer act (echo 0 > {dir}/memory.oom_control)"
        );
    }
    let raise = match &m.container {
        Some(Container { pod_uid: Some(_), .. }) => "the pod's resources.limits.memory".to_string(),
        c => match runtime_command(c.as_ref(), "update --memory SIZE") {
            Some(update) => update,
            None => match m.limit.map(|(kind, _)| kind) {
                Some(kind) => format!("{dir}/{}", limit_name(kind)),
                None => "its limit".to_string(),
            },
        },
    };
    format!("it is held at its memory limit: raise it ({raise}), or see what uses the memory ({dir}/memory.stat)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_shares_read_at_a_glance() {
        assert_eq!(cpu_share(5000, 100_000), "5% of a CPU");
        assert_eq!(cpu_share(500, 100_000), "0.5% of a CPU");
        assert_eq!(cpu_share(100_000, 100_000), "1 CPU");
        assert_eq!(cpu_share(150_000, 100_000), "1.5 CPUs");
        assert_eq!(cpu_share(200_000, 100_000), "2 CPUs");
    }

    #[test]
    fn container_lines() {
        let id = "1a2b3c4d5e6f".to_string() + &"0".repeat(52);
        let uid = "5f3c1a2e-7b8d-4e9f-a0b1-c2d3e4f5a6b7";
        assert_eq!(
            container(Some("containerd"), Some(&id), Some(uid)),
            "containerd 1a2b3c4d5e6f, pod 5f3c1a2e-7b8d-4e9f-a0b1-c2d3e4f5a6b7"
        );
        assert_eq!(container(None, Some(&id), None), "container 1a2b3c4d5e6f");
        assert_eq!(container(None, None, Some(uid)), format!("pod {uid}"));
    }
}
