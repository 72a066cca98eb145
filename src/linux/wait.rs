//! What a blocked thread waits for, from its syscall or its wchan.
//!
//! A thread's wait is decided from its syscall number and arguments first
//! (stable ABI), and from its wchan family only when the syscall is unknown
//! (no ptrace access, or blocked outside a syscall). wchan symbols are
//! renamed between releases (`futex_wait_queue_me` → `futex_wait_queue` →
//! `futex_do_wait`; `pipe_write` → `anon_pipe_write`) and carry compiler
//! suffixes (`.constprop.0`, `.isra.0`), so they are matched by family.

/// What a blocked thread is waiting for, as far as its syscall or wchan says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// write, sendmsg...: argument 0 is the fd.
    Write,
    /// read, recvmsg...: argument 0 is the fd.
    Read,
    /// accept: argument 0 is the listening fd.
    Accept,
    /// connect: argument 0 is the fd.
    Connect,
    /// epoll_wait and friends: argument 0 is the epoll fd.
    Epoll,
    /// poll, ppoll, select, pselect6: the fds are in the target's memory.
    Poll,
    Futex,
    /// wait4 or waitid.
    Child,
    /// nanosleep, clock_nanosleep.
    Sleep,
    /// pause, sigsuspend, sigtimedwait.
    Signal,
    /// open() of a FIFO, waiting for the other end to be opened.
    FifoOpen,
    /// flock, fcntl(F_SETLKW or F_OFD_SETLKW): argument 0 is the fd of the
    /// file it waits to lock.
    Lock,
    /// Any other syscall.
    Other,
}

impl Wait {
    /// Whether argument 0 of the syscall is the fd waited on.
    pub fn waits_on_fd(self) -> bool {
        matches!(
            self,
            Wait::Write | Wait::Read | Wait::Accept | Wait::Connect | Wait::Epoll | Wait::Lock
        )
    }
}

/// Whether a wchan is a vfork parent waiting for its child to exec or exit:
/// the syscall file of such a task is not reliable, the wchan is.
pub fn is_vfork_wait(wchan: &str) -> bool {
    matches!(
        strip_wchan_suffix(wchan),
        "kernel_clone" | "_do_fork" | "do_fork" | "wait_for_vfork_done"
    )
}

/// Whether a wchan is a pipe's (or FIFO's) read or write wait.
pub fn is_pipe_wait(wchan: &str) -> bool {
    is_pipe_io_wait(wchan) || strip_wchan_suffix(wchan) == "wait_for_partner"
}

/// Whether a wchan is a read or write of a pipe or FIFO that both ends
/// have open (not an open() waiting for the other end): a FIFO there can be
/// opened for a moment without completing anyone's open.
pub fn is_pipe_io_wait(wchan: &str) -> bool {
    matches!(
        strip_wchan_suffix(wchan),
        "pipe_read" | "pipe_write" | "anon_pipe_read" | "anon_pipe_write"
    )
}

/// Which wait a syscall is, by name (names are the same on every arch).
pub fn syscall_wait(name: &str, args: &[u64]) -> Wait {
    match name {
        "write" | "writev" | "pwrite64" | "pwritev" | "pwritev2" | "sendto" | "sendmsg" | "sendmmsg" => Wait::Write,
        "read" | "readv" | "pread64" | "preadv" | "preadv2" | "recvfrom" | "recvmsg" | "recvmmsg" => Wait::Read,
        "accept" | "accept4" => Wait::Accept,
        "connect" => Wait::Connect,
        "epoll_wait" | "epoll_pwait" | "epoll_pwait2" => Wait::Epoll,
        "poll" | "ppoll" | "select" | "pselect6" => Wait::Poll,
        "futex" if is_futex_wait_op(args.get(1).copied()) => Wait::Futex,
        "futex_wait" | "futex_waitv" => Wait::Futex,
        "wait4" | "waitid" => Wait::Child,
        "nanosleep" | "clock_nanosleep" => Wait::Sleep,
        "pause" | "rt_sigsuspend" | "rt_sigtimedwait" => Wait::Signal,
        "vfork" => Wait::Child,
        _ if crate::linux::locks::lock_call(name, args).is_some() => Wait::Lock,
        _ => Wait::Other,
    }
}

