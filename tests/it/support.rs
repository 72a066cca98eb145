//! Shared by the integration tests: start a real hung process from
//! `tests/hangs/hang.py`, and run the whystuck binary on it.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A hang scenario, torn down (every process killed and reaped) on drop.
pub struct Scenario {
    controller: Child,
    pub info: Value,
}

impl Scenario {
    pub fn start(name: &str) -> Scenario {
        Scenario::try_start(name).unwrap_or_else(|| panic!("scenario {name} needs root (it exited 77)"))
    }

    /// `None` when the scenario cannot run here (it exits 77: not root, no
    /// /dev/fuse); CI sets WHYSTUCK_REQUIRE_TOOLS so that fails there.
    pub fn try_start(name: &str) -> Option<Scenario> {
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
                if status.as_ref().ok().and_then(|s| s.code()) == Some(77) {
                    assert!(
                        std::env::var_os("WHYSTUCK_REQUIRE_TOOLS").is_none(),
                        "scenario {name} cannot run here"
                    );
                    eprintln!("SKIPPED: scenario {name} cannot run here (see its stderr)");
                    return None;
                }
                panic!("scenario {name} did not get ready ({status:?}); see stderr");
            }
        };
        Some(Scenario { controller, info })
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
    whystuck_as_nobody_under(None, &[], args)
}

/// [`whystuck_as_nobody`], with `hidepid` given in a private mount
/// namespace where /proc is a fresh proc mounted `hidepid=HIDEPID`, and
/// holding the capabilities `caps` (names like `sys_ptrace`).
pub fn whystuck_as_nobody_under(hidepid: Option<&str>, caps: &[&str], args: &[&str]) -> Option<Run> {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("WHYSTUCK_REQUIRE_TOOLS").is_none(),
            "this test needs root (to drop to nobody and mount /proc)"
        );
        eprintln!("SKIPPED: needs root (to drop to nobody and mount /proc)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("whystuck");
    std::fs::copy(env!("CARGO_BIN_EXE_whystuck"), &copy).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = match hidepid {
        None => Command::new("setpriv"),
        Some(setting) => {
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg(r#"mount -t proc -o "hidepid=$0" proc /proc && exec setpriv "$@""#)
                .arg(setting);
            c
        }
    };
    command.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    if !caps.is_empty() {
        let caps: Vec<String> = caps.iter().map(|c| format!("+{c}")).collect();
        command.args(["--inh-caps", &caps.join(","), "--ambient-caps", &caps.join(",")]);
    }
    let output = command
        .arg(&copy)
        .args(args)
        .output()
        .expect("setpriv and unshare from util-linux");
    Some(Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// A fake /proc tree in a temporary directory: `DIR/proc`, with the cgroup
/// file system its `self/mountinfo` names (if any) beside it, under `DIR`
/// (`DIR/sys/fs/cgroup`), where whystuck looks for it.
pub struct FakeProc {
    dir: tempfile::TempDir,
    proc: std::path::PathBuf,
}

/// A stat line with every field, for pid `pid`, comm `comm`, state `state`.
pub fn stat_line(pid: i32, comm: &str, state: char, ppid: i32, utime: u64) -> String {
    format!("{pid} ({comm}) {state} {ppid} {pid} {pid} 0 -1 4194304 10 0 0 0 {utime} 3 0 0 20 0 1 0 5000 100000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
}

impl FakeProc {
    pub fn new() -> FakeProc {
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path().join("proc");
        let fake = FakeProc { dir, proc };
        fake.file("sys/kernel/osrelease", b"6.1.0-fake\n");
        fake
    }

    /// The fake /proc.
    pub fn path(&self) -> &Path {
        &self.proc
    }

    /// A file of the fake cgroup file system: `rel` below `DIR`, so
    /// `sys/fs/cgroup/app/cgroup.events` is where a mount point of
    /// `/sys/fs/cgroup` in `self/mountinfo` puts it.
    pub fn sys_file(&self, rel: &str, contents: &[u8]) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    pub fn file(&self, rel: &str, contents: &[u8]) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    pub fn link(&self, rel: &str, target: &str) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, path).unwrap();
    }

    /// A single-threaded process whose thread has the given syscall line.
    pub fn process(&self, pid: i32, stat: &str, syscall: &str, wchan: &str) {
        self.file(&format!("{pid}/stat"), stat.as_bytes());
        self.file(
            &format!("{pid}/status"),
            format!("Name:\tx\nTgid:\t{pid}\nUid:\t0\t0\t0\t0\nVmRSS:\t1000 kB\n").as_bytes(),
        );
        self.file(&format!("{pid}/cmdline"), b"");
        self.file(&format!("{pid}/io"), b"rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\n");
        self.file(&format!("{pid}/task/{pid}/stat"), stat.as_bytes());
        self.file(
            &format!("{pid}/task/{pid}/status"),
            b"voluntary_ctxt_switches:\t1\nnonvoluntary_ctxt_switches:\t0\n",
        );
        self.file(&format!("{pid}/task/{pid}/syscall"), syscall.as_bytes());
        self.file(&format!("{pid}/task/{pid}/wchan"), wchan.as_bytes());
        std::fs::create_dir_all(self.path().join(format!("{pid}/fd"))).unwrap();
        std::fs::create_dir_all(self.path().join(format!("{pid}/fdinfo"))).unwrap();
    }

    pub fn diagnose(&self, pid: i32) -> Value {
        let run = whystuck(&[
            "--proc-root",
            self.path().to_str().unwrap(),
            "--json",
            "--interval",
            "0",
            &pid.to_string(),
        ]);
        assert!(run.code == 0 || run.code == 1, "exit {}: {}", run.code, run.stderr);
        let mut report = run.json();
        report["processes"][0].take()
    }
}

/// An external tool a test needs, by name on PATH. CI installs them all and
/// sets WHYSTUCK_REQUIRE_TOOLS=1, so a missing one fails there; elsewhere the
/// test says what it skipped.
pub fn tool(name: &str) -> Option<String> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned());
    if found.is_none() {
        assert!(
            std::env::var_os("WHYSTUCK_REQUIRE_TOOLS").is_none(),
            "{name} is required (see .ci/run)"
        );
        eprintln!("SKIPPED: {name} is not installed (see .ci/run for what the tests use)");
    }
    found
}
