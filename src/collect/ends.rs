//! Who holds which pipe and socket: an index from inode to (pid, fd), built
//! once per run from fd links, for finding the other end of a pipe or socket.
//!
//! It holds an entry for every pipe and socket fd of the host in a scan
//! (100,000 at 5,000 processes), so entries are 12 bytes: Linux numbers
//! pipe and socket inodes with the 32-bit `get_next_ino()`. A wider inode
//! (a fake /proc tree can have one) goes in a second, normally empty, list.

use std::collections::HashSet;

/// The inode of a pipe or socket fd, from its link text (`pipe:[N]`,
/// `socket:[N]`): the ends this index holds.
pub fn end_inode(target: &[u8]) -> Option<u64> {
    use crate::linux::fd::link_inode;
    link_inode(target, "pipe").or_else(|| link_inode(target, "socket"))
}

#[derive(Default)]
pub struct EndIndex {
    narrow: Vec<(u32, i32, i32)>,
    wide: Vec<(u64, i32, i32)>,
    sorted: bool,
    /// The pids whose fds are in the index.
    indexed: HashSet<i32>,
}

impl EndIndex {
    /// Whether `pid`'s fds are still to be added (true once per pid).
    fn first_time(&mut self, pid: i32) -> bool {
        self.indexed.insert(pid)
    }

    /// Every pipe and socket fd among `pid`'s fd links, once per pid (a
    /// lazily read process's too, so it can be found as the other end of
    /// someone's pipe).
    pub fn add_links(&mut self, pid: i32, links: &[(i32, Vec<u8>)]) {
        if !self.first_time(pid) {
            return;
        }
        for (fd, target) in links {
            if let Some(inode) = end_inode(target) {
                self.add(inode, pid, *fd);
            }
        }
    }

    /// `pid`'s pipe and socket fds as (inode, fd), once per pid.
    pub fn add_ends(&mut self, pid: i32, ends: &[(u64, i32)]) {
        if !self.first_time(pid) {
            return;
        }
        for &(inode, fd) in ends {
            self.add(inode, pid, fd);
        }
    }

    pub fn add(&mut self, inode: u64, pid: i32, fd: i32) {
        match u32::try_from(inode) {
            Ok(narrow) => self.narrow.push((narrow, pid, fd)),
            Err(_) => self.wide.push((inode, pid, fd)),
        }
        self.sorted = false;
    }

    /// Every (pid, fd) holding `inode`.
    pub fn holders(&mut self, inode: u64) -> Vec<(i32, i32)> {
        if !self.sorted {
            // Lookups start once the index is (nearly) complete: no spare room.
            self.narrow.shrink_to_fit();
            self.narrow.sort_unstable();
            self.wide.sort_unstable();
            self.sorted = true;
        }
        match u32::try_from(inode) {
            Ok(narrow) => holders_in(&self.narrow, narrow),
            Err(_) => holders_in(&self.wide, inode),
        }
    }
}

fn holders_in<I: Ord + Copy>(entries: &[(I, i32, i32)], inode: I) -> Vec<(i32, i32)> {
    let start = entries.partition_point(|&(i, _, _)| i < inode);
    entries[start..]
        .iter()
        .take_while(|&&(i, _, _)| i == inode)
        .map(|&(_, pid, fd)| (pid, fd))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_holder_of_narrow_and_wide_inodes() {
        let mut index = EndIndex::default();
        let wide = u64::from(u32::MAX) + 7;
        index.add(42, 10, 3);
        index.add(wide, 11, 4);
        index.add(42, 12, 5);
        index.add(7, 10, 1);
        assert_eq!(index.holders(42), vec![(10, 3), (12, 5)]);
        assert_eq!(index.holders(wide), vec![(11, 4)]);
        // The narrow truncation of a wide inode is another inode.
        assert_eq!(index.holders(7), vec![(10, 1)]);
        assert!(index.holders(wide - u64::from(u32::MAX) - 1).is_empty());
        index.add(42, 9, 0);
        assert_eq!(index.holders(42), vec![(9, 0), (10, 3), (12, 5)]);
    }

    #[test]
    fn indexes_a_pid_once() {
        let mut index = EndIndex::default();
        assert!(index.first_time(5));
        assert!(!index.first_time(5));
    }
}
