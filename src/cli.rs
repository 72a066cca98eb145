//! The command line, in one place: `main` parses it, and the man page and
//! shell completions are generated from it.

use crate::classify::Severity;
use crate::render::Format;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

const AFTER_HELP: &str = "\
Verdicts (most severe wins): dead, pipe-full, wakeup-fd-eagain (critical); stopped,
disk-wait, futex-blocked, unknown (warn); busy, idle-in-epoll, blocked-on-read,
waiting-on-child, sleeping (info); running (ok).

Exit codes:
  0  no process is at or above --fail-on
  1  at least one process is at or above --fail-on (a pid that does not exist is `dead`)
  2  usage error, or whystuck itself could not run";

#[derive(Parser, Debug)]
#[command(
    name = "whystuck",
    version,
    about = "Say why a Linux process is stuck, with the evidence",
    long_about = "Say why a Linux process is stuck, with the evidence.\n\n\
        whystuck samples each process twice (--interval apart) from /proc and socket \
        diagnostics, and prints a verdict per process with the facts behind it. It is \
        read-only: it never stops, signals or writes to a target.",
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub selection: Selection,

    /// Diagnose a snapshot written by `whystuck capture` (- for stdin) instead of live processes
    #[arg(long, value_name = "FILE", conflicts_with_all = ["pids", "tree", "proc_root"])]
    pub from: Option<PathBuf>,

    #[command(flatten)]
    pub output: Output,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Write everything a diagnosis is made from (both samples, every thread, fd, pipe
    /// fill and socket fact) to a snapshot file, to diagnose later with --from
    Capture(Capture),
}

#[derive(clap::Args, Debug)]
pub struct Capture {
    #[command(flatten)]
    pub selection: Selection,

    /// Where to write the snapshot; - for stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// Which processes to look at, and how.
#[derive(clap::Args, Debug)]
pub struct Selection {
    /// Process ids to diagnose (a thread id stands for its process)
    #[arg(value_name = "PID", value_parser = parse_pid)]
    pub pids: Vec<i32>,

    /// Also diagnose every descendant of each PID, shown as a tree with the pipes and sockets between them
    #[arg(long)]
    pub tree: bool,

    /// Time between the two samples, e.g. 1s, 250ms or 2 (seconds); 0 takes one sample and skips rates
    #[arg(short, long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval, allow_hyphen_values = true)]
    pub interval: Duration,

    /// Read process facts from this directory instead of /proc (a fake tree, for tests)
    #[arg(long, value_name = "DIR", default_value = "/proc")]
    pub proc_root: PathBuf,
}

/// How to print the diagnosis, and what makes the exit code 1.
#[derive(clap::Args, Debug)]
pub struct Output {
    /// Print one JSON document (same as --format json)
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Output format
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,

    /// Exit 1 when any process is at or above this severity
    #[arg(long, value_enum, value_name = "SEVERITY", default_value = "warn")]
    pub fail_on: FailOn,

    /// When to colour the human report (auto: on a terminal, unless NO_COLOR is set)
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: ColorWhen,
}

impl Output {
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.format
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Ok,
    Info,
    Warn,
    Critical,
    /// Always exit 0 once the report is printed
    Never,
}

impl FailOn {
    pub fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Ok => Some(Severity::Ok),
            FailOn::Info => Some(Severity::Info),
            FailOn::Warn => Some(Severity::Warn),
            FailOn::Critical => Some(Severity::Critical),
            FailOn::Never => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    pub fn enabled(self, is_terminal: bool) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

fn parse_pid(text: &str) -> Result<i32, String> {
    match text.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err("not a process id (expected a positive integer)".into()),
    }
}

/// The longest interval: a diagnosis is a snapshot, not a watch.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Duration::from_secs_f64(seconds.min(1e9)),
        Ok(_) => return Err("must not be negative".into()),
        Err(_) if text.starts_with('-') => return Err("must not be negative".into()),
        Err(_) => {
            humantime::parse_duration(text).map_err(|_| "expected a duration such as 1s, 500ms or 2".to_string())?
        }
    };
    if duration > MAX_INTERVAL {
        return Err("must be at most 1h".into());
    }
    Ok(duration)
}
