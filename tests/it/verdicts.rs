//! Every verdict, on a real process hung in a real way (tests/hangs/hang.py),
//! asserting the verdict and the evidence that makes it believable.

use crate::support::{self, diagnose, evidence, finding, whystuck, Scenario};
use serde_json::Value;
use std::os::unix::fs::OpenOptionsExt;

fn fd_entry<'a>(process: &'a Value, list: &str, fd: i64) -> &'a Value {
    process[list]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["fd"] == fd))
        .unwrap_or_else(|| panic!("no fd {fd} in {list}: {process:#}"))
}

#[test]
fn pipe_full_writer_names_the_full_pipe() {
    let s = Scenario::start("pipe-full");
    let p = diagnose(s.num("target"), "300ms");
    assert_eq!(p["verdict"], "pipe-full", "{p:#}");
    assert_eq!(p["severity"], "critical");
    let pipe = fd_entry(&p, "pipes", 1);
    assert_eq!(pipe["end"], "write");
    assert_eq!(pipe["full"], true);
    assert_eq!(pipe["buffered_bytes"], pipe["capacity_bytes"]);
    assert_eq!(pipe["capacity_bytes"], 65536);
    let summary = p["summary"].as_str().unwrap();
    assert!(
        summary.contains("fd 1, a pipe (write end), 65536/65536 bytes buffered"),
        "{summary}"
    );
    let text = evidence(&p);
    assert!(text.contains("write(fd=1)"), "{text}");
    assert!(text.contains("unchanged between the samples"), "{text}");
}

#[test]
fn abba_deadlock_is_futex_blocked_with_every_thread_listed() {
    let s = Scenario::start("abba");
    let p = diagnose(s.num("target"), "300ms");
    assert_eq!(p["verdict"], "futex-blocked", "{p:#}");
    assert_eq!(p["severity"], "warn");
    let tids: Vec<i64> = s.info["tids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    let threads = p["threads"].as_array().unwrap();
    assert_eq!(threads.len(), tids.len());
    for t in threads {
        assert_eq!(t["syscall"]["name"], "futex", "{t}");
    }
    let text = evidence(&p);
    assert!(text.contains("all 3 threads parked in futex waits"), "{text}");
    for tid in &tids[1..] {
        assert!(text.contains(&format!("thread {tid}")), "{text}");
    }
    assert_eq!(p["cpu"]["percent"], 0.0);
}

#[test]
fn event_loop_with_futex_helpers_is_idle_in_epoll_not_futex_blocked() {
    let s = Scenario::start("epoll-idle");
    let p = diagnose(s.num("target"), "300ms");
    assert_eq!(p["verdict"], "idle-in-epoll", "{p:#}");
    assert!(p["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["kind"] != "futex-blocked"));
    // It says what it waits for and who could wake it: the controller holds
    // the write end of its stdin (and is alive, so no "only a timer" note).
    let writer = s.num("stdin_writer");
    let summary = p["summary"].as_str().unwrap();
    assert_eq!(
        summary,
        format!("main thread idle in epoll_wait on fd 0 (pipe from pid {writer} (python3), empty)")
    );
    let text = evidence(&p);
    assert!(
        text.contains(&format!(
            "watching fd 0, a pipe (read end), 0/65536 bytes buffered, written by pid {writer} (python3)"
        )),
        "{text}"
    );
    let helpers = s.info["helper_tids"].as_array().unwrap();
    for helper in helpers {
        let t = p["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tid"] == *helper)
            .unwrap();
        assert_eq!(t["syscall"]["name"], "futex");
    }
}

#[test]
fn asyncio_loop_is_idle_in_epoll_and_its_own_empty_wakeup_socketpair_is_fine() {
    let s = Scenario::start("asyncio-idle");
    let p = diagnose(s.num("target"), "300ms");
    assert_eq!(p["verdict"], "idle-in-epoll", "{p:#}");
    assert_eq!(p["severity"], "info");
    assert!(
        p["unix"].as_array().unwrap().iter().all(|u| u["full"] == false),
        "{p:#}"
    );
}

#[test]
fn full_wakeup_socketpair_is_wakeup_fd_eagain() {
    let s = Scenario::start("wakeup-socketpair-full");
    let p = diagnose(s.num("target"), "300ms");
    assert_eq!(p["verdict"], "wakeup-fd-eagain", "{p:#}");
    let f = finding(&p, "wakeup-fd-eagain");
    let (w, r) = (s.num("wakeup_fd"), s.num("read_fd"));
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("socketpair fd {w} -> fd {r} is full")),
        "{f}"
    );
    assert!(evidence(&p).contains("signals with handlers: SIGINT"));
    let sock = fd_entry(&p, "unix", w);
    assert_eq!(sock["full"], true);
    assert!(sock["send_buffer_bytes"].as_u64() >= sock["send_buffer_limit"].as_u64());
    // Both findings hold; the critical one is the verdict.
    assert_eq!(finding(&p, "idle-in-epoll")["severity"], "info");
}

