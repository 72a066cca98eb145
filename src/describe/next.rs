//! The next step: one imperative line a person on call can act on, built
//! from a finding's facts. `None` when there is nothing to do (a healthy
//! wait) or nothing sure to say.

use super::fd;
use super::units::{process, process_name};
use crate::classify::finding::*;
use crate::classify::graph::{Channel, Edge, EdgeKind};

/// The next step for a finding of process `pid`.
pub fn next_step(finding: &Finding, pid: i32) -> Option<String> {
    Some(match &finding.claim {
        Claim::Deadlock { own, cycle, .. } => return deadlock(&finding.evidence, own, cycle, pid),
        Claim::BlockedWriting { fd: f, .. } => match f.peers.iter().find(|p| p.pid != pid) {
            // The reader is not stuck itself (a poll loop): it simply never reads.
            Some(reader) if reader_waits_elsewhere(&finding.evidence) => format!(
                "its reader {} never reads fd {} while it waits (a Popen.wait(timeout) loop?): make it read while waiting (communicate(), or a thread draining the pipe); to unstick now, kill {pid}",
                process_name(reader.pid, reader.comm.as_ref()),
                reader.fd,
            ),
            Some(reader) => format!(
                "its reader {} does not read fd {}: see why (whystuck {}); to unstick now, make it read, or kill one of them",
                process_name(reader.pid, reader.comm.as_ref()),
                reader.fd,
                reader.pid
            ),
            None => format!("nobody drains fd {}: find who should read it; to unstick now, kill {pid}", f.fd),
        },
        Claim::BlockedWritingUnknownFd { .. } => {
            format!("run whystuck as its user (or as root) to see which fd and who reads it: whystuck {pid}")
        }
        Claim::WakeupFdFull { read_fd, .. } => format!(
            "the event loop is blocked elsewhere and never drains its wakeup fd {read_fd}: signals are being lost; find where its main thread is stuck (its stack), then restart it"
        ),
        Claim::Stopped(StopCause::Signal) => format!("resume it with kill -CONT {pid} (if job control stopped it: fg in its shell)"),
        Claim::Stopped(StopCause::Background(stop)) => format!(
            "bring its job to the foreground: fg in the shell that started it (kill -CONT alone stops it again at its next {} the terminal){}",
            if stop.read { "read of" } else { "write to" },
            if stop.read { "; or give it a stdin that is not the terminal" } else { "" }
        ),
        Claim::Stopped(StopCause::Tracer(tracer)) => format!(
            "its tracer {} holds it: continue or detach the debugger, or kill the tracer",
            process(tracer)
        ),
        Claim::Stopped(StopCause::TracingStop) => "a debugger holds it stopped: continue or detach it".to_string(),
        Claim::NotDraining { writer, fd: f, .. } => format!(
            "read fd {} while waiting (communicate(), or a thread draining it): {} cannot finish until you do; to unstick now, kill {}",
            f.fd,
            process(writer),
            writer.pid
        ),
        Claim::StoppedJob(child) => format!(
            "bring {} to the foreground (fg) or give it a stdin; or kill it",
            process(child)
        ),
        Claim::Zombie { parent: Some(parent) } => format!(
            "its parent {} must reap it (waitpid); if the parent is stuck, see why (whystuck {})",
            process(parent),
            parent.pid
        ),
        Claim::DiskWait { on: Some(crate::linux::wait::DiskWait::Fuse), .. } => {
            "the FUSE server is not answering: restart it, or abort the connection (umount -l, or echo 1 > /sys/fs/fuse/connections/N/abort)".to_string()
        }
        Claim::DiskWait { on: Some(crate::linux::wait::DiskWait::Nfs), .. } => {
            "the NFS server is not answering: check the server and the network".to_string()
        }
        Claim::DiskWait { .. } => "it waits for the kernel (usually storage): check the device (dmesg, iostat)".to_string(),
        Claim::Frozen(f) => super::cgroup::next_frozen(f),
        Claim::Throttled(t) => super::cgroup::next_throttled(t),
        Claim::MemoryPressure(m) => super::cgroup::next_memory(m),
        Claim::Busy(_) => format!("see where it spends its time: perf top -p {pid} (a Python program: py-spy top --pid {pid})"),
        Claim::Waiting { wait, .. } => return waiting(wait, pid),
        _ => return None,
    })
}

fn waiting(wait: &WaitClaim, pid: i32) -> Option<String> {
    Some(match wait {
        WaitClaim::Futex { .. } => format!(
            "see which locks its threads wait for: py-spy dump --pid {pid} (Python), jstack {pid} (Java), or gdb -p {pid} -batch -ex 'thread apply all bt'"
        ),
        WaitClaim::Child(ChildWait {
            outcome: ChildOutcome::Stuck(state),
            ..
        }) => format!("its child is stuck: see why (whystuck {})", state.child.pid),
        WaitClaim::Accepting(_) => "it waits for a client to connect: nothing to do unless one should have".to_string(),
        WaitClaim::Reading(Some(f)) => match f.peers.iter().find(|p| p.pid != pid) {
            Some(writer) => format!(
                "it waits for input from {}: see what that one is doing (whystuck {})",
                process_name(writer.pid, writer.comm.as_ref()),
                writer.pid
            ),
            None => match f.peers.first() {
                // Its own pipe: only one of its threads can write it.
                Some(own) => format!(
                    "only this process holds the other end (fd {}): one of its own threads has to write it",
                    own.fd
                ),
                None => format!("it waits for input on {}: check whatever should send it", fd::brief(f)),
            },
        },
        WaitClaim::Hidden { .. } => format!("run whystuck as its user, or as root: whystuck {pid}"),
        WaitClaim::Epoll(epoll) => return event_loop(&epoll.watched, pid),
        WaitClaim::Polling { connections, .. } => return event_loop(connections, pid),
        WaitClaim::Lock(lock) => return lock_step(lock, pid),
        WaitClaim::Terminal(t) => format!(
            "it waits for someone to type on {}: answer it there, or, if nobody will, run it with a stdin that is not a terminal (< /dev/null)",
            t.tty.as_ref().map_or("its terminal".to_string(), |t| t.escaped())
        ),
        WaitClaim::Dns(dns) => match &dns.server {
            DnsServer::Udp(addr) => format!(
                "the DNS server {addr} does not answer: check it (dig @{} example.com; resolvectl status)",
                addr.ip()
            ),
            DnsServer::Unix(_) => {
                "systemd-resolved does not answer: check it (resolvectl status; journalctl -u systemd-resolved)".to_string()
            }
        },
        _ => return None,
    })
}

