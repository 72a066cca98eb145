//! describe: the only place that turns a diagnosis into words. Claims
//! become one-line summaries, evidence becomes lines of evidence, and
//! quantities get their units ("65536/65536 bytes buffered", "1.5s",
//! "9.1 MiB"). Target-controlled strings are escaped here, as they are put
//! into a sentence.

mod cgroup;
mod evidence;
pub mod fd;
mod held;
mod next;
mod run;
mod units;

pub use cgroup::container;
pub use evidence::{call, edge, evidence};
pub use next::next_step;
pub use run::{ended, host_unseen, replay, stalled};
pub use units::{bytes, duration_ms, elapsed, pipe_fill, process, progress};

use crate::classify::finding::*;
use crate::linux::wait::DiskWait;
use evidence::edges;
use units::{process_name, reason_text, state_text, thread_name};

/// What a verdict means, for `--help` and the README.
pub fn meaning(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Dead => "no such process, exited while inspected, or a zombie nobody reaped",
        Verdict::Deadlock => "in a cycle of processes each waiting on the next: none can ever proceed",
        Verdict::Stalled => {
            "(watch) no CPU, syscalls, I/O or context switches, descendants included, for --stall-after"
        }
        Verdict::Frozen => {
            "its cgroup is frozen (or being frozen) by a cgroup freezer, a container's pause: it runs again only when thawed"
        }
        Verdict::Stopped => "stopped by a signal or a tracer",
        Verdict::MemoryPressure => {
            "held back by memory: asleep in reclaim or throttled above memory.high, or its memory cgroup hit its limits"
        }
        Verdict::DiskWait => "uninterruptible sleep (D)",
        Verdict::LockWait => {
            "waiting for a file lock (flock, fcntl F_SETLKW): names who holds it and how that one is doing"
        }
        Verdict::TerminalInput => "reading from a terminal: waiting for someone to type",
        Verdict::PipeFull => "a thread is blocked writing into a full pipe or socket",
        Verdict::WakeupFdEagain => {
            "its own non-blocking self-pipe or socketpair (a signal wakeup fd) is full: signals are lost"
        }
        Verdict::FutexBlocked => "parked in a futex wait with no CPU progress",
        Verdict::AcceptQueueFull => "a listening socket's accept queue is full: new connections are dropped",
        Verdict::Throttled => "wants CPU, and its cgroup's CPU quota held it back in most periods of the interval",
        Verdict::Unknown => "nothing about the process could be read",
        Verdict::Busy => "burning CPU over the interval",
        Verdict::IdleInEpoll => "an event loop parked in epoll_wait, poll or select, no progress",
        Verdict::BlockedOnRead => "parked in read, recv, accept or connect: waiting for the other end or the network",
        Verdict::WaitingOnChild => "parked in wait4 or waitid",
        Verdict::Sleeping => "a timed sleep, or parked in another syscall",
        Verdict::Running => "none of the above and making progress",
    }
}

