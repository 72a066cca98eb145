//! The human report: the verdict line first, then the evidence, then compact
//! tables. Every target-controlled string goes through
//! [`TargetString::escaped`](crate::text::TargetString::escaped); prose from
//! the classifier is escaped where it was written. Colour only when asked
//! (a terminal without `NO_COLOR`, or `--color always`).

use super::Style;
use tables::{children_table, fds_table, section, sockets_table, threads_table};

mod tables;
use crate::describe::{self, bytes, duration_ms};
use crate::linux::wait::wchan_wait;
use crate::report::{ChildReport, FdsReport, ProcessDetail, ProcessReport, Report, ThreadReport};
use crate::text::{command_line, escape_bytes, TargetString};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Rows beyond these are summarised, not printed: a process with 10,000
/// fds or threads still gets a readable report (`--json` has everything).
pub(super) const MAX_THREAD_ROWS: usize = 20;
pub(super) const MAX_FD_ROWS: usize = 40;
const MAX_CMDLINE_CHARS: usize = 1024;

/// The first `max` characters, and how much was left out.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!(
            "{}... ({} more characters; --json has all)",
            &text[..cut],
            text[cut..].chars().count()
        ),
        None => text.to_string(),
    }
}

pub fn render(report: &Report, style: Style, out: &mut dyn Write) -> io::Result<()> {
    // A post-mortem is never to be mistaken for a live diagnosis.
    if let Some(file) = &report.replayed_from {
        writeln!(out, "{}\n", describe::replay(file, &report.host))?;
    }
    // A scan that missed part of the host says so before anything else.
    if let Some(note) = report.visibility.as_ref().and_then(describe::host_unseen) {
        writeln!(
            out,
            "Not the whole host: {note}; run as their owner or with CAP_SYS_PTRACE to see them.\n"
        )?;
    }
    let overview = report.processes.len() > OVERVIEW_ABOVE;
    if report.tree {
        render_tree(report, style, out)?;
    } else if overview {
        render_overview(report, style, out)?;
    } else if !report.links.is_empty() {
        render_links(report, style, out)?;
    }
    // Many processes: the full report only for those at warn or worse.
    let detailed: Vec<&ProcessReport> = report
        .processes
        .iter()
        .filter(|p| !overview || Some(p.severity) >= super::detail_from(super::Format::Human, report.processes.len()))
        .collect();
    for (i, process) in detailed.iter().take(MAX_DETAILED).enumerate() {
        if i > 0 || report.tree || overview || !report.links.is_empty() {
            writeln!(out)?;
        }
        render_process(process, style, out)?;
    }
    if detailed.len() > MAX_DETAILED {
        writeln!(
            out,
            "\n... and {} more at warn or worse (name their pids, or --json, for the full reports)",
            detailed.len() - MAX_DETAILED
        )?;
    }
    if let Some(vanished) = report.visibility.as_ref().map(|v| v.vanished).filter(|&n| n > 0) {
        writeln!(
            out,
            "\n{vanished} chosen process{} exited while the scan read {}: left out",
            if vanished == 1 { "" } else { "es" },
            if vanished == 1 { "it" } else { "them" }
        )?;
    }
    if !report.unsearchable.is_empty() {
        let names: Vec<String> = report
            .unsearchable
            .iter()
            .take(5)
            .map(|u| match &u.comm {
                Some(comm) => format!("{} ({})", u.pid, comm.escaped()),
                None => u.pid.to_string(),
            })
            .collect();
        let more = report.unsearchable.len().saturating_sub(names.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        writeln!(
            out,
            "\n{} not searchable for the other ends of pipes and sockets ({}): {}{more}",
            match report.unsearchable.len() {
                1 => "1 process".to_string(),
                n => format!("{n} processes"),
            },
            report.unsearchable[0].reason,
            names.join(", ")
        )?;
    }

    Ok(())
}

/// More processes than this get an overview (one line each, worst first)
/// and full reports only for those at warn or worse.
pub(super) const OVERVIEW_ABOVE: usize = 5;
const MAX_DETAILED: usize = 20;

fn render_overview(report: &Report, style: Style, out: &mut dyn Write) -> io::Result<()> {
    let mut rows: Vec<&ProcessReport> = report.processes.iter().collect();
    rows.sort_by_key(|p| (std::cmp::Reverse(p.severity), p.verdict, p.pid));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &rows {
        *counts.entry(p.severity.name()).or_default() += 1;
    }
    let counts: Vec<String> = ["critical", "warn", "info", "ok"]
        .iter()
        .filter_map(|s| Some(format!("{} {s}", counts.get(s)?)))
        .collect();
    writeln!(
        out,
        "{} ({})",
        style.heading(&format!("{} processes", rows.len())),
        counts.join(", ")
    )?;
    for p in rows {
        writeln!(out, "{}", headline(p, style))?;
    }
    Ok(())
}

/// One line per process, indented under its parent, then the links.
fn render_tree(report: &Report, style: Style, out: &mut dyn Write) -> io::Result<()> {
    let pids: std::collections::BTreeSet<i32> = report.processes.iter().map(|p| p.pid).collect();
    let roots: Vec<&ProcessReport> = report
        .processes
        .iter()
        .filter(|p| p.ppid.is_none_or(|ppid| !pids.contains(&ppid)) || p.role == crate::snapshot::Role::Target)
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    writeln!(out, "{}", style.heading("tree"))?;
    for root in roots {
        tree_node(report, root, "", "", style, &mut seen, out)?;
    }
    render_links(report, style, out)
}

fn tree_node(
    report: &Report,
    p: &ProcessReport,
    lead: &str,
    indent: &str,
    style: Style,
    seen: &mut std::collections::BTreeSet<i32>,
    out: &mut dyn Write,
) -> io::Result<()> {
    if !seen.insert(p.pid) {
        return Ok(());
    }
    writeln!(out, "{lead}{}", headline(p, style))?;
    let children: Vec<&ProcessReport> = report
        .processes
        .iter()
        .filter(|c| c.ppid == Some(p.pid) && c.role != crate::snapshot::Role::Target)
        .collect();
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        let lead = format!("{indent}{}", if last { "└─ " } else { "├─ " });
        let indent = format!("{indent}{}", if last { "   " } else { "│  " });
        tree_node(report, child, &lead, &indent, style, seen, out)?;
    }
    Ok(())
}

