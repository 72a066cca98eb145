//! classify: pure functions from a snapshot to verdicts with evidence.
//!
//! Every finding that holds is listed with its evidence; the most severe
//! becomes the verdict (ties go to the earlier [`Verdict`] in declaration
//! order). A multi-threaded process is judged by the thread that matters:
//! the main thread, unless it only waits on a futex for another thread
//! (`join`), in which case the most telling other thread decides.

pub mod graph;
pub mod view;

use crate::linux::signal::signal_names;
use crate::linux::wait::{self, Wait};
use crate::snapshot::*;
use graph::World;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use view::{name_relative, FdKind, ThreadView, View};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Info,
    Warn,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Critical => "critical",
        }
    }
}

/// Declaration order is the precedence among findings of equal severity.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Dead,
    Deadlock,
    Stalled,
    Stopped,
    DiskWait,
    PipeFull,
    WakeupFdEagain,
    FutexBlocked,
    Unknown,
    Busy,
    IdleInEpoll,
    BlockedOnRead,
    WaitingOnChild,
    Sleeping,
    Running,
}

impl Verdict {
    pub const ALL: [Verdict; 15] = [
        Verdict::Dead,
        Verdict::Deadlock,
        Verdict::Stalled,
        Verdict::Stopped,
        Verdict::DiskWait,
        Verdict::PipeFull,
        Verdict::WakeupFdEagain,
        Verdict::FutexBlocked,
        Verdict::Unknown,
        Verdict::Busy,
        Verdict::IdleInEpoll,
        Verdict::BlockedOnRead,
        Verdict::WaitingOnChild,
        Verdict::Sleeping,
        Verdict::Running,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Dead => "dead",
            Verdict::Deadlock => "deadlock",
            Verdict::Stalled => "stalled",
            Verdict::Stopped => "stopped",
            Verdict::DiskWait => "disk-wait",
            Verdict::PipeFull => "pipe-full",
            Verdict::WakeupFdEagain => "wakeup-fd-eagain",
            Verdict::FutexBlocked => "futex-blocked",
            Verdict::Unknown => "unknown",
            Verdict::Busy => "busy",
            Verdict::IdleInEpoll => "idle-in-epoll",
            Verdict::BlockedOnRead => "blocked-on-read",
            Verdict::WaitingOnChild => "waiting-on-child",
            Verdict::Sleeping => "sleeping",
            Verdict::Running => "running",
        }
    }

    pub fn default_severity(self) -> Severity {
        match self {
            Verdict::Dead | Verdict::Deadlock | Verdict::Stalled | Verdict::PipeFull | Verdict::WakeupFdEagain => {
                Severity::Critical
            }
            Verdict::Stopped | Verdict::DiskWait | Verdict::FutexBlocked | Verdict::Unknown => Severity::Warn,
            Verdict::Busy
            | Verdict::IdleInEpoll
            | Verdict::BlockedOnRead
            | Verdict::WaitingOnChild
            | Verdict::Sleeping => Severity::Info,
            Verdict::Running => Severity::Ok,
        }
    }

    pub fn meaning(self) -> &'static str {
        match self {
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
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Finding {
    pub kind: Verdict,
    pub severity: Severity,
    pub summary: String,
    pub evidence: Vec<String>,
    /// For a deadlock: the processes of the cycle, in wait-for order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle: Option<Vec<i32>>,
}

impl Finding {
    fn new(kind: Verdict, summary: impl Into<String>, evidence: Vec<String>) -> Finding {
        Finding {
            kind,
            severity: kind.default_severity(),
            summary: summary.into(),
            evidence,
            cycle: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnosis {
    pub verdict: Verdict,
    pub severity: Severity,
    /// The deciding finding first, then the rest by severity. Never empty.
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    /// The deciding finding's summary: the diagnosis in one line.
    pub fn summary(&self) -> &str {
        self.findings.first().map_or("", |f| f.summary.as_str())
    }
}

/// CPU use at or above this share of one core over the interval is `busy`.
pub const BUSY_PERCENT: f64 = 50.0;

/// Diagnose every process of the world, children before the parents that
/// wait on them (a parent's wait is judged by its child's verdict).
pub fn diagnose_all(world: &World) -> Diagnoses {
    let pids: Vec<i32> = world.pids().collect();
    let mut judge = Judge {
        world,
        done: Diagnoses {
            diagnoses: pids.iter().map(|_| None).collect(),
            pids,
        },
        visiting: BTreeSet::new(),
    };
    for pid in world.pids() {
        judge.diagnose(pid);
    }
    judge.done
}

/// A diagnosis per pid of a world: vectors in the world's pid order, as a
/// scan holds one per process of the host.
#[derive(Debug)]
pub struct Diagnoses {
    /// Sorted.
    pids: Vec<i32>,
    diagnoses: Vec<Option<Diagnosis>>,
}

impl Diagnoses {
    pub fn get(&self, pid: i32) -> Option<&Diagnosis> {
        self.diagnoses[self.pids.binary_search(&pid).ok()?].as_ref()
    }

    pub fn remove(&mut self, pid: i32) -> Option<Diagnosis> {
        self.diagnoses[self.pids.binary_search(&pid).ok()?].take()
    }

    fn insert(&mut self, pid: i32, diagnosis: Diagnosis) {
        if let Ok(at) = self.pids.binary_search(&pid) {
            self.diagnoses[at] = Some(diagnosis);
        }
    }
}

struct Judge<'w, 'a> {
    world: &'w World<'a>,
    done: Diagnoses,
    /// Being diagnosed: a wait back onto one of these is a cycle, which the
    /// deadlock finding covers.
    visiting: BTreeSet<i32>,
}

impl Judge<'_, '_> {
    fn diagnose(&mut self, pid: i32) -> Option<&Diagnosis> {
        if self.done.get(pid).is_none() {
            let view = self.world.view(pid)?;
            if !self.visiting.insert(pid) {
                return None;
            }
            let diagnosis = conclude(findings(self, view));
            self.visiting.remove(&pid);
            self.done.insert(pid, diagnosis);
        }
        self.done.get(pid)
    }
}

/// The diagnosis of a record with no usable sample.
pub fn no_sample() -> Diagnosis {
    conclude(vec![Finding::new(Verdict::Unknown, "no sample was taken", vec![])])
}

fn conclude(mut findings: Vec<Finding>) -> Diagnosis {
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.kind.cmp(&b.kind)));
    if findings.is_empty() {
        findings.push(Finding::new(Verdict::Unknown, "no finding", vec![]));
    }
    // Thousands of diagnoses are held at once in a scan: no spare room.
    findings.shrink_to_fit();
    Diagnosis {
        verdict: findings[0].kind,
        severity: findings[0].severity,
        findings,
    }
}

fn findings(judge: &mut Judge, view: &View) -> Vec<Finding> {
    let world = judge.world;
    if let Some(dead) = dead(view) {
        return vec![dead];
    }
    let Some(stat) = view.stat() else {
        let reason = view.last.stat.reason().map(|r| r.to_string()).unwrap_or_default();
        return vec![Finding::new(
            Verdict::Unknown,
            format!("its stat could not be read ({reason})"),
            vec![],
        )];
    };
    let mut findings = Vec::new();
    findings.extend(stopped(view, stat));
    findings.extend(disk_wait(view));
    findings.extend(deadlock(world, view));
    findings.extend(full_writes(world, view));
    findings.extend(full_wakeup_fds(view));
    findings.extend(busy(view));
    findings.extend(activity(judge, view));
    findings
}

fn dead(view: &View) -> Option<Finding> {
    let (first, last) = (view.first, view.last);
    if let Some(skipped) = [first, last].into_iter().find(|s| s.presence == Presence::Skipped) {
        let reason = skipped.stat.reason().map(|r| r.to_string()).unwrap_or_default();
        return Some(Finding::new(
            Verdict::Unknown,
            format!("not looked at: {reason}"),
            vec![],
        ));
    }
    if first.presence == Presence::NotFound {
        let reason = first.stat.reason();
        let text = reason.map(|r| r.to_string()).unwrap_or_default();
        let evidence = format!("its /proc entry could not be opened: {text}");
        // Only "no such entry" means no such process; anything else (too
        // many open files, permission) is whystuck not knowing.
        if reason.is_some_and(|r| r.kind != ReasonKind::Gone) {
            return Some(Finding::new(
                Verdict::Unknown,
                format!("could not be looked at ({text})"),
                vec![evidence],
            ));
        }
        return Some(Finding::new(Verdict::Dead, "no such process", vec![evidence]));
    }
    if last.presence != Presence::Present {
        return Some(Finding::new(
            Verdict::Dead,
            "exited while inspected",
            vec![format!("its /proc entry went away {} ms into the run", last.elapsed_ms)],
        ));
    }
    let start = |s: &Sample| s.stat.ok().and_then(|s| s.starttime);
    if let (Some(a), Some(b)) = (start(first), start(last)) {
        if a != b {
            return Some(Finding::new(
                Verdict::Dead,
                "exited while inspected (its pid was reused)",
                vec![format!(
                    "start time changed from {a} to {b} ticks after boot: a different process now has pid {}",
                    view.pid
                )],
            ));
        }
    }
    let stat = view.stat()?;
    if !matches!(stat.state, 'Z' | 'X') {
        return None;
    }
    let parent = match &last.parent {
        Some(parent) => {
            let state = parent
                .stat
                .ok()
                .map(|s| format!(", itself in state {}", s.state))
                .unwrap_or_default();
            format!("its parent {} has not reaped it{state}", name_relative(parent))
        }
        None => "no parent recorded".to_string(),
    };
    let summary = match &last.parent {
        Some(parent) => format!("zombie: exited, not reaped by its parent {}", name_relative(parent)),
        None => "zombie: exited, not reaped".to_string(),
    };
    let mut evidence = vec![format!("state {}", stat.state), parent];
    if let Some(status) = stat.exit_code {
        evidence.push(match status & 0x7f {
            0 => format!("it exited with status {}", (status >> 8) & 0xff),
            signal => format!("it was killed by {}", signal_names(1 << (signal - 1)).join("")),
        });
    }
    Some(Finding::new(Verdict::Dead, summary, evidence))
}

fn stopped(view: &View, stat: &Stat) -> Option<Finding> {
    if !matches!(stat.state, 'T' | 't') {
        return None;
    }
    let tracer = view.last.tracer.as_ref();
    let summary = match (stat.state, tracer) {
        (_, Some(tracer)) => format!("stopped by its tracer {}", name_relative(tracer)),
        ('t', None) => "stopped in a tracing stop".to_string(),
        _ => "stopped by a signal (SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU)".to_string(),
    };
    let mut evidence = vec![format!("state {}", stat.state)];
    if let Some(pid) = view.status().and_then(|s| s.tracer_pid).filter(|&p| p > 0) {
        evidence.push(format!("TracerPid {pid}"));
    }
    evidence.push(match tracer {
        Some(_) => "it resumes when its tracer continues or detaches it".to_string(),
        None => "it resumes on SIGCONT".to_string(),
    });
    Some(Finding::new(Verdict::Stopped, summary, evidence))
}

fn disk_wait(view: &View) -> Option<Finding> {
    // A vfork parent is in D too, but it waits on its child: not a disk wait.
    let stuck: Vec<&ThreadView> = view
        .threads
        .iter()
        .filter(|t| t.state == Some('D') && t.wait != Some(Wait::Child))
        .collect();
    let first = stuck.first()?;
    let wchan = first.wchan.unwrap_or("an unknown kernel function");
    let hint = first
        .wchan
        .and_then(wait::wchan_hint)
        .map(|h| format!(": {h}"))
        .unwrap_or_default();
    let summary = if stuck.len() == 1 {
        format!("uninterruptible sleep (D) in {wchan}{hint}")
    } else {
        format!(
            "{} threads in uninterruptible sleep (D), first in {wchan}{hint}",
            stuck.len()
        )
    };
    let evidence = stuck
        .iter()
        .map(|t| {
            format!(
                "thread {} ({}) state D, wchan {}",
                t.tid(),
                t.comm(),
                t.wchan.unwrap_or("unavailable")
            )
        })
        .collect();
    Some(Finding::new(Verdict::DiskWait, summary, evidence))
}

/// Threads blocked writing into a pipe or socket that cannot take more: one
/// finding per fd, naming every thread blocked on it.
fn full_writes(world: &World, view: &View) -> Vec<Finding> {
    let mut writers: BTreeMap<i32, Vec<&ThreadView>> = BTreeMap::new();
    for thread in view
        .threads
        .iter()
        .filter(|t| t.wait == Some(Wait::Write) && t.state == Some('S'))
    {
        if let Some(fd) = thread.fd.filter(|&fd| {
            view.fd(fd)
                .is_some_and(|f| matches!(f.kind, FdKind::Pipe | FdKind::Fifo | FdKind::Socket))
        }) {
            writers.entry(fd).or_default().push(thread);
        }
    }
    let mut findings: Vec<Finding> = writers
        .into_iter()
        .map(|(fd, threads)| {
            let mut evidence: Vec<String> = threads
                .iter()
                .map(|t| format!("thread {} ({}) blocked in {}", t.tid(), t.comm(), t.describe_call()))
                .collect();
            if let Some(fill) = view.fd(fd).and_then(|f| f.pipe_fill()) {
                let steady = first_fill(view, fd) == Some(fill.buffered_bytes) && view.progress.is_some();
                evidence.push(format!(
                    "{} of {} bytes buffered{}",
                    fill.buffered_bytes,
                    fill.capacity_bytes,
                    if steady {
                        ", unchanged between the samples: nobody is draining it"
                    } else {
                        ""
                    }
                ));
            }
            Finding::new(
                Verdict::PipeFull,
                format!("blocked writing {}", world.describe_fd(view, fd)),
                evidence,
            )
        })
        .collect();
    // Without the syscall (no ptrace access) the fd is unknown, but a pipe or
    // socket write wchan still says the buffer is full.
    for thread in view
        .threads
        .iter()
        .filter(|t| t.wait == Some(Wait::Write) && t.fd.is_none() && t.state == Some('S'))
    {
        let Some(wchan) = thread.wchan else { continue };
        let what = if wchan.contains("pipe") { "pipe" } else { "socket" };
        let why = thread
            .thread
            .syscall
            .reason()
            .map(|r| format!(": syscall {r}"))
            .unwrap_or_default();
        findings.push(Finding::new(
            Verdict::PipeFull,
            format!(
                "thread {} blocked writing into a full {what} (wchan {wchan}; which fd is unknown{why})",
                thread.tid()
            ),
            vec![format!(
                "thread {} ({}) state S, wchan {wchan}",
                thread.tid(),
                thread.comm()
            )],
        ));
    }
    findings
}

fn first_fill(view: &View, fd: i32) -> Option<u64> {
    let fds = view.first.fds.ok()?;
    let pipe = fds.iter().find(|f| f.fd == fd)?.pipe.as_ref()?.ok()?;
    Some(pipe.buffered_bytes)
}

/// The process holds both ends of a pipe or socketpair, the write side is
/// non-blocking, and it is full: every write (a signal handler's wakeup
/// byte) fails with EAGAIN, so the wakeups, and the signals, are lost.
fn full_wakeup_fds(view: &View) -> Vec<Finding> {
    let mut findings = Vec::new();
    for write_end in &view.fds {
        let Some(inode) = write_end.inode else { continue };
        if write_end.nonblocking() != Some(true) {
            continue;
        }
        let (read_fd, full, fill) = match write_end.kind {
            FdKind::Pipe if write_end.access() == Some("write") => {
                let read_end = view
                    .fds
                    .iter()
                    .find(|f| f.inode == Some(inode) && f.access() == Some("read"));
                let fill = write_end
                    .pipe_fill()
                    .map(|f| format!("{}/{} bytes buffered", f.buffered_bytes, f.capacity_bytes));
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
                    .map(|(used, size)| format!("send buffer {used}/{size} bytes"));
                (read_end.map(|r| r.fd.fd), view.unix_full(sock), fill)
            }
            _ => continue,
        };
        let (Some(read_fd), Some(true)) = (read_fd, full) else {
            continue;
        };
        let what = if write_end.kind == FdKind::Pipe {
            "self-pipe"
        } else {
            "socketpair"
        };
        let write_fd = write_end.fd.fd;
        let mut evidence = vec![
            format!(
                "fd {write_fd} ({what} write side) is O_NONBLOCK and full: {}",
                fill.unwrap_or_default()
            ),
            format!("fd {read_fd}, the other end, is held by the same process and not drained"),
        ];
        evidence.extend(signal_evidence(view));
        findings.push(Finding::new(
            Verdict::WakeupFdEagain,
            format!("its wakeup {what} fd {write_fd} -> fd {read_fd} is full: every signal handler write gets EAGAIN and signals are lost"),
            evidence,
        ));
    }
    findings
}

fn signal_evidence(view: &View) -> Vec<String> {
    let Some(status) = view.status() else { return vec![] };
    let mut evidence = Vec::new();
    if let Some(caught) = status.sig_caught.filter(|&m| m != 0) {
        evidence.push(format!("signals with handlers: {}", signal_names(caught).join(", ")));
    }
    let pending = status.sig_pending.unwrap_or(0) | status.sig_shared_pending.unwrap_or(0);
    if pending != 0 {
        evidence.push(format!("signals pending: {}", signal_names(pending).join(", ")));
    }
    evidence
}

fn busy(view: &View) -> Option<Finding> {
    let progress = view.progress.as_ref()?;
    let percent = progress.cpu_percent?;
    if percent < BUSY_PERCENT {
        return None;
    }
    let on_cpu: Vec<String> = view
        .threads
        .iter()
        .filter(|t| t.on_cpu())
        .map(|t| format!("thread {} ({}) on CPU", t.tid(), t.comm()))
        .collect();
    let mut evidence = vec![format!(
        "{} CPU ticks in {}",
        progress.cpu_ticks.unwrap_or(0),
        view::duration_ms(progress.interval_ms)
    )];
    evidence.extend(on_cpu);
    Some(Finding::new(
        Verdict::Busy,
        format!("burning CPU: {}", progress.describe()),
        evidence,
    ))
}

/// The thread that matters: the main thread, unless it waits on a futex (or
/// cannot be seen) while another thread waits on something more telling.
fn deciding_thread<'v, 'a>(view: &'v View<'a>) -> Option<&'v ThreadView<'a>> {
    let rank = |t: &ThreadView| match t.wait {
        _ if t.on_cpu() => 0,
        Some(Wait::Write) => 1,
        Some(Wait::Read | Wait::Accept | Wait::FifoOpen) => 2,
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
fn activity(judge: &mut Judge, view: &View) -> Option<Finding> {
    let world = judge.world;
    let moved = view.progress.as_ref().and_then(|p| p.moved());
    let running = || match &view.progress {
        Some(progress) => Finding::new(
            Verdict::Running,
            format!("making progress: {}", progress.describe()),
            vec![],
        ),
        None => Finding::new(Verdict::Running, "on a CPU (one sample: progress not measured)", vec![]),
    };
    let Some(thread) = deciding_thread(view) else {
        let reason = view.last.threads.reason().map(|r| r.to_string()).unwrap_or_default();
        return Some(match moved {
            Some(true) => running(),
            _ => Finding::new(
                Verdict::Unknown,
                format!("its threads could not be read ({reason})"),
                vec![],
            ),
        });
    };
    // D (but for a vfork parent's wait on its child) and stopped are
    // findings of their own.
    if (thread.state == Some('D') && thread.wait != Some(Wait::Child)) || matches!(thread.state, Some('T' | 't')) {
        return None;
    }
    let who = if thread.tid() == view.pid {
        "main thread".to_string()
    } else {
        format!("thread {}", thread.tid())
    };
    let mut evidence = vec![format!("{who} ({}) in {}", thread.comm(), thread.describe_call())];
    if view.named_thread == Some(thread.tid()) {
        evidence.push(format!(
            "{} is a thread of process {}: judged by that thread",
            thread.tid(),
            view.pid
        ));
    }
    let fd_text = thread.fd.map(|fd| world.describe_fd(view, fd));
    let (kind, summary) = match thread.wait {
        _ if thread.on_cpu() => return Some(running()),
        Some(Wait::Write) => match fd_text {
            // A write that fills a pipe or socket is a finding of its own.
            Some(_)
                if thread
                    .fd
                    .and_then(|fd| view.fd(fd))
                    .is_some_and(|f| matches!(f.kind, FdKind::Pipe | FdKind::Fifo | FdKind::Socket)) =>
            {
                return None
            }
            Some(fd) => (Verdict::Sleeping, format!("{who} parked writing {fd}")),
            None => return None, // a pipe or socket write wchan: a pipe-full finding of its own
        },
        Some(Wait::Read) => (
            Verdict::BlockedOnRead,
            match fd_text {
                Some(fd) => format!("{who} blocked reading {fd}"),
                None => format!("{who} blocked in a read"),
            },
        ),
        Some(Wait::FifoOpen) => (
            Verdict::BlockedOnRead,
            format!("{who} blocked opening a FIFO until another process opens its other end"),
        ),
        Some(Wait::Accept) => (
            Verdict::BlockedOnRead,
            match fd_text {
                Some(fd) => format!("{who} waiting for a connection on {fd}"),
                None => format!("{who} waiting for a connection"),
            },
        ),
        Some(Wait::Epoll) => {
            let (summary, watched) = epoll_summary(world, view, &who, thread.fd);
            evidence.extend(watched);
            (Verdict::IdleInEpoll, summary)
        }
        Some(Wait::Poll) => (
            Verdict::IdleInEpoll,
            format!("{who} idle in {}", thread.syscall_name.unwrap_or("poll/select")),
        ),
        Some(Wait::Futex) => {
            let parked = view.threads.iter().filter(|t| t.wait == Some(Wait::Futex)).count();
            let scope = if parked == view.threads.len() {
                match parked {
                    1 => "its only thread is parked in a futex wait".to_string(),
                    n => format!("all {n} threads parked in futex waits"),
                }
            } else {
                format!(
                    "{who} parked in a futex wait ({parked} of {} threads)",
                    view.threads.len()
                )
            };
            evidence.extend(
                view.threads
                    .iter()
                    .filter(|t| t.wait == Some(Wait::Futex) && t.tid() != thread.tid())
                    .map(|t| format!("thread {} ({}) in {}", t.tid(), t.comm(), t.describe_call())),
            );
            let progress = match &view.progress {
                Some(p) => format!(", no progress: {}", p.describe()),
                None => ", progress not measured (one sample)".to_string(),
            };
            (Verdict::FutexBlocked, format!("{scope}{progress}"))
        }
        Some(Wait::Child) => return Some(waiting_on_child(judge, view, thread, &who, evidence)),
        Some(Wait::Sleep) => (
            Verdict::Sleeping,
            format!("{who} sleeping in {}", thread.syscall_name.unwrap_or("nanosleep")),
        ),
        Some(Wait::Signal) => (
            Verdict::Sleeping,
            format!(
                "{who} waiting for a signal in {}",
                thread.syscall_name.unwrap_or("pause")
            ),
        ),
        Some(Wait::Connect) => (
            Verdict::Sleeping,
            format!("{who} parked in connect on {}", fd_text.unwrap_or_default()),
        ),
        Some(Wait::Other) => (
            Verdict::Sleeping,
            format!("{who} parked in {}", thread.syscall_name.unwrap_or("a syscall")),
        ),
        None => unnamed_wait(view, thread, &who),
    };
    if moved == Some(true) && kind != Verdict::WaitingOnChild {
        evidence.insert(0, format!("sampled: {summary}"));
        let mut finding = running();
        finding.evidence = evidence;
        return Some(finding);
    }
    let mut finding = Finding::new(kind, summary, evidence);
    if kind == Verdict::Unknown {
        // Only the wait is unreadable (another user's process): say so
        // plainly, without failing every unprivileged run.
        finding.severity = Severity::Info;
    }
    Some(finding)
}

/// "main thread idle in epoll_wait on epoll fd 3, watching fd 0 (a pipe ...)"
/// A wait no syscall or wchan family names. When the facts were readable,
/// the thread is simply asleep there; when they were refused, whystuck does
/// not know, and says so instead of guessing.
fn unnamed_wait(view: &View, thread: &ThreadView, who: &str) -> (Verdict, String) {
    let state = thread
        .state
        .map(|s| format!("state {s}"))
        .unwrap_or_else(|| "state unknown".into());
    if view.stat().is_some_and(Stat::is_kernel_thread) {
        let wchan = thread.wchan.map(|w| format!(" in {w}")).unwrap_or_default();
        return (Verdict::Sleeping, format!("kernel thread, asleep ({state}){wchan}"));
    }
    let refused: Vec<String> = [
        ("syscall", thread.thread.syscall.reason()),
        ("wchan", thread.thread.wchan.reason()),
    ]
    .into_iter()
    .filter_map(|(what, reason)| Some(format!("{what} {}", reason?)))
    .collect();
    match (thread.wchan, refused.is_empty()) {
        (Some(wchan), _) => (Verdict::Sleeping, format!("{who} asleep ({state}) in {wchan}")),
        (None, true) => (Verdict::Sleeping, format!("{who} asleep ({state})")),
        (None, false) => {
            let hint = match view.host.full_view {
                Some(true) => "refused even with CAP_SYS_PTRACE: another user namespace or a security module (Yama, SELinux, AppArmor) keeps it hidden",
                _ => "run as its user, or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (root has both)",
            };
            (
                Verdict::Unknown,
                format!(
                    "{who} asleep ({state}) in a wait whystuck cannot see ({}): {hint}",
                    refused.join("; ")
                ),
            )
        }
    }
}

/// "main thread idle in epoll_wait on fd 0 (pipe from pid 1200 (python3),
/// empty) and fd 5 (TCP 10.0.0.1:5 -> 10.0.0.2:443 ESTABLISHED)", and whether
/// anything but a timer or a signal could still wake it.
fn epoll_summary(world: &World, view: &View, who: &str, epfd: Option<i32>) -> (String, Vec<String>) {
    let Some(epfd) = epfd else {
        return (format!("{who} idle in epoll_wait"), vec![]);
    };
    let mut targets: Vec<i32> = view
        .fd(epfd)
        .and_then(|fd| fd.fd.info.ok())
        .map(|info| info.epoll_targets.iter().map(|t| t.fd).collect())
        .unwrap_or_default();
    targets.sort_unstable();
    let watched: Vec<String> = targets
        .iter()
        .map(|&fd| format!("watching {}", world.describe_fd(view, fd)))
        .collect();
    let mut shown: Vec<String> = targets
        .iter()
        .take(3)
        .map(|&fd| format!("fd {fd} ({})", world.brief_fd(view, fd)))
        .collect();
    if targets.len() > 3 {
        shown.push(format!("{} more", targets.len() - 3));
    }
    let mut summary = match shown.as_slice() {
        [] => format!("{who} idle in epoll_wait on epoll fd {epfd}, which watches nothing"),
        [only] => format!("{who} idle in epoll_wait on {only}"),
        [rest @ .., last] => format!("{who} idle in epoll_wait on {} and {last}", rest.join(", ")),
    };
    let tcp_connections = view
        .fds
        .iter()
        .filter_map(|f| view.tcp(f.inode?))
        .filter(|t| t.state == "ESTABLISHED")
        .count();
    if !targets.iter().any(|&fd| world.can_wake(view, fd)) {
        let tcp = if tcp_connections == 0 {
            "no TCP connections, and "
        } else {
            ""
        };
        summary.push_str(&format!("; {tcp}nothing but a timer or a signal can wake it"));
    }
    (summary, watched)
}

/// A wait is as healthy as what it waits for: a parent waiting on a child
/// that is working is fine (and says so), a parent waiting on a stuck child
/// is as stuck as the child.
fn waiting_on_child(
    judge: &mut Judge,
    view: &View,
    thread: &ThreadView,
    who: &str,
    mut evidence: Vec<String>,
) -> Finding {
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
    let mut working = Vec::new();
    let mut worst: Option<(Severity, String)> = None;
    let mut described = Vec::new();
    for &child in &waited {
        let name = child_name(view, world, child);
        let Some(diagnosis) = judge.diagnose(child).cloned() else {
            described.push(name);
            continue;
        };
        let progress = world.view(child).and_then(|v| v.progress.as_ref());
        let is_working = progress.is_some_and(|p| p.working()) || diagnosis.severity == Severity::Ok;
        let text = format!("{name}, {}", diagnosis.verdict.name());
        evidence.push(format!(
            "child {name}: {} [{}]: {}",
            diagnosis.verdict.name(),
            diagnosis.severity.name(),
            diagnosis.summary()
        ));
        if is_working {
            let how = progress
                .map(|p| p.describe())
                .unwrap_or_else(|| diagnosis.summary().to_string());
            working.push(format!("{name}, which is working: {how}"));
        } else if worst.as_ref().is_none_or(|(s, _)| diagnosis.severity > *s) {
            worst = Some((diagnosis.severity, text.clone()));
        }
        described.push(text);
    }
    let call = thread.syscall_name.unwrap_or("wait");
    let (severity, summary) = match (working.first(), &worst, described.as_slice()) {
        (Some(first), _, _) => (Severity::Ok, format!("{who} waiting in {call} for {first}")),
        (None, Some((severity, text)), _) if *severity >= Severity::Warn => {
            (*severity, format!("{who} waiting in {call} for a stuck child: {text}"))
        }
        (None, _, []) => (Severity::Info, format!("{who} waiting in {call}, no children seen")),
        (None, _, [one]) => (Severity::Info, format!("{who} waiting in {call} for {one}")),
        (None, _, many) => (
            Severity::Info,
            format!("{who} waiting in {call} for {} children", many.len()),
        ),
    };
    let mut finding = Finding::new(Verdict::WaitingOnChild, summary, evidence);
    finding.severity = severity;
    finding
}

/// "pid 812 (python3)", from whatever sample names it.
fn child_name(view: &View, world: &World, child: i32) -> String {
    if let Some(child_view) = world.view(child) {
        return format!("pid {child} ({})", child_view.comm());
    }
    let relative = view.last.children.ok().and_then(|c| c.iter().find(|r| r.pid == child));
    relative.map(name_relative).unwrap_or_else(|| format!("pid {child}"))
}

/// On a deadlock cycle, or blocked behind one.
fn deadlock(world: &World, view: &View) -> Option<Finding> {
    let (mut cycle, on_it) = world.cycle(view.pid)?;
    if on_it {
        let start = cycle.iter().position(|&p| p == view.pid).unwrap_or(0);
        cycle.rotate_left(start);
    }
    let text = world.describe_cycle(&cycle);
    let own: Vec<String> = world.edges(view.pid).iter().map(|e| e.describe()).collect();
    let summary = if on_it {
        text
    } else {
        format!("{}, and that is a deadlock: {text}", own.join("; "))
    };
    let mut evidence = own;
    for &pid in &cycle {
        if let Some(member) = world.view(pid) {
            evidence.push(format!(
                "{pid} is {} (state {})",
                member.comm(),
                member.stat().map_or('?', |s| s.state)
            ));
        }
    }
    evidence.push(match &view.progress {
        Some(p) => format!("no progress over {}", view::duration_ms(p.interval_ms)),
        None => "one sample: progress not measured".to_string(),
    });
    let mut finding = Finding::new(Verdict::Deadlock, summary, evidence);
    finding.cycle = Some(cycle);
    Some(finding)
}

#[cfg(test)]
mod tests;
