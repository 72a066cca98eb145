//! The report: what whystuck tells a user about each process, built from a
//! snapshot and its diagnosis. `--json` is this structure serialised
//! (schema version [`REPORT_SCHEMA_VERSION`]); the human renderer reads the
//! same structure, so both always say the same thing.
//!
//! Conventions: a fact that could not be read is `null` and listed under
//! `unavailable` with its reason; it is never 0. Target-controlled strings
//! are JSON strings, or `{"text", "hex"}` when they are not valid UTF-8.

use crate::classify::finding::{FdFacts, Peer, StopCause, WaitClaim};
use crate::classify::graph::World;
use crate::classify::view::FdKind;
use crate::classify::{self, Claim, Diagnosis, Finding, Severity, Verdict};
use crate::describe;
use crate::linux::fd::Access;
use crate::snapshot::*;
use crate::text::TargetString;
use serde::Serialize;
use std::collections::BTreeMap;

mod cgroup;
mod detail;
mod sockets;
mod unavailable;
pub use cgroup::*;
pub use detail::*;

/// Bumped when a field is removed or changes meaning; adding fields is not a
/// breaking change.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct Report {
    pub schema_version: u32,
    pub host: HostReport,
    /// Whether descendants were followed (`--tree`).
    pub tree: bool,
    pub processes: Vec<ProcessReport>,
    /// Pipes and sockets that connect two reported processes.
    pub links: Vec<Link>,
    /// Processes whose fd tables could not be searched for the other ends of
    /// pipes and sockets.
    pub unsearchable: Vec<UnsearchableReport>,
    /// What a scan (`--all`, `--name`, `--user`) could not see of the host;
    /// null when the processes were named.
    pub visibility: Option<Visibility>,
    /// The snapshot file a `--from` replay read (`-` for stdin); absent for
    /// a live diagnosis. `host` says when and where it was captured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed_from: Option<String>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct Link {
    /// `pipe`, `unix` or `tcp`.
    pub kind: &'static str,
    pub inode: u64,
    /// The writer for a pipe; for a socket, the lower pid.
    pub from: LinkEnd,
    pub to: LinkEnd,
    pub buffered_bytes: Option<u64>,
    pub capacity_bytes: Option<u64>,
    pub full: Option<bool>,
}

#[derive(Serialize, Debug, PartialEq, schemars::JsonSchema)]
pub struct LinkEnd {
    pub pid: i32,
    pub fd: i32,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct UnsearchableReport {
    pub pid: i32,
    pub comm: Option<TargetString>,
    pub reason: String,
}

#[derive(Serialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct PeerReport {
    pub pid: i32,
    pub fd: i32,
    pub comm: Option<TargetString>,
}

