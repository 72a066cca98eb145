//! Python stacks (`--stacks`), without stopping the process: `py-spy dump
//! --nonblocking` reads the interpreter's memory with process_vm_readv and
//! never ptrace-stops the target. It runs under the run's deadline and is
//! killed past it, as the cmdline helper is; it is never run against a
//! process stuck on a FUSE or NFS server (reading its memory could hang).
//! Its threads are joined to the sample's by their os thread id.

use super::dir::ProcDir;
use super::reason::Budget;
use crate::snapshot::{Fact, PyFrame, PyThread, Reason, ReasonKind, Sample};
use serde::Deserialize;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest one dump may take, within the run's budget.
const DUMP_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the process runs a Python interpreter, by its executable's name
/// (`python3`, `python3.11`...), or its comm when the link is unreadable.
pub(super) fn is_python(dir: &ProcDir, sample: &Sample) -> bool {
    let python = |name: &[u8]| name.starts_with(b"python");
    match dir.readlink("exe") {
        Ok(exe) => python(exe.rsplit(|&b| b == b'/').next().unwrap_or_default()),
        Err(_) => sample.stat.ok().is_some_and(|s| python(s.comm.as_bytes())),
    }
}

/// The Python stacks of `pid`, tried twice within the budget.
pub(super) fn dump(pid: i32, budget: &Budget) -> Fact<Vec<PyThread>> {
    let mut result = dump_once(pid, budget);
    // A dump can fail as it races the interpreter (a thread starting or
    // ending): once more, if there is time.
    if matches!(&result, Fact::Unavailable(r) if r.kind == ReasonKind::Error) && !budget.out_of_time() {
        result = dump_once(pid, budget);
    }
    result
}

fn dump_once(pid: i32, budget: &Budget) -> Fact<Vec<PyThread>> {
    if budget.out_of_time() {
        return Fact::Unavailable(budget.spent());
    }
    let spawned = Command::new("py-spy")
        .args(["dump", "--nonblocking", "--json", "--pid", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Fact::Unavailable(Reason::new(
                ReasonKind::NotSupported,
                "py-spy is not installed (pip install py-spy, or whystuck[stacks])",
            ))
        }
        Err(e) => return Fact::Unavailable(Reason::new(ReasonKind::Error, format!("py-spy: {e}"))),
    };
    let deadline = (Instant::now() + DUMP_TIMEOUT).min(budget.deadline);
    // Its output is small (a few KiB a thread): read after it exits, the
    // pipes are big enough not to stall it meanwhile for any real stack.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Fact::Unavailable(Reason::new(
                    ReasonKind::TimedOut,
                    format!(
                        "py-spy did not answer within {}",
                        humantime::format_duration(DUMP_TIMEOUT)
                    ),
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Fact::Unavailable(Reason::new(ReasonKind::Error, format!("py-spy: {e}"))),
        }
    };
    let (mut out, mut err) = (Vec::new(), String::new());
    let _ = child.stdout.take().map(|mut o| o.read_to_end(&mut out));
    let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    if !status.success() {
        let said = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message")
            .trim();
        let kind = match said.to_ascii_lowercase() {
            s if s.contains("permission") || s.contains("operation not permitted") => ReasonKind::Permission,
            _ => ReasonKind::Error,
        };
        return Fact::Unavailable(Reason::new(kind, format!("py-spy failed: {said}")));
    }
    parse(&out)
}

/// py-spy's JSON: a list of threads, each with its frames innermost first.
fn parse(json: &[u8]) -> Fact<Vec<PyThread>> {
    #[derive(Deserialize)]
    struct Thread {
        os_thread_id: Option<i64>,
        thread_name: Option<String>,
        #[serde(default)]
        frames: Vec<Frame>,
    }
    #[derive(Deserialize)]
    struct Frame {
        name: String,
        filename: String,
        line: Option<i64>,
    }
    match serde_json::from_slice::<Vec<Thread>>(json) {
        Ok(threads) => Fact::Ok(
            threads
                .into_iter()
                .map(|t| PyThread {
                    tid: t.os_thread_id.and_then(|id| i32::try_from(id).ok()),
                    name: t.thread_name,
                    frames: t
                        .frames
                        .into_iter()
                        .map(|f| PyFrame {
                            function: f.name,
                            file: f.filename,
                            line: f.line,
                        })
                        .collect(),
                })
                .collect(),
        ),
        Err(e) => Fact::Unavailable(Reason::new(ReasonKind::Unparsable, format!("py-spy's output: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn py_spy_json_as_it_prints_it() {
        let json = br#"[{"pid": 8337, "thread_id": 140364403336896, "thread_name": "ba", "os_thread_id": 8380,
            "active": false, "owns_gil": false, "frames": [
              {"name": "t2", "filename": "<string>", "module": null, "short_filename": "<string>", "line": 11,
               "locals": null, "is_entry": true, "is_shim_entry": false},
              {"name": "Thread.run", "filename": "/usr/lib/python3.11/threading.py", "line": 982}],
            "process_info": null}]"#;
        let Fact::Ok(threads) = parse(json) else { panic!() };
        assert_eq!(threads[0].tid, Some(8380));
        assert_eq!(threads[0].name.as_deref(), Some("ba"));
        assert_eq!(threads[0].frames[0].function, "t2");
        assert_eq!(threads[0].frames[1].line, Some(982));
        assert!(matches!(parse(b"not json"), Fact::Unavailable(r) if r.kind == ReasonKind::Unparsable));
    }
}
