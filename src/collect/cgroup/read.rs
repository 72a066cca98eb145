//! The facts of one cgroup, each read once a round: its freezer, the CPU
//! quota over it and its throttling, its memory and its pressure.

use super::{parse, CgroupReader, Located, Quota, Want};
use crate::linux::cgroup::Membership;
use crate::snapshot::*;

impl CgroupReader {
    /// Whether the process is frozen, by either freezer: the v1 freezer
    /// hierarchy's, or v2's (every v2 cgroup has `cgroup.freeze`).
    pub(super) fn freezer(&mut self, lines: &[Membership]) -> Fact<Freezer> {
        let mut thawed: Option<Freezer> = None;
        let mut failed: Option<Reason> = None;
        for want in [Want::V1("freezer"), Want::V2] {
            let Some(line) = want.line(lines) else { continue };
            match self.freezer_in(line, want) {
                Ok(freezer) if freezer.state != FreezerState::Thawed => return Fact::Ok(freezer),
                Ok(freezer) => {
                    thawed.get_or_insert(freezer);
                }
                // A hierarchy not mounted here is one nobody here freezes
                // with: the other one says. Any other failure outweighs it.
                Err(reason) => {
                    if failed.as_ref().is_none_or(|f| f.kind == ReasonKind::NotSupported) {
                        failed = Some(reason);
                    }
                }
            }
        }
        match (thawed, failed) {
            (Some(freezer), Some(reason)) if reason.kind == ReasonKind::NotSupported => Fact::Ok(freezer),
            (_, Some(reason)) => Fact::Unavailable(reason),
            (Some(freezer), None) => Fact::Ok(freezer),
            (None, None) => Fact::Unavailable(Reason::new(
                ReasonKind::NotSupported,
                "in neither a v1 freezer nor a v2 cgroup",
            )),
        }
    }

    fn freezer_in(&mut self, line: &Membership, want: Want) -> Result<Freezer, Reason> {
        let located = self.locate(line, want)?;
        let key = (located.mount, located.rel.clone());
        if let Some(cached) = self.cache.freezer.get(&key) {
            return cached.clone();
        }
        let freezer = self.read_freezer(&located, want);
        self.cache.freezer.insert(key, freezer.clone());
        freezer
    }

    fn read_freezer(&mut self, located: &Located, want: Want) -> Result<Freezer, Reason> {
        let at = self.at(located);
        let mount = located.mount;
        let mut freezer = Freezer {
            at,
            state: FreezerState::Thawed,
            frozen_by: Vec::new(),
            frozen_usec: None,
        };
        // A hierarchy's root cgroup cannot be frozen (it has no files to).
        if located.rel.is_empty() && self.mounts()[mount].mounted.root == b"/" {
            return Ok(freezer);
        }
        let rel = located.rel.as_str();
        let asked = match want {
            Want::V1(_) => {
                freezer.state = self.file(mount, rel, "freezer.state", parse::freezer_state)?;
                "freezer.self_freezing"
            }
            Want::V2 => {
                // A kernel before 5.2 has no v2 freezer: no `frozen` line.
                let frozen = self.file(mount, rel, "cgroup.events", |b| Ok(parse::keyed(b, "frozen")))?;
                freezer.state = match frozen {
                    None => return Ok(freezer),
                    Some(1) => FreezerState::Frozen,
                    Some(_) => match self.file(mount, rel, "cgroup.freeze", parse::number)? {
                        1 => FreezerState::Freezing,
                        _ => FreezerState::Thawed,
                    },
                };
                "cgroup.freeze"
            }
        };
        if freezer.state == FreezerState::Thawed {
            return Ok(freezer);
        }
        for ancestor in self_and_ancestors(rel) {
            if self.file(mount, ancestor, asked, parse::number) == Ok(1) {
                let at = self.at(&Located {
                    mount,
                    rel: ancestor.to_string(),
                });
                freezer.frozen_by.push(at.dir);
            }
        }
        if matches!(want, Want::V2) && freezer.state == FreezerState::Frozen {
            let usec = self.file(mount, rel, "cgroup.stat.local", |b| {
                parse::keyed(b, "frozen_usec").ok_or_else(|| "no frozen_usec line".to_string())
            });
            freezer.frozen_usec = Some(match usec {
                Ok(usec) => Fact::Ok(usec),
                Err(reason) => Fact::Unavailable(reason),
            });
        }
        Ok(freezer)
    }