impl From<Peer> for PeerReport {
    fn from(p: Peer) -> Self {
        PeerReport {
            pid: p.pid,
            fd: p.fd,
            comm: p.comm,
        }
    }
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct HostReport {
    pub hostname: Option<String>,
    pub kernel_release: Option<String>,
    pub arch: String,
    pub captured_at_unix_ms: u64,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct ProcessReport {
    pub pid: i32,
    /// `target` (named by the user) or `descendant` (under `--tree`).
    pub role: Role,
    /// When the user named a thread id: that thread (`pid` is its process).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub named_thread: Option<i32>,
    pub ppid: Option<i32>,
    pub comm: Option<TargetString>,
    /// The state letter of `/proc/PID/stat` (R, S, D, T, t, Z...).
    pub state: Option<char>,
    /// Clock ticks after boot; with the pid it identifies the process.
    pub start_time_ticks: Option<u64>,
    pub uid: Option<u32>,
    /// The container (and Kubernetes pod) its cgroups name; `null` when
    /// none does (or they were not read).
    pub container: Option<ContainerReport>,
    pub verdict: Verdict,
    pub severity: Severity,
    pub summary: String,
    pub findings: Vec<FindingReport>,
    pub rss_bytes: Option<u64>,
    /// For a wait: how long the thread that decided the verdict has not
    /// run, in seconds (a lower bound on the wait: a wakeup resets it);
    /// `null` when the process is not waiting (running, busy, gone) or it
    /// could not be read (then listed under `unavailable`).
    pub stuck_for_seconds: Option<f64>,
    /// How long ago the process started; `null` when unknown.
    pub age_seconds: Option<f64>,
    /// Everything else, for a process reported in full: every process in
    /// JSON; in a human overview of many, those at warn or worse. Boxed so
    /// that a one-line row of a large overview stays small.
    #[serde(flatten)]
    pub detail: Option<Box<ProcessDetail>>,
}

/// A finding as the user reads it: the claim and its evidence in words,
/// and, where the finding waits on an fd, that fd and who holds its other
/// end (for alerting and supervisors to act on without parsing prose).
#[derive(Serialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct FindingReport {
    pub kind: Verdict,
    pub severity: Severity,
    pub summary: String,
    pub evidence: Vec<String>,
    /// For a deadlock: the processes of the cycle, in wait-for order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle: Option<Vec<i32>>,
    /// The fd the finding is about (the pipe written, the socket read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    /// Who holds the other end of that fd, as found; for a `lock-wait`,
    /// who holds the lock (the fd each holds it through).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerReport>,
    /// The thread the finding is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<i32>,
    /// One imperative line a person can act on; `null` when there is
    /// nothing to do.
    pub next_step: Option<String>,
}

impl FindingReport {
    /// A finding of process `pid`, in words.
    fn of(finding: Finding, pid: i32) -> Self {
        let (fd, peers) = subject(&finding.claim);
        FindingReport {
            next_step: describe::next_step(&finding, pid),
            thread: finding.tid,
            kind: finding.kind,
            severity: finding.severity,
            summary: describe::summary(&finding.claim),
            evidence: finding.evidence.iter().map(describe::evidence).collect(),
            fd,
            peers: peers.iter().cloned().map(PeerReport::from).collect(),
            cycle: finding.cycle,
        }
    }
}

/// The fd a finding's claim is about, if it is about one, and who holds
/// its other end (for a lock wait: who holds the lock).
fn subject(claim: &Claim) -> (Option<i32>, Vec<Peer>) {
    let of = |f: Option<&FdFacts>| (f.map(|f| f.fd), f.map(|f| f.peers.clone()).unwrap_or_default());
    match claim {
        Claim::BlockedWriting { fd, .. } => of(Some(fd)),
        Claim::Stopped(StopCause::Background(stop)) => (stop.fd, Vec::new()),
        Claim::Waiting { wait, .. } => match wait {
            WaitClaim::Writing(fd) => of(Some(fd)),
            WaitClaim::Reading(fd) | WaitClaim::Accepting(fd) | WaitClaim::Connecting(fd) => of(fd.as_ref()),
            WaitClaim::Lock(lock) => (
                lock.fd.as_ref().map(|f| f.fd),
                lock.holders.iter().map(|h| h.peer.clone()).collect(),
            ),
            WaitClaim::Terminal(t) => (t.fd, Vec::new()),
            WaitClaim::Dns(dns) => (Some(dns.fd), Vec::new()),
            _ => (None, Vec::new()),
        },
        _ => (None, Vec::new()),
    }
}

impl Report {
    /// Replace secrets in every command line (see [`crate::redact`]).
    pub fn redact_secrets(&mut self) {
        for process in &mut self.processes {
            if let Some(cmdline) = process.detail.as_mut().and_then(|d| d.cmdline.as_mut()) {
                crate::redact::redact(cmdline);
            }
        }
    }
}

/// "3 processes: 1 pipe-full [critical], 2 waiting-on-child [info]": what
/// a snapshot holds, as `capture` says when it has written one.
pub fn verdict_counts(snapshot: &Snapshot) -> String {
    let world = World::new(snapshot);
    let diagnoses = classify::diagnose_all(&world);
    let mut counts: BTreeMap<(std::cmp::Reverse<Severity>, Verdict), usize> = BTreeMap::new();
    let mut total = 0;
    for record in snapshot.processes.iter().filter(|r| r.role != Role::Related) {
        let (verdict, severity) = diagnoses
            .get(record.pid)
            .map_or((Verdict::Unknown, Severity::Info), |d| (d.verdict, d.severity));
        *counts.entry((std::cmp::Reverse(severity), verdict)).or_default() += 1;
        total += 1;
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|((severity, verdict), n)| format!("{n} {} [{}]", verdict.name(), severity.0.name()))
        .collect();
    match total {
        1 => format!("1 process: {}", counts.join(", ")),
        n => format!("{n} processes: {}", counts.join(", ")),
    }
}

/// Diagnose every process of a snapshot; report the ones the user asked for.
pub fn build(snapshot: Snapshot) -> Report {
    build_with_detail(snapshot, None)
}

/// Like [`build`], but processes below `detail_from` get only their
/// identity and diagnosis, not their threads, fds and sockets: for an
/// overview of many processes, without holding every detail in memory.
///
/// The snapshot is consumed: the world (a view of every process) is held
/// only to diagnose and to build the detailed reports, and each record is
/// dropped once its one-line row is made, so a large scan's records, views
/// and rows are never all held at once.
///
/// A scan (`--all`, `--name`, `--user`) leaves out the processes that went
/// away while it read them, and counts them (`visibility.vanished`): churn
/// is not a `dead` process. A pid the user named that is gone is `dead`.
pub fn build_with_detail(snapshot: Snapshot, detail_from: Option<Severity>) -> Report {
    let scan = snapshot.visibility.is_some();
    let (mut diagnoses, details, links, vanished) = {
        let world = World::new(&snapshot);
        let diagnoses = classify::diagnose_all(&world);
        let vanished: Vec<i32> = match scan {
            true => snapshot
                .processes
                .iter()
                .filter(|r| r.role != Role::Related && diagnoses.get(r.pid).is_some_and(Diagnosis::gone))
                .map(|r| r.pid)
                .collect(),
            false => Vec::new(),
        };
        let reported = |r: &&ProcessRecord| r.role != Role::Related && !vanished.contains(&r.pid);
        let details: Vec<Option<Box<ProcessDetail>>> = snapshot
            .processes
            .iter()
            .filter(|r| reported(r))
            .map(|record| {
                let diagnosis = diagnoses.get(record.pid);
                let full = detail_from.is_none_or(|from| diagnosis.is_some_and(|d| d.severity >= from));
                full.then(|| detail(&world, &diagnoses, record))
            })
            .collect();
        let reported: Vec<i32> = snapshot.processes.iter().filter(reported).map(|r| r.pid).collect();
        let links = links(&world, &reported);
        (diagnoses, details, links, vanished)
    };
    let reported = |r: &ProcessRecord| r.role != Role::Related && !vanished.contains(&r.pid);
    let Snapshot {
        host,
        tree,
        processes,
        unsearchable,
        visibility,
        ..
    } = snapshot;
    let processes: Vec<ProcessReport> = processes
        .into_iter()
        .filter(reported)
        .zip(details)
        .map(|(record, detail)| row(&host, &record, diagnoses.remove(record.pid), detail))
        .collect();
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        host: HostReport {
            kernel_release: host.kernel_release.ok().cloned(),
            hostname: host.hostname,
            arch: host.arch,
            captured_at_unix_ms: host.captured_at_unix_ms,
        },
        tree,
        processes,
        links,
        unsearchable: unsearchable
            .into_iter()
            .map(|u| UnsearchableReport {
                pid: u.pid,
                comm: u.comm,
                reason: u.reason.detail.into_owned(),
            })
            .collect(),
        visibility: visibility.map(|v| Visibility {
            vanished: vanished.len() as u64,
            ..v
        }),
        replayed_from: None,
    }
}

