//! describe: the only place that turns a diagnosis into words. Claims
//! become one-line summaries, evidence becomes lines of evidence, and
//! quantities get their units ("65536/65536 bytes buffered", "1.5s",
//! "9.1 MiB"). Target-controlled strings are escaped here, as they are put
//! into a sentence.

pub mod fd;

use crate::classify::finding::*;
use crate::classify::graph::{Channel, Edge, EdgeKind};
use crate::classify::progress::Progress;
use crate::linux::signal::signal_names;
use crate::linux::wait::{self, DiskWait, Timeout, Wait};
use crate::snapshot::{PipeFill, Reason, Visibility};
use crate::text::TargetString;

/// What a verdict means, for `--help` and the README.
pub fn meaning(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Dead => "no such process, exited while inspected, or a zombie nobody reaped",
        Verdict::Deadlock => "in a cycle of processes each waiting on the next: none can ever proceed",
        Verdict::Stalled => {
            "(watch) no CPU, syscalls, I/O or context switches, descendants included, for --stall-after"
        }
        Verdict::Stopped => "stopped by a signal or a tracer",
        Verdict::DiskWait => "uninterruptible sleep (D)",
        Verdict::PipeFull => "a thread is blocked writing into a full pipe or socket",
        Verdict::WakeupFdEagain => {
            "its own non-blocking self-pipe or socketpair (a signal wakeup fd) is full: signals are lost"
        }
        Verdict::FutexBlocked => "parked in a futex wait with no CPU progress",
        Verdict::Unknown => "nothing about the process could be read",
        Verdict::Busy => "burning CPU over the interval",
        Verdict::IdleInEpoll => "an event loop parked in epoll_wait, poll or select, no progress",
        Verdict::BlockedOnRead => "parked in read, recv or accept with nothing to read",
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
        WaitClaim::OpeningFifo => format!("{who} blocked opening a FIFO until another process opens its other end"),
        WaitClaim::Accepting(Some(f)) => format!("{who} waiting for a connection on {}", fd::long(f)),
        WaitClaim::Accepting(None) => format!("{who} waiting for a connection"),
        WaitClaim::Epoll(epoll) => epoll_wait(who, epoll),
        WaitClaim::Polling(call) => format!("{who} idle in {}", call.unwrap_or("poll/select")),
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
        WaitClaim::Connecting(f) => format!(
            "{who} parked in connect on {}",
            f.as_ref().map(fd::long).unwrap_or_default()
        ),
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

/// A line of evidence.
pub fn evidence(evidence: &Evidence) -> String {
    match evidence {
        Evidence::ThreadIn {
            thread,
            comm,
            call: c,
            blocked,
        } => format!(
            "{} ({}) {} {}",
            thread_name(*thread),
            comm_text(comm.as_ref()),
            if *blocked { "blocked in" } else { "in" },
            call(c)
        ),
        Evidence::ThreadWchan {
            tid,
            comm,
            state,
            wchan,
        } => format!(
            "thread {tid} ({}) state {state}, wchan {}",
            comm_text(comm.as_ref()),
            wchan.as_deref().unwrap_or("unavailable")
        ),
        Evidence::ThreadOnCpu { tid, comm } => format!("thread {tid} ({}) on CPU", comm_text(comm.as_ref())),
        Evidence::NamedThread { tid, pid } => format!("{tid} is a thread of process {pid}: judged by that thread"),
        Evidence::PipeFill { fill, steady } => format!(
            "{} of {} bytes buffered{}",
            fill.buffered_bytes,
            fill.capacity_bytes,
            if *steady {
                ", unchanged between the samples: nobody is draining it"
            } else {
                ""
            }
        ),
        Evidence::WaitsToWrite { epfd, fd } => {
            format!("fd {fd} is registered for writability (EPOLLOUT) in epoll fd {epfd}, which the thread waits on")
        }
        Evidence::ProcEntryUnopened(reason) => {
            format!("its /proc entry could not be opened: {}", reason_text(reason))
        }
        Evidence::ProcEntryWentAway { elapsed_ms } => {
            format!("its /proc entry went away {elapsed_ms} ms into the run")
        }
        Evidence::StartTimeChanged { before, after, pid } => format!(
            "start time changed from {before} to {after} ticks after boot: a different process now has pid {pid}"
        ),
        Evidence::State(state) => format!("state {state}"),
        Evidence::ParentNotReaping {
            parent: Some((parent, state)),
        } => format!(
            "its parent {} has not reaped it{}",
            process(parent),
            state.map(|s| format!(", itself in state {s}")).unwrap_or_default()
        ),
        Evidence::ParentNotReaping { parent: None } => "no parent recorded".into(),
        Evidence::ExitStatus(status) => format!("it exited with status {status}"),
        Evidence::KilledBy(mask) => format!("it was killed by {}", signal_names(*mask).join("")),
        Evidence::TracerPid(pid) => format!("TracerPid {pid}"),
        Evidence::Resumes { by_tracer: true } => "it resumes when its tracer continues or detaches it".into(),
        Evidence::Resumes { by_tracer: false } => "it resumes on SIGCONT".into(),
        Evidence::WakeupWriteEnd { fd, socketpair, fill } => format!(
            "fd {fd} ({} write side) is O_NONBLOCK and full: {}",
            wakeup_kind(*socketpair),
            match fill {
                Some(WakeupFill::Pipe(fill)) => pipe_fill(fill),
                Some(WakeupFill::SendBuffer { used, size }) => format!("send buffer {used}/{size} bytes"),
                None => String::new(),
            }
        ),
        Evidence::WakeupReadEnd { fd } => {
            format!("fd {fd}, the other end, is held by the same process and not drained")
        }
        Evidence::SignalsCaught(mask) => format!("signals with handlers: {}", signal_names(*mask).join(", ")),
        Evidence::SignalsPending(mask) => format!("signals pending: {}", signal_names(*mask).join(", ")),
        Evidence::CpuTicks { ticks, interval_ms } => {
            format!("{} CPU ticks in {}", ticks.unwrap_or(0), duration_ms(*interval_ms))
        }
        Evidence::Watching(f) => format!("watching {}", fd::long(f)),
        Evidence::Sampled(claim) => format!("sampled: {}", summary(claim)),
        Evidence::Child {
            child,
            verdict,
            severity,
            claim,
        } => format!(
            "child {}: {} [{}]: {}",
            process(child),
            verdict.name(),
            severity.name(),
            summary(claim)
        ),
        Evidence::Edge(e) => edge(e),
        Evidence::CycleMember { pid, comm, state } => {
            format!("{pid} is {} (state {})", comm_text(comm.as_ref()), state.unwrap_or('?'))
        }
        Evidence::NoProgressOver(Some(ms)) => format!("no progress over {}", duration_ms(*ms)),
        Evidence::NoProgressOver(None) => "one sample: progress not measured".into(),
    }
}

/// "1201 is blocked writing fd 1 (pipe, full); its only reader is 1200"
pub fn edge(edge: &Edge) -> String {
    let to: Vec<String> = edge.to.iter().map(|p| p.to_string()).collect();
    let fd = edge.fd.map(|fd| format!("fd {fd}")).unwrap_or_else(|| "an fd".into());
    let (verb, fill, role) = match edge.kind {
        EdgeKind::Child => return format!("{} waits in {} for {}", edge.from, edge.call, to.join(" or ")),
        EdgeKind::Write => ("writing", "full", ("reader", "readers")),
        EdgeKind::Read => ("reading", "empty", ("writer", "writers")),
    };
    let pipe = edge.channel == Some(Channel::Pipe);
    let role = match (pipe, to.len(), edge.complete) {
        (true, 1, true) => format!("its only {} is", role.0),
        (true, 1, false) => format!("the only {} found is", role.0),
        (true, _, true) => format!("its {} are", role.1),
        (true, _, false) => format!("the {} found are", role.1),
        (false, _, true) => "its peer is".to_string(),
        (false, _, false) => "its peer is held by".to_string(),
    };
    let channel = match edge.channel {
        Some(Channel::Pipe) => "pipe",
        Some(Channel::UnixSocket) => "unix socket",
        Some(Channel::TcpSocket) => "TCP socket",
        None => "",
    };
    let waits = match wait::syscall_wait(edge.call, &[]) {
        // An event loop's pending write or awaited read.
        Wait::Epoll => format!(
            "waits in {} to {}",
            edge.call,
            if verb == "writing" { "write" } else { "read" }
        ),
        _ => format!("is blocked {verb}"),
    };
    format!(
        "{} {waits} {fd} ({channel}, {fill}); {role} {}",
        edge.from,
        to.join(", ")
    )
}

fn edges(edges: &[Edge]) -> String {
    edges.iter().map(edge).collect::<Vec<_>>().join("; ")
}

/// `write(fd=1)`-style text for the syscall, or the wchan when that is all
/// there is.
pub fn call(call: &Call) -> String {
    match (call.syscall, call.unnamed_nr, &call.wchan) {
        (Some(name), _, wchan) => {
            let args: Vec<String> = [
                call.fd.map(|fd| format!("fd={fd}")),
                call.timeout.map(|t| match t {
                    Timeout::Forever => "no timeout".to_string(),
                    Timeout::Millis(ms) => format!("timeout {ms}ms"),
                    Timeout::Given => "with a timeout".to_string(),
                }),
            ]
            .into_iter()
            .flatten()
            .collect();
            let wchan = wchan.as_ref().map(|w| format!(", wchan {w}")).unwrap_or_default();
            format!("{name}({}){wchan}", args.join(", "))
        }
        (None, Some(nr), Some(w)) => format!("syscall {nr}, wchan {w}"),
        (None, _, Some(w)) => format!("wchan {w}"),
        (None, _, None) if call.running => "on CPU".to_string(),
        (None, _, None) => "an unknown wait (neither syscall nor wchan readable)".to_string(),
    }
}

/// One line: "12% CPU, 4.0 KiB I/O over 1s".
pub fn progress(p: &Progress) -> String {
    let cpu = p
        .cpu_percent
        .map_or("CPU unknown".to_string(), |p| format!("{p:.0}% CPU"));
    let io = p.io_bytes.map(|b| format!(", {} I/O", bytes(b))).unwrap_or_default();
    format!("{cpu}{io} over {}", duration_ms(p.interval_ms))
}

/// "65536/65536 bytes buffered"
pub fn pipe_fill(fill: &PipeFill) -> String {
    format!("{}/{} bytes buffered", fill.buffered_bytes, fill.capacity_bytes)
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// "250ms", "1.0s", "12.5s".
pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// "pid 812 (sleep)", the comm escaped; "pid 812" when it is unknown.
pub fn process(process: &ProcessRef) -> String {
    process_name(process.pid, process.comm.as_ref())
}

fn process_name(pid: i32, comm: Option<&TargetString>) -> String {
    match comm {
        Some(comm) => format!("pid {pid} ({})", comm.escaped()),
        None => format!("pid {pid}"),
    }
}

fn thread_name(thread: ThreadRef) -> String {
    match thread.main {
        true => "main thread".to_string(),
        false => format!("thread {}", thread.tid),
    }
}

fn comm_text(comm: Option<&TargetString>) -> String {
    comm.map(TargetString::escaped).unwrap_or_default()
}

fn state_text(state: Option<char>) -> String {
    match state {
        Some(s) => format!("state {s}"),
        None => "state unknown".into(),
    }
}

fn reason_text(reason: &Option<Reason>) -> String {
    reason.as_ref().map(|r| r.to_string()).unwrap_or_default()
}

fn wakeup_kind(socketpair: bool) -> &'static str {
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

/// `watch`'s summary of a stalled process.
pub fn stalled(still_for: std::time::Duration, descendants: usize, verdict: Verdict, summary: &str) -> String {
    format!(
        "nothing moved for {} (CPU, syscalls, I/O, context switches; {descendants} descendants included); {}: {summary}",
        humantime::format_duration(std::time::Duration::from_secs(still_for.as_secs())),
        verdict.name(),
    )
}

/// `watch`'s summary of a process that ended, and what it was when last
/// seen.
pub fn ended(how: crate::watch::event::Ending, last: Option<Verdict>) -> String {
    use crate::watch::event::Ending;
    let killed = |signal: i32| signal_names(1 << (signal - 1)).join("");
    let how = match how {
        Ending::Exited(status) => format!("exited with status {status}"),
        Ending::Killed(signal) => format!("killed by {}", killed(signal)),
        Ending::Unreaped(status) => {
            let status = match Ending::reaped(status) {
                Ending::Exited(code) => format!(" with status {code}"),
                Ending::Killed(signal) => format!(", killed by {}", killed(signal)),
                _ => String::new(),
            };
            format!("zombie: exited{status}, and its parent has not reaped it")
        }
        Ending::Unknown => "exited; how is unknown (its parent reaped it before watch looked again)".to_string(),
    };
    match last {
        Some(verdict) => format!("{how}; it was {} when last seen", verdict.name()),
        None => how.to_string(),
    }
}

/// The first line of a replayed report: which snapshot, captured when and
/// where.
pub fn replay(file: &str, host: &crate::report::HostReport) -> String {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(host.captured_at_unix_ms);
    let kernel = host
        .kernel_release
        .as_deref()
        .map(|k| format!(", kernel {k}"))
        .unwrap_or_default();
    format!(
        "Replay of the snapshot {}, captured {} on {} ({}{kernel}): not a live diagnosis.",
        crate::text::escape_bytes(file.as_bytes()),
        humantime::format_rfc3339_seconds(when),
        host.hostname
            .as_deref()
            .map(|h| crate::text::escape_bytes(h.as_bytes()))
            .unwrap_or_else(|| "an unknown host".into()),
        host.arch,
    )
}

/// What a scan missed, in words; `None` when it saw everything.
pub fn host_unseen(visibility: &Visibility) -> Option<String> {
    let setting = visibility.hidepid.as_deref().filter(|&h| h != "off");
    match (setting, visibility.unreadable_processes, visibility.hidden_threads) {
        (_, 0, Some(0)) | (None | Some("noaccess"), 0, _) => None,
        (Some(setting), 0, Some(threads)) => Some(format!(
            "/proc is mounted hidepid={setting}, which left out processes with about {threads} threads"
        )),
        (Some(setting), 0, None) => Some(format!(
            "/proc is mounted hidepid={setting}, which may leave out other users' processes"
        )),
        (Some(setting), unreadable, _) => Some(format!(
            "/proc is mounted hidepid={setting} and {unreadable} processes in it could not be read"
        )),
        (None, unreadable, _) => Some(format!("{unreadable} processes in /proc could not be read")),
    }
}
