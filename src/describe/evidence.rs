//! Evidence in words: a line per fact behind a finding, the wait-for edges
//! of a deadlock, the call a thread is in.

use super::units::{comm_text, process, reason_text, thread_name};
use super::{duration_ms, fd, pipe_fill, summary, wakeup_kind};
use crate::classify::finding::*;
use crate::classify::graph::{Channel, Edge, EdgeKind};
use crate::linux::signal::signal_names;
use crate::linux::wait::{self, Timeout, Wait};

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
            "thread {tid} ({}) state {state}, {}",
            comm_text(comm.as_ref()),
            match wchan.as_deref() {
                Some("") => "no wchan".to_string(),
                Some(w) => format!("wchan {w}"),
                None => "wchan unavailable".to_string(),
            }
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
        Evidence::PollSetUnread => {
            "which fds it polls is in its memory, which whystuck does not read: they are not known".into()
        }
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
        Evidence::Cgroup(e) => super::cgroup::evidence(e),
        Evidence::OtherEnd {
            role,
            owner,
            verdict,
            claim,
            stuck_for_ms,
        } => format!(
            "{} {}, which is {}: {}{}",
            match role {
                EndRole::Reader => "the reader is",
                EndRole::Listener => "the listener belongs to",
            },
            process(owner),
            verdict.name(),
            summary(claim),
            stuck_for_ms
                .map(|ms| format!(", for {}", super::elapsed(ms)))
                .unwrap_or_default()
        ),
        Evidence::LockHolder {
            holder,
            fd,
            verdict,
            claim,
            stuck_for_ms,
        } => format!(
            "the lock is held by {} through fd {fd}, which is {}: {}{}",
            process(holder),
            verdict.name(),
            summary(claim),
            stuck_for_ms
                .map(|ms| format!(", for {}", super::elapsed(ms)))
                .unwrap_or_default()
        ),
        Evidence::StaleLockPid(pid) => format!(
            "/proc/locks names pid {pid}, which does not hold the lock: a flock holder that forked and exited leaves its pid there (or the pid was reused)"
        ),
        Evidence::BackgroundGroup { pgrp, foreground } => format!(
            "its process group {pgrp} is not its terminal's foreground group {foreground}: SIGCONT alone lets it run until it touches the terminal again, and stop"
        ),
    }
}

/// "1201 is blocked writing fd 1 (pipe, full); its only reader is 1200"
pub fn edge(edge: &Edge) -> String {
    let to: Vec<String> = edge.to.iter().map(|p| p.to_string()).collect();
    let fd = edge.fd.map(|fd| format!("fd {fd}")).unwrap_or_else(|| "an fd".into());
    let (verb, fill, role) = match edge.kind {
        EdgeKind::Child => return format!("{} waits in {} for {}", edge.from, edge.call, to.join(" or ")),
        EdgeKind::Connect => {
            return format!(
                "{} waits in {} on {fd} for {} to accept",
                edge.from,
                edge.call,
                to.join(" or ")
            )
        }
        EdgeKind::Lock => {
            return format!(
                "{} waits in {} on {fd} for a lock held by {}",
                edge.from,
                edge.call,
                to.join(" and ")
            )
        }
        EdgeKind::Write => ("writing", "full", ("reader", "readers")),
        EdgeKind::Read => ("reading", "empty", ("writer", "writers")),
    };
    let pipe = matches!(edge.channel, Some(Channel::Pipe | Channel::Fifo));
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
        Some(Channel::Fifo) => "FIFO",
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

pub(super) fn edges(edges: &[Edge]) -> String {
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