/// A process with thousands of fds is read lazily: only the fds its
/// threads wait on (the epoll fd and what it watches) are read in depth.
/// Its full wakeup socketpair is found when the unix sockets are joined
/// after the round, and both ends read in depth then. Its links, read on
/// several threads, are all there.
#[test]
fn full_wakeup_socketpair_is_found_among_many_fds() {
    let s = Scenario::start("wakeup-socketpair-full-many-fds");
    let p = diagnose(s.num("target"), "300ms");
    let open = std::fs::read_dir(format!("/proc/{}/fd", s.num("target")))
        .unwrap()
        .count();
    assert!(open > 2500, "{open} fds");
    assert_eq!(p["fds"]["count"], open as u64, "{p:#}");
    assert!(p["fds"]["by_type"]["device"].as_u64() >= Some(2500), "{p:#}");
    assert_eq!(p["verdict"], "wakeup-fd-eagain", "{p:#}");
    let (w, r) = (s.num("wakeup_fd"), s.num("read_fd"));
    assert!(
        evidence(&p).contains(&format!("socketpair fd {w} -> fd {r} is full")),
        "{p:#}"
    );
    assert_eq!(fd_entry(&p, "unix", w)["full"], true);
    assert_eq!(p["fds"]["listed"], "those read in depth", "{p:#}");
}

#[test]
fn full_wakeup_self_pipe_is_wakeup_fd_eagain() {
    let s = Scenario::start("wakeup-pipe-full");
    let p = diagnose(s.num("target"), "300ms");
    assert_eq!(p["verdict"], "wakeup-fd-eagain", "{p:#}");
    let w = s.num("wakeup_fd");
    let pipe = fd_entry(&p, "pipes", w);
    assert_eq!(pipe["full"], true);
    assert_eq!(pipe["buffered_bytes"], 65536);
    assert!(evidence(&p).contains(&format!(
        "fd {w} (self-pipe write side) is O_NONBLOCK and full: 65536/65536"
    )));
}

#[test]
fn read_on_an_empty_pipe_is_blocked_on_read() {
    let s = Scenario::start("blocked-read-pipe");
    let p = diagnose(s.num("target"), "300ms");
    assert_eq!(p["verdict"], "blocked-on-read", "{p:#}");
    assert!(p["summary"]
        .as_str()
        .unwrap()
        .contains("reading fd 0, a pipe (read end), 0/65536 bytes buffered"));
    assert_eq!(fd_entry(&p, "pipes", 0)["buffered_bytes"], 0);
}

#[test]
fn recv_on_a_quiet_tcp_connection_is_blocked_on_read_with_the_connection() {
    let s = Scenario::start("blocked-read-tcp");
    let p = diagnose(s.num("target"), "300ms");
    assert_eq!(p["verdict"], "blocked-on-read", "{p:#}");
    let tcp = fd_entry(&p, "tcp", s.num("fd"));
    assert_eq!(tcp["state"], "ESTABLISHED");
    assert_eq!(tcp["local"], format!("127.0.0.1:{}", s.num("local_port")));
    assert_eq!(tcp["remote"], format!("127.0.0.1:{}", s.num("remote_port")));
    assert_eq!(tcp["rx_queue"], 0);
    assert!(p["summary"].as_str().unwrap().contains("ESTABLISHED"));
}

#[test]
fn accept_on_a_listener_names_the_listen_socket() {
    let s = Scenario::start("tcp-listen");
    let p = diagnose(s.num("target"), "0");
    assert_eq!(p["verdict"], "blocked-on-read", "{p:#}");
    let tcp = fd_entry(&p, "tcp", s.num("fd"));
    assert_eq!(tcp["state"], "LISTEN");
    assert_eq!(tcp["local"], format!("127.0.0.1:{}", s.num("port")));
    assert!(p["summary"].as_str().unwrap().contains("waiting for a connection"));
}

