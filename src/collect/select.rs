//! Choosing processes by what they are (`--all`, `--name`, `--user`): one
//! pass over /proc reading each process's stat, then the command lines of
//! those whose comm did not already match, in one batch through the read
//! helper. The directory each stat was read through, and the stat, are
//! handed to the collection ([`Prefetched`]): a scan's processes are not
//! opened and read twice.

use super::dir::ProcDir;
use super::helper::{self, HelperConfig};
use super::parse;
use super::visibility;
use crate::snapshot::{Stat, Visibility};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// The directories a scan opened and the stat it read through each, of the
/// processes it chose. A collection taking one sample uses both for the
/// first sample, the stat while it is fresh ([`FRESH`]); one taking two
/// uses the directories only (a CPU rate needs the first stat read when its
/// sample is taken).
#[derive(Default)]
pub struct Prefetched(Mutex<HashMap<i32, (ProcDir, Stat, Instant)>>);

/// How old a scan's stat may be and still stand for a sample's: a scan of
/// thousands of processes and their sampling take a few hundred ms; a
/// `--name` scan that waited for command lines reads the stat again.
const FRESH: std::time::Duration = std::time::Duration::from_millis(500);

impl Prefetched {
    /// `pid`'s directory, handed over once, and its stat when still fresh.
    pub(super) fn take(&self, pid: i32) -> Option<(ProcDir, Option<Stat>)> {
        let (dir, stat, read_at) = self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&pid)?;
        Some((dir, (read_at.elapsed() <= FRESH).then_some(stat)))
    }

    /// Everything, moved out of `self`.
    pub(super) fn drain(&self) -> Prefetched {
        Prefetched(Mutex::new(std::mem::take(
            &mut *self.0.lock().unwrap_or_else(PoisonError::into_inner),
        )))
    }
}

/// What a scan found: the pids chosen, how much of the host it could see,
/// and what it read of them.
pub struct Scanned {
    pub pids: Vec<i32>,
    pub visibility: Visibility,
    pub prefetched: Prefetched,
}

pub struct Filter<'a> {
    /// Matched against the comm, then the command line (arguments joined by spaces).
    pub name: Option<&'a regex::Regex>,
    /// The owner (real uid) of the process.
    pub uid: Option<u32>,
    pub kernel_threads: bool,
}

/// A read helper of this or an earlier whystuck run (one left behind stuck
/// on a dead mount is whystuck's, not the host's, problem): its comm, and
/// its executable when that can be read.
fn is_our_helper(root: &ProcDir, pid: i32, stat: &Stat) -> bool {
    if stat.comm.as_bytes() != helper::HELPER_COMM.as_bytes() {
        return false;
    }
    let ours = std::fs::read_link("/proc/self/exe").ok();
    match (root.readlink(&format!("{pid}/exe")), ours) {
        // A binary replaced since it started reads as "PATH (deleted)".
        (Ok(theirs), Some(ours)) => {
            let path = |link: &[u8]| link.strip_suffix(b" (deleted)").unwrap_or(link).to_vec();
            path(&theirs) == path(ours.as_os_str().as_encoded_bytes())
        }
        _ => true,
    }
}

/// fds left free while a scan holds directories: the collection reads each
/// process's files through them (a task directory and a file at a time, on
/// each thread), and opens netlink sockets and the read helper's pipes.
const FREE_FDS: u64 = 64;

/// How many directories a scan may hold: what the fd limit leaves once
/// the fds open now and [`FREE_FDS`] are set aside.
fn fds_to_hold(root: &ProcDir) -> usize {
    let limit =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    // Under a fake tree there is no `self`: a guess of a few.
    let open = root.numeric_entries("self/fd").map_or(16, |fds| fds.len() as u64);
    usize::try_from(limit.saturating_sub(open + FREE_FDS)).unwrap_or(usize::MAX)
}

/// whystuck's parent, its parent, and so on up.
fn own_ancestors(root: &ProcDir, own: i32) -> std::collections::HashSet<i32> {
    let mut found = std::collections::HashSet::new();
    let mut buf = Vec::new();
    let mut pid = own;
    while root.read(&format!("{pid}/stat"), &mut buf).is_ok() {
        match parse::stat(&buf).ok().and_then(|s| s.ppid).filter(|&p| p > 0) {
            Some(ppid) if found.insert(ppid) => pid = ppid,
            _ => break,
        }
    }
    found
}

