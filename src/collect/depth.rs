//! Which fds of a process are read in depth, and the one open of a
//! target's fd: the pipe probe. A process with many fds has in depth only
//! the fds its blocked threads name, its epoll sets and its full self-pipes;
//! a pipe, or a FIFO a thread reads or writes, is probed for its fill.

use super::dir::ProcDir;
use crate::linux::syscall::syscall_name;
use crate::linux::wait::{syscall_wait, Wait};
use crate::snapshot::*;
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::os::fd::AsRawFd;

/// The fds worth reading in depth in a process with many: any fd a blocked
/// thread's syscall names, and every epoll fd (what it watches is added as
/// it is read). Self-pipes are added by `Sampler::fd_details` when they
/// are full, socketpairs when sockets are joined.
///
/// Which fd a thread waits on is judged by classify (`ThreadView` in
/// src/classify/view.rs) from the syscall's wait ([`syscall_wait`]: its
/// argument 0 is an fd when the wait is on one); this is a superset of it:
/// argument 0 of every blocked syscall whose wait is on an fd, or whose
/// name this build does not know. Not a sleep's clock id (0 or 1, taken
/// for stdin or stdout) or a wait4's pid.
pub(super) fn wanted_fds(links: &[(i32, Vec<u8>)], threads: &Fact<Vec<Thread>>) -> BTreeSet<i32> {
    let mut wanted: BTreeSet<i32> = threads
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|t| match t.syscall.ok()? {
            Syscall::Blocked { nr, args } if *nr >= 0 && arg0_may_be_an_fd(*nr, args) => {
                i32::try_from(*args.first()?).ok()
            }
            _ => None,
        })
        .collect();
    wanted.extend(
        links
            .iter()
            .filter(|(_, target)| FdKind::of(target) == FdKind::Eventpoll)
            .map(|(fd, _)| *fd),
    );
    wanted
}

/// Whether argument 0 of blocked syscall `nr` (this host's numbering) can
/// be an fd it waits on: its wait is on an fd, or its name is unknown.
fn arg0_may_be_an_fd(nr: i64, args: &[u64]) -> bool {
    match syscall_name(std::env::consts::ARCH, nr) {
        Some(name) => syscall_wait(name, args).waits_on_fd(),
        None => true,
    }
}

/// The wait a blocked thread's syscall decides (this host's numbering):
/// none when the syscall is unknown or has no wait of its own, where
/// classify defers to the wchan and the kernel stack.
pub(super) fn syscall_decides(syscall: &Fact<Syscall>) -> Option<Wait> {
    let Syscall::Blocked { nr, args } = syscall.ok()? else {
        return None;
    };
    let name = syscall_name(std::env::consts::ARCH, *nr).filter(|_| *nr >= 0)?;
    Some(syscall_wait(name, args)).filter(|&wait| wait != Wait::Other)
}

/// The fds threads are reading or writing in pipe code (`pipe_read`,
/// `pipe_write`): on a path, a FIFO whose two ends are open. Never a FIFO
/// a thread waits to open (`wait_for_partner`): opening it would complete
/// that open.
pub(super) fn fifo_fds(threads: &Fact<Vec<Thread>>) -> BTreeSet<i32> {
    threads
        .ok()
        .into_iter()
        .flatten()
        .filter(|t| t.wchan.ok().is_some_and(|w| crate::linux::wait::is_pipe_io_wait(w)))
        .filter_map(|t| match t.syscall.ok()? {
            Syscall::Blocked { nr, args } if *nr >= 0 => i32::try_from(*args.first()?).ok(),
            _ => None,
        })
        .collect()
}

/// Self-pipes probed for fill in a lazily read process (in one of a large
/// selection, only the first): a wakeup fd is one or two pipes, not
/// thousands; --deep reads them all.
pub(super) const MAX_SELF_PIPE_PROBES: usize = 64;

