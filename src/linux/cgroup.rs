//! What cgroup paths and kernel symbols say about a process's cgroups:
//! which container (and Kubernetes pod) a path names, and which kernel
//! functions are a thread held back by memory (reclaim, `memory.high`
//! throttling, a cgroup's OOM).
//!
//! Container runtimes name their cgroups in a few known shapes, by cgroup
//! driver (systemd's `*.scope` and `*.slice` units, or plain cgroupfs
//! directories):
//!
//! | runtime | systemd driver | cgroupfs driver |
//! |---|---|---|
//! | docker | `docker-<64 hex>.scope` | `/docker/<64 hex>` |
//! | containerd (CRI) | `cri-containerd-<64 hex>.scope` | `…:cri-containerd:<64 hex>`, or a bare `<64 hex>` under a pod |
//! | CRI-O | `crio-<64 hex>.scope` (not `crio-conmon-`) | `crio-<64 hex>` |
//! | podman | `libpod-<64 hex>.scope` (not `libpod-conmon-`) | `libpod-<64 hex>` |
//!
//! and a Kubernetes pod's uid is in `kubepods[-QOS]-pod<uid>.slice` (its
//! dashes written as underscores) or `/kubepods[/QOS]/pod<uid>/`. Inside a
//! cgroup namespace a container sees its own cgroup as `/`: no container.

/// One line of `/proc/PID/cgroup`: `hierarchy-ID:controller-list:path`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership<'a> {
    /// 0 for the v2 (unified) hierarchy.
    pub hierarchy: u32,
    /// The v1 controllers bound to the hierarchy, comma-separated (`cpu,cpuacct`,
    /// `name=systemd`); empty for v2.
    pub controllers: &'a str,
    pub path: &'a [u8],
}

impl Membership<'_> {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.split(',').any(|c| c == controller)
    }
}

/// The lines of a `/proc/PID/cgroup` file, borrowed from it (a scan holds
/// the file of every process, not its parts); an error names the first
/// line that is not one. A path may hold colons (containerd's do).
pub fn membership(raw: &[u8]) -> Result<Vec<Membership<'_>>, String> {
    raw.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut fields = line.splitn(3, |&b| b == b':');
            let (Some(id), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
                return Err(format!(
                    "not hierarchy:controllers:path: {:?}",
                    String::from_utf8_lossy(line)
                ));
            };
            Ok(Membership {
                hierarchy: std::str::from_utf8(id)
                    .ok()
                    .and_then(|id| id.parse().ok())
                    .ok_or("the hierarchy id is not a number")?,
                controllers: std::str::from_utf8(controllers).map_err(|_| "the controllers are not text")?,
                path,
            })
        })
        .collect()
}

/// A container runtime, as its cgroup names say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Docker,
    Containerd,
    CriO,
    Podman,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
        }
    }
}

/// The container a process is in, and its Kubernetes pod. A container id
/// under a pod without a runtime prefix (the cgroupfs driver) has no
/// runtime; a process in a pod's own cgroup has a pod and no container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub runtime: Option<Runtime>,
    /// The full id (64 hex digits).
    pub id: Option<String>,
    pub pod_uid: Option<String>,
}

/// The container named by the first of `paths` (the lines of
/// `/proc/PID/cgroup`, in any order) that names one; `None` for a process
/// in no container.
pub fn container<'a>(paths: impl IntoIterator<Item = &'a [u8]>) -> Option<Container> {
    let mut pod_only = None;
    for path in paths {
        let Ok(path) = std::str::from_utf8(path) else { continue };
        let found = container_of(path);
        match found {
            Some(Container { id: Some(_), .. }) => return found,
            Some(_) if pod_only.is_none() => pod_only = found,
            _ => {}
        }
    }
    pod_only
}

