//! A process's cgroups: `/proc/PID/cgroup` once per process per round, and
//! the cgroup file system's files once per distinct cgroup per round (many
//! processes share a cgroup: each round has its cache).
//!
//! The hierarchies are found in the proc root's `self/mountinfo` (v1
//! controllers each at their own mount, v2 at `/sys/fs/cgroup` or
//! `/sys/fs/cgroup/unified`), once per run. Under a fake `--proc-root DIR`
//! the mount points it lists are found below `DIR/..` (a fake tree's
//! `sys/fs/cgroup` beside its `proc`). Every file is opened with the
//! caller's own rights: whystuck's capabilities are for /proc.
//!
//! What is read, and when (a scan of thousands of processes pays only for
//! what can matter):
//! - whether it is frozen (v1 `freezer.state`; v2 `cgroup.events` and
//!   `cgroup.freeze`), in the last round, for a cgroup other than a root;
//!   who froze it and for how long only when it is not thawed;
//! - the CPU quota over it (its cgroup's or an ancestor's) and that
//!   cgroup's `cpu.stat`, only when the run takes two samples, and in the
//!   second only where the first found a quota;
//! - its memory cgroup's usage, limits and events, and its v2 cgroup's
//!   pressure, only when a thread sleeps in reclaim (by wchan or kernel
//!   stack), and again in the round after one did, to see the change.

pub mod parse;

use super::dir::ProcDir;
use super::reason::reason_for;
use crate::linux::cgroup::{membership, thread_memory_wait, Membership};
use crate::snapshot::*;
use crate::text::TargetString;
use parse::CgroupMount;
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What a round is, for what is read of a process's cgroups.
#[derive(Clone, Copy)]
pub(super) struct Round {
    /// The last round: whether the cgroup is frozen is read.
    pub last: bool,
    /// The run takes two samples: CPU throttling is read.
    pub two_samples: bool,
}

/// One mounted hierarchy.
struct Mount {
    mounted: CgroupMount,
    /// Held open for the run; why not, when it could not be opened.
    dir: Result<ProcDir, Reason>,
}

/// Reads cgroup facts for a run's samples.
pub(super) struct CgroupReader {
    /// Where mount points are found: `/`, or above a fake proc root.
    sysroot: PathBuf,
    /// The hierarchies, found at the first need; why none, when mountinfo
    /// could not be read.
    mounts: Option<Result<Vec<Mount>, Reason>>,
    cache: Cache,
    buf: Vec<u8>,
}

/// This round's reads, by hierarchy (index into the mounts) and directory
/// below its mount.
#[derive(Default)]
struct Cache {
    freezer: HashMap<(usize, String), Result<Freezer, Reason>>,
    quota: HashMap<(usize, String), Result<Option<Quota>, Reason>>,
    cpu_stat: HashMap<(usize, String), Fact<CpuStat>>,
    memory: HashMap<(usize, String), Fact<MemoryCgroup>>,
    pressure: HashMap<(usize, String), Fact<Pressure>>,
}

/// A cgroup's own CPU quota and period, in microseconds.
type Quota = (u64, Option<u64>);

/// A cgroup found in a hierarchy: the mount's index and the directory
/// below the mount (`""` for the mount's own).
struct Located {
    mount: usize,
    rel: String,
}

impl CgroupReader {
    /// For the proc root at `proc_root` (`root`, held open).
    pub fn new(proc_root: &Path, root: &ProcDir) -> CgroupReader {
        let sysroot = match root.is_proc_mount_root() {
            true => PathBuf::from("/"),
            false => proc_root.join(".."),
        };
        CgroupReader {
            sysroot,
            mounts: None,
            cache: Cache::default(),
            buf: Vec::with_capacity(1024),
        }
    }

    /// A new round: every cgroup file is read again.
    pub fn start_round(&mut self) {
        self.cache = Cache::default();
    }

    /// The `/proc/PID/cgroup` of the process whose directory is `dir`, as
    /// read: by any sampling thread, before [`CgroupReader::read`].
    pub fn read_membership(dir: &ProcDir, buf: &mut Vec<u8>) -> Result<TargetString, Reason> {
        match dir.read("cgroup", buf) {
            Ok(()) => Ok(TargetString::new(buf.as_slice())),
            Err(e) => Err(reason_for(&e)),
        }
    }

