//! Who holds a wait, from constructed facts: file locks and their holders
//! (verified, stale, unverified, hidden, OFD, an ABBA), terminals, jobs
//! stopped in the background, DNS waits and FIFO ends.

use super::*;
use crate::classify::finding::LockWait;
use crate::linux::locks::{LockAccess, LockClass};
use std::net::SocketAddr;

const DEV: &str = "fe:00";
const INO: u64 = 4242;
const PATH: &str = "/var/lib/app/db.lock";

/// x86_64: flock is 73, fcntl 72, read 0, poll 7, write 1.
fn flock_waiter(pid: i32, fd: i32) -> ProcessRecord {
    process(
        pid,
        t(pid, 'S', 73, &[fd as u64, 2], "locks_lock_inode_wait"),
        &[file_fd(fd, INO)],
    )
}

fn process(pid: i32, thread: T, fds: &[Fd]) -> ProcessRecord {
    let mut r = record('S', 0, &[T { tid: pid, ..thread }], fds);
    r.pid = pid;
    r
}

fn file_fd(fd: i32, ino: u64) -> Fd {
    let mut f = super::fd(fd, PATH, 0o2, None);
    if let Fact::Ok(info) = &mut f.info {
        info.ino = Some(ino);
    }
    f
}

fn line(id: u64, waiting: bool, class: LockClass, access: LockAccess, pid: i32) -> FileLock {
    FileLock {
        id,
        waiting,
        class,
        access,
        pid,
        dev: DEV.into(),
        ino: INO,
        start: 0,
        end: None,
    }
}

fn holding(pid: i32, fd: i32, lock: &FileLock) -> LockHolding {
    LockHolding {
        pid,
        fd,
        comm: Some(TargetString::from("holder")),
        lock: FileLock {
            waiting: false,
            ..lock.clone()
        },
    }
}

fn file(lines: Vec<FileLock>, holders: Vec<LockHolding>, searched: &[i32]) -> LockedFile {
    LockedFile {
        dev: DEV.into(),
        ino: INO,
        lines,
        holders,
        searched: searched.to_vec(),
        searched_everyone: false,
        unsearchable: vec![],
        unsearchable_because: None,
        cut_short: None,
    }
}

fn diagnosed(processes: Vec<ProcessRecord>, locks: Option<Fact<Vec<LockedFile>>>) -> Diagnoses {
    let mut snapshot = snapshot("x86_64", processes, vec![]);
    snapshot.locks = locks;
    diagnose_all(&World::new(&snapshot))
}

