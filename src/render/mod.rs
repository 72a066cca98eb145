//! render: one small renderer per output format, all reading the same
//! [`Report`](crate::report::Report).

mod human;
mod json;
mod ndjson;
mod prometheus;
mod style;
pub mod watch;

/// One NDJSON line, for its schema.
pub type NdjsonLine = ndjson::Line<'static>;
pub use style::Style;

use crate::report::Report;
use std::io::{self, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A verdict line per process, its evidence, then tables.
    Human,
    /// One JSON document (schema_version 1).
    Json,
    /// One JSON line per process, with a timestamp and the host name: to append from cron.
    Ndjson,
    /// The text exposition format, for node_exporter's textfile collector.
    Prometheus,
}

/// The least severity whose processes the format shows in full, when it
/// does not show every process in full: the human overview of many.
pub fn detail_from(format: Format, processes: usize) -> Option<crate::classify::Severity> {
    (format == Format::Human && processes > human::OVERVIEW_ABOVE).then_some(crate::classify::Severity::Warn)
}

pub fn render(report: &Report, format: Format, style: Style, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Human => human::render(report, style, out),
        Format::Json => json::render(report, out),
        Format::Ndjson => ndjson::render(report, out),
        Format::Prometheus => prometheus::render(report, out),
    }
}
