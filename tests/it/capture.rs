//! Capture and replay: a snapshot diagnosed later says what the live run said.

use crate::support::{whystuck, Scenario};
use serde_json::Value;

fn without_volatile(mut p: Value) -> Value {
    // Identity and verdicts must match; the time the two runs took may not
    // ("no progress over 1.0s" against "over 1.1s" on a loaded machine).
    p.as_object_mut().unwrap().remove("cpu");
    // How long ago threads last ran moves on between the two runs.
    for thread in p["threads"].as_array_mut().into_iter().flatten() {
        thread.as_object_mut().unwrap().remove("last_ran_seconds_ago");
    }
    // stdin/stdout/stderr are shared with whatever runs the tests, and the
    // other ends of those pipes come and go between the two runs.
    if let Some(pipes) = p["pipes"].as_array_mut() {
        pipes.retain(|pipe| pipe["fd"].as_i64() > Some(2));
    }
    let text = serde_json::to_string(&p).unwrap();
    let over = regex::Regex::new(r"over [0-9.]+m?s").unwrap();
    serde_json::from_str(&over.replace_all(&text, "over <interval>")).unwrap()
}

#[test]
fn capture_kill_replay_gives_the_same_verdict_and_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stuck.json");
    let file = file.to_str().unwrap();
    let s = Scenario::start("parent-waits-undrained");
    let parent = s.num("parent").to_string();
    // 1s intervals: "over 1.0s" reads the same though the two runs differ by a few ms.
    let capture = whystuck(&["capture", "--tree", "--interval", "1s", &parent, "-o", file]);
    assert_eq!(capture.code, 0, "{}", capture.stderr);
    assert!(capture.stdout.is_empty());
    // One line on success: the file, how many processes, their verdicts.
    assert_eq!(
        capture.stderr,
        format!("whystuck: wrote {file}: 2 processes: 2 deadlock [critical]\n")
    );
    let quiet = whystuck(&["capture", "-q", "--interval", "0", &parent, "-o", file]);
    assert_eq!((quiet.code, quiet.stderr.as_str()), (0, ""), "-q says nothing");
    let capture = whystuck(&["capture", "--tree", "--interval", "1s", &parent, "-o", file]);
    assert_eq!(capture.code, 0, "{}", capture.stderr);
    let live = whystuck(&["--json", "--tree", "--interval", "1s", &parent]).json();
    drop(s); // the processes are gone now
    assert_eq!(
        whystuck(&["--json", "--interval", "0", &parent]).json()["processes"][0]["verdict"],
        "dead"
    );

    let replay = whystuck(&["--from", file, "--json"]);
    assert_eq!(
        replay.code, 1,
        "a replayed deadlock fails like a live one: {}",
        replay.stderr
    );
    let replay = replay.json();
    assert_eq!(replay["tree"], true);
    let (live_ps, replay_ps) = (
        live["processes"].as_array().unwrap(),
        replay["processes"].as_array().unwrap(),
    );
    assert_eq!(live_ps.len(), replay_ps.len());
    for (l, r) in live_ps.iter().zip(replay_ps) {
        assert_eq!(r["verdict"], "deadlock");
        for key in [
            "pid", "comm", "verdict", "severity", "summary", "findings", "pipes", "children", "threads",
        ] {
            let (l, r) = (without_volatile(l.clone()), without_volatile(r.clone()));
            assert_eq!(l[key], r[key], "{key} differs between live and replay");
        }
    }
    assert_eq!(live["links"], replay["links"]);

    // Replay is deterministic, in every format.
    let human = whystuck(&["--from", file]);
    assert_eq!(human.stdout, whystuck(&["--from", file]).stdout);
    // A post-mortem says it is one before anything else.
    let (first, rest) = human.stdout.split_once("\n\n").unwrap();
    assert!(
        first.starts_with(&format!("Replay of the snapshot {file}, captured "))
            && first.ends_with("not a live diagnosis."),
        "{first}"
    );
    assert!(rest.starts_with("tree\n"), "{}", human.stdout);
    assert!(replay["replayed_from"] == file && replay["host"]["captured_at_unix_ms"].as_u64().unwrap() > 0);
}

