//! whystuck never hangs and never harms: a process stuck on a FUSE mount
//! whose server never answers, reads that block in the kernel, and the
//! guarantee that a target's pipes behave as if whystuck were not there.

mod support;

use std::time::{Duration, Instant};
use support::{stat_line, whystuck, FakeProc, Scenario};

/// A victim with an fd on a FUSE file system whose server stopped
/// answering, one thread stuck in D on it: readlink and fdinfo stay fast
/// (whystuck never stats or opens the fd's target), so the diagnosis is
/// whole and quick.
#[test]
fn a_process_stuck_on_a_dead_fuse_mount_is_diagnosed_quickly() {
    let Some(s) = Scenario::try_start("fuse-stuck") else {
        return;
    };
    let started = Instant::now();
    let run = whystuck(&[
        "--json",
        "--timeout",
        "3s",
        "--interval",
        "300ms",
        &s.num("target").to_string(),
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
    let p = &run.json()["processes"][0];
    assert_eq!(p["verdict"], "disk-wait", "{p:#}");
    let stuck = p["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tid"] == s.num("stuck_tid"))
        .unwrap();
    assert_eq!(stuck["state"], "D");
    assert_eq!(stuck["wchan"], "request_wait_answer");
    let fd = p["fds"]["open"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fd"] == s.num("fuse_fd"))
        .unwrap();
    let mountpoint = s.info["mountpoint"].as_str().unwrap();
    assert_eq!(
        fd["target"],
        format!("{mountpoint}/stuck"),
        "the link is read, never followed"
    );
    assert!(p["summary"].as_str().unwrap().contains("FUSE"), "{p:#}");
}

/// A read that blocks in the kernel (here: a cmdline whose path leads into
/// the dead FUSE mount) runs in the read helper process, which is given up
/// after its deadline: the run still ends in time and says what it could
/// not read.
#[test]
fn a_read_that_blocks_in_the_kernel_is_given_up_and_reported() {
    let Some(s) = Scenario::try_start("fuse-stuck") else {
        return;
    };
    let fake = FakeProc::new();
    fake.process(
        42,
        &stat_line(42, "victim", 'S', 1, 0),
        "230 0x1 0x0 0x0 0x0 0x0 0x0 0x7ff 0x7ff\n",
        "hrtimer_nanosleep\n",
    );
    let cmdline = fake.path().join("42/cmdline");
    std::fs::remove_file(&cmdline).unwrap();
    let mountpoint = s.info["mountpoint"].as_str().unwrap();
    std::os::unix::fs::symlink(format!("{mountpoint}/stuck"), &cmdline).unwrap();
    let started = Instant::now();
    let run = whystuck(&[
        "--proc-root",
        fake.path().to_str().unwrap(),
        "--json",
        "-i",
        "0",
        "--timeout",
        "5s",
        "42",
    ]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let p = &run.json()["processes"][0];
    assert_eq!(p["comm"], "victim", "everything else is read: {p:#}");
    assert!(p["cmdline"].is_null());
    let unavailable = p["unavailable"].as_array().unwrap();
    let entry = unavailable
        .iter()
        .find(|u| u["what"] == "cmdline")
        .unwrap_or_else(|| panic!("{p:#}"));
    assert_eq!(entry["kind"], "timed_out");
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .contains("memory-map lock is probably held"),
        "{entry}"
    );
}

/// The run's budget: a slow read eats into it, the rest of the run stops
/// at it, and what was not read says so.
#[test]
fn the_whole_run_ends_within_its_timeout() {
    let Some(s) = Scenario::try_start("fuse-stuck") else {
        return;
    };
    let fake = FakeProc::new();
    let mountpoint = s.info["mountpoint"].as_str().unwrap();
    for pid in [42, 43, 44] {
        fake.process(
            pid,
            &stat_line(pid, "victim", 'S', 1, 0),
            "230 0x1 0x0 0x0 0x0 0x0 0x0 0x7ff 0x7ff\n",
            "hrtimer_nanosleep\n",
        );
        let cmdline = fake.path().join(format!("{pid}/cmdline"));
        std::fs::remove_file(&cmdline).unwrap();
        std::os::unix::fs::symlink(format!("{mountpoint}/stuck"), &cmdline).unwrap();
    }
    let started = Instant::now();
    let run = whystuck(&[
        "--proc-root",
        fake.path().to_str().unwrap(),
        "--json",
        "-i",
        "0",
        "--timeout",
        "1s",
        "42",
        "43",
        "44",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    let report = run.json();
    for p in report["processes"].as_array().unwrap() {
        let cmdline = p["unavailable"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["what"] == "cmdline");
        assert_eq!(
            cmdline.map(|u| &u["kind"]),
            Some(&serde_json::json!("timed_out")),
            "{p:#}"
        );
    }
}
