//! Every fact of a process that could not be read, and why: the report's
//! `unavailable` list (a fact that could not be read is `null`, never 0).

use super::Unavailable;
use crate::snapshot::*;

/// Every fact of the last sample that could not be read (the command line
/// is read with the first), per-thread and per-fd failures folded into one
/// entry each.
pub(super) fn unavailable(record: &ProcessRecord) -> Vec<Unavailable> {
    let (Some(first), Some(sample)) = (record.samples.first(), record.last_taken()) else {
        return Vec::new();
    };
    if sample.presence != Presence::Present {
        return Vec::new(); // the `dead` finding says why
    }
    let mut out: Vec<Unavailable> = Vec::new();
    let mut push = |what: String, reason: &Reason| {
        // Deliberately not read (a rate with one sample): not measured, not unavailable.
        if reason.kind == ReasonKind::NotCollected {
            return;
        }
        if !out.iter().any(|u| u.what == what && u.reason == reason.detail) {
            out.push(Unavailable {
                what,
                kind: reason.kind,
                reason: reason.detail.to_string(),
            });
        }
    };
    let facts: [(&str, Option<&Reason>); 8] = [
        ("stat", sample.stat.reason()),
        ("status", sample.status.reason()),
        ("cmdline", first.cmdline.reason()),
        ("io", sample.io.reason()),
        ("threads", sample.threads.reason()),
        ("fds", sample.fds.reason()),
        ("sockets", sample.sockets.reason()),
        ("children", sample.children.reason()),
    ];
    for (what, reason) in facts {
        if let Some(reason) = reason {
            push(what.to_string(), reason);
        }
    }
    for thread in sample.threads.ok().into_iter().flatten() {
        for (what, reason) in [
            ("thread syscall", thread.syscall.reason()),
            ("thread wchan", thread.wchan.reason()),
            ("thread status", thread.status.reason()),
            ("thread last ran", thread.last_ran_at_ms.as_ref().and_then(Fact::reason)),
            (
                "thread kernel stack",
                thread.kernel_stack.as_ref().and_then(Fact::reason),
            ),
        ] {
            if let Some(reason) = reason {
                push(what.to_string(), reason);
            }
        }
    }
    if let Some(reason) = sample.sockets.ok().and_then(|s| s.udp_unavailable.as_ref()) {
        push("udp sockets".to_string(), reason);
    }
    for fd in sample.fds.ok().into_iter().flatten() {
        if let Some(reason) = fd.info.reason() {
            push("fdinfo".to_string(), reason);
        }
        if let Some(reason) = fd.pipe.as_ref().and_then(|p| p.reason()) {
            push("pipe fill".to_string(), reason);
        }
    }
    if let Some(reason) = sample.python_stacks.as_ref().and_then(Fact::reason) {
        push("python stacks".to_string(), reason);
    }
    for clock in sample.sched_now_ms.iter().flatten() {
        if let Some(reason) = clock.now_ms.reason() {
            push("scheduler clock (how long threads have not run)".to_string(), reason);
        }
    }
    super::cgroup::unavailable(sample, |what, reason| push(what.to_string(), reason));
    if let Some(reason) = sample.parent.as_ref().and_then(|p| p.stat.reason()) {
        push("parent stat".to_string(), reason);
    }
    if let Some(reason) = record.skipped_round() {
        push("second sample (cpu, i/o and switch rates)".to_string(), reason);
    }
    out
}