/// FUTEX_WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2, with the
/// PRIVATE and CLOCK_REALTIME flags masked off.
fn is_futex_wait_op(op: Option<u64>) -> bool {
    matches!(op.map(|op| op & 0x7f), Some(0 | 6 | 9 | 11 | 13))
}

/// Which children a wait4 or waitid waits for, from its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// wait4(pid > 0), waitid(P_PID, pid).
    Child(i32),
    /// wait4(-pgid), waitid(P_PGID, pgid).
    Group(i32),
    /// wait4(0), waitid(P_PGID, 0): the caller's own process group.
    OwnGroup,
    /// wait4(-1), waitid(P_ALL): any child.
    Any,
}

pub fn waited(name: &str, args: &[u64]) -> Option<Waited> {
    let arg = |i: usize| args.get(i).map(|&a| a as i64 as i32);
    Some(match (name, arg(0)?) {
        ("wait4", -1) => Waited::Any,
        ("wait4", 0) => Waited::OwnGroup,
        ("wait4", pid) if pid > 0 => Waited::Child(pid),
        ("wait4", group) => Waited::Group(group.checked_neg()?),
        ("waitid", 0) => Waited::Any,                      // P_ALL
        ("waitid", 1) => Waited::Child(arg(1)?),           // P_PID
        ("waitid", 2) if arg(1)? == 0 => Waited::OwnGroup, // P_PGID
        ("waitid", 2) => Waited::Group(arg(1)?),
        _ => return None,
    })
}

/// How long a wait syscall may last, from its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// No timeout: only an event ends the wait.
    Forever,
    /// This many milliseconds (an argument of epoll_wait and poll).
    Millis(i64),
    /// A timeout was given, by pointer: its value is in the target's
    /// memory, which whystuck does not read.
    Given,
}

/// The timeout of a wait syscall, for the syscalls that take one.
pub fn timeout(name: &str, args: &[u64]) -> Option<Timeout> {
    let pointer = |i: usize| match args.get(i)? {
        0 => Some(Timeout::Forever),
        _ => Some(Timeout::Given),
    };
    let millis = |i: usize| match *args.get(i)? as i32 {
        ms if ms < 0 => Some(Timeout::Forever),
        ms => Some(Timeout::Millis(i64::from(ms))),
    };
    match name {
        "futex" if is_futex_wait_op(args.get(1).copied()) => pointer(3),
        "futex_waitv" => pointer(3),
        "futex_wait" => pointer(4),
        "epoll_wait" | "epoll_pwait" => millis(3),
        "epoll_pwait2" => pointer(3),
        "poll" => millis(2),
        "ppoll" => pointer(2),
        "select" | "pselect6" => pointer(4),
        _ => None,
    }
}

/// `do_epoll_wait.isra.0` → `do_epoll_wait`: kernel symbols never contain a
/// dot, so everything from the first dot is a compiler suffix.
pub fn strip_wchan_suffix(wchan: &str) -> &str {
    wchan.split('.').next().unwrap_or(wchan)
}

/// The wait a wchan symbol stands for, across the spellings of kernels from
/// 4.x to 6.x. `None` for symbols that say nothing definite.
pub fn wchan_wait(wchan: &str) -> Option<Wait> {
    Some(match strip_wchan_suffix(wchan) {
        "futex_wait_queue_me"
        | "futex_wait_queue"
        | "futex_do_wait"
        | "futex_wait"
        | "__futex_wait"
        | "futex_wait_multiple"
        | "futex_lock_pi"
        | "rt_mutex_slowlock" => Wait::Futex,
        "pipe_write" | "anon_pipe_write" | "sock_alloc_send_pskb" | "sk_stream_wait_memory" | "unix_wait_for_peer" => {
            Wait::Write
        }
        "pipe_read"
        | "anon_pipe_read"
        | "n_tty_read"
        | "sk_wait_data"
        | "unix_stream_data_wait"
        | "unix_stream_read_generic"
        | "__skb_wait_for_more_packets" => Wait::Read,
        "inet_csk_accept" | "inet_csk_wait_for_connect" | "unix_accept" => Wait::Accept,
        "ep_poll" | "do_epoll_wait" => Wait::Epoll,
        "poll_schedule_timeout" | "do_select" | "do_sys_poll" | "core_sys_select" => Wait::Poll,
        "do_wait" | "kernel_wait4" | "kernel_waitid" => Wait::Child,
        // A vfork parent sleeps (in D) until its child execs or exits.
        "kernel_clone" | "_do_fork" | "do_fork" | "wait_for_vfork_done" => Wait::Child,
        "wait_for_partner" => Wait::FifoOpen,
        // flock's and fcntl's waits, inlined differently by each release:
        // 6.x shows locks_lock_inode_wait (flock) and fcntl_setlk (fcntl).
        "locks_lock_inode_wait"
        | "flock_lock_inode_wait"
        | "flock_lock_file_wait"
        | "posix_lock_inode_wait"
        | "posix_lock_file_wait"
        | "do_lock_file_wait"
        | "fcntl_setlk"
        | "fcntl_setlk64"
        | "__do_sys_flock" => Wait::Lock,
        "hrtimer_nanosleep" | "do_nanosleep" | "common_nsleep" => Wait::Sleep,
        "do_sys_pause" | "__do_sys_pause" | "sigsuspend" | "do_sigtimedwait" => Wait::Signal,
        _ => return None,
    })
}

