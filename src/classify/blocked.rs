//! Findings about waits that cannot end by themselves: writes into a full
//! pipe or socket, a full wakeup fd that loses signals, and deadlock cycles.

use super::finding::*;
use super::graph::{Channel, EdgeKind, World};
use super::view::{FdKind, ThreadView, View};
use super::Judge;
use crate::linux::fd::Access;
use crate::linux::wait::Wait;
use std::collections::BTreeMap;

/// Threads blocked writing into a pipe or socket that cannot take more: one
/// finding per fd, naming every thread blocked on it.
pub(super) fn full_writes(judge: &mut Judge, view: &View) -> Vec<Finding> {
    let world = judge.world;
    let blocked_writing = |t: &&ThreadView| t.wait == Some(Wait::Write) && t.state == Some('S');
    let mut writers: BTreeMap<i32, Vec<&ThreadView>> = BTreeMap::new();
    for thread in view.threads.iter().filter(blocked_writing) {
        if let Some(fd) = thread.fd.filter(|&fd| view.fd(fd).is_some_and(|f| f.kind.is_channel())) {
            writers.entry(fd).or_default().push(thread);
        }
    }
    let mut findings: Vec<Finding> = writers
        .into_iter()
        .map(|(fd, threads)| {
            let mut evidence: Vec<Evidence> = threads
                .iter()
                .map(|t| Evidence::ThreadIn {
                    thread: ThreadRef {
                        tid: t.tid(),
                        main: false,
                    },
                    comm: t.comm(),
                    call: t.call(),
                    blocked: true,
                })
                .collect();
            if let Some(fill) = view.fd(fd).and_then(|f| f.pipe_fill()) {
                let steady = first_fill(view, fd) == Some(fill.buffered_bytes) && view.progress.is_some();
                evidence.push(Evidence::PipeFill { fill, steady });
            }
            let claim = Claim::BlockedWriting {
                fd: world.fd_facts(view, fd),
                pending_in: None,
            };
            Finding::new(Verdict::PipeFull, claim, evidence).of_thread(threads[0].tid())
        })
        .collect();
    findings.extend(pending_writes(world, view));
    // How the reader is doing: why it does not drain (sleeping in a poll
    // loop, waiting for something else).
    for finding in &mut findings {
        let Claim::BlockedWriting { fd, .. } = &finding.claim else {
            continue;
        };
        let Some(reader) = fd.peers.iter().find(|p| p.pid != view.pid).cloned() else {
            continue;
        };
        if let Some(d) = judge.diagnose(reader.pid).cloned() {
            finding.evidence.push(Evidence::OtherEnd {
                role: EndRole::Reader,
                owner: ProcessRef {
                    pid: reader.pid,
                    comm: reader.comm,
                },
                verdict: d.verdict,
                claim: Box::new(d.deciding().claim.clone()),
                stuck_for_ms: d.stuck_for_ms.and_then(Result::ok),
            });
        }
    }
    // Without the syscall (no ptrace access) the fd is unknown, but a pipe or
    // socket write wchan still says the buffer is full.
    for thread in view.threads.iter().filter(blocked_writing).filter(|t| t.fd.is_none()) {
        let Some(wchan) = thread.wchan else { continue };
        findings.push(
            Finding::new(
                Verdict::PipeFull,
                Claim::BlockedWritingUnknownFd {
                    tid: thread.tid(),
                    pipe: wchan.contains("pipe"),
                    wchan: wchan.to_string(),
                    why: thread.thread.syscall.reason().cloned(),
                },
                vec![Evidence::ThreadWchan {
                    tid: thread.tid(),
                    comm: thread.comm(),
                    state: 'S',
                    wchan: Some(wchan.to_string()),
                }],
            )
            .of_thread(thread.tid()),
        );
    }
    findings
}

/// Non-blocking writes an event loop waits to finish (Node, asyncio, Go):
/// the thread sleeps in epoll_wait, not in write(), but it is as stuck.
fn pending_writes(world: &World, view: &View) -> Vec<Finding> {
    view.pending_writes
        .iter()
        .filter_map(|pending| {
            let thread = view.threads.iter().find(|t| t.tid() == pending.tid)?;
            let mut evidence = vec![
                Evidence::ThreadIn {
                    thread: thread.named(view.pid),
                    comm: thread.comm(),
                    call: thread.call(),
                    blocked: false,
                },
                Evidence::WaitsToWrite {
                    epfd: pending.epfd,
                    fd: pending.fd,
                },
            ];
            if let Some(fill) = view.fd(pending.fd).and_then(|f| f.pipe_fill()) {
                let steady = view.progress.is_some();
                evidence.push(Evidence::PipeFill { fill, steady });
            }
            let claim = Claim::BlockedWriting {
                fd: world.fd_facts(view, pending.fd),
                pending_in: Some(thread.syscall_name.unwrap_or("epoll_wait")),
            };
            Some(Finding::new(Verdict::PipeFull, claim, evidence).of_thread(pending.tid))
        })
        .collect()
}

/// Listening sockets whose accept queue is full (more waiting than the
/// backlog): the kernel drops new connections until the process accepts.
pub(super) fn full_accept_queues(world: &World, view: &View) -> Vec<Finding> {
    view.fds
        .iter()
        .filter_map(|f| {
            let t = view.tcp(f.inode?)?;
            (t.state == "LISTEN" && t.rx_queue > t.tx_queue).then(|| {
                Finding::new(
                    Verdict::AcceptQueueFull,
                    Claim::AcceptQueueFull(world.fd_facts(view, f.fd.fd)),
                    vec![],
                )
            })
        })
        .collect()
}

