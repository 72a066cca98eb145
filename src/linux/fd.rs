//! File descriptors as the kernel shows them: link text kinds, open-flag
//! bits, epoll event bits.

use serde::{Deserialize, Serialize};

/// The access mode bits of the open flags (fdinfo `flags:`, octal).
pub const O_ACCMODE: u32 = 0o3;
/// O_NONBLOCK on x86_64 and aarch64 (the generic value).
pub const O_NONBLOCK: u32 = 0o4000;

/// Close-on-exec, as fdinfo `flags:` shows it.
pub const O_CLOEXEC: u32 = 0o2_000_000;

/// Whether a pipe with this fill takes no more writes: pipes fill by page
/// slots, so a writer blocks once less than a page is free, below the byte
/// capacity. The one definition, for collect (what to read in depth) and
/// classify (what is full) alike.
pub fn pipe_is_full(buffered_bytes: u64, capacity_bytes: u64, page_size: u64) -> bool {
    capacity_bytes.saturating_sub(buffered_bytes) < page_size
}

/// epoll event bits (fdinfo `tfd: ... events:`).
pub const EPOLLIN: u32 = 0x001;
pub const EPOLLOUT: u32 = 0x004;

/// How an fd was opened, from its flags.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    Read,
    Write,
    ReadWrite,
}

impl Access {
    pub fn of(flags: u32) -> Access {
        match flags & O_ACCMODE {
            0 => Access::Read,
            1 => Access::Write,
            _ => Access::ReadWrite,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::ReadWrite => "read-write",
        }
    }
}

/// What an fd is, from its link text alone (the target is never opened or
/// stat'ed).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FdKind {
    File,
    Pipe,
    /// A named pipe: a path whose readers or writers wait in pipe code.
    Fifo,
    Socket,
    Eventpoll,
    Eventfd,
    Timerfd,
    Signalfd,
    Inotify,
    AnonInode,
    Device,
    Namespace,
    Other,
}

impl FdKind {
    pub fn name(self) -> &'static str {
        match self {
            FdKind::File => "file",
            FdKind::Pipe => "pipe",
            FdKind::Fifo => "fifo",
            FdKind::Socket => "socket",
            FdKind::Eventpoll => "eventpoll",
            FdKind::Eventfd => "eventfd",
            FdKind::Timerfd => "timerfd",
            FdKind::Signalfd => "signalfd",
            FdKind::Inotify => "inotify",
            FdKind::AnonInode => "anon_inode",
            FdKind::Device => "device",
            FdKind::Namespace => "namespace",
            FdKind::Other => "other",
        }
    }

    pub fn of(target: &[u8]) -> FdKind {
        match target {
            t if t.starts_with(b"pipe:[") => FdKind::Pipe,
            t if t.starts_with(b"socket:[") => FdKind::Socket,
            b"anon_inode:[eventpoll]" => FdKind::Eventpoll,
            b"anon_inode:[eventfd]" => FdKind::Eventfd,
            b"anon_inode:[timerfd]" => FdKind::Timerfd,
            b"anon_inode:[signalfd]" => FdKind::Signalfd,
            b"anon_inode:inotify" => FdKind::Inotify,
            t if t.starts_with(b"anon_inode:") => FdKind::AnonInode,
            t if t.starts_with(b"/dev/") => FdKind::Device,
            t if t.starts_with(b"/") => FdKind::File,
            t if [
                &b"net:["[..],
                b"mnt:[",
                b"pid:[",
                b"user:[",
                b"uts:[",
                b"ipc:[",
                b"cgroup:[",
            ]
            .iter()
            .any(|p| t.starts_with(p)) =>
            {
                FdKind::Namespace
            }
            _ => FdKind::Other,
        }
    }
}

impl FdKind {
    /// A pipe, FIFO or socket: something another process reads or writes
    /// at the other end.
    pub fn is_channel(self) -> bool {
        matches!(self, FdKind::Pipe | FdKind::Fifo | FdKind::Socket)
    }

    pub const ALL: [FdKind; 13] = [
        FdKind::File,
        FdKind::Pipe,
        FdKind::Fifo,
        FdKind::Socket,
        FdKind::Eventpoll,
        FdKind::Eventfd,
        FdKind::Timerfd,
        FdKind::Signalfd,
        FdKind::Inotify,
        FdKind::AnonInode,
        FdKind::Device,
        FdKind::Namespace,
        FdKind::Other,
    ];
}

/// `pipe:[123]` / `socket:[123]` → 123, for the given kind.
pub fn link_inode(target: &[u8], kind: &str) -> Option<u64> {
    let rest = target.strip_prefix(kind.as_bytes())?.strip_prefix(b":[")?;
    std::str::from_utf8(rest.strip_suffix(b"]")?).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_inodes() {
        assert_eq!(link_inode(b"pipe:[3012]", "pipe"), Some(3012));
        assert_eq!(link_inode(b"socket:[77]", "socket"), Some(77));
        assert_eq!(link_inode(b"socket:[77]", "pipe"), None);
        assert_eq!(link_inode(b"pipe:[x]", "pipe"), None);
        assert_eq!(link_inode(b"/tmp/pipe:[1]", "pipe"), None);
    }

    #[test]
    fn access_modes() {
        assert_eq!(Access::of(0o2000), Access::Read);
        assert_eq!(Access::of(0o4001), Access::Write);
        assert_eq!(Access::of(0o2), Access::ReadWrite);
    }
}
