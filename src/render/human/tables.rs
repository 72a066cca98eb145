//! The tables of a process's report: threads, fds, sockets, children,
//! each kept readable past thousands of rows (`--json` has them all).

use super::super::Style;
use super::{MAX_FD_ROWS, MAX_THREAD_ROWS};
use crate::report::{ChildReport, PeerReport, ProcessDetail, ThreadReport};
use crate::text::TargetString;
use comfy_table::{presets, Table};
use std::collections::BTreeMap;
use std::io::{self, Write};

pub(super) fn children_table(children: &[&ChildReport], style: Style) -> Table {
    let mut table = table(&["PID", "COMM", "STATE", "CPU", "VERDICT"]);
    for c in children {
        let verdict = match (c.verdict, c.severity) {
            (Some(v), Some(s)) => format!("{} [{}]", v.name(), style.severity(s)),
            _ => "-".into(),
        };
        table.add_row(vec![
            c.pid.to_string(),
            c.comm.as_ref().map(TargetString::escaped).unwrap_or_default(),
            c.state.clone().unwrap_or_else(|| "?".into()),
            c.cpu_percent.map(|v| format!("{v:.0}%")).unwrap_or_else(|| "-".into()),
            verdict,
        ]);
    }
    table
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    table.set_header(header.to_vec());
    table
}

pub(super) fn section(out: &mut dyn Write, style: Style, name: &str, table: &Table) -> io::Result<()> {
    writeln!(out, "{}", style.heading(name))?;
    for line in table.lines() {
        writeln!(out, " {}", line.trim_end())?;
    }
    Ok(())
}

fn thread_row(t: &ThreadReport) -> [String; 4] {
    let syscall = match (&t.syscall, t.on_cpu) {
        (_, true) => "running".to_string(),
        (Some(s), _) if s.nr < 0 => "-".to_string(),
        (Some(s), _) => {
            let name = s.name.map(String::from).unwrap_or_else(|| format!("syscall {}", s.nr));
            // Small values are fds and counts, -1 and AT_FDCWD are ints;
            // large ones are addresses.
            let first = match s.args.first().map(|&a| (a, a as u32 as i32)) {
                Some((0xffff_ff9c, _)) => "AT_FDCWD".to_string(),
                Some((a, _)) if a < 1 << 16 => a.to_string(),
                Some((a, signed)) if a <= u64::from(u32::MAX) && (-4096..0).contains(&signed) => signed.to_string(),
                Some((a, _)) => format!("{a:#x}"),
                None => String::new(),
            };
            format!("{name}({first}, ...)")
        }
        (None, false) => "?".to_string(),
    };
    [
        t.comm.as_ref().map(TargetString::escaped).unwrap_or_default(),
        t.state.clone().unwrap_or_else(|| "?".into()),
        t.wchan
            .clone()
            .map(|w| if w.is_empty() { "-".into() } else { w })
            .unwrap_or_else(|| "?".into()),
        syscall,
    ]
}