/// The container and pod one cgroup path names.
fn container_of(path: &str) -> Option<Container> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut pod_uid = None;
    let mut found: Option<(Option<Runtime>, String)> = None;
    for (i, part) in parts.iter().enumerate() {
        let before = if i > 0 { Some(parts[i - 1]) } else { None };
        if let Some(uid) = slice_pod(part).or_else(|| cgroupfs_pod(part, &parts[..i])) {
            pod_uid = Some(uid);
        }
        // The innermost container wins (docker in docker).
        if let Some(id) = named_container(part, before, pod_uid.is_some()) {
            found = Some(id);
        }
    }
    if found.is_none() && pod_uid.is_none() {
        return None;
    }
    let (runtime, id) = match found {
        Some((runtime, id)) => (runtime, Some(id)),
        None => (None, None),
    };
    Some(Container { runtime, id, pod_uid })
}

/// A container id in one path component: `docker-ID.scope`, `crio-ID`,
/// `…:cri-containerd:ID`, `ID` after `docker` or under a pod.
fn named_container(part: &str, before: Option<&str>, in_pod: bool) -> Option<(Option<Runtime>, String)> {
    const PREFIXES: [(&str, Runtime); 4] = [
        ("docker-", Runtime::Docker),
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::CriO),
        ("libpod-", Runtime::Podman),
    ];
    let unit = part.strip_suffix(".scope").unwrap_or(part);
    for (prefix, runtime) in PREFIXES {
        if let Some(id) = unit.strip_prefix(prefix).filter(|id| is_id(id)) {
            return Some((Some(runtime), id.to_string()));
        }
    }
    if let Some((_, id)) = part.rsplit_once(":cri-containerd:").filter(|(_, id)| is_id(id)) {
        return Some((Some(Runtime::Containerd), id.to_string()));
    }
    if is_id(part) {
        if before == Some("docker") {
            return Some((Some(Runtime::Docker), part.to_string()));
        }
        if in_pod {
            return Some((None, part.to_string()));
        }
    }
    None
}

/// 64 lowercase hex digits: a container id.
fn is_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `kubepods-burstable-pod1f2e_..._9a.slice` (the systemd driver): the uid,
/// its underscores dashes again.
fn slice_pod(part: &str) -> Option<String> {
    let unit = part.split(':').next()?.strip_suffix(".slice")?;
    if !unit.starts_with("kubepods") {
        return None;
    }
    let (_, uid) = unit.rsplit_once("-pod")?;
    let uid = uid.replace('_', "-");
    is_pod_uid(&uid).then_some(uid)
}

/// `pod1f2e...` under `kubepods` (the cgroupfs driver).
fn cgroupfs_pod(part: &str, before: &[&str]) -> Option<String> {
    let uid = part.strip_prefix("pod")?;
    (before.contains(&"kubepods") && is_pod_uid(uid)).then(|| uid.to_string())
}

/// A pod uid: a UUID (`8-4-4-4-12` hex digits), or the 32 hex digits a
/// static pod's hash is.
fn is_pod_uid(text: &str) -> bool {
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    let groups: Vec<&str> = text.split('-').collect();
    match groups.as_slice() {
        [a, b, c, d, e] => {
            [a.len(), b.len(), c.len(), d.len(), e.len()] == [8, 4, 4, 4, 12] && groups.iter().all(|g| hex(g))
        }
        [whole] => whole.len() == 32 && hex(whole),
        _ => false,
    }
}

/// Why a thread sleeping in the kernel is held back by memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemoryWait {
    /// Throttled for being above its cgroup's `memory.high`.
    OverHigh,
    /// Waiting for its cgroup's out-of-memory handling (a v1 cgroup with
    /// the OOM killer disabled waits here for good).
    Oom,
    /// Reclaiming its memory cgroup's pages to charge a new one.
    CgroupReclaim,
    /// In reclaim, or throttled there (the whole machine's, or any).
    Reclaim,
}