/// A process's stat and status as its report gives them: from the last
/// sample taken; a process gone from the start is reported from what little
/// its first sample knows.
pub(super) fn identity(record: &ProcessRecord) -> (Option<&Stat>, Option<&Status>) {
    let last = record.last_taken();
    let first = record.samples.first();
    let stat = last.and_then(|s| s.stat.ok()).or(first.and_then(|s| s.stat.ok()));
    (stat, last.and_then(|s| s.status.ok()))
}

/// How long ago a process started, from the host's uptime at capture.
fn age_ms(host: &Host, stat: Option<&Stat>) -> Option<u64> {
    let started_ms = stat?.starttime? * 1000 / host.clock_ticks_per_second.max(1);
    host.uptime_ms?.checked_sub(started_ms)
}

fn row(
    host: &Host,
    record: &ProcessRecord,
    diagnosis: Option<Diagnosis>,
    detail: Option<Box<ProcessDetail>>,
) -> ProcessReport {
    let diagnosis = diagnosis.unwrap_or_else(classify::no_sample);
    let (stat, status) = identity(record);
    ProcessReport {
        pid: record.pid,
        role: record.role,
        named_thread: record.named_thread,
        ppid: stat.and_then(|s| s.ppid),
        comm: stat.map(|s| s.comm.clone()),
        state: stat.map(|s| s.state),
        start_time_ticks: stat.and_then(|s| s.starttime),
        uid: status.and_then(|s| s.uid).map(|u| u[0]),
        container: cgroup::container(record),
        verdict: diagnosis.verdict,
        severity: diagnosis.severity,
        summary: describe::summary(&diagnosis.deciding().claim),
        // Never longer than the process has existed (the two clocks differ
        // by the scheduler's error).
        stuck_for_seconds: diagnosis
            .stuck_for_ms
            .clone()
            .and_then(Result::ok)
            .map(|ms| age_ms(host, stat).map_or(ms, |age| ms.min(age)))
            .map(seconds),
        age_seconds: age_ms(host, stat).map(seconds),
        findings: diagnosis
            .findings
            .into_iter()
            .map(|f| FindingReport::of(f, record.pid))
            .collect(),
        rss_bytes: status.and_then(|s| s.vm_rss_kib).map(|k| k * 1024),
        detail,
    }
}