#[test]
fn capture_to_stdout_replays_from_stdin() {
    let s = Scenario::start("wakeup-pipe-full");
    let exe = env!("CARGO_BIN_EXE_whystuck");
    let pid = s.num("target");
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{exe} capture --interval 0 {pid} -o - | {exe} --from - --json"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["processes"][0]["verdict"], "wakeup-fd-eagain");
}

/// An endless stdin is cut off at the size limit, not read until memory
/// runs out.
#[test]
fn an_endless_stdin_is_refused_at_the_size_limit() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_whystuck"))
        .args(["--from", "-"])
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "whystuck: stdin: too large to be a snapshot (more than 256 MiB)"
    );
}

#[test]
fn the_snapshot_holds_both_samples_and_the_host_facts() {
    let s = Scenario::start("busy");
    let run = whystuck(&[
        "capture",
        "--interval",
        "200ms",
        &s.num("target").to_string(),
        "-o",
        "-",
    ]);
    let snapshot: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(snapshot["format"], "whystuck-snapshot");
    assert_eq!(snapshot["schema_version"], 1);
    assert_eq!(snapshot["host"]["arch"], std::env::consts::ARCH);
    assert!(snapshot["host"]["kernel_release"]["ok"].is_string());
    assert!(snapshot["host"]["clock_ticks_per_second"].as_u64().unwrap() > 0);
    let samples = snapshot["processes"][0]["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2);
    let ticks = |i: usize| samples[i]["stat"]["ok"]["utime"].as_u64().unwrap();
    assert!(
        ticks(1) > ticks(0),
        "a busy process gains CPU ticks between the samples"
    );
    assert!(samples[1]["elapsed_ms"].as_u64().unwrap() >= 200);
    assert!(samples[0]["threads"]["ok"][0]["syscall"].is_object());
    // Pipe fill levels are captured (the writer's stdout is a full pipe).
    let pipe = Scenario::start("pipe-full");
    let run = whystuck(&["capture", "--interval", "0", &pipe.num("target").to_string(), "-o", "-"]);
    let snapshot: Value = serde_json::from_str(&run.stdout).unwrap();
    let fds = snapshot["processes"][0]["samples"][0]["fds"]["ok"]
        .as_array()
        .unwrap()
        .clone();
    let stdout = fds.iter().find(|fd| fd["fd"] == 1).expect("fd 1");
    assert_eq!(stdout["pipe"]["ok"]["capacity_bytes"], 65536, "{stdout}");
}

#[test]
fn bad_snapshot_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let good = whystuck(&["capture", "--interval", "0", &std::process::id().to_string(), "-o", "-"]).stdout;
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let cases = [
        (
            write("truncated.json", &good[..good.len() / 3]),
            "truncated: EOF while parsing",
        ),
        (
            write(
                "newer.json",
                &good.replacen("\"schema_version\": 1", "\"schema_version\": 99", 1),
            ),
            "schema version 99 is newer than this whystuck reads (1)",
        ),
        (
            write("report.json", &whystuck(&["--json", "-i", "0", "1"]).stdout),
            "not a whystuck snapshot",
        ),
        (
            write("garbage.json", "\u{1}\u{2} not json"),
            "not a whystuck snapshot (not a JSON object)",
        ),
        (
            write("broken.json", "{\"format\": whystuck"),
            "not valid JSON: expected value at line 1 column 12",
        ),
        (
            write(
                "wrong-type.json",
                &good.replacen("\"page_size\": 4096", "\"page_size\": \"big\"", 1),
            ),
            "not a valid snapshot: invalid type: string \"big\", expected u64 at line",
        ),
        (write("empty.json", ""), "empty: not a whystuck snapshot"),
        (dir.path().to_str().unwrap().to_string(), "not a regular file"),
        (fifo.to_str().unwrap().to_string(), "not a regular file"),
        (
            dir.path().join("missing.json").to_str().unwrap().to_string(),
            "cannot open: No such file",
        ),
    ];
    for (path, expected) in cases {
        let run = whystuck(&["--from", &path]);
        assert_eq!(run.code, 2, "{path}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.starts_with(&format!("whystuck: {path}: ")), "{}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{path}: {} lacks {expected:?}",
            run.stderr
        );
    }
}
