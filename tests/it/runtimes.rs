//! The runtimes agent CLIs really run on (issue: "Real runtimes"): Node's
//! non-blocking pipes, timed and untimed waits, a JVM, an interactive shell
//! under a pty, and scans that agree with naming the pid and do not cry wolf
//! under churn. Real processes from tests/hangs/hang.py; verdict, severity,
//! exit code and the named peer asserted.

use crate::support::{diagnose, finding, whystuck, Scenario};
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The process object for `pid` in a report.
fn process_in(report: &Value, pid: i64) -> &Value {
    report["processes"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["pid"] == pid))
        .unwrap_or_else(|| panic!("pid {pid} not in the report: {report:#}"))
}

/// The pids and fds a finding names as the other end.
fn peers(finding: &Value) -> Vec<(i64, i64)> {
    finding["peers"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| (p["pid"].as_i64().unwrap(), p["fd"].as_i64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// Processes that are killed, with everything they started, when dropped.
struct Group(Vec<Child>);

impl Group {
    fn spawn(&mut self, args: &[&str]) -> u32 {
        let child = Command::new(args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let pid = child.id();
        self.0.push(child);
        pid
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // SAFETY: signalling a process group this test created.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
    }
}

#[test]
fn a_node_child_whose_stdout_nobody_reads_is_a_deadlock_with_its_waiting_parent() {
    let Some(s) = Scenario::try_start("node-parent-waits-undrained") else {
        return;
    };
    let (parent, child) = (s.num("parent"), s.num("child"));
    // Named alone, either pid finds the whole cycle.
    for (named, cycle) in [(child, [child, parent]), (parent, [parent, child])] {
        let run = whystuck(&["--json", "--interval", "300ms", &named.to_string()]);
        assert_eq!(run.code, 1, "critical fails the default --fail-on warn: {}", run.stderr);
        let p = process_in(&run.json(), named).clone();
        assert_eq!(
            (p["verdict"].as_str(), p["severity"].as_str()),
            (Some("deadlock"), Some("critical")),
            "{p:#}"
        );
        assert_eq!(finding(&p, "deadlock")["cycle"], serde_json::json!(cycle));
    }
    // The child's own finding: its write to fd 1 is pending in epoll, the
    // pipe full, read by the parent's fd.
    let c = diagnose(child, "300ms");
    let full = finding(&c, "pipe-full");
    assert_eq!(full["severity"], "critical");
    assert_eq!(full["fd"], 1);
    assert_eq!(peers(full).first().map(|p| p.0), Some(parent), "{full:#}");
    let summary = full["summary"].as_str().unwrap();
    assert!(summary.contains("65536/65536 bytes buffered"), "{summary}");
    assert!(summary.contains("non-blocking write"), "{summary}");
    // The loop's own plumbing (its signal self-pipe, its eventfd) is folded
    // into a count in the line a person reads; the evidence lists it all.
    let idle = finding(&c, "idle-in-epoll");
    let line = idle["summary"].as_str().unwrap();
    assert!(
        line.contains("of its own wakeup fds") && !line.contains("itself"),
        "{line}"
    );
    assert!(idle["evidence"].to_string().contains("written by itself"), "{idle:#}");
    // And with --tree from the parent.
    let run = whystuck(&["--json", "--tree", "--interval", "300ms", &parent.to_string()]);
    let report = run.json();
    assert_eq!(process_in(&report, child)["verdict"], "deadlock");
    assert_eq!(process_in(&report, parent)["verdict"], "deadlock");
}

#[test]
fn a_node_parent_writing_into_a_child_that_never_reads_is_pipe_full_naming_the_child() {
    let Some(s) = Scenario::try_start("node-writes-child-stdin") else {
        return;
    };
    let (parent, child) = (s.num("parent"), s.num("child"));
    let p = diagnose(parent, "300ms");
    assert_eq!(
        (p["verdict"].as_str(), p["severity"].as_str()),
        (Some("pipe-full"), Some("critical")),
        "{p:#}"
    );
    let full = finding(&p, "pipe-full");
    // Node's stdio "pipes" to a child are unix socketpairs: the child holds
    // the other end as its stdin.
    assert_eq!(peers(full), [(child, 0)], "{full:#}");
    assert!(
        full["summary"].as_str().unwrap().contains("unix stream socket"),
        "{full:#}"
    );
    // The child only sleeps (a timed sleep): not a deadlock.
    assert_eq!(diagnose(child, "300ms")["verdict"], "sleeping");
}

#[test]
fn a_futex_wait_with_a_timeout_is_sleeping_and_passes_cron() {
    let s = Scenario::start("timed-futex");
    let run = whystuck(&["--json", "--interval", "300ms", &s.num("target").to_string()]);
    assert_eq!(run.code, 0, "info does not fail --fail-on warn: {}", run.stdout);
    let p = process_in(&run.json(), s.num("target")).clone();
    assert_eq!(
        (p["verdict"].as_str(), p["severity"].as_str()),
        (Some("sleeping"), Some("info")),
        "{p:#}"
    );
    assert!(p["summary"].as_str().unwrap().contains("with a timeout"), "{p:#}");
}

#[test]
fn a_jvm_waiting_untimed_in_object_wait_stays_futex_blocked() {
    let Some(s) = Scenario::try_start("jvm-idle") else {
        return;
    };
    let run = whystuck(&["--json", "--interval", "300ms", &s.num("target").to_string()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let p = process_in(&run.json(), s.num("target")).clone();
    assert_eq!(
        (p["verdict"].as_str(), p["severity"].as_str()),
        (Some("futex-blocked"), Some("warn")),
        "{p:#}"
    );
}

#[test]
fn an_interactive_shell_waits_for_its_foreground_job_not_a_stopped_background_one() {
    let Some(s) = Scenario::try_start("interactive-shell-stopped-job") else {
        return;
    };
    let (shell, cat, sleep) = (s.num("shell"), s.num("cat"), s.num("sleep"));
    let p = diagnose(shell, "300ms");
    assert_eq!(
        (p["verdict"].as_str(), p["severity"].as_str()),
        (Some("waiting-on-child"), Some("info")),
        "{p:#}"
    );
    let summary = p["summary"].as_str().unwrap();
    assert!(summary.contains(&format!("pid {sleep} (sleep)")), "{summary}");
    let stopped = finding(&p, "stopped");
    assert_eq!(stopped["severity"], "info");
    assert!(
        stopped["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {cat} (cat)")),
        "{stopped:#}"
    );
}

/// A scan (`--all`, past the 32 processes that make a selection large, so
/// fds are read lazily) says what naming the pid says, field by field: with
/// two samples, and with one (where the first sample takes the stat the
/// scan read).
#[test]
fn a_scan_reaches_the_same_verdicts_as_naming_the_pid() {
    let Some(s) = Scenario::try_start("node-parent-waits-undrained") else {
        return;
    };
    let mut crowd = Group(Vec::new());
    for _ in 0..40 {
        crowd.spawn(&["sleep", "300"]);
    }
    for interval in ["300ms", "0"] {
        scan_agrees_with_naming(&[s.num("parent"), s.num("child")], interval);
    }
}

fn scan_agrees_with_naming(pids: &[i64], interval: &str) {
    let run = whystuck(&["--all", "--json", "--interval", interval, "--fail-on", "never"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let scan = run.json();
    for &pid in pids {
        let named = diagnose(pid, interval);
        let scanned = process_in(&scan, pid);
        for key in ["verdict", "severity", "summary"] {
            assert_eq!(scanned[key], named[key], "pid {pid} {key}, --interval {interval}");
        }
        let kinds = |p: &Value| -> Vec<Value> {
            p["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["kind"].clone())
                .collect()
        };
        assert_eq!(kinds(scanned), kinds(&named), "pid {pid}");
        assert!(
            !scanned["summary"].as_str().unwrap().contains("(closed)"),
            "{scanned:#}"
        );
    }
}

/// Short-lived commands come and go while a scan reads them: none of them
/// may be reported dead (only a zombie is), and they are counted.
#[test]
fn a_scan_under_process_churn_reports_no_dead_process_but_zombies() {
    let mut churn = Group(Vec::new());
    churn.spawn(&[
        "sh",
        "-c",
        "while :; do for i in 1 2 3 4 5 6 7 8; do /bin/true & done; wait; done",
    ]);
    // Six scans at least, up to 20 until one has seen a command vanish.
    let mut vanished = 0;
    for scan in 0..20 {
        if scan >= 6 && vanished > 0 {
            break;
        }
        let run = whystuck(&["--all", "--json", "--interval", "200ms", "--fail-on", "never"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let report = run.json();
        for p in report["processes"].as_array().unwrap() {
            if p["verdict"] == "dead" {
                assert_eq!(p["state"], "Z", "only a zombie is dead in a scan: {p:#}");
            }
        }
        vanished += report["visibility"]["vanished"]
            .as_u64()
            .expect("a scan counts what vanished");
    }
    assert!(vanished > 0, "the churn was seen vanishing at least once");
}

#[test]
fn watch_says_how_a_process_ended() {
    use std::io::{BufRead, BufReader};
    // Children of this test: it reaps them itself, after watch has seen
    // them exit (as zombies), as a supervisor would.
    let mut clean = Command::new("sh").args(["-c", "sleep 1; exit 0"]).spawn().unwrap();
    let mut killed = Command::new("sleep").arg("300").spawn().unwrap();
    let (clean_pid, killed_pid) = (clean.id(), killed.id());
    let mut watch = Command::new(env!("CARGO_BIN_EXE_whystuck"))
        .args(["watch", "--every", "200ms", "--format", "ndjson"])
        .args([clean_pid.to_string(), killed_pid.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1800));
    killed.kill().unwrap(); // SIGKILL
    std::thread::sleep(Duration::from_millis(600));
    clean.wait().unwrap();
    killed.wait().unwrap();
    let lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let events: Vec<Value> = lines.map(|l| serde_json::from_str(&l.unwrap()).unwrap()).collect();
    assert!(watch.wait().unwrap().success());
    let ended = |pid: u32| {
        events
            .iter()
            .find(|e| e["event"] == "ended" && e["pid"] == pid)
            .unwrap_or_else(|| panic!("no ended event for {pid}: {events:#?}"))
    };
    let clean = ended(clean_pid);
    assert_eq!(clean["severity"], "ok", "{clean:#}");
    assert!(
        clean["summary"].as_str().unwrap().starts_with("exited with status 0"),
        "{clean:#}"
    );
    let killed = ended(killed_pid);
    assert_eq!(killed["severity"], "warn", "{killed:#}");
    assert!(
        killed["summary"].as_str().unwrap().starts_with("killed by SIGKILL"),
        "{killed:#}"
    );
}

/// A parent that polls for its child's exit (`Popen.wait(timeout=...)`)
/// and never reads the pipe the child filled is not "sleeping": it is the
/// one not draining, and the child's next step says so.
#[test]
fn a_polling_parent_that_never_reads_its_childs_full_pipe_is_named() {
    let s = Scenario::start("parent-polls-undrained");
    let (parent, child) = (s.num("parent"), s.num("child"));
    let p = diagnose(parent, "300ms");
    assert_eq!(
        (p["verdict"].as_str(), p["severity"].as_str()),
        (Some("pipe-full"), Some("critical")),
        "{p:#}"
    );
    let summary = p["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(&format!("its child pid {child} ")) && summary.ends_with("it is not reading it"),
        "{summary}"
    );
    let c = diagnose(child, "300ms");
    let next = finding(&c, "pipe-full")["next_step"].as_str().unwrap().to_string();
    assert!(
        next.contains("never reads fd") && next.contains("communicate()"),
        "{next}"
    );
}

/// Seed 002's shape from the child's side: a Node child waiting in epoll
/// for the rest of a line its parent will never send, while the parent
/// blocks reading its reply, is a deadlock named from either pid.
#[test]
fn a_node_child_awaiting_input_from_a_parent_awaiting_its_reply_is_a_deadlock() {
    let Some(s) = Scenario::try_start("node-child-awaits-input") else {
        return;
    };
    let (parent, child) = (s.num("parent"), s.num("child"));
    for (named, cycle) in [(child, [child, parent]), (parent, [parent, child])] {
        let p = diagnose(named, "300ms");
        assert_eq!(p["verdict"], "deadlock", "{p:#}");
        assert_eq!(finding(&p, "deadlock")["cycle"], serde_json::json!(cycle));
    }
}

/// An event loop's non-blocking write into a TCP connection whose peer
/// never reads: waiting in epoll for EPOLLOUT with the send buffer past what
/// poll calls writable is pipe-full, naming the process holding the peer.
#[test]
fn a_pending_write_into_a_tcp_peer_that_never_reads_is_pipe_full() {
    let s = Scenario::start("tcp-pending-write");
    let p = diagnose(s.num("target"), "300ms");
    assert_eq!(
        (p["verdict"].as_str(), p["severity"].as_str()),
        (Some("pipe-full"), Some("critical")),
        "{p:#}"
    );
    let full = finding(&p, "pipe-full");
    assert_eq!(full["fd"], s.num("fd"));
    assert_eq!(peers(full).first().map(|p| p.0), Some(s.num("reader")), "{full:#}");
    assert!(full["summary"].as_str().unwrap().contains("TCP 127.0.0.1:"), "{full:#}");
}
