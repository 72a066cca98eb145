//! Who holds the file lock a thread waits for, judged from what collect
//! read (see `collect/locks.rs`): the thread's own lines in `/proc/locks`
//! (by its pid, or for an OFD lock by its file), the granted locks that
//! block them, and the processes found holding those by a `lock:` line in
//! their fdinfo. A pid `/proc/locks` names is a holder only when it was
//! found so; one that was looked through and was not is stale (a FLOCK
//! holder that forked and exited), one that could not be looked through is
//! named as unverified. Nobody else is ever named.

use super::finding::{LockUnknown, Peer};
use super::view::{ThreadView, View};
use crate::linux::locks::{lock_call, LockAccess, LockClass};
use crate::snapshot::{Fact, FileLock, LockedFile, Syscall};

/// What is known of one thread's lock wait.
#[derive(Debug, Default)]
pub struct LockFacts {
    pub class: Option<LockClass>,
    pub access: Option<LockAccess>,
    /// The processes found holding a blocking lock, each once per fd.
    pub holders: Vec<Peer>,
    pub stale: Vec<i32>,
    pub unverified: Vec<i32>,
    pub unknown: Option<LockUnknown>,
    /// Whether `holders` and `unverified` are every process that could
    /// release it: every blocking lock's holder was found or named, and the
    /// search was whole.
    pub complete: bool,
}

/// The lock wait of `thread` of `view`, from the snapshot's locks.
pub fn lock_facts(locks: Option<&Fact<Vec<LockedFile>>>, view: &View, thread: &ThreadView) -> LockFacts {
    let call_class = match (thread.syscall_name, thread.thread.syscall.ok()) {
        (Some(name), Some(Syscall::Blocked { args, .. })) => lock_call(name, args),
        _ => None,
    };
    let ino = thread.fd.and_then(|fd| view.fd(fd)?.fd.info.ok()?.ino);
    let mut facts = LockFacts {
        class: call_class,
        ..LockFacts::default()
    };
    let files = match locks {
        None => return facts.unknown(LockUnknown::NotRead),
        Some(Fact::Unavailable(reason)) => return facts.unknown(LockUnknown::Unreadable(reason.clone())),
        Some(Fact::Ok(files)) => files,
    };
    let waits_of = |file: &'_ LockedFile| -> Vec<FileLock> {
        let waits = file.lines.iter().filter(|l| l.is_wait_of(view.pid, call_class, ino));
        waits.cloned().collect()
    };
    let Some((file, waits)) = files
        .iter()
        .map(|f| (f, waits_of(f)))
        .find(|(_, waits)| !waits.is_empty())
    else {
        return facts.unknown(LockUnknown::NotListed);
    };
    facts.class = facts.class.or(waits.first().map(|w| w.class));
    facts.access = waits.first().map(|w| w.access);
    let blocking: Vec<&FileLock> = file
        .lines
        .iter()
        .filter(|l| waits.iter().any(|w| l.blocks(w)))
        .collect();
    let mut complete = file.cut_short.is_none();
    for line in &blocking {
        let held: Vec<Peer> = file
            .holders
            .iter()
            .filter(|h| h.lock.same_lock(line))
            .map(|h| Peer {
                pid: h.pid,
                fd: h.fd,
                comm: h.comm.clone(),
            })
            .collect();
        let named_holds = held.iter().any(|p| p.pid == line.pid);
        if line.pid > 0 && !named_holds {
            match file.unsearchable.contains(&line.pid) {
                true => push_once(&mut facts.unverified, line.pid),
                false if file.searched.contains(&line.pid) => push_once(&mut facts.stale, line.pid),
                false => {}
            }
        }
        if held.is_empty() && !file.unsearchable.contains(&line.pid) {
            complete = false;
        }
        for peer in held {
            if !facts.holders.iter().any(|p| (p.pid, p.fd) == (peer.pid, peer.fd)) {
                facts.holders.push(peer);
            }
        }
    }
    if file.searched_everyone && !file.unsearchable.is_empty() {
        complete = false;
    }
    facts.complete = complete && facts.unverified.is_empty();
    if facts.holders.is_empty() && facts.unverified.is_empty() {
        facts.unknown = Some(LockUnknown::NotFound {
            searched_everyone: file.searched_everyone,
            unsearchable: file.unsearchable.len(),
            because: file.unsearchable_because.clone(),
            cut_short: file.cut_short.clone(),
        });
    }
    facts
}

impl LockFacts {
    fn unknown(mut self, why: LockUnknown) -> LockFacts {
        self.unknown = Some(why);
        self
    }

    /// Every process that could release the lock, as far as known.
    pub fn waits_on(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .holders
            .iter()
            .map(|p| p.pid)
            .chain(self.unverified.iter().copied())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

fn push_once(pids: &mut Vec<i32>, pid: i32) {
    if !pids.contains(&pid) {
        pids.push(pid);
    }
}
