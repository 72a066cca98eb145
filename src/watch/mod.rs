//! `whystuck watch`: keep diagnosing while a stall unfolds.
//!
//! Every tick reads each watched process's pulse (CPU time, syscalls, I/O,
//! times scheduled; its descendants' too), which costs three small reads per
//! process. A full diagnosis runs only when something changed (a state
//! letter, moving vs still), when a repeated warning is due, or every 30
//! ticks, so watching a hundred processes every second stays cheap.
//!
//! Liveness comes from progress, not from output: a process whose pulse and
//! its descendants' pulses have not moved for `--stall-after` is `stalled`
//! (critical), whatever it is parked in; one waiting on a working child is
//! not. A line is printed when a verdict changes; while a process stays at
//! warn or worse, the warning is repeated with fresh evidence at a doubling
//! interval. Watch ends when every watched process is gone, with a line
//! saying how each ended.

pub mod event;

use crate::classify::graph::related_pids;
use crate::classify::{stall, Severity, Verdict};
use crate::cli::Watch;
use crate::collect::helper::HelperConfig;
use crate::collect::pulse::PulseReader;
use crate::collect::{self, Request};
use crate::render::{self, Style};
use crate::report;
use crate::snapshot::{ProcessRecord, Pulse, Role, Snapshot};
use event::{Ending, Event, Judgement, Watched};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// A full diagnosis at least this often (in ticks), even when nothing moved.
const REFRESH_TICKS: u32 = 30;
/// The first repeat of a standing warning comes after this many ticks; each
/// next one after twice as long, up to an hour.
const FIRST_REPEAT_TICKS: u32 = 6;
const MAX_REPEAT_GAP: Duration = Duration::from_secs(3600);
/// A process still a zombie this long after watch first saw it exited is
/// reported as not reaped by its parent.
const ZOMBIE_GRACE: Duration = Duration::from_secs(10);
/// The budget of one diagnosis within a tick.
const RUN_TIMEOUT: Duration = Duration::from_secs(10);

/// The interval of a process's first diagnosis (at most `--every`): the
/// default of `whystuck PID`.
const FIRST_LOOK: Duration = Duration::from_secs(1);

fn helper_config(watch: &Watch) -> HelperConfig {
    HelperConfig::new(watch.selection.proc_root.clone())
}

struct Shown {
    verdict: Verdict,
    next_repeat: Option<Instant>,
    repeat_gap: Duration,
}

struct Tracked {
    comm: String,
    /// The process and its descendants as of the last diagnosis.
    family: Vec<i32>,
    pulses: HashMap<i32, Pulse>,
    last_moved: Instant,
    last_state: char,
    moving: bool,
    /// It started or stopped moving at the last tick: the diagnosis then
    /// measured a window that straddled the change, so the next tick
    /// diagnoses again over a window of one kind.
    settling: bool,
    shown: Option<Shown>,
    ticks_since_full: u32,
    /// When it was first seen a zombie, and its wait status then.
    zombie: Option<(Instant, Option<i32>)>,
}

impl Tracked {
    /// Decide what to print for a fresh diagnosis, and remember it.
    fn judge(&mut self, verdict: Verdict, severity: Severity, watch: &Watch, now: Instant) -> Option<Judgement> {
        let first_gap = watch.every * FIRST_REPEAT_TICKS;
        match &mut self.shown {
            Some(shown) if shown.verdict == verdict => {
                let due = shown.next_repeat.is_some_and(|at| now >= at);
                if !due {
                    return None;
                }
                shown.repeat_gap = (shown.repeat_gap * 2).min(MAX_REPEAT_GAP);
                shown.next_repeat = Some(now + shown.repeat_gap);
                Some(Judgement::Still)
            }
            shown => {
                let previous = shown.as_ref().map(|s| s.verdict);
                *shown = Some(Shown {
                    verdict,
                    next_repeat: (severity >= Severity::Warn).then_some(now + first_gap),
                    repeat_gap: first_gap,
                });
                Some(Judgement::Change(previous))
            }
        }
    }

    fn new(pid: i32, now: Instant) -> Tracked {
        Tracked {
            comm: String::new(),
            family: vec![pid],
            pulses: HashMap::new(),
            last_moved: now,
            last_state: '?',
            moving: false,
            settling: false,
            shown: None,
            ticks_since_full: 0,
            zombie: None,
        }
    }
}

