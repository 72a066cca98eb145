//! `--format prometheus`: the text exposition format, for node_exporter's
//! textfile collector.
//!
//! Labels are bounded: `pid` and `comm` on per-process series (one series
//! per process in a run), plus `verdict` and `severity` on
//! `whystuck_process_verdict_info`, with `container_id` and `pod_uid` there
//! too for a process in a container or pod (labels of the one series, so
//! the series count stays one per process), and `verdict` alone on
//! `whystuck_processes` (one series per possible verdict). A value that
//! could not be measured is left out, never written as 0.

use crate::classify::{Severity, Verdict};
use crate::report::{ProcessReport, Report};
use std::fmt::Write as _;
use std::io::{self, Write};

struct Metric {
    name: &'static str,
    help: &'static str,
    value: fn(&ProcessReport) -> Option<f64>,
}

const PER_PROCESS: &[Metric] = &[
    Metric {
        name: "whystuck_process_severity",
        help: "Severity of the verdict: 0 ok, 1 info, 2 warn, 3 critical.",
        value: |p| Some(severity_value(p.severity)),
    },
    Metric {
        name: "whystuck_process_cpu_percent",
        help: "CPU use between the two samples, 100 = one core.",
        value: |p| p.detail.as_ref()?.cpu.percent,
    },
    Metric {
        name: "whystuck_process_resident_memory_bytes",
        help: "Resident set size.",
        value: |p| p.rss_bytes.map(|b| b as f64),
    },
    Metric {
        name: "whystuck_process_open_fds",
        help: "Open file descriptors.",
        value: |p| p.detail.as_ref()?.fds.count.map(|n| n as f64),
    },
    Metric {
        name: "whystuck_process_threads",
        help: "Threads.",
        value: |p| {
            let threads = &p.detail.as_ref()?.threads;
            (!threads.is_empty()).then_some(threads.len() as f64)
        },
    },
    Metric {
        name: "whystuck_process_tcp_established",
        help: "ESTABLISHED TCP connections.",
        value: |p| {
            let d = p.detail.as_ref()?;
            d.fds
                .count
                .map(|_| d.tcp.iter().filter(|t| t.state == "ESTABLISHED").count() as f64)
        },
    },
    Metric {
        name: "whystuck_process_fullest_pipe_ratio",
        help: "Bytes buffered over capacity of its fullest pipe (1 = full).",
        value: |p| {
            p.detail
                .as_ref()?
                .pipes
                .iter()
                .filter_map(|pipe| Some(pipe.buffered_bytes? as f64 / pipe.capacity_bytes.filter(|&c| c > 0)? as f64))
                .fold(None, |max: Option<f64>, r| Some(max.map_or(r, |m| m.max(r))))
        },
    },
];

fn severity_value(severity: Severity) -> f64 {
    match severity {
        Severity::Ok => 0.0,
        Severity::Info => 1.0,
        Severity::Warn => 2.0,
        Severity::Critical => 3.0,
    }
}

/// A label value, escaped as the exposition format wants (backslash, double
/// quote, newline); invalid UTF-8 is replaced.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The comm is escaped as for a terminal first (a `.prom` file gets `cat`
/// too), then for the format.
fn labels(p: &ProcessReport) -> String {
    let comm = p.comm.as_ref().map(|c| c.escaped()).unwrap_or_default();
    format!("pid=\"{}\",comm=\"{}\"", p.pid, label(&comm))
}

fn header(text: &mut String, name: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge");
}

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut text = String::new();
    header(
        &mut text,
        "whystuck_process_verdict_info",
        "The verdict whystuck reached for a process (the verdict is a label).",
    );
    for p in &report.processes {
        let container = p.container.as_ref();
        let container_labels: String = [
            ("container_id", container.and_then(|c| c.id.as_deref())),
            ("pod_uid", container.and_then(|c| c.pod_uid.as_deref())),
        ]
        .iter()
        .filter_map(|(name, value)| Some(format!(",{name}=\"{}\"", label((*value)?))))
        .collect();
        let _ = writeln!(
            text,
            "whystuck_process_verdict_info{{{},verdict=\"{}\",severity=\"{}\"{container_labels}}} 1",
            labels(p),
            p.verdict.name(),
            p.severity.name()
        );
    }
    for metric in PER_PROCESS {
        header(&mut text, metric.name, metric.help);
        for p in &report.processes {
            if let Some(value) = (metric.value)(p) {
                let _ = writeln!(text, "{}{{{}}} {value}", metric.name, labels(p));
            }
        }
    }
    header(
        &mut text,
        "whystuck_processes",
        "Processes diagnosed in this run, by verdict.",
    );
    for verdict in Verdict::ALL {
        let count = report.processes.iter().filter(|p| p.verdict == verdict).count();
        let _ = writeln!(text, "whystuck_processes{{verdict=\"{}\"}} {count}", verdict.name());
    }
    if let Some(visibility) = &report.visibility {
        header(
            &mut text,
            "whystuck_unreadable_processes",
            "Processes listed in /proc whose details this run may not read (hidepid=noaccess).",
        );
        let _ = writeln!(
            text,
            "whystuck_unreadable_processes {}",
            visibility.unreadable_processes
        );
        header(
            &mut text,
            "whystuck_vanished_processes",
            "Processes a scan chose that exited while it read them, left out of the counts above.",
        );
        let _ = writeln!(text, "whystuck_vanished_processes {}", visibility.vanished);
        if let Some(hidden) = visibility.hidden_threads {
            header(
                &mut text,
                "whystuck_hidden_threads",
                "About how many threads the kernel counts that /proc hid from this run (hidepid=invisible).",
            );
            let _ = writeln!(text, "whystuck_hidden_threads {hidden}");
        }
    }
    header(
        &mut text,
        "whystuck_last_run_timestamp_seconds",
        "When the diagnosed facts were collected, in Unix time.",
    );
    let _ = writeln!(
        text,
        "whystuck_last_run_timestamp_seconds {}",
        report.host.captured_at_unix_ms as f64 / 1000.0
    );
    out.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_per_the_format() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(
            label("\u{1b}[31m"),
            "\u{1b}[31m",
            "other bytes are legal in a label value"
        );
    }
}
