//! The wait-for graph on real processes: who holds the other end, process
//! trees, and deadlock cycles.

use crate::support::{self, diagnose, evidence, finding, whystuck, Scenario};
use serde_json::Value;

fn process(report: &Value, pid: i64) -> &Value {
    report["processes"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["pid"] == pid))
        .unwrap_or_else(|| panic!("pid {pid} not reported: {report:#}"))
}

fn cycle(p: &Value) -> Vec<i64> {
    let f = finding(p, "deadlock");
    f["cycle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

/// whystuck's own stdout can be a target's other end (`whystuck PID | cat`,
/// asked about that `cat`): it is named as the writer, though whystuck's
/// own fds are otherwise left out of the search.
#[test]
fn whystuck_is_named_as_the_writer_of_a_pipe_it_writes() {
    use std::process::{Command, Stdio};
    let (read, write) = std::io::pipe().unwrap();
    let cat = Command::new("cat").stdin(read).stdout(Stdio::piped()).spawn().unwrap();
    let mut whystuck = Command::new(env!("CARGO_BIN_EXE_whystuck"))
        .args(["--json", "--interval", "0", "--fail-on", "never", &cat.id().to_string()])
        .stdout(write)
        .spawn()
        .unwrap();
    let me = i64::from(whystuck.id());
    let out = cat.wait_with_output().unwrap();
    assert!(whystuck.wait().unwrap().success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &report["processes"][0];
    let peers = &p["pipes"][0]["peers"];
    assert_eq!(peers[0]["pid"], me, "{p:#}");
    assert_eq!(peers[0]["fd"], 1, "{p:#}");
    assert_eq!(peers[0]["comm"], "whystuck", "{p:#}");
}

/// A process reading a pipe only it could write is a deadlock of one: the
/// next step says it waits on itself.
#[test]
fn a_process_reading_its_own_pipe_waits_on_itself() {
    let s = Scenario::start("reads-own-pipe");
    let pid = s.num("target");
    let p = diagnose(pid, "300ms");
    assert_eq!(p["verdict"], "deadlock", "{p:#}");
    assert_eq!(cycle(&p), [pid]);
    let next = finding(&p, "deadlock")["next_step"].as_str().unwrap_or_default();
    assert!(
        next.contains("waits on itself") && next.ends_with(&format!("(kill {pid})")),
        "{next}"
    );
}

/// The classic: the parent `wait()`s for a child that is blocked writing a
/// full stdout pipe only the parent could drain.
#[test]
fn popen_deadlock_seen_from_the_child() {
    let s = Scenario::start("parent-waits-undrained");
    let (parent, child) = (s.num("parent"), s.num("child"));
    let p = diagnose(child, "300ms");
    assert_eq!(p["verdict"], "deadlock", "{p:#}");
    assert_eq!(p["severity"], "critical");
    assert_eq!(cycle(&p), [child, parent]);
    assert_eq!(
        p["summary"],
        format!("{child} is blocked writing fd 1 (pipe, full); its only reader is {parent}; {parent} waits in wait4 for {child}")
    );
    // The pipe names who holds the other end.
    let pipe = &p["pipes"].as_array().unwrap().iter().find(|x| x["fd"] == 1).unwrap();
    assert_eq!(pipe["full"], true);
    let peers = pipe["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 1, "{pipe}");
    assert_eq!(peers[0]["pid"], parent);
    assert_eq!(peers[0]["comm"], "python3");
    // The pipe-full finding still stands beside the deadlock.
    assert!(finding(&p, "pipe-full")["summary"]
        .as_str()
        .unwrap()
        .contains(&format!("read by pid {parent} (python3)")));
}

#[test]
fn popen_deadlock_seen_from_the_parent_with_tree() {
    let s = Scenario::start("parent-waits-undrained");
    let (parent, child) = (s.num("parent"), s.num("child"));
    let run = whystuck(&["--json", "--tree", "--interval", "300ms", &parent.to_string()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["tree"], true);
    let p = process(&report, parent);
    let c = process(&report, child);
    assert_eq!(p["role"], "target");
    assert_eq!(c["role"], "descendant");
    assert_eq!(p["verdict"], "deadlock", "{p:#}");
    assert_eq!(c["verdict"], "deadlock", "{c:#}");
    assert_eq!(cycle(p), [parent, child]);
    assert_eq!(cycle(c), [child, parent]);
    // The parent's wait takes its stuck child's severity.
    assert_eq!(finding(p, "waiting-on-child")["severity"], "critical");
    // The pipe between them is drawn as a link, with its fill.
    let links = report["links"].as_array().unwrap();
    let link = links
        .iter()
        .find(|l| l["kind"] == "pipe" && l["from"]["pid"] == child)
        .expect("child -> parent pipe");
    assert_eq!(link["to"]["pid"], parent);
    assert_eq!(link["from"]["fd"], 1);
    assert_eq!(link["full"], true);

    let human = whystuck(&["--tree", "--interval", "0", &parent.to_string()]);
    let tree: Vec<&str> = human.stdout.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(tree[0], "tree");
    assert!(
        tree[1].starts_with(&format!("{parent} python3 deadlock [critical]")),
        "{tree:#?}"
    );
    assert!(
        tree[2].starts_with(&format!("└─ {child} python3 deadlock [critical]")),
        "{tree:#?}"
    );
    assert!(
        human.stdout.contains(&format!("{child} fd 1 -> {parent} fd 3  pipe")),
        "{}",
        human.stdout
    );
}

#[test]
fn two_processes_reading_each_others_pipes_are_a_deadlock() {
    let s = Scenario::start("two-pipes");
    let (a, b) = (s.num("a"), s.num("b"));
    let p = diagnose(a, "300ms");
    assert_eq!(p["verdict"], "deadlock", "{p:#}");
    assert_eq!(cycle(&p), [a, b]);
    assert_eq!(
        p["summary"],
        format!("{a} is blocked reading fd 0 (pipe, empty); its only writer is {b}; {b} is blocked reading fd 0 (pipe, empty); its only writer is {a}")
    );
}

/// What a log-growth liveness check gets wrong: a parent silent in wait4
/// while its child works is healthy.
#[test]
fn parent_waiting_on_a_working_child_is_healthy() {
    let s = Scenario::start("wait-child-busy");
    let (parent, child) = (s.num("parent"), s.num("child"));
    let run = whystuck(&["--json", "--interval", "500ms", &parent.to_string()]);
    assert_eq!(run.code, 0, "healthy is not a failure: {}", run.stdout);
    let p = &run.json()["processes"][0];
    assert_eq!(p["verdict"], "waiting-on-child", "{p:#}");
    assert_eq!(p["severity"], "ok");
    let summary = p["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("for pid {child} (python3), which is working:")),
        "{summary}"
    );
    // busy, or merely running when the machine is loaded: working either way.
    let text = evidence(p);
    let child_line = format!("child pid {child} (python3): ");
    assert!(
        text.contains(&format!("{child_line}busy [info]")) || text.contains(&format!("{child_line}running [ok]")),
        "{p:#}"
    );
    assert!(p["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["kind"] != "deadlock"));
}

#[test]
fn parent_waiting_on_a_sleeping_child_shows_the_childs_verdict() {
    let s = Scenario::start("wait-child-sleeping");
    let p = diagnose(s.num("parent"), "300ms");
    assert_eq!(p["verdict"], "waiting-on-child", "{p:#}");
    assert_eq!(p["severity"], "info");
    assert!(
        evidence(&p).contains("sleeping [info]: main thread sleeping in clock_nanosleep"),
        "{p:#}"
    );
}

/// A supervisor holds its child's stdin open and never writes; the child
/// idles in epoll on it.
#[test]
fn idle_child_says_what_it_waits_for_and_who_holds_the_other_end() {
    let s = Scenario::start("supervisor-idle-child");
    let (supervisor, child) = (s.num("supervisor"), s.num("child"));
    let run = whystuck(&["--json", "--tree", "--interval", "300ms", &supervisor.to_string()]);
    let report = run.json();
    let c = process(&report, child);
    assert_eq!(c["verdict"], "idle-in-epoll", "{c:#}");
    let summary = c["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "idle in epoll_wait on fd 0 (pipe from pid {supervisor} (python3), empty)"
        )),
        "{summary}"
    );
    assert!(
        summary.contains("nothing but a timer or a signal can wake it"),
        "{summary}"
    );
    let stdin = c["pipes"].as_array().unwrap().iter().find(|p| p["fd"] == 0).unwrap();
    assert_eq!(stdin["peers"][0]["pid"], supervisor);
    assert!(report["links"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["from"]["pid"] == supervisor && l["to"]["pid"] == child && l["to"]["fd"] == 0));
    for p in report["processes"].as_array().unwrap() {
        assert!(
            p["findings"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["kind"] != "deadlock"),
            "no deadlock here: {p:#}"
        );
    }
}

#[test]
fn socket_peers_name_the_process_at_the_other_end() {
    let unix = Scenario::start("unix-full");
    let p = diagnose(unix.num("target"), "0");
    let sock = p["unix"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["fd"] == unix.num("fd"))
        .unwrap();
    assert_eq!(sock["peers"][0]["pid"], unix.num("peer"), "{sock}");
    assert_eq!(sock["peers"][0]["fd"], unix.num("peer_fd"));

    let tcp = Scenario::start("blocked-read-tcp");
    let p = diagnose(tcp.num("target"), "0");
    let conn = p["tcp"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["fd"] == tcp.num("fd"))
        .unwrap();
    assert_eq!(conn["peers"][0]["pid"], tcp.num("server"), "{conn}");
}

/// Looking for the other end of a pipe means reading other processes' fd
/// tables; the ones that refuse are listed, never silently skipped.
#[test]
fn processes_whose_fds_cannot_be_read_are_listed_as_not_searchable() {
    use std::process::{Command, Stdio};
    // A sleeping process (as nobody when we are root) whose stdout is a pipe
    // only this test (someone else) reads.
    let mut command = if unsafe { libc::geteuid() } == 0 {
        let mut setpriv = Command::new("setpriv");
        setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "60"]);
        setpriv
    } else {
        let mut sleep = Command::new("sleep");
        sleep.arg("60");
        sleep
    };
    let mut sleeper = command.stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200)); // let setpriv exec sleep
    let pid = sleeper.id().to_string();
    let args = ["--json", "--interval", "0", pid.as_str()];
    let args = &args[..];
    let run = support::whystuck_as_nobody(args).unwrap_or_else(|| whystuck(args));
    let human = support::whystuck_as_nobody(&args[1..]).unwrap_or_else(|| whystuck(&args[1..]));
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let report = run.json();
    let unsearchable = report["unsearchable"].as_array().unwrap();
    let init = unsearchable
        .iter()
        .find(|u| u["pid"] == 1)
        .unwrap_or_else(|| panic!("pid 1 not listed: {report:#}"));
    assert_eq!(init["reason"], "permission denied");
    let p = &report["processes"][0];
    let stdout = p["pipes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["fd"] == 1)
        .expect("stdout pipe");
    assert!(
        stdout["peers"].as_array().unwrap().is_empty(),
        "the reader is not visible: {stdout}"
    );
    assert!(
        human
            .stdout
            .contains("not searchable for the other ends of pipes and sockets (permission denied)"),
        "{}",
        human.stdout
    );
}

/// A process's pipe to itself (a wakeup self-pipe) is not a link between
/// processes: the report starts with the verdict line, and `links` is empty.
#[test]
fn a_self_pipe_is_not_a_link() {
    let s = Scenario::start("wakeup-pipe-full");
    let pid = s.num("target").to_string();
    let json = whystuck(&["--json", "-i", "0", &pid]).json();
    assert_eq!(json["links"], serde_json::json!([]), "{:#}", json["links"]);
    let human = whystuck(&["-i", "0", "--color", "never", &pid]);
    assert!(human.stdout.starts_with(&format!("{pid} ")), "{}", human.stdout);
}

/// A large selection finds children by ppid when each batch ends, so
/// `--tree` walks it a generation at a time: a grandchild is found too.
#[test]
fn tree_of_a_large_selection_reaches_grandchildren() {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    /// Each child leads its own process group, killed whole: the shells'
    /// own children (the sleeps) go with them.
    struct Reaped(Vec<std::process::Child>);
    impl Drop for Reaped {
        fn drop(&mut self) {
            for child in &mut self.0 {
                // SAFETY: signalling a process group this test created.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
            }
        }
    }
    let spawn = |args: &[&str]| {
        Command::new(args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    };
    // Past the 32 processes that make a selection large.
    let mut spawned = Reaped((0..33).map(|_| spawn(&["sleep", "300"])).collect());
    // sh -> sh -> sleep: the root is named, the other two are its tree.
    spawned.0.push(spawn(&["sh", "-c", "sh -c 'sleep 300; :'; :"]));
    let root = spawned.0.last().unwrap().id() as i64;
    let grandchild = (0..100)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let children = std::fs::read_to_string(format!("/proc/{root}/task/{root}/children")).ok()?;
            let child: i64 = children.split_whitespace().next()?.parse().ok()?;
            let grandchildren = std::fs::read_to_string(format!("/proc/{child}/task/{child}/children")).ok()?;
            grandchildren.split_whitespace().next()?.parse::<i64>().ok()
        })
        .expect("sh -> sh -> sleep started");
    let mut args = vec!["--json".to_string(), "--tree".into(), "--interval".into(), "0".into()];
    args.extend(spawned.0.iter().map(|c| c.id().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = whystuck(&args);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let report = run.json();
    let g = process(&report, grandchild);
    assert_eq!(g["role"], "descendant", "{g:#}");
    assert_eq!(g["comm"], "sleep");
}

/// `--tree` promises the pipes between the processes: a 7-stage shell
/// pipeline shows its 6 links in the human report, whatever detail the
/// overview of many processes leaves out.
#[test]
fn a_tree_of_a_shell_pipeline_shows_its_six_links_in_human_output() {
    let s = Scenario::start("pipeline");
    let stages: Vec<i64> = s.info["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    let run = whystuck(&[
        "--tree",
        "--interval",
        "200ms",
        "--fail-on",
        "never",
        &s.num("shell").to_string(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let links: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|l| *l != "links")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(links.len(), 6, "{}", run.stdout);
    // Each stage writes its fd 1 into the next one's fd 0.
    for (link, pair) in links.iter().zip(stages.windows(2)) {
        let want = format!("{} fd 1 -> {} fd 0  pipe", pair[0], pair[1]);
        assert!(
            link.trim_start().starts_with(&want),
            "{link:?} is not {want:?}\n{}",
            run.stdout
        );
    }
}