#[test]
fn send_into_a_full_unix_socket_is_pipe_full() {
    let s = Scenario::start("unix-full");
    let p = diagnose(s.num("target"), "300ms");
    assert_eq!(p["verdict"], "pipe-full", "{p:#}");
    let sock = fd_entry(&p, "unix", s.num("fd"));
    assert_eq!(sock["full"], true);
    assert!(sock["send_buffer_bytes"].as_u64().unwrap() >= sock["send_buffer_limit"].as_u64().unwrap());
    assert!(p["summary"].as_str().unwrap().contains("unix stream socket"));
}

#[test]
fn parent_of_a_busy_child_is_waiting_on_child_and_shows_the_child_working() {
    let s = Scenario::start("wait-child-busy");
    let p = diagnose(s.num("parent"), "500ms");
    assert_eq!(p["verdict"], "waiting-on-child", "{p:#}");
    let child = &p["children"][0];
    assert_eq!(child["pid"], s.num("child"));
    // Working, whatever share of the CPUs it got on a loaded machine.
    assert!(child["cpu_percent"].as_f64().unwrap() > 10.0, "{child}");
    assert_eq!(
        p["severity"], "ok",
        "a parent waiting on a working child is fine: {p:#}"
    );
    assert!(p["summary"]
        .as_str()
        .unwrap()
        .contains(&format!("for pid {}", s.num("child"))));
}

#[test]
fn zombie_is_dead_and_names_the_parent_that_did_not_reap_it() {
    let s = Scenario::start("zombie");
    let p = diagnose(s.num("zombie"), "0");
    assert_eq!(p["verdict"], "dead", "{p:#}");
    assert_eq!(p["state"], "Z");
    let summary = p["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("not reaped by its parent pid {}", s.num("parent"))),
        "{summary}"
    );
}

#[test]
fn stopped_process_is_stopped() {
    let s = Scenario::start("stopped");
    let p = diagnose(s.num("target"), "0");
    assert_eq!(p["verdict"], "stopped", "{p:#}");
    assert_eq!(p["state"], "T");
    assert_eq!(p["severity"], "warn");
}

