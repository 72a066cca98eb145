//! collect: the only code that touches /proc, netlink or a target's fds.
//!
//! It turns pids into a [`Snapshot`] of raw facts and judges nothing. It is
//! read-only by construction: files are opened read-only and non-blocking
//! and closed at once, fd links are read with readlink and never followed,
//! and the one open of a target's fd is the pipe probe in `depth.rs` (of a
//! pipe, or of a FIFO a thread reads or writes: never one it waits to open).
//!
//! Where each job lives:
//! - `run.rs`: a run's rounds ([`collect`]), the state they share, and the
//!   wait between a process's two samples;
//! - `sample.rs`: sampling one process through its held directory (`dir.rs`):
//!   stat, status, io, threads, fd links, fd details, its command line when
//!   it cannot hang; `depth.rs`: which fds are read in depth, and the pipe
//!   probe;
//! - `pool.rs`: samples taken on a few threads, kept in order; `take.rs`:
//!   a batch's first samples and the second round on it, each settled on
//!   the collecting thread (cgroups, the index of ends, socket tables);
//! - `holders.rs`: who holds the other end of each pipe and socket
//!   (through the index in `ends.rs`); `locks.rs`: who holds the file
//!   locks sampled threads wait for (`/proc/locks`, fdinfo `lock:` lines);
//! - `batch.rs`: what a batch of samples lacks until it ends, by pid:
//!   command lines through the read helper ([`helper`]), sockets (`net.rs`,
//!   [`sockdiag`]), full socketpairs, children's stats;
//! - `cgroup/`: each process's cgroups (`/proc/PID/cgroup`) and, once a
//!   round per distinct cgroup, what can matter of them: frozen, the CPU
//!   quota and its throttling, memory and pressure;
//! - `reason.rs`: why a fact is unavailable (I/O errors, absent or hidden
//!   processes, the spent budget); `backstop.rs`: a run past its budget
//!   whose reads stop returning ends whystuck rather than hang its caller;
//! - [`select`] chooses processes by what they are, [`pulse`] reads the
//!   few counters `watch` polls, [`parse`] parses what is read.
//!
//! collect judges only what decides how much to read, never a verdict.
//! Where that overlaps classify the two share one definition: a pipe is full
//! by [`crate::linux::fd::pipe_is_full`], and the fds a blocked thread names
//! are read in depth (any syscall's argument 0 here, a superset of
//! classify's `ThreadView` fd).

mod backstop;
mod batch;
pub mod cgroup;
mod clock;
mod depth;
mod dir;
mod ends;
pub mod helper;
mod holders;
mod locks;
mod net;
pub mod parse;
mod pool;
pub mod pulse;
mod pystacks;
mod reason;
mod run;
mod sample;
pub mod select;
pub mod sockdiag;
mod take;
mod visibility;

use crate::snapshot::Snapshot;
use std::time::Duration;

pub struct Options {
    /// Where /proc is (a fake tree, for tests), the read helper, and the
    /// deadline of each read that can block (cmdline, netlink).
    pub helper: helper::HelperConfig,
    /// Time between the two samples; zero takes one sample.
    pub interval: Duration,
    /// The whole run's budget: past it, nothing more is read and what was
    /// not is reported as timed out.
    pub timeout: Duration,
    /// Processes with up to this many fds have every fd read in depth
    /// (fdinfo, pipe fill); past it, only the fds that matter. [`LAZY_FDS`]
    /// by default, `usize::MAX` for `--deep`, 0 for a large selection.
    pub deep_fds: usize,
    /// Read each thread's context switches (progress between samples).
    pub thread_status: bool,
    /// A large selection (`--all`): children are found by the ppids of the
    /// samples (see `batch::Parents`) instead of each thread's `children` file,
    /// and a process's self-pipes are probed only once.
    pub many: bool,
    /// Dump Python processes' stacks with py-spy (`--stacks`).
    pub stacks: bool,
}

/// A process with more fds than this has its fds read in depth (fdinfo,
/// pipe fill) only where it matters: the fds its blocked threads name, its
/// epoll fds and what they watch, and pipes and socketpairs it holds both
/// ends of. The rest are listed by their links, their details marked "not
/// collected".
pub const LAZY_FDS: usize = 256;

/// A process with more threads than this has a kernel stack read only for
/// the threads whose wait neither the syscall nor the wchan tells (a JVM's
/// or a thread pool's thousands of parked threads say theirs).
pub const LAZY_THREADS: usize = 256;

/// A selection of more processes than this is read lazily (see
/// [`Options::many`]): every process's fds in depth only where it matters.
pub const MANY_PROCESSES: usize = 32;

/// What to sample.
pub struct Request<'a> {
    pub pids: &'a [i32],
    /// Also every descendant of the pids.
    pub tree: bool,
    /// Given the facts so far, the further pids a diagnosis will need (the
    /// child a target waits for, the process at the other end of the pipe
    /// it is blocked on). They are sampled as [`Role::Related`](crate::snapshot::Role::Related).
    pub related: &'a dyn Fn(&Snapshot) -> Vec<i32>,
    /// What the selection's scan already opened and read of the pids.
    pub prefetched: Option<&'a select::Prefetched>,
}

/// Expansion to related processes stops after this many of them: a wait-for
/// chain longer than that is reported as far as it was followed.
const MAX_RELATED: usize = 64;

/// Sample every process (twice, each second sample at least `interval`
/// after the first, unless the interval is zero), then find the holders of
/// the other ends of their pipes and sockets.
/// A run past its timeout whose reads stop returning for
/// [`backstop::GRACE`] ends whystuck.
pub fn collect(request: &Request, options: &Options) -> anyhow::Result<Snapshot> {
    let _backstop = backstop::Backstop::for_run(options.timeout);
    run::run(request, options)
}