    /// The cgroups of a process whose `/proc/PID/cgroup` is as `read`,
    /// as this round reads them; `previous` is its earlier sample, in a
    /// second round. On the collecting thread only: the cgroup files are
    /// opened with the caller's rights, lowered for this thread alone.
    pub fn read(
        &mut self,
        root: &ProcDir,
        read: Result<TargetString, Reason>,
        sample: &Sample,
        previous: Option<&Sample>,
        round: Round,
    ) -> Box<Cgroups> {
        let raw = match read {
            Ok(raw) => raw,
            Err(reason) => return Box::new(Cgroups::unread(reason)),
        };
        let lines = match membership(raw.as_bytes()) {
            Ok(lines) => lines,
            Err(e) => {
                let reason = Reason::new(ReasonKind::Unparsable, format!("cgroup: {e}"));
                return Box::new(Cgroups::unread(reason));
            }
        };
        if self.mounts.is_none() {
            self.mounts = Some(self.discover(root));
        }
        let before = previous.and_then(|s| s.cgroups.as_deref());
        let had_quota = before
            .and_then(|c| c.cpu.as_ref()?.ok())
            .is_some_and(|c| c.quota_us.is_some());
        let freezer = round.last.then(|| self.freezer(&lines));
        let cpu = (round.two_samples && (previous.is_none() || had_quota)).then(|| self.cpu(&lines));
        let memory_wanted = in_memory_wait(sample) || before.is_some_and(|c| c.memory.is_some());
        let memory = memory_wanted.then(|| Box::new(self.memory(&lines)));
        let pressure = memory_wanted.then(|| Box::new(self.pressure(&lines)));
        Box::new(Cgroups {
            membership: Fact::Ok(raw),
            freezer,
            cpu,
            memory,
            pressure,
        })
    }

    fn discover(&mut self, root: &ProcDir) -> Result<Vec<Mount>, Reason> {
        root.read("self/mountinfo", &mut self.buf).map_err(|e| {
            let reason = reason_for(&e);
            Reason::new(reason.kind, format!("self/mountinfo: {}", reason.detail))
        })?;
        let mounts = parse::cgroup_mounts(&self.buf)
            .into_iter()
            .map(|mounted| {
                let relative = Path::new(std::ffi::OsStr::from_bytes(&mounted.point));
                let path = self.sysroot.join(relative.strip_prefix("/").unwrap_or(relative));
                let dir = ProcDir::open_as_caller(&path).map_err(|e| {
                    let reason = reason_for(&e);
                    let point = String::from_utf8_lossy(&mounted.point);
                    Reason::new(reason.kind, format!("the cgroup mount {point}: {}", reason.detail))
                });
                Mount { mounted, dir }
            })
            .collect();
        Ok(mounts)
    }

    fn mounts(&self) -> &[Mount] {
        match &self.mounts {
            Some(Ok(mounts)) => mounts,
            _ => &[],
        }
    }

    /// The cgroup of the membership line `line` in its mounted hierarchy.
    fn locate(&self, line: &Membership, want: Want) -> Result<Located, Reason> {
        if let Some(Err(reason)) = &self.mounts {
            return Err(reason.clone());
        }
        let matching = |m: &&Mount| match want {
            Want::V1(controller) => m.mounted.version == 1 && m.mounted.controllers.iter().any(|c| c == controller),
            Want::V2 => m.mounted.version == 2,
        };
        // A hierarchy mounted twice (a bind mount of a subtree): the first
        // mount whose root the path is below.
        let mounts = self.mounts();
        let candidates: Vec<(usize, &Mount)> = mounts.iter().enumerate().filter(|(_, m)| matching(m)).collect();
        if candidates.is_empty() {
            let detail = format!("no {} hierarchy is mounted here", want.name());
            return Err(Reason::new(ReasonKind::NotSupported, detail));
        }
        let path = line.path;
        let (index, rel) = candidates
            .iter()
            .find_map(|(i, m)| Some((*i, below(path, &m.mounted.root)?)))
            .ok_or_else(|| {
                let detail = format!(
                    "its {} cgroup {} is outside the mounted part of the hierarchy (outside this run's cgroup namespace)",
                    want.name(),
                    crate::text::escape_bytes(line.path)
                );
                Reason::new(ReasonKind::NotSupported, detail)
            })?;
        if let Err(reason) = &mounts[index].dir {
            return Err(reason.clone());
        }
        let rel = String::from_utf8(rel.to_vec())
            .map_err(|_| Reason::new(ReasonKind::Unparsable, "a cgroup path that is not UTF-8"))?;
        Ok(Located { mount: index, rel })
    }