#[test]
fn traced_process_names_its_tracer() {
    let s = Scenario::start("traced");
    let p = diagnose(s.num("target"), "0");
    assert_eq!(p["verdict"], "stopped", "{p:#}");
    assert!(
        p["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("tracer pid {}", s.num("tracer"))),
        "{p:#}"
    );
}

#[test]
fn sleeping_process_is_sleeping() {
    let s = Scenario::start("sleeping");
    let p = diagnose(s.num("target"), "300ms");
    assert_eq!(p["verdict"], "sleeping", "{p:#}");
    assert_eq!(p["threads"][0]["syscall"]["name"], "clock_nanosleep");
    assert_eq!(p["threads"][0]["wchan"], "hrtimer_nanosleep");
}

#[test]
fn busy_loop_is_busy() {
    let s = Scenario::start("busy");
    let p = diagnose(s.num("target"), "500ms");
    assert_eq!(p["verdict"], "busy", "{p:#}");
    // What it got and what it waited for: on contended CPUs, it wanted more.
    let wanted = p["cpu"]["percent"].as_f64().unwrap() + p["cpu"]["wait_percent"].as_f64().unwrap();
    assert!(wanted >= 50.0, "{p:#}");
    assert!(p["cpu"]["utime_ticks"].as_u64() > p["cpu"]["first_utime_ticks"].as_u64());
}

#[test]
fn process_doing_some_work_is_running() {
    let s = Scenario::start("running");
    let p = diagnose(s.num("target"), "1s");
    assert_eq!(p["verdict"], "running", "{p:#}");
    assert_eq!(p["severity"], "ok");
    let percent = p["cpu"]["percent"].as_f64().unwrap();
    assert!(percent > 0.0 && percent < 50.0, "{percent}");
}

#[test]
fn missing_pid_is_a_dead_diagnosis_not_an_error() {
    let run = whystuck(&["--json", "--interval", "0", "2147483647"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let p = &run.json()["processes"][0];
    assert_eq!(p["verdict"], "dead");
    assert_eq!(p["summary"], "no such process");
    assert!(p["comm"].is_null());
}

#[test]
fn process_exiting_between_the_samples_is_dead_exited_while_inspected() {
    let mut child = std::process::Command::new("sleep").arg("0.3").spawn().unwrap();
    let pid = child.id().to_string();
    let waiter = std::thread::spawn(move || child.wait());
    let run = whystuck(&["--json", "--interval", "1s", &pid]);
    waiter.join().unwrap().unwrap();
    let p = &run.json()["processes"][0];
    assert_eq!(p["verdict"], "dead", "{p:#}");
    assert_eq!(p["summary"], "exited while inspected");
    assert_eq!(
        p["comm"], "sleep",
        "identity comes from the sample taken while it lived"
    );
}

/// A vfork parent sleeps in state D until its child execs or exits. It is
/// not a disk wait: it waits on its child, and is judged by it.
/// `clone(CLONE_VFORK)` without CLONE_VM gives those semantics with a copied
/// address space, so nothing returns twice on a shared stack. The child waits
/// for EOF on a pipe, so closing our end lets everything exit and be reaped.
#[test]
fn vfork_parent_in_d_state_waits_on_its_child_not_the_disk() {
    let mut fds = [0; 2];
    // SAFETY: plain pipe(2) into a 2-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let [release, hold] = fds;
    // SAFETY: the forked child only calls async-signal-safe functions
    // (close, clone, read, waitpid, _exit).
    let parent = unsafe { libc::fork() };
    assert!(parent >= 0);
    if parent == 0 {
        unsafe {
            libc::close(hold);
            let child = libc::syscall(libc::SYS_clone, libc::CLONE_VFORK | libc::SIGCHLD, 0, 0, 0, 0) as libc::pid_t;
            if child == 0 {
                let mut byte = 0u8;
                libc::read(release, (&mut byte as *mut u8).cast(), 1);
                libc::_exit(0);
            }
            libc::waitpid(child, std::ptr::null_mut(), 0);
            libc::_exit(0);
        }
    }
    unsafe { libc::close(release) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let state = || std::fs::read_to_string(format!("/proc/{parent}/stat")).unwrap_or_default();
    while !state().contains(") D ") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let p = diagnose(parent as i64, "0");
    unsafe {
        libc::close(hold);
        libc::waitpid(parent, std::ptr::null_mut(), 0);
    }
    assert_eq!(p["state"], "D");
    assert_eq!(p["verdict"], "waiting-on-child", "{p:#}");
    let child = p["children"][0]["pid"].as_i64().expect("the vfork child");
    let summary = p["summary"].as_str().unwrap();
    assert!(summary.contains(&format!("for pid {child}")), "{summary}");
    // The child is blocked reading the pipe we hold: the parent is as
    // healthy as that wait (info), and never called a disk wait.
    assert!(
        p["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["kind"] != "disk-wait"),
        "{p:#}"
    );
    assert!(evidence(&p).contains("blocked-on-read"), "{p:#}");
    let wchan = p["threads"][0]["wchan"].as_str().unwrap();
    assert!(
        ["kernel_clone", "wait_for_vfork_done", "_do_fork", "do_fork"].contains(&wchan),
        "{wchan}"
    );
}

/// comm and argv with escape sequences, a newline, `) (` and invalid UTF-8:
/// escaped on the terminal, exact in JSON.
#[test]
fn hostile_names_are_escaped_for_humans_and_lossless_in_json() {
    let s = Scenario::start("hostile-names");
    let pid = s.num("target").to_string();
    let human = whystuck(&["--interval", "0", &pid]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    for line in human.stdout.lines() {
        assert!(
            !line.chars().any(|c| c.is_control()),
            "control character reached the terminal: {line:?}"
        );
    }
    assert!(
        human.stdout.contains(r"\x1b[31mX) (\x0a\xff sleeping"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains(r"'\x1b]0;pwned\x07' '\xff\xfe' 'a) (b' ''"),
        "{}",
        human.stdout
    );

    let p = diagnose(s.num("target"), "0");
    assert_eq!(p["comm"]["hex"], s.info["comm_hex"], "{p:#}");
    let argv: Vec<Value> = p["cmdline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| match a {
            Value::String(text) => Value::String(text.bytes().map(|b| format!("{b:02x}")).collect()),
            other => other["hex"].clone(),
        })
        .collect();
    assert_eq!(Value::Array(argv), s.info["argv_hex"]);
}

/// Another user's process: what is readable is reported, the rest is listed
/// as unavailable with the reason, and a refused read never makes it `dead`
/// or `running`.
#[test]
fn another_users_process_degrades_to_unavailable_not_dead() {
    let s = Scenario::start("sleeping");
    let args = |pid: i64| {
        [
            "--json".to_string(),
            "--interval".into(),
            "100ms".into(),
            pid.to_string(),
        ]
    };
    // As root, look at our sleeping scenario as nobody; unprivileged, pid 1
    // already belongs to someone else.
    let (run, as_root) = match support::whystuck_as_nobody(&args(s.num("target")).each_ref().map(String::as_str)) {
        Some(run) => (run, true),
        None => (whystuck(&args(1).each_ref().map(String::as_str)), false),
    };
    let json = run.json();
    let p = &json["processes"][0];
    assert_ne!(p["verdict"], "dead", "{p:#}");
    assert_ne!(p["verdict"], "running", "{p:#}");
    assert!(p["comm"].is_string(), "stat stays readable: {p:#}");
    let unavailable: Vec<(String, String)> = p["unavailable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["what"].as_str().unwrap().to_string(),
                u["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        unavailable.contains(&("fds".into(), "permission".into())),
        "{unavailable:?}"
    );
    assert!(
        unavailable.contains(&("thread syscall".into(), "permission".into())),
        "{unavailable:?}"
    );
    assert!(
        p["fds"]["count"].is_null(),
        "an unreadable fd table is not 0 fds: {p:#}"
    );
    if as_root {
        assert_eq!(p["verdict"], "unknown", "{p:#}");
        assert_eq!(p["severity"], "info", "{p:#}");
        assert!(
            p["summary"]
                .as_str()
                .unwrap()
                .contains("run as its user, or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH"),
            "{p:#}"
        );
    }
}

/// A kernel thread has no user-space syscall: its syscall file reads zeros,
/// which must not be taken for `read(0)`.
#[test]
fn kernel_threads_are_not_blocked_on_read() {
    let p = diagnose(2, "0"); // kthreadd
    assert_eq!(p["comm"], "kthreadd", "{p:#}");
    assert_eq!(p["verdict"], "sleeping", "{p:#}");
    assert!(
        p["summary"].as_str().unwrap().starts_with("kernel thread, asleep"),
        "{p:#}"
    );
    assert!(p["threads"][0]["syscall"].is_null(), "{p:#}");
    assert!(p["signals"].is_null(), "{p:#}");
}

/// A thread id names its process, judged by that thread.
#[test]
fn a_thread_id_is_diagnosed_as_its_process_by_that_thread() {
    let s = Scenario::start("epoll-idle");
    let helper = s.info["helper_tids"][0].as_i64().unwrap();
    let p = diagnose(helper, "0");
    assert_eq!(p["pid"], s.num("target"), "{p:#}");
    assert_eq!(p["named_thread"], helper);
    assert_eq!(
        p["verdict"], "futex-blocked",
        "the helper thread waits on a futex: {p:#}"
    );
    assert!(
        p["summary"]
            .as_str()
            .unwrap()
            .starts_with(&format!("thread {helper} parked in a futex wait")),
        "{p:#}"
    );
}

/// Named pipes: a writer blocked on a full FIFO, and a reader blocked
/// opening a FIFO nobody opens for writing.
#[test]
fn fifos_are_recognised_from_the_pipe_wait() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    let lonely = dir.path().join("lonely");
    for fifo in [&full, &lonely] {
        let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    }
    // Hold the read end of `full` open without reading (non-blocking open
    // needs no writer), then let `yes` fill it.
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&full)
        .unwrap();
    let mut yes = Command::new("sh")
        .arg("-c")
        .arg(format!("exec yes > '{}'", full.display()))
        .spawn()
        .unwrap();
    let mut cat = Command::new("cat").arg(&lonely).stdout(Stdio::null()).spawn().unwrap();
    let wchan = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !(wchan(yes.id()).contains("pipe_write") && wchan(cat.id()) == "wait_for_partner") {
        assert!(
            std::time::Instant::now() < deadline,
            "not stuck: {} {}",
            wchan(yes.id()),
            wchan(cat.id())
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let writer = diagnose(yes.id().into(), "0");
    let opener = diagnose(cat.id().into(), "0");
    for child in [&mut yes, &mut cat] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_eq!(writer["verdict"], "pipe-full", "{writer:#}");
    assert!(
        writer["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("a FIFO {}", full.display())),
        "{writer:#}"
    );
    assert_eq!(writer["fds"]["by_type"]["fifo"], 1, "{writer:#}");
    assert_eq!(opener["verdict"], "blocked-on-read", "{opener:#}");
    assert!(
        opener["summary"]
            .as_str()
            .unwrap()
            .contains("blocked in open() of a FIFO: it waits for the other end to be opened"),
        "{opener:#}"
    );
}