/// The memory wait a kernel function stands for (a wchan, or a kernel stack
/// frame: compiler suffixes and `+0x…` offsets are ignored).
pub fn memory_wait(symbol: &str) -> Option<MemoryWait> {
    let symbol = symbol.split('+').next().unwrap_or(symbol);
    Some(match super::wait::strip_wchan_suffix(symbol) {
        "mem_cgroup_handle_over_high" => MemoryWait::OverHigh,
        "mem_cgroup_oom_synchronize" | "mem_cgroup_out_of_memory" | "mem_cgroup_oom" => MemoryWait::Oom,
        "try_to_free_mem_cgroup_pages" | "try_charge_memcg" | "try_charge" | "mem_cgroup_charge" => {
            MemoryWait::CgroupReclaim
        }
        "throttle_direct_reclaim"
        | "reclaim_throttle"
        | "__perform_reclaim"
        | "try_to_free_pages"
        | "__alloc_pages_direct_reclaim"
        | "congestion_wait"
        | "wait_iff_congested" => MemoryWait::Reclaim,
        _ => return None,
    })
}

/// The memory wait a kernel stack shows (innermost frame first): the most
/// specific of its frames (a cgroup's reclaim over the throttling inside it).
pub fn stack_memory_wait<S: AsRef<str>>(frames: &[S]) -> Option<(MemoryWait, &str)> {
    frames
        .iter()
        .filter_map(|f| {
            let frame = f.as_ref();
            Some((memory_wait(frame)?, frame.split('+').next().unwrap_or(frame)))
        })
        .min_by_key(|(wait, _)| *wait)
}

