//! What /proc lets this run see. A proc mounted with `hidepid=` hides other
//! users' processes (`invisible`) or refuses to show their details
//! (`noaccess`); a scan that quietly skipped them would report a partial
//! host as the whole one, and a named pid that is merely hidden would look
//! dead. So the mount's setting is read, hidden processes are counted, and a
//! pid /proc will not show is asked about with `pidfd_open`, which creates
//! an fd, touches nothing in the target, and is closed at once.

use super::dir::ProcDir;
use super::parse;
use std::path::Path;

/// The proc mount's `hidepid=` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HidePid {
    Off,
    /// Other users' `/proc/PID` directories are listed but cannot be read.
    NoAccess,
    /// Other users' processes are left out of /proc altogether.
    Invisible,
    /// Processes this user may not ptrace are left out.
    Ptraceable,
}

impl HidePid {
    pub fn name(self) -> &'static str {
        match self {
            HidePid::Off => "off",
            HidePid::NoAccess => "noaccess",
            HidePid::Invisible => "invisible",
            HidePid::Ptraceable => "ptraceable",
        }
    }

    /// Whether processes are left out of /proc (rather than shown unreadable).
    pub fn hides(self) -> bool {
        matches!(self, HidePid::Invisible | HidePid::Ptraceable)
    }

    /// The setting in a mount's super options, in either spelling: kernels
    /// before 5.8 print the number.
    fn parse(value: &str) -> Option<HidePid> {
        match value {
            "0" | "off" => Some(HidePid::Off),
            "1" | "noaccess" => Some(HidePid::NoAccess),
            "2" | "invisible" => Some(HidePid::Invisible),
            "4" | "ptraceable" => Some(HidePid::Ptraceable),
            _ => None,
        }
    }
}

/// What restricts this run's view of the proc mount at `proc_root`: its
/// `hidepid=` setting, `Off` when this run holds `CAP_SYS_PTRACE` (which
/// sees past it), `None` when it cannot be known (a fake tree, an
/// unreadable mountinfo).
pub fn restriction(root: &ProcDir, proc_root: &Path) -> Option<HidePid> {
    let mut buf = Vec::new();
    root.read("self/mountinfo", &mut buf).ok()?;
    // A path the caller named: resolved with the caller's rights.
    let mount_point = crate::privilege::open_as_caller(|| std::fs::canonicalize(proc_root)).ok()?;
    let setting = hidepid_of(&String::from_utf8_lossy(&buf), &mount_point.to_string_lossy())?;
    if setting == HidePid::Off {
        return Some(setting);
    }
    let sees_past = own_capabilities().is_some_and(|caps| caps & CAP_SYS_PTRACE != 0);
    Some(if sees_past { HidePid::Off } else { setting })
}

const CAP_DAC_READ_SEARCH: u64 = 1 << 2;
const CAP_SYS_PTRACE: u64 = 1 << 19;
const CAP_SYS_ADMIN: u64 = 1 << 21;

/// Whether this run may read kernel stacks (`/proc/PID/task/TID/stack`
/// wants CAP_SYS_ADMIN: root's, beyond the two capabilities of the full
/// view). Without it they are not asked for: not a fact refused, a fact
/// this run does not collect.
pub fn reads_kernel_stacks() -> bool {
    own_capabilities().is_some_and(|caps| caps & CAP_SYS_ADMIN != 0)
}

/// This process's effective capabilities.
fn own_capabilities() -> Option<u64> {
    let status = std::fs::read("/proc/self/status").ok()?;
    parse::line_value(&status, "CapEff").and_then(|v| u64::from_str_radix(v, 16).ok())
}

/// Whether this run holds what it takes to read every process's /proc
/// (CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, as root does): when a read is
/// refused anyway, more privilege is not the answer.
pub fn full_view() -> Option<bool> {
    let both = CAP_SYS_PTRACE | CAP_DAC_READ_SEARCH;
    own_capabilities().map(|caps| caps & both == both)
}

