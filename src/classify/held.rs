//! Who or what holds a wait, as data: the holders of a file lock, the
//! terminal a person is to type on, the terminal a background job stopped
//! on, the DNS server a resolver waits for. Part of [`super::finding`]
//! (re-exported there); no words here either.

use super::finding::{FdFacts, Peer};
use super::Verdict;
use crate::linux::locks::{LockAccess, LockClass};
use crate::snapshot::Reason;
use crate::text::TargetString;
use std::net::SocketAddr;

/// A thread waiting for a file lock, and who holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct LockWait {
    /// The fd of the file it waits to lock (its path in `what`), when the
    /// syscall could be read.
    pub fd: Option<FdFacts>,
    /// flock, POSIX or OFD, from the syscall (or its `/proc/locks` line).
    pub class: Option<LockClass>,
    /// Shared or exclusive, from its `/proc/locks` line.
    pub access: Option<LockAccess>,
    /// The processes found holding a lock that keeps it waiting (a `lock:`
    /// line in the fdinfo of the fd each holds it through).
    pub holders: Vec<LockHolder>,
    /// Pids `/proc/locks` names as holders that were looked through and do
    /// not hold it: a holder that forked and exited (its child holds the
    /// lock now), or a reused pid.
    pub stale: Vec<i32>,
    /// Pids `/proc/locks` names whose fds could not be read: the kernel's
    /// word, not verified.
    pub unverified: Vec<i32>,
    /// Why no holder is named, when none is.
    pub unknown: Option<LockUnknown>,
}

/// A process holding a lock another waits for, and its own diagnosis.
#[derive(Clone, Debug, PartialEq)]
pub struct LockHolder {
    pub peer: Peer,
    /// Its verdict, when it was diagnosed (not while it is being: a cycle).
    pub verdict: Option<Verdict>,
}

/// Why a lock wait names no holder.
#[derive(Clone, Debug, PartialEq)]
pub enum LockUnknown {
    /// `/proc/locks` was not read (a snapshot from before whystuck read it).
    NotRead,
    /// `/proc/locks` could not be read.
    Unreadable(Reason),
    /// Its wait is not among the lines of `/proc/locks`: a lock whose
    /// holder is in a pid namespace the reader cannot see is hidden there
    /// with its waiters (or it was granted since).
    NotListed,
    /// Listed, but no process was found holding the lock: an OFD lock (no
    /// pid), or a pid that does not hold it, and nobody else found with it.
    NotFound {
        /// Every process's fds were looked through.
        searched_everyone: bool,
        /// Processes that could not be looked through, and why the first.
        unsearchable: usize,
        because: Option<Reason>,
        /// The search stopped short (the run's deadline).
        cut_short: Option<Reason>,
    },
}

/// A thread reading from a terminal: it waits for a person to type.
#[derive(Clone, Debug, PartialEq)]
pub struct TerminalWait {
    /// The fd it reads, when the syscall could be read.
    pub fd: Option<i32>,
    /// The terminal's path (`/dev/pts/3`), when known.
    pub tty: Option<TargetString>,
}

/// A process stopped in a background process group of its controlling
/// terminal when it read from it (SIGTTIN) or wrote to it (SIGTTOU).
#[derive(Clone, Debug, PartialEq)]
pub struct BackgroundStop {
    /// The stop signal is known (SIGTTIN, SIGTTOU); otherwise its parent
    /// has collected it, and the job is stopped in a read of the terminal
    /// (by SIGTTIN, or by SIGTSTP while it read: either way, it stops
    /// again when continued in the background).
    pub by_signal: bool,
    /// The controlling terminal (from stat's `tty_nr`, or the fd's link),
    /// when it has a fixed name.
    pub tty: Option<TargetString>,
    /// It read (SIGTTIN) rather than wrote (SIGTTOU).
    pub read: bool,
    /// The fd of the terminal its stopped syscall names, when it does.
    pub fd: Option<i32>,
    /// Its process group, and the terminal's foreground one.
    pub pgrp: i32,
    pub foreground: i32,
}

/// A thread waiting for a DNS answer.
#[derive(Clone, Debug, PartialEq)]
pub struct DnsWait {
    /// The resolver's socket: a UDP socket connected to port 53, or a unix
    /// socket to systemd-resolved.
    pub fd: i32,
    pub server: DnsServer,
    /// The wait call: a poll whose fds are in its memory (`poll_set`), or a
    /// read of the socket itself.
    pub call: Option<&'static str>,
    pub poll_set: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DnsServer {
    Udp(SocketAddr),
    /// A resolver's unix socket, by its path.
    Unix(TargetString),
}
