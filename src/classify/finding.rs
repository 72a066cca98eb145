//! What a diagnosis concludes, as data: verdicts, severities, and for each
//! finding a structured [`Claim`] (what its one-line summary says) and
//! [`Evidence`] (the facts behind it). No words here: [`crate::describe`]
//! turns claims and evidence into the sentences users read, so rewording is
//! a change to one module and tests can assert on the facts.

pub use super::fdfacts::*;
use super::graph::Edge;
pub use super::held::*;
use super::progress::Progress;
use crate::linux::wait::{DiskWait, Timeout};
use crate::snapshot::{PipeFill, Reason};
use crate::text::TargetString;
use serde::{Deserialize, Serialize};

mod cgroup;
pub use cgroup::*;

#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
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
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Dead,
    Deadlock,
    Stalled,
    Frozen,
    Stopped,
    MemoryPressure,
    DiskWait,
    LockWait,
    TerminalInput,
    PipeFull,
    WakeupFdEagain,
    FutexBlocked,
    AcceptQueueFull,
    Throttled,
    Unknown,
    Busy,
    IdleInEpoll,
    BlockedOnRead,
    WaitingOnChild,
    Sleeping,
    Running,
}

impl Verdict {
    pub const ALL: [Verdict; 21] = [
        Verdict::Dead,
        Verdict::Deadlock,
        Verdict::Stalled,
        Verdict::Frozen,
        Verdict::Stopped,
        Verdict::MemoryPressure,
        Verdict::DiskWait,
        Verdict::LockWait,
        Verdict::TerminalInput,
        Verdict::PipeFull,
        Verdict::WakeupFdEagain,
        Verdict::FutexBlocked,
        Verdict::AcceptQueueFull,
        Verdict::Throttled,
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
            Verdict::Frozen => "frozen",
            Verdict::Stopped => "stopped",
            Verdict::MemoryPressure => "memory-pressure",
            Verdict::DiskWait => "disk-wait",
            Verdict::LockWait => "lock-wait",
            Verdict::TerminalInput => "terminal-input",
            Verdict::PipeFull => "pipe-full",
            Verdict::WakeupFdEagain => "wakeup-fd-eagain",
            Verdict::FutexBlocked => "futex-blocked",
            Verdict::AcceptQueueFull => "accept-queue-full",
            Verdict::Throttled => "throttled",
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
            Verdict::Frozen
            | Verdict::Stopped
            | Verdict::MemoryPressure
            | Verdict::DiskWait
            | Verdict::LockWait
            | Verdict::TerminalInput
            | Verdict::FutexBlocked
            | Verdict::AcceptQueueFull
            | Verdict::Throttled
            | Verdict::Unknown => Severity::Warn,
            Verdict::Busy
            | Verdict::IdleInEpoll
            | Verdict::BlockedOnRead
            | Verdict::WaitingOnChild
            | Verdict::Sleeping => Severity::Info,
            Verdict::Running => Severity::Ok,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub kind: Verdict,
    pub severity: Severity,
    /// What the finding's one-line summary says.
    pub claim: Claim,
    pub evidence: Vec<Evidence>,
    /// For a deadlock: the processes of the cycle, in wait-for order.
    pub cycle: Option<Vec<i32>>,
    /// The thread the finding is about (the one blocked, the one deciding).
    pub tid: Option<i32>,
}

impl Finding {
    pub(crate) fn new(kind: Verdict, claim: Claim, evidence: Vec<Evidence>) -> Finding {
        Finding {
            kind,
            severity: kind.default_severity(),
            claim,
            evidence,
            cycle: None,
            tid: None,
        }
    }

    /// About thread `tid`.
    pub(crate) fn of_thread(mut self, tid: i32) -> Finding {
        self.tid = Some(tid);
        self
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnosis {
    pub verdict: Verdict,
    pub severity: Severity,
    /// The deciding finding first, then the rest by severity. Never empty.
    pub findings: Vec<Finding>,
    /// For a wait: how long the thread that decided it has not run, in
    /// milliseconds (a lower bound on how long the wait has lasted: any
    /// wakeup resets it), or why that is unknown. `None` for a process that
    /// is not waiting (running, busy, gone).
    pub stuck_for_ms: Option<Result<u64, Reason>>,
}

impl Diagnosis {
    /// The deciding finding.
    pub fn deciding(&self) -> &Finding {
        &self.findings[0]
    }

    /// The process is gone: there was no such process, or it exited (or
    /// its pid was reused) while inspected. Not a zombie, which is still
    /// there to be reaped.
    pub fn gone(&self) -> bool {
        matches!(
            self.deciding().claim,
            Claim::NoSuchProcess | Claim::ExitedWhileInspected | Claim::PidReused
        )
    }
}

/// A process named in a finding: its pid, and its comm when known.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessRef {
    pub pid: i32,
    pub comm: Option<TargetString>,
}

/// A thread named in a finding. The process's main thread (tid == pid) is
/// called that.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThreadRef {
    pub tid: i32,
    pub main: bool,
}

/// A syscall as the thread is blocked in it, or its wchan when that is all
/// there is.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub syscall: Option<&'static str>,
    /// The number of a syscall this architecture's table does not name.
    pub unnamed_nr: Option<i64>,
    pub fd: Option<i32>,
    pub timeout: Option<Timeout>,
    pub wchan: Option<String>,
    /// On a CPU: no syscall to report.
    pub running: bool,
}

