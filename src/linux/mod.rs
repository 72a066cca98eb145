//! Kernel knowledge, in one place: what the numbers and symbols /proc
//! shows mean (syscall tables, wchan spellings, open-flag and epoll bits,
//! fd-link kinds, signal and TCP state names, file lock classes, terminal
//! names, the container a cgroup path names and the kernel functions that
//! are memory waits).
//!
//! Both sides read it: `collect` to decide what is worth reading, `classify`
//! to judge what was read. Neither imports the other.

pub mod cgroup;
pub mod fd;
pub mod locks;
pub mod net;
pub mod signal;
pub mod syscall;
pub mod tty;
pub mod wait;
