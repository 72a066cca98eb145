//! Who holds the file locks sampled threads wait for.
//!
//! Only when a sampled thread waits in `flock()` or `fcntl(F_SETLKW /
//! F_OFD_SETLKW)` is `/proc/locks` read, at most once per round. Its lines
//! on the waited-for file name the holders' pids; each named pid is
//! verified by a `lock:` line in the fdinfo of one of its fds open on the
//! file (a FLOCK lock's pid is whoever called flock(), who may have forked
//! and exited since; an OFD lock has no pid at all). When a granted lock is
//! not found so, every process's fds open on the waiter's path are looked
//! through, under the run's deadline. Nothing is opened: fd links are
//! read with readlink, fdinfo as text.

use super::parse;
use super::reason::{is_vanished, reason_for};
use super::run::Reader;
use crate::linux::locks::{lock_call, LockAccess, LockClass};
use crate::linux::wait::{wchan_wait, Wait};
use crate::snapshot::*;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::rc::Rc;

/// A process's fds looked through when none links to the waiter's path
/// (the holder opened it by another name): at most this many.
const MAX_FALLBACK_FDS: usize = 1024;

#[derive(Default)]
pub(super) struct LockSearch {
    /// This round's `/proc/locks`, read when the round first needs it.
    table: Option<Result<Rc<Vec<FileLock>>, Reason>>,
    /// The files resolved this round.
    files: Vec<LockedFile>,
}

/// A thread waiting for a lock, as collect sees it.
struct Waiter {
    pid: i32,
    class: Option<LockClass>,
    path: Option<Vec<u8>>,
    ino: Option<u64>,
}

impl LockSearch {
    /// A new round: `/proc/locks` is read again when needed, and every
    /// file resolved again.
    pub fn start_round(&mut self) {
        self.table = None;
        self.files.clear();
    }

    /// Resolve the files the snapshot's waiting threads wait to lock that
    /// this round has not resolved yet, into `snapshot.locks`.
    pub fn update(&mut self, reader: &mut Reader, snapshot: &mut Snapshot) {
        let waiters = waiters(snapshot);
        if waiters.is_empty() {
            if self.table.is_none() {
                snapshot.locks = None;
            }
            return;
        }
        let table = match self.table.get_or_insert_with(|| read_table(reader)) {
            Ok(table) => Rc::clone(table),
            Err(reason) => {
                snapshot.locks = Some(Fact::Unavailable(reason.clone()));
                return;
            }
        };
        for waiter in &waiters {
            let files: BTreeSet<(&str, u64)> = table
                .iter()
                .filter(|l| l.is_wait_of(waiter.pid, waiter.class, waiter.ino))
                .map(|l| (l.dev.as_str(), l.ino))
                .collect();
            for (dev, ino) in files {
                if self.files.iter().any(|f| f.dev == dev && f.ino == ino) {
                    continue;
                }
                let mut file = LockedFile {
                    dev: dev.to_string(),
                    ino,
                    lines: table.iter().filter(|l| l.dev == dev && l.ino == ino).cloned().collect(),
                    holders: Vec::new(),
                    searched: Vec::new(),
                    searched_everyone: false,
                    unsearchable: Vec::new(),
                    unsearchable_because: None,
                    cut_short: None,
                };
                find_holders(reader, &mut file, waiter.path.as_deref());
                self.files.push(file);
            }
        }
        snapshot.locks = Some(Fact::Ok(self.files.clone()));
    }
}

fn read_table(reader: &mut Reader) -> Result<Rc<Vec<FileLock>>, Reason> {
    match reader.root.read("locks", &mut reader.buf) {
        Ok(()) => Ok(Rc::new(proc_locks(&reader.buf))),
        Err(e) => Err(reason_for(&e)),
    }
}

/// Every thread of the snapshot's last samples asleep waiting for a lock:
/// from its syscall (which file, by its fd), or, when that is unreadable,
/// from its wchan (then only its pid matches its `/proc/locks` line).
fn waiters(snapshot: &Snapshot) -> Vec<Waiter> {
    let mut waiters = Vec::new();
    for record in &snapshot.processes {
        // The sample a diagnosis reads: a round the budget skipped leaves
        // the one before.
        let Some(sample) = record.last_taken().filter(|s| s.presence == Presence::Present) else {
            continue;
        };
        let fds = sample.fds.ok().map(Vec::as_slice).unwrap_or_default();
        for thread in sample.threads.ok().into_iter().flatten() {
            if thread.stat.ok().is_none_or(|s| s.state != 'S') {
                continue;
            }
            let call = match thread.syscall.ok() {
                Some(Syscall::Blocked { nr, args }) if *nr >= 0 => {
                    crate::linux::syscall::syscall_name(&snapshot.host.arch, *nr)
                        .and_then(|name| lock_call(name, args))
                        .zip(args.first().and_then(|&a| i32::try_from(a).ok()))
                }
                _ => None,
            };
            let waiter = match call {
                Some((class, fd)) => {
                    let fd = fds.iter().find(|f| f.fd == fd);
                    Waiter {
                        pid: record.pid,
                        class: Some(class),
                        path: fd.map(|f| f.target.as_bytes().to_vec()),
                        ino: fd.and_then(|f| f.info.ok()?.ino),
                    }
                }
                None if thread.wchan.ok().and_then(|w| wchan_wait(w)) == Some(Wait::Lock) => Waiter {
                    pid: record.pid,
                    class: None,
                    path: None,
                    ino: None,
                },
                None => continue,
            };
            waiters.push(waiter);
        }
    }
    waiters
}

