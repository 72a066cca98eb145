//! The `whystuck` binary: parse, collect (or load a snapshot), classify,
//! render, exit.
//!
//! Exit codes: 0 nothing at or above `--fail-on`; 1 something is; 2 usage
//! error or failure to run; 3 nothing selected; 4 `--lock` held (see
//! [`whystuck::error::Error`]). Errors print one line with their causes; a
//! closed stdout (`whystuck ... | head`) is a clean exit.

use anyhow::{bail, Context};
use clap::{CommandFactory, Parser};
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use whystuck::cli::{Capture, Cli, Command, Sampling, Selection, EXIT_FAILING, EXIT_NOTHING_SELECTED, EXIT_USAGE};
use whystuck::collect::helper::HelperConfig;
use whystuck::error::Error;
use whystuck::privilege;
use whystuck::render::{self, Style};
use whystuck::selection::NothingSelected;
use whystuck::snapshot::{Snapshot, MAX_SNAPSHOT_BYTES};
use whystuck::{collect, report};

fn main() -> ExitCode {
    // A bug must still end in one line and exit 2, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("whystuck: internal error{place}: {message} (please report it)");
    }));
    match std::panic::catch_unwind(run) {
        Ok(Ok(code)) => code,
        Ok(Err(err)) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Ok(Err(err)) => {
            eprintln!("whystuck: {err}");
            ExitCode::from(err.exit_code())
        }
        Err(_) => ExitCode::from(EXIT_USAGE),
    }
}

fn run() -> Result<ExitCode, Error> {
    // Before anything else, --help included: a set-uid whystuck would read
    // files for whoever runs it.
    privilege::refuse_set_id()?;
    raise_fd_limit();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return Ok(usage_error(err)),
    };
    match &cli.command {
        Some(Command::Capture(capture)) => run_capture(capture),
        Some(Command::Watch(watch)) => {
            whystuck::watch::run(watch, &mut io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Completions { shell }) => {
            clap_complete::generate(*shell, &mut Cli::command(), "whystuck", &mut io::stdout().lock());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::ReadHelper { proc_root }) => {
            whystuck::collect::helper::serve(proc_root)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Man) => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut io::stdout().lock())
                .context("writing the man page")?;
            Ok(ExitCode::SUCCESS)
        }
        None => run_diagnosis(&cli),
    }
}

fn run_diagnosis(cli: &Cli) -> Result<ExitCode, Error> {
    // Held until the run ends, report written.
    let _lock = cli.sampling.lock.as_deref().map(take_lock).transpose()?;
    let format = cli.output.format();
    let snapshot = match &cli.from {
        Some(path) => load(path)?,
        None => match take_snapshot(&cli.selection, &cli.sampling).map_err(Error::from) {
            Ok(snapshot) => snapshot,
            Err(Error::NothingSelected(nothing)) => return nothing_selected(cli, format, nothing),
            Err(err) => return Err(err),
        },
    };
    let targets = snapshot
        .processes
        .iter()
        .filter(|p| p.role != whystuck::snapshot::Role::Related)
        .count();
    let mut report = report::build_with_detail(snapshot, render::detail_from(format, targets));
    report.replayed_from = cli.from.as_ref().map(|path| match path.to_str() {
        Some("-") => "stdin".to_string(),
        _ => path.display().to_string(),
    });
    let stdout = io::stdout();
    let to_a_person = format == render::Format::Human && stdout.is_terminal();
    if !cli.output.no_redact && !to_a_person {
        report.redact_secrets();
    }
    let style = Style {
        color: cli.output.color.enabled(stdout.is_terminal()),
        kernel_threads: cli.selection.kernel_threads,
    };
    let mut out = io::BufWriter::new(stdout.lock());
    render::render(&report, format, style, &mut out).context("writing the report")?;
    out.flush().context("writing the report")?;
    let failing = cli
        .output
        .fail_on
        .threshold()
        .is_some_and(|threshold| report.processes.iter().any(|p| p.severity >= threshold));
    Ok(if failing {
        ExitCode::from(EXIT_FAILING)
    } else {
        ExitCode::SUCCESS
    })
}

