//! whystuck never hangs and never harms: a process stuck on a FUSE mount
//! whose server never answers, reads that block in the kernel, and the
//! guarantee that a target's pipes behave as if whystuck were not there.

use crate::support::{self, stat_line, whystuck, FakeProc, Scenario};
use std::time::{Duration, Instant};

/// Read helpers (`whystuck-helper`) of runs on the live /proc that outlived
/// their run: alive now, and no longer the child of a whystuck. (Other
/// tests' runs on fake trees leave theirs on purpose; a helper whose run is
/// still going belongs to a test running alongside, in this binary or in
/// another checkout's.)
fn helpers_alive() -> Vec<i32> {
    let comm = |pid: &str| std::fs::read(format!("/proc/{pid}/comm")).unwrap_or_default();
    let parent = |pid: i32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        after_comm.split_whitespace().nth(1).unwrap_or("0").to_string()
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| comm(&pid.to_string()) == b"whystuck-helper\n")
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.ends_with(b"\0/proc\0")))
        .filter(|&pid| comm(&parent(pid)) != b"whystuck\n")
        .collect()
}

/// A victim with an fd on a FUSE file system whose server stopped
/// answering, one thread stuck in D on it: readlink and fdinfo stay fast
/// (whystuck never stats or opens the fd's target), so the diagnosis is
/// whole and quick; its memory (cmdline) is not read, so no helper is left
/// stuck behind it, run after run.
#[test]
fn a_process_stuck_on_a_dead_fuse_mount_is_diagnosed_quickly() {
    let Some(s) = Scenario::try_start("fuse-stuck") else {
        return;
    };
    let helpers_before = helpers_alive();
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
    let cmdline = p["unavailable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["what"] == "cmdline");
    assert_eq!(
        cmdline.map(|u| &u["kind"]),
        Some(&serde_json::json!("avoided")),
        "{p:#}"
    );
    std::thread::sleep(Duration::from_millis(300));
    // The helper of a run that has just ended (a test's alongside, on a
    // loaded machine) may take a moment more to exit; one stuck behind the
    // FUSE mount stays.
    let patience = Instant::now() + Duration::from_secs(3);
    let left = loop {
        let left: Vec<i32> = helpers_alive()
            .into_iter()
            .filter(|h| !helpers_before.contains(h))
            .collect();
        if left.is_empty() || Instant::now() >= patience {
            break left;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(left.is_empty(), "helpers left behind: {left:?}");
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
    let pids = ["42", "43", "44", "45", "46", "47"];
    for pid in pids.map(|p| p.parse::<i32>().unwrap()) {
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
    let root = fake.path().to_str().unwrap();
    let mut args = vec!["--proc-root", root, "--json", "-i", "100ms", "--timeout", "1s"];
    args.extend(pids);
    let run = whystuck(&args);
    // Six reads that never answer: the first is given up at the budget,
    // the rest are not started.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
    // Each is judged by its first sample and says what it misses.
    let report = run.json();
    for p in report["processes"].as_array().unwrap() {
        assert_eq!(p["comm"], "victim", "{p:#}");
        let kind_of = |what: &str| {
            let entry = p["unavailable"].as_array().unwrap().iter().find(|u| u["what"] == what);
            entry.map(|u| u["kind"].clone())
        };
        assert_eq!(kind_of("cmdline"), Some(serde_json::json!("timed_out")), "{p:#}");
        assert_eq!(
            kind_of("second sample (cpu, i/o and switch rates)"),
            Some(serde_json::json!("timed_out")),
            "{p:#}"
        );
        assert!(p["cpu"]["percent"].is_null());
    }
}

/// Hundreds of processes starting and exiting while --all and --tree run:
/// no error, every process either reported whole or `dead` (exited while
/// inspected, or gone before the first look), never half of each.
#[test]
fn churn_is_reported_as_dead_or_left_out_never_mixed() {
    use std::process::{Command, Stdio};
    let script = "import os, time, random\n\
                  while True:\n\
                  \x20   if os.fork() == 0:\n\
                  \x20       time.sleep(random.random() / 50)\n\
                  \x20       os._exit(0)\n\
                  \x20   try:\n\
                  \x20       while os.waitpid(-1, os.WNOHANG)[0]: pass\n\
                  \x20   except ChildProcessError: pass\n\
                  \x20   time.sleep(0.001)\n";
    let mut churner = Command::new("python3")
        .args(["-c", script])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let churner_pid = churner.id().to_string();
    std::thread::sleep(Duration::from_millis(300));
    let mut reported = 0;
    for round in 0..6 {
        let args: Vec<&str> = if round % 2 == 0 {
            vec!["--json", "--all", "--interval", "100ms", "--fail-on", "never"]
        } else {
            vec![
                "--json",
                "--tree",
                "--interval",
                "100ms",
                "--fail-on",
                "never",
                &churner_pid,
            ]
        };
        let run = whystuck(&args);
        assert_eq!(run.code, 0, "round {round}: {}", run.stderr);
        let report = run.json();
        for p in report["processes"].as_array().unwrap() {
            reported += 1;
            let pid = p["pid"].as_i64().unwrap();
            if p["verdict"] == "dead" {
                let summary = p["summary"].as_str().unwrap();
                let known = ["exited while inspected", "no such process", "zombie"];
                assert!(known.iter().any(|k| summary.starts_with(k)), "round {round}: {p:#}");
                continue;
            }
            // A live report is one process: its threads belong to it.
            let threads = p["threads"].as_array().unwrap();
            if let Some(main) = threads.iter().find(|t| t["tid"] == pid) {
                assert_eq!(main["comm"], p["comm"], "round {round}: {p:#}");
            }
            assert!(
                p["start_time_ticks"].is_u64() || p["verdict"] == "unknown",
                "round {round}: {p:#}"
            );
        }
    }
    churner.kill().unwrap();
    churner.wait().unwrap();
    assert!(reported > 20);
}

/// Read-only in practice: a writer whose reader goes away still gets EPIPE
/// at once, though whystuck keeps probing its pipe (a probe is a moment's
/// extra reader, closed at once).
#[test]
fn probing_a_pipe_never_keeps_its_writer_from_epipe() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let writer_code = "import sys, signal\n\
                       signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n\
                       while True: sys.stdout.buffer.write(b'x' * 4096); sys.stdout.flush()\n";
    let mut writer = Command::new("python3")
        .args(["-c", writer_code])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = writer.stdout.take().unwrap();
    let pid = writer.id().to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // One prober in a tight loop of one-sample runs, one whose runs last
    // 2s: if either kept the pipe open past its probe, EPIPE would wait.
    let probers: Vec<_> = ["0", "2s"]
        .into_iter()
        .map(|interval| {
            let stop = stop.clone();
            let pid = pid.clone();
            std::thread::spawn(move || {
                let mut runs = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let run = whystuck(&["--interval", interval, "--fail-on", "never", &pid]);
                    assert!(run.code == 0 || run.stdout.contains("dead"), "{}", run.stderr);
                    runs += 1;
                }
                runs
            })
        })
        .collect();
    let mut buf = [0u8; 65536];
    for _ in 0..50 {
        let _ = reader.read(&mut buf);
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(reader); // the only real reader goes away, mid-run of the 2s prober
    let gone = Instant::now();
    let status = loop {
        if let Some(status) = writer.try_wait().unwrap() {
            break status;
        }
        assert!(
            gone.elapsed() < Duration::from_millis(500),
            "the writer did not get EPIPE at once"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let runs: usize = probers.into_iter().map(|p| p.join().unwrap()).sum();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGPIPE),
        "killed by SIGPIPE, as without whystuck"
    );
    assert!(runs > 1);
}

/// Read-only by construction, checked at the syscall level: no open for
/// writing, no signal, no ptrace, no access to a target's memory.
#[test]
fn whystuck_never_writes_signals_or_traces_a_target() {
    let Some(strace) = support::tool("strace") else { return };
    let s = Scenario::start("parent-waits-undrained");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("strace.log");
    let status = std::process::Command::new(strace)
        .args(["-f", "-qq", "-o"])
        .arg(&log)
        .args([
            "-e",
            "trace=open,openat,openat2,kill,tkill,tgkill,pidfd_send_signal,ptrace,process_vm_readv,process_vm_writev",
        ])
        .arg(env!("CARGO_BIN_EXE_whystuck"))
        .args([
            "--tree",
            "--interval",
            "200ms",
            "--fail-on",
            "never",
            &s.num("parent").to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let log = std::fs::read_to_string(&log).unwrap();
    let opens: Vec<&str> = log.lines().filter(|l| l.contains("open")).collect();
    assert!(opens.len() > 50, "strace saw the opens: {}", opens.len());
    for line in log.lines() {
        assert!(!line.contains("/mem\""), "reads a target's memory: {line}");
        for forbidden in [
            "kill(",
            "tkill(",
            "tgkill(",
            "pidfd_send_signal(",
            "ptrace(",
            "process_vm_",
        ] {
            assert!(!line.contains(forbidden), "{line}");
        }
        if line.contains("open") && !line.contains("= -1") {
            // /dev/null is the helper's stderr, opened by the spawn.
            if line.contains("\"/dev/null\"") {
                continue;
            }
            for flag in ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"] {
                assert!(!line.contains(flag), "opens for writing: {line}");
            }
        }
    }
}

/// Names a target controls, at their worst: an fd path with an escape
/// sequence and a newline, a unix socket path with BEL and invalid UTF-8, a
/// 4 KiB argument. Escaped for a terminal, valid and exact in JSON.
/// (Prometheus label escaping is checked on a hostile comm in
/// tests/it/automation.rs.)
#[test]
fn hostile_paths_socket_names_and_4k_arguments_stay_contained() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let code = "import os, socket, sys, time\n\
                d = sys.argv[1].encode()\n\
                f = open(d + b'/evil\\x1b[2J\\nname', 'wb')\n\
                s = socket.socket(socket.AF_UNIX)\n\
                s.bind(d + b'/sock\\x07\\xff')\n\
                s.listen()\n\
                print('ready', flush=True)\n\
                time.sleep(60)\n";
    let long = format!("{}\u{1b}]0;x\u{7}{}", "A".repeat(2000), "B".repeat(2090));
    let mut target = Command::new("python3")
        .args(["-c", code, dir.path().to_str().unwrap(), &long])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(target.stdout.as_mut().unwrap()), &mut line).unwrap();
    let pid = target.id().to_string();
    let human = whystuck(&["--interval", "0", &pid]);
    let json = whystuck(&["--json", "--interval", "0", &pid]);
    target.kill().unwrap();
    target.wait().unwrap();

    for line in human.stdout.lines() {
        assert!(
            !line.chars().any(|c| c.is_control()),
            "a control character reached the terminal: {line:?}"
        );
    }
    assert!(human.stdout.contains(r"/evil\x1b[2J\x0aname"), "{}", human.stdout);
    assert!(human.stdout.contains(r"/sock\x07\xff"), "{}", human.stdout);
    assert!(
        human.stdout.contains("more characters; --json has all"),
        "a 4 KiB command line is shortened"
    );

    let p = &json.json()["processes"][0];
    let args = p["cmdline"].as_array().unwrap();
    assert_eq!(
        args.last().unwrap(),
        &serde_json::json!(long),
        "JSON keeps the argument exactly"
    );
    let file = p["fds"]["open"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == "file" && f["target"].to_string().contains("evil"))
        .unwrap();
    assert!(file["target"].as_str().unwrap().ends_with("/evil\u{1b}[2J\nname"));
    let sock = &p["unix"][0]["path"];
    let hex = sock["hex"]
        .as_str()
        .unwrap_or_else(|| panic!("not UTF-8, so hex: {sock}"));
    let expected: String = b"sock\x07\xff".iter().map(|b| format!("{b:02x}")).collect();
    assert!(hex.ends_with(&expected), "{sock}");
}

/// A `sleep`, as `nobody` when asked, killed and reaped on drop.
struct Sleeper(std::process::Child);

impl Sleeper {
    fn start(as_nobody: bool) -> Sleeper {
        let mut command = if as_nobody {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "300"]);
            c
        } else {
            let mut c = std::process::Command::new("sleep");
            c.arg("300");
            c
        };
        // Its stdout a pipe of its own user's.
        Sleeper(command.stdout(std::process::Stdio::piped()).spawn().expect("sleep"))
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Under hidepid=invisible another user's processes are missing from /proc:
/// a scan says about how much it could not see, and a named hidden pid is
/// "cannot look", never "dead".
#[test]
fn processes_hidden_by_hidepid_invisible_are_counted_not_called_dead() {
    let (mine, others) = (Sleeper::start(true), Sleeper::start(false));
    std::thread::sleep(Duration::from_millis(100)); // setpriv has exec'd sleep
    let Some(all) = support::whystuck_as_nobody_under(Some("invisible"), &[], &["--all", "--json"]) else {
        return; // needs root to mount /proc and drop privileges
    };
    let report = all.json();
    let visibility = &report["visibility"];
    assert_eq!(visibility["hidepid"], "invisible", "{visibility}");
    assert!(visibility["hidden_threads"].as_u64().unwrap() >= 1, "{visibility}");
    let pids: Vec<String> = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].to_string())
        .collect();
    assert!(pids.contains(&mine.pid()), "its own user's sleep is seen: {pids:?}");
    assert!(!pids.contains(&others.pid()), "root's sleep is hidden: {pids:?}");

    let human = support::whystuck_as_nobody_under(Some("invisible"), &[], &["--all", "--color", "never"]).unwrap();
    assert!(
        human
            .stdout
            .starts_with("Not the whole host: /proc is mounted hidepid=invisible, which left out processes with about"),
        "said first: {}",
        human.stdout
    );
    let ndjson = support::whystuck_as_nobody_under(Some("invisible"), &[], &["--all", "--format", "ndjson"]).unwrap();
    for line in ndjson.stdout.lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(line["visibility"]["hidepid"], "invisible", "every line says it: {line}");
    }

    let named = support::whystuck_as_nobody_under(Some("invisible"), &[], &["--json", &others.pid()]).unwrap();
    let p = &named.json()["processes"][0];
    assert_eq!(p["verdict"], "unknown", "{p:#}");
    let evidence = support::evidence(p);
    assert!(
        evidence.contains("hidepid=invisible") && evidence.contains("pidfd_open finds it"),
        "{evidence}"
    );

    // A pid that is free is still dead, hidepid or not.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let free = support::whystuck_as_nobody_under(Some("invisible"), &[], &["--json", &gone.id().to_string()]).unwrap();
    assert_eq!(free.json()["processes"][0]["verdict"], "dead", "{}", free.stdout);
}

