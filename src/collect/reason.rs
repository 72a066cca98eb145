//! Why a fact is unavailable: an I/O error mapped to a [`Reason`], a
//! process that cannot be opened (gone, or hidden by `hidepid=`), one whose
//! memory is not to be read, and the run's spent budget.

use super::visibility::{self, HidePid};
use crate::snapshot::{Fact, Reason, ReasonKind, Sample, Thread};
use std::io;
use std::time::{Duration, Instant};

/// Maps an I/O error to the reason a fact is unavailable.
pub(crate) fn reason_for(err: &io::Error) -> Reason {
    let (kind, detail) = match err.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => (ReasonKind::Permission, "permission denied".to_string()),
        Some(libc::ESRCH) => (ReasonKind::Gone, "the process exited".to_string()),
        Some(libc::ENOENT) => (ReasonKind::NotSupported, "not provided by this kernel".to_string()),
        _ if err.kind() == io::ErrorKind::TimedOut => (ReasonKind::TimedOut, err.to_string()),
        _ => (ReasonKind::Error, err.to_string()),
    };
    Reason::new(kind, detail)
}

/// Why `pid`'s directory could not be opened. Under hidepid a process of
/// another user is missing from /proc or refused, which is not "no such
/// process": `pidfd_open` tells the two apart.
pub(super) fn absent_reason(pid: i32, err: &io::Error, hidepid: Option<HidePid>) -> Reason {
    let missing = matches!(err.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH));
    let refused = matches!(err.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES));
    let see_it = "run as its owner or with CAP_SYS_PTRACE to see it";
    match hidepid {
        Some(setting) if missing && setting.hides() => match visibility::exists_unseen(pid) {
            Some(false) => Reason::new(ReasonKind::Gone, "no such process"),
            Some(true) => Reason::new(
                ReasonKind::Permission,
                format!(
                    "hidden: /proc is mounted hidepid={} and the process exists (pidfd_open finds it); {see_it}",
                    setting.name()
                ),
            ),
            None => Reason::new(
                ReasonKind::Permission,
                format!(
                    "not in /proc, which is mounted hidepid={}: it may be another user's process; {see_it}",
                    setting.name()
                ),
            ),
        },
        Some(HidePid::NoAccess) if refused => Reason::new(
            ReasonKind::Permission,
            format!("permission denied: /proc is mounted hidepid=noaccess; {see_it}"),
        ),
        _ if missing => Reason::new(ReasonKind::Gone, "no such process"),
        _ => reason_for(err),
    }
}

/// Why a process's memory is not to be read: a thread in uninterruptible
/// sleep waiting on a FUSE or NFS server, which may never answer.
pub(super) fn stuck_on_file_server(sample: &Sample) -> Option<Reason> {
    let thread = sample.threads.ok()?.iter().find(|t| {
        t.stat.ok().is_some_and(|s| s.state == 'D')
            && t.wchan
                .ok()
                .is_some_and(|w| crate::linux::wait::waits_on_file_server(w))
    })?;
    Some(Reason::new(
        ReasonKind::Avoided,
        format!(
            "not read: thread {} is stuck in {} (uninterruptible), and a read of its memory could hang with it",
            thread.tid,
            thread.wchan.ok().map(String::as_str).unwrap_or("?")
        ),
    ))
}

/// Whether a process's memory (its cmdline) can be read in-process, with
/// no helper to give the read up: no thread of it sleeps uninterruptibly
/// (a thread faulting on a dead mapping holds the memory-map lock in D, and
/// one queued to take it for writing waits in D: a read would wait behind
/// both), and none waits on a FUSE or NFS server (a fault there sleeps
/// interruptibly first). A thread whose state or wchan is unknown counts
/// as one that could. Another process sharing the memory (`clone(CLONE_VM)`
/// without a thread group) is not seen here: `backstop` is the guard then.
pub(super) fn memory_readable_directly(threads: &Fact<Vec<Thread>>) -> bool {
    threads.ok().is_some_and(|threads| {
        threads.iter().all(|t| {
            let state = t.stat.ok().map(|s| s.state);
            let wchan = t.wchan.ok().map(String::as_str);
            matches!(state, Some(s) if s != 'D') && wchan.is_some_and(|w| !crate::linux::wait::waits_on_file_server(w))
        })
    })
}

/// The process exited (its held directory answers ESRCH).
pub(super) fn is_gone(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::ESRCH)
}

/// An entry listed a moment ago is no longer there (a thread, an fd, a
/// process).
pub(super) fn is_vanished(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ESRCH) | Some(libc::ENOENT))
}

/// The run's time budget: when it started and when it ends. Past the end
/// nothing more is read, and what was not is reported with [`Budget::spent`].
#[derive(Clone, Copy)]
pub(super) struct Budget {
    pub start: Instant,
    pub deadline: Instant,
}

impl Budget {
    pub fn new(start: Instant, timeout: Duration) -> Budget {
        Budget {
            start,
            deadline: start + timeout,
        }
    }

    pub fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Why something was not read: the budget ran out.
    pub fn spent(&self) -> Reason {
        let budget = humantime::format_duration(self.deadline.duration_since(self.start));
        Reason::new(
            ReasonKind::TimedOut,
            format!("not read: the run's --timeout of {budget} ran out"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Stat, Syscall};

    fn thread(state: char, wchan: Option<&str>) -> Thread {
        let unknown = || Reason::new(ReasonKind::Permission, "permission denied");
        Thread {
            tid: 7,
            stat: Fact::Ok(Stat {
                state,
                ..Stat::default()
            }),
            status: Fact::Unavailable(unknown()),
            wchan: wchan.map_or_else(|| Fact::Unavailable(unknown()), |w| Fact::Ok(w.to_string())),
            syscall: Fact::Ok(Syscall::Running),
            last_ran_at_ms: None,
            kernel_stack: None,
        }
    }

    #[test]
    fn memory_is_read_directly_only_when_no_thread_can_hold_its_lock() {
        let readable = |threads: Vec<Thread>| memory_readable_directly(&Fact::Ok(threads));
        assert!(readable(vec![
            thread('S', Some("do_epoll_wait")),
            thread('R', Some(""))
        ]));
        // Asleep uninterruptibly, anywhere: it may hold the lock, or wait for it.
        assert!(!readable(vec![
            thread('S', Some("ep_poll")),
            thread('D', Some("io_schedule"))
        ]));
        assert!(!readable(vec![thread('D', Some("rwsem_down_write_slowpath"))]));
        // A FUSE wait starts interruptible.
        assert!(!readable(vec![thread('S', Some("request_wait_answer"))]));
        // Unknown is not safe.
        assert!(!readable(vec![thread('S', None)]));
        let gone = Reason::new(ReasonKind::Gone, "the process exited");
        assert!(!memory_readable_directly(&Fact::Unavailable(gone)));
    }
}
