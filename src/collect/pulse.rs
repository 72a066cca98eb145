//! Reading a process's [`Pulse`] cheaply every tick of `whystuck watch`,
//! to tell "still parked" from "working" without a full diagnosis (the rule
//! is [`crate::classify::stall`]'s).

use super::dir::ProcDir;
use super::parse;
use crate::snapshot::Pulse;
use std::collections::HashMap;
use std::path::Path;

/// Reads pulses, holding each pid's /proc directory open across ticks so a
/// reused pid reads as gone rather than as the newcomer.
pub struct PulseReader {
    root: ProcDir,
    dirs: HashMap<i32, ProcDir>,
    buf: Vec<u8>,
}

impl PulseReader {
    pub fn new(proc_root: &Path) -> anyhow::Result<PulseReader> {
        let root =
            ProcDir::open_root(proc_root).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", proc_root.display()))?;
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
            exit_code: stat.exit_code,
            ppid: stat.ppid,
        })
    }

    /// Stop holding `pid`'s directory.
    pub fn forget(&mut self, pid: i32) {
        self.dirs.remove(&pid);
    }
}
