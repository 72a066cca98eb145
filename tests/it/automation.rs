//! Fleet and automation: selecting many processes, NDJSON and Prometheus
//! output (checked by promtool, scraped by a real node_exporter), secrets
//! redaction, the man page and completions.

use crate::support::{tool, whystuck, Scenario};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pids_of(report: &Value) -> Vec<i64> {
    report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_i64().unwrap())
        .collect()
}

#[test]
fn name_user_pidfile_and_all_select_processes() {
    let s = Scenario::start("sleeping");
    let target = s.num("target");
    // The scenario's command line is unique enough to find it by name.
    let run = whystuck(&[
        "--json",
        "-i",
        "0",
        "--name",
        "hang\\.py sleeping|time\\.sleep\\(100000\\)",
    ]);
    let found = pids_of(&run.json());
    assert!(found.contains(&target), "{found:?}");
    assert!(
        !found.contains(&(std::process::id() as i64)),
        "whystuck never selects itself"
    );

    let uid = unsafe { libc::getuid() }.to_string();
    let mine = pids_of(&whystuck(&["--json", "-i", "0", "--user", &uid, "--fail-on", "never"]).json());
    assert!(mine.contains(&target));

    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("daemon.pid");
    std::fs::write(&pidfile, format!("{target}\n")).unwrap();
    let run = whystuck(&["--json", "-i", "0", "--pidfile", pidfile.to_str().unwrap(), "1"]);
    assert_eq!(pids_of(&run.json()), [1, target], "pids and pidfiles combine, in order");

    let all = pids_of(&whystuck(&["--json", "-i", "0", "--all", "--fail-on", "never"]).json());
    assert!(all.contains(&target) && all.len() > 3, "{all:?}");
    assert!(!all.contains(&2), "kernel threads are left out of --all");
    let with_kthreads =
        pids_of(&whystuck(&["--json", "-i", "0", "--all", "--kernel-threads", "--fail-on", "never"]).json());
    assert!(with_kthreads.contains(&2), "kthreadd with --kernel-threads");
}

