//! The command line, in one place: `main` parses it, and the man page and
//! shell completions are generated from it (`whystuck man`,
//! `whystuck completions SHELL`).

use crate::classify::{Severity, Verdict};
use crate::render::Format;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Exit codes, documented in --help and the man page.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILING: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_NOTHING_SELECTED: u8 = 3;
pub const EXIT_LOCKED: u8 = 4;

const AFTER_HELP: &str = "\
Exit codes: 0 nothing at or above --fail-on; 1 something is (a pid that does not exist is
`dead`); 2 usage error or failure to run; 3 --all/--name/--user/--pidfile chose no process;
4 another run holds the --lock.
See --help for the verdicts and formats.";

/// The long help (and the man page's extra section): verdicts, severities,
/// formats and exit codes, from the same tables the program uses.
pub fn long_help() -> String {
    let mut text = String::from("VERDICTS (every finding is listed; the most severe is the verdict):\n");
    for verdict in Verdict::ALL {
        text.push_str(&format!(
            "  {:<17} {:<8} {}\n",
            verdict.name(),
            verdict.default_severity().name(),
            crate::describe::meaning(verdict)
        ));
    }
    text.push_str(concat!(
        "\n",
        "SEVERITIES: ok < info < warn < critical. waiting-on-child takes ok when the child works and the child's severity when it is stuck; unknown is info when only the wait is unreadable.\n",
        "\n",
        "FORMATS (--format):\n",
        "  human       the verdict line, the evidence, then thread, fd and socket tables\n",
        "  json        one document: {\"schema_version\": 1, \"processes\": [...]}\n",
        "  ndjson      one JSON line per process with \"timestamp\" and \"host\", to append from cron\n",
        "  prometheus  text exposition for node_exporter's textfile collector; labels: pid, comm,\n",
        "              and verdict/severity (container_id/pod_uid in a container) on\n",
        "              whystuck_process_verdict_info\n",
        "Command-line secrets are redacted in every format but a human report on a terminal (--no-redact).\n",
        "\n",
        "EXIT CODES:\n",
        "  0  no process is at or above --fail-on (default warn)\n",
        "  1  at least one process is at or above --fail-on; a pid that does not exist is `dead`\n",
        "  2  usage error, unreadable snapshot, or whystuck itself could not run (one line on stderr)\n",
        "  3  --all, --name, --user or --pidfile chose no process (0 with --fail-on never; json and\n",
        "     prometheus still print an empty report)\n",
        "  4  another whystuck holds the --lock file (cron runs do not pile up)\n",
    ));
    text
}

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
    after_long_help = long_help(),
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub selection: Selection,

    #[command(flatten)]
    pub sampling: Sampling,

    /// Diagnose a snapshot written by `whystuck capture` (- for stdin) instead of live processes
    #[arg(long, value_name = "FILE", conflicts_with_all = ["pids", "tree", "proc_root", "all", "name", "user", "pidfile"])]
    pub from: Option<PathBuf>,

    #[command(flatten)]
    pub output: Output,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Write everything a diagnosis is made from (both samples, every thread, fd, pipe
    /// fill and socket fact) to a snapshot file, to diagnose later with --from
    Capture(Capture),
    /// Keep diagnosing: a line whenever a verdict changes, repeated warnings while a
    /// process stays stuck, and `stalled` when nothing moves for --stall-after
    Watch(Watch),
    /// Print a completion script for a shell
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): whystuck man | man -l -
    Man,
    /// Answer reads that can block, for another whystuck (internal)
    #[command(hide = true, name = "__read-helper")]
    ReadHelper { proc_root: PathBuf },
}

#[derive(clap::Args, Debug)]
pub struct Capture {
    #[command(flatten)]
    pub selection: Selection,

    #[command(flatten)]
    pub sampling: Sampling,

    /// Where to write the snapshot; - for stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// Keep secrets in command lines (redacted by default)
    #[arg(long)]
    pub no_redact: bool,

    /// Say nothing on success (by default one line on stderr: the file, how many
    /// processes, their verdicts)
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct Watch {
    #[command(flatten)]
    pub selection: Selection,

    /// How often to look
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_every)]
    pub every: Duration,

    /// A process whose CPU time, syscalls, I/O and context switches (its descendants'
    /// included) have not moved for this long is `stalled` (critical), whatever it is parked in
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_stall_after)]
    pub stall_after: Duration,

    /// Output format: one line per event
    #[arg(long, value_enum, default_value = "human")]
    pub format: WatchFormat,

    /// When to colour the human lines (auto: on a terminal, unless NO_COLOR is set)
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: ColorWhen,

    /// Show secrets in command lines in ndjson events too
    #[arg(long)]
    pub no_redact: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WatchFormat {
    /// A line per event: time, pid, comm, verdict, summary
    Human,
    /// A JSON object per event, for a pipe into alerting
    Ndjson,
}

/// Which processes to look at.
#[derive(clap::Args, Debug)]
pub struct Selection {
    /// Process ids to diagnose (a thread id stands for its process)
    #[arg(value_name = "PID", value_parser = parse_pid)]
    pub pids: Vec<i32>,

