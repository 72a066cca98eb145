//! Why a fact is unavailable: an I/O error mapped to a [`Reason`], a
//! process that cannot be opened (gone, or hidden by `hidepid=`), one whose
//! memory is not to be read, and the run's spent budget.

use super::visibility::{self, HidePid};
use crate::snapshot::{Reason, ReasonKind, Sample};
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