/// Both ends of every pipe held twice by this process and full: a wakeup
/// fd that may be losing signals (full socketpairs are found when sockets
/// are joined: [`super::batch`]).
pub(super) fn full_self_pipes(
    links: &[(i32, Vec<u8>)],
    max_probes: usize,
    mut pipe_is_full: impl FnMut(i32, u64) -> bool,
) -> BTreeSet<i32> {
    let mut pipes: HashMap<u64, Vec<i32>> = HashMap::new();
    for (fd, target) in links {
        if let Some(inode) = crate::linux::fd::link_inode(target, "pipe") {
            pipes.entry(inode).or_default().push(*fd);
        }
    }
    let mut full = BTreeSet::new();
    for (&inode, fds) in pipes.iter().filter(|(_, fds)| fds.len() > 1).take(max_probes) {
        if pipe_is_full(fds[0], inode) {
            full.extend(fds);
        }
    }
    full
}

/// How full a pipe is, seen from outside: open the target's fd read-only and
/// non-blocking through /proc (a moment's extra reader, never a writer), ask
/// FIONREAD and F_GETPIPE_SZ, close at once.
pub(super) fn probe_pipe(dir: &ProcDir, fd: i32) -> io::Result<PipeFill> {
    let file = dir.open_file(&format!("fd/{fd}"))?;
    let mut buffered: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is valid.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::FIONREAD, &mut buffered) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let capacity = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETPIPE_SZ)?;
    Ok(PipeFill {
        buffered_bytes: buffered.max(0) as u64,
        capacity_bytes: capacity.max(0) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This host's number of a syscall.
    fn nr(name: &str) -> i64 {
        (0..1024)
            .find(|&nr| syscall_name(std::env::consts::ARCH, nr) == Some(name))
            .unwrap_or_else(|| panic!("{name}"))
    }

    fn blocked(nr: i64, arg0: u64) -> Thread {
        Thread {
            tid: 1,
            stat: Fact::Ok(Stat::default()),
            status: Fact::Ok(ContextSwitches::default()),
            wchan: Fact::Ok(String::new()),
            syscall: Fact::Ok(Syscall::Blocked {
                nr,
                args: vec![arg0, 0, 0, 0, 0, 0].into(),
            }),
            last_ran_at_ms: None,
            kernel_stack: None,
        }
    }

    /// A read's fd and an epoll wait's are read in depth, with every epoll
    /// fd; a sleep's clock id and a wait4's pid are not taken for fds; an
    /// unknown syscall's first argument is, to be safe.
    #[test]
    fn only_fds_a_thread_may_wait_on_are_wanted() {
        if syscall_name(std::env::consts::ARCH, 0).is_none() {
            return; // no syscall table for this architecture
        }
        let threads = Fact::Ok(vec![
            blocked(nr("read"), 5),
            blocked(nr("epoll_wait"), 6),
            blocked(nr("clock_nanosleep"), 1),
            blocked(nr("wait4"), 3),
            blocked(100_000, 7),
        ]);
        let links = vec![(9, b"anon_inode:[eventpoll]".to_vec()), (0, b"/dev/null".to_vec())];
        let wanted: Vec<i32> = wanted_fds(&links, &threads).into_iter().collect();
        assert_eq!(wanted, [5, 6, 7, 9]);
    }

    /// A kernel stack is read only where neither the syscall nor the wchan
    /// says the wait: pause and read decide theirs; ioctl (no wait of its
    /// own), an unknown number, a thread outside a syscall do not.
    #[test]
    fn a_syscall_decides_the_wait_unless_it_has_none_of_its_own() {
        if syscall_name(std::env::consts::ARCH, 0).is_none() {
            return; // no syscall table for this architecture
        }
        let decides = |nr| syscall_decides(&blocked(nr, 0).syscall);
        assert_eq!(decides(nr("pause")), Some(Wait::Signal));
        assert_eq!(decides(nr("read")), Some(Wait::Read));
        assert_eq!(decides(nr("ioctl")), None);
        assert_eq!(decides(100_000), None);
        assert_eq!(decides(-1), None);
        assert_eq!(syscall_decides(&Fact::Ok(Syscall::Running)), None);
    }
}
