//! A /proc directory held open by file descriptor.
//!
//! Each pid's directory is opened once and every read is relative to that
//! descriptor: if the pid dies and is reused mid-run, reads through the old
//! descriptor fail with ESRCH instead of silently describing the newcomer.
//! Files are opened `O_RDONLY|O_NONBLOCK|O_CLOEXEC` (a FIFO planted in a fake
//! tree reads as empty instead of blocking) and closed at once.

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

/// No /proc file whystuck reads is legitimately bigger than this; a larger
/// one (a hostile fake tree) is refused rather than allocated.
const MAX_FILE_BYTES: u64 = 64 << 20;

#[derive(Debug)]
pub struct ProcDir {
    fd: OwnedFd,
}

impl ProcDir {
    pub fn open(path: &Path) -> io::Result<ProcDir> {
        let fd = nix::fcntl::open(path, dir_flags(), Mode::empty())?;
        Ok(ProcDir { fd })
    }

    /// A subdirectory (`1234`, `task/1235`), relative to this one.
    pub fn open_dir(&self, rel: &str) -> io::Result<ProcDir> {
        let fd = nix::fcntl::openat(self.fd.as_fd(), rel, dir_flags(), Mode::empty())?;
        Ok(ProcDir { fd })
    }

    /// A file for reading, non-blocking; the caller closes it at once.
    pub fn open_file(&self, rel: &str) -> io::Result<OwnedFd> {
        let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        Ok(nix::fcntl::openat(self.fd.as_fd(), rel, flags, Mode::empty())?)
    }

    /// Read a whole file into `buf` (cleared first), reusing its allocation.
    pub fn read(&self, rel: &str, buf: &mut Vec<u8>) -> io::Result<()> {
        buf.clear();
        let file = std::fs::File::from(self.open_file(rel)?);
        let n = file.take(MAX_FILE_BYTES + 1).read_to_end(buf)?;
        if n as u64 > MAX_FILE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{rel} is larger than 64 MiB"),
            ));
        }
        Ok(())
    }

    /// The text of a symbolic link (an fd's target), never followed.
    pub fn readlink(&self, rel: &str) -> io::Result<Vec<u8>> {
        let target = nix::fcntl::readlinkat(self.fd.as_fd(), rel)?;
        Ok(target.into_vec())
    }

    /// Numeric entry names of a directory (pids, tids, fds), sorted.
    pub fn numeric_entries(&self, rel: &str) -> io::Result<Vec<i32>> {
        let dir_fd = nix::fcntl::openat(self.fd.as_fd(), rel, dir_flags(), Mode::empty())?;
        let mut dir = nix::dir::Dir::from_fd(dir_fd)?;
        let mut entries = Vec::new();
        for entry in dir.iter() {
            let entry = entry?;
            if let Some(n) = std::str::from_utf8(entry.file_name().to_bytes())
                .ok()
                .and_then(|s| s.parse::<i32>().ok())
            {
                entries.push(n);
            }
        }
        entries.sort_unstable();
        Ok(entries)
    }

    pub fn try_clone(&self) -> io::Result<ProcDir> {
        Ok(ProcDir {
            fd: self.fd.try_clone()?,
        })
    }
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}
