//! render: one small renderer per output format, all reading the same
//! [`Report`](crate::report::Report).

mod human;
mod json;

pub use human::Style;

use crate::report::Report;
use std::io::{self, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A verdict line per process, its evidence, then tables.
    Human,
    /// One JSON document (schema_version 1).
    Json,
}

pub fn render(report: &Report, format: Format, style: Style, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Human => human::render(report, style, out),
        Format::Json => json::render(report, out),
    }
}