/// Who holds the granted locks on `file`: the pids its lines name, then,
/// for a lock none of them was found holding, every process with an fd on
/// `path`.
fn find_holders(reader: &mut Reader, file: &mut LockedFile, path: Option<&[u8]>) {
    // The granted locks that keep a waiter waiting.
    let blocking: Vec<FileLock> = file
        .lines
        .iter()
        .filter(|l| file.lines.iter().any(|waiter| waiter.waiting && l.blocks(waiter)))
        .cloned()
        .collect();
    let named: BTreeSet<i32> = blocking.iter().filter(|l| l.pid > 0).map(|l| l.pid).collect();
    for pid in named {
        look_through(reader, file, pid, path, true);
    }
    let unfound = |file: &LockedFile| {
        blocking.iter().any(|line| {
            let found = file.holders.iter().any(|h| h.lock.same_lock(line));
            !found && !file.unsearchable.contains(&line.pid)
        })
    };
    let Some(path) = path else { return };
    if !unfound(file) {
        return;
    }
    file.searched_everyone = true;
    for pid in reader.root.numeric_entries(".").unwrap_or_default() {
        if file.searched.contains(&pid) {
            continue;
        }
        if reader.budget.out_of_time() {
            file.cut_short = Some(reader.budget.spent());
            return;
        }
        look_through(reader, file, pid, Some(path), false);
    }
}

/// Look through `pid`'s fds open on `path` (with `fallback`, every fd on a
/// path when none is on that one) for `lock:` lines on `file`.
fn look_through(reader: &mut Reader, file: &mut LockedFile, pid: i32, path: Option<&[u8]>, fallback: bool) {
    let mut rel = String::new();
    let _ = write!(rel, "{pid}/fd");
    let (fd_dir, fds) = match reader.root.open_listing(&rel) {
        Ok(listing) => listing,
        // Gone (a flock taker that forked and exited): it holds nothing.
        Err(e) if is_vanished(&e) => {
            file.searched.push(pid);
            return;
        }
        Err(e) => {
            file.unsearchable.push(pid);
            file.unsearchable_because.get_or_insert_with(|| reason_for(&e));
            return;
        }
    };
    let mut on_path = Vec::new();
    let mut on_any_path = Vec::new();
    for fd in fds {
        rel.clear();
        let _ = write!(rel, "{fd}");
        let Ok(target) = fd_dir.readlink(&rel) else {
            continue;
        };
        if Some(target.as_slice()) == path {
            on_path.push(fd);
        } else if fallback && target.starts_with(b"/") && on_any_path.len() < MAX_FALLBACK_FDS {
            on_any_path.push(fd);
        }
    }
    file.searched.push(pid);
    let chosen = if on_path.is_empty() { on_any_path } else { on_path };
    let mut comm = None;
    for fd in chosen {
        rel.clear();
        let _ = write!(rel, "{pid}/fdinfo/{fd}");
        if reader.root.read(&rel, &mut reader.buf).is_err() {
            continue;
        }
        if parse::fdinfo(&reader.buf).ino.is_some_and(|ino| ino != file.ino) {
            continue;
        }
        let held: Vec<FileLock> = fdinfo_locks(&reader.buf)
            .into_iter()
            .filter(|l| l.dev == file.dev && l.ino == file.ino)
            .collect();
        for lock in held {
            let comm = comm
                .get_or_insert_with(|| reader.relative(pid).stat.ok().map(|s| s.comm.clone()))
                .clone();
            file.holders.push(LockHolding { pid, fd, comm, lock });
        }
    }
}

/// `/proc/locks`: one lock per line; lines that do not parse are skipped.
pub fn proc_locks(buf: &[u8]) -> Vec<FileLock> {
    String::from_utf8_lossy(buf).lines().filter_map(lock_line).collect()
}