/// Who to look at for a lock wait: the holder, or, when none is known,
/// how to find it.
fn lock_step(lock: &LockWait, pid: i32) -> Option<String> {
    let class = super::held::class_name(lock);
    let path = lock.fd.as_ref().and_then(|f| match &f.what {
        FdWhat::Other { target, .. } => Some(target.escaped()),
        _ => None,
    });
    let on = path.as_ref().map(|p| format!(" on {p}")).unwrap_or_default();
    Some(match lock.holders.iter().find(|h| h.peer.pid != pid) {
        Some(h) => format!(
            "it waits for {} to release its {class} lock{on}: see why that one holds it (whystuck {})",
            process_name(h.peer.pid, h.peer.comm.as_ref()),
            h.peer.pid
        ),
        None if !lock.holders.is_empty() => {
            format!("it waits for a {class} lock it holds itself through another fd: a bug in the program; kill {pid}")
        }
        None => format!(
            "see who holds the {class} lock{on}: lslocks (util-linux), run where the holder's pid namespace is visible"
        ),
    })
}

/// A deadlock broken where it can be: a parent waiting for a child whose
/// output it never reads is the Popen deadlock, with its known fix.
fn deadlock(evidence: &[Evidence], own: &[Edge], cycle: &[Edge], pid: i32) -> Option<String> {
    let comm = |p: i32| {
        evidence.iter().find_map(|e| match e {
            Evidence::CycleMember { pid: m, comm, .. } if *m == p => comm.clone(),
            _ => None,
        })
    };
    let named = |p: i32| process_name(p, comm(p).as_ref());
    let waits = cycle.iter().find(|e| e.kind == EdgeKind::Child);
    let writes = cycle
        .iter()
        .find(|e| e.kind == EdgeKind::Write && e.channel == Some(Channel::Pipe));
    match (waits, writes) {
        (Some(wait), Some(write)) if wait.to.contains(&write.from) && write.to.contains(&wait.from) => Some(format!(
            "{} waits for {} to exit but never reads its output ({}): read while waiting (communicate(), or drain the pipe in a thread); to unstick now, kill {}",
            named(wait.from),
            write.from,
            write.fd.map(|fd| format!("fd {fd}")).unwrap_or_else(|| "a pipe".into()),
            write.from
        )),
        _ => {
            let behind = own.first().map(|e| e.from).filter(|&f| f == pid && !cycle.iter().any(|e| e.from == pid));
            let members: Vec<String> = cycle.iter().map(|e| named(e.from)).collect();
            let victim = cycle.first().map(|e| e.from)?;
            let alone = cycle.iter().all(|e| e.from == victim);
            Some(match (behind, alone) {
                (Some(_), _) => format!("it waits behind a deadlock of {}: break that cycle (kill {victim})", members.join(", ")),
                (None, true) => format!("{} waits on itself: nothing else can move it; restart it (kill {victim})", members[0]),
                (None, false) => format!("nothing in the cycle of {} can move: kill one of them (kill {victim})", members.join(", ")),
            })
        }
    }
}

/// The reader of a full pipe is not stuck on it: it sleeps or polls
/// (`sleeping`, `running`, `idle-in-epoll`, or found not draining), so it
/// will not read by itself.
fn reader_waits_elsewhere(evidence: &[Evidence]) -> bool {
    evidence.iter().any(|e| match e {
        Evidence::OtherEnd {
            role: EndRole::Reader,
            verdict,
            claim,
            ..
        } => {
            matches!(verdict, Verdict::Sleeping | Verdict::Running | Verdict::IdleInEpoll)
                || matches!(**claim, Claim::NotDraining { .. })
        }
        _ => false,
    })
}

/// An event loop waits on what its fds bring: the first other process
/// that should write to it, or a connection that has gone silent.
fn event_loop(watched: &[FdFacts], pid: i32) -> Option<String> {
    if let Some(writer) = watched
        .iter()
        .filter(|f| !f.is_own_wakeup())
        .flat_map(|f| f.peers.iter())
        .find(|p| p.pid != pid)
    {
        return Some(format!(
            "it waits for input from {}: see what that one is doing (whystuck {})",
            process_name(writer.pid, writer.comm.as_ref()),
            writer.pid
        ));
    }
    let silent = watched.iter().find_map(|f| match &f.what {
        FdWhat::Tcp(t) if t.last_recv_ms.is_some_and(|ms| ms >= 10_000) => Some(t),
        _ => None,
    })?;
    Some(format!(
        "it waits for {}, which has sent nothing for {}: check that peer, or the network to it",
        silent.remote,
        super::elapsed(u64::from(silent.last_recv_ms.unwrap_or(0)))
    ))
}
