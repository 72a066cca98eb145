//! Progress and timed waits: what one sample cannot claim, a wait a timer
//! ends, a housekeeping thread's ticking against a worker's work.

use super::*;

#[test]
fn one_sample_never_claims_progress_either_way() {
    let mut single = record('S', 0, &[t(PID, 'S', 202, &[0x10, 0x80], "futex_do_wait")], &[]);
    single.samples.truncate(1);
    let d = verdict_of("x86_64", &single);
    assert_eq!(d.verdict, Verdict::FutexBlocked);
    assert!(
        matches!(
            d.deciding().claim,
            Claim::Waiting {
                wait: WaitClaim::Futex { progress: None, .. },
                ..
            }
        ),
        "{d:#?}"
    );
    assert!(said(&d).contains("progress not measured"), "{}", said(&d));
}

#[test]
fn unreadable_stat_is_unknown_not_a_guess() {
    let mut r = record('S', 0, &[], &[]);
    r.samples[1].stat = Fact::Unavailable(denied("stat"));
    let d = verdict_of("x86_64", &r);
    assert_eq!(d.verdict, Verdict::Unknown);
    assert_eq!(d.severity, Severity::Warn);
}

#[test]
fn a_futex_wait_with_a_timeout_is_a_timed_sleep_not_a_stuck_futex() {
    // FUTEX_WAIT_BITSET|PRIVATE (0x89), as Python's Event.wait(3600) and a
    // JVM's timed park call it; the timeout is argument 3.
    let timed = t(PID, 'S', 202, &[0x7f00, 0x89, 0, 0x7ffd_1000], "futex_do_wait");
    let d = verdict_of("x86_64", &record('S', 0, &[timed], &[]));
    assert_eq!((d.verdict, d.severity), (Verdict::Sleeping, Severity::Info));
    assert!(matches!(
        d.deciding().claim,
        Claim::Waiting {
            wait: WaitClaim::TimedFutex,
            ..
        }
    ));
    // The same wait without a timeout (an untimed Object.wait(), a join):
    // only another thread can end it.
    let untimed = t(PID, 'S', 202, &[0x7f00, 0x89, 0, 0], "futex_do_wait");
    let d = verdict_of("x86_64", &record('S', 0, &[untimed], &[]));
    assert_eq!((d.verdict, d.severity), (Verdict::FutexBlocked, Severity::Warn));
    // futex_waitv (x86_64 449) takes its timeout in argument 3 too.
    let waitv = t(PID, 'S', 449, &[0x7f00, 2, 0, 0x7ffd_1000], "futex_do_wait");
    assert_eq!(
        verdict_of("x86_64", &record('S', 0, &[waitv], &[])).verdict,
        Verdict::Sleeping
    );
}

/// A JVM idle in `Object.wait()`: its main thread waits untimed, while a
/// housekeeping thread between timed sleeps uses a little CPU. That ticking
/// is not the main thread's progress: still futex-blocked. The same CPU in a
/// thread not on a timer (a worker, a lock holder) is progress.
#[test]
fn a_housekeeping_thread_ticking_is_not_progress_but_a_worker_is() {
    let untimed = t(PID, 'S', 202, &[0x7f00, 0x80, 0, 0], "futex_do_wait");
    let timed = t(101, 'S', 202, &[0x7f10, 0x89, 0, 0x7ffd_1000], "futex_do_wait");
    let untimed_worker = t(101, 'S', 202, &[0x7f10, 0x80, 0, 0], "futex_do_wait");
    for (other, expected) in [(timed, Verdict::FutexBlocked), (untimed_worker, Verdict::Running)] {
        let mut r = record('S', 2, &[untimed.clone(), other], &[]);
        // The 2 ticks were the other thread's, not main's.
        if let Fact::Ok(ts) = &mut r.samples[1].threads {
            ts[0].stat = Fact::Ok(stat('S', 0));
            ts[1].stat = Fact::Ok(Stat {
                utime: Some(2),
                ..stat('S', 0)
            });
        }
        assert_eq!(verdict_of("x86_64", &r).verdict, expected);
    }
}
