//! A process's pulse: the few counters that move whenever it does anything
//! (CPU time, read/write syscalls and bytes, times scheduled), read cheaply
//! every tick by `whystuck watch` to tell "still parked" from "working"
//! without a full diagnosis.

use super::dir::ProcDir;
use super::parse;
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pulse {
    pub state: char,
    pub starttime: Option<u64>,
    /// utime + stime of all threads.
    pub cpu_ticks: Option<u64>,
    /// syscr + syscw.
    pub io_syscalls: Option<u64>,
    /// rchar + wchar.
    pub io_bytes: Option<u64>,
    /// Times the main thread was scheduled (`schedstat`): moves on every
    /// wakeup, even one too short to cost a clock tick.
    pub timeslices: Option<u64>,
}

impl Pulse {
    /// Whether anything moved since `before` (a different process, by start
    /// time, counts as moved: it is not the one that was parked).
    pub fn moved_since(&self, before: &Pulse) -> bool {
        let changed = |a: Option<u64>, b: Option<u64>| matches!((a, b), (Some(a), Some(b)) if a != b);
        self.starttime != before.starttime
            || changed(self.cpu_ticks, before.cpu_ticks)
            || changed(self.io_syscalls, before.io_syscalls)
            || changed(self.io_bytes, before.io_bytes)
            || changed(self.timeslices, before.timeslices)
    }
}

/// Reads pulses, holding each pid's /proc directory open across ticks so a
/// reused pid reads as gone rather than as the newcomer.
pub struct PulseReader {
    root: ProcDir,
    dirs: HashMap<i32, ProcDir>,
    buf: Vec<u8>,
}

impl PulseReader {
    pub fn new(proc_root: &Path) -> anyhow::Result<PulseReader> {
        let root = ProcDir::open(proc_root).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", proc_root.display()))?;
        Ok(PulseReader {
            root,
            dirs: HashMap::new(),
            buf: Vec::with_capacity(1024),
        })
    }

    /// The pulse of `pid`, or `None` once it is gone.
    pub fn read(&mut self, pid: i32) -> Option<Pulse> {
        if !self.dirs.contains_key(&pid) {
            let dir = self.root.open_dir(&pid.to_string()).ok()?;
            self.dirs.insert(pid, dir);
        }
        let dir = self.dirs.get(&pid)?;
        if dir.read("stat", &mut self.buf).is_err() {
            self.dirs.remove(&pid);
            return None;
        }
        let stat = parse::stat(&self.buf).ok()?;
        let io = dir.read("io", &mut self.buf).ok().map(|()| parse::io(&self.buf));
        let sum = |a: Option<u64>, b: Option<u64>| Some(a? + b?);
        let timeslices = dir.read("schedstat", &mut self.buf).ok().and_then(|()| {
            std::str::from_utf8(&self.buf)
                .ok()?
                .split_ascii_whitespace()
                .nth(2)?
                .parse()
                .ok()
        });
        Some(Pulse {
            state: stat.state,
            starttime: stat.starttime,
            cpu_ticks: stat.cpu_ticks(),
            io_syscalls: io.as_ref().and_then(|io| sum(io.syscr, io.syscw)),
            io_bytes: io.as_ref().and_then(|io| sum(io.rchar, io.wchar)),
            timeslices,
        })
    }

    /// Stop holding `pid`'s directory.
    pub fn forget(&mut self, pid: i32) {
        self.dirs.remove(&pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_counter_moving_is_movement_and_missing_counters_are_not() {
        let base = Pulse {
            state: 'S',
            starttime: Some(1),
            cpu_ticks: Some(10),
            io_syscalls: Some(5),
            io_bytes: Some(100),
            timeslices: Some(7),
        };
        assert!(!base.moved_since(&base));
        for moved in [
            Pulse {
                cpu_ticks: Some(11),
                ..base.clone()
            },
            Pulse {
                io_syscalls: Some(6),
                ..base.clone()
            },
            Pulse {
                io_bytes: Some(101),
                ..base.clone()
            },
            Pulse {
                timeslices: Some(8),
                ..base.clone()
            },
            Pulse {
                starttime: Some(2),
                ..base.clone()
            },
        ] {
            assert!(moved.moved_since(&base), "{moved:?}");
        }
        let unreadable = Pulse {
            io_syscalls: None,
            io_bytes: None,
            ..base.clone()
        };
        assert!(!unreadable.moved_since(&base), "an unreadable counter is not movement");
    }
}
