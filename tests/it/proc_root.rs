//! Collection from fake /proc trees (`--proc-root`): hostile and odd inputs
//! that a live kernel rarely hands out, each asserted field by field.

use crate::support::{stat_line, FakeProc};

#[test]
fn comm_with_spaces_and_parentheses() {
    let fake = FakeProc::new();
    fake.process(
        42,
        &stat_line(42, "a) (b", 'S', 1, 7),
        "230 0x1 0x0 0x0 0x0 0x0 0x0 0x7ff 0x7ff\n",
        "hrtimer_nanosleep\n",
    );
    let p = fake.diagnose(42);
    assert_eq!(p["comm"], "a) (b");
    assert_eq!(p["state"], "S");
    assert_eq!(p["ppid"], 1);
    assert_eq!(p["cpu"]["utime_ticks"], 7);
    assert_eq!(p["verdict"], "sleeping", "{p:#}");
}

#[test]
fn empty_cmdline_is_an_empty_list_not_missing() {
    let fake = FakeProc::new();
    fake.process(
        42,
        &stat_line(42, "k", 'S', 1, 0),
        "230 0x1 0x0 0x0 0x0 0x0 0x0 0x7ff 0x7ff\n",
        "hrtimer_nanosleep\n",
    );
    let p = fake.diagnose(42);
    assert_eq!(p["cmdline"], serde_json::json!([]));
    assert!(p["unavailable"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["what"] != "cmdline"));
}

#[test]
fn fdinfo_without_a_flags_line_leaves_access_unknown() {
    let fake = FakeProc::new();
    fake.process(
        42,
        &stat_line(42, "r", 'S', 1, 0),
        "0 0x0 0x0 0x1000 0x0 0x0 0x0 0x7ff 0x7ff\n",
        "pipe_read\n",
    );
    fake.link("42/fd/0", "pipe:[777]");
    fake.file("42/fdinfo/0", b"pos:\t0\nmnt_id:\t15\n");
    let p = fake.diagnose(42);
    let fd = &p["fds"]["open"][0];
    assert_eq!(fd["type"], "pipe");
    assert!(fd["access"].is_null(), "no flags line is unknown, not read-only: {fd}");
    assert!(fd["nonblocking"].is_null());
    assert!(p["pipes"][0]["end"].is_null());
    // The fake link cannot be opened for the fill probe: unknown, and said so.
    assert!(p["pipes"][0]["buffered_bytes"].is_null());
    assert!(
        p["unavailable"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["what"] == "pipe fill"),
        "{p:#}"
    );
    assert_eq!(p["verdict"], "blocked-on-read", "{p:#}");
}

#[test]
fn syscall_file_reading_running_is_on_cpu() {
    let fake = FakeProc::new();
    fake.process(42, &stat_line(42, "spin", 'R', 1, 900), "running\n", "0\n");
    let p = fake.diagnose(42);
    let thread = &p["threads"][0];
    assert_eq!(thread["on_cpu"], true);
    assert!(thread["syscall"].is_null());
    assert_eq!(thread["wchan"], "", "wchan 0 with a readable syscall: not waiting");
    assert_eq!(p["verdict"], "running", "{p:#}");
}

#[test]
fn stat_line_from_a_kernel_with_fewer_fields() {
    let fake = FakeProc::new();
    // Only up to utime: no stime, no starttime, no rss.
    let short = "42 (old) S 1 42 42 0 -1 0 0 0 0 0 5\n";
    fake.process(
        42,
        short,
        "230 0x1 0x0 0x0 0x0 0x0 0x0 0x7ff 0x7ff\n",
        "hrtimer_nanosleep\n",
    );
    let p = fake.diagnose(42);
    assert_eq!(p["comm"], "old");
    assert_eq!(p["cpu"]["utime_ticks"], 5);
    assert!(p["cpu"]["stime_ticks"].is_null(), "missing is not zero: {p:#}");
    assert!(p["start_time_ticks"].is_null());
    assert_eq!(p["verdict"], "sleeping");
}

#[test]
fn children_are_found_without_task_children_files() {
    let fake = FakeProc::new();
    fake.process(
        42,
        &stat_line(42, "parent", 'S', 1, 0),
        "61 0xffffffffffffffff 0x0 0x0 0x0 0x0 0x0 0x7ff 0x7ff\n",
        "do_wait\n",
    );
    fake.process(
        43,
        &stat_line(43, "child", 'S', 42, 0),
        "230 0x1 0x0 0x0 0x0 0x0 0x0 0x7ff 0x7ff\n",
        "hrtimer_nanosleep\n",
    );
    fake.process(
        44,
        &stat_line(44, "other", 'S', 1, 0),
        "230 0x1 0x0 0x0 0x0 0x0 0x0 0x7ff 0x7ff\n",
        "hrtimer_nanosleep\n",
    );
    let p = fake.diagnose(42);
    let children: Vec<i64> = p["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(children, [43], "{p:#}");
    assert_eq!(p["verdict"], "waiting-on-child");
    assert!(p["summary"].as_str().unwrap().contains("pid 43 (child)"), "{p:#}");
}

/// A file that is a FIFO nobody writes: opened non-blocking, it reads as
/// empty instead of hanging the run.
#[test]
fn a_fifo_in_place_of_a_proc_file_does_not_hang() {
    let fake = FakeProc::new();
    fake.process(
        42,
        &stat_line(42, "x", 'S', 1, 0),
        "230 0x1 0x0 0x0 0x0 0x0 0x0 0x7ff 0x7ff\n",
        "hrtimer_nanosleep\n",
    );
    for name in ["status", "cmdline"] {
        let path = fake.path().join(format!("42/{name}"));
        std::fs::remove_file(&path).unwrap();
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }
    let started = std::time::Instant::now();
    let p = fake.diagnose(42);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(p["comm"], "x");
    assert_eq!(p["cmdline"], serde_json::json!([]));
}
