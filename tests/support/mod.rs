//! Shared by the integration tests: start a real hung process from
//! `tests/hangs/hang.py`, and run the whystuck binary on it.
#![allow(dead_code)] // each test binary uses part of this

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A hang scenario, torn down (every process killed and reaped) on drop.
pub struct Scenario {
    controller: Child,
    pub info: Value,
}

impl Scenario {
    pub fn start(name: &str) -> Scenario {
        let mut controller = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hangs/hang.py"))
            .arg(name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .expect("python3 must be installed to run the hang scenarios");
        let mut line = String::new();
        let stdout = controller.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the scenario's ready line");
        let info: Value = match serde_json::from_str(&line) {
            Ok(info) => info,
            Err(_) => {
                let status = controller.wait();
                panic!("scenario {name} did not get ready ({status:?}); see stderr");
            }
        };
        Scenario { controller, info }
    }

    /// A pid (or fd, or port) the scenario reported under `key`.
    pub fn num(&self, key: &str) -> i64 {
        self.info[key]
            .as_i64()
            .unwrap_or_else(|| panic!("no {key} in {}", self.info))
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        drop(self.controller.stdin.take()); // EOF: the controller kills and reaps everything
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.controller.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-(self.controller.id() as i32), libc::SIGKILL) };
        let _ = self.controller.wait();
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

pub fn whystuck(args: &[&str]) -> Run {
    let output = assert_cmd::Command::cargo_bin("whystuck")
        .expect("the whystuck binary")
        .args(args)
        .timeout(Duration::from_secs(30))
        .output()
        .expect("run whystuck");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `whystuck --json` on one pid: the process object.
pub fn diagnose(pid: i64, interval: &str) -> Value {
    let run = whystuck(&["--json", "--interval", interval, &pid.to_string()]);
    assert!(run.code == 0 || run.code == 1, "exit {}: {}", run.code, run.stderr);
    let mut json = run.json();
    assert_eq!(json["schema_version"], 1);
    json["processes"][0].take()
}

/// The finding of this kind, or a panic that shows the whole diagnosis.
pub fn finding<'a>(process: &'a Value, kind: &str) -> &'a Value {
    process["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} finding in {process:#}"))
}

/// All evidence lines of all findings, joined, for substring checks.
pub fn evidence(process: &Value) -> String {
    let mut text = process["summary"].as_str().unwrap_or_default().to_string();
    for f in process["findings"].as_array().into_iter().flatten() {
        text.push('\n');
        text.push_str(f["summary"].as_str().unwrap_or_default());
        for e in f["evidence"].as_array().into_iter().flatten() {
            text.push('\n');
            text.push_str(e.as_str().unwrap_or_default());
        }
    }
    text
}

/// Run whystuck as user `nobody` (root only: `setpriv` drops privileges).
/// `None` when the tests do not run as root. A copy of the binary is run,
/// since nobody may not be able to reach target/ (a checkout under /root).
pub fn whystuck_as_nobody(args: &[&str]) -> Option<Run> {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("whystuck");
    std::fs::copy(env!("CARGO_BIN_EXE_whystuck"), &copy).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&copy)
        .args(args)
        .output()
        .expect("setpriv from util-linux");
    Some(Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}
