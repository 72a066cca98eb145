//! What the deciding thread is doing: on a CPU, or parked in a wait, and
//! for a wait on children, how the children are doing.

use super::finding::*;
use super::graph::World;
use super::lifecycle::relative_ref;
use super::view::{ThreadView, View};
use super::{waits, Judge};
use crate::linux::wait::Wait;
use crate::snapshot::{Reason, Stat};

/// The thread that matters: the main thread, unless it waits on a futex (or
/// cannot be seen) while another thread waits on something more telling.
fn deciding_thread<'v, 'a>(view: &'v View<'a>) -> Option<&'v ThreadView<'a>> {
    let rank = |t: &ThreadView| match t.wait {
        _ if t.on_cpu() => 0,
        Some(Wait::Write) => 1,
        Some(Wait::Read | Wait::Accept | Wait::FifoOpen | Wait::Lock) => 2,
        Some(Wait::Epoll | Wait::Poll) => 3,
        Some(Wait::Child) => 4,
        Some(Wait::Connect | Wait::Sleep | Wait::Signal | Wait::Other) => 5,
        None => 6,
        Some(Wait::Futex) => 7,
    };
    if let Some(named) = view
        .named_thread
        .and_then(|tid| view.threads.iter().find(|t| t.tid() == tid))
    {
        return Some(named);
    }
    match view.main_thread() {
        Some(main) if !matches!(main.wait, Some(Wait::Futex) | None) || main.on_cpu() => Some(main),
        main => view
            .threads
            .iter()
            .filter(|t| rank(t) < 6)
            .min_by_key(|t| rank(t))
            .or(main),
    }
}

