//! Presentation choices for the human formats (the report and watch's
//! lines): colours, only when asked (a terminal without `NO_COLOR`, or
//! `--color always`), and what to fold.

use crate::classify::Severity;

/// How to print for a person.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub color: bool,
    /// List kernel threads among a process's children (kthreadd's), not
    /// just count them.
    pub kernel_threads: bool,
}

impl Style {
    pub(crate) fn paint(self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub(crate) fn severity(self, severity: Severity) -> String {
        let code = match severity {
            Severity::Critical => "1;31",
            Severity::Warn => "1;33",
            Severity::Info => "36",
            Severity::Ok => "32",
        };
        self.paint(severity.name(), code)
    }

    pub(crate) fn heading(self, text: &str) -> String {
        self.paint(text, "1")
    }
}
