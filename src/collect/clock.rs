//! "Now" in the scheduler's clock, to tell how long ago a thread last ran.
//!
//! A thread's `se.exec_start` is in its CPU's task clock, which leaves out
//! time spent in interrupts and stolen by a hypervisor, so it drifts from
//! CLOCK_MONOTONIC, and from one CPU to the next, by as much as that time
//! (seconds, on a busy VM). So each CPU's offset from CLOCK_MONOTONIC is
//! measured once per round, on that CPU: the collecting thread pins itself
//! there for a moment, reads its own `exec_start` (set as it began running
//! there) beside CLOCK_MONOTONIC, and goes back to where it may run. "Now"
//! on that CPU is then CLOCK_MONOTONIC less the offset, at any moment of
//! the round. The error is the time between the two reads (at most a
//! scheduler tick); what the task clock leaves out during the wait itself
//! makes the result a lower bound, which is what it claims to be.
//!
//! The offsets are shared by the sampling threads (see [`super::pool`]):
//! whichever first needs a CPU's measures it, pinning itself (affinity is
//! a thread's own), while the others wait for the lock.

use super::dir::ProcDir;
use super::parse;
use super::reason::reason_for;
use crate::snapshot::{Fact, Reason, ReasonKind};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

#[derive(Default)]
pub(super) struct SchedClocks {
    /// Per CPU: CLOCK_MONOTONIC minus the task clock, in milliseconds.
    offsets: Mutex<BTreeMap<u32, Result<f64, Reason>>>,
}

impl SchedClocks {
    /// A new round: offsets drift, and are measured again when needed.
    pub fn start_round(&mut self) {
        self.offsets.get_mut().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// "Now" in CPU `cpu`'s task clock, measured by the calling thread
    /// the first time the round asks.
    pub fn now_on(&self, root: &ProcDir, buf: &mut Vec<u8>, cpu: u32) -> Fact<f64> {
        let mut offsets = self.offsets.lock().unwrap_or_else(PoisonError::into_inner);
        let offset = offsets.entry(cpu).or_insert_with(|| measure(root, buf, cpu));
        match offset {
            Ok(offset) => Fact::Ok(monotonic_ms() - *offset),
            Err(reason) => Fact::Unavailable(reason.clone()),
        }
    }
}

fn monotonic_ms() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6
}

/// The offset of `cpu`'s task clock, read on that CPU.
fn measure(root: &ProcDir, buf: &mut Vec<u8>, cpu: u32) -> Result<f64, Reason> {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: cpu_set_t is plain data; the calls read or write one of the
    // given size through valid pointers, for the calling thread (0).
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sched_getaffinity(0, size, &mut allowed) } != 0 {
        return Err(reason_for(&std::io::Error::last_os_error()));
    }
    if cpu as usize >= 8 * size || !unsafe { libc::CPU_ISSET(cpu as usize, &allowed) } {
        return Err(Reason::new(
            ReasonKind::NotSupported,
            format!("whystuck may not run on CPU {cpu} to read its scheduler clock"),
        ));
    }
    let mut only: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu as usize, &mut only) };
    if unsafe { libc::sched_setaffinity(0, size, &only) } != 0 {
        return Err(reason_for(&std::io::Error::last_os_error()));
    }
    let own = root.read("thread-self/sched", buf).map_err(|e| reason_for(&e));
    let mono = monotonic_ms();
    // Back to every CPU it may use, whatever happened above.
    unsafe { libc::sched_setaffinity(0, size, &allowed) };
    own?;
    let exec_start = parse::sched_exec_start(buf).map_err(|e| Reason::new(ReasonKind::Unparsable, e))?;
    Ok(mono - exec_start)
}
