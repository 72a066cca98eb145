//! The other end: who holds each pipe and socket the sampled processes
//! hold. The fd links of every process outside the snapshot are read once
//! per run (readlink only, never followed) into the [`EndIndex`]; after
//! that each new inode is a lookup.
//!
//! [`EndIndex`]: super::ends::EndIndex

use super::ends::end_inode;
use super::reason::{is_vanished, reason_for};
use super::run::Reader;
use crate::snapshot::*;
use crate::text::TargetString;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

#[derive(Default)]
pub(super) struct HolderSearch {
    /// Whether the processes outside the snapshot have had their fd links read.
    scanned: bool,
    /// Inodes whose holders are already in the snapshot.
    done: HashSet<u64>,
}

impl HolderSearch {
    /// Add the holders of every end the snapshot's processes hold that has
    /// not been looked up yet. `sampled` tells the pids in the snapshot.
    pub fn update(&mut self, reader: &mut Reader, sampled: &dyn Fn(i32) -> bool, snapshot: &mut Snapshot) {
        let wanted: BTreeSet<u64> = snapshot
            .processes
            .iter()
            .filter_map(|r| r.samples.last())
            .flat_map(end_inodes)
            .filter(|inode| !self.done.contains(inode))
            .collect();
        if wanted.is_empty() {
            return;
        }
        if !self.scanned {
            index_unsampled(reader, sampled, snapshot);
            self.scanned = true;
        }
        // Sampled processes answer from their samples; others are read.
        let mut comms: HashMap<i32, Option<TargetString>> = HashMap::new();
        let mut sampled_flags: HashMap<(i32, i32), Option<u32>> = HashMap::new();
        for record in &snapshot.processes {
            let Some(sample) = record.samples.last() else { continue };
            comms.insert(record.pid, sample.stat.ok().map(|s| s.comm.clone()));
            for fd in sample.fds.ok().into_iter().flatten() {
                sampled_flags.insert((record.pid, fd.fd), fd.info.ok().and_then(|i| i.flags));
            }
        }
        for inode in wanted {
            self.done.insert(inode);
            for (pid, fd) in reader.ends.holders(inode) {
                let flags = match sampled_flags.get(&(pid, fd)) {
                    Some(flags) => *flags,
                    None => reader.fd_flags(pid, fd),
                };
                let comm = comms
                    .entry(pid)
                    .or_insert_with(|| reader.relative(pid).stat.ok().map(|s| s.comm.clone()));
                snapshot.holders.push(Holder {
                    inode,
                    pid,
                    fd,
                    flags,
                    comm: comm.clone(),
                });
            }
        }
    }
}

/// The pipe and socket inodes a sample holds, and the inodes of the other
/// ends of its connected sockets.
fn end_inodes(sample: &Sample) -> Vec<u64> {
    let mut inodes: Vec<u64> = sample
        .fds
        .ok()
        .into_iter()
        .flatten()
        .filter(|fd| fd.info.ok().is_some()) // not the fds skipped in a lazy read
        .filter_map(|fd| end_inode(fd.target.as_bytes()))
        .collect();
    if let Some(sockets) = sample.sockets.ok() {
        inodes.extend(sockets.unix.iter().filter_map(|u| u.peer_inode));
        inodes.extend(sockets.tcp.iter().filter_map(|t| t.peer_inode));
    }
    inodes
}

/// Read the fd links of every process not in the snapshot into the index.
/// A process whose fds cannot be listed is recorded as unsearchable, never
/// skipped silently.
fn index_unsampled(reader: &mut Reader, sampled: &dyn Fn(i32) -> bool, snapshot: &mut Snapshot) {
    let mut path = String::new();
    for pid in reader.root.numeric_entries(".").unwrap_or_default() {
        if sampled(pid) {
            continue;
        }
        if reader.budget.out_of_time() {
            let comm = reader.relative(pid).stat.ok().map(|s| s.comm.clone());
            snapshot.unsearchable.push(Unsearchable {
                pid,
                comm,
                reason: reader.budget.spent(),
            });
            continue;
        }
        path.clear();
        let _ = write!(path, "{pid}/fd");
        let fds = match reader.root.numeric_entries(&path) {
            Ok(fds) => fds,
            Err(e) if is_vanished(&e) => continue,
            Err(e) => {
                let comm = reader.relative(pid).stat.ok().map(|s| s.comm.clone());
                snapshot.unsearchable.push(Unsearchable {
                    pid,
                    comm,
                    reason: reason_for(&e),
                });
                continue;
            }
        };
        let mut links = Vec::with_capacity(fds.len());
        for fd in fds {
            path.clear();
            let _ = write!(path, "{pid}/fd/{fd}");
            if let Ok(target) = reader.root.readlink(&path) {
                links.push((fd, target));
            }
        }
        reader.ends.add_links(pid, &links);
    }
}