/// A finding's one-line summary.
pub fn summary(claim: &Claim) -> String {
    match claim {
        Claim::NoSample => "no sample was taken".into(),
        Claim::NoFinding => "no finding".into(),
        Claim::StatUnreadable(reason) => format!("its stat could not be read ({})", reason_text(reason)),
        Claim::NotLookedAt(reason) => format!("not looked at: {}", reason_text(reason)),
        Claim::CouldNotLookAt(reason) => format!("could not be looked at ({})", reason_text(reason)),
        Claim::NoSuchProcess => "no such process".into(),
        Claim::ExitedWhileInspected => "exited while inspected".into(),
        Claim::PidReused => "exited while inspected (its pid was reused)".into(),
        Claim::Zombie { parent: Some(parent) } => {
            format!("zombie: exited, not reaped by its parent {}", process(parent))
        }
        Claim::Zombie { parent: None } => "zombie: exited, not reaped".into(),
        Claim::Stopped(StopCause::Tracer(tracer)) => format!("stopped by its tracer {}", process(tracer)),
        Claim::Stopped(StopCause::TracingStop) => "stopped in a tracing stop".into(),
        Claim::Stopped(StopCause::Signal) => "stopped by a signal (SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU)".into(),
        Claim::Stopped(StopCause::Background(stop)) => {
            let tty = stop.tty.as_ref().map_or("its controlling terminal".to_string(), |t| t.escaped());
            match (stop.by_signal, stop.read) {
                (true, true) => format!("stopped in the background of {tty} when it read from the terminal (SIGTTIN)"),
                (true, false) => format!("stopped in the background of {tty} when it wrote to the terminal (SIGTTOU)"),
                (false, _) => format!("stopped in the background of {tty}, in a read of the terminal (job control)"),
            }
        }
        Claim::DiskWait { threads, wchan, on } => {
            let wchan = wchan.as_deref().unwrap_or("an unknown kernel function");
            let hint = on.map(|on| format!(": {}", disk_wait(on))).unwrap_or_default();
            match threads {
                1 => format!("uninterruptible sleep (D) in {wchan}{hint}"),
                n => format!("{n} threads in uninterruptible sleep (D), first in {wchan}{hint}"),
            }
        }
        Claim::BlockedWriting { fd: f, pending_in: None } => format!("blocked writing {}", fd::long(f)),
        Claim::BlockedWriting {
            fd: f,
            pending_in: Some(call),
        } => format!(
            "blocked writing {} (a non-blocking write, waiting in {call} for room)",
            fd::long(f)
        ),
        Claim::BlockedWritingUnknownFd { tid, pipe, wchan, why } => format!(
            "thread {tid} blocked writing into a full {} (wchan {wchan}; which fd is unknown{})",
            if *pipe { "pipe" } else { "socket" },
            why.as_ref().map(|r| format!(": syscall {r}")).unwrap_or_default()
        ),
        Claim::WakeupFdFull {
            socketpair,
            write_fd,
            read_fd,
        } => format!(
            "its wakeup {} fd {write_fd} -> fd {read_fd} is full: every signal handler write gets EAGAIN and signals are lost",
            wakeup_kind(*socketpair)
        ),
        Claim::AcceptQueueFull(f) => match &f.what {
            FdWhat::Tcp(t) => format!(
                "its listener {} (fd {}) has a full accept queue: {}/{} waiting to be accepted; new connections are dropped",
                t.local, f.fd, t.rx_queue, t.tx_queue
            ),
            _ => format!("its listener on fd {} has a full accept queue", f.fd),
        },
        Claim::Frozen(f) => cgroup::frozen(f),
        Claim::Throttled(t) => cgroup::throttled(t),
        Claim::MemoryPressure(m) => cgroup::memory_pressure(m),
        Claim::Busy(p) => format!("burning CPU: {}", progress(p)),
        Claim::Running(Some(p)) => format!("making progress: {}", progress(p)),
        Claim::Running(None) => "on a CPU (one sample: progress not measured)".into(),
        Claim::ThreadsUnreadable(reason) => format!("its threads could not be read ({})", reason_text(reason)),
        Claim::KernelThreadAsleep { state, wchan } => format!(
            "kernel thread, asleep ({}){}",
            state_text(*state),
            wchan.as_ref().map(|w| format!(" in {w}")).unwrap_or_default()
        ),
        Claim::Waiting { thread, wait } => waiting(&thread_name(*thread), wait),
        Claim::NotDraining { writer, child, fd: f } => format!(
            "{} {} is blocked writing into {}, which only this process reads, and it is not reading it",
            if *child { "its child" } else { "process" },
            process(writer),
            fd::long(f)
        ),
        Claim::StoppedJob(child) => format!(
            "its child {} is stopped in the background (job control), and not waited for",
            process(child)
        ),
        Claim::Deadlock { own, cycle, on_it } => {
            let text = edges(cycle);
            match on_it {
                true => text,
                false => format!("{}, and that is a deadlock: {text}", edges(own)),
            }
        }
    }
}

fn waiting(who: &str, wait: &WaitClaim) -> String {
    match wait {
        WaitClaim::Writing(f) => format!("{who} parked writing {}", fd::long(f)),
        WaitClaim::Reading(Some(f)) => format!("{who} blocked reading {}", fd::long(f)),
        WaitClaim::Reading(None) => format!("{who} blocked in a read"),
        WaitClaim::OpeningFifo => format!(
            "{who} blocked in open() of a FIFO: it waits for the other end to be opened (the path is in its memory, not read)"
        ),
        WaitClaim::Lock(lock) => held::lock_wait(who, lock),
        WaitClaim::Terminal(t) => format!(
            "{who} waiting for someone to type on {}{}",
            t.tty.as_ref().map_or("its terminal".to_string(), |t| t.escaped()),
            t.fd.map(|fd| format!(" (fd {fd})")).unwrap_or_default()
        ),
        WaitClaim::Dns(dns) => held::dns_wait(who, dns),
        WaitClaim::Accepting(Some(f)) => format!("{who} waiting for a connection on {}", fd::long(f)),
        WaitClaim::Accepting(None) => format!("{who} waiting for a connection"),
        WaitClaim::Epoll(epoll) => epoll_wait(who, epoll),
        WaitClaim::Polling { call, connections } => {
            let holds = match connections.as_slice() {
                [] => String::new(),
                [one] => format!("; its one connection: {}", fd::brief(one)),
                [one, two] => format!("; its connections: {} and {}", fd::brief(one), fd::brief(two)),
                many => format!("; it holds {} TCP connections", many.len()),
            };
            format!("{who} idle in {}{holds}", call.unwrap_or("poll/select"))
        }
        WaitClaim::Futex {
            parked,
            threads,
            progress: moved,
        } => {
            let scope = match (parked == threads, parked) {
                (true, 1) => "its only thread is parked in a futex wait".to_string(),
                (true, n) => format!("all {n} threads parked in futex waits"),
                (false, n) => format!("{who} parked in a futex wait ({n} of {threads} threads)"),
            };
            let moved = match moved {
                Some(p) => format!(", no progress: {}", progress(p)),
                None => ", progress not measured (one sample)".to_string(),
            };
            format!("{scope}{moved}")
        }
        WaitClaim::TimedFutex => format!("{who} sleeping in a futex wait with a timeout"),
        WaitClaim::Child(child) => child_wait(who, child),
        WaitClaim::Sleeping(call) => format!("{who} sleeping in {}", call.unwrap_or("nanosleep")),
        WaitClaim::Signal(call) => format!("{who} waiting for a signal in {}", call.unwrap_or("pause")),
        WaitClaim::Connecting(Some(f)) => format!("{who} waiting to connect: {}", fd::long(f)),
        WaitClaim::Connecting(None) => format!("{who} waiting to connect"),
        WaitClaim::ParkedIn(call) => format!("{who} parked in {}", call.unwrap_or("a syscall")),
        WaitClaim::Asleep { state, wchan: Some(w) } => format!("{who} asleep ({}) in {w}", state_text(*state)),
        WaitClaim::Asleep { state, wchan: None } => format!("{who} asleep ({})", state_text(*state)),
        WaitClaim::Hidden {
            state,
            refused,
            full_view,
        } => {
            let refused: Vec<String> = refused.iter().map(|(what, r)| format!("{what} {r}")).collect();
            let hint = match full_view {
                true => "refused even with CAP_SYS_PTRACE: another user namespace or a security module (Yama, SELinux, AppArmor) keeps it hidden",
                false => "run as its user, or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (root has both)",
            };
            format!(
                "{who} asleep ({}) in a wait whystuck cannot see ({}): {hint}",
                state_text(*state),
                refused.join("; ")
            )
        }
    }
}