    /// Where a cgroup's facts were read, as the snapshot says it.
    fn at(&self, located: &Located) -> CgroupAt {
        let mounted = &self.mounts()[located.mount].mounted;
        let mut path = mounted.root.clone();
        if !located.rel.is_empty() {
            if path.last() != Some(&b'/') {
                path.push(b'/');
            }
            path.extend_from_slice(located.rel.as_bytes());
        }
        let mut dir = mounted.point.clone();
        if !located.rel.is_empty() {
            dir.push(b'/');
            dir.extend_from_slice(located.rel.as_bytes());
        }
        CgroupAt {
            version: mounted.version,
            path: TargetString::new(path),
            dir: TargetString::new(dir),
        }
    }

    /// Read and parse `file` of the cgroup `rel` in mount `mount`.
    fn file<T>(
        &mut self,
        mount: usize,
        rel: &str,
        file: &str,
        parse: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Result<T, Reason> {
        let Some(Ok(mounts)) = &self.mounts else {
            return Err(Reason::new(ReasonKind::NotSupported, "no cgroup mounts"));
        };
        let dir = mounts[mount].dir.as_ref().map_err(Reason::clone)?;
        let at = match rel {
            "" => file.to_string(),
            rel => format!("{rel}/{file}"),
        };
        match dir.read_as_caller(&at, &mut self.buf) {
            Ok(()) => parse(&self.buf).map_err(|e| Reason::new(ReasonKind::Unparsable, format!("{file}: {e}"))),
            Err(e) => {
                let reason = reason_for(&e);
                let detail = match reason.kind {
                    ReasonKind::NotSupported => "not there".to_string(),
                    _ => reason.detail.into_owned(),
                };
                Err(Reason::new(reason.kind, format!("{file}: {detail}")))
            }
        }
    }
}

mod read;

/// Which hierarchy a fact is read from.
#[derive(Clone, Copy)]
enum Want {
    V1(&'static str),
    V2,
}

impl Want {
    fn name(self) -> &'static str {
        match self {
            Want::V1("freezer") => "v1 freezer",
            Want::V1("cpu") => "v1 cpu",
            Want::V1("memory") => "v1 memory",
            Want::V1(_) => "v1",
            Want::V2 => "v2",
        }
    }

    /// The membership line of this hierarchy.
    fn line<'a>(self, lines: &'a [Membership<'a>]) -> Option<&'a Membership<'a>> {
        lines.iter().find(|l| match self {
            Want::V1(controller) => l.hierarchy != 0 && l.has(controller),
            Want::V2 => l.hierarchy == 0,
        })
    }
}

/// `path` below the mount root `root`, without its leading slash; `None`
/// when it is not below it, or names `.` or `..` (outside this run's cgroup
/// namespace, the kernel writes `/../..`).
fn below<'a>(path: &'a [u8], root: &[u8]) -> Option<&'a [u8]> {
    let rest = path.strip_prefix(root.strip_suffix(b"/").unwrap_or(root))?;
    let rest = match rest {
        [] => rest,
        [b'/', rest @ ..] => rest,
        _ => return None, // `/docker/ab` is not below `/docker/a`
    };
    let rest = rest.strip_suffix(b"/").unwrap_or(rest);
    let odd = rest
        .split(|&b| b == b'/')
        .any(|c| c.is_empty() || c == b"." || c == b"..");
    (!odd || rest.is_empty()).then_some(rest)
}

impl Cgroups {
    /// Its `/proc/PID/cgroup` could not be read: nothing else is.
    fn unread(reason: Reason) -> Cgroups {
        Cgroups {
            membership: Fact::Unavailable(reason),
            freezer: None,
            cpu: None,
            memory: None,
            pressure: None,
        }
    }
}

/// Some thread sleeps in reclaim or memory throttling, by wchan or stack.
fn in_memory_wait(sample: &Sample) -> bool {
    sample.threads.ok().into_iter().flatten().any(|t| {
        t.stat.ok().is_some_and(|s| matches!(s.state, 'S' | 'D'))
            && thread_memory_wait(
                t.wchan.ok().map(String::as_str),
                t.kernel_stack.as_ref().and_then(Fact::ok).map(Vec::as_slice),
            )
            .is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_below_a_mount_root() {
        assert_eq!(below(b"/a/b", b"/"), Some(&b"a/b"[..]));
        assert_eq!(below(b"/", b"/"), Some(&b""[..]));
        assert_eq!(below(b"/docker/ab/x", b"/docker/ab"), Some(&b"x"[..]));
        assert_eq!(below(b"/docker/ab", b"/docker/ab"), Some(&b""[..]));
        assert_eq!(below(b"/docker/abc", b"/docker/ab"), None);
        assert_eq!(below(b"/other", b"/docker/ab"), None);
        assert_eq!(below(b"/../../x", b"/"), None, "outside the cgroup namespace");
        assert_eq!(below(b"/a/./b", b"/"), None);
    }
}
