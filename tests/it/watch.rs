//! `whystuck watch` on real processes: verdict changes, repeated warnings at
//! a growing interval, stalls judged by progress, and a clean end.

use crate::support::Scenario;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `whystuck watch --format ndjson ARGS`, its events arriving on a channel.
struct Watcher {
    child: Child,
    events: mpsc::Receiver<Value>,
}

impl Watcher {
    fn start(args: &[&str]) -> Watcher {
        let mut child = Command::new(env!("CARGO_BIN_EXE_whystuck"))
            .arg("watch")
            .args(["--format", "ndjson"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
            }
        });
        Watcher { child, events }
    }

    /// Events until one satisfies `until`, or `within` passes.
    fn collect_until(&self, within: Duration, until: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        while let Ok(event) = self
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let done = until(&event);
            seen.push(event);
            if done {
                break;
            }
        }
        seen
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process that sleeps, then burns CPU, then blocks on a pipe nobody
/// writes: each phase is a change; the stuck end repeats and then stalls.
#[test]
fn verdict_changes_repeats_and_stalls() {
    let script = "import os, time\ntime.sleep(1.2)\nend = time.time() + 1.2\nwhile time.time() < end: pass\nr, w = os.pipe()\nos.read(r, 1)\n";
    let mut target = Command::new("python3").args(["-c", script]).spawn().unwrap();
    let pid = target.id().to_string();
    let watcher = Watcher::start(&["--every", "200ms", "--stall-after", "3s", &pid]);
    let events = watcher.collect_until(Duration::from_secs(12), |e| e["verdict"] == "stalled");
    target.kill().unwrap();
    target.wait().unwrap();
    let verdicts: Vec<&str> = events.iter().map(|e| e["verdict"].as_str().unwrap()).collect();
    // In this order (python's own start may show as running or busy first,
    // on a loaded machine): sleeping, busy, then blocked reading a pipe only
    // it could write (a deadlock with itself), then stalled.
    let mut phases = ["sleeping", "busy", "deadlock", "stalled"].into_iter().peekable();
    for verdict in &verdicts {
        if phases.peek() == Some(verdict) {
            phases.next();
        }
    }
    assert_eq!(phases.next(), None, "phases out of order: {verdicts:?}");
    let changes: Vec<&Value> = events.iter().filter(|e| e["event"] == "change").collect();
    for pair in changes.windows(2) {
        assert_eq!(
            pair[1]["previous_verdict"], pair[0]["verdict"],
            "a change names what it changed from"
        );
    }
    // While stuck, the warning is repeated with fresh evidence, not every tick.
    let stuck: Vec<&Value> = events.iter().filter(|e| e["verdict"] == "deadlock").collect();
    assert!(
        stuck.len() >= 2 && stuck.len() <= 4,
        "{} deadlock lines in ~3s at 200ms ticks",
        stuck.len()
    );
    assert_eq!(stuck[1]["event"], "still");
    let stalled = events.last().unwrap();
    assert_eq!(stalled["severity"], "critical");
    assert!(stalled["still_for_seconds"].as_u64().unwrap() >= 3);
    assert!(
        stalled["summary"].as_str().unwrap().starts_with("nothing moved for 3"),
        "{stalled}"
    );
}

/// A parent silent in wait4 while its child works is alive: never stalled.
#[test]
fn waiting_on_a_working_child_is_not_stalled() {
    let s = Scenario::start("wait-child-busy");
    let watcher = Watcher::start(&["--every", "200ms", "--stall-after", "1s", &s.num("parent").to_string()]);
    let events = watcher.collect_until(Duration::from_secs(3), |e| e["verdict"] == "stalled");
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e["verdict"] == "waiting-on-child" && e["severity"] == "ok"),
        "{events:#?}"
    );
}

/// When every watched process is gone, watch says how each ended and exits.
#[test]
fn watch_ends_when_everything_is_gone() {
    let mut short = Command::new("sleep").arg("0.6").spawn().unwrap();
    let mut long = Command::new("sleep").arg("1.2").spawn().unwrap();
    let (a, b) = (short.id(), long.id());
    let reaper = std::thread::spawn(move || {
        short.wait().unwrap();
        long.wait().unwrap();
    });
    let mut watcher = Watcher::start(&["--every", "200ms", &a.to_string(), &b.to_string()]);
    let events = watcher.collect_until(Duration::from_secs(10), |_| false);
    reaper.join().unwrap();
    let status = watcher.child.wait().unwrap();
    assert!(status.success());
    let ended: Vec<i64> = events
        .iter()
        .filter(|e| e["event"] == "ended")
        .map(|e| e["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(ended, [a as i64, b as i64], "{events:#?}");
    let last = events.last().unwrap();
    assert!(
        last["summary"]
            .as_str()
            .unwrap()
            .contains("it was sleeping when last seen"),
        "{last}"
    );
}

/// A process parked since before watching began is stalled at once, its
/// duration from the scheduler, not after another --stall-after of watching.
#[test]
fn a_process_parked_longer_than_stall_after_is_stalled_at_once() {
    let s = Scenario::start("blocked-read-pipe");
    std::thread::sleep(Duration::from_millis(2200));
    let started = Instant::now();
    let target = s.num("target").to_string();
    let w = Watcher::start(&["--every", "200ms", "--stall-after", "2s", &target]);
    let events = w.collect_until(Duration::from_secs(5), |_| true);
    let first = events.first().unwrap_or_else(|| panic!("no event from watch"));
    assert_eq!(first["verdict"], "stalled", "{first:#}");
    assert!(first["still_for_seconds"].as_u64().unwrap() >= 2, "{first:#}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "at once, not after 2s of watching"
    );
}