/// What a finding's one-line summary says.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    NoSample,
    NoFinding,
    StatUnreadable(Option<Reason>),
    /// The run's budget ran out before the process was read.
    NotLookedAt(Option<Reason>),
    /// Its /proc entry could not be opened for a reason other than its
    /// absence.
    CouldNotLookAt(Option<Reason>),
    NoSuchProcess,
    ExitedWhileInspected,
    PidReused,
    Zombie {
        parent: Option<ProcessRef>,
    },
    Stopped(StopCause),
    DiskWait {
        threads: usize,
        wchan: Option<String>,
        on: Option<DiskWait>,
    },
    /// Threads blocked writing into this full pipe or socket: in a write
    /// call, or (`pending_in` an event loop's wait call) a non-blocking
    /// write waiting for it to drain.
    BlockedWriting {
        fd: FdFacts,
        pending_in: Option<&'static str>,
    },
    /// A pipe or socket write wchan, the fd unknown (no ptrace access).
    BlockedWritingUnknownFd {
        tid: i32,
        pipe: bool,
        wchan: String,
        why: Option<Reason>,
    },
    WakeupFdFull {
        socketpair: bool,
        write_fd: i32,
        read_fd: i32,
    },
    /// A listening socket whose accept queue is full: connections dropped.
    AcceptQueueFull(FdFacts),
    Frozen(Frozen),
    Throttled(Throttled),
    MemoryPressure(MemoryPressure),
    Busy(Progress),
    /// Making progress; `None`: on a CPU, with one sample.
    Running(Option<Progress>),
    ThreadsUnreadable(Option<Reason>),
    KernelThreadAsleep {
        state: Option<char>,
        wchan: Option<String>,
    },
    /// What the deciding thread waits in.
    Waiting {
        thread: ThreadRef,
        wait: WaitClaim,
    },
    /// Another process is blocked writing into a pipe only this one reads,
    /// and this one is not reading it.
    NotDraining {
        writer: ProcessRef,
        /// The writer is this process's child.
        child: bool,
        /// This process's end of the pipe.
        fd: FdFacts,
    },
    /// A child stopped in the background (a job control stop), which the
    /// process is not waiting for.
    StoppedJob(ProcessRef),
    Deadlock {
        /// The process's own wait-for edges (for one behind the cycle).
        own: Vec<Edge>,
        /// The cycle, one edge after another.
        cycle: Vec<Edge>,
        on_it: bool,
    },
}

