//! `watch`'s stall rule, with the definition of progress a diagnosis uses:
//! a process is stalled when neither it nor any of its descendants showed
//! a sign of life ([`Progress::working`]) for `--stall-after`, whatever it
//! is parked in. A process waiting on a working child is not stalled.

use super::progress::Progress;
use super::{Severity, Verdict};
use crate::snapshot::Pulse;
use std::time::Duration;

/// Whether a process moved between two pulses. A different process (by
/// start time) counts as moved: it is not the one that was parked.
pub fn moved(before: &Pulse, after: &Pulse) -> bool {
    before.starttime != after.starttime || Progress::between_pulses(before, after, 0).working()
}

/// The verdict and severity `watch` reports for a diagnosis, given how long
/// nothing in the family moved.
pub fn judge(still_for: Duration, stall_after: Duration, verdict: Verdict, severity: Severity) -> (Verdict, Severity) {
    if still_for >= stall_after && verdict != Verdict::Dead {
        (Verdict::Stalled, Severity::Critical)
    } else {
        (verdict, severity)
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
            exit_code: None,
            ppid: None,
        };
        assert!(!moved(&base, &base));
        for after in [
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
            assert!(moved(&base, &after), "{after:?}");
        }
        let unreadable = Pulse {
            io_syscalls: None,
            io_bytes: None,
            ..base.clone()
        };
        assert!(!moved(&base, &unreadable), "an unreadable counter is not movement");
    }

    #[test]
    fn stalled_after_the_threshold_unless_dead() {
        let after = Duration::from_secs(10);
        let sleeping = (Verdict::Sleeping, Severity::Info);
        assert_eq!(judge(Duration::from_secs(9), after, sleeping.0, sleeping.1), sleeping);
        assert_eq!(
            judge(Duration::from_secs(10), after, sleeping.0, sleeping.1),
            (Verdict::Stalled, Severity::Critical)
        );
        let dead = (Verdict::Dead, Severity::Critical);
        assert_eq!(judge(Duration::from_secs(99), after, dead.0, dead.1), dead);
    }
}
