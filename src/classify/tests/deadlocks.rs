//! The wait-for graph from constructed facts: cycles of processes blocked
//! on each other's pipes, and the cases that must not be called deadlock.

use super::*;

/// A process `pid` whose only thread waits as given, holding `fds`.
fn process(pid: i32, thread: T, fds: &[Fd]) -> ProcessRecord {
    let mut r = record('S', 0, &[T { tid: pid, ..thread }], fds);
    r.pid = pid;
    r
}

fn holder(inode: u64, pid: i32, fd: i32, flags: u32) -> Holder {
    Holder {
        inode,
        pid,
        fd,
        flags: Some(flags),
        comm: Some(TargetString::from("app")),
    }
}

fn diagnoses(processes: Vec<ProcessRecord>, holders: Vec<Holder>) -> Diagnoses {
    let snapshot = snapshot("x86_64", processes, holders);
    diagnose_all(&World::new(&snapshot))
}

fn cycle_of(d: &Diagnosis) -> Option<Vec<i32>> {
    d.findings
        .iter()
        .find(|f| f.kind == Verdict::Deadlock)
        .and_then(|f| f.cycle.clone())
}

const READ: u32 = 0;
const WRITE: u32 = 1;

/// Process `pid` blocked reading fd 0 (pipe `read_inode`), holding fd 1
/// (the write end of pipe `write_inode`).
fn pipe_reader(pid: i32, read_inode: u64, write_inode: u64) -> ProcessRecord {
    process(
        pid,
        t(pid, 'S', 0, &[0], "pipe_read"),
        &[
            fd(0, &format!("pipe:[{read_inode}]"), READ, Some((0, 65536))),
            fd(1, &format!("pipe:[{write_inode}]"), WRITE, Some((0, 65536))),
        ],
    )
}

fn pipe_holders(links: &[(i32, u64, u64)]) -> Vec<Holder> {
    links
        .iter()
        .flat_map(|&(pid, read_inode, write_inode)| {
            [holder(read_inode, pid, 0, READ), holder(write_inode, pid, 1, WRITE)]
        })
        .collect()
}

#[test]
fn a_ring_of_three_blocked_readers_is_one_deadlock_cycle() {
    let ring = [(1, 10, 30), (2, 20, 10), (3, 30, 20)];
    let ps = ring.iter().map(|&(pid, r, w)| pipe_reader(pid, r, w)).collect();
    let d = diagnoses(ps, pipe_holders(&ring));
    assert_eq!(d.get(1).unwrap().verdict, Verdict::Deadlock);
    assert_eq!(cycle_of(d.get(1).unwrap()), Some(vec![1, 2, 3]));
    assert_eq!(cycle_of(d.get(2).unwrap()), Some(vec![2, 3, 1]));
    assert_eq!(
        said(d.get(1).unwrap()),
        "1 is blocked reading fd 0 (pipe, empty); its only writer is 2; \
         2 is blocked reading fd 0 (pipe, empty); its only writer is 3; \
         3 is blocked reading fd 0 (pipe, empty); its only writer is 1"
    );
}

#[test]
fn no_deadlock_while_any_other_end_can_still_move() {
    // 1 and 2 read each other's pipes; 3 also holds the write end of 1's
    // pipe and is an event loop that can still write.
    let pair = [(1, 10, 20), (2, 20, 10)];
    let writer_loop = process(
        3,
        t(3, 'S', 232, &[5], "do_epoll_wait"),
        &[fd(4, "pipe:[10]", WRITE, Some((0, 65536)))],
    );
    let mut holders = pipe_holders(&pair);
    holders.push(holder(10, 3, 4, WRITE));
    let d = diagnoses(
        vec![pipe_reader(1, 10, 20), pipe_reader(2, 20, 10), writer_loop],
        holders.clone(),
    );
    assert_eq!(
        d.get(1).unwrap().verdict,
        Verdict::BlockedOnRead,
        "{:#?}",
        d.get(1).unwrap()
    );
    assert!(cycle_of(d.get(2).unwrap()).is_none());

    // A writer that was never sampled is unknown: never claim a deadlock on a guess.
    let d = diagnoses(vec![pipe_reader(1, 10, 20), pipe_reader(2, 20, 10)], holders);
    assert!(cycle_of(d.get(1).unwrap()).is_none(), "{:#?}", d.get(1).unwrap());

    // Without the third writer it is a deadlock.
    let d = diagnoses(
        vec![pipe_reader(1, 10, 20), pipe_reader(2, 20, 10)],
        pipe_holders(&pair),
    );
    assert_eq!(cycle_of(d.get(1).unwrap()), Some(vec![1, 2]));
}

