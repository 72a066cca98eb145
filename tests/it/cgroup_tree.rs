//! Cgroups from fake trees (`--proc-root DIR/proc`, the cgroup file system
//! under `DIR/sys/fs/cgroup` as `DIR/proc/self/mountinfo` lays it out):
//! every runtime's container paths, a frozen v2 cgroup, memory pressure,
//! and the paths that must not be trusted.

use crate::support::{evidence, stat_line, whystuck, FakeProc};
use serde_json::{json, Value};

const ID: &str = "4f1c2b3a5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";
const UID: &str = "5f3c1a2e-7b8d-4e9f-a0b1-c2d3e4f5a6b7";

/// A v2 host: the unified hierarchy at /sys/fs/cgroup.
const V2_MOUNTINFO: &str = "22 1 0:21 / /proc rw - proc proc rw\n\
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n";

/// Process 42 asleep in `wchan` (state `state`), in the cgroup `cgroup`
/// (a `/proc/PID/cgroup` file; none when `None`).
fn process_in(fake: &FakeProc, state: char, wchan: &str, cgroup: Option<&str>) {
    fake.process(
        42,
        &stat_line(42, "app", state, 1, 0),
        "230 0x1 0x0 0x0 0x0 0x0 0x0 0x7ff 0x7ff\n",
        &format!("{wchan}\n"),
    );
    if let Some(cgroup) = cgroup {
        fake.file("42/cgroup", cgroup.as_bytes());
    }
}

fn human(fake: &FakeProc, format: &[&str]) -> String {
    let root = fake.path().to_str().unwrap();
    let mut args = vec!["--proc-root", root, "--interval", "0", "--color", "never"];
    args.extend(format);
    args.push("42");
    let run = whystuck(&args);
    assert!(run.code == 0 || run.code == 1, "exit {}: {}", run.code, run.stderr);
    run.stdout
}

#[test]
fn each_runtime_s_container_paths_name_it_and_a_plain_slice_names_none() {
    let uid_ = UID.replace('-', "_");
    let container = |runtime: Value, pod: bool| json!({"runtime": runtime, "id": ID, "pod_uid": if pod { json!(UID) } else { Value::Null }});
    let cases: Vec<(String, Value)> = vec![
        (format!("0::/system.slice/docker-{ID}.scope\n"), container(json!("docker"), false)),
        (
            format!("12:cpu,cpuacct:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n"),
            container(json!("docker"), false),
        ),
        (
            format!("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope\n"),
            container(json!("containerd"), true),
        ),
        (
            format!("0::/kubepods-besteffort-pod{uid_}.slice:cri-containerd:{ID}\n"),
            container(json!("containerd"), true),
        ),
        (
            format!("0::/kubepods.slice/kubepods-pod{uid_}.slice/crio-{ID}.scope\n"),
            container(json!("cri-o"), true),
        ),
        (format!("4:memory:/kubepods/burstable/pod{UID}/{ID}\n0::/\n"), container(Value::Null, true)),
        (format!("0::/machine.slice/libpod-{ID}.scope/container\n"), container(json!("podman"), false)),
        // The monitor beside a container is not in it.
        (format!("0::/machine.slice/libpod-conmon-{ID}.scope\n"), Value::Null),
        ("0::/user.slice/user-1000.slice/session-4.scope\n".into(), Value::Null),
        // Inside a cgroup namespace the container's own cgroup is `/`.
        ("0::/\n".into(), Value::Null),
    ];
    for (cgroup, expected) in cases {
        let fake = FakeProc::new();
        process_in(&fake, 'S', "hrtimer_nanosleep", Some(&cgroup));
        let p = fake.diagnose(42);
        assert_eq!(p["container"], expected, "{cgroup}");
        assert_eq!(p["verdict"], "sleeping", "{cgroup}: {p:#}");
    }
    // No cgroup file at all (a kernel without cgroups): null, and said why.
    let fake = FakeProc::new();
    process_in(&fake, 'S', "hrtimer_nanosleep", None);
    let p = fake.diagnose(42);
    assert!(p["container"].is_null());
    assert!(
        p["unavailable"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["what"] == "cgroup"),
        "{p:#}"
    );
}

