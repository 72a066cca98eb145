//! The snapshot: raw facts about processes as collected, before any judgement.
//!
//! `collect` is the only producer (from a live /proc or a fake tree) and
//! `classify` the only consumer, so a snapshot written to a file can later be
//! diagnosed exactly as if it were live. Every fact that can fail to be read
//! is a [`Fact`]: a value, or the reason it is unavailable. Missing is never
//! written down as zero.

use crate::text::TargetString;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

mod cgroup;
mod fds;
mod locks;
mod process;
mod sockets;

pub use cgroup::*;
pub use fds::*;
pub use locks::*;
pub use process::*;
pub use sockets::*;

/// Bumped whenever a field changes meaning or a required field is added.
pub const SNAPSHOT_SCHEMA_VERSION: u32 = 1;

/// The `format` of every snapshot file: tells a snapshot from any other JSON.
pub const SNAPSHOT_FORMAT: &str = "whystuck-snapshot";

/// Snapshot files larger than this are refused rather than read.
pub const MAX_SNAPSHOT_BYTES: usize = 256 << 20;

#[derive(Serialize, Deserialize, Debug, Clone, schemars::JsonSchema)]
pub struct Snapshot {
    pub format: String,
    pub schema_version: u32,
    pub host: Host,
    /// Whether descendants of the targets were sampled too (`--tree`).
    #[serde(default)]
    pub tree: bool,
    pub processes: Vec<ProcessRecord>,
    /// Every process and fd found holding a pipe or socket inode that a
    /// sampled process holds (or is connected to): the other ends.
    #[serde(default)]
    pub holders: Vec<Holder>,
    /// Processes whose fd tables could not be searched for those holders.
    #[serde(default)]
    pub unsearchable: Vec<Unsearchable>,
    /// The processes and fds found holding a named pipe (FIFO) a sampled
    /// thread reads or writes: fds linking to its path whose fdinfo `ino:`
    /// is the FIFO's. `inode` is that inode (another number space than the
    /// pipe and socket inodes of `holders`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fifo_holders: Vec<Holder>,
    /// The files sampled threads wait to lock (in flock or
    /// fcntl(F_SETLKW)), from `/proc/locks` as of the last round that read
    /// it, with who holds them; `None` when no sampled thread waited for a
    /// lock, unavailable when `/proc/locks` could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locks: Option<Fact<Vec<LockedFile>>>,
    /// How much of the host a scan (`--all`, `--name`, `--user`) could see;
    /// absent when the processes were named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
}

/// What a scan of /proc could not see, so a partial view is never taken
/// for the whole host.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, schemars::JsonSchema)]
pub struct Visibility {
    /// The proc mount's `hidepid=` setting as it applies to this run
    /// (`off`, `noaccess`, `invisible`, `ptraceable`; `off` when the run
    /// holds CAP_SYS_PTRACE); `None` when it cannot be known.
    pub hidepid: Option<String>,
    /// Processes listed in /proc whose details this run may not read.
    pub unreadable_processes: u64,
    /// About how many threads, of processes /proc left out, the kernel
    /// counts (/proc/loadavg less those seen); `None` unless processes are
    /// hidden and the count is comparable.
    pub hidden_threads: Option<u64>,
    /// Processes the scan chose that went away while it read them: left out
    /// of the report, never `dead` (a zombie is still reported).
    #[serde(default)]
    pub vanished: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, schemars::JsonSchema)]
pub struct Host {
    /// The collecting host's name (`/proc/sys/kernel/hostname`).
    #[serde(default)]
    pub hostname: Option<String>,
    pub kernel_release: Fact<String>,
    /// `std::env::consts::ARCH` of the collector: it decides the syscall table.
    pub arch: String,
    pub clock_ticks_per_second: u64,
    pub page_size: u64,
    pub captured_at_unix_ms: u64,
    /// Milliseconds since boot at capture (`/proc/uptime`): with a start
    /// time, a process's age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_ms: Option<u64>,
    /// The proc mount's `hidepid=` setting when it hid or refused other
    /// users' processes to the collecting run (`noaccess`, `invisible`,
    /// `ptraceable`): the other ends of its pipes may be among them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidepid: Option<String>,
    /// Whether the collecting run held CAP_SYS_PTRACE and
    /// CAP_DAC_READ_SEARCH (as root does), so that what it was refused
    /// more privilege would not have shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_view: Option<bool>,
}

/// Everything seen of one pid, one [`Sample`] per sampling round.
#[derive(Serialize, Deserialize, Debug, Clone, schemars::JsonSchema)]
pub struct ProcessRecord {
    pub pid: i32,
    #[serde(default)]
    pub role: Role,
    /// The user named this thread of the process rather than the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named_thread: Option<i32>,
    pub samples: Vec<Sample>,
}

impl ProcessRecord {
    /// The last sample actually taken: a round the run's budget skipped
    /// leaves the process judged by the one before.
    pub fn last_taken(&self) -> Option<&Sample> {
        let mut taken = self.samples.iter().rev().filter(|s| s.presence != Presence::Skipped);
        taken.next().or(self.samples.last())
    }