#[test]
fn a_selection_that_matches_nothing_has_its_own_exit_code() {
    let run = whystuck(&["-i", "0", "--name", "^no-such-process-name-xyz$"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim(),
        "whystuck: no process matches --name '^no-such-process-name-xyz$' (kernel threads left out)"
    );
    let run = whystuck(&["-i", "0", "--name", "^kthreadd$"]);
    assert_eq!(run.code, 3, "kernel threads are not selected by name alone");
    let run = whystuck(&["--json", "-i", "0", "--name", "^kthreadd$", "--kernel-threads"]);
    assert_eq!(pids_of(&run.json()), [2]);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pid");
    std::fs::write(&bad, "not-a-pid\n").unwrap();
    // A missing or empty pidfile: the daemon is not running.
    let missing = dir.path().join("missing.pid");
    let run = whystuck(&["--pidfile", missing.to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .ends_with("missing.pid: no such file: no process to look at\n"),
        "{}",
        run.stderr
    );
    std::fs::write(&missing, "").unwrap();
    assert_eq!(whystuck(&["--pidfile", missing.to_str().unwrap()]).code, 3);
    let run = whystuck(&["--pidfile", bad.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("bad.pid: line 1: not a pid (9 bytes): \"not-a-pid\""),
        "{}",
        run.stderr
    );
}

/// Machine formats stay well-formed when nothing matches: an empty report
/// (zero counts, the time); `--fail-on never` makes that exit 0, so a cron
/// job's `&& mv` still publishes it.
#[test]
fn nothing_selected_still_writes_a_well_formed_report() {
    let nothing = ["-i", "0", "--name", "^no-such-process-name-xyz$"];
    let run = whystuck(&[&nothing[..], &["--json"]].concat());
    assert_eq!(run.code, 3);
    let report = run.json();
    assert_eq!(report["processes"], serde_json::json!([]));
    assert_eq!(report["visibility"]["unreadable_processes"], 0);

    let run = whystuck(&[&nothing[..], &["--format", "prometheus", "--fail-on", "never"]].concat());
    assert_eq!(run.code, 0);
    assert_eq!(run.stderr, "", "the empty report says it all");
    assert!(
        run.stdout.contains("whystuck_processes{verdict=\"pipe-full\"} 0\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("whystuck_last_run_timestamp_seconds "),
        "{}",
        run.stdout
    );

    let run = whystuck(&[&nothing[..], &["--format", "ndjson"]].concat());
    assert_eq!((run.code, run.stdout.as_str()), (3, ""));
}

#[test]
fn ndjson_is_one_stamped_line_per_process() {
    let a = Scenario::start("sleeping");
    let b = Scenario::start("pipe-full");
    let run = whystuck(&[
        "--format",
        "ndjson",
        "-i",
        "0",
        &a.num("target").to_string(),
        &b.num("target").to_string(),
    ]);
    assert_eq!(run.code, 1);
    let lines: Vec<Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["verdict"], "sleeping");
    assert_eq!(lines[1]["verdict"], "pipe-full");
    for line in &lines {
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'), "{line}");
        assert!(line["host"].is_string());
        assert_eq!(line["schema_version"], 1);
    }
}

fn prometheus_output(s: &Scenario, hostile: &Scenario) -> String {
    let run = whystuck(&[
        "--format",
        "prometheus",
        "-i",
        "200ms",
        &s.num("target").to_string(),
        &hostile.num("target").to_string(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.stdout
}

#[test]
fn prometheus_output_passes_promtool_and_escapes_labels() {
    let s = Scenario::start("pipe-full");
    let hostile = Scenario::start("hostile-names");
    let text = prometheus_output(&s, &hostile);
    let pid = s.num("target");
    assert!(text.contains(&format!("whystuck_process_verdict_info{{pid=\"{pid}\",comm=\"python3\",verdict=\"pipe-full\",severity=\"critical\"}} 1")), "{text}");
    assert!(text.contains(&format!(
        "whystuck_process_severity{{pid=\"{pid}\",comm=\"python3\"}} 3"
    )));
    assert!(text.contains(&format!(
        "whystuck_process_fullest_pipe_ratio{{pid=\"{pid}\",comm=\"python3\"}} 1"
    )));
    assert!(text.contains("whystuck_processes{verdict=\"pipe-full\"} 1"));
    assert!(text.contains("whystuck_last_run_timestamp_seconds "));
    // The hostile comm (ESC sequence, newline, invalid UTF-8) is escaped as
    // for a terminal, then for the format: no control character reaches
    // the file, and nothing breaks a line.
    let hostile_pid = hostile.num("target");
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("whystuck_process_severity{{pid=\"{hostile_pid}\"")))
        .unwrap();
    assert!(line.contains(r#"comm="\\x1b[31mX) (\\x0a\\xff""#), "{line}");
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text}");
    let Some(promtool) = tool("promtool") else { return };
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = check.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

/// The real thing: node_exporter's textfile collector reads what whystuck
/// wrote (atomically: write, then rename) and serves it.
#[test]
fn node_exporter_scrapes_the_textfile() {
    let Some(exporter) = tool("prometheus-node-exporter").or_else(|| tool("node_exporter")) else {
        return;
    };
    let s = Scenario::start("pipe-full");
    let hostile = Scenario::start("hostile-names");
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("whystuck.prom.tmp");
    std::fs::write(&staging, prometheus_output(&s, &hostile)).unwrap();
    std::fs::rename(&staging, dir.path().join("whystuck.prom")).unwrap();
    let port = free_port();
    let mut server = Command::new(exporter)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--collector.disable-defaults")
        .arg("--collector.textfile")
        .arg(format!("--collector.textfile.directory={}", dir.path().display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        if let Some(body) = http_get(port, "/metrics").filter(|b| b.contains("node_textfile_scrape_error")) {
            break body;
        }
        assert!(Instant::now() < deadline, "node_exporter did not answer on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    };
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(body.contains("node_textfile_scrape_error 0"), "{body}");
    let pid = s.num("target");
    // node_exporter sorts the labels.
    let expected = format!(
        "whystuck_process_verdict_info{{comm=\"python3\",pid=\"{pid}\",severity=\"critical\",verdict=\"pipe-full\"}} 1"
    );
    assert!(body.contains(&expected), "{expected} not served:\n{body}");
    assert!(body.contains("whystuck_last_run_timestamp_seconds"));
}

#[test]
fn secrets_are_redacted_except_for_a_person_at_a_terminal() {
    // Token shapes made up here, so that none sits in the source as a
    // literal (secret scanners would flag it).
    let body = |n: usize| -> String { "Q7xk2LmR9vTb4NcWp3Hs8YdJ".chars().cycle().take(n).collect() };
    let anthropic = body(90);
    let github = body(36);
    let aws = body(16).to_ascii_uppercase();
    let jwt = format!("eyJ{}.eyJ{}.{}", body(20), body(40), body(43));
    let mut secretive = Command::new("python3")
        .args([
            "-c",
            "import time; time.sleep(60)",
            "--token=abc123",
            "--api-key",
            "xyz789",
            "DB_PASSWORD=hunter2",
            "Authorization: Bearer q1w2",
            &format!("sk-ant-api03-{anthropic}"),
            &format!("https://x-access:ghp_{github}@github.com/o/r.git"),
            &format!("--aws=AKIA{aws}"),
            &format!("--jwt={jwt}"),
            "SIGNING_KEY=zq5vk0",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let pid = secretive.id().to_string();
    let secrets = [
        "abc123",
        "xyz789",
        "hunter2",
        "q1w2",
        &anthropic[..],
        &github[..],
        &aws[..],
        &jwt[..],
        "zq5vk0",
    ];
    let json = whystuck(&["--json", "-i", "0", &pid]).stdout;
    let ndjson = whystuck(&["--format", "ndjson", "-i", "0", &pid]).stdout;
    let human_to_a_file = whystuck(&["-i", "0", &pid]).stdout;
    let capture = whystuck(&["capture", "-i", "0", &pid, "-o", "-"]).stdout;
    let unredacted = whystuck(&["--json", "-i", "0", "--no-redact", &pid]).stdout;
    let exe = env!("CARGO_BIN_EXE_whystuck");
    let terminal = Command::new("script")
        .args(["-qec", &format!("{exe} -i 0 {pid}"), "/dev/null"])
        .output()
        .unwrap();
    let terminal = String::from_utf8_lossy(&terminal.stdout).into_owned();
    secretive.kill().unwrap();
    secretive.wait().unwrap();
    for (name, text) in [
        ("json", &json),
        ("ndjson", &ndjson),
        ("human into a file", &human_to_a_file),
        ("capture", &capture),
    ] {
        for secret in secrets {
            assert!(!text.contains(secret), "{name} leaks {secret}");
        }
        assert!(
            text.contains("--token=<redacted>") && text.contains("Authorization: <redacted>"),
            "{name}: {text}"
        );
        assert!(
            text.contains("sk-ant-api03-<redacted>") && text.contains("--aws=AKIA<redacted>"),
            "{name}: {text}"
        );
    }
    for secret in secrets {
        assert!(unredacted.contains(secret), "--no-redact shows {secret}");
        assert!(
            terminal.contains(secret),
            "a person at a terminal sees {secret}: {terminal}"
        );
    }
}

#[test]
fn man_page_is_generated_from_the_binary_and_up_to_date() {
    let generated = whystuck(&["man"]).stdout;
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/whystuck.1")).unwrap();
    assert!(
        generated == committed,
        "man/whystuck.1 is stale: run `cargo run -- man > man/whystuck.1`"
    );
    for needed in [
        "VERDICTS",
        "wakeup\\-fd\\-eagain",
        "EXIT CODES",
        "prometheus",
        "capture",
        "watch",
        "\\-\\-stall\\-after",
    ] {
        assert!(generated.contains(needed), "the man page lacks {needed}");
    }
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = whystuck(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(
            run.stdout.contains("stall-after") && run.stdout.contains("fail-on"),
            "{shell} completion is incomplete"
        );
    }
    assert_eq!(whystuck(&["completions", "tcsh"]).code, 2);
}
