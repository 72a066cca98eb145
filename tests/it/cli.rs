//! The command line as a user meets it: errors, exit codes, formats.

use crate::support::{whystuck, Scenario};
use std::io::Read;
use std::process::{Command, Stdio};

fn assert_one_line_usage_error(args: &[&str], mentions: &str) {
    let run = whystuck(args);
    assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("whystuck: "), "{}", run.stderr);
    assert!(run.stderr.contains(mentions), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn bad_arguments_are_one_line_errors_with_exit_2() {
    assert_one_line_usage_error(&["abc"], "'abc'");
    assert_one_line_usage_error(&["0"], "not a process id");
    assert_one_line_usage_error(&["-5"], "-5");
    assert_one_line_usage_error(&[], "PID");
    assert_one_line_usage_error(&["--interval", "soon", "1"], "soon");
    assert_one_line_usage_error(&["--interval", "-1s", "1"], "must not be negative");
    assert_one_line_usage_error(&["--interval", "2h", "1"], "at most 1h");
    assert_one_line_usage_error(&["--fail-on", "sometimes", "1"], "sometimes");
    assert_one_line_usage_error(&["--json", "--format", "human", "1"], "--format");
    assert_one_line_usage_error(&["--timeout", "50ms", "1"], "at least 100ms");
    assert_one_line_usage_error(
        &["--interval", "3s", "--timeout", "2s", "1"],
        "--interval (3s) must be shorter than --timeout (2s)",
    );
}

#[test]
fn an_unreadable_proc_root_is_a_one_line_failure() {
    assert_one_line_usage_error(&["--proc-root", "/nonexistent/proc", "1"], "/nonexistent/proc");
}

#[test]
fn help_documents_verdicts_and_exit_codes() {
    let run = whystuck(&["--help"]);
    assert_eq!(run.code, 0);
    for needle in [
        "EXIT CODES",
        "VERDICTS",
        "wakeup-fd-eagain",
        "--fail-on",
        "--interval",
        "FORMATS",
    ] {
        assert!(run.stdout.contains(needle), "{needle} missing from --help");
    }
    let short = whystuck(&["-h"]);
    assert!(
        short.stdout.contains("Exit codes: 0 nothing at or above --fail-on"),
        "{}",
        short.stdout
    );
}

#[test]
fn fail_on_sets_the_exit_code() {
    let s = Scenario::start("sleeping");
    let pid = s.num("target").to_string();
    // sleeping is info
    assert_eq!(whystuck(&["--interval", "0", &pid]).code, 0);
    assert_eq!(whystuck(&["--interval", "0", "--fail-on", "info", &pid]).code, 1);
    assert_eq!(whystuck(&["--interval", "0", "--fail-on", "critical", &pid]).code, 0);
    // dead is critical, unless the user never wants a failing exit
    assert_eq!(whystuck(&["--interval", "0", "2147483647"]).code, 1);
    assert_eq!(
        whystuck(&["--interval", "0", "--fail-on", "never", "2147483647"]).code,
        0
    );
}

#[test]
fn several_pids_give_one_report_each_and_the_worst_decides_the_exit() {
    let s = Scenario::start("sleeping");
    let pid = s.num("target").to_string();
    let run = whystuck(&["--json", "--interval", "0", &pid, "2147483647", &pid]);
    assert_eq!(run.code, 1);
    let json = run.json();
    let verdicts: Vec<&str> = json["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["sleeping", "dead"], "duplicates are reported once");
}

#[test]
fn colour_only_when_asked() {
    let s = Scenario::start("sleeping");
    let pid = s.num("target").to_string();
    let piped = whystuck(&["--interval", "0", &pid]);
    assert!(!piped.stdout.contains('\x1b'), "no colour into a pipe");
    let forced = whystuck(&["--interval", "0", "--color", "always", &pid]);
    assert!(forced.stdout.contains("\x1b[36minfo\x1b[0m"), "{}", forced.stdout);
}

#[test]
fn closed_stdout_is_a_clean_exit() {
    let s = Scenario::start("sleeping");
    let mut child = Command::new(env!("CARGO_BIN_EXE_whystuck"))
        .args(["--interval", "200ms", &s.num("target").to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before anything is written
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(stderr, "");
    assert_eq!(status.code(), Some(0));
}

/// `--color auto` colours a terminal, unless NO_COLOR is set. `script`
/// gives whystuck a real pseudo-terminal.
#[test]
fn colour_on_a_terminal_unless_no_color() {
    let s = Scenario::start("sleeping");
    let command = format!("{} --interval 0 {}", env!("CARGO_BIN_EXE_whystuck"), s.num("target"));
    let on_tty = |no_color: Option<&str>| {
        let mut script = Command::new("script");
        script.args(["-qec", &command, "/dev/null"]).env_remove("NO_COLOR");
        if let Some(value) = no_color {
            script.env("NO_COLOR", value);
        }
        let output = script.output().expect("script(1) from util-linux");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let coloured = on_tty(None);
    assert!(coloured.contains("\x1b[36minfo\x1b[0m"), "{coloured:?}");
    let plain = on_tty(Some("1"));
    assert!(plain.contains("[info]") && !plain.contains('\x1b'), "{plain:?}");
}

#[test]
fn a_bare_number_interval_is_seconds() {
    let run = whystuck(&["--json", "--interval", "0.2", "2147483647"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run = whystuck(&["--json", "--interval", "0.3", &std::process::id().to_string()]);
    let interval = run.json()["processes"][0]["cpu"]["interval_ms"].as_u64().unwrap();
    assert!((300..1000).contains(&interval), "{interval}");
}

/// Under cron a stuck run is not joined by the next: the second run with
/// the same --lock exits 4 at once, naming the holder; once the first ends,
/// the lock is free again.
#[test]
fn lock_refuses_a_second_run_while_the_first_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("whystuck.lock");
    let lock = lock.to_str().unwrap();
    let me = std::process::id().to_string();
    let mut first = Command::new(env!("CARGO_BIN_EXE_whystuck"))
        .args(["--lock", lock, "--interval", "2s", "--timeout", "5s", &me])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::fs::read_to_string(lock).unwrap_or_default().trim() != first.id().to_string() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run did not take the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let started = std::time::Instant::now();
    let second = whystuck(&["--lock", lock, "--interval", "0", &me]);
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "refused at once");
    assert_eq!(second.code, 4, "{}", second.stderr);
    assert_eq!(
        second.stderr.trim(),
        format!(
            "whystuck: --lock {lock}: another whystuck (pid {}) holds the lock",
            first.id()
        )
    );
    assert!(first.wait().unwrap().success());
    assert_eq!(
        whystuck(&["--lock", lock, "--interval", "0", &me]).code,
        0,
        "free once the first run ended"
    );
}

/// A lock file is only ever written with a pid: one holding anything else
/// is locked but left as it was, and what is not a file is refused.
#[test]
fn lock_never_overwrites_a_file_and_refuses_what_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "keep me\n").unwrap();
    let me = std::process::id().to_string();
    let run = whystuck(&["--lock", notes.to_str().unwrap(), "--interval", "0", &me]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "keep me\n");

    let run = whystuck(&["--lock", "/dev/null", "--interval", "0", &me]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.trim(), "whystuck: --lock /dev/null: not a regular file");
}

/// The shell running `whystuck --name X` holds X in its command line; it
/// is whystuck's ancestor, not a match.
#[test]
fn name_does_not_match_the_shell_that_runs_whystuck() {
    let exe = env!("CARGO_BIN_EXE_whystuck");
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{exe} --name 'wrapper_only_xyz' --interval 0; echo \"exit $?\""
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.trim(), "exit 3", "{}", String::from_utf8_lossy(&output.stderr));
}

/// The README's exit-code table is the program's: every code the binary
/// defines, and no other, each also in --help.
#[test]
fn the_readme_exit_code_table_matches_the_program() {
    use whystuck::cli::{EXIT_FAILING, EXIT_LOCKED, EXIT_NOTHING_SELECTED, EXIT_OK, EXIT_USAGE};
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table: Vec<u8> = readme
        .lines()
        .skip_while(|l| !l.starts_with("| exit code |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').next().unwrap().trim().parse().unwrap())
        .collect();
    let defined = [EXIT_OK, EXIT_FAILING, EXIT_USAGE, EXIT_NOTHING_SELECTED, EXIT_LOCKED];
    assert_eq!(table, defined, "README exit-code table");
    let help = whystuck(&["--help"]).stdout;
    let codes = help.split("EXIT CODES:").nth(1).expect("--help has EXIT CODES");
    for code in defined {
        let listed = codes.lines().any(|l| l.trim_start().starts_with(&format!("{code}  ")));
        assert!(listed, "--help lacks exit code {code}:\n{codes}");
    }
}

#[test]
fn man_is_listed_among_the_commands() {
    let help = whystuck(&["--help"]).stdout;
    let commands = help.split("Commands:").nth(1).unwrap().split("\n\n").next().unwrap();
    assert!(commands.contains("\n  man "), "{commands}");
    assert!(whystuck(&["man"]).stdout.starts_with(".ie"), "roff");
}

/// kthreadd's children are kernel threads: counted, not listed, unless
/// --kernel-threads.
#[test]
fn kernel_thread_children_are_folded_into_a_count() {
    let kthreadd = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "kthreadd"));
    let Some(kthreadd) = kthreadd else {
        assert!(
            std::env::var_os("WHYSTUCK_REQUIRE_TOOLS").is_none(),
            "no kthreadd in this pid namespace"
        );
        eprintln!("SKIPPED: no kthreadd in this pid namespace");
        return;
    };
    let pid = kthreadd.to_string();
    let folded = whystuck(&["--interval", "0", "--color", "never", &pid]).stdout;
    let line = folded
        .lines()
        .find(|l| l.starts_with("children: "))
        .unwrap_or_else(|| panic!("{folded}"));
    assert!(
        line.ends_with(" kernel threads (--kernel-threads lists them)"),
        "{line}"
    );
    assert!(!folded.contains("\nchildren\n"), "no table: {folded}");
    let listed = whystuck(&["--interval", "0", "--color", "never", "--kernel-threads", &pid]).stdout;
    assert!(
        listed.contains("\nchildren\n") && !listed.contains("children: "),
        "{listed}"
    );
}
