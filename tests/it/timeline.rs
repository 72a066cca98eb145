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

/// Whether this run reads kernel stacks (root's); a visible skip
/// otherwise, a failure in CI, which runs as root.
fn reads_kernel_stacks() -> bool {
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("WHYSTUCK_REQUIRE_TOOLS").is_none(),
            "kernel stacks need root, and CI runs as root"
        );
        eprintln!("SKIPPED: kernel stacks need root");
        return false;
    }
    true
}

/// Root reads kernel stacks: a pipe writer's shows the pipe write.
#[test]
fn a_pipe_writers_kernel_stack_shows_the_pipe_write() {
    if !reads_kernel_stacks() {
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

/// Every waiting thread's kernel stack, but past 256 threads only where the
/// syscall and the wchan do not say the wait: a pool of 300 threads parked
/// on a futex has none read, a pool of 8 has all eight.
#[test]
fn a_process_with_many_threads_has_kernel_stacks_only_where_they_decide() {
    if !reads_kernel_stacks() {
        return;
    }
    for (scenario, threads, with_stacks) in [("threads-parked-8", 8, 8), ("threads-parked-300", 300, 0)] {
        let s = Scenario::start(scenario);
        let p = diagnose(s.num("target"), "0");
        let listed = p["threads"].as_array().unwrap_or_else(|| panic!("{p:#}"));
        assert_eq!(listed.len(), threads, "{scenario}");
        let stacks = listed.iter().filter(|t| t["kernel_stack"].is_array()).count();
        assert_eq!(stacks, with_stacks, "{scenario}");
    }
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

/// `--stacks` on a Python ABBA deadlock names both threads' functions
/// (py-spy reads the stacks without stopping the process); without py-spy
/// the run still diagnoses, and says why there are no stacks.
#[test]
fn stacks_name_the_functions_of_a_python_deadlock() {
    let Some(py_spy) = crate::support::tool("py-spy") else {
        return;
    };
    let s = Scenario::start("abba");
    let target = s.num("target").to_string();
    let run = whystuck(&["--json", "--stacks", "--interval", "200ms", &target]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let p = run.json()["processes"][0].take();
    assert_eq!(p["verdict"], "futex-blocked", "{p:#}");
    let tids: Vec<i64> = s.info["tids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    for tid in &tids[1..] {
        let thread = p["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tid"] == *tid)
            .unwrap();
        let stack = thread["python_stack"]
            .as_array()
            .unwrap_or_else(|| panic!("{thread:#}"));
        assert_eq!(stack[0]["function"], "take", "{stack:#?}");
    }
    let human = whystuck(&["--stacks", "--interval", "200ms", &target]).stdout;
    assert!(
        human.contains("python stacks\n") && human.matches(": take (").count() == 2,
        "{human}"
    );

    // py-spy not on PATH: no stacks, the reason listed, the verdict the same.
    let bin = std::path::Path::new(&py_spy).parent().unwrap();
    let path: Vec<_> = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .filter(|d| d != bin)
        .collect();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_whystuck"))
        .args(["--json", "--stacks", "--interval", "200ms", &target])
        .env("PATH", std::env::join_paths(path).unwrap())
        .output()
        .unwrap();
    let p: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let p = &p["processes"][0];
    assert_eq!(p["verdict"], "futex-blocked");
    let why = p["unavailable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["what"] == "python stacks");
    assert!(why.is_some_and(|u| u["kind"] == "not_supported"), "{p:#}");
}