/// The `hidepid=` of the proc file system mounted last at `mount_point`, in
/// mountinfo text (`hidepid` absent means off).
fn hidepid_of(mountinfo: &str, mount_point: &str) -> Option<HidePid> {
    let mut found = None;
    for line in mountinfo.lines() {
        let Some((mount, fs)) = line.split_once(" - ") else {
            continue;
        };
        let mut fs = fs.split(' ');
        let (Some("proc"), Some(_source), Some(options)) = (fs.next(), fs.next(), fs.next()) else {
            continue;
        };
        // Mount points escape space, tab, newline and backslash as octal.
        let point = mount.split(' ').nth(4).map(|p| {
            p.replace("\\040", " ")
                .replace("\\011", "\t")
                .replace("\\012", "\n")
                .replace("\\134", "\\")
        });
        if point.as_deref() != Some(mount_point) {
            continue;
        }
        found = Some(
            options
                .split(',')
                .find_map(|o| o.strip_prefix("hidepid="))
                .map_or(Some(HidePid::Off), HidePid::parse)?,
        );
    }
    found
}

/// About how many threads of processes this run cannot see: the kernel's
/// count of all threads (/proc/loadavg) less those visible. `None` when the
/// count is not comparable: the proc mount shows another pid namespace than
/// the one loadavg counts, or this run is itself in a child pid namespace.
pub fn hidden_threads(root: &ProcDir, visible_threads: u64) -> Option<u64> {
    let mut buf = Vec::new();
    root.read("self/status", &mut buf).ok()?;
    // NSpid lists the pid in each namespace from the outermost: one entry
    // means the initial pid namespace, the one loadavg counts.
    let depth = parse::line_value(&buf, "NSpid").map(|v| v.split_ascii_whitespace().count());
    if depth != Some(1) {
        return None;
    }
    root.read("loadavg", &mut buf).ok()?;
    let total = parse::loadavg_threads(&buf)?;
    Some(total.saturating_sub(visible_threads))
}

/// Whether `pid` exists although /proc does not show it: `Some(true)` when
/// `pidfd_open` finds it, `Some(false)` when it finds no such process,
/// `None` when the kernel cannot say (no pidfd_open, or a sandbox denies it).
pub fn exists_unseen(pid: i32) -> Option<bool> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd >= 0 {
        // SAFETY: the fd was just returned to us and is closed once.
        unsafe { libc::close(fd as i32) };
        return Some(true);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ESRCH) => Some(false),
        // A thread that is not its process's leader (kernels before 6.9).
        Some(libc::EINVAL) => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACKED: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
63 22 0:39 / /proc rw,relatime - proc proc rw,hidepid=invisible
70 27 0:40 / /mnt/other\\040proc rw - proc proc rw,hidepid=1
71 27 0:41 / /srv rw - tmpfs proc rw,hidepid=2
";

    #[test]
    fn the_mount_on_top_decides() {
        assert_eq!(hidepid_of(STACKED, "/proc"), Some(HidePid::Invisible));
    }

    #[test]
    fn numeric_settings_and_escaped_mount_points_are_read() {
        assert_eq!(hidepid_of(STACKED, "/mnt/other proc"), Some(HidePid::NoAccess));
    }

    #[test]
    fn no_option_means_off_and_other_file_systems_do_not_count() {
        assert_eq!(hidepid_of(STACKED.lines().next().unwrap(), "/proc"), Some(HidePid::Off));
        assert_eq!(hidepid_of(STACKED, "/srv"), None);
        assert_eq!(
            hidepid_of("63 22 0:39 / /proc rw - proc proc rw,hidepid=9", "/proc"),
            None
        );
    }

    #[test]
    fn an_existing_pid_is_found_and_a_free_one_is_not() {
        assert_eq!(exists_unseen(std::process::id() as i32), Some(true));
        // Above the largest pid_max Linux allows (2^22).
        assert_eq!(exists_unseen(5_000_000), Some(false));
    }
}