#[test]
fn the_container_is_in_the_human_header_and_on_the_prometheus_verdict_series() {
    let fake = FakeProc::new();
    let uid_ = UID.replace('-', "_");
    let path = format!("0::/kubepods.slice/kubepods-pod{uid_}.slice/cri-containerd-{ID}.scope\n");
    process_in(&fake, 'S', "hrtimer_nanosleep", Some(&path));
    let text = human(&fake, &[]);
    assert!(
        text.contains(&format!("\n  container: containerd 4f1c2b3a5d6e, pod {UID}\n")),
        "{text}"
    );
    let prom = human(&fake, &["--format", "prometheus"]);
    let info: Vec<&str> = prom
        .lines()
        .filter(|l| l.starts_with("whystuck_process_verdict_info{"))
        .collect();
    assert_eq!(info.len(), 1, "{prom}");
    assert!(
        info[0].contains(&format!(",container_id=\"{ID}\",pod_uid=\"{UID}\"}} 1")),
        "{prom}"
    );
    // Only there: the other series keep their labels.
    assert_eq!(prom.matches("container_id=").count(), 1, "{prom}");
}

#[test]
fn a_frozen_v2_cgroup_is_frozen_for_as_long_as_the_kernel_says() {
    let fake = FakeProc::new();
    process_in(&fake, 'S', "get_signal", Some("0::/app.slice/batch.service\n"));
    fake.file("self/mountinfo", V2_MOUNTINFO.as_bytes());
    let dir = "sys/fs/cgroup/app.slice/batch.service";
    fake.sys_file(&format!("{dir}/cgroup.events"), b"populated 1\nfrozen 1\n");
    fake.sys_file(&format!("{dir}/cgroup.freeze"), b"1\n");
    fake.sys_file(&format!("{dir}/cgroup.stat.local"), b"frozen_usec 252000000\n");
    fake.sys_file("sys/fs/cgroup/app.slice/cgroup.freeze", b"0\n");
    let p = fake.diagnose(42);
    assert_eq!(p["verdict"], "frozen", "{p:#}");
    assert_eq!(p["severity"], "warn");
    assert_eq!(
        p["summary"],
        "frozen: its cgroup /app.slice/batch.service is frozen (v2 cgroup.freeze)"
    );
    let freezer = &p["cgroup"]["freezer"];
    assert_eq!(freezer["state"], "frozen");
    assert_eq!(freezer["frozen_seconds"], 252.0);
    assert_eq!(freezer["frozen_by"], json!(["/sys/fs/cgroup/app.slice/batch.service"]));
    assert!(evidence(&p).contains("frozen 4m12s in all"), "{p:#}");
    assert_eq!(
        p["findings"][0]["next_step"],
        "thaw it if it should run: echo 0 > /sys/fs/cgroup/app.slice/batch.service/cgroup.freeze"
    );
    let kinds: Vec<&Value> = p["findings"].as_array().unwrap().iter().map(|f| &f["kind"]).collect();
    assert_eq!(kinds, [&json!("frozen")], "get_signal is the freezer's: {p:#}");
}

