//! Since when, and what next: how long a waiting thread has not run (from
//! the scheduler, checked against a process whose blocking moment is
//! known), kernel stacks, and the next step.

use crate::support::{diagnose, finding, whystuck, Scenario};
use std::time::{Duration, Instant};

/// The reader blocked on its empty pipe when the scenario got ready; twice,
/// seconds apart, `stuck_for_seconds` says how long ago that was (to within
/// the time whystuck itself takes).
#[test]
fn a_reader_blocked_on_an_empty_pipe_is_stuck_for_as_long_as_it_has_been() {
    let s = Scenario::start("blocked-read-pipe");
    let blocked_at = Instant::now() - Duration::from_millis(10);
    let target = s.num("target");
    for wait in [1500, 2500] {
        std::thread::sleep(Duration::from_millis(wait));
        let p = diagnose(target, "0");
        assert_eq!(p["verdict"], "blocked-on-read", "{p:#}");
        let stuck = p["stuck_for_seconds"].as_f64().unwrap_or_else(|| panic!("{p:#}"));
        let since = blocked_at.elapsed().as_secs_f64();
        assert!((stuck - since).abs() < 1.0, "stuck for {stuck}s, blocked {since}s ago");
        let thread = &p["threads"][0];
        assert_eq!(thread["last_ran_seconds_ago"], p["stuck_for_seconds"], "{thread:#}");
        assert!(p["age_seconds"].as_f64().unwrap() >= stuck, "{p:#}");
    }
    // The human verdict line ends with the duration.
    let run = whystuck(&["--interval", "0", &target.to_string()]);
    let headline = run.stdout.lines().next().unwrap();
    assert!(headline.ends_with('s') && headline.contains(", for "), "{headline}");
}

#[test]
fn a_busy_process_is_not_stuck_for_any_time() {
    let s = Scenario::start("busy");
    let p = diagnose(s.num("target"), "300ms");
    // busy, or running when the CPUs are shared with other tests.
    assert!(p["verdict"] == "busy" || p["verdict"] == "running", "{p:#}");
    assert!(p["stuck_for_seconds"].is_null(), "{p:#}");
}

/// Root reads kernel stacks: a pipe writer's shows the pipe write.
#[test]
fn a_pipe_writers_kernel_stack_shows_the_pipe_write() {
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("WHYSTUCK_REQUIRE_TOOLS").is_none(),
            "kernel stacks need root, and CI runs as root"
        );
        eprintln!("SKIPPED: kernel stacks need root");
        return;
    }
    let s = Scenario::start("pipe-full");
    let p = diagnose(s.num("target"), "0");
    let stack = p["threads"][0]["kernel_stack"]
        .as_array()
        .unwrap_or_else(|| panic!("{p:#}"));
    assert!(
        stack.iter().any(|f| f.as_str().unwrap().contains("pipe_write")),
        "{stack:#?}"
    );
}

#[test]
fn a_popen_deadlock_says_what_to_do_next() {
    let s = Scenario::start("parent-waits-undrained");
    let (parent, child) = (s.num("parent"), s.num("child"));
    let p = diagnose(parent, "300ms");
    let next = finding(&p, "deadlock")["next_step"]
        .as_str()
        .unwrap_or_else(|| panic!("{p:#}"))
        .to_string();
    assert!(next.contains("communicate()"), "{next}");
    assert!(next.ends_with(&format!("kill {child}")), "{next}");
    let run = whystuck(&["--interval", "300ms", &parent.to_string()]);
    assert_eq!(
        run.stdout.lines().nth(1),
        Some(format!("  next: {next}").as_str()),
        "{}",
        run.stdout
    );
}
