//! `--format ndjson`: one JSON object per process per line, stamped with the
//! time of the snapshot and the host, so cron can append to one file.

use crate::report::{ProcessReport, Report, REPORT_SCHEMA_VERSION};
use crate::snapshot::Visibility;
use serde::Serialize;
use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

#[derive(Serialize, schemars::JsonSchema)]
pub struct Line<'a> {
    timestamp: String,
    host: Option<&'a str>,
    schema_version: u32,
    /// On every line of a scan, so each says what the scan could not see.
    #[serde(skip_serializing_if = "Option::is_none")]
    visibility: Option<&'a Visibility>,
    #[serde(flatten)]
    process: &'a ProcessReport,
}

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let timestamp =
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(report.host.captured_at_unix_ms));
    for process in &report.processes {
        let line = Line {
            timestamp: timestamp.to_string(),
            host: report.host.hostname.as_deref(),
            schema_version: REPORT_SCHEMA_VERSION,
            visibility: report.visibility.as_ref(),
            process,
        };
        serde_json::to_writer(&mut *out, &line)?;
        writeln!(out)?;
    }
    Ok(())
}
