//! Classification from constructed facts: table-driven, covering old and
//! new kernel spellings, both architectures and multi-threaded processes.

use super::finding::WaitClaim;
use super::*;
use crate::snapshot::*;
use crate::text::TargetString;

const PID: i32 = 100;

/// The diagnosis in words, as a user reads it.
fn said(d: &Diagnosis) -> String {
    crate::describe::summary(&d.deciding().claim)
}

fn host(arch: &str) -> Host {
    Host {
        hostname: None,
        kernel_release: Fact::Ok("test".into()),
        arch: arch.into(),
        clock_ticks_per_second: 100,
        page_size: 4096,
        captured_at_unix_ms: 0,
        uptime_ms: None,
        hidepid: None,
        full_view: None,
    }
}

fn stat(state: char, cpu_ticks: u64) -> Stat {
    Stat {
        comm: TargetString::from("app"),
        state,
        ppid: Some(1),
        utime: Some(cpu_ticks),
        stime: Some(0),
        starttime: Some(5000),
        ..Stat::default()
    }
}

fn denied(_what: &str) -> Reason {
    Reason::new(ReasonKind::Permission, "permission denied")
}

/// A thread: state, syscall (`None` = unreadable), wchan (`None` = unreadable).
#[derive(Clone)]
struct T {
    tid: i32,
    state: char,
    syscall: Option<Syscall>,
    wchan: Option<&'static str>,
}

fn t(tid: i32, state: char, nr: i64, args: &[u64], wchan: &'static str) -> T {
    T {
        tid,
        state,
        syscall: Some(Syscall::Blocked { nr, args: args.into() }),
        wchan: Some(wchan),
    }
}

/// Only the wchan is readable (another user's process, or old kernels).
fn wchan_only(tid: i32, state: char, wchan: &'static str) -> T {
    T {
        tid,
        state,
        syscall: None,
        wchan: Some(wchan),
    }
}

fn thread(spec: &T) -> Thread {
    Thread {
        tid: spec.tid,
        stat: Fact::Ok(stat(spec.state, 0)),
        status: Fact::Ok(ContextSwitches::default()),
        wchan: spec
            .wchan
            .map_or(Fact::Unavailable(denied("wchan")), |w| Fact::Ok(w.to_string())),
        syscall: spec
            .syscall
            .clone()
            .map_or(Fact::Unavailable(denied("syscall")), Fact::Ok),
        last_ran_at_ms: None,
        kernel_stack: None,
    }
}

fn fd(fd: i32, target: &str, flags: u32, pipe: Option<(u64, u64)>) -> Fd {
    Fd {
        fd,
        target: TargetString::from(target),
        info: Fact::Ok(FdInfo {
            flags: Some(flags),
            ..FdInfo::default()
        }),
        pipe: pipe.map(|(buffered_bytes, capacity_bytes)| {
            Fact::Ok(PipeFill {
                buffered_bytes,
                capacity_bytes,
            })
        }),
    }
}

fn sample(elapsed_ms: u64, state: char, cpu_ticks: u64, threads: &[T], fds: &[Fd]) -> Sample {
    Sample {
        elapsed_ms,
        presence: Presence::Present,
        stat: Fact::Ok(stat(state, cpu_ticks)),
        status: Fact::Ok(Status::default()),
        cmdline: Fact::Ok(vec![]),
        io: Fact::Unavailable(denied("io")),
        threads: Fact::Ok(threads.iter().map(thread).collect()),
        fds: Fact::Ok(fds.to_vec()),
        fd_totals: None,
        sockets: Fact::Ok(Sockets::default()),
        children: Fact::Ok(vec![]),
        parent: None,
        tracer: None,
        sched_now_ms: None,
        schedstat: None,
        python_stacks: None,
        cgroups: None,
    }
}

/// Two samples 1 s apart; the process gained `cpu_delta` ticks, in its
/// thread on a CPU if it has one, else in its first.
fn record(state: char, cpu_delta: u64, threads: &[T], fds: &[Fd]) -> ProcessRecord {
    let mut last = sample(1000, state, 10 + cpu_delta, threads, fds);
    if let Fact::Ok(ts) = &mut last.threads {
        let busy = ts
            .iter()
            .position(|t| t.stat.ok().is_some_and(|s| s.state == 'R'))
            .unwrap_or(0);
        if let Some(Fact::Ok(stat)) = ts.get_mut(busy).map(|t| &mut t.stat) {
            stat.utime = Some(cpu_delta);
        }
    }
    ProcessRecord {
        pid: PID,
        role: Role::Target,
        named_thread: None,
        samples: vec![sample(0, state, 10, threads, fds), last],
    }
}

