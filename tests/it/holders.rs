//! Who holds a wait, on real processes: file locks (flock, POSIX, OFD, a
//! forked holder, an ABBA between two processes), terminals (input() on a
//! pty, background jobs stopped for reading theirs), named FIFOs, and DNS.

use crate::support::{diagnose, evidence, finding, whystuck, Scenario};
use serde_json::Value;

fn text<'a>(s: &'a Scenario, key: &str) -> &'a str {
    s.info[key].as_str().unwrap_or_else(|| panic!("no {key} in {}", s.info))
}

fn peers(finding: &Value) -> Vec<(i64, i64)> {
    let peers = finding["peers"].as_array().map(Vec::as_slice).unwrap_or_default();
    peers
        .iter()
        .map(|p| (p["pid"].as_i64().unwrap(), p["fd"].as_i64().unwrap()))
        .collect()
}

fn summary(p: &Value) -> &str {
    p["summary"].as_str().unwrap()
}

/// A lock wait names its holder (pid, comm, fd), the file's path, the
/// lock's kind, and the holder's own verdict; JSON has the holder as the
/// finding's peer.
fn assert_names_its_holder(scenario: &str, kind: &str) {
    let s = Scenario::start(scenario);
    let (holder, path) = (s.num("holder"), text(&s, "path"));
    let p = diagnose(s.num("target"), "200ms");
    assert_eq!(
        (p["verdict"].as_str(), p["severity"].as_str()),
        (Some("lock-wait"), Some("warn")),
        "{p:#}"
    );
    let wait = finding(&p, "lock-wait");
    assert_eq!(wait["fd"], s.num("fd"), "{wait:#}");
    assert_eq!(peers(wait), [(holder, s.num("holder_fd"))], "{wait:#}");
    let said = summary(&p);
    for part in [
        format!("waiting for an exclusive {kind} lock on {path} (fd {})", s.num("fd")),
        format!(
            "held by pid {holder} (python3) fd {}, itself sleeping",
            s.num("holder_fd")
        ),
    ] {
        assert!(said.contains(&part), "{part:?} not in {said:?}");
    }
    assert!(p["stuck_for_seconds"].as_f64().is_some(), "{p:#}");
    assert!(
        evidence(&p).contains(&format!("the lock is held by pid {holder} (python3) through fd")),
        "{p:#}"
    );
    let next = wait["next_step"].as_str().unwrap();
    assert!(next.contains(&format!("whystuck {holder}")), "{next}");
}

#[test]
fn a_flock_wait_names_the_holder_and_the_path() {
    assert_names_its_holder("flock-wait", "flock");
}

#[test]
fn a_posix_lock_wait_names_the_holder_and_the_path() {
    assert_names_its_holder("posix-lock-wait", "POSIX");
}

/// An OFD lock is listed with pid -1: its holder is found by the `lock:`
/// line in its fdinfo.
#[test]
fn an_ofd_lock_wait_finds_the_holder_through_fdinfo() {
    assert_names_its_holder("ofd-lock-wait", "OFD");
}

/// The process that called flock() forked and exited: /proc/locks still
/// names it, but the child holding the open file holds the lock.
#[test]
fn a_forked_flock_holder_is_named_not_the_stale_pid() {
    let s = Scenario::start("flock-forked-holder");
    let (holder, stale) = (s.num("holder"), s.num("stale"));
    let p = diagnose(s.num("target"), "0");
    assert_eq!(p["verdict"], "lock-wait", "{p:#}");
    let wait = finding(&p, "lock-wait");
    assert_eq!(peers(wait), [(holder, s.num("holder_fd"))], "{wait:#}");
    let said = summary(&p);
    assert!(said.contains(&format!("held by pid {holder} (python3)")), "{said}");
    assert!(!said.contains(&format!("held by pid {stale}")), "{said}");
    assert!(
        said.contains(&format!("not by {stale}, which /proc/locks names: it does not hold it")),
        "{said}"
    );
    assert!(
        evidence(&p).contains(&format!("/proc/locks names pid {stale}, which does not hold the lock")),
        "{p:#}"
    );
}

