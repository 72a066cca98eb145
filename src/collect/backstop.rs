//! The last guard of "never hangs". Each read that can block for good has
//! its own deadline (the read helper, netlink), but a command line read
//! in-process, where no thread of its process seemed able to hold the
//! memory-map lock, has none: were a thread to take that lock for good
//! between the check and the read, the run would wait with it. So once a
//! collection is past its `--timeout`, reads that stop returning for
//! [`GRACE`] end whystuck (exit 2, one line naming the read) rather than
//! hang its caller. A run that is slow but reading (a host far larger than
//! its budget) is let finish: it stops starting reads at the budget anyway.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// How long, past the run's `--timeout`, a collection may go without a read
/// returning.
pub(super) const GRACE: Duration = Duration::from_secs(5);

/// Reads of /proc files, links and listings returned so far, by every
/// thread.
static READS_RETURNED: AtomicU64 = AtomicU64::new(0);

/// The pid whose command line is being read in-process, 0 for none.
static READING_CMDLINE_OF: AtomicI32 = AtomicI32::new(0);

/// A read of a /proc file, link or listing returned.
pub(super) fn read_returned() {
    READS_RETURNED.fetch_add(1, Ordering::Relaxed);
}

/// `read`, marked as the in-process read of `pid`'s command line (the
/// latest of the pool threads' reads, unless it ended first).
pub(super) fn reading_cmdline<T>(pid: i32, read: impl FnOnce() -> T) -> T {
    READING_CMDLINE_OF.store(pid, Ordering::Relaxed);
    let result = read();
    let _ = READING_CMDLINE_OF.compare_exchange(pid, 0, Ordering::Relaxed, Ordering::Relaxed);
    result
}

/// Armed while a collection runs (dropping it disarms it): after `limit`,
/// `on_stall` runs (on a thread of its own) once `returned` stays the same
/// for `grace`.
pub(super) struct Backstop {
    _armed: mpsc::Sender<()>,
}

impl Backstop {
    pub fn arm(
        limit: Duration,
        grace: Duration,
        returned: impl Fn() -> u64 + Send + 'static,
        on_stall: impl FnOnce() + Send + 'static,
    ) -> Backstop {
        let (armed, disarmed) = mpsc::channel::<()>();
        let watch = move || {
            let mut waited = limit;
            loop {
                let before = returned();
                match disarmed.recv_timeout(waited) {
                    Err(RecvTimeoutError::Timeout) if waited == grace && returned() == before => break on_stall(),
                    Err(RecvTimeoutError::Timeout) => waited = grace,
                    _ => return,
                }
            }
        };
        // Without a thread there is no backstop, and the run goes on.
        let _ = std::thread::Builder::new()
            .name("whystuck-backstop".into())
            .spawn(watch);
        Backstop { _armed: armed }
    }

    /// The backstop of a run with `timeout`: one line on stderr, exit 2.
    pub fn for_run(timeout: Duration) -> Backstop {
        let returned = || READS_RETURNED.load(Ordering::Relaxed);
        Backstop::arm(timeout, GRACE, returned, move || {
            let read = match READING_CMDLINE_OF.load(Ordering::Relaxed) {
                0 => "a read of /proc".to_string(),
                pid => format!("/proc/{pid}/cmdline (its memory-map lock, likely)"),
            };
            let (timeout, grace) = (humantime::format_duration(timeout), humantime::format_duration(GRACE));
            eprintln!(
                "whystuck: {read} has not returned for {grace}, past the run's --timeout of {timeout}: giving up"
            );
            std::process::exit(i32::from(crate::cli::EXIT_USAGE));
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    // Wide enough that a test thread descheduled for a moment on a loaded
    // machine is not taken for a stall.
    const LIMIT: Duration = Duration::from_millis(50);
    const GRACE: Duration = Duration::from_millis(400);

    #[test]
    fn a_backstop_fires_when_reads_stop_returning_past_its_limit() {
        let (fired, seen) = mpsc::channel();
        let _armed = Backstop::arm(LIMIT, GRACE, || 7, move || fired.send(()).unwrap());
        assert!(
            seen.recv_timeout(Duration::from_secs(5)).is_ok(),
            "no read returned: fired"
        );
    }

    #[test]
    fn a_backstop_waits_while_reads_return_and_never_fires_once_dropped() {
        let (fired, seen) = mpsc::channel();
        let reads = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&reads);
        let armed = Backstop::arm(
            LIMIT,
            GRACE,
            move || counted.load(Ordering::Relaxed),
            move || fired.send(()).unwrap(),
        );
        // Slow but reading: two graces past the limit, no stall.
        for _ in 0..16 {
            reads.fetch_add(1, Ordering::Relaxed);
            assert!(seen.recv_timeout(GRACE / 8).is_err(), "fired while reads returned");
        }
        drop(armed);
        assert!(seen.recv_timeout(GRACE * 2).is_err(), "dropped: never fires");
    }

    #[test]
    fn an_in_process_read_is_marked_while_it_runs() {
        let seen = reading_cmdline(4242, || READING_CMDLINE_OF.load(Ordering::Relaxed));
        assert_eq!(seen, 4242);
        assert_eq!(READING_CMDLINE_OF.load(Ordering::Relaxed), 0);
    }
}