fn snapshot(arch: &str, processes: Vec<ProcessRecord>, holders: Vec<Holder>) -> Snapshot {
    Snapshot {
        format: SNAPSHOT_FORMAT.to_string(),
        schema_version: 1,
        host: host(arch),
        tree: false,
        processes,
        holders,
        unsearchable: vec![],
        fifo_holders: vec![],
        locks: None,
        visibility: None,
    }
}

fn verdict_of(arch: &str, record: &ProcessRecord) -> Diagnosis {
    let snapshot = snapshot(arch, vec![record.clone()], vec![]);
    diagnose_all(&World::new(&snapshot)).remove(PID).expect("a diagnosis")
}

#[test]
fn single_threaded_waits_by_syscall_and_by_wchan_spelling() {
    use Verdict::*;
    let cases: Vec<(&str, &str, T, Verdict)> = vec![
        (
            "x86_64 epoll_wait",
            "x86_64",
            t(PID, 'S', 232, &[3], "do_epoll_wait"),
            IdleInEpoll,
        ),
        (
            "aarch64 epoll_pwait",
            "aarch64",
            t(PID, 'S', 22, &[3], "do_epoll_wait"),
            IdleInEpoll,
        ),
        (
            "x86_64 epoll_pwait2",
            "x86_64",
            t(PID, 'S', 441, &[3], "do_epoll_wait"),
            IdleInEpoll,
        ),
        (
            "old kernel ep_poll",
            "x86_64",
            wchan_only(PID, 'S', "ep_poll"),
            IdleInEpoll,
        ),
        (
            "new kernel do_epoll_wait",
            "x86_64",
            wchan_only(PID, 'S', "do_epoll_wait"),
            IdleInEpoll,
        ),
        (
            "poll with suffix",
            "x86_64",
            wchan_only(PID, 'S', "poll_schedule_timeout.constprop.0"),
            IdleInEpoll,
        ),
        (
            "x86_64 poll",
            "x86_64",
            t(PID, 'S', 7, &[0x7ff0, 1], "do_sys_poll"),
            IdleInEpoll,
        ),
        (
            "aarch64 ppoll",
            "aarch64",
            t(PID, 'S', 73, &[0x7ff0, 1], "do_sys_poll"),
            IdleInEpoll,
        ),
        (
            "futex_wait_queue_me (<=5.15)",
            "x86_64",
            wchan_only(PID, 'S', "futex_wait_queue_me"),
            FutexBlocked,
        ),
        (
            "futex_wait_queue (6.x)",
            "x86_64",
            wchan_only(PID, 'S', "futex_wait_queue"),
            FutexBlocked,
        ),
        (
            "futex_do_wait (6.16+)",
            "x86_64",
            wchan_only(PID, 'S', "futex_do_wait"),
            FutexBlocked,
        ),
        (
            "x86_64 futex WAIT_BITSET",
            "x86_64",
            t(PID, 'S', 202, &[0x10, 0x189], "futex_do_wait"),
            FutexBlocked,
        ),
        (
            "aarch64 futex WAIT",
            "aarch64",
            t(PID, 'S', 98, &[0x10, 0x80], "futex_wait_queue"),
            FutexBlocked,
        ),
        (
            "x86_64 wait4",
            "x86_64",
            t(PID, 'S', 61, &[u64::MAX], "do_wait"),
            WaitingOnChild,
        ),
        (
            "aarch64 wait4",
            "aarch64",
            t(PID, 'S', 260, &[u64::MAX], "do_wait"),
            WaitingOnChild,
        ),
        (
            "x86_64 waitid",
            "x86_64",
            t(PID, 'S', 247, &[0], "do_wait"),
            WaitingOnChild,
        ),
        (
            "wchan do_wait",
            "x86_64",
            wchan_only(PID, 'S', "do_wait"),
            WaitingOnChild,
        ),
        (
            "x86_64 clock_nanosleep",
            "x86_64",
            t(PID, 'S', 230, &[1], "hrtimer_nanosleep"),
            Sleeping,
        ),
        (
            "aarch64 nanosleep",
            "aarch64",
            t(PID, 'S', 101, &[0], "hrtimer_nanosleep"),
            Sleeping,
        ),
        (
            "x86_64 read",
            "x86_64",
            t(PID, 'S', 0, &[0], "anon_pipe_read"),
            BlockedOnRead,
        ),
        (
            "aarch64 read",
            "aarch64",
            t(PID, 'S', 63, &[0], "pipe_read"),
            BlockedOnRead,
        ),
        (
            "old pipe_read wchan",
            "x86_64",
            wchan_only(PID, 'S', "pipe_read"),
            BlockedOnRead,
        ),
        (
            "accept4",
            "x86_64",
            t(PID, 'S', 288, &[3], "inet_csk_accept"),
            BlockedOnRead,
        ),
        ("pause", "x86_64", t(PID, 'S', 34, &[], "do_sys_pause"), Sleeping),
        (
            "old pipe_write wchan",
            "x86_64",
            wchan_only(PID, 'S', "pipe_write"),
            PipeFull,
        ),
        (
            "new anon_pipe_write wchan",
            "x86_64",
            wchan_only(PID, 'S', "anon_pipe_write"),
            PipeFull,
        ),
        (
            "D state",
            "x86_64",
            t(PID, 'D', 0, &[3], "folio_wait_bit_common"),
            DiskWait,
        ),
        ("stopped", "x86_64", t(PID, 'T', 62, &[], "do_signal_stop"), Stopped),
    ];
    for (name, arch, thread, expected) in cases {
        let state = thread.state;
        let got = verdict_of(arch, &record(state, 0, &[thread], &[]));
        assert_eq!(got.verdict, expected, "{name}: {got:#?}");
    }
}

