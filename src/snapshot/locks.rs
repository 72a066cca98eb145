//! File locks as read: the `/proc/locks` lines on the files sampled threads
//! wait to lock, and who was found holding them.

use super::Reason;
use crate::linux::locks::{LockAccess, LockClass};
use crate::text::TargetString;
use serde::{Deserialize, Serialize};

/// One line of `/proc/locks`, or the rest of a `lock:` line of an fd's
/// fdinfo: `1: FLOCK  ADVISORY  WRITE 7121 fe:00:10010632 0 EOF`, a
/// waiter `1: -> FLOCK  ADVISORY  WRITE 7130 ...` (blocked behind lock 1).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct FileLock {
    /// The ordinal `/proc/locks` gives a granted lock and its waiters.
    pub id: u64,
    /// A waiter (a `->` line): blocked behind lock `id`, not holding it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waiting: bool,
    pub class: LockClass,
    pub access: LockAccess,
    /// The process that took it, in the reader's pid namespace: -1 for an
    /// OFD lock; for a FLOCK lock, whoever called flock(), which may have
    /// forked and exited since (the lock stays with the open file).
    pub pid: i32,
    /// The file system's device, as the kernel prints it (`fe:00`), and
    /// the file's inode.
    pub dev: String,
    pub ino: u64,
    /// The locked bytes; `end` `None` is to the end of the file.
    pub start: u64,
    pub end: Option<u64>,
}

impl FileLock {
    /// The same lock, as `/proc/locks` and an fdinfo `lock:` line both
    /// show it (the pid aside: fdinfo shows the locker's, which a forked
    /// holder inherits).
    pub fn same_lock(&self, other: &FileLock) -> bool {
        (self.class, self.access, &self.dev, self.ino, self.start, self.end)
            == (other.class, other.access, &other.dev, other.ino, other.start, other.end)
    }

    /// The byte range.
    pub fn range(&self) -> (u64, Option<u64>) {
        (self.start, self.end)
    }

    /// Whether this is the wait of process `pid` for a lock of `class`
    /// (unknown: any) on the file with inode `ino` (unknown: any). An OFD
    /// wait has no pid: it is known by its file alone.
    pub fn is_wait_of(&self, pid: i32, class: Option<LockClass>, ino: Option<u64>) -> bool {
        let owner = match self.class {
            LockClass::Ofd => self.pid == -1 && ino.is_some(),
            _ => self.pid == pid,
        };
        self.waiting && owner && class.is_none_or(|c| c == self.class) && ino.is_none_or(|i| i == self.ino)
    }

    /// Whether this granted lock keeps `waiter` waiting: a conflicting
    /// class and access over overlapping bytes, and not a POSIX lock of
    /// the waiter's own process (those never conflict).
    pub fn blocks(&self, waiter: &FileLock) -> bool {
        let own = self.class == LockClass::Posix && waiter.class == LockClass::Posix && self.pid == waiter.pid;
        !self.waiting
            && !own
            && waiter.class.conflicts_with(self.class)
            && waiter.access.conflicts_with(self.access)
            && crate::linux::locks::ranges_overlap(self.range(), waiter.range())
    }
}

/// A process found holding a lock: an fd whose fdinfo has a `lock:` line
/// for it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct LockHolding {
    pub pid: i32,
    pub fd: i32,
    pub comm: Option<TargetString>,
    pub lock: FileLock,
}

/// A file a sampled thread waits to lock, with every `/proc/locks` line on
/// it and the processes found holding them.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct LockedFile {
    pub dev: String,
    pub ino: u64,
    /// Every `/proc/locks` line on the file, granted and waiting.
    pub lines: Vec<FileLock>,
    /// Who holds them: found in the fdinfo of the pids the granted lines
    /// name (their fds open on the waiter's path), and, when a lock was not
    /// found so (an OFD lock, a stale pid), of every process.
    pub holders: Vec<LockHolding>,
    /// The pids whose fds were looked through.
    pub searched: Vec<i32>,
    /// Whether every process's fds were looked through too.
    #[serde(default)]
    pub searched_everyone: bool,
    /// Processes whose fds could not be looked through (another user's,
    /// without the privilege), and why, for the first of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsearchable: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsearchable_because: Option<Reason>,
    /// The search of every process stopped short, and why (the run's
    /// `--timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_short: Option<Reason>,
}