/// What the deciding thread is doing, turned into a finding.
pub(super) fn activity(judge: &mut Judge, view: &View) -> Option<Finding> {
    let world = judge.world;
    let moved = view.progress.as_ref().and_then(|p| p.moved());
    let running = || {
        Finding::new(
            Verdict::Running,
            Claim::Running(view.progress.as_deref().cloned()),
            vec![],
        )
    };
    let Some(thread) = deciding_thread(view) else {
        return Some(match moved {
            Some(true) => running(),
            _ => Finding::new(
                Verdict::Unknown,
                Claim::ThreadsUnreadable(view.last.threads.reason().cloned()),
                vec![],
            ),
        });
    };
    // D (but for a vfork parent's wait on its child) and stopped are
    // findings of their own.
    if (thread.state == Some('D') && thread.wait != Some(Wait::Child)) || matches!(thread.state, Some('T' | 't')) {
        return None;
    }
    // The deciding thread's own work decides running against waiting; the
    // process's, when the thread was not seen twice.
    let io_moved = view
        .progress
        .as_ref()
        .is_some_and(|p| [p.io_bytes, p.io_syscalls].iter().any(|d| d.is_some_and(|d| d > 0)));
    // Another thread's work counts too (a lock holder, a worker), but not
    // a housekeeping thread's between timed sleeps (a JVM's periodic task).
    let others_worked = view
        .threads
        .iter()
        .filter(|t| t.tid() != thread.tid() && !t.timed_wait())
        .any(|t| t.worked(io_moved) == Some(true));
    let moved = thread.worked(io_moved).map(|w| w || others_worked).or(moved);
    let who = thread.named(view.pid);
    let mut evidence = vec![Evidence::ThreadIn {
        thread: who,
        comm: thread.comm(),
        call: thread.call(),
        blocked: false,
    }];
    if view.named_thread == Some(thread.tid()) {
        evidence.push(Evidence::NamedThread {
            tid: thread.tid(),
            pid: view.pid,
        });
    }
    let fd = thread.fd.map(|fd| world.fd_facts(view, fd));
    let call = thread.syscall_name;
    let (kind, wait) =
        match thread.wait {
            _ if thread.on_cpu() => return Some(running()),
            Some(Wait::Write) => match fd {
                // A write that fills a pipe or socket is a finding of its own.
                Some(_)
                    if thread
                        .fd
                        .and_then(|fd| view.fd(fd))
                        .is_some_and(|f| f.kind.is_channel()) =>
                {
                    return None
                }
                Some(fd) => (Verdict::Sleeping, WaitClaim::Writing(fd)),
                None => return None, // a pipe or socket write wchan: a pipe-full finding of its own
            },
            Some(Wait::Read) => match (waits::terminal(view, thread), waits::dns(view, thread)) {
                (Some(tty), _) => (Verdict::TerminalInput, WaitClaim::Terminal(tty)),
                (None, Some(dns)) => (Verdict::BlockedOnRead, WaitClaim::Dns(dns)),
                (None, None) => (Verdict::BlockedOnRead, WaitClaim::Reading(fd)),
            },
            Some(Wait::Lock) => (
                Verdict::LockWait,
                WaitClaim::Lock(waits::lock_wait(judge, view, thread, &mut evidence)),
            ),
            Some(Wait::FifoOpen) => (Verdict::BlockedOnRead, WaitClaim::OpeningFifo),
            Some(Wait::Accept) => (Verdict::BlockedOnRead, WaitClaim::Accepting(fd)),
            Some(Wait::Epoll) => {
                let epoll = epoll_wait(world, view, thread.fd);
                evidence.extend(epoll.watched.iter().cloned().map(Evidence::Watching));
                (Verdict::IdleInEpoll, WaitClaim::Epoll(epoll))
            }
            Some(Wait::Poll) => {
                // poll and select take their fds from the target's memory,
                // which whystuck does not read: say so, never guess them.
                evidence.push(Evidence::PollSetUnread);
                match waits::dns(view, thread) {
                    // A resolver's socket stands for the set (glibc polls it).
                    Some(dns) => (Verdict::BlockedOnRead, WaitClaim::Dns(dns)),
                    None => {
                        // Which fds it polls is unknown, but the network
                        // connections it holds are what such a loop waits on.
                        let connections: Vec<FdFacts> = view
                            .fds
                            .iter()
                            .filter(|f| f.inode.and_then(|i| view.tcp(i)).is_some_and(|t| t.state != "LISTEN"))
                            .map(|f| world.fd_facts(view, f.fd.fd))
                            .collect();
                        (Verdict::IdleInEpoll, WaitClaim::Polling { call, connections })
                    }
                }
            }
            Some(Wait::Futex) if thread.timed_futex() => (Verdict::Sleeping, WaitClaim::TimedFutex),
            Some(Wait::Futex) => {
                let futex_waiters = view.threads.iter().filter(|t| t.wait == Some(Wait::Futex));
                evidence.extend(futex_waiters.clone().filter(|t| t.tid() != thread.tid()).map(|t| {
                    Evidence::ThreadIn {
                        thread: ThreadRef {
                            tid: t.tid(),
                            main: false,
                        },
                        comm: t.comm(),
                        call: t.call(),
                        blocked: false,
                    }
                }));
                let wait = WaitClaim::Futex {
                    parked: futex_waiters.count(),
                    threads: view.threads.len(),
                    progress: view.progress.as_deref().cloned(),
                };
                (Verdict::FutexBlocked, wait)
            }
            Some(Wait::Child) => return Some(waiting_on_child(judge, view, thread, evidence)),
            Some(Wait::Sleep) => (Verdict::Sleeping, WaitClaim::Sleeping(call)),
            Some(Wait::Signal) => (Verdict::Sleeping, WaitClaim::Signal(call)),
            // Waiting on the network (a SYN unanswered), not sleeping; on
            // this host, on the listener's owner, whose state is evidence.
            Some(Wait::Connect) => {
                let owner = fd
                    .as_ref()
                    .and_then(|f| f.peers.iter().find(|p| p.pid != view.pid))
                    .cloned();
                if let Some(owner) = owner {
                    if let Some(d) = judge.diagnose(owner.pid).cloned() {
                        evidence.push(Evidence::OtherEnd {
                            role: EndRole::Listener,
                            owner: ProcessRef {
                                pid: owner.pid,
                                comm: owner.comm,
                            },
                            verdict: d.verdict,
                            claim: Box::new(d.deciding().claim.clone()),
                            stuck_for_ms: d.stuck_for_ms.and_then(Result::ok),
                        });
                    }
                }
                (Verdict::BlockedOnRead, WaitClaim::Connecting(fd))
            }
            Some(Wait::Other) => (Verdict::Sleeping, WaitClaim::ParkedIn(call)),
            None => return Some(settle(view, moved, evidence, unnamed_wait(view, thread, who)).of_thread(who.tid)),
        };
    let finding = settle(view, moved, evidence, (kind, Claim::Waiting { thread: who, wait }));
    Some(finding.of_thread(who.tid))
}

/// The finding for a wait, unless the process moved over the interval:
/// then it is running, with the wait it was sampled in as evidence.
fn settle(view: &View, moved: Option<bool>, mut evidence: Vec<Evidence>, (kind, claim): (Verdict, Claim)) -> Finding {
    if moved == Some(true) {
        evidence.insert(0, Evidence::Sampled(Box::new(claim)));
        return Finding::new(
            Verdict::Running,
            Claim::Running(view.progress.as_deref().cloned()),
            evidence,
        );
    }
    let mut finding = Finding::new(kind, claim, evidence);
    if kind == Verdict::Unknown {
        // Only the wait is unreadable (another user's process): say so
        // plainly, without failing every unprivileged run.
        finding.severity = Severity::Info;
    }
    if kind == Verdict::TerminalInput && view.stat().is_some_and(|s| s.session == Some(view.pid)) {
        // A session leader reading its terminal is a login shell at its
        // prompt: a person's session, not an agent waiting for a key.
        finding.severity = Severity::Info;
    }
    finding
}

