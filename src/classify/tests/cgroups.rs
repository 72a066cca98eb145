//! The cgroup findings from constructed facts: frozen over the thread
//! states it distorts, throttled only under a quota and only when it
//! wants CPU, memory pressure by wchan, kernel stack and events.

use super::*;
use crate::classify::finding::{CgroupEvidence, LimitKind};
use crate::linux::cgroup::MemoryWait;

const ID: &str = "4f1c2b3a5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";

fn at(version: u8, path: &str) -> CgroupAt {
    let mount = if version == 1 {
        "/sys/fs/cgroup/freezer"
    } else {
        "/sys/fs/cgroup"
    };
    CgroupAt {
        version,
        path: TargetString::from(path),
        dir: TargetString::from(format!("{mount}{path}").as_str()),
    }
}

fn cgroups(path: &str) -> Cgroups {
    Cgroups {
        membership: Fact::Ok(TargetString::from(format!("0::{path}\n").as_str())),
        freezer: None,
        cpu: None,
        memory: None,
        pressure: None,
    }
}

fn freezer(version: u8, state: FreezerState) -> Freezer {
    Freezer {
        at: at(version, "/app"),
        state,
        frozen_by: vec![TargetString::from(at(version, "/app").dir.lossy().as_ref())],
        frozen_usec: None,
    }
}

/// `record`, its last sample's cgroups as given.
fn with_last(mut r: ProcessRecord, last: Cgroups) -> ProcessRecord {
    r.samples[1].cgroups = Some(Box::new(last));
    r
}

#[test]
fn a_frozen_process_is_frozen_not_disk_wait_or_running() {
    // v1 on current kernels: D and the wchan it had; older kernels: R.
    let cases = [
        (t(PID, 'D', 230, &[0, 0, 0, 0], "hrtimer_nanosleep"), 1),
        (wchan_only(PID, 'R', ""), 1),
        // v2: S in get_signal.
        (wchan_only(PID, 'S', "get_signal"), 2),
    ];
    for (thread, version) in cases {
        let mut cg = cgroups("/app");
        cg.freezer = Some(Fact::Ok(freezer(version, FreezerState::Frozen)));
        let d = verdict_of(
            "x86_64",
            &with_last(record(thread.state, 0, std::slice::from_ref(&thread), &[]), cg),
        );
        assert_eq!(
            (d.verdict, d.severity),
            (Verdict::Frozen, Severity::Warn),
            "{}",
            said(&d)
        );
        let kinds: Vec<Verdict> = d.findings.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [Verdict::Frozen],
            "the distorted states make no finding of their own"
        );
        assert!(said(&d).contains("its cgroup /app"), "{}", said(&d));
        let next = crate::describe::next_step(d.deciding(), PID).unwrap();
        let thaw = match version {
            1 => "echo THAWED > /sys/fs/cgroup/freezer/app/freezer.state",
            _ => "echo 0 > /sys/fs/cgroup/app/cgroup.freeze",
        };
        assert!(next.contains(thaw), "{next}");
    }
}

#[test]
fn freezing_keeps_the_d_sleep_that_may_be_what_blocks_it() {
    let mut cg = cgroups("/app");
    cg.freezer = Some(Fact::Ok(freezer(1, FreezerState::Freezing)));
    let stuck = wchan_only(PID, 'D', "request_wait_answer");
    let d = verdict_of("x86_64", &with_last(record('D', 0, &[stuck], &[]), cg));
    assert_eq!(d.verdict, Verdict::Frozen);
    assert!(said(&d).starts_with("being frozen"), "{}", said(&d));
    assert!(d.findings.iter().any(|f| f.kind == Verdict::DiskWait));
}

#[test]
fn a_docker_container_is_unpaused() {
    let mut cg = cgroups(&format!("/system.slice/docker-{ID}.scope"));
    let mut f = freezer(1, FreezerState::Frozen);
    f.frozen_usec = Some(Fact::Ok(252_000_000));
    cg.freezer = Some(Fact::Ok(f));
    let thread = t(PID, 'D', 230, &[0, 0, 0, 0], "hrtimer_nanosleep");
    let d = verdict_of("x86_64", &with_last(record('D', 0, &[thread], &[]), cg));
    let next = crate::describe::next_step(d.deciding(), PID).unwrap();
    assert!(next.contains("docker unpause 4f1c2b3a5d6e"), "{next}");
    assert!(d
        .deciding()
        .evidence
        .iter()
        .any(|e| matches!(e, Evidence::Cgroup(CgroupEvidence::FrozenFor(252_000)))));
}