/// The `lock:` lines of an fd's fdinfo: the locks held through that open
/// file.
pub fn fdinfo_locks(buf: &[u8]) -> Vec<FileLock> {
    String::from_utf8_lossy(buf)
        .lines()
        .filter_map(|l| lock_line(l.strip_prefix("lock:")?))
        .collect()
}

/// `1: FLOCK  ADVISORY  WRITE 7121 fe:00:10010632 0 EOF`, or a waiter
/// `1: -> POSIX  ADVISORY  READ 7130 fe:00:10010632 100 199` (deeper
/// waiters are indented further). The class's second word (`ADVISORY`,
/// `MANDATORY`, a lease's `ACTIVE`/`BREAKING`) is skipped.
pub fn lock_line(line: &str) -> Option<FileLock> {
    let mut words = line.split_ascii_whitespace();
    let id = words.next()?.strip_suffix(':')?.parse().ok()?;
    let mut class = words.next()?;
    let waiting = class == "->";
    if waiting {
        class = words.next()?;
    }
    let _kind = words.next()?;
    let access = LockAccess::of(words.next()?);
    let pid = words.next()?.parse().ok()?;
    let (dev, ino) = words.next()?.rsplit_once(':')?;
    let start = words.next()?.parse().ok()?;
    let end = match words.next()? {
        "EOF" => None,
        end => Some(end.parse().ok()?),
    };
    Some(FileLock {
        id,
        waiting,
        class: LockClass::of(class),
        access,
        pid,
        dev: dev.to_ascii_lowercase(),
        ino: ino.parse().ok()?,
        start,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From Linux 6.18: a POSIX lock held by 16945 with an OFD waiter and a
    /// POSIX waiter queued beneath it, and a flock with its waiter.
    const PROC_LOCKS: &[u8] = b"1: POSIX  ADVISORY  WRITE 16945 fe:00:10010632 0 EOF\n\
1: -> OFDLCK ADVISORY  WRITE -1 fe:00:10010632 0 EOF\n\
1:  -> POSIX  ADVISORY  WRITE 16987 fe:00:10010632 100 199\n\
2: FLOCK  ADVISORY  WRITE 16945 fe:00:10010632 0 EOF\n\
2: -> FLOCK  ADVISORY  WRITE 16986 fe:00:10010632 0 EOF\n\
3: LEASE  ACTIVE    READ  5000 08:01:42 0 EOF\n\
4: garbage\n";

    #[test]
    fn proc_locks_lines_granted_and_waiting() {
        let locks = proc_locks(PROC_LOCKS);
        assert_eq!(locks.len(), 6);
        let first = &locks[0];
        assert_eq!(
            (first.id, first.waiting, first.class, first.access, first.pid),
            (1, false, LockClass::Posix, LockAccess::Write, 16945)
        );
        assert_eq!(
            (first.dev.as_str(), first.ino, first.start, first.end),
            ("fe:00", 10010632, 0, None)
        );
        assert_eq!(
            (locks[1].waiting, locks[1].class, locks[1].pid),
            (true, LockClass::Ofd, -1)
        );
        assert_eq!(
            (locks[2].waiting, locks[2].pid, locks[2].range()),
            (true, 16987, (100, Some(199)))
        );
        assert_eq!(
            (locks[4].class, locks[4].pid, locks[4].waiting),
            (LockClass::Flock, 16986, true)
        );
        assert_eq!(locks[5].class, LockClass::Lease);
        assert!(locks[3].same_lock(&locks[3]) && !locks[3].same_lock(&locks[0]));
    }

    #[test]
    fn fdinfo_lock_lines() {
        let fdinfo = b"pos:\t0\nflags:\t02100002\nmnt_id:\t27\nino:\t10010632\n\
lock:\t1: FLOCK  ADVISORY  WRITE 16945 fe:00:10010632 0 EOF\n\
lock:\t2: POSIX  ADVISORY  WRITE 16945 fe:00:10010632 0 EOF\n";
        let locks = fdinfo_locks(fdinfo);
        assert_eq!(locks.len(), 2);
        assert_eq!((locks[0].class, locks[1].class), (LockClass::Flock, LockClass::Posix));
        assert!(fdinfo_locks(b"pos:\t0\nflags:\t02\n").is_empty());
    }

    #[test]
    fn hostile_lines_are_skipped() {
        for bad in [
            "",
            "1:",
            "x: FLOCK ADVISORY WRITE 1 fe:00:1 0 EOF",
            "1: FLOCK ADVISORY WRITE 1 fe00 0 EOF",
            "1: FLOCK ADVISORY WRITE 1 fe:00:x 0 EOF",
            "1: FLOCK ADVISORY WRITE 1 fe:00:1 0",
        ] {
            assert_eq!(lock_line(bad), None, "{bad:?}");
        }
    }
}