    /// Where the process's cgroup for `controller` is: in the v1 hierarchy
    /// that has it, else in v2; the first found wins over a failure.
    fn controller(&self, lines: &[Membership], controller: &'static str) -> Result<(Want, Located), Reason> {
        [Want::V1(controller), Want::V2]
            .into_iter()
            .filter_map(|want| Some((want, want.line(lines)?)))
            .map(|(want, line)| Ok((want, self.locate(line, want)?)))
            .reduce(|first, second| first.or(second))
            .unwrap_or_else(|| {
                Err(Reason::new(
                    ReasonKind::NotSupported,
                    format!("in no {controller} cgroup"),
                ))
            })
    }

    /// The CPU quota over the process: its own cgroup's, or the nearest
    /// ancestor's (a parent's quota holds back its whole subtree), and
    /// that cgroup's `cpu.stat`.
    pub(super) fn cpu(&mut self, lines: &[Membership]) -> Fact<CpuLimit> {
        let (want, located) = match self.controller(lines, "cpu") {
            Ok(found) => found,
            Err(reason) => return Fact::Unavailable(reason),
        };
        let mount = located.mount;
        let mut limit = CpuLimit {
            at: self.at(&located),
            quota_us: None,
            period_us: None,
            stat: None,
        };
        for ancestor in self_and_ancestors(&located.rel) {
            let quota = match self.quota(mount, ancestor, want) {
                Ok(quota) => quota,
                Err(reason) => return Fact::Unavailable(reason),
            };
            let Some((quota_us, period_us)) = quota else { continue };
            let at = Located {
                mount,
                rel: ancestor.to_string(),
            };
            limit.at = self.at(&at);
            limit.quota_us = Some(quota_us);
            limit.period_us = period_us;
            limit.stat = Some(self.cpu_stat(mount, ancestor, want));
            break;
        }
        Fact::Ok(limit)
    }

    /// A cgroup's own quota and period; `None` when it has none (or no
    /// cpu controller: a v2 cgroup without `cpu.max`).
    fn quota(&mut self, mount: usize, rel: &str, want: Want) -> Result<Option<Quota>, Reason> {
        let key = (mount, rel.to_string());
        if let Some(cached) = self.cache.quota.get(&key) {
            return cached.clone();
        }
        let quota = match want {
            Want::V1(_) => match self.file(mount, rel, "cpu.cfs_quota_us", parse::number) {
                Ok(quota) if quota > 0 => {
                    let period = self.file(mount, rel, "cpu.cfs_period_us", parse::number).ok();
                    Ok(Some((quota as u64, period.and_then(|p| u64::try_from(p).ok()))))
                }
                Ok(_) => Ok(None),
                Err(reason) => Err(reason),
            },
            Want::V2 => match self.file(mount, rel, "cpu.max", parse::cpu_max) {
                Ok((quota, period)) => Ok(quota.map(|q| (q, Some(period)))),
                Err(reason) if reason.kind == ReasonKind::NotSupported => Ok(None),
                Err(reason) => Err(reason),
            },
        };
        self.cache.quota.insert(key, quota.clone());
        quota
    }

    fn cpu_stat(&mut self, mount: usize, rel: &str, want: Want) -> Fact<CpuStat> {
        let key = (mount, rel.to_string());
        if let Some(cached) = self.cache.cpu_stat.get(&key) {
            return cached.clone();
        }
        let v1 = matches!(want, Want::V1(_));
        let stat = self.file(mount, rel, "cpu.stat", |b| {
            Ok(CpuStat {
                nr_periods: parse::keyed(b, "nr_periods"),
                nr_throttled: parse::keyed(b, "nr_throttled"),
                throttled_usec: match v1 {
                    true => parse::keyed(b, "throttled_time").map(|ns| ns / 1000),
                    false => parse::keyed(b, "throttled_usec"),
                },
            })
        });
        let stat = fact(stat);
        self.cache.cpu_stat.insert(key, stat.clone());
        stat
    }