/// Every process under the helper's root the filter admits, but whystuck
/// itself, and how much of the host the scan could see.
pub fn scan(helper: &HelperConfig, filter: &Filter, deadline: Instant) -> anyhow::Result<Scanned> {
    let proc_root = &helper.proc_root;
    let root =
        ProcDir::open_root(proc_root).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", proc_root.display()))?;
    let own = std::process::id() as i32;
    let mut buf = Vec::new();
    let mut chosen = Vec::new();
    // (pid, start time) whose command line decides.
    let mut undecided: Vec<(i32, Option<u64>)> = Vec::new();
    let (mut unreadable, mut visible_threads) = (0, 0);
    // Only a --name match looks at command lines, which ancestors share.
    let ancestors = filter.name.map(|_| own_ancestors(&root, own)).unwrap_or_default();
    let mut opened = HashMap::new();
    let holdable = fds_to_hold(&root);
    for pid in root.numeric_entries(".")? {
        // Through the directory the collection will hold, while fds are to
        // spare; else by path, and the collection opens it.
        let (dir, read) = match opened.len() < holdable {
            true => match root.open_dir(&pid.to_string()) {
                Ok(dir) => {
                    let read = dir.read("stat", &mut buf);
                    (Some(dir), read)
                }
                Err(e) => (None, Err(e)),
            },
            false => (None, root.read(&format!("{pid}/stat"), &mut buf)),
        };
        if let Err(e) = read {
            match e.raw_os_error() {
                // Listed but refused: hidepid=noaccess.
                Some(libc::EPERM | libc::EACCES) => unreadable += 1,
                // Out of fds: not known to be filtered out, so chosen, and
                // reported for what could not be read.
                Some(libc::EMFILE | libc::ENFILE) if filter.name.is_none() && filter.uid.is_none() => chosen.push(pid),
                // Anything else: gone.
                _ => {}
            }
            continue;
        }
        let Ok(stat) = parse::stat(&buf) else { continue };
        visible_threads += stat.num_threads.and_then(|n| u64::try_from(n).ok()).unwrap_or(1);
        if pid == own || is_our_helper(&root, pid, &stat) {
            continue;
        }
        if stat.is_kernel_thread() && !filter.kernel_threads {
            continue;
        }
        if let Some(uid) = filter.uid {
            let owner = root
                .read(&format!("{pid}/status"), &mut buf)
                .ok()
                .and_then(|()| parse::status(&buf).uid);
            if owner.map(|u| u[0]) != Some(uid) {
                continue;
            }
        }
        match filter.name {
            // An ancestor's command line holds whystuck's own arguments
            // (`sh -c "whystuck --name agent"`): only its comm counts.
            Some(name) if !name.is_match(&stat.comm.lossy()) => {
                if !ancestors.contains(&pid) {
                    undecided.push((pid, stat.starttime));
                }
            }
            _ => chosen.push(pid),
        }
        if let Some(dir) = dir {
            opened.insert(pid, (dir, stat, Instant::now()));
        }
    }
    if let Some(name) = filter.name {
        let cmdlines = helper::CmdlineReader::new(helper.clone(), true).read(&undecided, deadline);
        for ((pid, _), cmdline) in undecided.iter().zip(cmdlines) {
            let matches = cmdline.is_ok_and(|bytes| {
                let args: Vec<String> = parse::cmdline(&bytes).iter().map(|a| a.lossy().into_owned()).collect();
                name.is_match(&args.join(" "))
            });
            if matches {
                chosen.push(*pid);
            }
        }
        chosen.sort_unstable();
    }
    let hidepid = visibility::restriction(&root, proc_root);
    let visibility = Visibility {
        hidepid: hidepid.map(|h| h.name().to_string()),
        unreadable_processes: unreadable,
        hidden_threads: hidepid
            .filter(|h| h.hides())
            .and_then(|_| visibility::hidden_threads(&root, visible_threads)),
        vanished: 0,
    };
    // Kept for the chosen only.
    let kept: std::collections::HashSet<i32> = chosen.iter().copied().collect();
    opened.retain(|pid, _| kept.contains(pid));
    Ok(Scanned {
        pids: chosen,
        visibility,
        prefetched: Prefetched(Mutex::new(opened)),
    })
}