/// The wait a kernel stack (innermost frame first, `n_tty_read+0x4bd/0x660`)
/// stands for, for the frames that say more than a generic wchan
/// (`wait_woken`): a terminal's read.
pub fn stack_wait(frames: &[String]) -> Option<Wait> {
    let function = |frame: &String| strip_wchan_suffix(frame.split('+').next().unwrap_or(frame)).to_string();
    frames
        .iter()
        .map(function)
        .find_map(|f| is_tty_read(&f).then_some(Wait::Read))
}

/// Whether a wchan or a kernel stack frame is a terminal's read.
pub fn is_tty_read(symbol: &str) -> bool {
    strip_wchan_suffix(symbol.split('+').next().unwrap_or(symbol)) == "n_tty_read"
}

/// What an uninterruptible wait is on, for the wchans that say it plainly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskWait {
    Fuse,
    Nfs,
    Disk,
}

/// What a D-state wchan usually means, for the functions that say it
/// plainly.
pub fn disk_wait(wchan: &str) -> Option<DiskWait> {
    Some(match strip_wchan_suffix(wchan) {
        "request_wait_answer" | "fuse_wait_on_page_writeback" => DiskWait::Fuse,
        w if w.starts_with("nfs") || w.starts_with("rpc_wait") => DiskWait::Nfs,
        w if w.starts_with("folio_wait") || w.starts_with("wait_on_page") || w == "io_schedule" => DiskWait::Disk,
        _ => return None,
    })
}