    /// Why the last round did not sample this process, when an earlier one did.
    pub fn skipped_round(&self) -> Option<&Reason> {
        match self.samples.as_slice() {
            [_, .., last] if last.presence == Presence::Skipped => last.stat.reason(),
            _ => None,
        }
    }
}

/// Why a process was sampled.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Named by the user.
    #[default]
    Target,
    /// A descendant of a target, under `--tree`.
    Descendant,
    /// Sampled only because a target waits on it (a child it waits for, the
    /// other end of a pipe or socket it is blocked on): context, not reported.
    Related,
}

/// One process holding one end of a pipe or socket.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct Holder {
    pub inode: u64,
    pub pid: i32,
    pub fd: i32,
    /// Open flags from fdinfo (for a pipe: which end).
    pub flags: Option<u32>,
    pub comm: Option<TargetString>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct Unsearchable {
    pub pid: i32,
    pub comm: Option<TargetString>,
    pub reason: Reason,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// The process was there for the whole sample.
    Present,
    /// `/proc/PID` did not exist when the sample began.
    NotFound,
    /// The process went away while this sample was being read.
    Exited,
    /// Not read: the run's time budget (`--timeout`) ran out first.
    Skipped,
}

#[derive(Serialize, Deserialize, Debug, Clone, schemars::JsonSchema)]
pub struct Sample {
    /// Milliseconds since the run's first sample.
    pub elapsed_ms: u64,
    pub presence: Presence,
    pub stat: Fact<Stat>,
    pub status: Fact<Status>,
    pub cmdline: Fact<Vec<TargetString>>,
    pub io: Fact<Io>,
    pub threads: Fact<Vec<Thread>>,
    /// Every fd, or, for a process read lazily (many fds, or one of a large
    /// selection), only the fds read in depth; then `fd_totals` counts all.
    pub fds: Fact<Vec<Fd>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_totals: Option<FdTotals>,
    pub sockets: Fact<Sockets>,
    pub children: Fact<Vec<Relative>>,
    /// The parent of a zombie (the one not reaping it).
    pub parent: Option<Box<Relative>>,
    /// The tracer named by `TracerPid`, when there is one.
    pub tracer: Option<Box<Relative>>,
    /// "Now" in the scheduler's clock of each CPU the sample's waiting
    /// threads last ran on (see `collect::clock`), taken right after their
    /// `last_ran_at_ms`, to tell how long ago each ran; `None` when they
    /// were not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sched_now_ms: Option<Vec<CpuNow>>,
    /// The main thread's scheduler statistics, read when two samples are
    /// taken (how long it waited for a CPU between them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedstat: Option<Fact<SchedStat>>,
    /// A Python process's stacks (`--stacks`, by py-spy), with the last
    /// sample; `None` when not asked for or not a Python process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_stacks: Option<Fact<Vec<PyThread>>>,
    /// Its cgroups and what was read of them this round (boxed: a scan
    /// holds a sample per process); `None` when not read (older snapshots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups: Option<Box<Cgroups>>,
}

/// One Python thread's stack, innermost frame first.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct PyThread {
    /// The os thread id, to join with the sample's threads.
    pub tid: Option<i32>,
    pub name: Option<String>,
    pub frames: Vec<PyFrame>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct PyFrame {
    pub function: String,
    pub file: String,
    pub line: Option<i64>,
}

/// "Now" in one CPU's scheduler clock, in milliseconds.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct CpuNow {
    pub cpu: u32,
    pub now_ms: Fact<f64>,
}

/// A value, or why it could not be read.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fact<T> {
    Ok(T),
    Unavailable(Reason),
}