    /// Every process this user can see (without kernel threads, unless --kernel-threads)
    #[arg(long)]
    pub all: bool,

    /// Processes whose comm or command line matches this regular expression (whystuck's
    /// own ancestors by comm only: the shell running `whystuck --name agent` is no agent)
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub name: Option<regex::Regex>,

    /// Processes owned by this user (a name or a uid)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Read a pid from this file, as daemons write them (repeatable)
    #[arg(long, value_name = "FILE")]
    pub pidfile: Vec<PathBuf>,

    /// Let --all, --name and --user select kernel threads too
    #[arg(long)]
    pub kernel_threads: bool,

    /// Also diagnose every descendant of each process, shown as a tree with the pipes and sockets between them
    #[arg(long)]
    pub tree: bool,

    /// Read process facts from this directory instead of /proc (a fake tree, for tests)
    #[arg(long, value_name = "DIR", default_value = "/proc")]
    pub proc_root: PathBuf,
}

/// The run's time budget beyond the interval, unless --timeout says otherwise.
pub const DEFAULT_TIMEOUT_BEYOND_INTERVAL: Duration = Duration::from_secs(10);

/// How the two samples of a diagnosis are taken.
#[derive(clap::Args, Debug)]
pub struct Sampling {
    /// Time between the two samples, e.g. 1s, 250ms or 2 (seconds); 0 takes one sample and skips rates
    #[arg(short, long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval, allow_hyphen_values = true)]
    pub interval: Duration,

    /// The whole run's time budget, at least 100ms: past it nothing more is read, and the
    /// report says what could not be (a read that can block has its own 2s deadline within
    /// it) [default: the interval and 10s more]
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,

    /// Run only if no other whystuck holds this lock file (flock); otherwise exit 4 at
    /// once. For cron: a run stuck past the next one is not joined by another
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,

    /// Read every fd's fdinfo and pipe fill even in a process with more than 256 fds
    /// (by default only the fds its threads wait on, its epoll sets and self-pipes)
    #[arg(long)]
    pub deep: bool,

    /// Dump Python processes' stacks with py-spy (`py-spy dump --nonblocking`: reads the
    /// target's memory read-only and never stops it; needs py-spy on PATH and ptrace access)
    #[arg(long)]
    pub stacks: bool,
}

impl Sampling {
    /// The whole run's time budget: --timeout, or the interval and 10s more.
    pub fn budget(&self) -> Duration {
        self.timeout.unwrap_or(self.interval + DEFAULT_TIMEOUT_BEYOND_INTERVAL)
    }
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

    /// Show secrets in command lines (--token=..., password=..., Authorization: ...) in
    /// machine-readable output too; by default only a human report on a terminal shows them
    #[arg(long)]
    pub no_redact: bool,
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

fn parse_regex(text: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(text).map_err(|e| {
        let last = e
            .to_string()
            .lines()
            .last()
            .unwrap_or("invalid regular expression")
            .trim()
            .to_string();
        last.strip_prefix("error: ").unwrap_or(&last).to_string()
    })
}

/// A non-negative duration: humantime (`250ms`, `1m30s`) or bare seconds.
fn parse_duration(text: &str, max: Duration, max_text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Duration::from_secs_f64(seconds.min(1e9)),
        Ok(_) => return Err("must not be negative".into()),
        Err(_) if text.starts_with('-') => return Err("must not be negative".into()),
        Err(_) => {
            humantime::parse_duration(text).map_err(|_| "expected a duration such as 1s, 500ms or 2".to_string())?
        }
    };
    if duration > max {
        return Err(format!("must be at most {max_text}"));
    }
    Ok(duration)
}

/// A diagnosis is a snapshot, not a watch: at most an hour between samples.
fn parse_interval(text: &str) -> Result<Duration, String> {
    parse_duration(text, Duration::from_secs(3600), "1h")
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text, Duration::from_secs(24 * 3600), "24h")? {
        d if d < Duration::from_millis(100) => Err("must be at least 100ms".into()),
        d => Ok(d),
    }
}

fn parse_every(text: &str) -> Result<Duration, String> {
    match parse_duration(text, Duration::from_secs(24 * 3600), "24h")? {
        d if d < Duration::from_millis(100) => Err("must be at least 100ms".into()),
        d => Ok(d),
    }
}

fn parse_stall_after(text: &str) -> Result<Duration, String> {
    match parse_duration(text, Duration::from_secs(30 * 24 * 3600), "30 days")? {
        Duration::ZERO => Err("must be more than 0 (a process is stalled after this long without moving)".into()),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_covers_the_interval_unless_set() {
        let sampling = |args: &[&str]| {
            let cli = Cli::try_parse_from(["whystuck"].iter().chain(args).chain(&["1"])).unwrap();
            cli.sampling.budget()
        };
        assert_eq!(sampling(&[]), Duration::from_secs(11));
        assert_eq!(sampling(&["-i", "30s"]), Duration::from_secs(40));
        assert_eq!(sampling(&["-i", "30s", "--timeout", "35s"]), Duration::from_secs(35));
    }
}
