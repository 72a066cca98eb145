//! The other end: who holds each pipe and socket the sampled processes
//! hold, and each named pipe (FIFO) they read or write. The fd links of
//! every process outside the snapshot are read once per run (readlink
//! only, never followed) into the [`EndIndex`]; after that each new inode
//! is a lookup. A FIFO is a path in those links: the paths of the FIFOs
//! sampled threads wait on are matched as they are read, and each match is
//! confirmed by its fdinfo `ino:` (a later batch's new FIFO reads the links
//! again).
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
    /// FIFOs (path, inode) whose holders are already in the snapshot.
    fifos_done: HashSet<(Vec<u8>, u64)>,
}

impl HolderSearch {
    /// Add the holders of every end the snapshot's processes hold that has
    /// not been looked up yet. `skipped` tells the pids not to read: those
    /// in the snapshot (read already), and whystuck's own process and read
    /// helpers (thousands of held /proc directories and the helpers' pipes);
    /// whystuck's own stdin, stdout and stderr are indexed, as they can be a
    /// target's other end (`whystuck --all | less`).
    pub fn update(&mut self, reader: &mut Reader, skipped: &dyn Fn(i32) -> bool, snapshot: &mut Snapshot) {
        let wanted: BTreeSet<u64> = snapshot
            .processes
            .iter()
            .filter_map(|r| r.samples.last())
            .flat_map(end_inodes)
            .filter(|inode| !self.done.contains(inode))
            .collect();
        let fifos: BTreeSet<(Vec<u8>, u64)> = snapshot
            .processes
            .iter()
            .filter_map(|r| r.samples.last())
            .flat_map(fifo_waits)
            .filter(|fifo| !self.fifos_done.contains(fifo))
            .collect();
        if wanted.is_empty() && fifos.is_empty() {
            return;
        }
        let paths: HashSet<&[u8]> = fifos.iter().map(|(path, _)| path.as_slice()).collect();
        let mut on_paths = Vec::new();
        if !self.scanned {
            index_unsampled(reader, skipped, snapshot, &paths, &mut on_paths);
            self.scanned = true;
        } else if !paths.is_empty() {
            read_links(reader, skipped, None, &mut |_, pid, links| {
                on_paths.extend(
                    links
                        .iter()
                        .filter(|(_, t)| paths.contains(t.as_slice()))
                        .map(|(fd, t)| (pid, *fd, t.clone())),
                );
            });
        }
        for fifo in fifos {
            self.fifo_holders(reader, snapshot, &fifo, &on_paths);
            self.fifos_done.insert(fifo);
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

/// The FIFOs a sample's threads read or write (in `pipe_read`,
/// `pipe_write`): their paths, and their inodes from fdinfo (kernels before
/// 5.8 show none: those are not looked for).
fn fifo_waits(sample: &Sample) -> Vec<(Vec<u8>, u64)> {
    let fds = sample.fds.ok().map(Vec::as_slice).unwrap_or_default();
    super::depth::fifo_fds(&sample.threads)
        .into_iter()
        .filter_map(|fd| fds.iter().find(|f| f.fd == fd))
        .filter(|f| f.target.as_bytes().starts_with(b"/"))
        .filter_map(|f| Some((f.target.as_bytes().to_vec(), f.info.ok()?.ino?)))
        .collect()
}

impl HolderSearch {
    /// Every fd open on FIFO `(path, ino)`: in the samples, and among the
    /// unsampled fds found on its path (`on_paths`), confirmed by fdinfo.
    fn fifo_holders(
        &self,
        reader: &mut Reader,
        snapshot: &mut Snapshot,
        (path, ino): &(Vec<u8>, u64),
        on_paths: &[(i32, i32, Vec<u8>)],
    ) {
        let mut found = Vec::new();
        for record in &snapshot.processes {
            let Some(sample) = record.samples.last() else { continue };
            let comm = sample.stat.ok().map(|s| s.comm.clone());
            for fd in sample.fds.ok().into_iter().flatten() {
                let info = fd.info.ok();
                if fd.target.as_bytes() == path.as_slice() && info.and_then(|i| i.ino) == Some(*ino) {
                    found.push(Holder {
                        inode: *ino,
                        pid: record.pid,
                        fd: fd.fd,
                        flags: info.and_then(|i| i.flags),
                        comm: comm.clone(),
                    });
                }
            }
        }
        for (pid, fd, _) in on_paths.iter().filter(|(_, _, target)| target == path) {
            let Some(info) = reader.fd_info(*pid, *fd).filter(|i| i.ino == Some(*ino)) else {
                continue;
            };
            let comm = reader.relative(*pid).stat.ok().map(|s| s.comm.clone());
            found.push(Holder {
                inode: *ino,
                pid: *pid,
                fd: *fd,
                flags: info.flags,
                comm,
            });
        }
        for holder in found {
            if !snapshot.fifo_holders.contains(&holder) {
                snapshot.fifo_holders.push(holder);
            }
        }
    }
}

/// Read the fd links of every process not `skipped` into the index,
/// and collect those on `paths` into `on_paths` as (pid, fd, path). A
/// process whose fds cannot be listed is recorded as unsearchable, never
/// skipped silently.
fn index_unsampled(
    reader: &mut Reader,
    skipped: &dyn Fn(i32) -> bool,
    snapshot: &mut Snapshot,
    paths: &HashSet<&[u8]>,
    on_paths: &mut Vec<(i32, i32, Vec<u8>)>,
) {
    read_links(
        reader,
        skipped,
        Some(&mut snapshot.unsearchable),
        &mut |reader, pid, links| {
            reader.ends.add_links(pid, links);
            on_paths.extend(
                (links.iter())
                    .filter(|(_, target)| paths.contains(target.as_slice()))
                    .map(|(fd, target)| (pid, *fd, target.clone())),
            );
        },
    );
    let own = std::process::id() as i32;
    let stdio: Vec<Link> = (0..3)
        .filter_map(|fd| Some((fd, reader.root.readlink(&format!("{own}/fd/{fd}")).ok()?)))
        .collect();
    reader.ends.add_links(own, &stdio);
}

/// An fd and its link text.
type Link = (i32, Vec<u8>);

/// Call `each` with the fd links of every process not `skipped`;
/// those whose fds cannot be listed (or are not reached within the run's
/// budget) go into `unsearchable`, when given.
fn read_links(
    reader: &mut Reader,
    skipped: &dyn Fn(i32) -> bool,
    mut unsearchable: Option<&mut Vec<Unsearchable>>,
    each: &mut dyn FnMut(&mut Reader, i32, &[Link]),
) {
    let mut path = String::new();
    for pid in reader.root.numeric_entries(".").unwrap_or_default() {
        if skipped(pid) {
            continue;
        }
        if reader.budget.out_of_time() {
            if let Some(unsearchable) = unsearchable.as_deref_mut() {
                let comm = reader.relative(pid).stat.ok().map(|s| s.comm.clone());
                unsearchable.push(Unsearchable {
                    pid,
                    comm,
                    reason: reader.budget.spent(),
                });
            }
            continue;
        }
        path.clear();
        let _ = write!(path, "{pid}/fd");
        let (fd_dir, fds) = match reader.root.open_listing(&path) {
            Ok(listing) => listing,
            Err(e) if is_vanished(&e) => continue,
            Err(e) => {
                if let Some(unsearchable) = unsearchable.as_deref_mut() {
                    let comm = reader.relative(pid).stat.ok().map(|s| s.comm.clone());
                    unsearchable.push(Unsearchable {
                        pid,
                        comm,
                        reason: reason_for(&e),
                    });
                }
                continue;
            }
        };
        let mut links = Vec::with_capacity(fds.len());
        for fd in fds {
            path.clear();
            let _ = write!(path, "{fd}");
            if let Ok(target) = fd_dir.readlink(&path) {
                links.push((fd, target));
            }
        }
        each(reader, pid, &links);
    }
}