/// "main thread idle in epoll_wait on fd 0 (pipe from pid 1200 (python3),
/// empty) and fd 5 (TCP 10.0.0.1:5 -> 10.0.0.2:443 ESTABLISHED)", and
/// whether anything but a timer or a signal could still wake it.
fn epoll_wait(who: &str, epoll: &EpollWait) -> String {
    let Some(epfd) = epoll.epfd else {
        return format!("{who} idle in epoll_wait");
    };
    // What matters first (pipes and sockets to others, the network); the
    // loop's own wakeup fds only counted (the evidence lists them all).
    let (own, others): (Vec<&FdFacts>, Vec<&FdFacts>) = epoll.watched.iter().partition(|f| f.is_own_wakeup());
    let mut shown: Vec<String> = others
        .iter()
        .take(3)
        .map(|f| format!("fd {} ({})", f.fd, fd::brief(f)))
        .collect();
    if others.len() > 3 {
        shown.push(format!("{} more", others.len() - 3));
    }
    match own.len() {
        0 => {}
        1 => shown.push("1 of its own wakeup fds".to_string()),
        n => shown.push(format!("{n} of its own wakeup fds")),
    }
    let mut summary = match shown.as_slice() {
        [] => format!("{who} idle in epoll_wait on epoll fd {epfd}, which watches nothing"),
        [only] => format!("{who} idle in epoll_wait on {only}"),
        [rest @ .., last] => format!("{who} idle in epoll_wait on {} and {last}", rest.join(", ")),
    };
    if let Some(has_tcp) = epoll.hopeless {
        let tcp = if has_tcp { "" } else { "no TCP connections, and " };
        summary.push_str(&format!("; {tcp}nothing but a timer or a signal can wake it"));
    }
    summary
}

fn child_wait(who: &str, wait: &ChildWait) -> String {
    let call = wait.call.unwrap_or("wait");
    match &wait.outcome {
        ChildOutcome::Working { child, how } => {
            let how = match how {
                Working::Progress(p) => progress(p),
                Working::Diagnosis(claim) => summary(claim),
            };
            format!(
                "{who} waiting in {call} for {}, which is working: {how}",
                process(child)
            )
        }
        ChildOutcome::Stuck(state) => format!("{who} waiting in {call} for a stuck child: {}", child_state(state)),
        ChildOutcome::NoChildren => format!("{who} waiting in {call}, no children seen"),
        ChildOutcome::One(state) => format!("{who} waiting in {call} for {}", child_state(state)),
        ChildOutcome::Many(n) => format!("{who} waiting in {call} for {n} children"),
    }
}

/// "pid 812 (sleep), busy"
fn child_state(state: &ChildState) -> String {
    match state.verdict {
        Some(verdict) => format!("{}, {}", process(&state.child), verdict.name()),
        None => process(&state.child),
    }
}

pub(super) fn wakeup_kind(socketpair: bool) -> &'static str {
    match socketpair {
        true => "socketpair",
        false => "self-pipe",
    }
}

fn disk_wait(on: DiskWait) -> &'static str {
    match on {
        DiskWait::Fuse => "waiting for a FUSE server, which is not answering",
        DiskWait::Nfs => "waiting for an NFS server",
        DiskWait::Disk => "waiting for disk I/O",
    }
}