/// A wait no syscall or wchan family names. When the facts were readable,
/// the thread is simply asleep there; when they were refused, whystuck does
/// not know, and says so instead of guessing.
fn unnamed_wait(view: &View, thread: &ThreadView, who: ThreadRef) -> (Verdict, Claim) {
    let state = thread.state;
    let wchan = thread.wchan.map(str::to_string);
    if view.stat().is_some_and(Stat::is_kernel_thread) {
        return (Verdict::Sleeping, Claim::KernelThreadAsleep { state, wchan });
    }
    let refused: Vec<(&'static str, Reason)> = [
        ("syscall", thread.thread.syscall.reason()),
        ("wchan", thread.thread.wchan.reason()),
    ]
    .into_iter()
    .filter_map(|(what, reason)| Some((what, reason?.clone())))
    .collect();
    let (kind, wait) = if wchan.is_some() || refused.is_empty() {
        (Verdict::Sleeping, WaitClaim::Asleep { state, wchan })
    } else {
        let full_view = view.host.full_view == Some(true);
        (
            Verdict::Unknown,
            WaitClaim::Hidden {
                state,
                refused,
                full_view,
            },
        )
    };
    (kind, Claim::Waiting { thread: who, wait })
}

/// The epoll set the thread waits on, and whether anything but a timer or
/// a signal could still wake it.
fn epoll_wait(world: &World, view: &View, epfd: Option<i32>) -> EpollWait {
    let Some(epfd) = epfd else {
        return EpollWait {
            epfd: None,
            watched: Vec::new(),
            hopeless: None,
        };
    };
    let mut targets: Vec<i32> = view
        .fd(epfd)
        .and_then(|fd| fd.fd.info.ok())
        .map(|info| info.epoll_targets.iter().map(|t| t.fd).collect())
        .unwrap_or_default();
    targets.sort_unstable();
    let has_tcp = view
        .fds
        .iter()
        .filter_map(|f| view.tcp(f.inode?))
        .any(|t| t.state == "ESTABLISHED");
    let hopeless = !targets.iter().any(|&fd| world.can_wake(view, fd));
    EpollWait {
        epfd: Some(epfd),
        watched: targets.iter().map(|&fd| world.fd_facts(view, fd)).collect(),
        hopeless: hopeless.then_some(has_tcp),
    }
}

/// A wait is as healthy as what it waits for: a parent waiting on a child
/// that is working is fine (and says so), a parent waiting on a stuck child
/// is as stuck as the child.
fn waiting_on_child(judge: &mut Judge, view: &View, thread: &ThreadView, mut evidence: Vec<Evidence>) -> Finding {
    let world = judge.world;
    let waited: Vec<i32> = match world.edges(view.pid).iter().find(|e| e.tid == thread.tid()) {
        Some(edge) => edge.to.clone(),
        None => view
            .last
            .children
            .ok()
            .map(|c| c.iter().map(|c| c.pid).collect())
            .unwrap_or_default(),
    };
    let mut working = None;
    let mut worst: Option<(Severity, ChildState)> = None;
    let mut described = Vec::new();
    for &pid in &waited {
        let child = child_ref(view, world, pid);
        let Some(diagnosis) = judge.diagnose(pid).cloned() else {
            described.push(ChildState { child, verdict: None });
            continue;
        };
        let progress = world.view(pid).and_then(|v| v.progress.as_deref());
        let is_working = progress.is_some_and(|p| p.working()) || diagnosis.severity == Severity::Ok;
        let state = ChildState {
            child: child.clone(),
            verdict: Some(diagnosis.verdict),
        };
        evidence.push(Evidence::Child {
            child: child.clone(),
            verdict: diagnosis.verdict,
            severity: diagnosis.severity,
            claim: Box::new(diagnosis.deciding().claim.clone()),
        });
        if is_working {
            // Its own work when it did some; else what its diagnosis says
            // (a shell between, waiting on a grandchild that works).
            let how = match progress {
                Some(p) if p.moved() == Some(true) => Working::Progress(p.clone()),
                _ => Working::Diagnosis(Box::new(diagnosis.deciding().claim.clone())),
            };
            working.get_or_insert(ChildOutcome::Working { child, how });
        } else if worst.as_ref().is_none_or(|(s, _)| diagnosis.severity > *s) {
            worst = Some((diagnosis.severity, state.clone()));
        }
        described.push(state);
    }
    let (severity, outcome) = match (working, worst, described.len()) {
        (Some(working), _, _) => (Severity::Ok, working),
        (None, Some((severity, state)), _) if severity >= Severity::Warn => (severity, ChildOutcome::Stuck(state)),
        (None, _, 0) => (Severity::Info, ChildOutcome::NoChildren),
        (None, _, 1) => (Severity::Info, ChildOutcome::One(described.remove(0))),
        (None, _, n) => (Severity::Info, ChildOutcome::Many(n)),
    };
    let wait = WaitClaim::Child(ChildWait {
        call: thread.syscall_name,
        outcome,
    });
    let claim = Claim::Waiting {
        thread: thread.named(view.pid),
        wait,
    };
    let mut finding = Finding::new(Verdict::WaitingOnChild, claim, evidence).of_thread(thread.tid());
    finding.severity = severity;
    finding
}

/// A child, named from whatever sample names it.
fn child_ref(view: &View, world: &World, pid: i32) -> ProcessRef {
    if let Some(child) = world.view(pid) {
        return child.named();
    }
    let relative = view.last.children.ok().and_then(|c| c.iter().find(|r| r.pid == pid));
    relative.map(relative_ref).unwrap_or(ProcessRef { pid, comm: None })
}