/// Whether a D-state wchan waits on a file system server (FUSE, NFS),
/// which may never answer: such a process can hold its memory-map lock
/// for good, and reading its memory (cmdline) would hang with it.
pub fn waits_on_file_server(wchan: &str) -> bool {
    matches!(disk_wait(wchan), Some(DiskWait::Fuse | DiskWait::Nfs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_from_arguments() {
        let cases: [(&str, &[u64], Option<Timeout>); 10] = [
            ("futex", &[0x55, 0x80, 0, 0], Some(Timeout::Forever)),
            ("futex", &[0x55, 0x80, 0, 0x7ffd_0000], Some(Timeout::Given)),
            ("futex", &[0x55, 0x189, 0, 0x7ffd_0000], Some(Timeout::Given)),
            ("futex", &[0x55, 0x81, 0, 0x7ffd_0000], None),
            ("futex_waitv", &[1, 2, 0, 0], Some(Timeout::Forever)),
            ("epoll_wait", &[3, 1, 1024, 0xffff_ffff], Some(Timeout::Forever)),
            ("epoll_pwait", &[3, 1, 1024, 5000], Some(Timeout::Millis(5000))),
            ("poll", &[1, 1, 0], Some(Timeout::Millis(0))),
            ("pselect6", &[5, 1, 0, 0, 0, 0], Some(Timeout::Forever)),
            ("read", &[0, 1, 2], None),
        ];
        for (name, args, expected) in cases {
            assert_eq!(timeout(name, args), expected, "{name} {args:x?}");
        }
    }

    #[test]
    fn which_children_a_wait_waits_for() {
        let minus = |n: i64| n as u64;
        assert_eq!(waited("wait4", &[minus(-1)]), Some(Waited::Any));
        assert_eq!(waited("wait4", &[0]), Some(Waited::OwnGroup));
        assert_eq!(waited("wait4", &[812]), Some(Waited::Child(812)));
        assert_eq!(waited("wait4", &[minus(-700)]), Some(Waited::Group(700)));
        assert_eq!(waited("waitid", &[0, 0]), Some(Waited::Any));
        assert_eq!(waited("waitid", &[1, 812]), Some(Waited::Child(812)));
        assert_eq!(waited("waitid", &[2, 700]), Some(Waited::Group(700)));
        assert_eq!(waited("waitid", &[3, 5]), None, "P_PIDFD: the child is behind an fd");
        assert_eq!(waited("read", &[0]), None);
    }

    #[test]
    fn futex_ops() {
        let private_wait = [0x55, 0x80];
        assert_eq!(syscall_wait("futex", &private_wait), Wait::Futex);
        assert_eq!(
            syscall_wait("futex", &[0x55, 0x189]),
            Wait::Futex,
            "WAIT_BITSET|PRIVATE|REALTIME"
        );
        assert_eq!(syscall_wait("futex", &[0x55, 0x81]), Wait::Other, "WAKE is not a wait");
        assert_eq!(syscall_wait("futex", &[]), Wait::Other);
        assert_eq!(syscall_wait("futex_waitv", &[]), Wait::Futex);
    }

    #[test]
    fn lock_waits() {
        assert_eq!(syscall_wait("flock", &[3, 2]), Wait::Lock);
        assert_eq!(syscall_wait("fcntl", &[3, 7, 0x7ffe]), Wait::Lock, "F_SETLKW");
        assert_eq!(syscall_wait("fcntl", &[3, 38, 0x7ffe]), Wait::Lock, "F_OFD_SETLKW");
        assert_eq!(syscall_wait("fcntl", &[3, 4, 0]), Wait::Other, "F_SETFL");
        assert!(Wait::Lock.waits_on_fd());
        assert!(is_pipe_io_wait("anon_pipe_read") && !is_pipe_io_wait("wait_for_partner"));
        assert!(is_pipe_wait("wait_for_partner"));
    }

    #[test]
    fn wchan_spellings_old_and_new() {
        let cases = [
            ("futex_wait_queue_me", Wait::Futex),
            ("futex_wait_queue", Wait::Futex),
            ("futex_do_wait", Wait::Futex),
            ("pipe_write", Wait::Write),
            ("anon_pipe_write", Wait::Write),
            ("pipe_read", Wait::Read),
            ("anon_pipe_read", Wait::Read),
            ("ep_poll", Wait::Epoll),
            ("do_epoll_wait", Wait::Epoll),
            ("do_epoll_wait.isra.0", Wait::Epoll),
            ("poll_schedule_timeout.constprop.0", Wait::Poll),
            ("do_select", Wait::Poll),
            ("do_wait", Wait::Child),
            ("hrtimer_nanosleep", Wait::Sleep),
            ("inet_csk_accept", Wait::Accept),
            ("sock_alloc_send_pskb", Wait::Write),
            ("do_sys_pause", Wait::Signal),
            ("__do_sys_pause", Wait::Signal),
            ("locks_lock_inode_wait", Wait::Lock),
            ("flock_lock_inode_wait", Wait::Lock),
            ("fcntl_setlk", Wait::Lock),
            ("do_lock_file_wait.isra.0", Wait::Lock),
        ];
        for (wchan, wait) in cases {
            assert_eq!(wchan_wait(wchan), Some(wait), "{wchan}");
        }
        assert_eq!(wchan_wait("wait_woken"), None, "too generic to decide");
        assert_eq!(wchan_wait(""), None);
    }

    #[test]
    fn suffixes_are_stripped() {
        assert_eq!(
            strip_wchan_suffix("poll_schedule_timeout.constprop.0"),
            "poll_schedule_timeout"
        );
        assert_eq!(strip_wchan_suffix("ep_poll"), "ep_poll");
        assert_eq!(strip_wchan_suffix("x.cold"), "x");
    }
}