/// What is not seen could hold the other end: with processes that could
/// not be searched, or hidden by /proc, the same ring is not a deadlock,
/// and the text says "found".
#[test]
fn no_deadlock_is_claimed_when_some_holders_cannot_be_seen() {
    let ring = [(1, 10, 20), (2, 20, 10)];
    let partial = |edit: &dyn Fn(&mut Snapshot)| {
        let ps = ring.iter().map(|&(pid, r, w)| pipe_reader(pid, r, w)).collect();
        let mut snapshot = snapshot("x86_64", ps, pipe_holders(&ring));
        edit(&mut snapshot);
        diagnose_all(&World::new(&snapshot))
    };
    let unsearchable = partial(&|s| {
        s.unsearchable.push(Unsearchable {
            pid: 99,
            comm: None,
            reason: denied("fd"),
        })
    });
    let hidden = partial(&|s| s.host.hidepid = Some("invisible".into()));
    for (d, note) in [
        (unsearchable, "1 process not searchable"),
        (hidden, "/proc hides other users' processes (hidepid=invisible)"),
    ] {
        assert_eq!(
            d.get(1).unwrap().verdict,
            Verdict::BlockedOnRead,
            "{:#?}",
            d.get(1).unwrap()
        );
        assert!(cycle_of(d.get(1).unwrap()).is_none());
        let said = said(d.get(1).unwrap());
        assert!(
            said.contains(&format!("written by pid 2 (app) fd 1 ({note})")),
            "{said}"
        );
    }
    // Noaccess shows every process (unreadable ones are unsearchable):
    // alone, it hides nothing.
    let noaccess = partial(&|s| s.host.hidepid = Some("noaccess".into()));
    assert_eq!(cycle_of(noaccess.get(1).unwrap()), Some(vec![1, 2]));
}

#[test]
fn a_process_blocked_writing_the_pipe_only_it_reads_deadlocks_itself() {
    let p = process(
        1,
        t(1, 'S', 1, &[4], "pipe_write"),
        &[
            fd(3, "pipe:[10]", READ, Some((65536, 65536))),
            fd(4, "pipe:[10]", WRITE, Some((65536, 65536))),
        ],
    );
    let d = diagnoses(vec![p], vec![holder(10, 1, 3, READ), holder(10, 1, 4, WRITE)]);
    assert_eq!(cycle_of(d.get(1).unwrap()), Some(vec![1]));
    assert_eq!(
        said(d.get(1).unwrap()),
        "1 is blocked writing fd 4 (pipe, full); its only reader is 1"
    );
}

#[test]
fn a_process_waiting_behind_a_deadlock_is_stuck_too() {
    let pair = [(1, 10, 20), (2, 20, 10)];
    let mut waiter = process(3, t(3, 'S', 61, &[1], "do_wait"), &[]);
    for s in &mut waiter.samples {
        s.children = Fact::Ok(vec![Relative {
            pid: 1,
            stat: Fact::Ok(stat('S', 0)),
        }]);
    }
    let d = diagnoses(
        vec![pipe_reader(1, 10, 20), pipe_reader(2, 20, 10), waiter],
        pipe_holders(&pair),
    );
    assert_eq!(d.get(3).unwrap().verdict, Verdict::Deadlock, "{:#?}", d.get(3).unwrap());
    assert_eq!(cycle_of(d.get(3).unwrap()), Some(vec![1, 2]));
    assert!(
        said(d.get(3).unwrap()).starts_with("3 waits in wait4 for 1, and that is a deadlock: "),
        "{}",
        said(d.get(3).unwrap())
    );
}

