//! A host at its limits is when whystuck is needed most: out of threads
//! (its pids limit reached), out of fds. The report still comes, whole.

use crate::support::tool;
use serde_json::Value;
use std::process::{Child, Command, Stdio};

/// `whystuck --all --interval 0 --json` under `prlimit LIMIT`, as nobody
/// when `as_nobody` (a limit on processes counts the user's, and root is
/// exempt): its exit code and report. `None` (a visible skip) without
/// prlimit, or without setpriv and root for `as_nobody`.
fn scan_under(limit: &str, as_nobody: bool) -> Option<(i32, Value)> {
    let prlimit = tool("prlimit")?;
    let mut command = match as_nobody {
        true => {
            if unsafe { libc::geteuid() } != 0 {
                eprintln!("SKIPPED: changing user needs root");
                return None;
            }
            let mut setpriv = Command::new(tool("setpriv")?);
            setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups", &prlimit]);
            setpriv
        }
        false => Command::new(prlimit),
    };
    let out = command
        .arg(limit)
        .args([
            env!("CARGO_BIN_EXE_whystuck"),
            "--all",
            "--interval",
            "0",
            "--json",
            "--fail-on",
            "never",
        ])
        .output()
        .unwrap();
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    Some((out.status.code().unwrap_or(-1), report))
}

fn processes(report: &Value) -> &Vec<Value> {
    report["processes"].as_array().unwrap()
}

/// No thread can be made (nobody's processes are at RLIMIT_NPROC): the
/// samples are taken on the one thread there is.
#[test]
fn a_host_out_of_threads_still_gets_its_report() {
    let Some((code, report)) = scan_under("--nproc=1", true) else {
        return;
    };
    assert_eq!(code, 0, "{report:#}");
    assert!(processes(&report).len() > 1, "{report:#}");
}

/// Fewer fds than processes: the scan holds no more directories than the
/// limit leaves room for; every process is reported, those past the limit
/// as not readable, with the reason.
#[test]
fn a_scan_with_fewer_fds_than_processes_reports_every_process() {
    let mut crowd: Vec<Child> = (0..300)
        .map(|_| Command::new("sleep").arg("300").stdout(Stdio::null()).spawn().unwrap())
        .collect();
    let result = scan_under("--nofile=256:256", false);
    let pids: Vec<i64> = crowd.iter().map(|c| i64::from(c.id())).collect();
    for child in &mut crowd {
        let _ = child.kill();
        let _ = child.wait();
    }
    let Some((code, report)) = result else { return };
    assert_eq!(code, 0, "{report:#}");
    let reported: Vec<&Value> = processes(&report)
        .iter()
        .filter(|p| pids.contains(&p["pid"].as_i64().unwrap()))
        .collect();
    assert_eq!(reported.len(), pids.len(), "every sleep is reported");
    let sleeping = reported.iter().filter(|p| p["verdict"] == "sleeping").count();
    assert!(sleeping > 100, "most within the limit are diagnosed: {sleeping}");
    for p in reported.iter().filter(|p| p["verdict"] != "sleeping") {
        assert_eq!(p["verdict"], "unknown", "{p:#}");
        assert!(p["summary"].as_str().unwrap().contains("Too many open files"), "{p:#}");
    }
}
