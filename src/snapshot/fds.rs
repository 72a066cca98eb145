//! File descriptors as read: link text, fdinfo, pipe fill, and the counts
//! of a process read lazily.

use super::Fact;
use crate::text::TargetString;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct Fd {
    pub fd: i32,
    /// The link text (`pipe:[123]`, `socket:[456]`, `/dev/null`...). Never
    /// followed.
    pub target: TargetString,
    pub info: Fact<FdInfo>,
    /// Fill level, for pipes, and for a FIFO a thread reads or writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipe: Option<Fact<PipeFill>>,
}

pub use crate::linux::fd::FdKind;

/// How many fds a lazily read process has, by type: a fixed array, so a
/// host of thousands of processes pays 52 bytes each for it.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, schemars::JsonSchema)]
pub struct FdTotals {
    pub count: usize,
    #[serde(with = "by_type")]
    #[schemars(with = "std::collections::BTreeMap<FdKind, u32>")]
    pub by_type: [u32; FdKind::ALL.len()],
}

impl FdTotals {
    pub fn add(&mut self, kind: FdKind) {
        self.count += 1;
        self.by_type[kind as usize] += 1;
    }

    /// (kind, count) for every kind present.
    pub fn kinds(&self) -> impl Iterator<Item = (FdKind, u32)> + '_ {
        FdKind::ALL.into_iter().zip(self.by_type).filter(|(_, n)| *n > 0)
    }
}

/// `by_type` as a JSON object: `{"pipe": 10, "socket": 4}`.
mod by_type {
    use super::FdKind;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(counts: &[u32; 13], serializer: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<FdKind, u32> = FdKind::ALL.into_iter().zip(*counts).filter(|(_, n)| *n > 0).collect();
        map.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u32; 13], D::Error> {
        let map = BTreeMap::<FdKind, u32>::deserialize(deserializer)?;
        let mut counts = [0; 13];
        for (kind, n) in map {
            counts[kind as usize] = n;
        }
        Ok(counts)
    }
}

/// `/proc/PID/fdinfo/N`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, schemars::JsonSchema)]
pub struct FdInfo {
    /// Open flags (octal in the file): access mode, O_NONBLOCK...
    pub flags: Option<u32>,
    pub pos: Option<u64>,
    /// The inode of the file, pipe or socket (`ino:`, since Linux 5.8):
    /// tells a FIFO's ends from other fds linking to the same path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    /// For an epoll fd: the fds it watches (`tfd:` lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epoll_targets: Vec<EpollTarget>,
    /// For an eventfd: its counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eventfd_count: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
pub struct EpollTarget {
    pub fd: i32,
    pub events: u32,
    pub inode: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema)]
pub struct PipeFill {
    pub buffered_bytes: u64,
    pub capacity_bytes: u64,
}
