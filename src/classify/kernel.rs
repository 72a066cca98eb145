//! Kernel quirks, in one place: syscall numbers per architecture and the
//! spellings of wchan symbols across kernel versions.
//!
//! A thread's wait is decided from its syscall number and arguments first
//! (stable ABI), and from its wchan family only when the syscall is unknown
//! (no ptrace access, or blocked outside a syscall). wchan symbols are
//! renamed between releases (`futex_wait_queue_me` → `futex_wait_queue` →
//! `futex_do_wait`; `pipe_write` → `anon_pipe_write`) and carry compiler
//! suffixes (`.constprop.0`, `.isra.0`), so they are matched by family.

mod syscall_names;

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
    /// Any other syscall.
    Other,
}

impl Wait {
    /// Whether argument 0 of the syscall is the fd waited on.
    pub fn waits_on_fd(self) -> bool {
        matches!(
            self,
            Wait::Write | Wait::Read | Wait::Accept | Wait::Connect | Wait::Epoll
        )
    }
}

/// The syscall's name on this architecture, if known.
pub fn syscall_name(arch: &str, nr: i64) -> Option<&'static str> {
    let table = match arch {
        "x86_64" => syscall_names::X86_64,
        "aarch64" => syscall_names::AARCH64,
        _ => return None,
    };
    let name = *table.get(usize::try_from(nr).ok()?)?;
    (!name.is_empty()).then_some(name)
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
    matches!(
        strip_wchan_suffix(wchan),
        "pipe_read" | "pipe_write" | "anon_pipe_read" | "anon_pipe_write" | "wait_for_partner"
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
        _ => Wait::Other,
    }
}

/// FUTEX_WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2, with the
/// PRIVATE and CLOCK_REALTIME flags masked off.
fn is_futex_wait_op(op: Option<u64>) -> bool {
    matches!(op.map(|op| op & 0x7f), Some(0 | 6 | 9 | 11 | 13))
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
        "hrtimer_nanosleep" | "do_nanosleep" | "common_nsleep" => Wait::Sleep,
        "do_sys_pause" | "sigsuspend" | "do_sigtimedwait" => Wait::Signal,
        _ => return None,
    })
}

/// What an uninterruptible wait is on, for the wchans that say it plainly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiskWait {
    Fuse,
    Nfs,
    Disk,
}

fn disk_wait(wchan: &str) -> Option<DiskWait> {
    Some(match strip_wchan_suffix(wchan) {
        "request_wait_answer" | "fuse_wait_on_page_writeback" => DiskWait::Fuse,
        w if w.starts_with("nfs") || w.starts_with("rpc_wait") => DiskWait::Nfs,
        w if w.starts_with("folio_wait") || w.starts_with("wait_on_page") || w == "io_schedule" => DiskWait::Disk,
        _ => return None,
    })
}

/// What a D-state wchan usually means, for the functions that say it
/// plainly.
pub fn wchan_hint(wchan: &str) -> Option<&'static str> {
    Some(match disk_wait(wchan)? {
        DiskWait::Fuse => "waiting for a FUSE server, which is not answering",
        DiskWait::Nfs => "waiting for an NFS server",
        DiskWait::Disk => "waiting for disk I/O",
    })
}

/// Whether a D-state wchan waits on a file system server (FUSE, NFS),
/// which may never answer: such a process can hold its memory-map lock
/// for good, and reading its memory (cmdline) would hang with it.
pub fn waits_on_file_server(wchan: &str) -> bool {
    matches!(disk_wait(wchan), Some(DiskWait::Fuse | DiskWait::Nfs))
}

/// Signal names for a 64-bit mask from /proc/PID/status (bit n-1 = signal n).
pub fn signal_names(mask: u64) -> Vec<String> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    (0..64)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| match NAMES.get(bit) {
            Some(name) => name.to_string(),
            None => format!("SIG{}", bit + 1),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_numbers_per_arch() {
        let cases = [
            ("x86_64", 0, "read"),
            ("x86_64", 1, "write"),
            ("x86_64", 7, "poll"),
            ("x86_64", 61, "wait4"),
            ("x86_64", 202, "futex"),
            ("x86_64", 232, "epoll_wait"),
            ("x86_64", 230, "clock_nanosleep"),
            ("x86_64", 281, "epoll_pwait"),
            ("x86_64", 455, "futex_wait"),
            ("aarch64", 22, "epoll_pwait"),
            ("aarch64", 63, "read"),
            ("aarch64", 64, "write"),
            ("aarch64", 73, "ppoll"),
            ("aarch64", 98, "futex"),
            ("aarch64", 101, "nanosleep"),
            ("aarch64", 115, "clock_nanosleep"),
            ("aarch64", 206, "sendto"),
            ("aarch64", 260, "wait4"),
            ("aarch64", 441, "epoll_pwait2"),
        ];
        for (arch, nr, name) in cases {
            assert_eq!(syscall_name(arch, nr), Some(name), "{arch} {nr}");
        }
        assert_eq!(
            syscall_name("aarch64", 232),
            Some("mincore"),
            "232 is not epoll_wait on arm64"
        );
        assert_eq!(syscall_name("x86_64", -1), None);
        assert_eq!(syscall_name("x86_64", 100_000), None);
        assert_eq!(syscall_name("riscv64", 63), None);
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

    #[test]
    fn signal_masks() {
        assert_eq!(signal_names(0x2), ["SIGINT"]);
        assert_eq!(signal_names(0x1_0000_4002), ["SIGINT", "SIGTERM", "SIG33"]);
        assert!(signal_names(0).is_empty());
    }
}