impl<T> Fact<T> {
    pub fn ok(&self) -> Option<&T> {
        match self {
            Fact::Ok(value) => Some(value),
            Fact::Unavailable(_) => None,
        }
    }

    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Fact::Ok(_) => None,
            Fact::Unavailable(reason) => Some(reason),
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasonKind {
    /// The kernel refused the read (another user's process, no ptrace access).
    Permission,
    /// The process (or the thread, or the fd) went away.
    Gone,
    /// The read did not finish within its deadline.
    TimedOut,
    /// This kernel or configuration does not provide the file.
    NotSupported,
    /// The file was read but its contents made no sense.
    Unparsable,
    /// Not read, on purpose (for example skipped to save time).
    NotCollected,
    /// Not read because the read could hang: the process is stuck where
    /// the file's contents come from (its memory, on a dead FUSE or NFS
    /// mount).
    Avoided,
    /// Any other I/O error.
    Error,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct Reason {
    pub kind: ReasonKind,
    /// Most reasons are fixed text, shared rather than allocated: a scan
    /// holds one per thread ("context switches not read").
    pub detail: Cow<'static, str>,
}

impl Reason {
    pub fn new(kind: ReasonKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Reason {
            kind,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// Another process named in a report (child, parent, tracer), with just
/// enough to say what it is doing.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct Relative {
    pub pid: i32,
    pub stat: Fact<Stat>,
}

/// A process's pulse: the few counters that move whenever it does anything
/// (CPU time, read/write syscalls and bytes, times scheduled), read every
/// tick by `whystuck watch`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pulse {
    pub state: char,
    pub starttime: Option<u64>,
    /// utime + stime of all threads.
    pub cpu_ticks: Option<u64>,
    /// syscr + syscw.
    pub io_syscalls: Option<u64>,
    /// rchar + wchar.
    pub io_bytes: Option<u64>,
    /// Times the main thread was scheduled (`schedstat`): moves on every
    /// wakeup, even one too short to cost a clock tick.
    pub timeslices: Option<u64>,
    /// A zombie's wait status (exit code or signal), from its stat.
    pub exit_code: Option<i32>,
    /// Its parent, from its stat.
    pub ppid: Option<i32>,
}

impl Snapshot {
    /// Replace secrets in every sampled command line (see [`crate::redact`]).
    pub fn redact_secrets(&mut self) {
        for sample in self.processes.iter_mut().flat_map(|p| p.samples.iter_mut()) {
            if let Fact::Ok(cmdline) = &mut sample.cmdline {
                crate::redact::redact(cmdline);
            }
        }
    }

    /// Parse a snapshot file's bytes. Errors say what is wrong and where
    /// (serde_json's line and column), in one line.
    pub fn parse(bytes: &[u8]) -> Result<Snapshot, String> {
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            return Err(format!(
                "too large to be a snapshot (more than {} MiB)",
                MAX_SNAPSHOT_BYTES >> 20
            ));
        }
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            None => return Err("empty: not a whystuck snapshot".into()),
            Some(b'{') => {}
            Some(_) => return Err("not a whystuck snapshot (not a JSON object)".into()),
        }
        #[derive(Deserialize)]
        struct Header {
            format: Option<serde_json::Value>,
            schema_version: Option<serde_json::Value>,
        }
        let header: Header = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
        if header.format.as_ref().and_then(|f| f.as_str()) != Some(SNAPSHOT_FORMAT) {
            return Err(format!(
                "not a whystuck snapshot (no \"format\": \"{SNAPSHOT_FORMAT}\")"
            ));
        }
        match header.schema_version.as_ref().and_then(|v| v.as_u64()) {
            Some(v) if v > u64::from(SNAPSHOT_SCHEMA_VERSION) => {
                return Err(format!(
                    "snapshot schema version {v} is newer than this whystuck reads ({SNAPSHOT_SCHEMA_VERSION}): upgrade whystuck"
                ))
            }
            Some(v) if v >= 1 => {}
            _ => return Err("snapshot has no valid schema_version".into()),
        }
        serde_json::from_slice(bytes).map_err(|e| json_error(&e))
    }
}

fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => format!("truncated: {e}"),
        Category::Syntax => format!("not valid JSON: {e}"),
        Category::Data | Category::Io => format!("not a valid snapshot: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> String {
        format!(
            r#"{{"format": "{SNAPSHOT_FORMAT}", "schema_version": 1,
              "host": {{"kernel_release": {{"ok": "6.1"}}, "arch": "x86_64", "clock_ticks_per_second": 100,
                        "page_size": 4096, "captured_at_unix_ms": 0}},
              "processes": []}}"#
        )
    }

    #[test]
    fn a_minimal_snapshot_parses() {
        let snapshot = Snapshot::parse(minimal().as_bytes()).unwrap();
        assert!(snapshot.processes.is_empty() && snapshot.holders.is_empty() && !snapshot.tree);
    }

    #[test]
    fn bad_snapshots_are_one_line_errors_that_say_what_and_where() {
        let full = minimal();
        let cases: Vec<(String, &str)> = vec![
            (full[..full.len() / 2].to_string(), "truncated: EOF while parsing"),
            (
                full.replace("\"processes\": []", "\"processes\": [}"),
                "not valid JSON: expected value at line 4",
            ),
            (
                full.replace("\"schema_version\": 1", "\"schema_version\": 2"),
                "schema version 2 is newer",
            ),
            (full.replace("\"schema_version\": 1,", ""), "no valid schema_version"),
            (
                full.replace(SNAPSHOT_FORMAT, "something-else"),
                "not a whystuck snapshot",
            ),
            (
                r#"{"schema_version": 1, "processes": []}"#.to_string(),
                "not a whystuck snapshot",
            ),
            ("[1, 2, 3]".to_string(), "not a whystuck snapshot (not a JSON object)"),
            ("7".to_string(), "not a whystuck snapshot (not a JSON object)"),
            (
                full.replace("\"arch\": \"x86_64\"", "\"arch\": 5"),
                "not a valid snapshot: invalid type: integer `5`, expected a string at line 2",
            ),
            (String::new(), "empty: not a whystuck snapshot"),
            (" \n".to_string(), "empty: not a whystuck snapshot"),
        ];
        for (text, expected) in cases {
            let err = Snapshot::parse(text.as_bytes()).unwrap_err();
            assert!(err.contains(expected), "{err:?} does not contain {expected:?}");
            assert!(!err.contains('\n'), "{err:?}");
        }
    }
}
