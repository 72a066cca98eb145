//! What whystuck's privileges are for, and what they are not.
//!
//! The README suggests installing whystuck with two file capabilities,
//! `CAP_SYS_PTRACE` and `CAP_DAC_READ_SEARCH`, so that whoever may run it
//! sees every process. They are for /proc and sock_diag only. A path the
//! caller names (`--pidfile`, `--from`, `--lock`, `--proc-root`, `capture
//! -o`) is opened with the caller's own rights: otherwise `whystuck
//! --pidfile /etc/shadow` would read a file its caller may not, and quote it
//! in the error.
//!
//! How: [`open_as_caller`] empties the calling thread's *effective*
//! capability set (capset(2)) for the open, and restores it right after.
//! The *permitted* set keeps the capabilities, so raising them again needs
//! no privilege. Only the open, where the kernel checks access, runs
//! without them; what it returns (a file, a held directory) is then used as
//! opened. Not `access(2)` and then an open: the path can change in between.
//!
//! - No capabilities in effect (a plain install, a user running their own
//!   build): nothing to lower; the open runs as it is, after one capget.
//! - Root (effective uid 0): its capabilities are its own rights, not the
//!   binary's, so nothing is lowered and root opens what root may.
//! - Capabilities belong to a thread: the lowering affects only the thread
//!   that opens, which is what it should affect. whystuck opens these paths
//!   from its main thread; the threads that sample processes beside it (see
//!   `collect/pool.rs`) read only /proc, through directories held open, and
//!   are started after any [`give_up`], whose sets they inherit; the
//!   collection's backstop thread (`collect/backstop.rs`), started before
//!   it, opens nothing.
//! - Lowering that fails fails the open (never opened with the
//!   capabilities instead); raising again cannot be refused by the kernel
//!   (it stays within the permitted set), and if it ever were, the run
//!   would go on with fewer rights, its /proc reads saying so.
//!
//! A proc root that is not the root of a proc file system (a fake tree,
//! `--proc-root DIR`) is the caller's own files throughout, symbolic links
//! included: holding its directory is not enough, since every read under it
//! follows paths the caller laid out. Reading one gives the capabilities up
//! for the rest of the process ([`give_up`]).
//!
//! Set-uid and set-gid installs are refused ([`refuse_set_id`]): the ids
//! then differ for every access, not only for /proc, and lowering
//! capabilities would not undo a changed uid.

use anyhow::bail;
use std::io;

/// `_LINUX_CAPABILITY_VERSION_3`: 64 capability bits, in two 32-bit words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    /// 0: the calling thread.
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`: one 32-bit word of each set.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The calling thread's capability sets, low word first.
type Caps = [CapData; 2];

fn capget() -> io::Result<Caps> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = Caps::default();
    // SAFETY: a version-3 header and the two data words that version takes.
    if unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(data)
}

fn capset(data: &Caps) -> io::Result<()> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: a version-3 header and the two data words that version takes;
    // the kernel only reads them.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Run `open` (an open of a path the caller named) with the caller's own
/// rights: the effective capabilities lowered, and raised again after.
pub fn open_as_caller<T>(open: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let Some(saved) = lower()? else {
        return open();
    };
    let opened = open();
    // Within the permitted set: the kernel allows it (see the module doc).
    let _ = capset(&saved);
    opened
}

/// Empty the effective set; the sets as they were, when there was
/// anything to lower.
fn lower() -> io::Result<Option<Caps>> {
    if is_root() {
        return Ok(None);
    }
    lower_effective()
}

fn lower_effective() -> io::Result<Option<Caps>> {
    let saved = capget().map_err(|e| cannot_lower("read", e))?;
    if saved.iter().all(|word| word.effective == 0) {
        return Ok(None);
    }
    let lowered = saved.map(|word| CapData { effective: 0, ..word });
    capset(&lowered).map_err(|e| cannot_lower("lower", e))?;
    Ok(Some(saved))
}

fn cannot_lower(what: &str, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("cannot {what} this process's capabilities to open it with the caller's rights: {e}"),
    )
}

/// Give every capability up for good (effective, permitted, inheritable),
/// and with `no_new_privs` let no program this one runs (its read helper)
/// gain any from its file: for a run that reads only the caller's files.
/// Root keeps its own, as in [`open_as_caller`].
pub fn give_up() -> io::Result<()> {
    if is_root() {
        return Ok(());
    }
    let none = Caps::default();
    if capget()? != none {
        capset(&none)?;
    }
    // SAFETY: PR_SET_NO_NEW_PRIVS takes the value 1 and unused zeros.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Refuse a set-uid or set-gid run: the real and effective ids differ.
///
/// Not AT_SECURE: the kernel sets it for an exec that gains file
/// capabilities too, which is the install the README recommends.
pub fn refuse_set_id() -> anyhow::Result<()> {
    let (uid, gid) = (nix::unistd::getresuid()?, nix::unistd::getresgid()?);
    let advice =
        "install it with file capabilities instead (setcap cap_sys_ptrace,cap_dac_read_search+ep, see the README)";
    if uid.real != uid.effective {
        bail!(
            "refusing to run set-uid (real uid {}, effective uid {}): {advice}",
            uid.real,
            uid.effective
        );
    }
    if gid.real != gid.effective {
        bail!(
            "refusing to run set-gid (real gid {}, effective gid {}): {advice}",
            gid.real,
            gid.effective
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sets_read_back_as_they_are_set() {
        let before = capget().unwrap();
        capset(&before).unwrap();
        assert_eq!(capget().unwrap(), before);
    }

    #[test]
    fn opening_as_the_caller_leaves_the_sets_as_they_were() {
        // Run in a thread of its own: capabilities are per thread, and the
        // other tests' threads keep theirs.
        std::thread::spawn(|| {
            let before = capget().unwrap();
            let inside = open_as_caller(capget).unwrap();
            if is_root() {
                assert_eq!(inside, before, "root's own rights are not lowered");
            } else {
                assert!(inside.iter().all(|w| w.effective == 0), "{inside:?}");
                assert_eq!(inside.map(|w| w.permitted), before.map(|w| w.permitted));
            }
            assert_eq!(capget().unwrap(), before);
            let failed: io::Result<()> = open_as_caller(|| Err(io::Error::from_raw_os_error(libc::EACCES)));
            assert_eq!(failed.unwrap_err().raw_os_error(), Some(libc::EACCES));
            assert_eq!(capget().unwrap(), before, "restored after a failed open too");
        })
        .join()
        .unwrap();
    }

    /// The lowering itself, which root skips: whatever this test runs as.
    #[test]
    fn lowering_empties_the_effective_set_and_keeps_the_permitted_one() {
        std::thread::spawn(|| {
            let before = capget().unwrap();
            let Some(saved) = lower_effective().unwrap() else {
                assert!(before.iter().all(|w| w.effective == 0), "{before:?}");
                eprintln!("SKIPPED: no capabilities in effect to lower");
                return;
            };
            assert_eq!(saved, before);
            let lowered = capget().unwrap();
            assert!(lowered.iter().all(|w| w.effective == 0), "{lowered:?}");
            assert_eq!(lowered.map(|w| w.permitted), before.map(|w| w.permitted));
            capset(&saved).unwrap();
            assert_eq!(capget().unwrap(), before, "raised again from the permitted set");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_plain_run_is_not_set_id() {
        refuse_set_id().unwrap();
    }
}
