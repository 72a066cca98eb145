//! The last guard of "never hangs". Each read that can block for good has
//! its own deadline (the read helper, netlink), but a command line read
//! in-process, where no thread of its process seemed able to hold the
//! memory-map lock, has none: were a thread to take that lock for good
//! between the check and the read, the run would wait with it. So a
//! collection that outlives its `--timeout` by [`GRACE`] ends whystuck
//! (exit 2, one line naming the read) rather than hang its caller.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// How long past the run's `--timeout` a collection may take.
pub(super) const GRACE: Duration = Duration::from_secs(5);

/// The pid whose command line is being read in-process, 0 for none.
static READING_CMDLINE_OF: AtomicI32 = AtomicI32::new(0);

/// `read`, marked as the in-process read of `pid`'s command line (the
/// latest of the pool threads' reads, unless it ended first).
pub(super) fn reading_cmdline<T>(pid: i32, read: impl FnOnce() -> T) -> T {
    READING_CMDLINE_OF.store(pid, Ordering::Relaxed);
    let result = read();
    let _ = READING_CMDLINE_OF.compare_exchange(pid, 0, Ordering::Relaxed, Ordering::Relaxed);
    result
}

/// Armed while a collection runs: when it is not dropped within its limit,
/// `on_expiry` runs (on a thread of its own).
pub(super) struct Backstop {
    _armed: mpsc::Sender<()>,
}

impl Backstop {
    pub fn arm(limit: Duration, on_expiry: impl FnOnce() + Send + 'static) -> Backstop {
        let (armed, disarmed) = mpsc::channel::<()>();
        // Without a thread there is no backstop, and the run goes on.
        let _ = std::thread::Builder::new()
            .name("whystuck-backstop".into())
            .spawn(move || {
                if let Err(RecvTimeoutError::Timeout) = disarmed.recv_timeout(limit) {
                    on_expiry();
                }
            });
        Backstop { _armed: armed }
    }

    /// The backstop of a run with `timeout`: one line on stderr, exit 2.
    pub fn for_run(timeout: Duration) -> Backstop {
        Backstop::arm(timeout + GRACE, move || {
            let read = match READING_CMDLINE_OF.load(Ordering::Relaxed) {
                0 => "a read of /proc".to_string(),
                pid => format!("/proc/{pid}/cmdline (its memory-map lock, likely)"),
            };
            let waited = humantime::format_duration(timeout + GRACE);
            eprintln!("whystuck: {read} did not return within {waited} (--timeout and {GRACE:?} more): giving up");
            std::process::exit(i32::from(crate::cli::EXIT_USAGE));
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backstop_fires_only_when_not_dropped_in_time() {
        let (fired, seen) = mpsc::channel();
        let late = Backstop::arm(Duration::from_millis(20), move || fired.send(()).unwrap());
        assert!(
            seen.recv_timeout(Duration::from_secs(5)).is_ok(),
            "fired past its limit"
        );
        drop(late);

        let (fired, seen) = mpsc::channel();
        drop(Backstop::arm(Duration::from_millis(200), move || {
            fired.send(()).unwrap()
        }));
        assert!(
            seen.recv_timeout(Duration::from_millis(400)).is_err(),
            "dropped in time: never fires"
        );
    }

    #[test]
    fn an_in_process_read_is_marked_while_it_runs() {
        let seen = reading_cmdline(4242, || READING_CMDLINE_OF.load(Ordering::Relaxed));
        assert_eq!(seen, 4242);
        assert_eq!(READING_CMDLINE_OF.load(Ordering::Relaxed), 0);
    }
}
