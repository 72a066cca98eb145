//! Waits that name who or what holds them: a file lock (its holders, and
//! how each is doing), a terminal (a person), a resolver (a DNS server),
//! and a job stopped for touching its terminal from the background.

use super::finding::*;
use super::locks::lock_facts;
use super::view::{FdKind, ThreadView, View};
use super::Judge;
use crate::linux::net::{is_resolver_socket, DNS_PORT};
use crate::linux::tty::{is_terminal_path, tty_name};
use crate::linux::wait::{is_tty_read, syscall_wait, Wait};
use crate::snapshot::Stat;
use crate::text::TargetString;

/// SIGTTIN and SIGTTOU: the stops of a background job that read from or
/// wrote to its terminal.
const SIGTTIN: i32 = 21;
const SIGTTOU: i32 = 22;

/// A thread waiting for a file lock: who holds it, and each holder's own
/// diagnosis as evidence ("held by 7121 (flock), itself sleeping").
pub(super) fn lock_wait(judge: &mut Judge, view: &View, thread: &ThreadView, evidence: &mut Vec<Evidence>) -> LockWait {
    let facts = lock_facts(judge.world.locks, view, thread);
    let mut holders = Vec::new();
    for peer in &facts.holders {
        let diagnosis = match peer.pid == view.pid {
            true => None,
            false => judge.diagnose(peer.pid).cloned(),
        };
        if let Some(d) = &diagnosis {
            evidence.push(Evidence::LockHolder {
                holder: ProcessRef {
                    pid: peer.pid,
                    comm: peer.comm.clone(),
                },
                fd: peer.fd,
                verdict: d.verdict,
                claim: Box::new(d.deciding().claim.clone()),
                stuck_for_ms: d.stuck_for_ms.clone().and_then(Result::ok),
            });
        }
        holders.push(LockHolder {
            peer: peer.clone(),
            verdict: diagnosis.map(|d| d.verdict),
        });
    }
    evidence.extend(facts.stale.iter().map(|&pid| Evidence::StaleLockPid(pid)));
    let fd = thread.fd.map(|fd| FdFacts {
        pid: view.pid,
        fd,
        what: view.fd_what(fd),
        peers: facts.holders.clone(),
        unseen: None,
    });
    LockWait {
        fd,
        class: facts.class,
        access: facts.access,
        holders,
        stale: facts.stale,
        unverified: facts.unverified,
        unknown: facts.unknown,
    }
}

/// A read of a terminal: the fd links to one (`/dev/pts/3`), or, when the
/// fd is unknown, the wchan or the kernel stack is in the terminal's line
/// discipline (`n_tty_read`).
/// (A pty's master side, `/dev/ptmx`, reads what programs write: not a
/// person.)
pub(super) fn terminal(view: &View, thread: &ThreadView) -> Option<TerminalWait> {
    let link = thread.fd.and_then(|fd| view.fd(fd)).map(|f| &f.fd.target);
    let in_tty_read = || {
        let stack = thread.thread.kernel_stack.as_ref().and_then(|s| s.ok());
        thread.wchan.is_some_and(is_tty_read) || stack.is_some_and(|frames| frames.iter().any(|f| is_tty_read(f)))
    };
    let reads_terminal = match link {
        Some(link) => is_terminal_path(link.as_bytes()),
        None => in_tty_read(),
    };
    reads_terminal.then(|| TerminalWait {
        fd: thread.fd,
        tty: link.cloned(),
    })
}

/// A wait for a resolver: a read of a UDP socket connected to port 53 or
/// of a unix socket to a resolver's (systemd-resolved's), or a poll while
/// the process holds one (glibc's resolver polls its connected socket; the
/// poll set is in memory, so the socket stands for it).
pub(super) fn dns(view: &View, thread: &ThreadView) -> Option<DnsWait> {
    let server_of = |fd: i32| -> Option<DnsServer> {
        let f = view.fd(fd).filter(|f| f.kind == FdKind::Socket)?;
        let inode = f.inode?;
        if let Some(u) = view.udp(inode).filter(|u| u.connected() && u.remote.port() == DNS_PORT) {
            return Some(DnsServer::Udp(u.remote));
        }
        let path = view.unix(inode)?.peer_path.as_ref()?;
        is_resolver_socket(path.as_bytes()).then(|| DnsServer::Unix(path.clone()))
    };
    let (fd, server, poll_set) = match thread.wait? {
        Wait::Read => {
            let fd = thread.fd?;
            (fd, server_of(fd)?, false)
        }
        Wait::Poll => {
            let (fd, server) = view.fds.iter().find_map(|f| Some((f.fd.fd, server_of(f.fd.fd)?)))?;
            (fd, server, true)
        }
        _ => return None,
    };
    Some(DnsWait {
        fd,
        server,
        call: thread.syscall_name,
        poll_set,
    })
}

/// Stopped in a background process group of its controlling terminal for
/// touching it: by SIGTTIN or SIGTTOU, as the stop signal in its stat says
/// until its parent collects it (a shell at once), or, once collected, in
/// a read of the terminal (which stops it again whatever stopped it).
pub(super) fn background_stop(view: &View, stat: &Stat) -> Option<BackgroundStop> {
    let signal = match stat.exit_code {
        Some(SIGTTIN) => Some(true),
        Some(SIGTTOU) => Some(false),
        Some(0) | None => None,
        Some(_) => return None,
    };
    let tty_nr = stat.tty_nr.filter(|&t| t != 0)?;
    let (pgrp, foreground) = (stat.pgrp?, stat.tpgid.filter(|&g| g > 0)?);
    if pgrp == foreground {
        return None;
    }
    // The terminal its syscall reads or writes (a stop keeps the call, to
    // restart it on SIGCONT), when it is one.
    let on_terminal = view.main_thread().and_then(|t| {
        let f = view.fd(t.fd?)?;
        let read = match syscall_wait(t.syscall_name?, &[]) {
            Wait::Read => true,
            Wait::Write => false,
            _ => return None,
        };
        is_terminal_path(f.fd.target.as_bytes()).then_some((f, read))
    });
    let read = match (signal, on_terminal) {
        (Some(read), _) => read,
        (None, Some((_, true))) => true,
        _ => return None,
    };
    let tty = tty_name(tty_nr)
        .map(|name| TargetString::from(name.as_str()))
        .or_else(|| on_terminal.map(|(f, _)| f.fd.target.clone()));
    Some(BackgroundStop {
        tty,
        read,
        by_signal: signal.is_some(),
        fd: on_terminal.map(|(f, _)| f.fd.fd),
        pgrp,
        foreground,
    })
}
