//! Choosing processes by what they are (`--all`, `--name`, `--user`): one
//! pass over /proc reading each process's stat, and its cmdline only when the
//! name did not already match.

use super::deadline;
use super::dir::ProcDir;
use super::parse;
use std::path::Path;
use std::time::Duration;

pub struct Filter<'a> {
    /// Matched against the comm, then the command line (arguments joined by spaces).
    pub name: Option<&'a regex::Regex>,
    /// The owner (real uid) of the process.
    pub uid: Option<u32>,
    pub kernel_threads: bool,
}

/// Every process under `proc_root` the filter admits, but whystuck itself.
pub fn scan(proc_root: &Path, filter: &Filter, read_timeout: Duration) -> anyhow::Result<Vec<i32>> {
    let root = ProcDir::open(proc_root).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", proc_root.display()))?;
    let own = std::process::id() as i32;
    let mut buf = Vec::new();
    let mut chosen = Vec::new();
    for pid in root.numeric_entries(".")? {
        if pid == own {
            continue;
        }
        let mut path = format!("{pid}/stat");
        if root.read(&path, &mut buf).is_err() {
            continue; // gone
        }
        let Ok(stat) = parse::stat(&buf) else { continue };
        if stat.is_kernel_thread() && !filter.kernel_threads {
            continue;
        }
        if let Some(uid) = filter.uid {
            path = format!("{pid}/status");
            let owner = root.read(&path, &mut buf).ok().and_then(|()| parse::status(&buf).uid);
            if owner.map(|u| u[0]) != Some(uid) {
                continue;
            }
        }
        if let Some(name) = filter.name {
            let Ok(dir) = root.open_dir(&pid.to_string()) else {
                continue;
            };
            let matches = name.is_match(&stat.comm.lossy())
                || deadline::read(&dir, "cmdline", read_timeout).is_ok_and(|bytes| {
                    let args: Vec<String> = parse::cmdline(&bytes).iter().map(|a| a.lossy().into_owned()).collect();
                    name.is_match(&args.join(" "))
                });
            if !matches {
                continue;
            }
        }
        chosen.push(pid);
    }
    Ok(chosen)
}