#[test]
fn a_thread_throttled_above_memory_high_is_memory_pressure_with_the_figures() {
    let fake = FakeProc::new();
    process_in(
        &fake,
        'D',
        "mem_cgroup_handle_over_high",
        Some("0::/app.slice/batch.service\n"),
    );
    fake.file("self/mountinfo", V2_MOUNTINFO.as_bytes());
    let dir = "sys/fs/cgroup/app.slice/batch.service";
    for (file, contents) in [
        ("cgroup.events", "populated 1\nfrozen 0\n"),
        ("cgroup.freeze", "0\n"),
        ("memory.current", "535822336\n"),
        ("memory.max", "max\n"),
        ("memory.high", "536870912\n"),
        ("memory.events", "low 0\nhigh 4711\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"),
        (
            "memory.pressure",
            "some avg10=45.12 avg60=20.00 avg300=5.50 total=123456\nfull avg10=30.00 avg60=10.00 avg300=2.00 total=6543\n",
        ),
        ("cpu.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=10\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
        ("io.pressure", "some avg10=3.50 avg60=1.00 avg300=0.20 total=99\nfull avg10=3.00 avg60=1.00 avg300=0.20 total=90\n"),
    ] {
        fake.sys_file(&format!("{dir}/{file}"), contents.as_bytes());
    }
    let p = fake.diagnose(42);
    assert_eq!(p["verdict"], "memory-pressure", "{p:#}");
    assert_eq!(
        p["summary"],
        "main thread throttled for being above its cgroup's memory.high (in mem_cgroup_handle_over_high): \
its cgroup /app.slice/batch.service uses 511.0 MiB of its memory.high 512.0 MiB"
    );
    let said = evidence(&p);
    assert!(
        said.contains("memory.events: high 4711, max 0, oom 0, oom_kill 0"),
        "{said}"
    );
    assert!(
        said.contains("memory some 45.12% full 30.00%; io some 3.50% full 3.00%"),
        "cpu, which did not stall, is left out: {said}"
    );
    assert!(
        p["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["kind"] != "disk-wait"),
        "{p:#}"
    );
    let memory = &p["cgroup"]["memory"];
    assert_eq!(memory["high_bytes"], 536_870_912);
    assert!(memory["max_bytes"].is_null(), "no limit is null: {memory}");
    assert_eq!(memory["events"]["high"], 4711);
    assert_eq!(p["cgroup"]["pressure"]["memory"]["some"]["avg10"], 45.12);
    assert!(p["findings"][0]["next_step"]
        .as_str()
        .unwrap()
        .contains("/sys/fs/cgroup/app.slice/batch.service/memory.high"));
}

#[test]
fn cgroup_paths_that_cannot_be_trusted_are_unavailable_and_escaped() {
    // Outside this run's cgroup namespace the kernel writes `/..`: not
    // followed, said so.
    let fake = FakeProc::new();
    process_in(&fake, 'S', "hrtimer_nanosleep", Some("0::/../../other\n"));
    fake.file("self/mountinfo", V2_MOUNTINFO.as_bytes());
    let p = fake.diagnose(42);
    let unavailable = p["unavailable"].as_array().unwrap();
    let freezer = unavailable
        .iter()
        .find(|u| u["what"] == "cgroup freezer")
        .expect("freezer unavailable");
    assert!(freezer["reason"].as_str().unwrap().contains("outside"), "{freezer}");
    assert_eq!(p["verdict"], "sleeping");
    // A cgroup named with terminal escapes, frozen: escaped where printed.
    let fake = FakeProc::new();
    process_in(&fake, 'S', "get_signal", Some("0::/evil\x1b]0;pwned\x07\n"));
    fake.file("self/mountinfo", V2_MOUNTINFO.as_bytes());
    let dir = "sys/fs/cgroup/evil\x1b]0;pwned\x07";
    fake.sys_file(&format!("{dir}/cgroup.events"), b"frozen 1\n");
    fake.sys_file(&format!("{dir}/cgroup.freeze"), b"1\n");
    let text = human(&fake, &[]);
    assert!(
        text.contains("frozen: its cgroup /evil\\x1b]0;pwned\\x07 is frozen"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "{text:?}");
    // No mountinfo in the tree: the process is judged as before.
    let fake = FakeProc::new();
    process_in(&fake, 'D', "hrtimer_nanosleep", Some("0::/app\n"));
    let p = fake.diagnose(42);
    assert_eq!(p["verdict"], "disk-wait", "{p:#}");
}