/// A selection that chose nothing: the line on stderr, and for machine
/// formats an empty report (zero counts, the time, what a scan could not
/// see), so a cron job's output stays well-formed. Exit 3, or 0 under
/// `--fail-on never`, which makes the exit code say only whether whystuck
/// ran.
fn nothing_selected(cli: &Cli, format: render::Format, nothing: NothingSelected) -> Result<ExitCode, Error> {
    let machine = format != render::Format::Human;
    // Under --fail-on never a machine format's empty report says it all.
    if !machine || cli.output.fail_on.threshold().is_some() {
        eprintln!("whystuck: {nothing}");
    }
    if machine {
        let options = collect::Options {
            interval: std::time::Duration::ZERO,
            ..collect_options(&cli.selection, &cli.sampling, false)
        };
        let request = collect::Request {
            pids: &[],
            tree: false,
            related: &whystuck::classify::graph::related_pids,
            prefetched: None,
        };
        let mut snapshot = collect::collect(&request, &options)?;
        snapshot.visibility = nothing.visibility;
        let report = report::build(snapshot);
        let mut out = io::BufWriter::new(io::stdout().lock());
        render::render(&report, format, Style::default(), &mut out).context("writing the report")?;
        out.flush().context("writing the report")?;
    }
    Ok(match cli.output.fail_on.threshold() {
        None => ExitCode::SUCCESS,
        Some(_) => ExitCode::from(EXIT_NOTHING_SELECTED),
    })
}

/// Take `--lock FILE` (an exclusive flock, held until exit), writing our pid
/// into it; refuse at once if another run holds it. Opened with the
/// caller's own rights, as every file the caller names.
fn take_lock(path: &Path) -> Result<File, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.display();
    let mut file = privilege::open_as_caller(|| {
        File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
    })
    .with_context(|| format!("--lock {name}: cannot open"))?;
    if !file
        .metadata()
        .with_context(|| format!("--lock {name}: cannot stat"))?
        .is_file()
    {
        return Err(anyhow::anyhow!("--lock {name}: not a regular file").into());
    }
    // The file holds the holder's pid, and nothing else is ever written
    // over: a file with other contents is used as a lock but left as it is.
    let mut contents = String::new();
    let _ = (&file).take(32).read_to_string(&mut contents);
    let holder = contents.trim().parse::<u32>().ok();
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(anyhow::Error::new(err)
                .context(format!("--lock {name}: cannot lock"))
                .into());
        }
        let who = match holder {
            Some(pid) => format!("another whystuck (pid {pid})"),
            None => "another process".to_string(),
        };
        return Err(Error::Locked(format!("--lock {name}: {who} holds the lock")));
    }
    if contents.is_empty() || holder.is_some() {
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("--lock {name}: cannot write our pid"))?;
    }
    Ok(file)
}

/// How to collect for this command line; `many` for a large selection.
fn collect_options(selection: &Selection, sampling: &Sampling, many: bool) -> collect::Options {
    collect::Options {
        helper: HelperConfig::new(selection.proc_root.clone()),
        interval: sampling.interval,
        timeout: sampling.budget(),
        deep_fds: match (sampling.deep, many) {
            (true, _) => usize::MAX,
            (false, true) => 0,
            (false, false) => collect::LAZY_FDS,
        },
        thread_status: !sampling.interval.is_zero(),
        many,
        stacks: sampling.stacks,
    }
}