/// An epoll fd `epfd` watching each (fd, events).
fn epoll(epfd: i32, set: &[(i32, u32)]) -> Fd {
    let mut epoll = fd(epfd, "anon_inode:[eventpoll]", 0o2_000_002, None);
    if let Fact::Ok(info) = &mut epoll.info {
        info.epoll_targets = set
            .iter()
            .map(|&(fd, events)| EpollTarget {
                fd,
                events,
                inode: None,
            })
            .collect();
    }
    epoll
}

/// Seed 000 on Node: the child's stdout (fd 1, pipe 10) is full and
/// registered for EPOLLOUT in epoll fd 13, beside its own wakeup pipe
/// (fds 14/15, pipe 11) and eventfd 16; its parent (1) reads pipe 10 but
/// waits in wait4 for the child. `epoll_timeout` is epoll_wait's argument 3.
fn node_writing_to_a_waiting_parent(epoll_timeout: u64, eventfd_flags: u32) -> Diagnoses {
    let mut parent = process(
        1,
        t(1, 'S', 61, &[2], "do_wait"),
        &[fd(3, "pipe:[10]", READ, Some((65536, 65536)))],
    );
    for s in &mut parent.samples {
        s.children = Fact::Ok(vec![Relative {
            pid: 2,
            stat: Fact::Ok(stat('S', 0)),
        }]);
    }
    let child = process(
        2,
        t(2, 'S', 281, &[13, 0x7ffd_0000, 1024, epoll_timeout], "do_epoll_wait"),
        &[
            fd(1, "pipe:[10]", WRITE | 0o4000, Some((65536, 65536))),
            epoll(13, &[(1, 0x1c), (14, 0x19), (16, 0x19)]),
            fd(14, "pipe:[11]", READ | 0o4000, Some((0, 65536))),
            fd(15, "pipe:[11]", WRITE | 0o4000, Some((0, 65536))),
            fd(16, "anon_inode:[eventfd]", eventfd_flags, None),
        ],
    );
    let holders = vec![
        holder(10, 1, 3, READ),
        holder(10, 2, 1, WRITE),
        holder(11, 2, 14, READ),
        holder(11, 2, 15, WRITE),
    ];
    diagnoses(vec![parent, child], holders)
}

#[test]
fn an_event_loop_waiting_to_write_into_a_full_pipe_is_pipe_full_and_in_the_cycle() {
    let forever = 0xffff_ffff; // -1
    let d = node_writing_to_a_waiting_parent(forever, 0o2_004_002);
    let child = d.get(2).unwrap();
    assert_eq!((child.verdict, child.severity), (Verdict::Deadlock, Severity::Critical));
    assert_eq!(cycle_of(child), Some(vec![2, 1]));
    assert_eq!(cycle_of(d.get(1).unwrap()), Some(vec![1, 2]), "found from either pid");
    let pipe_full = child.findings.iter().find(|f| f.kind == Verdict::PipeFull).unwrap();
    match &pipe_full.claim {
        Claim::BlockedWriting {
            fd,
            pending_in: Some("epoll_pwait"),
        } => {
            assert_eq!(fd.fd, 1);
            assert_eq!(fd.peers.iter().map(|p| (p.pid, p.fd)).collect::<Vec<_>>(), [(1, 3)]);
        }
        other => panic!("{other:?}"),
    }
    assert!(said(child).starts_with("2 waits in epoll_pwait to write fd 1 (pipe, full); its only reader is 1"));
}

#[test]
fn an_event_loop_a_timer_or_an_unknown_fd_can_wake_is_pipe_full_but_no_deadlock() {
    // With a timeout, a timer can still wake the loop (and its handler end
    // the process); an eventfd without close-on-exec may be held elsewhere.
    for (timeout, eventfd_flags) in [(5000, 0o2_004_002), (0xffff_ffff, 0o4002)] {
        let d = node_writing_to_a_waiting_parent(timeout, eventfd_flags);
        let child = d.get(2).unwrap();
        assert_eq!(
            child.verdict,
            Verdict::PipeFull,
            "{timeout} {eventfd_flags:o}: {child:#?}"
        );
        assert_eq!(cycle_of(child), None);
        assert_eq!(d.get(1).unwrap().verdict, Verdict::WaitingOnChild);
        assert_eq!(
            d.get(1).unwrap().severity,
            Severity::Critical,
            "waiting on a stuck child"
        );
    }
}
