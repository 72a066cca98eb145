//! A reported process's detail beyond its one-line row: CPU, I/O, threads,
//! fds, pipes and sockets with who holds their other ends, children,
//! signals, and every fact that could not be read.

use super::identity;
use super::sockets::{pipes, tcp, udp, unix};
pub use super::sockets::{PipeReport, TcpReport, UdpReport, UnixReport};
use crate::classify::graph::World;
use crate::classify::progress::relative_cpu_percent;
use crate::classify::view::View;
use crate::classify::{Diagnoses, Severity, Verdict};
use crate::linux::fd::Access;
use crate::linux::signal::signal_names;
use crate::linux::wait::strip_wchan_suffix;
use crate::snapshot::*;
use crate::text::TargetString;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize, Debug, Default, schemars::JsonSchema)]
pub struct ProcessDetail {
    pub cmdline: Option<Vec<TargetString>>,
    pub cpu: CpuReport,
    pub io: Option<IoReport>,
    pub threads: Vec<ThreadReport>,
    pub fds: FdsReport,
    pub pipes: Vec<PipeReport>,
    pub tcp: Vec<TcpReport>,
    pub unix: Vec<UnixReport>,
    /// Left out when empty (as in snapshots taken before UDP was read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub udp: Vec<UdpReport>,
    pub children: Vec<ChildReport>,
    pub signals: Option<SignalsReport>,
    /// Its cgroups (left out for snapshots taken before they were read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<super::CgroupReport>,
    pub unavailable: Vec<Unavailable>,
}