/// One row per thread, or, past [`MAX_THREAD_ROWS`], one row per distinct
/// (comm, state, wchan, syscall) with a count.
pub(super) fn threads_table(threads: &[ThreadReport]) -> Table {
    let mut table = table(&["TID", "COMM", "STATE", "WCHAN", "SYSCALL"]);
    if threads.len() <= MAX_THREAD_ROWS {
        for t in threads {
            let mut row = vec![t.tid.to_string()];
            row.extend(thread_row(t));
            table.add_row(row);
        }
        return table;
    }
    let mut groups: BTreeMap<[String; 4], Vec<i32>> = BTreeMap::new();
    for t in threads {
        groups.entry(thread_row(t)).or_default().push(t.tid);
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by_key(|(_, tids)| std::cmp::Reverse(tids.len()));
    for (row, tids) in groups.iter().take(MAX_THREAD_ROWS) {
        let mut cells = vec![match tids.as_slice() {
            [one] => one.to_string(),
            [first, ..] => format!("{first} +{}", tids.len() - 1),
            [] => String::new(),
        }];
        cells.extend(row.iter().cloned());
        table.add_row(cells);
    }
    if groups.len() > MAX_THREAD_ROWS {
        table.add_row(vec![format!("... {} more kinds", groups.len() - MAX_THREAD_ROWS)]);
    }
    table
}

pub(super) fn fds_table(d: &ProcessDetail) -> Table {
    let mut table = table(&["FD", "TYPE", "ACCESS", "TARGET", "DETAIL"]);
    // Pipes, sockets and event fds are what waits are made of: past the row
    // limit, keep those, then show the rows in fd order.
    let mut open: Vec<_> = d.fds.open.iter().collect();
    open.sort_by_key(|f| (matches!(f.kind, "file" | "device" | "other" | "namespace"), f.fd));
    let hidden = open.len().saturating_sub(MAX_FD_ROWS);
    open.truncate(MAX_FD_ROWS);
    open.sort_by_key(|f| f.fd);
    for fd in &open {
        let detail = if let Some(pipe) = d.pipes.iter().find(|x| x.fd == fd.fd) {
            let fill = match (pipe.buffered_bytes, pipe.capacity_bytes) {
                (Some(b), Some(c)) => format!("{b}/{c} bytes"),
                _ => "fill unknown".into(),
            };
            let full = if pipe.full == Some(true) { ", FULL" } else { "" };
            format!(
                "{fill}{full}{}",
                peers_text(
                    &pipe.peers,
                    if pipe.end == Some("write") {
                        "read by"
                    } else {
                        "written by"
                    }
                )
            )
        } else if let Some(t) = d.tcp.iter().find(|x| x.fd == fd.fd) {
            format!(
                "tcp {} -> {} {}{}",
                t.local,
                t.remote,
                t.state,
                peers_text(&t.peers, "peer")
            )
        } else if let Some(u) = d.unix.iter().find(|x| x.fd == fd.fd) {
            format!("unix {} {}{}", u.kind, u.state, peers_text(&u.peers, "peer"))
        } else if let Some(u) = d.udp.iter().find(|x| x.fd == fd.fd) {
            format!("udp {} -> {} {}", u.local, u.remote, u.state)
        } else {
            String::new()
        };
        let access = match (fd.access, fd.nonblocking) {
            (Some(a), Some(true)) => format!("{a},nonblock"),
            (Some(a), _) => a.to_string(),
            (None, _) => "?".into(),
        };
        table.add_row(vec![
            fd.fd.to_string(),
            fd.kind.to_string(),
            access,
            fd.target.escaped(),
            detail,
        ]);
    }
    if hidden > 0 {
        let more = format!("... {hidden} more (--json lists all)");
        table.add_row(vec![String::new(), String::new(), String::new(), more]);
    }
    table
}

/// ", read by 1200 (python3) fd 3".
fn peers_text(peers: &[PeerReport], verb: &str) -> String {
    if peers.is_empty() {
        return String::new();
    }
    let names: Vec<String> = peers
        .iter()
        .take(2)
        .map(|p| {
            format!(
                "{} ({}) fd {}",
                p.pid,
                p.comm.as_ref().map(TargetString::escaped).unwrap_or_default(),
                p.fd
            )
        })
        .collect();
    let more = if peers.len() > 2 {
        format!(" +{}", peers.len() - 2)
    } else {
        String::new()
    };
    format!(", {verb} {}{more}", names.join(", "))
}

/// One row per socket; past [`MAX_FD_ROWS`], the busiest (full, or with
/// queued bytes) are kept.
pub(super) fn sockets_table(d: &ProcessDetail) -> Table {
    let mut table = table(&["FD", "PROTO", "LOCAL", "REMOTE / PEER", "STATE", "RECV-Q", "SEND-Q"]);
    // (quiet, fd, cells): quiet rows sort after busy ones.
    let mut rows: Vec<(bool, i32, Vec<String>)> = Vec::new();
    for t in &d.tcp {
        let cells = vec![
            t.fd.to_string(),
            "tcp".into(),
            t.local.clone(),
            t.remote.clone(),
            t.state.clone(),
            t.rx_queue.to_string(),
            t.tx_queue.to_string(),
        ];
        rows.push((t.rx_queue == 0 && t.tx_queue == 0, t.fd, cells));
    }
    let opt = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
    for u in &d.unix {
        let send = match (u.send_buffer_bytes, u.send_buffer_limit) {
            (Some(used), Some(limit)) => format!("{used}/{limit}{}", if u.full == Some(true) { " FULL" } else { "" }),
            _ => opt(u.wqueue),
        };
        let cells = vec![
            u.fd.to_string(),
            format!("unix/{}", u.kind),
            u.path.as_ref().map(TargetString::escaped).unwrap_or_else(|| "-".into()),
            u.peer_inode
                .map(|i| format!("socket:[{i}]"))
                .unwrap_or_else(|| "-".into()),
            u.state.clone(),
            opt(u.rqueue),
            send,
        ];
        let quiet = u.full != Some(true) && u.rqueue.unwrap_or(0) == 0;
        rows.push((quiet, u.fd, cells));
    }
    for u in &d.udp {
        let cells = vec![
            u.fd.to_string(),
            "udp".into(),
            u.local.clone(),
            u.remote.clone(),
            u.state.clone(),
            u.rx_queue.to_string(),
            u.tx_queue.to_string(),
        ];
        rows.push((u.rx_queue == 0 && u.tx_queue == 0, u.fd, cells));
    }
    rows.sort_by_key(|(quiet, fd, _)| (*quiet, *fd));
    let hidden = rows.len().saturating_sub(MAX_FD_ROWS);
    rows.truncate(MAX_FD_ROWS);
    rows.sort_by_key(|(_, fd, _)| *fd);
    for (_, _, cells) in rows {
        table.add_row(cells);
    }
    if hidden > 0 {
        let more = format!("... {hidden} more (--json lists all)");
        table.add_row(vec![String::new(), String::new(), more]);
    }
    table
}
