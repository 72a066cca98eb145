//! A /proc directory held open by file descriptor.
//!
//! Each pid's directory is opened once and every read is relative to that
//! descriptor: if the pid dies and is reused mid-run, reads through the old
//! descriptor fail with ESRCH instead of silently describing the newcomer.
//! Files are opened `O_RDONLY|O_NONBLOCK|O_CLOEXEC` (a FIFO planted in a fake
//! tree reads as empty instead of blocking) and closed at once.

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
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
    fn open(path: &Path) -> io::Result<ProcDir> {
        let fd = nix::fcntl::open(path, dir_flags(), Mode::empty())?;
        Ok(ProcDir { fd })
    }

    /// The proc root the caller named (`--proc-root`, `/proc` by default),
    /// opened with the caller's own rights (see [`crate::privilege`]).
    /// Reads under the root of a proc file system then use whystuck's
    /// capabilities: the kernel lays that tree out. Any other directory (a
    /// fake tree) is the caller's own files, symbolic links included, and
    /// is read with the caller's rights throughout: the capabilities are
    /// given up.
    pub fn open_root(path: &Path) -> io::Result<ProcDir> {
        let root = crate::privilege::open_as_caller(|| ProcDir::open(path))?;
        if !root.is_proc_mount_root() {
            crate::privilege::give_up()?;
        }
        Ok(root)
    }

    /// Whether this is the root directory of a proc mount (inode 1 of a
    /// proc file system), not a directory within one (`/proc/PID/fd`, whose
    /// entries lead anywhere) or elsewhere.
    pub fn is_proc_mount_root(&self) -> bool {
        const PROC_ROOT_INO: u64 = 1;
        let proc = nix::sys::statfs::fstatfs(self.fd.as_fd())
            .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
        proc && nix::sys::stat::fstat(self.fd.as_fd()).is_ok_and(|st| st.st_ino == PROC_ROOT_INO)
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

    /// A directory outside /proc (a cgroup mount), opened with the caller's
    /// own rights.
    pub fn open_as_caller(path: &Path) -> io::Result<ProcDir> {
        crate::privilege::open_as_caller(|| ProcDir::open(path))
    }

    /// Read a whole file into `buf` (cleared first), reusing its allocation.
    pub fn read(&self, rel: &str, buf: &mut Vec<u8>) -> io::Result<()> {
        let file = self.open_file(rel)?;
        read_whole(&file, rel, buf)
    }

    /// [`ProcDir::read`], the file opened with the caller's own rights: for
    /// files outside /proc, which whystuck's capabilities are not for.
    pub fn read_as_caller(&self, rel: &str, buf: &mut Vec<u8>) -> io::Result<()> {
        let file = crate::privilege::open_as_caller(|| self.open_file(rel))?;
        read_whole(&file, rel, buf)
    }

    /// The text of a symbolic link (an fd's target), never followed: read
    /// on the stack and copied once, exactly sized (a scan reads tens of
    /// thousands).
    pub fn readlink(&self, rel: &str) -> io::Result<Vec<u8>> {
        let mut buf = [0u8; 512];
        let n = with_c_path(rel, |path| {
            // SAFETY: `path` is NUL-terminated; the kernel writes at most
            // `buf.len()` bytes into `buf`.
            unsafe { libc::readlinkat(self.fd.as_raw_fd(), path, buf.as_mut_ptr().cast(), buf.len()) }
        })?;
        super::backstop::read_returned();
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if (n as usize) < buf.len() {
            return Ok(buf[..n as usize].to_vec());
        }
        // Longer than the stack buffer (a deep path): as long as it takes.
        let target = nix::fcntl::readlinkat(self.fd.as_fd(), rel)?;
        Ok(target.into_vec())
    }

    /// Numeric entry names of a directory (pids, tids, fds), sorted.
    pub fn numeric_entries(&self, rel: &str) -> io::Result<Vec<i32>> {
        Ok(self.open_listing(rel)?.1)
    }

    /// A subdirectory, held open, and its numeric entry names, sorted: an
    /// fd directory's links and a task directory's files are then read
    /// relative to it (`N`, not `fd/N` from the pid's: one path component
    /// fewer for the kernel to walk, for each of thousands of fds).
    pub fn open_listing(&self, rel: &str) -> io::Result<(ProcDir, Vec<i32>)> {
        let dir = self.open_dir(rel)?;
        let entries = numeric_names(&dir.fd)?;
        Ok((dir, entries))
    }
}

/// Call `f` with `rel` as a NUL-terminated C string, on the stack when short.
fn with_c_path<T>(rel: &str, f: impl FnOnce(*const libc::c_char) -> T) -> io::Result<T> {
    let invalid = || io::Error::from_raw_os_error(libc::EINVAL);
    if rel.as_bytes().contains(&0) {
        return Err(invalid());
    }
    let mut short = [0u8; 64];
    if rel.len() < short.len() {
        short[..rel.len()].copy_from_slice(rel.as_bytes());
        return Ok(f(short.as_ptr().cast()));
    }
    let long = std::ffi::CString::new(rel).map_err(|_| invalid())?;
    Ok(f(long.as_ptr()))
}