pub fn run(watch: &Watch, out: &mut dyn Write) -> anyhow::Result<()> {
    let pids = crate::selection::resolve(&watch.selection, &helper_config(watch), Instant::now() + RUN_TIMEOUT)?.pids;
    let mut pulse = PulseReader::new(&watch.selection.proc_root)?;
    let start = Instant::now();
    let mut tracked: BTreeMap<i32, Tracked> = pids.iter().map(|&pid| (pid, Tracked::new(pid, start))).collect();
    let style = Style {
        color: watch.color.enabled(std::io::IsTerminal::is_terminal(&io::stdout())),
        ..Style::default()
    };
    // The last sample of every process, and when it was taken: a diagnosis
    // pairs it with a fresh one, so rates cover the time since.
    let mut last_records: HashMap<i32, (ProcessRecord, u64)> = HashMap::new();
    let mut host_name: Option<String> = None;
    loop {
        let tick = Instant::now();
        // When the last samples of this tick were taken.
        let mut sampled = tick;
        let mut due = Vec::new();
        let mut ended = Vec::new();
        for (&pid, t) in tracked.iter_mut() {
            let Some(own) = pulse.read(pid) else {
                // Reaped: how it ended is known if it was seen a zombie.
                ended.push((pid, Ending::reaped(t.zombie.and_then(|(_, status)| status))));
                continue;
            };
            if matches!(own.state, 'Z' | 'X') {
                // A zombie is not diagnosed: it ends when its parent reaps
                // it (a supervisor may take a moment), or is reported
                // unreaped when it is still one after ZOMBIE_GRACE.
                let (since, status) = *t.zombie.get_or_insert((tick, own.exit_code));
                if own.ppid == Some(std::os::unix::process::parent_id() as i32) {
                    // Our own caller's child (a supervisor iterating over
                    // this watch): it reaps once we report, so report now.
                    ended.push((pid, Ending::reaped(status)));
                } else if tick.duration_since(since) >= ZOMBIE_GRACE.max(watch.every) {
                    ended.push((pid, Ending::Unreaped(status)));
                }
                continue;
            }
            let mut moved = false;
            for member in t.family.clone() {
                let now = if member == pid {
                    Some(own.clone())
                } else {
                    pulse.read(member)
                };
                match (now, t.pulses.get(&member)) {
                    (Some(now), Some(before)) => {
                        moved |= stall::moved(before, &now);
                        t.pulses.insert(member, now);
                    }
                    (Some(now), None) => {
                        t.pulses.insert(member, now);
                    }
                    (None, _) => {
                        moved = true; // a descendant exited: that is progress
                        t.pulses.remove(&member);
                        pulse.forget(member);
                    }
                }
            }
            if moved {
                t.last_moved = tick;
            }
            t.ticks_since_full += 1;
            let stalled_now = tick.duration_since(t.last_moved) >= watch.stall_after;
            let was_stalled = t.shown.as_ref().is_some_and(|s| s.verdict == Verdict::Stalled);
            let repeat_due = t
                .shown
                .as_ref()
                .and_then(|s| s.next_repeat)
                .is_some_and(|at| tick >= at);
            let changed = moved != t.moving;
            if t.shown.is_none()
                || own.state != t.last_state
                || changed
                || t.settling
                || stalled_now != was_stalled
                || repeat_due
                || t.ticks_since_full >= REFRESH_TICKS
            {
                due.push(pid);
            }
            t.settling = changed;
            t.last_state = own.state;
            t.moving = moved;
        }
        if !due.is_empty() {
            // A process seen for the first time is diagnosed as `whystuck
            // PID` would be, from two samples: one alone cannot tell busy
            // from running, and the next tick would report that as a change.
            let first_look = due.iter().any(|pid| !last_records.contains_key(pid));
            let interval = if first_look {
                FIRST_LOOK.min(watch.every)
            } else {
                Duration::ZERO
            };
            let snapshot = diagnose_now(watch, &due, interval)?;
            sampled += interval;
            host_name = snapshot.host.hostname.clone();
            let paired = pair(&snapshot, &mut last_records);
            let mut families: HashMap<i32, Vec<i32>> = due.iter().map(|&pid| (pid, family(&paired, pid))).collect();
            let mut report = report::build(paired);
            if !watch.no_redact {
                report.redact_secrets();
            }
            for &pid in &due {
                let Some(process) = report.processes.iter().find(|p| p.pid == pid) else {
                    continue;
                };
                let Some(t) = tracked.get_mut(&pid) else { continue };
                t.ticks_since_full = 0;
                t.comm = process.comm.as_ref().map(|c| c.escaped()).unwrap_or_default();
                t.family = families.get(&pid).cloned().unwrap_or_default();
                if process.verdict == Verdict::Dead {
                    continue; // it ended since its pulse was read: the next tick says how
                }
                // Parked long before watching began: the scheduler says since
                // when (for a process alone; a family's members may work).
                if let (None, [_], Some(stuck)) = (&t.shown, t.family.as_slice(), process.stuck_for_seconds) {
                    let parked_at = Instant::now().checked_sub(Duration::from_secs_f64(stuck));
                    t.last_moved = parked_at.map_or(t.last_moved, |at| at.min(t.last_moved));
                }
                let (verdict, severity) = stall::judge(
                    t.last_moved.elapsed(),
                    watch.stall_after,
                    process.verdict,
                    process.severity,
                );
                if let Some(judgement) = t.judge(verdict, severity, watch, Instant::now()) {
                    let watched = Watched {
                        process,
                        comm: &t.comm,
                        still_for: t.last_moved.elapsed(),
                        descendants: t.family.len().saturating_sub(1),
                        verdict,
                        severity,
                    };
                    let event = Event::of(judgement, &watched, host_name.clone());
                    render::watch::event(out, watch.format, style, &event)?;
                }
            }
            if watch.selection.tree {
                // Descendants found by this diagnosis are watched in their own right.
                let found: Vec<i32> = families.drain().flat_map(|(_, family)| family).collect();
                for pid in found {
                    tracked.entry(pid).or_insert_with(|| Tracked::new(pid, Instant::now()));
                }
            }
        }
        for (pid, how) in ended {
            if let Some(t) = tracked.remove(&pid) {
                let last = t.shown.as_ref().map(|s| s.verdict);
                let still_for = t.last_moved.elapsed();
                let event = Event::ended(pid, &t.comm, how, last, still_for, host_name.clone());
                render::watch::event(out, watch.format, style, &event)?;
            }
            pulse.forget(pid);
            last_records.remove(&pid);
        }
        if tracked.is_empty() {
            return Ok(());
        }
        std::thread::sleep(watch.every.saturating_sub(sampled.elapsed()));
    }
}

