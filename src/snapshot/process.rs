//! The facts of one process and its threads: stat, status, io, each
//! thread's wait.

use super::Fact;
use crate::text::TargetString;
use serde::{Deserialize, Serialize};

/// `/proc/PID/stat` (or `task/TID/stat`). Fields after `state` are optional
/// because older kernels and fake trees write fewer of them.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, schemars::JsonSchema)]
pub struct Stat {
    pub comm: TargetString,
    pub state: char,
    pub ppid: Option<i32>,
    pub pgrp: Option<i32>,
    pub session: Option<i32>,
    /// The controlling terminal (0: none), and its foreground process group.
    #[serde(default)]
    pub tty_nr: Option<i32>,
    #[serde(default)]
    pub tpgid: Option<i32>,
    pub flags: Option<u32>,
    pub utime: Option<u64>,
    pub stime: Option<u64>,
    pub num_threads: Option<i64>,
    /// Clock ticks after boot: with the pid, it names one process for good.
    pub starttime: Option<u64>,
    pub rss_pages: Option<i64>,
    /// The CPU the task last ran on.
    #[serde(default)]
    pub processor: Option<u32>,
    /// The wait status a zombie exited with (since Linux 3.5).
    #[serde(default)]
    pub exit_code: Option<i32>,
}

impl Stat {
    /// utime + stime, when both are known.
    pub fn cpu_ticks(&self) -> Option<u64> {
        Some(self.utime? + self.stime?)
    }

    /// Exited, its status not yet collected by its parent (Z), or dying (X).
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }

    /// PF_KTHREAD: the task is a kernel thread.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags.is_some_and(|f| f & 0x0020_0000 != 0)
    }
}

/// The lines of `/proc/PID/status` whystuck uses.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, schemars::JsonSchema)]
pub struct Status {
    /// The thread group (process) id: differs from the pid for a thread.
    #[serde(default)]
    pub tgid: Option<i32>,
    /// Real, effective, saved and filesystem uid.
    pub uid: Option<[u32; 4]>,
    pub tracer_pid: Option<i32>,
    pub vm_rss_kib: Option<u64>,
    pub sig_pending: Option<u64>,
    pub sig_shared_pending: Option<u64>,
    pub sig_blocked: Option<u64>,
    pub sig_ignored: Option<u64>,
    pub sig_caught: Option<u64>,
    pub voluntary_ctxt_switches: Option<u64>,
    pub nonvoluntary_ctxt_switches: Option<u64>,
}

/// `/proc/PID/schedstat`: the main thread's time on a CPU, time waiting
/// for one on a run queue, and times scheduled.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, schemars::JsonSchema)]
pub struct SchedStat {
    pub run_ns: u64,
    pub wait_ns: u64,
    pub timeslices: u64,
}

/// `/proc/PID/io`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, schemars::JsonSchema)]
pub struct Io {
    pub rchar: Option<u64>,
    pub wchar: Option<u64>,
    pub syscr: Option<u64>,
    pub syscw: Option<u64>,
    pub read_bytes: Option<u64>,
    pub write_bytes: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct Thread {
    pub tid: i32,
    pub stat: Fact<Stat>,
    /// From the thread's status file, only the context-switch counters.
    pub status: Fact<ContextSwitches>,
    /// The raw symbol from `wchan`; empty when the thread is not waiting.
    pub wchan: Fact<String>,
    pub syscall: Fact<Syscall>,
    /// When the thread last ran (`se.exec_start` of `task/TID/sched`, in
    /// the scheduler's clock, milliseconds): read in the last round for a
    /// thread that is not running; `None` when not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ran_at_ms: Option<Fact<f64>>,
    /// The kernel stack (`task/TID/stack`, root only), innermost frame
    /// first: read in the last round for a thread whose wchan does not say
    /// what it waits for; `None` when not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_stack: Option<Fact<Vec<String>>>,
}

/// A thread's context switches, from `/proc/PID/task/TID/status` (the
/// field names are those of [`Status`], so a thread's status reads as one).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, schemars::JsonSchema)]
pub struct ContextSwitches {
    pub voluntary_ctxt_switches: Option<u64>,
    pub nonvoluntary_ctxt_switches: Option<u64>,
}

impl ContextSwitches {
    pub fn total(&self) -> Option<u64> {
        Some(self.voluntary_ctxt_switches? + self.nonvoluntary_ctxt_switches?)
    }
}

/// `/proc/PID/task/TID/syscall`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Syscall {
    /// The thread is on a CPU: no syscall to report.
    Running,
    /// Blocked in the kernel. `nr` is -1 when not inside a syscall.
    Blocked { nr: i64, args: Box<[u64]> },
}
