//! Every fixture in fixtures/ (captures of real hung processes, and edits
//! of them that stand for other kernels and architectures) must keep its
//! expected verdicts: a classifier change that breaks a kernel we no longer
//! run on fails here.

use crate::support::whystuck;
use serde_json::Value;
use std::path::Path;

fn check_fixture(dir: &Path) -> Vec<String> {
    let snapshot = dir.join("snapshot.json");
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let run = whystuck(&["--from", snapshot.to_str().unwrap(), "--json", "--fail-on", "never"]);
    if run.code != 0 {
        return vec![format!("exit {}: {}", run.code, run.stderr)];
    }
    let report = run.json();
    let mut problems = Vec::new();
    for want in expected["processes"].as_array().unwrap() {
        let pid = &want["pid"];
        let Some(got) = report["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pid"] == *pid)
        else {
            problems.push(format!("pid {pid} not reported"));
            continue;
        };
        for key in ["verdict", "severity", "summary"] {
            if !want[key].is_null() && want[key] != got[key] {
                problems.push(format!("pid {pid} {key}: expected {}, got {}", want[key], got[key]));
            }
        }
        let got_findings = got["findings"].as_array().unwrap();
        let want_findings = want["findings"].as_array().unwrap();
        if got_findings.len() != want_findings.len() {
            problems.push(format!(
                "pid {pid}: {} findings, expected {}: {got_findings:#?}",
                got_findings.len(),
                want_findings.len()
            ));
        }
        for (want_f, got_f) in want_findings.iter().zip(got_findings) {
            for key in ["kind", "severity", "summary", "cycle"] {
                if !want_f[key].is_null() && want_f[key] != got_f[key] {
                    problems.push(format!(
                        "pid {pid} finding {key}: expected {}, got {}",
                        want_f[key], got_f[key]
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn every_fixture_keeps_its_expected_diagnosis() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("snapshot.json").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 20, "fixtures missing: {dirs:?}");
    let mut failures = Vec::new();
    for dir in &dirs {
        for problem in check_fixture(dir) {
            failures.push(format!("{}: {problem}", dir.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The edited fixtures must really differ from what they were edited from,
/// or they prove nothing.
#[test]
fn edited_fixtures_really_use_the_other_spelling() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let read = |name: &str| std::fs::read_to_string(root.join(name).join("snapshot.json")).unwrap();
    assert!(read("old-kernel-futex-abba").contains("\"futex_wait_queue_me\""));
    assert!(!read("old-kernel-futex-abba").contains("\"futex_do_wait\""));
    assert!(read("old-kernel-pipe-full").contains("\"pipe_write\""));
    assert!(read("old-kernel-idle-in-epoll").contains("\"ep_poll\""));
    assert!(
        !read("no-ptrace-idle-in-epoll").contains("\"blocked\""),
        "no syscall facts left"
    );
    let arm: Value = serde_json::from_str(&read("aarch64-pipe-full")).unwrap();
    assert_eq!(arm["host"]["arch"], "aarch64");
    let nr = &arm["processes"][0]["samples"][0]["threads"]["ok"][0]["syscall"]["ok"]["blocked"]["nr"];
    assert_eq!(nr, 64, "write is 64 on aarch64");
}