/// Under hidepid=noaccess other users' processes are listed but refused:
/// counted as unreadable, and a named one is "cannot look".
#[test]
fn processes_refused_by_hidepid_noaccess_are_counted_as_unreadable() {
    let (_mine, others) = (Sleeper::start(true), Sleeper::start(false));
    std::thread::sleep(Duration::from_millis(100));
    let Some(all) = support::whystuck_as_nobody_under(Some("noaccess"), &[], &["--all", "--format", "prometheus"])
    else {
        return;
    };
    let unreadable: u64 = all
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("whystuck_unreadable_processes "))
        .unwrap_or_else(|| panic!("{}", all.stdout))
        .parse()
        .unwrap();
    assert!(unreadable >= 1, "root's sleep at least: {unreadable}");

    let named = support::whystuck_as_nobody_under(Some("noaccess"), &[], &["--json", &others.pid()]).unwrap();
    let p = &named.json()["processes"][0];
    assert_eq!(p["verdict"], "unknown", "{p:#}");
    assert!(support::evidence(p).contains("hidepid=noaccess"), "{p:#}");
}

/// CAP_SYS_PTRACE (past ptrace checks and hidepid) with CAP_DAC_READ_SEARCH
/// (root's 0400 files and 0600 pipes) give an unprivileged user the whole
/// view of root's processes; without them it is listed as unavailable.
#[test]
fn two_capabilities_give_the_full_view_without_root() {
    let root_writer = Sleeper::start(false);
    let pid = root_writer.pid();
    let args = ["--json", "--interval", "0", pid.as_str()];
    let Some(plain) = support::whystuck_as_nobody_under(None, &[], &args) else {
        return;
    };
    let full = support::whystuck_as_nobody_under(Some("invisible"), &["sys_ptrace", "dac_read_search"], &args).unwrap();

    let plain = &plain.json()["processes"][0];
    let fds = plain["unavailable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["what"] == "fds");
    assert_eq!(
        fds.map(|u| &u["kind"]),
        Some(&serde_json::json!("permission")),
        "{plain:#}"
    );

    let full = &full.json()["processes"][0];
    assert_eq!(full["unavailable"], serde_json::json!([]), "{full:#}");
    let stdout = full["pipes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["fd"] == 1)
        .unwrap_or_else(|| panic!("{full:#}"));
    assert_eq!(
        stdout["capacity_bytes"], 65536,
        "the pipe probe opened root's pipe: {stdout}"
    );
}