#[test]
fn a_syscall_number_means_different_things_per_arch() {
    // 232 is epoll_wait on x86_64 and mincore on aarch64.
    let thread = t(PID, 'S', 232, &[3], "");
    assert_eq!(
        verdict_of("x86_64", &record('S', 0, std::slice::from_ref(&thread), &[])).verdict,
        Verdict::IdleInEpoll
    );
    let arm = verdict_of("aarch64", &record('S', 0, &[thread], &[]));
    assert_eq!(arm.verdict, Verdict::Sleeping);
    assert!(
        matches!(
            arm.deciding().claim,
            Claim::Waiting {
                wait: WaitClaim::ParkedIn(Some("mincore")),
                ..
            }
        ),
        "{arm:#?}"
    );
}

#[test]
fn unreadable_wchan_zero_is_never_taken_for_running() {
    let thread = T {
        tid: PID,
        state: 'S',
        syscall: None,
        wchan: None,
    };
    let asleep = record('S', 0, &[thread], &[]);
    let d = verdict_of("x86_64", &asleep);
    assert_eq!(d.verdict, Verdict::Unknown);
    assert_eq!(
        d.severity,
        Severity::Info,
        "not knowing the wait of another user's process is not an alert"
    );
    assert_eq!(
        said(&d),
        "main thread asleep (state S) in a wait whystuck cannot see \
         (syscall permission denied; wchan permission denied): run as its user, or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (root has both)"
    );
    // Refused to a run that had both: more privilege is not the answer.
    let mut snapshot = snapshot("x86_64", vec![asleep], vec![]);
    snapshot.host.full_view = Some(true);
    let d = diagnose_all(&World::new(&snapshot)).remove(PID).unwrap();
    assert!(
        said(&d).ends_with("refused even with CAP_SYS_PTRACE: another user namespace or a security module (Yama, SELinux, AppArmor) keeps it hidden"),
        "{}",
        said(&d)
    );
}

#[test]
fn multi_threaded_processes_are_judged_by_the_thread_that_matters() {
    use Verdict::*;
    let futex = |tid| t(tid, 'S', 202, &[0x10, 0x80], "futex_wait_queue");
    let cases: Vec<(&str, Vec<T>, u64, Verdict)> = vec![
        (
            "node: main in epoll, helpers in futex",
            vec![
                t(PID, 'S', 232, &[3], "ep_poll"),
                futex(101),
                futex(102),
                futex(103),
                futex(104),
            ],
            0,
            IdleInEpoll,
        ),
        (
            "python: main joins, worker reads a pipe",
            vec![futex(PID), t(101, 'S', 0, &[5], "pipe_read")],
            0,
            BlockedOnRead,
        ),
        (
            "python: main joins, worker waits on a child",
            vec![futex(PID), t(101, 'S', 61, &[u64::MAX], "do_wait")],
            0,
            WaitingOnChild,
        ),
        (
            "ABBA: everyone in futex, no CPU",
            vec![futex(PID), futex(101), futex(102)],
            0,
            FutexBlocked,
        ),
        ("futex but making progress", vec![futex(PID), futex(101)], 3, Running),
        (
            "main in futex, worker burning CPU",
            vec![
                futex(PID),
                T {
                    tid: 101,
                    state: 'R',
                    syscall: Some(Syscall::Running),
                    wchan: Some(""),
                },
            ],
            95,
            Busy,
        ),
        (
            "event loop that did work",
            vec![t(PID, 'S', 232, &[3], "do_epoll_wait")],
            4,
            Running,
        ),
        (
            "waiting on a child is not overridden by progress",
            vec![t(PID, 'S', 61, &[1], "do_wait")],
            4,
            WaitingOnChild,
        ),
        (
            "one thread in D among sleepers",
            vec![
                t(PID, 'S', 232, &[3], "ep_poll"),
                t(101, 'D', 0, &[4], "nfs_wait_bit_killable"),
            ],
            0,
            DiskWait,
        ),
    ];
    for (name, threads, cpu, expected) in cases {
        let got = verdict_of("x86_64", &record('S', cpu, &threads, &[]));
        assert_eq!(got.verdict, expected, "{name}: {got:#?}");
    }
}

