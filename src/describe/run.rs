//! The words around a run rather than a finding: watch's stalled and ended
//! lines, a replay's header, what a scan could not see.

use crate::classify::Verdict;
use crate::linux::signal::signal_names;
use crate::snapshot::Visibility;

/// `watch`'s summary of a stalled process.
pub fn stalled(still_for: std::time::Duration, descendants: usize, verdict: Verdict, summary: &str) -> String {
    format!(
        "nothing moved for {} (CPU, syscalls, I/O, context switches; {descendants} descendants included); {}: {summary}",
        super::elapsed(still_for.as_secs() * 1000),
        verdict.name(),
    )
}

/// `watch`'s summary of a process that ended, and what it was when last
/// seen.
pub fn ended(how: crate::watch::event::Ending, last: Option<Verdict>) -> String {
    use crate::watch::event::Ending;
    let killed = |signal: i32| signal_names(1 << (signal - 1)).join("");
    let how = match how {
        Ending::Exited(status) => format!("exited with status {status}"),
        Ending::Killed(signal) => format!("killed by {}", killed(signal)),
        Ending::Unreaped(status) => {
            let status = match Ending::reaped(status) {
                Ending::Exited(code) => format!(" with status {code}"),
                Ending::Killed(signal) => format!(", killed by {}", killed(signal)),
                _ => String::new(),
            };
            format!("zombie: exited{status}, and its parent has not reaped it")
        }
        Ending::Unknown => "exited; how is unknown (its parent reaped it before watch looked again)".to_string(),
    };
    match last {
        Some(verdict) => format!("{how}; it was {} when last seen", verdict.name()),
        None => how.to_string(),
    }
}

/// The first line of a replayed report: which snapshot, captured when and
/// where.
pub fn replay(file: &str, host: &crate::report::HostReport) -> String {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(host.captured_at_unix_ms);
    let kernel = host
        .kernel_release
        .as_deref()
        .map(|k| format!(", kernel {k}"))
        .unwrap_or_default();
    format!(
        "Replay of the snapshot {}, captured {} on {} ({}{kernel}): not a live diagnosis.",
        crate::text::escape_bytes(file.as_bytes()),
        humantime::format_rfc3339_seconds(when),
        host.hostname
            .as_deref()
            .map(|h| crate::text::escape_bytes(h.as_bytes()))
            .unwrap_or_else(|| "an unknown host".into()),
        host.arch,
    )
}

/// What a scan missed, in words; `None` when it saw everything.
pub fn host_unseen(visibility: &Visibility) -> Option<String> {
    let setting = visibility.hidepid.as_deref().filter(|&h| h != "off");
    match (setting, visibility.unreadable_processes, visibility.hidden_threads) {
        (_, 0, Some(0)) | (None | Some("noaccess"), 0, _) => None,
        (Some(setting), 0, Some(threads)) => Some(format!(
            "/proc is mounted hidepid={setting}, which left out processes with about {threads} threads"
        )),
        (Some(setting), 0, None) => Some(format!(
            "/proc is mounted hidepid={setting}, which may leave out other users' processes"
        )),
        (Some(setting), unreadable, _) => Some(format!(
            "/proc is mounted hidepid={setting} and {unreadable} processes in it could not be read"
        )),
        (None, unreadable, _) => Some(format!("{unreadable} processes in /proc could not be read")),
    }
}
