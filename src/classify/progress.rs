//! Progress: how much a process moved between two samples. One definition,
//! used by a diagnosis (running or parked), the wait-for graph (live or
//! stuck), a parent's wait (a working child) and `watch` (stalled).

use crate::snapshot::{Host, Io, Pulse, Relative, Sample, Stat};
use std::collections::HashMap;

/// How much a process moved between its two samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    pub interval_ms: u64,
    pub cpu_ticks: Option<u64>,
    pub cpu_percent: Option<f64>,
    /// rchar + wchar.
    pub io_bytes: Option<u64>,
    /// syscr + syscw.
    pub io_syscalls: Option<u64>,
    /// The share of the interval the main thread waited for a CPU on a run
    /// queue (100 = all of it): CPU time it wanted and did not get.
    pub wait_percent: Option<f64>,
    /// Times scheduled: voluntary + involuntary context switches over the
    /// threads present in both samples (or, between pulses, the main
    /// thread's timeslices).
    pub ctxt_switches: Option<u64>,
}

impl Progress {
    /// Between two samples of one process.
    pub fn between(host: &Host, first: &Sample, last: &Sample) -> Progress {
        let interval_ms = last.elapsed_ms.saturating_sub(first.elapsed_ms);
        let cpu_ticks = delta(
            first.stat.ok().and_then(Stat::cpu_ticks),
            last.stat.ok().and_then(Stat::cpu_ticks),
        );
        let io_sum = |s: &Sample, f: fn(&Io) -> (Option<u64>, Option<u64>)| {
            let (a, b) = f(s.io.ok()?);
            Some(a? + b?)
        };
        let bytes = |io: &Io| (io.rchar, io.wchar);
        let calls = |io: &Io| (io.syscr, io.syscw);
        let switches = |s: &Sample| -> HashMap<i32, u64> {
            s.threads
                .ok()
                .map(|ts| {
                    ts.iter()
                        .filter_map(|t| Some((t.tid, t.status.ok()?.total()?)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (before, after) = (switches(first), switches(last));
        let common: Vec<(u64, u64)> = after
            .iter()
            .filter_map(|(tid, a)| Some((*before.get(tid)?, *a)))
            .collect();
        let wait_ns = |s: &Sample| Some(s.schedstat.as_ref()?.ok()?.wait_ns);
        let wait_percent = delta(wait_ns(first), wait_ns(last))
            .filter(|_| interval_ms > 0)
            .map(|ns| ns as f64 / 10_000.0 / interval_ms as f64);
        Progress {
            interval_ms,
            cpu_ticks,
            cpu_percent: cpu_percent(host, cpu_ticks, interval_ms),
            wait_percent,
            io_bytes: delta(io_sum(first, bytes), io_sum(last, bytes)),
            io_syscalls: delta(io_sum(first, calls), io_sum(last, calls)),
            ctxt_switches: (!common.is_empty()).then(|| common.iter().map(|(b, a)| a.saturating_sub(*b)).sum()),
        }
    }

    /// Between two pulses of one process `interval_ms` apart (`watch`):
    /// times scheduled stand for the context switches.
    pub fn between_pulses(before: &Pulse, after: &Pulse, interval_ms: u64) -> Progress {
        Progress {
            interval_ms,
            cpu_ticks: delta(before.cpu_ticks, after.cpu_ticks),
            cpu_percent: None,
            wait_percent: None,
            io_bytes: delta(before.io_bytes, after.io_bytes),
            io_syscalls: delta(before.io_syscalls, after.io_syscalls),
            ctxt_switches: delta(before.timeslices, after.timeslices),
        }
    }

    /// The CPU it wanted: what it got, and what it waited for on a run
    /// queue (on a machine where CPUs are contended, a busy loop gets less
    /// than it wants).
    pub fn wanted_cpu_percent(&self) -> Option<f64> {
        Some(self.cpu_percent? + self.wait_percent.unwrap_or(0.0))
    }

    /// Whether the process did work: CPU time or I/O advanced. `None` when
    /// neither could be measured.
    pub fn moved(&self) -> Option<bool> {
        let signals = [self.cpu_ticks, self.io_bytes, self.io_syscalls];
        if signals.iter().all(Option::is_none) {
            return None;
        }
        Some(signals.iter().any(|s| s.is_some_and(|v| v > 0)))
    }

    /// Any sign of life: CPU time, I/O or context switches advanced. The
    /// rule for "working": a child a parent waits on, and `watch`'s stall.
    pub fn working(&self) -> bool {
        [self.cpu_ticks, self.io_bytes, self.io_syscalls, self.ctxt_switches]
            .iter()
            .any(|v| v.is_some_and(|v| v > 0))
    }
}

fn delta(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

/// CPU ticks over an interval as a percentage of one core.
fn cpu_percent(host: &Host, ticks: Option<u64>, interval_ms: u64) -> Option<f64> {
    let ticks = ticks.filter(|_| interval_ms > 0)?;
    Some(ticks as f64 * 100_000.0 / host.clock_ticks_per_second.max(1) as f64 / interval_ms as f64)
}

/// The CPU percent of a relative (child) between two samples of it.
pub fn relative_cpu_percent(host: &Host, before: &Relative, after: &Relative, interval_ms: u64) -> Option<f64> {
    let ticks = after
        .stat
        .ok()?
        .cpu_ticks()?
        .checked_sub(before.stat.ok()?.cpu_ticks()?)?;
    cpu_percent(host, Some(ticks), interval_ms)
}