/// The memory wait a sleeping thread is in, by its wchan or its kernel
/// stack, whichever says more; with the function that says it.
pub fn thread_memory_wait<'a, S: AsRef<str>>(
    wchan: Option<&'a str>,
    stack: Option<&'a [S]>,
) -> Option<(MemoryWait, &'a str)> {
    let by_wchan = wchan.and_then(|w| Some((memory_wait(w)?, super::wait::strip_wchan_suffix(w))));
    let by_stack = stack.and_then(|s| stack_memory_wait(s));
    match (by_wchan, by_stack) {
        (Some(w), Some(s)) => Some(if s.0 < w.0 { s } else { w }),
        (w, s) => w.or(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c2b3a5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";
    const UID: &str = "5f3c1a2e-7b8d-4e9f-a0b1-c2d3e4f5a6b7";

    fn found(path: &str) -> Option<(Option<&'static str>, Option<String>, Option<String>)> {
        container([path.as_bytes()]).map(|c| (c.runtime.map(Runtime::name), c.id, c.pod_uid))
    }

    #[test]
    fn each_runtime_in_its_real_path_shapes() {
        let uid_ = UID.replace('-', "_");
        let some = |runtime: Option<&'static str>, pod: bool| {
            Some((runtime, Some(ID.to_string()), pod.then(|| UID.to_string())))
        };
        let cases: Vec<(String, _)> = vec![
            (format!("/docker/{ID}"), some(Some("docker"), false)),
            (format!("/system.slice/docker-{ID}.scope"), some(Some("docker"), false)),
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope"),
                some(Some("containerd"), true),
            ),
            (
                format!("/kubepods.slice/kubepods-pod{uid_}.slice/cri-containerd-{ID}.scope"),
                some(Some("containerd"), true),
            ),
            (
                format!("/kubepods-besteffort-pod{uid_}.slice:cri-containerd:{ID}"),
                some(Some("containerd"), true),
            ),
            (format!("/kubepods/burstable/pod{UID}/{ID}"), some(None, true)),
            (format!("/kubepods/pod{UID}/{ID}"), some(None, true)),
            (
                format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/crio-{ID}.scope"),
                some(Some("cri-o"), true),
            ),
            (format!("/kubepods/besteffort/pod{UID}/crio-{ID}"), some(Some("cri-o"), true)),
            (format!("/machine.slice/libpod-{ID}.scope"), some(Some("podman"), false)),
            (format!("/machine.slice/libpod-{ID}.scope/container"), some(Some("podman"), false)),
            (
                format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
                some(Some("podman"), false),
            ),
            (format!("/libpod_parent/libpod-{ID}"), some(Some("podman"), false)),
            // A pod's own cgroup: a pod, no container.
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice"),
                Some((None, None, Some(UID.to_string()))),
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(found(&path), expected, "{path}");
        }
    }

    #[test]
    fn no_container_where_there_is_none() {
        let cases = [
            "/user.slice/user-1000.slice/session-3.scope".to_string(),
            "/system.slice/sshd.service".to_string(),
            "/".to_string(),
            String::new(),
            "/init.scope".to_string(),
            // The monitors beside the containers are not them.
            format!("/machine.slice/libpod-conmon-{ID}.scope"),
            format!("/system.slice/crio-conmon-{ID}.scope"),
            // Not 64 hex digits.
            "/docker/4f1c2b3a5d6e".to_string(),
            format!("/system.slice/docker-{}.scope", ID.to_uppercase()),
            // 64 hex digits with nothing to say whose.
            format!("/system.slice/{ID}"),
        ];
        for path in cases {
            assert_eq!(found(&path), None, "{path}");
        }
    }

    #[test]
    fn docker_in_docker_is_the_inner_container() {
        let inner = "b".repeat(64);
        assert_eq!(
            found(&format!("/docker/{ID}/docker/{inner}")).and_then(|c| c.1),
            Some(inner)
        );
    }

    #[test]
    fn any_line_may_name_it_the_first_container_wins_over_a_pod() {
        let uid_ = UID.replace('-', "_");
        let pod = format!("/kubepods.slice/kubepods-pod{uid_}.slice");
        let container_line = format!("{pod}/cri-containerd-{ID}.scope");
        let lines: [&[u8]; 3] = [b"/", pod.as_bytes(), container_line.as_bytes()];
        let c = container(lines).unwrap();
        assert_eq!(c.id.as_deref(), Some(ID));
        assert_eq!(c.pod_uid.as_deref(), Some(UID));
        assert_eq!(container([b"/".as_slice(), b"/user.slice"]), None);
    }

    #[test]
    fn membership_lines_of_v1_and_v2() {
        let buf = b"12:freezer:/wsprobe\n4:cpu,cpuacct:/system.slice/a.service\n1:name=systemd:/user.slice\n0::/user.slice/user-0.slice/session-1.scope\n";
        let lines = membership(buf).unwrap();
        assert_eq!(lines.len(), 4);
        assert_eq!((lines[0].hierarchy, lines[0].controllers), (12, "freezer"));
        assert!(lines[1].has("cpu") && lines[1].has("cpuacct") && !lines[1].has("cpuset"));
        assert!(lines[2].has("name=systemd"));
        assert_eq!((lines[3].hierarchy, lines[3].controllers), (0, ""));
        assert_eq!(lines[3].path, b"/user.slice/user-0.slice/session-1.scope");
        let colon = membership(b"0::/kubepods-pod1.slice:cri-containerd:ab\n").unwrap();
        assert_eq!(colon[0].path, b"/kubepods-pod1.slice:cri-containerd:ab");
        assert!(membership(b"garbage\n").is_err());
        assert!(membership(b"x::/\n").is_err());
        assert_eq!(membership(b"").unwrap(), []);
    }

    #[test]
    fn memory_waits_by_symbol_and_by_stack() {
        assert_eq!(memory_wait("mem_cgroup_handle_over_high"), Some(MemoryWait::OverHigh));
        assert_eq!(
            memory_wait("try_to_free_mem_cgroup_pages+0x10f/0x2a0"),
            Some(MemoryWait::CgroupReclaim)
        );
        assert_eq!(
            memory_wait("throttle_direct_reclaim.constprop.0"),
            Some(MemoryWait::Reclaim)
        );
        assert_eq!(memory_wait("mem_cgroup_oom_synchronize"), Some(MemoryWait::Oom));
        assert_eq!(memory_wait("hrtimer_nanosleep"), None);
        let stack = [
            "reclaim_throttle+0x9a/0x1f0",
            "shrink_node+0x2f1/0x700",
            "try_to_free_mem_cgroup_pages+0x10f/0x2a0",
            "try_charge_memcg+0x1a0/0x6c0",
        ];
        assert_eq!(
            stack_memory_wait(&stack),
            Some((MemoryWait::CgroupReclaim, "try_to_free_mem_cgroup_pages"))
        );
        assert_eq!(stack_memory_wait(&["pipe_read+0x1/0x2", "vfs_read+0x1/0x2"]), None);
    }
}
