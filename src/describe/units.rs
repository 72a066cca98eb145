//! Quantities and names with their units: bytes, durations, progress,
//! processes and threads as sentences name them.

use crate::classify::finding::{ProcessRef, ThreadRef};
use crate::classify::progress::Progress;
use crate::snapshot::{PipeFill, Reason};
use crate::text::TargetString;

/// One line: "12% CPU, 4.0 KiB I/O over 1s".
pub fn progress(p: &Progress) -> String {
    let cpu = p
        .cpu_percent
        .map_or("CPU unknown".to_string(), |p| format!("{p:.0}% CPU"));
    let io = p.io_bytes.map(|b| format!(", {} I/O", bytes(b))).unwrap_or_default();
    // Starved: say how much longer it waited for a CPU.
    let waited = p
        .wait_percent
        .filter(|&w| w >= 10.0)
        .map(|w| format!(", {w:.0}% waiting for a CPU"))
        .unwrap_or_default();
    format!("{cpu}{waited}{io} over {}", duration_ms(p.interval_ms))
}

/// "65536/65536 bytes buffered"
pub fn pipe_fill(fill: &PipeFill) -> String {
    format!("{}/{} bytes buffered", fill.buffered_bytes, fill.capacity_bytes)
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// "250ms", "1.0s", "12.5s".
pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// "pid 812 (sleep)", the comm escaped; "pid 812" when it is unknown.
pub fn process(process: &ProcessRef) -> String {
    process_name(process.pid, process.comm.as_ref())
}

pub(super) fn process_name(pid: i32, comm: Option<&TargetString>) -> String {
    match comm {
        Some(comm) => format!("pid {pid} ({})", comm.escaped()),
        None => format!("pid {pid}"),
    }
}

pub(super) fn thread_name(thread: ThreadRef) -> String {
    match thread.main {
        true => "main thread".to_string(),
        false => format!("thread {}", thread.tid),
    }
}

pub(super) fn comm_text(comm: Option<&TargetString>) -> String {
    comm.map(TargetString::escaped).unwrap_or_default()
}

pub(super) fn state_text(state: Option<char>) -> String {
    match state {
        Some(s) => format!("state {s}"),
        None => "state unknown".into(),
    }
}

pub(super) fn reason_text(reason: &Option<Reason>) -> String {
    reason.as_ref().map(|r| r.to_string()).unwrap_or_default()
}

/// A span a person reads at a glance: "850ms", "4.2s", "4m12s", "2h03m",
/// "3d04h".
pub fn elapsed(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=9_999 => format!("{:.1}s", ms as f64 / 1000.0),
        10_000..=59_999 => format!("{s}s"),
        60_000..=3_599_999 => format!("{}m{:02}s", s / 60, s % 60),
        3_600_000..=86_399_999 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_at_a_glance() {
        let cases = [
            (850, "850ms"),
            (4_200, "4.2s"),
            (12_000, "12s"),
            (252_000, "4m12s"),
            (7_380_000, "2h03m"),
            (273_600_000, "3d04h"),
        ];
        for (ms, text) in cases {
            assert_eq!(elapsed(ms), text);
        }
    }
}
