//! The `whystuck` binary: parse, collect, classify, render, exit.
//!
//! Exit codes: 0 nothing at or above `--fail-on`; 1 something is; 2 usage
//! error or failure to run. Errors print one line with their causes; a
//! closed stdout (`whystuck ... | head`) is a clean exit.

use anyhow::Context;
use clap::Parser;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use whystuck::cli::Cli;
use whystuck::render::{self, Style};
use whystuck::{collect, report};

const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("whystuck: {err:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return Ok(usage_error(err)),
    };
    let mut pids = cli.pids.clone();
    let mut seen = std::collections::HashSet::new();
    pids.retain(|pid| seen.insert(*pid));
    let options = collect::Options {
        proc_root: cli.proc_root.clone(),
        interval: cli.interval,
        read_timeout: std::time::Duration::from_secs(2),
    };
    let request = collect::Request {
        pids: &pids,
        tree: cli.tree,
        related: &whystuck::classify::graph::related_pids,
    };
    let snapshot = collect::collect(&request, &options)?;
    let report = report::build(&snapshot);
    let stdout = io::stdout();
    let style = Style {
        color: cli.color.enabled(stdout.is_terminal()),
    };
    let mut out = io::BufWriter::new(stdout.lock());
    render::render(&report, cli.format(), style, &mut out).context("writing the report")?;
    out.flush().context("writing the report")?;
    let failing = cli
        .fail_on
        .threshold()
        .is_some_and(|threshold| report.processes.iter().any(|p| p.severity >= threshold));
    Ok(if failing { ExitCode::from(1) } else { ExitCode::SUCCESS })
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

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