fn take_snapshot(selection: &Selection, sampling: &Sampling) -> anyhow::Result<Snapshot> {
    let budget = sampling.budget();
    if sampling.interval >= budget {
        bail!(
            "--interval ({}) must be shorter than --timeout ({})",
            humantime::format_duration(sampling.interval),
            humantime::format_duration(budget)
        );
    }
    let helper = HelperConfig::new(selection.proc_root.clone());
    let selected = whystuck::selection::resolve(selection, &helper, std::time::Instant::now() + budget)?;
    let pids = selected.pids;
    // A large selection is read lazily: deep facts only where threads wait.
    let options = collect_options(selection, sampling, pids.len() > collect::MANY_PROCESSES);
    let request = collect::Request {
        pids: &pids,
        tree: selection.tree,
        related: &whystuck::classify::graph::related_pids,
        prefetched: Some(&selected.prefetched),
    };
    let mut snapshot = collect::collect(&request, &options)?;
    snapshot.visibility = selected.visibility;
    Ok(snapshot)
}

/// `whystuck capture`: the snapshot, written whole or not at all.
fn run_capture(capture: &Capture) -> Result<ExitCode, Error> {
    let _lock = capture.sampling.lock.as_deref().map(take_lock).transpose()?;
    let mut snapshot = take_snapshot(&capture.selection, &capture.sampling)?;
    if !capture.no_redact {
        snapshot.redact_secrets();
    }
    let mut json = serde_json::to_vec_pretty(&snapshot).context("writing the snapshot")?;
    json.push(b'\n');
    let written = (!capture.quiet).then(|| report::verdict_counts(&snapshot));
    if capture.output == Path::new("-") {
        io::stdout().lock().write_all(&json).context("writing the snapshot")?;
        if let Some(counts) = written {
            eprintln!("whystuck: wrote the snapshot to stdout: {counts}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Write beside the target, then rename: a reader never sees half a file.
    // Both with the caller's own rights.
    let path = &capture.output;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = privilege::open_as_caller(|| tempfile::NamedTempFile::new_in(dir))
        .with_context(|| format!("{}: cannot write here", path.display()))?;
    temp.write_all(&json)
        .with_context(|| format!("{}: writing", path.display()))?;
    privilege::open_as_caller(|| temp.persist(path).map_err(|e| e.error))
        .with_context(|| format!("{}: cannot create", path.display()))?;
    if let Some(counts) = written {
        eprintln!("whystuck: wrote {}: {counts}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Read a snapshot file (or stdin for `-`): a regular file only, so a FIFO
/// planted at the path cannot hang the run; opened with the caller's own
/// rights.
fn load(path: &Path) -> anyhow::Result<Snapshot> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        io::stdin()
            .lock()
            .take(MAX_SNAPSHOT_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .context("reading the snapshot from stdin")?;
    } else {
        use std::os::unix::fs::OpenOptionsExt;
        let file = privilege::open_as_caller(|| File::options().read(true).custom_flags(libc::O_NONBLOCK).open(path))
            .with_context(|| format!("{}: cannot open", path.display()))?;
        let metadata = file
            .metadata()
            .with_context(|| format!("{}: cannot stat", path.display()))?;
        if !metadata.is_file() {
            bail!("{}: not a regular file", path.display());
        }
        if metadata.len() > MAX_SNAPSHOT_BYTES as u64 {
            bail!(
                "{}: too large to be a snapshot (more than {} MiB)",
                path.display(),
                MAX_SNAPSHOT_BYTES >> 20
            );
        }
        file.take(MAX_SNAPSHOT_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("{}: cannot read", path.display()))?;
    }
    let name = if path == Path::new("-") {
        "stdin".into()
    } else {
        path.display().to_string()
    };
    Snapshot::parse(&bytes).map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

/// Help and version go to stdout with exit 0; anything else is one line on
/// stderr and exit 2.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    // clap's message runs until the blank line before its usage block; fold
    // it into one line.
    let text = err.to_string();
    let message: Vec<&str> = text.lines().map(str::trim).take_while(|l| !l.is_empty()).collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    eprintln!("whystuck: {message} (see whystuck --help)");
    ExitCode::from(EXIT_USAGE)
}

/// `--all` holds one /proc directory open per process: lift the soft
/// limit on open files to the hard limit, as far as we are allowed.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
