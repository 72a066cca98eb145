//! `watch`'s events: a line for a person, or a JSON object per line.

use super::Style;
use crate::cli::WatchFormat;
use crate::describe;
use crate::watch::event::Event;
use std::io::{self, Write};

pub fn event(out: &mut dyn Write, format: WatchFormat, style: Style, event: &Event) -> io::Result<()> {
    match format {
        WatchFormat::Ndjson => {
            serde_json::to_writer(&mut *out, event)?;
            writeln!(out)?;
        }
        WatchFormat::Human => {
            let suffix = match (event.event, event.previous_verdict) {
                ("change", Some(previous)) => format!(" (was {})", previous.name()),
                ("still", _) => format!(
                    " (still, nothing moved for {})",
                    describe::elapsed(event.still_for_seconds * 1000)
                ),
                _ => String::new(),
            };
            let verdict = match event.event {
                "ended" => "ended",
                _ => event.verdict.name(),
            };
            writeln!(
                out,
                "{} {} {} {verdict} [{}]: {}{suffix}",
                event.timestamp,
                event.pid,
                event.comm,
                style.severity(event.severity),
                event.summary
            )?;
        }
    }
    out.flush()
}