/// A busy loop's two samples, 1 s apart, with `ticks` of CPU, under the
/// cpu cgroup `limit` whose counters moved from `before` to `after`.
fn loop_under(ticks: u64, quota: Option<u64>, before: CpuStat, after: CpuStat) -> ProcessRecord {
    let spinning = T {
        tid: PID,
        state: 'R',
        syscall: Some(Syscall::Running),
        wchan: Some(""),
    };
    let mut r = record('R', ticks, &[spinning], &[]);
    for (sample, stat) in r.samples.iter_mut().zip([before, after]) {
        let mut cg = cgroups("/app");
        cg.cpu = Some(Fact::Ok(CpuLimit {
            at: at(1, "/app"),
            quota_us: quota,
            period_us: Some(100_000),
            stat: quota.map(|_| Fact::Ok(stat)),
        }));
        sample.cgroups = Some(Box::new(cg));
    }
    r
}

fn stat(periods: u64, throttled: u64, usec: u64) -> CpuStat {
    CpuStat {
        nr_periods: Some(periods),
        nr_throttled: Some(throttled),
        throttled_usec: Some(usec),
    }
}

#[test]
fn a_loop_held_to_its_quota_is_throttled() {
    let r = loop_under(5, Some(5000), stat(100, 80, 7_000_000), stat(110, 89, 7_900_000));
    let d = verdict_of("x86_64", &r);
    assert_eq!((d.verdict, d.severity), (Verdict::Throttled, Severity::Warn));
    assert_eq!(
        said(&d),
        "limited to 5% of a CPU (cpu.cfs_quota_us 5000 / 100000): throttled in 9 of 10 periods, 900ms held back over 1.0s"
    );
    assert!(
        d.findings.iter().any(|f| f.kind == Verdict::Running),
        "its running is still said"
    );
    assert_eq!(d.stuck_for_ms, None, "throttled is not a wait");
}

#[test]
fn no_quota_or_few_throttled_periods_or_no_appetite_is_not_throttled() {
    // A busy loop without a quota: busy, never throttled.
    let free = loop_under(99, None, CpuStat::default(), CpuStat::default());
    assert_eq!(verdict_of("x86_64", &free).verdict, Verdict::Busy);
    // A quota it rarely meets.
    let rarely = loop_under(50, Some(50_000), stat(100, 10, 0), stat(110, 12, 10_000));
    let d = verdict_of("x86_64", &rarely);
    assert!(d.findings.iter().all(|f| f.kind != Verdict::Throttled), "{}", said(&d));
    // Counters that went backwards (a cgroup made again) say nothing.
    let reset = loop_under(5, Some(5000), stat(100, 90, 0), stat(10, 9, 0));
    assert_ne!(verdict_of("x86_64", &reset).verdict, Verdict::Throttled);
    // Asleep, no CPU used: its cgroup's throttling is a sibling's.
    let mut asleep = loop_under(0, Some(5000), stat(100, 80, 0), stat(110, 89, 0));
    for sample in &mut asleep.samples {
        if let Fact::Ok(threads) = &mut sample.threads {
            threads[0] = thread(&t(PID, 'S', 230, &[0, 0, 0, 0], "hrtimer_nanosleep"));
        }
    }
    assert_eq!(verdict_of("x86_64", &asleep).verdict, Verdict::Sleeping);
}

fn memory(path: &str, current: u64, high: u64, events: MemoryEvents) -> MemoryCgroup {
    MemoryCgroup {
        at: at(2, path),
        current_bytes: Some(current),
        max: Some(Limit::Unlimited),
        high: Some(Limit::Bytes(high)),
        events: Some(events),
        under_oom: None,
    }
}

fn events(high: u64, oom_kill: u64) -> MemoryEvents {
    MemoryEvents {
        high: Some(high),
        max: Some(0),
        oom: Some(0),
        oom_kill: Some(oom_kill),
    }
}