fn lock_wait_of(d: &Diagnosis) -> &LockWait {
    d.findings
        .iter()
        .find_map(|f| match &f.claim {
            Claim::Waiting {
                wait: WaitClaim::Lock(lock),
                ..
            } => Some(lock),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no lock wait in {d:#?}"))
}

#[test]
fn lock_waits_name_the_holders_found_and_only_those() {
    use LockAccess::*;
    use LockClass::*;
    let held = line(1, false, Flock, Write, 7);
    let wait = line(1, true, Flock, Write, 100);
    let holder_sleeps = process(7, t(7, 'S', 230, &[1], "hrtimer_nanosleep"), &[file_fd(3, INO)]);
    struct Case {
        name: &'static str,
        file: LockedFile,
        holders: Vec<i32>,
        stale: Vec<i32>,
        unverified: Vec<i32>,
        says: &'static str,
    }
    let mut unsearchable = file(vec![held.clone(), wait.clone()], vec![], &[]);
    unsearchable.unsearchable = vec![7];
    let mut nobody = file(vec![held.clone(), wait.clone()], vec![], &[7]);
    nobody.searched_everyone = true;
    let cases = vec![
        Case {
            name: "the named pid holds it",
            file: file(vec![held.clone(), wait.clone()], vec![holding(7, 3, &held)], &[7]),
            holders: vec![7],
            stale: vec![],
            unverified: vec![],
            says: "main thread waiting for an exclusive flock lock on /var/lib/app/db.lock (fd 3), held by pid 7 (holder) fd 3, itself sleeping",
        },
        Case {
            name: "the named pid forked and exited: its child holds it",
            file: file(vec![held.clone(), wait.clone()], vec![holding(8, 3, &held)], &[7]),
            holders: vec![8],
            stale: vec![7],
            unverified: vec![],
            says: "main thread waiting for an exclusive flock lock on /var/lib/app/db.lock (fd 3), held by pid 8 (holder) fd 3 (not by 7, which /proc/locks names: it does not hold it)",
        },
        Case {
            name: "the named pid could not be looked through",
            file: unsearchable,
            holders: vec![],
            stale: vec![],
            unverified: vec![7],
            says: "main thread waiting for an exclusive flock lock on /var/lib/app/db.lock (fd 3), held by pid 7 (as /proc/locks says; its fds could not be read to verify it)",
        },
        Case {
            name: "nobody found: no guess",
            file: nobody,
            holders: vec![],
            stale: vec![7],
            unverified: vec![],
            says: "main thread waiting for an exclusive flock lock on /var/lib/app/db.lock (fd 3): no process was found holding it (every process's fds on its path were looked through) (not by 7, which /proc/locks names: it does not hold it)",
        },
    ];
    for case in cases {
        let d = diagnosed(
            vec![flock_waiter(PID, 3), holder_sleeps.clone()],
            Some(Fact::Ok(vec![case.file])),
        );
        let d = d.get(PID).unwrap();
        assert_eq!(
            (d.verdict, d.severity),
            (Verdict::LockWait, Severity::Warn),
            "{}",
            case.name
        );
        let lock = lock_wait_of(d);
        let holders: Vec<i32> = lock.holders.iter().map(|h| h.peer.pid).collect();
        assert_eq!(
            (holders, &lock.stale, &lock.unverified),
            (case.holders, &case.stale, &case.unverified),
            "{}",
            case.name
        );
        assert_eq!(said(d), case.says, "{}", case.name);
    }
}

#[test]
fn what_does_not_block_is_not_a_holder() {
    use LockAccess::*;
    use LockClass::*;
    // A POSIX waiter for bytes 0-99: its own lock, a shared flock, a lock
    // on bytes past 99 and a shared lock it also wants shared never block it.
    let ranged = |mut l: FileLock, start, end| {
        l.start = start;
        l.end = end;
        l
    };
    let wait = ranged(line(1, true, Posix, Read, PID), 0, Some(99));
    let blocking = line(1, false, Ofd, Write, -1);
    let lines = vec![
        blocking.clone(),
        wait,
        line(2, false, Posix, Write, PID),
        line(3, false, Flock, Write, 9),
        ranged(line(4, false, Posix, Write, 10), 100, None),
        line(5, false, Posix, Read, 11),
    ];
    let holders = [(12, &blocking), (9, &lines[3]), (10, &lines[4]), (11, &lines[5])]
        .into_iter()
        .map(|(pid, l)| holding(pid, 4, l))
        .collect();
    let waiter = process(PID, t(PID, 'S', 72, &[3, 7, 0x7ffd], "fcntl_setlk"), &[file_fd(3, INO)]);
    let d = diagnosed(vec![waiter], Some(Fact::Ok(vec![file(lines, holders, &[9, 10, 11])])));
    let lock = lock_wait_of(d.get(PID).unwrap());
    let holders: Vec<i32> = lock.holders.iter().map(|h| h.peer.pid).collect();
    assert_eq!(
        holders,
        [12],
        "the OFD lock (pid -1), found by its fdinfo line: {lock:#?}"
    );
    assert_eq!((lock.class, lock.access), (Some(Posix), Some(Read)));
}

#[test]
fn a_wait_whystuck_cannot_match_says_why_no_holder_is_named() {
    let cases: Vec<(Option<Fact<Vec<LockedFile>>>, &str)> = vec![
        (None, "who holds it is unknown (/proc/locks was not read)"),
        (
            Some(Fact::Unavailable(denied("locks"))),
            "who holds it is unknown (/proc/locks could not be read: permission denied)",
        ),
        (
            Some(Fact::Ok(vec![])),
            "its wait is not in /proc/locks, so who holds it is unknown",
        ),
    ];
    for (locks, says) in cases {
        let d = diagnosed(vec![flock_waiter(PID, 3)], locks);
        let d = d.get(PID).unwrap();
        assert_eq!(d.verdict, Verdict::LockWait);
        assert!(said(d).contains(says), "{} does not say {says}", said(d));
        assert!(lock_wait_of(d).holders.is_empty());
    }
}

#[test]
fn two_processes_waiting_for_each_other_s_flock_are_a_deadlock() {
    use LockAccess::*;
    use LockClass::*;
    // 1 holds a (ino 10) through fd 3 and waits for b (ino 20) on fd 4; 2 the reverse.
    let on = |ino: u64, l: FileLock| FileLock { ino, ..l };
    let file_of = |ino: u64, holder: i32, waiter: i32, verified: bool| {
        let held = on(ino, line(1, false, Flock, Write, holder));
        let found = if verified {
            vec![holding(holder, 3, &held)]
        } else {
            vec![]
        };
        let mut f = file(vec![held, on(ino, line(1, true, Flock, Write, waiter))], found, &[]);
        f.ino = ino;
        if !verified {
            f.unsearchable = vec![holder];
        }
        f
    };
    let waiter = |pid: i32, holds: u64, wants: u64| {
        process(
            pid,
            t(pid, 'S', 73, &[4, 2], "locks_lock_inode_wait"),
            &[file_fd(3, holds), file_fd(4, wants)],
        )
    };
    let run = |verified: bool| {
        diagnosed(
            vec![waiter(1, 10, 20), waiter(2, 20, 10)],
            Some(Fact::Ok(vec![file_of(20, 2, 1, true), file_of(10, 1, 2, verified)])),
        )
    };
    let d = run(true);
    for (me, other) in [(1, 2), (2, 1)] {
        let mine = d.get(me).unwrap();
        assert_eq!(mine.verdict, Verdict::Deadlock, "{mine:#?}");
        assert_eq!(said(mine), format!("{me} waits in flock on fd 4 for a lock held by {other}; {other} waits in flock on fd 4 for a lock held by {me}"));
    }
    // A holder named by /proc/locks but not verified: no deadlock claimed.
    let d = run(false);
    assert_eq!(d.get(1).unwrap().verdict, Verdict::LockWait, "{:#?}", d.get(1));
}

/// A read of a terminal, by its fd's link or (fd unknown) the kernel stack.
#[test]
fn reading_a_terminal_is_terminal_input_and_a_pty_master_is_not() {
    let reader = |link: &str| record('S', 0, &[t(PID, 'S', 0, &[0], "wait_woken")], &[fd(0, link, 0o2, None)]);
    let cases = [
        ("/dev/pts/3", Verdict::TerminalInput),
        ("/dev/tty1", Verdict::TerminalInput),
        ("/dev/ptmx", Verdict::BlockedOnRead),
        ("/dev/null", Verdict::BlockedOnRead),
    ];
    for (link, expected) in cases {
        let d = verdict_of("x86_64", &reader(link));
        assert_eq!(d.verdict, expected, "{link}: {d:#?}");
    }
    let d = verdict_of("x86_64", &reader("/dev/pts/3"));
    assert_eq!(said(&d), "main thread waiting for someone to type on /dev/pts/3 (fd 0)");
    // No syscall (not readable): a generic wchan and a stack in the tty's
    // read, or an old kernel's wchan that says so itself.
    let mut r = record('S', 0, &[wchan_only(PID, 'S', "wait_woken")], &[]);
    for sample in &mut r.samples {
        if let Fact::Ok(threads) = &mut sample.threads {
            let frames = ["wait_woken+0x89/0x90", "n_tty_read+0x4bd/0x660", "tty_read+0x11f/0x290"];
            threads[0].kernel_stack = Some(Fact::Ok(frames.map(String::from).to_vec()));
        }
    }
    let old = record('S', 0, &[wchan_only(PID, 'S', "n_tty_read")], &[]);
    for r in [r, old] {
        let d = verdict_of("x86_64", &r);
        assert_eq!(d.verdict, Verdict::TerminalInput, "{d:#?}");
        assert_eq!(said(&d), "main thread waiting for someone to type on its terminal");
    }
}

#[test]
fn a_job_stopped_for_touching_its_terminal_is_told_to_come_to_the_foreground() {
    // (exit code in stat: the stop signal, until the parent collects it)
    let stopped = |exit_code: Option<i32>, tty_nr: i32, pgrp: i32, tpgid: i32, nr: i64| {
        let mut r = record(
            'T',
            0,
            &[t(PID, 'T', nr, &[0], "do_signal_stop")],
            &[fd(0, "/dev/pts/3", 0o2, None)],
        );
        for sample in &mut r.samples {
            if let Fact::Ok(stat) = &mut sample.stat {
                (stat.exit_code, stat.tty_nr, stat.pgrp, stat.tpgid) =
                    (exit_code, Some(tty_nr), Some(pgrp), Some(tpgid));
            }
        }
        r
    };
    let pts3 = (136 << 8) | 3;
    let cases = [
        (
            stopped(Some(21), pts3, 100, 90, 0),
            "stopped in the background of /dev/pts/3 when it read from the terminal (SIGTTIN)",
        ),
        (
            stopped(Some(22), pts3, 100, 90, 1),
            "stopped in the background of /dev/pts/3 when it wrote to the terminal (SIGTTOU)",
        ),
        (
            stopped(Some(0), pts3, 100, 90, 0),
            "stopped in the background of /dev/pts/3, in a read of the terminal (job control)",
        ),
        (
            stopped(Some(19), pts3, 100, 90, 0),
            "stopped by a signal (SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU)",
        ),
        (
            stopped(Some(0), pts3, 100, 90, 1),
            "stopped by a signal (SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU)",
        ),
        (
            stopped(Some(21), 0, 100, -1, 0),
            "stopped by a signal (SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU)",
        ),
        (
            stopped(Some(21), pts3, 100, 100, 0),
            "stopped by a signal (SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU)",
        ),
    ];
    for (r, says) in cases {
        let d = verdict_of("x86_64", &r);
        assert_eq!((d.verdict, said(&d).as_str()), (Verdict::Stopped, says));
        let next = crate::describe::next_step(d.deciding(), PID).unwrap();
        match says.starts_with("stopped in the background") {
            true => assert!(next.contains("fg in the shell"), "{next}"),
            false => assert!(next.starts_with("resume it with kill -CONT"), "{next}"),
        }
    }
}

#[test]
fn dns_waits_name_the_server_and_other_udp_waits_the_remote() {
    let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
    let udp = |remote: &str| UdpSocket {
        inode: 77,
        local: addr("127.0.0.1:40000"),
        remote: addr(remote),
        state: if remote.ends_with(":0") {
            "UNCONNECTED"
        } else {
            "ESTABLISHED"
        }
        .into(),
        rx_queue: 0,
        tx_queue: 0,
    };
    let with = |thread: T, udp: Option<UdpSocket>, unix: Option<UnixSocket>| {
        let mut r = record('S', 0, &[thread], &[fd(3, "socket:[77]", 0o2, None)]);
        for sample in &mut r.samples {
            sample.sockets = Fact::Ok(Sockets {
                source: "sock_diag".into(),
                udp: udp.clone().into_iter().collect(),
                unix: unix.clone().into_iter().collect(),
                ..Sockets::default()
            });
        }
        r
    };
    let resolved = UnixSocket {
        inode: 77,
        kind: "stream".into(),
        state: "ESTABLISHED".into(),
        path: None,
        peer_inode: Some(78),
        peer_path: Some(TargetString::from("/run/systemd/resolve/io.systemd.Resolve")),
        rqueue: Some(0),
        wqueue: Some(0),
        wmem_alloc: None,
        sndbuf: None,
    };
    let poll = || t(PID, 'S', 7, &[0x7ff0, 1, 5000], "do_sys_poll");
    let read = || t(PID, 'S', 0, &[3], "__skb_wait_for_more_packets");
    let cases = [
        (with(poll(), Some(udp("127.0.0.53:53")), None), Verdict::BlockedOnRead, "main thread waiting for a DNS answer from 127.0.0.53:53, in poll (its resolver's socket is fd 3)"),
        (with(read(), Some(udp("10.0.0.2:53")), None), Verdict::BlockedOnRead, "main thread waiting for a DNS answer from 10.0.0.2:53 (fd 3, in read)"),
        (with(read(), None, Some(resolved)), Verdict::BlockedOnRead, "main thread waiting for a DNS answer from systemd-resolved (/run/systemd/resolve/io.systemd.Resolve) (fd 3, in read)"),
        (with(poll(), Some(udp("127.0.0.1:5353")), None), Verdict::IdleInEpoll, "main thread idle in poll"),
        (with(poll(), Some(udp("0.0.0.0:0")), None), Verdict::IdleInEpoll, "main thread idle in poll"),
        (with(read(), Some(udp("127.0.0.1:5353")), None), Verdict::BlockedOnRead, "main thread blocked reading fd 3, UDP 127.0.0.1:40000 -> 127.0.0.1:5353 ESTABLISHED (recv-q 0)"),
        (with(read(), Some(udp("0.0.0.0:0")), None), Verdict::BlockedOnRead, "main thread blocked reading fd 3, UDP 127.0.0.1:40000 UNCONNECTED (recv-q 0)"),
    ];
    for (r, verdict, says) in cases {
        let d = verdict_of("x86_64", &r);
        assert_eq!((d.verdict, said(&d).as_str()), (verdict, says));
    }
}

/// A FIFO's other ends, found by its inode; a wait on a FIFO is never a
/// deadlock (anyone may still open its path).
#[test]
fn fifo_ends_are_named_and_never_make_a_deadlock() {
    let fifo = |fd: i32, flags: u32| {
        let mut f = file_fd(fd, 900);
        f.target = TargetString::from("/run/app/queue");
        if let Fact::Ok(info) = &mut f.info {
            info.flags = Some(flags);
        }
        f
    };
    // 1 reads the FIFO (fd 3) and holds the write end of 2's; 2 the reverse.
    let reader = |pid: i32, r: u64, w: u64| {
        let mut read_end = fifo(3, 0);
        let mut write_end = fifo(4, 1);
        for (f, ino) in [(&mut read_end, r), (&mut write_end, w)] {
            if let Fact::Ok(info) = &mut f.info {
                info.ino = Some(ino);
            }
        }
        read_end.pipe = Some(Fact::Ok(PipeFill {
            buffered_bytes: 0,
            capacity_bytes: 65536,
        }));
        process(pid, t(pid, 'S', 0, &[3], "anon_pipe_read"), &[read_end, write_end])
    };
    let holder = |inode: u64, pid: i32, fd: i32, flags: u32| Holder {
        inode,
        pid,
        fd,
        flags: Some(flags),
        comm: Some(TargetString::from("app")),
    };
    let mut snapshot = snapshot("x86_64", vec![reader(1, 900, 901), reader(2, 901, 900)], vec![]);
    snapshot.fifo_holders = vec![
        holder(900, 1, 3, 0),
        holder(900, 2, 4, 1),
        holder(901, 2, 3, 0),
        holder(901, 1, 4, 1),
    ];
    let d = diagnose_all(&World::new(&snapshot));
    let one = d.get(1).unwrap();
    assert_eq!(one.verdict, Verdict::BlockedOnRead, "{one:#?}");
    assert_eq!(
        said(one),
        "main thread blocked reading fd 3, a FIFO /run/app/queue (read end), 0/65536 bytes buffered, written by pid 2 (app) fd 4"
    );
}

/// A login shell at its prompt (the session leader reading its terminal) is
/// a person's session: info, so a scan of a host with people logged in does
/// not page; anything else waiting for a key (an agent) is warn.
#[test]
fn a_session_leader_reading_its_terminal_is_only_info() {
    for (session, severity) in [(Some(PID), Severity::Info), (Some(1), Severity::Warn)] {
        let mut r = record(
            'S',
            0,
            &[t(PID, 'S', 0, &[0], "wait_woken")],
            &[fd(0, "/dev/pts/3", 2, None)],
        );
        for s in &mut r.samples {
            if let Fact::Ok(stat) = &mut s.stat {
                stat.session = session;
            }
        }
        let d = verdict_of("x86_64", &r);
        assert_eq!((d.verdict, d.severity), (Verdict::TerminalInput, severity), "{d:#?}");
    }
}
