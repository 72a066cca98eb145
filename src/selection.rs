//! Turning the command line's selection (pids, pidfiles, --all, --name,
//! --user) into the pids to diagnose.

use crate::cli::Selection;
use crate::collect::helper::HelperConfig;
use crate::collect::select::{scan, Filter, Prefetched};
use crate::snapshot::Visibility;
use anyhow::{anyhow, bail, Context};
use std::io::Read;
use std::path::Path;
use std::time::Instant;

/// The selection chose nothing: its own exit code, so cron can tell "no such
/// process" from "a process is stuck".
#[derive(Debug)]
pub struct NothingSelected {
    pub message: String,
    /// What the scan could not see, when the selection scanned /proc.
    pub visibility: Option<Visibility>,
}

impl std::fmt::Display for NothingSelected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NothingSelected {}

/// The processes a selection chose.
pub struct Selected {
    /// In the order given, each once.
    pub pids: Vec<i32>,
    /// What the scan could not see, when the selection scanned /proc.
    pub visibility: Option<Visibility>,
    /// What the scan opened and read of the processes it chose.
    pub prefetched: Prefetched,
}

/// The pids to diagnose.
/// A `--name` scan reads no command line past `deadline`.
pub fn resolve(selection: &Selection, helper: &HelperConfig, deadline: Instant) -> anyhow::Result<Selected> {
    let mut pids = selection.pids.clone();
    for path in &selection.pidfile {
        pids.push(read_pidfile(path)?);
    }
    let filtering = selection.all || selection.name.is_some() || selection.user.is_some();
    let (mut visibility, mut prefetched) = (None, Prefetched::default());
    if filtering {
        let uid = selection.user.as_deref().map(resolve_user).transpose()?;
        let filter = Filter {
            name: selection.name.as_ref(),
            uid,
            kernel_threads: selection.kernel_threads,
        };
        let scanned = scan(helper, &filter, deadline)?;
        let (found, seen) = (scanned.pids, scanned.visibility);
        if found.is_empty() && pids.is_empty() {
            let hidden = crate::describe::host_unseen(&seen)
                .map(|note| format!(" among the processes this user can see ({note})"))
                .unwrap_or_default();
            return Err(NothingSelected {
                message: format!("no process matches {}{hidden}", describe(selection)),
                visibility: Some(seen),
            }
            .into());
        }
        pids.extend(found);
        visibility = Some(seen);
        prefetched = scanned.prefetched;
    }
    if pids.is_empty() {
        bail!("no process to look at: name a PID, or use --all, --name, --user or --pidfile (see whystuck --help)");
    }
    let mut seen = std::collections::HashSet::new();
    pids.retain(|pid| seen.insert(*pid));
    Ok(Selected {
        pids,
        visibility,
        prefetched,
    })
}

fn describe(selection: &Selection) -> String {
    let mut parts = Vec::new();
    if let Some(name) = &selection.name {
        parts.push(format!("--name '{}'", name.as_str()));
    }
    if let Some(user) = &selection.user {
        parts.push(format!("--user {user}"));
    }
    if parts.is_empty() {
        parts.push("--all".into());
    }
    if !selection.kernel_threads {
        parts.push("(kernel threads left out)".into());
    }
    parts.join(" ")
}

/// A user name or uid to a uid.
fn resolve_user(user: &str) -> anyhow::Result<u32> {
    if let Ok(uid) = user.parse::<u32>() {
        return Ok(uid);
    }
    match nix::unistd::User::from_name(user) {
        Ok(Some(found)) => Ok(found.uid.as_raw()),
        Ok(None) => bail!("--user {user}: no such user"),
        Err(e) => bail!("--user {user}: cannot look it up: {e}"),
    }
}

/// The pid in a pidfile: the first line, a positive integer. Opened with the
/// caller's own rights (a whystuck holding capabilities reads no file for
/// its caller), non-blocking and only if it is a regular file, so a FIFO
/// cannot hang us. A missing or empty pidfile (a daemon that is not
/// running) chooses no process; one that cannot be read or holds no pid is
/// an error, which quotes the start of the line, escaped: the caller could
/// read it.
fn read_pidfile(path: &Path) -> anyhow::Result<i32> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.display();
    let nothing = |why: &str| NothingSelected {
        message: format!("--pidfile {name}: {why}: no process to look at"),
        visibility: None,
    };
    let opened = crate::privilege::open_as_caller(|| {
        std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
    });
    let file = match opened {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(nothing("no such file").into()),
        opened => opened.with_context(|| format!("--pidfile {name}: cannot open"))?,
    };
    if !file
        .metadata()
        .with_context(|| format!("--pidfile {name}: cannot stat"))?
        .is_file()
    {
        bail!("--pidfile {name}: not a regular file");
    }
    let mut bytes = Vec::new();
    file.take(4096)
        .read_to_end(&mut bytes)
        .with_context(|| format!("--pidfile {name}: cannot read"))?;
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default().trim_ascii();
    if first.is_empty() {
        return Err(nothing("empty").into());
    }
    match std::str::from_utf8(first).ok().and_then(|s| s.parse::<i32>().ok()) {
        Some(pid) if pid > 0 => Ok(pid),
        _ => Err(anyhow!(
            "--pidfile {name}: line 1: not a pid ({} bytes): {}",
            first.len(),
            quote_start(first)
        )),
    }
}

/// The first bytes of a line, escaped for a terminal and quoted, `...` when
/// cut short.
fn quote_start(line: &[u8]) -> String {
    const SHOWN: usize = 24;
    let more = if line.len() > SHOWN { "..." } else { "" };
    format!(
        "\"{}\"{more}",
        crate::text::escape_bytes(&line[..line.len().min(SHOWN)])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_is_not_a_pid_is_quoted_short_and_escaped() {
        assert_eq!(quote_start(b"12ab"), "\"12ab\"");
        assert_eq!(
            quote_start(b"root:*:20228:0:99999:7:::"),
            "\"root:*:20228:0:99999:7::\"..."
        );
        assert_eq!(quote_start(b"\x1b]0;x\x07"), "\"\\x1b]0;x\\x07\"");
    }

    #[test]
    fn a_pidfile_is_read_to_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pid");
        let read = |contents: &[u8]| {
            std::fs::write(&file, contents).unwrap();
            read_pidfile(&file).map_err(|e| format!("{e:#}"))
        };
        assert_eq!(read(b" 42 \nignored\n"), Ok(42));
        let name = file.display();
        assert_eq!(
            read(b"secret\xff\n42\n"),
            Err(format!(
                "--pidfile {name}: line 1: not a pid (7 bytes): \"secret\\xff\""
            ))
        );
        assert_eq!(
            read(b"-3\n"),
            Err(format!("--pidfile {name}: line 1: not a pid (2 bytes): \"-3\""))
        );
        assert!(read(b"\n42\n").unwrap_err().contains("empty: no process to look at"));
    }
}