    /// The process's memory cgroup: v1's memory hierarchy, or v2's.
    pub(super) fn memory(&mut self, lines: &[Membership]) -> Fact<MemoryCgroup> {
        let (want, located) = match self.controller(lines, "memory") {
            Ok(found) => found,
            Err(reason) => return Fact::Unavailable(reason),
        };
        let key = (located.mount, located.rel.clone());
        if let Some(cached) = self.cache.memory.get(&key) {
            return cached.clone();
        }
        let memory = fact(self.read_memory(&located, want));
        self.cache.memory.insert(key, memory.clone());
        memory
    }

    fn read_memory(&mut self, located: &Located, want: Want) -> Result<MemoryCgroup, Reason> {
        let (mount, rel) = (located.mount, located.rel.as_str());
        let bytes = |b: &[u8]| parse::number(b).map(|n| n.max(0) as u64);
        let memory = match want {
            Want::V1(_) => {
                let oom = self.file(mount, rel, "memory.oom_control", |b| {
                    Ok((parse::keyed(b, "under_oom"), parse::keyed(b, "oom_kill")))
                });
                let (under_oom, oom_kill) = oom.unwrap_or((None, None));
                MemoryCgroup {
                    at: self.at(located),
                    current_bytes: Some(self.file(mount, rel, "memory.usage_in_bytes", bytes)?),
                    max: self.file(mount, rel, "memory.limit_in_bytes", parse::limit).ok(),
                    high: None,
                    events: Some(MemoryEvents {
                        high: None,
                        max: self.file(mount, rel, "memory.failcnt", bytes).ok(),
                        oom: None,
                        oom_kill,
                    }),
                    under_oom: under_oom.map(|u| u != 0),
                }
            }
            Want::V2 => MemoryCgroup {
                at: self.at(located),
                current_bytes: Some(self.file(mount, rel, "memory.current", bytes)?),
                max: self.file(mount, rel, "memory.max", parse::limit).ok(),
                high: self.file(mount, rel, "memory.high", parse::limit).ok(),
                events: self
                    .file(mount, rel, "memory.events", |b| {
                        Ok(MemoryEvents {
                            high: parse::keyed(b, "high"),
                            max: parse::keyed(b, "max"),
                            oom: parse::keyed(b, "oom"),
                            oom_kill: parse::keyed(b, "oom_kill"),
                        })
                    })
                    .ok(),
                under_oom: None,
            },
        };
        Ok(memory)
    }

    /// Pressure stall information of the process's v2 cgroup.
    pub(super) fn pressure(&mut self, lines: &[Membership]) -> Fact<Pressure> {
        let Some(line) = Want::V2.line(lines) else {
            return Fact::Unavailable(Reason::new(ReasonKind::NotSupported, "in no v2 cgroup"));
        };
        let located = match self.locate(line, Want::V2) {
            Ok(located) => located,
            Err(reason) => return Fact::Unavailable(reason),
        };
        let key = (located.mount, located.rel.clone());
        if let Some(cached) = self.cache.pressure.get(&key) {
            return cached.clone();
        }
        let (mount, rel) = (located.mount, located.rel.as_str());
        let pressure = Fact::Ok(Pressure {
            at: self.at(&located),
            memory: fact(self.file(mount, rel, "memory.pressure", parse::psi)),
            cpu: fact(self.file(mount, rel, "cpu.pressure", parse::psi)),
            io: fact(self.file(mount, rel, "io.pressure", parse::psi)),
        });
        self.cache.pressure.insert(key, pressure.clone());
        pressure
    }
}

fn fact<T>(result: Result<T, Reason>) -> Fact<T> {
    match result {
        Ok(value) => Fact::Ok(value),
        Err(reason) => Fact::Unavailable(reason),
    }
}

/// `a/b/c`, `a/b`, `a`, then the mount's own directory (`""`).
fn self_and_ancestors(rel: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(rel);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current {
            "" => None,
            c => Some(c.rsplit_once('/').map_or("", |(parent, _)| parent)),
        };
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroup_and_its_ancestors_up_to_the_mount() {
        assert_eq!(
            self_and_ancestors("a/b/c").collect::<Vec<_>>(),
            ["a/b/c", "a/b", "a", ""]
        );
        assert_eq!(self_and_ancestors("").collect::<Vec<_>>(), [""]);
    }
}