impl Claim {
    /// About another process (a child) rather than this one: never the
    /// verdict while a finding about the process itself is as severe.
    pub fn about_another(&self) -> bool {
        matches!(self, Claim::StoppedJob(_))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum StopCause {
    Tracer(ProcessRef),
    TracingStop,
    Signal,
    /// Job control: it touched its terminal from the background.
    Background(BackgroundStop),
}

#[derive(Clone, Debug, PartialEq)]
pub enum WaitClaim {
    /// Parked writing something that is not a pipe or socket.
    Writing(FdFacts),
    Reading(Option<FdFacts>),
    OpeningFifo,
    /// Waiting for a file lock held by others.
    Lock(LockWait),
    /// Reading a terminal: waiting for a person to type.
    Terminal(TerminalWait),
    /// Waiting for a resolver's answer.
    Dns(DnsWait),
    Accepting(Option<FdFacts>),
    Epoll(EpollWait),
    /// poll or select: the set is in its memory; the TCP connections the
    /// process holds, which such a loop usually waits on.
    Polling {
        call: Option<&'static str>,
        connections: Vec<FdFacts>,
    },
    Futex {
        /// Futex waiters among the threads, and the thread count.
        parked: usize,
        threads: usize,
        progress: Option<Progress>,
    },
    /// A futex wait a timeout ends (`Event.wait(3600)`, a timed join).
    TimedFutex,
    Child(ChildWait),
    Sleeping(Option<&'static str>),
    Signal(Option<&'static str>),
    Connecting(Option<FdFacts>),
    ParkedIn(Option<&'static str>),
    /// A wait no syscall or wchan family names.
    Asleep {
        state: Option<char>,
        wchan: Option<String>,
    },
    /// A wait whystuck may not see (another user's process).
    Hidden {
        state: Option<char>,
        /// The facts refused, and why.
        refused: Vec<(&'static str, Reason)>,
        /// The run already had CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH.
        full_view: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct EpollWait {
    pub epfd: Option<i32>,
    /// What the epoll set watches, in fd order.
    pub watched: Vec<FdFacts>,
    /// Nothing but a timer or a signal can wake it; with whether the
    /// process has any established TCP connection.
    pub hopeless: Option<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChildWait {
    pub call: Option<&'static str>,
    pub outcome: ChildOutcome,
}

/// A child, and how its own diagnosis came out.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildState {
    pub child: ProcessRef,
    pub verdict: Option<Verdict>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ChildOutcome {
    /// The first child found working, and how.
    Working {
        child: ProcessRef,
        how: Working,
    },
    Stuck(ChildState),
    NoChildren,
    One(ChildState),
    Many(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Working {
    Progress(Progress),
    Diagnosis(Box<Claim>),
}

/// The facts behind a finding.
#[derive(Clone, Debug, PartialEq)]
pub enum Evidence {
    /// A thread and the call it is in; `blocked`: said as blocked in it.
    ThreadIn {
        thread: ThreadRef,
        comm: Option<TargetString>,
        call: Call,
        blocked: bool,
    },
    /// A thread's state and wchan, when the syscall says nothing.
    ThreadWchan {
        tid: i32,
        comm: Option<TargetString>,
        state: char,
        wchan: Option<String>,
    },
    ThreadOnCpu {
        tid: i32,
        comm: Option<TargetString>,
    },
    NamedThread {
        tid: i32,
        pid: i32,
    },
    PipeFill {
        fill: PipeFill,
        steady: bool,
    },
    /// The fd is registered for writability (EPOLLOUT) in the epoll set
    /// the thread waits on.
    WaitsToWrite {
        epfd: i32,
        fd: i32,
    },
    ProcEntryUnopened(Option<Reason>),
    ProcEntryWentAway {
        elapsed_ms: u64,
    },
    StartTimeChanged {
        before: u64,
        after: u64,
        pid: i32,
    },
    State(char),
    ParentNotReaping {
        parent: Option<(ProcessRef, Option<char>)>,
    },
    ExitStatus(i32),
    KilledBy(u64),
    TracerPid(i32),
    Resumes {
        by_tracer: bool,
    },
    WakeupWriteEnd {
        fd: i32,
        socketpair: bool,
        fill: Option<WakeupFill>,
    },
    WakeupReadEnd {
        fd: i32,
    },
    SignalsCaught(u64),
    SignalsPending(u64),
    CpuTicks {
        ticks: Option<u64>,
        interval_ms: u64,
    },
    Watching(FdFacts),
    /// A poll or select set lives in the target's memory: not read.
    PollSetUnread,
    /// What the thread was doing when sampled, though the process moved.
    Sampled(Box<Claim>),
    Child {
        child: ProcessRef,
        verdict: Verdict,
        severity: Severity,
        claim: Box<Claim>,
    },
    Edge(Edge),
    CycleMember {
        pid: i32,
        comm: Option<TargetString>,
        state: Option<char>,
    },
    /// No progress over the interval; `None`: one sample.
    NoProgressOver(Option<u64>),
    /// The process at the other end of what a thread waits on (the reader
    /// of the pipe it cannot write, the owner of the listener it connects
    /// to), and how its own diagnosis came out.
    OtherEnd {
        role: EndRole,
        owner: ProcessRef,
        verdict: Verdict,
        claim: Box<Claim>,
        stuck_for_ms: Option<u64>,
    },
    /// A process holding the lock a thread waits for, through `fd`, and
    /// how its own diagnosis came out.
    LockHolder {
        holder: ProcessRef,
        fd: i32,
        verdict: Verdict,
        claim: Box<Claim>,
        stuck_for_ms: Option<u64>,
    },
    /// A pid `/proc/locks` names as a lock's holder that does not hold it.
    StaleLockPid(i32),
    /// Its process group is not its terminal's foreground group: a read
    /// (or, with `tostop`, a write) of the terminal stops it again.
    BackgroundGroup {
        pgrp: i32,
        foreground: i32,
    },
    Cgroup(CgroupEvidence),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WakeupFill {
    Pipe(PipeFill),
    SendBuffer { used: u32, size: u32 },
}

/// What the process at the other end is to the one waiting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EndRole {
    Reader,
    Listener,
}
