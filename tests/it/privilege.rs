//! A whystuck installed as the README suggests, with the file capabilities
//! `cap_sys_ptrace,cap_dac_read_search+ep`, run by `nobody`: it still sees
//! root's processes whole, but opens every path its caller names with the
//! caller's own rights, so no option reads a byte of a file its caller
//! cannot. And a set-uid or set-gid install is refused.
//!
//! Real capabilities on a real copy of the binary: these need root, setcap
//! (libcap2-bin) and setpriv (util-linux), and a temporary directory that
//! nobody can traverse on a file system that keeps file capabilities
//! (extended attributes, not mounted nosuid). They skip visibly without,
//! and fail in CI (WHYSTUCK_REQUIRE_TOOLS).

use crate::support::{self, stat_line, FakeProc, Run};
use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A copy of the built binary in a directory of its own (mode 0755, under
/// the system's temporary directory, so that nobody reaches it).
struct Installed {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

/// Why this machine cannot run these tests: skipped here, failed in CI.
fn cannot_run(why: &str) -> Option<Installed> {
    assert!(
        std::env::var_os("WHYSTUCK_REQUIRE_TOOLS").is_none(),
        "the privilege tests cannot run: {why}"
    );
    eprintln!("SKIPPED: {why}");
    None
}

impl Installed {
    /// A copy holding `cap_sys_ptrace,cap_dac_read_search+ep`.
    fn with_capabilities() -> Option<Installed> {
        let installed = Installed::copy(0o755)?;
        let setcap = support::tool("setcap")?;
        let set = Command::new(&setcap)
            .args(["cap_sys_ptrace,cap_dac_read_search+ep"])
            .arg(&installed.bin)
            .output()
            .expect("run setcap");
        if !set.status.success() {
            return cannot_run(&format!(
                "setcap failed (a file system without extended attributes?): {}",
                String::from_utf8_lossy(&set.stderr).trim()
            ));
        }
        let got = Command::new(setcap.replace("setcap", "getcap"))
            .arg(&installed.bin)
            .output()
            .expect("run getcap");
        let got = String::from_utf8_lossy(&got.stdout);
        // Older libcap prints "= cap_dac_read_search,cap_sys_ptrace+ep".
        assert!(
            got.contains("cap_dac_read_search") && got.contains("cap_sys_ptrace"),
            "getcap says: {got}"
        );
        Some(installed)
    }

    /// A plain copy with permission bits `mode` (0o4755 for set-uid).
    fn copy(mode: u32) -> Option<Installed> {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return cannot_run("needs root (to set file capabilities and drop to nobody)");
        }
        support::tool("setpriv")?;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let flags = nix::sys::statvfs::statvfs(dir.path()).unwrap().flags();
        if flags.contains(nix::sys::statvfs::FsFlags::ST_NOSUID) {
            return cannot_run(&format!(
                "{} is mounted nosuid: file capabilities and set-uid are ignored there",
                dir.path().display()
            ));
        }
        let bin = dir.path().join("whystuck");
        std::fs::copy(env!("CARGO_BIN_EXE_whystuck"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(mode)).unwrap();
        Some(Installed { dir, bin })
    }

    /// Run the copy as nobody, with no groups; never for more than 30s.
    fn run_as_nobody(&self, args: &[&str]) -> Run {
        for _ in 0..100 {
            let output = assert_cmd::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&self.bin)
                .args(args)
                .timeout(Duration::from_secs(30))
                .output()
                .expect("run setpriv");
            let run = Run {
                code: output.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            };
            // A test on another thread forked while the copy was open for
            // writing: its child holds the descriptor until it execs.
            if !run.stderr.contains("Text file busy") {
                return run;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} stayed busy (open for writing)", self.bin.display());
    }

    /// A file only root may read (0600), holding a fresh random secret.
    fn secret_file(&self, name: &str) -> (PathBuf, String) {
        let secret = random_secret();
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        (path, secret)
    }
}

/// 32 random hex digits.
fn random_secret() -> String {
    let random = || std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("{:016x}{:016x}", random(), random())
}

/// Whether `text` shows any 12 consecutive characters of the secret: an
/// error quoting the start of a line shows only part of it.
fn reveals(text: &str, secret: &str) -> bool {
    (0..=secret.len() - 12).any(|at| text.contains(&secret[at..at + 12]))
}

/// A root process sleeping, its stdout a pipe of root's.
struct RootSleeper(std::process::Child);

impl RootSleeper {
    fn start() -> RootSleeper {
        let child = Command::new("sleep")
            .arg("300")
            .stdout(Stdio::piped())
            .spawn()
            .expect("sleep");
        RootSleeper(child)
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for RootSleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fake /proc tree with process 42, whose command line is `cmdline`
/// (a file, or a link to one).
fn fake_tree_in(root: &Path) {
    let fake = FakeProc::new();
    fake.process(
        42,
        &stat_line(42, "x", 'S', 1, 0),
        "230 0x1 0x0 0x0 0x0 0x0 0x0 0x7ff 0x7ff\n",
        "hrtimer_nanosleep\n",
    );
    let copied = Command::new("cp")
        .args(["-a", "--no-target-directory"])
        .arg(fake.path())
        .arg(root)
        .status()
        .expect("cp");
    assert!(copied.success());
}

fn assert_refused_without_the_secret(run: &Run, what: &str, secret: &str) {
    assert_eq!(run.code, 2, "{what}: exit {}\n{}{}", run.code, run.stdout, run.stderr);
    assert!(
        !reveals(&run.stdout, secret) && !reveals(&run.stderr, secret),
        "{what} revealed the secret:\n{}{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr.starts_with("whystuck: ") && run.stderr.lines().count() == 1,
        "{what}: one line on stderr: {:?}",
        run.stderr
    );
}

/// Every option that names a path, at a root-only file holding a secret or
/// a root-only directory: exit 2, and not a byte of the secret anywhere.
#[test]
fn no_option_reads_a_file_its_caller_cannot() {
    let Some(installed) = Installed::with_capabilities() else {
        return;
    };
    let (file, secret) = installed.secret_file("secret");
    let file = file.to_str().unwrap();
    // A root-only directory (0700) holding a fake /proc tree whose process
    // 42 has the secret for its command line, readable (0644) for anyone
    // who may search the directory: with CAP_DAC_READ_SEARCH whystuck may.
    let private = installed.dir.path().join("private");
    fake_tree_in(&private);
    std::fs::write(private.join("42/cmdline"), format!("{secret}\0")).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let private = private.to_str().unwrap();
    let inside = format!("{private}/out.json");
    let sleeper = RootSleeper::start();
    let pid = sleeper.pid();
    let pid = pid.as_str();

    let cases: &[&[&str]] = &[
        &["--pidfile", file],
        &["--pidfile", file, "--json"],
        &["--from", file],
        &["--from", file, "--json"],
        &["--lock", file, pid],
        &["--proc-root", private, "--interval", "0", "42"],
        &["--proc-root", private, "--all", "--json", "--no-redact"],
        &["capture", "-o", file, pid],
        &["capture", "-o", &inside, pid],
        &["capture", "--pidfile", file, "-o", "-"],
        &["capture", "--lock", file, "-o", "-", pid],
        &["capture", "--proc-root", private, "--no-redact", "-o", "-", "42"],
        &["watch", "--pidfile", file],
        &[
            "watch",
            "--proc-root",
            private,
            "--format",
            "ndjson",
            "--no-redact",
            "42",
        ],
    ];
    for args in cases {
        let run = installed.run_as_nobody(args);
        assert_refused_without_the_secret(&run, &args.join(" "), &secret);
    }
    // What nobody was told: the caller's own "Permission denied".
    let run = installed.run_as_nobody(&["--pidfile", file]);
    assert!(run.stderr.contains("Permission denied"), "{}", run.stderr);
}

/// A fake tree nobody may read, whose files lead (by symbolic link) to
/// root's: read with the caller's rights throughout, so the command line
/// behind the link is unavailable, never shown.
#[test]
fn a_fake_tree_cannot_reach_past_its_caller() {
    let Some(installed) = Installed::with_capabilities() else {
        return;
    };
    let (file, secret) = installed.secret_file("secret");
    let tree = installed.dir.path().join("tree");
    fake_tree_in(&tree);
    for rel in ["42/cmdline", "42/task/42/wchan"] {
        std::fs::remove_file(tree.join(rel)).unwrap();
        std::os::unix::fs::symlink(&file, tree.join(rel)).unwrap();
    }
    let chmod = Command::new("chmod")
        .arg("-R")
        .arg("a+rX")
        .arg(&tree)
        .status()
        .expect("chmod");
    assert!(chmod.success());
    let tree = tree.to_str().unwrap();

    for args in [
        &["--proc-root", tree, "--json", "--no-redact", "--interval", "0", "42"][..],
        &[
            "--proc-root",
            tree,
            "--no-redact",
            "--color",
            "never",
            "--interval",
            "0",
            "42",
        ],
        &[
            "capture",
            "--proc-root",
            tree,
            "--no-redact",
            "--interval",
            "0",
            "-o",
            "-",
            "42",
        ],
    ] {
        let run = installed.run_as_nobody(args);
        let what = args.join(" ");
        assert!(
            run.code == 0 || run.code == 1,
            "{what}: exit {}: {}",
            run.code,
            run.stderr
        );
        assert!(
            !reveals(&run.stdout, &secret) && !reveals(&run.stderr, &secret),
            "{what} revealed the secret behind a link:\n{}{}",
            run.stdout,
            run.stderr
        );
    }
    let run = installed.run_as_nobody(&["--proc-root", tree, "--json", "--interval", "0", "42"]);
    let p = &run.json()["processes"][0];
    assert!(p["cmdline"].is_null(), "{p:#}");
    let unavailable = p["unavailable"].as_array().unwrap();
    assert!(
        unavailable
            .iter()
            .any(|u| u["what"] == "cmdline" && u["kind"] == "permission"),
        "{p:#}"
    );
}

/// The capabilities still do what they are for: nobody sees root's process
/// whole (its syscall, wchan and fds), chosen by a pidfile nobody may read,
/// through the default /proc and through `--proc-root /proc`. The same copy
/// without capabilities cannot, so the capabilities are what made it.
#[test]
fn the_capabilities_still_show_another_users_process_whole() {
    let Some(installed) = Installed::with_capabilities() else {
        return;
    };
    let sleeper = RootSleeper::start();
    let pidfile = installed.dir.path().join("sleep.pid");
    std::fs::write(&pidfile, format!("{}\n", sleeper.pid())).unwrap();
    let pidfile = pidfile.to_str().unwrap();

    for extra in [&[][..], &["--proc-root", "/proc"]] {
        let mut args = vec!["--json", "--interval", "0", "--pidfile", pidfile];
        args.extend_from_slice(extra);
        let run = installed.run_as_nobody(&args);
        assert!(
            run.code == 0 || run.code == 1,
            "{args:?}: exit {}: {}",
            run.code,
            run.stderr
        );
        let p = &run.json()["processes"][0];
        assert_eq!(p["uid"], 0, "{p:#}");
        assert_eq!(p["unavailable"], serde_json::json!([]), "{args:?}: {p:#}");
        let thread = &p["threads"][0];
        assert_eq!(thread["syscall"]["name"], "clock_nanosleep", "{args:?}: {p:#}");
        assert_eq!(thread["wchan"], "hrtimer_nanosleep", "{args:?}: {p:#}");
        assert_eq!(p["verdict"], "sleeping", "{p:#}");
        assert!(p["pipes"].as_array().is_some_and(|pipes| !pipes.is_empty()), "{p:#}");
    }

    let plain = Installed::copy(0o755).unwrap();
    let run = plain.run_as_nobody(&["--json", "--interval", "0", &sleeper.pid()]);
    let p = &run.json()["processes"][0];
    let syscall = p["unavailable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["what"] == "thread syscall");
    assert_eq!(
        syscall.map(|u| &u["kind"]),
        Some(&serde_json::json!("permission")),
        "{p:#}"
    );
}

/// Set-uid root (or set-gid) would read files for whoever runs it: refused,
/// before anything else, with the install to use instead.
#[test]
fn a_set_id_install_is_refused() {
    for (mode, kind) in [(0o4755, "set-uid"), (0o2755, "set-gid")] {
        let Some(installed) = Installed::copy(mode) else {
            return;
        };
        let (file, secret) = installed.secret_file("secret");
        for args in [&["--help"][..], &["--pidfile", file.to_str().unwrap()]] {
            let run = installed.run_as_nobody(args);
            assert_refused_without_the_secret(&run, &format!("{kind} {args:?}"), &secret);
            assert!(
                run.stderr.contains(&format!("refusing to run {kind}")) && run.stderr.contains("file capabilities"),
                "{}",
                run.stderr
            );
        }
    }
}