/// Each holds one flock and waits for the other's: a deadlock (the kernel
/// detects it for POSIX locks, never for flock), found from either pid.
#[test]
fn a_flock_abba_is_a_deadlock_from_either_pid() {
    let s = Scenario::start("flock-abba");
    let (a, b) = (s.num("a"), s.num("b"));
    let wants = |pid: i64| if pid == a { s.num("a_wants") } else { s.num("b_wants") };
    let holds = |pid: i64| if pid == a { s.num("a_holds") } else { s.num("b_holds") };
    for (me, other) in [(a, b), (b, a)] {
        let p = diagnose(me, "200ms");
        assert_eq!(
            (p["verdict"].as_str(), p["severity"].as_str()),
            (Some("deadlock"), Some("critical")),
            "{p:#}"
        );
        let deadlock = finding(&p, "deadlock");
        let cycle: Vec<i64> = deadlock["cycle"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(cycle, [me, other], "{deadlock:#}");
        assert_eq!(
            summary(&p),
            format!(
                "{me} waits in flock on fd {} for a lock held by {other}; {other} waits in flock on fd {} for a lock held by {me}",
                wants(me),
                wants(other)
            )
        );
        // The lock wait stands beside it, naming the other as the holder.
        assert_eq!(peers(finding(&p, "lock-wait")), [(other, holds(other))]);
    }
}

/// input() on a pseudo-terminal nobody types on.
#[test]
fn input_on_a_pty_is_terminal_input_naming_the_terminal() {
    let s = Scenario::start("input-under-pty");
    let tty = text(&s, "tty");
    assert!(tty.starts_with("/dev/pts/"), "{tty}");
    let p = diagnose(s.num("target"), "200ms");
    assert_eq!(
        (p["verdict"].as_str(), p["severity"].as_str()),
        (Some("terminal-input"), Some("warn")),
        "{p:#}"
    );
    assert_eq!(
        summary(&p),
        format!("main thread waiting for someone to type on {tty} (fd 0)")
    );
    let wait = finding(&p, "terminal-input");
    assert_eq!(wait["fd"], 0);
    assert!(wait["next_step"].as_str().unwrap().contains(tty), "{wait:#}");
}

/// A background job that read its terminal, stopped by SIGTTIN: SIGCONT
/// alone would stop it again, so the next step is `fg`.
#[test]
fn a_job_stopped_by_sigttin_is_stopped_in_the_background_of_its_terminal() {
    let s = Scenario::start("background-read-under-pty");
    let tty = text(&s, "tty");
    let p = diagnose(s.num("target"), "0");
    assert_eq!(
        (p["verdict"].as_str(), p["severity"].as_str()),
        (Some("stopped"), Some("warn")),
        "{p:#}"
    );
    assert_eq!(
        summary(&p),
        format!("stopped in the background of {tty} when it read from the terminal (SIGTTIN)")
    );
    let stopped = finding(&p, "stopped");
    assert_eq!(stopped["fd"], 0, "{stopped:#}");
    let next = stopped["next_step"].as_str().unwrap();
    assert!(next.contains("fg in the shell"), "{next}");
    let said = evidence(&p);
    assert!(said.contains("is not its terminal's foreground group"), "{said}");
    assert!(!said.contains("it resumes on SIGCONT"), "{said}");
}

/// An interactive bash's `cat &`: the shell has collected the stop, so the
/// signal is not known; the job is in a read of its terminal.
#[test]
fn a_shell_s_background_job_reading_the_terminal_is_told_to_come_to_the_foreground() {
    let Some(s) = Scenario::try_start("interactive-shell-stopped-job") else {
        return;
    };
    let p = diagnose(s.num("cat"), "0");
    assert_eq!(p["verdict"], "stopped", "{p:#}");
    let said = summary(&p);
    assert!(
        said.starts_with("stopped in the background of /dev/pts/")
            && said.ends_with(", in a read of the terminal (job control)"),
        "{said}"
    );
    assert!(
        finding(&p, "stopped")["next_step"].as_str().unwrap().contains("fg"),
        "{p:#}"
    );
}

/// The control: SIGSTOP, no terminal to speak of.
#[test]
fn a_process_stopped_by_sigstop_is_only_stopped_by_a_signal() {
    let s = Scenario::start("stopped");
    let p = diagnose(s.num("target"), "0");
    assert_eq!(
        summary(&p),
        "stopped by a signal (SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU)"
    );
    assert!(evidence(&p).contains("it resumes on SIGCONT"), "{p:#}");
    let next = finding(&p, "stopped")["next_step"].as_str().unwrap().to_string();
    assert!(next.starts_with("resume it with kill -CONT"), "{next}");
}

/// A reader of a FIFO whose writer holds it open and writes nothing: the
/// writer is named, and the (empty) fill probed.
#[test]
fn a_fifo_reader_names_its_silent_writer() {
    let s = Scenario::start("fifo-silent-writer");
    let (writer, writer_fd, fd) = (s.num("writer"), s.num("writer_fd"), s.num("fd"));
    let p = diagnose(s.num("target"), "200ms");
    assert_eq!(p["verdict"], "blocked-on-read", "{p:#}");
    let reading = finding(&p, "blocked-on-read");
    assert_eq!(peers(reading), [(writer, writer_fd)], "{reading:#}");
    assert_eq!(
        summary(&p),
        format!(
            "main thread blocked reading fd {fd}, a FIFO {} (read end), 0/65536 bytes buffered, written by pid {writer} (python3) fd {writer_fd}",
            text(&s, "path")
        )
    );
    let fifo = p["pipes"].as_array().unwrap().iter().find(|x| x["fd"] == fd).unwrap();
    assert_eq!(
        (fifo["path"].as_str(), fifo["buffered_bytes"].as_u64()),
        (Some(text(&s, "path")), Some(0))
    );
    assert!(reading["next_step"]
        .as_str()
        .unwrap()
        .contains(&format!("whystuck {writer}")));
}

/// A FIFO open waiting for a writer: said plainly, and left waiting (a
/// probe that opened the FIFO would have completed that open).
#[test]
fn a_fifo_open_waits_for_the_other_end_and_whystuck_does_not_complete_it() {
    let s = Scenario::start("fifo-open-wait");
    let target = s.num("target");
    let p = diagnose(target, "200ms");
    assert_eq!(p["verdict"], "blocked-on-read", "{p:#}");
    assert_eq!(
        summary(&p),
        "main thread blocked in open() of a FIFO: it waits for the other end to be opened (the path is in its memory, not read)"
    );
    // Still in open(), after a run with two samples and the holder search.
    let run = whystuck(&["--json", "--deep", "--interval", "100ms", &target.to_string()]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let wchan = std::fs::read_to_string(format!("/proc/{target}/wchan")).unwrap();
    let syscall = std::fs::read_to_string(format!("/proc/{target}/syscall")).unwrap();
    assert_eq!(wchan, "wait_for_partner", "the open completed: {syscall}");
    let open_nr = if cfg!(target_arch = "aarch64") { "56 " } else { "257 " };
    assert!(syscall.starts_with(open_nr), "{syscall}");
}

/// A resolver-like client polls its connected UDP socket to a local DNS
/// server that never answers; the control, on another port, is not DNS.
#[test]
fn a_udp_query_to_port_53_is_a_dns_wait_and_another_port_is_not() {
    let Some(dns) = Scenario::try_start("dns-no-answer") else {
        return;
    };
    let server = format!("{}:53", text(&dns, "server_addr"));
    let p = diagnose(dns.num("target"), "200ms");
    assert_eq!(p["verdict"], "blocked-on-read", "{p:#}");
    assert!(
        summary(&p).starts_with(&format!("main thread waiting for a DNS answer from {server}, in poll")),
        "{p:#}"
    );
    let wait = finding(&p, "blocked-on-read");
    assert_eq!(wait["fd"], dns.num("fd"));
    assert!(wait["next_step"].as_str().unwrap().contains(&server), "{wait:#}");
    assert!(p["stuck_for_seconds"].as_f64().is_some(), "{p:#}");
    drop(dns);

    let control = Scenario::start("udp-poll-no-answer");
    let p = diagnose(control.num("target"), "200ms");
    assert_eq!(p["verdict"], "idle-in-epoll", "{p:#}");
    assert!(!evidence(&p).contains("DNS"), "{p:#}");
}

/// A UDP read names the remote, never "not TCP or unix".
#[test]
fn a_udp_read_names_its_remote() {
    let s = Scenario::start("udp-no-answer");
    let p = diagnose(s.num("target"), "0");
    assert_eq!(p["verdict"], "blocked-on-read", "{p:#}");
    assert_eq!(
        summary(&p),
        format!(
            "main thread blocked reading fd {}, UDP 127.0.0.1:{} -> 127.0.0.1:{} ESTABLISHED (recv-q 0)",
            s.num("fd"),
            s.num("local_port"),
            s.num("server_port")
        )
    );
    assert!(!evidence(&p).contains("DNS"), "{p:#}");
}

/// A unix client's peer is the server's accepted socket, which carries the
/// listener's path: the wait names it (as it names systemd-resolved's).
#[test]
fn a_unix_client_names_the_path_its_server_listens_on() {
    let s = Scenario::start("unix-silent-server");
    let p = diagnose(s.num("target"), "0");
    assert_eq!(p["verdict"], "blocked-on-read", "{p:#}");
    let said = summary(&p);
    assert!(said.contains(&format!(" at {}", text(&s, "path"))), "{said}");
    assert!(
        said.contains(&format!(
            "other end held by pid {} (python3) fd {}",
            s.num("server"),
            s.num("server_fd")
        )),
        "{said}"
    );
    assert!(!said.contains("DNS"), "{said}");
}

/// A fake /proc: pid 42 waits in flock on fd 4; `/proc/locks` names a
/// taker that is gone (49), and pid 50 holds the lock through its fd 3 (the
/// open file it inherited), as its fdinfo says. With the lines hidden (a
/// holder in another pid namespace hides its lock and the waiters), nobody
/// is named.
#[test]
fn lock_holders_from_proc_locks_and_fdinfo_in_a_fake_proc() {
    use crate::support::{stat_line, FakeProc};
    const PATH: &str = "/var/lib/app/db.lock";
    let tree = |locks: &str| {
        let fake = FakeProc::new();
        fake.process(
            42,
            &stat_line(42, "waiter", 'S', 1, 0),
            "73 0x4 0x2 0x0 0x0 0x0 0x0 0x7ffd 0x7f00\n",
            "locks_lock_inode_wait",
        );
        fake.link("42/fd/4", PATH);
        fake.file("42/fdinfo/4", b"pos:\t0\nflags:\t02\nmnt_id:\t27\nino:\t4242\n");
        fake.process(
            50,
            &stat_line(50, "holder", 'S', 1, 0),
            "230 0x1 0x1 0x0 0x0 0x0 0x0 0x7ffd 0x7f00\n",
            "hrtimer_nanosleep",
        );
        fake.link("50/fd/3", PATH);
        fake.file(
            "50/fdinfo/3",
            b"pos:\t0\nflags:\t02\nmnt_id:\t27\nino:\t4242\nlock:\t1: FLOCK  ADVISORY  WRITE 49 fe:00:4242 0 EOF\n",
        );
        fake.file("locks", locks.as_bytes());
        fake
    };
    let listed = "1: FLOCK  ADVISORY  WRITE 49 fe:00:4242 0 EOF\n1: -> FLOCK  ADVISORY  WRITE 42 fe:00:4242 0 EOF\n";
    let p = tree(listed).diagnose(42);
    assert_eq!(p["verdict"], "lock-wait", "{p:#}");
    assert_eq!(
        summary(&p),
        format!("main thread waiting for an exclusive flock lock on {PATH} (fd 4), held by pid 50 (holder) fd 3, itself sleeping (not by 49, which /proc/locks names: it does not hold it)")
    );
    assert_eq!(peers(finding(&p, "lock-wait")), [(50, 3)]);

    let hidden = tree("2: POSIX  ADVISORY  WRITE 7 08:01:99 0 EOF\n").diagnose(42);
    assert_eq!(hidden["verdict"], "lock-wait", "{hidden:#}");
    assert!(summary(&hidden).ends_with("its wait is not in /proc/locks, so who holds it is unknown (a lock held in a pid namespace this run cannot see is hidden there, with its waiters)"), "{hidden:#}");
    assert!(finding(&hidden, "lock-wait")["peers"].is_null(), "{hidden:#}");
}
