//! File locks as the kernel lists them (`/proc/locks`, and the `lock:`
//! lines of an fd's fdinfo): their classes, access, and which conflict.
//!
//! A thread waits for a lock in `flock(fd, LOCK_EX|LOCK_SH)` (an FLOCK
//! lock), `fcntl(fd, F_SETLKW)` (a POSIX record lock, owned by the process)
//! or `fcntl(fd, F_OFD_SETLKW)` (an open-file-description lock, listed with
//! pid -1). FLOCK locks conflict only with FLOCK locks; POSIX and OFD locks
//! conflict with each other, over overlapping byte ranges.

use serde::{Deserialize, Serialize};

/// F_SETLKW, the same number on every architecture whystuck knows.
pub const F_SETLKW: u64 = 7;
/// F_OFD_SETLKW.
pub const F_OFD_SETLKW: u64 = 38;

/// What kind of lock a `/proc/locks` line is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LockClass {
    /// `flock()`: whole-file, held by an open file description.
    Flock,
    /// `fcntl(F_SETLK)` and `lockf()`: byte ranges, held by the process.
    Posix,
    /// `fcntl(F_OFD_SETLK)`: byte ranges, held by an open file description.
    Ofd,
    /// A lease or delegation (`fcntl(F_SETLEASE)`, NFS).
    Lease,
    /// Anything else the kernel prints (`ACCESS`, `UNKNOWN`).
    #[serde(other)]
    Other,
}

impl LockClass {
    /// The name `/proc/locks` prints.
    pub fn of(word: &str) -> LockClass {
        match word {
            "FLOCK" => LockClass::Flock,
            "POSIX" => LockClass::Posix,
            "OFDLCK" => LockClass::Ofd,
            "LEASE" | "DELEG" => LockClass::Lease,
            _ => LockClass::Other,
        }
    }

    /// How a person calls it.
    pub fn name(self) -> &'static str {
        match self {
            LockClass::Flock => "flock",
            LockClass::Posix => "POSIX",
            LockClass::Ofd => "OFD",
            LockClass::Lease => "lease",
            LockClass::Other => "other",
        }
    }

    /// Whether a waiter of this class can be blocked by a lock of `other`.
    pub fn conflicts_with(self, other: LockClass) -> bool {
        match self {
            LockClass::Flock => other == LockClass::Flock,
            LockClass::Posix | LockClass::Ofd => matches!(other, LockClass::Posix | LockClass::Ofd),
            LockClass::Lease | LockClass::Other => false,
        }
    }

    /// Whether the lock is held by an open file description (inherited
    /// across fork, so the pid `/proc/locks` names can have exited).
    pub fn held_by_open_file(self) -> bool {
        matches!(self, LockClass::Flock | LockClass::Ofd | LockClass::Lease)
    }
}

/// Shared or exclusive.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LockAccess {
    Read,
    Write,
    /// `UNLCK` (a lease being broken), or a word whystuck does not know.
    #[serde(other)]
    Other,
}

impl LockAccess {
    pub fn of(word: &str) -> LockAccess {
        match word {
            "READ" => LockAccess::Read,
            "WRITE" => LockAccess::Write,
            _ => LockAccess::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LockAccess::Read => "shared",
            LockAccess::Write => "exclusive",
            LockAccess::Other => "other",
        }
    }

    /// Whether a request for `self` waits for a holder of `held`: only two
    /// shared locks coexist.
    pub fn conflicts_with(self, held: LockAccess) -> bool {
        !(self == LockAccess::Read && held == LockAccess::Read)
    }
}

/// Which lock a syscall waits for, from its name and arguments: `flock`
/// (any blocking one: a thread asleep in it waits), or `fcntl` with
/// F_SETLKW or F_OFD_SETLKW.
pub fn lock_call(name: &str, args: &[u64]) -> Option<LockClass> {
    match (name, args.get(1).copied()) {
        ("flock", _) => Some(LockClass::Flock),
        ("fcntl" | "fcntl64", Some(F_SETLKW)) => Some(LockClass::Posix),
        ("fcntl" | "fcntl64", Some(F_OFD_SETLKW)) => Some(LockClass::Ofd),
        _ => None,
    }
}

/// Whether byte ranges `[start, end]` overlap (`None`: to the end of file).
pub fn ranges_overlap(a: (u64, Option<u64>), b: (u64, Option<u64>)) -> bool {
    let before = |x: (u64, Option<u64>), y: (u64, Option<u64>)| x.1.is_some_and(|end| end < y.0);
    !before(a, b) && !before(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_calls_from_syscall_arguments() {
        assert_eq!(lock_call("flock", &[3, 2]), Some(LockClass::Flock));
        assert_eq!(lock_call("fcntl", &[3, 7, 0x7ffd]), Some(LockClass::Posix));
        assert_eq!(lock_call("fcntl", &[3, 38, 0x7ffd]), Some(LockClass::Ofd));
        assert_eq!(lock_call("fcntl", &[3, 6, 0x7ffd]), None, "F_SETLK does not wait");
        assert_eq!(lock_call("fcntl", &[3]), None);
        assert_eq!(lock_call("read", &[3, 7]), None);
    }

    #[test]
    fn what_conflicts() {
        use LockClass::*;
        assert!(Flock.conflicts_with(Flock) && !Flock.conflicts_with(Posix));
        assert!(Posix.conflicts_with(Ofd) && Ofd.conflicts_with(Posix) && !Posix.conflicts_with(Flock));
        assert!(LockAccess::Write.conflicts_with(LockAccess::Read));
        assert!(LockAccess::Read.conflicts_with(LockAccess::Write));
        assert!(!LockAccess::Read.conflicts_with(LockAccess::Read));
        assert!(ranges_overlap((0, None), (100, Some(200))));
        assert!(ranges_overlap((0, Some(100)), (100, Some(200))));
        assert!(!ranges_overlap((0, Some(99)), (100, None)));
        assert!(!ranges_overlap((300, None), (100, Some(200))));
    }
}
