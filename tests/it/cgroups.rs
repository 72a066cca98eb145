//! Real cgroups (root only: `tests/hangs/cgroups.py` makes its own, and
//! removes them): a frozen sleep, a busy loop at 5% of a CPU and the same
//! loop with no quota, a memory cgroup out of memory. Whichever freezer and
//! cpu controller the host mounts is used; the tests for one hierarchy in
//! particular run where it is mounted, and say so where it is not.

use crate::support::{diagnose, evidence, Scenario};
use serde_json::Value;

/// Whether this mount namespace has a cgroup hierarchy of `version` (with
/// `controller`, for v1; for v2, enabled for the root's children).
fn mounted(version: u8, controller: &str) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo.lines().any(|line| {
        let Some((left, right)) = line.split_once(" - ") else {
            return false;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let rest: Vec<&str> = right.split(' ').collect();
        match (version, rest.first()) {
            (1, Some(&"cgroup")) => rest.get(2).is_some_and(|o| o.split(',').any(|c| c == controller)),
            (2, Some(&"cgroup2")) if controller.is_empty() => true,
            (2, Some(&"cgroup2")) => fields.get(4).is_some_and(|point| {
                std::fs::read_to_string(format!("{point}/cgroup.subtree_control"))
                    .is_ok_and(|c| c.split_whitespace().any(|c| c == controller))
            }),
            _ => false,
        }
    })
}

/// `scenario` where its hierarchy is mounted; where it is not, a visible
/// skip (not a failure: hosts mount one version or the other).
fn where_mounted(scenario: &str, version: u8, controller: &str) -> Option<Scenario> {
    if !mounted(version, controller) {
        eprintln!("SKIPPED: {scenario}: no cgroup v{version} {controller} hierarchy here");
        return None;
    }
    Scenario::try_start(scenario)
}

fn kinds(p: &Value) -> Vec<String> {
    p["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

fn assert_frozen(s: &Scenario) {
    let p = diagnose(s.num("target"), "300ms");
    assert_eq!(p["verdict"], "frozen", "{p:#}");
    assert_eq!(p["severity"], "warn");
    let cgroup = s.info["cgroup"].as_str().unwrap();
    let summary = p["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(&format!("frozen: its cgroup {cgroup} is ")),
        "{summary}"
    );
    assert_eq!(kinds(&p), ["frozen"], "not disk-wait, not running: {p:#}");
    let dir = s.info["dir"].as_str().unwrap();
    let thaw = match s.num("version") {
        1 => format!("echo THAWED > {dir}/freezer.state"),
        _ => format!("echo 0 > {dir}/cgroup.freeze"),
    };
    let next = p["findings"][0]["next_step"].as_str().unwrap();
    assert!(next.contains(&thaw), "{next}");
    assert_eq!(p["cgroup"]["freezer"]["state"], "frozen");
    assert_eq!(p["cgroup"]["freezer"]["path"], cgroup);
    assert!(p["container"].is_null());
}

#[test]
fn a_frozen_sleep_is_frozen_and_names_its_cgroup() {
    let Some(s) = Scenario::try_start("frozen") else { return };
    assert_frozen(&s);
}

#[test]
fn frozen_by_the_v1_freezer() {
    if let Some(s) = where_mounted("frozen-v1", 1, "freezer") {
        assert_frozen(&s);
    }
}

#[test]
fn frozen_by_the_v2_freezer() {
    if let Some(s) = where_mounted("frozen-v2", 2, "") {
        assert_frozen(&s);
        let p = diagnose(s.num("target"), "0");
        // Linux 6.17+ says for how long.
        if !p["cgroup"]["freezer"]["frozen_seconds"].is_null() {
            assert!(evidence(&p).contains("frozen_usec"), "{p:#}");
        }
    }
}

#[test]
fn a_busy_loop_at_five_percent_of_a_cpu_is_throttled() {
    let Some(s) = Scenario::try_start("throttled") else {
        return;
    };
    let p = diagnose(s.num("target"), "1s");
    assert_eq!(p["verdict"], "throttled", "{p:#}");
    assert_eq!(p["severity"], "warn");
    let summary = p["summary"].as_str().unwrap();
    let cgroup = s.info["cgroup"].as_str().unwrap();
    assert!(summary.starts_with("limited to 5% of a CPU ("), "{summary}");
    assert!(
        evidence(&p).contains(&format!(" in {cgroup} (")),
        "the cgroup with the quota: {p:#}"
    );
    let cpu = &p["cgroup"]["cpu"];
    assert_eq!(cpu["quota_us"], 5000);
    assert_eq!(cpu["period_us"], 100_000);
    let (periods, throttled) = (
        cpu["periods_delta"].as_u64().unwrap(),
        cpu["throttled_delta"].as_u64().unwrap(),
    );
    assert!(throttled * 2 > periods && periods >= 2, "{cpu}");
    assert!(p["cpu"]["percent"].as_f64().unwrap() < 20.0, "{}", p["cpu"]);
}

#[test]
fn the_same_loop_without_a_quota_is_not_throttled() {
    let Some(s) = Scenario::try_start("unthrottled") else {
        return;
    };
    let p = diagnose(s.num("target"), "1s");
    assert!(!kinds(&p).contains(&"throttled".to_string()), "{p:#}");
    assert!(matches!(p["verdict"].as_str(), Some("busy" | "running")), "{p:#}");
    assert!(p["cgroup"]["cpu"]["quota_us"].is_null(), "{}", p["cgroup"]);
}

#[test]
fn a_v1_memory_cgroup_out_of_memory_is_memory_pressure() {
    let Some(s) = where_mounted("memcg-oom", 1, "memory") else {
        return;
    };
    let p = diagnose(s.num("target"), "300ms");
    assert_eq!(p["verdict"], "memory-pressure", "{p:#}");
    let summary = p["summary"].as_str().unwrap();
    assert!(summary.contains("in mem_cgroup_oom_synchronize"), "{summary}");
    assert!(summary.contains("the cgroup is out of memory (under_oom)"), "{summary}");
    let memory = &p["cgroup"]["memory"];
    assert_eq!(memory["under_oom"], true);
    assert_eq!(memory["max_bytes"], 32 << 20);
    assert!(!kinds(&p).contains(&"disk-wait".to_string()), "{p:#}");
}

#[test]
fn a_loop_above_memory_high_is_memory_pressure() {
    let Some(s) = where_mounted("memory-high", 2, "memory") else {
        return;
    };
    let p = diagnose(s.num("target"), "300ms");
    assert_eq!(p["verdict"], "memory-pressure", "{p:#}");
    assert!(p["summary"].as_str().unwrap().contains("memory.high"), "{p:#}");
}