fn render_links(report: &Report, style: Style, out: &mut dyn Write) -> io::Result<()> {
    if report.links.is_empty() {
        return Ok(());
    }
    writeln!(out, "{}", style.heading("links"))?;
    for link in &report.links {
        let fill = match (link.buffered_bytes, link.capacity_bytes) {
            (Some(b), Some(c)) => format!(" {b}/{c}"),
            _ => String::new(),
        };
        let full = if link.full == Some(true) {
            style.paint(" FULL", "1;31")
        } else {
            String::new()
        };
        let arrow = if link.kind == "pipe" { "->" } else { "<->" };
        writeln!(
            out,
            "  {} fd {} {arrow} {} fd {}  {} {}{fill}{full}",
            link.from.pid, link.from.fd, link.to.pid, link.to.fd, link.kind, link.inode
        )?;
    }
    Ok(())
}

/// "1200 python3 pipe-full [critical]: blocked writing ..."
fn headline(p: &ProcessReport, style: Style) -> String {
    let comm = p.comm.as_ref().map(TargetString::escaped).unwrap_or_else(|| "?".into());
    // How long it has waited, when known: since its thread last ran.
    let stuck_for = p
        .stuck_for_seconds
        .map(|s| format!(", for {}", describe::elapsed((s * 1000.0) as u64)))
        .unwrap_or_default();
    format!(
        "{} {} {} [{}]: {}{stuck_for}",
        style.heading(&p.pid.to_string()),
        comm,
        style.paint(p.verdict.name(), "1"),
        style.severity(p.severity),
        p.summary
    )
}