#[test]
fn a_thread_throttled_above_memory_high_is_memory_pressure_not_disk_wait() {
    let throttled = wchan_only(PID, 'D', "mem_cgroup_handle_over_high");
    let mut r = record('D', 0, &[throttled], &[]);
    for (sample, high) in r.samples.iter_mut().zip([100, 137]) {
        let mut cg = cgroups("/app");
        cg.memory = Some(Box::new(Fact::Ok(memory(
            "/app",
            500 << 20,
            512 << 20,
            events(high, 0),
        ))));
        sample.cgroups = Some(Box::new(cg));
    }
    let d = verdict_of("x86_64", &r);
    assert_eq!((d.verdict, d.severity), (Verdict::MemoryPressure, Severity::Warn));
    assert!(
        d.findings.iter().all(|f| f.kind != Verdict::DiskWait),
        "{:?}",
        d.findings
    );
    let Claim::MemoryPressure(m) = &d.deciding().claim else {
        panic!()
    };
    assert_eq!(m.wait.as_ref().map(|w| w.0), Some(MemoryWait::OverHigh));
    assert_eq!(m.limit, Some((LimitKind::High, 512 << 20)));
    assert_eq!(m.grew.as_ref().map(|g| g.0.high), Some(Some(37)));
    assert_eq!(
        said(&d),
        "main thread throttled for being above its cgroup's memory.high (in mem_cgroup_handle_over_high): \
its cgroup /app uses 500.0 MiB of its memory.high 512.0 MiB; over 1.0s: memory.high exceeded 37 times"
    );
    assert_eq!(d.deciding().tid, Some(PID));
}

#[test]
fn reclaim_seen_only_on_the_kernel_stack_is_memory_pressure() {
    let mut r = record('D', 0, &[wchan_only(PID, 'D', "folio_wait_bit_common")], &[]);
    if let Fact::Ok(threads) = &mut r.samples[1].threads {
        threads[0].kernel_stack = Some(Fact::Ok(vec![
            "folio_wait_bit_common+0x12e/0x300".into(),
            "shrink_folio_list+0x5c1/0xc00".into(),
            "try_to_free_mem_cgroup_pages+0x10f/0x2a0".into(),
        ]));
    }
    let d = verdict_of("x86_64", &r);
    assert_eq!(d.verdict, Verdict::MemoryPressure, "{}", said(&d));
    // Waiting on the disk for reclaim's writeback is also a disk wait.
    assert!(d.findings.iter().any(|f| f.kind == Verdict::DiskWait));
}

#[test]
fn memory_events_growing_with_no_thread_in_reclaim_is_memory_pressure() {
    let mut r = record('S', 0, &[t(PID, 'S', 230, &[0, 0, 0, 0], "hrtimer_nanosleep")], &[]);
    for (sample, kills) in r.samples.iter_mut().zip([0, 1]) {
        let mut cg = cgroups("/app");
        cg.memory = Some(Box::new(Fact::Ok(memory(
            "/app",
            500 << 20,
            512 << 20,
            events(5, kills),
        ))));
        sample.cgroups = Some(Box::new(cg));
    }
    let d = verdict_of("x86_64", &r);
    assert_eq!(d.verdict, Verdict::MemoryPressure, "{}", said(&d));
    assert!(said(&d).contains("1 process OOM-killed"), "{}", said(&d));
    // The same counters standing still: nothing to say.
    for sample in &mut r.samples {
        let mut cg = cgroups("/app");
        cg.memory = Some(Box::new(Fact::Ok(memory("/app", 500 << 20, 512 << 20, events(5, 1)))));
        sample.cgroups = Some(Box::new(cg));
    }
    assert_eq!(verdict_of("x86_64", &r).verdict, Verdict::Sleeping);
}

#[test]
fn the_container_is_named_from_the_cgroup_paths() {
    let r = with_last(
        record('S', 0, &[t(PID, 'S', 230, &[0, 0, 0, 0], "hrtimer_nanosleep")], &[]),
        cgroups(&format!(
            "/kubepods.slice/kubepods-pod5f3c1a2e_7b8d_4e9f_a0b1_c2d3e4f5a6b7.slice/cri-containerd-{ID}.scope"
        )),
    );
    let c = crate::classify::cgroup::container(&r.samples[1]).unwrap();
    assert_eq!(c.id.as_deref(), Some(ID));
    assert_eq!(c.pod_uid.as_deref(), Some("5f3c1a2e-7b8d-4e9f-a0b1-c2d3e4f5a6b7"));
    let plain = with_last(
        record('S', 0, &[], &[]),
        cgroups("/user.slice/user-1000.slice/session-2.scope"),
    );
    assert_eq!(crate::classify::cgroup::container(&plain.samples[1]), None);
}