/// Another process blocked writing into a pipe only this one reads, while
/// this one is not stuck with it (that would be a deadlock): this one is
/// not draining it (a `Popen.wait(timeout=...)` poll loop that never reads
/// the child's output). Critical: the writer cannot finish until it does.
pub(super) fn undrained(world: &World, view: &View) -> Vec<Finding> {
    if world.is_deadlocked(view.pid) {
        return Vec::new();
    }
    world
        .edges_to(view.pid)
        .filter(|e| e.kind == EdgeKind::Write && e.channel == Some(Channel::Pipe) && e.complete && e.to == [view.pid])
        .filter_map(|edge| {
            let writer = world.view(edge.from)?;
            let fd = edge
                .fd
                .and_then(|fd| world.peers(edge.from, fd).into_iter().find(|p| p.pid == view.pid))?;
            let claim = Claim::NotDraining {
                writer: writer.named(),
                child: writer.stat().and_then(|s| s.ppid) == Some(view.pid),
                fd: world.fd_facts(view, fd.fd),
            };
            Some(Finding::new(
                Verdict::PipeFull,
                claim,
                vec![Evidence::Edge(edge.clone())],
            ))
        })
        .collect()
}

/// The fill of `fd` at the first sample.
fn first_fill(view: &View, fd: i32) -> Option<u64> {
    let fds = view.first.fds.ok()?;
    let pipe = fds.iter().find(|f| f.fd == fd)?.pipe.as_ref()?.ok()?;
    Some(pipe.buffered_bytes)
}

/// The process holds both ends of a pipe or socketpair, the write side is
/// non-blocking, and it is full: every write (a signal handler's wakeup
/// byte) fails with EAGAIN, so the wakeups, and the signals, are lost.
pub(super) fn full_wakeup_fds(view: &View) -> Vec<Finding> {
    let mut findings = Vec::new();
    for write_end in &view.fds {
        let Some(inode) = write_end.inode else { continue };
        if write_end.nonblocking() != Some(true) {
            continue;
        }
        let (read_fd, full, fill) = match write_end.kind {
            FdKind::Pipe if write_end.access() == Some(Access::Write) => {
                let read_end = view
                    .fds
                    .iter()
                    .find(|f| f.inode == Some(inode) && f.access() == Some(Access::Read));
                let fill = write_end.pipe_fill().map(WakeupFill::Pipe);
                (read_end.map(|r| r.fd.fd), view.pipe_full(write_end), fill)
            }
            FdKind::Socket => {
                let Some(sock) = view.unix(inode) else { continue };
                let read_end = sock
                    .peer_inode
                    .and_then(|peer| view.fds.iter().find(|f| f.inode == Some(peer)));
                let fill = sock
                    .wmem_alloc
                    .zip(sock.sndbuf)
                    .map(|(used, size)| WakeupFill::SendBuffer { used, size });
                (read_end.map(|r| r.fd.fd), view.unix_full(sock), fill)
            }
            _ => continue,
        };
        let (Some(read_fd), Some(true)) = (read_fd, full) else {
            continue;
        };
        let socketpair = write_end.kind == FdKind::Socket;
        let write_fd = write_end.fd.fd;
        let mut evidence = vec![
            Evidence::WakeupWriteEnd {
                fd: write_fd,
                socketpair,
                fill,
            },
            Evidence::WakeupReadEnd { fd: read_fd },
        ];
        evidence.extend(signal_evidence(view));
        findings.push(Finding::new(
            Verdict::WakeupFdEagain,
            Claim::WakeupFdFull {
                socketpair,
                write_fd,
                read_fd,
            },
            evidence,
        ));
    }
    findings
}

fn signal_evidence(view: &View) -> Vec<Evidence> {
    let Some(status) = view.status() else { return vec![] };
    let mut evidence = Vec::new();
    if let Some(caught) = status.sig_caught.filter(|&m| m != 0) {
        evidence.push(Evidence::SignalsCaught(caught));
    }
    let pending = status.sig_pending.unwrap_or(0) | status.sig_shared_pending.unwrap_or(0);
    if pending != 0 {
        evidence.push(Evidence::SignalsPending(pending));
    }
    evidence
}

/// On a deadlock cycle, or blocked behind one.
pub(super) fn deadlock(world: &World, view: &View) -> Option<Finding> {
    let (mut cycle, on_it) = world.cycle(view.pid)?;
    if on_it {
        let start = cycle.iter().position(|&p| p == view.pid).unwrap_or(0);
        cycle.rotate_left(start);
    }
    let own = world.edges(view.pid).to_vec();
    let mut evidence: Vec<Evidence> = own.iter().cloned().map(Evidence::Edge).collect();
    for &pid in &cycle {
        if let Some(member) = world.view(pid) {
            evidence.push(Evidence::CycleMember {
                pid,
                comm: member.comm(),
                state: member.stat().map(|s| s.state),
            });
        }
    }
    evidence.push(Evidence::NoProgressOver(view.progress.as_ref().map(|p| p.interval_ms)));
    let claim = Claim::Deadlock {
        own: if on_it { Vec::new() } else { own },
        cycle: world.cycle_edges(&cycle),
        on_it,
    };
    let next = cycle.get(1).copied().unwrap_or(view.pid);
    let tid = world
        .edges(view.pid)
        .iter()
        .find(|e| e.to.contains(&next))
        .map(|e| e.tid);
    let mut finding = Finding::new(Verdict::Deadlock, claim, evidence);
    finding.tid = tid.or_else(|| world.edges(view.pid).first().map(|e| e.tid));
    finding.cycle = Some(cycle);
    Some(finding)
}