fn render_process(p: &ProcessReport, style: Style, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}", headline(p, style))?;
    if let Some(next) = p.findings.first().and_then(|f| f.next_step.as_deref()) {
        writeln!(out, "  {} {next}", style.heading("next:"))?;
    }
    if let Some(tid) = p.named_thread {
        writeln!(
            out,
            "  you named {tid}, a thread of this process: it is judged by that thread"
        )?;
    }
    let Some(d) = p.detail.as_deref() else {
        return Ok(());
    };
    if let Some(cmdline) = &d.cmdline {
        if !cmdline.is_empty() {
            writeln!(out, "  cmdline: {}", shorten(&command_line(cmdline), MAX_CMDLINE_CHARS))?;
        }
    }
    if let Some(c) = &p.container {
        let line = describe::container(c.runtime, c.id.as_deref(), c.pod_uid.as_deref());
        writeln!(out, "  container: {line}")?;
    }
    if p.state.is_some() {
        writeln!(out, "  {}", facts_line(p, d))?;
    }
    if !p.findings.is_empty() {
        writeln!(out, "{}", style.heading("findings"))?;
        for (i, finding) in p.findings.iter().enumerate() {
            writeln!(
                out,
                "  {} {}: {}",
                style.severity(finding.severity),
                finding.kind.name(),
                finding.summary
            )?;
            for evidence in &finding.evidence {
                writeln!(out, "      - {evidence}")?;
            }
            // The deciding thread's kernel stack, where its wchan alone
            // does not say what it waits for.
            let thread = finding.thread.and_then(|tid| d.threads.iter().find(|t| t.tid == tid));
            let unclear = thread
                .is_some_and(|t| t.state.as_deref() == Some("D") || t.wchan.as_deref().and_then(wchan_wait).is_none());
            if let (0, true, Some(stack)) = (i, unclear, thread.and_then(|t| t.kernel_stack.as_ref())) {
                writeln!(out, "      - kernel stack: {}", kernel_stack(stack))?;
            }
        }
    }
    if !d.threads.is_empty() {
        section(out, style, "threads", &threads_table(&d.threads))?;
    }
    let python: Vec<&ThreadReport> = d.threads.iter().filter(|t| t.python_stack.is_some()).collect();
    if !python.is_empty() {
        writeln!(out, "{}", style.heading("python stacks"))?;
        for t in python {
            let frames = t.python_stack.as_deref().unwrap_or_default();
            let shown: Vec<String> = frames
                .iter()
                .take(4)
                .map(|f| {
                    let file = f.file.rsplit('/').next().unwrap_or(&f.file);
                    let line = f.line.map(|l| format!(":{l}")).unwrap_or_default();
                    format!(
                        "{} ({}{line})",
                        escape_bytes(f.function.as_bytes()),
                        escape_bytes(file.as_bytes())
                    )
                })
                .collect();
            let more = if frames.len() > 4 { " <- ..." } else { "" };
            let comm = t.comm.as_ref().map(TargetString::escaped).unwrap_or_default();
            writeln!(out, "  thread {} ({comm}): {}{more}", t.tid, shown.join(" <- "))?;
        }
    }
    if !d.fds.open.is_empty() {
        section(out, style, "fds", &fds_table(d))?;
    }
    if !d.tcp.is_empty() || !d.unix.is_empty() || !d.udp.is_empty() {
        section(out, style, "sockets", &sockets_table(d))?;
    }
    // Kernel threads (kthreadd's children) are counted, not listed, unless
    // --kernel-threads.
    let (children, kernel_threads): (Vec<&ChildReport>, Vec<&ChildReport>) = d
        .children
        .iter()
        .partition(|c| style.kernel_threads || !c.kernel_thread);
    if !children.is_empty() {
        section(out, style, "children", &children_table(&children, style))?;
    }
    if !kernel_threads.is_empty() {
        writeln!(
            out,
            "{} {} kernel threads (--kernel-threads lists them)",
            style.heading("children:"),
            kernel_threads.len()
        )?;
    }
    if let Some(signals) = &d.signals {
        let parts: Vec<String> = [
            ("pending", &signals.pending),
            ("caught", &signals.caught),
            ("blocked", &signals.blocked),
            ("ignored", &signals.ignored),
        ]
        .iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(label, names)| format!("{label} {}", names.join(",")))
        .collect();
        if !parts.is_empty() {
            writeln!(out, "{} {}", style.heading("signals:"), parts.join("; "))?;
        }
    }
    if !d.unavailable.is_empty() {
        writeln!(out, "{}", style.heading("unavailable"))?;
        for u in &d.unavailable {
            writeln!(out, "  {}: {}", u.what, u.reason)?;
        }
    }
    Ok(())
}

/// "pipe_read <- vfs_read <- ksys_read": the innermost frames, without
/// their offsets.
fn kernel_stack(frames: &[String]) -> String {
    const SHOWN: usize = 6;
    let mut names: Vec<&str> = frames
        .iter()
        .take(SHOWN)
        .map(|f| f.split('+').next().unwrap_or(f))
        .collect();
    if frames.len() > SHOWN {
        names.push("...");
    }
    names.join(" <- ")
}

/// "state S, ppid 1, uid 1000, 3 threads, rss 9.1 MiB, cpu 0% over 1s, 4 fds (pipe 2, device 2)"
fn facts_line(p: &ProcessReport, d: &ProcessDetail) -> String {
    let known = |v: Option<String>| v.unwrap_or_else(|| "?".into());
    let cpu = match (d.cpu.percent, d.cpu.interval_ms) {
        (Some(percent), Some(ms)) => format!("cpu {percent:.0}% over {}", duration_ms(ms)),
        _ => "cpu not measured (one sample)".into(),
    };
    format!(
        "state {}, ppid {}, uid {}, {} thread{}, rss {}, {cpu}, {}",
        known(p.state.map(String::from)),
        known(p.ppid.map(|v| v.to_string())),
        known(p.uid.map(|v| v.to_string())),
        d.threads.len(),
        if d.threads.len() == 1 { "" } else { "s" },
        p.rss_bytes.map(bytes).unwrap_or_else(|| "n/a".into()),
        fd_counts(&d.fds),
    )
}

fn fd_counts(fds: &FdsReport) -> String {
    match fds.count {
        Some(0) => "no fds".into(),
        Some(count) => {
            let kinds: Vec<String> = fds.by_type.iter().flatten().map(|(k, n)| format!("{k} {n}")).collect();
            let depth = match fds.listed {
                Some("all") | None => String::new(),
                Some(_) => format!(", {} of them read in depth (--deep reads all)", fds.open.len()),
            };
            format!("{count} fds ({}){depth}", kinds.join(", "))
        }
        None => "fds unavailable".into(),
    }
}