#[test]
fn several_findings_hold_at_once_and_the_most_severe_wins() {
    let threads = [t(PID, 'S', 232, &[5], "do_epoll_wait")];
    let fds = [
        fd(3, "pipe:[77]", 0o4000, Some((65536, 65536))),
        fd(4, "pipe:[77]", 0o4001, Some((65536, 65536))),
        fd(5, "anon_inode:[eventpoll]", 2, None),
    ];
    let d = verdict_of("x86_64", &record('S', 0, &threads, &fds));
    assert_eq!(d.verdict, Verdict::WakeupFdEagain);
    assert_eq!(d.severity, Severity::Critical);
    let kinds: Vec<Verdict> = d.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [Verdict::WakeupFdEagain, Verdict::IdleInEpoll]);
    assert_eq!(
        d.deciding().claim,
        Claim::WakeupFdFull {
            socketpair: false,
            write_fd: 4,
            read_fd: 3
        }
    );
    assert!(said(&d).contains("self-pipe fd 4 -> fd 3 is full"), "{}", said(&d));
}

#[test]
fn a_blocking_self_pipe_or_a_pipe_with_room_is_not_a_lost_wakeup() {
    let threads = [t(PID, 'S', 232, &[5], "do_epoll_wait")];
    for (write_flags, buffered) in [(0o1, 65536), (0o4001, 100)] {
        let fds = [
            fd(3, "pipe:[77]", 0o4000, Some((buffered, 65536))),
            fd(4, "pipe:[77]", write_flags, Some((buffered, 65536))),
        ];
        let d = verdict_of("x86_64", &record('S', 0, &threads, &fds));
        assert_eq!(
            d.verdict,
            Verdict::IdleInEpoll,
            "flags {write_flags:o}, {buffered} bytes: {d:#?}"
        );
    }
}

#[test]
fn a_pipe_is_full_when_less_than_a_page_is_free_or_a_writer_is_blocked() {
    let writer = [t(PID, 'S', 1, &[4, 0, 4096], "anon_pipe_write")];
    // 62000 of 65536 bytes: below capacity, but the blocked writer says full.
    let d = verdict_of(
        "x86_64",
        &record('S', 0, &writer, &[fd(4, "pipe:[9]", 1, Some((62000, 65536)))]),
    );
    assert_eq!(d.verdict, Verdict::PipeFull);
    assert!(
        said(&d).contains("fd 4, a pipe (write end), 62000/65536 bytes buffered"),
        "{}",
        said(&d)
    );
    let report = crate::report::build(snapshot(
        "x86_64",
        vec![record(
            'S',
            0,
            &[t(PID, 'S', 232, &[9], "ep_poll")],
            &[fd(4, "pipe:[9]", 0, Some((62000, 65536)))],
        )],
        vec![],
    ));
    assert_eq!(
        report.processes[0].detail.as_ref().unwrap().pipes[0].full,
        Some(true),
        "62000 leaves less than a page free"
    );
}

#[test]
fn zombie_names_its_parent_and_pid_reuse_is_dead() {
    let mut zombie = record('Z', 0, &[], &[]);
    zombie.samples[1].parent = Some(Box::new(Relative {
        pid: 42,
        stat: Fact::Ok(stat('S', 0)),
    }));
    let d = verdict_of("x86_64", &zombie);
    assert_eq!(d.verdict, Verdict::Dead);
    assert!(
        matches!(&d.deciding().claim, Claim::Zombie { parent: Some(p) } if p.pid == 42),
        "{d:#?}"
    );
    assert_eq!(said(&d), "zombie: exited, not reaped by its parent pid 42 (app)");

    let mut reused = record('S', 0, &[t(PID, 'S', 230, &[1], "hrtimer_nanosleep")], &[]);
    if let Fact::Ok(s) = &mut reused.samples[1].stat {
        s.starttime = Some(9999);
    }
    let d = verdict_of("x86_64", &reused);
    assert_eq!(d.verdict, Verdict::Dead);
    assert_eq!(d.deciding().claim, Claim::PidReused);
}

mod cgroups;
mod deadlocks;
mod holders;
mod progress;