/// Pipes and sockets between two reported processes, each once (a
/// process's pipes to itself, such as a wakeup self-pipe, are its own
/// business, shown in its fd table). From the classified world, whatever
/// detail the format shows.
fn links(world: &World, reported: &[i32]) -> Vec<Link> {
    let mut reported = reported.to_vec();
    reported.sort_unstable();
    let is_reported = |pid: &i32| reported.binary_search(pid).is_ok();
    let mut links = Vec::new();
    for view in reported.iter().filter_map(|&pid| world.view(pid)) {
        for f in view.fds.iter() {
            let Some(inode) = f.inode else { continue };
            let (kind, full, fill) = match f.kind {
                FdKind::Pipe if f.access() == Some(Access::Write) => ("pipe", view.pipe_full(f), f.pipe_fill()),
                FdKind::Socket => match (view.unix(inode), view.tcp(inode)) {
                    (Some(u), _) => ("unix", view.unix_full(u), None),
                    (None, Some(t)) => ("tcp", view.tcp_full(t), None),
                    (None, None) => continue,
                },
                _ => continue,
            };
            let peers = world.peers(view.pid, f.fd.fd);
            let wanted = |peer: &&Peer| {
                is_reported(&peer.pid)
                    && if kind == "pipe" {
                        peer.pid != view.pid
                    } else {
                        view.pid < peer.pid
                    }
            };
            for peer in peers.iter().filter(wanted) {
                links.push(Link {
                    kind,
                    inode,
                    from: LinkEnd {
                        pid: view.pid,
                        fd: f.fd.fd,
                    },
                    to: LinkEnd {
                        pid: peer.pid,
                        fd: peer.fd,
                    },
                    buffered_bytes: fill.map(|p| p.buffered_bytes),
                    capacity_bytes: fill.map(|p| p.capacity_bytes),
                    full,
                });
            }
        }
    }
    links
}
