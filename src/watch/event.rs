//! What `watch` prints: one event per verdict change, repeated warning, or
//! end, in a stable schema (the NDJSON line is this struct serialised).

use crate::classify::{Severity, Verdict};
use crate::describe;
use crate::report::ProcessReport;
use crate::text::TargetString;
use serde::Serialize;
use std::time::{Duration, SystemTime};

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct Event {
    pub timestamp: String,
    pub host: Option<String>,
    /// `change` (a new verdict), `still` (the same warning, fresh evidence)
    /// or `ended` (the process is gone).
    pub event: &'static str,
    pub pid: i32,
    pub comm: String,
    pub verdict: Verdict,
    pub severity: Severity,
    pub summary: String,
    pub previous_verdict: Option<Verdict>,
    /// Seconds since its pulse (or a descendant's) last moved.
    pub still_for_seconds: u64,
    pub evidence: Vec<String>,
    pub cmdline: Option<Vec<TargetString>>,
}

/// How a watched process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Reaped after exiting with this status (seen as a zombie first).
    Exited(i32),
    /// Reaped after being killed by this signal.
    Killed(i32),
    /// Still a zombie its parent has not reaped, with its wait status.
    Unreaped(Option<i32>),
    /// Gone before watch saw how: its parent reaped it between two looks.
    Unknown,
}

impl Ending {
    /// From a zombie's wait status (`exit_code` of its stat), once reaped.
    pub fn reaped(status: Option<i32>) -> Ending {
        match status {
            Some(status) if status & 0x7f == 0 => Ending::Exited((status >> 8) & 0xff),
            Some(status) => Ending::Killed(status & 0x7f),
            None => Ending::Unknown,
        }
    }

    /// A clean exit is fine; a failure or a kill is worth a look; a zombie
    /// nobody reaps is stuck; not knowing is said plainly.
    pub fn severity(self) -> Severity {
        match self {
            Ending::Exited(0) => Severity::Ok,
            Ending::Exited(_) | Ending::Killed(_) => Severity::Warn,
            Ending::Unreaped(_) => Severity::Critical,
            Ending::Unknown => Severity::Info,
        }
    }
}

/// What a fresh diagnosis means for the lines already printed.
pub enum Judgement {
    /// A new verdict, and the one before.
    Change(Option<Verdict>),
    /// The same warning, due to be repeated.
    Still,
}

/// A diagnosis as watch reports it: stalled when nothing in the family
/// moved for long enough.
pub struct Watched<'a> {
    pub process: &'a ProcessReport,
    pub comm: &'a str,
    pub still_for: Duration,
    pub descendants: usize,
    pub verdict: Verdict,
    pub severity: Severity,
}

impl Event {
    pub fn of(judgement: Judgement, watched: &Watched, host: Option<String>) -> Event {
        let process = watched.process;
        let (event, previous_verdict) = match judgement {
            Judgement::Change(previous) => ("change", previous),
            Judgement::Still => ("still", None),
        };
        let summary = match watched.verdict {
            Verdict::Stalled => describe::stalled(
                watched.still_for,
                watched.descendants,
                process.verdict,
                &process.summary,
            ),
            _ => process.summary.clone(),
        };
        Event {
            timestamp: timestamp(),
            host,
            event,
            pid: process.pid,
            comm: watched.comm.to_string(),
            verdict: watched.verdict,
            severity: watched.severity,
            summary,
            previous_verdict,
            still_for_seconds: watched.still_for.as_secs(),
            evidence: process.findings.first().map(|f| f.evidence.clone()).unwrap_or_default(),
            cmdline: process.detail.as_ref().and_then(|d| d.cmdline.clone()),
        }
    }

    /// The process is gone: how it ended, and what it was when last seen.
    pub fn ended(
        pid: i32,
        comm: &str,
        how: Ending,
        last: Option<Verdict>,
        still_for: Duration,
        host: Option<String>,
    ) -> Event {
        Event {
            timestamp: timestamp(),
            host,
            event: "ended",
            pid,
            comm: comm.to_string(),
            verdict: Verdict::Dead,
            severity: how.severity(),
            summary: describe::ended(how, last),
            previous_verdict: last,
            still_for_seconds: still_for.as_secs(),
            evidence: Vec::new(),
            cmdline: None,
        }
    }
}

fn timestamp() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