#[derive(Serialize, Debug, Default, schemars::JsonSchema)]
pub struct CpuReport {
    /// At the last sample.
    pub utime_ticks: Option<u64>,
    pub stime_ticks: Option<u64>,
    /// At the first sample (equal to the above with `--interval 0`).
    pub first_utime_ticks: Option<u64>,
    pub first_stime_ticks: Option<u64>,
    /// Over the interval, 100 = one core; `null` with a single sample.
    pub percent: Option<f64>,
    /// The share of the interval its main thread waited for a CPU on a run
    /// queue (100 = all of it); `null` with a single sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_percent: Option<f64>,
    pub interval_ms: Option<u64>,
    pub clock_ticks_per_second: u64,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct IoReport {
    pub rchar: Option<u64>,
    pub wchar: Option<u64>,
    pub syscr: Option<u64>,
    pub syscw: Option<u64>,
    /// rchar + wchar gained over the interval.
    pub bytes_delta: Option<u64>,
    /// syscr + syscw gained over the interval.
    pub syscalls_delta: Option<u64>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct ThreadReport {
    pub tid: i32,
    pub comm: Option<TargetString>,
    pub state: Option<String>,
    /// Without compiler suffixes; `""` when not waiting, `null` when unreadable.
    pub wchan: Option<String>,
    /// `null` when the thread is on a CPU or the syscall is unreadable.
    pub syscall: Option<SyscallReport>,
    pub on_cpu: bool,
    pub ctxt_switches_delta: Option<u64>,
    /// Seconds since the thread last ran (the scheduler's clock, to within
    /// a tick); `null` for a running thread, or when unreadable (then
    /// listed under `unavailable`).
    pub last_ran_seconds_ago: Option<f64>,
    /// The kernel stack, innermost frame first, for a waiting thread whose
    /// wchan does not say what it waits for (root only; `null` otherwise).
    pub kernel_stack: Option<Vec<String>>,
    /// With `--stacks`, a Python thread's frames, innermost first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python_stack: Option<Vec<PyFrame>>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct SyscallReport {
    /// -1 when blocked outside a syscall.
    pub nr: i64,
    pub name: Option<&'static str>,
    pub args: Vec<u64>,
}

#[derive(Serialize, Debug, Default, schemars::JsonSchema)]
pub struct FdsReport {
    /// These three are `null` when the fd table could not be read.
    pub count: Option<usize>,
    pub by_type: Option<BTreeMap<String, usize>>,
    /// `all`, or, for a process read lazily (more than 256 fds, or one of a
    /// large selection), `those read in depth`: the fds its threads wait on,
    /// its epoll sets and full self-pipes and socketpairs. `--deep` lists all.
    pub listed: Option<&'static str>,
    pub open: Vec<FdReport>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct FdReport {
    pub fd: i32,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub target: TargetString,
    /// `read`, `write` or `read-write`; `null` without fdinfo flags.
    pub access: Option<&'static str>,
    pub nonblocking: Option<bool>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct ChildReport {
    pub pid: i32,
    pub comm: Option<TargetString>,
    pub state: Option<String>,
    pub cpu_percent: Option<f64>,
    /// The child's own diagnosis, when it was sampled (a parent's wait is
    /// judged by it); `null` when it was not.
    pub verdict: Option<Verdict>,
    pub severity: Option<Severity>,
    pub kernel_thread: bool,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct SignalsReport {
    pub pending: Vec<String>,
    pub blocked: Vec<String>,
    pub ignored: Vec<String>,
    pub caught: Vec<String>,
}

#[derive(Serialize, Debug, PartialEq, schemars::JsonSchema)]
pub struct Unavailable {
    pub what: String,
    pub kind: ReasonKind,
    pub reason: String,
}

/// Everything about one process beyond its one-line row.
pub(super) fn detail(world: &World, diagnoses: &Diagnoses, record: &ProcessRecord) -> Box<ProcessDetail> {
    let host = world.host;
    let view = world.view(record.pid);
    let (stat, status) = identity(record);
    Box::new(ProcessDetail {
        cmdline: record.samples.first().and_then(|s| s.cmdline.ok().cloned()),
        cpu: view.map(|v| cpu(host, v)).unwrap_or_default(),
        io: view.and_then(io),
        threads: view.map(threads).unwrap_or_default(),
        fds: view.map(fds).unwrap_or_default(),
        pipes: view.map(|v| pipes(world, v)).unwrap_or_default(),
        tcp: view.map(|v| tcp(world, v)).unwrap_or_default(),
        unix: view.map(|v| unix(world, v)).unwrap_or_default(),
        udp: view.map(udp).unwrap_or_default(),
        children: view.map(|v| children(v, diagnoses)).unwrap_or_default(),
        // A kernel thread ignores every signal: nothing to say.
        signals: status
            .filter(|_| !stat.is_some_and(Stat::is_kernel_thread))
            .map(signals),
        cgroup: record
            .samples
            .first()
            .zip(record.last_taken())
            .and_then(|(first, last)| super::cgroup::cgroup(first, last)),
        unavailable: super::unavailable::unavailable(record),
    })
}
fn cpu(host: &Host, view: &View) -> CpuReport {
    let first = view.first.stat.ok();
    let last = view.stat();
    CpuReport {
        utime_ticks: last.and_then(|s| s.utime),
        stime_ticks: last.and_then(|s| s.stime),
        first_utime_ticks: first.and_then(|s| s.utime),
        first_stime_ticks: first.and_then(|s| s.stime),
        percent: view
            .progress
            .as_ref()
            .and_then(|p| p.cpu_percent)
            .map(|p| (p * 10.0).round() / 10.0),
        wait_percent: view
            .progress
            .as_ref()
            .and_then(|p| p.wait_percent)
            .map(|p| (p * 10.0).round() / 10.0),
        interval_ms: view.progress.as_ref().map(|p| p.interval_ms),
        clock_ticks_per_second: host.clock_ticks_per_second,
    }
}

fn io(view: &View) -> Option<IoReport> {
    let io = view.last.io.ok()?;
    Some(IoReport {
        rchar: io.rchar,
        wchar: io.wchar,
        syscr: io.syscr,
        syscw: io.syscw,
        bytes_delta: view.progress.as_ref().and_then(|p| p.io_bytes),
        syscalls_delta: view.progress.as_ref().and_then(|p| p.io_syscalls),
    })
}

fn threads(view: &View) -> Vec<ThreadReport> {
    let switches = |t: &Thread| t.status.ok()?.total();
    let python = view.last.python_stacks.as_ref().and_then(Fact::ok);
    let before: BTreeMap<i32, u64> = view
        .first
        .threads
        .ok()
        .map(|ts| ts.iter().filter_map(|t| Some((t.tid, switches(t)?))).collect())
        .unwrap_or_default();
    view.threads
        .iter()
        .map(|t| ThreadReport {
            tid: t.tid(),
            comm: t.thread.stat.ok().map(|s| s.comm.clone()),
            state: t.state.map(String::from),
            wchan: t.thread.wchan.ok().map(|w| strip_wchan_suffix(w).to_string()),
            syscall: match t.thread.syscall.ok() {
                Some(Syscall::Blocked { nr, args }) if !t.kernel_thread => Some(SyscallReport {
                    nr: *nr,
                    name: t.syscall_name,
                    args: args.to_vec(),
                }),
                _ => None,
            },
            on_cpu: t.on_cpu(),
            ctxt_switches_delta: view
                .progress
                .as_ref()
                .and_then(|_| Some(switches(t.thread)?.saturating_sub(*before.get(&t.tid())?))),
            last_ran_seconds_ago: t.last_ran_ms.clone().and_then(Result::ok).map(seconds),
            kernel_stack: t.thread.kernel_stack.as_ref().and_then(|s| s.ok().cloned()),
            python_stack: python
                .and_then(|threads| threads.iter().find(|p| p.tid == Some(t.tid())))
                .map(|p| p.frames.clone()),
        })
        .collect()
}

fn fds(view: &View) -> FdsReport {
    let Some(_) = view.last.fds.ok() else {
        return FdsReport::default();
    };
    let (count, by_type) = match &view.last.fd_totals {
        Some(totals) => (
            totals.count,
            totals
                .kinds()
                .map(|(k, n)| (k.name().to_string(), n as usize))
                .collect(),
        ),
        None => {
            let mut by_type = BTreeMap::new();
            for fd in &view.fds {
                *by_type.entry(fd.kind.name().to_string()).or_insert(0) += 1;
            }
            (view.fds.len(), by_type)
        }
    };
    FdsReport {
        count: Some(count),
        by_type: Some(by_type),
        listed: Some(if view.last.fd_totals.is_some() {
            "those read in depth"
        } else {
            "all"
        }),
        open: view
            .fds
            .iter()
            .map(|f| FdReport {
                fd: f.fd.fd,
                kind: f.kind.name(),
                target: f.fd.target.clone(),
                access: f.access().map(Access::name),
                nonblocking: f.nonblocking(),
            })
            .collect(),
    }
}

fn children(view: &View, diagnoses: &Diagnoses) -> Vec<ChildReport> {
    let before = view.first.children.ok().map(Vec::as_slice).unwrap_or_default();
    let interval = view.progress.as_ref().map(|p| p.interval_ms).unwrap_or(0);
    view.last
        .children
        .ok()
        .map(|children| {
            children
                .iter()
                .map(|child| ChildReport {
                    pid: child.pid,
                    comm: child.stat.ok().map(|s| s.comm.clone()),
                    state: child.stat.ok().map(|s| s.state.to_string()),
                    cpu_percent: before
                        .iter()
                        .find(|b| b.pid == child.pid)
                        .and_then(|b| relative_cpu_percent(view.host, b, child, interval))
                        .map(|p| p.round()),
                    verdict: diagnoses.get(child.pid).map(|d| d.verdict),
                    severity: diagnoses.get(child.pid).map(|d| d.severity),
                    kernel_thread: child.stat.ok().is_some_and(Stat::is_kernel_thread),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn signals(status: &Status) -> SignalsReport {
    let names = |mask: Option<u64>| mask.map(signal_names).unwrap_or_default();
    SignalsReport {
        pending: names(Some(
            status.sig_pending.unwrap_or(0) | status.sig_shared_pending.unwrap_or(0),
        )),
        blocked: names(status.sig_blocked),
        ignored: names(status.sig_ignored),
        caught: names(status.sig_caught),
    }
}

/// Milliseconds as seconds, to the millisecond.
pub(super) fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}