/// The numeric entry names of a freshly opened directory, sorted.
fn numeric_names(dir_fd: &OwnedFd) -> io::Result<Vec<i32>> {
    let mut entries = Vec::new();
    loop {
        // getdents64 straight into one large buffer: libc's readdir sizes its
        // buffer from /proc's st_blksize (1 KiB), a syscall per ~40 entries.
        let n = DENTS.with_borrow_mut(|buf| {
            // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
            let n = unsafe { libc::syscall(libc::SYS_getdents64, dir_fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
            if n > 0 {
                entries.extend(
                    dirent_names(&buf[..n as usize])
                        .filter_map(|name| std::str::from_utf8(name).ok()?.parse::<i32>().ok()),
                );
            }
            n
        });
        super::backstop::read_returned();
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // procfs fills the buffer while entries remain: room for another
        // (a name is at most 255 bytes) means the listing is complete.
        if n == 0 || (n as usize) < DENTS_BYTES - 512 {
            break;
        }
    }
    entries.sort_unstable();
    Ok(entries)
}

const DENTS_BYTES: usize = 64 << 10;

thread_local! {
    /// Each thread's getdents64 buffer, allocated once: a scan lists two
    /// directories of every process.
    static DENTS: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; DENTS_BYTES]);
}

/// Read all of an open file into `buf` (cleared first), reusing its
/// allocation.
fn read_whole(file: &OwnedFd, rel: &str, buf: &mut Vec<u8>) -> io::Result<()> {
    let result = read_into(file, rel, buf);
    super::backstop::read_returned();
    result
}

fn read_into(file: &OwnedFd, rel: &str, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    loop {
        if buf.len() as u64 >= MAX_FILE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{rel} is larger than 64 MiB"),
            ));
        }
        buf.reserve(4096);
        let spare = buf.capacity() - buf.len();
        // SAFETY: the kernel writes at most `spare` bytes into the spare
        // capacity; `set_len` then covers exactly the bytes it wrote.
        let n = unsafe { libc::read(file.as_raw_fd(), buf.as_mut_ptr().add(buf.len()).cast(), spare) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let n = n as usize;
        unsafe { buf.set_len(buf.len() + n) };
        // /proc and cgroup files are seq_files: a read that does not fill
        // the buffer has returned everything, so no second read for EOF.
        if n == 0 || n < spare {
            return Ok(());
        }
    }
}

/// The names in a buffer of `linux_dirent64` records (d_ino u64, d_off i64,
/// d_reclen u16, d_type u8, then the NUL-terminated name), bounds-checked.
fn dirent_names(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut offset = 0;
    std::iter::from_fn(move || {
        let record = buf.get(offset..)?;
        let reclen = u16::from_ne_bytes(record.get(16..18)?.try_into().ok()?) as usize;
        if reclen < 19 || reclen > record.len() {
            return None;
        }
        offset += reclen;
        let name = &record[19..reclen];
        Some(&name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())])
    })
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_entries_lists_a_big_directory_whole() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..3000 {
            std::fs::write(dir.path().join(n.to_string()), b"").unwrap();
        }
        std::fs::write(dir.path().join("not-a-number"), b"").unwrap();
        let listed = ProcDir::open(dir.path()).unwrap().numeric_entries(".").unwrap();
        assert_eq!(listed, (0..3000).collect::<Vec<i32>>());
    }

    #[test]
    fn readlink_reads_long_targets_whole() {
        let dir = tempfile::tempdir().unwrap();
        for len in [1, 511, 512, 513, 3000] {
            let target = "x".repeat(len);
            let link = dir.path().join(format!("link{len}"));
            std::os::unix::fs::symlink(&target, &link).unwrap();
            let read = ProcDir::open(dir.path())
                .unwrap()
                .readlink(&format!("link{len}"))
                .unwrap();
            assert_eq!(read, target.as_bytes(), "{len}");
        }
        let held = ProcDir::open(dir.path()).unwrap();
        assert_eq!(held.readlink("a\0b").unwrap_err().raw_os_error(), Some(libc::EINVAL));
        let long = format!(".{}/link1", "/.".repeat(40));
        assert_eq!(held.readlink(&long).unwrap(), b"x", "a path past the stack buffer");
    }

    #[test]
    fn only_the_root_of_a_proc_mount_is_one() {
        assert!(ProcDir::open(Path::new("/proc")).unwrap().is_proc_mount_root());
        for not_root in ["/proc/self", "/proc/self/fd", "/proc/sys"] {
            assert!(
                !ProcDir::open(Path::new(not_root)).unwrap().is_proc_mount_root(),
                "{not_root}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(!ProcDir::open(dir.path()).unwrap().is_proc_mount_root());
    }

    #[test]
    fn truncated_dirent_records_end_the_listing_without_panicking() {
        let mut record = vec![0u8; 24];
        record[16..18].copy_from_slice(&24u16.to_ne_bytes());
        record[19..21].copy_from_slice(b"42");
        assert_eq!(dirent_names(&record).collect::<Vec<_>>(), [b"42"]);
        assert_eq!(dirent_names(&record[..20]).count(), 0);
        record[16..18].copy_from_slice(&400u16.to_ne_bytes());
        assert_eq!(dirent_names(&record).count(), 0);
        record[16..18].copy_from_slice(&0u16.to_ne_bytes());
        assert_eq!(dirent_names(&record).count(), 0, "a zero length cannot loop forever");
    }
}