/// A sample of `pids` and their descendants (and whatever they wait on),
/// or two `interval` apart.
fn diagnose_now(watch: &Watch, pids: &[i32], interval: Duration) -> anyhow::Result<Snapshot> {
    let request = Request {
        pids,
        tree: true,
        related: &related_pids,
        prefetched: None,
    };
    let options = collect::Options {
        helper: helper_config(watch),
        interval,
        timeout: RUN_TIMEOUT + interval,
        deep_fds: collect::LAZY_FDS,
        thread_status: true,
        many: watch.selection.all,
        stacks: false,
    };
    let mut snapshot = collect::collect(&request, &options)?;
    // Descendants are watched for their progress; only targets are reported.
    for record in &mut snapshot.processes {
        if record.role == Role::Descendant && !watch.selection.tree {
            record.role = Role::Related;
        }
    }
    Ok(snapshot)
}

/// The fresh snapshot, each record of one sample preceded by the last
/// sample taken of the same process, so the diagnosis measures progress
/// since then.
fn pair(snapshot: &Snapshot, last: &mut HashMap<i32, (ProcessRecord, u64)>) -> Snapshot {
    // When a sample was taken (ms since the epoch).
    let taken_at = |sample: &crate::snapshot::Sample| snapshot.host.captured_at_unix_ms + sample.elapsed_ms;
    let mut paired = snapshot.clone();
    for record in &mut paired.processes {
        let fresh = record.clone();
        if let (Some((before, then_ms)), 1) = (last.get(&record.pid), record.samples.len()) {
            if let (Some(old), Some(new)) = (before.samples.last(), record.samples.last_mut()) {
                let mut old = old.clone();
                old.elapsed_ms = 0;
                new.elapsed_ms = taken_at(new).saturating_sub(*then_ms);
                record.samples.insert(0, old);
            }
        }
        let then_ms = fresh.samples.last().map_or(snapshot.host.captured_at_unix_ms, taken_at);
        last.insert(fresh.pid, (fresh, then_ms));
    }
    paired
}

/// `pid` and every descendant in the snapshot.
fn family(snapshot: &Snapshot, pid: i32) -> Vec<i32> {
    let mut family = vec![pid];
    let mut i = 0;
    while let Some(&member) = family.get(i) {
        let record = snapshot.processes.iter().find(|r| r.pid == member);
        let children = record.and_then(|r| r.samples.last()).and_then(|s| s.children.ok());
        for child in children.into_iter().flatten() {
            if !family.contains(&child.pid) {
                family.push(child.pid);
            }
        }
        i += 1;
    }
    family
}
